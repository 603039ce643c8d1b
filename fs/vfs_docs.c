/*
 * vfs_docs.c - the vault's own extended attributes: what docvault knows
 * about a document, read and written with getfattr/setfattr
 * (docs/user-guide.md lists them).
 *
 * Read-only, computed from PostgreSQL (meta_docs.h): user.docvault.status,
 * checksum ("xxh128:" and the hex of the plain XXH3-128, as `xxhsum -H2`
 * prints it), mime, summary, summary_source, autotags, uploaded (ISO 8601,
 * UTC), error (when failed) and id. Read-write: user.docvault.tags (user
 * tags, comma-separated; "+t"/"-t" edit), also shown as user.xdg.tags for
 * desktop file managers, and user.docvault.reprocess (write-only: queues
 * the document again). Writes of the computed names, and of names under
 * user.docvault. this version does not know, are accepted and ignored, so
 * `rsync -aX` into a vault, from another vault or a backup of one, ends
 * with exit 0; the values are recomputed from the content.
 *
 * A file whose new content this mount has not committed yet reads as
 * status "uploading", without a checksum (the committed one would be the
 * old content's).
 *
 * Who may set tags is the kernel's business (default_permissions: writing a
 * user.* attribute of a file needs write permission on it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "docvault/checksum.h"
#include "docvault/meta_docs.h"
#include "vfs_priv.h"

#define VFS_DOCS_PREFIX	      "user.docvault."
#define VFS_DOCS_EMPTY_XXH128 "99aa06d3014798d86001c324468d497f"

enum vfs_docs_attr {
	VD_STATUS,
	VD_CHECKSUM,
	VD_MIME,
	VD_SUMMARY,
	VD_SUMMARY_SOURCE,
	VD_AUTOTAGS,
	VD_UPLOADED,
	VD_ERROR,
	VD_ID,
	VD_TAGS,
	VD_XDG_TAGS,
	VD_REPROCESS,
	VD_UNKNOWN, /* under user.docvault. but not ours: writes ignored */
	VD_COUNT
};

static const char *const vfs_docs_names[VD_COUNT] = {
    [VD_STATUS] = VFS_DOCS_PREFIX "status",
    [VD_CHECKSUM] = VFS_DOCS_PREFIX "checksum",
    [VD_MIME] = VFS_DOCS_PREFIX "mime",
    [VD_SUMMARY] = VFS_DOCS_PREFIX "summary",
    [VD_SUMMARY_SOURCE] = VFS_DOCS_PREFIX "summary_source",
    [VD_AUTOTAGS] = VFS_DOCS_PREFIX "autotags",
    [VD_UPLOADED] = VFS_DOCS_PREFIX "uploaded",
    [VD_ERROR] = VFS_DOCS_PREFIX "error",
    [VD_ID] = VFS_DOCS_PREFIX "id",
    [VD_TAGS] = VFS_DOCS_PREFIX "tags",
    [VD_XDG_TAGS] = "user.xdg.tags",
    [VD_REPROCESS] = VFS_DOCS_PREFIX "reprocess",
};

static int vfs_docs_which(const char *name)
{
	for (int i = 0; i < VD_UNKNOWN; i++)
		if (!strcmp(name, vfs_docs_names[i]))
			return i;
	if (!strncmp(name, VFS_DOCS_PREFIX, strlen(VFS_DOCS_PREFIX)))
		return VD_UNKNOWN;
	return -1;
}

/*
 * The value of attribute `which` for the document d, into *out (static
 * storage in tmp or a field of d); false when it has none.
 */
static bool vfs_docs_value(struct vfs *v, const struct meta_doc *d, int which, bool pending,
			   char *tmp, size_t tmplen, const char **out)
{
	*out = NULL;
	switch (which) {
	case VD_STATUS:
		*out = meta_doc_status_name(pending ? META_DOC_UPLOADING : d->status);
		break;
	case VD_CHECKSUM: {
		char hex[CHECKSUM_HEX_SIZE];

		if (pending)
			return false;
		/* an empty file has no blob: its checksum is XXH3-128 of nothing */
		if (d->has_checksum)
			checksum_hex16(d->checksum, hex);
		else
			snprintf(hex, sizeof(hex), "%s", VFS_DOCS_EMPTY_XXH128);
		snprintf(tmp, tmplen, "xxh128:%s", hex);
		*out = tmp;
		break;
	}
	case VD_MIME:
		*out = d->mime;
		break;
	case VD_SUMMARY:
		*out = d->summary;
		break;
	case VD_SUMMARY_SOURCE:
		*out = d->summary_source;
		break;
	case VD_AUTOTAGS:
		*out = d->autotags;
		break;
	case VD_UPLOADED: {
		time_t t = (time_t)(d->uploaded / 1000000000);
		struct tm tm;

		if (!d->uploaded || !gmtime_r(&t, &tm))
			return false;
		strftime(tmp, tmplen, "%Y-%m-%dT%H:%M:%SZ", &tm);
		*out = tmp;
		break;
	}
	case VD_ERROR:
		*out = d->status == META_DOC_FAILED ? d->error : NULL;
		break;
	case VD_ID:
		snprintf(tmp, tmplen, "%" PRIu64, d->ino);
		*out = tmp;
		break;
	case VD_TAGS:
	case VD_XDG_TAGS:
		*out = d->tags;
		break;
	default:
		return false;
	}
	(void)v;
	return *out && **out;
}

ssize_t vfs_docs_getxattr(struct vfs *v, uint64_t ino, const char *name, char *buf, size_t size)
{
	int which = vfs_docs_which(name);
	struct meta_doc d;
	const char *val;
	char tmp[64];
	bool pending;
	size_t len;
	int ret;

	if (which < 0)
		return -ENOTSUP;
	if (which == VD_UNKNOWN || which == VD_REPROCESS)
		return -ENODATA;
	/*
	 * Pending is asked before the row is read: asked after, a commit that
	 * landed between the two would leave a row read before it (a file never
	 * committed, shown as an empty completed one) with nothing pending.
	 */
	pending = vfs_is_pending(v, ino);
	ret = meta_docs_get(vfs_meta(v), ino, &d);
	if (ret)
		return ret;
	if (!d.is_file || !vfs_docs_value(v, &d, which, pending, tmp, sizeof(tmp), &val)) {
		meta_doc_free(&d);
		return -ENODATA;
	}
	len = strlen(val);
	if (size > 0 && len > size)
		ret = -ERANGE;
	else if (size > 0)
		memcpy(buf, val, len);
	meta_doc_free(&d);
	return ret ? ret : (ssize_t)len;
}

ssize_t vfs_docs_listxattr(struct vfs *v, uint64_t ino, char *buf, size_t size)
{
	struct meta_doc d;
	bool pending = vfs_is_pending(v, ino); /* before the row: see vfs_docs_getxattr */
	size_t used = 0;
	char tmp[64];
	int ret = meta_docs_get(vfs_meta(v), ino, &d);

	if (ret)
		return ret;
	if (!d.is_file) {
		meta_doc_free(&d);
		return 0;
	}
	for (int i = 0; i < VD_REPROCESS; i++) {
		const char *val;
		size_t len = strlen(vfs_docs_names[i]) + 1;

		if (!vfs_docs_value(v, &d, i, pending, tmp, sizeof(tmp), &val))
			continue;
		if (size > 0) {
			if (used + len > size) {
				meta_doc_free(&d);
				return -ERANGE;
			}
			memcpy(buf + used, vfs_docs_names[i], len);
		}
		used += len;
	}
	meta_doc_free(&d);
	return (ssize_t)used;
}

int vfs_docs_setxattr(struct vfs *v, uint64_t ino, const char *name, const char *value, size_t size)
{
	int which = vfs_docs_which(name);

	if (which < 0)
		return -ENOTSUP;
	switch (which) {
	case VD_TAGS:
	case VD_XDG_TAGS:
		return meta_docs_tags_write(vfs_meta(v), ino, value, size, vfs_clock_ns());
	case VD_REPROCESS:
		return meta_docs_requeue(vfs_meta(v), ino);
	default:
		return 0; /* computed from the content: a restored copy is ignored */
	}
}

int vfs_docs_removexattr(struct vfs *v, uint64_t ino, const char *name)
{
	int which = vfs_docs_which(name);

	if (which < 0)
		return -ENOTSUP;
	if (which == VD_TAGS || which == VD_XDG_TAGS)
		return meta_docs_tags_write(vfs_meta(v), ino, "", 0, vfs_clock_ns());
	return 0;
}
