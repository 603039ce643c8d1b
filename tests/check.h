/*
 * check.h - the tiny shared test header: CHECK and CHECK_EQ record a failure
 * with file and line and carry on; test_done() prints the closing line and
 * gives the exit code. No framework, no globals beyond the two counters here.
 */
#ifndef DV_TESTS_CHECK_H
#define DV_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failed_count;
static int check_passed_count;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (cond) {                                                                        \
			check_passed_count++;                                                      \
		} else {                                                                           \
			check_failed_count++;                                                      \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);   \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);                    \
		if (check_a_ == check_b_) {                                                        \
			check_passed_count++;                                                      \
		} else {                                                                           \
			check_failed_count++;                                                      \
			fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n",          \
				__FILE__, __LINE__, #a, #b, check_a_, check_b_);                   \
		}                                                                                  \
	} while (0)

#define CHECK_STREQ(a, b)                                                                          \
	do {                                                                                       \
		const char *check_a_ = (a), *check_b_ = (b);                                       \
		if (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0) {                     \
			check_passed_count++;                                                      \
		} else {                                                                           \
			check_failed_count++;                                                      \
			fprintf(stderr, "%s:%d: CHECK_STREQ(%s, %s) failed: \"%s\" != \"%s\"\n",   \
				__FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",        \
				check_b_ ? check_b_ : "(null)");                                   \
		}                                                                                  \
	} while (0)

/* Prints "N passed, N failed" and returns the process exit code. */
static inline int test_done(void)
{
	printf("%d passed, %d failed\n", check_passed_count, check_failed_count);
	return check_failed_count ? 1 : 0;
}

#endif
