/*
 * bench_files.c - the file-making and file-statting loops of tools/bench,
 * in C so that the benchmark measures the file system and not fork/exec.
 *
 *   bench_files create DIR COUNT
 *       one process, one loop: open(DIR/fNNNNNN, O_CREAT|O_EXCL|O_WRONLY)
 *       then close, COUNT times
 *   bench_files stat DIR COUNT
 *       lstat() of the same COUNT names
 *   bench_files tree DIR COUNT MIN_KIB MAX_KIB SUBDIRS SEED
 *       COUNT files of MIN_KIB..MAX_KIB KiB of pseudo-random content, spread
 *       over SUBDIRS directories and one "sub" directory inside each of them
 *   bench_files random FILE MIB SEED
 *       one file of MIB MiB of pseudo-random content
 *
 * Model: "create" and "stat" time their own loop (CLOCK_MONOTONIC, from the
 * first call to the last close) and print one line, "files=N seconds=S"; the
 * other two are untimed set-up and print "files=N bytes=B". Every name is
 * relative to DIR (chdir first), so the path walk from / is not measured.
 * Content comes from splitmix64, seeded from SEED and the file's number, so
 * no two files share content (no dedup hit) and a run is reproducible.
 *
 * Exit status: 0 when every call succeeded, 1 otherwise (the first five
 * failures are printed with their errno), 2 on bad usage. Single-threaded;
 * libc only. Not a test: it checks nothing but the return codes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BENCH_BUF_SIZE	   (1 << 20)
#define BENCH_MAX_FAILURES 5

struct bench_rng {
	uint64_t state;
};

/* splitmix64 (Steele, Lea, Flood 2014): fast, and plenty for "not dedupable". */
static uint64_t bench_rng_next(struct bench_rng *r)
{
	uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void bench_rng_fill(struct bench_rng *r, unsigned char *buf, size_t len)
{
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t v = bench_rng_next(r);

		memcpy(buf + i, &v, 8);
	}
	for (size_t i = len - len % 8; i < len; i++)
		buf[i] = (unsigned char)bench_rng_next(r);
}

static double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Counts a failure in *bad and prints it if it is one of the first few. */
static void bench_fail(long *bad, const char *what, const char *name, int err)
{
	if ((*bad)++ < BENCH_MAX_FAILURES)
		fprintf(stderr, "bench_files: %s %s: %s\n", what, name, strerror(err));
}

static long bench_parse(const char *s, const char *what, long min)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min) {
		fprintf(stderr, "bench_files: %s: '%s' is not a number >= %ld\n", what, s, min);
		exit(2);
	}
	return v;
}

static void bench_chdir(const char *dir)
{
	if (chdir(dir) != 0) {
		fprintf(stderr, "bench_files: chdir %s: %s\n", dir, strerror(errno));
		exit(1);
	}
}

static int bench_create(long count)
{
	char name[32];
	long bad = 0;
	double t0 = bench_now();

	for (long i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "f%06ld", i);
		int fd = open(name, O_CREAT | O_EXCL | O_WRONLY, 0644);

		if (fd < 0)
			bench_fail(&bad, "create", name, errno);
		else if (close(fd) != 0)
			bench_fail(&bad, "close", name, errno);
	}
	printf("files=%ld seconds=%.6f\n", count - bad, bench_now() - t0);
	return bad ? 1 : 0;
}

static int bench_stat(long count)
{
	char name[32];
	struct stat st;
	long bad = 0;
	double t0 = bench_now();

	for (long i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "f%06ld", i);
		if (lstat(name, &st) != 0)
			bench_fail(&bad, "lstat", name, errno);
	}
	printf("files=%ld seconds=%.6f\n", count - bad, bench_now() - t0);
	return bad ? 1 : 0;
}

/*
 * Writes LEN pseudo-random bytes to NAME (created, must not exist); on a
 * failure counts it in *bad, prints it and returns -1.
 */
static int bench_write_random(const char *name, uint64_t len, struct bench_rng *r,
			      unsigned char *buf, long *bad)
{
	int fd = open(name, O_CREAT | O_EXCL | O_WRONLY, 0644);

	if (fd < 0) {
		bench_fail(bad, "create", name, errno);
		return -1;
	}
	while (len > 0) {
		size_t n = len < BENCH_BUF_SIZE ? (size_t)len : BENCH_BUF_SIZE;
		size_t done = 0;

		bench_rng_fill(r, buf, n);
		while (done < n) {
			ssize_t w = write(fd, buf + done, n - done);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				int err = errno;

				close(fd);
				bench_fail(bad, "write", name, err);
				return -1;
			}
			done += (size_t)w;
		}
		len -= n;
	}
	if (close(fd) != 0) {
		bench_fail(bad, "close", name, errno);
		return -1;
	}
	return 0;
}

static int bench_tree(long count, long min_kib, long max_kib, long subdirs, uint64_t seed)
{
	unsigned char *buf = malloc(BENCH_BUF_SIZE);
	struct bench_rng sizes = {seed};
	char name[64];
	long bad = 0;
	uint64_t bytes = 0;

	if (!buf) {
		fprintf(stderr, "bench_files: out of memory\n");
		return 1;
	}
	for (long d = 0; d < subdirs; d++) {
		snprintf(name, sizeof(name), "d%02ld", d);
		if (mkdir(name, 0755) != 0 && errno != EEXIST)
			bench_fail(&bad, "mkdir", name, errno);
		snprintf(name, sizeof(name), "d%02ld/sub", d);
		if (mkdir(name, 0755) != 0 && errno != EEXIST)
			bench_fail(&bad, "mkdir", name, errno);
	}
	for (long i = 0; i < count; i++) {
		/* sizes in bytes, uniform in [min_kib KiB, max_kib KiB] */
		uint64_t lo = (uint64_t)min_kib * 1024, hi = (uint64_t)max_kib * 1024;
		uint64_t len = lo + bench_rng_next(&sizes) % (hi - lo + 1);
		struct bench_rng content = {seed ^ ((uint64_t)i * 0x2545f4914f6cdd1dULL)};

		snprintf(name, sizeof(name), "d%02ld/%s%06ld.dat", i % subdirs,
			 (i / subdirs) % 2 ? "sub/" : "", i);
		if (bench_write_random(name, len, &content, buf, &bad) == 0)
			bytes += len;
	}
	free(buf);
	printf("files=%ld bytes=%llu\n", count - bad, (unsigned long long)bytes);
	return bad ? 1 : 0;
}

static int bench_random(const char *file, long mib, uint64_t seed)
{
	unsigned char *buf = malloc(BENCH_BUF_SIZE);
	struct bench_rng r = {seed};
	long bad = 0;

	if (!buf) {
		fprintf(stderr, "bench_files: out of memory\n");
		return 1;
	}
	bench_write_random(file, (uint64_t)mib << 20, &r, buf, &bad);
	free(buf);
	printf("files=%d bytes=%llu\n", bad ? 0 : 1, bad ? 0ULL : (unsigned long long)mib << 20);
	return bad ? 1 : 0;
}

static int bench_usage(void)
{
	fprintf(stderr, "usage: bench_files create|stat DIR COUNT\n"
			"       bench_files tree DIR COUNT MIN_KIB MAX_KIB SUBDIRS SEED\n"
			"       bench_files random FILE MIB SEED\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return bench_usage();
	const char *cmd = argv[1];

	if ((!strcmp(cmd, "create") || !strcmp(cmd, "stat")) && argc == 4) {
		long count = bench_parse(argv[3], "COUNT", 0);

		bench_chdir(argv[2]);
		return !strcmp(cmd, "create") ? bench_create(count) : bench_stat(count);
	}
	if (!strcmp(cmd, "tree") && argc == 8) {
		long count = bench_parse(argv[3], "COUNT", 0);
		long min_kib = bench_parse(argv[4], "MIN_KIB", 0);
		long max_kib = bench_parse(argv[5], "MAX_KIB", min_kib);
		long subdirs = bench_parse(argv[6], "SUBDIRS", 1);
		long seed = bench_parse(argv[7], "SEED", 0);

		bench_chdir(argv[2]);
		return bench_tree(count, min_kib, max_kib, subdirs, (uint64_t)seed);
	}
	if (!strcmp(cmd, "random") && argc == 5) {
		long mib = bench_parse(argv[3], "MIB", 0);
		long seed = bench_parse(argv[4], "SEED", 0);

		return bench_random(argv[2], mib, (uint64_t)seed);
	}
	return bench_usage();
}
