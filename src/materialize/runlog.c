/*
 * runlog.c
 *		The record of a failed fs_materialize run, committed on its own.
 *
 * A run that fails rolls back everything it did, and its caller's
 * transaction aborts with it (a pg_cron job, an autocommit statement), so
 * a row inserted by the run itself would go too.  PostgreSQL has no
 * autonomous transactions; the run hands the record to a background worker
 * it starts for that purpose, which connects to the same database, inserts
 * the row in a transaction of its own and exits, while the run waits (a
 * few milliseconds; failures are rare).  The record travels in a dynamic
 * shared memory segment.  The worker runs as the bootstrap superuser and
 * executes one fixed INSERT with the values as parameters.
 *
 * The worker is registered with fstore's library name, so this works
 * whether or not fstore is preloaded; it needs a free background worker
 * slot (max_worker_processes).  Without one, or on a standby, the failure
 * is reported with a WARNING and not recorded.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog/acl.h"
#include "materialize/runlog.h"

PGDLLEXPORT void fs_run_recorder_main(Datum arg);

#define MESSAGE_MAX 2000

typedef struct RunRecord
{
	Oid			dbid;
	char		view[NAMEDATALEN];
	TimestampTz since;
	TimestampTz until;
	bool		has_lookback;
	Interval	lookback;
	TimestampTz started_at;
	TimestampTz finished_at;
	char		sqlstate[6];
	char		message[MESSAGE_MAX];
	volatile bool done;			/* set by the worker after its commit */
} RunRecord;

/*
 * true when fstore.materialization_runs has the columns of 0.2 (status,
 * lookback): false with 0.1's catalogs, before ALTER EXTENSION UPDATE.
 */
bool
fs_runs_have_status(void)
{
	Oid			nsp = get_namespace_oid("fstore", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid("materialization_runs", nsp) : InvalidOid;

	return OidIsValid(relid) && get_attnum(relid, "status") != InvalidAttrNumber &&
		get_attnum(relid, "lookback") != InvalidAttrNumber;
}

bool
fs_record_failed_run(const FsFailedRun *run)
{
	dsm_segment *seg;
	RunRecord  *rec;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	bool		done;

	/* 0.1's catalogs (before ALTER EXTENSION UPDATE) have no place for it */
	if (!fs_runs_have_status())
		return false;
	if (RecoveryInProgress())
	{
		ereport(WARNING,
				(errmsg("the failed materialization of feature view \"%s\" was not recorded", run->view),
				 errdetail("The server is in recovery.")));
		return false;
	}

	seg = dsm_create(sizeof(RunRecord), 0);
	rec = dsm_segment_address(seg);
	memset(rec, 0, sizeof(RunRecord));
	rec->dbid = MyDatabaseId;
	strlcpy(rec->view, run->view, NAMEDATALEN);
	rec->since = run->since;
	rec->until = run->until;
	rec->has_lookback = run->has_lookback;
	rec->lookback = run->lookback;
	rec->started_at = run->started_at;
	rec->finished_at = run->finished_at;
	strlcpy(rec->sqlstate, unpack_sql_state(run->sqlerrcode), sizeof(rec->sqlstate));
	strlcpy(rec->message, run->message ? run->message : "", MESSAGE_MAX);
	rec->done = false;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "fstore");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "fs_run_recorder_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "fstore run recorder for PID %d", MyProcPid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "fstore run recorder");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		dsm_detach(seg);
		ereport(WARNING,
				(errmsg("the failed materialization of feature view \"%s\" was not recorded", run->view),
				 errdetail("No background worker slot was free to record it."),
				 errhint("Raise max_worker_processes.")));
		return false;
	}
	status = WaitForBackgroundWorkerShutdown(handle);
	pg_read_barrier();
	done = rec->done;
	dsm_detach(seg);
	if (!done)
	{
		ereport(WARNING,
				(errmsg("the failed materialization of feature view \"%s\" was not recorded", run->view),
				 errdetail(status == BGWH_POSTMASTER_DIED ?
						   "The postmaster died." :
						   "The worker recording it failed; see the server log.")));
		return false;
	}
	return true;
}

void
fs_run_recorder_main(Datum arg)
{
	static const char *sql =
		"INSERT INTO fstore.materialization_runs"
		" (view_name, since, until, lookback, started_at, finished_at, status, error, sqlstate)"
		" VALUES ($1, $2, $3, $4, $5, $6, 'failed', $7, $8)";
	dsm_segment *seg;
	RunRecord  *rec;
	Oid			types[8] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INTERVALOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	BackgroundWorkerUnblockSignals();
	seg = dsm_attach(DatumGetUInt32(arg));
	if (seg == NULL)
		proc_exit(1);			/* the run gave up waiting */
	rec = dsm_segment_address(seg);

	BackgroundWorkerInitializeConnectionByOid(rec->dbid, InvalidOid, 0);
	fs_pin_session_search_path();
	/* never wait long behind the failing session's locks */
	SetConfigOption("lock_timeout", "10s", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "30s", PGC_SUSET, PGC_S_OVERRIDE);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "recording a failed materialization");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = CStringGetTextDatum(rec->view);
	values[1] = TimestampTzGetDatum(rec->since);
	values[2] = TimestampTzGetDatum(rec->until);
	values[3] = IntervalPGetDatum(&rec->lookback);
	nulls[3] = rec->has_lookback ? ' ' : 'n';
	values[4] = TimestampTzGetDatum(rec->started_at);
	values[5] = TimestampTzGetDatum(rec->finished_at);
	values[6] = CStringGetTextDatum(rec->message);
	values[7] = CStringGetTextDatum(rec->sqlstate);
	if (SPI_execute_with_args(sql, 8, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record a failed materialization");
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	pg_write_barrier();
	rec->done = true;
	dsm_detach(seg);
	proc_exit(0);
}
