// SPDX-License-Identifier: GPL-2.0
/*
 * crr - short-connection TCP load tool: connect, request, response, close.
 *
 *   crr server [options]   accept connections, answer one request on each
 *                          (or many with --keepalive), wait for the
 *                          client's close
 *   crr client [options]   drive T threads x F flows of non-blocking
 *                          connections and report connections/s and
 *                          latency percentiles as key=value lines
 *
 * Run "crr server --help" or "crr client --help" for the options.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fastsocket.h"		/* tools/: TCP_FASTSOCKET and friends */
#include "meter/meter.h"

#ifndef SO_INCOMING_CPU
#define SO_INCOMING_CPU		49
#endif
#ifndef EPOLLEXCLUSIVE
#define EPOLLEXCLUSIVE		(1u << 28)
#endif

#define MAX_EVENTS	256
#define ACCEPT_BATCH	32
#define SCRATCH_MAX	65536
#define MAX_MSG_SIZE	(16u << 20)
#define MAX_WORKERS	4096
#define HIST_CPUS	64	/* per-CPU accept counts kept for CPUs below */
#define MAX_THREADS	4096
#define MAX_FLOWS	1000000
#define NSEC_PER_SEC	1000000000ull
#define NSEC_PER_MSEC	1000000ull
#define BACKOFF_NS	(5 * NSEC_PER_MSEC)	/* pause after a failure */
#define STOP_POLL_MS	100			/* notice g_stop this fast */

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

static void dlist_init(struct dlist *h)
{
	h->next = h;
	h->prev = h;
}

static bool dlist_empty(const struct dlist *h)
{
	return h->next == h;
}

static void dlist_add_tail(struct dlist *n, struct dlist *h)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

/* Unlink @n; safe to call again on an unlinked (self-pointing) node. */
static void dlist_del(struct dlist *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	dlist_init(n);
}

static int ncpu;
static int cpu_list[CPU_SETSIZE];

/* CPUs this process may run on; "CPU i" below means the i-th of them. */
static void init_cpus(void)
{
	cpu_set_t set;
	long n;
	int i;

	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set))
				cpu_list[ncpu++] = i;
	if (ncpu)
		return;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > CPU_SETSIZE)
		n = CPU_SETSIZE;
	for (i = 0; i < n; i++)
		cpu_list[ncpu++] = i;
}

static int cpu_for(int i)
{
	return cpu_list[i % ncpu];
}

/* Pin the calling thread. */
static int pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void __noreturn __printf(1, 2) die(const char *fmt, ...)
{
	va_list ap;

	fputs("crr: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static const char *role = "";

/* Command line error: message, hint, exit status 2. */
static void __noreturn __printf(1, 2) bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "crr%s%s: ", *role ? " " : "", role);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'crr%s%s --help'.\n", *role ? " " : "", role);
	exit(2);
}

static long long parse_int(const char *opt, const char *s, long long min,
			   long long max)
{
	long long v;
	char *end;

	errno = 0;
	v = strtoll(s, &end, 0);
	if (errno || end == s || *end || v < min || v > max)
		bad_usage("invalid value '%s' for %s (expected an integer %lld..%lld)",
			  s, opt, min, max);
	return v;
}

/* getopt_long() reported @c (':' missing value, '?' unknown option). */
static void __noreturn bad_option(int c, char **argv)
{
	char buf[3] = { '-', (char)optopt, 0 };
	const char *opt = optopt > 0 && optopt < 128 ? buf : argv[optind - 1];

	if (c == ':')
		bad_usage("option '%s' needs a value", opt);
	bad_usage("unknown option '%s'", opt);
}

static double parse_secs(const char *opt, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 1e7)
		bad_usage("invalid value '%s' for %s (expected seconds > 0)",
			  s, opt);
	return v;
}

static int set_int_opt(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val));
}

/*
 * Resolve @host/@port to one stream address. Numeric IPv4 and IPv6
 * literals (127.0.0.1, ::1) and host names are accepted.
 */
static struct addrinfo *resolve(const char *host, const char *port,
				bool passive)
{
	struct addrinfo hints, *ai;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc)
		die("cannot resolve '%s' port %s: %s", host, port,
		    gai_strerror(rc));
	return ai;
}

static void set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static int get_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* ---------------------------------------------------------------------- */
/* Server                                                                 */
/* ---------------------------------------------------------------------- */

enum srv_mode { MODE_FORK, MODE_THREAD, MODE_REUSEPORT };

static const char *const mode_names[] = { "fork", "thread", "reuseport" };

static struct srv_opts {
	enum srv_mode mode;
	int workers;
	bool exclusive;
	bool pin;
	bool incoming_cpu;
	bool fastsocket;
	bool keepalive;
	const char *addr;
	int port;
	int backlog;
	size_t req_size;
	size_t resp_size;
} sopt = {
	.mode = MODE_FORK,
	.addr = "127.0.0.1",
	.backlog = 1024,
	.req_size = 64,
	.resp_size = 64,
};

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

enum { S_REQ, S_RESP, S_EOF };

struct sconn {
	struct dlist link;	/* worker's live list or pool */
	int fd;
	int state;
	size_t off;
	uint64_t nserved;
};

struct worker {
	int id;
	int cpu;		/* pinned CPU or -1 */
	int lfd;
	int ep;
	struct wstats *st;
	char *scratch;
	size_t scratch_sz;
	char *resp;
	struct dlist live;
	struct dlist pool;
	pid_t pid;
	pthread_t thr;
	bool started;
};

static struct sockaddr_storage s_addr;
static socklen_t s_addrlen;
static int s_lfd = -1;		/* shared listener (fork, thread) */
static int s_stopfd = -1;	/* eventfd: readable once we must stop */
static int s_readyfd = -1;	/* write end of the start-up pipe */
static int s_port;		/* the port every worker serves */
static char tag_listen, tag_stop;

static void set_fastsocket(int fd, bool warn)
{
	if (set_int_opt(fd, IPPROTO_TCP, TCP_FASTSOCKET,
			TCP_FASTSOCKET_ON) == 0)
		return;
	if (errno == ENOPROTOOPT) {
		if (warn)
			fprintf(stderr,
				"crr server: warning: TCP_FASTSOCKET: %s; continuing without it\n",
				strerror(errno));
		return;
	}
	die("setsockopt(TCP_FASTSOCKET): %s", strerror(errno));
}

/*
 * Create a listener on @port. @incoming_cpu >= 0 sets SO_INCOMING_CPU
 * before listen(). With !@do_listen the socket is only bound, which
 * reserves the port for the SO_REUSEPORT group the workers form.
 */
static int make_listener(int port, bool reuseport, int incoming_cpu,
			 bool do_listen, bool warn)
{
	struct sockaddr_storage ss = s_addr;
	int fd;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		fprintf(stderr, "crr server: socket: %s\n", strerror(errno));
		return -1;
	}
	if (set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0 ||
	    (reuseport && set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0)) {
		fprintf(stderr, "crr server: setsockopt(SO_REUSE*): %s\n",
			strerror(errno));
		goto err;
	}
	/* Accepted sockets inherit TCP_NODELAY from the listener. */
	set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	if (incoming_cpu >= 0 &&
	    set_int_opt(fd, SOL_SOCKET, SO_INCOMING_CPU, incoming_cpu) < 0) {
		fprintf(stderr,
			"crr server: setsockopt(SO_INCOMING_CPU, %d): %s\n",
			incoming_cpu, strerror(errno));
		goto err;
	}
	if (do_listen && sopt.fastsocket)
		set_fastsocket(fd, warn);
	set_port(&ss, port);
	if (bind(fd, (struct sockaddr *)&ss, s_addrlen) < 0) {
		fprintf(stderr, "crr server: bind %s port %d: %s\n", sopt.addr,
			port, strerror(errno));
		goto err;
	}
	if (do_listen && listen(fd, sopt.backlog) < 0) {
		fprintf(stderr, "crr server: listen: %s\n", strerror(errno));
		goto err;
	}
	return fd;
err:
	close(fd);
	return -1;
}

static struct sconn *conn_get(struct worker *w)
{
	struct sconn *c;

	if (!dlist_empty(&w->pool)) {
		c = container_of(w->pool.next, struct sconn, link);
		dlist_del(&c->link);
		return c;
	}
	c = malloc(sizeof(*c));
	if (c)
		dlist_init(&c->link);
	return c;
}

static void conn_put(struct worker *w, struct sconn *c)
{
	close(c->fd);
	c->fd = -1;
	dlist_del(&c->link);
	dlist_add_tail(&c->link, &w->pool);
}

static void srv_accept(struct worker *w)
{
	struct epoll_event ev;
	struct sconn *c;
	socklen_t len;
	int i, fd, icpu, cpu;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			switch (errno) {
			case EAGAIN:
				return;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* Level-triggered listener: do not spin. */
				w->st->errors++;
				usleep(1000);
				return;
			default:
				w->st->errors++;
				return;
			}
		}
		w->st->accepted++;
		icpu = -1;
		len = sizeof(icpu);
		if (getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &icpu, &len))
			icpu = -1;
		cpu = sched_getcpu();
		if (icpu != cpu)
			w->st->cpu_mismatch++;
		if (icpu < 0)
			w->st->cpu_unknown++;
		if (icpu >= 0 && icpu < HIST_CPUS)
			w->st->in_cpu[icpu]++;
		if (cpu >= 0 && cpu < HIST_CPUS)
			w->st->at_cpu[cpu]++;

		c = conn_get(w);
		if (!c) {
			w->st->errors++;
			close(fd);
			continue;
		}
		c->fd = fd;
		c->state = S_REQ;
		c->off = 0;
		c->nserved = 0;
		dlist_add_tail(&c->link, &w->live);
		/* Edge-triggered; the ADD reports the current readiness. */
		ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
		ev.data.ptr = c;
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			w->st->errors++;
			conn_put(w, c);
		}
	}
}

/* Drive one connection until it would block or is closed. */
static void srv_conn_event(struct worker *w, struct sconn *c)
{
	size_t want;
	ssize_t n;

	for (;;) {
		switch (c->state) {
		case S_REQ:
			want = sopt.req_size - c->off;
			if (want > w->scratch_sz)
				want = w->scratch_sz;
			n = recv(c->fd, w->scratch, want, 0);
			if (n > 0) {
				c->off += n;
				if (c->off == sopt.req_size) {
					c->state = S_RESP;
					c->off = 0;
				}
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return;
			/* EOF or error between requests ends keep-alive. */
			if (c->off == 0 && c->nserved > 0 &&
			    (n == 0 || errno == ECONNRESET))
				;
			else if (n == 0 || errno == ECONNRESET)
				w->st->aborted++;
			else
				w->st->errors++;
			conn_put(w, c);
			return;
		case S_RESP:
			n = send(c->fd, w->resp + c->off,
				 sopt.resp_size - c->off, MSG_NOSIGNAL);
			if (n > 0) {
				c->off += n;
				if (c->off == sopt.resp_size) {
					w->st->served++;
					c->nserved++;
					c->state = sopt.keepalive ? S_REQ :
								    S_EOF;
					c->off = 0;
				}
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return;
			if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
				w->st->aborted++;
			else
				w->st->errors++;
			conn_put(w, c);
			return;
		case S_EOF:
			/* The client closes first; a RST (linger0) is fine. */
			n = recv(c->fd, w->scratch, w->scratch_sz, 0);
			if (n > 0)
				continue;
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return;
			if (n < 0 && errno != ECONNRESET)
				w->st->errors++;
			conn_put(w, c);
			return;
		}
	}
}

static void worker_loop(struct worker *w)
{
	struct epoll_event evs[MAX_EVENTS];
	int i, n;

	for (;;) {
		n = epoll_wait(w->ep, evs, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			w->st->errors++;
			return;
		}
		for (i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &tag_stop)
				return;
			if (p == &tag_listen)
				srv_accept(w);
			else
				srv_conn_event(w, p);
		}
	}
}

static void worker_cleanup(struct worker *w)
{
	struct dlist *l;

	while (!dlist_empty(&w->live))
		conn_put(w, container_of(w->live.next, struct sconn, link));
	while (!dlist_empty(&w->pool)) {
		l = w->pool.next;
		dlist_del(l);
		free(container_of(l, struct sconn, link));
	}
	free(w->scratch);
	free(w->resp);
	w->scratch = NULL;
	w->resp = NULL;
	if (w->ep >= 0)
		close(w->ep);
	if (sopt.mode == MODE_REUSEPORT && w->lfd >= 0)
		close(w->lfd);
	w->ep = -1;
	w->lfd = -1;
}

static void report_ready(bool ok)
{
	char c = ok ? 'r' : 'e';

	if (write(s_readyfd, &c, 1) != 1)
		perror("crr server: ready pipe");
}

static int worker_run(struct worker *w, int port)
{
	struct epoll_event ev;
	uint32_t lev;

	w->cpu = -1;
	w->ep = -1;
	w->lfd = s_lfd;
	dlist_init(&w->live);
	dlist_init(&w->pool);

	if (sopt.pin || sopt.incoming_cpu) {
		w->cpu = cpu_for(w->id);
		if (pin_to_cpu(w->cpu) < 0)
			fprintf(stderr,
				"crr server: worker %d: pin to CPU %d: %s\n",
				w->id, w->cpu, strerror(errno));
	}
	if (sopt.mode == MODE_REUSEPORT) {
		w->lfd = make_listener(port, true,
				       sopt.incoming_cpu ? w->cpu : -1, true,
				       w->id == 0);
		if (w->lfd < 0)
			goto fail;
	}
	w->scratch_sz = sopt.req_size > SCRATCH_MAX ? SCRATCH_MAX :
						      sopt.req_size;
	if (w->scratch_sz < 4096)
		w->scratch_sz = 4096;
	w->scratch = malloc(w->scratch_sz);
	w->resp = malloc(sopt.resp_size);
	if (!w->scratch || !w->resp)
		goto fail;
	memset(w->resp, 'r', sopt.resp_size);

	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0)
		goto fail;
	lev = EPOLLIN;
	if (sopt.exclusive)
		lev |= EPOLLEXCLUSIVE;
	ev.events = lev;
	ev.data.ptr = &tag_listen;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &ev) < 0)
		goto fail;
	ev.events = EPOLLIN;
	ev.data.ptr = &tag_stop;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, s_stopfd, &ev) < 0)
		goto fail;

	report_ready(true);
	if (sopt.mode != MODE_THREAD)
		close(s_readyfd);	/* parent sees EOF if a worker dies */
	worker_loop(w);
	worker_cleanup(w);
	return 0;
fail:
	fprintf(stderr, "crr server: worker %d failed to start: %s\n", w->id,
		strerror(errno));
	w->st->failed = 1;
	worker_cleanup(w);
	report_ready(false);
	return 1;
}

static void *worker_thread(void *arg)
{
	worker_run(arg, s_port);
	return NULL;
}

static void server_usage(FILE *f)
{
	fprintf(f,
"Usage: crr server [options]\n"
"Serve request/response/close: read --req-size bytes, write --resp-size\n"
"bytes, then wait for the client to close (the client is the active closer).\n"
"\n"
"  --mode M          fork (default): one listener, N forked epoll workers\n"
"                    thread: one listener, N threads with own epoll loops\n"
"                    reuseport: one SO_REUSEPORT listener per worker process\n"
"  --workers N       workers (default: number of usable CPUs)\n"
"  --exclusive       register the shared listener with EPOLLEXCLUSIVE\n"
"  --pin             pin worker i to CPU i %% ncpu\n"
"  --incoming-cpu    (reuseport) pin worker i to CPU i and set\n"
"                    SO_INCOMING_CPU=i on its listener before listen()\n"
"  --fastsocket      setsockopt(IPPROTO_TCP, TCP_FASTSOCKET=100, 1) on the\n"
"                    listener(s); warns and continues on ENOPROTOOPT\n"
"  --keepalive       serve requests on a connection until the client closes\n"
"  --addr A          address to bind (default 127.0.0.1; IPv6 e.g. ::1)\n"
"  --port P          port (default 0: kernel picks); printed as port=P\n"
"  --backlog B       listen backlog (default 1024)\n"
"  --req-size B      request size in bytes (default 64)\n"
"  --resp-size B     response size in bytes (default 64)\n"
"  -h, --help        this help\n"
"\n"
"Runs until SIGTERM/SIGINT, then prints key=value totals: accepted, served,\n"
"aborted (peer left early), errors, incoming_cpu_mismatch (SO_INCOMING_CPU\n"
"of the accepted socket != CPU that called accept), per-worker counts, and\n"
"per CPU the accepts by SO_INCOMING_CPU (incoming_cpuN) and by the CPU at\n"
"accept (accept_cpuN), for CPUs below 64 that had any.\n");
}

static void server_parse(int argc, char **argv)
{
	enum {
		OPT_MODE = 256, OPT_WORKERS, OPT_EXCL, OPT_PIN, OPT_INCPU,
		OPT_FASTSOCK, OPT_KEEPALIVE, OPT_ADDR, OPT_PORT, OPT_BACKLOG,
		OPT_REQ, OPT_RESP,
	};
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "exclusive", no_argument, NULL, OPT_EXCL },
		{ "pin", no_argument, NULL, OPT_PIN },
		{ "incoming-cpu", no_argument, NULL, OPT_INCPU },
		{ "fastsocket", no_argument, NULL, OPT_FASTSOCK },
		{ "keepalive", no_argument, NULL, OPT_KEEPALIVE },
		{ "addr", required_argument, NULL, OPT_ADDR },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "backlog", required_argument, NULL, OPT_BACKLOG },
		{ "req-size", required_argument, NULL, OPT_REQ },
		{ "resp-size", required_argument, NULL, OPT_RESP },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_MODE:
			if (!strcmp(optarg, "fork"))
				sopt.mode = MODE_FORK;
			else if (!strcmp(optarg, "thread"))
				sopt.mode = MODE_THREAD;
			else if (!strcmp(optarg, "reuseport"))
				sopt.mode = MODE_REUSEPORT;
			else
				bad_usage("unknown --mode '%s' (fork, thread or reuseport)",
					  optarg);
			break;
		case OPT_WORKERS:
			sopt.workers = parse_int("--workers", optarg, 1,
						 MAX_WORKERS);
			break;
		case OPT_EXCL:
			sopt.exclusive = true;
			break;
		case OPT_PIN:
			sopt.pin = true;
			break;
		case OPT_INCPU:
			sopt.incoming_cpu = true;
			break;
		case OPT_FASTSOCK:
			sopt.fastsocket = true;
			break;
		case OPT_KEEPALIVE:
			sopt.keepalive = true;
			break;
		case OPT_ADDR:
			sopt.addr = optarg;
			break;
		case OPT_PORT:
			sopt.port = parse_int("--port", optarg, 0, 65535);
			break;
		case OPT_BACKLOG:
			sopt.backlog = parse_int("--backlog", optarg, 1,
						 INT_MAX);
			break;
		case OPT_REQ:
			sopt.req_size = parse_int("--req-size", optarg, 1,
						  MAX_MSG_SIZE);
			break;
		case OPT_RESP:
			sopt.resp_size = parse_int("--resp-size", optarg, 1,
						   MAX_MSG_SIZE);
			break;
		case 'h':
			server_usage(stdout);
			exit(0);
		default:
			bad_option(c, argv);
		}
	}
	if (optind < argc)
		bad_usage("unexpected argument '%s'", argv[optind]);
	if (sopt.incoming_cpu && sopt.mode != MODE_REUSEPORT)
		bad_usage("--incoming-cpu needs --mode reuseport");
	if (!sopt.workers)
		sopt.workers = ncpu;
}

static void stop_workers(void)
{
	uint64_t one = 1;

	if (write(s_stopfd, &one, sizeof(one)) != sizeof(one))
		perror("crr server: eventfd");
}

static int server_main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	struct addrinfo *ai;
	struct wstats *st, tot;
	struct worker *ws;
	sigset_t sigs;
	int i, j, rfd = -1, ready[2], status, rc = 0;
	bool failed = false;
	char c;

	server_parse(argc, argv);

	ai = resolve(sopt.addr, "0", true);
	memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
	s_addr = ss;
	s_addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);

	/* Signals are taken synchronously by the main thread/parent only. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGCHLD);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	st = mmap(NULL, sopt.workers * sizeof(*st), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ws = calloc(sopt.workers, sizeof(*ws));
	if (st == MAP_FAILED || !ws)
		die("out of memory");
	s_stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s_stopfd < 0 || pipe2(ready, O_CLOEXEC) < 0)
		die("eventfd/pipe: %s", strerror(errno));
	s_readyfd = ready[1];

	if (sopt.mode == MODE_REUSEPORT) {
		/* Bound, not listening: reserves the port for the group. */
		rfd = make_listener(sopt.port, true, -1, false, false);
		if (rfd < 0)
			exit(1);
		s_port = get_port(rfd);
	} else {
		s_lfd = make_listener(sopt.port, false, -1, true, true);
		if (s_lfd < 0)
			exit(1);
		s_port = get_port(s_lfd);
	}

	for (i = 0; i < sopt.workers; i++) {
		ws[i].id = i;
		ws[i].st = &st[i];
		if (sopt.mode == MODE_THREAD) {
			if (pthread_create(&ws[i].thr, NULL, worker_thread,
					   &ws[i])) {
				fprintf(stderr,
					"crr server: pthread_create failed\n");
				failed = true;
				break;
			}
			ws[i].started = true;
			continue;
		}
		ws[i].pid = fork();
		if (ws[i].pid < 0) {
			fprintf(stderr, "crr server: fork: %s\n",
				strerror(errno));
			failed = true;
			break;
		}
		if (ws[i].pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(ready[0]);
			if (rfd >= 0)
				close(rfd);
			_exit(worker_run(&ws[i], s_port));
		}
		ws[i].started = true;
	}
	if (sopt.mode != MODE_THREAD)
		close(ready[1]);
	for (i = 0; i < sopt.workers && !failed; i++) {
		if (read(ready[0], &c, 1) != 1 || c != 'r') {
			failed = true;
			break;
		}
	}
	close(ready[0]);
	if (sopt.mode == MODE_THREAD)
		close(ready[1]);
	if (rfd >= 0)
		close(rfd);

	if (!failed) {
		printf("port=%d\n", s_port);
		fflush(stdout);
		for (;;) {
			int sig = sigwaitinfo(&sigs, NULL);

			if (sig == SIGTERM || sig == SIGINT)
				break;
			if (sig == SIGCHLD && sopt.mode != MODE_THREAD &&
			    waitpid(-1, NULL, WNOHANG) > 0) {
				fprintf(stderr,
					"crr server: a worker exited unexpectedly\n");
				failed = true;
				break;
			}
		}
	}
	stop_workers();

	for (i = 0; i < sopt.workers; i++) {
		if (!ws[i].started)
			continue;
		if (sopt.mode == MODE_THREAD) {
			pthread_join(ws[i].thr, NULL);
			continue;
		}
		/* A worker reaped above fails here; count it as failed. */
		if (waitpid(ws[i].pid, &status, 0) != ws[i].pid ||
		    !WIFEXITED(status) || WEXITSTATUS(status))
			st[i].failed = 1;
	}

	memset(&tot, 0, sizeof(tot));
	for (i = 0; i < sopt.workers; i++) {
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
	printf("mode=%s\n", mode_names[sopt.mode]);
	printf("workers=%d\n", sopt.workers);
	printf("accepted=%llu\n", (unsigned long long)tot.accepted);
	printf("served=%llu\n", (unsigned long long)tot.served);
	printf("aborted=%llu\n", (unsigned long long)tot.aborted);
	printf("errors=%llu\n", (unsigned long long)tot.errors);
	printf("incoming_cpu_mismatch=%llu\n",
	       (unsigned long long)tot.cpu_mismatch);
	printf("incoming_cpu_unknown=%llu\n",
	       (unsigned long long)tot.cpu_unknown);
	printf("worker_failures=%llu\n", (unsigned long long)tot.failed);
	for (i = 0; i < sopt.workers; i++)
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

	if (failed || tot.failed)
		rc = 1;
	if (s_lfd >= 0)
		close(s_lfd);
	close(s_stopfd);
	munmap(st, sopt.workers * sizeof(*st));
	free(ws);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Latency histogram: log-linear, 128 linear sub-buckets per power of two */
/* (bucket width <= 1/128 of its lower bound, midpoint error < 0.4%).    */
/* ---------------------------------------------------------------------- */

#define HIST_SUB_BITS	7
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_BUCKETS	(HIST_SUB + (64 - HIST_SUB_BITS) * HIST_SUB)

static unsigned int hist_index(uint64_t v)
{
	unsigned int shift;

	if (v < HIST_SUB)
		return v;
	shift = 63 - __builtin_clzll(v) - HIST_SUB_BITS;
	return HIST_SUB + shift * HIST_SUB +
	       ((v >> shift) & (HIST_SUB - 1));
}

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
/* Client                                                                 */
/* ---------------------------------------------------------------------- */

static struct cli_opts {
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
	size_t req_size;
	size_t resp_size;
	const char *csv;
	const char *label;
} copt = {
	.host = "127.0.0.1",
	.flows = 8,
	.duration = 5,
	.timeout = 5,
	.req_size = 64,
	.resp_size = 64,
	.label = "",
};

enum { F_IDLE, F_BACKOFF, F_CONNECTING, F_SENDING, F_RECEIVING };

struct cthread;

struct flow {
	struct dlist link;	/* thread's active or backoff list */
	struct cthread *th;
	int fd;
	int state;
	size_t off;
	uint64_t t_start;	/* transaction start, or backoff end */
};

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

struct cthread {
	int id;
	int ep;
	pthread_t thr;
	struct flow *flows;
	struct dlist active;	/* in flight, oldest t_start first */
	struct dlist backoff;	/* waiting after a failure, oldest first */
	char *scratch;
	size_t scratch_sz;
	uint64_t *hist;
	struct cstats st;
	uint64_t t_end;
};

static struct addrinfo *g_ai;
static char *g_req;
static uint64_t g_tickets;	/* transactions handed out (with --count) */
static uint64_t g_deadline;	/* 0: none */
static uint64_t g_timeout_ns;
static pthread_barrier_t g_barrier;
static volatile sig_atomic_t g_stop;

static void on_stop_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

/* Reserve one transaction; false once --count is used up. */
static bool take_ticket(void)
{
	if (!copt.count)
		return true;
	return __atomic_fetch_add(&g_tickets, 1, __ATOMIC_RELAXED) <
	       copt.count;
}

static bool run_over(uint64_t now)
{
	return g_stop || (g_deadline && now >= g_deadline);
}

static void flow_close(struct flow *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	dlist_del(&f->link);
	f->state = F_IDLE;
}

/* Retry after BACKOFF_NS, so a refusing server is not hammered. */
static void flow_backoff(struct flow *f)
{
	flow_close(f);
	f->state = F_BACKOFF;
	f->t_start = now_ns() + BACKOFF_NS;
	dlist_add_tail(&f->link, &f->th->backoff);
}

/* (Re)start the transaction clock; keeps the active list ordered. */
static void flow_touch(struct flow *f, uint64_t now)
{
	f->t_start = now;
	dlist_del(&f->link);
	dlist_add_tail(&f->link, &f->th->active);
}

static void connect_failed(struct flow *f, int err)
{
	f->th->st.failed_connects++;
	if (err == EADDRNOTAVAIL)
		f->th->st.addr_not_avail++;
	flow_backoff(f);
}

/* Open the next connection of @f, or retire the flow. */
static void flow_start(struct flow *f)
{
	struct cthread *th = f->th;
	struct epoll_event ev;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	uint64_t now = now_ns();
	int fd, err;

	f->state = F_IDLE;
	if (run_over(now) || !take_ticket())
		return;
	fd = socket(g_ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		th->st.errors++;
		flow_backoff(f);
		return;
	}
	f->fd = fd;
	f->off = 0;
	set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	if (copt.linger0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	f->t_start = now_ns();
	if (connect(fd, g_ai->ai_addr, g_ai->ai_addrlen) < 0 &&
	    errno != EINPROGRESS) {
		err = errno;
		connect_failed(f, err);
		return;
	}
	/* Edge-triggered: EPOLLOUT fires once the handshake is done. */
	ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
	ev.data.ptr = f;
	if (epoll_ctl(th->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		th->st.errors++;
		flow_backoff(f);
		return;
	}
	f->state = F_CONNECTING;
	dlist_add_tail(&f->link, &th->active);
}

static void flow_io_error(struct flow *f, int err)
{
	if (err == ECONNRESET || err == EPIPE)
		f->th->st.resets++;
	else
		f->th->st.errors++;	/* includes early EOF (err == 0) */
	flow_backoff(f);
}

/* A response was fully read; returns true to go on with the same socket. */
static bool flow_complete(struct flow *f)
{
	struct cthread *th = f->th;
	uint64_t now = now_ns(), lat = now - f->t_start;

	th->hist[hist_index(lat)]++;
	th->st.lat_sum += lat;
	th->st.transactions++;
	if (!copt.keepalive) {
		th->st.connections++;
		flow_close(f);
		flow_start(f);
		return false;
	}
	if (run_over(now) || !take_ticket()) {
		flow_close(f);
		return false;
	}
	f->state = F_SENDING;
	f->off = 0;
	flow_touch(f, now);
	return true;
}

static void flow_progress(struct flow *f)
{
	struct cthread *th = f->th;
	size_t want;
	ssize_t n;

	for (;;) {
		if (f->state == F_SENDING) {
			n = send(f->fd, g_req + f->off,
				 copt.req_size - f->off, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN)
					flow_io_error(f, errno);
				return;
			}
			f->off += n;
			if (f->off == copt.req_size) {
				f->state = F_RECEIVING;
				f->off = 0;
			}
		} else if (f->state == F_RECEIVING) {
			want = copt.resp_size - f->off;
			if (want > th->scratch_sz)
				want = th->scratch_sz;
			n = recv(f->fd, th->scratch, want, 0);
			if (n <= 0) {
				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0 && errno == EAGAIN)
					return;
				flow_io_error(f, n < 0 ? errno : 0);
				return;
			}
			f->off += n;
			if (f->off == copt.resp_size && !flow_complete(f))
				return;
		} else {
			return;
		}
	}
}

static void flow_event(struct flow *f, uint32_t events)
{
	socklen_t len;
	int err;

	if (f->state == F_CONNECTING) {
		if (events & (EPOLLERR | EPOLLHUP)) {
			err = 0;
			len = sizeof(err);
			getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len);
			connect_failed(f, err);
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		f->state = F_SENDING;
		f->off = 0;
		if (copt.keepalive) {
			f->th->st.connections++;
			flow_touch(f, now_ns());
		}
	}
	flow_progress(f);
}

/* Time out stuck transactions and restart flows whose backoff ended. */
static void flow_timers(struct cthread *th, uint64_t now)
{
	struct flow *f;

	while (!dlist_empty(&th->active)) {
		f = container_of(th->active.next, struct flow, link);
		if (f->t_start + g_timeout_ns > now)
			break;
		th->st.timeouts++;
		flow_close(f);
		flow_start(f);
	}
	while (!dlist_empty(&th->backoff)) {
		f = container_of(th->backoff.next, struct flow, link);
		if (f->t_start > now)
			break;
		dlist_del(&f->link);
		flow_start(f);
	}
}

static int next_wait_ms(struct cthread *th, uint64_t now)
{
	uint64_t wake = now + STOP_POLL_MS * NSEC_PER_MSEC, t;

	if (g_deadline && g_deadline < wake)
		wake = g_deadline;
	if (!dlist_empty(&th->active)) {
		t = container_of(th->active.next, struct flow, link)->t_start +
		    g_timeout_ns;
		if (t < wake)
			wake = t;
	}
	if (!dlist_empty(&th->backoff)) {
		t = container_of(th->backoff.next, struct flow, link)->t_start;
		if (t < wake)
			wake = t;
	}
	if (wake <= now)
		return 0;
	return (wake - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC;
}

static void *client_thread(void *arg)
{
	struct epoll_event evs[MAX_EVENTS];
	struct cthread *th = arg;
	uint64_t now;
	int i, n, cpu;

	if (copt.pin) {
		cpu = cpu_for(th->id);
		if (pin_to_cpu(cpu) < 0)
			fprintf(stderr,
				"crr client: thread %d: pin to CPU %d: %s\n",
				th->id, cpu, strerror(errno));
	}
	pthread_barrier_wait(&g_barrier);

	for (i = 0; i < copt.flows; i++)
		flow_start(&th->flows[i]);
	for (;;) {
		now = now_ns();
		if (run_over(now))
			break;
		flow_timers(th, now);
		if (dlist_empty(&th->active) && dlist_empty(&th->backoff))
			break;
		n = epoll_wait(th->ep, evs, MAX_EVENTS, next_wait_ms(th, now));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			th->st.errors++;
			break;
		}
		for (i = 0; i < n; i++)
			flow_event(evs[i].data.ptr, evs[i].events);
	}
	th->t_end = now_ns();

	/* Abandon what is still in flight; not counted as errors. */
	while (!dlist_empty(&th->active))
		flow_close(container_of(th->active.next, struct flow, link));
	while (!dlist_empty(&th->backoff))
		flow_close(container_of(th->backoff.next, struct flow, link));
	return NULL;
}

static void client_usage(FILE *f)
{
	fprintf(f,
"Usage: crr client --port P [options]\n"
"Open connections and run request/response/close on each (tcp_crr), or\n"
"with --keepalive repeat request/response on long-lived connections (rr).\n"
"\n"
"  --host H          server address or name (default 127.0.0.1; IPv6 ok)\n"
"  --port P          server port (required)\n"
"  --threads T       threads, one epoll loop each (default: usable CPUs)\n"
"  --flows F         concurrent connections per thread (default 8)\n"
"  --duration S      run for S seconds (float; default 5 unless --count)\n"
"  --count N         stop after N connections (transactions with\n"
"                    --keepalive); with --duration, whichever comes first\n"
"  --timeout S       give up on a transaction after S seconds (default 5)\n"
"  --pin             pin thread i to CPU i %% ncpu\n"
"  --keepalive       reuse connections: report tps, latency per transaction\n"
"  --linger0         close with SO_LINGER {1,0}: RST, no TIME_WAIT\n"
"  --req-size B      request size in bytes (default 64)\n"
"  --resp-size B     response size in bytes (default 64)\n"
"  --csv FILE        also append a CSV row (header if FILE is new/empty)\n"
"  --label STR       value of the CSV label column (default empty)\n"
"  --meter           mark the timed phase (meter_begin/meter_end no-ops)\n"
"                    for the locality meter, benchmarks/meter/\n"
"  -h, --help        this help\n"
"\n"
"Latency runs from connect() (crr) or the request (rr) to the last response\n"
"byte. Prints key=value lines. Exit status 1 on failed connects, resets,\n"
"timeouts or errors; flows in flight at the deadline are not errors.\n");
}

static void client_parse(int argc, char **argv)
{
	enum {
		OPT_HOST = 256, OPT_PORT, OPT_THREADS, OPT_FLOWS, OPT_DURATION,
		OPT_METER,
		OPT_COUNT, OPT_TIMEOUT, OPT_PIN, OPT_KEEPALIVE, OPT_LINGER0,
		OPT_REQ, OPT_RESP, OPT_CSV, OPT_LABEL,
	};
	static const struct option opts[] = {
		{ "host", required_argument, NULL, OPT_HOST },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "flows", required_argument, NULL, OPT_FLOWS },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "meter", no_argument, NULL, OPT_METER },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "pin", no_argument, NULL, OPT_PIN },
		{ "keepalive", no_argument, NULL, OPT_KEEPALIVE },
		{ "linger0", no_argument, NULL, OPT_LINGER0 },
		{ "req-size", required_argument, NULL, OPT_REQ },
		{ "resp-size", required_argument, NULL, OPT_RESP },
		{ "csv", required_argument, NULL, OPT_CSV },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_HOST:
			copt.host = optarg;
			break;
		case OPT_PORT:
			parse_int("--port", optarg, 1, 65535);
			copt.port = optarg;
			break;
		case OPT_THREADS:
			copt.threads = parse_int("--threads", optarg, 1,
						 MAX_THREADS);
			break;
		case OPT_FLOWS:
			copt.flows = parse_int("--flows", optarg, 1,
					       MAX_FLOWS);
			break;
		case OPT_METER:
			copt.meter = true;
			break;
		case OPT_DURATION:
			copt.duration = parse_secs("--duration", optarg);
			copt.duration_set = true;
			break;
		case OPT_COUNT:
			copt.count = parse_int("--count", optarg, 1,
					       LLONG_MAX);
			break;
		case OPT_TIMEOUT:
			copt.timeout = parse_secs("--timeout", optarg);
			break;
		case OPT_PIN:
			copt.pin = true;
			break;
		case OPT_KEEPALIVE:
			copt.keepalive = true;
			break;
		case OPT_LINGER0:
			copt.linger0 = true;
			break;
		case OPT_REQ:
			copt.req_size = parse_int("--req-size", optarg, 1,
						  MAX_MSG_SIZE);
			break;
		case OPT_RESP:
			copt.resp_size = parse_int("--resp-size", optarg, 1,
						   MAX_MSG_SIZE);
			break;
		case OPT_CSV:
			copt.csv = optarg;
			break;
		case OPT_LABEL:
			copt.label = optarg;
			break;
		case 'h':
			client_usage(stdout);
			exit(0);
		default:
			bad_option(c, argv);
		}
	}
	if (optind < argc)
		bad_usage("unexpected argument '%s'", argv[optind]);
	if (!copt.port)
		bad_usage("--port is required");
	if (!copt.threads)
		copt.threads = ncpu;
}

struct cresult {
	const char *mode;
	double secs;
	double rate;
	double p50, p90, p99, mean;	/* us */
	struct cstats st;
};

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

static int write_csv(const struct cresult *r)
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

static int client_main(int argc, char **argv)
{
	struct cthread *ths;
	struct cresult r;
	struct sigaction sa;
	uint64_t *hist, t0, t_end = 0;
	int i, j;

	client_parse(argc, argv);
	if (!copt.count && !copt.duration_set)
		copt.duration_set = true;	/* default 5 s */

	g_ai = resolve(copt.host, copt.port, false);
	g_req = malloc(copt.req_size);
	ths = calloc(copt.threads, sizeof(*ths));
	hist = calloc(HIST_BUCKETS, sizeof(*hist));
	if (!g_req || !ths || !hist)
		die("out of memory");
	memset(g_req, 'q', copt.req_size);
	g_timeout_ns = copt.timeout * NSEC_PER_SEC;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;	/* no SA_RESTART: wake epoll */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (i = 0; i < copt.threads; i++) {
		struct cthread *th = &ths[i];

		th->id = i;
		dlist_init(&th->active);
		dlist_init(&th->backoff);
		th->ep = epoll_create1(EPOLL_CLOEXEC);
		th->flows = calloc(copt.flows, sizeof(*th->flows));
		th->hist = calloc(HIST_BUCKETS, sizeof(*th->hist));
		th->scratch_sz = copt.resp_size > SCRATCH_MAX ? SCRATCH_MAX :
							       copt.resp_size;
		if (th->scratch_sz < 4096)
			th->scratch_sz = 4096;
		th->scratch = malloc(th->scratch_sz);
		if (th->ep < 0 || !th->flows || !th->hist || !th->scratch)
			die("thread setup: %s", strerror(errno));
		for (j = 0; j < copt.flows; j++) {
			th->flows[j].th = th;
			th->flows[j].fd = -1;
			dlist_init(&th->flows[j].link);
		}
	}
	if (pthread_barrier_init(&g_barrier, NULL, copt.threads + 1))
		die("pthread_barrier_init failed");
	for (i = 0; i < copt.threads; i++)
		if (pthread_create(&ths[i].thr, NULL, client_thread, &ths[i]))
			die("pthread_create failed");
	if (copt.meter)
		meter_begin();
	t0 = now_ns();
	if (copt.duration_set)
		g_deadline = t0 + (uint64_t)(copt.duration * NSEC_PER_SEC);
	pthread_barrier_wait(&g_barrier);

	memset(&r, 0, sizeof(r));
	for (i = 0; i < copt.threads; i++) {
		struct cthread *th = &ths[i];

		pthread_join(th->thr, NULL);
		if (th->t_end > t_end)
			t_end = th->t_end;
		r.st.connections += th->st.connections;
		r.st.transactions += th->st.transactions;
		r.st.failed_connects += th->st.failed_connects;
		r.st.addr_not_avail += th->st.addr_not_avail;
		r.st.resets += th->st.resets;
		r.st.timeouts += th->st.timeouts;
		r.st.errors += th->st.errors;
		r.st.lat_sum += th->st.lat_sum;
		for (j = 0; j < (int)HIST_BUCKETS; j++)
			hist[j] += th->hist[j];
		close(th->ep);
		free(th->flows);
		free(th->hist);
		free(th->scratch);
	}
	pthread_barrier_destroy(&g_barrier);
	if (copt.meter)
		meter_end();

	r.mode = copt.keepalive ? "rr" : "crr";
	r.secs = t_end > t0 ? (t_end - t0) / 1e9 : 0;
	r.rate = r.secs > 0 ? r.st.transactions / r.secs : 0;
	r.p50 = hist_pct(hist, r.st.transactions, 500) / 1e3;
	r.p90 = hist_pct(hist, r.st.transactions, 900) / 1e3;
	r.p99 = hist_pct(hist, r.st.transactions, 990) / 1e3;
	r.mean = r.st.transactions ?
		 (double)r.st.lat_sum / r.st.transactions / 1e3 : 0;

	printf("mode=%s\n", r.mode);
	printf("threads=%d\n", copt.threads);
	printf("flows=%d\n", copt.flows);
	printf("duration_s=%.3f\n", r.secs);
	printf("connections=%llu\n", (unsigned long long)r.st.connections);
	if (copt.keepalive) {
		printf("transactions=%llu\n",
		       (unsigned long long)r.st.transactions);
		printf("tps=%.1f\n", r.rate);
	} else {
		printf("cps=%.1f\n", r.rate);
	}
	printf("latency_p50_us=%.1f\n", r.p50);
	printf("latency_p90_us=%.1f\n", r.p90);
	printf("latency_p99_us=%.1f\n", r.p99);
	printf("latency_mean_us=%.1f\n", r.mean);
	printf("failed_connects=%llu\n",
	       (unsigned long long)r.st.failed_connects);
	printf("addr_not_avail=%llu\n",
	       (unsigned long long)r.st.addr_not_avail);
	printf("resets=%llu\n", (unsigned long long)r.st.resets);
	printf("timeouts=%llu\n", (unsigned long long)r.st.timeouts);
	printf("errors=%llu\n", (unsigned long long)r.st.errors);
	fflush(stdout);

	if (copt.csv && write_csv(&r))
		fprintf(stderr, "crr client: cannot write %s: %s\n", copt.csv,
			strerror(errno));

	free(ths);
	free(hist);
	free(g_req);
	freeaddrinfo(g_ai);
	return (r.st.failed_connects || r.st.resets || r.st.timeouts ||
		r.st.errors) ? 1 : 0;
}

/* ---------------------------------------------------------------------- */

static void main_usage(FILE *f)
{
	fprintf(f,
"Usage: crr server [options]   accept and serve request/response/close\n"
"       crr client [options]   generate short-connection load\n"
"       crr {server|client} --help\n"
"\n"
"A tcp_crr-style benchmark: each connection does connect, one request of\n"
"--req-size bytes, one response of --resp-size bytes, and close (client\n"
"closes first). --keepalive on both sides measures request/response on\n"
"persistent connections instead. Results are key=value lines on stdout.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		main_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		main_usage(stdout);
		return 0;
	}
	init_cpus();
	raise_nofile();
	if (!strcmp(argv[1], "server")) {
		role = "server";
		return server_main(argc - 1, argv + 1);
	}
	if (!strcmp(argv[1], "client")) {
		role = "client";
		return client_main(argc - 1, argv + 1);
	}
	bad_usage("unknown command '%s' (expected server or client)", argv[1]);
}
