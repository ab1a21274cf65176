# pg_dump of a database with entities, views, services and data, restored
# into a fresh database, gives the same catalogs and the same answers.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'fstore'");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_entity('user_doc', 'user_id bigint, doc_id text');
	CREATE SCHEMA raw;
	CREATE TABLE raw.doc_daily (doc_id bigint, event_ts timestamptz, score real);
	SELECT fs_create_feature_view('doc_stats', 'doc', 'views_7d int, ctr real, embedding real[]',
	                              ttl => interval '30 days');
	SELECT fs_create_feature_view('doc_daily', 'doc', source => 'raw.doc_daily'::regclass);
	SELECT fs_create_feature_view('ud', 'user_doc', 'clicks int');
	SELECT fs_create_feature_service('ranker_v1',
	    ARRAY['doc_stats.views_7d', 'doc_stats.ctr', 'doc_daily.score AS s']);
	SELECT fs_write_query('doc_stats',
	    'SELECT g, g % 7, g / 100.0, ARRAY[g, g + 1]::real[], now() - (g % 3) * interval ''1 day''
	       FROM generate_series(1, 2000) g');
	SELECT fs_write_query('doc_stats',
	    'SELECT g, g % 5, g / 100.0, ARRAY[g, g + 1]::real[], now() FROM generate_series(1, 2000, 3) g');
	SELECT fs_write_query('doc_daily', 'SELECT g, g * 0.5, now() FROM generate_series(1, 1000) g');
	SELECT fs_write('ud', ARRAY[ROW(1, 'a', 3, now()), ROW(2, 'b', 4, now())]::fstore_online.ud[]);
	-- a service across entities with a derived feature calling a function
	-- of another schema (stored qualified)
	SELECT fs_create_entity('usr', 'user_id bigint');
	SELECT fs_create_feature_view('u', 'usr', 'age int');
	SELECT fs_write('u', ARRAY[ROW(1, 30, now()), ROW(2, 40, now())]::fstore_online.u[]);
	CREATE FUNCTION raw.boost(real) RETURNS real LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 10';
	SELECT fs_create_feature_service('ranker_x', ARRAY['u.age', 'doc_stats.ctr'],
	    derived => ARRAY['raw.boost(ctr) + coalesce(age, 0) AS z']);
});

my $answers = q{
	SELECT string_agg(format('%s', r), E'\n') FROM
	  (SELECT * FROM fs_get_many(NULL::fstore_online.ranker_v1,
	                             (SELECT array_agg(g::bigint ORDER BY g DESC) FROM generate_series(0, 2100, 7) g))) r;
};
my $ud = q{SELECT string_agg(format('%s', r), ',') FROM
	fs_get_many(NULL::fstore_online.ud, ARRAY[(1,'a'), (2,'b'), (3,'c')]::fstore.user_doc_key[]) r};
my $catalogs = q{
	SELECT (SELECT string_agg(format('%s', e), ';' ORDER BY name) FROM (SELECT name, key_columns, key_types, key_type FROM fstore.entities) e)
	    || (SELECT string_agg(format('%s', v), ';' ORDER BY view_id) FROM (SELECT view_id, name, entity, source, timestamp_column, ttl FROM fstore.feature_views) v)
	    || (SELECT string_agg(format('%s', f), ';' ORDER BY view_name, position) FROM fstore.features f)
	    || (SELECT string_agg(format('%s', s), ';' ORDER BY service, position) FROM fstore.service_features s);
};
my $history = q{SELECT count(*), sum(views_7d), count(DISTINCT doc_id) FROM fstore_offline.doc_stats};
my $across = q{SELECT string_agg(format('%s', r), ',') FROM fs_get_many(NULL::fstore_online.ranker_x,
	ARRAY[ROW(1, 100), ROW(2, 5), ROW(NULL, 7), ROW(3, NULL)]::fstore.ranker_x_request[]) r};

my %before = (
	answers => $node->safe_psql('src', $answers),
	ud => $node->safe_psql('src', $ud),
	catalogs => $node->safe_psql('src', $catalogs),
	history => $node->safe_psql('src', $history),
	across => $node->safe_psql('src', $across));
is($before{across}, '(1,100,30,1,40),(2,5,40,0.05,40.5),(,7,,0.07,0.699999988079071),(3,,,,)',
	'a service across entities answers');
ok(length($before{answers}) > 1000, 'source database answers lookups');

my $dump = $node->basedir . '/src.dump';
$node->command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src')], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok(['pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump],
	'pg_restore into a fresh database');

is($node->safe_psql('dst', $catalogs), $before{catalogs}, 'catalogs restored');
is($node->safe_psql('dst', $answers), $before{answers}, 'service lookups give the same answers');
is($node->safe_psql('dst', $ud), $before{ud}, 'composite-key lookups give the same answers');
is($node->safe_psql('dst', $history), $before{history}, 'history restored');
is($node->safe_psql('dst', $across), $before{across}, 'a service across entities with a derived feature, restored');

# the restored database keeps working: writes, new views with fresh ids
is($node->safe_psql('dst', q{SELECT written FROM fs_write('doc_stats',
	ARRAY[ROW(1, 1000, 0.5, NULL, now())]::fstore_online.doc_stats[])}), '1', 'fs_write after restore');
is($node->safe_psql('dst', q{SELECT views_7d FROM fs_get_many(NULL::fstore_online.doc_stats, ARRAY[1]::bigint[])}),
	'1000', 'lookup sees the write');
$node->safe_psql('dst', q{SELECT fs_create_feature_view('newer', 'doc', 'x int')});
is($node->safe_psql('dst', q{SELECT count(DISTINCT view_id) FROM fstore.feature_views}), '5',
	'a new view gets an unused id');
$node->safe_psql('dst', q{SELECT fs_drop_feature_service('ranker_v1'); SELECT fs_drop_feature_view('doc_daily')});
is($node->safe_psql('dst', q{SELECT count(*) FROM fstore.feature_views}), '4', 'drop after restore');

$node->stop;
done_testing();
