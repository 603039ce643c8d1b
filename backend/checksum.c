/*
 * checksum.c - one pass over content computes the three digests of
 * checksum.h: plain XXH3-128 (what users see), vault-keyed XXH3-128 (the
 * blob's name) and SHA-256 (confirms a dedup hit). The only file that
 * includes xxhash.h. Reads in 1 MiB blocks with pread: memory does not grow
 * with file size. Pure and thread-safe.
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

#define CHECKSUM_BLOCK (1u << 20)

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

int checksum_fd(int fd, uint64_t size, const unsigned char *secret, struct checksum *out)
{
	struct checksum_state st;
	uint64_t off = 0;
	char *buf;
	int ret;

	buf = malloc(CHECKSUM_BLOCK);
	if (!buf)
		return -ENOMEM;
	ret = checksum_state_init(&st, secret);
	if (ret) {
		free(buf);
		return ret;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (off < size) {
		size_t want = size - off < CHECKSUM_BLOCK ? (size_t)(size - off) : CHECKSUM_BLOCK;
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (n == 0) {
			ret = -EIO; /* shorter than its recorded size */
			goto out;
		}
		checksum_state_update(&st, buf, (size_t)n);
		off += (uint64_t)n;
	}
	checksum_state_final(&st, out);
out:
	checksum_state_free(&st);
	free(buf);
	return ret;
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
