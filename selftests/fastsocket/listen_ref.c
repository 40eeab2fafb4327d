// SPDX-License-Identifier: GPL-2.0
/*
 * The listener's reference per connection (net.fastsocket.listen). A
 * request socket of a listener with local queues holds the listener on
 * its CPU's counter of a per-CPU reference, and so does the receive path
 * while it completes the handshake, so that a connection does not write
 * the listener's sk_refcnt, a line every CPU shares. /proc/net/tcp shows
 * sk_refcnt: connections queued on an enabled listener leave it as it
 * was, while on the control, a listener the feature does not apply to,
 * each raises it by one. Nothing is lost, and the listener's reference
 * comes back to sk_refcnt, when the feature goes off under queued
 * connections or the listener closes with them.
 */
#include "fs_util.h"
#include "kselftest_harness.h"

#define PER_CPU	8

FIXTURE(ref) {
	int on, off;		/* enabled listener, control */
	int on_port, off_port;
	int ncpu;
	int fds[256];
	int nfd;
};

FIXTURE_VARIANT(ref) {
	int family;
};

FIXTURE_VARIANT_ADD(ref, ipv4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(ref, ipv6) { .family = AF_INET6 };

FIXTURE_SETUP(ref)
{
	self->on = self->off = -1;
	self->nfd = 0;
	if (!fs_present())
		SKIP(return, "fastsocket module not loaded");
	self->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	ASSERT_LE(1, self->ncpu);
	ASSERT_GE(256 / PER_CPU / 2, self->ncpu);
	ASSERT_EQ(0, fs_new_netns());
	ASSERT_EQ(0, fs_enable_all());
	self->on = fs_listen(variant->family, 1024, TCP_FASTSOCKET_ON);
	ASSERT_LE(0, self->on);
	self->off = fs_listen(variant->family, 1024, TCP_FASTSOCKET_OFF);
	ASSERT_LE(0, self->off);
	self->on_port = fs_local_port(self->on);
	self->off_port = fs_local_port(self->off);
}

FIXTURE_TEARDOWN(ref)
{
	while (self->nfd)
		close(self->fds[--self->nfd]);
	if (self->on >= 0)
		close(self->on);
	if (self->off >= 0)
		close(self->off);
}

/* Queue PER_CPU connections from every CPU on @lfd, unaccepted. */
static int queue_all(FIXTURE_DATA(ref) *self, int lfd)
{
	int cpu, err;

	for (cpu = 0; cpu < self->ncpu; cpu++) {
		err = queue_from(lfd, cpu, self->fds + self->nfd, PER_CPU);
		if (err)
			return err;
		self->nfd += PER_CPU;
	}
	return 0;
}

/*
 * Wait up to @ms for listener @port's sk_refcnt (@ref) or accept-queue
 * length (!@ref) to be @n; 0 or -1.
 */
static int wait_listener(int family, int port, bool ref, long n, int ms)
{
	long rxq, refcnt;
	int i;

	for (i = 0; i < ms / 10; i++) {
		if (!listen_proc(family, port, &rxq, &refcnt) &&
		    (ref ? refcnt : rxq) == n)
			return 0;
		usleep(10000);
	}
	return -1;
}

/*
 * Queued connections hold the enabled listener per CPU (sk_refcnt stays)
 * and the control through sk_refcnt (one more each); accepting them gives
 * both back their first value.
 */
TEST_F(ref, queued_connections_leave_refcnt)
{
	int f = variant->family, n = PER_CPU * self->ncpu;
	long on = listen_refcnt(f, self->on_port);
	long off = listen_refcnt(f, self->off_port);

	ASSERT_LT(0, on);
	ASSERT_LT(0, off);
	ASSERT_EQ(0, queue_all(self, self->on));
	ASSERT_EQ(0, queue_all(self, self->off));
	ASSERT_EQ(0, wait_listener(f, self->on_port, false, n, 5000));
	ASSERT_EQ(0, wait_listener(f, self->off_port, false, n, 5000));
	EXPECT_EQ(on, listen_refcnt(f, self->on_port));
	EXPECT_EQ(off + n, listen_refcnt(f, self->off_port));
	EXPECT_EQ(n, fs_stat("listen_local", -1));
	EXPECT_EQ(n, drain_accept(self->on));
	EXPECT_EQ(n, drain_accept(self->off));
	EXPECT_EQ(on, listen_refcnt(f, self->on_port));
	EXPECT_EQ(off, listen_refcnt(f, self->off_port));
}

/*
 * The feature goes off with connections queued: the next accept() takes
 * the local queues away; every connection is still accepted, and once
 * the last request and the last child holding the listener per CPU are
 * gone (a child holds it for its netns with "established" armed, until
 * it is freed: the clients close too), the reference the queues held is
 * dropped: sk_refcnt falls by one, then counts new connections one each,
 * as on the control.
 */
TEST_F(ref, feature_off_with_queued_connections)
{
	int f = variant->family, n = PER_CPU * self->ncpu;
	long on = listen_refcnt(f, self->on_port);

	ASSERT_EQ(0, queue_all(self, self->on));
	ASSERT_EQ(0, wait_listener(f, self->on_port, false, n, 5000));
	ASSERT_EQ(0, fs_sysctl_write("listen", "0"));
	EXPECT_EQ(n, drain_accept(self->on));
	/*
	 * The children, closed by the server, are freed once the clients
	 * close too: a child whose FIN was acknowledged while close() still
	 * held its lock waits in FIN_WAIT2 for the peer's FIN (or
	 * tcp_fin_timeout), and with "established" it holds the listener.
	 */
	while (self->nfd)
		close(self->fds[--self->nfd]);
	ASSERT_EQ(0, fs_wait_rcu_gp());
	EXPECT_EQ(0, wait_listener(f, self->on_port, true, on - 1, 10000));

	ASSERT_EQ(0, queue_from(self->on, 0, self->fds + self->nfd, PER_CPU));
	self->nfd += PER_CPU;
	ASSERT_EQ(0, wait_listener(f, self->on_port, false, PER_CPU, 5000));
	EXPECT_EQ(on - 1 + PER_CPU, listen_refcnt(f, self->on_port));
	EXPECT_EQ(PER_CPU, drain_accept(self->on));
}

/*
 * The listener closes with connections queued on every CPU: each client
 * is reset, none hangs, and nothing trips the memory checkers.
 */
TEST_F(ref, close_with_queued_connections)
{
	int f = variant->family, n = PER_CPU * self->ncpu, i, reset = 0;
	char c;

	ASSERT_EQ(0, queue_all(self, self->on));
	ASSERT_EQ(0, wait_listener(f, self->on_port, false, n, 5000));
	close(self->on);
	self->on = -1;
	for (i = 0; i < self->nfd; i++) {
		struct timeval tv = { .tv_sec = 5 };

		setsockopt(self->fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv,
			   sizeof(tv));
		reset += read(self->fds[i], &c, 1) < 0 && errno == ECONNRESET;
	}
	EXPECT_EQ(n, reset);
}

TEST_HARNESS_MAIN
