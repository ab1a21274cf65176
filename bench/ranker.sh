#!/bin/bash
# Ranker benchmark: one request of 1 user x 1,000 candidate documents, with
# a user view (16 features), a document view (32), a user x document view
# (8) and 2 derived features, warm cache; p50/p95/p99 per request of
#   one_call     fs_get_many over one service of the three entities, with
#                its 2 derived features (one call, each distinct key read once)
#   three_calls  fs_get_many of the user, the documents and the pairs, three
#                statements in one transaction (the derived features left to
#                the client: not computed)
#   sql_join     one SQL query joining the three online tables (LEFT JOINs on
#                the candidates, the derived features inline, no ttl)
#   one_packed / three_packed
#                the same one call and three calls with fs_get_many_packed,
#                returning only the answer's length: the server's work
#                without the text output of 1,000 rows (which the rows
#                modes pay: the user's features repeated in each row of
#                one_call, once in three_calls)
# Every mode reads the same precomputed requests (1,000 of them, picked at
# random per transaction) and must return the same values: a checksum per
# mode over fixed requests is printed first.  pgbench, prepared statements,
# one client; the modes take turns, FS_BENCH_ROUNDS rounds (default 5) of
# FS_BENCH_SECONDS each (default 4); latencies from pgbench's
# per-transaction log.  FS_BENCH_REUSE=1 keeps a database loaded before.
# usage: ranker.sh CLUSTER_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$1
db=bench_ranker
secs=${FS_BENCH_SECONDS:-4}
rounds=${FS_BENCH_ROUNDS:-5}
modes=${FS_BENCH_MODES:-one_call three_calls sql_join one_packed three_packed}
export PGOPTIONS="-c client_min_messages=warning"
port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$dir/data/postgresql.conf" | tail -n 1)

if [ "${FS_BENCH_REUSE:-0}" = 1 ] && fs_psql "$dir" -d $db -qAt -c "SELECT 1 FROM reqs LIMIT 1" >/dev/null 2>&1; then
	echo "reusing database $db" >&2
else
fs_psql "$dir" -d postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
echo "loading 10,000 users x 16, 100,000 documents x 32, 500,000 user x document pairs x 8..." >&2
fs_psql "$dir" -d $db -q >/dev/null <<'SQL'
CREATE EXTENSION fstore;
CREATE EXTENSION pg_prewarm;
SELECT setseed(0.25);
SELECT fs_create_entity('b_user', 'user_id bigint');
SELECT fs_create_entity('b_doc', 'doc_id bigint');
SELECT fs_create_entity('b_user_doc', 'user_id bigint, doc_id bigint');
SELECT string_agg(format('u%s real', i), ', ') || ', last_open_ts timestamptz' AS f FROM generate_series(1, 15) i \gset
SELECT fs_create_feature_view('b_u', 'b_user', :'f');
SELECT string_agg(format('d%s real', i), ', ') AS f FROM generate_series(1, 32) i \gset
SELECT fs_create_feature_view('b_d', 'b_doc', :'f');
SELECT string_agg(format('x%s real', i), ', ') AS f FROM generate_series(1, 8) i \gset
SELECT fs_create_feature_view('b_ud', 'b_user_doc', :'f');

SELECT string_agg('random()::real', ', ') AS v FROM generate_series(1, 15) \gset
SELECT * FROM fs_write_query('b_u', format($q$SELECT g::bigint, %s, now() - random() * interval '1 day', now() FROM generate_series(1, 10000) g$q$, :'v'));
SELECT string_agg('random()::real', ', ') AS v FROM generate_series(1, 32) \gset
SELECT * FROM fs_write_query('b_d', format('SELECT g::bigint, %s, now() FROM generate_series(1, 100000) g', :'v'));

-- 1,000 requests: a user and 1,000 distinct candidate documents
SELECT fs_create_feature_service('ranker', ARRAY['b_u.*', 'b_d.*', 'b_ud.*'],
    derived => ARRAY['extract(epoch from now() - last_open_ts)::real AS secs_since_open',
                     'd1 / nullif(u1, 0) AS d1_per_u1']);
CREATE TABLE reqs (id int PRIMARY KEY, user_id bigint, docs bigint[],
                   pairs fstore.b_user_doc_key[], requests fstore.ranker_request[]);
INSERT INTO reqs (id, user_id, docs)
SELECT r, 1 + (random() * 9999)::bigint,
       (SELECT array_agg(d) FROM (SELECT DISTINCT 1 + (random() * 99999 + r * 0)::bigint AS d
                                    FROM generate_series(1, 1100) LIMIT 1000) x)
  FROM generate_series(1, 1000) r;
UPDATE reqs SET pairs = (SELECT array_agg(ROW(user_id, d)::fstore.b_user_doc_key ORDER BY o) FROM unnest(docs) WITH ORDINALITY AS u(d, o)),
                requests = (SELECT array_agg(ROW(user_id, d)::fstore.ranker_request ORDER BY o) FROM unnest(docs) WITH ORDINALITY AS u(d, o));
-- half of the candidate pairs have user x document features
SELECT string_agg('random()::real', ', ') AS v FROM generate_series(1, 8) \gset
SELECT * FROM fs_write_query('b_ud', format('SELECT DISTINCT ON (r.user_id, d) r.user_id, d, %s, now() FROM public.reqs r, unnest(r.docs) d WHERE random() < 0.5', :'v'));
-- three services for the three-call way
SELECT fs_create_feature_service('svc_u', ARRAY['b_u.*']);
SELECT fs_create_feature_service('svc_d', ARRAY['b_d.*']);
SELECT fs_create_feature_service('svc_ud', ARRAY['b_ud.*']);
VACUUM ANALYZE;
SQL
fi
fs_psql "$dir" -d $db -qAt -c "SELECT pg_prewarm(c.oid) FROM pg_class c WHERE c.relnamespace = 'fstore_online'::regnamespace AND c.relkind IN ('r', 'i')" >/dev/null

cols_u=$(fs_psql "$dir" -d $db -qAt -c "SELECT string_agg(format('u.%I', a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = 'fstore_online.b_u'::regclass AND a.attnum > 1 AND a.attname <> 'event_ts' AND NOT a.attisdropped")
cols_d=$(fs_psql "$dir" -d $db -qAt -c "SELECT string_agg(format('d.%I', a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = 'fstore_online.b_d'::regclass AND a.attnum > 1 AND a.attname <> 'event_ts' AND NOT a.attisdropped")
cols_x=$(fs_psql "$dir" -d $db -qAt -c "SELECT string_agg(format('x.%I', a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = 'fstore_online.b_ud'::regclass AND a.attnum > 2 AND a.attname <> 'event_ts' AND NOT a.attisdropped")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# the statements of each mode, for request :r
one_call="SELECT * FROM fs_get_many(NULL::fstore_online.ranker, (SELECT requests FROM reqs WHERE id = :r))"
one_packed="SELECT length(fs_get_many_packed(NULL::fstore_online.ranker, (SELECT requests FROM reqs WHERE id = :r)))"
three_packed="SELECT length(fs_get_many_packed(NULL::fstore_online.svc_u, ARRAY[(SELECT user_id FROM reqs WHERE id = :r)]));
SELECT length(fs_get_many_packed(NULL::fstore_online.svc_d, (SELECT docs FROM reqs WHERE id = :r)));
SELECT length(fs_get_many_packed(NULL::fstore_online.svc_ud, (SELECT pairs FROM reqs WHERE id = :r)));"
three_calls="SELECT * FROM fs_get_many(NULL::fstore_online.svc_u, ARRAY[(SELECT user_id FROM reqs WHERE id = :r)]);
SELECT * FROM fs_get_many(NULL::fstore_online.svc_d, (SELECT docs FROM reqs WHERE id = :r));
SELECT * FROM fs_get_many(NULL::fstore_online.svc_ud, (SELECT pairs FROM reqs WHERE id = :r));"
sql_join="SELECT q.user_id, c.doc_id, $cols_u, $cols_d, $cols_x,
       extract(epoch from now() - u.last_open_ts)::real AS secs_since_open, d.d1 / nullif(u.u1, 0) AS d1_per_u1
  FROM reqs q CROSS JOIN LATERAL unnest(q.docs) WITH ORDINALITY AS c(doc_id, ord)
  LEFT JOIN fstore_online.b_u u ON u.user_id = q.user_id
  LEFT JOIN fstore_online.b_d d ON d.doc_id = c.doc_id
  LEFT JOIN fstore_online.b_ud x ON x.user_id = q.user_id AND x.doc_id = c.doc_id
 WHERE q.id = :r ORDER BY c.ord"

# agreement: every mode returns the same values for requests 1..20 (the
# three-call way has no derived features: compared without them)
# both in one statement: one transaction, one now()
agree() {
	local sum="SELECT md5(string_agg(s, '|' ORDER BY r, n)) FROM generate_series(1, 20) r,
	    LATERAL (SELECT t::text AS s, row_number() OVER () AS n FROM"
	fs_psql "$dir" -d $db -qAt -c "SELECT CASE WHEN ($sum ($1) t) z) = ($sum ($2) t) z) THEN 'same' ELSE 'DIFFERENT' END"
}
echo "agreement check (requests 1..20):"
echo "  one_call vs sql_join, every column: $(agree "${one_call//id = :r/id = r}" "${sql_join//id = :r/id = r}")"
echo "  one_call vs three_calls, the features: $(agree \
	"SELECT user_id, doc_id, ROW(${cols_u//u./t.}), ROW(${cols_d//d./t.}), ROW(${cols_x//x./t.})
	   FROM fs_get_many(NULL::fstore_online.ranker, (SELECT requests FROM reqs WHERE id = r)) t" \
	"SELECT q.user_id, c.doc_id, ROW(${cols_u//u./su.}), ROW(${cols_d//d./sd.}), ROW(${cols_x//x./sx.})
	   FROM reqs q CROSS JOIN LATERAL unnest(q.docs) WITH ORDINALITY AS c(doc_id, ord)
	  CROSS JOIN LATERAL (SELECT * FROM fs_get_many(NULL::fstore_online.svc_u, ARRAY[q.user_id])) su
	   JOIN LATERAL (SELECT * FROM fs_get_many(NULL::fstore_online.svc_d, q.docs) WITH ORDINALITY) sd ON sd.ordinality = c.ord
	   JOIN LATERAL (SELECT * FROM fs_get_many(NULL::fstore_online.svc_ud, q.pairs) WITH ORDINALITY) sx ON sx.ordinality = c.ord
	  WHERE q.id = r ORDER BY c.ord")"
echo

out="$work/results"
: >"$out"
for m in $modes; do
	stmt=${!m}
	case $stmt in *";") ;; *) stmt="$stmt;" ;; esac
	printf '\\set r random(1, 1000)\n%s\n' "$stmt" >"$work/$m.sql"
	# warm up: the cache fills, plans are made
	"$PG_BINDIR/pgbench" -n -M prepared -h "$dir" -p "$port" -U postgres -f "$work/$m.sql" -T 2 $db >/dev/null 2>&1
done
# the modes take turns, so that the machine's noise falls on all of them
for round in $(seq "$rounds"); do
	for m in $modes; do
		(cd "$work" && "$PG_BINDIR/pgbench" -n -M prepared -h "$dir" -p "$port" -U postgres -f "$work/$m.sql" \
			-T "$secs" -l --log-prefix="$m.$round" $db >/dev/null 2>&1)
	done
done
for m in $modes; do
	cat "$work/$m".*.* | awk '{print $3}' | sort -n | awk -v m="$m" '
		{ v[NR] = $1 }
		END { printf "%s %d %.2f %.2f %.2f\n", m, NR, v[int(NR * 0.50) + 1] / 1000, v[int(NR * 0.95) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000 }' >>"$out"
done

echo "Ranker request: 1 user x 1,000 documents, views of 16 + 32 + 8 features, 2 derived; warm; pgbench prepared, 1 client, $rounds x ${secs}s per mode in turns; ms per request"
awk '
{ mode[NR] = $1; n[NR] = $2; p50[NR] = $3; p95[NR] = $4; p99[NR] = $5; if ($1 == "one_call") base = NR }
END {
	printf "| mode | requests | p50 | p95 | p99 | p50 / one_call | p99 / one_call |\n|---|---|---|---|---|---|---|\n"
	for (i = 1; i <= NR; i++)
		printf "| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", mode[i], n[i], p50[i], p95[i], p99[i],
			base ? p50[i] / p50[base] : 0, base ? p99[i] / p99[base] : 0
}' "$out"
