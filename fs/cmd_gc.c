/*
 * cmd_gc.c - `docvault gc`: deletes from the store the blobs no file
 * refers to any more (removed files, replaced versions) and their rows,
 * and with --sweep the stored objects no row names at all. It runs offline:
 * meta_gc_open() takes the vault's gc lock and refuses while a mount is
 * alive (meta_gc.h says why). Rows are deleted, in committed batches, before
 * their objects; a failure between the two leaves objects that a later
 * `gc --sweep` removes, never a row without its object.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "docvault/checksum.h"
#include "docvault/config.h"
#include "docvault/meta.h"
#include "docvault/meta_gc.h"
#include "docvault/store.h"
#include "docvault/vfs.h"

#define GC_BATCH 1000 /* rows per transaction, keys per batch delete */

const char cmd_gc_usage[] =
    "usage: docvault gc -c FILE [--dry-run] [--sweep]\n"
    "\n"
    "Deletes from the store the contents no document refers to any more (files\n"
    "removed, versions replaced; a content shared by several documents stays while\n"
    "one of them has it) and forgets them in the database. It runs only while the\n"
    "vault is not mounted anywhere, and no mount starts until it ends: a content\n"
    "about to be reused by a new file must not be deleted under it. Mounts dead for\n"
    "over a minute are cleaned up first.\n"
    "\n"
    "  -c, --config FILE  the configuration (INI)\n"
    "  -n, --dry-run      say what would be deleted, delete nothing\n"
    "  -s, --sweep        also list the store and delete the objects under blobs/\n"
    "                     that the database does not name (left by an interrupted\n"
    "                     gc, or by an upload whose commit never came)\n";

struct gc_sweep {
	struct meta_gc *g;
	struct store *st;
	bool dry_run;
	unsigned char keyed[GC_BATCH][16];
	size_t n;
	uint64_t sizes[GC_BATCH];
	uint64_t found, bytes, listed;
	int err;
};

/* Deletes (or counts) the objects of the batch that no row names. */
static int gc_sweep_flush(struct gc_sweep *s)
{
	bool unknown[GC_BATCH];
	char keys[GC_BATCH][STORE_BLOB_KEY_SIZE];
	const char *del[GC_BATCH];
	size_t nd = 0;
	int ret;

	ret = meta_gc_unknown(s->g, (const unsigned char(*)[16])s->keyed, s->n, unknown);
	if (ret)
		return ret;
	for (size_t i = 0; i < s->n; i++) {
		if (!unknown[i])
			continue;
		store_blob_key(s->keyed[i], keys[nd]);
		del[nd] = keys[nd];
		nd++;
		s->found++;
		s->bytes += s->sizes[i];
	}
	s->n = 0;
	if (nd == 0 || s->dry_run)
		return 0;
	return store_del_batch(s->st, del, nd);
}

/* store_list callback: a key of the form store_blob_key() gives joins the batch. */
static int gc_sweep_one(void *arg, const char *key, uint64_t size)
{
	struct gc_sweep *s = arg;
	char again[STORE_BLOB_KEY_SIZE];
	const char *hex = strrchr(key, '/');

	s->listed++;
	/* only what docvault itself names: anything else in the store is not ours */
	if (!hex || strlen(hex + 1) != CHECKSUM_HEX_SIZE - 1 ||
	    checksum_parse_hex16(hex + 1, s->keyed[s->n]) != 0)
		return 0;
	store_blob_key(s->keyed[s->n], again);
	if (strcmp(again, key) != 0)
		return 0;
	s->sizes[s->n++] = size;
	if (s->n == GC_BATCH && (s->err = gc_sweep_flush(s)) != 0)
		return 1;
	return 0;
}

static int gc_sweep(struct meta_gc *g, struct store *st, bool dry_run)
{
	struct gc_sweep *s = calloc(1, sizeof(*s));
	int ret;

	if (!s) {
		fprintf(stderr, "docvault gc: out of memory\n");
		return -ENOMEM;
	}
	s->g = g;
	s->st = st;
	s->dry_run = dry_run;
	ret = store_list(st, "blobs/", gc_sweep_one, s);
	if (!ret)
		ret = s->err;
	if (!ret && s->n)
		ret = gc_sweep_flush(s);
	if (ret)
		fprintf(stderr,
			"docvault gc: sweeping the %s store stopped after %llu objects: %s\n",
			st->ops->name, (unsigned long long)s->listed, strerror(-ret));
	printf("%s %llu stored objects no row names (%llu bytes), of %llu listed\n",
	       dry_run ? "would sweep" : "swept", (unsigned long long)s->found,
	       (unsigned long long)s->bytes, (unsigned long long)s->listed);
	free(s);
	return ret;
}

/* Deletes the unreferenced blobs, rows first, a committed batch at a time. */
static int gc_collect(struct meta_gc *g, struct store *st)
{
	static unsigned char keyed[GC_BATCH][16];
	static char keys[GC_BATCH][STORE_BLOB_KEY_SIZE];
	const char *del[GC_BATCH];
	uint64_t sizes[GC_BATCH], total = 0, bytes = 0;
	size_t n;
	int ret;

	for (;;) {
		uint64_t batch_bytes = 0;

		ret = meta_gc_take(g, GC_BATCH, keyed, sizes, &n);
		if (ret < 0) {
			fprintf(stderr, "docvault gc: cannot delete blob rows: %s\n",
				strerror(-ret));
			break;
		}
		if (ret == 0)
			break; /* no row left (n < ret only for a malformed row, logged) */
		for (size_t i = 0; i < n; i++) {
			store_blob_key(keyed[i], keys[i]);
			del[i] = keys[i];
			batch_bytes += sizes[i];
		}
		ret = n ? store_del_batch(st, del, n) : 0;
		if (ret) {
			fprintf(stderr,
				"docvault gc: %zu blobs were forgotten but not deleted from the %s "
				"store (%s); `docvault gc --sweep` deletes them later\n",
				n, st->ops->name, strerror(-ret));
			break;
		}
		total += n;
		bytes += batch_bytes;
	}
	printf("deleted %llu unreferenced blobs (%llu bytes) from the %s store\n",
	       (unsigned long long)total, (unsigned long long)bytes, st->ops->name);
	return ret;
}

int cmd_gc(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"sweep", no_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct dv_config cfg = {0};
	struct meta *m = NULL;
	struct meta_gc *g = NULL;
	struct store *st = NULL;
	const char *config = NULL;
	bool dry_run = false, sweep = false;
	char err[1024];
	int opt, ret, rc = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:nsh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'n':
			dry_run = true;
			break;
		case 's':
			sweep = true;
			break;
		case 'h':
			fputs(cmd_gc_usage, stdout);
			return 0;
		default:
			fputs(cmd_gc_usage, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fputs(cmd_gc_usage, stderr);
		return 2;
	}
	if (cmd_load_config("gc", config, &cfg))
		return 1;
	/* the schema must be this build's before anything is deleted */
	ret = cmd_open_meta("gc", &cfg, 1, &m);
	meta_close(m);
	if (ret)
		goto out;
	ret = meta_gc_open(cfg.database.conninfo, VFS_SESSION_TIMEOUT_S, &g, err, sizeof(err));
	if (!ret)
		ret = store_open(&cfg, &st, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "docvault gc: %s\n", err);
		goto out;
	}
	if (dry_run) {
		uint64_t n = 0, bytes = 0;

		ret = meta_gc_count(g, &n, &bytes);
		if (ret) {
			fprintf(stderr, "docvault gc: cannot count unreferenced blobs: %s\n",
				strerror(-ret));
			goto out;
		}
		printf("would delete %llu unreferenced blobs (%llu bytes) from the %s store\n",
		       (unsigned long long)n, (unsigned long long)bytes, st->ops->name);
	} else if ((ret = gc_collect(g, st)) != 0) {
		goto out;
	}
	if (sweep && gc_sweep(g, st, dry_run) != 0)
		goto out;
	rc = 0;
out:
	store_close(st);
	meta_gc_close(g);
	config_free(&cfg);
	return rc;
}
