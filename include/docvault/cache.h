/*
 * cache.h - the local disk cache: clean copies of blobs, fetched from the
 * store block by block or adopted from committed staging files, kept under
 * a size limit; and the accounting that lets the write-back journal's dirty
 * bytes share that limit. One daemon owns a cache directory at a time (an
 * flock on DIR/lock); a second one is refused.
 *
 * Layout of DIR:
 *   lock                 flock'ed while a cache is open
 *   vault                the vault this cache belongs to (a one-way tag of
 *                        its secret); cache_open() refuses another vault's
 *                        cache, whose journal names that vault's inodes
 *   blobs/ab/<32 hex>    a complete blob, named by its keyed hash (ab = the
 *                        first two hex digits); verified, so never stale;
 *                        never written again; needs no map
 *   blobs/ab/<hex>.part  a partial blob: a sparse file of the blob's size,
 *                        filled block by block (CHECKSUM_BLOCK_SIZE blocks)
 *   blobs/ab/<hex>.map   which blocks of <hex>.part are present: "DVMAP001",
 *                        the blob size (8 bytes, little-endian), a bitmap
 *                        (bit i of byte i/8 = block i). A .part without a
 *                        map has no block present.
 *   tmp/                 maps being written, whole fetches; emptied at open
 *   staging/             deprecated: cache_staging_new() files
 *   journal/             the journal's (journal.h); this module ignores it
 * A map is written (temporary file, rename) only after fdatasync of its
 * .part, so a map never claims a block that a power cut could lose; when
 * the last block lands the .part is synced, renamed to <hex> and the map
 * removed. Maps are written when a blob's last reference goes and, by the
 * fetch threads, every 64 blocks they land. An xattr would save a file but ties the cache to
 * filesystems with user xattrs large enough for a big bitmap (ext4 allows
 * about 4 KiB: a 32 GiB blob); a map file works on any filesystem.
 *
 * Reads: a reader holds a struct cache_blob (one per blob, refcounted,
 * shared by every reader). Present blocks are read from the file; a missing
 * block is fetched by the reader itself with a ranged GET, verified against
 * its keyed XXH3-64 (checksum.h) before it is written or served; readers of
 * a block being fetched wait for that fetch. Reads that follow each other
 * start a read-ahead window (1 MiB, doubling up to CACHE_READAHEAD_MAX)
 * fetched by the cache's pool of CACHE_FETCH_THREADS threads in chunks of
 * up to CACHE_FETCH_CHUNK blocks, so a large file is fetched with parallel
 * GETs and its first bytes are served after one block. A blob without
 * block hashes (written before they existed) is fetched whole and its keyed
 * XXH3-128 verified before anything of it is served.
 *
 * Size: clean bytes (present bytes of cached blobs) plus dirty bytes (what
 * the journal reports through cache_dirty_add/cache_dirty_reserve) stay
 * under the size limit, and the cache's filesystem keeps `reserve` bytes
 * free: clean blobs are evicted least-recently-used first (a get or a read
 * makes a blob recent; a blob's mtime records it across restarts). A blob
 * somebody holds is never evicted, dirty bytes never: when they alone fill
 * the cache, writers wait in cache_dirty_reserve up to full_wait seconds,
 * then get -ENOSPC. Reads never fail for lack of room: a held blob may take
 * the clean bytes over the limit until it is released. The index (one
 * entry of about 100 bytes per cached blob) is rebuilt by scanning DIR/blobs
 * at open.
 *
 * Threading: every function is thread-safe. Ownership: the cache owns its
 * fetch threads (cache_close stops and joins them); a cache_blob is valid
 * from cache_blob_get to its cache_blob_put. Returns 0 or a negative errno;
 * failures are logged once here with the path or key.
 * Not: the write path (staging files and their journal are journal.h's).
 */
#ifndef DOCVAULT_CACHE_H
#define DOCVAULT_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CACHE_FETCH_THREADS 4		/* the pool that runs read-ahead fetches */
#define CACHE_FETCH_CHUNK   4		/* blocks per background GET, at most */
#define CACHE_READAHEAD_MAX (32u << 20) /* bytes: the largest read-ahead window */

struct cache;
struct cache_blob;
struct store;

struct cache_stats {
	uint64_t clean;	    /* bytes of cached blob content present on disk */
	uint64_t dirty;	    /* bytes the journal holds (cache_dirty_add/_reserve) */
	uint64_t limit;	    /* the size limit */
	uint64_t blobs;	    /* cached blobs, complete or partial */
	uint64_t hits;	    /* cache_blob_read calls served without a fetch */
	uint64_t misses;    /* cache_blob_read calls that needed a fetch */
	uint64_t fetched;   /* bytes fetched from the store and kept */
	uint64_t evictions; /* blobs evicted */
	uint64_t bad;	    /* fetched blocks (or whole blobs) that did not verify */
};

/*
 * Opens (creating) the cache directory, locks it and rebuilds the index
 * from DIR/blobs; cache_start() starts the fetch threads. size_limit: bytes of clean +
 * dirty content; reserve: bytes kept free on the cache's filesystem;
 * full_wait: seconds cache_dirty_reserve waits for room; secret
 * (CHECKSUM_SECRET_SIZE bytes) verifies fetched content and names the
 * vault. Returns 0, -EBUSY (another process holds DIR/lock; err names the
 * directory), -EEXIST (DIR/vault names another vault), or another negative
 * errno with a message in err.
 */
int cache_open(const char *dir, uint64_t size_limit, uint64_t reserve, double full_wait,
	       const unsigned char *secret, struct cache **out, char *err, size_t errlen);

/*
 * Starts the fetch threads that run read-ahead, in the calling process:
 * call it after any fork (a daemon forks after opening its cache, and a
 * child has none of its parent's threads). Until then reads work, but only
 * the readers fetch, one block run at a time. Returns 0 or a negative errno
 * with a message in err.
 */
int cache_start(struct cache *c, char *err, size_t errlen);

/*
 * Stops and joins the fetch threads (a GET under way finishes; queued
 * read-ahead is dropped) and frees the cache. Every cache_blob must have
 * been put before (the last put wrote its map). Accepts NULL.
 */
void cache_close(struct cache *c);

/*
 * The cached blob keyed (16 bytes, its keyed XXH3-128) of `size` bytes, to
 * be fetched from st when needed. blocks is NULL or the blob's block hashes
 * (CHECKSUM_BLOCK_HASH bytes per block, checksum_fd_blocks()); they are
 * copied. Without them the blob is fetched whole before any of it is
 * served. The blob is shared: every get of one key returns the same object
 * with one more reference; cache_blob_put drops it. Does no network I/O
 * (creates the sparse file if the blob is new to the cache). Returns 0,
 * -ENOMEM, or a file error (logged).
 */
int cache_blob_get(struct cache *c, struct store *st, const unsigned char *keyed, uint64_t size,
		   const unsigned char *blocks, struct cache_blob **out);

/*
 * Drops a reference. The last one writes the blob's map (or completes the
 * file) and makes the blob evictable. Accepts NULL.
 */
void cache_blob_put(struct cache_blob *b);

/*
 * Reads up to len bytes at off into buf: present blocks with pread,
 * missing ones fetched first (blocking; waits for a fetch already under
 * way rather than fetching twice). Sequential reads start read-ahead.
 * Returns the bytes read (short only at the end of the blob; 0 at or past
 * it), or -EIO (the store's bytes did not verify: logged with the key and
 * block, nothing kept), or the store's negative errno (store.h), or a
 * cache file's.
 */
ssize_t cache_blob_read(struct cache_blob *b, void *buf, size_t len, uint64_t off);

/*
 * Makes the first len bytes (clamped to the size) present, fetching the
 * missing blocks in parallel. Blocking. Returns 0 or as cache_blob_read.
 */
int cache_blob_fill(struct cache_blob *b, uint64_t len);

/*
 * The cache file's descriptor, borrowed: valid while b is held, for pread
 * and copy_file_range of bytes made present (cache_blob_fill); never write
 * to it. Bytes not present read as zeros or garbage.
 */
int cache_blob_fd(struct cache_blob *b);

/*
 * Makes the complete local file at path (a committed staging file; the
 * caller does not write it again) the cached copy of blob keyed of `size`
 * bytes: a rename into DIR/blobs (path must be on the cache's filesystem);
 * a partial copy not held by anybody is replaced. If the blob is already
 * cached, the file is removed instead. Adds size to the clean bytes; the
 * journal takes its dirty bytes back with cache_dirty_add. Returns 0 or a
 * negative errno (logged); path is removed either way.
 */
int cache_adopt(struct cache *c, const char *path, const unsigned char *keyed, uint64_t size);

/*
 * Adds delta (negative: removes) to the dirty bytes, as the journal's
 * staging files grow, are found at start or are committed and removed.
 * A decrease wakes the writers waiting in cache_dirty_reserve.
 */
void cache_dirty_add(struct cache *c, int64_t delta);

/*
 * Called by a writer before its staging file grows by `bytes`: evicts clean
 * blobs (LRU) until clean + dirty + bytes fits the limit and the disk keeps
 * its reserve. If dirty bytes alone would exceed the limit, or the disk
 * lacks room, waits (up to full_wait seconds) for cache_dirty_add to free
 * some. On success adds bytes to dirty and returns 0; else -ENOSPC.
 */
int cache_dirty_reserve(struct cache *c, uint64_t bytes);

/* A snapshot of the counters. */
void cache_stats(struct cache *c, struct cache_stats *out);

/* --- deprecated: the whole-file API fs/vfs.c used before the journal --- */

/*
 * Deprecated (use the journal). Creates an empty staging file
 * DIR/staging/<ino>.<n>; *fd is open read-write; *path (malloc'ed, caller
 * frees) names it for a later cache_adopt().
 */
int cache_staging_new(struct cache *c, uint64_t ino, int *fd, char **path);

/*
 * Deprecated (use cache_blob_get + cache_blob_fill + cache_blob_fd).
 * Fetches the whole blob if needed (verifying its keyed XXH3-128) and
 * returns in *fd a descriptor of the cached copy that the caller owns and
 * closes.
 */
int cache_blob_open(struct cache *c, struct store *st, const unsigned char *keyed, uint64_t size,
		    int *fd);

/*
 * Deprecated: cache_adopt without the size (the file's size is used).
 * Until fs/vfs.c passes the size, cache_adopt(c, path, keyed) with three
 * arguments resolves to this one; remove the macro with the last 3-argument
 * call.
 */
int cache_adopt_unsized(struct cache *c, const char *path, const unsigned char *keyed);

#define CACHE_ADOPT_PICK_(a, b, c, d, name, ...) name
#define cache_adopt(...)                                                                           \
	CACHE_ADOPT_PICK_(__VA_ARGS__, cache_adopt, cache_adopt_unsized, )(__VA_ARGS__)

#endif
