#!/bin/bash
# shellcheck disable=SC2016
# tar.sh - `tar x` of an archive into the vault (hard links, symlinks, FIFO,
# device nodes, owners, modes, nanosecond mtimes, user.* xattrs), compared
# with the source tree and with `tar --compare`; then `tar c` from the vault
# and `tar x` of that archive outside gives the same tree again.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
src=$DV_DIR/src
dv_make_tree "$src" hardlinks xattrs specials owners
xa=(--xattrs --xattrs-include='user.*' --format=posix)

dv_note "tar c of the source, tar x into the vault"
dv_assert_ok "tar c SRC" tar "${xa[@]}" -cf "$DV_DIR/src.tar" -C "$src" .
mkdir "$MNT/x"
dv_assert_ok "tar x into MNT/x" tar "${xa[@]}" -xpf "$DV_DIR/src.tar" -C "$MNT/x"
dv_assert_same_tree "tar x" "$src" "$MNT/x"
dv_assert_same_xattrs "tar x" "$src" "$MNT/x"
dv_assert_ok "tar --compare against the vault" tar "${xa[@]}" -df "$DV_DIR/src.tar" -C "$MNT/x"

dv_note "tar x again over the existing files"
dv_assert_ok "tar x over MNT/x" tar "${xa[@]}" -xpf "$DV_DIR/src.tar" -C "$MNT/x"
dv_assert_same_tree "tar x over existing files" "$src" "$MNT/x"

dv_note "tar c from the vault, tar x outside"
dv_assert_ok "tar c MNT/x" tar "${xa[@]}" -cf "$DV_DIR/vault.tar" -C "$MNT/x" .
# Names only: which of several hard links tar stores as the file and which
# as links depends on the directory order, the file system's business.
dv_assert_same_text "tar t lists the same names for both archives" \
	"$(tar -tf "$DV_DIR/src.tar" | LC_ALL=C sort)" "$(tar -tf "$DV_DIR/vault.tar" | LC_ALL=C sort)"
mkdir "$DV_DIR/back"
dv_assert_ok "tar x outside" tar "${xa[@]}" -xpf "$DV_DIR/vault.tar" -C "$DV_DIR/back"
dv_assert_same_tree "tar c from the vault" "$src" "$DV_DIR/back"
dv_assert_same_xattrs "tar c from the vault" "$src" "$DV_DIR/back"

dv_note "a compressed archive streamed through a pipe"
mkdir "$MNT/z"
dv_assert_ok "tar cz | tar xz" bash -c 'set -o pipefail; tar --format=posix -czf - -C "$1" . | tar -xzpf - -C "$2"' _ "$src" "$MNT/z"
dv_assert_same_tree "tar cz | tar xz" "$src" "$MNT/z"
dv_done
