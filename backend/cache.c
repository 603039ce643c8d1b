/*
 * cache.c - the local disk cache (cache.h has the layout and the policy).
 *
 * Model. An index (hash table + LRU list of struct cache_entry, ~90 bytes
 * each) names every blob in DIR/blobs, complete or partial, with its
 * present bytes; it is rebuilt by a scan at open. A blob somebody reads has
 * a live struct cache_blob (entry->blob): the open file, the present and
 * in-flight bitmaps, the block hashes, the read-ahead state. A live blob is
 * "held" and is never evicted; it stays live while a reader, a queued
 * fetch job or a map write refers to it.
 *
 * A block is fetched by whoever claims it first: claiming sets its
 * in-flight bit under the lock, so a block is fetched by one GET at a time
 * and other readers wait on the blob's condition variable. A fetched block
 * is verified against its keyed XXH3-64, written with pwrite, and only then
 * marked present; a bad block is logged and forgotten, and its waiters get
 * -EIO. Read-ahead enqueues jobs (a block range, a reference on the blob)
 * for the fetch threads, which claim at start, so a reader never waits
 * behind a queued job: it fetches the block itself.
 *
 * Locking: one mutex, c->lock, protects the index, the LRU, the counters,
 * the job queue and every live blob's bitmaps and state (fields say
 * "protected by c->lock"). It is never held across a GET, a pread/pwrite
 * of content, a hash or an fdatasync; it is held across small metadata
 * calls (open, rename, unlink of an evicted file, statvfs, a map read), so
 * that no other thread sees an index that disagrees with DIR/blobs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "docvault/cache.h"
#include "docvault/checksum.h"
#include "docvault/log.h"
#include "docvault/store.h"

#define CACHE_BLOCK	 ((uint64_t)CHECKSUM_BLOCK_SIZE)
#define CACHE_MAP_MAGIC	 "DVMAP001"
#define CACHE_MAP_HEADER 16  /* magic and size */
#define CACHE_MAP_EVERY	 64  /* fetched blocks between two map writes of a held blob */
#define CACHE_QUEUE_MAX	 256 /* read-ahead jobs queued at most; more are dropped */
#define CACHE_INDEX_MIN	 1024
#define CACHE_RECHECK_NS 200000000L /* a waiting writer re-checks the disk this often */

struct cache_entry {
	unsigned char keyed[16];
	bool complete;		   /* named <hex>; else <hex>.part and maybe <hex>.map */
	uint64_t size;		   /* the blob's size */
	uint64_t bytes;		   /* present bytes, counted in c->clean */
	time_t used;		   /* at open: the file's mtime, to order the LRU */
	struct cache_entry *hnext; /* hash chain */
	struct cache_entry *prev;  /* LRU: towards the most recent (c->lru_head) */
	struct cache_entry *next;  /* LRU: towards the least recent (c->lru_tail) */
	struct cache_blob *blob;   /* the live blob, NULL when none (evictable) */
};

struct cache_blob {
	struct cache *c;
	struct cache_entry *e; /* valid while live */
	struct store *st;      /* where missing blocks come from */
	int fd;		       /* O_RDWR on a .part, O_RDONLY on a complete file */
	uint64_t size;
	uint64_t nblocks;
	unsigned char *hashes;	 /* CHECKSUM_BLOCK_HASH per block; NULL: verify whole */
	unsigned char *present;	 /* bitmap, protected by c->lock */
	unsigned char *inflight; /* bitmap of claimed blocks, protected by c->lock */
	uint64_t npresent;	 /* protected by c->lock */
	uint64_t landed;	 /* blocks landed since the last map write, c->lock */
	unsigned refs;		 /* protected by c->lock */
	bool sealed;		 /* the file is named <hex>; protected by c->lock */
	bool persisting;	 /* a map write or seal runs; protected by c->lock */
	bool whole_busy;	 /* a whole-blob fetch runs; protected by c->lock */
	int fetch_err;		 /* the last failed fetch, for its waiters; c->lock */
	uint64_t ra_next;	 /* where the last sequential read ended; c->lock */
	uint64_t ra_end;	 /* read-ahead queued up to here; c->lock */
	uint64_t ra_window;	 /* current read-ahead window, bytes; c->lock */
	pthread_cond_t cond;	 /* a fetch of this blob ended; with c->lock */
	char key[STORE_BLOB_KEY_SIZE];
};

struct cache_job {
	struct cache_job *next;
	struct cache_blob *b; /* a reference, dropped when the job is done */
	uint64_t first, last; /* blocks [first, last) */
};

struct cache {
	char *dir;
	int lock_fd;
	uint64_t size_limit;
	uint64_t reserve;
	double full_wait;
	unsigned char secret[CHECKSUM_SECRET_SIZE];
	atomic_uint_fast64_t seq; /* names staging and temporary files */

	pthread_mutex_t lock;
	pthread_cond_t room;	      /* dirty bytes fell or a blob became evictable */
	pthread_cond_t work;	      /* a job was queued or the threads must stop */
	struct cache_entry **buckets; /* protected by lock */
	size_t nbuckets, nentries;    /* protected by lock */
	struct cache_entry *lru_head; /* most recently used; protected by lock */
	struct cache_entry *lru_tail; /* protected by lock */
	uint64_t clean;		      /* protected by lock */
	uint64_t dirty;		      /* protected by lock */
	uint64_t pending;	      /* bytes of GETs under way; protected by lock */
	uint64_t hits, misses, fetched, evictions, bad; /* protected by lock */
	struct cache_job *q_head, *q_tail;		/* protected by lock */
	unsigned q_len;					/* protected by lock */
	bool stopping;					/* protected by lock */
	pthread_t threads[CACHE_FETCH_THREADS];
	int nthreads; /* started (cache_start); protected by lock */
};

/* --- small helpers ------------------------------------------------------ */

static bool bit_get(const unsigned char *map, uint64_t i)
{
	return map[i / 8] >> (i % 8) & 1;
}

static void bit_set(unsigned char *map, uint64_t i)
{
	map[i / 8] |= (unsigned char)(1u << (i % 8));
}

static void bit_clear(unsigned char *map, uint64_t i)
{
	map[i / 8] &= (unsigned char)~(1u << (i % 8));
}

static size_t map_bytes(uint64_t nblocks)
{
	return (size_t)((nblocks + 7) / 8);
}

/* Length of block i of a blob of size bytes (the last one is short). */
static uint64_t block_len(uint64_t size, uint64_t i)
{
	uint64_t off = i * CACHE_BLOCK;

	return size - off < CACHE_BLOCK ? size - off : CACHE_BLOCK;
}

static uint64_t u64_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t u64_sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* DIR/blobs/ab/<hex><suffix> */
static void cache_path(const struct cache *c, const unsigned char *keyed, const char *suffix,
		       char *out, size_t len)
{
	char hex[CHECKSUM_HEX_SIZE];

	checksum_hex16(keyed, hex);
	snprintf(out, len, "%s/blobs/%.2s/%s%s", c->dir, hex, hex, suffix);
}

static void cache_unlink_quiet(const char *path)
{
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("cache: cannot remove %s: %s", path, strerror(errno));
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

/* --- the index: hash table and LRU (all _locked) ----------------------- */

static size_t index_slot(size_t nbuckets, const unsigned char *keyed)
{
	uint64_t h;

	memcpy(&h, keyed, sizeof(h)); /* a hash already: its bits are uniform */
	return (size_t)(h & (nbuckets - 1));
}

static struct cache_entry *index_find_locked(struct cache *c, const unsigned char *keyed)
{
	struct cache_entry *e = c->buckets[index_slot(c->nbuckets, keyed)];

	while (e && memcmp(e->keyed, keyed, 16) != 0)
		e = e->hnext;
	return e;
}

static void index_grow_locked(struct cache *c)
{
	size_t n = c->nbuckets * 2;
	struct cache_entry **b = calloc(n, sizeof(*b));

	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct cache_entry *e = c->buckets[i], *next;

		for (; e; e = next) {
			size_t s = index_slot(n, e->keyed);

			next = e->hnext;
			e->hnext = b[s];
			b[s] = e;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

static void lru_unlink_locked(struct cache *c, struct cache_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_locked(struct cache *c, struct cache_entry *e)
{
	e->prev = NULL;
	e->next = c->lru_head;
	if (c->lru_head)
		c->lru_head->prev = e;
	else
		c->lru_tail = e;
	c->lru_head = e;
}

static void lru_touch_locked(struct cache *c, struct cache_entry *e)
{
	if (c->lru_head == e)
		return;
	lru_unlink_locked(c, e);
	lru_push_locked(c, e);
}

/* A new entry, in the index and at the head of the LRU; NULL if out of memory. */
static struct cache_entry *index_add_locked(struct cache *c, const unsigned char *keyed,
					    uint64_t size)
{
	struct cache_entry *e = calloc(1, sizeof(*e));
	size_t s;

	if (!e)
		return NULL;
	memcpy(e->keyed, keyed, 16);
	e->size = size;
	if (c->nentries >= c->nbuckets)
		index_grow_locked(c);
	s = index_slot(c->nbuckets, keyed);
	e->hnext = c->buckets[s];
	c->buckets[s] = e;
	c->nentries++;
	lru_push_locked(c, e);
	return e;
}

/* Takes e out of the index and the LRU, uncounts its bytes and frees it. */
static void index_drop_locked(struct cache *c, struct cache_entry *e)
{
	struct cache_entry **pp = &c->buckets[index_slot(c->nbuckets, e->keyed)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	c->nentries--;
	lru_unlink_locked(c, e);
	c->clean -= e->bytes;
	free(e);
}

/* Removes an unheld entry's files and the entry. */
static void cache_evict_locked(struct cache *c, struct cache_entry *e)
{
	char path[PATH_MAX];

	if (e->complete) {
		cache_path(c, e->keyed, "", path, sizeof(path));
		cache_unlink_quiet(path);
	} else {
		cache_path(c, e->keyed, ".map", path, sizeof(path));
		cache_unlink_quiet(path);
		cache_path(c, e->keyed, ".part", path, sizeof(path));
		cache_unlink_quiet(path);
	}
	c->evictions++;
	index_drop_locked(c, e);
}

/* Bytes available on the cache's filesystem; UINT64_MAX if unknown. */
static uint64_t cache_disk_avail(struct cache *c)
{
	struct statvfs sv;

	if (statvfs(c->dir, &sv) < 0)
		return UINT64_MAX;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/*
 * Evicts unheld blobs, least recently used first, until clean + dirty +
 * pending + need fits the limit and the disk has reserve + need free.
 * Returns whether both hold (false: everything left is held or dirty).
 */
static bool cache_make_room_locked(struct cache *c, uint64_t need)
{
	uint64_t avail = cache_disk_avail(c), freed = 0;
	uint64_t want_free = u64_sat_add(c->reserve, need);
	struct cache_entry *e = c->lru_tail;

	for (;;) {
		uint64_t used =
		    u64_sat_add(u64_sat_add(c->clean, c->dirty), u64_sat_add(c->pending, need));
		bool disk_ok = avail == UINT64_MAX || u64_sat_add(avail, freed) >= want_free;

		if (used <= c->size_limit && disk_ok)
			return true;
		while (e && e->blob)
			e = e->prev;
		if (!e)
			return false;
		struct cache_entry *prev = e->prev;

		freed += e->bytes;
		cache_evict_locked(c, e);
		e = prev;
	}
}

/* --- maps ----------------------------------------------------------------- */

/*
 * Reads the map at path for a blob of size bytes into bits (map_bytes of
 * its blocks; may be NULL) and counts its present bytes. -EINVAL if the map
 * is missing, short, of another size or not a map.
 */
static int cache_map_read(const char *path, uint64_t *size, unsigned char *bits, uint64_t *bytes)
{
	unsigned char hdr[CACHE_MAP_HEADER], *map = NULL;
	uint64_t sz = 0, nblocks, count = 0;
	size_t got = 0, mb;
	struct stat sb;
	int fd, ret = -EINVAL;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -EINVAL;
	if (pread_full(fd, hdr, sizeof(hdr), 0, &got) || got != sizeof(hdr) ||
	    memcmp(hdr, CACHE_MAP_MAGIC, 8) != 0 || fstat(fd, &sb) < 0)
		goto out;
	for (int i = 7; i >= 0; i--)
		sz = sz << 8 | hdr[8 + i];
	if (bits && sz != *size)
		goto out;
	nblocks = checksum_block_count(sz);
	mb = map_bytes(nblocks);
	if ((uint64_t)sb.st_size != CACHE_MAP_HEADER + mb || !(map = malloc(mb ? mb : 1)))
		goto out;
	if (pread_full(fd, map, mb, CACHE_MAP_HEADER, &got) || got != mb)
		goto out;
	for (uint64_t i = 0; i < nblocks; i++)
		if (bit_get(map, i))
			count += block_len(sz, i);
	if (bits)
		memcpy(bits, map, mb);
	*size = sz;
	*bytes = count;
	ret = 0;
out:
	free(map);
	close(fd);
	return ret;
}

/* Writes the map of a blob (bits of its blocks) through DIR/tmp and a rename. */
static int cache_map_write(struct cache *c, const unsigned char *keyed, uint64_t size,
			   const unsigned char *bits)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	size_t mb = map_bytes(checksum_block_count(size));
	unsigned char hdr[CACHE_MAP_HEADER];
	int fd, ret;

	memcpy(hdr, CACHE_MAP_MAGIC, 8);
	for (int i = 0; i < 8; i++)
		hdr[8 + i] = (unsigned char)(size >> (8 * i));
	snprintf(tmp, sizeof(tmp), "%s/tmp/map.%llu", c->dir,
		 (unsigned long long)atomic_fetch_add(&c->seq, 1));
	cache_path(c, keyed, ".map", path, sizeof(path));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		log_error("cache: cannot create %s: %s", tmp, strerror(errno));
		return ret;
	}
	ret = pwrite_full(fd, hdr, sizeof(hdr), 0);
	if (!ret)
		ret = pwrite_full(fd, bits, mb, CACHE_MAP_HEADER);
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret) {
		log_error("cache: cannot write the map %s: %s", path, strerror(-ret));
		unlink(tmp);
	}
	return ret;
}

/* --- live blobs ----------------------------------------------------------- */

static void blob_free(struct cache_blob *b)
{
	if (!b)
		return;
	if (b->fd >= 0)
		close(b->fd);
	pthread_cond_destroy(&b->cond);
	free(b->hashes);
	free(b->present);
	free(b->inflight);
	free(b);
}

/*
 * Makes what landed durable: a complete blob is synced, renamed to <hex>
 * and its map removed; a partial one gets its map (after the sync, so the
 * map never names a block a power cut could lose). Caller set b->persisting
 * and holds a reference or is the last putter; the lock is not held.
 */
static void blob_persist(struct cache_blob *b)
{
	struct cache *c = b->c;
	char part[PATH_MAX], path[PATH_MAX];
	unsigned char *bits = NULL;
	uint64_t landed;
	bool complete;

	pthread_mutex_lock(&c->lock);
	complete = b->npresent == b->nblocks;
	landed = b->landed;
	if (b->sealed || (!complete && landed == 0)) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (!complete && (bits = malloc(map_bytes(b->nblocks))))
		memcpy(bits, b->present, map_bytes(b->nblocks));
	pthread_mutex_unlock(&c->lock);
	if (!complete && !bits)
		return;
	if (fdatasync(b->fd) < 0) {
		log_error("cache: cannot sync the cached copy of %s: %s", b->key, strerror(errno));
		free(bits);
		return;
	}
	if (!complete) {
		if (cache_map_write(c, b->e->keyed, b->size, bits) == 0) {
			pthread_mutex_lock(&c->lock);
			b->landed -= landed;
			pthread_mutex_unlock(&c->lock);
		}
		free(bits);
		return;
	}
	cache_path(c, b->e->keyed, ".part", part, sizeof(part));
	cache_path(c, b->e->keyed, "", path, sizeof(path));
	pthread_mutex_lock(&c->lock);
	if (rename(part, path) < 0) {
		log_error("cache: cannot rename %s to %s: %s", part, path, strerror(errno));
	} else {
		b->sealed = true;
		b->e->complete = true;
		b->landed = 0;
		cache_path(c, b->e->keyed, ".map", part, sizeof(part));
		cache_unlink_quiet(part);
	}
	pthread_mutex_unlock(&c->lock);
}

/* A worker's map write every CACHE_MAP_EVERY blocks, and the seal of a complete blob. */
static void blob_maybe_persist(struct cache_blob *b)
{
	struct cache *c = b->c;
	bool go;

	pthread_mutex_lock(&c->lock);
	go = !b->persisting && !b->sealed &&
	     (b->landed >= CACHE_MAP_EVERY || b->npresent == b->nblocks);
	if (go)
		b->persisting = true;
	pthread_mutex_unlock(&c->lock);
	if (!go)
		return;
	blob_persist(b);
	pthread_mutex_lock(&c->lock);
	b->persisting = false;
	pthread_mutex_unlock(&c->lock);
}

/*
 * Creates the live blob of entry e (NULL: a blob new to the cache; an entry
 * is made). Opens or creates its file and loads its map. Returns 0, -ENOMEM,
 * or the errno of a file operation (logged).
 */
static int blob_new_locked(struct cache *c, struct store *st, struct cache_entry *e,
			   const unsigned char *keyed, uint64_t size, const unsigned char *blocks,
			   struct cache_blob **out)
{
	char path[PATH_MAX];
	struct cache_blob *b;
	uint64_t nblocks = checksum_block_count(size);
	size_t mb = map_bytes(nblocks);
	int ret;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->c = c;
	b->st = st;
	b->fd = -1;
	b->size = size;
	b->nblocks = nblocks;
	pthread_cond_init(&b->cond, NULL);
	store_blob_key(keyed, b->key);
	b->present = calloc(1, mb ? mb : 1);
	b->inflight = calloc(1, mb ? mb : 1);
	if (!b->present || !b->inflight)
		goto nomem;
	if (blocks && nblocks) {
		b->hashes = malloc((size_t)nblocks * CHECKSUM_BLOCK_HASH);
		if (!b->hashes)
			goto nomem;
		memcpy(b->hashes, blocks, (size_t)nblocks * CHECKSUM_BLOCK_HASH);
	}

	if (e && e->complete) {
		cache_path(c, keyed, "", path, sizeof(path));
		b->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (b->fd >= 0) {
			memset(b->present, 0xff, mb);
			b->npresent = nblocks;
			b->sealed = true;
			goto live;
		}
		log_warn("cache: cached blob %s vanished (%s); fetching it again", path,
			 strerror(errno));
		index_drop_locked(c, e);
		e = NULL;
	} else if (e) {
		uint64_t msize = size, bytes = 0;

		cache_path(c, keyed, ".part", path, sizeof(path));
		b->fd = open(path, O_RDWR | O_CLOEXEC);
		if (b->fd >= 0) {
			char map[PATH_MAX];

			cache_path(c, keyed, ".map", map, sizeof(map));
			if (cache_map_read(map, &msize, b->present, &bytes) < 0) {
				memset(b->present, 0, mb);
				bytes = 0;
			}
			for (uint64_t i = 0; i < nblocks; i++)
				b->npresent += bit_get(b->present, i);
			c->clean = c->clean - e->bytes + bytes;
			e->bytes = bytes;
			goto live;
		}
		index_drop_locked(c, e);
		e = NULL;
	}

	/* new to the cache: a sparse file of the blob's size, no map yet */
	cache_path(c, keyed, ".map", path, sizeof(path));
	cache_unlink_quiet(path);
	cache_path(c, keyed, ".part", path, sizeof(path));
	b->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (b->fd < 0 || ftruncate(b->fd, (off_t)size) < 0) {
		ret = -errno;
		log_error("cache: cannot create %s: %s", path, strerror(errno));
		if (b->fd >= 0)
			unlink(path);
		blob_free(b);
		return ret;
	}
	e = index_add_locked(c, keyed, size);
	if (!e) {
		unlink(path);
		goto nomem;
	}
live:
	b->e = e;
	b->refs = 1;
	e->blob = b;
	lru_touch_locked(c, e);
	*out = b;
	return 0;
nomem:
	blob_free(b);
	return -ENOMEM;
}

int cache_blob_get(struct cache *c, struct store *st, const unsigned char *keyed, uint64_t size,
		   const unsigned char *blocks, struct cache_blob **out)
{
	struct cache_entry *e;
	int ret;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	e = index_find_locked(c, keyed);
	if (e && e->size != size) {
		char key[STORE_BLOB_KEY_SIZE];

		store_blob_key(keyed, key);
		log_warn("cache: cached %s has %llu bytes where %llu were expected; dropped", key,
			 (unsigned long long)e->size, (unsigned long long)size);
		if (e->blob) {
			pthread_mutex_unlock(&c->lock);
			return -EIO;
		}
		cache_evict_locked(c, e);
		e = NULL;
	}
	if (e && e->blob) {
		struct cache_blob *b = e->blob;

		b->refs++;
		lru_touch_locked(c, e);
		pthread_mutex_unlock(&c->lock);
		*out = b;
		return 0;
	}
	ret = blob_new_locked(c, st, e, keyed, size, blocks, out);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

void cache_blob_put(struct cache_blob *b)
{
	struct cache *c;

	if (!b)
		return;
	c = b->c;
	pthread_mutex_lock(&c->lock);
	if (--b->refs > 0 || b->persisting) {
		/* a persister running for an earlier last put frees it */
		pthread_mutex_unlock(&c->lock);
		return;
	}
	b->persisting = true;
	pthread_mutex_unlock(&c->lock);

	futimens(b->fd, NULL); /* the mtime orders the LRU after a restart */
	blob_persist(b);

	pthread_mutex_lock(&c->lock);
	b->persisting = false;
	if (b->refs > 0) { /* got again meanwhile: still live */
		pthread_mutex_unlock(&c->lock);
		return;
	}
	b->e->blob = NULL;
	/*
	 * A held blob may have taken the cache over its limit (reads never
	 * fail for lack of room): back under it now, not at the next fetch.
	 * Only then: every reader's close comes here, and making room asks
	 * the filesystem for its free space.
	 */
	if (u64_sat_add(u64_sat_add(c->clean, c->dirty), c->pending) > c->size_limit)
		cache_make_room_locked(c, 0);
	pthread_cond_broadcast(&c->room); /* one more evictable blob */
	pthread_mutex_unlock(&c->lock);
	blob_free(b);
}

int cache_blob_fd(struct cache_blob *b)
{
	return b->fd;
}

/* --- fetching ------------------------------------------------------------- */

/*
 * Claims the first run of missing, unclaimed blocks in [first, last), at
 * most max of them: sets their in-flight bits. Returns the run's length
 * (0: none) and its start in *start.
 */
static uint64_t blob_claim_locked(struct cache_blob *b, uint64_t first, uint64_t last, uint64_t max,
				  uint64_t *start)
{
	uint64_t i = first, n = 0;

	while (i < last && (bit_get(b->present, i) || bit_get(b->inflight, i)))
		i++;
	while (i + n < last && n < max && !bit_get(b->present, i + n) &&
	       !bit_get(b->inflight, i + n)) {
		bit_set(b->inflight, i + n);
		n++;
	}
	*start = i;
	return n;
}

/*
 * Fetches the claimed blocks [first, first+n) (n <= CACHE_FETCH_CHUNK) with
 * one ranged GET into buf, verifies each, writes and marks present the good
 * ones, and releases the claim. Returns 0, -EIO if a block did not verify
 * (logged here), or the store's or the file's error.
 */
static int blob_fetch_run(struct cache_blob *b, uint64_t first, uint64_t n, char *buf)
{
	struct cache *c = b->c;
	uint64_t off = first * CACHE_BLOCK;
	size_t len = (size_t)u64_min(n * CACHE_BLOCK, b->size - off), got = 0;
	bool good[CACHE_FETCH_CHUNK] = {false};
	uint64_t nbad = 0;
	int ret;

	pthread_mutex_lock(&c->lock);
	cache_make_room_locked(c, len);
	c->pending += len;
	pthread_mutex_unlock(&c->lock);

	ret = store_get_range(b->st, b->key, off, len, buf, &got);
	if (!ret && got != len) {
		log_error("cache: the %s store returned %zu of %zu bytes of %s at %llu",
			  b->st->ops->name, got, len, b->key, (unsigned long long)off);
		ret = -EIO;
	}
	for (uint64_t i = 0; !ret && i < n; i++) {
		uint64_t blen = block_len(b->size, first + i);
		const char *p = buf + i * CACHE_BLOCK;

		if (checksum_block_verify(p, (size_t)blen, c->secret,
					  b->hashes + (first + i) * CHECKSUM_BLOCK_HASH) != 0) {
			log_error("cache: block %llu of %s from the %s store does not match its "
				  "hash; not served",
				  (unsigned long long)(first + i), b->key, b->st->ops->name);
			nbad++;
			continue;
		}
		ret = pwrite_full(b->fd, p, (size_t)blen, off + i * CACHE_BLOCK);
		if (ret)
			log_error("cache: cannot write block %llu of %s into the cache %s: %s",
				  (unsigned long long)(first + i), b->key, c->dir, strerror(-ret));
		else
			good[i] = true;
	}
	if (!ret && nbad)
		ret = -EIO;

	pthread_mutex_lock(&c->lock);
	c->pending -= len;
	c->bad += nbad;
	for (uint64_t i = 0; i < n; i++) {
		bit_clear(b->inflight, first + i);
		if (!good[i])
			continue;
		uint64_t blen = block_len(b->size, first + i);

		bit_set(b->present, first + i);
		b->npresent++;
		b->landed++;
		b->e->bytes += blen;
		c->clean += blen;
		c->fetched += blen;
	}
	if (ret)
		b->fetch_err = ret;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/*
 * Makes blocks [first, last) present: fetches the missing blocks nobody is
 * fetching, in runs of up to CACHE_FETCH_CHUNK, and waits for the others.
 * *missed is set when anything was missing. Returns 0 or a fetch's error
 * (a waiter gets the error of the fetch it waited for).
 */
static int blob_ensure(struct cache_blob *b, uint64_t first, uint64_t last, bool *missed)
{
	struct cache *c = b->c;
	char *buf = NULL;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		uint64_t i = first, start, n;

		while (i < last && bit_get(b->present, i))
			i++;
		if (i == last)
			break;
		*missed = true;
		if (!buf) {
			pthread_mutex_unlock(&c->lock);
			buf = malloc(
			    (size_t)(u64_min(last - first, CACHE_FETCH_CHUNK) * CACHE_BLOCK));
			pthread_mutex_lock(&c->lock);
			if (!buf) {
				ret = -ENOMEM;
				break;
			}
			continue;
		}
		n = blob_claim_locked(b, i, last, CACHE_FETCH_CHUNK, &start);
		if (n) {
			pthread_mutex_unlock(&c->lock);
			ret = blob_fetch_run(b, start, n, buf);
			pthread_mutex_lock(&c->lock);
			if (ret)
				break;
			continue;
		}
		/* block i is missing and someone else is fetching it */
		while (bit_get(b->inflight, i))
			pthread_cond_wait(&b->cond, &c->lock);
		if (!bit_get(b->present, i)) {
			ret = b->fetch_err ? b->fetch_err : -EIO;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	free(buf);
	return ret;
}

/*
 * Fetches the missing part of a blob without block hashes into its file
 * and verifies the keyed XXH3-128 of the whole; only then marks it present.
 * Caller set b->whole_busy (so nothing else changes the bitmaps).
 */
static int blob_fetch_whole(struct cache_blob *b)
{
	struct cache *c = b->c;
	unsigned char *bits;
	struct checksum sum;
	uint64_t need;
	bool bad = false;
	int ret = 0;

	bits = malloc(map_bytes(b->nblocks));
	if (!bits)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	memcpy(bits, b->present, map_bytes(b->nblocks));
	need = b->size - b->e->bytes;
	cache_make_room_locked(c, need);
	c->pending += need;
	pthread_mutex_unlock(&c->lock);

	for (uint64_t i = 0; !ret && i < b->nblocks;) {
		uint64_t j = i;

		if (bit_get(bits, i)) {
			i++;
			continue;
		}
		while (j < b->nblocks && !bit_get(bits, j))
			j++;
		ret = store_get_to_fd(b->st, b->key, i * CACHE_BLOCK,
				      u64_min(j * CACHE_BLOCK, b->size) - i * CACHE_BLOCK, b->fd);
		i = j;
	}
	if (!ret) { /* the store logged its own failure */
		ret = checksum_fd(b->fd, b->size, c->secret, &sum);
		if (ret)
			log_error("cache: cannot read back %s in the cache %s: %s", b->key, c->dir,
				  strerror(-ret));
		else if (memcmp(sum.keyed, b->e->keyed, 16) != 0)
			ret = -EBADMSG;
	}
	if (ret == -EBADMSG) {
		log_error("cache: %s from the %s store does not match its hash; not served", b->key,
			  b->st->ops->name);
		ret = -EIO;
		bad = true;
	}

	pthread_mutex_lock(&c->lock);
	c->pending -= need;
	if (!ret) {
		memset(b->present, 0xff, map_bytes(b->nblocks));
		b->landed += b->nblocks - b->npresent;
		b->npresent = b->nblocks;
		c->clean += need;
		c->fetched += need;
		b->e->bytes = b->size;
	} else {
		c->bad += bad;
		b->fetch_err = ret;
	}
	pthread_mutex_unlock(&c->lock);
	free(bits);
	return ret;
}

/* Makes a blob without block hashes wholly present (one whole fetch at a time). */
static int blob_ensure_whole(struct cache_blob *b, bool *missed)
{
	struct cache *c = b->c;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	while (b->npresent < b->nblocks) {
		*missed = true;
		if (b->whole_busy) {
			while (b->whole_busy)
				pthread_cond_wait(&b->cond, &c->lock);
			if (b->npresent < b->nblocks)
				ret = b->fetch_err ? b->fetch_err : -EIO;
			break;
		}
		b->whole_busy = true;
		pthread_mutex_unlock(&c->lock);
		ret = blob_fetch_whole(b);
		pthread_mutex_lock(&c->lock);
		b->whole_busy = false;
		pthread_cond_broadcast(&b->cond);
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/*
 * Queues background fetches of blocks [first, last) in chunks, skipping
 * chunks with nothing left to fetch. Each job holds a reference. Returns
 * the block up to which jobs were queued (less than last if the queue is
 * full).
 */
static uint64_t blob_queue_locked(struct cache_blob *b, uint64_t first, uint64_t last)
{
	struct cache *c = b->c;
	uint64_t i;

	for (i = first; i < last; i += CACHE_FETCH_CHUNK) {
		uint64_t end = u64_min(i + CACHE_FETCH_CHUNK, last), k = i;
		struct cache_job *j;

		while (k < end && (bit_get(b->present, k) || bit_get(b->inflight, k)))
			k++;
		if (k == end)
			continue;
		/* no thread would run it (not started): the readers fetch it */
		if (c->stopping || !c->nthreads || c->q_len >= CACHE_QUEUE_MAX ||
		    !(j = calloc(1, sizeof(*j))))
			return i;
		j->b = b;
		j->first = k;
		j->last = end;
		b->refs++;
		if (c->q_tail)
			c->q_tail->next = j;
		else
			c->q_head = j;
		c->q_tail = j;
		c->q_len++;
		pthread_cond_signal(&c->work);
	}
	return last;
}

/*
 * The read-ahead policy. A read that starts within a block of where the
 * stream's reads have reached (ra_next) and goes beyond it is sequential; a
 * read near it that does not go beyond (a re-read, or a request the kernel
 * sent earlier that arrives late) changes nothing; any other read resets
 * the window. A sequential read that comes within half a window of the end
 * of what was queued queues the next window (starting after the blocks the
 * reader fetches itself) and doubles it, up to CACHE_READAHEAD_MAX.
 */
static void blob_readahead_locked(struct cache_blob *b, uint64_t off, uint64_t end,
				  uint64_t last_block)
{
	uint64_t ahead, from, to;

	if (off + CACHE_BLOCK < b->ra_next || off > b->ra_next + CACHE_BLOCK) {
		b->ra_window = 0;
		b->ra_end = 0;
		b->ra_next = end;
		return;
	}
	if (end <= b->ra_next)
		return;
	b->ra_next = end;
	if (b->ra_window == 0)
		b->ra_window = CACHE_BLOCK;
	ahead = b->ra_end > end ? b->ra_end - end : 0;
	if (ahead >= b->ra_window / 2 || b->ra_end >= b->size)
		return;
	from = b->ra_end / CACHE_BLOCK > last_block ? b->ra_end / CACHE_BLOCK : last_block;
	to = checksum_block_count(u64_min(end + b->ra_window, b->size));
	if (from < to)
		to = blob_queue_locked(b, from, to);
	if (to * CACHE_BLOCK > b->ra_end)
		b->ra_end = u64_min(to * CACHE_BLOCK, b->size);
	b->ra_window = u64_min(b->ra_window * 2, CACHE_READAHEAD_MAX);
}

ssize_t cache_blob_read(struct cache_blob *b, void *buf, size_t len, uint64_t off)
{
	struct cache *c = b->c;
	uint64_t first, last;
	bool missed = false;
	size_t got = 0;
	int ret;

	if (off >= b->size || len == 0)
		return 0;
	len = (size_t)u64_min(u64_min(len, b->size - off), SSIZE_MAX);
	first = off / CACHE_BLOCK;
	last = (off + len - 1) / CACHE_BLOCK + 1;
	if (!b->hashes) {
		ret = blob_ensure_whole(b, &missed);
	} else {
		pthread_mutex_lock(&c->lock);
		blob_readahead_locked(b, off, off + len, last);
		pthread_mutex_unlock(&c->lock);
		ret = blob_ensure(b, first, last, &missed);
	}
	pthread_mutex_lock(&c->lock);
	if (missed)
		c->misses++;
	else
		c->hits++;
	lru_touch_locked(c, b->e);
	pthread_mutex_unlock(&c->lock);
	if (ret)
		return ret;
	ret = pread_full(b->fd, buf, len, off, &got);
	if (ret) {
		log_error("cache: cannot read the cached copy of %s in %s: %s", b->key, c->dir,
			  strerror(-ret));
		return ret;
	}
	return (ssize_t)got;
}

int cache_blob_fill(struct cache_blob *b, uint64_t len)
{
	struct cache *c = b->c;
	uint64_t last;
	bool missed = false;

	len = u64_min(len, b->size);
	if (len == 0)
		return 0;
	if (!b->hashes)
		return blob_ensure_whole(b, &missed);
	last = checksum_block_count(len);
	/* the pool fetches chunks in parallel while this thread fetches too */
	pthread_mutex_lock(&c->lock);
	if (last > CACHE_FETCH_CHUNK)
		blob_queue_locked(b, CACHE_FETCH_CHUNK, last);
	pthread_mutex_unlock(&c->lock);
	return blob_ensure(b, 0, last, &missed);
}

/* Fetches a job's range (claiming at start: a reader may have come first). */
static void cache_run_job(struct cache_job *j, char *buf)
{
	struct cache_blob *b = j->b;
	uint64_t start, n;

	for (;;) {
		pthread_mutex_lock(&b->c->lock);
		n = blob_claim_locked(b, j->first, j->last, CACHE_FETCH_CHUNK, &start);
		pthread_mutex_unlock(&b->c->lock);
		if (!n || blob_fetch_run(b, start, n, buf) != 0)
			break;
		j->first = start + n;
	}
	blob_maybe_persist(b);
}

static void *cache_fetch_main(void *arg)
{
	struct cache *c = arg;
	char *buf = malloc(CACHE_FETCH_CHUNK * CACHE_BLOCK);

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct cache_job *j;

		while (!c->stopping && !c->q_head)
			pthread_cond_wait(&c->work, &c->lock);
		if (c->stopping)
			break;
		j = c->q_head;
		c->q_head = j->next;
		if (!c->q_head)
			c->q_tail = NULL;
		c->q_len--;
		pthread_mutex_unlock(&c->lock);
		if (buf)
			cache_run_job(j, buf);
		cache_blob_put(j->b);
		free(j);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	free(buf);
	return NULL;
}

/* --- adopting committed files ------------------------------------------- */

int(cache_adopt)(struct cache *c, const char *path, const unsigned char *keyed, uint64_t size)
{
	char dst[PATH_MAX];
	struct cache_entry *e;
	bool added = false;
	int ret;

	cache_path(c, keyed, "", dst, sizeof(dst));
	pthread_mutex_lock(&c->lock);
	e = index_find_locked(c, keyed);
	if (e && (e->complete || e->blob)) {
		/* already cached, or partly and in use: the copy we have serves */
		lru_touch_locked(c, e);
		pthread_mutex_unlock(&c->lock);
		cache_unlink_quiet(path);
		return 0;
	}
	if (!e) {
		e = index_add_locked(c, keyed, size);
		if (!e) {
			pthread_mutex_unlock(&c->lock);
			cache_unlink_quiet(path);
			return -ENOMEM;
		}
		added = true;
	}
	if (rename(path, dst) < 0) {
		ret = -errno;
		log_error("cache: cannot rename %s to %s: %s", path, dst, strerror(errno));
		if (added)
			index_drop_locked(c, e);
		pthread_mutex_unlock(&c->lock);
		cache_unlink_quiet(path);
		return ret;
	}
	if (!added) { /* a partial copy nobody holds: the complete one replaces it */
		char old[PATH_MAX];

		cache_path(c, keyed, ".map", old, sizeof(old));
		cache_unlink_quiet(old);
		cache_path(c, keyed, ".part", old, sizeof(old));
		cache_unlink_quiet(old);
	}
	c->clean = c->clean - e->bytes + size;
	e->bytes = size;
	e->size = size;
	e->complete = true;
	lru_touch_locked(c, e);
	cache_make_room_locked(c, 0);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* --- dirty bytes and statistics ----------------------------------------- */

void cache_dirty_add(struct cache *c, int64_t delta)
{
	pthread_mutex_lock(&c->lock);
	if (delta < 0) {
		uint64_t d = (uint64_t)0 - (uint64_t)delta;

		if (d > c->dirty) {
			log_warn("cache %s: %llu dirty bytes released, only %llu counted", c->dir,
				 (unsigned long long)d, (unsigned long long)c->dirty);
			d = c->dirty;
		}
		c->dirty -= d;
		pthread_cond_broadcast(&c->room);
	} else {
		c->dirty += (uint64_t)delta;
		cache_make_room_locked(c, 0);
	}
	pthread_mutex_unlock(&c->lock);
}

static void timespec_add(struct timespec *t, double sec)
{
	long long ns = (long long)(sec * 1e9);

	t->tv_sec += (time_t)(ns / 1000000000LL);
	t->tv_nsec += (long)(ns % 1000000000LL);
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static bool timespec_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

int cache_dirty_reserve(struct cache *c, uint64_t bytes)
{
	struct timespec deadline, now, until;

	if (bytes == 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	timespec_add(&deadline, c->full_wait > 0 ? c->full_wait : 0);
	pthread_mutex_lock(&c->lock);
	for (;;) {
		uint64_t avail;

		cache_make_room_locked(c, bytes);
		avail = cache_disk_avail(c);
		if (u64_sat_add(c->dirty, bytes) <= c->size_limit &&
		    (avail == UINT64_MAX || avail >= u64_sat_add(c->reserve, bytes))) {
			c->dirty += bytes;
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!timespec_before(&now, &deadline))
			break;
		/* wake at the deadline, or sooner to look at the disk again */
		until = now;
		timespec_add(&until, CACHE_RECHECK_NS / 1e9);
		if (timespec_before(&deadline, &until))
			until = deadline;
		pthread_cond_timedwait(&c->room, &c->lock, &until);
	}
	log_warn("cache %s full: %llu dirty bytes of %llu, %llu more wanted; waited %.1f s", c->dir,
		 (unsigned long long)c->dirty, (unsigned long long)c->size_limit,
		 (unsigned long long)bytes, c->full_wait);
	pthread_mutex_unlock(&c->lock);
	return -ENOSPC;
}

void cache_stats(struct cache *c, struct cache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	out->clean = c->clean;
	out->dirty = c->dirty;
	out->limit = c->size_limit;
	out->blobs = c->nentries;
	out->hits = c->hits;
	out->misses = c->misses;
	out->fetched = c->fetched;
	out->evictions = c->evictions;
	out->bad = c->bad;
	pthread_mutex_unlock(&c->lock);
}

/* --- open, scan, close ---------------------------------------------------- */

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

/* Removes leftovers of a previous run from DIR/tmp. */
static void cache_clean_tmp(struct cache *c)
{
	char path[PATH_MAX];
	struct dirent *d;
	DIR *dp;

	snprintf(path, sizeof(path), "%s/tmp", c->dir);
	dp = opendir(path);
	if (!dp)
		return;
	while ((d = readdir(dp)))
		if (d->d_name[0] != '.')
			unlinkat(dirfd(dp), d->d_name, 0);
	closedir(dp);
}

static bool is_hex32(const char *s)
{
	for (int i = 0; i < 32; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* One file of DIR/blobs/xx seen by the scan: an entry, or cleaned up. */
static void cache_scan_file(struct cache *c, int dfd, const char *name)
{
	size_t len = strlen(name);
	unsigned char keyed[16];
	char hex[CHECKSUM_HEX_SIZE], path[PATH_MAX];
	struct cache_entry *e;
	struct stat sb;
	uint64_t size = 0, bytes = 0;

	if (len < 32 || !is_hex32(name))
		return;
	memcpy(hex, name, 32);
	hex[32] = '\0';
	if (checksum_parse_hex16(hex, keyed) < 0)
		return;
	if (len == 32) {
		if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
			return;
		size = (uint64_t)sb.st_size;
		bytes = size;
	} else if (strcmp(name + 32, ".part") == 0) {
		char map[64];

		snprintf(map, sizeof(map), "%s.map", hex);
		snprintf(path, sizeof(path), "%s/blobs/%.2s/%s", c->dir, hex, map);
		if (fstatat(dfd, hex, &sb, 0) == 0 ||
		    cache_map_read(path, &size, NULL, &bytes) < 0 ||
		    fstatat(dfd, name, &sb, 0) < 0 || (uint64_t)sb.st_size != size) {
			/* complete copy beside it, or no usable map: nothing here counts */
			unlinkat(dfd, name, 0);
			unlinkat(dfd, map, 0);
			return;
		}
	} else if (strcmp(name + 32, ".map") == 0) {
		char part[64];

		snprintf(part, sizeof(part), "%s.part", hex);
		if (fstatat(dfd, part, &sb, 0) < 0 && errno == ENOENT)
			unlinkat(dfd, name, 0); /* a map without its file */
		return;
	} else {
		return;
	}
	if (index_find_locked(c, keyed))
		return;
	e = index_add_locked(c, keyed, size);
	if (!e)
		return;
	e->complete = len == 32;
	e->bytes = bytes;
	e->used = sb.st_mtime;
	c->clean += bytes;
}

static int cache_entry_older(const void *a, const void *b)
{
	const struct cache_entry *x = *(struct cache_entry *const *)a;
	const struct cache_entry *y = *(struct cache_entry *const *)b;

	return (x->used > y->used) - (x->used < y->used);
}

/* Builds the index from DIR/blobs; the LRU ordered by the files' mtimes. */
static int cache_scan(struct cache *c, char *err, size_t errlen)
{
	struct cache_entry **all, *e;
	char path[PATH_MAX];
	size_t n = 0;

	for (int i = 0; i < 256; i++) {
		struct dirent *d;
		DIR *dp;

		snprintf(path, sizeof(path), "%s/blobs/%02x", c->dir, i);
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			int ret = -errno;

			snprintf(err, errlen, "cache %s: cannot create %s: %s", c->dir, path,
				 strerror(errno));
			return ret;
		}
		dp = opendir(path);
		if (!dp) {
			int ret = -errno;

			snprintf(err, errlen, "cache %s: cannot read %s: %s", c->dir, path,
				 strerror(errno));
			return ret;
		}
		while ((d = readdir(dp)))
			cache_scan_file(c, dirfd(dp), d->d_name);
		closedir(dp);
	}
	/* the scan pushed entries in directory order: reorder by last use */
	all = malloc((c->nentries ? c->nentries : 1) * sizeof(*all));
	if (!all) {
		snprintf(err, errlen, "cache %s: out of memory", c->dir);
		return -ENOMEM;
	}
	for (e = c->lru_head; e; e = e->next)
		all[n++] = e;
	qsort(all, n, sizeof(*all), cache_entry_older);
	c->lru_head = c->lru_tail = NULL;
	for (size_t i = 0; i < n; i++)
		lru_push_locked(c, all[i]);
	free(all);
	return 0;
}

/*
 * DIR/vault names the vault this cache belongs to: a one-way tag of the
 * vault's secret (SHA-256 of a label and the secret). Journal records name
 * inodes by number, and a number means another file in another vault: a
 * cache directory left by one vault and given to another must not replay
 * its journal there. A cache without the file (new, or made before it
 * existed) takes this vault's tag.
 */
static int cache_claim(struct cache *c, char *err, size_t errlen)
{
	static const char label[] = "docvault cache of vault ";
	unsigned char buf[sizeof(label) - 1 + CHECKSUM_SECRET_SIZE];
	char path[PATH_MAX], tmp[PATH_MAX], want[64], have[64] = "";
	struct checksum sum;
	ssize_t n;
	int fd, ret;

	memcpy(buf, label, sizeof(label) - 1);
	memcpy(buf + sizeof(label) - 1, c->secret, CHECKSUM_SECRET_SIZE);
	checksum_buf(buf, sizeof(buf), c->secret, &sum);
	checksum_hex16(sum.sha256, want);
	snprintf(path, sizeof(path), "%s/vault", c->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, have, sizeof(have) - 1);
		ret = n < 0 ? -errno : 0;
		close(fd);
		if (ret) {
			snprintf(err, errlen, "cache %s: cannot read %s: %s", c->dir, path,
				 strerror(-ret));
			return ret;
		}
		have[n] = '\0';
		have[strcspn(have, "\n")] = '\0';
		if (strcmp(have, want) == 0)
			return 0;
		snprintf(err, errlen,
			 "cache %s belongs to another vault (%s says %s, this vault is %s): its "
			 "journal may hold files not yet committed there. Mount that vault with "
			 "this cache to finish them, or give this vault its own [cache] dir",
			 c->dir, path, *have ? have : "nothing", want);
		return -EEXIST;
	}
	if (errno != ENOENT) {
		ret = -errno;
		snprintf(err, errlen, "cache %s: cannot read %s: %s", c->dir, path,
			 strerror(errno));
		return ret;
	}
	snprintf(tmp, sizeof(tmp), "%s/tmp/vault", c->dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ret = fd < 0 ? -errno : 0;
	if (!ret && (dprintf(fd, "%s\n", want) < 0 || fsync(fd) < 0))
		ret = errno ? -errno : -EIO;
	if (fd >= 0 && close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		snprintf(err, errlen, "cache %s: cannot write %s: %s", c->dir, path,
			 strerror(-ret));
	return ret;
}

int cache_open(const char *dir, uint64_t size_limit, uint64_t reserve, double full_wait,
	       const unsigned char *secret, struct cache **out, char *err, size_t errlen)
{
	static const char *const subs[] = {"", "staging", "blobs", "tmp"};
	char path[PATH_MAX];
	pthread_condattr_t ca;
	struct cache *c;
	int ret;

	*out = NULL;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		ret = cache_mkdir(dir, subs[i], err, errlen);
		if (ret)
			return ret;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->dir = strdup(dir)) ||
	    !(c->buckets = calloc(CACHE_INDEX_MIN, sizeof(*c->buckets)))) {
		if (c)
			free(c->dir);
		free(c);
		snprintf(err, errlen, "cache %s: out of memory", dir);
		return -ENOMEM;
	}
	c->nbuckets = CACHE_INDEX_MIN;
	c->lock_fd = -1;
	c->size_limit = size_limit;
	c->reserve = reserve;
	c->full_wait = full_wait;
	memcpy(c->secret, secret, CHECKSUM_SECRET_SIZE);
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->room, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&c->work, NULL);

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
	cache_clean_tmp(c);
	ret = cache_claim(c, err, errlen);
	if (ret)
		goto fail;
	ret = cache_scan(c, err, errlen);
	if (ret)
		goto fail;
	*out = c;
	return 0;
fail:
	cache_close(c);
	return ret;
}

int cache_start(struct cache *c, char *err, size_t errlen)
{
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	while (c->nthreads < CACHE_FETCH_THREADS) {
		ret = -pthread_create(&c->threads[c->nthreads], NULL, cache_fetch_main, c);
		if (ret) {
			snprintf(err, errlen, "cache %s: cannot start a fetch thread: %s", c->dir,
				 strerror(-ret));
			break;
		}
		c->nthreads++;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < c->nthreads; i++)
		pthread_join(c->threads[i], NULL);
	/* read-ahead nobody ran: drop it (the puts write the maps) */
	for (;;) {
		struct cache_job *j;

		pthread_mutex_lock(&c->lock);
		j = c->q_head;
		if (j) {
			c->q_head = j->next;
			c->q_len--;
		}
		pthread_mutex_unlock(&c->lock);
		if (!j)
			break;
		cache_blob_put(j->b);
		free(j);
	}
	for (size_t i = 0; c->buckets && i < c->nbuckets; i++) {
		struct cache_entry *e = c->buckets[i], *next;

		for (; e; e = next) {
			next = e->hnext;
			if (e->blob) {
				log_error("cache %s: blob %s still held at close", c->dir,
					  e->blob->key);
				continue; /* leaked rather than freed under its holder */
			}
			free(e);
		}
	}
	free(c->buckets);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	pthread_cond_destroy(&c->work);
	pthread_cond_destroy(&c->room);
	pthread_mutex_destroy(&c->lock);
	free(c->dir);
	free(c);
}

/* --- deprecated whole-file API (until fs/vfs.c uses the journal) -------- */

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

int cache_blob_open(struct cache *c, struct store *st, const unsigned char *keyed, uint64_t size,
		    int *fd)
{
	struct cache_blob *b;
	int ret;

	*fd = -1;
	ret = cache_blob_get(c, st, keyed, size, NULL, &b);
	if (ret)
		return ret;
	ret = cache_blob_fill(b, size);
	if (!ret) {
		*fd = fcntl(b->fd, F_DUPFD_CLOEXEC, 0);
		if (*fd < 0)
			ret = -errno;
	}
	cache_blob_put(b);
	return ret;
}

int cache_adopt_unsized(struct cache *c, const char *path, const unsigned char *keyed)
{
	struct stat sb;
	int ret;

	if (stat(path, &sb) < 0) {
		ret = -errno;
		log_error("cache: cannot stat %s: %s", path, strerror(errno));
		return ret;
	}
	return (cache_adopt)(c, path, keyed, (uint64_t)sb.st_size);
}
