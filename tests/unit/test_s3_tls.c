/*
 * test_s3_tls.c - the S3 store over TLS and with virtual-hosted-style URLs,
 * on a private RGW that this test starts itself:
 *
 *  - TLS: a private CA and a server certificate for 127.0.0.1 and localhost
 *    are made here with the openssl command; the RGW serves HTTPS with them
 *    next to plain HTTP (tools/lib/rgw.sh's RGW_SSL_CERT / RGW_SSL_KEY).
 *    With ca_file = the CA, put/get/head/list/delete and a multipart upload
 *    work; without it (tls_verify = true, the system's CAs), with another CA
 *    or with a missing ca_file, every call fails at once (-EIO, one request,
 *    no backoff: a TLS failure is not retried) and the log line names the
 *    endpoint and says the certificate is not trusted; a certificate that
 *    does not name the host is refused too; tls_verify = false works without
 *    a CA.
 *  - Virtual-hosted style (path_style = false): the bucket goes into the
 *    host name, BUCKET.localhost. libcurl (7.78 and later; Debian 12 has
 *    7.88) resolves localhost and every *.localhost name to the loopback
 *    itself, without /etc/hosts or DNS; the RGW is told `rgw dns name =
 *    localhost` (rgw.sh's RGW_DNS_NAME) so that it takes the bucket from the
 *    Host header. Over http and https: put/get/list/delete and multipart
 *    work, the RGW's request log shows the paths without the bucket and the
 *    authenticated user (so the URLs really were virtual-hosted and the
 *    SigV4 signature over that Host matched), objects cross over to a
 *    path-style store on the same bucket both ways, a bucket is created and
 *    removed through its virtual host, and a wrong secret is refused
 *    (SignatureDoesNotMatch: the signature is checked, not ignored).
 *
 * The certificate lists DNS:BUCKET.localhost besides DNS:*.localhost: curl
 * (like OpenSSL) does not let a wildcard stand for a label right under a
 * top-level name ("*.localhost" matches no host), which the test checks.
 *
 * The RGW is started with $DV_SOURCE_DIR/tools/lib/rgw.sh (ctest sets
 * DV_SOURCE_DIR) in a directory under $TMPDIR, and stopped with --purge at
 * the end. If it cannot be started the test FAILS, it never skips.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "testfiles.h"
#include "docvault/config.h"
#include "docvault/store.h"
#include "docvault/store_s3.h"

#define MIB	    (1024 * 1024ULL)
#define MAX_RETRIES 4
#define BIG_SIZE    (11 * MIB + 3) /* 3 parts of 5 MiB */

extern char **environ;

/* The private RGW and the files of this run. */
struct env {
	char dir[200];	    /* the run's temporary directory */
	char rgw_dir[256];  /* the cluster, under dir */
	char ca[256];	    /* the CA that signed the server's certificate */
	char other_ca[256]; /* a CA that did not */
	char http[128];	    /* http://127.0.0.1:PORT */
	char https[128];    /* https://127.0.0.1:PORT */
	int http_port, https_port;
	char *region, *access_key, *secret_key;
	char bucket[64];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static char *read_text(const char *path)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t n;

		if (len + 4096 + 1 > cap) {
			char *p = realloc(buf, cap = cap ? cap * 2 : 8192);

			if (!p)
				break;
			buf = p;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (buf)
		buf[len] = '\0';
	return buf;
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* The value of NAME=value in the env file text, malloc'ed; NULL if absent. */
static char *env_value(const char *text, const char *name)
{
	size_t nl = strlen(name);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
			const char *v = p + nl + 1;

			return strndup(v, strcspn(v, "\n"));
		}
	}
	return NULL;
}

/*
 * Runs argv (found in PATH) with stdin from /dev/null, stdout to out (NULL:
 * /dev/null) and stderr to out too (NULL: ours), no other fd. Its exit
 * status, or -1.
 */
static int run(char *const argv[], const char *out)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status = 0, rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out ? out : "/dev/null",
					 O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (out)
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "test_s3_tls: cannot run %s: %s\n", argv[0], strerror(rc));
		return -1;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* --- certificates ---------------------------------------------------------- */

/* A self-signed CA: DIR/NAME.pem and DIR/NAME.key. */
static int make_ca(const char *dir, const char *name, const char *log)
{
	char key[512], pem[512], subj[64];

	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(pem, sizeof(pem), "%s/%s.pem", dir, name);
	snprintf(subj, sizeof(subj), "/CN=docvault test %s", name);
	return run((char *const[]){"openssl",
				   "req",
				   "-x509",
				   "-newkey",
				   "ec",
				   "-pkeyopt",
				   "ec_paramgen_curve:P-256",
				   "-nodes",
				   "-keyout",
				   key,
				   "-out",
				   pem,
				   "-days",
				   "2",
				   "-subj",
				   subj,
				   "-addext",
				   "basicConstraints=critical,CA:TRUE",
				   "-addext",
				   "keyUsage=critical,keyCertSign,cRLSign",
				   NULL},
		   log);
}

/*
 * The server's key and certificate (DIR/server.key, DIR/server.pem), signed
 * by DIR/ca, for 127.0.0.1, localhost, *.localhost and BUCKET.localhost.
 */
static int make_server_cert(const char *dir, const char *bucket, const char *log)
{
	char key[512], csr[512], pem[512], ca[512], cakey[512], ext[512], text[256];
	int rc;

	snprintf(key, sizeof(key), "%s/server.key", dir);
	snprintf(csr, sizeof(csr), "%s/server.csr", dir);
	snprintf(pem, sizeof(pem), "%s/server.pem", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(cakey, sizeof(cakey), "%s/ca.key", dir);
	snprintf(ext, sizeof(ext), "%s/server.ext", dir);
	snprintf(text, sizeof(text),
		 "subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:*.localhost, "
		 "DNS:%s.localhost\n"
		 "basicConstraints = CA:FALSE\n"
		 "keyUsage = critical, digitalSignature, keyEncipherment\n"
		 "extendedKeyUsage = serverAuth\n",
		 bucket);
	if (write_text(ext, text) != 0)
		return -1;
	rc = run((char *const[]){"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
				 "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
				 "-subj", "/CN=localhost", NULL},
		 log);
	if (rc == 0)
		rc = run((char *const[]){"openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey",
					 cakey, "-set_serial", "4242", "-days", "2", "-extfile",
					 ext, "-out", pem, NULL},
			 log);
	return rc;
}

/* --- the private RGW ----------------------------------------------------- */

/* Makes the certificates and starts the RGW; 0, or -1 having said why. */
static int env_start(struct env *e, const char *script)
{
	char log[512], path[512], cert[512], key[512], *text, *v;
	int rc;

	snprintf(log, sizeof(log), "%s/openssl.log", e->dir);
	if (make_ca(e->dir, "ca", log) != 0 || make_ca(e->dir, "other-ca", log) != 0 ||
	    make_server_cert(e->dir, e->bucket, log) != 0) {
		text = read_text(log);
		fprintf(stderr, "test_s3_tls: openssl failed to make the certificates:\n%s\n",
			text ? text : "(no output)");
		free(text);
		return -1;
	}
	snprintf(e->ca, sizeof(e->ca), "%s/ca.pem", e->dir);
	snprintf(e->other_ca, sizeof(e->other_ca), "%s/other-ca.pem", e->dir);
	snprintf(cert, sizeof(cert), "%s/server.pem", e->dir);
	snprintf(key, sizeof(key), "%s/server.key", e->dir);

	/* Still single-threaded: the environment may change. */
	setenv("RGW_SSL_CERT", cert, 1);
	setenv("RGW_SSL_KEY", key, 1);
	setenv("RGW_DNS_NAME", "localhost", 1);
	setenv("RGW_STORE_BYTES", "1073741824", 1);
	unsetenv("RGW_PORT");
	unsetenv("MON_PORT");
	unsetenv("RGW_SSL_PORT");
	unsetenv("CEPH_ARGS");
	/* stdout to /dev/null: rgw.sh prints the endpoints there; its progress
	 * and, on failure, the daemons' logs go to our stderr. */
	rc = run((char *const[]){"bash", (char *)script, "start", e->rgw_dir, NULL}, NULL);
	if (rc != 0) {
		fprintf(stderr,
			"test_s3_tls: cannot start the private RGW: `bash %s start %s` exited "
			"with %d (its output is above)\n",
			script, e->rgw_dir, rc);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/env", e->rgw_dir);
	text = read_text(path);
	if (!text) {
		fprintf(stderr, "test_s3_tls: rgw.sh wrote no %s\n", path);
		return -1;
	}
	e->region = env_value(text, "DV_TEST_S3_REGION");
	e->access_key = env_value(text, "DV_TEST_S3_ACCESS_KEY");
	e->secret_key = env_value(text, "DV_TEST_S3_SECRET_KEY");
	v = env_value(text, "DV_TEST_S3_ENDPOINT");
	if (v && sscanf(v, "http://127.0.0.1:%d", &e->http_port) == 1)
		snprintf(e->http, sizeof(e->http), "%s", v);
	free(v);
	v = env_value(text, "DV_TEST_S3_ENDPOINT_TLS");
	if (v && sscanf(v, "https://127.0.0.1:%d", &e->https_port) == 1)
		snprintf(e->https, sizeof(e->https), "%s", v);
	free(v);
	free(text);
	if (!e->region || !e->access_key || !e->secret_key || !e->http_port || !e->https_port) {
		fprintf(stderr,
			"test_s3_tls: %s lacks an endpoint (DV_TEST_S3_ENDPOINT and "
			"DV_TEST_S3_ENDPOINT_TLS) or the keys\n",
			path);
		return -1;
	}
	return 0;
}

/*
 * True when the RGW logged a request line holding needle, made by the test
 * user (authenticated: its signature was accepted). The log is written
 * asynchronously: it is polled for up to 10 s.
 */
static bool rgw_logged(const struct env *e, const char *needle)
{
	char path[512], user[64];
	double deadline = now() + 10;

	snprintf(path, sizeof(path), "%s/log/client.rgw.a.log", e->rgw_dir);
	snprintf(user, sizeof(user), " - docvault-test [");
	for (;;) {
		char *text = read_text(path), *p = text;
		bool found = false;

		while (p && (p = strstr(p, needle))) {
			char *bol = p, *eol = strchr(p, '\n');

			while (bol > text && bol[-1] != '\n')
				bol--;
			if (eol)
				*eol = '\0';
			found = strstr(bol, user) != NULL;
			if (found || !eol)
				break;
			p = eol + 1;
		}
		free(text);
		if (found)
			return true;
		if (now() > deadline)
			return false;
		sleep_s(0.2);
	}
}

/* --- stores ---------------------------------------------------------------- */

static void cfg_fill(struct dv_config *cfg, const struct env *e, const char *endpoint,
		     const char *bucket, bool path_style)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->path = "test_s3_tls";
	cfg->storage.type = CONFIG_STORE_S3;
	cfg->storage.endpoint = (char *)endpoint;
	cfg->storage.region = e->region;
	cfg->storage.bucket = (char *)bucket;
	cfg->storage.path_style = path_style;
	cfg->storage.access_key = e->access_key;
	cfg->storage.secret_key = e->secret_key;
	cfg->storage.tls_verify = true;
	cfg->storage.part_size = 5 * MIB;
	cfg->storage.multipart_threshold = 5 * MIB;
	cfg->storage.max_connections = 4;
	cfg->storage.max_retries = MAX_RETRIES;
	cfg->storage.connect_timeout = 5;
	cfg->storage.request_timeout = 30;
}

static struct store *open_store(const struct dv_config *cfg)
{
	struct store *st = NULL;
	char err[256];

	if (store_s3_open(cfg, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "test_s3_tls: %s\n", err);
		CHECK(st != NULL);
	}
	return st;
}

struct seen {
	char keys[8][128];
	uint64_t sizes[8];
	int n;
};

static int collect(void *arg, const char *key, uint64_t size)
{
	struct seen *s = arg;

	if (s->n < 8) {
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
		s->sizes[s->n] = size;
	}
	s->n++;
	return 0;
}

static int remove_all(void *arg, const char *key, uint64_t size)
{
	(void)size;
	store_del(arg, key);
	return 0;
}

/* --- stderr capture, to read what the store logs -------------------------- */

struct capture {
	int saved;
	int fd;
};

static void capture_begin(struct capture *c)
{
	char path[] = "/tmp/dv-test-s3tls-log.XXXXXX";

	fflush(stderr);
	c->fd = mkstemp(path);
	c->saved = -1;
	if (c->fd < 0)
		return;
	unlink(path);
	c->saved = dup(2);
	dup2(c->fd, 2);
}

/* Restores stderr; returns what was written to it (malloc'ed), echoed. */
static char *capture_end(struct capture *c)
{
	char *text = NULL;
	off_t len;

	if (c->fd < 0)
		return strdup("");
	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	len = lseek(c->fd, 0, SEEK_END);
	text = calloc(1, (size_t)(len > 0 ? len : 0) + 1);
	if (text && len > 0 && pread(c->fd, text, (size_t)len, 0) != len)
		text[0] = '\0';
	close(c->fd);
	if (text)
		fputs(text, stderr);
	return text ? text : strdup("");
}

/* --- what every working store must do --------------------------------------- */

/*
 * put/head/get (whole, a range, to a file)/list/delete of small objects, and
 * a multipart upload read back byte-exact, under prefix (ends with '/'),
 * leaving nothing behind. No request may have needed a retry.
 */
static void exercise(struct store *st, const char *prefix, const char *label)
{
	char a[160], b[160], big[160], buf[2048];
	int fa = tmp_random(1500, 11), fb = tmp_random(10, 12), fbig = tmp_random(BIG_SIZE, 13);
	int out = tmp_random(0, 1), uploads = -1;
	struct seen seen = {0};
	uint64_t size = 0, before;
	size_t got = 0;

	fprintf(stderr, "test_s3_tls: %s\n", label);
	CHECK(fa >= 0 && fb >= 0 && fbig >= 0 && out >= 0);
	snprintf(a, sizeof(a), "%sa small object", prefix);
	snprintf(b, sizeof(b), "%sb", prefix);
	snprintf(big, sizeof(big), "%sbig", prefix);

	CHECK_EQ(store_put_fd(st, a, fa, 1500, NULL), 0);
	CHECK_EQ(store_put_fd(st, b, fb, 10, NULL), 0);
	CHECK_EQ(store_head(st, a, &size), 0);
	CHECK_EQ(size, 1500);
	CHECK_EQ(store_get_range(st, a, 0, sizeof(buf), buf, &got), 0);
	CHECK_EQ(got, 1500);
	CHECK_EQ(store_get_range(st, a, 1000, 100, buf + 1500, &got), 0);
	CHECK_EQ(got, 100);
	CHECK(memcmp(buf + 1000, buf + 1500, 100) == 0);
	CHECK_EQ(store_get_to_fd(st, a, 0, 1500, out), 0);
	CHECK_EQ(compare_files(fa, out, 1500), 0);
	CHECK_EQ(store_list(st, prefix, collect, &seen), 0);
	CHECK_EQ(seen.n, 2);
	if (seen.n == 2) {
		CHECK_STREQ(seen.keys[0], a);
		CHECK_EQ(seen.sizes[0], 1500);
		CHECK_STREQ(seen.keys[1], b);
		CHECK_EQ(seen.sizes[1], 10);
	}

	/* Multipart: create, 3 parts, complete; read back in parallel ranges. */
	before = store_s3_test_requests(st);
	CHECK_EQ(store_put_fd(st, big, fbig, BIG_SIZE, NULL), 0);
	CHECK_EQ(store_s3_test_requests(st) - before, 3 + 2);
	CHECK_EQ(store_head(st, big, &size), 0);
	CHECK_EQ(size, BIG_SIZE);
	CHECK_EQ(ftruncate(out, 0), 0);
	CHECK_EQ(store_get_to_fd(st, big, 0, BIG_SIZE, out), 0);
	CHECK_EQ(compare_files(fbig, out, BIG_SIZE), 0);
	CHECK_EQ(store_s3_test_uploads(st, prefix, &uploads), 0);
	CHECK_EQ(uploads, 0);

	CHECK_EQ(store_del(st, a), 0);
	CHECK_EQ(store_del(st, b), 0);
	CHECK_EQ(store_del(st, big), 0);
	CHECK_EQ(store_head(st, a, &size), -ENOENT);
	memset(&seen, 0, sizeof(seen));
	CHECK_EQ(store_list(st, prefix, collect, &seen), 0);
	CHECK_EQ(seen.n, 0);
	CHECK_EQ(store_s3_test_backoff_ms(st), 0);
	close(fa);
	close(fb);
	close(fbig);
	close(out);
}

/* --- TLS ------------------------------------------------------------------ */

static void test_tls_trusted(const struct env *e)
{
	struct dv_config cfg;
	struct store *st;

	cfg_fill(&cfg, e, e->https, e->bucket, true);
	cfg.storage.ca_file = (char *)e->ca;
	st = open_store(&cfg);
	if (!st)
		return;
	exercise(st, "tls-ca/", "TLS, ca_file = the private CA, tls_verify = true");
	store_close(st);
}

static void test_tls_noverify(const struct env *e)
{
	struct dv_config cfg;
	struct store *st;

	cfg_fill(&cfg, e, e->https, e->bucket, true);
	cfg.storage.tls_verify = false;
	st = open_store(&cfg);
	if (!st)
		return;
	exercise(st, "tls-noverify/", "TLS, no ca_file, tls_verify = false");
	store_close(st);
}

/*
 * A store whose TLS handshake must fail: every kind of call fails at once
 * with -EIO after exactly one request and no backoff (a TLS failure is not
 * transient: retrying it max_retries times would only delay the error), and
 * the first failure's log line names the endpoint, says what is wrong (each
 * of want[] must appear in it) and what to fix.
 */
static void expect_tls_refused(const struct env *e, const char *endpoint, const char *bucket,
			       bool path_style, const char *ca_file, const char *label,
			       const char *const *want, size_t nwant)
{
	struct dv_config cfg;
	struct store *st;
	struct capture cap;
	char buf[16], *log;
	uint64_t size;
	size_t got;
	double t0;
	int fd = tmp_random(100, 21), big = tmp_random(BIG_SIZE, 22);

	fprintf(stderr, "test_s3_tls: %s: must fail at once\n", label);
	CHECK(fd >= 0 && big >= 0);
	cfg_fill(&cfg, e, endpoint, bucket, path_style);
	cfg.storage.ca_file = (char *)ca_file;
	st = open_store(&cfg);
	if (!st)
		goto out;
	t0 = now();
	capture_begin(&cap);
	CHECK_EQ(store_head(st, "refused/obj", &size), -EIO);
	log = capture_end(&cap);
	CHECK_EQ(store_s3_test_requests(st), 1);
	CHECK(strstr(log, endpoint) != NULL);
	CHECK(strstr(log, "HEAD refused/obj") != NULL);
	CHECK(strstr(log, "1 attempt") != NULL);
	CHECK(strstr(log, "ca_file") != NULL);
	for (size_t i = 0; i < nwant; i++) {
		if (!strstr(log, want[i]))
			fprintf(stderr, "test_s3_tls: the log line above lacks \"%s\"\n", want[i]);
		CHECK(strstr(log, want[i]) != NULL);
	}
	CHECK(strstr(log, e->secret_key) == NULL);
	free(log);

	CHECK_EQ(store_put_fd(st, "refused/obj", fd, 100, NULL), -EIO);
	CHECK_EQ(store_get_range(st, "refused/obj", 0, sizeof(buf), buf, &got), -EIO);
	CHECK_EQ(store_list(st, "refused/", collect, &(struct seen){0}), -EIO);
	CHECK_EQ(store_del(st, "refused/obj"), -EIO);
	/* A multipart-sized put stops at its create. */
	CHECK_EQ(store_put_fd(st, "refused/big", big, BIG_SIZE, NULL), -EIO);
	CHECK_EQ(store_s3_test_requests(st), 6);
	CHECK_EQ(store_s3_test_backoff_ms(st), 0);
	/* Fast: no timeout, no backoff (a generous bound for a loaded machine). */
	CHECK(now() - t0 < 10);
	store_close(st);
out:
	if (fd >= 0)
		close(fd);
	if (big >= 0)
		close(big);
}

static void test_tls_refused(const struct env *e)
{
	/*
	 * The log line must say which certificate check failed: curl reports
	 * an untrusted chain and a certificate for another name alike, and
	 * http.c tells them apart (CURLINFO_SSL_VERIFYRESULT).
	 */
	static const char *const untrusted[] = {"certificate", "is not trusted"};
	static const char *const mismatch[] = {"certificate", "does not name"};
	static const char *const no_file[] = {"/no/such/ca.pem"};
	char host[160];

	expect_tls_refused(e, e->https, e->bucket, true, NULL,
			   "TLS, no ca_file (the system's CAs), tls_verify = true", untrusted, 2);
	expect_tls_refused(e, e->https, e->bucket, true, e->other_ca,
			   "TLS, ca_file = a CA that did not sign the certificate", untrusted, 2);
	expect_tls_refused(e, e->https, e->bucket, true, "/no/such/ca.pem",
			   "TLS, ca_file that does not exist", no_file, 1);
	/*
	 * Host name checked: the certificate names localhost, *.localhost and
	 * BUCKET.localhost only; "*.localhost" covers no host (see the top), so
	 * another bucket's virtual host is refused although the CA is trusted.
	 */
	snprintf(host, sizeof(host), "https://localhost:%d", e->https_port);
	expect_tls_refused(e, host, "other-bucket", false, e->ca,
			   "TLS, virtual host other-bucket.localhost not in the certificate",
			   mismatch, 2);
}

/* --- virtual-hosted style --------------------------------------------------- */

/*
 * path_style = false on endpoint (http or https://localhost:PORT): the whole
 * exercise, then proof that the URLs were virtual-hosted and signed right.
 */
static void test_vhost(const struct env *e, const char *endpoint, const char *prefix,
		       const char *label)
{
	struct dv_config cfg;
	struct store *vst, *pst, *bad;
	struct seen seen = {0};
	struct capture cap;
	char needle[256], key[160], key2[160], buf[64], *log;
	int fd = tmp_random(40, 31);
	uint64_t size = 0;
	size_t got = 0;

	cfg_fill(&cfg, e, endpoint, e->bucket, false);
	cfg.storage.ca_file = (char *)e->ca;
	vst = open_store(&cfg);
	cfg_fill(&cfg, e, e->http, e->bucket, true);
	pst = open_store(&cfg);
	if (!vst || !pst || fd < 0) {
		CHECK(fd >= 0);
		goto out;
	}
	exercise(vst, prefix, label);

	/*
	 * The RGW saw "PUT /PREFIX..." (no bucket in the path: it came from the
	 * Host header) from the authenticated user: the signature over
	 * host:BUCKET.localhost:PORT and that path matched. Path-style would
	 * have been "PUT /BUCKET/PREFIX...".
	 */
	snprintf(needle, sizeof(needle), "\"PUT /%sbig?partNumber=1&uploadId=", prefix);
	CHECK(rgw_logged(e, needle));
	snprintf(needle, sizeof(needle), "\"PUT /%sb HTTP/1.1\" 200", prefix);
	if (!rgw_logged(e, needle)) {
		fprintf(stderr, "test_s3_tls: the RGW log has no line with %s by docvault-test\n",
			needle);
		CHECK(0);
	}
	snprintf(needle, sizeof(needle), "\"GET /?list-type=2&prefix=%.*s%%2F",
		 (int)strlen(prefix) - 1, prefix);
	CHECK(rgw_logged(e, needle));

	/* The same objects, seen through the virtual host and through the path. */
	snprintf(key, sizeof(key), "%scross-from-vhost", prefix);
	snprintf(key2, sizeof(key2), "%scross-from-path", prefix);
	CHECK_EQ(store_put_fd(vst, key, fd, 40, NULL), 0);
	CHECK_EQ(store_put_fd(pst, key2, fd, 40, NULL), 0);
	CHECK_EQ(store_head(pst, key, &size), 0);
	CHECK_EQ(size, 40);
	CHECK_EQ(store_get_range(vst, key2, 0, sizeof(buf), buf, &got), 0);
	CHECK_EQ(got, 40);
	CHECK_EQ(store_list(vst, prefix, collect, &seen), 0);
	CHECK_EQ(seen.n, 2);
	CHECK_EQ(store_del(vst, key2), 0);
	CHECK_EQ(store_del(pst, key), 0);
	CHECK_EQ(store_head(vst, key2, &size), -ENOENT);

	/* The signature is checked on virtual-hosted requests: a wrong secret fails. */
	cfg_fill(&cfg, e, endpoint, e->bucket, false);
	cfg.storage.ca_file = (char *)e->ca;
	cfg.storage.secret_key = "wrong-secret-key-0123456789-wrong-secret";
	bad = open_store(&cfg);
	if (bad) {
		capture_begin(&cap);
		CHECK_EQ(store_head(bad, key, &size), -EACCES);
		CHECK_EQ(store_put_fd(bad, key, fd, 40, NULL), -EACCES);
		log = capture_end(&cap);
		CHECK(strstr(log, "SignatureDoesNotMatch") != NULL);
		CHECK_EQ(store_s3_test_requests(bad), 2);
		free(log);
		store_close(bad);
	}
out:
	if (fd >= 0)
		close(fd);
	store_close(vst);
	store_close(pst);
}

/* A bucket created, used and removed through its virtual host (plain http). */
static void test_vhost_bucket(const struct env *e)
{
	struct dv_config cfg;
	struct store *vst, *pst;
	char endpoint[128], bucket[80];
	int fd = tmp_random(33, 41);
	uint64_t size = 0;

	snprintf(endpoint, sizeof(endpoint), "http://localhost:%d", e->http_port);
	snprintf(bucket, sizeof(bucket), "%s-vh", e->bucket);
	cfg_fill(&cfg, e, endpoint, bucket, false);
	vst = open_store(&cfg);
	cfg_fill(&cfg, e, e->http, bucket, true);
	pst = open_store(&cfg);
	if (vst && pst && fd >= 0) {
		CHECK_EQ(store_s3_test_bucket(vst, "PUT"), 0);
		CHECK(rgw_logged(e, "\"PUT / HTTP/1.1\" 200"));
		CHECK_EQ(store_put_fd(vst, "in-the-new-bucket", fd, 33, NULL), 0);
		CHECK_EQ(store_head(pst, "in-the-new-bucket", &size), 0);
		CHECK_EQ(size, 33);
		CHECK_EQ(store_del(vst, "in-the-new-bucket"), 0);
		CHECK_EQ(store_s3_test_bucket(vst, "DELETE"), 0);
		CHECK_EQ(store_head(pst, "in-the-new-bucket", &size), -ENOENT);
	}
	if (fd >= 0)
		close(fd);
	store_close(vst);
	store_close(pst);
}

/* --- main --------------------------------------------------------------- */

int main(void)
{
	const char *srcdir = getenv("DV_SOURCE_DIR"), *tmp = getenv("TMPDIR");
	char script[512], endpoint[128];
	struct env e = {0};
	struct dv_config cfg;
	struct store *st;
	double t0 = now();
	bool started;

	if (!srcdir || !*srcdir) {
		fprintf(stderr,
			"test_s3_tls: DV_SOURCE_DIR is not set: this test starts a private RGW "
			"with $DV_SOURCE_DIR/tools/lib/rgw.sh (ctest sets it; by hand: "
			"DV_SOURCE_DIR=/path/to/docvault)\n");
		CHECK(srcdir != NULL && *srcdir);
		return test_done();
	}
	snprintf(script, sizeof(script), "%s/tools/lib/rgw.sh", srcdir);
	snprintf(e.dir, sizeof(e.dir), "%s/dv-test-s3tls.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(e.dir)) {
		fprintf(stderr, "test_s3_tls: mkdtemp %s: %s\n", e.dir, strerror(errno));
		CHECK(0);
		return test_done();
	}
	snprintf(e.rgw_dir, sizeof(e.rgw_dir), "%s/rgw", e.dir);
	snprintf(e.bucket, sizeof(e.bucket), "dvtls-%d", (int)getpid());

	started = env_start(&e, script) == 0;
	CHECK(started);
	if (started) {
		fprintf(stderr, "test_s3_tls: private RGW on %s and %s after %.1f s\n", e.http,
			e.https, now() - t0);
		cfg_fill(&cfg, &e, e.http, e.bucket, true);
		st = open_store(&cfg);
		if (st && store_s3_test_bucket(st, "PUT") == 0) {
			test_tls_trusted(&e);
			test_tls_noverify(&e);
			test_tls_refused(&e);
			snprintf(endpoint, sizeof(endpoint), "http://localhost:%d", e.http_port);
			test_vhost(&e, endpoint, "vhost-http/",
				   "virtual-hosted style, http://localhost");
			snprintf(endpoint, sizeof(endpoint), "https://localhost:%d", e.https_port);
			test_vhost(&e, endpoint, "vhost-https/",
				   "virtual-hosted style, https://localhost, ca_file");
			test_vhost_bucket(&e);
			store_list(st, "", remove_all, st);
			CHECK_EQ(store_s3_test_bucket(st, "DELETE"), 0);
		} else {
			fprintf(stderr, "test_s3_tls: cannot create bucket %s at %s\n", e.bucket,
				e.http);
			CHECK(0);
		}
		store_close(st);
	}
	/* Stopped even after a failed start: rgw.sh stop finds the daemons by DIR. */
	CHECK_EQ(run((char *const[]){"bash", script, "stop", e.rgw_dir, "--purge", NULL}, NULL), 0);
	{
		static const char *const files[] = {"ca.pem",	    "ca.key",	  "other-ca.pem",
						    "other-ca.key", "server.pem", "server.key",
						    "server.csr",   "server.ext", "openssl.log"};
		char path[512];

		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", e.dir, files[i]);
			unlink(path);
		}
		rmdir(e.rgw_dir);
		if (rmdir(e.dir) != 0)
			fprintf(stderr, "test_s3_tls: %s left behind: %s\n", e.dir,
				strerror(errno));
	}
	free(e.region);
	free(e.access_key);
	free(e.secret_key);
	fprintf(stderr, "test_s3_tls: %.1f s in all\n", now() - t0);
	return test_done();
}
