#!/usr/bin/env bash
# pg.sh: a private PostgreSQL server in one directory, for tests and quickstart.
#
#   pg.sh start DIR    initdb if needed, start, wait until ready, write DIR/env
#   pg.sh stop DIR     stop (fast, then immediate)
#   pg.sh status DIR   exit 0 if running, 3 if stopped, 4 if never initialised
#   pg.sh bindir       print the PostgreSQL bin directory used
#
# Layout: DIR/data (the cluster: trust auth, superuser "postgres", UTF8,
# locale C), DIR/sock (the only listening socket: no TCP), DIR/postgresql.log,
# DIR/env (DV_TEST_PGHOST, DV_TEST_PGPORT, DV_TEST_PGUSER: source it).
# Port: $PG_PORT, default 5432; it only names the socket file, so servers in
# different directories never clash.
#
# PostgreSQL refuses to run as root: as root the server runs as the system
# user "docvault-pg" (created if missing), and DIR's ancestors get an ACL
# entry letting that user traverse them. As any other user it runs as that
# user.
#
# Durability settings are the production ones (fsync, synchronous_commit):
# the benchmarks measure against them. Idempotent: start on a running DIR
# succeeds, a stale postmaster.pid from a killed run is removed.
set -euo pipefail

PG_USER_NAME=docvault-pg
PG_START_TIMEOUT=${PG_START_TIMEOUT:-60}

die() {
	echo "pg.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: pg.sh start|stop|status DIR | pg.sh bindir" >&2
	exit 2
}

# The server binaries: $PG_BIN, else Debian's PostgreSQL 15, else the newest.
pg_bindir() {
	if [[ -n ${PG_BIN:-} ]]; then
		printf '%s\n' "$PG_BIN"
		return
	fi
	if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
		echo /usr/lib/postgresql/15/bin
		return
	fi
	local d
	d=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' \
		2>/dev/null | sort -V | tail -n 1)
	[[ -n $d ]] || die "no PostgreSQL server found (apt-get install postgresql)"
	dirname "$d"
}

# Run a command as the server's user, in DIR (initdb and pg_ctl need a
# current directory they can read).
as_pg() {
	if [[ $EUID -eq 0 ]]; then
		(cd "$DIR" && setpriv --reuid="$PG_USER_NAME" --regid="$PG_USER_NAME" \
			--init-groups env LC_ALL=C HOME="$DIR" "$@")
	else
		(cd "$DIR" && env LC_ALL=C "$@")
	fi
}

ensure_user() {
	[[ $EUID -eq 0 ]] || return 0
	id -u "$PG_USER_NAME" >/dev/null 2>&1 && return 0
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin --comment "docvault private PostgreSQL" \
		"$PG_USER_NAME" || die "cannot create user $PG_USER_NAME"
}

# Let the server's user reach DIR: every ancestor needs search permission.
ensure_traversable() {
	[[ $EUID -eq 0 ]] || return 0
	local d=$DIR
	local -a blocked=()
	while [[ $d != / ]]; do
		d=$(dirname "$d")
		as_pg test -x "$d" 2>/dev/null || blocked+=("$d")
	done
	local b
	for b in "${blocked[@]}"; do
		if setfacl -m "u:$PG_USER_NAME:x" "$b" 2>/dev/null; then
			echo "pg.sh: note: gave $PG_USER_NAME search (x) access to $b (ACL)" >&2
		else
			chmod o+x "$b" || die "cannot make $b traversable for $PG_USER_NAME"
			echo "pg.sh: note: made $b traversable (chmod o+x) for $PG_USER_NAME" >&2
		fi
	done
}

# True if PID is a zombie (dead, not reaped: kill -0 still succeeds).
is_zombie() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} == Z ]]
}

# Postmaster pid if the one in postmaster.pid is alive and is a postgres;
# otherwise removes the stale lock files and fails.
running_pid() {
	local pidfile=$DIR/data/postmaster.pid pid exe
	[[ -f $pidfile ]] || return 1
	pid=$(head -n 1 "$pidfile" 2>/dev/null || true)
	if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && ! is_zombie "$pid"; then
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
		if [[ ${exe##*/} == postgres* ]] ||
			[[ -z $exe && $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]]; then
			printf '%s\n' "$pid"
			return 0
		fi
	fi
	echo "pg.sh: removing stale $pidfile (pid ${pid:-?} is not running)" >&2
	rm -f "$pidfile" "$DIR"/sock/.s.PGSQL.*.lock
	return 1
}

# Line N of postmaster.pid (4 = port, 5 = socket directory).
pidfile_line() {
	sed -n "${1}p" "$DIR/data/postmaster.pid" 2>/dev/null
}

write_env() {
	local port=$1 tmp
	tmp=$(mktemp "$DIR/env.XXXXXX")
	{
		printf 'DV_TEST_PGHOST=%q\n' "$DIR/sock"
		printf 'DV_TEST_PGPORT=%q\n' "$port"
		printf 'DV_TEST_PGUSER=%q\n' postgres
	} >"$tmp"
	chmod 644 "$tmp"
	mv -f "$tmp" "$DIR/env"
}

# A value for postgresql.conf: single-quoted, quotes doubled.
conf_quote() {
	printf "'%s'" "${1//\'/\'\'}"
}

do_initdb() {
	[[ -f $DIR/data/PG_VERSION ]] && return 0
	[[ -e $DIR/data ]] &&
		die "$DIR/data exists but is not a PostgreSQL data directory; remove it"
	# initdb into a side directory and rename: DIR/data appears only complete.
	rm -rf "$DIR/data.init"
	install -d -m 700 -o "$run_uid" -g "$run_gid" "$DIR/data.init"
	echo "pg.sh: initdb $DIR/data" >&2
	if ! as_pg "$bin/initdb" -D "$DIR/data.init" -U postgres -A trust -E UTF8 \
		--locale=C >"$DIR/initdb.log" 2>&1; then
		cat "$DIR/initdb.log" >&2
		die "initdb failed (log above, also in $DIR/initdb.log)"
	fi
	printf "\n# docvault: settings written by tools/lib/pg.sh at every start\ninclude = 'docvault.conf'\n" \
		>>"$DIR/data.init/postgresql.conf"
	mv "$DIR/data.init" "$DIR/data"
}

write_conf() {
	local port=$1 tmp
	tmp=$DIR/data/docvault.conf.tmp
	cat >"$tmp" <<EOF
# Written by tools/lib/pg.sh; rewritten at every start.
listen_addresses = ''
unix_socket_directories = $(conf_quote "$DIR/sock")
unix_socket_permissions = 0777
port = $port
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
full_page_writes = on
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
log_min_error_statement = error
EOF
	chown "$run_uid:$run_gid" "$tmp"
	chmod 600 "$tmp"
	mv -f "$tmp" "$DIR/data/docvault.conf"
}

cmd_start() {
	local port=${PG_PORT:-5432} pid
	[[ $port =~ ^[0-9]+$ ]] || die "PG_PORT must be a number, not '$port'"
	local sockfile=$DIR/sock/.s.PGSQL.$port
	((${#sockfile} < 108)) ||
		die "socket path too long (${#sockfile} > 107 bytes): $sockfile; use a shorter DIR"

	ensure_user
	ensure_traversable
	if [[ $EUID -eq 0 ]]; then
		run_uid=$(id -u "$PG_USER_NAME")
		run_gid=$(id -g "$PG_USER_NAME")
	else
		run_uid=$(id -u)
		run_gid=$(id -g)
	fi
	chmod 755 "$DIR"

	if pid=$(running_pid); then
		port=$(pidfile_line 4)
		[[ -n $port ]] || port=${PG_PORT:-5432}
		if as_pg "$bin/pg_isready" -q -h "$DIR/sock" -p "$port" -U postgres -d postgres; then
			write_env "$port"
			echo "pg.sh: already running (pid $pid, socket $DIR/sock, port $port)" >&2
			return 0
		fi
		# Running but not ready (starting or shutting down): wait below.
	else
		do_initdb
		install -d -m 755 -o "$run_uid" -g "$run_gid" "$DIR/sock"
		touch "$DIR/postgresql.log"
		chown "$run_uid:$run_gid" "$DIR/postgresql.log"
		write_conf "$port"
		# -W: do not wait here; readiness is checked below with pg_isready.
		# The server must not hold the caller's pipes (a CI runner waiting
		# for EOF would hang): close every descriptor above 2 first.
		(
			for fd in /proc/"$BASHPID"/fd/*; do
				fd=${fd##*/}
				((fd > 2)) && [[ -e /proc/$BASHPID/fd/$fd ]] && exec {fd}>&-
			done
			as_pg "$bin/pg_ctl" start -W -s -D "$DIR/data" -l "$DIR/postgresql.log"
		) </dev/null >/dev/null ||
			{
				tail -n 30 "$DIR/postgresql.log" >&2 || true
				die "pg_ctl start failed (log: $DIR/postgresql.log)"
			}
	fi

	local deadline=$((SECONDS + PG_START_TIMEOUT))
	until as_pg "$bin/pg_isready" -q -h "$DIR/sock" -p "$port" -U postgres -d postgres; do
		if ((SECONDS >= deadline)); then
			tail -n 30 "$DIR/postgresql.log" >&2 || true
			die "PostgreSQL in $DIR not ready after ${PG_START_TIMEOUT}s (log tail above: $DIR/postgresql.log)"
		fi
		if ! running_pid >/dev/null 2>&1 && ((SECONDS > deadline - PG_START_TIMEOUT + 2)); then
			tail -n 30 "$DIR/postgresql.log" >&2 || true
			die "PostgreSQL in $DIR exited during start-up (log tail above: $DIR/postgresql.log)"
		fi
		sleep 0.2
	done
	write_env "$port"
	echo "pg.sh: PostgreSQL ready (socket $DIR/sock, port $port)" >&2
}

cmd_stop() {
	rm -f "$DIR/env"
	if ! running_pid >/dev/null; then
		echo "pg.sh: not running ($DIR)" >&2
		return 0
	fi
	if ! as_pg "$bin/pg_ctl" stop -s -D "$DIR/data" -m fast -w -t 30; then
		echo "pg.sh: fast shutdown failed; trying immediate" >&2
		as_pg "$bin/pg_ctl" stop -s -D "$DIR/data" -m immediate -w -t 30 ||
			die "cannot stop PostgreSQL in $DIR (log: $DIR/postgresql.log)"
	fi
	echo "pg.sh: stopped ($DIR)" >&2
}

cmd_status() {
	local pid
	if [[ ! -f $DIR/data/PG_VERSION ]]; then
		echo "pg.sh: no cluster in $DIR" >&2
		exit 4
	fi
	if pid=$(running_pid 2>/dev/null); then
		echo "running (pid $pid, socket $DIR/sock, port $(pidfile_line 4))"
		exit 0
	fi
	echo "stopped ($DIR)"
	exit 3
}

cmd=${1:-}
if [[ $cmd == bindir ]]; then
	pg_bindir
	exit 0
fi
[[ $# -eq 2 ]] || usage
bin=$(pg_bindir)
[[ -x $bin/pg_ctl ]] || die "$bin/pg_ctl not found"
if [[ $cmd == start ]]; then
	mkdir -p -- "$2"
elif [[ ! -d $2 ]]; then
	echo "pg.sh: no such directory: $2" >&2
	[[ $cmd == status ]] && exit 4
	exit 0
fi
DIR=$(cd -- "$2" && pwd -P)
run_uid='' run_gid=''
case $cmd in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) usage ;;
esac
