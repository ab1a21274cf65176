/*
 * shard.h
 *		Sharded feature views: the coordinator's side (docs/scale-out.md).
 *
 * A sharded view's rows live on several servers (shards), each holding an
 * ordinary fstore view of the same name; the coordinator sends each shard
 * its keys (fs_get_many) or rows (fs_write, fs_write_query, fs_materialize)
 * over dblink, all shards at once, and puts the answers back together.
 *
 * Dependency direction: shard/ uses catalog/, keys/, stats/ and util/;
 * online/ (reads) and apply/ (writes) call it from above.
 */
#ifndef FS_SHARD_H
#define FS_SHARD_H

#include "access/htup.h"
#include "access/tupdesc.h"

#include "catalog/metadata.h"
#include "keys/keys.h"
#include "util/rows.h"

/* Whether the view is sharded (its coordinator history table is partitioned). */
extern bool fs_shard_is_sharded(FsView *view);

/*
 * The rows of every distinct key of the batch, as read_view_rows returns
 * them (rows[d] formed with *descp, the online table's descriptor, or NULL
 * for a key without a value or past the ttl), asked of the shards.
 */
extern HeapTuple *fs_shard_read_rows(FsView *view, FsKeyBatch *b, TupleDesc *descp);

/* The write side: NULL unless the view is sharded. */
typedef struct FsShardRouter FsShardRouter;

extern FsShardRouter *fs_shard_router_begin(FsView *view);
extern void fs_shard_router_rows(FsShardRouter *r, FsRow *rows, int nrows,
								 FsApplyCounts *counts, TimestampTz *max_ts);

#endif							/* FS_SHARD_H */
