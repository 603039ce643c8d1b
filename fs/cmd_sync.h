/*
 * cmd_sync.h - `docvault sync` and the queue lines of `docvault status`
 * (fs/cmd_sync.c), which read the write-back journal from outside the
 * daemon.
 */
#ifndef DOCVAULT_CMD_SYNC_H
#define DOCVAULT_CMD_SYNC_H

struct dv_config;

/*
 * Waits until every journaled commit (or those of the regular files under
 * the PATHs in argv) is done, then flushes PostgreSQL's log. argv holds the
 * arguments after the common options: [--timeout SECONDS] [PATH...].
 * Returns the exit status: 0 done, 1 cannot (no daemon serves the cache,
 * timeout, database unreachable), 2 usage.
 */
int cmd_sync(int argc, char **argv, const char *config_path, const struct dv_config *cfg);

/* Prints the `queue:` (and `failing:`) lines of `docvault status`. */
void cmd_queue_status(const struct dv_config *cfg);

#endif
