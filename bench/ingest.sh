#!/bin/bash
# Streaming ingestion benchmark: a view of 100,000 keys x 8 float4, two
# producer connections sending COPY batches of 1,000 events.
#   1. baseline: producers call fs_write_query directly (synchronous), 30 s
#   2. stream, unthrottled, 20 s: how fast the worker applies under full load
#   3. the highest sustained rate: a rate is sustained when, after 60 s of
#      it, less than one second of events is still queued; tried from the
#      step-2 figure down by 10% until one holds
#   4. freshness at half that rate, 30 s: commit-to-visible in fs_get_many
#      from another session, per batch
#   5. with FS_BENCH_BASE_PG_CONFIG (the pg_config of another install of
#      fstore, say the previous commit's): steps 1 and 2 again, 15 s each,
#      FS_BENCH_ROUNDS (3) rounds taking turns, that build and this one on
#      the same data (the server restarted with the other binaries),
#      medians side by side; FS_BENCH_INGEST_COMPARE_ONLY=1 runs only this
# usage: ingest.sh CLUSTER_DIR   (with FS_BENCH_OUT, writes the freshness
#        samples of step 4 to $FS_BENCH_OUT/ingest_freshness.csv and the
#        figures to $FS_BENCH_OUT/ingest.csv)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$1
db=bench_ingest
export PGOPTIONS="-c client_min_messages=warning"
fs_psql "$dir" -d postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
fs_psql "$dir" -d $db -q >/dev/null <<'SQL'
CREATE EXTENSION fstore;
SELECT fs_create_entity('doc', 'doc_id bigint');
SELECT fs_create_feature_view('ing', 'doc', 'f1 real, f2 real, f3 real, f4 real, f5 real, f6 real, f7 real, f8 real');
-- 100,000 keys, and the producers' probe keys
SELECT fs_write_query('ing', 'SELECT g, random(), random(), random(), random(), random(), random(), random(), random(), now() - interval ''1 day'' FROM generate_series(1, 100016) g');
VACUUM ANALYZE;
SQL
conn="$FS_BENCH_CONNINFO dbname=$db"
run() { bench/bin/ingest_bench -d "$conn" -v ing -p 2 -b 1000 "$@"; }
drain() { fs_psql "$dir" -d $db -qAt -c "SELECT fs_stream_wait('ing', '300 seconds')" >/dev/null; }
val() { echo "$1" | sed -n "s/.* $2=\([0-9.]*\).*/\1/p"; }

if [ "${FS_BENCH_INGEST_COMPARE_ONLY:-0}" != 1 ]; then
echo "1/4 direct fs_write_query baseline (30 s)" >&2
direct=$(run -m direct -s 30)
echo "2/4 stream, unthrottled (20 s)" >&2
full=$(run -m stream -s 20)
drain
cap=$(val "$full" applied_per_s)
rate=$(awk -v c="$cap" 'BEGIN { r = int(c * 0.95 / 1000) * 1000; print (r < 1000 ? 1000 : r) }')
sustained=""
for try in 1 2 3 4 5; do
	echo "3/4 stream at $rate events/s (60 s)" >&2
	out=$(run -m stream -s 60 -r "$rate")
	left=$(val "$out" queue_end)
	drain
	if [ "$left" -le "$rate" ]; then sustained=$out; break; fi
	rate=$(awk -v r="$rate" 'BEGIN { print int(r * 0.9 / 1000) * 1000 }')
done
half=$(awk -v r="$rate" 'BEGIN { print int(r / 2) }')
echo "4/4 freshness at $half events/s (30 s)" >&2
samples=()
if [ -n "${FS_BENCH_OUT:-}" ]; then samples=(-o "$FS_BENCH_OUT/ingest_freshness.csv"); fi
fresh=$(run -m stream -s 30 -r "$half" -F "${samples[@]}")
drain

echo
echo "Streaming ingestion: 2 producers, COPY batches of 1,000 events, view of 100,000 keys x 8 float4"
echo "$direct"
echo "$full"
echo "$sustained"
echo "$fresh"
awk -v d="$(val "$direct" produced_per_s)" -v s="$(val "$sustained" produced_per_s)" \
	-v cap="$cap" -v r="$rate" -v p50="$(val "$fresh" fresh_p50)" -v p95="$(val "$fresh" fresh_p95)" \
	-v p99="$(val "$fresh" fresh_p99)" 'BEGIN {
	printf "%-44s %12s\n", "figure", "value"
	printf "%-44s %12.0f\n", "direct fs_write baseline, events/s", d
	printf "%-44s %12.0f\n", "worker apply rate under full load, events/s", cap
	printf "%-44s %12.0f\n", "highest sustained rate (60 s), events/s", s
	printf "%-44s %12.2f\n", "sustained / direct", s / d
	printf "%-44s %12s\n", "freshness at half rate p50/p95/p99, ms", p50 "/" p95 "/" p99
}'
if [ -n "${FS_BENCH_OUT:-}" ]; then
	{
		echo "figure,value"
		echo "direct_events_per_s,$(val "$direct" produced_per_s)"
		echo "apply_rate_full_load_events_per_s,$cap"
		echo "sustained_events_per_s,$(val "$sustained" produced_per_s)"
		echo "freshness_rate_events_per_s,$half"
		echo "freshness_p50_ms,$(val "$fresh" fresh_p50)"
		echo "freshness_p95_ms,$(val "$fresh" fresh_p95)"
		echo "freshness_p99_ms,$(val "$fresh" fresh_p99)"
	} >"$FS_BENCH_OUT/ingest.csv"
fi
fi

if [ -n "${FS_BENCH_BASE_PG_CONFIG:-}" ]; then
	basebin=$("$FS_BENCH_BASE_PG_CONFIG" --bindir)
	current=$PG_BINDIR
	declare -A D F
	for r in $(seq 1 "${FS_BENCH_ROUNDS:-3}"); do
		builds=("base:$basebin" "this build:$PG_BINDIR")
		[ $((r % 2)) -eq 0 ] && builds=("this build:$PG_BINDIR" "base:$basebin")
		for b in "${builds[@]}"; do
			label=${b%%:*} bin=${b#*:}
			fs_cluster_switch "$dir" "$current" "$bin"; current=$bin
			echo "5/5 round $r, $label: direct and stream (15 s each)" >&2
			D[$label]+=" $(val "$(run -m direct -s 15)" produced_per_s)"
			F[$label]+=" $(val "$(run -m stream -s 15)" applied_per_s)"
			drain
		done
	done
	fs_cluster_switch "$dir" "$current" "$PG_BINDIR"
	echo
	echo "Same run, two builds (${FS_BENCH_ROUNDS:-3} rounds of 15 s, order alternating; medians)"
	med() { printf '%s\n' $1 | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
	printf "%-12s %28s %28s\n" build "direct fs_write, events/s" "worker apply, events/s"
	for label in base "this build"; do
		printf "%-12s %28.0f %28.0f\n" "$label" "$(med "${D[$label]}")" "$(med "${F[$label]}")"
		echo "  rounds: direct${D[$label]}; apply${F[$label]}"
	done
	printf "%-12s %28.2f %28.2f\n" "this / base" \
		"$(awk -v a="$(med "${D[this build]}")" -v b="$(med "${D[base]}")" 'BEGIN { print a / b }')" \
		"$(awk -v a="$(med "${F[this build]}")" -v b="$(med "${F[base]}")" 'BEGIN { print a / b }')"
fi
