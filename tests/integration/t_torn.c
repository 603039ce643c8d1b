/*
 * t_torn.c - no torn and no stale reads while files are rewritten
 * concurrently: every read of a whole file gives exactly one version that a
 * writer wrote, never a mix of two, never a version older than one whose
 * close() (or rename()) had already returned when the reader opened it.
 *
 * Usage:
 *   t_torn run DIR SECONDS WRITERS FILES MANIFEST
 *   t_torn verify DIR MANIFEST
 *
 * A version of a file is self-describing: a 64-byte text header
 * "t_torn v=NNNNNNNNNN size=NNNNNNNNNN" (padded with '.', ending in '\n'),
 * then a body in which every aligned 8-byte group is le32(v), le32(v ^
 * 0xa5a5a5a5); the size changes from version to version. A mix of two
 * versions, zeros from a hole, a short or long file all fail the check.
 *
 * `run` forks, in DIR, for SECONDS seconds:
 *   - the hot writer: rewrites DIR/hot in place, whole, under flock(LOCK_EX)
 *     (open without O_TRUNC, flock, ftruncate 0, write in 64 KiB pieces,
 *     fsync every 4th version, close), and publishes each version number
 *     in shared memory once close() returned;
 *   - two hot readers: open DIR/hot, flock(LOCK_SH), read it whole in 32 KiB
 *     pieces. The lock makes a plain local file system give whole versions
 *     too, so the check holds for any POSIX file system (DV_TEST_TARGET=dir),
 *     and on the vault it catches stale pages, a cached old blob served for
 *     a new version, or a commit that lands under a newer write;
 *   - the atomic writer: writes each version to a new temporary name and
 *     rename()s it over DIR/atomic, publishing the version after rename;
 *   - the atomic reader: opens DIR/atomic and reads it slowly (16 KiB, a
 *     pause between reads) without a lock: the version it opened must stay
 *     whole even when renames replace (and unlink) it meanwhile;
 *   - WRITERS writers, each rewriting FILES files of its own (DIR/wI/fJ) in
 *     turn, alternately with O_TRUNC and by overwriting in place then
 *     ftruncate() to the new size, and reading each one back after close:
 *     the mount must give exactly the version just written.
 * Readers check that each version they read is at least the one published
 * before they opened the file. Each reader must see at least two versions
 * (else it raced nothing). At the end MANIFEST (local disk) gets one line
 * per file, "PATH VERSION", with the last version written.
 *
 * `verify` reads every file in MANIFEST below DIR and checks it is whole
 * and at exactly that version: after a sync and a remount on a fresh cache,
 * this proves that a late commit of an older version never overwrote a newer
 * one.
 *
 * Processes, not threads (libc only); each child reports its failures on
 * stderr and exits 1 if it had any; the parent counts the children's exits
 * and prints check.h's "N passed, N failed".
 */
#include "t_common.h"

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define TORN_HDR 64
#define TORN_MAX (1024 * 1024)

/* Shared between the processes: the last published versions. */
struct torn_shared {
	unsigned hot;
	unsigned atomic;
	int passed; /* the children's check counts, added up */
	int failed;
};

static struct torn_shared *torn_sh;
static double torn_deadline;
static unsigned char torn_buf[TORN_MAX + 4096];
static unsigned char torn_rbuf[TORN_MAX + 4096];

static double torn_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The size of version V of a file: between MIN and MAX, changing with V. */
static size_t torn_size(unsigned v, size_t min, size_t max)
{
	unsigned long long h = (unsigned long long)v * 2654435761ULL;
	return min + (size_t)(h % (max - min + 1));
}

static unsigned char torn_body_byte(unsigned v, size_t off)
{
	uint32_t w = (off & 4) ? (v ^ 0xa5a5a5a5u) : v;
	return (unsigned char)(w >> (8 * (off & 3)));
}

/* Fills torn_buf with version V of SIZE bytes. */
static void torn_fill(unsigned v, size_t size)
{
	char hdr[TORN_HDR + 1];
	int n = snprintf(hdr, sizeof(hdr), "t_torn v=%010u size=%010zu", v, size);
	memset(hdr + n, '.', (size_t)(TORN_HDR - n));
	hdr[TORN_HDR - 1] = '\n';
	memcpy(torn_buf, hdr, TORN_HDR);
	for (size_t i = TORN_HDR; i < size; i++)
		torn_buf[i] = torn_body_byte(v, i);
}

/*
 * Checks LEN bytes of BUF as one whole version; sets *V. On failure writes
 * why into WHY and returns -1.
 */
static int torn_check(const unsigned char *buf, size_t len, unsigned *v, char *why, size_t whylen)
{
	char hdr[TORN_HDR + 1];
	size_t size;

	if (len < TORN_HDR) {
		snprintf(why, whylen, "only %zu bytes, not even a header", len);
		return -1;
	}
	memcpy(hdr, buf, TORN_HDR);
	hdr[TORN_HDR] = '\0';
	if (sscanf(hdr, "t_torn v=%u size=%zu", v, &size) != 2) {
		snprintf(why, whylen, "no header: \"%.40s\"", hdr);
		return -1;
	}
	if (size != len) {
		snprintf(why, whylen, "header of version %u says %zu bytes, read %zu", *v, size,
			 len);
		return -1;
	}
	for (size_t i = TORN_HDR; i < len; i++) {
		if (buf[i] != torn_body_byte(*v, i)) {
			size_t j = i & ~(size_t)7;
			uint32_t w = 0;
			for (size_t k = 0; k < 4 && j + k < len; k++)
				w |= (uint32_t)buf[j + k] << (8 * k);
			snprintf(why, whylen,
				 "version %u (%zu bytes) torn at byte %zu: found 0x%02x, the "
				 "group there names version %u",
				 *v, len, i, buf[i], w);
			return -1;
		}
	}
	return 0;
}

/* Writes SIZE bytes of torn_buf to FD in pieces of PIECE bytes. */
static int torn_write_all(int fd, size_t size, size_t piece)
{
	for (size_t off = 0; off < size;) {
		size_t n = size - off < piece ? size - off : piece;
		ssize_t w = write(fd, torn_buf + off, n);
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

/* Reads FD to its end in pieces of PIECE bytes, pausing PAUSE_US between. */
static ssize_t torn_read_all(int fd, size_t piece, unsigned pause_us)
{
	size_t got = 0;
	for (;;) {
		size_t n = sizeof(torn_rbuf) - got < piece ? sizeof(torn_rbuf) - got : piece;
		if (n == 0)
			return (ssize_t)got; /* longer than any version: the check says so */
		ssize_t r = read(fd, torn_rbuf + got, n);
		if (r < 0)
			return -1;
		if (r == 0)
			return (ssize_t)got;
		got += (size_t)r;
		if (pause_us)
			usleep(pause_us);
	}
}

/* Writes version V of PATH from scratch (O_TRUNC) and closes it. */
static int torn_write_file(const char *path, unsigned v, size_t size, int extra_flags)
{
	torn_fill(v, size);
	int fd = OK(open(path, O_WRONLY | O_CREAT | O_TRUNC | extra_flags, 0644));
	if (fd < 0)
		return -1;
	int bad = OK(torn_write_all(fd, size, 65536)) < 0;
	bad |= OK(close(fd)) < 0;
	return bad ? -1 : 0;
}

/* --- the processes ------------------------------------------------------- */

static unsigned torn_hot_writer(void)
{
	unsigned v = __atomic_load_n(&torn_sh->hot, __ATOMIC_SEQ_CST);
	while (torn_now() < torn_deadline) {
		v++;
		size_t size = torn_size(v, 64 * 1024, TORN_MAX);
		torn_fill(v, size);
		int fd = OK(open("hot", O_WRONLY | O_CREAT, 0644));
		if (fd < 0)
			break;
		OK(flock(fd, LOCK_EX));
		OK(ftruncate(fd, 0));
		OK(torn_write_all(fd, size, 65536));
		if (v % 4 == 0)
			OK(fsync(fd));
		if (OK(close(fd)) < 0)
			break;
		__atomic_store_n(&torn_sh->hot, v, __ATOMIC_SEQ_CST);
	}
	return v;
}

static void torn_reader(const char *name, const unsigned *published, bool lock, size_t piece,
			unsigned pause_us, const char *who)
{
	unsigned last = 0, versions = 0;
	long reads = 0;
	char why[256];

	while (torn_now() < torn_deadline) {
		unsigned before = __atomic_load_n(published, __ATOMIC_SEQ_CST), v = 0;
		int fd = OK(open(name, O_RDONLY));
		if (fd < 0)
			break;
		if (lock)
			OK(flock(fd, LOCK_SH));
		ssize_t n = OK(torn_read_all(fd, piece, pause_us));
		if (n >= 0) {
			reads++;
			if (torn_check(torn_rbuf, (size_t)n, &v, why, sizeof(why)) != 0) {
				check_failed_count++;
				fprintf(stderr, "%s: read %ld of %s: %s\n", who, reads, name, why);
			} else if (v < before) {
				check_failed_count++;
				fprintf(stderr,
					"%s: read %ld of %s: stale: version %u, but version %u "
					"was closed before the open\n",
					who, reads, name, v, before);
			} else {
				check_passed_count++;
				if (v != last)
					versions++;
				last = v;
			}
		}
		if (lock)
			OK(flock(fd, LOCK_UN));
		OK(close(fd));
		/* Flock has no writer preference: leave the writer its turns. */
		if (lock)
			usleep(2000);
	}
	printf("%s: %ld whole reads of %s, %u versions seen\n", who, reads, name, versions);
	if (versions < 2) {
		check_failed_count++;
		fprintf(stderr, "%s: saw fewer than 2 versions of %s: it raced nothing\n", who,
			name);
	}
}

static unsigned torn_atomic_writer(void)
{
	unsigned v = __atomic_load_n(&torn_sh->atomic, __ATOMIC_SEQ_CST);
	char tmp[64];
	while (torn_now() < torn_deadline) {
		v++;
		snprintf(tmp, sizeof(tmp), ".atomic.%u", v);
		if (torn_write_file(tmp, v, torn_size(v, 4096, 512 * 1024), O_EXCL) != 0)
			break;
		if (OK(rename(tmp, "atomic")) < 0)
			break;
		__atomic_store_n(&torn_sh->atomic, v, __ATOMIC_SEQ_CST);
	}
	return v;
}

/* Writer I: rewrites its FILES files in turn and reads each one back. */
static void torn_writer(int i, int files, FILE *manifest)
{
	unsigned *ver = calloc((size_t)files, sizeof(*ver));
	char dir[32], path[64], why[256];
	long rewrites = 0;

	snprintf(dir, sizeof(dir), "w%d", i);
	OK(mkdir(dir, 0755));
	while (ver && torn_now() < torn_deadline) {
		for (int j = 0; j < files && torn_now() < torn_deadline; j++) {
			unsigned v = ++ver[j];
			size_t size = torn_size(v * 31 + (unsigned)j, 1024, 256 * 1024);
			snprintf(path, sizeof(path), "%s/f%d", dir, j);
			if (v == 1 || v % 2 == 0) {
				if (torn_write_file(path, v, size, 0) != 0)
					goto out;
			} else {
				/* Over the old content in place, then cut to size. */
				torn_fill(v, size);
				int fd = OK(open(path, O_WRONLY));
				if (fd < 0)
					goto out;
				OK(torn_write_all(fd, size, 65536));
				OK(ftruncate(fd, (off_t)size));
				if (OK(close(fd)) < 0)
					goto out;
			}
			rewrites++;
			int fd = OK(open(path, O_RDONLY));
			if (fd < 0)
				goto out;
			ssize_t n = OK(torn_read_all(fd, 65536, 0));
			OK(close(fd));
			unsigned got = 0;
			if (n < 0)
				continue;
			if (torn_check(torn_rbuf, (size_t)n, &got, why, sizeof(why)) != 0) {
				check_failed_count++;
				fprintf(stderr, "writer %d: %s read back after close: %s\n", i,
					path, why);
			} else if (got != v) {
				check_failed_count++;
				fprintf(stderr,
					"writer %d: %s read back after close gives version %u, "
					"wrote %u\n",
					i, path, got, v);
			} else {
				check_passed_count++;
			}
		}
	}
out:
	printf("writer %d: %ld rewrites of %d files\n", i, rewrites, files);
	for (int j = 0; ver && j < files; j++)
		if (ver[j])
			fprintf(manifest, "%s/f%d %u\n", dir, j, ver[j]);
	free(ver);
}

enum torn_role {
	TORN_HOT_WRITER,
	TORN_HOT_READER,
	TORN_ATOMIC_WRITER,
	TORN_ATOMIC_READER,
	TORN_WRITER
};

/* The body of one child process; MF is the manifest (append mode). */
static void torn_child(enum torn_role role, int arg, int files, FILE *mf)
{
	char who[32];
	unsigned v;

	switch (role) {
	case TORN_HOT_WRITER:
		v = torn_hot_writer();
		fprintf(mf, "hot %u\n", v);
		printf("hot writer: %u versions\n", v);
		break;
	case TORN_HOT_READER:
		snprintf(who, sizeof(who), "hot reader %d", arg);
		torn_reader("hot", &torn_sh->hot, true, 32768, 0, who);
		break;
	case TORN_ATOMIC_WRITER:
		v = torn_atomic_writer();
		fprintf(mf, "atomic %u\n", v);
		printf("atomic writer: %u versions\n", v);
		break;
	case TORN_ATOMIC_READER:
		torn_reader("atomic", &torn_sh->atomic, false, 16384, 500, "atomic reader");
		break;
	case TORN_WRITER:
		torn_writer(arg, files, mf);
		break;
	}
}

/* Forks a child that runs ROLE and exits 1 if it counted a failure. */
static pid_t torn_spawn(enum torn_role role, int arg, int files, FILE *mf)
{
	fflush(NULL);
	pid_t p = fork();
	if (p == 0) {
		torn_child(role, arg, files, mf);
		__atomic_add_fetch(&torn_sh->passed, check_passed_count, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&torn_sh->failed, check_failed_count, __ATOMIC_SEQ_CST);
		fflush(NULL);
		_exit(check_failed_count ? 1 : 0);
	}
	if (p < 0) {
		perror("t_torn: fork");
		exit(2);
	}
	return p;
}

static int torn_run(const char *dir, int seconds, int writers, int files, const char *manifest)
{
	/* Truncated, then appended to by every child (one shared offset). */
	FILE *mf = fopen(manifest, "w");
	if (mf)
		mf = freopen(manifest, "a", mf);
	if (!mf) {
		fprintf(stderr, "t_torn: cannot create %s: %s\n", manifest, strerror(errno));
		return 2;
	}
	setvbuf(mf, NULL, _IOLBF, 0);
	if (chdir(dir) != 0) {
		fprintf(stderr, "t_torn: cannot enter %s: %s\n", dir, strerror(errno));
		return 2;
	}
	torn_sh =
	    mmap(NULL, sizeof(*torn_sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (torn_sh == MAP_FAILED) {
		perror("t_torn: mmap");
		return 2;
	}
	SECTION("first versions of hot and atomic");
	OK(torn_write_file("hot", 1, torn_size(1, 64 * 1024, TORN_MAX), 0));
	OK(torn_write_file("atomic", 1, torn_size(1, 4096, 512 * 1024), 0));
	torn_sh->hot = 1;
	torn_sh->atomic = 1;

	SECTION("%d s: hot writer + 2 locked readers, atomic writer + slow reader, %d writers x %d "
		"files",
		seconds, writers, files);
	torn_deadline = torn_now() + seconds;
	int n = 0;
	pid_t *pids = calloc((size_t)writers + 5, sizeof(*pids));
	if (!pids)
		return 2;
	pids[n++] = torn_spawn(TORN_HOT_WRITER, 0, files, mf);
	pids[n++] = torn_spawn(TORN_HOT_READER, 1, files, mf);
	pids[n++] = torn_spawn(TORN_HOT_READER, 2, files, mf);
	pids[n++] = torn_spawn(TORN_ATOMIC_WRITER, 0, files, mf);
	pids[n++] = torn_spawn(TORN_ATOMIC_READER, 0, files, mf);
	for (int i = 0; i < writers; i++)
		pids[n++] = torn_spawn(TORN_WRITER, i, files, mf);
	for (int i = 0; i < n; i++) {
		int st = 0;
		if (waitpid(pids[i], &st, 0) < 0) {
			perror("t_torn: waitpid");
			check_failed_count++;
			continue;
		}
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			check_passed_count++;
		} else {
			check_failed_count++;
			if (WIFSIGNALED(st))
				fprintf(stderr, "t_torn: child %d (pid %d) killed by signal %d\n",
					i, (int)pids[i], WTERMSIG(st));
			else
				fprintf(stderr, "t_torn: child %d (pid %d) reported failures\n", i,
					(int)pids[i]);
		}
	}
	free(pids);
	fclose(mf);
	check_passed_count += torn_sh->passed;
	check_failed_count += torn_sh->failed;
	return test_done();
}

static int torn_verify(const char *dir, const char *manifest)
{
	FILE *mf = fopen(manifest, "r");
	char line[PATH_MAX + 32], path[PATH_MAX], why[256];
	unsigned want, got;
	long files = 0;

	if (!mf) {
		fprintf(stderr, "t_torn: cannot read %s: %s\n", manifest, strerror(errno));
		return 2;
	}
	if (chdir(dir) != 0) {
		fprintf(stderr, "t_torn: cannot enter %s: %s\n", dir, strerror(errno));
		return 2;
	}
	SECTION("every file at its last version, whole");
	while (fgets(line, sizeof(line), mf)) {
		if (sscanf(line, "%4095s %u", path, &want) != 2)
			continue;
		files++;
		int fd = OK(open(path, O_RDONLY));
		if (fd < 0)
			continue;
		ssize_t n = OK(torn_read_all(fd, 1 << 20, 0));
		OK(close(fd));
		if (n < 0)
			continue;
		if (torn_check(torn_rbuf, (size_t)n, &got, why, sizeof(why)) != 0) {
			check_failed_count++;
			fprintf(stderr, "%s: %s\n", path, why);
		} else if (got != want) {
			check_failed_count++;
			fprintf(stderr, "%s: version %u, but the last one written was %u\n", path,
				got, want);
		} else {
			check_passed_count++;
		}
	}
	fclose(mf);
	printf("verified %ld files\n", files);
	CHECK(files > 0);
	return test_done();
}

int main(int argc, char **argv)
{
	if (argc == 7 && strcmp(argv[1], "run") == 0) {
		int seconds = atoi(argv[3]), writers = atoi(argv[4]), files = atoi(argv[5]);
		if (seconds < 1 || writers < 0 || writers > 64 || files < 1) {
			fprintf(stderr, "t_torn: bad numbers\n");
			return 2;
		}
		return torn_run(argv[2], seconds, writers, files, argv[6]);
	}
	if (argc == 4 && strcmp(argv[1], "verify") == 0)
		return torn_verify(argv[2], argv[3]);
	fprintf(stderr, "usage: t_torn run DIR SECONDS WRITERS FILES MANIFEST\n"
			"       t_torn verify DIR MANIFEST\n");
	return 2;
}
