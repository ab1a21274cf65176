/*
 * online.h
 *		Online store: batched reads (fs_get_many) and the change-detecting
 *		apply engine shared by fs_write, fs_write_query, the stream workers
 *		and fs_materialize.
 */
#ifndef FS_ONLINE_H
#define FS_ONLINE_H

#include "access/htup.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"

#include "catalog/metadata.h"
#include "online/keys.h"

/* ---- reads ---- */

/*
 * Fetches the online rows of the distinct keys listed in which[] (sorted
 * distinct indexes of the batch) with one index descent each; rows[d] is
 * set to a copy of the row (formed with the table's descriptor) or NULL.
 */
extern void fs_online_fetch(FsView *view, Relation rel, FsKeyBatch *batch,
							const int *which, int n, HeapTuple *rows,
							Snapshot snapshot);

/*
 * One view's rows for every distinct key of the batch (hot cache, then the
 * table; expired rows dropped): rows[d] or NULL.
 */
extern HeapTuple *fs_online_read_rows(FsView *view, FsKeyBatch *batch,
									  TupleDesc *descp);

/* fs_get_many and fs_get_many_packed of a feature service (service.c). */
extern Datum fs_service_get_many(FunctionCallInfo fcinfo);
extern Datum fs_service_get_many_packed(FunctionCallInfo fcinfo);

/* Raises 42501 unless the current user may read every column of relid. */
extern void fs_check_select(Oid relid);
extern void fs_permission_denied(Oid relid) pg_attribute_noreturn();

/* ---- writes ---- */

typedef struct FsApplyCounts
{
	int64		written;
	int64		unchanged;
	int64		late;
	int64		rows;			/* rows applied */
	TimestampTz max_ts;			/* newest event_ts applied (if rows > 0) */
} FsApplyCounts;

/* One input row in logical layout: keys, features, event_ts. */
typedef struct FsRow
{
	Datum	   *values;
	bool	   *nulls;
	int			ord;			/* position in the input, for stable order */
} FsRow;

typedef struct FsApply FsApply;

extern FsApply *fs_apply_begin(FsView *view);
/* fs_apply_end leaves fstore.view_state to the caller (fs_apply_note_state) */
extern void fs_apply_defer_state(FsApply *ap);
extern void fs_apply_note_state(FsView *view, TimestampTz max_ts);
extern void fs_apply_rows(FsApply *ap, FsRow *rows, int nrows);
extern void fs_apply_end(FsApply *ap, FsApplyCounts *counts);
extern void fs_apply_check_row(FsView *view, FsRow *row, int rowno);
extern bool fs_row_ts_finite(FsView *view, const FsRow *row);
extern void fs_write_select(FsView *view, const char *select, int nargs,
							Oid *argtypes, Datum *args, FsApplyCounts *counts,
							int64 *read);
extern char *fs_single_select(const char *query);
extern TupleDesc fs_query_result_desc(const char *select, int nargs, Oid *argtypes);
extern void fs_check_write_privileges(FsView *view);

#endif							/* FS_ONLINE_H */
