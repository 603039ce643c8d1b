/*
 * t_common.h - helpers shared by the syscall test programs (t_*.c) of the
 * integration suite, on top of tests/check.h.
 *
 * Model: a program chdir()s into a fresh directory below the target it is
 * given (a docvault mount, or a plain directory when DV_TEST_TARGET=dir) and
 * makes syscalls with relative paths. OK() expects success, ERR() expects a
 * failure with one errno; both count into check.h's counters, print the
 * expression, the line and the errno on failure, and carry on.
 *
 * Single-threaded; everything here is static inline so that each program
 * uses what it needs without unused-function warnings. libc only.
 */
#ifndef DV_T_COMMON_H
#define DV_T_COMMON_H

#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* Prints a section heading: what the following checks are about. */
#define SECTION(...)                                                                               \
	do {                                                                                       \
		printf("-- ");                                                                     \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
		fflush(stdout);                                                                    \
	} while (0)

static inline long t_ok(long r, const char *expr, const char *file, int line)
{
	if (r == -1) {
		int e = errno;
		check_failed_count++;
		fprintf(stderr, "%s:%d: %s failed: %s (errno %d)\n", file, line, expr, strerror(e),
			e);
		errno = e;
	} else {
		check_passed_count++;
	}
	return r;
}

static inline void t_err(long r, int want, const char *expr, const char *wname, const char *file,
			 int line)
{
	int e = errno;
	if (r == -1 && e == want) {
		check_passed_count++;
		return;
	}
	check_failed_count++;
	if (r == -1)
		fprintf(stderr, "%s:%d: %s: expected %s, got %s (errno %d)\n", file, line, expr,
			wname, strerror(e), e);
	else
		fprintf(stderr, "%s:%d: %s: expected %s, but it returned %ld\n", file, line, expr,
			wname, r);
}

/* OK(call): the call succeeds (does not return -1); gives its result. The
 * call is evaluated before t_ok's body reads errno. */
#define OK(call) t_ok((long)(call), #call, __FILE__, __LINE__)
/* ERR(call, E): the call fails with errno E. */
#define ERR(call, e) t_err((long)(call), (e), #call, #e, __FILE__, __LINE__)

/* True when running against a docvault mount (not DV_TEST_TARGET=dir). */
static inline int t_on_mount(void)
{
	const char *t = getenv("DV_TEST_TARGET");
	return !(t && strcmp(t, "dir") == 0);
}

/* Makes DIR/NAME (removing nothing: the target is fresh) and chdir()s in. */
static inline void t_enter(const char *dir, const char *name)
{
	if (chdir(dir) != 0 || mkdir(name, 0755) != 0 || chdir(name) != 0) {
		fprintf(stderr, "cannot set up %s/%s: %s\n", dir, name, strerror(errno));
		exit(2);
	}
}

/* Sleeps long enough for the next timestamp to differ from the last one on
 * any file system (coarse kernel clocks tick every 4-10 ms). */
static inline void t_tick(void)
{
	struct timespec ts = {0, 30 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

static inline int t_ts_cmp(struct timespec a, struct timespec b)
{
	if (a.tv_sec != b.tv_sec)
		return a.tv_sec < b.tv_sec ? -1 : 1;
	if (a.tv_nsec != b.tv_nsec)
		return a.tv_nsec < b.tv_nsec ? -1 : 1;
	return 0;
}

/* CHECK_LATER(a, b): timespec a is strictly after b. */
#define CHECK_LATER(a, b)                                                                          \
	do {                                                                                       \
		struct timespec t_a_ = (a), t_b_ = (b);                                            \
		if (t_ts_cmp(t_a_, t_b_) > 0) {                                                    \
			check_passed_count++;                                                      \
		} else {                                                                           \
			check_failed_count++;                                                      \
			fprintf(stderr,                                                            \
				"%s:%d: %s (%lld.%09ld) is not later than %s (%lld.%09ld)\n",      \
				__FILE__, __LINE__, #a, (long long)t_a_.tv_sec, t_a_.tv_nsec, #b,  \
				(long long)t_b_.tv_sec, t_b_.tv_nsec);                             \
		}                                                                                  \
	} while (0)

/* CHECK_TS_EQ(a, b): equal timespecs. */
#define CHECK_TS_EQ(a, b)                                                                          \
	do {                                                                                       \
		struct timespec t_a_ = (a), t_b_ = (b);                                            \
		if (t_ts_cmp(t_a_, t_b_) == 0) {                                                   \
			check_passed_count++;                                                      \
		} else {                                                                           \
			check_failed_count++;                                                      \
			fprintf(stderr, "%s:%d: %s (%lld.%09ld) != %s (%lld.%09ld)\n", __FILE__,   \
				__LINE__, #a, (long long)t_a_.tv_sec, t_a_.tv_nsec, #b,            \
				(long long)t_b_.tv_sec, t_b_.tv_nsec);                             \
		}                                                                                  \
	} while (0)

/* lstat() that reports a failure and gives a zeroed struct then. */
static inline struct stat t_lstat(const char *path, const char *file, int line)
{
	struct stat st;
	if (lstat(path, &st) != 0) {
		check_failed_count++;
		fprintf(stderr, "%s:%d: lstat(%s) failed: %s\n", file, line, path, strerror(errno));
		memset(&st, 0, sizeof(st));
	}
	return st;
}
#define LSTAT(path) t_lstat((path), __FILE__, __LINE__)

/* Writes LEN bytes at once to a new or truncated file; -1 on error. */
static inline int t_write_file(const char *path, const void *buf, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, buf, len);
	int e = errno;
	if (close(fd) != 0 || n != (ssize_t)len) {
		errno = n < 0 ? e : EIO;
		return -1;
	}
	return 0;
}

/* Reads up to MAX bytes of a file; the byte count or -1. */
static inline ssize_t t_read_file(const char *path, void *buf, size_t max)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got < max) {
		ssize_t n = read(fd, (char *)buf + got, max - got);
		if (n < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return (ssize_t)got;
}

/* Reads N bytes at OFF in full (pread loops); -1 on error, short on EOF. */
static inline ssize_t t_pread_full(int fd, void *buf, size_t n, off_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* True when LEN bytes at P are all zero. */
static inline int t_all_zero(const void *p, size_t len)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		if (c[i])
			return 0;
	return 1;
}

/* Counts the entries named NAME in the current directory (readdir). */
static inline int t_dir_count(const char *dir, const char *name)
{
	DIR *d = opendir(dir);
	int n = 0;
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, name) == 0)
			n++;
	closedir(d);
	return n;
}

/* The d_type readdir gives NAME in DIR, or -1 if it is not listed. */
static inline int t_dir_type(const char *dir, const char *name)
{
	DIR *d = opendir(dir);
	int t = -1;
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, name) == 0)
			t = de->d_type;
	closedir(d);
	return t;
}

#endif
