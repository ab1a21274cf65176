/*
 * progress.c
 *		fstore.progress: what every running fs_materialize, training-set
 *		build and stream batch is doing.
 *
 * PostgreSQL's command progress reporting (pg_stat_progress_*) is reserved
 * for its own commands, so fstore keeps its own: a shared array with one
 * slot per backend (MaxBackends of them, indexed by the backend id), which
 * only its backend writes.  A writer brackets its stores with two
 * increments of the slot's change counter (odd while it writes); a reader
 * copies the slot and retries while the counter was odd or moved, so it
 * never sees a half-written slot and never blocks the writer.  Reports are
 * cleared when the work ends, and by an aborting transaction.
 *
 * Without shared_preload_libraries there is no array: nothing is reported
 * and fstore.progress is empty (docs/operations.md says so).
 */
#include "postgres.h"

#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/backendid.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "stats/progress.h"
#include "util/util.h"

PG_FUNCTION_INFO_V1(fs_progress);
PG_FUNCTION_INFO_V1(fs_progress_sql_begin);
PG_FUNCTION_INFO_V1(fs_progress_sql_end);

#define PHASE_LEN 32

typedef struct FsProgressSlot
{
	volatile uint32 changecount;
	int			pid;
	Oid			dbid;
	int			kind;			/* FsProgressKind; NONE: slot unused */
	int64		view_id;
	char		view[NAMEDATALEN];
	char		phase[PHASE_LEN];
	int64		rows_done;
	int64		rows_total;		/* -1: unknown */
	TimestampTz started_at;
} FsProgressSlot;

static FsProgressSlot *slots = NULL;
static int	nslots = 0;
static int	depth = 0;			/* nested begins in this backend */
static int	begin_nestlevel = 0;	/* transaction nest level of the outer begin */
static bool callback_registered = false;

Size
fs_progress_shmem_size(void)
{
	return mul_size(MaxBackends, sizeof(FsProgressSlot));
}

void
fs_progress_shmem_startup(void)
{
	bool		found;

	nslots = MaxBackends;
	slots = ShmemInitStruct("fstore progress", fs_progress_shmem_size(), &found);
	if (!found)
		memset(slots, 0, fs_progress_shmem_size());
}

/* This backend's slot, or NULL (not preloaded, or no backend id). */
static FsProgressSlot *
my_slot(void)
{
	if (!fs_preloaded() || slots == NULL || MyBackendId == InvalidBackendId ||
		MyBackendId < 1 || MyBackendId > nslots)
		return NULL;
	return &slots[MyBackendId - 1];
}

static inline void
write_begin(FsProgressSlot *s)
{
	s->changecount++;
	pg_write_barrier();
}

static inline void
write_end(FsProgressSlot *s)
{
	pg_write_barrier();
	s->changecount++;
}

static void
clear_slot(void)
{
	FsProgressSlot *s = my_slot();

	depth = 0;
	if (s == NULL || s->kind == FS_PROGRESS_NONE)
		return;
	write_begin(s);
	s->kind = FS_PROGRESS_NONE;
	write_end(s);
}

static void
progress_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		clear_slot();
}

/* work begun in a subtransaction that aborts is over (an error caught) */
static void
progress_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && depth > 0 &&
		GetCurrentTransactionNestLevel() <= begin_nestlevel)
		clear_slot();
}

void
fs_progress_begin(FsProgressKind kind, int64 view_id, const char *view,
				  const char *phase)
{
	FsProgressSlot *s = my_slot();

	if (s == NULL)
		return;
	if (depth++ > 0)
		return;					/* part of the outer work */
	if (!callback_registered)
	{
		RegisterXactCallback(progress_xact_callback, NULL);
		RegisterSubXactCallback(progress_subxact_callback, NULL);
		callback_registered = true;
	}
	begin_nestlevel = GetCurrentTransactionNestLevel();
	write_begin(s);
	s->pid = MyProcPid;
	s->dbid = MyDatabaseId;
	s->kind = kind;
	s->view_id = view_id;
	strlcpy(s->view, view ? view : "", NAMEDATALEN);
	strlcpy(s->phase, phase ? phase : "", PHASE_LEN);
	s->rows_done = 0;
	s->rows_total = -1;
	s->started_at = GetCurrentTimestamp();
	write_end(s);
}

void
fs_progress_phase(const char *phase)
{
	FsProgressSlot *s = my_slot();

	if (s == NULL || depth == 0)
		return;
	write_begin(s);
	strlcpy(s->phase, phase, PHASE_LEN);
	write_end(s);
}

void
fs_progress_rows(int64 done, int64 total)
{
	FsProgressSlot *s = my_slot();

	if (s == NULL || depth == 0)
		return;
	write_begin(s);
	s->rows_done = done;
	if (total != -2)
		s->rows_total = total;
	write_end(s);
}

void
fs_progress_end(void)
{
	if (depth == 0 || --depth > 0)
		return;
	clear_slot();
}

static const char *
kind_name(int kind)
{
	switch (kind)
	{
		case FS_PROGRESS_MATERIALIZE:
			return "materialize";
		case FS_PROGRESS_TRAINING_SET:
			return "training set";
		case FS_PROGRESS_STREAM_BATCH:
			return "stream batch";
	}
	return "unknown";
}

/*
 * fstore._progress() -> (pid, kind, view_id, view_name, phase, rows_done,
 * rows_total, started_at): the reports of this database's backends.
 */
Datum
fs_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (!fs_preloaded() || slots == NULL)
		return (Datum) 0;

	for (i = 0; i < nslots; i++)
	{
		FsProgressSlot copy;
		Datum		values[8];
		bool		nulls[8] = {false};
		int			tries;

		for (tries = 0; tries < 1000; tries++)
		{
			uint32		before = slots[i].changecount;

			pg_read_barrier();
			memcpy(&copy, &slots[i], sizeof(FsProgressSlot));
			pg_read_barrier();
			if ((before & 1) == 0 && before == slots[i].changecount)
				break;
			CHECK_FOR_INTERRUPTS();
		}
		if (tries == 1000 || copy.kind == FS_PROGRESS_NONE || copy.dbid != MyDatabaseId)
			continue;
		copy.view[NAMEDATALEN - 1] = '\0';
		copy.phase[PHASE_LEN - 1] = '\0';

		values[0] = Int32GetDatum(copy.pid);
		values[1] = CStringGetTextDatum(kind_name(copy.kind));
		values[2] = Int64GetDatum(copy.view_id);
		values[3] = CStringGetTextDatum(copy.view);
		values[4] = CStringGetTextDatum(copy.phase);
		values[5] = Int64GetDatum(copy.rows_done);
		values[6] = Int64GetDatum(copy.rows_total);
		nulls[6] = copy.rows_total < 0;
		values[7] = TimestampTzGetDatum(copy.started_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * fstore._progress_begin(kind text, name text, phase text): for work done
 * in SQL (training-set builds); kind is 'training set'.
 */
Datum
fs_progress_sql_begin(PG_FUNCTION_ARGS)
{
	char	   *kind;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("kind, name and phase of a progress report must not be NULL")));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (strcmp(kind, "training set") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown kind of progress report \"%s\"", kind)));
	fs_progress_begin(FS_PROGRESS_TRAINING_SET, 0,
					  text_to_cstring(PG_GETARG_TEXT_PP(1)),
					  text_to_cstring(PG_GETARG_TEXT_PP(2)));
	if (!PG_ARGISNULL(3))
		fs_progress_rows(0, PG_GETARG_INT64(3));
	PG_RETURN_VOID();
}

/* fstore._progress_end(): the work begun by _progress_begin is over */
Datum
fs_progress_sql_end(PG_FUNCTION_ARGS)
{
	fs_progress_end();
	PG_RETURN_VOID();
}
