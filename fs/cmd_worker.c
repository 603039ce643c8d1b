/*
 * cmd_worker.c - `docvault worker` and `docvault duplicates` (see cmds.h).
 *
 * worker: processes documents from the vault's queue with a pool of
 * threads (jobs.h) until SIGTERM/SIGINT/SIGHUP, or with --once until
 * nothing is due. Signals are blocked before any thread starts and taken
 * with sigwait in the main thread, so no handler runs in a worker thread.
 * Any number of workers, on any machines, may share a vault: the queue in
 * PostgreSQL gives each job to one of them.
 *
 * duplicates: one query (meta_docs_duplicates) lists the documents that
 * share content; a PATH on a mounted vault is translated to the vault's
 * own path through /proc/self/mountinfo, and the paths printed then carry
 * the mount point, so they can be used as they are.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "docvault/checksum.h"
#include "docvault/config.h"
#include "docvault/jobs.h"
#include "docvault/log.h"
#include "docvault/meta.h"
#include "docvault/meta_docs.h"
#include "docvault/store.h"

const char cmd_worker_usage[] =
    "usage: docvault worker -c FILE [--threads N] [--once] [--tmpdir DIR]\n"
    "\n"
    "Processes documents from the vault's queue: MIME type, text, summary, tags.\n"
    "Run as many as you like, on any machine that reaches the vault's PostgreSQL\n"
    "and store: each document is processed once. Stops cleanly on SIGTERM or\n"
    "SIGINT, after the documents in progress.\n"
    "\n"
    "  -c, --config FILE  the configuration (INI)\n"
    "  -t, --threads N    documents processed at once (default: the number of CPUs)\n"
    "      --once         process what is due, then exit (1 if a database error\n"
    "                     stopped it)\n"
    "      --tmpdir DIR   where documents are copied while processed (default\n"
    "                     $TMPDIR or /tmp)\n";

const char cmd_duplicates_usage[] =
    "usage: docvault duplicates -c FILE [PATH]\n"
    "\n"
    "Lists the documents that share content, one group per checksum: a line\n"
    "\"xxh128:HEX  SIZE bytes, N copies\", then one path per document, then a blank\n"
    "line. The content is stored once; the paths are separate documents (hard\n"
    "links are one document). PATH (a path in the vault, or a directory of a\n"
    "mounted vault) keeps only the documents under it.\n";

int cmd_load_config(const char *cmd, const char *path, struct dv_config *cfg)
{
	const char *sep = cmd ? " " : "";
	char err[1024];
	int ret;

	cmd = cmd ? cmd : "";
	if (!path) {
		fprintf(stderr, "docvault%s%s: no configuration given (-c FILE)\n", sep, cmd);
		return -EINVAL;
	}
	ret = config_load(path, cfg, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "docvault%s%s: %s\n", sep, cmd, err);
		return ret;
	}
	if (cfg->log.level) {
		enum log_level lvl;

		if (log_parse_level(cfg->log.level, &lvl) == 0)
			log_set_level(lvl);
	}
	return 0;
}

int cmd_open_meta(const char *cmd, const struct dv_config *cfg, int pool, struct meta **m)
{
	unsigned char secret[CHECKSUM_SECRET_SIZE];
	char err[1024];
	int ret = meta_open(cfg->database.conninfo, pool, m, err, sizeof(err));

	if (!ret)
		ret = meta_check(*m, secret, err, sizeof(err));
	if (ret)
		fprintf(stderr, "docvault %s: %s\n", cmd, err);
	return ret;
}

int cmd_print_doc_counts(struct meta *m, FILE *out)
{
	struct meta_docs_counts c;
	int ret = meta_docs_counts(m, &c);

	if (ret)
		return ret;
	fprintf(out,
		"processing:    %" PRIu64 " ready, %" PRIu64 " waiting to retry, %" PRIu64
		" in progress, %" PRIu64 " completed, %" PRIu64 " failed\n",
		c.ready, c.waiting, c.processing, c.completed, c.failed);
	if (c.ready + c.waiting + c.processing)
		fprintf(out, "oldest job:    queued %.0f s ago\n", c.oldest_s);
	return 0;
}

int cmd_worker(int argc, char **argv)
{
	enum { OPT_ONCE = 256, OPT_TMPDIR };
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"threads", required_argument, NULL, 't'},
	    {"once", no_argument, NULL, OPT_ONCE},
	    {"tmpdir", required_argument, NULL, OPT_TMPDIR},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct dv_config cfg = {0};
	struct meta *m = NULL;
	struct store *st = NULL;
	struct jobs *j = NULL;
	struct jobs_stats s;
	const char *config = NULL, *tmpdir = NULL;
	char host[256], name[300], err[1024];
	long nthreads = sysconf(_SC_NPROCESSORS_ONLN);
	bool once = false;
	sigset_t sigs, old;
	int opt, ret, status = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+c:t:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 't': {
			char *end;

			nthreads = strtol(optarg, &end, 10);
			if (*end || end == optarg || nthreads < 1 || nthreads > JOBS_THREADS_MAX) {
				fprintf(
				    stderr,
				    "docvault worker: --threads wants a number from 1 to %d, not "
				    "\"%s\"\n",
				    JOBS_THREADS_MAX, optarg);
				return 2;
			}
			break;
		}
		case OPT_ONCE:
			once = true;
			break;
		case OPT_TMPDIR:
			tmpdir = optarg;
			break;
		case 'h':
			fputs(cmd_worker_usage, stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr,
			"docvault worker: unexpected argument \"%s\" (see docvault help "
			"worker)\n",
			argv[optind]);
		return 2;
	}
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > JOBS_THREADS_MAX)
		nthreads = JOBS_THREADS_MAX;
	if (cmd_load_config("worker", config, &cfg))
		goto out;
	/* one connection per thread, one for the housekeeper, one spare */
	if (cmd_open_meta("worker", &cfg, (int)nthreads + 2, &m))
		goto out;
	ret = store_open(&cfg, &st, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "docvault worker: %s\n", err);
		goto out;
	}
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "unknown-host");
	host[sizeof(host) - 1] = '\0';
	snprintf(name, sizeof(name), "%s:%d", host, (int)getpid());

	/* before any thread exists: signals come to sigwait below, never to a worker */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	ret = once ? jobs_start_drain(&cfg, m, st, tmpdir, (int)nthreads, name, &j)
		   : jobs_start(&cfg, m, st, tmpdir, (int)nthreads, name, &j);
	if (ret) {
		fprintf(stderr, "docvault worker: cannot start the workers: %s\n", strerror(-ret));
		goto unblock;
	}
	for (;;) {
		struct timespec tick = {0, 200 * 1000 * 1000};
		int sig = once ? sigtimedwait(&sigs, NULL, &tick) : sigwaitinfo(&sigs, NULL);

		if (sig > 0) {
			log_info("worker: %s: stopping after the documents in progress",
				 strsignal(sig));
			break;
		}
		if (once && jobs_wait(j, 0) == 0)
			break;
	}
	jobs_get_stats(j, &s);
	jobs_stop(j);
	if (once)
		printf("docvault worker: %" PRIu64 " completed, %" PRIu64 " failed, %" PRIu64
		       " to retry, %" PRIu64 " dropped (changed meanwhile)\n",
		       s.completed, s.failed, s.retried, s.stale);
	status = once && s.errors ? 1 : 0;
unblock:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
out:
	store_close(st);
	meta_close(m);
	config_free(&cfg);
	return status;
}

/* ---- duplicates ------------------------------------------------------------------------- */

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void cmd_unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/*
 * If path is on a mounted docvault, sets mnt to the mount point and vpath
 * to the path inside the vault ("/" for the mount point) and returns true.
 */
static bool cmd_on_mount(const char *path, char *mnt, size_t mntlen, char *vpath, size_t vlen)
{
	char real[PATH_MAX], *line = NULL;
	size_t cap = 0, best = 0;
	FILE *f;

	if (!realpath(path, real))
		return false;
	f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return false;
	while (getline(&line, &cap, f) > 0) {
		char *fields[12], *save = NULL, *tok, *dash;
		int n = 0;
		size_t len;

		dash = strstr(line, " - ");
		if (!dash || strncmp(dash + 3, "fuse.docvault ", 14) != 0)
			continue;
		for (tok = strtok_r(line, " ", &save); tok && n < 12;
		     tok = strtok_r(NULL, " ", &save))
			fields[n++] = tok;
		if (n < 5)
			continue;
		cmd_unescape(fields[4]);
		len = strlen(fields[4]);
		if (len <= best || strncmp(real, fields[4], len) != 0 ||
		    (real[len] != '/' && real[len] != '\0' && len != 1))
			continue;
		best = len;
		snprintf(mnt, mntlen, "%s", len == 1 ? "" : fields[4]);
		snprintf(vpath, vlen, "%s", real[len] ? real + (len == 1 ? 0 : len) : "/");
	}
	free(line);
	fclose(f);
	return best > 0;
}

struct cmd_dups {
	const char *mnt; /* printed before each path ("" for vault paths) */
	unsigned char sum[16];
	uint64_t size;
	char **paths;
	size_t n, cap;
	uint64_t groups;
	int err;
};

static void cmd_dups_flush(struct cmd_dups *d)
{
	char hex[CHECKSUM_HEX_SIZE];

	if (d->n == 0)
		return;
	checksum_hex16(d->sum, hex);
	printf("%sxxh128:%s  %" PRIu64 " bytes, %zu copies\n", d->groups ? "\n" : "", hex, d->size,
	       d->n);
	for (size_t i = 0; i < d->n; i++) {
		printf("%s%s\n", d->mnt, d->paths[i]);
		free(d->paths[i]);
	}
	d->n = 0;
	d->groups++;
}

static int cmd_dups_row(void *arg, const unsigned char *checksum, uint64_t size, uint64_t ino,
			const char *path, size_t pathlen)
{
	struct cmd_dups *d = arg;

	(void)ino;
	if (d->n && memcmp(d->sum, checksum, 16) != 0)
		cmd_dups_flush(d);
	memcpy(d->sum, checksum, 16);
	d->size = size;
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 16;
		char **np = realloc(d->paths, ncap * sizeof(*np));

		if (!np) {
			d->err = -ENOMEM;
			return 1;
		}
		d->paths = np;
		d->cap = ncap;
	}
	d->paths[d->n] = strndup(path, pathlen);
	if (!d->paths[d->n]) {
		d->err = -ENOMEM;
		return 1;
	}
	d->n++;
	return 0;
}

int cmd_duplicates(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct dv_config cfg = {0};
	struct cmd_dups d = {.mnt = ""};
	struct meta *m = NULL;
	const char *config = NULL, *under = NULL;
	char mnt[PATH_MAX], vpath[PATH_MAX];
	int opt, ret, status = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'h':
			fputs(cmd_duplicates_usage, stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, "docvault duplicates: give at most one PATH (see docvault help "
				"duplicates)\n");
		return 2;
	}
	if (optind < argc) {
		under = argv[optind];
		if (cmd_on_mount(under, mnt, sizeof(mnt), vpath, sizeof(vpath))) {
			d.mnt = mnt;
			under = vpath;
		}
	}
	if (cmd_load_config("duplicates", config, &cfg))
		goto out;
	if (cmd_open_meta("duplicates", &cfg, 1, &m))
		goto out;
	ret = meta_docs_duplicates(m, under, cmd_dups_row, &d);
	if (ret >= 0 && d.err)
		ret = d.err;
	if (ret < 0) {
		fprintf(stderr, "docvault duplicates: cannot list the duplicates: %s\n",
			strerror(-ret));
		goto out;
	}
	cmd_dups_flush(&d);
	status = fflush(stdout) == 0 ? 0 : 1;
out:
	for (size_t i = 0; i < d.n; i++)
		free(d.paths[i]);
	free(d.paths);
	meta_close(m);
	config_free(&cfg);
	return status;
}
