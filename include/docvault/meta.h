/*
 * meta.h - the metadata engine: the POSIX namespace (inodes, directory
 * entries, extended attributes), blobs and their reference counts, and the
 * mounts (sessions), kept in PostgreSQL. The only implementation is
 * backend/meta_pg.c, the only file that includes libpq-fe.h.
 *
 * Model: an inode's id is its FUSE inode number (1 is the root) and is never
 * reused. A name is bytes (no '/', no NUL, 1..255 of them). A file's content
 * is a blob named by its vault-keyed XXH3-128 (NULL for an empty file); the
 * inode's size is authoritative. An inode whose last name goes away while a
 * mount still has it open is kept as an orphan of that mount's session and
 * freed by meta_free() at last close, or by the session reaper after a
 * crash.
 *
 * Every call is one round trip where it can be (multi-step operations are
 * server-side functions, each one transaction), is thread-safe (a pool of
 * connections, each with its statements prepared once) and returns 0 or a
 * negative errno. POSIX failures come back as their errno (ENOENT, EEXIST,
 * ENOTDIR, EISDIR, ENOTEMPTY, EINVAL, EPERM, ENODATA); a database failure is
 * logged once here with its SQLSTATE and message and comes back as -EIO.
 */
#ifndef DOCVAULT_META_H
#define DOCVAULT_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "docvault/checksum.h"

#define META_NAME_MAX	    255
#define META_XATTR_SIZE_MAX 65536
#define META_SCHEMA_VERSION 4

struct meta;

/* Times are nanoseconds since the epoch. */
struct meta_attr {
	uint64_t ino;
	uint32_t mode; /* type and permission bits */
	uint32_t uid, gid, nlink;
	uint64_t size;
	uint64_t rdev;
	int64_t atime, mtime, ctime, crtime;
	uint64_t version; /* bumped on every content change */
	bool has_content;
	unsigned char content[16]; /* keyed hash of the blob, if has_content */
};

/* setattr: which fields to change (the others are left alone). */
enum {
	META_SET_MODE = 1 << 0,
	META_SET_UID = 1 << 1,
	META_SET_GID = 1 << 2,
	META_SET_SIZE = 1 << 3,
	META_SET_ATIME = 1 << 4,
	META_SET_MTIME = 1 << 5,
};

/* rename flags, the values of RENAME_NOREPLACE and RENAME_EXCHANGE. */
enum { META_RENAME_NOREPLACE = 1 << 0, META_RENAME_EXCHANGE = 1 << 1 };

struct meta_stats {
	uint64_t files, dirs, others; /* inodes by kind that have a name */
	uint64_t bytes;		      /* logical bytes of those files */
	uint64_t blobs, blob_bytes;   /* distinct contents stored, after dedup */
	uint64_t sessions_alive;
};

/*
 * Connects (one connection now, the rest of the pool on demand). On failure
 * returns a negative errno and a message naming the server in err.
 */
int meta_open(const char *conninfo, int pool_size, struct meta **out, char *err, size_t errlen);
void meta_close(struct meta *m);

/*
 * Creates or upgrades the schema (migrations in one transaction, under an
 * advisory lock), creates the root directory (owned by uid/gid, mode 0755)
 * and the vault's secret hash key if missing. Harmless to run twice.
 * A database with a newer schema is refused (-EPROTO) with a message.
 */
int meta_init(struct meta *m, uint32_t uid, uint32_t gid, char *err, size_t errlen);
/* Checks the schema version is this build's; loads the vault secret. */
int meta_check(struct meta *m, unsigned char *secret, char *err, size_t errlen);

/*
 * Sessions: one per mount (or worker); heartbeat keeps it alive. Starting
 * one gives -EBUSY while docvault gc runs (meta_gc.h).
 */
int meta_session_start(struct meta *m, const char *host, int pid, uint64_t *sid);
int meta_session_heartbeat(struct meta *m, uint64_t sid);
/* Frees this session's orphans and removes it. */
int meta_session_end(struct meta *m, uint64_t sid);
/*
 * Ends the sessions registered from this host (other than self) whose
 * process is gone, as alive() tells: a daemon killed here is cleaned up at
 * the next mount without waiting for its heartbeat to go stale. Returns
 * how many sessions it ended.
 */
int meta_session_reap_host(struct meta *m, const char *host, uint64_t self, bool (*alive)(int pid));
/* Frees the orphans of sessions silent for longer than timeout_s; returns how many sessions. */
int meta_session_reap(struct meta *m, int timeout_s);

int meta_lookup(struct meta *m, uint64_t parent, const char *name, size_t namelen,
		struct meta_attr *out);
int meta_getattr(struct meta *m, uint64_t ino, struct meta_attr *out);
/* sa's fields named by `valid` are applied; ctime becomes now. */
int meta_setattr(struct meta *m, uint64_t ino, int valid, const struct meta_attr *sa, int64_t now,
		 struct meta_attr *out);
/*
 * Creates an inode of any kind with one name. target is the symlink's
 * target (NULL otherwise). In a setgid directory the new inode takes the
 * directory's gid, and a new directory the setgid bit.
 */
int meta_create(struct meta *m, uint64_t parent, const char *name, size_t namelen, uint32_t mode,
		uint32_t uid, uint32_t gid, uint64_t rdev, const char *target, int64_t now,
		struct meta_attr *out);
int meta_link(struct meta *m, uint64_t ino, uint64_t parent, const char *name, size_t namelen,
	      int64_t now, struct meta_attr *out);
/*
 * Removes a name of a non-directory. *out receives the inode after it: when
 * out->nlink is 0 it is an orphan of session sid, to be freed by meta_free().
 */
int meta_unlink(struct meta *m, uint64_t parent, const char *name, size_t namelen, uint64_t sid,
		int64_t now, struct meta_attr *out);
/* Removes an empty directory; like unlink, it is left as an orphan. */
int meta_rmdir(struct meta *m, uint64_t parent, const char *name, size_t namelen, uint64_t sid,
	       int64_t now, struct meta_attr *out);
/*
 * Renames. *src (may be NULL) receives the inode that was moved, after the
 * move; *orphan the inode that lost its last name by being replaced (to be
 * freed with meta_free()), or 0.
 */
int meta_rename(struct meta *m, uint64_t parent, const char *name, size_t namelen,
		uint64_t newparent, const char *newname, size_t newnamelen, unsigned int flags,
		uint64_t sid, int64_t now, struct meta_attr *src, uint64_t *orphan);
/* The directory that holds a directory (its only name). */
int meta_parent(struct meta *m, uint64_t dir, uint64_t *parent);
/* Deletes an inode that has no name left (a no-op if it has one). */
int meta_free(struct meta *m, uint64_t ino);
/* Same for several, in one transaction. */
int meta_free_batch(struct meta *m, const uint64_t *inos, size_t n);
/* Reads a symlink's target into buf (NUL-terminated); -EINVAL if not a symlink. */
int meta_readlink(struct meta *m, uint64_t ino, char *buf, size_t size);

/*
 * Lists a directory after entry position `after` (0 = from the start), at
 * most `limit` entries, in a stable order. cb gets each entry with its
 * position (strictly increasing; pass the last one back to continue) and
 * attributes; returning non-zero stops early (that entry is not consumed).
 * Returns the number of entries consumed or a negative errno.
 */
typedef int (*meta_dirent_cb)(void *arg, const char *name, size_t namelen, uint64_t pos,
			      const struct meta_attr *attr);
int meta_readdir(struct meta *m, uint64_t dir, uint64_t after, int limit, meta_dirent_cb cb,
		 void *arg);

/* Extended attributes. flags are XATTR_CREATE / XATTR_REPLACE. */
int meta_setxattr(struct meta *m, uint64_t ino, const char *name, const void *value, size_t size,
		  int flags, int64_t now);
/* Copies the value if it fits; returns its length, or -ENODATA / -ERANGE. size 0 asks the length.
 */
ssize_t meta_getxattr(struct meta *m, uint64_t ino, const char *name, void *buf, size_t size);
/* NUL-separated names; returns the total length, or -ERANGE. size 0 asks the length. */
ssize_t meta_listxattr(struct meta *m, uint64_t ino, char *buf, size_t size);
int meta_removexattr(struct meta *m, uint64_t ino, const char *name, int64_t now);

/*
 * Blobs. meta_blob_find() tells whether a blob with this keyed hash is
 * recorded, and its SHA-256 (to confirm a dedup hit). Returns 0, -ENOENT.
 */
int meta_blob_find(struct meta *m, const unsigned char *keyed, unsigned char *sha256,
		   uint64_t *size);
/*
 * The same, plus the blob's per-block hashes (CHECKSUM_BLOCK_HASH bytes per
 * CHECKSUM_BLOCK_SIZE block) into *blocks (malloc'ed; NULL when the blob
 * was recorded without them).
 */
int meta_blob_find_blocks(struct meta *m, const unsigned char *keyed, unsigned char *sha256,
			  uint64_t *size, unsigned char **blocks, size_t *blocks_len);
/*
 * Points the inode at new content in one transaction: records the blob (or
 * takes a reference on it), drops the old blob's reference, sets size and
 * mtime, bumps version. sum NULL means empty content. The blob must already
 * be durable in the store (data before metadata).
 */
int meta_commit(struct meta *m, uint64_t ino, const struct checksum *sum, uint64_t size,
		int64_t mtime, int64_t now, struct meta_attr *out);
/* The same, recording the blob's per-block hashes (checksum_fd_blocks) with it. */
int meta_commit_blocks(struct meta *m, uint64_t ino, const struct checksum *sum,
		       const unsigned char *blocks, size_t blocks_len, uint64_t size, int64_t mtime,
		       int64_t now, struct meta_attr *out);

int meta_stats(struct meta *m, struct meta_stats *out);

/*
 * Makes every change committed so far durable: namespace operations commit
 * without waiting for PostgreSQL's WAL flush (as a local filesystem's
 * metadata reaches its journal a moment later), content commits wait.
 * fsync and fsyncdir call this.
 */
int meta_sync(struct meta *m);

#endif
