/*
 * extract.c - MIME detection and text extraction (see extract.h), the only
 * file that includes libmagic.
 *
 * Why a helper process, and why a fresh exec of our own binary: every
 * parser of untrusted bytes - libmagic, zlib, our HTML/XML/zip code,
 * poppler - runs in a separate process under setrlimit (RLIMIT_CPU,
 * RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_CORE = 0), with no descriptors but
 * /dev/null and two pipes, and the caller kills it at the wall-clock limit.
 * A loop, a memory bomb or a crash costs one document. The caller is a
 * multi-threaded daemon, and nothing may run in a fork()ed copy of a
 * threaded process but async-signal-safe calls: a lock another thread held
 * at fork time stays locked in the child forever. (It happened: GCC 12's
 * ASan allocator does not reset its locks at fork, and forked extraction
 * children hung in malloc until the wall-clock limit failed their
 * documents; and forking a large process costs page-table copies.) So, as
 * git and systemd do, we start a new program with posix_spawn - glibc's
 * uses clone(CLONE_VM|CLONE_VFORK) and runs only exec in the child - and
 * that program is docvault itself (`docvault __extract`, the protocol is in
 * extract.h): no second program to install, and the helper runs the very
 * converters below. The helper sets its limits on itself before it opens
 * the document, then exec's pdftotext for a PDF (its stdout is the text
 * pipe) or converts the document in memory with the pure converters.
 *
 * The helper's environment is not the daemon's: it gets PATH and only the
 * variables that shape how it runs (sanitizer options, libmagic's MAGIC,
 * LD_LIBRARY_PATH), never a secret of the daemon's (AWS_*, PGPASSWORD).
 * Its signal dispositions and mask are reset to the defaults.
 *
 * The extraction server (`docvault __extract --serve`, extract_server_*())
 * keeps that isolation without paying a process start per document: see
 * "the extraction server" below for its two levels (a server that never
 * reads a document, and a worker it forks that extracts documents one
 * after another, each under its own limits, and is replaced after anything
 * but a clean end). Measured on the 2-CPU development VM, 1,000 text
 * documents of 2-20 KiB: a helper each, 22 documents/s; the server,
 * 185-250 documents/s (most of what is left is libmagic's rules).
 *
 * Parent side: extract_file() polls both pipes, parses the header, keeps
 * text_max bytes of text (then kills the helper: enough text), at most
 * EXTRACT_ERRBUF bytes of error text, kills it at the wall-clock limit,
 * reaps it (or, on a server, waits for its DONE with the wait status; a
 * wall-clock kill is a CANCEL), and turns its exit status into an errno and
 * a reason. Without
 * the banner the program is not a docvault helper (a wrong DOCVAULT_HELPER,
 * an older docvault): -ENOENT, a transient failure, never a bad document.
 *
 * Sanitizers: ASan and TSan reserve terabytes of address space at start, so
 * a sanitized helper cannot set RLIMIT_AS on itself and keep running; there
 * it is set only right before exec'ing pdftotext. Release builds limit both.
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
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

#define EXTRACT_ERRBUF	     1024
#define EXTRACT_CHUNK	     (64 * 1024)
#define EXTRACT_INPUT_FACTOR 16
#define EXTRACT_INPUT_MIN    (1u << 20)
#define EXTRACT_INPUT_MAX    (512u << 20)
#define EXTRACT_SNIFF	     (64 * 1024)
#define EXTRACT_ZIP_CD_MAX   (64u << 20)
#define EXTRACT_ENV_MAX	     16

extern char **environ;

enum kind { K_NONE, K_PLAIN, K_MARKDOWN, K_HTML, K_XML, K_PDF, K_DOCX, K_ODT, K_GZIP };

/*
 * The extraction server's messages on its SOCK_SEQPACKET socket (one
 * message per send; a RUN carries the two pipes as SCM_RIGHTS). The server
 * says HELLO once; then, one at a time, the client sends RUN (CANCEL ends
 * it early) and the server answers DONE with the wait status of the
 * grandchild, or NOFORK with the errno of a failed fork().
 */
#define SERVE_MAGIC    0x31787664u /* "dvx1" */
#define SERVE_VERSION  1
#define SERVE_HELLO_S  10 /* seconds a new server has to say HELLO, at least */
#define SERVE_CANCEL_S 5  /* seconds to wait for DONE after a cancel */
enum serve_kind { SERVE_HELLO = 1, SERVE_RUN, SERVE_CANCEL, SERVE_DONE, SERVE_NOFORK };
struct serve_msg {
	uint32_t magic;	   /* SERVE_MAGIC */
	uint32_t kind;	   /* enum serve_kind */
	int32_t value;	   /* HELLO: SERVE_VERSION; DONE: wait status; NOFORK: errno */
	uint32_t path_len; /* RUN: strlen(path) */
	double cpu_limit;  /* RUN: the limits, as in struct extract_limits */
	uint64_t mem_limit;
	uint64_t text_max;
	char path[PATH_MAX]; /* RUN: NUL-terminated; only path_len + 1 bytes are sent */
};
#define SERVE_HEAD offsetof(struct serve_msg, path)

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
/* the helper: `docvault __extract` (runs in a process of its own) */

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

/* Writes the header line "name[ value]\n". */
static void child_header(const char *name, const char *value)
{
	child_write(1, name, strlen(name));
	if (value) {
		child_write(1, " ", 1);
		child_write(1, value, strlen(value));
	}
	child_write(1, "\n", 1);
}

/* The reason on stderr, then _exit(code): no atexit, nothing to clean up. */
static _Noreturn void child_fail(int code, const char *what, int err)
{
	char msg[EXTRACT_ERROR_SIZE];
	int n = err ? snprintf(msg, sizeof(msg), "%s: %s\n", what, strerror(err))
		    : snprintf(msg, sizeof(msg), "%s\n", what);

	if (n > 0)
		child_write(2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
	_exit(code);
}

/* Sets a limit, never above the hard limit we were started with. */
static void child_limit(int res, rlim_t soft, rlim_t hard)
{
	struct rlimit rl;

	if (getrlimit(res, &rl) < 0)
		child_fail(EXTRACT_EXIT_SETUP, "getrlimit", errno);
	if (rl.rlim_max != RLIM_INFINITY) {
		if (hard > rl.rlim_max)
			hard = rl.rlim_max;
		if (soft > hard)
			soft = hard;
	}
	rl.rlim_cur = soft;
	rl.rlim_max = hard;
	if (setrlimit(res, &rl) < 0)
		child_fail(EXTRACT_EXIT_SETUP, "setrlimit", errno);
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

/* Grows a helper's buffer (the helper exits on failure, so no cleanup). */
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

/* Reads up to cap bytes from fd (from offset 0); *more: the file holds more. */
static char *child_read(int fd, size_t cap, size_t *len, bool *more)
{
	size_t n = 0, sz = 0;
	char *b = child_grow(NULL, &sz, cap);
	char probe;

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
	*more = n == cap && pread(fd, &probe, 1, (off_t)n) == 1;
	*len = n;
	return b;
}

static char *child_gunzip(int fd, size_t cap, size_t *len, bool *more)
{
	int dfd = dup(fd);
	size_t n = 0, sz = 0;
	char *b = child_grow(NULL, &sz, cap);
	char probe;
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
	*more = n == cap && gzread(gz, &probe, 1) == 1;
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

/*
 * Converts data of kind k (taking it over) and writes the header's end and
 * the text to stdout. more: the input was cut, so the text is too.
 */
static void child_convert(const struct extract_limits *lim, enum kind k, char *data, size_t len,
			  bool more)
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
	free(data);
	if (out.len) {
		if (out.full || more)
			child_header("truncated", NULL);
		child_header("text", NULL);
		child_write(1, out.data, out.len);
	}
	extract_buf_free(&out);
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
	child_header("text", NULL);
	{
		/* in a server's worker only the soft CPU limit was set: a hard one, as the helper's
		 */
		struct rlimit rl;

		if (getrlimit(RLIMIT_CPU, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
		    (rl.rlim_max == RLIM_INFINITY || rl.rlim_cur < rl.rlim_max))
			child_limit(RLIMIT_CPU, rl.rlim_cur, rl.rlim_cur + 1);
	}
	if (EXTRACT_SANITIZED && lim->mem_limit)
		child_limit(RLIMIT_AS, (rlim_t)lim->mem_limit, (rlim_t)lim->mem_limit);
	{
		char *argv[] = {"pdftotext", "-enc", "UTF-8", "-eol", "unix", arg, "-", NULL};

		execve(tool, argv, envp);
	}
	child_fail(EXTRACT_EXIT_NOTOOL, "exec pdftotext", errno);
}

/* libmagic with its database loaded, or NULL (errno set; *what says which step failed). */
static magic_t child_magic(const char **what)
{
	magic_t mg = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS);

	*what = "libmagic";
	if (!mg)
		return NULL;
	if (magic_load(mg, NULL) < 0) {
		*what = "libmagic: cannot load its database";
		magic_close(mg);
		errno = 0;
		return NULL;
	}
	return mg;
}

/*
 * Extracts the document open at fd with libmagic mg (loaded; left open: the
 * process ends soon after); returns the exit status or exits.
 */
static int child_document(const struct extract_limits *lim, const char *path, int fd, magic_t mg)
{
	char mime[EXTRACT_MIME_SIZE], inner[EXTRACT_MIME_SIZE];
	const char *m;
	bool more = false;
	enum kind k;
	size_t len;
	char *data;

	m = magic_descriptor(mg, fd);
	snprintf(mime, sizeof(mime), "%s", m ? m : "application/octet-stream");
	k = kind_of(mime);
	if (k == K_NONE && strcmp(mime, "application/zip") != 0 &&
	    strcmp(mime, "application/octet-stream") != 0) {
		child_header("mime", mime);
		return 0;
	}
	if (k == K_NONE || k == K_DOCX || k == K_ODT) {
		/* a zip: tell DOCX from ODT by their members, whatever magic said */
		int r = extract_zip_member(fd, "word/document.xml", input_cap(lim, K_DOCX), &data,
					   &len, &more);

		if (r == 0) {
			k = K_DOCX;
			if (kind_of(mime) != K_DOCX)
				snprintf(mime, sizeof(mime), "%s",
					 "application/vnd.openxmlformats-officedocument."
					 "wordprocessingml.document");
		} else if (r == -ENOENT || (r == -EINVAL && k == K_NONE)) {
			r = extract_zip_member(fd, "content.xml", input_cap(lim, K_ODT), &data,
					       &len, &more);
			if (r == 0 && k == K_NONE) {
				k = K_ODT;
				snprintf(mime, sizeof(mime), "%s",
					 "application/vnd.oasis.opendocument.text");
			}
		}
		child_header("mime", mime);
		if (r == -ENOMEM)
			child_fail(EXTRACT_EXIT_NOMEM, "out of memory", 0);
		if (r == 0 && k != K_NONE) {
			child_convert(lim, k, data, len, more);
			return 0;
		}
		if (r == 0)
			free(data);
		if (k == K_NONE)
			return 0; /* another kind of zip or binary: no text */
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
	child_header("mime", mime);
	if (k == K_PDF)
		child_pdf(lim, path);
	if (k == K_GZIP) {
		data = child_gunzip(fd, input_cap(lim, K_HTML), &len, &more);
		m = magic_buffer(mg, data, len < (1u << 20) ? len : (1u << 20));
		snprintf(inner, sizeof(inner), "%s", m ? m : "application/octet-stream");
		k = kind_of(inner);
		if (k == K_PLAIN && strcmp(inner, "text/plain") == 0 &&
		    extract_looks_markdown(data, len < EXTRACT_SNIFF ? len : EXTRACT_SNIFF))
			k = K_MARKDOWN;
		if (k != K_PLAIN && k != K_MARKDOWN && k != K_HTML && k != K_XML) {
			free(data);
			return 0; /* a compressed binary, PDF or archive: no text */
		}
		if (k == K_PLAIN && len > input_cap(lim, K_PLAIN)) {
			len = input_cap(lim, K_PLAIN);
			more = true;
		}
		child_convert(lim, k, data, len, more);
		return 0;
	}
	if (k == K_NONE)
		return 0;
	data = child_read(fd, input_cap(lim, k), &len, &more);
	child_convert(lim, k, data, len, more);
	return 0;
}

/*
 * One extraction, in a process of its own with stdout and stderr the
 * parent's pipes: the banner, the limits, then the document; never
 * returns. mg: libmagic loaded before (the server's), or NULL to load it
 * here, under the limits.
 */
static _Noreturn void child_run(const struct extract_limits *lim, uint64_t fsize, const char *path,
				magic_t mg)
{
	const char *what;
	int fd, code;

	child_header(EXTRACT_BANNER, NULL);
	/* limits first: nothing below runs without them */
	child_limit(RLIMIT_CORE, 0, 0);
	child_limit(RLIMIT_FSIZE, (rlim_t)fsize, (rlim_t)fsize);
	if (lim->cpu_limit > 0) {
		rlim_t s = (rlim_t)ceil(lim->cpu_limit);

		child_limit(RLIMIT_CPU, s, s + 1);
	}
	if (!EXTRACT_SANITIZED && lim->mem_limit)
		child_limit(RLIMIT_AS, (rlim_t)lim->mem_limit, (rlim_t)lim->mem_limit);

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		child_fail(EXTRACT_EXIT_IO, path, errno);
	if (!mg && !(mg = child_magic(&what)))
		child_fail(errno ? EXTRACT_EXIT_NOMEM : EXTRACT_EXIT_SETUP, what, errno);
	code = child_document(lim, path, fd, mg);
	close(fd);
	/*
	 * _exit, not return: no atexit work in a process that only wrote to
	 * pipes. Under ASan that skips LeakSanitizer's exit scan, a third of a
	 * sanitized helper's CPU time; test_extract leak-checks the converters
	 * in its own process instead.
	 */
	_exit(code);
}

/* ------------------------------------------------------------------ */
/* the extraction server: `docvault __extract --serve` */

/*
 * Why two levels. Process creation is what made extraction slow: a fresh
 * helper per document costs an exec, the dynamic linking of every library
 * docvault uses and libmagic's first detection (it compiles its regular
 * expressions lazily: ~100 ms), and even a bare fork() of a small process
 * costs milliseconds on a virtual machine, plus a copy-on-write fault for
 * every page libmagic then writes. So:
 *
 *   - the server (this loop) is started once per worker thread; it loads
 *     and warms libmagic, and never reads a document itself;
 *   - it forks an extraction *worker* (the grandchild of the daemon) that
 *     extracts document after document, each under its own limits: CPU
 *     (the soft RLIMIT_CPU is moved to what it used so far plus the
 *     document's allowance), memory (RLIMIT_AS, fixed for the worker's
 *     life), no file writes (RLIMIT_FSIZE 0), no core; the wall clock is
 *     the client's, which cancels;
 *   - anything but a clean end - a crash, a limit, a cancel, a document
 *     that is bad (the worker exits with its status, as the one-shot helper
 *     does), a PDF (the worker exec's pdftotext) - ends that worker, and
 *     the next document gets a fresh fork of the server. A document can
 *     only fail itself; the worker is also replaced after
 *     SERVE_WORKER_DOCS documents and when the memory limit asked changes.
 *
 * The server answers the client as if each document had its own process:
 * DONE carries a wait status (a clean end is exit 0).
 */
#define SERVE_WORKER_DOCS 1000

struct serve {
	int sock;	/* the client: descriptor 0 */
	magic_t mg;	/* loaded and warmed; NULL if that failed (each worker retries) */
	pid_t wpid;	/* the worker, 0 if none */
	int wsock;	/* our end of its socket */
	int wpidfd;	/* its pidfd, or -1 (then polled with waitpid) */
	uint64_t wmem;	/* the memory limit it runs under */
	unsigned wdocs; /* documents it finished */
};

/* Receives one message and up to two descriptors; returns its length, 0 at EOF, -1. */
static ssize_t serve_recv(int sock, struct serve_msg *m, int fds[2], int *nfds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(2 * sizeof(int))];
	} cb;
	struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b, .msg_controllen = sizeof(cb.b)};
	ssize_t n;

	*nfds = 0;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (*nfds < 2)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -1;
	return n;
}

/* Sends len bytes of m with the descriptors fds[0..nfds). 0 or -1 (errno). */
static int serve_sendmsg(int sock, const struct serve_msg *m, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(2 * sizeof(int))];
	} cb;
	struct iovec iov = {.iov_base = (void *)m, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds > 0) {
		memset(&cb, 0, sizeof(cb));
		mh.msg_control = cb.b;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
		CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
		CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), fds, (size_t)nfds * sizeof(int));
	}
	while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

/* A short message (no path, no descriptors); _exit(0) when the peer is gone. */
static void serve_send(int sock, uint32_t kind, int32_t value)
{
	struct serve_msg m = {.magic = SERVE_MAGIC, .kind = kind, .value = value};

	if (serve_sendmsg(sock, &m, SERVE_HEAD, NULL, 0) < 0)
		_exit(0);
}

/* A request the client may send: checked field by field (it is our own, but bounded). */
static bool serve_valid(const struct serve_msg *m, ssize_t n, int nfds)
{
	return m->kind == SERVE_RUN && nfds == 2 && (size_t)n > SERVE_HEAD && m->path_len > 0 &&
	       m->path_len < sizeof(m->path) && (size_t)n == SERVE_HEAD + m->path_len + 1 &&
	       m->path[m->path_len] == '\0' && strlen(m->path) == m->path_len && m->text_max > 0 &&
	       m->text_max <= SIZE_MAX / 4 && isfinite(m->cpu_limit) && m->cpu_limit >= 0 &&
	       m->cpu_limit <= 1e9;
}

/* CPU seconds this process used so far. */
static double serve_cpu_used(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		child_fail(EXTRACT_EXIT_SETUP, "getrusage", errno);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/*
 * One document in the worker, with stdout and stderr its pipes: the banner,
 * its CPU allowance, then the document. Returns after a clean end (a bad
 * document, a read error or no memory end the worker, as in child_run()).
 */
static void serve_doc(const struct serve_msg *m, magic_t mg)
{
	struct extract_limits lim = {
	    .cpu_limit = m->cpu_limit, .mem_limit = m->mem_limit, .text_max = (size_t)m->text_max};
	int fd;

	child_header(EXTRACT_BANNER, NULL);
	{
		/*
		 * SIGXCPU (its default: the end of the worker) once this document used its
		 * share; no limit (the hard one) when it has none, whatever the last had
		 */
		struct rlimit rl;

		if (getrlimit(RLIMIT_CPU, &rl) < 0)
			child_fail(EXTRACT_EXIT_SETUP, "getrlimit", errno);
		rl.rlim_cur = lim.cpu_limit > 0 ? (rlim_t)ceil(serve_cpu_used() + lim.cpu_limit)
						: rl.rlim_max;
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
			rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_CPU, &rl) < 0)
			child_fail(EXTRACT_EXIT_SETUP, "setrlimit", errno);
	}
	fd = open(m->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		child_fail(EXTRACT_EXIT_IO, m->path, errno);
	child_document(&lim, m->path, fd, mg);
	close(fd);
}

/* The worker (a fork of the server): documents from wsock until it closes; never returns. */
static _Noreturn void serve_worker(int wsock, magic_t mg, uint64_t mem, pid_t server)
{
	const char *what;
	int nul;

	/* dies with the server (which dies with its client): nothing outlives a stop */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != server)
		_exit(EXTRACT_EXIT_SETUP);
	signal(SIGPIPE, SIG_DFL); /* the server ignores it; pdftotext must not inherit that */
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0 ||
	    dup2(wsock, 3) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
		_exit(EXTRACT_EXIT_SETUP);
	close_range(4, ~0U, 0);
	child_limit(RLIMIT_CORE, 0, 0);
	child_limit(RLIMIT_FSIZE, 0, 0);
	if (!EXTRACT_SANITIZED && mem)
		child_limit(RLIMIT_AS, (rlim_t)mem, (rlim_t)mem);
	if (!mg && !(mg = child_magic(&what)))
		_exit(errno ? EXTRACT_EXIT_NOMEM : EXTRACT_EXIT_SETUP);
	for (;;) {
		struct serve_msg m;
		int fds[2], nfds;
		ssize_t n = serve_recv(3, &m, fds, &nfds);

		if (n <= 0 || !serve_valid(&m, n, nfds))
			_exit(0); /* the server closed (or lost its mind): done */
		if (dup2(fds[0], 1) < 0 || dup2(fds[1], 2) < 0)
			_exit(EXTRACT_EXIT_SETUP);
		close(fds[0]);
		close(fds[1]);
		serve_doc(&m, mg);
		/* end of this document's pipes: the client sees EOF, then DONE */
		if (dup2(0, 1) < 0 || dup2(0, 2) < 0)
			_exit(EXTRACT_EXIT_SETUP);
		serve_send(3, SERVE_DONE, 0);
	}
}

/* Forgets the worker (reaped already, or to be): closes our descriptors. */
static void serve_worker_forget(struct serve *sv)
{
	if (sv->wsock >= 0)
		close(sv->wsock);
	if (sv->wpidfd >= 0)
		close(sv->wpidfd);
	sv->wpid = 0;
	sv->wsock = sv->wpidfd = -1;
}

/* Ends the worker (if any; SIGKILL when kill_it) and reaps it; returns its wait status. */
static int serve_worker_end(struct serve *sv, bool kill_it)
{
	int status = 0;

	if (sv->wpid <= 0)
		return 0;
	if (kill_it)
		kill(sv->wpid, SIGKILL);
	while (waitpid(sv->wpid, &status, 0) < 0 && errno == EINTR)
		;
	serve_worker_forget(sv);
	return status;
}

/* True while the worker runs; one that ended is reaped (*status) and forgotten. */
static bool serve_worker_alive(struct serve *sv, int *status)
{
	if (sv->wpid <= 0)
		return false;
	if (waitpid(sv->wpid, status, WNOHANG) != sv->wpid)
		return true;
	serve_worker_forget(sv);
	return false;
}

/* Forks a worker for memory limit mem. 0 or an errno. */
static int serve_worker_start(struct serve *sv, uint64_t mem)
{
	int p[2];
	pid_t self = getpid();

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) < 0)
		return errno;
	sv->wpid = fork();
	if (sv->wpid == 0)
		serve_worker(p[1], sv->mg, mem, self);
	close(p[1]);
	if (sv->wpid < 0) {
		int err = errno;

		close(p[0]);
		sv->wpid = 0;
		return err;
	}
	sv->wsock = p[0];
	sv->wpidfd = (int)syscall(SYS_pidfd_open, sv->wpid, 0);
	sv->wmem = mem;
	sv->wdocs = 0;
	return 0;
}

/* Hands the request to a worker (started, or replaced, as needed). 0 or an errno. */
static int serve_forward(struct serve *sv, const struct serve_msg *m, ssize_t n, const int *fds)
{
	int err = 0, status;

	if (serve_worker_alive(sv, &status) &&
	    (sv->wmem != m->mem_limit || sv->wdocs >= SERVE_WORKER_DOCS))
		serve_worker_end(sv, true);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (sv->wpid <= 0 && (err = serve_worker_start(sv, m->mem_limit)))
			return err;
		if (serve_sendmsg(sv->wsock, m, (size_t)n, fds, 2) == 0)
			return 0;
		err = errno;
		serve_worker_end(sv, true); /* it died between documents */
	}
	return err;
}

/*
 * Runs one request: forward, then wait for the worker's DONE or its end
 * (killing it on a cancel or when the client goes away), and answer. The
 * worker's socket may close before it ends (it exec'd pdftotext): then only
 * its end counts.
 */
static void serve_one(struct serve *sv, const struct serve_msg *m, ssize_t n, int dfd, int efd)
{
	int fds[2] = {dfd, efd}, err, status = 0;
	bool eof = false, wsock_open = true, killed = false;

	err = serve_forward(sv, m, n, fds);
	close(dfd);
	close(efd);
	if (err) {
		serve_send(sv->sock, SERVE_NOFORK, err);
		return;
	}
	for (;;) {
		struct pollfd pf[3] = {{.fd = eof ? -1 : sv->sock, .events = POLLIN},
				       {.fd = wsock_open ? sv->wsock : -1, .events = POLLIN},
				       {.fd = sv->wpidfd, .events = POLLIN}};
		int r = poll(pf, 3, sv->wpidfd < 0 ? 10 : -1);

		if (r < 0 && errno != EINTR) {
			status = serve_worker_end(sv, true);
			break;
		}
		if (r > 0 && pf[0].revents) {
			struct serve_msg c;
			int cfds[2], ncfds;
			ssize_t cn = serve_recv(sv->sock, &c, cfds, &ncfds);

			for (int i = 0; i < ncfds; i++)
				close(cfds[i]);
			/* a cancel, the client gone, or a request out of turn: end the worker */
			kill(sv->wpid, SIGKILL);
			killed = true;
			if (cn <= 0 || c.kind != SERVE_CANCEL)
				eof = true;
		}
		if (r > 0 && pf[1].revents) {
			struct serve_msg d;
			int dfds[2], ndfds;
			ssize_t dn = serve_recv(sv->wsock, &d, dfds, &ndfds);

			for (int i = 0; i < ndfds; i++)
				close(dfds[i]);
			if (dn == (ssize_t)SERVE_HEAD && d.magic == SERVE_MAGIC &&
			    d.kind == SERVE_DONE) {
				sv->wdocs++;
				status = 0;
				break;
			}
			wsock_open = false; /* ending, or exec'd: wait for its end */
		}
		if (sv->wpidfd >= 0 ? r > 0 && pf[2].revents : !serve_worker_alive(sv, &status)) {
			if (sv->wpid > 0)
				status = serve_worker_end(sv, false);
			break;
		}
	}
	/* a worker we killed is gone before the next request (even if its DONE beat the kill) */
	if (eof || killed)
		serve_worker_end(sv, true);
	if (eof)
		_exit(0);
	serve_send(sv->sock, SERVE_DONE, status);
}

/*
 * libmagic compiles a rule's regular expression the first time the rule is
 * tried, and keeps it: about 100 ms for the first text file. Trying the
 * common kinds once here leaves the compiled rules in the server, and so
 * in every worker it forks.
 */
static void serve_warm(magic_t mg)
{
	static const char *const samples[] = {
	    "The quick brown fox jumps over the lazy dog.\nA second line, with words; and "
	    "numbers 1, 2, 3.\n\nA new paragraph (with parentheses) ends here.\n",
	    "# Title\n\nSome *Markdown* with a [link](http://example.com).\n\n- item\n",
	    "<!DOCTYPE html>\n<html><head><title>t</title></head><body><p>x</p></body></html>\n",
	    "#include <stdio.h>\n\nint main(void)\n{\n\treturn printf(\"hi\\n\");\n}\n",
	    "#!/bin/sh\nset -e\necho hello\n",
	    "{\"key\": [1, 2, {\"a\": \"b\"}]}\n",
	    "<?xml version=\"1.0\"?>\n<root><a>text</a></root>\n",
	    "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
	    "PK\x03\x04\x14\x00\x00\x00\x08\x00",
	    "\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00",
	    "Caf\xe9 cr\xe8me br\xfbl\xe9"
	    "e, fran\xe7"
	    "aise.\n",
	};

	for (size_t i = 0; mg && i < sizeof(samples) / sizeof(samples[0]); i++)
		magic_buffer(mg, samples[i], strlen(samples[i]));
}

static _Noreturn void serve_main(void)
{
	struct serve sv = {.sock = 0, .wsock = -1, .wpidfd = -1};
	const char *what;

	signal(SIGPIPE, SIG_IGN);
	/* a failure here is each worker's to report, as the helper's would be */
	sv.mg = child_magic(&what);
	serve_warm(sv.mg);
	serve_send(sv.sock, SERVE_HELLO, SERVE_VERSION);
	for (;;) {
		struct serve_msg m;
		int fds[2], nfds;
		ssize_t n = serve_recv(sv.sock, &m, fds, &nfds);

		if (n <= 0) {
			serve_worker_end(&sv, true);
			_exit(0); /* the client closed: done (no atexit work, see child_run) */
		}
		if (m.magic != SERVE_MAGIC || (m.kind != SERVE_RUN && m.kind != SERVE_CANCEL) ||
		    (m.kind == SERVE_RUN && !serve_valid(&m, n, nfds))) {
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			serve_worker_end(&sv, true);
			_exit(EXTRACT_EXIT_USAGE); /* not our client: the client restarts us */
		}
		if (m.kind == SERVE_CANCEL) {
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			continue; /* a late cancel: what it meant to end has ended */
		}
		serve_one(&sv, &m, n, fds[0], fds[1]);
	}
}

static const char child_usage[] =
    "usage: docvault __extract [--cpu S] [--mem BYTES] [--fsize BYTES] [--text-max BYTES] "
    "[--] FILE\n"
    "       docvault __extract --serve   (a server on stdin, for docvault's workers)\n"
    "(internal: the text extraction helper that docvault's workers run; see extract.h)\n";

static _Noreturn void child_usage_fail(const char *what, const char *arg)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "docvault __extract: %s%s%s\n%s", what, arg ? ": " : "",
			 arg ? arg : "", child_usage);

	if (n > 0)
		child_write(2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
	_exit(EXTRACT_EXIT_USAGE);
}

/*
 * Matches argv[*i] against "--name VALUE" or "--name=VALUE"; on a match sets
 * *value (advancing *i past a separate value) and returns true.
 */
static bool child_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0)
		return false;
	if (argv[*i][n] == '=') {
		*value = argv[*i] + n + 1;
		return true;
	}
	if (argv[*i][n] != '\0')
		return false;
	if (*i + 1 >= argc)
		child_usage_fail("a value is missing after", name);
	*value = argv[++*i];
	return true;
}

static uint64_t child_bytes(const char *name, const char *s)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!isdigit((unsigned char)s[0]) || *end || errno)
		child_usage_fail("not a number of bytes", name);
	return (uint64_t)v;
}

int extract_child_main(int argc, char **argv)
{
	struct extract_limits lim = {.text_max = EXTRACT_TEXT_MAX_DEFAULT};
	uint64_t fsize = 0;
	const char *path = NULL, *v;
	int i;

	if (argc == 2 && strcmp(argv[1], "--serve") == 0)
		serve_main();
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strncmp(argv[i], "--", 2) != 0)
			break;
		if (child_opt(argc, argv, &i, "--cpu", &v)) {
			char *end;

			errno = 0;
			lim.cpu_limit = strtod(v, &end);
			if (!*v || *end || errno || !isfinite(lim.cpu_limit) || lim.cpu_limit < 0 ||
			    lim.cpu_limit > 1e9)
				child_usage_fail("not a number of seconds", "--cpu");
		} else if (child_opt(argc, argv, &i, "--mem", &v)) {
			lim.mem_limit = child_bytes("--mem", v);
		} else if (child_opt(argc, argv, &i, "--fsize", &v)) {
			fsize = child_bytes("--fsize", v);
		} else if (child_opt(argc, argv, &i, "--text-max", &v)) {
			lim.text_max = (size_t)child_bytes("--text-max", v);
			if (!lim.text_max || lim.text_max > SIZE_MAX / 4)
				child_usage_fail("out of range", "--text-max");
		} else if (strcmp(argv[i], "--help") == 0) {
			child_write(1, child_usage, strlen(child_usage));
			return 0;
		} else {
			child_usage_fail("unknown option", argv[i]);
		}
	}
	if (i != argc - 1)
		child_usage_fail("give exactly one FILE", NULL);
	path = argv[i];

	child_run(&lim, fsize, path, NULL);
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
	char line[EXTRACT_HEADER_MAX]; /* the header line being read */
	size_t line_len;
	size_t hdr_total; /* header bytes so far */
	bool banner;	  /* the first line was EXTRACT_BANNER */
	bool bad;	  /* the output breaks the protocol: stop reading */
	bool in_text;	  /* the header is done, text follows */
	bool truncated;	  /* the helper said "truncated" */
	char mime[EXTRACT_MIME_SIZE];
	char *text;
	size_t len, cap, max;
	bool full;
	char err[EXTRACT_ERRBUF];
	size_t err_len;
};

/* One complete header line in c->line. */
static void collect_line(struct collect *c)
{
	const char *l = c->line;

	if (!c->banner) {
		c->banner = strcmp(l, EXTRACT_BANNER) == 0;
		c->bad = !c->banner;
	} else if (strncmp(l, "mime ", 5) == 0) {
		snprintf(c->mime, sizeof(c->mime), "%s", l + 5);
	} else if (strcmp(l, "truncated") == 0) {
		c->truncated = true;
	} else if (strcmp(l, "text") == 0) {
		c->in_text = true;
	}
	/* other lines: a later protocol's, ignored */
}

/* Takes n bytes from the data pipe. 0 or -ENOMEM. */
static int collect_data(struct collect *c, const char *p, size_t n)
{
	while (n && !c->in_text && !c->bad) {
		if (++c->hdr_total > EXTRACT_HEADER_MAX) {
			c->bad = true;
			return 0;
		}
		if (*p == '\n') {
			c->line[c->line_len] = '\0';
			collect_line(c);
			c->line_len = 0;
		} else if (c->line_len < sizeof(c->line) - 1) {
			c->line[c->line_len++] = *p;
		}
		p++;
		n--;
	}
	if (!n || c->bad)
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

/* The most telling line of the helper's stderr: the last "Error" line, else the last line. */
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

/*
 * The helper program (see extract.h) into buf. 0, or -ENOENT with
 * out->error naming what was looked for.
 */
static int helper_find(const struct extract_limits *lim, char *buf, size_t size,
		       struct extract_result *out)
{
	const char *h = lim->helper;
	char exe[PATH_MAX], *slash;
	struct stat st;
	ssize_t n;

	if (!h || !*h)
		h = getenv(EXTRACT_HELPER_ENV);
	if (h && *h) {
		if ((size_t)snprintf(buf, size, "%s", h) >= size) {
			snprintf(out->error, sizeof(out->error), "extraction helper path too long");
			return -ENAMETOOLONG;
		}
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		if ((size_t)snprintf(buf, size, "%s/docvault", exe) < size && stat(buf, &st) == 0 &&
		    S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
			return 0;
	} else {
		snprintf(buf, size, "%s", "/proc/self/exe: unreadable");
	}
	snprintf(out->error, sizeof(out->error),
		 "no text extraction helper: none given, %s unset, and no executable %.120s",
		 EXTRACT_HELPER_ENV, buf);
	return -ENOENT;
}

/* A pipe with both ends close-on-exec and above 2 (so file actions cannot clash). */
static int pipe_high(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	for (int i = 0; i < 2; i++) {
		if (p[i] <= 2) {
			int fd = fcntl(p[i], F_DUPFD_CLOEXEC, 3);

			if (fd < 0) {
				int ret = -errno;

				close(p[0]);
				close(p[1]);
				p[0] = p[1] = -1;
				return ret;
			}
			close(p[i]);
			p[i] = fd;
		}
	}
	return 0;
}

/* The helper's environment: PATH and what shapes how it runs; no secrets. */
static void helper_env(char **envp)
{
	static const char *const keep[] = {
	    "ASAN_OPTIONS=", "UBSAN_OPTIONS=",	 "LSAN_OPTIONS=", "TSAN_OPTIONS=",
	    "MAGIC=",	     "LD_LIBRARY_PATH=", "MSAN_OPTIONS=", NULL};
	size_t n = 0;

	envp[n++] = "PATH=/usr/bin:/bin";
	for (char **e = environ; e && *e && n < EXTRACT_ENV_MAX - 1; e++)
		for (int k = 0; keep[k]; k++)
			if (strncmp(*e, keep[k], strlen(keep[k])) == 0) {
				envp[n++] = *e;
				break;
			}
	envp[n] = NULL;
}

/*
 * Starts the helper on path with stdin /dev/null, stdout dp[1], stderr
 * ep[1], every other descriptor closed, signals at their defaults.
 * 0 with *pid, or a negative errno with out->error set.
 */
static int helper_spawn(const struct extract_limits *lim, const char *helper, const char *path,
			int dp1, int ep1, pid_t *pid, struct extract_result *out)
{
	char cpu[32], mem[32], tmax[32], *envp[EXTRACT_ENV_MAX];
	char *argv[] = {
	    (char *)helper, "__extract", "--cpu", cpu,		"--mem", mem, "--fsize", "0",
	    "--text-max",   tmax,	 "--",	  (char *)path, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t all, none;
	int ret;

	snprintf(cpu, sizeof(cpu), "%g", lim->cpu_limit > 0 ? lim->cpu_limit : 0);
	snprintf(mem, sizeof(mem), "%llu", (unsigned long long)lim->mem_limit);
	snprintf(tmax, sizeof(tmax), "%zu", lim->text_max);
	helper_env(envp);
	sigfillset(&all);
	sigemptyset(&none);
	if ((ret = posix_spawn_file_actions_init(&fa)))
		goto fail;
	if ((ret = posix_spawnattr_init(&at))) {
		posix_spawn_file_actions_destroy(&fa);
		goto fail;
	}
	if (!(ret = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) &&
	    !(ret = posix_spawn_file_actions_adddup2(&fa, dp1, 1)) &&
	    !(ret = posix_spawn_file_actions_adddup2(&fa, ep1, 2)) &&
	    !(ret = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) &&
	    !(ret = posix_spawnattr_setsigdefault(&at, &all)) &&
	    !(ret = posix_spawnattr_setsigmask(&at, &none)) &&
	    !(ret = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)))
		ret = posix_spawn(pid, helper, &fa, &at, argv, envp);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	if (!ret)
		return 0;
fail:
	snprintf(out->error, sizeof(out->error), "cannot run the text extraction helper %.160s: %s",
		 helper, strerror(ret));
	/* a missing or unusable program is a setup problem: retried, never the document's */
	return ret == EACCES || ret == ENOEXEC || ret == ENOTDIR ? -ENOENT : -ret;
}

/* Turns how the helper ended into ret and out->error (c->banner was seen). */
static int helper_status(const struct extract_limits *lim, struct collect *c, int status,
			 struct extract_result *out)
{
	char line[200];

	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);

		if (sig == SIGXCPU || (sig == SIGKILL && lim->cpu_limit > 0))
			snprintf(out->error, sizeof(out->error),
				 "extraction exceeded the CPU limit of %g s", lim->cpu_limit);
		else
			snprintf(out->error, sizeof(out->error), "extractor crashed with SIG%s%s",
				 sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
				 lim->mem_limit ? ", likely at the memory limit" : "");
		return -EINVAL;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 0)
		return 0;
	snprintf(line, sizeof(line), "%s", err_line(c));
	switch (WEXITSTATUS(status)) {
	case EXTRACT_EXIT_NOMEM:
		if (!lim->mem_limit) {
			snprintf(out->error, sizeof(out->error), "extraction ran out of memory");
			return -ENOMEM;
		}
		snprintf(out->error, sizeof(out->error),
			 "extraction exceeded the memory limit (%s)", line);
		return -EINVAL;
	case EXTRACT_EXIT_IO:
		snprintf(out->error, sizeof(out->error), "cannot read the document: %s", line);
		return -EIO;
	case EXTRACT_EXIT_SETUP:
		snprintf(out->error, sizeof(out->error), "text extraction helper: %s", line);
		return -EIO;
	case EXTRACT_EXIT_NOTOOL:
		snprintf(out->error, sizeof(out->error), "%s", line);
		return -ENOENT;
	case EXTRACT_EXIT_BAD:
		snprintf(out->error, sizeof(out->error), "%s", line);
		return -EINVAL;
	default:
		snprintf(out->error, sizeof(out->error), "%s failed (exit %d): %s",
			 kind_of(c->mime) == K_PDF ? "pdftotext" : "extractor", WEXITSTATUS(status),
			 line);
		return -EINVAL;
	}
}

/* One helper per request, or one server for many (see extract.h). */
struct extract_server {
	pid_t pid;	       /* the server, leader of its process group; 0: none running */
	int sock;	       /* our end of its socket; -1: none */
	char helper[PATH_MAX]; /* the program it runs */
	unsigned long starts;  /* servers started */
};

/* Ends the server and whatever it runs (its process group), and reaps it. */
static void server_stop(struct extract_server *s)
{
	int status;

	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
	if (s->pid > 0) {
		kill(-s->pid, SIGKILL);
		reap(s->pid, &status);
	}
	s->pid = 0;
}

/*
 * Starts `helper __extract --serve` with its socket as stdin, stdout
 * /dev/null, stderr ours, in a process group of its own, and waits for its
 * HELLO. 0, or -ENOENT (no such program, not a docvault helper that
 * serves), another negative errno, with out->error set.
 */
static int server_start(struct extract_server *s, const char *helper,
			const struct extract_limits *lim, struct extract_result *out)
{
	char *argv[] = {(char *)helper, "__extract", "--serve", NULL}, *envp[EXTRACT_ENV_MAX];
	double wait_s = lim->wall_limit > SERVE_HELLO_S ? lim->wall_limit : SERVE_HELLO_S;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t all, none;
	struct serve_msg m;
	struct pollfd pf;
	int sv[2], ret;
	ssize_t n;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		ret = -errno;
		snprintf(out->error, sizeof(out->error), "cannot make a socket: %s",
			 strerror(errno));
		return ret;
	}
	helper_env(envp);
	sigfillset(&all);
	sigemptyset(&none);
	if ((ret = posix_spawn_file_actions_init(&fa)))
		goto fail;
	if ((ret = posix_spawnattr_init(&at))) {
		posix_spawn_file_actions_destroy(&fa);
		goto fail;
	}
	if (!(ret = posix_spawn_file_actions_adddup2(&fa, sv[1], 0)) &&
	    !(ret = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)) &&
	    !(ret = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) &&
	    !(ret = posix_spawnattr_setsigdefault(&at, &all)) &&
	    !(ret = posix_spawnattr_setsigmask(&at, &none)) &&
	    !(ret = posix_spawnattr_setpgroup(&at, 0)) &&
	    !(ret = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
						      POSIX_SPAWN_SETPGROUP)))
		ret = posix_spawn(&s->pid, helper, &fa, &at, argv, envp);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
fail:
	close(sv[1]);
	if (ret) {
		close(sv[0]);
		s->pid = 0;
		snprintf(out->error, sizeof(out->error),
			 "cannot run the text extraction helper %.160s: %s", helper, strerror(ret));
		return ret == EACCES || ret == ENOEXEC || ret == ENOTDIR ? -ENOENT : -ret;
	}
	s->sock = sv[0];
	s->starts++;
	snprintf(s->helper, sizeof(s->helper), "%s", helper);
	pf.fd = s->sock;
	pf.events = POLLIN;
	do
		ret = poll(&pf, 1, (int)(wait_s * 1000));
	while (ret < 0 && errno == EINTR);
	n = ret > 0 ? recv(s->sock, &m, sizeof(m), MSG_DONTWAIT) : -1;
	if (n != (ssize_t)SERVE_HEAD || m.magic != SERVE_MAGIC || m.kind != SERVE_HELLO ||
	    m.value != SERVE_VERSION) {
		snprintf(out->error, sizeof(out->error), "text extraction helper %.120s %s", helper,
			 ret == 0 ? "did not start serving in time"
				  : "is not a docvault extraction server (__extract --serve)");
		server_stop(s);
		return -ENOENT;
	}
	return 0;
}

/* Sends a RUN (with the pipes' write ends) or a CANCEL. 0 or a negative errno. */
static int server_send(struct extract_server *s, const struct serve_msg *m, size_t len, int dp1,
		       int ep1)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(2 * sizeof(int))];
	} cb;
	struct iovec iov = {.iov_base = (void *)m, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	int fds[2] = {dp1, ep1};

	if (dp1 >= 0) {
		memset(&cb, 0, sizeof(cb));
		mh.msg_control = cb.b;
		mh.msg_controllen = sizeof(cb.b);
		CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
		CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
		CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(sizeof(fds));
		memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), fds, sizeof(fds));
	}
	while (sendmsg(s->sock, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* Reads the server's answer: 1 with *status (DONE) or *err (NOFORK), -EPIPE when it is gone. */
static int server_answer(struct extract_server *s, int *status, int *err)
{
	struct serve_msg m;
	ssize_t n;

	do
		n = recv(s->sock, &m, sizeof(m), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n != (ssize_t)SERVE_HEAD || m.magic != SERVE_MAGIC ||
	    (m.kind != SERVE_DONE && m.kind != SERVE_NOFORK))
		return -EPIPE; /* gone, or talking nonsense: either way, restart it */
	if (m.kind == SERVE_DONE)
		*status = m.value;
	else
		*err = m.value > 0 ? m.value : EAGAIN;
	return 1;
}

/*
 * Runs one extraction: with a one-shot helper (s NULL) or on the server s
 * (started). *lost: the server died or stopped answering before it said
 * how the extraction ended (it is stopped; the caller may retry).
 */
static int extract_run(const struct extract_limits *lim, struct extract_server *s,
		       const char *helper, const char *path, struct extract_result *out, bool *lost)
{
	int dp[2] = {-1, -1}, ep[2] = {-1, -1}, status = 0, ret = 0, nofork = 0;
	struct collect *c;
	bool timed_out = false, killed = false, done = false;
	double deadline;
	pid_t pid = 0;

	*lost = false;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->max = lim->text_max;
	if ((ret = pipe_high(dp)) || (ret = pipe_high(ep))) {
		snprintf(out->error, sizeof(out->error), "cannot make a pipe: %s", strerror(-ret));
		goto out;
	}
	if (s) {
		struct serve_msg *m = calloc(1, sizeof(*m));
		size_t plen = strlen(path);

		if (!m) {
			ret = -ENOMEM;
			goto out;
		}
		if (plen >= sizeof(m->path)) {
			free(m);
			snprintf(out->error, sizeof(out->error), "document path too long");
			ret = -ENAMETOOLONG;
			goto out;
		}
		*m = (struct serve_msg){.magic = SERVE_MAGIC,
					.kind = SERVE_RUN,
					.path_len = (uint32_t)plen,
					.cpu_limit = lim->cpu_limit > 0 ? lim->cpu_limit : 0,
					.mem_limit = lim->mem_limit,
					.text_max = lim->text_max};
		memcpy(m->path, path, plen + 1);
		ret = server_send(s, m, SERVE_HEAD + plen + 1, dp[1], ep[1]);
		free(m);
		if (ret) {
			*lost = true;
			snprintf(out->error, sizeof(out->error),
				 "the text extraction server is gone: %s", strerror(-ret));
			ret = -EIO;
			goto out;
		}
	} else if ((ret = helper_spawn(lim, helper, path, dp[1], ep[1], &pid, out))) {
		goto out;
	}
	close(dp[1]);
	close(ep[1]);
	dp[1] = ep[1] = -1;
	deadline = lim->wall_limit > 0 ? now_mono() + lim->wall_limit : 0;

	/* until both pipes end and (with a server) it said how the extraction ended */
	while (dp[0] >= 0 || ep[0] >= 0 || (s && !done && !*lost)) {
		struct pollfd pf[3] = {
		    {.fd = dp[0], .events = POLLIN},
		    {.fd = ep[0], .events = POLLIN},
		    {.fd = s && !done && !*lost ? s->sock : -1, .events = POLLIN}};
		int timeout = -1, pr;

		if (deadline) {
			double left = deadline - now_mono();

			if (left <= 0) {
				timed_out = true;
				break;
			}
			timeout = (int)ceil(left * 1000);
		}
		pr = poll(pf, 3, timeout);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			ret = -errno;
			snprintf(out->error, sizeof(out->error), "poll: %s", strerror(errno));
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
				snprintf(out->error, sizeof(out->error), "out of memory");
				break;
			}
		}
		if (pf[2].fd >= 0 && pf[2].revents) {
			int a = server_answer(s, &status, &nofork);

			done = a == 1;
			*lost = a < 0;
		}
		if (ret || c->full || c->bad)
			break;
	}
	if (timed_out || ret || c->full || c->bad) {
		killed = true;
		if (!s) {
			kill(pid, SIGKILL);
		} else if (!done && !*lost) {
			/* cancel, and wait (bounded) for the server to say it is over */
			struct serve_msg cm = {.magic = SERVE_MAGIC, .kind = SERVE_CANCEL};
			double until = now_mono() + SERVE_CANCEL_S;

			for (int i = 0; i < 2; i++)
				if (i == 0 ? dp[0] >= 0 : ep[0] >= 0) {
					close(i == 0 ? dp[0] : ep[0]);
					(i == 0 ? dp : ep)[0] = -1;
				}
			*lost = server_send(s, &cm, SERVE_HEAD, -1, -1) != 0;
			while (!done && !*lost) {
				struct pollfd pf = {.fd = s->sock, .events = POLLIN};
				double left = until - now_mono();
				int pr = left > 0 ? poll(&pf, 1, (int)ceil(left * 1000)) : 0;

				if (pr < 0 && errno == EINTR)
					continue;
				if (pr <= 0) {
					*lost = true;
					break;
				}
				int a = server_answer(s, &status, &nofork);

				done = a == 1;
				*lost = a < 0;
			}
		}
	}
	if (!s && reap(pid, &status) < 0 && !ret) {
		ret = -ECHILD;
		snprintf(out->error, sizeof(out->error), "lost the extraction helper (waitpid)");
	}
	if (s && *lost) {
		server_stop(s);
		if (!killed) {
			snprintf(out->error, sizeof(out->error),
				 "the text extraction server %.120s died during the extraction",
				 helper);
			ret = -EIO;
			goto out;
		}
		*lost = false; /* we ended it: the outcome is known, no retry */
	}
	if (c->mime[0])
		snprintf(out->mime, sizeof(out->mime), "%s", c->mime);
	if (ret)
		goto out;
	if (nofork) {
		snprintf(out->error, sizeof(out->error),
			 "the text extraction server cannot start a process: %s", strerror(nofork));
		ret = -nofork;
		goto out;
	}
	if (!c->banner) {
		/* not our helper (an older docvault, a wrong DOCVAULT_HELPER), or it did not start
		 */
		char why[96];

		if (c->bad)
			snprintf(
			    why, sizeof(why), "%s",
			    "is not a docvault extraction helper (its first line is no banner)");
		else if (timed_out)
			snprintf(why, sizeof(why), "did not start within %g s", lim->wall_limit);
		else if (WIFSIGNALED(status))
			snprintf(why, sizeof(why), "died of SIG%s before its banner",
				 sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status))
								: "?");
		else
			snprintf(why, sizeof(why), "is not a docvault extraction helper (exit %d)",
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		snprintf(out->error, sizeof(out->error), "text extraction helper %.72s %s: %.50s",
			 helper, why, err_line(c));
		ret = -ENOENT;
		goto out;
	}
	if (c->bad) {
		snprintf(out->error, sizeof(out->error),
			 "text extraction helper %.120s: header longer than %d bytes", helper,
			 EXTRACT_HEADER_MAX);
		ret = -EIO;
		goto out;
	}
	if (timed_out) {
		snprintf(out->error, sizeof(out->error),
			 "extraction exceeded the wall-clock limit of %g s", lim->wall_limit);
		ret = -EINVAL;
		goto out;
	}
	/* killed (and not timed out): c->full, we have all the text we keep */
	if (!killed && (ret = helper_status(lim, c, status, out)))
		goto out;
	out->truncated = c->full || c->truncated;
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

/* Common start of both entry points: out reset, arguments checked, the helper found. */
static int extract_begin(const struct extract_limits *lim, const char *path, char *helper,
			 size_t size, struct extract_result *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->mime, sizeof(out->mime), "%s", "application/octet-stream");
	if (!lim || !path || !lim->text_max)
		return -EINVAL;
	return helper_find(lim, helper, size, out);
}

int extract_file(const struct extract_limits *lim, const char *path, struct extract_result *out)
{
	char helper[PATH_MAX];
	bool lost;
	int ret = extract_begin(lim, path, helper, sizeof(helper), out);

	return ret ? ret : extract_run(lim, NULL, helper, path, out, &lost);
}

int extract_server_new(struct extract_server **out)
{
	struct extract_server *s = calloc(1, sizeof(*s));

	*out = s;
	if (!s)
		return -ENOMEM;
	s->sock = -1;
	return 0;
}

void extract_server_free(struct extract_server *s)
{
	if (!s)
		return;
	server_stop(s);
	free(s);
}

int extract_server_file(struct extract_server *s, const struct extract_limits *lim,
			const char *path, struct extract_result *out)
{
	char helper[PATH_MAX];
	int ret = extract_begin(lim, path, helper, sizeof(helper), out);

	if (ret)
		return ret;
	/* a server that died between documents, or during one, gets one restart per call */
	for (int attempt = 0; attempt < 2; attempt++) {
		bool lost;

		if (s->pid > 0 && strcmp(s->helper, helper) != 0)
			server_stop(s);
		if (s->pid <= 0 && (ret = server_start(s, helper, lim, out)))
			return ret;
		ret = extract_run(lim, s, helper, path, out, &lost);
		if (!lost)
			return ret;
		server_stop(s);
		if (attempt == 0) {
			free(out->text);
			memset(out, 0, sizeof(*out));
			snprintf(out->mime, sizeof(out->mime), "%s", "application/octet-stream");
		}
	}
	return ret;
}

pid_t extract_server_pid(const struct extract_server *s)
{
	return s ? s->pid : 0;
}

unsigned long extract_server_starts(const struct extract_server *s)
{
	return s ? s->starts : 0;
}

void extract_result_free(struct extract_result *r)
{
	if (!r)
		return;
	free(r->text);
	memset(r, 0, sizeof(*r));
}
