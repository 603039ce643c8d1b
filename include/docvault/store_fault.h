/*
 * store_fault.h - a fault-injecting store decorator, for tests: it embeds
 * struct store, forwards every call to an inner store and, on the test's
 * command, makes calls fail, slow or cut short the way real object stores
 * and networks do (the model is mountpoint-s3's failure client, which wraps
 * its S3 client the same way).
 *
 * Faults, each per operation (enum store_fault_op) and armed by the test:
 *  - fail:    the next n calls fail with err without reaching the inner
 *             store (a refused or rejected request);
 *  - lose:    the next n calls reach the inner store and its answer is
 *             replaced by err (the request took effect, its answer was lost:
 *             a caller that retries must be idempotent);
 *  - latency: every call sleeps ms milliseconds before it is forwarded;
 *  - cut:     the next put sees its source end after `after` bytes (the
 *             inner store reads a copy of the first `after` bytes of the fd
 *             and is told the full size), as when a transfer is cut or the
 *             staging file cannot be read to the end; the inner store's
 *             answer is returned as it is, so a test can check that the
 *             put failed and left no object behind.
 * "fail" is consumed before "lose": with both armed, the first calls fail.
 * Every call is counted per operation, injected failures apart.
 *
 * Threading: thread-safe; rules and counters are under one mutex per
 * decorator, never held while the inner store or a sleep runs. No globals.
 * Ownership: on success the decorator owns inner and closes it in its own
 * close (store_close()); the test may keep using inner directly until then.
 * Not: random/probabilistic faults, faults inside the inner store's own
 * retries (point an S3 store at a faulty HTTP server for those).
 */
#ifndef DOCVAULT_STORE_FAULT_H
#define DOCVAULT_STORE_FAULT_H

#include <stdint.h>

#include "docvault/store.h"

enum store_fault_op {
	STORE_FAULT_PUT_FD = 0,
	STORE_FAULT_GET_RANGE,
	STORE_FAULT_GET_TO_FD,
	STORE_FAULT_HEAD,
	STORE_FAULT_DEL,
	STORE_FAULT_DEL_BATCH,
	STORE_FAULT_LIST,
	STORE_FAULT_NOPS,		   /* the number of operations */
	STORE_FAULT_ANY = STORE_FAULT_NOPS /* arm or read every operation at once */
};

/*
 * Wraps inner. Returns 0, -EINVAL (inner is NULL) or -ENOMEM; on failure
 * the caller still owns inner.
 */
int store_fault_open(struct store *inner, struct store **out);

/* The inner store (borrowed). */
struct store *store_fault_inner(struct store *st);

/*
 * The next n calls of op (STORE_FAULT_ANY: of every operation, n each)
 * fail with err (a negative errno; a positive one is negated) before
 * reaching the inner store. Replaces what was armed for op.
 */
void store_fault_fail_next(struct store *st, enum store_fault_op op, unsigned n, int err);

/*
 * The next n calls of op reach the inner store and then return err, what
 * the inner store answered notwithstanding.
 */
void store_fault_lose_next(struct store *st, enum store_fault_op op, unsigned n, int err);

/* Every call of op (or every call, STORE_FAULT_ANY) first sleeps ms. 0 = none. */
void store_fault_set_latency(struct store *st, enum store_fault_op op, unsigned ms);

/*
 * The next put reads only the first `after` bytes of its fd (after < size;
 * a put of at most `after` bytes is forwarded untouched and keeps the cut
 * armed). If the copy cannot be made the put fails with that errno.
 */
void store_fault_cut_next_put(struct store *st, uint64_t after);

/* Calls of op made so far, injected failures included (STORE_FAULT_ANY: all). */
uint64_t store_fault_calls(struct store *st, enum store_fault_op op);

/* Failures injected into op so far by fail, lose and cut (STORE_FAULT_ANY: all). */
uint64_t store_fault_injected(struct store *st, enum store_fault_op op);

/* Disarms every fault and zeroes the counters. */
void store_fault_reset(struct store *st);

#endif
