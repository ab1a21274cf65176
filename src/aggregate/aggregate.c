/*
 * aggregate.c
 *		Aggregation views: tiles of partial aggregates per key, updated
 *		exactly once from the stream queue, fs_write and fs_materialize, and
 *		read at a time T as the aggregates over the tiles with tile_start in
 *		(T - window, T] (docs/aggregations.md).
 *
 * The SQL is generated when a view is created (fs_create_aggregation_view)
 * and kept in fstore.aggregation_views:
 *   upsert_sql  INSERT ... ON CONFLICT of the tiles of the events in a CTE
 *               named fs_ok (grouped by key and tile, in key order);
 *   gc_sql      DELETE of the tiles older than $1 of the keys in fs_ok;
 *   read_sql    one row per key of $1 (in order) at time $2.
 * This file composes them into single statements: the events of a batch
 * come from a CTE (a DELETE ... RETURNING of the queue, the rows passed to
 * fs_write, or the source's rows of a backfill), are classified (valid, NULL
 * key or event_ts, not finite, too far in the future, older than the
 * retention), and the valid ones go into the tiles, all in one statement:
 * an event leaves the queue exactly when its effect on the tiles commits.
 * The stream batches of most views skip the composed statement: they are
 * grouped and merged into the tiles in C (stream_batch_c; tile_columns in
 * the catalog says how each partial merges), in the same transaction.
 *
 * Everything that touches the view's tables runs as the view's owner in a
 * restricted context with a pinned search_path (catalog/acl.h), after the
 * caller's privileges were checked: SELECT on fstore_online.<view> to read,
 * SELECT, INSERT, UPDATE and DELETE on the tiles to write, and also SELECT
 * and DELETE on the queue to drain it by hand.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/latch.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/wait_event.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/sortsupport.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "aggregate/aggregate.h"
#include "catalog/acl.h"
#include "catalog/metadata.h"
#include "catalog/query.h"
#include "stats/freshness.h"
#include "stats/stats.h"
#include "util/packed.h"
#include "util/util.h"

PG_FUNCTION_INFO_V1(fs_agg_get_many_at);
PG_FUNCTION_INFO_V1(fs_agg_compact);

/* Unix epoch (the tiles' origin) in PostgreSQL's microseconds */
#define UNIX_EPOCH_US ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

/*
 * A stream worker sweeps a view's expired tiles in SWEEP_SLICES slices of
 * its blocks, one slice at most every SWEEP_SLICE_SECS: the whole table
 * about once a minute, without a whole-table scan in any one batch.
 */
#define SWEEP_SLICES 60
#define SWEEP_SLICE_SECS 1

typedef struct AggView
{
	int64		view_id;
	char	   *name;
	char	   *entity;
	Oid			owner;
	Oid			view_relid;		/* fstore_online.<name> (a view) */
	Oid			tiles_relid;	/* fstore_offline.<name> */
	Oid			stream_relid;	/* fstore_stream.<name> */
	Oid			rowtype;
	Oid			stream_rowtype;
	Oid			key_array_type;
	int			nkeys;
	char	  **keys;
	int			nevents;
	char	  **events;
	int64		gran_secs;
	int64		maxw_secs;
	int64		ret_secs;
	int64		future_secs;
	char	   *upsert_sql;
	char	   *gc_sql;
	char	   *read_sql;
	int			ntilecols;
	char	  **tilecols;		/* fs_<n>: 'c:<event column>', 's:', 'mn:', 'mx:', 'd:' */
	char	   *source;
	char	   *source_query;
	char	   *ts_column;
	TimestampTz watermark;
} AggView;

typedef enum AggMode
{
	AGG_STREAM,					/* bad events become dead letters */
	AGG_WRITE,					/* bad events raise (fs_write, backfills) */
} AggMode;

typedef struct AggCounts
{
	int64		events;
	int64		applied;
	int64		too_old;
	int64		dead;
	TimestampTz max_ts;			/* newest event_ts applied (if applied > 0) */
} AggCounts;

/* ---- catalog ---- */

static Oid
rel_in(const char *nspname, const char *name)
{
	Oid			nsp = get_namespace_oid(nspname, true);

	return OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
}

bool
fs_agg_is_view(const char *name)
{
	Oid			relid;

	if (name == NULL || strlen(name) >= NAMEDATALEN)
		return false;
	relid = rel_in("fstore_online", name);
	return OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_VIEW;
}

bool
fs_agg_is_rowtype(Oid rowtype)
{
	Oid			typrelid = OidIsValid(rowtype) ? get_typ_typrelid(rowtype) : InvalidOid;

	return OidIsValid(typrelid) && get_rel_relkind(typrelid) == RELKIND_VIEW &&
		get_rel_namespace(typrelid) == get_namespace_oid("fstore_online", true);
}

bool
fs_agg_is_view_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return false;
	return fs_agg_is_view(text_to_cstring(PG_GETARG_TEXT_PP(argno)));
}

static char **
text_array_strings(Datum d, int *n, MemoryContext cxt)
{
	ArrayType  *arr = DatumGetArrayTypeP(d);
	Datum	   *elems;
	bool	   *nulls;
	char	  **out;
	int			i;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	out = MemoryContextAlloc(cxt, sizeof(char *) * Max(*n, 1));
	for (i = 0; i < *n; i++)
		out[i] = MemoryContextStrdup(cxt, TextDatumGetCString(elems[i]));
	return out;
}

static char *
copy_value(HeapTuple tup, TupleDesc td, int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(tup, td, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

/* The aggregation view called name (42704 if there is none). */
static AggView *
agg_load(const char *name)
{
	static const char *sql =
		"SELECT a.view_id, a.entity, a.upsert_sql, a.gc_sql, a.read_sql,"
		" CAST(pg_catalog.date_part('epoch', a.granularity) AS pg_catalog.int8),"
		" CAST(pg_catalog.date_part('epoch', a.max_window) AS pg_catalog.int8),"
		" CAST(pg_catalog.date_part('epoch', a.retention) AS pg_catalog.int8),"
		" CAST(pg_catalog.date_part('epoch', a.max_future) AS pg_catalog.int8),"
		" a.source, a.source_query, CAST(a.timestamp_column AS pg_catalog.text), a.watermark,"
		" CAST(e.key_type AS pg_catalog.oid), CAST(e.key_columns AS pg_catalog.text[]),"
		" CAST(a.event_columns AS pg_catalog.text[]), a.tile_columns"
		" FROM fstore.aggregation_views a JOIN fstore.entities e"
		" ON e.name OPERATOR(pg_catalog.=) a.entity"
		" WHERE a.name OPERATOR(pg_catalog.=) $1";
	MemoryContext cxt = CurrentMemoryContext;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	AggView    *av;
	HeapTuple	tup;
	TupleDesc	td;
	bool		isnull;
	HeapTuple	ctup;

	if (!OidIsValid(rel_in("fstore", "aggregation_views")))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("aggregation view \"%s\" does not exist", name)));
	args[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(sql, 1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read fstore.aggregation_views");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("aggregation view \"%s\" does not exist", name)));
	tup = SPI_tuptable->vals[0];
	td = SPI_tuptable->tupdesc;
	av = MemoryContextAllocZero(cxt, sizeof(AggView));
	av->name = MemoryContextStrdup(cxt, name);
	av->view_id = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
	av->entity = copy_value(tup, td, 2, cxt);
	av->upsert_sql = copy_value(tup, td, 3, cxt);
	av->gc_sql = copy_value(tup, td, 4, cxt);
	av->read_sql = copy_value(tup, td, 5, cxt);
	av->gran_secs = DatumGetInt64(SPI_getbinval(tup, td, 6, &isnull));
	av->maxw_secs = DatumGetInt64(SPI_getbinval(tup, td, 7, &isnull));
	av->ret_secs = DatumGetInt64(SPI_getbinval(tup, td, 8, &isnull));
	av->future_secs = DatumGetInt64(SPI_getbinval(tup, td, 9, &isnull));
	av->source = copy_value(tup, td, 10, cxt);
	av->source_query = copy_value(tup, td, 11, cxt);
	av->ts_column = copy_value(tup, td, 12, cxt);
	av->watermark = DatumGetTimestampTz(SPI_getbinval(tup, td, 13, &isnull));
	av->key_array_type = get_array_type(DatumGetObjectId(SPI_getbinval(tup, td, 14, &isnull)));
	av->keys = text_array_strings(SPI_getbinval(tup, td, 15, &isnull), &av->nkeys, cxt);
	av->events = text_array_strings(SPI_getbinval(tup, td, 16, &isnull), &av->nevents, cxt);
	av->tilecols = text_array_strings(SPI_getbinval(tup, td, 17, &isnull), &av->ntilecols, cxt);
	SPI_finish();

	av->view_relid = rel_in("fstore_online", name);
	av->tiles_relid = rel_in("fstore_offline", name);
	av->stream_relid = rel_in("fstore_stream", name);
	if (!OidIsValid(av->view_relid) || get_rel_relkind(av->view_relid) != RELKIND_VIEW ||
		!OidIsValid(av->tiles_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the tables of aggregation view \"%s\" are missing", name),
				 errhint("Drop it with fs_drop_aggregation_view and create it again.")));
	ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(av->view_relid));
	if (!HeapTupleIsValid(ctup))
		elog(ERROR, "cache lookup failed for relation %u", av->view_relid);
	av->owner = ((Form_pg_class) GETSTRUCT(ctup))->relowner;
	ReleaseSysCache(ctup);
	av->rowtype = get_rel_type_id(av->view_relid);
	av->stream_rowtype = OidIsValid(av->stream_relid) ? get_rel_type_id(av->stream_relid) : InvalidOid;
	return av;
}

static void
check_privileges(Oid relid, AclMode *modes, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (pg_class_aclcheck(relid, GetUserId(), modes[i]) != ACLCHECK_OK)
			fs_permission_denied(relid);
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("fstore does not support row-level security on \"%s\"",
						get_rel_name(relid))));
}

/* what fs_write, fs_materialize and compaction need: all of the tiles */
static void
check_write_privileges(AggView *av)
{
	AclMode		modes[4] = {ACL_SELECT, ACL_INSERT, ACL_UPDATE, ACL_DELETE};

	check_privileges(av->tiles_relid, modes, 4);
}

/* ---- time ---- */

/* the start of the tile holding t (tiles are aligned on the Unix epoch) */
static TimestampTz
tile_floor(AggView *av, TimestampTz t)
{
	int64		g = av->gran_secs * USECS_PER_SEC;
	int64		u = t + UNIX_EPOCH_US;
	int64		r = u % g;

	if (r < 0)
		r += g;
	return t - r;
}

static bool
tile_aligned(AggView *av, TimestampTz t)
{
	return TIMESTAMP_NOT_FINITE(t) || tile_floor(av, t) == t;
}

/*
 * Tiles starting before this are expired: the longest window plus the
 * retention before the tile of now().
 */
static TimestampTz
horizon(AggView *av)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	return tile_floor(av, now - (av->maxw_secs + av->ret_secs) * USECS_PER_SEC);
}

static TimestampTz
future_limit(AggView *av)
{
	return GetCurrentTransactionStartTimestamp() + av->future_secs * USECS_PER_SEC;
}

/* ---- the stream path in C ---- */

/*
 * A stream batch of a view without count(DISTINCT) is applied here rather
 * than by the SQL statement of agg_ingest: one DELETE ... RETURNING takes
 * the batch's events from the queue; they are classified (the same classes
 * as append_code's), sorted by key and tile and merged per (key, tile) into
 * partial tiles in memory; each partial tile is then merged into its stored
 * tile through the table's primary key (an index probe, a row lock and an
 * update) or inserted, as the feature views' apply engine writes its rows
 * (apply/apply.c).  The same result as the SQL path, without its CTE
 * materializations, sort node and per-row INSERT ... ON CONFLICT overhead,
 * in the transaction that deletes the events from the queue.
 *
 * Concurrent writers of the same tile (fs_write, a backfill, a hand-run
 * fs_stream_apply) are handled as logical replication's apply does: the
 * probe waits for a writer in progress and looks again, and a row updated
 * or deleted before it was locked is looked up again.  An insert that races
 * with another insert of the same tile fails with a unique violation, which
 * rolls back the batch: its events stay queued and the worker retries.
 *
 * Most (key, tile) of a batch are tiles an earlier batch of this process
 * wrote (a key's current tile): the process remembers, per key of each
 * view, the newest tile it wrote and where (its TID), and tries that tuple
 * first (tile_lookup_tid): if the tuple there is visible, has the same key
 * and tile, and locks without having been updated or deleted, it is the
 * stored tile (the primary key allows no other live one) and the B-tree
 * descent is saved; otherwise the primary-key probe decides, as without
 * the memory.  The memory is only a hint: nothing depends on it being
 * right.
 */
typedef enum TileMerge
{
	TILE_COUNT,					/* int8, adds */
	TILE_SUM_INT8,				/* NULL-ignoring sums */
	TILE_SUM_NUMERIC,
	TILE_SUM_FLOAT8,
	TILE_MIN,					/* by the type's btree order, NULLs ignored */
	TILE_MAX,
} TileMerge;

typedef struct TileApply
{
	Relation	rel;
	Relation	idx;
	EState	   *estate;
	ResultRelInfo *rri;
	EPQState	epqstate;
	Snapshot	snapshot;
	SnapshotData dirty;
	IndexScanDesc scan;
	ScanKeyData sk[INDEX_MAX_KEYS];
	int			nsk;
	TupleTableSlot *found;		/* the stored tile */
	TupleTableSlot *newslot;	/* the tile to write */
	int			natts;
	TileMerge  *merge;			/* by attribute; the keys and tile_start unused */
	int		   *argcol;			/* event column of a partial, in the batch's rows */
	Oid		   *argtype;
	FmgrInfo  **cmp;			/* min/max: the type's btree comparison */
	Oid		   *coll;
	MemoryContext rowcxt;
	bool		use_tids;		/* remember the tiles' TIDs (heap tables) */
	FmgrInfo  **keyhash;		/* the keys' extended hash functions */
	BlockNumber nblocks;		/* the tiles' size when the batch began */
	int64		tid_hits;		/* tiles found through their remembered TID */
} TileApply;

/*
 * The newest tile this process wrote per key of a view, and its TID: an
 * open-addressing table (TILE_TIDS slots of 24 bytes, 12 MB, allocated by
 * the first batch that uses it) by the hash of (tiles' relid, key values),
 * looked up in TILE_TIDS_PROBE consecutive slots; a new key takes a free
 * slot there, or replaces the first.  A hint only: a key whose entry was
 * replaced, or a collision of hashes, costs the primary-key probe.
 */
typedef struct TileTid
{
	uint64		hash;			/* 0: free */
	TimestampTz tile;
	ItemPointerData tid;
} TileTid;

#define TILE_TIDS (1 << 19)
#define TILE_TIDS_PROBE 4

static TileTid *tile_tids = NULL;

/* the entry of hash h (created if missing) */
static TileTid *
tile_tid_entry(uint64 h, bool *had)
{
	uint32		i;
	TileTid    *free_slot = NULL;

	if (h == 0)
		h = 1;
	for (i = 0; i < TILE_TIDS_PROBE; i++)
	{
		TileTid    *e = &tile_tids[(h + i) & (TILE_TIDS - 1)];

		if (e->hash == h)
		{
			*had = true;
			return e;
		}
		if (e->hash == 0 && free_slot == NULL)
			free_slot = e;
	}
	if (free_slot == NULL)
		free_slot = &tile_tids[h & (TILE_TIDS - 1)];
	free_slot->hash = h;
	*had = false;
	return free_slot;
}

/* the event column (index in av->events) of tile column tc, -1 if none */
static int
tilecol_event(AggView *av, const char *tc, char *kind)
{
	const char *colon = strchr(tc, ':');
	int			i;

	if (colon == NULL || colon - tc > 2)
		return -1;
	memcpy(kind, tc, colon - tc);
	kind[colon - tc] = '\0';
	for (i = 0; i < av->nevents; i++)
		if (strcmp(av->events[i], colon + 1) == 0)
			return i;
	return -1;
}

/*
 * Whether the stream batches of av can go through the C path: partials it
 * knows how to merge (count, sum, min, max; not count(DISTINCT) nor
 * approx_count_distinct's sketches), a plain
 * tile table with the generated layout and its primary key, no triggers,
 * no row-level security, READ COMMITTED.  Otherwise the SQL statement does
 * the work.
 */
static bool
tile_apply_possible(AggView *av)
{
	Relation	rel;
	TupleDesc	td;
	bool		ok = true;
	int			i;

	if (IsolationUsesXactSnapshot() || av->tilecols == NULL)
		return false;
	for (i = 0; i < av->ntilecols; i++)
	{
		char		kind[3];

		if (tilecol_event(av, av->tilecols[i], kind) < 0 || strcmp(kind, "d") == 0 ||
			strcmp(kind, "h") == 0)
			return false;
	}
	if (check_enable_rls(av->tiles_relid, InvalidOid, true) == RLS_ENABLED)
		return false;
	rel = table_open(av->tiles_relid, RowExclusiveLock);
	td = RelationGetDescr(rel);
	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->trigdesc != NULL ||
		td->natts != av->nkeys + 3 + av->ntilecols)
		ok = false;
	for (i = 0; ok && i < td->natts; i++)
		if (TupleDescAttr(td, i)->attisdropped)
			ok = false;
	if (ok)
	{
		(void) RelationGetIndexList(rel);	/* sets rd_pkindex */
		ok = OidIsValid(rel->rd_pkindex);
	}
	table_close(rel, NoLock);
	return ok;
}

static void
tile_apply_begin(AggView *av, TileApply *ta, TupleDesc evtd)
{
	TupleDesc	td;
	RangeTblEntry *rte;
	AclMode		modes[3] = {ACL_SELECT, ACL_INSERT, ACL_UPDATE};
	int			i;

	memset(ta, 0, sizeof(TileApply));
	/* what the SQL statement would need: run as the owner */
	check_privileges(av->tiles_relid, modes, 3);
	ta->rel = table_open(av->tiles_relid, RowExclusiveLock);
	td = RelationGetDescr(ta->rel);
	ta->natts = td->natts;
	ta->idx = index_open(ta->rel->rd_pkindex, RowExclusiveLock);
	ta->nsk = av->nkeys + 1;
	if (ta->idx->rd_index->indnkeyatts != ta->nsk)
		elog(ERROR, "unexpected primary key on the tiles of aggregation view \"%s\"", av->name);
	for (i = 0; i < ta->nsk; i++)
	{
		AttrNumber	att = ta->idx->rd_index->indkey.values[i];
		Oid			opfamily = ta->idx->rd_opfamily[i];
		Oid			optype = ta->idx->rd_opcintype[i];
		Oid			eq;

		if (att != i + 1)
			elog(ERROR, "unexpected primary key on the tiles of aggregation view \"%s\"", av->name);
		eq = get_opfamily_member(opfamily, optype, optype, BTEqualStrategyNumber);
		if (!OidIsValid(eq))
			elog(ERROR, "no equality operator for column %d of the tiles of aggregation view \"%s\"",
				 i + 1, av->name);
		ScanKeyEntryInitialize(&ta->sk[i], 0, i + 1, BTEqualStrategyNumber, optype,
							   ta->idx->rd_indcollation[i], get_opcode(eq), (Datum) 0);
	}

	/* the queue's keys must have the tiles' types (a queue may have been altered) */
	for (i = 0; i < av->nkeys; i++)
		if (TupleDescAttr(evtd, i)->atttypid != TupleDescAttr(td, i)->atttypid)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("key column \"%s\" of the queue of aggregation view \"%s\" no longer matches its tiles",
							NameStr(TupleDescAttr(td, i)->attname), av->name),
					 errhint("Drop the view with fs_drop_aggregation_view and create it again.")));

	/* how each partial merges, checked against the table's types */
	ta->merge = palloc0(sizeof(TileMerge) * ta->natts);
	ta->argcol = palloc0(sizeof(int) * ta->natts);
	ta->argtype = palloc0(sizeof(Oid) * ta->natts);
	ta->cmp = palloc0(sizeof(FmgrInfo *) * ta->natts);
	ta->coll = palloc0(sizeof(Oid) * ta->natts);
	for (i = av->nkeys + 1; i < ta->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);
		char		kind[3] = "";
		int			ev = -1;
		Oid			at = InvalidOid;
		bool		ok = true;

		if (i == av->nkeys + 1)
			strcpy(kind, "n");	/* fs_n: count(*) */
		else if (i == av->nkeys + 2)
			strcpy(kind, "mx"); /* fs_last_ts: max(event_ts) */
		else
			ev = tilecol_event(av, av->tilecols[i - av->nkeys - 3], kind);
		ta->argcol[i] = i == av->nkeys + 2 ? av->nkeys + av->nevents :
			ev >= 0 ? av->nkeys + ev : -1;
		if (ta->argcol[i] >= 0)
			at = TupleDescAttr(evtd, ta->argcol[i])->atttypid;
		ta->argtype[i] = at;
		ta->coll[i] = a->attcollation;
		if (strcmp(kind, "n") == 0 || strcmp(kind, "c") == 0)
		{
			ta->merge[i] = TILE_COUNT;
			ok = a->atttypid == INT8OID;
		}
		else if (strcmp(kind, "s") == 0)
		{
			if (a->atttypid == INT8OID)
				ta->merge[i] = TILE_SUM_INT8;
			else if (a->atttypid == NUMERICOID)
				ta->merge[i] = TILE_SUM_NUMERIC;
			else if (a->atttypid == FLOAT8OID)
				ta->merge[i] = TILE_SUM_FLOAT8;
			else
				ok = false;
			/* the event types the SQL path casts or sums into these */
			ok = ok && (ta->merge[i] == TILE_SUM_INT8 ? (at == INT2OID || at == INT4OID) :
						ta->merge[i] == TILE_SUM_NUMERIC ? (at == INT8OID || at == NUMERICOID) :
						(at == FLOAT4OID || at == FLOAT8OID));
		}
		else if (strcmp(kind, "mn") == 0 || strcmp(kind, "mx") == 0)
		{
			TypeCacheEntry *tce = lookup_type_cache(a->atttypid, TYPECACHE_CMP_PROC_FINFO);

			ta->merge[i] = kind[1] == 'n' ? TILE_MIN : TILE_MAX;
			ok = OidIsValid(tce->cmp_proc_finfo.fn_oid) && at == a->atttypid;
			ta->cmp[i] = &tce->cmp_proc_finfo;
		}
		else
			ok = false;
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of the tiles of aggregation view \"%s\" has an unexpected type",
							NameStr(a->attname), av->name),
					 errhint("Drop the view with fs_drop_aggregation_view and create it again.")));
	}

	ta->estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = av->tiles_relid;
	rte->relkind = RELKIND_RELATION;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(ta->estate, list_make1(rte));
	ta->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(ta->rri, ta->rel, 1, NULL, 0);
	ta->estate->es_opened_result_relations = list_make1(ta->rri);
	ExecOpenIndices(ta->rri, false);
	ta->snapshot = RegisterSnapshot(GetLatestSnapshot());
	ta->estate->es_snapshot = ta->snapshot;
	ta->estate->es_output_cid = GetCurrentCommandId(true);
	EvalPlanQualInit(&ta->epqstate, ta->estate, NULL, NIL, -1);

	/* a dirty snapshot sees the writers in progress, to wait for them */
	InitDirtySnapshot(ta->dirty);
	ta->scan = index_beginscan(ta->rel, ta->idx, &ta->dirty, ta->nsk, 0);
	ta->found = table_slot_create(ta->rel, &ta->estate->es_tupleTable);
	ta->newslot = ExecInitExtraTupleSlot(ta->estate, td, &TTSOpsVirtual);
	ta->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "fstore tile apply",
									   ALLOCSET_DEFAULT_SIZES);

	/* the TIDs of the tiles written before (a heap table, hashable keys) */
	ta->use_tids = ta->rel->rd_rel->relam == HEAP_TABLE_AM_OID;
	ta->keyhash = palloc0(sizeof(FmgrInfo *) * av->nkeys);
	for (i = 0; ta->use_tids && i < av->nkeys; i++)
	{
		TypeCacheEntry *tce = lookup_type_cache(TupleDescAttr(td, i)->atttypid,
												TYPECACHE_HASH_EXTENDED_PROC_FINFO);

		if (!OidIsValid(tce->hash_extended_proc_finfo.fn_oid))
			ta->use_tids = false;
		else
			ta->keyhash[i] = &tce->hash_extended_proc_finfo;
	}
	if (ta->use_tids)
	{
		ta->nblocks = RelationGetNumberOfBlocks(ta->rel);
		if (tile_tids == NULL)
			tile_tids = MemoryContextAllocExtended(TopMemoryContext,
												   sizeof(TileTid) * TILE_TIDS,
												   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	}
}

static void
tile_apply_end(TileApply *ta)
{
	elog(DEBUG1, "fstore: %lld tiles of \"%s\" found through their remembered TID",
		 (long long) ta->tid_hits, RelationGetRelationName(ta->rel));
	index_endscan(ta->scan);
	EvalPlanQualEnd(&ta->epqstate);
	ExecCloseIndices(ta->rri);
	ExecResetTupleTable(ta->estate->es_tupleTable, false);
	FreeExecutorState(ta->estate);
	index_close(ta->idx, NoLock);
	table_close(ta->rel, NoLock);
	UnregisterSnapshot(ta->snapshot);
	MemoryContextDelete(ta->rowcxt);
	/* later commands see the tiles */
	CommandCounterIncrement();
}

static Datum
int8_add_checked(Datum a, Datum b)
{
	int64		r;

	if (pg_add_s64_overflow(DatumGetInt64(a), DatumGetInt64(b), &r))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("bigint out of range")));
	return Int64GetDatum(r);
}

/* merges partial b (new) into a (stored), both not NULL */
static Datum
tile_merge_one(TileApply *ta, int i, Datum a, Datum b)
{
	switch (ta->merge[i])
	{
		case TILE_COUNT:
		case TILE_SUM_INT8:
			return int8_add_checked(a, b);
		case TILE_SUM_NUMERIC:
			return DirectFunctionCall2(numeric_add, a, b);
		case TILE_SUM_FLOAT8:
			return DirectFunctionCall2(float8pl, a, b);
		case TILE_MIN:
		case TILE_MAX:
			{
				int32		c = DatumGetInt32(FunctionCall2Coll(ta->cmp[i], ta->coll[i], a, b));

				if (ta->merge[i] == TILE_MIN)
					return c <= 0 ? a : b;
				return c >= 0 ? a : b;
			}
	}
	return a;					/* not reached */
}

/*
 * Looks up the stored tile of the key and tile_start in vals and locks it;
 * false if there is none.
 */
static bool
tile_lookup(TileApply *ta, Datum *vals)
{
	int			i;

	for (i = 0; i < ta->nsk; i++)
		ta->sk[i].sk_argument = vals[i];
	for (;;)
	{
		bool		found = false;
		TransactionId xwait = InvalidTransactionId;
		TM_FailureData tmfd;
		TM_Result	res;

		index_rescan(ta->scan, ta->sk, ta->nsk, NULL, 0);
		while (index_getnext_slot(ta->scan, ForwardScanDirection, ta->found))
		{
			xwait = TransactionIdIsValid(ta->dirty.xmin) ? ta->dirty.xmin : ta->dirty.xmax;
			found = true;
			break;
		}
		if (TransactionIdIsValid(xwait))
		{
			/* a writer of this tile is in progress: wait, then look again */
			XactLockTableWait(xwait, NULL, NULL, XLTW_None);
			continue;
		}
		if (!found)
			return false;
		/* (the snapshot only matters when following update chains: not here) */
		res = table_tuple_lock(ta->rel, &ta->found->tts_tid, ta->snapshot, ta->found,
							   GetCurrentCommandId(false), LockTupleExclusive,
							   LockWaitBlock, 0, &tmfd);
		switch (res)
		{
			case TM_Ok:
				return true;
			case TM_Updated:
			case TM_Deleted:
				/* changed since we read it: look it up again */
				CHECK_FOR_INTERRUPTS();
				continue;
			default:
				elog(ERROR, "unexpected result %d locking a tile of \"%s\"",
					 (int) res, RelationGetRelationName(ta->rel));
		}
	}
}

/* the hash of a view's key values (vals), for tile_tids */
static uint64
tile_key_hash(TileApply *ta, Datum *vals)
{
	uint64		h = hash_bytes_uint32_extended((uint32) RelationGetRelid(ta->rel), 0);
	int			i;

	for (i = 0; i < ta->nsk - 1; i++)
		h = hash_combine64(h, DatumGetUInt64(FunctionCall2Coll(ta->keyhash[i],
															   ta->sk[i].sk_collation,
															   vals[i], Int64GetDatum(0))));
	return h;
}

/*
 * Looks for the stored tile of vals at tid (where this process last wrote
 * it) and locks it: true if the tuple there is visible to the batch's
 * snapshot, holds the same key and tile_start, and was locked while still
 * the newest version.  False otherwise (gone, moved, another tile there,
 * updated or deleted since): the caller asks the primary key.
 */
static bool
tile_lookup_tid(TileApply *ta, Datum *vals, ItemPointer tid)
{
	BlockNumber blk = ItemPointerGetBlockNumber(tid);
	OffsetNumber off = ItemPointerGetOffsetNumber(tid);
	Buffer		buf;
	Page		page;
	HeapTuple	copy = NULL;
	TM_FailureData tmfd;
	TM_Result	res;
	int			i;

	Size		freespace = 0;

	if (blk >= ta->nblocks)
		return false;
	buf = ReadBuffer(ta->rel, blk);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (off >= FirstOffsetNumber && off <= PageGetMaxOffsetNumber(page))
	{
		ItemId		lp = PageGetItemId(page, off);

		if (ItemIdIsNormal(lp))
		{
			HeapTupleData tup;

			tup.t_data = (HeapTupleHeader) PageGetItem(page, lp);
			tup.t_len = ItemIdGetLength(lp);
			tup.t_tableOid = RelationGetRelid(ta->rel);
			tup.t_self = *tid;
			if (HeapTupleSatisfiesVisibility(&tup, ta->snapshot, buf))
				copy = heap_copytuple(&tup);
		}
	}
	freespace = PageGetHeapFreeSpace(page);
	LockBuffer(buf, BUFFER_LOCK_UNLOCK);

	/*
	 * Make room for the HOT update by pruning the page's dead versions, as
	 * an index fetch does, but only when the page has little room left for
	 * the new version: heap_page_prune_opt alone prunes whenever less than
	 * a tenth of the page is free, which with the tiles' fillfactor of 90 is
	 * nearly always, at the cost of a pass over the page per update.  (The
	 * tuple found stays: it is visible to this batch.)
	 */
	if (copy != NULL && freespace < 2 * MAXALIGN(copy->t_len))
		heap_page_prune_opt(ta->rel, buf);
	ReleaseBuffer(buf);
	if (copy == NULL)
		return false;

	/* the same key and tile (the TID may hold another tile by now) */
	for (i = 0; i < ta->nsk; i++)
	{
		bool		isnull;
		Datum		d = heap_getattr(copy, i + 1, RelationGetDescr(ta->rel), &isnull);

		if (isnull || !DatumGetBool(FunctionCall2Coll(&ta->sk[i].sk_func, ta->sk[i].sk_collation,
													  d, vals[i])))
		{
			heap_freetuple(copy);
			return false;
		}
	}
	heap_freetuple(copy);

	res = table_tuple_lock(ta->rel, tid, ta->snapshot, ta->found,
						   GetCurrentCommandId(false), LockTupleExclusive,
						   LockWaitBlock, 0, &tmfd);
	if (res == TM_Ok)
		return true;
	if (res != TM_Updated && res != TM_Deleted)
		elog(ERROR, "unexpected result %d locking a tile of \"%s\"",
			 (int) res, RelationGetRelationName(ta->rel));
	ExecClearTuple(ta->found);
	return false;
}

/* One partial tile (the tile table's columns in vals) into the tiles. */
static void
tile_apply_row(TileApply *ta, Datum *vals, bool *nulls)
{
	TupleTableSlot *slot = ta->newslot;
	MemoryContext old;
	int			nsk = ta->nsk;
	TimestampTz tile = DatumGetTimestampTz(vals[nsk - 1]);
	TileTid    *tt = NULL;
	bool		found = false;
	int			i;

	MemoryContextReset(ta->rowcxt);
	ResetPerTupleExprContext(ta->estate);
	ExecClearTuple(slot);
	if (ta->use_tids)
	{
		bool		had;
		uint64		h = tile_key_hash(ta, vals);

		tt = tile_tid_entry(h, &had);
		if (!had)
		{
			tt->tile = DT_NOBEGIN;
			ItemPointerSetInvalid(&tt->tid);
		}
		else if (tt->tile == tile && tile_lookup_tid(ta, vals, &tt->tid))
		{
			found = true;
			ta->tid_hits++;
		}
	}
	if (!found)
		found = tile_lookup(ta, vals);
	if (found)
	{
		old = MemoryContextSwitchTo(ta->rowcxt);
		slot_getallattrs(ta->found);
		for (i = 0; i < ta->natts; i++)
		{
			bool		sn = ta->found->tts_isnull[i];
			Datum		sv = ta->found->tts_values[i];

			if (i < nsk || nulls[i])
			{
				slot->tts_values[i] = sv;
				slot->tts_isnull[i] = sn;
			}
			else if (sn)
			{
				slot->tts_values[i] = vals[i];
				slot->tts_isnull[i] = false;
			}
			else
			{
				slot->tts_values[i] = tile_merge_one(ta, i, sv, vals[i]);
				slot->tts_isnull[i] = false;
			}
		}
		MemoryContextSwitchTo(old);
		ExecStoreVirtualTuple(slot);
		ExecSimpleRelationUpdate(ta->rri, ta->estate, &ta->epqstate, ta->found, slot);
	}
	else
	{
		memcpy(slot->tts_values, vals, sizeof(Datum) * ta->natts);
		memcpy(slot->tts_isnull, nulls, sizeof(bool) * ta->natts);
		ExecStoreVirtualTuple(slot);
		ExecSimpleRelationInsert(ta->rri, ta->estate, slot);
	}

	/* where this key's newest tile now is */
	if (tt != NULL && ItemPointerIsValid(&slot->tts_tid) && tile >= tt->tile)
	{
		tt->tile = tile;
		tt->tid = slot->tts_tid;
	}
}

/* an event's value of partial column i, as the partial's type */
static Datum
tile_event_value(TileApply *ta, int i, Datum v)
{
	if (ta->merge[i] != TILE_SUM_INT8 && ta->merge[i] != TILE_SUM_NUMERIC &&
		ta->merge[i] != TILE_SUM_FLOAT8)
		return v;				/* min and max keep the event's type */
	switch (ta->argtype[i])
	{
		case INT2OID:
			return Int64GetDatum((int64) DatumGetInt16(v));
		case INT4OID:
			return Int64GetDatum((int64) DatumGetInt32(v));
		case INT8OID:
			return ta->merge[i] == TILE_SUM_NUMERIC ? DirectFunctionCall1(int8_numeric, v) : v;
		case FLOAT4OID:
			return Float8GetDatum((float8) DatumGetFloat4(v));
		default:
			return v;
	}
}

/* sorting a batch's valid events by key and tile */
typedef struct BatchEvent
{
	int			row;
	TimestampTz tile;
} BatchEvent;

typedef struct BatchSort
{
	int			nkeys;
	int			ncols;
	Datum	   *vals;
	SortSupport ssup;
} BatchSort;

static int
batch_event_cmp(const void *pa, const void *pb, void *arg)
{
	const BatchEvent *a = (const BatchEvent *) pa;
	const BatchEvent *b = (const BatchEvent *) pb;
	BatchSort  *bs = (BatchSort *) arg;
	int			k;

	for (k = 0; k < bs->nkeys; k++)
	{
		int			c = ApplySortComparator(bs->vals[a->row * bs->ncols + k], false,
											bs->vals[b->row * bs->ncols + k], false,
											&bs->ssup[k]);

		if (c != 0)
			return c;
	}
	if (a->tile != b->tile)
		return a->tile < b->tile ? -1 : 1;
	return a->row - b->row;
}

/* whether two events go into the same tile: equal keys and tile */
static bool
batch_same_tile(BatchSort *bs, const BatchEvent *a, const BatchEvent *b)
{
	int			k;

	if (a->tile != b->tile)
		return false;
	for (k = 0; k < bs->nkeys; k++)
		if (ApplySortComparator(bs->vals[a->row * bs->ncols + k], false,
								bs->vals[b->row * bs->ncols + k], false,
								&bs->ssup[k]) != 0)
			return false;
	return true;
}

/* the dead letters of a batch: each event as jsonb, with its class (1-3) */
static void
record_dead_letters(AggView *av, HeapTuple *tuples, TupleDesc td, uint64 n, const int *codes,
					int64 ndead)
{
	static const char *dead_sql =
		"INSERT INTO fstore.dead_letters (view_name, event, error, sqlstate)"
		" SELECT $1, fs_x.fs_e,"
		" CASE fs_x.fs_c"
		"  WHEN 1 THEN 'the event has a NULL key column or a NULL event_ts'"
		"  WHEN 2 THEN 'the event''s event_ts is not finite'"
		"  ELSE 'the event''s event_ts is later than now() + the view''s max_future' END,"
		" CASE fs_x.fs_c WHEN 1 THEN '23502' ELSE '22008' END"
		" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS fs_x(fs_e, fs_c)";
	StringInfoData q;
	Oid		   *types = palloc(sizeof(Oid) * td->natts);
	Datum	   *vals = palloc(sizeof(Datum) * td->natts);
	char	   *nulls = palloc(td->natts + 1);
	Datum	   *events = palloc(sizeof(Datum) * ndead);
	Datum	   *cls = palloc(sizeof(Datum) * ndead);
	SPIPlanPtr	plan;
	int			nd = 0;
	uint64		r;
	int			i;
	Oid			dtypes[3] = {TEXTOID, JSONBARRAYOID, INT4ARRAYOID};
	Datum		dvals[3];

	/* the event as to_jsonb(row) of the queue's columns, as the SQL path has it */
	initStringInfo(&q);
	appendStringInfoString(&q, "SELECT pg_catalog.to_jsonb(fs_r) FROM (SELECT ");
	for (i = 0; i < td->natts; i++)
	{
		types[i] = TupleDescAttr(td, i)->atttypid;
		appendStringInfo(&q, "%s$%d AS %s", i ? ", " : "", i + 1,
						 quote_identifier(NameStr(TupleDescAttr(td, i)->attname)));
	}
	appendStringInfoString(&q, ") AS fs_r");
	plan = SPI_prepare(q.data, td->natts, types);
	if (plan == NULL)
		elog(ERROR, "could not prepare the dead letters of aggregation view \"%s\"", av->name);
	for (r = 0; r < n; r++)
	{
		bool		isnull;

		if (codes[r] < 1 || codes[r] > 3)
			continue;
		for (i = 0; i < td->natts; i++)
		{
			vals[i] = heap_getattr(tuples[r], i + 1, td, &isnull);
			nulls[i] = isnull ? 'n' : ' ';
		}
		if (SPI_execute_plan(plan, vals, nulls, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not record the dead letters of aggregation view \"%s\"", av->name);
		events[nd] = datumCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
							   false, -1);
		cls[nd] = Int32GetDatum(codes[r]);
		nd++;
	}
	SPI_freeplan(plan);
	dvals[0] = CStringGetTextDatum(av->name);
	dvals[1] = PointerGetDatum(construct_array(events, nd, JSONBOID, -1, false, TYPALIGN_INT));
	dvals[2] = PointerGetDatum(construct_array(cls, nd, INT4OID, 4, true, TYPALIGN_INT));
	fs_catalog_exec_as_owner(dead_sql, 3, dtypes, dvals, SPI_OK_INSERT);
}

/*
 * Takes up to max_rows events from the queue (deletes them) in C: the
 * queue's columns by name (keys, events, event_ts: outdesc) into *rows.
 * What the DELETE ... RETURNING of stream_batch does, without its plan:
 * a sequential scan that starts where this process's last batch of the
 * queue stopped, so that a queue behind by many batches is not scanned
 * from its first page (its dead events, until vacuumed) each time; it
 * wraps around, so every event is seen.  An event another session deleted
 * first (a hand-run fs_stream_apply) is skipped, as the statement's
 * recheck does.  Returns false (nothing taken) when the queue is not a
 * plain heap table without delete triggers or row-level security, or
 * lacks a column: the statement then does the work (and raises).
 */
typedef struct QueueStart
{
	Oid			relid;
	BlockNumber block;
} QueueStart;

static HTAB *queue_starts = NULL;

static bool
queue_take(AggView *av, int max_rows, TupleDesc *outdesc, HeapTuple **rows, uint64 *nrows)
{
	AclMode		modes[2] = {ACL_SELECT, ACL_DELETE};
	Relation	rel;
	TupleDesc	qd;
	TupleDesc	od;
	AttrNumber *map;
	int			ncols = av->nkeys + av->nevents + 1;
	Snapshot	snap;
	TableScanDesc scan;
	TupleTableSlot *slot;
	BlockNumber nblocks;
	QueueStart *qs;
	bool		found;
	CommandId	cid;
	Datum	   *vals;
	bool	   *nulls;
	uint64		n = 0;
	uint64		cap;
	int			i;

	if (!OidIsValid(av->stream_relid))
		return false;
	rel = table_open(av->stream_relid, RowExclusiveLock);
	qd = RelationGetDescr(rel);
	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		(rel->trigdesc != NULL && (rel->trigdesc->trig_delete_before_row ||
								   rel->trigdesc->trig_delete_after_row ||
								   rel->trigdesc->trig_delete_instead_row ||
								   rel->trigdesc->trig_delete_before_statement ||
								   rel->trigdesc->trig_delete_after_statement)) ||
		check_enable_rls(av->stream_relid, InvalidOid, true) == RLS_ENABLED)
	{
		table_close(rel, NoLock);
		return false;
	}
	/* the columns, as RETURNING names them */
	map = palloc(sizeof(AttrNumber) * ncols);
	od = CreateTemplateTupleDesc(ncols);
	for (i = 0; i < ncols; i++)
	{
		const char *col = i < av->nkeys ? av->keys[i] :
			i < av->nkeys + av->nevents ? av->events[i - av->nkeys] : "event_ts";
		AttrNumber	att = attnameAttNum(rel, col, false);

		if (att <= 0)
		{
			table_close(rel, NoLock);
			return false;
		}
		map[i] = att;
		TupleDescCopyEntry(od, i + 1, qd, att);
	}
	check_privileges(av->stream_relid, modes, 2);

	if (queue_starts == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(QueueStart);
		queue_starts = hash_create("fstore queue starts", 64, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	qs = hash_search(queue_starts, &av->stream_relid, HASH_ENTER, &found);
	if (!found)
		qs->block = 0;

	cid = GetCurrentCommandId(true);
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan_strat(rel, snap, 0, NULL, true, false);
	/* the blocks the scan sees (pages added meanwhile: the next batch) */
	nblocks = ((HeapScanDesc) scan)->rs_nblocks;
	if (qs->block >= nblocks)
		qs->block = 0;
	if (nblocks > 0)
		heap_setscanlimits(scan, qs->block, nblocks);
	slot = table_slot_create(rel, NULL);
	vals = palloc(sizeof(Datum) * ncols);
	nulls = palloc(sizeof(bool) * ncols);
	cap = Min(max_rows, 1024);
	*rows = palloc(sizeof(HeapTuple) * cap);
	while (n < (uint64) max_rows && nblocks > 0 &&
		   table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		TM_FailureData tmfd;
		TM_Result	res;
		ItemPointerData tid = slot->tts_tid;

		CHECK_FOR_INTERRUPTS();
		/*
		 * Never wait for another session that is taking the same event:
		 * scans start where each session's last batch stopped, so two
		 * sessions waiting for each other's events would deadlock.  An
		 * event another transaction is deleting is skipped; if that one
		 * aborts, the event stays queued for a later batch.
		 */
		res = table_tuple_delete(rel, &tid, cid, snap, InvalidSnapshot, false, &tmfd, false);
		if (res == TM_Updated || res == TM_Deleted || res == TM_BeingModified)
			continue;			/* taken by another session */
		if (res != TM_Ok)
			elog(ERROR, "unexpected result %d deleting an event of the queue of aggregation view \"%s\"",
				 (int) res, av->name);
		slot_getallattrs(slot);
		for (i = 0; i < ncols; i++)
		{
			vals[i] = slot->tts_values[map[i] - 1];
			nulls[i] = slot->tts_isnull[map[i] - 1];
		}
		if (n == cap)
		{
			cap *= 2;
			*rows = repalloc(*rows, sizeof(HeapTuple) * cap);
		}
		(*rows)[n++] = heap_form_tuple(od, vals, nulls);
		qs->block = ItemPointerGetBlockNumber(&tid);
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, NoLock);
	/* the deletions are seen by what follows */
	CommandCounterIncrement();
	*outdesc = od;
	*nrows = n;
	return true;
}

/*
 * One stream batch through the C path (the caller checked
 * tile_apply_possible; connected to SPI, running as the owner).
 */
static void
stream_batch_c(AggView *av, const char *delete_sql, int max_rows, AggCounts *out)
{
	HeapTuple  *rows;
	TupleDesc	td;
	uint64		n;
	int			ncols = av->nkeys + av->nevents + 1;
	int			tscol = ncols - 1;
	Datum	   *vals;
	bool	   *nulls;
	int		   *codes;
	BatchEvent *evs;
	int			nev = 0;
	TimestampTz lo = horizon(av);
	TimestampTz hi = future_limit(av);
	uint64		r;
	int			k;

	if (!queue_take(av, max_rows, &td, &rows, &n))
	{
		if (SPI_execute(delete_sql, false, 0) != SPI_OK_DELETE_RETURNING)
			elog(ERROR, "could not take the events of aggregation view \"%s\" from its queue", av->name);
		rows = SPI_tuptable->vals;
		n = SPI_processed;
		td = SPI_tuptable->tupdesc;
	}
	if (td->natts != ncols || TupleDescAttr(td, tscol)->atttypid != TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the queue of aggregation view \"%s\" no longer matches the view", av->name)));
	memset(out, 0, sizeof(AggCounts));
	out->events = (int64) n;
	if (n == 0)
		return;

	/* classify: 0 valid, 1 NULL key or event_ts, 2 not finite, 3 future, 4 expired */
	vals = palloc(sizeof(Datum) * ncols * n);
	nulls = palloc(sizeof(bool) * ncols * n);
	codes = palloc(sizeof(int) * n);
	evs = palloc(sizeof(BatchEvent) * n);
	for (r = 0; r < n; r++)
	{
		Datum	   *v = vals + r * ncols;
		bool	   *nl = nulls + r * ncols;
		TimestampTz ts;

		heap_deform_tuple(rows[r], td, v, nl);
		codes[r] = 0;
		for (k = 0; k < av->nkeys; k++)
			if (nl[k])
				codes[r] = 1;
		if (nl[tscol])
			codes[r] = 1;
		if (codes[r] == 0)
		{
			ts = DatumGetTimestampTz(v[tscol]);
			if (TIMESTAMP_NOT_FINITE(ts))
				codes[r] = 2;
			else if (ts > hi)
				codes[r] = 3;
			else if (ts < lo)
				codes[r] = 4;
			else
			{
				evs[nev].row = (int) r;
				evs[nev].tile = tile_floor(av, ts);
				nev++;
				if (nev == 1 || ts > out->max_ts)
					out->max_ts = ts;
			}
		}
		if (codes[r] == 4)
			out->too_old++;
		else if (codes[r] != 0)
			out->dead++;
	}
	out->applied = nev;

	if (nev > 0)
	{
		TileApply	ta;
		BatchSort	bs;
		MemoryContext grpcxt;
		Datum	   *gv;
		bool	   *gn;
		int			i;
		int			j;

		/* by key (the keys' default btree order) and tile */
		bs.nkeys = av->nkeys;
		bs.ncols = ncols;
		bs.vals = vals;
		bs.ssup = palloc0(sizeof(SortSupportData) * av->nkeys);
		for (k = 0; k < av->nkeys; k++)
		{
			Form_pg_attribute a = TupleDescAttr(td, k);
			TypeCacheEntry *tce = lookup_type_cache(a->atttypid, TYPECACHE_LT_OPR);

			if (!OidIsValid(tce->lt_opr))
				elog(ERROR, "no ordering operator for key column \"%s\" of aggregation view \"%s\"",
					 NameStr(a->attname), av->name);
			bs.ssup[k].ssup_cxt = CurrentMemoryContext;
			bs.ssup[k].ssup_collation = a->attcollation;
			bs.ssup[k].ssup_nulls_first = false;
			PrepareSortSupportFromOrderingOp(tce->lt_opr, &bs.ssup[k]);
		}
		qsort_arg(evs, nev, sizeof(BatchEvent), batch_event_cmp, &bs);

		CommandCounterIncrement();
		tile_apply_begin(av, &ta, td);
		gv = palloc(sizeof(Datum) * ta.natts);
		gn = palloc(sizeof(bool) * ta.natts);
		grpcxt = AllocSetContextCreate(CurrentMemoryContext, "fstore tile partial",
									   ALLOCSET_DEFAULT_SIZES);
		for (i = 0; i < nev; i = j)
		{
			Datum	   *first = vals + (uint64) evs[i].row * ncols;
			int			c;
			MemoryContext old;

			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(grpcxt);
			old = MemoryContextSwitchTo(grpcxt);
			for (c = 0; c < ta.natts; c++)
			{
				gv[c] = (Datum) 0;
				gn[c] = true;
			}
			for (k = 0; k < av->nkeys; k++)
			{
				gv[k] = first[k];
				gn[k] = false;
			}
			gv[av->nkeys] = TimestampTzGetDatum(evs[i].tile);
			gn[av->nkeys] = false;
			/* the events of this key and tile: the partials of the group */
			for (j = i; j < nev; j++)
			{
				Datum	   *v = vals + (uint64) evs[j].row * ncols;
				bool	   *nl = nulls + (uint64) evs[j].row * ncols;

				if (j > i && !batch_same_tile(&bs, &evs[i], &evs[j]))
					break;
				for (c = av->nkeys + 1; c < ta.natts; c++)
				{
					int			ac = ta.argcol[c];
					Datum		ev;

					if (ta.merge[c] == TILE_COUNT)
					{
						if (ac >= 0 && nl[ac])
							ev = Int64GetDatum(0);
						else
							ev = Int64GetDatum(1);
					}
					else if (nl[ac])
						continue;	/* NULLs are ignored, as by SQL aggregates */
					else
						ev = tile_event_value(&ta, c, v[ac]);
					if (gn[c])
					{
						gv[c] = ev;
						gn[c] = false;
					}
					else
						gv[c] = tile_merge_one(&ta, c, gv[c], ev);
				}
			}
			MemoryContextSwitchTo(old);
			tile_apply_row(&ta, gv, gn);
		}
		tile_apply_end(&ta);
		MemoryContextDelete(grpcxt);
	}
	if (out->dead > 0)
		record_dead_letters(av, rows, td, n, codes, out->dead);
}

/* ---- applying events ---- */

static void
append_list(StringInfo s, AggView *av, const char *prefix, bool events, bool ts)
{
	int			i;
	bool		first = true;

	for (i = 0; i < av->nkeys; i++, first = false)
		appendStringInfo(s, "%s%s%s", first ? "" : ", ", prefix, quote_identifier(av->keys[i]));
	for (i = 0; events && i < av->nevents; i++)
		appendStringInfo(s, ", %s%s", prefix, quote_identifier(av->events[i]));
	if (ts)
		appendStringInfo(s, ", %sevent_ts", prefix);
}

/* the class of an event: 0 valid, 1 NULL key or event_ts, 2 not finite, 3 future, 4 expired */
static void
append_code(StringInfo s, AggView *av)
{
	int			i;

	appendStringInfoString(s, "CASE WHEN fs_in.event_ts IS NULL");
	for (i = 0; i < av->nkeys; i++)
		appendStringInfo(s, " OR fs_in.%s IS NULL", quote_identifier(av->keys[i]));
	appendStringInfoString(s, " THEN 1"
						   " WHEN NOT pg_catalog.isfinite(fs_in.event_ts) THEN 2"
						   " WHEN fs_in.event_ts OPERATOR(pg_catalog.>) $2 THEN 3"
						   " WHEN fs_in.event_ts OPERATOR(pg_catalog.<) $1 THEN 4"
						   " ELSE 0 END");
}

/*
 * Runs source_sql (a query or DELETE ... RETURNING of the key columns, the
 * event columns and event_ts; its parameters start at $3) into the tiles,
 * in one statement.  Caller is connected to SPI, running as the owner.
 */
static void
agg_ingest(AggView *av, AggMode mode, const char *source_sql, int nargs,
		   Oid *argtypes, Datum *args, AggCounts *out)
{
	StringInfoData sql;
	Oid		   *types = palloc(sizeof(Oid) * (nargs + 2));
	Datum	   *vals = palloc(sizeof(Datum) * (nargs + 2));
	HeapTuple	tup;
	TupleDesc	td;
	bool		isnull;
	int			i;

	types[0] = TIMESTAMPTZOID;
	types[1] = TIMESTAMPTZOID;
	vals[0] = TimestampTzGetDatum(horizon(av));
	vals[1] = TimestampTzGetDatum(future_limit(av));
	for (i = 0; i < nargs; i++)
	{
		types[i + 2] = argtypes[i];
		vals[i + 2] = args[i];
	}

	initStringInfo(&sql);
	appendStringInfo(&sql, "WITH fs_in AS (%s),\nfs_chk AS (SELECT fs_in.*, ", source_sql);
	if (mode == AGG_STREAM)
		append_code(&sql, av);
	else
	{
		/* refused events raise: nothing of the call is applied */
		appendStringInfoString(&sql, "CASE WHEN (");
		append_code(&sql, av);
		appendStringInfo(&sql, ") OPERATOR(pg_catalog.=) ANY ('{1,2,3}'::pg_catalog.int4[]) THEN fstore._agg_refuse(%s, ",
						 quote_literal_cstr(av->name));
		append_code(&sql, av);
		appendStringInfoString(&sql, ", fs_in.event_ts) ELSE ");
		append_code(&sql, av);
		appendStringInfoString(&sql, " END");
	}
	appendStringInfo(&sql, " AS fs_code FROM fs_in),\n"
					 "fs_ok AS (SELECT * FROM fs_chk WHERE fs_code OPERATOR(pg_catalog.=) 0),\n"
					 "fs_up AS (%s RETURNING 1)",
					 av->upsert_sql);
	/*
	 * fs_write and backfills remove the expired tiles of the keys they
	 * touch; the stream path leaves that to the workers' sweeps (it would
	 * cost an index probe per key of every batch).
	 */
	if (mode != AGG_STREAM)
		appendStringInfo(&sql, ",\nfs_gc AS (%s RETURNING 1)", av->gc_sql);
	appendStringInfo(&sql, "\nSELECT (SELECT pg_catalog.count(*) FROM fs_chk),"
					 " (SELECT pg_catalog.count(*) FROM fs_ok),"
					 " (SELECT pg_catalog.count(*) FROM fs_chk WHERE fs_code OPERATOR(pg_catalog.=) 4),"
					 " (SELECT pg_catalog.max(fs_ok.event_ts) FROM fs_ok),"
					 " (SELECT pg_catalog.count(*) FROM fs_up),"
					 " %s,"
					 " (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(fs_chk)) FROM fs_chk"
					 "   WHERE fs_code OPERATOR(pg_catalog.=) ANY ('{1,2,3}'::pg_catalog.int4[]))",
					 mode != AGG_STREAM ? "(SELECT pg_catalog.count(*) FROM fs_gc)" : "0");

	if (SPI_execute_with_args(sql.data, nargs + 2, types, vals, NULL, false, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not apply the events of aggregation view \"%s\"", av->name);
	tup = SPI_tuptable->vals[0];
	td = SPI_tuptable->tupdesc;
	out->events = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
	out->applied = DatumGetInt64(SPI_getbinval(tup, td, 2, &isnull));
	out->too_old = DatumGetInt64(SPI_getbinval(tup, td, 3, &isnull));
	{
		Datum		mx = SPI_getbinval(tup, td, 4, &isnull);

		out->max_ts = isnull ? DT_NOBEGIN : DatumGetTimestampTz(mx);
	}
	out->dead = 0;
	{
		Datum		dead = SPI_getbinval(tup, td, 7, &isnull);

		if (!isnull)
		{
			static const char *dead_sql =
				"INSERT INTO fstore.dead_letters (view_name, event, error, sqlstate)"
				" SELECT $1, fs_e OPERATOR(pg_catalog.-) 'fs_code'::pg_catalog.text,"
				" CASE fs_e OPERATOR(pg_catalog.->>) 'fs_code'::pg_catalog.text"
				"  WHEN '1' THEN 'the event has a NULL key column or a NULL event_ts'"
				"  WHEN '2' THEN 'the event''s event_ts is not finite'"
				"  ELSE 'the event''s event_ts is later than now() + the view''s max_future' END,"
				" CASE fs_e OPERATOR(pg_catalog.->>) 'fs_code'::pg_catalog.text"
				"  WHEN '1' THEN '23502' ELSE '22008' END"
				" FROM pg_catalog.jsonb_array_elements($2) AS fs_e";
			Oid			dtypes[2] = {TEXTOID, JSONBOID};
			Datum		dvals[2];
			Datum		copy = datumCopy(dead, false, -1);

			dvals[0] = CStringGetTextDatum(av->name);
			dvals[1] = copy;
			out->dead = out->events - out->applied - out->too_old;
			fs_catalog_exec_as_owner(dead_sql, 2, dtypes, dvals, SPI_OK_INSERT);
		}
	}
}

/*
 * Records what a write did, for fstore.stats (shared-memory counters, as
 * for feature views: rows_written are the events added to tiles, rows_late
 * those older than the retention; a stream batch also counts
 * stream_applied, stream_batches and dead_letters) and fstore.freshness
 * (newest event_ts added, time of the write: stats/freshness.c, kept in
 * fstore.aggregation_state).
 */
static void
note_write(AggView *av, AggCounts *c, bool stream)
{
	int64		d[FS_STAT_NCOUNTERS] = {0};

	d[FS_STAT_ROWS_WRITTEN] = c->applied;
	d[FS_STAT_ROWS_LATE] = c->too_old;
	if (stream)
	{
		d[FS_STAT_STREAM_APPLIED] = c->applied + c->too_old;
		d[FS_STAT_STREAM_BATCHES] = 1;
		d[FS_STAT_DEAD_LETTERS] = c->dead;
	}
	fs_stats_add(av->view_id, d);
	if (c->applied > 0)
		fs_freshness_note(av->view_id, true, c->max_ts);
}

/* One batch of the queue (caller: in a transaction, with a snapshot). */
static void
stream_batch(AggView *av, int max_rows, AggCounts *out)
{
	StringInfoData src;
	FsUserContext uc;

	memset(out, 0, sizeof(AggCounts));
	if (!OidIsValid(av->stream_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("queue table of aggregation view \"%s\" does not exist", av->name)));
	initStringInfo(&src);
	appendStringInfo(&src,
					 "DELETE FROM fstore_stream.%s WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
					 "SELECT ctid FROM fstore_stream.%s LIMIT %d)) RETURNING ",
					 quote_identifier(av->name), quote_identifier(av->name), Max(max_rows, 1));
	append_list(&src, av, "", true, true);

	fs_become_owner(av->owner, &uc);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (tile_apply_possible(av))
		stream_batch_c(av, src.data, Max(max_rows, 1), out);
	else
		agg_ingest(av, AGG_STREAM, src.data, 0, NULL, NULL, out);
	SPI_finish();
	fs_restore_user(&uc);
	if (out->events > 0)
		note_write(av, out, true);
}

/* ---- expired tiles ---- */

/*
 * Removes the expired tiles of every key: of the whole table when to is
 * InvalidBlockNumber, else of the blocks [from, to) (a TID range scan, so
 * that a stream worker sweeps a large view in slices instead of holding up
 * one batch with a scan of the whole table).
 */
static int64
sweep(AggView *av, BlockNumber from, BlockNumber to)
{
	StringInfoData sql;
	FsUserContext uc;
	Oid			types[3] = {TIMESTAMPTZOID, TIDOID, TIDOID};
	Datum		vals[3];
	ItemPointerData lo;
	ItemPointerData hi;
	int64		n;

	vals[0] = TimestampTzGetDatum(horizon(av));
	initStringInfo(&sql);
	if (to == InvalidBlockNumber)
		appendStringInfo(&sql, "DELETE FROM fstore_offline.%s WHERE tile_start OPERATOR(pg_catalog.<) $1",
						 quote_identifier(av->name));
	else
	{
		/*
		 * The condition on tile_start is written so that no index can
		 * serve it: the BRIN index's estimate is low (few tiles expire
		 * between sweeps) but its ranges get wide as tiles are updated in
		 * place, and its lossy scan reads most of the table; a TID range
		 * scan reads exactly the slice.
		 */
		ItemPointerSet(&lo, from, FirstOffsetNumber);
		ItemPointerSet(&hi, to, FirstOffsetNumber);
		vals[1] = PointerGetDatum(&lo);
		vals[2] = PointerGetDatum(&hi);
		appendStringInfo(&sql, "DELETE FROM fstore_offline.%s"
						 " WHERE (tile_start OPERATOR(pg_catalog.<) $1) IS TRUE"
						 " AND ctid OPERATOR(pg_catalog.>=) $2"
						 " AND ctid OPERATOR(pg_catalog.<) $3",
						 quote_identifier(av->name));
	}
	fs_become_owner(av->owner, &uc);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(sql.data, to != InvalidBlockNumber ? 3 : 1,
							  types, vals, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not remove the expired tiles of aggregation view \"%s\"", av->name);
	n = (int64) SPI_processed;
	SPI_finish();
	fs_restore_user(&uc);
	return n;
}

/* when this process last swept each view (stream workers) */
typedef struct SweepEntry
{
	int64		view_id;
	TimestampTz at;				/* of the last slice */
	BlockNumber next;			/* the next slice's first block */
} SweepEntry;

static HTAB *sweeps = NULL;

void
fs_agg_stream_batch(const char *name, int max_rows, FsStreamBatch *out)
{
	AggView    *av = agg_load(name);
	AggCounts	c;

	stream_batch(av, max_rows, &c);
	memset(out, 0, sizeof(FsStreamBatch));
	out->events = c.events;
	out->applied = c.applied + c.too_old;
	out->dead = c.dead;
	out->written = c.applied;
	out->late = c.too_old;

	/* now and then, remove the expired tiles of every key */
	{
		SweepEntry *e;
		bool		found;
		TimestampTz now = GetCurrentTimestamp();

		if (sweeps == NULL)
		{
			HASHCTL		ctl;

			ctl.keysize = sizeof(int64);
			ctl.entrysize = sizeof(SweepEntry);
			sweeps = hash_create("fstore aggregation sweeps", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS);
		}
		e = hash_search(sweeps, &av->view_id, HASH_ENTER, &found);
		if (!found)
		{
			e->at = 0;
			e->next = 0;
		}
		if (now - e->at >= (int64) SWEEP_SLICE_SECS * USECS_PER_SEC)
		{
			Relation	rel = table_open(av->tiles_relid, AccessShareLock);
			BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
			BlockNumber slice;

			table_close(rel, AccessShareLock);
			slice = Max(nblocks / SWEEP_SLICES + 1, 16);
			if (e->next >= nblocks || nblocks - e->next <= slice)
			{
				/* the last slice: up to the end, wherever it is by now */
				(void) sweep(av, e->next, MaxBlockNumber);
				e->next = 0;
			}
			else
			{
				(void) sweep(av, e->next, e->next + slice);
				e->next += slice;
			}
			e->at = now;
		}
	}
}

const char *
fs_agg_worker_views_sql(void)
{
	if (OidIsValid(rel_in("fstore", "aggregation_views")))
		return "SELECT view_id::pg_catalog.int8, name::pg_catalog.text FROM fstore.feature_views"
			" UNION ALL SELECT view_id, name FROM fstore.aggregation_views ORDER BY 1";
	return "SELECT view_id::pg_catalog.int8, name::pg_catalog.text"
		" FROM fstore.feature_views ORDER BY 1";
}

/* The id of the aggregation view "name" (its queue's trigger: ingest/queue.c). */
int64
fs_agg_view_id(const char *name)
{
	return agg_load(name)->view_id;
}

/* ---- SQL entry points reached through the hooks ---- */

static char *
name_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("aggregation view name must not be NULL")));
	return text_to_cstring(PG_GETARG_TEXT_PP(0));
}

/*
 * Refuses fs_write's rows with a NULL key or event_ts (23502), a time that
 * is not finite or later than now() + max_future (22008), before anything
 * is applied.
 */
static void
check_event_rows(AggView *av, ArrayType *arr)
{
	TupleDesc	td = lookup_rowtype_tupdesc(av->stream_rowtype, -1);
	Datum	   *elems;
	bool	   *enulls;
	int			n;
	int			i;
	int			k;
	int			tsatt = -1;
	int		   *katt = palloc(sizeof(int) * av->nkeys);
	Datum	   *vals = palloc(sizeof(Datum) * td->natts);
	bool	   *nulls = palloc(sizeof(bool) * td->natts);
	TimestampTz limit = future_limit(av);

	for (k = 0; k < av->nkeys; k++)
		katt[k] = -1;
	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);

		if (a->attisdropped)
			continue;
		if (strcmp(NameStr(a->attname), "event_ts") == 0 && a->atttypid == TIMESTAMPTZOID)
			tsatt = i;
		for (k = 0; k < av->nkeys; k++)
			if (strcmp(NameStr(a->attname), av->keys[k]) == 0)
				katt[k] = i;
	}
	for (k = 0; k < av->nkeys; k++)
		if (katt[k] < 0)
			tsatt = -1;
	if (tsatt < 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("queue table of aggregation view \"%s\" lacks a key column or its event_ts timestamptz column",
						av->name)));
	deconstruct_array(arr, av->stream_rowtype, -1, false, TYPALIGN_DOUBLE,
					  &elems, &enulls, &n);
	for (i = 0; i < n; i++)
	{
		HeapTupleHeader h;
		HeapTupleData tup;
		TimestampTz ts;

		if (enulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("row %d for aggregation view \"%s\" is NULL", i + 1, av->name)));
		h = DatumGetHeapTupleHeader(elems[i]);
		tup.t_len = HeapTupleHeaderGetDatumLength(h);
		ItemPointerSetInvalid(&tup.t_self);
		tup.t_tableOid = InvalidOid;
		tup.t_data = h;
		heap_deform_tuple(&tup, td, vals, nulls);
		for (k = 0; k < av->nkeys; k++)
			if (nulls[katt[k]])
				ereport(ERROR,
						(errcode(ERRCODE_NOT_NULL_VIOLATION),
						 errmsg("null value in key column \"%s\" of row %d for aggregation view \"%s\"",
								av->keys[k], i + 1, av->name)));
		if (nulls[tsatt])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("null value in column \"event_ts\" of row %d for aggregation view \"%s\"",
							i + 1, av->name)));
		ts = DatumGetTimestampTz(vals[tsatt]);
		if (TIMESTAMP_NOT_FINITE(ts))
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("event_ts of row %d for aggregation view \"%s\" is not finite",
							i + 1, av->name)));
		if (ts > limit)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("event_ts of row %d for aggregation view \"%s\" is too far in the future",
							i + 1, av->name),
					 errdetail("Events later than now() + max_future (%lld seconds) are refused.",
							   (long long) av->future_secs)));
	}
	ReleaseTupleDesc(td);
}

/* fs_write(view, rows fstore_stream.<view>[]) -> (written, unchanged, late) */
Datum
fs_agg_write(FunctionCallInfo fcinfo)
{
	AggView    *av = agg_load(name_arg(fcinfo));
	AggCounts	c = {0};
	TupleDesc	td;
	Datum		values[3];
	bool		nulls[3] = {false};

	check_write_privileges(av);
	if (!PG_ARGISNULL(1))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
		StringInfoData src;
		Oid			types[1];
		Datum		vals[1];
		FsUserContext uc;

		if (!OidIsValid(av->stream_rowtype) || ARR_ELEMTYPE(arr) != av->stream_rowtype)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("rows have type %s, but aggregation view \"%s\" expects events of type %s",
							format_type_be(get_array_type(ARR_ELEMTYPE(arr))), av->name,
							OidIsValid(av->stream_rowtype) ?
							format_type_be(get_array_type(av->stream_rowtype)) : "(missing)"),
					 errhint("Build the events as ARRAY[ROW(...)]::fstore_stream.%s[].",
							 quote_identifier(av->name))));
		check_event_rows(av, arr);
		initStringInfo(&src);
		appendStringInfoString(&src, "SELECT ");
		append_list(&src, av, "fs_r.", true, true);
		appendStringInfoString(&src, " FROM pg_catalog.unnest($3) AS fs_r");
		types[0] = get_array_type(av->stream_rowtype);
		vals[0] = PointerGetDatum(arr);
		fs_become_owner(av->owner, &uc);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		agg_ingest(av, AGG_WRITE, src.data, 1, types, vals, &c);
		SPI_finish();
		fs_restore_user(&uc);
		note_write(av, &c, false);
	}
	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(c.applied);
	values[1] = Int64GetDatum(0);
	values[2] = Int64GetDatum(c.too_old);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), values, nulls)));
}

/*
 * fs_write_query(view, query) of an aggregation view: the query's rows
 * (key columns, event columns, event_ts, by position) into the tiles.  The
 * query is the caller's: it runs as the caller, who must hold the tiles'
 * privileges (checked first).
 */
Datum
fs_agg_write_query(FunctionCallInfo fcinfo)
{
	AggView    *av = agg_load(name_arg(fcinfo));
	AggCounts	c = {0};
	StringInfoData src;
	TupleDesc	td;
	Datum		values[3];
	bool		nulls[3] = {false};
	int			i;

	check_write_privileges(av);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("query must not be NULL")));
	initStringInfo(&src);
	appendStringInfoString(&src, "SELECT ");
	append_list(&src, av, "fs_q.", true, false);
	appendStringInfo(&src, ", CAST(fs_q.event_ts AS pg_catalog.timestamptz) AS event_ts FROM (\n%s\n) AS fs_q (",
					 fs_single_select(text_to_cstring(PG_GETARG_TEXT_PP(1))));
	for (i = 0; i < av->nkeys; i++)
		appendStringInfo(&src, "%s%s", i ? ", " : "", quote_identifier(av->keys[i]));
	for (i = 0; i < av->nevents; i++)
		appendStringInfo(&src, ", %s", quote_identifier(av->events[i]));
	appendStringInfoString(&src, ", event_ts)");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	agg_ingest(av, AGG_WRITE, src.data, 0, NULL, NULL, &c);
	SPI_finish();
	note_write(av, &c, false);
	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(c.applied);
	values[1] = Int64GetDatum(0);
	values[2] = Int64GetDatum(c.too_old);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), values, nulls)));
}

/*
 * fs_materialize(view, since, until) of an aggregation view: the source's
 * events with since <= ts < until (tile-aligned) replace the tiles of that
 * range, so a re-run gives the same tiles.
 */
Datum
fs_agg_materialize(FunctionCallInfo fcinfo)
{
	char	   *name = name_arg(fcinfo);
	AggView    *av = agg_load(name);
	TimestampTz since;
	TimestampTz until;
	TimestampTz started;
	TimestampTz finished;
	AggCounts	c = {0};
	TupleDesc	td;
	Datum		values[5];
	bool		nulls[5] = {false};
	Oid			catrel = rel_in("fstore", "aggregation_views");

	check_write_privileges(av);
	if (!ConditionalLockDatabaseObject(catrel, (Oid) av->view_id, 1, ExclusiveLock))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("aggregation view \"%s\" is already being materialized", av->name),
				 errhint("Try again once that run has finished.")));
	av = agg_load(name);		/* the watermark after the lock */
	if (av->source == NULL && av->source_query == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("aggregation view \"%s\" has no source", av->name),
				 errhint("Create the view with source => a table or view, or source_query => a query.")));

	since = PG_ARGISNULL(1) ? av->watermark : PG_GETARG_TIMESTAMPTZ(1);
	until = PG_ARGISNULL(2) ? tile_floor(av, GetCurrentTransactionStartTimestamp()) :
		PG_GETARG_TIMESTAMPTZ(2);
	if (TIMESTAMP_NOT_FINITE(until))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("until must be a finite time")));
	if (TIMESTAMP_IS_NOEND(since))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("since must not be infinity")));
	if (since > until)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("since must not be later than until")));
	if (!tile_aligned(av, since) || !tile_aligned(av, until))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("since and until must be tile boundaries of aggregation view \"%s\"", av->name),
				 errdetail("A backfill replaces whole tiles: its range starts and ends at multiples of the granularity (%lld seconds) from the Unix epoch.",
						   (long long) av->gran_secs)));

	started = GetCurrentTimestamp();
	if (since < until)
	{
		StringInfoData src;
		StringInfoData del;
		FsUserContext uc;
		Oid			types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
		Datum		vals[2] = {TimestampTzGetDatum(since), TimestampTzGetDatum(until)};
		int			i;
		const char *ts = quote_identifier(av->ts_column);

		initStringInfo(&src);
		appendStringInfoString(&src, "SELECT ");
		for (i = 0; i < av->nkeys; i++)
			appendStringInfo(&src, "%ss.%s", i ? ", " : "", quote_identifier(av->keys[i]));
		for (i = 0; i < av->nevents; i++)
			appendStringInfo(&src, ", s.%s", quote_identifier(av->events[i]));
		appendStringInfo(&src, ", CAST(s.%s AS pg_catalog.timestamptz) AS event_ts FROM ", ts);
		if (av->source)
			appendStringInfoString(&src, av->source);
		else
			appendStringInfo(&src, "(\n%s\n)", av->source_query);
		appendStringInfo(&src, " AS s WHERE s.%s OPERATOR(pg_catalog.>=) $3 AND s.%s OPERATOR(pg_catalog.<) $4",
						 ts, ts);

		initStringInfo(&del);
		appendStringInfo(&del, "DELETE FROM fstore_offline.%s WHERE tile_start OPERATOR(pg_catalog.>=) $1"
						 " AND tile_start OPERATOR(pg_catalog.<) $2", quote_identifier(av->name));

		/* the source is its owner's code: it runs as the owner, restricted */
		fs_become_owner(av->owner, &uc);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args(del.data, 2, types, vals, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not replace the tiles of aggregation view \"%s\"", av->name);
		CommandCounterIncrement();
		agg_ingest(av, AGG_WRITE, src.data, 2, types, vals, &c);
		SPI_finish();
		fs_restore_user(&uc);
		note_write(av, &c, false);
	}
	finished = GetCurrentTimestamp();

	{
		static const char *record_sql =
			"INSERT INTO fstore.materialization_runs"
			" (view_name, since, until, read, written, unchanged, late, started_at, finished_at)"
			" VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)";
		static const char *watermark_sql =
			"UPDATE fstore.aggregation_views SET watermark = GREATEST(watermark, $2)"
			" WHERE view_id OPERATOR(pg_catalog.=) $1";
		Oid			rtypes[8] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID,
			INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
		Datum		rvals[8];
		Oid			wtypes[2] = {INT8OID, TIMESTAMPTZOID};
		Datum		wvals[2];

		rvals[0] = CStringGetTextDatum(av->name);
		rvals[1] = TimestampTzGetDatum(since);
		rvals[2] = TimestampTzGetDatum(until);
		rvals[3] = Int64GetDatum(c.events);
		rvals[4] = Int64GetDatum(c.applied);
		rvals[5] = Int64GetDatum(c.too_old);
		rvals[6] = TimestampTzGetDatum(started);
		rvals[7] = TimestampTzGetDatum(finished);
		fs_catalog_exec_as_owner(record_sql, 8, rtypes, rvals, SPI_OK_INSERT);
		wvals[0] = Int64GetDatum(av->view_id);
		wvals[1] = TimestampTzGetDatum(until);
		fs_catalog_exec_as_owner(watermark_sql, 2, wtypes, wvals, SPI_OK_UPDATE);
	}

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(c.events);
	values[1] = Int64GetDatum(c.applied);
	values[2] = Int64GetDatum(0);
	values[3] = Int64GetDatum(c.too_old);
	values[4] = Float8GetDatum((double) (finished - started) / USECS_PER_SEC);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), values, nulls)));
}

/* fs_stream_apply(view, max_rows) of an aggregation view */
Datum
fs_agg_stream_apply(FunctionCallInfo fcinfo)
{
	AggView    *av = agg_load(name_arg(fcinfo));
	int64		limit = PG_ARGISNULL(1) ? -1 : PG_GETARG_INT32(1);
	AggCounts	total = {0};
	AclMode		qmodes[2] = {ACL_SELECT, ACL_DELETE};
	TupleDesc	td;
	Datum		values[6];
	bool		nulls[6] = {false};

	if (limit < 0 && !PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows must not be negative")));
	check_write_privileges(av);
	if (OidIsValid(av->stream_relid))
		check_privileges(av->stream_relid, qmodes, 2);
	for (;;)
	{
		AggCounts	b;
		int			want = fs_stream_batch_size;

		if (limit >= 0)
			want = (int) Min((int64) want, limit - total.events);
		if (want <= 0)
			break;
		stream_batch(av, want, &b);
		total.events += b.events;
		total.applied += b.applied;
		total.too_old += b.too_old;
		total.dead += b.dead;
		if (b.events < want)
			break;
		CommandCounterIncrement();
	}
	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(total.events);
	values[1] = Int64GetDatum(total.applied + total.too_old);
	values[2] = Int64GetDatum(total.dead);
	values[3] = Int64GetDatum(total.applied);
	values[4] = Int64GetDatum(0);
	values[5] = Int64GetDatum(total.too_old);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), values, nulls)));
}

/* fs_stream_wait(view, timeout): the aggregation view whose queue to wait for */
const char *
fs_agg_stream_wait_name(FunctionCallInfo fcinfo)
{
	return agg_load(name_arg(fcinfo))->name;
}

/* fs_compact_aggregation_view(name) -> tiles removed */
Datum
fs_agg_compact(PG_FUNCTION_ARGS)
{
	AggView    *av = agg_load(name_arg(fcinfo));

	check_write_privileges(av);
	PG_RETURN_INT64(sweep(av, 0, InvalidBlockNumber));
}

/* ---- reads ---- */

/* saved plans of the read statements, by view */
typedef struct ReadPlan
{
	int64		view_id;
	char	   *sql;			/* in TopMemoryContext */
	Oid			key_array_type;
	SPIPlanPtr	plan;
} ReadPlan;

static HTAB *read_plans = NULL;

static SPIPlanPtr
read_plan(AggView *av)
{
	ReadPlan   *p;
	bool		found;
	Oid			types[2];

	if (read_plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(ReadPlan);
		read_plans = hash_create("fstore aggregation read plans", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS);
	}
	p = hash_search(read_plans, &av->view_id, HASH_ENTER, &found);
	if (found && p->plan && strcmp(p->sql, av->read_sql) == 0 &&
		p->key_array_type == av->key_array_type)
		return p->plan;
	if (found && p->plan)
	{
		SPI_freeplan(p->plan);
		pfree(p->sql);
	}
	p->plan = NULL;
	p->sql = MemoryContextStrdup(TopMemoryContext, av->read_sql);
	p->key_array_type = av->key_array_type;
	types[0] = av->key_array_type;
	types[1] = TIMESTAMPTZOID;
	{
		SPIPlanPtr	plan = SPI_prepare(av->read_sql, 2, types);

		if (plan == NULL)
			elog(ERROR, "could not prepare the read of aggregation view \"%s\": %s",
				 av->name, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		p->plan = plan;
	}
	return p->plan;
}

static Datum
agg_get_many(FunctionCallInfo fcinfo, bool packed, TimestampTz at)
{
	Oid			rowtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	Oid			keystype = get_fn_expr_argtype(fcinfo->flinfo, 1);
	Oid			typrelid = get_typ_typrelid(rowtype);
	AggView    *av;
	ArrayType  *keys;
	int			nkeys;
	FsUserContext uc;
	Datum		args[2];
	MemoryContext caller = CurrentMemoryContext;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bytea	   *result = NULL;
	uint64		i;

	if (!OidIsValid(typrelid) || get_rel_relkind(typrelid) != RELKIND_VIEW)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("type %s is not the row type of an aggregation view",
						OidIsValid(rowtype) ? format_type_be(rowtype) : "unknown")));
	av = agg_load(get_rel_name(typrelid));
	if (keystype != av->key_array_type)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("keys have type %s, but aggregation view \"%s\" expects %s",
						OidIsValid(keystype) ? format_type_be(keystype) : "unknown",
						av->name, format_type_be(av->key_array_type)),
				 errhint("Cast the key array, for example ARRAY[...]::%s.",
						 format_type_be(av->key_array_type))));
	fs_check_select(av->view_relid);

	if (!packed)
		InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(1))
	{
		if (packed)
			PG_RETURN_NULL();
		return (Datum) 0;
	}
	keys = PG_GETARG_ARRAYTYPE_P(1);
	nkeys = ArrayGetNItems(ARR_NDIM(keys), ARR_DIMS(keys));
	if (nkeys > fs_max_keys_per_call)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many keys in one call: %d, the limit is %d",
						nkeys, fs_max_keys_per_call),
				 errhint("Split the keys over several calls, or raise fstore.max_keys_per_call.")));

	args[0] = PointerGetDatum(keys);
	args[1] = TimestampTzGetDatum(at);
	fs_stats_count_lookup(av->view_id, nkeys, 0, 0);
	fs_become_owner(av->owner, &uc);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(read_plan(av), args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read aggregation view \"%s\"", av->name);

	if (!packed)
	{
		TupleDesc	sd = SPI_tuptable->tupdesc;
		TupleDesc	rd = rsinfo->setDesc;
		Datum	   *vals = palloc(sizeof(Datum) * Max(sd->natts, 1));
		bool	   *nulls = palloc(sizeof(bool) * Max(sd->natts, 1));

		if (sd->natts != rd->natts)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("fstore_online.%s no longer matches aggregation view \"%s\"",
							av->name, av->name)));
		for (i = 0; i < SPI_processed; i++)
		{
			heap_deform_tuple(SPI_tuptable->vals[i], sd, vals, nulls);
			tuplestore_putvalues(rsinfo->setResult, rd, vals, nulls);
		}
	}
	else
	{
		TupleDesc	sd = SPI_tuptable->tupdesc;
		int			nf = sd->natts - av->nkeys - 1;
		const char **names = palloc(sizeof(char *) * Max(nf, 1));
		Oid		   *types = palloc(sizeof(Oid) * Max(nf, 1));
		int		   *attoff = palloc(sizeof(int) * Max(nf, 1));
		Datum	   *vals = palloc(sizeof(Datum) * sd->natts);
		bool	   *nulls = palloc(sizeof(bool) * sd->natts);
		FsPacker	pk;
		int			f;

		for (f = 0; f < nf; f++)
		{
			names[f] = NameStr(TupleDescAttr(sd, av->nkeys + f)->attname);
			types[f] = TupleDescAttr(sd, av->nkeys + f)->atttypid;
			attoff[f] = av->nkeys + f;
		}
		fs_packer_begin(&pk, caller, (int) SPI_processed, nf, names, types);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		keynull = false;
			int			k;

			heap_deform_tuple(SPI_tuptable->vals[i], sd, vals, nulls);
			for (k = 0; k < av->nkeys; k++)
				keynull |= nulls[k];
			if (keynull)
				fs_packer_absent(&pk);
			else
				fs_packer_row(&pk, nulls[sd->natts - 1] ? DT_NOBEGIN :
							  DatumGetTimestampTz(vals[sd->natts - 1]),
							  vals, nulls, attoff);
		}
		{
			MemoryContext old = MemoryContextSwitchTo(caller);

			result = fs_packer_finish(&pk);
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	fs_restore_user(&uc);
	if (packed)
		PG_RETURN_BYTEA_P(result);
	return (Datum) 0;
}

Datum
fs_agg_get_many(FunctionCallInfo fcinfo, bool packed)
{
	return agg_get_many(fcinfo, packed, GetCurrentTransactionStartTimestamp());
}

/* fs_get_many_at(row_type, keys, at): the aggregates at time at */
Datum
fs_agg_get_many_at(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the time of the read must not be NULL")));
	if (TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(2)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the time of the read must be finite")));
	return agg_get_many(fcinfo, false, PG_GETARG_TIMESTAMPTZ(2));
}

/* ---- feature services (service.c) ---- */

/* The key array type of aggregation view "name" and its entity. */
Oid
fs_agg_key_array_type(const char *name, char **entity)
{
	AggView    *av = agg_load(name);

	*entity = av->entity;
	return av->key_array_type;
}

/*
 * Locks fstore_online.<name> of an aggregation view in a feature service and
 * checks the caller may SELECT it (before anything is read).
 */
void
fs_agg_service_check(const char *name)
{
	Oid			relid = rel_in("fstore_online", name);

	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_VIEW)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("aggregation view \"%s\" does not exist", name)));
	LockRelationOid(relid, AccessShareLock);
	fs_check_select(relid);
}

/*
 * The row of aggregation view "name" (its fstore_online row type: keys,
 * aggregates, event_ts) at time "at" for each of nreq requests, in request
 * order, in the caller's memory context; *desc describes them.  The
 * requests have ncols columns named colnames (values rvals[i * ncols + j]);
 * the view's key columns are found among them by name.  A request that is
 * NULL (risnull) or has a NULL key column gets NULL instead of a row.  The read is fs_get_many_at's: the same SQL, as the owner.
 */
HeapTuple *
fs_agg_service_read(const char *name, int nreq, int ncols, char **colnames,
					Oid *coltypes, Datum *rvals, bool *rnulls, bool *risnull,
					TimestampTz at, TupleDesc *desc)
{
	MemoryContext caller = CurrentMemoryContext;
	AggView    *av = agg_load(name);
	Oid			elemtype = get_element_type(av->key_array_type);
	int			keycol[FS_MAX_KEYS];
	TupleDesc	ktd = NULL;
	Datum	   *elems = palloc(sizeof(Datum) * Max(nreq, 1));
	bool	   *enulls = palloc(sizeof(bool) * Max(nreq, 1));
	HeapTuple  *rows = palloc0(sizeof(HeapTuple) * Max(nreq, 1));
	int			dims[1];
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;
	ArrayType  *keys;
	FsUserContext uc;
	Datum		args[2];
	int			i;
	int			k;

	if (av->nkeys > FS_MAX_KEYS)
		elog(ERROR, "aggregation view \"%s\" has too many key columns", name);
	if (av->nkeys > 1)
		ktd = lookup_rowtype_tupdesc_copy(elemtype, -1);
	for (k = 0; k < av->nkeys; k++)
	{
		Oid			want = ktd ? TupleDescAttr(ktd, k)->atttypid : elemtype;
		int			j;

		for (j = 0; j < ncols; j++)
			if (strcmp(colnames[j], av->keys[k]) == 0)
				break;
		if (j == ncols || coltypes[j] != want)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("the request columns do not match key column \"%s\" of aggregation view \"%s\"",
							av->keys[k], name),
					 errhint("Create the feature service again.")));
		keycol[k] = j;
	}

	/* the key array fs_get_many_at takes */
	for (i = 0; i < nreq; i++)
	{
		Datum		kv[FS_MAX_KEYS];
		bool		kn[FS_MAX_KEYS];
		bool		anynull = risnull[i];

		for (k = 0; k < av->nkeys && !anynull; k++)
		{
			kv[k] = rvals[i * ncols + keycol[k]];
			kn[k] = rnulls[i * ncols + keycol[k]];
			anynull |= kn[k];
		}
		enulls[i] = anynull;
		elems[i] = (Datum) 0;
		if (anynull)
			continue;
		elems[i] = ktd ? HeapTupleGetDatum(heap_form_tuple(ktd, kv, kn)) : kv[0];
	}
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	dims[0] = nreq;
	keys = construct_md_array(elems, enulls, 1, dims, lbs, elemtype,
							  typlen, typbyval, typalign);

	args[0] = PointerGetDatum(keys);
	args[1] = TimestampTzGetDatum(at);
	fs_stats_count_lookup(av->view_id, nreq, 0, 0);
	fs_become_owner(av->owner, &uc);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(read_plan(av), args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read aggregation view \"%s\"", av->name);
	if (SPI_processed != (uint64) nreq)
		elog(ERROR, "read of aggregation view \"%s\" returned " UINT64_FORMAT " rows for %d keys",
			 av->name, SPI_processed, nreq);
	{
		MemoryContext old = MemoryContextSwitchTo(caller);

		*desc = CreateTupleDescCopy(SPI_tuptable->tupdesc);
		for (i = 0; i < nreq; i++)
			rows[i] = enulls[i] ? NULL : heap_copytuple(SPI_tuptable->vals[i]);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	fs_restore_user(&uc);
	return rows;
}
