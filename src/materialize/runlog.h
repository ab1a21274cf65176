/*
 * runlog.h
 *		Recording a failed fs_materialize run so that the record outlives
 *		the failing transaction (runlog.c).
 *
 * Dependency direction: materialize/ is near the top: it uses apply/,
 * aggregate/, catalog/, stats/ and util/; only src/fstore.c is above it.
 */
#ifndef FS_RUNLOG_H
#define FS_RUNLOG_H

#include "datatype/timestamp.h"
#include "utils/elog.h"

typedef struct FsFailedRun
{
	const char *view;
	TimestampTz since;
	TimestampTz until;
	bool		has_lookback;
	Interval	lookback;
	TimestampTz started_at;
	TimestampTz finished_at;
	int			sqlerrcode;
	const char *message;
} FsFailedRun;

/*
 * Inserts the run into fstore.materialization_runs in a transaction of its
 * own (a short-lived background worker), and waits for it.  Returns false,
 * with a WARNING, when that could not be done.
 */
extern bool fs_record_failed_run(const FsFailedRun *run);

/* true when fstore.materialization_runs has 0.2's columns */
extern bool fs_runs_have_status(void);

#endif							/* FS_RUNLOG_H */
