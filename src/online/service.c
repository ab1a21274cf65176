/*
 * service.c
 *		Reads of feature services: one row per request across the views of
 *		several entities, derived (request-time) features, and the status
 *		of each lookup.
 *
 * A service's row type is its request columns (the union of its entities'
 * key columns), its features, then its derived features.  A call takes
 * either an array of fstore.<service>_request (any service) or, for a
 * service of one entity, the entity's keys as fs_get_many takes them for a
 * view.  The requests are deconstructed once; each entity gets one key
 * batch (keys.c) projected from the request columns, so a key shared by
 * many requests (the user of 1,000 candidate documents) is read once per
 * view.  Views are read with read.c's path (hot cache, then the table).
 *
 * Derived features are SQL expressions over the row's columns and now(),
 * stored as fstore wrote them out at creation: analysed with
 * search_path = pg_catalog, pg_temp and deparsed, so every name outside
 * pg_catalog is schema-qualified, and now() replaced by the column
 * fstore_now.  At read time they are analysed again (as the service's
 * owner, restricted, with the same pinned search_path), compiled once per
 * call with ExecInitExpr over a virtual slot holding the row, and
 * evaluated per row; an error in one (division by zero) is the call's
 * error.  Training sets use the same text with fstore_now bound to the
 * label's timestamp.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "aggregate/aggregate.h"
#include "cache/cache.h"
#include "catalog/acl.h"
#include "online/online.h"
#include "util/packed.h"
#include "util/util.h"

PG_FUNCTION_INFO_V1(fs_get_many_status);
PG_FUNCTION_INFO_V1(fs_derived_analyze);
PG_FUNCTION_INFO_V1(fs_invalidate_reads);

/* the column derived features see now() as */
#define FS_NOW_COLUMN "fstore_now"
#define FS_ROW_ALIAS "fstore_row"

/* ---------------------------------------------------------------------
 * Derived features: analysis
 * ---------------------------------------------------------------------
 */

/*
 * Analyses "SELECT <targets> FROM (SELECT NULL::type AS col, ...,
 * NULL::timestamptz AS fstore_now) fstore_row" and returns the Query.
 * The row's columns are built as nodes, not text.
 */
static Query *
derived_query(List *targets, int nbase, char **names, Oid *types,
			  int32 *typmods, const char *source)
{
	SelectStmt *base = makeNode(SelectStmt);
	SelectStmt *sel = makeNode(SelectStmt);
	RangeSubselect *rs = makeNode(RangeSubselect);
	RawStmt    *raw = makeNode(RawStmt);
	int			i;

	for (i = 0; i <= nbase; i++)
	{
		ResTarget  *rt = makeNode(ResTarget);
		TypeCast   *tc = makeNode(TypeCast);
		A_Const    *c = makeNode(A_Const);

		c->isnull = true;
		c->location = -1;
		tc->arg = (Node *) c;
		tc->typeName = i < nbase ? makeTypeNameFromOid(types[i], typmods[i])
			: makeTypeNameFromOid(TIMESTAMPTZOID, -1);
		tc->location = -1;
		rt->name = pstrdup(i < nbase ? names[i] : FS_NOW_COLUMN);
		rt->val = (Node *) tc;
		rt->location = -1;
		base->targetList = lappend(base->targetList, rt);
	}
	rs->subquery = (Node *) base;
	rs->alias = makeAlias(FS_ROW_ALIAS, NIL);
	sel->targetList = targets;
	sel->fromClause = list_make1(rs);
	raw->stmt = (Node *) sel;
	raw->stmt_location = 0;
	raw->stmt_len = 0;
	return parse_analyze_fixedparams(raw, source, NULL, 0, NULL);
}

typedef struct DerivedCheck
{
	const char *name;
	int			now_attno;		/* attribute number of fstore_now */
} DerivedCheck;

static void
derived_refuse(DerivedCheck *dc, int code, const char *what, const char *hint)
{
	ereport(ERROR,
			(errcode(code),
			 errmsg("derived feature \"%s\" must not contain %s", dc->name, what),
			 errhint("%s", hint)));
}

#define DERIVED_HINT "A derived feature is an expression over the service's request columns, its features and now(), calling immutable or stable functions."

static bool
derived_check_func(Oid funcid, void *context)
{
	return func_volatile(funcid) == PROVOLATILE_VOLATILE ||
		funcid == F_STATEMENT_TIMESTAMP;
}

/* Refuses what a derived feature may not contain. */
static bool
derived_check_walker(Node *node, DerivedCheck *dc)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		if (var->varattno == 0)
			derived_refuse(dc, ERRCODE_FEATURE_NOT_SUPPORTED,
						   "a reference to the whole row", DERIVED_HINT);
		if (var->varattno == dc->now_attno)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" does not exist", FS_NOW_COLUMN)));
		return false;
	}
	if (IsA(node, SQLValueFunction))
	{
		SQLValueFunction *svf = (SQLValueFunction *) node;

		if (svf->op != SVFOP_CURRENT_TIMESTAMP)
			derived_refuse(dc, ERRCODE_FEATURE_NOT_SUPPORTED,
						   "session or time values other than now()",
						   "Use now(): it is the time of the request online and the label's timestamp in training sets.");
		return false;
	}
	if (check_functions_in_node(node, derived_check_func, NULL))
		derived_refuse(dc, ERRCODE_FEATURE_NOT_SUPPORTED,
					   "volatile functions", DERIVED_HINT);
	return expression_tree_walker(node, derived_check_walker, (void *) dc);
}

/* Replaces now() (and its spellings) with a reference to fstore_now. */
static Node *
derived_now_mutator(Node *node, DerivedCheck *dc)
{
	if (node == NULL)
		return NULL;
	if ((IsA(node, FuncExpr) &&
		 (((FuncExpr *) node)->funcid == F_NOW ||
		  ((FuncExpr *) node)->funcid == F_TRANSACTION_TIMESTAMP)) ||
		(IsA(node, SQLValueFunction) &&
		 ((SQLValueFunction *) node)->op == SVFOP_CURRENT_TIMESTAMP))
		return (Node *) makeVar(1, dc->now_attno, TIMESTAMPTZOID, -1, InvalidOid, 0);
	return expression_tree_mutator(node, derived_now_mutator, (void *) dc);
}

/*
 * fstore._derived_analyze(cols name[], types text[], exprs text[])
 *	 RETURNS TABLE (pos int, name name, typesql text, expr text)
 *
 * Checks each 'expression AS name' against the columns and returns its
 * name, its type and its text as fstore stores it (qualified, with now()
 * as fstore_now).  Called by fs_create_feature_service, whose pinned
 * search_path (pg_catalog, pg_temp) is the one names resolve with.
 */
Datum
fs_derived_analyze(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *cols = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *types = PG_GETARG_ARRAYTYPE_P(1);
	ArrayType  *exprs = PG_GETARG_ARRAYTYPE_P(2);
	Datum	   *cd;
	Datum	   *td;
	Datum	   *ed;
	bool	   *cn;
	bool	   *tn;
	bool	   *en;
	int			nc;
	int			nt;
	int			ne;
	char	  **names;
	Oid		   *typids;
	int32	   *typmods;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	deconstruct_array(cols, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &cd, &cn, &nc);
	deconstruct_array(types, TEXTOID, -1, false, TYPALIGN_INT, &td, &tn, &nt);
	deconstruct_array(exprs, TEXTOID, -1, false, TYPALIGN_INT, &ed, &en, &ne);
	if (nc != nt)
		elog(ERROR, "column and type lists differ in length");
	names = palloc(sizeof(char *) * Max(nc, 1));
	typids = palloc(sizeof(Oid) * Max(nc, 1));
	typmods = palloc(sizeof(int32) * Max(nc, 1));
	for (i = 0; i < nc; i++)
	{
		names[i] = pstrdup(NameStr(*DatumGetName(cd[i])));
		parseTypeString(TextDatumGetCString(td[i]), &typids[i], &typmods[i], false);
	}

	for (i = 0; i < ne; i++)
	{
		char	   *etext;
		List	   *stmts;
		SelectStmt *sel;
		ResTarget  *rt;
		Query	   *q;
		TargetEntry *tle;
		Node	   *expr;
		DerivedCheck dc;
		PlannedStmt *pstmt;
		List	   *dpctx;
		StringInfoData src;
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		Oid			rtype;

		if (en[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("derived feature must not be NULL")));
		etext = TextDatumGetCString(ed[i]);
		stmts = fs_parse_wrapped("SELECT", etext, "", "derived feature");
		sel = list_length(stmts) == 1 ?
			(SelectStmt *) ((RawStmt *) linitial(stmts))->stmt : NULL;
		if (sel == NULL || !IsA(sel, SelectStmt) || sel->op != SETOP_NONE ||
			list_length(sel->targetList) != 1 || sel->fromClause != NIL ||
			sel->whereClause || sel->groupClause || sel->havingClause ||
			sel->windowClause || sel->sortClause || sel->limitCount ||
			sel->limitOffset || sel->lockingClause || sel->withClause ||
			sel->distinctClause || sel->intoClause || sel->valuesLists)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("invalid derived feature \"%s\"", etext),
					 errdetail("A derived feature is one expression with a name."),
					 errhint("Write 'expression AS name', for example 'clicks::real / nullif(views, 0) AS ctr'.")));
		rt = linitial_node(ResTarget, sel->targetList);
		if (rt->name == NULL || (IsA(rt->val, ColumnRef) &&
								 IsA(llast(((ColumnRef *) rt->val)->fields), A_Star)))
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("derived feature \"%s\" has no name", etext),
					 errhint("Write 'expression AS name'.")));
		dc.name = rt->name;
		dc.now_attno = nc + 1;

		initStringInfo(&src);
		appendStringInfo(&src, "SELECT\n%s", etext);
		q = derived_query(sel->targetList, nc, names, typids, typmods, src.data);
		if (q->hasSubLinks)
			derived_refuse(&dc, ERRCODE_FEATURE_NOT_SUPPORTED, "a subquery", DERIVED_HINT);
		if (q->hasAggs)
			derived_refuse(&dc, ERRCODE_FEATURE_NOT_SUPPORTED, "an aggregate function", DERIVED_HINT);
		if (q->hasWindowFuncs)
			derived_refuse(&dc, ERRCODE_FEATURE_NOT_SUPPORTED, "a window function", DERIVED_HINT);
		if (q->hasTargetSRFs)
			derived_refuse(&dc, ERRCODE_FEATURE_NOT_SUPPORTED, "a set-returning function", DERIVED_HINT);
		tle = linitial_node(TargetEntry, q->targetList);
		expr = (Node *) tle->expr;
		derived_check_walker(expr, &dc);
		if (contain_volatile_functions(expr))
			derived_refuse(&dc, ERRCODE_FEATURE_NOT_SUPPORTED, "volatile functions", DERIVED_HINT);
		rtype = exprType(expr);
		if (get_typtype(rtype) == TYPTYPE_PSEUDO)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("derived feature \"%s\" has type %s", dc.name, format_type_be(rtype)),
					 errhint("Cast the expression to a concrete type.")));
		expr = derived_now_mutator(expr, &dc);

		/* written out with the pinned search_path: qualified names */
		pstmt = makeNode(PlannedStmt);
		pstmt->rtable = q->rtable;
		dpctx = deparse_context_for_plan_tree(pstmt,
											  select_rtable_names_for_explain(q->rtable,
																			  bms_make_singleton(1)));
		values[0] = Int32GetDatum(i + 1);
		values[1] = DirectFunctionCall1(namein, CStringGetDatum(dc.name));
		values[2] = CStringGetTextDatum(fs_format_type_sql(rtype, exprTypmod(expr)));
		values[3] = CStringGetTextDatum(deparse_expression(expr, dpctx, false, false));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Derived features: evaluation
 * ---------------------------------------------------------------------
 */

typedef struct DerivedEval
{
	int			nbase;			/* request columns + features */
	int			nderived;
	TupleTableSlot *slot;		/* the row: base columns, then fstore_now */
	ExprContext *econtext;
	ExprState **states;
	FsUserContext user;
} DerivedEval;

/*
 * Planned derived expressions are kept with the service's metadata (and go
 * with it), valid while no function, operator, type or cast changed since
 * they were planned: a change of any of those bumps derived_generation
 * (the callback only counts; the planning happens at the next call).
 */
static uint64 derived_generation = 1;
static bool derived_callbacks = false;

static void
derived_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	derived_generation++;
}

/* The service's derived expressions, analysed and planned (as the owner). */
static List *
derived_plan(FsService *svc, TupleDesc outdesc, int nbase)
{
	uint64		generation = derived_generation;
	char	  **names = palloc(sizeof(char *) * nbase);
	Oid		   *types = palloc(sizeof(Oid) * nbase);
	int32	   *typmods = palloc(sizeof(int32) * nbase);
	StringInfoData src;
	List	   *stmts;
	List	   *exprs = NIL;
	Query	   *q;
	ListCell   *lc;
	MemoryContext old;
	int			i;

	if (svc->derived_planned != NIL && svc->derived_planned_generation == generation)
		return svc->derived_planned;

	for (i = 0; i < nbase; i++)
	{
		Form_pg_attribute a = TupleDescAttr(outdesc, i);

		names[i] = NameStr(a->attname);
		types[i] = a->atttypid;
		typmods[i] = a->atttypmod;
	}
	initStringInfo(&src);
	appendStringInfoString(&src, "SELECT ");
	for (i = 0; i < svc->nderived; i++)
		appendStringInfo(&src, "%s%s AS %s", i > 0 ? ", " : "",
						 svc->derived_exprs[i], quote_identifier(svc->derived_names[i]));
	stmts = raw_parser(src.data, RAW_PARSE_DEFAULT);
	q = derived_query(((SelectStmt *) linitial_node(RawStmt, stmts)->stmt)->targetList,
					  nbase, names, types, typmods, src.data);
	i = 0;
	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		Form_pg_attribute a = TupleDescAttr(outdesc, nbase + i);
		Expr	   *expr = tle->expr;

		if (exprType((Node *) expr) != a->atttypid)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("derived feature \"%s\" of feature service \"%s\" has type %s, but its row type says %s",
							svc->derived_names[i], svc->name,
							format_type_be(exprType((Node *) expr)),
							format_type_be(a->atttypid)),
					 errhint("A function it calls changed; create the feature service again.")));
		exprs = lappend(exprs, expression_planner(expr));
		i++;
	}

	/* kept in the memory of the service's metadata */
	old = MemoryContextSwitchTo(GetMemoryChunkContext(svc));
	svc->derived_planned = copyObject(exprs);
	MemoryContextSwitchTo(old);
	svc->derived_planned_generation = generation;
	return svc->derived_planned;
}

/*
 * Compiles the service's derived features for this call, as the owner.
 * The owner stays in effect until derived_end.
 */
static void
derived_begin(DerivedEval *de, FsService *svc, TupleDesc outdesc)
{
	int			nbase = svc->nkeys + svc->nout;
	TupleDesc	bd = CreateTemplateTupleDesc(nbase + 1);
	List	   *exprs;
	ListCell   *lc;
	int			i;

	de->nbase = nbase;
	de->nderived = svc->nderived;
	if (outdesc->natts != nbase + svc->nderived)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("row type of feature service \"%s\" does not match its definition",
						svc->name),
				 errhint("Create the feature service again.")));
	for (i = 0; i < nbase; i++)
	{
		Form_pg_attribute a = TupleDescAttr(outdesc, i);

		TupleDescInitEntry(bd, i + 1, NameStr(a->attname), a->atttypid, a->atttypmod, 0);
	}
	TupleDescInitEntry(bd, nbase + 1, FS_NOW_COLUMN, TIMESTAMPTZOID, -1, 0);

	if (!derived_callbacks)
	{
		CacheRegisterSyscacheCallback(PROCOID, derived_invalidate, (Datum) 0);
		CacheRegisterSyscacheCallback(OPEROID, derived_invalidate, (Datum) 0);
		CacheRegisterSyscacheCallback(TYPEOID, derived_invalidate, (Datum) 0);
		CacheRegisterSyscacheCallback(CASTSOURCETARGET, derived_invalidate, (Datum) 0);
		derived_callbacks = true;
	}

	fs_become_owner(svc->owner, &de->user);
	exprs = derived_plan(svc, outdesc, nbase);
	de->states = palloc(sizeof(ExprState *) * Max(svc->nderived, 1));
	i = 0;
	foreach(lc, exprs)
		de->states[i++] = ExecInitExpr((Expr *) lfirst(lc), NULL);
	de->slot = MakeSingleTupleTableSlot(bd, &TTSOpsVirtual);
	de->econtext = CreateStandaloneExprContext();
	de->econtext->ecxt_scantuple = de->slot;
}

/* Computes the derived features of one row into values/nulls after the base. */
static void
derived_eval(DerivedEval *de, Datum *values, bool *nulls)
{
	TupleTableSlot *slot = de->slot;
	int			j;

	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * de->nbase);
	memcpy(slot->tts_isnull, nulls, sizeof(bool) * de->nbase);
	slot->tts_values[de->nbase] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	slot->tts_isnull[de->nbase] = false;
	ExecStoreVirtualTuple(slot);
	ResetExprContext(de->econtext);
	for (j = 0; j < de->nderived; j++)
		values[de->nbase + j] = ExecEvalExprSwitchContext(de->states[j], de->econtext,
														  &nulls[de->nbase + j]);
}

static void
derived_end(DerivedEval *de)
{
	FreeExprContext(de->econtext, true);
	ExecDropSingleTupleTableSlot(de->slot);
	fs_restore_user(&de->user);
}

/* ---------------------------------------------------------------------
 * Requests and reads
 * ---------------------------------------------------------------------
 */

typedef struct SvcCall
{
	FsService  *svc;
	int			nreq;			/* requests in the call */
	Datum	   *rvals;			/* nreq x svc->nkeys request columns */
	bool	   *rnulls;
	bool	   *risnull;		/* nreq: the whole request is NULL */
	FsKeyBatch *batches;		/* per entity */
	MemoryContext cxt;
	/* aggregation views (svc_read_aggs): per view, a row per request */
	HeapTuple **aggrows;
	TupleDesc  *aggdescs;
	int		   *aggts;			/* per view: attribute number of event_ts */
	AttrNumber *aggatt;			/* per output: its attribute number, or 0 */
} SvcCall;

/* Locks the service's online tables; the metadata is refreshed after. */
static FsService *
svc_lock(Oid rowtype)
{
	FsView	   *view;
	FsService  *svc;
	int			round;
	int			v;

	/* taking the locks processes invalidations: resolve again after */
	for (round = 0; round < 2; round++)
	{
		fs_catalog_target(rowtype, &view, &svc);
		if (svc == NULL)
			elog(ERROR, "type %u is not the row type of a feature service", rowtype);
		for (v = 0; v < svc->nviews; v++)
			LockRelationOid(svc->views[v]->online_relid, AccessShareLock);
	}
	return svc;
}

/*
 * For a service whose features all come from aggregation views of one
 * entity: that entity's key array type (its keys are the request columns,
 * in order), so that the service takes the entity's keys as a view does.
 * InvalidOid otherwise.
 */
static Oid
svc_agg_key_array_type(FsService *svc)
{
	Oid			type = InvalidOid;
	char	   *entity = NULL;
	int			a;

	if (svc->nviews > 0 || svc->naggviews == 0)
		return InvalidOid;
	for (a = 0; a < svc->naggviews; a++)
	{
		char	   *e;
		Oid			t = fs_agg_key_array_type(svc->aggviews[a], &e);

		if (a > 0 && strcmp(e, entity) != 0)
			return InvalidOid;
		type = t;
		entity = e;
	}
	return type;
}

/*
 * Resolves the target, checks the keys' type and the caller's privileges,
 * and turns the keys into requests and per-entity key batches.  False if
 * the key array is NULL.
 */
static bool
svc_begin(FunctionCallInfo fcinfo, SvcCall *c)
{
	Oid			rowtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	Oid			keystype = get_fn_expr_argtype(fcinfo->flinfo, 1);
	FsService  *svc = svc_lock(rowtype);
	bool		sort = !(fs_cache_active() && fs_cache_enabled);
	Oid			aggkeys = svc_agg_key_array_type(svc);
	bool		aggform = OidIsValid(aggkeys) && keystype == aggkeys &&
		keystype != svc->request_array_type;
	ArrayType  *keys;
	int			n;
	int			e;
	int			v;

	c->svc = svc;
	if (keystype != svc->request_array_type && !aggform &&
		!(svc->single_entity && keystype == svc->views[0]->key_array_type))
	{
		Oid			want = OidIsValid(svc->request_array_type) ?
			svc->request_array_type : svc->views[0]->key_array_type;

		if (OidIsValid(aggkeys))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("keys have type %s, but feature service \"%s\" expects %s",
							OidIsValid(keystype) ? format_type_be(keystype) : "unknown",
							svc->name, format_type_be(want)),
					 errhint("Pass an array of %s, or of the entity's keys (%s).",
							 format_type_be(svc->request_type),
							 format_type_be(aggkeys))));

		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("keys have type %s, but feature service \"%s\" expects %s",
						OidIsValid(keystype) ? format_type_be(keystype) : "unknown",
						svc->name, format_type_be(want)),
				 svc->single_entity ?
				 errhint("Pass an array of %s, or of the entity's keys (%s).",
						 format_type_be(svc->request_type),
						 format_type_be(svc->views[0]->key_array_type)) :
				 errhint("Pass an array of %s, for example ARRAY[ROW(...)]::%s.",
						 format_type_be(svc->request_type),
						 format_type_be(want))));
	}

	/* privileges are checked before anything is read, cache included */
	for (v = 0; v < svc->nviews; v++)
		fs_check_select(svc->views[v]->online_relid);
	for (v = 0; v < svc->naggviews; v++)
		fs_agg_service_check(svc->aggviews[v]);

	if (PG_ARGISNULL(1))
		return false;
	keys = PG_GETARG_ARRAYTYPE_P(1);
	n = ArrayGetNItems(ARR_NDIM(keys), ARR_DIMS(keys));
	if (n > fs_max_keys_per_call)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many keys in one call: %d, the limit is %d",
						n, fs_max_keys_per_call),
				 errhint("Split the keys over several calls, or raise fstore.max_keys_per_call.")));

	c->cxt = AllocSetContextCreate(CurrentMemoryContext, "fstore service lookup",
								   ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(c->cxt);
	c->batches = palloc0(sizeof(FsKeyBatch) * svc->nentities);

	if (aggform)
	{
		/* aggregation views of one entity: its keys are the request columns */
		Oid			elemtype = get_element_type(aggkeys);
		int			nk = svc->nkeys;
		int16		typlen;
		bool		typbyval;
		char		typalign;
		Datum	   *elems;
		bool	   *nulls;

		get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
		deconstruct_array(keys, elemtype, typlen, typbyval, typalign, &elems, &nulls, &n);
		c->nreq = n;
		c->risnull = nulls;
		if (nk == 1)
		{
			c->rvals = elems;
			c->rnulls = nulls;
			return true;
		}
		c->rvals = palloc(sizeof(Datum) * nk * Max(n, 1));
		c->rnulls = palloc(sizeof(bool) * nk * Max(n, 1));
		{
			TupleDesc	kd = lookup_rowtype_tupdesc(elemtype, -1);

			if (kd->natts != nk)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("key type %s has %d attributes, but feature service \"%s\" has %d request columns",
								format_type_be(elemtype), kd->natts, svc->name, nk),
						 errhint("Create the feature service again.")));
			fs_keys_deform_rows(kd, elems, nulls, n, c->rvals, c->rnulls);
			ReleaseTupleDesc(kd);
		}
		return true;
	}
	else if (keystype != svc->request_array_type)
	{
		/* the entity's keys: they are the request columns, in order */
		fs_keys_from_array(&c->batches[0], svc->entity_view[0], keys, sort);
		c->nreq = c->batches[0].ninput;
		c->rvals = c->batches[0].in_vals;
		c->rnulls = c->batches[0].in_nulls;
		c->risnull = c->batches[0].in_isnull;
		return true;
	}
	else
	{
		int			nk = svc->nkeys;
		Datum	   *elems;
		bool	   *nulls;
		TupleDesc	td = lookup_rowtype_tupdesc(svc->request_type, -1);
		int			i;

		bool		dense;
		Datum	   *tv = NULL;
		bool	   *tn = NULL;

		if (td->natts != svc->nreqatts)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("request type %s has %d attributes, but feature service \"%s\" has %d request columns",
							format_type_be(svc->request_type), td->natts, svc->name, nk),
					 errhint("Create the feature service again.")));
		/* no dropped columns (the usual case): deform in place */
		dense = td->natts == nk;
		deconstruct_array(keys, svc->request_type, -1, false, TYPALIGN_DOUBLE,
						  &elems, &nulls, &n);
		c->nreq = n;
		c->risnull = nulls;
		c->rvals = palloc(sizeof(Datum) * nk * Max(n, 1));
		c->rnulls = palloc(sizeof(bool) * nk * Max(n, 1));
		if (dense)
			fs_keys_deform_rows(td, elems, nulls, n, c->rvals, c->rnulls);
		else
		{
			/* every attribute, then the live ones in request order */
			int			w = td->natts;

			tv = palloc(sizeof(Datum) * w * Max(n, 1));
			tn = palloc(sizeof(bool) * w * Max(n, 1));
			fs_keys_deform_rows(td, elems, nulls, n, tv, tn);
			for (i = 0; i < n; i++)
			{
				int			j;

				if (nulls[i])
				{
					memset(&c->rnulls[i * nk], true, nk);
					continue;
				}
				for (j = 0; j < nk; j++)
				{
					c->rvals[i * nk + j] = tv[i * w + svc->req_live[j]];
					c->rnulls[i * nk + j] = tn[i * w + svc->req_live[j]];
				}
			}
		}
		ReleaseTupleDesc(td);

		for (e = 0; e < svc->nentities; e++)
		{
			FsView	   *ev = svc->entity_view[e];
			int			ek = ev->nkeys;
			Datum	   *kv = palloc(sizeof(Datum) * ek * Max(n, 1));
			bool	   *kn = palloc(sizeof(bool) * ek * Max(n, 1));
			int			k;

			for (i = 0; i < n; i++)
				for (k = 0; k < ek; k++)
				{
					kv[i * ek + k] = c->rvals[i * nk + svc->keymap[e][k]];
					kn[i * ek + k] = c->rnulls[i * nk + svc->keymap[e][k]];
				}
			fs_keys_build(&c->batches[e], ev, kv, kn, nulls, n, sort);
		}
	}
	return true;
}

/* A view's rows, deformed once per distinct key of its entity's batch. */
typedef struct ViewRows
{
	int			natts;			/* of the view's online table */
	Datum	   *vals;			/* ndistinct x natts */
	bool	   *nulls;
	bool	   *present;		/* ndistinct */
	TimestampTz *ts;			/* ndistinct */
	int		   *outoff;			/* per service output: its attribute offset */
} ViewRows;

/*
 * Reads the service's aggregation views at the transaction's start time
 * (now(), as fs_get_many of an aggregation view): one row per request and
 * view, through aggregate.c.
 */
static void
svc_read_aggs(SvcCall *c)
{
	FsService  *svc = c->svc;
	char	  **names;
	Oid		   *types;
	TupleDesc	rd;
	int			a;
	int			j;
	int			k;

	if (svc->naggviews == 0)
		return;
	if (!OidIsValid(svc->request_type))
		elog(ERROR, "feature service \"%s\" has no request type", svc->name);
	rd = lookup_rowtype_tupdesc(svc->request_type, -1);
	names = palloc(sizeof(char *) * Max(svc->nkeys, 1));
	types = palloc(sizeof(Oid) * Max(svc->nkeys, 1));
	for (j = 0; j < svc->nkeys; j++)
	{
		Form_pg_attribute att = TupleDescAttr(rd, svc->req_live[j]);

		names[j] = pstrdup(NameStr(att->attname));
		types[j] = att->atttypid;
	}
	ReleaseTupleDesc(rd);

	c->aggrows = palloc(sizeof(HeapTuple *) * svc->naggviews);
	c->aggdescs = palloc(sizeof(TupleDesc) * svc->naggviews);
	c->aggts = palloc(sizeof(int) * svc->naggviews);
	c->aggatt = palloc0(sizeof(AttrNumber) * Max(svc->nout, 1));
	for (a = 0; a < svc->naggviews; a++)
	{
		TupleDesc	d;

		c->aggrows[a] = fs_agg_service_read(svc->aggviews[a], c->nreq, svc->nkeys,
											names, types, c->rvals, c->rnulls,
											c->risnull,
											GetCurrentTransactionStartTimestamp(),
											&c->aggdescs[a]);
		d = c->aggdescs[a];
		c->aggts[a] = d->natts;	/* event_ts comes last */
		for (k = 0; k < svc->nout; k++)
		{
			if (svc->out[k].agg != a)
				continue;
			for (j = 0; j < d->natts; j++)
				if (strcmp(NameStr(TupleDescAttr(d, j)->attname), svc->out[k].feature) == 0)
					break;
			if (j == d->natts)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("aggregate \"%s\" of feature service \"%s\" does not exist in aggregation view \"%s\"",
								svc->out[k].feature, svc->name, svc->aggviews[a]),
						 errhint("Create the feature service again.")));
			c->aggatt[k] = j + 1;
		}
	}
}

static ViewRows *
svc_read(SvcCall *c)
{
	FsService  *svc = c->svc;
	ViewRows   *sr = palloc(sizeof(ViewRows) * svc->nviews);
	int			v;

	for (v = 0; v < svc->nviews; v++)
	{
		FsView	   *view = svc->views[v];
		FsKeyBatch *b = &c->batches[svc->view_entity[v]];
		int			n = Max(b->ndistinct, 1);
		TupleDesc	desc;
		HeapTuple  *rows = fs_online_read_rows(view, b, &desc);
		int			natts = view->online_natts;
		int			tsoff = view->cols[view->ts_col].online_attnum - 1;
		int			d;

		sr[v].natts = natts;
		sr[v].outoff = palloc(sizeof(int) * Max(svc->nout, 1));
		for (d = 0; d < svc->nout; d++)
			sr[v].outoff[d] = svc->out[d].view == v ?
				view->cols[svc->out[d].col].online_attnum - 1 : -1;
		sr[v].vals = palloc(sizeof(Datum) * natts * n);
		sr[v].nulls = palloc(sizeof(bool) * natts * n);
		sr[v].present = palloc(sizeof(bool) * n);
		sr[v].ts = palloc(sizeof(TimestampTz) * n);
		for (d = 0; d < b->ndistinct; d++)
		{
			sr[v].present[d] = rows[d] != NULL;
			if (rows[d])
			{
				heap_deform_tuple(rows[d], desc, &sr[v].vals[d * natts],
								  &sr[v].nulls[d * natts]);
				sr[v].ts[d] = DatumGetTimestampTz(sr[v].vals[d * natts + tsoff]);
			}
		}
	}
	svc_read_aggs(c);
	return sr;
}

/*
 * Fills the base columns (request columns, features) of request i; returns
 * whether any view had its key, and the newest event_ts among them.
 * rowvals/rownulls (one pointer per view) are scratch space.
 */
static bool
svc_row(SvcCall *c, ViewRows *sr, int i, Datum *values, bool *nulls,
		TimestampTz *ts, Datum **rowvals, bool **rownulls)
{
	FsService  *svc = c->svc;
	int			nk = svc->nkeys;
	bool		any = false;
	int			v;
	int			k;

	memcpy(values, &c->rvals[i * nk], sizeof(Datum) * nk);
	memcpy(nulls, &c->rnulls[i * nk], sizeof(bool) * nk);
	*ts = DT_NOBEGIN;
	/* each view's row for this request, found once */
	for (v = 0; v < svc->nviews; v++)
	{
		int			d = c->batches[svc->view_entity[v]].in_distinct[i];

		rowvals[v] = NULL;
		if (d < 0 || !sr[v].present[d])
			continue;
		rowvals[v] = &sr[v].vals[d * sr[v].natts];
		rownulls[v] = &sr[v].nulls[d * sr[v].natts];
		any = true;
		*ts = Max(*ts, sr[v].ts[d]);
	}
	/* an aggregation view has the key when it had events in its windows */
	for (v = 0; v < svc->naggviews; v++)
	{
		HeapTuple	row = c->aggrows[v][i];
		bool		isnull;
		Datum		d;

		if (row == NULL)
			continue;
		d = heap_getattr(row, c->aggts[v], c->aggdescs[v], &isnull);
		if (isnull)
			continue;
		any = true;
		*ts = Max(*ts, DatumGetTimestampTz(d));
	}
	for (k = 0; k < svc->nout; k++)
	{
		int			vi = svc->out[k].view;
		int			off;

		if (vi < 0)
		{
			HeapTuple	row = c->aggrows[svc->out[k].agg][i];

			if (row == NULL)
				nulls[nk + k] = true;
			else
				values[nk + k] = heap_getattr(row, c->aggatt[k],
											  c->aggdescs[svc->out[k].agg],
											  &nulls[nk + k]);
			continue;
		}
		off = sr[vi].outoff[k];
		if (rowvals[vi] == NULL)
		{
			nulls[nk + k] = true;
			continue;
		}
		values[nk + k] = rowvals[vi][off];
		nulls[nk + k] = rownulls[vi][off];
	}
	return any;
}

/* fs_get_many for a feature service target (called by read.c). */
Datum
fs_service_get_many(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old = CurrentMemoryContext;
	SvcCall		c;
	ViewRows   *sr;
	TupleDesc	outdesc;
	Datum	   *values;
	bool	   *nulls;
	DerivedEval de;
	Datum	  **rowvals;
	bool	  **rownulls;
	int			i;

	memset(&c, 0, sizeof(c));
	if (!svc_begin(fcinfo, &c))
	{
		MemoryContextSwitchTo(old);
		InitMaterializedSRF(fcinfo, 0);
		return (Datum) 0;
	}
	MemoryContextSwitchTo(old);
	InitMaterializedSRF(fcinfo, 0);
	MemoryContextSwitchTo(c.cxt);
	outdesc = rsinfo->setDesc;
	if (outdesc->natts != c.svc->nkeys + c.svc->nout + c.svc->nderived)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("row type of feature service \"%s\" does not match its definition",
						c.svc->name),
				 errhint("Create the feature service again.")));
	values = palloc(sizeof(Datum) * outdesc->natts);
	nulls = palloc(sizeof(bool) * outdesc->natts);
	sr = svc_read(&c);
	rowvals = palloc(sizeof(Datum *) * c.svc->nviews);
	rownulls = palloc(sizeof(bool *) * c.svc->nviews);
	if (c.svc->nderived > 0)
		derived_begin(&de, c.svc, outdesc);
	for (i = 0; i < c.nreq; i++)
	{
		TimestampTz ts;

		CHECK_FOR_INTERRUPTS();
		if (c.risnull[i])
		{
			memset(nulls, true, sizeof(bool) * outdesc->natts);
			tuplestore_putvalues(rsinfo->setResult, outdesc, values, nulls);
			continue;
		}
		(void) svc_row(&c, sr, i, values, nulls, &ts, rowvals, rownulls);
		if (c.svc->nderived > 0)
			derived_eval(&de, values, nulls);
		tuplestore_putvalues(rsinfo->setResult, outdesc, values, nulls);
	}
	if (c.svc->nderived > 0)
		derived_end(&de);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(c.cxt);
	return (Datum) 0;
}

/* fs_get_many_packed for a feature service target (called by read.c). */
Datum
fs_service_get_many_packed(FunctionCallInfo fcinfo)
{
	MemoryContext old = CurrentMemoryContext;
	SvcCall		c;
	FsPacker	pk;
	ViewRows   *sr;
	TupleDesc	outdesc;
	Datum	   *values;
	bool	   *nulls;
	const char **names;
	Oid		   *types;
	int		   *attoff;
	int			nf;
	int			nk;
	DerivedEval de;
	Datum	  **rowvals;
	bool	  **rownulls;
	bytea	   *result;
	int			i;

	memset(&c, 0, sizeof(c));
	if (!svc_begin(fcinfo, &c))
	{
		MemoryContextSwitchTo(old);
		PG_RETURN_NULL();
	}
	outdesc = lookup_rowtype_tupdesc_copy(c.svc->rowtype, -1);
	nk = c.svc->nkeys;
	nf = outdesc->natts - nk;
	if (nf != c.svc->nout + c.svc->nderived)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("row type of feature service \"%s\" does not match its definition",
						c.svc->name),
				 errhint("Create the feature service again.")));
	names = palloc(sizeof(char *) * nf);
	types = palloc(sizeof(Oid) * nf);
	attoff = palloc(sizeof(int) * nf);
	for (i = 0; i < nf; i++)
	{
		names[i] = NameStr(TupleDescAttr(outdesc, nk + i)->attname);
		types[i] = TupleDescAttr(outdesc, nk + i)->atttypid;
		attoff[i] = nk + i;
	}
	/* refuses unpackable types before anything is read */
	fs_packer_begin(&pk, old, c.nreq, nf, names, types);
	values = palloc(sizeof(Datum) * outdesc->natts);
	nulls = palloc(sizeof(bool) * outdesc->natts);
	sr = svc_read(&c);
	rowvals = palloc(sizeof(Datum *) * c.svc->nviews);
	rownulls = palloc(sizeof(bool *) * c.svc->nviews);
	if (c.svc->nderived > 0)
		derived_begin(&de, c.svc, outdesc);
	for (i = 0; i < c.nreq; i++)
	{
		TimestampTz ts;

		CHECK_FOR_INTERRUPTS();
		if (c.risnull[i] || !svc_row(&c, sr, i, values, nulls, &ts, rowvals, rownulls))
		{
			fs_packer_absent(&pk);
			continue;
		}
		if (c.svc->nderived > 0)
			derived_eval(&de, values, nulls);
		fs_packer_row(&pk, ts, values, nulls, attoff);
	}
	if (c.svc->nderived > 0)
		derived_end(&de);
	MemoryContextSwitchTo(old);
	result = fs_packer_finish(&pk);
	MemoryContextDelete(c.cxt);
	PG_RETURN_BYTEA_P(result);
}

/*
 * fs_get_many_status(row_type anyelement, keys "any")
 *	 RETURNS TABLE (request int, view_name text, status text, event_ts timestamptz)
 *
 * Why a service's values are what they are: per request (1-based, input
 * order) and view, whether the key was 'present', 'expired' (older than
 * the view's ttl), 'absent', or a 'null key' (the request or one of the
 * view's key columns NULL), with the stored row's event_ts.  Reads the
 * online tables with the statement's snapshot.
 */
Datum
fs_get_many_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old = CurrentMemoryContext;
	Oid			rowtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	FsView	   *tview;
	FsService  *tsvc;
	SvcCall		c;
	HeapTuple **rows;
	TupleDesc  *descs;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int			v;
	int			i;

	fs_catalog_target(rowtype, &tview, &tsvc);
	if (tsvc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("fs_get_many_status takes the row type of a feature service"),
				 errhint("For a feature view, fs_get_many returns each row's event_ts; a missing key comes back with NULL features and event_ts.")));
	memset(&c, 0, sizeof(c));
	if (!svc_begin(fcinfo, &c))
	{
		MemoryContextSwitchTo(old);
		InitMaterializedSRF(fcinfo, 0);
		return (Datum) 0;
	}
	MemoryContextSwitchTo(old);
	InitMaterializedSRF(fcinfo, 0);
	MemoryContextSwitchTo(c.cxt);

	rows = palloc(sizeof(HeapTuple *) * c.svc->nviews);
	descs = palloc(sizeof(TupleDesc) * c.svc->nviews);
	for (v = 0; v < c.svc->nviews; v++)
	{
		FsView	   *view = c.svc->views[v];
		FsKeyBatch *b = &c.batches[c.svc->view_entity[v]];
		Relation	rel = table_open(view->online_relid, AccessShareLock);
		int		   *which = palloc(sizeof(int) * Max(b->ndistinct, 1));
		int			d;

		for (d = 0; d < b->ndistinct; d++)
			which[d] = d;
		fs_keys_sort_subset(b, which, b->ndistinct);
		rows[v] = palloc0(sizeof(HeapTuple) * Max(b->ndistinct, 1));
		fs_online_fetch(view, rel, b, which, b->ndistinct, rows[v], GetActiveSnapshot());
		descs[v] = RelationGetDescr(rel);
		table_close(rel, NoLock);
	}
	svc_read_aggs(&c);

	for (i = 0; i < c.nreq; i++)
	{
		for (v = 0; v < c.svc->nviews; v++)
		{
			FsView	   *view = c.svc->views[v];
			int			d = c.batches[c.svc->view_entity[v]].in_distinct[i];
			Datum		values[4];
			bool		nulls[4] = {false, false, false, true};
			const char *status;

			values[0] = Int32GetDatum(i + 1);
			values[1] = CStringGetTextDatum(view->name);
			if (d < 0)
				status = "null key";
			else if (rows[v][d] == NULL)
				status = "absent";
			else
			{
				bool		isnull;
				TimestampTz ts = DatumGetTimestampTz(heap_getattr(rows[v][d],
																  view->cols[view->ts_col].online_attnum,
																  descs[v], &isnull));
				TimestampTz cutoff;

				values[3] = TimestampTzGetDatum(ts);
				nulls[3] = isnull;
				status = "present";
				if (view->has_ttl)
				{
					cutoff = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
																	 TimestampTzGetDatum(now),
																	 IntervalPGetDatum(&view->ttl)));
					if (ts < cutoff)
						status = "expired";
				}
			}
			values[2] = CStringGetTextDatum(status);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		/* aggregation views: 'present' with events in the longest window */
		for (v = 0; v < c.svc->naggviews; v++)
		{
			HeapTuple	row = c.aggrows[v][i];
			Datum		values[4];
			bool		nulls[4] = {false, false, false, true};
			const char *status;

			values[0] = Int32GetDatum(i + 1);
			values[1] = CStringGetTextDatum(c.svc->aggviews[v]);
			if (row == NULL)
				status = "null key";
			else
			{
				values[3] = heap_getattr(row, c.aggts[v], c.aggdescs[v], &nulls[3]);
				status = nulls[3] ? "absent" : "present";
			}
			values[2] = CStringGetTextDatum(status);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(c.cxt);
	return (Datum) 0;
}

/*
 * fstore._invalidate_reads(): makes every backend plan statements calling
 * fs_get_many, fs_get_many_packed or fs_get_many_status again on their
 * next use.  A prepared statement holds the row type's OID it was planned
 * with; after a service is dropped or created again under the same name,
 * planning again resolves the name to the new type (or fails cleanly if
 * there is none) instead of running with a type that no longer exists.
 */
Datum
fs_invalidate_reads(PG_FUNCTION_ARGS)
{
	ArrayType  *fns = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	Relation	rel;

	deconstruct_array(fns, REGPROCEDUREOID, sizeof(Oid), true, TYPALIGN_INT,
					  &elems, &nulls, &n);
	rel = table_open(ProcedureRelationId, AccessShareLock);
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup;

		if (nulls[i])
			continue;
		tup = SearchSysCache1(PROCOID, elems[i]);
		if (!HeapTupleIsValid(tup))
			continue;
		CacheInvalidateHeapTuple(rel, tup, NULL);
		ReleaseSysCache(tup);
	}
	table_close(rel, AccessShareLock);
	PG_RETURN_VOID();
}
