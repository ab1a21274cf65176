#!/bin/bash
# Aggregation views, stream path: the stream worker's CPU per event and the
# freshness at fixed rates, on one or more clusters side by side (e.g. a
# baseline build and a new one), taking turns rate by rate so that the load
# of a shared machine falls on both alike.
#   bench/agg_stream.sh "RATE..." SECONDS DIR [DIR...]
# Each DIR is a running cluster (scripts/lib.sh layout, bench/bench.conf)
# whose database bench_agg has the view agg of bench/aggregations.sh with
# its history (running `FS_BENCH_AGG_HISTORY=1000000 bench/aggregations.sh
# DIR` once leaves it there), stream workers on and, for a stable worker
# process, fstore.stream_idle_timeout = 0.  Per cluster and rate: bench/bin/agg_bench with 2
# producers and freshness probes for SECONDS, then a drain; the worker's CPU
# time (utime + stime of its process, robust to a noisy machine, unlike
# the wall clock) divided by the events it applied, queue depth at the end
# of the run, freshness p50/p95/p99 and the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
rates=$1
secs=$2
shift 2
make -s -C bench >/dev/null
tck=$(getconf CLK_TCK)
worker_pid() {
	fs_psql "$1" -d bench_agg -qAt -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'fstore stream worker' AND datname = 'bench_agg'" | head -1
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
applied() {
	fs_psql "$1" -d bench_agg -qAt -c "SELECT coalesce(sum(stream_applied), 0) FROM fstore.stats"
}
printf "%-28s %7s %9s %9s %8s %8s %8s %8s %9s %6s\n" cluster rate applied/s queue_end p50_ms p95_ms p99_ms cpu_s us/event load1
for rate in $rates; do
	for dir in "$@"; do
		port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$dir/data/postgresql.conf" | tail -n 1)
		fs_psql "$dir" -d bench_agg -qAt -c "SELECT fs_stream_wait('agg', '300 seconds')" >/dev/null
		# a write wakes the worker if it left for lack of work
		fs_psql "$dir" -d bench_agg -qAt -c "SELECT fs_stream_apply('agg', 1)" >/dev/null
		pid=$(worker_pid "$dir")
		if [ -z "$pid" ]; then
			bench/bin/agg_bench -d "host=$dir port=$port user=postgres dbname=bench_agg" -v agg -p 1 -b 10 -s 1 >/dev/null
			sleep 1
			pid=$(worker_pid "$dir")
		fi
		c0=$(cpu_ticks "$pid")
		a0=$(applied "$dir")
		out=$(bench/bin/agg_bench -d "host=$dir port=$port user=postgres dbname=bench_agg" -v agg -p 2 -b 1000 -s "$secs" -r "$rate" -F)
		fs_psql "$dir" -d bench_agg -qAt -c "SELECT fs_stream_wait('agg', '300 seconds')" >/dev/null
		c1=$(cpu_ticks "$pid")
		a1=$(applied "$dir")
		load=$(cut -d' ' -f1 /proc/loadavg)
		echo "$out" | awk -v name="$(basename "$dir")" -v rate="$rate" -v c="$((c1 - c0))" -v tck="$tck" \
			-v n="$((a1 - a0))" -v load="$load" '{
			for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			printf "%-28s %7d %9.0f %9d %8.1f %8.1f %8.1f %8.2f %9.2f %6s\n", name, rate, v["applied_per_s"],
				v["queue_end"], v["fresh_p50"], v["fresh_p95"], v["fresh_p99"], c / tck,
				(n > 0 ? c / tck * 1e6 / n : 0), load
		}'
	done
done
