#!/bin/bash
# shellcheck disable=SC2016
# wb_cache_small.sh - a cache smaller than the data: with [cache] size =
# 32M, about 100 MiB of files (240 small ones, 11 of 8 MiB) are copied in
# with cp -a (dirty data beyond the limit waits for uploads, never fails),
# `docvault sync` commits them, and clean content is evicted so that the
# cache's blobs stay under the limit. A new mount on the same small cache
# then reads everything back byte-exact, twice, in two orders (evicted
# blobs are fetched again), and the blobs stay under the limit after the
# reads. "Under the limit" is measured with du (allocated blocks) of
# CACHE/blobs, with 1 MiB of slack for the blocks that files round up to.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

LIMIT_MIB=32

dv_setup
# Document processing (extraction, summaries) is not what this case tests,
# and a job per committed file would only slow it down: off.
dv_mode_is_dir || dv_conf_set processing workers 0
src=$DV_DIR/src
dv_make_mixed_tree "$src" "$DV_DIR/list" 240 8 8 8 8 8 8 8 8 8 8 8
dv_note "source: $(du -sm "$src" | cut -f1) MiB in $(wc -l <"$DV_DIR/list") files; cache size ${LIMIT_MIB}M"
if ! dv_mode_is_dir; then
	dv_conf_set cache size "${LIMIT_MIB}M"
	dv_remount
fi

# blobs_within WHAT: du of the cache's blobs is at most the limit (+ slack).
# A blob being read may take the cache over the limit until its reader lets
# it go, and the kernel sends that release after close() has returned: the
# cache gets 10 s to be back under the limit.
blobs_within() {
	local kib i
	dv_mode_is_dir && return 0
	for ((i = 0; i < 50; i++)); do
		kib=$(du -sk "$DV_DIR/cache/blobs" 2>/dev/null | cut -f1)
		[[ -n $kib ]] && ((kib <= LIMIT_MIB * 1024 + 1024)) && break
		sleep 0.2
	done
	if [[ -n $kib ]] && ((kib <= LIMIT_MIB * 1024 + 1024)); then
		dv_pass "$1: the cache's blobs take $((kib / 1024)) MiB, within ${LIMIT_MIB} MiB"
	else
		dv_fail "$1: the cache's blobs take ${kib:-?} KiB, more than ${LIMIT_MIB} MiB (+1 MiB)"
	fi
}

dv_assert_ok "cp -a of ~100 MiB into a ${LIMIT_MIB} MiB cache" cp -a "$src" "$MNT/data"
dv_sync "after the copy"
dv_assert_queue_empty "after sync"
blobs_within "after sync"

dv_note "a new mount on the same small cache reads everything back"
dv_remount
dv_assert_ok "diff -r, first pass" diff -r "$src" "$MNT/data"
blobs_within "after the first pass"
dv_assert_ok "every file again, in reverse order" \
	bash -c 'cd "$1" && tac "$3" | while IFS= read -r f; do cmp -- "$f" "$2/$f" || exit 1; done' \
	_ "$src" "$MNT/data" "$DV_DIR/list"
blobs_within "after the second pass"
dv_done
