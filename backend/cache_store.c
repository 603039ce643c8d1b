/*
 * cache_store.c - the store decorator of cache_store.h. A read of a whole
 * blob (offset 0, key "blobs/ab/cd/<32 hex>") is served by the read cache
 * (cache_blob_get + fill, which fetch from the inner store and verify the
 * keyed hash when the blob is not there); every other call is passed on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "docvault/cache.h"
#include "docvault/cache_store.h"
#include "docvault/checksum.h"
#include "docvault/log.h"
#include "docvault/store.h"

struct cache_store {
	struct store base; /* first: a struct store * is a struct cache_store * */
	struct cache *cache;
	struct store *inner;
};

static struct cache_store *cache_store_of(struct store *st)
{
	return (struct cache_store *)st;
}

/* The keyed hash a blob key names, or false for any other key. */
static bool cache_store_keyed(const char *key, unsigned char *keyed)
{
	const char *hex = strrchr(key, '/');

	if (strncmp(key, "blobs/", 6) != 0 || !hex || strlen(hex + 1) != 32)
		return false;
	return checksum_parse_hex16(hex + 1, keyed) == 0;
}

static int cache_store_put_fd(struct store *st, const char *key, int fd, uint64_t size,
			      const unsigned char *sha256)
{
	return store_put_fd(cache_store_of(st)->inner, key, fd, size, sha256);
}

static int cache_store_get_range(struct store *st, const char *key, uint64_t off, size_t len,
				 void *buf, size_t *got)
{
	return store_get_range(cache_store_of(st)->inner, key, off, len, buf, got);
}

static int cache_store_get_to_fd(struct store *st, const char *key, uint64_t off, uint64_t len,
				 int fd)
{
	struct cache_store *cs = cache_store_of(st);
	unsigned char keyed[16];
	struct cache_blob *b;
	loff_t in_off = 0, out_off = 0;
	int ret;

	if (off != 0 || len == 0 || !cache_store_keyed(key, keyed))
		return store_get_to_fd(cs->inner, key, off, len, fd);
	ret = cache_blob_get(cs->cache, cs->inner, keyed, len, NULL, &b);
	if (ret)
		return ret;
	ret = cache_blob_fill(b, len);
	while (!ret && (uint64_t)out_off < len) {
		ssize_t n = copy_file_range(cache_blob_fd(b), &in_off, fd, &out_off,
					    len - (uint64_t)out_off, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			log_error("cannot copy cached blob %s: %s", key, strerror(-ret));
		}
	}
	cache_blob_put(b);
	return ret;
}

static int cache_store_head(struct store *st, const char *key, uint64_t *size)
{
	return store_head(cache_store_of(st)->inner, key, size);
}

static int cache_store_del(struct store *st, const char *key)
{
	return store_del(cache_store_of(st)->inner, key);
}

static int cache_store_del_batch(struct store *st, const char *const *keys, size_t n)
{
	return store_del_batch(cache_store_of(st)->inner, keys, n);
}

static int cache_store_list(struct store *st, const char *prefix, store_list_cb cb, void *arg)
{
	return store_list(cache_store_of(st)->inner, prefix, cb, arg);
}

static void cache_store_close(struct store *st)
{
	free(cache_store_of(st));
}

static const struct store_ops cache_store_ops = {
    .name = "cached",
    .put_fd = cache_store_put_fd,
    .get_range = cache_store_get_range,
    .get_to_fd = cache_store_get_to_fd,
    .head = cache_store_head,
    .del = cache_store_del,
    .del_batch = cache_store_del_batch,
    .list = cache_store_list,
    .close = cache_store_close,
};

int cache_store_open(struct cache *c, struct store *inner, struct store **out)
{
	struct cache_store *cs = calloc(1, sizeof(*cs));

	if (!cs)
		return -ENOMEM;
	cs->base.ops = &cache_store_ops;
	cs->cache = c;
	cs->inner = inner;
	*out = &cs->base;
	return 0;
}
