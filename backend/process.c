/*
 * process.c - processing one document (see process.h): extraction, then
 * the summary (AI with a fallback to the built-in summariser), then tags.
 *
 * The only decisions made here: which summariser, and what counts as a bad
 * document (-EINVAL from extraction: the job fails for good) versus a
 * transient failure (any other errno: the job is retried). An AI failure
 * is never a failure of the document: ai.c logs it and the built-in summary
 * is used, with summary_source saying so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docvault/ai.h"
#include "docvault/config.h"
#include "docvault/extract.h"
#include "docvault/process.h"
#include "docvault/summarize.h"

_Static_assert(sizeof(((struct process_result *)0)->mime) == EXTRACT_MIME_SIZE, "mime sizes");
_Static_assert(sizeof(((struct process_result *)0)->error) == EXTRACT_ERROR_SIZE, "error sizes");

void process_opts_from_config(const struct dv_config *cfg, struct process_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->openai = cfg->processing.summarizer_openai;
	o->endpoint = cfg->processing.endpoint;
	o->model = cfg->processing.model;
	o->api_key = cfg->processing.api_key;
	o->timeout = cfg->processing.timeout;
	o->max_input_chars = (size_t)cfg->processing.max_input_chars;
	o->summary_max = (size_t)cfg->processing.summary_max;
	o->cpu_limit = cfg->processing.cpu_limit;
	o->mem_limit = cfg->processing.mem_limit;
	o->wall_limit = cfg->processing.wall_limit;
	o->text_max = (size_t)cfg->processing.text_max;
}

void process_result_free(struct process_result *r)
{
	if (!r)
		return;
	free(r->text);
	free(r->summary);
	summarize_tags_free(r->autotags, r->nautotags);
	memset(r, 0, sizeof(*r));
}

/* The summary: the AI's when configured and it answers, else the built-in one. */
static int summarise(const struct process_opts *o, struct process_result *out)
{
	int ret;

	if (o->openai && o->endpoint && *o->endpoint) {
		struct ai_opts ao = {
		    .endpoint = o->endpoint,
		    .model = o->model ? o->model : "gpt-4o-mini",
		    .api_key = o->api_key,
		    .timeout = o->timeout > 0 ? o->timeout : 30,
		    .max_input_chars = o->max_input_chars ? o->max_input_chars : 12000,
		    .summary_max = o->summary_max,
		};

		ret = ai_summarize(&ao, out->text, out->text_len, &out->summary);
		if (ret == 0) {
			snprintf(out->summary_source, sizeof(out->summary_source), "openai");
			return 0;
		}
		if (ret == -ENOMEM)
			return ret;
		/* ai.c logged why; the built-in summary stands in */
	}
	ret = summarize_text(out->text, out->text_len, o->summary_max, &out->summary);
	if (ret)
		return ret;
	snprintf(out->summary_source, sizeof(out->summary_source), "builtin");
	return 0;
}

int process_file(const struct process_opts *o, const char *path, struct process_result *out)
{
	return process_file_on(o, NULL, path, out);
}

int process_file_on(const struct process_opts *o, struct extract_server *srv, const char *path,
		    struct process_result *out)
{
	struct extract_limits lim;
	struct extract_result ex;
	int ret;

	memset(out, 0, sizeof(*out));
	snprintf(out->mime, sizeof(out->mime), "application/octet-stream");
	snprintf(out->summary_source, sizeof(out->summary_source), "none");
	out->summary = strdup("");
	if (!out->summary)
		return -ENOMEM;
	if (!o || !path || !o->summary_max || !o->text_max)
		return -EINVAL;
	lim.cpu_limit = o->cpu_limit;
	lim.mem_limit = o->mem_limit;
	lim.wall_limit = o->wall_limit;
	lim.text_max = o->text_max;
	lim.helper = o->helper;
	ret = srv ? extract_server_file(srv, &lim, path, &ex) : extract_file(&lim, path, &ex);
	memcpy(out->mime, ex.mime, sizeof(out->mime));
	memcpy(out->error, ex.error, sizeof(out->error));
	if (ret) {
		if (ret == -EINVAL && !out->error[0])
			snprintf(out->error, sizeof(out->error), "cannot extract the document");
		extract_result_free(&ex);
		return ret;
	}
	out->text = ex.text;
	out->text_len = ex.text_len;
	out->text_truncated = ex.truncated;
	ex.text = NULL;
	extract_result_free(&ex);
	if (!out->text_len)
		return 0; /* no text: summary "", source "none", no tags */
	free(out->summary);
	out->summary = NULL;
	if ((ret = summarise(o, out)) ||
	    (ret = summarize_tags(out->text, out->text_len, SUMMARIZE_TAGS_MAX, &out->autotags,
				  &out->nautotags))) {
		if (!out->summary)
			out->summary = strdup("");
		return ret;
	}
	return 0;
}
