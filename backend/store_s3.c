/*
 * store_s3.c - placeholder until the S3 store lands: refuses to open with a
 * clear message, so a configuration that names s3 fails loudly.
 */
#include <errno.h>
#include <stdio.h>

#include "docvault/config.h"
#include "docvault/store.h"

int store_s3_open(const struct dv_config *cfg, struct store **out, char *err, size_t errlen)
{
	*out = NULL;
	snprintf(err, errlen, "%s: [storage] type = s3 is not available in this build",
		 cfg->path ? cfg->path : "config");
	return -ENOTSUP;
}
