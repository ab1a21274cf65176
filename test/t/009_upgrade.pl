# Upgrades.  A database made with the first release of fstore, holding
# entities (one with a composite key), feature views (with a ttl, with a
# source table, with a source query), a service, online and history rows,
# streamed events and a dead letter, materialization runs, a training set
# and pg_cron jobs, and privileges granted by hand, is updated to every
# later version in turn with ALTER EXTENSION fstore UPDATE TO.  After each
# step:
#   (a) the extension is what CREATE EXTENSION of that version (and the
#       same grants) makes in an empty database: every member compared by
#       its full definition (functions, views, tables with their columns,
#       defaults, constraints, triggers and indexes, sequences, schemas,
#       privileges and initial privileges, configuration tables,
#       dependencies), and pg_dump still dumps the grants;
#   (b) every answer recorded before the first update is the same, and the
#       pg_cron jobs run what that version's fs_schedule_materialize makes;
# and after the last one (c) the database keeps working: writes, reads,
# streaming, materialization by the job's command, a new view and a new
# training set.  A second database goes from the first version to the
# current one with a single ALTER EXTENSION fstore UPDATE, without pg_cron
# and with what 0.1 allowed and 0.2 does not (see there).
#
# Keep this test for every later version: add the version to @versions
# (after its update script).  The answers are queries written against the
# first version's API; what a version may change on purpose is compared
# with a fresh database of that version instead (the training-set SQL).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use IPC::Run;

# every version, oldest first
my @versions = ('0.1', '0.2');

my $t_start = time;
my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
# queues are drained by fs_stream_apply only, so every answer is
# deterministic
fstore.stream_workers = 0
});
$node->start;

# pg_cron can only live in cron.database_name
my $db = 'postgres';
$node->safe_psql($db, "CREATE EXTENSION pg_cron; CREATE EXTENSION fstore VERSION '$versions[0]'");
is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'fstore'}),
	$versions[0], "installed version $versions[0]");

# the clock of the data: times are relative to it, far from ttl boundaries
my $t0 = $node->safe_psql($db, q{SELECT date_trunc('second', now())});

sub sql
{
	my ($text) = @_;
	$text =~ s/<T0>/'$t0'::timestamptz/g;
	$text =~ s/<T0S>/$t0/g;    # inside a string literal
	return $text;
}

# ---------------------------------------------------------------------------
# Feature definitions (also made in the fresh databases) and data
# ---------------------------------------------------------------------------

my $define = sql(q{
	CREATE SCHEMA raw;
	CREATE TABLE raw.doc_daily (doc_id bigint, event_ts timestamptz, score real, label text);
	CREATE INDEX ON raw.doc_daily (event_ts);
	CREATE TABLE raw.clicks (user_id bigint, doc_id text, event_ts timestamptz, clicks int);
	CREATE INDEX ON raw.clicks (event_ts);
	CREATE TABLE raw.labels (doc_id bigint, event_ts timestamptz, y bool);
	CREATE TABLE raw.ud_labels (user_id bigint, doc_id text, event_ts timestamptz);
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_entity('user_doc', 'user_id bigint, doc_id text');
	SELECT fs_create_feature_view('doc_stats', 'doc', 'views_7d int, ctr real, embedding real[]',
	                              ttl => interval '30 days');
	SELECT fs_create_feature_view('doc_daily', 'doc', source => 'raw.doc_daily'::regclass);
	SELECT fs_create_feature_view('ud_clicks', 'user_doc', source_query =>
	    'SELECT c.user_id, c.doc_id, c.event_ts, c.clicks * 2 AS clicks2 FROM raw.clicks c WHERE c.clicks >= 0');
	SELECT fs_create_feature_service('ranker',
	    ARRAY['doc_stats.views_7d', 'doc_stats.ctr', 'doc_daily.score AS s']);
});

my $populate = sql(q{
	INSERT INTO raw.doc_daily
	SELECT g % 100 + 1, <T0> - interval '10 days' + g * interval '1 hour', g / 4.0, 'l' || g % 3
	  FROM generate_series(1, 200) g;
	INSERT INTO raw.clicks
	SELECT g % 20, 'd' || g % 7, <T0> - interval '5 days' + g * interval '10 minutes', g % 4
	  FROM generate_series(1, 300) g;
	INSERT INTO raw.labels
	SELECT g, <T0> - (g % 5) * interval '1 day' + interval '1 minute', g % 2 = 0 FROM generate_series(1, 60) g;
	INSERT INTO raw.ud_labels
	SELECT g % 20, 'd' || g % 7, <T0> - (g % 4) * interval '1 day' FROM generate_series(1, 40) g;

	-- online and history rows: written, changed, confirmed, expired (ttl)
	SELECT fs_write_query('doc_stats',
	    'SELECT g::bigint, g % 7, (g / 100.0)::real, ARRAY[g, g + 1]::real[],
	            ''<T0S>''::timestamptz - (g % 3) * interval ''1 day''
	                 - CASE WHEN g % 10 = 0 THEN interval ''60 days'' ELSE interval ''0'' END
	       FROM generate_series(1, 300) g');
	SELECT fs_write_query('doc_stats',
	    'SELECT g::bigint, g % 5, (g / 100.0)::real, NULL::real[], ''<T0S>''::timestamptz - interval ''1 hour''
	       FROM generate_series(1, 300, 3) g');
	SELECT fs_write('doc_stats', ARRAY[ROW(1001, 1, 0.5, '{1,2}', <T0>)]::fstore_online.doc_stats[]);
	-- materialization runs from a source table and a source query
	SELECT fs_materialize('doc_daily');
	SELECT fs_materialize('ud_clicks');
	-- streamed events, one of them a dead letter (NULL key)
	INSERT INTO fstore_stream.doc_stats VALUES
	    (5, 500, 0.05, '{5}', <T0> - interval '30 minutes'),
	    (NULL, 1, 0.1, NULL, <T0>),
	    (7, 700, 0.07, NULL, <T0> - interval '20 minutes');
	INSERT INTO fstore_stream.ud_clicks VALUES (1, 'd1', 99, <T0> - interval '1 minute');
	SELECT fs_stream_apply('doc_stats');
	SELECT fs_stream_apply('ud_clicks');
	SELECT fs_set_freshness_target('doc_daily', interval '1 hour');
	-- a training set
	SELECT fs_create_training_set('ts1', 'SELECT l.doc_id, l.event_ts, l.y FROM raw.labels l',
	    ARRAY['doc_stats.views_7d', 'doc_stats.ctr', 'doc_daily.*'], strategy => 'lateral');
});

# privileges set by hand (a restore of a dump of the database sets them
# again after CREATE EXTENSION: the fresh databases get them too); named
# without arguments, as functions whose parameters a version changes are
# created anew with the privileges of the old ones
my $grants = q{
	GRANT EXECUTE ON FUNCTION fstore._lock_catalog(), fstore._check_name(text, text, int),
	    fs_create_entity TO feature_admin;
	REVOKE EXECUTE ON FUNCTION fs_schedule_materialize FROM PUBLIC;
};
$node->safe_psql($db, 'CREATE ROLE feature_admin');
$node->safe_psql($db, $grants);
$node->safe_psql($db, $define);
$node->safe_psql($db, $populate);
is($node->safe_psql($db, q{SELECT count(*) FROM fstore.dead_letters}), '1', 'a dead letter');
is($node->safe_psql($db, q{SELECT count(*) FROM fstore.materialization_runs}), '2', 'two runs');

# pg_cron: a job as fs_schedule_materialize makes it, and one whose command
# its owner changed (an update must leave that one alone)
$node->safe_psql($db, q{
	SELECT fs_schedule_materialize('doc_daily', '0 0 1 1 *');
	SELECT fs_schedule_materialize('ud_clicks', '0 0 1 1 *');
	SELECT cron.alter_job(jobid, command =>
	    'SELECT * FROM public.fs_materialize(''ud_clicks'', until => now() - interval ''1 hour'')')
	  FROM cron.job WHERE jobname = 'fstore_materialize_ud_clicks';
});

# ---------------------------------------------------------------------------
# The answers
# ---------------------------------------------------------------------------

# rows of a query as sorted text
sub rows_of
{
	my ($query) = @_;
	return "SELECT count(*) || E'\\n' || coalesce(string_agg(format('%s', fs_r), E'\\n' ORDER BY format('%s', fs_r)), '')"
	  . " FROM ($query) fs_r";
}

my $keys = 'ARRAY[1, 2, 3, 5, 7, 10, 20, 150, 1001, 99999]::bigint[]';
my @answers = (
	[ 'lookups of a view with a ttl',
		"SELECT string_agg(format('%s', r), E'\\n') FROM fs_get_many(NULL::fstore_online.doc_stats, $keys) r" ],
	[ 'lookups of a view with a source table',
		"SELECT string_agg(format('%s', r), E'\\n') FROM fs_get_many(NULL::fstore_online.doc_daily, $keys) r" ],
	[ 'lookups of a service',
		"SELECT string_agg(format('%s', r), E'\\n') FROM fs_get_many(NULL::fstore_online.ranker, $keys) r" ],
	[ 'packed lookups of a service',
		"SELECT md5(fs_get_many_packed(NULL::fstore_online.ranker, $keys))" ],
	[ 'lookups of a composite key',
		q{SELECT string_agg(format('%s', r), E'\n') FROM fs_get_many(NULL::fstore_online.ud_clicks,
		    ARRAY[(1, 'd1'), (2, 'd2'), (3, 'd3'), (1, 'nope')]::fstore.user_doc_key[]) r} ],
	(map {
		my $v = $_;
		([ "online table $v", rows_of("SELECT * FROM fstore_online.$v") ],
		 [ "history $v", rows_of("SELECT * FROM fstore_offline.$v") ],
		 [ "queue $v", "SELECT count(*) FROM fstore_stream.$v" ])
	} qw(doc_stats doc_daily ud_clicks)),
	[ 'catalogs',
		# feature_services and materialization_runs: the columns of 0.1 (0.2
		# adds request types and derived features, checked after the update
		# below, and the status, lookback and error of runs)
		'SELECT ' . join(" || E'\\n' || ", map { "(" . rows_of($_) . ")" }
			(map { "SELECT * FROM fstore.$_" }
				qw(entities feature_views features service_features view_state
				   dead_letters training_sets)),
			'SELECT name, entity, created_at FROM fstore.feature_services',
			'SELECT run_id, view_name, since, until, read, written, unchanged, late, started_at, finished_at'
			  . ' FROM fstore.materialization_runs') ],
	[ 'sequences', q{SELECT (SELECT last_value FROM fstore.feature_views_view_id_seq)
		|| ' ' || (SELECT last_value FROM fstore.dead_letters_id_seq)
		|| ' ' || (SELECT last_value FROM fstore.materialization_runs_run_id_seq)} ],
	[ 'training set table', rows_of('SELECT * FROM fstore_training.ts1') ],
	[ 'statistics (but lookups and cache)',
		rows_of(q{SELECT view_name, rows_written, rows_unchanged, rows_late, stream_applied,
		                 queue_depth, stream_batches, dead_letters FROM fstore.stats}) ],
	[ 'freshness (but the lags)',
		rows_of(q{SELECT view_name, last_event_ts, last_write, last_materialization, watermark,
		                 ttl, freshness_target, stale, queue_depth FROM fstore.freshness}) ],
	[ 'stale views',
		rows_of(q{SELECT view_name, last_event_ts, freshness_target FROM fs_check_freshness()}) ],
	[ 'types and tables outside the extension',
		rows_of(q{SELECT c.oid::regclass, c.relkind, c.reloptions,
		                 (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
		                                    || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		                                    || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''),
		                                    ', ' ORDER BY a.attnum)
		                    FROM pg_attribute a
		                    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
		                 (SELECT string_agg(pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text, ', ' ORDER BY t.tgname)
		                    FROM pg_trigger t WHERE t.tgrelid = c.oid),
		                 (SELECT string_agg(pg_get_indexdef(i.indexrelid), ', ' ORDER BY i.indexrelid::regclass::text)
		                    FROM pg_index i WHERE i.indrelid = c.oid)
		            FROM pg_class c
		           WHERE c.relnamespace IN ('fstore'::regnamespace, 'fstore_online'::regnamespace,
		                                    'fstore_offline'::regnamespace, 'fstore_stream'::regnamespace,
		                                    'fstore_training'::regnamespace)
		             AND c.relkind IN ('r', 'c')
		             AND c.relname NOT LIKE '%\\_request'
		             AND NOT EXISTS (SELECT 1 FROM pg_depend x
		                              WHERE x.classid = 'pg_class'::regclass AND x.objid = c.oid
		                                AND x.refclassid = 'pg_extension'::regclass)}) ],
);

# the SQL of training sets, by both strategies
my @training = (
	[ q{'SELECT l.doc_id, l.event_ts, l.y FROM raw.labels l'},
	  q{ARRAY['doc_stats.views_7d', 'doc_stats.ctr', 'doc_daily.*']}, 'NULL' ],
	[ q{'SELECT u.user_id, u.doc_id, u.event_ts FROM raw.ud_labels u'},
	  q{ARRAY['ud_clicks.clicks2 AS c']}, "'$t0'::timestamptz - interval '2 hours'" ],
	[ q{'SELECT l.doc_id, l.event_ts FROM raw.labels l'}, q{ARRAY['ranker']}, "'$t0'" ],
);
my (@training_calls, %training_label);
for my $t (@training)
{
	for my $strategy ('lateral', 'hash')
	{
		my $call = "SELECT fs_training_set_query($t->[0], $t->[1], $t->[2], '$strategy')";
		push @training_calls, $call;
		$training_label{$call} = "$t->[1], $strategy";
	}
}

my (%before, %sql_before, %sql_rows);
$before{ $_->[0] } = $node->safe_psql($db, $_->[1]) for @answers;
for my $call (@training_calls)
{
	$sql_before{$call} = $node->safe_psql($db, $call);
	$sql_rows{$call} = $node->safe_psql($db, rows_of($sql_before{$call}));
}
like($before{'lookups of a view with a ttl'}, qr/\(7,700,0\.07,,.*\n.*\n\(99999,,,,\)/s,
	'lookups see streamed values and miss unknown keys');
like($before{'catalogs'}, qr/23502/, 'the dead letter is in the catalogs');
ok((grep { $sql_rows{$_} !~ /^0\n/ } keys %sql_rows) == @training_calls,
	'every training-set query gives rows');

my $jobs = q{SELECT string_agg(concat_ws('|', jobid, jobname, schedule, username, active, database),
	E'\n' ORDER BY jobid) FROM cron.job};
my $job_command = q{SELECT command FROM cron.job WHERE jobname = 'fstore_materialize_%s'};
my %jobs_before = (
	jobs => $node->safe_psql($db, $jobs),
	custom => $node->safe_psql($db, sprintf($job_command, 'ud_clicks')));

# ---------------------------------------------------------------------------
# The extension's description: every member, by definition
# ---------------------------------------------------------------------------

# an ACL with the extension owner's name replaced, sorted (the order of an
# ACL's items depends on the order of the grants, not on what they allow)
sub acl
{
	my ($acl, $owner) = @_;
	return "CASE WHEN $acl IS NULL THEN 'default' ELSE coalesce((SELECT string_agg(e, ' ' ORDER BY e) FROM ("
	  . "SELECT CASE a.grantee WHEN 0 THEN 'PUBLIC' WHEN $owner THEN 'OWNER' ELSE a.grantee::regrole::text END"
	  . " || '=' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END"
	  . " || '/' || CASE a.grantor WHEN $owner THEN 'OWNER' ELSE a.grantor::regrole::text END AS e"
	  . " FROM aclexplode($acl) AS a(grantor, grantee, privilege_type, is_grantable)) AS acl_items),"
	  . " 'none') END";
}

my $describe = q{
WITH ext AS (
    SELECT e.oid, e.extowner AS owner, e.extconfig, e.extcondition
      FROM pg_extension e WHERE e.extname = 'fstore'),
mem AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype::text = 'e'),
rels AS (
    SELECT c.* FROM pg_class c JOIN mem ON mem.classid = 'pg_class'::regclass AND mem.objid = c.oid),
-- the members and what belongs to the member relations
subs AS (
    SELECT classid, objid FROM mem
    UNION ALL SELECT 'pg_attrdef'::regclass, ad.oid FROM pg_attrdef ad JOIN rels r ON r.oid = ad.adrelid
    UNION ALL SELECT 'pg_constraint'::regclass, co.oid FROM pg_constraint co JOIN rels r ON r.oid = co.conrelid
    UNION ALL SELECT 'pg_trigger'::regclass, t.oid FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid
                                                  WHERE NOT t.tgisinternal  -- named by OID; see the constraints
    UNION ALL SELECT 'pg_class'::regclass, i.indexrelid FROM pg_index i JOIN rels r ON r.oid = i.indrelid
    UNION ALL SELECT 'pg_rewrite'::regclass, rw.oid FROM pg_rewrite rw JOIN rels r ON r.oid = rw.ev_class),
lines AS (
    SELECT 'extension fstore ' || e.extversion || ' in ' || e.extnamespace::regnamespace
           || ' relocatable ' || e.extrelocatable AS l
      FROM pg_extension e WHERE e.extname = 'fstore'
    UNION ALL
    SELECT 'member ' || o.type || ' ' || o.identity
      FROM mem, pg_identify_object(mem.classid, mem.objid, 0) o
    UNION ALL
    -- (pg_get_functiondef does not take aggregates: their parts instead)
    SELECT 'function ' || p.oid::regprocedure::text || E'\n'
           || CASE WHEN p.prokind = 'a'
                   THEN (SELECT format('aggregate sfunc %s stype %s finalfunc %s', a.aggtransfn::regprocedure,
                                       a.aggtranstype::regtype, a.aggfinalfn::regprocedure)
                           FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
                   ELSE pg_get_functiondef(p.oid) END
           || E'\nowner ' || CASE WHEN p.proowner = ext.owner THEN 'OWNER' ELSE p.proowner::regrole::text END
           || E'\nsecurity definer ' || p.prosecdef
           || E'\nconfig ' || coalesce(p.proconfig::text, 'none')
           || E'\nacl ' || ACL(p.proacl, ext.owner)
      FROM pg_proc p JOIN mem ON mem.classid = 'pg_proc'::regclass AND mem.objid = p.oid, ext
    UNION ALL
    SELECT 'schema ' || quote_ident(n.nspname)
           || ' owner ' || CASE WHEN n.nspowner = ext.owner THEN 'OWNER' ELSE n.nspowner::regrole::text END
           || ' acl ' || ACL(n.nspacl, ext.owner)
      FROM pg_namespace n JOIN mem ON mem.classid = 'pg_namespace'::regclass AND mem.objid = n.oid, ext
    UNION ALL
    SELECT 'type ' || t.oid::regtype::text || ' ' || t.typtype::text
           || ' owner ' || CASE WHEN t.typowner = ext.owner THEN 'OWNER' ELSE t.typowner::regrole::text END
           || ' acl ' || ACL(t.typacl, ext.owner)
      FROM pg_type t JOIN mem ON mem.classid = 'pg_type'::regclass AND mem.objid = t.oid, ext
    UNION ALL
    SELECT 'relation ' || r.oid::regclass::text || ' kind ' || r.relkind::text
           || ' persistence ' || r.relpersistence::text || ' options ' || coalesce(r.reloptions::text, 'none')
           || ' row security ' || r.relrowsecurity || '/' || r.relforcerowsecurity
           || ' owner ' || CASE WHEN r.relowner = ext.owner THEN 'OWNER' ELSE r.relowner::regrole::text END
           || ' acl ' || ACL(r.relacl, ext.owner)
      FROM rels r, ext
    UNION ALL
    SELECT 'column ' || r.oid::regclass::text || '.' || quote_ident(a.attname) || ' #' || a.attnum
           || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
           || ' identity "' || a.attidentity::text || '" generated "' || a.attgenerated::text || '"'
           || ' collation ' || coalesce(co.collname, '-')
           -- but the attribute version that PostgreSQL 15.20 and later keep there
           || ' options ' || coalesce((SELECT array_agg(o ORDER BY o) FROM unnest(a.attoptions) o
                                        WHERE o NOT LIKE 'pg\_attver=%')::text, 'none')
           || ' acl ' || ACL(a.attacl, ext.owner)
      FROM rels r
      JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
      LEFT JOIN pg_collation co ON co.oid = a.attcollation, ext
    UNION ALL
    SELECT 'view ' || r.oid::regclass::text || E'\n' || pg_get_viewdef(r.oid)
      FROM rels r WHERE r.relkind::text IN ('v', 'm')
    UNION ALL
    SELECT 'constraint ' || quote_ident(co.conname) || ' on ' || r.oid::regclass::text
           || ' ' || pg_get_constraintdef(co.oid)
           || ' deferrable ' || co.condeferrable || ' validated ' || co.convalidated
      FROM rels r JOIN pg_constraint co ON co.conrelid = r.oid
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
      FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
           || ' options ' || coalesce(ic.reloptions::text, 'none')
           || ' clustered ' || i.indisclustered || ' replica identity ' || i.indisreplident
      FROM rels r JOIN pg_index i ON i.indrelid = r.oid JOIN pg_class ic ON ic.oid = i.indexrelid
    UNION ALL
    SELECT 'sequence ' || r.oid::regclass::text || ' ' || format_type(s.seqtypid, NULL)
           || ' start ' || s.seqstart || ' increment ' || s.seqincrement || ' max ' || s.seqmax
           || ' min ' || s.seqmin || ' cache ' || s.seqcache || ' cycle ' || s.seqcycle
      FROM rels r JOIN pg_sequence s ON s.seqrelid = r.oid
    UNION ALL
    SELECT 'configuration table ' || x.rel::regclass::text || ' condition ' || quote_literal(x.cond)
      FROM ext, unnest(ext.extconfig, ext.extcondition) AS x(rel, cond)
    UNION ALL
    SELECT 'initial privileges ' || pg_describe_object(i.classoid, i.objoid, i.objsubid)
           || ' ' || i.privtype::text || ' ' || ACL(i.initprivs, ext.owner)
      FROM pg_init_privs i JOIN subs ON subs.classid = i.classoid AND subs.objid = i.objoid, ext
    UNION ALL
    SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ' ' || d.description
      FROM pg_description d JOIN subs ON subs.classid = d.classoid AND subs.objid = d.objoid
    UNION ALL
    SELECT 'dependency ' || pg_describe_object(d.classid, d.objid, d.objsubid)
           || ' -> ' || pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) || ' ' || d.deptype::text
      FROM pg_depend d JOIN subs ON subs.classid = d.classid AND subs.objid = d.objid
     WHERE d.refclassid <> 'pg_extension'::regclass)
SELECT string_agg(l, E'\n@@\n' ORDER BY l) FROM lines;
};
$describe =~ s/ACL\(([^()]*), ([^()]*)\)/acl($1, $2)/ge;

sub describe
{
	my ($dbname) = @_;
	return split /\n\@\@\n/, $node->safe_psql($dbname, $describe);
}

# (a): the entries one database has and the other has not, as text
sub compare_extension
{
	my ($updated, $fresh, $label) = @_;
	my @u = describe($updated);
	my @f = describe($fresh);
	my %count;
	$count{$_}++ for @u;
	$count{$_}-- for @f;
	my @diff = map { ($count{$_} > 0 ? "only after the update:\n" : "only in a fresh install:\n") . $_ }
	  grep { $count{$_} != 0 } sort keys %count;
	ok(@u > 200, "$label: the extension has " . scalar(@u) . ' entries');
	is(join("\n\n", @diff), '', "$label: the extension is that of a fresh install");
}

# ---------------------------------------------------------------------------
# Update, one version at a time
# ---------------------------------------------------------------------------

for my $i (1 .. $#versions)
{
	my $v = $versions[$i];
	my $fresh = 'fresh_' . ($v =~ s/\W/_/gr);

	my $t = time;
	my ($ret, $out, $err) = $node->psql($db, "ALTER EXTENSION fstore UPDATE TO '$v'", on_error_stop => 1);
	my $took = time - $t;
	is($ret, 0, "ALTER EXTENSION fstore UPDATE TO '$v'") or diag($err);
	is($err, '', "$v: no warning") if $ret == 0;
	note(sprintf('update %s -> %s took %.2f s', $versions[$i - 1], $v, $took));
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'fstore'}),
		$v, "$v: installed");

	# (a) the extension
	$node->safe_psql('postgres', "CREATE DATABASE $fresh");
	$node->safe_psql($fresh, "CREATE EXTENSION fstore VERSION '$v'");
	$node->safe_psql($fresh, $grants);
	compare_extension($db, $fresh, $v);
	my ($dump) = run_command(['pg_dump', '--schema-only', '-d', $node->connstr($db)]);
	for my $f ('fstore._lock_catalog()', 'fstore._check_name(p_name text, p_kind text, p_maxlen integer)',
		'public.fs_create_entity(name text, keys text')
	{
		like($dump, qr/^GRANT ALL ON FUNCTION \Q$f\E[^;]* TO feature_admin;$/m, "$v: pg_dump dumps the grant on $f");
	}
	like($dump, qr/^REVOKE ALL ON FUNCTION public\.fs_schedule_materialize\([^;]* FROM PUBLIC;$/m,
		"$v: pg_dump dumps the revoke on fs_schedule_materialize");

	# (b) the answers
	for my $a (@answers)
	{
		is($node->safe_psql($db, $a->[1]), $before{ $a->[0] }, "$v: $a->[0]");
	}
	if ($v eq '0.2')
	{
		# services of 0.1 got their request type: the entity's keys
		is($node->safe_psql($db, q{SELECT s.name || ' ' || s.request_type::text || ' '
		        || (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
		              FROM pg_attribute a WHERE a.attrelid = s.request_type::text::regclass AND a.attnum > 0)
		      FROM fstore.feature_services s ORDER BY s.name}),
			'ranker fstore.ranker_request doc_id bigint', "$v: request type of a service of 0.1");
		is($node->safe_psql($db, "SELECT string_agg(format('%s', r), E'\\n') FROM fs_get_many(NULL::fstore_online.ranker,
		        (SELECT array_agg(ROW(k)::fstore.ranker_request) FROM unnest($keys) k)) r"),
			$before{'lookups of a service'}, "$v: lookups of a service by request");
	}

	# the training-set SQL is that of a fresh install, and gives the same rows
	$node->safe_psql($fresh, $define);
	for my $call (@training_calls)
	{
		my $text = $node->safe_psql($db, $call);
		my $label = $training_label{$call};
		is($text, $node->safe_psql($fresh, $call), "$v: training-set SQL ($label) as a fresh install makes it");
		is($node->safe_psql($db, rows_of($text)), $sql_rows{$call}, "$v: it gives the same rows ($label)");
		is($node->safe_psql($db, rows_of($sql_before{$call})), $sql_rows{$call},
			"$v: so does the SQL of $versions[0] ($label)");
	}

	# pg_cron: jobs kept, the one fstore made runs what this version's
	# fs_schedule_materialize makes (scheduling again rewrites the command
	# of the job of the same name and owner), the changed one is untouched
	is($node->safe_psql($db, $jobs), $jobs_before{jobs}, "$v: pg_cron jobs kept");
	is($node->safe_psql($db, sprintf($job_command, 'ud_clicks')), $jobs_before{custom},
		"$v: a job whose command was changed is left alone");
	my $command = $node->safe_psql($db, sprintf($job_command, 'doc_daily'));
	$node->safe_psql($db, q{SELECT fs_schedule_materialize('doc_daily', '0 0 1 1 *')});
	is($node->safe_psql($db, $jobs), $jobs_before{jobs}, "$v: scheduling again keeps the job");
	is($command, $node->safe_psql($db, sprintf($job_command, 'doc_daily')),
		"$v: the job runs what fs_schedule_materialize makes");
	note("$v: job command: $command");
}

is($node->safe_psql($db, q{SELECT default_version FROM pg_available_extensions WHERE name = 'fstore'}),
	$versions[-1], 'the last version is the default one: @versions is complete');

# ---------------------------------------------------------------------------
# (c) the updated database keeps working
# ---------------------------------------------------------------------------

# writes and reads
is($node->safe_psql($db, sql(q{SELECT written FROM fs_write('doc_stats',
	ARRAY[ROW(2, 2000, 0.2, NULL, <T0> + interval '1 minute')]::fstore_online.doc_stats[])})),
	'1', 'fs_write');
is($node->safe_psql($db, q{SELECT string_agg(coalesce(views_7d::text, '-'), ',')
	FROM fs_get_many(NULL::fstore_online.doc_stats, ARRAY[2, 3, 424242]::bigint[])}),
	'2000,3,-', 'fs_get_many sees it');

# streaming, with a dead letter
$node->safe_psql($db, sql(q{
	INSERT INTO fstore_stream.doc_stats VALUES (8, 800, 0.8, NULL, <T0> + interval '2 minutes'),
	                                           (NULL, 0, 0, NULL, <T0>);
	INSERT INTO fstore_stream.ud_clicks VALUES (2, 'd2', 1234, <T0> + interval '2 minutes');
}));
is($node->safe_psql($db, q{SELECT string_agg(view_name || ':' || queue_depth, ',' ORDER BY view_name)
	FROM fstore.stats WHERE queue_depth > 0}), 'doc_stats:2,ud_clicks:1', 'queue depths');
is($node->safe_psql($db, q{SELECT count(*) FROM fstore.freshness WHERE queue_stalled}), '0',
	'no queue stalled');
is($node->safe_psql($db, q{SELECT events || '/' || applied || '/' || dead_letters FROM fs_stream_apply('doc_stats')}),
	'2/1/1', 'fs_stream_apply');
is($node->safe_psql($db, q{SELECT applied FROM fs_stream_apply('ud_clicks')}), '1', 'fs_stream_apply (composite key)');
is($node->safe_psql($db, q{SELECT views_7d || ',' || ctr FROM fs_get_many(NULL::fstore_online.ranker, ARRAY[8]::bigint[])}),
	'800,0.8', 'streamed value read through the service');
is($node->safe_psql($db, q{SELECT clicks2 FROM fs_get_many(NULL::fstore_online.ud_clicks, ARRAY[(2, 'd2')]::fstore.user_doc_key[])}),
	'1234', 'streamed value read by composite key');
is($node->safe_psql($db, q{SELECT count(*) FROM fstore.dead_letters}), '2', 'a new dead letter');

is($node->safe_psql($db, q{SELECT view_name || ' ' || problem FROM fs_check_freshness()}),
	'doc_daily stale', 'fs_check_freshness');

# materialization, by the pg_cron job's command
# (after the watermark, which the last run set to its start)
$node->safe_psql($db, q{INSERT INTO raw.doc_daily VALUES (1, now(), 42, 'new')});
my $command = $node->safe_psql($db, sprintf($job_command, 'doc_daily'));
is($node->safe_psql($db, "SELECT read || '/' || written FROM ($command) r"), '1/1',
	"the job's command materializes");
is($node->safe_psql($db, q{SELECT count(*) FROM fstore.materialization_runs}), '3', 'the run is recorded');
is($node->safe_psql($db, q{SELECT count(*) FROM fs_check_freshness()}), '0', 'and the view is fresh');
is($node->safe_psql($db, q{SELECT score || ' ' || label FROM fs_get_many(NULL::fstore_online.doc_daily, ARRAY[1]::bigint[])}),
	'42 new', 'lookups see the materialized row');

# a new training set, a new view, drops
is($node->safe_psql($db, q{SELECT fs_create_training_set('ts2', 'SELECT l.doc_id, l.event_ts, l.y FROM raw.labels l',
	ARRAY['ranker', 'doc_daily.label AS dl'], strategy => 'hash')}), '60', 'a new training set');
is($node->safe_psql($db, rows_of('SELECT * FROM fstore_training.ts2')),
	$node->safe_psql($db, rows_of($node->safe_psql($db, q{SELECT query FROM fstore.training_sets WHERE name = 'ts2'}))),
	'its rows are those of its query');
$node->safe_psql($db, q{
	SELECT fs_drop_training_set('ts1');
	SELECT fs_create_entity('page', 'url text');
	SELECT fs_create_feature_view('after_update', 'doc', 'x int');
});
is($node->safe_psql($db, q{SELECT view_id FROM fstore.feature_views WHERE name = 'after_update'}),
	'4', 'a new view takes the next id');
is($node->safe_psql($db, q{SELECT written FROM fs_write('after_update', ARRAY[ROW(1, 1, now())]::fstore_online.after_update[])}),
	'1', 'and can be written');
$node->safe_psql($db, q{
	SELECT fs_drop_feature_view('after_update');
	SELECT fs_drop_entity('page');
	SELECT fs_unschedule_materialize('doc_daily');
});
is($node->safe_psql($db, q{SELECT count(*) FROM cron.job}), '1', 'unscheduled');

# ---------------------------------------------------------------------------
# From the first version to the current one at once, without pg_cron, in
# a database where
#  - a function planted before CREATE EXTENSION bound into 0.1's view_id
#    default (public.nextval(text) beats nextval(regclass) for an untyped
#    literal): the update unbinds it;
#  - a view of the user's depends on fstore.freshness: the update fails,
#    and changes nothing, until it is dropped;
#  - a source query names its table without the schema, as 0.1 allowed:
#    after the update it fails until the name is qualified
#    (docs/operations.md, "Upgrading from 0.1").
# ---------------------------------------------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE direct');
$node->safe_psql('direct', q{
	CREATE FUNCTION public.nextval(text) RETURNS bigint LANGUAGE sql
	    AS $$ SELECT pg_catalog.nextval($1::pg_catalog.regclass) $$;
});
$node->safe_psql('direct', "CREATE EXTENSION fstore VERSION '$versions[0]'");
my $view_id_default = q{SELECT pg_describe_object(refclassid, refobjid, 0) FROM pg_depend
	WHERE classid = 'pg_attrdef'::regclass AND refclassid = 'pg_proc'::regclass
	  AND objid = (SELECT oid FROM pg_attrdef WHERE adrelid = 'fstore.feature_views'::regclass AND adnum = 1)};
is($node->safe_psql('direct', $view_id_default), 'function nextval(text)',
	"$versions[0]'s view_id default calls the planted function");
$node->safe_psql('direct', $grants . $define . $populate);
$node->safe_psql('direct', q{
	CREATE TABLE public.unq_src (doc_id bigint, event_ts timestamptz, a int);
	INSERT INTO public.unq_src VALUES (1, now(), 1);
	SELECT fs_create_feature_view('unq', 'doc', source_query => 'SELECT doc_id, event_ts, a FROM public.unq_src');
	UPDATE fstore.feature_views SET source_query = 'SELECT doc_id, event_ts, a FROM unq_src' WHERE name = 'unq';
	CREATE VIEW public.my_alerts AS SELECT view_name FROM fstore.freshness WHERE stale;
});
my $direct_before = $node->safe_psql('direct', $answers[0][1]);
my ($ret, $out, $err) = $node->psql('direct', 'ALTER EXTENSION fstore UPDATE');
like($err, qr/cannot drop view fstore\.freshness because other objects depend on it/,
	'a view of the user on fstore.freshness stops the update');
is($node->safe_psql('direct', q{SELECT extversion FROM pg_extension WHERE extname = 'fstore'}),
	$versions[0], 'which changed nothing');
$node->safe_psql('direct', 'DROP VIEW public.my_alerts');
($ret, $out, $err) = $node->psql('direct', 'ALTER EXTENSION fstore UPDATE', on_error_stop => 1);
is($ret, 0, "ALTER EXTENSION fstore UPDATE from $versions[0]") or diag($err);
is($err, '', 'no warning');
compare_extension('direct', 'fresh_' . ($versions[-1] =~ s/\W/_/gr), "$versions[0] -> $versions[-1]");
is($node->safe_psql('direct', $view_id_default), '', 'the default no longer calls the planted function');
$node->safe_psql('direct', 'DROP FUNCTION public.nextval(text)');
is($node->safe_psql('direct', $answers[0][1]), $direct_before, 'lookups unchanged');
$node->safe_psql('direct', q{SELECT fs_create_feature_view('after_update', 'doc', 'x int')});
is($node->safe_psql('direct', q{SELECT view_id FROM fstore.feature_views WHERE name = 'after_update'}),
	'5', 'a new view takes the next id');
($ret, $out, $err) = $node->psql('direct', q{SELECT fs_materialize('unq')});
like($err, qr/relation "unq_src" does not exist/, 'an unqualified source query fails');
$node->safe_psql('direct', q{UPDATE fstore.feature_views SET source_query = 'SELECT doc_id, event_ts, a FROM public.unq_src' WHERE name = 'unq'});
is($node->safe_psql('direct', q{SELECT read FROM fs_materialize('unq')}), '1', 'qualified, it works');

# ---------------------------------------------------------------------------
# The functions in a schema of their own (docs/operations.md, "Installing"),
# whose name needs quoting; a stream worker applies events while the
# update runs
# ---------------------------------------------------------------------------

for my $dbname ('in_schema', 'in_schema_fresh')
{
	$node->safe_psql('postgres', "CREATE DATABASE $dbname");
	$node->safe_psql($dbname, 'CREATE SCHEMA "Fs API"');
}
$node->safe_psql('in_schema', qq{CREATE EXTENSION fstore VERSION '$versions[0]' SCHEMA "Fs API"});
$node->safe_psql('in_schema', q{
	SELECT "Fs API".fs_create_entity('doc', 'doc_id bigint');
	SELECT "Fs API".fs_create_feature_view('ev', 'doc', 'n bigint');
	ALTER SYSTEM SET fstore.stream_workers = 1;
	SELECT pg_reload_conf();
});
# 400 events in 400 transactions, event i for key i % 50 + 1
my ($pout, $perr) = ('', '');
my $producer = IPC::Run::start(['psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('in_schema'), '-c', q{
	DO $$ BEGIN
	    FOR i IN 1 .. 400 LOOP
	        INSERT INTO fstore_stream.ev VALUES (i % 50 + 1, i, '2026-01-01'::timestamptz + i * interval '1 second');
	        COMMIT;
	        PERFORM pg_sleep(0.005);
	    END LOOP;
	END $$}], '>', \$pout, '2>', \$perr);
ok($node->poll_query_until('in_schema', q{SELECT count(*) > 0 FROM "Fs API".fs_get_many(NULL::fstore_online.ev,
	(SELECT array_agg(g::bigint) FROM generate_series(1, 50) g)) WHERE n IS NOT NULL}), 'the worker applies events');
($ret, $out, $err) = $node->psql('in_schema', 'ALTER EXTENSION fstore UPDATE', on_error_stop => 1);
is($ret, 0, 'ALTER EXTENSION fstore UPDATE, functions in schema "Fs API", a worker applying events') or diag($err);
$producer->finish;
is($perr, '', 'every event was queued');
ok($node->poll_query_until('in_schema', q{SELECT count(*) = 0 FROM fstore_stream.ev}), 'the queue is drained');
is($node->safe_psql('in_schema', q{SELECT count(*) || ' ' || sum(n) || ' ' || (SELECT count(*) FROM fstore.dead_letters)
	FROM fstore_online.ev}), '50 ' . eval { my $t = 0; $t += 350 + $_ for 1 .. 50; $t } . ' 0',
	'every key has its last event');
$node->safe_psql('in_schema', q{ALTER SYSTEM RESET fstore.stream_workers; SELECT pg_reload_conf()});
$node->safe_psql('in_schema_fresh', 'CREATE EXTENSION fstore SCHEMA "Fs API"');
compare_extension('in_schema', 'in_schema_fresh', 'schema "Fs API"');

note(sprintf('test took %.1f s', time - $t_start));
$node->stop;
done_testing();
