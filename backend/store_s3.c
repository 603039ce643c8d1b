/*
 * store_s3.c - the "s3" object store: any S3-compatible service (AWS S3,
 * Ceph RGW, MinIO, Garage, ...) through http.c and sigv4.c. The design
 * essay (payload hashing, retries, multipart, the error table) is
 * docs/design-s3.md.
 *
 * Model: one request = one signed HTTP exchange, built by s3_call() from a
 * struct s3_op and retried there: transient failures (5xx, SlowDown,
 * RequestTimeout, resets, timeouts, refused connections) wait with
 * exponential backoff and full jitter, up to max_retries; everything else
 * is final at once. s3_errno() is the one table from HTTP status and S3
 * error code to errno; s3_call() logs a final failure once (method, key,
 * status, S3 code, request id, and what to fix), never a secret.
 *
 * Objects: key = prefix + the caller's key, URI-encoded once in the path
 * (path-style https://host/bucket/key or virtual-hosted
 * https://bucket.host/key). PUTs carry the payload's real SHA-256 in
 * x-amz-content-sha256 (so the server verifies what it signs) and its MD5 in
 * Content-MD5 (verified by every S3 implementation), both computed in a
 * first pass over the file range; the body then streams from the fd.
 * Objects of multipart_threshold bytes or more go up as a multipart upload,
 * parts in parallel (up to max_connections threads), aborted on any
 * failure. Ranged GETs check the length the server announced against what
 * arrived, and GETs into a file are split into part-sized ranges fetched in
 * parallel.
 *
 * Threading: a store is shared by all threads; its fields are read-only
 * after store_s3_open() but the counters (atomic). Each call runs on
 * the caller's thread, plus helper threads for parallel parts that are
 * joined before the call returns.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "docvault/config.h"
#include "docvault/http.h"
#include "docvault/log.h"
#include "docvault/sigv4.h"
#include "docvault/store.h"
#include "docvault/store_s3.h"

#define S3_KEY_MAX	   1024		/* bytes, S3's limit */
#define S3_MIN_PART	   (5ULL << 20) /* S3's smallest part but the last */
#define S3_MAX_PARTS	   10000	/* S3's largest part number */
#define S3_MAX_PUT	   (5ULL << 30) /* S3's largest single PUT */
#define S3_BACKOFF_BASE_MS 250		/* first retry waits up to this */
#define S3_BACKOFF_CAP_MS  20000	/* no retry waits longer */
#define S3_HASH_BUF	   (256 * 1024) /* first-pass read size */
#define S3_XML_MAX	   (16 << 20)	/* largest XML answer accepted */
#define S3_DELETE_BATCH	   1000		/* keys per DeleteObjects */

/* Response headers every request captures, by index. */
enum { CAP_REQUEST_ID, CAP_ETAG, CAP_LENGTH, CAP_RANGE, CAP_N };
static const char *const s3_capture[CAP_N] = {"x-amz-request-id", "ETag", "Content-Length",
					      "Content-Range"};

struct store_s3 {
	struct store base;
	struct http_client *http;
	char *scheme;	 /* "http" or "https" */
	char *host;	 /* Host header: [bucket.]host[:port] */
	char *base_path; /* the endpoint's own path, "" or "/s3" */
	char *endpoint;	 /* as configured, for messages */
	char *bucket;
	char *prefix; /* "" or ends with '/' */
	char *region;
	char *access_key;
	char *secret_key;
	char *session_token;
	bool path_style;
	uint64_t part_size;
	uint64_t multipart_threshold;
	int max_connections;
	int max_retries;
	double request_timeout;		 /* idle bound of bulk transfers */
	int list_max_keys;		 /* 0 = the server's default (test hook) */
	atomic_uint_fast64_t requests;	 /* HTTP attempts made (test hook, metrics) */
	atomic_uint_fast64_t backoff_ms; /* waited before retries (test hook, metrics) */
};

/* One logical S3 request; s3_call() signs, sends and retries it. */
struct s3_op {
	const char *method;
	const char *key;  /* the caller's key (no prefix); NULL: the bucket */
	const char *what; /* detail for logs ("part 3 of 7"), or NULL */
	const struct sigv4_param *query;
	size_t nquery;
	const char *range;	    /* Range header, or NULL */
	const char *content_md5;    /* Content-MD5 header, or NULL */
	const char *content_type;   /* Content-Type header, or NULL */
	const char *payload_sha256; /* hex; NULL: SHA-256 of the empty body */
	struct http_request http;   /* body, sink and timeouts (the rest is filled in) */
	bool quiet_404;		    /* 404 (but NoSuchBucket) is an answer, not a failure: no log */
	bool quiet_416;
	bool error_in_200; /* a 200 body may be an <Error> (CompleteMultipartUpload) */
};

struct s3_reply {
	int status; /* HTTP status of the last attempt, 0 if none */
	int attempts;
	char code[64]; /* S3 error code, "" if none */
	char message[256];
	char request_id[128];
	struct http_response http; /* the last attempt's response */
};

static struct store_s3 *s3_of(struct store *st)
{
	return (struct store_s3 *)st;
}

/* --- XML: just enough for S3's answers ---------------------------------- */

/*
 * Finds the first element <tag>...</tag> (or <tag/>) in [p, end). On
 * success [*ib, *ie) delimits its content and *next points past it.
 */
static bool xml_find(const char *p, const char *end, const char *tag, const char **ib,
		     const char **ie, const char **next)
{
	size_t tl = strlen(tag);
	char close[80];

	if (tl + 4 > sizeof(close))
		return false;
	snprintf(close, sizeof(close), "</%s>", tag);
	while (p < end) {
		const char *lt = memchr(p, '<', (size_t)(end - p)), *n, *gt, *c;

		if (!lt)
			return false;
		n = lt + 1;
		p = n;
		if ((size_t)(end - n) <= tl || memcmp(n, tag, tl) != 0 ||
		    !strchr(">/ \t\r\n", n[tl]))
			continue;
		gt = memchr(n + tl, '>', (size_t)(end - (n + tl)));
		if (!gt)
			return false;
		if (gt[-1] == '/') {
			*ib = *ie = *next = gt + 1;
			return true;
		}
		c = memmem(gt + 1, (size_t)(end - (gt + 1)), close, tl + 3);
		if (!c)
			return false;
		*ib = gt + 1;
		*ie = c;
		*next = c + tl + 3;
		return true;
	}
	return false;
}

static size_t utf8_put(uint32_t cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * The text [b, e) with the five predefined entities and numeric character
 * references decoded; anything else is kept as it is. Malloc'ed, NULL if
 * out of memory. The output is never longer than the input.
 */
static char *xml_text(const char *b, const char *e)
{
	char *out = malloc((size_t)(e - b) + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	while (b < e) {
		const char *semi;
		size_t nl;

		if (*b != '&' ||
		    !(semi = memchr(b, ';', (size_t)(e - b) < 12 ? (size_t)(e - b) : 12))) {
			out[o++] = *b++;
			continue;
		}
		nl = (size_t)(semi - b - 1);
		if (nl == 3 && memcmp(b + 1, "amp", 3) == 0) {
			out[o++] = '&';
		} else if (nl == 2 && memcmp(b + 1, "lt", 2) == 0) {
			out[o++] = '<';
		} else if (nl == 2 && memcmp(b + 1, "gt", 2) == 0) {
			out[o++] = '>';
		} else if (nl == 4 && memcmp(b + 1, "quot", 4) == 0) {
			out[o++] = '"';
		} else if (nl == 4 && memcmp(b + 1, "apos", 4) == 0) {
			out[o++] = '\'';
		} else if (nl >= 2 && b[1] == '#') {
			bool hex = b[2] == 'x' || b[2] == 'X';
			const char *d = b + (hex ? 3 : 2);
			uint32_t cp = 0;
			bool ok = d < semi;

			for (; d < semi && ok; d++) {
				int v = -1;

				if (*d >= '0' && *d <= '9')
					v = *d - '0';
				else if (hex && *d >= 'a' && *d <= 'f')
					v = *d - 'a' + 10;
				else if (hex && *d >= 'A' && *d <= 'F')
					v = *d - 'A' + 10;
				if (v < 0 || cp > 0x10ffff)
					ok = false;
				else
					cp = cp * (hex ? 16 : 10) + (uint32_t)v;
			}
			if (!ok || cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
				out[o++] = *b++;
				continue;
			}
			o += utf8_put(cp, out + o);
		} else {
			out[o++] = *b++;
			continue;
		}
		b = semi + 1;
	}
	out[o] = '\0';
	return out;
}

/* Copies the decoded text of <tag> in [p, end) into buf; false if absent. */
static bool xml_get(const char *p, const char *end, const char *tag, char *buf, size_t len)
{
	const char *ib, *ie, *next;
	char *t;

	if (!xml_find(p, end, tag, &ib, &ie, &next))
		return false;
	t = xml_text(ib, ie);
	if (!t)
		return false;
	snprintf(buf, len, "%s", t);
	free(t);
	return true;
}

/* Appends s to the growing string *buf with & < > escaped. */
static int xml_escape_append(char **buf, size_t *len, size_t *cap, const char *s)
{
	for (; *s; s++) {
		const char *rep = NULL;
		size_t rl = 1;

		if (*s == '&')
			rep = "&amp;";
		else if (*s == '<')
			rep = "&lt;";
		else if (*s == '>')
			rep = "&gt;";
		if (rep)
			rl = strlen(rep);
		if (*len + rl + 1 > *cap) {
			size_t nc = *cap ? *cap * 2 : 4096;
			char *p;

			while (nc < *len + rl + 1)
				nc *= 2;
			p = realloc(*buf, nc);
			if (!p)
				return -ENOMEM;
			*buf = p;
			*cap = nc;
		}
		if (rep)
			memcpy(*buf + *len, rep, rl);
		else
			(*buf)[*len] = *s;
		*len += rl;
		(*buf)[*len] = '\0';
	}
	return 0;
}

static int str_append(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t sl = strlen(s);

	if (*len + sl + 1 > *cap) {
		size_t nc = *cap ? *cap * 2 : 4096;
		char *p;

		while (nc < *len + sl + 1)
			nc *= 2;
		p = realloc(*buf, nc);
		if (!p)
			return -ENOMEM;
		*buf = p;
		*cap = nc;
	}
	memcpy(*buf + *len, s, sl + 1);
	*len += sl;
	return 0;
}

/* --- errors ------------------------------------------------------------- */

static bool code_is(const char *code, const char *what)
{
	return strcmp(code, what) == 0;
}

/*
 * THE table: HTTP status (or a negative transport errno) and S3 error code
 * to errno, and whether the request is worth repeating. See
 * docs/design-s3.md for the reasoning.
 */
static int s3_errno(int status, const char *code, bool *retry)
{
	*retry = false;
	if (status < 0) {
		switch (status) {
		case -ETIMEDOUT:
			*retry = true;
			return -ETIMEDOUT;
		case -ECONNREFUSED:
		case -ECONNRESET:
		case -ECONNABORTED:
		case -EHOSTUNREACH:
		case -EPIPE:
		case -EAGAIN:
			*retry = true;
			return -EIO;
		case -EPROTO:
		case -EBADMSG:
		case -EMSGSIZE:
			return -EIO;
		default: /* local: -ENOMEM, -EINVAL, a failed read or write of the fd */
			return status;
		}
	}
	if (status >= 200 && status <= 299 && !*code)
		return 0;

	/* By S3 error code first: it says more than the status. */
	if (code_is(code, "SlowDown") || code_is(code, "InternalError") ||
	    code_is(code, "ServiceUnavailable") || code_is(code, "OperationAborted") ||
	    code_is(code, "BadDigest") || code_is(code, "XAmzContentSHA256Mismatch") ||
	    code_is(code, "IncompleteBody") || code_is(code, "RequestTimeout")) {
		/* Transient, or the bytes were damaged on the way: send again. */
		*retry = true;
		return code_is(code, "RequestTimeout") ? -ETIMEDOUT : -EIO;
	}
	if (code_is(code, "NoSuchKey") || code_is(code, "NoSuchUpload") ||
	    code_is(code, "NoSuchBucket"))
		return -ENOENT;
	if (code_is(code, "AccessDenied") || code_is(code, "SignatureDoesNotMatch") ||
	    code_is(code, "InvalidAccessKeyId") || code_is(code, "RequestTimeTooSkewed") ||
	    code_is(code, "AuthorizationHeaderMalformed") || code_is(code, "ExpiredToken") ||
	    code_is(code, "InvalidToken") || code_is(code, "TokenRefreshRequired") ||
	    code_is(code, "AccountProblem") || code_is(code, "AllAccessDisabled") ||
	    code_is(code, "InvalidSecurity"))
		return -EACCES;
	if (code_is(code, "QuotaExceeded") || code_is(code, "InsufficientStorage"))
		return -ENOSPC;
	if (code_is(code, "EntityTooLarge"))
		return -EFBIG;
	if (code_is(code, "InvalidRange") || code_is(code, "InvalidArgument") ||
	    code_is(code, "InvalidRequest") || code_is(code, "KeyTooLongError") ||
	    code_is(code, "MalformedXML") || code_is(code, "InvalidPart") ||
	    code_is(code, "InvalidPartOrder") || code_is(code, "EntityTooSmall") ||
	    code_is(code, "InvalidDigest") || code_is(code, "MissingContentLength") ||
	    code_is(code, "InvalidBucketName") || code_is(code, "MetadataTooLarge"))
		return -EINVAL;
	if (code_is(code, "NotImplemented"))
		return -EOPNOTSUPP;
	if (code_is(code, "BucketNotEmpty"))
		return -ENOTEMPTY;
	if (code_is(code, "BucketAlreadyExists") || code_is(code, "BucketAlreadyOwnedByYou"))
		return -EEXIST;

	/* Then by status. */
	switch (status) {
	case 400:
	case 411:
	case 416:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 405:
	case 501:
		return -EOPNOTSUPP;
	case 408:
		*retry = true;
		return -ETIMEDOUT;
	case 409:
		return -EBUSY;
	case 412:
		return -EEXIST;
	case 429:
	case 500:
	case 502:
	case 503:
	case 504:
		*retry = true;
		return -EIO;
	case 507:
		return -ENOSPC;
	default:
		return -EIO;
	}
}

/* What the operator should do about a final failure, or "". */
static const char *s3_hint(int status, const char *code)
{
	if (status == -ECONNREFUSED)
		return "nothing answers at the endpoint: is the S3 server running, and is "
		       "[storage] endpoint right?";
	if (status == -EHOSTUNREACH)
		return "the endpoint's host does not resolve or cannot be reached: check "
		       "[storage] endpoint and the network";
	if (status == -ETIMEDOUT)
		return "the server did not answer in time: check the network, or raise "
		       "[storage] connect_timeout / request_timeout";
	if (status == -EPROTO)
		return "TLS failed: check the server's certificate, [storage] ca_file, or "
		       "tls_verify";
	if (code_is(code, "SignatureDoesNotMatch"))
		return "the secret key does not match the access key: check [storage] secret_key "
		       "(or AWS_SECRET_ACCESS_KEY)";
	if (code_is(code, "InvalidAccessKeyId"))
		return "the server does not know this access key: check [storage] access_key (or "
		       "AWS_ACCESS_KEY_ID)";
	if (code_is(code, "NoSuchBucket"))
		return "the bucket does not exist: create it, or fix [storage] bucket";
	if (code_is(code, "AccessDenied"))
		return "these credentials may not do this: check the user's permissions and the "
		       "bucket policy";
	if (code_is(code, "AuthorizationHeaderMalformed"))
		return "the server expects another region: check [storage] region";
	if (code_is(code, "RequestTimeTooSkewed"))
		return "this machine's clock is more than 15 minutes off the server's: fix the "
		       "clock (NTP)";
	if (code_is(code, "ExpiredToken") || code_is(code, "InvalidToken") ||
	    code_is(code, "TokenRefreshRequired"))
		return "the session token is expired or wrong: renew AWS_SESSION_TOKEN";
	if (code_is(code, "QuotaExceeded"))
		return "the user's or the bucket's quota is used up";
	if (code_is(code, "PermanentRedirect") || status == 301)
		return "the bucket lives elsewhere: check [storage] region, endpoint and "
		       "path_style";
	if (status == 403 && !*code)
		return "access refused (a HEAD answer carries no detail): check access_key, "
		       "secret_key and permissions";
	return "";
}

/* --- requests ----------------------------------------------------------- */

static int s3_check_key(const struct store_s3 *s, const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n + strlen(s->prefix) > S3_KEY_MAX)
		return -EINVAL;
	return 0;
}

/* The request path (encoded once, as sent and as signed). */
static int s3_path(const struct store_s3 *s, const char *key, char **out)
{
	char *full = NULL, *enc = NULL;
	int ret;

	*out = NULL;
	if (!key) {
		ret = s->path_style ? asprintf(out, "%s/%s", s->base_path, s->bucket)
				    : asprintf(out, "%s/", s->base_path);
		return ret < 0 ? -ENOMEM : 0;
	}
	if (asprintf(&full, "%s%s", s->prefix, key) < 0)
		return -ENOMEM;
	ret = sigv4_uri_encode(full, strlen(full), true, &enc);
	free(full);
	if (ret)
		return ret;
	ret = s->path_style ? asprintf(out, "%s/%s/%s", s->base_path, s->bucket, enc)
			    : asprintf(out, "%s/%s", s->base_path, enc);
	free(enc);
	return ret < 0 ? -ENOMEM : 0;
}

/* The query as sent ("uploads", "partNumber=1&uploadId=x"), "" for none. */
static int s3_wire_query(const struct sigv4_param *q, size_t n, char **out)
{
	char *buf = NULL, *e;
	size_t len = 0, cap = 0;
	int ret = 0;

	*out = NULL;
	for (size_t i = 0; i < n && !ret; i++) {
		if (i)
			ret = str_append(&buf, &len, &cap, "&");
		if (!ret && !(ret = sigv4_uri_encode(q[i].name, strlen(q[i].name), false, &e))) {
			ret = str_append(&buf, &len, &cap, e);
			free(e);
		}
		if (!ret && q[i].value) {
			ret = str_append(&buf, &len, &cap, "=");
			if (!ret &&
			    !(ret = sigv4_uri_encode(q[i].value, strlen(q[i].value), false, &e))) {
				ret = str_append(&buf, &len, &cap, e);
				free(e);
			}
		}
	}
	if (!ret && !buf)
		ret = str_append(&buf, &len, &cap, "");
	if (ret) {
		free(buf);
		return ret;
	}
	*out = buf;
	return 0;
}

/* One signed attempt. Returns the HTTP status or a negative errno. */
static int s3_attempt(struct store_s3 *s, const struct s3_op *op, const char *path, const char *url,
		      struct s3_reply *rep)
{
	char ts[SIGV4_TIMESTAMP_SIZE];
	struct sigv4_header sh[8];
	struct http_header hh[10];
	struct sigv4_result sig;
	struct sigv4_request sr = {0};
	const struct sigv4_credentials cred = {s->access_key, s->secret_key, s->session_token,
					       s->region, "s3"};
	struct http_request hr = op->http;
	const char *payload = op->payload_sha256 ? op->payload_sha256 : SIGV4_EMPTY_SHA256;
	size_t n = 0, nh;
	int ret;

	ret = sigv4_timestamp(time(NULL), ts);
	if (ret)
		return ret;
	sh[n++] = (struct sigv4_header){"host", s->host};
	sh[n++] = (struct sigv4_header){"x-amz-content-sha256", payload};
	sh[n++] = (struct sigv4_header){"x-amz-date", ts};
	if (op->range)
		sh[n++] = (struct sigv4_header){"range", op->range};
	if (op->content_md5)
		sh[n++] = (struct sigv4_header){"content-md5", op->content_md5};
	if (op->content_type)
		sh[n++] = (struct sigv4_header){"content-type", op->content_type};
	sr.method = op->method;
	sr.path = path;
	sr.encode_path = false; /* S3: the path is signed as sent, encoded once */
	sr.normalize_path = false;
	sr.query = op->query;
	sr.nquery = op->nquery;
	sr.headers = sh;
	sr.nheaders = n;
	sr.payload_hash = payload;
	ret = sigv4_sign(&sr, &cred, ts, &sig);
	if (ret)
		return ret;
	for (nh = 0; nh < n; nh++)
		hh[nh] = (struct http_header){sh[nh].name, sh[nh].value};
	if (s->session_token)
		hh[nh++] = (struct http_header){"x-amz-security-token", s->session_token};
	hh[nh++] = (struct http_header){"authorization", sig.authorization};

	hr.method = op->method;
	hr.url = url;
	hr.headers = hh;
	hr.nheaders = nh;
	hr.capture = s3_capture;
	hr.ncapture = CAP_N;
	atomic_fetch_add(&s->requests, 1);
	ret = http_request(s->http, &hr, &rep->http);
	sigv4_result_free(&sig);
	rep->status = rep->http.status;
	if (rep->http.captured[CAP_REQUEST_ID])
		snprintf(rep->request_id, sizeof(rep->request_id), "%s",
			 rep->http.captured[CAP_REQUEST_ID]);
	if (rep->http.error_body) {
		const char *b = rep->http.error_body, *e = b + rep->http.error_body_len;

		xml_get(b, e, "Code", rep->code, sizeof(rep->code));
		xml_get(b, e, "Message", rep->message, sizeof(rep->message));
		if (!rep->request_id[0])
			xml_get(b, e, "RequestId", rep->request_id, sizeof(rep->request_id));
	}
	if (ret >= 200 && ret <= 299 && op->error_in_200 && rep->http.body) {
		const char *b = rep->http.body, *e = b + rep->http.body_bytes, *ib, *ie, *nx;

		/* CompleteMultipartUpload may answer 200 and fail in the body. */
		if (xml_find(b, e, "Error", &ib, &ie, &nx)) {
			xml_get(ib, ie, "Code", rep->code, sizeof(rep->code));
			xml_get(ib, ie, "Message", rep->message, sizeof(rep->message));
			if (!rep->code[0])
				snprintf(rep->code, sizeof(rep->code), "InternalError");
		}
	}
	return ret;
}

static void s3_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
static long s3_backoff_ms(int attempt)
{
	long window = S3_BACKOFF_CAP_MS;

	if (attempt < 16) {
		window = (long)S3_BACKOFF_BASE_MS << attempt;
		if (window > S3_BACKOFF_CAP_MS)
			window = S3_BACKOFF_CAP_MS;
	}
	return (long)arc4random_uniform((uint32_t)window + 1);
}

static void s3_log_failure(const struct store_s3 *s, const struct s3_op *op,
			   const struct s3_reply *rep, int status, int err)
{
	char what[160] = "", http[512] = "";
	const char *hint = s3_hint(status, rep->code);

	if (op->what)
		snprintf(what, sizeof(what), " (%s)", op->what);
	if (status < 0)
		snprintf(http, sizeof(http), "%.255s",
			 rep->http.error[0] ? rep->http.error : strerror(-status));
	else
		snprintf(http, sizeof(http), "HTTP %d%s%.63s%s%.255s", status,
			 rep->code[0] ? " " : "", rep->code, rep->message[0] ? ": " : "",
			 rep->message);
	log_error("s3 %s bucket %s: %s %s%s%s: %s (request id %s, %d attempt%s): %s%s%s",
		  s->endpoint, s->bucket, op->method, op->key ? s->prefix : "",
		  op->key ? op->key : "(bucket)", what, http,
		  rep->request_id[0] ? rep->request_id : "none", rep->attempts,
		  rep->attempts == 1 ? "" : "s", strerror(-err), *hint ? "; " : "", hint);
}

static void s3_reply_reset(struct s3_reply *rep)
{
	http_response_free(&rep->http);
	rep->status = 0;
	rep->code[0] = rep->message[0] = rep->request_id[0] = '\0';
}

static void s3_reply_free(struct s3_reply *rep)
{
	http_response_free(&rep->http);
}

/*
 * Sends op, retrying transient failures. Returns 0 on a 2xx answer (the
 * reply then holds it), else the final negative errno, logged once unless
 * it is an expected 404/416. rep needs s3_reply_free() in both cases.
 */
static int s3_call(struct store_s3 *s, const struct s3_op *op, struct s3_reply *rep)
{
	char *path = NULL, *query = NULL, *url = NULL;
	int status = 0, err = 0;
	bool retry;

	memset(rep, 0, sizeof(*rep));
	if ((err = s3_path(s, op->key, &path)) ||
	    (err = s3_wire_query(op->query, op->nquery, &query)))
		goto out;
	if (asprintf(&url, "%s://%s%s%s%s", s->scheme, s->host, path, *query ? "?" : "", query) <
	    0) {
		url = NULL;
		err = -ENOMEM;
		goto out;
	}
	for (int attempt = 0;; attempt++) {
		s3_reply_reset(rep);
		rep->attempts = attempt + 1;
		status = s3_attempt(s, op, path, url, rep);
		err = s3_errno(status, rep->code, &retry);
		if (!err)
			break;
		/* An expected answer is not a failure; a missing bucket always is. */
		if ((status == 404 && op->quiet_404 && !code_is(rep->code, "NoSuchBucket")) ||
		    (status == 416 && op->quiet_416))
			goto out;
		if (!retry || attempt >= s->max_retries) {
			s3_log_failure(s, op, rep, status, err);
			goto out;
		}
		{
			long ms = s3_backoff_ms(attempt);
			char why[96];

			if (status < 0)
				snprintf(why, sizeof(why), "%s", strerror(-status));
			else
				snprintf(why, sizeof(why), "HTTP %d %s", status, rep->code);
			atomic_fetch_add(&s->backoff_ms, (uint_fast64_t)ms);
			log_debug("s3 %s: %s %s%s%s%s%s: %s, retry %d of %d in %ld ms", s->endpoint,
				  op->method, op->key ? s->prefix : "",
				  op->key ? op->key : "(bucket)", op->what ? " (" : "",
				  op->what ? op->what : "", op->what ? ")" : "", why, attempt + 1,
				  s->max_retries, ms);
			s3_sleep_ms(ms);
		}
	}
out:
	free(path);
	free(query);
	free(url);
	return err;
}

/* Logs a failure found after a 2xx answer (a check of ours), once. */
static int s3_fail(struct store_s3 *s, const struct s3_op *op, struct s3_reply *rep, int err,
		   const char *why)
{
	snprintf(rep->message, sizeof(rep->message), "%s", why);
	s3_log_failure(s, op, rep, rep->status, err);
	return err;
}

/* --- head, delete, list ------------------------------------------------- */

static bool parse_u64(const char *v, uint64_t *out)
{
	char *end;

	if (!v || !*v)
		return false;
	errno = 0;
	*out = strtoull(v, &end, 10);
	return !*end && !errno;
}

static int s3_head(struct store *st, const char *key, uint64_t *size)
{
	struct store_s3 *s = s3_of(st);
	struct s3_op op = {.method = "HEAD", .key = key, .quiet_404 = true};
	struct s3_reply rep;
	int ret;

	if ((ret = s3_check_key(s, key)))
		return ret;
	ret = s3_call(s, &op, &rep);
	if (!ret && !parse_u64(rep.http.captured[CAP_LENGTH], size))
		ret = s3_fail(s, &op, &rep, -EIO, "no valid Content-Length in the answer");
	s3_reply_free(&rep);
	return ret;
}

static int s3_del(struct store *st, const char *key)
{
	struct store_s3 *s = s3_of(st);
	struct s3_op op = {.method = "DELETE", .key = key, .quiet_404 = true};
	struct s3_reply rep;
	int ret;

	if ((ret = s3_check_key(s, key)))
		return ret;
	ret = s3_call(s, &op, &rep);
	s3_reply_free(&rep);
	return ret == -ENOENT ? 0 : ret;
}

static bool xml_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	return true;
}

/* One DeleteObjects request for keys[0..n). */
static int s3_del_some(struct store_s3 *s, const char *const *keys, size_t n)
{
	static const struct sigv4_param q[] = {{"delete", NULL}};
	char *xml = NULL, md5[SIGV4_MD5_B64_SIZE], sha[SIGV4_HEX_SIZE], what[64];
	size_t len = 0, cap = 0;
	struct s3_reply rep;
	struct s3_op op = {.method = "POST", .key = NULL, .what = what, .query = q, .nquery = 1};
	const char *b, *e, *ib, *ie, *nx;
	int ret;

	snprintf(what, sizeof(what), "delete %zu objects", n);
	ret = str_append(
	    &xml, &len, &cap,
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	    "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>");
	for (size_t i = 0; i < n && !ret; i++) {
		char *full;

		if (asprintf(&full, "%s%s", s->prefix, keys[i]) < 0) {
			ret = -ENOMEM;
			break;
		}
		ret = str_append(&xml, &len, &cap, "<Object><Key>");
		if (!ret)
			ret = xml_escape_append(&xml, &len, &cap, full);
		if (!ret)
			ret = str_append(&xml, &len, &cap, "</Key></Object>");
		free(full);
	}
	if (!ret)
		ret = str_append(&xml, &len, &cap, "</Delete>");
	if (!ret)
		ret = sigv4_md5_base64(xml, len, md5);
	if (!ret)
		ret = sigv4_sha256_hex(xml, len, sha);
	if (ret) {
		free(xml);
		return ret;
	}
	op.content_md5 = md5;
	op.content_type = "application/xml";
	op.payload_sha256 = sha;
	op.http.body_kind = HTTP_BODY_MEM;
	op.http.body.mem.data = xml;
	op.http.body.mem.len = len;
	op.http.sink_kind = HTTP_SINK_ALLOC;
	op.http.sink.alloc_cap = S3_XML_MAX;
	ret = s3_call(s, &op, &rep);
	if (ret) {
		free(xml);
		s3_reply_free(&rep);
		return ret;
	}
	/* Quiet mode lists only the keys that failed. */
	b = rep.http.body ? rep.http.body : "";
	e = b + rep.http.body_bytes;
	while (xml_find(b, e, "Error", &ib, &ie, &nx)) {
		char code[64] = "", key[S3_KEY_MAX + 1] = "", msg[200] = "";
		bool retry;

		b = nx;
		xml_get(ib, ie, "Code", code, sizeof(code));
		if (code_is(code, "NoSuchKey"))
			continue;
		xml_get(ib, ie, "Key", key, sizeof(key));
		xml_get(ib, ie, "Message", msg, sizeof(msg));
		ret = s3_errno(500, code, &retry);
		snprintf(rep.code, sizeof(rep.code), "%s", code);
		snprintf(what, sizeof(what), "batch delete");
		/* The server names the full key: show the caller's. */
		op.key =
		    strncmp(key, s->prefix, strlen(s->prefix)) == 0 ? key + strlen(s->prefix) : key;
		s3_fail(s, &op, &rep, ret, msg);
		break;
	}
	free(xml);
	s3_reply_free(&rep);
	return ret;
}

static int s3_del_batch(struct store *st, const char *const *keys, size_t n)
{
	struct store_s3 *s = s3_of(st);
	size_t i = 0;
	int ret;

	for (size_t k = 0; k < n; k++)
		if ((ret = s3_check_key(s, keys[k])))
			return ret;
	while (i < n) {
		size_t m = 0;

		/* A key XML 1.0 cannot carry goes alone, with a plain DELETE. */
		if (!xml_safe(keys[i]) || !xml_safe(s->prefix)) {
			ret = s3_del(st, keys[i]);
			if (ret)
				return ret;
			i++;
			continue;
		}
		while (i + m < n && m < S3_DELETE_BATCH && xml_safe(keys[i + m]))
			m++;
		ret = s3_del_some(s, keys + i, m);
		if (ret == -EOPNOTSUPP) {
			/* No DeleteObjects on this server: one at a time. */
			for (size_t k = 0; k < m; k++)
				if ((ret = s3_del(st, keys[i + k])))
					return ret;
		} else if (ret) {
			return ret;
		}
		i += m;
	}
	return 0;
}

static int s3_list(struct store *st, const char *prefix, store_list_cb cb, void *arg)
{
	struct store_s3 *s = s3_of(st);
	char *full = NULL, *token = NULL, maxkeys[16];
	size_t plen = strlen(s->prefix);
	int ret, page = 0;
	bool stop = false;

	if (asprintf(&full, "%s%s", s->prefix, prefix ? prefix : "") < 0)
		return -ENOMEM;
	snprintf(maxkeys, sizeof(maxkeys), "%d", s->list_max_keys);
	do {
		struct sigv4_param q[4] = {{"list-type", "2"}, {"prefix", full}};
		size_t nq = 2;
		char what[48];
		struct s3_op op = {.method = "GET", .key = NULL, .what = what, .query = q};
		struct s3_reply rep;
		const char *b, *e, *ib, *ie, *nx;
		char truncated[8] = "";

		if (token)
			q[nq++] = (struct sigv4_param){"continuation-token", token};
		if (s->list_max_keys > 0)
			q[nq++] = (struct sigv4_param){"max-keys", maxkeys};
		op.nquery = nq;
		op.http.sink_kind = HTTP_SINK_ALLOC;
		op.http.sink.alloc_cap = S3_XML_MAX;
		snprintf(what, sizeof(what), "list %s, page %d", full, ++page);
		ret = s3_call(s, &op, &rep);
		if (ret) {
			s3_reply_free(&rep);
			break;
		}
		b = rep.http.body ? rep.http.body : "";
		e = b + rep.http.body_bytes;
		while (!stop && xml_find(b, e, "Contents", &ib, &ie, &nx)) {
			const char *kb, *ke, *kn;
			char size[32] = "", *key, *end;
			uint64_t sz;

			b = nx;
			if (!xml_find(ib, ie, "Key", &kb, &ke, &kn) ||
			    !xml_get(ib, ie, "Size", size, sizeof(size))) {
				ret = s3_fail(s, &op, &rep, -EIO,
					      "a listing entry without Key or Size");
				break;
			}
			errno = 0;
			sz = strtoull(size, &end, 10);
			key = xml_text(kb, ke);
			if (!key) {
				ret = -ENOMEM;
				break;
			}
			if (errno || *end || strncmp(key, s->prefix, plen) != 0) {
				free(key);
				ret = s3_fail(s, &op, &rep, -EIO,
					      "a listing entry that does not parse");
				break;
			}
			if (cb(arg, key + plen, sz))
				stop = true;
			free(key);
		}
		free(token);
		token = NULL;
		b = rep.http.body ? rep.http.body : "";
		if (!ret && !stop && xml_get(b, e, "IsTruncated", truncated, sizeof(truncated)) &&
		    strcmp(truncated, "true") == 0) {
			char *t = NULL;

			if (xml_find(b, e, "NextContinuationToken", &ib, &ie, &nx))
				t = xml_text(ib, ie);
			if (!t || !*t) {
				free(t);
				ret = s3_fail(s, &op, &rep, -EIO,
					      "a truncated listing without NextContinuationToken");
			} else {
				token = t;
			}
		}
		s3_reply_free(&rep);
	} while (!ret && !stop && token);
	free(token);
	free(full);
	return ret;
}

/* --- parallel helpers --------------------------------------------------- */

struct s3_par {
	int (*fn)(void *ctx, uint64_t i);
	void *ctx;
	uint64_t n;
	atomic_uint_fast64_t next;
	atomic_int err; /* the first failure */
};

static void *s3_par_worker(void *arg)
{
	struct s3_par *p = arg;

	while (!atomic_load(&p->err)) {
		uint64_t i = atomic_fetch_add(&p->next, 1);
		int ret, zero = 0;

		if (i >= p->n)
			break;
		ret = p->fn(p->ctx, i);
		if (ret)
			atomic_compare_exchange_strong(&p->err, &zero, ret);
	}
	return NULL;
}

/* Runs fn(ctx, 0..n-1) on up to `threads` threads (the caller's included). */
static int s3_par_run(int (*fn)(void *, uint64_t), void *ctx, uint64_t n, int threads)
{
	struct s3_par p = {.fn = fn, .ctx = ctx, .n = n};
	pthread_t *tid;
	int started = 0;

	atomic_init(&p.next, 0);
	atomic_init(&p.err, 0);
	if ((uint64_t)threads > n)
		threads = (int)n;
	tid = threads > 1 ? calloc((size_t)threads - 1, sizeof(*tid)) : NULL;
	for (int i = 0; tid && i < threads - 1; i++) {
		if (pthread_create(&tid[i], NULL, s3_par_worker, &p) != 0)
			break; /* fewer threads, same work */
		started++;
	}
	s3_par_worker(&p);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	free(tid);
	return atomic_load(&p.err);
}

/* --- get ---------------------------------------------------------------- */

/* Parses "bytes A-B/TOTAL" (TOTAL may be '*'). */
static bool parse_content_range(const char *v, uint64_t *a, uint64_t *b, uint64_t *total)
{
	char *end;

	if (!v || strncasecmp(v, "bytes ", 6) != 0)
		return false;
	v += 6;
	errno = 0;
	*a = strtoull(v, &end, 10);
	if (end == v || *end != '-')
		return false;
	v = end + 1;
	*b = strtoull(v, &end, 10);
	if (end == v || *end != '/' || errno || *b < *a)
		return false;
	v = end + 1;
	if (*v == '*') {
		*total = UINT64_MAX;
		return true;
	}
	*total = strtoull(v, &end, 10);
	return end != v && !*end && !errno;
}

/*
 * Checks a ranged GET's answer: the range [off, off+want) was asked, got
 * bytes arrived. Sets *avail to what the object holds from off (<= want).
 */
static int s3_check_range(struct store_s3 *s, const struct s3_op *op, struct s3_reply *rep,
			  uint64_t off, uint64_t want, uint64_t *avail)
{
	uint64_t a, b, total, clen, got = rep->http.body_bytes;

	if (parse_u64(rep->http.captured[CAP_LENGTH], &clen) ? clen != got : rep->status != 206)
		return s3_fail(s, op, rep, -EIO, "the body's length is not the announced one");
	if (rep->status == 206) {
		if (!parse_content_range(rep->http.captured[CAP_RANGE], &a, &b, &total) ||
		    a != off || b - a + 1 != got || got > want)
			return s3_fail(s, op, rep, -EIO, "the answer is not the range asked for");
		if (total != UINT64_MAX && got != (total - off < want ? total - off : want))
			return s3_fail(s, op, rep, -EIO, "the answer is shorter than the object");
	} else if (off != 0 || got > want) {
		/* 200: the whole object, which only fits when asked from 0. */
		return s3_fail(s, op, rep, -EIO, "the server ignored the Range header");
	}
	*avail = got;
	return 0;
}

static int s3_get_range(struct store *st, const char *key, uint64_t off, size_t len, void *buf,
			size_t *got)
{
	struct store_s3 *s = s3_of(st);
	char range[64];
	struct s3_op op = {.method = "GET", .key = key, .range = range, .quiet_416 = true};
	struct s3_reply rep;
	uint64_t avail = 0, size;
	int ret;

	*got = 0;
	if ((ret = s3_check_key(s, key)))
		return ret;
	if (len == 0 || off > UINT64_MAX - len) {
		if (len != 0)
			return -EINVAL;
		ret = s3_head(st, key, &size);
		return ret ? ret : off > size ? -EINVAL : 0;
	}
	snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, off, off + len - 1);
	op.http.sink_kind = HTTP_SINK_BUF;
	op.http.sink.buf.data = buf;
	op.http.sink.buf.cap = len;
	op.http.timeout = -1; /* bulk: bounded by the idle timeout instead */
	op.http.idle_timeout = s->request_timeout;
	ret = s3_call(s, &op, &rep);
	if (!ret)
		ret = s3_check_range(s, &op, &rep, off, len, &avail);
	s3_reply_free(&rep); /* keeps status, code and request id for the log */
	if (ret == -EINVAL && rep.status == 416) {
		/* Nothing at off: the end of the object, or past it. */
		ret = s3_head(st, key, &size);
		if (!ret && off > size) {
			snprintf(rep.message, sizeof(rep.message),
				 "range starts at %" PRIu64 ", past the end (%" PRIu64 ")", off,
				 size);
			s3_log_failure(s, &op, &rep, 416, -EINVAL);
			ret = -EINVAL;
		}
		return ret;
	}
	if (!ret)
		*got = (size_t)avail;
	return ret;
}

struct s3_getfd {
	struct store_s3 *s;
	const char *key;
	int fd;
	uint64_t off, len, chunk;
};

static int s3_getfd_chunk(void *ctx, uint64_t i)
{
	struct s3_getfd *g = ctx;
	uint64_t a = g->off + i * g->chunk;
	uint64_t n = g->len - i * g->chunk < g->chunk ? g->len - i * g->chunk : g->chunk;
	char range[64], what[64];
	struct s3_op op = {.method = "GET", .key = g->key, .range = range, .what = what};
	struct s3_reply rep;
	uint64_t avail = 0;
	int ret;

	snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, a, a + n - 1);
	snprintf(what, sizeof(what), "%s", range);
	op.http.sink_kind = HTTP_SINK_FD;
	op.http.sink.fd.fd = g->fd;
	op.http.sink.fd.off = a;
	op.http.sink.fd.cap = n;
	op.http.timeout = -1; /* bulk: bounded by the idle timeout instead */
	op.http.idle_timeout = g->s->request_timeout;
	ret = s3_call(g->s, &op, &rep);
	if (!ret)
		ret = s3_check_range(g->s, &op, &rep, a, n, &avail);
	if (!ret && avail != n)
		ret =
		    s3_fail(g->s, &op, &rep, -EINVAL, "the object ends before the range asked for");
	s3_reply_free(&rep);
	return ret;
}

static int s3_get_to_fd(struct store *st, const char *key, uint64_t off, uint64_t len, int fd)
{
	struct store_s3 *s = s3_of(st);
	struct s3_getfd g = {s, key, fd, off, len, s->part_size};
	uint64_t n;
	int ret;

	if ((ret = s3_check_key(s, key)))
		return ret;
	if (len == 0)
		return 0;
	if (off > UINT64_MAX - len)
		return -EINVAL;
	n = (len + g.chunk - 1) / g.chunk;
	return s3_par_run(s3_getfd_chunk, &g, n, s->max_connections);
}

/* --- put ---------------------------------------------------------------- */

/*
 * First pass over [off, off+len) of fd: the SHA-256 (hex; skipped when
 * known_sha256 is given) and the MD5 (base64, for Content-MD5).
 */
static int s3_digest_range(int fd, uint64_t off, uint64_t len, const unsigned char *known_sha256,
			   char sha_hex[SIGV4_HEX_SIZE], char md5_b64[SIGV4_MD5_B64_SIZE])
{
	struct sigv4_digest *d = NULL;
	unsigned char sha[32], md5[16];
	char *buf;
	uint64_t done = 0;
	int ret;

	buf = malloc(S3_HASH_BUF);
	if (!buf)
		return -ENOMEM;
	ret = sigv4_digest_new(!known_sha256, true, &d);
	while (!ret && done < len) {
		size_t want = len - done < S3_HASH_BUF ? (size_t)(len - done) : S3_HASH_BUF;
		ssize_t r = pread(fd, buf, want, (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			ret = -errno;
		else if (r == 0)
			ret = -EIO; /* the file is shorter than the size given */
		else
			ret = sigv4_digest_update(d, buf, (size_t)r);
		done += r > 0 ? (uint64_t)r : 0;
	}
	if (!ret)
		ret = sigv4_digest_final(d, sha, md5);
	if (!ret) {
		sigv4_hex(known_sha256 ? known_sha256 : sha, 32, sha_hex);
		sigv4_base64(md5, 16, md5_b64);
	}
	sigv4_digest_free(d);
	free(buf);
	return ret;
}

static int s3_put_single(struct store_s3 *s, const char *key, int fd, uint64_t size,
			 const unsigned char *sha256)
{
	char sha[SIGV4_HEX_SIZE], md5[SIGV4_MD5_B64_SIZE];
	struct s3_op op = {.method = "PUT", .key = key};
	struct s3_reply rep;
	int ret;

	ret = s3_digest_range(fd, 0, size, sha256, sha, md5);
	if (ret) {
		log_error("s3 %s bucket %s: PUT %s%s: cannot read the %" PRIu64
			  " bytes to upload: %s",
			  s->endpoint, s->bucket, s->prefix, key, size, strerror(-ret));
		return ret;
	}
	op.payload_sha256 = sha;
	op.content_md5 = md5;
	op.content_type = "application/octet-stream";
	op.http.body_kind = size ? HTTP_BODY_FD : HTTP_BODY_NONE;
	op.http.body.fd.fd = fd;
	op.http.body.fd.off = 0;
	op.http.body.fd.len = size;
	op.http.timeout = -1;
	op.http.idle_timeout = s->request_timeout;
	ret = s3_call(s, &op, &rep);
	s3_reply_free(&rep);
	return ret;
}

struct s3_mpu {
	struct store_s3 *s;
	const char *key;
	int fd;
	uint64_t size, part_size;
	uint64_t nparts;
	char *upload_id;
	char **etags; /* per part, malloc'ed */
};

static int s3_mpu_part(void *ctx, uint64_t i)
{
	struct s3_mpu *m = ctx;
	struct store_s3 *s = m->s;
	uint64_t off = i * m->part_size;
	uint64_t len = m->size - off < m->part_size ? m->size - off : m->part_size;
	char sha[SIGV4_HEX_SIZE], md5[SIGV4_MD5_B64_SIZE], num[24], what[64];
	const struct sigv4_param q[] = {{"partNumber", num}, {"uploadId", m->upload_id}};
	struct s3_op op = {.method = "PUT", .key = m->key, .what = what, .query = q, .nquery = 2};
	struct s3_reply rep;
	int ret;

	snprintf(num, sizeof(num), "%" PRIu64, i + 1);
	snprintf(what, sizeof(what), "part %" PRIu64 " of %" PRIu64, i + 1, m->nparts);
	ret = s3_digest_range(m->fd, off, len, NULL, sha, md5);
	if (ret) {
		log_error("s3 %s bucket %s: PUT %s%s (%s): cannot read the bytes to upload: %s",
			  s->endpoint, s->bucket, s->prefix, m->key, what, strerror(-ret));
		return ret;
	}
	op.payload_sha256 = sha;
	op.content_md5 = md5;
	op.http.body_kind = HTTP_BODY_FD;
	op.http.body.fd.fd = m->fd;
	op.http.body.fd.off = off;
	op.http.body.fd.len = len;
	op.http.timeout = -1;
	op.http.idle_timeout = s->request_timeout;
	ret = s3_call(s, &op, &rep);
	if (!ret) {
		const char *etag = rep.http.captured[CAP_ETAG];

		if (!etag || !*etag)
			ret = s3_fail(s, &op, &rep, -EIO, "no ETag in the answer");
		else if (!(m->etags[i] = strdup(etag)))
			ret = -ENOMEM;
	}
	s3_reply_free(&rep);
	return ret;
}

static int s3_mpu_abort(struct s3_mpu *m)
{
	const struct sigv4_param q[] = {{"uploadId", m->upload_id}};
	struct s3_op op = {.method = "DELETE",
			   .key = m->key,
			   .what = "abort multipart upload",
			   .query = q,
			   .nquery = 1,
			   .quiet_404 = true};
	struct s3_reply rep;
	int ret = s3_call(m->s, &op, &rep);

	s3_reply_free(&rep);
	return ret == -ENOENT ? 0 : ret;
}

static int s3_mpu_complete(struct s3_mpu *m)
{
	const struct sigv4_param q[] = {{"uploadId", m->upload_id}};
	char sha[SIGV4_HEX_SIZE], md5[SIGV4_MD5_B64_SIZE], line[96];
	struct s3_op op = {.method = "POST",
			   .key = m->key,
			   .what = "complete multipart upload",
			   .query = q,
			   .nquery = 1,
			   .error_in_200 = true};
	struct s3_reply rep;
	char *xml = NULL;
	size_t len = 0, cap = 0;
	uint64_t size = 0;
	int ret;

	ret = str_append(&xml, &len, &cap, "<CompleteMultipartUpload>");
	for (uint64_t i = 0; i < m->nparts && !ret; i++) {
		snprintf(line, sizeof(line), "<Part><PartNumber>%" PRIu64 "</PartNumber><ETag>",
			 i + 1);
		ret = str_append(&xml, &len, &cap, line);
		if (!ret)
			ret = xml_escape_append(&xml, &len, &cap, m->etags[i]);
		if (!ret)
			ret = str_append(&xml, &len, &cap, "</ETag></Part>");
	}
	if (!ret)
		ret = str_append(&xml, &len, &cap, "</CompleteMultipartUpload>");
	if (!ret)
		ret = sigv4_sha256_hex(xml, len, sha);
	if (!ret)
		ret = sigv4_md5_base64(xml, len, md5);
	if (ret) {
		free(xml);
		return ret;
	}
	op.payload_sha256 = sha;
	op.content_md5 = md5;
	op.content_type = "application/xml";
	op.http.body_kind = HTTP_BODY_MEM;
	op.http.body.mem.data = xml;
	op.http.body.mem.len = len;
	op.http.sink_kind = HTTP_SINK_ALLOC;
	op.http.sink.alloc_cap = S3_XML_MAX;
	op.quiet_404 = true;
	ret = s3_call(m->s, &op, &rep);
	if (ret == -ENOENT && rep.attempts > 1) {
		/*
		 * NoSuchUpload after a retry: an earlier attempt completed the
		 * upload and its answer was lost. The object tells.
		 */
		if (s3_head(&m->s->base, m->key, &size) == 0 && size == m->size)
			ret = 0;
	}
	if (ret == -ENOENT)
		s3_log_failure(m->s, &op, &rep, rep.status, ret);
	s3_reply_free(&rep);
	free(xml);
	return ret;
}

static int s3_put_multipart(struct store_s3 *s, const char *key, int fd, uint64_t size)
{
	static const struct sigv4_param q[] = {{"uploads", NULL}};
	struct s3_op op = {.method = "POST",
			   .key = key,
			   .what = "create multipart upload",
			   .query = q,
			   .nquery = 1,
			   .content_type = "application/octet-stream"};
	struct s3_mpu m = {.s = s, .key = key, .fd = fd, .size = size, .part_size = s->part_size};
	struct s3_reply rep;
	char id[512] = "";
	int ret, aret;

	/* At most 10000 parts: grow the part size (in MiB steps) if needed. */
	if ((size + m.part_size - 1) / m.part_size > S3_MAX_PARTS)
		m.part_size = (((size + S3_MAX_PARTS - 1) / S3_MAX_PARTS + (1 << 20) - 1) >> 20)
			      << 20;
	m.nparts = (size + m.part_size - 1) / m.part_size;

	op.http.sink_kind = HTTP_SINK_ALLOC;
	op.http.sink.alloc_cap = S3_XML_MAX;
	ret = s3_call(s, &op, &rep);
	if (!ret && (!rep.http.body ||
		     !xml_get(rep.http.body, rep.http.body + rep.http.body_bytes, "UploadId", id,
			      sizeof(id)) ||
		     !*id))
		ret = s3_fail(s, &op, &rep, -EIO, "no UploadId in the answer");
	s3_reply_free(&rep);
	if (ret)
		return ret;
	m.upload_id = id;
	m.etags = calloc(m.nparts, sizeof(*m.etags));
	if (!m.etags)
		ret = -ENOMEM;
	if (!ret)
		ret = s3_par_run(s3_mpu_part, &m, m.nparts, s->max_connections);
	if (!ret)
		ret = s3_mpu_complete(&m);
	if (ret) {
		/* Leave no incomplete upload behind (it would be billed, unseen). */
		aret = s3_mpu_abort(&m);
		if (aret)
			log_error(
			    "s3 %s bucket %s: multipart upload %s of %s%s is left incomplete: "
			    "remove it with an AbortMultipartUpload or a lifecycle rule",
			    s->endpoint, s->bucket, id, s->prefix, key);
	}
	for (uint64_t i = 0; m.etags && i < m.nparts; i++)
		free(m.etags[i]);
	free(m.etags);
	return ret;
}

static int s3_put_fd(struct store *st, const char *key, int fd, uint64_t size,
		     const unsigned char *sha256)
{
	struct store_s3 *s = s3_of(st);
	int ret;

	if ((ret = s3_check_key(s, key)))
		return ret;
	if (size < s->multipart_threshold)
		return s3_put_single(s, key, fd, size, sha256);
	return s3_put_multipart(s, key, fd, size);
}

/* --- open, close, test hooks -------------------------------------------- */

static void s3_close(struct store *st)
{
	struct store_s3 *s = s3_of(st);

	http_client_free(s->http);
	if (s->secret_key)
		explicit_bzero(s->secret_key, strlen(s->secret_key));
	if (s->session_token)
		explicit_bzero(s->session_token, strlen(s->session_token));
	free(s->scheme);
	free(s->host);
	free(s->base_path);
	free(s->endpoint);
	free(s->bucket);
	free(s->prefix);
	free(s->region);
	free(s->access_key);
	free(s->secret_key);
	free(s->session_token);
	free(s);
}

static const struct store_ops s3_ops = {
    .name = "s3",
    .put_fd = s3_put_fd,
    .get_range = s3_get_range,
    .get_to_fd = s3_get_to_fd,
    .head = s3_head,
    .del = s3_del,
    .del_batch = s3_del_batch,
    .list = s3_list,
    .close = s3_close,
};

/* Splits http(s)://host[:port][/path] into its parts. */
static int s3_parse_endpoint(struct store_s3 *s, const char *ep, bool virtual_host)
{
	const char *p, *slash;
	size_t blen;

	if (strncasecmp(ep, "https://", 8) == 0) {
		s->scheme = strdup("https");
		p = ep + 8;
	} else if (strncasecmp(ep, "http://", 7) == 0) {
		s->scheme = strdup("http");
		p = ep + 7;
	} else {
		return -EINVAL;
	}
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	if (slash == p || memchr(p, '@', (size_t)(slash - p)) || strpbrk(p, "?#"))
		return -EINVAL;
	if (virtual_host) {
		if (asprintf(&s->host, "%s.%.*s", s->bucket, (int)(slash - p), p) < 0)
			s->host = NULL;
	} else {
		s->host = strndup(p, (size_t)(slash - p));
	}
	blen = strlen(slash);
	while (blen > 0 && slash[blen - 1] == '/')
		blen--;
	s->base_path = strndup(slash, blen);
	if (!s->scheme || !s->host || !s->base_path)
		return -ENOMEM;
	return 0;
}

static bool valid_bucket(const char *b)
{
	size_t n = strlen(b);

	if (n < 3 || n > 63)
		return false;
	for (; *b; b++)
		if (!((*b >= 'a' && *b <= 'z') || (*b >= '0' && *b <= '9') || *b == '-' ||
		      *b == '.' || *b == '_' || (*b >= 'A' && *b <= 'Z')))
			return false;
	return true;
}

int store_s3_open(const struct dv_config *cfg, struct store **out, char *err, size_t errlen)
{
	const __typeof__(cfg->storage) *c = &cfg->storage;
	const char *file = cfg->path ? cfg->path : "config";
	struct http_client_opts ho = {0};
	struct store_s3 *s;
	int ret;

	*out = NULL;
	if (!c->endpoint || !*c->endpoint) {
		snprintf(err, errlen, "%s: [storage] endpoint is required for type = s3", file);
		return -EINVAL;
	}
	if (!c->bucket || !valid_bucket(c->bucket)) {
		snprintf(err, errlen, "%s: [storage] bucket %s%s%s is not a valid bucket name",
			 file, c->bucket ? "\"" : "(missing)", c->bucket ? c->bucket : "",
			 c->bucket ? "\"" : "");
		return -EINVAL;
	}
	if (!c->access_key || !*c->access_key || !c->secret_key || !*c->secret_key) {
		snprintf(err, errlen,
			 "%s: no S3 credentials for %s: set [storage] access_key and secret_key, "
			 "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
			 file, c->endpoint);
		return -EINVAL;
	}
	if (c->part_size < S3_MIN_PART || c->max_connections < 1 || c->max_retries < 0) {
		snprintf(err, errlen,
			 "%s: [storage] part_size must be at least 5M, max_connections at least 1 "
			 "and max_retries not negative",
			 file);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base.ops = &s3_ops;
	s->bucket = strdup(c->bucket);
	s->endpoint = strdup(c->endpoint);
	s->region = strdup(c->region && *c->region ? c->region : "us-east-1");
	s->access_key = strdup(c->access_key);
	s->secret_key = strdup(c->secret_key);
	if (c->session_token && *c->session_token)
		s->session_token = strdup(c->session_token);
	if (c->prefix && *c->prefix && c->prefix[strlen(c->prefix) - 1] != '/')
		ret = asprintf(&s->prefix, "%s/", c->prefix);
	else
		ret = (s->prefix = strdup(c->prefix ? c->prefix : "")) ? 0 : -1;
	if (ret < 0)
		s->prefix = NULL;
	if (!s->bucket || !s->endpoint || !s->region || !s->access_key || !s->secret_key ||
	    !s->prefix || (c->session_token && *c->session_token && !s->session_token)) {
		ret = -ENOMEM;
		snprintf(err, errlen, "s3 store: out of memory");
		goto fail;
	}
	s->path_style = c->path_style;
	ret = s3_parse_endpoint(s, c->endpoint, !c->path_style);
	if (ret) {
		snprintf(err, errlen,
			 "%s: [storage] endpoint \"%s\" is not http(s)://host[:port][/path]", file,
			 c->endpoint);
		goto fail;
	}
	s->part_size = c->part_size;
	s->multipart_threshold = c->multipart_threshold;
	if (s->multipart_threshold > S3_MAX_PUT)
		s->multipart_threshold = S3_MAX_PUT;
	if (s->multipart_threshold < S3_MIN_PART)
		s->multipart_threshold = S3_MIN_PART;
	s->max_connections = c->max_connections;
	s->max_retries = c->max_retries;
	s->request_timeout = c->request_timeout;
	atomic_init(&s->requests, 0);
	atomic_init(&s->backoff_ms, 0);

	ho.max_handles = c->max_connections;
	ho.connect_timeout = c->connect_timeout;
	ho.request_timeout = c->request_timeout;
	ho.upload_limit = c->upload_limit;
	ho.download_limit = c->download_limit;
	ho.tls_verify = c->tls_verify;
	ho.ca_file = c->ca_file;
	ret = http_client_new(&ho, &s->http);
	if (ret) {
		snprintf(err, errlen, "s3 store %s: cannot set up the HTTP client: %s", c->endpoint,
			 strerror(-ret));
		goto fail;
	}
	*out = &s->base;
	return 0;
fail:
	s3_close(&s->base);
	return ret;
}

/* Test hooks (store_s3.h): not part of store.h, see docs/design-s3.md. */

/* Pages of at most max_keys entries for list() (0: the server's default). */
void store_s3_test_set_list_max_keys(struct store *st, int max_keys)
{
	s3_of(st)->list_max_keys = max_keys;
}

/* HTTP attempts made so far by this store. */
uint64_t store_s3_test_requests(struct store *st)
{
	return atomic_load(&s3_of(st)->requests);
}

/* Milliseconds slept before retries so far. */
uint64_t store_s3_test_backoff_ms(struct store *st)
{
	return atomic_load(&s3_of(st)->backoff_ms);
}

/* "PUT" creates the bucket, "DELETE" removes it (it must be empty). */
int store_s3_test_bucket(struct store *st, const char *method)
{
	struct store_s3 *s = s3_of(st);
	struct s3_op op = {.method = method, .key = NULL, .what = "bucket"};
	struct s3_reply rep;
	char *xml = NULL, sha[SIGV4_HEX_SIZE];
	int ret;

	if (strcmp(method, "PUT") == 0 && strcmp(s->region, "us-east-1") != 0) {
		if (asprintf(&xml,
			     "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/"
			     "2006-03-01/\"><LocationConstraint>%s</LocationConstraint>"
			     "</CreateBucketConfiguration>",
			     s->region) < 0)
			return -ENOMEM;
		if ((ret = sigv4_sha256_hex(xml, strlen(xml), sha))) {
			free(xml);
			return ret;
		}
		op.payload_sha256 = sha;
		op.http.body_kind = HTTP_BODY_MEM;
		op.http.body.mem.data = xml;
		op.http.body.mem.len = strlen(xml);
	}
	ret = s3_call(s, &op, &rep);
	s3_reply_free(&rep);
	free(xml);
	return ret;
}

/* Counts the multipart uploads in progress under prefix (first page only). */
int store_s3_test_uploads(struct store *st, const char *prefix, int *count)
{
	struct store_s3 *s = s3_of(st);
	char *full = NULL;
	struct sigv4_param q[2] = {{"uploads", NULL}, {"prefix", NULL}};
	struct s3_op op = {
	    .method = "GET", .key = NULL, .what = "list uploads", .query = q, .nquery = 2};
	struct s3_reply rep;
	const char *b, *e, *ib, *ie, *nx;
	int ret;

	*count = 0;
	if (asprintf(&full, "%s%s", s->prefix, prefix) < 0)
		return -ENOMEM;
	q[1].value = full;
	op.http.sink_kind = HTTP_SINK_ALLOC;
	op.http.sink.alloc_cap = S3_XML_MAX;
	ret = s3_call(s, &op, &rep);
	if (!ret && rep.http.body) {
		b = rep.http.body;
		e = b + rep.http.body_bytes;
		while (xml_find(b, e, "Upload", &ib, &ie, &nx)) {
			(*count)++;
			b = nx;
		}
	}
	s3_reply_free(&rep);
	free(full);
	return ret;
}
