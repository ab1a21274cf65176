/*
 * decide.h
 *		The change-detection rules of fstore, as a pure function.
 *
 * Given the rows of one key sorted by event_ts (ties in input order), the
 * key's current online event_ts (if any) and three comparison callbacks,
 * fs_decide_key says for every row whether it is written, unchanged, late
 * or superseded, and what the online row becomes.  It knows nothing about
 * PostgreSQL (no postgres.h), so the rules are unit-tested on their own
 * (test/unit/test_decide.c) and the apply engine only does the I/O.
 *
 * Dependency direction: a leaf of apply/: no PostgreSQL, no other part;
 * only apply/apply.c (and test/unit/test_decide.c) use it.
 */
#ifndef FS_DECIDE_H
#define FS_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

typedef enum FsOutcome
{
	FS_OUT_WRITTEN,				/* online replaced, history appended */
	FS_OUT_UNCHANGED,			/* equal to the value in effect */
	FS_OUT_LATE,				/* older than online, different: history only */
	FS_OUT_SUPERSEDED			/* a later row of the call has the same event_ts */
} FsOutcome;

typedef struct FsDecideOps
{
	/* features of row i equal to the current online row? */
	bool		(*equal_online) (void *arg, int i);
	/* features of rows i and j equal? */
	bool		(*equal_rows) (void *arg, int i, int j);

	/*
	 * Looks up the key's latest history row at or before ts (for row i);
	 * returns false when there is none, else sets *hist_ts and remembers the
	 * row for equal_history.
	 */
	bool		(*history_at) (void *arg, int i, int64_t ts, int64_t *hist_ts);
	/* features of row i equal to the row history_at found last? */
	bool		(*equal_history) (void *arg, int i);
} FsDecideOps;

typedef struct FsDecideResult
{
	bool		online_dirty;	/* the online row must be (re)written */
	int			online_source;	/* row whose features go online; -1: keep */
	int64_t		online_ts;		/* event_ts the online row gets */
	int			written;
	int			unchanged;
	int			late;
} FsDecideResult;

extern void fs_decide_key(const int64_t *ts, int n, bool has_online,
						  int64_t online_ts, bool has_ttl,
						  const FsDecideOps *ops, void *arg,
						  FsOutcome *outcome, FsDecideResult *result);

#endif							/* FS_DECIDE_H */
