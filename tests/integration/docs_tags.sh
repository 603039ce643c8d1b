#!/bin/bash
# shellcheck disable=SC2016
# docs_tags.sh - user tags and the other writable attributes, through
# setfattr/getfattr: user.docvault.tags set (replacing), "+t" added, "-t"
# removed, removed with setfattr -x, shown the same as user.xdg.tags (and
# set through it); too many tags is E2BIG; kept across a remount, as are
# other user.* attributes. A second user (dvitest, run with setpriv, as in
# second_user.sh) may read the tags of a file it may read but not set them
# (nor ask for reprocessing) without write permission; with it (a 0666
# file, its own file) it may. user.docvault.reprocess queues the document
# again: with no worker in the daemon ([processing] workers = 0) its status
# reads "ready" until a `docvault worker --once` takes it ("processing")
# and completes it; the user tags survive. Writes of the computed
# attributes (and of unknown user.docvault.* names) are accepted and
# ignored: setfattr exits 0 and the value stays.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

USER_NAME=${DV_TEST_USER:-dvitest}

# One case with the test user at a time on this machine (second_user.sh).
exec {lockfd}>/run/lock/docvault-itest-user.lock
flock -w 600 "$lockfd" || { echo "cannot lock the test user" >&2; exit 1; }

DV_ALLOW_OTHER=true dv_setup
if dv_mode_is_dir; then
	dv_note "dir mode: every check here needs the daemon"
	dv_done
fi

command -v python3 >/dev/null || dv_die "python3 is not installed (it makes the ERANGE checks)"

# tagset VALUE: the comma-separated tags, sorted (the order is not promised).
tagset() { tr ',' '\n' <<<"$1" | sed '/^$/d' | LC_ALL=C sort | paste -sd, -; }
# assert_tags WHAT EXPECTED FILE: both names show the tag set EXPECTED.
assert_tags() {
	dv_assert_eq "$2" "$(tagset "$(dv_xattr "$3" user.docvault.tags)")" "$1: user.docvault.tags"
	dv_assert_eq "$2" "$(tagset "$(dv_xattr "$3" user.xdg.tags)")" "$1: user.xdg.tags"
}
worker_once() {
	timeout 120 "$DOCVAULT_BIN" worker -c "$DV_CONF" --once 2>>"$DV_DIR/worker.log"
}

dv_note "processing by worker processes only"
dv_conf_set processing workers 0
dv_remount
f=$MNT/doc.txt
cat >"$f" <<'EOT'
Migrating birds fly south in autumn along routes their parents flew.
Storks and cranes ride thermals, while small songbirds migrate at night.
A migrating bird finds its way by the sun, the stars and the earth's magnetic field.
EOT
chmod 644 "$f"
dv_sync "doc.txt written"
dv_assert_eq ready "$(dv_xattr "$f" user.docvault.status)" "doc.txt waits for a worker"
dv_assert_match "docvault worker --once processes it" '^docvault worker: 1 completed, 0 failed' "$(worker_once)"
dv_assert_eq completed "$(dv_xattr "$f" user.docvault.status)" "doc.txt: status"

dv_note "set, add, remove"
dv_assert_fails "no tags yet" getfattr --absolute-names -n user.docvault.tags "$f"
dv_assert_ok "setfattr tags finance,2026" setfattr -n user.docvault.tags -v "finance,2026" "$f"
assert_tags "after setting finance,2026" "2026,finance" "$f"
dv_assert_ok "setfattr tags +urgent,-2026" setfattr -n user.docvault.tags -v "+urgent,-2026" "$f"
assert_tags "after +urgent,-2026" "finance,urgent" "$f"
dv_assert_ok "setfattr tags +q3" setfattr -n user.docvault.tags -v "+q3" "$f"
assert_tags "after +q3" "finance,q3,urgent" "$f"
dv_assert_ok "setfattr tags -finance" setfattr -n user.docvault.tags -v "-finance" "$f"
assert_tags "after -finance" "q3,urgent" "$f"
dv_assert_ok "setfattr tags -absent" setfattr -n user.docvault.tags -v "-absent" "$f"
assert_tags "after removing a tag it does not have" "q3,urgent" "$f"
dv_assert_ok "setfattr user.xdg.tags 'blue, green'" setfattr -n user.xdg.tags -v "blue, green" "$f"
assert_tags "after setting user.xdg.tags" "blue,green" "$f"
dv_assert_ok "setfattr -x user.docvault.tags" setfattr -x user.docvault.tags "$f"
dv_assert_fails "no tags after setfattr -x" getfattr --absolute-names -n user.docvault.tags "$f"
dv_assert_fails "no user.xdg.tags either" getfattr --absolute-names -n user.xdg.tags "$f"
dv_assert_ok "setfattr tags 'alpha,beta,gamma'" setfattr -n user.docvault.tags -v "alpha,beta,gamma" "$f"
assert_tags "after setting three" "alpha,beta,gamma" "$f"
names=$(getfattr --absolute-names -d "$f" 2>&1)
dv_assert_match "getfattr -d lists user.docvault.tags" '^user\.docvault\.tags="alpha,beta,gamma"$' "$names"
dv_assert_match "getfattr -d lists user.xdg.tags" '^user\.xdg\.tags="alpha,beta,gamma"$' "$names"
dv_assert_fails "201 tags are too many" setfattr -n user.docvault.tags -v "$(seq -s, -f 't%g' 1 201)" "$f"
dv_assert_match "... with E2BIG" 'Argument list too long' "$DV_OUT"
assert_tags "after the refused write" "alpha,beta,gamma" "$f"
dv_assert_fails "a tag of 300 bytes is refused" \
	setfattr -n user.docvault.tags -v "+$(head -c 300 /dev/zero | tr '\0' x)" "$f"
dv_assert_fails "a tag with a control character is refused" \
	setfattr -n user.docvault.tags -v "$(printf '+bad\001tag')" "$f"
assert_tags "after the refused tags" "alpha,beta,gamma" "$f"
# A buffer too small for the value (or the list) is ERANGE; a size query
# (size 0) gives the length.
out=$(python3 - "$f" <<'PY'
import ctypes, ctypes.util, errno, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
path, buf = sys.argv[1].encode(), ctypes.create_string_buffer(4)
for name in (b"user.docvault.summary", b"user.docvault.checksum", b"user.docvault.tags"):
    size = libc.getxattr(path, name, None, 0)
    ret = libc.getxattr(path, name, buf, 4)
    print("%s %s %s" % (name.decode(), "size>4" if size > 4 else size,
                        errno.errorcode.get(ctypes.get_errno(), "?") if ret < 0 else ret))
size = libc.listxattr(path, None, 0)
ret = libc.listxattr(path, buf, 4)
print("list %s %s" % ("size>4" if size > 4 else size,
                      errno.errorcode.get(ctypes.get_errno(), "?") if ret < 0 else ret))
PY
)
dv_assert_same_text "getxattr/listxattr: size queries, ERANGE for a small buffer" \
	"$(printf '%s size>4 ERANGE\n' user.docvault.summary user.docvault.checksum user.docvault.tags list)" "$out"
dv_assert_ok "setfattr user.note (another user.* attribute)" setfattr -n user.note -v "keep me" "$f"

dv_note "after a remount"
dv_remount
assert_tags "after the remount" "alpha,beta,gamma" "$f"
dv_assert_eq "keep me" "$(dv_xattr "$f" user.note)" "user.note after the remount"

dv_note "a second user"
if ! id -u "$USER_NAME" >/dev/null 2>&1; then
	useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$USER_NAME" ||
		dv_die "useradd $USER_NAME failed"
	dv_on_exit "userdel $USER_NAME"
	dv_note "created the user $USER_NAME"
fi
uid=$(id -u "$USER_NAME")
gid=$(id -g "$USER_NAME")
as_user() { setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"; }
dv_assert_ok "chmod 755 the vault's root" chmod 755 "$MNT"
dv_assert_eq "$uid" "$(as_user id -u 2>&1)" "setpriv gives the user's uid"
dv_assert_eq "alpha,beta,gamma" "$(tagset "$(as_user getfattr --absolute-names --only-values \
	-n user.docvault.tags "$f" 2>&1)")" "the user reads the tags of a 0644 file"
for v in "mine" "+mine" "-alpha"; do
	dv_assert_fails "the user sets tags '$v' on root's 0644 file" \
		as_user setfattr -n user.docvault.tags -v "$v" "$f"
	dv_assert_match "... with EACCES or EPERM" 'Permission denied|Operation not permitted' "$DV_OUT"
done
dv_assert_fails "the user sets user.xdg.tags on it" as_user setfattr -n user.xdg.tags -v mine "$f"
dv_assert_match "... with EACCES or EPERM" 'Permission denied|Operation not permitted' "$DV_OUT"
dv_assert_fails "the user removes its tags" as_user setfattr -x user.docvault.tags "$f"
dv_assert_match "... with EACCES or EPERM" 'Permission denied|Operation not permitted' "$DV_OUT"
dv_assert_fails "the user asks for reprocessing" as_user setfattr -n user.docvault.reprocess -v 1 "$f"
dv_assert_match "... with EACCES or EPERM" 'Permission denied|Operation not permitted' "$DV_OUT"
assert_tags "after the user's refused writes" "alpha,beta,gamma" "$f"
dv_assert_eq completed "$(dv_xattr "$f" user.docvault.status)" "not queued again by the user"
dv_assert_ok "chmod 666 doc.txt" chmod 666 "$f"
dv_assert_ok "the user adds a tag to a file it may write" \
	as_user setfattr -n user.docvault.tags -v "+shared" "$f"
assert_tags "after the user's +shared" "alpha,beta,gamma,shared" "$f"
dv_assert_ok "chmod 644 doc.txt" chmod 644 "$f"
printf 'The user owns this note about tide pools and sea anemones.\n' >"$MNT/users.txt"
chown "$uid:$gid" "$MNT/users.txt" && chmod 600 "$MNT/users.txt"
dv_assert_ok "the user tags its own 0600 file" as_user setfattr -n user.docvault.tags -v "mine,own" "$MNT/users.txt"
assert_tags "the user's own file" "mine,own" "$MNT/users.txt"

dv_note "writes of computed attributes are accepted and ignored"
for n in status checksum mime summary summary_source autotags uploaded id; do
	before=$(dv_xattr "$f" "user.docvault.$n")
	[[ -n $before ]] || dv_fail "user.docvault.$n of doc.txt is empty before the write"
	dv_assert_ok "setfattr user.docvault.$n (forged)" setfattr -n "user.docvault.$n" -v "forged $n" "$f"
	dv_assert_eq "$before" "$(dv_xattr "$f" "user.docvault.$n")" "user.docvault.$n is unchanged"
done
dv_assert_ok "setfattr user.docvault.error" setfattr -n user.docvault.error -v "forged" "$f"
dv_assert_fails "still no user.docvault.error" getfattr --absolute-names -n user.docvault.error "$f"
dv_assert_ok "setfattr of an unknown user.docvault.future" setfattr -n user.docvault.future -v x "$f"
dv_assert_fails "user.docvault.future is not kept" getfattr --absolute-names -n user.docvault.future "$f"
before=$(dv_xattr "$f" user.docvault.summary)
dv_assert_ok "setfattr -x user.docvault.summary" setfattr -x user.docvault.summary "$f"
dv_assert_eq "$before" "$(dv_xattr "$f" user.docvault.summary)" "the summary is still there"
assert_tags "after the forged writes" "alpha,beta,gamma,shared" "$f"

dv_note "reprocess"
big=$MNT/big.txt
awk 'BEGIN { for (i = 0; i < 400000; i++) print "Line " i ": glaciers carve valleys and leave moraines behind them." }' >"$big"
dv_sync "big.txt written"
dv_assert_match "the worker processes users.txt and big.txt" '^docvault worker: 2 completed, 0 failed' \
	"$(worker_once)"
dv_assert_eq completed "$(dv_xattr "$big" user.docvault.status)" "big.txt: status"
sum0=$(dv_xattr "$big" user.docvault.summary)
dv_assert_ok "tag big.txt" setfattr -n user.docvault.tags -v "ice,geology" "$big"
dv_assert_ok "setfattr user.docvault.reprocess" setfattr -n user.docvault.reprocess -v 1 "$big"
dv_assert_eq ready "$(dv_xattr "$big" user.docvault.status)" "big.txt is queued again (ready)"
worker_once >"$DV_DIR/worker.out" &
wpid=$!
seen=ready
while kill -0 "$wpid" 2>/dev/null; do
	st=$(dv_xattr "$big" user.docvault.status)
	[[ $st != "${seen##* }" ]] && seen+=" $st"
	sleep 0.05
done
wait "$wpid"
dv_assert_eq 0 "$?" "docvault worker --once exits 0"
st=$(dv_xattr "$big" user.docvault.status)
[[ $st != "${seen##* }" ]] && seen+=" $st"
dv_assert_eq "ready processing completed" "$seen" "big.txt went through these states"
dv_assert_match "the worker processed it once" '^docvault worker: 1 completed' "$(cat "$DV_DIR/worker.out")"
dv_assert_eq "$sum0" "$(dv_xattr "$big" user.docvault.summary)" "the same summary"
assert_tags "big.txt after reprocessing" "geology,ice" "$big"
dv_done
