# fs_materialize with pg_cron: a schedule that fires and records a run, a
# failing scheduled run visible in cron.job_run_details and recorded as
# failed by fstore (though the job's transaction rolled back), in
# fstore.freshness and fs_check_freshness, unscheduling; and
# a run interrupted by an immediate shutdown leaves everything as it was.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('mat');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore,pg_cron'
cron.database_name = 'postgres'
# jobs run in background workers, not over a libpq connection
cron.use_background_workers = on
max_worker_processes = 16
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_cron;
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	CREATE TABLE src (doc_id bigint, event_ts timestamptz, a int);
	CREATE INDEX ON src (event_ts);
	INSERT INTO src SELECT g, now() - interval '1 hour', g FROM generate_series(1, 1000) g;
	SELECT fs_create_feature_view('sv', 'doc', source => 'src'::regclass);
	CREATE TABLE badsrc (doc_id bigint, event_ts timestamptz, a int);
	INSERT INTO badsrc VALUES (NULL, now() - interval '1 hour', 1);
	SELECT fs_create_feature_view('bv', 'doc', source => 'badsrc'::regclass);
});

# 1. every minute: the next minute boundary runs both jobs
my $job = $node->safe_psql('postgres', q{SELECT fs_schedule_materialize('sv', '* * * * *')});
ok($job > 0, "scheduled as pg_cron job $job");
$node->safe_psql('postgres', q{SELECT fs_schedule_materialize('bv', '* * * * *')});
my $t0 = time;
my $timeout_default = $PostgreSQL::Test::Utils::timeout_default;
ok($node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM fstore.materialization_runs WHERE view_name = 'sv'}),
	'the scheduled run happened');
my $waited = time - $t0;
ok($waited < 75, sprintf('within 75 s (%.0f s)', $waited));
is($node->safe_psql('postgres', q{SELECT read || '/' || written FROM fstore.materialization_runs WHERE view_name = 'sv' ORDER BY run_id LIMIT 1}),
	'1000/1000', 'it materialized the source');
is($node->safe_psql('postgres', q{SELECT count(*) FROM fs_get_many(NULL::fstore_online.sv, ARRAY[1, 500, 1000]::bigint[]) WHERE a IS NOT NULL}),
	'3', 'lookups see the rows');
ok($node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
	   WHERE j.jobname = 'fstore_materialize_bv' AND d.status = 'failed'}),
	'the failing run shows in cron.job_run_details');
like($node->safe_psql('postgres',
	q{SELECT d.return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid)
	   WHERE j.jobname = 'fstore_materialize_bv' LIMIT 1}),
	qr/null value in key column/, 'with its error');
is($node->safe_psql('postgres', q{SELECT count(*) FROM fstore.materialization_runs WHERE view_name = 'bv' AND status <> 'failed'}),
	'0', 'a failed run records no success');
ok($node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM fstore.materialization_runs WHERE view_name = 'bv' AND status = 'failed'}),
	'the failed scheduled run is recorded, though its transaction rolled back');
like($node->safe_psql('postgres', q{SELECT sqlstate || ' ' || error || ' ' || (read IS NULL)
	FROM fstore.materialization_runs WHERE view_name = 'bv' AND status = 'failed' ORDER BY run_id LIMIT 1}),
	qr/^23502 null value in key column "doc_id" .* true$/, 'with its SQLSTATE and error');
is($node->safe_psql('postgres', q{SELECT failing FROM fstore.freshness WHERE view_name = 'bv'}),
	't', 'fstore.freshness says the view is failing');
like($node->safe_psql('postgres', q{SELECT problem || ': ' || last_error FROM fs_check_freshness() WHERE view_name = 'bv'}),
	qr/^materialization failed: 23502: null value in key column/, 'fs_check_freshness reports it');
is($node->safe_psql('postgres', q{SELECT watermark FROM fstore.freshness WHERE view_name = 'bv'}),
	'', 'nor moves the watermark');

is($node->safe_psql('postgres', q{SELECT fs_unschedule_materialize('sv') AND fs_unschedule_materialize('bv')}),
	't', 'unscheduled');
is($node->safe_psql('postgres', 'SELECT count(*) FROM cron.job'), '0', 'no job left');

# 2. an immediate shutdown in the middle of a long run
$node->safe_psql('postgres', q{
	CREATE TABLE big (doc_id bigint, event_ts timestamptz, a int, b real, c real, d text);
	INSERT INTO big SELECT g % 200000, '2026-01-01'::timestamptz + (g / 200000) * interval '1 day',
	                       g, random(), random(), md5(g::text)
	  FROM generate_series(1, 3000000) g;
	CREATE INDEX ON big (event_ts);
	SELECT fs_create_feature_view('bigv', 'doc', source => 'big'::regclass);
	SELECT fs_materialize('bigv', until => '2026-01-03');
});
my $state = q{SELECT (SELECT count(*) FROM fstore_online.bigv) || '/' || (SELECT count(*) FROM fstore_offline.bigv)
	|| '/' || (SELECT sum(a) FROM fstore_online.bigv) || '/' || (SELECT count(*) FROM fstore.materialization_runs)
	|| '/' || (SELECT watermark FROM fstore.freshness WHERE view_name = 'bigv')};
my $before = $node->safe_psql('postgres', $state);
my ($out, $err) = ('', '');
my $h = IPC::Run::start(['psql', '-X', '-d', $node->connstr('postgres'), '-c',
	q{SELECT fs_materialize('bigv', until => '2026-02-01')}], '>', \$out, '2>', \$err);
ok($node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%fs_materialize(''bigv''%'}),
	'a long run is in progress');
# another session sees it in fstore.progress, with rows done growing
ok($node->poll_query_until('postgres',
	q{SELECT kind = 'materialize' AND phase = 'reading and applying' AND rows_done >= 20000
	    AND rows_total IS NULL AND started_at <= now()
	   FROM fstore.progress WHERE view_name = 'bigv'}),
	'fstore.progress shows the run and its rows');
sleep 2;
$node->stop('immediate');
$h->finish;
$node->start;
is($node->safe_psql('postgres', $state), $before,
	'after the crash: stores, runs and watermark are as before the run');
my $r = $node->safe_psql('postgres', q{SELECT read > 0 AND written > 0 FROM fs_materialize('bigv', until => '2026-02-01')});
is($r, 't', 'the run can be done again');

$node->stop;
done_testing();
