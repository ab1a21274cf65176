#!/bin/bash
# Python client benchmark: 1,000 keys per request into a float32 matrix
# with fstore_client.get_many_matrix (fs_get_many_packed decoded by numpy),
# against psycopg2 fetching fs_get_many's typed rows into numpy and
# psycopg2 fetching the online table's rows, in the same run
# (bench/python_client.py).  100,000 keys x 32 float4 features, warm.
# Runs with every key present and with 5% missing.
# usage: python_client.sh CLUSTER_DIR   (FS_BENCH_SECONDS per mode, default 5;
#        with FS_BENCH_OUT, writes the figures to $FS_BENCH_OUT/python_client.csv)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$1
db=bench_python
export PGOPTIONS="-c client_min_messages=warning"

fs_psql "$dir" -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
echo "loading 100,000 keys x 32 features..." >&2
fs_psql "$dir" -d $db -q >/dev/null <<'SQL'
CREATE EXTENSION fstore;
SELECT setseed(0.5);
SELECT fs_create_entity('k', 'id bigint');
SELECT string_agg(format('f%s real', i), ', ') AS feats FROM generate_series(1, 32) i \gset
SELECT fs_create_feature_view('wide', 'k', :'feats');
SELECT string_agg('random()::real', ', ') AS vals FROM generate_series(1, 32) i \gset
SELECT * FROM fs_write_query('wide', format('SELECT g, %s, now() FROM generate_series(1, 100000) g', :'vals'));
VACUUM ANALYZE;
-- warm the cache: every key once
SELECT sum((SELECT count(*) FROM fs_get_many(NULL::fstore_online.wide,
    (SELECT array_agg(g::bigint) FROM generate_series(s, s + 9999) g)))) FROM generate_series(1, 100000, 10000) s;
SQL
port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$dir/data/postgresql.conf" | tail -n 1)
dsn="host=$dir port=$port user=postgres dbname=$db"
py=${FS_PYTHON:-/usr/bin/python3}
csv=()
if [ -n "${FS_BENCH_OUT:-}" ]; then
	echo "bench,mode,keys,missing,p50_ms,p95_ms,p99_ms" >"$FS_BENCH_OUT/python_client.csv"
	csv=(--csv "$FS_BENCH_OUT/python_client.csv")
fi
for missing in 0 0.05; do
	"$py" bench/python_client.py "$dsn" wide 100000 --keys 1000 --missing $missing \
		--seconds "${FS_BENCH_SECONDS:-5}" "${csv[@]}"
	echo
done
