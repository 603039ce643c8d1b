#!/bin/bash
# fsck.sh - `docvault fsck` on a mounted vault: a healthy vault (files,
# a folder, a hard link, a symlink, a FIFO, a file unlinked while open and
# truncated) has no problems, with and without --store. Each kind of damage
# made by hand in PostgreSQL or in the store is found, named by inode and
# content, and makes it exit 1: a reference count that disagrees with the
# files naming the content, a link count that disagrees with the names, a
# total that disagrees with the tables (and --repair-counters fixes it), a
# content missing from the store, a stored object of another size. An
# object no row names is counted, not reported.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
if dv_mode_is_dir; then
	dv_note "dir mode: every check here needs the daemon"
	dv_done
fi

fsck() { timeout 120 "$DOCVAULT_BIN" fsck -c "$DV_CONF" "$@"; }
content_of() { dv_psql "SELECT encode(content, 'hex') FROM dv_inodes WHERE id = $1"; }
object_path() { printf 'blobs/%s/%s/%s' "${1:0:2}" "${1:2:2}" "$1"; }

src=$DV_DIR/src
mkdir "$src"
dv_random_file "$src/a.bin" 100000
dv_random_file "$src/b.bin" 70000
cp "$src/a.bin" "$MNT/a.bin"
cp "$src/b.bin" "$MNT/b.bin"
mkdir "$MNT/d"
cp "$src/a.bin" "$MNT/d/a-copy.bin"
ln "$MNT/b.bin" "$MNT/d/b-link"
ln -s ../a.bin "$MNT/d/sym"
mkfifo "$MNT/d/fifo"
# unlinked while open, then truncated: its bytes leave the totals with its name
exec 7<>"$MNT/d/open.bin"
printf 'some bytes' >&7
rm "$MNT/d/open.bin"
truncate -s 5000 /proc/self/fd/7 || dv_fail "truncate of the file unlinked while open"
dv_sync "the tree"

dv_assert_ok "fsck of a healthy mounted vault" fsck
out=$(fsck --store 2>&1)
dv_assert_eq 0 $? "fsck --store exits 0"
dv_assert_match "... every content is in the store" "store: ([0-9]+) contents in the database, \\1 objects; 0 missing or damaged, 0 not named" "$out"
exec 7>&-

ino_a=$(stat -c %i "$MNT/a.bin")
ino_b=$(stat -c %i "$MNT/b.bin")
hex_a=$(content_of "$ino_a")
hex_b=$(content_of "$ino_b")
dv_assert_match "a.bin has a content" '^[0-9a-f]{32}$' "$hex_a"

dv_note "a reference count off by one"
dv_psql "UPDATE dv_blobs SET refcount = refcount + 1 WHERE hash = decode('$hex_a', 'hex')" >/dev/null
dv_assert_fails "fsck finds it" fsck
dv_assert_match "... naming the content, its count and an inode" \
	"blob $hex_a: reference count 3, but 2 inode\\(s\\) name it \\(e.g. inode $ino_a\\)" "$DV_OUT"
dv_psql "UPDATE dv_blobs SET refcount = refcount - 1 WHERE hash = decode('$hex_a', 'hex')" >/dev/null

dv_note "a link count that disagrees with the names"
dv_psql "UPDATE dv_inodes SET nlink = 5 WHERE id = $ino_a" >/dev/null
dv_assert_fails "fsck finds it" fsck
dv_assert_match "... naming the inode" "inode $ino_a \\(file\\): link count 5, but 1 name\\(s\\)" "$DV_OUT"
dv_psql "UPDATE dv_inodes SET nlink = 1 WHERE id = $ino_a" >/dev/null
dv_assert_ok "fsck is clean again" fsck

dv_note "a total that disagrees with the tables"
dv_psql "UPDATE dv_counters SET files = files + 3, bytes = bytes - 10 WHERE shard = 5" >/dev/null
dv_assert_fails "fsck finds it" fsck
dv_assert_match "... the documents" "counter documents: [0-9]+ recorded" "$DV_OUT"
dv_assert_match "... and the bytes" "counter bytes: [0-9]+ recorded" "$DV_OUT"
dv_assert_ok "fsck --repair-counters" fsck --repair-counters
dv_assert_ok "fsck is clean after the repair" fsck
out=$("$DOCVAULT_BIN" status -c "$DV_CONF" 2>&1)
dv_assert_match "status counts 3 documents again" "documents: +3$" "$out"

dv_note "damage in the store"
if [[ $DV_TEST_STORE == s3 ]]; then
	dv_s3 DELETE "$DV_BUCKET/$(object_path "$hex_a")" >/dev/null || dv_die "cannot delete an object"
	dv_s3 PUT "$DV_BUCKET/$(object_path "$hex_b")" --data-binary @"$src/a.bin" >/dev/null ||
		dv_die "cannot replace an object"
	dv_s3 PUT "$DV_BUCKET/blobs/ab/cd/abcd$(printf '%028d' 0)" --data-binary @"$src/b.bin" \
		>/dev/null || dv_die "cannot put a stray object"
else
	rm "$DV_DIR/blobs/$(object_path "$hex_a")" || dv_die "cannot delete an object"
	truncate -s 1000 "$DV_DIR/blobs/$(object_path "$hex_b")" || dv_die "cannot truncate an object"
	mkdir -p "$DV_DIR/blobs/blobs/ab/cd"
	cp "$src/b.bin" "$DV_DIR/blobs/blobs/ab/cd/abcd$(printf '%028d' 0)"
fi
dv_assert_ok "fsck without --store does not look there" fsck
dv_assert_fails "fsck --store finds it" fsck --store
dv_assert_match "... a missing content, with its inode" \
	"content $hex_a \\(100000 bytes, inode $ino_a\\): missing from the store" "$DV_OUT"
dv_assert_match "... an object of another size" \
	"content $hex_b \\(70000 bytes, inode $ino_b\\): the stored object has another size" "$DV_OUT"
dv_assert_match "... and counts the object no row names" "1 not named by the database" "$DV_OUT"
dv_assert_match "... two problems" "^2 problem\\(s\\) found" "$DV_OUT"

dv_done
