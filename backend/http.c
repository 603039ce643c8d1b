/*
 * http.c - the HTTP client (see http.h for the model): the only file that
 * includes curl.
 *
 * A request borrows an easy handle from the client's pool, resets it, sets
 * every option it needs, runs curl_easy_perform() on the calling thread and
 * gives the handle back. Resetting keeps what matters across requests: the
 * handle's live connections, its DNS cache and TLS session cache (those two
 * are also shared between handles through a CURLSH).
 *
 * Callbacks (all on the calling thread, with struct xfer as their state):
 *  - header: a status line resets the captured headers (a "100 Continue"
 *    is followed by the real answer); "Name: value" lines are captured when
 *    asked for.
 *  - write: 2xx bodies go to the sink, anything else to resp->error_body.
 *  - read/seek: the request body, from memory or pread() at an offset, so
 *    curl can rewind it (it does when a reused connection turns out dead).
 * Both data callbacks take tokens from the client's shared rate limiters.
 *
 * Locking: client->lock protects the handle pool (free list, count);
 * rate->lock protects a limiter; share_lock[] are curl's share locks.
 * curl_global_init() runs once per process through pthread_once.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "docvault/http.h"

_Static_assert(HTTP_ERROR_SIZE >= CURL_ERROR_SIZE, "curl's error buffer must fit");

#ifndef DOCVAULT_VERSION
#define DOCVAULT_VERSION "dev"
#endif

#define HTTP_RECV_BUFFER (256 * 1024)
#define HTTP_SEND_BUFFER (512 * 1024)
#define HTTP_RATE_BURST	 0.1 /* seconds a capped transfer may run ahead */
#define HTTP_RATE_PIECE	 (16 * 1024)

struct rate {
	pthread_mutex_t lock;
	double bps;  /* 0 = unlimited */
	double next; /* monotonic time from which the next byte may move */
};

struct http_client {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	CURL **free_handles; /* protected by lock */
	int nfree;	     /* protected by lock */
	int created;	     /* protected by lock */
	int max_handles;
	CURLSH *share;
	pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];
	long connect_timeout_ms;
	long request_timeout_ms;
	bool tls_verify;
	char *ca_file;
	char *user_agent;
	struct rate up, down;
};

struct xfer {
	struct http_client *c;
	const struct http_request *req;
	struct http_response *resp;
	uint64_t sent; /* request body bytes handed to curl */
	int status;    /* of the last status line */
	size_t alloc_size;
	int err; /* negative errno recorded by a callback */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Waits until n more bytes fit under the limit: the generic cell rate
 * algorithm. Each byte is due 1/bps after the previous one (the theoretical
 * arrival time, r->next); a transfer may run HTTP_RATE_BURST ahead of it.
 */
static void rate_take(struct rate *r, size_t n)
{
	double now, due;

	if (r->bps <= 0 || n == 0)
		return;
	now = now_mono();
	pthread_mutex_lock(&r->lock);
	if (r->next < now)
		r->next = now;
	r->next += (double)n / r->bps;
	due = r->next - HTTP_RATE_BURST;
	pthread_mutex_unlock(&r->lock);
	if (due > now) {
		double d = due - now;
		struct timespec ts = {(time_t)d, (long)((d - floor(d)) * 1e9)};

		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
}

/* --- share locks ------------------------------------------------------- */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *userp)
{
	struct http_client *c = userp;

	(void)h;
	(void)access;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->share_lock[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *userp)
{
	struct http_client *c = userp;

	(void)h;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->share_lock[data]);
}

/* --- client ------------------------------------------------------------ */

static long to_ms(double s)
{
	if (s <= 0)
		return 0;
	if (s > (double)LONG_MAX / 1000)
		return LONG_MAX;
	return (long)ceil(s * 1000);
}

int http_client_new(const struct http_client_opts *o, struct http_client **out)
{
	struct http_client *c;
	int ret = -ENOMEM;

	*out = NULL;
	if (!o || o->max_handles < 1 || o->connect_timeout < 0 || o->request_timeout < 0)
		return -EINVAL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return -ENOMEM;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	pthread_mutex_init(&c->up.lock, NULL);
	pthread_mutex_init(&c->down.lock, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_lock[i], NULL);
	c->max_handles = o->max_handles;
	c->connect_timeout_ms = to_ms(o->connect_timeout);
	c->request_timeout_ms = to_ms(o->request_timeout);
	c->tls_verify = o->tls_verify;
	c->up.bps = (double)o->upload_limit;
	c->down.bps = (double)o->download_limit;
	c->free_handles = calloc((size_t)o->max_handles, sizeof(*c->free_handles));
	c->user_agent = strdup(o->user_agent ? o->user_agent : "docvault/" DOCVAULT_VERSION);
	if (o->ca_file && *o->ca_file)
		c->ca_file = strdup(o->ca_file);
	if (!c->free_handles || !c->user_agent || (o->ca_file && *o->ca_file && !c->ca_file))
		goto fail;
	c->share = curl_share_init();
	if (!c->share)
		goto fail;
	if (curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) != CURLSHE_OK ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) !=
		CURLSHE_OK) {
		ret = -EIO;
		goto fail;
	}
	*out = c;
	return 0;
fail:
	http_client_free(c);
	return ret;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->nfree; i++)
		curl_easy_cleanup(c->free_handles[i]);
	if (c->share)
		curl_share_cleanup(c->share);
	free(c->free_handles);
	free(c->ca_file);
	free(c->user_agent);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_lock[i]);
	pthread_mutex_destroy(&c->up.lock);
	pthread_mutex_destroy(&c->down.lock);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Borrows a handle, waiting while max_handles are busy. NULL: -ENOMEM. */
static CURL *handle_get(struct http_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->lock);
	while (c->nfree == 0 && c->created >= c->max_handles)
		pthread_cond_wait(&c->cond, &c->lock);
	if (c->nfree > 0) {
		h = c->free_handles[--c->nfree];
		pthread_mutex_unlock(&c->lock);
		return h;
	}
	c->created++;
	pthread_mutex_unlock(&c->lock);
	h = curl_easy_init();
	if (!h) {
		pthread_mutex_lock(&c->lock);
		c->created--;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
	}
	return h;
}

static void handle_put(struct http_client *c, CURL *h)
{
	pthread_mutex_lock(&c->lock);
	c->free_handles[c->nfree++] = h;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* --- callbacks --------------------------------------------------------- */

static size_t on_header(char *data, size_t size, size_t nitems, void *userp)
{
	struct xfer *x = userp;
	size_t len = size * nitems, nlen;
	const char *colon, *v, *end;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		const char *sp = memchr(data, ' ', len);

		x->status = 0;
		if (sp && (size_t)(sp - data) + 4 <= len)
			x->status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
		for (size_t i = 0; i < HTTP_MAX_CAPTURE; i++) {
			free(x->resp->captured[i]);
			x->resp->captured[i] = NULL;
		}
		return len;
	}
	colon = memchr(data, ':', len);
	if (!colon)
		return len;
	nlen = (size_t)(colon - data);
	for (size_t i = 0; i < x->req->ncapture && i < HTTP_MAX_CAPTURE; i++) {
		const char *want = x->req->capture[i];

		if (strlen(want) != nlen || strncasecmp(want, data, nlen) != 0)
			continue;
		v = colon + 1;
		end = data + len;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v &&
		       (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
			end--;
		free(x->resp->captured[i]);
		x->resp->captured[i] = strndup(v, (size_t)(end - v));
		if (!x->resp->captured[i]) {
			x->err = -ENOMEM;
			return 0;
		}
	}
	return len;
}

static int keep_error_body(struct xfer *x, const char *data, size_t len)
{
	struct http_response *r = x->resp;
	size_t room;

	if (!r->error_body) {
		r->error_body = malloc(HTTP_ERROR_BODY_MAX + 1);
		if (!r->error_body)
			return -ENOMEM;
		r->error_body[0] = '\0';
	}
	room = HTTP_ERROR_BODY_MAX - r->error_body_len;
	if (len > room)
		len = room; /* the rest is read and dropped */
	memcpy(r->error_body + r->error_body_len, data, len);
	r->error_body_len += len;
	r->error_body[r->error_body_len] = '\0';
	return 0;
}

static int sink_alloc(struct xfer *x, const char *data, size_t len)
{
	struct http_response *r = x->resp;
	size_t cap = x->req->sink.alloc_cap;

	if (r->body_bytes + len > cap)
		return -EMSGSIZE;
	if (r->body_bytes + len + 1 > x->alloc_size) {
		size_t sz = x->alloc_size ? x->alloc_size : 4096;
		char *p;

		while (sz < r->body_bytes + len + 1)
			sz *= 2;
		if (sz > cap + 1)
			sz = cap + 1;
		p = realloc(r->body, sz);
		if (!p)
			return -ENOMEM;
		r->body = p;
		x->alloc_size = sz;
	}
	memcpy(r->body + r->body_bytes, data, len);
	r->body[r->body_bytes + len] = '\0';
	return 0;
}

static int sink_fd(struct xfer *x, const char *data, size_t len)
{
	const struct http_request *q = x->req;
	uint64_t at = x->resp->body_bytes;

	if (at + len > q->sink.fd.cap)
		return -EMSGSIZE;
	while (len > 0) {
		ssize_t n = pwrite(q->sink.fd.fd, data, len, (off_t)(q->sink.fd.off + at));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += n;
		len -= (size_t)n;
		at += (uint64_t)n;
	}
	return 0;
}

static size_t on_write(char *data, size_t size, size_t nitems, void *userp)
{
	struct xfer *x = userp;
	const struct http_request *q = x->req;
	size_t len = size * nitems;
	int ret = 0;

	if (x->status < 200 || x->status > 299) {
		ret = keep_error_body(x, data, len);
		if (ret) {
			x->err = ret;
			return 0;
		}
		return len;
	}
	rate_take(&x->c->down, len);
	switch (q->sink_kind) {
	case HTTP_SINK_DISCARD:
		break;
	case HTTP_SINK_BUF:
		if (x->resp->body_bytes + len > q->sink.buf.cap)
			ret = -EMSGSIZE;
		else
			memcpy((char *)q->sink.buf.data + x->resp->body_bytes, data, len);
		break;
	case HTTP_SINK_ALLOC:
		ret = sink_alloc(x, data, len);
		break;
	case HTTP_SINK_FD:
		ret = sink_fd(x, data, len);
		break;
	}
	if (ret) {
		x->err = ret;
		return 0;
	}
	x->resp->body_bytes += len;
	return len;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *userp)
{
	struct xfer *x = userp;
	const struct http_request *q = x->req;
	size_t max = size * nitems, n = 0;

	/* Under a cap, hand out small pieces: smoother pacing. */
	if (x->c->up.bps > 0 && max > HTTP_RATE_PIECE)
		max = HTTP_RATE_PIECE;
	if (q->body_kind == HTTP_BODY_MEM) {
		uint64_t left = q->body.mem.len - x->sent;

		n = left < max ? (size_t)left : max;
		if (n)
			memcpy(buf, (const char *)q->body.mem.data + x->sent, n);
	} else if (q->body_kind == HTTP_BODY_FD) {
		uint64_t left = q->body.fd.len - x->sent;
		ssize_t r;

		n = left < max ? (size_t)left : max;
		while (n > 0) {
			r = pread(q->body.fd.fd, buf, n, (off_t)(q->body.fd.off + x->sent));
			if (r > 0) {
				n = (size_t)r;
				break;
			}
			if (r < 0 && errno == EINTR)
				continue;
			/* The file ended before the announced length, or failed. */
			x->err = r < 0 ? -errno : -EIO;
			return CURL_READFUNC_ABORT;
		}
	}
	x->sent += n;
	rate_take(&x->c->up, n);
	return n;
}

static int on_seek(void *userp, curl_off_t offset, int origin)
{
	struct xfer *x = userp;
	uint64_t len = x->req->body_kind == HTTP_BODY_MEM  ? x->req->body.mem.len
		       : x->req->body_kind == HTTP_BODY_FD ? x->req->body.fd.len
							   : 0;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > len)
		return CURL_SEEKFUNC_CANTSEEK;
	x->sent = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* --- requests ---------------------------------------------------------- */

static int map_curl_error(CURL *h, CURLcode rc, const struct xfer *x)
{
	long oserr = 0;

	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
		if (oserr == EHOSTUNREACH || oserr == ENETUNREACH)
			return -EHOSTUNREACH;
		if (oserr == ETIMEDOUT)
			return -ETIMEDOUT;
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return -ECONNRESET;
	case CURLE_PARTIAL_FILE:
		return -ECONNABORTED;
	case CURLE_WRITE_ERROR:
	case CURLE_READ_ERROR:
	case CURLE_ABORTED_BY_CALLBACK:
		return x->err ? x->err : -EIO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return -EINVAL;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_USE_SSL_FAILED:
		return -EPROTO;
	case CURLE_WEIRD_SERVER_REPLY:
		return -EBADMSG;
	default:
		return -EIO;
	}
}

/*
 * curl says CURLE_PEER_FAILED_VERIFICATION both for a chain no CA vouches
 * for and for a certificate issued to another name; the operator needs to
 * know which. CURLINFO_SSL_VERIFYRESULT holds OpenSSL's verify error (>= 2)
 * for the first; curl's own host name check leaves it at 1 ("not verified").
 */
static void http_explain_peer_failure(CURL *h, const struct http_client *c, char *err, size_t len)
{
	char curl_text[HTTP_ERROR_SIZE];
	long vr = 0;

	snprintf(curl_text, sizeof(curl_text), "%s", err);
	curl_easy_getinfo(h, CURLINFO_SSL_VERIFYRESULT, &vr);
	if (vr >= 2)
		snprintf(err, len, "the server's certificate is not trusted by %.90s (%.110s)",
			 c->ca_file ? c->ca_file : "the system's CAs", curl_text);
	else
		snprintf(err, len, "the server's certificate does not name this host (%.160s)",
			 curl_text);
}

static struct curl_slist *build_headers(const struct http_request *q, int *err)
{
	struct curl_slist *list = NULL, *n;
	char *line;

	*err = 0;
	for (size_t i = 0; i < q->nheaders; i++) {
		if (asprintf(&line, "%s: %s", q->headers[i].name, q->headers[i].value) < 0) {
			*err = -ENOMEM;
			break;
		}
		n = curl_slist_append(list, line);
		free(line);
		if (!n) {
			*err = -ENOMEM;
			break;
		}
		list = n;
	}
	if (!*err) {
		/* No Accept header, no default Content-Type: only what we sign. */
		n = curl_slist_append(list, "Accept:");
		if (n)
			list = n;
		else
			*err = -ENOMEM;
	}
	if (*err) {
		curl_slist_free_all(list);
		return NULL;
	}
	return list;
}

#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (curl_easy_setopt(h, opt, val) != CURLE_OK) {                                   \
			ret = -EINVAL;                                                             \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

int http_request(struct http_client *c, const struct http_request *q, struct http_response *resp)
{
	struct xfer x = {.c = c, .req = q, .resp = resp};
	struct curl_slist *hdrs = NULL;
	uint64_t body_len = 0;
	long timeout_ms;
	CURLcode rc;
	CURL *h;
	int ret;

	memset(resp, 0, sizeof(*resp));
	if (!q->method || !q->url || q->ncapture > HTTP_MAX_CAPTURE)
		return -EINVAL;
	if (q->body_kind == HTTP_BODY_MEM)
		body_len = q->body.mem.len;
	else if (q->body_kind == HTTP_BODY_FD)
		body_len = q->body.fd.len;
	hdrs = build_headers(q, &ret);
	if (ret)
		return ret;
	h = handle_get(c);
	if (!h) {
		curl_slist_free_all(hdrs);
		return -ENOMEM;
	}
	curl_easy_reset(h);
	ret = 0;
	SET(CURLOPT_ERRORBUFFER, resp->error);
	SET(CURLOPT_URL, q->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_PATH_AS_IS, 1L); /* a key like "a/../b" is a key, not a path */
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_SHARE, c->share);
	SET(CURLOPT_USERAGENT, c->user_agent);
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_NODELAY, 1L);
	SET(CURLOPT_BUFFERSIZE, (long)HTTP_RECV_BUFFER);
	SET(CURLOPT_UPLOAD_BUFFERSIZE, (long)HTTP_SEND_BUFFER);
	SET(CURLOPT_SSL_VERIFYPEER, c->tls_verify ? 1L : 0L);
	SET(CURLOPT_SSL_VERIFYHOST, c->tls_verify ? 2L : 0L);
	if (c->ca_file)
		SET(CURLOPT_CAINFO, c->ca_file);
	if (c->connect_timeout_ms)
		SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	timeout_ms = q->timeout > 0   ? to_ms(q->timeout)
		     : q->timeout < 0 ? 0
				      : c->request_timeout_ms;
	if (timeout_ms)
		SET(CURLOPT_TIMEOUT_MS, timeout_ms);
	if (q->idle_timeout > 0) {
		SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
		SET(CURLOPT_LOW_SPEED_TIME, (long)ceil(q->idle_timeout));
	}
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, &x);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, &x);

	if (strcmp(q->method, "GET") == 0 && q->body_kind == HTTP_BODY_NONE) {
		SET(CURLOPT_HTTPGET, 1L);
	} else if (strcmp(q->method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (q->body_kind != HTTP_BODY_NONE || strcmp(q->method, "PUT") == 0 ||
		   strcmp(q->method, "POST") == 0) {
		/* Every body goes through the read callback, with its length known. */
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
		SET(CURLOPT_READFUNCTION, on_read);
		SET(CURLOPT_READDATA, &x);
		SET(CURLOPT_SEEKFUNCTION, on_seek);
		SET(CURLOPT_SEEKDATA, &x);
		if (strcmp(q->method, "PUT") != 0)
			SET(CURLOPT_CUSTOMREQUEST, q->method);
	} else {
		SET(CURLOPT_CUSTOMREQUEST, q->method);
	}

	rc = curl_easy_perform(h);
	if (rc == CURLE_OK) {
		long code = 0;

		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		resp->status = (int)code;
		ret = (int)code;
		if (ret < 100 || ret > 599) {
			snprintf(resp->error, sizeof(resp->error), "bad HTTP status %d", ret);
			ret = -EBADMSG;
		}
	} else {
		resp->status = x.status;
		ret = map_curl_error(h, rc, &x);
		if (!resp->error[0])
			snprintf(resp->error, sizeof(resp->error), "%s", curl_easy_strerror(rc));
		if (ret == -EMSGSIZE)
			snprintf(resp->error, sizeof(resp->error),
				 "the answer is larger than expected");
		else if (rc == CURLE_PEER_FAILED_VERIFICATION)
			http_explain_peer_failure(h, c, resp->error, sizeof(resp->error));
	}
out:
	/* The handle must not keep pointers into this call's stack. */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	handle_put(c, h);
	curl_slist_free_all(hdrs);
	return ret;
}

void http_response_free(struct http_response *resp)
{
	if (!resp)
		return;
	free(resp->body);
	free(resp->error_body);
	for (size_t i = 0; i < HTTP_MAX_CAPTURE; i++)
		free(resp->captured[i]);
	memset(resp, 0, sizeof(*resp));
}
