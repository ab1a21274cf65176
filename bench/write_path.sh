#!/bin/bash
# Write-path benchmark (see write_path.sql).  usage: write_path.sh CLUSTER_DIR [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$1
rounds=${2:-3}
db=bench_write
q() { fs_psql "$dir" -d $db -qAt "$@"; }
export PGOPTIONS="-c client_min_messages=warning"

fs_psql "$dir" -d postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
echo "loading 1,000,000 keys x 32 features into three copies..." >&2
fs_psql "$dir" -d $db -q -f bench/write_path.sql >/dev/null
# FS_BENCH_BASE_PG_CONFIG (the pg_config of another install of fstore, say
# the previous commit's): two more copies, bq and ba, written by that build
# (the server restarted with its binaries) in every round, right before or
# after this build writes wq and wa, alternating; variants base:fs_write_query
# and base:fs_write
basebin=
if [ -n "${FS_BENCH_BASE_PG_CONFIG:-}" ]; then
	basebin=$("$FS_BENCH_BASE_PG_CONFIG" --bindir)
	echo "two more copies for the base build..." >&2
	q -q <<'SQL' >/dev/null
SELECT string_agg(format('f%s real', i), ', ') AS feats FROM generate_series(1, 32) i \gset
SELECT fs_create_feature_view('bq', 'k', :'feats');
SELECT fs_create_feature_view('ba', 'k', :'feats');
INSERT INTO fstore_online.bq SELECT * FROM fstore_online.wq;
INSERT INTO fstore_offline.bq SELECT * FROM fstore_offline.wq;
INSERT INTO fstore_online.ba SELECT * FROM fstore_online.wa;
INSERT INTO fstore_offline.ba SELECT * FROM fstore_offline.wa;
VACUUM ANALYZE;
SQL
fi
current=$PG_BINDIR
sets=$(q -c "SELECT string_agg(format('f%s = excluded.f%s', i, i), ', ') FROM generate_series(1, 32) i")
bcols=$(q -c "SELECT string_agg(format('b.f%s', i), ', ') FROM generate_series(1, 32) i")
waldir="$dir/data/pg_wal"

# measure VARIANT ROUND SQL...: runs the statements after a checkpoint, records
# time, WAL bytes and the part of them that is full-page images
measure() {
	local variant=$1 round=$2; shift 2
	q -c "CHECKPOINT"
	local l0 t0 l1 ms stats fpi
	l0=$(q -c "SELECT pg_current_wal_insert_lsn()")
	t0=$(date +%s%N)
	q "$@" >/dev/null
	ms=$(( ($(date +%s%N) - t0) / 1000 ))
	l1=$(q -c "SELECT pg_current_wal_insert_lsn()")
	stats=$(fs_as_pg "$PG_BINDIR/pg_waldump" -p "$waldir" -s "$l0" -e "$l1" --stats 2>/dev/null | awk '/^Total/ {print $5}')
	fpi=${stats:-0}
	q -c "INSERT INTO results SELECT '$variant', $round, $ms / 1000.0, pg_wal_lsn_diff('$l1', '$l0'), $fpi, 0, 0"
}

for r in $(seq 1 "$rounds"); do
	echo "round $r: new batch of 100,000 keys, 2,000 of them changed" >&2
	q <<SQL
DROP TABLE IF EXISTS batch, batch_arr;
CREATE TABLE batch AS
SELECT o.* FROM fstore_online.wq o ORDER BY random() LIMIT 100000;
UPDATE batch SET event_ts = '2026-01-01'::timestamptz + $r * interval '1 day';
UPDATE batch SET f1 = f1 + 1 WHERE id IN (SELECT id FROM batch ORDER BY random() LIMIT 2000);
CREATE TABLE batch_arr AS SELECT array_agg(ROW(b.*)::fstore_online.wa) AS rows FROM batch b;
VACUUM ANALYZE batch;
SQL
	h0=$(q -c "SELECT (SELECT count(*) FROM fstore_offline.wq), (SELECT count(*) FROM fstore_offline.wa), (SELECT count(*) FROM naive_history)")
	builds=(this)
	hb="0|0"
	if [ -n "$basebin" ]; then
		hb=$(q -c "SELECT (SELECT count(*) FROM fstore_offline.bq), (SELECT count(*) FROM fstore_offline.ba)")
		q -c "DROP TABLE IF EXISTS batch_arr_b" \
		  -c "CREATE TABLE batch_arr_b AS SELECT array_agg(ROW(b.*)::fstore_online.ba) AS rows FROM batch b"
		builds=(base this)
		[ $((r % 2)) -eq 0 ] && builds=(this base)
	fi
	for b in "${builds[@]}"; do
		if [ "$b" = base ]; then
			fs_cluster_switch "$dir" "$current" "$basebin"; current=$basebin
			measure base:fs_write_query "$r" -c "SELECT * FROM fs_write_query('bq', 'SELECT * FROM batch')"
			measure base:fs_write "$r" -c "SELECT * FROM fs_write('ba', (SELECT rows FROM batch_arr_b))"
		else
			fs_cluster_switch "$dir" "$current" "$PG_BINDIR"; current=$PG_BINDIR
			measure fs_write_query "$r" -c "SELECT * FROM fs_write_query('wq', 'SELECT * FROM batch')"
			measure fs_write "$r" -c "SELECT * FROM fs_write('wa', (SELECT rows FROM batch_arr))"
		fi
	done
	measure naive "$r" -c "BEGIN" \
		-c "INSERT INTO naive_online SELECT * FROM batch ON CONFLICT (id) DO UPDATE SET $sets, event_ts = excluded.event_ts" \
		-c "INSERT INTO naive_history SELECT b.id, b.event_ts, $bcols, now() FROM batch b" -c "COMMIT"
	q <<SQL
UPDATE results r SET history_rows = x.n FROM (VALUES
   ('fs_write_query', (SELECT count(*) FROM fstore_offline.wq) - split_part('$h0', '|', 1)::bigint),
   ('fs_write', (SELECT count(*) FROM fstore_offline.wa) - split_part('$h0', '|', 2)::bigint),
   ('naive', (SELECT count(*) FROM naive_history) - split_part('$h0', '|', 3)::bigint),
   ('base:fs_write_query', (SELECT count(*) FROM fstore_offline.bq) - split_part('$hb', '|', 1)::bigint),
   ('base:fs_write', (SELECT count(*) FROM fstore_offline.ba) - split_part('$hb', '|', 2)::bigint)) x(v, n)
 WHERE r.variant = x.v AND r.round = $r;
-- online rows rewritten: the fstore views write exactly the changed keys
UPDATE results SET online_rows = CASE WHEN variant = 'naive' THEN 100000 ELSE history_rows END WHERE round = $r;
SQL
done
fs_cluster_switch "$dir" "$current" "$PG_BINDIR"

# the copies must hold the same features (naive also rewrites event_ts of
# unchanged rows, so only features are compared)
same=$(q -c "SELECT count(*) FROM fstore_online.wq w JOIN naive_online n USING (id) JOIN fstore_online.wa a USING (id)
              WHERE (w.f1, w.f2, w.f32) IS DISTINCT FROM (n.f1, n.f2, n.f32)
                 OR (w.f1, w.f2, w.f32) IS DISTINCT FROM (a.f1, a.f2, a.f32)")
if [ -n "$basebin" ]; then
	same=$((same + $(q -c "SELECT count(*) FROM fstore_online.wq w JOIN fstore_online.bq b USING (id) JOIN fstore_online.ba a USING (id)
	                        WHERE (w.f1, w.f2, w.f32, w.event_ts) IS DISTINCT FROM (b.f1, b.f2, b.f32, b.event_ts)
	                           OR (w.f1, w.f2, w.f32, w.event_ts) IS DISTINCT FROM (a.f1, a.f2, a.f32, a.event_ts)")))
fi
echo
echo "Write path: 100,000-row refresh, 2% changed, view of 1,000,000 keys x 32 float4 ($rounds rounds, median; WAL after a CHECKPOINT)"
fs_psql "$dir" -d $db -q <<'SQL'
\pset footer off
WITH m AS (
  SELECT variant,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms,
         min(ms) AS min_ms, max(ms) AS max_ms,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY wal) AS wal,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY wal - fpi) AS wal_records,
         max(online_rows) AS online_rows, max(history_rows) AS history_rows
    FROM results GROUP BY variant)
SELECT m.variant,
       round(m.ms::numeric, 1) AS "time ms", round(m.min_ms::numeric, 1) AS "min", round(m.max_ms::numeric, 1) AS "max",
       m.online_rows AS "online rows", m.history_rows AS "history rows",
       pg_size_pretty(m.wal::bigint) AS "WAL", pg_size_pretty(m.wal_records::bigint) AS "WAL w/o FPI",
       round((n.ms / m.ms)::numeric, 1) AS "naive/x time",
       round((n.wal / m.wal)::numeric, 1) AS "naive/x WAL",
       round((n.wal_records / m.wal_records)::numeric, 1) AS "naive/x WAL w/o FPI"
  FROM m, m n WHERE n.variant = 'naive'
 ORDER BY m.ms;
SQL
echo "features differing between the three copies after all rounds: $same (must be 0)"
