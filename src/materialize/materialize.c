/*
 * materialize.c
 *		fs_materialize: incremental refresh of a feature view from its source.
 *
 * A run reads the source rows with timestamp in (since, until] and applies
 * them through the apply engine (fs_write's change detection) in event_ts
 * order per key; the rows stream through a sorted cursor in chunks, so a
 * window of any size is processed in bounded memory.  Without since, a run
 * starts at the view's watermark: the latest until of a successful run.  The
 * run, its record in fstore.materialization_runs and the new watermark are
 * one transaction: a run that fails changes nothing.  Runs of one view
 * never interleave: a run takes the view's materialization lock, without
 * waiting; a second run meanwhile is refused (55P03).
 *
 * Also the helpers fs_create_feature_view uses for sources given as a
 * query: checking it is one SELECT, and listing its columns.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/timestamp.h"

#include "fstore.h"
#include "aggregate/aggregate.h"
#include "catalog/acl.h"
#include "catalog/metadata.h"
#include "online/online.h"

PG_FUNCTION_INFO_V1(fs_materialize);
PG_FUNCTION_INFO_V1(fs_sql_check_select);
PG_FUNCTION_INFO_V1(fs_query_columns);

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
 * fs_materialize(view text, since timestamptz DEFAULT NULL,
 *                until timestamptz DEFAULT NULL)
 *   -> (read, written, unchanged, late, seconds)
 */
Datum
fs_materialize(PG_FUNCTION_ARGS)
{
	FsView	   *view;
	SourceInfo	src;
	TimestampTz since;
	TimestampTz until;
	TimestampTz started;
	TimestampTz finished;
	FsApplyCounts counts = {0};
	int64		read = 0;
	Oid			argtypes[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		args[2];
	TupleDesc	td;
	Datum		values[5];
	bool		nulls[5] = {false};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("feature view name must not be NULL")));
	if (fs_agg_is_view_arg(fcinfo, 0))
		return fs_agg_materialize(fcinfo);	/* backfill of an aggregation view */
	view = fs_catalog_view(text_to_cstring(PG_GETARG_TEXT_PP(0)));

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

	started = GetCurrentTimestamp();
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
		fs_become_owner(view->owner, &uc);
		fs_write_select(view, window_select(view, &src), 2, argtypes, args,
						&counts, &read);
		fs_restore_user(&uc);
	}
	finished = GetCurrentTimestamp();

	/* the record of the run and the new watermark commit with the run */
	{
		static const char *record_sql =
			"INSERT INTO fstore.materialization_runs"
			" (view_name, since, until, read, written, unchanged, late, started_at, finished_at)"
			" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
		static const char *watermark_sql =
			"INSERT INTO fstore.view_state AS s (view_id, watermark) VALUES ($1, $2)"
			" ON CONFLICT (view_id) DO UPDATE"
			" SET watermark = GREATEST(s.watermark, excluded.watermark)";
		Oid			rtypes[9] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID,
			INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
		Datum		rvals[9];
		Oid			wtypes[2] = {INT8OID, TIMESTAMPTZOID};
		Datum		wvals[2];

		rvals[0] = CStringGetTextDatum(view->name);
		rvals[1] = TimestampTzGetDatum(since);
		rvals[2] = TimestampTzGetDatum(until);
		rvals[3] = Int64GetDatum(read);
		rvals[4] = Int64GetDatum(counts.written);
		rvals[5] = Int64GetDatum(counts.unchanged);
		rvals[6] = Int64GetDatum(counts.late);
		rvals[7] = TimestampTzGetDatum(started);
		rvals[8] = TimestampTzGetDatum(finished);
		fs_catalog_exec_as_owner(record_sql, 9, rtypes, rvals, SPI_OK_INSERT);
		wvals[0] = Int64GetDatum(view->view_id);
		wvals[1] = TimestampTzGetDatum(until);
		fs_catalog_exec_as_owner(watermark_sql, 2, wtypes, wvals, SPI_OK_INSERT);
	}

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(read);
	values[1] = Int64GetDatum(counts.written);
	values[2] = Int64GetDatum(counts.unchanged);
	values[3] = Int64GetDatum(counts.late);
	values[4] = Float8GetDatum((double) (finished - started) / USECS_PER_SEC);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), values, nulls)));
}

/* fstore._check_select(query text) -> the single SELECT it holds */
Datum
fs_sql_check_select(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(fs_single_select(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

/* fstore._query_columns(query text) -> (colname name, typesql text) */
Datum
fs_query_columns(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *select = fs_single_select(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	TupleDesc	rdesc;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rdesc = fs_query_result_desc(select, 0, NULL);

	/*
	 * Opening a cursor starts the executor, which checks the caller's
	 * privileges on everything the query reads; nothing is fetched.
	 */
	{
		Portal		portal = SPI_cursor_open_with_args(NULL, select, 0, NULL, NULL,
													   NULL, true, 0);

		SPI_cursor_close(portal);
	}
	for (i = 0; i < rdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(rdesc, i);
		Datum		values[2];
		bool		nulls[2] = {false};

		if (att->attisdropped)
			continue;
		values[0] = NameGetDatum(&att->attname);
		values[1] = CStringGetTextDatum(fs_format_type_sql(att->atttypid, att->atttypmod));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

