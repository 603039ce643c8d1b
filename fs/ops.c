/*
 * ops.c - the FUSE low-level glue: decode the request, call the vfs layer,
 * reply exactly once (`return (void)fuse_reply_err(req, -ret)` on failure).
 * No POSIX policy lives here; that is fs/vfs.c's job.
 *
 * Lookup counts: inode numbers are database ids and never reused, and
 * nothing is kept per looked-up inode, so forget is a no-op. The kernel's
 * default_permissions does the access checks from the mode, uid and gid
 * that getattr returns.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "docvault/log.h"
#include "docvault/vfs.h"
#include "ops.h"

static struct ops_ctx *ops_ctx_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct vfs *ops_vfs(fuse_req_t req)
{
	return ops_ctx_of(req)->vfs;
}

static void ops_caller(fuse_req_t req, struct vfs_ctx *c)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);

	c->uid = fc->uid;
	c->gid = fc->gid;
	c->pid = fc->pid;
}

static void ops_reply_entry(fuse_req_t req, const struct stat *st)
{
	struct ops_ctx *oc = ops_ctx_of(req);
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = st->st_ino;
	e.attr = *st;
	e.attr_timeout = oc->attr_timeout;
	e.entry_timeout = oc->entry_timeout;
	fuse_reply_entry(req, &e);
}

static void ops_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	conn->max_write = 1 << 20;
	conn->max_readahead = 1 << 20;
}

static void ops_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct stat st;
	int ret = vfs_lookup(ops_vfs(req), parent, name, &st);

	if (ret == -ENOENT) {
		/* a negative entry, cached by the kernel like a positive one */
		struct fuse_entry_param e;

		memset(&e, 0, sizeof(e));
		e.entry_timeout = ops_ctx_of(req)->entry_timeout;
		return (void)fuse_reply_entry(req, &e);
	}
	if (ret)
		return (void)fuse_reply_err(req, -ret);
	ops_reply_entry(req, &st);
}

static void ops_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void ops_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

static void ops_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int ret = vfs_getattr(ops_vfs(req), ino, &st);

	(void)fi;
	if (ret)
		return (void)fuse_reply_err(req, -ret);
	fuse_reply_attr(req, &st, ops_ctx_of(req)->attr_timeout);
}

static void ops_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	struct vfs_ctx c;
	struct stat st;
	int valid = 0, ret;

	ops_caller(req, &c);
	if (to_set & FUSE_SET_ATTR_MODE)
		valid |= VFS_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		valid |= VFS_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		valid |= VFS_SET_GID;
	if (to_set & FUSE_SET_ATTR_SIZE)
		valid |= VFS_SET_SIZE;
	if (to_set & FUSE_SET_ATTR_ATIME)
		valid |= VFS_SET_ATIME;
	if (to_set & FUSE_SET_ATTR_MTIME)
		valid |= VFS_SET_MTIME;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		valid |= VFS_SET_ATIME_NOW;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		valid |= VFS_SET_MTIME_NOW;
	if (to_set & FUSE_SET_ATTR_CTIME)
		valid |= VFS_SET_CTIME;
	ret = vfs_setattr(ops_vfs(req), &c, ino, attr, valid, fi ? fi->fh : 0, &st);
	if (ret)
		return (void)fuse_reply_err(req, -ret);
	fuse_reply_attr(req, &st, ops_ctx_of(req)->attr_timeout);
}

static void ops_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX];
	int ret = vfs_readlink(ops_vfs(req), ino, buf, sizeof(buf));

	if (ret < 0)
		return (void)fuse_reply_err(req, -ret);
	fuse_reply_readlink(req, buf);
}

static void ops_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct vfs_ctx c;
	struct stat st;
	int ret;

	ops_caller(req, &c);
	ret = vfs_mknod(ops_vfs(req), &c, parent, name, mode, rdev, &st);
	if (ret)
		return (void)fuse_reply_err(req, -ret);
	ops_reply_entry(req, &st);
}

static void ops_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct vfs_ctx c;
	struct stat st;
	int ret;

	ops_caller(req, &c);
	ret = vfs_mkdir(ops_vfs(req), &c, parent, name, mode, &st);
	if (ret)
		return (void)fuse_reply_err(req, -ret);
	ops_reply_entry(req, &st);
}

static void ops_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -vfs_unlink(ops_vfs(req), parent, name));
}

static void ops_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -vfs_rmdir(ops_vfs(req), parent, name));
}

static void ops_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct vfs_ctx c;
	struct stat st;
	int ret;

	ops_caller(req, &c);
	ret = vfs_symlink(ops_vfs(req), &c, parent, name, link, &st);
	if (ret)
		return (void)fuse_reply_err(req, -ret);
	ops_reply_entry(req, &st);
}

static void ops_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		       const char *newname, unsigned int flags)
{
	fuse_reply_err(req, -vfs_rename(ops_vfs(req), parent, name, newparent, newname, flags));
}

static void ops_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct stat st;
	int ret = vfs_link(ops_vfs(req), ino, newparent, newname, &st);

	if (ret)
		return (void)fuse_reply_err(req, -ret);
	ops_reply_entry(req, &st);
}

static void ops_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	uint64_t fh;
	int ret = vfs_open_file(ops_vfs(req), ino, fi->flags, &fh);

	if (ret)
		return (void)fuse_reply_err(req, -ret);
	fi->fh = fh;
	/*
	 * Keep the kernel's page cache across opens: this mount's own writes go
	 * through it, and a change made elsewhere shows as a new mtime or size
	 * at the next attribute refresh, which drops the cache
	 * (FUSE_CAP_AUTO_INVAL_DATA). Cached reads then never reach us.
	 */
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) == -ENOENT)
		vfs_release(ops_vfs(req), fh); /* the caller was interrupted */
}

static void ops_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		       struct fuse_file_info *fi)
{
	struct ops_ctx *oc = ops_ctx_of(req);
	struct fuse_entry_param e;
	struct vfs_ctx c;
	uint64_t fh;
	int ret;

	ops_caller(req, &c);
	memset(&e, 0, sizeof(e));
	ret = vfs_create(oc->vfs, &c, parent, name, mode, fi->flags, &e.attr, &fh);
	if (ret)
		return (void)fuse_reply_err(req, -ret);
	e.ino = e.attr.st_ino;
	e.attr_timeout = oc->attr_timeout;
	e.entry_timeout = oc->entry_timeout;
	fi->fh = fh;
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		vfs_release(oc->vfs, fh);
}

static void ops_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	char *buf = malloc(size ? size : 1);
	ssize_t n;

	(void)ino;
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	n = vfs_read(ops_vfs(req), fi->fh, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void ops_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	ssize_t n = vfs_write(ops_vfs(req), fi->fh, buf, size, off);

	(void)ino;
	if (n < 0)
		return (void)fuse_reply_err(req, (int)-n);
	fuse_reply_write(req, (size_t)n);
}

static void ops_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -vfs_flush(ops_vfs(req), fi->fh));
}

static void ops_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -vfs_release(ops_vfs(req), fi->fh));
}

static void ops_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -vfs_fsync(ops_vfs(req), fi->fh, datasync != 0));
}

static void ops_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

struct ops_dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	bool plus;
	double attr_timeout, entry_timeout;
};

static int ops_dirent(void *arg, const char *name, const struct stat *st, off_t next)
{
	struct ops_dirbuf *d = arg;
	size_t n;

	if (d->plus) {
		struct fuse_entry_param e;

		memset(&e, 0, sizeof(e));
		e.attr = *st;
		/* "." and ".." are not looked up by the kernel */
		if (strcmp(name, ".") && strcmp(name, "..")) {
			e.ino = st->st_ino;
			e.attr_timeout = d->attr_timeout;
			e.entry_timeout = d->entry_timeout;
		}
		n = fuse_add_direntry_plus(d->req, d->buf + d->used, d->size - d->used, name, &e,
					   next);
	} else {
		n = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, name, st, next);
	}
	if (n > d->size - d->used)
		return 1;
	d->used += n;
	return 0;
}

static void ops_readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct ops_ctx *oc = ops_ctx_of(req);
	struct ops_dirbuf d = {.req = req,
			       .size = size,
			       .plus = plus,
			       .attr_timeout = oc->attr_timeout,
			       .entry_timeout = oc->entry_timeout};
	/* an estimate of the entries that fit; the callback stops at the real limit */
	int limit = (int)(size / (plus ? 160 : 32)) + 1;
	int ret;

	d.buf = malloc(size ? size : 1);
	if (!d.buf)
		return (void)fuse_reply_err(req, ENOMEM);
	ret = vfs_readdir(oc->vfs, ino, off, limit, ops_dirent, &d);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

static void ops_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	(void)fi;
	ops_readdir_common(req, ino, size, off, false);
}

static void ops_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			    struct fuse_file_info *fi)
{
	(void)fi;
	ops_readdir_common(req, ino, size, off, true);
}

static void ops_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void ops_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	/* namespace changes are committed lazily; this makes them durable */
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, -vfs_fsyncdir(ops_vfs(req)));
}

static void ops_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int ret = vfs_statfs(ops_vfs(req), &sv);

	(void)ino;
	if (ret)
		return (void)fuse_reply_err(req, -ret);
	fuse_reply_statfs(req, &sv);
}

static void ops_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			 size_t size, int flags)
{
	struct vfs_ctx c;

	ops_caller(req, &c);
	fuse_reply_err(req, -vfs_setxattr(ops_vfs(req), &c, ino, name, value, size, flags));
}

static void ops_reply_xattr(fuse_req_t req, char *buf, size_t size, ssize_t n)
{
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void ops_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf)
		return (void)fuse_reply_err(req, ENOMEM);
	n = vfs_getxattr(ops_vfs(req), ino, name, buf, size);
	ops_reply_xattr(req, buf, size, n);
	free(buf);
}

static void ops_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf)
		return (void)fuse_reply_err(req, ENOMEM);
	n = vfs_listxattr(ops_vfs(req), ino, buf, size);
	ops_reply_xattr(req, buf, size, n);
	free(buf);
}

static void ops_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, -vfs_removexattr(ops_vfs(req), ino, name));
}

const struct fuse_lowlevel_ops ops_table = {
    .init = ops_init,
    .lookup = ops_lookup,
    .forget = ops_forget,
    .forget_multi = ops_forget_multi,
    .getattr = ops_getattr,
    .setattr = ops_setattr,
    .readlink = ops_readlink,
    .mknod = ops_mknod,
    .mkdir = ops_mkdir,
    .unlink = ops_unlink,
    .rmdir = ops_rmdir,
    .symlink = ops_symlink,
    .rename = ops_rename,
    .link = ops_link,
    .open = ops_open,
    .create = ops_create,
    .read = ops_read,
    .write = ops_write,
    .flush = ops_flush,
    .release = ops_release,
    .fsync = ops_fsync,
    .opendir = ops_opendir,
    .readdir = ops_readdir,
    .readdirplus = ops_readdirplus,
    .releasedir = ops_releasedir,
    .fsyncdir = ops_fsyncdir,
    .statfs = ops_statfs,
    .setxattr = ops_setxattr,
    .getxattr = ops_getxattr,
    .listxattr = ops_listxattr,
    .removexattr = ops_removexattr,
};
