// SPDX-License-Identifier: GPL-2.0
/*
 * crr client: drive T threads x F flows of non-blocking connections and
 * report connections/s and latency percentiles as key=value lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "crr.h"
#include "fastsocket.h"		/* tools/: TCP_FASTSOCKET and friends */
#include "meter/meter.h"

#define BACKOFF_NS	(5 * NSEC_PER_MSEC)	/* pause after a failure */
#define STOP_POLL_MS	100			/* notice g_stop this fast */

/* ---------------------------------------------------------------------- */
/* Client                                                                 */
/* ---------------------------------------------------------------------- */

struct cli_opts copt = {
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

/*
 * --fastsocket: TCP_FASTSOCKET_ON on @fd, an enabled active socket. A
 * kernel without the option gets one warning and sockets without it.
 */
static void set_fastsocket(int fd)
{
	static int warned;

	if (set_int_opt(fd, IPPROTO_TCP, TCP_FASTSOCKET, TCP_FASTSOCKET_ON) &&
	    !__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
		fprintf(stderr,
			"crr client: warning: TCP_FASTSOCKET: %s; continuing without it\n",
			strerror(errno));
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
	if (copt.fastsocket)
		set_fastsocket(fd);
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
"\n");
	flags_usage(f, ROLE_CLIENT);
	fprintf(f,
"\n"
"Latency runs from connect() (crr) or the request (rr) to the last response\n"
"byte. Prints key=value lines. Exit status 1 on failed connects, resets,\n"
"timeouts or errors; flows in flight at the deadline are not errors.\n");
}

static void client_parse(int argc, char **argv)
{
	flags_parse(ROLE_CLIENT, &copt, argc, argv, client_usage);
	if (!copt.port)
		bad_usage("--port is required");
	if (!copt.threads)
		copt.threads = ncpu;
}

int client_main(int argc, char **argv)
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

	client_report(&r, hist, t0, t_end);

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
