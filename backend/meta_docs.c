/*
 * meta_docs.c - documents and the processing queue on PostgreSQL (see
 * meta_docs.h for the model; the functions it calls are in migration 2 of
 * meta_schema.sql.h, the reasoning in docs/design-schema.md).
 *
 * Every call is one statement on a pooled connection through meta_plain()
 * (which logs a database failure once and returns -EIO); multi-step work
 * is a server-side function that answers an errno-like code. Strings are
 * made valid UTF-8 here, and travel as bound text parameters; arrays as
 * array literals built here with every element quoted.
 *
 * The LISTEN connection is the exception: a dedicated PGconn opened from
 * the conninfo, owned by one thread (struct meta_listen is not shared).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libpq-fe.h>

#include "docvault/log.h"
#include "docvault/meta_docs.h"
#include "meta_pg.h"

#define DOCS_ESTALE_SQL 116 /* the value the SQL functions use for ESTALE */

struct meta_listen {
	PGconn *pg;
	char server[256];
};

const char *meta_doc_status_name(enum meta_doc_status s)
{
	switch (s) {
	case META_DOC_READY:
		return "ready";
	case META_DOC_PROCESSING:
		return "processing";
	case META_DOC_COMPLETED:
		return "completed";
	case META_DOC_FAILED:
		return "failed";
	case META_DOC_UPLOADING:
		return "uploading";
	case META_DOC_NONE:
		break;
	}
	return "";
}

/* A text parameter: s must stay valid (and NUL-terminated) until the call. */
static void docs_p_text(struct meta_params *p, const char *s)
{
	if (!s) {
		meta_p_null(p);
		return;
	}
	p->values[p->n] = s;
	p->lengths[p->n] = 0;
	p->formats[p->n++] = 0;
}

/* Length of the valid UTF-8 sequence at s[0..len), or 0 if invalid. */
static size_t docs_utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* past U+10FFFF */
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/*
 * A malloc'ed copy of s[0..len) as valid UTF-8 of at most max bytes (cut at
 * a character boundary): invalid bytes become U+FFFD, NUL bytes spaces.
 * NULL only when out of memory.
 */
static char *docs_utf8(const char *s, size_t len, size_t max)
{
	const unsigned char *in = (const unsigned char *)s;
	size_t cap = len < max / 3 ? 3 * len : max, o = 0; /* U+FFFD is 3 bytes */
	char *out = malloc(cap + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t n = docs_utf8_seq(in + i, len - i);

		if (n == 0) {
			if (o + 3 > cap)
				break;
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		if (o + n > cap)
			break;
		if (n == 1 && in[i] == 0)
			out[o] = ' ';
		else
			memcpy(out + o, in + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

/* Same for a NUL-terminated string or NULL (which stays NULL, *ok true). */
static char *docs_utf8_str(const char *s, size_t max, bool *ok)
{
	char *r;

	if (!s)
		return NULL;
	r = docs_utf8(s, strlen(s), max);
	if (!r)
		*ok = false;
	return r;
}

/*
 * A PostgreSQL array literal of the n strings: {"a","b\"c"}. The strings
 * must be valid UTF-8 already. Returns NULL when out of memory.
 */
static char *docs_array(const char *const *items, size_t n)
{
	size_t cap = 3, o = 0;
	char *out;

	for (size_t i = 0; i < n; i++)
		cap += 2 * strlen(items[i]) + 3;
	out = malloc(cap);
	if (!out)
		return NULL;
	out[o++] = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			out[o++] = ',';
		out[o++] = '"';
		for (const char *c = items[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				out[o++] = '\\';
			out[o++] = *c;
		}
		out[o++] = '"';
	}
	out[o++] = '}';
	out[o] = '\0';
	return out;
}

/* Copies a text column into a fixed buffer (truncating). */
static void docs_copy(const PGresult *res, int row, int col, char *out, size_t cap)
{
	snprintf(out, cap, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

static char *docs_dup_col(const PGresult *res, int row, int col)
{
	return strdup(PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

void meta_doc_free(struct meta_doc *d)
{
	if (!d)
		return;
	free(d->summary);
	free(d->autotags);
	free(d->tags);
	free(d->error);
	d->summary = d->autotags = d->tags = d->error = NULL;
}

int meta_docs_get(struct meta *m, uint64_t ino, struct meta_doc *out)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	memset(out, 0, sizeof(*out));
	meta_p_i64(&p, (int64_t)ino);
	ret = meta_plain(
	    m,
	    "SELECT i.id, i.version, i.processed, i.status, i.mode, b.checksum, i.size, "
	    "COALESCE(i.committed, i.crtime), i.mime, i.summary_source, i.summary, "
	    "array_to_string(i.autotags, ','), array_to_string(i.tags, ','), i.error, "
	    "i.content IS NULL "
	    "FROM dv_inodes i LEFT JOIN dv_blobs b ON b.hash = i.content WHERE i.id = $1",
	    &p, &res);
	if (ret)
		return ret;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return -ENOENT;
	}
	out->ino = (uint64_t)meta_get_i64(res, 0, 0);
	out->version = (uint64_t)meta_get_i64(res, 0, 1);
	out->processed = (uint64_t)meta_get_i64(res, 0, 2);
	out->status = (enum meta_doc_status)meta_get_i64(res, 0, 3);
	out->is_file = ((uint32_t)meta_get_i64(res, 0, 4) & S_IFMT) == S_IFREG;
	if (!PQgetisnull(res, 0, 5))
		out->has_checksum = meta_get_bytea(res, 0, 5, out->checksum, 16) == 16;
	out->size = (uint64_t)meta_get_i64(res, 0, 6);
	out->uploaded = meta_get_i64(res, 0, 7);
	docs_copy(res, 0, 8, out->mime, sizeof(out->mime));
	docs_copy(res, 0, 9, out->summary_source, sizeof(out->summary_source));
	out->summary = docs_dup_col(res, 0, 10);
	out->autotags = docs_dup_col(res, 0, 11);
	out->tags = docs_dup_col(res, 0, 12);
	out->error = docs_dup_col(res, 0, 13);
	/* a file created and never committed is an empty, complete document */
	if (out->status == META_DOC_NONE && out->is_file && !strcmp(PQgetvalue(res, 0, 14), "t")) {
		out->status = META_DOC_COMPLETED;
		if (out->size == 0)
			snprintf(out->mime, sizeof(out->mime), "inode/x-empty");
		snprintf(out->summary_source, sizeof(out->summary_source), "none");
	}
	PQclear(res);
	if (!out->summary || !out->autotags || !out->tags || !out->error) {
		meta_doc_free(out);
		return -ENOMEM;
	}
	return 0;
}

/* Appends a copy of t to the list (grown as needed). */
static int docs_list_add(char ***list, size_t *n, size_t *cap, const char *t, size_t len)
{
	char *copy;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		char **nl = realloc(*list, ncap * sizeof(*nl));

		if (!nl)
			return -ENOMEM;
		*list = nl;
		*cap = ncap;
	}
	copy = strndup(t, len);
	if (!copy)
		return -ENOMEM;
	(*list)[(*n)++] = copy;
	return 0;
}

static void docs_list_free(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* A user tag: 1..META_DOCS_TAG_MAX bytes of UTF-8 without control characters. */
static bool docs_tag_valid(const char *t, size_t len)
{
	if (len == 0 || len > META_DOCS_TAG_MAX)
		return false;
	for (size_t i = 0; i < len;) {
		size_t n = docs_utf8_seq((const unsigned char *)t + i, len - i);

		if (n == 0 || (n == 1 && ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)))
			return false;
		i += n;
	}
	return true;
}

int meta_docs_tags_write(struct meta *m, uint64_t ino, const char *value, size_t len, int64_t now)
{
	char **add = NULL, **del = NULL, *add_arr = NULL, *del_arr = NULL;
	size_t nadd = 0, ndel = 0, capadd = 0, capdel = 0;
	bool edit = false, first = true;
	struct meta_params p = {0};
	PGresult *res;
	int ret = 0;

	for (size_t i = 0; i <= len && !ret;) {
		size_t end = i, s, e;
		int sign = 0;

		while (end < len && value[end] != ',')
			end++;
		s = i;
		e = end;
		i = end + 1;
		while (s < e && (value[s] == ' ' || value[s] == '\t' || value[s] == '\n'))
			s++;
		while (e > s &&
		       (value[e - 1] == ' ' || value[e - 1] == '\t' || value[e - 1] == '\n'))
			e--;
		if (s == e)
			continue;
		if (first)
			edit = value[s] == '+' || value[s] == '-';
		first = false;
		/* a sign is never part of a tag: "+t" adds t, "-t" removes it (replacing: omits it)
		 */
		if (value[s] == '+' || value[s] == '-') {
			sign = value[s] == '-' ? -1 : 1;
			s++;
			while (s < e && (value[s] == ' ' || value[s] == '\t'))
				s++;
		}
		if (!docs_tag_valid(value + s, e - s)) {
			ret = -EINVAL;
			break;
		}
		if (sign < 0)
			ret = docs_list_add(&del, &ndel, &capdel, value + s, e - s);
		else
			ret = docs_list_add(&add, &nadd, &capadd, value + s, e - s);
	}
	if (!ret && nadd > META_DOCS_TAGS_MAX)
		ret = -E2BIG;
	if (!ret) {
		add_arr = docs_array((const char *const *)add, nadd);
		del_arr = docs_array((const char *const *)del, ndel);
		if (!add_arr || !del_arr)
			ret = -ENOMEM;
	}
	if (!ret) {
		meta_p_i64(&p, (int64_t)ino);
		meta_p_bool(&p, !edit);
		docs_p_text(&p, add_arr);
		docs_p_text(&p, del_arr);
		meta_p_i64(&p, META_DOCS_TAGS_MAX);
		meta_p_i64(&p, now);
		ret = meta_plain(m, "SELECT dv_tags_edit($1, $2, $3::text[], $4::text[], $5, $6)",
				 &p, &res);
		if (!ret) {
			ret = -(int)meta_get_i64(res, 0, 0);
			PQclear(res);
		}
	}
	free(add_arr);
	free(del_arr);
	docs_list_free(add, nadd);
	docs_list_free(del, ndel);
	return ret;
}

/* Runs a statement that answers one integer code: returns -code. */
static int docs_code(struct meta *m, const char *sql, const struct meta_params *p)
{
	PGresult *res;
	int ret = meta_plain(m, sql, p, &res);

	if (ret)
		return ret;
	ret = PQntuples(res) == 1 ? -(int)meta_get_i64(res, 0, 0) : -EIO;
	PQclear(res);
	return ret;
}

int meta_docs_requeue(struct meta *m, uint64_t ino)
{
	struct meta_params p = {0};

	meta_p_i64(&p, (int64_t)ino);
	return docs_code(m, "SELECT dv_job_requeue($1)", &p);
}

int meta_docs_claim(struct meta *m, const char *worker, struct meta_job *job, double *wait_s)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	memset(job, 0, sizeof(*job));
	if (wait_s)
		*wait_s = -1;
	docs_p_text(&p, worker);
	ret = meta_plain(m,
			 "SELECT j_ino, j_version, j_content, j_size, j_attempts, j_wait "
			 "FROM dv_job_claim($1)",
			 &p, &res);
	if (ret)
		return ret;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		if (wait_s && PQntuples(res) == 1 && !PQgetisnull(res, 0, 5)) {
			double w = strtod(PQgetvalue(res, 0, 5), NULL);

			*wait_s = w > 0 ? w : 0;
		}
		PQclear(res);
		return -EAGAIN;
	}
	job->ino = (uint64_t)meta_get_i64(res, 0, 0);
	job->version = (uint64_t)meta_get_i64(res, 0, 1);
	if (PQgetisnull(res, 0, 2) || meta_get_bytea(res, 0, 2, job->content, 16) != 16) {
		log_error("PostgreSQL: job for inode %" PRIu64 " claimed without a content hash",
			  job->ino);
		ret = -EIO;
	}
	job->size = (uint64_t)meta_get_i64(res, 0, 3);
	job->attempts = (int)meta_get_i64(res, 0, 4);
	PQclear(res);
	return ret;
}

int meta_docs_complete(struct meta *m, const char *worker, const struct meta_job *job,
		       const struct meta_docs_result *r)
{
	const char *const none[1] = {NULL};
	char *mime, *text = NULL, *summary, *source, *tags_arr = NULL;
	char **tags = NULL;
	size_t ntags = 0;
	struct meta_params p = {0};
	bool ok = true;
	int ret;

	mime = docs_utf8_str(r->mime, 127, &ok);
	summary = docs_utf8_str(r->summary ? r->summary : "", 1 << 20, &ok);
	source = docs_utf8_str(r->summary_source ? r->summary_source : "none", 15, &ok);
	if (r->text && r->text_len) {
		text = docs_utf8(r->text, r->text_len, META_DOCS_FTS_MAX);
		ok = ok && text;
	}
	if (r->nautotags) {
		tags = calloc(r->nautotags, sizeof(*tags));
		ok = ok && tags;
		for (size_t i = 0; ok && i < r->nautotags; i++)
			if (r->autotags[i] && *r->autotags[i])
				ok = (tags[ntags++] = docs_utf8_str(
					  r->autotags[i], META_DOCS_TAG_MAX, &ok)) != NULL;
	}
	if (ok)
		tags_arr = docs_array(tags ? (const char *const *)tags : none, ntags);
	if (!ok || !tags_arr) {
		ret = -ENOMEM;
		goto out;
	}
	meta_p_i64(&p, (int64_t)job->ino);
	meta_p_i64(&p, (int64_t)job->version);
	docs_p_text(&p, worker);
	docs_p_text(&p, mime ? mime : "application/octet-stream");
	docs_p_text(&p, text);
	docs_p_text(&p, summary);
	docs_p_text(&p, source);
	docs_p_text(&p, tags_arr);
	ret = docs_code(m, "SELECT dv_job_complete($1, $2, $3, $4, $5, $6, $7, $8::text[])", &p);
	if (ret == -DOCS_ESTALE_SQL)
		ret = -ESTALE;
out:
	free(mime);
	free(text);
	free(summary);
	free(source);
	free(tags_arr);
	docs_list_free(tags, ntags);
	return ret;
}

int meta_docs_fail(struct meta *m, const char *worker, const struct meta_job *job,
		   const char *error, const char *mime, bool final, int max_attempts)
{
	struct meta_params p = {0};
	char *err, *mi;
	bool ok = true;
	int ret;

	err =
	    docs_utf8_str(error && *error ? error : "processing failed", META_DOCS_ERROR_MAX, &ok);
	mi = docs_utf8_str(mime && *mime ? mime : NULL, 127, &ok);
	if (!ok) {
		free(err);
		free(mi);
		return -ENOMEM;
	}
	meta_p_i64(&p, (int64_t)job->ino);
	meta_p_i64(&p, (int64_t)job->version);
	docs_p_text(&p, worker);
	docs_p_text(&p, err);
	docs_p_text(&p, mi);
	meta_p_bool(&p, final);
	meta_p_i64(&p, max_attempts);
	ret = docs_code(m, "SELECT dv_job_fail($1, $2, $3, $4, $5, $6, $7)", &p);
	free(err);
	free(mi);
	if (ret == -DOCS_ESTALE_SQL)
		return -ESTALE;
	return ret == -1 ? 1 : ret;
}

int meta_docs_touch(struct meta *m, const char *worker, const uint64_t *inos, size_t n)
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
		q += sprintf(q, "%s%" PRIu64, i ? "," : "", inos[i]);
	*q++ = '}';
	*q = '\0';
	docs_p_text(&p, worker);
	docs_p_text(&p, arr);
	ret = meta_plain(m,
			 "UPDATE dv_jobs SET claimed_at = now() "
			 "WHERE ino = ANY ($2::bigint[]) AND state = 1 AND claimed_by = $1",
			 &p, &res);
	free(arr);
	if (ret)
		return ret;
	ret = atoi(PQcmdTuples(res));
	PQclear(res);
	return ret;
}

int meta_docs_reclaim(struct meta *m, int stale_s, int max_attempts)
{
	struct meta_params p = {0};

	meta_p_i64(&p, stale_s);
	meta_p_i64(&p, max_attempts);
	return -docs_code(m, "SELECT dv_job_reclaim($1, $2)", &p);
}

int meta_docs_counts(struct meta *m, struct meta_docs_counts *out)
{
	struct meta_params p = {0};
	PGresult *res;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = meta_plain(m,
			 "SELECT count(*) FILTER (WHERE state = 0 AND not_before <= now()), "
			 "count(*) FILTER (WHERE state = 0 AND not_before > now()), "
			 "count(*) FILTER (WHERE state = 1), "
			 "COALESCE(EXTRACT(epoch FROM now() - min(queued)), 0), "
			 "(SELECT count(*) FROM dv_inodes WHERE status = 4), "
			 "(SELECT count(*) FROM dv_inodes WHERE status = 3) FROM dv_jobs",
			 &p, &res);
	if (ret)
		return ret;
	out->ready = (uint64_t)meta_get_i64(res, 0, 0);
	out->waiting = (uint64_t)meta_get_i64(res, 0, 1);
	out->processing = (uint64_t)meta_get_i64(res, 0, 2);
	out->oldest_s = strtod(PQgetvalue(res, 0, 3), NULL);
	out->failed = (uint64_t)meta_get_i64(res, 0, 4);
	out->completed = (uint64_t)meta_get_i64(res, 0, 5);
	PQclear(res);
	return 0;
}

int meta_docs_duplicates(struct meta *m, const char *under, meta_docs_dup_cb cb, void *arg)
{
	struct meta_params p = {0};
	char *prefix = NULL;
	PGresult *res;
	int ret, n;

	/* "/a/b/" and "a/b" both mean the vault path "/a/b" */
	if (under) {
		size_t len = strlen(under);

		while (len && under[len - 1] == '/')
			len--;
		while (len && *under == '/') {
			under++;
			len--;
		}
		if (len) {
			prefix = malloc(len + 2);
			if (!prefix)
				return -ENOMEM;
			prefix[0] = '/';
			memcpy(prefix + 1, under, len);
			prefix[len + 1] = '\0';
		}
	}
	if (prefix)
		meta_p_bytes(&p, prefix, strlen(prefix));
	else
		meta_p_null(&p);
	ret = meta_plain(
	    m,
	    "WITH RECURSIVE dup AS (SELECT content FROM dv_inodes "
	    "  WHERE content IS NOT NULL AND nlink > 0 GROUP BY content HAVING count(*) > 1), "
	    "up AS (SELECT i.id, i.content, d.parent AS dir, '/'::bytea || d.name AS path, "
	    "    0 AS depth FROM dv_inodes i JOIN dup USING (content) "
	    "    CROSS JOIN LATERAL (SELECT parent, name FROM dv_dentries WHERE ino = i.id "
	    "      ORDER BY parent, name LIMIT 1) d WHERE i.nlink > 0 "
	    "  UNION ALL SELECT up.id, up.content, d.parent, '/'::bytea || d.name || up.path, "
	    "    up.depth + 1 FROM up JOIN dv_dentries d ON d.ino = up.dir "
	    "    WHERE up.dir <> 1 AND up.depth < 4096), "
	    "kept AS (SELECT id, content, path, count(*) OVER (PARTITION BY content) AS n "
	    "  FROM up WHERE dir = 1 AND ($1::bytea IS NULL OR path = $1::bytea "
	    "    OR substring(path FROM 1 FOR length($1::bytea) + 1) = $1::bytea || '/'::bytea)) "
	    "SELECT b.checksum, b.size, k.id, k.path FROM kept k JOIN dv_blobs b ON b.hash = "
	    "k.content "
	    "WHERE k.n > 1 ORDER BY b.checksum, k.content, k.path",
	    &p, &res);
	free(prefix);
	if (ret)
		return ret;
	n = PQntuples(res);
	for (ret = 0; ret < n; ret++) {
		unsigned char sum[16] = {0};
		size_t cap = (size_t)PQgetlength(res, ret, 3) / 2 + 1;
		char *path = malloc(cap);
		ssize_t len;
		int stop;

		if (!path) {
			ret = -ENOMEM;
			break;
		}
		len = meta_get_bytea(res, ret, 3, path, cap);
		meta_get_bytea(res, ret, 0, sum, sizeof(sum));
		stop = len < 0 ? 0
			       : cb(arg, sum, (uint64_t)meta_get_i64(res, ret, 1),
				    (uint64_t)meta_get_i64(res, ret, 2), path, (size_t)len);
		free(path);
		if (stop)
			break;
	}
	PQclear(res);
	return ret;
}

/* A short, secret-free description of the server for messages. */
int meta_docs_listen_open(const char *conninfo, struct meta_listen **out, char *err, size_t errlen)
{
	struct meta_listen *l;
	PGresult *res;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->pg = meta_connect_own(conninfo, "to listen for jobs", l->server, sizeof(l->server), err,
				 errlen);
	if (!l->pg) {
		meta_docs_listen_close(l);
		return -EIO;
	}
	res = PQexec(l->pg, "LISTEN dv_jobs");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		const char *msg = PQresultErrorMessage(res);

		snprintf(err, errlen, "%s: LISTEN dv_jobs: %.*s", l->server,
			 (int)strcspn(msg, "\n"), msg);
		PQclear(res);
		meta_docs_listen_close(l);
		return -EIO;
	}
	PQclear(res);
	*out = l;
	return 0;
}

/* Consumes every pending notification; returns how many. */
static int docs_listen_drain(PGconn *pg)
{
	PGnotify *n;
	int count = 0;

	while ((n = PQnotifies(pg))) {
		PQfreemem(n);
		count++;
	}
	return count;
}

int meta_docs_listen_wait(struct meta_listen *l, int timeout_ms, int wake_fd)
{
	struct pollfd fds[2];
	int nfds = 1, r;

	if (docs_listen_drain(l->pg))
		return 1;
	fds[0].fd = PQsocket(l->pg);
	fds[0].events = POLLIN;
	if (fds[0].fd < 0) {
		log_error("%s: the LISTEN connection is closed", l->server);
		return -EIO;
	}
	if (wake_fd >= 0) {
		fds[1].fd = wake_fd;
		fds[1].events = POLLIN;
		nfds = 2;
	}
	r = poll(fds, (nfds_t)nfds, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0 || !(fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
		return 0;
	if (!PQconsumeInput(l->pg) || PQstatus(l->pg) != CONNECTION_OK) {
		const char *msg = PQerrorMessage(l->pg);

		log_error("%s: the LISTEN connection broke: %.*s", l->server,
			  (int)strcspn(msg, "\n"), msg);
		return -EIO;
	}
	return docs_listen_drain(l->pg) ? 1 : 0;
}

void meta_docs_listen_close(struct meta_listen *l)
{
	if (!l)
		return;
	PQfinish(l->pg);
	free(l);
}
