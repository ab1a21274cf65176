/*
 * ingest.h
 *		Streaming ingestion: queue tables drained by background workers.
 *
 * queue.c   applies a batch of queued events through the apply engine, in
 *           the transaction that deletes them (exactly once), moving events
 *           that cannot be applied to fstore.dead_letters; also the SQL
 *           entry points fs_stream_apply and fs_stream_wait, and the queue
 *           tables' trigger that wakes a worker when a producer commits.
 * worker.c  the launcher and the per-database workers, and their shared
 *           memory (a slot per worker, with its latch).
 *
 * Dependency direction: ingest/ uses apply/ (feature views' batches),
 * aggregate/ (aggregation views' batches), catalog/, stats/ and util/;
 * only src/fstore.c is above it (its init and shared memory).  Aggregation
 * views reach the workers only through their queues and this part's
 * dispatch, never by calling in.
 */
#ifndef FS_INGEST_H
#define FS_INGEST_H

#include "datatype/timestamp.h"
#include "storage/condition_variable.h"

#include "catalog/metadata.h"
#include "util/rows.h"
#include "util/util.h"

extern int	fs_stream_workers;
extern int	fs_stream_idle_timeout;
extern char *fs_stream_database;

extern void fs_ingest_init(void);
extern Size fs_ingest_shmem_size(void);
extern void fs_ingest_shmem_startup(void);


/*
 * Removes up to max_rows committed events from the view's queue and applies
 * them; must run inside a transaction with an active snapshot.
 */
extern void fs_stream_apply_batch(FsView *view, int max_rows, FsStreamBatch *out);

/* Events waiting in a view's queue, read without running any role's code. */
extern bool fs_stream_queue_state(const char *name, bool stop_at_first,
								  int64 *depth, TimestampTz *oldest);

/*
 * Waits until a queue is empty or the timeout passes: sleeps on the
 * workers' condition variable (rechecking at least every 100 ms), or
 * checks every 10 ms when fstore is not preloaded.
 */
extern bool fs_stream_wait_empty(const char *name, const char *kind,
								 Interval *timeout);

/*
 * The condition variable broadcast when a queue may have become empty or a
 * worker left (NULL when fstore is not preloaded), and the broadcast.
 */
extern ConditionVariable *fs_stream_progress_cv(void);
extern void fs_stream_progress(void);

/* Wakes the worker that serves a view of this database (at commit). */
extern void fs_stream_wake(int64 view_id);

#endif							/* FS_INGEST_H */
