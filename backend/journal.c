/*
 * journal.c - the write-back journal in CACHE_DIR/journal (see journal.h).
 *
 * One file per record, named for its inode and sequence: the name is the
 * record, the file is the content, and its mtime is the mtime to commit, so
 * a record is made durable by the fsyncs that the content needs anyway
 * (file, then directory) and nothing else has to be kept in step with it.
 * Sequences are nanoseconds of the real-time clock, forced to grow within
 * the process, so a newer version of an inode sorts after an older one
 * across restarts too.
 *
 * Threads: the directory fd and the sequence are the only shared state
 * (the sequence under a mutex).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "docvault/journal.h"
#include "docvault/log.h"
#include "journal_log.h"

#define JOURNAL_NOTE_MAX 512

struct journal {
	char *dir; /* CACHE_DIR/journal */
	int dirfd;
	struct jlog *log; /* small records: see journal_log.h */
	pthread_mutex_t lock;
	uint64_t last_seq; /* protected by lock */
};

static uint64_t journal_seq(struct journal *j)
{
	struct timespec ts;
	uint64_t s;

	clock_gettime(CLOCK_REALTIME, &ts);
	s = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	pthread_mutex_lock(&j->lock);
	if (s <= j->last_seq)
		s = j->last_seq + 1;
	j->last_seq = s;
	pthread_mutex_unlock(&j->lock);
	return s;
}

/* Parses "<ino>.<seq>" with an optional suffix; returns the suffix or NULL. */
static const char *journal_parse(const char *name, uint64_t *ino, uint64_t *seq)
{
	char *end;

	if (name[0] < '0' || name[0] > '9')
		return NULL;
	errno = 0;
	*ino = strtoull(name, &end, 10);
	if (errno || *end != '.' || end[1] < '0' || end[1] > '9')
		return NULL;
	*seq = strtoull(end + 1, &end, 10);
	if (errno)
		return NULL;
	return end;
}

static int journal_fsync_dir(struct journal *j)
{
	if (fsync(j->dirfd) < 0) {
		int ret = -errno;

		log_error("cannot sync journal directory %s: %s", j->dir, strerror(errno));
		return ret;
	}
	return 0;
}

int journal_open(const char *cache_dir, struct journal **out, char *err, size_t errlen)
{
	struct journal *j = calloc(1, sizeof(*j));
	int ret;

	*out = NULL;
	if (!j || asprintf(&j->dir, "%s/journal", cache_dir) < 0) {
		free(j);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	j->dirfd = -1;
	pthread_mutex_init(&j->lock, NULL);
	if (mkdir(j->dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;

		snprintf(err, errlen, "cannot create journal directory %s: %s", j->dir,
			 strerror(errno));
		journal_close(j);
		return ret;
	}
	j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dirfd < 0) {
		ret = -errno;

		snprintf(err, errlen, "cannot open journal directory %s: %s", j->dir,
			 strerror(errno));
		journal_close(j);
		return ret;
	}
	ret = jlog_open(j->dir, j->dirfd, &j->log);
	if (ret) {
		snprintf(err, errlen, "cannot open the journal log in %s: %s", j->dir,
			 strerror(-ret));
		journal_close(j);
		return ret;
	}
	*out = j;
	return 0;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	jlog_close(j->log);
	if (j->dirfd >= 0)
		close(j->dirfd);
	pthread_mutex_destroy(&j->lock);
	free(j->dir);
	free(j);
}

int journal_staging_new(struct journal *j, uint64_t ino, int *fd, char **path)
{
	char *p;

	if (asprintf(&p, "%s/%" PRIu64 ".%" PRIu64 ".open", j->dir, ino, journal_seq(j)) < 0)
		return -ENOMEM;
	*fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (*fd < 0) {
		int ret = -errno;

		log_error("cannot create staging file %s: %s", p, strerror(errno));
		free(p);
		return ret;
	}
	*path = p;
	return 0;
}

/* The inode and sequence of a record's path ("DIR/<ino>.<seq>[suffix]"). */
static bool journal_ids(const char *path, uint64_t *ino, uint64_t *seq)
{
	const char *base = strrchr(path, '/');

	return journal_parse(base ? base + 1 : path, ino, seq) != NULL;
}

/*
 * The fast way for a small record: its bytes appended to the log, one
 * flush shared with every close waiting at the same time. Returns 0, or a
 * negative errno to take the portable way instead.
 */
static int journal_seal_logged(struct journal *j, int fd, const char *path, uint64_t size,
			       int64_t mtime)
{
	uint64_t ino, seq;
	void *buf;
	int ret;

	if (size > JLOG_RECORD_MAX || !journal_ids(path, &ino, &seq))
		return -EFBIG;
	buf = malloc(size ? size : 1);
	if (!buf)
		return -ENOMEM;
	if (pread(fd, buf, size, 0) != (ssize_t)size) {
		free(buf);
		return -EIO;
	}
	ret = jlog_append(j->log, ino, seq, mtime, buf, size);
	free(buf);
	return ret;
}

int journal_seal(struct journal *j, int fd, char **path, uint64_t size, int64_t mtime)
{
	struct timespec ts[2];
	char *sealed;
	size_t len = strlen(*path);
	uint64_t ino, seq;
	bool logged;
	int ret;

	if (len < 5 || strcmp(*path + len - 5, ".open") != 0)
		return -EINVAL; /* sealed already */
	sealed = strndup(*path, len - 5);
	if (!sealed)
		return -ENOMEM;
	ts[0].tv_sec = mtime / 1000000000;
	ts[0].tv_nsec = mtime % 1000000000;
	if (ts[0].tv_nsec < 0) {
		ts[0].tv_sec--;
		ts[0].tv_nsec += 1000000000;
	}
	ts[1] = ts[0];
	if (ftruncate(fd, (off_t)size) < 0 || futimens(fd, ts) < 0) {
		ret = -errno;
		log_error("cannot seal staging file %s: %s", *path, strerror(errno));
		free(sealed);
		return ret;
	}
	logged = journal_seal_logged(j, fd, *path, size, mtime) == 0;
	if (!logged && fsync(fd) < 0) {
		ret = -errno;
		log_error("cannot make staging file %s durable: %s", *path, strerror(errno));
		free(sealed);
		return ret;
	}
	if (rename(*path, sealed) < 0) {
		ret = -errno;
		log_error("cannot seal %s as %s: %s", *path, sealed, strerror(errno));
		if (logged && journal_ids(sealed, &ino, &seq))
			jlog_done(j->log, ino, seq);
		free(sealed);
		return ret;
	}
	free(*path);
	*path = sealed;
	/* logged: durable already; else the record is the name, durable with the directory */
	return logged ? 0 : journal_fsync_dir(j);
}

void journal_set_mtime(struct journal *j, const char *path, int64_t mtime)
{
	struct timespec ts[2];

	(void)j;
	ts[0].tv_sec = mtime / 1000000000;
	ts[0].tv_nsec = mtime % 1000000000;
	if (ts[0].tv_nsec < 0) {
		ts[0].tv_sec--;
		ts[0].tv_nsec += 1000000000;
	}
	ts[1] = ts[0];
	if (utimensat(AT_FDCWD, path, ts, 0) < 0 && errno != ENOENT)
		log_warn("cannot record the new mtime on %s: %s", path, strerror(errno));
}

void journal_note(struct journal *j, const char *path, const char *reason)
{
	char *note;
	int fd;

	(void)j;
	if (asprintf(&note, "%s.err", path) < 0)
		return;
	if (!reason) {
		unlink(note);
		free(note);
		return;
	}
	fd = open(note, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		size_t len = strnlen(reason, JOURNAL_NOTE_MAX - 1);

		if (write(fd, reason, len) < 0 || write(fd, "\n", 1) < 0)
			log_warn("cannot write %s: %s", note, strerror(errno));
		close(fd);
	}
	free(note);
}

void journal_release(struct journal *j, const char *path)
{
	uint64_t ino, seq;

	if (journal_ids(path, &ino, &seq))
		jlog_done(j->log, ino, seq);
	journal_note(j, path, NULL);
}

void journal_forget(struct journal *j, const char *path)
{
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("cannot remove committed journal record %s: %s", path, strerror(errno));
	journal_release(j, path);
}

int journal_sync_all(struct journal *j)
{
	if (syncfs(j->dirfd) < 0) {
		int ret = -errno;

		log_error("cannot flush the journal in %s: %s", j->dir, strerror(errno));
		return ret;
	}
	return 0;
}

void journal_tidy(struct journal *j)
{
	jlog_tidy(j->log);
}

/* Reads a record's note (the first line), into buf; returns buf or NULL. */
static const char *journal_read_note(int dirfd, const char *name, char *buf, size_t len)
{
	char note[300];
	ssize_t n;
	int fd;

	if ((size_t)snprintf(note, sizeof(note), "%s.err", name) >= sizeof(note))
		return NULL;
	fd = openat(dirfd, note, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

struct journal_rec {
	uint64_t ino, seq;
	char name[64];
};

static int journal_rec_cmp(const void *a, const void *b)
{
	const struct journal_rec *x = a, *y = b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int journal_rec_seq_cmp(const void *a, const void *b)
{
	const struct journal_rec *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Lists the sealed records of the directory open as dirfd. With `tidy`,
 * staging files and notes of missing records are removed. *out is
 * malloc'ed, sorted by inode then sequence.
 */
static int journal_list(int dirfd, const char *dir, bool tidy, struct journal_rec **out, size_t *n)
{
	struct journal_rec *recs = NULL;
	size_t len = 0, cap = 0;
	struct dirent *de;
	int fd = dup(dirfd);
	DIR *d;

	*out = NULL;
	*n = 0;
	if (fd < 0 || !(d = fdopendir(fd))) {
		int ret = -errno;

		if (fd >= 0)
			close(fd);
		log_error("cannot read journal directory %s: %s", dir, strerror(-ret));
		return ret;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		uint64_t ino, seq;
		const char *suffix = journal_parse(de->d_name, &ino, &seq);

		if (!suffix)
			continue;
		if (*suffix) {
			if (tidy && !strcmp(suffix, ".open"))
				unlinkat(dirfd, de->d_name, 0);
			continue;
		}
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct journal_rec *r = realloc(recs, ncap * sizeof(*r));

			if (!r) {
				closedir(d);
				free(recs);
				return -ENOMEM;
			}
			recs = r;
			cap = ncap;
		}
		if (strlen(de->d_name) >= sizeof(recs[len].name))
			continue; /* not one of ours: two 20-digit numbers and a dot */
		recs[len].ino = ino;
		recs[len].seq = seq;
		memcpy(recs[len].name, de->d_name, strlen(de->d_name) + 1);
		len++;
	}
	closedir(d);
	if (len)
		qsort(recs, len, sizeof(*recs), journal_rec_cmp);
	*out = recs;
	*n = len;
	return 0;
}

static int journal_entry_of(int dirfd, const char *dir, const struct journal_rec *r,
			    int (*cb)(void *arg, const struct journal_entry *e), void *arg)
{
	struct journal_entry e = {.ino = r->ino, .seq = r->seq};
	char path[4096], note[JOURNAL_NOTE_MAX];
	struct stat st;

	if (fstatat(dirfd, r->name, &st, 0) < 0)
		return 0; /* committed meanwhile */
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, r->name) >= sizeof(path))
		return -ENAMETOOLONG;
	e.path = path;
	e.size = (uint64_t)st.st_size;
	e.mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	e.error = journal_read_note(dirfd, r->name, note, sizeof(note));
	return cb(arg, &e);
}

int journal_recover(struct journal *j, int (*cb)(void *arg, const struct journal_entry *e),
		    void *arg)
{
	struct journal_rec *recs;
	size_t n, kept = 0;
	int ret = jlog_replay(j->log);

	if (!ret)
		ret = journal_list(j->dirfd, j->dir, true, &recs, &n);
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		/* an older version of the same inode: the newer one holds it all */
		if (i + 1 < n && recs[i + 1].ino == recs[i].ino) {
			char path[4096];

			if ((size_t)snprintf(path, sizeof(path), "%s/%s", j->dir, recs[i].name) >=
			    sizeof(path)) {
				log_error("journal: %s/%s: path too long; record left in place",
					  j->dir, recs[i].name);
				continue;
			}
			log_info("journal: %s is superseded by a newer version; dropped", path);
			journal_forget(j, path);
			continue;
		}
		recs[kept++] = recs[i];
	}
	if (kept)
		qsort(recs, kept, sizeof(*recs), journal_rec_seq_cmp);
	for (size_t i = 0; i < kept && !ret; i++) {
		pthread_mutex_lock(&j->lock);
		if (recs[i].seq > j->last_seq)
			j->last_seq = recs[i].seq;
		pthread_mutex_unlock(&j->lock);
		ret = journal_entry_of(j->dirfd, j->dir, &recs[i], cb, arg);
	}
	free(recs);
	return ret;
}

int journal_scan(const char *cache_dir, int (*cb)(void *arg, const struct journal_entry *e),
		 void *arg)
{
	struct journal_rec *recs;
	char dir[4096];
	size_t n;
	int dirfd, ret;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/journal", cache_dir) >= sizeof(dir))
		return -ENAMETOOLONG;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	ret = journal_list(dirfd, dir, false, &recs, &n);
	for (size_t i = 0; !ret && i < n; i++)
		ret = journal_entry_of(dirfd, dir, &recs[i], cb, arg);
	free(recs);
	close(dirfd);
	return ret;
}
