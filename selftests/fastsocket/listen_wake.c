// SPDX-License-Identifier: GPL-2.0
/*
 * Wake-up preference of the local listen table: when acceptors sleep on
 * several CPUs, in accept() or in epoll_wait() with EPOLLEXCLUSIVE (one
 * epoll instance each, like nginx workers), a connection queued on CPU c
 * wakes the one on CPU c, even when another CPU's acceptor stands first
 * in the listener's wait queue. Without the preference that one would be
 * woken and steal the connection.
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
	volatile pid_t	tid;
	volatile int	waiting;	/* about to block in accept() */
	volatile int	accepted;
	int		foreign;	/* accepted from another CPU's queue */
	int		err;
};

static void *acceptor_loop(void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	struct acceptor *a = arg;
	int s, ep = -1;

	if (pin_to(a->cpu)) {
		a->err = errno;
		return NULL;
	}
	if (a->epoll) {
		ep = epoll_create1(0);
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, a->lfd, &ev)) {
			a->err = errno;
			return NULL;
		}
	}
	a->tid = fs_gettid();
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

/* Start acceptor @i pinned to @cpu; wait until it sleeps (accept or epoll). */
static int start_acceptor(FIXTURE_DATA(wake) *self, int i, int cpu,
			  bool epoll)
{
	self->a[i] = (struct acceptor){ .lfd = self->lfd, .cpu = cpu,
					.epoll = epoll };
	if (pthread_create(&self->t[i], NULL, acceptor_loop, &self->a[i]))
		return -1;
	self->started++;
	return acceptor_asleep(&self->a[i]);
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
}

TEST_HARNESS_MAIN
