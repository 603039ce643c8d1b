/*
 * checksum.h - content digests, computed in one pass over a file:
 *   - the plain XXH3-128 that users see (user.docvault.checksum; `xxhsum -H2`
 *     on a local copy prints the same hex),
 *   - the vault-keyed XXH3-128 that names the blob in the store (keyed with
 *     the vault's secret so nobody outside can aim a collision at a key),
 *   - SHA-256, kept with the blob, that confirms a dedup hit,
 *   - optionally, per CHECKSUM_BLOCK_SIZE block of the content, a keyed
 *     XXH3-64 (8 bytes, big-endian, packed one after the other: the
 *     `blocks` bytea of a blob row), so the read cache can verify each
 *     block it fetches with a ranged GET before serving it, without
 *     fetching the whole blob.
 * The only module that includes xxhash.h. Pure functions, thread-safe.
 */
#ifndef DOCVAULT_CHECKSUM_H
#define DOCVAULT_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#define CHECKSUM_SECRET_SIZE 192	/* bytes of vault secret (>= XXH3 minimum) */
#define CHECKSUM_HEX_SIZE    33		/* 32 hex digits and NUL */
#define CHECKSUM_BLOCK_SIZE  (1u << 20) /* bytes per block hash; the last block is short */
#define CHECKSUM_BLOCK_HASH  8		/* bytes of one block hash */

struct checksum {
	unsigned char plain[16]; /* XXH3-128, canonical (big-endian) bytes */
	unsigned char keyed[16]; /* XXH3-128 with the vault secret */
	unsigned char sha256[32];
};

/*
 * Digests `size` bytes of fd from offset 0 (pread). secret is
 * CHECKSUM_SECRET_SIZE bytes. Returns 0, -EIO if the file is shorter than
 * size, or the negative errno of a failed read.
 */
int checksum_fd(int fd, uint64_t size, const unsigned char *secret, struct checksum *out);

/*
 * Like checksum_fd and, when blocks is not NULL, also the block hashes:
 * *blocks receives a malloc'ed buffer (caller frees) of
 * CHECKSUM_BLOCK_HASH * checksum_block_count(size) bytes, block i's keyed
 * XXH3-64 at offset 8*i, and *blocks_len its length. An empty file has no
 * blocks: *blocks is NULL and *blocks_len 0. On failure *blocks is NULL.
 * Returns 0, -ENOMEM, -EIO (file shorter than size) or a read's -errno.
 */
int checksum_fd_blocks(int fd, uint64_t size, const unsigned char *secret, struct checksum *out,
		       unsigned char **blocks, size_t *blocks_len);

/* Number of blocks of a blob of `size` bytes: ceil(size / CHECKSUM_BLOCK_SIZE). */
uint64_t checksum_block_count(uint64_t size);

/*
 * The hash of one block (its bytes buf[0..len), len <= CHECKSUM_BLOCK_SIZE):
 * keyed XXH3-64, big-endian, into out[CHECKSUM_BLOCK_HASH].
 */
void checksum_block(const void *buf, size_t len, const unsigned char *secret, unsigned char *out);

/*
 * Checks one block against its expected CHECKSUM_BLOCK_HASH bytes.
 * Returns 0 when they agree, -EIO when not. Logs nothing: the caller
 * knows the key and block number.
 */
int checksum_block_verify(const void *buf, size_t len, const unsigned char *secret,
			  const unsigned char *expected);

/* Same for a buffer. */
void checksum_buf(const void *buf, size_t len, const unsigned char *secret, struct checksum *out);

/*
 * Plain (unkeyed) XXH3-64 of a buffer: an integrity check for local
 * records (the journal log), not a content address.
 */
uint64_t checksum_xxh64(const void *buf, size_t len);

/* Fills secret with CHECKSUM_SECRET_SIZE random bytes. Returns 0 or -errno. */
int checksum_new_secret(unsigned char *secret);

/* Lower-case hex of 16 bytes into out[CHECKSUM_HEX_SIZE]. */
void checksum_hex16(const unsigned char *bytes, char *out);

/* Parses 32 hex digits into 16 bytes. Returns 0 or -EINVAL. */
int checksum_parse_hex16(const char *hex, unsigned char *bytes);

#endif
