/*
 * test_checksum.c - the digests of checksum.h: plain XXH3-128 matches what
 * `xxhsum -H2` prints (values computed with xxhsum 0.8.1), SHA-256 matches
 * the FIPS 180-2 example, the keyed hash depends on the secret, the file
 * path (several blocks) agrees with the buffer path, and the per-block hashes
 * are keyed XXH3-64 of each 1 MiB block, big-endian (computed here with
 * xxhash itself as the known answer), the last block short.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <xxhash.h>

#include "check.h"
#include "docvault/checksum.h"

/* The known answer: block i's keyed XXH3-64, big-endian, straight from xxhash. */
static void expected_block(const char *data, size_t size, size_t i, const unsigned char *secret,
			   unsigned char out[8])
{
	size_t off = i * CHECKSUM_BLOCK_SIZE;
	size_t len = size - off < CHECKSUM_BLOCK_SIZE ? size - off : CHECKSUM_BLOCK_SIZE;
	XXH64_hash_t h = XXH3_64bits_withSecret(data + off, len, secret, CHECKSUM_SECRET_SIZE);

	for (int k = 0; k < 8; k++)
		out[k] = (unsigned char)(h >> (56 - 8 * k));
}

static void test_blocks(const unsigned char *secret, const unsigned char *secret2)
{
	size_t sizes[] = {0, 1, CHECKSUM_BLOCK_SIZE, CHECKSUM_BLOCK_SIZE + 1, (3u << 20) + 12345};
	size_t max = (3u << 20) + 12345;
	char *data = malloc(max), tmpl[] = "/tmp/test_checksum_blocks.XXXXXX";
	unsigned char *blocks = NULL, want[8];
	struct checksum a, b;
	size_t len = 99;
	int fd;

	CHECK(data != NULL);
	for (size_t i = 0; i < max; i++)
		data[i] = (char)(i * 40503u >> 7);
	fd = mkstemp(tmpl);
	CHECK(fd >= 0);
	unlink(tmpl);
	CHECK_EQ(write(fd, data, max), (ssize_t)max);

	CHECK_EQ(checksum_block_count(0), 0);
	CHECK_EQ(checksum_block_count(1), 1);
	CHECK_EQ(checksum_block_count(CHECKSUM_BLOCK_SIZE), 1);
	CHECK_EQ(checksum_block_count(CHECKSUM_BLOCK_SIZE + 1), 2);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = (size_t)checksum_block_count(sizes[s]);

		CHECK_EQ(checksum_fd_blocks(fd, sizes[s], secret, &a, &blocks, &len), 0);
		CHECK_EQ(len, n * 8);
		CHECK(n ? blocks != NULL : blocks == NULL);
		/* the whole-content digests are the ones checksum_fd gives */
		CHECK_EQ(checksum_fd(fd, sizes[s], secret, &b), 0);
		CHECK(memcmp(&a, &b, sizeof(a)) == 0);
		for (size_t i = 0; i < n; i++) {
			size_t off = i * CHECKSUM_BLOCK_SIZE;
			size_t blen = sizes[s] - off < CHECKSUM_BLOCK_SIZE ? sizes[s] - off
									   : CHECKSUM_BLOCK_SIZE;

			expected_block(data, sizes[s], i, secret, want);
			CHECK(memcmp(blocks + 8 * i, want, 8) == 0);
			CHECK_EQ(checksum_block_verify(data + off, blen, secret, blocks + 8 * i),
				 0);
			/* a flipped byte, a wrong length or another secret do not verify */
			data[off + blen / 2] ^= 0x20;
			CHECK_EQ(checksum_block_verify(data + off, blen, secret, blocks + 8 * i),
				 -EIO);
			data[off + blen / 2] ^= 0x20;
			CHECK_EQ(
			    checksum_block_verify(data + off, blen - 1, secret, blocks + 8 * i),
			    -EIO);
			CHECK_EQ(checksum_block_verify(data + off, blen, secret2, blocks + 8 * i),
				 -EIO);
		}
		free(blocks);
		blocks = NULL;
	}
	/* a short file: an error, and no buffer handed out */
	CHECK_EQ(checksum_fd_blocks(fd, max + 1, secret, &a, &blocks, &len), -EIO);
	CHECK(blocks == NULL);
	CHECK_EQ(len, 0);
	/* checksum_block is the same hash on a buffer */
	{
		unsigned char got[8];

		checksum_block(data, 5, secret, got);
		expected_block(data, 5, 0, secret, want);
		CHECK(memcmp(got, want, 8) == 0);
	}
	close(fd);
	free(data);
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

int main(void)
{
	unsigned char secret[CHECKSUM_SECRET_SIZE], secret2[CHECKSUM_SECRET_SIZE];
	struct checksum a, b, c;
	char h[65], tmpl[] = "/tmp/test_checksum.XXXXXX";
	unsigned char bytes[16];
	char *big;
	size_t bigsize = (3u << 20) + 12345;
	int fd;

	CHECK_EQ(checksum_new_secret(secret), 0);
	CHECK_EQ(checksum_new_secret(secret2), 0);
	CHECK(memcmp(secret, secret2, sizeof(secret)) != 0);

	/* plain XXH3-128 as xxhsum -H2 shows it */
	checksum_buf("hello\n", 6, secret, &a);
	checksum_hex16(a.plain, h);
	CHECK_STREQ(h, "6bba86c7e069f56d5a10b435f1c8e49c");
	checksum_buf("", 0, secret, &a);
	checksum_hex16(a.plain, h);
	CHECK_STREQ(h, "99aa06d3014798d86001c324468d497f");

	/* SHA-256 of "abc" (FIPS 180-2, appendix B.1) */
	checksum_buf("abc", 3, secret, &a);
	hex(a.sha256, 32, h);
	CHECK_STREQ(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

	/* the keyed hash is not the plain one and changes with the secret */
	checksum_buf("abc", 3, secret, &a);
	checksum_buf("abc", 3, secret2, &b);
	CHECK(memcmp(a.keyed, a.plain, 16) != 0);
	CHECK(memcmp(a.keyed, b.keyed, 16) != 0);
	CHECK(memcmp(a.plain, b.plain, 16) == 0);

	/* hex round trip and bad input */
	CHECK_EQ(checksum_parse_hex16("6bba86c7e069f56d5a10b435f1c8e49c", bytes), 0);
	checksum_hex16(bytes, h);
	CHECK_STREQ(h, "6bba86c7e069f56d5a10b435f1c8e49c");
	CHECK_EQ(checksum_parse_hex16("6bba86c7e069f56d5a10b435f1c8e49", bytes), -EINVAL);
	CHECK_EQ(checksum_parse_hex16("6bba86c7e069f56d5a10b435f1c8e49cz", bytes), -EINVAL);
	CHECK_EQ(checksum_parse_hex16("xbba86c7e069f56d5a10b435f1c8e49c", bytes), -EINVAL);

	/* a file of several blocks digests like the same bytes in memory */
	big = malloc(bigsize);
	CHECK(big != NULL);
	for (size_t i = 0; i < bigsize; i++)
		big[i] = (char)(i * 2654435761u >> 13);
	fd = mkstemp(tmpl);
	CHECK(fd >= 0);
	unlink(tmpl);
	CHECK_EQ(write(fd, big, bigsize), (ssize_t)bigsize);
	CHECK_EQ(checksum_fd(fd, bigsize, secret, &a), 0);
	checksum_buf(big, bigsize, secret, &b);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	/* a file shorter than its claimed size is an error, not a digest */
	CHECK_EQ(checksum_fd(fd, bigsize + 1, secret, &c), -EIO);
	close(fd);
	free(big);

	test_blocks(secret, secret2);
	return test_done();
}
