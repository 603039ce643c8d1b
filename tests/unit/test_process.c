/*
 * test_process.c - process_file() on every fixture with the built-in
 * summariser: MIME type, a summary and tags that come from each document's
 * text (and no markup), "none" and no tags for a binary or an empty file, a
 * corrupt PDF and a PDF bomb that fail with a reason (-EINVAL), a missing
 * file and a missing helper program that are worth a retry, and a 50 MiB
 * text (made in $TMPDIR) that is processed with bounded text in a few
 * seconds. Needs DV_SOURCE_DIR and DOCVAULT_HELPER (set by ctest); fails
 * loudly without them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "docvault/config.h"
#include "docvault/process.h"

static char fixture_dir[4096];

static const char *fixture(const char *name)
{
	static char path[4200];

	snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
	return path;
}

static bool has_tag(const struct process_result *r, const char *t)
{
	for (size_t i = 0; i < r->nautotags; i++)
		if (strcmp(r->autotags[i], t) == 0)
			return true;
	return false;
}

static struct process_opts opts;

/* Processes a fixture; its summary must hold word and its tags tag. */
static void check_doc(const char *name, const char *mime, const char *word, const char *tag)
{
	struct process_result r;
	int ret = process_file(&opts, fixture(name), &r);

	CHECK_EQ(ret, 0);
	CHECK_STREQ(r.mime, mime);
	CHECK_STREQ(r.error, "");
	CHECK_STREQ(r.summary_source, "builtin");
	CHECK(r.text && r.text_len > 0);
	CHECK(r.summary && strlen(r.summary) > 0 && strlen(r.summary) <= opts.summary_max);
	CHECK(r.nautotags > 0 && r.nautotags <= 10);
	if (!r.summary || !strstr(r.summary, word)) {
		fprintf(stderr, "%s: \"%s\" not in the summary: %s\n", name, word, r.summary);
		CHECK(0);
	}
	if (!has_tag(&r, tag)) {
		fprintf(stderr, "%s: no tag \"%s\" in:", name, tag);
		for (size_t i = 0; i < r.nautotags; i++)
			fprintf(stderr, " %s", r.autotags[i]);
		fprintf(stderr, "\n");
		CHECK(0);
	}
	process_result_free(&r);
}

static void test_documents(void)
{
	struct process_result r;

	check_doc("text.txt", "text/plain", "replication", "replication");
	check_doc("doc.md", "text/markdown", "Lighthouse keepers", "lighthouse");
	check_doc("page.html", "text/html", "hive", "hive");
	check_doc("doc.pdf", "application/pdf", "glacier", "glacier");
	check_doc("doc.docx",
		  "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		  "orchard", "orchard");
	check_doc("doc.odt", "application/vnd.oasis.opendocument.text", "telescope", "telescope");
	check_doc("text.txt.gz", "application/gzip", "volcano", "magma");

	/* HTML: the summary is text, not markup */
	CHECK_EQ(process_file(&opts, fixture("page.html"), &r), 0);
	CHECK(r.summary && !strstr(r.summary, "<p") && !strstr(r.summary, "</") &&
	      !strstr(r.summary, "<h1") && !strstr(r.summary, "SECRET") &&
	      !strstr(r.summary, "&amp;") && !strstr(r.summary, "&#"));
	CHECK(strstr(r.summary, "honey") || strstr(r.summary, "queen"));
	CHECK(has_tag(&r, "honey") && has_tag(&r, "bees"));
	process_result_free(&r);

	/* no text: completed, nothing to say */
	CHECK_EQ(process_file(&opts, fixture("binary.bin"), &r), 0);
	CHECK_STREQ(r.mime, "application/octet-stream");
	CHECK_STREQ(r.summary, "");
	CHECK_STREQ(r.summary_source, "none");
	CHECK_EQ(r.nautotags, 0);
	CHECK(r.text == NULL);
	process_result_free(&r);
	CHECK_EQ(process_file(&opts, fixture("empty.txt"), &r), 0);
	CHECK(strstr(r.mime, "empty") != NULL);
	CHECK_STREQ(r.summary, "");
	CHECK_STREQ(r.summary_source, "none");
	CHECK_STREQ(r.error, "");
	process_result_free(&r);

	/* bad documents: failed with a reason, not retried */
	CHECK_EQ(process_file(&opts, fixture("corrupt.pdf"), &r), -EINVAL);
	CHECK_STREQ(r.mime, "application/pdf");
	CHECK(r.error[0] != '\0');
	CHECK_STREQ(r.summary, "");
	process_result_free(&r);
	{
		struct process_opts o = opts;

		o.cpu_limit = 1;
		CHECK_EQ(process_file(&o, fixture("bomb.pdf"), &r), -EINVAL);
		CHECK(strstr(r.error, "limit") != NULL);
		process_result_free(&r);
	}

	/* a missing file: transient, worth a retry */
	CHECK_EQ(process_file(&opts, fixture("gone.txt"), &r), -EIO);
	process_result_free(&r);

	/* the helper named in the options wins; a missing one is transient too */
	{
		struct process_opts o = opts;
		char *env = strdup(getenv("DOCVAULT_HELPER"));

		o.helper = env;
		setenv("DOCVAULT_HELPER", "/bin/true", 1);
		CHECK_EQ(process_file(&o, fixture("text.txt"), &r), 0);
		CHECK_STREQ(r.mime, "text/plain");
		process_result_free(&r);
		setenv("DOCVAULT_HELPER", env, 1);
		free(env);
		o.helper = "/nonexistent/docvault";
		CHECK_EQ(process_file(&o, fixture("text.txt"), &r), -ENOENT);
		CHECK(strstr(r.error, "/nonexistent/docvault") != NULL);
		CHECK_STREQ(r.summary, "");
		process_result_free(&r);
	}

	process_result_free(NULL);
	memset(&r, 0, sizeof(r));
	process_result_free(&r);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_big(void)
{
	const char *tmp = getenv("TMPDIR");
	static const char sentence[] = "The vault keeps every document and its replication "
				       "log on the storage server for later search. ";
	char path[4096];
	struct process_result r;
	size_t total = 0;
	double t0;
	int fd, ret;

	snprintf(path, sizeof(path), "%s/test_process.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	{
		char *chunk = malloc(1 << 20);
		size_t n = 0;

		while (n + sizeof(sentence) < (1 << 20)) {
			memcpy(chunk + n, sentence, sizeof(sentence) - 1);
			n += sizeof(sentence) - 1;
		}
		for (int i = 0; i < 50; i++) {
			CHECK_EQ(write(fd, chunk, n), (ssize_t)n);
			total += n;
		}
		free(chunk);
	}
	close(fd);
	CHECK(total > 49u << 20);
	t0 = now();
	ret = process_file(&opts, path, &r);
	fprintf(stderr, "50 MiB text processed in %.2f s\n", now() - t0);
	CHECK_EQ(ret, 0);
	CHECK(now() - t0 < 10);
	CHECK_STREQ(r.mime, "text/plain");
	CHECK(r.text_len <= opts.text_max && r.text_len > opts.text_max - 200);
	CHECK(r.summary && strstr(r.summary, "vault") != NULL);
	CHECK(has_tag(&r, "replication"));
	process_result_free(&r);
	unlink(path);
}

int main(void)
{
	const char *src = getenv("DV_SOURCE_DIR");
	struct dv_config cfg;

	if (!src || !*src) {
		fprintf(stderr, "test_process: DV_SOURCE_DIR is not set (run under ctest)\n");
		return 1;
	}
	snprintf(fixture_dir, sizeof(fixture_dir), "%s/tests/fixtures/docs", src);
	if (access(fixture("text.txt"), R_OK) != 0) {
		fprintf(stderr, "test_process: no fixtures in %s\n", fixture_dir);
		return 1;
	}
	if (!getenv("DOCVAULT_HELPER")) {
		fprintf(stderr, "test_process: DOCVAULT_HELPER must name the docvault binary (run "
				"under ctest)\n");
		return 1;
	}
	/* the defaults of [processing], as a daemon would run */
	CHECK_EQ(config_defaults(&cfg), 0);
	process_opts_from_config(&cfg, &opts);
	CHECK(!opts.openai);
	CHECK_EQ(opts.summary_max, 1024);
	CHECK_EQ(opts.text_max, 4u << 20);
	CHECK_EQ(opts.mem_limit, 512u << 20);
	CHECK(opts.cpu_limit == 30 && opts.wall_limit == 60 && opts.timeout == 30);
	CHECK_STREQ(opts.model, "gpt-4o-mini");
	CHECK(opts.helper == NULL); /* extract.c looks for it */
	test_documents();
	test_big();
	config_free(&cfg);
	return test_done();
}
