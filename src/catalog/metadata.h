/*
 * metadata.h
 *		Backend-local metadata of feature views and feature services.
 *
 * A feature view's columns are handled in a "logical" order: the entity's
 * key columns, then the features in catalog order, then event_ts.  Each
 * FsColumn maps a logical column to its attribute number in the view's
 * online, offline and stream tables, so user changes to those tables that
 * keep the columns (dropped extra columns, added columns) are tolerated.
 *
 * The structures live in a memory context that is rebuilt after any
 * invalidation of our catalogs or of a view's tables; a pointer returned by
 * these functions stays valid until the end of the current transaction.
 *
 * Dependency direction: catalog/ (metadata, parse, guard, query, acl) is
 * the lowest part but util/: it depends on PostgreSQL and util/ only, and
 * every other part may use it.
 */
#ifndef FS_CATALOG_H
#define FS_CATALOG_H

#include "access/attnum.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
#include "utils/sortsupport.h"

/* entities have at most this many key columns */
#define FS_MAX_KEYS 16

typedef struct FsColumn
{
	char	   *name;
	Oid			catalog_typid;	/* the type fstore's catalogs give it */
	Oid			typid;			/* the online table's (checked equal) */
	int32		typmod;
	Oid			collation;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	AttrNumber	online_attnum;
	AttrNumber	offline_attnum;
	AttrNumber	stream_attnum;
	bool		has_eq;			/* eq_finfo is set (features only) */
	FmgrInfo	eq_finfo;		/* type's equality, for change detection */
} FsColumn;

typedef struct FsView
{
	int64		view_id;
	char	   *name;
	char	   *entity;
	Oid			online_relid;
	Oid			offline_relid;
	Oid			stream_relid;	/* InvalidOid when the queue table is gone */
	Oid			pkey_relid;		/* primary key of the online table */
	Oid			history_relid;	/* (keys, event_ts, ...) index on offline */
	Oid			rowtype;		/* row type of the online table */
	Oid			owner;			/* owner of the online table: the view's owner */
	Oid			key_type;		/* element type of fs_get_many keys */
	Oid			key_array_type;
	Oid			key_typrelid;	/* composite key type's relation, or 0 */
	int			nkeys;
	int			nfeatures;
	int			ncols;			/* nkeys + nfeatures + 1 */
	int			ts_col;			/* logical index of event_ts (ncols - 1) */
	FsColumn   *cols;
	AttrNumber	created_at_attnum;	/* in the offline table */
	int			online_natts;
	int			offline_natts;
	int			stream_natts;
	/* key handling, from the online primary key's operator classes */
	SortSupportData key_ssup[FS_MAX_KEYS];
	Oid			key_opcintype[FS_MAX_KEYS];
	RegProcedure key_eq_proc[FS_MAX_KEYS];
	FmgrInfo	key_hash[FS_MAX_KEYS];	/* extended (64-bit, seeded) hash */
	/* history index: key equality and event_ts <= */
	RegProcedure hist_key_eq_proc[FS_MAX_KEYS];
	Oid			hist_key_opcintype[FS_MAX_KEYS];
	RegProcedure hist_ts_le_proc;
	bool		has_ttl;
	Interval	ttl;
	bool		has_source;
	/* what is wrong with the history or queue table (raised on use) */
	char	   *offline_problem;
	int			offline_problem_code;
	char	   *stream_problem;
	int			stream_problem_code;
	/* identity of the online table's storage and row layout, for the cache */
	uint32		shape;
} FsView;

/* one output feature of a service: which view, which logical column */
typedef struct FsServiceColumn
{
	int			view;			/* index into FsService.views, -1 for aggregates */
	int			col;			/* logical column in that view */
	int			agg;			/* index into FsService.aggviews, or -1 */
	char	   *feature;		/* the aggregate's name (agg >= 0) */
} FsServiceColumn;

/*
 * A feature service.  Its row type is: the request columns (the union of
 * the key columns of its views' entities, in order of first appearance),
 * the features, then the derived features.  Views of one entity share one
 * key batch at read time (entity index view_entity[v]); key column k of
 * entity e is request column keymap[e][k] (an index among the request
 * type's live columns).
 */
typedef struct FsService
{
	char	   *name;
	Oid			rowtype;
	Oid			typrelid;
	Oid			owner;			/* owner of the row type: the service's owner */
	int			nviews;
	FsView	  **views;
	int			nkeys;			/* number of request columns */
	int			nout;			/* number of features */
	FsServiceColumn *out;
	Oid			request_type;	/* fstore.<service>_request, or 0 */
	Oid			request_array_type;
	int			nreqatts;		/* attributes of the request type, dropped included */
	AttrNumber *req_live;		/* nkeys: attribute index of each request column */
	bool		single_entity;	/* today's key forms are accepted too */
	int			nentities;
	int		   *view_entity;	/* nviews */
	FsView	  **entity_view;	/* nentities: a view of that entity */
	AttrNumber (*keymap)[FS_MAX_KEYS];	/* nentities x key columns */
	int			naggviews;		/* aggregation views (aggregate.c reads them) */
	char	  **aggviews;
	int			nderived;
	char	  **derived_names;
	char	  **derived_exprs;	/* qualified SQL over the row's columns */
	/* their planned expressions, kept by service.c (NIL until used) */
	List	   *derived_planned;
	uint64		derived_planned_generation;
} FsService;

extern FsView *fs_catalog_view(const char *name);

/* A SQL function's argument naming a feature view; 22004 when it is NULL. */
extern char *fs_catalog_view_name_arg(FunctionCallInfo fcinfo, int argno);
extern FsView *fs_catalog_find_view(const char *name);	/* NULL if none */
extern FsView *fs_catalog_view_by_relid(Oid online_relid);
extern void fs_catalog_target(Oid rowtype, FsView **view, FsService **service);
extern Oid	fs_catalog_views_relid(void);

/* Parses user SQL inside a wrapper, reporting syntax errors against it (parse.c). */
extern List *fs_parse_wrapped(const char *prefix, const char *text,
							  const char *suffix, const char *what);

/* A type as text for generated DDL: qualified unless built in (parse.c). */
extern char *fs_format_type_sql(Oid typid, int32 typmod);

/*
 * Runs an internal statement on fstore's own tables as their owner, so
 * that callers need no privilege on them (metadata.c); returns the number
 * of rows it processed.  sql must be a string constant: its plan is kept,
 * found by the pointer.
 */
extern uint64 fs_catalog_exec_as_owner(const char *sql, int nargs, Oid *argtypes,
									 Datum *values, int expected);

/*
 * Raises 42804 unless rel (the view's online, offline or queue table,
 * opened and locked by the caller) still has the columns and types the
 * view's metadata says: called after taking a lock, since the metadata may
 * have been read before a concurrent ALTER TABLE committed.
 */
typedef enum FsTableKind
{
	FS_TABLE_ONLINE,
	FS_TABLE_OFFLINE,
	FS_TABLE_STREAM
} FsTableKind;
extern void fs_catalog_check_table(FsView *view, FsTableKind kind, TupleDesc td);
/* Raises 42804 for column col of one of the view's tables. */
extern void fs_catalog_type_mismatch(FsView *view, FsTableKind kind, const char *col,
									 Oid have, Oid want) pg_attribute_noreturn();

/* Locks a view against concurrent writers (fs_write, plain DML, workers). */
extern void fs_catalog_lock_view_writers(FsView *view);

/* Registers the invalidation callbacks (from _PG_init). */
extern void fs_catalog_init(void);

#endif							/* FS_CATALOG_H */
