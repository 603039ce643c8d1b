/*
 * cmds.h - the subcommands outside main.c: `docvault worker`, a processing
 * worker process that may run on any machine that reaches the vault's
 * PostgreSQL and store, and `docvault duplicates`, the groups of documents
 * that share content (fs/cmd_worker.c); `docvault gc`, which deletes the
 * contents no document refers to (fs/cmd_gc.c); `docvault fsck`, which
 * checks a vault's consistency (fs/cmd_fsck.c). Each takes the
 * subcommand's argv (argv[0] is the subcommand's name), prints what went
 * wrong in one line naming the file, server or path, and returns the exit
 * status (0 ok, 1 failure, 2 usage).
 */
#ifndef DOCVAULT_CMDS_H
#define DOCVAULT_CMDS_H

#include <stdio.h>

struct dv_config;
struct meta;

extern const char cmd_worker_usage[];
extern const char cmd_duplicates_usage[];
extern const char cmd_gc_usage[];
extern const char cmd_fsck_usage[];

/*
 * Loads the configuration at path (NULL: says none was given) and applies
 * its log level; errors go to stderr as "docvault CMD: ..." ("docvault:"
 * when cmd is NULL). Returns 0 or a negative errno.
 */
int cmd_load_config(const char *cmd, const char *path, struct dv_config *cfg);

/*
 * Opens the vault's database (pool connections) and checks its schema is
 * this build's and loads the secret; a failure is printed as "docvault
 * CMD: ...". Returns 0 or a negative errno; *m must be meta_close()d
 * either way.
 */
int cmd_open_meta(const char *cmd, const struct dv_config *cfg, int pool, struct meta **m);

int cmd_worker(int argc, char **argv);
int cmd_duplicates(int argc, char **argv);
/* `docvault gc` (fs/cmd_gc.c): deletes contents no document refers to. */
int cmd_gc(int argc, char **argv);
/* `docvault fsck` (fs/cmd_fsck.c): checks a vault's consistency. */
int cmd_fsck(int argc, char **argv);

/*
 * Prints the documents by processing status (ready, waiting to retry,
 * processing, completed, failed) and the age of the oldest queued job,
 * for `docvault status`. Returns 0 or a negative errno (already logged).
 */
int cmd_print_doc_counts(struct meta *m, FILE *out);

#endif
