/*
 * query.c
 *		Checking and describing the queries callers give fstore: a view's
 *		source query (fs_create_feature_view, fs_materialize), the query of
 *		fs_write_query, a training query.
 *
 * fs_single_select accepts exactly one SELECT (no data-modifying WITH) and
 * returns its text; fs_query_result_desc prepares it, without running it,
 * for its result columns.  The SQL functions fstore._check_select and
 * fstore._query_columns give the extension script the same checks.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/plancache.h"

#include "catalog/metadata.h"
#include "catalog/query.h"

PG_FUNCTION_INFO_V1(fs_sql_check_select);
PG_FUNCTION_INFO_V1(fs_query_columns);

/*
 * The result columns of a query (SPI must be connected): prepared, not
 * run; 42809 unless it returns rows.  A copy, in the current context.
 */
TupleDesc
fs_query_result_desc(const char *select, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(select, nargs, argtypes);
	List	   *sources;
	TupleDesc	desc;

	if (plan == NULL)
		elog(ERROR, "could not prepare query: %s", SPI_result_code_string(SPI_result));
	sources = SPI_plan_get_plan_sources(plan);
	if (list_length(sources) != 1 ||
		((CachedPlanSource *) linitial(sources))->resultDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("query must return rows")));
	desc = CreateTupleDescCopy(((CachedPlanSource *) linitial(sources))->resultDesc);
	SPI_freeplan(plan);
	return desc;
}

/* The text of the single SELECT in query, without a trailing semicolon. */
char *
fs_single_select(const char *query)
{
	List	   *stmts = fs_parse_wrapped("", query, "", "query");
	RawStmt    *raw;
	SelectStmt *sel;
	ListCell   *lc;

	if (list_length(stmts) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("query must be a single SELECT statement")));
	raw = linitial_node(RawStmt, stmts);
	if (!IsA(raw->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("query must be a SELECT statement")));
	sel = (SelectStmt *) raw->stmt;
	if (sel->withClause)
		foreach(lc, sel->withClause->ctes)
		{
			CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

			if (!IsA(cte->ctequery, SelectStmt))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("query must not modify data"),
						 errdetail("WITH query \"%s\" is an INSERT, UPDATE or DELETE.",
								   cte->ctename)));
		}
	if (raw->stmt_len > 0)
		return pnstrdup(query + raw->stmt_location, raw->stmt_len);
	return pstrdup(query + raw->stmt_location);
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

