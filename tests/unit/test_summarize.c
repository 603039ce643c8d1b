/*
 * test_summarize.c - the built-in summariser and tagger: summaries come from
 * the text, keep sentence order, respect summary_max on a sentence or word
 * boundary with valid UTF-8, and are deterministic; tags drop stop words
 * and numbers and rank the subject first; a 50 MiB text is summarised fast
 * (only the first SUMMARIZE_SCAN_MAX bytes are analysed).
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "docvault/extract.h"
#include "docvault/summarize.h"

static const char pg_text[] =
    "PostgreSQL replication keeps a standby server in sync with the primary server. "
    "Streaming replication ships the write-ahead log from the primary to every standby as "
    "it is written.\n\n"
    "A replication slot makes the primary keep the write-ahead log until each standby has "
    "received it. The weather was nice on the day we set it up, e.g. sunny and warm.\n\n"
    "Logical replication publishes changes per table, and it can replicate between major "
    "versions. Monitoring replication lag tells how far a standby is behind the primary.";

static bool valid_utf8(const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		size_t k = extract_utf8_seq((const unsigned char *)s + i, n - i);

		if (!k)
			return false;
		i += k;
	}
	return true;
}

static bool has_tag(char **tags, size_t n, const char *t)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(tags[i], t) == 0)
			return true;
	return false;
}

static void test_stopwords(void)
{
	CHECK(summarize_is_stopword("the", 3));
	CHECK(summarize_is_stopword("und", 3));
	CHECK(summarize_is_stopword("les", 3));
	CHECK(summarize_is_stopword("\xc3\xbc"
				    "ber",
				    5)); /* über */
	CHECK(!summarize_is_stopword("replication", 11));
	CHECK(!summarize_is_stopword("", 0));
}

static void test_summary(void)
{
	char *s = NULL, *s2 = NULL;

	CHECK_EQ(summarize_text(pg_text, sizeof(pg_text) - 1, 1024, &s), 0);
	CHECK(s && *s);
	CHECK(strlen(s) <= 1024);
	CHECK(strstr(s, "replication") != NULL);
	CHECK(strstr(s, "weather") == NULL); /* the off-topic sentence is left out */
	CHECK(strncmp(s, "PostgreSQL replication keeps", 28) == 0); /* the lead, in order */
	CHECK(strlen(s) < sizeof(pg_text) - 1);
	CHECK(!strchr(s, '\n'));
	CHECK_EQ(summarize_text(pg_text, sizeof(pg_text) - 1, 1024, &s2), 0);
	CHECK_STREQ(s, s2); /* deterministic */
	free(s);
	free(s2);

	/* a small budget: whole sentences that fit */
	CHECK_EQ(summarize_text(pg_text, sizeof(pg_text) - 1, 100, &s), 0);
	CHECK(strlen(s) <= 100 && strlen(s) > 20);
	CHECK(s[strlen(s) - 1] == '.');
	free(s);

	/* no sentence fits: cut on a word boundary, valid UTF-8 */
	{
		char text[600];
		size_t o = 0;

		for (int i = 0; i < 60; i++)
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s",
					      i % 2 ? "\xc3\xa9t\xc3\xa9 " : "caf\xc3\xa9 ");
		CHECK_EQ(summarize_text(text, o, 64, &s), 0);
		CHECK(strlen(s) <= 64 && strlen(s) >= 32);
		CHECK(valid_utf8(s));
		CHECK(s[strlen(s) - 1] != ' ');
		free(s);
	}

	/* invalid UTF-8 in, valid out */
	CHECK_EQ(summarize_text("Bad \xff\xfe bytes here. More text follows now.", 41, 200, &s), 0);
	CHECK(valid_utf8(s));
	free(s);

	/* nothing to say */
	CHECK_EQ(summarize_text("", 0, 100, &s), 0);
	CHECK_STREQ(s, "");
	free(s);
	CHECK_EQ(summarize_text(" ... !!! ", 9, 100, &s), 0);
	CHECK_STREQ(s, "");
	free(s);
	CHECK_EQ(summarize_text("x", 1, 0, &s), -EINVAL);
}

static void test_cut(void)
{
	char a[] = "One sentence. Two sentences here.";
	char b[] = "word another word";
	char c[] = "\xc3\xa9\xc3\xa9\xc3\xa9";

	summarize_cut(a, 20);
	CHECK_STREQ(a, "One sentence.");
	summarize_cut(b, 14);
	CHECK_STREQ(b, "word another");
	summarize_cut(c, 5);
	CHECK_STREQ(c, "\xc3\xa9\xc3\xa9");
}

static void test_tags(void)
{
	char **tags = NULL;
	size_t n = 0;

	CHECK_EQ(summarize_tags(pg_text, sizeof(pg_text) - 1, 10, &tags, &n), 0);
	CHECK(n > 3 && n <= 10);
	CHECK(n && strcmp(tags[0], "replication") == 0);
	CHECK(has_tag(tags, n, "standby"));
	CHECK(has_tag(tags, n, "primary"));
	for (size_t i = 0; i < n; i++) {
		CHECK(!summarize_is_stopword(tags[i], strlen(tags[i])));
		for (const char *p = tags[i]; *p; p++)
			CHECK(!(*p >= 'A' && *p <= 'Z'));
	}
	summarize_tags_free(tags, n);

	CHECK_EQ(summarize_tags("Der Zug und die Bahn: \xc3\x9c"
				"BERGANG \xc3\x9c"
				"bergang 2024 2024",
				40, 3, &tags, &n),
		 0);
	CHECK(n >= 1 && n <= 3);
	CHECK(n && strcmp(tags[0], "\xc3\xbc"
				   "bergang") == 0); /* lowercased Latin-1 */
	CHECK(!has_tag(tags, n, "2024"));
	CHECK(!has_tag(tags, n, "und"));
	summarize_tags_free(tags, n);

	CHECK_EQ(summarize_tags("the and of", 10, 10, &tags, &n), 0);
	CHECK_EQ(n, 0);
	CHECK(tags == NULL);
	summarize_tags_free(NULL, 0);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_big(void)
{
	static const char *const words[] = {"vault", "kernel",	"storage", "document",
					    "cache", "journal", "replica", "summary"};
	size_t len = 50u << 20, o = 0;
	char *text = malloc(len + 1), *s = NULL, **tags = NULL;
	uint32_t x = 1;
	size_t n = 0;
	double t0;

	CHECK(text != NULL);
	if (!text)
		return;
	while (o + 64 < len) {
		for (int w = 0; w < 8; w++) {
			x = x * 1103515245u + 12345u;
			o += (size_t)snprintf(text + o, len - o, "%s ", words[(x >> 16) % 8]);
		}
		text[o - 1] = '.';
		text[o++] = ' ';
	}
	text[o] = '\0';
	t0 = now();
	CHECK_EQ(summarize_text(text, o, 1024, &s), 0);
	CHECK_EQ(summarize_tags(text, o, 10, &tags, &n), 0);
	fprintf(stderr, "50 MiB: summary and tags in %.2f s\n", now() - t0);
	CHECK(now() - t0 < 5);
	CHECK(s && strlen(s) > 0 && strlen(s) <= 1024);
	CHECK_EQ(n, 8);
	free(s);
	summarize_tags_free(tags, n);
	free(text);
}

int main(void)
{
	test_stopwords();
	test_summary();
	test_cut();
	test_tags();
	test_big();
	return test_done();
}
