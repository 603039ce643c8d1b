/*
 * process.h - processing one document: MIME type, text, summary, tags.
 *
 * Model: a pure function of a local file and the options. process_file()
 * runs extraction in a limited helper process (extract.h: a fresh exec of
 * the docvault binary, never a fork of the caller; process_file_on() uses
 * a long-lived extraction server instead, as the job workers do), then
 * summarises the text with the OpenAI-compatible endpoint when configured
 * (ai.h), falling back to the built-in extractive summariser (summarize.h)
 * when the endpoint fails, and picks keyword tags from the text. It knows nothing of
 * the queue, the database or the store: the job worker (jobs.c) fetches the
 * blob to a local file, calls this, and records the result.
 *
 * Threading: thread-safe, no shared state; blocks up to the extraction
 * limits plus the AI timeout. Ownership: a result's strings are malloc'ed
 * and freed by process_result_free(). Options borrow their strings from the
 * struct dv_config they were made from, which must outlive them.
 */
#ifndef DOCVAULT_PROCESS_H
#define DOCVAULT_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dv_config;

/* One document's processing inputs: from [processing] in struct dv_config. */
struct process_opts {
	bool openai;	      /* summarizer = openai */
	const char *endpoint; /* base URL, "/chat/completions" appended */
	const char *model;
	const char *api_key; /* may be NULL */
	double timeout;	     /* seconds per AI request */
	size_t max_input_chars;
	size_t summary_max; /* bytes */
	double cpu_limit;   /* extraction child: CPU seconds */
	uint64_t mem_limit; /* extraction child: RLIMIT_AS bytes */
	double wall_limit;  /* extraction child: wall seconds */
	size_t text_max;    /* bytes of text kept */
	const char *helper; /* the docvault program that extracts (`__extract`); NULL:
			       $DOCVAULT_HELPER, else docvault next to this program */
};

/* Fills *o from cfg->processing (borrowing its strings); o->helper is NULL. */
void process_opts_from_config(const struct dv_config *cfg, struct process_opts *o);

struct process_result {
	char mime[128]; /* from libmagic, e.g. "application/pdf"; always set */
	char *text;	/* extracted UTF-8 text (malloc), NULL if none; <= text_max */
	size_t text_len;
	char *summary;		 /* malloc'ed, NUL-terminated; "" when no text */
	char summary_source[16]; /* "builtin" | "openai" | "none" */
	char **autotags;	 /* malloc'ed array of malloc'ed lowercase words */
	size_t nautotags;	 /* <= 10 */
	char error[256];	 /* non-empty when the document failed (corrupt PDF, limits hit) */
	bool text_truncated;	 /* (added) the document had more than text_max bytes of text */
};

/*
 * Processes the document in the file at path (a complete local copy of the
 * blob): MIME type, text (in a helper process with CPU/memory/wall limits),
 * summary (AI when configured, falling back to builtin), keyword tags.
 * Returns 0 when processed (out->error empty) or when the document itself is
 * bad (-EINVAL, out->error says why: a failed job, not retried);
 * another negative errno for a transient failure worth retrying (-ENOMEM,
 * -EIO reading the file, -ENOENT when the helper program or pdftotext is
 * missing; out->error says which). Thread-safe; blocks (up to the limits).
 * out is filled in every case (mime always set, summary "" unless
 * processed) and needs process_result_free().
 */
int process_file(const struct process_opts *o, const char *path, struct process_result *out);

/*
 * process_file() with extraction on the extraction server srv (extract.h:
 * one long-lived helper forking a limited grandchild per document, much
 * cheaper than a fresh helper per document); srv NULL is process_file().
 * srv belongs to the calling thread for the call.
 */
struct extract_server;
int process_file_on(const struct process_opts *o, struct extract_server *srv, const char *path,
		    struct process_result *out);

/* Frees what a result holds and zeroes it; accepts NULL / zeroed. */
void process_result_free(struct process_result *r);

#endif
