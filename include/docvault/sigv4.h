/*
 * sigv4.h - AWS Signature Version 4, as a pure module: a request description
 * in, the canonical request, the string to sign, the signature and the
 * Authorization header value out. Each stage is a function of its own so the
 * tests can check every stage against AWS's published vectors.
 *
 * Model (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html):
 *   CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n
 *                      CanonicalHeaders \n SignedHeaders \n PayloadHash
 *   StringToSign     = "AWS4-HMAC-SHA256" \n Timestamp \n Scope \n hex(SHA256(CanonicalRequest))
 *   Scope            = Date/Region/Service/aws4_request
 *   Signature        = hex(HMAC(HMAC(HMAC(HMAC(HMAC("AWS4"+Secret, Date), Region),
 *                                              Service), "aws4_request"), StringToSign))
 *
 * URI encoding: RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~) are
 * kept, every other byte becomes %XX (upper-case hex); '/' is kept in paths.
 * The caller says whether the path it gives is still to be encoded
 * (encode_path) and whether dot segments and empty segments are to be
 * removed (normalize_path). S3 signs the path exactly as sent, encoded once
 * and never normalised: pass the raw key with encode_path, or the wire path
 * without it. Other AWS services (and the generic test suite) encode the
 * wire path once more and normalise it: pass the wire path with both flags.
 *
 * Also here, because this module is the one that includes OpenSSL: SHA-256
 * and MD5 of a payload (one-shot and streaming), hex and base64, used for
 * x-amz-content-sha256 and Content-MD5.
 *
 * Threading: no state, no globals; every function is thread-safe.
 * Ownership: strings returned through char ** are malloc'ed; the caller
 * frees them (sigv4_result_free() for struct sigv4_result).
 * Not: an HTTP client (nothing here sends anything), query-string
 * (presigned URL) signing, chunked (aws-chunked) payload signing, SigV4A.
 */
#ifndef DOCVAULT_SIGV4_H
#define DOCVAULT_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
/* SHA-256 of the empty string: the payload hash of a request without body. */
#define SIGV4_EMPTY_SHA256     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_HEX_SIZE	       65 /* 64 hex digits of a SHA-256 and NUL */
#define SIGV4_TIMESTAMP_SIZE   17 /* YYYYMMDDTHHMMSSZ and NUL */
#define SIGV4_MD5_B64_SIZE     25 /* base64 of 16 bytes and NUL */
#define SIGV4_SHA256_B64_SIZE  45 /* base64 of 32 bytes and NUL */

/* One header to sign. Names are matched case-insensitively. */
struct sigv4_header {
	const char *name;
	const char *value;
};

/* One query parameter, raw (not yet URI-encoded); value NULL means "". */
struct sigv4_param {
	const char *name;
	const char *value;
};

struct sigv4_request {
	const char *method;  /* "GET", "PUT", ... as sent */
	const char *path;    /* absolute path, "/" at least */
	bool encode_path;    /* URI-encode path (keeping '/'); else used as given */
	bool normalize_path; /* remove "." / ".." / empty segments first (not S3) */
	const struct sigv4_param *query;
	size_t nquery;
	/*
	 * Every header to sign, host and x-amz-date included (and for S3
	 * x-amz-content-sha256). Duplicate names are joined with ',' in the
	 * order given; values are trimmed and inner runs of spaces collapsed.
	 */
	const struct sigv4_header *headers;
	size_t nheaders;
	const char *payload_hash; /* lower-case hex SHA-256 of the body, or UNSIGNED-PAYLOAD */
};

struct sigv4_credentials {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL if none */
	const char *region;	   /* e.g. "us-east-1" */
	const char *service;	   /* "s3" */
};

struct sigv4_result {
	char *canonical_request;
	char *signed_headers; /* "host;x-amz-date" */
	char *string_to_sign;
	char signature[SIGV4_HEX_SIZE];
	char *authorization; /* the whole Authorization header value */
};

/*
 * Canonical request and signed-header list of req. Returns 0, -EINVAL
 * (missing method/path/payload hash, a header name that is empty or holds
 * ':' or a control character) or -ENOMEM.
 */
int sigv4_canonical_request(const struct sigv4_request *req, char **canonical_request,
			    char **signed_headers);

/*
 * String to sign for a canonical request. timestamp is YYYYMMDDTHHMMSSZ.
 * Returns 0, -EINVAL (malformed timestamp) or -ENOMEM.
 */
int sigv4_string_to_sign(const char *timestamp, const char *region, const char *service,
			 const char *canonical_request, char **string_to_sign);

/* Signature (64 hex digits) of a string to sign. Returns 0, -EINVAL or -EIO. */
int sigv4_signature(const char *secret_key, const char *timestamp, const char *region,
		    const char *service, const char *string_to_sign,
		    char signature[SIGV4_HEX_SIZE]);

/*
 * The Authorization header value:
 *   AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
 *   SignedHeaders=..., Signature=...   (one line, ", " between the parts)
 * Returns 0, -EINVAL or -ENOMEM.
 */
int sigv4_authorization(const char *access_key, const char *timestamp, const char *region,
			const char *service, const char *signed_headers, const char *signature,
			char **authorization);

/*
 * All stages at once. If cred->session_token is set and req has no
 * x-amz-security-token header, one is signed; the caller must send it too.
 * On success the result needs sigv4_result_free(); on failure it is left
 * zeroed. Returns 0 or a negative errno from the stages above.
 */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_credentials *cred,
	       const char *timestamp, struct sigv4_result *out);

/* Frees the strings of a result and zeroes it; accepts NULL. */
void sigv4_result_free(struct sigv4_result *r);

/* Formats t (UTC) as YYYYMMDDTHHMMSSZ. Returns 0 or -EINVAL. */
int sigv4_timestamp(time_t t, char out[SIGV4_TIMESTAMP_SIZE]);

/*
 * URI-encodes len bytes of s (RFC 3986 unreserved set kept; '/' kept when
 * keep_slash). *out is malloc'ed. Returns 0 or -ENOMEM.
 */
int sigv4_uri_encode(const char *s, size_t len, bool keep_slash, char **out);

/*
 * The canonical query string of params (names and values encoded, sorted by
 * name then value, "a=1&b="). It is also a valid query string to send.
 * *out is malloc'ed ("" for none). Returns 0 or -ENOMEM.
 */
int sigv4_query_string(const struct sigv4_param *params, size_t n, char **out);

/* Payload digests. */
void sigv4_hex(const unsigned char *bytes, size_t n, char *out); /* out: 2n+1 */
/* Base64 (with padding) of n bytes into out (4*((n+2)/3)+1 bytes). */
void sigv4_base64(const unsigned char *bytes, size_t n, char *out);
/* Lower-case hex SHA-256 of a buffer. Returns 0 or -EIO. */
int sigv4_sha256_hex(const void *data, size_t len, char out[SIGV4_HEX_SIZE]);
/* MD5 of a buffer, base64 (Content-MD5). Returns 0 or -EIO. */
int sigv4_md5_base64(const void *data, size_t len, char out[SIGV4_MD5_B64_SIZE]);

/*
 * Streaming digest of a payload: SHA-256 and/or MD5 in one pass.
 * Not thread-safe per object; use one per thread.
 */
struct sigv4_digest;
/* Returns 0, -EINVAL (neither wanted) or -ENOMEM / -EIO. */
int sigv4_digest_new(bool sha256, bool md5, struct sigv4_digest **out);
int sigv4_digest_update(struct sigv4_digest *d, const void *data, size_t len);
/* Writes the digests asked for at creation (the other pointer may be NULL). */
int sigv4_digest_final(struct sigv4_digest *d, unsigned char sha256[32], unsigned char md5[16]);
/* Accepts NULL. */
void sigv4_digest_free(struct sigv4_digest *d);

#endif
