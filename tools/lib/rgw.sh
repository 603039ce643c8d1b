#!/usr/bin/env bash
# rgw.sh - a throwaway, single-node Ceph RADOS Gateway (S3 server) on 127.0.0.1
# for docvault's tests, built from Debian 12's ceph packages (Pacific 16.2).
#
#   tools/lib/rgw.sh start  DIR   install missing packages, create a fresh cluster
#                                 under DIR, start it, wait for S3, create a user,
#                                 write DIR/env (and print it)
#   tools/lib/rgw.sh stop   DIR [--purge]
#                                 stop every daemon started for DIR, wait for them;
#                                 --purge also removes the cluster files under DIR
#   tools/lib/rgw.sh status DIR   exit 0 when the S3 endpoint answers
#
# Model: one monitor (msgr v2 only), one OSD on memstore (data in RAM, capped by
# RGW_STORE_BYTES, default 4 GiB), one radosgw (beast), pool size 1, no mgr, no
# systemd. Everything lives under DIR: ceph.conf, keyring, mon/ osd/ rgw/ data,
# run/ (pid files, admin sockets), log/. Every command gets `-c DIR/ceph.conf`,
# so /etc/ceph is never read. Daemons run as the caller (root in CI).
#
# Invariants: `start` always builds a new cluster (a previous one under DIR is
# stopped and its files replaced; other files in DIR are left alone). DIR/env is
# written last, atomically, so its existence means the endpoint answered and the
# user exists. `stop` signals exactly the processes whose command line has the
# argument DIR/ceph.conf (found by a /proc scan, so a lost or stale pid file
# in DIR/run does not matter), radosgw first, then the OSD, the monitor last.
# Every step is bounded in time; a failed start prints the log tails, stops
# what it started and exits non-zero.
#
# Environment: RGW_PORT, MON_PORT (default: a free random port each in
# 20000-31999, below the kernel's ephemeral range), RGW_READY_TIMEOUT (seconds,
# default 120), RGW_STORE_BYTES. Clients must use path-style URLs and sign for
# region "default" (any SigV4 scope region is accepted, but a CreateBucket
# LocationConstraint must be "default" or absent).
#
# Optional, for the TLS and virtual-hosted-style tests (unset: none of this
# happens, and the cluster, its output and DIR/env are as without them):
#   RGW_SSL_CERT  a PEM server certificate (RGW_SSL_KEY: its private key, if
#                 not in the same file): radosgw also serves HTTPS on
#                 127.0.0.1:RGW_SSL_PORT (default: a free random port), start
#                 waits for it too, and DIR/env gains
#                 DV_TEST_S3_ENDPOINT_TLS=https://127.0.0.1:PORT.
#   RGW_DNS_NAME  `rgw dns name`: a request whose Host is BUCKET.RGW_DNS_NAME
#                 is for BUCKET (virtual-hosted style); path-style requests to
#                 127.0.0.1 work as before.
#
# Not: a production setup, persistent (memstore), multi-node, or a CA (TLS
# only with a certificate the caller made).

set -euo pipefail

RGW_PACKAGES=(ceph-mon ceph-osd radosgw ceph-common)
RGW_USER=docvault-test
# RGW's default zonegroup is "default"; SigV4 scopes must name it.
RGW_REGION=default

die() {
	printf 'rgw.sh: error: %s\n' "$*" >&2
	exit 1
}
note() { printf 'rgw.sh: %s\n' "$*" >&2; }

usage() {
	echo "usage: $0 start DIR | stop DIR [--purge] | status DIR" >&2
	exit 2
}

# --- packages ---------------------------------------------------------------

packages_missing() {
	local p st
	for p in "${RGW_PACKAGES[@]}"; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		[[ $st == "install ok installed" ]] || printf '%s\n' "$p"
	done
	command -v curl >/dev/null || echo curl
}

ensure_packages() {
	local missing p known=1
	mapfile -t missing < <(packages_missing)
	((${#missing[@]} == 0)) && return 0
	[[ $(id -u) == 0 ]] || die "missing packages (${missing[*]}) and not root to install them"
	for p in "${missing[@]}"; do
		apt-cache show "$p" >/dev/null 2>&1 || known=0
	done
	export DEBIAN_FRONTEND=noninteractive
	note "installing: ${missing[*]}"
	if ((known)) && apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
		return 0
	fi
	apt-get update >&2 || die "apt-get update failed"
	apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed"
}

# --- ports --------------------------------------------------------------------

# True when a TCP socket (any state, IPv4 or IPv6) uses local port $1.
port_in_use() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v h=":$hex" 'NR > 1 { if (substr($2, length($2) - 4) == h) { f = 1; exit } }
	     END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# pick_port ENVVALUE NAME AVOID...: the given port (checked) or a free random
# one that is none of AVOID.
pick_port() {
	local want=$1 name=$2 p i
	local avoid=" ${*:3} "
	if [[ -n $want ]]; then
		if ! [[ $want =~ ^[0-9]+$ ]] || ((want < 1 || want > 65535)); then
			die "$name=$want is not a port"
		fi
		port_in_use "$want" && die "$name=$want: port already in use"
		echo "$want"
		return
	fi
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
		[[ $avoid == *" $p "* ]] && continue
		port_in_use "$p" || {
			echo "$p"
			return
		}
	done
	die "no free port found for $name"
}

# --- processes ----------------------------------------------------------------

# True when pid $1 is alive and its command line contains the exact argument $2.
pid_has_arg() {
	local a
	[[ -r /proc/$1/cmdline ]] || return 1
	while IFS= read -r -d '' a; do
		[[ $a == "$2" ]] && return 0
	done </proc/"$1"/cmdline 2>/dev/null
	return 1
}

# Our processes as "RANK PID" lines: every live process whose command line
# names our ceph.conf (the pid files are not needed to find them). RANK orders
# the shutdown: gateway and clients first, then the OSD, the monitor last, so
# that each can still talk to the monitor while it stops.
our_pids() {
	local conf=$DIR/ceph.conf p exe
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[[ $p == "$$" || $p == "$BASHPID" ]] && continue
		pid_has_arg "$p" "$conf" || continue
		exe=$(tr '\0' '\n' </proc/"$p"/cmdline 2>/dev/null | head -n 1) || continue
		case ${exe##*/} in
		ceph-mon) echo "3 $p" ;;
		ceph-osd) echo "2 $p" ;;
		*) echo "1 $p" ;;
		esac
	done
	return 0
}

# Signal each pid in order, wait up to $1 s for all to exit, then SIGKILL.
stop_pids() {
	local grace=$1 pid left deadline
	shift
	(($# == 0)) && return 0
	for pid in "$@"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	deadline=$((SECONDS + grace))
	while :; do
		left=()
		for pid in "$@"; do
			pid_has_arg "$pid" "$DIR/ceph.conf" && left+=("$pid")
		done
		((${#left[@]} == 0)) && return 0
		((SECONDS >= deadline)) && break
		sleep 0.1
	done
	note "killing after ${grace}s: ${left[*]}"
	kill -KILL "${left[@]}" 2>/dev/null || true
	deadline=$((SECONDS + 10))
	for pid in "${left[@]}"; do
		while [[ -e /proc/$pid ]] && [[ $(awk '{print $3}' /proc/"$pid"/stat 2>/dev/null) != Z ]]; do
			((SECONDS < deadline)) || die "pid $pid survives SIGKILL"
			sleep 0.1
		done
	done
}

stop_all() {
	local lines rank pids
	mapfile -t lines < <(our_pids)
	((${#lines[@]} == 0)) || note "stopping ${#lines[@]} process(es) of $DIR"
	for rank in 1 2 3; do
		pids=()
		for l in "${lines[@]}"; do
			[[ ${l%% *} == "$rank" ]] && pids+=("${l#* }")
		done
		stop_pids $((rank == 1 ? 5 : 10)) "${pids[@]}"
	done
	rm -f "$DIR"/run/*.pid "$DIR"/run/*.asok
}

# --- cluster ------------------------------------------------------------------

CLUSTER_ITEMS=(ceph.conf keyring monmap mon osd rgw run log crash env env.tmp)

write_conf() {
	local store_bytes=${RGW_STORE_BYTES:-4294967296}
	local frontends="beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1"
	if [[ -n $SSL_PORT ]]; then
		frontends+=" ssl_endpoint=127.0.0.1:$SSL_PORT ssl_certificate=$SSL_CERT"
		frontends+=" ssl_private_key=$SSL_KEY"
	fi
	cat >"$DIR/ceph.conf" <<EOF
# Written by tools/lib/rgw.sh: throwaway single-node test cluster.
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT]
mon initial members = a
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind msgr2 = true
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $DIR/keyring
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
crash dir = $DIR/crash
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1
mon cluster log file = $DIR/log/cluster.log
paxos propose interval = 0.05

[mon.a]
mon data = $DIR/mon

[osd.0]
osd data = $DIR/osd
osd objectstore = memstore
memstore device bytes = $store_bytes
osd fast shutdown notify mon = false

[client.admin]
admin socket =

[client.rgw.a]
rgw data = $DIR/rgw
rgw frontends = $frontends
rgw thread pool size = 32
rgw dynamic resharding = false
rgw enable usage log = false
rgw run sync thread = false
# Reclaim the tails of deleted/overwritten objects within seconds, not hours,
# so that the RAM-backed store does not fill up over a long test run.
rgw gc obj min wait = 5
rgw gc processor period = 5
rgw gc processor max time = 5
EOF
	# Still in [client.rgw.a], the last section.
	if [[ -n ${RGW_DNS_NAME:-} ]]; then
		printf 'rgw dns name = %s\n' "$RGW_DNS_NAME" >>"$DIR/ceph.conf"
	fi
}

show_logs() {
	local f
	for f in "$DIR"/log/*.log; do
		[[ -s $f ]] || continue
		printf '==== %s (last 20 lines) ====\n' "$f" >&2
		tail -n 20 "$f" >&2
	done
}

fail() {
	show_logs
	note "stopping what was started; logs kept in $DIR/log"
	stop_all || true
	printf 'rgw.sh: error: %s\n' "$*" >&2
	exit 1
}

# Close every file descriptor above 2 in the current (sub)shell, so that the
# daemons never hold the caller's pipes or our lock: a CI runner waiting for
# EOF on an inherited pipe would otherwise hang until the daemons stop.
close_fds() {
	local fd
	for fd in /proc/"$BASHPID"/fd/*; do
		fd=${fd##*/}
		((fd > 2)) && [[ -e /proc/$BASHPID/fd/$fd ]] && exec {fd}>&-
	done
	return 0
}

# run LABEL CMD...: run a setup step, its output to DIR/log/setup.log.
run() {
	local label=$1
	shift
	printf '+ [%ss] %s\n' "$(elapsed)" "$*" >>"$DIR/log/setup.log"
	(
		close_fds
		exec "$@"
	) </dev/null >>"$DIR/log/setup.log" 2>&1 || {
		tail -n 20 "$DIR/log/setup.log" >&2
		fail "$label failed: $*"
	}
}

# The optional TLS files (RGW_SSL_CERT, RGW_SSL_KEY), checked before anything
# is started: SSL_CERT and SSL_KEY as absolute paths, or both empty.
SSL_CERT=""
SSL_KEY=""
SSL_PORT=""
ssl_files() {
	if [[ -z ${RGW_SSL_CERT:-} ]]; then
		[[ -z ${RGW_SSL_KEY:-} ]] || die "RGW_SSL_KEY is set but RGW_SSL_CERT is not"
		return 0
	fi
	[[ -r $RGW_SSL_CERT ]] || die "RGW_SSL_CERT=$RGW_SSL_CERT is not a readable file"
	[[ -r ${RGW_SSL_KEY:-$RGW_SSL_CERT} ]] ||
		die "RGW_SSL_KEY=${RGW_SSL_KEY:-} is not a readable file"
	SSL_CERT=$(realpath -- "$RGW_SSL_CERT")
	SSL_KEY=$(realpath -- "${RGW_SSL_KEY:-$RGW_SSL_CERT}")
	# The paths go into `rgw frontends`, a space-separated list.
	[[ $SSL_CERT$SSL_KEY != *[[:space:]]* ]] ||
		die "the paths of RGW_SSL_CERT and RGW_SSL_KEY must not contain white space"
}

t0=0
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
phase() { note "[$(elapsed)s] $*"; }

cmd_start() {
	local conf keyring osd_uuid http https="" waiting code deadline akey skey user_json
	t0=$(date +%s.%N)
	ensure_packages
	ssl_files
	mkdir -p "$DIR"
	exec 9>"$DIR/.lock"
	flock -w 60 9 || die "$DIR is locked by another rgw.sh"

	# A previous cluster here: stop its daemons, replace its files.
	stop_all
	for item in "${CLUSTER_ITEMS[@]}"; do rm -rf "${DIR:?}/$item"; done
	mkdir -p "$DIR"/{mon,osd,rgw,run,log,crash}
	trap 'fail "interrupted"' INT TERM HUP

	MON_PORT=$(pick_port "${MON_PORT:-}" MON_PORT 0)
	RGW_PORT=$(pick_port "${RGW_PORT:-}" RGW_PORT "$MON_PORT")
	[[ $MON_PORT != "$RGW_PORT" ]] || die "MON_PORT and RGW_PORT are both $MON_PORT"
	if [[ -n $SSL_CERT ]]; then
		SSL_PORT=$(pick_port "${RGW_SSL_PORT:-}" RGW_SSL_PORT "$MON_PORT" "$RGW_PORT")
		[[ $SSL_PORT != "$MON_PORT" && $SSL_PORT != "$RGW_PORT" ]] ||
			die "RGW_SSL_PORT=$SSL_PORT is also MON_PORT or RGW_PORT"
		https=https://127.0.0.1:$SSL_PORT
	fi
	FSID=$(cat /proc/sys/kernel/random/uuid)
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)
	conf=$DIR/ceph.conf
	keyring=$DIR/keyring
	export CEPH_CONF=$conf
	write_conf

	# All keys go into one keyring that the monitor imports at mkfs, so the
	# OSD and RGW keys exist before those daemons first talk to the monitor.
	run keyring ceph-authtool --create-keyring "$keyring" --gen-key -n mon. --cap mon 'allow *'
	run keyring ceph-authtool "$keyring" --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *'
	run keyring ceph-authtool "$keyring" --gen-key -n osd.0 \
		--cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd'
	run keyring ceph-authtool "$keyring" --gen-key -n client.rgw.a \
		--cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw'
	chmod 600 "$keyring"

	run monmap monmaptool --create --clobber --fsid "$FSID" \
		--addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap"
	run "mon mkfs" ceph-mon -c "$conf" --mkfs -i a --monmap "$DIR/monmap" --keyring "$keyring"
	run "mon start" timeout 60 ceph-mon -c "$conf" -i a
	phase "monitor started on 127.0.0.1:$MON_PORT"

	run "osd new" timeout 60 ceph -c "$conf" --connect-timeout 30 osd new "$osd_uuid" 0
	run "osd mkfs" timeout 60 ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid"
	run "osd start" timeout 60 ceph-osd -c "$conf" -i 0
	phase "osd started"

	run "rgw start" timeout 60 radosgw -c "$conf" -n client.rgw.a
	phase "radosgw started"

	http=http://127.0.0.1:$RGW_PORT
	deadline=$((SECONDS + ${RGW_READY_TIMEOUT:-120}))
	while :; do
		waiting=$http
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$http/" 9>&- || true)
		if [[ -n $https && $code =~ ^[1-5][0-9][0-9]$ ]]; then
			# -k: this only asks whether the TLS endpoint is up; the
			# certificate is the caller's to check.
			waiting=$https
			code=$(curl -s -k -o /dev/null -w '%{http_code}' --max-time 2 "$https/" 9>&- || true)
		fi
		[[ $code =~ ^[1-5][0-9][0-9]$ ]] && break
		((SECONDS < deadline)) || fail "S3 endpoint $waiting did not answer within ${RGW_READY_TIMEOUT:-120}s"
		for n in mon.a osd.0 client.rgw.a; do
			pid=$(cat "$DIR/run/$n.pid" 2>/dev/null || true)
			if [[ -z $pid ]] || ! pid_has_arg "$pid" "$conf"; then
				fail "daemon $n is not running"
			fi
		done
		sleep 0.2
	done
	phase "S3 answers on $http"
	[[ -z $https ]] || phase "S3 answers on $https (TLS)"

	# radosgw-admin generates the keys, so no secret is ever in a command line;
	# its JSON answer (holding the secret) is read here, not logged.
	printf '+ [%ss] radosgw-admin user create --uid %s\n' "$(elapsed)" "$RGW_USER" >>"$DIR/log/setup.log"
	user_json=$(timeout 60 radosgw-admin -c "$conf" user create --uid "$RGW_USER" \
		--display-name "docvault tests" 2>>"$DIR/log/setup.log" 9>&-) ||
		fail "radosgw-admin user create failed (see $DIR/log/setup.log)"
	akey=$(sed -n 's/^ *"access_key": "\([^"]*\)".*/\1/p' <<<"$user_json" | head -n 1)
	skey=$(sed -n 's/^ *"secret_key": "\([^"]*\)".*/\1/p' <<<"$user_json" | head -n 1)
	[[ $akey =~ ^[A-Za-z0-9]+$ && $skey =~ ^[A-Za-z0-9]+$ ]] ||
		fail "cannot read the keys from radosgw-admin user create's answer"
	phase "user $RGW_USER created"

	(umask 077 && : >"$DIR/env.tmp")
	cat >"$DIR/env.tmp" <<EOF
DV_TEST_S3_ENDPOINT=$http
DV_TEST_S3_REGION=$RGW_REGION
DV_TEST_S3_ACCESS_KEY=$akey
DV_TEST_S3_SECRET_KEY=$skey
EOF
	[[ -z $https ]] || echo "DV_TEST_S3_ENDPOINT_TLS=$https" >>"$DIR/env.tmp"
	mv "$DIR/env.tmp" "$DIR/env"
	trap - INT TERM HUP
	note "ready in $(elapsed)s (mon 127.0.0.1:$MON_PORT, logs in $DIR/log)"
	# The keys stay in DIR/env (mode 600): logs and CI output never show a secret.
	grep -v '_KEY=' "$DIR/env"
	note "access and secret key in $DIR/env"
}

cmd_stop() {
	# A DIR removed under running daemons still gets them stopped (/proc scan).
	if [[ -d $DIR ]]; then
		exec 9>"$DIR/.lock"
		flock -w 60 9 || die "$DIR is locked by another rgw.sh"
	fi
	stop_all
	rm -f "$DIR/env"
	if ((PURGE)); then
		for item in "${CLUSTER_ITEMS[@]}"; do rm -rf "${DIR:?}/$item"; done
		rm -f "$DIR/.lock"
		rmdir "$DIR" 2>/dev/null || true
	fi
}

cmd_status() {
	local endpoint code
	[[ -r $DIR/env ]] || {
		note "no $DIR/env: not started"
		exit 1
	}
	endpoint=$(sed -n 's/^DV_TEST_S3_ENDPOINT=//p' "$DIR/env")
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$endpoint/" || true)
	[[ $code =~ ^[1-5][0-9][0-9]$ ]] || {
		note "$endpoint does not answer"
		exit 1
	}
	echo "$endpoint answers (HTTP $code)"
}

(($# >= 2)) || usage
CMD=$1
DIR=$2
PURGE=0
shift 2
for a in "$@"; do
	case $a in
	--purge) PURGE=1 ;;
	*) usage ;;
	esac
done
[[ -n $DIR ]] || usage
DIR=$(realpath -m -- "$DIR")
[[ $DIR != / ]] || die "refusing DIR=/"
[[ $DIR != *[[:space:]]* ]] || die "DIR must not contain white space: '$DIR'"
unset CEPH_ARGS

case $CMD in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) usage ;;
esac
