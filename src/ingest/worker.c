/*
 * worker.c
 *		Stream workers: a launcher, and per database fstore.stream_workers
 *		workers that drain the queue tables.
 *
 * The launcher (a static background worker, started once recovery is over)
 * connects to no database.  Workers are handed out on demand: when the
 * launcher starts, it starts the workers of every database once (events may
 * wait from before a restart); after that, only where a producer committed
 * events and found no worker (the database's note is "wanted"), or where a
 * worker stopped without having run out of work.  A worker connects to its
 * database, exits at once if fstore is not installed there, and otherwise
 * loops: for each feature view it serves (view_id modulo
 * fstore.stream_workers equals its index, so one view's events are applied
 * by one worker, in batches) it applies one batch per transaction; when
 * there was nothing to do it sleeps on its latch, which producers set when
 * they commit.  A timeout of one second is only a fallback.  After
 * fstore.stream_idle_timeout without events it exits, so a few background
 * worker slots serve any number of databases; a database whose events wait
 * for a slot shows in fstore.freshness (queue_stalled).
 *
 * Shared memory holds one slot per running worker (database, index, pid,
 * latch) and a note per database (no extension, wanted, paused), under one
 * LWLock.  DROP DATABASE, ALTER DATABASE ... RENAME / SET TABLESPACE and
 * CREATE DATABASE ... TEMPLATE need the database to themselves: a
 * ProcessUtility hook pauses the database's workers (they exit and are not
 * restarted) before such a statement runs, and resumes them after.
 *
 * Workers exit when fstore.stream_workers drops below their index (after a
 * reload), when the extension goes away, and on SIGTERM; a worker that dies
 * is started again by the launcher (at most once a second per slot).
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "aggregate/aggregate.h"
#include "catalog/acl.h"
#include "ingest/ingest.h"
#include "stats/freshness.h"

PGDLLEXPORT void fs_stream_launcher_main(Datum main_arg);
PGDLLEXPORT void fs_stream_worker_main(Datum main_arg);

int			fs_stream_workers = 1;
int			fs_stream_idle_timeout = 60;
char	   *fs_stream_database = NULL;

#define FS_MAX_DB_NOTES		256
#define NAPTIME_MS			1000	/* fallback poll of an idle worker */
#define LAUNCHER_NAP_MS		5000
#define NO_EXTENSION_RECHECK_SECS 60
#define PAUSE_WAIT_SECS		10
#define PROGRESS_RECHECK_MS	100	/* waiters recheck at least this often */

typedef struct FsWorkerSlot
{
	Oid			dbid;
	int			idx;
	int			pid;			/* 0: free */
	Latch	   *latch;
} FsWorkerSlot;

typedef struct FsDbNote
{
	Oid			dbid;			/* InvalidOid: free */
	TimestampTz no_extension_at;	/* a worker found no fstore */
	bool		wanted;			/* events wait and no worker serves them */
	TimestampTz wanted_since;
	TimestampTz launch_failed_at;	/* no background worker slot was free */
	TimestampTz paused_until;	/* DROP DATABASE and the like */
	uint64		idle_exited;	/* bit i: worker i exited for lack of work */
} FsDbNote;

typedef struct FsIngestShared
{
	LWLock	   *lock;
	Latch	   *launcher_latch;

	/*
	 * Broadcast when a queue may have become empty (a batch committed) and
	 * when a worker leaves: fs_stream_wait and pause_database sleep on it.
	 */
	ConditionVariable progress;
	FsDbNote	notes[FS_MAX_DB_NOTES];
	int			nslots;
	FsWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} FsIngestShared;

static FsIngestShared *ingest = NULL;
static FsWorkerSlot *my_slot = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

static void fs_process_utility(PlannedStmt *pstmt, const char *queryString,
							   bool readOnlyTree, ProcessUtilityContext context,
							   ParamListInfo params, QueryEnvironment *queryEnv,
							   DestReceiver *dest, QueryCompletion *qc);

void
fs_ingest_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("fstore.stream_workers",
							"Stream workers per database.",
							"Each feature view is served by one of them (view_id modulo this number).",
							&fs_stream_workers,
							1, 0, 64,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("fstore.stream_batch_size",
							"Most queued events a worker applies in one transaction.",
							NULL,
							&fs_stream_batch_size,
							10000, 1, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("fstore.stream_idle_timeout",
							"Seconds a stream worker waits without events before it exits.",
							"The launcher starts a worker again when events are committed; 0 keeps workers for ever.",
							&fs_stream_idle_timeout,
							60, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomStringVariable("fstore.database",
							   "The only database stream workers serve; empty: every database with fstore.",
							   NULL,
							   &fs_stream_database,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "fstore");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "fs_stream_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "fstore stream launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "fstore stream launcher");
	RegisterBackgroundWorker(&worker);

	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = fs_process_utility;
}

Size
fs_ingest_shmem_size(void)
{
	return add_size(offsetof(FsIngestShared, slots),
					mul_size(max_worker_processes, sizeof(FsWorkerSlot)));
}

void
fs_ingest_shmem_startup(void)
{
	bool		found;

	ingest = ShmemInitStruct("fstore ingest", fs_ingest_shmem_size(), &found);
	if (!found)
	{
		memset(ingest, 0, fs_ingest_shmem_size());
		ingest->lock = &(GetNamedLWLockTranche("fstore_ingest"))->lock;
		ingest->nslots = max_worker_processes;
		ConditionVariableInit(&ingest->progress);
	}
}

ConditionVariable *
fs_stream_progress_cv(void)
{
	return ingest ? &ingest->progress : NULL;
}

void
fs_stream_progress(void)
{
	if (ingest != NULL)
		ConditionVariableBroadcast(&ingest->progress);
}

/* The note of a database, created if asked; caller holds the lock (excl). */
static FsDbNote *
db_note(Oid dbid, bool create)
{
	FsDbNote   *free_note = NULL;
	int			i;

	for (i = 0; i < FS_MAX_DB_NOTES; i++)
	{
		if (ingest->notes[i].dbid == dbid)
			return &ingest->notes[i];
		if (free_note == NULL && ingest->notes[i].dbid == InvalidOid)
			free_note = &ingest->notes[i];
	}
	if (!create)
		return NULL;
	if (free_note == NULL)
		free_note = &ingest->notes[dbid % FS_MAX_DB_NOTES];	/* forget one */
	memset(free_note, 0, sizeof(FsDbNote));
	free_note->dbid = dbid;
	return free_note;
}

static bool
db_paused(Oid dbid)
{
	FsDbNote   *note;
	bool		paused;

	LWLockAcquire(ingest->lock, LW_SHARED);
	note = db_note(dbid, false);
	paused = note && note->paused_until > GetCurrentTimestamp();
	LWLockRelease(ingest->lock);
	return paused;
}

void
fs_stream_wake(int64 view_id)
{
	bool		found = false;
	int			idx;
	int			i;

	if (ingest == NULL || fs_stream_workers == 0)
		return;
	idx = (int) (view_id % fs_stream_workers);
	LWLockAcquire(ingest->lock, LW_SHARED);
	for (i = 0; i < ingest->nslots; i++)
	{
		FsWorkerSlot *s = &ingest->slots[i];

		if (s->pid != 0 && s->dbid == MyDatabaseId && s->idx == idx)
		{
			SetLatch(s->latch);
			found = true;
		}
	}
	LWLockRelease(ingest->lock);
	if (found)
		return;

	/*
	 * The worker that serves this view is not running (it may have left for
	 * lack of work while the database's other workers stayed): ask the
	 * launcher for it.
	 */
	LWLockAcquire(ingest->lock, LW_EXCLUSIVE);
	{
		FsDbNote   *note = db_note(MyDatabaseId, true);

		if (!note->wanted)
			note->wanted_since = GetCurrentTimestamp();
		note->wanted = true;
		note->no_extension_at = 0;
	}
	if (ingest->launcher_latch)
		SetLatch(ingest->launcher_latch);
	LWLockRelease(ingest->lock);
}

/* ---- the per-database worker ---- */

static void
slot_release(int code, Datum arg)
{
	if (my_slot == NULL)
		return;
	LWLockAcquire(ingest->lock, LW_EXCLUSIVE);
	my_slot->pid = 0;
	my_slot->latch = NULL;
	LWLockRelease(ingest->lock);
	my_slot = NULL;
	fs_stream_progress();		/* pause_database may wait for this */
}

/* Takes a slot for (database, index); false if another worker has it. */
static bool
slot_claim(Oid dbid, int idx)
{
	FsWorkerSlot *free_slot = NULL;
	int			i;

	LWLockAcquire(ingest->lock, LW_EXCLUSIVE);
	for (i = 0; i < ingest->nslots; i++)
	{
		FsWorkerSlot *s = &ingest->slots[i];

		if (s->pid != 0 && s->dbid == dbid && s->idx == idx)
		{
			LWLockRelease(ingest->lock);
			return false;
		}
		if (s->pid == 0 && free_slot == NULL)
			free_slot = s;
	}
	if (free_slot == NULL)
	{
		LWLockRelease(ingest->lock);
		return false;
	}
	free_slot->dbid = dbid;
	free_slot->idx = idx;
	free_slot->pid = MyProcPid;
	free_slot->latch = MyLatch;
	my_slot = free_slot;
	{
		FsDbNote   *note = db_note(dbid, false);

		if (note)
		{
			note->wanted = false;
			note->launch_failed_at = 0;
		}
	}
	LWLockRelease(ingest->lock);
	before_shmem_exit(slot_release, (Datum) 0);
	return true;
}

/*
 * Names of the feature views this worker serves (in TopMemoryContext);
 * false when fstore is not installed in this database.
 */
static bool
my_views(int idx, int nworkers, List **names)
{
	uint64		i;

	*names = NIL;
	if (!OidIsValid(get_extension_oid("fstore", true)))
		return false;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* feature views, and aggregation views where the catalog has them */
	if (SPI_execute(fs_agg_worker_views_sql(), true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list feature views");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		view_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
														  SPI_tuptable->tupdesc, 1, &isnull));

		if (view_id % nworkers == idx)
		{
			char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			*names = lappend(*names, pstrdup(name));
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	return true;
}

/*
 * Views whose last batch failed with an error that is not the events'
 * doing (see queue.c): they are retried after a delay that doubles up to a
 * minute, while the worker goes on serving the others.  A dynahash keyed
 * by the view's name, in TopMemoryContext, of at most MAX_FAILED_VIEWS
 * entries (when full, one entry is forgotten: it only loses its delay).
 */
typedef struct FailedView
{
	char		name[NAMEDATALEN];	/* hash key */
	TimestampTz retry_at;
	int			delay_ms;
} FailedView;

#define MAX_FAILED_VIEWS 64
static HTAB *failed = NULL;

static FailedView *
failed_view(const char *name)
{
	char		key[NAMEDATALEN];

	if (failed == NULL || hash_get_num_entries(failed) == 0)
		return NULL;
	strlcpy(key, name, NAMEDATALEN);
	return hash_search(failed, key, HASH_FIND, NULL);
}

static void
note_failure(const char *name)
{
	char		key[NAMEDATALEN];
	FailedView *f;
	bool		found;

	if (failed == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(FailedView);
		failed = hash_create("fstore failed views", MAX_FAILED_VIEWS, &ctl,
							 HASH_ELEM | HASH_STRINGS);
	}
	strlcpy(key, name, NAMEDATALEN);
	if (hash_search(failed, key, HASH_FIND, NULL) == NULL &&
		hash_get_num_entries(failed) >= MAX_FAILED_VIEWS)
	{
		HASH_SEQ_STATUS seq;
		FailedView *victim;

		hash_seq_init(&seq, failed);
		victim = hash_seq_search(&seq);
		hash_seq_term(&seq);
		hash_search(failed, victim->name, HASH_REMOVE, NULL);
	}
	f = hash_search(failed, key, HASH_ENTER, &found);
	if (!found)
		f->delay_ms = 0;
	f->delay_ms = f->delay_ms == 0 ? 1000 : Min(f->delay_ms * 2, 60000);
	f->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), f->delay_ms);
}

static void
note_success(const char *name)
{
	FailedView *f = failed_view(name);

	if (f != NULL)
		hash_search(failed, f->name, HASH_REMOVE, NULL);
}

/*
 * Runs fn(arg) in a transaction of its own, with a snapshot (now() and
 * statement_timestamp() are this moment).  An error is logged and rolled
 * back; returns whether fn committed.
 */
static bool
in_transaction(void (*fn) (void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		fn(arg);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

typedef struct DrainArg
{
	const char *name;
	FsStreamBatch b;
} DrainArg;

static void
drain_batch(void *arg)
{
	DrainArg   *d = (DrainArg *) arg;
	FsView	   *view = fs_catalog_find_view(d->name);

	if (view != NULL && OidIsValid(view->stream_relid))
	{
		pgstat_report_activity(STATE_RUNNING, d->name);
		fs_stream_apply_batch(view, fs_stream_batch_size, &d->b);
	}
	else if (view == NULL && fs_agg_is_view(d->name))
		fs_agg_stream_batch(d->name, fs_stream_batch_size, &d->b);	/* into tiles */
}

/*
 * One batch of one view, in a transaction of its own; returns the number
 * of events taken.  An error is logged and rolled back (the events stay
 * queued) and the view is retried later.
 */
static int64
drain_view(const char *name)
{
	DrainArg	d = {0};

	d.name = name;
	if (in_transaction(drain_batch, &d))
	{
		if (d.b.events > 0)
			fs_stream_progress();	/* the queue may be empty now */
		note_success(name);
	}
	else
	{
		note_failure(name);
		ereport(LOG,
				(errmsg("fstore stream worker: the events of feature view \"%s\" stay queued; retrying in %d ms",
						name, failed_view(name)->delay_ms)));
		d.b.events = 0;
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	return d.b.events;
}

/*
 * One pass over the views this worker serves, a transaction per view.
 * Returns true if some batch was full (more events are likely waiting).
 * An error in one view's batch is logged and rolled back (its events stay
 * queued); the other views are served all the same.
 */
static bool
drain_once(int idx, int64 *events)
{
	List	   *names = NIL;
	ListCell   *lc;
	bool		more = false;
	int			nworkers = Max(fs_stream_workers, 1);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (!my_views(idx, nworkers, &names))
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
		LWLockAcquire(ingest->lock, LW_EXCLUSIVE);
		{
			FsDbNote   *note = db_note(MyDatabaseId, true);

			note->no_extension_at = GetCurrentTimestamp();
			note->wanted = false;
			/* not again until a producer there asks (it must have fstore) */
			note->idle_exited |= UINT64CONST(1) << idx;
		}
		LWLockRelease(ingest->lock);
		ereport(DEBUG1, (errmsg("fstore stream worker exiting because fstore is not installed in this database")));
		proc_exit(0);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();

	foreach(lc, names)
	{
		char	   *name = lfirst(lc);
		FailedView *f = failed_view(name);
		int64		n;

		CHECK_FOR_INTERRUPTS();
		if (f != NULL)
			*events += 1;		/* a view waiting for a retry is work to do */
		if (f != NULL && GetCurrentTimestamp() < f->retry_at)
			continue;			/* failed a moment ago: later */
		n = drain_view(name);
		*events += n;
		if (n >= fs_stream_batch_size)
			more = true;
	}
	list_free_deep(names);		/* names and cells live in TopMemoryContext */
	return more;
}

static void
flush_batch(void *arg)
{
	fs_freshness_flush();
}

/*
 * Writes to fstore.view_state and fstore.aggregation_state what writers of
 * this database committed without writing it there (stats/freshness.c):
 * the first worker of a database does, when it has nothing else to do.
 */
static void
flush_freshness(void)
{
	/* on error the state stays in shared memory; the next pass tries again */
	if (fs_freshness_flush_wanted())
		(void) in_transaction(flush_batch, NULL);
}

/*
 * Leaves after fstore.stream_idle_timeout without events, giving the
 * background worker slot back: a database without traffic holds none.
 * The worker slot is released first, so a producer that commits from now
 * on finds no worker and asks the launcher for one; events committed just
 * before, whose wake-up reached this worker as it was leaving, are found
 * by a last look at the queues, which asks the launcher itself.
 */
static void
idle_exit(Oid dbid, int idx)
{
	List	   *names = NIL;
	ListCell   *lc;
	bool		waiting = false;

	LWLockAcquire(ingest->lock, LW_EXCLUSIVE);
	db_note(dbid, true)->idle_exited |= UINT64CONST(1) << idx;
	LWLockRelease(ingest->lock);
	slot_release(0, (Datum) 0);

	if (idx == 0)
		flush_freshness();
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (my_views(idx, Max(fs_stream_workers, 1), &names))
		foreach(lc, names)
		{
			int64		depth = 0;

			if (fs_stream_queue_state((char *) lfirst(lc), true, &depth, NULL) &&
				depth > 0)
				waiting = true;
		}
	PopActiveSnapshot();
	CommitTransactionCommand();

	if (waiting)
	{
		LWLockAcquire(ingest->lock, LW_EXCLUSIVE);
		{
			FsDbNote   *note = db_note(dbid, true);

			if (!note->wanted)
				note->wanted_since = GetCurrentTimestamp();
			note->wanted = true;
		}
		if (ingest->launcher_latch)
			SetLatch(ingest->launcher_latch);
		LWLockRelease(ingest->lock);
	}
	ereport(DEBUG1, (errmsg("fstore stream worker %d exits after %d s without events",
							idx, fs_stream_idle_timeout)));
	proc_exit(0);
}

void
fs_stream_worker_main(Datum main_arg)
{
	int			idx = DatumGetInt32(main_arg);
	Oid			dbid;
	char	   *dbname;
	TimestampTz last_work;

	memcpy(&dbid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	pgstat_report_appname("fstore stream worker");

	/*
	 * The worker connects as the bootstrap superuser, with the settings of
	 * ALTER DATABASE / ALTER ROLE ... SET applied: none of them may decide
	 * how fstore's statements resolve names.  (Each view's batch runs as the
	 * view's owner with search_path pinned again: see fs_become_owner.)
	 */
	fs_pin_session_search_path();

	if (!slot_claim(dbid, idx))
		proc_exit(0);

	/* our database's name, to follow changes of fstore.database */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	{
		char	   *name = get_database_name(dbid);
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		dbname = pstrdup(name ? name : "");
		MemoryContextSwitchTo(old);
	}
	CommitTransactionCommand();

	last_work = GetCurrentTimestamp();
	for (;;)
	{
		bool		more;
		int64		events = 0;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (idx >= fs_stream_workers || db_paused(dbid))
			proc_exit(0);
		if (fs_stream_database && fs_stream_database[0] != '\0' &&
			strcmp(dbname, fs_stream_database) != 0)
			proc_exit(0);		/* fstore.database now names another database */

		more = drain_once(idx, &events);
		if (events > 0)
			last_work = GetCurrentTimestamp();
		if (more)
			continue;
		if (idx == 0)
			flush_freshness();
		if (fs_stream_idle_timeout > 0 &&
			TimestampDifferenceExceeds(last_work, GetCurrentTimestamp(),
									   fs_stream_idle_timeout * 1000))
			idle_exit(dbid, idx);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 NAPTIME_MS, PG_WAIT_EXTENSION);
	}
}

/* ---- the launcher ---- */

typedef struct LaunchedWorker
{
	Oid			dbid;
	int			idx;
	BackgroundWorkerHandle *handle;
	TimestampTz started;
} LaunchedWorker;

static List *launched = NIL;	/* of LaunchedWorker, in TopMemoryContext */

static LaunchedWorker *
launched_find(Oid dbid, int idx)
{
	ListCell   *lc;

	foreach(lc, launched)
	{
		LaunchedWorker *w = lfirst(lc);

		if (w->dbid == dbid && w->idx == idx)
			return w;
	}
	return NULL;
}

static bool
launched_alive(LaunchedWorker *w)
{
	pid_t		pid;
	BgwHandleStatus st;

	if (w == NULL || w->handle == NULL)
		return false;
	st = GetBackgroundWorkerPid(w->handle, &pid);
	return st == BGWH_STARTED || st == BGWH_NOT_YET_STARTED;
}

/* Databases that accept connections and are not templates. */
static List *
database_list(void)
{
	List	   *dbs = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext caller = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		MemoryContext old;

		if (!db->datallowconn || db->datistemplate)
			continue;
		if (fs_stream_database && fs_stream_database[0] != '\0' &&
			strcmp(NameStr(db->datname), fs_stream_database) != 0)
			continue;
		old = MemoryContextSwitchTo(caller);
		dbs = lappend_oid(dbs, db->oid);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dbs;
}

/* Starts a worker; false if it must wait (started less than a second ago). */
static bool
launch_worker(Oid dbid, int idx)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	LaunchedWorker *w = launched_find(dbid, idx);
	TimestampTz now = GetCurrentTimestamp();
	static bool warned = false;

	if (w && TimestampDifferenceExceeds(w->started, now, 1000) == false)
		return false;			/* at most once a second per slot */

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "fstore");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "fs_stream_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "fstore stream worker %d for database %u", idx, dbid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "fstore stream worker");
	worker.bgw_main_arg = Int32GetDatum(idx);
	memcpy(worker.bgw_extra, &dbid, sizeof(Oid));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		if (!warned)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start an fstore stream worker"),
					 errdetail("Every background worker slot is taken; the events of database %u wait.", dbid),
					 errhint("Raise max_worker_processes, or lower fstore.stream_idle_timeout so that idle workers leave sooner.")));
		warned = true;
		/* fstore.freshness shows it, and the launcher tries again */
		LWLockAcquire(ingest->lock, LW_EXCLUSIVE);
		{
			FsDbNote   *note = db_note(dbid, true);

			if (!note->wanted)
				note->wanted_since = now;
			note->wanted = true;
			note->launch_failed_at = now;
		}
		LWLockRelease(ingest->lock);
		return false;
	}
	warned = false;
	if (w == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		w = palloc0(sizeof(LaunchedWorker));
		w->dbid = dbid;
		w->idx = idx;
		launched = lappend(launched, w);
		MemoryContextSwitchTo(old);
	}
	else if (w->handle)
		pfree(w->handle);
	w->handle = handle;
	w->started = now;
	return true;
}

/* One round of starting workers; true if some start had to wait. */
static bool
launcher_pass(void)
{
	List	   *dbs = database_list();
	bool		deferred = false;
	ListCell   *lc;
	TimestampTz now = GetCurrentTimestamp();

	/* forget workers of databases that are gone, once they have stopped */
	foreach(lc, launched)
	{
		LaunchedWorker *w = lfirst(lc);

		if (!list_member_oid(dbs, w->dbid) && !launched_alive(w))
		{
			if (w->handle)
				pfree(w->handle);
			launched = foreach_delete_current(launched, lc);
			pfree(w);
		}
	}

	foreach(lc, dbs)
	{
		Oid			dbid = lfirst_oid(lc);
		FsDbNote	note;
		FsDbNote   *n;
		int			idx;

		LWLockAcquire(ingest->lock, LW_SHARED);
		n = db_note(dbid, false);
		if (n)
			note = *n;
		else
			memset(&note, 0, sizeof(note));
		LWLockRelease(ingest->lock);

		if (note.paused_until > now)
			continue;
		if (note.no_extension_at != 0 && !note.wanted &&
			!TimestampDifferenceExceeds(note.no_extension_at, now,
										NO_EXTENSION_RECHECK_SECS * 1000))
			continue;
		for (idx = 0; idx < fs_stream_workers; idx++)
		{
			LaunchedWorker *w = launched_find(dbid, idx);

			/*
			 * On demand: every database once when the launcher starts
			 * (events may wait from before a restart), then when producers
			 * ask (wanted), or again if a worker stopped without having run
			 * out of work (it failed).
			 */
			if (launched_alive(w))
				continue;
			if (w != NULL && !note.wanted &&
				(note.idle_exited & (UINT64CONST(1) << idx)) != 0)
				continue;
			if (!launch_worker(dbid, idx))
				deferred = true;
		}
		if (note.wanted || note.idle_exited != 0)
		{
			LWLockAcquire(ingest->lock, LW_EXCLUSIVE);
			n = db_note(dbid, false);
			if (n && n->wanted)
				n->idle_exited = 0;
			LWLockRelease(ingest->lock);
		}
	}
	list_free(dbs);
	return deferred;
}

void
fs_stream_launcher_main(Datum main_arg)
{
	bool		deferred = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("fstore stream launcher");

	LWLockAcquire(ingest->lock, LW_EXCLUSIVE);
	ingest->launcher_latch = MyLatch;
	LWLockRelease(ingest->lock);

	for (;;)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (fs_stream_workers > 0)
			deferred = launcher_pass();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 deferred ? 100L : LAUNCHER_NAP_MS, PG_WAIT_EXTENSION);
	}
}

/* ---- statements that need a database without other sessions ---- */

/* Whether a database is marked as a template (anyone with CREATEDB may copy it). */
static bool
database_is_template(Oid dbid)
{
	HeapTuple	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dbid));
	bool		result = false;

	if (HeapTupleIsValid(tup))
	{
		result = ((Form_pg_database) GETSTRUCT(tup))->datistemplate;
		ReleaseSysCache(tup);
	}
	return result;
}

/* The database a utility statement needs to itself, if any. */
static Oid
exclusive_database(Node *parsetree)
{
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			return get_database_oid(((DropdbStmt *) parsetree)->dbname, true);
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				return get_database_oid(((RenameStmt *) parsetree)->subname, true);
			return InvalidOid;
		case T_AlterDatabaseStmt:
			foreach(lc, ((AlterDatabaseStmt *) parsetree)->options)
				if (strcmp(((DefElem *) lfirst(lc))->defname, "tablespace") == 0)
					return get_database_oid(((AlterDatabaseStmt *) parsetree)->dbname, true);
			return InvalidOid;
		case T_CreatedbStmt:
			foreach(lc, ((CreatedbStmt *) parsetree)->options)
			{
				DefElem    *d = lfirst(lc);

				if (strcmp(d->defname, "template") == 0 && d->arg != NULL)
					return get_database_oid(defGetString(d), true);
			}
			return InvalidOid;
		default:
			return InvalidOid;
	}
}

/*
 * Whether the current user may run the statement that needs dbid to itself,
 * as far as privileges and the transaction state tell: the same checks
 * PostgreSQL makes first.  Workers are paused only for statements that
 * pass them, so a role that may not drop a database cannot disturb its
 * workers by trying again and again.
 */
static bool
may_run_exclusive(Node *parsetree, Oid dbid)
{
	Oid			user = GetUserId();
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			return !IsTransactionBlock() && pg_database_ownercheck(dbid, user);
		case T_RenameStmt:
			return pg_database_ownercheck(dbid, user) && have_createdb_privilege();
		case T_AlterDatabaseStmt:
			return !IsTransactionBlock() && pg_database_ownercheck(dbid, user);
		case T_CreatedbStmt:
			if (IsTransactionBlock() || !have_createdb_privilege())
				return false;
			/* a template that is not marked as one: its owner only */
			foreach(lc, ((CreatedbStmt *) parsetree)->options)
			{
				DefElem    *d = lfirst(lc);

				if (strcmp(d->defname, "template") == 0 &&
					!database_is_template(dbid) &&
					!pg_database_ownercheck(dbid, user))
					return false;
			}
			return true;
		default:
			return false;
	}
}

/* Stops the workers of a database and keeps them stopped for a while. */
static void
pause_database(Oid dbid, TimestampTz until)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   PAUSE_WAIT_SECS * 1000);

	/* a worker that leaves broadcasts (slot_release) */
	ConditionVariablePrepareToSleep(&ingest->progress);
	for (;;)
	{
		bool		any = false;
		int			i;

		LWLockAcquire(ingest->lock, LW_EXCLUSIVE);
		db_note(dbid, true)->paused_until = until;
		for (i = 0; i < ingest->nslots; i++)
		{
			FsWorkerSlot *s = &ingest->slots[i];

			if (s->pid != 0 && s->dbid == dbid)
			{
				SetLatch(s->latch);
				any = true;
			}
		}
		LWLockRelease(ingest->lock);
		if (!any || until <= GetCurrentTimestamp() || GetCurrentTimestamp() > deadline)
			break;
		(void) ConditionVariableTimedSleep(&ingest->progress, PROGRESS_RECHECK_MS,
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

static void
fs_process_utility(PlannedStmt *pstmt, const char *queryString,
				   bool readOnlyTree, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	volatile Oid dbid = InvalidOid;

	if (ingest != NULL)
		dbid = exclusive_database(pstmt->utilityStmt);
	if (OidIsValid(dbid) && !may_run_exclusive(pstmt->utilityStmt, dbid))
		dbid = InvalidOid;		/* it will fail: leave the workers alone */
	if (OidIsValid(dbid))
		pause_database(dbid, TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 60 * 1000));

	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		if (OidIsValid(dbid))
		{
			/* resume: the launcher starts the workers again if needed */
			LWLockAcquire(ingest->lock, LW_EXCLUSIVE);
			db_note(dbid, true)->paused_until = 0;
			if (ingest->launcher_latch)
				SetLatch(ingest->launcher_latch);
			LWLockRelease(ingest->lock);
		}
	}
	PG_END_TRY();
}

/*
 * fstore._stream_state() -> (preloaded, workers, wanted_since,
 * launch_failed_at): the stream workers of this database, for
 * fstore.freshness: how many run now, since when events wait for one
 * (a producer committed and found none), and when the launcher last
 * failed to start one for lack of a background worker slot.
 */
PG_FUNCTION_INFO_V1(fs_stream_state);
Datum
fs_stream_state(PG_FUNCTION_ARGS)
{
	TupleDesc	td;
	Datum		values[4];
	bool		nulls[4] = {false, false, true, true};
	int			workers = 0;
	int			i;

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = BoolGetDatum(ingest != NULL);
	if (ingest != NULL)
	{
		FsDbNote   *note;

		LWLockAcquire(ingest->lock, LW_SHARED);
		for (i = 0; i < ingest->nslots; i++)
			if (ingest->slots[i].pid != 0 && ingest->slots[i].dbid == MyDatabaseId)
				workers++;
		note = db_note(MyDatabaseId, false);
		if (note && note->wanted)
		{
			values[2] = TimestampTzGetDatum(note->wanted_since);
			nulls[2] = false;
			if (note->launch_failed_at != 0)
			{
				values[3] = TimestampTzGetDatum(note->launch_failed_at);
				nulls[3] = false;
			}
		}
		LWLockRelease(ingest->lock);
	}
	values[1] = Int32GetDatum(workers);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), values, nulls)));
}
