#!/bin/bash
# Hot standby benchmark, in one run on the benchmark cluster (the primary)
# and a streaming standby made from it:
#  1. reads on the standby next to reads on the primary: fs_get_many and
#     fs_get_many_packed of 1,000 random keys of N x 32 float4 (default
#     N = 1,000,000), both caches warm, the same requests on both (the
#     checksums must agree): p50/p95/p99, requests/s, standby/primary;
#  2. the write path with and without the WAL records hot standbys need:
#     transactions of fs_write of 1, 100 and 1,000 changed keys, with
#     wal_level = replica (records written) against wal_level = minimal
#     (no standby possible, nothing written), with the primary's cache on
#     and off (without a cache the primary notes keys only for standbys):
#     p50/p95/p99 per transaction and ratios, and the bytes of fstore's
#     records per transaction (pg_walinspect).
# The standby is stopped before part 2 (its presence does not change what
# is written).  The cluster's settings are restored at the end.
# usage: standby.sh CLUSTER_DIR     (FS_BENCH_SECONDS per read run, default 8;
#        FS_BENCH_STANDBY_KEYS keys, default 1000000; FS_BENCH_WRITE_TXNS
#        transactions per write run, default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$1
db=bench_standby
secs=${FS_BENCH_SECONDS:-8}
nkeys=${FS_BENCH_STANDBY_KEYS:-1000000}
ntx=${FS_BENCH_WRITE_TXNS:-300}
export PGOPTIONS="-c client_min_messages=warning"
q() { fs_psql "$dir" -d $db -qAt "$@"; }
port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$dir/data/postgresql.conf" | tail -n 1)

fs_psql "$dir" -d postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
echo "loading $nkeys keys x 32 features..." >&2
fs_psql "$dir" -d $db -q -v nkeys="$nkeys" >/dev/null <<'SQL'
CREATE EXTENSION fstore;
CREATE EXTENSION pg_walinspect;
SELECT setseed(0.5);
SELECT fs_create_entity('k', 'id bigint');
SELECT string_agg(format('f%s real', i), ', ') AS feats FROM generate_series(1, 32) i \gset
SELECT fs_create_feature_view('wide', 'k', :'feats');
SELECT string_agg('random()::real', ', ') AS vals FROM generate_series(1, 32) i \gset
SELECT * FROM fs_write_query('wide', format('SELECT g, %s, now() FROM generate_series(1, %s) g', :'vals', :nkeys));
VACUUM ANALYZE;
SQL

# ---- the standby ----
sdir=$(fs_tmpdir standby)
sport=$(fs_free_port)
stop_standby() { fs_cluster_stop "$sdir"; }
cleanup() { stop_standby; rm -rf "$sdir"; }
trap cleanup EXIT
echo "making a streaming standby..." >&2
fs_as_pg "$PG_BINDIR/pg_basebackup" -h "$dir" -p "$port" -U postgres -D "$sdir/data" -R -X stream -c fast >/dev/null
{
	echo "port = $sport"
	echo "unix_socket_directories = '$sdir'"
	echo "hot_standby = on"
} >>"$sdir/data/postgresql.conf"
fs_cluster_start "$sdir"
for i in $(seq 600); do
	[ "$(fs_psql "$sdir" -d $db -qAt -c "SELECT pg_last_wal_replay_lsn() >= '$(q -c 'SELECT pg_current_wal_lsn()')'" 2>/dev/null)" = t ] && break
	sleep 0.2
done

warm() {
	fs_psql "$1" -d $db -qAt -c "SELECT sum((SELECT count(*) FROM fs_get_many(NULL::fstore_online.wide,
	    (SELECT array_agg(g::bigint) FROM generate_series(s, s + 9999) g)))) FROM generate_series(1, $nkeys, 10000) s" >/dev/null
}
for node in "$dir" "$sdir"; do warm "$node"; warm "$node"; done
echo "cache entries: primary $(q -c 'SELECT entries FROM fstore.cache_stats'), standby $(fs_psql "$sdir" -d $db -qAt -c 'SELECT entries FROM fstore.cache_stats')" >&2

pconn="host=$dir port=$port user=postgres dbname=$db"
sconn="host=$sdir port=$sport user=postgres dbname=$db"
run() { bench/bin/lookup_bench -N "$nkeys" "$@"; }

echo "agreement check (200 requests of 1,000 keys, the same keys on both):"
for m in fs packed; do
	a=$(run -d "$pconn" -m $m -k 1000 -n 200 -w 0 | awk '{print $(NF-1)}')
	b=$(run -d "$sconn" -m $m -k 1000 -n 200 -w 0 | awk '{print $(NF-1)}')
	echo "  $m primary $a standby $b $([ "$a" = "$b" ] && echo same || echo DIFFERENT)"
done
echo

out=$(mktemp)
# alternate primary and standby, twice, so drift affects both alike
for round in 1 2; do
	for m in fs packed; do
		run -d "$pconn" -m $m -k 1000 -n 100000 -w 20 -t "$secs" | sed 's/^/primary /' >>"$out"
		run -d "$sconn" -m $m -k 1000 -n 100000 -w 20 -t "$secs" | sed 's/^/standby /' >>"$out"
	done
done
hits=$(fs_psql "$sdir" -d $db -qAt -c "SELECT cache_hits || ' hits, ' || cache_misses || ' misses' FROM fstore.stats WHERE view_name = 'wide'")
echo "Reads: 1,000 random keys of $nkeys x 32 float4, warm caches, 1 client; ms per request (best of 2 runs by p50)"
awk '
function val(s, k,   i, n, a) { n = split(s, a, " "); for (i = 1; i <= n; i++) if (index(a[i], k "=") == 1) return substr(a[i], length(k) + 2); return "" }
{
	node = $1; mode = $2; k = node SUBSEP mode; p50 = val($0, "p50") + 0
	if (!(k in best) || p50 < best[k]) { best[k] = p50; p95[k] = val($0, "p95"); p99[k] = val($0, "p99"); rps[k] = val($0, "rps") }
}
END {
	printf "| %-7s | %-8s | %7s | %7s | %7s | %7s |\n", "mode", "node", "p50", "p95", "p99", "req/s"
	printf "|---|---|---|---|---|---|\n"
	split("fs packed", modes, " ")
	for (i = 1; i <= 2; i++) {
		m = modes[i]
		for (j = 1; j <= 2; j++) {
			n = (j == 1) ? "primary" : "standby"; k = n SUBSEP m
			printf "| %-7s | %-8s | %7.3f | %7.3f | %7.3f | %7s |\n", m, n, best[k], p95[k], p99[k], rps[k]
		}
		kp = "primary" SUBSEP m; ks = "standby" SUBSEP m
		printf "| %-7s | %-8s | %7.2f | %7.2f | %7.2f | %7.2f |\n", m, "stby/pri", best[ks] / best[kp], p95[ks] / p95[kp], p99[ks] / p99[kp], rps[ks] / rps[kp]
	}
}' "$out"
echo "standby's fstore.stats for the view: $hits"
rm -f "$out"
echo
stop_standby

# ---- the write path ----
# config NAME WAL_LEVEL SENDERS CACHE: restarts the primary with these settings
config() {
	{
		echo "wal_level = $2"
		echo "max_wal_senders = $3"
		echo "fstore.cache_size = $4"
	} >>"$dir/data/postgresql.conf"
	fs_as_pg "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 300 restart >/dev/null
}
orig_level=$(q -c "SHOW wal_level")
orig_senders=$(q -c "SHOW max_wal_senders")
orig_cache=$(q -c "SHOW fstore.cache_size")

q >/dev/null <<'SQL'
CREATE TABLE IF NOT EXISTS write_results (config text, keys int, ms float8, fs_bytes bigint, fs_records bigint, wal_bytes bigint);
TRUNCATE write_results;
-- one transaction per fs_write of nk changed keys; returns the times (ms)
CREATE OR REPLACE PROCEDURE write_run(cfg text, nk int, ntx int)
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	times float8[] := '{}';
	lsn0 pg_lsn := pg_current_wal_insert_lsn();
	rows fstore_online.wide[];
	i int;
BEGIN
	FOR i IN 1 .. ntx LOOP
		SELECT array_agg(ROW(w.id, w.f1 + 1, w.f2, w.f3, w.f4, w.f5, w.f6, w.f7, w.f8, w.f9, w.f10,
		                     w.f11, w.f12, w.f13, w.f14, w.f15, w.f16, w.f17, w.f18, w.f19, w.f20,
		                     w.f21, w.f22, w.f23, w.f24, w.f25, w.f26, w.f27, w.f28, w.f29, w.f30,
		                     w.f31, w.f32, clock_timestamp())::fstore_online.wide)
		  INTO rows
		  FROM fstore_online.wide w
		 WHERE w.id IN (SELECT (1 + floor(random() * (SELECT max(id) FROM fstore_online.wide)))::bigint
		                  FROM generate_series(1, nk));
		t0 := clock_timestamp();
		PERFORM fs_write('wide', rows);
		COMMIT;
		times := times || (extract(epoch FROM clock_timestamp() - t0) * 1000)::float8;
	END LOOP;
	INSERT INTO write_results
	SELECT cfg, nk, t, NULL, NULL, NULL FROM unnest(times) t;
	INSERT INTO write_results
	SELECT cfg, nk, NULL, NULL, NULL, pg_wal_lsn_diff(pg_current_wal_insert_lsn(), lsn0);
	COMMIT;
	IF current_setting('wal_level') <> 'minimal' THEN
		INSERT INTO write_results
		SELECT cfg, nk, NULL, s.combined_size, s.count, NULL
		  FROM pg_get_wal_stats(lsn0, pg_current_wal_flush_lsn()) s
		 WHERE s."resource_manager/record_type" = 'fstore';
	END IF;
END
$$;
SQL

for round in $(seq "${FS_BENCH_ROUNDS:-1}"); do
	for c in "replica cache on|replica|10|$orig_cache" "minimal cache on|minimal|0|$orig_cache" \
	         "replica cache off|replica|10|0" "minimal cache off|minimal|0|0"; do
		IFS='|' read -r name level senders cache <<<"$c"
		echo "write path: $name (round $round)" >&2
		config "$name" "$level" "$senders" "$cache"
		for nk in 1 100 1000; do
			n=$ntx
			[ "$nk" = 1000 ] && n=$(( (ntx + 2) / 3 ))
			q -c "CALL write_run('$name', $nk, $n)"
		done
	done
done
config restore "$orig_level" "$orig_senders" "$orig_cache"

echo "Write path: one transaction = fs_write of K changed keys of $nkeys x 32 float4; ms per transaction"
fs_psql "$dir" -d $db -q <<'SQL'
\pset footer off
WITH p AS (
  SELECT config, keys,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95,
         percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
         count(ms) AS txns,
         sum(fs_bytes) AS fs_bytes, sum(fs_records) AS fs_records,
         sum(wal_bytes) AS wal_bytes
    FROM write_results GROUP BY config, keys)
SELECT r.keys AS "K", split_part(r.config, ' ', 2) || ' ' || split_part(r.config, ' ', 3) AS cache,
       round(r.p50::numeric, 3) AS "replica p50", round(r.p95::numeric, 3) AS "p95", round(r.p99::numeric, 3) AS "p99",
       round(m.p50::numeric, 3) AS "minimal p50", round(m.p95::numeric, 3) AS "p95 ", round(m.p99::numeric, 3) AS "p99 ",
       round((r.p50 / m.p50)::numeric, 3) AS "replica/minimal p50",
       round((r.p99 / m.p99)::numeric, 3) AS "p99  ",
       round(r.fs_bytes::numeric / nullif(r.fs_records, 0), 0) AS "fstore WAL B/txn",
       round(r.wal_bytes::numeric / r.txns, 0) AS "all WAL B/txn",
       round(100 * r.fs_bytes::numeric / r.wal_bytes, 2) AS "fstore %",
       r.fs_records AS "records", r.txns AS "txns"
  FROM p r JOIN p m ON m.keys = r.keys
   AND m.config = replace(r.config, 'replica', 'minimal')
 WHERE r.config LIKE 'replica%'
 ORDER BY r.keys, r.config;
SQL
