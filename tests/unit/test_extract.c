/*
 * test_extract.c - text extraction: the pure converters (HTML, Markdown,
 * plain text with Latin-1, office XML), the zip reader, and extract_file()
 * on every fixture in tests/fixtures/docs (made by make.py there): MIME
 * types, text from each format, no text from a binary or an empty file, a
 * corrupt PDF that fails with a reason, and a PDF bomb that hits the CPU,
 * memory and wall-clock limits and fails only its document. The same again
 * through an extraction server (extract_server_file()), which must outlive
 * bad documents, give each document its own CPU allowance on a reused
 * worker, and be restarted when it is killed between documents or during
 * one.
 * Needs DV_SOURCE_DIR (set by ctest); fails loudly without it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "docvault/extract.h"

static char fixture_dir[4096];

static const char *fixture(const char *name)
{
	static char path[4200];

	snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
	return path;
}

static bool valid_utf8(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = extract_utf8_seq((const unsigned char *)s + i, n - i);

		if (!k)
			return false;
		i += k;
	}
	return true;
}

static void test_utf8(void)
{
	CHECK_EQ(extract_utf8_seq((const unsigned char *)"a", 1), 1);
	CHECK_EQ(extract_utf8_seq((const unsigned char *)"\xc3\xa9", 2), 2);
	CHECK_EQ(extract_utf8_seq((const unsigned char *)"\xe2\x82\xac", 3), 3);
	CHECK_EQ(extract_utf8_seq((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
	CHECK_EQ(extract_utf8_seq((const unsigned char *)"\xc0\xaf", 2), 0);	 /* overlong */
	CHECK_EQ(extract_utf8_seq((const unsigned char *)"\xed\xa0\x80", 3), 0); /* surrogate */
	CHECK_EQ(extract_utf8_seq((const unsigned char *)"\xe9", 1), 0);
	CHECK_EQ(extract_utf8_seq((const unsigned char *)"\xc3\xa9", 1), 0); /* cut short */
}

static void test_plain(void)
{
	struct extract_buf b = {0};

	CHECK_EQ(extract_plain("caf\xe9 \x93q\x94\r\nnul\0x\n\xc3\xa9", 18, &b), 0);
	CHECK_STREQ(b.data, "caf\xc3\xa9 \xe2\x80\x9cq\xe2\x80\x9d\nnul x\n\xc3\xa9");
	extract_buf_free(&b);

	/* max cuts on a character boundary and says so */
	b.max = 4;
	CHECK_EQ(extract_plain("ab\xc3\xa9\xc3\xa9", 6, &b), 0);
	CHECK_STREQ(b.data, "ab\xc3\xa9");
	CHECK(b.full);
	extract_buf_free(&b);
	b.max = 3;
	CHECK_EQ(extract_plain("ab\xc3\xa9", 4, &b), 0);
	CHECK_STREQ(b.data, "ab");
	extract_buf_free(&b);
}

static void test_html(void)
{
	static const char html[] =
	    "<html><head><title>T&amp;T</title><style>p{color:red}</style>"
	    "<SCRIPT type=\"x\">if (a < b) document.write('<p>no</p>')</SCRIPT></head>"
	    "<body><h1 class=\"a>b\">Head</h1><p>One&nbsp;two &#8212; &#x1F600; &eacute;&copy; "
	    "&bogus; 5 &lt; 6 &amp 7</p><!-- hidden --><p>line<br/>break</p>"
	    "<table><tr><td>c1</td><td>c2</td></tr></table>a < b</body></html>";
	struct extract_buf b = {0};

	CHECK_EQ(extract_html(html, sizeof(html) - 1, &b), 0);
	CHECK_STREQ(b.data, "T&T\n\nHead\n\nOne two \xe2\x80\x94 \xf0\x9f\x98\x80 \xc3\xa9\xc2\xa9 "
			    "&bogus; 5 < 6 & 7\n\nline\nbreak\n\nc1 c2\n\na < b");
	extract_buf_free(&b);
}

static void test_markdown(void)
{
	static const char md[] = "# Title #\n\nSome **bold** and _em_ text, snake_case kept, "
				 "[a link](http://x/y) and ![alt text](img.png) and `code`.\n\n"
				 "- [x] done item\n1. first\n> quoted\n\n---\n\n"
				 "| a | b |\n|---|---|\n| 1 | 2 |\n\n```c\nint x;\n```\n"
				 "[ref]: http://example.org\n";
	struct extract_buf b = {0};

	CHECK(extract_looks_markdown(md, sizeof(md) - 1));
	CHECK(!extract_looks_markdown("just text\nno markup here.\n", 26));
	CHECK_EQ(extract_markdown(md, sizeof(md) - 1, &b), 0);
	CHECK_STREQ(b.data, "Title\n\nSome bold and em text, snake_case kept, a link and alt text "
			    "and code.\n\ndone item\nfirst\nquoted\n\na b\n\n1 2\n\nint x;");
	extract_buf_free(&b);
}

static void test_xml(void)
{
	static const char docx[] =
	    "<w:document><w:body><w:p><w:r><w:t>Hel</w:t></w:r><w:r><w:t>lo &amp; "
	    "bye</w:t></w:r></w:p><w:p><w:r><w:instrText>PAGE</w:instrText><w:t>A</w:t><w:tab/>"
	    "<w:t>B</w:t><w:br/><w:t>C</w:t></w:r></w:p></w:body></w:document>";
	static const char odt[] = "<office:text><text:h>H</text:h><text:p>x<text:s/>y"
				  "<text:line-break/>z</text:p></office:text>";
	struct extract_buf b = {0};

	CHECK_EQ(extract_xml(docx, sizeof(docx) - 1, true, &b), 0);
	CHECK_STREQ(b.data, "Hello & bye\n\nA B\nC");
	extract_buf_free(&b);
	CHECK_EQ(extract_xml(odt, sizeof(odt) - 1, true, &b), 0);
	CHECK_STREQ(b.data, "H\n\nx y\nz");
	extract_buf_free(&b);
	CHECK_EQ(extract_xml("<a><b>x</b><c>y</c></a>", 23, false, &b), 0);
	CHECK_STREQ(b.data, "x y");
	extract_buf_free(&b);
}

static void test_zip(void)
{
	int fd = open(fixture("doc.docx"), O_RDONLY | O_CLOEXEC);
	bool trunc;
	size_t len;
	char *data;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_EQ(extract_zip_member(fd, "word/document.xml", 1 << 20, &data, &len, &trunc), 0);
	CHECK(data && strstr(data, "<w:t xml:space=\"preserve\">Apple trees"));
	CHECK(!trunc);
	free(data);
	CHECK_EQ(extract_zip_member(fd, "word/document.xml", 100, &data, &len, &trunc), 0);
	CHECK_EQ(len, 100);
	CHECK(trunc);
	free(data);
	CHECK_EQ(extract_zip_member(fd, "word/nothere.xml", 100, &data, &len, &trunc), -ENOENT);
	CHECK(data == NULL);
	close(fd);

	fd = open(fixture("doc.odt"), O_RDONLY | O_CLOEXEC); /* a stored member */
	CHECK_EQ(extract_zip_member(fd, "mimetype", 100, &data, &len, &trunc), 0);
	CHECK_STREQ(data, "application/vnd.oasis.opendocument.text");
	free(data);
	close(fd);

	fd = open(fixture("text.txt"), O_RDONLY | O_CLOEXEC); /* not a zip */
	CHECK_EQ(extract_zip_member(fd, "content.xml", 100, &data, &len, &trunc), -EINVAL);
	close(fd);
}

static const struct extract_limits limits = {
    .cpu_limit = 30, .mem_limit = 512u << 20, .wall_limit = 60, .text_max = 4u << 20};

/* When set, documents go through this extraction server instead of a helper each. */
static struct extract_server *server;

static int run_extract(const struct extract_limits *l, const char *path, struct extract_result *r)
{
	return server ? extract_server_file(server, l, path, r) : extract_file(l, path, r);
}

/* Extracts a fixture; checks the MIME type and that the text holds every word. */
static void check_doc(const char *name, const char *mime, const char *const *words)
{
	struct extract_result r;
	int ret = run_extract(&limits, fixture(name), &r);

	CHECK_EQ(ret, 0);
	if (ret)
		fprintf(stderr, "%s: %s\n", name, r.error);
	CHECK_STREQ(r.mime, mime);
	CHECK(r.error[0] == '\0');
	CHECK(r.text != NULL);
	if (!r.text) {
		fprintf(stderr, "%s: no text\n", name);
		extract_result_free(&r);
		return;
	}
	CHECK_EQ(strlen(r.text), r.text_len);
	CHECK(valid_utf8(r.text, r.text_len));
	for (; *words; words++) {
		if (!strstr(r.text, *words)) {
			fprintf(stderr, "%s: \"%s\" not in the text:\n%s\n", name, *words, r.text);
			CHECK(0);
		}
	}
	extract_result_free(&r);
}

static void test_fixtures(void)
{
	struct extract_result r;

	check_doc("text.txt", "text/plain",
		  (const char *const[]){"Streaming replication ships", "major versions.", NULL});
	check_doc("latin1.txt", "text/plain",
		  (const char *const[]){"Caf\xc3\xa9 cr\xc3\xa8me",
					"fran\xc3\xa7"
					"aise",
					NULL});
	check_doc("doc.md", "text/markdown",
		  (const char *const[]){"Lighthouse keepers tended the lamp and the lens",
					"See the history of lighthouses for more.", NULL});
	check_doc("page.html", "text/html",
		  (const char *const[]){"Beekeeping basics", "late summer & the bees",
					"Bees \xe2\x80\x94 and their honey", NULL});
	check_doc("doc.pdf", "application/pdf",
		  (const char *const[]){"Glaciers are rivers of ice", "moraines", NULL});
	check_doc("doc.docx",
		  "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		  (const char *const[]){"Orchard care through the seasons\n\nApple trees", NULL});
	check_doc("doc.odt", "application/vnd.oasis.opendocument.text",
		  (const char *const[]){"Amateur astronomy\n\nA telescope gathers light", NULL});
	check_doc("text.txt.gz", "application/gzip",
		  (const char *const[]){"A volcano erupts when gas pressure", NULL});

	/* no text: not an error */
	CHECK_EQ(run_extract(&limits, fixture("binary.bin"), &r), 0);
	CHECK_STREQ(r.mime, "application/octet-stream");
	CHECK(r.text == NULL && r.text_len == 0 && r.error[0] == '\0');
	extract_result_free(&r);
	CHECK_EQ(run_extract(&limits, fixture("empty.txt"), &r), 0);
	CHECK(strstr(r.mime, "empty") != NULL);
	CHECK(r.text == NULL && r.error[0] == '\0');
	extract_result_free(&r);

	/* the HTML's script, style and comment are gone */
	CHECK_EQ(run_extract(&limits, fixture("page.html"), &r), 0);
	CHECK(r.text && !strstr(r.text, "SECRET") && !strchr(r.text, '{') &&
	      !strstr(r.text, "<p>"));
	extract_result_free(&r);

	/* a corrupt PDF fails its document with pdftotext's reason */
	CHECK_EQ(run_extract(&limits, fixture("corrupt.pdf"), &r), -EINVAL);
	CHECK_STREQ(r.mime, "application/pdf");
	CHECK(strstr(r.error, "pdftotext") != NULL);
	CHECK(r.text == NULL);
	fprintf(stderr, "corrupt.pdf: %s\n", r.error);
	extract_result_free(&r);

	/* a missing file is no bad document: worth a retry */
	CHECK_EQ(run_extract(&limits, fixture("no-such-file"), &r), -EIO);
	CHECK(strstr(r.error, "No such file") != NULL);
	extract_result_free(&r);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_text_max(void)
{
	struct extract_limits l = limits;
	struct extract_result r;

	l.text_max = 50;
	CHECK_EQ(run_extract(&l, fixture("latin1.txt"), &r), 0);
	CHECK(r.text_len <= 50 && r.text_len > 40);
	CHECK(valid_utf8(r.text, r.text_len));
	CHECK(!r.truncated); /* 49 bytes in UTF-8: all of it */
	extract_result_free(&r);
	l.text_max = 100;
	CHECK_EQ(run_extract(&l, fixture("doc.pdf"), &r), 0);
	CHECK(r.text_len <= 100 && r.text_len > 90);
	CHECK(strncmp(r.text, "Glaciers", 8) == 0);
	CHECK(r.truncated);
	extract_result_free(&r);
	/* cut by the converter in the helper: it says so in its header */
	CHECK_EQ(run_extract(&l, fixture("doc.docx"), &r), 0);
	CHECK(r.text_len <= 100 && r.text_len > 80);
	CHECK(r.truncated);
	extract_result_free(&r);
	CHECK_EQ(run_extract(&limits, fixture("doc.docx"), &r), 0);
	CHECK(!r.truncated);
	extract_result_free(&r);
}

static char tmp_dir[4096];

/* Writes an executable shell script; returns its path (static). */
static const char *script(const char *name, const char *body)
{
	static char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return "/nonexistent";
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	chmod(path, 0755);
	return path;
}

/* Runs "$DOCVAULT_HELPER __extract args" and returns its exit status; its stdout in out. */
static int run_helper(const char *args, char *out, size_t size)
{
	char cmd[8192];
	size_t n = 0;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' __extract %s 2>/dev/null", getenv("DOCVAULT_HELPER"),
		 args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The helper run by hand: the framed output of extract.h, and usage errors. */
static void test_helper_cli(void)
{
	char args[4400], out[4096];

	snprintf(args, sizeof(args), "--cpu 5 --mem=0 --text-max 20 -- '%s'", fixture("text.txt"));
	CHECK_EQ(run_helper(args, out, sizeof(out)), 0);
	CHECK_STREQ(out, EXTRACT_BANNER "\nmime text/plain\ntruncated\ntext\nPostgreSQL "
					"replicati");
	snprintf(args, sizeof(args), "'%s'", fixture("binary.bin"));
	CHECK_EQ(run_helper(args, out, sizeof(out)), 0);
	CHECK_STREQ(out, EXTRACT_BANNER "\nmime application/octet-stream\n");
	snprintf(args, sizeof(args), "'%s'", fixture("no-such-file"));
	CHECK_EQ(run_helper(args, out, sizeof(out)), EXTRACT_EXIT_IO);
	CHECK_STREQ(out, EXTRACT_BANNER "\n");
	/* usage errors: nothing on stdout, not even the banner */
	CHECK_EQ(run_helper("", out, sizeof(out)), EXTRACT_EXIT_USAGE);
	CHECK_STREQ(out, "");
	CHECK_EQ(run_helper("--cpu x /etc/hostname", out, sizeof(out)), EXTRACT_EXIT_USAGE);
	CHECK_EQ(run_helper("--text-max 0 /etc/hostname", out, sizeof(out)), EXTRACT_EXIT_USAGE);
	CHECK_EQ(run_helper("--mem -1 /etc/hostname", out, sizeof(out)), EXTRACT_EXIT_USAGE);
	CHECK_EQ(run_helper("--frobnicate /etc/hostname", out, sizeof(out)), EXTRACT_EXIT_USAGE);
	CHECK_EQ(run_helper("/etc/hostname /etc/hostname", out, sizeof(out)), EXTRACT_EXIT_USAGE);
	CHECK_STREQ(out, "");
}

/* Extracts text.txt with the helper h; returns extract_file()'s result. */
static int with_helper(const char *h, struct extract_limits l, struct extract_result *r)
{
	l.helper = h;
	return extract_file(&l, fixture("text.txt"), r);
}

/* How a helper ends, and what becomes of it: stand-ins written as scripts. */
static void test_helper_status(void)
{
	struct extract_limits l = limits;
	struct extract_result r;
	const char *h;
	double t0;

#define BANNER "echo '" EXTRACT_BANNER "'; echo 'mime text/x-test'; "
	/* the header: unknown lines ignored; the helper's environment is scrubbed */
	setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak", 1);
	h = script("env.sh", BANNER "echo 'future-line 1'; echo text; env; echo \"args: $*\"; "
				    "read x && echo stdin-not-empty; exit 0");
	CHECK_EQ(with_helper(h, l, &r), 0);
	CHECK_STREQ(r.mime, "text/x-test");
	CHECK(r.text && strstr(r.text, "PATH=/usr/bin:/bin\n") != NULL);
	CHECK(r.text && !strstr(r.text, "do-not-leak") && !strstr(r.text, "future-line"));
	CHECK(r.text && !strstr(r.text, "stdin-not-empty"));
	CHECK(r.text && strstr(r.text, "args: __extract --cpu 30 --mem 536870912 --fsize 0 "
				       "--text-max 4194304 -- /") != NULL);
	CHECK(!r.truncated);
	extract_result_free(&r);
	unsetenv("AWS_SECRET_ACCESS_KEY");

	h = script("bad.sh", BANNER "echo 'corrupt, encrypted or zip64 archive' >&2; exit 65");
	CHECK_EQ(with_helper(h, l, &r), -EINVAL);
	CHECK_STREQ(r.mime, "text/x-test");
	CHECK_STREQ(r.error, "corrupt, encrypted or zip64 archive");
	extract_result_free(&r);

	h = script("nomem.sh", BANNER "echo 'out of memory' >&2; exit 71");
	CHECK_EQ(with_helper(h, l, &r), -EINVAL); /* a memory limit was set: the document's */
	CHECK(strstr(r.error, "memory limit") != NULL);
	extract_result_free(&r);
	l.mem_limit = 0;
	CHECK_EQ(with_helper(h, l, &r), -ENOMEM); /* none: the machine's, worth a retry */
	extract_result_free(&r);
	l = limits;

	h = script("io.sh", BANNER "echo 'read: Input/output error' >&2; exit 74");
	CHECK_EQ(with_helper(h, l, &r), -EIO);
	CHECK_STREQ(r.error, "cannot read the document: read: Input/output error");
	extract_result_free(&r);

	h = script("setup.sh", "echo '" EXTRACT_BANNER "'; echo 'setrlimit: nope' >&2; exit 69");
	CHECK_EQ(with_helper(h, l, &r), -EIO);
	CHECK(strstr(r.error, "setrlimit: nope") != NULL);
	extract_result_free(&r);

	h = script("notool.sh", BANNER "echo 'pdftotext not found' >&2; exit 127");
	CHECK_EQ(with_helper(h, l, &r), -ENOENT);
	CHECK_STREQ(r.error, "pdftotext not found");
	extract_result_free(&r);

	h = script("xcpu.sh", BANNER "kill -XCPU $$");
	CHECK_EQ(with_helper(h, l, &r), -EINVAL);
	CHECK(strstr(r.error, "CPU limit") != NULL);
	extract_result_free(&r);

	h = script("segv.sh", BANNER "kill -SEGV $$");
	CHECK_EQ(with_helper(h, l, &r), -EINVAL);
	CHECK(strstr(r.error, "SIGSEGV, likely at the memory limit") != NULL);
	extract_result_free(&r);

	/* stuck after the banner: the document's fault; before it: the helper's */
	l.wall_limit = 0.3;
	t0 = now();
	h = script("stuck.sh", BANNER "exec sleep 30");
	CHECK_EQ(with_helper(h, l, &r), -EINVAL);
	CHECK(strstr(r.error, "wall-clock limit") != NULL);
	CHECK(now() - t0 < 3);
	extract_result_free(&r);
	h = script("slow.sh", "exec sleep 30");
	CHECK_EQ(with_helper(h, l, &r), -ENOENT);
	CHECK(strstr(r.error, "did not start") != NULL);
	extract_result_free(&r);
	l = limits;

	/* more text than text_max: read no further, kill the helper */
	l.text_max = 1000;
	t0 = now();
	h = script("flood.sh", BANNER "echo text; exec cat /dev/zero");
	CHECK_EQ(with_helper(h, l, &r), 0);
	CHECK_EQ(r.text_len, 1000);
	CHECK(r.truncated);
	CHECK(now() - t0 < 3);
	extract_result_free(&r);
	h = script("header.sh", "echo '" EXTRACT_BANNER "'; exec cat /dev/zero");
	CHECK_EQ(with_helper(h, l, &r), -EIO); /* a header without end */
	CHECK(strstr(r.error, "header") != NULL);
	extract_result_free(&r);
	l = limits;
#undef BANNER

	/* not a docvault helper: a setup problem (-ENOENT, retried), never the document's */
	CHECK_EQ(with_helper("/bin/true", l, &r), -ENOENT);
	CHECK(strstr(r.error, "/bin/true is not a docvault extraction helper (exit 0)") != NULL);
	extract_result_free(&r);
	CHECK_EQ(with_helper("/bin/echo", l, &r), -ENOENT); /* a first line that is no banner */
	CHECK(strstr(r.error, "/bin/echo is not a docvault extraction helper (its first line "
			      "is no banner)") != NULL);
	extract_result_free(&r);
	h = script("old.sh", "echo 'docvault: no such subcommand \"__extract\"' >&2; exit 2");
	CHECK_EQ(with_helper(h, l, &r), -ENOENT);
	CHECK(strstr(r.error, "(exit 2): docvault: no such subcommand") != NULL);
	fprintf(stderr, "an older docvault: %s\n", r.error);
	extract_result_free(&r);
	CHECK_EQ(with_helper("/nonexistent/docvault", l, &r), -ENOENT);
	CHECK_STREQ(r.error, "cannot run the text extraction helper /nonexistent/docvault: No "
			     "such file or directory");
	extract_result_free(&r);
}

/* Without lim->helper: $DOCVAULT_HELPER, else docvault next to this program. */
static void test_helper_lookup(void)
{
	char *env = strdup(getenv(EXTRACT_HELPER_ENV));
	char exe[PATH_MAX], want[PATH_MAX + 32];
	struct extract_result r;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	CHECK(n > 0 && env != NULL);
	if (n <= 0 || !env)
		return;
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(want, sizeof(want), "no executable %s/docvault", exe);
	CHECK_EQ(access(want + strlen("no executable "), F_OK), -1); /* tests/ has none */

	unsetenv(EXTRACT_HELPER_ENV);
	CHECK_EQ(extract_file(&limits, fixture("text.txt"), &r), -ENOENT);
	CHECK(strstr(r.error, EXTRACT_HELPER_ENV " unset") != NULL);
	CHECK(strstr(r.error, want) != NULL);
	fprintf(stderr, "no helper: %s\n", r.error);
	extract_result_free(&r);

	setenv(EXTRACT_HELPER_ENV, "/bin/true", 1);
	CHECK_EQ(extract_file(&limits, fixture("text.txt"), &r), -ENOENT);
	CHECK(strstr(r.error, "/bin/true") != NULL);
	extract_result_free(&r);

	setenv(EXTRACT_HELPER_ENV, env, 1);
	CHECK_EQ(extract_file(&limits, fixture("text.txt"), &r), 0);
	extract_result_free(&r);
	free(env);
}

/* bomb.pdf makes pdftotext run for seconds and grow past a gigabyte. */
static void test_bomb(void)
{
	struct extract_limits l = limits;
	struct extract_result r;
	double t0;

	l.cpu_limit = 1;
	l.mem_limit = 0;
	t0 = now();
	CHECK_EQ(run_extract(&l, fixture("bomb.pdf"), &r), -EINVAL);
	CHECK(strstr(r.error, "CPU limit") != NULL);
	CHECK(now() - t0 < 10);
	fprintf(stderr, "bomb.pdf, cpu: %s\n", r.error);
	extract_result_free(&r);

	l = limits;
	l.mem_limit = 128u << 20;
	CHECK_EQ(run_extract(&l, fixture("bomb.pdf"), &r), -EINVAL);
	CHECK(r.error[0] != '\0');
	fprintf(stderr, "bomb.pdf, memory: %s\n", r.error);
	extract_result_free(&r);

	l = limits;
	l.mem_limit = 0;
	l.cpu_limit = 0;
	l.wall_limit = 0.5;
	t0 = now();
	CHECK_EQ(run_extract(&l, fixture("bomb.pdf"), &r), -EINVAL);
	CHECK(strstr(r.error, "wall-clock limit") != NULL);
	CHECK(now() - t0 < 3);
	extract_result_free(&r);

	/* the caller is fine afterwards */
	check_doc("doc.pdf", "application/pdf", (const char *const[]){"Glaciers", NULL});
}

/* Is the process pid still there (not even a zombie of ours)? */
static bool alive(pid_t pid)
{
	return pid > 0 && kill(pid, 0) == 0;
}

/* The first child of process parent (the server's worker), or 0. */
static pid_t worker_of(pid_t parent)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;

	while (d && !found && (de = readdir(d))) {
		char path[300], buf[1024];
		int ppid = 0;
		FILE *f;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) && strrchr(buf, ')') &&
		    sscanf(strrchr(buf, ')') + 2, "%*c %d", &ppid) == 1 && ppid == parent)
			found = atoi(de->d_name);
		fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

/* CPU seconds process pid used (user + system), or -1. */
static double cpu_of(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long ut = 0, st = 0;
	double ret = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	/* after "pid (comm) ": state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime */
	if (fgets(buf, sizeof(buf), f) && strrchr(buf, ')') &&
	    sscanf(strrchr(buf, ')') + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
		   &ut, &st) == 2)
		ret = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	fclose(f);
	return ret;
}

/*
 * The extraction server: every fixture as with a helper each; one server
 * for all of them, whatever the documents did (a corrupt PDF, a missing
 * file, limits); a server killed between documents or during one is
 * restarted; freeing it ends it.
 */
static void test_server(void)
{
	struct extract_limits l = limits;
	struct extract_result r;
	pid_t pid, pid2, killer;
	double t0;

	CHECK_EQ(extract_server_new(&server), 0);
	if (!server)
		return;
	CHECK_EQ(extract_server_pid(server), 0); /* started on first use */
	test_fixtures();
	test_text_max();
	pid = extract_server_pid(server);
	CHECK(alive(pid));
	CHECK_EQ(extract_server_starts(server), 1);

	/* many documents, one server: the worker is reused, results do not leak across */
	for (int i = 0; i < 50; i++) {
		CHECK_EQ(run_extract(&limits, fixture(i % 2 ? "page.html" : "latin1.txt"), &r), 0);
		CHECK_STREQ(r.mime, i % 2 ? "text/html" : "text/plain");
		CHECK(r.text && (i % 2 ? strstr(r.text, "Beekeeping") : strstr(r.text, "Caf")));
		extract_result_free(&r);
	}
	CHECK_EQ(extract_server_pid(server), pid);

	/*
	 * the CPU limit is each document's: a reused worker's earlier documents do
	 * not count (documents under a 1 s limit each until the worker used 1.5 s)
	 */
	{
		pid_t w = worker_of(pid), w2;
		double cpu = 0;
		int n = 0;

		CHECK(w > 0);
		l.cpu_limit = 1;
		t0 = now();
		while (w > 0 && (cpu = cpu_of(w)) < 1.5 && now() - t0 < 60) {
			for (int i = 0; i < 20; i++, n++) {
				CHECK_EQ(run_extract(&l, fixture("page.html"), &r), 0);
				CHECK(r.text && strstr(r.text, "Beekeeping"));
				extract_result_free(&r);
			}
		}
		w2 = worker_of(pid);
		fprintf(stderr, "%d documents under a 1 s CPU limit each: the worker used %.2f s\n",
			n, cpu);
		CHECK(cpu >= 1.5);
		CHECK_EQ(w2, w); /* one worker did them all */
		l = limits;
	}
	CHECK_EQ(extract_server_pid(server), pid);

	/* limits: each fails its document only, the server stays */
	test_bomb();
	CHECK_EQ(extract_server_pid(server), pid);
	CHECK_EQ(extract_server_starts(server), 1);

	/* the server dies between documents: the next document restarts it */
	kill(pid, SIGKILL);
	usleep(100000);
	check_doc("text.txt", "text/plain", (const char *const[]){"major versions.", NULL});
	pid2 = extract_server_pid(server);
	CHECK(pid2 != pid && alive(pid2));
	CHECK_EQ(extract_server_starts(server), 2);

	/* ... or during one: restarted, and the document tried once more (here: the CPU limit) */
	fflush(NULL);
	killer = fork();
	if (killer == 0) {
		usleep(300000);
		kill(pid2, SIGKILL);
		_exit(0);
	}
	l.cpu_limit = 2;
	l.mem_limit = 0;
	t0 = now();
	CHECK_EQ(run_extract(&l, fixture("bomb.pdf"), &r), -EINVAL);
	CHECK(strstr(r.error, "CPU limit") != NULL);
	CHECK(now() - t0 < 20);
	fprintf(stderr, "server killed during bomb.pdf: %s (%.1f s)\n", r.error, now() - t0);
	extract_result_free(&r);
	waitpid(killer, NULL, 0);
	CHECK_EQ(extract_server_starts(server), 3);
	check_doc("doc.pdf", "application/pdf", (const char *const[]){"Glaciers", NULL});

	/* a helper that does not serve: a setup problem, never the document's */
	l = limits;
	l.helper = "/bin/true";
	CHECK_EQ(run_extract(&l, fixture("text.txt"), &r), -ENOENT);
	CHECK(strstr(r.error, "is not a docvault extraction server") != NULL);
	extract_result_free(&r);
	CHECK_EQ(extract_server_pid(server), 0);
	l.helper = "/nonexistent/docvault";
	CHECK_EQ(run_extract(&l, fixture("text.txt"), &r), -ENOENT);
	extract_result_free(&r);
	check_doc("text.txt", "text/plain", (const char *const[]){"major versions.", NULL});

	/* freeing ends the server and its worker */
	pid = extract_server_pid(server);
	extract_server_free(server);
	server = NULL;
	CHECK(!alive(pid));
}

int main(void)
{
	const char *src = getenv("DV_SOURCE_DIR");

	if (!src || !*src) {
		fprintf(stderr, "test_extract: DV_SOURCE_DIR is not set (run under ctest)\n");
		return 1;
	}
	snprintf(fixture_dir, sizeof(fixture_dir), "%s/tests/fixtures/docs", src);
	if (access(fixture("text.txt"), R_OK) != 0) {
		fprintf(stderr, "test_extract: no fixtures in %s\n", fixture_dir);
		return 1;
	}
	if (!getenv(EXTRACT_HELPER_ENV) || access(getenv(EXTRACT_HELPER_ENV), X_OK) != 0) {
		fprintf(stderr,
			"test_extract: " EXTRACT_HELPER_ENV " must name the docvault binary (run "
			"under ctest)\n");
		return 1;
	}
	snprintf(tmp_dir, sizeof(tmp_dir), "%s/test_extract.XXXXXX",
		 getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmp_dir)) {
		fprintf(stderr, "test_extract: mkdtemp %s: %s\n", tmp_dir, strerror(errno));
		return 1;
	}
	test_utf8();
	test_plain();
	test_html();
	test_markdown();
	test_xml();
	test_zip();
	test_fixtures();
	test_text_max();
	test_helper_cli();
	test_helper_status();
	test_helper_lookup();
	test_bomb();
	test_server();
	{
		char cmd[4200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
		CHECK_EQ(system(cmd), 0);
	}
	return test_done();
}
