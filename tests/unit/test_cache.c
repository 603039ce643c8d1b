/*
 * test_cache.c - the read cache of cache.h on the real local store, wrapped
 * in the fault-injecting decorator to count GETs, add latency and serve
 * corrupt bytes: partial reads fetch only the blocks they touch; sequential
 * reads start a read-ahead that runs in the background; readers of one
 * block share one GET; a corrupt block is -EIO and not kept (block hashes
 * and whole-blob verification); fill + fd; adopt; LRU eviction under a
 * small limit that never takes a held blob; dirty_reserve waits, then
 * ENOSPC, or succeeds when room is freed; a reopened cache knows its blobs
 * and their present blocks; the directory lock; the deprecated calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "docvault/cache.h"
#include "docvault/checksum.h"
#include "docvault/store.h"
#include "docvault/store_fault.h"

#define MIB (1u << 20)

struct fx {
	char base[256];	  /* everything of this test lives here */
	char root[300];	  /* the local store */
	struct store *st; /* the fault decorator around it */
	unsigned char secret[CHECKSUM_SECRET_SIZE];
	int ncache;
};

struct blob {
	char *data;
	size_t size;
	unsigned char keyed[16];
	unsigned char *blocks;
	char key[STORE_BLOB_KEY_SIZE];
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
	struct timespec t = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	nanosleep(&t, NULL);
}

static uint64_t gets(struct fx *fx)
{
	return store_fault_calls(fx->st, STORE_FAULT_GET_RANGE) +
	       store_fault_calls(fx->st, STORE_FAULT_GET_TO_FD);
}

/* Random content put in the store; its keyed hash and block hashes. */
static void blob_make(struct fx *fx, struct blob *b, size_t size, unsigned seed)
{
	char tmpl[300];
	struct checksum sum;
	size_t blen = 0;
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	int fd;

	memset(b, 0, sizeof(*b));
	b->size = size;
	b->data = malloc(size ? size : 1);
	CHECK(b->data != NULL);
	for (size_t i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b->data[i] = (char)x;
	}
	snprintf(tmpl, sizeof(tmpl), "%s/src.XXXXXX", fx->base);
	fd = mkstemp(tmpl);
	CHECK(fd >= 0);
	unlink(tmpl);
	CHECK_EQ(write(fd, b->data, size), (ssize_t)size);
	CHECK_EQ(checksum_fd_blocks(fd, size, fx->secret, &sum, &b->blocks, &blen), 0);
	CHECK_EQ(blen, checksum_block_count(size) * CHECKSUM_BLOCK_HASH);
	memcpy(b->keyed, sum.keyed, 16);
	store_blob_key(b->keyed, b->key);
	CHECK_EQ(store_put_fd(store_fault_inner(fx->st), b->key, fd, size, sum.sha256), 0);
	close(fd);
}

static void blob_free_test(struct blob *b)
{
	free(b->data);
	free(b->blocks);
}

/* Flips (and, called again, restores) one byte of the blob in the store. */
static void blob_flip(struct fx *fx, struct blob *b, uint64_t off)
{
	char path[400];
	unsigned char ch;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fx->root, b->key);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, &ch, 1, (off_t)off), 1);
	ch ^= 0x40;
	CHECK_EQ(pwrite(fd, &ch, 1, (off_t)off), 1);
	close(fd);
}

static struct cache *cache_new(struct fx *fx, char *dir, size_t dirlen, uint64_t limit,
			       uint64_t reserve)
{
	struct cache *c = NULL;
	char err[512];

	snprintf(dir, dirlen, "%s/cache%d", fx->base, fx->ncache++);
	CHECK_EQ(cache_open(dir, limit, reserve, 0.5, fx->secret, &c, err, sizeof(err)), 0);
	CHECK_EQ(cache_start(c, err, sizeof(err)), 0);
	return c;
}

/* Reads [off, off+len) through the cache and compares with the content. */
static bool read_ok(struct cache_blob *cb, const struct blob *b, uint64_t off, size_t len)
{
	char *buf = malloc(len ? len : 1);
	size_t want = off >= b->size ? 0 : (b->size - off < len ? b->size - off : len);
	ssize_t n = cache_blob_read(cb, buf, len, off);
	bool ok = n == (ssize_t)want && memcmp(buf, b->data + off, want) == 0;

	if (!ok)
		fprintf(stderr, "read_ok: read of %zu at %llu gave %zd\n", len,
			(unsigned long long)off, n);
	free(buf);
	return ok;
}

static void stats(struct cache *c, struct cache_stats *s)
{
	cache_stats(c, s);
}

/* Partial reads of a 20 MiB blob fetch exactly the blocks they touch. */
static void test_partial(struct fx *fx)
{
	char dir[300];
	struct cache *c = cache_new(fx, dir, sizeof(dir), 1ull << 30, 0);
	struct blob b;
	struct cache_blob *cb;
	struct cache_stats s;
	char buf[16];

	blob_make(fx, &b, 20 * MIB, 1);
	store_fault_reset(fx->st);
	CHECK_EQ(cache_blob_get(c, fx->st, b.keyed, b.size, b.blocks, &cb), 0);
	CHECK_EQ(gets(fx), 0);
	CHECK(read_ok(cb, &b, 5 * MIB + 10, 100));
	CHECK_EQ(gets(fx), 1);
	stats(c, &s);
	CHECK_EQ(s.fetched, MIB);
	CHECK_EQ(s.misses, 1);
	/* across a block boundary: two blocks in one GET */
	CHECK(read_ok(cb, &b, 12 * MIB - 50, 100));
	CHECK_EQ(gets(fx), 2);
	stats(c, &s);
	CHECK_EQ(s.fetched, 3 * MIB);
	/* present now: no GET */
	CHECK(read_ok(cb, &b, 5 * MIB + 500, 1000));
	CHECK(read_ok(cb, &b, 11 * MIB + 7, 4096));
	CHECK_EQ(gets(fx), 2);
	stats(c, &s);
	CHECK_EQ(s.hits, 2);
	CHECK_EQ(s.clean, 3 * MIB);
	/* the short last block, a read across the end, a read past it */
	CHECK(read_ok(cb, &b, 20 * MIB - 10, 100));
	CHECK_EQ(cache_blob_read(cb, buf, sizeof(buf), 20 * MIB), 0);
	CHECK_EQ(cache_blob_read(cb, buf, sizeof(buf), 30 * MIB), 0);
	sleep_ms(100); /* nothing runs in the background for random reads */
	CHECK_EQ(gets(fx), 3);
	stats(c, &s);
	CHECK_EQ(s.fetched, 4 * MIB);
	cache_blob_put(cb);
	cache_close(c);
	blob_free_test(&b);
}

/*
 * Sequential reads: the first bytes come after one block's GET, read-ahead
 * fetches further blocks in the background, nothing is fetched twice.
 */
static void test_readahead(struct fx *fx)
{
	char dir[300];
	struct cache *c = cache_new(fx, dir, sizeof(dir), 1ull << 30, 0);
	struct blob b, b2;
	struct cache_blob *cb;
	struct cache_stats s;
	uint64_t g;
	double t0;
	bool ok = true;

	blob_make(fx, &b, 20 * MIB, 2);
	store_fault_reset(fx->st);
	CHECK_EQ(cache_blob_get(c, fx->st, b.keyed, b.size, b.blocks, &cb), 0);
	CHECK(read_ok(cb, &b, 0, 128 * 1024));
	CHECK(read_ok(cb, &b, 128 * 1024, 128 * 1024));
	sleep_ms(300);
	stats(c, &s);
	CHECK(s.fetched >= 2 * MIB); /* block 1 came in the background */
	CHECK_EQ(s.misses, 1);
	for (uint64_t off = 256 * 1024; off < b.size; off += 128 * 1024)
		ok = ok && read_ok(cb, &b, off, 128 * 1024);
	CHECK(ok);
	sleep_ms(100);
	stats(c, &s);
	g = gets(fx);
	CHECK_EQ(s.fetched, 20 * MIB); /* each block once */
	CHECK(g < 20);		       /* read-ahead fetched several blocks per GET */
	CHECK(s.misses < 20);	       /* most reads found their block there */
	fprintf(stderr, "readahead: %llu GETs, %llu misses, %llu hits for 160 reads\n",
		(unsigned long long)g, (unsigned long long)s.misses, (unsigned long long)s.hits);
	cache_blob_put(cb);

	/* with a slow store, the first 128 KiB of a cold blob come after one GET */
	blob_make(fx, &b2, 20 * MIB, 3);
	store_fault_reset(fx->st);
	store_fault_set_latency(fx->st, STORE_FAULT_GET_RANGE, 300);
	CHECK_EQ(cache_blob_get(c, fx->st, b2.keyed, b2.size, b2.blocks, &cb), 0);
	t0 = now_s();
	CHECK(read_ok(cb, &b2, 0, 128 * 1024));
	CHECK(now_s() - t0 < 0.9);
	stats(c, &s);
	CHECK(s.fetched <= 20 * MIB + 2 * MIB);
	ok = true;
	for (uint64_t off = 128 * 1024; off < 4 * MIB; off += 128 * 1024)
		ok = ok && read_ok(cb, &b2, off, 128 * 1024);
	CHECK(ok);
	cache_blob_put(cb);
	store_fault_reset(fx->st);
	cache_close(c);
	blob_free_test(&b);
	blob_free_test(&b2);
}

struct reader {
	struct cache_blob *cb;
	const struct blob *b;
	uint64_t off;
	size_t len;
	bool ok;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	r->ok = read_ok(r->cb, r->b, r->off, r->len);
	return NULL;
}

/* Three readers of one block while its GET is slow: one GET. */
static void test_concurrent(struct fx *fx)
{
	char dir[300];
	struct cache *c = cache_new(fx, dir, sizeof(dir), 1ull << 30, 0);
	struct blob b;
	struct cache_blob *cb;
	struct reader r[3];
	pthread_t t[3];

	blob_make(fx, &b, 4 * MIB, 4);
	store_fault_reset(fx->st);
	store_fault_set_latency(fx->st, STORE_FAULT_GET_RANGE, 300);
	CHECK_EQ(cache_blob_get(c, fx->st, b.keyed, b.size, b.blocks, &cb), 0);
	for (int i = 0; i < 3; i++) {
		r[i] = (struct reader){cb, &b, 3 * MIB + 5 + (uint64_t)i * 1000, 1000, false};
		CHECK_EQ(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		CHECK(r[i].ok);
	}
	CHECK_EQ(store_fault_calls(fx->st, STORE_FAULT_GET_RANGE), 1);
	store_fault_reset(fx->st);
	cache_blob_put(cb);
	cache_close(c);
	blob_free_test(&b);
}

/* Many readers of one blob, sequential and not: right bytes, each block fetched once. */
struct streamer {
	struct cache_blob *cb;
	const struct blob *b;
	unsigned seed;
	bool ok;
};

static void *streamer_main(void *arg)
{
	struct streamer *s = arg;
	uint64_t off = (s->seed % 3) * 3 * MIB;

	s->ok = true;
	while (off < s->b->size && s->ok) {
		size_t len = 4096 * (1 + (s->seed * 7 + off / 4096) % 64);

		s->ok = read_ok(s->cb, s->b, off, len);
		off += len;
	}
	return NULL;
}

static void test_streams(struct fx *fx)
{
	char dir[300];
	struct cache *c = cache_new(fx, dir, sizeof(dir), 1ull << 30, 0);
	struct blob b;
	struct cache_blob *cb[4];
	struct streamer s[4];
	struct cache_stats st;
	pthread_t t[4];

	blob_make(fx, &b, 24 * MIB + 77, 5);
	store_fault_reset(fx->st);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(cache_blob_get(c, fx->st, b.keyed, b.size, b.blocks, &cb[i]), 0);
		CHECK(cb[i] == cb[0]); /* one shared object */
		s[i] = (struct streamer){cb[i], &b, (unsigned)i, false};
		CHECK_EQ(pthread_create(&t[i], NULL, streamer_main, &s[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK(s[i].ok);
	}
	sleep_ms(200);
	stats(c, &st);
	CHECK_EQ(st.fetched, 24 * MIB + 77);
	for (int i = 0; i < 4; i++)
		cache_blob_put(cb[i]);
	cache_close(c);
	blob_free_test(&b);
}

/* A corrupt block is -EIO, counted, not kept; a corrupt blob without block hashes too. */
static void test_corrupt(struct fx *fx)
{
	char dir[300];
	struct cache *c = cache_new(fx, dir, sizeof(dir), 1ull << 30, 0);
	struct blob b, w;
	struct cache_blob *cb;
	struct cache_stats s;
	char buf[100];

	blob_make(fx, &b, 3 * MIB, 6);
	blob_flip(fx, &b, MIB + MIB / 2);
	store_fault_reset(fx->st);
	CHECK_EQ(cache_blob_get(c, fx->st, b.keyed, b.size, b.blocks, &cb), 0);
	CHECK_EQ(cache_blob_read(cb, buf, sizeof(buf), MIB + 100), -EIO);
	stats(c, &s);
	CHECK_EQ(s.bad, 1);
	CHECK_EQ(s.clean, 0);
	CHECK_EQ(cache_blob_read(cb, buf, sizeof(buf), MIB + 100), -EIO);
	CHECK_EQ(gets(fx), 2); /* not kept: fetched again */
	/* the store is repaired: the block is served */
	blob_flip(fx, &b, MIB + MIB / 2);
	CHECK(read_ok(cb, &b, MIB + 100, 100));
	CHECK(read_ok(cb, &b, 10, 100));
	stats(c, &s);
	CHECK_EQ(s.clean, 2 * MIB);
	cache_blob_put(cb);

	/* no block hashes: the whole blob is fetched and verified first */
	blob_make(fx, &w, 2 * MIB + 500, 7);
	blob_flip(fx, &w, 2 * MIB + 3);
	store_fault_reset(fx->st);
	CHECK_EQ(cache_blob_get(c, fx->st, w.keyed, w.size, NULL, &cb), 0);
	CHECK_EQ(cache_blob_read(cb, buf, sizeof(buf), 0), -EIO);
	CHECK_EQ(cache_blob_fill(cb, 10), -EIO);
	stats(c, &s);
	CHECK_EQ(s.bad, 4);
	CHECK_EQ(s.clean, 2 * MIB);
	blob_flip(fx, &w, 2 * MIB + 3);
	CHECK(read_ok(cb, &w, 0, 100));
	CHECK(read_ok(cb, &w, 2 * MIB, 500));
	stats(c, &s);
	CHECK_EQ(s.clean, 4 * MIB + 500);
	CHECK_EQ(s.fetched, 4 * MIB + 500);
	cache_blob_put(cb);
	cache_close(c);
	blob_free_test(&b);
	blob_free_test(&w);
}

/* fill makes a prefix present, readable through the borrowed fd. */
static void test_fill(struct fx *fx)
{
	char dir[300];
	struct cache *c = cache_new(fx, dir, sizeof(dir), 1ull << 30, 0);
	struct blob b;
	struct cache_blob *cb;
	struct cache_stats s;
	size_t len = 3 * MIB + 3;
	char *buf = malloc(12 * MIB);
	int fd;

	blob_make(fx, &b, 11 * MIB + MIB / 2, 8);
	store_fault_reset(fx->st);
	CHECK_EQ(cache_blob_get(c, fx->st, b.keyed, b.size, b.blocks, &cb), 0);
	CHECK_EQ(cache_blob_fill(cb, len), 0);
	stats(c, &s);
	CHECK_EQ(s.fetched, 4 * MIB);
	fd = cache_blob_fd(cb);
	CHECK_EQ(pread(fd, buf, len, 0), (ssize_t)len);
	CHECK(memcmp(buf, b.data, len) == 0);
	/* the whole blob, in parallel chunks */
	CHECK_EQ(cache_blob_fill(cb, UINT64_MAX), 0);
	stats(c, &s);
	CHECK_EQ(s.fetched, b.size);
	CHECK_EQ(pread(fd, buf, b.size, 0), (ssize_t)b.size);
	CHECK(memcmp(buf, b.data, b.size) == 0);
	CHECK_EQ(cache_blob_fill(cb, 0), 0);
	cache_blob_put(cb);
	cache_close(c);
	blob_free_test(&b);
	free(buf);
}

static void write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0);
	CHECK_EQ(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* A committed local file becomes the cached blob; a second copy is dropped. */
static void test_adopt(struct fx *fx)
{
	char dir[300], path[400], path2[400];
	struct cache *c = cache_new(fx, dir, sizeof(dir), 1ull << 30, 0);
	struct blob b, e;
	struct cache_blob *cb;
	struct cache_stats s;
	struct stat sb;

	blob_make(fx, &b, 2 * MIB + 9, 9);
	snprintf(path, sizeof(path), "%s/staging/one", dir);
	write_file(path, b.data, b.size);
	CHECK_EQ(cache_adopt(c, path, b.keyed, b.size), 0);
	CHECK_EQ(stat(path, &sb), -1);
	stats(c, &s);
	CHECK_EQ(s.clean, b.size);
	CHECK_EQ(s.blobs, 1);
	store_fault_reset(fx->st);
	CHECK_EQ(cache_blob_get(c, fx->st, b.keyed, b.size, b.blocks, &cb), 0);
	CHECK(read_ok(cb, &b, 0, b.size));
	CHECK_EQ(gets(fx), 0);
	/* adopted while held: the copy there serves, the file goes */
	snprintf(path2, sizeof(path2), "%s/staging/two", dir);
	write_file(path2, b.data, b.size);
	CHECK_EQ(cache_adopt(c, path2, b.keyed, b.size), 0);
	CHECK_EQ(stat(path2, &sb), -1);
	cache_blob_put(cb);
	stats(c, &s);
	CHECK_EQ(s.clean, b.size);
	/* the deprecated three-argument form (the size from the file) */
	blob_make(fx, &e, 1000, 10);
	write_file(path, e.data, e.size);
	CHECK_EQ(cache_adopt(c, path, e.keyed), 0);
	stats(c, &s);
	CHECK_EQ(s.clean, b.size + 1000);
	/* a partial copy nobody holds is replaced by the complete file */
	{
		struct blob p;

		blob_make(fx, &p, 3 * MIB, 11);
		CHECK_EQ(cache_blob_get(c, fx->st, p.keyed, p.size, p.blocks, &cb), 0);
		CHECK(read_ok(cb, &p, 2 * MIB + 1, 10));
		cache_blob_put(cb);
		write_file(path, p.data, p.size);
		CHECK_EQ(cache_adopt(c, path, p.keyed, p.size), 0);
		stats(c, &s);
		CHECK_EQ(s.clean, b.size + 1000 + 3 * MIB);
		store_fault_reset(fx->st);
		CHECK_EQ(cache_blob_get(c, fx->st, p.keyed, p.size, p.blocks, &cb), 0);
		CHECK(read_ok(cb, &p, 0, p.size));
		CHECK_EQ(gets(fx), 0);
		cache_blob_put(cb);
		blob_free_test(&p);
	}
	cache_close(c);
	blob_free_test(&b);
	blob_free_test(&e);
}

/* Fills and puts a blob (so it is cached and evictable). */
static void load(struct fx *fx, struct cache *c, struct blob *b)
{
	struct cache_blob *cb;

	CHECK_EQ(cache_blob_get(c, fx->st, b->keyed, b->size, b->blocks, &cb), 0);
	CHECK_EQ(cache_blob_fill(cb, b->size), 0);
	cache_blob_put(cb);
}

/* Reads the whole blob and returns how many GETs that took. */
static uint64_t gets_to_read(struct fx *fx, struct cache *c, struct blob *b)
{
	struct cache_blob *cb;
	uint64_t before = gets(fx);

	CHECK_EQ(cache_blob_get(c, fx->st, b->keyed, b->size, b->blocks, &cb), 0);
	CHECK(read_ok(cb, b, 0, b->size));
	cache_blob_put(cb);
	return gets(fx) - before;
}

/* LRU eviction keeps clean bytes under the limit and never takes a held blob. */
static void test_evict(struct fx *fx)
{
	char dir[300], path[400], hex[CHECKSUM_HEX_SIZE];
	struct cache *c = cache_new(fx, dir, sizeof(dir), 8 * MIB, 0);
	struct blob x[4];
	struct cache_blob *held, *cb;
	struct cache_stats s;
	struct stat sb;

	for (int i = 0; i < 4; i++)
		blob_make(fx, &x[i], 3 * MIB, 20 + (unsigned)i);
	load(fx, c, &x[0]);
	load(fx, c, &x[1]);
	/* x0 read again: x1 is now the least recently used */
	CHECK_EQ(cache_blob_get(c, fx->st, x[0].keyed, x[0].size, x[0].blocks, &cb), 0);
	CHECK(read_ok(cb, &x[0], 5, 5));
	cache_blob_put(cb);
	load(fx, c, &x[2]);
	stats(c, &s);
	CHECK(s.clean <= 8 * MIB);
	CHECK_EQ(s.evictions, 1);
	CHECK_EQ(s.blobs, 2);
	/* its files are gone */
	checksum_hex16(x[1].keyed, hex);
	snprintf(path, sizeof(path), "%s/blobs/%.2s/%s", dir, hex, hex);
	CHECK_EQ(stat(path, &sb), -1);
	snprintf(path, sizeof(path), "%s/blobs/%.2s/%s.part", dir, hex, hex);
	CHECK_EQ(stat(path, &sb), -1);
	store_fault_reset(fx->st);
	CHECK_EQ(gets_to_read(fx, c, &x[0]), 0); /* survived */
	CHECK_EQ(gets_to_read(fx, c, &x[2]), 0);
	CHECK(gets_to_read(fx, c, &x[1]) > 0); /* was evicted; now back, x2 out */
	stats(c, &s);
	CHECK(s.clean <= 8 * MIB);
	CHECK_EQ(s.evictions, 2);

	/* a held blob stays whatever else is read */
	CHECK_EQ(cache_blob_get(c, fx->st, x[3].keyed, x[3].size, x[3].blocks, &held), 0);
	CHECK_EQ(cache_blob_fill(held, x[3].size), 0);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 3; i++) {
			load(fx, c, &x[i]);
			stats(c, &s);
			CHECK(s.clean <= 8 * MIB);
		}
	store_fault_reset(fx->st);
	CHECK(read_ok(held, &x[3], 0, x[3].size));
	CHECK_EQ(gets(fx), 0);
	cache_blob_put(held);
	stats(c, &s);
	CHECK(s.evictions >= 6);
	cache_close(c);
	for (int i = 0; i < 4; i++)
		blob_free_test(&x[i]);
}

struct freer {
	struct cache *c;
	int64_t bytes;
};

static void *freer_main(void *arg)
{
	struct freer *f = arg;

	sleep_ms(100);
	cache_dirty_add(f->c, -f->bytes);
	return NULL;
}

/* Writers' reservations: evict clean, wait, ENOSPC, or succeed when freed. */
static void test_dirty(struct fx *fx)
{
	char dir[300];
	struct cache *c = cache_new(fx, dir, sizeof(dir), 8 * MIB, 0), *full;
	struct blob e;
	struct cache_stats s;
	struct freer f = {c, 6 * MIB};
	pthread_t t;
	double t0, dt;

	blob_make(fx, &e, 3 * MIB, 30);
	load(fx, c, &e);
	stats(c, &s);
	CHECK_EQ(s.clean, 3 * MIB);
	CHECK_EQ(cache_dirty_reserve(c, 6 * MIB), 0); /* evicts the clean blob */
	stats(c, &s);
	CHECK_EQ(s.clean, 0);
	CHECK_EQ(s.dirty, 6 * MIB);
	t0 = now_s();
	CHECK_EQ(cache_dirty_reserve(c, 4 * MIB), -ENOSPC);
	dt = now_s() - t0;
	CHECK(dt >= 0.45 && dt < 2.0);
	/* room freed by a commit while the writer waits */
	CHECK_EQ(pthread_create(&t, NULL, freer_main, &f), 0);
	t0 = now_s();
	CHECK_EQ(cache_dirty_reserve(c, 4 * MIB), 0);
	dt = now_s() - t0;
	CHECK(dt >= 0.05 && dt < 0.45);
	pthread_join(t, NULL);
	stats(c, &s);
	CHECK_EQ(s.dirty, 4 * MIB);
	CHECK_EQ(cache_dirty_reserve(c, 0), 0);
	cache_dirty_add(c, -4 * (int64_t)MIB);
	stats(c, &s);
	CHECK_EQ(s.dirty, 0);
	cache_close(c);

	/* a disk that cannot keep the reserve: ENOSPC after the wait; reads still work */
	full = cache_new(fx, dir, sizeof(dir), 1ull << 40, 1ull << 60);
	t0 = now_s();
	CHECK_EQ(cache_dirty_reserve(full, 1), -ENOSPC);
	CHECK(now_s() - t0 >= 0.45);
	CHECK_EQ(gets_to_read(fx, full, &e) > 0, 1);
	cache_close(full);
	blob_free_test(&e);
}

/* Close and reopen: the index is rebuilt, present blocks are known. */
static void test_reopen(struct fx *fx)
{
	char dir[300], path[400], err[512];
	struct cache *c = cache_new(fx, dir, sizeof(dir), 1ull << 30, 0), *c2 = NULL;
	struct blob p, q;
	struct cache_blob *cb;
	struct cache_stats s;
	struct stat sb;
	char hex[CHECKSUM_HEX_SIZE];

	blob_make(fx, &p, 20 * MIB, 40);
	blob_make(fx, &q, 2 * MIB, 41);
	CHECK_EQ(cache_blob_get(c, fx->st, p.keyed, p.size, p.blocks, &cb), 0);
	CHECK(read_ok(cb, &p, 5 * MIB + 7, 100));
	CHECK(read_ok(cb, &p, 15 * MIB + 7, 100));
	cache_blob_put(cb);
	load(fx, c, &q);
	/* the lock: a second open of the directory is refused, naming it */
	CHECK_EQ(cache_open(dir, 1ull << 30, 0, 0.5, fx->secret, &c2, err, sizeof(err)), -EBUSY);
	CHECK(c2 == NULL);
	CHECK(strstr(err, dir) != NULL);
	cache_close(c);
	/* another vault's secret: refused, naming the directory and the tag file */
	{
		unsigned char other[CHECKSUM_SECRET_SIZE];

		memcpy(other, fx->secret, sizeof(other));
		other[0] ^= 1;
		CHECK_EQ(cache_open(dir, 1ull << 30, 0, 0.5, other, &c2, err, sizeof(err)),
			 -EEXIST);
		CHECK(c2 == NULL);
		CHECK(strstr(err, dir) != NULL);
		CHECK(strstr(err, "another vault") != NULL);
		snprintf(path, sizeof(path), "%s/vault", dir);
		CHECK_EQ(stat(path, &sb), 0);
	}

	checksum_hex16(p.keyed, hex);
	snprintf(path, sizeof(path), "%s/blobs/%.2s/%s.part", dir, hex, hex);
	CHECK_EQ(stat(path, &sb), 0);
	CHECK(sb.st_blocks * 512 < 8 * MIB); /* sparse */
	snprintf(path, sizeof(path), "%s/blobs/%.2s/%s.map", dir, hex, hex);
	CHECK_EQ(stat(path, &sb), 0);
	checksum_hex16(q.keyed, hex);
	snprintf(path, sizeof(path), "%s/blobs/%.2s/%s", dir, hex, hex);
	CHECK_EQ(stat(path, &sb), 0); /* complete: no map */
	snprintf(path, sizeof(path), "%s/blobs/%.2s/%s.map", dir, hex, hex);
	CHECK_EQ(stat(path, &sb), -1);

	CHECK_EQ(cache_open(dir, 1ull << 30, 0, 0.5, fx->secret, &c, err, sizeof(err)), 0);
	stats(c, &s);
	CHECK_EQ(s.blobs, 2);
	CHECK_EQ(s.clean, 2 * MIB + 2 * MIB);
	store_fault_reset(fx->st);
	CHECK_EQ(cache_blob_get(c, fx->st, p.keyed, p.size, p.blocks, &cb), 0);
	CHECK(read_ok(cb, &p, 5 * MIB + 9, 100));
	CHECK(read_ok(cb, &p, 15 * MIB + 9, 100));
	CHECK_EQ(gets(fx), 0);
	CHECK(read_ok(cb, &p, 9 * MIB + 1, 100));
	CHECK_EQ(gets(fx), 1);
	cache_blob_put(cb);
	CHECK_EQ(gets_to_read(fx, c, &q), 0);
	cache_close(c);

	/* a crash leftover: a .part without a map counts for nothing and goes */
	checksum_hex16(p.keyed, hex);
	snprintf(path, sizeof(path), "%s/blobs/%.2s/%s.map", dir, hex, hex);
	CHECK_EQ(unlink(path), 0);
	CHECK_EQ(cache_open(dir, 1ull << 30, 0, 0.5, fx->secret, &c, err, sizeof(err)), 0);
	stats(c, &s);
	CHECK_EQ(s.blobs, 1);
	CHECK_EQ(s.clean, 2 * MIB);
	snprintf(path, sizeof(path), "%s/blobs/%.2s/%s.part", dir, hex, hex);
	CHECK_EQ(stat(path, &sb), -1);
	cache_close(c);
	blob_free_test(&p);
	blob_free_test(&q);
}

/* The deprecated whole-file calls fs/vfs.c still uses. */
static void test_deprecated(struct fx *fx)
{
	char dir[300];
	struct cache *c = cache_new(fx, dir, sizeof(dir), 1ull << 30, 0);
	struct blob b;
	char *buf, *path = NULL;
	int fd = -1;

	blob_make(fx, &b, MIB + 17, 50);
	buf = malloc(b.size);
	CHECK_EQ(cache_blob_open(c, fx->st, b.keyed, b.size, &fd), 0);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, buf, b.size, 0), (ssize_t)b.size);
	CHECK(memcmp(buf, b.data, b.size) == 0);
	close(fd);
	CHECK_EQ(cache_staging_new(c, 7, &fd, &path), 0);
	CHECK(path && strstr(path, "/staging/7.") != NULL);
	close(fd);
	unlink(path);
	free(path);
	/* an empty blob */
	{
		struct blob z;

		blob_make(fx, &z, 0, 51);
		CHECK_EQ(cache_blob_open(c, fx->st, z.keyed, 0, &fd), 0);
		CHECK_EQ(read(fd, buf, 1), 0);
		close(fd);
		blob_free_test(&z);
	}
	cache_close(c);
	blob_free_test(&b);
	free(buf);
}

/*
 * A daemon opens its cache, forks, and serves from the child, which has
 * none of the parent's threads: read-ahead needs cache_start() there.
 * Before it, a read fetches only what it reads and queues nothing (a job no
 * thread runs would pin the blob for good); after it, in the child,
 * read-ahead runs.
 */
static void test_fork_start(struct fx *fx)
{
	char dir[300], err[512];
	struct cache *c = NULL;
	struct cache_blob *cb;
	struct cache_stats s;
	struct blob b;
	int status = -1;
	pid_t pid;

	blob_make(fx, &b, 20 * MIB, 5);
	snprintf(dir, sizeof(dir), "%s/cache%d", fx->base, fx->ncache++);
	CHECK_EQ(cache_open(dir, 1ull << 30, 0, 0.5, fx->secret, &c, err, sizeof(err)), 0);
	CHECK_EQ(cache_blob_get(c, fx->st, b.keyed, b.size, b.blocks, &cb), 0);
	CHECK(read_ok(cb, &b, 0, 128 * 1024));
	CHECK(read_ok(cb, &b, 128 * 1024, 128 * 1024));
	sleep_ms(300);
	stats(c, &s);
	CHECK_EQ(s.fetched, 1 * MIB); /* not started: no read-ahead */
	cache_blob_put(cb);

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK_EQ(cache_start(c, err, sizeof(err)), 0);
		CHECK_EQ(cache_blob_get(c, fx->st, b.keyed, b.size, b.blocks, &cb), 0);
		CHECK(read_ok(cb, &b, 1 * MIB, 128 * 1024));
		CHECK(read_ok(cb, &b, 1 * MIB + 128 * 1024, 128 * 1024));
		sleep_ms(300);
		stats(c, &s);
		CHECK(s.fetched >= 3 * MIB); /* the child's threads fetched ahead */
		cache_blob_put(cb);
		cache_close(c);
		_exit(check_failed_count ? 1 : 0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cache_close(c);
	blob_free_test(&b);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	struct fx fx = {0};
	struct store *inner;
	char err[512], cmd[400];

	snprintf(fx.base, sizeof(fx.base), "%s/test_cache.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	CHECK(mkdtemp(fx.base) != NULL);
	snprintf(fx.root, sizeof(fx.root), "%s/store", fx.base);
	CHECK_EQ(checksum_new_secret(fx.secret), 0);
	CHECK_EQ(store_local_open(fx.root, &inner, err, sizeof(err)), 0);
	CHECK_EQ(store_fault_open(inner, &fx.st), 0);

	test_partial(&fx);
	test_readahead(&fx);
	test_fork_start(&fx);
	test_concurrent(&fx);
	test_streams(&fx);
	test_corrupt(&fx);
	test_fill(&fx);
	test_adopt(&fx);
	test_evict(&fx);
	test_dirty(&fx);
	test_reopen(&fx);
	test_deprecated(&fx);

	store_close(fx.st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.base);
	CHECK_EQ(system(cmd), 0);
	return test_done();
}
