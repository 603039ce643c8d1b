/*
 * ops.h - the FUSE low-level operations table over the vfs layer.
 * Internal to fs/: only ops.c and main.c include FUSE headers.
 */
#ifndef DOCVAULT_FS_OPS_H
#define DOCVAULT_FS_OPS_H

#include <fuse_lowlevel.h>

struct vfs;

/* The userdata handed to fuse_session_new(). */
struct ops_ctx {
	struct vfs *vfs;
	double attr_timeout;
	double entry_timeout;
};

extern const struct fuse_lowlevel_ops ops_table;

#endif
