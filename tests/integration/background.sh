#!/bin/bash
# background.sh - `docvault mount` without -f, the way people run it: the
# command returns once the mount is ready and leaves a daemon of its own
# (another process: the daemon forks), which logs to --log FILE, reads a
# file back byte-exact from the store with an empty cache, and reads ahead
# (a sequential read of the first 4 MiB of a cold 48 MiB file leaves far
# more than that in the cache: the fetch threads run in the forked daemon,
# not only in the process that opened the cache); fusermount3 -u ends it.
# Every other case mounts with -f.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
if dv_mode_is_dir; then
	dv_note "dir mode: every check here needs the daemon"
	dv_done
fi

src=$DV_DIR/src.bin
dv_random_file "$src" $((48 << 20))
cp "$src" "$MNT/big" || dv_fail "cp into the vault"
dv_sync "the 48 MiB file"
dv_unmount

cache=$DV_DIR/cache.bg
mkdir "$cache" || dv_die "mkdir $cache failed"
dv_conf_set cache dir "$cache"
dv_note "docvault mount without -f, empty cache $cache"
dv_assert_ok "docvault mount returns once the mount is ready" \
	timeout 60 "$DOCVAULT_BIN" mount -c "$DV_CONF" "$MNT" --log "$DV_LOG"
dv_is_mounted "$MNT"
dv_assert_eq 0 $? "the vault is mounted"
bgpid=$(pgrep -n -f -- "mount -c $DV_CONF $MNT")
dv_assert_match "a daemon serves it" '^[0-9]+$' "$bgpid"

dd if="$MNT/big" of=/dev/null bs=128k count=32 status=none || dv_fail "reading 4 MiB"
fetched=0
for ((i = 0; i < 50; i++)); do
	fetched=$(du -sk "$cache/blobs" | cut -f1)
	((fetched >= 16384)) && break
	sleep 0.2
done
dv_note "the cache holds $fetched KiB after a 4 MiB read"
((fetched >= 16384))
dv_assert_eq 0 $? "read-ahead ran in the background daemon (>= 16 MiB cached)"
dv_assert_same "the file reads back from the store" "$src" "$MNT/big"

fusermount3 -u "$MNT" || dv_fail "fusermount3 -u"
for ((i = 0; i < 300; i++)); do
	kill -0 "$bgpid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$bgpid" 2>/dev/null
dv_assert_eq 1 $? "the daemon exits after fusermount3 -u"
dv_assert_match "it logged to --log" "mounted $MNT" "$(cat "$DV_LOG")"

dv_done
