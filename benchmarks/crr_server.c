// SPDX-License-Identifier: GPL-2.0
/*
 * crr server: accept connections, answer one request on each (or many
 * with --keepalive), wait for the client's close (or, with --close-first,
 * close first).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fastsocket.h"		/* tools/: TCP_FASTSOCKET and friends */
#include "crr.h"

#ifndef SO_INCOMING_CPU
#define SO_INCOMING_CPU		49
#endif
#ifndef EPOLLEXCLUSIVE
#define EPOLLEXCLUSIVE		(1u << 28)
#endif

#define ACCEPT_BATCH	32

/* ---------------------------------------------------------------------- */
/* Server                                                                 */
/* ---------------------------------------------------------------------- */

static const char *const mode_names[] = { "fork", "thread", "reuseport" };

static struct srv_opts sopt = {
	.mode = MODE_FORK,
	.addr = "127.0.0.1",
	.backlog = 1024,
	.req_size = 64,
	.resp_size = 64,
};

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
					if (sopt.close_first) {
						conn_put(w, c);
						return;
					}
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
"\n");
	flags_usage(f, ROLE_SERVER);
	fprintf(f,
"\n"
"Runs until SIGTERM/SIGINT, then prints key=value totals: accepted, served,\n"
"aborted (peer left early), errors, incoming_cpu_mismatch (SO_INCOMING_CPU\n"
"of the accepted socket != CPU that called accept), per-worker counts, and\n"
"per CPU the accepts by SO_INCOMING_CPU (incoming_cpuN) and by the CPU at\n"
"accept (accept_cpuN), for CPUs below 64 that had any.\n");
}

static void server_parse(int argc, char **argv)
{
	flags_parse(ROLE_SERVER, &sopt, argc, argv, server_usage);
	if (sopt.incoming_cpu && sopt.mode != MODE_REUSEPORT)
		bad_usage("--incoming-cpu needs --mode reuseport");
	if (sopt.close_first && sopt.keepalive)
		bad_usage("--close-first and --keepalive exclude each other");
	if (!sopt.workers)
		sopt.workers = ncpu;
}

static void stop_workers(void)
{
	uint64_t one = 1;

	if (write(s_stopfd, &one, sizeof(one)) != sizeof(one))
		perror("crr server: eventfd");
}

int server_main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	struct addrinfo *ai;
	struct wstats *st;
	struct worker *ws;
	sigset_t sigs;
	int i, rfd = -1, ready[2], status, rc = 0;
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

	if (server_report(st, sopt.workers, mode_names[sopt.mode]) || failed)
		rc = 1;
	if (s_lfd >= 0)
		close(s_lfd);
	close(s_stopfd);
	munmap(st, sopt.workers * sizeof(*st));
	free(ws);
	return rc;
}
