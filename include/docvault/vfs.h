/*
 * vfs.h - the filesystem's POSIX semantics, with no FUSE types: the layer
 * between the FUSE glue (fs/ops.c) and the backend (meta, store, cache).
 * It owns the table of open inodes and their content state, and it is the
 * one place that decides ordering: data before metadata (content reaches
 * the store before PostgreSQL names it).
 *
 * Attributes travel as struct stat. Every call returns 0 (or a count) or a
 * negative errno and is thread-safe. Handles (uint64_t fh) come from
 * vfs_open()/vfs_create() and are freed by vfs_release().
 */
#ifndef DOCVAULT_VFS_H
#define DOCVAULT_VFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

struct dv_config;
struct vfs;

/* Who is asking (from the request). */
struct vfs_ctx {
	uint32_t uid, gid;
	int32_t pid;
};

/* setattr: which fields of the struct stat to apply. */
enum {
	VFS_SET_MODE = 1 << 0,
	VFS_SET_UID = 1 << 1,
	VFS_SET_GID = 1 << 2,
	VFS_SET_SIZE = 1 << 3,
	VFS_SET_ATIME = 1 << 4,
	VFS_SET_MTIME = 1 << 5,
	VFS_SET_ATIME_NOW = 1 << 6,
	VFS_SET_MTIME_NOW = 1 << 7,
	VFS_SET_CTIME = 1 << 8,
};

/*
 * Opens the vault the configuration names: PostgreSQL (schema checked),
 * the store, the cache (locked), and registers this mount's session.
 * On failure returns a negative errno and one line in err naming the file,
 * server or directory at fault.
 */
int vfs_open(const struct dv_config *cfg, struct vfs **out, char *err, size_t errlen);
/* A mount whose heartbeat is silent this long (seconds) is taken for dead. */
#define VFS_SESSION_TIMEOUT_S 60
/* Starts the background threads (heartbeat). Call after daemonising. */
int vfs_start(struct vfs *v);
/* Commits what is still dirty, ends the session and frees everything. */
void vfs_close(struct vfs *v);

int vfs_lookup(struct vfs *v, uint64_t parent, const char *name, struct stat *out);
int vfs_getattr(struct vfs *v, uint64_t ino, struct stat *out);
/* fh is the handle when the kernel has one (ftruncate), else 0. */
int vfs_setattr(struct vfs *v, const struct vfs_ctx *ctx, uint64_t ino, const struct stat *attr,
		int valid, uint64_t fh, struct stat *out);
int vfs_mknod(struct vfs *v, const struct vfs_ctx *ctx, uint64_t parent, const char *name,
	      mode_t mode, dev_t rdev, struct stat *out);
int vfs_mkdir(struct vfs *v, const struct vfs_ctx *ctx, uint64_t parent, const char *name,
	      mode_t mode, struct stat *out);
int vfs_symlink(struct vfs *v, const struct vfs_ctx *ctx, uint64_t parent, const char *name,
		const char *target, struct stat *out);
int vfs_link(struct vfs *v, uint64_t ino, uint64_t newparent, const char *name, struct stat *out);
int vfs_unlink(struct vfs *v, uint64_t parent, const char *name);
int vfs_rmdir(struct vfs *v, uint64_t parent, const char *name);
int vfs_rename(struct vfs *v, uint64_t parent, const char *name, uint64_t newparent,
	       const char *newname, unsigned int flags);
/* Fills buf (NUL-terminated); returns the target's length. */
int vfs_readlink(struct vfs *v, uint64_t ino, char *buf, size_t size);

int vfs_create(struct vfs *v, const struct vfs_ctx *ctx, uint64_t parent, const char *name,
	       mode_t mode, int flags, struct stat *out, uint64_t *fh);
int vfs_open_file(struct vfs *v, uint64_t ino, int flags, uint64_t *fh);
/* Returns the number of bytes read (0 at the end) or a negative errno. */
ssize_t vfs_read(struct vfs *v, uint64_t fh, char *buf, size_t size, off_t off);
ssize_t vfs_write(struct vfs *v, uint64_t fh, const char *buf, size_t size, off_t off);
/*
 * flush: at every close(2) of a descriptor. A writer's content is sealed
 * into the cache's journal (durable on local disk) and queued for upload;
 * with [cache] writeback = false it is committed before flush returns.
 */
int vfs_flush(struct vfs *v, uint64_t fh);
/* Returns once the file's content and metadata are committed (store + PostgreSQL). */
int vfs_fsync(struct vfs *v, uint64_t fh, bool datasync);
/* Makes every namespace change made so far durable in PostgreSQL. */
int vfs_fsyncdir(struct vfs *v);
int vfs_release(struct vfs *v, uint64_t fh);

/*
 * Lists a directory from offset off (0 = start). cb gets each entry with
 * the offset of the entry after it; returning non-zero stops (that entry is
 * not consumed). `limit` bounds the entries fetched in one go.
 */
typedef int (*vfs_dirent_cb)(void *arg, const char *name, const struct stat *st, off_t next);
int vfs_readdir(struct vfs *v, uint64_t ino, off_t off, int limit, vfs_dirent_cb cb, void *arg);

int vfs_statfs(struct vfs *v, struct statvfs *out);

int vfs_setxattr(struct vfs *v, const struct vfs_ctx *ctx, uint64_t ino, const char *name,
		 const char *value, size_t size, int flags);
ssize_t vfs_getxattr(struct vfs *v, uint64_t ino, const char *name, char *buf, size_t size);
ssize_t vfs_listxattr(struct vfs *v, uint64_t ino, char *buf, size_t size);
int vfs_removexattr(struct vfs *v, uint64_t ino, const char *name);

#endif
