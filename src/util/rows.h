/*
 * rows.h
 *		The types every writer of a feature view shares: a row in the
 *		view's logical layout (keys, features, event_ts) and the counts of
 *		what a write or a stream batch did.
 *
 * Dependency direction: a leaf (util/); PostgreSQL's types only.  The
 * apply engine (apply/), the shard router (shard/) and the writers above
 * them use these types.
 */
#ifndef FS_ROWS_H
#define FS_ROWS_H

#include "datatype/timestamp.h"

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

/* Result of one batch. */
typedef struct FsStreamBatch
{
	int64		events;			/* removed from the queue */
	int64		applied;		/* applied (written, unchanged or late) */
	int64		dead;			/* moved to fstore.dead_letters */
	int64		written;
	int64		unchanged;
	int64		late;
} FsStreamBatch;

#endif							/* FS_ROWS_H */
