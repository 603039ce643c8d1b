/*
 * vfs.c - POSIX semantics on the backend (see vfs.h). No FUSE types here.
 *
 * Open inodes: a hash table (protected by vfs->lock) of struct vfs_inode,
 * one per inode with open handles, refcounted by handles and by callers
 * that hold it for a moment. An inode's content state is protected by its
 * rwlock: readers share it, writers and commits take it exclusively.
 *
 * Content: a clean inode reads its blob through the cache (in->fd is the
 * cached copy). The first write, or a truncate, makes a staging file in the
 * cache (a copy of the blob's bytes) and the inode dirty; in->size is then
 * the size. A commit (at flush, i.e. every close(2), at fsync, and at once
 * for a truncate with no handle open) hashes the staging file, uploads it
 * unless the blob is known (dedup), and only then points the inode at it in
 * PostgreSQL: data before metadata. The staging file then becomes the
 * cached copy of the new blob. docs/design-commit.md tells the whole path.
 *
 * Orphans: an inode whose last name goes away while it is open here is
 * marked unlinked and freed at its last release; PostgreSQL records it as an
 * orphan of this session so a crash cannot leak it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "docvault/cache.h"
#include "docvault/cache_store.h"
#include "docvault/checksum.h"
#include "docvault/config.h"
#include "docvault/jobs.h"
#include "docvault/journal.h"
#include "docvault/log.h"
#include "docvault/meta.h"
#include "docvault/store.h"
#include "docvault/vfs.h"
#include "vfs_priv.h"

#define VFS_BUCKETS	    1024
#define VFS_DCACHE_BITS	    8 /* 256 kept directory rows */
#define VFS_DCACHE_SLOTS    (1 << VFS_DCACHE_BITS)
#define VFS_HEARTBEAT_S	    10
#define VFS_FREEQ_BATCH	    256
#define VFS_FREEQ_MAX	    65536
#define VFS_WRITEBACK_CHUNK (8u << 20) /* bytes: staging writeback started this often */

struct vfs_inode {
	uint64_t ino;
	int refs;      /* protected by vfs->lock */
	int handles;   /* open handles; protected by vfs->lock */
	bool unlinked; /* protected by vfs->lock */
	/*
	 * Its pending content was dropped as unreachable (unlinked, open
	 * nowhere); an open that still arrives (the kernel resolved the name
	 * before the unlink) gets ESTALE and looks the name up again.
	 * Protected by vfs->lock.
	 */
	bool dropped;
	struct vfs_inode *next;	 /* protected by vfs->lock */
	bool queued;		 /* in the upload queue; protected by vfs->qlock */
	struct vfs_inode *qnext; /* protected by vfs->qlock */
	/* a worker is committing this journal record; set under rw and qlock */
	char *uploading;
	/*
	 * The last row of a regular file this mount read or wrote, answered to
	 * getattr for as long as the kernel itself would cache it (attr_timeout)
	 * and no namespace change happened here since (vfs->attr_epoch); and
	 * until when the file is known to have no security.* or trusted.*
	 * attribute (created here), which answers the kernel's
	 * security.capability probe before a first write without a query.
	 * Protected by alock, never held with anything else.
	 */
	pthread_mutex_t alock;
	struct meta_attr attr;
	int64_t attr_until; /* CLOCK_MONOTONIC ns; 0: nothing kept */
	uint64_t attr_epoch;
	int64_t sysxattr_none_until;
	uint64_t sysxattr_epoch;
	pthread_rwlock_t rw; /* protects everything below */
	bool loaded;	     /* committed state below is known */
	bool has_content;    /* committed blob */
	unsigned char content[16];
	uint64_t version; /* PostgreSQL's version of the committed state above */
	uint64_t size;	  /* the file's size (committed, sealed or staged) */
	int64_t mtime;	  /* valid when pending (staging, sealed or uploading) */
	int fd; /* staging file, else newest sealed/uploading record (or its committed copy), or -1
		 */
	struct cache_blob *blob; /* the committed blob in the read cache, when fd is -1 */
	uint64_t staging_res;	 /* bytes of the cache's room reserved for the staging file */
	uint64_t sealed_res;	 /* ... for the sealed record */
	char *staging;		 /* path of the staging file being written, NULL when none */
	uint64_t wb_next;	 /* the disk has been asked to write the staging file below this */
	bool dirty;		 /* staging holds changes not yet sealed */
	char *sealed;		 /* newest sealed record not yet taken by a worker, or NULL */
	int64_t sealed_mtime;	 /* the mtime `sealed` commits */
	int64_t uploading_mtime; /* the mtime `uploading` commits */
	uint64_t uploading_res;	 /* cache room held by `uploading` */
	int commit_err;		 /* last commit failure, reported at flush/fsync */
};

struct vfs_done {
	char *path; /* the journal record */
	unsigned char keyed[16];
	uint64_t size;
	uint64_t res; /* cache room it held, given back when it leaves the journal */
};

struct vfs_handle {
	struct vfs_inode *in;
	int flags;
};

struct vfs_dslot {
	uint64_t ino;  /* 0: empty */
	uint64_t gen;  /* bumped by every keep and change of a directory mapped here */
	int64_t until; /* CLOCK_MONOTONIC ns the row is good until */
	struct meta_attr attr;
};

struct vfs {
	const struct dv_config *cfg;
	struct meta *meta;
	struct store *store;
	struct cache *cache;
	struct journal *journal;
	struct jobs *jobs; /* document processing threads, NULL when [processing] workers = 0 */
	struct store *jobs_store; /* what they read documents through: the read cache first */
	unsigned char secret[CHECKSUM_SECRET_SIZE];
	uint64_t sid;
	pthread_mutex_t lock;
	struct vfs_inode *table[VFS_BUCKETS]; /* protected by lock */
	uint64_t commit_gen;		      /* bumped by every content commit (atomic) */
	uint64_t attr_epoch;		      /* bumped by every namespace change (atomic) */
	int64_t attr_ttl;		      /* ns rows are kept per inode: attr_timeout */
	/*
	 * Directory rows this mount read, answered to getattr for attr_timeout
	 * (the kernel asks for a directory's attributes before every path walk
	 * through it once a create or rename there dropped its copy). A change
	 * this mount makes in a directory is applied to its row (mtime, ctime
	 * and nlink, as the SQL does) when nothing else touched the slot
	 * meanwhile, else the row is dropped. Slots are direct-mapped by inode;
	 * gen orders a keep against the changes that finished during its query.
	 */
	pthread_mutex_t dlock;
	struct vfs_dslot dcache[VFS_DCACHE_SLOTS]; /* protected by dlock */
	pthread_t heartbeat;
	bool heartbeat_running;
	/*
	 * Inodes that lost their last name and are not open here, freed in
	 * batches by the heartbeat thread so that unlink answers after one
	 * transaction, not two. They are orphans of this session meanwhile,
	 * so a crash cannot leak them. Protected by stop_lock.
	 */
	uint64_t *freeq;
	size_t freeq_len, freeq_cap;
	/*
	 * Journal records whose commit PostgreSQL has taken but maybe not yet
	 * flushed to its WAL (content commits are asynchronous, so that a
	 * commit holds the inode's row lock only for the statement): they
	 * leave the journal after the next meta_sync(), batched by the
	 * heartbeat thread every 100 ms or by fsync at once. Protected by
	 * stop_lock.
	 */
	struct vfs_done *doneq;
	size_t doneq_len, doneq_cap;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stopping; /* protected by stop_lock */
	/*
	 * The upload queue: inodes with a sealed journal record, each holding
	 * a reference while queued, served by the upload workers.
	 */
	pthread_mutex_t qlock;
	pthread_cond_t qcond;		 /* work arrived, or stop */
	pthread_cond_t qdone;		 /* an upload finished */
	struct vfs_inode *qhead, *qtail; /* protected by qlock */
	int qbusy;			 /* workers committing now; protected by qlock */
	bool qstop;			 /* protected by qlock */
	pthread_t *workers;
	int nworkers;
	/* DOCVAULT_FAULT_KILL=STEP[:N]: tests kill the daemon at a commit step */
	int fault_step;
	int fault_n;
	int fault_seen; /* atomic */
};

enum vfs_fault_step {
	VFS_FAULT_NONE,
	VFS_FAULT_SEALED,
	VFS_FAULT_UPLOAD,
	VFS_FAULT_UPLOADED,
	VFS_FAULT_COMMITTED
};

static int64_t vfs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timespec vfs_ts(int64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};

	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += 1000000000;
	}
	return ts;
}

static int64_t vfs_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static void vfs_stat_from(const struct meta_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blksize = 1 << 20;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	st->st_atim = vfs_ts(a->atime);
	st->st_mtim = vfs_ts(a->mtime);
	st->st_ctim = vfs_ts(a->ctime);
}

static int vfs_check_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return -EINVAL;
	if (len > META_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* ---- the open-inode table ---- */

static struct vfs_inode **vfs_slot_locked(struct vfs *v, uint64_t ino)
{
	struct vfs_inode **p = &v->table[ino % VFS_BUCKETS];

	while (*p && (*p)->ino != ino)
		p = &(*p)->next;
	return p;
}

/* Returns the table's inode for ino with a reference, creating it. */
static struct vfs_inode *vfs_inode_get(struct vfs *v, uint64_t ino)
{
	struct vfs_inode **p, *in;

	pthread_mutex_lock(&v->lock);
	p = vfs_slot_locked(v, ino);
	in = *p;
	if (!in) {
		in = calloc(1, sizeof(*in));
		if (in) {
			in->ino = ino;
			in->fd = -1;
			pthread_rwlock_init(&in->rw, NULL);
			pthread_mutex_init(&in->alock, NULL);
			*p = in;
		}
	}
	if (in)
		in->refs++;
	pthread_mutex_unlock(&v->lock);
	return in;
}

/* Returns the table's inode for ino with a reference, or NULL if not open. */
static struct vfs_inode *vfs_inode_find(struct vfs *v, uint64_t ino)
{
	struct vfs_inode *in;

	pthread_mutex_lock(&v->lock);
	in = *vfs_slot_locked(v, ino);
	if (in)
		in->refs++;
	pthread_mutex_unlock(&v->lock);
	return in;
}

static int64_t vfs_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Something in the namespace changed here: rows kept per inode may be stale. */
static void vfs_attr_epoch_bump(struct vfs *v)
{
	__atomic_add_fetch(&v->attr_epoch, 1, __ATOMIC_RELEASE);
}

static uint64_t vfs_attr_epoch(struct vfs *v)
{
	return __atomic_load_n(&v->attr_epoch, __ATOMIC_ACQUIRE);
}

/*
 * Keeps a row just read or written for a regular file (see struct
 * vfs_inode); epoch is vfs_attr_epoch() from before the query, so that a
 * change made meanwhile makes the row stale at once.
 */
static void vfs_attr_keep(struct vfs *v, struct vfs_inode *in, const struct meta_attr *a,
			  uint64_t epoch)
{
	if (v->attr_ttl <= 0 || !S_ISREG(a->mode))
		return;
	pthread_mutex_lock(&in->alock);
	in->attr = *a;
	in->attr_epoch = epoch;
	in->attr_until = vfs_mono() + v->attr_ttl;
	pthread_mutex_unlock(&in->alock);
}

/* The kept row, if still good: true and *a filled. */
static bool vfs_attr_kept(struct vfs *v, struct vfs_inode *in, struct meta_attr *a)
{
	bool ok;

	pthread_mutex_lock(&in->alock);
	ok = in->attr_until > vfs_mono() && in->attr_epoch == vfs_attr_epoch(v);
	if (ok)
		*a = in->attr;
	pthread_mutex_unlock(&in->alock);
	return ok;
}

static struct vfs_dslot *vfs_dslot(struct vfs *v, uint64_t ino)
{
	return &v->dcache[(ino * 0x9E3779B97F4A7C15ull) >> (64 - VFS_DCACHE_BITS)];
}

/* Taken before a query that reads or changes directory ino. */
static uint64_t vfs_dir_gen(struct vfs *v, uint64_t ino)
{
	struct vfs_dslot *d = vfs_dslot(v, ino);
	uint64_t gen;

	pthread_mutex_lock(&v->dlock);
	gen = d->gen;
	pthread_mutex_unlock(&v->dlock);
	return gen;
}

static bool vfs_dir_kept(struct vfs *v, uint64_t ino, struct meta_attr *a)
{
	struct vfs_dslot *d = vfs_dslot(v, ino);
	bool ok;

	if (v->attr_ttl <= 0)
		return false;
	pthread_mutex_lock(&v->dlock);
	ok = d->ino == ino && d->until > vfs_mono();
	if (ok)
		*a = d->attr;
	pthread_mutex_unlock(&v->dlock);
	return ok;
}

/* Keeps a directory's row read with gen = vfs_dir_gen() from before the query. */
static void vfs_dir_keep(struct vfs *v, const struct meta_attr *a, uint64_t gen)
{
	struct vfs_dslot *d = vfs_dslot(v, a->ino);

	if (v->attr_ttl <= 0 || !S_ISDIR(a->mode))
		return;
	pthread_mutex_lock(&v->dlock);
	if (d->gen == gen) {
		d->ino = a->ino;
		d->attr = *a;
		d->until = vfs_mono() + v->attr_ttl;
	}
	d->gen++;
	pthread_mutex_unlock(&v->dlock);
}

/*
 * This mount changed directory ino (gen from before the change): when
 * `exact` and its kept row is the one the change started from, the row
 * takes what the SQL did (mtime = ctime = now, nlink + dnlink) and keeps
 * its expiry; otherwise the row is dropped.
 */
static void vfs_dir_changed(struct vfs *v, uint64_t ino, uint64_t gen, bool exact, int64_t now,
			    int dnlink)
{
	struct vfs_dslot *d = vfs_dslot(v, ino);

	pthread_mutex_lock(&v->dlock);
	if (d->ino == ino) {
		if (exact && d->gen == gen && d->until > vfs_mono()) {
			d->attr.mtime = now;
			d->attr.ctime = now;
			d->attr.nlink = (uint32_t)((int64_t)d->attr.nlink + dnlink);
		} else {
			d->ino = 0;
		}
	}
	d->gen++;
	pthread_mutex_unlock(&v->dlock);
}

static void vfs_dir_forget(struct vfs *v, uint64_t ino)
{
	vfs_dir_changed(v, ino, 0, false, 0, 0);
}

static void vfs_free_drain(struct vfs *v);
static void vfs_done_drain(struct vfs *v);
static int vfs_upload_workers(const struct dv_config *cfg);
static void vfs_enqueue(struct vfs *v, struct vfs_inode *in);

/* True while the inode has content this mount has not committed yet. */
static bool vfs_pending_locked(const struct vfs_inode *in)
{
	return in->staging || in->sealed || in->uploading;
}

/* Drops a reference; the last one closes and, if unlinked, frees. */
static void vfs_inode_put(struct vfs *v, struct vfs_inode *in)
{
	uint64_t ino = in->ino;
	bool last, unlinked;

	pthread_mutex_lock(&v->lock);
	last = --in->refs == 0;
	unlinked = in->unlinked;
	if (last)
		*vfs_slot_locked(v, in->ino) = in->next;
	pthread_mutex_unlock(&v->lock);
	if (!last)
		return;
	/*
	 * Sealed records stay in the journal for the next mount (this is
	 * unmount with uploads left over); unsealed staging was never closed.
	 */
	if (in->staging && (unlinked || !in->dirty)) {
		unlink(in->staging);
		cache_dirty_add(v->cache, -(int64_t)in->staging_res);
	} else if (in->staging)
		log_error("inode %llu: written but never closed; staging file %s dropped at the "
			  "next mount",
			  (unsigned long long)ino, in->staging);
	if (in->fd >= 0)
		close(in->fd);
	cache_blob_put(in->blob);
	free(in->staging);
	free(in->sealed);
	pthread_rwlock_destroy(&in->rw);
	pthread_mutex_destroy(&in->alock);
	free(in);
	if (unlinked)
		meta_free(v->meta, ino);
}

/* Loads the committed state of an inode not yet known here. Caller holds in->rw (write). */
static int vfs_load_locked(struct vfs *v, struct vfs_inode *in, struct meta_attr *a)
{
	struct meta_attr tmp;
	int ret;

	if (in->loaded && vfs_pending_locked(in))
		return 0; /* this mount's newer content wins */
	if (!a) {
		ret = meta_getattr(v->meta, in->ino, &tmp);
		if (ret)
			return ret;
		a = &tmp;
	}
	if (in->loaded && a->version < in->version)
		return 0; /* read before this mount's own commit: ours is newer */
	if (in->loaded && in->has_content == a->has_content &&
	    (!a->has_content || memcmp(in->content, a->content, 16) == 0)) {
		in->size = a->size;
		in->version = a->version;
		return 0;
	}
	/* new committed content (another mount's, or first open): drop the old copy */
	if (!vfs_pending_locked(in)) {
		if (in->fd >= 0)
			close(in->fd);
		in->fd = -1;
		cache_blob_put(in->blob);
		in->blob = NULL;
	}
	in->has_content = a->has_content;
	memcpy(in->content, a->content, 16);
	in->size = a->size;
	in->version = a->version;
	in->loaded = true;
	return 0;
}

/*
 * Opens the journal record that holds a pending inode's content as in->fd.
 * Caller holds in->rw (write).
 */
static int vfs_record_fd_locked(struct vfs_inode *in)
{
	const char *record = in->sealed ? in->sealed : in->uploading;

	if (in->fd >= 0 || !record)
		return 0;
	in->fd = open(record, O_RDONLY | O_CLOEXEC);
	if (in->fd < 0) {
		int ret = -errno;

		log_error("inode %llu: cannot open journal record %s: %s",
			  (unsigned long long)in->ino, record, strerror(errno));
		return ret;
	}
	return 0;
}

/*
 * Gets the committed blob of a clean inode from the read cache (nothing is
 * fetched yet: reads fill it block by block). Caller holds in->rw (write).
 */
static int vfs_blob_locked(struct vfs *v, struct vfs_inode *in)
{
	unsigned char sha[32], *blocks = NULL;
	size_t blocks_len = 0;
	uint64_t size = 0;
	int ret;

	if (in->blob || !in->has_content)
		return 0;
	ret = meta_blob_find_blocks(v->meta, in->content, sha, &size, &blocks, &blocks_len);
	if (ret == -ENOENT) {
		char hex[CHECKSUM_HEX_SIZE];

		checksum_hex16(in->content, hex);
		log_error("inode %llu: its content %s is not recorded in dv_blobs; run fsck",
			  (unsigned long long)in->ino, hex);
		return -EIO;
	}
	if (ret)
		return ret;
	if (blocks && blocks_len != CHECKSUM_BLOCK_HASH * checksum_block_count(size)) {
		free(blocks); /* not a block list we can use: verify the whole blob */
		blocks = NULL;
	}
	ret = cache_blob_get(v->cache, v->store, in->content, size, blocks, &in->blob);
	free(blocks);
	return ret;
}

/*
 * Makes in->fd hold the current content's first `keep` bytes (to copy into
 * a staging file); *avail is how many it holds. Caller holds in->rw (write).
 */
static int vfs_content_fd_locked(struct vfs *v, struct vfs_inode *in, uint64_t keep,
				 uint64_t *avail)
{
	int ret;

	*avail = 0;
	if (in->fd >= 0 || vfs_pending_locked(in)) {
		ret = vfs_record_fd_locked(in);
		if (!ret)
			*avail = in->size;
		return ret;
	}
	if (!in->has_content)
		return 0;
	ret = vfs_blob_locked(v, in);
	if (!ret)
		ret = cache_blob_fill(in->blob, keep);
	if (ret)
		return ret;
	in->fd = dup(cache_blob_fd(in->blob));
	if (in->fd < 0)
		return -errno;
	*avail = in->size;
	return 0;
}

/* Asks the cache for room before a staging file grows to `end` bytes. */
static int vfs_reserve_locked(struct vfs *v, struct vfs_inode *in, uint64_t end)
{
	int ret;

	if (end <= in->staging_res)
		return 0;
	ret = cache_dirty_reserve(v->cache, end - in->staging_res);
	if (ret)
		return ret;
	in->staging_res = end;
	return 0;
}

/*
 * Makes the inode writable: a staging file holding the first `keep` bytes
 * of the current content. Caller holds in->rw (write).
 */
static int vfs_stage_locked(struct vfs *v, struct vfs_inode *in, uint64_t keep)
{
	uint64_t avail = 0;
	int fd, ret;
	char *path;

	if (in->staging)
		return 0;
	if (keep > 0) {
		ret = vfs_content_fd_locked(v, in, keep, &avail);
		if (ret)
			return ret;
	}
	if (keep > avail)
		keep = avail;
	in->staging_res = 0;
	ret = vfs_reserve_locked(v, in, keep);
	if (ret)
		return ret;
	ret = journal_staging_new(v->journal, in->ino, &fd, &path);
	if (ret) {
		cache_dirty_add(v->cache, -(int64_t)in->staging_res);
		in->staging_res = 0;
		return ret;
	}
	if (keep > 0) {
		loff_t ioff = 0, ooff = 0;
		uint64_t left = keep;

		while (left > 0) {
			ssize_t n = copy_file_range(in->fd, &ioff, fd, &ooff, left, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				ret = n < 0 ? -errno : -EIO;
				log_error("inode %llu: cannot copy content to staging file %s: %s",
					  (unsigned long long)in->ino, path, strerror(-ret));
				close(fd);
				unlink(path);
				free(path);
				cache_dirty_add(v->cache, -(int64_t)in->staging_res);
				in->staging_res = 0;
				return ret;
			}
			left -= (uint64_t)n;
		}
	}
	if (in->fd >= 0)
		close(in->fd);
	in->fd = fd;
	in->staging = path;
	in->wb_next = 0;
	return 0;
}

/*
 * A large file's close fsyncs its staging file: start the disk on what a
 * sequential writer has finished, VFS_WRITEBACK_CHUNK at a time, so that
 * the close has little left to wait for (a hint: errors are the fsync's).
 * Caller holds in->rw (write).
 */
static void vfs_writeback_locked(struct vfs_inode *in, uint64_t end)
{
	uint64_t to = end / VFS_WRITEBACK_CHUNK * VFS_WRITEBACK_CHUNK;

	if (to < in->wb_next + VFS_WRITEBACK_CHUNK)
		return;
	(void)sync_file_range(in->fd, (off64_t)in->wb_next, (off64_t)(to - in->wb_next),
			      SYNC_FILE_RANGE_WRITE);
	in->wb_next = to;
}

/*
 * close(2) of a writer: makes the staged content durable in the journal
 * and queues it for upload. Caller holds in->rw (write).
 */
static int vfs_seal_locked(struct vfs *v, struct vfs_inode *in)
{
	int ret;

	if (!in->staging || !in->dirty)
		return 0;
	ret = journal_seal(v->journal, in->fd, &in->staging, in->size, in->mtime);
	if (ret) {
		in->commit_err = ret;
		return ret;
	}
	if (in->sealed) {
		/* an older record nobody has taken yet: this one holds it all */
		journal_forget(v->journal, in->sealed);
		free(in->sealed);
		cache_dirty_add(v->cache, -(int64_t)in->sealed_res);
	}
	in->sealed = in->staging;
	in->sealed_mtime = in->mtime;
	in->sealed_res = in->staging_res;
	in->staging_res = 0;
	in->staging = NULL;
	in->dirty = false;
	vfs_enqueue(v, in);
	return 0;
}

/* Test hook: SIGKILL at the n-th time a file reaches `step`. */
static void *vfs_fault_later(void *arg)
{
	(void)arg;
	usleep(50000);
	kill(getpid(), SIGKILL);
	return NULL;
}

static void vfs_fault(struct vfs *v, int step)
{
	pthread_t t;

	if (v->fault_step != step ||
	    __atomic_add_fetch(&v->fault_seen, 1, __ATOMIC_SEQ_CST) != v->fault_n)
		return;
	log_warn("DOCVAULT_FAULT_KILL: killing the daemon at step %d as asked", step);
	if (step == VFS_FAULT_UPLOAD && pthread_create(&t, NULL, vfs_fault_later, NULL) == 0) {
		pthread_detach(t);
		return;
	}
	kill(getpid(), SIGKILL);
}

/*
 * Hashes a journal record and makes its blob durable in the store unless
 * it is already there (dedup, confirmed by SHA-256). sum->keyed names the
 * blob on return: the keyed hash, or the SHA-256's first half when the
 * keyed hash already names other content. No locks held.
 */
static int vfs_upload(struct vfs *v, uint64_t ino, int fd, uint64_t size, struct checksum *sum,
		      unsigned char **blocks, size_t *blocks_len)
{
	unsigned char known_sha[32];
	char key[STORE_BLOB_KEY_SIZE];
	uint64_t known_size;
	int ret;

	ret = checksum_fd_blocks(fd, size, v->secret, sum, blocks, blocks_len);
	if (ret) {
		log_error("inode %llu: cannot read its journal record: %s", (unsigned long long)ino,
			  strerror(-ret));
		return ret;
	}
	ret = meta_blob_find(v->meta, sum->keyed, known_sha, &known_size);
	if (ret == 0 && (memcmp(known_sha, sum->sha256, 32) != 0 || known_size != size)) {
		char hex[CHECKSUM_HEX_SIZE], alt[CHECKSUM_HEX_SIZE];

		/*
		 * Another content under the same keyed hash: a crafted collision
		 * (or a damaged row). This content is stored apart, named by its
		 * SHA-256 instead, which nobody can aim at.
		 */
		checksum_hex16(sum->keyed, hex);
		memcpy(sum->keyed, sum->sha256, 16);
		checksum_hex16(sum->keyed, alt);
		log_error("inode %llu: SECURITY: keyed hash %s is already the name of a blob with "
			  "different content (SHA-256 differs); not deduplicated: stored apart as "
			  "%s",
			  (unsigned long long)ino, hex, alt);
		ret = meta_blob_find(v->meta, sum->keyed, known_sha, &known_size);
		if (ret == 0 && (memcmp(known_sha, sum->sha256, 32) != 0 || known_size != size)) {
			log_error("inode %llu: blob %s also differs from this content; refusing to "
				  "store it",
				  (unsigned long long)ino, alt);
			return -EIO;
		}
	}
	if (ret != -ENOENT)
		return ret;
	vfs_fault(v, VFS_FAULT_UPLOAD);
	store_blob_key(sum->keyed, key);
	return store_put_fd(v->store, key, fd, size, sum->sha256);
}

/* A committed record, to leave the journal after the next WAL flush. */
static void vfs_done_later(struct vfs *v, const char *path, const unsigned char *keyed,
			   uint64_t size, uint64_t res)
{
	struct vfs_done d = {.path = strdup(path), .size = size, .res = res};
	bool added = false;

	if (keyed)
		memcpy(d.keyed, keyed, 16);
	pthread_mutex_lock(&v->stop_lock);
	if (d.path && v->doneq_len == v->doneq_cap) {
		size_t cap = v->doneq_cap ? v->doneq_cap * 2 : 64;
		struct vfs_done *q = realloc(v->doneq, cap * sizeof(*q));

		if (q) {
			v->doneq = q;
			v->doneq_cap = cap;
		}
	}
	if (d.path && v->doneq_len < v->doneq_cap) {
		v->doneq[v->doneq_len++] = d;
		added = true;
		if (v->doneq_len == 1 || v->doneq_len >= VFS_FREEQ_BATCH)
			pthread_cond_signal(&v->stop_cond);
	}
	pthread_mutex_unlock(&v->stop_lock);
	if (!added) {
		/* no memory to wait: flush now (the WAL covers this commit after) */
		if (meta_sync(v->meta) == 0) {
			journal_forget(v->journal, path);
			cache_dirty_add(v->cache, -(int64_t)res);
		}
		free(d.path);
	}
}

/*
 * Flushes PostgreSQL's WAL, then lets the records committed before it go:
 * each becomes the cached copy of its blob (or is removed).
 */
static void vfs_done_drain(struct vfs *v)
{
	struct vfs_done *q;
	size_t n;

	pthread_mutex_lock(&v->stop_lock);
	q = v->doneq;
	n = v->doneq_len;
	v->doneq = NULL;
	v->doneq_len = v->doneq_cap = 0;
	pthread_mutex_unlock(&v->stop_lock);
	if (n == 0) {
		free(q);
		return;
	}
	if (meta_sync(v->meta) != 0) {
		/* keep them journaled; the next drain tries again */
		for (size_t i = 0; i < n; i++) {
			vfs_done_later(v, q[i].path, q[i].size ? q[i].keyed : NULL, q[i].size,
				       q[i].res);
			free(q[i].path);
		}
		free(q);
		return;
	}
	/* a small record's own bytes were never flushed: the cache trusts what it adopts */
	bool flushed = journal_sync_all(v->journal) == 0;

	for (size_t i = 0; i < n; i++) {
		/* dirty first, so that adopting does not evict for bytes counted twice */
		cache_dirty_add(v->cache, -(int64_t)q[i].res);
		if (q[i].size == 0 || !flushed ||
		    cache_adopt(v->cache, q[i].path, q[i].keyed, q[i].size) < 0)
			journal_forget(v->journal, q[i].path);
		else
			journal_release(v->journal, q[i].path);
		free(q[i].path);
	}
	free(q);
	journal_tidy(v->journal);
}

/* A setattr of the mtime raced with the commit that just landed: apply it again. */
static void vfs_commit_mtime_fixup(struct vfs *v, struct vfs_inode *in, int64_t committed,
				   struct meta_attr *a)
{
	struct meta_attr sa = {0};
	int64_t want;

	pthread_mutex_lock(&v->qlock);
	want = in->uploading_mtime;
	pthread_mutex_unlock(&v->qlock);
	if (want == committed)
		return;
	sa.mtime = want;
	if (meta_setattr(v->meta, in->ino, META_SET_MTIME, &sa, vfs_now(), a))
		log_warn("inode %llu: could not reapply its mtime after the commit",
			 (unsigned long long)in->ino);
}

/* True when the inode has no name left and no handle: its content is garbage. */
static bool vfs_unreachable(struct vfs *v, struct vfs_inode *in)
{
	bool gone;

	pthread_mutex_lock(&v->lock);
	gone = in->unlinked && in->handles == 0;
	if (gone)
		in->dropped = true; /* decided with the handle count: no open slips between */
	pthread_mutex_unlock(&v->lock);
	return gone;
}

/* Sleeps for a retry; false when the mount is stopping. */
static bool vfs_backoff(struct vfs *v, int attempt)
{
	unsigned int cap = attempt < 7 ? 500u << attempt : 30000u;
	unsigned int ms = 200 + (unsigned int)(rand() % (int)cap);
	struct timespec until;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&v->qlock);
	if (!v->qstop)
		pthread_cond_timedwait(&v->qcond, &v->qlock, &until);
	stop = v->qstop;
	pthread_mutex_unlock(&v->qlock);
	return !stop;
}

/* Takes the inode's newest sealed record for committing; waits for another committer. */
static char *vfs_take_locked(struct vfs *v, struct vfs_inode *in, int64_t *mtime)
{
	char *path = in->sealed;

	in->sealed = NULL;
	*mtime = in->sealed_mtime;
	pthread_mutex_lock(&v->qlock);
	in->uploading = path;
	in->uploading_mtime = *mtime;
	in->uploading_res = in->sealed_res;
	in->sealed_res = 0;
	pthread_mutex_unlock(&v->qlock);
	return path;
}

/* Ends a commit attempt of `path`; done says whether it is committed. Holds in->rw (write). */
static void vfs_untake_locked(struct vfs *v, struct vfs_inode *in, char *path, bool done)
{
	pthread_mutex_lock(&v->qlock);
	in->uploading = NULL;
	pthread_cond_broadcast(&v->qdone);
	pthread_mutex_unlock(&v->qlock);
	if (done) {
		free(path);
		return;
	}
	if (in->sealed) {
		/* written again meanwhile: the newer record holds it all */
		journal_forget(v->journal, path);
		free(path);
		cache_dirty_add(v->cache, -(int64_t)in->uploading_res);
		return;
	}
	in->sealed = path;
	in->sealed_mtime = in->uploading_mtime;
	in->sealed_res = in->uploading_res;
}

/* Drops a taken record that will never be committed (its inode is gone). */
static void vfs_drop_taken(struct vfs *v, struct vfs_inode *in, char *path)
{
	pthread_rwlock_wrlock(&in->rw);
	journal_forget(v->journal, path);
	cache_dirty_add(v->cache, -(int64_t)in->uploading_res);
	vfs_untake_locked(v, in, path, true);
	pthread_rwlock_unlock(&in->rw);
}

/*
 * Commits the newest sealed record of an inode: upload, then PostgreSQL,
 * then the record leaves the journal (its file becomes the cached blob).
 * In the background (`wait` false) failures are retried with backoff until
 * they succeed or the mount stops; for fsync (`wait` true) the first final
 * failure is returned and the record goes back to the queue.
 */
static int vfs_commit_pending(struct vfs *v, struct vfs_inode *in, bool wait)
{
	struct checksum sum;
	struct meta_attr a;
	struct stat st;
	int64_t mtime;
	uint64_t epoch;
	char *path;
	int attempt = 0, fd, ret;

	for (;;) {
		pthread_rwlock_wrlock(&in->rw);
		if (!in->uploading)
			break;
		pthread_rwlock_unlock(&in->rw);
		pthread_mutex_lock(&v->qlock);
		while (in->uploading)
			pthread_cond_wait(&v->qdone, &v->qlock);
		pthread_mutex_unlock(&v->qlock);
	}
	if (!in->sealed) {
		pthread_rwlock_unlock(&in->rw);
		return 0;
	}
	path = vfs_take_locked(v, in, &mtime);
	pthread_rwlock_unlock(&in->rw);
	if (vfs_unreachable(v, in)) {
		/* deleted after close and open nowhere: nobody can ever read it */
		vfs_drop_taken(v, in, path);
		return 0;
	}
	vfs_fault(v, VFS_FAULT_SEALED);

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		log_error("inode %llu: journal record %s is unreadable (%s); dropped",
			  (unsigned long long)in->ino, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		pthread_rwlock_wrlock(&in->rw);
		cache_dirty_add(v->cache, -(int64_t)in->uploading_res);
		vfs_untake_locked(v, in, path, true);
		pthread_rwlock_unlock(&in->rw);
		return ret;
	}
	for (;; attempt++) {
		uint64_t size = (uint64_t)st.st_size;
		unsigned char *blocks = NULL;
		size_t blocks_len = 0;

		ret = size > 0 ? vfs_upload(v, in->ino, fd, size, &sum, &blocks, &blocks_len) : 0;
		if (!ret) {
			vfs_fault(v, VFS_FAULT_UPLOADED);
			/*
			 * No inode lock across PostgreSQL's WAL flush: setattr
			 * may change the mtime to commit meanwhile, and then
			 * sets it again once the commit is in.
			 */
			pthread_mutex_lock(&v->qlock);
			mtime = in->uploading_mtime;
			pthread_mutex_unlock(&v->qlock);
			epoch = vfs_attr_epoch(v);
			ret = meta_commit_blocks(v->meta, in->ino, size ? &sum : NULL, blocks,
						 blocks_len, size, mtime, vfs_now(), &a);
			free(blocks);
			blocks = NULL;
			if (!ret) {
				vfs_commit_mtime_fixup(v, in, mtime, &a);
				vfs_attr_keep(v, in, &a, epoch);
			}
			pthread_rwlock_wrlock(&in->rw);
			if (!ret) {
				vfs_fault(v, VFS_FAULT_COMMITTED);
				__atomic_add_fetch(&v->commit_gen, 1, __ATOMIC_RELEASE);
				/* the cached blob of the content before is not ours any more */
				cache_blob_put(in->blob);
				in->blob = NULL;
				if (size > 0) {
					in->has_content = true;
					memcpy(in->content, sum.keyed, 16);
				} else {
					in->has_content = false;
				}
				in->loaded = true;
				in->version = a.version;
				journal_note(v->journal, path, NULL);
				/* leaves the journal once PostgreSQL has flushed the commit */
				vfs_done_later(v, path, size ? sum.keyed : NULL, size,
					       in->uploading_res);
				if (!in->staging && !in->sealed)
					in->commit_err = 0;
				vfs_untake_locked(v, in, path, true);
				pthread_rwlock_unlock(&in->rw);
				close(fd);
				return 0;
			}
			pthread_rwlock_unlock(&in->rw);
		}
		free(blocks); /* the upload failed after hashing */
		if (ret == -ENOENT) {
			log_warn("inode %llu: gone from PostgreSQL before its content was "
				 "committed; journal record %s dropped",
				 (unsigned long long)in->ino, path);
			vfs_drop_taken(v, in, path);
			close(fd);
			return 0;
		}
		if (attempt == 0) {
			char why[160];

			snprintf(why, sizeof(why), "inode %llu: commit failed: %s; retrying",
				 (unsigned long long)in->ino, strerror(-ret));
			log_warn("%s (record %s)", why, path);
			journal_note(v->journal, path, why);
		}
		if (wait || !vfs_backoff(v, attempt))
			break;
		if (vfs_unreachable(v, in)) {
			vfs_drop_taken(v, in, path);
			close(fd);
			return 0;
		}
	}
	close(fd);
	pthread_rwlock_wrlock(&in->rw);
	in->commit_err = ret;
	vfs_untake_locked(v, in, path, false);
	pthread_rwlock_unlock(&in->rw);
	if (wait)
		vfs_enqueue(v, in); /* the background keeps trying */
	return ret;
}

/* Queues an inode with a sealed record for the upload workers. */
static void vfs_enqueue(struct vfs *v, struct vfs_inode *in)
{
	bool add;

	pthread_mutex_lock(&v->qlock);
	add = !in->queued;
	if (add) {
		in->queued = true;
		in->qnext = NULL;
		if (v->qtail)
			v->qtail->qnext = in;
		else
			v->qhead = in;
		v->qtail = in;
		pthread_cond_signal(&v->qcond);
	}
	pthread_mutex_unlock(&v->qlock);
	if (add) {
		pthread_mutex_lock(&v->lock);
		in->refs++; /* the queue's */
		pthread_mutex_unlock(&v->lock);
	}
}

static void *vfs_worker_main(void *arg)
{
	struct vfs *v = arg;

	for (;;) {
		struct vfs_inode *in;

		pthread_mutex_lock(&v->qlock);
		while (!v->qhead && !v->qstop)
			pthread_cond_wait(&v->qcond, &v->qlock);
		if (v->qstop) {
			pthread_mutex_unlock(&v->qlock);
			return NULL;
		}
		in = v->qhead;
		v->qhead = in->qnext;
		if (!v->qhead)
			v->qtail = NULL;
		in->queued = false;
		v->qbusy++;
		pthread_mutex_unlock(&v->qlock);

		vfs_commit_pending(v, in, false);

		pthread_mutex_lock(&v->qlock);
		v->qbusy--;
		pthread_cond_broadcast(&v->qdone);
		pthread_mutex_unlock(&v->qlock);
		vfs_inode_put(v, in);
	}
}

/*
 * fsync, and close with writeback off: seals what is staged and commits it
 * now. Then PostgreSQL's log is flushed, so metadata changes made before
 * (create, rename, chmod) are durable too.
 */
static int vfs_commit_now(struct vfs *v, struct vfs_inode *in)
{
	int ret;

	pthread_rwlock_wrlock(&in->rw);
	ret = vfs_seal_locked(v, in);
	pthread_rwlock_unlock(&in->rw);
	if (!ret)
		ret = vfs_commit_pending(v, in, true);
	if (!ret)
		ret = meta_sync(v->meta);
	if (!ret)
		vfs_done_drain(v);
	return ret;
}

/*
 * Overlays what this mount knows better than PostgreSQL's row `a`: content
 * not yet committed, or committed by this mount after `a` was read (the
 * row is older than the inode's version here).
 */
static void vfs_overlay_in(struct vfs_inode *in, const struct meta_attr *a, struct stat *st)
{
	pthread_rwlock_rdlock(&in->rw);
	if (vfs_pending_locked(in) || (in->loaded && in->version > a->version)) {
		st->st_size = (off_t)in->size;
		st->st_blocks = (blkcnt_t)((in->size + 511) / 512);
		st->st_mtim = vfs_ts(in->mtime);
		if (vfs_ns(&st->st_ctim) < in->mtime)
			st->st_ctim = st->st_mtim;
	}
	pthread_rwlock_unlock(&in->rw);
}

/*
 * The same for a row read without a reference held on the inode before
 * (lookup, readdirplus): if this mount committed any content meanwhile, the
 * row may predate a commit whose inode has since left the table, so it is
 * read again (*again set) rather than trusted.
 */
static void vfs_overlay(struct vfs *v, const struct meta_attr *a, uint64_t gen, struct stat *st,
			bool *again)
{
	struct vfs_inode *in = vfs_inode_find(v, a->ino);

	if (again)
		*again = !in && __atomic_load_n(&v->commit_gen, __ATOMIC_ACQUIRE) != gen;
	if (!in)
		return;
	vfs_overlay_in(in, a, st);
	vfs_inode_put(v, in);
}

/*
 * Reads an inode's row and overlays this mount's state, holding a reference
 * on the inode across the read so that a commit cannot slip between them.
 */
static int vfs_attr(struct vfs *v, uint64_t ino, struct meta_attr *a, struct stat *st)
{
	struct vfs_inode *in = vfs_inode_find(v, ino);
	uint64_t epoch = vfs_attr_epoch(v), dgen = in ? 0 : vfs_dir_gen(v, ino);
	bool kept = in ? vfs_attr_kept(v, in, a) : vfs_dir_kept(v, ino, a);
	int ret = kept ? 0 : meta_getattr(v->meta, ino, a);

	if (!ret) {
		vfs_stat_from(a, st);
		if (!in && !kept)
			vfs_dir_keep(v, a, dgen);
		if (in) {
			if (!kept)
				vfs_attr_keep(v, in, a, epoch);
			vfs_overlay_in(in, a, st);
		}
	}
	if (in)
		vfs_inode_put(v, in);
	return ret;
}

/* ---- lifecycle ---- */

static void *vfs_heartbeat_main(void *arg)
{
	struct vfs *v = arg;
	int ticks = 0;

	struct timespec next_beat;

	clock_gettime(CLOCK_REALTIME, &next_beat);
	next_beat.tv_sec += VFS_HEARTBEAT_S;
	pthread_mutex_lock(&v->stop_lock);
	while (!v->stopping) {
		struct timespec now, until = next_beat;

		if (v->freeq_len > 0 || v->doneq_len > 0) {
			/* unlinked inodes and committed records wait at most 100 ms for company */
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 100000000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
		}
		pthread_cond_timedwait(&v->stop_cond, &v->stop_lock, &until);
		if (v->stopping)
			break;
		pthread_mutex_unlock(&v->stop_lock);
		vfs_free_drain(v);
		vfs_done_drain(v);
		clock_gettime(CLOCK_REALTIME, &now);
		if (now.tv_sec < next_beat.tv_sec) {
			pthread_mutex_lock(&v->stop_lock);
			continue;
		}
		next_beat.tv_sec = now.tv_sec + VFS_HEARTBEAT_S;
		if (meta_session_heartbeat(v->meta, v->sid) == -ENOENT)
			log_error("session %llu was reaped by another mount (missed heartbeats)",
				  (unsigned long long)v->sid);
		if (++ticks % 6 == 1) {
			int n = meta_session_reap(v->meta, VFS_SESSION_TIMEOUT_S);

			if (n > 0)
				log_info("cleaned up %d dead session(s) and their orphans", n);
		}
		pthread_mutex_lock(&v->stop_lock);
	}
	pthread_mutex_unlock(&v->stop_lock);
	return NULL;
}

static bool vfs_pid_alive(int pid)
{
	return kill(pid, 0) == 0 || errno != ESRCH;
}

/* Reads DOCVAULT_FAULT_KILL=STEP[:N] (tests only). */
static void vfs_fault_init(struct vfs *v)
{
	static const char *const steps[] = {"", "sealed", "upload", "uploaded", "committed"};
	const char *e = getenv("DOCVAULT_FAULT_KILL");
	size_t len;

	if (!e || !*e)
		return;
	len = strcspn(e, ":");
	for (int i = 1; i < (int)(sizeof(steps) / sizeof(steps[0])); i++)
		if (strlen(steps[i]) == len && !strncmp(e, steps[i], len))
			v->fault_step = i;
	v->fault_n = e[len] == ':' ? atoi(e + len + 1) : 1;
	if (v->fault_step == VFS_FAULT_NONE || v->fault_n < 1)
		log_warn("DOCVAULT_FAULT_KILL=%s not understood (STEP[:N], STEP one of sealed, "
			 "upload, uploaded, committed); ignored",
			 e);
	else
		log_warn("DOCVAULT_FAULT_KILL=%s: this daemon will kill itself (tests only)", e);
}

/* A journal record left by an earlier daemon: pending content, queued. */
static int vfs_recover_one(void *arg, const struct journal_entry *e)
{
	struct vfs *v = arg;
	struct vfs_inode *in = vfs_inode_get(v, e->ino);

	if (!in)
		return -ENOMEM;
	pthread_rwlock_wrlock(&in->rw);
	if (in->sealed) {
		journal_forget(v->journal, in->sealed);
		free(in->sealed);
	}
	in->sealed = strdup(e->path);
	in->sealed_mtime = e->mtime;
	in->sealed_res = e->size;
	cache_dirty_add(v->cache, (int64_t)e->size);
	in->mtime = e->mtime;
	in->size = e->size;
	in->loaded = true;
	if (in->sealed)
		vfs_enqueue(v, in);
	pthread_rwlock_unlock(&in->rw);
	vfs_inode_put(v, in);
	return in->sealed ? 0 : -ENOMEM;
}

static int vfs_count_queue(struct vfs *v)
{
	int n = 0;

	pthread_mutex_lock(&v->qlock);
	for (struct vfs_inode *in = v->qhead; in; in = in->qnext)
		n++;
	pthread_mutex_unlock(&v->qlock);
	return n;
}

int vfs_open(const struct dv_config *cfg, struct vfs **out, char *err, size_t errlen)
{
	char host[256] = "?";
	struct rlimit rl;
	struct vfs *v;
	int ret;

	*out = NULL;
	v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	v->cfg = cfg;
	v->attr_ttl = (int64_t)(cfg->mount.attr_timeout * 1e9);
	pthread_mutex_init(&v->lock, NULL);
	pthread_mutex_init(&v->dlock, NULL);
	pthread_mutex_init(&v->stop_lock, NULL);
	pthread_cond_init(&v->stop_cond, NULL);
	pthread_mutex_init(&v->qlock, NULL);
	pthread_cond_init(&v->qcond, NULL);
	pthread_cond_init(&v->qdone, NULL);
	vfs_fault_init(v);
	/* files waiting for upload keep a descriptor each while open */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* FUSE threads, upload workers, processing workers and the heartbeat share the pool */
	ret = meta_open(cfg->database.conninfo,
			cfg->database.pool_size + vfs_upload_workers(cfg) +
			    cfg->processing.workers + 1,
			&v->meta, err, errlen);
	if (ret)
		goto fail;
	ret = meta_check(v->meta, v->secret, err, errlen);
	if (ret)
		goto fail;
	ret = store_open(cfg, &v->store, err, errlen);
	if (ret)
		goto fail;
	ret = cache_open(cfg->cache.dir, cfg->cache.size, cfg->cache.reserve, cfg->cache.full_wait,
			 v->secret, &v->cache, err, errlen);
	if (ret)
		goto fail;
	ret = journal_open(cfg->cache.dir, &v->journal, err, errlen);
	if (ret)
		goto fail;
	gethostname(host, sizeof(host) - 1);
	ret = meta_session_start(v->meta, host, (int)getpid(), &v->sid);
	if (ret == -EBUSY) {
		snprintf(err, errlen,
			 "docvault gc is running on this vault; mount again when it ends");
		goto fail;
	}
	if (ret) {
		snprintf(err, errlen, "cannot register this mount in PostgreSQL");
		goto fail;
	}
	/* orphans left by mounts that died: here at once, elsewhere once silent */
	ret = meta_session_reap_host(v->meta, host, v->sid, vfs_pid_alive);
	if (ret > 0)
		log_info("cleaned up %d session(s) of dead processes on %s", ret, host);
	meta_session_reap(v->meta, VFS_SESSION_TIMEOUT_S);
	/* what an earlier daemon closed but did not commit: pending again, at once */
	ret = journal_recover(v->journal, vfs_recover_one, v);
	if (ret) {
		snprintf(err, errlen, "cannot recover the journal in %s/journal: %s",
			 cfg->cache.dir, strerror(-ret));
		goto fail;
	}
	ret = vfs_count_queue(v);
	if (ret > 0)
		log_info("journal: %d file(s) closed before the last stop are being committed",
			 ret);
	*out = v;
	return 0;
fail:
	vfs_close(v);
	return ret;
}

int vfs_start(struct vfs *v)
{
	int n = vfs_upload_workers(v->cfg);
	char err[512];
	int ret = cache_start(v->cache, err, sizeof(err));

	if (ret) {
		log_error("%s", err);
		return ret;
	}
	ret = pthread_create(&v->heartbeat, NULL, vfs_heartbeat_main, v);
	if (ret)
		return -ret;
	v->heartbeat_running = true;
	if (v->cfg->processing.workers > 0) {
		char name[300], host[256] = "?", tmp[4096];

		gethostname(host, sizeof(host) - 1);
		snprintf(name, sizeof(name), "%s:%d", host, (int)getpid());
		snprintf(tmp, sizeof(tmp), "%s/tmp", v->cfg->cache.dir);
		ret = cache_store_open(v->cache, v->store, &v->jobs_store);
		if (!ret)
			ret = jobs_start(v->cfg, v->meta, v->jobs_store, tmp,
					 v->cfg->processing.workers, name, &v->jobs);
		if (ret)
			return ret;
	}
	v->workers = calloc((size_t)n, sizeof(*v->workers));
	if (!v->workers)
		return -ENOMEM;
	for (; v->nworkers < n; v->nworkers++) {
		ret = pthread_create(&v->workers[v->nworkers], NULL, vfs_worker_main, v);
		if (ret)
			return -ret;
	}
	return 0;
}

/* Upload threads: [cache] upload_workers, or twice the CPUs (at least 4). */
static int vfs_upload_workers(const struct dv_config *cfg)
{
	long cpus;

	if (cfg->cache.upload_workers > 0)
		return cfg->cache.upload_workers;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	/* uploads wait on the network more than on the CPU */
	return 2 * (cpus > 2 ? (int)cpus : 2);
}

/* Unmount: waits up to [cache] unmount_wait for the queue, then stops the workers. */
static void vfs_drain(struct vfs *v)
{
	struct timespec until;
	double wait = v->cfg->cache.unmount_wait;
	int left;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)wait;
	until.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&v->qlock);
	while ((v->qhead || v->qbusy) && v->nworkers > 0)
		if (pthread_cond_timedwait(&v->qdone, &v->qlock, &until) == ETIMEDOUT)
			break;
	v->qstop = true;
	pthread_cond_broadcast(&v->qcond);
	pthread_mutex_unlock(&v->qlock);
	for (int i = 0; i < v->nworkers; i++)
		pthread_join(v->workers[i], NULL);
	free(v->workers);
	v->workers = NULL;
	v->nworkers = 0;
	/* what is left stays in the journal for the next mount */
	left = 0;
	pthread_mutex_lock(&v->qlock);
	while (v->qhead) {
		struct vfs_inode *in = v->qhead;

		v->qhead = in->qnext;
		in->queued = false;
		left++;
		pthread_mutex_unlock(&v->qlock);
		vfs_inode_put(v, in);
		pthread_mutex_lock(&v->qlock);
	}
	v->qtail = NULL;
	pthread_mutex_unlock(&v->qlock);
	if (left > 0)
		log_warn("unmount: %d file(s) not yet uploaded stay journaled in %s/journal; the "
			 "next mount with this cache directory commits them",
			 left, v->cfg->cache.dir);
}

void vfs_close(struct vfs *v)
{
	if (!v)
		return;
	if (v->heartbeat_running) {
		pthread_mutex_lock(&v->stop_lock);
		v->stopping = true;
		pthread_cond_signal(&v->stop_cond);
		pthread_mutex_unlock(&v->stop_lock);
		pthread_join(v->heartbeat, NULL);
	}
	/* inodes still open (the kernel never sent release): seal what they wrote */
	for (int b = 0; b < VFS_BUCKETS; b++)
		for (struct vfs_inode *in = v->table[b]; in; in = in->next) {
			pthread_rwlock_wrlock(&in->rw);
			vfs_seal_locked(v, in);
			pthread_rwlock_unlock(&in->rw);
		}
	vfs_drain(v);
	jobs_stop(v->jobs);
	store_close(v->jobs_store);
	vfs_free_drain(v);
	free(v->freeq);
	vfs_done_drain(v);
	for (size_t i = 0; i < v->doneq_len; i++)
		free(v->doneq[i].path); /* PostgreSQL unreachable: they stay journaled */
	free(v->doneq);
	for (int b = 0; b < VFS_BUCKETS; b++) {
		while (v->table[b]) {
			struct vfs_inode *in = v->table[b];

			in->refs = 1;
			vfs_inode_put(v, in);
		}
	}
	if (v->sid && v->meta)
		meta_session_end(v->meta, v->sid);
	journal_close(v->journal);
	cache_close(v->cache);
	store_close(v->store);
	meta_close(v->meta);
	pthread_mutex_destroy(&v->lock);
	pthread_mutex_destroy(&v->stop_lock);
	pthread_cond_destroy(&v->stop_cond);
	pthread_mutex_destroy(&v->qlock);
	pthread_cond_destroy(&v->qcond);
	pthread_cond_destroy(&v->qdone);
	free(v);
}

/* ---- namespace ---- */

int vfs_lookup(struct vfs *v, uint64_t parent, const char *name, struct stat *out)
{
	struct meta_attr a;
	uint64_t gen = __atomic_load_n(&v->commit_gen, __ATOMIC_ACQUIRE);
	bool again;
	int ret = vfs_check_name(name);

	if (ret)
		return ret;
	ret = meta_lookup(v->meta, parent, name, strlen(name), &a);
	if (ret)
		return ret;
	vfs_stat_from(&a, out);
	vfs_overlay(v, &a, gen, out, &again);
	if (again && S_ISREG(a.mode))
		return vfs_attr(v, a.ino, &a, out); /* by inode, a reference held: current */
	return 0;
}

int vfs_getattr(struct vfs *v, uint64_t ino, struct stat *out)
{
	struct meta_attr a;

	return vfs_attr(v, ino, &a, out);
}

/*
 * Changes the size of a file: staged, and sealed at once (like a close) if
 * nobody has it open for writing, since no close will come.
 */
static int vfs_truncate(struct vfs *v, uint64_t ino, uint64_t size, int64_t now)
{
	struct vfs_inode *in = vfs_inode_get(v, ino);
	bool alone;
	int ret;

	if (!in)
		return -ENOMEM;
	pthread_rwlock_wrlock(&in->rw);
	ret = vfs_load_locked(v, in, NULL);
	if (!ret)
		ret = vfs_stage_locked(v, in, size);
	if (!ret && ftruncate(in->fd, (off_t)size) < 0) {
		ret = -errno;
		log_error("inode %llu: cannot truncate staging file %s: %s",
			  (unsigned long long)ino, in->staging, strerror(errno));
	}
	if (!ret) {
		in->size = size;
		in->mtime = now;
		in->dirty = true;
		pthread_mutex_lock(&v->lock);
		alone = in->handles == 0;
		pthread_mutex_unlock(&v->lock);
		if (alone)
			ret = vfs_seal_locked(v, in);
	}
	pthread_rwlock_unlock(&in->rw);
	if (!ret && alone && !v->cfg->cache.writeback)
		ret = vfs_commit_now(v, in);
	vfs_inode_put(v, in);
	return ret;
}

int vfs_setattr(struct vfs *v, const struct vfs_ctx *ctx, uint64_t ino, const struct stat *attr,
		int valid, uint64_t fh, struct stat *out)
{
	struct meta_attr sa = {0}, a;
	int64_t now = vfs_now();
	int mvalid = 0, ret;

	(void)ctx;
	(void)fh;
	if (valid & VFS_SET_SIZE) {
		ret = meta_getattr(v->meta, ino, &a);
		if (ret)
			return ret;
		if (S_ISDIR(a.mode))
			return -EISDIR;
		if (!S_ISREG(a.mode))
			return -EINVAL;
		if (attr->st_size < 0)
			return -EINVAL;
		ret = vfs_truncate(v, ino, (uint64_t)attr->st_size, now);
		if (ret)
			return ret;
	}
	if (valid & VFS_SET_MODE) {
		sa.mode = attr->st_mode;
		mvalid |= META_SET_MODE;
	}
	if (valid & VFS_SET_UID) {
		sa.uid = attr->st_uid;
		mvalid |= META_SET_UID;
	}
	if (valid & VFS_SET_GID) {
		sa.gid = attr->st_gid;
		mvalid |= META_SET_GID;
	}
	if (valid & (VFS_SET_ATIME | VFS_SET_ATIME_NOW)) {
		sa.atime = valid & VFS_SET_ATIME_NOW ? now : vfs_ns(&attr->st_atim);
		mvalid |= META_SET_ATIME;
	}
	if (valid & (VFS_SET_MTIME | VFS_SET_MTIME_NOW)) {
		sa.mtime = valid & VFS_SET_MTIME_NOW ? now : vfs_ns(&attr->st_mtim);
		mvalid |= META_SET_MTIME;
		/* an explicit mtime also wins over unflushed writes */
		struct vfs_inode *in = vfs_inode_find(v, ino);

		if (in) {
			pthread_rwlock_wrlock(&in->rw);
			if (vfs_pending_locked(in))
				in->mtime = sa.mtime;
			/* the commit still to come must not undo it */
			if (!in->staging && in->sealed) {
				in->sealed_mtime = sa.mtime;
				journal_set_mtime(v->journal, in->sealed, sa.mtime);
			}
			if (!in->staging && !in->sealed && in->uploading) {
				pthread_mutex_lock(&v->qlock);
				in->uploading_mtime = sa.mtime;
				pthread_mutex_unlock(&v->qlock);
			}
			pthread_rwlock_unlock(&in->rw);
			vfs_inode_put(v, in);
		}
	}
	if (mvalid || (valid & (VFS_SET_CTIME | VFS_SET_SIZE)) == VFS_SET_CTIME) {
		struct vfs_inode *in = vfs_inode_find(v, ino);
		uint64_t epoch = vfs_attr_epoch(v), dgen = vfs_dir_gen(v, ino);

		ret = meta_setattr(v->meta, ino, mvalid, &sa, now, &a);
		if (ret)
			vfs_dir_forget(v, ino);
		if (!ret) {
			vfs_stat_from(&a, out);
			vfs_dir_keep(v, &a, dgen);
			if (in) {
				vfs_attr_keep(v, in, &a, epoch);
				vfs_overlay_in(in, &a, out);
			}
		}
		if (in)
			vfs_inode_put(v, in);
		return ret;
	}
	return vfs_attr(v, ino, &a, out);
}

static int vfs_make(struct vfs *v, const struct vfs_ctx *ctx, uint64_t parent, const char *name,
		    mode_t mode, dev_t rdev, const char *target, struct stat *out)
{
	struct meta_attr a;
	uint64_t dgen = vfs_dir_gen(v, parent);
	int64_t now = vfs_now();
	int ret = vfs_check_name(name);

	if (ret)
		return ret;
	ret = meta_create(v->meta, parent, name, strlen(name), mode, ctx->uid, ctx->gid, rdev,
			  target, now, &a);
	vfs_dir_changed(v, parent, dgen, ret == 0, now, S_ISDIR(mode) ? 1 : 0);
	if (ret)
		return ret;
	vfs_stat_from(&a, out);
	return 0;
}

int vfs_mknod(struct vfs *v, const struct vfs_ctx *ctx, uint64_t parent, const char *name,
	      mode_t mode, dev_t rdev, struct stat *out)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		break;
	case 0:
		mode |= S_IFREG;
		break;
	default:
		return -EINVAL;
	}
	if (!S_ISCHR(mode) && !S_ISBLK(mode))
		rdev = 0;
	return vfs_make(v, ctx, parent, name, mode, rdev, NULL, out);
}

int vfs_mkdir(struct vfs *v, const struct vfs_ctx *ctx, uint64_t parent, const char *name,
	      mode_t mode, struct stat *out)
{
	return vfs_make(v, ctx, parent, name, S_IFDIR | (mode & 07777), 0, NULL, out);
}

int vfs_symlink(struct vfs *v, const struct vfs_ctx *ctx, uint64_t parent, const char *name,
		const char *target, struct stat *out)
{
	if (strlen(target) >= PATH_MAX)
		return -ENAMETOOLONG;
	return vfs_make(v, ctx, parent, name, S_IFLNK | 0777, 0, target, out);
}

int vfs_link(struct vfs *v, uint64_t ino, uint64_t newparent, const char *name, struct stat *out)
{
	struct meta_attr a;
	uint64_t dgen = vfs_dir_gen(v, newparent);
	int64_t now = vfs_now();
	int ret = vfs_check_name(name);

	if (ret)
		return ret;
	ret = meta_link(v->meta, ino, newparent, name, strlen(name), now, &a);
	vfs_attr_epoch_bump(v);
	vfs_dir_changed(v, newparent, dgen, ret == 0, now, 0);
	if (ret)
		return ret;
	vfs_stat_from(&a, out);
	vfs_overlay(v, &a, 0, out, NULL);
	return 0;
}

/* Queues an inode for the batch free; frees it at once if the queue is full. */
static void vfs_free_later(struct vfs *v, uint64_t ino)
{
	bool queued = false;

	pthread_mutex_lock(&v->stop_lock);
	if (v->freeq_len == v->freeq_cap && v->freeq_cap < VFS_FREEQ_MAX) {
		size_t cap = v->freeq_cap ? v->freeq_cap * 2 : 256;
		uint64_t *q = realloc(v->freeq, cap * sizeof(*q));

		if (q) {
			v->freeq = q;
			v->freeq_cap = cap;
		}
	}
	if (v->freeq_len < v->freeq_cap) {
		v->freeq[v->freeq_len++] = ino;
		queued = true;
		/* the first one starts the 100 ms timer; a full batch goes now */
		if (v->freeq_len == 1 || v->freeq_len >= VFS_FREEQ_BATCH)
			pthread_cond_signal(&v->stop_cond);
	}
	pthread_mutex_unlock(&v->stop_lock);
	if (!queued)
		meta_free(v->meta, ino);
}

/* Frees what the queue holds, in one transaction per batch. */
static void vfs_free_drain(struct vfs *v)
{
	for (;;) {
		uint64_t batch[VFS_FREEQ_BATCH];
		size_t n;

		pthread_mutex_lock(&v->stop_lock);
		n = v->freeq_len < VFS_FREEQ_BATCH ? v->freeq_len : VFS_FREEQ_BATCH;
		if (n == 0) {
			pthread_mutex_unlock(&v->stop_lock);
			return;
		}
		v->freeq_len -= n;
		memcpy(batch, v->freeq + v->freeq_len, n * sizeof(*batch));
		pthread_mutex_unlock(&v->stop_lock);
		if (meta_free_batch(v->meta, batch, n) != 0)
			log_warn("could not free %zu unlinked inodes now; the session cleanup "
				 "will",
				 n);
	}
}

/* An inode lost its last name: free it soon, or at its last close here. */
static void vfs_orphaned(struct vfs *v, uint64_t ino)
{
	struct vfs_inode *in;

	pthread_mutex_lock(&v->lock);
	in = *vfs_slot_locked(v, ino);
	if (in)
		in->unlinked = true;
	pthread_mutex_unlock(&v->lock);
	if (!in)
		vfs_free_later(v, ino);
}

int vfs_unlink(struct vfs *v, uint64_t parent, const char *name)
{
	struct meta_attr a;
	uint64_t dgen = vfs_dir_gen(v, parent);
	int64_t now = vfs_now();
	int ret = vfs_check_name(name);

	if (ret)
		return ret;
	ret = meta_unlink(v->meta, parent, name, strlen(name), v->sid, now, &a);
	vfs_attr_epoch_bump(v);
	vfs_dir_changed(v, parent, dgen, ret == 0, now, 0);
	if (!ret && a.nlink == 0)
		vfs_orphaned(v, a.ino);
	return ret;
}

int vfs_rmdir(struct vfs *v, uint64_t parent, const char *name)
{
	struct meta_attr a;
	uint64_t dgen = vfs_dir_gen(v, parent);
	int64_t now = vfs_now();
	int ret = vfs_check_name(name);

	if (ret)
		return ret;
	ret = meta_rmdir(v->meta, parent, name, strlen(name), v->sid, now, &a);
	vfs_dir_changed(v, parent, dgen, ret == 0, now, -1);
	if (!ret) {
		vfs_dir_forget(v, a.ino);
		vfs_free_later(v, a.ino);
	}
	return ret;
}

int vfs_rename(struct vfs *v, uint64_t parent, const char *name, uint64_t newparent,
	       const char *newname, unsigned int flags)
{
	uint64_t orphan = 0, dgen = vfs_dir_gen(v, parent), ndgen = vfs_dir_gen(v, newparent);
	int64_t now = vfs_now();
	struct meta_attr src = {0};
	bool exact;
	int ret = vfs_check_name(name);

	if (!ret)
		ret = vfs_check_name(newname);
	if (ret)
		return ret;
	if (flags & ~(unsigned int)(META_RENAME_NOREPLACE | META_RENAME_EXCHANGE))
		return -EINVAL;
	ret = meta_rename(v->meta, parent, name, strlen(name), newparent, newname, strlen(newname),
			  flags, v->sid, now, &src, &orphan);
	vfs_attr_epoch_bump(v);
	/*
	 * A non-directory moved (and at most a non-directory replaced): both
	 * directories' mtime and ctime, no link count. A rename onto another
	 * name of the same inode changes nothing (the moved inode's ctime is
	 * not `now`). Anything else drops the rows involved.
	 */
	exact =
	    ret == 0 && !(flags & META_RENAME_EXCHANGE) && !S_ISDIR(src.mode) && src.ctime == now;
	vfs_dir_changed(v, parent, dgen, exact, now, 0);
	if (newparent != parent)
		vfs_dir_changed(v, newparent, ndgen, exact, now, 0);
	if (!exact && src.ino)
		vfs_dir_forget(v, src.ino);
	if (orphan)
		vfs_dir_forget(v, orphan);
	if (!ret && orphan)
		vfs_orphaned(v, orphan);
	return ret;
}

int vfs_readlink(struct vfs *v, uint64_t ino, char *buf, size_t size)
{
	int ret = meta_readlink(v->meta, ino, buf, size);

	return ret ? ret : (int)strlen(buf);
}

/* ---- files ---- */

/*
 * A handle on in, whose reference it takes over. `a` must have been read
 * after that reference was taken, so that no commit of this mount can fall
 * between the two unnoticed (in->version orders them).
 */
static int vfs_handle_new(struct vfs *v, struct vfs_inode *in, int flags, struct meta_attr *a,
			  uint64_t *fh)
{
	struct vfs_handle *h = calloc(1, sizeof(*h));
	int ret;

	if (!h) {
		vfs_inode_put(v, in);
		return -ENOMEM;
	}
	pthread_rwlock_wrlock(&in->rw);
	ret = vfs_load_locked(v, in, a);
	if (!ret && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY &&
	    (in->size > 0 || vfs_pending_locked(in))) {
		ret = vfs_stage_locked(v, in, 0);
		if (!ret && ftruncate(in->fd, 0) < 0)
			ret = -errno;
		if (!ret) {
			in->size = 0;
			in->mtime = vfs_now();
			in->dirty = true;
		}
	}
	pthread_rwlock_unlock(&in->rw);
	if (ret) {
		vfs_inode_put(v, in);
		free(h);
		return ret;
	}
	pthread_mutex_lock(&v->lock);
	if (in->dropped)
		ret = -ESTALE;
	else
		in->handles++;
	pthread_mutex_unlock(&v->lock);
	if (ret) {
		vfs_inode_put(v, in);
		free(h);
		return ret;
	}
	h->in = in;
	h->flags = flags;
	*fh = (uint64_t)(uintptr_t)h;
	return 0;
}

int vfs_create(struct vfs *v, const struct vfs_ctx *ctx, uint64_t parent, const char *name,
	       mode_t mode, int flags, struct stat *out, uint64_t *fh)
{
	struct vfs_inode *in;
	struct meta_attr a;
	uint64_t epoch = vfs_attr_epoch(v), dgen = vfs_dir_gen(v, parent);
	int64_t now = vfs_now();
	int ret = vfs_check_name(name);

	if (ret)
		return ret;
	ret = meta_create(v->meta, parent, name, strlen(name), S_IFREG | (mode & 07777), ctx->uid,
			  ctx->gid, 0, NULL, now, &a);
	vfs_dir_changed(v, parent, dgen, ret == 0, now, 0);
	if (ret)
		return ret;
	in = vfs_inode_get(v, a.ino);
	if (!in)
		return -ENOMEM;
	vfs_attr_keep(v, in, &a, epoch);
	pthread_mutex_lock(&in->alock);
	in->sysxattr_none_until = v->attr_ttl > 0 ? vfs_mono() + v->attr_ttl : 0;
	in->sysxattr_epoch = epoch;
	pthread_mutex_unlock(&in->alock);
	ret = vfs_handle_new(v, in, flags & ~O_TRUNC, &a, fh);
	if (ret)
		return ret;
	vfs_stat_from(&a, out);
	return 0;
}

int vfs_open_file(struct vfs *v, uint64_t ino, int flags, uint64_t *fh)
{
	struct vfs_inode *in = vfs_inode_get(v, ino);
	struct meta_attr a;
	int ret;

	if (!in)
		return -ENOMEM;
	/* always asked: close-to-open, and the guard against a vanished inode below */
	uint64_t epoch = vfs_attr_epoch(v);

	ret = meta_getattr(v->meta, ino, &a);
	if (!ret)
		vfs_attr_keep(v, in, &a, epoch);
	/*
	 * The kernel's cached name led to an inode that is gone (replaced by
	 * a rename, removed elsewhere): ESTALE makes it look the name up again
	 * instead of failing the open, as POSIX wants for rename over a file.
	 */
	if (ret == -ENOENT)
		ret = -ESTALE;
	if (!ret && S_ISDIR(a.mode))
		ret = -EISDIR;
	if (ret) {
		vfs_inode_put(v, in);
		return ret;
	}
	return vfs_handle_new(v, in, flags, &a, fh);
}

ssize_t vfs_read(struct vfs *v, uint64_t fh, char *buf, size_t size, off_t off)
{
	struct vfs_handle *h = (struct vfs_handle *)(uintptr_t)fh;
	struct vfs_inode *in = h->in;
	uint64_t end;
	ssize_t ret = 0;
	size_t done = 0;

	if (off < 0)
		return -EINVAL;
	pthread_rwlock_rdlock(&in->rw);
	if (in->fd < 0 && (vfs_pending_locked(in) || (in->has_content && !in->blob))) {
		/* first read: open the journal record or get the cached blob (exclusive) */
		pthread_rwlock_unlock(&in->rw);
		pthread_rwlock_wrlock(&in->rw);
		if (vfs_pending_locked(in))
			ret = vfs_record_fd_locked(in);
		else if (in->fd < 0)
			ret = vfs_blob_locked(v, in);
		pthread_rwlock_unlock(&in->rw);
		if (ret)
			return ret;
		pthread_rwlock_rdlock(&in->rw);
	}
	if ((uint64_t)off >= in->size)
		goto out;
	end = (uint64_t)off + size;
	if (end > in->size)
		end = in->size;
	if (in->fd < 0 && in->blob) {
		/* clean content: the read cache fetches and verifies what is missing */
		while ((uint64_t)off + done < end) {
			ssize_t n = cache_blob_read(
			    in->blob, buf + done, end - (uint64_t)off - done, (uint64_t)off + done);

			if (n < 0) {
				ret = n;
				goto out;
			}
			if (n == 0)
				break;
			done += (size_t)n;
		}
	} else if (in->fd >= 0) {
		while ((uint64_t)off + done < end) {
			ssize_t n = pread(in->fd, buf + done, end - (uint64_t)off - done,
					  off + (off_t)done);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				ret = -errno;
				log_error("inode %llu: read of %s failed: %s",
					  (unsigned long long)in->ino,
					  in->staging ? in->staging : "cached blob",
					  strerror(errno));
				goto out;
			}
			if (n == 0)
				break; /* a hole at the end: zeros below */
			done += (size_t)n;
		}
	}
	/* past the content's end but within the size: zeros */
	memset(buf + done, 0, end - (uint64_t)off - done);
	done = end - (uint64_t)off;
out:
	pthread_rwlock_unlock(&in->rw);
	return ret ? ret : (ssize_t)done;
}

ssize_t vfs_write(struct vfs *v, uint64_t fh, const char *buf, size_t size, off_t off)
{
	struct vfs_handle *h = (struct vfs_handle *)(uintptr_t)fh;
	struct vfs_inode *in = h->in;
	size_t done = 0;
	int ret;

	if (off < 0)
		return -EINVAL;
	pthread_rwlock_wrlock(&in->rw);
	ret = vfs_stage_locked(v, in, in->size);
	if (ret)
		goto out;
	if (h->flags & O_APPEND)
		off = (off_t)in->size;
	/* room in the cache first: waits while uploads drain, then ENOSPC */
	ret = vfs_reserve_locked(v, in, (uint64_t)off + size);
	if (ret)
		goto out;
	while (done < size) {
		ssize_t n = pwrite(in->fd, buf + done, size - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			log_error("inode %llu: write to staging file %s failed: %s",
				  (unsigned long long)in->ino, in->staging, strerror(errno));
			break;
		}
		done += (size_t)n;
	}
	if (done > 0) {
		if ((uint64_t)off + done > in->size)
			in->size = (uint64_t)off + done;
		in->mtime = vfs_now();
		in->dirty = true;
		vfs_writeback_locked(in, (uint64_t)off + done);
	}
out:
	pthread_rwlock_unlock(&in->rw);
	return done > 0 ? (ssize_t)done : ret;
}

int vfs_flush(struct vfs *v, uint64_t fh)
{
	struct vfs_handle *h = (struct vfs_handle *)(uintptr_t)fh;
	struct vfs_inode *in = h->in;
	bool unlinked;
	int ret;

	/* a reader's close says nothing about the writers' data: they seal at theirs */
	if ((h->flags & O_ACCMODE) == O_RDONLY)
		return 0;
	pthread_mutex_lock(&v->lock);
	unlinked = in->unlinked;
	pthread_mutex_unlock(&v->lock);
	if (unlinked)
		return 0; /* nobody can see it again: nothing to make durable */
	if (!v->cfg->cache.writeback)
		return vfs_commit_now(v, in);
	pthread_rwlock_wrlock(&in->rw);
	ret = vfs_seal_locked(v, in);
	pthread_rwlock_unlock(&in->rw);
	return ret;
}

int vfs_fsync(struct vfs *v, uint64_t fh, bool datasync)
{
	struct vfs_handle *h = (struct vfs_handle *)(uintptr_t)fh;
	bool unlinked;

	(void)datasync;
	pthread_mutex_lock(&v->lock);
	unlinked = h->in->unlinked;
	pthread_mutex_unlock(&v->lock);
	if (unlinked)
		return 0;
	return vfs_commit_now(v, h->in);
}

int vfs_fsyncdir(struct vfs *v)
{
	return meta_sync(v->meta);
}

int vfs_release(struct vfs *v, uint64_t fh)
{
	struct vfs_handle *h = (struct vfs_handle *)(uintptr_t)fh;
	struct vfs_inode *in = h->in;
	bool last, unlinked;

	pthread_mutex_lock(&v->lock);
	last = --in->handles == 0;
	unlinked = in->unlinked;
	pthread_mutex_unlock(&v->lock);
	if (last) {
		pthread_rwlock_wrlock(&in->rw);
		/* written through a handle that never flushed (rare): seal it now */
		if (!unlinked)
			vfs_seal_locked(v, in);
		/* a file waiting for upload keeps no descriptor while nobody has it open */
		if (!in->staging && (in->sealed || in->uploading) && in->fd >= 0) {
			close(in->fd);
			in->fd = -1;
		}
		pthread_rwlock_unlock(&in->rw);
	}
	vfs_inode_put(v, in);
	free(h);
	return 0;
}

/* ---- directories ---- */

struct vfs_readdir_state {
	struct vfs *v;
	vfs_dirent_cb cb;
	void *arg;
	uint64_t gen; /* commit_gen before the listing's query */
	bool stopped;
};

static int vfs_readdir_one(void *arg, const char *name, size_t namelen, uint64_t pos,
			   const struct meta_attr *a)
{
	struct vfs_readdir_state *s = arg;
	struct stat st;

	(void)namelen;
	vfs_stat_from(a, &st);
	if (S_ISREG(a->mode)) {
		struct meta_attr b;
		bool again;

		/*
		 * readdirplus: sizes not yet committed come from this mount;
		 * a row read before a commit of this mount that has landed
		 * since (its inode gone from the table) is read again, or the
		 * kernel would cache the size before the commit (0 for a new
		 * file) and read nothing.
		 */
		vfs_overlay(s->v, a, s->gen, &st, &again);
		if (again && vfs_attr(s->v, a->ino, &b, &st) != 0)
			vfs_stat_from(a, &st);
	}
	if (s->cb(s->arg, name, &st, (off_t)(pos + 2))) {
		s->stopped = true;
		return 1;
	}
	return 0;
}

int vfs_readdir(struct vfs *v, uint64_t ino, off_t off, int limit, vfs_dirent_cb cb, void *arg)
{
	struct vfs_readdir_state s = {
	    .v = v, .cb = cb, .arg = arg, .gen = __atomic_load_n(&v->commit_gen, __ATOMIC_ACQUIRE)};
	struct stat st = {0};
	struct meta_attr a;
	int ret;

	if (off < 2) {
		ret = meta_getattr(v->meta, ino, &a);
		if (ret)
			return ret;
		vfs_stat_from(&a, &st);
		if (off < 1 && cb(arg, ".", &st, 1))
			return 0;
		if (ino != 1) {
			uint64_t parent = 0;

			if (meta_parent(v->meta, ino, &parent) == 0)
				st.st_ino = parent;
		}
		if (cb(arg, "..", &st, 2))
			return 0;
		off = 2;
	}
	/* one batch per call: the kernel asks again from the last offset it got */
	ret = meta_readdir(v->meta, ino, (uint64_t)off - 2, limit, vfs_readdir_one, &s);
	return ret < 0 ? ret : 0;
}

int vfs_statfs(struct vfs *v, struct statvfs *out)
{
	struct meta_stats ms;
	uint64_t total_blocks = (1ULL << 50) / 4096; /* 1 PiB: the store grows as needed */
	uint64_t total_files = 1ULL << 40;
	uint64_t used_blocks, used_files;
	int ret = meta_stats(v->meta, &ms);

	if (ret)
		return ret;
	used_blocks = (ms.blob_bytes + 4095) / 4096;
	used_files = ms.files + ms.dirs + ms.others;
	memset(out, 0, sizeof(*out));
	out->f_bsize = 4096;
	out->f_frsize = 4096;
	out->f_blocks = total_blocks;
	out->f_bfree = total_blocks > used_blocks ? total_blocks - used_blocks : 0;
	out->f_bavail = out->f_bfree;
	out->f_files = total_files;
	out->f_ffree = total_files - used_files;
	out->f_favail = out->f_ffree;
	out->f_namemax = META_NAME_MAX;
	return 0;
}

/* ---- extended attributes ---- */

/* Which names are stored: user.*, trusted.*, security.*; system.* is not supported. */
static int vfs_xattr_name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > XATTR_NAME_MAX)
		return -ERANGE;
	if (!strncmp(name, "user.", 5) || !strncmp(name, "trusted.", 8) ||
	    !strncmp(name, "security.", 9))
		return 0;
	return -EOPNOTSUPP;
}

int vfs_setxattr(struct vfs *v, const struct vfs_ctx *ctx, uint64_t ino, const char *name,
		 const char *value, size_t size, int flags)
{
	int ret = vfs_xattr_name_ok(name);

	(void)ctx;
	if (ret)
		return ret;
	if (size > META_XATTR_SIZE_MAX)
		return -E2BIG;
	ret = vfs_docs_setxattr(v, ino, name, value, size);
	if (ret == -ENOTSUP)
		ret = meta_setxattr(v->meta, ino, name, value, size, flags, vfs_now());
	vfs_attr_epoch_bump(v); /* the change time moved; a system attribute may be there */
	vfs_dir_forget(v, ino);
	return ret;
}

ssize_t vfs_getxattr(struct vfs *v, uint64_t ino, const char *name, char *buf, size_t size)
{
	int ret = vfs_xattr_name_ok(name);
	ssize_t n;

	if (ret)
		return ret == -EOPNOTSUPP ? -ENODATA : ret;
	if (name[0] == 's' || name[0] == 't') {
		/* security.* / trusted.*: the kernel asks before every first write */
		struct vfs_inode *in = vfs_inode_find(v, ino);
		bool none = false;

		if (in) {
			pthread_mutex_lock(&in->alock);
			none = in->sysxattr_none_until > vfs_mono() &&
			       in->sysxattr_epoch == vfs_attr_epoch(v);
			pthread_mutex_unlock(&in->alock);
			vfs_inode_put(v, in);
		}
		if (none)
			return -ENODATA;
	}
	n = vfs_docs_getxattr(v, ino, name, buf, size);
	if (n != -ENOTSUP)
		return n;
	return meta_getxattr(v->meta, ino, name, buf, size);
}

ssize_t vfs_listxattr(struct vfs *v, uint64_t ino, char *buf, size_t size)
{
	ssize_t own = vfs_docs_listxattr(v, ino, buf, size), plain;

	if (own < 0)
		return own;
	if (size > 0 && (size_t)own > size)
		return -ERANGE;
	plain =
	    meta_listxattr(v->meta, ino, size ? buf + own : NULL, size ? size - (size_t)own : 0);
	if (plain < 0)
		return plain;
	if (size > 0 && (size_t)own == size && plain > 0)
		return -ERANGE; /* no room left, and size 0 asked for the length */
	return own + plain;
}

int vfs_removexattr(struct vfs *v, uint64_t ino, const char *name)
{
	int ret = vfs_xattr_name_ok(name);

	if (ret)
		return ret == -EOPNOTSUPP ? -ENODATA : ret;
	ret = vfs_docs_removexattr(v, ino, name);
	if (ret == -ENOTSUP)
		ret = meta_removexattr(v->meta, ino, name, vfs_now());
	vfs_attr_epoch_bump(v); /* the change time moved (user.docvault.tags too) */
	vfs_dir_forget(v, ino);
	return ret;
}

/* ---- for the rest of the vfs layer (vfs_priv.h) ---- */

struct meta *vfs_meta(struct vfs *v)
{
	return v->meta;
}

bool vfs_is_pending(struct vfs *v, uint64_t ino)
{
	struct vfs_inode *in = vfs_inode_find(v, ino);
	bool pending = false;

	if (!in)
		return false;
	pthread_rwlock_rdlock(&in->rw);
	pending = vfs_pending_locked(in);
	pthread_rwlock_unlock(&in->rw);
	vfs_inode_put(v, in);
	return pending;
}

int64_t vfs_clock_ns(void)
{
	return vfs_now();
}
