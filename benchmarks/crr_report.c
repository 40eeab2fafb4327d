// SPDX-License-Identifier: GPL-2.0
/*
 * crr - results: the key=value lines of both roles, latency percentiles
 * from the client's histogram, the client's CSV row.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crr.h"

/* ---------------------------------------------------------------------- */
/* Latency histogram (hist_index() is in crr.h)                           */
/* ---------------------------------------------------------------------- */

static double hist_value(unsigned int idx)
{
	unsigned int shift, sub;
	uint64_t lo;

	if (idx < HIST_SUB)
		return idx;
	shift = (idx - HIST_SUB) / HIST_SUB;
	sub = (idx - HIST_SUB) % HIST_SUB;
	lo = (uint64_t)(HIST_SUB + sub) << shift;
	return lo + ((1ull << shift) - 1) / 2.0;
}

/* Value at @permille (e.g. 990 = p99) of @n samples, in ns. */
static double hist_pct(const uint64_t *h, uint64_t n, unsigned int permille)
{
	uint64_t rank, sum = 0;
	unsigned int i;

	if (!n)
		return 0;
	rank = (n * permille + 999) / 1000;
	if (!rank)
		rank = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		sum += h[i];
		if (sum >= rank)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

/* ---------------------------------------------------------------------- */
/* Server                                                                 */
/* ---------------------------------------------------------------------- */

/* Totals and per-worker/per-CPU counts; returns the worker failures. */
uint64_t server_report(const struct wstats *st, int workers,
		       const char *mode)
{
	struct wstats tot;
	int i, j;

	memset(&tot, 0, sizeof(tot));
	for (i = 0; i < workers; i++) {
		tot.accepted += st[i].accepted;
		tot.served += st[i].served;
		tot.aborted += st[i].aborted;
		tot.errors += st[i].errors;
		tot.cpu_mismatch += st[i].cpu_mismatch;
		tot.cpu_unknown += st[i].cpu_unknown;
		tot.failed += st[i].failed;
		for (j = 0; j < HIST_CPUS; j++) {
			tot.in_cpu[j] += st[i].in_cpu[j];
			tot.at_cpu[j] += st[i].at_cpu[j];
		}
	}
	printf("mode=%s\n", mode);
	printf("workers=%d\n", workers);
	printf("accepted=%llu\n", (unsigned long long)tot.accepted);
	printf("served=%llu\n", (unsigned long long)tot.served);
	printf("aborted=%llu\n", (unsigned long long)tot.aborted);
	printf("errors=%llu\n", (unsigned long long)tot.errors);
	printf("incoming_cpu_mismatch=%llu\n",
	       (unsigned long long)tot.cpu_mismatch);
	printf("incoming_cpu_unknown=%llu\n",
	       (unsigned long long)tot.cpu_unknown);
	printf("worker_failures=%llu\n", (unsigned long long)tot.failed);
	for (i = 0; i < workers; i++)
		printf("worker%d_accepted=%llu\n", i,
		       (unsigned long long)st[i].accepted);
	for (j = 0; j < HIST_CPUS; j++)
		if (tot.in_cpu[j])
			printf("incoming_cpu%d=%llu\n", j,
			       (unsigned long long)tot.in_cpu[j]);
	for (j = 0; j < HIST_CPUS; j++)
		if (tot.at_cpu[j])
			printf("accept_cpu%d=%llu\n", j,
			       (unsigned long long)tot.at_cpu[j]);
	fflush(stdout);
	return tot.failed;
}

/* ---------------------------------------------------------------------- */
/* Client                                                                 */
/* ---------------------------------------------------------------------- */

/* Fill in @r from its counters, @hist and the run's time; print it. */
void client_report(struct cresult *r, const uint64_t *hist, uint64_t t0,
		   uint64_t t_end)
{
	r->mode = copt.keepalive ? "rr" : "crr";
	r->secs = t_end > t0 ? (t_end - t0) / 1e9 : 0;
	r->rate = r->secs > 0 ? r->st.transactions / r->secs : 0;
	r->p50 = hist_pct(hist, r->st.transactions, 500) / 1e3;
	r->p90 = hist_pct(hist, r->st.transactions, 900) / 1e3;
	r->p99 = hist_pct(hist, r->st.transactions, 990) / 1e3;
	r->mean = r->st.transactions ?
		  (double)r->st.lat_sum / r->st.transactions / 1e3 : 0;

	printf("mode=%s\n", r->mode);
	printf("threads=%d\n", copt.threads);
	printf("flows=%d\n", copt.flows);
	printf("duration_s=%.3f\n", r->secs);
	printf("connections=%llu\n", (unsigned long long)r->st.connections);
	if (copt.keepalive) {
		printf("transactions=%llu\n",
		       (unsigned long long)r->st.transactions);
		printf("tps=%.1f\n", r->rate);
	} else {
		printf("cps=%.1f\n", r->rate);
	}
	printf("latency_p50_us=%.1f\n", r->p50);
	printf("latency_p90_us=%.1f\n", r->p90);
	printf("latency_p99_us=%.1f\n", r->p99);
	printf("latency_mean_us=%.1f\n", r->mean);
	printf("failed_connects=%llu\n",
	       (unsigned long long)r->st.failed_connects);
	printf("addr_not_avail=%llu\n",
	       (unsigned long long)r->st.addr_not_avail);
	printf("resets=%llu\n", (unsigned long long)r->st.resets);
	printf("timeouts=%llu\n", (unsigned long long)r->st.timeouts);
	printf("errors=%llu\n", (unsigned long long)r->st.errors);
}

#define CSV_HEADER \
	"label,mode,threads,flows,duration_s,connections,transactions," \
	"cps,tps,latency_p50_us,latency_p90_us,latency_p99_us," \
	"failed_connects,resets,timeouts,errors\n"

static void csv_field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

int write_csv(const struct cresult *r)
{
	struct stat sb;
	FILE *f;
	int fd;

	fd = open(copt.csv, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	flock(fd, LOCK_EX);	/* rows from parallel runs stay whole */
	f = fdopen(fd, "a");
	if (!f) {
		close(fd);
		return -1;
	}
	if (fstat(fd, &sb) == 0 && sb.st_size == 0)
		fputs(CSV_HEADER, f);
	csv_field(f, copt.label);
	fprintf(f, ",%s,%d,%d,%.3f,%llu,%llu,", r->mode, copt.threads,
		copt.flows, r->secs, (unsigned long long)r->st.connections,
		(unsigned long long)r->st.transactions);
	if (copt.keepalive)
		fprintf(f, ",%.1f", r->rate);
	else
		fprintf(f, "%.1f,", r->rate);
	fprintf(f, ",%.1f,%.1f,%.1f,%llu,%llu,%llu,%llu\n", r->p50, r->p90,
		r->p99, (unsigned long long)r->st.failed_connects,
		(unsigned long long)r->st.resets,
		(unsigned long long)r->st.timeouts,
		(unsigned long long)r->st.errors);
	return fclose(f);
}
