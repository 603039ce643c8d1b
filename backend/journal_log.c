/*
 * journal_log.c - the journal's log of small records (see journal_log.h).
 *
 * State: the segments this process appends to (the last one takes the
 * appends; each counts its records not yet done), a table from a live
 * record's sequence to its segment, and the group-commit positions: bytes
 * appended by this process (pos) and bytes known durable (synced). One
 * thread at a time runs fdatasync for everybody waiting; a failed flush
 * breaks the log for good (the page cache can no longer be trusted to hold
 * what was written), and every later record takes the portable path.
 *
 * Threads: everything under l->lock, except the flush itself.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "docvault/checksum.h"
#include "docvault/log.h"
#include "journal_log.h"

#define JLOG_MAGIC  0x4c4a5644u /* "DVJL" */
#define JLOG_RECORD 1u
#define JLOG_DONE   2u

struct jlog_hdr {
	uint32_t magic;
	uint32_t type;
	uint64_t ino;
	uint64_t seq;
	uint64_t size;
	int64_t mtime;
	uint64_t data_hash;
	uint64_t hdr_hash; /* of the bytes above */
};

struct jlog_seg {
	uint64_t n; /* log.<n> */
	int fd;
	uint64_t size;
	uint64_t live; /* records not yet done */
};

struct jlog_live {
	uint64_t seq; /* 0: empty slot */
	uint64_t seg;
};

struct jlog {
	char *dir;
	int dirfd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct jlog_seg *segs; /* the last one takes appends */
	size_t nsegs, segcap;
	uint64_t next_n;
	uint64_t *old; /* segments of an earlier process, until replayed */
	size_t nold;
	uint64_t pos, synced;
	bool syncing, dirty;
	int broken;   /* a negative errno once the log cannot be trusted */
	bool failing; /* appends fail (a full disk): logged once, until one works */
	struct jlog_live *tab;
	size_t tabcap, tablen;
};

static const char jlog_zeros[8];

static uint64_t jlog_pad(uint64_t size)
{
	return (8 - (size & 7)) & 7;
}

static void jlog_hdr_seal(struct jlog_hdr *h)
{
	h->hdr_hash = checksum_xxh64(h, offsetof(struct jlog_hdr, hdr_hash));
}

static bool jlog_hdr_ok(const struct jlog_hdr *h)
{
	return h->magic == JLOG_MAGIC && (h->type == JLOG_RECORD || h->type == JLOG_DONE) &&
	       h->hdr_hash == checksum_xxh64(h, offsetof(struct jlog_hdr, hdr_hash)) &&
	       h->size <= JLOG_RECORD_MAX && (h->type == JLOG_RECORD || h->size == 0);
}

/* ---- the live table: open addressing, linear probing, backward-shift delete ---- */

static size_t jlog_slot(const struct jlog *l, uint64_t seq)
{
	return (size_t)((seq * 0x9e3779b97f4a7c15ull) >> 17) & (l->tabcap - 1);
}

static int jlog_tab_put(struct jlog *l, uint64_t seq, uint64_t seg)
{
	if ((l->tablen + 1) * 2 > l->tabcap) {
		size_t ncap = l->tabcap ? l->tabcap * 2 : 256;
		struct jlog_live *old = l->tab, *t = calloc(ncap, sizeof(*t));
		size_t ocap = l->tabcap;

		if (!t)
			return -ENOMEM;
		l->tab = t;
		l->tabcap = ncap;
		for (size_t i = 0; i < ocap; i++) {
			if (!old[i].seq)
				continue;
			size_t s = jlog_slot(l, old[i].seq);

			while (t[s].seq)
				s = (s + 1) & (ncap - 1);
			t[s] = old[i];
		}
		free(old);
	}
	size_t s = jlog_slot(l, seq);

	while (l->tab[s].seq)
		s = (s + 1) & (l->tabcap - 1);
	l->tab[s].seq = seq;
	l->tab[s].seg = seg;
	l->tablen++;
	return 0;
}

/* Removes seq; returns its segment number, or 0 when it was not logged. */
static uint64_t jlog_tab_take(struct jlog *l, uint64_t seq)
{
	size_t s, mask = l->tabcap - 1;
	uint64_t seg;

	if (!l->tabcap)
		return 0;
	for (s = jlog_slot(l, seq); l->tab[s].seq != seq; s = (s + 1) & mask)
		if (!l->tab[s].seq)
			return 0;
	seg = l->tab[s].seg;
	l->tab[s].seq = 0;
	l->tablen--;
	for (size_t j = (s + 1) & mask; l->tab[j].seq; j = (j + 1) & mask) {
		size_t want = jlog_slot(l, l->tab[j].seq);

		/* move j back into the hole at s unless its home lies in (s, j] */
		if ((j > s && (want <= s || want > j)) || (j < s && want <= s && want > j)) {
			l->tab[s] = l->tab[j];
			l->tab[j].seq = 0;
			s = j;
		}
	}
	return seg;
}

/* ---- segments ---- */

static int jlog_seg_name(char *buf, size_t len, uint64_t n)
{
	return (size_t)snprintf(buf, len, "log.%" PRIu64, n) < len ? 0 : -ENAMETOOLONG;
}

static struct jlog_seg *jlog_seg_find(struct jlog *l, uint64_t n)
{
	for (size_t i = 0; i < l->nsegs; i++)
		if (l->segs[i].n == n)
			return &l->segs[i];
	return NULL;
}

/* Starts a new segment for appends. Caller holds the lock. */
static int jlog_seg_new(struct jlog *l)
{
	struct jlog_seg *cur = l->nsegs ? &l->segs[l->nsegs - 1] : NULL;
	char name[64];
	int fd, ret;

	if (l->nsegs == l->segcap) {
		size_t ncap = l->segcap ? l->segcap * 2 : 4;
		struct jlog_seg *s = realloc(l->segs, ncap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		l->segs = s;
		l->segcap = ncap;
		cur = l->nsegs ? &l->segs[l->nsegs - 1] : NULL;
	}
	/* everything in the segment before must be durable before we leave it */
	if (cur && l->synced < l->pos) {
		if (fdatasync(cur->fd) < 0) {
			ret = -errno;
			log_error("journal: cannot flush %s/log.%" PRIu64 ": %s", l->dir, cur->n,
				  strerror(errno));
			return ret;
		}
		l->synced = l->pos;
	}
	ret = jlog_seg_name(name, sizeof(name), l->next_n);
	if (ret)
		return ret;
	fd = openat(l->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		log_error("journal: cannot create %s/%s: %s", l->dir, name, strerror(errno));
		return ret;
	}
	/* the segment's name must outlive a crash as much as its bytes */
	if (fsync(l->dirfd) < 0) {
		ret = -errno;
		log_error("journal: cannot sync directory %s: %s", l->dir, strerror(errno));
		close(fd);
		unlinkat(l->dirfd, name, 0);
		return ret;
	}
	l->segs[l->nsegs++] = (struct jlog_seg){.n = l->next_n++, .fd = fd};
	return 0;
}

/* Appends one entry to the current segment. Caller holds the lock. */
static int jlog_write(struct jlog *l, struct jlog_hdr *h, const void *data)
{
	uint64_t len = sizeof(*h) + h->size + jlog_pad(h->size);
	struct jlog_seg *cur = l->nsegs ? &l->segs[l->nsegs - 1] : NULL;
	struct iovec iov[3];
	ssize_t n;
	int ret;

	if (!cur || (cur->size > 0 && cur->size + len > JLOG_SEGMENT_MAX)) {
		ret = jlog_seg_new(l);
		if (ret)
			return ret;
		cur = &l->segs[l->nsegs - 1];
	}
	jlog_hdr_seal(h);
	iov[0] = (struct iovec){.iov_base = h, .iov_len = sizeof(*h)};
	iov[1] = (struct iovec){.iov_base = (void *)data, .iov_len = h->size};
	iov[2] = (struct iovec){.iov_base = (void *)jlog_zeros, .iov_len = jlog_pad(h->size)};
	n = pwritev(cur->fd, iov, 3, (off_t)cur->size);
	if (n != (ssize_t)len) {
		ret = n < 0 ? -errno : -ENOSPC;
		if (!l->failing)
			log_warn("journal: cannot append to %s/log.%" PRIu64
				 ": %s; closes flush each file meanwhile",
				 l->dir, cur->n, strerror(-ret));
		l->failing = true;
		return ret;
	}
	if (l->failing)
		log_info("journal: %s/log.%" PRIu64 " takes appends again", l->dir, cur->n);
	l->failing = false;
	cur->size += len;
	l->pos += len;
	return 0;
}

/* Waits until the log is durable up to pos, flushing it if nobody is. */
static int jlog_sync_locked(struct jlog *l, uint64_t pos)
{
	while (l->synced < pos && !l->broken) {
		if (l->syncing) {
			pthread_cond_wait(&l->cond, &l->lock);
			continue;
		}
		uint64_t target = l->pos;
		int fd = l->segs[l->nsegs - 1].fd, r;

		l->syncing = true;
		l->dirty = false;
		pthread_mutex_unlock(&l->lock);
		r = fdatasync(fd) < 0 ? -errno : 0;
		pthread_mutex_lock(&l->lock);
		l->syncing = false;
		if (r) {
			log_error("journal: cannot flush the log in %s: %s; closes now flush "
				  "each file",
				  l->dir, strerror(-r));
			l->broken = r;
		} else if (target > l->synced) {
			l->synced = target;
		}
		pthread_cond_broadcast(&l->cond);
	}
	return l->synced >= pos ? 0 : l->broken;
}

int jlog_append(struct jlog *l, uint64_t ino, uint64_t seq, int64_t mtime, const void *data,
		size_t size)
{
	struct jlog_hdr h = {.magic = JLOG_MAGIC,
			     .type = JLOG_RECORD,
			     .ino = ino,
			     .seq = seq,
			     .size = size,
			     .mtime = mtime,
			     .data_hash = checksum_xxh64(data, size)};
	struct jlog_seg *s;
	uint64_t seg;
	int ret;

	if (size > JLOG_RECORD_MAX)
		return -EFBIG;
	pthread_mutex_lock(&l->lock);
	ret = l->broken;
	if (!ret)
		ret = jlog_write(l, &h, data);
	if (!ret) {
		seg = l->segs[l->nsegs - 1].n;
		/* without room in the table it is never marked done: its segment stays */
		l->segs[l->nsegs - 1].live++;
		bool tracked = jlog_tab_put(l, seq, seg) == 0;

		ret = jlog_sync_locked(l, l->pos);
		if (ret && tracked && jlog_tab_take(l, seq) == seg && (s = jlog_seg_find(l, seg)))
			s->live--;
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

void jlog_done(struct jlog *l, uint64_t ino, uint64_t seq)
{
	struct jlog_hdr h = {.magic = JLOG_MAGIC, .type = JLOG_DONE, .ino = ino, .seq = seq};
	struct jlog_seg *s;
	uint64_t seg;

	pthread_mutex_lock(&l->lock);
	seg = jlog_tab_take(l, seq);
	if (seg && (s = jlog_seg_find(l, seg))) {
		s->live--;
		if (!l->broken && jlog_write(l, &h, NULL) == 0)
			l->dirty = true;
	}
	pthread_mutex_unlock(&l->lock);
}

void jlog_tidy(struct jlog *l)
{
	pthread_mutex_lock(&l->lock);
	if (l->dirty && !l->broken)
		jlog_sync_locked(l, l->pos);
	/*
	 * A segment nothing refers to goes, unless it takes the appends, and
	 * only from the front: a done mark lands in a later segment than its
	 * record, and must outlive the record's segment. Not while a flush
	 * runs: it may be on the fd of a segment that just stopped taking
	 * appends.
	 */
	while (l->nsegs > 1 && !l->segs[0].live && !l->syncing) {
		size_t i = 0;
		char name[64];

		if (jlog_seg_name(name, sizeof(name), l->segs[i].n) == 0 &&
		    unlinkat(l->dirfd, name, 0) < 0 && errno != ENOENT)
			log_warn("journal: cannot remove %s/%s: %s", l->dir, name, strerror(errno));
		close(l->segs[i].fd);
		memmove(&l->segs[i], &l->segs[i + 1], (l->nsegs - i - 1) * sizeof(l->segs[0]));
		l->nsegs--;
	}
	pthread_mutex_unlock(&l->lock);
}

/* ---- open and replay ---- */

static int jlog_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int jlog_open(const char *dir, int dirfd, struct jlog **out)
{
	struct jlog *l = calloc(1, sizeof(*l));
	struct dirent *de;
	size_t cap = 0;
	int fd;
	DIR *d;

	*out = NULL;
	if (!l || !(l->dir = strdup(dir))) {
		free(l);
		return -ENOMEM;
	}
	l->dirfd = dirfd;
	l->next_n = 1;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	fd = dup(dirfd);
	if (fd < 0 || !(d = fdopendir(fd))) {
		int ret = -errno;

		if (fd >= 0)
			close(fd);
		log_error("journal: cannot read directory %s: %s", dir, strerror(-ret));
		jlog_close(l);
		return ret;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		char *end;
		uint64_t n;

		if (strncmp(de->d_name, "log.", 4) != 0 || de->d_name[4] < '0' ||
		    de->d_name[4] > '9')
			continue;
		errno = 0;
		n = strtoull(de->d_name + 4, &end, 10);
		if (errno || *end)
			continue;
		if (l->nold == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			uint64_t *o = realloc(l->old, ncap * sizeof(*o));

			if (!o) {
				closedir(d);
				jlog_close(l);
				return -ENOMEM;
			}
			l->old = o;
			cap = ncap;
		}
		l->old[l->nold++] = n;
		if (n >= l->next_n)
			l->next_n = n + 1;
	}
	closedir(d);
	if (l->nold)
		qsort(l->old, l->nold, sizeof(*l->old), jlog_u64_cmp);
	*out = l;
	return 0;
}

void jlog_close(struct jlog *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	if (l->dirty && !l->broken)
		jlog_sync_locked(l, l->pos);
	pthread_mutex_unlock(&l->lock);
	for (size_t i = 0; i < l->nsegs; i++)
		close(l->segs[i].fd);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	free(l->segs);
	free(l->old);
	free(l->tab);
	free(l->dir);
	free(l);
}

struct jlog_found {
	uint64_t ino, seq, size, data_hash, seg, off;
	int64_t mtime;
	bool done;
};

struct jlog_scan {
	struct jlog_found *recs;
	size_t n, cap;
};

static int jlog_found_cmp(const void *a, const void *b)
{
	const struct jlog_found *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Reads the valid entries of one old segment into sc (done marks as done). */
static int jlog_scan_seg(struct jlog *l, uint64_t n, int fd, struct jlog_scan *sc)
{
	unsigned char *buf = malloc(JLOG_RECORD_MAX);
	struct jlog_hdr h;
	uint64_t off = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t r = pread(fd, &h, sizeof(h), (off_t)off);

		if (r != (ssize_t)sizeof(h) || !jlog_hdr_ok(&h))
			break; /* the end, or a torn tail */
		if (h.type == JLOG_RECORD) {
			r = pread(fd, buf, h.size, (off_t)(off + sizeof(h)));
			if (r != (ssize_t)h.size || checksum_xxh64(buf, h.size) != h.data_hash)
				break;
		}
		if (sc->n == sc->cap) {
			size_t ncap = sc->cap ? sc->cap * 2 : 256;
			struct jlog_found *f = realloc(sc->recs, ncap * sizeof(*f));

			if (!f) {
				free(buf);
				return -ENOMEM;
			}
			sc->recs = f;
			sc->cap = ncap;
		}
		sc->recs[sc->n++] = (struct jlog_found){.ino = h.ino,
							.seq = h.seq,
							.size = h.size,
							.data_hash = h.data_hash,
							.seg = n,
							.off = off + sizeof(h),
							.mtime = h.mtime,
							.done = h.type == JLOG_DONE};
		off += sizeof(h) + h.size + jlog_pad(h.size);
	}
	free(buf);
	(void)l;
	return 0;
}

/* True when the file `name` already holds exactly these bytes. */
static bool jlog_file_matches(struct jlog *l, const char *name, const void *data, uint64_t size)
{
	unsigned char *buf;
	struct stat st;
	bool same = false;
	int fd = openat(l->dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == size && (buf = malloc(size + 1))) {
		same = pread(fd, buf, size, 0) == (ssize_t)size && memcmp(buf, data, size) == 0;
		free(buf);
	}
	if (same && fsync(fd) < 0)
		same = false;
	close(fd);
	return same;
}

/* Writes a logged record back as its own durable file. */
static int jlog_restore(struct jlog *l, const struct jlog_found *f, const void *data)
{
	char name[64], tmp[80];
	struct timespec ts[2];
	int fd, ret = 0;

	snprintf(name, sizeof(name), "%" PRIu64 ".%" PRIu64, f->ino, f->seq);
	if (jlog_file_matches(l, name, data, f->size))
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.open", name);
	fd = openat(l->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		log_error("journal: cannot restore %s/%s from the log: %s", l->dir, name,
			  strerror(errno));
		return ret;
	}
	ts[0].tv_sec = f->mtime / 1000000000;
	ts[0].tv_nsec = f->mtime % 1000000000;
	if (ts[0].tv_nsec < 0) {
		ts[0].tv_sec--;
		ts[0].tv_nsec += 1000000000;
	}
	ts[1] = ts[0];
	if (pwrite(fd, data, f->size, 0) != (ssize_t)f->size || futimens(fd, ts) < 0 ||
	    fsync(fd) < 0)
		ret = errno ? -errno : -EIO;
	close(fd);
	if (!ret && renameat(l->dirfd, tmp, l->dirfd, name) < 0)
		ret = -errno;
	if (ret) {
		log_error("journal: cannot restore %s/%s from the log: %s", l->dir, name,
			  strerror(-ret));
		unlinkat(l->dirfd, tmp, 0);
		return ret;
	}
	log_info("journal: restored %s/%s (%" PRIu64 " bytes) from the log", l->dir, name, f->size);
	return 0;
}

int jlog_replay(struct jlog *l)
{
	struct jlog_scan sc = {0};
	unsigned char *buf = NULL;
	int *fds = NULL, ret = 0;
	size_t kept = 0, nold = l->nold;

	if (!nold)
		return 0;
	fds = calloc(nold, sizeof(*fds));
	for (size_t i = 0; fds && i < nold; i++)
		fds[i] = -1;
	buf = malloc(JLOG_RECORD_MAX + 1);
	if (!fds || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nold; i++) {
		char name[64];

		if (jlog_seg_name(name, sizeof(name), l->old[i]))
			continue;
		fds[i] = openat(l->dirfd, name, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0) {
			ret = -errno;
			log_error("journal: cannot read %s/%s: %s", l->dir, name, strerror(errno));
			goto out;
		}
		ret = jlog_scan_seg(l, l->old[i], fds[i], &sc);
		if (ret)
			goto out;
	}
	/* a record and its done mark share the sequence: sorted, they meet */
	if (sc.n)
		qsort(sc.recs, sc.n, sizeof(*sc.recs), jlog_found_cmp);
	for (size_t i = 0; i < sc.n;) {
		size_t j = i;
		bool done = false;
		const struct jlog_found *rec = NULL;

		for (; j < sc.n && sc.recs[j].seq == sc.recs[i].seq; j++) {
			if (sc.recs[j].done)
				done = true;
			else
				rec = &sc.recs[j];
		}
		i = j;
		if (done || !rec)
			continue;
		for (size_t k = 0; k < l->nold; k++) {
			if (l->old[k] != rec->seg)
				continue;
			if (pread(fds[k], buf, rec->size, (off_t)rec->off) != (ssize_t)rec->size) {
				ret = -EIO;
				log_error("journal: cannot read back log.%" PRIu64 " in %s",
					  rec->seg, l->dir);
				goto out;
			}
			ret = jlog_restore(l, rec, buf);
			if (ret)
				goto out;
			kept++;
		}
	}
	if (fsync(l->dirfd) < 0) {
		ret = -errno;
		log_error("journal: cannot sync directory %s: %s", l->dir, strerror(errno));
		goto out;
	}
	/* every pending record is its own durable file now: the log has done its job */
	for (size_t i = 0; i < l->nold; i++) {
		char name[64];

		if (jlog_seg_name(name, sizeof(name), l->old[i]) == 0 &&
		    unlinkat(l->dirfd, name, 0) < 0 && errno != ENOENT)
			log_warn("journal: cannot remove %s/%s: %s", l->dir, name, strerror(errno));
	}
	if (kept)
		log_info("journal: %zu logged record(s) pending from the last run", kept);
	l->nold = 0;
out:
	for (size_t i = 0; fds && i < nold; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	free(buf);
	free(sc.recs);
	return ret;
}
