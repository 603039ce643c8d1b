/*
 * cache.c - the local disk cache (see cache.h for the layout and model).
 *
 * This first version keeps whole blobs: a read of uncached content fetches
 * the blob into DIR/tmp, verifies its keyed hash, and renames it into
 * DIR/blobs. Concurrent fetches of one blob are harmless (each renames a
 * verified, identical copy). Size limits, eviction and sparse ranged fetches
 * are the write-back cache's work (docs/design-commit.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "docvault/cache.h"
#include "docvault/checksum.h"
#include "docvault/log.h"
#include "docvault/store.h"

struct cache {
	char *dir;
	int lock_fd;
	uint64_t size_limit;
	unsigned char secret[CHECKSUM_SECRET_SIZE];
	atomic_uint_fast64_t seq; /* names staging and temporary files */
};

static int cache_mkdir(const char *dir, const char *sub, char *err, size_t errlen)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s%s%s", dir, *sub ? "/" : "", sub);
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		int ret = -errno;

		snprintf(err, errlen, "cache %s: cannot create %s: %s", dir, path, strerror(errno));
		return ret;
	}
	return 0;
}

int cache_open(const char *dir, uint64_t size_limit, const unsigned char *secret,
	       struct cache **out, char *err, size_t errlen)
{
	static const char *const subs[] = {"", "staging", "blobs", "tmp"};
	char path[PATH_MAX];
	struct cache *c;
	int ret;

	*out = NULL;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		ret = cache_mkdir(dir, subs[i], err, errlen);
		if (ret)
			return ret;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->dir = strdup(dir))) {
		free(c);
		snprintf(err, errlen, "cache %s: out of memory", dir);
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/lock", dir);
	c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->lock_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cache %s: cannot open %s: %s", dir, path, strerror(errno));
		goto fail;
	}
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		snprintf(err, errlen,
			 "cache %s is in use by another docvault process (%s is locked); give "
			 "each mount its own [cache] dir",
			 dir, path);
		goto fail;
	}
	c->size_limit = size_limit;
	memcpy(c->secret, secret, CHECKSUM_SECRET_SIZE);
	*out = c;
	return 0;
fail:
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	free(c->dir);
	free(c);
	return ret;
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	close(c->lock_fd);
	free(c->dir);
	free(c);
}

int cache_staging_new(struct cache *c, uint64_t ino, int *fd, char **path)
{
	char buf[PATH_MAX];
	int ret;

	snprintf(buf, sizeof(buf), "%s/staging/%llu.%llu", c->dir, (unsigned long long)ino,
		 (unsigned long long)atomic_fetch_add(&c->seq, 1));
	*fd = open(buf, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (*fd < 0) {
		ret = -errno;
		log_error("cache: cannot create staging file %s: %s", buf, strerror(errno));
		return ret;
	}
	*path = strdup(buf);
	if (!*path) {
		close(*fd);
		unlink(buf);
		return -ENOMEM;
	}
	return 0;
}

static void cache_blob_path(struct cache *c, const unsigned char *keyed, char *out, size_t len,
			    bool mkparent)
{
	char hex[CHECKSUM_HEX_SIZE];

	checksum_hex16(keyed, hex);
	snprintf(out, len, "%s/blobs/%.2s", c->dir, hex);
	if (mkparent)
		mkdir(out, 0700);
	snprintf(out, len, "%s/blobs/%.2s/%s", c->dir, hex, hex);
}

int cache_blob_open(struct cache *c, struct store *st, const unsigned char *keyed, uint64_t size,
		    int *fd)
{
	char path[PATH_MAX], tmp[PATH_MAX], key[STORE_BLOB_KEY_SIZE];
	struct checksum sum;
	int tfd, ret;

	cache_blob_path(c, keyed, path, sizeof(path), false);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd >= 0)
		return 0;
	if (errno != ENOENT) {
		ret = -errno;
		log_error("cache: cannot open %s: %s", path, strerror(errno));
		return ret;
	}
	/* fetch, verify, publish */
	snprintf(tmp, sizeof(tmp), "%s/tmp/fetch.%llu", c->dir,
		 (unsigned long long)atomic_fetch_add(&c->seq, 1));
	tfd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (tfd < 0) {
		ret = -errno;
		log_error("cache: cannot create %s: %s", tmp, strerror(errno));
		return ret;
	}
	store_blob_key(keyed, key);
	ret = size ? store_get_to_fd(st, key, 0, size, tfd) : 0;
	if (!ret)
		ret = checksum_fd(tfd, size, c->secret, &sum);
	if (!ret && memcmp(sum.keyed, keyed, 16) != 0) {
		log_error("cache: blob %s from the %s store does not match its hash; not served",
			  key, st->ops->name);
		ret = -EIO;
	}
	if (!ret) {
		cache_blob_path(c, keyed, path, sizeof(path), true);
		if (rename(tmp, path) < 0) {
			ret = -errno;
			log_error("cache: cannot rename %s to %s: %s", tmp, path, strerror(errno));
		}
	}
	if (ret) {
		close(tfd);
		unlink(tmp);
		return ret;
	}
	/* reopen read-only so nobody writes a published blob by mistake */
	close(tfd);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

int cache_adopt(struct cache *c, const char *path, const unsigned char *keyed)
{
	char dst[PATH_MAX];
	struct stat sb;

	cache_blob_path(c, keyed, dst, sizeof(dst), true);
	if (stat(dst, &sb) == 0) {
		unlink(path);
		return 0;
	}
	if (rename(path, dst) < 0) {
		int ret = -errno;

		log_error("cache: cannot rename %s to %s: %s", path, dst, strerror(errno));
		unlink(path);
		return ret;
	}
	return 0;
}
