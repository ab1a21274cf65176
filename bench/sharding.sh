#!/bin/bash
# Sharding benchmark (docs/scale-out.md): fs_get_many of 1,000 keys
# through a coordinator over 3 local shards, against the same call on an
# unsharded view of the same data on the coordinator, in the same run:
#   unsharded        fs_get_many on the coordinator's own view (warm cache)
#   sharded          fs_get_many on the sharded view: keys grouped by
#                    shard, one fs_get_many per shard, all sent at once
#   unsharded_packed / sharded_packed: fs_get_many_packed
#   shard_direct     fs_get_many of ~333 keys on one shard (what each shard
#                    does for a sharded call)
# On one machine the shards share its cores with the coordinator: this
# measures the coordinator's overhead, not a speedup.
# usage: sharding.sh CLUSTER_DIR   (FS_BENCH_SECONDS per mode, default 10;
#        FS_BENCH_KEYS keys in the views, default 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$1
db=bench_shard
secs=${FS_BENCH_SECONDS:-10}
nkeys=${FS_BENCH_KEYS:-200000}
export PGOPTIONS="-c client_min_messages=warning"

# three shard clusters, stopped and removed on exit
sdirs=()
cleanup() {
	for d in "${sdirs[@]}"; do fs_cluster_stop "$d" || true; rm -rf "$d"; done
}
trap cleanup EXIT
conf=$(mktemp)
printf "shared_buffers = 512MB\nfstore.cache_size = 256MB\nmax_connections = 50\n" >"$conf"
chmod 644 "$conf"
for i in 1 2 3; do
	d=$(fs_tmpdir shard$i)
	sdirs+=("$d")
	fs_cluster_init "$d" "$(fs_free_port)" "$conf"
	fs_cluster_start "$d"
	fs_psql "$d" -d postgres -qc "CREATE EXTENSION fstore" >/dev/null
done
rm -f "$conf"

fs_psql "$dir" -d postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
echo "loading $nkeys keys x 32 features into the unsharded and the sharded view..." >&2
{
	echo "CREATE EXTENSION fstore; CREATE EXTENSION postgres_fdw; CREATE EXTENSION dblink;"
	i=1
	for d in "${sdirs[@]}"; do
		port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$d/data/postgresql.conf" | tail -n 1)
		echo "SELECT fs_add_shard('s$i', 'host=$d port=$port dbname=postgres user=postgres');"
		i=$((i + 1))
	done
	cat <<SQL
SELECT fs_create_entity('k', 'id bigint');
SELECT string_agg(format('f%s real', i), ', ') AS feats FROM generate_series(1, 32) i \gset
SELECT fs_create_feature_view('wide', 'k', :'feats');
SELECT fs_create_feature_view('wide_sh', 'k', :'feats');
SELECT count(*) FROM fs_shard_feature_view('wide_sh');
SELECT setseed(0.5);
CREATE TABLE src AS SELECT g::bigint AS id, $(for i in $(seq 32); do printf 'random()::real AS f%d, ' "$i"; done) now() AS event_ts
  FROM generate_series(1, $nkeys) g;
\timing on
SELECT * FROM fs_write_query('wide', 'SELECT * FROM src');
SELECT * FROM fs_write_query('wide_sh', 'SELECT * FROM src');
\timing off
-- 1,000 requests of 1,000 distinct random keys each, in random order
CREATE TABLE req AS SELECT r AS id,
  (SELECT array_agg(k) FROM (SELECT k FROM (SELECT DISTINCT (1 + floor(random() * $nkeys))::bigint AS k
                                             FROM generate_series(1, 1100 + r * 0) g) d
                             ORDER BY random() LIMIT 1000) e) AS keys
  FROM generate_series(1, 1000) r;
VACUUM ANALYZE;
SQL
} | fs_psql "$dir" -d $db -q 2>&1 | grep -E '^Time' | sed 's/^/  load /' >&2

# agreement: both views answer every request the same
same=$(fs_psql "$dir" -d $db -qAt -c "
	SELECT count(*) FILTER (WHERE a IS DISTINCT FROM b) FROM (
	  SELECT (SELECT string_agg(f::text, ';') FROM fs_get_many(NULL::fstore_online.wide, r.keys) f) a,
	         (SELECT string_agg(f::text, ';') FROM fs_get_many(NULL::fstore_online.wide_sh, r.keys) f) b
	    FROM req r WHERE r.id <= 100) x")
echo "agreement check: $same of 100 requests differ between the sharded and the unsharded view"
[ "$same" = 0 ] || exit 1

# warm every cache: each key once through each view
fs_psql "$dir" -d $db -qAt -c "SELECT count(*) FROM req r, fs_get_many(NULL::fstore_online.wide, r.keys)" \
	-c "SELECT count(*) FROM req r, fs_get_many(NULL::fstore_online.wide_sh, r.keys)" >/dev/null

port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$dir/data/postgresql.conf" | tail -n 1)
sport=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "${sdirs[0]}/data/postgresql.conf" | tail -n 1)
# one shard's share of a request: about a third of 1,000 random keys, its own
fs_psql "${sdirs[0]}" -d postgres -qc "CREATE TABLE req AS SELECT r AS id,
	(SELECT array_agg(k) FROM (SELECT DISTINCT (1 + floor(random() * $nkeys))::bigint AS k
	                             FROM generate_series(1, 1000 + r * 0) g) d
	  WHERE EXISTS (SELECT 1 FROM fstore_online.wide_sh o WHERE o.id = d.k)) AS keys
	FROM generate_series(1, 1000) r" >/dev/null
fs_psql "${sdirs[0]}" -d postgres -qAt -c "SELECT count(*) FROM req r, fs_get_many(NULL::fstore_online.wide_sh, r.keys)" >/dev/null

out=$(mktemp -d)
chmod 777 "$out"
run() {
	local mode=$1 host=$2 p=$3 d=$4 sql=$5
	printf '\\set r random(1, 1000)\n%s\n' "$sql" >"$out/$mode.sql"
	chmod 644 "$out/$mode.sql"
	(cd "$out" && fs_as_pg "$PG_BINDIR/pgbench" -n -h "$host" -p "$p" -U postgres -M prepared -c 1 -T "$secs" \
		-l --log-prefix="$out/$mode" -f "$out/$mode.sql" "$d" >/dev/null 2>&1)
	# the per-transaction log: 3rd field is the latency in microseconds
	cat "$out/$mode".* | awk '{print $3}' | sort -n | awk -v m="$mode" '
		{ v[NR] = $1 } END {
			printf "%s %d %.3f %.3f %.3f\n", m, NR, v[int(NR * 0.50) + 1] / 1000, v[int(NR * 0.95) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000 }'
}
get='SELECT count(*) FROM fs_get_many(NULL::fstore_online.VIEW, (SELECT keys FROM req WHERE id = :r))'
pk='SELECT length(fs_get_many_packed(NULL::fstore_online.VIEW, (SELECT keys FROM req WHERE id = :r)))'
{
	run unsharded "$dir" "$port" $db "${get/VIEW/wide}"
	run sharded "$dir" "$port" $db "${get/VIEW/wide_sh}"
	run unsharded_packed "$dir" "$port" $db "${pk/VIEW/wide}"
	run sharded_packed "$dir" "$port" $db "${pk/VIEW/wide_sh}"
	run shard_direct "${sdirs[0]}" "$sport" postgres "${get/VIEW/wide_sh}"
} >"$out/table"

echo
echo "Sharding: fs_get_many of 1,000 random keys, $nkeys keys x 32 float4, 3 local shards, 1 client; ms per request"
awk '
	{ n[$1] = $2; p50[$1] = $3; p95[$1] = $4; p99[$1] = $5; order[NR] = $1 }
	END {
		printf "%-18s %8s %8s %8s %8s %14s\n", "mode", "requests", "p50", "p95", "p99", "p50 ratio"
		for (i = 1; i <= NR; i++) {
			m = order[i]; base = (m ~ /packed/) ? "unsharded_packed" : "unsharded"
			printf "%-18s %8d %8.3f %8.3f %8.3f %14s\n", m, n[m], p50[m], p95[m], p99[m],
				(m == base || m == "shard_direct") ? "-" : sprintf("%.2fx", p50[m] / p50[base])
		}
	}' "$out/table"
rm -rf "$out"
