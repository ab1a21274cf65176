# Backups in the recommended configuration: pg_cron installed in the
# feature database (cron.database_name names it), materialization
# schedules present.  The recipe of docs/operations.md ("Backups"):
#   (1) restore into a database of the same name on a new server whose
#       cron.database_name names it: definitions, data, run records and
#       schedules all come back, and the jobs' commands work;
#   (2) a copy on the same server, under another name, cannot hold
#       pg_cron: restore everything but pg_cron's objects (the list
#       filtered as the docs say); definitions and data come back, the
#       schedules stay with the original.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $conf = qq{
shared_preload_libraries = 'fstore,pg_cron'
cron.database_name = 'features'
cron.use_background_workers = on
max_worker_processes = 16
fstore.stream_workers = 0
};

my $old = PostgreSQL::Test::Cluster->new('old');
$old->init;
$old->append_conf('postgresql.conf', $conf);
$old->start;

$old->safe_psql('postgres', 'CREATE DATABASE features');
$old->safe_psql('features', q{
	CREATE EXTENSION pg_cron;
	CREATE EXTENSION fstore;
	CREATE SCHEMA raw;
	CREATE TABLE raw.daily (doc_id bigint, event_ts timestamptz, score real);
	CREATE INDEX ON raw.daily (event_ts);
	INSERT INTO raw.daily SELECT g, '2026-03-01'::timestamptz + (g % 3) * interval '1 hour', g * 0.5
	  FROM generate_series(1, 500) g;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_feature_view('doc_daily', 'doc', source => 'raw.daily'::regclass);
	SELECT fs_create_feature_view('doc_stats', 'doc', 'views int, ctr real', ttl => '30 days');
	SELECT fs_write_query('doc_stats', 'SELECT g, g % 7, g / 100.0, now() - interval ''1 hour'' FROM generate_series(1, 300) g');
	SELECT fs_alter_feature_view('doc_stats', add_features => 'label text');
	SELECT fs_create_feature_service('ranker', ARRAY['doc_stats.views', 'doc_daily.score AS s']);
	SELECT fs_materialize('doc_daily', until => '2026-03-02');
	SELECT fs_set_freshness_target('doc_daily', '1 day');
	SELECT fs_schedule_materialize('doc_daily', '0 3 * * *', lookback => '2 days');
});
# a failed run, recorded
$old->safe_psql('features', 'ALTER TABLE raw.daily RENAME TO daily_x');
my ($ret, $out, $err) = $old->psql('features', q{SELECT fs_materialize('doc_daily', until => '2026-03-03')});
like($err, qr/relation "raw.daily" does not exist/, 'a run fails');
$old->safe_psql('features', 'ALTER TABLE raw.daily_x RENAME TO daily');

my $catalogs = q{
	SELECT (SELECT string_agg(format('%s', e), ';' ORDER BY name) FROM (SELECT name, key_columns, key_types FROM fstore.entities) e)
	    || (SELECT string_agg(format('%s', v), ';' ORDER BY view_id) FROM (SELECT view_id, name, entity, source, timestamp_column, ttl, freshness_target FROM fstore.feature_views) v)
	    || (SELECT string_agg(format('%s', f), ';' ORDER BY view_name, position) FROM fstore.features f)
	    || (SELECT string_agg(format('%s', s), ';' ORDER BY service, position) FROM fstore.service_features s)
	    || (SELECT string_agg(format('%s', w), ';' ORDER BY view_id) FROM (SELECT view_id, watermark FROM fstore.view_state) w)};
my $runs = q{SELECT string_agg(concat_ws('|', run_id, view_name, since, until, read, status, sqlstate, lookback), ';' ORDER BY run_id)
	FROM fstore.materialization_runs};
my $answers = q{SELECT string_agg(format('%s', r), ';') FROM fs_get_many(NULL::fstore_online.ranker,
	(SELECT array_agg(g::bigint ORDER BY g) FROM generate_series(0, 510, 3) g)) r};
my $stats = q{SELECT string_agg(format('%s', r), ';' ORDER BY doc_id) FROM fstore_online.doc_stats r};
my $jobs = q{SELECT string_agg(concat_ws('|', jobname, schedule, command, database, username, active), ';' ORDER BY jobname)
	FROM cron.job};
my $freshness = q{SELECT string_agg(concat_ws('|', view_name, failing, last_error), ';' ORDER BY view_name) FROM fstore.freshness};

my %before;
$before{$_->[0]} = $old->safe_psql('features', $_->[1])
  for (['catalogs', $catalogs], ['runs', $runs], ['answers', $answers], ['stats', $stats],
	['jobs', $jobs], ['freshness', $freshness]);
like($before{runs}, qr/failed\|42P01/, 'the failed run is recorded');
like($before{jobs}, qr/fstore_materialize_doc_daily\|0 3 \* \* \*\|.*'2 days'::pg_catalog.interval\)\|features\|/,
	'the schedule is a pg_cron job of the feature database');
like($before{freshness}, qr/doc_daily\|t\|42P01/, 'freshness shows the failure');

my $dump = $old->basedir . '/features.dump';
$old->command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $old->connstr('features')], 'pg_dump');

# ---------------------------------------------------------------------------
# (1) a new server: createdb with the same name, pg_restore
# ---------------------------------------------------------------------------
my $new = PostgreSQL::Test::Cluster->new('new');
$new->init;
$new->append_conf('postgresql.conf', $conf);
$new->start;
$new->command_ok(['createdb', '-h', $new->host, '-p', $new->port, 'features'], 'createdb features');
$new->command_ok(['pg_restore', '--exit-on-error', '-d', $new->connstr('features'), $dump],
	'pg_restore into the database cron.database_name names');
for my $k (qw(catalogs runs answers stats jobs freshness))
{
	my $sql = { catalogs => $catalogs, runs => $runs, answers => $answers, stats => $stats,
		jobs => $jobs, freshness => $freshness }->{$k};
	is($new->safe_psql('features', $sql), $before{$k}, "$k restored");
}
# the job's command runs in the restored database (the lookback applies:
# the view's watermark is 2026-03-02, the rows are of 2026-03-01)
my $command = $new->safe_psql('features', q{SELECT command FROM cron.job WHERE jobname = 'fstore_materialize_doc_daily'});
is($new->safe_psql('features', "SELECT read || '/' || written || '/' || unchanged FROM ($command) r"), '500/0/500',
	"the restored job's command materializes, re-reading the lookback");
is($new->safe_psql('features', q{SELECT failing FROM fstore.freshness WHERE view_name = 'doc_daily'}), 'f',
	'a good run clears the failure');
# scheduling again is a no-op: the restored job is the one fstore makes
is($new->safe_psql('features', q{SELECT fs_schedule_materialize('doc_daily', '0 3 * * *', lookback => '2 days')
	= (SELECT jobid FROM cron.job WHERE jobname = 'fstore_materialize_doc_daily')}), 't',
	'the restored job is the one fs_schedule_materialize makes');
# and new definitions work
$new->safe_psql('features', q{SELECT fs_create_feature_view('newer', 'doc', 'x int');
	SELECT fs_alter_feature_view('newer', rename_to => 'newest')});
is($new->safe_psql('features', q{SELECT count(DISTINCT view_id) FROM fstore.feature_views}), '3',
	'a new view after restore');

# ---------------------------------------------------------------------------
# (2) a copy on the same server: without pg_cron
# ---------------------------------------------------------------------------
$old->safe_psql('postgres', 'CREATE DATABASE features_copy');
my ($stdout, $stderr);
IPC::Run::run(['pg_restore', '--exit-on-error', '-d', $old->connstr('features_copy'), $dump],
	'>', \$stdout, '2>', \$stderr);
like($stderr, qr/can only create extension in database features/,
	'the whole dump cannot be restored under another name on the same server');
$old->safe_psql('postgres', 'DROP DATABASE features_copy; CREATE DATABASE features_copy');
# the list of the dump without pg_cron's objects (docs/operations.md)
IPC::Run::run(['pg_restore', '-l', $dump], '>', \$stdout) or die 'pg_restore -l failed';
my $list = $old->basedir . '/no_cron.list';
open(my $fh, '>', $list) or die;
print $fh join("\n", grep { !/ pg_cron | cron / } split /\n/, $stdout), "\n";
close $fh;
$old->command_ok(['pg_restore', '--exit-on-error', '-L', $list, '-d', $old->connstr('features_copy'), $dump],
	'pg_restore without pg_cron');
for my $k (qw(catalogs runs answers stats))
{
	my $sql = { catalogs => $catalogs, runs => $runs, answers => $answers, stats => $stats }->{$k};
	is($old->safe_psql('features_copy', $sql), $before{$k}, "copy: $k restored");
}
is($old->safe_psql('features_copy', q{SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'}), '0',
	'copy: no pg_cron');
is($old->safe_psql('features', $jobs), $before{jobs}, 'the original keeps its schedules');

$new->stop;
$old->stop;
done_testing();
