/*
 * meta_fsck.h - the consistency checks of `docvault fsck` on PostgreSQL:
 * what the schema's constraints cannot say. Each check is one statement
 * (one snapshot), read-only, safe while the vault is mounted, and reports
 * each problem it finds as one line through a callback, at most
 * META_FSCK_MAX_REPORT per check (it says when it stopped early).
 *
 *   refcounts  a blob's reference count is the number of inodes naming it
 *              (gc trusts it: a count too low would let gc delete content
 *              a file still has)
 *   links      a file's link count is its number of names; a directory's
 *              is 2 plus its subdirectories; a directory has one name
 *              (the root none); a name's parent is a directory
 *   counters   the totals `docvault status` shows equal what the tables
 *              hold
 *
 * meta_fsck_blobs() walks the blob rows in key order for the store check
 * (fs/cmd_fsck.c merges it with the store's listing). meta_fsck_fix_counters()
 * recomputes the totals; safe while mounted (it holds the counter rows while
 * it counts, so a change in flight lands on top of the new totals).
 */
#ifndef DOCVAULT_META_FSCK_H
#define DOCVAULT_META_FSCK_H

#include <stdint.h>

struct meta;

#define META_FSCK_MAX_REPORT 100

/* One problem, as a line without a newline. */
typedef void (*meta_fsck_report)(void *arg, const char *problem);

/* Each returns the number of problems found (>= 0) or -EIO (logged). */
int meta_fsck_refcounts(struct meta *m, meta_fsck_report report, void *arg);
int meta_fsck_links(struct meta *m, meta_fsck_report report, void *arg);
int meta_fsck_counters(struct meta *m, meta_fsck_report report, void *arg);

/* Sets every total to what the tables hold. Returns 0 or -EIO (logged). */
int meta_fsck_fix_counters(struct meta *m);

/*
 * Calls cb for up to max blob rows whose hash is greater than after (16
 * bytes; NULL: from the first), in hash order, with the keyed hash, the
 * size and an inode that names it (0 if none). Returns the number of rows
 * given (0: no more) or -EIO.
 */
typedef void (*meta_fsck_blob_cb)(void *arg, const unsigned char *keyed, uint64_t size,
				  uint64_t ino);
int meta_fsck_blobs(struct meta *m, const unsigned char *after, int max, meta_fsck_blob_cb cb,
		    void *arg);

#endif
