#!/bin/bash
# Training-set benchmark: three feature views with 5,000,000 history rows
# each (500,000 keys, 8 float4 features; one view with a ttl), entity
# queries of 100,000 and 2,000,000 labelled rows (see training_data.sql).
#
#   fstore     fs_create_training_set with the default strategy ('auto')
#   lateral    fs_create_training_set with strategy => 'lateral' (100k only)
#   window     the window-function join of Feast's Postgres offline store,
#              run in the same cluster: per view, join the entity rows with
#              the history on key and event_ts <= row time (and the ttl),
#              ROW_NUMBER() over each row's candidates by event_ts desc,
#              keep the first, join back to the entity rows
#
# Each run is a fresh connection over warm tables (pg_prewarm).  Reported:
# wall time (median, min, max over the rounds), peak private memory of the
# server processes (sum of RssAnon over the postmaster's children, sampled
# every 50 ms, minus the idle sum) and bytes spilled to temporary files;
# every fstore result is compared with the window result (same rows).
#
# FS_BENCH_BASE_PG_CONFIG: pg_config of another install of fstore (say,
# main's build, from a detached worktree into a private tree): its
# fs_create_training_set is measured too, as variant "base", on the same
# data in the same rounds.  The server is then restarted (and the tables
# prewarmed) before each fstore and base run, with that build's binaries;
# every other round runs the base first.
# usage: training.sh CLUSTER_DIR [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$1
rounds=${2:-3}
db=bench_train
export PGOPTIONS="-c client_min_messages=warning"
q() { fs_psql "$dir" -d $db -qAt "$@"; }
postmaster=$(head -1 "$dir/data/postmaster.pid")

fs_psql "$dir" -d postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
echo "generating 3 x 5,000,000 history rows and 2,000,000 labels..." >&2
fs_psql "$dir" -d $db -q -f bench/training_data.sql >/dev/null
q <<'SQL' >/dev/null
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
CREATE TABLE results (size int, variant text, round int, ms float8, peak_kb bigint,
                      temp_bytes bigint, identical bool, strategy text);
SQL

# the window-function SQL for an entity query
window_sql() {
	local eq=$1 v p ttl cols ocols first=1
	echo "WITH e AS MATERIALIZED (SELECT row_number() OVER () AS fs_row, q.* FROM ($eq) q),"
	for v in 1 2 3; do
		p=$(echo a b c | cut -d' ' -f$v)
		cols=$(for i in 1 2 3 4 5 6 7 8; do printf "h.%s%s, " "$p" "$i"; done | sed 's/, $//')
		ocols=$(for i in 1 2 3 4 5 6 7 8; do printf "%s%s, " "$p" "$i"; done | sed 's/, $//')
		ttl=""
		if [ "$v" = 3 ]; then ttl="AND h.event_ts >= e.event_ts - interval '7 days'"; fi
		if [ $first = 0 ]; then echo ","; fi
		first=0
		cat <<SQL
w$v AS (SELECT fs_row, $ocols FROM (
  SELECT e.fs_row, $cols,
         row_number() OVER (PARTITION BY e.fs_row ORDER BY h.event_ts DESC, h.created_at DESC) AS rn
    FROM e JOIN fstore_offline.v$v h ON h.doc_id = e.doc_id AND h.event_ts <= e.event_ts $ttl) x
  WHERE rn = 1)
SQL
	done
	cat <<SQL
SELECT e.row_id, e.doc_id, e.event_ts, e.label,
       w1.a1, w1.a2, w1.a3, w1.a4, w1.a5, w1.a6, w1.a7, w1.a8,
       w2.b1, w2.b2, w2.b3, w2.b4, w2.b5, w2.b6, w2.b7, w2.b8,
       w3.c1, w3.c2, w3.c3, w3.c4, w3.c5, w3.c6, w3.c7, w3.c8
  FROM e LEFT JOIN w1 USING (fs_row) LEFT JOIN w2 USING (fs_row) LEFT JOIN w3 USING (fs_row)
 ORDER BY e.fs_row
SQL
}

# private memory of every server process, in kB
server_anon_kb() {
	local total=0 p kb
	for p in $(pgrep -P "$postmaster"); do
		kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
		total=$((total + ${kb:-0}))
	done
	echo $total
}

temp_bytes() {
	q -c "SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()"
}

# run SIZE VARIANT ROUND SQL: one statement on a fresh connection, measured
run() {
	local size=$1 variant=$2 round=$3 sql=$4 idle peak=0 now t0 ms tb0 tb1 pid
	sleep 1
	tb0=$(temp_bytes)
	idle=$(server_anon_kb)
	t0=$(date +%s%N)
	q -c "$sql" >/dev/null &
	pid=$!
	while kill -0 $pid 2>/dev/null; do
		now=$(server_anon_kb)
		if [ "$now" -gt "$peak" ]; then peak=$now; fi
		sleep 0.05
	done
	wait $pid
	ms=$(( ($(date +%s%N) - t0) / 1000 ))
	sleep 1.5				# let the backend's exit flush its statistics
	tb1=$(temp_bytes)
	q -c "INSERT INTO results (size, variant, round, ms, peak_kb, temp_bytes)
	      VALUES ($size, '$variant', $round, $ms / 1000.0, greatest($peak - $idle, 0), $tb1 - $tb0)"
}

prewarm() {
	q -c "SELECT pg_prewarm(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	      WHERE n.nspname = 'fstore_offline' OR c.relname = 'labels'" >/dev/null
}
prewarm
features="ARRAY['v1.*', 'v2.*', 'v3.*']"

# with a base build: restarts the server with this build's binaries (this)
# or the base's (base), then prewarms
basebin=
if [ -n "${FS_BENCH_BASE_PG_CONFIG:-}" ]; then
	basebin=$("$FS_BENCH_BASE_PG_CONFIG" --bindir)
fi
use_build() {
	local bin=$PG_BINDIR
	[ -n "$basebin" ] || return 0
	[ "$1" = base ] && bin=$basebin
	fs_cluster_stop "$dir"
	PG_BINDIR=$bin fs_cluster_start "$dir"
	postmaster=$(head -1 "$dir/data/postmaster.pid")
	prewarm
}

for size in 100000 2000000; do
	eq="SELECT row_id, doc_id, event_ts, label FROM public.labels WHERE row_id <= $size"
	strategy=$(q -c "SELECT CASE WHEN fs_training_set_query(\$q\$$eq\$q\$, $features) LIKE '%as_of_join%'
	                             THEN 'hash' ELSE 'lateral' END")
	variants="window fstore"
	if [ -n "$basebin" ]; then variants="$variants base"; fi
	if [ $size = 100000 ]; then variants="$variants lateral"; fi
	for r in $(seq 1 "$rounds"); do
		# with a base build, every other round runs it before this one
		order=$variants
		if [ $((r % 2)) = 0 ]; then order=${variants/fstore base/base fstore}; fi
		for variant in $order; do
			echo "entity rows $size, round $r: $variant" >&2
			case $variant in
				window)
					q -c "DROP TABLE IF EXISTS window_result"
					run $size window "$r" "CREATE TABLE window_result AS $(window_sql "$eq")" ;;
				fstore|base)
					use_build $variant
					t=bench_set; if [ $variant = base ]; then t=bench_base; fi
					q -c "SELECT fs_drop_training_set(name) FROM fstore.training_sets WHERE name = '$t'" >/dev/null
					run $size $variant "$r" "SELECT fs_create_training_set('$t', \$q\$$eq\$q\$, $features)"
					q -c "UPDATE results SET strategy = '$strategy' WHERE size = $size AND variant = '$variant' AND round = $r" ;;
				lateral)
					q -c "SELECT fs_drop_training_set(name) FROM fstore.training_sets WHERE name = 'bench_lateral'" >/dev/null
					run $size lateral "$r" "SELECT fs_create_training_set('bench_lateral', \$q\$$eq\$q\$, $features, strategy => 'lateral')" ;;
			esac
		done
		# the same rows as the window join (as multisets: the entity query
		# has no ORDER BY, and a parallel plan may return it in any order)
		for t in bench_set $([ -n "$basebin" ] && echo bench_base) $([ $size = 100000 ] && echo bench_lateral); do
			same=$(q -c "SELECT (SELECT count(*) FROM (TABLE fstore_training.$t EXCEPT ALL TABLE window_result) x) = 0
			                AND (SELECT count(*) FROM (TABLE window_result EXCEPT ALL TABLE fstore_training.$t) y) = 0")
			v=fstore; if [ $t = bench_lateral ]; then v=lateral; elif [ $t = bench_base ]; then v=base; fi
			q -c "UPDATE results SET identical = '$same'::bool WHERE size = $size AND variant = '$v' AND round = $r"
		done
	done
done

echo
echo "Training sets: 3 views x 5,000,000 history rows (500,000 keys, 8 float4 features), all 24 features; $rounds rounds, median (min-max), p95"
[ -z "$basebin" ] || echo "base: $FS_BENCH_BASE_PG_CONFIG; base/x: base's median time over the variant's"
echo "peak memory: private memory of all server processes above idle, sampled every 50 ms; temp: bytes spilled to temporary files"
fs_psql "$dir" -d $db -q <<'SQL'
\pset footer off
WITH m AS (
  SELECT size, variant, max(strategy) AS strategy,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms, min(ms) AS min_ms, max(ms) AS max_ms,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95_ms,
         max(peak_kb) AS peak_kb, max(temp_bytes) AS temp_bytes, bool_and(identical) AS identical
    FROM results GROUP BY size, variant)
SELECT m.size AS "entity rows", m.variant || coalesce(' (' || m.strategy || ')', '') AS variant,
       round(m.ms::numeric) AS "time ms", round(m.min_ms::numeric) || '-' || round(m.max_ms::numeric) AS "min-max",
       round(m.p95_ms::numeric) AS "p95 ms",
       round((w.ms / m.ms)::numeric, 2) AS "window/x",
       coalesce(round((b.ms / m.ms)::numeric, 3)::text, '-') AS "base/x",
       pg_size_pretty(m.peak_kb * 1024) AS "peak memory", pg_size_pretty(m.temp_bytes) AS "temp",
       coalesce(m.identical::text, '-') AS "identical to window"
  FROM m JOIN m w ON w.size = m.size AND w.variant = 'window'
       LEFT JOIN m b ON b.size = m.size AND b.variant = 'base'
 ORDER BY m.size, m.ms DESC;
SQL
