/*
 * meta_fsck.c - the checks of meta_fsck.h: one read-only statement each on
 * a pooled connection (meta_plain), reporting at most META_FSCK_MAX_REPORT
 * rows, and the counter repair as one server-side block.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docvault/checksum.h"
#include "docvault/meta_fsck.h"
#include "meta_pg.h"

#define FSCK_LIMIT "101" /* META_FSCK_MAX_REPORT + 1: one more says there were more */

/* The actual totals, as dv_count keeps them: entries with a name, blobs with a row. */
#define FSCK_ACTUAL                                                                                \
	"SELECT count(*) FILTER (WHERE mode & 61440 = 32768) AS files,"                            \
	" count(*) FILTER (WHERE mode & 61440 = 16384) AS dirs,"                                   \
	" count(*) FILTER (WHERE mode & 61440 NOT IN (32768, 16384)) AS others,"                   \
	" COALESCE(sum(size) FILTER (WHERE mode & 61440 = 32768), 0) AS bytes,"                    \
	" (SELECT count(*) FROM dv_blobs) AS blobs,"                                               \
	" (SELECT COALESCE(sum(size), 0) FROM dv_blobs) AS blob_bytes"                             \
	" FROM dv_inodes WHERE nlink > 0"

/* Runs sql (no parameters) and reports each row as line() words it. */
static int fsck_rows(struct meta *m, const char *sql, const char *what, meta_fsck_report report,
		     void *arg, void (*line)(const PGresult *res, int row, char *out, size_t len))
{
	struct meta_params p = {0};
	PGresult *res;
	char buf[512];
	int n, ret;

	ret = meta_plain(m, sql, &p, &res);
	if (ret)
		return ret;
	n = PQntuples(res);
	for (int i = 0; i < n && i < META_FSCK_MAX_REPORT; i++) {
		line(res, i, buf, sizeof(buf));
		report(arg, buf);
	}
	if (n > META_FSCK_MAX_REPORT) {
		snprintf(buf, sizeof(buf), "%s: more than %d problems; the first %d are above",
			 what, META_FSCK_MAX_REPORT, META_FSCK_MAX_REPORT);
		report(arg, buf);
	}
	PQclear(res);
	return n;
}

static void fsck_refcount_line(const PGresult *res, int row, char *out, size_t len)
{
	snprintf(out, len, "blob %s: reference count %s, but %s inode(s) name it (e.g. inode %s)",
		 PQgetvalue(res, row, 0), PQgetvalue(res, row, 1), PQgetvalue(res, row, 2),
		 PQgetisnull(res, row, 3) ? "-" : PQgetvalue(res, row, 3));
}

int meta_fsck_refcounts(struct meta *m, meta_fsck_report report, void *arg)
{
	return fsck_rows(m,
			 "SELECT encode(b.hash, 'hex'), b.refcount, count(i.id), min(i.id) "
			 "FROM dv_blobs b LEFT JOIN dv_inodes i ON i.content = b.hash "
			 "GROUP BY b.hash, b.refcount HAVING b.refcount <> count(i.id) "
			 "ORDER BY b.hash LIMIT " FSCK_LIMIT,
			 "blob reference counts", report, arg, fsck_refcount_line);
}

static void fsck_link_line(const PGresult *res, int row, char *out, size_t len)
{
	snprintf(out, len, "inode %s (%s): %s", PQgetvalue(res, row, 0), PQgetvalue(res, row, 1),
		 PQgetvalue(res, row, 2));
}

int meta_fsck_links(struct meta *m, meta_fsck_report report, void *arg)
{
	return fsck_rows(
	    m,
	    /* a file's link count is its number of names */
	    "(SELECT i.id, 'file', format('link count %s, but %s name(s)', i.nlink, count(d.ino)) "
	    " FROM dv_inodes i LEFT JOIN dv_dentries d ON d.ino = i.id "
	    " WHERE i.mode & 61440 <> 16384 GROUP BY i.id, i.nlink "
	    " HAVING i.nlink <> count(d.ino) ORDER BY i.id LIMIT " FSCK_LIMIT ") "
	    /* a directory's is 2 + its subdirectories */
	    "UNION ALL (SELECT i.id, 'directory', "
	    " format('link count %s, but 2 + %s subdirectories', i.nlink, count(c.id)) "
	    " FROM dv_inodes i LEFT JOIN dv_dentries d ON d.parent = i.id "
	    " LEFT JOIN dv_inodes c ON c.id = d.ino AND c.mode & 61440 = 16384 "
	    " WHERE i.mode & 61440 = 16384 AND i.nlink > 0 GROUP BY i.id, i.nlink "
	    " HAVING i.nlink <> 2 + count(c.id) ORDER BY i.id LIMIT " FSCK_LIMIT ") "
	    /* a directory has one name, the root none */
	    "UNION ALL (SELECT i.id, 'directory', format('%s name(s)', count(d.ino)) "
	    " FROM dv_inodes i LEFT JOIN dv_dentries d ON d.ino = i.id "
	    " WHERE i.mode & 61440 = 16384 AND i.nlink > 0 GROUP BY i.id "
	    " HAVING count(d.ino) <> CASE WHEN i.id = 1 THEN 0 ELSE 1 END "
	    " ORDER BY i.id LIMIT " FSCK_LIMIT ") "
	    /* a name's parent is a directory that exists */
	    "UNION ALL (SELECT d.parent, 'parent', "
	    " format('holds the name %s but is not a directory', "
	    "  quote_literal(encode(d.name, 'escape'))) "
	    " FROM dv_dentries d JOIN dv_inodes p ON p.id = d.parent "
	    " WHERE p.mode & 61440 <> 16384 OR p.nlink = 0 ORDER BY d.parent LIMIT " FSCK_LIMIT
	    ") LIMIT " FSCK_LIMIT,
	    "link counts", report, arg, fsck_link_line);
}

static void fsck_counter_line(const PGresult *res, int row, char *out, size_t len)
{
	snprintf(out, len, "counter %s: %s recorded, %s in the tables", PQgetvalue(res, row, 0),
		 PQgetvalue(res, row, 1), PQgetvalue(res, row, 2));
}

int meta_fsck_counters(struct meta *m, meta_fsck_report report, void *arg)
{
	return fsck_rows(m,
			 "WITH c AS (SELECT sum(files) AS files, sum(dirs) AS dirs, "
			 "  sum(others) AS others, sum(bytes) AS bytes, sum(blobs) AS blobs, "
			 "  sum(blob_bytes) AS blob_bytes FROM dv_counters), "
			 " a AS (" FSCK_ACTUAL ") "
			 "SELECT k, r, t FROM c, a, LATERAL (VALUES "
			 " ('documents', c.files, a.files), ('folders', c.dirs, a.dirs), "
			 " ('other entries', c.others, a.others), ('bytes', c.bytes, a.bytes), "
			 " ('contents stored', c.blobs, a.blobs), "
			 " ('bytes stored', c.blob_bytes, a.blob_bytes)) v(k, r, t) "
			 "WHERE r IS DISTINCT FROM t",
			 "counters", report, arg, fsck_counter_line);
}

int meta_fsck_fix_counters(struct meta *m)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	/*
	 * Lock first, count after (a statement of its own, so a fresh snapshot):
	 * a change that committed while we waited is in the count, one still
	 * running adds its delta after ours.
	 */
	ret = meta_plain(m,
			 "DO $$ BEGIN "
			 "PERFORM 1 FROM dv_counters ORDER BY shard FOR UPDATE; "
			 "UPDATE dv_counters SET "
			 " files = CASE WHEN shard = 0 THEN a.files ELSE 0 END, "
			 " dirs = CASE WHEN shard = 0 THEN a.dirs ELSE 0 END, "
			 " others = CASE WHEN shard = 0 THEN a.others ELSE 0 END, "
			 " bytes = CASE WHEN shard = 0 THEN a.bytes ELSE 0 END, "
			 " blobs = CASE WHEN shard = 0 THEN a.blobs ELSE 0 END, "
			 " blob_bytes = CASE WHEN shard = 0 THEN a.blob_bytes ELSE 0 END "
			 "FROM (" FSCK_ACTUAL ") a; END $$",
			 &p, &res);
	if (!ret)
		PQclear(res);
	return ret;
}

int meta_fsck_blobs(struct meta *m, const unsigned char *after, int max, meta_fsck_blob_cb cb,
		    void *arg)
{
	struct meta_params p = {0};
	unsigned char keyed[16];
	PGresult *res;
	int n, ret;

	if (after)
		meta_p_bytes(&p, after, 16);
	else
		meta_p_null(&p);
	meta_p_i64(&p, max);
	ret = meta_plain(
	    m,
	    "SELECT b.hash, b.size, (SELECT min(id) FROM dv_inodes WHERE content = b.hash) "
	    "FROM dv_blobs b WHERE $1::bytea IS NULL OR b.hash > $1::bytea "
	    "ORDER BY b.hash LIMIT $2",
	    &p, &res);
	if (ret)
		return ret;
	n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		if (meta_get_bytea(res, i, 0, keyed, sizeof(keyed)) != 16)
			continue;
		cb(arg, keyed, (uint64_t)meta_get_i64(res, i, 1),
		   (uint64_t)meta_get_i64(res, i, 2));
	}
	PQclear(res);
	return n;
}
