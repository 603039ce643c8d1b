/*
 * store_s3.h - what the S3 store (backend/store_s3.c) shows beyond the
 * store interface: hooks for tests and metrics. The store itself is opened
 * with store_s3_open() (store.h) and used through struct store_ops; nothing
 * here is needed to use it.
 *
 * Every function takes a store returned by store_s3_open() (anything else
 * is undefined behaviour: there is no type check) and is thread-safe.
 * The counters count since the store was opened and never go down.
 * Not: a configuration interface (that is [storage] in the config file).
 */
#ifndef DOCVAULT_STORE_S3_H
#define DOCVAULT_STORE_S3_H

#include <stdint.h>

#include "docvault/store.h"

/*
 * HTTP attempts made so far: every request sent, retries included (a
 * multipart upload of n parts without failures makes n + 2).
 */
uint64_t store_s3_test_requests(struct store *st);

/*
 * Milliseconds spent so far waiting before retries (the backoff), summed
 * over all threads; the time between a failed attempt and its retry is at
 * least what this grew by.
 */
uint64_t store_s3_test_backoff_ms(struct store *st);

/* Pages of at most max_keys entries for list() (0: the server's default). */
void store_s3_test_set_list_max_keys(struct store *st, int max_keys);

/*
 * "PUT" creates the store's bucket, "DELETE" removes it (it must be
 * empty). Returns 0 or a negative errno, as a store call does.
 */
int store_s3_test_bucket(struct store *st, const char *method);

/*
 * *count = the multipart uploads in progress whose key starts with the
 * store's prefix + prefix (ListMultipartUploads, `GET /bucket?uploads`;
 * first page only, up to 1000). Returns 0 or a negative errno.
 */
int store_s3_test_uploads(struct store *st, const char *prefix, int *count);

#endif
