# Stream workers on demand and under damage: databases share a few
# background worker slots (idle workers leave, the launcher starts one
# where events wait), a database whose events no worker can take shows in
# fstore.freshness and fs_check_freshness, and a retyped queue column is an
# error the worker logs and retries, never a crash.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = PostgreSQL::Test::Cluster->new('workers');
$node->init;
# the launcher and three stream workers fill every slot
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore'
fstore.stream_workers = 1
fstore.stream_idle_timeout = 2
max_worker_processes = 4
max_parallel_workers = 0
max_logical_replication_workers = 0
restart_after_crash = on
});
$node->start;

my @dbs = map { "db$_" } 1 .. 5;
for my $db (@dbs)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, q{
		CREATE EXTENSION fstore;
		SELECT fs_create_entity('doc', 'doc_id bigint');
		SELECT fs_create_feature_view('v', 'doc', 'a int');
	});
}

sub workers
{
	return $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'fstore stream worker'});
}

sub enqueue
{
	my ($db, $from, $n) = @_;
	$node->safe_psql($db, "INSERT INTO fstore_stream.v SELECT g, g, now() FROM generate_series($from, $from + $n - 1) g");
}

# ---------------------------------------------------------------------------
# 1. Five databases, three slots: every queue is drained, because idle
#    workers leave and the launcher starts workers where events wait.
# ---------------------------------------------------------------------------
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'fstore stream worker'}),
	'workers of databases without events leave');
enqueue($_, 1, 1000) for @dbs;
for my $db (@dbs)
{
	ok($node->poll_query_until($db, q{SELECT count(*) = 1000 FROM fstore_online.v}),
		"$db: its events were applied");
}
cmp_ok(workers(), '<=', 3, 'never more workers than slots');

# ---------------------------------------------------------------------------
# 2. Workers that never leave take every slot: a sixth database's events
#    wait, and it shows; once the workers may leave, the events are applied.
# ---------------------------------------------------------------------------
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'fstore stream worker'}),
	'idle workers leave');
$node->append_conf('postgresql.conf', 'fstore.stream_idle_timeout = 0');
$node->reload;
enqueue($_, 2001, 10) for @dbs[0 .. 2];
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 3 FROM pg_stat_activity WHERE backend_type = 'fstore stream worker'}),
	'three databases hold the three slots');
enqueue('db4', 5001, 10);
ok($node->poll_query_until('db4',
	q{SELECT queue_stalled FROM fstore.freshness WHERE view_name = 'v'}),
	'fstore.freshness shows the queue no worker takes');
is($node->safe_psql('db4', q{SELECT view_name || ' ' || problem FROM fs_check_freshness()}),
	'v queue stalled', 'fs_check_freshness reports it');
is($node->safe_psql('db4', q{SELECT stream_workers || ' ' || queue_depth FROM fstore.freshness}),
	'0 10', 'with no worker and 10 events queued');
is($node->safe_psql('db1', q{SELECT queue_stalled FROM fstore.freshness}),
	'f', 'a served database is not stalled');
like(slurp_file($node->logfile), qr/could not start an fstore stream worker/,
	'the server log says why');

$node->append_conf('postgresql.conf', 'fstore.stream_idle_timeout = 1');
$node->reload;
ok($node->poll_query_until('db4', q{SELECT count(*) = 1010 FROM fstore_online.v}),
	'once workers leave, the waiting events are applied');
ok($node->poll_query_until('db4', q{SELECT NOT queue_stalled FROM fstore.freshness}),
	'and the database is no longer stalled');

# ---------------------------------------------------------------------------
# 3. A queue column retyped under a worker: the worker logs the error and
#    keeps the events queued; the server never crashes; the type changed
#    back, the events are applied.
# ---------------------------------------------------------------------------
my $log_offset = -s $node->logfile;
$node->safe_psql('db5', q{ALTER TABLE fstore_stream.v ALTER COLUMN a TYPE text});
$node->safe_psql('db5', q{INSERT INTO fstore_stream.v VALUES (7001, '7', now()), (7002, '8', now())});
ok($node->poll_query_until('postgres', qq{SELECT pg_read_file('} . $node->logfile . qq{', $log_offset, 100000) ~ 'fstore_stream.v" has type text'}),
	'the worker reports the retyped column');
sleep(2);
is($node->safe_psql('db5', q{SELECT count(*) FROM fstore_stream.v}), '2', 'the events stay queued');
my $log = substr(slurp_file($node->logfile), $log_offset);
unlike($log, qr/terminated by signal|server process .* was terminated/, 'no process crashed');
is($node->safe_psql('db5', q{SELECT count(*) FROM fs_get_many(NULL::fstore_online.v, ARRAY[1, 2]::bigint[]) WHERE a IS NOT NULL}),
	'2', 'reads of the view keep working');
$node->safe_psql('db5', q{ALTER TABLE fstore_stream.v ALTER COLUMN a TYPE int USING a::int});
ok($node->poll_query_until('db5', q{SELECT count(*) = 2 FROM fstore_online.v WHERE doc_id > 7000}),
	'the type changed back, the events are applied');

# ---------------------------------------------------------------------------
# 4. Two workers per database: the worker of one view leaves for lack of
#    work while the other stays busy; an event for the first view brings
#    its worker back (the busy one does not serve that view).
# ---------------------------------------------------------------------------
$node->append_conf('postgresql.conf', "fstore.stream_workers = 2\nfstore.stream_idle_timeout = 2");
$node->reload;
# the launcher starts the new worker number once in every database (their
# views' events may now be its), three slots at a time; let them leave
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'fstore stream worker'}),
	'the new workers of the other databases leave');
$node->safe_psql('postgres', 'CREATE DATABASE db6');
$node->safe_psql('db6', q{
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_feature_view('v1', 'doc', 'a int');	-- view_id 1: worker 1
	SELECT fs_create_feature_view('v2', 'doc', 'a int');	-- view_id 2: worker 0
});
my $deadline = time + 6;
my $k = 0;
while (time < $deadline)
{
	$k++;
	$node->safe_psql('db6', "INSERT INTO fstore_stream.v2 VALUES ($k, $k, now())");
	sleep(0.2);
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type = 'fstore stream worker' AND datname = 'db6'}),
	'1', 'the busy view keeps its worker; the idle one left') or diag($node->safe_psql('postgres', q{SELECT string_agg(datname || ':' || pid || ':' || backend_start::time, ' ') FROM pg_stat_activity WHERE backend_type = 'fstore stream worker'}));
$node->safe_psql('db6', q{INSERT INTO fstore_stream.v1 VALUES (1, 1, now())});
my $applied = 0;
for (1 .. 100)
{
	$applied = $node->safe_psql('db6', q{SELECT count(*) FROM fstore_online.v1});
	last if $applied eq '1';
	sleep(0.1);
}
is($applied, '1', "an event for the idle view's worker is applied within 10 s");
ok($node->poll_query_until('db6', "SELECT count(*) = $k FROM fstore_online.v2"), 'and every event of the busy view');

$node->stop;
done_testing();
