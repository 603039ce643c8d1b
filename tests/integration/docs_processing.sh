#!/bin/bash
# docs_processing.sh - every kind of document through processing, seen with
# getfattr: the fixtures of tests/fixtures/docs (text, Markdown, HTML, PDF,
# DOCX, ODT, gzip'd text, Latin-1 text, a binary, an empty file, a corrupt
# PDF) and a 50 MiB text made here are copied into the vault; each ends
# "completed" (the corrupt PDF "failed" with a reason in
# user.docvault.error) within a bound; its MIME type is the right one; its
# checksum is "xxh128:" and what `xxhsum -H2` says of the source; its id is
# its inode number; its upload time is ISO 8601 and now; documents with text
# have a built-in summary and autotags made of their text; `getfattr -d`
# lists exactly the attributes that have a value. Then, with tight
# extraction limits (cpu_limit 2, wall_limit 5, mem_limit 256M), a PDF that
# makes pdftotext loop and eat memory (bomb.pdf) fails its job with the
# limit as the reason and without retries, while a document copied after
# it completes and the daemon runs on.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

FIX=$(cd "$(dirname "$0")/../fixtures/docs" && pwd) || { echo "no tests/fixtures/docs" >&2; exit 1; }
T0=$(date +%s)

dv_setup
if dv_mode_is_dir; then
	dv_note "dir mode: every check here needs the daemon"
	dv_done
fi

# name|MIME type|how its text is read (dv_docs_assert_from_text)|outcome:
# text (completed with a summary), none (completed, no text), failed
FIXTURES='text.txt|text/plain|text|text
doc.md|text/markdown|text|text
page.html|text/html|html|text
doc.pdf|application/pdf|pdf|text
doc.docx|application/vnd.openxmlformats-officedocument.wordprocessingml.document|zip|text
doc.odt|application/vnd.oasis.opendocument.text|zip|text
text.txt.gz|application/gzip|gzip|text
latin1.txt|text/plain|text|text
binary.bin|application/octet-stream|-|none
empty.txt|inode/x-empty|-|none
corrupt.pdf|application/pdf|-|failed
big.txt|text/plain|text|text'

src=$DV_DIR/src
mkdir "$src"
while IFS='|' read -r name _; do
	[[ $name == big.txt ]] && continue
	cp "$FIX/$name" "$src/$name" || dv_die "no fixture $FIX/$name"
done <<<"$FIXTURES"
# 50 MiB of English sentences about one subject, numbered (no two lines
# alike), cut at exactly 50 MiB.
awk 'BEGIN {
	s[0] = "The harbour pilot guided the cargo ship through the narrow channel at dawn."
	s[1] = "Tugboats pushed the container vessel against the quay while the tide turned."
	s[2] = "Cranes unloaded each container from the ship onto waiting trucks and trains."
	s[3] = "The harbour master assigned every arriving vessel a berth and a pilot."
	s[4] = "Dock workers secured the mooring lines before the cargo inspection began."
	s[5] = "A lighthouse at the harbour entrance warns ships of the rocks in fog."
	s[6] = "Freight schedules depend on the tide, the weather and the harbour cranes."
	for (i = 0; b < 52500000; i++) {
		line = "Entry " i ": " s[i % 7] " " s[(i * 3 + 1) % 7]
		print line
		b += length(line) + 1
	}
}' | head -c 52428800 >"$src/big.txt"
dv_assert_eq 52428800 "$(stat -c %s "$src/big.txt")" "the generated text is 50 MiB"

dv_note "copy the documents into the vault"
dv_assert_ok "cp of the fixtures and the 50 MiB text" cp "$src"/* "$MNT/"
files=()
while IFS='|' read -r name _; do files+=("$MNT/$name"); done <<<"$FIXTURES"
dv_docs_assert_done "processing" 150 "${files[@]}"

dv_note "what docvault knows about each document"
now=$(date +%s)
while IFS='|' read -r name mime kind outcome; do
	f=$MNT/$name
	st=$(dv_xattr "$f" user.docvault.status)
	if [[ $outcome == failed ]]; then
		dv_assert_eq failed "$st" "$name: status"
		err=$(dv_xattr "$f" user.docvault.error)
		dv_assert_match "$name: user.docvault.error says why" '[[:alpha:]]{4}' "$err"
		dv_note "$name: error: $err"
	else
		dv_assert_eq completed "$st" "$name: status"
		dv_assert_fails "$name: no user.docvault.error when completed" \
			getfattr --absolute-names -n user.docvault.error "$f"
	fi
	dv_assert_eq "$mime" "$(dv_xattr "$f" user.docvault.mime)" "$name: mime"
	dv_assert_eq "xxh128:$(xxhsum -H2 "$src/$name" 2>/dev/null | cut -d' ' -f1)" \
		"$(dv_xattr "$f" user.docvault.checksum)" "$name: checksum is xxhsum -H2 of the source"
	dv_assert_eq "$(stat -c %i "$f")" "$(dv_xattr "$f" user.docvault.id)" "$name: id is the inode number"
	up=$(dv_xattr "$f" user.docvault.uploaded)
	if [[ $up =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] &&
		upt=$(date -d "$up" +%s 2>/dev/null) && ((upt >= T0 - 5 && upt <= now + 5)); then
		dv_pass "$name: uploaded is ISO 8601 UTC and within this run ($up)"
	else
		dv_fail "$name: uploaded is '$up', not an ISO 8601 UTC time between $(date -u -d "@$T0" +%FT%TZ) and now"
	fi
	case $outcome in
	text)
		dv_assert_eq builtin "$(dv_xattr "$f" user.docvault.summary_source)" "$name: summary_source"
		max=0
		[[ $name == big.txt ]] && max=$((8 << 20)) # text_max is 4 MiB
		dv_docs_assert_from_text "$name" "$kind" "$src/$name" "$f" "$max"
		len=$(dv_xattr "$f" user.docvault.summary | wc -c)
		if ((len <= 1024)); then
			dv_pass "$name: the summary has at most summary_max (1024) bytes ($len)"
		else
			dv_fail "$name: the summary has $len bytes, more than summary_max (1024)"
		fi
		want='autotags checksum id mime status summary summary_source uploaded'
		;;
	none)
		dv_assert_eq none "$(dv_xattr "$f" user.docvault.summary_source)" "$name: summary_source"
		dv_assert_eq "" "$(dv_xattr "$f" user.docvault.summary)" "$name: no summary"
		dv_assert_eq "" "$(dv_xattr "$f" user.docvault.autotags)" "$name: no autotags"
		want='checksum id mime status summary_source uploaded'
		;;
	failed)
		dv_assert_eq "" "$(dv_xattr "$f" user.docvault.summary)" "$name: no summary"
		want='checksum error id mime status uploaded'
		;;
	esac
	got=$(getfattr --absolute-names -d -m - "$f" 2>&1 | sed -n 's/^user\.docvault\.\([a-z_]*\)=.*/\1/p' |
		LC_ALL=C sort | tr '\n' ' ')
	dv_assert_eq "$want " "$got" "$name: getfattr -d lists the attributes with a value"
done <<<"$FIXTURES"

dv_note "a PDF bomb with tight extraction limits"
dv_conf_set processing cpu_limit 2
dv_conf_set processing wall_limit 5
dv_conf_set processing mem_limit 256M
dv_remount
mkdir "$MNT/limits"
dv_assert_ok "cp bomb.pdf" cp "$FIX/bomb.pdf" "$MNT/limits/bomb.pdf"
# The next document is copied once a worker has the bomb.
t1=$SECONDS
while (( SECONDS - t1 < 60 )); do
	st=$(dv_xattr "$MNT/limits/bomb.pdf" user.docvault.status)
	[[ $st == processing || $st == failed || $st == completed ]] && break
	sleep 0.1
done
dv_assert_match "a worker took the bomb" '^(processing|failed)$' "$st"
t2=$SECONDS
cat >"$src/after.txt" <<'EOT'
Beavers build dams across streams with branches, mud and stones.
A beaver dam turns a stream into a pond where the beavers build their lodge.
The lodge has an underwater entrance, so beavers stay safe from wolves in winter.
EOT
dv_assert_ok "cp of a document after the bomb" cp "$src/after.txt" "$MNT/limits/after.txt"
dv_docs_assert_done "the bomb and the document after it" 60 "$MNT/limits/bomb.pdf" "$MNT/limits/after.txt"
dv_assert_eq failed "$(dv_xattr "$MNT/limits/bomb.pdf" user.docvault.status)" "bomb.pdf: status"
err=$(dv_xattr "$MNT/limits/bomb.pdf" user.docvault.error)
dv_assert_match "bomb.pdf: the error names the limit it hit" 'limit' "$err"
dv_note "bomb.pdf: error: $err ($((SECONDS - t2)) s after a worker took it)"
dv_assert_eq application/pdf "$(dv_xattr "$MNT/limits/bomb.pdf" user.docvault.mime)" "bomb.pdf: mime"
ino=$(stat -c %i "$MNT/limits/bomb.pdf")
dv_assert_no_match "bomb.pdf: failed for good, no retry" "document $ino \\(version [0-9]+\\): attempt" \
	"$(cat "$DV_LOG")"
dv_assert_eq completed "$(dv_xattr "$MNT/limits/after.txt" user.docvault.status)" \
	"the document after the bomb: status"
dv_docs_assert_from_text "the document after the bomb" text "$src/after.txt" "$MNT/limits/after.txt"
dv_assert_ok "the daemon runs on" dv_pid_alive "$DV_PID"
# shellcheck disable=SC2012 # ls is what is tested
dv_assert_eq "after.txt bomb.pdf" "$(ls "$MNT/limits" | tr '\n' ' ' | sed 's/ $//')" "ls of the mount works"
dv_assert_match "docvault status: nothing left in the queue" \
	'^processing: +0 ready, 0 waiting to retry, 0 in progress' \
	"$("$DOCVAULT_BIN" status -c "$DV_CONF" 2>&1)"
dv_done
