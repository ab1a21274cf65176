/*
 * shard.c
 *		Sharded feature views on the coordinator: keys and rows routed to
 *		the shards by the hash partitioning of the view's tables, every
 *		involved shard asked once per call, all of them at once.
 *
 * A shard is reached with dblink over the connection of this session and
 * role (fstore._shard_conn, the role's user mapping of the shard's foreign
 * server).  A call sends one query to every shard that has keys or rows
 * (dblink_send_query), then collects the answers in shard order
 * (dblink_get_result): the shards work concurrently, and each answers from
 * its own hot cache (fs_get_many) or with its own change detection
 * (fs_write).  A key's shard is the partition PostgreSQL's hash
 * partitioning gives it: the partition key's hash support functions of the
 * coordinator's history table, modulo the number of shards.
 *
 * Values travel as text: the coordinator writes them with ISO dates and
 * exact floats; dblink reads the shard's answers in the shard's styles.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "partitioning/partbounds.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "fstore_packed.h"
#include "shard/shard.h"
#include "stats/stats.h"

typedef struct FsShardSet
{
	FsView	   *view;
	int			nshards;
	char	  **names;			/* by remainder */
	char	  **schemas;		/* fstore's schema on each shard, quoted */
	char	  **conns;			/* dblink connection names */
	char	   *dblink;			/* dblink's schema here, quoted */
	int			partnatts;
	FmgrInfo   *partsupfunc;
	Oid		   *partcollation;
	char	   *coldefs;		/* "k bigint, f real, event_ts timestamptz" */
	char	   *collist;		/* "k, f, event_ts" */
	bool		packed;			/* shards answer reads in the packed layout */
	uint8	   *codes;			/* packed type code of each feature */
} FsShardSet;

/*
 * What a backend learned about its sharded views (the catalog and the
 * partition key), kept for later calls while the view keeps its tables
 * (re-sharding makes new ones) and its row layout; and the shard
 * connections it knows to be open, per role.
 */
#define SHARD_CACHE_SIZE 32
typedef struct ShardCacheEntry
{
	int64		view_id;
	Oid			offline_relid;
	uint32		shape;
	FsShardSet	ss;
} ShardCacheEntry;

static MemoryContext shard_cxt = NULL;
static ShardCacheEntry shard_cache[SHARD_CACHE_SIZE];
static int	shard_cache_n = 0;
static int	shard_cache_next = 0;	/* replaced next when full */

#define MAX_KNOWN_CONNS 64
typedef struct KnownConn
{
	char		shard[NAMEDATALEN];
	Oid			userid;
} KnownConn;
static KnownConn known_conns[MAX_KNOWN_CONNS];
static int	n_known_conns = 0;

static int
known_conn(const char *shard, Oid userid)
{
	int			i;

	for (i = 0; i < n_known_conns; i++)
		if (known_conns[i].userid == userid && strcmp(known_conns[i].shard, shard) == 0)
			return i;
	return -1;
}

static void
forget_conn(const char *shard)
{
	int			i = known_conn(shard, GetUserId());

	if (i >= 0)
		known_conns[i] = known_conns[--n_known_conns];
}

static void
remember_conn(const char *shard)
{
	if (known_conn(shard, GetUserId()) >= 0 || n_known_conns >= MAX_KNOWN_CONNS)
		return;
	strlcpy(known_conns[n_known_conns].shard, shard, NAMEDATALEN);
	known_conns[n_known_conns].userid = GetUserId();
	n_known_conns++;
}

struct FsShardRouter
{
	FsShardSet	ss;
	MemoryContext cxt;
};

bool
fs_shard_is_sharded(FsView *view)
{
	return OidIsValid(view->offline_relid) &&
		get_rel_relkind(view->offline_relid) == RELKIND_PARTITIONED_TABLE;
}

/* Runs a query through SPI (connected) with text arguments. */
static void
spi_run(const char *sql, int nargs, const char **args, int expect)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		vals[4];
	int			i;
	int			rc;

	for (i = 0; i < nargs; i++)
		vals[i] = CStringGetTextDatum(args[i]);
	rc = SPI_execute_with_args(sql, nargs, types, vals, NULL, false, 0);
	if (rc != expect)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
}

static char *
spi_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/*
 * Reads the view's shards from the catalog and the partition key from its
 * history table.  SPI must be connected; what is kept lives in cxt.
 */
static void
shard_set_read(FsShardSet *ss, FsView *view, MemoryContext cxt)
{
	const char *args[1];
	Relation	rel;
	PartitionKey key;
	MemoryContext old;
	StringInfoData defs;
	StringInfoData list;
	int			i;
	uint64		n;

	ss->view = view;
	args[0] = view->name;
	spi_run("SELECT x.s, pg_catalog.quote_ident(sh.fstore_schema::pg_catalog.text),"
			" fstore._shard_ext_schema('dblink')"
			" FROM fstore.sharded_views v,"
			"  pg_catalog.unnest(v.shards) WITH ORDINALITY AS x(s, n),"
			"  fstore.shards sh"
			" WHERE v.view_name OPERATOR(pg_catalog.=) $1"
			"   AND sh.name OPERATOR(pg_catalog.=) x.s"
			" ORDER BY x.n", 1, args, SPI_OK_SELECT);
	n = SPI_processed;
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("feature view \"%s\" has partitioned tables but no shards", view->name),
				 errhint("Shard it with fs_shard_feature_view.")));
	old = MemoryContextSwitchTo(cxt);
	ss->nshards = (int) n;
	ss->names = palloc(sizeof(char *) * n);
	ss->schemas = palloc(sizeof(char *) * n);
	ss->conns = palloc0(sizeof(char *) * n);
	for (i = 0; i < (int) n; i++)
	{
		ss->names[i] = pstrdup(spi_text(i, 1));
		ss->schemas[i] = pstrdup(spi_text(i, 2));
	}
	ss->dblink = pstrdup(spi_text(0, 3));

	rel = table_open(view->offline_relid, AccessShareLock);
	key = RelationGetPartitionKey(rel);
	if (key == NULL || key->strategy != PARTITION_STRATEGY_HASH ||
		key->partnatts != view->nkeys)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"fstore_offline.%s\" is not partitioned by hash of the key", view->name)));
	ss->partnatts = key->partnatts;
	ss->partsupfunc = palloc(sizeof(FmgrInfo) * key->partnatts);
	ss->partcollation = palloc(sizeof(Oid) * key->partnatts);
	for (i = 0; i < key->partnatts; i++)
	{
		fmgr_info_copy(&ss->partsupfunc[i], &key->partsupfunc[i], cxt);
		ss->partcollation[i] = key->partcollation[i];
	}
	table_close(rel, NoLock);

	initStringInfo(&defs);
	initStringInfo(&list);
	for (i = 0; i < view->ncols; i++)
	{
		FsColumn   *c = &view->cols[i];

		appendStringInfo(&defs, "%s%s %s", i ? ", " : "", quote_identifier(c->name),
						 format_type_extended(c->typid, c->typmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN |
											  FORMAT_TYPE_FORCE_QUALIFY));
		appendStringInfo(&list, "%s%s", i ? ", " : "", quote_identifier(c->name));
	}
	ss->coldefs = defs.data;
	ss->collist = list.data;

	/*
	 * Reads travel in the packed layout (binary, no text conversion of
	 * every value) when every feature is a scalar it holds exactly.
	 */
	ss->packed = true;
	ss->codes = palloc(Max(view->nfeatures, 1));
	for (i = 0; i < view->nfeatures; i++)
	{
		switch (view->cols[view->nkeys + i].typid)
		{
			case BOOLOID: ss->codes[i] = FSP_BOOL; break;
			case INT2OID: ss->codes[i] = FSP_INT2; break;
			case INT4OID: ss->codes[i] = FSP_INT4; break;
			case INT8OID: ss->codes[i] = FSP_INT8; break;
			case FLOAT4OID: ss->codes[i] = FSP_FLOAT4; break;
			case FLOAT8OID: ss->codes[i] = FSP_FLOAT8; break;
			case DATEOID: ss->codes[i] = FSP_DATE; break;
			case TIMESTAMPOID: ss->codes[i] = FSP_TIMESTAMP; break;
			case TIMESTAMPTZOID: ss->codes[i] = FSP_TIMESTAMPTZ; break;
			case TEXTOID: case BYTEAOID: ss->codes[i] = FSP_BYTES; break;
			default: ss->packed = false; break;
		}
	}
	if (view->nfeatures > FSP_MAX_FEATURES)
		ss->packed = false;
	MemoryContextSwitchTo(old);
}

/*
 * Forms the rows of shard answer in the packed layout: record j is the
 * value of distinct key which[j] (NULL when absent).
 */
static void
rows_from_packed(FsShardSet *ss, FsKeyBatch *b, const int *which, int n,
				 bytea *answer, TupleDesc desc, HeapTuple *rows,
				 Datum *vals, bool *nulls, const char *shard)
{
	FsView	   *view = ss->view;
	fsp_reader *r = palloc(sizeof(fsp_reader));
	fsp_record *rec = palloc(sizeof(fsp_record));
	int			j;
	int			i;
	int			k;

	if (fsp_open(r, VARDATA_ANY(answer), VARSIZE_ANY_EXHDR(answer)) != 0 ||
		r->nrecords != (uint32) n || r->nfeatures != view->nfeatures)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("shard \"%s\" sent an answer for feature view \"%s\" that does not match its definition",
						shard, view->name)));
	for (i = 0; i < view->nfeatures; i++)
		if (r->codes[i] != ss->codes[i])
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("feature \"%s\" of feature view \"%s\" has another type on shard \"%s\"",
							view->cols[view->nkeys + i].name, view->name, shard)));
	for (j = 0; j < n; j++)
	{
		Datum	   *kv = FS_KEY_VALUES(b, which[j]);

		if (fsp_next(r, rec) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("shard \"%s\" sent a truncated answer for feature view \"%s\"",
							shard, view->name)));
		if (!rec->present)
			continue;
		memset(nulls, true, sizeof(bool) * desc->natts);
		for (k = 0; k < view->nkeys; k++)
		{
			vals[view->cols[k].online_attnum - 1] = kv[k];
			nulls[view->cols[k].online_attnum - 1] = false;
		}
		for (i = 0; i < view->nfeatures; i++)
		{
			const uint8 *p = rec->value[i];
			int			att = view->cols[view->nkeys + i].online_attnum - 1;
			Datum		d = (Datum) 0;

			if (p == NULL)
				continue;
			switch (r->codes[i])
			{
				case FSP_BOOL:
					d = BoolGetDatum(*p != 0);
					break;
				case FSP_INT2:
					{
						int16		v;

						memcpy(&v, p, 2);
						d = Int16GetDatum(v);
						break;
					}
				case FSP_INT4:
				case FSP_DATE:
					{
						int32		v;

						memcpy(&v, p, 4);
						d = Int32GetDatum(v);
						break;
					}
				case FSP_INT8:
				case FSP_TIMESTAMP:
				case FSP_TIMESTAMPTZ:
					{
						int64		v;

						memcpy(&v, p, 8);
						d = Int64GetDatum(v);
						break;
					}
				case FSP_FLOAT4:
					{
						float4		v;

						memcpy(&v, p, 4);
						d = Float4GetDatum(v);
						break;
					}
				case FSP_FLOAT8:
					{
						float8		v;

						memcpy(&v, p, 8);
						d = Float8GetDatum(v);
						break;
					}
				case FSP_BYTES:
					{
						bytea	   *v = palloc(rec->count[i] + VARHDRSZ);

						SET_VARSIZE(v, rec->count[i] + VARHDRSZ);
						memcpy(VARDATA(v), p, rec->count[i]);
						d = PointerGetDatum(v);
						break;
					}
			}
			vals[att] = d;
			nulls[att] = false;
		}
		vals[view->cols[view->ts_col].online_attnum - 1] = TimestampTzGetDatum(rec->event_ts);
		nulls[view->cols[view->ts_col].online_attnum - 1] = false;
		rows[which[j]] = heap_form_tuple(desc, vals, nulls);
	}
}

/*
 * The view's shard set, from this backend's cache or the catalog (SPI
 * connected); *ss is a copy whose conns are the caller's (in cxt).
 */
static void
shard_set_load(FsShardSet *ss, FsView *view, MemoryContext cxt)
{
	ShardCacheEntry *volatile e = NULL;
	int			i;

	for (i = 0; i < shard_cache_n; i++)
		if (shard_cache[i].view_id == view->view_id &&
			shard_cache[i].offline_relid == view->offline_relid &&
			shard_cache[i].shape == view->shape)
		{
			e = &shard_cache[i];
			break;
		}
	if (e == NULL)
	{
		if (shard_cxt == NULL)
			shard_cxt = AllocSetContextCreate(TopMemoryContext, "fstore shard sets",
											  ALLOCSET_SMALL_SIZES);
		if (shard_cache_n < SHARD_CACHE_SIZE)
			e = &shard_cache[shard_cache_n++];
		else
		{
			e = &shard_cache[shard_cache_next];
			shard_cache_next = (shard_cache_next + 1) % SHARD_CACHE_SIZE;
			if (e->ss.names != NULL)
				MemoryContextDelete(GetMemoryChunkContext(e->ss.names));
		}
		memset(e, 0, sizeof(ShardCacheEntry));
		{
			MemoryContext ecxt = AllocSetContextCreate(shard_cxt, "fstore shard set",
													   ALLOCSET_SMALL_SIZES);

			PG_TRY();
			{
				shard_set_read(&e->ss, view, ecxt);
			}
			PG_CATCH();
			{
				/* nothing half-read stays in the cache */
				memset(e, 0, sizeof(ShardCacheEntry));
				e->view_id = -1;
				MemoryContextDelete(ecxt);
				PG_RE_THROW();
			}
			PG_END_TRY();
		}
		e->view_id = view->view_id;
		e->offline_relid = view->offline_relid;
		e->shape = view->shape;
	}
	*ss = e->ss;
	ss->view = view;
	ss->conns = MemoryContextAllocZero(cxt, sizeof(char *) * ss->nshards);
}

/* The shard (index) of a key given as its column values. */
static int
shard_of(FsShardSet *ss, Datum *vals)
{
	bool		isnull[FS_MAX_KEYS] = {false};
	uint64		h = compute_partition_hash_value(ss->partnatts, ss->partsupfunc,
												 ss->partcollation, vals, isnull);

	return (int) (h % (uint64) ss->nshards);
}

/* The dblink connection to shard i, opened (again, with reconnect) if needed. */
static const char *
shard_conn(FsShardSet *ss, int i, bool reconnect, MemoryContext cxt)
{
	const char *args[2];

	if (ss->conns[i] && !reconnect)
		return ss->conns[i];
	if (!reconnect && known_conn(ss->names[i], GetUserId()) >= 0)
	{
		/* fstore._shard_conn's name for it */
		ss->conns[i] = MemoryContextStrdup(cxt, psprintf("fstore_%s_%u", ss->names[i],
														 GetUserId()));
		return ss->conns[i];
	}
	forget_conn(ss->names[i]);
	args[0] = ss->names[i];
	args[1] = reconnect ? "true" : "false";
	spi_run("SELECT fstore._shard_conn($1, $2::pg_catalog.bool)", 2, args, SPI_OK_SELECT);
	ss->conns[i] = MemoryContextStrdup(cxt, spi_text(0, 1));
	remember_conn(ss->names[i]);
	return ss->conns[i];
}

/*
 * Sends a query to shard i without waiting.  A connection that cannot take
 * it (closed by a restart of the shard, or holding the unread answer of a
 * call that failed) is opened again once.
 */
static void
shard_send(FsShardSet *ss, int i, const char *query, MemoryContext cxt)
{
	const char *args[2];
	int			attempt;

	for (attempt = 0; attempt < 2; attempt++)
	{
		bool		isnull;
		int32		sent;

		args[0] = shard_conn(ss, i, attempt > 0, cxt);
		args[1] = query;
		spi_run(psprintf("SELECT %s.dblink_send_query($1, $2)", ss->dblink), 2, args,
				SPI_OK_SELECT);
		sent = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										   1, &isnull));
		if (!isnull && sent == 1)
			return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("shard \"%s\" is unavailable", ss->names[i]),
			 errdetail("The query of feature view \"%s\" could not be sent to it.", ss->view->name),
			 errhint("Check that the shard's server is running and reachable.")));
}

/*
 * Collects shard i's answer with the given column definition list into
 * SPI_tuptable, then reads the end of the answer so the connection is free
 * again.  The shard's errors keep their SQLSTATE and name the shard; a
 * lost connection is error 08006 naming it.
 */
static void
shard_collect(FsShardSet *ss, int i, const char *coldefs, MemoryContext cxt)
{
	const char *args[1];
	MemoryContext old = CurrentMemoryContext;
	char	   *sql = psprintf("SELECT * FROM %s.dblink_get_result($1, true) AS t(%s)",
							   ss->dblink, coldefs);

	args[0] = ss->conns[i];
	PG_TRY();
	{
		spi_run(sql, 1, args, SPI_OK_SELECT);
	}
	PG_CATCH();
	{
		ErrorData  *ed;

		MemoryContextSwitchTo(cxt);
		ed = CopyErrorData();
		FlushErrorState();
		/* the connection may be broken: check it again next time */
		ss->conns[i] = NULL;
		forget_conn(ss->names[i]);
		if (ERRCODE_TO_CATEGORY(ed->sqlerrcode) == ERRCODE_CONNECTION_EXCEPTION)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("shard \"%s\" is unavailable", ss->names[i]),
					 errdetail_internal("%s", ed->message),
					 errhint("Check that the shard's server is running and reachable.")));
		ereport(ERROR,
				(errcode(ed->sqlerrcode),
				 errmsg_internal("%s", ed->message),
				 ed->detail ? errdetail_internal("%s", ed->detail) : 0,
				 ed->hint ? errhint("%s", ed->hint) : 0,
				 errcontext("shard \"%s\" of feature view \"%s\"", ss->names[i],
							ss->view->name)));
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
}

/* After shard_collect's rows are used: reads the empty end of the answer. */
static void
shard_finish(FsShardSet *ss, int i)
{
	const char *args[1];

	args[0] = ss->conns[i];
	SPI_freetuptable(SPI_tuptable);
	spi_run(psprintf("SELECT 1 FROM %s.dblink_get_result($1, true) AS t(x pg_catalog.text)",
					 ss->dblink), 1, args, SPI_OK_SELECT);
}

/*
 * Text of an array as the shards read it back exactly: ISO dates, no
 * rounding of floats, whatever this session's settings.
 */
static char *
array_text(Datum *elems, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	ArrayType  *arr;
	Oid			outfn;
	bool		isvarlena;
	char	   *s;
	int			nest = NewGUCNestLevel();

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	arr = construct_array(elems, n, elemtype, typlen, typbyval, typalign);
	(void) set_config_option("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	getTypeOutputInfo(get_array_type(elemtype), &outfn, &isvarlena);
	s = OidOutputFunctionCall(outfn, PointerGetDatum(arr));
	AtEOXact_GUC(true, nest);
	return s;
}

/* ---------------------------------------------------------------------- */
/* Reads                                                                   */
/* ---------------------------------------------------------------------- */

HeapTuple *
fs_shard_read_rows(FsView *view, FsKeyBatch *b, TupleDesc *descp)
{
	MemoryContext callcxt = CurrentMemoryContext;
	Relation	rel = table_open(view->online_relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	int			n = b->ndistinct;
	HeapTuple  *rows = palloc0(sizeof(HeapTuple) * Max(n, 1));
	FsShardSet	ss;
	int		  **which;
	int		   *nwhich;
	TupleDesc	keydesc = NULL;
	char	   *keyarr = format_type_extended(view->key_array_type, -1,
											  FORMAT_TYPE_FORCE_QUALIFY);
	Datum	   *vals = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);
	int			s;
	int			d;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	shard_set_load(&ss, view, callcxt);
	which = palloc(sizeof(int *) * ss.nshards);
	nwhich = palloc0(sizeof(int) * ss.nshards);
	for (s = 0; s < ss.nshards; s++)
		which[s] = palloc(sizeof(int) * Max(n, 1));
	for (d = 0; d < n; d++)
	{
		s = shard_of(&ss, FS_KEY_VALUES(b, d));
		which[s][nwhich[s]++] = d;
	}
	if (view->nkeys > 1)
		keydesc = lookup_rowtype_tupdesc_copy(view->key_type, -1);

	/* every involved shard gets its keys at once ... */
	for (s = 0; s < ss.nshards; s++)
	{
		Datum	   *elems;
		int			j;

		if (nwhich[s] == 0)
			continue;
		elems = palloc(sizeof(Datum) * nwhich[s]);
		for (j = 0; j < nwhich[s]; j++)
		{
			Datum	   *kv = FS_KEY_VALUES(b, which[s][j]);

			if (keydesc)
			{
				bool		knulls[FS_MAX_KEYS] = {false};

				elems[j] = heap_copy_tuple_as_datum(heap_form_tuple(keydesc, kv, knulls),
													keydesc);
			}
			else
				elems[j] = kv[0];
		}
		if (ss.packed)
			shard_send(&ss, s,
					   psprintf("SELECT %s.fs_get_many_packed(NULL::fstore_online.%s, %s::%s)",
								ss.schemas[s], quote_identifier(view->name),
								quote_literal_cstr(array_text(elems, nwhich[s], view->key_type)),
								keyarr),
					   callcxt);
		else
			shard_send(&ss, s,
					   psprintf("SELECT %s FROM %s.fs_get_many(NULL::fstore_online.%s, %s::%s)",
								ss.collist, ss.schemas[s], quote_identifier(view->name),
								quote_literal_cstr(array_text(elems, nwhich[s], view->key_type)),
								keyarr),
					   callcxt);
	}

	/* ... then the answers are collected, each in its keys' order */
	for (s = 0; s < ss.nshards; s++)
	{
		uint64		j;

		if (nwhich[s] == 0)
			continue;
		if (ss.packed)
		{
			bool		isnull;
			Datum		answer;
			MemoryContext old;

			shard_collect(&ss, s, "p pg_catalog.bytea", callcxt);
			if (SPI_processed != 1)
				elog(ERROR, "fs_get_many_packed on shard \"%s\" returned %llu rows",
					 ss.names[s], (unsigned long long) SPI_processed);
			answer = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (isnull)
				elog(ERROR, "fs_get_many_packed on shard \"%s\" returned NULL", ss.names[s]);
			old = MemoryContextSwitchTo(callcxt);
			rows_from_packed(&ss, b, which[s], nwhich[s], DatumGetByteaPP(answer), desc,
							 rows, vals, nulls, ss.names[s]);
			MemoryContextSwitchTo(old);
			shard_finish(&ss, s);
			continue;
		}
		shard_collect(&ss, s, ss.coldefs, callcxt);
		if (SPI_processed != (uint64) nwhich[s])
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("shard \"%s\" returned %llu rows for %d keys of feature view \"%s\"",
							ss.names[s], (unsigned long long) SPI_processed, nwhich[s],
							view->name)));
		for (j = 0; j < SPI_processed; j++)
		{
			HeapTuple	t = SPI_tuptable->vals[j];
			TupleDesc	td = SPI_tuptable->tupdesc;
			bool		isnull;
			int			c;
			MemoryContext old;

			(void) SPI_getbinval(t, td, view->ncols, &isnull);
			if (isnull)			/* event_ts: no value, or past the ttl */
				continue;
			memset(nulls, true, sizeof(bool) * desc->natts);
			for (c = 0; c < view->ncols; c++)
				vals[view->cols[c].online_attnum - 1] =
					SPI_getbinval(t, td, c + 1, &nulls[view->cols[c].online_attnum - 1]);
			old = MemoryContextSwitchTo(callcxt);
			rows[which[s][j]] = heap_form_tuple(desc, vals, nulls);
			MemoryContextSwitchTo(old);
		}
		shard_finish(&ss, s);
	}
	SPI_finish();
	fs_stats_count_lookup(view->view_id, b->ninput, 0, 0);
	*descp = desc;
	table_close(rel, NoLock);
	return rows;
}

/* ---------------------------------------------------------------------- */
/* Writes                                                                  */
/* ---------------------------------------------------------------------- */

FsShardRouter *
fs_shard_router_begin(FsView *view)
{
	FsShardRouter *r;

	if (!fs_shard_is_sharded(view))
		return NULL;
	r = palloc0(sizeof(FsShardRouter));
	r->cxt = CurrentMemoryContext;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	shard_set_load(&r->ss, view, r->cxt);
	SPI_finish();
	return r;
}

/*
 * Sends every shard its rows of this batch (one fs_write each, all at
 * once) and adds up the answers.  The callers never split one key's rows
 * over two batches, so each key is compared on its shard exactly as the
 * single-server engine compares it.  Each shard's fs_write commits on its
 * own when it returns: a shard that fails fails the call, and what the
 * shards before it applied stays (a retry of the call finds it unchanged).
 */
void
fs_shard_router_rows(FsShardRouter *r, FsRow *rows, int nrows,
					 FsApplyCounts *counts, TimestampTz *max_ts)
{
	FsShardSet *ss = &r->ss;
	FsView	   *view = ss->view;
	MemoryContext cxt;
	MemoryContext old;
	TupleDesc	rowdesc;
	int		  **which;
	int		   *nwhich;
	Datum	   *vals;
	bool	   *nulls;
	char	   *rowarr;
	int			s;
	int			i;

	if (nrows == 0)
		return;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "fstore shard rows",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	rowdesc = lookup_rowtype_tupdesc_copy(view->rowtype, -1);
	vals = palloc(sizeof(Datum) * rowdesc->natts);
	nulls = palloc(sizeof(bool) * rowdesc->natts);
	which = palloc(sizeof(int *) * ss->nshards);
	nwhich = palloc0(sizeof(int) * ss->nshards);
	for (s = 0; s < ss->nshards; s++)
		which[s] = palloc(sizeof(int) * nrows);
	for (i = 0; i < nrows; i++)
	{
		TimestampTz ts = DatumGetTimestampTz(rows[i].values[view->ts_col]);

		s = shard_of(ss, rows[i].values);
		which[s][nwhich[s]++] = i;
		if (!rows[i].nulls[view->ts_col] && ts > *max_ts)
			*max_ts = ts;
	}
	rowarr = psprintf("fstore_online.%s[]", quote_identifier(view->name));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (s = 0; s < ss->nshards; s++)
	{
		Datum	   *elems;
		int			j;

		if (nwhich[s] == 0)
			continue;
		elems = palloc(sizeof(Datum) * nwhich[s]);
		for (j = 0; j < nwhich[s]; j++)
		{
			FsRow	   *row = &rows[which[s][j]];
			int			c;

			memset(nulls, true, sizeof(bool) * rowdesc->natts);
			for (c = 0; c < view->ncols; c++)
			{
				vals[view->cols[c].online_attnum - 1] = row->values[c];
				nulls[view->cols[c].online_attnum - 1] = row->nulls[c];
			}
			elems[j] = heap_copy_tuple_as_datum(heap_form_tuple(rowdesc, vals, nulls), rowdesc);
		}
		shard_send(ss, s,
				   psprintf("SELECT written, unchanged, late FROM %s.fs_write(%s, %s::%s)",
							ss->schemas[s], quote_literal_cstr(view->name),
							quote_literal_cstr(array_text(elems, nwhich[s], view->rowtype)),
							rowarr),
				   r->cxt);
	}
	for (s = 0; s < ss->nshards; s++)
	{
		bool		isnull;

		if (nwhich[s] == 0)
			continue;
		shard_collect(ss, s, "written pg_catalog.int8, unchanged pg_catalog.int8, late pg_catalog.int8",
					  r->cxt);
		if (SPI_processed != 1)
			elog(ERROR, "fs_write on shard \"%s\" returned %llu rows",
				 ss->names[s], (unsigned long long) SPI_processed);
		counts->written += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		counts->unchanged += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		counts->late += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
		shard_finish(ss, s);
	}
	SPI_finish();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}
