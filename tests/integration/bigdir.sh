#!/bin/bash
# shellcheck disable=SC2010,SC2012
# bigdir.sh - 100,000 entries in one directory: created fast (t_mkfiles),
# listed by `ls` (sorted and -f unsorted) and `find` with every name exactly
# once, looked up by name, then removed with `rm -rf`. The daemon must list
# it without loading it whole: its peak RSS (VmHWM) stays under 300 MiB.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

N=${DV_BIGDIR_N:-100000}
HWM_LIMIT_KIB=$((300 * 1024))

check_rss() { # WHEN
	local kib
	dv_mode_is_dir && return 0
	kib=$(dv_daemon_hwm_kib)
	if [[ -z $kib ]]; then
		dv_fail "no VmHWM for the daemon (pid ${DV_PID:-none}) $1"
		return
	fi
	dv_note "daemon peak RSS $1: $((kib / 1024)) MiB"
	if ((kib < HWM_LIMIT_KIB)); then
		dv_pass "daemon peak RSS $1 under 300 MiB ($((kib / 1024)) MiB)"
	else
		dv_fail "daemon peak RSS $1 is $((kib / 1024)) MiB, over 300 MiB"
	fi
}

# Under AddressSanitizer, freed memory sits in a quarantine of up to 256 MiB
# that VmHWM counts: keep it small so that the figure is the daemon's.
if [[ $(ldd "${DOCVAULT_BIN:-/bin/true}" 2>/dev/null) == *libasan* ]]; then
	DV_DAEMON_ENV=("ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16")
fi
dv_setup
dir=$MNT/big
mkdir "$dir"
check_rss "after mount"

dv_note "create $N files"
dv_run_prog t_mkfiles "$dir" "$N" f
check_rss "after creating $N files"

dv_note "list them"
t0=$SECONDS
dv_assert_eq "$N" "$(ls "$dir" | wc -l)" "ls | wc -l"
dv_assert_eq "$((N + 2))" "$(ls -f "$dir" | wc -l)" "ls -f | wc -l (with . and ..)"
dv_assert_eq "" "$(ls -f "$dir" | LC_ALL=C sort | uniq -d | head -n 3)" "no name listed twice"
dv_assert_eq "$N" "$(find "$dir" -type f | wc -l)" "find -type f | wc -l"
dv_assert_eq "$N" "$(find "$dir" -mindepth 1 -name 'f*' -printf '%s\n' | wc -l)" "find with stat of each"
dv_note "listing took $((SECONDS - t0)) s"
dv_assert_eq "$N" "$(ls -l "$dir" | grep -c '^-rw-r--r--')" "ls -l shows every file with its mode"
dv_assert_ok "stat of the first file" stat "$dir/f000000"
dv_assert_ok "stat of the last file" stat "$dir/f$(printf '%06d' $((N - 1)))"
dv_assert_fails "stat of one past the last" stat "$dir/f$(printf '%06d' "$N")"
check_rss "after listing"

dv_note "rm -rf"
t0=$SECONDS
dv_assert_ok "rm -rf the big directory" rm -rf "$dir"
dv_note "rm -rf took $((SECONDS - t0)) s"
dv_assert_eq "" "$(ls -A "$MNT")" "the vault is empty again"
check_rss "at the end"
dv_done
