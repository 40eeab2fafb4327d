/* SPDX-License-Identifier: GPL-2.0 */
/*
 * crr - shared declarations: constants, small helpers, the options of
 * both roles, the flag table and the report functions.
 *
 *   crr.c          main: role dispatch, helpers both roles use
 *   crr_flags.c    the flag table: getopt_long options and --help text
 *   crr_server.c   crr server
 *   crr_client.c   crr client
 *   crr_report.c   key=value results, latency histogram, CSV
 */
#ifndef CRR_H
#define CRR_H

#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_EVENTS	256
#define SCRATCH_MAX	65536
#define MAX_MSG_SIZE	(16u << 20)
#define MAX_WORKERS	4096
#define HIST_CPUS	64	/* per-CPU accept counts kept for CPUs below */
#define MAX_THREADS	4096
#define MAX_FLOWS	1000000
#define NSEC_PER_SEC	1000000000ull
#define NSEC_PER_MSEC	1000000ull

#define __noreturn	__attribute__((noreturn))
#define __printf(a, b)	__attribute__((format(printf, a, b)))
#define __aligned(x)	__attribute__((aligned(x)))

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* ---------------------------------------------------------------------- */
/* Small helpers                                                          */
/* ---------------------------------------------------------------------- */

struct dlist {
	struct dlist *next, *prev;
};

static inline void dlist_init(struct dlist *h)
{
	h->next = h;
	h->prev = h;
}

static inline bool dlist_empty(const struct dlist *h)
{
	return h->next == h;
}

static inline void dlist_add_tail(struct dlist *n, struct dlist *h)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

/* Unlink @n; safe to call again on an unlinked (self-pointing) node. */
static inline void dlist_del(struct dlist *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	dlist_init(n);
}

extern int ncpu;
extern const char *role;

void init_cpus(void);
int cpu_for(int i);
int pin_to_cpu(int cpu);

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

void raise_nofile(void);
void __noreturn __printf(1, 2) die(const char *fmt, ...);
void __noreturn __printf(1, 2) bad_usage(const char *fmt, ...);
long long parse_int(const char *opt, const char *s, long long min,
		    long long max);
double parse_secs(const char *opt, const char *s);

static inline int set_int_opt(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val));
}

struct addrinfo *resolve(const char *host, const char *port, bool passive);

/* ---------------------------------------------------------------------- */
/* Options and flags                                                      */
/* ---------------------------------------------------------------------- */

enum srv_mode { MODE_FORK, MODE_THREAD, MODE_REUSEPORT };

struct srv_opts {
	enum srv_mode mode;
	int workers;
	bool exclusive;
	bool pin;
	bool incoming_cpu;
	bool fastsocket;
	bool keepalive;
	bool close_first;
	const char *addr;
	int port;
	int backlog;
	size_t req_size;
	size_t resp_size;
};

struct cli_opts {
	const char *host;
	const char *port;
	int threads;
	int flows;
	double duration;
	bool duration_set;
	bool meter;		/* mark the timed phase for the locality meter */
	uint64_t count;
	double timeout;
	bool pin;
	bool keepalive;
	bool linger0;
	bool fastsocket;	/* TCP_FASTSOCKET_ON before connect() */
	size_t req_size;
	size_t resp_size;
	const char *csv;
	const char *label;
};

extern struct cli_opts copt;

#define ROLE_SERVER	1u
#define ROLE_CLIENT	2u

struct flag;

/* Sets @field (in the role's options) from @arg, the value of @opt. */
typedef void (*flag_parser)(const struct flag *fl, void *field,
			    const char *opt, const char *arg);

/* One command line flag; crr_flags.c has the table. */
struct flag {
	unsigned int roles;	/* ROLE_SERVER and/or ROLE_CLIENT */
	const char *name;	/* long name, without "--" */
	char short_name;	/* -c alias, or 0 */
	const char *arg;	/* value name in --help; NULL: takes no value */
	size_t offset;		/* field set, in struct srv_opts or cli_opts */
	flag_parser parse;	/* NULL: --help */
	long long min, max;	/* range of an integer value */
	const char *help;	/* may span lines ('\n') */
};

void flags_usage(FILE *f, unsigned int roles);
void flags_parse(unsigned int roles, void *opts, int argc, char **argv,
		 void (*usage)(FILE *f));

/* ---------------------------------------------------------------------- */
/* Results                                                                */
/* ---------------------------------------------------------------------- */

/* Per-worker counters; in fork mode they live in MAP_SHARED memory. */
struct wstats {
	uint64_t accepted;
	uint64_t served;	/* responses fully written */
	uint64_t aborted;	/* peer left before a full request/response */
	uint64_t errors;
	uint64_t cpu_mismatch;	/* SO_INCOMING_CPU != CPU at accept */
	uint64_t cpu_unknown;	/* SO_INCOMING_CPU was -1 */
	uint64_t failed;	/* worker could not start / died */
	uint64_t in_cpu[HIST_CPUS];	/* accepts by SO_INCOMING_CPU */
	uint64_t at_cpu[HIST_CPUS];	/* accepts by CPU at accept() */
} __aligned(64);

struct cstats {
	uint64_t connections;	/* established (rr) / completed (crr) */
	uint64_t transactions;
	uint64_t failed_connects;
	uint64_t addr_not_avail;
	uint64_t resets;
	uint64_t timeouts;
	uint64_t errors;
	uint64_t lat_sum;
};

struct cresult {
	const char *mode;
	double secs;
	double rate;
	double p50, p90, p99, mean;	/* us */
	struct cstats st;
};

/* ---------------------------------------------------------------------- */
/* Latency histogram: log-linear, 128 linear sub-buckets per power of two */
/* (bucket width <= 1/128 of its lower bound, midpoint error < 0.4%).    */
/* ---------------------------------------------------------------------- */

#define HIST_SUB_BITS	7
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_BUCKETS	(HIST_SUB + (64 - HIST_SUB_BITS) * HIST_SUB)

static inline unsigned int hist_index(uint64_t v)
{
	unsigned int shift;

	if (v < HIST_SUB)
		return v;
	shift = 63 - __builtin_clzll(v) - HIST_SUB_BITS;
	return HIST_SUB + shift * HIST_SUB +
	       ((v >> shift) & (HIST_SUB - 1));
}

uint64_t server_report(const struct wstats *st, int workers,
		       const char *mode);
void client_report(struct cresult *r, const uint64_t *hist, uint64_t t0,
		   uint64_t t_end);
int write_csv(const struct cresult *r);

int server_main(int argc, char **argv);
int client_main(int argc, char **argv);

#endif /* CRR_H */
