#!/bin/bash
# Sets everything up (scripts/setup.sh), starts a throwaway cluster with
# fstore preloaded, loads a small corpus of documents with features, runs
# a ranking lookup and prints the result.  The cluster is stopped and
# removed at the end (FS_KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/lib.sh

dir=$(fs_tmpdir demo)
stop() {
	fs_cluster_stop "$dir"
	if [ "${FS_KEEP:-0}" != 1 ]; then rm -rf "$dir"; else echo "kept $dir"; fi
}
trap stop EXIT
port=$(fs_free_port)
fs_cluster_init "$dir" "$port"
fs_cluster_start "$dir"
echo "==> throwaway cluster on port $port ($dir)"
fs_psql "$dir" -d postgres -q -f scripts/demo.sql
