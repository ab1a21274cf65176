/*
 * lookup_bench.c
 *		Latency of batched feature lookups, one client loop per thread.
 *
 * Each request asks for K random keys (uniform over [1, N]) and reads every
 * field of the answer, the way a ranking service would.  Modes:
 *   sql   SELECT * FROM <online table> WHERE <key> = ANY($1)   (baseline)
 *   fs    SELECT * FROM fs_get_many(NULL::<online row type>, $1)
 * Both are prepared statements with binary parameters and binary results.
 * Prints one line: mode, keys, clients, requests, p50/p95/p99/mean in ms,
 * requests per second, rows per request.
 *
 * usage: lookup_bench -d CONNINFO -m MODE -k KEYS -n REQUESTS [-c CLIENTS]
 *                     [-w WARMUP] [-N KEYSPACE] [-v VIEW] [-f NFEATURES]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#define INT8OID 20

typedef struct Options
{
	const char *conninfo;
	const char *mode;
	const char *view;
	int			keys;
	int			requests;
	int			warmup;
	int			clients;
	long		keyspace;
	int			nfeatures;
} Options;

typedef struct Client
{
	const Options *opt;
	int			id;
	double	   *lat_ms;			/* per measured request */
	long		rows;
	double		checksum;
	int			failed;
} Client;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static uint64_t
next_rand(uint64_t *s)
{
	/* xorshift64* */
	uint64_t	x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void
put_be32(char *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

static void
put_be64(char *p, uint64_t v)
{
	put_be32(p, (uint32_t) (v >> 32));
	put_be32(p + 4, (uint32_t) v);
}

/* Binary int8[] with n random keys. */
static int
make_key_array(char *buf, int n, uint64_t *seed, long keyspace)
{
	char	   *p = buf;
	int			i;

	put_be32(p, 1);				/* ndim */
	put_be32(p + 4, 0);			/* no nulls */
	put_be32(p + 8, INT8OID);
	put_be32(p + 12, n);
	put_be32(p + 16, 1);		/* lower bound */
	p += 20;
	for (i = 0; i < n; i++)
	{
		put_be32(p, 8);
		put_be64(p + 4, 1 + next_rand(seed) % keyspace);
		p += 12;
	}
	return (int) (p - buf);
}

static float
get_float4(const char *p)
{
	uint32_t	v;
	float		f;

	memcpy(&v, p, 4);
	v = ntohl(v);
	memcpy(&f, &v, 4);
	return f;
}

static void *
client_main(void *arg)
{
	Client	   *c = arg;
	const Options *o = c->opt;
	PGconn	   *conn = PQconnectdb(o->conninfo);
	char		sql[512];
	char	   *buf = malloc(20 + (size_t) o->keys * 12);
	uint64_t	seed = 0x9E3779B97F4A7C15ULL * (c->id + 1);
	int			r;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "connection failed: %s", PQerrorMessage(conn));
		c->failed = 1;
		return NULL;
	}
	if (strcmp(o->mode, "sql") == 0)
		snprintf(sql, sizeof(sql),
				 "SELECT * FROM fstore_online.%s WHERE id = ANY($1)", o->view);
	else if (strcmp(o->mode, "fs") == 0)
		snprintf(sql, sizeof(sql),
				 "SELECT * FROM fs_get_many(NULL::fstore_online.%s, $1)", o->view);
	else
	{
		fprintf(stderr, "unknown mode %s\n", o->mode);
		c->failed = 1;
		return NULL;
	}
	{
		Oid			types[1] = {1016};	/* int8[] */
		PGresult   *res = PQprepare(conn, "q", sql, 1, types);

		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			fprintf(stderr, "prepare failed: %s", PQerrorMessage(conn));
			c->failed = 1;
			return NULL;
		}
		PQclear(res);
	}

	for (r = 0; r < o->warmup + o->requests; r++)
	{
		const char *values[1];
		int			lengths[1];
		int			formats[1] = {1};
		double		t0;
		double		t1;
		PGresult   *res;
		int			nrows;
		int			nfields;
		int			i;
		int			j;

		lengths[0] = make_key_array(buf, o->keys, &seed, o->keyspace);
		values[0] = buf;
		t0 = now_ms();
		res = PQexecPrepared(conn, "q", 1, values, lengths, formats, 1);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, "query failed: %s", PQerrorMessage(conn));
			c->failed = 1;
			PQclear(res);
			break;
		}
		/* read every feature, as a ranker would */
		nrows = PQntuples(res);
		nfields = PQnfields(res);
		for (i = 0; i < nrows; i++)
			for (j = 1; j < nfields && j <= o->nfeatures; j++)
				if (!PQgetisnull(res, i, j))
					c->checksum += get_float4(PQgetvalue(res, i, j));
		t1 = now_ms();
		PQclear(res);
		if (r >= o->warmup)
		{
			c->lat_ms[r - o->warmup] = t1 - t0;
			c->rows += nrows;
		}
	}
	free(buf);
	PQfinish(conn);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	Options		o = {"", "fs", "wide", 1000, 1000, 100, 1, 1000000, 32};
	Client	   *clients;
	pthread_t  *threads;
	double	   *all;
	double		t0;
	double		wall;
	double		sum = 0;
	long		rows = 0;
	int			total;
	int			n = 0;
	int			opt;
	int			i;

	while ((opt = getopt(argc, argv, "d:m:k:n:c:w:N:v:f:")) != -1)
	{
		switch (opt)
		{
			case 'd': o.conninfo = optarg; break;
			case 'm': o.mode = optarg; break;
			case 'k': o.keys = atoi(optarg); break;
			case 'n': o.requests = atoi(optarg); break;
			case 'c': o.clients = atoi(optarg); break;
			case 'w': o.warmup = atoi(optarg); break;
			case 'N': o.keyspace = atol(optarg); break;
			case 'v': o.view = optarg; break;
			case 'f': o.nfeatures = atoi(optarg); break;
			default:
				fprintf(stderr, "usage: %s -d conninfo -m sql|fs -k keys -n requests [-c clients] [-w warmup] [-N keyspace] [-v view] [-f nfeatures]\n", argv[0]);
				return 2;
		}
	}

	clients = calloc(o.clients, sizeof(Client));
	threads = calloc(o.clients, sizeof(pthread_t));
	for (i = 0; i < o.clients; i++)
	{
		clients[i].opt = &o;
		clients[i].id = i;
		clients[i].lat_ms = calloc(o.requests, sizeof(double));
	}
	t0 = now_ms();
	for (i = 0; i < o.clients; i++)
		pthread_create(&threads[i], NULL, client_main, &clients[i]);
	for (i = 0; i < o.clients; i++)
		pthread_join(threads[i], NULL);
	wall = (now_ms() - t0) / 1000.0;

	total = o.requests * o.clients;
	all = calloc(total, sizeof(double));
	for (i = 0; i < o.clients; i++)
	{
		if (clients[i].failed)
			return 1;
		memcpy(all + n, clients[i].lat_ms, o.requests * sizeof(double));
		n += o.requests;
		rows += clients[i].rows;
	}
	qsort(all, n, sizeof(double), cmp_double);
	for (i = 0; i < n; i++)
		sum += all[i];
	/* requests/s over the measured part, estimated from the mean latency */
	printf("%-8s keys=%-5d clients=%d requests=%d p50=%.3f p95=%.3f p99=%.3f mean=%.3f rps=%.0f rows=%.0f\n",
		   o.mode, o.keys, o.clients, n,
		   all[(int) (n * 0.50)], all[(int) (n * 0.95)], all[(int) (n * 0.99)],
		   sum / n, o.clients * 1000.0 / (sum / n), (double) rows / n);
	(void) wall;
	return 0;
}
