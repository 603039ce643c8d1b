#!/bin/bash
# rsync.sh - rsync into the vault: `rsync -a` round-trips mtimes, modes and
# sizes so that a second `rsync -a` transfers nothing; `rsync -aHAX` keeps
# hard links and user.* xattrs; `rsync -a --devices --specials` copies a
# FIFO and device nodes.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# dv_assert_noop_rsync WHAT RSYNC-ARGS...: the run itemizes no change and
# transfers no regular file.
dv_assert_noop_rsync() {
	local what=$1 out rc
	shift
	out=$(rsync -i --stats "$@" 2>&1)
	rc=$?
	dv_assert_eq 0 "$rc" "$what: exit status"
	dv_assert_match "$what: no file transferred" \
		'^Number of regular files transferred: 0$' "$out"
	dv_assert_no_match "$what: no itemized change" '^[<>ch.*][fdLDS][^ ]{9} ' "$out"
}

dv_setup

dv_note "rsync -a of a plain tree, then a second rsync -a"
src=$DV_DIR/src
dv_make_tree "$src" owners
dv_assert_ok "rsync -a SRC/ MNT/r1/" rsync -a "$src/" "$MNT/r1/"
dv_assert_same_tree "rsync -a" "$src" "$MNT/r1"
dv_assert_noop_rsync "second rsync -a" -a "$src/" "$MNT/r1/"
# Changed content and times travel, and nothing else.
printf 'changed\n' >"$src/a/b/small-3.txt"
touch -d '2021-05-06 07:08:09.5' "$src/a/b/small-3.txt"
chmod 0600 "$src/a/4096"
out=$(rsync -a -i --stats "$src/" "$MNT/r1/" 2>&1)
dv_assert_match "rsync -a after a change: one file sent" \
	'^Number of regular files transferred: 1$' "$out"
dv_assert_same_tree "rsync -a after a change" "$src" "$MNT/r1"
dv_assert_noop_rsync "rsync -a after the change, again" -a "$src/" "$MNT/r1/"
# --delete-before removes what the source lost; --inplace rewrites in place.
rm -r "$src/a/b/c/d"
touch -d '2022-02-02 02:02:02.2' "$src/a/b/c" # rsync compares directory times in seconds
dv_random_file "$src/a/4095" 4095
dv_assert_ok "rsync -a --delete-before --inplace" rsync -a --delete-before --inplace "$src/" "$MNT/r1/"
dv_assert_same_tree "rsync -a --delete-before --inplace" "$src" "$MNT/r1"

dv_note "rsync -aHAX: hard links and user.* xattrs"
src2=$DV_DIR/src2
dv_make_tree "$src2" hardlinks xattrs
dv_assert_ok "rsync -aHAX SRC2/ MNT/r2/" rsync -aHAX "$src2/" "$MNT/r2/"
dv_assert_same_tree "rsync -aHAX" "$src2" "$MNT/r2"
dv_assert_same_xattrs "rsync -aHAX" "$src2" "$MNT/r2"
dv_assert_eq 3 "$(stat -c %h "$MNT/r2/a/linked" 2>&1)" "rsync -aHAX: link count of a/linked"
i1=$(stat -c %i "$MNT/r2/a/linked" 2>&1)
i2=$(stat -c %i "$MNT/r2/a/b/linked-too" 2>&1)
i3=$(stat -c %i "$MNT/r2/linked-three" 2>&1)
dv_assert_eq "$i1 $i1" "$i2 $i3" "rsync -aHAX: the three names share one inode"
# The vault shows what it computes as user.docvault.* (and the tags as
# user.xdg.tags), which the source does not have: rsync -X itemizes them
# as a change every time unless told to leave them alone, as the user guide
# says. It must still exit 0 either way.
dv_assert_ok "rsync -aHAX again, the vault's attributes not filtered: exit 0" \
	rsync -aHAX "$src2/" "$MNT/r2/"
dv_assert_same_xattrs "rsync -aHAX twice" "$src2" "$MNT/r2"
dv_assert_noop_rsync "second rsync -aHAX, the vault's own attributes filtered" -aHAX \
	--filter='-x user.docvault.*' --filter='-x user.xdg.tags' "$src2/" "$MNT/r2/"

dv_note "rsync -a --devices --specials: a FIFO and device nodes"
src3=$DV_DIR/src3
mkdir "$src3"
mkfifo -m 0640 "$src3/pipe.fifo"
mknod -m 0600 "$src3/null.dev" c 1 3
mknod -m 0660 "$src3/disk.dev" b 8 17
mknod -m 0600 "$src3/big.dev" c 300 70000
touch -h -d '2019-01-01 00:00:00.25' "$src3"/*
dv_assert_ok "rsync -a --devices --specials" rsync -a --devices --specials "$src3/" "$MNT/r3/"
dv_assert_same_tree "rsync --devices --specials" "$src3" "$MNT/r3"
dv_assert_eq "fifo" "$(stat -c %F "$MNT/r3/pipe.fifo" 2>&1)" "the FIFO is a FIFO"
dv_assert_eq "character special file 1 3" \
	"$(stat -c '%F %Hr %Lr' "$MNT/r3/null.dev" 2>&1)" "the char device keeps 1,3"
dv_assert_eq "block special file 8 17" \
	"$(stat -c '%F %Hr %Lr' "$MNT/r3/disk.dev" 2>&1)" "the block device keeps 8,17"
dv_assert_eq "character special file 300 70000" \
	"$(stat -c '%F %Hr %Lr' "$MNT/r3/big.dev" 2>&1)" "a large device number is kept"
dv_assert_noop_rsync "second rsync --devices --specials" -a --devices --specials "$src3/" "$MNT/r3/"

dv_note "rsync back out of the vault"
dv_assert_ok "rsync -aHAX MNT/r2/ BACK/" rsync -aHAX "$MNT/r2/" "$DV_DIR/back/"
dv_assert_same_tree "rsync back out" "$src2" "$DV_DIR/back"
dv_assert_same_xattrs "rsync back out" "$src2" "$DV_DIR/back"
dv_done
