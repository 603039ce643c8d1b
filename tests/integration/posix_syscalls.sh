#!/bin/bash
# posix_syscalls.sh - POSIX semantics and errno values through syscalls (t_posix.c),
# run against a fresh mount. The program prints what it checks.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
dv_run_prog t_posix "$MNT"
dv_done
