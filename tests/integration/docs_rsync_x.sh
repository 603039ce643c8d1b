#!/bin/bash
# docs_rsync_x.sh - `rsync -aX` between two vaults and through a backup.
# Vault A ($MNT) holds documents with user tags and other user.* attributes;
# vault B ($MNT2, a second database, store and daemon: dv_vault2_setup) is
# empty. `rsync -aX A/ B/` exits 0 although it writes A's computed
# attributes (user.docvault.status, checksum, summary, ...) into B, which
# accepts and ignores them; B ends with the same files, user tags (both
# names) and other user.* attributes, and computes the same checksums,
# types and summaries itself; a second run exits 0 too. `rsync -aX A/ DIR/`
# makes a backup on the local disk (where the vault's attributes become
# plain ones) and `rsync -aX DIR/ B/restored/` brings it back into B with
# exit 0 and the tags restored; B keeps them across a remount.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
if dv_mode_is_dir; then
	dv_note "dir mode: every check here needs the daemon"
	dv_done
fi
dv_vault2_setup
A=$MNT/docs

# tags_of DIR: "path|tags|xdg tags" for every file below DIR, the tags sorted.
tags_of() {
	local f t x
	(cd "$1" && find . -type f | LC_ALL=C sort) | while IFS= read -r f; do
		t=$(dv_xattr "$1/$f" user.docvault.tags | tr ',' '\n' | LC_ALL=C sort | paste -sd, -)
		x=$(dv_xattr "$1/$f" user.xdg.tags | tr ',' '\n' | LC_ALL=C sort | paste -sd, -)
		printf '%s|%s|%s\n' "$f" "$t" "$x"
	done
}
# computed_of DIR: "path|checksum|mime|summary" for every file below DIR.
computed_of() {
	local f
	(cd "$1" && find . -type f | LC_ALL=C sort) | while IFS= read -r f; do
		printf '%s|%s|%s|%s\n' "$f" "$(dv_xattr "$1/$f" user.docvault.checksum)" \
			"$(dv_xattr "$1/$f" user.docvault.mime)" "$(dv_xattr "$1/$f" user.docvault.summary)"
	done
}
files_of() { find "$1" -type f | LC_ALL=C sort; }
# rsync_ok WHAT ARGS...: rsync exits 0 and complains about nothing.
rsync_ok() {
	local what=$1 out rc
	shift
	out=$(rsync "$@" 2>&1)
	rc=$?
	dv_assert_eq 0 "$rc" "$what: exit status"
	dv_assert_no_match "$what: no error or warning" '^rsync|error|failed|warning' "$out"
}

dv_note "vault A: documents, tags, attributes"
mkdir -p "$A/sub" "$A/more"
cat >"$A/report.txt" <<'EOT'
The annual report of the rowing club counts forty rowers and six boats.
Rowers trained on the river every morning from April to October.
The club bought two new boats and repaired the old boathouse roof.
EOT
printf '# Garden notes\n\nTomatoes need sun and regular watering.\n\nBasil grows well next to tomatoes.\n' >"$A/notes.md"
printf 'Dear Anna, the piano lessons move to Thursday evenings from next week.\n' >"$A/sub/letter.txt"
head -c 20000 /dev/urandom >"$A/more/data.bin"
: >"$A/more/empty.txt"
if ! {
	setfattr -n user.docvault.tags -v "finance,2026" "$A/report.txt" &&
	setfattr -n user.docvault.tags -v "+draft" "$A/notes.md" &&
	setfattr -n user.xdg.tags -v "personal,2025,urgent" "$A/sub/letter.txt" &&
	setfattr -n user.docvault.tags -v "raw" "$A/more/data.bin" &&
	setfattr -n user.docvault.tags -v "nothing,yet" "$A/more/empty.txt" &&
	setfattr -n user.color -v blue "$A/report.txt" &&
	setfattr -n user.project -v "piano lessons" "$A/sub/letter.txt" &&
	setfattr -n user.dir -v yes "$A/sub"
}; then
	dv_die "cannot set the attributes in vault A"
fi
mapfile -t afiles < <(files_of "$A")
dv_docs_assert_done "vault A processing" 90 "${afiles[@]}"
tags_a=$(tags_of "$A")
comp_a=$(computed_of "$A")
dv_note "A's tags:"$'\n'"$tags_a"
dv_assert_match "A has the tags" '^\./sub/letter\.txt\|2025,personal,urgent\|2025,personal,urgent$' "$tags_a"

dv_note "rsync -aX A/ B/"
rsync_ok "rsync -aX A/ B/" -aX "$A/" "$MNT2/docs/"
mapfile -t bfiles < <(files_of "$MNT2/docs")
dv_assert_eq "${#afiles[@]}" "${#bfiles[@]}" "B has as many files as A"
dv_assert_same_text "B has A's user tags" "$tags_a" "$(tags_of "$MNT2/docs")"
dv_assert_same_xattrs "B has A's other user.* attributes" "$A" "$MNT2/docs"
dv_assert_same_tree "B is a copy of A" "$A" "$MNT2/docs"
dv_docs_assert_done "vault B processing" 90 "${bfiles[@]}"
dv_assert_same_text "B computed the same checksums, types and summaries" "$comp_a" \
	"$(computed_of "$MNT2/docs")"
rsync_ok "rsync -aX A/ B/ again" -aX "$A/" "$MNT2/docs/"
dv_assert_same_text "B's tags after the second rsync" "$tags_a" "$(tags_of "$MNT2/docs")"

dv_note "a backup: rsync -aX A/ DIR/, then rsync -aX DIR/ B/restored/"
backup=$DV_DIR/backup
rsync_ok "rsync -aX A/ BACKUP/" -aX "$A/" "$backup/"
dv_assert_same_text "the backup has the tags as plain attributes" "$tags_a" "$(tags_of "$backup")"
dv_assert_eq "2026,finance" "$(dv_xattr "$backup/report.txt" user.docvault.tags | tr ',' '\n' |
	LC_ALL=C sort | paste -sd, -)" "the backup's user.docvault.tags of report.txt"
dv_assert_match "the backup holds the computed attributes too" '^xxh128:' \
	"$(dv_xattr "$backup/report.txt" user.docvault.checksum)"
rsync_ok "rsync -aX BACKUP/ B/restored/" -aX "$backup/" "$MNT2/restored/"
dv_assert_same_text "B/restored has the tags back" "$tags_a" "$(tags_of "$MNT2/restored")"
dv_assert_same_xattrs "B/restored has the other user.* attributes" "$A" "$MNT2/restored"
dv_assert_same_tree "B/restored is a copy of A" "$A" "$MNT2/restored"
mapfile -t rfiles < <(files_of "$MNT2/restored")
dv_docs_assert_done "B/restored processing" 90 "${rfiles[@]}"
dv_assert_same_text "B/restored: the same checksums, types and summaries as A" "$comp_a" \
	"$(computed_of "$MNT2/restored")"
dv_assert_eq "completed" "$(dv_xattr "$MNT2/restored/report.txt" user.docvault.status)" \
	"the restored status is B's own"

dv_note "B after a remount"
dv_vault2_remount
dv_assert_same_text "B's tags after its remount" "$tags_a" "$(tags_of "$MNT2/docs")"
dv_assert_same_text "B/restored's tags after the remount" "$tags_a" "$(tags_of "$MNT2/restored")"
dv_vault2_unmount
dv_done
