# The security model where stream workers and databases are involved: a
# database owner's planted operators and ALTER DATABASE ... SET search_path
# never reach the worker; a name planted before CREATE EXTENSION never binds
# into fstore's objects; a view's triggers run as the view's owner when a
# worker applies its events; a role that may not drop a database cannot
# disturb its workers by trying; the worker's clock is the real one.
# (The attacks that need no worker are in sql/09_security.sql.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = PostgreSQL::Test::Cluster->new('security');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore'
fstore.stream_workers = 1
max_worker_processes = 16
});
$node->start;

sub as_role
{
	my ($db, $role, $sql) = @_;
	return $node->safe_psql($db, $sql, extra_params => ['-U', $role]);
}

sub is_superuser
{
	my ($role) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT rolsuper FROM pg_roles WHERE rolname = '$role'});
}

# A database owner's payload: called with a superuser's rights it makes its
# owner a superuser, and it records who ran it in any case.
sub payload
{
	my ($owner) = @_;
	return qq{
	CREATE TABLE public.ran (who name, su bool, what text);
	GRANT INSERT ON public.ran TO PUBLIC;
	CREATE FUNCTION public.escalate(what text) RETURNS void LANGUAGE plpgsql AS \$\$
	BEGIN
		INSERT INTO public.ran SELECT current_user, rolsuper, what
		  FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user;
		IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
			EXECUTE 'ALTER ROLE $owner SUPERUSER';
		END IF;
	END \$\$;
	};
}

$node->safe_psql('postgres', q{
	CREATE ROLE dbo LOGIN;
	CREATE ROLE mallory LOGIN;
	CREATE ROLE fadmin LOGIN;
	CREATE DATABASE sec OWNER dbo;
	CREATE DATABASE sec2 OWNER dbo;
});

# ---------------------------------------------------------------------------
# 1. A database owner plants operators that beat pg_catalog's under its
#    search_path and sets that path on the database: the stream worker (a
#    superuser) never resolves through it.
# ---------------------------------------------------------------------------
$node->safe_psql('sec', q{
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_feature_view('v', 'doc', 'a int');
});
as_role('sec', 'dbo', payload('dbo') . q{
	CREATE FUNCTION public.text_eq(text, text) RETURNS bool LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.escalate('text ='); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
	CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.text_eq);
	CREATE FUNCTION public.tid_eq(tid, tid) RETURNS bool LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.escalate('tid ='); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
	CREATE OPERATOR public.= (LEFTARG = tid, RIGHTARG = tid, FUNCTION = public.tid_eq);
	CREATE FUNCTION public.int8_eq(bigint, bigint) RETURNS bool LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.escalate('bigint ='); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
	CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.int8_eq);
	ALTER DATABASE sec SET search_path = public, pg_catalog;
});
# the worker connects anew with the database's settings
$node->restart;
$node->safe_psql('sec', q{
	SET search_path = pg_catalog;
	INSERT INTO fstore_stream.v SELECT g, g, '2026-01-01'::timestamptz FROM generate_series(1, 100) g;
});
is($node->safe_psql('sec', q{SET search_path = pg_catalog; SELECT public.fs_stream_wait('v', '60 s')}),
	't', 'the worker drained the queue');
is($node->safe_psql('sec', q{SET search_path = pg_catalog; SELECT count(*) FROM fstore_online.v}),
	'100', 'and applied every event');
is(is_superuser('dbo'), 'f', 'the database owner did not become superuser');
is($node->safe_psql('sec', q{SET search_path = pg_catalog; SELECT count(*) FROM public.ran}),
	'0', 'no planted operator ran in the worker');

# ---------------------------------------------------------------------------
# 2. A function planted before CREATE EXTENSION (nextval(text) beats
#    nextval(regclass) for an untyped literal) never binds into fstore's
#    column defaults or functions.
# ---------------------------------------------------------------------------
as_role('sec2', 'dbo', payload('dbo') . q{
	CREATE FUNCTION public.nextval(text) RETURNS bigint LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.escalate('nextval'); RETURN pg_catalog.nextval($1::pg_catalog.regclass); END $$;
	CREATE FUNCTION public.cardinality(name[]) RETURNS int LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.escalate('cardinality'); RETURN pg_catalog.cardinality($1::text[]); END $$;
	CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.escalate('now'); RETURN pg_catalog.now(); END $$;
});
$node->safe_psql('sec2', q{
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_feature_view('v', 'doc', 'a int');
	SELECT fs_create_feature_view('w', 'doc', 'b int');
	SELECT * FROM fs_write('v', ARRAY[ROW(1, 1, now())]::fstore_online.v[]);
});
is(is_superuser('dbo'), 'f', 'the database owner did not become superuser');
is($node->safe_psql('sec2', q{SELECT count(*) FROM public.ran}),
	'0', 'no function planted before CREATE EXTENSION ran');
is($node->safe_psql('sec2', q{SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef
	WHERE adrelid = 'fstore.feature_views'::regclass AND adnum = 1}),
	q{nextval('fstore.feature_views_view_id_seq'::regclass)}, 'the view id default is nextval(regclass)');

# ---------------------------------------------------------------------------
# 3. A worker applies a view's events as the view's owner: the owner's
#    trigger never runs as a superuser.
# ---------------------------------------------------------------------------
$node->safe_psql('sec2', q{
	GRANT CREATE ON SCHEMA fstore, fstore_online, fstore_offline, fstore_stream TO fadmin;
	GRANT INSERT, UPDATE, DELETE ON fstore.entities, fstore.feature_views, fstore.features,
		fstore.feature_services, fstore.service_features, fstore.view_state,
		fstore.materialization_runs, fstore.dead_letters TO fadmin;
	GRANT USAGE ON SEQUENCE fstore.feature_views_view_id_seq TO fadmin;
	GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA fstore TO fadmin;
	CREATE SCHEMA fa AUTHORIZATION fadmin;
});
as_role('sec2', 'fadmin', q{
	SELECT fs_create_feature_view('owned', 'doc', 'a int');
	CREATE TABLE fa.trig_log (who name, su bool, at timestamptz, wall timestamptz);
	CREATE FUNCTION fa.note() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO fa.trig_log SELECT current_user, rolsuper, pg_catalog.now(), pg_catalog.clock_timestamp()
		  FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user;
		RETURN NEW;
	END $$;
	CREATE TRIGGER note BEFORE INSERT OR UPDATE ON fstore_online.owned
		FOR EACH ROW EXECUTE FUNCTION fa.note();
	GRANT INSERT ON fstore_stream.owned TO mallory;
});
# let the worker run a while, so a clock frozen at its start would show
sleep(3);
as_role('sec2', 'mallory', q{
	INSERT INTO fstore_stream.owned VALUES (1, 1, now()), (2, 2, now()), (NULL, 3, now());
});
is($node->safe_psql('sec2', q{SELECT fs_stream_wait('owned', '60 s')}), 't', 'the worker drained the queue');
is($node->safe_psql('sec2', q{SELECT string_agg(DISTINCT who || '/' || su::int, ',') FROM fa.trig_log}),
	'fadmin/0', "the view owner's trigger ran as the view owner, not as the worker's superuser");

# the worker's transactions have the real time (SetCurrentStatementStartTimestamp)
ok($node->safe_psql('sec2', q{SELECT bool_and(wall - at < interval '2 s') FROM fa.trig_log}) eq 't',
	"now() in the worker's transaction is the current time");
ok($node->safe_psql('sec2', q{SELECT bool_and(clock_timestamp() - failed_at < interval '10 s')
	FROM fstore.dead_letters WHERE view_name = 'owned'}) eq 't',
	'dead_letters.failed_at is the time of the failure');
my $xact_age = $node->safe_psql('sec2', q{
	SELECT coalesce(max(extract(epoch FROM clock_timestamp() - backend_start)), 0) > 2
	   AND coalesce(bool_and(xact_start IS NULL OR clock_timestamp() - xact_start < interval '2 s'), true)
	  FROM pg_stat_activity WHERE backend_type = 'fstore stream worker'});
is($xact_age, 't', 'a worker running for seconds shows no old transaction');

# ---------------------------------------------------------------------------
# 4. A role that may not drop (rename, copy) a database cannot pause its
#    workers by trying: permission checks come before fstore's side effects.
# ---------------------------------------------------------------------------
my $worker_pid = sub {
	return $node->safe_psql('postgres', q{
		SELECT string_agg(pid::text, ',') FROM pg_stat_activity
		 WHERE backend_type = 'fstore stream worker' AND datname = 'sec2'});
};
my $before = $worker_pid->();
ok($before ne '', "sec2 has a worker ($before)");
for my $i (1 .. 15)
{
	my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE sec2', extra_params => ['-U', 'mallory']);
	like($err, qr/must be owner of database sec2/, "DROP DATABASE by mallory fails ($i)") if $i == 1;
	$node->psql('postgres', 'ALTER DATABASE sec2 RENAME TO sec3', extra_params => ['-U', 'mallory']);
	$node->psql('postgres', 'CREATE DATABASE copy TEMPLATE sec2', extra_params => ['-U', 'mallory']);
}
is($worker_pid->(), $before, 'the worker was never stopped');
as_role('sec2', 'mallory', q{INSERT INTO fstore_stream.owned VALUES (7, 7, now())});
is($node->safe_psql('sec2', q{SELECT fs_stream_wait('owned', '5 s')}), 't',
	'and applies new events at once');

# the owner's DROP DATABASE still works with workers running
$node->safe_psql('postgres', 'DROP DATABASE sec2', extra_params => ['-U', 'dbo']);
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'sec2'}), '0',
	"the owner's DROP DATABASE works");

# ---------------------------------------------------------------------------
# 5. Databases are isolated: the shared cache and counters of one database
#    never answer for another, although their view ids and keys coincide.
# ---------------------------------------------------------------------------
for my $i (1, 2)
{
	$node->safe_psql('postgres', "CREATE DATABASE iso$i");
	$node->safe_psql("iso$i", qq{
		CREATE EXTENSION fstore;
		SELECT fs_create_entity('doc', 'doc_id bigint');
		SELECT fs_create_feature_view('v', 'doc', 'a int');
		SELECT written FROM fs_write('v', ARRAY[ROW(1, $i, now())]::fstore_online.v[]);
	});
}
for my $round (1 .. 3)
{
	for my $i (1, 2)
	{
		is($node->safe_psql("iso$i", q{SELECT a FROM fs_get_many(NULL::fstore_online.v, ARRAY[1]::bigint[])}),
			$i, "iso$i reads its own value (round $round)");
	}
}
is($node->safe_psql('iso1', q{SELECT (SELECT view_id FROM fstore.feature_views) || ' ' || lookups FROM fstore.stats}),
	'1 3', 'iso1 counts its own lookups, under the same view id as iso2');

$node->stop;
done_testing();
