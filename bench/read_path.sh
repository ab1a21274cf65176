#!/bin/bash
# Read-path benchmark: fs_get_many against plain SQL, same keys distribution,
# same run.  usage: read_path.sh CLUSTER_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$1
db=bench_read
requests=${FS_BENCH_REQUESTS:-2000}
fs_psql "$dir" -d postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
echo "loading 1,000,000 keys x 32 features..." >&2
fs_psql "$dir" -d $db -q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION fstore;
SELECT setseed(0.5);
SELECT fs_create_entity('k', 'id bigint');
SELECT string_agg(format('f%s real', i), ', ') AS feats FROM generate_series(1, 32) i \gset
SELECT fs_create_feature_view('wide', 'k', :'feats');
SELECT string_agg('random()::real', ', ') AS vals FROM generate_series(1, 32) i \gset
SELECT * FROM fs_write_query('wide', format('SELECT g, %s, now() FROM generate_series(1, 1000000) g', :'vals'));
VACUUM ANALYZE fstore_online.wide;
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
SELECT pg_prewarm('fstore_online.wide'), pg_prewarm('fstore_online.wide_pkey');
SQL
conn="$FS_BENCH_CONNINFO dbname=$db"
echo
echo "Read path without cache: 1,000 random keys of 1,000,000 per request, 32 float4 features, libpq binary, prepared ($requests requests, 1 client)"
printf '%s\n' "mode     | what"
printf '%s\n' "sql      | SELECT * FROM fstore_online.wide WHERE id = ANY(\$1)"
printf '%s\n' "fs       | SELECT * FROM fs_get_many(NULL::fstore_online.wide, \$1)"
out_sql=$(bench/bin/lookup_bench -d "$conn" -m sql -k 1000 -n "$requests" -w 200)
out_fs=$(bench/bin/lookup_bench -d "$conn" -m fs -k 1000 -n "$requests" -w 200)
echo "$out_sql"
echo "$out_fs"
p() { echo "$1" | sed -n "s/.* $2=\([0-9.]*\).*/\1/p"; }
awk -v a="$(p "$out_sql" p50)" -v b="$(p "$out_fs" p50)" -v c="$(p "$out_sql" p99)" -v d="$(p "$out_fs" p99)" \
	'BEGIN { printf "sql/fs: p50 %.2fx, p99 %.2fx (above 1 means fs_get_many is faster)\n", a / b, c / d }'
