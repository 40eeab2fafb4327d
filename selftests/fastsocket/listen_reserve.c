// SPDX-License-Identifier: GPL-2.0
/*
 * Reservation in the local listen table: a connection queued on CPU c is
 * kept for the acceptors of CPU c while one runs there, and another CPU's
 * acceptor takes it only when CPU c has no acceptor, when c's queue is
 * longer than net.fastsocket.listen_reserve_qlen, or when the connection
 * has waited net.fastsocket.listen_reserve_us.
 *
 * - locality: workers pinned one per CPU (forked, threads, EPOLLEXCLUSIVE
 *   epoll, level-triggered epoll) serve pinned clients, with the vCPUs
 *   really running in parallel; at least 95% of the connections must be
 *   accepted on the CPU whose softirq queued them (SO_INCOMING_CPU and
 *   the counters), none lost. The same workload on a listener without
 *   Fastsocket, in the same test, is the control (logged).
 * - liveness: a stopped worker's connections are taken elsewhere once the
 *   bound expires; a reserved connection is not readable elsewhere before
 *   (no EAGAIN spin for level-triggered epoll) and is after; a long queue
 *   opens at once; a CPU without acceptor is stolen from at once, one
 *   whose epoll instance sleeps on the listener is not; bound 0
 *   is the old behaviour; one unpinned acceptor still gets everything.
 *
 * On loopback with RPS off, a connection's handshake runs in softirq on
 * the connecting thread's CPU, so pinning the client picks the CPU.
 *
 * Emulation with KASAN and lockdep runs tens of times slower than
 * hardware, and a vCPU thread may not run for a while when the host is
 * busy, so the locality test scales the bound up (100 ms); the policy
 * under test is the same at any bound.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include "fs_util.h"
#include "kselftest_harness.h"

#define MAX_CPUS	8
#define CONNS_PER_CPU	150
#define LOCAL_SHARE	0.95

enum wmode {
	W_ACCEPT,	/* blocking accept() */
	W_EPOLL_EXCL,	/* epoll, EPOLLEXCLUSIVE (nginx, accept_mutex off) */
	W_EPOLL_LT,	/* epoll, level-triggered, every instance woken */
};

/* Results of one workload, shared with forked workers. */
struct tally {
	int	done;
	int	accepted[MAX_CPUS];
	int	local[MAX_CPUS];
	int	errors[MAX_CPUS];
	int	client_errors[MAX_CPUS];
};

struct worker_arg {
	int		lfd;
	int		cpu;
	enum wmode	mode;
	struct tally	*t;
};

static int ncpus(void)
{
	int n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < MAX_CPUS ? n : MAX_CPUS;
}

static int set_reserve(const char *us, const char *qlen)
{
	return fs_sysctl_write("listen_reserve_us", us) ?:
	       fs_sysctl_write("listen_reserve_qlen", qlen);
}

static int set_rcvtimeo(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = ms % 1000 * 1000 };

	return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Serve one accepted connection: one byte in, one byte out. */
static void serve_one(struct worker_arg *w, int s)
{
	char b;

	/* Inherited from the listener: the worker waits for the client. */
	set_rcvtimeo(s, 0);
	w->t->accepted[w->cpu]++;
	w->t->local[w->cpu] += incoming_cpu(s) == w->cpu;
	if (read(s, &b, 1) != 1 || write(s, &b, 1) != 1)
		w->t->errors[w->cpu]++;
	close(s);
}

/* A worker pinned to w->cpu, until w->t->done. */
static void *worker(void *arg)
{
	struct worker_arg *w = arg;
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = -1, s;

	if (pin_to(w->cpu)) {
		w->t->errors[w->cpu]++;
		return NULL;
	}
	if (w->mode != W_ACCEPT) {
		ep = epoll_create1(0);
		if (w->mode == W_EPOLL_EXCL)
			ev.events |= EPOLLEXCLUSIVE;
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, w->lfd, &ev)) {
			w->t->errors[w->cpu]++;
			return NULL;
		}
	}
	/* Pairs with the release store of ->done in run_workload(). */
	while (!__atomic_load_n(&w->t->done, __ATOMIC_ACQUIRE)) {
		if (ep >= 0 && epoll_wait(ep, &ev, 1, 50) <= 0)
			continue;
		/* Non-blocking for epoll workers, SO_RCVTIMEO otherwise. */
		s = accept(w->lfd, NULL, NULL);
		if (s >= 0)
			serve_one(w, s);
		else if (errno != EAGAIN && errno != EINTR)
			w->t->errors[w->cpu]++;
	}
	if (ep >= 0)
		close(ep);
	return NULL;
}

/* A client pinned to w->cpu: CONNS_PER_CPU request/response connections. */
static void *client(void *arg)
{
	struct worker_arg *w = arg;
	char b = 'x';
	int i, c;

	if (pin_to(w->cpu)) {
		w->t->client_errors[w->cpu]++;
		return NULL;
	}
	for (i = 0; i < CONNS_PER_CPU; i++) {
		c = fs_connect_to(w->lfd);
		if (c < 0) {
			w->t->client_errors[w->cpu]++;
			continue;
		}
		if (write(c, &b, 1) != 1 || read(c, &b, 1) != 1)
			w->t->client_errors[w->cpu]++;
		close(c);
	}
	return NULL;
}

static int tally_sum(const int *v, int n)
{
	int i, sum = 0;

	for (i = 0; i < n; i++)
		sum += v[i];
	return sum;
}

/*
 * Serve ncpus() pinned clients with one pinned worker per CPU on a new
 * listener of @family with TCP_FASTSOCKET @fsmode. Workers are threads or
 * forked processes. Returns the tally (munmap it) or NULL.
 */
static struct tally *run_workload(int family, enum wmode mode, bool threads,
				  int fsmode)
{
	struct worker_arg wa[MAX_CPUS], ca[MAX_CPUS];
	pthread_t wt[MAX_CPUS], ct[MAX_CPUS];
	int n = ncpus(), cpu, lfd, i;
	pid_t pid[MAX_CPUS];
	struct tally *t;

	t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED)
		return NULL;
	memset(t, 0, sizeof(*t));
	lfd = fs_listen(family, 1024, fsmode);
	if (lfd < 0)
		goto err;
	if (mode == W_ACCEPT ? set_rcvtimeo(lfd, 50) :
	    fcntl(lfd, F_SETFL, O_NONBLOCK))
		goto err_close;

	for (cpu = 0; cpu < n; cpu++) {
		wa[cpu] = (struct worker_arg){ lfd, cpu, mode, t };
		ca[cpu] = wa[cpu];
		if (threads) {
			if (pthread_create(&wt[cpu], NULL, worker, &wa[cpu]))
				goto err_close;
			continue;
		}
		pid[cpu] = fork();
		if (pid[cpu] < 0)
			goto err_close;
		if (pid[cpu] == 0) {
			worker(&wa[cpu]);
			_exit(0);
		}
	}
	for (cpu = 0; cpu < n; cpu++)
		pthread_create(&ct[cpu], NULL, client, &ca[cpu]);
	for (cpu = 0; cpu < n; cpu++)
		pthread_join(ct[cpu], NULL);
	/* Every connection the clients completed was accepted already. */
	for (i = 0; i < 500 && tally_sum(t->accepted, n) +
	     tally_sum(t->client_errors, n) < n * CONNS_PER_CPU; i++)
		usleep(10000);
	/* Pairs with the acquire load in worker(). */
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	for (cpu = 0; cpu < n; cpu++) {
		if (threads)
			pthread_join(wt[cpu], NULL);
		else
			waitpid(pid[cpu], NULL, 0);
	}
	close(lfd);
	return t;

err_close:
	close(lfd);
err:
	munmap(t, sizeof(*t));
	return NULL;
}

FIXTURE(locality) {
	int ncpu;
};

FIXTURE_VARIANT(locality) {
	int		family;
	enum wmode	mode;
	bool		threads;
};

FIXTURE_VARIANT_ADD(locality, ipv4_accept_forked) {
	.family = AF_INET, .mode = W_ACCEPT,
};

FIXTURE_VARIANT_ADD(locality, ipv4_accept_threads) {
	.family = AF_INET, .mode = W_ACCEPT, .threads = true,
};

FIXTURE_VARIANT_ADD(locality, ipv4_epoll_exclusive) {
	.family = AF_INET, .mode = W_EPOLL_EXCL,
};

FIXTURE_VARIANT_ADD(locality, ipv4_epoll_level) {
	.family = AF_INET, .mode = W_EPOLL_LT,
};

FIXTURE_VARIANT_ADD(locality, ipv6_accept_forked) {
	.family = AF_INET6, .mode = W_ACCEPT,
};

FIXTURE_VARIANT_ADD(locality, ipv6_accept_threads) {
	.family = AF_INET6, .mode = W_ACCEPT, .threads = true,
};

FIXTURE_VARIANT_ADD(locality, ipv6_epoll_exclusive) {
	.family = AF_INET6, .mode = W_EPOLL_EXCL,
};

FIXTURE_VARIANT_ADD(locality, ipv6_epoll_level) {
	.family = AF_INET6, .mode = W_EPOLL_LT,
};

FIXTURE_SETUP(locality)
{
	if (!fs_present())
		SKIP(return, "fastsocket module not loaded");
	self->ncpu = ncpus();
	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_EQ(0, fs_new_netns());
	ASSERT_EQ(0, fs_enable_all());
	ASSERT_EQ(0, set_reserve("100000", "16"));
}

FIXTURE_TEARDOWN(locality)
{
}

/*
 * Pinned workers serving pinned clients, the vCPUs in parallel: nearly
 * every connection is accepted on the CPU that queued it, and none is
 * lost. The control (no Fastsocket on the listener) is logged beside it.
 */
TEST_F_TIMEOUT(locality, accepted_where_queued, 300)
{
	int n = self->ncpu, total = n * CONNS_PER_CPU;
	struct timespec t0, t1, t2;
	long local, stolen, why;
	struct tally *t;
	double control;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	t = run_workload(variant->family, variant->mode, variant->threads,
			 TCP_FASTSOCKET_OFF);
	ASSERT_NE(NULL, t);
	EXPECT_EQ(0, tally_sum(t->client_errors, n));
	EXPECT_EQ(0, tally_sum(t->errors, n));
	EXPECT_EQ(total, tally_sum(t->accepted, n));
	control = (double)tally_sum(t->local, n) / total;
	munmap(t, sizeof(*t));
	/* The control listener leaves the counters alone. */
	EXPECT_EQ(0, fs_stat("listen_local", -1));
	clock_gettime(CLOCK_MONOTONIC, &t1);

	t = run_workload(variant->family, variant->mode, variant->threads,
			 TCP_FASTSOCKET_ON);
	ASSERT_NE(NULL, t);
	EXPECT_EQ(0, tally_sum(t->client_errors, n));
	EXPECT_EQ(0, tally_sum(t->errors, n));
	EXPECT_EQ(total, tally_sum(t->accepted, n));
	clock_gettime(CLOCK_MONOTONIC, &t2);
	TH_LOG("accepted on the queueing CPU: %.3f with Fastsocket (%.1f s), %.3f without (%.1f s)",
	       (double)tally_sum(t->local, n) / total,
	       t2.tv_sec - t1.tv_sec + (t2.tv_nsec - t1.tv_nsec) / 1e9, control,
	       t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	EXPECT_LE(LOCAL_SHARE * total, tally_sum(t->local, n));
	munmap(t, sizeof(*t));

	local = fs_stat("accept_local", -1);
	stolen = fs_stat("accept_stolen", -1);
	why = fs_stat("steal_absent", -1) + fs_stat("steal_long", -1) +
	      fs_stat("steal_late", -1);
	TH_LOG("accept_local %ld accept_stolen %ld wake_local %ld wake_other %ld",
	       local, stolen, fs_stat("wake_local", -1),
	       fs_stat("wake_other", -1));
	EXPECT_EQ(total, fs_stat("listen_local", -1));
	EXPECT_EQ(total, local + stolen);
	EXPECT_LE(LOCAL_SHARE * total, local);
	EXPECT_EQ(stolen, why);
}

FIXTURE(reserve) {
	int lfd;
};

FIXTURE_VARIANT(reserve) {
	int family;
};

FIXTURE_VARIANT_ADD(reserve, ipv4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(reserve, ipv6) { .family = AF_INET6 };

FIXTURE_SETUP(reserve)
{
	self->lfd = -1;
	if (!fs_present())
		SKIP(return, "fastsocket module not loaded");
	if (ncpus() < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_EQ(0, fs_new_netns());
	ASSERT_EQ(0, fs_enable_all());
	self->lfd = fs_listen(variant->family, 1024, TCP_FASTSOCKET_ON);
	ASSERT_LE(0, self->lfd);
}

FIXTURE_TEARDOWN(reserve)
{
	if (self->lfd >= 0)
		close(self->lfd);
}

/* Non-blocking accept() on @lfd from @cpu: the socket, or -errno. */
static int accept_on(int lfd, int cpu)
{
	int s;

	if (pin_to(cpu))
		return -errno;
	s = accept4(lfd, NULL, NULL, 0);
	return s >= 0 ? s : -errno;
}

struct visitor {
	int	lfd;
	int	cpu;
	int	ret;
};

static void *visit_thread(void *arg)
{
	struct visitor *v = arg;
	int s = accept_on(v->lfd, v->cpu);

	if (s >= 0)
		close(s);
	v->ret = s >= 0 ? -EEXIST : s == -EAGAIN ? 0 : s;
	return NULL;
}

/*
 * Another acceptor visits @cpu: a thread of its own (the kernel knows the
 * task it last saw on a CPU, and lets that very task take the CPU's
 * connections elsewhere) runs a non-blocking accept() there that finds
 * nothing. The caller's thread stays where it was.
 */
static int visit(int lfd, int cpu)
{
	struct visitor v = { lfd, cpu, -EINVAL };
	int flags = fcntl(lfd, F_GETFL);
	pthread_t t;

	fcntl(lfd, F_SETFL, flags | O_NONBLOCK);
	if (pthread_create(&t, NULL, visit_thread, &v) == 0)
		pthread_join(t, NULL);
	fcntl(lfd, F_SETFL, flags);
	return v.ret;
}

/*
 * A connection reserved for CPU 1 is not readable on CPU 0, for poll()
 * nor level-triggered epoll, and accept() there says EAGAIN, until the
 * bound (1 s here) expires: then the timer makes it readable and CPU 0
 * takes it.
 */
TEST_F(reserve, reserved_until_the_bound)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct pollfd pfd = { .fd = self->lfd, .events = POLLIN };
	int c, s, ep;

	ASSERT_EQ(0, set_reserve("1000000", "16"));
	fcntl(self->lfd, F_SETFL, O_NONBLOCK);
	ASSERT_EQ(0, visit(self->lfd, 1));
	ASSERT_EQ(0, pin_to(1));
	c = fs_connect_to(self->lfd);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, wait_listen_local(1, 1));

	ASSERT_EQ(0, pin_to(0));
	ep = epoll_create1(0);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->lfd, &ev));
	EXPECT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	EXPECT_EQ(-EAGAIN, accept_on(self->lfd, 0));
	EXPECT_EQ(0, fs_stat("accept_stolen", -1));

	/* Liveness, not timing: it must come within a generous 20 s. */
	EXPECT_EQ(1, epoll_wait(ep, &ev, 1, 20000));
	s = accept_on(self->lfd, 0);
	ASSERT_LE(0, s);
	EXPECT_EQ(1, incoming_cpu(s));
	EXPECT_EQ(1, fs_stat("accept_stolen", -1));
	EXPECT_EQ(1, fs_stat("steal_late", -1));
	EXPECT_EQ(1, fs_stat("reserve_expired", 1));
	/* It waited the bound, 1 s: the last bucket of the histogram. */
	EXPECT_EQ(1, fs_stat("wait_us_more", -1));
	close(s);
	close(c);
	close(ep);
}

/*
 * An EPOLLEXCLUSIVE epoll instance of CPU 1 on the listener (with @keep),
 * or one that left it again: set up on CPU 1, then asleep in epoll_wait()
 * until the test ends, accepting nothing.
 */
struct sleeper {
	int	lfd;
	bool	keep;
	int	ready[2], quit[2];
	int	ret;
};

static void *sleeper_main(void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	struct epoll_event q = { .events = EPOLLIN };
	struct sleeper *sl = arg;
	int ep = -1;
	char b = 0;

	sl->ret = -1;
	if (pin_to(1))
		goto out;
	ep = epoll_create1(0);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sl->lfd, &ev) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, sl->quit[0], &q) ||
	    (!sl->keep && epoll_ctl(ep, EPOLL_CTL_DEL, sl->lfd, NULL)))
		goto out;
	sl->ret = 0;
out:
	if (write(sl->ready[1], &b, 1) == 1 && !sl->ret) {
		/* woken by a connection, or told to quit: wait for the latter */
		epoll_wait(ep, &ev, 1, -1);
		while (read(sl->quit[0], &b, 1) < 0 && errno == EINTR)
			;
	}
	if (ep >= 0)
		close(ep);
	return NULL;
}

/*
 * An epoll instance that polls the listener from CPU 1 is an acceptor
 * there even when it has slept longer than ten bounds since its last
 * visit: a connection queued on CPU 1 stays reserved for it, and CPU 0
 * takes it only when the bound (300 ms) expires (steal_late). The control,
 * in the same test: once the instance has left the listener, a connection
 * queued after as long a sleep is taken at once (steal_absent).
 */
TEST_F_TIMEOUT(reserve, sleeping_epoll_keeps_reservation, 90)
{
	struct pollfd pfd = { .fd = self->lfd, .events = POLLIN };
	long absent, late;
	int round, c, s;
	pthread_t t;
	char b = 'q';

	ASSERT_EQ(0, set_reserve("300000", "16"));
	fcntl(self->lfd, F_SETFL, O_NONBLOCK);
	for (round = 0; round < 2; round++) {
		struct sleeper sl = { .lfd = self->lfd, .keep = round };

		ASSERT_EQ(0, pipe(sl.ready));
		ASSERT_EQ(0, pipe(sl.quit));
		ASSERT_EQ(0, pthread_create(&t, NULL, sleeper_main, &sl));
		ASSERT_EQ(1, read(sl.ready[0], &b, 1));
		ASSERT_EQ(0, sl.ret);
		/* ten bounds and a tenth since its visit (epoll_ctl's poll) */
		usleep(3300 * 1000);
		absent = fs_stat("steal_absent", -1);
		late = fs_stat("steal_late", -1);
		ASSERT_EQ(0, pin_to(1));
		c = fs_connect_to(self->lfd);
		ASSERT_LE(0, c);
		ASSERT_EQ(0, wait_listen_local(1, round + 1));
		s = accept_on(self->lfd, 0);
		if (round) {
			EXPECT_EQ(-EAGAIN, s);
			if (s >= 0)
				close(s);
			/* Liveness, not timing: within a generous 20 s. */
			EXPECT_EQ(1, poll(&pfd, 1, 20000));
			s = accept_on(self->lfd, 0);
			EXPECT_EQ(late + 1, fs_stat("steal_late", -1));
			EXPECT_EQ(absent, fs_stat("steal_absent", -1));
		} else {
			EXPECT_EQ(absent + 1, fs_stat("steal_absent", -1));
		}
		ASSERT_LE(0, s);
		EXPECT_EQ(1, incoming_cpu(s));
		close(s);
		close(c);
		ASSERT_EQ(1, write(sl.quit[1], &b, 1));
		pthread_join(t, NULL);
		close(sl.ready[0]);
		close(sl.ready[1]);
		close(sl.quit[0]);
		close(sl.quit[1]);
	}
}

/*
 * A queue longer than listen_reserve_qlen is open at once; once it is no
 * longer, its head is reserved again until the bound.
 */
TEST_F(reserve, long_queue_opens_at_once)
{
	int c[3], s, i;

	ASSERT_EQ(0, set_reserve("1000000", "2"));
	fcntl(self->lfd, F_SETFL, O_NONBLOCK);
	ASSERT_EQ(0, visit(self->lfd, 1));
	ASSERT_EQ(0, queue_from(self->lfd, 1, c, 3));
	ASSERT_EQ(0, wait_listen_local(1, 3));

	s = accept_on(self->lfd, 0);
	ASSERT_LE(0, s);
	close(s);
	EXPECT_EQ(1, fs_stat("steal_long", -1));
	EXPECT_EQ(-EAGAIN, accept_on(self->lfd, 0));

	/* The other two once the bound expires. */
	fcntl(self->lfd, F_SETFL, 0);
	ASSERT_EQ(0, set_rcvtimeo(self->lfd, 20000));
	for (i = 0; i < 2; i++) {
		s = accept_on(self->lfd, 0);
		ASSERT_LE(0, s);
		close(s);
	}
	EXPECT_EQ(3, fs_stat("accept_stolen", -1));
	EXPECT_EQ(2, fs_stat("steal_late", -1));
	for (i = 0; i < 3; i++)
		close(c[i]);
}

/* Who ran accept() on CPU 1 before the connection was queued there. */
enum seen_on_1 {
	SEEN_NOBODY,	/* no acceptor ever ran on CPU 1 */
	SEEN_ME,	/* this very task, which then moves to CPU 0 */
	SEEN_OTHER,	/* another task, which stays there */
};

/*
 * Queue one connection on CPU 1, after @seen, and take it with a
 * non-blocking accept() on CPU 0. Returns the accepted socket's
 * SO_INCOMING_CPU, or -errno of the step that failed.
 */
static int queue_on_1_take_on_0(int lfd, enum seen_on_1 seen)
{
	int c, s, ret;

	fcntl(lfd, F_SETFL, O_NONBLOCK);
	if (seen == SEEN_OTHER && visit(lfd, 1))
		return -EIO;
	if (pin_to(1))
		return -errno;
	if (seen == SEEN_ME && accept_on(lfd, 1) != -EAGAIN)
		return -EIO;
	c = fs_connect_to(lfd);
	if (c < 0)
		return -errno;
	if (wait_listen_local(1, 1)) {
		close(c);
		return -ETIMEDOUT;
	}
	s = accept_on(lfd, 0);
	ret = s >= 0 ? incoming_cpu(s) : s;
	if (s >= 0)
		close(s);
	close(c);
	return ret;
}

/* No acceptor ever ran on CPU 1: its connections are taken at once. */
TEST_F(reserve, no_acceptor_no_reservation)
{
	ASSERT_EQ(0, set_reserve("1000000", "16"));
	EXPECT_EQ(1, queue_on_1_take_on_0(self->lfd, SEEN_NOBODY));
	EXPECT_EQ(1, fs_stat("steal_absent", -1));
	EXPECT_EQ(0, fs_stat("reserve_expired", -1));
}

/*
 * The acceptor last seen on CPU 1 asks from CPU 0 (it migrated): CPU 1
 * has nobody else, so it takes the connection at once.
 */
TEST_F(reserve, migrated_acceptor_takes_its_own)
{
	ASSERT_EQ(0, set_reserve("1000000", "16"));
	EXPECT_EQ(1, queue_on_1_take_on_0(self->lfd, SEEN_ME));
	EXPECT_EQ(1, fs_stat("steal_absent", -1));
}

/* listen_reserve_us = 0: any acceptor takes any connection at once. */
TEST_F(reserve, zero_bound_steals_at_once)
{
	ASSERT_EQ(0, set_reserve("0", "16"));
	EXPECT_EQ(1, queue_on_1_take_on_0(self->lfd, SEEN_OTHER));
	EXPECT_EQ(1, fs_stat("steal_late", -1));
}

/*
 * A worker of CPU 1 is stopped (SIGSTOP) while connections queue on its
 * CPU: a blocked acceptor on CPU 0 gets every one once the bound (200 ms)
 * expires; none is lost.
 */
TEST_F(reserve, stopped_worker_strands_nothing)
{
	int c[8], s, i, status;
	pid_t pid;
	char b;

	ASSERT_EQ(0, set_reserve("200000", "16"));
	ASSERT_EQ(0, set_rcvtimeo(self->lfd, 20000));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (pin_to(1))
			_exit(1);
		for (;;) {
			s = accept(self->lfd, NULL, NULL);
			if (s < 0)
				continue;
			set_rcvtimeo(s, 0);
			if (read(s, &b, 1) == 1 && write(s, &b, 1) == 1)
				close(s);
		}
	}
	/* The worker serves one connection of its CPU, then is stopped. */
	ASSERT_EQ(0, pin_to(1));
	c[0] = fs_connect_to(self->lfd);
	ASSERT_LE(0, c[0]);
	b = 'x';
	ASSERT_EQ(1, write(c[0], &b, 1));
	ASSERT_EQ(1, read(c[0], &b, 1));
	close(c[0]);
	ASSERT_EQ(0, kill(pid, SIGSTOP));
	ASSERT_EQ(pid, waitpid(pid, &status, WUNTRACED));
	ASSERT_TRUE(WIFSTOPPED(status));

	ASSERT_EQ(0, queue_from(self->lfd, 1, c, 8));
	ASSERT_EQ(0, pin_to(0));
	for (i = 0; i < 8; i++) {
		s = accept(self->lfd, NULL, NULL);
		ASSERT_LE(0, s) TH_LOG("connection %d stranded", i);
		EXPECT_EQ(1, incoming_cpu(s));
		close(s);
	}
	EXPECT_EQ(1, fs_stat("accept_local", 1));
	EXPECT_EQ(8, fs_stat("accept_stolen", 0));
	EXPECT_EQ(8, fs_stat("steal_late", 0) + fs_stat("steal_absent", 0));
	EXPECT_LE(1, fs_stat("reserve_expired", -1));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (i = 0; i < 8; i++)
		close(c[i]);
}

struct lone {
	int	lfd;
	int	accepted;
	int	errors;
};

static void *lone_acceptor(void *arg)
{
	struct lone *l = arg;
	int s;

	while ((s = accept(l->lfd, NULL, NULL)) >= 0) {
		l->accepted++;
		close(s);
	}
	if (errno != EINVAL)
		l->errors++;
	return NULL;
}

/*
 * One unpinned acceptor with the default bound serves clients on every
 * CPU: each connection is accepted, wherever the acceptor runs.
 */
TEST_F(reserve, unpinned_acceptor_takes_everything)
{
	int n = ncpus(), cpu, i, c;
	struct lone l = { .lfd = self->lfd };
	pthread_t t;

	ASSERT_EQ(0, pthread_create(&t, NULL, lone_acceptor, &l));
	for (i = 0; i < 50; i++) {
		for (cpu = 0; cpu < n; cpu++) {
			ASSERT_EQ(0, pin_to(cpu));
			c = fs_connect_to(self->lfd);
			ASSERT_LE(0, c);
			close(c);
		}
	}
	for (i = 0; i < 2000 && l.accepted < 50 * n; i++)
		usleep(10000);
	EXPECT_EQ(50 * n, l.accepted);
	/* Wakes the acceptor with EINVAL. */
	shutdown(self->lfd, SHUT_RD);
	pthread_join(t, NULL);
	EXPECT_EQ(0, l.errors);
	EXPECT_EQ(50 * n, fs_stat("accept_local", -1) +
		  fs_stat("accept_stolen", -1));
}

TEST_HARNESS_MAIN
