#!/bin/bash
# shellcheck disable=SC2016,SC2317
# git.sh - a git repository inside the vault: init, several commits (adds,
# edits, deletes, renames, a binary file, an executable bit), a branch and a
# merge, `git fsck --full`, `git gc --aggressive`, a clean `git status`, an
# intact log; a clone out of the vault and back in verifies too. git does
# what editors and builds do: lock files created with O_EXCL, renames over
# existing files, read-only objects, mmap of packs, many small files.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
export HOME=$DV_DIR/home GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_DATE='2024-01-01T00:00:00Z'
export GIT_COMMITTER_DATE=$GIT_AUTHOR_DATE
mkdir -p "$HOME"
repo=$MNT/repo
g() { git -C "$repo" -c user.name='Doc Vault' -c user.email='test@docvault.invalid' \
	-c init.defaultBranch=main -c gc.auto=0 "$@"; }

dv_note "git init and commits"
dv_assert_ok "git init" git -c init.defaultBranch=main init -q "$repo"
commit() { # MESSAGE
	g add -A && g commit -q -m "$1"
}
printf '# docvault\n' >"$repo/README.md"
mkdir -p "$repo/src/lib"
for i in $(seq 1 30); do
	printf 'int f%s(void) { return %s; }\n' "$i" "$i" >"$repo/src/lib/f$i.c"
done
dv_assert_ok "commit 1: 31 files" commit "first"
head -c 300000 /dev/urandom >"$repo/blob.bin"
printf '#!/bin/sh\nexit 0\n' >"$repo/run.sh"
chmod +x "$repo/run.sh"
dv_assert_ok "commit 2: a binary and an executable" commit "binary and script"
for i in $(seq 1 10); do printf '// edited\n' >>"$repo/src/lib/f$i.c"; done
g mv src/lib/f30.c src/f30-moved.c
g rm -q src/lib/f29.c
dv_assert_ok "commit 3: edits, a rename, a delete" commit "edit, move, delete"
dv_assert_ok "git branch feature" g checkout -q -b feature
printf 'feature work\n' >"$repo/feature.txt"
dv_assert_ok "commit 4 on the branch" commit "feature"
dv_assert_ok "git checkout main" g checkout -q main
printf 'main work\n' >>"$repo/README.md"
dv_assert_ok "commit 5 on main" commit "main"
dv_assert_ok "git merge feature" g merge -q --no-edit feature
g tag v1
head=$(g rev-parse HEAD)

dv_note "git fsck, git gc --aggressive, git status, git log"
out=$(g fsck --full --strict 2>&1)
rc=$?
dv_assert_eq 0 "$rc" "git fsck --full exits 0"
dv_assert_no_match "git fsck reports nothing bad" '^(error|missing|dangling|broken|bad)' "$out"
dv_assert_ok "git gc --aggressive" g gc -q --aggressive --prune=now
dv_assert_eq "$head" "$(g rev-parse HEAD 2>&1)" "HEAD unchanged by gc"
dv_assert_ok "git fsck --full after gc" g fsck --full --strict
dv_assert_match "gc left a pack" '\.pack$' "$(ls "$repo/.git/objects/pack" 2>&1)"
dv_assert_eq "" "$(g status --porcelain 2>&1)" "git status is clean"
dv_assert_eq 6 "$(g rev-list --count HEAD 2>&1)" "git log has every commit (5 and a merge)"
dv_assert_eq "first" "$(g log --format=%s --reverse 2>/dev/null | head -n 1)" "the first commit is there"
dv_assert_eq "100755" "$(g ls-files -s run.sh 2>&1 | cut -d' ' -f1)" "the executable bit is recorded"
dv_assert_ok "git verify-pack" bash -c 'git verify-pack "$1"/.git/objects/pack/*.idx' _ "$repo"

dv_note "clone out of the vault, clone back in"
dv_assert_ok "git clone MNT/repo out" git clone -q "$repo" "$DV_DIR/out"
dv_assert_eq "$head" "$(git -C "$DV_DIR/out" rev-parse HEAD 2>&1)" "the clone has the same HEAD"
dv_assert_ok "git clone back into the vault" git clone -q --no-local "$DV_DIR/out" "$MNT/again"
dv_assert_ok "git fsck of the clone in the vault" git -C "$MNT/again" fsck --full --strict
dv_assert_eq "" "$(git -C "$MNT/again" status --porcelain 2>&1)" "the clone in the vault is clean"
dv_assert_ok "worktree files equal" diff -r -x .git "$repo" "$MNT/again"
dv_done
