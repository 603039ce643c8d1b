/*
 * meta_gc.c - garbage collection's side of PostgreSQL (meta_gc.h has the
 * model): a dedicated connection that holds the vault's gc lock for as long
 * as it is open, and the statements gc runs on it. Each statement is its
 * own transaction (autocommit), so a batch of deleted rows is committed
 * before its objects are deleted.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "docvault/checksum.h"
#include "docvault/log.h"
#include "docvault/meta_gc.h"
#include "meta_pg.h"

struct meta_gc {
	PGconn *pg;
	char server[256];
};

/*
 * Runs sql with n text parameters; on success *res holds the result (the
 * caller clears it). A failure is put in err (or logged when err is NULL)
 * with the server's message, and gives -EIO.
 */
static int gc_exec(struct meta_gc *g, const char *what, const char *sql, int n,
		   const char *const *values, PGresult **res, char *err, size_t errlen)
{
	ExecStatusType st;
	const char *msg;

	*res = PQexecParams(g->pg, sql, n, NULL, values, NULL, NULL, 0);
	st = PQresultStatus(*res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return 0;
	msg = *res ? PQresultErrorMessage(*res) : PQerrorMessage(g->pg);
	if (err)
		snprintf(err, errlen, "%s: %s: %.*s", g->server, what, (int)strcspn(msg, "\n"),
			 msg);
	else
		log_error("%s: %s: %.*s", g->server, what, (int)strcspn(msg, "\n"), msg);
	PQclear(*res);
	*res = NULL;
	return -EIO;
}

int meta_gc_open(const char *conninfo, int session_timeout_s, struct meta_gc **out, char *err,
		 size_t errlen)
{
	char key[24], timeout[24];
	const char *v[1];
	struct meta_gc *g;
	PGresult *res;
	size_t off;
	int ret, n;

	*out = NULL;
	g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	g->pg = meta_connect_own(conninfo, "", g->server, sizeof(g->server), err, errlen);
	if (!g->pg) {
		meta_gc_close(g);
		return -EIO;
	}
	snprintf(key, sizeof(key), "%lld", META_GC_LOCK_KEY);
	v[0] = key;
	ret = gc_exec(g, "taking the gc lock", "SELECT pg_try_advisory_lock($1::bigint)", 1, v,
		      &res, err, errlen);
	if (ret)
		goto fail;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		PQclear(res);
		snprintf(err, errlen, "another docvault gc is running on %s", g->server);
		ret = -EBUSY;
		goto fail;
	}
	PQclear(res);
	/* a mount that died: its session ends here (its orphans are freed) */
	snprintf(timeout, sizeof(timeout), "%d", session_timeout_s);
	v[0] = timeout;
	ret = gc_exec(g, "ending the sessions of dead mounts",
		      "SELECT dv_session_end(id) FROM dv_sessions "
		      "WHERE heartbeat < now() - make_interval(secs => $1::int)",
		      1, v, &res, err, errlen);
	if (ret)
		goto fail;
	PQclear(res);
	ret = gc_exec(g, "listing the mounts",
		      "SELECT host, pid FROM dv_sessions ORDER BY id LIMIT 5", 0, NULL, &res, err,
		      errlen);
	if (ret)
		goto fail;
	n = PQntuples(res);
	if (n > 0) {
		off = (size_t)snprintf(err, errlen, "the vault in %s is mounted by", g->server);
		for (int i = 0; i < n && off < errlen; i++)
			off +=
			    (size_t)snprintf(err + off, errlen - off, "%s %s pid %s", i ? "," : "",
					     PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
		if (off < errlen)
			snprintf(err + off, errlen - off,
				 "%s; gc runs only while no mount is alive: unmount first",
				 n == 5 ? " and more" : "");
		PQclear(res);
		ret = -EBUSY;
		goto fail;
	}
	PQclear(res);
	*out = g;
	return 0;
fail:
	meta_gc_close(g);
	return ret;
}

void meta_gc_close(struct meta_gc *g)
{
	if (!g)
		return;
	if (g->pg)
		PQfinish(g->pg); /* ends the session: the lock goes with it */
	free(g);
}

int meta_gc_count(struct meta_gc *g, uint64_t *n, uint64_t *bytes)
{
	PGresult *res;
	int ret;

	ret = gc_exec(g, "counting unreferenced blobs",
		      "SELECT count(*), COALESCE(sum(size), 0) FROM dv_blobs b WHERE refcount = 0 "
		      "AND NOT EXISTS (SELECT 1 FROM dv_inodes WHERE content = b.hash)",
		      0, NULL, &res, NULL, 0);
	if (ret)
		return ret;
	*n = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	*bytes = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return 0;
}

int meta_gc_take(struct meta_gc *g, size_t max, unsigned char (*keyed)[16], uint64_t *sizes,
		 size_t *n)
{
	char lim[24];
	const char *v[1] = {lim};
	PGresult *res;
	int ret, rows;

	*n = 0;
	snprintf(lim, sizeof(lim), "%zu", max);
	ret = gc_exec(g, "deleting unreferenced blobs",
		      "WITH d AS (DELETE FROM dv_blobs WHERE hash IN ("
		      "  SELECT hash FROM dv_blobs b WHERE refcount = 0"
		      "  AND NOT EXISTS (SELECT 1 FROM dv_inodes WHERE content = b.hash)"
		      "  LIMIT $1::int) RETURNING hash, size),"
		      " c AS (UPDATE dv_counters SET blobs = blobs - (SELECT count(*) FROM d),"
		      "  blob_bytes = blob_bytes - (SELECT COALESCE(sum(size), 0) FROM d)"
		      "  WHERE shard = 0)"
		      " SELECT encode(hash, 'hex'), size FROM d",
		      1, v, &res, NULL, 0);
	if (ret)
		return ret;
	rows = PQntuples(res);
	for (int i = 0; i < rows && (size_t)i < max; i++) {
		/* (a hash that is not 16 bytes names no object docvault made) */
		if (checksum_parse_hex16(PQgetvalue(res, i, 0), keyed[*n]) != 0) {
			log_error("%s: a blob row with a malformed hash (%s) was deleted",
				  g->server, PQgetvalue(res, i, 0));
			continue;
		}
		sizes[*n] = strtoull(PQgetvalue(res, i, 1), NULL, 10);
		(*n)++;
	}
	PQclear(res);
	return rows;
}

int meta_gc_unknown(struct meta_gc *g, const unsigned char (*keyed)[16], size_t n, bool *unknown)
{
	const char *v[1];
	PGresult *res;
	char *arr, *p;
	int ret;

	for (size_t i = 0; i < n; i++)
		unknown[i] = false;
	if (n == 0)
		return 0;
	/* a text array literal of hex digits: {h1,h2,...} */
	arr = malloc(n * (CHECKSUM_HEX_SIZE + 1) + 3);
	if (!arr)
		return -ENOMEM;
	p = arr;
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		checksum_hex16(keyed[i], p);
		p += CHECKSUM_HEX_SIZE - 1;
	}
	*p++ = '}';
	*p = '\0';
	v[0] = arr;
	ret = gc_exec(g, "looking up stored objects",
		      "SELECT u.i FROM unnest($1::text[]) WITH ORDINALITY AS u(h, i) "
		      "WHERE NOT EXISTS (SELECT 1 FROM dv_blobs WHERE hash = decode(u.h, 'hex'))",
		      1, v, &res, NULL, 0);
	free(arr);
	if (ret)
		return ret;
	for (int r = 0; r < PQntuples(res); r++) {
		uint64_t i = strtoull(PQgetvalue(res, r, 0), NULL, 10);

		if (i >= 1 && i <= n)
			unknown[i - 1] = true;
	}
	PQclear(res);
	return 0;
}
