/*
 * freshness.h
 *		What the writers of each view last did (newest event_ts applied,
 *		time of the last write), for fstore.freshness: noted per
 *		transaction, published to shared memory at commit, persisted to
 *		fstore.view_state / fstore.aggregation_state about once a second.
 *
 * Dependency direction: stats/ uses util/ and, to persist, catalog/; the
 * writers (apply/, aggregate/) and the stream workers (ingest/) use it
 * from above.
 */
#ifndef FS_FRESHNESS_H
#define FS_FRESHNESS_H

#include "datatype/timestamp.h"

/*
 * A write of the view committed by this transaction (if it commits) applied
 * events up to max_ts.  aggregation: the view is an aggregation view (its
 * state is kept in fstore.aggregation_state).  Cheap: the state goes to
 * shared memory at commit; this transaction also writes it to the table
 * when the view's row there is a second old or more (and always when
 * fstore is not preloaded: then there is no shared memory).
 */
extern void fs_freshness_note(int64 view_id, bool aggregation, TimestampTz max_ts);

/*
 * Writes to the tables the committed state that no writer has persisted
 * yet, for the views of this database (a stream worker calls it, in a
 * transaction, when it has nothing else to do).  Skips rows another
 * transaction holds; never waits.
 */
extern void fs_freshness_flush(void);

/* Whether fs_freshness_flush has anything to do (no transaction needed). */
extern bool fs_freshness_flush_wanted(void);

/* A dropped view's entry goes (fstore._forget_view). */
extern void fs_freshness_forget(int64 view_id);

extern Size fs_freshness_shmem_size(void);
extern void fs_freshness_shmem_startup(void);

#endif							/* FS_FRESHNESS_H */
