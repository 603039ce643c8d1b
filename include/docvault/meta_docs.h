/*
 * meta_docs.h - the document side of the metadata engine: what the vault
 * knows about each document (processing status, MIME type, summary,
 * automatic and user tags, error, checksum, upload time, full-text index)
 * and the processing queue (dv_jobs), in PostgreSQL. Implemented in
 * backend/meta_docs.c on the same connection pool as meta.h.
 *
 * Model (docs/design-schema.md, "Documents and jobs"):
 *   - meta_commit() of non-empty content sets the document `ready` and
 *     queues one job for (inode, new version) in the same transaction, and
 *     NOTIFYs channel "dv_jobs". An empty file is `completed` at once, with
 *     MIME type "inode/x-empty" and no job.
 *   - A worker claims a due job (FOR UPDATE SKIP LOCKED: racing workers
 *     never get the same one; the document becomes `processing`),
 *     processes it, then completes or fails it. Completion and failure
 *     take effect only while the claim is still the worker's and the inode
 *     still has the job's version; otherwise they are no-ops (-ESTALE): a
 *     newer commit queued a job of its own, or the claim was reclaimed.
 *   - A claim is kept alive by meta_docs_touch(); claims not refreshed for
 *     a while (a dead worker) go back to the queue (meta_docs_reclaim()).
 *   - Each claim counts as an attempt. A failed attempt is retried after
 *     2^attempts seconds (+-25% jitter) until max_attempts, then the
 *     document is `failed` with the error.
 *
 * Every call is one round trip, thread-safe, and returns 0 or a negative
 * errno (-EIO for a database failure, logged once by the engine).
 * Strings passed in are sanitised to valid UTF-8 (invalid bytes become
 * U+FFFD) before they reach PostgreSQL.
 */
#ifndef DOCVAULT_META_DOCS_H
#define DOCVAULT_META_DOCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct meta;

/* Stored status codes; UPLOADING is never stored (the daemon knows it). */
enum meta_doc_status {
	META_DOC_NONE = 0, /* not a document: a directory or a symlink */
	META_DOC_READY = 1,
	META_DOC_PROCESSING = 2,
	META_DOC_COMPLETED = 3,
	META_DOC_FAILED = 4,
	META_DOC_UPLOADING = 5,
};

#define META_DOCS_TAG_MAX   255	      /* bytes of one user tag */
#define META_DOCS_TAGS_MAX  200	      /* user tags on one document */
#define META_DOCS_FTS_MAX   (1 << 20) /* bytes of text indexed for search */
#define META_DOCS_ERROR_MAX 1024      /* bytes of an error message kept */

/* "ready", "processing", ...; "" for META_DOC_NONE. */
const char *meta_doc_status_name(enum meta_doc_status s);

/* Everything the xattrs show, read in one query. */
struct meta_doc {
	uint64_t ino;	    /* also user.docvault.id */
	uint64_t version;   /* the inode's content version */
	uint64_t processed; /* the version the fields below describe, 0 if none */
	enum meta_doc_status status;
	bool is_file;		    /* a regular file */
	bool has_checksum;	    /* false for an empty file */
	unsigned char checksum[16]; /* plain XXH3-128, canonical bytes */
	uint64_t size;
	int64_t uploaded;	 /* ns since the epoch: the commit of this content (else crtime) */
	char mime[128];		 /* "" when not known yet */
	char summary_source[16]; /* "builtin" | "openai" | "none" | "" */
	/* malloc'ed, NUL-terminated, never NULL after a successful get: */
	char *summary;	/* "" when none */
	char *autotags; /* comma-separated */
	char *tags;	/* comma-separated user tags, sorted */
	char *error;	/* "" unless failed */
};

/*
 * Reads a document's fields. An empty regular file that was never
 * committed reads as completed, "inode/x-empty". -ENOENT if no such
 * inode. *out needs meta_doc_free() after a successful call.
 */
int meta_docs_get(struct meta *m, uint64_t ino, struct meta_doc *out);
/* Frees the strings; accepts NULL and a zeroed struct. */
void meta_doc_free(struct meta_doc *d);

/*
 * Writes user tags from an xattr value (value[0..len), not NUL-terminated):
 * comma-separated tags, each trimmed of blanks; empty items are ignored.
 * If the first tag starts with '+' or '-' the value edits: "+a" adds a,
 * "-a" removes it, a tag without a sign adds. Otherwise the value replaces
 * all user tags ("" clears them). Tags are kept sorted and distinct; ctime
 * becomes now. Returns 0, -ENOENT, -EINVAL (a tag longer than
 * META_DOCS_TAG_MAX, with control characters or not UTF-8), -E2BIG (more
 * than META_DOCS_TAGS_MAX tags would result).
 */
int meta_docs_tags_write(struct meta *m, uint64_t ino, const char *value, size_t len, int64_t now);

/* Queues the current version again (reprocess). A no-op for empty files. -ENOENT. */
int meta_docs_requeue(struct meta *m, uint64_t ino);

/* A claimed job. */
struct meta_job {
	uint64_t ino, version;
	unsigned char content[16]; /* the blob's keyed hash: its store key */
	uint64_t size;
	int attempts; /* claims so far, this one included */
};

/*
 * Claims the oldest due job for worker (a name unique to the calling
 * worker; it must be passed again to touch/complete/fail). Returns 0 with
 * *job set, or -EAGAIN when nothing is due; then *wait_s (if not NULL)
 * receives the seconds until the next queued job is due, or -1 if the
 * queue is empty.
 */
int meta_docs_claim(struct meta *m, const char *worker, struct meta_job *job, double *wait_s);

/* What processing found; strings may be NULL (stored as empty / none). */
struct meta_docs_result {
	const char *mime;
	const char *text; /* extracted text, indexed (the first META_DOCS_FTS_MAX bytes) */
	size_t text_len;
	const char *summary;
	const char *summary_source;
	const char *const *autotags;
	size_t nautotags;
};

/*
 * Stores the result and marks the document completed. -ESTALE (nothing
 * changed) if the job is no longer this worker's claim on this version.
 */
int meta_docs_complete(struct meta *m, const char *worker, const struct meta_job *job,
		       const struct meta_docs_result *r);

/*
 * Records a failed attempt. final: the document itself is bad (no retry).
 * Otherwise the job is queued again after a backoff, unless this was
 * attempt max_attempts. mime may be NULL. Returns 0 when it will be
 * retried, 1 when the document is now failed, -ESTALE as above.
 */
int meta_docs_fail(struct meta *m, const char *worker, const struct meta_job *job,
		   const char *error, const char *mime, bool final, int max_attempts);

/*
 * Refreshes the claim time of the jobs of these inodes that worker holds
 * (the ones it is working on: a claim it gave up is left to go stale).
 * Returns how many.
 */
int meta_docs_touch(struct meta *m, const char *worker, const uint64_t *inos, size_t n);

/*
 * Puts back in the queue (or fails, past max_attempts) the jobs whose
 * claims were not refreshed for stale_s seconds. Returns how many.
 */
int meta_docs_reclaim(struct meta *m, int stale_s, int max_attempts);

/* The queue and the documents by status, for `docvault status`. */
struct meta_docs_counts {
	uint64_t ready;	     /* queued and due */
	uint64_t waiting;    /* queued, waiting out a retry backoff */
	uint64_t processing; /* claimed by a worker */
	uint64_t failed;     /* documents that failed for good */
	uint64_t completed;  /* processed (status 3; the partial index on status) */
	double oldest_s;     /* age of the oldest queued job, seconds (0 if none) */
};

/*
 * Counts without scanning the inodes: the queue is counted (it holds only
 * pending work) and failed documents through a partial index.
 */
int meta_docs_counts(struct meta *m, struct meta_docs_counts *out);

/*
 * Documents that share content. cb gets one row per inode (one path each,
 * from the root, e.g. "/a/b.txt"; not NUL-terminated, path bytes as
 * stored), grouped by content: rows of one group are consecutive and come
 * with the same checksum (plain XXH3-128) and size, groups ordered by
 * checksum, paths sorted. under (NULL or "" or "/" for everything) keeps
 * only paths at or below that vault path; only groups with at least two
 * kept paths are reported. cb returning non-zero stops early. Returns the
 * number of rows given to cb or a negative errno.
 */
typedef int (*meta_docs_dup_cb)(void *arg, const unsigned char *checksum, uint64_t size,
				uint64_t ino, const char *path, size_t pathlen);
int meta_docs_duplicates(struct meta *m, const char *under, meta_docs_dup_cb cb, void *arg);

/*
 * A dedicated connection (not from the pool) that LISTENs on channel
 * "dv_jobs". meta_docs_listen_open() connects with conninfo; on failure it
 * returns a negative errno and a message naming the server in err.
 */
struct meta_listen;
int meta_docs_listen_open(const char *conninfo, struct meta_listen **out, char *err, size_t errlen);
/*
 * Waits up to timeout_ms for a notification (consuming all pending ones)
 * or for wake_fd (if >= 0) to become readable (not read here). Returns 1
 * when notified, 0 on timeout or wake_fd, -EIO when the connection is lost
 * (logged; close and open again).
 */
int meta_docs_listen_wait(struct meta_listen *l, int timeout_ms, int wake_fd);
void meta_docs_listen_close(struct meta_listen *l);

#endif
