// SPDX-License-Identifier: GPL-2.0
/*
 * A listener that was already listening when the feature started to apply
 * to it (TCP_FASTSOCKET set later, its port added to net.fastsocket.ports
 * later, the feature armed later) gets local queues at its next accept();
 * the connections it had queued meanwhile are all accepted. Switching the
 * feature on and off repeatedly under load loses nothing and leaves the
 * listener's backlog count exact.
 *
 * On loopback with RPS off, a connection's handshake runs in softirq on
 * the connecting thread's CPU, so pinning the client picks the CPU.
 */
#include <pthread.h>

#include "fs_util.h"
#include "kselftest_harness.h"

#define PER_CPU	8

enum late_how { LATE_SOCKOPT, LATE_PORTS, LATE_ARM };

FIXTURE(attach) {
	int lfd;
	int ncpu;
};

FIXTURE_VARIANT(attach) {
	int family;
};

FIXTURE_VARIANT_ADD(attach, ipv4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(attach, ipv6) { .family = AF_INET6 };

FIXTURE_SETUP(attach)
{
	self->lfd = -1;
	if (!fs_present())
		SKIP(return, "fastsocket module not loaded");
	self->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_GE(64, self->ncpu);
	ASSERT_EQ(0, fs_new_netns());
}

FIXTURE_TEARDOWN(attach)
{
	if (self->lfd >= 0)
		close(self->lfd);
}

/* Close the @n client sockets of every CPU. */
static void close_all(int fds[][PER_CPU], int ncpu)
{
	int cpu, i;

	for (cpu = 0; cpu < ncpu; cpu++)
		for (i = 0; i < PER_CPU; i++)
			close(fds[cpu][i]);
}

/*
 * Make the feature apply to the listening socket @lfd, in one of three
 * ways. Returns 0 or -errno.
 */
static int enable_late(int lfd, enum late_how how)
{
	int on = TCP_FASTSOCKET_ON;
	char port[16];

	switch (how) {
	case LATE_SOCKOPT:
		return setsockopt(lfd, IPPROTO_TCP, TCP_FASTSOCKET, &on,
				  sizeof(on)) ? -errno : 0;
	case LATE_PORTS:
		snprintf(port, sizeof(port), "%d", fs_local_port(lfd));
		return fs_sysctl_write("ports", port);
	case LATE_ARM:
		return fs_enable_all();
	}
	return -EINVAL;
}

/*
 * Connections queued on the shared queue before the switch are accepted
 * after it; from the first accept() on, new connections go to the local
 * queue of their CPU and are accepted there.
 */
TEST_F(attach, enabling_a_listening_socket)
{
	int fds[64][PER_CPU], cpu, how, i, s;
	long local0, accepted;

	for (how = LATE_SOCKOPT; how <= LATE_ARM; how++) {
		/* Armed, but not for this listener; or not armed at all. */
		if (how == LATE_ARM) {
			ASSERT_EQ(0, fs_sysctl_write("ports", "1-65535"));
		} else {
			ASSERT_EQ(0, fs_enable_all());
			/* Some other port. */
			ASSERT_EQ(0, fs_sysctl_write("ports", "1"));
		}
		self->lfd = fs_listen(variant->family, 1024, -1);
		ASSERT_LE(0, self->lfd);
		local0 = fs_stat("listen_local", -1);
		accepted = fs_stat("accept_global", -1);
		for (cpu = 0; cpu < self->ncpu; cpu++)
			ASSERT_EQ(0, queue_from(self->lfd, cpu, fds[cpu],
						PER_CPU));
		EXPECT_EQ(local0, fs_stat("listen_local", -1));

		ASSERT_EQ(0, enable_late(self->lfd, how)) TH_LOG("how %d", how);
		/* The shared queue's connections, now counted as global. */
		EXPECT_EQ(self->ncpu * PER_CPU, drain_accept(self->lfd));
		EXPECT_EQ(accepted + self->ncpu * PER_CPU,
			  fs_stat("accept_global", -1));
		close_all(fds, self->ncpu);

		/* The very next connection is local. */
		ASSERT_EQ(0, pin_to(0));
		ASSERT_EQ(0, fs_one_conn(self->lfd));
		EXPECT_EQ(local0 + 1, fs_stat("listen_local", -1))
			TH_LOG("how %d", how);

		/* From then on, every connection is local and accepted. */
		local0 = fs_stat("listen_local", -1);
		for (cpu = 0; cpu < self->ncpu; cpu++)
			ASSERT_EQ(0, queue_from(self->lfd, cpu, fds[cpu],
						PER_CPU));
		EXPECT_EQ(local0 + self->ncpu * PER_CPU,
			  fs_stat("listen_local", -1));
		for (cpu = 0; cpu < self->ncpu; cpu++) {
			ASSERT_EQ(0, pin_to(cpu));
			for (i = 0; i < PER_CPU; i++) {
				s = accept(self->lfd, NULL, NULL);
				ASSERT_LE(0, s);
				EXPECT_EQ(cpu, incoming_cpu(s));
				close(s);
			}
		}
		EXPECT_EQ(0, listen_rx_queue(variant->family,
					     fs_local_port(self->lfd)));
		close_all(fds, self->ncpu);
		close(self->lfd);
		self->lfd = -1;
		/* Disarmed, for the LATE_ARM round. */
		ASSERT_EQ(0, fs_sysctl_write("enabled", "0"));
	}
}

struct load {
	int		lfd;
	int		cpu;
	volatile int	*stop;
	long		done;		/* client: completed, server: accepted */
	long		failed;		/* client: failed connects or resets */
};

/* Serve: accept and close until the listener is shut down. */
static void *server_loop(void *arg)
{
	struct load *l = arg;
	int s;

	pin_to(l->cpu);
	while ((s = accept(l->lfd, NULL, NULL)) >= 0) {
		if (write(s, "x", 1) != 1)
			l->failed++;
		close(s);
		l->done++;
	}
	return NULL;
}

/* Connect, read the one byte and the close, until told to stop. */
static void *client_loop(void *arg)
{
	struct load *l = arg;
	char buf[4];
	int c;

	pin_to(l->cpu);
	while (!*l->stop) {
		c = fs_connect_to(l->lfd);
		if (c < 0) {
			l->failed++;
			continue;
		}
		if (read(c, buf, sizeof(buf)) != 1 ||
		    read(c, buf, sizeof(buf)) != 0)
			l->failed++;
		else
			l->done++;
		close(c);
	}
	return NULL;
}

/*
 * Two pinned acceptors and two pinned clients run while listen goes off
 * and on 20 times: every connection completes, every connection made is
 * accepted, and the listener's queue count is back to 0 at the end.
 */
TEST_F(attach, toggling_under_load_loses_nothing)
{
	struct load srv[2], cli[2];
	pthread_t ts[2], tc[2];
	long made = 0, accepted = 0, failed = 0, phase[2] = { 0, 0 }, last = 0;
	volatile int stop = 0;
	int i;

	ASSERT_EQ(0, fs_enable_all());
	self->lfd = fs_listen(variant->family, 4096, TCP_FASTSOCKET_ON);
	ASSERT_LE(0, self->lfd);
	for (i = 0; i < 2; i++) {
		srv[i] = (struct load){ .lfd = self->lfd, .cpu = i };
		cli[i] = (struct load){ .lfd = self->lfd, .cpu = i,
					.stop = &stop };
		ASSERT_EQ(0, pthread_create(&ts[i], NULL, server_loop, &srv[i]));
		ASSERT_EQ(0, pthread_create(&tc[i], NULL, client_loop, &cli[i]));
	}
	/* Even i: listen is on during the sleep; odd i: off. */
	for (i = 0; i < 20; i++) {
		usleep(50000);
		made = cli[0].done + cli[1].done;
		phase[i % 2] += made - last;
		last = made;
		ASSERT_EQ(0, fs_sysctl_write("listen", i % 2 ? "1" : "0"));
	}
	usleep(50000);
	stop = 1;
	made = 0;
	for (i = 0; i < 2; i++)
		pthread_join(tc[i], NULL);
	/* Every client finished: whatever is queued is accepted, then EOF. */
	for (i = 0; i < 200 && listen_rx_queue(variant->family,
					       fs_local_port(self->lfd)); i++)
		usleep(10000);
	EXPECT_EQ(0, listen_rx_queue(variant->family, fs_local_port(self->lfd)));
	shutdown(self->lfd, SHUT_RD);
	for (i = 0; i < 2; i++) {
		pthread_join(ts[i], NULL);
		made += cli[i].done;
		failed += cli[i].failed + srv[i].failed;
		accepted += srv[i].done;
	}
	TH_LOG("%ld connections, %ld accepted locally, %ld from the shared queue",
	       made, fs_stat("accept_local", -1) + fs_stat("accept_stolen", -1),
	       fs_stat("accept_global", -1));
	EXPECT_EQ(0, failed);
	EXPECT_LT(0, made);
	EXPECT_EQ(made, accepted);
	/* Connections flowed with the feature on and with it off. */
	EXPECT_LT(0, phase[0]);
	EXPECT_LT(0, phase[1]);
	EXPECT_LT(0, fs_stat("listen_local", -1));
}

TEST_HARNESS_MAIN
