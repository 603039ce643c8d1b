#!/bin/bash
# xattr.sh - user.* extended attributes through the syscalls (t_xattr.c),
# run against a fresh mount. The program prints what it checks.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
dv_run_prog t_xattr "$MNT"
dv_done
