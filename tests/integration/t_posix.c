/*
 * t_posix.c - POSIX file-system semantics through the kernel, checked with
 * syscalls and errno values: what ext4 or tmpfs give, docvault must give.
 *
 * Usage: t_posix TARGET_DIR (works in TARGET_DIR/posix). Covers open flags
 * (O_EXCL, O_TRUNC, O_APPEND), random-offset and sparse writes, truncate
 * and ftruncate seen at once by stat and lseek(SEEK_END), mmap, unlink,
 * mkdir/rmdir and their errors, link counts, utimensat (nanoseconds,
 * UTIME_NOW, UTIME_OMIT), chmod/chown and ctime, directory times, special
 * files with device numbers, symlinks, hard links, name lengths and
 * non-UTF-8 names, files unlinked while open, fsync, statfs, and stable
 * readdir offsets. Runs as root (chown, mknod of devices).
 *
 * Prints a heading per section and one line per failed check; ends with
 * check.h's "N passed, N failed". Single-threaded.
 */
#include "t_common.h"

#include <sys/file.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#define FUSE_SUPER_MAGIC 0x65735546

static void test_open_flags(void)
{
	SECTION("open: O_CREAT|O_EXCL, O_TRUNC, O_APPEND");
	int fd = (int)OK(open("f", O_CREAT | O_EXCL | O_WRONLY, 0640));
	struct stat st;
	OK(fstat(fd, &st));
	CHECK(S_ISREG(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, 0640);
	CHECK_EQ(st.st_uid, geteuid());
	CHECK_EQ(st.st_gid, getegid());
	CHECK_EQ(st.st_size, 0);
	CHECK_EQ(st.st_nlink, 1);
	/* It exists at once, by name, before any write or close. */
	struct stat st2 = LSTAT("f");
	CHECK_EQ(st2.st_ino, st.st_ino);
	CHECK_EQ(t_dir_count(".", "f"), 1);
	ERR(open("f", O_CREAT | O_EXCL | O_WRONLY, 0640), EEXIST);
	OK(close(fd));
	OK(symlink("nowhere", "dangling"));
	ERR(open("dangling", O_CREAT | O_EXCL | O_WRONLY, 0640), EEXIST);
	ERR(open("missing", O_RDONLY), ENOENT);
	ERR(open("f/x", O_CREAT | O_WRONLY, 0640), ENOTDIR);
	ERR(open("missingdir/x", O_CREAT | O_WRONLY, 0640), ENOENT);

	/* O_TRUNC empties the file and moves mtime and ctime. */
	char buf[100];
	memset(buf, 'q', sizeof(buf));
	OK(t_write_file("f", buf, sizeof(buf), 0640));
	struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
	OK(utimensat(AT_FDCWD, "f", old, 0));
	st = LSTAT("f");
	CHECK_EQ(st.st_size, 100);
	t_tick();
	fd = (int)OK(open("f", O_WRONLY | O_TRUNC));
	OK(fstat(fd, &st2));
	CHECK_EQ(st2.st_size, 0);
	OK(close(fd));
	st2 = LSTAT("f");
	CHECK_EQ(st2.st_size, 0);
	CHECK_LATER(st2.st_mtim, st.st_mtim);
	CHECK_LATER(st2.st_ctim, st.st_ctim);
	CHECK_EQ(t_read_file("f", buf, sizeof(buf)), 0);

	/* O_APPEND writes at the end whatever the offset, also from two fds. */
	OK(t_write_file("f", "abc", 3, 0640));
	fd = (int)OK(open("f", O_WRONLY | O_APPEND));
	OK(lseek(fd, 0, SEEK_SET));
	CHECK_EQ(write(fd, "def", 3), 3);
	int fd2 = (int)OK(open("f", O_WRONLY | O_APPEND));
	CHECK_EQ(write(fd2, "G", 1), 1);
	CHECK_EQ(write(fd, "H", 1), 1);
	OK(close(fd2));
	OK(close(fd));
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(t_read_file("f", buf, sizeof(buf)), 8);
	CHECK_STREQ(buf, "abcdefGH");

	/* Read and write on one O_RDWR fd; reading past the end gives 0. */
	fd = (int)OK(open("f", O_RDWR));
	CHECK_EQ(pread(fd, buf, sizeof(buf), 100), 0);
	CHECK_EQ(pwrite(fd, "XY", 2, 1), 2);
	CHECK_EQ(pread(fd, buf, 4, 0), 4);
	CHECK(memcmp(buf, "aXYd", 4) == 0);
	OK(close(fd));
	OK(unlink("f"));
	OK(unlink("dangling"));
}

#define RW_SIZE (2 << 20)

static void test_random_writes(void)
{
	SECTION("pwrite at random offsets, pread back before and after close");
	unsigned char *model = calloc(1, RW_SIZE), *got = malloc(RW_SIZE);
	unsigned int seed = 12345;
	size_t end = 0;
	int fd = (int)OK(open("rw", O_CREAT | O_RDWR, 0644));
	for (int i = 0; i < 300; i++) {
		size_t len = 1 + (size_t)rand_r(&seed) % 65536;
		size_t off = (size_t)rand_r(&seed) % (RW_SIZE - len);
		unsigned char *p = model + off;
		for (size_t j = 0; j < len; j++)
			p[j] = (unsigned char)rand_r(&seed);
		if (pwrite(fd, p, len, (off_t)off) != (ssize_t)len) {
			CHECK(!"pwrite wrote everything");
			break;
		}
		if (off + len > end)
			end = off + len;
	}
	struct stat st;
	OK(fstat(fd, &st));
	CHECK_EQ(st.st_size, end);
	CHECK_EQ(lseek(fd, 0, SEEK_END), end);
	CHECK_EQ(t_pread_full(fd, got, RW_SIZE, 0), end);
	CHECK(memcmp(got, model, end) == 0);
	/* Short reads at random places, some across the end of the file. */
	int bad = 0;
	for (int i = 0; i < 200; i++) {
		size_t off = (size_t)rand_r(&seed) % end, len = 1 + (size_t)rand_r(&seed) % 100000;
		size_t want = off + len > end ? end - off : len;
		if (t_pread_full(fd, got, len, (off_t)off) != (ssize_t)want ||
		    memcmp(got, model + off, want) != 0)
			bad++;
	}
	CHECK_EQ(bad, 0);
	OK(close(fd));
	memset(got, 0, RW_SIZE);
	CHECK_EQ(t_read_file("rw", got, RW_SIZE), end);
	CHECK(memcmp(got, model, end) == 0);
	OK(unlink("rw"));
	free(model);
	free(got);
}

static void test_sparse(void)
{
	SECTION("sparse files: holes read back as zeros, size right");
	const off_t mib10 = 10 << 20;
	char *buf = malloc(mib10);
	int fd = (int)OK(open("sparse", O_CREAT | O_RDWR, 0644));
	CHECK_EQ(pwrite(fd, "x", 1, mib10), 1);
	struct stat st;
	OK(fstat(fd, &st));
	CHECK_EQ(st.st_size, mib10 + 1);
	memset(buf, 'z', mib10);
	CHECK_EQ(t_pread_full(fd, buf, mib10, 0), mib10);
	CHECK(t_all_zero(buf, mib10));
	char c = 0;
	CHECK_EQ(pread(fd, &c, 1, mib10), 1);
	CHECK_EQ(c, 'x');
	OK(close(fd));
	/* Committed and read back through a new open: still the same. */
	st = LSTAT("sparse");
	CHECK_EQ(st.st_size, mib10 + 1);
	fd = (int)OK(open("sparse", O_RDONLY));
	memset(buf, 'z', mib10);
	CHECK_EQ(t_pread_full(fd, buf, mib10, 0), mib10);
	CHECK(t_all_zero(buf, mib10));
	CHECK_EQ(pread(fd, &c, 1, mib10), 1);
	CHECK_EQ(c, 'x');
	OK(close(fd));

	/* A hole past 4 GiB: 64-bit offsets all the way down. Checked while
	 * open, then cut back before close, so that no store has to take
	 * 5 GiB of zeros. */
	const off_t far = (off_t)5 << 30;
	fd = (int)OK(open("sparse", O_RDWR));
	CHECK_EQ(pwrite(fd, "end", 3, far), 3);
	OK(fstat(fd, &st));
	CHECK_EQ(st.st_size, far + 3);
	CHECK_EQ(LSTAT("sparse").st_size, far + 3);
	CHECK_EQ(lseek(fd, 0, SEEK_END), far + 3);
	memset(buf, 'z', 4099);
	CHECK_EQ(t_pread_full(fd, buf, 8192, far - 4096), 4099);
	CHECK(t_all_zero(buf, 4096));
	CHECK(memcmp(buf + 4096, "end", 3) == 0);
	CHECK_EQ(pread(fd, &c, 1, mib10), 1);
	CHECK_EQ(c, 'x');
	OK(ftruncate(fd, mib10 + 1));
	OK(close(fd));
	CHECK_EQ(LSTAT("sparse").st_size, mib10 + 1);
	OK(unlink("sparse"));

	/* Writing past the end of a short file leaves zeros in between. */
	OK(t_write_file("gap", "abc", 3, 0644));
	fd = (int)OK(open("gap", O_WRONLY));
	CHECK_EQ(pwrite(fd, "z", 1, 100), 1);
	OK(close(fd));
	memset(buf, 'q', 200);
	CHECK_EQ(t_read_file("gap", buf, 200), 101);
	CHECK(memcmp(buf, "abc", 3) == 0 && t_all_zero(buf + 3, 97) && buf[100] == 'z');
	OK(unlink("gap"));
	free(buf);
}

static void test_truncate(void)
{
	SECTION("truncate grow/shrink: stat and lseek(SEEK_END) see it at once");
	char buf[100000];
	memset(buf, 'a', 1000);
	OK(t_write_file("t", buf, 1000, 0644));
	int fd = (int)OK(open("t", O_RDWR));
	struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
	OK(utimensat(AT_FDCWD, "t", old, 0));
	struct stat before = LSTAT("t");

	t_tick();
	OK(truncate("t", 100000));
	struct stat st = LSTAT("t");
	CHECK_EQ(st.st_size, 100000);
	CHECK_LATER(st.st_mtim, before.st_mtim);
	CHECK_LATER(st.st_ctim, before.st_ctim);
	OK(fstat(fd, &st));
	CHECK_EQ(st.st_size, 100000);
	CHECK_EQ(lseek(fd, 0, SEEK_END), 100000);
	memset(buf, 'z', sizeof(buf));
	CHECK_EQ(t_pread_full(fd, buf, sizeof(buf), 0), 100000);
	CHECK(buf[0] == 'a' && buf[999] == 'a' && t_all_zero(buf + 1000, 99000));

	OK(truncate("t", 10));
	CHECK_EQ(LSTAT("t").st_size, 10);
	CHECK_EQ(lseek(fd, 0, SEEK_END), 10);
	/* Growing again must not bring the old bytes back. */
	OK(truncate("t", 500));
	CHECK_EQ(LSTAT("t").st_size, 500);
	CHECK_EQ(lseek(fd, 0, SEEK_END), 500);
	memset(buf, 'z', sizeof(buf));
	CHECK_EQ(t_pread_full(fd, buf, sizeof(buf), 0), 500);
	CHECK(memcmp(buf, "aaaaaaaaaa", 10) == 0 && t_all_zero(buf + 10, 490));
	OK(close(fd));
	CHECK_EQ(t_read_file("t", buf, sizeof(buf)), 500);
	CHECK(memcmp(buf, "aaaaaaaaaa", 10) == 0 && t_all_zero(buf + 10, 490));
	OK(truncate("t", 0));
	CHECK_EQ(LSTAT("t").st_size, 0);
	CHECK_EQ(t_read_file("t", buf, sizeof(buf)), 0);
	ERR(truncate("t", -1), EINVAL);
	ERR(truncate("missing", 0), ENOENT);
	OK(mkdir("tdir", 0755));
	ERR(truncate("tdir", 0), EISDIR);
	OK(rmdir("tdir"));
	OK(unlink("t"));

	SECTION("ftruncate on an open file with unflushed writes");
	unsigned char pat[5000];
	for (int i = 0; i < 5000; i++)
		pat[i] = (unsigned char)(i * 7);
	fd = (int)OK(open("ft", O_CREAT | O_RDWR, 0644));
	CHECK_EQ(write(fd, pat, 5000), 5000);
	OK(ftruncate(fd, 2000));
	OK(fstat(fd, &st));
	CHECK_EQ(st.st_size, 2000);
	CHECK_EQ(LSTAT("ft").st_size, 2000);
	CHECK_EQ(lseek(fd, 0, SEEK_END), 2000);
	CHECK_EQ(pwrite(fd, "x", 1, 3000), 1);
	CHECK_EQ(LSTAT("ft").st_size, 3001);
	OK(close(fd));
	memset(buf, 'q', sizeof(buf));
	CHECK_EQ(t_read_file("ft", buf, sizeof(buf)), 3001);
	CHECK(memcmp(buf, pat, 2000) == 0 && t_all_zero(buf + 2000, 1000) && buf[3000] == 'x');
	OK(unlink("ft"));
}

static void test_mmap(void)
{
	SECTION("mmap: shared writable mapping, msync, read back");
	const size_t len = 3 * 4096 + 100;
	int fd = (int)OK(open("mm", O_CREAT | O_RDWR, 0644));
	OK(ftruncate(fd, (off_t)len));
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	if (p != MAP_FAILED) {
		CHECK(t_all_zero(p, len));
		for (size_t i = 0; i < len; i++)
			p[i] = (char)('A' + i % 26);
		OK(msync(p, len, MS_SYNC));
		OK(munmap(p, len));
	}
	OK(close(fd));
	char *buf = malloc(len + 10);
	CHECK_EQ(t_read_file("mm", buf, len + 10), len);
	int bad = 0;
	for (size_t i = 0; i < len; i++)
		bad += buf[i] != (char)('A' + i % 26);
	CHECK_EQ(bad, 0);
	free(buf);
	OK(unlink("mm"));
}

static void test_unlink_mkdir_rmdir(void)
{
	SECTION("unlink, mkdir, rmdir: results and errno");
	struct stat top = LSTAT(".");
	OK(t_write_file("f", "x", 1, 0644));
	OK(mkdir("d", 0750));
	struct stat st = LSTAT("d");
	CHECK(S_ISDIR(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, 0750);
	CHECK_EQ(st.st_nlink, 2);
	CHECK_EQ(st.st_uid, geteuid());
	CHECK_EQ(LSTAT(".").st_nlink, top.st_nlink + 1);
	ERR(mkdir("d", 0755), EEXIST);
	ERR(mkdir("f", 0755), EEXIST);
	ERR(mkdir("f/x", 0755), ENOTDIR);
	ERR(mkdir("missing/x", 0755), ENOENT);
	OK(mkdir("sticky", 01777));
	CHECK_EQ(LSTAT("sticky").st_mode & 07777, 01755); /* umask 022 */
	OK(rmdir("sticky"));

	OK(t_write_file("d/inner", "y", 1, 0644));
	ERR(rmdir("d"), ENOTEMPTY);
	ERR(rmdir("f"), ENOTDIR);
	ERR(rmdir("missing"), ENOENT);
	ERR(rmdir("d/."), EINVAL);
	ERR(unlink("d"), EISDIR);
	ERR(unlink("missing"), ENOENT);
	ERR(unlink("f/x"), ENOTDIR);
	ERR(open("d", O_WRONLY), EISDIR);
	ERR(open("f", O_RDONLY | O_DIRECTORY), ENOTDIR);
	int fd = (int)OK(open("d", O_RDONLY | O_DIRECTORY));
	if (fd >= 0)
		close(fd);
	/* A directory that holds only a subdirectory is not empty either. */
	OK(mkdir("d/sub", 0755));
	CHECK_EQ(LSTAT("d").st_nlink, 3);
	OK(unlink("d/inner"));
	ERR(rmdir("d"), ENOTEMPTY);
	OK(rmdir("d/sub"));
	CHECK_EQ(LSTAT("d").st_nlink, 2);
	OK(rmdir("d"));
	ERR(lstat("d", &st), ENOENT);
	CHECK_EQ(t_dir_count(".", "d"), 0);
	CHECK_EQ(LSTAT(".").st_nlink, top.st_nlink);
	OK(unlink("f"));
	ERR(lstat("f", &st), ENOENT);
	CHECK_EQ(t_dir_count(".", "f"), 0);
}

static void test_times(void)
{
	SECTION("utimensat: nanoseconds, UTIME_NOW, UTIME_OMIT; ctime follows");
	OK(t_write_file("tm", "x", 1, 0644));
	struct timespec ts[2] = {{1000000000, 123456789}, {1500000000, 987654321}};
	OK(utimensat(AT_FDCWD, "tm", ts, 0));
	struct stat st = LSTAT("tm");
	CHECK_TS_EQ(st.st_atim, ts[0]);
	CHECK_TS_EQ(st.st_mtim, ts[1]);

	/* The epoch and 2100 are representable. */
	struct timespec edge[2] = {{0, 0}, {4102444800, 1}};
	OK(utimensat(AT_FDCWD, "tm", edge, 0));
	st = LSTAT("tm");
	CHECK_TS_EQ(st.st_atim, edge[0]);
	CHECK_TS_EQ(st.st_mtim, edge[1]);

	/* UTIME_OMIT keeps atime; the new mtime is exact; ctime moves. */
	OK(utimensat(AT_FDCWD, "tm", ts, 0));
	struct stat before = LSTAT("tm");
	t_tick();
	struct timespec omit[2] = {{0, UTIME_OMIT}, {1600000000, 42}};
	OK(utimensat(AT_FDCWD, "tm", omit, 0));
	st = LSTAT("tm");
	CHECK_TS_EQ(st.st_atim, ts[0]);
	CHECK_TS_EQ(st.st_mtim, omit[1]);
	CHECK_LATER(st.st_ctim, before.st_ctim);

	/* UTIME_NOW sets the present time (and leaves the other one alone). */
	struct timespec t0, t1;
	clock_gettime(CLOCK_REALTIME, &t0);
	t0.tv_sec -= 2; /* the server's clock may be coarse */
	struct timespec now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
	OK(utimensat(AT_FDCWD, "tm", now, 0));
	clock_gettime(CLOCK_REALTIME, &t1);
	t1.tv_sec += 2;
	st = LSTAT("tm");
	CHECK_TS_EQ(st.st_atim, ts[0]);
	CHECK(t_ts_cmp(st.st_mtim, t0) >= 0 && t_ts_cmp(st.st_mtim, t1) <= 0);
	struct timespec now2[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
	OK(utimensat(AT_FDCWD, "tm", now2, 0));
	struct stat st2 = LSTAT("tm");
	CHECK(t_ts_cmp(st2.st_atim, t0) >= 0 && t_ts_cmp(st2.st_atim, t1) <= 0);
	CHECK_TS_EQ(st2.st_mtim, st.st_mtim);

	/* futimens on an open fd, and a symlink's own times (as rsync sets). */
	int fd = (int)OK(open("tm", O_RDWR));
	OK(futimens(fd, ts));
	OK(close(fd));
	st = LSTAT("tm");
	CHECK_TS_EQ(st.st_mtim, ts[1]);
	OK(symlink("tm", "tmlink"));
	OK(utimensat(AT_FDCWD, "tmlink", edge, AT_SYMLINK_NOFOLLOW));
	st = LSTAT("tmlink");
	CHECK_TS_EQ(st.st_mtim, edge[1]);
	CHECK_TS_EQ(LSTAT("tm").st_mtim, ts[1]);

	/* Writing moves mtime and ctime. */
	before = LSTAT("tm");
	t_tick();
	OK(t_write_file("tm", "yy", 2, 0644));
	st = LSTAT("tm");
	CHECK_LATER(st.st_mtim, before.st_mtim);
	CHECK_LATER(st.st_ctim, before.st_ctim);
	OK(unlink("tmlink"));
	OK(unlink("tm"));
}

static void test_chmod_chown(void)
{
	SECTION("chmod, chown: modes, owners, ctime; set-id bits cleared by chown");
	OK(t_write_file("cm", "x", 1, 0644));
	struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
	OK(utimensat(AT_FDCWD, "cm", old, 0));
	struct stat before = LSTAT("cm"), st;
	t_tick();
	OK(chmod("cm", 0604));
	st = LSTAT("cm");
	CHECK_EQ(st.st_mode & 07777, 0604);
	CHECK_LATER(st.st_ctim, before.st_ctim);
	CHECK_TS_EQ(st.st_mtim, before.st_mtim);
	OK(chmod("cm", 07777));
	CHECK_EQ(LSTAT("cm").st_mode & 07777, 07777);
	OK(chmod("cm", 0));
	CHECK_EQ(LSTAT("cm").st_mode & 07777, 0);

	before = LSTAT("cm");
	t_tick();
	OK(chown("cm", 1234, 5678));
	st = LSTAT("cm");
	CHECK_EQ(st.st_uid, 1234);
	CHECK_EQ(st.st_gid, 5678);
	CHECK_LATER(st.st_ctim, before.st_ctim);
	OK(chown("cm", (uid_t)-1, 4321));
	st = LSTAT("cm");
	CHECK_EQ(st.st_uid, 1234);
	CHECK_EQ(st.st_gid, 4321);
	int fd = (int)OK(open("cm", O_RDONLY));
	OK(fchown(fd, 0, 0));
	OK(fchmod(fd, 0640));
	OK(close(fd));
	st = LSTAT("cm");
	CHECK_EQ(st.st_uid, 0);
	CHECK_EQ(st.st_gid, 0);
	CHECK_EQ(st.st_mode & 07777, 0640);

	/* chown of an executable clears set-user-ID and set-group-ID. */
	OK(chmod("cm", 06755));
	CHECK_EQ(LSTAT("cm").st_mode & 07777, 06755);
	OK(chown("cm", 1000, 1000));
	CHECK_EQ(LSTAT("cm").st_mode & 07777, 0755);
	OK(unlink("cm"));

	/* lchown changes the symlink, not its target. */
	OK(t_write_file("target", "x", 1, 0644));
	OK(symlink("target", "ln"));
	OK(lchown("ln", 1111, 2222));
	st = LSTAT("ln");
	CHECK_EQ(st.st_uid, 1111);
	CHECK_EQ(st.st_gid, 2222);
	CHECK_EQ(LSTAT("target").st_uid, 0);
	OK(unlink("ln"));
	OK(unlink("target"));
}

/* Runs OP and checks that the current directory's mtime and ctime moved. */
static void dir_times_after(const char *what, int (*op)(void))
{
	struct stat before = LSTAT("dt"), st;
	t_tick();
	if (op() != 0) {
		check_failed_count++;
		fprintf(stderr, "dir times: %s failed: %s\n", what, strerror(errno));
		return;
	}
	st = LSTAT("dt");
	if (t_ts_cmp(st.st_mtim, before.st_mtim) <= 0 ||
	    t_ts_cmp(st.st_ctim, before.st_ctim) <= 0) {
		check_failed_count++;
		fprintf(stderr, "dir times: %s did not move the directory's mtime and ctime\n",
			what);
	} else {
		check_passed_count++;
	}
}

/*
 * What a stat of "dt" shows now must be what it shows once every cache has
 * expired (the mount's attr_timeout is 1 s): the daemon answers a
 * directory's attributes from the row it changed itself for that long.
 */
static void dir_row_settles(const char *what)
{
	struct stat now = LSTAT("dt"), later;

	usleep(1300 * 1000);
	later = LSTAT("dt");
	if (t_ts_cmp(now.st_mtim, later.st_mtim) != 0 ||
	    t_ts_cmp(now.st_ctim, later.st_ctim) != 0 || now.st_nlink != later.st_nlink) {
		check_failed_count++;
		fprintf(stderr,
			"dir times: after %s the directory showed mtime %lld.%09ld ctime "
			"%lld.%09ld nlink %lu, and %lld.%09ld %lld.%09ld %lu a second later\n",
			what, (long long)now.st_mtim.tv_sec, now.st_mtim.tv_nsec,
			(long long)now.st_ctim.tv_sec, now.st_ctim.tv_nsec,
			(unsigned long)now.st_nlink, (long long)later.st_mtim.tv_sec,
			later.st_mtim.tv_nsec, (long long)later.st_ctim.tv_sec,
			later.st_ctim.tv_nsec, (unsigned long)later.st_nlink);
	} else {
		check_passed_count++;
	}
}

static int op_create(void)
{
	return t_write_file("dt/a", "x", 1, 0644);
}
static int op_mkdir(void)
{
	return mkdir("dt/sub", 0755);
}
static int op_symlink(void)
{
	return symlink("a", "dt/sl");
}
static int op_link(void)
{
	return link("dt/a", "dt/hl");
}
static int op_mknod(void)
{
	return mknod("dt/fifo", S_IFIFO | 0644, 0);
}
static int op_rename(void)
{
	return rename("dt/a", "dt/b");
}
static int op_rename_over(void)
{
	return rename("dt/fifo", "dt/hl");
}
static int op_unlink(void)
{
	return unlink("dt/b");
}
static int op_rmdir(void)
{
	return rmdir("dt/sub");
}
static int op_unlink_rest(void)
{
	return unlink("dt/sl") || unlink("dt/hl");
}

static void test_dir_times(void)
{
	SECTION("a directory's mtime and ctime move on create, remove and rename in it");
	OK(mkdir("dt", 0755));
	dir_times_after("create", op_create);
	dir_times_after("mkdir", op_mkdir);
	dir_row_settles("mkdir");
	dir_times_after("symlink", op_symlink);
	dir_times_after("link", op_link);
	dir_times_after("mknod", op_mknod);
	dir_times_after("rename", op_rename);
	dir_times_after("rename over", op_rename_over);
	dir_row_settles("rename over");
	dir_times_after("rmdir", op_rmdir);
	dir_row_settles("rmdir");
	dir_times_after("unlink", op_unlink);
	dir_times_after("unlink more", op_unlink_rest);
	dir_row_settles("unlink");
	OK(rmdir("dt"));
}

static void test_special_files(void)
{
	SECTION("mknod: FIFO, socket, character and block devices keep type and rdev");
	OK(mknod("fifo", S_IFIFO | 0640, 0));
	OK(mkfifo("fifo2", 0600));
	OK(mknod("sock", S_IFSOCK | 0644, 0));
	OK(mknod("chr", S_IFCHR | 0600, makedev(1, 3)));
	OK(mknod("blk", S_IFBLK | 0600, makedev(8, 17)));
	OK(mknod("big", S_IFCHR | 0600, makedev(300, 70000)));
	OK(mknod("reg", S_IFREG | 0644, 0));
	struct stat st = LSTAT("fifo");
	CHECK(S_ISFIFO(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, 0640);
	CHECK(S_ISFIFO(LSTAT("fifo2").st_mode));
	CHECK(S_ISSOCK(LSTAT("sock").st_mode));
	st = LSTAT("chr");
	CHECK(S_ISCHR(st.st_mode));
	CHECK_EQ(major(st.st_rdev), 1);
	CHECK_EQ(minor(st.st_rdev), 3);
	st = LSTAT("blk");
	CHECK(S_ISBLK(st.st_mode));
	CHECK_EQ(major(st.st_rdev), 8);
	CHECK_EQ(minor(st.st_rdev), 17);
	st = LSTAT("big");
	CHECK_EQ(major(st.st_rdev), 300);
	CHECK_EQ(minor(st.st_rdev), 70000);
	st = LSTAT("reg");
	CHECK(S_ISREG(st.st_mode));
	CHECK_EQ(st.st_size, 0);
	ERR(mknod("fifo", S_IFIFO | 0644, 0), EEXIST);

	/* readdir reports the right d_type for every kind. */
	OK(mkdir("dir", 0755));
	OK(symlink("reg", "lnk"));
	CHECK_EQ(t_dir_type(".", "fifo"), DT_FIFO);
	CHECK_EQ(t_dir_type(".", "sock"), DT_SOCK);
	CHECK_EQ(t_dir_type(".", "chr"), DT_CHR);
	CHECK_EQ(t_dir_type(".", "blk"), DT_BLK);
	CHECK_EQ(t_dir_type(".", "reg"), DT_REG);
	CHECK_EQ(t_dir_type(".", "dir"), DT_DIR);
	CHECK_EQ(t_dir_type(".", "lnk"), DT_LNK);

	/* A FIFO in the vault works as a pipe. */
	int fd = (int)OK(open("fifo", O_RDWR | O_NONBLOCK));
	char buf[8] = "";
	CHECK_EQ(write(fd, "hi", 2), 2);
	CHECK_EQ(read(fd, buf, sizeof(buf)), 2);
	CHECK(memcmp(buf, "hi", 2) == 0);
	OK(close(fd));
	const char *names[] = {"fifo", "fifo2", "sock", "chr", "blk", "big", "reg", "lnk"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		OK(unlink(names[i]));
	OK(rmdir("dir"));
}

static void test_symlinks(void)
{
	SECTION("symlink, readlink");
	OK(t_write_file("target", "content", 7, 0644));
	OK(symlink("target", "ln"));
	struct stat st = LSTAT("ln");
	CHECK(S_ISLNK(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, 0777);
	CHECK_EQ(st.st_size, 6);
	char buf[5000];
	CHECK_EQ(readlink("ln", buf, sizeof(buf)), 6);
	CHECK(memcmp(buf, "target", 6) == 0);
	struct stat via, direct = LSTAT("target");
	OK(stat("ln", &via));
	CHECK_EQ(via.st_ino, direct.st_ino);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(t_read_file("ln", buf, sizeof(buf)), 7);
	CHECK_STREQ(buf, "content");
	ERR(symlink("other", "ln"), EEXIST);
	ERR(symlink("other", "target"), EEXIST);
	ERR(readlink("target", buf, sizeof(buf)), EINVAL);
	ERR(readlink("missing", buf, sizeof(buf)), ENOENT);

	/* Dangling, absolute, odd and long targets are stored as given. */
	const char *targets[] = {"/does/not/exist", "../../up/and/over", "with space\nnewline",
				 "\xff\xfe bytes"};
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		unlink("odd");
		OK(symlink(targets[i], "odd"));
		ssize_t n = readlink("odd", buf, sizeof(buf));
		CHECK_EQ(n, strlen(targets[i]));
		CHECK(n >= 0 && memcmp(buf, targets[i], (size_t)n) == 0);
	}
	ERR(stat("odd", &st), ENOENT);
	OK(unlink("odd"));
	char longt[4096];
	for (int i = 0; i < 4095; i++)
		longt[i] = i % 100 == 99 ? '/' : 'a' + i % 26;
	longt[4095] = '\0';
	OK(symlink(longt, "long"));
	CHECK_EQ(readlink("long", buf, sizeof(buf)), 4095);
	CHECK(memcmp(buf, longt, 4095) == 0);
	CHECK_EQ(LSTAT("long").st_size, 4095);
	OK(unlink("long"));
	OK(unlink("ln"));
	CHECK_EQ(LSTAT("target").st_nlink, 1);
	OK(unlink("target"));
}

static void test_hard_links(void)
{
	SECTION("hard links: one inode, nlink counts, ctime, errors");
	OK(t_write_file("a", "shared", 6, 0644));
	OK(mkdir("sub", 0755));
	struct stat before = LSTAT("a");
	t_tick();
	OK(link("a", "b"));
	OK(link("a", "sub/c"));
	struct stat sa = LSTAT("a"), sb = LSTAT("b"), sc = LSTAT("sub/c");
	CHECK_EQ(sa.st_ino, sb.st_ino);
	CHECK_EQ(sa.st_ino, sc.st_ino);
	CHECK_EQ(sa.st_nlink, 3);
	CHECK_EQ(sb.st_nlink, 3);
	CHECK_LATER(sa.st_ctim, before.st_ctim);
	/* Writes through one name show through the others. */
	OK(t_write_file("b", "changed!", 8, 0644));
	char buf[16] = "";
	CHECK_EQ(t_read_file("sub/c", buf, sizeof(buf)), 8);
	CHECK(memcmp(buf, "changed!", 8) == 0);
	before = LSTAT("a");
	t_tick();
	OK(unlink("a"));
	sb = LSTAT("b");
	CHECK_EQ(sb.st_nlink, 2);
	CHECK_LATER(sb.st_ctim, before.st_ctim);
	OK(unlink("sub/c"));
	CHECK_EQ(LSTAT("b").st_nlink, 1);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(t_read_file("b", buf, sizeof(buf)), 8);
	ERR(link("b", "b"), EEXIST);
	ERR(link("missing", "x"), ENOENT);
	ERR(link("sub", "sublink"), EPERM);
	/* link() does not follow a symlink: it links the symlink itself. */
	OK(symlink("b", "sl"));
	OK(link("sl", "sl2"));
	struct stat l1 = LSTAT("sl"), l2 = LSTAT("sl2");
	CHECK(S_ISLNK(l2.st_mode));
	CHECK_EQ(l1.st_ino, l2.st_ino);
	CHECK_EQ(l2.st_nlink, 2);
	OK(unlink("sl"));
	OK(unlink("sl2"));
	OK(unlink("b"));
	OK(rmdir("sub"));
}

static void test_names(void)
{
	SECTION("names: 255 bytes work, 256 and 300 give ENAMETOOLONG; any byte but '/' and NUL");
	char n255[256], n256[257], n300[301];
	memset(n255, 'n', 255);
	n255[255] = '\0';
	memset(n256, 'm', 256);
	n256[256] = '\0';
	memset(n300, 'o', 300);
	n300[300] = '\0';
	OK(t_write_file(n255, "x", 1, 0644));
	CHECK_EQ(LSTAT(n255).st_size, 1);
	CHECK_EQ(t_dir_count(".", n255), 1);
	OK(unlink(n255));
	OK(mkdir(n255, 0755));
	OK(rmdir(n255));
	struct stat st;
	ERR(open(n256, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
	ERR(open(n300, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
	ERR(lstat(n256, &st), ENAMETOOLONG);
	ERR(lstat(n300, &st), ENAMETOOLONG);
	ERR(mkdir(n256, 0755), ENAMETOOLONG);
	ERR(mknod(n256, S_IFIFO | 0644, 0), ENAMETOOLONG);
	ERR(symlink("x", n256), ENAMETOOLONG);
	OK(t_write_file("short", "x", 1, 0644));
	ERR(link("short", n256), ENAMETOOLONG);
	ERR(rename("short", n256), ENAMETOOLONG);
	ERR(rename("short", n300), ENAMETOOLONG);
	CHECK_EQ(t_dir_count(".", "short"), 1);
	OK(unlink("short"));

	/* Every byte value but '/' and NUL, spread over a few names, and a
	 * name that is not UTF-8, round-trip through readdir. */
	OK(mkdir("bytes", 0755));
	char names[4][80];
	int k = 0;
	for (int b = 1; b < 256; b++) {
		if (b == '/')
			continue;
		names[k / 64][k % 64] = (char)b;
		k++;
	}
	for (int i = 0; i < 4; i++) {
		int len = i < 3 ? 64 : k - 192;
		names[i][len] = '\0';
	}
	/* "." and ".." can't be names by themselves; these are longer. */
	const char *extra[] = {
	    "bad\xff\xfe\x80name", /* not UTF-8 */
	    "\xc3\x28",		   /* an invalid UTF-8 sequence */
	    "caf\xe9",		   /* Latin-1 */
	    " lead",		   /* blanks at the ends */
	    "trail ",
	    "-dash",	 /* looks like an option */
	    "new\nline", /* control characters */
	    "back\\slash",
	    "*?[", /* glob characters */
	    "\x01\x02\x7f",
	};
	char path[400];
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "bytes/%s", names[i]);
		OK(t_write_file(path, names[i], strlen(names[i]), 0644));
	}
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		snprintf(path, sizeof(path), "bytes/%s", extra[i]);
		OK(t_write_file(path, extra[i], strlen(extra[i]), 0644));
	}
	int found = 0, total = 0;
	DIR *d = opendir("bytes");
	CHECK(d != NULL);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		total++;
		for (int i = 0; i < 4; i++)
			found += strcmp(de->d_name, names[i]) == 0;
		for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
			found += strcmp(de->d_name, extra[i]) == 0;
	}
	if (d)
		closedir(d);
	CHECK_EQ(total, 14);
	CHECK_EQ(found, 14);
	char buf[100];
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		snprintf(path, sizeof(path), "bytes/%s", extra[i]);
		memset(buf, 0, sizeof(buf));
		CHECK_EQ(t_read_file(path, buf, sizeof(buf)), strlen(extra[i]));
		CHECK_STREQ(buf, extra[i]);
		OK(unlink(path));
	}
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "bytes/%s", names[i]);
		OK(unlink(path));
	}
	OK(rmdir("bytes"));
}

/* Inodes in use according to statfs. */
static long long inodes_used(void)
{
	struct statvfs sv;
	if (statvfs(".", &sv) != 0)
		return -1;
	return (long long)sv.f_files - (long long)sv.f_ffree;
}

static void test_open_unlinked(void)
{
	SECTION("a file unlinked while open stays readable and writable until the last close");
	long long used0 = inodes_used();
	char data[3000];
	for (int i = 0; i < 3000; i++)
		data[i] = (char)(i % 251);
	int fd = (int)OK(open("ou", O_CREAT | O_RDWR, 0644));
	int fd2 = (int)OK(open("ou", O_RDONLY));
	CHECK_EQ(write(fd, data, 1000), 1000);
	OK(unlink("ou"));
	struct stat st;
	ERR(lstat("ou", &st), ENOENT);
	CHECK_EQ(t_dir_count(".", "ou"), 0);
	CHECK_EQ(write(fd, data + 1000, 2000), 2000);
	OK(fstat(fd, &st));
	CHECK_EQ(st.st_nlink, 0);
	CHECK_EQ(st.st_size, 3000);
	char buf[3000];
	CHECK_EQ(t_pread_full(fd, buf, 3000, 0), 3000);
	CHECK(memcmp(buf, data, 3000) == 0);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(t_pread_full(fd2, buf, 3000, 0), 3000);
	CHECK(memcmp(buf, data, 3000) == 0);
	OK(ftruncate(fd, 10));
	OK(fstat(fd2, &st));
	CHECK_EQ(st.st_size, 10);
	OK(fsync(fd));
	/* A new file of the same name is a different file. */
	OK(t_write_file("ou", "new", 3, 0644));
	OK(fstat(fd, &st));
	CHECK(st.st_ino != LSTAT("ou").st_ino);
	OK(unlink("ou"));
	OK(close(fd));
	OK(close(fd2));
	if (t_on_mount() && used0 >= 0) {
		/* Freed at last close: the daemon's inode count comes back (the
		 * release is asynchronous to close(2), so allow it a moment). */
		long long used = -1;
		for (int i = 0; i < 100; i++) {
			used = inodes_used();
			if (used == used0)
				break;
			struct timespec ts = {0, 100 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
		if (used != used0)
			fprintf(stderr, "statfs: %lld inodes in use, %lld before the test\n", used,
				used0);
		CHECK_EQ(used, used0);
	}
}

static void test_sync_statfs_locks(void)
{
	SECTION("fsync, fdatasync, fsync of a directory, statfs, locks");
	int fd = (int)OK(open("s", O_CREAT | O_RDWR, 0644));
	CHECK_EQ(write(fd, "data", 4), 4);
	OK(fsync(fd));
	CHECK_EQ(write(fd, "more", 4), 4);
	OK(fdatasync(fd));
	OK(flock(fd, LOCK_EX));
	OK(flock(fd, LOCK_UN));
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	OK(fcntl(fd, F_SETLK, &fl));
	fl.l_type = F_UNLCK;
	OK(fcntl(fd, F_SETLK, &fl));
	OK(close(fd));
	int dfd = (int)OK(open(".", O_RDONLY | O_DIRECTORY));
	OK(fsync(dfd));
	OK(close(dfd));
	OK(unlink("s"));

	struct statvfs sv;
	OK(statvfs(".", &sv));
	CHECK(sv.f_bsize > 0);
	CHECK(sv.f_frsize > 0);
	CHECK(sv.f_blocks > 0);
	CHECK(sv.f_bfree <= sv.f_blocks);
	CHECK(sv.f_bavail <= sv.f_bfree);
	CHECK(sv.f_files > 0);
	CHECK(sv.f_ffree <= sv.f_files);
	CHECK_EQ(sv.f_namemax, 255);
	if (t_on_mount()) {
		struct statfs sf;
		OK(statfs(".", &sf));
		CHECK_EQ(sf.f_type, FUSE_SUPER_MAGIC);
	}
}

#define RD_FILES 500

static void test_readdir_offsets(void)
{
	SECTION("readdir: every entry once, telldir/seekdir stable, unlink while listing");
	OK(mkdir("rd", 0755));
	char name[300];
	for (int i = 0; i < RD_FILES; i++) {
		snprintf(name, sizeof(name), "rd/entry-%04d", i);
		if (t_write_file(name, "", 0, 0644) != 0) {
			CHECK(!"create the readdir test files");
			return;
		}
	}
	static int seen[RD_FILES];
	memset(seen, 0, sizeof(seen));
	DIR *d = opendir("rd");
	CHECK(d != NULL);
	if (!d)
		return;
	struct dirent *de;
	int dots = 0, other = 0, n = 0;
	long pos = -1;
	char after[10][256];
	int nafter = 0;
	while ((de = readdir(d)) != NULL) {
		int i;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
			dots++;
		} else if (sscanf(de->d_name, "entry-%d", &i) == 1 && i >= 0 && i < RD_FILES) {
			seen[i]++;
		} else {
			other++;
		}
		n++;
		if (n == 200)
			pos = telldir(d);
		else if (n > 200 && nafter < 10)
			snprintf(after[nafter++], sizeof(after[0]), "%s", de->d_name);
	}
	CHECK_EQ(dots, 2);
	CHECK_EQ(other, 0);
	int once = 0;
	for (int i = 0; i < RD_FILES; i++)
		once += seen[i] == 1;
	CHECK_EQ(once, RD_FILES);
	/* seekdir back to a telldir position gives the same entries again. */
	CHECK(pos != -1);
	seekdir(d, pos);
	int same = 0;
	for (int i = 0; i < nafter && (de = readdir(d)) != NULL; i++)
		same += strcmp(de->d_name, after[i]) == 0;
	CHECK_EQ(same, 10);
	rewinddir(d);
	n = 0;
	while (readdir(d) != NULL)
		n++;
	CHECK_EQ(n, RD_FILES + 2);
	closedir(d);

	/* Unlinking entries already returned must not make the listing skip
	 * or repeat the others (rm -rf works this way). */
	memset(seen, 0, sizeof(seen));
	d = opendir("rd");
	n = 0;
	while (d && (de = readdir(d)) != NULL) {
		int i;
		if (sscanf(de->d_name, "entry-%d", &i) != 1 || i < 0 || i >= RD_FILES)
			continue;
		seen[i]++;
		snprintf(name, sizeof(name), "rd/%s", de->d_name);
		if (unlink(name) == 0)
			n++;
	}
	if (d)
		closedir(d);
	once = 0;
	for (int i = 0; i < RD_FILES; i++)
		once += seen[i] == 1;
	CHECK_EQ(once, RD_FILES);
	CHECK_EQ(n, RD_FILES);
	OK(rmdir("rd"));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: t_posix TARGET_DIR\n");
		return 2;
	}
	umask(022);
	t_enter(argv[1], "posix");
	test_open_flags();
	test_random_writes();
	test_sparse();
	test_truncate();
	test_mmap();
	test_unlink_mkdir_rmdir();
	test_times();
	test_chmod_chown();
	test_dir_times();
	test_special_files();
	test_symlinks();
	test_hard_links();
	test_names();
	test_open_unlinked();
	test_sync_statfs_locks();
	test_readdir_offsets();
	return test_done();
}
