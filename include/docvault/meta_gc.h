/*
 * meta_gc.h - what garbage collection needs from PostgreSQL: the vault's
 * gc lock, the blobs no file refers to any more, and which stored objects
 * no row names.
 *
 * Model: gc runs offline. A blob row whose reference count is zero may be
 * taken again at any moment by a commit of the same content (dedup skips
 * the upload when the row exists), so deleting it while a mount could
 * commit is a race that loses data. A meta_gc holds a dedicated connection
 * with the vault's gc lock (a session-level advisory lock); mounts take the
 * same lock in shared mode in the statement that registers their session
 * (meta_session_start), so no mount starts while gc runs, and gc starts
 * only when no mount is alive (sessions silent for longer than the
 * timeout are ended first, which frees their orphans).
 *
 * Rows go before objects: a row is deleted (committed) and only then its
 * object; a crash in between leaves an object no row names, which
 * meta_gc_unknown() finds for a sweep. The other order would leave a row
 * naming a missing object, which a later commit would trust.
 */
#ifndef DOCVAULT_META_GC_H
#define DOCVAULT_META_GC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct meta_gc;

/* The advisory lock key (the bytes "docvault" as a big-endian bigint). */
#define META_GC_LOCK_KEY 7237970109966541172LL

/*
 * Connects (a connection of its own), takes the gc lock, ends the sessions
 * silent for more than session_timeout_s seconds, and checks that no mount
 * is alive. Returns 0; -EBUSY with a message naming the other gc or the
 * live mounts (host and pid); -EIO with a message naming the server.
 */
int meta_gc_open(const char *conninfo, int session_timeout_s, struct meta_gc **out, char *err,
		 size_t errlen);

/* Releases the lock and closes the connection. Accepts NULL. */
void meta_gc_close(struct meta_gc *g);

/* Blobs no file refers to: how many and their bytes (nothing changes). */
int meta_gc_count(struct meta_gc *g, uint64_t *n, uint64_t *bytes);

/*
 * Deletes up to max rows of unreferenced blobs (and takes them off the
 * vault's counters) in one transaction, committed when it returns; their
 * keyed hashes (16 bytes each) go to keyed, their sizes to sizes, their
 * count to *n. A row some inode still names is never deleted, whatever its
 * count says. Returns the number of rows deleted (0: none left; more than
 * *n only for a row whose hash is not 16 bytes, logged) or -EIO (logged).
 */
int meta_gc_take(struct meta_gc *g, size_t max, unsigned char (*keyed)[16], uint64_t *sizes,
		 size_t *n);

/*
 * Of the n keyed hashes (16 bytes each), marks in unknown[i] those that no
 * blob row names. Returns 0 or -EIO (logged).
 */
int meta_gc_unknown(struct meta_gc *g, const unsigned char (*keyed)[16], size_t n, bool *unknown);

#endif
