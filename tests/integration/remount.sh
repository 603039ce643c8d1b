#!/bin/bash
# shellcheck disable=SC2016
# remount.sh - everything survives unmount and mount: contents byte-exact,
# types, modes, owners, mtimes with nanoseconds, symlink targets, hard
# links, device numbers, user.* xattrs, and the inode numbers themselves
# (they are the database ids). A file written just before the unmount is
# there too; changes made after a remount survive the next one.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# Everything we can see of the vault from outside, in one text.
snapshot() {
	dv_manifest "$MNT"
	printf -- '-- inodes\n'
	(cd "$MNT" && find . -printf '%i %p\n' | LC_ALL=C sort -k2)
	printf -- '-- root\n'
	stat -c '%i %a %u:%g %.9Y' "$MNT"
	printf -- '-- content\n'
	(cd "$MNT" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
	printf -- '-- xattrs\n'
	dv_xattrs "$MNT"
	# The vault's own counters; a plain directory shares its file system.
	dv_mode_is_dir || stat -f -c 'inodes in use %c - %d' "$MNT"
}

dv_setup

dv_note "fill the vault"
dv_make_tree "$MNT/tree" hardlinks xattrs specials owners
dv_assert_ok "mkdir" mkdir "$MNT/tree/more"
dv_assert_ok "touch a file never written" touch "$MNT/tree/more/never-written"
dv_assert_ok "truncate -s 5000000 a new file" truncate -s 5000000 "$MNT/tree/more/sparse"
dv_assert_ok "chmod the root" chmod 0751 "$MNT"
dv_assert_ok "chown a directory" chown 1000:1000 "$MNT/tree/more"
dv_assert_ok "setfattr on the root" setfattr -n user.on-root -v root "$MNT"
# Written right before the unmount: close() means it will arrive.
dd if=/dev/urandom of="$MNT/last.bin" bs=1M count=16 status=none
sha_last=$(sha256sum <"$MNT/last.bin")
before=$(snapshot)
dv_assert_match "the snapshot sees the tree" 'linked-three' "$before"
if ! dv_mode_is_dir; then
	dv_assert_ok "docvault status" "$DOCVAULT_BIN" status -c "$DV_CONF"
fi

dv_note "unmount, mount, compare"
dv_remount
dv_assert_same_text "after the first remount" "$before" "$(snapshot)"
dv_assert_eq "$sha_last" "$(sha256sum <"$MNT/last.bin" 2>&1)" "the file written last is intact"
dv_assert_eq "user.on-root=0x726f6f74" "$(getfattr -h -e hex -n user.on-root "$MNT" 2>/dev/null | grep '^user')" \
	"the root's xattr survived"

dv_note "change things, unmount, mount, compare again"
dv_assert_ok "mv a directory" mv "$MNT/tree/a/b/c" "$MNT/tree/moved-c"
dv_assert_ok "rm one hard link" rm "$MNT/tree/a/linked"
dv_assert_ok "append to a new file" bash -c 'printf "appended\n" >>"$1"' _ "$MNT/tree/one.new"
dv_assert_ok "append to a file" bash -c 'cat "$1" >>"$2"' _ "$MNT/tree/a/4096" "$MNT/tree/script.sh"
dv_assert_ok "truncate a file" truncate -s 10 "$MNT/tree/a/b/4097"
dv_assert_ok "remove an xattr" setfattr -x user.color "$MNT/tree/one"
dv_assert_ok "set an xattr on a directory" setfattr -n user.new -v new "$MNT/tree/empty"
dv_assert_ok "ln -s" ln -s moved-c "$MNT/tree/to-moved"
dv_assert_ok "mknod" mknod "$MNT/tree/zero.dev" c 1 5
dv_assert_ok "chmod" chmod 0640 "$MNT/tree/a/4095"
dv_assert_ok "rm -rf a subtree" rm -rf "$MNT/tree/moved-c/d"
dv_assert_ok "touch -d" touch -d '2030-01-01 00:00:00.000000001' "$MNT/tree/moved-c"
before=$(snapshot)
dv_remount
dv_assert_same_text "after the second remount" "$before" "$(snapshot)"

dv_note "remove everything, remount: the vault is empty"
rm -rf "$MNT/tree" "$MNT/last.bin"
before=$(snapshot)
dv_remount
dv_assert_same_text "after the third remount" "$before" "$(snapshot)"
dv_assert_eq "" "$(ls -A "$MNT" 2>&1)" "the vault is empty"
dv_done
