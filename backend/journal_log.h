/*
 * journal_log.h - the journal's append-only log of small records (private
 * to backend/journal*.c; not a public header).
 *
 * Sealing a file the portable way costs two synchronous flushes (fsync of
 * the file, then of the directory after the rename that names the record),
 * several milliseconds each on ordinary disks: that, not the copy, is what
 * bounds how many small files per second close() can seal. A small record
 * is made durable instead by appending its content to a log segment,
 * CACHE_DIR/journal/log.<n>, and flushing that one file with fdatasync,
 * shared by every close that is waiting at the same moment (group commit).
 * The record's own file is still renamed to "<ino>.<seq>" for everything
 * else to read, without a flush of its own.
 *
 * After a crash, jlog_replay() rewrites (and this time flushes) every
 * logged record whose file is missing or differs from the logged bytes,
 * unless the log marks it done, then removes the old segments: from then
 * on the directory alone is the journal again, as journal.h describes.
 *
 * Log entries: a fixed header (magic, type, inode, sequence, size, mtime,
 * XXH3-64 of the data, XXH3-64 of the header) and, for a record, its data
 * padded to 8 bytes. A torn tail fails its header or data check and ends
 * the segment. A "done" entry names a record that left the journal (so a
 * replay does not resurrect it); it is flushed lazily, and losing one only
 * means the record is committed again, which is harmless.
 *
 * Thread-safe.
 */
#ifndef DOCVAULT_JOURNAL_LOG_H
#define DOCVAULT_JOURNAL_LOG_H

#include <stddef.h>
#include <stdint.h>

/* Records up to this size go through the log; larger ones are fsync'ed. */
#define JLOG_RECORD_MAX (256u << 10)
/* A segment is closed for appends past this size. */
#define JLOG_SEGMENT_MAX (32u << 20)

struct jlog;

/* Opens the log of the journal directory dir (open as dirfd, borrowed). */
int jlog_open(const char *dir, int dirfd, struct jlog **out);
void jlog_close(struct jlog *l);

/*
 * Makes every record logged by an earlier process and not marked done
 * durable as its own file "<ino>.<seq>" in the directory (with the logged
 * mtime unless the file already has these bytes), then removes the old
 * segments. Call once, before the directory is listed for recovery.
 */
int jlog_replay(struct jlog *l);

/*
 * Appends a record and returns once it is durable. Returns 0, or a negative
 * errno when the log cannot take it (full disk, I/O error): the caller
 * then makes the record durable the portable way.
 */
int jlog_append(struct jlog *l, uint64_t ino, uint64_t seq, int64_t mtime, const void *data,
		size_t size);

/* A record left the journal: marks it done if it was logged (not flushed). */
void jlog_done(struct jlog *l, uint64_t ino, uint64_t seq);

/* Flushes the done marks and removes segments nothing refers to any more. */
void jlog_tidy(struct jlog *l);

#endif
