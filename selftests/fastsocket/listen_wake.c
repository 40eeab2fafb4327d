// SPDX-License-Identifier: GPL-2.0
/*
 * Wake-up preference of the local listen table: when acceptors sleep on
 * several CPUs, in accept() or in epoll_wait() with EPOLLEXCLUSIVE (one
 * epoll instance each, like nginx workers), a connection queued on CPU c
 * wakes the one on CPU c, even when another CPU's acceptor stands first
 * in the listener's wait queue. Without the preference that one would be
 * woken and steal the connection.
 *
 * While the connection is reserved for CPU c, only CPU c's acceptor hears
 * of it, busy or asleep: another CPU's acceptor is not woken for a
 * connection it may not take.
 *
 * An EPOLLEXCLUSIVE acceptor waits on a wait queue of its CPU's, not on
 * the listener's shared one: the wake-ups of other CPUs' connections do
 * not take its lock, and every other wake-up (shutdown, the feature
 * switched off) still reaches it.
 *
 * On loopback with RPS off, a connection's handshake runs in softirq on
 * the connecting thread's CPU, so pinning the client picks the CPU.
 */
#include <pthread.h>
#include <sys/epoll.h>

#include "fs_util.h"
#include "kselftest_harness.h"

#define ROUNDS	6

struct acceptor {
	int		lfd;
	int		cpu;
	bool		epoll;		/* epoll_wait(EPOLLEXCLUSIVE), then accept() */
	bool		move;		/* after epoll_ctl(), move to ->move_to */
	int		move_to;
	volatile pid_t	tid;
	volatile int	waiting;	/* about to block in accept() */
	volatile int	accepted;
	int		foreign;	/* accepted from another CPU's queue */
	int		err;
};

/*
 * Pin the acceptor thread and give it its own epoll instance with the
 * listener added EPOLLEXCLUSIVE (if it uses epoll). Returns 0 with the
 * instance in *@ep (-1 without epoll), or -1 with a->err set.
 */
static int acceptor_setup(struct acceptor *a, int *ep)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };

	*ep = -1;
	if (pin_to(a->cpu)) {
		a->err = errno;
		return -1;
	}
	if (a->epoll) {
		*ep = epoll_create1(0);
		if (*ep < 0 || epoll_ctl(*ep, EPOLL_CTL_ADD, a->lfd, &ev)) {
			a->err = errno;
			return -1;
		}
	}
	a->tid = fs_gettid();
	return 0;
}

static void *acceptor_loop(void *arg)
{
	struct epoll_event ev;
	struct acceptor *a = arg;
	int s, ep;

	if (acceptor_setup(a, &ep))
		return NULL;
	if (a->move) {
		if (pin_to(a->move_to)) {
			a->err = errno;
			return NULL;
		}
		a->cpu = a->move_to;
	}
	for (;;) {
		a->waiting = 1;
		if (ep >= 0 && epoll_wait(ep, &ev, 1, 20000) != 1) {
			a->err = ETIMEDOUT;
			break;
		}
		s = accept(a->lfd, NULL, NULL);
		a->waiting = 0;
		if (s < 0 && errno == EAGAIN)
			continue;
		if (s < 0) {
			/* shutdown(SHUT_RD) ends the test with EINVAL. */
			if (errno != EINVAL)
				a->err = errno;
			break;
		}
		a->foreign += incoming_cpu(s) != a->cpu;
		close(s);
		__atomic_add_fetch(&a->accepted, 1, __ATOMIC_SEQ_CST);
	}
	if (ep >= 0)
		close(ep);
	return NULL;
}

/* Wait until @a is asleep in accept() or epoll_wait(). */
static int acceptor_asleep(struct acceptor *a)
{
	int i;

	for (i = 0; i < 1000 && !(a->tid && a->waiting); i++)
		usleep(10000);
	if (!a->waiting)
		return -ETIMEDOUT;
	return fs_wait_sleeping(a->tid);
}

FIXTURE(wake) {
	int lfd;
	struct acceptor a[2];
	pthread_t t[2];
	int started;
};

FIXTURE_VARIANT(wake) {
	int family;
	bool epoll;
};

FIXTURE_VARIANT_ADD(wake, ipv4_accept) { .family = AF_INET };
FIXTURE_VARIANT_ADD(wake, ipv6_accept) { .family = AF_INET6 };
FIXTURE_VARIANT_ADD(wake, ipv4_epoll) { .family = AF_INET, .epoll = true };
FIXTURE_VARIANT_ADD(wake, ipv6_epoll) { .family = AF_INET6, .epoll = true };

FIXTURE_SETUP(wake)
{
	struct timeval tv = { .tv_sec = 20 };

	self->lfd = -1;
	self->started = 0;
	if (!fs_present())
		SKIP(return, "fastsocket module not loaded");
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_EQ(0, fs_new_netns());
	ASSERT_EQ(0, fs_enable_all());
	/*
	 * A woken acceptor can take longer than the default reservation
	 * (100 us) to run under emulation; then the timer rightly lets the
	 * other CPU's acceptor take the connection. This test is about who
	 * is woken, so the bound is scaled as in listen_reserve.c.
	 */
	ASSERT_EQ(0, fs_sysctl_write("listen_reserve_us", "100000"));
	self->lfd = fs_listen(variant->family, 1024, TCP_FASTSOCKET_ON);
	ASSERT_LE(0, self->lfd);
	/* A lost wake-up fails the test instead of hanging it. */
	ASSERT_EQ(0, setsockopt(self->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv,
				sizeof(tv)));
	/* Event-driven acceptors use a non-blocking listener. */
	if (variant->epoll)
		ASSERT_EQ(0, fcntl(self->lfd, F_SETFL, O_NONBLOCK));
}

FIXTURE_TEARDOWN(wake)
{
	int i;

	if (self->lfd < 0)
		return;
	/* Wakes every acceptor with EINVAL. */
	shutdown(self->lfd, SHUT_RD);
	for (i = 0; i < self->started; i++)
		pthread_join(self->t[i], NULL);
	close(self->lfd);
}

/* Start acceptor @i as set up in self->a[i]; wait until it sleeps. */
static int start_prepared(FIXTURE_DATA(wake) *self, int i)
{
	if (pthread_create(&self->t[i], NULL, acceptor_loop, &self->a[i]))
		return -1;
	self->started++;
	return acceptor_asleep(&self->a[i]);
}

/* Start acceptor @i pinned to @cpu; wait until it sleeps (accept or epoll). */
static int start_acceptor(FIXTURE_DATA(wake) *self, int i, int cpu,
			  bool epoll)
{
	self->a[i] = (struct acceptor){ .lfd = self->lfd, .cpu = cpu,
					.epoll = epoll };
	return start_prepared(self, i);
}

static int total_accepted(FIXTURE_DATA(wake) *self)
{
	int i, n = 0;

	for (i = 0; i < self->started; i++)
		n += self->a[i].accepted;
	return n;
}

/*
 * Connect from @cpu once every acceptor sleeps, and wait until one of
 * them has accepted the connection.
 */
static int round_from(FIXTURE_DATA(wake) *self, int cpu)
{
	int before, c, i;

	for (i = 0; i < self->started; i++)
		if (acceptor_asleep(&self->a[i]))
			return -ETIMEDOUT;
	before = total_accepted(self);
	if (pin_to(cpu))
		return -errno;
	c = fs_connect_to(self->lfd);
	if (c < 0)
		return -errno;
	for (i = 0; i < 1000 && total_accepted(self) == before; i++)
		usleep(10000);
	close(c);
	return i < 1000 ? 0 : -ETIMEDOUT;
}

/*
 * The acceptor on CPU 1 starts first, so it stands first in the wait
 * queue; connections from CPU 0 must still wake CPU 0's acceptor, and
 * then the other way round. Every round is chosen so that, without the
 * preference, the other CPU's acceptor would be first in line: a blocking
 * accept() queues again at the tail after each wake-up, so the same CPU
 * connects again; an epoll entry stays where it was moved, so the CPUs
 * alternate.
 */
TEST_F(wake, acceptor_on_the_queueing_cpu_wins)
{
	int r;

	ASSERT_EQ(0, start_acceptor(self, 1, 1, variant->epoll));
	ASSERT_EQ(0, start_acceptor(self, 0, 0, variant->epoll));

	for (r = 0; r < 2 * ROUNDS; r++) {
		int cpu = variant->epoll ? r % 2 : r >= ROUNDS;

		ASSERT_EQ(0, round_from(self, cpu));
	}

	EXPECT_EQ(ROUNDS, self->a[0].accepted);
	EXPECT_EQ(ROUNDS, self->a[1].accepted);
	EXPECT_EQ(0, self->a[0].foreign);
	EXPECT_EQ(0, self->a[1].foreign);
	EXPECT_EQ(0, self->a[0].err);
	EXPECT_EQ(0, self->a[1].err);
	EXPECT_EQ(0, fs_stat("accept_stolen", -1));
	EXPECT_EQ(ROUNDS, fs_stat("wake_local", 0));
	EXPECT_EQ(ROUNDS, fs_stat("wake_local", 1));
	EXPECT_EQ(0, fs_stat("wake_other", -1));
	/*
	 * An EPOLLEXCLUSIVE acceptor waits on its CPU's wait queue, and the
	 * wake-up leaves the listener's shared one alone; accept() sleeps on
	 * the shared one, whose lock each wake-up takes: the control.
	 */
	EXPECT_EQ(variant->epoll ? 0 : 2 * ROUNDS,
		  fs_stat("wake_shared", -1));
}

/*
 * With the only acceptor on CPU 1, connections from CPU 0 still wake it
 * (counted as wake_other) and it steals them: nothing waits for a CPU 0
 * acceptor that does not exist.
 */
TEST_F(wake, no_local_acceptor_wakes_another)
{
	int r;

	ASSERT_EQ(0, start_acceptor(self, 0, 1, variant->epoll));
	for (r = 0; r < ROUNDS; r++)
		ASSERT_EQ(0, round_from(self, 0));
	EXPECT_EQ(ROUNDS, self->a[0].accepted);
	EXPECT_EQ(ROUNDS, self->a[0].foreign);
	EXPECT_EQ(ROUNDS, fs_stat("accept_stolen", -1));
	EXPECT_EQ(ROUNDS, fs_stat("wake_other", 0));
	EXPECT_EQ(0, fs_stat("wake_local", -1));
	EXPECT_EQ(variant->epoll ? 0 : ROUNDS, fs_stat("wake_shared", -1));
}

/*
 * Shutting the listener down wakes every acceptor, whichever wait queue
 * it sleeps on: sock_def_wakeup() wakes the listener's shared queue, and
 * its relay passes the wake-up on to every CPU's queue. An epoll acceptor
 * that missed it would time out in epoll_wait() (ETIMEDOUT).
 */
TEST_F(wake, shutdown_wakes_every_acceptor)
{
	int i;

	ASSERT_EQ(0, start_acceptor(self, 0, 0, variant->epoll));
	ASSERT_EQ(0, start_acceptor(self, 1, 1, variant->epoll));
	ASSERT_EQ(0, round_from(self, 0));
	ASSERT_EQ(0, round_from(self, 1));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, acceptor_asleep(&self->a[i]));

	ASSERT_EQ(0, shutdown(self->lfd, SHUT_RD));
	for (i = 0; i < 2; i++)
		pthread_join(self->t[i], NULL);
	self->started = 0;
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(0, self->a[i].err);
		EXPECT_EQ(1, self->a[i].accepted);
		EXPECT_EQ(0, self->a[i].foreign);
	}
	EXPECT_EQ(variant->epoll ? 0 : 2, fs_stat("wake_shared", -1));
}

/*
 * An EPOLLEXCLUSIVE acceptor stays on the wait queue of the CPU where it
 * added the listener to its epoll set. This one adds it on CPU 1, then
 * moves to CPU 0 for good. Once it has accepted on CPU 0, connections
 * from CPU 0 are reserved for CPU 0, whose queue is empty: the wake-up
 * must find the acceptor on CPU 1's queue at once, not leave the
 * connection to the reservation's timer (reserve_expired, 100 ms here).
 * A blocking accept() queues again at each call: the control.
 */
TEST_F(wake, moved_acceptor_is_woken_where_it_runs)
{
	int r;

	self->a[0] = (struct acceptor){ .lfd = self->lfd, .cpu = 1,
					.epoll = variant->epoll,
					.move = true, .move_to = 0 };
	ASSERT_EQ(0, start_prepared(self, 0));

	for (r = 0; r < ROUNDS; r++)
		ASSERT_EQ(0, round_from(self, 0));
	EXPECT_EQ(ROUNDS, self->a[0].accepted);
	EXPECT_EQ(0, self->a[0].foreign);
	EXPECT_EQ(0, self->a[0].err);
	EXPECT_EQ(0, fs_stat("reserve_expired", -1));
	EXPECT_EQ(0, fs_stat("accept_stolen", -1));
	/* The first connection, before CPU 0 had an acceptor, is open. */
	EXPECT_LE(ROUNDS - 1, fs_stat("wake_local", 0));
}

/*
 * Switching the feature off detaches the local queues at the next
 * accept(), and the listener's sk_data_ready is sock_def_readable() again,
 * while the epoll entries stay on the CPU queues they were added to: the
 * relay must go on passing every wake-up to them. A lost one leaves a
 * connection unaccepted (round_from() times out) and an epoll_wait()
 * with ETIMEDOUT.
 */
TEST_F(wake, switched_off_listener_still_wakes)
{
	int i, r;

	ASSERT_EQ(0, start_acceptor(self, 0, 0, variant->epoll));
	ASSERT_EQ(0, start_acceptor(self, 1, 1, variant->epoll));
	ASSERT_EQ(0, round_from(self, 0));
	ASSERT_EQ(0, round_from(self, 1));

	ASSERT_EQ(0, fs_sysctl_write("enabled", "0"));
	for (r = 0; r < 2 * ROUNDS; r++)
		ASSERT_EQ(0, round_from(self, r % 2));
	EXPECT_EQ(2 * ROUNDS + 2, total_accepted(self));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, self->a[i].err);
}

/* Voluntary context switches of thread @tid: +1 each time it slept. */
static long nvcsw(pid_t tid)
{
	char path[64], line[128];
	long n = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/*
 * An acceptor that is busy elsewhere between two connections: it accepts
 * one (the warm-up, which also makes its CPU known as an acceptor's), then
 * blocks on a pipe (not on the listener) until released, then accepts the
 * next one.
 */
struct busy {
	struct acceptor	a;
	int		pipe[2];
	int		second_cpu;	/* incoming CPU of the second child */
	bool		once;		/* no second accept: leave when released */
};

static int busy_accept(struct acceptor *a, int ep)
{
	struct epoll_event ev;

	if (ep >= 0 && epoll_wait(ep, &ev, 1, 20000) != 1)
		return -ETIMEDOUT;
	return accept(a->lfd, NULL, NULL);
}

static void *busy_loop(void *arg)
{
	struct busy *b = arg;
	struct acceptor *a = &b->a;
	int s, ep;
	char c;

	if (acceptor_setup(a, &ep))
		return NULL;
	a->waiting = 1;
	s = busy_accept(a, ep);
	if (s < 0) {
		a->err = s == -ETIMEDOUT ? ETIMEDOUT : errno;
		goto out;
	}
	close(s);
	__atomic_add_fetch(&a->accepted, 1, __ATOMIC_SEQ_CST);
	if (read(b->pipe[0], &c, 1) != 1) {
		a->err = errno;
		goto out;
	}
	if (b->once)
		goto out;
	s = busy_accept(a, ep);
	if (s < 0) {
		a->err = s == -ETIMEDOUT ? ETIMEDOUT : errno;
		goto out;
	}
	b->second_cpu = incoming_cpu(s);
	close(s);
	__atomic_add_fetch(&a->accepted, 1, __ATOMIC_SEQ_CST);
out:
	a->waiting = 0;
	if (ep >= 0)
		close(ep);
	return NULL;
}

/*
 * Start CPU 1's acceptor and CPU 0's busy acceptor @b (thread *@bt), then
 * the warm-up: a connection from CPU 0 that @b accepts before it blocks on
 * its pipe. Returns with the caller pinned to CPU 0, @b blocked on the
 * pipe and CPU 1's acceptor asleep: 0, or -1.
 */
static int start_busy(FIXTURE_DATA(wake) *self, struct busy *b,
		      pthread_t *bt, bool epoll)
{
	int c, i;

	if (start_acceptor(self, 0, 1, epoll) || pipe(b->pipe))
		return -1;
	b->a = (struct acceptor){ .lfd = self->lfd, .cpu = 0, .epoll = epoll };
	if (pthread_create(bt, NULL, busy_loop, b) || acceptor_asleep(&b->a))
		return -1;
	if (pin_to(0))
		return -1;
	c = fs_connect_to(self->lfd);
	if (c < 0)
		return -1;
	for (i = 0; i < 1000 && b->a.accepted < 1; i++)
		usleep(10000);
	close(c);
	if (b->a.accepted != 1 || fs_wait_sleeping(b->a.tid))
		return -1;
	return acceptor_asleep(&self->a[0]) ? -1 : 0;
}

/* Release busy acceptor @b (thread @bt) and wait for it to end. 0 or -1. */
static int stop_busy(struct busy *b, pthread_t bt)
{
	int ret = write(b->pipe[1], "x", 1) == 1 ? 0 : -1;

	pthread_join(bt, NULL);
	close(b->pipe[0]);
	close(b->pipe[1]);
	return ret;
}

/*
 * While a connection is reserved for its CPU, only that CPU's acceptor
 * hears of it. CPU 0's acceptor is busy (blocked on a pipe) when a
 * connection is queued on CPU 0, and CPU 1's acceptor sleeps on the
 * listener. Waking CPU 1's acceptor would only let it find a connection
 * it may not take and go back to sleep (one more voluntary context
 * switch): it must stay asleep. When CPU 0's acceptor comes back, it
 * finds the connection (for epoll, queued on its instance's ready list
 * although it was not waiting), well before the reservation ends.
 */
TEST_F(wake, reserved_child_wakes_nobody_elsewhere)
{
	struct busy b = { .second_cpu = -1 };
	pthread_t bt;
	long before;
	int c;

	ASSERT_EQ(0, start_busy(self, &b, &bt, variant->epoll));

	before = nvcsw(self->a[0].tid);
	ASSERT_LE(0, before);
	c = fs_connect_to(self->lfd);
	ASSERT_LE(0, c);
	/* Let a wrong wake-up happen, well within the 100 ms reservation. */
	usleep(20000);
	EXPECT_EQ(before, nvcsw(self->a[0].tid));
	EXPECT_EQ(0, stop_busy(&b, bt));
	close(c);

	EXPECT_EQ(0, b.a.err);
	EXPECT_EQ(2, b.a.accepted);
	EXPECT_EQ(0, b.second_cpu);
	EXPECT_EQ(0, self->a[0].accepted);
	EXPECT_EQ(0, self->a[0].err);
	EXPECT_EQ(0, fs_stat("accept_stolen", -1));
	EXPECT_EQ(2, fs_stat("accept_local", 0));
}

/*
 * Without a reservation (listen_reserve_us 0) a child may be taken by any
 * CPU at once, and the wake-up must reach an acceptor that can take it.
 * CPU 0's acceptor is busy (blocked on a pipe) when a connection is
 * queued on CPU 0: it is not on the wait queue (accept()), or its epoll
 * instance is but nobody waits in it, so the local entry does not take
 * the wake-up. The wake-up then goes on to CPU 1's sleeping acceptor,
 * which takes the connection from CPU 0's queue.
 */
TEST_F(wake, busy_local_acceptor_passes_the_wake_on)
{
	struct busy b = { .second_cpu = -1, .once = true };
	pthread_t bt;
	int c, i;

	ASSERT_EQ(0, fs_sysctl_write("listen_reserve_us", "0"));
	ASSERT_EQ(0, start_busy(self, &b, &bt, variant->epoll));

	c = fs_connect_to(self->lfd);
	ASSERT_LE(0, c);
	for (i = 0; i < 1000 && self->a[0].accepted < 1; i++)
		usleep(10000);
	EXPECT_EQ(1, self->a[0].accepted);
	EXPECT_EQ(1, self->a[0].foreign);
	EXPECT_EQ(0, self->a[0].err);
	EXPECT_EQ(1, fs_stat("accept_stolen", -1));
	EXPECT_EQ(0, stop_busy(&b, bt));
	close(c);
	EXPECT_EQ(0, b.a.err);
	EXPECT_EQ(1, b.a.accepted);
}

TEST_HARNESS_MAIN
