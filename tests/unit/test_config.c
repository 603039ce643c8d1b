/*
 * test_config.c - unit tests of config.c: defaults, every key, every kind of
 * bad value with its exact message, the secret-permission rule, the
 * environment fallback, comments, size parsing, and that
 * conf/docvault.conf.example loads and equals the defaults.
 *
 * Files are written under a mkdtemp() directory that is removed at the end.
 * Needs DV_SOURCE_DIR (set by ctest) for the example file; fails without it.
 */
#include "check.h"

#include "docvault/config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1024ULL * 1024)
#define GIB (1024ULL * 1024 * 1024)

static char tmpdir[256];

/* Writes text to tmpdir/name with exactly this mode; path gets the name. */
static void write_file(const char *name, mode_t mode, const char *text, char *path, size_t len)
{
	int fd;

	snprintf(path, len, "%s/%s", tmpdir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
	CHECK_EQ(fchmod(fd, mode), 0);
	close(fd);
}

/* Loads text written as t.conf with mode; err gets the message. */
static int load_mode(const char *text, mode_t mode, struct dv_config *cfg, char *err, size_t errlen)
{
	char path[PATH_MAX];

	write_file("t.conf", mode, text, path, sizeof(path));
	return config_load(path, cfg, err, errlen);
}

static int load(const char *text, struct dv_config *cfg, char *err, size_t errlen)
{
	return load_mode(text, 0600, cfg, err, errlen);
}

/* Expects text to fail with rc and the message "<tmpdir>/t.conf<suffix>". */
static void expect_error_at(int line, const char *text, mode_t mode, int rc, const char *suffix)
{
	struct dv_config cfg;
	char err[512], want[PATH_MAX + 512];
	int got;

	got = load_mode(text, mode, &cfg, err, sizeof(err));
	snprintf(want, sizeof(want), "%s/t.conf%s", tmpdir, suffix);
	if (got != rc || strcmp(err, want) != 0)
		fprintf(stderr,
			"test_config.c:%d: for:\n%s\n  got rc %d \"%s\"\n want rc %d \"%s\"\n",
			line, text, got, err, rc, want);
	CHECK_EQ(got, rc);
	CHECK_STREQ(err, want);
	config_free(&cfg);
}
#define expect_error(text, rc, suffix) expect_error_at(__LINE__, text, 0600, rc, suffix)

static bool streq_null(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Every field but path. */
static void check_same_config(const struct dv_config *a, const struct dv_config *b)
{
	CHECK(streq_null(a->database.conninfo, b->database.conninfo));
	CHECK_EQ(a->database.pool_size, b->database.pool_size);
	CHECK_EQ(a->storage.type, b->storage.type);
	CHECK(streq_null(a->storage.path, b->storage.path));
	CHECK(streq_null(a->storage.endpoint, b->storage.endpoint));
	CHECK(streq_null(a->storage.region, b->storage.region));
	CHECK(streq_null(a->storage.bucket, b->storage.bucket));
	CHECK(streq_null(a->storage.prefix, b->storage.prefix));
	CHECK_EQ(a->storage.path_style, b->storage.path_style);
	CHECK(streq_null(a->storage.access_key, b->storage.access_key));
	CHECK(streq_null(a->storage.secret_key, b->storage.secret_key));
	CHECK(streq_null(a->storage.session_token, b->storage.session_token));
	CHECK_EQ(a->storage.tls_verify, b->storage.tls_verify);
	CHECK(streq_null(a->storage.ca_file, b->storage.ca_file));
	CHECK_EQ(a->storage.part_size, b->storage.part_size);
	CHECK_EQ(a->storage.multipart_threshold, b->storage.multipart_threshold);
	CHECK_EQ(a->storage.max_connections, b->storage.max_connections);
	CHECK_EQ(a->storage.max_retries, b->storage.max_retries);
	CHECK(a->storage.connect_timeout == b->storage.connect_timeout);
	CHECK(a->storage.request_timeout == b->storage.request_timeout);
	CHECK_EQ(a->storage.upload_limit, b->storage.upload_limit);
	CHECK_EQ(a->storage.download_limit, b->storage.download_limit);
	CHECK(streq_null(a->cache.dir, b->cache.dir));
	CHECK_EQ(a->cache.size, b->cache.size);
	CHECK_EQ(a->cache.reserve, b->cache.reserve);
	CHECK_EQ(a->cache.upload_workers, b->cache.upload_workers);
	CHECK_EQ(a->cache.writeback, b->cache.writeback);
	CHECK_EQ(a->mount.allow_other, b->mount.allow_other);
	CHECK(a->mount.attr_timeout == b->mount.attr_timeout);
	CHECK(a->mount.entry_timeout == b->mount.entry_timeout);
	CHECK_EQ(a->mount.threads, b->mount.threads);
	CHECK(streq_null(a->log.level, b->log.level));
}

static void test_defaults(void)
{
	struct dv_config cfg;

	CHECK_EQ(config_defaults(&cfg), 0);
	CHECK(cfg.path == NULL);
	CHECK_STREQ(cfg.database.conninfo, "dbname=docvault");
	CHECK_EQ(cfg.database.pool_size, 8);
	CHECK_EQ(cfg.storage.type, CONFIG_STORE_LOCAL);
	CHECK_STREQ(cfg.storage.path, "/var/lib/docvault/blobs");
	CHECK(cfg.storage.endpoint == NULL);
	CHECK_STREQ(cfg.storage.region, "us-east-1");
	CHECK(cfg.storage.bucket == NULL);
	CHECK_STREQ(cfg.storage.prefix, "");
	CHECK(cfg.storage.path_style);
	CHECK(cfg.storage.access_key == NULL);
	CHECK(cfg.storage.secret_key == NULL);
	CHECK(cfg.storage.session_token == NULL);
	CHECK(cfg.storage.tls_verify);
	CHECK(cfg.storage.ca_file == NULL);
	CHECK_EQ(cfg.storage.part_size, 16 * MIB);
	CHECK_EQ(cfg.storage.multipart_threshold, 64 * MIB);
	CHECK_EQ(cfg.storage.max_connections, 16);
	CHECK_EQ(cfg.storage.max_retries, 8);
	CHECK(cfg.storage.connect_timeout == 10.0);
	CHECK(cfg.storage.request_timeout == 60.0);
	CHECK_EQ(cfg.storage.upload_limit, 0);
	CHECK_EQ(cfg.storage.download_limit, 0);
	CHECK_STREQ(cfg.cache.dir, "/var/cache/docvault");
	CHECK_EQ(cfg.cache.size, 10 * GIB);
	CHECK_EQ(cfg.cache.reserve, 1 * GIB);
	CHECK_EQ(cfg.cache.upload_workers, 0);
	CHECK(cfg.cache.writeback);
	CHECK(!cfg.mount.allow_other);
	CHECK(cfg.mount.attr_timeout == 1.0);
	CHECK(cfg.mount.entry_timeout == 1.0);
	CHECK_EQ(cfg.mount.threads, 8);
	CHECK_STREQ(cfg.log.level, "info");
	config_free(&cfg);
	CHECK(cfg.database.conninfo == NULL);
	config_free(&cfg); /* twice is fine */

	/* An empty file and a comments-only file give the defaults. */
	struct dv_config def, got;
	char err[512];

	CHECK_EQ(config_defaults(&def), 0);
	CHECK_EQ(load("", &got, err, sizeof(err)), 0);
	CHECK_STREQ(err, "");
	check_same_config(&got, &def);
	config_free(&got);
	CHECK_EQ(load("; nothing\n# here\n\n[cache]\n[log]\n", &got, err, sizeof(err)), 0);
	check_same_config(&got, &def);
	config_free(&got);
	config_free(&def);
}

static void test_free_null(void)
{
	struct dv_config zero;

	memset(&zero, 0, sizeof(zero));
	config_free(NULL);
	config_free(&zero);
	CHECK(1);
}

static const char full_file[] = "[database]\n"
				"conninfo = host=/run/postgresql dbname=vault user=dv\n"
				"pool_size = 32\n"
				"\n"
				"[storage]\n"
				"type = s3\n"
				"path = /srv/blobs\n"
				"endpoint = https://minio.internal:9000\n"
				"region = eu-west-3\n"
				"bucket = vault-bucket\n"
				"prefix = prod/\n"
				"path_style = no\n"
				"access_key = AKIAEXAMPLE\n"
				"secret_key = s3cr3t/with+chars=\n"
				"session_token = tok;en\n"
				"tls_verify = off\n"
				"ca_file = /etc/ssl/ca.pem\n"
				"part_size = 32MiB\n"
				"multipart_threshold = 128M\n"
				"max_connections = 64\n"
				"max_retries = 0\n"
				"connect_timeout = 2.5\n"
				"request_timeout = 300\n"
				"upload_limit = 10M/s\n"
				"download_limit = 1G\n"
				"\n"
				"[cache]\n"
				"dir = /var/tmp/dvcache\n"
				"size = 1T\n"
				"reserve = 512MB\n"
				"upload_workers = 4\n"
				"writeback = FALSE\n"
				"\n"
				"[mount]\n"
				"allow_other = yes\n"
				"attr_timeout = 0\n"
				"entry_timeout = 0.25\n"
				"threads = 2\n"
				"\n"
				"[log]\n"
				"level = DEBUG\n";

static void test_full_file(void)
{
	struct dv_config cfg;
	char err[512], path[PATH_MAX];

	CHECK_EQ(load(full_file, &cfg, err, sizeof(err)), 0);
	CHECK_STREQ(err, "");
	snprintf(path, sizeof(path), "%s/t.conf", tmpdir);
	CHECK_STREQ(cfg.path, path);
	CHECK_STREQ(cfg.database.conninfo, "host=/run/postgresql dbname=vault user=dv");
	CHECK_EQ(cfg.database.pool_size, 32);
	CHECK_EQ(cfg.storage.type, CONFIG_STORE_S3);
	CHECK_STREQ(cfg.storage.path, "/srv/blobs");
	CHECK_STREQ(cfg.storage.endpoint, "https://minio.internal:9000");
	CHECK_STREQ(cfg.storage.region, "eu-west-3");
	CHECK_STREQ(cfg.storage.bucket, "vault-bucket");
	CHECK_STREQ(cfg.storage.prefix, "prod/");
	CHECK(!cfg.storage.path_style);
	CHECK_STREQ(cfg.storage.access_key, "AKIAEXAMPLE");
	CHECK_STREQ(cfg.storage.secret_key, "s3cr3t/with+chars=");
	CHECK_STREQ(cfg.storage.session_token, "tok;en"); /* no blank before ';' */
	CHECK(!cfg.storage.tls_verify);
	CHECK_STREQ(cfg.storage.ca_file, "/etc/ssl/ca.pem");
	CHECK_EQ(cfg.storage.part_size, 32 * MIB);
	CHECK_EQ(cfg.storage.multipart_threshold, 128 * MIB);
	CHECK_EQ(cfg.storage.max_connections, 64);
	CHECK_EQ(cfg.storage.max_retries, 0);
	CHECK(cfg.storage.connect_timeout == 2.5);
	CHECK(cfg.storage.request_timeout == 300.0);
	CHECK_EQ(cfg.storage.upload_limit, 10 * MIB);
	CHECK_EQ(cfg.storage.download_limit, GIB);
	CHECK_STREQ(cfg.cache.dir, "/var/tmp/dvcache");
	CHECK_EQ(cfg.cache.size, 1024 * GIB);
	CHECK_EQ(cfg.cache.reserve, 512 * MIB);
	CHECK_EQ(cfg.cache.upload_workers, 4);
	CHECK(!cfg.cache.writeback);
	CHECK(cfg.mount.allow_other);
	CHECK(cfg.mount.attr_timeout == 0.0);
	CHECK(cfg.mount.entry_timeout == 0.25);
	CHECK_EQ(cfg.mount.threads, 2);
	CHECK_STREQ(cfg.log.level, "debug"); /* canonical spelling */
	config_free(&cfg);

	/* The same file at mode 0644 holds secrets: refused. */
	CHECK_EQ(load_mode(full_file, 0644, &cfg, err, sizeof(err)), -EACCES);
	config_free(&cfg);
}

static void test_bad_values(void)
{
	expect_error("[database]\npool_size = 4\n[cache]\nsize = 10Q\n", -EINVAL,
		     ":4: [cache] size: \"10Q\" is not a size");
	expect_error("[cache]\nwriteback = maybe\n", -EINVAL,
		     ":2: [cache] writeback: \"maybe\" is not a boolean (true/false, yes/no, "
		     "on/off, 1/0)");
	expect_error("[database]\npool_size = 0\n", -EINVAL,
		     ":2: [database] pool_size: \"0\" is out of range (1..256)");
	expect_error("[database]\npool_size = 257\n", -EINVAL,
		     ":2: [database] pool_size: \"257\" is out of range (1..256)");
	expect_error("[database]\npool_size = 8x\n", -EINVAL,
		     ":2: [database] pool_size: \"8x\" is not an integer");
	expect_error("[database]\npool_size = 99999999999999999999\n", -EINVAL,
		     ":2: [database] pool_size: \"99999999999999999999\" is not an integer");
	expect_error("[mount]\nthreads = 0\n", -EINVAL,
		     ":2: [mount] threads: \"0\" is out of range (1..256)");
	expect_error("[mount]\nthreads = 300\n", -EINVAL,
		     ":2: [mount] threads: \"300\" is out of range (1..256)");
	expect_error("[mount]\nattr_timeout = -1\n", -EINVAL,
		     ":2: [mount] attr_timeout: \"-1\" is out of range (seconds, 0..86400)");
	expect_error("[storage]\npart_size = 4M\n", -EINVAL,
		     ":2: [storage] part_size: \"4M\" is out of range (5M..5G)");
	expect_error("[storage]\npart_size = 6G\n", -EINVAL,
		     ":2: [storage] part_size: \"6G\" is out of range (5M..5G)");
	expect_error("[storage]\nconnect_timeout = 0\n", -EINVAL,
		     ":2: [storage] connect_timeout: \"0\" is out of range (seconds, > 0 and <= "
		     "3600)");
	expect_error("[storage]\nrequest_timeout = -5\n", -EINVAL,
		     ":2: [storage] request_timeout: \"-5\" is out of range (seconds, > 0 and <= "
		     "86400)");
	expect_error("[storage]\nrequest_timeout = nan\n", -EINVAL,
		     ":2: [storage] request_timeout: \"nan\" is not a number of seconds");
	expect_error("[storage]\ntype = ftp\n", -EINVAL,
		     ":2: [storage] type: \"ftp\" is not \"local\" or \"s3\"");
	expect_error("[storage]\nendpoint = s3.amazonaws.com\n", -EINVAL,
		     ":2: [storage] endpoint: \"s3.amazonaws.com\" does not start with http:// or "
		     "https://");
	expect_error("[storage]\nendpoint = https://\n", -EINVAL,
		     ":2: [storage] endpoint: \"https://\" has no host");
	expect_error("[storage]\nupload_limit = fast\n", -EINVAL,
		     ":2: [storage] upload_limit: \"fast\" is not a rate");
	expect_error("[storage]\npath = blobs\n", -EINVAL,
		     ":2: [storage] path: \"blobs\" is not an absolute path");
	expect_error("[cache]\ndir =\n", -EINVAL, ":2: [cache] dir: must not be empty");
	expect_error("[cache]\nsize = 0\n", -EINVAL,
		     ":2: [cache] size: \"0\" is out of range (> 0)");
	expect_error("[cache]\nupload_workers = -1\n", -EINVAL,
		     ":2: [cache] upload_workers: \"-1\" is out of range (0..256, 0 = auto)");
	expect_error("[log]\nlevel = verbose\n", -EINVAL,
		     ":2: [log] level: \"verbose\" is not error, warn, info or debug");
}

static void test_bad_structure(void)
{
	struct dv_config cfg;
	char err[512], want[PATH_MAX + 64], path[PATH_MAX];

	expect_error("[cache]\nsize = 1G\nfoo = 1\n", -EINVAL,
		     ":3: unknown key \"foo\" in [cache]");
	expect_error("[cache]\n[bogus]\nsize = 1G\n", -EINVAL, ":2: unknown section [bogus]");
	expect_error("[cache]\n\n[ nope ]\n", -EINVAL, ":3: unknown section [nope]");
	expect_error("size = 1G\n", -EINVAL, ":1: key \"size\" is outside of a [section]");
	expect_error("[cache]\njust some words\n", -EINVAL, ":2: expected \"key = value\"");
	expect_error("[cache\nsize = 1G\n", -EINVAL, ":1: expected \"[section]\"");
	expect_error("[cache]\nsize = 1G\nsize = 2G\n", -EINVAL,
		     ":3: [cache] size: set twice (first on line 2)");
	/* The secret key is named, its value is not echoed. */
	expect_error("[storage]\nsecret_kee = hunter2\n", -EINVAL,
		     ":2: unknown key \"secret_kee\" in [storage]");

	/* A line longer than inih's buffer is refused, not split. */
	char longline[400];

	snprintf(longline, sizeof(longline), "[database]\nconninfo = dbname=%0300d\n", 7);
	expect_error(longline, -EINVAL, ":2: line is longer than 198 characters");
	snprintf(longline, sizeof(longline), "[database]\nconninfo = dbname=%0170d\n", 7);
	CHECK_EQ(load(longline, &cfg, err, sizeof(err)), 0);
	CHECK(cfg.database.conninfo && strlen(cfg.database.conninfo) == 7 + 170);
	config_free(&cfg);

	/* A missing file. */
	snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmpdir);
	CHECK_EQ(config_load(path, &cfg, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
	CHECK_STREQ(err, want);
	config_free(&cfg);

	/* A directory. */
	CHECK_EQ(config_load(tmpdir, &cfg, err, sizeof(err)), -EISDIR);
	config_free(&cfg);

	/* A NULL or tiny err buffer is fine. */
	CHECK_EQ(config_load(path, &cfg, NULL, 0), -ENOENT);
	config_free(&cfg);
	CHECK_EQ(config_load(path, &cfg, err, 4), -ENOENT);
	CHECK_EQ(strlen(err), 3);
	config_free(&cfg);
}

static void test_syntax(void)
{
	struct dv_config cfg;
	char err[512];

	/* Inline comments, indentation, CRLF, a BOM, case, ':' as delimiter. */
	CHECK_EQ(load("\xEF\xBB\xBF[database]\r\n"
		      "conninfo=host=/run/postgresql dbname=docvault     ; comment\r\n"
		      "  pool_size = 16   # another comment\r\n"
		      "\t; an indented comment\r\n"
		      "[Storage]\r\n"
		      "  Region: eu-central-1\r\n"
		      "  bucket = a#b;c\r\n"
		      "prefix = \r\n",
		      &cfg, err, sizeof(err)),
		 0);
	CHECK_STREQ(err, "");
	CHECK_STREQ(cfg.database.conninfo, "host=/run/postgresql dbname=docvault");
	CHECK_EQ(cfg.database.pool_size, 16);
	CHECK_STREQ(cfg.storage.region, "eu-central-1");
	CHECK_STREQ(cfg.storage.bucket, "a#b;c");
	CHECK_STREQ(cfg.storage.prefix, "");
	config_free(&cfg);

	/* Optional strings: empty means unset. */
	CHECK_EQ(load("[storage]\nendpoint =\nca_file = ; none\n", &cfg, err, sizeof(err)), 0);
	CHECK(cfg.storage.endpoint == NULL);
	CHECK(cfg.storage.ca_file == NULL);
	config_free(&cfg);

	/* The error line counts blank and comment lines. */
	expect_error("; c\n\n[mount]\n; c\n\nthreads = lots ; c\n", -EINVAL,
		     ":6: [mount] threads: \"lots\" is not an integer");
}

static void test_s3_required(void)
{
	struct dv_config cfg;
	char err[512];

	expect_error("[storage]\ntype = s3\nbucket = b\n", -EINVAL,
		     ": [storage] endpoint is required when type = s3");
	expect_error("[storage]\ntype = s3\nendpoint = http://127.0.0.1:9000\n", -EINVAL,
		     ": [storage] bucket is required when type = s3");
	expect_error("[storage]\ntype = s3\nendpoint = http://h\nbucket = b\nregion =\n", -EINVAL,
		     ": [storage] region is required when type = s3");
	expect_error("[storage]\ntype = s3\nendpoint = http://h\nbucket = b\naccess_key = A\n",
		     -EINVAL,
		     ": [storage] access_key is set but secret_key is not (set both, in the "
		     "file or as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)");

	/* Anonymous access is allowed. */
	CHECK_EQ(load("[storage]\ntype = s3\nendpoint = http://127.0.0.1:9000\nbucket = b\n", &cfg,
		      err, sizeof(err)),
		 0);
	CHECK(cfg.storage.access_key == NULL && cfg.storage.secret_key == NULL);
	config_free(&cfg);
}

static void test_secret_permissions(void)
{
	struct dv_config cfg;
	char err[512];
	const char *secret = "[storage]\nsecret_key = hunter2\n";
	char suffix[PATH_MAX + 128];

	snprintf(suffix, sizeof(suffix),
		 ": contains a secret and is readable by others (mode 0644); chmod 600 %s/t.conf",
		 tmpdir);
	expect_error_at(__LINE__, secret, 0644, -EACCES, suffix);
	CHECK_EQ(load_mode(secret, 0644, &cfg, err, sizeof(err)), -EACCES);
	CHECK(strstr(err, "hunter2") == NULL);
	config_free(&cfg);

	CHECK_EQ(load_mode(secret, 0600, &cfg, err, sizeof(err)), 0);
	CHECK_STREQ(cfg.storage.secret_key, "hunter2");
	config_free(&cfg);
	CHECK_EQ(load_mode(secret, 0400, &cfg, err, sizeof(err)), 0);
	config_free(&cfg);

	/* Group-readable only, or other-writable, is still refused. */
	CHECK_EQ(load_mode(secret, 0640, &cfg, err, sizeof(err)), -EACCES);
	CHECK(strstr(err, "(mode 0640)") != NULL);
	config_free(&cfg);
	CHECK_EQ(load_mode(secret, 0602, &cfg, err, sizeof(err)), -EACCES);
	config_free(&cfg);

	/* No secret: 0644 is fine (access_key is an identifier, not a secret). */
	CHECK_EQ(load_mode("[storage]\naccess_key = AKIA\n[database]\nconninfo = dbname=x "
			   "user=me\n",
			   0644, &cfg, err, sizeof(err)),
		 0);
	config_free(&cfg);

	static const char *const secrets[] = {
	    "[storage]\nsession_token = tok\n",
	    "[database]\nconninfo = host=db password=pw dbname=x\n",
	    "[database]\nconninfo = host=db PASSWORD = pw\n",
	    "[database]\nconninfo = password=pw\n",
	    "[database]\nconninfo = postgresql://user:pw@db/vault\n",
	    "[database]\nconninfo = postgres://user:pw@[::1]:5432/vault\n",
	    "[database]\nconninfo = postgresql://db/vault?sslmode=require&password=pw\n",
	};
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		int rc = load_mode(secrets[i], 0644, &cfg, err, sizeof(err));

		if (rc != -EACCES)
			fprintf(stderr, "secret not detected in: %s", secrets[i]);
		CHECK_EQ(rc, -EACCES);
		config_free(&cfg);
	}

	static const char *const no_secrets[] = {
	    "[database]\nconninfo = postgresql://user@db/vault\n",
	    "[database]\nconninfo = postgresql://[::1]:5432/vault?sslmode=require\n",
	    "[database]\nconninfo = host=db passfile=/etc/dv/pgpass\n",
	    "[database]\nconninfo = host=db application_name=nopassword\n",
	    "[storage]\nsecret_key =\n",
	};
	for (size_t i = 0; i < sizeof(no_secrets) / sizeof(no_secrets[0]); i++) {
		int rc = load_mode(no_secrets[i], 0644, &cfg, err, sizeof(err));

		if (rc != 0)
			fprintf(stderr, "false secret in: %s -> %s\n", no_secrets[i], err);
		CHECK_EQ(rc, 0);
		config_free(&cfg);
	}
}

static void test_env(void)
{
	struct dv_config cfg;
	char err[512];

	setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	setenv("AWS_SESSION_TOKEN", "envtoken", 1);

	/* The file has none: all three from the environment, file mode irrelevant. */
	CHECK_EQ(load_mode("[storage]\ntype = s3\nendpoint = http://h\nbucket = b\n", 0644, &cfg,
			   err, sizeof(err)),
		 0);
	CHECK_STREQ(cfg.storage.access_key, "ENVKEY");
	CHECK_STREQ(cfg.storage.secret_key, "envsecret");
	CHECK_STREQ(cfg.storage.session_token, "envtoken");
	config_free(&cfg);

	/* The file wins where it sets a key. */
	CHECK_EQ(load("[storage]\naccess_key = FILEKEY\nsecret_key = filesecret\n", &cfg, err,
		      sizeof(err)),
		 0);
	CHECK_STREQ(cfg.storage.access_key, "FILEKEY");
	CHECK_STREQ(cfg.storage.secret_key, "filesecret");
	CHECK_STREQ(cfg.storage.session_token, "envtoken");
	config_free(&cfg);

	/* Empty variables count as unset. */
	setenv("AWS_SESSION_TOKEN", "", 1);
	CHECK_EQ(load("", &cfg, err, sizeof(err)), 0);
	CHECK(cfg.storage.session_token == NULL);
	config_free(&cfg);

	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	CHECK_EQ(load("", &cfg, err, sizeof(err)), 0);
	CHECK(cfg.storage.access_key == NULL);
	CHECK(cfg.storage.secret_key == NULL);
	config_free(&cfg);
}

static void check_size(const char *s, int rc, uint64_t want)
{
	uint64_t v = 12345;
	int got = config_parse_size(s, &v);

	if (got != rc || (rc == 0 && v != want))
		fprintf(stderr, "config_parse_size(\"%s\") = %d, %llu; want %d, %llu\n", s, got,
			(unsigned long long)v, rc, (unsigned long long)want);
	CHECK_EQ(got, rc);
	if (rc == 0)
		CHECK(v == want);
	else
		CHECK(v == 12345); /* untouched on error */
}

static void test_parse_size(void)
{
	check_size("0", 0, 0);
	check_size("1", 0, 1);
	check_size("100B", 0, 100);
	check_size("64K", 0, 64 * 1024);
	check_size("64k", 0, 64 * 1024);
	check_size("512M", 0, 512 * MIB);
	check_size("10G", 0, 10 * GIB);
	check_size("1T", 0, 1024 * GIB);
	check_size("1KB", 0, 1024);
	check_size("1KiB", 0, 1024);
	check_size("10GiB", 0, 10 * GIB);
	check_size("2 G", 0, 2 * GIB);
	check_size("16777215T", 0, 16777215ULL << 40);
	check_size("18446744073709551615", 0, UINT64_MAX);

	check_size("18446744073709551616", -EINVAL, 0); /* 2^64 */
	check_size("99999999999999999999999", -EINVAL, 0);
	check_size("16777216T", -EINVAL, 0);	/* 2^64 */
	check_size("17179869184G", -EINVAL, 0); /* 2^64 */
	check_size("", -EINVAL, 0);
	check_size("K", -EINVAL, 0);
	check_size("B", -EINVAL, 0);
	check_size("-1", -EINVAL, 0);
	check_size("+1", -EINVAL, 0);
	check_size("1.5G", -EINVAL, 0);
	check_size("0x10", -EINVAL, 0);
	check_size("10Q", -EINVAL, 0);
	check_size("10iB", -EINVAL, 0);
	check_size("10Gi", -EINVAL, 0);
	check_size("10GBs", -EINVAL, 0);
	check_size("10P", -EINVAL, 0);
	check_size("10 M B", -EINVAL, 0);
	check_size(NULL, -EINVAL, 0);
}

static void test_parse_bool(void)
{
	static const char *const yes[] = {"true", "TRUE", "yes", "Yes", "on", "1"};
	static const char *const no[] = {"false", "False", "no", "NO", "off", "0"};
	static const char *const bad[] = {"", "2", "y", "n", "truee", "enable", " on"};
	bool b;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		CHECK_EQ(config_parse_bool(yes[i], &b), 0);
		CHECK(b);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = true;
		CHECK_EQ(config_parse_bool(no[i], &b), 0);
		CHECK(!b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(config_parse_bool(bad[i], &b), -EINVAL);
	CHECK_EQ(config_parse_bool(NULL, &b), -EINVAL);
}

static void test_rates(void)
{
	struct dv_config cfg;
	char err[512];

	CHECK_EQ(load("[storage]\nupload_limit = 10MiB/s\ndownload_limit = 65536\n", &cfg, err,
		      sizeof(err)),
		 0);
	CHECK_EQ(cfg.storage.upload_limit, 10 * MIB);
	CHECK_EQ(cfg.storage.download_limit, 65536);
	config_free(&cfg);
	expect_error("[storage]\ndownload_limit = /s\n", -EINVAL,
		     ":2: [storage] download_limit: \"/s\" is not a rate");
}

/*
 * conf/docvault.conf.example must load, equal the defaults, and mention
 * every key (possibly commented out) under its own section.
 */
static void test_example_file(void)
{
	static const char *const keys[] = {
	    "database.conninfo",
	    "database.pool_size",
	    "storage.type",
	    "storage.path",
	    "storage.endpoint",
	    "storage.region",
	    "storage.bucket",
	    "storage.prefix",
	    "storage.path_style",
	    "storage.access_key",
	    "storage.secret_key",
	    "storage.session_token",
	    "storage.tls_verify",
	    "storage.ca_file",
	    "storage.part_size",
	    "storage.multipart_threshold",
	    "storage.max_connections",
	    "storage.max_retries",
	    "storage.connect_timeout",
	    "storage.request_timeout",
	    "storage.upload_limit",
	    "storage.download_limit",
	    "cache.dir",
	    "cache.size",
	    "cache.reserve",
	    "cache.upload_workers",
	    "cache.writeback",
	    "mount.allow_other",
	    "mount.attr_timeout",
	    "mount.entry_timeout",
	    "mount.threads",
	    "log.level",
	};
	const char *src = getenv("DV_SOURCE_DIR");
	struct dv_config def, got;
	char path[PATH_MAX], err[512], line[512], section[64] = "";
	bool seen[sizeof(keys) / sizeof(keys[0])] = {false};
	FILE *f;

	if (!src) {
		fprintf(stderr, "test_example_file: DV_SOURCE_DIR is not set (run under ctest)\n");
		CHECK(src != NULL);
		return;
	}
	snprintf(path, sizeof(path), "%s/conf/docvault.conf.example", src);
	CHECK_EQ(config_defaults(&def), 0);
	CHECK_EQ(config_load(path, &got, err, sizeof(err)), 0);
	if (err[0])
		fprintf(stderr, "%s\n", err);
	check_same_config(&got, &def);
	config_free(&got);
	config_free(&def);

	f = fopen(path, "re");
	CHECK(f != NULL);
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *s = line, name[160];
		size_t n;

		if (sscanf(s, "[%63[^]]]", section) == 1)
			continue;
		if (*s == ';' || *s == '#')
			s++;
		n = strspn(s, "abcdefghijklmnopqrstuvwxyz_");
		if (n == 0 || n >= 64 || strspn(s + n, " ") == 0 ||
		    s[n + strspn(s + n, " ")] != '=')
			continue;
		snprintf(name, sizeof(name), "%s.%.*s", section, (int)n, s);
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			if (strcmp(keys[i], name) == 0)
				seen[i] = true;
		}
	}
	fclose(f);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!seen[i])
			fprintf(stderr, "%s does not document %s\n", path, keys[i]);
		CHECK(seen[i]);
	}
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	/* The environment must not leak into the expectations. */
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");

	snprintf(tmpdir, sizeof(tmpdir), "%s/dv-test-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}

	test_defaults();
	test_free_null();
	test_full_file();
	test_bad_values();
	test_bad_structure();
	test_syntax();
	test_s3_required();
	test_secret_permissions();
	test_env();
	test_parse_size();
	test_parse_bool();
	test_rates();
	test_example_file();

	nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return test_done();
}
