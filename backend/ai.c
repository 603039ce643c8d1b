/*
 * ai.c - the OpenAI-compatible chat-completions client (see ai.h).
 *
 * Why http.h and not curl directly: the project's HTTP client already does
 * what this needs (a POST from memory, an allocated sink with a cap, a
 * whole-request timeout, errno translation) and keeps curl in one file, as
 * the layering asks. A client is made per call (one handle): summaries are
 * rare next to the cost of the model, and no state outlives the call.
 *
 * JSON: the request is built with a small escaper; the answer is read with
 * a minimal recursive-descent reader that walks to choices[0].message.
 * content, skipping every other value (depth-limited), so a provider's extra
 * fields never matter and a malformed answer is -EBADMSG, not a crash.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docvault/ai.h"
#include "docvault/extract.h"
#include "docvault/http.h"
#include "docvault/log.h"
#include "docvault/summarize.h"

#define AI_JSON_DEPTH	   64
#define AI_CONNECT_TIMEOUT 10.0 /* seconds, at most (and at most the timeout) */

struct sbuf {
	char *p;
	size_t len, cap;
};

static int sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int sb_str(struct sbuf *b, const char *s)
{
	return sb_put(b, s, strlen(s));
}

static int sb_cp(struct sbuf *b, uint32_t cp)
{
	char u[4];
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
	return sb_put(b, u, n);
}

/* ------------------------------------------------------------------ */
/* writing JSON */

static int json_quote_into(struct sbuf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	int ret = sb_put(b, "\"", 1);

	for (size_t i = 0; i < len && !ret;) {
		size_t n = extract_utf8_seq(p + i, len - i), j = i;

		if (!n) {
			ret = sb_str(b, "\\ufffd");
			i++;
			continue;
		}
		if (n == 1 && (p[i] < 0x20 || p[i] == '"' || p[i] == '\\' || p[i] == 0x7F)) {
			char esc[8];

			switch (p[i]) {
			case '"':
				ret = sb_str(b, "\\\"");
				break;
			case '\\':
				ret = sb_str(b, "\\\\");
				break;
			case '\n':
				ret = sb_str(b, "\\n");
				break;
			case '\r':
				ret = sb_str(b, "\\r");
				break;
			case '\t':
				ret = sb_str(b, "\\t");
				break;
			default:
				snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
				ret = sb_str(b, esc);
			}
			i++;
			continue;
		}
		/* a run of characters that need nothing */
		while (j < len && (n = extract_utf8_seq(p + j, len - j)) &&
		       !(n == 1 && (p[j] < 0x20 || p[j] == '"' || p[j] == '\\' || p[j] == 0x7F)))
			j += n;
		ret = sb_put(b, s + i, j - i);
		i = j;
	}
	return ret ? ret : sb_put(b, "\"", 1);
}

char *ai_json_quote(const char *s, size_t len)
{
	struct sbuf b = {0};

	if (json_quote_into(&b, s, len)) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* ------------------------------------------------------------------ */
/* reading JSON */

struct jr {
	const char *s;
	size_t n, i;
};

static void jr_ws(struct jr *r)
{
	while (r->i < r->n && (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' ||
			       r->s[r->i] == '\r'))
		r->i++;
}

static int hex4(const char *s, uint32_t *v)
{
	*v = 0;
	for (int k = 0; k < 4; k++) {
		char c = s[k];

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (uint32_t)(c - 'A' + 10);
		else
			return -EBADMSG;
	}
	return 0;
}

/* Reads the string at r->i == '"' into out (NULL: skip it). */
static int jr_string(struct jr *r, struct sbuf *out)
{
	int ret;

	if (r->i >= r->n || r->s[r->i] != '"')
		return -EBADMSG;
	r->i++;
	while (r->i < r->n) {
		size_t j = r->i;
		uint32_t cp, lo;

		while (j < r->n && r->s[j] != '"' && r->s[j] != '\\')
			j++;
		if (out && j > r->i && (ret = sb_put(out, r->s + r->i, j - r->i)))
			return ret;
		r->i = j;
		if (j >= r->n)
			break;
		if (r->s[j] == '"') {
			r->i++;
			return 0;
		}
		/* an escape */
		if (j + 1 >= r->n)
			break;
		r->i = j + 2;
		switch (r->s[j + 1]) {
		case '"':
		case '\\':
		case '/':
			cp = (unsigned char)r->s[j + 1];
			break;
		case 'b':
			cp = '\b';
			break;
		case 'f':
			cp = '\f';
			break;
		case 'n':
			cp = '\n';
			break;
		case 'r':
			cp = '\r';
			break;
		case 't':
			cp = '\t';
			break;
		case 'u':
			if (j + 6 > r->n || hex4(r->s + j + 2, &cp))
				return -EBADMSG;
			r->i = j + 6;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (r->i + 6 <= r->n && r->s[r->i] == '\\' &&
				    r->s[r->i + 1] == 'u' && hex4(r->s + r->i + 2, &lo) == 0 &&
				    lo >= 0xDC00 && lo <= 0xDFFF) {
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					r->i += 6;
				} else {
					cp = 0xFFFD; /* a lone high surrogate */
				}
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				cp = 0xFFFD;
			} else if (cp == 0) {
				cp = ' '; /* no NUL inside C strings */
			}
			break;
		default:
			return -EBADMSG;
		}
		if (out && (ret = sb_cp(out, cp)))
			return ret;
	}
	return -EBADMSG; /* unterminated */
}

static int jr_skip(struct jr *r, int depth);

/* Skips an object or array at r->i. */
static int jr_skip_container(struct jr *r, int depth)
{
	char close = r->s[r->i] == '{' ? '}' : ']';
	bool obj = close == '}';
	int ret;

	if (depth > AI_JSON_DEPTH)
		return -EBADMSG;
	r->i++;
	jr_ws(r);
	if (r->i < r->n && r->s[r->i] == close) {
		r->i++;
		return 0;
	}
	for (;;) {
		jr_ws(r);
		if (obj) {
			if ((ret = jr_string(r, NULL)))
				return ret;
			jr_ws(r);
			if (r->i >= r->n || r->s[r->i] != ':')
				return -EBADMSG;
			r->i++;
		}
		if ((ret = jr_skip(r, depth + 1)))
			return ret;
		jr_ws(r);
		if (r->i >= r->n)
			return -EBADMSG;
		if (r->s[r->i] == ',') {
			r->i++;
			continue;
		}
		if (r->s[r->i] == close) {
			r->i++;
			return 0;
		}
		return -EBADMSG;
	}
}

static int jr_skip(struct jr *r, int depth)
{
	jr_ws(r);
	if (r->i >= r->n)
		return -EBADMSG;
	switch (r->s[r->i]) {
	case '"':
		return jr_string(r, NULL);
	case '{':
	case '[':
		return jr_skip_container(r, depth);
	default:
		/* number, true, false, null */
		if (!strchr("-0123456789tfn", r->s[r->i]))
			return -EBADMSG;
		while (r->i < r->n && strchr("+-.0123456789eEtruefalsn", r->s[r->i]))
			r->i++;
		return 0;
	}
}

/* At an object: positions r at the value of member key. -ENOENT when absent. */
static int jr_member(struct jr *r, const char *key)
{
	int ret;

	jr_ws(r);
	if (r->i >= r->n || r->s[r->i] != '{')
		return -EBADMSG;
	r->i++;
	jr_ws(r);
	if (r->i < r->n && r->s[r->i] == '}')
		return -ENOENT;
	for (;;) {
		struct sbuf name = {0};
		bool match;

		jr_ws(r);
		if ((ret = jr_string(r, &name))) {
			free(name.p);
			return ret;
		}
		match = name.p ? strcmp(name.p, key) == 0 : key[0] == '\0';
		free(name.p);
		jr_ws(r);
		if (r->i >= r->n || r->s[r->i] != ':')
			return -EBADMSG;
		r->i++;
		jr_ws(r);
		if (match)
			return 0;
		if ((ret = jr_skip(r, 1)))
			return ret;
		jr_ws(r);
		if (r->i >= r->n)
			return -EBADMSG;
		if (r->s[r->i] == '}')
			return -ENOENT;
		if (r->s[r->i] != ',')
			return -EBADMSG;
		r->i++;
	}
}

int ai_parse_content(const char *json, size_t len, char **content)
{
	struct jr r = {.s = json, .n = len};
	struct sbuf out = {0};
	int ret;

	*content = NULL;
	if (!json)
		return -EBADMSG;
	if ((ret = jr_member(&r, "choices")))
		return ret == -ENOMEM ? ret : -EBADMSG;
	jr_ws(&r);
	if (r.i >= r.n || r.s[r.i] != '[')
		return -EBADMSG;
	r.i++;
	if ((ret = jr_member(&r, "message")) || (ret = jr_member(&r, "content")))
		return ret == -ENOMEM ? ret : -EBADMSG;
	if ((ret = jr_string(&r, &out))) {
		free(out.p);
		return ret;
	}
	if (!out.p && !(out.p = calloc(1, 1)))
		return -ENOMEM;
	*content = out.p;
	return 0;
}

/* ------------------------------------------------------------------ */
/* the request */

/* The URL as it may be logged: no user:password@, no query. */
static void url_for_log(const char *url, char *out, size_t outlen)
{
	const char *scheme = strstr(url, "://"), *host = scheme ? scheme + 3 : url;
	const char *slash = strchr(host, '/'), *at = strchr(host, '@');

	if (at && (!slash || at < slash))
		snprintf(out, outlen, "%.*s%s", (int)(host - url), url, at + 1);
	else
		snprintf(out, outlen, "%s", url);
	out[strcspn(out, "?#")] = '\0';
}

static int status_errno(int status)
{
	if (status == 408 || status == 504)
		return -ETIMEDOUT;
	if (status == 429 || status == 503)
		return -EAGAIN;
	if (status == 401 || status == 403)
		return -EACCES;
	if (status == 404)
		return -ENOENT;
	if (status >= 500)
		return -EIO;
	return -EPROTO;
}

/* Bytes of the first max characters of text. */
static size_t prefix_chars(const char *text, size_t len, size_t max)
{
	size_t i = 0, chars = 0;

	while (i < len && chars < max) {
		size_t n = extract_utf8_seq((const unsigned char *)text + i, len - i);

		i += n ? n : 1;
		chars++;
	}
	return i;
}

static int build_body(const struct ai_opts *o, const char *text, size_t len, struct sbuf *b)
{
	char prompt[256];
	int ret;

	snprintf(prompt, sizeof(prompt),
		 "Summarize the user's document in at most %zu characters, in the document's "
		 "language, as plain text without Markdown or a preamble.",
		 o->summary_max);
	if ((ret = sb_str(b, "{\"model\":")) ||
	    (ret = json_quote_into(b, o->model, strlen(o->model))) ||
	    (ret = sb_str(b, ",\"temperature\":0,\"stream\":false,\"messages\":["
			     "{\"role\":\"system\",\"content\":")) ||
	    (ret = json_quote_into(b, prompt, strlen(prompt))) ||
	    (ret = sb_str(b, "},{\"role\":\"user\",\"content\":")) ||
	    (ret = json_quote_into(b, text, prefix_chars(text, len, o->max_input_chars))) ||
	    (ret = sb_str(b, "}]}")))
		return ret;
	return 0;
}

/* Collapses whitespace in place, trims; returns the new length. */
static size_t squeeze(char *s)
{
	size_t o = 0;
	bool sp = false;

	for (size_t i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
			sp = o > 0;
			continue;
		}
		if (sp)
			s[o++] = ' ';
		sp = false;
		s[o++] = c < 0x20 ? ' ' : (char)c;
	}
	s[o] = '\0';
	return o;
}

int ai_summarize(const struct ai_opts *o, const char *text, size_t len, char **summary)
{
	static const char *const ctype = "application/json";
	struct http_client_opts co = {.max_handles = 1, .tls_verify = true};
	/* "Expect:" empty: no "100-continue" round trip (not every server answers it) */
	struct http_header hdr[4] = {
	    {"Content-Type", ctype}, {"Accept", ctype}, {"Expect", ""}, {NULL, NULL}};
	struct http_response resp = {0};
	struct http_request req = {0};
	struct http_client *client = NULL;
	struct sbuf body = {0}, url = {0}, auth = {0};
	char shown[512], *content = NULL;
	size_t nh = 3, elen;
	int ret;

	*summary = NULL;
	if (!o || !o->endpoint || !*o->endpoint || !o->model || o->timeout <= 0 ||
	    !o->max_input_chars || !o->summary_max || (!text && len))
		return -EINVAL;
	elen = strlen(o->endpoint);
	while (elen > 0 && o->endpoint[elen - 1] == '/')
		elen--;
	if ((ret = sb_put(&url, o->endpoint, elen)) || (ret = sb_str(&url, "/chat/completions")) ||
	    (ret = build_body(o, text ? text : "", len, &body)))
		goto out;
	url_for_log(url.p, shown, sizeof(shown));
	if (o->api_key && *o->api_key) {
		if ((ret = sb_str(&auth, "Bearer ")) || (ret = sb_str(&auth, o->api_key)))
			goto out;
		hdr[nh].name = "Authorization";
		hdr[nh++].value = auth.p;
	}
	co.connect_timeout = o->timeout < AI_CONNECT_TIMEOUT ? o->timeout : AI_CONNECT_TIMEOUT;
	co.request_timeout = o->timeout;
	if ((ret = http_client_new(&co, &client)))
		goto out;
	req.method = "POST";
	req.url = url.p;
	req.headers = hdr;
	req.nheaders = nh;
	req.body_kind = HTTP_BODY_MEM;
	req.body.mem.data = body.p;
	req.body.mem.len = body.len;
	req.sink_kind = HTTP_SINK_ALLOC;
	req.sink.alloc_cap = AI_RESPONSE_MAX;
	req.timeout = o->timeout;
	ret = http_request(client, &req, &resp);
	if (ret < 0) {
		log_warn("ai: %s: %s%s%s; using the built-in summariser", shown, strerror(-ret),
			 resp.error[0] ? ": " : "", resp.error);
		goto out;
	}
	if (ret < 200 || ret > 299) {
		log_warn("ai: %s: HTTP %d; using the built-in summariser", shown, ret);
		ret = status_errno(ret);
		goto out;
	}
	ret = ai_parse_content(resp.body, resp.body ? strlen(resp.body) : 0, &content);
	if (ret == -EBADMSG) {
		log_warn("ai: %s: the answer is not a chat completion (no choices[0].message."
			 "content string); using the built-in summariser",
			 shown);
		goto out;
	}
	if (ret)
		goto out;
	/* valid UTF-8, one line, at most summary_max bytes */
	for (size_t i = 0, n = strlen(content); i < n;) {
		size_t k = extract_utf8_seq((unsigned char *)content + i, n - i);

		if (!k)
			content[i++] = '?';
		else
			i += k;
	}
	if (!squeeze(content)) {
		log_warn("ai: %s: the answer is empty; using the built-in summariser", shown);
		ret = -EBADMSG;
		goto out;
	}
	summarize_cut(content, o->summary_max);
	*summary = content;
	content = NULL;
	ret = 0;
out:
	free(content);
	http_response_free(&resp);
	http_client_free(client);
	if (auth.p)
		explicit_bzero(auth.p, auth.len);
	free(auth.p);
	free(body.p);
	free(url.p);
	return ret;
}
