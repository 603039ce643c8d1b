/*
 * store.c - the store registry and what every store shares: store_open()
 * picks the implementation the configuration names; store_probe() checks a
 * store end to end (put, read back, delete) for `docvault init`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "docvault/checksum.h"
#include "docvault/config.h"
#include "docvault/store.h"

int store_open(const struct dv_config *cfg, struct store **out, char *err, size_t errlen)
{
	switch (cfg->storage.type) {
	case CONFIG_STORE_LOCAL:
		return store_local_open(cfg->storage.path, out, err, errlen);
	case CONFIG_STORE_S3:
		return store_s3_open(cfg, out, err, errlen);
	}
	snprintf(err, errlen, "unknown store type %d", (int)cfg->storage.type);
	return -EINVAL;
}

int store_probe(struct store *st, char *err, size_t errlen)
{
	char key[96], tmpl[] = "/tmp/docvault-probe.XXXXXX", back[64];
	static const char body[] = "docvault store probe\n";
	size_t got = 0;
	int fd, ret;

	snprintf(key, sizeof(key), "probe/%ld-%d", (long)time(NULL), (int)getpid());
	fd = mkstemp(tmpl);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "store probe: cannot create a temporary file: %s",
			 strerror(-ret));
		return ret;
	}
	unlink(tmpl);
	if (write(fd, body, sizeof(body) - 1) != (ssize_t)(sizeof(body) - 1)) {
		ret = -EIO;
		snprintf(err, errlen, "store probe: cannot write a temporary file");
		goto out;
	}
	ret = store_put_fd(st, key, fd, sizeof(body) - 1, NULL);
	if (ret) {
		snprintf(err, errlen, "%s store: cannot write the probe object %s: %s",
			 st->ops->name, key, strerror(-ret));
		goto out;
	}
	ret = store_get_range(st, key, 0, sizeof(back), back, &got);
	if (ret || got != sizeof(body) - 1 || memcmp(back, body, got) != 0) {
		if (!ret)
			ret = -EIO;
		snprintf(err, errlen, "%s store: the probe object %s does not read back: %s",
			 st->ops->name, key, strerror(-ret));
		store_del(st, key);
		goto out;
	}
	ret = store_del(st, key);
	if (ret)
		snprintf(err, errlen, "%s store: cannot delete the probe object %s: %s",
			 st->ops->name, key, strerror(-ret));
out:
	close(fd);
	return ret;
}

void store_blob_key(const unsigned char *keyed, char *out)
{
	char hex[CHECKSUM_HEX_SIZE];

	checksum_hex16(keyed, hex);
	snprintf(out, STORE_BLOB_KEY_SIZE, "blobs/%.2s/%.2s/%s", hex, hex + 2, hex);
}
