/*
 * metadata.c
 *		Backend-local metadata cache of feature views and feature services.
 *
 * Metadata is read from the fstore.* catalogs with SPI and from the
 * relation cache, once per backend, and kept in hash tables inside one
 * memory context.  A relcache callback marks everything stale when one of
 * our catalogs (their statement triggers call CacheInvalidateRelcache) or
 * one of the watched per-view tables changes; the callback only sets a
 * flag.  The next lookup retires the old context (freed at transaction
 * end, so pointers handed out earlier stay valid for the transaction) and
 * starts afresh.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/hash.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "catalog/metadata.h"

PG_FUNCTION_INFO_V1(fs_catalog_changed);

typedef struct FsViewEntry
{
	char		name[NAMEDATALEN];	/* hash key */
	FsView	   *view;
} FsViewEntry;

typedef struct FsRelidEntry
{
	Oid			relid;			/* hash key */
	FsView	   *view;			/* for online tables; NULL otherwise */
} FsRelidEntry;

typedef struct FsTargetEntry
{
	Oid			rowtype;		/* hash key */
	FsView	   *view;
	FsService  *service;
} FsTargetEntry;

static MemoryContext meta_cxt = NULL;
static List *retired_cxts = NIL;	/* freed at transaction end */
static HTAB *views_by_name = NULL;
static HTAB *watched_relids = NULL;	/* relid -> view (online) or NULL */
static HTAB *targets_by_type = NULL;
static bool meta_valid = false;
static uint64 meta_generation = 0;	/* bumped by every reset */
static Oid	feature_views_relid = InvalidOid;

static const char *const catalog_tables[] = {
	"entities", "feature_views", "features", "feature_services", "service_features"
};

/* Marks the metadata stale; runs inside invalidation processing. */
static void
catalog_relcache_callback(Datum arg, Oid relid)
{
	if (!meta_valid)
		return;
	if (!OidIsValid(relid) ||
		(watched_relids && hash_search(watched_relids, &relid, HASH_FIND, NULL)))
		meta_valid = false;
}

/* Frees retired metadata once no pointer into it can be in use. */
static void
catalog_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			foreach(lc, retired_cxts)
				MemoryContextDelete((MemoryContext) lfirst(lc));
			list_free(retired_cxts);
			retired_cxts = NIL;
			break;
		default:
			break;
	}
}

void
fs_catalog_init(void)
{
	CacheRegisterRelcacheCallback(catalog_relcache_callback, (Datum) 0);
	RegisterXactCallback(catalog_xact_callback, NULL);
}

static Oid
fstore_namespace(const char *nspname)
{
	Oid			nsp = get_namespace_oid(nspname, true);

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", nspname),
				 errhint("Run CREATE EXTENSION fstore in this database.")));
	return nsp;
}

static void
watch_relid(Oid relid, FsView *view)
{
	FsRelidEntry *e;
	bool		found;

	if (!OidIsValid(relid))
		return;
	e = hash_search(watched_relids, &relid, HASH_ENTER, &found);
	if (!found || view)
		e->view = view;
}

/* Retires the current metadata (if stale) and starts an empty set. */
static void
catalog_ensure_valid(void)
{
	HASHCTL		ctl;
	MemoryContext old;
	Oid			nsp;
	int			i;

	if (meta_valid && meta_cxt)
		return;

	if (meta_cxt)
	{
		old = MemoryContextSwitchTo(TopMemoryContext);
		retired_cxts = lappend(retired_cxts, meta_cxt);
		MemoryContextSwitchTo(old);
	}
	views_by_name = NULL;
	watched_relids = NULL;
	targets_by_type = NULL;
	meta_cxt = AllocSetContextCreate(CacheMemoryContext, "fstore metadata",
									 ALLOCSET_SMALL_SIZES);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(FsViewEntry);
	ctl.hcxt = meta_cxt;
	views_by_name = hash_create("fstore views", 64, &ctl,
								HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(FsRelidEntry);
	watched_relids = hash_create("fstore watched relations", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(FsTargetEntry);
	targets_by_type = hash_create("fstore targets", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	meta_valid = true;
	meta_generation++;

	nsp = fstore_namespace("fstore");
	for (i = 0; i < lengthof(catalog_tables); i++)
	{
		Oid			relid = get_relname_relid(catalog_tables[i], nsp);

		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("catalog table \"fstore.%s\" does not exist",
							catalog_tables[i]),
					 errhint("Reinstall the extension fstore.")));
		watch_relid(relid, NULL);
		if (i == 1)
			feature_views_relid = relid;
	}
	/* features of aggregation views in services (not in 0.1's catalogs) */
	if (OidIsValid(get_relname_relid("service_aggregations", nsp)))
		watch_relid(get_relname_relid("service_aggregations", nsp), NULL);
}

Oid
fs_catalog_views_relid(void)
{
	catalog_ensure_valid();
	return feature_views_relid;
}

/* Attribute number of a column by name, or InvalidAttrNumber. */
static AttrNumber
find_attnum(TupleDesc td, const char *name)
{
	int			i;

	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	return InvalidAttrNumber;
}

static const char *const table_schema[] = {"fstore_online", "fstore_offline", "fstore_stream"};

/* Refuses an online "table" that is not a plain table (a view, say). */
static void
check_online_relkind(FsView *view, Relation rel)
{
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"fstore_online.%s\" is not a table", view->name),
				 errdetail("The tables of feature view \"%s\" must be plain tables.",
						   view->name)));
}

/* The message of a column whose type is not the one the view expects. */
static char *
mismatch_message(FsView *view, FsTableKind kind, const char *col, Oid have, Oid want)
{
	return psprintf("column \"%s\" of table \"%s.%s\" has type %s, but feature view \"%s\" expects %s",
					col, table_schema[kind], view->name,
					OidIsValid(have) ? format_type_be(have) : "unknown",
					view->name,
					OidIsValid(want) ? format_type_be(want) : "unknown");
}

void
fs_catalog_type_mismatch(FsView *view, FsTableKind kind, const char *col,
						 Oid have, Oid want)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg_internal("%s", mismatch_message(view, kind, col, have, want)),
			 errdetail("The table no longer matches the view's definition in fstore's catalogs."),
			 errhint("Change the column back to its type.")));
}

/*
 * The first way td (a table of the view) differs from what the view
 * expects, as a message, with its SQLSTATE in *code; NULL if it matches.
 */
static char *
table_mismatch(FsView *view, FsTableKind kind, TupleDesc td, int *code)
{
	int			i;

	for (i = 0; i < view->ncols; i++)
	{
		FsColumn   *c = &view->cols[i];
		AttrNumber	att = kind == FS_TABLE_ONLINE ? c->online_attnum :
			kind == FS_TABLE_OFFLINE ? c->offline_attnum : c->stream_attnum;
		Form_pg_attribute a;

		if (att < 1 || att > td->natts ||
			TupleDescAttr(td, att - 1)->attisdropped ||
			strcmp(NameStr(TupleDescAttr(td, att - 1)->attname), c->name) != 0)
		{
			*code = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
			return psprintf("table \"%s.%s\" changed while it was in use",
							table_schema[kind], view->name);
		}
		a = TupleDescAttr(td, att - 1);
		if (a->atttypid != c->typid)
		{
			*code = ERRCODE_DATATYPE_MISMATCH;
			return mismatch_message(view, kind, c->name, a->atttypid, c->typid);
		}
	}
	if (kind == FS_TABLE_OFFLINE)
	{
		AttrNumber	att = view->created_at_attnum;

		if (att < 1 || att > td->natts ||
			TupleDescAttr(td, att - 1)->atttypid != TIMESTAMPTZOID)
		{
			*code = ERRCODE_DATATYPE_MISMATCH;
			return psprintf("column \"created_at\" of table \"%s.%s\" is not of type timestamp with time zone",
							table_schema[kind], view->name);
		}
	}
	if ((kind == FS_TABLE_ONLINE && td->natts != view->online_natts) ||
		(kind == FS_TABLE_OFFLINE && td->natts != view->offline_natts) ||
		(kind == FS_TABLE_STREAM && td->natts != view->stream_natts))
	{
		*code = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
		return psprintf("table \"%s.%s\" changed while it was in use",
						table_schema[kind], view->name);
	}
	return NULL;
}

static void
raise_table_problem(FsView *view, int code, const char *message)
{
	ereport(ERROR,
			(errcode(code),
			 errmsg_internal("%s", message),
			 errdetail("The tables of feature view \"%s\" no longer match its definition in fstore's catalogs.",
					   view->name),
			 code == ERRCODE_DATATYPE_MISMATCH ?
			 errhint("Change the column back to the type the view was created with.") :
			 errhint("Retry the statement.")));
}

void
fs_catalog_check_table(FsView *view, FsTableKind kind, TupleDesc td)
{
	char	   *msg;
	int			code;

	/* a problem found when the metadata was loaded */
	if (kind == FS_TABLE_OFFLINE && view->offline_problem)
		raise_table_problem(view, view->offline_problem_code, view->offline_problem);
	if (kind == FS_TABLE_STREAM && view->stream_problem)
		raise_table_problem(view, view->stream_problem_code, view->stream_problem);
	msg = table_mismatch(view, kind, td, &code);
	if (msg)
		raise_table_problem(view, code, msg);
}

/*
 * Notes what is wrong with a view's history or queue table, for the
 * operations that use it: reads of the online table keep working.
 */
static void
note_problem(FsView *view, FsTableKind kind, int code, char *msg)
{
	if (kind == FS_TABLE_OFFLINE && view->offline_problem == NULL)
	{
		view->offline_problem = msg;
		view->offline_problem_code = code;
	}
	else if (kind == FS_TABLE_STREAM && view->stream_problem == NULL)
	{
		view->stream_problem = msg;
		view->stream_problem_code = code;
	}
}

static void
missing_column(FsView *view, const char *col, const char *nsp)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of table \"%s.%s\" does not exist",
					col, nsp, view->name),
			 errdetail("The table of feature view \"%s\" no longer matches its definition.",
					   view->name)));
}

/*
 * Opens the view's table in namespace nsp (side: "online" or "offline",
 * for the error) and sets *relid; 42P01 when it does not exist.
 */
static Relation
open_view_table(FsView *view, Oid nsp, const char *side, Oid *relid)
{
	*relid = get_relname_relid(view->name, nsp);
	if (!OidIsValid(*relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("%s table of feature view \"%s\" does not exist",
						side, view->name)));
	return table_open(*relid, AccessShareLock);
}

/* Fills the online-table side of a view: columns, primary key, key procs. */
static void
load_online(FsView *view, Oid nsp)
{
	Relation	rel;
	Relation	pk;
	TupleDesc	td;
	Oid			pkoid;
	int			i;

	rel = open_view_table(view, nsp, "online", &view->online_relid);
	check_online_relkind(view, rel);
	td = RelationGetDescr(rel);
	view->rowtype = rel->rd_rel->reltype;
	view->owner = rel->rd_rel->relowner;
	view->online_natts = td->natts;

	for (i = 0; i < view->ncols; i++)
	{
		FsColumn   *c = &view->cols[i];
		Form_pg_attribute att;

		c->online_attnum = find_attnum(td, c->name);
		if (c->online_attnum == InvalidAttrNumber)
			missing_column(view, c->name, "fstore_online");
		att = TupleDescAttr(td, c->online_attnum - 1);
		c->typid = att->atttypid;
		c->typmod = att->atttypmod;
		c->collation = att->attcollation;
		c->typlen = att->attlen;
		c->typbyval = att->attbyval;
		c->typalign = att->attalign;
		if (c->typid != c->catalog_typid)
			fs_catalog_type_mismatch(view, FS_TABLE_ONLINE, c->name, c->typid,
									 c->catalog_typid);
	}

	/* the key type fs_get_many takes must have the key columns' layout */
	if (view->nkeys == 1)
	{
		if (view->key_type != view->cols[0].typid)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("key type %s of entity \"%s\" does not match key column \"%s\" of type %s",
							format_type_be(view->key_type), view->entity,
							view->cols[0].name, format_type_be(view->cols[0].typid))));
	}
	else
	{
		TupleDesc	ktd = lookup_rowtype_tupdesc_noerror(view->key_type, -1, true);
		bool		ok = ktd != NULL && ktd->natts == view->nkeys;

		for (i = 0; ok && i < view->nkeys; i++)
			ok = !TupleDescAttr(ktd, i)->attisdropped &&
				TupleDescAttr(ktd, i)->atttypid == view->cols[i].typid;
		if (ktd)
			ReleaseTupleDesc(ktd);
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("key type %s of entity \"%s\" does not match its key columns",
							format_type_be(view->key_type), view->entity),
					 errdetail("It must have exactly the key columns' types, in order."),
					 errhint("Change the type's attributes back to the key columns' types.")));
		view->key_typrelid = get_typ_typrelid(view->key_type);
	}

	/*
	 * The shape changes with the table's storage (TRUNCATE, rewrites) and
	 * its columns; cache entries filled under another shape are not used.
	 */
	view->shape = hash_combine(hash_uint32(view->online_relid),
							   hash_uint32(rel->rd_node.relNode));
	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);

		view->shape = hash_combine(view->shape, hash_uint32(att->atttypid));
		view->shape = hash_combine(view->shape, hash_uint32((uint32) att->atttypmod));
		view->shape = hash_combine(view->shape, hash_uint32(att->attisdropped));
	}

	pkoid = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(pkoid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("online table of feature view \"%s\" has no primary key",
						view->name)));
	pk = index_open(pkoid, AccessShareLock);
	if (pk->rd_rel->relam != BTREE_AM_OID ||
		pk->rd_index->indnkeyatts != view->nkeys)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("primary key of feature view \"%s\" does not match its entity's key columns",
						view->name)));
	view->pkey_relid = pkoid;

	for (i = 0; i < view->nkeys; i++)
	{
		SortSupport ssup = &view->key_ssup[i];
		Oid			opfamily = pk->rd_opfamily[i];
		Oid			opcintype = pk->rd_opcintype[i];
		Oid			eqop;
		Oid			hashopc;
		Oid			hashfam;
		Oid			hashintype;
		Oid			hashproc;

		if (pk->rd_index->indkey.values[i] != view->cols[i].online_attnum)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("primary key of feature view \"%s\" does not match its entity's key columns",
							view->name)));

		memset(ssup, 0, sizeof(SortSupportData));
		ssup->ssup_cxt = meta_cxt;
		ssup->ssup_collation = pk->rd_indcollation[i];
		ssup->ssup_nulls_first = false;
		ssup->ssup_attno = i + 1;
		PrepareSortSupportFromIndexRel(pk, BTLessStrategyNumber, ssup);

		view->key_opcintype[i] = opcintype;
		eqop = get_opfamily_member(opfamily, opcintype, opcintype,
								   BTEqualStrategyNumber);
		if (!OidIsValid(eqop))
			elog(ERROR, "missing equality operator for key column %d of feature view \"%s\"",
				 i + 1, view->name);
		view->key_eq_proc[i] = get_opcode(eqop);

		hashopc = GetDefaultOpClass(view->cols[i].typid, HASH_AM_OID);
		if (!OidIsValid(hashopc))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("key column \"%s\" of feature view \"%s\" has no default hash operator class",
							view->cols[i].name, view->name)));
		hashfam = get_opclass_family(hashopc);
		hashintype = get_opclass_input_type(hashopc);
		hashproc = get_opfamily_proc(hashfam, hashintype, hashintype,
									 HASHEXTENDED_PROC);
		if (!OidIsValid(hashproc))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("key column \"%s\" of feature view \"%s\" has no extended hash function",
							view->cols[i].name, view->name)));
		fmgr_info_cxt(hashproc, &view->key_hash[i], meta_cxt);
	}
	index_close(pk, AccessShareLock);

	/* change detection compares features with the type's equality */
	for (i = view->nkeys; i < view->nkeys + view->nfeatures; i++)
	{
		FsColumn   *c = &view->cols[i];
		TypeCacheEntry *tc = lookup_type_cache(c->typid, TYPECACHE_EQ_OPR_FINFO);

		c->has_eq = OidIsValid(tc->eq_opr_finfo.fn_oid);
		if (c->has_eq)
			fmgr_info_copy(&c->eq_finfo, &tc->eq_opr_finfo, meta_cxt);
	}
	table_close(rel, AccessShareLock);
}

/*
 * Finds the view's columns in its offline or stream table (rel) and sets
 * their attribute numbers there.  A table that is not a plain table, or
 * lacks a column, is noted as the view's problem with that table (see
 * note_problem); false when rel is not a plain table.
 */
static bool
find_side_columns(FsView *view, FsTableKind kind, Relation rel)
{
	const char *nsp = kind == FS_TABLE_OFFLINE ? "fstore_offline" : "fstore_stream";
	TupleDesc	td = RelationGetDescr(rel);
	int			i;

	if (rel->rd_rel->relkind != RELKIND_RELATION)
	{
		note_problem(view, kind, ERRCODE_WRONG_OBJECT_TYPE,
					 psprintf("\"%s.%s\" is not a table", nsp, view->name));
		return false;
	}
	for (i = 0; i < view->ncols; i++)
	{
		FsColumn   *c = &view->cols[i];
		AttrNumber	att = find_attnum(td, c->name);

		if (kind == FS_TABLE_OFFLINE)
			c->offline_attnum = att;
		else
			c->stream_attnum = att;
		if (att == InvalidAttrNumber)
			note_problem(view, kind, ERRCODE_UNDEFINED_COLUMN,
						 psprintf("column \"%s\" of table \"%s.%s\" does not exist",
								  c->name, nsp, view->name));
	}
	return true;
}

/* Notes a column type of the offline or stream table that does not match. */
static void
check_side_types(FsView *view, FsTableKind kind, TupleDesc td)
{
	int			code;
	char	   *msg;

	if ((kind == FS_TABLE_OFFLINE ? view->offline_problem : view->stream_problem) != NULL)
		return;					/* one problem is enough */
	msg = table_mismatch(view, kind, td, &code);
	if (msg)
		note_problem(view, kind, code, msg);
}

/* Fills the offline side: columns, created_at and the history index. */
static void
load_offline(FsView *view, Oid nsp)
{
	Relation	rel;
	TupleDesc	td;
	List	   *indexes;
	ListCell   *lc;
	int			i;

	rel = open_view_table(view, nsp, "offline", &view->offline_relid);
	if (!find_side_columns(view, FS_TABLE_OFFLINE, rel))
	{
		table_close(rel, AccessShareLock);
		return;
	}
	td = RelationGetDescr(rel);
	view->offline_natts = td->natts;
	view->created_at_attnum = find_attnum(td, "created_at");
	if (view->created_at_attnum == InvalidAttrNumber)
		note_problem(view, FS_TABLE_OFFLINE, ERRCODE_UNDEFINED_COLUMN,
					 psprintf("column \"created_at\" of table \"fstore_offline.%s\" does not exist",
							  view->name));
	check_side_types(view, FS_TABLE_OFFLINE, td);
	if (view->offline_problem)
	{
		table_close(rel, AccessShareLock);
		return;
	}

	view->history_relid = InvalidOid;
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		bool		ok = idx->rd_rel->relam == BTREE_AM_OID &&
			idx->rd_index->indnkeyatts >= view->nkeys + 1 &&
			heap_attisnull(idx->rd_indextuple, Anum_pg_index_indpred, NULL) &&
			heap_attisnull(idx->rd_indextuple, Anum_pg_index_indexprs, NULL);

		for (i = 0; ok && i < view->nkeys; i++)
			ok = idx->rd_index->indkey.values[i] == view->cols[i].offline_attnum;
		if (ok)
			ok = idx->rd_index->indkey.values[view->nkeys] ==
				view->cols[view->ts_col].offline_attnum;
		if (ok)
		{
			Oid			leop;

			for (i = 0; i < view->nkeys; i++)
			{
				Oid			eqop = get_opfamily_member(idx->rd_opfamily[i],
													   idx->rd_opcintype[i],
													   idx->rd_opcintype[i],
													   BTEqualStrategyNumber);

				view->hist_key_opcintype[i] = idx->rd_opcintype[i];
				view->hist_key_eq_proc[i] = get_opcode(eqop);
			}
			leop = get_opfamily_member(idx->rd_opfamily[view->nkeys],
									   idx->rd_opcintype[view->nkeys],
									   idx->rd_opcintype[view->nkeys],
									   BTLessEqualStrategyNumber);
			view->hist_ts_le_proc = get_opcode(leop);
			view->history_relid = RelationGetRelid(idx);
		}
		index_close(idx, AccessShareLock);
		if (OidIsValid(view->history_relid))
			break;
	}
	list_free(indexes);
	table_close(rel, AccessShareLock);
}

/* Fills the queue table side (the queue may have been dropped by hand). */
static void
load_stream(FsView *view, Oid nsp)
{
	Relation	rel;

	view->stream_relid = get_relname_relid(view->name, nsp);
	if (!OidIsValid(view->stream_relid))
		return;
	rel = table_open(view->stream_relid, AccessShareLock);
	if (find_side_columns(view, FS_TABLE_STREAM, rel))
	{
		view->stream_natts = RelationGetDescr(rel)->natts;
		check_side_types(view, FS_TABLE_STREAM, RelationGetDescr(rel));
	}
	table_close(rel, AccessShareLock);
}

/* Text array datum to a palloc'd array of C strings (current context). */
static char **
text_array_to_cstrings(Datum d, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **out;
	int			i;

	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, n);
	out = palloc(sizeof(char *) * Max(*n, 1));
	for (i = 0; i < *n; i++)
		out[i] = TextDatumGetCString(elems[i]);
	return out;
}

/* Oid array datum to a palloc'd array (NULL elements: InvalidOid). */
static Oid *
oid_array(Datum d, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	Oid		   *out;
	int			i;

	deconstruct_array(DatumGetArrayTypeP(d), OIDOID, sizeof(Oid), true,
					  TYPALIGN_INT, &elems, &nulls, n);
	out = palloc(sizeof(Oid) * Max(*n, 1));
	for (i = 0; i < *n; i++)
		out[i] = nulls[i] ? InvalidOid : DatumGetObjectId(elems[i]);
	return out;
}

/* Reads a view's catalog rows and its tables' shapes; NULL if unknown. */
static FsView *
load_view(const char *name, bool fresh_snapshot, bool *complete)
{
	/*
	 * Every operator qualified and every column cast to the type read here,
	 * whatever search_path the session has and whatever a user did to the
	 * catalogs' column types.
	 */
	static const char *sql =
		"SELECT v.view_id::pg_catalog.int8, v.entity::pg_catalog.text,"
		"       v.ttl::pg_catalog.interval,"
		"       (v.source IS NOT NULL OR v.source_query IS NOT NULL)::pg_catalog.bool,"
		"       e.key_columns::pg_catalog.text[],"
		"       e.key_type::pg_catalog.text::pg_catalog.regtype::pg_catalog.oid,"
		"       ARRAY(SELECT f.name::pg_catalog.text FROM fstore.features f"
		"              WHERE f.view_name OPERATOR(pg_catalog.=) v.name"
		"              ORDER BY f.position),"
		"       ARRAY(SELECT pg_catalog.to_regtype(f.type::pg_catalog.text)::pg_catalog.oid"
		"               FROM fstore.features f"
		"              WHERE f.view_name OPERATOR(pg_catalog.=) v.name"
		"              ORDER BY f.position),"
		"       ARRAY(SELECT pg_catalog.to_regtype(t)::pg_catalog.oid"
		"               FROM pg_catalog.unnest(e.key_types::pg_catalog.text[]) AS t)"
		"  FROM fstore.feature_views v"
		"  JOIN fstore.entities e ON e.name OPERATOR(pg_catalog.=) v.entity"
		" WHERE v.name OPERATOR(pg_catalog.=) $1";
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	FsView	   *view;
	MemoryContext old;
	HeapTuple	tup;
	TupleDesc	td;
	bool		isnull;
	char	  **keys;
	char	  **feats;
	Oid		   *ftypes;
	Oid		   *ktypes;
	int			nkeys;
	int			nfeats;
	int			nftypes;
	int			nktypes;
	int			i;

	args[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* not read-only: a new snapshot (in READ COMMITTED), see lookup_view */
	if (SPI_execute_with_args(sql, 1, argtypes, args, NULL, !fresh_snapshot, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read catalog of feature view \"%s\"", name);
	*complete = true;
	if (SPI_processed == 0)
	{
		SPI_finish();
		return NULL;
	}
	tup = SPI_tuptable->vals[0];
	td = SPI_tuptable->tupdesc;

	old = MemoryContextSwitchTo(meta_cxt);
	view = palloc0(sizeof(FsView));
	view->name = pstrdup(name);
	view->view_id = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
	view->entity = TextDatumGetCString(SPI_getbinval(tup, td, 2, &isnull));
	{
		Datum		ttl = SPI_getbinval(tup, td, 3, &isnull);

		view->has_ttl = !isnull;
		if (!isnull)
			view->ttl = *DatumGetIntervalP(ttl);
	}
	view->has_source = DatumGetBool(SPI_getbinval(tup, td, 4, &isnull));
	keys = text_array_to_cstrings(SPI_getbinval(tup, td, 5, &isnull), &nkeys);
	view->key_type = DatumGetObjectId(SPI_getbinval(tup, td, 6, &isnull));
	feats = text_array_to_cstrings(SPI_getbinval(tup, td, 7, &isnull), &nfeats);
	ftypes = oid_array(SPI_getbinval(tup, td, 8, &isnull), &nftypes);
	ktypes = oid_array(SPI_getbinval(tup, td, 9, &isnull), &nktypes);

	if (nkeys < 1 || nkeys > FS_MAX_KEYS || nktypes != nkeys || nftypes != nfeats)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("catalog of feature view \"%s\" is inconsistent", name),
				 errdetail("Its entity has %d key columns and %d key types; it has %d features and %d feature types.",
						   nkeys, nktypes, nfeats, nftypes)));
	view->nkeys = nkeys;
	view->nfeatures = nfeats;
	view->ncols = nkeys + nfeats + 1;
	view->ts_col = view->ncols - 1;
	view->cols = palloc0(sizeof(FsColumn) * view->ncols);
	for (i = 0; i < nkeys; i++)
	{
		view->cols[i].name = keys[i];
		view->cols[i].catalog_typid = ktypes[i];
	}
	for (i = 0; i < nfeats; i++)
	{
		view->cols[nkeys + i].name = feats[i];
		view->cols[nkeys + i].catalog_typid = ftypes[i];
	}
	view->cols[view->ts_col].name = pstrdup("event_ts");
	view->cols[view->ts_col].catalog_typid = TIMESTAMPTZOID;
	MemoryContextSwitchTo(old);
	SPI_finish();

	view->key_array_type = get_array_type(view->key_type);
	if (!OidIsValid(view->key_array_type))
		elog(ERROR, "key type %s of feature view \"%s\" has no array type",
			 format_type_be(view->key_type), name);

	/*
	 * Opening a table may wait for a transaction that changes the view; if
	 * that invalidated the metadata, stop: lookup_view reads it again.
	 */
	old = MemoryContextSwitchTo(meta_cxt);
	load_online(view, fstore_namespace("fstore_online"));
	if (meta_valid)
		load_offline(view, fstore_namespace("fstore_offline"));
	if (meta_valid)
		load_stream(view, fstore_namespace("fstore_stream"));
	MemoryContextSwitchTo(old);
	*complete = meta_valid;
	return view;
}

/* Cached view by name, or NULL when no such view exists. */
static FsView *
lookup_view(const char *name)
{
	FsViewEntry *e;
	FsView	   *view;
	char		key[NAMEDATALEN];
	uint64		generation;
	int			attempt;
	bool		complete;

	if (strlen(name) >= NAMEDATALEN)
	{
		catalog_ensure_valid();
		return NULL;
	}
	strlcpy(key, name, NAMEDATALEN);
	for (attempt = 0;; attempt++)
	{
		catalog_ensure_valid();
		e = hash_search(views_by_name, key, HASH_FIND, NULL);
		if (e)
			return e->view;
		generation = meta_generation;
		view = load_view(name, attempt > 0, &complete);
		if (meta_valid && generation == meta_generation)
			break;

		/*
		 * Loading processed invalidations: opening the view's tables waited
		 * for a transaction that changed them (fs_alter_feature_view, a
		 * rename, a drop), and the catalogs were read before it committed.
		 * Read them again, with a new snapshot, so that a statement that
		 * waited sees the view as that transaction left it (in READ
		 * COMMITTED; at higher isolation levels the transaction's snapshot
		 * stays, and the checks after locking report a changed view).
		 * Should the view keep changing, the last complete load is used
		 * for this transaction only, not cached.
		 */
		if (attempt >= 3 && complete)
			return view;
		if (attempt >= 10)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("feature view \"%s\" changed while it was being read", name),
					 errhint("Try again.")));
	}
	if (view == NULL)
		return NULL;
	e = hash_search(views_by_name, key, HASH_ENTER, NULL);
	e->view = view;
	watch_relid(view->online_relid, view);
	watch_relid(view->offline_relid, NULL);
	watch_relid(view->stream_relid, NULL);
	watch_relid(view->key_typrelid, NULL);
	return view;
}

FsView *
fs_catalog_find_view(const char *name)
{
	return lookup_view(name);
}

FsView *
fs_catalog_view(const char *name)
{
	FsView	   *view = lookup_view(name);

	if (view == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("feature view \"%s\" does not exist", name)));
	return view;
}

char *
fs_catalog_view_name_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("feature view name must not be NULL")));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* The view whose online table is online_relid, or NULL. */
FsView *
fs_catalog_view_by_relid(Oid online_relid)
{
	FsRelidEntry *e;
	char	   *relname;

	catalog_ensure_valid();
	e = hash_search(watched_relids, &online_relid, HASH_FIND, NULL);
	if (e && e->view)
		return e->view;
	if (get_rel_namespace(online_relid) != fstore_namespace("fstore_online"))
		return NULL;
	relname = get_rel_name(online_relid);
	if (relname == NULL)
		return NULL;
	return lookup_view(relname);
}

/* Reads a service's catalog rows; NULL if unknown. */
static FsService *
load_service(const char *name, Oid rowtype, Oid typrelid)
{
	static const char *sql01 =
		"SELECT sf.view_name::pg_catalog.text, sf.feature::pg_catalog.text,"
		"       NULL::pg_catalog.text"
		"  FROM fstore.service_features sf"
		" WHERE sf.service OPERATOR(pg_catalog.=) $1 ORDER BY sf.position";
	/* with the features of aggregation views (their entity in column 3) */
	static const char *sql02 =
		"SELECT x.v, x.f, x.e FROM ("
		" SELECT sf.position AS p, sf.view_name::pg_catalog.text AS v,"
		"        sf.feature::pg_catalog.text AS f, NULL::pg_catalog.text AS e"
		"   FROM fstore.service_features sf"
		"  WHERE sf.service OPERATOR(pg_catalog.=) $1"
		" UNION ALL"
		" SELECT sa.position, sa.view_name, sa.feature::pg_catalog.text, a.entity"
		"   FROM fstore.service_aggregations sa"
		"   JOIN fstore.aggregation_views a ON a.name OPERATOR(pg_catalog.=) sa.view_name"
		"  WHERE sa.service OPERATOR(pg_catalog.=) $1) x ORDER BY x.p";
	const char *sql;
	static const char *svc_sql =
		"SELECT s.request_type::pg_catalog.oid, d.n::pg_catalog.text, d.e"
		"  FROM fstore.feature_services s"
		"  LEFT JOIN LATERAL ROWS FROM (pg_catalog.unnest(s.derived),"
		"       pg_catalog.unnest(s.derived_exprs)) WITH ORDINALITY AS d(n, e, i) ON true"
		" WHERE s.name OPERATOR(pg_catalog.=) $1 ORDER BY d.i";
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	FsService  *svc;
	char	  **vnames;
	char	  **fnames;
	char	  **anames;			/* entity of a feature of an aggregation view */
	int			n;
	int			nd;
	int			i;
	MemoryContext old;
	Oid			request_type = InvalidOid;
	char	  **dnames = NULL;
	char	  **dexprs = NULL;
	bool		has_svc_row;
	HeapTuple	tup;

	args[0] = CStringGetTextDatum(name);
	sql = OidIsValid(get_relname_relid("service_aggregations", fstore_namespace("fstore"))) ?
		sql02 : sql01;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(sql, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read catalog of feature service \"%s\"", name);
	n = (int) SPI_processed;
	if (n == 0)
	{
		SPI_finish();
		return NULL;
	}
	old = MemoryContextSwitchTo(meta_cxt);
	vnames = palloc(sizeof(char *) * n);
	fnames = palloc(sizeof(char *) * n);
	anames = palloc(sizeof(char *) * n);
	for (i = 0; i < n; i++)
	{
		vnames[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		fnames[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		anames[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);
	}
	MemoryContextSwitchTo(old);
	nd = 0;
	/* the catalogs of 0.1 (before ALTER EXTENSION UPDATE) have neither */
	has_svc_row = get_attnum(get_relname_relid("feature_services", fstore_namespace("fstore")),
							 "derived_exprs") != InvalidAttrNumber;
	if (has_svc_row &&
		SPI_execute_with_args(svc_sql, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read catalog of feature service \"%s\"", name);
	if (has_svc_row && SPI_processed > 0)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			request_type = DatumGetObjectId(d);
		old = MemoryContextSwitchTo(meta_cxt);
		dnames = palloc(sizeof(char *) * SPI_processed);
		dexprs = palloc(sizeof(char *) * SPI_processed);
		for (i = 0; i < (int) SPI_processed; i++)
		{
			char	   *dn = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

			if (dn == NULL)
				continue;
			dnames[nd] = dn;
			dexprs[nd++] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);
		}
		MemoryContextSwitchTo(old);
	}
	SPI_finish();

	old = MemoryContextSwitchTo(meta_cxt);
	svc = palloc0(sizeof(FsService));
	svc->name = pstrdup(name);
	svc->rowtype = rowtype;
	svc->typrelid = typrelid;
	svc->views = palloc0(sizeof(FsView *) * n);
	svc->out = palloc0(sizeof(FsServiceColumn) * n);
	svc->nout = n;
	svc->view_entity = palloc0(sizeof(int) * n);
	svc->entity_view = palloc0(sizeof(FsView *) * n);
	svc->keymap = palloc0(sizeof(AttrNumber[FS_MAX_KEYS]) * n);
	svc->aggviews = palloc0(sizeof(char *) * n);
	svc->nderived = nd;
	svc->derived_names = dnames;
	svc->derived_exprs = dexprs;
	MemoryContextSwitchTo(old);

	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(rowtype));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", rowtype);
	svc->owner = ((Form_pg_type) GETSTRUCT(tup))->typowner;
	ReleaseSysCache(tup);

	for (i = 0; i < n; i++)
	{
		FsView	   *view;
		int			v;
		int			c;

		/* a feature of an aggregation view: read by aggregate.c */
		svc->out[i].agg = -1;
		if (anames[i] != NULL)
		{
			for (v = 0; v < svc->naggviews; v++)
				if (strcmp(svc->aggviews[v], vnames[i]) == 0)
					break;
			if (v == svc->naggviews)
				svc->aggviews[svc->naggviews++] = vnames[i];
			svc->out[i].view = -1;
			svc->out[i].agg = v;
			svc->out[i].feature = fnames[i];
			continue;
		}
		view = fs_catalog_view(vnames[i]);

		for (v = 0; v < svc->nviews; v++)
			if (svc->views[v] == view)
				break;
		if (v == svc->nviews)
		{
			int			e;

			svc->views[svc->nviews++] = view;
			for (e = 0; e < svc->nentities; e++)
				if (strcmp(svc->entity_view[e]->entity, view->entity) == 0)
					break;
			if (e == svc->nentities)
				svc->entity_view[svc->nentities++] = view;
			svc->view_entity[v] = e;
		}
		for (c = view->nkeys; c < view->nkeys + view->nfeatures; c++)
			if (strcmp(view->cols[c].name, fnames[i]) == 0)
				break;
		if (c == view->nkeys + view->nfeatures)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("feature \"%s\" of feature service \"%s\" does not exist in feature view \"%s\"",
							fnames[i], name, vnames[i])));
		svc->out[i].view = v;
		svc->out[i].col = c;
	}
	/* the key forms of fs_get_many: one entity, with a feature view */
	svc->single_entity = svc->nentities == 1;
	for (i = 0; i < n; i++)
		if (anames[i] != NULL && svc->nentities == 1 &&
			strcmp(anames[i], svc->entity_view[0]->entity) != 0)
			svc->single_entity = false;

	/* the request columns, and where each entity's keys are among them */
	if (OidIsValid(request_type))
	{
		TupleDesc	rd = lookup_rowtype_tupdesc(request_type, -1);
		int			e;

		int			a;

		svc->request_type = request_type;
		svc->request_array_type = get_array_type(request_type);
		/* a request type taken over from a dropped service has dropped columns */
		svc->nreqatts = rd->natts;
		svc->req_live = MemoryContextAlloc(meta_cxt, sizeof(AttrNumber) * Max(rd->natts, 1));
		svc->nkeys = 0;
		for (a = 0; a < rd->natts; a++)
			if (!TupleDescAttr(rd, a)->attisdropped)
				svc->req_live[svc->nkeys++] = a;
		for (e = 0; e < svc->nentities; e++)
		{
			FsView	   *view = svc->entity_view[e];
			int			k;

			for (k = 0; k < view->nkeys; k++)
			{
				int			j;

				for (j = 0; j < svc->nkeys; j++)
					if (strcmp(NameStr(TupleDescAttr(rd, svc->req_live[j])->attname),
							   view->cols[k].name) == 0)
						break;
				a = j < svc->nkeys ? svc->req_live[j] : 0;
				if (j == svc->nkeys || TupleDescAttr(rd, a)->atttypid != view->cols[k].typid)
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("request type %s of feature service \"%s\" does not match key column \"%s\" of feature view \"%s\"",
									format_type_be(request_type), name,
									view->cols[k].name, view->name),
							 errhint("Create the feature service again.")));
				svc->keymap[e][k] = j;
			}
		}
		ReleaseTupleDesc(rd);
	}
	else
	{
		int			k;

		/* a service without a request type (older catalogs): one entity */
		if (svc->nentities != 1)
			elog(ERROR, "feature service \"%s\" has no request type", name);
		svc->nkeys = svc->views[0]->nkeys;
		for (k = 0; k < svc->nkeys; k++)
			svc->keymap[0][k] = k;
	}
	return svc;
}

void
fs_catalog_target(Oid rowtype, FsView **view, FsService **service)
{
	FsTargetEntry *e;
	Oid			typrelid;
	char		relkind;
	char	   *relname;
	FsView	   *v = NULL;
	FsService  *s = NULL;
	uint64		generation;

	catalog_ensure_valid();
	e = hash_search(targets_by_type, &rowtype, HASH_FIND, NULL);
	if (e)
	{
		*view = e->view;
		*service = e->service;
		return;
	}

	typrelid = OidIsValid(rowtype) ? get_typ_typrelid(rowtype) : InvalidOid;
	if (!OidIsValid(typrelid) ||
		get_rel_namespace(typrelid) != fstore_namespace("fstore_online"))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("type %s is not the row type of a feature view or feature service",
						OidIsValid(rowtype) ? format_type_be(rowtype) : "unknown"),
				 errhint("Pass NULL::fstore_online.<view or service> as the first argument.")));
	relkind = get_rel_relkind(typrelid);
	relname = get_rel_name(typrelid);
	generation = meta_generation;
	if (relkind == RELKIND_RELATION)
	{
		v = lookup_view(relname);
		if (v == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("feature view \"%s\" does not exist", relname)));
	}
	else
	{
		s = load_service(relname, rowtype, typrelid);
		if (s == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("feature service \"%s\" does not exist", relname)));
	}

	*view = v;
	*service = s;
	if (generation != meta_generation)
		return;					/* see lookup_view */
	e = hash_search(targets_by_type, &rowtype, HASH_ENTER, NULL);
	e->view = v;
	e->service = s;
	watch_relid(typrelid, v);
}

/*
 * Saved plans of the internal statements, keyed by the statement's address
 * (callers pass string constants).  The plan cache revalidates them after
 * DDL on the tables they use.
 */
static SPIPlanPtr
internal_plan(const char *sql, int nargs, Oid *argtypes)
{
	static const char *keys[32];
	static SPIPlanPtr plans[32];
	static int	nplans = 0;
	SPIPlanPtr	plan;
	int			i;

	for (i = 0; i < nplans; i++)
		if (keys[i] == sql)
			return plans[i];
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare internal statement: %s",
			 SPI_result_code_string(SPI_result));
	if (nplans == lengthof(plans))
		return plan;			/* not kept: used once, freed with SPI */
	SPI_keepplan(plan);
	keys[nplans] = sql;
	plans[nplans++] = plan;
	return plan;
}

uint64
fs_catalog_exec_as_owner(const char *sql, int nargs, Oid *argtypes,
						 Datum *values, int expected)
{
	uint64		processed;
	Oid			save_user;
	int			save_sec;
	Oid			owner;
	HeapTuple	tup;

	catalog_ensure_valid();
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(feature_views_relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", feature_views_relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(internal_plan(sql, nargs, argtypes), values, NULL,
						 false, 0) != expected)
		elog(ERROR, "internal statement failed: %s", sql);
	processed = SPI_processed;
	SPI_finish();
	SetUserIdAndSecContext(save_user, save_sec);
	return processed;
}

void
fs_catalog_lock_view_writers(FsView *view)
{
	LockDatabaseObject(fs_catalog_views_relid(), (Oid) view->view_id, 0,
					   ExclusiveLock);
}

/*
 * Statement trigger on the fstore.* catalogs: makes every backend reload
 * its metadata once this transaction commits (and this one at once).
 */
Datum
fs_catalog_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fstore._catalog_changed() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
