#!/bin/bash
# wb_torn.sh - no torn and no stale reads under concurrent rewrites, and no
# late commit of an old version over a newer one (t_torn.c): for 20 s, a
# file rewritten whole in place under flock while two readers read it whole
# (every read is one whole version, never older than the last one closed
# before the open), a file replaced by rename() while a slow reader reads
# the version it opened, and 4 writers each rewriting 16 files of their own
# (with O_TRUNC, and in place then ftruncate) and reading each back after
# close. Then `docvault sync`, a mount on an empty cache directory (so
# everything is read from the store), and every file must be whole and at
# the last version written.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
# Document processing (extraction, summaries) is not what this case tests,
# and a job per committed file would only slow it down: off.
dv_mode_is_dir || dv_conf_set processing workers 0
dv_remount
mkdir "$MNT/torn" || dv_die "mkdir $MNT/torn failed"
dv_run_prog t_torn run "$MNT/torn" 20 4 16 "$DV_DIR/torn.manifest"
dv_sync "after the rewrites"
dv_assert_queue_empty "after sync"
dv_remount_fresh_cache
dv_run_prog t_torn verify "$MNT/torn" "$DV_DIR/torn.manifest"
dv_done
