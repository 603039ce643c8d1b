/*
 * test_ai.c - the OpenAI-compatible client against a small HTTP server run
 * by the test itself (a thread on 127.0.0.1, port 0): the JSON escaper and
 * reader, the request it sends (model, messages, Bearer key), and through
 * process_file() the four answers that matter: success (source "openai"),
 * an answer slower than the timeout, HTTP 500 and malformed JSON (all three
 * fall back to the built-in summary, source "builtin"). The key must never
 * reach the log. Needs DV_SOURCE_DIR (set by ctest) for the text fixture.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "docvault/ai.h"
#include "docvault/process.h"

#define TEST_KEY "sk-test-SECRET-0123456789"

enum mode { M_OK, M_SLOW, M_500, M_GARBAGE };

struct server {
	int lfd;
	int port;
	pthread_t thread;
	pthread_mutex_t lock;
	enum mode mode;		 /* protected by lock */
	char auth[256];		 /* protected by lock: the last Authorization header */
	char last_body[1 << 16]; /* protected by lock: the last request body */
	char req[1 << 20];	 /* the server thread's request buffer */
	bool stop;		 /* protected by lock */
};

static const char ok_answer[] =
    "{\"id\":\"x\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"test-model\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"tool_calls\":[],"
    "\"content\":\"  AI summary:\\n replication \\u00e9t\\u00e9 \\ud83d\\ude00 \\\"q\\\"  \"},"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"total_tokens\":9}}";

static void send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void answer(int fd, int status, const char *body)
{
	char head[256];
	int n =
	    snprintf(head, sizeof(head),
		     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n",
		     status, strlen(body));

	send_all(fd, head, (size_t)n);
	send_all(fd, body, strlen(body));
}

/*
 * Reads one request (headers, then Content-Length bytes of body) into buf.
 * The server thread never allocates (it did matter when extraction forked
 * the test process; extraction now spawns a fresh helper, see extract.h).
 */
static const char *read_request(int fd, char *buf, size_t cap, char *auth, size_t authlen)
{
	size_t len = 0, clen = 0;
	char *end = NULL;

	cap--;
	while (len < cap) {
		ssize_t r = recv(fd, buf + len, cap - len, 0);

		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = '\0';
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			char *cl = strcasestr(buf, "\r\nContent-Length:");
			char *au = strcasestr(buf, "\r\nAuthorization: ");

			clen = cl ? strtoul(cl + 17, NULL, 10) : 0;
			if (au)
				snprintf(auth, authlen, "%.*s", (int)strcspn(au + 17, "\r"),
					 au + 17);
		}
		if (end && len >= (size_t)(end - buf) + 4 + clen)
			break;
	}
	return end ? end + 4 : "";
}

static void *serve(void *arg)
{
	struct server *s = arg;

	for (;;) {
		int fd = accept(s->lfd, NULL, NULL);
		char auth[256] = "";
		const char *body;
		enum mode mode;

		pthread_mutex_lock(&s->lock);
		mode = s->mode;
		if (s->stop) {
			pthread_mutex_unlock(&s->lock);
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		pthread_mutex_unlock(&s->lock);
		if (fd < 0)
			continue;
		body = read_request(fd, s->req, sizeof(s->req), auth, sizeof(auth));
		pthread_mutex_lock(&s->lock);
		snprintf(s->auth, sizeof(s->auth), "%s", auth);
		snprintf(s->last_body, sizeof(s->last_body), "%s", body);
		pthread_mutex_unlock(&s->lock);
		switch (mode) {
		case M_OK:
			answer(fd, 200, ok_answer);
			break;
		case M_SLOW:
			sleep(3); /* the client gave up after 1 s */
			answer(fd, 200, ok_answer);
			break;
		case M_500:
			answer(fd, 500, "{\"error\":{\"message\":\"model crashed\"}}");
			break;
		case M_GARBAGE:
			answer(fd, 200, "{\"choices\":[{\"message\":{\"content\":\"unterminated");
			break;
		}
		close(fd);
	}
}

static int server_start(struct server *s)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(s->lfd, 16) < 0 || getsockname(s->lfd, (struct sockaddr *)&a, &alen) < 0)
		return -errno;
	s->port = ntohs(a.sin_port);
	return -pthread_create(&s->thread, NULL, serve, s);
}

static void server_stop(struct server *s)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				.sin_port = htons((uint16_t)s->port)};
	int fd;

	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_mutex_unlock(&s->lock);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* wake accept() */
	if (fd >= 0) {
		connect(fd, (struct sockaddr *)&a, sizeof(a));
		close(fd);
	}
	pthread_join(s->thread, NULL);
	close(s->lfd);
	pthread_mutex_destroy(&s->lock);
}

static void set_mode(struct server *s, enum mode m)
{
	pthread_mutex_lock(&s->lock);
	s->mode = m;
	pthread_mutex_unlock(&s->lock);
}

static void test_quote(void)
{
	char *q = ai_json_quote("a\"b\\c\n\t\x01 \xc3\xa9 \xff", 13);

	CHECK_STREQ(q, "\"a\\\"b\\\\c\\n\\t\\u0001 \xc3\xa9 \\ufffd\"");
	free(q);
	q = ai_json_quote("", 0);
	CHECK_STREQ(q, "\"\"");
	free(q);
}

static void test_parse(void)
{
	char *c = NULL;

	CHECK_EQ(ai_parse_content(ok_answer, strlen(ok_answer), &c), 0);
	CHECK_STREQ(c, "  AI summary:\n replication \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 \"q\"  ");
	free(c);
	/* whitespace, members in any order, nested values skipped, trailing junk ignored */
	{
		const char *j =
		    " { \"x\" : [1, -2.5e3, true, null, {\"a\":[[]]}], \"choices\" : [ "
		    "{ \"message\" : { \"content\" : \"hi\\/\\u0041\", \"role\":\"a\" } } ,"
		    " {} ] } trailing";

		CHECK_EQ(ai_parse_content(j, strlen(j), &c), 0);
		CHECK_STREQ(c, "hi/A");
		free(c);
	}
	CHECK_EQ(
	    ai_parse_content("{\"choices\":[{\"message\":{\"content\":\"\\ud83d x\"}}]}", 45, &c),
	    0);
	CHECK_STREQ(c, "\xef\xbf\xbd x"); /* a lone surrogate becomes U+FFFD */
	free(c);
	static const char *const bad[] = {"",
					  "[]",
					  "{\"choices\":[]}",
					  "{\"choices\":[{\"message\":{\"content\":null}}]}",
					  "{\"choices\":[{\"message\":{\"role\":\"a\"}}]}",
					  "{\"choices\":[{\"message\":{\"content\":\"cut",
					  "{\"choices\":[{\"message\":{\"content\":\"\\x\"}}]}",
					  "{\"choices\" [",
					  "{\"error\":{\"message\":\"no\"}}",
					  "<html>502 Bad Gateway</html>",
					  NULL};
	for (int i = 0; bad[i]; i++) {
		int r = ai_parse_content(bad[i], strlen(bad[i]), &c);

		if (r != -EBADMSG)
			fprintf(stderr, "parse of bad[%d] gave %d\n", i, r);
		CHECK_EQ(r, -EBADMSG);
		CHECK(c == NULL);
	}
	{
		/* deep nesting is refused, not a stack overflow */
		size_t n = 100000;
		char *deep = malloc(n * 2 + 32);

		strcpy(deep, "{\"a\":");
		memset(deep + 5, '[', n);
		strcpy(deep + 5 + n, "]");
		CHECK_EQ(ai_parse_content(deep, strlen(deep), &c), -EBADMSG);
		free(deep);
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_server(const char *fixture)
{
	struct process_opts o = {.openai = true,
				 .model = "test-model",
				 .api_key = TEST_KEY,
				 .timeout = 1,
				 .max_input_chars = 100,
				 .summary_max = 200,
				 .cpu_limit = 30,
				 .mem_limit = 512u << 20,
				 .wall_limit = 60,
				 .text_max = 1 << 20};
	char endpoint[64], logpath[] = "/tmp/test_ai_log.XXXXXX", logbuf[8192];
	struct process_result r;
	static struct server s;
	struct ai_opts ao;
	int logfd, saved;
	ssize_t n;
	char *sum;
	double t0;

	CHECK_EQ(server_start(&s), 0);
	usleep(100 * 1000); /* let the server thread settle in accept() before we fork */
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/v1/", s.port);
	o.endpoint = endpoint;
	/* the log goes to a file, to prove the key is not in it */
	logfd = mkstemp(logpath);
	CHECK(logfd >= 0);
	saved = dup(2);
	dup2(logfd, 2);

	set_mode(&s, M_OK);
	CHECK_EQ(process_file(&o, fixture, &r), 0);
	CHECK_STREQ(r.summary_source, "openai");
	CHECK_STREQ(r.summary, "AI summary: replication \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 \"q\"");
	CHECK(r.nautotags > 0);
	process_result_free(&r);
	pthread_mutex_lock(&s.lock);
	CHECK(strcmp(s.auth, "Bearer " TEST_KEY) ==
	      0); /* not CHECK_STREQ: it would print the key */
	CHECK(strstr(s.last_body, "\"model\":\"test-model\""));
	CHECK(strstr(s.last_body, "\"role\":\"user\",\"content\":\"PostgreSQL "
				  "replication keeps"));
	/* max_input_chars = 100: the document's end is not sent */
	CHECK(!strstr(s.last_body, "major versions"));
	pthread_mutex_unlock(&s.lock);

	/* no key, no header; ai_summarize straight */
	ao = (struct ai_opts){.endpoint = endpoint,
			      .model = "m",
			      .timeout = 5,
			      .max_input_chars = 10,
			      .summary_max = 16};
	CHECK_EQ(ai_summarize(&ao, "text", 4, &sum), 0);
	CHECK_STREQ(sum, "AI summary"); /* cut on a word boundary at 16 bytes */
	free(sum);
	pthread_mutex_lock(&s.lock);
	CHECK_STREQ(s.auth, "");
	pthread_mutex_unlock(&s.lock);

	set_mode(&s, M_500);
	CHECK_EQ(ai_summarize(&ao, "text", 4, &sum), -EIO);
	CHECK_EQ(process_file(&o, fixture, &r), 0);
	CHECK_STREQ(r.summary_source, "builtin");
	CHECK(strstr(r.summary, "replication") != NULL);
	process_result_free(&r);

	set_mode(&s, M_GARBAGE);
	CHECK_EQ(ai_summarize(&ao, "text", 4, &sum), -EBADMSG);
	CHECK_EQ(process_file(&o, fixture, &r), 0);
	CHECK_STREQ(r.summary_source, "builtin");
	CHECK(strstr(r.summary, "replication") != NULL);
	process_result_free(&r);

	set_mode(&s, M_SLOW);
	t0 = now();
	CHECK_EQ(process_file(&o, fixture, &r), 0);
	CHECK(now() - t0 < 2.5);
	CHECK_STREQ(r.summary_source, "builtin");
	CHECK(strstr(r.summary, "replication") != NULL);
	process_result_free(&r);

	/* nobody listening */
	ao.endpoint = "http://127.0.0.1:1/v1";
	CHECK_EQ(ai_summarize(&ao, "text", 4, &sum), -ECONNREFUSED);

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(logfd, logbuf, sizeof(logbuf) - 1, 0);
	close(logfd);
	unlink(logpath);
	logbuf[n > 0 ? n : 0] = '\0';
	fprintf(stderr, "log:\n%s", logbuf);
	CHECK(strstr(logbuf, "HTTP 500") != NULL);
	CHECK(strstr(logbuf, "127.0.0.1") != NULL); /* the endpoint is named */
	CHECK(strstr(logbuf, "SECRET") == NULL);    /* the key is not */
	server_stop(&s);
}

int main(void)
{
	const char *src = getenv("DV_SOURCE_DIR");
	char fixture[4096];

	if (!src || !*src) {
		fprintf(stderr, "test_ai: DV_SOURCE_DIR is not set (run under ctest)\n");
		return 1;
	}
	snprintf(fixture, sizeof(fixture), "%s/tests/fixtures/docs/text.txt", src);
	if (access(fixture, R_OK) != 0) {
		fprintf(stderr, "test_ai: missing fixture %s\n", fixture);
		return 1;
	}
	test_quote();
	test_parse();
	test_server(fixture);
	return test_done();
}
