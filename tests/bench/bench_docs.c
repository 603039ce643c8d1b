/*
 * bench_docs.c - the text documents of tools/bench's processing phase, and
 * the wait until a vault has processed them.
 *
 *   bench_docs gen DIR COUNT MIN_KIB MAX_KIB SUBDIRS SEED
 *       COUNT prose-like text documents of MIN_KIB..MAX_KIB KiB (uniform),
 *       DIR/dNN/doc-NNNNNN.txt, document i in directory i % SUBDIRS;
 *       prints "files=N bytes=B"
 *   bench_docs wait DIR COUNT SUBDIRS TIMEOUT INTERVAL STALL
 *       polls user.docvault.status of the same COUNT names (on a docvault
 *       mount) every INTERVAL seconds until each is "completed" or
 *       "failed"; prints "completed=N failed=M done_at=T polls=P calls=C",
 *       T being the CLOCK_REALTIME (epoch seconds) at which the last
 *       document was seen done
 *   bench_docs check DIR COUNT SUBDIRS
 *       untimed, after a wait: counts the completed documents whose
 *       user.docvault.summary or user.docvault.autotags is empty, prints
 *       the first failures' user.docvault.error and document 0's summary
 *       and tags; prints "empty_summary=N empty_autotags=M failed=F"
 *
 * Model: a document is a title and paragraphs of sentences made from
 * templates and word lists. Each document has a main topic (most of its
 * nouns, verbs and adjectives), five nouns of it that it is mostly about,
 * and a second topic, so its keyword tags and summary can be told apart
 * from other documents'; numbers, names and years vary the text further. Everything comes from
 * splitmix64 seeded from SEED and the document's number: a run is reproducible and no two documents
 * share content (no dedup hit). Sizes are cut at the end of the sentence that reaches the chosen
 * size (so up to ~200 bytes over).
 *
 * The wait reads statuses in name order (rsync sends in that order and
 * workers take the oldest job first) and stops each round at the first
 * document not yet done, so a run costs about COUNT + rounds getxattr
 * calls, not COUNT per round. When nothing has moved for STALL seconds it
 * reads every remaining status before giving up, so a document stuck in a
 * retry does not hide progress behind it. On a timeout or a stall it
 * prints the count of each status to stderr and exits 1.
 *
 * Exit status: 0 when every call succeeded and every document was done
 * in time, 1 otherwise, 2 on bad usage. Single-threaded; libc only. Not a
 * test: the bench judges the figures.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define BENCH_DOCS_MAX_FAILURES 5
#define BENCH_DOCS_NAME_MAX	64
#define BENCH_DOCS_ATTR_MAX	4096
#define BENCH_DOCS_STATUS	"user.docvault.status"
#define BENCH_DOCS_FOCUS	5 /* nouns a document is mostly about */

#define BENCH_DOCS_N(a) (sizeof(a) / sizeof((a)[0]))

struct bench_docs_rng {
	uint64_t state;
};

/* One subject: nouns, verbs (third person), adjectives and a title word. */
struct bench_docs_topic {
	const char *title;
	const char *nouns[16];
	const char *verbs[8];
	const char *adjs[8];
};

static const struct bench_docs_topic bench_docs_topics[] = {
    {"Astronomy",
     {"telescope", "galaxy", "nebula", "orbit", "comet", "spectrum", "observatory", "planet",
      "supernova", "redshift", "asteroid", "eclipse", "exoplanet", "quasar", "meteor", "pulsar"},
     {"observes", "measures", "orbits", "reflects", "emits", "tracks", "resolves", "detects"},
     {"distant", "luminous", "faint", "stellar", "gravitational", "infrared", "orbital", "cosmic"}},
    {"Beekeeping",
     {"hive", "colony", "queen", "honey", "pollen", "nectar", "beeswax", "swarm", "apiary", "drone",
      "brood", "frame", "smoker", "forager", "varroa", "comb"},
     {"collects", "stores", "swarms", "feeds", "guards", "builds", "inspects", "harvests"},
     {"healthy", "seasonal", "floral", "sticky", "crowded", "gentle", "wild", "golden"}},
    {"Railways",
     {"locomotive", "timetable", "platform", "signal", "junction", "carriage", "freight", "sleeper",
      "gauge", "viaduct", "conductor", "depot", "terminus", "siding", "tunnel", "ticket"},
     {"departs", "arrives", "couples", "shunts", "connects", "delays", "schedules", "crosses"},
     {"electric", "narrow", "regional", "express", "overnight", "historic", "busy", "punctual"}},
    {"Cooking",
     {"recipe", "saucepan", "oven", "flour", "butter", "garlic", "stock", "dough", "spice",
      "marinade", "skillet", "vinegar", "pastry", "broth", "herb", "onion"},
     {"simmers", "bakes", "seasons", "chops", "roasts", "stirs", "reduces", "ferments"},
     {"crisp", "savory", "tender", "fragrant", "smoky", "creamy", "rustic", "spicy"}},
    {"Databases",
     {"index", "transaction", "query", "table", "replica", "schema", "cursor", "snapshot",
      "checkpoint", "tuple", "planner", "vacuum", "lock", "partition", "join", "migration"},
     {"commits", "scans", "rolls", "replicates", "indexes", "locks", "plans", "vacuums"},
     {"relational", "durable", "concurrent", "consistent", "normalized", "slow", "isolated",
      "sequential"}},
    {"Gardening",
     {"compost", "seedling", "trellis", "mulch", "greenhouse", "orchard", "pruning", "soil",
      "tomato", "hedge", "bulb", "irrigation", "weed", "perennial", "fertilizer", "rose"},
     {"grows", "blooms", "prunes", "waters", "sprouts", "plants", "shades", "climbs"},
     {"fertile", "shady", "hardy", "flowering", "organic", "dormant", "lush", "evergreen"}},
    {"Shipping",
     {"container", "harbour", "vessel", "cargo", "crane", "manifest", "freighter", "berth",
      "customs", "tanker", "anchor", "dock", "voyage", "hull", "pilot", "tugboat"},
     {"loads", "unloads", "sails", "anchors", "inspects", "clears", "navigates", "moors"},
     {"maritime", "coastal", "heavy", "refrigerated", "offshore", "bulk", "deep", "tidal"}},
    {"Medicine",
     {"patient", "diagnosis", "vaccine", "antibody", "clinic", "symptom", "dosage", "surgeon",
      "therapy", "infection", "prescription", "ward", "biopsy", "cardiology", "nurse", "pathogen"},
     {"treats", "prescribes", "diagnoses", "monitors", "recovers", "vaccinates", "examines",
      "heals"},
     {"chronic", "acute", "clinical", "sterile", "viral", "surgical", "preventive", "mild"}},
    {"Music",
     {"orchestra", "symphony", "violin", "melody", "rhythm", "chord", "conductor", "sonata",
      "rehearsal", "harmony", "tempo", "cello", "choir", "overture", "piano", "score"},
     {"performs", "composes", "rehearses", "tunes", "improvises", "conducts", "records", "plays"},
     {"melodic", "baroque", "harmonic", "acoustic", "orchestral", "lyrical", "dissonant",
      "rhythmic"}},
    {"Geology",
     {"basalt", "glacier", "fault", "sediment", "volcano", "granite", "fossil", "mineral",
      "erosion", "magma", "strata", "quartz", "earthquake", "canyon", "limestone", "crust"},
     {"erodes", "deposits", "erupts", "folds", "fractures", "weathers", "shifts", "crystallizes"},
     {"volcanic", "sedimentary", "tectonic", "ancient", "porous", "metamorphic", "glacial",
      "igneous"}},
    {"Accounting",
     {"ledger", "invoice", "audit", "balance", "revenue", "expense", "depreciation", "payroll",
      "budget", "dividend", "liability", "asset", "receipt", "forecast", "tax", "equity"},
     {"audits", "reconciles", "invoices", "budgets", "reports", "deducts", "accrues", "allocates"},
     {"fiscal", "quarterly", "annual", "net", "deferred", "taxable", "audited", "operating"}},
    {"Sailing",
     {"mainsail", "rudder", "keel", "jib", "mast", "tiller", "regatta", "spinnaker", "mooring",
      "halyard", "cockpit", "dinghy", "compass", "headwind", "tack", "buoy"},
     {"tacks", "heels", "gybes", "hoists", "reefs", "steers", "drifts", "capsizes"},
     {"windward", "leeward", "nautical", "gusty", "calm", "choppy", "seaworthy", "brisk"}},
    {"Typography",
     {"typeface", "serif", "kerning", "ligature", "baseline", "glyph", "margin", "column",
      "leading", "italic", "font", "layout", "hyphenation", "paragraph", "ink", "press"},
     {"typesets", "kerns", "justifies", "prints", "aligns", "renders", "composes", "hyphenates"},
     {"legible", "bold", "condensed", "elegant", "monospaced", "classical", "narrow",
      "typographic"}},
    {"Networking",
     {"router", "packet", "latency", "firewall", "subnet", "protocol", "bandwidth", "switch",
      "gateway", "handshake", "socket", "congestion", "certificate", "resolver", "tunnel",
      "datagram"},
     {"routes", "forwards", "drops", "encrypts", "resolves", "retransmits", "filters",
      "negotiates"},
     {"wireless", "encrypted", "redundant", "congested", "lossy", "virtual", "secure", "upstream"}},
    {"Forestry",
     {"timber", "canopy", "sapling", "lumber", "conifer", "understory", "clearing", "ranger",
      "wildfire", "logging", "bark", "woodland", "beech", "spruce", "moss", "trail"},
     {"thins", "replants", "shelters", "burns", "regenerates", "surveys", "fells", "decays"},
     {"boreal", "dense", "mossy", "temperate", "managed", "damp", "towering", "native"}},
    {"Chess",
     {"opening", "gambit", "bishop", "knight", "rook", "endgame", "checkmate", "pawn", "tournament",
      "grandmaster", "castling", "sacrifice", "stalemate", "fianchetto", "queen", "clock"},
     {"sacrifices", "captures", "defends", "attacks", "castles", "promotes", "blunders",
      "analyses"},
     {"tactical", "positional", "decisive", "passive", "sharp", "drawn", "aggressive", "solid"}},
};

static const char *const bench_docs_names[] = {
    "Amira", "Bruno", "Chen",  "Dagny",	 "Emeka",  "Farah", "Gustav", "Hana",
    "Ilse",  "Jonas", "Keiko", "Lucia",	 "Mateo",  "Nadia", "Oskar",  "Priya",
    "Quinn", "Rosa",  "Sven",  "Tomasz", "Ursula", "Vera",  "Wen",    "Yusuf",
};

static const char *const bench_docs_places[] = {
    "Lisbon", "Tromso", "Valparaiso", "Kyoto",	"Dundee", "Gdansk",  "Nairobi", "Hobart",
    "Quebec", "Tartu",	"Oaxaca",     "Bergen", "Malmo",  "Leipzig", "Cork",	"Perth",
};

static const char *const bench_docs_links[] = {
    "However,",
    "Meanwhile,",
    "In practice,",
    "As a result,",
    "By contrast,",
    "In most cases,",
    "According to the report,",
    "Surprisingly,",
    "Over time,",
    "Later that year,",
};

static const char *const bench_docs_common[] = {
    "method",  "result", "season", "problem", "question", "change", "record", "example",
    "process", "team",	 "study",  "region",  "standard", "cost",   "plan",   "history",
};

static uint64_t bench_docs_next(struct bench_docs_rng *r)
{
	uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t bench_docs_below(struct bench_docs_rng *r, size_t n)
{
	return (size_t)(bench_docs_next(r) % n);
}

#define BENCH_DOCS_PICK(r, a) ((a)[bench_docs_below((r), BENCH_DOCS_N(a))])

/* A growing text buffer; on out of memory, exits (a helper, not a library). */
struct bench_docs_buf {
	char *p;
	size_t len, cap;
};

static void bench_docs_put(struct bench_docs_buf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;

		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);

		if (!p) {
			fprintf(stderr, "bench_docs: out of memory\n");
			exit(1);
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
}

/*
 * One document's vocabulary: its main topic t, a second topic o, and
 * BENCH_DOCS_FOCUS nouns of t that it is mostly about.
 */
struct bench_docs_doc {
	struct bench_docs_rng r;
	const struct bench_docs_topic *t, *o;
	const char *focus[BENCH_DOCS_FOCUS];
};

/* A noun: one of the focus nouns, of the main topic, of the other or common. */
static const char *bench_docs_noun(struct bench_docs_doc *d)
{
	size_t p = bench_docs_below(&d->r, 100);

	if (p < 45)
		return BENCH_DOCS_PICK(&d->r, d->focus);
	if (p < 75)
		return BENCH_DOCS_PICK(&d->r, d->t->nouns);
	if (p < 90)
		return BENCH_DOCS_PICK(&d->r, d->o->nouns);
	return BENCH_DOCS_PICK(&d->r, bench_docs_common);
}

static const char *bench_docs_verb(struct bench_docs_doc *d)
{
	const struct bench_docs_topic *t = bench_docs_below(&d->r, 4) ? d->t : d->o;

	return BENCH_DOCS_PICK(&d->r, t->verbs);
}

static const char *bench_docs_adj(struct bench_docs_doc *d)
{
	const struct bench_docs_topic *t = bench_docs_below(&d->r, 4) ? d->t : d->o;

	return BENCH_DOCS_PICK(&d->r, t->adjs);
}

/* The indefinite article for word. */
static const char *bench_docs_a(const char *word)
{
	return strchr("aeiou", word[0]) ? "an" : "a";
}

/* One sentence, capitalised, ending with "." (the caller adds the break). */
static void bench_docs_sentence(struct bench_docs_buf *b, struct bench_docs_doc *d)
{
	struct bench_docs_rng *r = &d->r;
	const char *w1, *w2;
	char s[512];
	size_t start = b->len;

	switch (bench_docs_below(r, 7)) {
	case 0:
		snprintf(s, sizeof(s), "the %s %s %s the %s %s of the %s.", bench_docs_adj(d),
			 bench_docs_noun(d), bench_docs_verb(d), bench_docs_adj(d),
			 bench_docs_noun(d), bench_docs_noun(d));
		break;
	case 1:
		snprintf(s, sizeof(s), "%s %s %s the %s because the %s was %s.",
			 BENCH_DOCS_PICK(r, bench_docs_links), BENCH_DOCS_PICK(r, bench_docs_names),
			 bench_docs_verb(d), bench_docs_noun(d), bench_docs_noun(d),
			 bench_docs_adj(d));
		break;
	case 2:
		w1 = bench_docs_noun(d);
		w2 = bench_docs_adj(d);
		snprintf(s, sizeof(s), "in %u, %s %s in %s %s the %s %u times with %s %s %s.",
			 1890 + (unsigned)bench_docs_below(r, 135), bench_docs_a(w1), w1,
			 BENCH_DOCS_PICK(r, bench_docs_places), bench_docs_verb(d),
			 bench_docs_noun(d), 2 + (unsigned)bench_docs_below(r, 400),
			 bench_docs_a(w2), w2, bench_docs_noun(d));
		break;
	case 3:
		snprintf(s, sizeof(s), "%s reports that the %s %s %u percent of the %s.",
			 BENCH_DOCS_PICK(r, bench_docs_names), bench_docs_noun(d),
			 bench_docs_verb(d), 5 + (unsigned)bench_docs_below(r, 90),
			 bench_docs_noun(d));
		break;
	case 4:
		snprintf(s, sizeof(s), "%s the %s and the %s, which %s the %s %s.",
			 BENCH_DOCS_PICK(r, bench_docs_links), bench_docs_noun(d),
			 bench_docs_noun(d), bench_docs_verb(d), bench_docs_adj(d),
			 bench_docs_noun(d));
		break;
	case 5:
		snprintf(s, sizeof(s), "when the %s %s, the %s %s and %s in %s %s the %s.",
			 bench_docs_noun(d), bench_docs_verb(d), bench_docs_noun(d),
			 bench_docs_verb(d), BENCH_DOCS_PICK(r, bench_docs_names),
			 BENCH_DOCS_PICK(r, bench_docs_places), bench_docs_verb(d),
			 bench_docs_noun(d));
		break;
	default:
		w1 = bench_docs_adj(d);
		w2 = bench_docs_adj(d);
		snprintf(s, sizeof(s), "%s %s %s is not the same as %s %s %s.", bench_docs_a(w1),
			 w1, bench_docs_noun(d), bench_docs_a(w2), w2, bench_docs_noun(d));
		break;
	}
	bench_docs_put(b, s);
	if (b->p[start] >= 'a' && b->p[start] <= 'z')
		b->p[start] = (char)(b->p[start] - 'a' + 'A');
}

/* Document i's text, about `size` bytes, into b (reset first). */
static void bench_docs_text(struct bench_docs_buf *b, uint64_t seed, long i, size_t size)
{
	struct bench_docs_doc d = {.r = {seed * 1000003u + (uint64_t)i}};
	char line[256];

	b->len = 0;
	d.t = &BENCH_DOCS_PICK(&d.r, bench_docs_topics);
	do
		d.o = &BENCH_DOCS_PICK(&d.r, bench_docs_topics);
	while (d.o == d.t);
	for (size_t k = 0; k < BENCH_DOCS_FOCUS; k++)
		d.focus[k] = BENCH_DOCS_PICK(&d.r, d.t->nouns);
	snprintf(line, sizeof(line), "%s notes %ld: the %s %s and the %s\n\n", d.t->title, i,
		 bench_docs_adj(&d), d.focus[0], d.focus[1]);
	bench_docs_put(b, line);
	while (b->len < size) {
		size_t n = 3 + bench_docs_below(&d.r, 6);

		for (size_t k = 0; k < n && b->len < size; k++) {
			if (k)
				bench_docs_put(b, " ");
			bench_docs_sentence(b, &d);
		}
		bench_docs_put(b, "\n\n");
	}
}

static void bench_docs_fail(long *bad, const char *what, const char *name, int err)
{
	if ((*bad)++ < BENCH_DOCS_MAX_FAILURES)
		fprintf(stderr, "bench_docs: %s %s: %s\n", what, name, strerror(err));
}

static long bench_docs_parse(const char *s, const char *what, long min)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min) {
		fprintf(stderr, "bench_docs: %s: '%s' is not a number >= %ld\n", what, s, min);
		exit(2);
	}
	return v;
}

static double bench_docs_parse_s(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !(v > 0)) {
		fprintf(stderr, "bench_docs: %s: '%s' is not a positive number\n", what, s);
		exit(2);
	}
	return v;
}

static void bench_docs_name(char *out, size_t len, long i, long subdirs)
{
	snprintf(out, len, "d%02ld/doc-%06ld.txt", i % subdirs, i);
}

static int bench_docs_write(const char *name, const struct bench_docs_buf *b, long *bad)
{
	int fd = open(name, O_CREAT | O_EXCL | O_WRONLY, 0644);
	size_t done = 0;

	if (fd < 0) {
		bench_docs_fail(bad, "create", name, errno);
		return -1;
	}
	while (done < b->len) {
		ssize_t w = write(fd, b->p + done, b->len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int err = errno;

			close(fd);
			bench_docs_fail(bad, "write", name, err);
			return -1;
		}
		done += (size_t)w;
	}
	if (close(fd) != 0) {
		bench_docs_fail(bad, "close", name, errno);
		return -1;
	}
	return 0;
}

static int bench_docs_gen(long count, long min_kib, long max_kib, long subdirs, uint64_t seed)
{
	struct bench_docs_rng sizes = {seed};
	struct bench_docs_buf b = {0};
	char name[BENCH_DOCS_NAME_MAX];
	uint64_t bytes = 0;
	long bad = 0;

	for (long d = 0; d < subdirs; d++) {
		snprintf(name, sizeof(name), "d%02ld", d);
		if (mkdir(name, 0755) != 0 && errno != EEXIST)
			bench_docs_fail(&bad, "mkdir", name, errno);
	}
	for (long i = 0; i < count; i++) {
		size_t lo = (size_t)min_kib * 1024, hi = (size_t)max_kib * 1024;
		size_t size = lo + (size_t)(bench_docs_next(&sizes) % (hi - lo + 1));

		bench_docs_text(&b, seed, i, size);
		bench_docs_name(name, sizeof(name), i, subdirs);
		if (bench_docs_write(name, &b, &bad) == 0)
			bytes += b.len;
	}
	free(b.p);
	printf("files=%ld bytes=%llu\n", count - bad, (unsigned long long)bytes);
	return bad ? 1 : 0;
}

static double bench_docs_clock(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum bench_docs_state { BD_PENDING, BD_COMPLETED, BD_FAILED };

/*
 * The status of name into st (a C string, "" when the attribute is empty);
 * returns its state, or -1 on an error (counted in *bad).
 */
static int bench_docs_status(const char *name, char *st, size_t len, long *bad)
{
	ssize_t n = getxattr(name, BENCH_DOCS_STATUS, st, len - 1);

	if (n < 0) {
		bench_docs_fail(bad, "getxattr " BENCH_DOCS_STATUS, name, errno);
		st[0] = '\0';
		return -1;
	}
	st[n] = '\0';
	if (!strcmp(st, "completed"))
		return BD_COMPLETED;
	if (!strcmp(st, "failed"))
		return BD_FAILED;
	return BD_PENDING;
}

/* Prints the count of every status of the documents not known done. */
static void bench_docs_census(const unsigned char *state, long count, long subdirs, long completed,
			      long failed)
{
	static const char *const known[] = {"uploading", "ready",  "processing",
					    "completed", "failed", ""};
	long n[BENCH_DOCS_N(known) + 1] = {0};
	char name[BENCH_DOCS_NAME_MAX], st[64];
	long bad = 0;

	for (long i = 0; i < count; i++) {
		size_t k;

		if (state[i] != BD_PENDING)
			continue;
		bench_docs_name(name, sizeof(name), i, subdirs);
		if (bench_docs_status(name, st, sizeof(st), &bad) < 0) {
			n[BENCH_DOCS_N(known)]++;
			continue;
		}
		for (k = 0; k < BENCH_DOCS_N(known) && strcmp(st, known[k]); k++)
			;
		n[k]++;
	}
	fprintf(stderr,
		"bench_docs: statuses: uploading=%ld ready=%ld processing=%ld completed=%ld "
		"failed=%ld none=%ld unreadable=%ld\n",
		n[0], n[1], n[2], completed + n[3], failed + n[4], n[5], n[6]);
}

static int bench_docs_wait(long count, long subdirs, double timeout, double interval, double stall)
{
	unsigned char *state = calloc((size_t)count, 1);
	char name[BENCH_DOCS_NAME_MAX], st[64];
	long next = 0, ndone = 0, completed = 0, failed = 0, bad = 0, polls = 0, calls = 0;
	double start = bench_docs_clock(CLOCK_MONOTONIC), moved = start, done_at = 0;
	struct timespec nap = {(time_t)interval,
			       (long)((interval - (double)(time_t)interval) * 1e9)};

	if (!state) {
		fprintf(stderr, "bench_docs: out of memory\n");
		return 1;
	}
	for (;;) {
		double now = bench_docs_clock(CLOCK_MONOTONIC);
		bool full = now - moved > stall;
		long before = ndone;

		polls++;
		/* in name order from the first not done; a full round when stalled */
		for (long i = next; i < count; i++) {
			int s;

			if (state[i] != BD_PENDING)
				continue;
			bench_docs_name(name, sizeof(name), i, subdirs);
			calls++;
			s = bench_docs_status(name, st, sizeof(st), &bad);
			if (s < 0) {
				free(state);
				return 1;
			}
			if (s == BD_PENDING) {
				if (!full)
					break;
				continue;
			}
			state[i] = (unsigned char)s;
			ndone++;
			if (s == BD_COMPLETED)
				completed++;
			else
				failed++;
			if (ndone == count)
				done_at = bench_docs_clock(CLOCK_REALTIME);
		}
		while (next < count && state[next] != BD_PENDING)
			next++;
		if (ndone == count)
			break;
		now = bench_docs_clock(CLOCK_MONOTONIC);
		if (ndone != before)
			moved = now;
		if (now - start > timeout || (full && ndone == before)) {
			fprintf(stderr,
				"bench_docs: %ld of %ld documents done (%ld completed, %ld "
				"failed) after %.1f s; %s\n",
				ndone, count, completed, failed, now - start,
				now - start > timeout ? "timed out"
						      : "no document finished in the last "
							"stall interval");
			bench_docs_census(state, count, subdirs, completed, failed);
			free(state);
			return 1;
		}
		nanosleep(&nap, NULL);
	}
	free(state);
	printf("completed=%ld failed=%ld done_at=%.6f polls=%ld calls=%ld\n", completed, failed,
	       done_at, polls, calls);
	return 0;
}

/* The value of attribute attr of name into v (a C string); its length or -1. */
static ssize_t bench_docs_attr(const char *name, const char *attr, char *v, size_t len)
{
	ssize_t n = getxattr(name, attr, v, len - 1);

	if (n < 0) {
		if (errno == ENODATA) {
			v[0] = '\0';
			return 0;
		}
		fprintf(stderr, "bench_docs: getxattr %s %s: %s\n", attr, name, strerror(errno));
		v[0] = '\0';
		return -1;
	}
	v[n] = '\0';
	return n;
}

static int bench_docs_check(long count, long subdirs)
{
	char name[BENCH_DOCS_NAME_MAX], st[64], v[BENCH_DOCS_ATTR_MAX];
	long empty_summary = 0, empty_tags = 0, failed = 0, bad = 0;

	for (long i = 0; i < count; i++) {
		int s;

		bench_docs_name(name, sizeof(name), i, subdirs);
		s = bench_docs_status(name, st, sizeof(st), &bad);
		if (s < 0)
			continue;
		if (s == BD_FAILED) {
			if (failed++ < BENCH_DOCS_MAX_FAILURES &&
			    bench_docs_attr(name, "user.docvault.error", v, sizeof(v)) >= 0)
				fprintf(stderr, "bench_docs: %s failed: %s\n", name, v);
			continue;
		}
		if (s != BD_COMPLETED)
			continue;
		if (bench_docs_attr(name, "user.docvault.summary", v, sizeof(v)) <= 0)
			empty_summary++;
		else if (i == 0)
			printf("summary of %s: %.160s%s\n", name, v, strlen(v) > 160 ? "..." : "");
		if (bench_docs_attr(name, "user.docvault.autotags", v, sizeof(v)) <= 0)
			empty_tags++;
		else if (i == 0)
			printf("autotags of %s: %s\n", name, v);
	}
	printf("empty_summary=%ld empty_autotags=%ld failed=%ld\n", empty_summary, empty_tags,
	       failed);
	return bad ? 1 : 0;
}

static void bench_docs_chdir(const char *dir)
{
	if (chdir(dir) != 0) {
		fprintf(stderr, "bench_docs: chdir %s: %s\n", dir, strerror(errno));
		exit(1);
	}
}

static int bench_docs_usage(void)
{
	fprintf(stderr, "usage: bench_docs gen DIR COUNT MIN_KIB MAX_KIB SUBDIRS SEED\n"
			"       bench_docs wait DIR COUNT SUBDIRS TIMEOUT INTERVAL STALL\n"
			"       bench_docs check DIR COUNT SUBDIRS\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc == 8 && !strcmp(argv[1], "gen")) {
		long count = bench_docs_parse(argv[3], "COUNT", 1);
		long min_kib = bench_docs_parse(argv[4], "MIN_KIB", 1);
		long max_kib = bench_docs_parse(argv[5], "MAX_KIB", min_kib);
		long subdirs = bench_docs_parse(argv[6], "SUBDIRS", 1);
		uint64_t seed = (uint64_t)bench_docs_parse(argv[7], "SEED", 0);

		bench_docs_chdir(argv[2]);
		return bench_docs_gen(count, min_kib, max_kib, subdirs, seed);
	}
	if (argc == 8 && !strcmp(argv[1], "wait")) {
		long count = bench_docs_parse(argv[3], "COUNT", 1);
		long subdirs = bench_docs_parse(argv[4], "SUBDIRS", 1);
		double timeout = bench_docs_parse_s(argv[5], "TIMEOUT");
		double interval = bench_docs_parse_s(argv[6], "INTERVAL");
		double stall = bench_docs_parse_s(argv[7], "STALL");

		bench_docs_chdir(argv[2]);
		return bench_docs_wait(count, subdirs, timeout, interval, stall);
	}
	if (argc == 5 && !strcmp(argv[1], "check")) {
		long count = bench_docs_parse(argv[3], "COUNT", 1);
		long subdirs = bench_docs_parse(argv[4], "SUBDIRS", 1);

		bench_docs_chdir(argv[2]);
		return bench_docs_check(count, subdirs);
	}
	return bench_docs_usage();
}
