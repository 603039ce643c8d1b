/*
 * cmd_fsck.c - `docvault fsck`: checks a vault's consistency, read-only and
 * safe while it is mounted. The PostgreSQL checks are meta_fsck.h's; with
 * --store the blob rows (in hash order, in pages) are merged with the
 * store's listing (in key order, which is hash order) to find a row whose
 * object is missing or has another size: content that can no longer be
 * read. Objects no row names are counted, not reported: uploads whose
 * commit is still to come look the same (`docvault gc --sweep` removes
 * them while the vault is unmounted). --repair-counters recomputes the
 * totals `docvault status` shows, the one repair that is safe online.
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
#include "docvault/meta_fsck.h"
#include "docvault/store.h"

#define FSCK_PAGE 1000 /* blob rows per query */

const char cmd_fsck_usage[] =
    "usage: docvault fsck -c FILE [--store] [--repair-counters]\n"
    "\n"
    "Checks the vault, read-only; the vault may stay mounted. In PostgreSQL: each\n"
    "content's reference count is the number of files that have it (gc relies on\n"
    "it), each file's link count is its number of names and each folder's 2 plus\n"
    "its subfolders, each folder has one name, and the totals `docvault status`\n"
    "shows are what the tables hold. Each problem is one line; inodes are the\n"
    "st_ino the mount shows (`find MOUNTPOINT -inum N` names the file).\n"
    "\n"
    "  -c, --config FILE      the configuration (INI)\n"
    "  -s, --store            also list the store: every content the database names\n"
    "                         must be there with its size\n"
    "  -r, --repair-counters  set the totals to what the tables hold (safe while\n"
    "                         mounted)\n"
    "\n"
    "Exits 0 when nothing is wrong, 1 when a problem was found or a check could not\n"
    "run, 2 on bad usage.\n";

struct fsck_ctx {
	uint64_t problems;
};

static void fsck_report(void *arg, const char *problem)
{
	struct fsck_ctx *f = arg;

	printf("%s\n", problem);
	f->problems++;
}

/* --- the store merge ------------------------------------------------------ */

struct fsck_row {
	unsigned char keyed[16];
	uint64_t size, ino;
};

struct fsck_store {
	struct meta *m;
	struct fsck_ctx *f;
	struct fsck_row rows[FSCK_PAGE];
	int n, next;		/* rows fetched, the next to compare */
	bool done;		/* no more rows in the database */
	unsigned char last[16]; /* the last row fetched */
	bool have_last;
	uint64_t rows_seen, objects, extra, missing;
	int err;
};

static void fsck_row_cb(void *arg, const unsigned char *keyed, uint64_t size, uint64_t ino)
{
	struct fsck_store *s = arg;
	struct fsck_row *r = &s->rows[s->n++];

	memcpy(r->keyed, keyed, 16);
	r->size = size;
	r->ino = ino;
	memcpy(s->last, keyed, 16);
	s->have_last = true;
}

/* The next row to compare, fetching a page when needed; NULL at the end. */
static struct fsck_row *fsck_head(struct fsck_store *s)
{
	int n;

	if (s->next < s->n)
		return &s->rows[s->next];
	if (s->done || s->err)
		return NULL;
	s->n = s->next = 0;
	n = meta_fsck_blobs(s->m, s->have_last ? s->last : NULL, FSCK_PAGE, fsck_row_cb, s);
	if (n < 0) {
		s->err = n;
		return NULL;
	}
	if (n < FSCK_PAGE)
		s->done = true;
	return s->n ? &s->rows[0] : NULL;
}

static void fsck_missing(struct fsck_store *s, const struct fsck_row *r, const char *why,
			 uint64_t size)
{
	char hex[CHECKSUM_HEX_SIZE], line[300];

	checksum_hex16(r->keyed, hex);
	if (size == UINT64_MAX)
		snprintf(line, sizeof(line), "content %s (%llu bytes, inode %llu): %s", hex,
			 (unsigned long long)r->size, (unsigned long long)r->ino, why);
	else
		snprintf(line, sizeof(line), "content %s (%llu bytes, inode %llu): %s (%llu bytes)",
			 hex, (unsigned long long)r->size, (unsigned long long)r->ino, why,
			 (unsigned long long)size);
	fsck_report(s->f, line);
	s->missing++;
}

static int fsck_object_cb(void *arg, const char *key, uint64_t size)
{
	struct fsck_store *s = arg;
	const char *hex = strrchr(key, '/');
	unsigned char keyed[16];
	char again[STORE_BLOB_KEY_SIZE];
	struct fsck_row *r;

	if (!hex || strlen(hex + 1) != CHECKSUM_HEX_SIZE - 1 ||
	    checksum_parse_hex16(hex + 1, keyed) != 0)
		return 0;
	store_blob_key(keyed, again);
	if (strcmp(again, key) != 0)
		return 0; /* not a name docvault makes */
	s->objects++;
	while ((r = fsck_head(s)) && memcmp(r->keyed, keyed, 16) < 0) {
		fsck_missing(s, r, "missing from the store", UINT64_MAX);
		s->next++;
		s->rows_seen++;
	}
	if (s->err)
		return 1;
	if (r && memcmp(r->keyed, keyed, 16) == 0) {
		if (r->size != size)
			fsck_missing(s, r, "the stored object has another size", size);
		s->next++;
		s->rows_seen++;
	} else {
		s->extra++;
	}
	return 0;
}

static int fsck_store(struct meta *m, struct store *st, struct fsck_ctx *f)
{
	struct fsck_store *s = calloc(1, sizeof(*s));
	struct fsck_row *r;
	int ret;

	if (!s) {
		fprintf(stderr, "docvault fsck: out of memory\n");
		return -ENOMEM;
	}
	s->m = m;
	s->f = f;
	ret = store_list(st, "blobs/", fsck_object_cb, s);
	while (!ret && (r = fsck_head(s))) {
		fsck_missing(s, r, "missing from the store", UINT64_MAX);
		s->next++;
		s->rows_seen++;
	}
	if (!ret && s->err)
		ret = s->err;
	if (ret)
		fprintf(stderr, "docvault fsck: the store check stopped: %s\n", strerror(-ret));
	else
		printf("store: %llu contents in the database, %llu objects; %llu missing or "
		       "damaged, %llu not named by the database\n",
		       (unsigned long long)s->rows_seen, (unsigned long long)s->objects,
		       (unsigned long long)s->missing, (unsigned long long)s->extra);
	free(s);
	return ret;
}

/* --- the command ---------------------------------------------------------- */

int cmd_fsck(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"store", no_argument, NULL, 's'},
	    {"repair-counters", no_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const struct {
		const char *name;
		int (*run)(struct meta *m, meta_fsck_report report, void *arg);
	} checks[] = {
	    {"reference counts", meta_fsck_refcounts},
	    {"link counts and names", meta_fsck_links},
	    {"totals", meta_fsck_counters},
	};
	struct dv_config cfg = {0};
	struct fsck_ctx f = {0};
	struct meta *m = NULL;
	struct store *st = NULL;
	const char *config = NULL;
	bool with_store = false, repair = false, failed = false;
	char err[1024];
	int opt, ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:srh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 's':
			with_store = true;
			break;
		case 'r':
			repair = true;
			break;
		case 'h':
			fputs(cmd_fsck_usage, stdout);
			return 0;
		default:
			fputs(cmd_fsck_usage, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fputs(cmd_fsck_usage, stderr);
		return 2;
	}
	if (cmd_load_config("fsck", config, &cfg))
		return 1;
	if (cmd_open_meta("fsck", &cfg, 1, &m)) {
		failed = true;
		goto out;
	}
	if (with_store && store_open(&cfg, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "docvault fsck: %s\n", err);
		failed = true;
		goto out;
	}
	if (repair) {
		ret = meta_fsck_fix_counters(m);
		if (ret) {
			fprintf(stderr, "docvault fsck: cannot repair the totals: %s\n",
				strerror(-ret));
			failed = true;
			goto out;
		}
		printf("totals set to what the tables hold\n");
	}
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		ret = checks[i].run(m, fsck_report, &f);
		if (ret < 0) {
			fprintf(stderr, "docvault fsck: the check of %s could not run: %s\n",
				checks[i].name, strerror(-ret));
			failed = true;
		}
	}
	if (st && fsck_store(m, st, &f) != 0)
		failed = true;
	if (f.problems)
		printf("%llu problem(s) found\n", (unsigned long long)f.problems);
	else if (!failed)
		printf("no problems found\n");
out:
	store_close(st);
	meta_close(m);
	config_free(&cfg);
	return failed || f.problems ? 1 : 0;
}
