#!/bin/bash
# Many small writes: transactions of fs_write of 10 changed keys each, from
# 2 pgbench clients, into a view of 100,000 keys x 8 float4 (a stream of
# small batches, where what a write costs besides its rows shows: the
# bookkeeping behind fstore.freshness, the writer lock, the commit).
# Baseline in the same run: the same 10 rows as a plain
# INSERT ... ON CONFLICT DO UPDATE into a table of the same shape (no
# history, no change detection).  With FS_BENCH_BASE_PG_CONFIG (the
# pg_config of another install of fstore, say the previous commit's), the
# server is restarted with those binaries for every other round, so both
# builds are measured on the same data in the same run.
# synchronous_commit is off for the clients: with it on, every transaction
# waits for its WAL flush and the disk hides what the write itself costs.
# usage: small_writes.sh CLUSTER_DIR [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$1
rounds=${2:-3}
secs=${FS_BENCH_SECONDS:-15}
db=bench_small
export PGOPTIONS="-c client_min_messages=warning"
fs_psql "$dir" -d postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
fs_psql "$dir" -d $db -q >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS fstore;
SELECT fs_create_entity('doc', 'doc_id bigint');
SELECT fs_create_feature_view('sw', 'doc', 'f1 real, f2 real, f3 real, f4 real, f5 real, f6 real, f7 real, f8 real');
SELECT fs_write_query('sw', 'SELECT g, random(), random(), random(), random(), random(), random(), random(), random(), now() - interval ''1 day'' FROM generate_series(1, 100000) g');
CREATE TABLE plain_sw (LIKE fstore_online.sw INCLUDING ALL);
INSERT INTO plain_sw SELECT * FROM fstore_online.sw;
VACUUM ANALYZE;
SQL
work=$(fs_tmpdir small)
cat >"$work/fstore.sql" <<'SQL'
\set k random(1, 99990)
SELECT written FROM fs_write('sw', ARRAY(SELECT ROW(g, random(), random(), random(), random(), random(), random(), random(), random(), clock_timestamp())::fstore_online.sw FROM generate_series(:k, :k + 9) g));
SQL
cat >"$work/plain.sql" <<'SQL'
\set k random(1, 99990)
INSERT INTO plain_sw SELECT g, random(), random(), random(), random(), random(), random(), random(), random(), clock_timestamp() FROM generate_series(:k, :k + 9) g
ON CONFLICT (doc_id) DO UPDATE SET f1 = excluded.f1, f2 = excluded.f2, f3 = excluded.f3, f4 = excluded.f4,
  f5 = excluded.f5, f6 = excluded.f6, f7 = excluded.f7, f8 = excluded.f8, event_ts = excluded.event_ts;
SQL
chmod -R a+rwX "$work"

builds=(":$PG_BINDIR")
if [ -n "${FS_BENCH_BASE_PG_CONFIG:-}" ]; then
	builds=("base:$("$FS_BENCH_BASE_PG_CONFIG" --bindir)" ":$PG_BINDIR")
fi
current=$PG_BINDIR
use_build() { fs_cluster_switch "$dir" "$current" "$1"; current=$1; }
port=$(sed -n 's/^port = //p' "$dir/data/postgresql.conf" | tail -1)
q() { fs_psql "$dir" -d $db -qAt "$@"; }
fs_psql "$dir" -d $db -qc "CREATE TABLE IF NOT EXISTS small_results (build text, variant text, round int, tps float8, state_rows bigint, xacts bigint)" \
	-c "CREATE TABLE IF NOT EXISTS small_lat (build text, variant text, round int, us float8)"
for r in $(seq 1 "$rounds"); do
	for b in "${builds[@]}"; do
		label=${b%%:*} bin=${b#*:}
		use_build "$bin"
		for v in fstore plain; do
			echo "round $r: ${label:-this build} $v ($secs s)" >&2
			q -c "SELECT pg_stat_force_next_flush()" >/dev/null
			s0=$(q -c "SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relid = 'fstore.view_state'::regclass")
			rm -f "$work"/log.*
			out=$(cd "$work" && PGOPTIONS="$PGOPTIONS -c synchronous_commit=off" fs_as_pg "$PG_BINDIR/pgbench" \
				-h "$dir" -p "$port" -U postgres -n -c 2 -j 2 -T "$secs" -l --log-prefix=log -f "$v.sql" $db 2>&1)
			tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
			q -c "SELECT pg_stat_force_next_flush()" >/dev/null
			s1=$(q -c "SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relid = 'fstore.view_state'::regclass")
			cat "$work"/log.* | awk -v b="${label:-this build}" -v v="$v" -v r="$r" '{ print b "\t" v "\t" r "\t" $3 }' |
				q -c "\\copy small_lat FROM STDIN"
			q -c "INSERT INTO small_results VALUES ('${label:-this build}', '$v', $r, $tps, $s1 - $s0,
			        (SELECT count(*) FROM small_lat WHERE build = '${label:-this build}' AND variant = '$v' AND round = $r))"
		done
	done
done
use_build "$PG_BINDIR"

echo
echo "Small writes: fs_write of 10 changed keys per transaction, 2 clients, ${secs} s x $rounds rounds (synchronous_commit off); latency per transaction"
fs_psql "$dir" -d $db -q <<'SQL'
\pset footer off
WITH l AS (SELECT build, variant, us FROM small_lat),
p AS (SELECT build, variant,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY us) / 1000 AS p50,
             percentile_cont(0.95) WITHIN GROUP (ORDER BY us) / 1000 AS p95,
             percentile_cont(0.99) WITHIN GROUP (ORDER BY us) / 1000 AS p99
        FROM l GROUP BY build, variant),
t AS (SELECT build, variant, percentile_cont(0.5) WITHIN GROUP (ORDER BY tps) AS tps,
             sum(state_rows) AS state_rows, sum(xacts) AS xacts
        FROM small_results GROUP BY build, variant)
SELECT t.build, t.variant, round(t.tps::numeric) AS "tps (median)",
       round(p.p50::numeric, 3) AS "p50 ms", round(p.p95::numeric, 3) AS "p95 ms", round(p.p99::numeric, 3) AS "p99 ms",
       round((t.tps / pl.tps)::numeric, 2) AS "tps / plain",
       round((1000.0 * t.state_rows / t.xacts)::numeric, 1) AS "view_state rows per 1,000 xacts"
  FROM t JOIN p USING (build, variant)
  JOIN t pl ON pl.build = t.build AND pl.variant = 'plain'
 ORDER BY t.build DESC, t.variant;
SQL
rm -rf "$work"
