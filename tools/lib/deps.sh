# shellcheck shell=bash
# deps.sh: install what docvault needs to build and test, on Debian 12.
#
# Source it and call `deps_install`. It asks dpkg-query first, so a machine
# that already has everything makes no apt call at all; only the missing
# packages are installed, and `apt-get update` runs only when the package
# lists are empty or an install fails (stale lists). Installing needs root;
# as another user it prints the command to run and fails.
#
# `deps_fuse_ok` tells whether this machine can mount FUSE filesystems
# (/dev/fuse present and usable, fusermount3 installed); `deps_install`
# warns when it cannot, `tools/quickstart` refuses to go on.
#
# `deps_install_bench` adds what only `tools/bench --store s3` needs (s3fs and
# rclone, the file systems docvault is measured against).
#
# Not a general package manager: Debian and apt only, a fixed list.

# Build: compiler, CMake, and the -dev packages CMakeLists.txt asks
# pkg-config for.
DEPS_BUILD=(cmake gcc make pkg-config libfuse3-dev fuse3 libpq-dev libxxhash-dev
	libinih-dev libssl-dev libcurl4-openssl-dev libmagic-dev zlib1g-dev)
# Run and test: the PostgreSQL 15 server (/usr/lib/postgresql/15/bin), the
# xxhsum CLI, the tools the integration tests drive through the mount, and
# setpriv/useradd for the second-user cases, valgrind for tools/check's
# memcheck pass.
DEPS_RUNTIME=(postgresql xxhash rsync attr acl git tar util-linux passwd psmisc
	procps curl poppler-utils python3 valgrind)

# deps_missing PKG...: print the packages (one a line) not installed.
deps_missing() {
	local -A ok=()
	local name st p
	while read -r name st; do
		[[ $st == installed ]] && ok[$name]=1
	done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null || true)
	for p in "$@"; do
		[[ -n ${ok[$p]:-} ]] || printf '%s\n' "$p"
	done
}

# deps_lists_empty: true when apt has no package lists (fresh image).
deps_lists_empty() {
	! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
}

# deps_fuse_ok: true when FUSE mounts can work here; prints why not.
deps_fuse_ok() {
	if [[ ! -e /dev/fuse ]] && [[ $EUID -eq 0 ]] && command -v modprobe >/dev/null; then
		modprobe fuse 2>/dev/null || true
	fi
	if [[ ! -c /dev/fuse ]]; then
		echo "deps: FUSE is unavailable: /dev/fuse does not exist." >&2
		echo "deps:   Load the module (modprobe fuse) or, in a container, pass the device" >&2
		echo "deps:   (docker run --device /dev/fuse --cap-add SYS_ADMIN ...)." >&2
		return 1
	fi
	if ! { : <>/dev/fuse; } 2>/dev/null; then
		echo "deps: FUSE is unavailable: /dev/fuse exists but cannot be opened by $(id -un)." >&2
		return 1
	fi
	if ! command -v fusermount3 >/dev/null; then
		echo "deps: FUSE is unavailable: fusermount3 is not installed (package fuse3)." >&2
		return 1
	fi
	return 0
}

# deps_install: install every missing package; warn if FUSE is unavailable.
# Returns non-zero if a package could not be installed.
deps_install() {
	local -a missing
	mapfile -t missing < <(deps_missing "${DEPS_BUILD[@]}" "${DEPS_RUNTIME[@]}")
	if ((${#missing[@]} > 0)); then
		echo "deps: installing ${missing[*]}" >&2
		if [[ $EUID -ne 0 ]]; then
			echo "deps: not root; run as root:" >&2
			echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
			return 1
		fi
		local -a apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q)
		local -a apt_install=("${apt[@]}" install -y --no-install-recommends)
		if deps_lists_empty; then
			"${apt[@]}" update || { echo "deps: apt-get update failed" >&2; return 1; }
		fi
		if ! "${apt_install[@]}" "${missing[@]}"; then
			echo "deps: install failed; refreshing the package lists and retrying" >&2
			"${apt[@]}" update || { echo "deps: apt-get update failed" >&2; return 1; }
			"${apt_install[@]}" "${missing[@]}" || {
				echo "deps: could not install: ${missing[*]}" >&2
				return 1
			}
		fi
		mapfile -t missing < <(deps_missing "${DEPS_BUILD[@]}" "${DEPS_RUNTIME[@]}")
		if ((${#missing[@]} > 0)); then
			echo "deps: still missing after install: ${missing[*]}" >&2
			return 1
		fi
	fi
	if [[ ! -x /usr/lib/postgresql/15/bin/initdb ]]; then
		echo "deps: note: /usr/lib/postgresql/15/bin/initdb not found;" \
			"tools/lib/pg.sh will use the newest PostgreSQL installed" >&2
	fi
	if ! deps_fuse_ok; then
		echo "deps: WARNING: without FUSE nothing can be mounted;" \
			"the mount tests will fail." >&2
	fi
	return 0
}

# Benchmark only (tools/bench --store s3): the FUSE file systems docvault is
# measured against on the same S3 server. Not needed to build or test.
DEPS_BENCH=(s3fs rclone)

# deps_install_bench [PKG...]: install whatever is missing of DEPS_BENCH and
# of the extra packages named (tools/bench passes what it builds with).
# Same rules as deps_install: no apt call when nothing is missing, apt-get
# update only for empty or stale lists, root needed to install.
deps_install_bench() {
	local -a want=("${DEPS_BENCH[@]}" "$@") missing
	mapfile -t missing < <(deps_missing "${want[@]}")
	((${#missing[@]} == 0)) && return 0
	echo "deps: installing ${missing[*]} (benchmark)" >&2
	if [[ $EUID -ne 0 ]]; then
		echo "deps: not root; run as root:" >&2
		echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
		return 1
	fi
	local -a apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q)
	local -a apt_install=("${apt[@]}" install -y --no-install-recommends)
	if deps_lists_empty; then
		"${apt[@]}" update >&2 || { echo "deps: apt-get update failed" >&2; return 1; }
	fi
	if ! "${apt_install[@]}" "${missing[@]}" >&2; then
		echo "deps: install failed; refreshing the package lists and retrying" >&2
		"${apt[@]}" update >&2 || { echo "deps: apt-get update failed" >&2; return 1; }
		"${apt_install[@]}" "${missing[@]}" >&2 || {
			echo "deps: could not install: ${missing[*]}" >&2
			return 1
		}
	fi
	mapfile -t missing < <(deps_missing "${want[@]}")
	if ((${#missing[@]} > 0)); then
		echo "deps: still missing after install: ${missing[*]}" >&2
		return 1
	fi
	return 0
}
