/*
 * read.c
 *		fs_get_many: features of many keys in one call, for a feature view
 *		or a feature service.
 *
 * One call: resolve the row type to a view or service, check privileges,
 * deconstruct and sort the keys once (keys.c), fetch each distinct key's
 * online row once per view with one index descent in key order, then emit
 * exactly one row per input key in input order.  Missing keys, expired
 * values (ttl) and keys with a NULL field come back with their key columns
 * filled and every feature NULL; a NULL key comes back as a row of NULLs.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "fstore.h"
#include "online/online.h"
#include "stats/stats.h"

PG_FUNCTION_INFO_V1(fs_get_many);

/* Raises 42501 naming the table with its schema. */
void
fs_permission_denied(Oid relid)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for table %s.%s",
					get_namespace_name(get_rel_namespace(relid)),
					get_rel_name(relid))));
}

void
fs_check_select(Oid relid)
{
	Oid			user = GetUserId();

	if (pg_class_aclcheck(relid, user, ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, user, ACL_SELECT, ACLMASK_ALL) != ACLCHECK_OK)
		fs_permission_denied(relid);
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("fstore does not support row-level security on \"%s\"",
						get_rel_name(relid)),
				 errhint("Disable row-level security on the feature view's tables, or query them with SQL.")));
}

void
fs_online_fetch(FsView *view, Relation rel, FsKeyBatch *b,
				const int *which, int n, HeapTuple *rows)
{
	Relation	idx;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData sk[FS_MAX_KEYS];
	TupleDesc	desc = RelationGetDescr(rel);
	int			nk = view->nkeys;
	int			i;
	int			k;

	if (n == 0)
		return;
	idx = index_open(view->pkey_relid, AccessShareLock);
	for (k = 0; k < nk; k++)
		ScanKeyEntryInitialize(&sk[k], 0, k + 1, BTEqualStrategyNumber,
							   view->key_opcintype[k], view->cols[k].collation,
							   view->key_eq_proc[k], (Datum) 0);
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), nk, 0);
	slot = table_slot_create(rel, NULL);

	for (i = 0; i < n; i++)
	{
		int			d = which[i];
		Datum	   *kv = FS_KEY_VALUES(b, d);

		CHECK_FOR_INTERRUPTS();
		for (k = 0; k < nk; k++)
			sk[k].sk_argument = kv[k];
		index_rescan(scan, sk, nk, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, NULL);

			/*
			 * A plain copy of the stored tuple, unless it predates columns
			 * added later: then its missing values are filled in here, since
			 * readers of the result only know the row type.
			 */
			if (HeapTupleHeaderGetNatts(tuple->t_data) == desc->natts)
				rows[d] = heap_copytuple(tuple);
			else
			{
				slot_getallattrs(slot);
				rows[d] = heap_form_tuple(desc, slot->tts_values, slot->tts_isnull);
			}
		}
		else
			rows[d] = NULL;
	}

	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
	index_close(idx, AccessShareLock);
}

/* Cutoff below which a view's values count as expired (ttl). */
static TimestampTz
ttl_cutoff(FsView *view)
{
	if (!view->has_ttl)
		return DT_NOBEGIN;
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
												   TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
												   IntervalPGetDatum(&view->ttl)));
}

/* Drops rows whose event_ts is older than the view's ttl. */
static void
expire_rows(FsView *view, Relation rel, FsKeyBatch *b, HeapTuple *rows)
{
	TimestampTz cutoff;
	int			d;

	if (!view->has_ttl)
		return;
	cutoff = ttl_cutoff(view);
	for (d = 0; d < b->ndistinct; d++)
	{
		bool		isnull;
		Datum		ts;

		if (rows[d] == NULL)
			continue;
		ts = heap_getattr(rows[d], view->cols[view->ts_col].online_attnum,
						  RelationGetDescr(rel), &isnull);
		if (isnull || DatumGetTimestampTz(ts) < cutoff)
			rows[d] = NULL;
	}
}

/* Reads one view's rows for every distinct key of the batch. */
static HeapTuple *
read_view_rows(FsView *view, FsKeyBatch *b, Relation *relp)
{
	Relation	rel;
	HeapTuple  *rows = palloc0(sizeof(HeapTuple) * Max(b->ndistinct, 1));
	int		   *which = palloc(sizeof(int) * Max(b->ndistinct, 1));
	int			d;

	rel = table_open(view->online_relid, AccessShareLock);
	for (d = 0; d < b->ndistinct; d++)
		which[d] = d;
	fs_online_fetch(view, rel, b, which, b->ndistinct, rows);
	expire_rows(view, rel, b, rows);
	fs_stats_count_lookup(view->view_id, b->ninput, 0, 0);
	*relp = rel;
	return rows;
}

/* Emits the rows of a feature view target. */
static void
emit_view(ReturnSetInfo *rsinfo, FsView *view, FsKeyBatch *b)
{
	Relation	rel;
	HeapTuple  *rows = read_view_rows(view, b, &rel);
	TupleDesc	outdesc = rsinfo->setDesc;
	Datum	   *values = palloc(sizeof(Datum) * outdesc->natts);
	bool	   *nulls = palloc(sizeof(bool) * outdesc->natts);
	int			i;
	int			k;

	if (outdesc->natts != view->online_natts)
		elog(ERROR, "row type of feature view \"%s\" does not match its table",
			 view->name);

	for (i = 0; i < b->ninput; i++)
	{
		int			d = b->in_distinct[i];

		if (d >= 0 && rows[d] != NULL)
		{
			tuplestore_puttuple(rsinfo->setResult, rows[d]);
			continue;
		}
		memset(nulls, true, sizeof(bool) * outdesc->natts);
		if (!b->in_isnull[i])
		{
			for (k = 0; k < view->nkeys; k++)
			{
				AttrNumber	att = view->cols[k].online_attnum;

				values[att - 1] = b->in_vals[i * b->nkeycols + k];
				nulls[att - 1] = b->in_nulls[i * b->nkeycols + k];
			}
		}
		tuplestore_putvalues(rsinfo->setResult, outdesc, values, nulls);
	}
	table_close(rel, NoLock);
}

/* Emits the rows of a feature service target: every view, one row a key. */
static void
emit_service(ReturnSetInfo *rsinfo, FsService *svc, FsKeyBatch *b)
{
	TupleDesc	outdesc = rsinfo->setDesc;
	int			nv = svc->nviews;
	Datum	  **vvals = palloc(sizeof(Datum *) * nv);
	bool	  **vnulls = palloc(sizeof(bool *) * nv);
	bool	  **vpresent = palloc(sizeof(bool *) * nv);
	Datum	   *values = palloc(sizeof(Datum) * outdesc->natts);
	bool	   *nulls = palloc(sizeof(bool) * outdesc->natts);
	int			v;
	int			i;
	int			k;

	if (outdesc->natts != svc->nkeys + svc->nout)
		elog(ERROR, "row type of feature service \"%s\" does not match its definition",
			 svc->name);

	/* deform every view's rows once per distinct key */
	for (v = 0; v < nv; v++)
	{
		FsView	   *view = svc->views[v];
		Relation	rel;
		HeapTuple  *rows = read_view_rows(view, b, &rel);
		int			natts = view->online_natts;
		int			d;

		vvals[v] = palloc(sizeof(Datum) * natts * Max(b->ndistinct, 1));
		vnulls[v] = palloc(sizeof(bool) * natts * Max(b->ndistinct, 1));
		vpresent[v] = palloc(sizeof(bool) * Max(b->ndistinct, 1));
		for (d = 0; d < b->ndistinct; d++)
		{
			vpresent[v][d] = rows[d] != NULL;
			if (rows[d])
				heap_deform_tuple(rows[d], RelationGetDescr(rel),
								  &vvals[v][d * natts], &vnulls[v][d * natts]);
		}
		table_close(rel, NoLock);
	}

	for (i = 0; i < b->ninput; i++)
	{
		int			d = b->in_distinct[i];

		memset(nulls, true, sizeof(bool) * outdesc->natts);
		if (!b->in_isnull[i])
		{
			for (k = 0; k < svc->nkeys; k++)
			{
				values[k] = b->in_vals[i * b->nkeycols + k];
				nulls[k] = b->in_nulls[i * b->nkeycols + k];
			}
			for (k = 0; d >= 0 && k < svc->nout; k++)
			{
				int			vi = svc->out[k].view;
				FsView	   *view = svc->views[vi];
				int			natts = view->online_natts;
				AttrNumber	att = view->cols[svc->out[k].col].online_attnum;

				if (!vpresent[vi][d])
					continue;
				values[svc->nkeys + k] = vvals[vi][d * natts + att - 1];
				nulls[svc->nkeys + k] = vnulls[vi][d * natts + att - 1];
			}
		}
		tuplestore_putvalues(rsinfo->setResult, outdesc, values, nulls);
	}
}

/*
 * fs_get_many(row_type anyelement, keys "any") RETURNS SETOF anyelement
 */
Datum
fs_get_many(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			rowtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	Oid			keystype = get_fn_expr_argtype(fcinfo->flinfo, 1);
	FsView	   *view;
	FsService  *svc;
	FsView	   *first;
	ArrayType  *keys;
	int			nkeys;
	FsKeyBatch	batch;
	MemoryContext callcxt;
	MemoryContext old;
	int			v;

	fs_catalog_target(rowtype, &view, &svc);
	first = view ? view : svc->views[0];

	if (keystype != first->key_array_type)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("keys have type %s, but %s \"%s\" expects %s",
						OidIsValid(keystype) ? format_type_be(keystype) : "unknown",
						view ? "feature view" : "feature service",
						view ? view->name : svc->name,
						format_type_be(first->key_array_type)),
				 errhint("Cast the key array, for example ARRAY[...]::%s.",
						 format_type_be(first->key_array_type))));

	/* privileges are checked before anything is read */
	if (view)
		fs_check_select(view->online_relid);
	else
		for (v = 0; v < svc->nviews; v++)
			fs_check_select(svc->views[v]->online_relid);

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(1))
		return (Datum) 0;

	keys = PG_GETARG_ARRAYTYPE_P(1);
	nkeys = ArrayGetNItems(ARR_NDIM(keys), ARR_DIMS(keys));
	if (nkeys > fs_max_keys_per_call)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many keys in one call: %d, the limit is %d",
						nkeys, fs_max_keys_per_call),
				 errhint("Split the keys over several calls, or raise fstore.max_keys_per_call.")));

	callcxt = AllocSetContextCreate(CurrentMemoryContext, "fs_get_many",
									ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(callcxt);

	fs_keys_from_array(&batch, first, keys);
	if (view)
		emit_view(rsinfo, view, &batch);
	else
		emit_service(rsinfo, svc, &batch);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(callcxt);
	return (Datum) 0;
}
