#!/bin/bash
# wb_pg_restart.sh - PostgreSQL restarted during a bulk copy: nothing
# acknowledged is lost and the writer sees no error. On a private
# PostgreSQL (the shared one serves other cases meanwhile), `cp -a` of a
# tree (a realistic one, plus 1000 small files and 2 of 4-6 MiB) runs
# while the server is stopped (fast shutdown: every connection cut), kept
# down 3 s and started again; the daemon retries namespace operations and
# commits meanwhile. cp must exit 0 with nothing on stderr; after
# `docvault sync` the queue is empty, and a mount on an empty cache
# directory (every read from the store) has the same tree: types, modes,
# sizes, mtimes and every byte.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_private_pg
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
dv_make_mixed_tree "$src/bulk" "$DV_DIR/list" 1000 4 6
dv_note "source: $(du -sm "$src" | cut -f1) MiB"

cp -a "$src" "$MNT/copy" 2>"$DV_DIR/cp.err" &
cp_pid=$!
sleep 1
if kill -0 "$cp_pid" 2>/dev/null; then
	dv_pass "the copy is running when PostgreSQL stops"
else
	dv_fail "the copy ended within 1 s, before PostgreSQL stopped: make the tree bigger"
fi
t0=$SECONDS
dv_assert_ok "pg.sh stop (fast shutdown)" bash "$DV_TOOLS_LIB/pg.sh" stop "$DV_PRIVATE_PG"
sleep 3
dv_assert_ok "pg.sh start" bash "$DV_TOOLS_LIB/pg.sh" start "$DV_PRIVATE_PG" ||
	dv_die "PostgreSQL does not start again"
dv_note "PostgreSQL was down for $((SECONDS - t0)) s"
wait "$cp_pid"
dv_assert_eq 0 "$?" "cp -a across the restart exits 0"
dv_assert_eq "" "$(cat "$DV_DIR/cp.err")" "cp -a printed no error"
dv_assert_ok "the daemon is alive" dv_pid_alive "$DV_PID"
dv_sync "after the restart"
dv_assert_queue_empty "after sync"
dv_assert_same_tree "on this mount" "$src" "$MNT/copy"

dv_remount_fresh_cache
dv_assert_same_tree "from the store" "$src" "$MNT/copy"
dv_assert_queue_empty "at the end"
dv_done
