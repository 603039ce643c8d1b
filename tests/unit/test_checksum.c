/*
 * test_checksum.c - the digests of checksum.h: plain XXH3-128 matches what
 * `xxhsum -H2` prints (values computed with xxhsum 0.8.1), SHA-256 matches
 * the FIPS 180-2 example, the keyed hash depends on the secret, and the file
 * path (several blocks) agrees with the buffer path.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "docvault/checksum.h"

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
	return test_done();
}
