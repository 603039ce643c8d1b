/*
 * summarize.h - the built-in extractive summariser and keyword tagger.
 *
 * Model: the text is split into words (letters and digits, UTF-8 letters
 * included, lowercased for ASCII and Latin-1) and, line by line, into
 * blocks: headings (Markdown "# x", an underlined "x\n===", or a short
 * unpunctuated line that stands alone or sits above its paragraph), list
 * items (their markers dropped) and paragraphs; fenced code is left out.
 * Paragraphs and items are split into sentences ending in . ! ? before a
 * space (not after "Dr.", "e.g.", "U.S.", "Jan. 5" and other
 * abbreviations; "3.5" ends nothing) or at a CJK full stop. Content words
 * (3+ characters, no stop word of English, German or French, not starting
 * with a digit) are counted; a sentence scores by their relative
 * frequencies, with a boost for the opening sentences and a penalty for
 * sentences repeated page after page. The best sentences that do not
 * repeat an earlier pick (most of their content words shared), in their
 * original order, make the summary; units never run together (a bare item
 * gets a '.'), and headings make the summary only when there is nothing
 * else (a title alone). It is cut at summary_max bytes on a sentence or
 * word boundary, always valid UTF-8. Tags are the content words ranked by
 * frequency with a boost for longer words and for words seen early.
 *
 * Bounds: only the first SUMMARIZE_SCAN_MAX bytes of a text are analysed
 * (cut on a character boundary), so time and memory do not grow with the
 * document: a 50 MiB text costs what its first 2 MiB cost. Deterministic:
 * equal inputs give equal outputs, ties go to the earlier sentence/word.
 *
 * Threading: reentrant, no shared state. Ownership: results are malloc'ed;
 * free them with free() / summarize_tags_free(). Not: abstractive
 * summaries (that is ai.h), stemming, language detection.
 */
#ifndef DOCVAULT_SUMMARIZE_H
#define DOCVAULT_SUMMARIZE_H

#include <stdbool.h>
#include <stddef.h>

#define SUMMARIZE_SCAN_MAX ((size_t)2 << 20) /* bytes of text analysed */
#define SUMMARIZE_TAGS_MAX 10
#define SUMMARIZE_TAG_LEN  32 /* bytes of one tag at most; longer words are no tags */

/*
 * Summarises text[0..len) (UTF-8; invalid bytes are tolerated) into a
 * malloc'ed, NUL-terminated string of at most summary_max bytes (>= 1);
 * "" when the text has no words. Returns 0 or -ENOMEM / -EINVAL.
 */
int summarize_text(const char *text, size_t len, size_t summary_max, char **summary);

/*
 * Picks up to max (<= SUMMARIZE_TAGS_MAX) keyword tags from text: lowercase
 * content words (no stop words, nothing that starts with a digit such as
 * "2024" or "12th"), best first. *tags is a malloc'ed array of malloc'ed
 * strings (NULL when *ntags is 0). Returns 0 or -ENOMEM / -EINVAL.
 */
int summarize_tags(const char *text, size_t len, size_t max, char ***tags, size_t *ntags);

/* Frees a tag array from summarize_tags(); accepts NULL. */
void summarize_tags_free(char **tags, size_t ntags);

/* True for a lowercase stop word (English, German, French). */
bool summarize_is_stopword(const char *word, size_t len);

/*
 * Cuts s (NUL-terminated, UTF-8) in place to at most max bytes: at the last
 * sentence end, else the last space, else a character boundary, that fits.
 */
void summarize_cut(char *s, size_t max);

#endif
