/*
 * materialize.c
 *		fs_materialize: incremental refresh of a feature view from its source.
 *
 * A run reads the source rows with timestamp in (since, until] and applies
 * them through the apply engine (fs_write's change detection) in event_ts
 * order per key; the rows stream through a sorted cursor in chunks, so a
 * window of any size is processed in bounded memory.  Without since, a run
 * starts at the view's watermark: the latest until of a successful run; a
 * lookback starts it that much earlier, so that rows loaded late with an
 * earlier timestamp are read (those read again are unchanged).  The run,
 * its record in fstore.materialization_runs and the new watermark are one
 * transaction: a run that fails changes nothing in the view, and its
 * failure is recorded by a transaction of its own (runlog.c).  Runs of one view
 * never interleave: a run takes the view's materialization lock, without
 * waiting; a second run meanwhile is refused (55P03).
 *
 * Also the helpers fs_create_feature_view uses for sources given as a
 * query: checking it is one SELECT, and listing its columns.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "aggregate/aggregate.h"
#include "catalog/acl.h"
#include "catalog/metadata.h"
#include "materialize/runlog.h"
#include "apply/apply.h"
#include "catalog/query.h"
#include "stats/progress.h"

PG_FUNCTION_INFO_V1(fs_materialize);

/* What a run needs to know about a view's source. */
typedef struct SourceInfo
{
	char	   *relation;		/* qualified, quoted name, or NULL */
	char	   *query;			/* a SELECT, or NULL */
	char	   *ts_column;
	bool		has_watermark;
	TimestampTz watermark;
} SourceInfo;

static void
read_source(FsView *view, SourceInfo *src)
{
	static const char *sql =
		"SELECT v.source::pg_catalog.text, v.source_query::pg_catalog.text,"
		"       v.timestamp_column::pg_catalog.text, s.watermark::pg_catalog.timestamptz"
		"  FROM fstore.feature_views v"
		"  LEFT JOIN fstore.view_state s ON s.view_id OPERATOR(pg_catalog.=) v.view_id"
		" WHERE v.view_id OPERATOR(pg_catalog.=) $1";
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(view->view_id)};
	MemoryContext caller = CurrentMemoryContext;
	HeapTuple	tup;
	TupleDesc	td;
	bool		isnull;
	Datum		d;

	memset(src, 0, sizeof(SourceInfo));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* not read-only: a new snapshot (in READ COMMITTED) sees the latest run */
	if (SPI_execute_with_args(sql, 1, types, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("feature view \"%s\" does not exist", view->name)));
	tup = SPI_tuptable->vals[0];
	td = SPI_tuptable->tupdesc;
	{
		MemoryContext old = MemoryContextSwitchTo(caller);

		d = SPI_getbinval(tup, td, 1, &isnull);
		src->relation = isnull ? NULL : TextDatumGetCString(d);
		d = SPI_getbinval(tup, td, 2, &isnull);
		src->query = isnull ? NULL : TextDatumGetCString(d);
		src->ts_column = TextDatumGetCString(SPI_getbinval(tup, td, 3, &isnull));
		d = SPI_getbinval(tup, td, 4, &isnull);
		src->has_watermark = !isnull;
		src->watermark = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
}

/* The SELECT of a run: the view's columns from the source, in the window. */
static char *
window_select(FsView *view, SourceInfo *src)
{
	StringInfoData sql;
	int			j;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (j = 0; j < view->ts_col; j++)
		appendStringInfo(&sql, "s.%s, ", quote_identifier(view->cols[j].name));
	appendStringInfo(&sql, "s.%s FROM ", quote_identifier(src->ts_column));
	if (src->relation)
		appendStringInfoString(&sql, src->relation);
	else
		appendStringInfo(&sql, "(\n%s\n)", src->query);
	appendStringInfo(&sql, " AS s WHERE s.%s OPERATOR(pg_catalog.>) $1 AND s.%s OPERATOR(pg_catalog.<=) $2",
					 quote_identifier(src->ts_column), quote_identifier(src->ts_column));
	return sql.data;
}

/*
 * Refuses a lookback that is negative or infinite (22023).  A zero
 * lookback is allowed and means none.
 */
static void
check_lookback(Interval *lookback)
{
	Interval	zero = {0};

	/* (PostgreSQL 15 has no infinite intervals: the input refuses them) */
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(lookback),
										  IntervalPGetDatum(&zero))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lookback must be a finite, non-negative interval")));
}

/* The run itself: reads the window, applies it, records the run. */
static void
run_window(FsView *view, SourceInfo *src, TimestampTz since, TimestampTz until,
		   Interval *lookback, bool has_lookback, TimestampTz started, FsApplyCounts *counts,
		   int64 *read, TimestampTz *finished)
{
	Oid			argtypes[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		args[2];

	if (since < until)
	{
		FsUserContext uc;

		args[0] = TimestampTzGetDatum(since);
		args[1] = TimestampTzGetDatum(until);

		/*
		 * The source (a relation that may be a view, or a query calling
		 * functions) and the view's triggers are its owner's code: they run
		 * as the owner, restricted, with a pinned search_path, whoever runs
		 * fs_materialize (a superuser, a pg_cron job).
		 */
		fs_progress_phase("reading and applying");
		fs_become_owner(view->owner, &uc);
		fs_write_select(view, window_select(view, src), 2, argtypes, args,
						counts, read);
		fs_restore_user(&uc);
	}
	*finished = GetCurrentTimestamp();
	fs_progress_phase("recording");

	/* the record of the run and the new watermark commit with the run */
	{
		static const char *record_sql =
			"INSERT INTO fstore.materialization_runs"
			" (view_name, since, until, read, written, unchanged, late, started_at, finished_at,"
			"  status, lookback)"
			" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'succeeded',"
			"         CASE WHEN $11 THEN $10 END)";
		static const char *record_sql_01 =
			"INSERT INTO fstore.materialization_runs"
			" (view_name, since, until, read, written, unchanged, late, started_at, finished_at)"
			" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
		static const char *watermark_sql =
			"INSERT INTO fstore.view_state AS s (view_id, watermark) VALUES ($1, $2)"
			" ON CONFLICT (view_id) DO UPDATE"
			" SET watermark = GREATEST(s.watermark, excluded.watermark)";
		Oid			rtypes[11] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID,
			INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INTERVALOID, BOOLOID};
		Datum		rvals[11];
		Oid			wtypes[2] = {INT8OID, TIMESTAMPTZOID};
		Datum		wvals[2];

		rvals[0] = CStringGetTextDatum(view->name);
		rvals[1] = TimestampTzGetDatum(since);
		rvals[2] = TimestampTzGetDatum(until);
		rvals[3] = Int64GetDatum(*read);
		rvals[4] = Int64GetDatum(counts->written);
		rvals[5] = Int64GetDatum(counts->unchanged);
		rvals[6] = Int64GetDatum(counts->late);
		rvals[7] = TimestampTzGetDatum(started);
		rvals[8] = TimestampTzGetDatum(*finished);
		/* fs_catalog_exec_as_owner takes no NULLs: a flag says "none" */
		rvals[9] = IntervalPGetDatum(lookback);
		rvals[10] = BoolGetDatum(has_lookback);
		if (fs_runs_have_status())
			fs_catalog_exec_as_owner(record_sql, 11, rtypes, rvals, SPI_OK_INSERT);
		else
			fs_catalog_exec_as_owner(record_sql_01, 9, rtypes, rvals, SPI_OK_INSERT);
		wvals[0] = Int64GetDatum(view->view_id);
		wvals[1] = TimestampTzGetDatum(until);
		fs_catalog_exec_as_owner(watermark_sql, 2, wtypes, wvals, SPI_OK_INSERT);
	}
}

/*
 * fs_materialize(view text, since timestamptz DEFAULT NULL,
 *                until timestamptz DEFAULT NULL, lookback interval DEFAULT NULL)
 *   -> (read, written, unchanged, late, seconds)
 *
 * The run proper (reading, applying, recording) runs in a subtransaction:
 * when it fails, the subtransaction is rolled back, the failure is
 * recorded in a transaction of its own (runlog.c), and the error is raised
 * again.  Errors before the run starts (bad arguments, privileges, a run
 * already in progress) are not runs and are not recorded.
 */
Datum
fs_materialize(PG_FUNCTION_ARGS)
{
	char	   *name;
	FsView	   *view;
	SourceInfo	src;
	TimestampTz since;
	TimestampTz until;
	TimestampTz started;
	TimestampTz finished = 0;
	FsApplyCounts counts = {0};
	int64		read = 0;
	Interval	lookback = {0};
	/* (0.1's declaration, before ALTER EXTENSION UPDATE, has no lookback) */
	bool		has_lookback = PG_NARGS() > 3 && !PG_ARGISNULL(3);
	TupleDesc	td;
	Datum		values[5];
	bool		nulls[5] = {false};
	MemoryContext callcxt = CurrentMemoryContext;
	ResourceOwner callowner = CurrentResourceOwner;

	name = fs_catalog_view_name_arg(fcinfo, 0);
	if (fs_agg_is_view_arg(fcinfo, 0))
		return fs_agg_materialize(fcinfo);	/* backfill of an aggregation view */
	view = fs_catalog_view(name);

	/*
	 * The writer's privileges first: even a run that reads nothing moves the
	 * watermark and records itself.
	 */
	fs_check_write_privileges(view);
	if (!PG_ARGISNULL(2) && TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(2)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("until must be a finite time"),
				 errdetail("It becomes the view's watermark, where the next run starts.")));
	if (!PG_ARGISNULL(1) && !PG_ARGISNULL(2) &&
		PG_GETARG_TIMESTAMPTZ(1) > PG_GETARG_TIMESTAMPTZ(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("since must not be later than until")));
	if (has_lookback)
	{
		lookback = *PG_GETARG_INTERVAL_P(3);
		check_lookback(&lookback);
	}

	if (!ConditionalLockDatabaseObject(fs_catalog_views_relid(), (Oid) view->view_id,
									   1, ExclusiveLock))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("feature view \"%s\" is already being materialized", view->name),
				 errdetail("Runs of one feature view never interleave; another session holds this view's materialization lock."),
				 errhint("Try again once that run has finished.")));

	/* the watermark after the lock: a run that just finished has moved it */
	read_source(view, &src);
	if (src.relation == NULL && src.query == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("feature view \"%s\" has no source", view->name),
				 errhint("Create the view with source => a table or view, or source_query => a query; or write to it with fs_write.")));

	since = PG_ARGISNULL(1) ? (src.has_watermark ? src.watermark : DT_NOBEGIN) :
		PG_GETARG_TIMESTAMPTZ(1);
	until = PG_ARGISNULL(2) ? GetCurrentTransactionStartTimestamp() :
		PG_GETARG_TIMESTAMPTZ(2);
	/* re-read (start - lookback, until]: late rows stamped before the start */
	if (has_lookback && !TIMESTAMP_NOT_FINITE(since))
		since = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
														TimestampTzGetDatum(since),
														IntervalPGetDatum(&lookback)));

	started = GetCurrentTimestamp();
	fs_progress_begin(FS_PROGRESS_MATERIALIZE, view->view_id, view->name, "starting");

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(callcxt);
	PG_TRY();
	{
		run_window(view, &src, since, until, &lookback, has_lookback, started, &counts, &read,
				   &finished);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(callcxt);
		CurrentResourceOwner = callowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		FsFailedRun run;

		MemoryContextSwitchTo(callcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(callcxt);
		CurrentResourceOwner = callowner;

		fs_progress_end();
		run.view = view->name;
		run.since = since;
		run.until = until;
		run.has_lookback = has_lookback;
		run.lookback = lookback;
		run.started_at = started;
		run.finished_at = GetCurrentTimestamp();
		run.sqlerrcode = edata->sqlerrcode;
		run.message = edata->message;
		fs_record_failed_run(&run);
		ReThrowError(edata);
	}
	PG_END_TRY();
	fs_progress_end();

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(read);
	values[1] = Int64GetDatum(counts.written);
	values[2] = Int64GetDatum(counts.unchanged);
	values[3] = Int64GetDatum(counts.late);
	values[4] = Float8GetDatum((double) (finished - started) / USECS_PER_SEC);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), values, nulls)));
}

