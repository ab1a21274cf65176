/*
 * queue.c
 *		Applying queued events: one batch, exactly once, with dead letters.
 *
 * A batch is taken with one DELETE ... RETURNING of up to N committed
 * events of a view's queue table, and applied through the apply engine (the
 * same change detection as fs_write) in the same transaction: the events
 * leave the queue exactly when their effect commits.  The apply runs in a
 * subtransaction; if it fails (an event breaks a constraint of the online
 * table, say), the batch is applied again one event at a time, each in its
 * own subtransaction, and the events that still fail are recorded in
 * fstore.dead_letters with their error.  Events with a NULL key or NULL
 * event_ts go to the dead letters directly.  Either way they leave the
 * queue, so one bad event never blocks the ones behind it.
 *
 * Producers wake the workers: the queue tables' statement trigger notes the
 * view, and at commit (only then are the events visible) the transaction
 * sets the latch of the workers of its database.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "storage/lmgr.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "aggregate/aggregate.h"
#include "catalog/acl.h"
#include "catalog/metadata.h"
#include "ingest/ingest.h"
#include "apply/apply.h"
#include "stats/progress.h"
#include "stats/stats.h"
#include "util/util.h"

PG_FUNCTION_INFO_V1(fs_agg_enqueued);
PG_FUNCTION_INFO_V1(fs_stream_enqueued);
PG_FUNCTION_INFO_V1(fs_stream_apply);
PG_FUNCTION_INFO_V1(fs_stream_wait);
PG_FUNCTION_INFO_V1(fs_queue_state);

/* views this transaction enqueued events for (int64 view_ids, a set);
 * their workers wake at commit */
static HTAB *woken = NULL;
static bool callback_registered = false;
static bool warned_no_workers = false;
static bool drained = false;	/* this transaction ran fs_stream_apply */

/* An error caught in a subtransaction, kept for the dead letters. */
typedef struct CaughtError
{
	char	   *message;
	char		sqlstate[6];
} CaughtError;

/*
 * False for errors that say nothing about the events: a cancel or shutdown,
 * a timeout, a lock, deadlock or serialization failure, missing privileges
 * or objects, exhausted resources, an internal error.  Those abort the whole
 * batch and leave its events queued for a later try.  Any other error in
 * the apply step (bad data, a constraint or trigger of the view's tables
 * rejecting an event, a key too large for an index...) is the events'
 * doing: they become dead letters.
 */
static bool
error_is_the_events(int sqlerrcode)
{
	if (sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE)
		return false;
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_CONNECTION_EXCEPTION:	/* 08 */
		case ERRCODE_FEATURE_NOT_SUPPORTED: /* 0A */
		case ERRCODE_INVALID_TRANSACTION_STATE: /* 25 */
		case ERRCODE_TRANSACTION_ROLLBACK:	/* 40 */
		case ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION: /* 42 */
		case ERRCODE_INSUFFICIENT_RESOURCES:	/* 53 */
		case ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE:	/* 55 */
		case ERRCODE_OPERATOR_INTERVENTION: /* 57 */
		case ERRCODE_SYSTEM_ERROR:	/* 58 */
		case ERRCODE_CONFIG_FILE_ERROR: /* F0 */
		case ERRCODE_INTERNAL_ERROR:	/* XX */
			return false;
	}
	return true;
}

/*
 * Applies rows (any keys) in a subtransaction; returns false, with the error
 * in *err, if the events caused an error (then nothing of them remains).
 * Errors that are not the events' fault are raised again.
 */
static bool
apply_in_subxact(FsView *view, FsRow *rows, int n, FsApplyCounts *counts,
				 CaughtError *err)
{
	MemoryContext old = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	/*
	 * The apply's state (executor state, scans...) lives in a context of
	 * its own, gone after the attempt whether it worked or not: a batch
	 * retried event by event must not keep every failed attempt's memory.
	 */
	MemoryContext attempt = AllocSetContextCreate(old, "fstore stream attempt",
												  ALLOCSET_DEFAULT_SIZES);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(attempt);
	PG_TRY();
	{
		FsApply    *ap = fs_apply_begin(view);

		fs_apply_rows(ap, rows, n);
		fs_apply_end(ap, counts);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old);
		CurrentResourceOwner = owner;
		if (!error_is_the_events(edata->sqlerrcode))
			ReThrowError(edata);
		err->message = pstrdup(edata->message ? edata->message : "unknown error");
		strlcpy(err->sqlstate, unpack_sql_state(edata->sqlerrcode), sizeof(err->sqlstate));
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextDelete(attempt);
	return ok;
}

/*
 * The event as jsonb, built here from the columns' output functions: no
 * cast to json (which another role may own) and no SQL function runs.
 * Output functions are C functions a superuser installed.  Numbers and
 * booleans of the built-in types stay JSON numbers and booleans, json and
 * jsonb values are embedded, everything else is the value's text.
 */
static Datum
event_jsonb(FsView *view, const Datum *values, const bool *nulls)
{
	StringInfoData buf;
	int			j;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (j = 0; j < view->ncols; j++)
	{
		FsColumn   *c = &view->cols[j];
		Oid			typoutput;
		bool		isvarlena;
		char	   *text;

		if (j > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, c->name);
		appendStringInfoString(&buf, ": ");
		if (nulls[j])
		{
			appendStringInfoString(&buf, "null");
			continue;
		}
		if (c->typid == DATEOID || c->typid == TIMESTAMPOID || c->typid == TIMESTAMPTZOID)
		{
			/* ISO 8601 whatever the DateStyle, as to_jsonb writes them */
			char		iso[MAXDATELEN + 1];

			escape_json(&buf, JsonEncodeDateTime(iso, values[j], c->typid, NULL));
			continue;
		}
		getTypeOutputInfo(c->typid, &typoutput, &isvarlena);
		text = OidOutputFunctionCall(typoutput, values[j]);
		switch (c->typid)
		{
			case INT2OID:
			case INT4OID:
			case INT8OID:
			case FLOAT4OID:
			case FLOAT8OID:
			case NUMERICOID:
				/* NaN and Infinity are not JSON numbers */
				if (strspn(text, "0123456789+-.eE") == strlen(text))
					appendStringInfoString(&buf, text);
				else
					escape_json(&buf, text);
				break;
			case BOOLOID:
				appendStringInfoString(&buf, text[0] == 't' ? "true" : "false");
				break;
			case JSONOID:
			case JSONBOID:
				appendStringInfoString(&buf, text);
				break;
			default:
				escape_json(&buf, text);
				break;
		}
	}
	appendStringInfoChar(&buf, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
}

/* Records an event that could not be applied. */
static void
dead_letter(FsView *view, const FsRow *row, const char *message,
			const char *sqlstate)
{
	static const char *sql =
		"INSERT INTO fstore.dead_letters (view_name, event, error, sqlstate, failed_at)"
		" VALUES ($1, $2, $3, $4, pg_catalog.statement_timestamp())";
	Oid			types[4] = {TEXTOID, JSONBOID, TEXTOID, TEXTOID};
	Datum		values[4];

	values[0] = CStringGetTextDatum(view->name);
	values[1] = event_jsonb(view, row->values, row->nulls);
	values[2] = CStringGetTextDatum(message);
	values[3] = CStringGetTextDatum(sqlstate);
	/* as the catalogs' owner: appliers need no privilege on fstore.* */
	fs_catalog_exec_as_owner(sql, 4, types, values, SPI_OK_INSERT);
}

static bool
row_is_valid(FsView *view, FsRow *row)
{
	int			k;

	for (k = 0; k < view->nkeys; k++)
		if (row->nulls[k])
			return false;
	return !row->nulls[view->ts_col];
}

/* a batch's rows, for sorting indexes into them */
typedef struct RetryOrder
{
	FsRow	   *rows;
	int			ts_col;
} RetryOrder;

/* indexes into a batch's rows, by event_ts, then queue order */
static int
retry_order(const void *a, const void *b, void *arg)
{
	RetryOrder *o = (RetryOrder *) arg;
	FsRow	   *ra = &o->rows[*(const int *) a];
	FsRow	   *rb = &o->rows[*(const int *) b];
	TimestampTz ta = DatumGetTimestampTz(ra->values[o->ts_col]);
	TimestampTz tb = DatumGetTimestampTz(rb->values[o->ts_col]);

	if (ta != tb)
		return ta < tb ? -1 : 1;
	return (ra->ord > rb->ord) - (ra->ord < rb->ord);
}

/* What applying a batch needs along the way. */
typedef struct BatchState
{
	FsView	   *view;
	FsRow	   *rows;			/* every event of the batch, queue order */
	int		   *order;			/* valid events, by event_ts then queue order */
	FsRow	   *scratch;		/* the rows of one attempt (sorted in place) */
	SPITupleTable *tt;
	TupleDesc	desc;
	FsStreamBatch *out;
} BatchState;

/*
 * Applies order[lo, hi) in one subtransaction; if the events cause an
 * error, splits the range in two (at a change of event_ts where there is
 * one near the middle, so rows of one key and time stay together) and
 * applies each half, down to single events, which become dead letters.
 * Applying the halves one after the other is applying the range in
 * event_ts order, as one attempt would.  With b bad events among n, the
 * work is O(n log n) rows in O(b log n) subtransactions.
 */
static void
apply_range(BatchState *bs, int lo, int hi)
{
	FsView	   *view = bs->view;
	FsApplyCounts c = {0};
	CaughtError err;
	int			n = hi - lo;
	int			i;
	int			mid;

	CHECK_FOR_INTERRUPTS();
	for (i = 0; i < n; i++)
		bs->scratch[i] = bs->rows[bs->order[lo + i]];
	if (apply_in_subxact(view, bs->scratch, n, &c, &err))
	{
		bs->out->applied += n;
		bs->out->written += c.written;
		bs->out->unchanged += c.unchanged;
		bs->out->late += c.late;
		return;
	}
	if (n == 1)
	{
		dead_letter(view, &bs->rows[bs->order[lo]], err.message, err.sqlstate);
		bs->out->dead++;
		return;
	}
	mid = lo + n / 2;
	for (i = 0; i < n / 2; i++)
	{
		/* look for a change of event_ts around the middle */
		int			cand[2] = {lo + n / 2 - i, lo + n / 2 + i};
		int			k;

		for (k = 0; k < 2; k++)
			if (cand[k] > lo && cand[k] < hi &&
				DatumGetTimestampTz(bs->rows[bs->order[cand[k] - 1]].values[view->ts_col]) !=
				DatumGetTimestampTz(bs->rows[bs->order[cand[k]]].values[view->ts_col]))
				break;
		if (k < 2)
		{
			mid = cand[k];
			break;
		}
	}
	apply_range(bs, lo, mid);
	apply_range(bs, mid, hi);
}

/* The view's columns in logical order, for the queue's RETURNING list. */
static void
append_columns(StringInfo sql, FsView *view)
{
	int			j;

	for (j = 0; j < view->ncols; j++)
		appendStringInfo(sql, "%s%s", j ? ", " : "", quote_identifier(view->cols[j].name));
}

void
fs_stream_apply_batch(FsView *view, int max_rows, FsStreamBatch *out)
{
	StringInfoData sql;
	BatchState	bs;
	FsUserContext uc;
	int			nvalid = 0;
	int			n;
	int			i;
	int			j;
	int64		deltas[FS_STAT_NCOUNTERS] = {0};

	memset(out, 0, sizeof(FsStreamBatch));
	if (!OidIsValid(view->stream_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("queue table of feature view \"%s\" does not exist", view->name)));
	if (view->stream_problem)
		ereport(ERROR,
				(errcode(view->stream_problem_code),
				 errmsg_internal("%s", view->stream_problem),
				 errdetail("The queue of feature view \"%s\" no longer matches its definition; its events stay queued.",
						   view->name)));

	/*
	 * Everything the batch runs (the queue's DELETE, the apply with the
	 * view's triggers and constraints, the events' serialization for dead
	 * letters) runs as the view's owner in a restricted context, whoever
	 * called: a stream worker connects as a superuser.
	 */
	fs_progress_begin(FS_PROGRESS_STREAM_BATCH, view->view_id, view->name,
					  "taking events");
	fs_become_owner(view->owner, &uc);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "DELETE FROM fstore_stream.%s WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
					 "SELECT ctid FROM fstore_stream.%s LIMIT %d)) RETURNING ",
					 quote_identifier(view->name), quote_identifier(view->name),
					 Max(max_rows, 1));
	append_columns(&sql, view);
	if (SPI_execute(sql.data, false, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "could not take events from the queue of feature view \"%s\"",
			 view->name);
	n = (int) SPI_processed;
	out->events = n;
	if (n == 0)
	{
		SPI_finish();
		fs_restore_user(&uc);
		fs_progress_end();
		return;
	}
	fs_progress_phase("applying");
	fs_progress_rows(0, n);
	memset(&bs, 0, sizeof(bs));
	bs.view = view;
	bs.out = out;
	bs.tt = SPI_tuptable;
	bs.desc = bs.tt->tupdesc;

	/* the queue's columns must still have the view's types */
	for (j = 0; j < view->ncols; j++)
		if (TupleDescAttr(bs.desc, j)->atttypid != view->cols[j].typid)
			fs_catalog_type_mismatch(view, FS_TABLE_STREAM, view->cols[j].name,
									 TupleDescAttr(bs.desc, j)->atttypid,
									 view->cols[j].typid);

	bs.rows = palloc(sizeof(FsRow) * n);
	bs.order = palloc(sizeof(int) * n);
	bs.scratch = palloc(sizeof(FsRow) * n);
	for (i = 0; i < n; i++)
	{
		FsRow	   *row = &bs.rows[i];

		row->values = palloc(sizeof(Datum) * view->ncols);
		row->nulls = palloc(sizeof(bool) * view->ncols);
		row->ord = i;
		heap_deform_tuple(bs.tt->vals[i], bs.desc, row->values, row->nulls);
		if (!row_is_valid(view, row))
		{
			dead_letter(view, row, "the event has a NULL key column or a NULL event_ts",
						"23502");
			out->dead++;
		}
		else if (!fs_row_ts_finite(view, row))
		{
			dead_letter(view, row, "the event's event_ts is not finite", "22008");
			out->dead++;
		}
		else
			bs.order[nvalid++] = i;
	}

	if (nvalid > 0)
	{
		RetryOrder	order = {bs.rows, view->ts_col};

		qsort_arg(bs.order, nvalid, sizeof(int), retry_order, &order);
		apply_range(&bs, 0, nvalid);
	}

	deltas[FS_STAT_STREAM_APPLIED] = out->applied;
	deltas[FS_STAT_STREAM_BATCHES] = 1;
	deltas[FS_STAT_DEAD_LETTERS] = out->dead;
	fs_stats_add(view->view_id, deltas);
	SPI_finish();
	fs_restore_user(&uc);
	fs_progress_rows(out->applied + out->dead, -2);
	fs_progress_end();
}

/* ---- producers: wake the workers at commit ---- */

/* empties the set of views to wake, waking their workers if commit */
static void
end_woken(bool commit)
{
	HASH_SEQ_STATUS seq;
	int64	   *view_id;

	if (woken == NULL || hash_get_num_entries(woken) == 0)
		return;
	hash_seq_init(&seq, woken);
	while ((view_id = hash_seq_search(&seq)) != NULL)
	{
		if (commit)
			fs_stream_wake(*view_id);
		hash_search(woken, view_id, HASH_REMOVE, NULL);
	}
}

static void
queue_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			end_woken(true);
			if (drained)
				fs_stream_progress();	/* fs_stream_wait may be waiting */
			drained = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			end_woken(false);
			drained = false;
			break;
		default:
			break;
	}
}

static void
register_callback(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(queue_xact_callback, NULL);
		callback_registered = true;
	}
}

/* Wakes the worker of view_id when this transaction commits. */
static void
wake_at_commit(int64 view_id)
{
	register_callback();
	if (woken == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(int64);
		ctl.hcxt = TopMemoryContext;
		woken = hash_create("fstore views to wake", 8, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	(void) hash_search(woken, &view_id, HASH_ENTER, NULL);
}

/*
 * Statement trigger (AFTER INSERT) on every queue table: remembers the view
 * so that its worker is woken when this transaction commits.
 */
Datum
fs_stream_enqueued(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *relname;
	FsView	   *view;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fstore._stream_enqueued() must be called as a trigger")));
	if (!fs_preloaded())
	{
		if (!warned_no_workers)
			ereport(NOTICE,
					(errmsg("fstore stream workers are not running"),
					 errdetail("fstore is not in shared_preload_libraries; queued events stay in the queue."),
					 errhint("Apply them with fs_stream_apply('%s').",
							 RelationGetRelationName(trigdata->tg_relation))));
		warned_no_workers = true;
		return PointerGetDatum(NULL);
	}

	relname = RelationGetRelationName(trigdata->tg_relation);
	view = fs_catalog_view(relname);
	wake_at_commit(view->view_id);
	return PointerGetDatum(NULL);
}

/*
 * The same statement trigger on the queue of an aggregation view (its
 * events go into tiles: aggregate/); without workers the events wait for
 * fs_stream_apply, silently.
 */
Datum
fs_agg_enqueued(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fstore._agg_enqueued() must be called as a trigger")));
	if (!fs_preloaded())
		return PointerGetDatum(NULL);	/* no workers: fs_stream_apply drains */
	wake_at_commit(fs_agg_view_id(RelationGetRelationName(trigdata->tg_relation)));
	return PointerGetDatum(NULL);
}

/*
 * fs_stream_apply(view text, max_rows int DEFAULT NULL)
 *		Applies queued events of a view in this session, as a worker would:
 *		for sessions without workers, tests and maintenance.  max_rows NULL
 *		drains the queue in batches of fstore.stream_batch_size.
 */
Datum
fs_stream_apply(PG_FUNCTION_ARGS)
{
	char	   *name;
	FsView	   *view;
	FsStreamBatch total = {0};
	int64		limit = PG_ARGISNULL(1) ? -1 : PG_GETARG_INT32(1);
	TupleDesc	td;
	Datum		values[6];
	bool		nulls[6] = {false};

	name = fs_catalog_view_name_arg(fcinfo, 0);
	if (limit < 0 && !PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows must not be negative")));
	/* at commit, tell fs_stream_wait that the queue may be empty */
	register_callback();
	drained = true;
	if (fs_agg_is_view_arg(fcinfo, 0))
		return fs_agg_stream_apply(fcinfo);	/* aggregation view */
	view = fs_catalog_view(name);

	/* the caller applies the events: it needs what fs_write and a consumer need */
	fs_check_write_privileges(view);
	if (OidIsValid(view->stream_relid))
		fs_check_table_privileges(view->stream_relid, ACL_SELECT | ACL_DELETE);

	for (;;)
	{
		FsStreamBatch b;
		int			want = fs_stream_batch_size;

		if (limit >= 0)
			want = (int) Min((int64) want, limit - total.events);
		if (want <= 0)
			break;
		fs_stream_apply_batch(view, want, &b);
		total.events += b.events;
		total.applied += b.applied;
		total.dead += b.dead;
		total.written += b.written;
		total.unchanged += b.unchanged;
		total.late += b.late;
		if (b.events < want)
			break;
		CommandCounterIncrement();
	}

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(total.events);
	values[1] = Int64GetDatum(total.applied);
	values[2] = Int64GetDatum(total.dead);
	values[3] = Int64GetDatum(total.written);
	values[4] = Int64GetDatum(total.unchanged);
	values[5] = Int64GetDatum(total.late);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), values, nulls)));
}

/*
 * Waits until the queue fstore_stream.<name> is empty (true) or the timeout
 * (NULL: none) passes (false), checking with a new snapshot each time.
 * With the workers' shared memory it sleeps on their condition variable,
 * which a batch's commit broadcasts (a worker's, or a session's
 * fs_stream_apply), and rechecks at least every WAIT_RECHECK_MS for queues
 * emptied otherwise (a DELETE); without, it checks every WAIT_POLL_MS.
 * kind names the view in the error ("feature view", "aggregation view").
 */
#define WAIT_RECHECK_MS 100
#define WAIT_POLL_MS	10

bool
fs_stream_wait_empty(const char *name, const char *kind, Interval *timeout)
{
	TimestampTz deadline;
	StringInfoData sql;
	bool		empty = false;
	ConditionVariable *cv = fs_stream_progress_cv();

	deadline = timeout ?
		DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
												TimestampTzGetDatum(GetCurrentTimestamp()),
												IntervalPGetDatum(timeout))) :
		DT_NOEND;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT NOT EXISTS (SELECT 1 FROM fstore_stream.%s)",
					 quote_identifier(name));

	/*
	 * On the wait list before the first check, so that no broadcast between
	 * a check and the sleep is lost (an error takes us off it on abort).
	 */
	if (cv)
		ConditionVariablePrepareToSleep(cv);
	for (;;)
	{
		bool		isnull;
		long		wait_ms;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute(sql.data, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the queue of %s \"%s\"", kind, name);
		empty = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SPI_finish();
		if (empty || GetCurrentTimestamp() >= deadline)
			break;
		wait_ms = cv ? WAIT_RECHECK_MS : WAIT_POLL_MS;
		if (deadline != DT_NOEND)
			wait_ms = Min(wait_ms,
						  TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline) + 1);
		if (cv)
			(void) ConditionVariableTimedSleep(cv, wait_ms, PG_WAIT_EXTENSION);
		else
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	if (cv)
		ConditionVariableCancelSleep();
	pfree(sql.data);
	return empty;
}

/*
 * fs_stream_wait(view text, timeout interval DEFAULT '30 seconds') -> bool
 *		Waits until the view's queue is empty (true) or the timeout passes
 *		(false).  Each check uses a new snapshot, so call it outside a
 *		REPEATABLE READ transaction.
 */
Datum
fs_stream_wait(PG_FUNCTION_ARGS)
{
	char	   *name;
	FsView	   *view;

	name = fs_catalog_view_name_arg(fcinfo, 0);
	if (fs_agg_is_view_arg(fcinfo, 0))	/* aggregation view */
		PG_RETURN_BOOL(fs_stream_wait_empty(fs_agg_stream_wait_name(fcinfo),
											"aggregation view",
											PG_ARGISNULL(1) ? NULL : PG_GETARG_INTERVAL_P(1)));
	view = fs_catalog_view(name);
	if (view->stream_problem)
		ereport(ERROR,
				(errcode(view->stream_problem_code),
				 errmsg_internal("%s", view->stream_problem)));
	PG_RETURN_BOOL(fs_stream_wait_empty(view->name, "feature view",
										PG_ARGISNULL(1) ? NULL : PG_GETARG_INTERVAL_P(1)));
}

/*
 * The number of events in a view's queue (*depth) and the oldest event_ts
 * (*oldest, or 0 when unknown), read from the queue's heap itself: no code
 * a role could attach to the table (a rule turning it into a view, a view
 * calling a function, a type's operators) runs.  False, with nothing set,
 * when the queue is missing, is not a plain heap table, or is locked by
 * someone else.  With stop_at_first, counts at most one event (is anything
 * waiting?).  Needs an active snapshot.
 */
bool
fs_stream_queue_state(const char *name, bool stop_at_first, int64 *depth,
					  TimestampTz *oldest)
{
	Oid			nsp = get_namespace_oid("fstore_stream", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
	Relation	rel;
	bool		ok = false;

	if (!OidIsValid(relid) || !ConditionalLockRelationOid(relid, AccessShareLock))
		return false;
	rel = RelationIdGetRelation(relid);
	if (RelationIsValid(rel) && rel->rd_rel->relkind == RELKIND_RELATION &&
		rel->rd_rel->relam == HEAP_TABLE_AM_OID)
	{
		TupleDesc	rd = RelationGetDescr(rel);
		AttrNumber	tsatt = InvalidAttrNumber;
		TableScanDesc scan;
		HeapTuple	tup;
		int64		n = 0;
		bool		any = false;
		TimestampTz first = 0;
		int			i;

		for (i = 0; i < rd->natts; i++)
			if (!TupleDescAttr(rd, i)->attisdropped &&
				strcmp(NameStr(TupleDescAttr(rd, i)->attname), "event_ts") == 0 &&
				TupleDescAttr(rd, i)->atttypid == TIMESTAMPTZOID)
				tsatt = i + 1;
		scan = heap_beginscan(rel, GetActiveSnapshot(), 0, NULL, NULL,
							  SO_TYPE_SEQSCAN | SO_ALLOW_STRAT | SO_ALLOW_SYNC |
							  SO_ALLOW_PAGEMODE);
		while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			n++;
			if (oldest != NULL && tsatt != InvalidAttrNumber)
			{
				bool		isnull;
				Datum		d = heap_getattr(tup, tsatt, rd, &isnull);

				if (!isnull && (!any || DatumGetTimestampTz(d) < first))
				{
					first = DatumGetTimestampTz(d);
					any = true;
				}
			}
			if (stop_at_first)
				break;
		}
		heap_endscan(scan);
		*depth = n;
		if (oldest != NULL)
			*oldest = any ? first : 0;
		ok = true;
	}
	if (RelationIsValid(rel))
		RelationClose(rel);
	UnlockRelationOid(relid, AccessShareLock);
	return ok;
}

/*
 * fstore._queue_state(view text) -> (depth bigint, oldest timestamptz)
 *		fstore.stats and fstore.freshness: see fs_stream_queue_state (NULLs
 *		where it cannot read the queue).  It needs no privilege on the
 *		queue: it tells how many events wait and since when, nothing of
 *		their contents.
 */
Datum
fs_queue_state(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TupleDesc	td;
	Datum		values[2];
	bool		nulls[2] = {true, true};
	int64		depth;
	TimestampTz oldest;

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (fs_stream_queue_state(name, false, &depth, &oldest))
	{
		values[0] = Int64GetDatum(depth);
		nulls[0] = false;
		values[1] = TimestampTzGetDatum(oldest);
		nulls[1] = oldest == 0;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), values, nulls)));
}
