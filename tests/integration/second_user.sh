#!/bin/bash
# shellcheck disable=SC2016,SC2317
# second_user.sh - permissions for a second user on a mount with allow_other
# (the kernel's default_permissions on the uid, gid and mode the vault
# stores): reading a 0600 file and listing a 0700 directory of root's fail
# with EACCES; writing in a directory without w permission fails; in a 1777
# directory the user may create, and the new file is the user's; the sticky
# bit protects root's file there; in a setgid directory new entries take
# the directory's group; a non-owner's write clears set-user-ID. The user
# (dvitest) is created with useradd if missing and removed again at the
# end; the case runs as it with setpriv.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

USER_NAME=${DV_TEST_USER:-dvitest}
SG_GID=4242

# One second_user case at a time on this machine: they share the user.
exec {lockfd}>/run/lock/docvault-itest-user.lock
flock -w 600 "$lockfd" || { echo "cannot lock the test user" >&2; exit 1; }

DV_ALLOW_OTHER=true dv_setup

if ! id -u "$USER_NAME" >/dev/null 2>&1; then
	useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$USER_NAME" ||
		dv_die "useradd $USER_NAME failed"
	dv_on_exit "userdel $USER_NAME"
	dv_note "created the user $USER_NAME"
fi
uid=$(id -u "$USER_NAME")
gid=$(id -g "$USER_NAME")
as_user() { setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"; }
# as_user_sh SCRIPT ARGS...: a shell snippet run as the user.
as_user_sh() { as_user bash -c "$@"; }

dv_assert_ok "setpriv works (the user runs id)" as_user id
dv_assert_eq "$uid" "$(as_user id -u 2>&1)" "setpriv gives the user's uid"

dv_note "root's files"
printf 'top secret\n' >"$MNT/secret" && chmod 600 "$MNT/secret"
mkdir -m 700 "$MNT/private" && printf 'hidden\n' >"$MNT/private/f"
printf 'public\n' >"$MNT/public" && chmod 644 "$MNT/public"
mkdir -m 755 "$MNT/ro"
mkdir -m 1777 "$MNT/pub" && printf 'roots\n' >"$MNT/pub/rootfile"
mkdir "$MNT/sg" && chown "root:$SG_GID" "$MNT/sg" && chmod 2777 "$MNT/sg"
printf '#!/bin/sh\n' >"$MNT/setid" && chmod 6777 "$MNT/setid"
dv_assert_ok "chmod 755 the vault's root" chmod 755 "$MNT"

dv_note "what the user may not do"
dv_assert_eq "public" "$(as_user cat "$MNT/public" 2>&1)" "the user reads a 0644 file"
dv_assert_fails "the user reads a 0600 file" as_user cat "$MNT/secret"
dv_assert_match "... with EACCES" 'Permission denied' "$DV_OUT"
dv_assert_fails "the user lists a 0700 directory" as_user ls "$MNT/private"
dv_assert_match "... with EACCES" 'Permission denied' "$DV_OUT"
dv_assert_fails "the user reads a file in a 0700 directory" as_user cat "$MNT/private/f"
dv_assert_match "... with EACCES" 'Permission denied' "$DV_OUT"
dv_assert_fails "the user creates a file in a 0755 directory of root's" as_user touch "$MNT/ro/new"
dv_assert_match "... with EACCES" 'Permission denied' "$DV_OUT"
dv_assert_fails "the user makes a directory there" as_user mkdir "$MNT/ro/newdir"
dv_assert_match "... with EACCES" 'Permission denied' "$DV_OUT"
dv_assert_fails "the user writes a 0644 file of root's" as_user_sh 'printf x >>"$1"' _ "$MNT/public"
dv_assert_match "... with EACCES" 'Permission denied' "$DV_OUT"
dv_assert_fails "the user removes a file from root's directory" as_user rm -f "$MNT/public"
dv_assert_match "... with EACCES" 'Permission denied' "$DV_OUT"
dv_assert_fails "the user renames root's file" as_user mv "$MNT/public" "$MNT/pub/stolen"
dv_assert_match "... with EACCES" 'Permission denied' "$DV_OUT"
dv_assert_fails "the user chmods root's file" as_user chmod 666 "$MNT/public"
dv_assert_match "... with EPERM" 'Operation not permitted' "$DV_OUT"
dv_assert_fails "the user truncates root's file" as_user truncate -s 0 "$MNT/public"
dv_assert_match "... with EACCES" 'Permission denied' "$DV_OUT"
dv_assert_fails "the user sets an xattr on root's file" as_user setfattr -n user.x -v 1 "$MNT/public"
dv_assert_match "... with EACCES" 'Permission denied' "$DV_OUT"
dv_assert_eq "public" "$(cat "$MNT/public" 2>&1)" "root's file is untouched"

dv_note "a 1777 directory"
dv_assert_ok "the user creates a file in a 1777 directory" as_user touch "$MNT/pub/mine"
dv_assert_eq "$uid:$gid" "$(stat -c %u:%g "$MNT/pub/mine" 2>&1)" "the new file has the user's uid:gid"
dv_assert_ok "the user writes it" as_user_sh 'printf "by the user\n" >"$1"' _ "$MNT/pub/mine"
dv_assert_eq "by the user" "$(as_user cat "$MNT/pub/mine" 2>&1)" "the user reads it back"
dv_assert_eq "by the user" "$(cat "$MNT/pub/mine" 2>&1)" "root reads it"
dv_assert_ok "the user makes a directory there" as_user mkdir "$MNT/pub/mydir"
dv_assert_eq "$uid:$gid" "$(stat -c %u:%g "$MNT/pub/mydir" 2>&1)" "the new directory has the user's uid:gid"
dv_assert_ok "the user chmods the own file" as_user chmod 600 "$MNT/pub/mine"
dv_assert_eq "600" "$(stat -c %a "$MNT/pub/mine" 2>&1)" "the mode changed"
dv_assert_ok "the user sets an xattr on the own file" as_user setfattr -n user.mine -v 1 "$MNT/pub/mine"
dv_assert_fails "the user gives the own file away" as_user chown 0 "$MNT/pub/mine"
dv_assert_match "... with EPERM" 'Operation not permitted' "$DV_OUT"
dv_assert_fails "the user removes root's file in the sticky directory" as_user rm -f "$MNT/pub/rootfile"
dv_assert_match "... with EPERM" 'Operation not permitted' "$DV_OUT"
dv_assert_ok "the user renames the own file" as_user mv "$MNT/pub/mine" "$MNT/pub/mine2"
dv_assert_ok "the user removes the own file" as_user rm "$MNT/pub/mine2"
dv_assert_ok "the user removes the own directory" as_user rmdir "$MNT/pub/mydir"

dv_note "a setgid directory"
dv_assert_ok "the user creates a file in a setgid directory" as_user touch "$MNT/sg/f"
dv_assert_eq "$uid:$SG_GID" "$(stat -c %u:%g "$MNT/sg/f" 2>&1)" "the new file takes the directory's gid"
dv_assert_ok "the user makes a directory there" as_user mkdir "$MNT/sg/d"
dv_assert_eq "$uid:$SG_GID" "$(stat -c %u:%g "$MNT/sg/d" 2>&1)" "the new directory takes the directory's gid"
dv_assert_match "the new directory is setgid too" '^2[0-7]{3}$' "$(stat -c %a "$MNT/sg/d" 2>&1)"

dv_note "set-id bits are cleared when a non-owner writes"
dv_assert_ok "the user appends to a 6777 file of root's" as_user_sh 'printf "echo\n" >>"$1"' _ "$MNT/setid"
dv_assert_eq "777" "$(stat -c %a "$MNT/setid" 2>&1)" "set-user-ID and set-group-ID are cleared"
dv_done
