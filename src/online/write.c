/*
 * write.c
 *		fs_write and fs_write_query: the SQL entry points that hand a
 *		caller's rows (an array of the view's row type, or the rows of a
 *		query) to the apply engine (apply/apply.c), or to the aggregation
 *		views' writer for an aggregation view.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "aggregate/aggregate.h"
#include "apply/apply.h"
#include "catalog/query.h"
#include "online/online.h"

PG_FUNCTION_INFO_V1(fs_write);
PG_FUNCTION_INFO_V1(fs_write_query);

/* Deforms a composite datum of the view's online row type into a row. */
static void
row_from_record(FsView *view, TupleDesc td, Datum rec, Datum *tvals, bool *tnulls,
				FsRow *row)
{
	HeapTupleHeader th = DatumGetHeapTupleHeader(rec);
	HeapTupleData tuple;
	int			j;

	tuple.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = th;
	heap_deform_tuple(&tuple, td, tvals, tnulls);
	for (j = 0; j < view->ncols; j++)
	{
		AttrNumber	att = view->cols[j].online_attnum;

		row->values[j] = tvals[att - 1];
		row->nulls[j] = tnulls[att - 1];
	}
}

static Datum
counts_datum(FunctionCallInfo fcinfo, const FsApplyCounts *counts)
{
	TupleDesc	td;
	Datum		values[3];
	bool		nulls[3] = {false};

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(counts->written);
	values[1] = Int64GetDatum(counts->unchanged);
	values[2] = Int64GetDatum(counts->late);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), values, nulls));
}

/*
 * fs_write(view text, rows anyarray) -> (written, unchanged, late)
 */
Datum
fs_write(PG_FUNCTION_ARGS)
{
	FsView	   *view;
	FsApplyCounts counts = {0};

	if (fs_agg_is_view_arg(fcinfo, 0))
		return fs_agg_write(fcinfo);	/* events of an aggregation view */
	view = fs_catalog_view(fs_catalog_view_name_arg(fcinfo, 0));
	if (!PG_ARGISNULL(1))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
		Datum	   *elems;
		bool	   *enulls;
		int			n;
		int			i;
		FsRow	   *rows;
		Datum	   *vals;
		bool	   *nulls;
		TupleDesc	td;
		Datum	   *tvals;
		bool	   *tnulls;
		FsApply    *ap;

		if (ARR_ELEMTYPE(arr) != view->rowtype)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("rows have type %s, but feature view \"%s\" expects %s",
							format_type_be(get_array_type(ARR_ELEMTYPE(arr))),
							view->name,
							format_type_be(get_array_type(view->rowtype))),
					 errhint("Build the rows as ARRAY[ROW(...)]::fstore_online.%s[].",
							 quote_identifier(view->name))));

		deconstruct_array(arr, view->rowtype, -1, false, TYPALIGN_DOUBLE,
						  &elems, &enulls, &n);
		rows = palloc(sizeof(FsRow) * Max(n, 1));
		vals = palloc(sizeof(Datum) * view->ncols * Max(n, 1));
		nulls = palloc(sizeof(bool) * view->ncols * Max(n, 1));
		td = lookup_rowtype_tupdesc(view->rowtype, -1);
		tvals = palloc(sizeof(Datum) * td->natts);
		tnulls = palloc(sizeof(bool) * td->natts);
		for (i = 0; i < n; i++)
		{
			rows[i].values = &vals[i * view->ncols];
			rows[i].nulls = &nulls[i * view->ncols];
			rows[i].ord = i;
			if (enulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NOT_NULL_VIOLATION),
						 errmsg("row %d for feature view \"%s\" is NULL", i + 1, view->name)));
			row_from_record(view, td, elems[i], tvals, tnulls, &rows[i]);
			fs_apply_check_row(view, &rows[i], i + 1);
		}
		ReleaseTupleDesc(td);

		ap = fs_apply_begin(view);
		fs_apply_rows(ap, rows, n);
		fs_apply_end(ap, &counts);
	}
	PG_RETURN_DATUM(counts_datum(fcinfo, &counts));
}

/*
 * fs_write_query(view text, query text) -> (written, unchanged, late)
 */
Datum
fs_write_query(PG_FUNCTION_ARGS)
{
	FsView	   *view;
	FsApplyCounts counts = {0};
	int64		read;

	if (fs_agg_is_view_arg(fcinfo, 0))
		return fs_agg_write_query(fcinfo);	/* events of an aggregation view */
	view = fs_catalog_view(fs_catalog_view_name_arg(fcinfo, 0));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("query must not be NULL")));
	fs_write_select(view, fs_single_select(text_to_cstring(PG_GETARG_TEXT_PP(1))),
					0, NULL, NULL, &counts, &read);
	PG_RETURN_DATUM(counts_datum(fcinfo, &counts));
}

