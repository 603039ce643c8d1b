/*
 * cmd_sync.c - `docvault sync` and the upload queue lines of `docvault
 * status`. Both read the write-back journal of the configured cache
 * directory (backend/journal.c) from outside the daemon: the journal's
 * records are files, so "what is not committed yet" is a directory listing
 * and needs no channel to the daemon. Whether a daemon is serving the
 * cache directory is read from /proc/locks (the daemon holds an flock on
 * CACHE_DIR/lock), so sync can say that nobody will finish the work rather
 * than wait forever.
 */
#include <errno.h>
#include <fts.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd_sync.h"
#include "docvault/config.h"
#include "docvault/journal.h"
#include "docvault/log.h"
#include "docvault/meta.h"

struct sync_scan {
	const uint64_t *inos; /* sorted filter, or NULL for all */
	size_t ninos;
	uint64_t files, bytes, failing;
	uint64_t oldest_seq;
	char error[512]; /* the first failure noted */
};

static int sync_ino_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int sync_scan_one(void *arg, const struct journal_entry *e)
{
	struct sync_scan *s = arg;

	if (s->inos && !bsearch(&e->ino, s->inos, s->ninos, sizeof(*s->inos), sync_ino_cmp))
		return 0;
	s->files++;
	s->bytes += e->size;
	if (!s->oldest_seq || e->seq < s->oldest_seq)
		s->oldest_seq = e->seq;
	if (e->error) {
		if (!s->failing)
			snprintf(s->error, sizeof(s->error), "%s", e->error);
		s->failing++;
	}
	return 0;
}

static int sync_scan(const char *cache_dir, struct sync_scan *s)
{
	int ret;

	s->files = s->bytes = s->failing = s->oldest_seq = 0;
	s->error[0] = '\0';
	ret = journal_scan(cache_dir, sync_scan_one, s);
	return ret == -ENOENT ? 0 : ret;
}

/* The pid holding the flock on CACHE_DIR/lock (a daemon serving it), or 0. */
static long sync_daemon_pid(const char *cache_dir)
{
	char path[4096], line[256];
	struct stat st;
	long pid = 0;
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/lock", cache_dir) >= sizeof(path) ||
	    stat(path, &st) < 0)
		return 0;
	f = fopen("/proc/locks", "r");
	if (!f)
		return 0;
	while (!pid && fgets(line, sizeof(line), f)) {
		char kind[16], dev[64];
		unsigned long long ino;
		long p;
		char *colon;

		/* "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" */
		if (sscanf(line, "%*s %15s %*s %*s %ld %63s", kind, &p, dev) != 3 ||
		    strcmp(kind, "FLOCK") != 0)
			continue;
		colon = strrchr(dev, ':');
		if (!colon)
			continue;
		ino = strtoull(colon + 1, NULL, 10);
		if (ino == (unsigned long long)st.st_ino)
			pid = p;
	}
	fclose(f);
	return pid;
}

static void sync_human(uint64_t bytes, char *out, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void cmd_queue_status(const struct dv_config *cfg)
{
	struct sync_scan s = {0};
	char human[32];
	struct timespec now;
	int ret = sync_scan(cfg->cache.dir, &s);

	if (ret) {
		printf("queue:         cannot read %s/journal: %s\n", cfg->cache.dir,
		       strerror(-ret));
		return;
	}
	sync_human(s.bytes, human, sizeof(human));
	clock_gettime(CLOCK_REALTIME, &now);
	if (s.files == 0) {
		printf("queue:         0 files waiting for upload (cache %s)\n", cfg->cache.dir);
		return;
	}
	printf("queue:         %llu files, %s waiting for upload, oldest %llds (cache %s)\n",
	       (unsigned long long)s.files, human,
	       (long long)(now.tv_sec - (time_t)(s.oldest_seq / 1000000000u)), cfg->cache.dir);
	if (s.failing)
		printf("failing:       %llu files; %s\n", (unsigned long long)s.failing, s.error);
	if (!sync_daemon_pid(cfg->cache.dir))
		printf("               no mount is using this cache directory: mount the vault "
		       "to finish\n");
}

/* Adds the inodes of the regular files at or under path to *inos (fts walks it). */
static int sync_collect(const char *path, uint64_t **inos, size_t *n, size_t *cap)
{
	char *paths[] = {(char *)path, NULL};
	FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
	FTSENT *e;
	int ret = 0;

	if (!fts)
		return -errno;
	while ((e = fts_read(fts))) {
		if (e->fts_info == FTS_NS || e->fts_info == FTS_ERR || e->fts_info == FTS_DNR) {
			ret = -(e->fts_errno ? e->fts_errno : EIO);
			break;
		}
		if (e->fts_info != FTS_F || !S_ISREG(e->fts_statp->st_mode))
			continue;
		if (*n == *cap) {
			size_t ncap = *cap ? *cap * 2 : 1024;
			uint64_t *r = realloc(*inos, ncap * sizeof(*r));

			if (!r) {
				ret = -ENOMEM;
				break;
			}
			*inos = r;
			*cap = ncap;
		}
		(*inos)[(*n)++] = (uint64_t)e->fts_statp->st_ino;
	}
	fts_close(fts);
	return ret;
}

static double sync_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cmd_sync(int argc, char **argv, const char *config_path, const struct dv_config *cfg)
{
	struct sync_scan s = {0};
	double timeout = 0, start = sync_now(), last_print = 0;
	uint64_t start_bytes = 0;
	bool tty = isatty(2), first = true;
	char err[1024];
	struct meta *m = NULL;
	uint64_t *inos = NULL;
	size_t ninos = 0, cap = 0;
	bool filter = false;
	int ret, rc = 1;

	(void)config_path;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			char *end;

			timeout = strtod(argv[++i], &end);
			if (*end || timeout < 0) {
				fprintf(stderr,
					"docvault sync: --timeout %s is not a number of "
					"seconds\n",
					argv[i]);
				return 2;
			}
			continue;
		}
		ret = sync_collect(argv[i], &inos, &ninos, &cap);
		if (ret) {
			fprintf(stderr, "docvault sync: %s: %s\n", argv[i], strerror(-ret));
			goto out;
		}
		filter = true;
	}
	if (filter) {
		static const uint64_t none;

		if (ninos)
			qsort(inos, ninos, sizeof(*inos), sync_ino_cmp);
		s.inos = ninos ? inos : &none; /* paths without files: nothing to wait for */
		s.ninos = ninos;
	}
	for (;;) {
		double now;

		ret = sync_scan(cfg->cache.dir, &s);
		if (ret) {
			fprintf(stderr, "docvault sync: cannot read %s/journal: %s\n",
				cfg->cache.dir, strerror(-ret));
			goto out;
		}
		if (first)
			start_bytes = s.bytes;
		first = false;
		if (s.files == 0)
			break;
		if (!sync_daemon_pid(cfg->cache.dir)) {
			/* a daemon may have finished and left just now: look once more */
			if (sync_scan(cfg->cache.dir, &s) == 0 && s.files == 0)
				break;
			fprintf(stderr,
				"%sdocvault sync: %llu file(s) wait in %s/journal but no docvault "
				"mount is using that cache directory; mount the vault with this "
				"configuration to finish them\n",
				tty ? "\n" : "", (unsigned long long)s.files, cfg->cache.dir);
			goto out;
		}
		now = sync_now();
		if (timeout > 0 && now - start > timeout) {
			fprintf(
			    stderr,
			    "%sdocvault sync: %llu file(s) still not committed after %.0f s%s%s\n",
			    tty ? "\n" : "", (unsigned long long)s.files, timeout,
			    s.failing ? "; last failure: " : "", s.failing ? s.error : "");
			goto out;
		}
		if (tty && now - last_print >= 0.5) {
			char left[32], rate[32];
			double el = now - start;
			uint64_t done = start_bytes > s.bytes ? start_bytes - s.bytes : 0;
			double bps = el > 0 ? (double)done / el : 0;

			sync_human(s.bytes, left, sizeof(left));
			sync_human((uint64_t)bps, rate, sizeof(rate));
			if (bps > 0)
				fprintf(
				    stderr, "\rsync: %llu files, %s left, %s/s, about %.0f s   ",
				    (unsigned long long)s.files, left, rate, (double)s.bytes / bps);
			else
				fprintf(stderr, "\rsync: %llu files, %s left%s%s   ",
					(unsigned long long)s.files, left,
					s.failing ? "; failing: " : "", s.failing ? s.error : "");
			last_print = now;
		}
		usleep(100000);
	}
	if (tty && last_print > 0)
		fprintf(stderr, "\r\033[K");
	/* the namespace changes too: make PostgreSQL flush its log */
	ret = meta_open(cfg->database.conninfo, 1, &m, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "docvault sync: content is committed, but %s\n", err);
		goto out;
	}
	ret = meta_sync(m);
	if (ret) {
		fprintf(stderr,
			"docvault sync: content is committed, but flushing PostgreSQL "
			"failed: %s\n",
			strerror(-ret));
		goto out;
	}
	rc = 0;
out:
	meta_close(m);
	free(inos);
	return rc;
}
