/*
 * test_jobs.c - the processing workers (jobs.h) on a real PostgreSQL and a
 * local store: documents committed are processed and completed; a new
 * commit wakes an idle worker through NOTIFY well before the poll
 * interval; a blob missing from the store fails after max_attempts with
 * the reason; stopping is prompt; a document that hits the CPU limit fails
 * alone and killed extraction servers are restarted; and 500 documents
 * processed by three worker pools in this process plus a forked worker
 * process are each claimed and completed exactly once (counted by triggers
 * in the database).
 *
 * The server comes from DV_TEST_PGHOST, DV_TEST_PGPORT, DV_TEST_PGUSER
 * (tools/check and tools/lib/pg.sh provide them); without them the test
 * FAILS. Each run creates its own database and drops it at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "check.h"
#include "docvault/checksum.h"
#include "docvault/config.h"
#include "docvault/jobs.h"
#include "docvault/log.h"
#include "docvault/meta.h"
#include "docvault/meta_docs.h"
#include "docvault/store.h"
#include "../../backend/meta_pg.h"

#ifndef MANY
#define MANY 500
#endif

struct env {
	char admin[512];
	char conninfo[512];
	char db[64];
	char dir[256];	 /* temporary directory: blobs/ and tmp/ */
	char blobs[300]; /* the local store */
	char tmp[300];	 /* the workers' temporary files */
	struct meta *m;
	struct store *st;
	struct dv_config cfg;
	unsigned char secret[CHECKSUM_SECRET_SIZE];
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

static int q_exec(struct meta *m, const char *sql)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret = meta_plain(m, sql, &p, &res);

	if (!ret)
		PQclear(res);
	return ret;
}

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

static int env_setup(struct env *e)
{
	const char *host = getenv("DV_TEST_PGHOST"), *port = getenv("DV_TEST_PGPORT");
	const char *user = getenv("DV_TEST_PGUSER");
	const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char sql[128], err[512];

	if (!host || !port || !user) {
		fprintf(stderr,
			"FAIL: DV_TEST_PGHOST, DV_TEST_PGPORT and DV_TEST_PGUSER must name a "
			"PostgreSQL server (tools/check sets them; or run tools/lib/pg.sh "
			"start DIR and source DIR/env)\n");
		return -1;
	}
	srandom((unsigned)(getpid() ^ time(NULL)));
	snprintf(e->db, sizeof(e->db), "dv_test_jobs_%d_%ld", (int)getpid(), random() % 100000);
	snprintf(e->admin, sizeof(e->admin), "host=%s port=%s user=%s dbname=postgres", host, port,
		 user);
	snprintf(e->conninfo, sizeof(e->conninfo), "host=%s port=%s user=%s dbname=%s", host, port,
		 user, e->db);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", e->db);
	if (admin_exec(e, sql))
		return -1;
	snprintf(e->dir, sizeof(e->dir), "%s/dv-test-jobs.XXXXXX", tmp);
	if (!mkdtemp(e->dir)) {
		fprintf(stderr, "FAIL: mkdtemp %s: %s\n", e->dir, strerror(errno));
		return -1;
	}
	snprintf(e->blobs, sizeof(e->blobs), "%s/blobs", e->dir);
	snprintf(e->tmp, sizeof(e->tmp), "%s/tmp", e->dir);
	if (mkdir(e->blobs, 0700) || mkdir(e->tmp, 0700)) {
		fprintf(stderr, "FAIL: mkdir in %s: %s\n", e->dir, strerror(errno));
		return -1;
	}
	if (config_defaults(&e->cfg))
		return -1;
	free(e->cfg.database.conninfo);
	e->cfg.database.conninfo = strdup(e->conninfo);
	e->cfg.processing.max_attempts = 2;
	e->cfg.processing.wall_limit = 15; /* small documents: a stuck extraction fails fast */
	if (meta_open(e->conninfo, 4, &e->m, err, sizeof(err)) ||
	    meta_init(e->m, 1000, 1000, err, sizeof(err)) ||
	    meta_check(e->m, e->secret, err, sizeof(err)) ||
	    store_local_open(e->blobs, &e->st, err, sizeof(err))) {
		fprintf(stderr, "FAIL: %s\n", err);
		return -1;
	}
	/* every claim and every completion, as the database saw them */
	{
		static const char *const ddl[] = {
		    "CREATE TABLE test_claims (ino bigint, version bigint, worker text)",
		    "CREATE TABLE test_done (ino bigint, version bigint)",
		    "CREATE FUNCTION test_claimed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
		    "INSERT INTO test_claims VALUES (NEW.ino, NEW.version, NEW.claimed_by); "
		    "RETURN NEW; END $$",
		    "CREATE TRIGGER test_claimed AFTER UPDATE ON dv_jobs FOR EACH ROW "
		    "WHEN (NEW.state = 1 AND OLD.state = 0) EXECUTE FUNCTION test_claimed()",
		    "CREATE FUNCTION test_done() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
		    "INSERT INTO test_done VALUES (NEW.id, NEW.version); RETURN NEW; END $$",
		    "CREATE TRIGGER test_done AFTER UPDATE ON dv_inodes FOR EACH ROW "
		    "WHEN (NEW.status = 3 AND OLD.status = 2) EXECUTE FUNCTION test_done()",
		};

		for (size_t i = 0; i < sizeof(ddl) / sizeof(ddl[0]); i++)
			if (q_exec(e->m, ddl[i]))
				return -1;
	}
	return 0;
}

static void env_teardown(struct env *e)
{
	char sql[128], cmd[400];

	store_close(e->st);
	meta_close(e->m);
	config_free(&e->cfg);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", e->db);
	admin_exec(e, sql);
	if (e->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", e->dir);
	}
}

/* Puts len bytes in the store (unless skip_store) and commits them as ino's content. */
static uint64_t put_commit_bytes(struct env *e, uint64_t ino, const char *text, size_t len,
				 bool skip_store)
{
	char path[400], key[STORE_BLOB_KEY_SIZE];
	struct checksum sum;
	struct meta_attr a;
	int fd, ret;

	snprintf(path, sizeof(path), "%s/put.XXXXXX", e->dir);
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return 0;
	CHECK_EQ(write(fd, text, len), (ssize_t)len);
	CHECK_EQ(checksum_fd(fd, len, e->secret, &sum), 0);
	store_blob_key(sum.keyed, key);
	if (!skip_store)
		CHECK_EQ(store_put_fd(e->st, key, fd, len, sum.sha256), 0);
	close(fd);
	unlink(path);
	ret = meta_commit(e->m, ino, &sum, len, now_ns(), now_ns(), &a);
	CHECK_EQ(ret, 0);
	return ret ? 0 : a.version;
}

/* Puts text in the store (unless skip_store) and commits it as ino's content. */
static uint64_t put_commit(struct env *e, uint64_t ino, const char *text, bool skip_store)
{
	return put_commit_bytes(e, ino, text, strlen(text), skip_store);
}

static uint64_t mkfile(struct env *e, uint64_t parent, const char *name)
{
	struct meta_attr a;
	int ret = meta_create(e->m, parent, name, strlen(name), S_IFREG | 0644, 1000, 1000, 0, NULL,
			      now_ns(), &a);

	CHECK_EQ(ret, 0);
	return ret ? 0 : a.ino;
}

/* Waits until ino has one of the final statuses; returns it (or -1 after timeout_s). */
static int wait_final(struct env *e, uint64_t ino, double timeout_s)
{
	double end = mono() + timeout_s;

	while (mono() < end) {
		struct meta_doc d;
		int s = -1;

		if (meta_docs_get(e->m, ino, &d) == 0) {
			s = (int)d.status;
			meta_doc_free(&d);
		}
		if (s == META_DOC_COMPLETED || s == META_DOC_FAILED)
			return s;
		usleep(20000);
	}
	return -1;
}

static void test_process(struct env *e)
{
	static const char *const texts[] = {
	    "Invoices for the garden project.\nThe garden needs new fences and fences "
	    "need paint. Paint the garden fences in spring.\n",
	    "# Meeting notes\n\nThe team discussed the budget. The budget is tight; the team "
	    "will cut travel.\n",
	    "plain words words words about nothing much at all\n",
	};
	uint64_t inos[3];
	struct jobs *j = NULL;
	struct jobs_stats s;
	struct meta_doc d;
	double t0;

	for (int i = 0; i < 3; i++) {
		char name[32];

		snprintf(name, sizeof(name), "doc%d.txt", i);
		inos[i] = mkfile(e, 1, name);
		put_commit(e, inos[i], texts[i], false);
	}
	CHECK_EQ(jobs_start(&e->cfg, e->m, e->st, e->tmp, 2, "test", &j), 0);
	if (!j)
		return;
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(wait_final(e, inos[i], 60), META_DOC_COMPLETED);
		CHECK_EQ(meta_docs_get(e->m, inos[i], &d), 0);
		CHECK(strncmp(d.mime, "text/", 5) == 0);
		CHECK(d.summary[0] != '\0');
		CHECK(d.autotags[0] != '\0');
		CHECK_STREQ(d.error, "");
		CHECK_EQ(d.processed, d.version);
		meta_doc_free(&d);
	}
	/* idle now: a commit must wake a worker through NOTIFY, not the poll */
	usleep(300000);
	t0 = mono();
	put_commit(e, inos[2], "fresh content about elephants and elephants\n", false);
	CHECK_EQ(wait_final(e, inos[2], 30), META_DOC_COMPLETED);
	CHECK(mono() - t0 < JOBS_POLL_S * 0.6);
	fprintf(stderr, "test_jobs: commit to completed while idle: %.3f s\n", mono() - t0);
	CHECK_EQ(q_i64(e->m, "SELECT count(*) FROM dv_jobs"), 0);

	/* a blob missing from the store: retried once (max_attempts 2), then failed */
	{
		uint64_t lost = mkfile(e, 1, "lost.txt");

		put_commit(e, lost, "this content never reached the store\n", true);
		CHECK_EQ(wait_final(e, lost, 30), META_DOC_FAILED);
		CHECK_EQ(meta_docs_get(e->m, lost, &d), 0);
		CHECK(strstr(d.error, "store") != NULL);
		meta_doc_free(&d);
	}
	jobs_get_stats(j, &s);
	CHECK_EQ(s.completed, 4);
	CHECK_EQ(s.failed, 1);
	CHECK_EQ(s.retried, 1);
	CHECK_EQ(s.errors, 0);
	t0 = mono();
	jobs_stop(j);
	CHECK(mono() - t0 < 2.0); /* idle workers end at once */
}

/* The forked worker: its own connections, its own store; exits 0 if all went well. */
static void child_worker(struct env *e)
{
	struct meta *m = NULL;
	struct store *st = NULL;
	struct jobs *j = NULL;
	struct jobs_stats s;
	char err[512];
	int code = 1;

	if (meta_open(e->conninfo, 4, &m, err, sizeof(err)) == 0 &&
	    store_local_open(e->blobs, &st, err, sizeof(err)) == 0 &&
	    jobs_start_drain(&e->cfg, m, st, e->tmp, 2, "child", &j) == 0) {
		jobs_wait(j, -1);
		jobs_get_stats(j, &s);
		fprintf(stderr, "test_jobs: forked worker completed %" PRIu64 "\n", s.completed);
		code = s.errors || s.failed ? 1 : 0;
		jobs_stop(j);
	}
	store_close(st);
	meta_close(m);
	_exit(code);
}

static void test_many(struct env *e)
{
	struct meta *ms[3] = {NULL, NULL, NULL};
	struct jobs *js[3] = {NULL, NULL, NULL};
	struct meta_attr a;
	uint64_t dir;
	char err[512];
	double t0 = mono();
	int status = -1;
	pid_t pid;

	CHECK_EQ(meta_create(e->m, 1, "many", 4, S_IFDIR | 0755, 1000, 1000, 0, NULL, now_ns(), &a),
		 0);
	dir = a.ino;
	for (int i = 0; i < MANY; i++) {
		char name[32], text[128];

		snprintf(name, sizeof(name), "m%03d.txt", i);
		snprintf(text, sizeof(text),
			 "Document number %d talks about topic %d and topic %d.\n", i, i % 7,
			 i % 13);
		put_commit(e, mkfile(e, dir, name), text, false);
	}
	q_exec(e->m, "TRUNCATE test_claims, test_done");
	CHECK_EQ(q_i64(e->m, "SELECT count(*) FROM dv_jobs"), MANY);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		child_worker(e);
	for (int i = 0; i < 3; i++) {
		char name[32];

		snprintf(name, sizeof(name), "pool%d", i);
		CHECK_EQ(meta_open(e->conninfo, 3, &ms[i], err, sizeof(err)), 0);
		if (ms[i])
			CHECK_EQ(jobs_start_drain(&e->cfg, ms[i], e->st, e->tmp, 2, name, &js[i]),
				 0);
	}
	for (int i = 0; i < 3; i++) {
		struct jobs_stats s = {0};

		if (!js[i])
			continue;
		CHECK_EQ(jobs_wait(js[i], 720000), 0);
		jobs_get_stats(js[i], &s);
		CHECK_EQ(s.errors + s.failed + s.stale, 0);
		fprintf(stderr, "test_jobs: pool%d completed %" PRIu64 "\n", i, s.completed);
		jobs_stop(js[i]);
		meta_close(ms[i]);
	}
	if (pid > 0) {
		CHECK_EQ(waitpid(pid, &status, 0), pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	fprintf(stderr, "test_jobs: %d documents in %.1f s\n", MANY, mono() - t0);
	/* exactly once: one claim and one completion per document */
	CHECK_EQ(q_i64(e->m, "SELECT count(*) FROM test_claims"), MANY);
	CHECK_EQ(q_i64(e->m, "SELECT count(DISTINCT (ino, version)) FROM test_claims"), MANY);
	CHECK_EQ(q_i64(e->m, "SELECT count(*) FROM test_done"), MANY);
	CHECK_EQ(q_i64(e->m, "SELECT count(DISTINCT ino) FROM test_done"), MANY);
	CHECK_EQ(q_i64(e->m, "SELECT count(*) FROM dv_jobs"), 0);
	CHECK_EQ(q_i64(e->m, "SELECT count(*) FROM dv_inodes i JOIN dv_dentries d ON d.ino = i.id "
			     "WHERE d.parent = (SELECT ino FROM dv_dentries WHERE parent = 1 AND "
			     "name = 'many') AND i.status = 3 AND i.processed = i.version"),
		 MANY);
	/* several workers took part (the claims name them) */
	CHECK(q_i64(e->m, "SELECT count(DISTINCT split_part(worker, '/', 1)) FROM test_claims") >=
	      2);
	fprintf(stderr, "test_jobs: claims by the forked worker: %" PRId64 "\n",
		q_i64(e->m, "SELECT count(*) FROM test_claims WHERE worker LIKE 'child/%'"));
}

/* The pids of this process's children that run the extraction server (up to max). */
static int extract_servers(pid_t *pids, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max) {
		char path[300], buf[4096];
		int ppid = 0;
		ssize_t len;
		int fd;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		/* pid (comm) state ppid ...: comm may hold spaces, so from the last ')' */
		if (!strrchr(buf, ')') || sscanf(strrchr(buf, ')') + 2, "%*c %d", &ppid) != 1 ||
		    ppid != getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		for (ssize_t i = 0; i < len; i++)
			if (buf[i] == '\0')
				buf[i] = ' ';
		buf[len] = '\0';
		if (strstr(buf, "__extract --serve"))
			pids[n++] = atoi(de->d_name);
	}
	closedir(d);
	return n;
}

/*
 * Workers extract on servers of their own: a document that hits a limit
 * fails alone (its neighbours complete), a killed server is
 * restarted by the next document, and stopping the workers ends them.
 */
static void test_servers(struct env *e)
{
	char bomb[300], *data = NULL;
	uint64_t ino, inos[6];
	struct jobs *j = NULL;
	struct jobs_stats s;
	struct meta_doc d;
	pid_t pids[8];
	ssize_t len = -1;
	int fd, n;

	snprintf(bomb, sizeof(bomb), "%s/tests/fixtures/docs/bomb.pdf",
		 getenv("DV_SOURCE_DIR") ? getenv("DV_SOURCE_DIR") : ".");
	fd = open(bomb, O_RDONLY);
	CHECK(fd >= 0);
	if (fd < 0) {
		fprintf(stderr, "test_jobs: %s: %s (DV_SOURCE_DIR must name the sources)\n", bomb,
			strerror(errno));
		return;
	}
	data = malloc(1 << 20);
	if (data)
		len = read(fd, data, 1 << 20);
	close(fd);
	CHECK(len > 0);
	if (len <= 0) {
		free(data);
		return;
	}
	e->cfg.processing.cpu_limit = 1;
	CHECK_EQ(jobs_start(&e->cfg, e->m, e->st, e->tmp, 2, "servers", &j), 0);
	e->cfg.processing.cpu_limit = 30;
	if (!j) {
		free(data);
		return;
	}
	ino = mkfile(e, 1, "bomb.pdf");
	put_commit_bytes(e, ino, data, (size_t)len, false);
	free(data);
	for (int i = 0; i < 6; i++) {
		char name[32], text[128];

		snprintf(name, sizeof(name), "srv%d.txt", i);
		snprintf(text, sizeof(text), "Server document %d about lighthouses and keepers.\n",
			 i);
		inos[i] = mkfile(e, 1, name);
		put_commit(e, inos[i], text, false);
	}
	CHECK_EQ(wait_final(e, ino, 60), META_DOC_FAILED);
	CHECK_EQ(meta_docs_get(e->m, ino, &d), 0);
	/* the CPU limit, or the memory limit if pdftotext grows faster than it spins */
	CHECK(strstr(d.error, "CPU limit") != NULL || strstr(d.error, "memory limit") != NULL);
	CHECK_STREQ(d.mime, "application/pdf");
	fprintf(stderr, "test_jobs: bomb.pdf: %s\n", d.error);
	meta_doc_free(&d);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(wait_final(e, inos[i], 60), META_DOC_COMPLETED);

	/* kill the servers: the next documents restart them */
	n = extract_servers(pids, 8);
	CHECK(n >= 1 && n <= 2);
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	for (int i = 0; i < 6; i++) {
		char text[128];

		snprintf(text, sizeof(text), "Version two of document %d, about harbours.\n", i);
		put_commit(e, inos[i], text, false);
	}
	for (int i = 0; i < 6; i++) {
		CHECK_EQ(wait_final(e, inos[i], 60), META_DOC_COMPLETED);
		CHECK_EQ(meta_docs_get(e->m, inos[i], &d), 0);
		CHECK(strstr(d.summary, "harbours") != NULL);
		meta_doc_free(&d);
	}
	jobs_get_stats(j, &s);
	CHECK_EQ(s.completed, 12);
	CHECK_EQ(s.failed, 1);
	CHECK_EQ(s.retried, 0);
	jobs_stop(j);
	usleep(100000);
	CHECK_EQ(extract_servers(pids, 8), 0); /* stopped with their workers */
}

int main(void)
{
	struct env e = {0};

	log_set_level(getenv("DV_TEST_LOG") ? LOG_LVL_DEBUG : LOG_LVL_WARN);
	if (env_setup(&e)) {
		CHECK(!"a PostgreSQL server and a temporary directory to test with");
		env_teardown(&e);
		return test_done();
	}
	test_process(&e);
	test_servers(&e);
	test_many(&e);
	env_teardown(&e);
	return test_done();
}
