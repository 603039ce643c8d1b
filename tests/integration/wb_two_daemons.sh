#!/bin/bash
# shellcheck disable=SC2001,SC2016
# wb_two_daemons.sh - the cache directory belongs to one daemon: a second
# `docvault mount` with the same cache directory (on another mount point)
# refuses, exits non-zero with a message that names the cache directory, and
# mounts nothing; the first mount keeps working. The lock dies with its
# daemon: after kill -9 of the first daemon, a new mount on that cache
# directory starts (crash recovery depends on it), and after a clean
# unmount too. A cache directory belongs to one vault: another vault's
# daemon refuses it (its journal names the first vault's inodes), and the
# first vault's files closed but not committed are still there after.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
if dv_mode_is_dir; then
	dv_note "dir mode: every check here needs the daemon"
	dv_done
fi

m2=$DV_DIR/m2
mkdir "$m2"
# If the second mount wrongly succeeds, it must not outlive the case.
dv_on_exit "! dv_is_mounted '$m2' || fusermount3 -uz '$m2'"
cache_ere=$(sed 's/[.[\*^$()+?{|]/\\&/g' <<<"$DV_DIR/cache")

# second_mount WHAT: a second daemon with the same config (so the same cache
# directory) on $m2 is refused.
second_mount() {
	local what=$1
	dv_assert_fails "$what: a second mount on the same cache directory fails" \
		timeout 60 "$DOCVAULT_BIN" mount -c "$DV_CONF" "$m2"
	printf '     > %s\n' "${DV_OUT//$'\n'/$'\n     > '}"
	dv_assert_match "$what: the message names the cache directory" "$cache_ere" "$DV_OUT"
	if dv_is_mounted "$m2"; then
		dv_fail "$what: $m2 is mounted anyway"
		fusermount3 -u "$m2" || fusermount3 -uz "$m2"
	else
		dv_pass "$what: nothing mounted at $m2"
	fi
}

dv_note "a second daemon while the first runs"
dv_assert_ok "write in the first mount" bash -c 'printf one >"$1/before"' _ "$MNT"
second_mount "daemon 2"
dv_note "the first mount still works"
dv_assert_ok "write in the first mount" bash -c 'printf two >"$1/after"' _ "$MNT"
dv_assert_eq "one two" "$(cat "$MNT/before" 2>&1) $(cat "$MNT/after" 2>&1)" "read both back"
dv_sync "after the refused mounts"

dv_note "the lock dies with its daemon"
dv_assert_ok "write a file just before the kill" bash -c 'printf three >"$1/killed"' _ "$MNT"
dv_kill_daemon "kill -9 of the first daemon"
dv_mount
dv_assert_eq "one two three" \
	"$(cat "$MNT/before" 2>&1) $(cat "$MNT/after" 2>&1) $(cat "$MNT/killed" 2>&1)" \
	"after kill -9 and a new mount on the same cache directory: every file"
second_mount "daemon 2 against the new daemon"
dv_sync "after the kill"
dv_assert_queue_empty "after the kill"
dv_note "and with a clean unmount"
dv_remount
dv_assert_eq "three" "$(cat "$MNT/killed" 2>&1)" "after a clean remount"

dv_note "another vault on this cache directory"
db2=${DV_DB}_other
mapfile -t pgargs < <(dv_pg_args)
out=$(createdb "${pgargs[@]}" "$db2" 2>&1) || dv_die "createdb $db2 failed: $out"
dv_on_exit "dropdb ${pgargs[*]} --if-exists '$db2' >/dev/null 2>&1"
conf2=$DV_DIR/other.conf
sed "s/dbname=$DV_DB\$/dbname=$db2/" "$DV_CONF" >"$conf2"
chmod 600 "$conf2"
dv_assert_ok "init of another vault" "$DOCVAULT_BIN" init -c "$conf2"
dv_assert_ok "a file written just before the kill" \
	bash -c 'printf four >"$1/held"' _ "$MNT"
dv_kill_daemon "kill -9 with the file journaled"
dv_assert_fails "the other vault's mount on this cache directory fails" \
	timeout 60 "$DOCVAULT_BIN" mount -c "$conf2" "$m2"
printf '     > %s\n' "${DV_OUT//$'\n'/$'\n     > '}"
dv_assert_match "the message says the cache is another vault's" \
	"cache $cache_ere belongs to another vault" "$DV_OUT"
if dv_is_mounted "$m2"; then
	dv_fail "the other vault is mounted anyway"
	fusermount3 -u "$m2" || fusermount3 -uz "$m2"
fi
dv_mount
dv_sync "the first vault again"
dv_assert_eq "four" "$(cat "$MNT/held" 2>&1)" "the journaled file arrived in its own vault"
dv_done
