/*
 * testfiles.h - test data files shared by the store tests: pseudo-random
 * content from a seed (xorshift64, so a failure is reproducible) and a
 * byte-exact comparison that names the first MiB that differs.
 */
#ifndef DV_TESTS_TESTFILES_H
#define DV_TESTS_TESTFILES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TESTFILES_MIB (1024 * 1024ULL)

/* Fills fd with size pseudo-random bytes from seed. Returns 0 or -1. */
static inline int fill_random(int fd, uint64_t size, uint64_t seed)
{
	static uint64_t buf[TESTFILES_MIB / 8];
	uint64_t x = seed | 1, done = 0;

	while (done < size) {
		size_t n = size - done < TESTFILES_MIB ? (size_t)(size - done) : TESTFILES_MIB;

		for (size_t i = 0; i < (n + 7) / 8; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = x;
		}
		if (pwrite(fd, buf, n, (off_t)done) != (ssize_t)n)
			return -1;
		done += n;
	}
	return 0;
}

/* An unlinked temporary file holding size pseudo-random bytes; -1 on failure. */
static inline int tmp_random(uint64_t size, uint64_t seed)
{
	char path[] = "/tmp/dv-test-data.XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	if (fill_random(fd, size, seed) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* 0 when the first size bytes of both files are equal, else -1 (and says where). */
static inline int compare_files(int a, int b, uint64_t size)
{
	static char ba[TESTFILES_MIB], bb[TESTFILES_MIB];

	for (uint64_t off = 0; off < size; off += TESTFILES_MIB) {
		size_t n = size - off < TESTFILES_MIB ? (size_t)(size - off) : TESTFILES_MIB;

		if (pread(a, ba, n, (off_t)off) != (ssize_t)n ||
		    pread(b, bb, n, (off_t)off) != (ssize_t)n || memcmp(ba, bb, n) != 0) {
			fprintf(stderr, "files differ in the MiB at offset %llu\n",
				(unsigned long long)off);
			return -1;
		}
	}
	return 0;
}

#endif
