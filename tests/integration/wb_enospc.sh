#!/bin/bash
# shellcheck disable=SC2016
# wb_enospc.sh - a cache directory on a tiny filesystem (a 64 MiB ext4
# image, loop-mounted; the store is elsewhere) filled up: a writer of one
# file bigger than the filesystem gets ENOSPC ("No space left on device",
# not EIO) within bounded time ([cache] full_wait = 1), the daemon does not
# crash, the files committed before stay byte-exact, and once the big file
# is deleted (and `docvault sync` has let its queued part go) new writes
# work again and are committed. At the end a mount on an empty cache
# directory (on the normal disk) reads everything from the store.
# [cache] size = 1G and reserve = 4M: the filesystem is the limit.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
# Document processing (extraction, summaries) is not what this case tests,
# and a job per committed file would only slow it down: off.
dv_mode_is_dir || dv_conf_set processing workers 0
if dv_mode_is_dir; then
	dv_note "dir mode: every check here needs the daemon"
	dv_done
fi

tiny=$DV_DIR/tiny
img=$DV_DIR/tiny.img
mkdir "$tiny"
dv_assert_ok "a 64 MiB ext4 image" bash -c 'truncate -s 64M "$1" && mkfs.ext4 -q -F -m 0 "$1"' _ "$img" ||
	dv_die "cannot make the filesystem image"
dv_assert_ok "mount -o loop on $tiny" mount -o loop "$img" "$tiny" || dv_die "cannot mount the image"
# Lazily: the daemon may still hold it when a failed case cleans up.
dv_on_exit "umount -l '$tiny' 2>/dev/null"
mkdir "$tiny/cache"
dv_unmount
dv_conf_set cache dir "$tiny/cache"
dv_conf_set cache size 1G # the filesystem is the limit, not the size
dv_conf_set cache reserve 4M # a reserve to keep free: clean content is evicted for it
dv_conf_set cache full_wait 1
dv_mount

dv_note "committed before the filesystem fills"
dv_make_mixed_tree "$DV_DIR/src1" "$DV_DIR/list1" 40 2 2
dv_assert_ok "cp -a of 40 small files and two of 2 MiB" cp -a "$DV_DIR/src1" "$MNT/before"
dv_sync "before the fill"

dv_note "one file bigger than the filesystem"
t0=$SECONDS
out=$(timeout 120 dd if=/dev/urandom of="$MNT/big" bs=1M count=100 2>&1)
rc=$?
printf '     > %s\n' "${out//$'\n'/$'\n     > '}"
if ((rc == 124)); then
	dv_fail "dd of 100 MiB into a 64 MiB cache still runs after 120 s (full_wait is 1 s)"
elif ((rc == 0)); then
	dv_fail "dd of 100 MiB into a 64 MiB cache succeeded: where did it go?"
else
	dv_pass "dd of 100 MiB into a 64 MiB cache fails (exit $rc after $((SECONDS - t0)) s)"
fi
dv_assert_match "the writer gets ENOSPC" 'No space left on device' "$out"
dv_assert_no_match "... not EIO" 'Input/output error' "$out"
dv_assert_ok "the daemon is alive" dv_pid_alive "$DV_PID"
dv_assert_ok "the files committed before are byte-exact" diff -r "$DV_DIR/src1" "$MNT/before"

dv_note "space freed: writes work again"
dv_assert_ok "rm the big file" rm -f "$MNT/big"
# What dd wrote before ENOSPC was closed, so it is queued: sync lets its
# upload (or its cancellation, the file being gone) finish, so that the
# space is really free, whatever the store's speed (full_wait is 1 s).
dv_sync "after the rm"
dv_make_mixed_tree "$DV_DIR/src2" "$DV_DIR/list2" 40 8
dv_assert_ok "cp -a of 40 small files and one of 8 MiB after the rm" cp -a "$DV_DIR/src2" "$MNT/after"
dv_assert_ok "dd of 20 MiB after the rm" dd if=/dev/urandom of="$DV_DIR/twenty" bs=1M count=20 status=none
dv_assert_ok "cp of it into the vault" cp "$DV_DIR/twenty" "$MNT/twenty"
dv_sync "after the new writes"
dv_assert_queue_empty "after the new writes"
dv_assert_ok "the new files are byte-exact" diff -r "$DV_DIR/src2" "$MNT/after"
dv_assert_same "the 20 MiB file is byte-exact" "$DV_DIR/twenty" "$MNT/twenty"

dv_note "everything from the store (an empty cache directory on the normal disk)"
dv_remount_fresh_cache
dv_assert_ok "before: byte-exact" diff -r "$DV_DIR/src1" "$MNT/before"
dv_assert_ok "after: byte-exact" diff -r "$DV_DIR/src2" "$MNT/after"
dv_assert_same "the 20 MiB file" "$DV_DIR/twenty" "$MNT/twenty"
dv_assert_eq absent "$([[ -e $MNT/big ]] && echo present || echo absent)" "the big file is gone"
dv_done
