# Sharded feature views (docs/scale-out.md): a coordinator and three shard
# clusters.  Every write path goes to a sharded view and to an unsharded
# copy of it on the coordinator; every fs_get_many answer (rows and packed),
# the history and the training sets must be the same.  Then one shard is
# stopped (reads and writes that need it fail naming it, the others still
# answer), restarted (nothing lost, the failed write retried).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my @shards;
for my $i (1 .. 3)
{
	my $s = PostgreSQL::Test::Cluster->new("shard$i");
	$s->init;
	$s->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore'
fstore.cache_size = '16MB'
});
	$s->start;
	$s->safe_psql('postgres', 'CREATE EXTENSION fstore');
	push @shards, $s;
}
my $co = PostgreSQL::Test::Cluster->new('coordinator');
$co->init;
$co->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore'
fstore.cache_size = '16MB'
});
$co->start;
$co->safe_psql('postgres', 'CREATE EXTENSION fstore; CREATE EXTENSION postgres_fdw; CREATE EXTENSION dblink');

sub co { return $co->safe_psql('postgres', $_[0]); }

sub co_fails
{
	my ($sql, $re, $name) = @_;
	my ($ret, $out, $err) = $co->psql('postgres', $sql);
	isnt($ret, 0, "$name: fails");
	like($err, $re, "$name: error");
}

# ---------------------------------------------------------------------------
# Shards
# ---------------------------------------------------------------------------

for my $i (1 .. 3)
{
	my $s = $shards[ $i - 1 ];
	co(sprintf(q{SELECT fs_add_shard('s%d', 'host=''%s'' port=%d dbname=postgres')},
		$i, $s->host, $s->port));
}
is(co(q{SELECT string_agg(name || ':' || fstore_schema, ',' ORDER BY name) FROM fstore.shards}),
	's1:public,s2:public,s3:public', 'three shards, fstore found on each');

$shards[0]->safe_psql('postgres', 'CREATE DATABASE nofs');
co_fails(sprintf(q{SELECT fs_add_shard('bad', 'host=''%s'' port=%d dbname=nofs')},
		$shards[0]->host, $shards[0]->port),
	qr/shard "bad" has no fstore extension/, 'a server without fstore');
is(co(q{SELECT count(*) FROM pg_foreign_server WHERE srvname = 'bad'}), '0',
	'and its foreign server is gone with the failed call');
co_fails(q{SELECT fs_add_shard('s1', 'host=x')}, qr/shard "s1" already exists/, 'a duplicate shard');

# ---------------------------------------------------------------------------
# Views: sharded ones and unsharded copies
# ---------------------------------------------------------------------------

co(q{
	CREATE SCHEMA raw;
	CREATE TABLE raw.clicks (user_id bigint, doc_id text, event_ts timestamptz, clicks int, score float8);
	CREATE INDEX ON raw.clicks (event_ts);
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_entity('ud', 'user_id bigint, doc_id text');
});
# the entity already exists on shard 2: it is used as it is
$shards[1]->safe_psql('postgres', q{SELECT fs_create_entity('ud', 'user_id bigint, doc_id text')});
# a view of that name with other features on shard 3: that shard fails
$shards[2]->safe_psql('postgres', q{SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_feature_view('ds_ttl', 'doc', 'other int')});

for my $sfx ('', '_u')
{
	co(qq{
		SELECT fs_create_feature_view('ds$sfx', 'doc', 'views int, ctr real, tags text[], note text');
		SELECT fs_create_feature_view('ds_ttl$sfx', 'doc', 'score float8', ttl => interval '1 hour');
	});
}
co(q{SELECT fs_create_feature_view('uds_u', 'ud', source => 'raw.clicks'::regclass)});
is(co(q{SELECT string_agg(shard || ':' || state, ',') FROM fs_shard_feature_view('ds')}),
	's1:ready,s2:ready,s3:ready', 'ds sharded over every shard');
is(co(q{SELECT string_agg(shard || ':' || state, ',') FROM fs_create_sharded_feature_view('uds', 'ud', source => 'raw.clicks'::regclass, shards => ARRAY['s3', 's1', 's2'])}),
	's3:ready,s1:ready,s2:ready', 'uds created sharded, in the given order of shards');
my ($ret, $out, $err) = $co->psql('postgres',
	q{SELECT string_agg(shard || ':' || state, ',') FROM fs_shard_feature_view('ds_ttl')});
is($out, 's1:ready,s2:ready,s3:failed', 'a shard holding another definition fails');
like($err, qr/could not be created on shard "s3".*fs_shard_sync/s, 'with a warning naming it and the retry');
like(co(q{SELECT error FROM fstore.shard_views WHERE view_name = 'ds_ttl' AND shard = 's3'}),
	qr/another definition/, 'the failure is recorded');
$shards[2]->safe_psql('postgres', q{SELECT fs_drop_feature_view('ds_ttl')});
is(co(q{SELECT string_agg(shard || ':' || state, ',') FROM fs_shard_sync('ds_ttl')}),
	's1:ready,s2:ready,s3:ready', 'fs_shard_sync retries it');
is(co(q{SELECT string_agg(shard || ':' || state, ',') FROM fs_shard_sync('ds_ttl')}),
	's1:ready,s2:ready,s3:ready', 'and is idempotent');
is($shards[1]->safe_psql('postgres', q{SELECT string_agg(name, ',' ORDER BY name) FROM fstore.feature_views}),
	'ds,ds_ttl,uds', 'each shard holds ordinary views');
co_fails(q{SELECT fs_shard_feature_view('ds')}, qr/already sharded/, 'sharding twice');
co(q{SELECT fs_write('ds_u', ARRAY[ROW(1, 1, 0, NULL, NULL, now())]::fstore_online.ds_u[])});
co_fails(q{SELECT fs_shard_feature_view('ds_u')}, qr/holds rows/, 'a view with rows');
co(q{TRUNCATE fstore_online.ds_u, fstore_offline.ds_u});
co_fails(q{INSERT INTO fstore_online.ds VALUES (1, 1, 0, NULL, NULL, now())},
	qr/feature view "ds" is sharded/, 'plain DML on the coordinator online table');
is(co(q{SELECT relkind FROM pg_class WHERE oid = 'fstore_offline.ds'::regclass}), 'p',
	'the coordinator history is partitioned');
is(co(q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'fstore_offline.ds'::regclass}), '3',
	'with a foreign partition a shard');

# ---------------------------------------------------------------------------
# Writes through every path, to both
# ---------------------------------------------------------------------------

my $t0 = co(q{SELECT date_trunc('second', now())});

sub both
{
	my ($tmpl, $name) = @_;
	my %r;
	for my $sfx ('', '_u')
	{
		(my $sql = $tmpl) =~ s/<S>/$sfx/g;
		$sql =~ s/<T0>/'$t0'::timestamptz/g;
		$r{$sfx} = co($sql);
	}
	is($r{''}, $r{'_u'}, "$name: same answer ($r{''})");
	return $r{''};
}

# fs_write: many keys, several rows a key, unchanged and late rows, a
# value of every kind (NULLs, arrays, quotes, floats that must not round)
both(q{SELECT fs_write('ds<S>', (SELECT array_agg(ROW(g, g * 10, g / 7.0, ARRAY['a' || g, 'b"c'], CASE WHEN g % 5 = 0 THEN NULL ELSE 'it''s\' || g END, <T0> - interval '1 hour')::fstore_online.ds<S>) FROM generate_series(1, 300) g))::text},
	'fs_write of 300 keys');
both(q{SELECT fs_write('ds<S>', ARRAY[
		ROW(1, 11, 0.1, NULL, 'x', <T0> - interval '30 min'),
		ROW(1, 12, 0.1, NULL, 'x', <T0> - interval '20 min'),
		ROW(1, 12, 0.1, NULL, 'x', <T0> - interval '10 min'),
		ROW(2, 20, 2 / 7.0, ARRAY['a2', 'b"c'], 'it''s\2', <T0> - interval '5 min'),
		ROW(3, 99, 0.5, NULL, 'late', <T0> - interval '2 hours'),
		ROW(4, 40, 4 / 7.0, ARRAY['a4', 'b"c'], 'it''s\4', <T0> - interval '2 hours')
	]::fstore_online.ds<S>[])::text}, 'fs_write with repeated, unchanged and late rows');
both(q{SELECT fs_write_query('ds<S>', $$SELECT g::bigint, g * 3, g::real / 3, NULL::text[], 'q', <T0> - interval '15 min' FROM generate_series(250, 400) g$$)::text},
	'fs_write_query');
both(q{SELECT fs_write_query('ds<S>', $$SELECT g::bigint, g * 3, g::real / 3, NULL::text[], 'q', <T0> - interval '15 min' FROM generate_series(250, 400) g$$)::text},
	'fs_write_query again: all unchanged');
both(q{SELECT fs_write('ds_ttl<S>', (SELECT array_agg(ROW(g, g * 0.1, <T0> - CASE WHEN g % 2 = 0 THEN interval '2 hours' ELSE interval '1 minute' END)::fstore_online.ds_ttl<S>) FROM generate_series(1, 50) g))::text},
	'fs_write to a view with a ttl');
co(q{INSERT INTO raw.clicks SELECT g % 40, 'd' || (g % 7), now() - (g || ' min')::interval, g, g / 3.0 FROM generate_series(1, 500) g});
both(q{SELECT (r).read || ',' || (r).written || ',' || (r).unchanged || ',' || (r).late FROM (SELECT fs_materialize('uds<S>') AS r) x},
	'fs_materialize');
co(q{INSERT INTO raw.clicks SELECT g % 40, 'd' || (g % 7), now() - (g || ' min')::interval, g + 1, g / 3.0 FROM generate_series(1, 600, 3) g});
both(q{SELECT (r).read || ',' || (r).written || ',' || (r).unchanged || ',' || (r).late FROM (SELECT fs_materialize('uds<S>', since => '-infinity') AS r) x},
	'fs_materialize again over everything');

# the stream: events inserted on the coordinator go to the owning shard's queue
for my $sfx ('', '_u')
{
	co(qq{INSERT INTO fstore_stream.ds$sfx SELECT g, -g, 0.25, NULL, 'stream', '$t0'::timestamptz - interval '1 min' FROM generate_series(1000, 1060) g});
}
for my $s (@shards)
{
	is($s->safe_psql('postgres', q{SELECT fs_stream_wait('ds', '60 s')}), 't', 'a shard applies its events');
}
is(co(q{SELECT fs_stream_wait('ds_u', '60 s')}), 't', 'the coordinator applies the copy');
is(join(',', map { $_->safe_psql('postgres', q{SELECT count(*) > 0 FROM fstore_online.ds WHERE note = 'stream'}) } @shards),
	't,t,t', 'the events went to the shards that own their keys');

# ---------------------------------------------------------------------------
# Reads, history, training sets: the same as unsharded
# ---------------------------------------------------------------------------

my $keys = 'ARRAY[7, 1, 2, 999999, 7, NULL, 300, 1030, 4, 3, 250, 400, 401]::bigint[]';
both(qq{SELECT string_agg(f::text, ';' ORDER BY o) FROM fs_get_many(NULL::fstore_online.ds<S>, $keys) WITH ORDINALITY AS f(doc_id, views, ctr, tags, note, event_ts, o)},
	'fs_get_many: order, duplicates, NULL and missing keys');
both(q{SELECT md5(fs_get_many_packed(NULL::fstore_online.ds_ttl<S>, ARRAY[3, 1, 2, NULL, 1, 999, 49]::bigint[]))}, 'fs_get_many_packed');
both(q{SELECT md5(fs_get_many_packed(NULL::fstore_online.uds<S>, ARRAY[(1, 'd1'), (39, 'd4'), (2, 'nope'), NULL, (1, 'd1')]::fstore.ud_key[]))}, 'fs_get_many_packed, composite key');
both(q{SELECT md5(string_agg(f::text, ';' ORDER BY o)) FROM fs_get_many(NULL::fstore_online.ds<S>, (SELECT array_agg(g::bigint ORDER BY g DESC) FROM generate_series(1, 1100) g)) WITH ORDINALITY AS f(doc_id, views, ctr, tags, note, event_ts, o)},
	'fs_get_many of 1,100 keys');
both(q{SELECT string_agg(coalesce(score::text, '-'), ',' ORDER BY o) FROM fs_get_many(NULL::fstore_online.ds_ttl<S>, ARRAY[1, 2, 3, 4, 60]::bigint[]) WITH ORDINALITY AS f(doc_id, score, event_ts, o)},
	'a ttl expires values on the shards');
both(q{SELECT string_agg(f::text, ';' ORDER BY o) FROM fs_get_many(NULL::fstore_online.uds<S>, ARRAY[(1, 'd1'), (39, 'd4'), (2, 'nope'), NULL, (1, 'd1')]::fstore.ud_key[]) WITH ORDINALITY AS f(user_id, doc_id, clicks, score, event_ts, o)},
	'a composite key');
both(q{SELECT md5(string_agg(x::text, ';' ORDER BY x::text)) FROM (SELECT doc_id, views, ctr, tags, note, event_ts FROM fstore_offline.ds<S>) x},
	'the history');
for my $sfx ('', '_u')
{
	co(qq{SELECT fs_create_feature_service('svc$sfx', ARRAY['ds$sfx.views', 'ds_ttl$sfx.score', 'ds$sfx.note AS n'])});
}
both(q{SELECT string_agg(f::text, ';' ORDER BY o) FROM fs_get_many(NULL::fstore_online.svc<S>, ARRAY[1, 2, 3, 4, 999, NULL, 2]::bigint[]) WITH ORDINALITY AS f(doc_id, views, score, n, o)},
	'a service over sharded views');
co(q{SELECT fs_drop_feature_service('svc'); SELECT fs_drop_feature_service('svc_u')});
both(q{SELECT count(*) || ',' || md5(string_agg(x::text, ';' ORDER BY x::text)) FROM (SELECT user_id, doc_id, clicks, score, event_ts FROM fstore_offline.uds<S>) x},
	'the history of the materialized view');
is(co(q{SELECT count(*) FROM fstore_shard.ds}), co(q{SELECT count(*) FROM fstore_online.ds_u}),
	'the partitioned online table holds every key');
is(co(q{SELECT count(*) FROM fstore_shard.ds s WHERE NOT EXISTS (SELECT 1 FROM fs_get_many(NULL::fstore_online.ds, ARRAY[s.doc_id]) g WHERE g.event_ts IS NOT NULL)}),
	'0', 'every key is where the coordinator looks for it');
my @per = map { $_->safe_psql('postgres', 'SELECT count(*) FROM fstore_online.ds') } @shards;
ok((grep { $_ > 50 } @per) == 3, "the keys are spread over the shards (@per)");

my $entities = q{SELECT doc_id, event_ts FROM (VALUES (1::bigint, <T0> - interval '25 min'), (1, <T0>), (2, <T0> - interval '50 min'), (3, <T0> - interval '90 min'), (3, <T0>), (250, <T0>), (999, <T0>), (7, <T0> - interval '3 hours')) e(doc_id, event_ts)};
for my $strategy ('auto', 'lateral', 'hash')
{
	my %r;
	for my $sfx ('', '_u')
	{
		(my $e = $entities) =~ s/<T0>/'$t0'::timestamptz/g;
		my $sql = co(qq{SELECT fs_training_set_query(\$q\$$e\$q\$, ARRAY['ds$sfx.views', 'ds$sfx.ctr', 'ds$sfx.note', 'ds_ttl$sfx.score'], strategy => '$strategy')});
		$r{$sfx} = co(qq{SELECT string_agg(t::text, ';') FROM ($sql) t});
	}
	is($r{''}, $r{'_u'}, "training set ($strategy) identical to the unsharded one");
}
both(q{SELECT fs_create_training_set('ts<S>', $$SELECT user_id, doc_id, <T0> AS event_ts FROM (VALUES (1::bigint, 'd1'), (5, 'd5'), (2, 'x')) v(user_id, doc_id)$$, ARRAY['uds<S>.clicks', 'uds<S>.score'])},
	'fs_create_training_set with a composite key');
both(q{SELECT string_agg(t::text, ';') FROM fstore_training.ts<S> t}, 'its rows');

# single-server rules still hold on the coordinator
co_fails(q{SELECT * FROM fs_get_many(NULL::fstore_online.ds, ARRAY[1, 2]::int[])}, qr/expects bigint\[\]/, 'a wrong key type');
co_fails(q{SELECT fs_write('ds', ARRAY[ROW(NULL, 1, 0, NULL, NULL, now())]::fstore_online.ds[])}, qr/null value in key column "doc_id"/, 'a NULL key');
co(q{CREATE ROLE nobody LOGIN});
($ret, $out, $err) = $co->psql('postgres', q{SET ROLE nobody; SELECT * FROM fs_get_many(NULL::fstore_online.ds, ARRAY[1]::bigint[])});
like($err, qr/permission denied/, 'privileges are checked on the coordinator');

# monitoring
is(co(q{SELECT string_agg(shard || ':' || reachable || ':' || (online_rows > 0), ',') FROM fs_shard_status() WHERE view_name = 'ds'}),
	's1:true:true,s2:true:true,s3:true:true', 'fs_shard_status: every shard reachable');

# ---------------------------------------------------------------------------
# A shard stops
# ---------------------------------------------------------------------------

# keys of each shard
my %on;
for my $i (0 .. 2)
{
	$on{ $i + 1 } = [ split /\n/, $shards[$i]->safe_psql('postgres', 'SELECT doc_id FROM fstore_online.ds ORDER BY doc_id LIMIT 3') ];
}
my $before = co(q{SELECT string_agg(f::text, ';') FROM fs_get_many(NULL::fstore_online.ds, (SELECT array_agg(doc_id ORDER BY doc_id) FROM fstore_online.ds_u)) f});
$shards[1]->stop;
co_fails(qq{SELECT * FROM fs_get_many(NULL::fstore_online.ds, ARRAY[$on{1}[0], $on{2}[0]]::bigint[])},
	qr/shard "s2" is unavailable/, 'a read needing the stopped shard');
is(co(qq{SELECT string_agg(doc_id::text, ',') FROM fs_get_many(NULL::fstore_online.ds, ARRAY[$on{1}[0], $on{3}[0]]::bigint[]) WHERE event_ts IS NOT NULL}),
	"$on{1}[0],$on{3}[0]", 'a read of the other shards still answers');
my $w = qq{SELECT fs_write('ds<S>', ARRAY[ROW($on{1}[1], 5555, 0, NULL, 'outage', '$t0'), ROW($on{2}[1], 5555, 0, NULL, 'outage', '$t0')]::fstore_online.ds<S>[])::text};
(my $ws = $w) =~ s/<S>//g;
(my $wu = $w) =~ s/<S>/_u/g;
my $state = co(q{SELECT last_event_ts, last_write FROM fstore.freshness WHERE view_name = 'ds'});
co_fails($ws, qr/shard "s2" is unavailable/, 'a write needing the stopped shard');
is(co(q{SELECT last_event_ts, last_write FROM fstore.freshness WHERE view_name = 'ds'}),
	$state, 'the failed write changed nothing on the coordinator');
# documented: a shard that was sent its rows before the failure keeps them
is($shards[0]->safe_psql('postgres', "SELECT views FROM fstore_online.ds WHERE doc_id = $on{1}[1]"),
	'5555', 'the rows of a shard asked before the failure stay applied');
is(co(q{SELECT string_agg(shard || ':' || reachable, ',') FROM fs_shard_status() WHERE view_name = 'ds'}),
	's1:true,s2:false,s3:true', 'fs_shard_status shows the outage');
$shards[1]->start;
is(co(qq{SELECT count(*) FROM fs_get_many(NULL::fstore_online.ds, ARRAY[$on{2}[0]]::bigint[]) WHERE event_ts IS NOT NULL}),
	'1', 'reads work again once the shard is back');
# the documented recovery: run the failed call again
is(co($ws), '(1,1,0)', 'the failed write, run again, applies the rest');
is(co($wu), '(2,0,0)', 'the unsharded copy gets the same write');
is(co(q{SELECT string_agg(f::text, ';') FROM fs_get_many(NULL::fstore_online.ds, (SELECT array_agg(doc_id ORDER BY doc_id) FROM fstore_online.ds_u)) f}),
	co(q{SELECT string_agg(f::text, ';') FROM fs_get_many(NULL::fstore_online.ds_u, (SELECT array_agg(doc_id ORDER BY doc_id) FROM fstore_online.ds_u)) f}),
	'after the restart every key reads as the unsharded copy');
both(q{SELECT md5(string_agg(x::text, ';' ORDER BY x::text)) FROM (SELECT doc_id, views, ctr, tags, note, event_ts FROM fstore_offline.ds<S>) x},
	'and the history is complete');
isnt($before, '', 'answers were compared');

# dropping
co(q{SELECT fs_drop_sharded_feature_view('ds_ttl', on_shards => true)});
is($shards[0]->safe_psql('postgres', q{SELECT count(*) FROM fstore.feature_views WHERE name = 'ds_ttl'}), '0',
	'a sharded view dropped everywhere');

# adding a shard and rebalancing, offline, as docs/scale-out.md says
my $s4 = PostgreSQL::Test::Cluster->new('shard4');
$s4->init;
$s4->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore'
fstore.cache_size = '16MB'
});
$s4->start;
$s4->safe_psql('postgres', 'CREATE EXTENSION fstore');
push @shards, $s4;
co(sprintf(q{SELECT fs_add_shard('s4', 'host=''%s'' port=%d dbname=postgres')}, $s4->host, $s4->port));
my $reads = q{SELECT md5(string_agg(f::text, ';')) FROM fs_get_many(NULL::fstore_online.ds<S>, (SELECT array_agg(doc_id ORDER BY doc_id) FROM fstore_online.ds_u)) f};
(my $rs = $reads) =~ s/<S>//g;
my $hist = q{SELECT md5(string_agg(x::text, ';' ORDER BY x::text)) FROM fstore_offline.ds x};
my ($r0, $h0) = (co($rs), co($hist));
co(q{
	CREATE TABLE keep_o AS SELECT * FROM fstore_shard.ds;
	CREATE TABLE keep_h AS SELECT * FROM fstore_offline.ds;
	SELECT fs_drop_sharded_feature_view('ds', on_shards => true);
	SELECT count(*) FROM fs_create_sharded_feature_view('ds', 'doc', 'views int, ctr real, tags text[], note text',
		shards => ARRAY['s1', 's2', 's3', 's4']);
	INSERT INTO fstore_shard.ds SELECT * FROM keep_o;
	INSERT INTO fstore_offline.ds SELECT * FROM keep_h;
});
is(co($rs), $r0, 'after rebalancing over 4 shards every key reads the same');
is(co($hist), $h0, 'and the history is the same, created_at included');
ok($s4->safe_psql('postgres', 'SELECT count(*) FROM fstore_online.ds') > 50, 'the new shard holds its part');
is(co(q{SELECT count(*) FROM fs_get_many(NULL::fstore_online.ds, ARRAY[1, 2, 3]::bigint[]) f WHERE event_ts IS NOT NULL}), '3',
	'the shards serve the moved keys from their own tables');
is(co(q{SELECT fs_write('ds', ARRAY[ROW(1, 12, 0.1, NULL, 'x', now())]::fstore_online.ds[])::text}), '(0,1,0)',
	'change detection sees the moved values');

$co->stop;
$_->stop for @shards;
done_testing();
