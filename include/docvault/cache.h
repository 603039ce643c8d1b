/*
 * cache.h - the local disk cache: staging files that hold content being
 * written, and read-only copies of blobs fetched from (or committed to) the
 * store. One daemon owns a cache directory at a time (an flock on
 * DIR/lock); a second one is refused.
 *
 * Layout: DIR/lock, DIR/staging/<ino>.<n> (dirty content, never evicted),
 * DIR/blobs/ab/<32 hex> (clean content keyed by the blob's keyed hash, so
 * never stale), DIR/tmp/ (downloads in progress).
 *
 * Thread-safe. Returns 0 or a negative errno; failures are logged once here
 * with the path.
 */
#ifndef DOCVAULT_CACHE_H
#define DOCVAULT_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct cache;
struct store;

/*
 * Opens (creating) the cache directory and locks it. -EBUSY, with a
 * message naming the directory, when another process holds it.
 * secret (CHECKSUM_SECRET_SIZE bytes) verifies fetched blobs.
 */
int cache_open(const char *dir, uint64_t size_limit, const unsigned char *secret,
	       struct cache **out, char *err, size_t errlen);
void cache_close(struct cache *c);

/*
 * Creates an empty staging file for inode ino. *fd is open read-write;
 * *path (malloc'ed, caller frees) names it for a later cache_adopt().
 */
int cache_staging_new(struct cache *c, uint64_t ino, int *fd, char **path);

/*
 * Opens the cached copy of a blob read-only, fetching the whole blob from
 * the store first when it is not cached, and verifying it against its
 * hash. size is the blob's size.
 */
int cache_blob_open(struct cache *c, struct store *st, const unsigned char *keyed, uint64_t size,
		    int *fd);

/*
 * Makes the staging file at path the cached copy of blob keyed (a rename;
 * the file must not be written again). If a copy is already there the
 * staging file is removed instead.
 */
int cache_adopt(struct cache *c, const char *path, const unsigned char *keyed);

#endif
