# Aggregation views: every committed event counted exactly once in the
# tiles, by the stream workers, across an immediate shutdown in the middle
# of producing and applying; and the windows read by fs_get_many agree with
# the ledger of what was committed.  Then pg_dump / pg_restore.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('aggregations');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore'
fstore.stream_workers = 1
fstore.stream_batch_size = 2000
max_worker_processes = 16
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_aggregation_view('ev', 'doc', 'v bigint',
	    ARRAY['count(*) OVER 1 day AS n_1d', 'sum(v) OVER 1 day AS v_1d', 'max(v) OVER 1 hour AS v_max']);
	-- each producer transaction records the events it committed
	CREATE TABLE ledger (batch bigint PRIMARY KEY, events int, vsum numeric);
	CREATE SEQUENCE batch_seq;
});

# 1,000 events per transaction: event e = b * 1000 + g, key e % 100 + 1,
# value e, time now() (events of one transaction share a tile or two)
my $script = $node->basedir . '/produce.sql';
open my $fh, '>', $script or die;
print $fh q{SELECT nextval('batch_seq') AS b \gset
BEGIN;
INSERT INTO fstore_stream.ev SELECT (:b * 1000 + g) % 100 + 1, :b * 1000 + g, now() FROM generate_series(0, 999) g;
INSERT INTO ledger SELECT :b, 1000, sum(:b * 1000 + g) FROM generate_series(0, 999) g;
COMMIT;
};
close $fh;

sub produce
{
	my ($clients, $tx) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', '-f', $script, '-c', $clients, '-t', $tx, '-d', $node->connstr('postgres') ],
		'>', \$out, '2>', \$err);
	return ($h, \$err);
}

sub check_exactly_once
{
	my ($label) = @_;
	ok($node->poll_query_until('postgres', 'SELECT NOT EXISTS (SELECT 1 FROM fstore_stream.ev)'),
		"$label: queue drained");
	my $ledger = $node->safe_psql('postgres',
		'SELECT coalesce(sum(events), 0) || \'|\' || coalesce(sum(vsum), 0) FROM ledger');
	my $tiles = $node->safe_psql('postgres',
		'SELECT coalesce(sum(fs_n), 0) || \'|\' || coalesce(sum(fs_1), 0) FROM fstore_offline.ev');
	is($tiles, $ledger, "$label: the tiles count every committed event once (count|sum: $ledger)");
	my $read = $node->safe_psql('postgres', q{
		SELECT coalesce(sum(n_1d), 0) || '|' || coalesce(sum(v_1d), 0)
		  FROM fs_get_many(NULL::fstore_online.ev, ARRAY(SELECT g::bigint FROM generate_series(1, 100) g))});
	is($read, $ledger, "$label: fs_get_many's day windows agree");
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM fstore.dead_letters WHERE view_name = 'ev'}), '0', "$label: no dead letters");
}

# 1. producers and the worker at once
my ($h, $err) = produce(2, 20);
$h->finish;
is($?, 0, 'producers succeeded') or diag($$err);
check_exactly_once('concurrent producers');

# 2. an immediate shutdown while producers and the worker are busy
($h, $err) = produce(2, 300);
sleep 2;
$node->stop('immediate');
$h->finish;
$node->start;
my $queued = $node->safe_psql('postgres', 'SELECT count(*) FROM fstore_stream.ev');
note("events queued after the crash: $queued");
check_exactly_once('immediate shutdown');

# 3. again, with the worker killed by the shutdown in the middle of a
#    long backlog: stop the worker, queue, start it, crash
$node->append_conf('postgresql.conf', 'fstore.stream_workers = 0');
$node->reload;
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'fstore stream worker')");
($h, $err) = produce(2, 40);
$h->finish;
is($?, 0, 'backlog produced') or diag($$err);
$node->append_conf('postgresql.conf', 'fstore.stream_workers = 1');
$node->reload;
$node->poll_query_until('postgres',
	'SELECT count(*) < 80000 FROM fstore_stream.ev');
$node->stop('immediate');
$node->start;
check_exactly_once('immediate shutdown with a backlog');

# 4. fs_stream_apply in a session while the worker drains: still once
($h, $err) = produce(2, 40);
$node->safe_psql('postgres', q{SELECT fs_stream_apply('ev', 5000)}) for 1 .. 3;
$h->finish;
check_exactly_once('fs_stream_apply racing the worker');

# 5. pg_dump / pg_restore brings the view, its tiles and its catalog rows
#    back, and the restored view keeps counting
my $dump = $node->basedir . '/agg.dump';
command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dump ], 'pg_restore');
my $windows = q{SELECT string_agg(doc_id || ':' || n_1d || ':' || v_1d || ':' || v_max, ',' ORDER BY doc_id)
	  FROM fs_get_many(NULL::fstore_online.ev, ARRAY(SELECT g::bigint FROM generate_series(1, 100) g))};
is($node->safe_psql('restored', $windows), $node->safe_psql('postgres', $windows),
	'restored: the same windows for every key');
$node->safe_psql('restored', q{SELECT fs_write('ev', ARRAY[ROW(1, 1, now())]::fstore_stream.ev[])});
is($node->safe_psql('restored', q{SELECT n_1d FROM fs_get_many(NULL::fstore_online.ev, ARRAY[1]::bigint[])}),
	$node->safe_psql('postgres', q{SELECT n_1d + 1 FROM fs_get_many(NULL::fstore_online.ev, ARRAY[1]::bigint[])}),
	'restored: the view keeps counting');

# 6. The worker sweeps expired tiles in slices of the tile table's blocks
#    (one slice per second at most, while batches arrive): it removes every
#    expired tile of a table larger than one slice, and no live one.
my $live = q{SELECT count(*) || '|' || sum(fs_n) FROM fstore_offline.ev WHERE doc_id <= 100};
my ($n_before, $sum_before) = split /\|/, $node->safe_psql('postgres', $live);
$node->safe_psql('postgres', q{
	INSERT INTO fstore_offline.ev (doc_id, tile_start, fs_n, fs_last_ts)
	SELECT 1000 + g, date_bin('1 minute', now() - interval '30 days', '1970-01-01'), 1,
	       now() - interval '30 days'
	  FROM generate_series(1, 6000) g});
my $blocks = $node->safe_psql('postgres',
	q{SELECT pg_relation_size('fstore_offline.ev') / current_setting('block_size')::int});
cmp_ok($blocks, '>', 32, "sweep: the tile table spans more than two slices ($blocks blocks)");
my ($swept, $events) = (0, 0);
for (1 .. 240)
{
	$node->safe_psql('postgres', q{INSERT INTO fstore_stream.ev VALUES (1, 0, now())});
	$events++;
	if ($node->safe_psql('postgres',
			q{SELECT count(*) FROM fstore_offline.ev WHERE doc_id > 1000}) eq '0')
	{
		$swept = 1;
		last;
	}
	select(undef, undef, undef, 0.25);
}
ok($swept, "sweep: every expired tile removed by the worker ($events batches)");
ok($node->poll_query_until('postgres', 'SELECT NOT EXISTS (SELECT 1 FROM fstore_stream.ev)'),
	'sweep: queue drained');
my ($n_after, $sum_after) = split /\|/, $node->safe_psql('postgres', $live);
cmp_ok($n_after, '>=', $n_before, 'sweep: no live tile removed');
is($sum_after - $sum_before, $events, 'sweep: the events of this phase counted once');

$node->stop;
done_testing();
