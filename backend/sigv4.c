/*
 * sigv4.c - AWS Signature Version 4 (see sigv4.h for the model).
 *
 * Every stage builds its output in a small growable string (struct sbuf)
 * and hands it over as a malloc'ed C string. Headers and query parameters
 * are sorted as arrays of pointers with a stable insertion sort: there are a
 * handful of each, and duplicate header names must keep the caller's order.
 *
 * The only file that includes OpenSSL; it uses the OpenSSL 3 EVP
 * interfaces (EVP_Digest*, EVP_Q_mac), none of the deprecated
 * SHA256_* / HMAC_CTX calls. No globals, thread-safe.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "docvault/sigv4.h"

/* --- a growable string ------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	int err; /* sticky -ENOMEM */
};

static void sb_reserve(struct sbuf *b, size_t more)
{
	size_t need, cap;
	char *p;

	if (b->err)
		return;
	need = b->len + more + 1;
	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 128;
	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->err = -ENOMEM;
		return;
	}
	if (!b->p)
		p[0] = '\0';
	b->p = p;
	b->cap = cap;
}

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
	sb_reserve(b, n);
	if (b->err)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

static void sb_addc(struct sbuf *b, char c)
{
	sb_addn(b, &c, 1);
}

/* Hands the string over (an empty one if nothing was added). */
static int sb_finish(struct sbuf *b, char **out)
{
	if (!b->err && !b->p)
		sb_reserve(b, 0);
	if (b->err) {
		free(b->p);
		*out = NULL;
		return b->err;
	}
	*out = b->p;
	return 0;
}

/* --- encoding ---------------------------------------------------------- */

static const char HEXU[] = "0123456789ABCDEF";
static const char HEXL[] = "0123456789abcdef";

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static void sb_encode(struct sbuf *b, const char *s, size_t len, bool keep_slash)
{
	sb_reserve(b, len * 3);
	if (b->err)
		return;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (unreserved(c) || (keep_slash && c == '/')) {
			b->p[b->len++] = (char)c;
		} else {
			b->p[b->len++] = '%';
			b->p[b->len++] = HEXU[c >> 4];
			b->p[b->len++] = HEXU[c & 15];
		}
	}
	b->p[b->len] = '\0';
}

int sigv4_uri_encode(const char *s, size_t len, bool keep_slash, char **out)
{
	struct sbuf b = {0};

	sb_encode(&b, s, len, keep_slash);
	return sb_finish(&b, out);
}

void sigv4_hex(const unsigned char *bytes, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = HEXL[bytes[i] >> 4];
		out[2 * i + 1] = HEXL[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}

void sigv4_base64(const unsigned char *bytes, size_t n, char *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)bytes[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)bytes[i + 1] << 8;
		if (left > 2)
			v |= bytes[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = left > 1 ? tab[(v >> 6) & 63] : '=';
		out[o++] = left > 2 ? tab[v & 63] : '=';
	}
	out[o] = '\0';
}

/* --- canonical URI ----------------------------------------------------- */

/*
 * RFC 3986 remove_dot_segments plus the collapse of empty segments that the
 * SigV4 suite expects ("//example//" -> "/example/"). A trailing '/' is kept
 * when the path ends with '/', "/." or "/..".
 */
static int normalize(const char *path, char **out)
{
	size_t n = strlen(path), nseg = 0;
	const char **seg;
	size_t *seglen;
	struct sbuf b = {0};
	bool trailing = false;
	const char *p = path;

	seg = calloc(n + 1, sizeof(*seg));
	seglen = calloc(n + 1, sizeof(*seglen));
	if (!seg || !seglen) {
		free(seg);
		free(seglen);
		return -ENOMEM;
	}
	while (*p) {
		const char *s;
		size_t l;

		while (*p == '/')
			p++;
		s = p;
		while (*p && *p != '/')
			p++;
		l = (size_t)(p - s);
		if (l == 0) {
			trailing = true;
			continue;
		}
		trailing = *p == '/';
		if (l == 1 && s[0] == '.') {
			trailing = true;
		} else if (l == 2 && s[0] == '.' && s[1] == '.') {
			if (nseg)
				nseg--;
			trailing = true;
		} else {
			seg[nseg] = s;
			seglen[nseg++] = l;
		}
	}
	for (size_t i = 0; i < nseg; i++) {
		sb_addc(&b, '/');
		sb_addn(&b, seg[i], seglen[i]);
	}
	if (nseg == 0 || trailing)
		sb_addc(&b, '/');
	free(seg);
	free(seglen);
	return sb_finish(&b, out);
}

static int canonical_uri(const struct sigv4_request *req, struct sbuf *b)
{
	char *norm = NULL;
	const char *path = req->path;
	int ret;

	if (req->normalize_path) {
		ret = normalize(path, &norm);
		if (ret)
			return ret;
		path = norm;
	}
	if (req->encode_path)
		sb_encode(b, path, strlen(path), true);
	else
		sb_add(b, path);
	free(norm);
	return b->err;
}

/* --- canonical query --------------------------------------------------- */

struct qpair {
	char *name, *value; /* encoded */
};

static int qpair_cmp(const struct qpair *a, const struct qpair *b)
{
	int c = strcmp(a->name, b->name);

	return c ? c : strcmp(a->value, b->value);
}

int sigv4_query_string(const struct sigv4_param *params, size_t n, char **out)
{
	struct qpair *q;
	struct sbuf b = {0};
	int ret = 0;

	*out = NULL;
	q = calloc(n ? n : 1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (size_t i = 0; i < n && !ret; i++) {
		const char *v = params[i].value ? params[i].value : "";

		ret = sigv4_uri_encode(params[i].name, strlen(params[i].name), false, &q[i].name);
		if (!ret)
			ret = sigv4_uri_encode(v, strlen(v), false, &q[i].value);
	}
	if (!ret) {
		/* Stable insertion sort by encoded name, then encoded value. */
		for (size_t i = 1; i < n; i++) {
			struct qpair t = q[i];
			size_t j = i;

			while (j > 0 && qpair_cmp(&q[j - 1], &t) > 0) {
				q[j] = q[j - 1];
				j--;
			}
			q[j] = t;
		}
		for (size_t i = 0; i < n; i++) {
			if (i)
				sb_addc(&b, '&');
			sb_add(&b, q[i].name);
			sb_addc(&b, '=');
			sb_add(&b, q[i].value);
		}
		ret = sb_finish(&b, out);
	}
	for (size_t i = 0; i < n; i++) {
		free(q[i].name);
		free(q[i].value);
	}
	free(q);
	return ret;
}

/* --- canonical headers ------------------------------------------------- */

struct hentry {
	char *name; /* lower-case */
	const char *value;
	size_t order;
};

static bool valid_header_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == ':' || *s == 0x7f)
			return false;
	return true;
}

/* Value with leading/trailing blanks removed and inner runs collapsed. */
static void sb_trimmed(struct sbuf *b, const char *v)
{
	bool space = false, any = false;

	for (; *v; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') {
			space = any;
			continue;
		}
		if (space)
			sb_addc(b, ' ');
		space = false;
		any = true;
		sb_addc(b, *v);
	}
}

int sigv4_canonical_request(const struct sigv4_request *req, char **creq_out, char **signed_out)
{
	struct sbuf b = {0}, sh = {0};
	struct hentry *h = NULL;
	char *query = NULL;
	size_t n = req->nheaders;
	int ret;

	*creq_out = NULL;
	*signed_out = NULL;
	if (!req->method || !*req->method || !req->path || !req->payload_hash)
		return -EINVAL;
	h = calloc(n ? n : 1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!req->headers[i].name || !req->headers[i].value ||
		    !valid_header_name(req->headers[i].name)) {
			ret = -EINVAL;
			goto out;
		}
		h[i].name = strdup(req->headers[i].name);
		if (!h[i].name) {
			ret = -ENOMEM;
			goto out;
		}
		for (char *c = h[i].name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		h[i].value = req->headers[i].value;
		h[i].order = i;
	}
	/* Stable insertion sort by name: duplicates keep the caller's order. */
	for (size_t i = 1; i < n; i++) {
		struct hentry t = h[i];
		size_t j = i;

		while (j > 0 && strcmp(h[j - 1].name, t.name) > 0) {
			h[j] = h[j - 1];
			j--;
		}
		h[j] = t;
	}

	sb_add(&b, req->method);
	sb_addc(&b, '\n');
	ret = canonical_uri(req, &b);
	if (ret)
		goto out;
	sb_addc(&b, '\n');
	ret = sigv4_query_string(req->query, req->nquery, &query);
	if (ret)
		goto out;
	sb_add(&b, query);
	sb_addc(&b, '\n');
	for (size_t i = 0; i < n; i++) {
		bool dup = i > 0 && strcmp(h[i - 1].name, h[i].name) == 0;

		if (dup) {
			sb_addc(&b, ',');
		} else {
			if (i) {
				sb_addc(&b, '\n');
				sb_addc(&sh, ';');
			}
			sb_add(&b, h[i].name);
			sb_addc(&b, ':');
			sb_add(&sh, h[i].name);
		}
		sb_trimmed(&b, h[i].value);
	}
	if (n)
		sb_addc(&b, '\n');
	sb_addc(&b, '\n');
	sb_reserve(&sh, 0);
	sb_add(&b, sh.p ? sh.p : "");
	sb_addc(&b, '\n');
	sb_add(&b, req->payload_hash);

	ret = sb_finish(&sh, signed_out);
	sh.p = NULL;
	if (!ret)
		ret = sb_finish(&b, creq_out);
	b.p = NULL;
	if (ret) {
		free(*signed_out);
		*signed_out = NULL;
	}
out:
	free(b.p);
	free(sh.p);
	free(query);
	for (size_t i = 0; i < n; i++)
		free(h[i].name);
	free(h);
	return ret;
}

/* --- string to sign, signature ----------------------------------------- */

static bool valid_timestamp(const char *ts)
{
	if (!ts || strlen(ts) != 16 || ts[8] != 'T' || ts[15] != 'Z')
		return false;
	for (int i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)ts[i]))
			return false;
	return true;
}

int sigv4_sha256_hex(const void *data, size_t len, char out[SIGV4_HEX_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return -EIO;
	sigv4_hex(md, 32, out);
	return 0;
}

int sigv4_md5_base64(const void *data, size_t len, char out[SIGV4_MD5_B64_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
		return -EIO;
	sigv4_base64(md, 16, out);
	return 0;
}

int sigv4_string_to_sign(const char *timestamp, const char *region, const char *service,
			 const char *canonical_request, char **out)
{
	struct sbuf b = {0};
	char hash[SIGV4_HEX_SIZE];
	int ret;

	*out = NULL;
	if (!valid_timestamp(timestamp) || !region || !service || !canonical_request)
		return -EINVAL;
	ret = sigv4_sha256_hex(canonical_request, strlen(canonical_request), hash);
	if (ret)
		return ret;
	sb_add(&b, SIGV4_ALGORITHM "\n");
	sb_add(&b, timestamp);
	sb_addc(&b, '\n');
	sb_addn(&b, timestamp, 8);
	sb_addc(&b, '/');
	sb_add(&b, region);
	sb_addc(&b, '/');
	sb_add(&b, service);
	sb_add(&b, "/aws4_request\n");
	sb_add(&b, hash);
	return sb_finish(&b, out);
}

static int hmac(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[32])
{
	size_t outlen = 0;

	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen, data, len, out, 32,
		       &outlen) ||
	    outlen != 32)
		return -EIO;
	return 0;
}

int sigv4_signature(const char *secret_key, const char *timestamp, const char *region,
		    const char *service, const char *string_to_sign, char signature[SIGV4_HEX_SIZE])
{
	unsigned char k[32], sig[32];
	size_t slen;
	char *ksecret;
	int ret;

	signature[0] = '\0';
	if (!secret_key || !valid_timestamp(timestamp) || !region || !service || !string_to_sign)
		return -EINVAL;
	slen = strlen(secret_key);
	ksecret = malloc(slen + 5);
	if (!ksecret)
		return -ENOMEM;
	memcpy(ksecret, "AWS4", 4);
	memcpy(ksecret + 4, secret_key, slen + 1);
	ret = hmac(ksecret, slen + 4, timestamp, 8, k);
	OPENSSL_cleanse(ksecret, slen + 4);
	free(ksecret);
	if (!ret)
		ret = hmac(k, 32, region, strlen(region), k);
	if (!ret)
		ret = hmac(k, 32, service, strlen(service), k);
	if (!ret)
		ret = hmac(k, 32, "aws4_request", 12, k);
	if (!ret)
		ret = hmac(k, 32, string_to_sign, strlen(string_to_sign), sig);
	OPENSSL_cleanse(k, sizeof(k));
	if (!ret)
		sigv4_hex(sig, 32, signature);
	return ret;
}

int sigv4_authorization(const char *access_key, const char *timestamp, const char *region,
			const char *service, const char *signed_headers, const char *signature,
			char **out)
{
	struct sbuf b = {0};

	*out = NULL;
	if (!access_key || !valid_timestamp(timestamp) || !region || !service || !signed_headers ||
	    !signature)
		return -EINVAL;
	sb_add(&b, SIGV4_ALGORITHM " Credential=");
	sb_add(&b, access_key);
	sb_addc(&b, '/');
	sb_addn(&b, timestamp, 8);
	sb_addc(&b, '/');
	sb_add(&b, region);
	sb_addc(&b, '/');
	sb_add(&b, service);
	sb_add(&b, "/aws4_request, SignedHeaders=");
	sb_add(&b, signed_headers);
	sb_add(&b, ", Signature=");
	sb_add(&b, signature);
	return sb_finish(&b, out);
}

void sigv4_result_free(struct sigv4_result *r)
{
	if (!r)
		return;
	free(r->canonical_request);
	free(r->signed_headers);
	free(r->string_to_sign);
	free(r->authorization);
	memset(r, 0, sizeof(*r));
}

int sigv4_sign(const struct sigv4_request *req, const struct sigv4_credentials *cred,
	       const char *timestamp, struct sigv4_result *out)
{
	struct sigv4_request r = *req;
	struct sigv4_header *hdrs = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!cred || !cred->access_key || !cred->secret_key || !cred->region || !cred->service)
		return -EINVAL;
	if (cred->session_token && *cred->session_token) {
		bool have = false;

		for (size_t i = 0; i < req->nheaders; i++)
			if (req->headers[i].name &&
			    strcasecmp(req->headers[i].name, "x-amz-security-token") == 0)
				have = true;
		if (!have) {
			hdrs = malloc((req->nheaders + 1) * sizeof(*hdrs));
			if (!hdrs)
				return -ENOMEM;
			if (req->nheaders)
				memcpy(hdrs, req->headers, req->nheaders * sizeof(*hdrs));
			hdrs[req->nheaders].name = "x-amz-security-token";
			hdrs[req->nheaders].value = cred->session_token;
			r.headers = hdrs;
			r.nheaders = req->nheaders + 1;
		}
	}
	ret = sigv4_canonical_request(&r, &out->canonical_request, &out->signed_headers);
	if (!ret)
		ret = sigv4_string_to_sign(timestamp, cred->region, cred->service,
					   out->canonical_request, &out->string_to_sign);
	if (!ret)
		ret = sigv4_signature(cred->secret_key, timestamp, cred->region, cred->service,
				      out->string_to_sign, out->signature);
	if (!ret)
		ret = sigv4_authorization(cred->access_key, timestamp, cred->region, cred->service,
					  out->signed_headers, out->signature, &out->authorization);
	free(hdrs);
	if (ret)
		sigv4_result_free(out);
	return ret;
}

int sigv4_timestamp(time_t t, char out[SIGV4_TIMESTAMP_SIZE])
{
	struct tm tm;

	out[0] = '\0';
	if (!gmtime_r(&t, &tm))
		return -EINVAL;
	if (strftime(out, SIGV4_TIMESTAMP_SIZE, "%Y%m%dT%H%M%SZ", &tm) != 16)
		return -EINVAL;
	return 0;
}

/* --- streaming digests ------------------------------------------------- */

struct sigv4_digest {
	EVP_MD_CTX *sha256;
	EVP_MD_CTX *md5;
};

void sigv4_digest_free(struct sigv4_digest *d)
{
	if (!d)
		return;
	EVP_MD_CTX_free(d->sha256);
	EVP_MD_CTX_free(d->md5);
	free(d);
}

int sigv4_digest_new(bool sha256, bool md5, struct sigv4_digest **out)
{
	struct sigv4_digest *d;

	*out = NULL;
	if (!sha256 && !md5)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	if (sha256) {
		d->sha256 = EVP_MD_CTX_new();
		if (!d->sha256 || !EVP_DigestInit_ex(d->sha256, EVP_sha256(), NULL))
			goto fail;
	}
	if (md5) {
		d->md5 = EVP_MD_CTX_new();
		if (!d->md5 || !EVP_DigestInit_ex(d->md5, EVP_md5(), NULL))
			goto fail;
	}
	*out = d;
	return 0;
fail:
	sigv4_digest_free(d);
	return -EIO;
}

int sigv4_digest_update(struct sigv4_digest *d, const void *data, size_t len)
{
	if (d->sha256 && !EVP_DigestUpdate(d->sha256, data, len))
		return -EIO;
	if (d->md5 && !EVP_DigestUpdate(d->md5, data, len))
		return -EIO;
	return 0;
}

int sigv4_digest_final(struct sigv4_digest *d, unsigned char sha256[32], unsigned char md5[16])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (d->sha256 && sha256) {
		if (!EVP_DigestFinal_ex(d->sha256, md, &len) || len != 32)
			return -EIO;
		memcpy(sha256, md, 32);
	}
	if (d->md5 && md5) {
		if (!EVP_DigestFinal_ex(d->md5, md, &len) || len != 16)
			return -EIO;
		memcpy(md5, md, 16);
	}
	return 0;
}
