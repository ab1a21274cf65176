/*
 * decide.c
 *		Change detection for the rows of one key (see decide.h).
 *
 * Rules, per row in event_ts order:
 *   - a later row of the same call with the same event_ts exists:
 *     superseded (the last one of equal timestamps wins, so replays and
 *     re-runs never add history);
 *   - event_ts older than the current online event_ts: late.  It is
 *     compared with the value in effect at that time, which is the key's
 *     latest history row at or before it, or the previous late row of this
 *     call when that one is newer; equal: unchanged, otherwise late;
 *   - features equal to the current value: unchanged; in a view with a ttl
 *     the online event_ts moves forward to the row's;
 *   - otherwise: written, and the row becomes the current value.
 */
#include "apply/decide.h"

#include <stddef.h>

void
fs_decide_key(const int64_t *ts, int n, bool has_online, int64_t online_ts,
			  bool has_ttl, const FsDecideOps *ops, void *arg,
			  FsOutcome *outcome, FsDecideResult *res)
{
	bool		exists = has_online;
	int			cur = -1;		/* -1: the online row is the current value */
	int64_t		cur_ts = online_ts;
	int			prev_late = -1;
	int			r;

	res->online_dirty = false;
	res->online_source = -1;
	res->online_ts = online_ts;
	res->written = 0;
	res->unchanged = 0;
	res->late = 0;

	for (r = 0; r < n; r++)
	{
		if (r + 1 < n && ts[r + 1] == ts[r])
		{
			outcome[r] = FS_OUT_SUPERSEDED;
			res->unchanged++;
			continue;
		}

		if (exists && ts[r] < cur_ts)
		{
			int64_t		hts = 0;
			bool		have_hist = ops->history_at(arg, r, ts[r], &hts);
			bool		equal;

			if (have_hist && (prev_late < 0 || hts > ts[prev_late]))
				equal = ops->equal_history(arg, r);
			else if (prev_late >= 0)
				equal = ops->equal_rows(arg, r, prev_late);
			else
				equal = false;	/* nothing was in effect at that time */

			if (equal)
			{
				outcome[r] = FS_OUT_UNCHANGED;
				res->unchanged++;
			}
			else
			{
				outcome[r] = FS_OUT_LATE;
				res->late++;
			}
			prev_late = r;
			continue;
		}

		if (exists &&
			(cur < 0 ? ops->equal_online(arg, r) : ops->equal_rows(arg, r, cur)))
		{
			outcome[r] = FS_OUT_UNCHANGED;
			res->unchanged++;
			if (has_ttl && ts[r] > cur_ts)
			{
				cur_ts = ts[r];
				res->online_dirty = true;
			}
			continue;
		}

		outcome[r] = FS_OUT_WRITTEN;
		res->written++;
		cur = r;
		cur_ts = ts[r];
		exists = true;
		res->online_dirty = true;
	}

	res->online_source = cur;
	res->online_ts = cur_ts;
}
