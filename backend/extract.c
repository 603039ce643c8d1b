/*
 * extract.c - MIME detection and text extraction (see extract.h), the only
 * file that includes libmagic.
 *
 * Why a forked child that runs our own code (and exec's only pdftotext):
 * every parser of untrusted bytes - libmagic, zlib, our HTML/XML/zip code,
 * poppler - runs in a child process under setrlimit (RLIMIT_CPU,
 * RLIMIT_AS, RLIMIT_FSIZE = 0, RLIMIT_CORE = 0), with its descriptors
 * closed but the two pipes, and the parent kills it at the wall-clock
 * limit. A loop, a memory bomb or a crash costs one document.
 * The daemon is multi-threaded; after fork() only the calling thread exists
 * in the child. glibc's malloc resets its locks in the child (atfork), and
 * the child uses nothing else that another thread may have held locked at
 * fork time: no stdio, no logging, no locale changes, only malloc, open,
 * read, write, zlib and libmagic, then _exit() (no atexit handlers). If
 * some library lock were ever inherited locked, the child would block and
 * the wall-clock limit would end it: a failed document, not a hung daemon.
 * Exec'ing a helper binary for every format would be cleaner still, but
 * would need a second program installed next to the daemon; PDF goes to
 * pdftotext (exec'ed from the child, stdout on the text pipe), everything
 * else is converted in the child by the pure converters below.
 *
 * Protocol: the child writes "mime\n" and then the text on the data pipe,
 * and error text on the error pipe (its stderr: pdftotext's messages land
 * there too). Its exit status says how it ended (EXTRACT_EXIT_*). The parent
 * polls both pipes, keeps text_max bytes of text (then kills the child:
 * enough text), at most EXTRACT_ERRBUF bytes of error text, and reaps it.
 *
 * Sanitizers: ASan and TSan reserve terabytes of address space at start, so
 * RLIMIT_AS cannot be set for a child that keeps running our code in such a
 * build; there it is set only right before exec'ing pdftotext. Release
 * builds limit both. Also, GCC 12's ASan allocator does not reset its locks
 * at fork: a fork while another thread is inside malloc can hang the child
 * (seen in test_ai), which the wall-clock limit then fails. glibc's malloc
 * has no such problem; the tests keep other threads from allocating while
 * they fork.
 *
 * Input bounds: plain text reads at most text_max (+ a partial character)
 * bytes; markup formats read (or inflate) at most EXTRACT_INPUT_FACTOR times
 * text_max, between 1 MiB and 512 MiB. The rest of a document is ignored.
 * The final text is cleaned in the parent: NUL becomes a space (PostgreSQL
 * text cannot hold it) and invalid UTF-8 from a helper becomes '?'.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <magic.h>
#include <zlib.h>

#include "docvault/extract.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define EXTRACT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define EXTRACT_SANITIZED 1
#endif
#endif
#ifndef EXTRACT_SANITIZED
#define EXTRACT_SANITIZED 0
#endif

#define EXTRACT_EXIT_BAD    65 /* the document is bad; message on stderr */
#define EXTRACT_EXIT_NOMEM  71 /* out of memory (the memory limit) */
#define EXTRACT_EXIT_IO	    74 /* cannot read the file */
#define EXTRACT_EXIT_NOTOOL 127

#define EXTRACT_ERRBUF	     1024
#define EXTRACT_CHUNK	     (64 * 1024)
#define EXTRACT_INPUT_FACTOR 16
#define EXTRACT_INPUT_MIN    (1u << 20)
#define EXTRACT_INPUT_MAX    (512u << 20)
#define EXTRACT_SNIFF	     (64 * 1024)
#define EXTRACT_ZIP_CD_MAX   (64u << 20)

enum kind { K_NONE, K_PLAIN, K_MARKDOWN, K_HTML, K_XML, K_PDF, K_DOCX, K_ODT, K_GZIP };

/* ------------------------------------------------------------------ */
/* buffer */

void extract_buf_free(struct extract_buf *b)
{
	if (!b)
		return;
	free(b->data);
	memset(b, 0, sizeof(*b));
}

size_t extract_utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c;

	if (!n)
		return 0;
	c = p[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
			return 0;
		if (c == 0xE0 && p[1] < 0xA0)
			return 0; /* overlong */
		if (c == 0xED && p[1] >= 0xA0)
			return 0; /* surrogate */
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
		    (p[3] & 0xC0) != 0x80)
			return 0;
		if (c == 0xF0 && p[1] < 0x90)
			return 0;
		if (c == 0xF4 && p[1] >= 0x90)
			return 0;
		return 4;
	}
	return 0;
}

static size_t buf_limit(const struct extract_buf *b)
{
	return b->max ? b->max : SIZE_MAX / 2;
}

/* Appends n raw bytes (cut on a character boundary at max). 0 or -ENOMEM. */
static int buf_raw(struct extract_buf *b, const char *s, size_t n)
{
	size_t lim = buf_limit(b), room = lim - b->len;

	if (b->full)
		return 0;
	if (n > room) {
		n = room;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--; /* s[n] continues a character: cut before it */
		b->full = true;
	}
	if (!n)
		return 0;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > lim + 1)
			cap = lim + 1;
		p = realloc(b->data, cap);
		if (!p)
			return -ENOMEM;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

static bool is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Flushes pending whitespace before text (none at the very start). */
static int buf_flush_ws(struct extract_buf *b)
{
	int ret = 0;

	if (b->len) {
		if (b->pend_nl >= 2)
			ret = buf_raw(b, "\n\n", 2);
		else if (b->pend_nl == 1)
			ret = buf_raw(b, "\n", 1);
		else if (b->pend_sp)
			ret = buf_raw(b, " ", 1);
	}
	b->pend_nl = 0;
	b->pend_sp = false;
	return ret;
}

static void buf_newline(struct extract_buf *b, int n)
{
	if (b->pend_nl < n)
		b->pend_nl = n;
}

/* Appends text, collapsing runs of whitespace (a blank line stays one). */
static int buf_text(struct extract_buf *b, const char *s, size_t n)
{
	size_t i = 0;
	int ret;

	while (i < n && !b->full) {
		size_t j = i;

		while (j < n && !is_ws((unsigned char)s[j]))
			j++;
		if (j > i) {
			if ((ret = buf_flush_ws(b)) || (ret = buf_raw(b, s + i, j - i)))
				return ret;
		}
		for (i = j; i < n && is_ws((unsigned char)s[i]); i++) {
			if (s[i] == '\n')
				buf_newline(b, b->pend_nl + 1 > 2 ? 2 : b->pend_nl + 1);
			else
				b->pend_sp = true;
		}
	}
	return 0;
}

/* Encodes cp (valid) as UTF-8 into u; returns the length. */
static size_t utf8_encode(unsigned long cp, char u[4])
{
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return n;
}

static int buf_codepoint(struct extract_buf *b, unsigned long cp)
{
	char u[4];

	if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		cp = 0xFFFD;
	if (cp == 0xA0)
		cp = ' ';
	return buf_text(b, u, utf8_encode(cp, u));
}

/* ------------------------------------------------------------------ */
/* plain text */

/* CP1252's 0x80..0x9F; 0 where it has no character. */
static const unsigned short cp1252_high[32] = {
    0x20AC, 0,	    0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,	    0x017D, 0,	    0,	    0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,	    0x017E, 0x0178};

int extract_plain(const char *in, size_t len, struct extract_buf *out)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0;
	int ret;

	while (i < len && !out->full) {
		size_t j = i, k;

		/* the longest run that passes unchanged */
		while (j < len) {
			unsigned char c = p[j];

			if (c >= 0x20 && c < 0x7F) {
				j++;
			} else if (c == '\n' || c == '\t') {
				j++;
			} else if (c >= 0x80 && (k = extract_utf8_seq(p + j, len - j))) {
				j += k;
			} else {
				break;
			}
		}
		if (j > i && (ret = buf_raw(out, in + i, j - i)))
			return ret;
		if (j >= len)
			break;
		if (p[j] == '\r') {
			ret = (j + 1 < len && p[j + 1] == '\n') ? 0 : buf_raw(out, "\n", 1);
		} else if (p[j] == '\f' || p[j] == '\v') {
			ret = buf_raw(out, "\n", 1);
		} else if (p[j] < 0x80) {
			ret = buf_raw(out, " ", 1); /* NUL and other controls */
		} else {
			/* not UTF-8: a CP1252 / Latin-1 byte */
			unsigned long cp = p[j] < 0xA0 ? cp1252_high[p[j] - 0x80] : p[j];
			char u[4];

			ret = cp ? buf_raw(out, u, utf8_encode(cp, u)) : buf_raw(out, " ", 1);
		}
		if (ret)
			return ret;
		i = j + 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* entities, shared by HTML, XML and Markdown */

struct entity {
	const char *name;
	unsigned short cp;
};

/* Sorted by name (strcmp) for bsearch. */
static const struct entity entities[] = {
    {"AElig", 0xC6},   {"Aacute", 0xC1}, {"Agrave", 0xC0},   {"Auml", 0xC4},	{"Ccedil", 0xC7},
    {"Eacute", 0xC9},  {"Egrave", 0xC8}, {"Ouml", 0xD6},     {"Uuml", 0xDC},	{"aacute", 0xE1},
    {"acirc", 0xE2},   {"aelig", 0xE6},	 {"agrave", 0xE0},   {"amp", '&'},	{"apos", '\''},
    {"auml", 0xE4},    {"bull", 0x2022}, {"ccedil", 0xE7},   {"cent", 0xA2},	{"copy", 0xA9},
    {"deg", 0xB0},     {"eacute", 0xE9}, {"ecirc", 0xEA},    {"egrave", 0xE8},	{"euml", 0xEB},
    {"euro", 0x20AC},  {"gt", '>'},	 {"hellip", 0x2026}, {"iacute", 0xED},	{"icirc", 0xEE},
    {"iuml", 0xEF},    {"laquo", 0xAB},	 {"ldquo", 0x201C},  {"lsquo", 0x2018}, {"lt", '<'},
    {"mdash", 0x2014}, {"middot", 0xB7}, {"nbsp", 0xA0},     {"ndash", 0x2013}, {"ntilde", 0xF1},
    {"oacute", 0xF3},  {"ocirc", 0xF4},	 {"ouml", 0xF6},     {"para", 0xB6},	{"pound", 0xA3},
    {"quot", '"'},     {"raquo", 0xBB},	 {"rdquo", 0x201D},  {"reg", 0xAE},	{"rsquo", 0x2019},
    {"sect", 0xA7},    {"shy", 0xAD},	 {"szlig", 0xDF},    {"times", 0xD7},	{"trade", 0x2122},
    {"uacute", 0xFA},  {"ucirc", 0xFB},	 {"ugrave", 0xF9},   {"uuml", 0xFC},	{"yen", 0xA5},
};

static int entity_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct entity *)elem)->name);
}

/*
 * Decodes the entity at in[0] == '&' into out. Returns the bytes consumed,
 * 0 when it is not an entity (the caller emits '&'), <0 on -ENOMEM.
 */
static long entity_decode(const char *in, size_t len, struct extract_buf *out)
{
	char name[16];
	size_t i = 1, n = 0;
	unsigned long cp = 0;
	int ret;

	if (i < len && in[i] == '#') {
		bool hex = false;
		size_t digits = 0;

		i++;
		if (i < len && (in[i] == 'x' || in[i] == 'X')) {
			hex = true;
			i++;
		}
		for (; i < len && digits < 8; i++, digits++) {
			unsigned char c = (unsigned char)in[i];

			if (c >= '0' && c <= '9')
				cp = cp * (hex ? 16 : 10) + (c - '0');
			else if (hex && isxdigit(c))
				cp = cp * 16 + (unsigned long)(tolower(c) - 'a' + 10);
			else
				break;
		}
		if (!digits)
			return 0;
		if (i < len && in[i] == ';')
			i++;
		if (cp >= 0x80 && cp < 0xA0 && cp1252_high[cp - 0x80])
			cp = cp1252_high[cp - 0x80]; /* what browsers do */
		ret = buf_codepoint(out, cp);
		return ret ? ret : (long)i;
	}
	while (i < len && n < sizeof(name) - 1 && isalnum((unsigned char)in[i]))
		name[n++] = in[i++];
	name[n] = '\0';
	if (!n || i >= len || in[i] != ';') {
		const struct entity *e;

		/* a few legacy entities work without ';' in browsers */
		if (!n || !(strcmp(name, "amp") == 0 || strcmp(name, "lt") == 0 ||
			    strcmp(name, "gt") == 0 || strcmp(name, "nbsp") == 0 ||
			    strcmp(name, "quot") == 0))
			return 0;
		e = bsearch(name, entities, sizeof(entities) / sizeof(entities[0]),
			    sizeof(entities[0]), entity_cmp);
		ret = buf_codepoint(out, e->cp);
		return ret ? ret : (long)i;
	} else {
		const struct entity *e =
		    bsearch(name, entities, sizeof(entities) / sizeof(entities[0]),
			    sizeof(entities[0]), entity_cmp);

		if (!e)
			return 0;
		if (e->cp == 0xAD)
			return (long)i + 1; /* soft hyphen: nothing */
		ret = buf_codepoint(out, e->cp);
		return ret ? ret : (long)i + 1;
	}
}

/* ------------------------------------------------------------------ */
/* HTML */

static const char *memcasemem(const char *h, size_t hlen, const char *n)
{
	size_t nlen = strlen(n);

	if (nlen > hlen)
		return NULL;
	for (size_t i = 0; i + nlen <= hlen; i++)
		if (strncasecmp(h + i, n, nlen) == 0)
			return h + i;
	return NULL;
}

/* End of the tag starting at in[0] == '<': the index after '>' (quotes honoured). */
static size_t tag_end(const char *in, size_t len)
{
	char q = 0;

	for (size_t i = 1; i < len; i++) {
		if (q) {
			if (in[i] == q)
				q = 0;
		} else if (in[i] == '"' || in[i] == '\'') {
			q = in[i];
		} else if (in[i] == '>') {
			return i + 1;
		}
	}
	return len;
}

static bool name_in(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(name, *list) == 0)
			return true;
	return false;
}

static const char *const html_blocks[] = {
    "address", "article",  "aside",	 "blockquote", "br",	 "caption", "dd",   "div", "dl",
    "dt",      "fieldset", "figcaption", "figure",     "footer", "form",    "h1",   "h2",  "h3",
    "h4",      "h5",	   "h6",	 "header",     "hr",	 "li",	    "main", "nav", "ol",
    "p",       "pre",	   "section",	 "table",      "title",	 "tr",	    "ul",   NULL};
static const char *const html_paragraphs[] = {"p",  "h1",    "h2",    "h3",	    "h4",  "h5",
					      "h6", "title", "table", "blockquote", "pre", NULL};
static const char *const html_skipped[] = {"script", "style", "noscript", "template",
					   "svg",    "math",  NULL};

int extract_html(const char *in, size_t len, struct extract_buf *out)
{
	size_t i = 0;
	int ret;

	while (i < len && !out->full) {
		size_t j = i;

		while (j < len && in[j] != '<' && in[j] != '&')
			j++;
		if (j > i && (ret = buf_text(out, in + i, j - i)))
			return ret;
		if (j >= len)
			break;
		i = j;
		if (in[i] == '&') {
			long n = entity_decode(in + i, len - i, out);

			if (n < 0)
				return (int)n;
			if (n == 0) {
				if ((ret = buf_text(out, "&", 1)))
					return ret;
				n = 1;
			}
			i += (size_t)n;
			continue;
		}
		/* '<' */
		if (len - i >= 4 && memcmp(in + i, "<!--", 4) == 0) {
			const char *e = memmem(in + i + 4, len - i - 4, "-->", 3);

			i = e ? (size_t)(e - in) + 3 : len;
			continue;
		}
		if (len - i >= 9 && memcmp(in + i, "<![CDATA[", 9) == 0) {
			const char *e = memmem(in + i + 9, len - i - 9, "]]>", 3);
			size_t end = e ? (size_t)(e - in) : len;

			if ((ret = buf_text(out, in + i + 9, end - i - 9)))
				return ret;
			i = e ? end + 3 : len;
			continue;
		}
		if (i + 1 < len && (in[i + 1] == '!' || in[i + 1] == '?')) {
			i += tag_end(in + i, len - i);
			continue;
		}
		{
			size_t k = i + 1, n = 0;
			bool closing = false;
			char name[16];

			if (k < len && in[k] == '/') {
				closing = true;
				k++;
			}
			if (k >= len || !isalpha((unsigned char)in[k])) {
				if ((ret = buf_text(out, "<", 1)))
					return ret;
				i++;
				continue;
			}
			while (k < len && n < sizeof(name) - 1 &&
			       (isalnum((unsigned char)in[k]) || in[k] == '-'))
				name[n++] = (char)tolower((unsigned char)in[k++]);
			name[n] = '\0';
			i += tag_end(in + i, len - i);
			if (!closing && name_in(name, html_skipped)) {
				char endtag[20];
				const char *e;

				snprintf(endtag, sizeof(endtag), "</%s", name);
				e = memcasemem(in + i, len - i, endtag);
				i = e ? (size_t)(e - in) : len;
				if (e)
					i += tag_end(in + i, len - i);
				continue;
			}
			if (name_in(name, html_paragraphs))
				buf_newline(out, 2);
			else if (name_in(name, html_blocks))
				buf_newline(out, 1);
			else if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0)
				out->pend_sp = true;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* XML (DOCX, ODT, generic) */

int extract_xml(const char *in, size_t len, bool office, struct extract_buf *out)
{
	size_t i = 0, skip_depth = 0;
	int ret;

	while (i < len && !out->full) {
		size_t j = i;

		while (j < len && in[j] != '<' && in[j] != '&')
			j++;
		if (j > i && !skip_depth && (ret = buf_text(out, in + i, j - i)))
			return ret;
		if (j >= len)
			break;
		i = j;
		if (in[i] == '&') {
			long n = 0;

			if (!skip_depth) {
				n = entity_decode(in + i, len - i, out);
				if (n < 0)
					return (int)n;
			}
			if (n == 0) {
				if (!skip_depth && (ret = buf_text(out, "&", 1)))
					return ret;
				n = 1;
			}
			i += (size_t)n;
			continue;
		}
		if (len - i >= 4 && memcmp(in + i, "<!--", 4) == 0) {
			const char *e = memmem(in + i + 4, len - i - 4, "-->", 3);

			i = e ? (size_t)(e - in) + 3 : len;
			continue;
		}
		if (len - i >= 9 && memcmp(in + i, "<![CDATA[", 9) == 0) {
			const char *e = memmem(in + i + 9, len - i - 9, "]]>", 3);
			size_t end = e ? (size_t)(e - in) : len;

			if (!skip_depth && (ret = buf_text(out, in + i + 9, end - i - 9)))
				return ret;
			i = e ? end + 3 : len;
			continue;
		}
		{
			size_t k = i + 1, n = 0, end = i + tag_end(in + i, len - i);
			bool closing = false, empty = end >= 2 && in[end - 2] == '/';
			char name[32];
			const char *local;

			if (k < len && in[k] == '/') {
				closing = true;
				k++;
			}
			while (k < end && n < sizeof(name) - 1 && !is_ws((unsigned char)in[k]) &&
			       in[k] != '>' && in[k] != '/')
				name[n++] = in[k++];
			name[n] = '\0';
			i = end;
			if (!office) {
				out->pend_sp = true;
				continue;
			}
			if (strcmp(name, "w:instrText") == 0 || strcmp(name, "w:delText") == 0 ||
			    strcmp(name, "office:annotation") == 0) {
				if (!empty) {
					if (closing && skip_depth)
						skip_depth--;
					else if (!closing)
						skip_depth++;
				}
				continue;
			}
			local = strchr(name, ':');
			local = local ? local + 1 : name;
			if (closing && (strcmp(local, "p") == 0 || strcmp(local, "h") == 0))
				buf_newline(out, 2);
			else if (!closing &&
				 (strcmp(name, "w:br") == 0 || strcmp(name, "w:cr") == 0 ||
				  strcmp(name, "text:line-break") == 0))
				buf_newline(out, 1);
			else if (!closing &&
				 (strcmp(name, "w:tab") == 0 || strcmp(name, "text:tab") == 0 ||
				  strcmp(name, "text:s") == 0))
				out->pend_sp = true;
			else if (closing && (strcmp(name, "w:tc") == 0 ||
					     strcmp(name, "table:table-cell") == 0))
				out->pend_sp = true;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Markdown */

bool extract_looks_markdown(const char *in, size_t len)
{
	int headings = 0, fences = 0, links = 0, lists = 0;
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(in + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - in) : len, k = i;

		while (k < e && k - i < 3 && in[k] == ' ')
			k++;
		if (k < e && in[k] == '#') {
			size_t h = k;

			while (h < e && in[h] == '#')
				h++;
			if (h - k <= 6 && h < e && in[h] == ' ')
				headings++;
		}
		if (e - k >= 3 && (memcmp(in + k, "```", 3) == 0 || memcmp(in + k, "~~~", 3) == 0))
			fences++;
		if (e - k >= 2 && (in[k] == '-' || in[k] == '*' || in[k] == '+') &&
		    in[k + 1] == ' ')
			lists++;
		if (memmem(in + i, e - i, "](", 2))
			links++;
		i = e + 1;
	}
	return headings >= 2 || fences >= 2 || (headings >= 1 && (links || lists || fences)) ||
	       (links >= 2 && lists >= 1);
}

/* Inline Markdown of one line: emphasis, code, links, images, escapes, inline tags. */
static int md_inline(const char *s, size_t n, struct extract_buf *out)
{
	size_t i = 0;
	int ret;

	while (i < n && !out->full) {
		char c = s[i];

		if (c == '\\' && i + 1 < n && ispunct((unsigned char)s[i + 1])) {
			if ((ret = buf_text(out, s + i + 1, 1)))
				return ret;
			i += 2;
		} else if (c == '*' || c == '`' || c == '|' ||
			   (c == '~' && i + 1 < n && s[i + 1] == '~')) {
			if (c == '|')
				out->pend_sp = true;
			i += c == '~' ? 2 : 1;
		} else if (c == '_' && (i == 0 || i + 1 >= n || !isalnum((unsigned char)s[i - 1]) ||
					!isalnum((unsigned char)s[i + 1]))) {
			i++; /* emphasis, not snake_case */
		} else if (c == '[' || (c == '!' && i + 1 < n && s[i + 1] == '[')) {
			size_t open = c == '!' ? i + 2 : i + 1;
			const char *close = memchr(s + open, ']', n - open);

			if (!close) {
				if ((ret = buf_text(out, s + i, 1)))
					return ret;
				i++;
				continue;
			}
			/* the text (or alt) of the link, itself inline */
			if ((ret = md_inline(s + open, (size_t)(close - s) - open, out)))
				return ret;
			i = (size_t)(close - s) + 1;
			if (i < n && (s[i] == '(' || s[i] == '[')) {
				const char *e = memchr(s + i, s[i] == '(' ? ')' : ']', n - i);

				if (e)
					i = (size_t)(e - s) + 1;
			}
		} else if (c == '<' && i + 1 < n &&
			   (isalpha((unsigned char)s[i + 1]) || s[i + 1] == '/')) {
			const char *e = memchr(s + i, '>', n - i);

			if (e && memchr(s + i, ':', (size_t)(e - s) - i) &&
			    !memchr(s + i, ' ', (size_t)(e - s) - i)) {
				/* <https://autolink>: keep the address */
				if ((ret = buf_text(out, s + i + 1, (size_t)(e - s) - i - 1)))
					return ret;
			}
			i = e ? (size_t)(e - s) + 1 : i + 1;
		} else if (c == '&') {
			long k = entity_decode(s + i, n - i, out);

			if (k < 0)
				return (int)k;
			if (k == 0 && (ret = buf_text(out, "&", 1)))
				return ret;
			i += k ? (size_t)k : 1;
		} else {
			size_t j = i + 1;

			while (j < n && !strchr("\\*`|~_[!<&", s[j]))
				j++;
			if ((ret = buf_text(out, s + i, j - i)))
				return ret;
			i = j;
		}
	}
	return 0;
}

static bool md_rule(const char *s, size_t n)
{
	size_t marks = 0;
	char m = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ' || s[i] == '\t')
			continue;
		if ((s[i] != '-' && s[i] != '*' && s[i] != '_' && s[i] != '=') || (m && s[i] != m))
			return false;
		m = s[i];
		marks++;
	}
	return marks >= 3;
}

static bool md_table_rule(const char *s, size_t n)
{
	bool bar = false;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '|')
			bar = true;
		else if (!strchr("-: \t", s[i]))
			return false;
	}
	return bar;
}

int extract_markdown(const char *in, size_t len, struct extract_buf *out)
{
	bool code = false;
	size_t i = 0;
	int ret;

	while (i < len && !out->full) {
		const char *nl = memchr(in + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - in) : len, k = i;
		bool heading = false;

		if (e > i && in[e - 1] == '\r')
			e--;
		while (k < e && k - i < 3 && in[k] == ' ')
			k++;
		if (e - k >= 3 &&
		    (memcmp(in + k, "```", 3) == 0 || memcmp(in + k, "~~~", 3) == 0)) {
			code = !code;
			buf_newline(out, 2);
			i = nl ? (size_t)(nl - in) + 1 : len;
			continue;
		}
		if (code) {
			if ((ret = buf_text(out, in + i, e - i)))
				return ret;
			buf_newline(out, 1);
			i = nl ? (size_t)(nl - in) + 1 : len;
			continue;
		}
		if (k == e) {
			buf_newline(out, 2); /* blank line: paragraph */
		} else if (md_rule(in + k, e - k) || md_table_rule(in + k, e - k)) {
			buf_newline(out, 2);
		} else if (in[k] == '[' && memmem(in + k, e - k, "]:", 2)) {
			/* [ref]: url - a link definition, not text */
		} else {
			while (k < e && (in[k] == '>' || in[k] == ' '))
				k++; /* quotes */
			if (k < e && in[k] == '#') {
				while (k < e && in[k] == '#')
					k++;
				heading = true;
				buf_newline(out, 2);
			} else if (e - k >= 2 && strchr("-*+", in[k]) && in[k + 1] == ' ') {
				k += 2;
				buf_newline(out, 1);
			} else if (k < e && isdigit((unsigned char)in[k])) {
				size_t d = k;

				while (d < e && isdigit((unsigned char)in[d]))
					d++;
				if (d + 1 < e && (in[d] == '.' || in[d] == ')') &&
				    in[d + 1] == ' ') {
					k = d + 2;
					buf_newline(out, 1);
				}
			}
			if (e - k >= 4 && in[k] == '[' && strchr(" xX", in[k + 1]) &&
			    in[k + 2] == ']' && in[k + 3] == ' ')
				k += 4; /* task list */
			while (heading && e > k && (in[e - 1] == '#' || in[e - 1] == ' '))
				e--; /* closing #s */
			if ((ret = md_inline(in + k, e - k, out)))
				return ret;
			if (heading)
				buf_newline(out, 2);
			else if ((ret = buf_text(out, "\n", 1)))
				return ret;
		}
		i = nl ? (size_t)(nl - in) + 1 : len;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* zip */

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int pread_full(int fd, void *buf, size_t n, off_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EINVAL; /* shorter than the archive says */
		got += (size_t)r;
	}
	return 0;
}

/* Finds name in the central directory: method, sizes, local header offset. */
static int zip_find(int fd, const char *name, uint16_t *method, uint32_t *csize, uint32_t *usize,
		    uint32_t *lho, off_t *fsize)
{
	unsigned char *tail = NULL, *cd = NULL;
	size_t tlen, nlen = strlen(name);
	uint32_t cd_size, cd_off;
	uint16_t entries;
	struct stat st;
	long eocd = -1;
	int ret;

	if (fstat(fd, &st) < 0)
		return -errno;
	*fsize = st.st_size;
	if (st.st_size < 22)
		return -EINVAL;
	tlen = st.st_size < 22 + 65535 ? (size_t)st.st_size : 22 + 65535;
	tail = malloc(tlen);
	if (!tail)
		return -ENOMEM;
	if ((ret = pread_full(fd, tail, tlen, st.st_size - (off_t)tlen)))
		goto out;
	for (long p = (long)tlen - 22; p >= 0; p--) {
		if (le32(tail + p) == 0x06054b50) {
			eocd = p;
			break;
		}
	}
	ret = -EINVAL;
	if (eocd < 0)
		goto out;
	entries = le16(tail + eocd + 10);
	cd_size = le32(tail + eocd + 12);
	cd_off = le32(tail + eocd + 16);
	if (cd_off == 0xFFFFFFFFu || entries == 0xFFFF || cd_size > EXTRACT_ZIP_CD_MAX ||
	    (off_t)cd_off + (off_t)cd_size > st.st_size)
		goto out;
	cd = malloc(cd_size ? cd_size : 1);
	ret = -ENOMEM;
	if (!cd)
		goto out;
	if ((ret = pread_full(fd, cd, cd_size, cd_off)))
		goto out;
	ret = -ENOENT;
	for (size_t p = 0; p + 46 <= cd_size;) {
		size_t fn, ex, cm;

		if (le32(cd + p) != 0x02014b50) {
			ret = -EINVAL;
			break;
		}
		fn = le16(cd + p + 28);
		ex = le16(cd + p + 30);
		cm = le16(cd + p + 32);
		if (p + 46 + fn > cd_size) {
			ret = -EINVAL;
			break;
		}
		if (fn == nlen && memcmp(cd + p + 46, name, nlen) == 0) {
			*method = le16(cd + p + 10);
			*csize = le32(cd + p + 20);
			*usize = le32(cd + p + 24);
			*lho = le32(cd + p + 42);
			ret = (le16(cd + p + 8) & 1) || *csize == 0xFFFFFFFFu || *lho == 0xFFFFFFFFu
				  ? -EINVAL /* encrypted or zip64 */
				  : 0;
			break;
		}
		p += 46 + fn + ex + cm;
	}
out:
	free(cd);
	free(tail);
	return ret;
}

int extract_zip_member(int fd, const char *name, size_t max, char **data, size_t *len,
		       bool *truncated)
{
	uint32_t csize = 0, usize = 0, lho = 0;
	unsigned char lh[30], *in = NULL;
	struct extract_buf b = {.max = max};
	z_stream z = {0};
	bool zinit = false;
	uint16_t method = 0;
	off_t fsize = 0, pos;
	int ret;

	*data = NULL;
	*len = 0;
	*truncated = false;
	if ((ret = zip_find(fd, name, &method, &csize, &usize, &lho, &fsize)))
		return ret;
	if ((ret = pread_full(fd, lh, sizeof(lh), lho)))
		return ret;
	if (le32(lh) != 0x04034b50)
		return -EINVAL;
	pos = (off_t)lho + 30 + le16(lh + 26) + le16(lh + 28);
	if (pos + (off_t)csize > fsize)
		return -EINVAL;
	if (method != 0 && method != 8)
		return -EINVAL;
	in = malloc(EXTRACT_CHUNK);
	if (!in)
		return -ENOMEM;
	if (method == 8) {
		if (inflateInit2(&z, -15) != Z_OK) {
			ret = -ENOMEM;
			goto out;
		}
		zinit = true;
	}
	for (uint32_t done = 0; done < csize && !b.full;) {
		uint32_t n = csize - done < EXTRACT_CHUNK ? csize - done : EXTRACT_CHUNK;

		if ((ret = pread_full(fd, in, n, pos + done)))
			goto out;
		done += n;
		if (method == 0) {
			if ((ret = buf_raw(&b, (char *)in, n)))
				goto out;
			continue;
		}
		z.next_in = in;
		z.avail_in = n;
		while (z.avail_in && !b.full) {
			unsigned char outbuf[16384];
			int zr;

			z.next_out = outbuf;
			z.avail_out = sizeof(outbuf);
			zr = inflate(&z, Z_NO_FLUSH);
			if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
				ret = zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
				goto out;
			}
			if ((ret = buf_raw(&b, (char *)outbuf, sizeof(outbuf) - z.avail_out)))
				goto out;
			if (zr == Z_STREAM_END) {
				done = csize;
				break;
			}
			if (zr == Z_BUF_ERROR && z.avail_out)
				break;
		}
	}
	ret = 0;
	*truncated = b.full;
	if (!b.data && !(b.data = calloc(1, 1))) {
		ret = -ENOMEM;
		goto out;
	}
	*data = b.data;
	*len = b.len;
	b.data = NULL;
out:
	if (zinit)
		inflateEnd(&z);
	free(in);
	extract_buf_free(&b);
	return ret;
}

/* ------------------------------------------------------------------ */
/* the child */

static void child_write(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(0); /* the parent stopped reading: it has enough */
		s += w;
		n -= (size_t)w;
	}
}

static _Noreturn void child_fail(int code, const char *what, int err)
{
	char msg[EXTRACT_ERROR_SIZE];
	int n = err ? snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err))
		    : snprintf(msg, sizeof(msg), "%s", what);

	if (n > 0)
		child_write(2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
	_exit(code);
}

static void child_limit(int res, rlim_t soft, rlim_t hard)
{
	struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};

	if (setrlimit(res, &rl) < 0)
		child_fail(EXTRACT_EXIT_IO, "setrlimit", errno);
}

static enum kind kind_of(const char *mime)
{
	if (strcmp(mime, "application/pdf") == 0)
		return K_PDF;
	if (strcmp(mime, "text/html") == 0 || strcmp(mime, "application/xhtml+xml") == 0)
		return K_HTML;
	if (strcmp(mime,
		   "application/vnd.openxmlformats-officedocument.wordprocessingml.document") == 0)
		return K_DOCX;
	if (strcmp(mime, "application/vnd.oasis.opendocument.text") == 0)
		return K_ODT;
	if (strcmp(mime, "application/gzip") == 0 || strcmp(mime, "application/x-gzip") == 0)
		return K_GZIP;
	if (strcmp(mime, "text/xml") == 0 || strcmp(mime, "application/xml") == 0)
		return K_XML;
	if (strncmp(mime, "text/", 5) == 0 || strcmp(mime, "application/json") == 0 ||
	    strcmp(mime, "application/javascript") == 0 ||
	    strcmp(mime, "application/x-ndjson") == 0)
		return K_PLAIN;
	return K_NONE;
}

/* Reads up to cap bytes from fd (from offset 0) into a malloc'ed buffer. */
/* Grows a child's buffer (the child exits on failure, so no cleanup). */
static char *child_grow(char *b, size_t *sz, size_t cap)
{
	size_t nsz = *sz ? *sz * 2 : EXTRACT_CHUNK;

	if (nsz > cap)
		nsz = cap;
	b = realloc(b, nsz + 1);
	if (!b)
		child_fail(EXTRACT_EXIT_NOMEM, "out of memory", 0);
	*sz = nsz;
	return b;
}

static char *child_read(int fd, size_t cap, size_t *len)
{
	size_t n = 0, sz = 0;
	char *b = child_grow(NULL, &sz, cap);

	for (;;) {
		ssize_t r;

		if (n == cap)
			break;
		if (n == sz)
			b = child_grow(b, &sz, cap);
		r = pread(fd, b + n, sz - n, (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			child_fail(EXTRACT_EXIT_IO, "read", errno);
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return b;
}

static char *child_gunzip(int fd, size_t cap, size_t *len)
{
	int dfd = dup(fd);
	size_t n = 0, sz = 0;
	char *b = child_grow(NULL, &sz, cap);
	gzFile gz;

	if (dfd < 0 || lseek(dfd, 0, SEEK_SET) < 0)
		child_fail(EXTRACT_EXIT_IO, "dup", errno);
	gz = gzdopen(dfd, "rb");
	if (!gz)
		child_fail(EXTRACT_EXIT_NOMEM, "gzdopen", 0);
	while (n < cap) {
		unsigned want;
		int r, zerr;

		if (n == sz)
			b = child_grow(b, &sz, cap);
		want = sz - n > (1u << 30) ? (1u << 30) : (unsigned)(sz - n);
		r = gzread(gz, b + n, want);
		if (r < 0) {
			const char *m = gzerror(gz, &zerr);

			child_fail(zerr == Z_MEM_ERROR ? EXTRACT_EXIT_NOMEM : EXTRACT_EXIT_BAD,
				   zerr == Z_ERRNO ? "gzip: read error"
				   : m		   ? m
						   : "gzip: corrupt",
				   0);
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	/* a truncated gzip stream still yields what it has */
	gzclose(gz);
	*len = n;
	return b;
}

static size_t input_cap(const struct extract_limits *lim, enum kind k)
{
	size_t cap;

	if (k == K_PLAIN)
		return lim->text_max + 4;
	cap = lim->text_max > EXTRACT_INPUT_MAX / EXTRACT_INPUT_FACTOR
		  ? EXTRACT_INPUT_MAX
		  : lim->text_max * EXTRACT_INPUT_FACTOR;
	return cap < EXTRACT_INPUT_MIN ? EXTRACT_INPUT_MIN : cap;
}

/* Converts data of kind k and writes the text to stdout. */
static _Noreturn void child_convert(const struct extract_limits *lim, enum kind k, char *data,
				    size_t len)
{
	struct extract_buf fixed = {.max = 2 * len + 4}, out = {.max = lim->text_max};
	int ret = 0;

	if (k != K_PLAIN) {
		/* markup: repair the encoding first, then convert */
		size_t p = 0;

		while (p < len) {
			size_t s = extract_utf8_seq((unsigned char *)data + p, len - p);

			if (!s ||
			    ((unsigned char)data[p] < 0x20 && data[p] != '\n' && data[p] != '\t'))
				break;
			p += s;
		}
		if (p < len) {
			if (extract_plain(data, len, &fixed))
				child_fail(EXTRACT_EXIT_NOMEM, "out of memory", 0);
			free(data);
			data = fixed.data;
			len = fixed.len;
			fixed.data = NULL;
		}
	}
	switch (k) {
	case K_PLAIN:
		ret = extract_plain(data, len, &out);
		break;
	case K_MARKDOWN:
		ret = extract_markdown(data, len, &out);
		break;
	case K_HTML:
		ret = extract_html(data, len, &out);
		break;
	case K_XML:
		ret = extract_xml(data, len, false, &out);
		break;
	case K_DOCX:
	case K_ODT:
		ret = extract_xml(data, len, true, &out);
		break;
	default:
		break;
	}
	if (ret)
		child_fail(EXTRACT_EXIT_NOMEM, "out of memory", 0);
	if (out.len)
		child_write(1, out.data, out.len);
	free(data);
	extract_buf_free(&out);
	_exit(0);
}

static _Noreturn void child_pdf(const struct extract_limits *lim, const char *path)
{
	static const char *const tools[] = {"/usr/bin/pdftotext", "/usr/local/bin/pdftotext",
					    "/bin/pdftotext", NULL};
	char *envp[] = {"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", NULL};
	char arg[PATH_MAX + 3];
	const char *tool = NULL;

	for (int i = 0; tools[i]; i++) {
		if (access(tools[i], X_OK) == 0) {
			tool = tools[i];
			break;
		}
	}
	if (!tool)
		child_fail(EXTRACT_EXIT_NOTOOL, "pdftotext not found (install poppler-utils)", 0);
	/* a name that starts with '-' must not read as an option */
	snprintf(arg, sizeof(arg), "%s%s", path[0] == '-' ? "./" : "", path);
	if (EXTRACT_SANITIZED && lim->mem_limit)
		child_limit(RLIMIT_AS, (rlim_t)lim->mem_limit, (rlim_t)lim->mem_limit);
	{
		char *argv[] = {"pdftotext", "-enc", "UTF-8", "-eol", "unix", arg, "-", NULL};

		execve(tool, argv, envp);
	}
	child_fail(EXTRACT_EXIT_NOTOOL, "exec pdftotext", errno);
}

static _Noreturn void child_main(const struct extract_limits *lim, const char *path, int datafd,
				 int errfd)
{
	char mime[EXTRACT_MIME_SIZE], inner[EXTRACT_MIME_SIZE];
	const char *m;
	sigset_t all;
	magic_t mg;
	enum kind k;
	size_t len;
	char *data;
	int fd, nul;

	/* signals as a fresh process has them (the daemon may block or ignore some) */
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	nul = open("/dev/null", O_RDONLY);
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(datafd, 1) < 0 || dup2(errfd, 2) < 0)
		_exit(EXTRACT_EXIT_IO);
	close_range(3, ~0U, 0);

	child_limit(RLIMIT_CORE, 0, 0);
	child_limit(RLIMIT_FSIZE, 0, 0);
	if (lim->cpu_limit > 0) {
		rlim_t s = (rlim_t)ceil(lim->cpu_limit);

		child_limit(RLIMIT_CPU, s, s + 1);
	}
	if (!EXTRACT_SANITIZED && lim->mem_limit)
		child_limit(RLIMIT_AS, (rlim_t)lim->mem_limit, (rlim_t)lim->mem_limit);

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		child_fail(EXTRACT_EXIT_IO, path, errno);
	mg = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS);
	if (!mg)
		child_fail(EXTRACT_EXIT_NOMEM, "libmagic", errno);
	if (magic_load(mg, NULL) < 0)
		child_fail(EXTRACT_EXIT_IO, "libmagic: cannot load its database", 0);
	m = magic_descriptor(mg, fd);
	snprintf(mime, sizeof(mime), "%s", m ? m : "application/octet-stream");
	k = kind_of(mime);
	if (k == K_NONE && strcmp(mime, "application/zip") != 0 &&
	    strcmp(mime, "application/octet-stream") != 0) {
		child_write(1, mime, strlen(mime));
		child_write(1, "\n", 1);
		_exit(0);
	}
	if (k == K_NONE || k == K_DOCX || k == K_ODT) {
		/* a zip: tell DOCX from ODT by their members, whatever magic said */
		bool trunc;
		int r = extract_zip_member(fd, "word/document.xml", input_cap(lim, K_DOCX), &data,
					   &len, &trunc);

		if (r == 0) {
			k = K_DOCX;
			if (kind_of(mime) != K_DOCX)
				snprintf(mime, sizeof(mime), "%s",
					 "application/vnd.openxmlformats-officedocument."
					 "wordprocessingml.document");
		} else if (r == -ENOENT || (r == -EINVAL && k == K_NONE)) {
			r = extract_zip_member(fd, "content.xml", input_cap(lim, K_ODT), &data,
					       &len, &trunc);
			if (r == 0 && k == K_NONE) {
				k = K_ODT;
				snprintf(mime, sizeof(mime), "%s",
					 "application/vnd.oasis.opendocument.text");
			}
		}
		child_write(1, mime, strlen(mime));
		child_write(1, "\n", 1);
		if (r == -ENOMEM)
			child_fail(EXTRACT_EXIT_NOMEM, "out of memory", 0);
		if (r == 0 && k != K_NONE)
			child_convert(lim, k, data, len);
		if (k == K_NONE)
			_exit(0); /* another kind of zip or binary: no text */
		child_fail(r == -EIO ? EXTRACT_EXIT_IO : EXTRACT_EXIT_BAD,
			   r == -ENOENT	  ? "no document part in the archive"
			   : r == -EINVAL ? "corrupt, encrypted or zip64 archive"
					  : "cannot read the archive",
			   r == -EIO ? EIO : 0);
	}
	if (k == K_PLAIN && strcmp(mime, "text/plain") == 0) {
		char sniff[EXTRACT_SNIFF];
		ssize_t n = pread(fd, sniff, sizeof(sniff), 0);

		if (n > 0 && extract_looks_markdown(sniff, (size_t)n)) {
			k = K_MARKDOWN;
			snprintf(mime, sizeof(mime), "%s", "text/markdown");
		}
	}
	child_write(1, mime, strlen(mime));
	child_write(1, "\n", 1);
	if (k == K_PDF)
		child_pdf(lim, path);
	if (k == K_GZIP) {
		data = child_gunzip(fd, input_cap(lim, K_HTML), &len);
		m = magic_buffer(mg, data, len < (1u << 20) ? len : (1u << 20));
		snprintf(inner, sizeof(inner), "%s", m ? m : "application/octet-stream");
		k = kind_of(inner);
		if (k == K_PLAIN && strcmp(inner, "text/plain") == 0 &&
		    extract_looks_markdown(data, len < EXTRACT_SNIFF ? len : EXTRACT_SNIFF))
			k = K_MARKDOWN;
		if (k != K_PLAIN && k != K_MARKDOWN && k != K_HTML && k != K_XML)
			_exit(0); /* a compressed binary, PDF or archive: no text */
		if (k == K_PLAIN && len > input_cap(lim, K_PLAIN))
			len = input_cap(lim, K_PLAIN);
		child_convert(lim, k, data, len);
	}
	if (k == K_NONE)
		_exit(0);
	data = child_read(fd, input_cap(lim, k), &len);
	child_convert(lim, k, data, len);
	_exit(0);
}

/* ------------------------------------------------------------------ */
/* the parent */

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Cleans the final text in place: NUL and \f, invalid UTF-8 becomes '?'. */
static void text_clean(char *t, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t s = extract_utf8_seq((unsigned char *)t + i, len - i);

		if (!s) {
			t[i++] = '?';
			continue;
		}
		if (t[i] == '\0')
			t[i] = ' ';
		else if (t[i] == '\f')
			t[i] = '\n';
		i += s;
	}
}

struct collect {
	char hdr[EXTRACT_MIME_SIZE];
	size_t hdr_len;
	bool hdr_done;
	char *text;
	size_t len, cap, max;
	bool full;
	char err[EXTRACT_ERRBUF];
	size_t err_len;
};

/* Takes n bytes from the data pipe. 0 or -ENOMEM. */
static int collect_data(struct collect *c, const char *p, size_t n)
{
	while (n && !c->hdr_done) {
		if (*p == '\n') {
			c->hdr_done = true;
		} else if (c->hdr_len < sizeof(c->hdr) - 1) {
			c->hdr[c->hdr_len++] = *p;
			c->hdr[c->hdr_len] = '\0';
		}
		p++;
		n--;
	}
	if (!n)
		return 0;
	if (c->len + n > c->max + 4) {
		n = c->max + 4 - c->len; /* + 4: finish the last character */
		c->full = true;
	}
	if (c->len + n + 1 > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 65536;
		char *t;

		while (cap < c->len + n + 1)
			cap *= 2;
		if (cap > c->max + 5)
			cap = c->max + 5;
		t = realloc(c->text, cap);
		if (!t)
			return -ENOMEM;
		c->text = t;
		c->cap = cap;
	}
	memcpy(c->text + c->len, p, n);
	c->len += n;
	return 0;
}

static void set_error(struct extract_result *out, const char *prefix, const char *detail)
{
	snprintf(out->error, sizeof(out->error), "%s%s", prefix, detail);
}

/* The most telling line of the child's stderr: the last "Error" line, else the last line. */
static const char *err_line(struct collect *c)
{
	char *best = NULL, *save = NULL;

	c->err[c->err_len] = '\0';
	for (char *l = strtok_r(c->err, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (!best || strstr(l, "Error") || !strstr(best, "Error"))
			best = l;
	return best ? best : "no message";
}

/* Reaps pid (retrying on EINTR). */
static int reap(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int extract_file(const struct extract_limits *lim, const char *path, struct extract_result *out)
{
	int dp[2] = {-1, -1}, ep[2] = {-1, -1}, status = 0, ret = 0;
	struct collect *c;
	bool timed_out = false, killed = false;
	double deadline;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	snprintf(out->mime, sizeof(out->mime), "%s", "application/octet-stream");
	if (!lim || !path || !lim->text_max)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->max = lim->text_max;
	if (pipe2(dp, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
		ret = -errno;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out;
	}
	if (pid == 0)
		child_main(lim, path, dp[1], ep[1]);
	close(dp[1]);
	close(ep[1]);
	dp[1] = ep[1] = -1;
	deadline = lim->wall_limit > 0 ? now_mono() + lim->wall_limit : 0;

	while (dp[0] >= 0 || ep[0] >= 0) {
		struct pollfd pf[2] = {{.fd = dp[0], .events = POLLIN},
				       {.fd = ep[0], .events = POLLIN}};
		int timeout = -1, pr;

		if (deadline) {
			double left = deadline - now_mono();

			if (left <= 0) {
				timed_out = true;
				break;
			}
			timeout = (int)ceil(left * 1000);
		}
		pr = poll(pf, 2, timeout);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			ret = -errno;
			break;
		}
		for (int i = 0; i < 2; i++) {
			char buf[16384];
			ssize_t r;

			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(pf[i].fd, buf, sizeof(buf));
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0) {
				close(pf[i].fd);
				if (i == 0)
					dp[0] = -1;
				else
					ep[0] = -1;
				continue;
			}
			if (i == 1) {
				size_t room = sizeof(c->err) - 1 - c->err_len;

				if ((size_t)r > room)
					r = (ssize_t)room;
				memcpy(c->err + c->err_len, buf, (size_t)r);
				c->err_len += (size_t)r;
			} else if ((ret = collect_data(c, buf, (size_t)r))) {
				break;
			}
		}
		if (ret || c->full)
			break;
	}
	if (timed_out || ret || c->full) {
		kill(pid, SIGKILL);
		killed = true;
	}
	if (reap(pid, &status) < 0 && !ret)
		ret = -ECHILD;
	if (c->hdr_done && c->hdr_len)
		snprintf(out->mime, sizeof(out->mime), "%s", c->hdr);
	if (ret)
		goto out;
	if (timed_out) {
		snprintf(out->error, sizeof(out->error),
			 "extraction exceeded the wall-clock limit of %g s", lim->wall_limit);
		ret = -EINVAL;
	} else if (killed) {
		/* c->full: we have all the text we keep */
	} else if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);

		if (sig == SIGXCPU || (sig == SIGKILL && lim->cpu_limit > 0))
			snprintf(out->error, sizeof(out->error),
				 "extraction exceeded the CPU limit of %g s", lim->cpu_limit);
		else
			snprintf(out->error, sizeof(out->error), "extractor crashed with SIG%s%s",
				 sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
				 lim->mem_limit ? ", likely at the memory limit" : "");
		ret = -EINVAL;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		int code = WEXITSTATUS(status);

		if (code == EXTRACT_EXIT_NOMEM) {
			snprintf(out->error, sizeof(out->error),
				 "extraction exceeded the memory limit (%s)", err_line(c));
			ret = -EINVAL;
		} else if (code == EXTRACT_EXIT_IO) {
			set_error(out, "cannot read the document: ", err_line(c));
			ret = -EIO;
		} else if (code == EXTRACT_EXIT_NOTOOL) {
			set_error(out, "", err_line(c));
			ret = -ENOENT;
		} else if (code == EXTRACT_EXIT_BAD) {
			set_error(out, "", err_line(c));
			ret = -EINVAL;
		} else {
			char line[200];

			snprintf(line, sizeof(line), "%s", err_line(c));
			snprintf(out->error, sizeof(out->error), "pdftotext failed (exit %d): %s",
				 code, line);
			ret = -EINVAL;
		}
	}
	if (ret)
		goto out;
	out->truncated = c->full;
	if (c->len > lim->text_max) {
		size_t n = lim->text_max;

		while (n > 0 && ((unsigned char)c->text[n] & 0xC0) == 0x80)
			n--;
		c->len = n;
		out->truncated = true;
	}
	if (c->len) {
		text_clean(c->text, c->len);
		c->text[c->len] = '\0';
		out->text = c->text;
		out->text_len = c->len;
		c->text = NULL;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (dp[i] >= 0)
			close(dp[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	if (c)
		free(c->text);
	free(c);
	return ret;
}

void extract_result_free(struct extract_result *r)
{
	if (!r)
		return;
	free(r->text);
	memset(r, 0, sizeof(*r));
}
