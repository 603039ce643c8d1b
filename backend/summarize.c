/*
 * summarize.c - the built-in extractive summariser and keyword tagger (see
 * summarize.h for the model).
 *
 * Two passes over at most SUMMARIZE_SCAN_MAX bytes: the first counts words
 * in an open-addressing hash table (keys in one string pool); the second
 * cuts the text into blocks line by line (headings, list items, paragraphs,
 * rules), splits paragraphs and items into sentences and scores each by its
 * content words' frequencies. Picking is greedy by score with a redundancy
 * check: a sentence whose content words mostly repeat an already picked one
 * (Jaccard >= SUMMARIZE_REDUNDANT) is left out, and sentences that recur
 * SUMMARIZE_BOILERPLATE times or more with the same content words (page
 * headers and footers) are penalised and taken at most once.
 *
 * Memory is O(scan): the table, the pool and one record per sentence (at
 * most SUMMARIZE_SENTENCES_MAX are scored). Nothing here allocates per word.
 * Time is linear in the scanned bytes plus O(n log n) sorts over sentences.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "docvault/extract.h"
#include "docvault/summarize.h"

#define SUMMARIZE_WORD_MAX	 64    /* bytes of a word kept; longer ones are no content */
#define SUMMARIZE_SENTENCES_MAX	 50000 /* sentences scored */
#define SUMMARIZE_PICK_MAX	 5     /* sentences in a summary at most */
#define SUMMARIZE_PICK_RATIO	 0.4   /* of the best score, for the others */
#define SUMMARIZE_EXAMINE_MAX	 2000  /* candidates checked for redundancy at most */
#define SUMMARIZE_IDS_MAX	 128   /* distinct content words compared per sentence */
#define SUMMARIZE_REDUNDANT	 0.6   /* Jaccard similarity that makes a repeat */
#define SUMMARIZE_BOILERPLATE	 3     /* occurrences that make a sentence boilerplate */
#define SUMMARIZE_HEADING_MAX	 80    /* bytes of a heading at most (unmarked ones) */
#define SUMMARIZE_HEADING_WORDS	 10    /* words of a heading at most (unmarked ones) */
#define SUMMARIZE_LONG_WORDS	 25    /* content words past which length adds no score */
#define SUMMARIZE_UNDERLINED_MAX 120   /* bytes of a setext ("Title\n=====") heading */

/* Sorted by strcmp (bytes) for bsearch: English, German and French stop words. */
/* clang-format off */
static const char *const stop_words[] = {
	"a", "aber", "about", "above", "across", "actually", "after", "afterwards", "again",
	"against", "ai", "aie", "ainsi", "all", "alle", "allem", "allen", "aller", "alles",
	"almost", "along", "alors", "already", "als", "also", "although", "always", "am", "among",
	"amongst", "an", "and", "ander", "andere", "anderem", "anderen", "anderer", "anderes",
	"another", "any", "anybody", "anyhow", "anyone", "anything", "anyway", "anywhere",
	"après", "are", "aren", "around", "as", "at", "au", "auch", "aucun", "aucune", "auf",
	"aus", "aussi", "autre", "autres", "aux", "avait", "avant", "avec", "avez", "avoir",
	"avons", "away", "back", "be", "became", "because", "become", "becomes", "becoming",
	"been", "before", "beforehand", "behind", "bei", "beim", "being", "below", "bereits",
	"beside", "besides", "between", "beyond", "bien", "bin", "bis", "bist", "both", "but",
	"by", "bzw", "can", "cannot", "ce", "ceci", "cela", "celle", "celles", "celui",
	"cependant", "certains", "ces", "cet", "cette", "ceux", "chaque", "chez", "comme",
	"comment", "could", "couldn", "d", "da", "dabei", "dadurch", "dafür", "daher", "damit",
	"dann", "dans", "daran", "darauf", "darf", "darin", "darum", "das", "dass", "davon",
	"dazu", "de", "dein", "deine", "dem", "den", "denen", "denn", "depuis", "der", "deren",
	"des", "dessen", "desto", "dich", "did", "didn", "die", "dies", "diese", "diesem",
	"diesen", "dieser", "dieses", "dir", "do", "doch", "does", "doesn", "doing", "don",
	"donc", "done", "dont", "dort", "down", "du", "due", "durch", "during", "each", "eben",
	"ein", "eine", "einem", "einen", "einer", "eines", "einige", "einigen", "einiger",
	"einmal", "either", "elle", "elles", "else", "elsewhere", "en", "encore", "enough",
	"entre", "er", "es", "especially", "est", "et", "etc", "etwa", "etwas", "eu", "euch",
	"euer", "eure", "eux", "even", "ever", "every", "everyone", "everything", "everywhere",
	"except", "faire", "fait", "few", "first", "fois", "font", "for", "former", "formerly",
	"from", "further", "furthermore", "für", "gab", "gegen", "get", "gets", "getting",
	"gewesen", "gibt", "give", "given", "gives", "go", "goes", "going", "gone", "got", "hab",
	"habe", "haben", "had", "has", "hast", "hat", "hatte", "hatten", "have", "having", "he",
	"hence", "her", "here", "hereby", "herein", "hers", "herself", "hier", "him", "himself",
	"hin", "hinter", "his", "how", "however", "i", "ich", "ici", "if", "ihm", "ihn", "ihnen",
	"ihr", "ihre", "ihrem", "ihren", "ihrer", "ihres", "il", "ils", "im", "immer", "in",
	"indeed", "indem", "ins", "instead", "into", "is", "isn", "ist", "it", "its", "itself",
	"ja", "je", "jede", "jedem", "jeden", "jeder", "jedes", "jedoch", "jene", "jenem",
	"jenen", "jener", "jenes", "jetzt", "jusqu", "just", "kann", "kannst", "kein", "keine",
	"keinem", "keinen", "keiner", "können", "könnte", "la", "last", "later", "latter", "le",
	"least", "les", "less", "let", "lets", "leur", "leurs", "like", "likely", "ll", "lors",
	"lorsque", "lui", "m", "machen", "made", "mainly", "mais", "make", "makes", "man",
	"manche", "many", "may", "maybe", "me", "meanwhile", "mehr", "mein", "meine", "meinem",
	"meinen", "meiner", "mes", "mich", "might", "mine", "mir", "mit", "moi", "moins", "mon",
	"more", "moreover", "most", "mostly", "much", "muss", "musste", "must", "my", "myself",
	"même", "müssen", "nach", "nachdem", "namely", "ne", "nearly", "need", "needs", "nein",
	"neither", "never", "nevertheless", "new", "next", "ni", "nicht", "nichts", "no",
	"nobody", "noch", "none", "nor", "nos", "not", "nothing", "notre", "nous", "now",
	"nowhere", "nun", "nur", "ob", "oder", "of", "off", "often", "ohne", "ok", "okay", "on",
	"once", "one", "only", "ont", "onto", "or", "other", "others", "otherwise", "ou", "ought",
	"our", "ours", "ourselves", "out", "over", "own", "où", "par", "parce", "pas", "per",
	"perhaps", "peu", "peut", "please", "plus", "pour", "pourquoi", "puis", "qu", "quand",
	"que", "quel", "quelle", "quelles", "quels", "qui", "quite", "rather", "re", "really",
	"regarding", "s", "sa", "said", "same", "sans", "say", "says", "schon", "se", "see",
	"seem", "seemed", "seems", "seen", "sehr", "sei", "seid", "sein", "seine", "seinem",
	"seinen", "seiner", "seit", "selbst", "selon", "sera", "seront", "ses", "several",
	"shall", "she", "should", "shouldn", "si", "sich", "sie", "sien", "since", "sind", "so",
	"sogar", "soit", "solche", "soll", "sollen", "sollte", "some", "somebody", "somehow",
	"someone", "something", "sometimes", "somewhat", "somewhere", "son", "sondern", "sonst",
	"sont", "sous", "sowie", "sowohl", "still", "such", "sur", "t", "ta", "tandis", "te",
	"tes", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "thence",
	"there", "thereafter", "thereby", "therefore", "therein", "these", "they", "thing",
	"things", "this", "those", "though", "three", "through", "throughout", "thus", "to",
	"together", "toi", "ton", "too", "tous", "tout", "toute", "toutes", "toward", "towards",
	"très", "tu", "two", "um", "un", "und", "under", "une", "unless", "unlike", "uns",
	"unser", "unsere", "unter", "until", "up", "upon", "us", "use", "used", "uses", "using",
	"usually", "various", "ve", "vers", "very", "via", "viel", "viele", "vielen", "voici",
	"voilà", "vom", "von", "vor", "vos", "votre", "vous", "wann", "war", "waren", "warum",
	"was", "wasn", "we", "weil", "weiter", "weitere", "welche", "welchem", "welchen",
	"welcher", "welches", "well", "wenn", "wer", "werde", "werden", "were", "weren", "what",
	"whatever", "when", "whence", "whenever", "where", "whereas", "whereby", "wherever",
	"whether", "which", "while", "whither", "who", "whoever", "whole", "whom", "whose", "why",
	"wie", "wieder", "will", "wir", "wird", "wirst", "with", "within", "without", "wo",
	"wobei", "won", "would", "wouldn", "wurde", "wurden", "während", "würde", "yes", "yet",
	"you", "your", "yours", "yourself", "yourselves", "zu", "zum", "zur", "zwar", "zwischen",
	"étaient", "était", "étant", "été", "être", "über",
};
/* clang-format on */
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
/* characters and words */

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

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
		return is_alpha((unsigned char)cp) || is_digit((unsigned char)cp);
	if (cp < 0xC0 || cp == 0xD7 || cp == 0xF7)
		return false; /* Latin-1 punctuation and symbols */
	if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) ||
	    (cp >= 0xFE30 && cp <= 0xFE4F) || cp == 0xFEFF || cp >= 0xFFF0)
		return false; /* punctuation, symbols, arrows, BOM, specials */
	if (cp >= 0x1F000)
		return false; /* emoji */
	return true;
}

/*
 * Length of the character at p[0..n) (1 for an invalid byte) and, through
 * *word, whether it is part of a word. ASCII, nearly all of the bytes, is
 * decided here without a call.
 */
static size_t char_at(const unsigned char *p, size_t n, uint32_t *cp, bool *word)
{
	size_t k;

	if (p[0] < 0x80) {
		*cp = p[0];
		*word = is_alpha(p[0]) || is_digit(p[0]);
		return 1;
	}
	k = extract_utf8_seq(p, n);
	if (!k) {
		*cp = 0xFFFD;
		*word = false;
		return 1;
	}
	*cp = utf8_cp(p, k);
	*word = cp_is_word(*cp);
	return k;
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
	size_t i = *pos, n;
	uint32_t cp;
	bool word = false;

	/* skip separators */
	while (i < len) {
		n = char_at(p + i, len - i, &cp, &word);
		if (word)
			break;
		i += n;
	}
	if (i >= len) {
		*pos = len;
		return false;
	}
	t->start = i;
	t->len = 0;
	t->too_long = false;
	while (i < len) {
		n = char_at(p + i, len - i, &cp, &word);
		if (!word)
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

/* True when the span holds a word character. */
static bool has_word(const char *s, size_t b, size_t e)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	bool word;

	while (b < e) {
		b += char_at(p + b, e - b, &cp, &word);
		if (word)
			return true;
	}
	return false;
}

/*
 * Numbers are no keywords: "2024", "1st", "12th", "100km", "3d" all start
 * with a digit ("mp3", "x86" and "ipv6" do not).
 */
static bool is_number(const char *w, size_t n)
{
	return n > 0 && is_digit((unsigned char)w[0]);
}

/*
 * Content words have three characters or more ("là" and "où" have not);
 * in scripts of three-byte characters (CJK) one character says more.
 */
static bool is_long_enough(const char *w, size_t n)
{
	size_t chars = 0;

	if (n >= 3 && (unsigned char)w[0] >= 0xE0)
		return true;
	for (size_t i = 0; i < n && chars < 3; i++)
		chars += ((unsigned char)w[i] & 0xC0) != 0x80;
	return chars >= 3;
}

/* ------------------------------------------------------------------ */
/* the word table */

struct wentry {
	uint32_t off; /* into pool; UINT32_MAX = empty slot */
	uint32_t count;
	uint32_t first; /* index of the first occurrence among all words */
	uint16_t len;
	bool content; /* no stop word, no number, 3+ characters */
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

static int table_grow(struct analysis *a, size_t ncap)
{
	size_t ocap = a->cap;
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

	if ((a->used + 1) * 2 > a->cap && table_grow(a, a->cap * 2))
		return -ENOMEM;
	e = table_find(a, t->low, t->len);
	if (e->off == UINT32_MAX) {
		if (a->pool_len + t->len + 1 > a->pool_cap) {
			size_t nc = a->pool_cap ? a->pool_cap * 2 : 4096;
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
		e->content = is_long_enough(t->low, t->len) && !is_number(t->low, t->len) &&
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
	size_t pos = 0, cap = 256;
	int ret;

	memset(a, 0, sizeof(*a));
	if (len > SUMMARIZE_SCAN_MAX) {
		len = SUMMARIZE_SCAN_MAX;
		while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
			len--;
	}
	a->text = text;
	a->len = len;
	/* a small document gets a small table: distinct words <= len / 2 */
	while (cap < 4096 && cap < len)
		cap *= 2;
	if ((ret = table_grow(a, cap)))
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
/* sentence ends */

/*
 * Abbreviations that a '.' does not end a sentence after: always (titles),
 * before a digit ("No. 5", "Jan. 5") or before a lowercase word ("approx.
 * five", "Acme Inc. said"). Lowercase; single letters ("e.g.", "U.S.",
 * initials) are handled apart.
 */
enum abbrev_when { ABBR_ALWAYS, ABBR_DIGIT, ABBR_LOWER };

static const struct {
	const char *word;
	enum abbrev_when when;
} abbrevs[] = {
    {"al", ABBR_ALWAYS},  {"dr", ABBR_ALWAYS},	 {"hr", ABBR_ALWAYS}, {"jr", ABBR_ALWAYS},
    {"mme", ABBR_ALWAYS}, {"mlle", ABBR_ALWAYS}, {"mr", ABBR_ALWAYS}, {"mrs", ABBR_ALWAYS},
    {"ms", ABBR_ALWAYS},  {"prof", ABBR_ALWAYS}, {"sr", ABBR_ALWAYS}, {"st", ABBR_ALWAYS},
    {"vs", ABBR_ALWAYS},  {"apr", ABBR_DIGIT},	 {"art", ABBR_DIGIT}, {"aug", ABBR_DIGIT},
    {"ch", ABBR_DIGIT},	  {"dec", ABBR_DIGIT},	 {"eq", ABBR_DIGIT},  {"feb", ABBR_DIGIT},
    {"fig", ABBR_DIGIT},  {"jan", ABBR_DIGIT},	 {"jul", ABBR_DIGIT}, {"jun", ABBR_DIGIT},
    {"mar", ABBR_DIGIT},  {"no", ABBR_DIGIT},	 {"nov", ABBR_DIGIT}, {"nr", ABBR_DIGIT},
    {"oct", ABBR_DIGIT},  {"pp", ABBR_DIGIT},	 {"sec", ABBR_DIGIT}, {"sep", ABBR_DIGIT},
    {"sept", ABBR_DIGIT}, {"tab", ABBR_DIGIT},	 {"vol", ABBR_DIGIT}, {"approx", ABBR_LOWER},
    {"bzw", ABBR_LOWER},  {"ca", ABBR_LOWER},	 {"cf", ABBR_LOWER},  {"co", ABBR_LOWER},
    {"corp", ABBR_LOWER}, {"dept", ABBR_LOWER},	 {"env", ABBR_LOWER}, {"est", ABBR_LOWER},
    {"etc", ABBR_LOWER},  {"evtl", ABBR_LOWER},	 {"ggf", ABBR_LOWER}, {"inc", ABBR_LOWER},
    {"incl", ABBR_LOWER}, {"inkl", ABBR_LOWER},	 {"ltd", ABBR_LOWER}, {"max", ABBR_LOWER},
    {"min", ABBR_LOWER},  {"resp", ABBR_LOWER},	 {"usw", ABBR_LOWER}, {"vgl", ABBR_LOWER},
    {"viz", ABBR_LOWER},
};

/* German dates write the day as an ordinal: "am 5. Mai". */
static const char *const months_de[] = {
    "jan",  "januar",	 "feb",	 "februar", "m\xc3\xa4r", "m\xc3\xa4rz", "apr",	   "april",
    "mai",  "jun",	 "juni", "jul",	    "juli",	  "aug",	 "august", "sep",
    "sept", "september", "okt",	 "oktober", "nov",	  "november",	 "dez",	   "dezember",
};

/* Lowercase copy of the word in s[b..e) into w (size n); false if it does not fit. */
static bool lower_word(const char *s, size_t b, size_t e, char *w, size_t n)
{
	if (e - b >= n)
		return false;
	for (size_t i = b; i < e; i++)
		w[i - b] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
	w[e - b] = '\0';
	return true;
}

/*
 * True when the '.' at s[i] ends no sentence: a single letter before it
 * ("e.g.", "U.S.", "J. Smith"), a known abbreviation, or a German ordinal
 * day before a month. s[k] (k < len) is the first non-space after it.
 */
static bool dot_is_abbrev(const char *s, size_t len, size_t i, size_t k)
{
	unsigned char next = (unsigned char)s[k];
	size_t b = i;
	char w[16];

	while (b > 0 && is_alpha((unsigned char)s[b - 1]))
		b--;
	if (b < i) {
		if (b > 0 && (is_digit((unsigned char)s[b - 1]) || (unsigned char)s[b - 1] >= 0x80))
			return false; /* "v2.", "Straße." */
		if (i - b == 1)
			return true; /* "e.g.", initials */
		if (!lower_word(s, b, i, w, sizeof(w)))
			return false;
		for (size_t a = 0; a < sizeof(abbrevs) / sizeof(abbrevs[0]); a++) {
			if (strcmp(w, abbrevs[a].word) != 0)
				continue;
			return abbrevs[a].when == ABBR_ALWAYS ||
			       (abbrevs[a].when == ABBR_DIGIT && is_digit(next)) ||
			       (abbrevs[a].when == ABBR_LOWER && next >= 'a' && next <= 'z');
		}
		return false;
	}
	/* "5." or "12." before a German month */
	while (b > 0 && is_digit((unsigned char)s[b - 1]))
		b--;
	if (b == i || i - b > 2 || (b > 0 && !is_space((unsigned char)s[b - 1])))
		return false;
	b = k;
	while (k < len && ((unsigned char)s[k] >= 0x80 || is_alpha((unsigned char)s[k])))
		k++;
	if (!lower_word(s, b, k, w, sizeof(w)))
		return false;
	for (size_t m = 0; m < sizeof(months_de) / sizeof(months_de[0]); m++)
		if (strcmp(w, months_de[m]) == 0)
			return true;
	return false;
}

/* Length of a closing quote or bracket at p[0..n), 0 if there is none. */
static size_t closer_len(const unsigned char *p, size_t n)
{
	if (p[0] == '"' || p[0] == '\'' || p[0] == ')' || p[0] == ']')
		return 1;
	if (n >= 2 && p[0] == 0xC2 && p[1] == 0xBB)
		return 2; /* » */
	if (n >= 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0x99 || p[2] == 0x9D))
		return 3; /* ’ ” */
	if (n >= 3 && p[0] == 0xE3 && p[1] == 0x80 && (p[2] == 0x8D || p[2] == 0x8F))
		return 3; /* 」 』 */
	return 0;
}

/* Length of a CJK full stop, exclamation or question mark at p, else 0. */
static size_t cjk_stop_len(const unsigned char *p, size_t n)
{
	if (n >= 3 && p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x82)
		return 3; /* 。 */
	if (n >= 3 && p[0] == 0xEF && p[1] == 0xBC && (p[2] == 0x81 || p[2] == 0x9F))
		return 3; /* ！ ？ */
	return 0;
}

/*
 * End of the sentence starting at i within a block s[..len): after a run of
 * . ! ? (and closing quotes or brackets) followed by whitespace or the end,
 * unless it is an abbreviation's dot; or after a CJK stop. "3.5" and
 * "example.com" do not end one (no whitespace follows).
 */
static size_t sentence_end(const char *s, size_t len, size_t i)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; i < len; i++) {
		size_t k, q, c;

		if (p[i] >= 0x80 && (c = cjk_stop_len(p + i, len - i))) {
			k = i + c;
			while (k < len && (q = closer_len(p + k, len - k)))
				k += q;
			return k;
		}
		if (p[i] != '.' && p[i] != '!' && p[i] != '?')
			continue;
		k = i + 1;
		while (k < len && (p[k] == '.' || p[k] == '!' || p[k] == '?'))
			k++;
		while (k < len && (q = closer_len(p + k, len - k)))
			k += q;
		if (k < len && !is_space(p[k])) {
			i = k - 1;
			continue;
		}
		if (p[i] == '.' && k == i + 1) {
			size_t n = k;

			while (n < len && is_space(p[n]))
				n++;
			if (n < len && dot_is_abbrev(s, len, i, n))
				continue;
		}
		return k;
	}
	return len;
}

/* ------------------------------------------------------------------ */
/* lines and blocks: headings, list items, paragraphs */

enum line_kind { LINE_BLANK, LINE_RULE, LINE_FENCE, LINE_ATX, LINE_ITEM, LINE_TEXT };

struct line {
	size_t start, end; /* the content: indentation, marker, trailing blanks dropped */
	size_t next;	   /* where the next line starts */
	enum line_kind kind;
	char underline; /* LINE_RULE of only '=' or only '-': that character, else 0 */
	bool indented;
	bool numbered; /* LINE_ITEM with "1." or "1)" */
};

/* How a unit ends: with . ! ? already, with , ; : (made a '.'), or bare. */
enum term { TERM_OK, TERM_REPLACE, TERM_APPEND };

static enum term span_term(const char *s, size_t b, size_t e)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t z;

	while (e > b && is_space(p[e - 1]))
		e--;
	for (z = e; z > b;) {
		if (p[z - 1] == '"' || p[z - 1] == '\'' || p[z - 1] == ')' || p[z - 1] == ']')
			z--;
		else if (z - b >= 2 && p[z - 2] == 0xC2 && p[z - 1] == 0xBB)
			z -= 2; /* » */
		else if (z - b >= 3 && p[z - 3] == 0xE2 && p[z - 2] == 0x80 &&
			 (p[z - 1] == 0x99 || p[z - 1] == 0x9D))
			z -= 3; /* ’ ” */
		else
			break;
	}
	if (z > b && (p[z - 1] == '.' || p[z - 1] == '!' || p[z - 1] == '?'))
		return TERM_OK;
	if (z - b >= 3 && (cjk_stop_len(p + z - 3, 3) ||
			   (p[z - 3] == 0xE2 && p[z - 2] == 0x80 && p[z - 1] == 0xA6)))
		return TERM_OK; /* 。！？ … */
	if (z == e && z > b && (p[z - 1] == ',' || p[z - 1] == ';' || p[z - 1] == ':'))
		return TERM_REPLACE;
	return TERM_APPEND;
}

/* A list marker and the blanks after it at p[b..e): its length, else 0. */
static size_t item_marker(const unsigned char *p, size_t b, size_t e, bool *numbered)
{
	static const unsigned char bullets[][3] = {
	    {0xE2, 0x80, 0xA2}, /* • */
	    {0xE2, 0x80, 0xA3}, /* ‣ */
	    {0xE2, 0x80, 0x93}, /* – */
	    {0xE2, 0x97, 0xA6}, /* ◦ */
	    {0xE2, 0x97, 0x8F}, /* ● */
	    {0xE2, 0x96, 0xAA}, /* ▪ */
	    {0xE2, 0x96, 0xA0}, /* ■ */
	    {0xE2, 0x96, 0xA1}, /* □ */
	    {0xE2, 0x96, 0xBA}, /* ► */
	    {0xE2, 0x9E, 0xA2}, /* ➢ */
	    {0xE2, 0x9C, 0x93}, /* ✓ */
	};
	size_t k = b, d;

	*numbered = false;
	if (p[k] == '-' || p[k] == '*' || p[k] == '+') {
		k++;
	} else if (e - k >= 2 && p[k] == 0xC2 && p[k + 1] == 0xB7) {
		k += 2; /* · */
	} else if (p[k] >= 0x80) {
		for (size_t i = 0; i < sizeof(bullets) / sizeof(bullets[0]) && k == b; i++)
			if (e - k >= 3 && memcmp(p + k, bullets[i], 3) == 0)
				k += 3;
		if (k == b)
			return 0;
	} else {
		size_t o = k + (p[k] == '(');

		for (d = o; d < e && d - o < 3 && is_digit(p[d]); d++)
			;
		if (d == o && d < e && is_alpha(p[d]))
			d++; /* "a)" */
		if (d == o || d >= e)
			return 0;
		if (o > k ? p[d] != ')' : p[d] != ')' && !(p[d] == '.' && is_digit(p[o])))
			return 0;
		*numbered = is_digit(p[o]);
		k = d + 1;
	}
	if (k >= e || (p[k] != ' ' && p[k] != '\t'))
		return 0;
	while (k < e && (p[k] == ' ' || p[k] == '\t'))
		k++;
	if (e - k >= 4 && p[k] == '[' && (p[k + 1] == ' ' || p[k + 1] == 'x' || p[k + 1] == 'X') &&
	    p[k + 2] == ']' && p[k + 3] == ' ')
		k += 4; /* a task list's "[ ]" */
	while (k < e && (p[k] == ' ' || p[k] == '\t'))
		k++;
	return k - b;
}

static void classify_line(const char *s, size_t len, size_t pos, struct line *l)
{
	const unsigned char *p = (const unsigned char *)s;
	const char *nl = memchr(s + pos, '\n', len - pos), *ff;
	size_t b = pos, e = nl ? (size_t)(nl - s) : len, k;

	if ((ff = memchr(s + pos, '\f', e - pos)) != NULL) {
		nl = ff; /* a page break (pdftotext) ends a line too */
		e = (size_t)(ff - s);
	}
	l->next = nl ? e + 1 : len;
	l->underline = 0;
	l->numbered = false;
	while (b < e && is_space(p[b]))
		b++;
	while (e > b && is_space(p[e - 1]))
		e--;
	l->indented = b > pos;
	l->start = b;
	l->end = e;
	if (b == e) {
		l->kind = LINE_BLANK;
		return;
	}
	if (e - b >= 3 && (memcmp(p + b, "```", 3) == 0 || memcmp(p + b, "~~~", 3) == 0)) {
		l->kind = LINE_FENCE;
		return;
	}
	if (!has_word(s, b, e)) {
		/* "-----", "* * *", "| --- |": a break; "=====" or "-----" may underline */
		for (k = b; k < e && (p[k] == '=' || p[k] == '-') && p[k] == p[b]; k++)
			;
		l->underline = k == e && e - b >= 2 ? (char)p[b] : 0;
		l->kind = LINE_RULE;
		return;
	}
	for (k = b; k < e && k - b < 7 && p[k] == '#'; k++)
		;
	if (k > b && k - b <= 6 && (p[k] == ' ' || p[k] == '\t')) {
		size_t z = e;

		while (is_space(p[k]))
			k++;
		while (z > k && p[z - 1] == '#')
			z--;
		if (z < e && is_space(p[z - 1])) /* a closing "##", not "C#" */
			e = z;
		while (e > k && is_space(p[e - 1]))
			e--;
		l->start = k;
		l->end = e;
		l->kind = LINE_ATX;
		return;
	}
	if ((k = item_marker(p, b, e, &l->numbered)) && has_word(s, b + k, e)) {
		l->start = b + k;
		l->kind = LINE_ITEM;
		return;
	}
	l->kind = LINE_TEXT;
}

/*
 * A line that may be a heading though nothing marks it: short, few words,
 * not starting lowercase (a wrapped sentence going on), not ending like a
 * sentence or clause (or with a hyphen, a wrapped word).
 */
static bool heading_like(const char *s, const struct line *l)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char last = p[l->end - 1];
	size_t words = 0;

	if (l->end - l->start > SUMMARIZE_HEADING_MAX || (p[l->start] >= 'a' && p[l->start] <= 'z'))
		return false;
	if (span_term(s, l->start, l->end) != TERM_APPEND || last == '-')
		return false;
	for (size_t i = l->start; i < l->end; i++)
		words += !is_space(p[i]) && (i == l->start || is_space(p[i - 1]));
	return words <= SUMMARIZE_HEADING_WORDS;
}

/* The line starts (after opening quotes) with an uppercase letter. */
static bool starts_upper(const char *s, const struct line *l)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = l->start, n;
	uint32_t cp;

	while (i < l->end && (p[i] == '"' || p[i] == '\'' || p[i] == '(' || p[i] == '['))
		i++;
	if (i >= l->end || p[i] < 0x80)
		return i < l->end && p[i] >= 'A' && p[i] <= 'Z';
	n = extract_utf8_seq(p + i, l->end - i);
	if (!n)
		return false;
	cp = utf8_cp(p + i, n);
	return (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || (cp >= 0x391 && cp <= 0x3A9) ||
	       (cp >= 0x400 && cp <= 0x42F); /* Latin-1, Greek, Cyrillic capitals */
}

/* ------------------------------------------------------------------ */
/* sentences */

struct sentence {
	size_t start, end;
	size_t out_len; /* bytes once whitespace is collapsed */
	double score;
	uint64_t hash; /* of its content words, in any order; 0 without any */
	uint32_t index;
	enum term term;
	bool heading; /* a unit of its own, never glued; a summary only if all are */
	bool dup;     /* repeats an earlier sentence */
};

struct summ {
	struct analysis *a;
	struct sentence *sv;
	size_t ns, cap;
	size_t ntext; /* sentences that are no headings */
	size_t summary_max;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 27;
	x *= 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

/*
 * Appends s[start..end) to out (if not NULL) with whitespace collapsed and
 * invalid UTF-8 as '?', stopping before a character that would pass limit
 * bytes. Returns the bytes (that would be) written.
 */
static size_t sentence_copy(const char *s, size_t start, size_t end, char *out, size_t limit)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	bool sp = false;

	while (start < end && is_space(p[start]))
		start++;
	while (end > start && is_space(p[end - 1]))
		end--;
	for (size_t i = start; i < end;) {
		size_t n = p[i] < 0x80 ? 1 : extract_utf8_seq(p + i, end - i);

		if (n == 1 && is_space(p[i])) {
			sp = true;
			i++;
			continue;
		}
		if (o + sp + (n ? n : 1) > limit)
			break;
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

/* Scores s[start..end) and records it, unless it has no words. */
static int sentence_add(struct summ *st, size_t start, size_t end, bool heading)
{
	struct analysis *a = st->a;
	size_t wp = start, content = 0, words = 0;
	uint64_t hash = 0;
	double sum = 0;
	struct sentence *s;
	struct token t;

	while (next_word(a->text, end, &wp, &t)) {
		struct wentry *e;

		words++;
		if (t.too_long)
			continue;
		e = table_find(a, t.low, t.len);
		if (e->off != UINT32_MAX && e->content) {
			sum += (double)e->count / a->max_count;
			hash += mix64((uint64_t)(e - a->tab) + 1);
			content++;
		}
	}
	if (!words)
		return 0;
	if (st->ns == st->cap) {
		size_t nc = st->cap ? st->cap * 2 : 64;
		struct sentence *n = realloc(st->sv, nc * sizeof(*n));

		if (!n)
			return -ENOMEM;
		st->sv = n;
		st->cap = nc;
	}
	s = &st->sv[st->ns];
	s->start = start;
	s->end = end;
	s->index = (uint32_t)st->ns;
	s->out_len = sentence_copy(a->text, start, end, NULL, SIZE_MAX);
	s->term = span_term(a->text, start, end);
	s->heading = heading;
	s->dup = false;
	s->hash = content ? hash | 1 : 0;
	/*
	 * Between the mean and the sum of the word weights, so that a longer
	 * sentence says more; past SUMMARIZE_LONG_WORDS content words length
	 * stops counting, or a run-on without punctuation would win every time.
	 */
	if (content)
		s->score =
		    sum / fmax(sqrt((double)content), (double)content / sqrt(SUMMARIZE_LONG_WORDS));
	else
		s->score = 0;
	if (content < 3)
		s->score *= 0.5; /* fragments */
	if (!heading) {
		if (st->ntext == 0)
			s->score *= 1.5;
		else if (st->ntext < 3)
			s->score *= 1.2;
		st->ntext++;
	}
	if (s->out_len > st->summary_max / 2)
		s->score *= 0.5; /* would crowd out the rest */
	st->ns++;
	return 0;
}

/* A heading is one unit; a paragraph or list item is cut into sentences. */
static int block_add(struct summ *st, size_t b, size_t e, bool heading)
{
	int ret;

	if (heading)
		return sentence_add(st, b, e, true);
	while (b < e && st->ns < SUMMARIZE_SENTENCES_MAX) {
		size_t end = sentence_end(st->a->text, e, b);

		if ((ret = sentence_add(st, b, end, false)))
			return ret;
		b = end;
	}
	return 0;
}

/*
 * Pass 2: cuts the scanned text into blocks line by line. A blank line, a
 * rule or a code fence ends a paragraph (a form feed ends only a line);
 * "# x" and an underlined line are headings, and so is a short unpunctuated
 * line that stands alone or starts a paragraph before a capitalised line
 * ("Quarterly report\nThe revenue ..."); each list item is a block of its
 * own (an unindented line that starts capitalised ends it). Fenced code is
 * left out.
 */
static int segment(struct summ *st)
{
	const char *s = st->a->text;
	size_t len = st->a->len, bs = 0, be = 0;
	bool open = false, item = false, ended = true, code = false;
	struct line cur, nxt;
	int ret = 0;

	if (!len)
		return 0;
	classify_line(s, len, 0, &cur);
	while (!ret && st->ns < SUMMARIZE_SENTENCES_MAX) {
		bool skip = false, have_next = cur.next < len;

		if (have_next)
			classify_line(s, len, cur.next, &nxt);
		else
			nxt = (struct line){
			    .start = len, .end = len, .next = len, .kind = LINE_BLANK};
		if (open && (code || cur.kind != LINE_TEXT ||
			     (item && !cur.indented && starts_upper(s, &cur)))) {
			ret = block_add(st, bs, be, false); /* the block ends before this line */
			open = false;
		}
		if (code) {
			code = cur.kind != LINE_FENCE;
		} else if (cur.kind == LINE_FENCE) {
			code = true;
		} else if (cur.kind == LINE_ATX) {
			ret = ret ? ret : block_add(st, cur.start, cur.end, true);
		} else if (cur.kind == LINE_ITEM) {
			if (cur.numbered && heading_like(s, &cur) && nxt.kind == LINE_TEXT &&
			    !nxt.indented && starts_upper(s, &nxt)) {
				ret = ret ? ret : block_add(st, cur.start, cur.end, true);
			} else {
				bs = cur.start;
				be = cur.end;
				open = item = true;
			}
		} else if (cur.kind == LINE_TEXT) {
			bool underlined = nxt.kind == LINE_RULE && nxt.underline &&
					  cur.end - cur.start <= SUMMARIZE_UNDERLINED_MAX &&
					  s[cur.end - 1] != '.';

			if (underlined || ((!open || ended) && heading_like(s, &cur) &&
					   (nxt.kind != LINE_TEXT || starts_upper(s, &nxt)))) {
				if (open && !ret)
					ret = block_add(st, bs, be, false);
				open = false;
				ret = ret ? ret : block_add(st, cur.start, cur.end, true);
				skip = underlined;
			} else {
				if (!open) {
					bs = cur.start;
					item = false;
				}
				be = cur.end;
				open = true;
			}
		}
		ended = span_term(s, cur.start, cur.end) == TERM_OK;
		if (skip) {
			if (nxt.next >= len)
				break;
			classify_line(s, len, nxt.next, &cur);
			continue;
		}
		if (!have_next)
			break;
		cur = nxt;
	}
	if (open && !ret)
		ret = block_add(st, bs, be, false);
	return ret;
}

/* ------------------------------------------------------------------ */
/* picking */

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

struct hash_ref {
	uint64_t hash;
	uint32_t index;
};

static int cmp_hash(const void *x, const void *y)
{
	const struct hash_ref *a = x, *b = y;

	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

/*
 * Among the candidates (sv in index order), marks every repeat of the same
 * content words as dup, and penalises a sentence seen SUMMARIZE_BOILERPLATE
 * times or more (a page header, a footer) so that it comes last.
 */
static int mark_repeats(struct sentence *sv, size_t ns, bool headings)
{
	struct hash_ref *hv = malloc((ns ? ns : 1) * sizeof(*hv));
	size_t nh = 0;

	if (!hv)
		return -ENOMEM;
	for (size_t i = 0; i < ns; i++)
		if (sv[i].heading == headings && sv[i].hash)
			hv[nh++] = (struct hash_ref){sv[i].hash, sv[i].index};
	qsort(hv, nh, sizeof(*hv), cmp_hash);
	for (size_t i = 0, j; i < nh; i = j) {
		for (j = i + 1; j < nh && hv[j].hash == hv[i].hash; j++) {
			sv[hv[j].index].dup = true;
		}
		for (size_t k = i; j - i >= SUMMARIZE_BOILERPLATE && k < j; k++)
			sv[hv[k].index].score *= 0.2;
	}
	free(hv);
	return 0;
}

/* The distinct content words of a sentence (table slots), sorted; at most max. */
static size_t sentence_ids(struct analysis *a, const struct sentence *s, uint32_t *ids, size_t max)
{
	size_t pos = s->start, n = 0;
	struct token t;

	while (n < max && next_word(a->text, s->end, &pos, &t)) {
		struct wentry *e;
		uint32_t id;
		size_t lo = 0, hi = n;

		if (t.too_long)
			continue;
		e = table_find(a, t.low, t.len);
		if (e->off == UINT32_MAX || !e->content)
			continue;
		id = (uint32_t)(e - a->tab);
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (ids[mid] < id)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < n && ids[lo] == id)
			continue;
		memmove(ids + lo + 1, ids + lo, (n - lo) * sizeof(*ids));
		ids[lo] = id;
		n++;
	}
	return n;
}

/* Jaccard similarity of two sorted id sets >= SUMMARIZE_REDUNDANT. */
static bool redundant(const uint32_t *x, size_t nx, const uint32_t *y, size_t ny)
{
	size_t i = 0, j = 0, both = 0;

	if (!nx || !ny)
		return !nx && !ny;
	while (i < nx && j < ny) {
		if (x[i] == y[j]) {
			both++;
			i++;
			j++;
		} else if (x[i] < y[j]) {
			i++;
		} else {
			j++;
		}
	}
	return (double)both >= SUMMARIZE_REDUNDANT * (double)(nx + ny - both);
}

/* Bytes a picked sentence takes: a space before it, a '.' after it if bare. */
static size_t sentence_need(const struct sentence *s, size_t npick)
{
	return s->out_len + (npick ? 1 : 0) + (s->term == TERM_APPEND);
}

/*
 * Picks the best candidates, greedily by score, that fit in the budget and
 * repeat no earlier pick; moves them to sv[0..) and returns how many.
 */
static size_t pick(struct analysis *a, struct sentence *sv, size_t ns, size_t summary_max,
		   bool headings, size_t ncand)
{
	uint32_t ids[SUMMARIZE_PICK_MAX][SUMMARIZE_IDS_MAX], cand[SUMMARIZE_IDS_MAX];
	size_t nids[SUMMARIZE_PICK_MAX], npick = 0, budget = summary_max, examined = 0;
	double best = 0;

	for (size_t i = 0; i < ns && npick < SUMMARIZE_PICK_MAX && npick < (ncand + 1) / 2; i++) {
		size_t need = sentence_need(&sv[i], npick), nc;
		bool rep = false;

		if (sv[i].heading != headings || sv[i].dup)
			continue;
		if (npick && sv[i].score < best * SUMMARIZE_PICK_RATIO)
			break;
		if (need > budget)
			continue;
		if (examined++ >= SUMMARIZE_EXAMINE_MAX)
			break;
		nc = sentence_ids(a, &sv[i], cand, SUMMARIZE_IDS_MAX);
		for (size_t p = 0; p < npick && !rep; p++)
			rep = redundant(cand, nc, ids[p], nids[p]);
		if (rep)
			continue;
		if (!npick)
			best =
			    sv[i].score; /* of the best that fits: a giant does not set the bar */
		memcpy(ids[npick], cand, nc * sizeof(*cand));
		nids[npick] = nc;
		budget -= need;
		sv[npick++] = sv[i]; /* i >= npick: a slot already looked at */
	}
	return npick;
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
	struct summ st = {.summary_max = summary_max};
	size_t npick, ncand = 0, o = 0;
	struct analysis a;
	bool headings;
	char *out = NULL;
	int ret;

	if (!summary || !summary_max || (!text && len))
		return -EINVAL;
	*summary = NULL;
	st.a = &a;
	if ((ret = analyse(&a, text ? text : "", len)) || (ret = segment(&st)))
		goto out;
	/* headings make a summary only when there is nothing else */
	headings = st.ntext == 0;
	if ((ret = mark_repeats(st.sv, st.ns, headings)))
		goto out;
	for (size_t i = 0; i < st.ns; i++)
		ncand += st.sv[i].heading == headings && !st.sv[i].dup;
	ret = -ENOMEM;
	out = malloc(summary_max + SUMMARIZE_WORD_MAX + 8);
	if (!out)
		goto out;
	out[0] = '\0';
	ret = 0;
	if (!ncand)
		goto done;
	qsort(st.sv, st.ns, sizeof(*st.sv), cmp_score);
	npick = pick(&a, st.sv, st.ns, summary_max, headings, ncand);
	if (!npick) {
		/* even the best sentence is too long: its start, cut on a word boundary */
		for (size_t i = 0; i < st.ns; i++) {
			if (st.sv[i].heading != headings || st.sv[i].dup)
				continue;
			o = sentence_copy(a.text, st.sv[i].start, st.sv[i].end, out,
					  summary_max + 4);
			out[o] = '\0';
			summarize_cut(out, summary_max);
			break;
		}
		goto done;
	}
	qsort(st.sv, npick, sizeof(*st.sv), cmp_index);
	for (size_t i = 0; i < npick; i++) {
		const struct sentence *s = &st.sv[i];

		if (i)
			out[o++] = ' ';
		o += sentence_copy(a.text, s->start, s->end, out + o, SIZE_MAX);
		/* units never run into each other: "Intro. The text." */
		if (npick > 1 && s->term == TERM_APPEND)
			out[o++] = '.';
		else if (npick > 1 && s->term == TERM_REPLACE)
			out[o - 1] = '.';
	}
	out[o] = '\0';
done:
	*summary = out;
	out = NULL;
out:
	free(out);
	free(st.sv);
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
		size_t chars = 0, extra;

		if (e->off == UINT32_MAX || !e->content || e->len > SUMMARIZE_TAG_LEN)
			continue;
		for (size_t k = 0; k < e->len; k++)
			chars += ((unsigned char)a.pool[e->off + k] & 0xC0) != 0x80;
		/* frequency, a little more for longer words and for words seen early */
		extra = chars > 10 ? 7 : chars > 3 ? chars - 3 : 0;
		cv[nc].e = e;
		cv[nc].score = e->count * (1.0 + 0.08 * (double)extra) *
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
