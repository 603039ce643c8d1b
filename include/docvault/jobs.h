/*
 * jobs.h - the document processing workers: threads that take jobs from
 * the queue in PostgreSQL (meta_docs.h), fetch the document's blob from the
 * store into a temporary file, process it (process.h: MIME type, text,
 * summary, tags) and record the result. Used by the daemon
 * ([processing] workers threads) and by `docvault worker` processes, on any
 * number of machines at once: the claim gives each job to one worker, and
 * a result is recorded only while the worker still holds the claim on the
 * inode's current version, so each job is done exactly once.
 *
 * Each worker thread keeps its own text extraction server (extract.h: one
 * helper process started on the first document, whose forked worker
 * extracts document after document under per-document limits), restarted
 * if it dies and stopped with the thread.
 *
 * Threads: nthreads workers plus one housekeeper that LISTENs for new jobs
 * (waking idle workers at once; without it they poll every few seconds),
 * keeps the claims of jobs in progress fresh, and gives back to the queue
 * the claims of workers that died (no refresh for JOBS_STALE_S seconds).
 * A failed attempt is retried with backoff up to [processing]
 * max_attempts; a document that is itself bad (process_file() -EINVAL)
 * fails at once. Database failures are retried with backoff; nothing here
 * ever stops the process.
 *
 * Ownership: cfg, meta and store are borrowed and must outlive the jobs;
 * meta's pool should have room for nthreads + 1 connections beyond what
 * the caller needs. Not re-entrant per struct jobs: one thread starts and
 * stops it.
 */
#ifndef DOCVAULT_JOBS_H
#define DOCVAULT_JOBS_H

#include <stdint.h>

struct dv_config;
struct meta;
struct store;
struct jobs;

#define JOBS_POLL_S	 5  /* an idle worker looks at the queue at least this often */
#define JOBS_TOUCH_S	 10 /* claims in progress are refreshed this often */
#define JOBS_STALE_S	 60 /* a claim not refreshed for this long is a dead worker's */
#define JOBS_THREADS_MAX 64

struct jobs_stats {
	uint64_t completed; /* documents processed and recorded */
	uint64_t failed;    /* documents marked failed for good */
	uint64_t retried;   /* failed attempts queued again */
	uint64_t stale;	    /* results dropped: the document changed meanwhile */
	uint64_t errors;    /* database failures (claims, results) */
	uint64_t reclaimed; /* dead workers' claims given back to the queue */
};

/*
 * Starts nthreads (1..JOBS_THREADS_MAX) workers. tmpdir receives the
 * temporary copies of documents being processed (NULL: $TMPDIR or /tmp);
 * worker_name identifies this process in the queue (e.g. "host:pid"; a
 * random suffix makes each struct jobs unique). Returns 0 or a negative
 * errno (-EINVAL bad arguments, -ENOMEM, -EAGAIN no threads), logged.
 */
int jobs_start(const struct dv_config *cfg, struct meta *meta, struct store *store,
	       const char *tmpdir, int nthreads, const char *worker_name, struct jobs **out);

/*
 * Same, but each worker thread ends once no job is due (jobs waiting out a
 * retry backoff are left in the queue), or at its first database failure.
 * For `docvault worker --once` and tests; wait with jobs_wait().
 */
int jobs_start_drain(const struct dv_config *cfg, struct meta *meta, struct store *store,
		     const char *tmpdir, int nthreads, const char *worker_name, struct jobs **out);

/*
 * Waits up to timeout_ms (-1: forever) for every worker thread to end (only
 * drain mode ends by itself). Returns 0 when they have, -ETIMEDOUT.
 */
int jobs_wait(struct jobs *j, int timeout_ms);

/* Wakes idle workers to look at the queue now (e.g. after a local commit). */
void jobs_kick(struct jobs *j);

void jobs_get_stats(struct jobs *j, struct jobs_stats *out);

/*
 * Stops: idle workers end at once, busy ones after their current document
 * (bounded by the processing limits); joins every thread and frees.
 * Accepts NULL.
 */
void jobs_stop(struct jobs *j);

#endif
