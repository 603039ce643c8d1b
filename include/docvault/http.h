/*
 * http.h - a small blocking HTTP client on libcurl, for the object store and
 * any other backend that speaks HTTP. It knows nothing of S3: it sends one
 * request (method, URL, headers, a body from memory or from a file range)
 * and delivers the answer (status, selected response headers, the body to a
 * buffer, to a file at offsets, or nowhere).
 *
 * Model: a client owns a pool of curl easy handles. A request borrows one
 * for its duration and gives it back, so the handle's connection (and TLS
 * session) is reused by the next request to the same host. At most
 * max_handles requests are in flight; further callers wait for a handle.
 * DNS answers and TLS sessions are shared between the handles.
 *
 * Bodies stream: an fd body is read with pread() as curl asks for it, an fd
 * sink is written with pwrite(); nothing holds a whole object in memory.
 * The body of a non-2xx answer never reaches the sink: it is kept (up to
 * HTTP_ERROR_BODY_MAX bytes) in the response, for the caller to parse.
 *
 * Timeouts: connect_timeout bounds the TCP (and TLS) connection; the
 * request's timeout (or the client's request_timeout) bounds the whole
 * request; idle_timeout aborts a transfer that moved no byte for that long
 * (for bulk transfers, where a total bound would depend on the size).
 * Bandwidth caps are shared by all requests of a client (a token bucket on
 * the bytes sent and received), so parallel transfers together stay under
 * them.
 *
 * Errors: http_request() returns the HTTP status (100..599) or a negative
 * errno for a transport failure:
 *   -ETIMEDOUT     connect or transfer timed out
 *   -ECONNREFUSED  nobody listens
 *   -ECONNRESET    the connection broke (reset, closed, nothing received)
 *   -ECONNABORTED  the answer was cut short (fewer bytes than announced)
 *   -EHOSTUNREACH  the host name does not resolve, or no route
 *   -EPROTO        TLS failure (certificate not verified, handshake failed)
 *   -EMSGSIZE      the answer is larger than the sink's capacity
 *   -EINVAL        malformed URL or request
 *   -ENOMEM, or the errno of a failed pread()/pwrite() on the caller's fd.
 * resp->error then holds curl's text for the log. This module logs nothing.
 *
 * Threading: a client is thread-safe; a request and its response belong to
 * the calling thread. Ownership: http_client_free() frees the client (no
 * request may be running); http_response_free() frees a response's
 * allocations. Not: an async/multi interface, a cookie or redirect engine
 * (redirects are not followed), HTTP/2 tuning.
 */
#ifndef DOCVAULT_HTTP_H
#define DOCVAULT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_CAPTURE    8		/* response headers one request can capture */
#define HTTP_ERROR_SIZE	    256		/* resp->error */
#define HTTP_ERROR_BODY_MAX (64 * 1024) /* kept of a non-2xx body */

struct http_client;

struct http_client_opts {
	int max_handles;	/* requests in flight (and connections kept), >= 1 */
	double connect_timeout; /* seconds, 0 = curl's default */
	double request_timeout; /* seconds, whole request, 0 = none */
	uint64_t upload_limit;	/* bytes/s over all requests, 0 = unlimited */
	uint64_t download_limit;
	bool tls_verify;
	const char *ca_file;	/* NULL = the system's CA store */
	const char *user_agent; /* NULL = "docvault" */
};

struct http_header {
	const char *name;
	const char *value;
};

enum http_body_kind {
	HTTP_BODY_NONE = 0,
	HTTP_BODY_MEM, /* body.mem.data, body.mem.len */
	HTTP_BODY_FD,  /* body.fd.fd from body.fd.off, body.fd.len bytes (pread) */
};

enum http_sink_kind {
	HTTP_SINK_DISCARD = 0,
	HTTP_SINK_BUF,	 /* into sink.buf.data, at most sink.buf.cap bytes */
	HTTP_SINK_ALLOC, /* into a malloc'ed resp->body, at most sink.alloc_cap bytes */
	HTTP_SINK_FD,	 /* pwrite() to sink.fd.fd at sink.fd.off.., at most sink.fd.cap */
};

struct http_request {
	const char *method;		   /* "GET", "PUT", "POST", "HEAD", "DELETE" */
	const char *url;		   /* absolute, already percent-encoded */
	const struct http_header *headers; /* sent as given (a Host header wins over the URL's) */
	size_t nheaders;
	enum http_body_kind body_kind;
	union {
		struct {
			const void *data;
			size_t len;
		} mem;
		struct {
			int fd;
			uint64_t off, len;
		} fd;
	} body;
	enum http_sink_kind sink_kind;
	union {
		struct {
			void *data;
			size_t cap;
		} buf;
		size_t alloc_cap;
		struct {
			int fd;
			uint64_t off, cap;
		} fd;
	} sink;
	/* Response headers to capture (case-insensitive), at most HTTP_MAX_CAPTURE. */
	const char *const *capture;
	size_t ncapture;
	double timeout;	     /* seconds, whole request; 0 = the client's request_timeout; <0 none */
	double idle_timeout; /* seconds without a byte moving; 0 = none */
};

struct http_response {
	int status;	     /* HTTP status, 0 if none was received */
	uint64_t body_bytes; /* bytes delivered to the sink (2xx only) */
	char *body;	     /* HTTP_SINK_ALLOC: the body, NUL-terminated; else NULL */
	char *error_body;    /* non-2xx: the (capped) body, NUL-terminated; else NULL */
	size_t error_body_len;
	char *captured[HTTP_MAX_CAPTURE]; /* value per request->capture[i], NULL if absent */
	char error[HTTP_ERROR_SIZE];	  /* transport error text, "" if none */
};

/* Creates a client. Returns 0, -EINVAL or -ENOMEM. */
int http_client_new(const struct http_client_opts *opts, struct http_client **out);

/* Frees the client and its handles (closing their connections); accepts NULL. */
void http_client_free(struct http_client *c);

/*
 * Performs one request, blocking (waits for a free handle first). resp is
 * filled in either case and needs http_response_free(). Returns the HTTP
 * status or a negative errno (see above). Never retries.
 */
int http_request(struct http_client *c, const struct http_request *req, struct http_response *resp);

/* Frees what a response holds and zeroes it; accepts NULL. */
void http_response_free(struct http_response *resp);

#endif
