#!/bin/bash
# wb_crash.sh - close means it will arrive: the daemon is killed (SIGKILL)
# during a bulk copy at each step of the background commit, and every file
# whose close() had returned 0 is there, byte-exact, after a new mount on
# the same cache directory and `docvault sync`; nothing else is half there.
#
# For each STEP of sealed (an upload worker took a journaled file, before
# hashing), upload (50 ms into the K-th upload: a big file, mid-upload),
# uploaded (store put done, before the PostgreSQL commit) and committed
# (PostgreSQL commit done, before the journal entry goes), the daemon is
# mounted with DOCVAULT_FAULT_KILL=STEP:K and t_writer copies a fresh tree
# (120 files of 1 B to 64 KiB, 3 files of 5-12 MiB among them; on the s3
# store those are multipart uploads) file by file, logging a file only once
# its close() returned 0, until the daemon kills itself. Then:
#   - the daemon died of SIGKILL (not of a crash), the writer stopped with
#     ENOTCONN/ECONNABORTED or had finished;
#   - the dead mount is lazily unmounted and the daemon mounted again with the
#     same cache directory, without the fault;
#   - before any sync, every logged file reads back byte-exact (a pending
#     commit reads back with its new content);
#   - `docvault sync` exits 0 and `docvault status` shows an empty queue;
#   - every logged file is byte-exact again, and the rule for the others
#     holds: a file of the tree that is not in the log (its close() never
#     returned to the writer) is absent, or empty (its create reached the
#     database, none of its content did), or whole and byte-exact (closed just
#     as the daemon died); never a part of its content or wrong bytes. No
#     file outside the tree appears.
# At the end a mount on an empty cache directory reads everything from the
# store: every logged file of every step byte-exact, the rule again.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

STEPS=(sealed upload uploaded committed)
NSMALL=120
BIG_MIB=(5 9 12)

dv_setup
# Document processing (extraction, summaries) is not what this case tests,
# and a job per committed file would only slow it down: off.
dv_mode_is_dir || dv_conf_set processing workers 0
if [[ $DV_TEST_STORE == s3 ]] && ! dv_mode_is_dir; then
	# Multipart uploads for the big files: a kill mid-upload leaves parts.
	dv_conf_set storage multipart_threshold 8M
	dv_conf_set storage part_size 5M
fi

for step in "${STEPS[@]}"; do
	src=$DV_DIR/src-$step
	list=$DV_DIR/list-$step
	log=$DV_DIR/log-$step
	dv_make_mixed_tree "$src" "$list" "$NSMALL" "${BIG_MIB[@]}"
	: >"$log"
	if [[ $step == upload ]]; then
		# The K-th upload is about the K-th file closed: the second big one.
		k=$(grep -n '^big/b1\.bin$' "$list" | cut -d: -f1)
	else
		k=$((NSMALL / 3))
	fi
	if dv_mode_is_dir; then
		mkdir "$MNT/$step"
		dv_writer "$src" "$MNT/$step" "$list" "$log"
		dv_assert_eq 0 "$DV_WRITER_RC" "dir mode: t_writer wrote everything"
		dv_assert_crash_rule "dir mode" "$src" "$MNT/$step" "$list" "$log"
		continue
	fi

	dv_note "$step: kill the daemon at DOCVAULT_FAULT_KILL=$step:$k during the copy"
	dv_unmount
	DV_DAEMON_ENV=("DOCVAULT_FAULT_KILL=$step:$k")
	dv_mount
	DV_DAEMON_ENV=()
	mkdir "$MNT/$step"
	dv_writer "$src" "$MNT/$step" "$list" "$log"
	logged=$(wc -l <"$log")
	if ((DV_WRITER_RC == 0)); then
		dv_note "$step: the writer finished ($logged files) before the daemon died"
	elif ((DV_WRITER_RC == 3)) && grep -qE 'errno (107|103)\)' <<<"$DV_WRITER_OUT"; then
		dv_pass "$step: the writer stopped with the daemon's death after $logged of $(wc -l <"$list") files"
	else
		dv_fail "$step: the writer failed otherwise than by the daemon's death (exit $DV_WRITER_RC)" \
			"$(tail -n 3 <<<"$DV_WRITER_OUT")"
	fi
	if ! dv_reap_killed_daemon "$step: fault hook $step:$k" 30; then
		dv_fail "$step: DOCVAULT_FAULT_KILL=$step:$k never fired; killing the daemon by hand to go on"
		dv_kill_daemon "$step: kill -9 by hand"
	fi

	dv_note "$step: mount again on the same cache directory"
	dv_mount
	dv_assert_crash_rule "$step: before sync" "$src" "$MNT/$step" "$list" "$log"
	dv_sync "$step: after the kill"
	dv_assert_queue_empty "$step: after sync"
	dv_assert_crash_rule "$step: after sync" "$src" "$MNT/$step" "$list" "$log"
done

dv_note "everything again, read from the store (an empty cache directory)"
dv_remount_fresh_cache
for step in "${STEPS[@]}"; do
	dv_assert_crash_rule "$step: from the store" "$DV_DIR/src-$step" "$MNT/$step" \
		"$DV_DIR/list-$step" "$DV_DIR/log-$step"
done
dv_assert_queue_empty "at the end"
dv_done
