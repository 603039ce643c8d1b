#!/bin/bash
# cp_a.sh - `cp -a` of a tree into the vault and back out: contents
# (diff -r), types, modes, owners, sizes, link counts, mtimes with
# nanoseconds, device numbers, symlink targets and user.* xattrs all survive.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
src=$DV_DIR/src
dv_make_tree "$src" hardlinks xattrs specials owners

dv_note "cp -a into the vault"
dv_assert_ok "cp -a SRC MNT/copy" cp -a "$src" "$MNT/copy"
dv_assert_same_tree "in the vault" "$src" "$MNT/copy"
dv_assert_same_xattrs "in the vault" "$src" "$MNT/copy"

dv_note "cp -a again over the existing copy (overwrites in place)"
dv_assert_ok "cp -a SRC/. MNT/copy" cp -a "$src/." "$MNT/copy"
dv_assert_same_tree "after the second copy" "$src" "$MNT/copy"

dv_note "cp -a back out of the vault"
dv_assert_ok "cp -a MNT/copy BACK" cp -a "$MNT/copy" "$DV_DIR/back"
dv_assert_same_tree "copied back out" "$src" "$DV_DIR/back"
dv_assert_same_xattrs "copied back out" "$src" "$DV_DIR/back"

dv_note "cp -a within the vault, then rm -rf"
dv_assert_ok "cp -a MNT/copy MNT/copy2" cp -a "$MNT/copy" "$MNT/copy2"
dv_assert_same_tree "copied within the vault" "$src" "$MNT/copy2"
dv_assert_ok "rm -rf MNT/copy2" rm -rf "$MNT/copy2"
dv_assert_eq "copy" "$(ls -A "$MNT")" "only the first copy is left"
dv_done
