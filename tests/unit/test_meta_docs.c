/*
 * test_meta_docs.c - documents and the job queue (meta_docs.h) on a real
 * PostgreSQL: the upgrade of a version-1 vault (existing documents are
 * queued), a commit queues exactly one job and NOTIFYs, an empty commit is
 * complete at once, racing claimers never share a job, failure backoff and
 * max_attempts, a commit during processing makes the old completion a
 * no-op and leaves a job for the new version, reclaim of dead workers'
 * claims, user tags (replace, +, -, limits), reprocess, duplicate groups
 * with paths, counts, full-text search and UTF-8 sanitising.
 *
 * The server comes from DV_TEST_PGHOST, DV_TEST_PGPORT, DV_TEST_PGUSER
 * (tools/check and tools/lib/pg.sh provide them); without them the test
 * FAILS. Each run creates its own database and drops it at the end.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "check.h"
#include "docvault/checksum.h"
#include "docvault/log.h"
#include "docvault/meta.h"
#include "docvault/meta_docs.h"
#include "../../backend/meta_pg.h"
#include "../../backend/meta_schema.sql.h"

struct env {
	char admin[512];    /* conninfo of the server's postgres database */
	char conninfo[512]; /* conninfo of this run's database */
	char db[64];
	struct meta *m;
	unsigned char secret[CHECKSUM_SECRET_SIZE];
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Runs one admin command (CREATE/DROP DATABASE) on the postgres database. */
static int admin_exec(const struct env *e, const char *sql)
{
	PGconn *pg = PQconnectdb(e->admin);
	int ret = -1;

	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "cannot connect to %s: %s", e->admin, PQerrorMessage(pg));
	} else {
		PGresult *res = PQexec(pg, sql);

		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			ret = 0;
		else
			fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(res));
		PQclear(res);
	}
	PQfinish(pg);
	return ret;
}

static int env_db_create(struct env *e)
{
	const char *host = getenv("DV_TEST_PGHOST"), *port = getenv("DV_TEST_PGPORT");
	const char *user = getenv("DV_TEST_PGUSER");
	char sql[128];

	if (!host || !port || !user) {
		fprintf(stderr,
			"FAIL: DV_TEST_PGHOST, DV_TEST_PGPORT and DV_TEST_PGUSER must name a "
			"PostgreSQL server (tools/check sets them; or run tools/lib/pg.sh "
			"start DIR and source DIR/env)\n");
		return -1;
	}
	srandom((unsigned)(getpid() ^ time(NULL)));
	snprintf(e->db, sizeof(e->db), "dv_test_docs_%d_%ld", (int)getpid(), random() % 100000);
	snprintf(e->admin, sizeof(e->admin), "host=%s port=%s user=%s dbname=postgres", host, port,
		 user);
	snprintf(e->conninfo, sizeof(e->conninfo), "host=%s port=%s user=%s dbname=%s", host, port,
		 user, e->db);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", e->db);
	return admin_exec(e, sql);
}

static void env_db_drop(struct env *e)
{
	char sql[128];

	meta_close(e->m);
	e->m = NULL;
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", e->db);
	admin_exec(e, sql);
}

/* First column of the first row of sql as an integer (-999 on error). */
static int64_t q_i64(struct meta *m, const char *sql)
{
	struct meta_params p = {0};
	PGresult *res;
	int64_t v = -999;

	if (meta_plain(m, sql, &p, &res) == 0) {
		if (PQntuples(res) >= 1)
			v = meta_get_i64(res, 0, 0);
		PQclear(res);
	}
	return v;
}

/* Same, with one integer parameter $1. */
static int64_t q_i64_1(struct meta *m, const char *sql, int64_t a)
{
	struct meta_params p = {0};
	PGresult *res;
	int64_t v = -999;

	meta_p_i64(&p, a);
	if (meta_plain(m, sql, &p, &res) == 0) {
		if (PQntuples(res) >= 1)
			v = meta_get_i64(res, 0, 0);
		PQclear(res);
	}
	return v;
}

static double q_f64_1(struct meta *m, const char *sql, int64_t a)
{
	struct meta_params p = {0};
	PGresult *res;
	double v = -999;

	meta_p_i64(&p, a);
	if (meta_plain(m, sql, &p, &res) == 0) {
		if (PQntuples(res) >= 1 && !PQgetisnull(res, 0, 0))
			v = strtod(PQgetvalue(res, 0, 0), NULL);
		PQclear(res);
	}
	return v;
}

static uint64_t mkfile(struct env *e, uint64_t parent, const char *name)
{
	struct meta_attr a;
	int ret = meta_create(e->m, parent, name, strlen(name), S_IFREG | 0644, 1000, 1000, 0, NULL,
			      now_ns(), &a);

	CHECK_EQ(ret, 0);
	return ret ? 0 : a.ino;
}

static uint64_t mkdir_(struct env *e, uint64_t parent, const char *name)
{
	struct meta_attr a;
	int ret = meta_create(e->m, parent, name, strlen(name), S_IFDIR | 0755, 1000, 1000, 0, NULL,
			      now_ns(), &a);

	CHECK_EQ(ret, 0);
	return ret ? 0 : a.ino;
}

/* Commits text as the file's content; returns the new version. */
static uint64_t commit_text(struct env *e, uint64_t ino, const char *text, struct checksum *sum)
{
	struct checksum s;
	struct meta_attr a;
	int ret;

	checksum_buf(text, strlen(text), e->secret, &s);
	if (sum)
		*sum = s;
	ret = meta_commit(e->m, ino, &s, strlen(text), now_ns(), now_ns(), &a);
	CHECK_EQ(ret, 0);
	return ret ? 0 : a.version;
}

static int64_t jobs_for(struct env *e, uint64_t ino)
{
	return q_i64_1(e->m, "SELECT count(*) FROM dv_jobs WHERE ino = $1", (int64_t)ino);
}

/* Completes every job in the queue so a test starts from an empty one. */
static void drain(struct env *e)
{
	struct meta_docs_result r = {.mime = "text/plain", .summary = "", .summary_source = "none"};
	struct meta_job job;

	while (meta_docs_claim(e->m, "drain", &job, NULL) == 0)
		CHECK_EQ(meta_docs_complete(e->m, "drain", &job, &r), 0);
	CHECK_EQ(
	    q_i64(e->m, "SELECT count(*) FROM dv_jobs WHERE state = 0 AND not_before <= now()"), 0);
}

/* A vault at schema version 1 with a document and an empty file, then upgraded. */
static void test_upgrade(struct env *e)
{
	PGconn *pg = PQconnectdb(e->conninfo);
	PGresult *res;
	char err[512];
	int ret;

	CHECK(PQstatus(pg) == CONNECTION_OK);
	res = PQexec(pg, meta_migrations[0]);
	CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
	PQclear(res);
	res = PQexec(
	    pg, "INSERT INTO dv_settings VALUES ('schema_version', convert_to('1', 'UTF8'));"
		"INSERT INTO dv_inodes (id, mode, uid, gid, nlink, atime, mtime, ctime, crtime) "
		"  OVERRIDING SYSTEM VALUE VALUES (1, 16877, 0, 0, 2, 1, 1, 1, 1);"
		"SELECT setval(pg_get_serial_sequence('dv_inodes', 'id'), 1);"
		"INSERT INTO dv_blobs VALUES ('\\x00112233445566778899aabbccddeeff', 5, 1, "
		"  '\\x00', '\\xffeeddccbbaa99887766554433221100');"
		"INSERT INTO dv_inodes (id, mode, uid, gid, nlink, size, atime, mtime, ctime, "
		"  crtime, version, content) OVERRIDING SYSTEM VALUE VALUES (2, 33188, 0, 0, 1, "
		"  5, 1, 1, 1, 1, 1, '\\x00112233445566778899aabbccddeeff'),"
		"  (3, 33188, 0, 0, 1, 0, 1, 1, 1, 1, 0, NULL);"
		"INSERT INTO dv_dentries (parent, name, ino) VALUES (1, 'old', 2), (1, 'empty', 3);"
		"SELECT setval(pg_get_serial_sequence('dv_inodes', 'id'), 3);");
	CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
	PQclear(res);
	PQfinish(pg);

	ret = meta_init(e->m, 1000, 1000, err, sizeof(err));
	if (ret)
		fprintf(stderr, "meta_init: %s\n", err);
	CHECK_EQ(ret, 0);
	ret = meta_check(e->m, e->secret, err, sizeof(err));
	if (ret)
		fprintf(stderr, "meta_check: %s\n", err);
	CHECK_EQ(ret, 0);
	CHECK_EQ(q_i64(e->m, "SELECT convert_from(value, 'UTF8')::int FROM dv_settings "
			     "WHERE key = 'schema_version'"),
		 META_SCHEMA_VERSION);

	struct meta_doc d;

	CHECK_EQ(meta_docs_get(e->m, 2, &d), 0);
	CHECK_EQ(d.status, META_DOC_READY);
	CHECK(d.has_checksum && d.checksum[0] == 0xff && d.checksum[15] == 0x00);
	meta_doc_free(&d);
	CHECK_EQ(jobs_for(e, 2), 1);
	CHECK_EQ(meta_docs_get(e->m, 3, &d), 0);
	CHECK_EQ(d.status, META_DOC_COMPLETED);
	CHECK_STREQ(d.mime, "inode/x-empty");
	meta_doc_free(&d);
	CHECK_EQ(jobs_for(e, 3), 0);
	/* init again: harmless */
	CHECK_EQ(meta_init(e->m, 1000, 1000, err, sizeof(err)), 0);
	CHECK_EQ(q_i64(e->m, "SELECT count(*) FROM dv_jobs"), 1);
	drain(e);
}

static void test_commit_queues(struct env *e)
{
	struct meta_listen *l = NULL;
	struct checksum sum;
	struct meta_doc d;
	struct meta_attr a;
	char err[512];
	uint64_t ino, v1, v2;

	CHECK_EQ(meta_docs_listen_open(e->conninfo, &l, err, sizeof(err)), 0);
	CHECK_EQ(meta_docs_listen_wait(l, 0, -1), 0);
	ino = mkfile(e, 1, "commit.txt");
	/* created, never committed: an empty, complete document */
	CHECK_EQ(meta_docs_get(e->m, ino, &d), 0);
	CHECK_EQ(d.status, META_DOC_COMPLETED);
	CHECK_STREQ(d.mime, "inode/x-empty");
	CHECK(d.is_file && !d.has_checksum);
	meta_doc_free(&d);
	CHECK_EQ(jobs_for(e, ino), 0);

	v1 = commit_text(e, ino, "hello documents\n", &sum);
	CHECK_EQ(jobs_for(e, ino), 1);
	CHECK_EQ(q_i64_1(e->m, "SELECT version FROM dv_jobs WHERE ino = $1", (int64_t)ino),
		 (int64_t)v1);
	CHECK_EQ(meta_docs_listen_wait(l, 5000, -1), 1);
	CHECK_EQ(meta_docs_get(e->m, ino, &d), 0);
	CHECK_EQ(d.status, META_DOC_READY);
	CHECK(d.has_checksum && memcmp(d.checksum, sum.plain, 16) == 0);
	CHECK_EQ(d.size, 16);
	CHECK_EQ(d.ino, ino);
	CHECK(d.uploaded > now_ns() - 60000000000LL);
	CHECK_STREQ(d.mime, "");
	CHECK_STREQ(d.tags, "");
	meta_doc_free(&d);

	/* a second commit replaces the queued job: still exactly one, for the new version */
	v2 = commit_text(e, ino, "hello again\n", NULL);
	CHECK_EQ(v2, v1 + 1);
	CHECK_EQ(jobs_for(e, ino), 1);
	CHECK_EQ(q_i64_1(e->m, "SELECT version FROM dv_jobs WHERE ino = $1", (int64_t)ino),
		 (int64_t)v2);
	CHECK_EQ(meta_docs_listen_wait(l, 5000, -1), 1);

	/* the blocks column is filled through the new dv_commit parameter */
	CHECK_EQ(q_i64(e->m, "SELECT count(*) FROM dv_blobs WHERE blocks IS NOT NULL"), 0);

	/* empty content: complete at once, no job */
	CHECK_EQ(meta_commit(e->m, ino, NULL, 0, now_ns(), now_ns(), &a), 0);
	CHECK_EQ(jobs_for(e, ino), 0);
	CHECK_EQ(meta_docs_get(e->m, ino, &d), 0);
	CHECK_EQ(d.status, META_DOC_COMPLETED);
	CHECK_STREQ(d.mime, "inode/x-empty");
	CHECK_STREQ(d.summary_source, "none");
	CHECK(!d.has_checksum);
	CHECK_EQ(d.processed, a.version);
	meta_doc_free(&d);
	CHECK_EQ(meta_docs_get(e->m, 999999, &d), -ENOENT);
	meta_docs_listen_close(l);
}

#define RACE_JOBS    200
#define RACE_THREADS 6

struct racer {
	struct env *e;
	char name[32];
	uint64_t got[RACE_JOBS + 8];
	int n;
	int errors;
};

static void *race_thread(void *arg)
{
	struct racer *r = arg;
	struct meta_job job;
	int ret;

	while ((ret = meta_docs_claim(r->e->m, r->name, &job, NULL)) == 0)
		if (r->n < RACE_JOBS + 8)
			r->got[r->n++] = job.ino;
	if (ret != -EAGAIN)
		r->errors++;
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_claim_race(struct env *e)
{
	static struct racer r[RACE_THREADS];
	pthread_t t[RACE_THREADS];
	uint64_t all[RACE_JOBS + 8 * RACE_THREADS];
	uint64_t dir = mkdir_(e, 1, "race");
	int total = 0, dups = 0;

	for (int i = 0; i < RACE_JOBS; i++) {
		char name[32], text[64];
		uint64_t ino;

		snprintf(name, sizeof(name), "f%d", i);
		snprintf(text, sizeof(text), "race document %d\n", i);
		ino = mkfile(e, dir, name);
		commit_text(e, ino, text, NULL);
	}
	for (int i = 0; i < RACE_THREADS; i++) {
		r[i].e = e;
		snprintf(r[i].name, sizeof(r[i].name), "racer%d", i);
		pthread_create(&t[i], NULL, race_thread, &r[i]);
	}
	for (int i = 0; i < RACE_THREADS; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(r[i].errors, 0);
		for (int j = 0; j < r[i].n; j++)
			all[total++] = r[i].got[j];
	}
	CHECK_EQ(total, RACE_JOBS);
	qsort(all, (size_t)total, sizeof(all[0]), cmp_u64);
	for (int i = 1; i < total; i++)
		dups += all[i] == all[i - 1];
	CHECK_EQ(dups, 0);
	CHECK_EQ(q_i64(e->m, "SELECT count(*) FROM dv_jobs WHERE state = 1 AND attempts = 1"),
		 RACE_JOBS);
	CHECK_EQ(q_i64(e->m, "SELECT count(*) FROM dv_inodes WHERE status = 2"), RACE_JOBS);

	struct meta_docs_counts c;

	CHECK_EQ(meta_docs_counts(e->m, &c), 0);
	CHECK_EQ(c.processing, RACE_JOBS);
	CHECK_EQ(c.ready, 0);
	/* the racers "die": their claims go back to the queue after the stale time */
	CHECK_EQ(meta_docs_touch(e->m, "racer0", r[0].got, (size_t)r[0].n), r[0].n);
	CHECK_EQ(meta_docs_touch(e->m, "racer1", r[0].got, (size_t)r[0].n), 0);
	CHECK_EQ(meta_docs_reclaim(e->m, 60, 5), 0);
	q_i64(e->m, "UPDATE dv_jobs SET claimed_at = now() - interval '2 minutes' RETURNING 1");
	CHECK_EQ(meta_docs_reclaim(e->m, 60, 5), RACE_JOBS);
	CHECK_EQ(q_i64(e->m, "SELECT count(*) FROM dv_inodes WHERE status = 1"), RACE_JOBS);
	/* an old claimer's completion after the reclaim is a no-op */
	{
		struct meta_docs_result res = {.mime = "text/plain"};
		struct meta_job job = {
		    .ino = r[0].got[0],
		    .version = (uint64_t)q_i64_1(
			e->m, "SELECT version FROM dv_inodes WHERE id = $1", (int64_t)r[0].got[0])};

		CHECK_EQ(meta_docs_complete(e->m, "racer0", &job, &res), -ESTALE);
	}
	drain(e);
	CHECK_EQ(q_i64(e->m, "SELECT count(*) FROM dv_jobs"), 0);
}

static void test_fail_backoff(struct env *e)
{
	uint64_t ino = mkfile(e, 1, "bad.pdf");
	struct meta_job job;
	struct meta_doc d;
	double wait = 0, delay;

	commit_text(e, ino, "%PDF-1.4 broken", NULL);
	CHECK_EQ(meta_docs_claim(e->m, "w", &job, NULL), 0);
	CHECK_EQ(job.ino, ino);
	CHECK_EQ(job.attempts, 1);
	CHECK_EQ(meta_docs_fail(e->m, "w", &job, "store timed out", NULL, false, 3), 0);
	CHECK_EQ(meta_docs_get(e->m, ino, &d), 0);
	CHECK_EQ(d.status, META_DOC_READY);
	CHECK_STREQ(d.error, "");
	meta_doc_free(&d);
	/* 2^1 s, +-25% */
	delay = q_f64_1(e->m,
			"SELECT EXTRACT(epoch FROM not_before - now()) FROM dv_jobs WHERE ino = $1",
			(int64_t)ino);
	CHECK(delay > 1.3 && delay <= 2.5);
	CHECK_EQ(meta_docs_claim(e->m, "w", &job, &wait), -EAGAIN);
	CHECK(wait > 1.0 && wait <= 2.5);
	CHECK_EQ(q_i64_1(e->m,
			 "SELECT count(*) FROM dv_jobs WHERE ino = $1 AND last_error = "
			 "'store timed out'",
			 (int64_t)ino),
		 1);

	q_i64(e->m, "UPDATE dv_jobs SET not_before = now() RETURNING 1");
	CHECK_EQ(meta_docs_claim(e->m, "w", &job, NULL), 0);
	CHECK_EQ(job.attempts, 2);
	CHECK_EQ(meta_docs_fail(e->m, "w", &job, "store timed out", NULL, false, 3), 0);
	delay = q_f64_1(e->m,
			"SELECT EXTRACT(epoch FROM not_before - now()) FROM dv_jobs WHERE ino = $1",
			(int64_t)ino);
	CHECK(delay > 2.8 && delay <= 5.0); /* 2^2 s */
	q_i64(e->m, "UPDATE dv_jobs SET not_before = now() RETURNING 1");
	CHECK_EQ(meta_docs_claim(e->m, "w", &job, NULL), 0);
	CHECK_EQ(job.attempts, 3);
	/* a stranger cannot fail someone else's claim */
	CHECK_EQ(meta_docs_fail(e->m, "other", &job, "x", NULL, false, 3), -ESTALE);
	CHECK_EQ(meta_docs_fail(e->m, "w", &job, "store timed out", "application/pdf", false, 3),
		 1);
	CHECK_EQ(jobs_for(e, ino), 0);
	CHECK_EQ(meta_docs_get(e->m, ino, &d), 0);
	CHECK_EQ(d.status, META_DOC_FAILED);
	CHECK_STREQ(d.error, "store timed out");
	CHECK_STREQ(d.mime, "application/pdf");
	meta_doc_free(&d);

	/* a bad document fails at once, without retries */
	commit_text(e, ino, "%PDF-1.4 broken again", NULL);
	CHECK_EQ(meta_docs_claim(e->m, "w", &job, NULL), 0);
	CHECK_EQ(
	    meta_docs_fail(e->m, "w", &job, "corrupt PDF: no xref", "application/pdf", true, 5), 1);
	CHECK_EQ(meta_docs_get(e->m, ino, &d), 0);
	CHECK_EQ(d.status, META_DOC_FAILED);
	CHECK_STREQ(d.error, "corrupt PDF: no xref");
	meta_doc_free(&d);

	struct meta_docs_counts c;

	CHECK_EQ(meta_docs_counts(e->m, &c), 0);
	CHECK_EQ(c.failed, 1);
	CHECK_EQ(c.ready + c.waiting + c.processing, 0);
	/* a file with no content committed yet is in no bucket, completed least */
	{
		uint64_t done = c.completed, fresh = mkfile(e, 1, "counts-not-committed.txt");

		CHECK(fresh != 0);
		CHECK_EQ(meta_docs_counts(e->m, &c), 0);
		CHECK_EQ(c.completed, done);
		CHECK_EQ(c.completed,
			 (uint64_t)q_i64(e->m, "SELECT count(*) FROM dv_inodes WHERE status = 3"));
	}

	/* reprocess: queued again, error cleared */
	CHECK_EQ(meta_docs_requeue(e->m, ino), 0);
	CHECK_EQ(jobs_for(e, ino), 1);
	CHECK_EQ(meta_docs_get(e->m, ino, &d), 0);
	CHECK_EQ(d.status, META_DOC_READY);
	CHECK_STREQ(d.error, "");
	meta_doc_free(&d);
	CHECK_EQ(meta_docs_requeue(e->m, 999999), -ENOENT);
	CHECK_EQ(meta_docs_requeue(e->m, 1), 0); /* a directory: nothing to do */
	CHECK_EQ(jobs_for(e, 1), 0);
	drain(e);
}

static void test_stale_completion(struct env *e)
{
	uint64_t ino = mkfile(e, 1, "moving.txt");
	const char *tags[] = {"alpha", "beta"};
	struct meta_docs_result r = {.mime = "text/plain",
				     .text = "the quick brown fox jumps over the lazy dog",
				     .summary = "A fox jumps.",
				     .summary_source = "builtin",
				     .autotags = tags,
				     .nautotags = 2};
	struct meta_job old, job;
	struct meta_doc d;
	uint64_t v2;

	r.text_len = strlen(r.text);
	commit_text(e, ino, "version one", NULL);
	CHECK_EQ(meta_docs_claim(e->m, "w1", &old, NULL), 0);
	v2 = commit_text(e, ino, "version two", NULL);
	CHECK_EQ(v2, old.version + 1);
	CHECK_EQ(meta_docs_complete(e->m, "w1", &old, &r), -ESTALE);
	CHECK_EQ(meta_docs_fail(e->m, "w1", &old, "x", NULL, false, 5), -ESTALE);
	CHECK_EQ(meta_docs_get(e->m, ino, &d), 0);
	CHECK_EQ(d.status, META_DOC_READY);
	CHECK_STREQ(d.mime, "");
	meta_doc_free(&d);
	CHECK_EQ(jobs_for(e, ino), 1);
	CHECK_EQ(meta_docs_claim(e->m, "w2", &job, NULL), 0);
	CHECK_EQ(job.ino, ino);
	CHECK_EQ(job.version, v2);
	CHECK_EQ(job.attempts, 1);
	CHECK_EQ(job.size, 11);
	CHECK_EQ(meta_docs_complete(e->m, "w2", &job, &r), 0);
	CHECK_EQ(meta_docs_complete(e->m, "w2", &job, &r), -ESTALE); /* exactly once */
	CHECK_EQ(meta_docs_get(e->m, ino, &d), 0);
	CHECK_EQ(d.status, META_DOC_COMPLETED);
	CHECK_STREQ(d.mime, "text/plain");
	CHECK_STREQ(d.summary, "A fox jumps.");
	CHECK_STREQ(d.summary_source, "builtin");
	CHECK_STREQ(d.autotags, "alpha,beta");
	CHECK_EQ(d.processed, v2);
	meta_doc_free(&d);
	CHECK_EQ(jobs_for(e, ino), 0);
	CHECK_EQ(q_i64_1(e->m,
			 "SELECT (fts @@ dv_fts_query('foxes'))::int FROM dv_inodes "
			 "WHERE id = $1",
			 (int64_t)ino),
		 1);
	CHECK_EQ(q_i64_1(e->m,
			 "SELECT (fts @@ dv_fts_query('elephant'))::int FROM dv_inodes "
			 "WHERE id = $1",
			 (int64_t)ino),
		 0);
}

/* Odd input: invalid UTF-8, NUL bytes, huge text of distinct words. */
static void test_sanitise(struct env *e)
{
	uint64_t ino = mkfile(e, 1, "odd.bin");
	const char bad[] = "ok \xff\xfe caf\xc3\xa9 \xed\xa0\x80 end";
	const char *tags[] = {"t\xff", "", "ok"};
	struct meta_docs_result r = {.mime = "application/x-odd\xff",
				     .summary = bad,
				     .summary_source = "builtin",
				     .autotags = tags,
				     .nautotags = 3};
	size_t big = 3u << 20;
	char *text = malloc(big);
	struct meta_job job;
	struct meta_doc d;
	size_t o = 0;

	for (unsigned i = 0; o + 16 < big; i++)
		o += (size_t)snprintf(text + o, big - o, "w%x ", i * 2654435761u);
	text[3] = '\0'; /* a NUL inside */
	r.text = text;
	r.text_len = o;
	commit_text(e, ino, "\x01\x02\x03", NULL);
	CHECK_EQ(meta_docs_claim(e->m, "w", &job, NULL), 0);
	CHECK_EQ(meta_docs_complete(e->m, "w", &job, &r), 0);
	CHECK_EQ(meta_docs_get(e->m, ino, &d), 0);
	CHECK_EQ(d.status, META_DOC_COMPLETED);
	CHECK_STREQ(d.summary, "ok \xef\xbf\xbd\xef\xbf\xbd caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd"
			       "\xef\xbf\xbd end");
	CHECK_STREQ(d.autotags, "t\xef\xbf\xbd,ok");
	CHECK_STREQ(d.mime, "application/x-odd\xef\xbf\xbd");
	meta_doc_free(&d);
	CHECK_EQ(q_i64_1(e->m,
			 "SELECT (fts IS NOT NULL AND length(fts) > 1000)::int "
			 "FROM dv_inodes WHERE id = $1",
			 (int64_t)ino),
		 1);
	free(text);
}

static void test_tags(struct env *e)
{
	uint64_t ino = mkfile(e, 1, "tagged.txt");
	struct meta_doc d;
	char many[8192];
	size_t o = 0;

#define TAGS_ARE(want)                                                                             \
	do {                                                                                       \
		CHECK_EQ(meta_docs_get(e->m, ino, &d), 0);                                         \
		CHECK_STREQ(d.tags, want);                                                         \
		meta_doc_free(&d);                                                                 \
	} while (0)
#define WRITE(s) meta_docs_tags_write(e->m, ino, s, strlen(s), now_ns())

	CHECK_EQ(WRITE("b,a, c ,,a"), 0);
	TAGS_ARE("a,b,c");
	CHECK_EQ(WRITE("+d,-a"), 0);
	TAGS_ARE("b,c,d");
	CHECK_EQ(WRITE("-b"), 0);
	TAGS_ARE("c,d");
	CHECK_EQ(WRITE("+ e, f"), 0); /* edit mode: an unsigned tag adds */
	TAGS_ARE("c,d,e,f");
	CHECK_EQ(WRITE("-nope"), 0);
	TAGS_ARE("c,d,e,f");
	CHECK_EQ(WRITE("x\"y\\z,ünï"), 0);
	TAGS_ARE("x\"y\\z,ünï");
	CHECK_EQ(WRITE(""), 0);
	TAGS_ARE("");
	CHECK_EQ(WRITE("bad\x01tag"), -EINVAL);
	CHECK_EQ(WRITE("bad\xfftag"), -EINVAL);
	CHECK_EQ(meta_docs_tags_write(e->m, ino, "a\0b", 3, now_ns()), -EINVAL);
	memset(many, 'x', 300);
	many[300] = '\0';
	CHECK_EQ(WRITE(many), -EINVAL);
	for (int i = 0; i <= META_DOCS_TAGS_MAX; i++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, "%st%d", i ? "," : "", i);
	CHECK_EQ(WRITE(many), -E2BIG);
	CHECK_EQ(WRITE("+one"), 0);
	for (int i = 0, k = 0; i < META_DOCS_TAGS_MAX; i++) {
		char t[16];

		snprintf(t, sizeof(t), "+u%d", i);
		k = WRITE(t);
		if (i < META_DOCS_TAGS_MAX - 1)
			CHECK_EQ(k, 0);
		else
			CHECK_EQ(k, -E2BIG); /* one + 200 would be 201 */
	}
	CHECK_EQ(
	    q_i64_1(e->m, "SELECT cardinality(tags) FROM dv_inodes WHERE id = $1", (int64_t)ino),
	    META_DOCS_TAGS_MAX);
	CHECK_EQ(meta_docs_tags_write(e->m, 999999, "a", 1, now_ns()), -ENOENT);
	CHECK_EQ(q_i64_1(e->m,
			 "SELECT count(*) FROM dv_inodes WHERE tags @> ARRAY['one'] AND id = $1",
			 (int64_t)ino),
		 1);
#undef TAGS_ARE
#undef WRITE
}

struct dup_row {
	char path[64];
	unsigned char sum[16];
};

struct dup_list {
	struct dup_row rows[16];
	int n;
};

static int dup_cb(void *arg, const unsigned char *checksum, uint64_t size, uint64_t ino,
		  const char *path, size_t pathlen)
{
	struct dup_list *l = arg;

	(void)size;
	(void)ino;
	if (l->n < 16) {
		snprintf(l->rows[l->n].path, sizeof(l->rows[0].path), "%.*s", (int)pathlen, path);
		memcpy(l->rows[l->n].sum, checksum, 16);
		l->n++;
	}
	return 0;
}

static void test_duplicates(struct env *e)
{
	uint64_t d1 = mkdir_(e, 1, "d1"), sub = mkdir_(e, d1, "sub");
	uint64_t a = mkfile(e, d1, "a"), b = mkfile(e, sub, "b"), c = mkfile(e, 1, "c");
	uint64_t x = mkfile(e, d1, "e"), y = mkfile(e, 1, "f"), u = mkfile(e, 1, "g");
	struct checksum sx, sy;
	struct dup_list l = {0};
	struct meta_attr at;

	drain(e);
	commit_text(e, a, "same content X", &sx);
	commit_text(e, b, "same content X", NULL);
	commit_text(e, c, "same content X", NULL);
	commit_text(e, x, "other content Y", &sy);
	commit_text(e, y, "other content Y", NULL);
	commit_text(e, u, "unique", NULL);
	CHECK_EQ(meta_link(e->m, c, d1, "hardlink", 8, now_ns(), &at), 0);
	/* the race test's and others' files are unique; only these two groups */
	CHECK_EQ(meta_docs_duplicates(e->m, NULL, dup_cb, &l), 5);
	CHECK_EQ(l.n, 5);
	{
		bool x_first = memcmp(sx.plain, sy.plain, 16) < 0;
		int xi = x_first ? 0 : 2, yi = x_first ? 3 : 0;

		CHECK(memcmp(l.rows[xi].sum, sx.plain, 16) == 0);
		CHECK_STREQ(l.rows[xi].path, "/c");
		CHECK_STREQ(l.rows[xi + 1].path, "/d1/a");
		CHECK_STREQ(l.rows[xi + 2].path, "/d1/sub/b");
		CHECK(memcmp(l.rows[yi].sum, sy.plain, 16) == 0);
		CHECK_STREQ(l.rows[yi].path, "/d1/e");
		CHECK_STREQ(l.rows[yi + 1].path, "/f");
	}
	memset(&l, 0, sizeof(l));
	CHECK_EQ(meta_docs_duplicates(e->m, "/d1/", dup_cb, &l), 2);
	CHECK_STREQ(l.rows[0].path, "/d1/a");
	CHECK_STREQ(l.rows[1].path, "/d1/sub/b");
	memset(&l, 0, sizeof(l));
	CHECK_EQ(meta_docs_duplicates(e->m, "d1/sub", dup_cb, &l), 0);
	CHECK_EQ(meta_docs_duplicates(e->m, "/d", dup_cb, &l), 0); /* not a prefix of /d1 */
	memset(&l, 0, sizeof(l));
	CHECK_EQ(meta_docs_duplicates(e->m, "/", dup_cb, &l), 5);
	drain(e);
}

/*
 * A file unlinked while open leaves the totals at its unlink; a commit or a
 * size change to it afterwards must not move them (before migration 4 they
 * did, and docvault fsck found the bytes total off).
 */
static void test_orphan_counters(struct env *e)
{
	struct meta_stats s0, s1;
	struct meta_attr a, sa;
	uint64_t ino = mkfile(e, 1, "orphan.txt"), sid = 0;

	commit_text(e, ino, "ten bytes!", NULL);
	CHECK_EQ(meta_session_start(e->m, "test", (int)getpid(), &sid), 0);
	CHECK_EQ(meta_unlink(e->m, 1, "orphan.txt", 10, sid, now_ns(), &a), 0);
	CHECK_EQ(meta_stats(e->m, &s0), 0);
	commit_text(e, ino, "a longer content than before", NULL);
	memset(&sa, 0, sizeof(sa));
	sa.size = 5000;
	CHECK_EQ(meta_setattr(e->m, ino, META_SET_SIZE, &sa, now_ns(), &a), 0);
	CHECK_EQ(a.size, 5000);
	CHECK_EQ(meta_stats(e->m, &s1), 0);
	CHECK_EQ(s1.bytes, s0.bytes);
	CHECK_EQ(s1.files, s0.files);
	CHECK_EQ(meta_session_end(e->m, sid), 0);
	CHECK_EQ(meta_stats(e->m, &s1), 0);
	CHECK_EQ(s1.bytes, s0.bytes);
}

int main(void)
{
	struct env e = {0};
	char err[512];

	log_set_level(LOG_LVL_WARN);
	if (env_db_create(&e)) {
		CHECK(!"a PostgreSQL server to test against");
		return test_done();
	}
	if (meta_open(e.conninfo, 4, &e.m, err, sizeof(err))) {
		fprintf(stderr, "FAIL: %s\n", err);
		CHECK(!"meta_open");
		env_db_drop(&e);
		return test_done();
	}
	test_upgrade(&e);
	test_commit_queues(&e);
	test_claim_race(&e);
	test_fail_backoff(&e);
	test_stale_completion(&e);
	test_sanitise(&e);
	test_tags(&e);
	test_duplicates(&e);
	test_orphan_counters(&e);
	env_db_drop(&e);
	return test_done();
}
