/*
 * t_xattr.c - extended attributes in the user namespace through the kernel.
 *
 * Usage: t_xattr TARGET_DIR (works in TARGET_DIR/xattr). Covers set, get,
 * list and remove of user.* attributes on files and directories,
 * XATTR_CREATE (EEXIST) and XATTR_REPLACE (ENODATA), ENODATA for a missing
 * attribute, the size query with size 0, ERANGE on a short buffer for get
 * and for list, binary and empty values, a 64 KiB value (the kernel's
 * limit) and E2BIG past it, and ctime moving on setxattr and removexattr.
 *
 * docvault lists attributes of its own (user.docvault.*) besides the ones
 * set here, so listings are checked for the names this program set, each
 * exactly once, not for equality. Plain directories (DV_TEST_TARGET=dir)
 * must be tmpfs: ext4 without ea_inode cannot hold a 64 KiB value.
 *
 * Prints a heading per section and one line per failed check; ends with
 * check.h's "N passed, N failed". Single-threaded.
 */
#include "t_common.h"

#include <sys/xattr.h>

#define BIG_VALUE (64 * 1024)

/* How often NAME appears in the list of PATH's attributes (-1: error). */
static int listed(const char *path, const char *name)
{
	char buf[65536];
	ssize_t n = listxattr(path, buf, sizeof(buf));
	if (n < 0)
		return -1;
	int count = 0;
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1)
		count += strcmp(buf + i, name) == 0;
	return count;
}

static void test_basic(const char *path)
{
	SECTION("set, get, list, remove user.* on %s", path);
	char buf[256];
	OK(setxattr(path, "user.color", "blue", 4, 0));
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(getxattr(path, "user.color", buf, sizeof(buf)), 4);
	CHECK_STREQ(buf, "blue");
	CHECK_EQ(listed(path, "user.color"), 1);
	OK(setxattr(path, "user.color", "green!", 6, 0));
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(getxattr(path, "user.color", buf, sizeof(buf)), 6);
	CHECK_STREQ(buf, "green!");
	CHECK_EQ(listed(path, "user.color"), 1);
	OK(setxattr(path, "user.second", "2", 1, 0));
	CHECK_EQ(listed(path, "user.second"), 1);
	OK(removexattr(path, "user.color"));
	ERR(getxattr(path, "user.color", buf, sizeof(buf)), ENODATA);
	CHECK_EQ(listed(path, "user.color"), 0);
	CHECK_EQ(listed(path, "user.second"), 1);
	ERR(removexattr(path, "user.color"), ENODATA);
	ERR(getxattr(path, "user.never", buf, sizeof(buf)), ENODATA);
	ERR(getxattr(path, "user.never", NULL, 0), ENODATA);
	OK(removexattr(path, "user.second"));
}

static void test_flags(void)
{
	SECTION("XATTR_CREATE and XATTR_REPLACE");
	char buf[64];
	OK(setxattr("f", "user.k", "v1", 2, XATTR_CREATE));
	ERR(setxattr("f", "user.k", "v2", 2, XATTR_CREATE), EEXIST);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(getxattr("f", "user.k", buf, sizeof(buf)), 2);
	CHECK_STREQ(buf, "v1");
	OK(setxattr("f", "user.k", "v3", 2, XATTR_REPLACE));
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(getxattr("f", "user.k", buf, sizeof(buf)), 2);
	CHECK_STREQ(buf, "v3");
	ERR(setxattr("f", "user.absent", "x", 1, XATTR_REPLACE), ENODATA);
	ERR(getxattr("f", "user.absent", buf, sizeof(buf)), ENODATA);
	OK(removexattr("f", "user.k"));
	ERR(setxattr("f", "user.k", "v4", 2, XATTR_REPLACE), ENODATA);
}

static void test_sizes(void)
{
	SECTION("size query with size 0, ERANGE on short buffers for get and list");
	char buf[128];
	OK(setxattr("f", "user.ten", "0123456789", 10, 0));
	OK(setxattr("f", "user.other", "x", 1, 0));
	CHECK_EQ(getxattr("f", "user.ten", NULL, 0), 10);
	ERR(getxattr("f", "user.ten", buf, 9), ERANGE);
	ERR(getxattr("f", "user.ten", buf, 1), ERANGE);
	CHECK_EQ(getxattr("f", "user.ten", buf, 10), 10);
	CHECK(memcmp(buf, "0123456789", 10) == 0);

	ssize_t need = listxattr("f", NULL, 0);
	/* At least "user.ten\0user.other\0"; docvault may list more. */
	CHECK(need >= 20);
	char *list = malloc((size_t)(need > 0 ? need : 1));
	CHECK_EQ(listxattr("f", list, (size_t)need), need);
	ERR(listxattr("f", list, (size_t)need - 1), ERANGE);
	ERR(listxattr("f", list, 1), ERANGE);
	free(list);
	CHECK_EQ(listed("f", "user.ten"), 1);
	CHECK_EQ(listed("f", "user.other"), 1);
	OK(removexattr("f", "user.ten"));
	OK(removexattr("f", "user.other"));
}

static void test_values(void)
{
	SECTION("binary and empty values; 64 KiB works, larger gives E2BIG");
	unsigned char bin[256], got[256];
	for (int i = 0; i < 256; i++)
		bin[i] = (unsigned char)(255 - i); /* NULs, 0xff, everything */
	OK(setxattr("f", "user.bin", bin, sizeof(bin), 0));
	memset(got, 0xaa, sizeof(got));
	CHECK_EQ(getxattr("f", "user.bin", got, sizeof(got)), 256);
	CHECK(memcmp(got, bin, sizeof(bin)) == 0);
	OK(setxattr("f", "user.nul", "\0\0\0", 3, 0));
	CHECK_EQ(getxattr("f", "user.nul", got, sizeof(got)), 3);
	CHECK(t_all_zero(got, 3));

	OK(setxattr("f", "user.empty", "", 0, 0));
	CHECK_EQ(getxattr("f", "user.empty", got, sizeof(got)), 0);
	CHECK_EQ(getxattr("f", "user.empty", NULL, 0), 0);
	CHECK_EQ(listed("f", "user.empty"), 1);

	/* A name with bytes that are not UTF-8 and 255 bytes long. */
	char lname[256];
	memcpy(lname, "user.", 5);
	memset(lname + 5, 'n', 250);
	lname[6] = (char)0xff;
	lname[255] = '\0';
	OK(setxattr("f", lname, "long", 4, 0));
	CHECK_EQ(getxattr("f", lname, got, sizeof(got)), 4);
	CHECK_EQ(listed("f", lname), 1);

	unsigned char *big = malloc(BIG_VALUE + 1), *back = malloc(BIG_VALUE + 1);
	unsigned int seed = 7;
	for (int i = 0; i <= BIG_VALUE; i++)
		big[i] = (unsigned char)rand_r(&seed);
	OK(setxattr("f", "user.big", big, BIG_VALUE, 0));
	CHECK_EQ(getxattr("f", "user.big", NULL, 0), BIG_VALUE);
	memset(back, 0, BIG_VALUE);
	CHECK_EQ(getxattr("f", "user.big", back, BIG_VALUE), BIG_VALUE);
	CHECK(memcmp(back, big, BIG_VALUE) == 0);
	ERR(getxattr("f", "user.big", back, BIG_VALUE - 1), ERANGE);
	ERR(setxattr("f", "user.bigger", big, BIG_VALUE + 1, 0), E2BIG);
	ERR(getxattr("f", "user.bigger", back, BIG_VALUE), ENODATA);
	free(big);
	free(back);

	const char *names[] = {"user.bin", "user.nul", "user.empty", "user.big", lname};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		OK(removexattr("f", names[i]));
	CHECK_EQ(listed("f", "user.big"), 0);
}

static void test_ctime(void)
{
	SECTION("setxattr and removexattr move ctime, not mtime");
	struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
	OK(utimensat(AT_FDCWD, "f", old, 0));
	struct stat before = LSTAT("f"), st;
	t_tick();
	OK(setxattr("f", "user.t", "1", 1, 0));
	st = LSTAT("f");
	CHECK_LATER(st.st_ctim, before.st_ctim);
	CHECK_TS_EQ(st.st_mtim, before.st_mtim);
	before = st;
	t_tick();
	OK(removexattr("f", "user.t"));
	st = LSTAT("f");
	CHECK_LATER(st.st_ctim, before.st_ctim);
	CHECK_TS_EQ(st.st_mtim, before.st_mtim);
}

static void test_misc(void)
{
	SECTION("attributes survive writes and renames; fd calls; many attributes");
	char buf[64];
	OK(setxattr("f", "user.keep", "kept", 4, 0));
	OK(t_write_file("f", "new content", 11, 0644));
	OK(rename("f", "g"));
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(getxattr("g", "user.keep", buf, sizeof(buf)), 4);
	CHECK_STREQ(buf, "kept");
	int fd = (int)OK(open("g", O_RDONLY));
	OK(fsetxattr(fd, "user.fd", "viafd", 5, 0));
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(fgetxattr(fd, "user.fd", buf, sizeof(buf)), 5);
	CHECK_STREQ(buf, "viafd");
	CHECK(flistxattr(fd, NULL, 0) > 0);
	OK(fremovexattr(fd, "user.fd"));
	OK(close(fd));
	/* A hard link shares the attributes: they belong to the inode. */
	OK(link("g", "h"));
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(getxattr("h", "user.keep", buf, sizeof(buf)), 4);
	OK(unlink("h"));

	int bad = 0;
	char name[64], val[64];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "user.many.%03d", i);
		snprintf(val, sizeof(val), "value %d", i);
		bad += setxattr("g", name, val, strlen(val), 0) != 0;
	}
	CHECK_EQ(bad, 0);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "user.many.%03d", i);
		snprintf(val, sizeof(val), "value %d", i);
		memset(buf, 0, sizeof(buf));
		bad += getxattr("g", name, buf, sizeof(buf)) != (ssize_t)strlen(val) ||
		       strcmp(buf, val) != 0;
		bad += listed("g", name) != 1;
	}
	CHECK_EQ(bad, 0);
	OK(unlink("g"));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: t_xattr TARGET_DIR\n");
		return 2;
	}
	umask(022);
	t_enter(argv[1], "xattr");
	OK(t_write_file("f", "x", 1, 0644));
	OK(mkdir("d", 0755));
	test_basic("f");
	test_basic("d");
	test_flags();
	test_sizes();
	test_values();
	test_ctime();
	test_misc();
	OK(rmdir("d"));
	return test_done();
}
