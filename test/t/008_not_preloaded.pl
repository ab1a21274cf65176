# Without shared_preload_libraries: loading fstore in a backend works (no
# postmaster settings defined late), every catalog and SQL path works from
# the tables, and what needs shared memory says so.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('plain');
$node->init;
$node->start;

my ($ret, $out, $err) = $node->psql('postgres', q{
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_feature_view('v', 'doc', 'a int, b text', ttl => interval '100 years');
	SELECT written FROM fs_write('v', ARRAY[ROW(1, 10, 'x', now()), ROW(2, 20, 'y', now())]::fstore_online.v[]);
});
is($ret, 0, 'CREATE EXTENSION and the catalog functions work without preloading') or diag($err);
is($node->safe_psql('postgres', q{SELECT string_agg(doc_id || ':' || coalesce(a::text, '-'), ',')
	FROM fs_get_many(NULL::fstore_online.v, ARRAY[2, 3, 1]::bigint[])}),
	'2:20,3:-,1:10', 'fs_get_many reads the table');
ok($node->safe_psql('postgres', q{SELECT length(fs_get_many_packed(NULL::fstore_online.v, ARRAY[1, 2]::bigint[])) > 0}) eq 't',
	'fs_get_many_packed too');
($ret, $out, $err) = $node->psql('postgres', q{INSERT INTO fstore_stream.v VALUES (3, 30, 'z', now())});
like($err, qr/stream workers are not running/, 'a producer is told that no worker runs');
is($node->safe_psql('postgres', q{SELECT stream_workers || ' ' || queue_depth || ' ' || queue_stalled FROM fstore.freshness}),
	'0 1 true', 'fstore.freshness shows the queue as stalled');
is($node->safe_psql('postgres', q{SELECT problem FROM fs_check_freshness()}), 'queue stalled',
	'fs_check_freshness reports it');
is($node->safe_psql('postgres', q{SELECT applied FROM fs_stream_apply('v')}), '1',
	'fs_stream_apply applies the events in the session');
is($node->safe_psql('postgres', q{SELECT lookups FROM fstore.stats}), '',
	'statistics are off (NULL)');
is($node->safe_psql('postgres', q{SELECT fs_create_training_set('ts', 'SELECT 1::bigint AS doc_id, now() AS event_ts', ARRAY['v.a'])}),
	'1', 'training sets work');
is($node->safe_psql('postgres', q{SELECT a FROM fstore_training.ts}), '10', 'with the value');

# progress reports need shared memory: the view is empty, even for the
# session's own run
$node->safe_psql('postgres', q{
	CREATE TABLE src (doc_id bigint, event_ts timestamptz, a int, seen bigint);
	INSERT INTO src VALUES (1, '2026-01-01', 5, 0);
	SELECT fs_create_feature_view('m', 'doc', source_query =>
	    'SELECT s.doc_id, s.event_ts, s.a, (SELECT count(*) FROM fstore.progress) AS seen FROM public.src s');
});
is($node->safe_psql('postgres', q{SELECT read FROM fs_materialize('m', until => '2026-01-02')}), '1',
	'fs_materialize works');
is($node->safe_psql('postgres', q{SELECT seen FROM fstore_online.m}), '0', 'fstore.progress is empty');
# a failed run is recorded (the recorder is a dynamic background worker)
$node->safe_psql('postgres', q{ALTER TABLE src RENAME TO src_gone});
($ret, $out, $err) = $node->psql('postgres', q{SELECT fs_materialize('m', until => '2026-01-03')});
like($err, qr/relation "public.src" does not exist/, 'a run fails');
is($node->safe_psql('postgres', q{SELECT status || ' ' || sqlstate FROM fstore.materialization_runs WHERE view_name = 'm' ORDER BY run_id DESC LIMIT 1}),
	'failed 42P01', 'and is recorded without preloading');
is($node->safe_psql('postgres', q{SELECT failing FROM fstore.freshness WHERE view_name = 'm'}), 't',
	'fstore.freshness shows it');
$node->stop;
done_testing();
