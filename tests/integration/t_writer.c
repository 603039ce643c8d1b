/*
 * t_writer.c - the bulk writer of the crash and outage tests: makes a tree
 * of random files, copies it into the vault one file at a time logging each
 * file only once its close() has returned 0 (the log lists exactly the files
 * the vault acknowledged), and checks the outcome against that log. All in
 * one process: a process per file costs more than the file here.
 *
 * Usage:
 *   t_writer mktree DIR LIST NSMALL [BIG_MIB...]
 *       NSMALL files of 1 B to 64 KiB (DIR/dK/sI.dat) and one file per
 *       BIG_MIB argument of that many MiB plus 4321 bytes (DIR/big/bB.bin;
 *       decimals allowed), spread evenly among the small ones. The bytes are
 *       pseudo-random from a seed taken from getrandom(): no two files, and
 *       no two runs, share content, so dedup stays out of the way. LIST gets
 *       the relative paths in that order (the order `copy` writes them in).
 *   t_writer copy SRC DST LIST LOG
 *       For each path of LIST: its parent directories are made below DST
 *       (EEXIST is fine), the file is created (O_CREAT | O_EXCL | O_WRONLY,
 *       0644), SRC's bytes are written with write() calls of 256 KiB, the
 *       file is closed, and only then "PATH\n" is appended to LOG (a local
 *       file, O_APPEND, one write()). Stops at the first failing call on DST
 *       with one line "t_writer: FAILED OP DST/PATH: MESSAGE (errno N)" and
 *       exit status 3; exit 0 when every file was written; 2 for a usage
 *       error or a failure on the local side (SRC, LIST, LOG).
 *   t_writer verify SRC DST LIST LOG
 *       Every file in LOG is in DST, byte-exact with SRC. Every other file of
 *       LIST (its close() never returned success to the writer) is absent, or
 *       empty (its create reached the vault, none of its content did), or
 *       whole and byte-exact (it was closed just as the daemon died): never
 *       a part of its content, never wrong bytes. DST holds no regular file
 *       that LIST does not name. Ends with check.h's "N passed, N failed"
 *       (one check per file).
 *
 * Single-threaded; libc only.
 */
#include "t_common.h"

#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/random.h>

#define T_WRITER_CHUNK (256 * 1024)

static unsigned char t_buf[T_WRITER_CHUNK], t_buf2[T_WRITER_CHUNK];

static double t_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- lists of paths ------------------------------------------------------ */

struct t_list {
	char **v;
	size_t n, cap;
};

static int t_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the non-empty lines of PATH; exits 2 if it cannot. */
static void t_list_read(struct t_list *l, const char *path)
{
	char line[PATH_MAX + 2];
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "t_writer: open %s: %s\n", path, strerror(errno));
		exit(2);
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		if (l->n == l->cap) {
			l->cap = l->cap ? 2 * l->cap : 256;
			l->v = realloc(l->v, l->cap * sizeof(*l->v));
		}
		if (!l->v || !(l->v[l->n++] = strdup(line))) {
			fprintf(stderr, "t_writer: out of memory\n");
			exit(2);
		}
	}
	fclose(f);
}

static void t_list_sort(struct t_list *l)
{
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), t_cmp_str);
}

static bool t_list_has(const struct t_list *l, const char *s)
{
	return l->n && bsearch(&s, l->v, l->n, sizeof(*l->v), t_cmp_str) != NULL;
}

static void t_list_free(struct t_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* --- mktree ---------------------------------------------------------------- */

static uint64_t t_rng[2];

/* xorshift128+: fast, and plenty for bytes nobody will ever dedup. */
static uint64_t t_next(void)
{
	uint64_t a = t_rng[0], b = t_rng[1];
	t_rng[0] = b;
	a ^= a << 23;
	t_rng[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
	return t_rng[1] + b;
}

static void t_make_file(const char *dir, const char *rel, size_t size, FILE *list)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "t_writer: create %s: %s\n", path, strerror(errno));
		exit(2);
	}
	for (size_t off = 0; off < size;) {
		size_t n = size - off < sizeof(t_buf) ? size - off : sizeof(t_buf);
		for (size_t i = 0; i < n; i += 8) {
			uint64_t r = t_next();
			memcpy(t_buf + i, &r, n - i < 8 ? n - i : 8);
		}
		if (write(fd, t_buf, n) != (ssize_t)n) {
			fprintf(stderr, "t_writer: write %s: %s\n", path, strerror(errno));
			exit(2);
		}
		off += n;
	}
	close(fd);
	fprintf(list, "%s\n", rel);
}

static int t_mktree(const char *dir, const char *listpath, long nsmall, int nbig, char **bigs)
{
	char rel[64], sub[PATH_MAX];
	long every = nsmall / (nbig + 1);
	int b = 0;

	if (getrandom(t_rng, sizeof(t_rng), 0) != sizeof(t_rng)) {
		perror("t_writer: getrandom");
		return 2;
	}
	t_rng[0] |= 1;
	FILE *list = fopen(listpath, "w");
	if (!list || (mkdir(dir, 0755) != 0 && errno != EEXIST)) {
		fprintf(stderr, "t_writer: cannot create %s or %s: %s\n", dir, listpath,
			strerror(errno));
		return 2;
	}
	for (int d = 0; d < 7; d++) {
		snprintf(sub, sizeof(sub), "%s/d%d", dir, d);
		mkdir(sub, 0755);
	}
	snprintf(sub, sizeof(sub), "%s/big", dir);
	if (nbig)
		mkdir(sub, 0755);
	if (every < 1)
		every = 1;
	for (long i = 0; i <= nsmall; i++) {
		while (b < nbig && ((i > 0 && i % every == 0) || i == nsmall)) {
			snprintf(rel, sizeof(rel), "big/b%d.bin", b);
			t_make_file(dir, rel, (size_t)(strtod(bigs[b], NULL) * 1048576) + 4321,
				    list);
			b++;
			if (i < nsmall)
				break;
		}
		if (i == nsmall)
			break;
		snprintf(rel, sizeof(rel), "d%ld/s%ld.dat", i % 7, i);
		t_make_file(dir, rel, 1 + (size_t)((i * 7919) % 65536), list);
	}
	if (fclose(list) != 0) {
		perror("t_writer: write the list");
		return 2;
	}
	printf("t_writer: %ld small and %d big files in %s\n", nsmall, nbig, dir);
	return 0;
}

/* --- copy ---------------------------------------------------------------- */

static long t_files;
static long long t_bytes;
static double t_t0;

static void t_copy_summary(void)
{
	printf("t_writer: wrote %ld files, %lld bytes in %.2f s\n", t_files, t_bytes,
	       t_now() - t_t0);
	fflush(stdout);
}

/* A failure on the vault's side: report it and stop with exit status 3. */
static void t_copy_failed(const char *op, const char *dst, const char *rel)
{
	int e = errno;
	printf("t_writer: FAILED %s %s/%s: %s (errno %d)\n", op, dst, rel, strerror(e), e);
	t_copy_summary();
	exit(3);
}

/* A failure on the local side (source, list, log): exit status 2. */
static void t_copy_local(const char *op, const char *path)
{
	int e = errno;
	fprintf(stderr, "t_writer: %s %s: %s (errno %d)\n", op, path, strerror(e), e);
	t_copy_summary();
	exit(2);
}

/* Makes every parent directory of REL below the current directory. */
static void t_copy_parents(const char *dst, const char *rel)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", rel);
	for (char *p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			t_copy_failed("mkdir", dst, path);
		*p = '/';
	}
}

static int t_copy(const char *src, const char *dst, const char *listpath, const char *log)
{
	struct t_list list = {0};
	char line[PATH_MAX + 2];

	t_list_read(&list, listpath);
	int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (logfd < 0)
		t_copy_local("open", log);
	int srcdir = open(src, O_RDONLY | O_DIRECTORY);
	if (srcdir < 0)
		t_copy_local("open", src);
	t_t0 = t_now();
	if (chdir(dst) != 0)
		t_copy_failed("chdir", dst, ".");
	for (size_t i = 0; i < list.n; i++) {
		const char *rel = list.v[i];
		t_copy_parents(dst, rel);
		int in = openat(srcdir, rel, O_RDONLY);
		if (in < 0)
			t_copy_local("open source", rel);
		int out = open(rel, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (out < 0)
			t_copy_failed("create", dst, rel);
		for (;;) {
			ssize_t n = read(in, t_buf, sizeof(t_buf));
			if (n < 0)
				t_copy_local("read source", rel);
			if (n == 0)
				break;
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(out, t_buf + off, (size_t)(n - off));
				if (w < 0)
					t_copy_failed("write", dst, rel);
				if (w == 0) {
					errno = EIO;
					t_copy_failed("write (0 bytes)", dst, rel);
				}
				off += w;
				t_bytes += w;
			}
		}
		close(in);
		if (close(out) != 0)
			t_copy_failed("close", dst, rel);
		/* Acknowledged: only now does the file enter the log. */
		int len = snprintf(line, sizeof(line), "%s\n", rel);
		if (write(logfd, line, (size_t)len) != len)
			t_copy_local("write", log);
		t_files++;
	}
	close(logfd);
	close(srcdir);
	t_list_free(&list);
	t_copy_summary();
	return 0;
}

/* --- verify -------------------------------------------------------------- */

enum t_state { T_ABSENT, T_EMPTY, T_WHOLE, T_PART, T_WRONG, T_ERROR };

/*
 * Compares DST/REL with SRC/REL. *AT gets the first differing offset (or the
 * size found for T_PART), *WANT the source's size; errno is kept for T_ERROR.
 */
static enum t_state t_compare(int srcdir, int dstdir, const char *rel, long long *at,
			      long long *want)
{
	struct stat ss, ds;
	enum t_state st = T_WHOLE;

	*at = *want = 0;
	if (fstatat(dstdir, rel, &ds, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? T_ABSENT : T_ERROR;
	if (fstatat(srcdir, rel, &ss, 0) != 0) {
		fprintf(stderr, "t_writer: stat source %s: %s\n", rel, strerror(errno));
		exit(2);
	}
	*want = (long long)ss.st_size;
	if (!S_ISREG(ds.st_mode)) {
		errno = EISDIR;
		return T_ERROR;
	}
	if (ds.st_size == 0)
		return T_EMPTY;
	if (ds.st_size != ss.st_size) {
		*at = (long long)ds.st_size;
		return T_PART;
	}
	int a = openat(srcdir, rel, O_RDONLY), b = openat(dstdir, rel, O_RDONLY);
	if (a < 0 || b < 0) {
		int e = errno;
		if (a >= 0)
			close(a);
		if (b >= 0)
			close(b);
		errno = e;
		return T_ERROR;
	}
	for (long long off = 0;; off += T_WRITER_CHUNK) {
		ssize_t n = t_pread_full(a, t_buf, sizeof(t_buf), (off_t)off);
		ssize_t m = t_pread_full(b, t_buf2, sizeof(t_buf2), (off_t)off);
		if (n < 0 || m < 0) {
			st = T_ERROR;
			break;
		}
		if (n != m || memcmp(t_buf, t_buf2, (size_t)n) != 0) {
			ssize_t i = 0;
			while (i < n && i < m && t_buf[i] == t_buf2[i])
				i++;
			*at = off + i;
			st = T_WRONG;
			break;
		}
		if (n < (ssize_t)sizeof(t_buf))
			break;
	}
	int e = errno;
	close(a);
	close(b);
	errno = e;
	return st;
}

static struct t_list t_all;
static long t_extra;

static int t_walk(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	(void)sb;
	(void)f;
	const char *rel = path[1] == '/' ? path + 2 : path; /* nftw from "." */
	if (type == FTW_F && !t_list_has(&t_all, rel)) {
		check_failed_count++;
		if (t_extra++ < 10)
			fprintf(stderr, "t_writer: %s is in the vault but was never written\n",
				rel);
	}
	return 0;
}

static int t_verify(const char *src, const char *dst, const char *listpath, const char *log)
{
	struct t_list logged = {0};
	long absent = 0, empty = 0, whole = 0, bad = 0;

	t_list_read(&t_all, listpath);
	t_list_read(&logged, log);
	t_list_sort(&logged);
	int srcdir = open(src, O_RDONLY | O_DIRECTORY), dstdir = open(dst, O_RDONLY | O_DIRECTORY);
	if (srcdir < 0 || dstdir < 0) {
		fprintf(stderr, "t_writer: open %s or %s: %s\n", src, dst, strerror(errno));
		return 2;
	}
	for (size_t i = 0; i < t_all.n; i++) {
		const char *rel = t_all.v[i];
		bool acked = t_list_has(&logged, rel);
		long long at, want;
		enum t_state st = t_compare(srcdir, dstdir, rel, &at, &want);
		int e = errno;
		char why[160] = "";

		switch (st) {
		case T_WHOLE:
			whole += !acked;
			break;
		case T_ABSENT:
			absent += !acked;
			if (acked)
				snprintf(why, sizeof(why), "missing");
			break;
		case T_EMPTY:
			empty += !acked;
			if (acked)
				snprintf(why, sizeof(why), "empty, %lld bytes were written", want);
			break;
		case T_PART:
			snprintf(why, sizeof(why), "%lld bytes of %lld", at, want);
			break;
		case T_WRONG:
			snprintf(why, sizeof(why), "wrong bytes from offset %lld (of %lld)", at,
				 want);
			break;
		case T_ERROR:
			snprintf(why, sizeof(why), "cannot read it: %s (errno %d)", strerror(e), e);
			break;
		}
		if (!why[0]) {
			check_passed_count++;
			continue;
		}
		check_failed_count++;
		if (bad++ < 20)
			fprintf(stderr, "t_writer: %s/%s (%s): %s\n", dst, rel,
				acked ? "closed before" : "never acknowledged", why);
	}
	t_list_sort(&t_all);
	if (fchdir(dstdir) != 0 || nftw(".", t_walk, 16, FTW_PHYS) != 0) {
		fprintf(stderr, "t_writer: cannot walk %s: %s\n", dst, strerror(errno));
		check_failed_count++;
	}
	printf("t_writer: %zu files acknowledged, %zu not: %ld absent, %ld empty, %ld whole; %ld "
	       "bad, %ld never written\n",
	       logged.n, t_all.n - logged.n, absent, empty, whole, bad, t_extra);
	close(srcdir);
	close(dstdir);
	t_list_free(&logged);
	t_list_free(&t_all);
	return test_done();
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "mktree") == 0)
		return t_mktree(argv[2], argv[3], strtol(argv[4], NULL, 10), argc - 5, argv + 5);
	if (argc == 6 && strcmp(argv[1], "copy") == 0)
		return t_copy(argv[2], argv[3], argv[4], argv[5]);
	if (argc == 6 && strcmp(argv[1], "verify") == 0)
		return t_verify(argv[2], argv[3], argv[4], argv[5]);
	fprintf(stderr, "usage: t_writer mktree DIR LIST NSMALL [BIG_MIB...]\n"
			"       t_writer copy SRC DST LIST LOG\n"
			"       t_writer verify SRC DST LIST LOG\n");
	return 2;
}
