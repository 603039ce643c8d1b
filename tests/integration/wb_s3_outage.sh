#!/bin/bash
# wb_s3_outage.sh - the S3 server down for 20 s during a bulk copy: the
# writer sees no error, writes keep landing in the cache, uploads wait and
# retry, and the queue drains by itself when the server is back. S3 store
# only, on a private RGW (tools/lib/rgw.sh; the shared one serves other
# cases meanwhile) whose radosgw alone is killed and started again, so that
# its OSD keeps the bucket (the memstore lives as long as the OSD).
#
# `cp -a` of a tree (a realistic one, plus 400 small files and 8 of 8 MiB)
# starts; half a second later radosgw is killed. While it is down: the copy
# finishes (nothing waits on the store: writes go to the cache), the queue
# is not empty (what was written after the kill cannot have been uploaded)
# and every copied file reads back byte-exact from the cache. After 20 s
# radosgw starts again: cp has exited 0 with nothing on stderr, `docvault
# sync` exits 0, the queue is empty, and a mount on an empty cache directory
# (every read from the store) has the same tree, every byte.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

if [[ $DV_TEST_STORE != s3 ]] && ! dv_mode_is_dir; then
	dv_die "wb_s3_outage stops an S3 server: it runs with DV_TEST_STORE=s3 only (not '$DV_TEST_STORE')"
fi
dv_private_rgw
dv_setup
# Document processing (extraction, summaries) is not what this case tests,
# and a job per committed file would only slow it down: off.
dv_mode_is_dir || dv_conf_set processing workers 0
dv_remount
if dv_mode_is_dir; then
	dv_note "dir mode: every check here needs the daemon"
	dv_done
fi

src=$DV_DIR/src
dv_make_tree "$src/tree"
dv_make_mixed_tree "$src/bulk" "$DV_DIR/list" 400 8 8 8 8 8 8 8 8
dv_note "source: $(du -sm "$src" | cut -f1) MiB"

cp -a "$src" "$MNT/copy" 2>"$DV_DIR/cp.err" &
cp_pid=$!
sleep 0.5
if kill -0 "$cp_pid" 2>/dev/null; then
	cp_running=1
	dv_pass "the copy is running when the S3 server goes down"
else
	cp_running=0
	dv_fail "the copy ended within 0.5 s, before the S3 server went down: make the tree bigger"
fi
dv_rgw_gateway_kill
t_down=$SECONDS

# Down for 20 s; meanwhile the copy must finish into the cache.
while kill -0 "$cp_pid" 2>/dev/null && ((SECONDS - t_down < 20)); do
	sleep 0.2
done
if kill -0 "$cp_pid" 2>/dev/null; then
	dv_fail "the copy is still running after 20 s without the S3 server: writes wait on the store"
else
	dv_pass "the copy finished $((SECONDS - t_down)) s into the outage"
	files=$(dv_queue_files)
	if ((cp_running)) && [[ -n $files ]] && ((files > 0)); then
		dv_pass "during the outage the queue holds $files files"
	else
		dv_fail "during the outage the queue holds '${files:-no queue: line}' files, expected some" \
			"$(dv_queue_line)"
	fi
	dv_assert_ok "during the outage every copied file reads back from the cache" \
		diff -r "$src/bulk" "$MNT/copy/bulk"
fi
dv_assert_ok "the daemon is alive" dv_pid_alive "$DV_PID"
while ((SECONDS - t_down < 20)); do
	sleep 0.2
done
dv_rgw_gateway_start
dv_note "the S3 server was down for $((SECONDS - t_down)) s"

wait "$cp_pid"
dv_assert_eq 0 "$?" "cp -a across the outage exits 0"
dv_assert_eq "" "$(cat "$DV_DIR/cp.err")" "cp -a printed no error"
dv_sync "after the outage"
dv_assert_queue_empty "after sync"

dv_remount_fresh_cache
dv_assert_same_tree "from the store" "$src" "$MNT/copy"
dv_assert_queue_empty "at the end"
dv_done
