/*
 * lookup_bench.c
 *		Latency of batched feature lookups: fstore against its baselines.
 *
 * Each request asks for K random keys (uniform over [1, N]) and turns the
 * answer into a K x F float matrix, the way a ranking service would.
 * Modes:
 *   sql           SELECT * FROM fstore_online.<v> WHERE id = ANY($1)
 *   fs_nocache    fs_get_many, with fstore.cache_enabled = off
 *   fs            SELECT * FROM fs_get_many(NULL::fstore_online.<v>, $1)
 *   packed        SELECT fs_get_many_packed(...), decoded by fstore_packed.h
 *   feast         Feast's Postgres layout: one row per (entity, feature),
 *                 bytea values, WHERE entity_key = ANY($1)
 *   redis_hgetall Redis, one hash per key, pipelined HGETALL
 *   redis_mget    Redis, one packed 4*F-byte vector per key, one MGET
 * PostgreSQL modes use prepared statements, binary parameters and binary
 * results.  Every mode reads every value; the checksum (a sum of the
 * values' bits, independent of order) must agree between modes.
 *
 * usage: lookup_bench -m MODE -k KEYS -n REQUESTS [-c CLIENTS] [-w WARMUP]
 *          [-d CONNINFO] [-r REDIS_PORT | -R REDIS_SOCKET] [-N KEYSPACE] [-v VIEW]
 *          [-f FEATURES]
 *          [-t SECONDS: stop measuring after that long, at least 100 requests]
 *        lookup_bench -L -d CONNINFO (-r REDIS_PORT | -R REDIS_SOCKET) [-v VIEW] [-f FEATURES]
 *          loads Redis from the view's online table
 * Prints: mode keys clients requests p50 p95 p99 mean rps srvcpu checksum,
 * where rps is the requests all clients completed per second of the
 * measured part (from the first client's first measured request to the
 * last one's end) and srvcpu the server's CPU time per request in
 * microseconds (the PostgreSQL backends' or the Redis server's, read from
 * /proc/PID/schedstat, warm-up requests included): on a shared machine it
 * varies much less than the latencies, which include waits for a CPU.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "fstore_packed.h"

#define INT8OID 20
#define INT8ARRAYOID 1016
#define BYTEAARRAYOID 1001

typedef struct Options
{
	const char *conninfo;
	const char *mode;
	const char *view;
	int			redis_port;
	const char *redis_socket;	/* a Unix socket instead of the port */
	int			keys;
	int			requests;
	int			warmup;
	int			clients;
	long		keyspace;
	int			nfeatures;
	double		seconds;		/* stop measuring after this long (0: never) */
} Options;

typedef struct Client
{
	const Options *opt;
	int			id;
	int			done;			/* measured requests */
	double		start_ms;		/* of the measured part */
	double		end_ms;
	double	   *lat_ms;
	long		server_pid;		/* the PostgreSQL backend or Redis server */
	double		cpu0_ms;		/* its CPU time after connecting */
	double		cpu1_ms;		/* and at the end */
	long		issued;			/* requests sent, warm-up included */
	uint64_t	checksum;
	long		missing;
	int			failed;
} Client;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/*
 * CPU time a process of this machine has run, from /proc/PID/schedstat
 * (nanoseconds on a CPU), in ms; -1 when it cannot be read.
 */
static double
proc_cpu_ms(long pid)
{
	char		path[64];
	unsigned long long ns;
	FILE	   *f;
	int			ok;

	snprintf(path, sizeof(path), "/proc/%ld/schedstat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	ok = fscanf(f, "%llu", &ns) == 1;
	fclose(f);
	return ok ? ns / 1e6 : -1;
}

static uint64_t
next_rand(uint64_t *s)
{
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

static uint32_t
get_be32(const char *p)
{
	uint32_t	v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

static uint64_t
get_be64(const char *p)
{
	return ((uint64_t) get_be32(p) << 32) | get_be32(p + 4);
}

static float
get_float4(const char *p)
{
	uint32_t	v = get_be32(p);
	float		f;

	memcpy(&f, &v, 4);
	return f;
}

static uint64_t
float_bits(float f)
{
	uint32_t	v;

	memcpy(&v, &f, 4);
	return v;
}

/* Binary int8[] (or bytea[] of 8-byte big-endian keys, for Feast). */
static int
make_key_array(char *buf, const long *keys, int n, int as_bytea)
{
	char	   *p = buf;
	int			i;

	put_be32(p, 1);
	put_be32(p + 4, 0);
	put_be32(p + 8, as_bytea ? 17 : INT8OID);
	put_be32(p + 12, n);
	put_be32(p + 16, 1);
	p += 20;
	for (i = 0; i < n; i++)
	{
		put_be32(p, 8);
		put_be64(p + 4, (uint64_t) keys[i]);
		p += 12;
	}
	return (int) (p - buf);
}

/* Position of each requested key, for answers that come in another order. */
typedef struct KeyIndex
{
	int			size;
	long	   *key;
	int		   *pos;
} KeyIndex;

static void
keyindex_build(KeyIndex *ki, const long *keys, int n)
{
	int			i;

	memset(ki->key, 0, sizeof(long) * ki->size);
	for (i = 0; i < n; i++)
	{
		unsigned	h = (unsigned) ((uint64_t) keys[i] * 0x9E3779B97F4A7C15ULL >> 40) & (ki->size - 1);

		while (ki->key[h] != 0 && ki->key[h] != keys[i])
			h = (h + 1) & (ki->size - 1);
		ki->key[h] = keys[i];
		ki->pos[h] = i;			/* duplicates: the last position */
	}
}

static int
keyindex_find(const KeyIndex *ki, long key)
{
	unsigned	h = (unsigned) ((uint64_t) key * 0x9E3779B97F4A7C15ULL >> 40) & (ki->size - 1);

	while (ki->key[h] != 0)
	{
		if (ki->key[h] == key)
			return ki->pos[h];
		h = (h + 1) & (ki->size - 1);
	}
	return -1;
}

/* Sums the bits of a matrix; NaN marks missing values. */
static uint64_t
matrix_checksum(const float *m, int rows, int cols, long *missing)
{
	uint64_t	s = 0;
	int			i;

	for (i = 0; i < rows * cols; i++)
	{
		if (m[i] != m[i])
			(*missing)++;
		else
			s += float_bits(m[i]);
	}
	return s;
}

static PGconn *
pg_connect(Client *c, const char *sql, Oid keytype)
{
	const Options *o = c->opt;
	PGconn	   *conn = PQconnectdb(o->conninfo);
	PGresult   *res;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "connection failed: %s", PQerrorMessage(conn));
		return NULL;
	}
	if (strcmp(o->mode, "fs_nocache") == 0)
		PQclear(PQexec(conn, "SET fstore.cache_enabled = off"));
	res = PQprepare(conn, "q", sql, 1, &keytype);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "prepare failed: %s", PQerrorMessage(conn));
		return NULL;
	}
	PQclear(res);
	return conn;
}

static void *
client_main(void *arg)
{
	Client	   *c = arg;
	const Options *o = c->opt;
	int			K = o->keys;
	int			F = o->nfeatures;
	long	   *keys = malloc(sizeof(long) * K);
	float	   *m = malloc(sizeof(float) * K * F);
	char	   *buf = malloc(20 + (size_t) K * 12);
	uint64_t	seed = 0x9E3779B97F4A7C15ULL * (c->id + 1);
	PGconn	   *conn = NULL;
	redisContext *rc = NULL;
	KeyIndex	ki;
	char		sql[512];
	int			r;
	int			i;
	int			j;

	ki.size = 1;
	while (ki.size < 2 * K)
		ki.size <<= 1;
	ki.key = malloc(sizeof(long) * ki.size);
	ki.pos = malloc(sizeof(int) * ki.size);

	if (strcmp(o->mode, "sql") == 0)
		snprintf(sql, sizeof(sql), "SELECT * FROM fstore_online.%s WHERE id = ANY($1)", o->view);
	else if (strcmp(o->mode, "fs") == 0 || strcmp(o->mode, "fs_nocache") == 0)
		snprintf(sql, sizeof(sql), "SELECT * FROM fs_get_many(NULL::fstore_online.%s, $1)", o->view);
	else if (strcmp(o->mode, "packed") == 0)
		snprintf(sql, sizeof(sql), "SELECT fs_get_many_packed(NULL::fstore_online.%s, $1)", o->view);
	else if (strcmp(o->mode, "feast") == 0)
		snprintf(sql, sizeof(sql), "SELECT entity_key, feature_name, value, event_ts FROM feast_%s WHERE entity_key = ANY($1)", o->view);

	if (strncmp(o->mode, "redis", 5) == 0)
	{
		rc = o->redis_socket ? redisConnectUnix(o->redis_socket) :
			redisConnect("127.0.0.1", o->redis_port);
		if (rc == NULL || rc->err)
		{
			fprintf(stderr, "redis connection failed\n");
			c->failed = 1;
			return NULL;
		}
	}
	else
	{
		conn = pg_connect(c, sql, strcmp(o->mode, "feast") == 0 ? BYTEAARRAYOID : INT8ARRAYOID);
		if (conn == NULL)
		{
			c->failed = 1;
			return NULL;
		}
		c->server_pid = PQbackendPID(conn);
		c->cpu0_ms = proc_cpu_ms(c->server_pid);
	}

	double		start = 0;

	for (r = 0; r < o->warmup + o->requests; r++)
	{
		double		t0;
		double		t1;

		c->issued = r + 1;
		if (r == o->warmup)
			c->start_ms = start = now_ms();
		else if (r > o->warmup + 100 && o->seconds > 0 &&
				 now_ms() - start > o->seconds * 1000)
			break;

		for (i = 0; i < K; i++)
			keys[i] = 1 + (long) (next_rand(&seed) % (uint64_t) o->keyspace);
		t0 = now_ms();
		for (i = 0; i < K * F; i++)
			m[i] = __builtin_nanf("");

		if (conn)
		{
			const char *values[1];
			int			lengths[1];
			int			formats[1] = {1};
			PGresult   *res;
			int			nrows;

			lengths[0] = make_key_array(buf, keys, K, strcmp(o->mode, "feast") == 0);
			values[0] = buf;
			res = PQexecPrepared(conn, "q", 1, values, lengths, formats, 1);
			if (PQresultStatus(res) != PGRES_TUPLES_OK)
			{
				fprintf(stderr, "query failed: %s", PQerrorMessage(conn));
				c->failed = 1;
				PQclear(res);
				break;
			}
			nrows = PQntuples(res);
			if (strcmp(o->mode, "packed") == 0)
			{
				if (nrows != 1 ||
					fsp_decode_float_matrix(PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0),
											m, (size_t) K * F, __builtin_nanf("")) != K)
				{
					fprintf(stderr, "bad packed answer\n");
					c->failed = 1;
					PQclear(res);
					break;
				}
			}
			else if (strcmp(o->mode, "feast") == 0)
			{
				keyindex_build(&ki, keys, K);
				for (i = 0; i < nrows; i++)
				{
					long		key = (long) get_be64(PQgetvalue(res, i, 0));
					int			f = atoi(PQgetvalue(res, i, 1) + 1) - 1;
					int			pos = keyindex_find(&ki, key);

					if (pos >= 0 && f >= 0 && f < F && !PQgetisnull(res, i, 2))
						m[pos * F + f] = get_float4(PQgetvalue(res, i, 2));
				}
				/* duplicates in the request get the value too */
				for (i = 0; i < K; i++)
				{
					int			pos = keyindex_find(&ki, keys[i]);

					if (pos != i)
						memcpy(&m[i * F], &m[pos * F], sizeof(float) * F);
				}
			}
			else if (strcmp(o->mode, "sql") == 0)
			{
				/* rows come in index order, once per distinct key */
				keyindex_build(&ki, keys, K);
				for (i = 0; i < nrows; i++)
				{
					int			pos = keyindex_find(&ki, (long) get_be64(PQgetvalue(res, i, 0)));

					for (j = 0; j < F; j++)
						if (!PQgetisnull(res, i, j + 1))
							m[pos * F + j] = get_float4(PQgetvalue(res, i, j + 1));
				}
				for (i = 0; i < K; i++)
				{
					int			pos = keyindex_find(&ki, keys[i]);

					if (pos != i)
						memcpy(&m[i * F], &m[pos * F], sizeof(float) * F);
				}
			}
			else
			{
				/* fs_get_many: one row per key, in request order */
				for (i = 0; i < nrows && i < K; i++)
					for (j = 0; j < F; j++)
						if (!PQgetisnull(res, i, j + 1))
							m[i * F + j] = get_float4(PQgetvalue(res, i, j + 1));
			}
			PQclear(res);
		}
		else if (strcmp(o->mode, "redis_mget") == 0)
		{
			const char **argv = malloc(sizeof(char *) * (K + 1));
			size_t	   *argl = malloc(sizeof(size_t) * (K + 1));
			char	   *kb = malloc((size_t) K * 24);
			redisReply *rep;

			argv[0] = "MGET";
			argl[0] = 4;
			for (i = 0; i < K; i++)
			{
				argl[i + 1] = (size_t) snprintf(kb + i * 24, 24, "v:%ld", keys[i]);
				argv[i + 1] = kb + i * 24;
			}
			rep = redisCommandArgv(rc, K + 1, argv, argl);
			if (rep == NULL || rep->type != REDIS_REPLY_ARRAY)
			{
				fprintf(stderr, "MGET failed\n");
				c->failed = 1;
				break;
			}
			for (i = 0; i < K; i++)
				if (rep->element[i]->type == REDIS_REPLY_STRING &&
					rep->element[i]->len == (size_t) F * 4)
					memcpy(&m[i * F], rep->element[i]->str, (size_t) F * 4);
			freeReplyObject(rep);
			free(argv);
			free(argl);
			free(kb);
		}
		else
		{
			/* pipelined HGETALL */
			for (i = 0; i < K; i++)
				redisAppendCommand(rc, "HGETALL h:%ld", keys[i]);
			for (i = 0; i < K; i++)
			{
				redisReply *rep;

				if (redisGetReply(rc, (void **) &rep) != REDIS_OK)
				{
					c->failed = 1;
					break;
				}
				for (j = 0; j + 1 < (int) rep->elements; j += 2)
				{
					int			f = atoi(rep->element[j]->str + 1) - 1;

					if (f >= 0 && f < F && rep->element[j + 1]->len == 4)
						memcpy(&m[i * F + f], rep->element[j + 1]->str, 4);
				}
				freeReplyObject(rep);
			}
		}
		t1 = now_ms();
		if (r >= o->warmup)
		{
			c->lat_ms[c->done++] = t1 - t0;
			c->checksum += matrix_checksum(m, K, F, &c->missing);
		}
	}
	c->end_ms = now_ms();
	if (conn)
		c->cpu1_ms = proc_cpu_ms(c->server_pid);
	if (conn)
		PQfinish(conn);
	if (rc)
		redisFree(rc);
	free(keys);
	free(m);
	free(buf);
	return NULL;
}

/* Copies the view's online rows into Redis: a hash and a vector per key. */
static int
load_redis(const Options *o)
{
	PGconn	   *conn = PQconnectdb(o->conninfo);
	redisContext *rc = o->redis_socket ? redisConnectUnix(o->redis_socket) :
		redisConnect("127.0.0.1", o->redis_port);
	char		sql[256];
	long		n = 0;

	if (PQstatus(conn) != CONNECTION_OK || rc == NULL || rc->err)
	{
		fprintf(stderr, "load: connection failed\n");
		return 1;
	}
	PQclear(PQexec(conn, "BEGIN"));
	snprintf(sql, sizeof(sql), "DECLARE c BINARY CURSOR FOR SELECT * FROM fstore_online.%s", o->view);
	PQclear(PQexec(conn, sql));
	redisCommand(rc, "FLUSHALL");
	for (;;)
	{
		PGresult   *res = PQexec(conn, "FETCH 10000 FROM c");
		int			rows = PQntuples(res);
		int			i;
		int			j;

		if (rows == 0)
		{
			PQclear(res);
			break;
		}
		for (i = 0; i < rows; i++)
		{
			long		id = (long) get_be64(PQgetvalue(res, i, 0));
			float		vec[4096];
			const char *argv[2 + 2 * 4096];
			size_t		argl[2 + 2 * 4096];
			char		names[4096][8];
			char		hkey[32];
			char		vkey[32];

			snprintf(hkey, sizeof(hkey), "h:%ld", id);
			snprintf(vkey, sizeof(vkey), "v:%ld", id);
			argv[0] = "HSET";
			argl[0] = 4;
			argv[1] = hkey;
			argl[1] = strlen(hkey);
			for (j = 0; j < o->nfeatures; j++)
			{
				vec[j] = get_float4(PQgetvalue(res, i, j + 1));
				snprintf(names[j], 8, "f%d", j + 1);
				argv[2 + 2 * j] = names[j];
				argl[2 + 2 * j] = strlen(names[j]);
				argv[3 + 2 * j] = (const char *) &vec[j];
				argl[3 + 2 * j] = 4;
			}
			redisAppendCommandArgv(rc, 2 + 2 * o->nfeatures, argv, argl);
			redisAppendCommand(rc, "SET %s %b", vkey, vec, (size_t) o->nfeatures * 4);
		}
		for (i = 0; i < 2 * rows; i++)
		{
			redisReply *rep;

			if (redisGetReply(rc, (void **) &rep) != REDIS_OK)
				return 1;
			freeReplyObject(rep);
		}
		n += rows;
		PQclear(res);
	}
	PQclear(PQexec(conn, "COMMIT"));
	PQfinish(conn);
	redisFree(rc);
	fprintf(stderr, "loaded %ld keys into redis\n", n);
	return 0;
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
	Options		o = {"", "fs", "wide", 6379, NULL, 1000, 1000, 100, 1, 1000000, 32, 0};
	Client	   *clients;
	pthread_t  *threads;
	double	   *all;
	double		t0;
	double		wall;
	double		first = 0;
	double		last = 0;
	long		redis_pid = 0;
	double		redis_cpu0 = -1;
	double		server_cpu_ms = 0;
	long		issued = 0;
	double		sum = 0;
	uint64_t	checksum = 0;
	long		missing = 0;
	int			load = 0;
	int			n = 0;
	int			opt;
	int			i;

	while ((opt = getopt(argc, argv, "d:m:k:n:c:w:N:v:f:r:R:t:L")) != -1)
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
			case 'r': o.redis_port = atoi(optarg); break;
			case 'R': o.redis_socket = optarg; break;
			case 't': o.seconds = atof(optarg); break;
			case 'L': load = 1; break;
			default:
				fprintf(stderr, "see the comment at the top of lookup_bench.c\n");
				return 2;
		}
	}
	if (o.nfeatures < 1 || o.nfeatures > 4096)
		return 2;
	if (load)
		return load_redis(&o);

	clients = calloc(o.clients, sizeof(Client));
	threads = calloc(o.clients, sizeof(pthread_t));
	for (i = 0; i < o.clients; i++)
	{
		clients[i].opt = &o;
		clients[i].id = i;
		clients[i].lat_ms = calloc(o.requests, sizeof(double));
	}
	/* Redis is one process for every client: its CPU time over the run */
	if (strncmp(o.mode, "redis", 5) == 0)
	{
		redisContext *rc = o.redis_socket ? redisConnectUnix(o.redis_socket) :
			redisConnect("127.0.0.1", o.redis_port);
		redisReply *rep = rc && !rc->err ? redisCommand(rc, "INFO server") : NULL;
		const char *p = rep && rep->type == REDIS_REPLY_STRING ? strstr(rep->str, "process_id:") : NULL;

		if (p)
			redis_pid = atol(p + strlen("process_id:"));
		if (rep)
			freeReplyObject(rep);
		if (rc)
			redisFree(rc);
		redis_cpu0 = redis_pid > 0 ? proc_cpu_ms(redis_pid) : -1;
	}
	t0 = now_ms();
	for (i = 0; i < o.clients; i++)
		pthread_create(&threads[i], NULL, client_main, &clients[i]);
	for (i = 0; i < o.clients; i++)
		pthread_join(threads[i], NULL);
	wall = (now_ms() - t0) / 1000.0;
	if (redis_pid > 0 && redis_cpu0 >= 0)
	{
		double		cpu1 = proc_cpu_ms(redis_pid);

		if (cpu1 >= 0)
		{
			server_cpu_ms = cpu1 - redis_cpu0;
			for (i = 0; i < o.clients; i++)
				issued += clients[i].issued;
		}
	}

	all = calloc((size_t) o.requests * o.clients, sizeof(double));
	for (i = 0; i < o.clients; i++)
	{
		if (clients[i].failed)
			return 1;
		if (i == 0 || clients[i].start_ms < first)
			first = clients[i].start_ms;
		if (i == 0 || clients[i].end_ms > last)
			last = clients[i].end_ms;
		memcpy(all + n, clients[i].lat_ms, clients[i].done * sizeof(double));
		if (clients[i].server_pid > 0 && clients[i].cpu0_ms >= 0 && clients[i].cpu1_ms >= 0)
		{
			server_cpu_ms += clients[i].cpu1_ms - clients[i].cpu0_ms;
			issued += clients[i].issued;
		}
		n += clients[i].done;
		checksum += clients[i].checksum;
		missing += clients[i].missing;
	}
	qsort(all, n, sizeof(double), cmp_double);
	for (i = 0; i < n; i++)
		sum += all[i];
	printf("%-13s keys=%-5d clients=%d requests=%d p50=%.3f p95=%.3f p99=%.3f mean=%.3f rps=%.0f srvcpu=%.1f checksum=%llx missing=%ld\n",
		   o.mode, o.keys, o.clients, n,
		   all[(int) (n * 0.50)], all[(int) (n * 0.95)], all[(int) (n * 0.99)],
		   sum / n, n * 1000.0 / (last - first),
		   issued > 0 ? server_cpu_ms * 1000.0 / issued : -1.0,
		   (unsigned long long) checksum, missing);
	(void) wall;
	return 0;
}
