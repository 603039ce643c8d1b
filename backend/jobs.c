/*
 * jobs.c - the document processing workers (see jobs.h for the model).
 *
 * Each worker thread loops: claim a job (meta_docs_claim), copy the blob
 * from the store into a temporary file, process it (process_file_on(), on
 * the thread's own extraction server), record the
 * result (complete, or fail: final for a bad document, else retried with
 * backoff by the queue). When nothing is due it sleeps until the
 * housekeeper passes on a NOTIFY, until the next queued job is due, or
 * JOBS_POLL_S at most. The housekeeper thread owns the LISTEN connection,
 * refreshes the claims of the jobs in progress (only those: a claim given
 * up after a database failure is left to go stale and be reclaimed) and
 * reclaims dead workers' jobs.
 *
 * Exactly once: the claim (FOR UPDATE SKIP LOCKED) gives a job to one
 * worker; the result is recorded only if this worker still holds the claim
 * on the inode's current version, else dropped (-ESTALE: a newer commit
 * queued its own job, or the claim was reclaimed).
 *
 * Locking: j->lock protects stop, kicks, running, inflight and stats;
 * j->cond (CLOCK_MONOTONIC) signals kicks, stop and ended workers. No lock
 * is held across a database, store or processing call.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "docvault/config.h"
#include "docvault/extract.h"
#include "docvault/jobs.h"
#include "docvault/log.h"
#include "docvault/meta_docs.h"
#include "docvault/process.h"
#include "docvault/store.h"

#define JOBS_RECLAIM_S	  (JOBS_STALE_S / 2) /* how often dead workers' claims are looked for */
#define JOBS_LISTEN_RETRY 10		     /* seconds between attempts to LISTEN again */
#define JOBS_BACKOFF_MAX  30		     /* seconds, after database failures */

struct jobs_thread {
	struct jobs *j;
	int idx;
	pthread_t tid;
	struct extract_server *srv; /* this worker's extraction server; NULL: one helper a job */
};

struct jobs {
	const struct dv_config *cfg;
	struct meta *meta;
	struct store *store;
	struct process_opts opts;
	char *tmpdir;
	char worker[160];
	int max_attempts;
	bool drain;
	int nthreads;
	int nstarted; /* worker threads created */
	struct jobs_thread *threads;
	pthread_t keeper;
	bool keeper_started;
	int wake_fd; /* eventfd: written once by jobs_stop() to end the keeper's wait */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;		 /* protected by lock */
	uint64_t kicks;		 /* protected by lock */
	int running;		 /* worker threads not ended; protected by lock */
	uint64_t *inflight;	 /* [nthreads] inode in progress or 0; protected by lock */
	struct jobs_stats stats; /* protected by lock */
};

static int64_t jobs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool jobs_stopping(struct jobs *j)
{
	bool stop;

	pthread_mutex_lock(&j->lock);
	stop = j->stop;
	pthread_mutex_unlock(&j->lock);
	return stop;
}

/* Adds to one counter of the stats. */
static void jobs_count(struct jobs *j, uint64_t *counter, uint64_t n)
{
	pthread_mutex_lock(&j->lock);
	*counter += n;
	pthread_mutex_unlock(&j->lock);
}

/*
 * Sleeps up to ms; returns early on stop and, when kickable, on a kick
 * (a NOTIFY or jobs_kick()).
 */
static void jobs_sleep(struct jobs *j, int64_t ms, bool kickable)
{
	struct timespec ts;
	uint64_t seen;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&j->lock);
	seen = j->kicks;
	while (!j->stop && (!kickable || j->kicks == seen))
		if (pthread_cond_timedwait(&j->cond, &j->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&j->lock);
}

void jobs_kick(struct jobs *j)
{
	if (!j)
		return;
	pthread_mutex_lock(&j->lock);
	j->kicks++;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

/* Records a failed attempt; why names what failed. */
static void jobs_fail(struct jobs *j, const struct meta_job *job, const char *why, const char *mime,
		      bool final)
{
	int ret = meta_docs_fail(j->meta, j->worker, job, why, mime, final, j->max_attempts);

	if (ret == 1) {
		log_warn("jobs: document %" PRIu64 " (version %" PRIu64 ") failed: %s", job->ino,
			 job->version, why);
		jobs_count(j, &j->stats.failed, 1);
	} else if (ret == 0) {
		log_warn("jobs: document %" PRIu64 " (version %" PRIu64
			 "): attempt %d of %d failed, will retry: %s",
			 job->ino, job->version, job->attempts, j->max_attempts, why);
		jobs_count(j, &j->stats.retried, 1);
	} else if (ret == -ESTALE) {
		jobs_count(j, &j->stats.stale, 1);
	} else {
		jobs_count(j, &j->stats.errors, 1); /* logged by the metadata engine */
	}
}

static void jobs_complete(struct jobs *j, const struct meta_job *job,
			  const struct process_result *res)
{
	struct meta_docs_result r = {
	    .mime = res->mime,
	    .text = res->text,
	    .text_len = res->text ? res->text_len : 0,
	    .summary = res->summary,
	    .summary_source = res->summary_source[0] ? res->summary_source : "none",
	    .autotags = (const char *const *)res->autotags,
	    .nautotags = res->autotags ? res->nautotags : 0,
	};
	int ret = meta_docs_complete(j->meta, j->worker, job, &r);

	if (ret == 0) {
		log_debug("jobs: document %" PRIu64 " (version %" PRIu64 ") completed: %s, %zu "
			  "bytes of text",
			  job->ino, job->version, res->mime, r.text_len);
		jobs_count(j, &j->stats.completed, 1);
	} else if (ret == -ESTALE) {
		log_debug("jobs: document %" PRIu64 " changed while processing version %" PRIu64
			  "; result dropped",
			  job->ino, job->version);
		jobs_count(j, &j->stats.stale, 1);
	} else {
		jobs_count(j, &j->stats.errors, 1);
	}
}

/* One job: fetch, process (on the worker's extraction server srv), record. */
static void jobs_run(struct jobs *j, struct extract_server *srv, const struct meta_job *job)
{
	struct process_result res;
	char key[STORE_BLOB_KEY_SIZE], path[PATH_MAX], why[512];
	int fd, ret;

	memset(&res, 0, sizeof(res));
	store_blob_key(job->content, key);
	snprintf(path, sizeof(path), "%s/docvault-job-%" PRIu64 ".XXXXXX", j->tmpdir, job->ino);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, sizeof(why), "cannot create a temporary file in %s: %s", j->tmpdir,
			 strerror(errno));
		log_error("jobs: %s", why);
		jobs_fail(j, job, why, NULL, false);
		return;
	}
	if (job->size) {
		ret = store_get_to_fd(j->store, key, 0, job->size, fd);
		if (ret) {
			/* the store logged the detail */
			snprintf(why, sizeof(why),
				 "cannot read the content from the store (%s): %s", key,
				 strerror(-ret));
			unlink(path);
			close(fd);
			jobs_fail(j, job, why, NULL, false);
			return;
		}
	}
	ret = process_file_on(&j->opts, srv, path, &res);
	unlink(path);
	close(fd);
	if (ret == 0 && !res.error[0]) {
		jobs_complete(j, job, &res);
	} else if (ret == 0 || ret == -EINVAL) {
		/* the document itself is bad: no retry */
		jobs_fail(j, job, res.error[0] ? res.error : "the document cannot be processed",
			  res.mime[0] ? res.mime : NULL, true);
	} else {
		snprintf(why, sizeof(why), "%s", res.error[0] ? res.error : strerror(-ret));
		jobs_fail(j, job, why, res.mime[0] ? res.mime : NULL, false);
	}
	process_result_free(&res);
}

static void jobs_set_inflight(struct jobs *j, int idx, uint64_t ino)
{
	pthread_mutex_lock(&j->lock);
	j->inflight[idx] = ino;
	pthread_mutex_unlock(&j->lock);
}

static void *jobs_worker(void *arg)
{
	struct jobs_thread *t = arg;
	struct jobs *j = t->j;
	int64_t backoff = 1000;

	while (!jobs_stopping(j)) {
		struct meta_job job;
		double wait;
		int64_t ms;
		int ret = meta_docs_claim(j->meta, j->worker, &job, &wait);

		if (ret == 0) {
			backoff = 1000;
			jobs_set_inflight(j, t->idx, job.ino);
			jobs_run(j, t->srv, &job);
			jobs_set_inflight(j, t->idx, 0);
			continue;
		}
		if (j->drain) {
			if (ret != -EAGAIN)
				jobs_count(j, &j->stats.errors, 1);
			break;
		}
		if (ret != -EAGAIN) {
			/* logged by the metadata engine; try again later */
			jobs_count(j, &j->stats.errors, 1);
			jobs_sleep(j, backoff, false);
			backoff = backoff * 2 > JOBS_BACKOFF_MAX * 1000 ? JOBS_BACKOFF_MAX * 1000
									: backoff * 2;
			continue;
		}
		ms = JOBS_POLL_S * 1000;
		if (wait >= 0 && wait * 1000 < (double)ms)
			ms = wait * 1000 < 50 ? 50 : (int64_t)(wait * 1000);
		jobs_sleep(j, ms, true);
	}
	extract_server_free(t->srv); /* its helper process ends with the worker */
	t->srv = NULL;
	pthread_mutex_lock(&j->lock);
	j->running--;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

/* Refreshes the claims of the jobs in progress. */
static void jobs_touch(struct jobs *j)
{
	uint64_t inos[JOBS_THREADS_MAX];
	size_t n = 0;

	pthread_mutex_lock(&j->lock);
	for (int i = 0; i < j->nthreads; i++)
		if (j->inflight[i])
			inos[n++] = j->inflight[i];
	pthread_mutex_unlock(&j->lock);
	if (n && meta_docs_touch(j->meta, j->worker, inos, n) < 0)
		jobs_count(j, &j->stats.errors, 1);
}

static void *jobs_keeper(void *arg)
{
	struct jobs *j = arg;
	struct meta_listen *l = NULL;
	int64_t now = jobs_now_ms();
	int64_t next_touch = now + JOBS_TOUCH_S * 1000, next_reclaim = now, next_listen = now;
	bool listen_down = false;

	while (!jobs_stopping(j)) {
		int64_t wake;

		now = jobs_now_ms();
		if (now >= next_reclaim) {
			int n = meta_docs_reclaim(j->meta, JOBS_STALE_S, j->max_attempts);

			if (n > 0) {
				log_info(
				    "jobs: %d jobs of workers that stopped went back to the queue",
				    n);
				jobs_count(j, &j->stats.reclaimed, (uint64_t)n);
				jobs_kick(j);
			} else if (n < 0) {
				jobs_count(j, &j->stats.errors, 1);
			}
			next_reclaim = now + JOBS_RECLAIM_S * 1000;
		}
		if (now >= next_touch) {
			jobs_touch(j);
			next_touch = now + JOBS_TOUCH_S * 1000;
		}
		if (!j->drain && !l && now >= next_listen) {
			char err[512];

			if (meta_docs_listen_open(j->cfg->database.conninfo, &l, err,
						  sizeof(err))) {
				if (!listen_down)
					log_warn(
					    "jobs: %s; looking at the queue every %d s instead",
					    err, JOBS_POLL_S);
				listen_down = true;
				next_listen = now + JOBS_LISTEN_RETRY * 1000;
			} else {
				if (listen_down)
					log_info("jobs: listening for new jobs again");
				listen_down = false;
				jobs_kick(j); /* jobs queued while nobody listened */
			}
		}
		wake = next_touch < next_reclaim ? next_touch : next_reclaim;
		if (!j->drain && !l && next_listen < wake)
			wake = next_listen;
		wake = wake > now ? wake - now : 0;
		if (l) {
			int r = meta_docs_listen_wait(l, (int)wake, j->wake_fd);

			if (r == 1) {
				jobs_kick(j);
			} else if (r < 0) {
				meta_docs_listen_close(l); /* logged by meta_docs */
				l = NULL;
				listen_down = true;
				next_listen = jobs_now_ms() + 1000;
			}
		} else {
			struct pollfd pfd = {.fd = j->wake_fd, .events = POLLIN};

			poll(&pfd, 1, (int)wake);
		}
	}
	meta_docs_listen_close(l);
	return NULL;
}

static void jobs_free(struct jobs *j)
{
	if (!j)
		return;
	if (j->wake_fd >= 0)
		close(j->wake_fd);
	pthread_cond_destroy(&j->cond);
	pthread_mutex_destroy(&j->lock);
	for (int i = 0; j->threads && i < j->nthreads; i++)
		extract_server_free(j->threads[i].srv); /* a thread that never started */
	free(j->inflight);
	free(j->threads);
	free(j->tmpdir);
	free(j);
}

static int jobs_start_mode(const struct dv_config *cfg, struct meta *meta, struct store *store,
			   const char *tmpdir, int nthreads, const char *worker_name, bool drain,
			   struct jobs **out)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	struct jobs *j;
	uint32_t rnd = 0;
	int ret = 0;

	*out = NULL;
	if (!cfg || !meta || !store || !worker_name || nthreads < 1 ||
	    nthreads > JOBS_THREADS_MAX) {
		log_error("jobs: bad arguments (%d threads; 1 to %d allowed)", nthreads,
			  JOBS_THREADS_MAX);
		return -EINVAL;
	}
	if (!tmpdir)
		tmpdir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	if (access(tmpdir, W_OK | X_OK) < 0) {
		ret = -errno;
		log_error("jobs: temporary directory %s: %s", tmpdir, strerror(errno));
		return ret;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		log_error("jobs: out of memory");
		return -ENOMEM;
	}
	j->wake_fd = -1;
	pthread_mutex_init(&j->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cond, &ca);
	pthread_condattr_destroy(&ca);
	j->cfg = cfg;
	j->meta = meta;
	j->store = store;
	j->drain = drain;
	j->nthreads = nthreads;
	j->max_attempts = cfg->processing.max_attempts > 0 ? cfg->processing.max_attempts : 1;
	process_opts_from_config(cfg, &j->opts);
	/* a suffix of its own: two struct jobs never touch or finish each other's claims */
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)(jobs_now_ms() ^ (int64_t)getpid());
	snprintf(j->worker, sizeof(j->worker), "%.140s/%08x", worker_name, rnd);
	j->tmpdir = strdup(tmpdir);
	j->threads = calloc((size_t)nthreads, sizeof(*j->threads));
	j->inflight = calloc((size_t)nthreads, sizeof(*j->inflight));
	j->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!j->tmpdir || !j->threads || !j->inflight || j->wake_fd < 0) {
		ret = j->wake_fd < 0 ? -errno : -ENOMEM;
		log_error("jobs: cannot start: %s", strerror(-ret));
		jobs_free(j);
		return ret;
	}
	/* the threads take no signals: they stay with the process's main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&j->keeper, NULL, jobs_keeper, j);
	j->keeper_started = ret == 0;
	for (int i = 0; !ret && i < nthreads; i++) {
		j->threads[i].j = j;
		j->threads[i].idx = i;
		if (extract_server_new(&j->threads[i].srv)) {
			ret = -ENOMEM;
			break;
		}
		pthread_mutex_lock(&j->lock);
		j->running++;
		pthread_mutex_unlock(&j->lock);
		ret = -pthread_create(&j->threads[i].tid, NULL, jobs_worker, &j->threads[i]);
		if (ret) {
			pthread_mutex_lock(&j->lock);
			j->running--;
			pthread_mutex_unlock(&j->lock);
		} else {
			j->nstarted++;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		log_error("jobs: cannot start threads: %s", strerror(-ret));
		jobs_stop(j);
		return ret;
	}
	log_info("jobs: %d workers as %s%s", nthreads, j->worker,
		 drain ? " until the queue is empty" : "");
	*out = j;
	return 0;
}

int jobs_start(const struct dv_config *cfg, struct meta *meta, struct store *store,
	       const char *tmpdir, int nthreads, const char *worker_name, struct jobs **out)
{
	return jobs_start_mode(cfg, meta, store, tmpdir, nthreads, worker_name, false, out);
}

int jobs_start_drain(const struct dv_config *cfg, struct meta *meta, struct store *store,
		     const char *tmpdir, int nthreads, const char *worker_name, struct jobs **out)
{
	return jobs_start_mode(cfg, meta, store, tmpdir, nthreads, worker_name, true, out);
}

int jobs_wait(struct jobs *j, int timeout_ms)
{
	struct timespec ts;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (timeout_ms >= 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&j->lock);
	while (j->running > 0 && ret == 0)
		ret = timeout_ms < 0 ? pthread_cond_wait(&j->cond, &j->lock)
				     : pthread_cond_timedwait(&j->cond, &j->lock, &ts);
	ret = j->running > 0 ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&j->lock);
	return ret;
}

void jobs_get_stats(struct jobs *j, struct jobs_stats *out)
{
	pthread_mutex_lock(&j->lock);
	*out = j->stats;
	pthread_mutex_unlock(&j->lock);
}

void jobs_stop(struct jobs *j)
{
	uint64_t one = 1;

	if (!j)
		return;
	pthread_mutex_lock(&j->lock);
	j->stop = true;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
	if (write(j->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("jobs: cannot wake the housekeeper: %s", strerror(errno));
	for (int i = 0; i < j->nstarted; i++)
		pthread_join(j->threads[i].tid, NULL);
	if (j->keeper_started)
		pthread_join(j->keeper, NULL);
	log_info("jobs: %s stopped: %" PRIu64 " completed, %" PRIu64 " failed, %" PRIu64
		 " retried, %" PRIu64 " dropped as stale",
		 j->worker, j->stats.completed, j->stats.failed, j->stats.retried, j->stats.stale);
	jobs_free(j);
}
