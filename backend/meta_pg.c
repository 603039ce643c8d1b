/*
 * meta_pg.c - the metadata engine on PostgreSQL (see meta.h for the model).
 * With meta_pg.h (its private helpers, for meta_docs.c) the only place that
 * includes libpq-fe.h.
 *
 * Connections: a pool of up to pool_size connections, opened on demand and
 * handed out under a mutex; a caller holds one for exactly one statement.
 * Every statement is prepared once per connection. Multi-step operations
 * are server-side functions (meta_schema.sql.h), so each filesystem
 * operation is one round trip in one transaction. Names and values travel
 * as binary bytea parameters: user bytes never reach SQL text.
 *
 * Errors: a function returns its errno in the result's first column; a
 * failure of the database itself is logged once here with the SQLSTATE and
 * message and becomes -EIO. A connection found broken is reset before its
 * next use; while the server is unreachable (a restart, the network) a
 * statement is retried on a fresh connection for up to a minute, so a
 * PostgreSQL restart delays operations instead of failing them.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "docvault/log.h"
#include "docvault/meta.h"
#include "docvault/meta_gc.h"
#include "meta_pg.h"
#include "meta_schema.sql.h"

/* How long an operation retries while PostgreSQL is unreachable (a restart). */
#define META_RETRY_MS 60000

#define META_RESULT_COLS                                                                           \
	"err, id, mode, uid, gid, nlink, size, rdev, atime, mtime, ctime, crtime, version, "       \
	"content, aux"

#define META_INODE_COLS                                                                            \
	"i.id, i.mode, i.uid, i.gid, i.nlink, i.size, i.rdev, i.atime, i.mtime, i.ctime, "         \
	"i.crtime, i.version, i.content, NULL"

enum meta_stmt {
	ST_GETATTR,
	ST_LOOKUP,
	ST_CREATE,
	ST_LINK,
	ST_UNLINK,
	ST_RENAME,
	ST_FREE,
	ST_SETATTR,
	ST_COMMIT,
	ST_READLINK,
	ST_READDIR,
	ST_GETXATTR,
	ST_LISTXATTR,
	ST_SETXATTR,
	ST_REMOVEXATTR,
	ST_BLOB_FIND,
	ST_HEARTBEAT,
	ST_PARENT,
	ST_SYNC,
	ST_COUNT
};

static const char *const meta_sql[ST_COUNT] = {
    /* the two hottest reads: plain SQL, no function call (no row: ENOENT) */
    [ST_GETATTR] = "SELECT 0, " META_INODE_COLS " FROM dv_inodes i WHERE i.id = $1",
    [ST_LOOKUP] = "SELECT 0, " META_INODE_COLS " FROM dv_dentries d JOIN dv_inodes i "
		  "ON i.id = d.ino WHERE d.parent = $1 AND d.name = $2",
    [ST_CREATE] = "SELECT " META_RESULT_COLS " FROM dv_create($1, $2, $3, $4, $5, $6, $7, $8)",
    [ST_LINK] = "SELECT " META_RESULT_COLS " FROM dv_link($1, $2, $3, $4)",
    [ST_UNLINK] = "SELECT " META_RESULT_COLS " FROM dv_unlink($1, $2, $3, $4, $5)",
    [ST_RENAME] = "SELECT " META_RESULT_COLS " FROM dv_rename($1, $2, $3, $4, $5, $6, $7)",
    [ST_FREE] = "SELECT dv_free($1)",
    [ST_SETATTR] = "SELECT " META_RESULT_COLS " FROM dv_setattr($1, $2, $3, $4, $5, $6, $7, $8)",
    [ST_COMMIT] = "SELECT " META_RESULT_COLS " FROM dv_commit($1, $2, $3, $4, $5, $6, $7, $8)",
    [ST_READLINK] = "SELECT mode, target FROM dv_inodes WHERE id = $1",
    [ST_READDIR] = "SELECT d.pos, d.name, i.id, i.mode, i.uid, i.gid, i.nlink, i.size, "
		   "i.rdev, i.atime, i.mtime, i.ctime, i.crtime, i.version, i.content "
		   "FROM dv_dentries d JOIN dv_inodes i ON i.id = d.ino "
		   "WHERE d.parent = $1 AND d.pos > $2 ORDER BY d.pos LIMIT $3",
    [ST_GETXATTR] = "SELECT value FROM dv_xattrs WHERE ino = $1 AND name = $2",
    [ST_LISTXATTR] = "SELECT name FROM dv_xattrs WHERE ino = $1 ORDER BY name",
    [ST_SETXATTR] = "SELECT dv_setxattr($1, $2, $3, $4, $5)",
    [ST_REMOVEXATTR] = "SELECT dv_removexattr($1, $2, $3)",
    [ST_BLOB_FIND] = "SELECT sha256, size, blocks FROM dv_blobs WHERE hash = $1",
    [ST_HEARTBEAT] = "UPDATE dv_sessions SET heartbeat = now() WHERE id = $1",
    [ST_PARENT] = "SELECT parent FROM dv_dentries WHERE ino = $1 LIMIT 1",
    /* a transaction with an xid, committed synchronously: flushes the WAL so far */
    [ST_SYNC] = "SELECT set_config('synchronous_commit', 'on', true), txid_current()",
};

struct meta_conn {
	PGconn *pg;
	bool prepared;
	bool busy; /* protected by meta->lock */
};

struct meta {
	char *conninfo;
	char server[256]; /* for messages, secret-free */
	int pool_size;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	struct meta_conn *conns; /* [pool_size]; protected by lock */
	int nconns;		 /* protected by lock */
};

void meta_p_i64(struct meta_params *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof(p->num[p->n]), "%" PRId64, v);
	p->values[p->n] = p->num[p->n];
	p->lengths[p->n] = 0;
	p->formats[p->n++] = 0;
}

void meta_p_bytes(struct meta_params *p, const void *b, size_t len)
{
	p->values[p->n] = b ? (const char *)b : "";
	p->lengths[p->n] = (int)len;
	p->formats[p->n++] = 1;
}

void meta_p_null(struct meta_params *p)
{
	p->values[p->n] = NULL;
	p->lengths[p->n] = 0;
	p->formats[p->n++] = 0;
}

void meta_p_bool(struct meta_params *p, bool v)
{
	p->values[p->n] = v ? "t" : "f";
	p->lengths[p->n] = 0;
	p->formats[p->n++] = 0;
}

/* Copies the server's one-line message without the trailing newline. */
static void meta_conn_error(PGconn *pg, char *err, size_t errlen)
{
	const char *msg = PQerrorMessage(pg);
	size_t len = strcspn(msg, "\n");

	snprintf(err, errlen, "%.*s", (int)len, msg);
}

void meta_server_name(PGconn *pg, char *out, size_t len)
{
	const char *host = pg ? PQhost(pg) : NULL;
	const char *port = pg ? PQport(pg) : NULL;
	const char *db = pg ? PQdb(pg) : NULL;

	snprintf(out, len, "PostgreSQL %s%s%s database \"%s\"", host && *host ? host : "(default)",
		 port && *port ? ":" : "", port && *port ? port : "", db ? db : "?");
}

PGconn *meta_connect_own(const char *conninfo, const char *why, char *server, size_t slen,
			 char *err, size_t errlen)
{
	PGconn *pg = PQconnectdb(conninfo);
	const char *msg;

	meta_server_name(pg, server, slen);
	if (pg && PQstatus(pg) == CONNECTION_OK)
		return pg;
	msg = pg ? PQerrorMessage(pg) : "out of memory";
	snprintf(err, errlen, "cannot connect to %s%s%s: %.*s", server, *why ? " " : "", why,
		 (int)strcspn(msg, "\n"), msg);
	PQfinish(pg);
	return NULL;
}

static int meta_prepare(PGconn *pg)
{
	char name[16];

	for (int i = 0; i < ST_COUNT; i++) {
		PGresult *res;

		snprintf(name, sizeof(name), "s%d", i);
		res = PQprepare(pg, name, meta_sql[i], 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			log_error("PostgreSQL: cannot prepare statement %d: %s", i,
				  PQresultErrorMessage(res));
			PQclear(res);
			return -EIO;
		}
		PQclear(res);
	}
	return 0;
}

static PGconn *meta_connect(const char *conninfo, char *err, size_t errlen)
{
	PGconn *pg = PQconnectdb(conninfo);
	char server[256];

	if (!pg) {
		snprintf(err, errlen, "PostgreSQL: out of memory");
		return NULL;
	}
	if (PQstatus(pg) != CONNECTION_OK) {
		char msg[512];

		meta_server_name(pg, server, sizeof(server));
		meta_conn_error(pg, msg, sizeof(msg));
		snprintf(err, errlen, "cannot connect to %s: %s", server, msg);
		PQfinish(pg);
		return NULL;
	}
	/*
	 * Quiet NOTICEs; times are integers, so no datestyle concerns.
	 * Namespace changes commit without waiting for the WAL flush, as a
	 * local filesystem's metadata reaches its journal a moment later:
	 * durable at fsync/fsyncdir (meta_sync, and content commits, flush
	 * it). docs/design-commit.md says why.
	 */
	PQclear(PQexec(pg, "SET client_min_messages = warning; SET synchronous_commit = off"));
	return pg;
}

/* Takes a connection from the pool, opening one if the pool has room. */
static struct meta_conn *meta_acquire(struct meta *m)
{
	struct meta_conn *c = NULL;

	pthread_mutex_lock(&m->lock);
	for (;;) {
		for (int i = 0; i < m->nconns; i++)
			if (!m->conns[i].busy) {
				c = &m->conns[i];
				break;
			}
		if (c)
			break;
		if (m->nconns < m->pool_size) {
			c = &m->conns[m->nconns++];
			c->pg = NULL;
			c->prepared = false;
			break;
		}
		pthread_cond_wait(&m->freed, &m->lock);
	}
	c->busy = true;
	pthread_mutex_unlock(&m->lock);
	return c;
}

static void meta_release(struct meta *m, struct meta_conn *c)
{
	pthread_mutex_lock(&m->lock);
	c->busy = false;
	pthread_cond_signal(&m->freed);
	pthread_mutex_unlock(&m->lock);
}

/*
 * Makes sure c has a healthy connection, with its statements prepared
 * unless `bare` (init and the schema check run before the schema exists).
 */
static int meta_ready_as(struct meta *m, struct meta_conn *c, bool bare)
{
	char err[512];

	if (c->pg && PQstatus(c->pg) != CONNECTION_OK) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	if (!c->pg) {
		c->prepared = false;
		c->pg = meta_connect(m->conninfo, err, sizeof(err));
		if (!c->pg) {
			log_error("%s", err);
			return -EIO;
		}
	}
	if (!c->prepared && !bare) {
		if (meta_prepare(c->pg)) {
			PQfinish(c->pg);
			c->pg = NULL;
			return -EIO;
		}
		c->prepared = true;
	}
	return 0;
}

static int meta_ready(struct meta *m, struct meta_conn *c)
{
	return meta_ready_as(m, c, false);
}

/*
 * Runs a prepared statement. On success returns 0 with *res set (caller
 * PQclear()s); on failure logs once and returns -EIO.
 */
static int64_t meta_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * True when a failure says the server went away (restart, network) rather
 * than that the statement was wrong: the statement can be sent again.
 * When the connection broke after the server committed but before it
 * answered, a retried write runs twice; every write here is a function
 * whose second run fails cleanly (EEXIST, ENOENT) or does the same again.
 */
static bool meta_retryable(PGconn *pg, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (PQstatus(pg) != CONNECTION_OK)
		return true;
	/* 57P01..57P03: admin shutdown, crash shutdown, cannot connect now; 08: connection */
	return state && (!strncmp(state, "57P0", 4) || !strncmp(state, "08", 2));
}

/*
 * Waits before the next try while PostgreSQL is unreachable; false once
 * META_RETRY_MS have passed since `start` (the caller then fails with EIO).
 */
static bool meta_wait_retry(struct meta *m, int64_t start, int attempt)
{
	int64_t ms = attempt < 5 ? 100LL << attempt : 2000;

	if (meta_now_ms() - start + ms > META_RETRY_MS)
		return false;
	if (attempt == 0)
		log_warn("PostgreSQL (%s) is unreachable; retrying for up to %d s", m->server,
			 META_RETRY_MS / 1000);
	usleep((useconds_t)(ms * 1000));
	return true;
}

/*
 * Runs a prepared statement. On success returns 0 with *res set (caller
 * PQclear()s); on failure logs once and returns -EIO. A server that went
 * away is retried (reconnecting) for up to META_RETRY_MS.
 */
static int meta_exec(struct meta *m, enum meta_stmt st, const struct meta_params *p, PGresult **res)
{
	int64_t start = meta_now_ms();
	char name[16];
	int attempt = 0;

	snprintf(name, sizeof(name), "s%d", (int)st);
	for (;;) {
		struct meta_conn *c = meta_acquire(m);
		ExecStatusType status;
		int ret = meta_ready(m, c);

		*res = NULL;
		if (ret) {
			meta_release(m, c);
			if (meta_wait_retry(m, start, attempt++))
				continue;
			return ret;
		}
		*res = PQexecPrepared(c->pg, name, p->n, p->values, p->lengths, p->formats, 0);
		status = PQresultStatus(*res);
		if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
			meta_release(m, c);
			if (attempt > 0)
				log_info("PostgreSQL (%s) answers again", m->server);
			return 0;
		}
		if (meta_retryable(c->pg, *res)) {
			PQclear(*res);
			*res = NULL;
			PQfinish(c->pg);
			c->pg = NULL;
			meta_release(m, c);
			if (meta_wait_retry(m, start, attempt++))
				continue;
			log_error("PostgreSQL (%s): gave up on statement %s after %d s", m->server,
				  meta_sql[st], META_RETRY_MS / 1000);
			return -EIO;
		}
		{
			const char *state = PQresultErrorField(*res, PG_DIAG_SQLSTATE);

			/* a concurrent create of the same name lost the race on the key */
			if (state && !strcmp(state, "23505")) {
				PQclear(*res);
				*res = NULL;
				meta_release(m, c);
				return -EEXIST;
			}
			const char *msg = PQresultErrorField(*res, PG_DIAG_MESSAGE_PRIMARY);

			log_error("PostgreSQL: statement %s failed: SQLSTATE %s: %s", meta_sql[st],
				  state ? state : "-", msg ? msg : PQerrorMessage(c->pg));
		}
		PQclear(*res);
		*res = NULL;
		meta_release(m, c);
		return -EIO;
	}
}

int64_t meta_get_i64(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static int meta_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

/* Decodes a bytea in hex text form ("\x0a1b...") into out; returns its length or -1. */
ssize_t meta_get_bytea(const PGresult *res, int row, int col, void *out, size_t cap)
{
	const char *v = PQgetvalue(res, row, col);
	size_t len = (size_t)PQgetlength(res, row, col);
	unsigned char *o = out;

	if (len < 2 || v[0] != '\\' || v[1] != 'x')
		return -1;
	len = (len - 2) / 2;
	if (len > cap)
		return -1;
	for (size_t i = 0; i < len; i++)
		o[i] = (unsigned char)(meta_hexval(v[2 + 2 * i]) << 4 | meta_hexval(v[3 + 2 * i]));
	return (ssize_t)len;
}

/* Fills attr from the inode columns starting at column `col` (id first). */
static void meta_fill_attr(const PGresult *res, int row, int col, struct meta_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = (uint64_t)meta_get_i64(res, row, col);
	a->mode = (uint32_t)meta_get_i64(res, row, col + 1);
	a->uid = (uint32_t)meta_get_i64(res, row, col + 2);
	a->gid = (uint32_t)meta_get_i64(res, row, col + 3);
	a->nlink = (uint32_t)meta_get_i64(res, row, col + 4);
	a->size = (uint64_t)meta_get_i64(res, row, col + 5);
	a->rdev = (uint64_t)meta_get_i64(res, row, col + 6);
	a->atime = meta_get_i64(res, row, col + 7);
	a->mtime = meta_get_i64(res, row, col + 8);
	a->ctime = meta_get_i64(res, row, col + 9);
	a->crtime = meta_get_i64(res, row, col + 10);
	a->version = (uint64_t)meta_get_i64(res, row, col + 11);
	if (!PQgetisnull(res, row, col + 12))
		a->has_content = meta_get_bytea(res, row, col + 12, a->content, 16) == 16;
}

/* Runs a statement returning dv_result; maps its err column to -errno. */
static int meta_call(struct meta *m, enum meta_stmt st, const struct meta_params *p,
		     struct meta_attr *out, uint64_t *aux)
{
	PGresult *res;
	int ret = meta_exec(m, st, p, &res);

	if (ret)
		return ret;
	if (PQntuples(res) != 1) {
		ret = -ENOENT;
	} else {
		ret = -(int)meta_get_i64(res, 0, 0);
		if (!ret && out)
			meta_fill_attr(res, 0, 1, out);
		if (!ret && aux)
			*aux = (uint64_t)meta_get_i64(res, 0, 14);
	}
	PQclear(res);
	return ret;
}

int meta_open(const char *conninfo, int pool_size, struct meta **out, char *err, size_t errlen)
{
	struct meta *m;
	PGconn *pg;

	*out = NULL;
	if (pool_size < 1)
		pool_size = 1;
	pg = meta_connect(conninfo, err, errlen);
	if (!pg)
		return -EIO;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->conninfo = strdup(conninfo)) ||
	    !(m->conns = calloc((size_t)pool_size, sizeof(*m->conns)))) {
		if (m)
			free(m->conninfo);
		free(m);
		PQfinish(pg);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->pool_size = pool_size;
	meta_server_name(pg, m->server, sizeof(m->server));
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->freed, NULL);
	m->conns[0].pg = pg;
	m->nconns = 1;
	*out = m;
	return 0;
}

void meta_close(struct meta *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nconns; i++)
		PQfinish(m->conns[i].pg);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->freed);
	free(m->conns);
	free(m->conninfo);
	free(m);
}

/* Runs a plain (unprepared) command on c; logs and returns -EIO on failure. */
static int meta_simple(PGconn *pg, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQexec(pg, sql);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		snprintf(err, errlen, "PostgreSQL: %s", msg ? msg : PQerrorMessage(pg));
		PQclear(res);
		return -EIO;
	}
	PQclear(res);
	return 0;
}

/* Reads the recorded schema version (0 for an empty database). */
static int meta_schema_version(PGconn *pg, int *version, char *err, size_t errlen)
{
	PGresult *res = PQexec(pg, "SELECT to_regclass('dv_settings') IS NOT NULL");

	*version = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "PostgreSQL: %s", PQresultErrorMessage(res));
		PQclear(res);
		return -EIO;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		PQclear(res);
		return 0;
	}
	PQclear(res);
	res = PQexec(pg, "SELECT convert_from(value, 'UTF8')::int FROM dv_settings "
			 "WHERE key = 'schema_version'");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "PostgreSQL: %s", PQresultErrorMessage(res));
		PQclear(res);
		return -EIO;
	}
	if (PQntuples(res) == 1)
		*version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int meta_init(struct meta *m, uint32_t uid, uint32_t gid, char *err, size_t errlen)
{
	struct meta_conn *c = meta_acquire(m);
	unsigned char secret[CHECKSUM_SECRET_SIZE];
	char server[256];
	int version, ret;
	int nmig = (int)(sizeof(meta_migrations) / sizeof(meta_migrations[0]));

	ret = meta_ready_as(m, c, true);
	if (ret) {
		snprintf(err, errlen, "cannot connect to PostgreSQL");
		goto out;
	}
	meta_server_name(c->pg, server, sizeof(server));
	ret = meta_simple(c->pg, "BEGIN; SELECT pg_advisory_xact_lock(7340033)", err, errlen);
	if (ret)
		goto out;
	ret = meta_schema_version(c->pg, &version, err, errlen);
	if (ret)
		goto rollback;
	if (version > nmig) {
		snprintf(err, errlen,
			 "%s holds schema version %d, newer than this docvault (%d): upgrade "
			 "docvault",
			 server, version, nmig);
		ret = -EPROTO;
		goto rollback;
	}
	for (int v = version; v < nmig; v++) {
		ret = meta_simple(c->pg, meta_migrations[v], err, errlen);
		if (ret)
			goto rollback;
	}
	if (version < nmig) {
		char sql[256];

		snprintf(sql, sizeof(sql),
			 "INSERT INTO dv_settings VALUES ('schema_version', convert_to('%d', "
			 "'UTF8')) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
			 nmig);
		ret = meta_simple(c->pg, sql, err, errlen);
		if (ret)
			goto rollback;
	}
	/* the root directory and the vault secret, if missing */
	{
		struct meta_params p = {0};
		PGresult *res;
		struct timespec ts;
		int64_t now;

		clock_gettime(CLOCK_REALTIME, &ts);
		now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		ret = checksum_new_secret(secret);
		if (ret) {
			snprintf(err, errlen, "cannot generate the vault secret: %s",
				 strerror(-ret));
			goto rollback;
		}
		meta_p_i64(&p, uid);
		meta_p_i64(&p, gid);
		meta_p_i64(&p, now);
		meta_p_bytes(&p, secret, sizeof(secret));
		res = PQexecParams(c->pg,
				   "WITH r AS (INSERT INTO dv_inodes (id, mode, uid, gid, nlink, "
				   "atime, mtime, ctime, crtime) OVERRIDING SYSTEM VALUE VALUES "
				   "(1, 16877, $1, $2, 2, $3, $3, $3, $3) ON CONFLICT DO NOTHING "
				   "RETURNING 1) "
				   "INSERT INTO dv_settings SELECT 'hash_secret', $4 "
				   "ON CONFLICT DO NOTHING",
				   p.n, NULL, p.values, p.lengths, p.formats, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "PostgreSQL: %s", PQresultErrorMessage(res));
			PQclear(res);
			ret = -EIO;
			goto rollback;
		}
		PQclear(res);
		/* the root counts as a directory once */
		ret = meta_simple(c->pg,
				  "UPDATE dv_counters SET dirs = 1 WHERE shard = 0 AND NOT EXISTS "
				  "(SELECT 1 FROM dv_counters WHERE dirs <> 0)",
				  err, errlen);
		if (ret)
			goto rollback;
		/* new inodes get ids after the root */
		ret = meta_simple(c->pg,
				  "SELECT setval(pg_get_serial_sequence('dv_inodes', 'id'), "
				  "GREATEST((SELECT max(id) FROM dv_inodes), 1))",
				  err, errlen);
		if (ret)
			goto rollback;
	}
	ret = meta_simple(c->pg, "COMMIT", err, errlen);
	goto out;
rollback:
	PQclear(PQexec(c->pg, "ROLLBACK"));
out:
	meta_release(m, c);
	return ret;
}

int meta_check(struct meta *m, unsigned char *secret, char *err, size_t errlen)
{
	struct meta_conn *c = meta_acquire(m);
	int nmig = (int)(sizeof(meta_migrations) / sizeof(meta_migrations[0]));
	char server[256];
	int version, ret;
	PGresult *res;

	ret = meta_ready_as(m, c, true);
	if (ret) {
		snprintf(err, errlen, "cannot connect to PostgreSQL");
		goto out;
	}
	meta_server_name(c->pg, server, sizeof(server));
	ret = meta_schema_version(c->pg, &version, err, errlen);
	if (ret)
		goto out;
	if (version != nmig) {
		snprintf(err, errlen,
			 version == 0	  ? "%s holds no vault: run `docvault init -c CONFIG` first"
			 : version < nmig ? "%s holds schema version %d; this docvault needs %d: "
					    "run `docvault init -c CONFIG` to upgrade"
					  : "%s holds schema version %d, newer than this docvault "
					    "(%d): upgrade docvault",
			 server, version, nmig);
		ret = -EPROTO;
		goto out;
	}
	res = PQexecParams(c->pg, "SELECT value FROM dv_settings WHERE key = 'hash_secret'", 0,
			   NULL, NULL, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQgetlength(res, 0, 0) != CHECKSUM_SECRET_SIZE) {
		snprintf(err, errlen, "%s: the vault's hash secret is missing or damaged", server);
		ret = -EPROTO;
	} else {
		memcpy(secret, PQgetvalue(res, 0, 0), CHECKSUM_SECRET_SIZE);
	}
	PQclear(res);
out:
	meta_release(m, c);
	return ret;
}

int meta_session_start(struct meta *m, const char *host, int pid, uint64_t *sid)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	meta_p_bytes(&p, host, strlen(host));
	p.formats[0] = 0; /* text */
	meta_p_i64(&p, pid);
	meta_p_i64(&p, META_GC_LOCK_KEY);
	/* the gc lock, shared, until this insert commits: no mount starts while gc runs */
	ret = meta_plain(m,
			 "INSERT INTO dv_sessions (host, pid) SELECT $1, $2 "
			 "WHERE pg_try_advisory_xact_lock_shared($3) RETURNING id",
			 &p, &res);
	if (!ret) {
		if (PQntuples(res) == 1)
			*sid = (uint64_t)meta_get_i64(res, 0, 0);
		else
			ret = -EBUSY;
		PQclear(res);
	}
	return ret;
}

int meta_session_heartbeat(struct meta *m, uint64_t sid)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	meta_p_i64(&p, (int64_t)sid);
	ret = meta_exec(m, ST_HEARTBEAT, &p, &res);
	if (!ret) {
		if (strcmp(PQcmdTuples(res), "1") != 0)
			ret = -ENOENT; /* reaped: another mount thought us dead */
		PQclear(res);
	}
	return ret;
}

int meta_plain(struct meta *m, const char *sql, const struct meta_params *p, PGresult **res)
{
	int64_t start = meta_now_ms();
	int attempt = 0;

	for (;;) {
		struct meta_conn *c = meta_acquire(m);
		int ret = meta_ready(m, c);

		*res = NULL;
		if (!ret) {
			*res = PQexecParams(c->pg, sql, p->n, NULL, p->values, p->lengths,
					    p->formats, 0);
			if (PQresultStatus(*res) == PGRES_TUPLES_OK ||
			    PQresultStatus(*res) == PGRES_COMMAND_OK) {
				meta_release(m, c);
				return 0;
			}
			if (!meta_retryable(c->pg, *res)) {
				log_error("PostgreSQL: %s: %s", sql, PQresultErrorMessage(*res));
				PQclear(*res);
				*res = NULL;
				meta_release(m, c);
				return -EIO;
			}
			PQclear(*res);
			*res = NULL;
			PQfinish(c->pg);
			c->pg = NULL;
		}
		meta_release(m, c);
		if (!meta_wait_retry(m, start, attempt++)) {
			log_error("PostgreSQL (%s): gave up on %s after %d s", m->server, sql,
				  META_RETRY_MS / 1000);
			return -EIO;
		}
	}
}

int meta_session_end(struct meta *m, uint64_t sid)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	meta_p_i64(&p, (int64_t)sid);
	ret = meta_plain(m, "SELECT dv_session_end($1)", &p, &res);
	PQclear(res);
	return ret;
}

int meta_session_reap(struct meta *m, int timeout_s)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	meta_p_i64(&p, timeout_s);
	ret = meta_plain(m,
			 "SELECT dv_session_end(id) FROM dv_sessions "
			 "WHERE heartbeat < now() - make_interval(secs => $1)",
			 &p, &res);
	if (!ret) {
		ret = PQntuples(res);
		PQclear(res);
	}
	return ret;
}

int meta_lookup(struct meta *m, uint64_t parent, const char *name, size_t namelen,
		struct meta_attr *out)
{
	struct meta_params p = {0};

	if (namelen > META_NAME_MAX)
		return -ENAMETOOLONG;
	meta_p_i64(&p, (int64_t)parent);
	meta_p_bytes(&p, name, namelen);
	return meta_call(m, ST_LOOKUP, &p, out, NULL);
}

int meta_getattr(struct meta *m, uint64_t ino, struct meta_attr *out)
{
	struct meta_params p = {0};

	meta_p_i64(&p, (int64_t)ino);
	return meta_call(m, ST_GETATTR, &p, out, NULL);
}

int meta_setattr(struct meta *m, uint64_t ino, int valid, const struct meta_attr *sa, int64_t now,
		 struct meta_attr *out)
{
	struct meta_params p = {0};

	meta_p_i64(&p, (int64_t)ino);
	if (valid & META_SET_MODE)
		meta_p_i64(&p, sa->mode);
	else
		meta_p_null(&p);
	if (valid & META_SET_UID)
		meta_p_i64(&p, sa->uid);
	else
		meta_p_null(&p);
	if (valid & META_SET_GID)
		meta_p_i64(&p, sa->gid);
	else
		meta_p_null(&p);
	if (valid & META_SET_SIZE)
		meta_p_i64(&p, (int64_t)sa->size);
	else
		meta_p_null(&p);
	if (valid & META_SET_ATIME)
		meta_p_i64(&p, sa->atime);
	else
		meta_p_null(&p);
	if (valid & META_SET_MTIME)
		meta_p_i64(&p, sa->mtime);
	else
		meta_p_null(&p);
	meta_p_i64(&p, now);
	return meta_call(m, ST_SETATTR, &p, out, NULL);
}

int meta_create(struct meta *m, uint64_t parent, const char *name, size_t namelen, uint32_t mode,
		uint32_t uid, uint32_t gid, uint64_t rdev, const char *target, int64_t now,
		struct meta_attr *out)
{
	struct meta_params p = {0};

	if (namelen > META_NAME_MAX)
		return -ENAMETOOLONG;
	meta_p_i64(&p, (int64_t)parent);
	meta_p_bytes(&p, name, namelen);
	meta_p_i64(&p, mode);
	meta_p_i64(&p, uid);
	meta_p_i64(&p, gid);
	meta_p_i64(&p, (int64_t)rdev);
	if (target)
		meta_p_bytes(&p, target, strlen(target));
	else
		meta_p_null(&p);
	meta_p_i64(&p, now);
	return meta_call(m, ST_CREATE, &p, out, NULL);
}

int meta_link(struct meta *m, uint64_t ino, uint64_t parent, const char *name, size_t namelen,
	      int64_t now, struct meta_attr *out)
{
	struct meta_params p = {0};

	if (namelen > META_NAME_MAX)
		return -ENAMETOOLONG;
	meta_p_i64(&p, (int64_t)ino);
	meta_p_i64(&p, (int64_t)parent);
	meta_p_bytes(&p, name, namelen);
	meta_p_i64(&p, now);
	return meta_call(m, ST_LINK, &p, out, NULL);
}

static int meta_remove(struct meta *m, uint64_t parent, const char *name, size_t namelen, bool dir,
		       uint64_t sid, int64_t now, struct meta_attr *out)
{
	struct meta_params p = {0};

	if (namelen > META_NAME_MAX)
		return -ENAMETOOLONG;
	meta_p_i64(&p, (int64_t)parent);
	meta_p_bytes(&p, name, namelen);
	meta_p_bool(&p, dir);
	meta_p_i64(&p, (int64_t)sid);
	meta_p_i64(&p, now);
	return meta_call(m, ST_UNLINK, &p, out, NULL);
}

int meta_unlink(struct meta *m, uint64_t parent, const char *name, size_t namelen, uint64_t sid,
		int64_t now, struct meta_attr *out)
{
	return meta_remove(m, parent, name, namelen, false, sid, now, out);
}

int meta_rmdir(struct meta *m, uint64_t parent, const char *name, size_t namelen, uint64_t sid,
	       int64_t now, struct meta_attr *out)
{
	return meta_remove(m, parent, name, namelen, true, sid, now, out);
}

int meta_rename(struct meta *m, uint64_t parent, const char *name, size_t namelen,
		uint64_t newparent, const char *newname, size_t newnamelen, unsigned int flags,
		uint64_t sid, int64_t now, struct meta_attr *src, uint64_t *orphan)
{
	struct meta_params p = {0};

	*orphan = 0;
	if (namelen > META_NAME_MAX || newnamelen > META_NAME_MAX)
		return -ENAMETOOLONG;
	if ((flags & META_RENAME_NOREPLACE) && (flags & META_RENAME_EXCHANGE))
		return -EINVAL;
	meta_p_i64(&p, (int64_t)parent);
	meta_p_bytes(&p, name, namelen);
	meta_p_i64(&p, (int64_t)newparent);
	meta_p_bytes(&p, newname, newnamelen);
	meta_p_i64(&p, flags);
	meta_p_i64(&p, (int64_t)sid);
	meta_p_i64(&p, now);
	return meta_call(m, ST_RENAME, &p, src, orphan);
}

int meta_free(struct meta *m, uint64_t ino)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	meta_p_i64(&p, (int64_t)ino);
	ret = meta_exec(m, ST_FREE, &p, &res);
	if (!ret)
		PQclear(res);
	return ret;
}

int meta_readlink(struct meta *m, uint64_t ino, char *buf, size_t size)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	meta_p_i64(&p, (int64_t)ino);
	ret = meta_exec(m, ST_READLINK, &p, &res);
	if (ret)
		return ret;
	if (PQntuples(res) != 1) {
		ret = -ENOENT;
	} else if (((uint32_t)meta_get_i64(res, 0, 0) & S_IFMT) != S_IFLNK ||
		   PQgetisnull(res, 0, 1)) {
		ret = -EINVAL;
	} else {
		ssize_t n = meta_get_bytea(res, 0, 1, buf, size - 1);

		if (n < 0)
			ret = -ENAMETOOLONG;
		else
			buf[n] = '\0';
	}
	PQclear(res);
	return ret;
}

int meta_readdir(struct meta *m, uint64_t dir, uint64_t after, int limit, meta_dirent_cb cb,
		 void *arg)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret, n;

	meta_p_i64(&p, (int64_t)dir);
	meta_p_i64(&p, (int64_t)after);
	meta_p_i64(&p, limit);
	ret = meta_exec(m, ST_READDIR, &p, &res);
	if (ret)
		return ret;
	n = PQntuples(res);
	for (ret = 0; ret < n; ret++) {
		char name[META_NAME_MAX + 1];
		struct meta_attr a;
		ssize_t len = meta_get_bytea(res, ret, 1, name, META_NAME_MAX);

		if (len < 0)
			continue;
		name[len] = '\0';
		meta_fill_attr(res, ret, 2, &a);
		if (cb(arg, name, (size_t)len, (uint64_t)meta_get_i64(res, ret, 0), &a))
			break;
	}
	PQclear(res);
	return ret;
}

int meta_setxattr(struct meta *m, uint64_t ino, const char *name, const void *value, size_t size,
		  int flags, int64_t now)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	if (size > META_XATTR_SIZE_MAX)
		return -E2BIG;
	meta_p_i64(&p, (int64_t)ino);
	meta_p_bytes(&p, name, strlen(name));
	meta_p_bytes(&p, value, size);
	meta_p_i64(&p, (flags & XATTR_CREATE ? 1 : 0) | (flags & XATTR_REPLACE ? 2 : 0));
	meta_p_i64(&p, now);
	ret = meta_exec(m, ST_SETXATTR, &p, &res);
	if (ret)
		return ret;
	ret = -(int)meta_get_i64(res, 0, 0);
	PQclear(res);
	return ret;
}

ssize_t meta_getxattr(struct meta *m, uint64_t ino, const char *name, void *buf, size_t size)
{
	struct meta_params p = {0};
	PGresult *res;
	ssize_t ret;

	meta_p_i64(&p, (int64_t)ino);
	meta_p_bytes(&p, name, strlen(name));
	ret = meta_exec(m, ST_GETXATTR, &p, &res);
	if (ret)
		return ret;
	if (PQntuples(res) != 1) {
		ret = -ENODATA;
	} else {
		size_t len = ((size_t)PQgetlength(res, 0, 0) - 2) / 2;

		if (size == 0)
			ret = (ssize_t)len;
		else if (len > size)
			ret = -ERANGE;
		else
			ret = meta_get_bytea(res, 0, 0, buf, size);
	}
	PQclear(res);
	return ret;
}

ssize_t meta_listxattr(struct meta *m, uint64_t ino, char *buf, size_t size)
{
	struct meta_params p = {0};
	PGresult *res;
	size_t total = 0;
	int ret;

	meta_p_i64(&p, (int64_t)ino);
	ret = meta_exec(m, ST_LISTXATTR, &p, &res);
	if (ret)
		return ret;
	for (int i = 0; i < PQntuples(res); i++) {
		char name[256];
		ssize_t len = meta_get_bytea(res, i, 0, name, sizeof(name) - 1);

		if (len < 0)
			continue;
		if (size && total + (size_t)len + 1 > size) {
			PQclear(res);
			return -ERANGE;
		}
		if (size) {
			memcpy(buf + total, name, (size_t)len);
			buf[total + (size_t)len] = '\0';
		}
		total += (size_t)len + 1;
	}
	PQclear(res);
	return (ssize_t)total;
}

int meta_removexattr(struct meta *m, uint64_t ino, const char *name, int64_t now)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	meta_p_i64(&p, (int64_t)ino);
	meta_p_bytes(&p, name, strlen(name));
	meta_p_i64(&p, now);
	ret = meta_exec(m, ST_REMOVEXATTR, &p, &res);
	if (ret)
		return ret;
	ret = -(int)meta_get_i64(res, 0, 0);
	PQclear(res);
	return ret;
}

int meta_blob_find(struct meta *m, const unsigned char *keyed, unsigned char *sha256,
		   uint64_t *size)
{
	unsigned char *blocks;
	size_t blocks_len;
	int ret = meta_blob_find_blocks(m, keyed, sha256, size, &blocks, &blocks_len);

	free(blocks);
	return ret;
}

int meta_commit(struct meta *m, uint64_t ino, const struct checksum *sum, uint64_t size,
		int64_t mtime, int64_t now, struct meta_attr *out)
{
	return meta_commit_blocks(m, ino, sum, NULL, 0, size, mtime, now, out);
}

int meta_commit_blocks(struct meta *m, uint64_t ino, const struct checksum *sum,
		       const unsigned char *blocks, size_t blocks_len, uint64_t size, int64_t mtime,
		       int64_t now, struct meta_attr *out)
{
	struct meta_params p = {0};

	meta_p_i64(&p, (int64_t)ino);
	if (sum) {
		meta_p_bytes(&p, sum->keyed, 16);
		meta_p_i64(&p, (int64_t)size);
		meta_p_bytes(&p, sum->sha256, 32);
		meta_p_bytes(&p, sum->plain, 16);
	} else {
		meta_p_null(&p);
		meta_p_i64(&p, 0);
		meta_p_null(&p);
		meta_p_null(&p);
	}
	meta_p_i64(&p, mtime);
	meta_p_i64(&p, now);
	if (sum && blocks)
		meta_p_bytes(&p, blocks, blocks_len);
	else
		meta_p_null(&p);
	return meta_call(m, ST_COMMIT, &p, out, NULL);
}

int meta_stats(struct meta *m, struct meta_stats *out)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	ret = meta_plain(m,
			 "SELECT sum(files), sum(dirs), sum(others), sum(bytes), sum(blobs), "
			 "sum(blob_bytes), (SELECT count(*) FROM dv_sessions "
			 "WHERE heartbeat > now() - interval '60 seconds') FROM dv_counters",
			 &p, &res);
	if (ret)
		return ret;
	out->files = (uint64_t)meta_get_i64(res, 0, 0);
	out->dirs = (uint64_t)meta_get_i64(res, 0, 1);
	out->others = (uint64_t)meta_get_i64(res, 0, 2);
	out->bytes = (uint64_t)meta_get_i64(res, 0, 3);
	out->blobs = (uint64_t)meta_get_i64(res, 0, 4);
	out->blob_bytes = (uint64_t)meta_get_i64(res, 0, 5);
	out->sessions_alive = (uint64_t)meta_get_i64(res, 0, 6);
	PQclear(res);
	return 0;
}

int meta_parent(struct meta *m, uint64_t dir, uint64_t *parent)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	meta_p_i64(&p, (int64_t)dir);
	ret = meta_exec(m, ST_PARENT, &p, &res);
	if (ret)
		return ret;
	if (PQntuples(res) != 1)
		ret = -ENOENT;
	else
		*parent = (uint64_t)meta_get_i64(res, 0, 0);
	PQclear(res);
	return ret;
}

int meta_session_reap_host(struct meta *m, const char *host, uint64_t self, bool (*alive)(int pid))
{
	struct meta_params p = {0};
	PGresult *res;
	int ret, n = 0;

	meta_p_bytes(&p, host, strlen(host));
	p.formats[0] = 0; /* text */
	meta_p_i64(&p, (int64_t)self);
	ret =
	    meta_plain(m, "SELECT id, pid FROM dv_sessions WHERE host = $1 AND id <> $2", &p, &res);
	if (ret)
		return ret;
	for (int i = 0; i < PQntuples(res); i++) {
		struct meta_params q = {0};
		PGresult *r2;

		if (alive((int)meta_get_i64(res, i, 1)))
			continue;
		meta_p_i64(&q, meta_get_i64(res, i, 0));
		if (meta_plain(m, "SELECT dv_session_end($1)", &q, &r2) == 0) {
			PQclear(r2);
			n++;
		}
	}
	PQclear(res);
	return n;
}

int meta_free_batch(struct meta *m, const uint64_t *inos, size_t n)
{
	struct meta_params p = {0};
	PGresult *res;
	char *arr, *q;
	int ret;

	if (n == 0)
		return 0;
	arr = malloc(n * 21 + 3);
	if (!arr)
		return -ENOMEM;
	q = arr;
	*q++ = '{';
	for (size_t i = 0; i < n; i++)
		q += sprintf(q, "%s%llu", i ? "," : "", (unsigned long long)inos[i]);
	*q++ = '}';
	*q = '\0';
	p.values[0] = arr;
	p.formats[0] = 0;
	p.n = 1;
	ret = meta_plain(m, "SELECT count(dv_free(x)) FROM unnest($1::bigint[]) AS x", &p, &res);
	if (!ret)
		PQclear(res);
	free(arr);
	return ret;
}

int meta_sync(struct meta *m)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret = meta_exec(m, ST_SYNC, &p, &res);

	if (!ret)
		PQclear(res);
	return ret;
}

int meta_blob_find_blocks(struct meta *m, const unsigned char *keyed, unsigned char *sha256,
			  uint64_t *size, unsigned char **blocks, size_t *blocks_len)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	*blocks = NULL;
	*blocks_len = 0;
	meta_p_bytes(&p, keyed, 16);
	ret = meta_exec(m, ST_BLOB_FIND, &p, &res);
	if (ret)
		return ret;
	if (PQntuples(res) != 1 || meta_get_bytea(res, 0, 0, sha256, 32) != 32) {
		PQclear(res);
		return -ENOENT;
	}
	*size = (uint64_t)meta_get_i64(res, 0, 1);
	if (!PQgetisnull(res, 0, 2)) {
		size_t cap = (size_t)PQgetlength(res, 0, 2) / 2;
		ssize_t n;

		*blocks = malloc(cap ? cap : 1);
		if (!*blocks) {
			PQclear(res);
			return -ENOMEM;
		}
		n = meta_get_bytea(res, 0, 2, *blocks, cap);
		if (n < 0) {
			free(*blocks);
			*blocks = NULL;
		} else {
			*blocks_len = (size_t)n;
		}
	}
	PQclear(res);
	return 0;
}
