# Stream workers: exactly-once application of 100,000 events from
# concurrent producers (INSERT and COPY), across an immediate shutdown and a
# killed worker; dead letters; DROP DATABASE and DROP EXTENSION with workers
# running; changing fstore.stream_workers and fstore.database.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('stream');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore'
fstore.stream_workers = 1
max_worker_processes = 16
# the test kills a worker: the postmaster must recover, not stop
restart_after_crash = on
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_feature_view('ev', 'doc', 'n bigint');
	-- each producer transaction records how many events it committed
	CREATE TABLE ledger (batch bigint PRIMARY KEY, events int);
	CREATE SEQUENCE batch_seq;
});

# pgbench producers: INSERT of 1,000 unique events per transaction; event
# number e goes to key e % 1000 + 1 with value e and time 2026 + e ms
my $script = $node->basedir . '/produce.sql';
open my $fh, '>', $script or die;
print $fh q{SELECT nextval('batch_seq') AS b \gset
BEGIN;
INSERT INTO fstore_stream.ev SELECT (:b * 1000 + g) % 1000 + 1, :b * 1000 + g, '2026-01-01'::timestamptz + (:b * 1000 + g) * interval '1 millisecond' FROM generate_series(0, 999) g;
INSERT INTO ledger VALUES (:b, 1000);
COMMIT;
};
close $fh;

# event time of event number e: 2026-01-01 plus e milliseconds, as text
sub iso_time
{
	my ($e) = @_;
	my $sec = int($e / 1000);
	my $day = 1 + int($sec / 86400);
	my $rem = $sec % 86400;
	die "test data spans too many days" if $day > 31;
	return sprintf('2026-01-%02d %02d:%02d:%02d.%03d+00', $day,
		int($rem / 3600), int(($rem % 3600) / 60), $rem % 60, $e % 1000);
}

# a COPY producer: batches numbered from 1,000,000 so they never collide
# with pgbench's, written as one psql script of COPY transactions
sub copy_script
{
	my ($first, $n) = @_;
	my $file = $node->basedir . "/copy_$first.sql";
	open my $c, '>', $file or die;
	for my $b ($first .. $first + $n - 1)
	{
		print $c "BEGIN;\nCOPY fstore_stream.ev FROM STDIN;\n";
		for my $g (0 .. 999)
		{
			my $e = $b * 1000 + $g;
			print $c ($e % 1000 + 1) . "\t$e\t" . iso_time($e) . "\n";
		}
		print $c "\\.\nINSERT INTO ledger VALUES ($b, 1000);\nCOMMIT;\n";
	}
	close $c;
	return $file;
}

sub start_pgbench
{
	my ($clients, $tx) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', '-f', $script, '-c', $clients, '-t', $tx, '-d', $node->connstr('postgres') ],
		'>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

sub start_copy
{
	my ($file) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $file, '-d', $node->connstr('postgres') ],
		'>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

sub wait_drained
{
	my ($n, $view) = @_;
	$view //= 'ev';
	return $n->poll_query_until('postgres',
		"SELECT NOT EXISTS (SELECT 1 FROM fstore_stream.$view)");
}

# every committed event is in the history exactly once, nothing else is,
# and the online row of each key holds its latest event
sub check_exactly_once
{
	my ($label) = @_;
	my $committed = $node->safe_psql('postgres', 'SELECT coalesce(sum(events), 0) FROM ledger');
	my ($hist, $distinct) = split /\|/, $node->safe_psql('postgres',
		'SELECT count(*), count(DISTINCT n) FROM fstore_offline.ev');
	is($hist, $committed, "$label: one history row per committed event ($committed)");
	is($distinct, $hist, "$label: no event applied twice");
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM fstore_online.ev o
		 WHERE o.n <> (SELECT max(h.n) FROM fstore_offline.ev h WHERE h.doc_id = o.doc_id)
		    OR o.event_ts <> (SELECT max(h.event_ts) FROM fstore_offline.ev h WHERE h.doc_id = o.doc_id)}),
		'0', "$label: online rows hold each key's latest event");
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM fs_get_many(NULL::fstore_online.ev,
		    (SELECT array_agg(doc_id) FROM fstore_online.ev)) f
		  JOIN fstore_online.ev o USING (doc_id) WHERE f.n IS DISTINCT FROM o.n}),
		'0', "$label: fs_get_many agrees");
}

# 1. 100,000 events: 3 pgbench clients x 20 transactions (INSERT) and
#    40 COPY batches, all at once
my $copy1 = copy_script(1_000_000, 40);
my $t0 = time;
my ($pg, $pgout, $pgerr) = start_pgbench(3, 20);
my ($cp, $cpout, $cperr) = start_copy($copy1);
$pg->finish;
$cp->finish;
is($?, 0, 'producers succeeded') or diag($$pgerr . $$cperr);
ok(wait_drained($node), 'queue drained');
note(sprintf('100,000 events applied in %.1f s', time - $t0));
is($node->safe_psql('postgres', 'SELECT sum(events) FROM ledger'), '100000', '100,000 events committed');
check_exactly_once('concurrent producers');
is($node->safe_psql('postgres', "SELECT stream_applied FROM fstore.stats WHERE view_name = 'ev'"),
	'100000', 'fstore.stats counts every applied event');

# 2. an immediate shutdown while producers and the worker are busy
$node->safe_psql('postgres', "ALTER SEQUENCE batch_seq RESTART WITH 2000");
($pg, $pgout, $pgerr) = start_pgbench(2, 200);
sleep 2;
$node->stop('immediate');
$pg->finish;
$node->start;
ok(wait_drained($node), 'queue drained after the restart');
check_exactly_once('immediate shutdown');

# 3. kill -9 of a worker (the postmaster restarts everything)
$node->safe_psql('postgres', "ALTER SEQUENCE batch_seq RESTART WITH 5000");
($pg, $pgout, $pgerr) = start_pgbench(2, 200);
my $wpid;
$node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM pg_stat_activity
	WHERE backend_type = 'fstore stream worker' AND datname = 'postgres'});
sleep 1;
$wpid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity
	WHERE backend_type = 'fstore stream worker' AND datname = 'postgres' LIMIT 1});
ok($wpid > 0, "a stream worker runs (pid $wpid)");
kill 'KILL', $wpid;
$pg->finish;
$node->poll_query_until('postgres', 'SELECT true') or die;
ok(wait_drained($node), 'queue drained after the worker was killed');
check_exactly_once('killed worker');

# 4. a poison event among good ones: it reaches the dead letters, the rest
#    is applied
$node->safe_psql('postgres', q{
	ALTER TABLE fstore_online.ev ADD CONSTRAINT n_positive CHECK (n >= 0);
	INSERT INTO fstore_stream.ev VALUES (1, 99000001, '2027-01-01'), (2, -5, '2027-01-01'),
	                                    (3, 99000003, '2027-01-01'), (NULL, 1, '2027-01-01');
});
ok(wait_drained($node), 'queue drained past the poison events');
is($node->safe_psql('postgres', q{SELECT string_agg(sqlstate || ':' || (event->>'n'), ',' ORDER BY sqlstate) FROM fstore.dead_letters}),
	'23502:1,23514:-5', 'poison events are dead letters');
is($node->safe_psql('postgres', q{SELECT string_agg(coalesce(n::text, '-'), ',' ORDER BY doc_id)
	FROM fs_get_many(NULL::fstore_online.ev, ARRAY[1, 3]::bigint[])}),
	'99000001,99000003', 'the events around them are applied');
is($node->safe_psql('postgres', "SELECT dead_letters FROM fstore.stats WHERE view_name = 'ev'"),
	'2', 'dead letters are counted');

# 5. fstore.stream_workers: two workers, then none
$node->safe_psql('postgres', q{SELECT fs_create_feature_view('ev2', 'doc', 'n bigint')});
$node->safe_psql('postgres', 'ALTER SYSTEM SET fstore.stream_workers = 2; SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM pg_stat_activity
	WHERE backend_type = 'fstore stream worker' AND datname = 'postgres'}), 'two workers after a reload');
$node->safe_psql('postgres', q{INSERT INTO fstore_stream.ev2 VALUES (1, 1, now());
	INSERT INTO fstore_stream.ev VALUES (7, 99000007, '2027-01-02')});
ok(wait_drained($node, 'ev2') && wait_drained($node, 'ev'), 'both views drained by two workers');
$node->safe_psql('postgres', 'ALTER SYSTEM SET fstore.stream_workers = 0; SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity
	WHERE backend_type = 'fstore stream worker'}), 'no worker after setting 0');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET fstore.stream_workers; SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'fstore stream worker' AND datname = 'postgres'}), 'one worker again');

# 5b. fstore.database naming another database: the running worker leaves,
#     events wait; naming this one again brings it back
$node->safe_psql('postgres', "ALTER SYSTEM SET fstore.database = 'nosuchdb'; SELECT pg_reload_conf()");
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity
	WHERE backend_type = 'fstore stream worker' AND datname = 'postgres'}),
	'the worker leaves a database fstore.database no longer names');
$node->safe_psql('postgres', q{INSERT INTO fstore_stream.ev2 VALUES (2, 2, now())});
sleep 1;
is($node->safe_psql('postgres', 'SELECT count(*) FROM fstore_stream.ev2'), '1', 'events wait meanwhile');
$node->safe_psql('postgres', "ALTER SYSTEM SET fstore.database = 'postgres'; SELECT pg_reload_conf()");
ok(wait_drained($node, 'ev2'), 'and are applied once it names this database again');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET fstore.database; SELECT pg_reload_conf()');

# 5c. an error that is not the events' doing (a trigger raising 55000
#     here, like a lock timeout would) keeps them queued instead of making
#     dead letters, and the worker goes on serving the other views
$node->safe_psql('postgres', q{
	CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN RAISE EXCEPTION 'not now' USING ERRCODE = 'object_not_in_prerequisite_state'; END $$;
	CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON fstore_online.ev2
		FOR EACH ROW EXECUTE FUNCTION refuse();
	INSERT INTO fstore_stream.ev2 VALUES (3, 3, now());
	INSERT INTO fstore_stream.ev VALUES (8, 99000008, '2027-01-03');
});
ok(wait_drained($node, 'ev'), 'the other view is still served');
is($node->safe_psql('postgres', 'SELECT count(*) FROM fstore_stream.ev2'), '1',
	'the refused events stay queued');
is($node->safe_psql('postgres', "SELECT count(*) FROM fstore.dead_letters WHERE view_name = 'ev2'"), '0',
	'and are not dead letters');
ok($node->log_contains('the events of feature view "ev2" stay queued'), 'the failure is logged');
$node->safe_psql('postgres', 'DROP TRIGGER refuse ON fstore_online.ev2');
ok(wait_drained($node, 'ev2'), 'they are applied once the cause is gone');

# 6. a database created after startup gets a worker; DROP DATABASE with its
#    worker running does not hang
$node->safe_psql('postgres', 'CREATE DATABASE late');
$node->safe_psql('late', q{
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_feature_view('lv', 'doc', 'n int');
	INSERT INTO fstore_stream.lv VALUES (1, 42, now());
});
ok($node->poll_query_until('late', 'SELECT NOT EXISTS (SELECT 1 FROM fstore_stream.lv)'),
	'a database created after startup is served');
is($node->safe_psql('late', 'SELECT n FROM fs_get_many(NULL::fstore_online.lv, ARRAY[1]::bigint[])'),
	'42', 'its events are applied');
my $d0 = time;
my ($ok, $stdout, $stderr) = $node->psql('postgres', 'DROP DATABASE late', timeout => 60);
is($ok, 0, 'DROP DATABASE succeeds with a worker connected') or diag($stderr);
ok(time - $d0 < 30, sprintf('and does not hang (%.1f s)', time - $d0));

# 7. DROP EXTENSION with the worker running does not hang either; the
#    worker leaves the database
$node->safe_psql('postgres', 'CREATE DATABASE ext');
$node->safe_psql('ext', q{
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_feature_view('xv', 'doc', 'n int');
	INSERT INTO fstore_stream.xv VALUES (1, 1, now());
});
ok($node->poll_query_until('ext', 'SELECT NOT EXISTS (SELECT 1 FROM fstore_stream.xv)'), 'ext served');
$d0 = time;
($ok, $stdout, $stderr) = $node->psql('ext', 'DROP EXTENSION fstore CASCADE', timeout => 60);
is($ok, 0, 'DROP EXTENSION succeeds') or diag($stderr);
ok(time - $d0 < 30, 'and does not hang');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity
	WHERE backend_type = 'fstore stream worker' AND datname = 'ext'}, 't'),
	'the worker leaves a database without fstore');

$node->stop;
done_testing();
