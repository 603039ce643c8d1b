#!/bin/bash
# rename.sh - every rename case through rename(2) and renameat2(2) (t_rename.c),
# run against a fresh mount. The program prints what it checks.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
dv_run_prog t_rename "$MNT"
dv_done
