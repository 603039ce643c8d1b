/*
 * store_fault.c - the fault-injecting store decorator (see store_fault.h):
 * struct store_fault embeds struct store, holds the inner store and, per
 * operation, what is armed (fail n, lose n, latency) and what was counted.
 *
 * Each forwarding function runs fault_enter() (count the call, take an
 * armed failure or the latency under the lock), sleeps outside the lock,
 * calls the inner store, then fault_leave() (a "lose" turns its answer into
 * the armed errno). A cut put copies the first `after` bytes of the source
 * into a memfd and hands that to the inner store with the full size.
 *
 * Locking: sf->lock protects rules[] and cut_*; it is never held across
 * a sleep or a call into the inner store, so the decorator adds no
 * ordering of its own between concurrent calls.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "docvault/store_fault.h"

#define FAULT_COPY_BUF (256 * 1024)

struct fault_rule {
	unsigned fail_n;   /* protected by lock */
	int fail_err;	   /* protected by lock */
	unsigned lose_n;   /* protected by lock */
	int lose_err;	   /* protected by lock */
	unsigned latency;  /* ms, protected by lock */
	uint64_t calls;	   /* protected by lock */
	uint64_t injected; /* protected by lock */
};

struct store_fault {
	struct store base;
	struct store *inner;
	pthread_mutex_t lock;
	struct fault_rule rules[STORE_FAULT_NOPS];
	bool cut_armed;	    /* protected by lock */
	uint64_t cut_after; /* protected by lock */
};

/* What fault_enter() decided for one call. */
struct fault_call {
	enum store_fault_op op;
	int fail; /* fail before forwarding with this errno, 0: forward */
	int lose; /* after forwarding, answer this errno, 0: the inner answer */
};

static struct store_fault *fault_of(struct store *st)
{
	return (struct store_fault *)st;
}

static int neg_errno(int err)
{
	if (err > 0)
		return -err;
	return err ? err : -EIO;
}

static void fault_sleep_ms(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	while (ms && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static struct fault_call fault_enter(struct store_fault *sf, enum store_fault_op op)
{
	struct fault_call c = {.op = op};
	struct fault_rule *r = &sf->rules[op];
	unsigned latency;

	pthread_mutex_lock(&sf->lock);
	r->calls++;
	latency = r->latency;
	if (r->fail_n > 0) {
		r->fail_n--;
		r->injected++;
		c.fail = r->fail_err;
	} else if (r->lose_n > 0) {
		r->lose_n--;
		r->injected++;
		c.lose = r->lose_err;
	}
	pthread_mutex_unlock(&sf->lock);
	fault_sleep_ms(latency);
	return c;
}

static int fault_leave(const struct fault_call *c, int ret)
{
	return c->lose ? c->lose : ret;
}

/* --- forwarding --------------------------------------------------------- */

/*
 * A memfd holding the first `after` bytes of fd (pread from offset 0, as a
 * store reads). Returns the new fd or a negative errno.
 */
static int fault_cut_copy(int fd, uint64_t after)
{
	char *buf = malloc(FAULT_COPY_BUF);
	uint64_t done = 0;
	int out, ret = 0;

	if (!buf)
		return -ENOMEM;
	out = memfd_create("docvault-fault-cut", MFD_CLOEXEC);
	if (out < 0) {
		ret = -errno;
		free(buf);
		return ret;
	}
	while (done < after && !ret) {
		size_t want =
		    after - done < FAULT_COPY_BUF ? (size_t)(after - done) : FAULT_COPY_BUF;
		ssize_t n = pread(fd, buf, want, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : 0; /* the source is shorter still: so be it */
			break;
		}
		for (ssize_t w = 0; w < n && !ret;) {
			ssize_t k =
			    pwrite(out, buf + w, (size_t)(n - w), (off_t)(done + (uint64_t)w));

			if (k < 0 && errno != EINTR)
				ret = -errno;
			else if (k > 0)
				w += k;
		}
		done += (uint64_t)n;
	}
	free(buf);
	if (ret) {
		close(out);
		return ret;
	}
	return out;
}

static int fault_put_fd(struct store *st, const char *key, int fd, uint64_t size,
			const unsigned char *sha256)
{
	struct store_fault *sf = fault_of(st);
	struct fault_call c = fault_enter(sf, STORE_FAULT_PUT_FD);
	bool cut = false;
	uint64_t after = 0;
	int ret, cfd;

	if (c.fail)
		return c.fail;
	pthread_mutex_lock(&sf->lock);
	if (sf->cut_armed && size > sf->cut_after) {
		cut = true;
		after = sf->cut_after;
		sf->cut_armed = false;
		sf->rules[STORE_FAULT_PUT_FD].injected++;
	}
	pthread_mutex_unlock(&sf->lock);
	if (!cut)
		return fault_leave(&c, sf->inner->ops->put_fd(sf->inner, key, fd, size, sha256));
	cfd = fault_cut_copy(fd, after);
	if (cfd < 0)
		return cfd;
	ret = sf->inner->ops->put_fd(sf->inner, key, cfd, size, sha256);
	close(cfd);
	return fault_leave(&c, ret);
}

static int fault_get_range(struct store *st, const char *key, uint64_t off, size_t len, void *buf,
			   size_t *got)
{
	struct store_fault *sf = fault_of(st);
	struct fault_call c = fault_enter(sf, STORE_FAULT_GET_RANGE);

	if (c.fail) {
		*got = 0;
		return c.fail;
	}
	return fault_leave(&c, sf->inner->ops->get_range(sf->inner, key, off, len, buf, got));
}

static int fault_get_to_fd(struct store *st, const char *key, uint64_t off, uint64_t len, int fd)
{
	struct store_fault *sf = fault_of(st);
	struct fault_call c = fault_enter(sf, STORE_FAULT_GET_TO_FD);

	if (c.fail)
		return c.fail;
	return fault_leave(&c, sf->inner->ops->get_to_fd(sf->inner, key, off, len, fd));
}

static int fault_head(struct store *st, const char *key, uint64_t *size)
{
	struct store_fault *sf = fault_of(st);
	struct fault_call c = fault_enter(sf, STORE_FAULT_HEAD);

	if (c.fail)
		return c.fail;
	return fault_leave(&c, sf->inner->ops->head(sf->inner, key, size));
}

static int fault_del(struct store *st, const char *key)
{
	struct store_fault *sf = fault_of(st);
	struct fault_call c = fault_enter(sf, STORE_FAULT_DEL);

	if (c.fail)
		return c.fail;
	return fault_leave(&c, sf->inner->ops->del(sf->inner, key));
}

static int fault_del_batch(struct store *st, const char *const *keys, size_t n)
{
	struct store_fault *sf = fault_of(st);
	struct fault_call c = fault_enter(sf, STORE_FAULT_DEL_BATCH);

	if (c.fail)
		return c.fail;
	return fault_leave(&c, sf->inner->ops->del_batch(sf->inner, keys, n));
}

static int fault_list(struct store *st, const char *prefix, store_list_cb cb, void *arg)
{
	struct store_fault *sf = fault_of(st);
	struct fault_call c = fault_enter(sf, STORE_FAULT_LIST);

	if (c.fail)
		return c.fail;
	return fault_leave(&c, sf->inner->ops->list(sf->inner, prefix, cb, arg));
}

static void fault_close(struct store *st)
{
	struct store_fault *sf = fault_of(st);

	store_close(sf->inner);
	pthread_mutex_destroy(&sf->lock);
	free(sf);
}

static const struct store_ops fault_ops = {
    .name = "fault",
    .put_fd = fault_put_fd,
    .get_range = fault_get_range,
    .get_to_fd = fault_get_to_fd,
    .head = fault_head,
    .del = fault_del,
    .del_batch = fault_del_batch,
    .list = fault_list,
    .close = fault_close,
};

/* --- control ------------------------------------------------------------ */

int store_fault_open(struct store *inner, struct store **out)
{
	struct store_fault *sf;

	*out = NULL;
	if (!inner)
		return -EINVAL;
	sf = calloc(1, sizeof(*sf));
	if (!sf)
		return -ENOMEM;
	sf->base.ops = &fault_ops;
	sf->inner = inner;
	pthread_mutex_init(&sf->lock, NULL);
	*out = &sf->base;
	return 0;
}

struct store *store_fault_inner(struct store *st)
{
	return fault_of(st)->inner;
}

/* The range of rules op names: one, or all of them. */
static void op_range(enum store_fault_op op, int *from, int *to)
{
	if (op == STORE_FAULT_ANY || (int)op < 0 || op > STORE_FAULT_ANY) {
		*from = 0;
		*to = STORE_FAULT_NOPS;
	} else {
		*from = (int)op;
		*to = (int)op + 1;
	}
}

void store_fault_fail_next(struct store *st, enum store_fault_op op, unsigned n, int err)
{
	struct store_fault *sf = fault_of(st);
	int from, to;

	op_range(op, &from, &to);
	pthread_mutex_lock(&sf->lock);
	for (int i = from; i < to; i++) {
		sf->rules[i].fail_n = n;
		sf->rules[i].fail_err = neg_errno(err);
	}
	pthread_mutex_unlock(&sf->lock);
}

void store_fault_lose_next(struct store *st, enum store_fault_op op, unsigned n, int err)
{
	struct store_fault *sf = fault_of(st);
	int from, to;

	op_range(op, &from, &to);
	pthread_mutex_lock(&sf->lock);
	for (int i = from; i < to; i++) {
		sf->rules[i].lose_n = n;
		sf->rules[i].lose_err = neg_errno(err);
	}
	pthread_mutex_unlock(&sf->lock);
}

void store_fault_set_latency(struct store *st, enum store_fault_op op, unsigned ms)
{
	struct store_fault *sf = fault_of(st);
	int from, to;

	op_range(op, &from, &to);
	pthread_mutex_lock(&sf->lock);
	for (int i = from; i < to; i++)
		sf->rules[i].latency = ms;
	pthread_mutex_unlock(&sf->lock);
}

void store_fault_cut_next_put(struct store *st, uint64_t after)
{
	struct store_fault *sf = fault_of(st);

	pthread_mutex_lock(&sf->lock);
	sf->cut_armed = true;
	sf->cut_after = after;
	pthread_mutex_unlock(&sf->lock);
}

uint64_t store_fault_calls(struct store *st, enum store_fault_op op)
{
	struct store_fault *sf = fault_of(st);
	uint64_t n = 0;
	int from, to;

	op_range(op, &from, &to);
	pthread_mutex_lock(&sf->lock);
	for (int i = from; i < to; i++)
		n += sf->rules[i].calls;
	pthread_mutex_unlock(&sf->lock);
	return n;
}

uint64_t store_fault_injected(struct store *st, enum store_fault_op op)
{
	struct store_fault *sf = fault_of(st);
	uint64_t n = 0;
	int from, to;

	op_range(op, &from, &to);
	pthread_mutex_lock(&sf->lock);
	for (int i = from; i < to; i++)
		n += sf->rules[i].injected;
	pthread_mutex_unlock(&sf->lock);
	return n;
}

void store_fault_reset(struct store *st)
{
	struct store_fault *sf = fault_of(st);

	pthread_mutex_lock(&sf->lock);
	memset(sf->rules, 0, sizeof(sf->rules));
	sf->cut_armed = false;
	sf->cut_after = 0;
	pthread_mutex_unlock(&sf->lock);
}
