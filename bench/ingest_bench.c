/*
 * ingest_bench.c
 *		Streaming ingestion: producers, throughput and freshness.
 *
 * Producers send batches of B events (random keys of a view with 100,000
 * keys, 8 float4 features each, every event a new value) for S seconds,
 * unthrottled or at a total rate R events/s:
 *   -m stream   COPY the batch into fstore_stream.<view>; the stream
 *               workers apply it (asynchronous)
 *   -m direct   COPY the batch into a temporary table and call
 *               fs_write_query on it in the same transaction (synchronous;
 *               the baseline)
 * With -F, the first event of every batch is a probe: a key of its own
 * (100001 + producer) whose value is the batch number.  A checker session
 * polls fs_get_many for the probes and records, for every batch, the time
 * from the producer's COMMIT returning to the value being visible.
 *
 * Prints one line: mode, producers, seconds, events produced, produced/s,
 * applied/s (stream: from fstore.stats), queue depth at the end, and with
 * -F the freshness p50/p95/p99 in ms.  With -F and -o FILE, also writes
 * every freshness sample to FILE as CSV: seconds from the start to the
 * batch's COMMIT, and the freshness in ms (bench/plot.sh draws it).
 *
 * usage: ingest_bench -d CONNINFO -m stream|direct [-p PRODUCERS] [-s SECS]
 *                     [-r RATE] [-b BATCH] [-v VIEW] [-F [-o FILE]]
 */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define NKEYS 100000
#define NFEAT 8
#define MAX_PRODUCERS 16
#define MAX_BATCHES 1000000

typedef struct Options
{
	const char *conninfo;
	const char *mode;
	const char *view;
	int			producers;
	double		seconds;
	double		rate;			/* events/s for all producers; 0: unthrottled */
	int			batch;
	int			freshness;
	const char *samples;		/* -o: CSV of the freshness samples */
} Options;

static Options opt = {"", "stream", "ing", 2, 60, 0, 1000, 0, NULL};
static atomic_long produced;
static atomic_int stop_flag;
static atomic_long ts_counter;
static double commit_ms[MAX_PRODUCERS][MAX_BATCHES];	/* by batch number */
static atomic_long committed_batches[MAX_PRODUCERS];
static double *fresh_ms;
static double *fresh_at_ms;		/* the COMMIT time of each sample */
static atomic_long nfresh;
static double start_ms;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static PGconn *
connect_or_die(void)
{
	PGconn	   *c = PQconnectdb(opt.conninfo);

	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "connection failed: %s", PQerrorMessage(c));
		exit(1);
	}
	return c;
}

static void
exec_or_die(PGconn *c, const char *sql)
{
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
		exit(1);
	}
	PQclear(r);
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

/* Appends one event as a COPY text line; tsus: microseconds since 1970. */
static int
format_event(char *p, long key, const float *f, long tsus)
{
	time_t		sec = (time_t) (tsus / 1000000);
	struct tm	tm;
	int			n = sprintf(p, "%ld", key);
	int			i;

	for (i = 0; i < NFEAT; i++)
		n += sprintf(p + n, "\t%.6g", f[i]);
	gmtime_r(&sec, &tm);
	n += (int) strftime(p + n, 32, "\t%Y-%m-%d %H:%M:%S", &tm);
	n += sprintf(p + n, ".%06ld+00\n", tsus % 1000000);
	return n;
}

static void *
producer_main(void *arg)
{
	int			id = (int) (intptr_t) arg;
	PGconn	   *c = connect_or_die();
	char	   *buf = malloc((size_t) opt.batch * 256);
	uint64_t	seed = 0x1234567ULL * (id + 1);
	int			direct = strcmp(opt.mode, "direct") == 0;
	double		interval = opt.rate > 0 ? opt.batch * opt.producers * 1000.0 / opt.rate : 0;
	double		next = now_ms();
	char		copy_sql[256];
	char		apply_sql[256];
	long		b = 0;

	if (direct)
	{
		exec_or_die(c, "SET client_min_messages = warning");
		snprintf(copy_sql, sizeof(copy_sql),
				 "CREATE TEMP TABLE batch (LIKE fstore_online.%s) ON COMMIT DELETE ROWS", opt.view);
		exec_or_die(c, copy_sql);
		snprintf(copy_sql, sizeof(copy_sql), "COPY batch FROM STDIN");
		snprintf(apply_sql, sizeof(apply_sql),
				 "SELECT fs_write_query('%s', 'SELECT * FROM batch')", opt.view);
	}
	else
		snprintf(copy_sql, sizeof(copy_sql), "COPY fstore_stream.%s FROM STDIN", opt.view);

	while (!atomic_load(&stop_flag) && b < MAX_BATCHES)
	{
		PGresult   *r;
		int			len = 0;
		int			i;

		if (interval > 0)
		{
			double		t = now_ms();

			if (t < next)
				usleep((useconds_t) ((next - t) * 1000));
			next += interval;
		}
		for (i = 0; i < opt.batch; i++)
		{
			float		f[NFEAT];
			long		key;
			int			j;

			for (j = 0; j < NFEAT; j++)
				f[j] = (float) (next_rand(&seed) % 1000000) / 1000.0f;
			if (i == 0 && opt.freshness)
			{
				key = NKEYS + 1 + id;	/* the probe: its value is the batch */
				f[0] = (float) (b % 16000000);
			}
			else
				key = 1 + (long) (next_rand(&seed) % NKEYS);
			len += format_event(buf + len, key, f, atomic_fetch_add(&ts_counter, 1));
		}

		exec_or_die(c, "BEGIN");
		r = PQexec(c, copy_sql);
		if (PQresultStatus(r) != PGRES_COPY_IN)
		{
			fprintf(stderr, "COPY: %s", PQerrorMessage(c));
			exit(1);
		}
		PQclear(r);
		if (PQputCopyData(c, buf, len) != 1 || PQputCopyEnd(c, NULL) != 1)
		{
			fprintf(stderr, "COPY data: %s", PQerrorMessage(c));
			exit(1);
		}
		r = PQgetResult(c);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
		{
			fprintf(stderr, "COPY end: %s", PQerrorMessage(c));
			exit(1);
		}
		PQclear(r);
		if (direct)
			exec_or_die(c, apply_sql);
		exec_or_die(c, "COMMIT");
		commit_ms[id][b % MAX_BATCHES] = now_ms();
		atomic_store(&committed_batches[id], b + 1);
		atomic_fetch_add(&produced, opt.batch);
		b++;
	}
	PQfinish(c);
	free(buf);
	return NULL;
}

/* Polls the probes and records the commit-to-visible time of each batch. */
static void *
checker_main(void *arg)
{
	PGconn	   *c = connect_or_die();
	long		seen[MAX_PRODUCERS];
	char		sql[256];
	int			i;

	(void) arg;
	for (i = 0; i < MAX_PRODUCERS; i++)
		seen[i] = 0;
	snprintf(sql, sizeof(sql),
			 "SELECT doc_id, f1 FROM fs_get_many(NULL::fstore_online.%s, "
			 "ARRAY(SELECT g::bigint FROM generate_series(%d, %d) g))",
			 opt.view, NKEYS + 1, NKEYS + opt.producers);
	PQclear(PQprepare(c, "probe", sql, 0, NULL));
	while (!atomic_load(&stop_flag))
	{
		PGresult   *r = PQexecPrepared(c, "probe", 0, NULL, NULL, NULL, 0);
		double		t = now_ms();

		for (i = 0; i < PQntuples(r); i++)
		{
			int			p = atoi(PQgetvalue(r, i, 0)) - NKEYS - 1;
			long		v;
			long		s;

			if (PQgetisnull(r, i, 1) || p < 0 || p >= opt.producers)
				continue;
			v = (long) atof(PQgetvalue(r, i, 1));
			/* every batch up to v is visible now */
			for (s = seen[p]; s <= v && s < atomic_load(&committed_batches[p]); s++)
			{
				long		k = atomic_fetch_add(&nfresh, 1);

				if (k < MAX_BATCHES)
				{
					fresh_ms[k] = t - commit_ms[p][s % MAX_BATCHES];
					fresh_at_ms[k] = commit_ms[p][s % MAX_BATCHES];
				}
			}
			if (v + 1 > seen[p])
				seen[p] = v + 1;
		}
		PQclear(r);
		usleep(2000);
	}
	PQfinish(c);
	return NULL;
}

static long
stream_applied(PGconn *c)
{
	char		sql[256];
	PGresult   *r;
	long		v;

	snprintf(sql, sizeof(sql),
			 "SELECT coalesce(stream_applied, 0) FROM fstore.stats WHERE view_name = '%s'", opt.view);
	r = PQexec(c, sql);
	v = PQntuples(r) ? atol(PQgetvalue(r, 0, 0)) : 0;
	PQclear(r);
	return v;
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
	pthread_t	th[MAX_PRODUCERS];
	pthread_t	checker;
	PGconn	   *mon;
	double		t0;
	double		t1;
	long		a0;
	long		a1;
	long		depth = 0;
	int			o;
	int			i;

	while ((o = getopt(argc, argv, "d:m:p:s:r:b:v:Fo:")) != -1)
	{
		switch (o)
		{
			case 'd': opt.conninfo = optarg; break;
			case 'm': opt.mode = optarg; break;
			case 'p': opt.producers = atoi(optarg); break;
			case 's': opt.seconds = atof(optarg); break;
			case 'r': opt.rate = atof(optarg); break;
			case 'b': opt.batch = atoi(optarg); break;
			case 'v': opt.view = optarg; break;
			case 'F': opt.freshness = 1; break;
			case 'o': opt.samples = optarg; break;
			default:
				fprintf(stderr, "see the comment at the top of ingest_bench.c\n");
				return 2;
		}
	}
	if (opt.producers < 1 || opt.producers > MAX_PRODUCERS)
		return 2;
	fresh_ms = calloc(MAX_BATCHES, sizeof(double));
	fresh_at_ms = calloc(MAX_BATCHES, sizeof(double));
	{
		struct timespec ts;

		/* event times: the wall clock, one microsecond apart */
		clock_gettime(CLOCK_REALTIME, &ts);
		atomic_store(&ts_counter, (long) ts.tv_sec * 1000000L + ts.tv_nsec / 1000);
	}

	mon = connect_or_die();
	a0 = stream_applied(mon);
	t0 = now_ms();
	start_ms = t0;
	for (i = 0; i < opt.producers; i++)
		pthread_create(&th[i], NULL, producer_main, (void *) (intptr_t) i);
	if (opt.freshness)
		pthread_create(&checker, NULL, checker_main, NULL);
	while (now_ms() - t0 < opt.seconds * 1000)
		usleep(100000);
	atomic_store(&stop_flag, 1);
	for (i = 0; i < opt.producers; i++)
		pthread_join(th[i], NULL);
	t1 = now_ms();
	a1 = stream_applied(mon);
	if (opt.freshness)
		pthread_join(checker, NULL);
	if (strcmp(opt.mode, "stream") == 0)
	{
		char		sql[256];
		PGresult   *r;

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM fstore_stream.%s", opt.view);
		r = PQexec(mon, sql);
		depth = atol(PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	PQfinish(mon);

	{
		double		secs = (t1 - t0) / 1000.0;
		long		n = atomic_load(&produced);
		long		nf = atomic_load(&nfresh);

		printf("mode=%s producers=%d seconds=%.1f events=%ld produced_per_s=%.0f applied_per_s=%.0f queue_end=%ld",
			   opt.mode, opt.producers, secs, n, n / secs,
			   strcmp(opt.mode, "stream") == 0 ? (a1 - a0) / secs : n / secs, depth);
		if (opt.freshness && nf > 0)
		{
			if (nf > MAX_BATCHES)
				nf = MAX_BATCHES;
			if (opt.samples)
			{
				FILE	   *f = fopen(opt.samples, "w");
				long		k;

				if (f == NULL)
				{
					perror(opt.samples);
					exit(1);
				}
				fprintf(f, "seconds,freshness_ms\n");
				for (k = 0; k < nf; k++)
					fprintf(f, "%.3f,%.2f\n", (fresh_at_ms[k] - start_ms) / 1000.0, fresh_ms[k]);
				fclose(f);
			}
			qsort(fresh_ms, nf, sizeof(double), cmp_double);
			printf(" fresh_n=%ld fresh_p50=%.1f fresh_p95=%.1f fresh_p99=%.1f fresh_max=%.1f",
				   nf, fresh_ms[(long) (nf * 0.50)], fresh_ms[(long) (nf * 0.95)],
				   fresh_ms[(long) (nf * 0.99)], fresh_ms[nf - 1]);
		}
		printf("\n");
	}
	return 0;
}
