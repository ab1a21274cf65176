#!/bin/bash
# Read-path benchmark: fs_get_many (typed) and fs_get_many_packed against
# their baselines, in the same run, on 1,000,000 keys x 32 float4 features:
#   sql            SELECT * FROM the online table WHERE id = ANY($1)
#   fs_nocache     fs_get_many with the hot cache off
#   fs / packed    fstore with the cache warm
#   feast          Feast's Postgres layout (a row per entity and feature)
#   redis_hgetall  Redis hashes, pipelined HGETALL
#   redis_mget     Redis packed vectors, one MGET
# 100, 1,000 and 5,000 keys per request; 1 and 2 concurrent clients.
# usage: read_path.sh CLUSTER_DIR     (FS_BENCH_SECONDS per run, default 8;
#        with FS_BENCH_OUT, writes its figures to $FS_BENCH_OUT/read_latency.csv)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$1
db=bench_read
secs=${FS_BENCH_SECONDS:-8}
sizes=${FS_BENCH_SIZES:-100 1000 5000}
modes=${FS_BENCH_MODES:-sql fs_nocache fs packed feast redis_hgetall redis_mget}
export PGOPTIONS="-c client_min_messages=warning"

fs_psql "$dir" -d postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
echo "loading 1,000,000 keys x 32 features, and the Feast layout (32,000,000 rows)..." >&2
fs_psql "$dir" -d $db -q >/dev/null <<'SQL'
CREATE EXTENSION fstore;
CREATE EXTENSION pg_prewarm;
SELECT setseed(0.5);
SELECT fs_create_entity('k', 'id bigint');
SELECT string_agg(format('f%s real', i), ', ') AS feats FROM generate_series(1, 32) i \gset
SELECT fs_create_feature_view('wide', 'k', :'feats');
SELECT string_agg('random()::real', ', ') AS vals FROM generate_series(1, 32) i \gset
SELECT * FROM fs_write_query('wide', format('SELECT g, %s, now() FROM generate_series(1, 1000000) g', :'vals'));
-- Feast's online table: entity key and value as bytea, one row per feature
CREATE TABLE feast_wide (entity_key bytea, feature_name text, value bytea,
                         event_ts timestamptz, created_ts timestamptz,
                         PRIMARY KEY (entity_key, feature_name));
SELECT string_agg(format('f%s', i), ', ') AS fl FROM generate_series(1, 32) i \gset
INSERT INTO feast_wide
SELECT int8send(w.id), 'f' || i, float4send((ARRAY[:fl])[i]), w.event_ts, now()
  FROM fstore_online.wide w, generate_series(1, 32) i;
VACUUM ANALYZE;
SQL
fs_psql "$dir" -d $db -qAt -c "SELECT pg_prewarm('fstore_online.wide'), pg_prewarm('fstore_online.wide_pkey'), pg_prewarm('feast_wide'), pg_prewarm('feast_wide_pkey')" >/dev/null
# warm the cache: every key once
fs_psql "$dir" -d $db -qAt -c "SELECT sum((SELECT count(*) FROM fs_get_many(NULL::fstore_online.wide,
    (SELECT array_agg(g::bigint) FROM generate_series(s, s + 9999) g)))) FROM generate_series(1, 1000000, 10000) s" >/dev/null

rport=$(fs_free_port)
rdir=$(fs_tmpdir redis)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$rdir" \
	--daemonize yes --pidfile "$rdir/redis.pid" --logfile "$rdir/redis.log" >/dev/null
trap 'kill "$(cat "$rdir/redis.pid")" 2>/dev/null; rm -rf "$rdir"' EXIT
for i in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
conn="$FS_BENCH_CONNINFO dbname=$db"
bench/bin/lookup_bench -L -d "$conn" -r "$rport" 2>&1 >&2

run() { bench/bin/lookup_bench -d "$conn" -r "$rport" "$@"; }

# every mode must return the same values: equal checksums over fixed requests
echo "agreement check (200 requests of 1,000 keys, same keys in every mode):"
for m in $modes; do run -m "$m" -k 1000 -n 200 -w 0; done | awk '{print "  " $1, $NF, $(NF-1)}'
echo

out=$(mktemp)
for k in $sizes; do
	for c in 1 2; do
		for m in $modes; do
			run -m "$m" -k "$k" -c "$c" -n 100000 -w 20 -t "$secs" >>"$out"
		done
	done
done

echo "Read path: 1,000,000 keys x 32 float4, warm; libpq binary, prepared; latency in ms per request"
awk '
function val(s, k,   i, n, a) { n = split(s, a, " "); for (i = 1; i <= n; i++) if (index(a[i], k "=") == 1) return substr(a[i], length(k) + 2); return "" }
{
	mode = $1; k = val($0, "keys"); c = val($0, "clients");
	key = k "/" c; p50[key, mode] = val($0, "p50"); p95[key, mode] = val($0, "p95");
	p99[key, mode] = val($0, "p99"); rps[key, mode] = val($0, "rps");
	if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
	if (!(mode in mseen)) { mseen[mode] = 1; morder[++nm] = mode }
}
END {
	printf "%-6s %-3s %-14s %9s %9s %9s %9s %12s %12s %12s\n", "keys", "cl", "mode", "p50", "p95", "p99", "req/s", "sql/x p50", "sql/x p99", "mget/x p50"
	for (i = 1; i <= nk; i++) {
		key = order[i]; split(key, kc, "/")
		for (j = 1; j <= nm; j++) {
			m = morder[j]
			if (!((key, m) in p50)) continue
			printf "%-6s %-3s %-14s %9.3f %9.3f %9.3f %9.0f %12.2f %12.2f %12.2f\n", kc[1], kc[2], m,
				p50[key, m], p95[key, m], p99[key, m], rps[key, m],
				p50[key, "sql"] / p50[key, m], p99[key, "sql"] / p99[key, m],
				((key, "redis_mget") in p50) ? p50[key, "redis_mget"] / p50[key, m] : 0
		}
	}
}' "$out"
# CSV for bench/plot.sh
if [ -n "${FS_BENCH_OUT:-}" ]; then
	awk 'BEGIN { print "mode,keys,clients,p50_ms,p95_ms,p99_ms,rps" }
	function val(s, k,   i, n, a) { n = split(s, a, " "); for (i = 1; i <= n; i++) if (index(a[i], k "=") == 1) return substr(a[i], length(k) + 2); return "" }
	{ print $1 "," val($0, "keys") "," val($0, "clients") "," val($0, "p50") "," val($0, "p95") "," val($0, "p99") "," val($0, "rps") }' \
		"$out" >"$FS_BENCH_OUT/read_latency.csv"
fi
rm -f "$out"
fs_psql "$dir" -d $db -q -c "SELECT * FROM fstore.cache_stats" -c "SELECT view_name, lookups, keys_requested, cache_hits, cache_misses, evictions FROM fstore.stats"
