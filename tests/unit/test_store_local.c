/*
 * test_store_local.c - the local store against the store contract: put from
 * a file descriptor, ranged get, get to a file, head, delete (idempotent),
 * batch delete, ordered listing with a prefix, keys with spaces and
 * non-ASCII bytes, an empty object, rejected keys, and the probe.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "docvault/store.h"

static int tmpfile_with(const void *data, size_t len)
{
	char tmpl[] = "/tmp/test_store_local.XXXXXX";
	int fd = mkstemp(tmpl);

	if (fd < 0)
		return -1;
	unlink(tmpl);
	if (len && write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return fd;
}

struct listing {
	char keys[16][128];
	int n;
};

static int collect(void *arg, const char *key, uint64_t size)
{
	struct listing *l = arg;

	(void)size;
	if (l->n < 16)
		snprintf(l->keys[l->n++], sizeof(l->keys[0]), "%s", key);
	return 0;
}

int main(void)
{
	char root[] = "/tmp/test_store_local_root.XXXXXX";
	char err[512], buf[64], cmd[600];
	struct store *st;
	struct listing l = {0};
	uint64_t size = 0;
	size_t got = 0;
	int fd, out;
	const char *keys[] = {"blobs/aa/one", "blobs/aa/two"};

	CHECK(mkdtemp(root) != NULL);
	CHECK_EQ(store_local_open(root, &st, err, sizeof(err)), 0);
	CHECK_STREQ(st->ops->name, "local");

	fd = tmpfile_with("hello, store", 12);
	CHECK(fd >= 0);
	CHECK_EQ(store_put_fd(st, "blobs/aa/one", fd, 12, NULL), 0);
	CHECK_EQ(store_put_fd(st, "blobs/aa/two", fd, 5, NULL), 0);
	CHECK_EQ(store_put_fd(st, "blobs/ab/x y ü", fd, 12, NULL), 0);
	/* a source shorter than the size asked for is an error and leaves nothing */
	CHECK(store_put_fd(st, "blobs/ab/short", fd, 100, NULL) < 0);
	CHECK_EQ(store_head(st, "blobs/ab/short", &size), -ENOENT);
	close(fd);

	CHECK_EQ(store_head(st, "blobs/aa/one", &size), 0);
	CHECK_EQ(size, 12);
	CHECK_EQ(store_head(st, "blobs/aa/two", &size), 0);
	CHECK_EQ(size, 5);
	CHECK_EQ(store_get_range(st, "blobs/aa/one", 7, 100, buf, &got), 0);
	CHECK_EQ(got, 5);
	CHECK(memcmp(buf, "store", 5) == 0);
	CHECK_EQ(store_get_range(st, "blobs/ab/x y ü", 0, 5, buf, &got), 0);
	CHECK_EQ(got, 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	CHECK_EQ(store_get_range(st, "blobs/none", 0, 5, buf, &got), -ENOENT);

	/* get to a file writes at the same offsets */
	out = tmpfile_with(NULL, 0);
	CHECK(out >= 0);
	CHECK_EQ(store_get_to_fd(st, "blobs/aa/one", 7, 5, out), 0);
	CHECK_EQ(pread(out, buf, 12, 0), 12);
	CHECK(memcmp(buf + 7, "store", 5) == 0);
	CHECK_EQ(store_get_to_fd(st, "blobs/aa/one", 7, 50, out), -EINVAL);
	close(out);

	/* empty object */
	fd = tmpfile_with(NULL, 0);
	CHECK_EQ(store_put_fd(st, "blobs/empty", fd, 0, NULL), 0);
	close(fd);
	CHECK_EQ(store_head(st, "blobs/empty", &size), 0);
	CHECK_EQ(size, 0);

	/* keys that could escape the root are refused */
	fd = tmpfile_with("x", 1);
	CHECK_EQ(store_put_fd(st, "../escape", fd, 1, NULL), -EINVAL);
	CHECK_EQ(store_put_fd(st, "a//b", fd, 1, NULL), -EINVAL);
	CHECK_EQ(store_put_fd(st, "/abs", fd, 1, NULL), -EINVAL);
	CHECK_EQ(store_put_fd(st, "a/./b", fd, 1, NULL), -EINVAL);
	CHECK_EQ(store_put_fd(st, "", fd, 1, NULL), -EINVAL);
	close(fd);

	/* listing: ordered, filtered by prefix */
	CHECK_EQ(store_list(st, "blobs/a", collect, &l), 0);
	CHECK_EQ(l.n, 3);
	CHECK_STREQ(l.keys[0], "blobs/aa/one");
	CHECK_STREQ(l.keys[1], "blobs/aa/two");
	CHECK_STREQ(l.keys[2], "blobs/ab/x y ü");
	l.n = 0;
	CHECK_EQ(store_list(st, "blobs/aa/t", collect, &l), 0);
	CHECK_EQ(l.n, 1);

	/* delete: idempotent; batch */
	CHECK_EQ(store_del(st, "blobs/ab/x y ü"), 0);
	CHECK_EQ(store_del(st, "blobs/ab/x y ü"), 0);
	CHECK_EQ(store_del_batch(st, keys, 2), 0);
	CHECK_EQ(store_head(st, "blobs/aa/one", &size), -ENOENT);
	l.n = 0;
	CHECK_EQ(store_list(st, "", collect, &l), 0);
	CHECK_EQ(l.n, 1); /* blobs/empty */

	/* a whole named file on the same filesystem is linked, not copied */
	{
		char src[600];
		struct stat sb;

		snprintf(src, sizeof(src), "%s/source", root);
		fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
		CHECK(fd >= 0);
		CHECK_EQ(write(fd, "linked", 6), 6);
		CHECK_EQ(store_put_fd(st, "blobs/linked", fd, 6, NULL), 0);
		CHECK_EQ(fstat(fd, &sb), 0);
		CHECK_EQ(sb.st_nlink, 2);
		close(fd);
		CHECK_EQ(store_get_range(st, "blobs/linked", 0, 6, buf, &got), 0);
		CHECK(got == 6 && memcmp(buf, "linked", 6) == 0);
		CHECK_EQ(unlink(src), 0);
		CHECK_EQ(store_del(st, "blobs/linked"), 0);
	}

	CHECK_EQ(store_probe(st, err, sizeof(err)), 0);
	store_close(st);

	/* a root that cannot be created gives a message naming it */
	CHECK(store_local_open("/proc/docvault-no/such", &st, err, sizeof(err)) < 0);
	CHECK(strstr(err, "/proc/docvault-no/such") != NULL);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	CHECK_EQ(system(cmd), 0);
	return test_done();
}
