/*
 * summarize.c - the built-in extractive summariser and keyword tagger (see
 * summarize.h for the model).
 *
 * Two passes over at most SUMMARIZE_SCAN_MAX bytes: the first counts words
 * in an open-addressing hash table (keys in one string pool), the second
 * splits sentences and scores each by its content words' frequencies.
 * Memory is O(scan): the table, the pool and one record per sentence (at
 * most SUMMARIZE_SENTENCES_MAX are scored). Nothing here allocates per word.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "docvault/extract.h"
#include "docvault/summarize.h"

#define SUMMARIZE_WORD_MAX	64    /* bytes of a word kept; longer ones are no content */
#define SUMMARIZE_SENTENCES_MAX 50000 /* sentences scored */
#define SUMMARIZE_PICK_MAX	5     /* sentences in a summary at most */
#define SUMMARIZE_PICK_RATIO	0.4   /* of the best score, for the others */

/* Sorted by strcmp for bsearch: English, German and French stop words. */
static const char *const stop_words[] = {
    "a",	"aber",	     "about",	   "above",	 "after",    "again",	  "against",
    "all",	"alle",	     "allem",	   "allen",	 "aller",    "alles",	  "almost",
    "als",	"also",	     "although",   "always",	 "am",	     "among",	  "an",
    "and",	"ander",     "andere",	   "anderen",	 "another",  "any",	  "anyone",
    "anything", "are",	     "aren",	   "around",	 "as",	     "at",	  "au",
    "auch",	"auf",	     "aus",	   "aussi",	 "aux",	     "avec",	  "avoir",
    "be",	"became",    "because",	   "become",	 "been",     "before",	  "bei",
    "being",	"below",     "between",	   "bin",	 "bis",	     "bist",	  "both",
    "but",	"by",	     "can",	   "cannot",	 "ce",	     "ces",	  "cette",
    "comme",	"could",     "couldn",	   "d",		 "da",	     "damit",	  "dann",
    "dans",	"das",	     "dass",	   "de",	 "dem",	     "den",	  "denn",
    "der",	"des",	     "did",	   "didn",	 "die",	     "dies",	  "diese",
    "diesem",	"diesen",    "dieser",	   "dieses",	 "do",	     "doch",	  "does",
    "doesn",	"doing",     "don",	   "done",	 "dort",     "down",	  "du",
    "durch",	"during",    "each",	   "ein",	 "eine",     "einem",	  "einen",
    "einer",	"eines",     "either",	   "elle",	 "elles",    "else",	  "en",
    "enough",	"er",	     "es",	   "est",	 "et",	     "etc",	  "etwas",
    "euch",	"eux",	     "even",	   "ever",	 "every",    "fait",	  "few",
    "first",	"for",	     "from",	   "further",	 "für",	     "get",	  "gets",
    "got",	"hab",	     "habe",	   "haben",	 "had",	     "has",	  "hat",
    "hatte",	"have",	     "having",	   "he",	 "her",	     "here",	  "hers",
    "herself",	"him",	     "himself",	   "his",	 "how",	     "however",	  "i",
    "ich",	"if",	     "ihm",	   "ihn",	 "ihnen",    "ihr",	  "il",
    "ils",	"im",	     "in",	   "into",	 "is",	     "isn",	  "ist",
    "it",	"its",	     "itself",	   "je",	 "jede",     "jedem",	  "jeden",
    "jeder",	"jedes",     "just",	   "kann",	 "kein",     "keine",	  "la",
    "le",	"least",     "les",	   "less",	 "leur",     "leurs",	  "like",
    "ll",	"lui",	     "m",	   "made",	 "mais",     "make",	  "man",
    "many",	"may",	     "me",	   "mes",	 "mich",     "might",	  "mine",
    "mir",	"mit",	     "moi",	   "mon",	 "more",     "most",	  "much",
    "muss",	"must",	     "my",	   "myself",	 "même",     "nach",	  "ne",
    "neither",	"never",     "new",	   "nicht",	 "nichts",   "no",	  "noch",
    "nor",	"nos",	     "not",	   "notre",	 "nous",     "now",	  "nun",
    "nur",	"ob",	     "oder",	   "of",	 "off",	     "often",	  "ohne",
    "on",	"once",	     "one",	   "only",	 "or",	     "other",	  "others",
    "ou",	"our",	     "ours",	   "ourselves",	 "out",	     "over",	  "own",
    "où",	"par",	     "pas",	   "per",	 "perhaps",  "please",	  "plus",
    "pour",	"qu",	     "que",	   "qui",	 "rather",   "re",	  "really",
    "s",	"sa",	     "same",	   "sans",	 "se",	     "see",	  "seen",
    "sehr",	"sein",	     "seine",	   "ses",	 "shall",    "she",	  "should",
    "shouldn",	"sich",	     "sie",	   "since",	 "sind",     "so",	  "soll",
    "some",	"something", "son",	   "sont",	 "such",     "sur",	  "t",
    "ta",	"te",	     "tes",	   "than",	 "that",     "the",	  "their",
    "theirs",	"them",	     "themselves", "then",	 "there",    "therefore", "these",
    "they",	"thing",     "things",	   "this",	 "those",    "though",	  "three",
    "through",	"thus",	     "to",	   "toi",	 "ton",	     "too",	  "toward",
    "très",	"tu",	     "two",	   "um",	 "un",	     "und",	  "under",
    "une",	"uns",	     "unter",	   "until",	 "up",	     "upon",	  "us",
    "use",	"used",	     "uses",	   "using",	 "ve",	     "very",	  "via",
    "vom",	"von",	     "vor",	   "vos",	 "votre",    "vous",	  "war",
    "waren",	"was",	     "wasn",	   "we",	 "weil",     "well",	  "wenn",
    "werden",	"were",	     "weren",	   "what",	 "whatever", "when",	  "where",
    "whether",	"which",     "while",	   "who",	 "whom",     "whose",	  "why",
    "wie",	"will",	     "wir",	   "wird",	 "with",     "within",	  "without",
    "wo",	"won",	     "would",	   "wouldn",	 "yes",	     "yet",	  "you",
    "your",	"yours",     "yourself",   "yourselves", "zu",	     "zum",	  "zur",
    "zwar",	"zwischen",  "été",	   "être",	 "über",
};

static int stop_cmp(const void *key, const void *elem)
{
	return strcmp(key, *(const char *const *)elem);
}

bool summarize_is_stopword(const char *word, size_t len)
{
	char w[SUMMARIZE_WORD_MAX + 1];

	if (len > SUMMARIZE_WORD_MAX)
		return false;
	memcpy(w, word, len);
	w[len] = '\0';
	return bsearch(w, stop_words, sizeof(stop_words) / sizeof(stop_words[0]),
		       sizeof(stop_words[0]), stop_cmp) != NULL;
}

/* ------------------------------------------------------------------ */
/* words */

/* Code point of the valid sequence p[0..n) (n from extract_utf8_seq). */
static uint32_t utf8_cp(const unsigned char *p, size_t n)
{
	switch (n) {
	case 1:
		return p[0];
	case 2:
		return (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
	case 3:
		return (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
	default:
		return (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
		       (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
	}
}

static bool cp_is_word(uint32_t cp)
{
	if (cp < 0x80)
		return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
		       (cp >= '0' && cp <= '9');
	if (cp < 0xC0 || cp == 0xD7 || cp == 0xF7)
		return false; /* Latin-1 punctuation and symbols */
	if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) ||
	    (cp >= 0xFE30 && cp <= 0xFE4F) || cp == 0xFEFF || cp >= 0xFFF0)
		return false; /* punctuation, symbols, arrows, BOM, specials */
	if (cp >= 0x1F000)
		return false; /* emoji */
	return true;
}

struct token {
	size_t start, end;		  /* bytes of the word in the text */
	char low[SUMMARIZE_WORD_MAX + 4]; /* lowercased, NUL-terminated (if not too long) */
	size_t len;
	bool too_long;
};

/* Finds the next word at or after *pos below len. False at the end. */
static bool next_word(const char *text, size_t len, size_t *pos, struct token *t)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i = *pos;

	/* skip separators */
	while (i < len) {
		size_t n = extract_utf8_seq(p + i, len - i);

		if (n && cp_is_word(utf8_cp(p + i, n)))
			break;
		i += n ? n : 1;
	}
	if (i >= len) {
		*pos = len;
		return false;
	}
	t->start = i;
	t->len = 0;
	t->too_long = false;
	while (i < len) {
		size_t n = extract_utf8_seq(p + i, len - i);
		uint32_t cp;

		if (!n || !cp_is_word(cp = utf8_cp(p + i, n)))
			break;
		if (t->len + n > SUMMARIZE_WORD_MAX) {
			t->too_long = true;
		} else if (n == 1) {
			t->low[t->len++] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
		} else {
			memcpy(t->low + t->len, p + i, n);
			if (cp >= 0xC0 && cp <= 0xDE) /* Latin-1 capitals (0xD7 is no letter) */
				t->low[t->len + 1] = (char)(p[i + 1] + 0x20);
			t->len += n;
		}
		i += n;
	}
	t->end = i;
	t->low[t->len] = '\0';
	*pos = i;
	return true;
}

static bool all_digits(const char *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (w[i] < '0' || w[i] > '9')
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* the word table */

struct wentry {
	uint32_t off; /* into pool; UINT32_MAX = empty slot */
	uint32_t count;
	uint32_t first; /* index of the first occurrence among all words */
	uint16_t len;
	bool content; /* no stop word, no number, 3+ bytes */
};

struct analysis {
	const char *text;
	size_t len; /* the scanned part */
	struct wentry *tab;
	size_t cap, used;
	char *pool;
	size_t pool_len, pool_cap;
	uint32_t nwords;
	uint32_t max_count; /* of a content word */
};

static uint64_t hash_word(const char *w, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)w[i]) * 1099511628211ULL;
	return h;
}

static struct wentry *table_find(struct analysis *a, const char *w, size_t n)
{
	size_t i = (size_t)hash_word(w, n) & (a->cap - 1);

	for (;; i = (i + 1) & (a->cap - 1)) {
		struct wentry *e = &a->tab[i];

		if (e->off == UINT32_MAX)
			return e;
		if (e->len == n && memcmp(a->pool + e->off, w, n) == 0)
			return e;
	}
}

static int table_grow(struct analysis *a)
{
	size_t ncap = a->cap ? a->cap * 2 : 4096, ocap = a->cap;
	struct wentry *old = a->tab, *t = malloc(ncap * sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < ncap; i++)
		t[i].off = UINT32_MAX;
	a->tab = t;
	a->cap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].off != UINT32_MAX)
			*table_find(a, a->pool + old[i].off, old[i].len) = old[i];
	}
	free(old);
	return 0;
}

static int table_add(struct analysis *a, const struct token *t)
{
	struct wentry *e;

	if ((a->used + 1) * 2 > a->cap && table_grow(a))
		return -ENOMEM;
	e = table_find(a, t->low, t->len);
	if (e->off == UINT32_MAX) {
		if (a->pool_len + t->len + 1 > a->pool_cap) {
			size_t nc = a->pool_cap ? a->pool_cap * 2 : 65536;
			char *p;

			while (nc < a->pool_len + t->len + 1)
				nc *= 2;
			p = realloc(a->pool, nc);
			if (!p)
				return -ENOMEM;
			a->pool = p;
			a->pool_cap = nc;
		}
		memcpy(a->pool + a->pool_len, t->low, t->len + 1);
		e->off = (uint32_t)a->pool_len;
		e->len = (uint16_t)t->len;
		e->count = 0;
		e->first = a->nwords;
		e->content = t->len >= 3 && !all_digits(t->low, t->len) &&
			     !summarize_is_stopword(t->low, t->len);
		a->pool_len += t->len + 1;
		a->used++;
	}
	e->count++;
	if (e->content && e->count > a->max_count)
		a->max_count = e->count;
	return 0;
}

static void analysis_free(struct analysis *a)
{
	free(a->tab);
	free(a->pool);
}

/* Pass 1: counts the words of the scanned prefix. */
static int analyse(struct analysis *a, const char *text, size_t len)
{
	struct token t;
	size_t pos = 0;
	int ret;

	memset(a, 0, sizeof(*a));
	if (len > SUMMARIZE_SCAN_MAX) {
		len = SUMMARIZE_SCAN_MAX;
		while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
			len--;
	}
	a->text = text;
	a->len = len;
	if ((ret = table_grow(a)))
		return ret;
	while (next_word(text, len, &pos, &t)) {
		if (t.too_long || t.len == 0)
			continue;
		if ((ret = table_add(a, &t)))
			return ret;
		a->nwords++;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* sentences */

struct sentence {
	size_t start, end;
	double score;
	size_t index;
	size_t out_len; /* bytes once whitespace is collapsed */
};

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/*
 * End of the sentence starting at i: after . ! ? (and closing quotes or
 * brackets) followed by whitespace, unless the word before is one letter
 * (an initial, "e.g."); or at a blank line.
 */
static size_t sentence_end(const char *s, size_t len, size_t i)
{
	for (; i < len; i++) {
		char c = s[i];

		if (c == '\n') {
			size_t k = i + 1;

			while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
				k++;
			if (k < len && s[k] == '\n')
				return i;
		} else if (c == '.' || c == '!' || c == '?') {
			size_t k = i + 1;

			while (k < len && strchr("\"')]", s[k]))
				k++;
			if (k < len && !is_space((unsigned char)s[k]))
				continue;
			if (c == '.' && i >= 1 && i - 1 < len &&
			    ((s[i - 1] >= 'a' && s[i - 1] <= 'z') ||
			     (s[i - 1] >= 'A' && s[i - 1] <= 'Z')) &&
			    (i < 2 || !((s[i - 2] >= 'a' && s[i - 2] <= 'z') ||
					(s[i - 2] >= 'A' && s[i - 2] <= 'Z') ||
					(s[i - 2] >= '0' && s[i - 2] <= '9'))))
				continue; /* "e.g." and initials */
			return k;
		}
	}
	return len;
}

/* Appends s[start..end) with whitespace collapsed and invalid UTF-8 as '?'. */
static size_t sentence_copy(const char *s, size_t start, size_t end, char *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	bool sp = false;

	while (start < end && is_space(p[start]))
		start++;
	while (end > start && is_space(p[end - 1]))
		end--;
	for (size_t i = start; i < end;) {
		size_t n = extract_utf8_seq(p + i, end - i);

		if (n == 1 && is_space(p[i])) {
			sp = true;
			i++;
			continue;
		}
		if (sp) {
			if (out)
				out[o] = ' ';
			o++;
			sp = false;
		}
		if (!n || (n == 1 && p[i] < 0x20)) {
			if (out)
				out[o] = n ? ' ' : '?';
			o++;
			i++;
			continue;
		}
		if (out)
			memcpy(out + o, p + i, n);
		o += n;
		i += n;
	}
	return o;
}

static int cmp_score(const void *x, const void *y)
{
	const struct sentence *a = x, *b = y;

	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

static int cmp_index(const void *x, const void *y)
{
	const struct sentence *a = x, *b = y;

	return a->index < b->index ? -1 : a->index > b->index;
}

void summarize_cut(char *s, size_t max)
{
	size_t len = strlen(s), cut;

	if (len <= max)
		return;
	cut = max;
	while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
		cut--; /* s[cut] starts a character: s[0..cut) is whole */
	for (size_t i = cut; i > max / 2; i--) {
		if ((s[i - 1] == '.' || s[i - 1] == '!' || s[i - 1] == '?') &&
		    (i == len || s[i] == ' ')) {
			s[i] = '\0';
			return;
		}
	}
	for (size_t i = cut; i > max / 4; i--) {
		if (s[i] == ' ') {
			s[i] = '\0';
			while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == ',' || s[i - 1] == ';' ||
					 s[i - 1] == ':'))
				s[--i] = '\0';
			return;
		}
	}
	s[cut] = '\0';
}

int summarize_text(const char *text, size_t len, size_t summary_max, char **summary)
{
	struct sentence *sv = NULL;
	struct analysis a;
	size_t ns = 0, svcap = 0, pos = 0, budget, npick = 0, o = 0;
	char *out = NULL;
	double best;
	int ret;

	if (!summary || !summary_max || (!text && len))
		return -EINVAL;
	*summary = NULL;
	if ((ret = analyse(&a, text ? text : "", len)))
		goto out;
	/* pass 2: sentences and their scores */
	while (pos < a.len && ns < SUMMARIZE_SENTENCES_MAX) {
		size_t end = sentence_end(a.text, a.len, pos), wp = pos, content = 0, words = 0;
		double sum = 0;
		struct token t;

		while (wp < end && next_word(a.text, end, &wp, &t)) {
			struct wentry *e;

			words++;
			if (t.too_long)
				continue;
			e = table_find(&a, t.low, t.len);
			if (e->off != UINT32_MAX && e->content) {
				sum += (double)e->count / a.max_count;
				content++;
			}
		}
		if (words) {
			struct sentence *s;

			if (ns == svcap) {
				size_t nc = svcap ? svcap * 2 : 64;
				struct sentence *n = realloc(sv, nc * sizeof(*n));

				ret = -ENOMEM;
				if (!n)
					goto out;
				sv = n;
				svcap = nc;
			}
			s = &sv[ns];
			s->start = pos;
			s->end = end;
			s->index = ns;
			s->out_len = sentence_copy(a.text, pos, end, NULL);
			s->score = content ? sum / sqrt((double)content) : 0;
			if (content < 3)
				s->score *= 0.5; /* headings and fragments */
			if (ns == 0)
				s->score *= 1.5;
			else if (ns < 3)
				s->score *= 1.2;
			if (s->out_len > summary_max / 2)
				s->score *= 0.5; /* would crowd out the rest */
			ns++;
		}
		pos = end > pos ? end : pos + 1;
	}
	out = malloc(summary_max + SUMMARIZE_WORD_MAX + 8);
	ret = -ENOMEM;
	if (!out)
		goto out;
	out[0] = '\0';
	ret = 0;
	if (!ns)
		goto done;
	qsort(sv, ns, sizeof(*sv), cmp_score);
	budget = summary_max;
	best = sv[0].score;
	/* the best sentences that fit, at most half of them (a summary is shorter) */
	for (size_t i = 0; i < ns && npick < SUMMARIZE_PICK_MAX && npick < (ns + 1) / 2; i++) {
		size_t need = sv[i].out_len + (npick ? 1 : 0);

		if (npick && sv[i].score < best * SUMMARIZE_PICK_RATIO)
			break;
		if (need <= budget) {
			budget -= need;
			sv[npick++] = sv[i]; /* i >= npick: a slot already looked at */
		}
	}
	if (!npick) {
		/* even the best sentence is too long: cut it */
		char *big = malloc(sv[0].out_len + 1);

		ret = -ENOMEM;
		if (!big)
			goto out;
		big[sentence_copy(a.text, sv[0].start, sv[0].end, big)] = '\0';
		summarize_cut(big, summary_max);
		free(out);
		out = big;
		ret = 0;
		goto done;
	}
	qsort(sv, npick, sizeof(*sv), cmp_index);
	for (size_t i = 0; i < npick; i++) {
		if (i)
			out[o++] = ' ';
		o += sentence_copy(a.text, sv[i].start, sv[i].end, out + o);
	}
	out[o] = '\0';
done:
	*summary = out;
	out = NULL;
out:
	free(out);
	free(sv);
	analysis_free(&a);
	return ret;
}

/* ------------------------------------------------------------------ */
/* tags */

struct cand {
	const struct wentry *e;
	double score;
};

static int cmp_cand(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;

	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	return a->e->first < b->e->first ? -1 : a->e->first > b->e->first;
}

void summarize_tags_free(char **tags, size_t ntags)
{
	if (!tags)
		return;
	for (size_t i = 0; i < ntags; i++)
		free(tags[i]);
	free(tags);
}

int summarize_tags(const char *text, size_t len, size_t max, char ***tags, size_t *ntags)
{
	struct cand *cv = NULL;
	struct analysis a;
	size_t nc = 0, n = 0;
	char **tv = NULL;
	int ret;

	if (!tags || !ntags || (!text && len))
		return -EINVAL;
	*tags = NULL;
	*ntags = 0;
	if (max > SUMMARIZE_TAGS_MAX)
		max = SUMMARIZE_TAGS_MAX;
	if ((ret = analyse(&a, text ? text : "", len)))
		goto out;
	ret = -ENOMEM;
	cv = malloc((a.used ? a.used : 1) * sizeof(*cv));
	if (!cv)
		goto out;
	for (size_t i = 0; i < a.cap; i++) {
		const struct wentry *e = &a.tab[i];
		size_t chars = 0;

		if (e->off == UINT32_MAX || !e->content || e->len > SUMMARIZE_TAG_LEN)
			continue;
		for (size_t k = 0; k < e->len; k++)
			chars += ((unsigned char)a.pool[e->off + k] & 0xC0) != 0x80;
		cv[nc].e = e;
		/* frequency, a little more for longer words and for words seen early */
		cv[nc].score = e->count * (1.0 + 0.08 * (double)(chars > 10 ? 7 : chars - 3)) *
			       (1.0 + 0.25 * (1.0 - (double)e->first / (a.nwords ? a.nwords : 1)));
		nc++;
	}
	qsort(cv, nc, sizeof(*cv), cmp_cand);
	if (nc > max)
		nc = max;
	ret = 0;
	if (!nc)
		goto out;
	ret = -ENOMEM;
	tv = calloc(nc, sizeof(*tv));
	if (!tv)
		goto out;
	for (n = 0; n < nc; n++) {
		tv[n] = strndup(a.pool + cv[n].e->off, cv[n].e->len);
		if (!tv[n])
			goto out;
	}
	*tags = tv;
	*ntags = n;
	tv = NULL;
	ret = 0;
out:
	summarize_tags_free(tv, n);
	free(cv);
	analysis_free(&a);
	return ret;
}
