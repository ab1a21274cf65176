#!/bin/bash
# Runs the benchmarks on a throwaway cluster and prints one table each.
# usage: bench/run.sh [write] [read] [ingest] [small] [materialize] [training] [retry] [aggregations] [ranker]
#        [python] [sharding] [standby]   (default: all)
# Each benchmark measures its baseline in the same run.  Not part of the
# test suite; takes several minutes.  The read, ingest and python
# benchmarks also write their figures as CSV into FS_BENCH_OUT (default
# bench/plots), and bench/plot.sh draws them there as SVG and PNG.
set -euo pipefail
cd "$(dirname "$0")/.."
FS_EXTRA_PACKAGES="redis-server libhiredis-dev gnuplot-nox" scripts/setup.sh
source scripts/lib.sh
make -s -C bench

which=${*:-write read ingest small materialize training retry aggregations python ranker sharding standby}
FS_BENCH_OUT=$(mkdir -p "${FS_BENCH_OUT:-bench/plots}" && cd "${FS_BENCH_OUT:-bench/plots}" && pwd)
export FS_BENCH_OUT
dir=$(fs_tmpdir bench)
hugepages_before=
stop() {
	fs_cluster_stop "$dir"
	if [ -n "$hugepages_before" ]; then
		echo "$hugepages_before" >/proc/sys/vm/nr_hugepages
		echo "huge pages released: vm.nr_hugepages = $(cat /proc/sys/vm/nr_hugepages)" >&2
	fi
	if [ "${FS_KEEP:-0}" != 1 ]; then rm -rf "$dir"; fi
}
trap stop EXIT
port=$(fs_free_port)
fs_cluster_init "$dir" "$port" bench/bench.conf
if [ "${FS_BENCH_HUGEPAGES:-0}" = 1 ]; then
	# FS_BENCH_HUGEPAGES=1 (as root): the read benchmark reserves 2MB huge
	# pages (vm.nr_hugepages) only while its server runs with huge_pages =
	# on, since any other server of the machine with huge_pages = try would
	# take reserved pages it finds free; this puts the setting back if the
	# benchmark stops half way
	hugepages_before=$(cat /proc/sys/vm/nr_hugepages)
	export FS_BENCH_HUGEPAGES
fi
fs_cluster_start "$dir"
export FS_BENCH_CONNINFO="host=$dir port=$port user=postgres"

for b in $which; do
	case $b in
		write) bench/write_path.sh "$dir" "${FS_BENCH_ROUNDS:-3}" ;;
		read) bench/read_path.sh "$dir" ;;
		ingest) bench/ingest.sh "$dir" ;;
		small) bench/small_writes.sh "$dir" "${FS_BENCH_ROUNDS:-3}" ;;
		materialize) bench/materialize.sh "$dir" "${FS_BENCH_ROUNDS:-3}" ;;
		training) bench/training.sh "$dir" "${FS_BENCH_ROUNDS:-3}" ;;
		retry) bench/stream_retry.sh "$dir" "${FS_BENCH_ROUNDS:-3}" ;;
		aggregations) bench/aggregations.sh "$dir" ;;
		python) bench/python_client.sh "$dir" ;;
		ranker) bench/ranker.sh "$dir" ;;
		sharding) bench/sharding.sh "$dir" ;;
		standby) bench/standby.sh "$dir" ;;
		*) echo "unknown benchmark $b" >&2; exit 2 ;;
	esac
done

bench/plot.sh "$FS_BENCH_OUT"
