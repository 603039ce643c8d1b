/*
 * ai.h - summaries from an OpenAI-compatible chat-completions endpoint
 * (llama.cpp server, Ollama, vLLM, a hosted API).
 *
 * Model: one blocking POST {endpoint}/chat/completions with a JSON body
 * {"model", "messages": [system prompt, the document's text], "temperature"}
 * and "Authorization: Bearer <api_key>" when a key is set, through the
 * project's HTTP client (http.h; curl stays in http.c). The answer's
 * choices[0].message.content, whitespace collapsed and cut at summary_max
 * bytes on a word boundary, is the summary. The text sent is cut at
 * max_input_chars characters.
 *
 * Errors: a transport failure, a timeout, a non-2xx status, a body that is
 * not the expected JSON or an empty answer are logged once (naming the
 * endpoint, never the key) and returned as a negative errno; the caller
 * falls back to the built-in summariser. No retries: a document is not worth
 * waiting for a sick endpoint.
 *
 * Threading: reentrant (a client per call). Ownership: *summary is
 * malloc'ed. Not: streaming answers, tool calls, retries, a model registry.
 */
#ifndef DOCVAULT_AI_H
#define DOCVAULT_AI_H

#include <stddef.h>

#define AI_RESPONSE_MAX (4u << 20) /* bytes of an answer read at most */

struct ai_opts {
	const char *endpoint;	/* base URL, e.g. http://127.0.0.1:8080/v1 */
	const char *model;	/* e.g. "gpt-4o-mini" */
	const char *api_key;	/* NULL or "" = no Authorization header */
	double timeout;		/* seconds for the whole request, > 0 */
	size_t max_input_chars; /* characters of text sent, > 0 */
	size_t summary_max;	/* bytes of the summary, > 0 */
};

/*
 * Asks the endpoint for a summary of text[0..len) (UTF-8). Returns 0 with a
 * malloc'ed, NUL-terminated, non-empty *summary (valid UTF-8, at most
 * summary_max bytes), or: -EINVAL (bad options), -ETIMEDOUT, -ECONNREFUSED
 * and the other transport errors of http.h, -EIO (HTTP 5xx), -EAGAIN (429,
 * 503), -EACCES (401, 403), -ENOENT (404), -EPROTO (another status),
 * -EBADMSG (not a chat-completions answer, or an empty one), -ENOMEM.
 */
int ai_summarize(const struct ai_opts *o, const char *text, size_t len, char **summary);

/*
 * Quotes s[0..len) as a JSON string (with the quotes) into a malloc'ed,
 * NUL-terminated buffer: escapes ", \ and control characters, replaces
 * invalid UTF-8 with U+FFFD. NULL on -ENOMEM.
 */
char *ai_json_quote(const char *s, size_t len);

/*
 * Extracts choices[0].message.content from a chat-completions answer
 * (\uXXXX escapes and surrogate pairs decoded; anything after the value is
 * ignored). Returns 0 with a malloc'ed *content, -EBADMSG or -ENOMEM.
 */
int ai_parse_content(const char *json, size_t len, char **content);

#endif
