#!/bin/bash
# shellcheck disable=SC2016
# big_io.sh - large sequential I/O: a 64 MiB file written with dd reads back
# with the same checksum (sha256sum and xxhsum -H2), also after the kernel's
# page cache for it is dropped, with other block sizes, after an overwrite
# in the middle and an append; and name lengths from the shell: a 255-byte
# name works, a 300-byte name gives "File name too long".
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

sums() { # FILE: "sha256 xxh128" of FILE
	printf '%s %s\n' "$(sha256sum <"$1" | cut -d' ' -f1)" "$(xxhsum -H2 <"$1" | cut -d' ' -f1)"
}

dv_setup
src=$DV_DIR/src.bin
dv_random_file "$src" $((64 << 20))
want=$(sums "$src")

dv_note "write 64 MiB with dd, read it back"
t0=$(date +%s.%N)
dv_assert_ok "dd of=MNT/big bs=1M" dd if="$src" of="$MNT/big" bs=1M status=none
dv_note "write: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f MiB/s", 64 / (b - a) }')"
dv_assert_eq $((64 << 20)) "$(stat -c %s "$MNT/big" 2>&1)" "size is 64 MiB"
dv_assert_eq "$want" "$(sums "$MNT/big")" "sha256 and xxh128 match"
dd if="$MNT/big" iflag=nocache count=0 status=none 2>/dev/null
dd if="$MNT/big" of="$DV_DIR/tmp/4k" bs=4k status=none
dv_assert_eq "$want" "$(sums "$DV_DIR/tmp/4k")" "read with 4 KiB blocks after dropping the page cache"
dd if="$MNT/big" of="$DV_DIR/tmp/odd" bs=7777 status=none
dv_assert_eq "$want" "$(sums "$DV_DIR/tmp/odd")" "read with odd 7777-byte blocks"
rm -f "$DV_DIR/tmp/4k" "$DV_DIR/tmp/odd"
dv_assert_same "cmp with the source" "$src" "$MNT/big"

dv_note "overwrite in the middle, append, copy within the vault"
dv_random_file "$DV_DIR/patch" 3000000
for f in "$src" "$MNT/big"; do
	dd if="$DV_DIR/patch" of="$f" bs=1000 seek=12345 conv=notrunc status=none ||
		dv_fail "dd conv=notrunc into $f"
	cat "$DV_DIR/patch" >>"$f" || dv_fail "append to $f"
done
dv_assert_same "after overwrite and append" "$src" "$MNT/big"
dv_assert_ok "cp within the vault" cp "$MNT/big" "$MNT/big2"
dv_assert_same "the copy" "$src" "$MNT/big2"
dv_assert_ok "a second identical file (dedup)" cp "$src" "$MNT/big3"
dv_assert_same "the second identical file" "$src" "$MNT/big3"
rm -f "$MNT/big2"
dv_assert_same "the other copy survives removing one" "$src" "$MNT/big3"
dv_assert_ok "write 64 MiB with one 64 MiB block" \
	dd if="$src" of="$MNT/onebig" bs=64M count=1 iflag=fullblock status=none
dv_assert_ok "read with one 64 MiB block" \
	bash -c 'cmp <(dd if="$1" bs=64M count=1 status=none) <(head -c $((64 << 20)) "$2")' _ "$MNT/onebig" "$src"

dv_note "names from the shell"
n255=$(printf 'n%.0s' $(seq 1 255))
n300=$(printf 'o%.0s' $(seq 1 300))
dv_assert_ok "touch a 255-byte name" touch "$MNT/$n255"
dv_assert_fails "touch a 300-byte name" touch "$MNT/$n300"
dv_assert_match "... says so" 'File name too long' "$DV_OUT"
dv_assert_fails "mkdir a 300-byte name" mkdir "$MNT/$n300"
dv_assert_match "... says so" 'File name too long' "$DV_OUT"
dv_done
