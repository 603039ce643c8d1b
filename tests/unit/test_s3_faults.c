/*
 * test_s3_faults.c - the S3 store under the faults real object stores and
 * networks produce, against a real S3 server (DV_TEST_S3_*, as
 * test_store_s3.c; without them the test FAILS, it never skips):
 *
 *  - 503 SlowDown: a fault server in a thread of this test (plain sockets
 *    on 127.0.0.1, an ephemeral port) stands between the store and the real
 *    server. It answers the requests its script names with 503 and an S3
 *    <Error><Code>SlowDown</Code> body and forwards the others; the store
 *    must retry with backoff (attempts counted on both sides, the spacing of
 *    the attempts checked against the backoff the store reports: lower
 *    bounds only, no timing upper bound).
 *  - A response cut short: the fault server forwards the answer's head and
 *    half of its Content-Length, then closes (and, apart, a connection
 *    closed without any answer). The store must never return such an answer
 *    as success: it is retried to success, or -EIO.
 *  - A wrong secret key: -EACCES after exactly one request (counted by the
 *    server), a log line that says what to fix, and no secret in it.
 *  - The store decorator (store_fault.h) around the S3 store: a multipart
 *    put whose source breaks midway is aborted, leaving nothing; a put
 *    whose answer is lost can be repeated.
 *  - The S3 server killed mid-upload and restarted: a private RGW (started
 *    here with tools/lib/rgw.sh, found through DV_SOURCE_DIR, which ctest
 *    sets), its radosgw SIGKILLed during a 64 MiB multipart upload and
 *    started again with the same command line. The upload completes, reads
 *    back byte-exact, and no incomplete multipart upload is left. A private
 *    server, because killing the shared one would fail the tests that ctest
 *    runs next to this one.
 *
 * The fault server forwards each request on a connection of its own with
 * "Connection: close" (so it sees and counts every request) and keeps the
 * client's Host header, so the real server verifies the same SigV4
 * signature the store computed for the fault server's address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "testfiles.h"
#include "docvault/config.h"
#include "docvault/store.h"
#include "docvault/store_fault.h"
#include "docvault/store_s3.h"

#define MIB	     (1024 * 1024ULL)
#define MAX_RETRIES  4 /* of the stores here: 5 attempts at most */
#define SRV_MAX_HEAD (64 * 1024)
#define SRV_MAX_SEEN 256

static char run_prefix[96];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void key_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s%s", run_prefix, name);
}

/* --- the fault server ---------------------------------------------------- */

enum srv_action {
	SRV_PASS = 0, /* forward the request and the whole answer */
	SRV_SLOWDOWN, /* answer 503 SlowDown without forwarding */
	SRV_CUT,      /* forward, then pass the answer's head and half its body, close */
	SRV_DROP,     /* close the connection without an answer */
};

struct srv {
	int lfd;
	int port;
	struct sockaddr_in up; /* the real server */
	pthread_t acceptor;
	atomic_bool stop;
	pthread_mutex_t lock;
	enum srv_action script[64]; /* protected by lock: actions for the next requests */
	int nscript, next;	    /* protected by lock */
	int requests;		    /* protected by lock: requests seen since srv_script() */
	int faults;		    /* protected by lock: requests not passed through */
	int cuts;		    /* protected by lock: answers cut inside their body */
	double at[SRV_MAX_SEEN];    /* protected by lock: arrival time of each request */
	pthread_t *conns;	    /* protected by lock: connection threads to join */
	size_t nconns, capconns;    /* protected by lock */
};

struct srv_conn {
	struct srv *s;
	int fd;
};

static int send_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void set_timeout(int fd, int seconds)
{
	struct timeval tv = {seconds, 0};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* The value of header name in the head [h, h+len), trimmed, into out; false if absent. */
static bool head_value(const char *h, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);
	const char *p = memmem(h, len, "\r\n", 2), *end = h + len;

	while (p && p + 2 < end) {
		const char *line = p + 2, *eol = memmem(line, (size_t)(end - line), "\r\n", 2);

		if (!eol)
			break;
		if ((size_t)(eol - line) > nl && line[nl] == ':' &&
		    strncasecmp(line, name, nl) == 0) {
			const char *v = line + nl + 1;
			size_t vl;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			vl = (size_t)(eol - v);
			while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			snprintf(out, outlen, "%.*s", (int)vl, v);
			return true;
		}
		p = eol;
	}
	return false;
}

/* Reads and drops n bytes (a request body nobody will forward). */
static void drain(int fd, uint64_t n)
{
	char buf[16384];

	while (n > 0) {
		ssize_t r = recv(fd, buf, n < sizeof(buf) ? (size_t)n : sizeof(buf), 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		n -= (uint64_t)r;
	}
}

/* Closes our side, then waits (bounded by the socket's timeout) for the client's. */
static void close_gently(int fd)
{
	char buf[4096];

	shutdown(fd, SHUT_WR);
	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	close(fd);
}

static void srv_slowdown(int fd, const char *method, int seq)
{
	char body[512], head[512];
	int blen, hlen;
	bool is_head = strcmp(method, "HEAD") == 0;

	blen = snprintf(body, sizeof(body),
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
			"<Message>Please reduce your request rate.</Message>"
			"<RequestId>fault-%d</RequestId></Error>",
			seq);
	hlen = snprintf(head, sizeof(head),
			"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
			"Content-Length: %d\r\nx-amz-request-id: fault-%d\r\n"
			"Connection: close\r\n\r\n",
			is_head ? 0 : blen, seq);
	if (send_all(fd, head, (size_t)hlen) == 0 && !is_head)
		send_all(fd, body, (size_t)blen);
}

/*
 * The request head without its Connection header and with
 * "Connection: close" (so each request has a connection of its own).
 */
static size_t rewrite_head(const char *h, size_t len, char *out)
{
	const char *p = h, *end = h + len - 2; /* up to the blank line */
	size_t o = 0;

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		size_t l = eol ? (size_t)(eol - p) + 2 : (size_t)(end - p);

		if (!(l >= 11 && strncasecmp(p, "connection:", 11) == 0)) {
			memcpy(out + o, p, l);
			o += l;
		}
		p += l;
	}
	memcpy(out + o, "Connection: close\r\n\r\n", 21);
	return o + 21;
}

/* The answer being cut: its head is buffered, then half of its body let through. */
struct cutter {
	char head[SRV_MAX_HEAD];
	size_t hlen;
	bool body;	  /* the final head was sent: counting body bytes */
	uint64_t allowed; /* body bytes to let through */
	uint64_t sent;
};

/*
 * Passes n answer bytes to the client under the cut. Returns 1 once the
 * cut is made (or nothing more can be done), 0 to go on, -1 on a failure.
 */
static int cutter_feed(struct cutter *c, int fd, const char *data, size_t n)
{
	if (c->body) {
		size_t k = (uint64_t)n < c->allowed - c->sent ? n : (size_t)(c->allowed - c->sent);

		if (send_all(fd, data, k) < 0)
			return -1;
		c->sent += k;
		return c->sent == c->allowed;
	}
	if (c->hlen + n > sizeof(c->head))
		return -1;
	memcpy(c->head + c->hlen, data, n);
	c->hlen += n;
	for (;;) {
		const char *e = memmem(c->head, c->hlen, "\r\n\r\n", 4);
		char clen[32];
		size_t hl, rest;
		bool interim;

		if (!e)
			return 0;
		hl = (size_t)(e - c->head) + 4;
		interim = hl > 12 && c->head[9] == '1'; /* "HTTP/1.1 1xx" */
		if (send_all(fd, c->head, hl) < 0)
			return -1;
		if (!interim) {
			c->allowed = 0;
			if (head_value(c->head, hl, "Content-Length", clen, sizeof(clen)))
				c->allowed = strtoull(clen, NULL, 10) / 2;
		}
		rest = c->hlen - hl;
		memmove(c->head, c->head + hl, rest);
		c->hlen = rest;
		if (interim)
			continue;
		c->body = true;
		if (c->allowed == 0)
			return 1;
		rest = c->hlen;
		c->hlen = 0;
		return rest ? cutter_feed(c, fd, c->head, rest) : 0;
	}
}

/*
 * Forwards one request (its head is head[0..head_end); [head_end, hlen)
 * is the start of its body) and the answer, whole or cut.
 */
static void srv_forward(struct srv *s, int fd, const char *head, size_t head_end, size_t hlen,
			bool cut)
{
	const size_t cap = SRV_MAX_HEAD + 64;
	char *out = malloc(cap), *buf = malloc(cap);
	struct cutter *c = cut ? calloc(1, sizeof(*c)) : NULL;
	bool client_open = true;
	int ufd = -1;

	if (!out || !buf || (cut && !c))
		goto out;
	ufd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ufd < 0 || connect(ufd, (struct sockaddr *)&s->up, sizeof(s->up)) < 0)
		goto out;
	set_timeout(ufd, 60);
	if (send_all(ufd, out, rewrite_head(head, head_end, out)) < 0 ||
	    send_all(ufd, head + head_end, hlen - head_end) < 0)
		goto out;
	for (;;) {
		struct pollfd p[2] = {{.fd = ufd, .events = POLLIN},
				      {.fd = client_open ? fd : -1, .events = POLLIN}};
		ssize_t n;

		if (poll(p, 2, 60000) <= 0)
			break;
		if (p[1].revents) {
			n = recv(fd, buf, cap, 0);
			if (n <= 0) {
				client_open = false;
				shutdown(ufd, SHUT_WR);
			} else if (send_all(ufd, buf, (size_t)n) < 0) {
				break;
			}
		}
		if (!p[0].revents)
			continue;
		/* While its head is buffered, a cut answer is read no further than the head's room.
		 */
		n = recv(ufd, buf, c && !c->body ? sizeof(c->head) - c->hlen : cap, 0);
		if (n <= 0)
			break; /* the whole answer went through (Connection: close), or no room */
		if (!c) {
			if (send_all(fd, buf, (size_t)n) < 0)
				break;
		} else if (cutter_feed(c, fd, buf, (size_t)n) != 0) {
			/* Made as meant: a head, then some but not all of the body. */
			if (c->body && c->allowed > 0 && c->sent == c->allowed) {
				pthread_mutex_lock(&s->lock);
				s->cuts++;
				pthread_mutex_unlock(&s->lock);
			}
			break;
		}
	}
out:
	if (ufd >= 0)
		close(ufd);
	free(out);
	free(buf);
	free(c);
}

static void *srv_conn_run(void *arg)
{
	struct srv_conn *sc = arg;
	struct srv *s = sc->s;
	int fd = sc->fd, seq;
	char *head = malloc(SRV_MAX_HEAD + 1), method[16] = "", val[64];
	size_t hlen = 0, head_end;
	const char *e = NULL;
	enum srv_action act = SRV_PASS;
	uint64_t clen = 0;
	bool expect;

	free(sc);
	set_timeout(fd, 30);
	while (head && !(e = memmem(head, hlen, "\r\n\r\n", 4)) && hlen < SRV_MAX_HEAD) {
		ssize_t n = recv(fd, head + hlen, SRV_MAX_HEAD - hlen, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		hlen += (size_t)n;
	}
	if (!e) { /* closed without a request (or a head too large) */
		close(fd);
		free(head);
		return NULL;
	}
	head_end = (size_t)(e - head) + 4;
	head[hlen] = '\0'; /* for sscanf; the body may hold NULs, the request line does not */
	sscanf(head, "%15s", method);
	if (head_value(head, head_end, "Content-Length", val, sizeof(val)))
		clen = strtoull(val, NULL, 10);
	expect = head_value(head, head_end, "Expect", val, sizeof(val)) &&
		 strcasecmp(val, "100-continue") == 0;

	pthread_mutex_lock(&s->lock);
	seq = s->requests++;
	if (seq < SRV_MAX_SEEN)
		s->at[seq] = now();
	if (s->next < s->nscript)
		act = s->script[s->next++];
	if (act != SRV_PASS)
		s->faults++;
	pthread_mutex_unlock(&s->lock);

	if (act == SRV_SLOWDOWN) {
		/* Without "Expect: 100-continue" the body is on its way: take it first. */
		if (!expect && clen > hlen - head_end)
			drain(fd, clen - (hlen - head_end));
		srv_slowdown(fd, method, seq);
		close_gently(fd);
	} else if (act == SRV_DROP) {
		close(fd);
	} else {
		srv_forward(s, fd, head, head_end, hlen, act == SRV_CUT);
		close(fd);
	}
	free(head);
	return NULL;
}

static void *srv_accept_run(void *arg)
{
	struct srv *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd p = {.fd = s->lfd, .events = POLLIN};
		struct srv_conn *sc;
		pthread_t t;
		int fd;

		if (poll(&p, 1, 100) <= 0)
			continue;
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		sc = malloc(sizeof(*sc));
		pthread_mutex_lock(&s->lock);
		if (s->nconns == s->capconns) {
			size_t nc = s->capconns ? s->capconns * 2 : 64;
			pthread_t *p2 = realloc(s->conns, nc * sizeof(*p2));

			if (p2) {
				s->conns = p2;
				s->capconns = nc;
			}
		}
		if (sc && s->nconns < s->capconns) {
			*sc = (struct srv_conn){s, fd};
			if (pthread_create(&t, NULL, srv_conn_run, sc) == 0) {
				s->conns[s->nconns++] = t;
				sc = NULL;
				fd = -1;
			}
		}
		pthread_mutex_unlock(&s->lock);
		free(sc);
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

/*
 * Starts a fault server in front of upstream ("http://host:port[/path]").
 * Returns 0, or -1 with a message on stderr.
 */
static int srv_start(struct srv *s, const char *upstream)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	char host[256], port[16] = "80";
	const char *p, *colon, *slash;

	memset(s, 0, sizeof(*s));
	s->lfd = -1;
	if (strncasecmp(upstream, "http://", 7) != 0) {
		fprintf(stderr,
			"test_s3_faults: the fault server forwards plain HTTP only, and "
			"DV_TEST_S3_ENDPOINT is %s\n",
			upstream);
		return -1;
	}
	p = upstream + 7;
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	colon = memchr(p, ':', (size_t)(slash - p));
	snprintf(host, sizeof(host), "%.*s", (int)((colon ? colon : slash) - p), p);
	if (colon)
		snprintf(port, sizeof(port), "%.*s", (int)(slash - colon - 1), colon + 1);
	if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
		fprintf(stderr, "test_s3_faults: cannot resolve %s\n", upstream);
		return -1;
	}
	memcpy(&s->up, ai->ai_addr, sizeof(s->up));
	freeaddrinfo(ai);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(s->lfd, 64) < 0 || getsockname(s->lfd, (struct sockaddr *)&a, &alen) < 0) {
		perror("test_s3_faults: fault server socket");
		if (s->lfd >= 0)
			close(s->lfd);
		return -1;
	}
	s->port = ntohs(a.sin_port);
	pthread_mutex_init(&s->lock, NULL);
	atomic_init(&s->stop, false);
	if (pthread_create(&s->acceptor, NULL, srv_accept_run, s) != 0) {
		close(s->lfd);
		pthread_mutex_destroy(&s->lock);
		return -1;
	}
	return 0;
}

static void srv_stop(struct srv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->acceptor, NULL);
	for (size_t i = 0; i < s->nconns; i++)
		pthread_join(s->conns[i], NULL);
	free(s->conns);
	close(s->lfd);
	pthread_mutex_destroy(&s->lock);
}

/* Sets the actions for the next requests (then SRV_PASS) and zeroes the counts. */
static void srv_script(struct srv *s, const enum srv_action *acts, int n)
{
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < n && i < (int)(sizeof(s->script) / sizeof(s->script[0])); i++)
		s->script[i] = acts[i];
	s->nscript = n;
	s->next = 0;
	s->requests = 0;
	s->faults = 0;
	s->cuts = 0;
	pthread_mutex_unlock(&s->lock);
}

/* n times the same action. */
static void srv_script_n(struct srv *s, enum srv_action act, int n)
{
	enum srv_action acts[64];

	for (int i = 0; i < n && i < 64; i++)
		acts[i] = act;
	srv_script(s, acts, n);
}

static int srv_requests(struct srv *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->requests;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static int srv_faults(struct srv *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->faults;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static int srv_cuts(struct srv *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->cuts;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Seconds between the arrival of request a and request b (since srv_script()). */
static double srv_span(struct srv *s, int a, int b)
{
	double d = -1;

	pthread_mutex_lock(&s->lock);
	if (a >= 0 && b < s->requests && b < SRV_MAX_SEEN && a <= b)
		d = s->at[b] - s->at[a];
	pthread_mutex_unlock(&s->lock);
	return d;
}

/* --- stores ------------------------------------------------------------- */

static void cfg_fill(struct dv_config *cfg, const char *endpoint, const char *bucket)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->path = "test_s3_faults";
	cfg->storage.type = CONFIG_STORE_S3;
	cfg->storage.endpoint = (char *)endpoint;
	cfg->storage.region = getenv("DV_TEST_S3_REGION");
	cfg->storage.bucket = (char *)bucket;
	cfg->storage.path_style = true;
	cfg->storage.access_key = getenv("DV_TEST_S3_ACCESS_KEY");
	cfg->storage.secret_key = getenv("DV_TEST_S3_SECRET_KEY");
	cfg->storage.tls_verify = true;
	cfg->storage.part_size = 5 * MIB;
	cfg->storage.multipart_threshold = 5 * MIB;
	cfg->storage.max_connections = 4;
	cfg->storage.max_retries = MAX_RETRIES;
	cfg->storage.connect_timeout = 5;
	cfg->storage.request_timeout = 30;
}

/* The endpoint of the fault server, with the real endpoint's path if it has one. */
static void srv_endpoint(const struct srv *s, char *buf, size_t len)
{
	const char *real = getenv("DV_TEST_S3_ENDPOINT"), *path = strchr(real + 7, '/');

	snprintf(buf, len, "http://127.0.0.1:%d%s", s->port, path ? path : "");
}

static struct store *open_store(const struct dv_config *cfg)
{
	struct store *st = NULL;
	char err[256];

	if (store_s3_open(cfg, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "test_s3_faults: %s\n", err);
		CHECK(st != NULL);
	}
	return st;
}

/* A store on the fault server. */
static struct store *open_faulty(const struct srv *s, const char *bucket)
{
	struct dv_config cfg;
	char ep[256];

	srv_endpoint(s, ep, sizeof(ep));
	cfg_fill(&cfg, ep, bucket);
	return open_store(&cfg);
}

static int count_cb(void *arg, const char *key, uint64_t size)
{
	(void)key;
	(void)size;
	(*(int *)arg)++;
	return 0;
}

/* --- stderr capture, to read what the store logs -------------------------- */

struct capture {
	int saved;
	int fd;
};

static void capture_begin(struct capture *c)
{
	char path[] = "/tmp/dv-test-s3f-log.XXXXXX";

	fflush(stderr);
	c->fd = mkstemp(path);
	c->saved = -1;
	if (c->fd < 0)
		return;
	unlink(path);
	c->saved = dup(2);
	dup2(c->fd, 2);
}

/* Restores stderr; returns what was written to it (malloc'ed), echoed. */
static char *capture_end(struct capture *c)
{
	char *text = NULL;
	off_t len;

	if (c->fd < 0)
		return strdup("");
	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	len = lseek(c->fd, 0, SEEK_END);
	text = calloc(1, (size_t)(len > 0 ? len : 0) + 1);
	if (text && len > 0 && pread(c->fd, text, (size_t)len, 0) != len)
		text[0] = '\0';
	close(c->fd);
	if (text)
		fputs(text, stderr);
	return text ? text : strdup("");
}

/* --- cases: 503 SlowDown ------------------------------------------------- */

static void test_slowdown(struct store *st, struct srv *s, const char *bucket)
{
	const uint64_t size = 2 * MIB + 11, mp_size = 12 * MIB + 5;
	struct store *fs = open_faulty(s, bucket);
	char key[256], mp_key[256], pfx[256];
	static char buf[64 * 1024], want[64 * 1024];
	int fd = tmp_random(size, 11), mp = tmp_random(mp_size, 12), out = tmp_random(0, 0);
	uint64_t osize = 0, before, backoff;
	size_t got = 0;
	int uploads = -1;
	double t0, t1, span;

	CHECK(fd >= 0 && mp >= 0 && out >= 0);
	if (!fs)
		return;
	key_of(key, sizeof(key), "slowdown/obj");
	CHECK_EQ(store_put_fd(st, key, fd, size, NULL), 0);

	/* A HEAD answered SlowDown three times: four attempts, spaced by the backoff. */
	srv_script_n(s, SRV_SLOWDOWN, 3);
	t0 = now();
	CHECK_EQ(store_head(fs, key, &osize), 0);
	t1 = now();
	CHECK_EQ(osize, size);
	CHECK_EQ(store_s3_test_requests(fs), 4);
	CHECK_EQ(srv_requests(s), 4);
	CHECK_EQ(srv_faults(s), 3);
	backoff = store_s3_test_backoff_ms(fs);
	span = srv_span(s, 0, 3);
	printf("slowdown: 3 x 503 then 200: 4 attempts in %.3f s, %llu ms of backoff, "
	       "first to last attempt %.3f s\n",
	       t1 - t0, (unsigned long long)backoff, span);
	/*
	 * Full jitter draws each wait in [0, 250 ms x 2^n]: all three are 0 ms
	 * with a probability of about 1e-8. Whatever was drawn was waited:
	 * the attempts are at least that far apart (a lower bound only).
	 */
	CHECK(backoff > 0);
	CHECK(span >= (double)backoff / 1000.0 - 1e-6);
	CHECK(t1 - t0 >= (double)backoff / 1000.0 - 1e-6);

	/* A PUT: the body is sent again, from the fd, on each attempt. */
	srv_script_n(s, SRV_SLOWDOWN, 2);
	before = store_s3_test_requests(fs);
	CHECK_EQ(store_put_fd(fs, key, fd, size, NULL), 0);
	CHECK_EQ(store_s3_test_requests(fs) - before, 3);
	CHECK_EQ(srv_requests(s), 3);
	CHECK_EQ(store_get_to_fd(st, key, 0, size, out), 0);
	CHECK_EQ(compare_files(fd, out, size), 0);

	/* A ranged GET. */
	srv_script_n(s, SRV_SLOWDOWN, 1);
	before = store_s3_test_requests(fs);
	CHECK_EQ(store_get_range(fs, key, MIB, sizeof(buf), buf, &got), 0);
	CHECK_EQ(got, sizeof(buf));
	CHECK_EQ(pread(fd, want, sizeof(want), (off_t)MIB), (ssize_t)sizeof(want));
	CHECK(memcmp(buf, want, sizeof(buf)) == 0);
	CHECK_EQ(store_s3_test_requests(fs) - before, 2);

	/* A multipart upload (create, 3 parts, complete): the three parts answered SlowDown. */
	key_of(mp_key, sizeof(mp_key), "slowdown/multipart");
	srv_script(s, (enum srv_action[]){SRV_PASS, SRV_SLOWDOWN, SRV_SLOWDOWN, SRV_SLOWDOWN}, 4);
	before = store_s3_test_requests(fs);
	CHECK_EQ(store_put_fd(fs, mp_key, mp, mp_size, NULL), 0);
	CHECK_EQ(store_s3_test_requests(fs) - before, 1 + 3 + 3 + 1);
	CHECK_EQ(srv_requests(s), 8);
	CHECK_EQ(srv_faults(s), 3);
	CHECK_EQ(store_head(st, mp_key, &osize), 0);
	CHECK_EQ(osize, mp_size);
	CHECK_EQ(store_get_to_fd(st, mp_key, 0, mp_size, out), 0);
	CHECK_EQ(compare_files(mp, out, mp_size), 0);
	key_of(pfx, sizeof(pfx), "slowdown/");
	CHECK_EQ(store_s3_test_uploads(st, pfx, &uploads), 0);
	CHECK_EQ(uploads, 0);

	/* SlowDown on every attempt: max_retries retries, then -EIO. */
	srv_script_n(s, SRV_SLOWDOWN, MAX_RETRIES + 1);
	before = store_s3_test_requests(fs);
	CHECK_EQ(store_head(fs, key, &osize), -EIO);
	CHECK_EQ(store_s3_test_requests(fs) - before, MAX_RETRIES + 1);
	CHECK_EQ(srv_requests(s), MAX_RETRIES + 1);
	/* And the next call, on a server that has calmed down, succeeds at once. */
	before = store_s3_test_requests(fs);
	CHECK_EQ(store_head(fs, key, &osize), 0);
	CHECK_EQ(store_s3_test_requests(fs) - before, 1);

	CHECK_EQ(store_del_batch(st, (const char *const[]){key, mp_key}, 2), 0);
	store_close(fs);
	close(fd);
	close(mp);
	close(out);
}

/* --- cases: a response cut short ------------------------------------------ */

static void test_cut_short(struct store *st, struct srv *s, const char *bucket)
{
	const uint64_t size = MIB + 123;
	struct store *fs = open_faulty(s, bucket);
	static char buf[2 * MIB], want[2 * MIB];
	char key[256];
	int fd = tmp_random(size, 21), out = tmp_random(0, 0);
	uint64_t before;
	size_t got = 0;

	CHECK(fd >= 0 && out >= 0);
	if (!fs)
		return;
	CHECK_EQ(pread(fd, want, size, 0), (ssize_t)size);
	key_of(key, sizeof(key), "cut/obj");
	CHECK_EQ(store_put_fd(st, key, fd, size, NULL), 0);

	/* The whole object, cut once: retried, and the bytes are right. */
	srv_script_n(s, SRV_CUT, 1);
	before = store_s3_test_requests(fs);
	memset(buf, 0xa5, sizeof(buf));
	CHECK_EQ(store_get_range(fs, key, 0, sizeof(buf), buf, &got), 0);
	CHECK_EQ(got, size);
	CHECK(memcmp(buf, want, size) == 0);
	CHECK_EQ(store_s3_test_requests(fs) - before, 2);
	CHECK_EQ(srv_requests(s), 2);
	CHECK_EQ(srv_cuts(s), 1); /* the head and half the body went through */

	/* A range (206), cut twice. */
	srv_script_n(s, SRV_CUT, 2);
	before = store_s3_test_requests(fs);
	CHECK_EQ(store_get_range(fs, key, 1000, 300000, buf, &got), 0);
	CHECK_EQ(got, 300000);
	CHECK(memcmp(buf, want + 1000, 300000) == 0);
	CHECK_EQ(store_s3_test_requests(fs) - before, 3);
	CHECK_EQ(srv_cuts(s), 2);

	/* Into a file. */
	srv_script_n(s, SRV_CUT, 1);
	before = store_s3_test_requests(fs);
	CHECK_EQ(store_get_to_fd(fs, key, 0, size, out), 0);
	CHECK_EQ(compare_files(fd, out, size), 0);
	CHECK_EQ(store_s3_test_requests(fs) - before, 2);
	CHECK_EQ(srv_cuts(s), 1);

	/* A connection closed without an answer (a server that died): retried. */
	srv_script_n(s, SRV_DROP, 2);
	before = store_s3_test_requests(fs);
	CHECK_EQ(store_get_range(fs, key, 0, sizeof(buf), buf, &got), 0);
	CHECK_EQ(got, size);
	CHECK(memcmp(buf, want, size) == 0);
	CHECK_EQ(store_s3_test_requests(fs) - before, 3);
	CHECK_EQ(srv_faults(s), 2);

	/* Cut on every attempt: an error, never a short success. */
	srv_script_n(s, SRV_CUT, MAX_RETRIES + 1);
	before = store_s3_test_requests(fs);
	got = 12345;
	CHECK_EQ(store_get_range(fs, key, 0, sizeof(buf), buf, &got), -EIO);
	CHECK_EQ(got, 0);
	CHECK_EQ(store_s3_test_requests(fs) - before, MAX_RETRIES + 1);
	CHECK_EQ(srv_cuts(s), MAX_RETRIES + 1);
	srv_script_n(s, SRV_CUT, MAX_RETRIES + 1);
	CHECK_EQ(store_get_to_fd(fs, key, 0, size, out), -EIO);
	CHECK_EQ(srv_cuts(s), MAX_RETRIES + 1);

	CHECK_EQ(store_del(st, key), 0);
	store_close(fs);
	close(fd);
	close(out);
}

/* --- cases: a wrong secret key -------------------------------------------- */

static void test_wrong_secret(struct srv *s, const char *bucket)
{
	const char *wrong = "wrong-secret-key-0123456789-wrong-secret";
	struct dv_config cfg;
	struct store *fs;
	struct capture cap;
	char ep[256], key[256], big_key[256], buf[16], *log;
	int fd = tmp_random(1000, 31), big = tmp_random(12 * MIB, 32), n = 0;
	uint64_t size;
	size_t got;

	CHECK(fd >= 0 && big >= 0);
	srv_endpoint(s, ep, sizeof(ep));
	cfg_fill(&cfg, ep, bucket);
	cfg.storage.secret_key = (char *)wrong;
	fs = open_store(&cfg);
	if (!fs)
		return;
	key_of(key, sizeof(key), "denied/obj");
	key_of(big_key, sizeof(big_key), "denied/big");
	srv_script(s, NULL, 0);

	capture_begin(&cap);
	CHECK_EQ(store_put_fd(fs, key, fd, 1000, NULL), -EACCES);
	log = capture_end(&cap);
	CHECK_EQ(store_s3_test_requests(fs), 1);
	CHECK_EQ(srv_requests(s), 1);
	/* One line that says what to fix, and never the secret. */
	CHECK(strstr(log, "SignatureDoesNotMatch") != NULL);
	CHECK(strstr(log, "secret_key") != NULL);
	CHECK(strstr(log, "1 attempt") != NULL);
	CHECK(strstr(log, wrong) == NULL);
	CHECK(strstr(log, getenv("DV_TEST_S3_SECRET_KEY")) == NULL);
	free(log);

	CHECK_EQ(store_head(fs, key, &size), -EACCES);
	CHECK_EQ(store_get_range(fs, key, 0, sizeof(buf), buf, &got), -EACCES);
	CHECK_EQ(store_list(fs, run_prefix, count_cb, &n), -EACCES);
	CHECK_EQ(n, 0);
	/* A multipart-sized put stops at the create: no part is sent. */
	CHECK_EQ(store_put_fd(fs, big_key, big, 12 * MIB, NULL), -EACCES);
	CHECK_EQ(store_s3_test_requests(fs), 5);
	CHECK_EQ(srv_requests(s), 5);
	CHECK_EQ(store_s3_test_backoff_ms(fs), 0);
	store_close(fs);

	/* An unknown access key, directly against the real server. */
	cfg_fill(&cfg, getenv("DV_TEST_S3_ENDPOINT"), bucket);
	cfg.storage.access_key = "NOSUCHACCESSKEY00000";
	fs = open_store(&cfg);
	if (fs) {
		capture_begin(&cap);
		CHECK_EQ(store_put_fd(fs, key, fd, 1000, NULL), -EACCES);
		log = capture_end(&cap);
		CHECK_EQ(store_s3_test_requests(fs), 1);
		CHECK(strstr(log, "access_key") != NULL);
		free(log);
		store_close(fs);
	}
	close(fd);
	close(big);
}

/* --- cases: the store decorator around the S3 store ----------------------- */

static void test_decorated(const char *bucket)
{
	const uint64_t size = 12 * MIB + 7;
	struct dv_config cfg;
	struct store *inner, *fs = NULL;
	char key[256], pfx[256];
	int fd = tmp_random(size, 51), out = tmp_random(0, 0), uploads = -1;
	uint64_t osize = 0;

	CHECK(fd >= 0 && out >= 0);
	cfg_fill(&cfg, getenv("DV_TEST_S3_ENDPOINT"), bucket);
	inner = open_store(&cfg);
	if (!inner)
		return;
	CHECK_EQ(store_fault_open(inner, &fs), 0);
	if (!fs) {
		store_close(inner);
		return;
	}
	key_of(key, sizeof(key), "decorated/obj");
	key_of(pfx, sizeof(pfx), "decorated/");

	/* A multipart put whose source breaks after 7 MiB: the upload is aborted. */
	store_fault_cut_next_put(fs, 7 * MIB);
	CHECK_EQ(store_put_fd(fs, key, fd, size, NULL), -EIO);
	CHECK_EQ(store_head(inner, key, &osize), -ENOENT);
	CHECK_EQ(store_s3_test_uploads(inner, pfx, &uploads), 0);
	CHECK_EQ(uploads, 0);

	/* The answer of a put that arrived is lost; putting again is harmless. */
	store_fault_lose_next(fs, STORE_FAULT_PUT_FD, 1, -ETIMEDOUT);
	CHECK_EQ(store_put_fd(fs, key, fd, size, NULL), -ETIMEDOUT);
	CHECK_EQ(store_head(inner, key, &osize), 0);
	CHECK_EQ(osize, size);
	CHECK_EQ(store_put_fd(fs, key, fd, size, NULL), 0);
	CHECK_EQ(store_get_to_fd(fs, key, 0, size, out), 0);
	CHECK_EQ(compare_files(fd, out, size), 0);
	CHECK_EQ(store_fault_injected(fs, STORE_FAULT_ANY), 2);
	CHECK_EQ(store_del(fs, key), 0);
	store_close(fs); /* and inner */
	close(fd);
	close(out);
}

/* --- cases: the server killed mid-upload and restarted --------------------- */

/* Runs argv (stdout to /dev/null: rgw.sh prints its keys there); its exit status. */
static int run_quiet(char *const argv[])
{
	pid_t pid = fork();
	int status = 0;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		close_range(3, ~0U, 0);
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The value of NAME=value in the env file text, malloc'ed; NULL if absent. */
static char *env_value(const char *text, const char *name)
{
	size_t nl = strlen(name);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
			const char *v = p + nl + 1;

			return strndup(v, strcspn(v, "\n"));
		}
	}
	return NULL;
}

static char *read_text(const char *path, size_t *lenp)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t n;

		if (len + 4096 + 1 > cap) {
			char *p = realloc(buf, cap = cap ? cap * 2 : 8192);

			if (!p)
				break;
			buf = p;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (buf)
		buf[len] = '\0';
	if (lenp)
		*lenp = len;
	return buf;
}

/* True while pid exists and is not a zombie. */
static bool alive(pid_t pid)
{
	char path[64], *stat, *rp;
	bool live;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	stat = read_text(path, NULL);
	if (!stat)
		return false;
	rp = strrchr(stat, ')');
	live = rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
	free(stat);
	return live;
}

/* True when something answers HTTP on 127.0.0.1:port. */
static bool http_answers(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	static const char req[] = "GET / HTTP/1.0\r\n\r\n";
	char buf[16] = "";
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = false;

	if (fd < 0)
		return false;
	set_timeout(fd, 2);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    send_all(fd, req, sizeof(req) - 1) == 0 && recv(fd, buf, sizeof(buf) - 1, 0) > 5)
		ok = strncmp(buf, "HTTP/", 5) == 0;
	close(fd);
	return ok;
}

struct putter {
	struct store *st;
	const char *key;
	int fd;
	uint64_t size;
	int ret;
	atomic_bool done;
	double finished;
};

static void *putter_run(void *arg)
{
	struct putter *p = arg;

	p->ret = store_put_fd(p->st, p->key, p->fd, p->size, NULL);
	p->finished = now();
	atomic_store(&p->done, true);
	return NULL;
}

/* The case proper, on the private RGW whose files are in dir. */
static void restart_case(const char *dir, const char *env)
{
	const uint64_t size = 64 * MIB + 4321, nparts = (size + 5 * MIB - 1) / (5 * MIB);
	char *endpoint = env_value(env, "DV_TEST_S3_ENDPOINT");
	char *access = env_value(env, "DV_TEST_S3_ACCESS_KEY");
	char *secret = env_value(env, "DV_TEST_S3_SECRET_KEY");
	char *region = env_value(env, "DV_TEST_S3_REGION");
	char path[512], conf[512], bucket[64], key[256], pfx[256], *pidtext = NULL, *cmdline = NULL;
	char *argv[32], exe[512];
	ssize_t exelen;
	size_t cmdlen = 0;
	int argc = 0, port = 0, uploads = -1;
	struct dv_config cfg;
	struct store *st = NULL;
	struct putter p = {0};
	pthread_t tid;
	bool started = false;
	pid_t rgw = 0, child;
	double t0, t_kill = 0, t_back = 0, deadline;
	uint64_t at_kill = 0, osize = 0;
	int src = tmp_random(size, 41), dst = tmp_random(0, 0), status;

	CHECK(endpoint && access && secret && src >= 0 && dst >= 0);
	if (!endpoint || !access || !secret || src < 0 || dst < 0)
		goto out;
	sscanf(endpoint, "http://127.0.0.1:%d", &port);
	CHECK(port > 0);

	/* radosgw's pid and command line, read before it is killed. */
	snprintf(path, sizeof(path), "%s/run/client.rgw.a.pid", dir);
	pidtext = read_text(path, NULL);
	rgw = pidtext ? (pid_t)atoi(pidtext) : 0;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)rgw);
	exelen = rgw > 0 ? readlink(path, exe, sizeof(exe) - 1) : -1;
	exe[exelen > 0 ? exelen : 0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)rgw);
	cmdline = rgw > 0 ? read_text(path, &cmdlen) : NULL;
	for (size_t i = 0; cmdline && i < cmdlen && argc < 31; i += strlen(cmdline + i) + 1)
		argv[argc++] = cmdline + i;
	argv[argc] = NULL;
	snprintf(conf, sizeof(conf), "%s/ceph.conf", dir);
	{
		bool has_conf = false;

		for (int i = 0; i < argc; i++)
			has_conf = has_conf || strcmp(argv[i], conf) == 0;
		CHECK(argc > 0 && strstr(exe, "radosgw") != NULL && has_conf);
		if (!(argc > 0 && strstr(exe, "radosgw") != NULL && has_conf)) {
			fprintf(stderr,
				"test_s3_faults: no radosgw of %s found (pid file %s/run/"
				"client.rgw.a.pid)\n",
				dir, dir);
			goto out;
		}
	}

	snprintf(bucket, sizeof(bucket), "dvrestart-%ld-%d", (long)time(NULL), (int)getpid());
	cfg_fill(&cfg, endpoint, bucket);
	cfg.storage.access_key = access;
	cfg.storage.secret_key = secret;
	cfg.storage.region = region;
	/*
	 * Enough retries to ride out the outage whatever the jitter draws
	 * (the waits' windows double up to 20 s), and an upload cap so that
	 * the upload surely lasts longer than the kill takes to come.
	 */
	cfg.storage.max_retries = 12;
	cfg.storage.upload_limit = 16 * MIB;
	st = open_store(&cfg);
	if (!st)
		goto out;
	CHECK_EQ(store_s3_test_bucket(st, "PUT"), 0);
	key_of(key, sizeof(key), "restart/64MiB");

	p = (struct putter){.st = st, .key = key, .fd = src, .size = size};
	atomic_init(&p.done, false);
	t0 = now();
	if (pthread_create(&tid, NULL, putter_run, &p) != 0) {
		CHECK(0);
		goto out;
	}
	started = true;
	/* Kill once the create and some parts went out, a second into the upload. */
	deadline = t0 + 60;
	while ((store_s3_test_requests(st) < 4 || now() - t0 < 1.0) && now() < deadline &&
	       !atomic_load(&p.done))
		sleep_s(0.01);
	CHECK(!atomic_load(&p.done)); /* else the kill proves nothing */
	at_kill = store_s3_test_requests(st);
	t_kill = now();
	CHECK_EQ(kill(rgw, SIGKILL), 0);
	while (alive(rgw) && now() < t_kill + 30)
		sleep_s(0.01);
	CHECK(!alive(rgw));
	sleep_s(1.5); /* down for a while: connections are refused */

	/* The same command line again; radosgw daemonizes, its first process exits. */
	child = fork();
	if (child == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		close_range(3, ~0U, 0);
		execv(exe, argv); /* the binary that ran, by its path: no PATH search */
		_exit(127);
	}
	CHECK(child > 0);
	if (child > 0) {
		deadline = now() + 60;
		while (waitpid(child, &status, WNOHANG) == 0 && now() < deadline)
			sleep_s(0.05);
		CHECK(now() < deadline);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	deadline = now() + 60;
	while (!http_answers(port) && now() < deadline)
		sleep_s(0.1);
	t_back = now();
	CHECK(t_back < deadline);

	pthread_join(tid, NULL);
	started = false;
	printf("restart: radosgw killed %.2f s into the upload (%llu requests made), answering "
	       "again %.2f s later; the upload of %llu parts finished %.2f s after the restart "
	       "with %llu requests, %llu ms of backoff\n",
	       t_kill - t0, (unsigned long long)at_kill, t_back - t_kill,
	       (unsigned long long)nparts, p.finished - t_back,
	       (unsigned long long)store_s3_test_requests(st),
	       (unsigned long long)store_s3_test_backoff_ms(st));
	CHECK_EQ(p.ret, 0);
	CHECK(store_s3_test_requests(st) > nparts + 2); /* parts were retried */
	CHECK(store_s3_test_backoff_ms(st) > 0);
	CHECK_EQ(store_head(st, key, &osize), 0);
	CHECK_EQ(osize, size);
	CHECK_EQ(store_get_to_fd(st, key, 0, size, dst), 0);
	CHECK_EQ(compare_files(src, dst, size), 0);
	key_of(pfx, sizeof(pfx), "restart/");
	CHECK_EQ(store_s3_test_uploads(st, pfx, &uploads), 0);
	CHECK_EQ(uploads, 0);
	CHECK_EQ(store_del(st, key), 0);
	CHECK_EQ(store_s3_test_bucket(st, "DELETE"), 0);
out:
	if (started)
		pthread_join(tid, NULL);
	store_close(st);
	free(pidtext);
	free(cmdline);
	free(endpoint);
	free(access);
	free(secret);
	free(region);
	if (src >= 0)
		close(src);
	if (dst >= 0)
		close(dst);
}

static void test_restart(void)
{
	const char *srcdir = getenv("DV_SOURCE_DIR");
	char dir[] = "/tmp/dv-test-s3restart.XXXXXX", script[512], path[600], *env;
	int rc;

	if (!srcdir || !*srcdir) {
		fprintf(stderr,
			"test_s3_faults: DV_SOURCE_DIR is not set: the restart case starts "
			"a private RGW with $DV_SOURCE_DIR/tools/lib/rgw.sh (ctest sets it; "
			"by hand: DV_SOURCE_DIR=/path/to/docvault)\n");
		CHECK(srcdir != NULL && *srcdir);
		return;
	}
	if (!mkdtemp(dir)) {
		perror("test_s3_faults: mkdtemp");
		CHECK(0);
		return;
	}
	snprintf(script, sizeof(script), "%s/tools/lib/rgw.sh", srcdir);
	/* Still single-threaded here: the environment may change. */
	setenv("RGW_STORE_BYTES", "1073741824", 1);
	unsetenv("CEPH_ARGS");
	rc = run_quiet((char *const[]){"bash", script, "start", dir, NULL});
	CHECK_EQ(rc, 0);
	snprintf(path, sizeof(path), "%s/env", dir);
	env = rc == 0 ? read_text(path, NULL) : NULL;
	if (env)
		restart_case(dir, env);
	else
		fprintf(stderr, "test_s3_faults: cannot start a private RGW in %s with %s\n", dir,
			script);
	free(env);
	CHECK_EQ(run_quiet((char *const[]){"bash", script, "stop", dir, "--purge", NULL}), 0);
	rmdir(dir);
}

/* --- main --------------------------------------------------------------- */

static int remove_all(void *arg, const char *key, uint64_t size)
{
	(void)size;
	store_del(arg, key);
	return 0;
}

int main(void)
{
	static const char *const vars[] = {"DV_TEST_S3_ENDPOINT", "DV_TEST_S3_REGION",
					   "DV_TEST_S3_ACCESS_KEY", "DV_TEST_S3_SECRET_KEY"};
	char bucket[64];
	struct dv_config cfg;
	struct store *st;
	struct srv s;

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		if (!getenv(vars[i]) || !*getenv(vars[i])) {
			fprintf(stderr,
				"test_s3_faults: %s is not set: this test needs a real S3 server. "
				"Start one with `tools/lib/rgw.sh start DIR && set -a && . DIR/env "
				"&& set +a`, or point DV_TEST_S3_* at any S3 endpoint.\n",
				vars[i]);
			CHECK(getenv(vars[i]) != NULL && *getenv(vars[i]));
			return test_done();
		}
	}
	snprintf(run_prefix, sizeof(run_prefix), "dvfault-%ld-%d/", (long)time(NULL),
		 (int)getpid());
	snprintf(bucket, sizeof(bucket), "dvfault-%ld-%d", (long)time(NULL), (int)getpid());
	cfg_fill(&cfg, getenv("DV_TEST_S3_ENDPOINT"), bucket);
	st = open_store(&cfg);
	if (!st)
		return test_done();
	if (store_s3_test_bucket(st, "PUT") != 0) {
		fprintf(stderr, "test_s3_faults: cannot create bucket %s at %s\n", bucket,
			cfg.storage.endpoint);
		CHECK(0);
		store_close(st);
		return test_done();
	}
	if (srv_start(&s, cfg.storage.endpoint) != 0) {
		CHECK(0);
	} else {
		test_slowdown(st, &s, bucket);
		test_cut_short(st, &s, bucket);
		test_wrong_secret(&s, bucket);
		srv_stop(&s);
	}
	test_decorated(bucket);
	store_list(st, run_prefix, remove_all, st);
	CHECK_EQ(store_s3_test_bucket(st, "DELETE"), 0);
	store_close(st);

	test_restart();
	return test_done();
}
