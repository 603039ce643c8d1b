/*
 * t_rename.c - every rename case through the kernel: rename(2) and
 * renameat2(2) results, errno values, and what the tree looks like after.
 *
 * Usage: t_rename TARGET_DIR (works in TARGET_DIR/rename). Covers file over
 * file (the replaced file stays readable through an open fd), directory
 * over an empty / a non-empty directory, file over directory and directory
 * over file, RENAME_NOREPLACE, RENAME_EXCHANGE (also file <-> directory),
 * moving a directory into its own subtree, rename to itself, renaming one
 * hard link over another, cross-directory renames with the parents' times
 * and link counts and "..", an open file renamed while written, and names
 * that are too long.
 *
 * Prints a heading per section and one line per failed check; ends with
 * check.h's "N passed, N failed". Single-threaded.
 */
#include "t_common.h"

#include <stdio.h>
#include <sys/syscall.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static int rename2(const char *from, const char *to, unsigned int flags)
{
	return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, flags);
}

/* The content of a small file as a string ("" when it cannot be read). */
static const char *content(const char *path)
{
	static char buf[256];
	ssize_t n = t_read_file(path, buf, sizeof(buf) - 1);
	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

static void put(const char *path, const char *text)
{
	OK(t_write_file(path, text, strlen(text), 0644));
}

static void test_file_over_file(void)
{
	SECTION("rename file over file; the replaced file stays open and readable");
	put("a", "AAA");
	put("b", "BBBB");
	struct stat sa = LSTAT("a"), st;
	int fd = (int)OK(open("b", O_RDONLY));
	OK(rename("a", "b"));
	ERR(lstat("a", &st), ENOENT);
	st = LSTAT("b");
	CHECK_EQ(st.st_ino, sa.st_ino);
	CHECK_EQ(st.st_size, 3);
	CHECK_STREQ(content("b"), "AAA");
	CHECK_EQ(t_dir_count(".", "a"), 0);
	CHECK_EQ(t_dir_count(".", "b"), 1);
	char buf[8] = "";
	CHECK_EQ(t_pread_full(fd, buf, sizeof(buf), 0), 4);
	CHECK(memcmp(buf, "BBBB", 4) == 0);
	OK(fstat(fd, &st));
	CHECK_EQ(st.st_nlink, 0);
	OK(close(fd));
	ERR(rename("missing", "b"), ENOENT);
	ERR(rename("b", "missingdir/b"), ENOENT);
	OK(unlink("b"));
}

static void test_dirs(void)
{
	SECTION("rename directories: over empty, over non-empty, file<->dir mismatches");
	OK(mkdir("d1", 0755));
	put("d1/inside", "in d1");
	OK(mkdir("d2", 0700));
	struct stat s1 = LSTAT("d1"), st;
	OK(rename("d1", "d2"));
	ERR(lstat("d1", &st), ENOENT);
	st = LSTAT("d2");
	CHECK_EQ(st.st_ino, s1.st_ino);
	CHECK_EQ(st.st_mode & 07777, 0755);
	CHECK_STREQ(content("d2/inside"), "in d1");

	OK(mkdir("full", 0755));
	put("full/x", "x");
	ERR(rename("d2", "full"), ENOTEMPTY);
	CHECK_STREQ(content("d2/inside"), "in d1");
	CHECK_STREQ(content("full/x"), "x");

	put("file", "f");
	ERR(rename("file", "d2"), EISDIR);
	ERR(rename("d2", "file"), ENOTDIR);
	CHECK_STREQ(content("file"), "f");
	CHECK(S_ISDIR(LSTAT("d2").st_mode));
	/* A trailing slash names a directory. */
	ERR(rename("file", "newname/"), ENOTDIR);
	OK(unlink("file"));
	OK(unlink("full/x"));
	OK(rmdir("full"));
	OK(unlink("d2/inside"));
	OK(rmdir("d2"));
}

static void test_noreplace_exchange(void)
{
	SECTION("renameat2: RENAME_NOREPLACE and RENAME_EXCHANGE");
	put("a", "AAA");
	put("b", "BBBB");
	ERR(rename2("a", "b", RENAME_NOREPLACE), EEXIST);
	CHECK_STREQ(content("a"), "AAA");
	CHECK_STREQ(content("b"), "BBBB");
	OK(rename2("a", "c", RENAME_NOREPLACE));
	CHECK_STREQ(content("c"), "AAA");
	struct stat st;
	ERR(lstat("a", &st), ENOENT);

	struct stat sb = LSTAT("b"), sc = LSTAT("c");
	OK(rename2("b", "c", RENAME_EXCHANGE));
	CHECK_STREQ(content("b"), "AAA");
	CHECK_STREQ(content("c"), "BBBB");
	CHECK_EQ(LSTAT("b").st_ino, sc.st_ino);
	CHECK_EQ(LSTAT("c").st_ino, sb.st_ino);
	ERR(rename2("b", "missing", RENAME_EXCHANGE), ENOENT);
	ERR(rename2("b", "c", RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);

	/* A file and a directory swap places, the directory keeps its
	 * content, and ".." of the directory is right in its new place. */
	OK(mkdir("dir", 0755));
	OK(mkdir("other", 0755));
	put("dir/inner", "inner");
	OK(rename("b", "other/b"));
	struct stat sd = LSTAT("dir"), sf = LSTAT("other/b");
	OK(rename2("other/b", "dir", RENAME_EXCHANGE));
	st = LSTAT("dir");
	CHECK(S_ISREG(st.st_mode));
	CHECK_EQ(st.st_ino, sf.st_ino);
	CHECK_STREQ(content("dir"), "AAA");
	st = LSTAT("other/b");
	CHECK(S_ISDIR(st.st_mode));
	CHECK_EQ(st.st_ino, sd.st_ino);
	CHECK_STREQ(content("other/b/inner"), "inner");
	CHECK_EQ(LSTAT("other/b/..").st_ino, LSTAT("other").st_ino);
	CHECK_EQ(LSTAT("other").st_nlink, 3);
	OK(unlink("other/b/inner"));
	OK(rmdir("other/b"));
	OK(rmdir("other"));
	OK(unlink("dir"));
	OK(unlink("c"));
}

static void test_subtree_self_links(void)
{
	SECTION("rename into its own subtree (EINVAL), to itself, hard-link pair (no-op)");
	OK(mkdir("top", 0755));
	OK(mkdir("top/mid", 0755));
	OK(mkdir("top/mid/low", 0755));
	ERR(rename("top", "top/mid/low/top"), EINVAL);
	ERR(rename("top", "top/mid/x"), EINVAL);
	ERR(rename("top/mid", "top/mid/low/mid"), EINVAL);
	/* The other way round, the target is an ancestor and so not empty. */
	ERR(rename("top/mid/low", "top"), ENOTEMPTY);
	CHECK(S_ISDIR(LSTAT("top/mid/low").st_mode));
	OK(rename("top", "top"));
	OK(rename("top/mid", "top/mid"));
	CHECK(S_ISDIR(LSTAT("top/mid/low").st_mode));

	put("self", "same");
	struct stat before = LSTAT("self");
	OK(rename("self", "self"));
	struct stat st = LSTAT("self");
	CHECK_EQ(st.st_ino, before.st_ino);
	CHECK_STREQ(content("self"), "same");

	/* Two links to one inode: POSIX says rename does nothing at all. */
	OK(link("self", "twin"));
	OK(rename("self", "twin"));
	st = LSTAT("self");
	CHECK_EQ(st.st_ino, before.st_ino);
	CHECK_EQ(st.st_nlink, 2);
	CHECK_EQ(LSTAT("twin").st_ino, before.st_ino);
	CHECK_EQ(t_dir_count(".", "self"), 1);
	CHECK_EQ(t_dir_count(".", "twin"), 1);
	OK(unlink("self"));
	OK(unlink("twin"));
	OK(rmdir("top/mid/low"));
	OK(rmdir("top/mid"));
	OK(rmdir("top"));
}

static void test_cross_directory(void)
{
	SECTION("cross-directory rename: parents' mtime/ctime, link counts, '..'");
	OK(mkdir("p1", 0755));
	OK(mkdir("p2", 0755));
	put("p1/f", "moving");
	OK(mkdir("p1/sub", 0755));
	put("p1/sub/deep", "deep");
	struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
	OK(utimensat(AT_FDCWD, "p1", old, 0));
	OK(utimensat(AT_FDCWD, "p2", old, 0));
	struct stat b1 = LSTAT("p1"), b2 = LSTAT("p2"), bf = LSTAT("p1/f");
	t_tick();
	OK(rename("p1/f", "p2/g"));
	struct stat a1 = LSTAT("p1"), a2 = LSTAT("p2"), af = LSTAT("p2/g"), st;
	CHECK_LATER(a1.st_mtim, b1.st_mtim);
	CHECK_LATER(a1.st_ctim, b1.st_ctim);
	CHECK_LATER(a2.st_mtim, b2.st_mtim);
	CHECK_LATER(a2.st_ctim, b2.st_ctim);
	CHECK_EQ(af.st_ino, bf.st_ino);
	CHECK_LATER(af.st_ctim, bf.st_ctim);
	CHECK_TS_EQ(af.st_mtim, bf.st_mtim);
	CHECK_STREQ(content("p2/g"), "moving");
	ERR(lstat("p1/f", &st), ENOENT);
	CHECK_EQ(t_dir_count("p1", "f"), 0);
	CHECK_EQ(t_dir_count("p2", "g"), 1);

	/* A directory moves: the link counts of both parents follow, and its
	 * ".." names the new parent. */
	CHECK_EQ(a1.st_nlink, 3);
	CHECK_EQ(a2.st_nlink, 2);
	OK(rename("p1/sub", "p2/sub"));
	CHECK_EQ(LSTAT("p1").st_nlink, 2);
	CHECK_EQ(LSTAT("p2").st_nlink, 3);
	CHECK_EQ(LSTAT("p2/sub/..").st_ino, LSTAT("p2").st_ino);
	CHECK_STREQ(content("p2/sub/deep"), "deep");
	/* A moved directory can be removed from its new place, and the old
	 * parent is empty. */
	OK(unlink("p2/sub/deep"));
	OK(rmdir("p2/sub"));
	OK(rmdir("p1"));
	OK(unlink("p2/g"));
	OK(rmdir("p2"));
}

static void test_open_file_renamed(void)
{
	SECTION("a file renamed while open and being written keeps every byte");
	int fd = (int)OK(open("w1", O_CREAT | O_WRONLY, 0644));
	CHECK_EQ(write(fd, "first,", 6), 6);
	OK(rename("w1", "w2"));
	CHECK_EQ(write(fd, "second,", 7), 7);
	OK(mkdir("wd", 0755));
	OK(rename("w2", "wd/w3"));
	CHECK_EQ(write(fd, "third", 5), 5);
	OK(close(fd));
	CHECK_STREQ(content("wd/w3"), "first,second,third");
	struct stat st;
	ERR(lstat("w1", &st), ENOENT);
	ERR(lstat("w2", &st), ENOENT);
	/* The editor pattern: write a temporary, rename it over the original. */
	put("doc", "version 1");
	put("doc.tmp", "version 2");
	OK(rename("doc.tmp", "doc"));
	CHECK_STREQ(content("doc"), "version 2");
	OK(unlink("doc"));
	OK(unlink("wd/w3"));
	OK(rmdir("wd"));
}

static void test_long_names(void)
{
	SECTION("rename to a 255-byte name works, to 256 and 300 bytes gives ENAMETOOLONG");
	char n255[256], n256[257], n300[301];
	memset(n255, 'a', 255);
	n255[255] = '\0';
	memset(n256, 'b', 256);
	n256[256] = '\0';
	memset(n300, 'c', 300);
	n300[300] = '\0';
	put("short", "s");
	OK(rename("short", n255));
	CHECK_STREQ(content(n255), "s");
	ERR(rename(n255, n256), ENAMETOOLONG);
	ERR(rename(n255, n300), ENAMETOOLONG);
	OK(rename(n255, "short"));
	OK(unlink("short"));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: t_rename TARGET_DIR\n");
		return 2;
	}
	umask(022);
	t_enter(argv[1], "rename");
	test_file_over_file();
	test_dirs();
	test_noreplace_exchange();
	test_subtree_self_links();
	test_cross_directory();
	test_open_file_renamed();
	test_long_names();
	return test_done();
}
