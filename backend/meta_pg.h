/*
 * meta_pg.h - private helpers of the PostgreSQL metadata engine, shared by
 * the files that implement include/docvault/meta*.h on libpq (meta_pg.c,
 * meta_docs.c, meta_gc.c, meta_fsck.c). Not a public header: nothing outside backend/meta_*.c may
 * include it, so libpq stays inside the meta engine.
 *
 * meta_plain() runs one parameterised statement on a pooled connection
 * (thread-safe; logs a failure once with the statement and the server's
 * message and returns -EIO). Parameters are bound, never spliced into SQL.
 */
#ifndef DOCVAULT_META_PG_H
#define DOCVAULT_META_PG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#define META_NPARAMS 10

struct meta;

/* Parameters of one statement: text for numbers, binary for bytes. */
struct meta_params {
	const char *values[META_NPARAMS];
	int lengths[META_NPARAMS];
	int formats[META_NPARAMS];
	char num[META_NPARAMS][24];
	int n;
};

void meta_p_i64(struct meta_params *p, int64_t v);
/* Binary bytes (bytea); b may be NULL when len is 0. */
void meta_p_bytes(struct meta_params *p, const void *b, size_t len);
void meta_p_null(struct meta_params *p);
void meta_p_bool(struct meta_params *p, bool v);

/* Runs sql with p; on success *res is set (caller PQclear()s). */
int meta_plain(struct meta *m, const char *sql, const struct meta_params *p, PGresult **res);

/* A short, secret-free description of the server for messages. */
void meta_server_name(PGconn *pg, char *out, size_t len);

/*
 * A connection of the caller's own, outside the pool (a LISTEN, a lock
 * held for a session). server receives the server's description; on
 * failure returns NULL with "cannot connect to SERVER WHY: reason" in err.
 */
PGconn *meta_connect_own(const char *conninfo, const char *why, char *server, size_t slen,
			 char *err, size_t errlen);

/* Column value as an integer (0 for NULL). */
int64_t meta_get_i64(const PGresult *res, int row, int col);
/* A bytea column (hex text form) into out; returns its length or -1. */
ssize_t meta_get_bytea(const PGresult *res, int row, int col, void *out, size_t cap);

#endif
