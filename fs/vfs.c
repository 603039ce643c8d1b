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
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "docvault/cache.h"
#include "docvault/checksum.h"
#include "docvault/config.h"
#include "docvault/log.h"
#include "docvault/meta.h"
#include "docvault/store.h"
#include "docvault/vfs.h"

#define VFS_BUCKETS	      1024
#define VFS_HEARTBEAT_S	      10
#define VFS_SESSION_TIMEOUT_S 60
#define VFS_FREEQ_BATCH	      256
#define VFS_FREEQ_MAX	      65536

struct vfs_inode {
	uint64_t ino;
	int refs;		/* protected by vfs->lock */
	bool unlinked;		/* protected by vfs->lock */
	struct vfs_inode *next; /* protected by vfs->lock */
	pthread_rwlock_t rw;	/* protects everything below */
	bool loaded;		/* committed state below is known */
	bool has_content;	/* committed blob */
	unsigned char content[16];
	uint64_t size;	/* the file's size (committed or staged) */
	int64_t mtime;	/* valid when dirty */
	int fd;		/* staging file when staging, else cached blob, or -1 */
	char *staging;	/* path of the staging file, NULL when clean */
	bool dirty;	/* staging holds changes not committed */
	int commit_err; /* last commit failure, reported at flush/fsync */
};

struct vfs_handle {
	struct vfs_inode *in;
	int flags;
};

struct vfs {
	const struct dv_config *cfg;
	struct meta *meta;
	struct store *store;
	struct cache *cache;
	unsigned char secret[CHECKSUM_SECRET_SIZE];
	uint64_t sid;
	pthread_mutex_t lock;
	struct vfs_inode *table[VFS_BUCKETS]; /* protected by lock */
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
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stopping; /* protected by stop_lock */
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

static int vfs_commit_locked(struct vfs *v, struct vfs_inode *in);
static void vfs_free_drain(struct vfs *v);

/* Drops a reference; the last one commits, closes and, if unlinked, frees. */
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
	if (in->dirty && !unlinked && vfs_commit_locked(v, in))
		log_error("inode %llu: content written but not committed at last close; "
			  "staging file kept at %s for recovery",
			  (unsigned long long)ino, in->staging ? in->staging : "?");
	else if (in->staging)
		unlink(in->staging);
	if (in->fd >= 0)
		close(in->fd);
	free(in->staging);
	pthread_rwlock_destroy(&in->rw);
	free(in);
	if (unlinked)
		meta_free(v->meta, ino);
}

/* Loads the committed state of an inode not yet known here. Caller holds in->rw (write). */
static int vfs_load_locked(struct vfs *v, struct vfs_inode *in, struct meta_attr *a)
{
	struct meta_attr tmp;
	int ret;

	if (in->loaded && in->dirty)
		return 0;
	if (!a) {
		ret = meta_getattr(v->meta, in->ino, &tmp);
		if (ret)
			return ret;
		a = &tmp;
	}
	if (in->loaded && in->has_content == a->has_content &&
	    (!a->has_content || memcmp(in->content, a->content, 16) == 0)) {
		in->size = a->size;
		return 0;
	}
	/* new committed content (another mount's, or first open): drop the old copy */
	if (in->fd >= 0 && !in->staging) {
		close(in->fd);
		in->fd = -1;
	}
	in->has_content = a->has_content;
	memcpy(in->content, a->content, 16);
	in->size = a->size;
	in->loaded = true;
	return 0;
}

/* Opens the cached blob of a clean inode. Caller holds in->rw (write). */
static int vfs_blob_fd_locked(struct vfs *v, struct vfs_inode *in, uint64_t *blob_size)
{
	unsigned char sha[32];
	uint64_t size = 0;
	int ret;

	*blob_size = 0;
	if (!in->has_content)
		return 0;
	ret = meta_blob_find(v->meta, in->content, sha, &size);
	if (ret == -ENOENT) {
		char hex[CHECKSUM_HEX_SIZE];

		checksum_hex16(in->content, hex);
		log_error("inode %llu: its content %s is not recorded in dv_blobs; run fsck",
			  (unsigned long long)in->ino, hex);
		return -EIO;
	}
	if (ret)
		return ret;
	*blob_size = size;
	if (in->fd >= 0)
		return 0;
	return cache_blob_open(v->cache, v->store, in->content, size, &in->fd);
}

/*
 * Makes the inode dirty-capable: a staging file holding the first
 * `keep` bytes of the committed content. Caller holds in->rw (write).
 */
static int vfs_stage_locked(struct vfs *v, struct vfs_inode *in, uint64_t keep)
{
	uint64_t blob_size = 0;
	int fd, ret;
	char *path;

	if (in->staging)
		return 0;
	if (keep > 0 && in->has_content) {
		ret = vfs_blob_fd_locked(v, in, &blob_size);
		if (ret)
			return ret;
	}
	ret = cache_staging_new(v->cache, in->ino, &fd, &path);
	if (ret)
		return ret;
	if (keep > blob_size)
		keep = blob_size;
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
				return ret;
			}
			left -= (uint64_t)n;
		}
	}
	if (in->fd >= 0)
		close(in->fd);
	in->fd = fd;
	in->staging = path;
	return 0;
}

/*
 * Commits a dirty inode: hash, upload unless known, then PostgreSQL.
 * Caller holds in->rw (write) or is the last holder.
 */
static int vfs_commit_locked(struct vfs *v, struct vfs_inode *in)
{
	struct checksum sum;
	struct meta_attr a;
	char key[STORE_BLOB_KEY_SIZE];
	int64_t mtime = in->mtime;
	int ret;

	if (!in->dirty)
		return 0;
	if (in->size > 0) {
		unsigned char known_sha[32];
		uint64_t known_size;

		if (ftruncate(in->fd, (off_t)in->size) < 0) {
			ret = -errno;
			log_error("inode %llu: cannot size staging file %s: %s",
				  (unsigned long long)in->ino, in->staging, strerror(errno));
			goto fail;
		}
		ret = checksum_fd(in->fd, in->size, v->secret, &sum);
		if (ret) {
			log_error("inode %llu: cannot read staging file %s: %s",
				  (unsigned long long)in->ino, in->staging, strerror(-ret));
			goto fail;
		}
		ret = meta_blob_find(v->meta, sum.keyed, known_sha, &known_size);
		if (ret == 0 &&
		    (memcmp(known_sha, sum.sha256, 32) != 0 || known_size != in->size)) {
			char hex[CHECKSUM_HEX_SIZE];

			checksum_hex16(sum.keyed, hex);
			log_error("inode %llu: keyed hash %s collides with a different blob "
				  "(SHA-256 differs); refusing to deduplicate",
				  (unsigned long long)in->ino, hex);
			ret = -EIO;
			goto fail;
		}
		if (ret == -ENOENT) {
			store_blob_key(sum.keyed, key);
			ret = store_put_fd(v->store, key, in->fd, in->size, sum.sha256);
		}
		if (ret)
			goto fail;
	}
	ret = meta_commit(v->meta, in->ino, in->size ? &sum : NULL, in->size, mtime, vfs_now(), &a);
	if (ret)
		goto fail;
	/* the staging file is now the cached copy of the blob */
	if (in->size > 0) {
		if (cache_adopt(v->cache, in->staging, sum.keyed) < 0) {
			close(in->fd);
			in->fd = -1;
		}
		in->has_content = true;
		memcpy(in->content, sum.keyed, 16);
	} else {
		unlink(in->staging);
		close(in->fd);
		in->fd = -1;
		in->has_content = false;
	}
	free(in->staging);
	in->staging = NULL;
	in->dirty = false;
	in->commit_err = 0;
	return 0;
fail:
	in->commit_err = ret;
	return ret;
}

/* Overlays what this mount knows better than PostgreSQL (unflushed writes). */
static void vfs_overlay(struct vfs *v, uint64_t ino, struct stat *st)
{
	struct vfs_inode *in = vfs_inode_find(v, ino);

	if (!in)
		return;
	pthread_rwlock_rdlock(&in->rw);
	if (in->staging) {
		st->st_size = (off_t)in->size;
		st->st_blocks = (blkcnt_t)((in->size + 511) / 512);
		if (in->dirty) {
			st->st_mtim = vfs_ts(in->mtime);
			st->st_ctim = st->st_mtim;
		}
	}
	pthread_rwlock_unlock(&in->rw);
	vfs_inode_put(v, in);
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

		if (v->freeq_len > 0) {
			/* unlinked inodes wait at most 100 ms for company */
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

int vfs_open(const struct dv_config *cfg, struct vfs **out, char *err, size_t errlen)
{
	char host[256] = "?";
	struct vfs *v;
	int ret;

	*out = NULL;
	v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	v->cfg = cfg;
	pthread_mutex_init(&v->lock, NULL);
	pthread_mutex_init(&v->stop_lock, NULL);
	pthread_cond_init(&v->stop_cond, NULL);
	ret = meta_open(cfg->database.conninfo, cfg->database.pool_size, &v->meta, err, errlen);
	if (ret)
		goto fail;
	ret = meta_check(v->meta, v->secret, err, errlen);
	if (ret)
		goto fail;
	ret = store_open(cfg, &v->store, err, errlen);
	if (ret)
		goto fail;
	ret = cache_open(cfg->cache.dir, cfg->cache.size, v->secret, &v->cache, err, errlen);
	if (ret)
		goto fail;
	gethostname(host, sizeof(host) - 1);
	ret = meta_session_start(v->meta, host, (int)getpid(), &v->sid);
	if (ret) {
		snprintf(err, errlen, "cannot register this mount in PostgreSQL");
		goto fail;
	}
	/* orphans left by mounts that died: here at once, elsewhere once silent */
	ret = meta_session_reap_host(v->meta, host, v->sid, vfs_pid_alive);
	if (ret > 0)
		log_info("cleaned up %d session(s) of dead processes on %s", ret, host);
	meta_session_reap(v->meta, VFS_SESSION_TIMEOUT_S);
	ret = 0;
	*out = v;
	return 0;
fail:
	vfs_close(v);
	return ret;
}

int vfs_start(struct vfs *v)
{
	int ret = pthread_create(&v->heartbeat, NULL, vfs_heartbeat_main, v);

	if (ret)
		return -ret;
	v->heartbeat_running = true;
	return 0;
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
	vfs_free_drain(v);
	free(v->freeq);
	/* inodes still open (the kernel never sent release): commit them */
	for (int b = 0; b < VFS_BUCKETS; b++) {
		while (v->table[b]) {
			struct vfs_inode *in = v->table[b];

			in->refs = 1;
			vfs_inode_put(v, in);
		}
	}
	if (v->sid && v->meta)
		meta_session_end(v->meta, v->sid);
	cache_close(v->cache);
	store_close(v->store);
	meta_close(v->meta);
	pthread_mutex_destroy(&v->lock);
	pthread_mutex_destroy(&v->stop_lock);
	pthread_cond_destroy(&v->stop_cond);
	free(v);
}

/* ---- namespace ---- */

int vfs_lookup(struct vfs *v, uint64_t parent, const char *name, struct stat *out)
{
	struct meta_attr a;
	int ret = vfs_check_name(name);

	if (ret)
		return ret;
	ret = meta_lookup(v->meta, parent, name, strlen(name), &a);
	if (ret)
		return ret;
	vfs_stat_from(&a, out);
	vfs_overlay(v, a.ino, out);
	return 0;
}

int vfs_getattr(struct vfs *v, uint64_t ino, struct stat *out)
{
	struct meta_attr a;
	int ret = meta_getattr(v->meta, ino, &a);

	if (ret)
		return ret;
	vfs_stat_from(&a, out);
	vfs_overlay(v, ino, out);
	return 0;
}

/* Changes the size of a file: staged, and committed at once if nobody has it open. */
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
		alone = in->refs == 1;
		pthread_mutex_unlock(&v->lock);
		if (alone)
			ret = vfs_commit_locked(v, in);
	}
	pthread_rwlock_unlock(&in->rw);
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
			if (in->dirty)
				in->mtime = sa.mtime;
			pthread_rwlock_unlock(&in->rw);
			vfs_inode_put(v, in);
		}
	}
	if (mvalid || (valid & (VFS_SET_CTIME | VFS_SET_SIZE)) == VFS_SET_CTIME)
		ret = meta_setattr(v->meta, ino, mvalid, &sa, now, &a);
	else
		ret = meta_getattr(v->meta, ino, &a);
	if (ret)
		return ret;
	vfs_stat_from(&a, out);
	vfs_overlay(v, ino, out);
	return 0;
}

static int vfs_make(struct vfs *v, const struct vfs_ctx *ctx, uint64_t parent, const char *name,
		    mode_t mode, dev_t rdev, const char *target, struct stat *out)
{
	struct meta_attr a;
	int ret = vfs_check_name(name);

	if (ret)
		return ret;
	ret = meta_create(v->meta, parent, name, strlen(name), mode, ctx->uid, ctx->gid, rdev,
			  target, vfs_now(), &a);
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
	int ret = vfs_check_name(name);

	if (ret)
		return ret;
	ret = meta_link(v->meta, ino, newparent, name, strlen(name), vfs_now(), &a);
	if (ret)
		return ret;
	vfs_stat_from(&a, out);
	vfs_overlay(v, ino, out);
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
	int ret = vfs_check_name(name);

	if (ret)
		return ret;
	ret = meta_unlink(v->meta, parent, name, strlen(name), v->sid, vfs_now(), &a);
	if (!ret && a.nlink == 0)
		vfs_orphaned(v, a.ino);
	return ret;
}

int vfs_rmdir(struct vfs *v, uint64_t parent, const char *name)
{
	struct meta_attr a;
	int ret = vfs_check_name(name);

	if (ret)
		return ret;
	ret = meta_rmdir(v->meta, parent, name, strlen(name), v->sid, vfs_now(), &a);
	if (!ret)
		vfs_free_later(v, a.ino);
	return ret;
}

int vfs_rename(struct vfs *v, uint64_t parent, const char *name, uint64_t newparent,
	       const char *newname, unsigned int flags)
{
	uint64_t orphan = 0;
	int ret = vfs_check_name(name);

	if (!ret)
		ret = vfs_check_name(newname);
	if (ret)
		return ret;
	if (flags & ~(unsigned int)(META_RENAME_NOREPLACE | META_RENAME_EXCHANGE))
		return -EINVAL;
	ret = meta_rename(v->meta, parent, name, strlen(name), newparent, newname, strlen(newname),
			  flags, v->sid, vfs_now(), &orphan);
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

static int vfs_handle_new(struct vfs *v, uint64_t ino, int flags, struct meta_attr *a, uint64_t *fh)
{
	struct vfs_handle *h = calloc(1, sizeof(*h));
	struct vfs_inode *in;
	int ret;

	if (!h)
		return -ENOMEM;
	in = vfs_inode_get(v, ino);
	if (!in) {
		free(h);
		return -ENOMEM;
	}
	pthread_rwlock_wrlock(&in->rw);
	ret = vfs_load_locked(v, in, a);
	if (!ret && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY &&
	    (in->size > 0 || in->dirty)) {
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
	h->in = in;
	h->flags = flags;
	*fh = (uint64_t)(uintptr_t)h;
	return 0;
}

int vfs_create(struct vfs *v, const struct vfs_ctx *ctx, uint64_t parent, const char *name,
	       mode_t mode, int flags, struct stat *out, uint64_t *fh)
{
	struct meta_attr a;
	int ret = vfs_check_name(name);

	if (ret)
		return ret;
	ret = meta_create(v->meta, parent, name, strlen(name), S_IFREG | (mode & 07777), ctx->uid,
			  ctx->gid, 0, NULL, vfs_now(), &a);
	if (ret)
		return ret;
	ret = vfs_handle_new(v, a.ino, flags & ~O_TRUNC, &a, fh);
	if (ret)
		return ret;
	vfs_stat_from(&a, out);
	return 0;
}

int vfs_open_file(struct vfs *v, uint64_t ino, int flags, uint64_t *fh)
{
	struct meta_attr a;
	int ret = meta_getattr(v->meta, ino, &a);

	if (ret)
		return ret;
	if (S_ISDIR(a.mode))
		return -EISDIR;
	return vfs_handle_new(v, ino, flags, &a, fh);
}

ssize_t vfs_read(struct vfs *v, uint64_t fh, char *buf, size_t size, off_t off)
{
	struct vfs_handle *h = (struct vfs_handle *)(uintptr_t)fh;
	struct vfs_inode *in = h->in;
	uint64_t blob_size = 0, end;
	ssize_t ret = 0;
	size_t done = 0;

	if (off < 0)
		return -EINVAL;
	pthread_rwlock_rdlock(&in->rw);
	if (!in->staging && in->has_content && in->fd < 0) {
		/* first read of a clean file: open the cached blob (exclusive) */
		pthread_rwlock_unlock(&in->rw);
		pthread_rwlock_wrlock(&in->rw);
		if (!in->staging && in->fd < 0)
			ret = vfs_blob_fd_locked(v, in, &blob_size);
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
	if (in->fd >= 0) {
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
	}
out:
	pthread_rwlock_unlock(&in->rw);
	return done > 0 ? (ssize_t)done : ret;
}

static int vfs_commit_handle(struct vfs *v, uint64_t fh)
{
	struct vfs_handle *h = (struct vfs_handle *)(uintptr_t)fh;
	struct vfs_inode *in = h->in;
	bool unlinked;
	int ret;

	pthread_mutex_lock(&v->lock);
	unlinked = in->unlinked;
	pthread_mutex_unlock(&v->lock);
	if (unlinked)
		return 0; /* nobody can see it again: nothing to make durable */
	pthread_rwlock_wrlock(&in->rw);
	ret = vfs_commit_locked(v, in);
	pthread_rwlock_unlock(&in->rw);
	return ret;
}

int vfs_flush(struct vfs *v, uint64_t fh)
{
	struct vfs_handle *h = (struct vfs_handle *)(uintptr_t)fh;

	/* a reader's close says nothing about the writers' data: they commit at theirs */
	if ((h->flags & O_ACCMODE) == O_RDONLY)
		return 0;
	return vfs_commit_handle(v, fh);
}

int vfs_fsync(struct vfs *v, uint64_t fh, bool datasync)
{
	(void)datasync;
	return vfs_commit_handle(v, fh);
}

int vfs_release(struct vfs *v, uint64_t fh)
{
	struct vfs_handle *h = (struct vfs_handle *)(uintptr_t)fh;

	vfs_inode_put(v, h->in);
	free(h);
	return 0;
}

/* ---- directories ---- */

struct vfs_readdir_state {
	vfs_dirent_cb cb;
	void *arg;
	bool stopped;
};

static int vfs_readdir_one(void *arg, const char *name, size_t namelen, uint64_t pos,
			   const struct meta_attr *a)
{
	struct vfs_readdir_state *s = arg;
	struct stat st;

	(void)namelen;
	vfs_stat_from(a, &st);
	if (s->cb(s->arg, name, &st, (off_t)(pos + 2))) {
		s->stopped = true;
		return 1;
	}
	return 0;
}

int vfs_readdir(struct vfs *v, uint64_t ino, off_t off, int limit, vfs_dirent_cb cb, void *arg)
{
	struct vfs_readdir_state s = {.cb = cb, .arg = arg};
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
	return meta_setxattr(v->meta, ino, name, value, size, flags, vfs_now());
}

ssize_t vfs_getxattr(struct vfs *v, uint64_t ino, const char *name, char *buf, size_t size)
{
	int ret = vfs_xattr_name_ok(name);

	if (ret)
		return ret == -EOPNOTSUPP ? -ENODATA : ret;
	return meta_getxattr(v->meta, ino, name, buf, size);
}

ssize_t vfs_listxattr(struct vfs *v, uint64_t ino, char *buf, size_t size)
{
	return meta_listxattr(v->meta, ino, buf, size);
}

int vfs_removexattr(struct vfs *v, uint64_t ino, const char *name)
{
	int ret = vfs_xattr_name_ok(name);

	if (ret)
		return ret == -EOPNOTSUPP ? -ENODATA : ret;
	return meta_removexattr(v->meta, ino, name, vfs_now());
}
