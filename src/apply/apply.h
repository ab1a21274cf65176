/*
 * apply.h
 *		The apply engine: the change-detecting upsert of rows into a feature
 *		view's online and offline tables, shared by every writer.
 *
 * Dependency direction: apply/ is called from above, by the writers:
 * online/ (fs_write, fs_write_query), ingest/ (stream batches),
 * materialize/ (fs_materialize) and aggregate/.  It uses only the parts
 * below it: shard/, cache/ (to note changed keys), stats/, keys/,
 * catalog/ and util/.  It never calls a writer.
 */
#ifndef FS_APPLY_H
#define FS_APPLY_H

#include "datatype/timestamp.h"

#include "catalog/metadata.h"
#include "util/rows.h"

typedef struct FsApply FsApply;

extern FsApply *fs_apply_begin(FsView *view);
extern void fs_apply_rows(FsApply *ap, FsRow *rows, int nrows);
extern void fs_apply_end(FsApply *ap, FsApplyCounts *counts);
extern void fs_apply_check_row(FsView *view, FsRow *row, int rowno);
extern bool fs_row_ts_finite(FsView *view, const FsRow *row);
extern void fs_write_select(FsView *view, const char *select, int nargs,
							Oid *argtypes, Datum *args, FsApplyCounts *counts,
							int64 *read);

#endif							/* FS_APPLY_H */
