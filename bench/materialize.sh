#!/bin/bash
# Batch refresh benchmark: a source of 1,000,000 keys x 10 daily versions
# (10,000,000 rows, 16 float4 features; each day 2% of the keys change),
# loaded once, then incremental runs over one new day each (3 rounds):
#   fs_materialize   only what changed is written (online and history)
#   naive            latest source row per key, then INSERT ... ON CONFLICT
#                    DO UPDATE of every key (Feast's materialization)
# Each variant works on its own copy, from the same state, after a
# CHECKPOINT; WAL is split into record bytes and full-page images.
# usage: materialize.sh CLUSTER_DIR [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$1
rounds=${2:-3}
db=bench_mat
export PGOPTIONS="-c client_min_messages=warning"
q() { fs_psql "$dir" -d $db -qAt "$@"; }
waldir="$dir/data/pg_wal"

fs_psql "$dir" -d postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
echo "generating 10,000,000 source rows..." >&2
fs_psql "$dir" -d $db -q >/dev/null <<'SQL'
CREATE EXTENSION fstore;
-- features of key k on day d: they change when (d + k % 50) crosses a
-- multiple of 50, i.e. for 2% of the keys each day
CREATE FUNCTION feat(k bigint, i int, d int) RETURNS real LANGUAGE sql IMMUTABLE AS
  $$ SELECT (((k * 31 + i * 17 + ((d + k % 50) / 50) * 101) % 1000) / 1000.0)::real $$;
CREATE TABLE src (doc_id bigint, event_ts timestamptz,
  f1 real, f2 real, f3 real, f4 real, f5 real, f6 real, f7 real, f8 real,
  f9 real, f10 real, f11 real, f12 real, f13 real, f14 real, f15 real, f16 real);
CREATE FUNCTION add_day(d int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO src SELECT k, '2026-01-01'::timestamptz + d * interval '1 day',
    feat(k,1,d), feat(k,2,d), feat(k,3,d), feat(k,4,d), feat(k,5,d), feat(k,6,d), feat(k,7,d), feat(k,8,d),
    feat(k,9,d), feat(k,10,d), feat(k,11,d), feat(k,12,d), feat(k,13,d), feat(k,14,d), feat(k,15,d), feat(k,16,d)
    FROM generate_series(1, 1000000) k $$;
SELECT add_day(d) FROM generate_series(0, 9) d;
CREATE INDEX ON src (event_ts);
VACUUM ANALYZE src;
SELECT fs_create_entity('doc', 'doc_id bigint');
SELECT fs_create_feature_view('mat', 'doc', source => 'src'::regclass);
CREATE TABLE naive_online (LIKE fstore_online.mat INCLUDING ALL);
CREATE TABLE results (variant text, round int, ms float8, wal bigint, fpi bigint,
                      online_rows bigint, history_rows bigint, changed bigint);
SQL
echo "first full load (10 days)..." >&2
t0=$(date +%s%N)
first=$(q -c "SELECT read || ' read, ' || written || ' written, ' || unchanged || ' unchanged' FROM fs_materialize('mat', until => '2026-01-10 12:00')")
first_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
sets=$(q -c "SELECT string_agg(format('f%s = excluded.f%s', i, i), ', ') FROM generate_series(1, 16) i")
fl=$(q -c "SELECT string_agg(format('f%s', i), ', ') FROM generate_series(1, 16) i")
t0=$(date +%s%N)
q -c "INSERT INTO naive_online SELECT DISTINCT ON (doc_id) doc_id, $fl, event_ts FROM src
      WHERE event_ts <= '2026-01-10 12:00' ORDER BY doc_id, event_ts DESC" >/dev/null
naive_first_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
q -c "VACUUM ANALYZE" >/dev/null

wal_split() {
	fs_as_pg "$PG_BINDIR/pg_waldump" -p "$waldir" -s "$1" -e "$2" --stats 2>/dev/null | awk '/^Total/ {print $5}'
}

for r in $(seq 1 "$rounds"); do
	d=$((9 + r))
	lo="2026-01-$(printf %02d $((d))) 12:00"
	hi="2026-01-$(printf %02d $((d + 1))) 12:00"
	echo "round $r: day $d arrives" >&2
	q -c "SELECT add_day($d)" >/dev/null
	changed=$(q -c "SELECT count(*) FROM generate_series(1, 1000000) k WHERE (($d + k % 50) / 50) <> (($d - 1 + k % 50) / 50)")
	h0=$(q -c "SELECT count(*) FROM fstore_offline.mat")

	q -c "CHECKPOINT"
	l0=$(q -c "SELECT pg_current_wal_insert_lsn()")
	t0=$(date +%s%N)
	out=$(q -c "SELECT written FROM fs_materialize('mat', until => '$hi')")
	ms=$(( ($(date +%s%N) - t0) / 1000 ))
	l1=$(q -c "SELECT pg_current_wal_insert_lsn()")
	fpi=$(wal_split "$l0" "$l1")
	h1=$(q -c "SELECT count(*) FROM fstore_offline.mat")
	q -c "INSERT INTO results SELECT 'fs_materialize', $r, $ms / 1000.0, pg_wal_lsn_diff('$l1', '$l0'), ${fpi:-0}, $out, $h1 - $h0, $changed"

	q -c "CHECKPOINT"
	l0=$(q -c "SELECT pg_current_wal_insert_lsn()")
	t0=$(date +%s%N)
	n=$(q -c "WITH u AS (INSERT INTO naive_online SELECT DISTINCT ON (doc_id) doc_id, $fl, event_ts FROM src
	            WHERE event_ts > '$lo' AND event_ts <= '$hi' ORDER BY doc_id, event_ts DESC
	            ON CONFLICT (doc_id) DO UPDATE SET $sets, event_ts = excluded.event_ts RETURNING 1)
	          SELECT count(*) FROM u")
	ms=$(( ($(date +%s%N) - t0) / 1000 ))
	l1=$(q -c "SELECT pg_current_wal_insert_lsn()")
	fpi=$(wal_split "$l0" "$l1")
	q -c "INSERT INTO results SELECT 'naive', $r, $ms / 1000.0, pg_wal_lsn_diff('$l1', '$l0'), ${fpi:-0}, $n, 0, $changed"
done

diff=$(q -c "SELECT count(*) FROM fstore_online.mat m JOIN naive_online n USING (doc_id)
             WHERE (m.f1, m.f8, m.f16) IS DISTINCT FROM (n.f1, n.f8, n.f16)")
echo
echo "Batch refresh: source 1,000,000 keys x 10 days x 16 float4; incremental run over one new day, 2% of keys changed ($rounds rounds, median; WAL after a CHECKPOINT)"
echo "first full load: fs_materialize ${first_ms} ms ($first); naive ${naive_first_ms} ms"
fs_psql "$dir" -d $db -q <<'SQL'
\pset footer off
WITH m AS (
  SELECT variant,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms,
         min(ms) AS min_ms, max(ms) AS max_ms,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY wal) AS wal,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY wal - fpi) AS wal_records,
         max(online_rows) AS online_rows, max(history_rows) AS history_rows,
         bool_and(variant = 'naive' OR online_rows = changed) AS exact,
         max(changed) AS changed
    FROM results GROUP BY variant)
SELECT m.variant, round(m.ms::numeric, 1) AS "time ms", round(m.min_ms::numeric, 1) AS "min",
       round(m.max_ms::numeric, 1) AS "max", m.changed AS "changed keys",
       m.online_rows AS "online rows", m.history_rows AS "history rows",
       m.exact AS "online = changed",
       pg_size_pretty(m.wal::bigint) AS "WAL", pg_size_pretty(m.wal_records::bigint) AS "WAL w/o FPI",
       round((n.ms / m.ms)::numeric, 1) AS "naive/x time",
       round((n.wal / m.wal)::numeric, 1) AS "naive/x WAL",
       round((n.wal_records / m.wal_records)::numeric, 1) AS "naive/x WAL w/o FPI"
  FROM m, m n WHERE n.variant = 'naive' ORDER BY m.ms;
SQL
echo "features differing between fs_materialize's and the naive online tables: $diff (must be 0)"
