/*
 * test_journal.c - the write-back journal of journal.h and its log of small
 * records, through the public API plus what a crash leaves behind, made by
 * hand in the journal directory (sealed files truncated, deleted, garbled
 * or renamed back to ".open"; log segments with a torn tail): sealing (file,
 * mtime, log segment, seen by journal_scan from another process); recovery
 * rewrites every logged record with its bytes and mtime and removes the old
 * segments; done marks (forget, release) keep a record from coming back,
 * also when the segment that holds the mark was tidied away; a torn tail
 * ends the log; records above JLOG_RECORD_MAX take the fsync path; a
 * segment past JLOG_SEGMENT_MAX is followed by a new one and tidied when
 * nothing in it is pending; only the newest version of an inode survives;
 * concurrent seals (group commit) are all durable; an mtime set after the
 * seal survives; mtimes before 1970.
 *
 * Everything lives in a mkdtemp directory under /tmp, removed at the end.
 * No servers. The log's limits are private (backend/journal_log.h): they are
 * mirrored here and must follow it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "docvault/journal.h"
#include "docvault/log.h"

#define KIB 1024u
/* JLOG_RECORD_MAX and JLOG_SEGMENT_MAX of backend/journal_log.h */
#define T_RECORD_MAX  (256u << 10)
#define T_SEGMENT_MAX (32u << 20)
#define T_THREADS     4
#define T_PER_THREAD  200

struct fx {
	char base[256]; /* everything of this test lives here */
	int ncache;
};

/* A record as the test sealed it: its bytes are fill(size, salt). */
struct rec {
	uint64_t ino, seq;
	char *path; /* sealed path, malloc'ed */
	size_t size;
	uint32_t salt;
	int64_t mtime;
};

/* What a journal_recover()/journal_scan() callback saw. */
struct seen_e {
	uint64_t ino, seq, size;
	int64_t mtime;
	char *path;
	char *error;
};

struct seen {
	struct seen_e *e;
	size_t n, cap;
};

/* ---- helpers ---- */

static void fill(unsigned char *buf, size_t size, uint32_t salt)
{
	uint32_t x = salt * 2654435761u + 0x9e3779b9u;

	for (size_t i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A new, empty cache directory under the fixture's base. */
static void fx_cache(struct fx *fx, char *buf, size_t len)
{
	snprintf(buf, len, "%s/cache%d", fx->base, fx->ncache++);
	if (mkdir(buf, 0700) < 0)
		fprintf(stderr, "cannot create %s: %s\n", buf, strerror(errno));
}

static struct journal *jopen(const char *cache)
{
	struct journal *j = NULL;
	char err[256] = "";
	int ret = journal_open(cache, &j, err, sizeof(err));

	CHECK_EQ(ret, 0);
	if (ret)
		fprintf(stderr, "journal_open(%s): %s\n", cache, err);
	return j;
}

static bool parse_ids(const char *path, uint64_t *ino, uint64_t *seq)
{
	const char *base = strrchr(path, '/');
	char tail;

	return sscanf(base ? base + 1 : path, "%" SCNu64 ".%" SCNu64 "%c", ino, seq, &tail) == 2;
}

/* Writes a staging file for ino with fill(size, salt) and seals it. */
static int seal_one(struct journal *j, uint64_t ino, size_t size, uint32_t salt, int64_t mtime,
		    struct rec *r)
{
	unsigned char *buf = malloc(size ? size : 1);
	char *path = NULL;
	int fd = -1, ret;

	memset(r, 0, sizeof(*r));
	if (!buf)
		return -ENOMEM;
	fill(buf, size, salt);
	ret = journal_staging_new(j, ino, &fd, &path);
	if (ret) {
		free(buf);
		return ret;
	}
	if (pwrite(fd, buf, size, 0) != (ssize_t)size)
		ret = -EIO;
	free(buf);
	if (!ret)
		ret = journal_seal(j, fd, &path, size, mtime);
	close(fd);
	if (ret) {
		unlink(path);
		free(path);
		return ret;
	}
	*r = (struct rec){.ino = ino, .size = size, .salt = salt, .mtime = mtime, .path = path};
	if (!parse_ids(path, &r->ino, &r->seq) || r->ino != ino)
		return -EINVAL;
	return 0;
}

/* True when the file at path holds exactly fill(size, salt). */
static bool file_is(const char *path, size_t size, uint32_t salt)
{
	unsigned char *want = malloc(size + 1), *got = malloc(size + 1);
	struct stat st;
	bool same = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && want && got && fstat(fd, &st) == 0 && (uint64_t)st.st_size == size &&
	    pread(fd, got, size + 1, 0) == (ssize_t)size) {
		fill(want, size, salt);
		same = memcmp(want, got, size) == 0;
	}
	if (fd >= 0)
		close(fd);
	free(want);
	free(got);
	return same;
}

static int64_t file_mtime(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return INT64_MIN;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Counts the log segments in DIR/journal; their total size in *total. */
static int log_segments(const char *cache, uint64_t *total)
{
	char dir[512], path[800];
	struct dirent *de;
	int n = 0;
	DIR *d;

	if (total)
		*total = 0;
	snprintf(dir, sizeof(dir), "%s/journal", cache);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		struct stat st;

		if (strncmp(de->d_name, "log.", 4) != 0)
			continue;
		n++;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (total && stat(path, &st) == 0)
			*total += (uint64_t)st.st_size;
	}
	closedir(d);
	return n;
}

/* Counts the files in DIR/journal whose name ends with suffix. */
static int count_suffix(const char *cache, const char *suffix)
{
	char dir[512];
	struct dirent *de;
	size_t sl = strlen(suffix);
	int n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/journal", cache);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len > sl && strcmp(de->d_name + len - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static void seg_path(const char *cache, uint64_t n, char *buf, size_t len)
{
	snprintf(buf, len, "%s/journal/log.%" PRIu64, cache, n);
}

static int collect(void *arg, const struct journal_entry *e)
{
	struct seen *s = arg;

	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct seen_e *ne = realloc(s->e, ncap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		s->e = ne;
		s->cap = ncap;
	}
	s->e[s->n++] = (struct seen_e){.ino = e->ino,
				       .seq = e->seq,
				       .size = e->size,
				       .mtime = e->mtime,
				       .path = strdup(e->path),
				       .error = e->error ? strdup(e->error) : NULL};
	return 0;
}

static void seen_free(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->e[i].path);
		free(s->e[i].error);
	}
	free(s->e);
	memset(s, 0, sizeof(*s));
}

static const struct seen_e *seen_find(const struct seen *s, uint64_t ino, uint64_t seq)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].ino == ino && s->e[i].seq == seq)
			return &s->e[i];
	return NULL;
}

/* Every record in r[0..n) was recovered with its size, mtime and bytes. */
static int check_recovered(const struct seen *s, const struct rec *r, size_t n)
{
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		const struct seen_e *e = seen_find(s, r[i].ino, r[i].seq);

		if (!e || e->size != r[i].size || e->mtime != r[i].mtime ||
		    strcmp(e->path, r[i].path) != 0 || !file_is(r[i].path, r[i].size, r[i].salt)) {
			if (bad++ < 5)
				fprintf(stderr, "record %" PRIu64 ".%" PRIu64 " (%zu bytes): %s\n",
					r[i].ino, r[i].seq, r[i].size,
					!e			     ? "not recovered"
					: e->size != r[i].size	     ? "wrong size"
					: e->mtime != r[i].mtime     ? "wrong mtime"
					: strcmp(e->path, r[i].path) ? "wrong path"
								     : "wrong bytes");
		}
	}
	return bad;
}

/* Closes j, reopens the journal of cache and recovers it into *s. */
static struct journal *reopen_recover(struct journal *j, const char *cache, struct seen *s)
{
	int ret;

	journal_close(j);
	j = jopen(cache);
	if (!j)
		return NULL;
	ret = journal_recover(j, collect, s);
	CHECK_EQ(ret, 0);
	return j;
}

static void recs_forget(struct journal *j, struct rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!r[i].path)
			continue;
		if (j)
			journal_forget(j, r[i].path);
		free(r[i].path);
		r[i].path = NULL;
	}
}

static void recs_free(struct rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].path);
		r[i].path = NULL;
	}
}

/* ---- 1. a small record's seal ---- */

static void test_seal_small(struct fx *fx)
{
	char cache[300], other[300];
	struct journal *j;
	struct rec r;
	uint64_t total;
	int64_t mtime = 1700000000123456789;
	pid_t pid;
	int status = -1;

	fx_cache(fx, cache, sizeof(cache));
	fx_cache(fx, other, sizeof(other));
	CHECK_EQ(journal_scan(other, collect, NULL), -ENOENT);
	j = jopen(cache);
	if (!j)
		return;
	CHECK_EQ(seal_one(j, 11, 1000, 1, mtime, &r), 0);
	if (!r.path) {
		journal_close(j);
		return;
	}
	CHECK(strstr(r.path, "/journal/11.") != NULL);
	CHECK(strstr(r.path, ".open") == NULL);
	CHECK(file_is(r.path, 1000, 1));
	CHECK_EQ(file_mtime(r.path), mtime);
	CHECK_EQ(count_suffix(cache, ".open"), 0);
	CHECK_EQ(log_segments(cache, &total), 1);
	CHECK(total >= 1000);
	/* sealing twice is refused */
	char *again = strdup(r.path);
	CHECK_EQ(journal_seal(j, -1, &again, 1000, mtime), -EINVAL);
	free(again);

	journal_note(j, r.path, "store unreachable\nsecond line");
	pid = fork();
	if (pid == 0) {
		/* another process: `docvault status` reads the directory */
		struct seen s = {0};
		int ret = journal_scan(cache, collect, &s), bad = 0;

		bad |= ret != 0;
		bad |= (s.n != 1) << 1;
		if (s.n == 1) {
			bad |= (s.e[0].ino != 11 || s.e[0].seq != r.seq) << 2;
			bad |= (s.e[0].size != 1000 || s.e[0].mtime != mtime) << 3;
			bad |= (!s.e[0].error || strcmp(s.e[0].error, "store unreachable")) << 4;
			bad |= (strcmp(s.e[0].path, r.path) != 0) << 5;
		}
		_exit(bad);
	}
	CHECK(pid > 0);
	if (pid > 0)
		waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);

	journal_note(j, r.path, NULL);
	{
		struct seen s = {0};

		CHECK_EQ(journal_scan(cache, collect, &s), 0);
		CHECK_EQ(s.n, 1);
		CHECK(s.n == 1 && s.e[0].error == NULL);
		seen_free(&s);
	}
	recs_forget(j, &r, 1);
	journal_close(j);
}

/* ---- 2. a crash that lost the files of small records ---- */

static void test_crash_lost(struct fx *fx)
{
	static const size_t sizes[] = {5000, 1, 7777, 64 * KIB, 300, 0};
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	char cache[300], *staging = NULL, moved[600];
	struct rec r[N];
	struct seen s = {0};
	struct journal *j;
	int fd = -1;

	fx_cache(fx, cache, sizeof(cache));
	j = jopen(cache);
	if (!j)
		return;
	for (size_t i = 0; i < N; i++)
		CHECK_EQ(seal_one(j, 21 + i, sizes[i], 20 + (uint32_t)i,
				  1600000000000000000 + (int64_t)i * 1000001, &r[i]),
			 0);
	/* a file being written when the machine went down */
	CHECK_EQ(journal_staging_new(j, 27, &fd, &staging), 0);
	if (fd >= 0) {
		CHECK_EQ(write(fd, "never closed", 12), 12);
		close(fd);
	}
	journal_close(j); /* nothing forgotten: all of it is pending */

	/* what a power cut may leave of files that were never flushed */
	CHECK_EQ(truncate(r[0].path, 0), 0);
	CHECK_EQ(unlink(r[1].path), 0);
	fd = open(r[2].path, O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	if (fd >= 0) {
		unsigned char junk[7777];

		fill(junk, sizeof(junk), 999);
		CHECK_EQ(pwrite(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
		close(fd);
	}
	snprintf(moved, sizeof(moved), "%s.open", r[3].path);
	CHECK_EQ(rename(r[3].path, moved), 0);
	/* r[4] intact */
	CHECK_EQ(unlink(r[5].path), 0);

	j = reopen_recover(NULL, cache, &s);
	CHECK_EQ(s.n, N);
	CHECK_EQ(check_recovered(&s, r, N), 0);
	for (size_t i = 1; i < s.n; i++)
		CHECK(s.e[i - 1].seq < s.e[i].seq); /* oldest first */
	CHECK(staging && !exists(staging));
	CHECK(!exists(moved));
	CHECK_EQ(count_suffix(cache, ".open"), 0);
	CHECK_EQ(log_segments(cache, NULL), 0); /* the old segments are gone */
	seen_free(&s);

	/* a second recovery (no log left) finds the same */
	j = reopen_recover(j, cache, &s);
	CHECK_EQ(s.n, N);
	CHECK_EQ(check_recovered(&s, r, N), 0);
	seen_free(&s);
	recs_forget(j, r, N);
	free(staging);
	journal_close(j);
}

/* ---- 3. done marks: forget and release ---- */

static void test_done_marks(struct fx *fx)
{
	char cache[300], adopted[300], note[600];
	struct rec r[3];
	struct seen s = {0};
	struct journal *j;

	fx_cache(fx, cache, sizeof(cache));
	snprintf(adopted, sizeof(adopted), "%s/adopted-32", fx->base);
	j = jopen(cache);
	if (!j)
		return;
	for (size_t i = 0; i < 3; i++)
		CHECK_EQ(
		    seal_one(j, 31 + i, 2000 + i, 30 + (uint32_t)i, 1500000000000000000, &r[i]), 0);
	if (!r[0].path || !r[1].path || !r[2].path) {
		journal_close(j);
		return;
	}
	/* committed and removed */
	journal_note(j, r[0].path, "first attempt failed");
	journal_forget(j, r[0].path);
	CHECK(!exists(r[0].path));
	snprintf(note, sizeof(note), "%s.err", r[0].path);
	CHECK(!exists(note));
	/* committed and adopted by the read cache, which renames the file away */
	journal_note(j, r[1].path, "first attempt failed");
	CHECK_EQ(rename(r[1].path, adopted), 0);
	journal_release(j, r[1].path);
	snprintf(note, sizeof(note), "%s.err", r[1].path);
	CHECK(!exists(note));

	j = reopen_recover(j, cache, &s);
	CHECK_EQ(s.n, 1);
	CHECK(!seen_find(&s, r[0].ino, r[0].seq));
	CHECK(!seen_find(&s, r[1].ino, r[1].seq));
	CHECK_EQ(check_recovered(&s, &r[2], 1), 0);
	CHECK(!exists(r[0].path));
	CHECK(!exists(r[1].path));
	CHECK(file_is(adopted, r[1].size, r[1].salt));
	seen_free(&s);
	recs_forget(j, &r[2], 1);
	recs_free(r, 3);
	journal_close(j);
}

/* ---- 4. a torn tail ends the log ---- */

enum torn { TORN_GARBAGE, TORN_HALF_HEADER, TORN_DATA };

static void torn_case(struct fx *fx, enum torn how)
{
	char cache[300], seg[600];
	struct rec r[3];
	struct seen s = {0};
	struct journal *j;
	size_t expect = 3;
	struct stat st;
	int fd;

	fx_cache(fx, cache, sizeof(cache));
	j = jopen(cache);
	if (!j)
		return;
	/* 1000 bytes: a multiple of 8, so the last record's data ends the segment */
	for (size_t i = 0; i < 3; i++)
		CHECK_EQ(seal_one(j, 41 + i, 1000, 40 + (uint32_t)i + 10 * how,
				  1400000000000000000 + (int64_t)i, &r[i]),
			 0);
	journal_close(j);
	for (size_t i = 0; i < 3; i++)
		if (r[i].path)
			unlink(r[i].path); /* only the log holds them now */
	CHECK_EQ(log_segments(cache, NULL), 1);
	seg_path(cache, 1, seg, sizeof(seg));
	fd = open(seg, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	if (fd >= 0 && fstat(fd, &st) == 0) {
		unsigned char buf[4096];

		switch (how) {
		case TORN_GARBAGE:
			fill(buf, sizeof(buf), 4242);
			CHECK_EQ(pwrite(fd, buf, sizeof(buf), st.st_size), (ssize_t)sizeof(buf));
			break;
		case TORN_HALF_HEADER:
			/* the first 20 bytes of a real header: the magic is right */
			CHECK_EQ(pread(fd, buf, 20, 0), 20);
			CHECK_EQ(pwrite(fd, buf, 20, st.st_size), 20);
			break;
		case TORN_DATA:
			/* the last record lost its last bytes */
			CHECK_EQ(ftruncate(fd, st.st_size - 10), 0);
			expect = 2;
			break;
		}
		close(fd);
	}
	j = reopen_recover(NULL, cache, &s);
	CHECK_EQ(s.n, expect);
	CHECK_EQ(check_recovered(&s, r, expect), 0);
	if (expect < 3)
		CHECK(!exists(r[2].path));
	CHECK_EQ(log_segments(cache, NULL), 0);
	seen_free(&s);
	recs_forget(j, r, 3);
	journal_close(j);
}

static void test_torn_tail(struct fx *fx)
{
	torn_case(fx, TORN_GARBAGE);
	torn_case(fx, TORN_HALF_HEADER);
	torn_case(fx, TORN_DATA);
}

/* ---- 5. a large record takes the fsync path ---- */

static void test_large(struct fx *fx)
{
	char cache[300];
	struct rec r[3];
	struct seen s = {0};
	struct journal *j;
	uint64_t before = 0, after = 0;

	fx_cache(fx, cache, sizeof(cache));
	j = jopen(cache);
	if (!j)
		return;
	CHECK_EQ(seal_one(j, 51, 100, 51, 1300000000000000001, &r[0]), 0);
	CHECK_EQ(log_segments(cache, &before), 1);
	CHECK_EQ(seal_one(j, 52, T_RECORD_MAX + 1, 52, 1300000000000000002, &r[1]), 0);
	CHECK_EQ(log_segments(cache, &after), 1);
	CHECK_EQ(after, before); /* not in the log */
	CHECK(r[1].path && file_is(r[1].path, r[1].size, r[1].salt));
	CHECK(r[1].path && file_mtime(r[1].path) == r[1].mtime);
	/* exactly the limit is still logged */
	CHECK_EQ(seal_one(j, 53, T_RECORD_MAX, 53, 1300000000000000003, &r[2]), 0);
	CHECK_EQ(log_segments(cache, &after), 1);
	CHECK(after >= before + T_RECORD_MAX);
	journal_close(j);
	/* the logged ones come back from the log; the large one is its own file */
	if (r[0].path)
		unlink(r[0].path);
	if (r[2].path)
		unlink(r[2].path);
	j = reopen_recover(NULL, cache, &s);
	CHECK_EQ(s.n, 3);
	CHECK_EQ(check_recovered(&s, r, 3), 0);
	seen_free(&s);
	recs_forget(j, r, 3);
	journal_close(j);
}

/*
 * Seals records of T_RECORD_MAX bytes for ino, ino + 1, ... into r until
 * segment log.<seg> exists; returns how many (the last one is in log.<seg>).
 */
static size_t seal_until_segment(struct journal *j, const char *cache, uint64_t seg, uint64_t ino,
				 uint32_t salt, struct rec *r, size_t max)
{
	char path[600];
	size_t n = 0;

	seg_path(cache, seg, path, sizeof(path));
	while (n < max && !exists(path)) {
		int ret = seal_one(j, ino + n, T_RECORD_MAX, salt + (uint32_t)n,
				   1200000000000000000 + (int64_t)n, &r[n]);

		CHECK_EQ(ret, 0);
		if (ret)
			break;
		n++;
	}
	CHECK(exists(path));
	return n;
}

/* ---- 6. segments ---- */

static void test_segments(struct fx *fx)
{
	enum { MAX = 2 * T_SEGMENT_MAX / T_RECORD_MAX };
	char cache[300], seg1[600], seg2[600];
	struct rec *r = calloc(MAX, sizeof(*r));
	struct seen s = {0};
	struct journal *j;
	size_t n;

	if (!r)
		return;
	fx_cache(fx, cache, sizeof(cache));
	seg_path(cache, 1, seg1, sizeof(seg1));
	seg_path(cache, 2, seg2, sizeof(seg2));
	j = jopen(cache);
	if (!j) {
		free(r);
		return;
	}
	n = seal_until_segment(j, cache, 2, 600, 600, r, MAX);
	CHECK(n > 100); /* about 32 MiB of 256 KiB records */
	CHECK_EQ(log_segments(cache, NULL), 2);
	/* log.1 was full: the next record would have passed the limit */
	{
		struct stat st;

		CHECK_EQ(stat(seg1, &st), 0);
		CHECK((uint64_t)st.st_size <= T_SEGMENT_MAX);
		CHECK((uint64_t)st.st_size + T_RECORD_MAX + 4096 > T_SEGMENT_MAX);
	}
	/* everything of log.1 committed; the newest record lives in log.2 */
	recs_forget(j, r, n - 1);
	CHECK(exists(seg1));
	journal_tidy(j);
	CHECK(!exists(seg1));
	CHECK(exists(seg2));
	journal_close(j);

	if (n > 0 && r[n - 1].path)
		unlink(r[n - 1].path);
	j = reopen_recover(NULL, cache, &s);
	CHECK_EQ(s.n, 1);
	if (n > 0)
		CHECK_EQ(check_recovered(&s, &r[n - 1], 1), 0);
	seen_free(&s);
	recs_forget(j, r, n);
	journal_close(j);
	free(r);
}

/*
 * ---- 6b. a done mark outlives the segment that holds it ----
 * log.1 holds A (pending) and B; B's done mark goes to log.2; everything of
 * log.2 is then done, so tidy removes log.2 while log.1 stays for A. After
 * a restart B must not come back from log.1.
 */
static void test_done_mark_segment(struct fx *fx)
{
	enum { MAX = 2 * T_SEGMENT_MAX / T_RECORD_MAX };
	char cache[300], bpath[600] = "";
	struct rec a = {0}, b = {0};
	struct rec *f1 = calloc(MAX, sizeof(*f1)), *f2 = calloc(MAX, sizeof(*f2));
	struct seen s = {0};
	struct journal *j;
	size_t n1 = 0, n2 = 0;

	fx_cache(fx, cache, sizeof(cache));
	j = f1 && f2 ? jopen(cache) : NULL;
	if (!j)
		goto out;
	CHECK_EQ(seal_one(j, 101, 3000, 101, 1100000000000000001, &a), 0);
	CHECK_EQ(seal_one(j, 102, 3000, 102, 1100000000000000002, &b), 0);
	if (b.path)
		snprintf(bpath, sizeof(bpath), "%s", b.path);
	n1 = seal_until_segment(j, cache, 2, 1000, 1000, f1, MAX);
	/* B committed while log.2 takes the appends: its done mark goes to log.2 */
	recs_forget(j, &b, 1);
	/* more records, until log.3 takes over */
	n2 = seal_until_segment(j, cache, 3, 2000, 2000, f2, MAX);
	if (!a.path || !bpath[0] || n1 < 2 || n2 < 2) {
		journal_close(j);
		goto out;
	}
	/* everything in log.2 is done: the record that opened it and the rest */
	recs_forget(j, &f1[n1 - 1], 1);
	recs_forget(j, f2, n2 - 1);
	/* the fillers of log.1 too; log.1 stays for A */
	recs_forget(j, f1, n1 - 1);
	journal_tidy(j);
	journal_close(j);

	j = reopen_recover(NULL, cache, &s);
	if (seen_find(&s, 102, b.seq) || exists(bpath))
		fprintf(stderr,
			"test_done_mark_segment: committed record %s came back from "
			"log.1: its done mark was in log.2, which journal_tidy removed\n",
			bpath);
	CHECK(!seen_find(&s, 102, b.seq));
	CHECK(!exists(bpath));
	CHECK_EQ(check_recovered(&s, &a, 1), 0);
	CHECK_EQ(check_recovered(&s, &f2[n2 - 1], 1), 0);
	CHECK_EQ(s.n, 2);
	seen_free(&s);
	if (exists(bpath))
		journal_forget(j, bpath);
	recs_forget(j, &a, 1);
	recs_forget(j, &f2[n2 - 1], 1);
	journal_close(j);
out:
	recs_free(&a, 1);
	recs_free(&b, 1);
	recs_free(f1, n1);
	recs_free(f2, n2);
	free(f1);
	free(f2);
}

/* ---- 7. superseded records ---- */

static void test_superseded(struct fx *fx)
{
	char cache[300];
	struct rec r[3];
	struct seen s = {0};
	struct journal *j;

	fx_cache(fx, cache, sizeof(cache));
	j = jopen(cache);
	if (!j)
		return;
	CHECK_EQ(seal_one(j, 71, 500, 71, 1000000000000000001, &r[0]), 0);
	CHECK_EQ(seal_one(j, 72, 600, 72, 1000000000000000002, &r[1]), 0);
	CHECK_EQ(seal_one(j, 71, 700, 73, 1000000000000000003, &r[2]), 0);
	CHECK(r[0].seq < r[2].seq);
	journal_close(j);
	for (size_t i = 0; i < 3; i++)
		if (r[i].path)
			unlink(r[i].path); /* both versions come back from the log */
	j = reopen_recover(NULL, cache, &s);
	CHECK_EQ(s.n, 2);
	CHECK(!seen_find(&s, 71, r[0].seq));
	CHECK_EQ(check_recovered(&s, &r[1], 2), 0);
	CHECK(r[0].path && !exists(r[0].path));
	seen_free(&s);

	/* once more with the files in place, without the log */
	j = reopen_recover(j, cache, &s);
	CHECK_EQ(s.n, 2);
	CHECK_EQ(check_recovered(&s, &r[1], 2), 0);
	seen_free(&s);
	recs_forget(j, &r[1], 2);
	recs_free(r, 1);
	journal_close(j);
}

/* ---- 8. concurrent seals (group commit) ---- */

struct sealer {
	struct journal *j;
	int t;
	int failed;
	struct rec r[T_PER_THREAD];
};

static void *sealer_run(void *arg)
{
	struct sealer *s = arg;

	for (int i = 0; i < T_PER_THREAD; i++) {
		uint64_t ino = 10000 * (uint64_t)(s->t + 1) + (uint64_t)i;
		size_t size = 1 + ((size_t)i * 977 + (size_t)s->t * 131) % (16 * KIB);

		if (seal_one(s->j, ino, size, (uint32_t)ino, 900000000000000000 + (int64_t)ino,
			     &s->r[i]) != 0)
			s->failed++;
	}
	return NULL;
}

static void test_concurrent(struct fx *fx)
{
	char cache[300];
	struct sealer *th = calloc(T_THREADS, sizeof(*th));
	pthread_t tid[T_THREADS];
	struct seen s = {0};
	struct journal *j;
	size_t kept = 0;

	fx_cache(fx, cache, sizeof(cache));
	j = th ? jopen(cache) : NULL;
	if (!j) {
		free(th);
		return;
	}
	for (int t = 0; t < T_THREADS; t++) {
		th[t].j = j;
		th[t].t = t;
		CHECK_EQ(pthread_create(&tid[t], NULL, sealer_run, &th[t]), 0);
	}
	for (int t = 0; t < T_THREADS; t++)
		pthread_join(tid[t], NULL);
	for (int t = 0; t < T_THREADS; t++) {
		int bad = 0;

		CHECK_EQ(th[t].failed, 0);
		for (int i = 0; i < T_PER_THREAD; i++)
			bad += !th[t].r[i].path ||
			       !file_is(th[t].r[i].path, th[t].r[i].size, th[t].r[i].salt);
		CHECK_EQ(bad, 0);
	}
	CHECK_EQ(log_segments(cache, NULL), 1);
	/* every other record committed in this process (done marks) */
	for (int t = 0; t < T_THREADS; t++)
		for (int i = 0; i < T_PER_THREAD; i += 2)
			recs_forget(j, &th[t].r[i], 1);
	journal_close(j);
	/* the crash took every file */
	for (int t = 0; t < T_THREADS; t++)
		for (int i = 1; i < T_PER_THREAD; i += 2)
			if (th[t].r[i].path)
				unlink(th[t].r[i].path);
	j = reopen_recover(NULL, cache, &s);
	CHECK_EQ(s.n, T_THREADS * T_PER_THREAD / 2);
	for (int t = 0; t < T_THREADS; t++) {
		for (int i = 1; i < T_PER_THREAD; i += 2) {
			CHECK_EQ(check_recovered(&s, &th[t].r[i], 1), 0);
			kept++;
		}
	}
	CHECK_EQ(kept, s.n);
	seen_free(&s);
	for (int t = 0; t < T_THREADS; t++)
		recs_forget(j, th[t].r, T_PER_THREAD);
	journal_close(j);
	free(th);
}

/* ---- 9. an mtime set after the seal ---- */

static void test_set_mtime(struct fx *fx)
{
	char cache[300];
	struct rec r;
	struct seen s = {0};
	struct journal *j;
	int64_t later = 1750000000987654321;

	fx_cache(fx, cache, sizeof(cache));
	j = jopen(cache);
	if (!j)
		return;
	CHECK_EQ(seal_one(j, 91, 4321, 91, 1700000000000000000, &r), 0);
	if (!r.path) {
		journal_close(j);
		return;
	}
	journal_set_mtime(j, r.path, later);
	CHECK_EQ(file_mtime(r.path), later);
	r.mtime = later;
	j = reopen_recover(j, cache, &s);
	CHECK_EQ(s.n, 1);
	CHECK_EQ(check_recovered(&s, &r, 1), 0);
	seen_free(&s);
	recs_forget(j, &r, 1);
	journal_close(j);
}

/* ---- 10. mtimes before 1970 (vfs.c keeps them: vfs_ts) ---- */

static void test_old_mtime(struct fx *fx)
{
	char cache[300];
	struct rec r;
	struct seen s = {0};
	struct journal *j;
	int64_t before_epoch = -1500000000; /* 1969-12-31 23:59:58.5 UTC */
	int ret;

	fx_cache(fx, cache, sizeof(cache));
	j = jopen(cache);
	if (!j)
		return;
	ret = seal_one(j, 111, 100, 111, before_epoch, &r);
	CHECK_EQ(ret, 0);
	if (ret)
		fprintf(stderr, "test_old_mtime: journal_seal with mtime %" PRId64 " ns: %s\n",
			before_epoch, strerror(-ret));
	if (!r.path) {
		journal_close(j);
		return;
	}
	CHECK_EQ(file_mtime(r.path), before_epoch);
	journal_set_mtime(j, r.path, before_epoch - 1000000000);
	CHECK_EQ(file_mtime(r.path), before_epoch - 1000000000);
	journal_close(j);
	/* restored from the log: with the logged mtime */
	unlink(r.path);
	j = reopen_recover(NULL, cache, &s);
	CHECK_EQ(s.n, 1);
	CHECK_EQ(check_recovered(&s, &r, 1), 0);
	seen_free(&s);
	recs_forget(j, &r, 1);
	journal_close(j);
}

int main(void)
{
	struct fx fx = {0};

	log_set_level(LOG_LVL_WARN);
	snprintf(fx.base, sizeof(fx.base), "/tmp/dv-test-journal-XXXXXX");
	if (!mkdtemp(fx.base)) {
		fprintf(stderr, "cannot create a directory under /tmp: %s\n", strerror(errno));
		CHECK(false);
		return test_done();
	}
	test_seal_small(&fx);
	test_crash_lost(&fx);
	test_done_marks(&fx);
	test_torn_tail(&fx);
	test_large(&fx);
	test_segments(&fx);
	test_done_mark_segment(&fx);
	test_superseded(&fx);
	test_concurrent(&fx);
	test_set_mtime(&fx);
	test_old_mtime(&fx);
	rm_rf(fx.base);
	return test_done();
}
