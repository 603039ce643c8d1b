/*
 * checksum.c - one pass over content computes the three digests of
 * checksum.h: plain XXH3-128 (what users see), vault-keyed XXH3-128 (the
 * blob's name) and SHA-256 (confirms a dedup hit), and on request the
 * keyed XXH3-64 of every CHECKSUM_BLOCK_SIZE block (what the read cache
 * verifies a ranged fetch against). The only file that includes xxhash.h.
 * Reads whole blocks with pread, so a block hash always covers exactly one
 * block whatever short reads the file returns: memory does not grow with
 * file size. Pure and thread-safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <xxhash.h>

#include "docvault/checksum.h"

struct checksum_state {
	XXH3_state_t *plain;
	XXH3_state_t *keyed;
	EVP_MD_CTX *sha;
};

static void checksum_state_free(struct checksum_state *st)
{
	XXH3_freeState(st->plain);
	XXH3_freeState(st->keyed);
	EVP_MD_CTX_free(st->sha);
}

static int checksum_state_init(struct checksum_state *st, const unsigned char *secret)
{
	st->plain = XXH3_createState();
	st->keyed = XXH3_createState();
	st->sha = EVP_MD_CTX_new();
	if (!st->plain || !st->keyed || !st->sha)
		goto fail;
	if (XXH3_128bits_reset(st->plain) != XXH_OK ||
	    XXH3_128bits_reset_withSecret(st->keyed, secret, CHECKSUM_SECRET_SIZE) != XXH_OK ||
	    EVP_DigestInit_ex(st->sha, EVP_sha256(), NULL) != 1)
		goto fail;
	return 0;
fail:
	checksum_state_free(st);
	return -ENOMEM;
}

static void checksum_state_update(struct checksum_state *st, const void *buf, size_t len)
{
	XXH3_128bits_update(st->plain, buf, len);
	XXH3_128bits_update(st->keyed, buf, len);
	EVP_DigestUpdate(st->sha, buf, len);
}

static void checksum_state_final(struct checksum_state *st, struct checksum *out)
{
	XXH128_canonical_t c;
	unsigned int n = 0;

	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st->plain));
	memcpy(out->plain, c.digest, 16);
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st->keyed));
	memcpy(out->keyed, c.digest, 16);
	EVP_DigestFinal_ex(st->sha, out->sha256, &n);
}

/* Reads exactly len bytes at off, retrying short reads. -EIO at end of file. */
static int checksum_pread_full(int fd, char *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* shorter than its recorded size */
		done += (size_t)n;
	}
	return 0;
}

uint64_t checksum_block_count(uint64_t size)
{
	return size / CHECKSUM_BLOCK_SIZE + (size % CHECKSUM_BLOCK_SIZE != 0);
}

void checksum_block(const void *buf, size_t len, const unsigned char *secret, unsigned char *out)
{
	XXH64_canonical_t c;

	XXH64_canonicalFromHash(&c, XXH3_64bits_withSecret(buf, len, secret, CHECKSUM_SECRET_SIZE));
	memcpy(out, c.digest, CHECKSUM_BLOCK_HASH);
}

int checksum_block_verify(const void *buf, size_t len, const unsigned char *secret,
			  const unsigned char *expected)
{
	unsigned char h[CHECKSUM_BLOCK_HASH];

	checksum_block(buf, len, secret, h);
	return memcmp(h, expected, CHECKSUM_BLOCK_HASH) == 0 ? 0 : -EIO;
}

int checksum_fd_blocks(int fd, uint64_t size, const unsigned char *secret, struct checksum *out,
		       unsigned char **blocks, size_t *blocks_len)
{
	struct checksum_state st;
	unsigned char *hashes = NULL;
	uint64_t off = 0, nblocks = checksum_block_count(size);
	char *buf;
	int ret;

	if (blocks) {
		*blocks = NULL;
		*blocks_len = 0;
		if (nblocks > SIZE_MAX / CHECKSUM_BLOCK_HASH)
			return -ENOMEM;
		if (nblocks && !(hashes = malloc((size_t)nblocks * CHECKSUM_BLOCK_HASH)))
			return -ENOMEM;
	}
	buf = malloc(CHECKSUM_BLOCK_SIZE);
	if (!buf) {
		free(hashes);
		return -ENOMEM;
	}
	ret = checksum_state_init(&st, secret);
	if (ret) {
		free(buf);
		free(hashes);
		return ret;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (uint64_t i = 0; off < size; i++) {
		size_t want =
		    size - off < CHECKSUM_BLOCK_SIZE ? (size_t)(size - off) : CHECKSUM_BLOCK_SIZE;

		ret = checksum_pread_full(fd, buf, want, off);
		if (ret)
			goto out;
		checksum_state_update(&st, buf, want);
		if (hashes)
			checksum_block(buf, want, secret, hashes + i * CHECKSUM_BLOCK_HASH);
		off += want;
	}
	checksum_state_final(&st, out);
	if (blocks) {
		*blocks = hashes;
		*blocks_len = (size_t)nblocks * CHECKSUM_BLOCK_HASH;
		hashes = NULL;
	}
out:
	checksum_state_free(&st);
	free(buf);
	free(hashes);
	return ret;
}

int checksum_fd(int fd, uint64_t size, const unsigned char *secret, struct checksum *out)
{
	return checksum_fd_blocks(fd, size, secret, out, NULL, NULL);
}

uint64_t checksum_xxh64(const void *buf, size_t len)
{
	return XXH3_64bits(buf, len);
}

void checksum_buf(const void *buf, size_t len, const unsigned char *secret, struct checksum *out)
{
	XXH128_canonical_t c;
	unsigned int n = 0;

	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, len));
	memcpy(out->plain, c.digest, 16);
	XXH128_canonicalFromHash(&c,
				 XXH3_128bits_withSecret(buf, len, secret, CHECKSUM_SECRET_SIZE));
	memcpy(out->keyed, c.digest, 16);
	EVP_Digest(buf, len, out->sha256, &n, EVP_sha256(), NULL);
}

int checksum_new_secret(unsigned char *secret)
{
	size_t got = 0;

	while (got < CHECKSUM_SECRET_SIZE) {
		ssize_t n = getrandom(secret + got, CHECKSUM_SECRET_SIZE - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

void checksum_hex16(const unsigned char *bytes, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 16; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[32] = '\0';
}

static int checksum_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int checksum_parse_hex16(const char *hex, unsigned char *bytes)
{
	for (int i = 0; i < 16; i++) {
		int hi = checksum_nibble(hex[2 * i]);
		int lo = hi < 0 ? -1 : checksum_nibble(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		bytes[i] = (unsigned char)(hi << 4 | lo);
	}
	return hex[32] == '\0' ? 0 : -EINVAL;
}
