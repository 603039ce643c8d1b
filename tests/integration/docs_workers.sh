#!/bin/bash
# docs_workers.sh - one queue, many workers, each document processed once:
# 500 small text documents are copied into a vault whose daemon runs two
# worker threads ([processing] workers = 2) while two `docvault worker`
# processes, started here, serve the same queue. All 500 end "completed"
# (getfattr on each), the queue is empty, and each document was completed
# exactly once: every completion is logged at [log] level = debug ("jobs:
# document N (version V) completed"; the queue keeps no record of finished
# jobs), so across the daemon's and the two workers' logs each document's
# inode appears once, and the three "stopped:" summaries add up to 500
# completed, none failed, retried or dropped as stale. Both worker
# processes took part, and stop cleanly on SIGTERM (exit 0).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

NDOCS=500

dv_setup
if dv_mode_is_dir; then
	dv_note "dir mode: every check here needs the daemon"
	dv_done
fi
dv_conf_set processing workers 2
dv_conf_set log level debug
dv_remount

dv_note "two worker processes"
wpids=()
for w in 1 2; do
	"$DOCVAULT_BIN" worker -c "$DV_CONF" </dev/null >"$DV_DIR/worker$w.out" 2>"$DV_DIR/worker$w.log" &
	wpids+=($!)
done
dv_on_exit "kill -KILL ${wpids[*]} 2>/dev/null || true"
for w in 1 2; do
	for ((i = 0; i < 300; i++)); do
		grep -q 'jobs: [0-9]* workers as' "$DV_DIR/worker$w.log" && break
		kill -0 "${wpids[w - 1]}" 2>/dev/null || break
		sleep 0.1
	done
	if grep -q 'jobs: [0-9]* workers as' "$DV_DIR/worker$w.log"; then
		dv_pass "worker $w (pid ${wpids[w - 1]}) runs: $(grep -o 'jobs: .*' "$DV_DIR/worker$w.log" | head -n 1)"
	else
		dv_die "worker $w did not start: $(tail -n 5 "$DV_DIR/worker$w.log")"
	fi
done

dv_note "$NDOCS documents"
src=$DV_DIR/src
mkdir -p "$src/docs"
for ((i = 0; i < NDOCS; i++)); do
	printf 'Ledger entry %d records a shipment of %d crates of apples to market %d.\nThe shipment left the orchard on day %d and arrived fresh.\n' \
		"$i" $((i * 7 % 97 + 1)) $((i % 13)) $((i % 365)) >"$src/docs/entry-$i.txt"
done
t0=$SECONDS
dv_assert_ok "cp -r of $NDOCS documents" cp -r "$src/docs" "$MNT/docs"
dv_note "copied in $((SECONDS - t0)) s"
t0=$SECONDS
while ((SECONDS - t0 < 420)); do
	pending=$(dv_psql "SELECT count(*) FROM dv_inodes WHERE status IN (1, 2)") || pending=''
	done_=$(dv_psql "SELECT count(*) FROM dv_inodes WHERE status IN (3, 4) AND content IS NOT NULL")
	[[ $pending == 0 && $done_ == "$NDOCS" ]] && break
	dv_daemon_died && dv_die "the daemon died while the documents were processed (exit status $DV_DAEMON_RC)"
	sleep 1
done
dv_note "processed in $((SECONDS - t0)) s"
out=$(getfattr -R --absolute-names -n user.docvault.status "$MNT/docs" 2>&1)
dv_assert_eq "$NDOCS" "$(grep -c '^user\.docvault\.status="completed"$' <<<"$out")" \
	"getfattr: all $NDOCS documents are completed"
dv_assert_eq 0 "$(dv_psql 'SELECT count(*) FROM dv_jobs')" "the queue is empty"
inos=$(find "$MNT/docs" -type f -printf '%i\n' | sort -n)
dv_assert_eq "$NDOCS" "$(wc -l <<<"$inos")" "$NDOCS files in the vault"

dv_note "stop the workers with SIGTERM"
for w in 1 2; do
	kill -TERM "${wpids[w - 1]}"
done
for w in 1 2; do
	for ((i = 0; i < 600; i++)); do
		kill -0 "${wpids[w - 1]}" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "${wpids[w - 1]}" 2>/dev/null; then
		dv_fail "worker $w still runs 60 s after SIGTERM"
		continue
	fi
	wait "${wpids[w - 1]}"
	dv_assert_eq 0 "$?" "worker $w exits 0 after SIGTERM"
done
for w in 1 2; do
	bad=$(grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: .*Sanitizer' "$DV_DIR/worker$w.log" | head -n 5)
	dv_assert_eq "" "$bad" "worker $w: no sanitizer report"
done
dv_unmount

dv_note "each document completed exactly once"
logs=("$DV_LOG.all" "$DV_DIR/worker1.log" "$DV_DIR/worker2.log")
completions=$(cat "${logs[@]}" | grep -oE 'jobs: document [0-9]+ \(version [0-9]+\) completed' |
	awk '{ print $3 }' | sort -n)
dv_assert_eq "$NDOCS" "$(wc -l <<<"$completions")" "$NDOCS completions logged"
dv_assert_same_text "each document's inode completed once" "$inos" "$completions"
dv_assert_no_match "no result dropped as stale" 'changed while processing' "$(cat "${logs[@]}")"
declare -A by=([daemon]="$DV_LOG.all" [worker1]="$DV_DIR/worker1.log" [worker2]="$DV_DIR/worker2.log")
total=0
for who in daemon worker1 worker2; do
	line=$(grep -oE 'stopped: [0-9]+ completed, [0-9]+ failed, [0-9]+ retried, [0-9]+ dropped as stale' \
		"${by[$who]}" | tail -n 1)
	if [[ -z $line ]]; then
		dv_fail "$who: no 'stopped:' line in its log"
		continue
	fi
	read -r _ c _ f _ r _ s _ <<<"$line"
	dv_note "$who: $line"
	dv_assert_eq "0 0 0" "$f $r $s" "$who: none failed, retried or dropped"
	if [[ $who == worker* ]]; then
		if ((c > 0)); then
			dv_pass "$who took part ($c documents)"
		else
			dv_fail "$who completed no document"
		fi
	fi
	total=$((total + c))
done
dv_assert_eq "$NDOCS" "$total" "the completed counts add up to $NDOCS"
dv_done
