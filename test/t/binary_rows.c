/*
 * binary_rows.c
 *		Client for 012_binary_output.pl: runs each query with binary and with
 *		text results, with fstore.fast_output on and off, and checks that
 *		every field (NULL or not, length and bytes) is the same both ways.
 *		With fast_output on it also counts the server's DEBUG1 notices that
 *		say fstore encoded the rows itself.
 *
 * usage: binary_rows CONNINFO QUERY...
 * Prints one line per query and format: "<rows> rows, <n> fast" or a
 * description of the first difference; exits 1 on any difference.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

static int	fast_notices = 0;

static void
on_notice(void *arg, const char *message)
{
	(void) arg;
	if (strstr(message, "own row encoder") != NULL)
		fast_notices++;
}

static PGresult *
run(PGconn *conn, const char *setting, const char *query, int format)
{
	PGresult   *res;
	char		set[128];

	snprintf(set, sizeof(set), "SET fstore.fast_output = %s", setting);
	PQclear(PQexec(conn, set));
	res = PQexecParams(conn, query, 0, NULL, NULL, NULL, NULL, format);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "query failed: %s", PQerrorMessage(conn));
		exit(2);
	}
	return res;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	int			bad = 0;
	int			q;

	if (argc < 3)
		return 2;
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		return 2;
	}
	PQsetNoticeProcessor(conn, on_notice, NULL);
	PQclear(PQexec(conn, "SET client_min_messages = debug1"));

	for (q = 2; q < argc; q++)
	{
		int			format;

		for (format = 1; format >= 0; format--)
		{
			PGresult   *off = run(conn, "off", argv[q], format);
			PGresult   *on;
			int			fast;
			int			r;
			int			f;
			int			diff = 0;

			fast_notices = 0;
			on = run(conn, "on", argv[q], format);
			fast = fast_notices;
			if (PQntuples(on) != PQntuples(off) || PQnfields(on) != PQnfields(off))
			{
				printf("query %d format %d: %d x %d rows/fields against %d x %d\n", q - 1, format,
					   PQntuples(on), PQnfields(on), PQntuples(off), PQnfields(off));
				diff = 1;
			}
			for (r = 0; !diff && r < PQntuples(on); r++)
				for (f = 0; !diff && f < PQnfields(on); f++)
				{
					int			len = PQgetlength(on, r, f);

					if (PQfformat(on, f) != PQfformat(off, f) ||
						PQgetisnull(on, r, f) != PQgetisnull(off, r, f) ||
						len != PQgetlength(off, r, f) ||
						memcmp(PQgetvalue(on, r, f), PQgetvalue(off, r, f), len) != 0)
					{
						printf("query %d format %d: row %d field %d differs\n", q - 1, format, r, f);
						diff = 1;
					}
				}
			if (!diff)
				printf("query %d format %d: %d rows, %d fast\n", q - 1, format, PQntuples(on), fast);
			bad |= diff;
			PQclear(on);
			PQclear(off);
		}
	}
	PQfinish(conn);
	return bad;
}
