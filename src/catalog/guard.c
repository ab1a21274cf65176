/*
 * guard.c
 *		Row trigger on fstore's catalogs: a row that describes a feature
 *		view, service, training set or entity is written only by a role
 *		with the privileges of that object's owner.
 *
 * The catalogs are shared tables.  A role trusted to define features gets
 * INSERT, UPDATE and DELETE on them (docs/operations.md), which would let
 * it rewrite any other role's rows: point another owner's view at a new
 * source (that owner's rights would then read it), change its watermark,
 * add a feature its tables lack, delete its dead letters.  PostgreSQL's own
 * catalogs are protected by ownership checks in the commands that change
 * them; here the check is made per row.  The owner of a row's object is
 * the owner of what fstore created for it: the online table of a view, the
 * row type of a service, the table of a training set, the composite key
 * type of an entity.  A row whose object is gone (a drop in progress) may
 * be removed by anyone who may write the catalog.  Superusers, and fstore
 * itself (which writes its bookkeeping as the catalogs' owner), pass.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "catalog/metadata.h"

PG_FUNCTION_INFO_V1(fs_catalog_guard);

/* The owner of relation nsp.name, or InvalidOid if there is none. */
static Oid
relation_owner(const char *nspname, const char *name)
{
	Oid			nsp = get_namespace_oid(nspname, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		return InvalidOid;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* The owner of type nsp.name, or InvalidOid if there is none. */
static Oid
type_owner(const char *nspname, const char *name)
{
	Oid			nsp = get_namespace_oid(nspname, true);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(nsp))
		return InvalidOid;
	tup = SearchSysCache2(TYPENAMENSP, CStringGetDatum(name), ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	owner = ((Form_pg_type) GETSTRUCT(tup))->typowner;
	ReleaseSysCache(tup);
	return owner;
}

/* The name of the feature view with view_id, or NULL. */
static char *
view_name_by_id(int64 view_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(view_id)};
	MemoryContext caller = CurrentMemoryContext;
	char	   *name = NULL;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT name::pg_catalog.text FROM fstore.feature_views"
							  " WHERE view_id OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read fstore.feature_views");
	if (SPI_processed == 1)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (v)
			name = MemoryContextStrdup(caller, v);
	}
	SPI_finish();
	return name;
}

/* A text (or name) column of the row, or NULL. */
static char *
column_text(HeapTuple tup, TupleDesc td, const char *col)
{
	int			attnum = SPI_fnumber(td, col);

	if (attnum <= 0)
		return NULL;
	return SPI_getvalue(tup, td, attnum);
}

/* Refuses the row unless the current user has the rights of its object's owner. */
static void
check_row(const char *table, HeapTuple tup, TupleDesc td)
{
	const char *kind;
	char	   *name = NULL;
	Oid			owner = InvalidOid;

	if (strcmp(table, "feature_views") == 0 || strcmp(table, "features") == 0 ||
		strcmp(table, "materialization_runs") == 0 || strcmp(table, "dead_letters") == 0 ||
		strcmp(table, "view_state") == 0 ||
		strcmp(table, "aggregation_views") == 0 || strcmp(table, "aggregations") == 0)
	{
		kind = "feature view";
		if (strcmp(table, "feature_views") == 0 || strcmp(table, "aggregation_views") == 0)
			name = column_text(tup, td, "name");
		else if (strcmp(table, "view_state") == 0)
		{
			bool		isnull;
			int			attnum = SPI_fnumber(td, "view_id");
			Datum		d = attnum > 0 ? SPI_getbinval(tup, td, attnum, &isnull) : (Datum) 0;

			if (attnum > 0 && !isnull &&
				TupleDescAttr(td, attnum - 1)->atttypid == INT8OID)
				name = view_name_by_id(DatumGetInt64(d));
		}
		else
			name = column_text(tup, td, "view_name");
		if (name)
			owner = relation_owner("fstore_online", name);
	}
	else if (strcmp(table, "feature_services") == 0 || strcmp(table, "service_features") == 0 ||
			 strcmp(table, "service_aggregations") == 0)
	{
		kind = "feature service";
		name = column_text(tup, td, strcmp(table, "feature_services") == 0 ? "name" : "service");
		if (name)
			owner = type_owner("fstore_online", name);
	}
	else if (strcmp(table, "training_sets") == 0)
	{
		kind = "training set";
		name = column_text(tup, td, "name");
		if (name)
			owner = relation_owner("fstore_training", name);
	}
	else if (strcmp(table, "entities") == 0)
	{
		kind = "entity";
		name = column_text(tup, td, "name");
		if (name && strlen(name) + 4 < NAMEDATALEN)
			owner = type_owner("fstore", psprintf("%s_key", name));
	}
	else
		return;

	if (OidIsValid(owner) && !has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of %s \"%s\" to change its rows in fstore.%s",
						kind, name, table),
				 errdetail("Each row of fstore's catalogs belongs to the owner of the object it describes.")));
}

/*
 * fstore._catalog_guard(): BEFORE INSERT OR UPDATE OR DELETE, FOR EACH ROW,
 * on fstore's catalog tables.
 */
Datum
fs_catalog_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	td;
	const char *table;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fstore._catalog_guard() must be called as a BEFORE ROW trigger")));
	td = RelationGetDescr(trigdata->tg_relation);
	table = RelationGetRelationName(trigdata->tg_relation);

	if (!superuser())
	{
		/* the row inserted or deleted, or as it was before an update */
		check_row(table, trigdata->tg_trigtuple, td);
		/* and as an update leaves it */
		if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
			check_row(table, trigdata->tg_newtuple, td);
	}
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_newtuple);
	return PointerGetDatum(trigdata->tg_trigtuple);
}
