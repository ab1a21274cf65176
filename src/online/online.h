/*
 * online.h
 *		Online store: the SQL entry points of reads (fs_get_many, feature
 *		services) and of writes (fs_write, fs_write_query, which hand their
 *		rows to the apply engine, apply/).
 *
 * Dependency direction: online/ is above apply/, aggregate/, cache/, shard/,
 * keys/, stats/, catalog/ and util/, and uses them; only materialize/,
 * training/ and src/fstore.c are above it.
 */
#ifndef FS_ONLINE_H
#define FS_ONLINE_H

#include "access/htup.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"

#include "catalog/acl.h"
#include "catalog/metadata.h"
#include "keys/keys.h"

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

/* per-backend setup of the fast output path (output.c), from _PG_init */
extern void fs_output_init(void);

/* fs_get_many and fs_get_many_packed of a feature service (service.c). */
extern Datum fs_service_get_many(FunctionCallInfo fcinfo);
extern Datum fs_service_get_many_packed(FunctionCallInfo fcinfo);

#endif							/* FS_ONLINE_H */
