/*
 * journal.h - the write-back journal: content that was closed (or is being
 * written) but is not yet committed to the store and PostgreSQL. It lives
 * in CACHE_DIR/journal/ and survives a crash of the daemon or the machine;
 * the next mount with the same cache directory finishes it.
 *
 * Model: every file is its own record. A file being written is a staging
 * file "<ino>.<seq>.open" (no promise: it is dropped after a crash, as
 * unsynced writes are). Sealing it at close makes the content and the
 * record durable: its mtime set to the one to commit, a rename to
 * "<ino>.<seq>", and either (small records) its bytes appended to the log
 * and the log flushed, one flush shared by concurrent closes
 * (journal_log.h), or fsync of the file before the rename and of the
 * directory after it. A sealed file is never
 * written again; its name says which inode it belongs to, and <seq> orders
 * the versions of one inode (the newest wins). Once committed it leaves the
 * journal (adopted into the read cache, or removed). A failure to commit is
 * noted beside it as "<ino>.<seq>.err" (one line, the reason) for `docvault
 * status` and `docvault sync`, which read the directory from another
 * process. docs/design-writeback.md tells the whole story.
 *
 * Thread-safe. Returns 0 or a negative errno; failures are logged once here
 * with the path.
 */
#ifndef DOCVAULT_JOURNAL_H
#define DOCVAULT_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct journal;

/* A sealed record, as found by journal_recover() or journal_scan(). */
struct journal_entry {
	uint64_t ino;
	uint64_t seq;
	const char *path;  /* borrowed for the callback */
	uint64_t size;	   /* of the content */
	int64_t mtime;	   /* ns, the mtime to commit */
	const char *error; /* last failure noted, or NULL */
};

/* Opens (creating) DIR/journal. The caller holds the cache directory's lock. */
int journal_open(const char *cache_dir, struct journal **out, char *err, size_t errlen);
void journal_close(struct journal *j);

/* A new, empty staging file for ino: *fd read-write, *path malloc'ed. */
int journal_staging_new(struct journal *j, uint64_t ino, int *fd, char **path);

/*
 * Seals the staging file at *path (open as fd, size bytes): durable content
 * and record, mtime (ns) recorded. *path is replaced by the sealed name
 * (the old string freed). On failure the staging file is left as it was.
 */
int journal_seal(struct journal *j, int fd, char **path, uint64_t size, int64_t mtime);

/* Updates the mtime a sealed record will commit (best effort, not synced). */
void journal_set_mtime(struct journal *j, const char *path, int64_t mtime);

/* A record is done (committed, or dropped): removes it and its note. */
void journal_forget(struct journal *j, const char *path);
/*
 * A record's file left the journal (adopted by the read cache, which
 * renamed it): forgets the record and its note without removing anything.
 */
void journal_release(struct journal *j, const char *path);
/*
 * Makes the bytes of every record durable in place (a small record is
 * durable through the log, its own file is not): before a record's file
 * becomes a cached blob that is trusted without a check.
 */
int journal_sync_all(struct journal *j);
/* Flushes done marks and drops log segments that hold nothing pending. */
void journal_tidy(struct journal *j);

/* Notes why a record cannot be committed yet (NULL clears the note). */
void journal_note(struct journal *j, const char *path, const char *reason);

/*
 * After a crash: drops staging files (never closed) and records superseded
 * by a newer one of the same inode, then calls cb for each remaining record,
 * oldest first. A non-zero return from cb stops and is returned.
 */
int journal_recover(struct journal *j, int (*cb)(void *arg, const struct journal_entry *e),
		    void *arg);

/*
 * Reads the records of the journal under cache_dir without opening it (for
 * `docvault status` and `docvault sync`, in another process): cb gets each
 * sealed record (superseded ones included). Returns 0, or -ENOENT when
 * there is no journal.
 */
int journal_scan(const char *cache_dir, int (*cb)(void *arg, const struct journal_entry *e),
		 void *arg);

#endif
