/*
 * log.c - leveled logging to stderr and, in daemon mode, syslog.
 *
 * Model: a message is formatted into one stack buffer as
 *   2026-11-28T19:40:48.123Z docvault[1234]: ERROR: message
 * (UTC, milliseconds) and written with a single write(2), so lines from
 * different threads and processes never interleave. Messages longer than
 * LOG_MAX_LINE are cut and end in "...". Control characters in the message
 * (a newline in a server's error text) become spaces: one message, one line.
 *
 * Threading: the settings are atomics, set at start-up and read by every
 * call; log_msg() is safe from any thread and keeps errno unchanged, so a
 * caller may log and then return -errno.
 *
 * The settings are the one deliberate process-wide state in docvault: the
 * log goes to one stderr and one syslog per process.
 *
 * Not: a structured (JSON) logger, a log file writer or a rotator.
 */
#include "docvault/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_MAX_LINE  4096
#define LOG_IDENT_MAX 64

static atomic_int log_threshold = LOG_LVL_INFO;
static atomic_bool log_to_stderr = true;
static atomic_bool log_to_syslog = false;
/* openlog() keeps the pointer, so the ident lives here; written once. */
static char log_ident[LOG_IDENT_MAX] = "docvault";

static const char *const log_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
static const char *const log_parse_names[] = {"error", "warn", "info", "debug"};
static const int log_syslog_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

void log_set_level(enum log_level level)
{
	if (level < LOG_LVL_ERROR)
		level = LOG_LVL_ERROR;
	if (level > LOG_LVL_DEBUG)
		level = LOG_LVL_DEBUG;
	atomic_store(&log_threshold, (int)level);
}

int log_parse_level(const char *name, enum log_level *out)
{
	if (!name)
		return -1;
	for (int i = LOG_LVL_ERROR; i <= LOG_LVL_DEBUG; i++) {
		if (strcasecmp(name, log_parse_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_use_syslog(const char *ident)
{
	if (ident && *ident)
		snprintf(log_ident, sizeof(log_ident), "%s", ident);
	openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store(&log_to_syslog, true);
}

void log_stderr(bool on)
{
	atomic_store(&log_to_stderr, on);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	int saved_errno = errno;
	char buf[LOG_MAX_LINE];
	struct timespec ts;
	struct tm tm;
	size_t head, len;
	va_list ap;
	int n;

	if (level < LOG_LVL_ERROR || level > LOG_LVL_DEBUG ||
	    (int)level > atomic_load(&log_threshold))
		return;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	head = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(buf + head, sizeof(buf) - head,
		     ".%03ldZ docvault[%ld]: %s: ", ts.tv_nsec / 1000000, (long)getpid(),
		     log_names[level]);
	head += (size_t)n;

	va_start(ap, fmt);
	errno = saved_errno; /* so that %m names the caller's error */
	n = vsnprintf(buf + head, sizeof(buf) - head - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	len = head + (size_t)n;
	if (len > sizeof(buf) - 2) { /* cut: keep room for the newline */
		len = sizeof(buf) - 2;
		memcpy(buf + len - 3, "...", 3);
	}
	for (size_t i = head; i < len; i++) {
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = ' ';
	}

	if (atomic_load(&log_to_syslog)) {
		buf[len] = '\0';
		syslog(log_syslog_prio[level], "%s", buf + head);
	}
	if (atomic_load(&log_to_stderr)) {
		buf[len++] = '\n';
		while (write(STDERR_FILENO, buf, len) < 0 && errno == EINTR)
			;
	}
	errno = saved_errno;
}
