/*
 * store.h - the object store: a flat namespace of immutable objects (the
 * content blobs), behind a struct of function pointers with two
 * implementations, "local" (a directory; the embedded default) and "s3"
 * (libcurl + AWS Signature V4). Decorators (fault injection, prefixes) wrap
 * a store by embedding struct store and forwarding.
 *
 * Model: keys are byte strings without NUL (UTF-8 in practice, may hold
 * spaces and '/'); an object is written whole (put) and is then immutable;
 * puts of the same key are idempotent. Every call is blocking, thread-safe,
 * retries transient failures internally (with backoff, up to the store's
 * configured limit) and returns a final answer: 0 or a negative errno:
 *   -ENOENT    no such object
 *   -EIO       the server failed or the data did not verify
 *   -ETIMEDOUT the server did not answer in time
 *   -EACCES    credentials refused (wrong key, no permission)
 *   -ENOSPC    the store is full
 *   -EINVAL    bad argument (key too long, range past the end)
 * The failure is logged once by the store with its detail (operation, key,
 * server, status, request id); callers do not log it again.
 */
#ifndef DOCVAULT_STORE_H
#define DOCVAULT_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct dv_config;
struct store;

/* Called once per object by list(); return non-zero to stop the listing. */
typedef int (*store_list_cb)(void *arg, const char *key, uint64_t size);

struct store_ops {
	const char *name; /* "local", "s3", "fault", ... */
	/*
	 * Stores `size` bytes read from fd starting at offset 0 (pread; the
	 * file position is not used) under key. Streams: never holds the
	 * whole object in memory. sha256 (32 bytes) is the content's SHA-256
	 * when the caller knows it, else NULL. Durable when it returns 0.
	 * The caller must not modify the file afterwards: a store may keep
	 * it (the local store hard-links a whole file instead of copying).
	 */
	int (*put_fd)(struct store *st, const char *key, int fd, uint64_t size,
		      const unsigned char *sha256);
	/*
	 * Reads up to len bytes at offset off into buf; *got receives the
	 * count (less than len only at the end of the object).
	 */
	int (*get_range)(struct store *st, const char *key, uint64_t off, size_t len, void *buf,
			 size_t *got);
	/* Writes the object's bytes [off, off+len) to fd at the same offsets. */
	int (*get_to_fd)(struct store *st, const char *key, uint64_t off, uint64_t len, int fd);
	/* Size of the object; -ENOENT if none. */
	int (*head)(struct store *st, const char *key, uint64_t *size);
	/* Deletes; deleting a missing object succeeds. */
	int (*del)(struct store *st, const char *key);
	/* Deletes several; stops at and returns the first failure. */
	int (*del_batch)(struct store *st, const char *const *keys, size_t n);
	/* Lists objects whose key starts with prefix, in key order. */
	int (*list)(struct store *st, const char *prefix, store_list_cb cb, void *arg);
	/* Frees the store; accepts NULL through store_close(). */
	void (*close)(struct store *st);
};

/* Every implementation embeds this as its first member. */
struct store {
	const struct store_ops *ops;
};

/*
 * Opens the store the configuration names. On failure returns a negative
 * errno and a one-line message in err that names the store (path or
 * endpoint and bucket).
 */
int store_open(const struct dv_config *cfg, struct store **out, char *err, size_t errlen);

/* The implementations, for store_open() and for tests. */
int store_local_open(const char *path, struct store **out, char *err, size_t errlen);
int store_s3_open(const struct dv_config *cfg, struct store **out, char *err, size_t errlen);

/*
 * The key of a blob: "blobs/ab/cd/<32 hex digits of the keyed hash>".
 * out needs STORE_BLOB_KEY_SIZE bytes.
 */
#define STORE_BLOB_KEY_SIZE 48
void store_blob_key(const unsigned char *keyed, char *out);

/*
 * Checks that the store is reachable and writable: puts, reads back and
 * deletes a probe object. Returns 0 or a negative errno with a message.
 */
int store_probe(struct store *st, char *err, size_t errlen);

static inline int store_put_fd(struct store *st, const char *key, int fd, uint64_t size,
			       const unsigned char *sha256)
{
	return st->ops->put_fd(st, key, fd, size, sha256);
}
static inline int store_get_range(struct store *st, const char *key, uint64_t off, size_t len,
				  void *buf, size_t *got)
{
	return st->ops->get_range(st, key, off, len, buf, got);
}
static inline int store_get_to_fd(struct store *st, const char *key, uint64_t off, uint64_t len,
				  int fd)
{
	return st->ops->get_to_fd(st, key, off, len, fd);
}
static inline int store_head(struct store *st, const char *key, uint64_t *size)
{
	return st->ops->head(st, key, size);
}
static inline int store_del(struct store *st, const char *key)
{
	return st->ops->del(st, key);
}
static inline int store_del_batch(struct store *st, const char *const *keys, size_t n)
{
	return st->ops->del_batch(st, keys, n);
}
static inline int store_list(struct store *st, const char *prefix, store_list_cb cb, void *arg)
{
	return st->ops->list(st, prefix, cb, arg);
}
static inline void store_close(struct store *st)
{
	if (st)
		st->ops->close(st);
}

#endif
