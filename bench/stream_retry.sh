#!/bin/bash
# Stream retry benchmark: a batch of N events, one of which fails (a CHECK
# constraint of the history table rejects it), applied by fs_stream_apply
# in one call, against the same N events without the bad one (baseline),
# for N = 1,000 .. 16,000.  The failed batch is split in halves down to the
# bad event, so its cost must grow like the baseline's (linearly), not
# quadratically as the event-by-event retry of 0.1 did.
# usage: stream_retry.sh CLUSTER_DIR [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$1
rounds=${2:-3}
db=bench_retry
export PGOPTIONS="-c client_min_messages=warning"
q() { fs_psql "$dir" -d $db -qAt "$@"; }

fs_psql "$dir" -d postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
# the benchmark drains the queue itself
fs_psql "$dir" -d postgres -qc "ALTER SYSTEM SET fstore.stream_workers = 0" -c "SELECT pg_reload_conf()" >/dev/null
q >/dev/null <<'SQL'
CREATE EXTENSION fstore;
SELECT fs_create_entity('doc', 'doc_id bigint');
SELECT fs_create_feature_view('ev', 'doc', 'a int, b real');
ALTER TABLE fstore_offline.ev ADD CONSTRAINT a_positive CHECK (a > 0);
SQL

# milliseconds to drain N events (bad: whether one of them fails)
run() {
	local n=$1 bad=$2
	q -c "TRUNCATE fstore_online.ev, fstore_offline.ev, fstore.dead_letters" >/dev/null
	q -c "INSERT INTO fstore_stream.ev SELECT g % 1000, CASE WHEN $bad AND g = $n / 3 THEN -1 ELSE g END,
	        g * 0.5, '2026-01-01'::timestamptz + g * interval '1 ms' FROM generate_series(1, $n) g" >/dev/null
	q -c "VACUUM ANALYZE fstore_stream.ev" >/dev/null
	q <<SQL
SELECT round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1)
  FROM (SELECT clock_timestamp() AS t0) s,
       LATERAL (SELECT * FROM fs_stream_apply('ev', NULL) WHERE applied = $n - CASE WHEN $bad THEN 1 ELSE 0 END
                AND dead_letters = CASE WHEN $bad THEN 1 ELSE 0 END) r;
SQL
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '\nStream retry: one failing event in a batch of N (fs_stream_apply, median of %d)\n' "$rounds"
printf '%8s | %12s | %14s | %7s | %16s\n' N "all good ms" "one bad ms" ratio "one bad us/event"
for n in 1000 2000 4000 8000 16000; do
	good=$(for r in $(seq "$rounds"); do run "$n" false; done | median)
	bad=$(for r in $(seq "$rounds"); do run "$n" true; done | median)
	if [ -z "$good" ] || [ -z "$bad" ]; then echo "a run did not apply what it should" >&2; exit 1; fi
	awk -v n="$n" -v g="$good" -v b="$bad" 'BEGIN { printf "%8d | %12.1f | %14.1f | %6.2fx | %16.2f\n", n, g, b, b / g, b * 1000 / n }'
done
fs_psql "$dir" -d postgres -qc "ALTER SYSTEM RESET fstore.stream_workers" -c "SELECT pg_reload_conf()" >/dev/null
