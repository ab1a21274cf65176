/*
 * parse.c
 *		Safe parsing of user-given column definition lists.
 *
 * fs_create_entity and fs_create_feature_view take column lists as text
 * ('doc_id bigint', 'views_7d int, ctr real').  Rather than splicing that
 * text into DDL, we run it through the server's own grammar inside a
 * CREATE TABLE wrapper, accept only plain "name type" items, and hand back
 * names and resolved types; the DDL is then generated from those, quoted.
 * Anything else (constraints, defaults, a second statement) is refused.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "access/htup_details.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "catalog/metadata.h"

PG_FUNCTION_INFO_V1(fs_parse_columns);
PG_FUNCTION_INFO_V1(fs_type_sql);

#define PARSE_WRAPPER_TABLE "fstore_column_list"

static void
invalid_list(const char *defs, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("invalid column definition list \"%s\"", defs),
			 errdetail("%s", detail),
			 errhint("Write a comma-separated list of \"name type\" items, for example 'doc_id bigint, ctr real'.")));
}

/*
 * Parses prefix + text + suffix with the server's grammar.  A syntax error
 * is reported against the user's text (what: "column definition list",
 * "query"), with the position in it, never against the wrapper the user
 * did not write.  The text starts and ends a line of its own, so a
 * trailing "-- comment" cannot swallow the wrapper's end.
 */
List *
fs_parse_wrapped(const char *prefix, const char *text, const char *suffix,
				 const char *what)
{
	MemoryContext old = CurrentMemoryContext;
	StringInfoData sql;
	List	   *volatile stmts = NIL;
	int			skip;

	initStringInfo(&sql);
	if (prefix[0] != '\0')
		appendStringInfo(&sql, "%s\n", prefix);
	skip = pg_mbstrlen(sql.data);
	appendStringInfoString(&sql, text);
	if (suffix[0] != '\0')
		appendStringInfo(&sql, "\n%s", suffix);

	PG_TRY();
	{
		stmts = raw_parser(sql.data, RAW_PARSE_DEFAULT);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			pos;
		int			len = pg_mbstrlen(text);

		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		FlushErrorState();
		if (edata->sqlerrcode != ERRCODE_SYNTAX_ERROR)
			ReThrowError(edata);
		pos = edata->cursorpos - skip;
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("invalid %s \"%s\"", what, text),
				 pos >= 1 && pos <= len ?
				 errdetail("%s, at character %d of the %s.", edata->message, pos, what) :
				 errdetail("%s, at the end of the %s.", edata->message, what)));
	}
	PG_END_TRY();
	return stmts;
}

/* Namespace of a type. */
static Oid
type_namespace(Oid typid)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	Oid			nsp;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	nsp = ((Form_pg_type) GETSTRUCT(tup))->typnamespace;
	ReleaseSysCache(tup);
	return nsp;
}

/* Formats a type for generated DDL: qualified unless it is built in. */
char *
fs_format_type_sql(Oid typid, int32 typmod)
{
	Oid			elem = get_element_type(typid);
	Oid			nsp = type_namespace(OidIsValid(elem) ? elem : typid);
	bits16		flags = FORMAT_TYPE_TYPEMOD_GIVEN;

	if (nsp != PG_CATALOG_NAMESPACE)
		flags |= FORMAT_TYPE_FORCE_QUALIFY;
	return format_type_extended(typid, typmod, flags);
}

/* fstore._type_sql(typid, typmod) */
Datum
fs_type_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(fs_format_type_sql(PG_GETARG_OID(0), PG_GETARG_INT32(1))));
}

/*
 * fstore._parse_columns(defs text) returns one row per column:
 * (colname, coltype, typmod, typesql, has_btree, has_hash).
 */
Datum
fs_parse_columns(PG_FUNCTION_ARGS)
{
	char	   *defs = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *stmts;
	RawStmt    *raw;
	CreateStmt *cs;
	ListCell   *lc;
	List	   *seen = NIL;

	stmts = fs_parse_wrapped("CREATE TABLE " PARSE_WRAPPER_TABLE " (", defs, ")",
							 "column definition list");

	if (list_length(stmts) != 1)
		invalid_list(defs, "The list must not contain a semicolon or another statement.");
	raw = linitial_node(RawStmt, stmts);
	if (!IsA(raw->stmt, CreateStmt))
		invalid_list(defs, "The list is not a list of columns.");
	cs = (CreateStmt *) raw->stmt;
	if (cs->relation->schemaname != NULL ||
		strcmp(cs->relation->relname, PARSE_WRAPPER_TABLE) != 0 ||
		cs->relation->relpersistence != RELPERSISTENCE_PERMANENT ||
		cs->inhRelations != NIL || cs->partbound != NULL ||
		cs->partspec != NULL || cs->ofTypename != NULL ||
		cs->constraints != NIL || cs->options != NIL ||
		cs->oncommit != ONCOMMIT_NOOP || cs->tablespacename != NULL ||
		cs->accessMethod != NULL || cs->if_not_exists)
		invalid_list(defs, "Only column names and types are allowed.");

	InitMaterializedSRF(fcinfo, 0);

	foreach(lc, cs->tableElts)
	{
		Node	   *elt = lfirst(lc);
		ColumnDef  *cd;
		Oid			typid;
		int32		typmod;
		Datum		values[6];
		bool		nulls[6] = {false};
		NameData	colname;
		ListCell   *lc2;

		if (!IsA(elt, ColumnDef))
			invalid_list(defs, "Only column names and types are allowed.");
		cd = (ColumnDef *) elt;
		if (cd->constraints != NIL || cd->raw_default != NULL ||
			cd->cooked_default != NULL || cd->collClause != NULL ||
			cd->fdwoptions != NIL || cd->compression != NULL ||
			cd->storage != 0 || cd->identity != 0 || cd->generated != 0 ||
			cd->typeName == NULL)
			invalid_list(defs, "Only column names and types are allowed.");
		foreach(lc2, seen)
		{
			if (strcmp((char *) lfirst(lc2), cd->colname) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column \"%s\" is listed more than once", cd->colname)));
		}
		seen = lappend(seen, cd->colname);

		typenameTypeIdAndMod(NULL, cd->typeName, &typid, &typmod);
		if (cd->typeName->setof || get_typtype(typid) == TYPTYPE_PSEUDO)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("column \"%s\" has pseudo-type %s",
							cd->colname, format_type_be(typid))));

		namestrcpy(&colname, cd->colname);
		values[0] = NameGetDatum(&colname);
		values[1] = ObjectIdGetDatum(typid);
		values[2] = Int32GetDatum(typmod);
		values[3] = CStringGetTextDatum(fs_format_type_sql(typid, typmod));
		values[4] = BoolGetDatum(OidIsValid(GetDefaultOpClass(typid, BTREE_AM_OID)));
		values[5] = BoolGetDatum(OidIsValid(GetDefaultOpClass(typid, HASH_AM_OID)));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
