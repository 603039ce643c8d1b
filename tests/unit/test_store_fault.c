/*
 * test_store_fault.c - the fault-injecting store decorator's own contract,
 * on the local store in a temporary directory: calls pass through and are
 * counted; "fail" stops the next n calls before the inner store, "lose"
 * lets them through and replaces the answer; latency delays (checked with a
 * lower bound only); a cut put reaches the inner store with a source that
 * ends early and leaves no object; rules are per operation, consumed
 * exactly once under concurrent callers, and reset clears them.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "testfiles.h"
#include "docvault/store.h"
#include "docvault/store_fault.h"

#define MIB (1024 * 1024ULL)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 0 when the object key holds exactly the first size bytes of fd. */
static int same_content(struct store *st, const char *key, int fd, uint64_t size)
{
	static char a[MIB], b[MIB];
	uint64_t osize = 0;
	size_t got;

	if (store_head(st, key, &osize) != 0 || osize != size)
		return -1;
	for (uint64_t off = 0; off < size; off += MIB) {
		size_t n = size - off < MIB ? (size_t)(size - off) : MIB;

		if (store_get_range(st, key, off, n, a, &got) != 0 || got != n ||
		    pread(fd, b, n, (off_t)off) != (ssize_t)n || memcmp(a, b, n) != 0)
			return -1;
	}
	return 0;
}

static int count_cb(void *arg, const char *key, uint64_t size)
{
	(void)key;
	(void)size;
	(*(int *)arg)++;
	return 0;
}

/* Objects under prefix, as the inner store lists them. */
static int count_objects(struct store *st, const char *prefix)
{
	int n = 0;

	if (store_list(st, prefix, count_cb, &n) != 0)
		return -1;
	return n;
}

static void test_open(void)
{
	struct store *st = (struct store *)1;

	CHECK_EQ(store_fault_open(NULL, &st), -EINVAL);
	CHECK(st == NULL);
	store_close(NULL);
}

/* Every call is forwarded and counted. */
static void test_pass_through(struct store *st)
{
	static const char body[] = "through the decorator";
	const char *keys[] = {"pass/a", "pass/b"};
	char buf[64];
	size_t got = 0;
	uint64_t size = 0;
	int fd = tmp_random(0, 1), out = tmp_random(0, 2);

	CHECK(fd >= 0 && out >= 0);
	CHECK_EQ(pwrite(fd, body, sizeof(body) - 1, 0), (ssize_t)(sizeof(body) - 1));
	CHECK_STREQ(st->ops->name, "fault");
	CHECK_EQ(store_put_fd(st, keys[0], fd, sizeof(body) - 1, NULL), 0);
	CHECK_EQ(store_put_fd(st, keys[1], fd, sizeof(body) - 1, NULL), 0);
	CHECK_EQ(store_head(st, keys[0], &size), 0);
	CHECK_EQ(size, sizeof(body) - 1);
	CHECK_EQ(store_get_range(st, keys[0], 8, 3, buf, &got), 0);
	CHECK_EQ(got, 3);
	CHECK(memcmp(buf, "the", 3) == 0);
	CHECK_EQ(store_get_to_fd(st, keys[1], 0, sizeof(body) - 1, out), 0);
	CHECK_EQ(pread(out, buf, sizeof(body) - 1, 0), (ssize_t)(sizeof(body) - 1));
	CHECK(memcmp(buf, body, sizeof(body) - 1) == 0);
	CHECK_EQ(count_objects(st, "pass/"), 2);
	CHECK_EQ(store_del(st, keys[0]), 0);
	CHECK_EQ(store_del_batch(st, keys, 2), 0);
	CHECK_EQ(count_objects(store_fault_inner(st), "pass/"), 0);

	CHECK_EQ(store_fault_calls(st, STORE_FAULT_PUT_FD), 2);
	CHECK_EQ(store_fault_calls(st, STORE_FAULT_HEAD), 1);
	CHECK_EQ(store_fault_calls(st, STORE_FAULT_GET_RANGE), 1);
	CHECK_EQ(store_fault_calls(st, STORE_FAULT_GET_TO_FD), 1);
	CHECK_EQ(store_fault_calls(st, STORE_FAULT_LIST), 1);
	CHECK_EQ(store_fault_calls(st, STORE_FAULT_DEL), 1);
	CHECK_EQ(store_fault_calls(st, STORE_FAULT_DEL_BATCH), 1);
	/* Listing through the inner store is not a call of the decorator. */
	CHECK_EQ(store_fault_calls(st, STORE_FAULT_ANY), 8);
	CHECK_EQ(store_fault_injected(st, STORE_FAULT_ANY), 0);
	store_fault_reset(st);
	CHECK_EQ(store_fault_calls(st, STORE_FAULT_ANY), 0);
	close(fd);
	close(out);
}

/* fail: the next n calls fail before the inner store; then calls pass again. */
static void test_fail_next(struct store *st)
{
	struct store *inner = store_fault_inner(st);
	char buf[16];
	size_t got = 99;
	uint64_t size = 0;
	int fd = tmp_random(1000, 3);

	store_fault_fail_next(st, STORE_FAULT_PUT_FD, 2, -EIO);
	CHECK_EQ(store_put_fd(st, "fail/a", fd, 1000, NULL), -EIO);
	CHECK_EQ(store_head(inner, "fail/a", &size), -ENOENT); /* never reached */
	CHECK_EQ(store_put_fd(st, "fail/a", fd, 1000, NULL), -EIO);
	CHECK_EQ(store_put_fd(st, "fail/a", fd, 1000, NULL), 0);
	CHECK_EQ(same_content(inner, "fail/a", fd, 1000), 0);
	CHECK_EQ(store_fault_calls(st, STORE_FAULT_PUT_FD), 3);
	CHECK_EQ(store_fault_injected(st, STORE_FAULT_PUT_FD), 2);

	/* Only the armed operation fails; a positive errno is taken as negative. */
	store_fault_fail_next(st, STORE_FAULT_GET_RANGE, 1, ETIMEDOUT);
	CHECK_EQ(store_head(st, "fail/a", &size), 0);
	CHECK_EQ(store_get_range(st, "fail/a", 0, sizeof(buf), buf, &got), -ETIMEDOUT);
	CHECK_EQ(got, 0);
	CHECK_EQ(store_get_range(st, "fail/a", 0, sizeof(buf), buf, &got), 0);
	CHECK_EQ(got, sizeof(buf));

	/* Arming again replaces; n = 0 disarms. */
	store_fault_fail_next(st, STORE_FAULT_HEAD, 5, -EACCES);
	store_fault_fail_next(st, STORE_FAULT_HEAD, 1, -ENOSPC);
	CHECK_EQ(store_head(st, "fail/a", &size), -ENOSPC);
	CHECK_EQ(store_head(st, "fail/a", &size), 0);
	store_fault_fail_next(st, STORE_FAULT_HEAD, 3, -EIO);
	store_fault_fail_next(st, STORE_FAULT_HEAD, 0, -EIO);
	CHECK_EQ(store_head(st, "fail/a", &size), 0);

	/* ANY arms every operation, n each. */
	store_fault_fail_next(st, STORE_FAULT_ANY, 1, -EIO);
	CHECK_EQ(store_head(st, "fail/a", &size), -EIO);
	CHECK_EQ(store_head(st, "fail/a", &size), 0);
	CHECK_EQ(store_del(st, "fail/a"), -EIO);
	CHECK_EQ(store_head(inner, "fail/a", &size), 0); /* not deleted */
	CHECK_EQ(store_list(st, "fail/", count_cb, &(int){0}), -EIO);
	CHECK_EQ(store_get_to_fd(st, "fail/a", 0, 10, fd), -EIO);
	CHECK_EQ(store_del_batch(st, (const char *const[]){"fail/a"}, 1), -EIO);
	CHECK_EQ(store_get_range(st, "fail/a", 0, 1, buf, &got), -EIO);
	CHECK_EQ(store_put_fd(st, "fail/b", fd, 1000, NULL), -EIO);
	CHECK_EQ(store_fault_injected(st, STORE_FAULT_ANY), 2 + 1 + 1 + 7);
	CHECK_EQ(store_del(st, "fail/a"), 0);
	CHECK_EQ(store_head(inner, "fail/a", &size), -ENOENT);
	store_fault_reset(st);
	close(fd);
}

/* lose: the call takes effect, its answer is replaced. */
static void test_lose_next(struct store *st)
{
	struct store *inner = store_fault_inner(st);
	uint64_t size = 0;
	int fd = tmp_random(5000, 4);

	store_fault_lose_next(st, STORE_FAULT_PUT_FD, 1, -ETIMEDOUT);
	CHECK_EQ(store_put_fd(st, "lose/a", fd, 5000, NULL), -ETIMEDOUT);
	CHECK_EQ(same_content(inner, "lose/a", fd, 5000), 0); /* it arrived */
	/* A retry of the put is idempotent. */
	CHECK_EQ(store_put_fd(st, "lose/a", fd, 5000, NULL), 0);
	CHECK_EQ(same_content(inner, "lose/a", fd, 5000), 0);

	store_fault_lose_next(st, STORE_FAULT_DEL, 1, -EIO);
	CHECK_EQ(store_del(st, "lose/a"), -EIO);
	CHECK_EQ(store_head(inner, "lose/a", &size), -ENOENT); /* it was deleted */
	CHECK_EQ(store_del(st, "lose/a"), 0);

	/* fail is consumed before lose. */
	store_fault_fail_next(st, STORE_FAULT_PUT_FD, 1, -EACCES);
	store_fault_lose_next(st, STORE_FAULT_PUT_FD, 1, -EIO);
	CHECK_EQ(store_put_fd(st, "lose/b", fd, 5000, NULL), -EACCES);
	CHECK_EQ(store_head(inner, "lose/b", &size), -ENOENT);
	CHECK_EQ(store_put_fd(st, "lose/b", fd, 5000, NULL), -EIO);
	CHECK_EQ(store_head(inner, "lose/b", &size), 0);
	CHECK_EQ(store_put_fd(st, "lose/b", fd, 5000, NULL), 0);
	CHECK_EQ(store_fault_injected(st, STORE_FAULT_PUT_FD), 3);
	CHECK_EQ(store_fault_injected(st, STORE_FAULT_DEL), 1);
	CHECK_EQ(store_del(st, "lose/b"), 0);
	store_fault_reset(st);
	close(fd);
}

/* Latency delays the armed operation by at least ms (no upper bound). */
static void test_latency(struct store *st)
{
	uint64_t size = 0;
	double t0, t1;
	int fd = tmp_random(10, 5);

	CHECK_EQ(store_put_fd(st, "lat/a", fd, 10, NULL), 0);
	store_fault_set_latency(st, STORE_FAULT_HEAD, 150);
	t0 = now();
	CHECK_EQ(store_head(st, "lat/a", &size), 0);
	CHECK_EQ(store_head(st, "lat/a", &size), 0);
	t1 = now();
	CHECK(t1 - t0 >= 0.300);
	store_fault_set_latency(st, STORE_FAULT_ANY, 100);
	t0 = now();
	CHECK_EQ(store_del(st, "lat/a"), 0);
	t1 = now();
	CHECK(t1 - t0 >= 0.100);
	store_fault_set_latency(st, STORE_FAULT_ANY, 0);
	/* A failure still waits its latency first. */
	store_fault_set_latency(st, STORE_FAULT_HEAD, 100);
	store_fault_fail_next(st, STORE_FAULT_HEAD, 1, -EIO);
	t0 = now();
	CHECK_EQ(store_head(st, "lat/a", &size), -EIO);
	t1 = now();
	CHECK(t1 - t0 >= 0.100);
	store_fault_reset(st);
	close(fd);
}

/* A cut put: the inner store sees the source end early and stores nothing. */
static void test_cut(struct store *st)
{
	struct store *inner = store_fault_inner(st);
	const uint64_t size = 3 * MIB + 17;
	uint64_t osize = 0;
	int fd = tmp_random(size, 6), small = tmp_random(1000, 7), ret;

	CHECK(fd >= 0 && small >= 0);
	store_fault_cut_next_put(st, MIB + 5);
	/* A put no larger than the cut point goes through untouched... */
	CHECK_EQ(store_put_fd(st, "cut/small", small, 1000, NULL), 0);
	CHECK_EQ(same_content(inner, "cut/small", small, 1000), 0);
	CHECK_EQ(store_fault_injected(st, STORE_FAULT_PUT_FD), 0);
	/* ...and the next larger one is cut. */
	ret = store_put_fd(st, "cut/big", fd, size, NULL);
	CHECK(ret < 0);
	CHECK_EQ(ret, -EIO); /* what the local store answers to a short source */
	CHECK_EQ(store_head(inner, "cut/big", &osize), -ENOENT);
	CHECK_EQ(count_objects(inner, "cut/"), 1);
	CHECK_EQ(store_fault_injected(st, STORE_FAULT_PUT_FD), 1);
	/* The caller's fd is untouched and the cut is consumed. */
	CHECK_EQ(store_put_fd(st, "cut/big", fd, size, NULL), 0);
	CHECK_EQ(same_content(inner, "cut/big", fd, size), 0);
	/* A cut at 0: nothing can be read. */
	store_fault_cut_next_put(st, 0);
	CHECK(store_put_fd(st, "cut/zero", small, 1000, NULL) < 0);
	CHECK_EQ(store_head(inner, "cut/zero", &osize), -ENOENT);
	/* reset disarms a cut. */
	store_fault_cut_next_put(st, 10);
	store_fault_reset(st);
	CHECK_EQ(store_put_fd(st, "cut/zero", small, 1000, NULL), 0);
	CHECK_EQ(store_del_batch(st, (const char *const[]){"cut/small", "cut/big", "cut/zero"}, 3),
		 0);
	CHECK_EQ(count_objects(inner, "cut/"), 0);
	store_fault_reset(st);
	close(fd);
	close(small);
}

struct hammer {
	struct store *st;
	int failures;
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	uint64_t size;

	for (int i = 0; i < 50; i++)
		if (store_head(h->st, "race/a", &size) != 0)
			h->failures++;
	return NULL;
}

/* Armed failures are taken exactly once under concurrent callers. */
static void test_threads(struct store *st)
{
	struct hammer h[4];
	pthread_t tid[4];
	int fd = tmp_random(10, 8), total = 0;

	CHECK_EQ(store_put_fd(st, "race/a", fd, 10, NULL), 0);
	store_fault_reset(st);
	store_fault_fail_next(st, STORE_FAULT_HEAD, 77, -EIO);
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){.st = st};
		CHECK_EQ(pthread_create(&tid[i], NULL, hammer_run, &h[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(tid[i], NULL);
		total += h[i].failures;
	}
	CHECK_EQ(total, 77);
	CHECK_EQ(store_fault_calls(st, STORE_FAULT_HEAD), 200);
	CHECK_EQ(store_fault_injected(st, STORE_FAULT_HEAD), 77);
	CHECK_EQ(store_del(st, "race/a"), 0);
	store_fault_reset(st);
	close(fd);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	char dir[] = "/tmp/dv-test-fault.XXXXXX", err[256];
	struct store *inner = NULL, *st = NULL;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		CHECK(0);
		return test_done();
	}
	CHECK_EQ(store_local_open(dir, &inner, err, sizeof(err)), 0);
	if (!inner) {
		fprintf(stderr, "test_store_fault: %s\n", err);
		return test_done();
	}
	CHECK_EQ(store_fault_open(inner, &st), 0);
	if (!st) {
		store_close(inner);
		return test_done();
	}
	CHECK(store_fault_inner(st) == inner);
	test_open();
	test_pass_through(st);
	test_fail_next(st);
	test_lose_next(st);
	test_latency(st);
	test_cut(st);
	test_threads(st);
	store_close(st); /* closes inner too (ASan would see the leak otherwise) */
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return test_done();
}
