/*
 * vfs_priv.h - what fs/vfs.c shares with the other files of the vfs layer
 * (fs/vfs_docs.c). Not an interface for anything outside fs/vfs*.c.
 */
#ifndef DOCVAULT_VFS_PRIV_H
#define DOCVAULT_VFS_PRIV_H

#include <stdbool.h>
#include <stdint.h>

struct vfs;
struct meta;

struct meta *vfs_meta(struct vfs *v);
/* True while this mount holds content of ino not yet committed. */
bool vfs_is_pending(struct vfs *v, uint64_t ino);
int64_t vfs_clock_ns(void);

/*
 * The vault's own attributes (fs/vfs_docs.c). Each returns -ENOTSUP when
 * the name is not one of them, so the caller goes on with plain xattrs.
 */
ssize_t vfs_docs_getxattr(struct vfs *v, uint64_t ino, const char *name, char *buf, size_t size);
int vfs_docs_setxattr(struct vfs *v, uint64_t ino, const char *name, const char *value,
		      size_t size);
int vfs_docs_removexattr(struct vfs *v, uint64_t ino, const char *name);
/* Appends the names that apply to ino to buf (size 0: counts); returns the bytes. */
ssize_t vfs_docs_listxattr(struct vfs *v, uint64_t ino, char *buf, size_t size);

#endif
