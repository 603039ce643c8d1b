/*
 * extract.h - MIME detection and text extraction for one document file.
 *
 * Model: extract_file() runs a helper program, a fresh exec of the docvault
 * binary itself (`docvault __extract`, see below), that detects the MIME
 * type with libmagic and turns the file into UTF-8 text: plain text and
 * source code (UTF-8 kept, other bytes read as Latin-1/CP1252), Markdown
 * (markup reduced), HTML (tags, script and style removed, entities
 * decoded), PDF (poppler's pdftotext, exec'ed by the helper), DOCX
 * (word/document.xml) and ODT (content.xml) through a small built-in zip
 * reader, and text inside gzip. The helper runs under CPU-time,
 * address-space and wall-clock limits, so a hostile file fails its
 * document, never the caller. The caller keeps at most text_max bytes of
 * text (cut on a character boundary).
 *
 * The helper program, in this order: lim->helper; the environment variable
 * DOCVAULT_HELPER; "docvault" in the directory of the running program
 * (/proc/self/exe) when it exists and is executable. None of them: the
 * document's job fails with -ENOENT (retried) and a reason naming what was
 * looked for. Tests set DOCVAULT_HELPER to the docvault they built.
 *
 * The helper's protocol (private to this module and the same binary, but
 * written down so a human can run it):
 *
 *   docvault __extract [--cpu S] [--mem BYTES] [--fsize BYTES]
 *                      [--text-max BYTES] [--] FILE
 *
 * It parses its arguments (bad ones: exit EXTRACT_EXIT_USAGE, nothing on
 * stdout), writes the banner line, sets its own limits with setrlimit
 * (RLIMIT_CORE 0; RLIMIT_CPU S rounded up, hard limit one second more;
 * RLIMIT_AS BYTES, see extract.c on sanitizers; RLIMIT_FSIZE BYTES,
 * default 0: it writes no file - pipes are not limited, so by hand run it
 * as `docvault __extract FILE 2>&1 | less`, never into a file; 0 in --cpu
 * or --mem means no limit), and only then opens FILE. stdout:
 *
 *   "docvault-extract 1\n"   the banner (EXTRACT_BANNER): proves that the
 *                             program is a docvault helper of this protocol
 *   "mime TYPE\n"            the MIME type, as soon as it is known
 *   "truncated\n"            (optional) the text was cut at --text-max
 *   "text\n"                 (optional) the last header line: the text
 *                             follows, raw UTF-8, until end of file
 *
 * `docvault __extract --serve` is the same helper as a server (see
 * extract_server_file() below): its stdin is a SOCK_SEQPACKET socket on
 * which it answers requests (limits, a path and the two pipes, passed as
 * SCM_RIGHTS) with the wait status of the extraction; each extraction
 * writes the framed output below on its pipes, exactly as one helper would.
 * The messages are private to extract.c.
 *
 * A reader ignores header lines it does not know; no "text" line means no
 * text. The header is at most EXTRACT_HEADER_MAX bytes. stderr carries the
 * reason of a failure in one line (and pdftotext's own messages). The exit
 * status says how it ended: 0, or one of EXTRACT_EXIT_* below, or (PDF)
 * pdftotext's own non-zero status; a signal: SIGXCPU (or SIGKILL at the
 * hard limit) is the CPU limit, SIGSEGV/SIGABRT usually the memory limit.
 *
 * The converters below are pure functions on memory, used by the helper
 * and by the tests. They write into a struct extract_buf, which never grows
 * beyond its max (the rest is dropped and buf->full is set), so a converter
 * stops early once its output is full.
 *
 * Threading: everything here is reentrant; extract_file() starts the helper
 * with posix_spawn (never fork: the caller is multi-threaded) and blocks up
 * to the wall-clock limit. A struct extract_server is used by one thread
 * at a time. Ownership: results are malloc'ed, freed with
 * extract_result_free() / extract_buf_free(). Not: OCR, legacy .doc/.xls,
 * spreadsheets and presentations, encrypted or zip64 archives.
 */
#ifndef DOCVAULT_EXTRACT_H
#define DOCVAULT_EXTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define EXTRACT_MIME_SIZE  128
#define EXTRACT_ERROR_SIZE 256

#define EXTRACT_HELPER_ENV	 "DOCVAULT_HELPER"    /* the helper program, if not given */
#define EXTRACT_BANNER		 "docvault-extract 1" /* the helper's first line */
#define EXTRACT_HEADER_MAX	 1024		      /* bytes of header at most */
#define EXTRACT_TEXT_MAX_DEFAULT (4u << 20)	      /* --text-max when not given */

/* The helper's exit statuses (sysexits.h values), besides 0 and pdftotext's own. */
#define EXTRACT_EXIT_USAGE  64	/* bad arguments (no banner written) */
#define EXTRACT_EXIT_BAD    65	/* the document is bad; the reason on stderr */
#define EXTRACT_EXIT_SETUP  69	/* cannot set up: setrlimit, libmagic's database */
#define EXTRACT_EXIT_NOMEM  71	/* out of memory (the memory limit, if one is set) */
#define EXTRACT_EXIT_IO	    74	/* cannot read the file; the reason on stderr */
#define EXTRACT_EXIT_NOTOOL 127 /* pdftotext is not installed or cannot run */

/* Limits of one extraction; 0 in a limit means none. */
struct extract_limits {
	double cpu_limit;   /* CPU seconds of the helper (rounded up to whole seconds) */
	uint64_t mem_limit; /* RLIMIT_AS of the helper, bytes (see extract.c on sanitizers) */
	double wall_limit;  /* wall-clock seconds before the helper is killed */
	size_t text_max;    /* bytes of text kept (> 0) */
	const char *helper; /* the docvault program to run; NULL: see the top of this file */
};

struct extract_result {
	char mime[EXTRACT_MIME_SIZE];	/* always set, "application/octet-stream" if unknown */
	char *text;			/* UTF-8, NUL-terminated, malloc'ed; NULL when no text */
	size_t text_len;		/* <= text_max */
	bool truncated;			/* the document had more text than text_max */
	char error[EXTRACT_ERROR_SIZE]; /* why the document failed, "" if it did not */
};

/*
 * Detects the MIME type of the file at path and extracts its text in the
 * limited helper process. Returns 0 (a file without text, e.g. an image or
 * an empty file, is no error: text is NULL), -EINVAL when the document is
 * bad (corrupt, it hit a limit, or it crashed the extractor; out->error
 * says which), or another negative errno for a failure worth retrying,
 * with out->error set: -EIO reading the file or setting up the helper,
 * -ENOMEM (also out of memory with no memory limit), -EAGAIN/-EMFILE
 * (spawn, pipes), -ENOENT when there is no helper program, it is not a
 * docvault helper, or pdftotext is not installed. out is filled in every
 * case and needs extract_result_free(). Logs nothing: the caller decides.
 */
int extract_file(const struct extract_limits *lim, const char *path, struct extract_result *out);

/*
 * An extraction server: one long-lived helper (`docvault __extract
 * --serve`, started with posix_spawn on first use) that loads libmagic's
 * database once and never reads a document itself. It forks an extraction
 * worker (a grandchild of the daemon) that extracts document after
 * document, each under its own limits (CPU allowance per document, memory
 * and no file writes for the worker's life, the wall clock enforced by the
 * caller); anything but a clean end of a document (crash, limit, cancel,
 * a bad document, a PDF: pdftotext is exec'ed) ends that worker, and the
 * next document gets a fresh fork. A document can still fail only itself;
 * it saves the exec, the dynamic linking and the database load of a fresh
 * helper per document (see extract.c for the protocol). The trade-off: a
 * document that subverted a converter without ending it could see the
 * next documents of the same worker (at most 1,000); it cannot write
 * files, and never runs in the daemon. The server runs in a process group of its own, which
 * extract_server_free() kills; its grandchildren die with it
 * (PR_SET_PDEATHSIG), and it dies when its socket closes.
 *
 * Not thread-safe: one server per thread (a worker keeps one). Blocks like
 * extract_file().
 */
struct extract_server;

/* A server handle (no process yet). 0 or -ENOMEM. */
int extract_server_new(struct extract_server **out);
/* Stops the server (and any extraction it runs) and frees; accepts NULL. */
void extract_server_free(struct extract_server *s);

/*
 * extract_file() on the server s, with the same results and errors. The
 * server is started when needed (or restarted when lim->helper names
 * another program); one that died, before or during this document, is
 * restarted and the document tried once more. A server that cannot start
 * is -ENOENT (no program, not a docvault helper that serves) or another
 * negative errno, with out->error set.
 */
int extract_server_file(struct extract_server *s, const struct extract_limits *lim,
			const char *path, struct extract_result *out);

/* For tests and logs: the server's pid (0 if none runs), how many were started. */
pid_t extract_server_pid(const struct extract_server *s);
unsigned long extract_server_starts(const struct extract_server *s);

/*
 * The helper's main (`docvault __extract ...`, see the top of this file):
 * argv[0] is the subcommand's name. Ends the process itself with _exit()
 * (or exec's pdftotext); returns the exit status only for --help. Only for
 * a fresh process of its own: it sets limits on the whole process and
 * writes to descriptors 1 and 2.
 */
int extract_child_main(int argc, char **argv);

/* Frees out->text and zeroes *out; accepts NULL. */
void extract_result_free(struct extract_result *r);

/* ---- converters (pure, in memory) ---- */

struct extract_buf {
	char *data; /* NUL-terminated when len > 0 */
	size_t len;
	size_t cap;
	size_t max;   /* bytes at most; 0 = SIZE_MAX/2 */
	bool full;    /* something was dropped because of max */
	int pend_nl;  /* collapsing whitespace: newlines pending (0..2) */
	bool pend_sp; /* a space is pending */
};

/* Frees b->data and zeroes *b, keeping nothing; accepts NULL. */
void extract_buf_free(struct extract_buf *b);

/*
 * Each converter appends the text of in[0..len) to out and returns 0 or
 * -ENOMEM. Input that is not valid UTF-8 is still converted (bytes pass
 * through); run extract_plain() first to repair it.
 */
/* Valid UTF-8 kept, other bytes read as CP1252/Latin-1; NUL and control
 * characters but \t and \n become spaces, \r\n becomes \n. */
int extract_plain(const char *in, size_t len, struct extract_buf *out);
/* HTML: tags stripped (block elements become line breaks), script, style
 * and comments dropped, named and numeric entities decoded. */
int extract_html(const char *in, size_t len, struct extract_buf *out);
/* Markdown: headings, emphasis, code fences, lists, quotes, tables, link
 * and image syntax reduced to their text. */
int extract_markdown(const char *in, size_t len, struct extract_buf *out);
/* XML: the character data. office = true knows WordprocessingML and
 * OpenDocument paragraphs, breaks and tabs and skips field codes and
 * deleted text; false separates every element by a space. */
int extract_xml(const char *in, size_t len, bool office, struct extract_buf *out);

/* True when in[0..len) looks like Markdown (headings, fences, links, lists). */
bool extract_looks_markdown(const char *in, size_t len);

/*
 * Reads the member named name from the zip archive open at fd (stored or
 * deflated), at most max bytes of it (*truncated tells). Returns 0 with a
 * malloc'ed, NUL-terminated *data, -ENOENT when there is no such member,
 * -EINVAL for a corrupt, encrypted or zip64 archive, -EIO or -ENOMEM.
 */
int extract_zip_member(int fd, const char *name, size_t max, char **data, size_t *len,
		       bool *truncated);

/*
 * Length of the valid UTF-8 sequence at p (1..4, of at most n bytes), or 0
 * when p does not start one (overlong forms and surrogates are invalid).
 */
size_t extract_utf8_seq(const unsigned char *p, size_t n);

#endif
