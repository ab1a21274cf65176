/*
 * aggregate.h
 *		Aggregation views: sliding-window aggregates over raw events, kept as
 *		per-key tiles of partial aggregates (docs/aggregations.md).
 *
 * An aggregation view "x" has a view fstore_online.x (its row type is what
 * fs_get_many returns: keys, aggregates, event_ts), a tiles table
 * fstore_offline.x and a queue fstore_stream.x.  The SQL that updates and
 * reads the tiles is generated when the view is created
 * (fs_create_aggregation_view in the extension script) and kept in
 * fstore.aggregation_views; this part runs it: the stream batches, fs_write
 * of event rows, fs_materialize backfills, reads and compaction.  The other
 * parts call in through the entry points below (small dispatch hooks).
 *
 * Dependency direction: aggregate/ uses catalog/, util/ (and the types of
 * util/rows.h) only; the parts that dispatch to it, online/ (reads and
 * writes), ingest/ (queues and workers) and materialize/, are above it.
 */
#ifndef FS_AGGREGATE_H
#define FS_AGGREGATE_H

#include "fmgr.h"
#include "access/htup.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"

#include "util/rows.h"

/* true if fstore_online.<name> is an aggregation view (cheap: syscache only) */
extern bool fs_agg_is_view(const char *name);
/* true if rowtype is the row type of an aggregation view */
extern bool fs_agg_is_rowtype(Oid rowtype);
/* the same test on a function's text argument (false when NULL) */
extern bool fs_agg_is_view_arg(FunctionCallInfo fcinfo, int argno);

/* fs_get_many / fs_get_many_packed of an aggregation view's row type */
extern Datum fs_agg_get_many(FunctionCallInfo fcinfo, bool packed);
/* fs_write of an aggregation view: event rows into tiles */
extern Datum fs_agg_write(FunctionCallInfo fcinfo);
extern Datum fs_agg_write_query(FunctionCallInfo fcinfo);
/* fs_materialize of an aggregation view: replaces the tiles of the range */
extern Datum fs_agg_materialize(FunctionCallInfo fcinfo);
/* fs_stream_apply of an aggregation view */
extern Datum fs_agg_stream_apply(FunctionCallInfo fcinfo);
/* fs_stream_wait of an aggregation view: its name, once checked */
extern const char *fs_agg_stream_wait_name(FunctionCallInfo fcinfo);
/* the id of an aggregation view (raises 42704 for an unknown one) */
extern int64 fs_agg_view_id(const char *name);

/*
 * One batch of a view's queue into its tiles, in the caller's transaction
 * (the events leave the queue in the statement that adds them to the
 * tiles); fills out->events, applied, dead.  For the stream workers.
 */
extern void fs_agg_stream_batch(const char *name, int max_rows,
								FsStreamBatch *out);

/*
 * Feature services with features of aggregation views (service.c): lock and
 * check SELECT on fstore_online.<name>; read the rows of requests at a time.
 */
extern void fs_agg_service_check(const char *name);
extern Oid	fs_agg_key_array_type(const char *name, char **entity);
extern HeapTuple *fs_agg_service_read(const char *name, int nreq, int ncols,
									  char **colnames, Oid *coltypes,
									  Datum *rvals, bool *rnulls, bool *risnull,
									  TimestampTz at, TupleDesc *desc);

/* The query the stream workers list their views with (ids and names). */
extern const char *fs_agg_worker_views_sql(void);

#endif							/* FS_AGGREGATE_H */
