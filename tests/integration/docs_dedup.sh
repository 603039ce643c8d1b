#!/bin/bash
# docs_dedup.sh - identical content is stored once: the same text under
# three names in two directories adds one object to the store (files below
# the local store's directory, keys in the bucket), all three show the same
# user.docvault.checksum; `docvault status` reports the logical bytes, the
# bytes stored and the bytes dedup saved; `docvault duplicates -c CONF`
# lists the group with its three paths, and with a PATH only those under
# it; a hard link adds no copy, a removed copy leaves the group; everything
# reads back byte-exact from the store after a remount with an empty cache.
# A blob row whose SHA-256 disagrees with the content under its keyed hash
# (what a crafted collision looks like) makes the next copy be stored apart,
# named by its SHA-256, with a loud log line.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
if dv_mode_is_dir; then
	dv_note "dir mode: every check here needs the daemon"
	dv_done
fi

src=$DV_DIR/src
mkdir "$src"
# About 300 KiB of text, unlike anything another run stores.
{
	printf 'Dedup test %s %s.\n' "$$" "$(date +%s.%N)"
	for i in $(seq 1 3000); do
		printf 'Paragraph %d: the quarterly report lists revenue, costs and the forecast for the region.\n' "$i"
	done
} >"$src/report.txt"
printf 'A different document %s: minutes of the budget meeting.\n' "$(date +%s.%N)" >"$src/other.txt"
size=$(stat -c %s "$src/report.txt")
osize=$(stat -c %s "$src/other.txt")
sum=xxh128:$(xxhsum -H2 "$src/report.txt" 2>/dev/null | cut -d' ' -f1)

dv_sync "before the copies"
n0=$(dv_store_objects) || dv_die "cannot count the objects in the store"
dv_note "the store holds $n0 objects"

dv_note "the same content under three names, in two directories"
mkdir "$MNT/a" "$MNT/b"
dv_assert_ok "cp as a/report.txt" cp "$src/report.txt" "$MNT/a/report.txt"
dv_assert_ok "cp as a/copy of report.txt" cp "$src/report.txt" "$MNT/a/copy of report.txt"
dv_assert_ok "cp as b/report-final.txt" cp "$src/report.txt" "$MNT/b/report-final.txt"
dv_assert_ok "cp of another document as b/other.txt" cp "$src/other.txt" "$MNT/b/other.txt"
copies=("$MNT/a/report.txt" "$MNT/a/copy of report.txt" "$MNT/b/report-final.txt")
dv_docs_assert_done "processing" 90 "${copies[@]}" "$MNT/b/other.txt"
dv_sync "after the copies"
for f in "${copies[@]}"; do
	dv_assert_eq "$sum" "$(dv_xattr "$f" user.docvault.checksum)" "${f#"$MNT"/}: the checksum of the content"
	dv_assert_eq completed "$(dv_xattr "$f" user.docvault.status)" "${f#"$MNT"/}: status"
done
n1=$(dv_store_objects) || dv_die "cannot count the objects in the store"
dv_assert_eq $((n0 + 2)) "$n1" "the store holds one more object per distinct content (2), not per file (4)"

dv_note "docvault status"
out=$("$DOCVAULT_BIN" status -c "$DV_CONF" 2>&1)
printf '%s\n' "$out" | sed 's/^/     | /'
dv_assert_match "status: logical bytes" "^bytes: +$((3 * size + osize))\$" "$out"
dv_assert_match "status: bytes stored, after dedup" "^bytes stored: +$((size + osize)) \\(2 distinct contents" "$out"
dv_assert_match "status: the bytes saved by dedup" "(sav[a-z]*[^0-9]*$((2 * size))([^0-9]|\$))|(^|[^0-9])$((2 * size))[^0-9].*sav" "$out"

dv_note "docvault duplicates"
group=$(printf '%s  %s bytes, 3 copies\n/a/copy of report.txt\n/a/report.txt\n/b/report-final.txt' "$sum" "$size")
dv_assert_ok "docvault duplicates -c CONF" "$DOCVAULT_BIN" duplicates -c "$DV_CONF"
dv_assert_same_text "duplicates: one group, its three paths" "$group" \
	"$("$DOCVAULT_BIN" duplicates -c "$DV_CONF" 2>&1)"
group=$(printf '%s  %s bytes, 2 copies\n%s\n%s' "$sum" "$size" "$MNT/a/copy of report.txt" "$MNT/a/report.txt")
dv_assert_same_text "duplicates MNT/a: the two copies under it, with the mount's paths" "$group" \
	"$("$DOCVAULT_BIN" duplicates -c "$DV_CONF" "$MNT/a" 2>&1)"
dv_assert_same_text "duplicates MNT/b: one copy under it is no group" "" \
	"$("$DOCVAULT_BIN" duplicates -c "$DV_CONF" "$MNT/b" 2>&1)"
group=$(printf '%s  %s bytes, 2 copies\n/a/copy of report.txt\n/a/report.txt' "$sum" "$size")
dv_assert_same_text "duplicates /a (a path in the vault)" "$group" \
	"$("$DOCVAULT_BIN" duplicates -c "$DV_CONF" /a 2>&1)"

dv_note "a hard link is the same document; a removed copy leaves the group"
dv_assert_ok "ln a/report.txt b/link.txt" ln "$MNT/a/report.txt" "$MNT/b/link.txt"
dv_assert_match "duplicates after ln: still 3 copies" "^$sum  $size bytes, 3 copies\$" \
	"$("$DOCVAULT_BIN" duplicates -c "$DV_CONF" 2>&1)"
dv_assert_ok "rm b/report-final.txt" rm "$MNT/b/report-final.txt"
out=$("$DOCVAULT_BIN" duplicates -c "$DV_CONF" 2>&1)
dv_assert_match "duplicates after rm: 2 copies" "^$sum  $size bytes, 2 copies\$" "$out"
dv_assert_no_match "duplicates after rm: the removed path is gone" 'report-final' "$out"
dv_sync "after rm"
dv_assert_eq "$n1" "$(dv_store_objects)" "the store still holds the shared content once"

dv_note "a blob row whose SHA-256 disagrees (what a crafted collision of the keyed hash looks like)"
n1=$(dv_store_objects) || dv_die "cannot count the objects in the store"
dv_assert_eq 1 "$(dv_psql "UPDATE dv_blobs SET sha256 = sha256(sha256) WHERE size = $size RETURNING 1")" \
	"the blob row of the report's content is altered"
dv_assert_ok "cp as b/collision.txt" cp "$src/report.txt" "$MNT/b/collision.txt"
dv_sync "after the copy over the altered row"
dv_assert_eq $((n1 + 1)) "$(dv_store_objects)" "the content is stored apart, not deduplicated against the other row"
dv_assert_eq 2 "$(dv_psql "SELECT count(*) FROM dv_blobs WHERE size = $size")" "two blob rows for the two 'contents'"
dv_assert_match "the daemon says so loudly" 'SECURITY: keyed hash [0-9a-f]{32} .*stored apart as [0-9a-f]{32}' \
	"$(cat "$DV_LOG")"
dv_assert_eq "$sum" "$(dv_xattr "$MNT/b/collision.txt" user.docvault.checksum)" "b/collision.txt: the checksum of its content"
dv_assert_ok "cp as b/collision2.txt" cp "$src/report.txt" "$MNT/b/collision2.txt"
dv_sync "after a second copy"
dv_assert_eq $((n1 + 1)) "$(dv_store_objects)" "a second copy deduplicates against the copy stored apart"

dv_note "read back from the store"
dv_remount_fresh_cache
for f in "$MNT/a/report.txt" "$MNT/a/copy of report.txt" "$MNT/b/link.txt" "$MNT/b/collision.txt" \
	"$MNT/b/collision2.txt"; do
	dv_assert_same "${f#"$MNT"/} reads back byte-exact" "$src/report.txt" "$f"
done
dv_assert_same "b/other.txt reads back byte-exact" "$src/other.txt" "$MNT/b/other.txt"
dv_done
