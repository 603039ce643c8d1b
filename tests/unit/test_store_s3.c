/*
 * test_store_s3.c - the store conformance test, run against a real S3
 * server: put/get/range/head/delete, listing with continuation, keys with
 * spaces and non-ASCII characters, an empty object, a 100 MiB multipart
 * upload read back byte-exact, an aborted multipart upload that leaves
 * nothing behind, batch delete, and wrong credentials answered at once
 * (-EACCES, one request, no retry storm).
 *
 * The server comes from the environment (tools/lib/rgw.sh writes it):
 *   DV_TEST_S3_ENDPOINT, DV_TEST_S3_REGION, DV_TEST_S3_ACCESS_KEY,
 *   DV_TEST_S3_SECRET_KEY, optional DV_TEST_S3_BUCKET (else a fresh bucket
 *   is created and removed) and DV_TEST_S3_PATH_STYLE (default true).
 * Without them the test FAILS: it never skips.
 *
 * Everything is written under a per-run prefix, removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "testfiles.h"
#include "docvault/config.h"
#include "docvault/log.h"
#include "docvault/store.h"
#include "docvault/store_s3.h"

#define MIB (1024 * 1024ULL)

static char run_prefix[96];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An unlinked temporary file holding len bytes of data (or zeros). */
static int tmp_file(const void *data, size_t len)
{
	char path[] = "/tmp/dv-test-s3.XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	if (len && write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return fd;
}

static void key_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s%s", run_prefix, name);
}

/* --- list collection ---------------------------------------------------- */

struct seen {
	char *keys[64];
	uint64_t sizes[64];
	int n;
	int stop_after; /* 0: never */
};

static int collect(void *arg, const char *key, uint64_t size)
{
	struct seen *s = arg;

	if (s->n < 64) {
		s->keys[s->n] = strdup(key);
		s->sizes[s->n] = size;
	}
	s->n++;
	return s->stop_after && s->n >= s->stop_after;
}

static void seen_free(struct seen *s)
{
	for (int i = 0; i < s->n && i < 64; i++)
		free(s->keys[i]);
	memset(s, 0, sizeof(*s));
}

/* --- cases -------------------------------------------------------------- */

static void test_basic(struct store *st)
{
	static const char body[] = "hello, world: the S3 store speaks\n";
	const size_t len = sizeof(body) - 1;
	char key[256], buf[128];
	size_t got = 0;
	uint64_t size = 0;
	int fd = tmp_file(body, len), out;

	CHECK(fd >= 0);
	key_of(key, sizeof(key), "basic/hello.txt");
	CHECK_EQ(store_put_fd(st, key, fd, len, NULL), 0);
	CHECK_EQ(store_head(st, key, &size), 0);
	CHECK_EQ(size, len);

	/* Whole, a middle range, a range running past the end. */
	CHECK_EQ(store_get_range(st, key, 0, sizeof(buf), buf, &got), 0);
	CHECK_EQ(got, len);
	CHECK(memcmp(buf, body, len) == 0);
	CHECK_EQ(store_get_range(st, key, 7, 5, buf, &got), 0);
	CHECK_EQ(got, 5);
	CHECK(memcmp(buf, "world", 5) == 0);
	CHECK_EQ(store_get_range(st, key, len - 3, 10, buf, &got), 0);
	CHECK_EQ(got, 3);
	CHECK(memcmp(buf, body + len - 3, 3) == 0);
	/* At the end: nothing, no error. Past it: -EINVAL. */
	CHECK_EQ(store_get_range(st, key, len, 10, buf, &got), 0);
	CHECK_EQ(got, 0);
	CHECK_EQ(store_get_range(st, key, len + 10, 10, buf, &got), -EINVAL);

	/* To a file at the same offsets. */
	out = tmp_file(NULL, 0);
	CHECK(out >= 0);
	CHECK_EQ(store_get_to_fd(st, key, 7, 12, out), 0);
	CHECK_EQ(pread(out, buf, 12, 7), 12);
	CHECK(memcmp(buf, body + 7, 12) == 0);
	CHECK_EQ(store_get_to_fd(st, key, 0, len, out), 0);
	CHECK(compare_files(fd, out, len) == 0);
	CHECK_EQ(store_get_to_fd(st, key, 0, len + 1, out), -EINVAL);
	close(out);

	/* Known SHA-256 given by the caller: a wrong one is refused by the server. */
	{
		unsigned char bad[32] = {1};

		CHECK(store_put_fd(st, key, fd, len, bad) != 0);
	}

	/* Delete, twice; then it is gone. */
	CHECK_EQ(store_del(st, key), 0);
	CHECK_EQ(store_del(st, key), 0);
	CHECK_EQ(store_head(st, key, &size), -ENOENT);
	CHECK_EQ(store_get_range(st, key, 0, sizeof(buf), buf, &got), -ENOENT);
	CHECK_EQ(store_get_to_fd(st, key, 0, 4, fd), -ENOENT);
	close(fd);
}

static void test_empty(struct store *st)
{
	char key[256], buf[16];
	size_t got = 99;
	uint64_t size = 99;
	struct seen seen = {0};
	char pfx[256];
	int fd = tmp_file(NULL, 0);

	CHECK(fd >= 0);
	key_of(key, sizeof(key), "empty/nothing");
	CHECK_EQ(store_put_fd(st, key, fd, 0, NULL), 0);
	CHECK_EQ(store_head(st, key, &size), 0);
	CHECK_EQ(size, 0);
	CHECK_EQ(store_get_range(st, key, 0, sizeof(buf), buf, &got), 0);
	CHECK_EQ(got, 0);
	CHECK_EQ(store_get_to_fd(st, key, 0, 0, fd), 0);
	key_of(pfx, sizeof(pfx), "empty/");
	CHECK_EQ(store_list(st, pfx, collect, &seen), 0);
	CHECK_EQ(seen.n, 1);
	if (seen.n == 1) {
		CHECK_STREQ(seen.keys[0], key);
		CHECK_EQ(seen.sizes[0], 0);
	}
	seen_free(&seen);
	CHECK_EQ(store_del(st, key), 0);
	close(fd);
}

static void test_odd_keys(struct store *st)
{
	static const char *const names[] = {
	    "odd/a key with spaces.txt",
	    "odd/\xc3\xbcn\xc3\xaf"
	    "c\xc3\xb6"
	    "d\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
	    "\xe2\x80\x93 \xc3\x9f.bin",
	    "odd/sym+&=?#%;,!'()*@$[]~.dat",
	    "odd/xml<&>\"'.txt",
	    "odd/dir/./../dots..",
	};
	const size_t n = sizeof(names) / sizeof(names[0]);
	char keys[8][256], pfx[256], buf[64];
	const char *kp[8];
	struct seen seen = {0};
	size_t got;

	for (size_t i = 0; i < n; i++) {
		char body[32];
		int len = snprintf(body, sizeof(body), "object %zu", i);
		int fd = tmp_file(body, (size_t)len);

		key_of(keys[i], sizeof(keys[i]), names[i]);
		kp[i] = keys[i];
		CHECK_EQ(store_put_fd(st, keys[i], fd, (uint64_t)len, NULL), 0);
		CHECK_EQ(store_get_range(st, keys[i], 0, sizeof(buf), buf, &got), 0);
		CHECK_EQ(got, (size_t)len);
		CHECK(memcmp(buf, body, got) == 0);
		close(fd);
	}
	/* The listing gives the keys back byte for byte, in key order. */
	key_of(pfx, sizeof(pfx), "odd/");
	CHECK_EQ(store_list(st, pfx, collect, &seen), 0);
	CHECK_EQ(seen.n, (int)n);
	for (int i = 0; i < seen.n && i < (int)n; i++) {
		bool found = false;

		for (size_t k = 0; k < n; k++)
			found = found || strcmp(seen.keys[i], keys[k]) == 0;
		CHECK(found);
		if (i > 0)
			CHECK(strcmp(seen.keys[i - 1], seen.keys[i]) < 0);
	}
	seen_free(&seen);
	/* Batch delete, with a missing key among them. */
	kp[n] = "no/such/key/at/all";
	CHECK_EQ(store_del_batch(st, kp, n + 1), 0);
	CHECK_EQ(store_list(st, pfx, collect, &seen), 0);
	CHECK_EQ(seen.n, 0);
	seen_free(&seen);
}

static void test_list_continuation(struct store *st)
{
	char keys[5][256], pfx[256];
	const char *kp[5];
	struct seen seen = {0};
	uint64_t before;
	int fd = tmp_file("x", 1);

	for (int i = 0; i < 5; i++) {
		char name[32];

		snprintf(name, sizeof(name), "list/k%d", i);
		key_of(keys[i], sizeof(keys[i]), name);
		kp[i] = keys[i];
		CHECK_EQ(store_put_fd(st, keys[i], fd, 1, NULL), 0);
	}
	key_of(pfx, sizeof(pfx), "list/");
	store_s3_test_set_list_max_keys(st, 2);
	before = store_s3_test_requests(st);
	CHECK_EQ(store_list(st, pfx, collect, &seen), 0);
	CHECK_EQ(store_s3_test_requests(st) - before, 3); /* 2 + 2 + 1 */
	CHECK_EQ(seen.n, 5);
	for (int i = 0; i < seen.n && i < 5; i++) {
		CHECK_STREQ(seen.keys[i], keys[i]);
		CHECK_EQ(seen.sizes[i], 1);
	}
	seen_free(&seen);

	/* The callback stops the listing: no further page is fetched. */
	seen.stop_after = 3;
	before = store_s3_test_requests(st);
	CHECK_EQ(store_list(st, pfx, collect, &seen), 0);
	CHECK_EQ(seen.n, 3);
	CHECK_EQ(store_s3_test_requests(st) - before, 2);
	seen_free(&seen);

	/* A prefix that matches nothing. */
	key_of(pfx, sizeof(pfx), "list/none");
	CHECK_EQ(store_list(st, pfx, collect, &seen), 0);
	CHECK_EQ(seen.n, 0);
	seen_free(&seen);
	store_s3_test_set_list_max_keys(st, 0);

	CHECK_EQ(store_del_batch(st, kp, 5), 0);
	key_of(pfx, sizeof(pfx), "list/");
	CHECK_EQ(store_list(st, pfx, collect, &seen), 0);
	CHECK_EQ(seen.n, 0);
	seen_free(&seen);
	close(fd);
}

static void test_multipart(struct store *st)
{
	const uint64_t size = 100 * MIB + 12345; /* the last part is short */
	char key[256], pfx[256], buf[512], want[512];
	int src = tmp_file(NULL, 0), dst = tmp_file(NULL, 0), uploads = -1;
	uint64_t got_size = 0;
	size_t got = 0;
	double t0, t1, t2;

	CHECK(src >= 0 && dst >= 0);
	CHECK_EQ(fill_random(src, size, 0x5eed), 0);
	key_of(key, sizeof(key), "big/100MiB");
	t0 = now();
	CHECK_EQ(store_put_fd(st, key, src, size, NULL), 0);
	t1 = now();
	CHECK_EQ(store_head(st, key, &got_size), 0);
	CHECK_EQ(got_size, size);
	CHECK_EQ(store_get_to_fd(st, key, 0, size, dst), 0);
	t2 = now();
	CHECK_EQ(compare_files(src, dst, size), 0);
	printf("multipart: 100 MiB up in %.2f s (%.0f MiB/s), down in %.2f s (%.0f MiB/s)\n",
	       t1 - t0, 100 / (t1 - t0), t2 - t1, 100 / (t2 - t1));

	/* A range across a part boundary (parts are 5 MiB here). */
	CHECK_EQ(store_get_range(st, key, 5 * MIB - 200, sizeof(buf), buf, &got), 0);
	CHECK_EQ(got, sizeof(buf));
	CHECK_EQ(pread(src, want, sizeof(want), (off_t)(5 * MIB - 200)), (ssize_t)sizeof(want));
	CHECK(memcmp(buf, want, sizeof(buf)) == 0);
	/* The tail. */
	CHECK_EQ(store_get_range(st, key, size - 100, sizeof(buf), buf, &got), 0);
	CHECK_EQ(got, 100);
	CHECK_EQ(pread(src, want, 100, (off_t)(size - 100)), 100);
	CHECK(memcmp(buf, want, 100) == 0);

	key_of(pfx, sizeof(pfx), "big/");
	CHECK_EQ(store_s3_test_uploads(st, pfx, &uploads), 0);
	CHECK_EQ(uploads, 0);
	CHECK_EQ(store_del(st, key), 0);
	close(src);
	close(dst);
}

/* A part that cannot be read fails the upload, which is aborted. */
static void test_multipart_abort(struct store *st)
{
	char key[256], pfx[256];
	int fd = tmp_file(NULL, 0), uploads = -1;
	uint64_t size;

	CHECK(fd >= 0);
	CHECK_EQ(fill_random(fd, 20 * MIB, 7), 0);
	key_of(key, sizeof(key), "abort/short-file");
	/* The file holds 20 MiB; 30 are announced. */
	CHECK_EQ(store_put_fd(st, key, fd, 30 * MIB, NULL), -EIO);
	CHECK_EQ(store_head(st, key, &size), -ENOENT);
	key_of(pfx, sizeof(pfx), "abort/");
	CHECK_EQ(store_s3_test_uploads(st, pfx, &uploads), 0);
	CHECK_EQ(uploads, 0);
	close(fd);
}

static void cfg_fill(struct dv_config *cfg, const char *bucket)
{
	const char *ps = getenv("DV_TEST_S3_PATH_STYLE");

	memset(cfg, 0, sizeof(*cfg));
	cfg->path = "test_store_s3";
	cfg->storage.type = CONFIG_STORE_S3;
	cfg->storage.endpoint = getenv("DV_TEST_S3_ENDPOINT");
	cfg->storage.region = getenv("DV_TEST_S3_REGION");
	cfg->storage.bucket = (char *)bucket;
	cfg->storage.prefix = NULL;
	cfg->storage.path_style = !ps || strcmp(ps, "false") != 0;
	cfg->storage.access_key = getenv("DV_TEST_S3_ACCESS_KEY");
	cfg->storage.secret_key = getenv("DV_TEST_S3_SECRET_KEY");
	cfg->storage.tls_verify = true;
	cfg->storage.part_size = 5 * MIB;
	cfg->storage.multipart_threshold = 16 * MIB;
	cfg->storage.max_connections = 4;
	cfg->storage.max_retries = 4;
	cfg->storage.connect_timeout = 5;
	cfg->storage.request_timeout = 30;
}

/* Wrong credentials: -EACCES at once, one request per call, no retry storm. */
static void test_wrong_credentials(const char *bucket, const char *key)
{
	struct dv_config cfg;
	struct store *st = NULL;
	char err[256], buf[8];
	size_t got;
	uint64_t size;
	int fd = tmp_file("abc", 3);

	cfg_fill(&cfg, bucket);
	cfg.storage.secret_key = "wrong-secret-key-wrong-secret-key-00000";
	CHECK_EQ(store_s3_open(&cfg, &st, err, sizeof(err)), 0);
	if (st) {
		CHECK_EQ(store_put_fd(st, key, fd, 3, NULL), -EACCES);
		CHECK_EQ(store_s3_test_requests(st), 1);
		CHECK_EQ(store_get_range(st, key, 0, sizeof(buf), buf, &got), -EACCES);
		CHECK_EQ(store_s3_test_requests(st), 2);
		CHECK_EQ(store_head(st, key, &size), -EACCES);
		CHECK_EQ(store_s3_test_requests(st), 3);
		store_close(st);
	}
	st = NULL;
	cfg_fill(&cfg, bucket);
	cfg.storage.access_key = "NOSUCHACCESSKEY00000";
	CHECK_EQ(store_s3_open(&cfg, &st, err, sizeof(err)), 0);
	if (st) {
		CHECK_EQ(store_put_fd(st, key, fd, 3, NULL), -EACCES);
		CHECK_EQ(store_s3_test_requests(st), 1);
		store_close(st);
	}
	close(fd);
}

/* The bandwidth caps hold. */
static void test_bandwidth(const char *bucket)
{
	const uint64_t size = 3 * MIB;
	struct dv_config cfg;
	struct store *st = NULL;
	char err[256], key[256];
	int fd = tmp_file(NULL, 0), out = tmp_file(NULL, 0);
	double t0, t1, t2;

	CHECK(fd >= 0 && out >= 0);
	CHECK_EQ(fill_random(fd, size, 3), 0);
	cfg_fill(&cfg, bucket);
	cfg.storage.upload_limit = 2 * MIB;
	cfg.storage.download_limit = 2 * MIB;
	CHECK_EQ(store_s3_open(&cfg, &st, err, sizeof(err)), 0);
	if (!st)
		return;
	key_of(key, sizeof(key), "bw/3MiB");
	t0 = now();
	CHECK_EQ(store_put_fd(st, key, fd, size, NULL), 0);
	t1 = now();
	CHECK_EQ(store_get_to_fd(st, key, 0, size, out), 0);
	t2 = now();
	printf("bandwidth caps 2 MiB/s: 3 MiB up in %.2f s, down in %.2f s\n", t1 - t0,
	       t2 - t1); /* 3 MiB at 2 MiB/s with 0.1 s of burst: 1.4 s at least each way. */
	CHECK(t1 - t0 >= 1.35 && t1 - t0 < 10);
	CHECK(t2 - t1 >= 1.35 && t2 - t1 < 10);
	CHECK_EQ(compare_files(fd, out, size), 0);
	CHECK_EQ(store_del(st, key), 0);
	store_close(st);
	close(fd);
	close(out);
}

/* Nobody listens: retried max_retries times, then -EIO. */
static void test_refused(const char *bucket)
{
	struct dv_config cfg;
	struct store *st = NULL;
	char err[256];
	uint64_t size;

	cfg_fill(&cfg, bucket);
	cfg.storage.endpoint = "http://127.0.0.1:1";
	cfg.storage.max_retries = 2;
	CHECK_EQ(store_s3_open(&cfg, &st, err, sizeof(err)), 0);
	if (st) {
		CHECK_EQ(store_head(st, "any", &size), -EIO);
		CHECK_EQ(store_s3_test_requests(st), 3);
		store_close(st);
	}
}

static void test_open_errors(void)
{
	struct dv_config cfg;
	struct store *st = NULL;
	char err[256];

	cfg_fill(&cfg, "some-bucket");
	cfg.storage.endpoint = "ftp://example.com";
	CHECK_EQ(store_s3_open(&cfg, &st, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "endpoint") != NULL);
	cfg_fill(&cfg, "some-bucket");
	cfg.storage.secret_key = NULL;
	CHECK_EQ(store_s3_open(&cfg, &st, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "AWS_SECRET_ACCESS_KEY") != NULL);
	cfg_fill(&cfg, "x");
	CHECK_EQ(store_s3_open(&cfg, &st, err, sizeof(err)), -EINVAL);
	CHECK(st == NULL);
}

static int remove_all(void *arg, const char *key, uint64_t size)
{
	struct store *st = arg;

	(void)size;
	store_del(st, key);
	return 0;
}

int main(void)
{
	static const char *const vars[] = {"DV_TEST_S3_ENDPOINT", "DV_TEST_S3_REGION",
					   "DV_TEST_S3_ACCESS_KEY", "DV_TEST_S3_SECRET_KEY"};
	char bucket[64], err[256], key[256];
	const char *given = getenv("DV_TEST_S3_BUCKET");
	struct dv_config cfg;
	struct store *st = NULL;
	bool created = false;

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		if (!getenv(vars[i]) || !*getenv(vars[i])) {
			fprintf(stderr,
				"test_store_s3: %s is not set: this test needs a real S3 server. "
				"Start one with `tools/lib/rgw.sh start DIR && . DIR/env` "
				"(and export the variables), or point DV_TEST_S3_* at any S3 "
				"endpoint.\n",
				vars[i]);
			CHECK(getenv(vars[i]) != NULL);
			return test_done();
		}
	}
	snprintf(run_prefix, sizeof(run_prefix), "dvtest-%ld-%d/", (long)time(NULL), (int)getpid());
	if (given && *given)
		snprintf(bucket, sizeof(bucket), "%s", given);
	else
		snprintf(bucket, sizeof(bucket), "dvtest-%ld-%d", (long)time(NULL), (int)getpid());

	test_open_errors();
	cfg_fill(&cfg, bucket);
	CHECK_EQ(store_s3_open(&cfg, &st, err, sizeof(err)), 0);
	if (!st) {
		fprintf(stderr, "test_store_s3: %s\n", err);
		return test_done();
	}
	if (!given || !*given) {
		int ret = store_s3_test_bucket(st, "PUT");

		CHECK_EQ(ret, 0);
		created = ret == 0;
		if (!created) {
			fprintf(stderr, "test_store_s3: cannot create bucket %s at %s\n", bucket,
				cfg.storage.endpoint);
			store_close(st);
			return test_done();
		}
	}

	test_basic(st);
	test_empty(st);
	test_odd_keys(st);
	test_list_continuation(st);
	test_multipart(st);
	test_multipart_abort(st);
	key_of(key, sizeof(key), "denied/object");
	test_wrong_credentials(bucket, key);
	test_refused(bucket);
	test_bandwidth(bucket);

	store_list(st, run_prefix, remove_all, st);
	if (created)
		CHECK_EQ(store_s3_test_bucket(st, "DELETE"), 0);
	store_close(st);
	return test_done();
}
