/*
 * extract.h - MIME detection and text extraction for one document file.
 *
 * Model: extract_file() forks a child that detects the MIME type with
 * libmagic and turns the file into UTF-8 text: plain text and source code
 * (UTF-8 kept, other bytes read as Latin-1/CP1252), Markdown (markup
 * reduced), HTML (tags, script and style removed, entities decoded), PDF
 * (poppler's pdftotext, exec'ed), DOCX (word/document.xml) and ODT
 * (content.xml) through a small built-in zip reader, and text inside gzip.
 * The child runs under CPU-time, address-space and wall-clock limits, so a
 * hostile file fails its document, never the caller. The parent keeps at
 * most text_max bytes of text (cut on a character boundary).
 *
 * The converters below are pure functions on memory, used by the child and
 * by the tests. They write into a struct extract_buf, which never grows
 * beyond its max (the rest is dropped and buf->full is set), so a converter
 * stops early once its output is full.
 *
 * Threading: everything here is reentrant; extract_file() blocks up to the
 * wall-clock limit. Ownership: results are malloc'ed, freed with
 * extract_result_free() / extract_buf_free(). Not: OCR, legacy .doc/.xls,
 * spreadsheets and presentations, encrypted or zip64 archives.
 */
#ifndef DOCVAULT_EXTRACT_H
#define DOCVAULT_EXTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXTRACT_MIME_SIZE  128
#define EXTRACT_ERROR_SIZE 256

/* Limits of one extraction; 0 in a limit means none. */
struct extract_limits {
	double cpu_limit;   /* CPU seconds of the child (rounded up to whole seconds) */
	uint64_t mem_limit; /* RLIMIT_AS of the child, bytes (see extract.c on sanitizers) */
	double wall_limit;  /* wall-clock seconds before the child is killed */
	size_t text_max;    /* bytes of text kept (> 0) */
};

struct extract_result {
	char mime[EXTRACT_MIME_SIZE];	/* always set, "application/octet-stream" if unknown */
	char *text;			/* UTF-8, NUL-terminated, malloc'ed; NULL when no text */
	size_t text_len;		/* <= text_max */
	bool truncated;			/* the document had more text than text_max */
	char error[EXTRACT_ERROR_SIZE]; /* why the document failed, "" if it did not */
};

/*
 * Detects the MIME type of the file at path and extracts its text in a
 * limited child process. Returns 0 (a file without text, e.g. an image or
 * an empty file, is no error: text is NULL), -EINVAL when the document is
 * bad (corrupt, or it hit a limit; out->error says which), or another
 * negative errno for a failure worth retrying: -EIO/-ENOENT/-EACCES opening
 * the file, -ENOMEM, -EAGAIN (fork), -ENOENT with out->error set when
 * pdftotext is not installed. out is filled in every case and needs
 * extract_result_free(). Logs nothing: the caller decides.
 */
int extract_file(const struct extract_limits *lim, const char *path, struct extract_result *out);

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
