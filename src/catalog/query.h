/*
 * query.h
 *		Checking and describing the queries callers give fstore.
 *
 * Dependency direction: part of catalog/; depends on PostgreSQL and
 * catalog/metadata.h only.
 */
#ifndef FS_QUERY_H
#define FS_QUERY_H

#include "access/tupdesc.h"

/*
 * The text of the single SELECT in query, without a trailing semicolon;
 * 42601 for several statements, 42809 for another statement, 0A000 for a
 * data-modifying WITH.
 */
extern char *fs_single_select(const char *query);

/*
 * The result columns of a query (SPI must be connected): prepared, not
 * run; 42809 unless it returns rows.  A copy, in the current context.
 */
extern TupleDesc fs_query_result_desc(const char *select, int nargs, Oid *argtypes);

#endif							/* FS_QUERY_H */
