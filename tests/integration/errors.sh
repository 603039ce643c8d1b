#!/bin/bash
# shellcheck disable=SC2001,SC2016
# errors.sh - `docvault mount` refuses, with a message that says why and a
# non-zero exit, and leaves nothing mounted: an unknown config key or a bad
# value (the message names the file, the line and the key), a missing config
# file, a database that does not exist or a server that does not answer (the
# message names the server), a busy mount point (already mounted), a missing
# mount point, and a config readable by others that holds a secret (refused
# as ssh does, without printing the secret). The first mount keeps working.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
if dv_mode_is_dir; then
	dv_note "dir mode: every check here needs the daemon"
	dv_done
fi

m2=$DV_DIR/m2
mkdir "$m2"
# If a mount wrongly succeeds, it must not outlive the case.
dv_on_exit "! dv_is_mounted '$m2' || fusermount3 -uz '$m2'"

# refused WHAT CONF MOUNTPOINT ERE: mount fails, its output matches ERE,
# and nothing is mounted at MOUNTPOINT.
refused() {
	local what=$1 conf=$2 mp=$3 ere=$4
	dv_assert_fails "$what: mount fails" timeout 60 "$DOCVAULT_BIN" mount -c "$conf" "$mp"
	printf '     > %s\n' "${DV_OUT//$'\n'/$'\n     > '}"
	dv_assert_match "$what: the message" "$ere" "$DV_OUT"
	if [[ $mp != "$MNT" ]] && dv_is_mounted "$mp"; then
		dv_fail "$what: $mp is mounted anyway"
		fusermount3 -u "$mp"
	fi
}

# with_line CONF SECTION LINE: CONF with LINE added at the end of SECTION;
# prints the line number it got.
with_line() {
	local conf=$1 section=$2 line=$3
	awk -v s="[$section]" -v l="$line" '
		$0 == s { in_s = 1; print; next }
		/^\[/ && in_s { print l; in_s = 0; done = 1 }
		{ print }
		END { if (in_s) print l }' "$DV_CONF" >"$conf"
	chmod 600 "$conf"
	grep -nxF -- "$line" "$conf" | cut -d: -f1
}

dv_note "the binary's own help"
dv_assert_ok "docvault --help" "$DOCVAULT_BIN" --help
dv_assert_ok "docvault --version" "$DOCVAULT_BIN" --version
dv_assert_ok "docvault help mount" "$DOCVAULT_BIN" help mount
dv_assert_fails "docvault with an unknown subcommand" "$DOCVAULT_BIN" no-such-command

dv_note "a wrong config"
n=$(with_line "$DV_DIR/unknown.conf" cache 'bogus_key = 1')
refused "an unknown key" "$DV_DIR/unknown.conf" "$m2" "unknown\\.conf:$n\\b.*bogus_key"
n=$(with_line "$DV_DIR/badsize.conf" cache 'size = 10Q')
refused "a bad size" "$DV_DIR/badsize.conf" "$m2" "badsize\\.conf:$n\\b.*size"
cp "$DV_CONF" "$DV_DIR/badsection.conf"
printf '\n[nosuchsection]\nx = 1\n' >>"$DV_DIR/badsection.conf"
n=$(grep -nxF 'x = 1' "$DV_DIR/badsection.conf" | cut -d: -f1)
refused "an unknown section" "$DV_DIR/badsection.conf" "$m2" "badsection\\.conf:($((n - 1))|$n)\\b.*nosuchsection"
refused "a missing config file" "$DV_DIR/absent.conf" "$m2" 'absent\.conf'

dv_note "a database that is not there"
sed "s/dbname=$DV_DB/dbname=${DV_DB}_missing/" "$DV_CONF" >"$DV_DIR/nodb.conf"
chmod 600 "$DV_DIR/nodb.conf"
server="($(sed 's/[.[\*^$()+?{|]/\\&/g' <<<"$DV_TEST_PGHOST")|port $DV_TEST_PGPORT|:$DV_TEST_PGPORT)"
refused "a missing database" "$DV_DIR/nodb.conf" "$m2" "$server"
dv_assert_match "a missing database: the message names the database" "${DV_DB}_missing" "$DV_OUT"
sed "s/port=$DV_TEST_PGPORT/port=1/" "$DV_CONF" >"$DV_DIR/noserver.conf"
chmod 600 "$DV_DIR/noserver.conf"
refused "a server that does not answer" "$DV_DIR/noserver.conf" "$m2" \
	"($(sed 's/[.[\*^$()+?{|]/\\&/g' <<<"$DV_TEST_PGHOST")|port 1\\b|:1\\b)"

dv_note "bad mount points"
refused "a busy mount point" "$DV_CONF" "$MNT" "$(basename "$MNT")|busy|mounted"
dv_assert_eq 1 "$(awk -v m="$MNT" '$5 == m' /proc/self/mountinfo | wc -l)" \
	"a busy mount point: still one mount at $MNT"
refused "a missing mount point" "$DV_CONF" "$DV_DIR/nonexistent" 'nonexistent'
: >"$DV_DIR/afile"
refused "a mount point that is a file" "$DV_CONF" "$DV_DIR/afile" 'afile'

dv_note "a config readable by others that holds a secret"
secret='s3cr3t-Do-Not-Print'
{
	printf '[database]\nconninfo = %s\n' "$(sed -n 's/^conninfo = //p' "$DV_CONF")"
	printf '[storage]\ntype = s3\nendpoint = http://127.0.0.1:9\nregion = us-east-1\n'
	printf 'bucket = b\naccess_key = AKIDEXAMPLE\nsecret_key = %s\n' "$secret"
	printf '[cache]\ndir = %s/cache\n' "$DV_DIR"
} >"$DV_DIR/open.conf"
chmod 644 "$DV_DIR/open.conf"
refused "a 0644 config with secret_key" "$DV_DIR/open.conf" "$m2" \
	'open\.conf.*(readable|permission|mode|0?644|group|others)|(readable|permission|mode|0?644|group|others).*open\.conf'
dv_assert_no_match "... without printing the secret" "$secret" "$DV_OUT"
sed "s/dbname=/password=$secret dbname=/" "$DV_CONF" >"$DV_DIR/pw.conf"
chmod 640 "$DV_DIR/pw.conf"
refused "a 0640 config with a password in conninfo" "$DV_DIR/pw.conf" "$m2" \
	'pw\.conf.*(readable|permission|mode|0?640|group|others)|(readable|permission|mode|0?640|group|others).*pw\.conf'
dv_assert_no_match "... without printing the password" "$secret" "$DV_OUT"

dv_note "the first mount still works"
dv_assert_ok "write in the first mount" bash -c 'printf ok >"$1/still-here"' _ "$MNT"
dv_assert_eq "ok" "$(cat "$MNT/still-here" 2>&1)" "read it back"
dv_done
