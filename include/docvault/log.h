/*
 * log.h - leveled logging to stderr (and syslog when the daemon runs in the
 * background). Thread-safe: each message is written with one write(2).
 * Callers log an outside failure once, where it is translated to errno, with
 * the detail (file, key, server, SQLSTATE, HTTP status); never a secret.
 */
#ifndef DOCVAULT_LOG_H
#define DOCVAULT_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Sets the threshold; messages above it are dropped. Default: INFO. */
void log_set_level(enum log_level level);
/* Parses "error", "warn", "info", "debug"; returns -1 on anything else. */
int log_parse_level(const char *name, enum log_level *out);
/* After this, messages also go to syslog with this ident (daemon mode). */
void log_use_syslog(const char *ident);
/* Also stops writing to stderr (after daemonising, stderr is /dev/null). */
void log_stderr(bool on);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
