/*
 * output.c
 *		A faster encoder of the result rows of fs_get_many and
 *		fs_get_many_packed queries sent to the client in binary format.
 *
 * Once the lookup itself costs little, most of the time of a typed
 * fs_get_many query goes to the server's generic row encoder (printtup):
 * for every value of every row it calls the type's send function through
 * fmgr, which allocates a 1 kB buffer, writes the value and returns a copy;
 * a row of 34 columns costs 34 such calls.  A packed answer is copied
 * twice and its message buffer regrown from 1 kB every query.
 *
 * When the statement is a call of one of our read functions, its result
 * goes to a client in the extended or simple protocol and every column is
 * requested in binary, an ExecutorRun hook puts this encoder in front of
 * the server's one: it writes the same DataRow messages, byte for byte,
 * writing the common fixed-size types (bool, int2, int4, int8, float4,
 * float8, date, timestamp, timestamptz, oid) and bytea directly, calling
 * the send function for any other type, into a message buffer that the
 * backend keeps across queries.  The server's receiver still sends the
 * RowDescription and is used unchanged for text columns.
 * fstore.fast_output = off turns it off (the tests compare both).
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/printtup.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "libpq/libpq.h"
#include "libpq/pqformat.h"
#include "nodes/plannodes.h"
#include "port/pg_bswap.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "utils/portal.h"

#include "online/online.h"


extern Datum fs_get_many(PG_FUNCTION_ARGS);
extern Datum fs_get_many_packed(PG_FUNCTION_ARGS);

bool		fs_fast_output = true;

static ExecutorRun_hook_type prev_ExecutorRun = NULL;

/* how one column is written */
typedef enum
{
	ENC_SEND,					/* through its send function */
	ENC_BOOL,
	ENC_INT2,
	ENC_INT4,					/* int4, float4, date, oid: 4 bytes */
	ENC_INT8,					/* int8, float8, timestamp(tz): 8 bytes */
	ENC_BYTEA
} ColEncoding;

typedef struct FastDest
{
	DestReceiver pub;
	DestReceiver *inner;		/* the server's receiver */
	bool		delegate;		/* some column is text: inner does it all */
	int			natts;
	uint8	   *enc;
	FmgrInfo   *send;			/* for ENC_SEND columns */
	MemoryContext rowcxt;		/* reset after a row with ENC_SEND columns */
} FastDest;

/* the DataRow buffer, kept across queries up to this size */
#define KEEP_BUF_BYTES (8 * 1024 * 1024)
static StringInfoData rowbuf;

/*
 * The server's send buffer flushes every 8 kB: a packed answer of 1,000
 * keys (145 kB) would go out in 18 writes to the socket, each one waking
 * the client.  Up to SEND_AHEAD_BYTES of a packed answer (one row of one
 * bytea) are instead queued in that buffer, which grows to hold them (and
 * stays that large), and leave in one write when the server flushes at
 * the end of the query; the rest of a larger answer goes out the usual
 * way.  Typed rows keep the usual 8 kB writes: the client decodes the
 * first rows while the server encodes the next ones, which on a machine
 * of two cores answered 1,000 keys sooner than one write at the end.
 */
#define SEND_AHEAD_BYTES (1024 * 1024)
static Size send_ahead;			/* bytes queued so far by this query */

/* Returns the C function that funcid calls, or NULL when it is not ours. */
static PGFunction
our_function(Oid funcid)
{
	static Oid	known_oid[2];
	static PGFunction known_fn[2];
	FmgrInfo	fi;
	int			i;

	for (i = 0; i < 2; i++)
		if (known_oid[i] == funcid && OidIsValid(funcid))
			return known_fn[i];
	fmgr_info(funcid, &fi);
	if (fi.fn_addr != fs_get_many && fi.fn_addr != fs_get_many_packed)
		return NULL;
	i = fi.fn_addr == fs_get_many ? 0 : 1;
	known_oid[i] = funcid;
	known_fn[i] = fi.fn_addr;
	return fi.fn_addr;
}

/* true when the plan is "SELECT * FROM fs_get_many(...)" or "SELECT fs_get_many_packed(...)" */
static bool
is_our_read(PlannedStmt *stmt)
{
	Plan	   *plan = stmt->planTree;

	if (plan == NULL || plan->lefttree != NULL || plan->righttree != NULL)
		return false;
	if (IsA(plan, FunctionScan))
	{
		FunctionScan *fs = (FunctionScan *) plan;
		RangeTblFunction *rtf;

		if (list_length(fs->functions) != 1 || fs->funcordinality)
			return false;
		rtf = linitial_node(RangeTblFunction, fs->functions);
		return IsA(rtf->funcexpr, FuncExpr) &&
			our_function(((FuncExpr *) rtf->funcexpr)->funcid) == fs_get_many;
	}
	if (IsA(plan, Result) && ((Result *) plan)->resconstantqual == NULL &&
		plan->qual == NIL && list_length(plan->targetlist) == 1)
	{
		TargetEntry *tle = linitial_node(TargetEntry, plan->targetlist);

		return IsA(tle->expr, FuncExpr) &&
			our_function(((FuncExpr *) tle->expr)->funcid) == fs_get_many_packed;
	}
	return false;
}

/* true when the portal sends every column of its result in binary */
static bool
all_binary(Portal portal)
{
	int			i;

	if (portal == NULL || portal->formats == NULL || portal->tupDesc == NULL)
		return false;
	for (i = 0; i < portal->tupDesc->natts; i++)
		if (portal->formats[i] != 1)
			return false;
	return true;
}

static void
fast_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	FastDest   *fd = (FastDest *) self;
	Portal		portal = ActivePortal;
	int			i;

	/* the server's receiver sends the row description, if any */
	fd->inner->rStartup(fd->inner, operation, typeinfo);

	fd->natts = typeinfo->natts;
	fd->delegate = portal == NULL || portal->formats == NULL ||
		portal->tupDesc == NULL || portal->tupDesc->natts != typeinfo->natts;
	fd->enc = palloc0(sizeof(uint8) * Max(fd->natts, 1));
	fd->send = palloc0(sizeof(FmgrInfo) * Max(fd->natts, 1));
	for (i = 0; i < fd->natts && !fd->delegate; i++)
	{
		Form_pg_attribute att = TupleDescAttr(typeinfo, i);

		if (portal->formats[i] != 1)
		{
			fd->delegate = true;
			break;
		}
		switch (att->atttypid)
		{
			case BOOLOID:
				fd->enc[i] = ENC_BOOL;
				break;
			case INT2OID:
				fd->enc[i] = ENC_INT2;
				break;
			case INT4OID:
			case FLOAT4OID:
			case DATEOID:
			case OIDOID:
				fd->enc[i] = ENC_INT4;
				break;
#ifdef USE_FLOAT8_BYVAL
			case INT8OID:
			case FLOAT8OID:
			case TIMESTAMPOID:
			case TIMESTAMPTZOID:
				fd->enc[i] = ENC_INT8;
				break;
#endif
			case BYTEAOID:
				fd->enc[i] = ENC_BYTEA;
				break;
			default:
				{
					Oid			sendfn;
					bool		isvarlena;

					getTypeBinaryOutputInfo(att->atttypid, &sendfn, &isvarlena);
					fmgr_info(sendfn, &fd->send[i]);
					fd->enc[i] = ENC_SEND;
				}
		}
	}
	if (rowbuf.data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(&rowbuf);
		MemoryContextSwitchTo(old);
	}
	send_ahead = 0;
	fd->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "fstore output row",
									   ALLOCSET_DEFAULT_SIZES);
}

static bool
fast_receive(TupleTableSlot *slot, DestReceiver *self)
{
	FastDest   *fd = (FastDest *) self;
	StringInfo	buf = &rowbuf;
	bool		used_cxt = false;
	int			natts = fd->natts;
	int			i;

	if (fd->delegate)
		return fd->inner->receiveSlot(slot, fd->inner);

	slot_getallattrs(slot);
	pq_beginmessage_reuse(buf, 'D');
	/* room for every fixed-size value at once */
	enlargeStringInfo(buf, 2 + natts * 12);
	pq_writeint16(buf, natts);
	for (i = 0; i < natts; i++)
	{
		Datum		v = slot->tts_values[i];

		if (slot->tts_isnull[i])
		{
			pq_writeint32(buf, (uint32) -1);
			continue;
		}
		switch ((ColEncoding) fd->enc[i])
		{
			case ENC_BOOL:
				pq_writeint32(buf, 1);
				pq_writeint8(buf, DatumGetBool(v) ? 1 : 0);
				break;
			case ENC_INT2:
				pq_writeint32(buf, 2);
				pq_writeint16(buf, (uint16) DatumGetInt16(v));
				break;
			case ENC_INT4:
				/* a float4 Datum holds the float's bits, as float4send sends them */
				pq_writeint32(buf, 4);
				pq_writeint32(buf, DatumGetUInt32(v));
				break;
			case ENC_INT8:
				pq_writeint32(buf, 8);
				pq_writeint64(buf, (uint64) DatumGetInt64(v));
				break;
			case ENC_BYTEA:
			case ENC_SEND:
				{
					MemoryContext old = MemoryContextSwitchTo(fd->rowcxt);
					const char *data;
					uint32		len;

					used_cxt = true;
					if (fd->enc[i] == ENC_BYTEA)
					{
						struct varlena *b = PG_DETOAST_DATUM_PACKED(v);

						data = VARDATA_ANY(b);
						len = VARSIZE_ANY_EXHDR(b);
					}
					else
					{
						bytea	   *b = SendFunctionCall(&fd->send[i], v);

						data = VARDATA(b);
						len = VARSIZE(b) - VARHDRSZ;
					}
					MemoryContextSwitchTo(old);
					pq_sendint32(buf, len);
					pq_sendbytes(buf, data, len);
					/* room again for the fixed-size values still to come */
					enlargeStringInfo(buf, (natts - i) * 12);
				}
				break;
		}
	}
	if (natts == 1 && fd->enc[0] == ENC_BYTEA &&
		send_ahead + buf->len + 5 <= SEND_AHEAD_BYTES)
	{
		/* queued whole, the buffer enlarged as needed (never blocks) */
		pq_putmessage_noblock(buf->cursor, buf->data, buf->len);
		send_ahead += buf->len + 5;
	}
	else
		pq_endmessage_reuse(buf);
	if (used_cxt)
		MemoryContextReset(fd->rowcxt);
	return true;
}

static void
fast_shutdown(DestReceiver *self)
{
	FastDest   *fd = (FastDest *) self;

	fd->inner->rShutdown(fd->inner);
	if (fd->rowcxt)
		MemoryContextDelete(fd->rowcxt);
	fd->rowcxt = NULL;
	if (rowbuf.maxlen > KEEP_BUF_BYTES)
	{
		pfree(rowbuf.data);
		rowbuf.data = NULL;
	}
}

static void
fast_destroy(DestReceiver *self)
{
	pfree(self);
}

static void
fs_executor_run(QueryDesc *qd, ScanDirection direction, uint64 count,
				bool execute_once)
{
	DestReceiver *orig = qd->dest;
	bool		wrap;

	wrap = fs_fast_output && qd->operation == CMD_SELECT &&
		whereToSendOutput == DestRemote && !IsParallelWorker() &&
		(orig->mydest == DestRemote || orig->mydest == DestRemoteExecute) &&
		all_binary(ActivePortal) && is_our_read(qd->plannedstmt);
	if (wrap)
	{
		FastDest   *fd = palloc0(sizeof(FastDest));

		fd->pub.receiveSlot = fast_receive;
		fd->pub.rStartup = fast_startup;
		fd->pub.rShutdown = fast_shutdown;
		fd->pub.rDestroy = fast_destroy;
		fd->pub.mydest = orig->mydest;
		fd->inner = orig;
		qd->dest = &fd->pub;
		elog(DEBUG1, "fstore sends this result with its own row encoder");
	}
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(qd, direction, count, execute_once);
		else
			standard_ExecutorRun(qd, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		if (wrap)
		{
			pfree(qd->dest);
			qd->dest = orig;
		}
	}
	PG_END_TRY();
}

void
fs_output_init(void)
{
	DefineCustomBoolVariable("fstore.fast_output",
							 "Whether results of fs_get_many and fs_get_many_packed sent in binary use fstore's row encoder.",
							 "The rows sent are the same either way.",
							 &fs_fast_output,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = fs_executor_run;
}
