/*
 * agg_bench.c
 *		Aggregation views: streaming ingestion into tiles, throughput and
 *		freshness (bench/aggregations.sh).
 *
 * Producers COPY batches of B events (doc_id among 100,000 keys, clicks
 * int, dwell real, event_ts: the wall clock, one microsecond apart) into
 * fstore_stream.<view> for S seconds, unthrottled or at a total rate R
 * events/s; the stream workers add them to the tiles.  With -F, the first
 * event of every batch is a probe: a key of its own (100001 + producer),
 * so the probe's count(*) over 1 hour is the number of its batches applied.
 * A checker session polls fs_get_many for the probes and records, for
 * every batch, the time from the producer's COMMIT returning to the batch
 * being counted.
 *
 * Prints one line: producers, seconds, events produced, produced/s,
 * applied/s (produced minus what is still queued), queue depth at the end,
 * and with -F the freshness p50/p95/p99 in ms.
 *
 * usage: agg_bench -d CONNINFO [-p PRODUCERS] [-s SECS] [-r RATE] [-b BATCH]
 *                  [-v VIEW] [-F]
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
#define MAX_PRODUCERS 16
#define MAX_BATCHES 1000000

typedef struct Options
{
	const char *conninfo;
	const char *view;
	int			producers;
	double		seconds;
	double		rate;			/* events/s for all producers; 0: unthrottled */
	int			batch;
	int			freshness;
} Options;

static Options opt = {"", "agg", 2, 60, 0, 1000, 0};
static atomic_long produced;
static atomic_int stop_flag;
static atomic_long ts_counter;
static double commit_ms[MAX_PRODUCERS][MAX_BATCHES];	/* by batch number */
static atomic_long committed_batches[MAX_PRODUCERS];
static double *fresh_ms;
static atomic_long nfresh;

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
format_event(char *p, long key, int clicks, float dwell, long tsus)
{
	time_t		sec = (time_t) (tsus / 1000000);
	struct tm	tm;
	int			n = sprintf(p, "%ld\t%d\t%.3f", key, clicks, dwell);

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
	double		interval = opt.rate > 0 ? opt.batch * opt.producers * 1000.0 / opt.rate : 0;
	double		next = now_ms();
	char		copy_sql[256];
	long		b = 0;

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
			long		key;
			int			clicks = (int) (next_rand(&seed) % 5);
			float		dwell = (float) (next_rand(&seed) % 100000) / 1000.0f;

			if (i == 0 && opt.freshness)
				key = NKEYS + 1 + id;	/* the probe */
			else
				key = 1 + (long) (next_rand(&seed) % NKEYS);
			len += format_event(buf + len, key, clicks, dwell, atomic_fetch_add(&ts_counter, 1));
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
	long		base[MAX_PRODUCERS];
	int			first = 1;
	char		sql[256];
	int			i;

	(void) arg;
	for (i = 0; i < MAX_PRODUCERS; i++)
		seen[i] = base[i] = 0;
	snprintf(sql, sizeof(sql),
			 "SELECT doc_id, opens_1h FROM fs_get_many(NULL::fstore_online.%s, "
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
			if (first)
			{
				/* probes of earlier runs (the caller drained the queue) */
				base[p] = atol(PQgetvalue(r, i, 1));
				continue;
			}
			v = atol(PQgetvalue(r, i, 1)) - base[p];	/* batches applied */
			for (s = seen[p]; s < v && s < atomic_load(&committed_batches[p]); s++)
			{
				long		k = atomic_fetch_add(&nfresh, 1);

				if (k < MAX_BATCHES)
					fresh_ms[k] = t - commit_ms[p][s % MAX_BATCHES];
			}
			if (v > seen[p])
				seen[p] = v;
		}
		first = 0;
		PQclear(r);
		usleep(2000);
	}
	PQfinish(c);
	return NULL;
}

static long
queue_depth(PGconn *c)
{
	char		sql[256];
	PGresult   *r;
	long		v;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM fstore_stream.%s", opt.view);
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
	long		d0;
	long		depth = 0;
	int			o;
	int			i;

	while ((o = getopt(argc, argv, "d:p:s:r:b:v:F")) != -1)
	{
		switch (o)
		{
			case 'd': opt.conninfo = optarg; break;
			case 'p': opt.producers = atoi(optarg); break;
			case 's': opt.seconds = atof(optarg); break;
			case 'r': opt.rate = atof(optarg); break;
			case 'b': opt.batch = atoi(optarg); break;
			case 'v': opt.view = optarg; break;
			case 'F': opt.freshness = 1; break;
			default:
				fprintf(stderr, "see the comment at the top of agg_bench.c\n");
				return 2;
		}
	}
	if (opt.producers < 1 || opt.producers > MAX_PRODUCERS)
		return 2;
	fresh_ms = calloc(MAX_BATCHES, sizeof(double));
	{
		struct timespec ts;

		/* event times: the wall clock, one microsecond apart */
		clock_gettime(CLOCK_REALTIME, &ts);
		atomic_store(&ts_counter, (long) ts.tv_sec * 1000000L + ts.tv_nsec / 1000);
	}

	mon = connect_or_die();
	d0 = queue_depth(mon);
	t0 = now_ms();
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
	if (opt.freshness)
		pthread_join(checker, NULL);
	depth = queue_depth(mon);
	PQfinish(mon);

	{
		double		secs = (t1 - t0) / 1000.0;
		long		n = atomic_load(&produced);
		long		nf = atomic_load(&nfresh);

		printf("producers=%d seconds=%.1f events=%ld produced_per_s=%.0f applied_per_s=%.0f queue_end=%ld",
			   opt.producers, secs, n, n / secs, (n + d0 - depth) / secs, depth);
		if (opt.freshness && nf > 0)
		{
			if (nf > MAX_BATCHES)
				nf = MAX_BATCHES;
			qsort(fresh_ms, nf, sizeof(double), cmp_double);
			printf(" fresh_n=%ld fresh_p50=%.1f fresh_p95=%.1f fresh_p99=%.1f fresh_max=%.1f",
				   nf, fresh_ms[(long) (nf * 0.50)], fresh_ms[(long) (nf * 0.95)],
				   fresh_ms[(long) (nf * 0.99)], fresh_ms[nf - 1]);
		}
		printf("\n");
	}
	return 0;
}
