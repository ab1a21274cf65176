# contrib/prometheus/queries.yaml with the packaged exporter
# (prometheus-postgres-exporter): after known writes, lookups, stream
# events, dead letters and a materialization, /metrics shows each view's
# counters, hit ratio, queue depth, dead letters, freshness and last run
# with the values fstore's own views give, and no query of the file fails.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use HTTP::Tiny;
use FindBin;
use Time::HiRes qw(usleep);

my $exporter = $ENV{FS_PROMETHEUS_EXPORTER} // '/usr/bin/prometheus-postgres-exporter';
-x $exporter
  or BAIL_OUT("$exporter not found: install prometheus-postgres-exporter (scripts/setup.sh does)");
my $queries = "$FindBin::RealBin/../../contrib/prometheus/queries.yaml";
-f $queries or BAIL_OUT("$queries not found");

my $node = PostgreSQL::Test::Cluster->new('prometheus');
$node->init;
# no stream workers: queued events stay until fs_stream_apply takes them
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore'
fstore.stream_workers = 0
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE features');
$node->safe_psql('features', q{
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_feature_view('st', 'doc', 'n int');
	SELECT fs_create_feature_view('sv', 'doc', 'n int');
	CREATE SCHEMA raw;
	CREATE TABLE raw.src (doc_id bigint, n int, event_ts timestamptz);
	INSERT INTO raw.src VALUES (1, 1, now() - interval '1 hour'), (2, 2, now() - interval '1 hour'),
	                           (3, 3, now() - interval '30 minutes');
	SELECT fs_create_feature_view('mv', 'doc', source => 'raw.src'::regclass);
	SELECT fs_reset_stats();
	-- written 3; then unchanged 2, written 1, late 1
	SELECT fs_write('st', ARRAY[ROW(1, 10, '2026-01-01'), ROW(2, 20, '2026-01-01'),
	                            ROW(3, 30, '2026-01-01')]::fstore_online.st[]);
	SELECT fs_write('st', ARRAY[ROW(1, 10, '2026-01-02'), ROW(2, 20, '2026-01-02'),
	                            ROW(3, 31, '2026-01-02'), ROW(1, 99, '2025-06-01')]::fstore_online.st[]);
	SELECT count(*) FROM fs_get_many(NULL::fstore_online.st, ARRAY[1, 2, 3, 4, 5]::bigint[]);
	SELECT count(*) FROM fs_get_many(NULL::fstore_online.st, ARRAY[1, 2, 3, 4, 5]::bigint[]);
	SELECT count(*) FROM fs_get_many(NULL::fstore_online.st, ARRAY[2]::bigint[]);
	SELECT fs_set_freshness_target('st', interval '1 hour');
	SELECT fs_set_freshness_target('sv', interval '1 day');
	INSERT INTO fstore_stream.sv VALUES (1, 1, now()), (NULL, 2, now()), (3, 3, now() - interval '5 minutes');
	SELECT * FROM fs_materialize('mv');
});
is($node->safe_psql('features',
		q{SELECT lookups, keys_requested, rows_written, rows_unchanged, rows_late, queue_depth
		    FROM fstore.stats WHERE view_name = 'st'}),
	'3|11|4|2|1|0', 'fstore.stats after the known writes and reads');

# the exporter, on a free port, against the database with fstore
my $http_port = PostgreSQL::Test::Cluster::get_free_port();
my $log = $node->basedir . '/exporter.log';
local $ENV{DATA_SOURCE_NAME} = sprintf('host=%s port=%d user=%s dbname=features sslmode=disable',
	$node->host, $node->port, scalar getpwuid($<));
my $h = IPC::Run::start(
	[ $exporter, "--web.listen-address=127.0.0.1:$http_port",
	  "--extend.query-path=$queries", '--disable-settings-metrics', '--log.level=warn' ],
	'<', \undef, '>', $log, '2>', $log);

# no proxy for a local scrape
delete @ENV{qw(http_proxy HTTP_PROXY all_proxy ALL_PROXY)};
my $http = HTTP::Tiny->new(timeout => 30);

# name{labels} value lines of one scrape: {"name"}{"view_name=x,..."} = value
sub scrape
{
	my ($res, %m);
	for my $try (1 .. 300)
	{
		$res = $http->get("http://127.0.0.1:$http_port/metrics");
		last if $res->{success};
		usleep(100_000);
	}
	die "exporter did not answer: $res->{status} $res->{content}\n" . slurp_file($log)
	  unless $res->{success};
	for my $line (split /\n/, $res->{content})
	{
		next if $line =~ /^#/;
		next unless $line =~ /^(\w+)(?:\{(.*)\})?\s+(\S+)$/;
		my ($name, $labels, $value) = ($1, $2 // '', $3);
		my %l = $labels =~ /(\w+)="((?:[^"\\]|\\.)*)"/g;
		delete $l{server};
		my $key = join(',', map { "$_=$l{$_}" } sort keys %l);
		$m{$name}{$key} = $value;
	}
	return \%m;
}

sub metric
{
	my ($m, $name, $view) = @_;
	my $key = defined $view ? "view_name=$view" : '';
	return $m->{$name}{$key};
}

# a metric equals a number (or the answer of a SQL query)
sub metric_is
{
	my ($m, $name, $view, $expected, $what) = @_;
	my $got = metric($m, $name, $view);
	ok(defined $got && $got eq 'NaN' ? $expected eq 'NaN' : (defined $got && abs($got - $expected) <= 1e-9 * abs($expected)),
		"$name" . (defined $view ? "{$view}" : '') . " = $expected" . ($what ? " ($what)" : ''))
	  or diag('got ' . ($got // 'nothing'));
}

sub metric_near
{
	my ($m, $name, $view, $expected, $slack) = @_;
	my $got = metric($m, $name, $view);
	ok(defined $got && $got ne 'NaN' && abs($got - $expected) <= $slack,
		"$name\{$view} within $slack of $expected") or diag('got ' . ($got // 'nothing'));
}

my $m = scrape();
is(metric($m, 'pg_up'), '1', 'the exporter reaches the server');

# counters of st
metric_is($m, 'fstore_view_lookups', 'st', 3);
metric_is($m, 'fstore_view_keys_requested', 'st', 11);
metric_is($m, 'fstore_view_rows_written', 'st', 4);
metric_is($m, 'fstore_view_rows_unchanged', 'st', 2);
metric_is($m, 'fstore_view_rows_late', 'st', 1);
my ($hits, $misses, $ratio) = split /\|/, $node->safe_psql('features',
	q{SELECT cache_hits, cache_misses, cache_hits::float8 / (cache_hits + cache_misses)
	    FROM fstore.stats WHERE view_name = 'st'});
ok($hits > 0 && $hits + $misses == 11, "the cache answered some keys ($hits hits, $misses misses)");
metric_is($m, 'fstore_view_cache_hits', 'st', $hits);
metric_is($m, 'fstore_view_cache_misses', 'st', $misses);
metric_near($m, 'fstore_view_hit_ratio', 'st', $ratio, 1e-9);
# a view nobody read: counters 0, ratio undefined
metric_is($m, 'fstore_view_lookups', 'sv', 0);
metric_is($m, 'fstore_view_hit_ratio', 'sv', 'NaN', 'no lookup yet');

# the queue
metric_is($m, 'fstore_view_queue_depth', 'sv', 3, 'three events wait');
metric_is($m, 'fstore_view_queue_depth', 'st', 0);
metric_near($m, 'fstore_freshness_queue_lag_seconds', 'sv', 300, 120);
metric_is($m, 'fstore_stream_workers', undef, 0);
metric_is($m, 'fstore_stream_preloaded', undef, 1);

# freshness: st's newest event is 2026-01-02, its target 1 hour
my $lag = $node->safe_psql('features',
	q{SELECT extract(epoch FROM now() - timestamptz '2026-01-02')});
metric_near($m, 'fstore_freshness_lag_seconds', 'st', $lag, 60);
metric_is($m, 'fstore_freshness_target_seconds', 'st', 3600);
metric_is($m, 'fstore_freshness_stale', 'st', 1, 'older than its target');
metric_is($m, 'fstore_freshness_stale', 'mv', 0, 'no target');
metric_is($m, 'fstore_freshness_last_event_timestamp_seconds', 'st',
	$node->safe_psql('features', q{SELECT extract(epoch FROM timestamptz '2026-01-02')}));

# the materialization of mv
metric_is($m, 'fstore_materialization_runs_recorded', 'mv', 1);
metric_is($m, 'fstore_materialization_last_rows_read', 'mv', 3);
metric_is($m, 'fstore_materialization_last_rows_written', 'mv', 3);
metric_is($m, 'fstore_materialization_last_failed', 'mv', 0);
metric_near($m, 'fstore_materialization_last_age_seconds', 'mv', 0, 120);
metric_is($m, 'fstore_materialization_runs_recorded', 'st', 0, 'never materialized');

# the cache as a whole
my ($size, $entries) = split /\|/, $node->safe_psql('features',
	'SELECT size_bytes, entries FROM fstore.cache_stats');
ok($size > 0, 'the cache is on');
metric_is($m, 'fstore_cache_size_bytes', undef, $size);
metric_is($m, 'fstore_cache_entries', undef, $entries);

# apply the queue: the NULL key goes to the dead letters
is($node->safe_psql('features', q{SELECT applied, dead_letters FROM fs_stream_apply('sv')}),
	'2|1', 'the queue applied in this session');
$m = scrape();
metric_is($m, 'fstore_view_queue_depth', 'sv', 0, 'the queue is empty');
metric_is($m, 'fstore_view_stream_applied', 'sv', 2);
metric_is($m, 'fstore_view_dead_letters', 'sv', 1);
metric_is($m, 'fstore_dead_letters_rows', 'sv', 1);
metric_near($m, 'fstore_dead_letters_oldest_age_seconds', 'sv', 0, 120);
metric_is($m, 'fstore_dead_letters_rows', 'st', 0);
metric_is($m, 'fstore_freshness_stale', 'sv', 0, 'fresh events, target 1 day');
metric_near($m, 'fstore_freshness_lag_seconds', 'sv', 0, 120);
metric_is($m, 'fstore_freshness_queue_lag_seconds', 'sv', 'NaN', 'empty queue');

# lookups after the first scrape move the counters
$node->safe_psql('features',
	q{SELECT count(*) FROM fs_get_many(NULL::fstore_online.sv, ARRAY[1, 3, 7]::bigint[])});
$m = scrape();
metric_is($m, 'fstore_view_lookups', 'sv', 1);
metric_is($m, 'fstore_view_keys_requested', 'sv', 3);

# every namespace of the file answered, none failed
for my $ns (qw(fstore_view fstore_freshness fstore_materialization fstore_dead_letters
	fstore_cache fstore_stream))
{
	ok((grep { /^\Q$ns\E_/ } keys %$m), "metrics of $ns");
}
is(metric($m, 'pg_exporter_last_scrape_error'), '0', 'the last scrape had no error');
my $exporter_log = slurp_file($log);
unlike($exporter_log, qr/level=error/, 'the exporter logged no error');

$h->kill_kill;
$node->stop;
done_testing();
