/*
 * config.h - the INI configuration (read with inih), one struct for the
 * whole process. conf/docvault.conf.example documents every key with its
 * default; config_defaults() and that file must agree.
 *
 * Errors name the file, the line and the key, e.g.
 *   docvault.conf:7: [cache] size: "10Q" is not a size
 * Unknown sections and keys are errors. A file that holds a secret
 * ([storage] secret_key, a password in [database] conninfo, ...) and is
 * readable by group or others is refused, as ssh does.
 *
 * Secrets may come from the environment instead: AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (the file wins when both are set).
 * PGPASSWORD and the other PG* variables are read by libpq itself.
 *
 * Ownership: every string in struct dv_config is malloc'ed and freed by
 * config_free(). Not thread-safe while loading; read-only afterwards.
 */
#ifndef DOCVAULT_CONFIG_H
#define DOCVAULT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum config_store_type { CONFIG_STORE_LOCAL = 0, CONFIG_STORE_S3 };

struct dv_config {
	char *path; /* the file it was read from */

	struct {
		char *conninfo; /* libpq conninfo or URI; default "dbname=docvault" */
		int pool_size;	/* connections; default 8, 1..256 */
	} database;

	struct {
		enum config_store_type type; /* "local" (default) | "s3" */
		char *path; /* local: directory of blobs; default /var/lib/docvault/blobs */
		/* s3 */
		char *endpoint; /* http(s)://host[:port] */
		char *region;	/* default "us-east-1" */
		char *bucket;
		char *prefix;	 /* key prefix, default "" */
		bool path_style; /* default true */
		char *access_key;
		char *secret_key;
		char *session_token;
		bool tls_verify; /* default true */
		char *ca_file;
		uint64_t part_size;	      /* default 16 MiB, >= 5 MiB */
		uint64_t multipart_threshold; /* default 64 MiB */
		int max_connections;	      /* default 16 */
		int max_retries;	      /* default 8 */
		double connect_timeout;	      /* seconds, default 10 */
		double request_timeout;	      /* seconds, default 60 */
		uint64_t upload_limit;	      /* bytes/s, 0 = unlimited */
		uint64_t download_limit;      /* bytes/s, 0 = unlimited */
	} storage;

	struct {
		char *dir;	     /* default /var/cache/docvault */
		uint64_t size;	     /* bytes, default 10G */
		uint64_t reserve;    /* free space kept on the cache's disk, default 1G */
		int upload_workers;  /* default 0 = number of CPUs, at least 2 */
		bool writeback;	     /* default true */
		double unmount_wait; /* seconds unmount waits for uploads, default 30 */
		double full_wait;    /* seconds a writer waits for room, default 60 */
	} cache;

	struct {
		bool allow_other;     /* default false */
		double attr_timeout;  /* seconds, default 1.0 */
		double entry_timeout; /* seconds, default 1.0 */
		int threads;	      /* FUSE worker threads, default 8 */
	} mount;

	struct {
		int workers;		  /* job threads in the daemon, default 2, 0 = none */
		int max_attempts;	  /* tries before a job is failed, default 5 */
		bool summarizer_openai;	  /* "builtin" (default, false) | "openai" */
		char *endpoint;		  /* OpenAI-compatible base URL, e.g. http://h:8080/v1 */
		char *model;		  /* default "gpt-4o-mini" */
		char *api_key;		  /* or DOCVAULT_AI_API_KEY; a secret */
		double timeout;		  /* seconds per AI request, default 30 */
		uint64_t max_input_chars; /* text sent to the AI, default 12000 */
		uint64_t summary_max;	  /* bytes of a summary, default 1024 */
		double cpu_limit;	  /* CPU seconds per extraction, default 30 */
		uint64_t mem_limit;	  /* address space per extraction, default 512M */
		double wall_limit;	  /* wall-clock seconds per extraction, default 60 */
		uint64_t text_max;	  /* bytes of text kept per document, default 4M */
	} processing;

	struct {
		char *level; /* error | warn | info (default) | debug */
	} log;
};

/* Fills *cfg with the defaults. Returns 0 or -ENOMEM. */
int config_defaults(struct dv_config *cfg);

/*
 * Reads the INI file at path into *cfg (defaults first, then the file, then
 * secrets from the environment where the file has none). On failure returns
 * a negative errno and writes one line, naming file, line and key, to err.
 * *cfg needs config_free() in both cases.
 */
int config_load(const char *path, struct dv_config *cfg, char *err, size_t errlen);

/* Frees every string; accepts NULL and a zeroed struct. */
void config_free(struct dv_config *cfg);

/*
 * Parses a size: a number with an optional suffix K, M, G, T (binary units,
 * an optional trailing "B" or "iB"). Returns 0 or -EINVAL.
 */
int config_parse_size(const char *s, uint64_t *out);

/* Parses true/false/yes/no/on/off/1/0. Returns 0 or -EINVAL. */
int config_parse_bool(const char *s, bool *out);

#endif
