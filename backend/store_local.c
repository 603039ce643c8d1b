/*
 * store_local.c - the "local" object store: one file per object under a
 * directory, the key being the relative path. The embedded default, for a
 * single machine or a shared NFS directory.
 *
 * A put writes a temporary file in <root>/.tmp, fsyncs it, renames it into
 * place and fsyncs the directory, so an object is either whole and durable
 * or absent (data before metadata depends on it). When the source is a
 * whole regular file on the same filesystem, the temporary file is a hard
 * link to it (the bytes are written to disk once; the caller promises not
 * to modify a file it has put, see store.h); otherwise copy_file_range
 * moves the bytes (and reflinks where the filesystem can).
 * Keys must not contain "." or ".." components or empty components.
 * Thread-safe: no state but the root's path and an open directory fd.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "docvault/log.h"
#include "docvault/store.h"

struct store_local {
	struct store base;
	char *root;
	int root_fd;
	atomic_uint_fast64_t seq; /* names temporary files */
};

static struct store_local *store_local_of(struct store *st)
{
	return (struct store_local *)st;
}

/* Rejects keys that could escape the root or name a directory. */
static int store_local_check_key(const char *key)
{
	const char *p = key;

	if (!*key || strlen(key) > 1024 || *key == '/')
		return -EINVAL;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		if (len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
		if (len == 4 && memcmp(p, ".tmp", 4) == 0 && p == key)
			return -EINVAL;
		p += len;
		if (*p == '/')
			p++;
	}
	return key[strlen(key) - 1] == '/' ? -EINVAL : 0;
}

/* mkdir -p of the directories above key, relative to the root. */
static int store_local_mkparents(struct store_local *sl, const char *key)
{
	char path[PATH_MAX];
	char *p;

	if (snprintf(path, sizeof(path), "%s", key) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	for (p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdirat(sl->root_fd, path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

static int store_local_fsync_parent(struct store_local *sl, const char *key)
{
	char path[PATH_MAX];
	char *slash;
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s", key);
	slash = strrchr(path, '/');
	if (slash)
		*slash = '\0';
	fd = slash ? openat(sl->root_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
		   : dup(sl->root_fd);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Copies len bytes from in at in_off to out at out_off; falls back to read/write. */
static int store_local_copy(int in, uint64_t in_off, int out, uint64_t out_off, uint64_t len)
{
	loff_t ioff = (loff_t)in_off, ooff = (loff_t)out_off;
	char *buf = NULL;
	int ret = 0;

	while (len > 0) {
		size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n = copy_file_range(in, &ioff, out, &ooff, chunk, 0);

		if (n < 0 &&
		    (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
			break; /* fall back below */
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* source shorter than promised */
		len -= (uint64_t)n;
	}
	if (len == 0)
		return 0;
	buf = malloc(1u << 20);
	if (!buf)
		return -ENOMEM;
	while (len > 0) {
		size_t chunk = len > (1u << 20) ? (1u << 20) : (size_t)len;
		ssize_t n = pread(in, buf, chunk, ioff);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		for (ssize_t done = 0; done < n;) {
			ssize_t w = pwrite(out, buf + done, (size_t)(n - done), ooff);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				ret = -errno;
				goto out;
			}
			done += w;
			ooff += w;
		}
		ioff += n;
		len -= (uint64_t)n;
	}
out:
	free(buf);
	return ret;
}

/*
 * Puts the whole of a regular file by giving it a second name in .tmp
 * (no copy: on one filesystem a blob is written to disk once). Only when
 * the file is exactly `size` bytes; returns -EXDEV (or another error) when
 * the caller must copy instead.
 */
static int store_local_link(struct store_local *sl, int fd, uint64_t size, const char *tmp)
{
	char proc[64];
	struct stat sb;

	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != size)
		return -EINVAL;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, sl->root_fd, tmp, AT_SYMLINK_FOLLOW) < 0)
		return -errno;
	if (fsync(fd) < 0) {
		int ret = -errno;

		unlinkat(sl->root_fd, tmp, 0);
		return ret;
	}
	return 0;
}

static int store_local_put_fd(struct store *st, const char *key, int fd, uint64_t size,
			      const unsigned char *sha256)
{
	struct store_local *sl = store_local_of(st);
	char tmp[64];
	int out, ret;

	(void)sha256;
	ret = store_local_check_key(key);
	if (ret)
		return ret;
	snprintf(tmp, sizeof(tmp), ".tmp/put.%d.%llu", (int)getpid(),
		 (unsigned long long)atomic_fetch_add(&sl->seq, 1));
	if (store_local_link(sl, fd, size, tmp) != 0) {
		/* another filesystem, or part of a file: copy the bytes */
		out = openat(sl->root_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (out < 0) {
			ret = -errno;
			log_error("local store %s: cannot create %s: %s", sl->root, tmp,
				  strerror(errno));
			return ret;
		}
		ret = store_local_copy(fd, 0, out, 0, size);
		if (!ret && fsync(out) < 0)
			ret = -errno;
		if (close(out) < 0 && !ret)
			ret = -errno;
	}
	if (!ret)
		ret = store_local_mkparents(sl, key);
	if (!ret && renameat(sl->root_fd, tmp, sl->root_fd, key) < 0)
		ret = -errno;
	if (!ret)
		ret = store_local_fsync_parent(sl, key);
	if (ret) {
		unlinkat(sl->root_fd, tmp, 0);
		log_error("local store %s: put %s failed: %s", sl->root, key, strerror(-ret));
	}
	return ret;
}

static int store_local_open_key(struct store_local *sl, const char *key, int *fd)
{
	int ret = store_local_check_key(key);

	if (ret)
		return ret;
	*fd = openat(sl->root_fd, key, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		ret = -errno;
		if (ret != -ENOENT)
			log_error("local store %s: open %s failed: %s", sl->root, key,
				  strerror(errno));
		return ret;
	}
	return 0;
}

static int store_local_get_range(struct store *st, const char *key, uint64_t off, size_t len,
				 void *buf, size_t *got)
{
	struct store_local *sl = store_local_of(st);
	size_t done = 0;
	int fd, ret;

	*got = 0;
	ret = store_local_open_key(sl, key, &fd);
	if (ret)
		return ret;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			log_error("local store %s: read %s failed: %s", sl->root, key,
				  strerror(errno));
			break;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	*got = done;
	return ret;
}

static int store_local_get_to_fd(struct store *st, const char *key, uint64_t off, uint64_t len,
				 int out)
{
	struct store_local *sl = store_local_of(st);
	struct stat sb;
	int fd, ret;

	ret = store_local_open_key(sl, key, &fd);
	if (ret)
		return ret;
	if (fstat(fd, &sb) < 0) {
		ret = -errno;
	} else if (off + len > (uint64_t)sb.st_size) {
		ret = -EINVAL;
	} else {
		ret = store_local_copy(fd, off, out, off, len);
		if (ret)
			log_error("local store %s: copy of %s failed: %s", sl->root, key,
				  strerror(-ret));
	}
	close(fd);
	return ret;
}

static int store_local_head(struct store *st, const char *key, uint64_t *size)
{
	struct store_local *sl = store_local_of(st);
	struct stat sb;
	int ret = store_local_check_key(key);

	if (ret)
		return ret;
	if (fstatat(sl->root_fd, key, &sb, 0) < 0)
		return -errno;
	if (!S_ISREG(sb.st_mode))
		return -ENOENT;
	*size = (uint64_t)sb.st_size;
	return 0;
}

static int store_local_del(struct store *st, const char *key)
{
	struct store_local *sl = store_local_of(st);
	int ret = store_local_check_key(key);

	if (ret)
		return ret;
	if (unlinkat(sl->root_fd, key, 0) < 0 && errno != ENOENT) {
		ret = -errno;
		log_error("local store %s: delete %s failed: %s", sl->root, key, strerror(errno));
	}
	return ret;
}

static int store_local_del_batch(struct store *st, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int ret = store_local_del(st, keys[i]);

		if (ret)
			return ret;
	}
	return 0;
}

struct store_local_entry {
	char *key;
	uint64_t size;
};

struct store_local_listing {
	struct store_local_entry *v;
	size_t n, cap;
};

static int store_local_collect(struct store_local *sl, const char *dir,
			       struct store_local_listing *ls)
{
	DIR *d;
	struct dirent *de;
	int fd, ret = 0;

	fd = *dir ? openat(sl->root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : dup(sl->root_fd);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		char key[PATH_MAX];
		struct stat sb;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (!*dir && !strcmp(de->d_name, ".tmp")))
			continue;
		snprintf(key, sizeof(key), "%s%s%s", dir, *dir ? "/" : "", de->d_name);
		if (fstatat(sl->root_fd, key, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			ret = store_local_collect(sl, key, ls);
			if (ret)
				break;
			continue;
		}
		if (!S_ISREG(sb.st_mode))
			continue;
		if (ls->n == ls->cap) {
			size_t cap = ls->cap ? ls->cap * 2 : 64;
			struct store_local_entry *v = realloc(ls->v, cap * sizeof(*v));

			if (!v) {
				ret = -ENOMEM;
				break;
			}
			ls->v = v;
			ls->cap = cap;
		}
		ls->v[ls->n].key = strdup(key);
		if (!ls->v[ls->n].key) {
			ret = -ENOMEM;
			break;
		}
		ls->v[ls->n++].size = (uint64_t)sb.st_size;
	}
	closedir(d);
	return ret;
}

static int store_local_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_local_entry *)a)->key,
		      ((const struct store_local_entry *)b)->key);
}

/*
 * Lists by walking the deepest directory that the prefix names, then
 * filtering. Collects and sorts the keys below it: memory grows with the
 * listing, which only fsck and gc ask for.
 */
static int store_local_list(struct store *st, const char *prefix, store_list_cb cb, void *arg)
{
	struct store_local *sl = store_local_of(st);
	struct store_local_listing ls = {0};
	char dir[PATH_MAX];
	char *slash;
	size_t plen = strlen(prefix);
	int ret;

	snprintf(dir, sizeof(dir), "%s", prefix);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		dir[0] = '\0';
	ret = store_local_collect(sl, dir, &ls);
	if (!ret && ls.n)
		qsort(ls.v, ls.n, sizeof(*ls.v), store_local_cmp);
	for (size_t i = 0; i < ls.n && !ret; i++)
		if (strncmp(ls.v[i].key, prefix, plen) == 0 && cb(arg, ls.v[i].key, ls.v[i].size))
			break;
	for (size_t i = 0; i < ls.n; i++)
		free(ls.v[i].key);
	free(ls.v);
	return ret;
}

static void store_local_close(struct store *st)
{
	struct store_local *sl = store_local_of(st);

	close(sl->root_fd);
	free(sl->root);
	free(sl);
}

static const struct store_ops store_local_ops = {
    .name = "local",
    .put_fd = store_local_put_fd,
    .get_range = store_local_get_range,
    .get_to_fd = store_local_get_to_fd,
    .head = store_local_head,
    .del = store_local_del,
    .del_batch = store_local_del_batch,
    .list = store_local_list,
    .close = store_local_close,
};

int store_local_open(const char *path, struct store **out, char *err, size_t errlen)
{
	struct store_local *sl;
	char tmpdir[PATH_MAX];
	int ret;

	*out = NULL;
	if (!path || !*path) {
		snprintf(err, errlen, "local store: [storage] path is empty");
		return -EINVAL;
	}
	if (mkdir(path, 0750) < 0 && errno != EEXIST) {
		ret = -errno;
		snprintf(err, errlen, "local store %s: cannot create the directory: %s", path,
			 strerror(errno));
		return ret;
	}
	snprintf(tmpdir, sizeof(tmpdir), "%s/.tmp", path);
	if (mkdir(tmpdir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		snprintf(err, errlen, "local store %s: cannot create %s: %s", path, tmpdir,
			 strerror(errno));
		return ret;
	}
	sl = calloc(1, sizeof(*sl));
	if (!sl || !(sl->root = strdup(path))) {
		free(sl);
		snprintf(err, errlen, "local store %s: out of memory", path);
		return -ENOMEM;
	}
	sl->root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sl->root_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "local store %s: cannot open: %s", path, strerror(errno));
		free(sl->root);
		free(sl);
		return ret;
	}
	sl->base.ops = &store_local_ops;
	*out = &sl->base;
	return 0;
}
