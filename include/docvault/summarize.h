/*
 * summarize.h - the built-in extractive summariser and keyword tagger.
 *
 * Model: the text is split into words (letters and digits, UTF-8 letters
 * included, lowercased for ASCII and Latin-1) and sentences (ending in
 * . ! ? followed by a space, or at a blank line). Words that are not stop
 * words (English, German, French) are counted; a sentence scores the mean
 * relative frequency of its content words, with a boost for the opening
 * sentences. The best sentences, in their original order, make the summary,
 * cut at summary_max bytes on a sentence or word boundary, always valid
 * UTF-8. Tags are the content words ranked by frequency with a boost for
 * longer words and for words seen early.
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
 * words without stop words or pure numbers, best first. *tags is a
 * malloc'ed array of malloc'ed strings (NULL when *ntags is 0). Returns 0 or
 * -ENOMEM / -EINVAL.
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
