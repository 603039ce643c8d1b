/*
 * config.c - the INI configuration file, read with inih.
 *
 * Model: config_load() fills struct dv_config with the defaults, then walks
 * the file once. A table (config_keys[]) names every key: its section, its
 * type, where it lives in the struct and its valid range; one generic setter
 * per type parses and checks a value, so every error has the same shape:
 *   FILE:LINE: [section] key: "value" is not a size
 * The first error wins and stops the walk. After the walk come the checks
 * that need the whole file (the secret-permission rule, keys required by
 * the store type) and the environment (AWS_* secrets the file lacks).
 *
 * inih is fed by our own line reader (ini_parse_stream) rather than
 * ini_parse(), so the grammar does not depend on how the library was built
 * (Debian's inih 55 has inline comments and Python-style continuation lines
 * on, and a 200-byte line buffer). The reader:
 *   - counts lines, so errors name the line even for values inih accepts;
 *   - drops a UTF-8 BOM, CR/LF, leading and trailing blanks, so an indented
 *     key is a key and never a continuation of the previous value;
 *   - cuts inline comments: ';' or '#' after a blank ("dbname=x  ; note");
 *     a ';' or '#' inside a value without a blank before it is kept;
 *   - checks section names (also of empty sections) and "key = value"
 *     syntax, and refuses a line longer than inih's buffer instead of
 *     letting inih split it silently.
 * Values are never echoed for secret keys, and the secret keys have no
 * value checks, so an error message cannot carry a secret.
 *
 * Threading: none; the loaded struct is read-only afterwards.
 * Not: a writer of config files, or a reloader.
 */
#include "docvault/config.h"

#include "docvault/log.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define CONFIG_MIB (1024ULL * 1024)
#define CONFIG_GIB (1024ULL * 1024 * 1024)

enum config_type {
	CONFIG_T_STR,	      /* any string; empty means unset (NULL) */
	CONFIG_T_STR_ANY,     /* any string, empty kept as "" */
	CONFIG_T_SECRET,      /* like CONFIG_T_STR, never echoed */
	CONFIG_T_CONNINFO,    /* libpq conninfo: kept as given, may hold a password */
	CONFIG_T_ABSPATH,     /* an absolute path, required */
	CONFIG_T_ABSPATH_OPT, /* an absolute path or empty (unset) */
	CONFIG_T_URL,	      /* http:// or https:// URL or empty (unset) */
	CONFIG_T_INT,
	CONFIG_T_BOOL,
	CONFIG_T_SIZE,
	CONFIG_T_RATE,	     /* a size per second, "/s" allowed */
	CONFIG_T_SECONDS,    /* a double */
	CONFIG_T_STORE,	     /* local | s3 */
	CONFIG_T_LEVEL,	     /* error | warn | info | debug */
	CONFIG_T_SUMMARIZER, /* builtin | openai */
};

struct config_key {
	const char *section;
	const char *name;
	enum config_type type;
	size_t offset;	 /* into struct dv_config */
	double min, max; /* inclusive for ints, sizes and seconds */
	bool min_exclusive;
	const char *range; /* how the range reads in an error */
};

#define CK(sec, key, field, t)                                                                     \
	{                                                                                          \
		sec, key, t, offsetof(struct dv_config, field), 0, 0, false, NULL                  \
	}
#define CKR(sec, key, field, t, lo, hi, excl, txt)                                                 \
	{                                                                                          \
		sec, key, t, offsetof(struct dv_config, field), lo, hi, excl, txt                  \
	}

static const struct config_key config_keys[] = {
    CK("database", "conninfo", database.conninfo, CONFIG_T_CONNINFO),
    CKR("database", "pool_size", database.pool_size, CONFIG_T_INT, 1, 256, false, "1..256"),

    CK("storage", "type", storage.type, CONFIG_T_STORE),
    CK("storage", "path", storage.path, CONFIG_T_ABSPATH),
    CK("storage", "endpoint", storage.endpoint, CONFIG_T_URL),
    CK("storage", "region", storage.region, CONFIG_T_STR),
    CK("storage", "bucket", storage.bucket, CONFIG_T_STR),
    CK("storage", "prefix", storage.prefix, CONFIG_T_STR_ANY),
    CK("storage", "path_style", storage.path_style, CONFIG_T_BOOL),
    CK("storage", "access_key", storage.access_key, CONFIG_T_SECRET),
    CK("storage", "secret_key", storage.secret_key, CONFIG_T_SECRET),
    CK("storage", "session_token", storage.session_token, CONFIG_T_SECRET),
    CK("storage", "tls_verify", storage.tls_verify, CONFIG_T_BOOL),
    CK("storage", "ca_file", storage.ca_file, CONFIG_T_ABSPATH_OPT),
    CKR("storage", "part_size", storage.part_size, CONFIG_T_SIZE, 5 * CONFIG_MIB, 5 * CONFIG_GIB,
	false, "5M..5G"),
    CKR("storage", "multipart_threshold", storage.multipart_threshold, CONFIG_T_SIZE,
	5 * CONFIG_MIB, 5 * CONFIG_GIB, false, "5M..5G"),
    CKR("storage", "max_connections", storage.max_connections, CONFIG_T_INT, 1, 1024, false,
	"1..1024"),
    CKR("storage", "max_retries", storage.max_retries, CONFIG_T_INT, 0, 100, false, "0..100"),
    CKR("storage", "connect_timeout", storage.connect_timeout, CONFIG_T_SECONDS, 0, 3600, true,
	"seconds, > 0 and <= 3600"),
    CKR("storage", "request_timeout", storage.request_timeout, CONFIG_T_SECONDS, 0, 86400, true,
	"seconds, > 0 and <= 86400"),
    CK("storage", "upload_limit", storage.upload_limit, CONFIG_T_RATE),
    CK("storage", "download_limit", storage.download_limit, CONFIG_T_RATE),

    CK("cache", "dir", cache.dir, CONFIG_T_ABSPATH),
    CKR("cache", "size", cache.size, CONFIG_T_SIZE, 1, (double)UINT64_MAX, false, "> 0"),
    CK("cache", "reserve", cache.reserve, CONFIG_T_SIZE),
    CKR("cache", "upload_workers", cache.upload_workers, CONFIG_T_INT, 0, 256, false,
	"0..256, 0 = auto"),
    CK("cache", "writeback", cache.writeback, CONFIG_T_BOOL),
    CKR("cache", "unmount_wait", cache.unmount_wait, CONFIG_T_SECONDS, 0, 86400, false,
	"seconds, 0..86400"),
    CKR("cache", "full_wait", cache.full_wait, CONFIG_T_SECONDS, 0, 86400, false,
	"seconds, 0..86400"),

    CKR("processing", "workers", processing.workers, CONFIG_T_INT, 0, 256, false, "0..256"),
    CKR("processing", "max_attempts", processing.max_attempts, CONFIG_T_INT, 1, 100, false,
	"1..100"),
    CK("processing", "summarizer", processing.summarizer_openai, CONFIG_T_SUMMARIZER),
    CK("processing", "endpoint", processing.endpoint, CONFIG_T_URL),
    CK("processing", "model", processing.model, CONFIG_T_STR),
    CK("processing", "api_key", processing.api_key, CONFIG_T_SECRET),
    CKR("processing", "timeout", processing.timeout, CONFIG_T_SECONDS, 0, 3600, true,
	"seconds, > 0 and <= 3600"),
    CKR("processing", "max_input_chars", processing.max_input_chars, CONFIG_T_SIZE, 1, 1073741824.0,
	false, "1..1G"),
    CKR("processing", "summary_max", processing.summary_max, CONFIG_T_SIZE, 64, 60000, false,
	"64..60000"),
    CKR("processing", "cpu_limit", processing.cpu_limit, CONFIG_T_SECONDS, 0, 86400, true,
	"seconds, > 0 and <= 86400"),
    CKR("processing", "mem_limit", processing.mem_limit, CONFIG_T_SIZE, 16 * CONFIG_MIB,
	(double)UINT64_MAX, false, ">= 16M"),
    CKR("processing", "wall_limit", processing.wall_limit, CONFIG_T_SECONDS, 0, 86400, true,
	"seconds, > 0 and <= 86400"),
    CKR("processing", "text_max", processing.text_max, CONFIG_T_SIZE, 4096, (double)UINT64_MAX,
	false, ">= 4K"),

    CK("mount", "allow_other", mount.allow_other, CONFIG_T_BOOL),
    CKR("mount", "attr_timeout", mount.attr_timeout, CONFIG_T_SECONDS, 0, 86400, false,
	"seconds, 0..86400"),
    CKR("mount", "entry_timeout", mount.entry_timeout, CONFIG_T_SECONDS, 0, 86400, false,
	"seconds, 0..86400"),
    CKR("mount", "threads", mount.threads, CONFIG_T_INT, 1, 256, false, "1..256"),

    CK("log", "level", log.level, CONFIG_T_LEVEL),
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* Indexed by enum log_level: the level is kept in its canonical spelling. */
static const char *const config_level_names[] = {"error", "warn", "info", "debug"};

static const char *const config_sections[] = {"database", "storage",	"cache",
					      "mount",	  "processing", "log"};

/* State of one config_load(): the reader's and the handler's shared context. */
struct config_parse {
	struct dv_config *cfg;
	const char *path;
	FILE *f;
	char *line; /* getline() buffer */
	size_t cap;
	int lineno;
	int err; /* first error, negative errno; 0 = none */
	char *msg;
	size_t msglen;
	int set_on[CONFIG_NKEYS]; /* line a key was set on, 0 = not set */
};

/* Records the first error as "FILE:LINE: ..." (line 0: "FILE: ..."). */
__attribute__((format(printf, 4, 5))) static int config_fail(struct config_parse *p, int err,
							     int lineno, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (p->err)
		return p->err;
	p->err = err;
	if (!p->msg || p->msglen == 0)
		return err;
	if (lineno > 0)
		n = snprintf(p->msg, p->msglen, "%s:%d: ", p->path, lineno);
	else
		n = snprintf(p->msg, p->msglen, "%s: ", p->path);
	if (n < 0 || (size_t)n >= p->msglen)
		return err;
	va_start(ap, fmt);
	vsnprintf(p->msg + n, p->msglen - (size_t)n, fmt, ap);
	va_end(ap);
	return err;
}

static bool config_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == '\n';
}

static bool config_known_section(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(config_sections) / sizeof(config_sections[0]); i++) {
		if (strlen(config_sections[i]) == len &&
		    strncasecmp(config_sections[i], name, len) == 0)
			return true;
	}
	return false;
}

/* Cuts an inline comment: ';' or '#' at the start or after a blank. */
static void config_cut_comment(char *s)
{
	for (char *c = s; *c; c++) {
		if ((*c == ';' || *c == '#') && (c == s || config_is_blank(c[-1]))) {
			*c = '\0';
			return;
		}
	}
}

/* Checks a cleaned, non-empty line that inih would otherwise judge. */
static int config_check_line(struct config_parse *p, char *s)
{
	if (*s == '[') {
		char *end = strchr(s, ']');
		char *name = s + 1;
		size_t len;

		if (!end || end[1] != '\0')
			return config_fail(p, -EINVAL, p->lineno, "expected \"[section]\"");
		while (config_is_blank(*name))
			name++;
		len = (size_t)(end - name);
		while (len > 0 && config_is_blank(name[len - 1]))
			len--;
		if (!config_known_section(name, len))
			return config_fail(p, -EINVAL, p->lineno, "unknown section [%.*s]",
					   (int)len, name);
		return 0;
	}
	if (!strpbrk(s, "=:"))
		return config_fail(p, -EINVAL, p->lineno, "expected \"key = value\"");
	return 0;
}

/* The ini_reader: one cleaned line per call, or NULL at the end or on error. */
static char *config_reader(char *str, int num, void *stream)
{
	struct config_parse *p = stream;
	ssize_t n;
	char *s;
	size_t len;

	if (p->err)
		return NULL;
	errno = 0;
	n = getline(&p->line, &p->cap, p->f);
	if (n < 0) {
		if (ferror(p->f))
			config_fail(p, errno ? -errno : -EIO, 0, "cannot read: %s",
				    strerror(errno ? errno : EIO));
		return NULL;
	}
	p->lineno++;
	s = p->line;
	if ((size_t)n != strlen(s)) {
		config_fail(p, -EINVAL, p->lineno, "line contains a NUL byte");
		return NULL;
	}
	if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	while (config_is_blank(*s))
		s++;
	if (*s == ';' || *s == '#') {
		*s = '\0';
	} else {
		config_cut_comment(s);
	}
	len = strlen(s);
	while (len > 0 && config_is_blank(s[len - 1]))
		s[--len] = '\0';
	if (len > 0 && config_check_line(p, s) < 0)
		return NULL;
	/* inih needs room for the line, a newline and the NUL. */
	if (num < 2 || len + 2 > (size_t)num) {
		config_fail(p, -EINVAL, p->lineno, "line is longer than %d characters",
			    num > 2 ? num - 2 : 0);
		return NULL;
	}
	memcpy(str, s, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

static const struct config_key *config_find_key(const char *section, const char *name, size_t *idx)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (strcasecmp(config_keys[i].section, section) == 0 &&
		    strcasecmp(config_keys[i].name, name) == 0) {
			*idx = i;
			return &config_keys[i];
		}
	}
	return NULL;
}

static int config_set_str(struct config_parse *p, char **field, const char *value, bool keep_empty)
{
	char *copy = NULL;

	if (*value || keep_empty) {
		copy = strdup(value);
		if (!copy)
			return config_fail(p, -ENOMEM, p->lineno, "out of memory");
	}
	if (*field) {
		explicit_bzero(*field, strlen(*field));
		free(*field);
	}
	*field = copy;
	return 0;
}

static bool config_in_range(const struct config_key *k, double v)
{
	if (k->range == NULL)
		return true;
	if (k->min_exclusive ? v <= k->min : v < k->min)
		return false;
	return v <= k->max;
}

static int config_parse_int(const char *s, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	if (errno || end == s || *end)
		return -EINVAL;
	return 0;
}

static int config_parse_seconds(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(*out))
		return -EINVAL;
	return 0;
}

static int config_parse_rate(const char *s, uint64_t *out)
{
	size_t len = strlen(s);
	char buf[64];

	if (len >= 2 && strcmp(s + len - 2, "/s") == 0) {
		if (len - 2 >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, s, len - 2);
		buf[len - 2] = '\0';
		s = buf;
	}
	return config_parse_size(s, out);
}

/* Parses value into the field named by k; the first error is recorded. */
static int config_set(struct config_parse *p, const struct config_key *k, const char *value)
{
	void *field = (char *)p->cfg + k->offset;
	const char *sec = k->section, *key = k->name;
	enum log_level lvl;
	uint64_t size;
	size_t skip;
	double d;
	long l;
	bool b;

	switch (k->type) {
	case CONFIG_T_STR:
	case CONFIG_T_SECRET:
		return config_set_str(p, field, value, false);
	case CONFIG_T_STR_ANY:
	case CONFIG_T_CONNINFO:
		return config_set_str(p, field, value, true);
	case CONFIG_T_ABSPATH:
	case CONFIG_T_ABSPATH_OPT:
		if (!*value && k->type == CONFIG_T_ABSPATH)
			return config_fail(p, -EINVAL, p->lineno, "[%s] %s: must not be empty", sec,
					   key);
		if (*value && *value != '/')
			return config_fail(p, -EINVAL, p->lineno,
					   "[%s] %s: \"%s\" is not an absolute path", sec, key,
					   value);
		return config_set_str(p, field, value, false);
	case CONFIG_T_URL:
		if (!*value)
			return config_set_str(p, field, value, false);
		if (strncasecmp(value, "http://", 7) == 0)
			skip = 7;
		else if (strncasecmp(value, "https://", 8) == 0)
			skip = 8;
		else
			return config_fail(
			    p, -EINVAL, p->lineno,
			    "[%s] %s: \"%s\" does not start with http:// or https://", sec, key,
			    value);
		if (value[skip] == '\0' || value[skip] == '/')
			return config_fail(p, -EINVAL, p->lineno, "[%s] %s: \"%s\" has no host",
					   sec, key, value);
		return config_set_str(p, field, value, false);
	case CONFIG_T_INT:
		if (config_parse_int(value, &l) < 0)
			return config_fail(p, -EINVAL, p->lineno,
					   "[%s] %s: \"%s\" is not an integer", sec, key, value);
		if (!config_in_range(k, (double)l))
			return config_fail(p, -EINVAL, p->lineno,
					   "[%s] %s: \"%s\" is out of range (%s)", sec, key, value,
					   k->range);
		*(int *)field = (int)l;
		return 0;
	case CONFIG_T_BOOL:
		if (config_parse_bool(value, &b) < 0)
			return config_fail(p, -EINVAL, p->lineno,
					   "[%s] %s: \"%s\" is not a boolean (true/false, yes/no, "
					   "on/off, 1/0)",
					   sec, key, value);
		*(bool *)field = b;
		return 0;
	case CONFIG_T_SIZE:
	case CONFIG_T_RATE:
		if ((k->type == CONFIG_T_SIZE ? config_parse_size(value, &size)
					      : config_parse_rate(value, &size)) < 0)
			return config_fail(p, -EINVAL, p->lineno, "[%s] %s: \"%s\" is not a %s",
					   sec, key, value,
					   k->type == CONFIG_T_SIZE ? "size" : "rate");
		if (!config_in_range(k, (double)size))
			return config_fail(p, -EINVAL, p->lineno,
					   "[%s] %s: \"%s\" is out of range (%s)", sec, key, value,
					   k->range);
		*(uint64_t *)field = size;
		return 0;
	case CONFIG_T_SECONDS:
		if (config_parse_seconds(value, &d) < 0)
			return config_fail(p, -EINVAL, p->lineno,
					   "[%s] %s: \"%s\" is not a number of seconds", sec, key,
					   value);
		if (!config_in_range(k, d))
			return config_fail(p, -EINVAL, p->lineno,
					   "[%s] %s: \"%s\" is out of range (%s)", sec, key, value,
					   k->range);
		*(double *)field = d;
		return 0;
	case CONFIG_T_STORE:
		if (strcasecmp(value, "local") == 0)
			*(enum config_store_type *)field = CONFIG_STORE_LOCAL;
		else if (strcasecmp(value, "s3") == 0)
			*(enum config_store_type *)field = CONFIG_STORE_S3;
		else
			return config_fail(p, -EINVAL, p->lineno,
					   "[%s] %s: \"%s\" is not \"local\" or \"s3\"", sec, key,
					   value);
		return 0;
	case CONFIG_T_SUMMARIZER:
		if (strcasecmp(value, "builtin") == 0)
			*(bool *)field = false;
		else if (strcasecmp(value, "openai") == 0)
			*(bool *)field = true;
		else
			return config_fail(p, -EINVAL, p->lineno,
					   "[%s] %s: \"%s\" is not \"builtin\" or \"openai\"", sec,
					   key, value);
		return 0;
	case CONFIG_T_LEVEL:
		if (log_parse_level(value, &lvl) < 0)
			return config_fail(p, -EINVAL, p->lineno,
					   "[%s] %s: \"%s\" is not error, warn, info or debug", sec,
					   key, value);
		return config_set_str(p, field, config_level_names[lvl], false);
	}
	return config_fail(p, -EINVAL, p->lineno, "[%s] %s: internal error", sec, key);
}

static int config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct config_parse *p = user;
	const struct config_key *k;
	size_t idx;

	if (p->err)
		return 0;
	if (!*section) {
		config_fail(p, -EINVAL, p->lineno, "key \"%s\" is outside of a [section]", name);
		return 0;
	}
	k = config_find_key(section, name, &idx);
	if (!k) {
		config_fail(p, -EINVAL, p->lineno, "unknown key \"%s\" in [%s]", name, section);
		return 0;
	}
	if (p->set_on[idx]) {
		config_fail(p, -EINVAL, p->lineno, "[%s] %s: set twice (first on line %d)",
			    k->section, k->name, p->set_on[idx]);
		return 0;
	}
	p->set_on[idx] = p->lineno;
	return config_set(p, k, value ? value : "") == 0;
}

/* Does a libpq conninfo (key=value list or postgres:// URI) hold a password? */
static bool config_conninfo_has_password(const char *ci)
{
	const char *uri = NULL;

	if (!ci)
		return false;
	if (strncasecmp(ci, "postgresql://", 13) == 0)
		uri = ci + 13;
	else if (strncasecmp(ci, "postgres://", 11) == 0)
		uri = ci + 11;
	if (uri) {
		size_t auth = strcspn(uri, "/?#");
		const char *at = memrchr(uri, '@', auth);
		const char *q = strchr(uri, '?');

		if (at && memchr(uri, ':', (size_t)(at - uri)))
			return true;
		/* ...?password=x or ...&password=x */
		for (const char *s = q; s && *s; s = strpbrk(s + 1, "&")) {
			if (strncasecmp(s + 1, "password=", 9) == 0)
				return true;
		}
		return false;
	}
	/* key = value pairs: a "password" keyword, spaces allowed around '='. */
	for (const char *s = ci; (s = strcasestr(s, "password")) != NULL; s += 8) {
		const char *e = s + 8;

		if (s != ci && !config_is_blank(s[-1]))
			continue;
		while (config_is_blank(*e))
			e++;
		if (*e == '=')
			return true;
	}
	return false;
}

static bool config_file_has_secret(const struct config_parse *p)
{
	const struct dv_config *c = p->cfg;

	return (c->storage.secret_key && *c->storage.secret_key) ||
	       (c->processing.api_key && *c->processing.api_key) ||
	       (c->storage.session_token && *c->storage.session_token) ||
	       config_conninfo_has_password(c->database.conninfo);
}

/* Fills a secret the file left unset from the environment. */
static int config_from_env(struct config_parse *p, char **field, const char *var)
{
	const char *v = getenv(var);

	if (*field || !v || !*v)
		return 0;
	*field = strdup(v);
	if (!*field)
		return config_fail(p, -ENOMEM, 0, "out of memory");
	return 0;
}

/* The checks that need the whole file. */
static int config_check(struct config_parse *p)
{
	const struct dv_config *c = p->cfg;

	if (c->storage.type == CONFIG_STORE_S3) {
		if (!c->storage.endpoint)
			return config_fail(p, -EINVAL, 0,
					   "[storage] endpoint is required when type = s3");
		if (!c->storage.bucket)
			return config_fail(p, -EINVAL, 0,
					   "[storage] bucket is required when type = s3");
		if (!c->storage.region)
			return config_fail(p, -EINVAL, 0,
					   "[storage] region is required when type = s3");
		if (!c->storage.access_key != !c->storage.secret_key)
			return config_fail(
			    p, -EINVAL, 0,
			    "[storage] %s is set but %s is not (set both, in the "
			    "file or as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
			    c->storage.access_key ? "access_key" : "secret_key",
			    c->storage.access_key ? "secret_key" : "access_key");
	}
	if (c->processing.summarizer_openai && !c->processing.endpoint)
		return config_fail(p, -EINVAL, 0,
				   "[processing] endpoint is required when summarizer = openai");
	return 0;
}

int config_defaults(struct dv_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->database.pool_size = 8;
	cfg->storage.type = CONFIG_STORE_LOCAL;
	cfg->storage.path_style = true;
	cfg->storage.tls_verify = true;
	cfg->storage.part_size = 16 * CONFIG_MIB;
	cfg->storage.multipart_threshold = 64 * CONFIG_MIB;
	cfg->storage.max_connections = 16;
	cfg->storage.max_retries = 8;
	cfg->storage.connect_timeout = 10;
	cfg->storage.request_timeout = 60;
	cfg->storage.upload_limit = 0;
	cfg->storage.download_limit = 0;
	cfg->cache.size = 10 * CONFIG_GIB;
	cfg->cache.reserve = 1 * CONFIG_GIB;
	cfg->cache.upload_workers = 0;
	cfg->cache.writeback = true;
	cfg->cache.unmount_wait = 30;
	cfg->cache.full_wait = 60;
	cfg->processing.workers = 2;
	cfg->processing.max_attempts = 5;
	cfg->processing.timeout = 30;
	cfg->processing.max_input_chars = 12000;
	cfg->processing.summary_max = 1024;
	cfg->processing.cpu_limit = 30;
	cfg->processing.mem_limit = 512 * CONFIG_MIB;
	cfg->processing.wall_limit = 60;
	cfg->processing.text_max = 4 * CONFIG_MIB;
	cfg->mount.allow_other = false;
	cfg->mount.attr_timeout = 1.0;
	cfg->mount.entry_timeout = 1.0;
	cfg->mount.threads = 8;

	cfg->database.conninfo = strdup("dbname=docvault");
	cfg->storage.path = strdup("/var/lib/docvault/blobs");
	cfg->storage.region = strdup("us-east-1");
	cfg->storage.prefix = strdup("");
	cfg->cache.dir = strdup("/var/cache/docvault");
	cfg->log.level = strdup("info");
	cfg->processing.model = strdup("gpt-4o-mini");
	if (!cfg->database.conninfo || !cfg->storage.path || !cfg->storage.region ||
	    !cfg->storage.prefix || !cfg->cache.dir || !cfg->log.level || !cfg->processing.model)
		return -ENOMEM;
	return 0;
}

int config_load(const char *path, struct dv_config *cfg, char *err, size_t errlen)
{
	struct config_parse p = {.cfg = cfg, .path = path, .msg = err, .msglen = errlen};
	struct stat st;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	rc = config_defaults(cfg);
	if (rc < 0)
		return config_fail(&p, rc, 0, "out of memory");
	cfg->path = strdup(path);
	if (!cfg->path)
		return config_fail(&p, -ENOMEM, 0, "out of memory");

	p.f = fopen(path, "re");
	if (!p.f)
		return config_fail(&p, -errno, 0, "cannot open: %s", strerror(errno));
	if (fstat(fileno(p.f), &st) < 0) {
		config_fail(&p, -errno, 0, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		config_fail(&p, -EISDIR, 0, "cannot read: %s", strerror(EISDIR));
		goto out;
	}

	rc = ini_parse_stream(config_reader, &p, config_handler, &p);
	if (p.err)
		goto out;
	if (rc == -2) {
		config_fail(&p, -ENOMEM, 0, "out of memory");
		goto out;
	}
	if (rc != 0) {
		config_fail(&p, -EINVAL, rc > 0 ? rc : 0, "syntax error");
		goto out;
	}

	/* As ssh does: a secret in a file others can read is no secret. */
	if ((st.st_mode & 077) && config_file_has_secret(&p)) {
		config_fail(&p, -EACCES, 0,
			    "contains a secret and is readable by others (mode %04o); chmod 600 %s",
			    (unsigned)(st.st_mode & 07777), path);
		goto out;
	}

	if (config_from_env(&p, &cfg->storage.access_key, "AWS_ACCESS_KEY_ID") < 0 ||
	    config_from_env(&p, &cfg->storage.secret_key, "AWS_SECRET_ACCESS_KEY") < 0 ||
	    config_from_env(&p, &cfg->storage.session_token, "AWS_SESSION_TOKEN") < 0 ||
	    config_from_env(&p, &cfg->processing.api_key, "DOCVAULT_AI_API_KEY") < 0)
		goto out;
	config_check(&p);
out:
	free(p.line);
	fclose(p.f);
	return p.err;
}

static void config_free_str(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
	}
	*s = NULL;
}

void config_free(struct dv_config *cfg)
{
	if (!cfg)
		return;
	config_free_str(&cfg->path);
	config_free_str(&cfg->database.conninfo);
	config_free_str(&cfg->storage.path);
	config_free_str(&cfg->storage.endpoint);
	config_free_str(&cfg->storage.region);
	config_free_str(&cfg->storage.bucket);
	config_free_str(&cfg->storage.prefix);
	config_free_str(&cfg->storage.access_key);
	config_free_str(&cfg->storage.secret_key);
	config_free_str(&cfg->storage.session_token);
	config_free_str(&cfg->storage.ca_file);
	config_free_str(&cfg->cache.dir);
	config_free_str(&cfg->log.level);
	config_free_str(&cfg->processing.endpoint);
	config_free_str(&cfg->processing.model);
	config_free_str(&cfg->processing.api_key);
}

int config_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *c = s;

	if (!s)
		return -EINVAL;
	while (config_is_blank(*c))
		c++;
	if (*c < '0' || *c > '9')
		return -EINVAL;
	for (; *c >= '0' && *c <= '9'; c++) {
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*c - '0'), &v))
			return -EINVAL;
	}
	while (*c == ' ' || *c == '\t')
		c++;
	switch (*c) {
	case 'K':
	case 'k':
		mult = 1ULL << 10;
		break;
	case 'M':
	case 'm':
		mult = 1ULL << 20;
		break;
	case 'G':
	case 'g':
		mult = 1ULL << 30;
		break;
	case 'T':
	case 't':
		mult = 1ULL << 40;
		break;
	}
	if (mult != 1) {
		c++;
		if (*c == 'i' || *c == 'I') {
			c++;
			if (*c != 'B' && *c != 'b')
				return -EINVAL;
		}
	}
	if (*c == 'B' || *c == 'b')
		c++;
	while (config_is_blank(*c))
		c++;
	if (*c)
		return -EINVAL;
	if (__builtin_mul_overflow(v, mult, &v))
		return -EINVAL;
	*out = v;
	return 0;
}

int config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}
