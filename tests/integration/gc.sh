#!/bin/bash
# gc.sh - `docvault gc` deletes from the store exactly the contents no file
# refers to any more: a removed file's and a replaced version's go, a
# content another file still shares stays. It refuses while the vault is
# mounted (naming the mount) and a mount is refused while gc holds the
# vault's gc lock (as is a second gc); --dry-run deletes nothing; --sweep
# deletes a stored object under blobs/ that no row names and leaves a key
# docvault would not have made. Afterwards everything left reads back
# byte-exact from the store (remount with an empty cache), and a new file
# with the content of a collected blob is stored again, not lost to a
# stale dedup row.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
if dv_mode_is_dir; then
	dv_note "dir mode: every check here needs the daemon"
	dv_done
fi

objects() { dv_store_objects || dv_die "cannot count the objects in the store"; }
gc() { timeout 120 "$DOCVAULT_BIN" gc -c "$DV_CONF" "$@"; }
# gc_ok WHAT ARGS...: gc with ARGS exits 0; its output in $out
gc_ok() {
	local what=$1
	shift
	out=$(gc "$@" 2>&1)
	dv_assert_eq 0 $? "$what: exit 0" || printf '%s\n' "$out"
}

src=$DV_DIR/src
mkdir "$src"
dv_random_file "$src/keep.bin" 200000
dv_random_file "$src/gone.bin" 300000
dv_random_file "$src/dup.bin" 150000
printf 'version one %s\n' "$(date +%s.%N)" >"$src/v1.txt"
printf 'version two %s\n' "$(date +%s.%N)" >"$src/v2.txt"

n0=$(objects)
dv_note "five contents: keep, gone, dup (under two names), two versions of ver.txt"
cp "$src/keep.bin" "$MNT/keep.bin"
cp "$src/gone.bin" "$MNT/gone.bin"
cp "$src/dup.bin" "$MNT/dup1"
cp "$src/dup.bin" "$MNT/dup2"
cp "$src/v1.txt" "$MNT/ver.txt"
dv_sync "first versions"
cp "$src/v2.txt" "$MNT/ver.txt"
dv_sync "second version"
dv_assert_eq $((n0 + 5)) "$(objects)" "the store holds five more objects"

rm "$MNT/gone.bin" "$MNT/dup1"
dv_sync "after the removals"

dv_note "gc while mounted"
dv_assert_fails "gc refuses while the vault is mounted" gc
dv_assert_match "... naming the mount" "mounted by .* pid $DV_PID" "$DV_OUT"
dv_assert_match "... and saying what to do" "unmount" "$DV_OUT"
dv_assert_eq $((n0 + 5)) "$(objects)" "nothing was deleted"

dv_unmount
gc_ok "gc --dry-run" --dry-run
dv_assert_match "... counts the removed file's and the old version's contents" \
	"would delete 2 unreferenced blobs \\($((300000 + $(stat -c %s "$src/v1.txt")))" "$out"
dv_assert_eq $((n0 + 5)) "$(objects)" "... and deletes nothing"

gc_ok "gc"
dv_assert_match "... says what it deleted" "deleted 2 unreferenced blobs" "$out"
dv_assert_eq $((n0 + 3)) "$(objects)" "two objects left the store"
out=$("$DOCVAULT_BIN" status -c "$DV_CONF" 2>&1)
dv_assert_match "status counts three contents" "\\(3 distinct contents" "$out"
gc_ok "a second gc"
dv_assert_match "a second gc finds nothing" "deleted 0 unreferenced blobs" "$out"

dv_note "--sweep: an object no row names"
stray=abcd$(printf '%028d' 0)
if [[ $DV_TEST_STORE == s3 ]]; then
	dv_s3 PUT "$DV_BUCKET/blobs/ab/cd/$stray" --data-binary @"$src/v1.txt" >/dev/null ||
		dv_die "cannot put a stray object"
	dv_s3 PUT "$DV_BUCKET/blobs/ab/cd/notours" --data-binary @"$src/v1.txt" >/dev/null ||
		dv_die "cannot put a foreign object"
else
	mkdir -p "$DV_DIR/blobs/blobs/ab/cd"
	cp "$src/v1.txt" "$DV_DIR/blobs/blobs/ab/cd/$stray"
	cp "$src/v1.txt" "$DV_DIR/blobs/blobs/ab/cd/notours"
fi
dv_assert_eq $((n0 + 5)) "$(objects)" "two objects put beside docvault's"
gc_ok "gc --sweep --dry-run" --sweep --dry-run
dv_assert_match "--sweep --dry-run finds the stray object" "would sweep 1 stored objects" "$out"
dv_assert_eq $((n0 + 5)) "$(objects)" "... and deletes nothing"
gc_ok "gc --sweep" --sweep
dv_assert_match "--sweep deletes it" "swept 1 stored objects" "$out"
dv_assert_eq $((n0 + 4)) "$(objects)" "... and leaves the key docvault would not make"

dv_note "the gc lock"
mapfile -t pgargs < <(dv_pg_args)
psql -X -q -At "${pgargs[@]}" -d "$DV_DB" \
	-c "SELECT pg_advisory_lock(7237970109966541172)" -c "SELECT pg_sleep(6)" >/dev/null &
holder=$!
sleep 1
dv_assert_fails "a second gc is refused" gc
dv_assert_match "... it says another gc runs" "another docvault gc is running" "$DV_OUT"
dv_assert_fails "a mount is refused while gc runs" \
	timeout 60 "$DOCVAULT_BIN" mount -c "$DV_CONF" "$MNT" -f
dv_assert_match "... it says so" "docvault gc is running on this vault" "$DV_OUT"
wait "$holder"

dv_remount_fresh_cache
dv_assert_same "keep.bin reads back from the store" "$src/keep.bin" "$MNT/keep.bin"
dv_assert_same "the shared content reads back" "$src/dup.bin" "$MNT/dup2"
dv_assert_same "the current version reads back" "$src/v2.txt" "$MNT/ver.txt"
[[ ! -e $MNT/gone.bin && ! -e $MNT/dup1 ]]
dv_assert_eq 0 $? "the removed names stay removed"

dv_note "a collected content written again is stored again"
cp "$src/gone.bin" "$MNT/again.bin"
cp "$src/v1.txt" "$MNT/ver1.txt"
dv_sync "the old contents again"
dv_assert_eq $((n0 + 6)) "$(objects)" "two objects back in the store"
dv_remount_fresh_cache
dv_assert_same "again.bin reads back from the store" "$src/gone.bin" "$MNT/again.bin"
dv_assert_same "ver1.txt reads back from the store" "$src/v1.txt" "$MNT/ver1.txt"

dv_done
