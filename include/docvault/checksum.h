/*
 * checksum.h - content digests, computed in one pass over a file:
 *   - the plain XXH3-128 that users see (user.docvault.checksum; `xxhsum -H2`
 *     on a local copy prints the same hex),
 *   - the vault-keyed XXH3-128 that names the blob in the store (keyed with
 *     the vault's secret so nobody outside can aim a collision at a key),
 *   - SHA-256, kept with the blob, that confirms a dedup hit.
 * The only module that includes xxhash.h. Pure functions, thread-safe.
 */
#ifndef DOCVAULT_CHECKSUM_H
#define DOCVAULT_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#define CHECKSUM_SECRET_SIZE 192 /* bytes of vault secret (>= XXH3 minimum) */
#define CHECKSUM_HEX_SIZE    33	 /* 32 hex digits and NUL */

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

/* Same for a buffer. */
void checksum_buf(const void *buf, size_t len, const unsigned char *secret, struct checksum *out);

/* Fills secret with CHECKSUM_SECRET_SIZE random bytes. Returns 0 or -errno. */
int checksum_new_secret(unsigned char *secret);

/* Lower-case hex of 16 bytes into out[CHECKSUM_HEX_SIZE]. */
void checksum_hex16(const unsigned char *bytes, char *out);

/* Parses 32 hex digits into 16 bytes. Returns 0 or -EINVAL. */
int checksum_parse_hex16(const char *hex, unsigned char *bytes);

#endif
