# shellcheck shell=bash
# lib.sh - the harness of the integration tests, sourced by every case.
#
# Model: one case = one script = one vault. dv_setup makes a temporary
# directory, a fresh PostgreSQL database (and, for DV_TEST_STORE=s3, a fresh
# bucket), a config file (mode 600), runs `docvault init`, and mounts the
# daemon at $MNT in the foreground mode (-f) as a background child, so the
# harness knows its pid and its exit status and its stderr lands in $DV_LOG.
# An EXIT trap unmounts (lazily if it must), kills the daemon, drops the
# database and the bucket and removes the directory, whatever happened. A
# watchdog bounds the case's run time (DV_TEST_TIMEOUT seconds): past it the
# daemon is killed, which turns every pending FUSE request into ENOTCONN, so
# nothing stays blocked in the mount, and the case fails.
#
# Checks count passes and failures (dv_pass/dv_fail and the dv_assert_*
# helpers) and carry on; dv_done tears down (a daemon that does not exit 0
# after unmount, or that logged a sanitizer report, is a failure too) and
# prints the closing "N passed, N failed". Nothing ever skips: a missing
# server or binary FAILS with a message.
#
# Environment:
#   DOCVAULT_BIN     the docvault binary (required unless DV_TEST_TARGET=dir)
#   DV_TEST_BINDIR   where the compiled t_* test programs are
#   DV_TEST_PGHOST, DV_TEST_PGPORT, DV_TEST_PGUSER   the PostgreSQL server
#   DV_TEST_STORE    local (default) | s3, with DV_TEST_S3_ENDPOINT, _REGION,
#                    _ACCESS_KEY, _SECRET_KEY for s3
#   DV_TEST_TARGET   mount (default) | dir: run the case against a plain
#                    temporary directory, to validate the tests themselves
#   DV_TEST_TMPDIR   where the temporary directories go (default $TMPDIR|/tmp)
#   DV_TEST_TIMEOUT  the time bound in seconds (default 570)
#   DV_TEST_KEEP=1   keep the temporary directory and the database
#
# Not a framework: plain bash functions, prefixed dv_, no set -e (every
# check says itself whether it passed).

set -u
set -o pipefail
umask 022

DV_CASE=$(basename "$0" .sh)
DV_TEST_TARGET=${DV_TEST_TARGET:-mount}
DV_TEST_STORE=${DV_TEST_STORE:-local}
DV_TEST_TIMEOUT=${DV_TEST_TIMEOUT:-570}
DV_PASSED=0
DV_FAILED=0
DV_DONE=0
DV_DIR=''
MNT=''
DV_CONF=''
DV_LOG=''
DV_DB=''
DV_BUCKET=''
DV_PID=''
DV_WATCHDOG=''
DV_ALLOW_OTHER=${DV_ALLOW_OTHER:-false}
DV_CLEANUP_HOOKS=()
DV_DAEMON_ENV=()	# extra VAR=value for the daemon's environment
DV_START=$SECONDS

# --- reporting -------------------------------------------------------------

dv_note() { printf '== %s\n' "$*"; }

dv_pass() {
	DV_PASSED=$((DV_PASSED + 1))
	printf 'ok   %s\n' "$*"
}

# dv_fail MSG [DETAIL]: a failed check; DETAIL (command output, a diff) is
# shown indented below it. A dead daemon ends the case here, with the reason.
dv_fail() {
	DV_FAILED=$((DV_FAILED + 1))
	printf 'FAIL %s: %s\n' "$DV_CASE" "$1"
	(($# < 2)) || printf '%s\n' "$2" | sed 's/^/     | /'
	dv_daemon_died && dv_die "the daemon died unexpectedly (exit status $DV_DAEMON_RC): the case cannot go on"
}

# dv_die MSG: a failure after which the case cannot go on.
dv_die() {
	dv_fail "$*"
	dv_done
}

dv_mode_is_dir() { [[ $DV_TEST_TARGET == dir ]]; }

# dv_assert_eq EXPECTED ACTUAL WHAT
dv_assert_eq() {
	if [[ "$1" == "$2" ]]; then
		dv_pass "$3"
	else
		dv_fail "$3: expected '$1', got '$2'"
	fi
}

# dv_assert_ok WHAT CMD...: CMD exits 0. Its output is shown on failure.
dv_assert_ok() {
	local what=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if ((rc == 0)); then
		dv_pass "$what"
	else
		dv_fail "$what: '$*' exited $rc" "$(tail -n 30 <<<"$out")"
	fi
	return $rc
}

# dv_assert_fails WHAT CMD...: CMD exits non-zero. Sets DV_OUT to its output.
dv_assert_fails() {
	local what=$1 rc
	shift
	DV_OUT=$("$@" 2>&1)
	rc=$?
	if ((rc != 0)); then
		dv_pass "$what (exit $rc)"
		return 0
	fi
	dv_fail "$what: '$*' succeeded, expected a failure" "$(tail -n 30 <<<"$DV_OUT")"
	return 1
}

# dv_assert_match WHAT ERE TEXT: TEXT matches the extended regexp ERE.
dv_assert_match() {
	if grep -Eq -- "$2" <<<"$3"; then
		dv_pass "$1"
	else
		dv_fail "$1: no match for /$2/ in:" "$(tail -n 30 <<<"$3")"
	fi
}

# dv_assert_no_match WHAT ERE TEXT
dv_assert_no_match() {
	if grep -Eq -- "$2" <<<"$3"; then
		dv_fail "$1: unexpected match for /$2/ in:" "$(grep -E -- "$2" <<<"$3" | head -n 30)"
	else
		dv_pass "$1"
	fi
}

# dv_assert_same WHAT FILE_A FILE_B: byte-identical files.
dv_assert_same() {
	local out
	if out=$(cmp -- "$2" "$3" 2>&1); then
		dv_pass "$1"
	else
		dv_fail "$1: $out"
	fi
}

# dv_assert_same_text WHAT TEXT_A TEXT_B: equal texts, a diff on failure.
dv_assert_same_text() {
	if [[ "$2" == "$3" ]]; then
		dv_pass "$1"
	else
		dv_fail "$1: they differ (< expected, > got):" \
			"$(diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | head -n 40)"
	fi
}

# --- tree helpers ----------------------------------------------------------

# dv_manifest DIR: one line per entry below DIR, sorted: type, path, mode,
# owner, size, links, mtime with nanoseconds, device numbers, link target.
# Directory sizes and link counts are left out: they are the file system's
# own business (ext4 says 4096, another says 0).
dv_manifest() {
	(cd "$1" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
		QUOTING_STYLE=literal xargs -0 -r stat --printf '%F|%n|%a|%u:%g|%s|%h|%.9Y|%t:%T|%N\n') |
		awk -F'|' 'BEGIN { OFS = "|" } $1 == "directory" { $5 = "-"; $6 = "-" } { print }'
}

# dv_assert_same_tree WHAT SRC DST: same manifest and, for regular files
# and symlinks, the same content (diff -r does not follow symlinks with
# --no-dereference, and FIFOs and devices are compared by the manifest).
dv_assert_same_tree() {
	local what=$1 src=$2 dst=$3 out
	dv_assert_same_text "$what: types, modes, owners, sizes, mtimes" \
		"$(dv_manifest "$src")" "$(dv_manifest "$dst")"
	if out=$(diff -r --no-dereference -x '*.fifo' -x '*.dev' -x '*.sock' \
		-- "$src" "$dst" 2>&1); then
		dv_pass "$what: contents (diff -r)"
	else
		dv_fail "$what: diff -r found differences:" "$(head -n 30 <<<"$out")"
	fi
}

# dv_random_file PATH BYTES: a file of pseudo-random content.
dv_random_file() {
	head -c "$2" /dev/urandom >"$1"
}

# dv_make_tree DIR [hardlinks] [xattrs] [specials] [owners]: a tree of the
# kinds of things real trees hold: nested directories, files of sizes 0 to
# 3 MiB, odd names (spaces, UTF-8, not UTF-8), symlinks (relative, to a
# directory, absolute, dangling), modes from 0 to 7777-ish, and mtimes with
# nanoseconds set last (directories after their content). With options:
# hard links (one inode under three names), user.* xattrs, a FIFO and two
# device nodes (named *.fifo and *.dev so diff -r can skip them), files
# owned by other users.
dv_make_tree() {
	local d=$1 opt hardlinks=0 xattrs=0 specials=0 owners=0 rc
	shift
	for opt; do
		case $opt in
		hardlinks) hardlinks=1 ;;
		xattrs) xattrs=1 ;;
		specials) specials=1 ;;
		owners) owners=1 ;;
		*) dv_die "dv_make_tree: unknown option $opt" ;;
		esac
	done
	# In a subshell with set -e: any step that fails (the tree may be
	# built inside the vault) stops it, and its message is above.
	(
		set -e
		mkdir -p "$d/a/b/c/d" "$d/empty" "$d/private" "$d/shared" "$d/sgid" "$d/ro"
		: >"$d/zero"
		printf x >"$d/one"
		dv_random_file "$d/a/4095" 4095
		dv_random_file "$d/a/4096" 4096
		dv_random_file "$d/a/b/4097" 4097
		dv_random_file "$d/a/b/c/1mib" 1048576
		dv_random_file "$d/a/b/c/d/3mib" 3145728
		dv_random_file "$d/a/b/c/d/odd size" 123457
		for i in $(seq 1 20); do
			printf 'small file %s\n' "$i" >"$d/a/b/small-$i.txt"
		done
		printf '#!/bin/sh\necho hello\n' >"$d/script.sh"
		printf 'caf\xc3\xa9\n' >"$d/caf$(printf '\xc3\xa9') na$(printf '\xc3\xaf')ve.txt"
		printf 'latin1\n' >"$d/latin$(printf '\xe9\xff')1"
		printf 'spaces\n' >"$d/a/with  two spaces "
		printf 'ro\n' >"$d/ro/inside"
		printf 'secret\n' >"$d/private/secret"
		ln -s 4095 "$d/a/rel-link"
		ln -s a/b "$d/dir-link"
		ln -s /etc/hostname "$d/abs-link"
		ln -s does/not/exist "$d/a/b/dangling"
		chmod 0755 "$d/script.sh"
		chmod 0444 "$d/one"
		chmod 0600 "$d/private/secret"
		chmod 0640 "$d/a/4095"
		chmod 04755 "$d/a/b/4097"
		chmod 0 "$d/zero"
		chmod 0700 "$d/private"
		chmod 1777 "$d/shared"
		chmod 2775 "$d/sgid"
		chmod 0555 "$d/ro"
		if ((hardlinks)); then
			printf 'linked\n' >"$d/a/linked"
			ln "$d/a/linked" "$d/a/b/linked-too"
			ln "$d/a/linked" "$d/linked-three"
		fi
		if ((xattrs)); then
			setfattr -n user.color -v blue "$d/one"
			setfattr -n user.empty "$d/zero"
			setfattr -n user.bin -v 0x00ff00ff7f "$d/a/4096"
			setfattr -n user.dir -v yes "$d/a/b"
			setfattr -n user.long -v "$(head -c 300 /dev/zero | tr '\0' x)" "$d/script.sh"
			if ((hardlinks)); then
				setfattr -n user.shared -v "one inode" "$d/a/linked"
			fi
		fi
		if ((specials)); then
			mkfifo -m 0640 "$d/a/pipe.fifo"
			mknod -m 0600 "$d/a/null.dev" c 1 3
			mknod -m 0660 "$d/a/b/disk.dev" b 8 17
		fi
		if ((owners)); then
			chown 1234:5678 "$d/a/4096" "$d/a/b"
			chown -h 4321:4321 "$d/a/rel-link"
		fi
		# Times last, deepest first, so that creating entries does not
		# move their parents' mtimes again.
		list=$(mktemp "$DV_DIR/tmp/tree.XXXXXX")
		find "$d" -mindepth 1 -depth -print0 >"$list"
		i=0
		while IFS= read -r -d '' t; do
			i=$((i + 1))
			touch -h -d "@$((1500000000 + i * 86400)).$(printf '%09d' $((i * 123456789 % 1000000000)))" \
				-- "$t"
		done <"$list"
		rm "$list"
	)
	rc=$?
	((rc == 0)) || dv_die "dv_make_tree $d: a step failed (exit $rc), see above"
}

# dv_xattrs DIR: the user.* attributes below DIR, one "path name=value"
# line each, sorted; docvault's own (user.docvault.*, and the tags it
# shows as user.xdg.tags) are left out: they are computed from the content.
dv_xattrs() {
	(cd "$1" && getfattr -R -h -d -e hex -m '^user\.' . 2>/dev/null) |
		awk '/^# file: / { f = substr($0, 9); next }
		     /^user\.docvault\./ || /^user\.xdg\.tags=/ { next }
		     /=/ || /^user\./ { print f " " $0 }' | LC_ALL=C sort
}

# dv_assert_same_xattrs WHAT SRC DST
dv_assert_same_xattrs() {
	local a b
	a=$(dv_xattrs "$2")
	b=$(dv_xattrs "$3")
	if [[ -z $a ]]; then
		dv_fail "$1: the source has no user.* attributes (getfattr missing?)"
		return
	fi
	dv_assert_same_text "$1: user.* extended attributes" "$a" "$b"
}

# dv_run_prog PROG ARGS...: runs a compiled t_* program and adds its
# "N passed, N failed" to the case's counts; a crash counts as a failure.
dv_run_prog() {
	local prog=$1 out rc line p f
	shift
	if [[ -z ${DV_TEST_BINDIR:-} || ! -x $DV_TEST_BINDIR/$prog ]]; then
		dv_die "the test program $prog is not in DV_TEST_BINDIR='${DV_TEST_BINDIR:-}' (build the tree first)"
	fi
	dv_note "$prog $*"
	# Streamed, not captured: a program that hangs has shown how far it got.
	(cd "$DV_DIR" && DV_TEST_TARGET=$DV_TEST_TARGET "$DV_TEST_BINDIR/$prog" "$@" 2>&1) |
		tee "$DV_DIR/$prog.out"
	rc=$?
	out=$(cat "$DV_DIR/$prog.out")
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' <<<"$out" | tail -n 1)
	if [[ -n $line ]]; then
		read -r p _ f _ <<<"$line"
		DV_PASSED=$((DV_PASSED + p))
		DV_FAILED=$((DV_FAILED + f))
	fi
	if [[ -z $line ]] || ((rc != 0 && f == 0)); then
		dv_fail "$prog exited $rc without its closing line (crashed?)"
	fi
	dv_daemon_died && dv_die "the daemon died unexpectedly (exit status $DV_DAEMON_RC) while $prog ran"
}

# --- PostgreSQL and the stores ---------------------------------------------

dv_pg_args() {
	printf '%s\n' -h "$DV_TEST_PGHOST" -p "$DV_TEST_PGPORT" -U "$DV_TEST_PGUSER"
}

# Runs curl on an S3 request signed with SigV4; the credentials go to curl
# through a config on a pipe, never on the command line (stdin stays free
# for a request body: --data-binary @-).
# dv_s3 METHOD PATH [CURL ARGS...]
dv_s3() {
	local method=$1 path=$2
	shift 2
	curl -sS --fail-with-body --connect-timeout 10 --max-time 120 \
		-K <(printf 'user = "%s:%s"\n' "$DV_TEST_S3_ACCESS_KEY" "$DV_TEST_S3_SECRET_KEY") \
		--aws-sigv4 "aws:amz:$DV_TEST_S3_REGION:s3" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
		-X "$method" "${DV_TEST_S3_ENDPOINT%/}/$path" "$@"
}

dv_s3_require_env() {
	local v
	for v in DV_TEST_S3_ENDPOINT DV_TEST_S3_REGION DV_TEST_S3_ACCESS_KEY DV_TEST_S3_SECRET_KEY; do
		[[ -n ${!v:-} ]] || dv_die "DV_TEST_STORE=s3 needs $v (run the tests under tools/check)"
	done
}

dv_s3_bucket_create() {
	local out
	out=$(dv_s3 PUT "$DV_BUCKET" 2>&1) ||
		dv_die "cannot create the bucket $DV_BUCKET at $DV_TEST_S3_ENDPOINT: $out"
}

# Empties the bucket (objects, then unfinished multipart uploads) and
# removes it. Keys are hex paths, but are URL-encoded anyway.
dv_s3_bucket_delete() {
	local listing key id token='' q
	while :; do
		q='list-type=2'
		[[ -n $token ]] && q+="&continuation-token=$(dv_urlencode "$token")"
		listing=$(dv_s3 GET "$DV_BUCKET?$q" 2>/dev/null) || break
		while read -r key; do
			[[ -n $key ]] || continue
			# A server that stops answering would make this take forever.
			if ! dv_s3 DELETE "$DV_BUCKET/$(dv_urlencode "$key" /)" >/dev/null 2>&1; then
				printf 'harness: the S3 server does not delete %s; bucket %s left behind\n' \
					"$key" "$DV_BUCKET"
				return 1
			fi
		done < <(grep -o '<Key>[^<]*</Key>' <<<"$listing" | sed 's/<[^>]*>//g')
		token=$(grep -o '<NextContinuationToken>[^<]*' <<<"$listing" | sed 's/.*>//')
		[[ -n $token ]] || break
	done
	listing=$(dv_s3 GET "$DV_BUCKET?uploads" 2>/dev/null) || listing=''
	while read -r key id; do
		[[ -n $key ]] && dv_s3 DELETE \
			"$DV_BUCKET/$(dv_urlencode "$key" /)?uploadId=$(dv_urlencode "$id")" >/dev/null 2>&1
	done < <(grep -o '<Key>[^<]*</Key>[[:space:]]*<UploadId>[^<]*' <<<"$listing" |
		sed -E 's#<Key>([^<]*)</Key>[[:space:]]*<UploadId>#\1 #')
	dv_s3 DELETE "$DV_BUCKET" >/dev/null 2>&1 ||
		printf 'harness: could not delete the bucket %s\n' "$DV_BUCKET"
}

# dv_urlencode STRING [SAFE]: percent-encodes all but unreserved characters
# (and the characters in SAFE).
dv_urlencode() {
	local LC_ALL=C s=$1 safe=${2:-} out='' c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		if [[ $c == [A-Za-z0-9._~-] || ( -n $safe && $safe == *"$c"* ) ]]; then
			out+=$c
		else
			out+=$(printf '%%%02X' "'$c")
		fi
	done
	printf '%s' "$out"
}

# dv_write_config PATH [EXTRA LINES...]: the case's config; extra lines are
# appended verbatim (errors.sh writes broken ones with them).
dv_write_config() {
	local path=$1
	shift
	{
		printf '[database]\n'
		printf 'conninfo = host=%s port=%s user=%s dbname=%s\n' \
			"$DV_TEST_PGHOST" "$DV_TEST_PGPORT" "$DV_TEST_PGUSER" "$DV_DB"
		printf '\n[storage]\n'
		if [[ $DV_TEST_STORE == s3 ]]; then
			printf 'type = s3\nendpoint = %s\nregion = %s\nbucket = %s\n' \
				"$DV_TEST_S3_ENDPOINT" "$DV_TEST_S3_REGION" "$DV_BUCKET"
			printf 'access_key = %s\nsecret_key = %s\n' \
				"$DV_TEST_S3_ACCESS_KEY" "$DV_TEST_S3_SECRET_KEY"
		else
			printf 'type = local\npath = %s/blobs\n' "$DV_DIR"
		fi
		printf '\n[cache]\ndir = %s/cache\n' "$DV_DIR"
		printf '\n[mount]\nallow_other = %s\n' "$DV_ALLOW_OTHER"
		(($# == 0)) || printf '%s\n' "$@"
	} >"$path"
	chmod 600 "$path"
}

# --- the daemon ------------------------------------------------------------

dv_require_env() {
	local v
	[[ -n ${DOCVAULT_BIN:-} && -x ${DOCVAULT_BIN:-} ]] ||
		dv_die "DOCVAULT_BIN='${DOCVAULT_BIN:-}' is not an executable docvault binary"
	for v in DV_TEST_PGHOST DV_TEST_PGPORT DV_TEST_PGUSER; do
		[[ -n ${!v:-} ]] ||
			dv_die "$v is not set: the integration tests need a PostgreSQL server (run them under tools/check, or start one: tools/lib/pg.sh start DIR && . DIR/env)"
	done
	case $DV_TEST_STORE in
	local) ;;
	s3) dv_s3_require_env ;;
	*) dv_die "DV_TEST_STORE='$DV_TEST_STORE' is neither local nor s3" ;;
	esac
}

# dv_is_mounted DIR: DIR is a mount point, from the mount table: never stat
# it (a hung daemon would block us, a dead one gives ENOTCONN, which
# mountpoint(1) takes for "not mounted"). Our paths have no blanks, so the
# mount table's octal escapes do not matter.
dv_is_mounted() {
	awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# dv_pid_alive PID: running, and not a zombie waiting for us to reap it.
dv_pid_alive() {
	local st
	[[ -n $1 && -r /proc/$1/stat ]] || return 1
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[[ -n $st && $st != Z ]]
}

# dv_daemon_died: true, once, when the mounted daemon is no longer running
# though nobody unmounted it (a crash, a sanitizer abort); sets DV_DAEMON_RC.
DV_DAEMON_DEATH_SEEN=0
dv_daemon_died() {
	((DV_DAEMON_DEATH_SEEN == 0)) && [[ -n $DV_PID ]] && ! dv_pid_alive "$DV_PID" || return 1
	DV_DAEMON_DEATH_SEEN=1
	wait "$DV_PID"
	DV_DAEMON_RC=$?
	DV_PID=''
	return 0
}

# dv_mount: starts the daemon on $MNT and waits until the mount is ready.
dv_mount() {
	local i
	: >>"$DV_LOG"
	printf -- '--- mount at %s\n' "$(date +%T.%N)" >>"$DV_LOG"
	# env execs the daemon, so $! is the daemon's own pid.
	env "${DV_DAEMON_ENV[@]}" "$DOCVAULT_BIN" mount -c "$DV_CONF" "$MNT" -f \
		${DV_MOUNT_OPTS:+-o "$DV_MOUNT_OPTS"} </dev/null >>"$DV_LOG" 2>&1 &
	DV_PID=$!
	printf '%s\n' "$DV_PID" >"$DV_DIR/daemon.pid"
	for ((i = 0; i < 300; i++)); do
		if dv_is_mounted "$MNT"; then
			dv_pass "mounted at $MNT (daemon pid $DV_PID)"
			return 0
		fi
		dv_pid_alive "$DV_PID" || break
		sleep 0.1
	done
	if dv_pid_alive "$DV_PID"; then
		dv_die "the daemon did not mount $MNT within 30 s"
	fi
	wait "$DV_PID"
	local rc=$?
	DV_PID=''
	dv_die "docvault mount exited $rc before the mount was ready"
}

# dv_wait_daemon SECONDS: waits for the daemon to exit and sets DV_DAEMON_RC;
# returns 1 if it is still running after SECONDS.
dv_wait_daemon() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		dv_pid_alive "$DV_PID" || break
		sleep 0.1
	done
	dv_pid_alive "$DV_PID" && return 1
	wait "$DV_PID"
	DV_DAEMON_RC=$?
	DV_PID=''
	return 0
}

# Sanitizer and crash reports in the daemon's log are failures.
dv_check_log() {
	local bad
	[[ -f $DV_LOG ]] || return 0
	bad=$(grep -E 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: .*Sanitizer' \
		"$DV_LOG" | head -n 5)
	if [[ -n $bad ]]; then
		dv_fail "the daemon's log has sanitizer reports:" "$bad"
	fi
	# Checked once per daemon run: rotate the log so each run is judged alone.
	cat "$DV_LOG" >>"$DV_LOG.all"
	: >"$DV_LOG"
}

# dv_unmount: unmounts, waits for the daemon to finish its pending work and
# exit, and checks that it exited 0 with a clean log.
dv_unmount() {
	local i out
	dv_mode_is_dir && return 0
	for ((i = 0; i < 50; i++)); do
		out=$(fusermount3 -u -- "$MNT" 2>&1) && break
		sleep 0.2
	done
	if dv_is_mounted "$MNT"; then
		dv_fail "fusermount3 -u $MNT keeps failing: $out"
		return 1
	fi
	if [[ -n $DV_PID ]]; then
		if dv_wait_daemon 120; then
			dv_assert_eq 0 "$DV_DAEMON_RC" "the daemon exits 0 after unmount"
		else
			dv_fail "the daemon (pid $DV_PID) still runs 120 s after unmount"
			kill -KILL "$DV_PID" 2>/dev/null
			dv_wait_daemon 10
		fi
	fi
	dv_check_log
}

# dv_remount: unmount, then mount the same vault again.
dv_remount() {
	if dv_mode_is_dir; then
		dv_note "dir mode: no remount"
		return 0
	fi
	dv_unmount
	dv_mount
}

# The daemon's peak resident set (VmHWM) in KiB, empty in dir mode.
dv_daemon_hwm_kib() {
	[[ -n $DV_PID ]] || return 0
	awk '/^VmHWM:/ { print $2 }' "/proc/$DV_PID/status" 2>/dev/null
}

# dv_on_exit CMD...: runs CMD during the cleanup (before the unmount).
dv_on_exit() {
	DV_CLEANUP_HOOKS+=("$*")
}

# The watchdog: after DV_TEST_TIMEOUT seconds it kills the daemon (pending
# FUSE requests then fail with ENOTCONN instead of hanging) and stops the
# case with SIGTERM, whose trap fails it and cleans up.
dv_start_watchdog() {
	local main=$$
	(
		trap 'kill $sp 2>/dev/null; exit 0' TERM
		sleep "$DV_TEST_TIMEOUT" >/dev/null 2>&1 &
		sp=$!
		wait $sp || exit 0
		# Orphaned (the case was killed without its traps)? Then $main
		# may be another process by now: touch nothing.
		wd=$BASHPID
		[[ $(cut -d' ' -f4 "/proc/$wd/stat" 2>/dev/null) == "$main" ]] || exit 0
		printf 'FAIL %s: timed out after %s s; killing the daemon\n' "$DV_CASE" "$DV_TEST_TIMEOUT"
		: >"$DV_DIR/.timed_out"
		pid=$(cat "$DV_DIR/daemon.pid" 2>/dev/null)
		if [[ -n $pid ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- " $MNT "; then
			kill -KILL "$pid"
		fi
		kill -TERM "$main"
	) </dev/null &
	DV_WATCHDOG=$!
}

dv_on_signal() {
	if [[ -e $DV_DIR/.timed_out ]]; then
		DV_DAEMON_DEATH_SEEN=1 # the watchdog killed it
		dv_fail "the case did not finish within $DV_TEST_TIMEOUT s"
	else
		dv_fail "interrupted by a signal"
	fi
	exit 1
}

# dv_setup: the case's vault, mounted at $MNT (in dir mode: a plain
# directory at $MNT).
dv_setup() {
	local base=${DV_TEST_TMPDIR:-${TMPDIR:-/tmp}} tag
	dv_mode_is_dir || dv_require_env
	DV_DIR=$(mktemp -d "$base/dv-$DV_CASE.XXXXXX") || dv_die "mktemp -d in $base failed"
	chmod 755 "$DV_DIR"	# other users must reach $MNT (second_user.sh)
	trap dv_cleanup EXIT
	trap dv_on_signal TERM INT HUP
	MNT=$DV_DIR/mnt
	DV_LOG=$DV_DIR/daemon.log
	dv_start_watchdog
	mkdir "$MNT" "$DV_DIR/cache" "$DV_DIR/blobs" "$DV_DIR/tmp"
	if dv_mode_is_dir; then
		dv_note "$DV_CASE: dir mode, target is the plain directory $MNT ($(stat -f -c %T "$MNT"))"
		return 0
	fi
	tag=$(printf '%s_%s_%s' "$DV_CASE" "$$" "$RANDOM" | tr 'A-Z-' 'a-z_')
	DV_DB=dvtest_$tag
	local args out
	mapfile -t args < <(dv_pg_args)
	out=$(createdb "${args[@]}" "$DV_DB" 2>&1) ||
		dv_die "createdb $DV_DB on $DV_TEST_PGHOST:$DV_TEST_PGPORT failed: $out"
	if [[ $DV_TEST_STORE == s3 ]]; then
		DV_BUCKET=dvtest-$(tr '_' '-' <<<"$tag")
		DV_BUCKET=${DV_BUCKET:0:63}
		dv_s3_bucket_create
	fi
	DV_CONF=$DV_DIR/docvault.conf
	dv_write_config "$DV_CONF"
	dv_note "$DV_CASE: store $DV_TEST_STORE, database $DV_DB, dir $DV_DIR"
	out=$("$DOCVAULT_BIN" init -c "$DV_CONF" 2>&1) || {
		printf '%s\n' "$out" >>"$DV_LOG"
		dv_die "docvault init -c $DV_CONF failed: $out"
	}
	dv_mount
}

# Shows the end of the daemon's log (all runs) after a failure.
dv_show_log() {
	local f
	for f in "$DV_LOG.all" "$DV_LOG"; do
		[[ -s $f ]] || continue
		printf -- '--- the daemon log (%s), last 80 lines:\n' "$f"
		tail -n 80 "$f"
		printf -- '--- end of the daemon log\n'
	done
}

# The EXIT trap: runs whatever happened; never blocks on a dead mount.
dv_cleanup() {
	local rc=$? h args i
	trap - EXIT TERM INT HUP
	if ((DV_DONE == 0)); then
		dv_fail "the case stopped early (exit status $rc) before dv_done"
	fi
	[[ -n $DV_WATCHDOG ]] && kill -TERM "$DV_WATCHDOG" 2>/dev/null
	for h in "${DV_CLEANUP_HOOKS[@]}"; do
		eval "$h" || printf 'harness: cleanup hook failed: %s\n' "$h"
	done
	if [[ -n $MNT ]] && ! dv_mode_is_dir; then
		for ((i = 0; i < 5; i++)); do
			dv_is_mounted "$MNT" || break
			fusermount3 -u -- "$MNT" 2>/dev/null || sleep 0.5
		done
		if [[ -n $DV_PID ]] && ! dv_wait_daemon 30; then
			printf 'harness: the daemon does not exit; killing it\n'
			kill -KILL "$DV_PID" 2>/dev/null
			dv_wait_daemon 10
		fi
		for ((i = 0; i < 5; i++)); do
			dv_is_mounted "$MNT" || break
			fusermount3 -uz -- "$MNT" 2>/dev/null || umount -l -- "$MNT" 2>/dev/null
		done
		dv_is_mounted "$MNT" && printf 'harness: %s is still mounted\n' "$MNT"
	fi
	((DV_FAILED > 0)) && dv_show_log
	if [[ ${DV_TEST_KEEP:-0} == 1 ]]; then
		printf 'harness: kept %s and the database %s\n' "$DV_DIR" "${DV_DB:-none}"
	else
		if [[ -n $DV_DB ]]; then
			mapfile -t args < <(dv_pg_args)
			dropdb --force "${args[@]}" "$DV_DB" 2>/dev/null ||
				printf 'harness: dropdb %s failed\n' "$DV_DB"
		fi
		[[ -n $DV_BUCKET ]] && dv_s3_bucket_delete
		[[ -n $DV_DIR ]] && ! dv_is_mounted "$MNT" && rm -rf --one-file-system -- "$DV_DIR"
	fi
	if ((DV_DONE == 0)); then
		printf '%d passed, %d failed\n' "$DV_PASSED" "$DV_FAILED"
	fi
	((DV_FAILED == 0)) || exit 1
	exit "$rc"
}

# dv_done: unmount (checking the daemon's exit), print the closing line and
# exit with the verdict.
dv_done() {
	if ((DV_DONE == 0)); then
		DV_DONE=1
		if [[ -n $MNT ]] && ! dv_mode_is_dir && dv_is_mounted "$MNT"; then
			dv_unmount
		fi
		printf '%s: %d s\n' "$DV_CASE" $((SECONDS - DV_START))
		printf '%d passed, %d failed\n' "$DV_PASSED" "$DV_FAILED"
	fi
	((DV_FAILED == 0))
	exit $?
}

# --- the write-back cache: config edits, sync, crashes, private servers ------
#
# Used by the wb_*.sh cases (issue 4). Private servers: a case that stops or
# restarts PostgreSQL or the S3 server never touches the shared ones (other
# cases use them at the same time); it starts its own with tools/lib/pg.sh
# or tools/lib/rgw.sh before dv_setup, and the cleanup stops them.

DV_TOOLS_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tools/lib" 2>/dev/null && pwd)
DV_PRIVATE_PG=''
DV_PRIVATE_RGW=''
DV_RGW_EXE=''
DV_RGW_ARGS=()
DV_FRESH_CACHES=0

# dv_conf_set SECTION KEY VALUE: sets KEY = VALUE in [SECTION] of $DV_CONF,
# replacing the key's line or adding one at the end of the section (and the
# section at the end of the file if it has none). Takes effect at the next
# mount.
dv_conf_set() {
	local section=$1 key=$2 value=$3
	awk -v s="[$section]" -v k="$key" -v v="$value" '
		function emit() { if (in_s && !done) { print k " = " v; done = 1 } }
		/^\[/ { emit(); in_s = ($0 == s); if (in_s) seen = 1; print; next }
		in_s && $0 ~ ("^[ \t]*" k "[ \t]*=") { if (!done) print k " = " v; done = 1; next }
		{ print }
		END { emit(); if (!seen) { print ""; print s; print k " = " v } }' \
		"$DV_CONF" >"$DV_CONF.new" || dv_die "dv_conf_set: cannot rewrite $DV_CONF"
	chmod 600 "$DV_CONF.new"
	mv -f "$DV_CONF.new" "$DV_CONF"
}

# dv_sync WHAT [ARGS...]: `docvault sync -c $DV_CONF --timeout 150 ARGS`
# exits 0 (every journaled commit is done); its output is shown on failure.
# No-op in dir mode.
dv_sync() {
	local what=$1
	shift
	dv_mode_is_dir && return 0
	dv_assert_ok "$what: docvault sync exits 0" \
		timeout 200 "$DOCVAULT_BIN" sync -c "$DV_CONF" --timeout 150 "$@"
}

# dv_queue_line: the "queue:" line of `docvault status` (empty if none).
dv_queue_line() {
	"$DOCVAULT_BIN" status -c "$DV_CONF" 2>&1 | grep -m 1 '^queue:'
}

# dv_queue_files: the number of files waiting in the queue (the number
# before "file" on the queue: line), empty if there is no such line.
dv_queue_files() {
	dv_queue_line | grep -oE '[0-9]+ +files?' | head -n 1 | grep -oE '^[0-9]+'
}

# dv_assert_queue_empty WHAT: `docvault status` has a "queue:" line that
# says "empty", or 0 files (and 0 bytes, if it counts bytes) waiting.
dv_assert_queue_empty() {
	local what=$1 line files bytes
	dv_mode_is_dir && return 0
	line=$(dv_queue_line)
	if [[ -z $line ]]; then
		dv_fail "$what: docvault status prints no queue: line" \
			"$("$DOCVAULT_BIN" status -c "$DV_CONF" 2>&1 | tail -n 20)"
		return 1
	fi
	# only the figures: the "(cache DIR)" part holds a random name ("...5B/")
	local figures=${line%%(cache *}
	files=$(grep -oE '[0-9]+ +files?' <<<"$figures" | head -n 1 | grep -oE '^[0-9]+')
	bytes=$(grep -oE '[0-9.]+ *([KMGT]i?)?B(ytes?)?\b' <<<"$figures" | head -n 1 | grep -oE '^[0-9.]+')
	if [[ $line == *empty* || ($files == 0 && ${bytes:-0} =~ ^0(\.0*)?$) ]]; then
		dv_pass "$what: the queue is empty ($(tr -s ' ' <<<"$line"))"
	else
		dv_fail "$what: the queue is not empty: $line"
		return 1
	fi
}

# dv_reap_killed_daemon WHAT [SECONDS]: the daemon is dying or dead of a
# SIGKILL (a fault hook, or dv_kill_daemon): waits for it (up to SECONDS,
# default 60), checks that it died of SIGKILL (status 137: not of a crash or
# a sanitizer abort), unmounts the dead mount lazily (fusermount3 -u -z), and
# checks its log. Returns 1, the daemon still running, if it does not die.
dv_reap_killed_daemon() {
	local what=$1 secs=${2:-60} i
	dv_mode_is_dir && return 0
	if ! dv_wait_daemon "$secs"; then
		dv_fail "$what: the daemon (pid $DV_PID) is still running after $secs s"
		return 1
	fi
	dv_assert_eq 137 "$DV_DAEMON_RC" "$what: the daemon died of SIGKILL (exit status 128+9)"
	for ((i = 0; i < 10; i++)); do
		dv_is_mounted "$MNT" || break
		fusermount3 -u -z -- "$MNT" 2>/dev/null || umount -l -- "$MNT" 2>/dev/null || sleep 0.2
	done
	dv_is_mounted "$MNT" && dv_die "$what: cannot unmount the dead mount $MNT"
	dv_check_log
	return 0
}

# dv_kill_daemon WHAT: kill -9 of the daemon, then dv_reap_killed_daemon.
dv_kill_daemon() {
	dv_mode_is_dir && return 0
	[[ -n $DV_PID ]] || dv_die "$1: no daemon to kill"
	dv_note "$1: kill -9 $DV_PID"
	kill -KILL "$DV_PID" 2>/dev/null
	dv_reap_killed_daemon "$1" 30
}

# dv_remount_fresh_cache: unmount, point [cache] dir at a new empty
# directory, mount: every read after it comes from the store, so what is
# read back is what was really committed. No-op in dir mode.
dv_remount_fresh_cache() {
	local d
	if dv_mode_is_dir; then
		dv_note "dir mode: no remount"
		return 0
	fi
	dv_unmount
	DV_FRESH_CACHES=$((DV_FRESH_CACHES + 1))
	d=$DV_DIR/cache.fresh$DV_FRESH_CACHES
	mkdir "$d" || dv_die "mkdir $d failed"
	dv_conf_set cache dir "$d"
	dv_note "remount with the empty cache directory $d"
	dv_mount
}

# dv_t_writer ARGS...: runs t_writer (see t_writer.c) from DV_TEST_BINDIR.
dv_t_writer() {
	[[ -x ${DV_TEST_BINDIR:-}/t_writer ]] ||
		dv_die "the test program t_writer is not in DV_TEST_BINDIR='${DV_TEST_BINDIR:-}' (build the tree first)"
	"$DV_TEST_BINDIR/t_writer" "$@"
}

# dv_make_mixed_tree DIR LIST NSMALL [BIG_MIB...]: NSMALL files of 1 B to
# 64 KiB of random bytes in 7 subdirectories, and one file of random bytes
# per BIG_MIB argument, that many MiB (decimals allowed) plus 4321 bytes,
# spread evenly among the small ones (DIR/big/bN.bin). LIST gets the
# relative paths in that order (the order dv_writer writes them in). No
# empty file, no two files alike, nothing like another run's: dedup stays
# out of the way.
dv_make_mixed_tree() {
	local out
	out=$(dv_t_writer mktree "$@" 2>&1) || dv_die "t_writer mktree $*: $out"
}

# dv_writer SRC DST LIST LOG: copies the files of LIST from SRC to DST one
# at a time, appending each path to LOG (local disk) only once its close()
# returned 0; its output goes to the terminal and $DV_DIR/t_writer.out. Sets
# DV_WRITER_RC (0: all written; 3: stopped at a failing call, which the last
# lines of DV_WRITER_OUT describe, with "(errno N)") and DV_WRITER_OUT.
# Judging the outcome is the caller's business: in a crash test the writer
# dies with the daemon.
# shellcheck disable=SC2034 # DV_WRITER_* are for the case that called
dv_writer() {
	dv_note "t_writer copy $*"
	dv_t_writer copy "$@" 2>&1 | tee "$DV_DIR/t_writer.out"
	DV_WRITER_RC=${PIPESTATUS[0]}
	DV_WRITER_OUT=$(cat "$DV_DIR/t_writer.out")
}

# dv_assert_crash_rule WHAT SRC DST LIST LOG: what a crash may leave. Every
# file named in LOG (its close() had returned 0) is in DST, byte-exact with
# SRC. Every other file of LIST is absent, or empty (its create reached the
# database, none of its content did), or whole and byte-exact (closed just
# as the daemon died); never a part of its content, never wrong bytes. DST
# holds no file that LIST does not name. (t_writer verify: one process, not
# one per file.)
dv_assert_crash_rule() {
	local what=$1 out
	shift
	if out=$(dv_t_writer verify "$@" 2>&1); then
		dv_pass "$what: $(grep -m 1 'acknowledged' <<<"$out" | sed 's/^t_writer: //')"
	else
		dv_fail "$what: files missing, damaged or half there (t_writer verify):" \
			"$(grep -v 'passed, .* failed$' <<<"$out" | tail -n 25)"
	fi
}

# Before dv_setup, the cleanup hooks have no EXIT trap to run them yet (a
# failure there must still stop a private server): this one runs them.
dv_early_cleanup() {
	local h
	for h in "${DV_CLEANUP_HOOKS[@]}"; do
		eval "$h" || printf 'harness: cleanup hook failed: %s\n' "$h"
	done
}

# dv_private_reaper CMD: runs CMD once the case's shell is gone, however it
# went: a case killed outright (ctest's own time bound sends SIGKILL) has no
# cleanup, and a private server must not outlive it. Detached (setsid, and
# re-parented away from the case), so that a kill of the case's process
# tree does not take it along. CMD must be harmless after a normal cleanup.
dv_private_reaper() {
	local main=$$
	# shellcheck disable=SC2016 # expanded by the inner bash
	(setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 2; done; eval "$2"' \
		_ "$main" "$1" </dev/null >/dev/null 2>&1 &)
}

dv_private_guard() {
	[[ -z $DV_DIR ]] || dv_die "$1 must come before dv_setup"
	[[ -n $DV_TOOLS_LIB && -f $DV_TOOLS_LIB/pg.sh ]] ||
		dv_die "$1: tools/lib/ not found next to the tests (looked in $DV_TOOLS_LIB)"
	trap dv_early_cleanup EXIT
}

# dv_private_pg: before dv_setup. Starts a PostgreSQL of the case's own
# (tools/lib/pg.sh, in a directory next to the case's) and points
# DV_TEST_PGHOST/PORT/USER at it, so that dv_setup makes the database there;
# the cleanup stops it and removes it. DV_PRIVATE_PG is its directory, for
# `pg.sh stop|start`. No-op in dir mode.
dv_private_pg() {
	local base=${DV_TEST_TMPDIR:-${TMPDIR:-/tmp}} out
	dv_mode_is_dir && return 0
	dv_private_guard dv_private_pg
	DV_PRIVATE_PG=$(mktemp -d "$base/dv-$DV_CASE-pg.XXXXXX") || dv_die "mktemp -d in $base failed"
	chmod 755 "$DV_PRIVATE_PG"
	dv_on_exit dv_private_pg_stop
	dv_private_reaper "bash '$DV_TOOLS_LIB/pg.sh' stop '$DV_PRIVATE_PG'; rm -rf --one-file-system '$DV_PRIVATE_PG'"
	out=$(bash "$DV_TOOLS_LIB/pg.sh" start "$DV_PRIVATE_PG" 2>&1) ||
		dv_die "cannot start a private PostgreSQL in $DV_PRIVATE_PG:" "$out"
	# shellcheck source=/dev/null
	. "$DV_PRIVATE_PG/env" || dv_die "no $DV_PRIVATE_PG/env after pg.sh start"
	dv_note "private PostgreSQL at $DV_TEST_PGHOST"
}

# dv_private_pg_stop: the cleanup of dv_private_pg (the case's database goes
# with the server: nothing to drop).
dv_private_pg_stop() {
	[[ -n $DV_PRIVATE_PG ]] || return 0
	bash "$DV_TOOLS_LIB/pg.sh" stop "$DV_PRIVATE_PG" >/dev/null 2>&1 ||
		printf 'harness: pg.sh stop %s failed\n' "$DV_PRIVATE_PG"
	DV_DB=''
	[[ ${DV_TEST_KEEP:-0} == 1 ]] || rm -rf --one-file-system -- "$DV_PRIVATE_PG"
	DV_PRIVATE_PG=''
}

# dv_private_rgw: before dv_setup, for DV_TEST_STORE=s3. Starts an S3 server
# of the case's own (tools/lib/rgw.sh with a 1 GiB memstore, in a directory
# next to the case's; 20-40 s) and points DV_TEST_S3_* at it, so that
# dv_setup makes the bucket there; the cleanup stops it and removes it.
dv_private_rgw() {
	local base=${DV_TEST_TMPDIR:-${TMPDIR:-/tmp}} t0=$SECONDS
	dv_mode_is_dir && return 0
	dv_private_guard dv_private_rgw
	DV_PRIVATE_RGW=$(mktemp -d "$base/dv-$DV_CASE-s3.XXXXXX") || dv_die "mktemp -d in $base failed"
	dv_on_exit dv_private_rgw_stop
	dv_private_reaper "bash '$DV_TOOLS_LIB/rgw.sh' stop '$DV_PRIVATE_RGW' --purge; rm -rf --one-file-system '$DV_PRIVATE_RGW'"
	if ! RGW_STORE_BYTES=${RGW_STORE_BYTES:-1073741824} bash "$DV_TOOLS_LIB/rgw.sh" start \
		"$DV_PRIVATE_RGW" >"$DV_PRIVATE_RGW/start.out" 2>&1 </dev/null; then
		dv_die "cannot start a private RGW in $DV_PRIVATE_RGW:" "$(tail -n 30 "$DV_PRIVATE_RGW/start.out")"
	fi
	set -a
	# shellcheck source=/dev/null
	. "$DV_PRIVATE_RGW/env" || dv_die "no $DV_PRIVATE_RGW/env after rgw.sh start"
	set +a
	dv_note "private RGW at $DV_TEST_S3_ENDPOINT (started in $((SECONDS - t0)) s)"
}

# dv_private_rgw_stop: the cleanup of dv_private_rgw (the bucket goes with
# the server: nothing to delete).
dv_private_rgw_stop() {
	[[ -n $DV_PRIVATE_RGW ]] || return 0
	bash "$DV_TOOLS_LIB/rgw.sh" stop "$DV_PRIVATE_RGW" --purge >/dev/null 2>&1 ||
		printf 'harness: rgw.sh stop %s failed\n' "$DV_PRIVATE_RGW"
	DV_BUCKET=''
	rm -rf --one-file-system -- "$DV_PRIVATE_RGW"
	DV_PRIVATE_RGW=''
}

# dv_rgw_gateway_kill: SIGKILLs the radosgw of the private RGW, and only it:
# its OSD keeps running, and with it the memstore that holds the bucket
# (rgw.sh stop would lose every object). Its command line is kept for
# dv_rgw_gateway_start.
dv_rgw_gateway_kill() {
	local pid i conf=$DV_PRIVATE_RGW/ceph.conf
	[[ -n $DV_PRIVATE_RGW ]] || dv_die "dv_rgw_gateway_kill: no private RGW (dv_private_rgw)"
	pid=$(cat "$DV_PRIVATE_RGW/run/client.rgw.a.pid" 2>/dev/null)
	DV_RGW_EXE=$(readlink "/proc/$pid/exe" 2>/dev/null)
	mapfile -d '' -t DV_RGW_ARGS <"/proc/$pid/cmdline" 2>/dev/null
	if [[ $DV_RGW_EXE != *radosgw* ]] || ! printf '%s\n' "${DV_RGW_ARGS[@]}" | grep -qxF -- "$conf"; then
		dv_die "dv_rgw_gateway_kill: no radosgw of $conf found (pid file says '${pid:-nothing}')"
	fi
	DV_RGW_ARGS=("${DV_RGW_ARGS[@]:1}")
	kill -KILL "$pid"
	for ((i = 0; i < 100; i++)); do
		[[ -e /proc/$pid ]] || break
		sleep 0.1
	done
	[[ -e /proc/$pid ]] && dv_die "radosgw $pid survives SIGKILL"
	dv_note "radosgw (pid $pid) killed"
}

# dv_rgw_gateway_start: starts the killed radosgw again with the same
# command line (it goes to the background by itself) and waits until the
# endpoint answers (60 s at most).
dv_rgw_gateway_start() {
	local t0=$SECONDS code
	[[ -n $DV_RGW_EXE ]] || dv_die "dv_rgw_gateway_start: no radosgw was killed"
	# No descriptor of ours may stay open in the daemon (ctest waits for
	# its pipes to close).
	(
		for fd in /proc/"$BASHPID"/fd/*; do
			fd=${fd##*/}
			((fd > 2)) && [[ -e /proc/$BASHPID/fd/$fd ]] && exec {fd}>&-
		done
		exec "$DV_RGW_EXE" "${DV_RGW_ARGS[@]}"
	) </dev/null >/dev/null 2>&1 || dv_die "radosgw did not start again"
	while ((SECONDS - t0 < 60)); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$DV_TEST_S3_ENDPOINT/" || true)
		if [[ $code =~ ^[1-5][0-9][0-9]$ ]]; then
			dv_note "radosgw answers again after $((SECONDS - t0)) s"
			return 0
		fi
		sleep 0.2
	done
	dv_die "radosgw does not answer 60 s after its restart"
}

# --- documents: the vault's own attributes, a second vault ------------------
#
# Used by the docs_*.sh cases (issue 5). What docvault computes about a
# document is read through the kernel with getfattr (user.docvault.*);
# waiting for processing is polling user.docvault.status, with a bound.
# A second vault (dv_vault2_*) is a second database, store (directory or
# bucket), cache, config and daemon in the same case, mounted at $MNT2,
# with the same cleanup guarantees as the first.

DV_DIR2=''
MNT2=''
DV_CONF2=''
DV_LOG2=''
DV_DB2=''
DV_BUCKET2=''
DV_PID2=''
DV_WATCHDOG2=''
DV_DOCS_PENDING=''

# dv_xattr FILE NAME: prints the value of the extended attribute NAME of
# FILE (as stored, no newline added); status 1, nothing printed, if none.
dv_xattr() {
	getfattr --absolute-names --only-values -n "$2" -- "$1" 2>/dev/null
}

# dv_docs_wait SECONDS FILE...: polls user.docvault.status of every FILE
# until each says "completed" or "failed", SECONDS at most in all. Returns
# 1 on timeout; DV_DOCS_PENDING then lists "FILE: status" of the others.
dv_docs_wait() {
	local secs=$1 t0=$SECONDS f st
	local -a left next
	shift
	left=("$@")
	while :; do
		next=()
		DV_DOCS_PENDING=''
		for f in "${left[@]}"; do
			st=$(dv_xattr "$f" user.docvault.status)
			case $st in
			completed | failed) ;;
			*)
				next+=("$f")
				DV_DOCS_PENDING+="$f: ${st:-(no status)}"$'\n'
				;;
			esac
		done
		left=("${next[@]}")
		((${#left[@]} == 0)) && return 0
		((SECONDS - t0 >= secs)) && return 1
		dv_daemon_died &&
			dv_die "the daemon died while documents were processed (exit status $DV_DAEMON_RC)"
		sleep 0.2
	done
}

# dv_docs_assert_done WHAT SECONDS FILE...: dv_docs_wait as a check (the
# pass says how long it took, the failure which files are still not done).
dv_docs_assert_done() {
	local what=$1 secs=$2 t0=$SECONDS
	shift 2
	if dv_docs_wait "$secs" "$@"; then
		dv_pass "$what: $# documents processed within $((SECONDS - t0)) s"
		return 0
	fi
	dv_fail "$what: not processed within $secs s:" "$(head -n 20 <<<"$DV_DOCS_PENDING")"
	return 1
}

# dv_psql SQL: runs SQL on the case's database; unaligned, tuples only.
dv_psql() {
	local -a args
	mapfile -t args < <(dv_pg_args)
	psql -X -q -At -v ON_ERROR_STOP=1 "${args[@]}" -d "$DV_DB" -c "$1"
}

# dv_store_objects: prints the number of objects in the case's store: files
# below the local store's directory (its .tmp left out), or keys in the
# bucket. Status 1 if the bucket cannot be listed.
dv_store_objects() {
	local listing token='' q n=0
	if [[ $DV_TEST_STORE == s3 ]]; then
		while :; do
			q='list-type=2'
			[[ -n $token ]] && q+="&continuation-token=$(dv_urlencode "$token")"
			listing=$(dv_s3 GET "$DV_BUCKET?$q") || return 1
			n=$((n + $(grep -o '<Key>' <<<"$listing" | wc -l)))
			token=$(grep -o '<NextContinuationToken>[^<]*' <<<"$listing" | sed 's/.*>//')
			[[ -n $token ]] || break
		done
	else
		n=$(find "$DV_DIR/blobs" -path "$DV_DIR/blobs/.tmp" -prune -o -type f -print | wc -l)
	fi
	printf '%s\n' "$n"
}

# dv_vault2_setup: after dv_setup, a second vault: its own database (the
# first one's name + "_2"), store (DV_DIR/vault2/blobs, or a bucket of its
# own), cache, config ($DV_CONF2, same servers) and daemon ($DV_PID2, its
# stderr in $DV_LOG2), mounted at $MNT2. The cleanup unmounts it and drops
# its database and bucket; a watchdog kills its daemon just before the
# case's time bound, so that nothing stays blocked in $MNT2 either. In dir
# mode $MNT2 is a plain directory.
dv_vault2_setup() {
	local args out
	[[ -n $DV_DIR ]] || dv_die "dv_vault2_setup must come after dv_setup"
	DV_DIR2=$DV_DIR/vault2
	MNT2=$DV_DIR2/mnt
	mkdir -p "$MNT2" "$DV_DIR2/cache" "$DV_DIR2/blobs" || dv_die "mkdir in $DV_DIR2 failed"
	dv_mode_is_dir && return 0
	DV_CONF2=$DV_DIR2/docvault.conf
	DV_LOG2=$DV_DIR2/daemon.log
	dv_on_exit dv_vault2_cleanup
	mapfile -t args < <(dv_pg_args)
	out=$(createdb "${args[@]}" "${DV_DB}_2" 2>&1) ||
		dv_die "createdb ${DV_DB}_2 on $DV_TEST_PGHOST:$DV_TEST_PGPORT failed: $out"
	DV_DB2=${DV_DB}_2
	if [[ $DV_TEST_STORE == s3 ]]; then
		out=$(dv_s3 PUT "${DV_BUCKET:0:61}-2" 2>&1) ||
			dv_die "cannot create the bucket ${DV_BUCKET:0:61}-2 at $DV_TEST_S3_ENDPOINT: $out"
		DV_BUCKET2=${DV_BUCKET:0:61}-2
	fi
	dv_vault2_write_config
	dv_note "vault 2: database $DV_DB2${DV_BUCKET2:+, bucket $DV_BUCKET2}, dir $DV_DIR2"
	out=$("$DOCVAULT_BIN" init -c "$DV_CONF2" 2>&1) ||
		dv_die "docvault init -c $DV_CONF2 failed: $out"
	dv_vault2_start_watchdog
	dv_vault2_mount
}

# The second vault's config: dv_write_config with its database, bucket
# and directories.
dv_vault2_write_config() {
	local DV_DB=$DV_DB2 DV_BUCKET=$DV_BUCKET2 DV_DIR=$DV_DIR2
	dv_write_config "$DV_CONF2"
}

# dv_vault2_conf_set SECTION KEY VALUE: dv_conf_set on $DV_CONF2.
dv_vault2_conf_set() {
	local DV_CONF=$DV_CONF2
	dv_conf_set "$@"
}

dv_vault2_start_watchdog() {
	local main=$$ secs=$((DV_TEST_TIMEOUT - (SECONDS - DV_START) - 2))
	(
		for ((t = 0; t < secs; t++)); do
			sleep 1
			kill -0 "$main" 2>/dev/null || exit 0
		done
		[[ -n $MNT2 ]] || exit 0
		pid=$(cat "$DV_DIR2/daemon.pid" 2>/dev/null)
		if [[ -n $pid ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- " $MNT2 "; then
			printf 'FAIL %s: timed out; killing the second daemon\n' "$DV_CASE"
			kill -KILL "$pid"
		fi
	) </dev/null &
	DV_WATCHDOG2=$!
}

# dv_vault2_mount: starts the second daemon on $MNT2 and waits for the mount.
dv_vault2_mount() {
	local i rc
	dv_mode_is_dir && return 0
	printf -- '--- mount at %s\n' "$(date +%T.%N)" >>"$DV_LOG2"
	env "${DV_DAEMON_ENV[@]}" "$DOCVAULT_BIN" mount -c "$DV_CONF2" "$MNT2" -f \
		</dev/null >>"$DV_LOG2" 2>&1 &
	DV_PID2=$!
	printf '%s\n' "$DV_PID2" >"$DV_DIR2/daemon.pid"
	for ((i = 0; i < 300; i++)); do
		if dv_is_mounted "$MNT2"; then
			dv_pass "vault 2 mounted at $MNT2 (daemon pid $DV_PID2)"
			return 0
		fi
		dv_pid_alive "$DV_PID2" || break
		sleep 0.1
	done
	tail -n 20 "$DV_LOG2"
	dv_pid_alive "$DV_PID2" && dv_die "the second daemon did not mount $MNT2 within 30 s"
	wait "$DV_PID2"
	rc=$?
	DV_PID2=''
	dv_die "docvault mount of vault 2 exited $rc before the mount was ready"
}

# dv_vault2_wait_daemon SECONDS: like dv_wait_daemon, for the second daemon
# (sets DV_DAEMON2_RC).
dv_vault2_wait_daemon() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		dv_pid_alive "$DV_PID2" || break
		sleep 0.1
	done
	dv_pid_alive "$DV_PID2" && return 1
	wait "$DV_PID2"
	DV_DAEMON2_RC=$?
	DV_PID2=''
	return 0
}

# dv_vault2_unmount: unmounts $MNT2; its daemon must exit 0 with a log free
# of sanitizer reports (the log is then rotated into $DV_LOG2.all).
dv_vault2_unmount() {
	local i out bad
	dv_mode_is_dir && return 0
	for ((i = 0; i < 50; i++)); do
		out=$(fusermount3 -u -- "$MNT2" 2>&1) && break
		sleep 0.2
	done
	if dv_is_mounted "$MNT2"; then
		dv_fail "fusermount3 -u $MNT2 keeps failing: $out"
		return 1
	fi
	if [[ -n $DV_PID2 ]]; then
		if dv_vault2_wait_daemon 120; then
			dv_assert_eq 0 "$DV_DAEMON2_RC" "the second daemon exits 0 after unmount"
		else
			dv_fail "the second daemon (pid $DV_PID2) still runs 120 s after unmount"
			kill -KILL "$DV_PID2" 2>/dev/null
			dv_vault2_wait_daemon 10
		fi
	fi
	bad=$(grep -E 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: .*Sanitizer' \
		"$DV_LOG2" 2>/dev/null | head -n 5)
	[[ -z $bad ]] || dv_fail "the second daemon's log has sanitizer reports:" "$bad"
	cat "$DV_LOG2" >>"$DV_LOG2.all" 2>/dev/null
	: >"$DV_LOG2"
}

# dv_vault2_remount: unmount, then mount the second vault again.
dv_vault2_remount() {
	dv_mode_is_dir && return 0
	dv_vault2_unmount
	dv_vault2_mount
}

# The cleanup of dv_vault2_setup (a dv_on_exit hook).
dv_vault2_cleanup() {
	local i args f
	[[ -n $DV_WATCHDOG2 ]] && kill "$DV_WATCHDOG2" 2>/dev/null
	DV_WATCHDOG2=''
	if [[ -n $MNT2 ]]; then
		for ((i = 0; i < 5; i++)); do
			dv_is_mounted "$MNT2" || break
			fusermount3 -u -- "$MNT2" 2>/dev/null || sleep 0.5
		done
		if [[ -n $DV_PID2 ]] && ! dv_vault2_wait_daemon 30; then
			printf 'harness: the second daemon does not exit; killing it\n'
			kill -KILL "$DV_PID2" 2>/dev/null
			dv_vault2_wait_daemon 10
		fi
		for ((i = 0; i < 5; i++)); do
			dv_is_mounted "$MNT2" || break
			fusermount3 -uz -- "$MNT2" 2>/dev/null || umount -l -- "$MNT2" 2>/dev/null
		done
	fi
	if ((DV_FAILED > 0)); then
		for f in "$DV_LOG2.all" "$DV_LOG2"; do
			[[ -s $f ]] || continue
			printf -- '--- the second daemon log (%s), last 40 lines:\n' "$f"
			tail -n 40 "$f"
		done
	fi
	[[ ${DV_TEST_KEEP:-0} == 1 ]] && return 0
	if [[ -n $DV_DB2 ]]; then
		mapfile -t args < <(dv_pg_args)
		dropdb --force "${args[@]}" "$DV_DB2" 2>/dev/null ||
			printf 'harness: dropdb %s failed\n' "$DV_DB2"
		DV_DB2=''
	fi
	if [[ -n $DV_BUCKET2 ]]; then
		local DV_BUCKET=$DV_BUCKET2
		dv_s3_bucket_delete
		DV_BUCKET2=''
	fi
	return 0
}

# dv_docs_assert_from_text WHAT KIND SOURCE FILE [MAX_BYTES]: FILE (in the
# vault) has a non-empty user.docvault.summary and autotags that come from
# the text of SOURCE (a local copy): every sentence of the summary, as a
# sequence of words, appears in the text, and every autotag is a word of it
# (case-insensitively). KIND says how the text of SOURCE is read: text
# (UTF-8, else Latin-1), html (without tags, scripts, styles; entities
# decoded), pdf (the strings shown with Tj, uncompressed content streams
# only), zip (the XML members, tags dropped: DOCX, ODT), gzip (text inside).
# MAX_BYTES bounds the bytes of SOURCE's text read (default all). Needs
# python3.
dv_docs_assert_from_text() {
	local what=$1 kind=$2 src=$3 file=$4 max=${5:-0} sum tags out
	command -v python3 >/dev/null ||
		dv_die "$what: python3 is not installed (it reads the fixtures' text)"
	sum=$(dv_xattr "$file" user.docvault.summary)
	tags=$(dv_xattr "$file" user.docvault.autotags)
	if out=$(python3 - "$kind" "$src" "$max" "$sum" "$tags" 2>&1 <<'PY'
import gzip, html, html.parser, re, sys, zipfile

kind, src, limit, summary, autotags = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]


class Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def decode(data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


with open(src, "rb") as f:
    data = f.read(limit) if limit > 0 else f.read()
if kind == "gzip":
    data, kind = gzip.decompress(data), "text"
if kind == "zip":
    with zipfile.ZipFile(src) as z:
        xml = " ".join(z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml"))
    text = html.unescape(re.sub(r"<[^>]*>", " ", xml))
elif kind == "html":
    p = Text()
    p.feed(decode(data))
    p.close()
    text = " ".join(p.out)
elif kind == "pdf":
    text = " ".join(re.findall(r"\(((?:[^()\\]|\\.)*)\)\s*Tj", data.decode("latin-1")))
else:
    text = decode(data)


def words(s):
    return re.findall(r"[^\W_]+", s.lower())


ref = words(text)
joined, vocab = " " + " ".join(ref) + " ", set(ref)
bad = []
if not summary.strip():
    bad.append("the summary is empty")
for s in re.split(r"(?<=[.!?])\s+", summary.strip()):
    w = words(s)
    if w and " " + " ".join(w) + " " not in joined:
        bad.append("this summary sentence is not in the text: %r" % s)
tags = [t for t in autotags.split(",") if t]
if not tags:
    bad.append("there are no autotags")
for t in tags:
    if t.lower() not in vocab:
        bad.append("the autotag %r is not a word of the text" % t)
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
	); then
		dv_pass "$what: the summary and the autotags ($tags) come from the text"
	else
		dv_fail "$what: the summary or the autotags do not come from the text of $src:" \
			"$out"$'\n'"summary: $sum"$'\n'"autotags: $tags"
	fi
}
