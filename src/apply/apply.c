/*
 * apply.c
 *		The apply engine: the change-detecting upsert that every writer of
 *		a feature view goes through (fs_write and fs_write_query in
 *		online/write.c, the stream batches of ingest/queue.c, fs_materialize),
 *		and the statement trigger that makes plain DML on an online table
 *		take the same lock.
 *
 * An apply takes the view's writer lock (an object lock on the view that
 * fs_write, fs_write_query, the workers, fs_materialize and, through a
 * statement trigger, plain DML on the online table all take), so no two
 * writers of one view interleave; readers never block.  It then reads with
 * a snapshot taken after the lock, which sees every earlier writer.
 *
 * Rows are sorted by key, event_ts and input position; each distinct key
 * costs one probe of the online primary key, and late rows one probe of
 * the history index each.  decide.c holds the rules (written, unchanged,
 * late, superseded); this file does the reading and writing around them.
 * The online row is written at most once per key and call.
 *
 * Writes go through the executor's simple-relation routines (as logical
 * replication's apply does), so indexes, constraints and row triggers on
 * the tables behave as for ordinary DML.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "apply/apply.h"
#include "apply/decide.h"
#include "cache/cache.h"
#include "catalog/acl.h"
#include "catalog/query.h"
#include "keys/keys.h"
#include "shard/shard.h"
#include "stats/freshness.h"
#include "stats/progress.h"
#include "stats/stats.h"

PG_FUNCTION_INFO_V1(fs_online_dml);
PG_FUNCTION_INFO_V1(fs_ordinal);

/* rows fs_write_select hands to the engine at a time */
#define WRITE_QUERY_CHUNK 10000

struct FsApply
{
	FsView	   *view;
	Relation	online;
	Relation	offline;
	Relation	pkidx;
	Relation	histidx;
	EState	   *estate;
	ResultRelInfo *online_rri;
	ResultRelInfo *offline_rri;
	EPQState	epqstate;
	IndexScanDesc oscan;
	IndexScanDesc hscan;
	ScanKeyData osk[FS_MAX_KEYS];
	ScanKeyData hsk[FS_MAX_KEYS + 1];
	TupleTableSlot *oslot;		/* the key's current online row */
	TupleTableSlot *newslot;	/* online row to write */
	TupleTableSlot *hslot;		/* history row to append */
	TupleTableSlot *hread;		/* history row read back */
	Snapshot	snapshot;
	Snapshot	xact_snapshot;	/* REPEATABLE READ and up: checked */
	MemoryContext cxt;			/* lives as long as the apply */
	TimestampTz created_at;
	MemoryContext keycxt;
	Datum	   *cur_vals;		/* online row, logical layout */
	bool	   *cur_nulls;
	Datum	   *hist_vals;		/* history row, logical layout */
	bool	   *hist_nulls;
	FsApplyCounts counts;
	int64		nrows;			/* rows applied */
	TimestampTz max_ts;			/* newest event_ts applied */
	FsShardRouter *shard;		/* sharded view: rows go to the shards */

	/*
	 * Walking the primary key: for a large batch of sorted keys, one index
	 * scan moves forward from key to key instead of descending the tree for
	 * each (see probe_online).  wscan is positioned with "first key column
	 * >= k" and reads index tuples to compare whole keys.
	 */
	IndexScanDesc wscan;
	ScanKeyData wsk;
	bool		walking;		/* use the walk for the keys of this call */
	bool		walk_positioned;	/* wscan has a current entry, or ended */
	bool		walk_valid;		/* ... and it is a current entry */
	int			walk_keys;		/* keys probed by walking in this call */
	int			walk_jumps;		/* of which needed a new descent */
};

/* batches of at least this many keys walk the primary key */
#define WALK_MIN_KEYS	256
/* entries stepped over before a walk descends again instead */
#define WALK_STEPS		8

/*
 * The applies running in this backend, innermost last, with the
 * subtransaction level each began at: a query of fs_write_query (or a
 * trigger of the view) that writes the view again while its apply runs
 * gets a clear error instead of a duplicate key or an "invisible tuple".
 */
typedef struct ActiveApply
{
	int64		view_id;
	int			nest_level;
} ActiveApply;

#define MAX_ACTIVE_APPLIES 16
static ActiveApply active[MAX_ACTIVE_APPLIES];
static int	nactive = 0;
static bool active_callbacks = false;

static void
active_xact_callback(XactEvent event, void *arg)
{
	nactive = 0;
}

static void
active_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		int			level = GetCurrentTransactionNestLevel();

		while (nactive > 0 && active[nactive - 1].nest_level >= level)
			nactive--;
	}
}

/* Raises 55006 if an apply of the view is running in this backend. */
static void
check_not_active(FsView *view)
{
	int			i;

	for (i = 0; i < nactive; i++)
		if (active[i].view_id == view->view_id)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("feature view \"%s\" is being written by this statement already",
							view->name),
					 errdetail("The query of fs_write_query or fs_materialize, or a trigger, writes to the feature view the call writes to."),
					 errhint("Read other tables in the query; write to the view with one call.")));
}

static void
active_push(FsView *view)
{
	check_not_active(view);
	if (!active_callbacks)
	{
		RegisterXactCallback(active_xact_callback, NULL);
		RegisterSubXactCallback(active_subxact_callback, NULL);
		active_callbacks = true;
	}
	if (nactive == MAX_ACTIVE_APPLIES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many nested writes of feature views")));
	active[nactive].view_id = view->view_id;
	active[nactive].nest_level = GetCurrentTransactionNestLevel();
	nactive++;
}

static void
active_pop(FsView *view)
{
	if (nactive > 0 && active[nactive - 1].view_id == view->view_id)
		nactive--;
}

/* Refuses a row with a NULL key column or NULL event_ts (23502). */
void
fs_apply_check_row(FsView *view, FsRow *row, int rowno)
{
	int			k;

	for (k = 0; k < view->nkeys; k++)
		if (row->nulls[k])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("null value in key column \"%s\" of row %d for feature view \"%s\"",
							view->cols[k].name, rowno, view->name),
					 errdetail("Nothing of this call was applied.")));
	if (row->nulls[view->ts_col])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null value in column \"event_ts\" of row %d for feature view \"%s\"",
						rowno, view->name),
				 errdetail("Nothing of this call was applied.")));
	if (!fs_row_ts_finite(view, row))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("event_ts of row %d for feature view \"%s\" is not finite",
						rowno, view->name),
				 errdetail("Nothing of this call was applied."),
				 errhint("Give every row the time its values were observed; infinity would freeze the key for ever.")));
}

/* event_ts is neither infinity nor -infinity */
bool
fs_row_ts_finite(FsView *view, const FsRow *row)
{
	return !TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(row->values[view->ts_col]));
}

static RangeTblEntry *
make_rte(Relation rel)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	return rte;
}

FsApply *
fs_apply_begin(FsView *view)
{
	FsApply    *ap = palloc0(sizeof(FsApply));
	EState	   *estate;
	int			nk = view->nkeys;
	int			k;

	ap->view = view;
	ap->cxt = CurrentMemoryContext;
	fs_check_write_privileges(view);
	ap->shard = fs_shard_router_begin(view);
	if (ap->shard)
		return ap;
	if (view->offline_problem)	/* found when the metadata was read */
		fs_catalog_check_table(view, FS_TABLE_OFFLINE, NULL);
	active_push(view);

	/*
	 * Table locks first, then the view's writer lock: the order plain DML
	 * takes them in (its statement trigger runs after the table is locked),
	 * so TRUNCATE and fs_write cannot deadlock.
	 */
	ap->online = table_open(view->online_relid, RowExclusiveLock);
	ap->offline = table_open(view->offline_relid, RowExclusiveLock);
	fs_catalog_lock_view_writers(view);

	/* the metadata may predate an ALTER TABLE that committed meanwhile */
	fs_catalog_check_table(view, FS_TABLE_ONLINE, RelationGetDescr(ap->online));
	fs_catalog_check_table(view, FS_TABLE_OFFLINE, RelationGetDescr(ap->offline));

	/* a snapshot taken after the lock sees every earlier writer's commit */
	ap->snapshot = RegisterSnapshot(GetLatestSnapshot());
	if (IsolationUsesXactSnapshot())
		ap->xact_snapshot = GetTransactionSnapshot();

	estate = CreateExecutorState();
	ap->estate = estate;
	ExecInitRangeTable(estate, list_make2(make_rte(ap->online), make_rte(ap->offline)));
	ap->online_rri = makeNode(ResultRelInfo);
	InitResultRelInfo(ap->online_rri, ap->online, 1, NULL, 0);
	ap->offline_rri = makeNode(ResultRelInfo);
	InitResultRelInfo(ap->offline_rri, ap->offline, 2, NULL, 0);
	estate->es_opened_result_relations =
		list_make2(ap->online_rri, ap->offline_rri);
	ExecOpenIndices(ap->online_rri, false);
	ExecOpenIndices(ap->offline_rri, false);
	estate->es_output_cid = GetCurrentCommandId(true);
	estate->es_snapshot = ap->snapshot;
	EvalPlanQualInit(&ap->epqstate, estate, NULL, NIL, -1);
	AfterTriggerBeginQuery();

	ap->pkidx = index_open(view->pkey_relid, AccessShareLock);
	for (k = 0; k < nk; k++)
		ScanKeyEntryInitialize(&ap->osk[k], 0, k + 1, BTEqualStrategyNumber,
							   view->key_opcintype[k], view->cols[k].collation,
							   view->key_eq_proc[k], (Datum) 0);
	ap->oscan = index_beginscan(ap->online, ap->pkidx, ap->snapshot, nk, 0);
	{
		Oid			ge = get_opfamily_member(ap->pkidx->rd_opfamily[0],
											 view->key_opcintype[0],
											 view->key_opcintype[0],
											 BTGreaterEqualStrategyNumber);

		if (!OidIsValid(ge))
			elog(ERROR, "no >= operator for the first key column of feature view \"%s\"",
				 view->name);
		ScanKeyEntryInitialize(&ap->wsk, 0, 1, BTGreaterEqualStrategyNumber,
							   view->key_opcintype[0], view->cols[0].collation,
							   get_opcode(ge), (Datum) 0);
	}

	ap->oslot = table_slot_create(ap->online, &estate->es_tupleTable);
	ap->newslot = ExecInitExtraTupleSlot(estate, RelationGetDescr(ap->online),
										 &TTSOpsVirtual);
	ap->hslot = ExecInitExtraTupleSlot(estate, RelationGetDescr(ap->offline),
									   &TTSOpsVirtual);
	ap->hread = table_slot_create(ap->offline, &estate->es_tupleTable);

	ap->created_at = GetCurrentTimestamp();
	ap->max_ts = DT_NOBEGIN;
	ap->keycxt = AllocSetContextCreate(CurrentMemoryContext, "fstore apply key",
									   ALLOCSET_DEFAULT_SIZES);
	ap->cur_vals = palloc(sizeof(Datum) * view->ncols);
	ap->cur_nulls = palloc(sizeof(bool) * view->ncols);
	ap->hist_vals = palloc(sizeof(Datum) * view->ncols);
	ap->hist_nulls = palloc(sizeof(bool) * view->ncols);
	return ap;
}

void
fs_apply_end(FsApply *ap, FsApplyCounts *counts)
{
	EState	   *estate = ap->estate;

	if (ap->shard)
		goto finish;
	index_endscan(ap->oscan);
	if (ap->wscan)
		index_endscan(ap->wscan);
	if (ap->hscan)
		index_endscan(ap->hscan);
	index_close(ap->pkidx, NoLock);
	if (ap->histidx)
		index_close(ap->histidx, NoLock);

	AfterTriggerEndQuery(estate);
	EvalPlanQualEnd(&ap->epqstate);
	ExecCloseIndices(ap->online_rri);
	ExecCloseIndices(ap->offline_rri);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	table_close(ap->online, NoLock);
	table_close(ap->offline, NoLock);
	UnregisterSnapshot(ap->snapshot);
	MemoryContextDelete(ap->keycxt);

	active_pop(ap->view);
finish:
	fs_stats_count_writes(ap->view->view_id, ap->counts.written,
						  ap->counts.unchanged, ap->counts.late);
	if (ap->nrows > 0)
		fs_freshness_note(ap->view->view_id, false, ap->max_ts);

	/* later commands of this transaction (and later calls) see our rows */
	CommandCounterIncrement();
	ap->counts.rows = ap->nrows;
	ap->counts.max_ts = ap->max_ts;
	*counts = ap->counts;
}

static inline TimestampTz
row_ts(FsView *view, const FsRow *row)
{
	return DatumGetTimestampTz(row->values[view->ts_col]);
}

static int
row_cmp(const void *pa, const void *pb, void *arg)
{
	FsView	   *view = (FsView *) arg;
	const FsRow *a = (const FsRow *) pa;
	const FsRow *b = (const FsRow *) pb;
	int			c = fs_keys_compare(view, a->values, b->values);
	TimestampTz ta;
	TimestampTz tb;

	if (c != 0)
		return c;
	ta = row_ts(view, a);
	tb = row_ts(view, b);
	if (ta != tb)
		return ta < tb ? -1 : 1;
	return (a->ord > b->ord) - (a->ord < b->ord);
}

/*
 * Bytes of two varlena values, after decompression and detoasting: the
 * same value may be stored compressed on one side and arrive plain on the
 * other.
 */
static bool
varlena_bytes_equal(Datum a, Datum b)
{
	struct varlena *va = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(a));
	struct varlena *vb = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(b));
	Size		la = VARSIZE_ANY_EXHDR(va);
	bool		eq = la == VARSIZE_ANY_EXHDR(vb) &&
		memcmp(VARDATA_ANY(va), VARDATA_ANY(vb), la) == 0;

	if ((Pointer) va != DatumGetPointer(a))
		pfree(va);
	if ((Pointer) vb != DatumGetPointer(b))
		pfree(vb);
	return eq;
}

/*
 * IS NOT DISTINCT FROM over the features: bytes first, then the type's =.
 * A type without an equality operator (json, xml, point...) is equal when
 * its values' bytes are, compression and storage aside: for json that is
 * the same text, which is what a re-sent value is.
 */
static bool
features_equal(FsView *view, const Datum *av, const bool *an,
			   const Datum *bv, const bool *bn)
{
	int			j;

	for (j = view->nkeys; j < view->nkeys + view->nfeatures; j++)
	{
		FsColumn   *c = &view->cols[j];

		if (an[j] != bn[j])
			return false;
		if (an[j])
			continue;
		if (c->typbyval ? av[j] == bv[j] :
			datumIsEqual(av[j], bv[j], false, c->typlen))
			continue;
		if (!c->has_eq)
		{
			if (c->typlen == -1 && varlena_bytes_equal(av[j], bv[j]))
				continue;
			return false;
		}
		if (!DatumGetBool(FunctionCall2Coll(&c->eq_finfo, c->collation, av[j], bv[j])))
			return false;
	}
	return true;
}

/* Moves the walk to its next index entry. */
static inline void
walk_next(FsApply *ap)
{
	ap->walk_valid = index_getnext_tid(ap->wscan, ForwardScanDirection) != NULL;
}

/* Positions the walk at the first entry whose first key column >= keyvals[0]. */
static void
walk_descend(FsApply *ap, const Datum *keyvals)
{
	ap->wsk.sk_argument = keyvals[0];
	index_rescan(ap->wscan, &ap->wsk, 1, NULL, 0);
	ap->walk_positioned = true;
	walk_next(ap);
}

/* The walk's current entry compared with keyvals. */
static int
walk_compare(FsApply *ap, const Datum *keyvals)
{
	FsView	   *view = ap->view;
	IndexTuple	itup = ap->wscan->xs_itup;
	int			k;

	for (k = 0; k < view->nkeys; k++)
	{
		bool		isnull;
		Datum		d = index_getattr(itup, k + 1, ap->wscan->xs_itupdesc, &isnull);
		int			c = ApplySortComparator(d, isnull, keyvals[k], false,
											&view->key_ssup[k]);

		if (c != 0)
			return c;
	}
	return 0;
}

/*
 * The key's visible online row, found by walking forward from the previous
 * key: a step or two when the batch's keys are dense in the table, a new
 * descent when the next key is more than WALK_STEPS entries away (with one
 * key column, the descent lands on the key or past it).  Entries of the key
 * are fetched until the visible one (dead versions may precede it).
 */
static bool
walk_to(FsApply *ap, const Datum *keyvals)
{
	int			steps = 0;
	int			c = 1;

	ap->walk_keys++;
	if (!ap->walk_positioned)
	{
		walk_descend(ap, keyvals);
		ap->walk_jumps++;
	}
	while (ap->walk_valid && (c = walk_compare(ap, keyvals)) < 0)
	{
		if (++steps > WALK_STEPS)
		{
			walk_descend(ap, keyvals);
			ap->walk_jumps++;
			steps = 0;
			continue;
		}
		walk_next(ap);
	}
	while (ap->walk_valid && c == 0)
	{
		bool		found = index_fetch_heap(ap->wscan, ap->oslot);

		walk_next(ap);
		if (found)
			return true;
		if (ap->walk_valid)
			c = walk_compare(ap, keyvals);
	}
	return false;
}

/*
 * Copies a row of the view's online or offline table (in slot) into the
 * logical layout (keys, features, event_ts); the values point into slot.
 */
static void
slot_to_logical(FsView *view, TupleTableSlot *slot, FsTableKind kind,
				Datum *vals, bool *nulls)
{
	int			j;

	slot_getallattrs(slot);
	for (j = 0; j < view->ncols; j++)
	{
		AttrNumber	att = kind == FS_TABLE_ONLINE ? view->cols[j].online_attnum :
			view->cols[j].offline_attnum;

		vals[j] = slot->tts_values[att - 1];
		nulls[j] = slot->tts_isnull[att - 1];
	}
}

/* Reads the key's online row into oslot and cur_vals; false if none. */
static bool
probe_online(FsApply *ap, const Datum *keyvals)
{
	FsView	   *view = ap->view;
	int			j;
	MemoryContext old;
	bool		found;

	/*
	 * Index AMs allocate scan-lifetime memory lazily (nbtree's killed-items
	 * array) in the current context, so scans run in the apply's context,
	 * never in the per-key one.
	 */
	old = MemoryContextSwitchTo(ap->cxt);
	if (ap->walking)
	{
		found = walk_to(ap, keyvals);

		/*
		 * Scattered keys: descents only, without the wasted steps.  Judged
		 * on every WALK_MIN_KEYS keys, since a batch may thin out.
		 */
		if (ap->walk_keys == WALK_MIN_KEYS)
		{
			if (ap->walk_jumps > WALK_MIN_KEYS / 2)
				ap->walking = false;
			ap->walk_keys = 0;
			ap->walk_jumps = 0;
		}
	}
	else
	{
		for (j = 0; j < view->nkeys; j++)
			ap->osk[j].sk_argument = keyvals[j];
		index_rescan(ap->oscan, ap->osk, view->nkeys, NULL, 0);
		found = index_getnext_slot(ap->oscan, ForwardScanDirection, ap->oslot);
	}
	MemoryContextSwitchTo(old);
	if (!found)
	{
		ExecClearTuple(ap->oslot);
		return false;
	}
	if (ap->xact_snapshot &&
		!table_tuple_satisfies_snapshot(ap->online, ap->oslot, ap->xact_snapshot))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent update"),
				 errdetail("A row of feature view \"%s\" changed after this transaction's snapshot was taken.",
						   view->name)));
	slot_to_logical(view, ap->oslot, FS_TABLE_ONLINE, ap->cur_vals, ap->cur_nulls);
	return true;
}

/* Latest history row of the key at or before ts, into hist_vals. */
static bool
probe_history(FsApply *ap, const Datum *keyvals, TimestampTz ts, int64_t *found_ts)
{
	FsView	   *view = ap->view;
	int			nk = view->nkeys;
	int			j;
	MemoryContext old;
	bool		found;

	if (!OidIsValid(view->history_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("feature view \"%s\" has no history index", view->name),
				 errdetail("Late rows are compared with the history, which needs an index on the key columns and event_ts."),
				 errhint("Create it with CREATE INDEX ON fstore_offline.%s (<key columns>, event_ts, created_at).",
						 quote_identifier(view->name))));
	if (ap->hscan == NULL)
	{
		old = MemoryContextSwitchTo(ap->cxt);

		ap->histidx = index_open(view->history_relid, AccessShareLock);
		for (j = 0; j < nk; j++)
			ScanKeyEntryInitialize(&ap->hsk[j], 0, j + 1, BTEqualStrategyNumber,
								   view->hist_key_opcintype[j],
								   view->cols[j].collation,
								   view->hist_key_eq_proc[j], (Datum) 0);
		ScanKeyEntryInitialize(&ap->hsk[nk], 0, nk + 1, BTLessEqualStrategyNumber,
							   TIMESTAMPTZOID, InvalidOid,
							   view->hist_ts_le_proc, (Datum) 0);
		ap->hscan = index_beginscan(ap->offline, ap->histidx, ap->snapshot, nk + 1, 0);
		MemoryContextSwitchTo(old);
	}
	for (j = 0; j < nk; j++)
		ap->hsk[j].sk_argument = keyvals[j];
	ap->hsk[nk].sk_argument = TimestampTzGetDatum(ts);
	old = MemoryContextSwitchTo(ap->cxt);	/* see probe_online */
	index_rescan(ap->hscan, ap->hsk, nk + 1, NULL, 0);
	found = index_getnext_slot(ap->hscan, BackwardScanDirection, ap->hread);
	MemoryContextSwitchTo(old);
	if (!found)
		return false;
	slot_to_logical(view, ap->hread, FS_TABLE_OFFLINE, ap->hist_vals, ap->hist_nulls);
	*found_ts = DatumGetTimestampTz(ap->hist_vals[view->ts_col]);
	return true;
}

static void
append_history(FsApply *ap, const FsRow *row)
{
	FsView	   *view = ap->view;
	TupleTableSlot *slot = ap->hslot;
	int			j;

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * view->offline_natts);
	for (j = 0; j < view->ncols; j++)
	{
		AttrNumber	att = view->cols[j].offline_attnum;

		slot->tts_values[att - 1] = row->values[j];
		slot->tts_isnull[att - 1] = row->nulls[j];
	}
	slot->tts_values[view->created_at_attnum - 1] = TimestampTzGetDatum(ap->created_at);
	slot->tts_isnull[view->created_at_attnum - 1] = false;
	ExecStoreVirtualTuple(slot);
	ExecSimpleRelationInsert(ap->offline_rri, ap->estate, slot);
}

/* Writes the key's final online row (insert, or update of oslot). */
static void
write_online(FsApply *ap, bool had_row, const Datum *vals, const bool *nulls,
			 TimestampTz ts)
{
	FsView	   *view = ap->view;
	TupleTableSlot *slot = ap->newslot;
	int			natts = view->online_natts;
	int			j;

	ExecClearTuple(slot);
	if (had_row)
	{
		/* keep any columns a user added to the table */
		memcpy(slot->tts_values, ap->oslot->tts_values, sizeof(Datum) * natts);
		memcpy(slot->tts_isnull, ap->oslot->tts_isnull, sizeof(bool) * natts);
	}
	else
		memset(slot->tts_isnull, true, sizeof(bool) * natts);
	for (j = 0; j < view->ncols; j++)
	{
		AttrNumber	att = view->cols[j].online_attnum;

		slot->tts_values[att - 1] = vals[j];
		slot->tts_isnull[att - 1] = nulls[j];
	}
	slot->tts_values[view->cols[view->ts_col].online_attnum - 1] = TimestampTzGetDatum(ts);
	slot->tts_isnull[view->cols[view->ts_col].online_attnum - 1] = false;
	ExecStoreVirtualTuple(slot);

	if (had_row)
		ExecSimpleRelationUpdate(ap->online_rri, ap->estate, &ap->epqstate,
								 ap->oslot, slot);
	else
		ExecSimpleRelationInsert(ap->online_rri, ap->estate, slot);
	fs_cache_note_key(view, vals);

	/*
	 * A BEFORE ROW trigger may have stored another key than the one given
	 * (the slot now holds the row as stored): that key changes too.
	 */
	if (!TTS_EMPTY(slot) && ap->online_rri->ri_TrigDesc &&
		(ap->online_rri->ri_TrigDesc->trig_insert_before_row ||
		 ap->online_rri->ri_TrigDesc->trig_update_before_row))
	{
		Datum		stored[FS_MAX_KEYS];
		bool		changed = false;

		for (j = 0; j < view->nkeys; j++)
		{
			bool		isnull;

			stored[j] = slot_getattr(slot, view->cols[j].online_attnum, &isnull);
			if (isnull)
				break;
		}
		if (j == view->nkeys)
			changed = fs_keys_compare(view, stored, vals) != 0;
		if (changed)
			fs_cache_note_key(view, stored);
		else if (j < view->nkeys)
			fs_cache_note_view(view);
	}
}

/* Callbacks that let decide.c compare the rows of one key. */
typedef struct KeyRows
{
	FsApply    *ap;
	FsRow	   *rows;
} KeyRows;

static bool
cb_equal_online(void *arg, int i)
{
	KeyRows    *k = (KeyRows *) arg;

	return features_equal(k->ap->view, k->rows[i].values, k->rows[i].nulls,
						  k->ap->cur_vals, k->ap->cur_nulls);
}

static bool
cb_equal_rows(void *arg, int i, int j)
{
	KeyRows    *k = (KeyRows *) arg;

	return features_equal(k->ap->view, k->rows[i].values, k->rows[i].nulls,
						  k->rows[j].values, k->rows[j].nulls);
}

static bool
cb_history_at(void *arg, int i, int64_t ts, int64_t *hist_ts)
{
	KeyRows    *k = (KeyRows *) arg;

	return probe_history(k->ap, k->rows[i].values, ts, hist_ts);
}

static bool
cb_equal_history(void *arg, int i)
{
	KeyRows    *k = (KeyRows *) arg;

	return features_equal(k->ap->view, k->rows[i].values, k->rows[i].nulls,
						  k->ap->hist_vals, k->ap->hist_nulls);
}

static const FsDecideOps decide_ops = {
	cb_equal_online, cb_equal_rows, cb_history_at, cb_equal_history
};

/* Applies the rows of one key (sorted by event_ts, then input order). */
static void
apply_key(FsApply *ap, FsRow *rows, int n)
{
	FsView	   *view = ap->view;
	bool		had_row = probe_online(ap, rows[0].values);
	int64_t    *ts = palloc(sizeof(int64_t) * n);
	FsOutcome  *outcome = palloc(sizeof(FsOutcome) * n);
	FsDecideResult res;
	KeyRows		k = {ap, rows};
	int			r;

	for (r = 0; r < n; r++)
		ts[r] = row_ts(view, &rows[r]);
	fs_decide_key(ts, n, had_row,
				  had_row ? DatumGetTimestampTz(ap->cur_vals[view->ts_col]) : 0,
				  view->has_ttl, &decide_ops, &k, outcome, &res);

	for (r = 0; r < n; r++)
		if (outcome[r] == FS_OUT_WRITTEN || outcome[r] == FS_OUT_LATE)
			append_history(ap, &rows[r]);
	ap->counts.written += res.written;
	ap->counts.unchanged += res.unchanged;
	ap->counts.late += res.late;
	ap->nrows += n;
	ap->max_ts = Max(ap->max_ts, ts[n - 1]);	/* rows are in event_ts order */

	if (res.online_dirty)
	{
		if (res.online_source >= 0)
			write_online(ap, had_row, rows[res.online_source].values,
						 rows[res.online_source].nulls, res.online_ts);
		else
			write_online(ap, had_row, ap->cur_vals, ap->cur_nulls, res.online_ts);
	}
}

/* Applies a set of rows (any keys, any order); sorts them in place. */
void
fs_apply_rows(FsApply *ap, FsRow *rows, int nrows)
{
	FsView	   *view = ap->view;
	MemoryContext old;
	int			i;
	int			j;

	if (ap->shard)
	{
		fs_shard_router_rows(ap->shard, rows, nrows, &ap->counts, &ap->max_ts);
		ap->nrows += nrows;
		return;
	}
	if (nrows > 1)
		qsort_arg(rows, nrows, sizeof(FsRow), row_cmp, view);

	/*
	 * A large batch walks the primary key (probe_online).  Only for one key
	 * column: the walk descends by the first column alone, which is too
	 * coarse when many keys share it.
	 */
	ap->walking = nrows >= WALK_MIN_KEYS && view->nkeys == 1;
	ap->walk_positioned = false;
	ap->walk_keys = 0;
	ap->walk_jumps = 0;
	if (ap->walking && ap->wscan == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(ap->cxt);

		ap->wscan = index_beginscan(ap->online, ap->pkidx, ap->snapshot, 1, 0);
		ap->wscan->xs_want_itup = true;
		MemoryContextSwitchTo(oldcxt);
	}

	for (i = 0; i < nrows; i = j)
	{
		CHECK_FOR_INTERRUPTS();
		for (j = i + 1; j < nrows; j++)
			if (fs_keys_compare(view, rows[i].values, rows[j].values) != 0)
				break;
		old = MemoryContextSwitchTo(ap->keycxt);
		apply_key(ap, &rows[i], j - i);
		MemoryContextSwitchTo(old);
		MemoryContextReset(ap->keycxt);
		ResetPerTupleExprContext(ap->estate);
	}
}

/*
 * fstore._ordinal() -> bigint: 1, 2, 3, ... in the order the calling query
 * evaluates it (the counter lives in the call site's fn_extra, so it
 * starts again in every query).  fs_write_select numbers the rows of a
 * query with it: unlike row_number() OVER (), it does not spool the rows.
 */
Datum
fs_ordinal(PG_FUNCTION_ARGS)
{
	int64	   *n = (int64 *) fcinfo->flinfo->fn_extra;

	if (n == NULL)
	{
		n = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(int64));
		fcinfo->flinfo->fn_extra = n;
	}
	PG_RETURN_INT64(++*n);
}

/*
 * Copies SPI tuple values into a row's logical layout (same order); the
 * extra last column is the row's position in the query's output.
 */
static void
row_from_spi(FsView *view, HeapTuple tup, TupleDesc td, Datum *tvals,
			 bool *tnulls, FsRow *row)
{
	heap_deform_tuple(tup, td, tvals, tnulls);
	memcpy(row->values, tvals, sizeof(Datum) * view->ncols);
	memcpy(row->nulls, tnulls, sizeof(bool) * view->ncols);
	row->ord = (int) (DatumGetInt64(tvals[view->ncols]) - 1);
}

/*
 * Applies the rows of a single SELECT (with parameters) to a view.  The
 * query's columns are taken by position (keys, features, event_ts), cast
 * to the view's types, numbered in the query's order and read in key order
 * through a cursor; the engine gets them in chunks that never split a key,
 * so memory stays bounded whatever the number of rows (the sort spills to
 * disk past work_mem).  *read gets the number of rows read.
 */
void
fs_write_select(FsView *view, const char *select, int nargs, Oid *argtypes,
				Datum *args, FsApplyCounts *counts, int64 *read)
{
	StringInfoData sql;
	TupleDesc	rdesc;
	Portal		portal;
	FsApply    *ap;
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext chunkcxt;
	MemoryContext carrycxt;
	FsRow	   *carry = NULL;
	int			ncarry = 0;
	Datum	   *tvals;
	bool	   *tnulls;
	int			j;

	*read = 0;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	rdesc = fs_query_result_desc(select, nargs, argtypes);
	if (rdesc->natts != view->ncols)
	{
		StringInfoData cols;

		initStringInfo(&cols);
		for (j = 0; j < view->ncols; j++)
			appendStringInfo(&cols, "%s%s", j ? ", " : "", view->cols[j].name);
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("query returns %d columns, but feature view \"%s\" has %d",
						rdesc->natts, view->name, view->ncols),
				 errhint("Select the columns in this order: %s.", cols.data)));
	}

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (j = 0; j < view->ncols; j++)
		appendStringInfo(&sql, "%sq.c%d::%s", j ? ", " : "", j + 1,
						 format_type_extended(view->cols[j].typid,
											  view->cols[j].typmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN |
											  FORMAT_TYPE_FORCE_QUALIFY));
	/* the row number keeps the query's order among equal keys and times */
	appendStringInfoString(&sql, ", q.ord FROM (SELECT *, fstore._ordinal() AS ord FROM (\n");
	appendStringInfoString(&sql, select);
	appendStringInfoString(&sql, "\n) AS q0(");
	for (j = 0; j < view->ncols; j++)
		appendStringInfo(&sql, "%sc%d", j ? ", " : "", j + 1);
	appendStringInfoString(&sql, ")) AS q ORDER BY ");
	for (j = 0; j < view->nkeys; j++)
		appendStringInfo(&sql, "%d, ", j + 1);
	appendStringInfo(&sql, "%d, %d", view->ncols, view->ncols + 1);

	portal = SPI_cursor_open_with_args(NULL, sql.data, nargs, argtypes, args,
									   NULL, false, 0);

	tvals = MemoryContextAlloc(callcxt, sizeof(Datum) * (view->ncols + 1));
	tnulls = MemoryContextAlloc(callcxt, sizeof(bool) * (view->ncols + 1));
	chunkcxt = AllocSetContextCreate(callcxt, "fstore query chunk",
									 ALLOCSET_DEFAULT_SIZES);
	carrycxt = AllocSetContextCreate(callcxt, "fstore query carry",
									 ALLOCSET_DEFAULT_SIZES);
	{
		MemoryContext old = MemoryContextSwitchTo(callcxt);

		ap = fs_apply_begin(view);
		MemoryContextSwitchTo(old);
	}

	for (;;)
	{
		uint64		n;
		uint64		i;
		FsRow	   *rows;
		int			nrows;
		int			napply;
		MemoryContext old;
		MemoryContext nextcxt;

		SPI_cursor_fetch(portal, true, WRITE_QUERY_CHUNK);
		n = SPI_processed;
		*read += n;
		fs_progress_rows(*read, -2);

		old = MemoryContextSwitchTo(chunkcxt);
		nrows = ncarry + (int) n;
		rows = palloc(sizeof(FsRow) * Max(nrows, 1));
		for (i = 0; i < (uint64) ncarry; i++)
			rows[i] = carry[i];
		for (i = 0; i < n; i++)
		{
			FsRow	   *row = &rows[ncarry + i];

			row->values = palloc(sizeof(Datum) * view->ncols);
			row->nulls = palloc(sizeof(bool) * view->ncols);
			row_from_spi(view, SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
						 tvals, tnulls, row);
			fs_apply_check_row(view, row, row->ord + 1);
		}

		/* hold back the last key: the next fetch may continue it */
		napply = nrows;
		if (n > 0)
			while (napply > 0 &&
				   fs_keys_compare(view, rows[napply - 1].values,
								   rows[nrows - 1].values) == 0)
				napply--;

		MemoryContextSwitchTo(callcxt);
		fs_apply_rows(ap, rows, napply);

		/*
		 * Copy the held-back rows out before the chunk memory goes, into a
		 * new context: they may themselves be rows carried from an earlier
		 * fetch (a key spanning whole fetches), which live in the old one.
		 */
		nextcxt = AllocSetContextCreate(callcxt, "fstore query carry",
										ALLOCSET_DEFAULT_SIZES);
		MemoryContextSwitchTo(nextcxt);
		carry = palloc(sizeof(FsRow) * Max(nrows - napply, 1));
		ncarry = nrows - napply;
		for (i = 0; i < (uint64) ncarry; i++)
		{
			FsRow	   *src = &rows[napply + i];
			FsRow	   *dst = &carry[i];

			dst->values = palloc(sizeof(Datum) * view->ncols);
			dst->nulls = palloc(sizeof(bool) * view->ncols);
			dst->ord = src->ord;
			for (j = 0; j < view->ncols; j++)
			{
				dst->nulls[j] = src->nulls[j];
				dst->values[j] = src->nulls[j] ? (Datum) 0 :
					datumCopy(src->values[j], view->cols[j].typbyval,
							  view->cols[j].typlen);
			}
		}
		MemoryContextSwitchTo(old);
		MemoryContextDelete(carrycxt);
		carrycxt = nextcxt;
		SPI_freetuptable(SPI_tuptable);
		MemoryContextReset(chunkcxt);
		if (n == 0)
			break;
	}

	SPI_cursor_close(portal);
	{
		MemoryContext old = MemoryContextSwitchTo(callcxt);

		fs_apply_end(ap, counts);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	MemoryContextDelete(chunkcxt);
	MemoryContextDelete(carrycxt);
}

/*
 * Statement trigger (BEFORE INSERT/UPDATE/DELETE/TRUNCATE) on every online
 * table: plain DML takes the view's writer lock, so it never interleaves
 * with fs_write's read-compare-write of the same view, and tells the cache
 * that the whole view changes when this transaction commits.
 */
Datum
fs_online_dml(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	FsView	   *view;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fstore._online_dml() must be called as a trigger")));
	view = fs_catalog_view_by_relid(RelationGetRelid(trigdata->tg_relation));
	if (view)
	{
		check_not_active(view);
		fs_catalog_lock_view_writers(view);
		fs_cache_note_view(view);
	}
	return PointerGetDatum(NULL);
}
