// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/net/fastsocket: counters move by exactly the connections made to
 * an enabled listener, on the CPU that handled them, and only then.
 */
#include <sys/wait.h>

#include "fs_util.h"
#include "kselftest_harness.h"

#define NR_CONN	40

FIXTURE(stats) {
	int lfd;
	char port[16];
};

FIXTURE_VARIANT(stats) {
	int family;
};

FIXTURE_VARIANT_ADD(stats, ipv4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(stats, ipv6) { .family = AF_INET6 };

FIXTURE_SETUP(stats)
{
	self->lfd = -1;
	if (!fs_present())
		SKIP(return, "fastsocket module not loaded");
	ASSERT_EQ(0, fs_new_netns());
	ASSERT_EQ(0, fs_enable_all());
	self->lfd = fs_listen(variant->family, NR_CONN, -1);
	ASSERT_LE(0, self->lfd);
	snprintf(self->port, sizeof(self->port), "%d",
		 fs_local_port(self->lfd));
}

#define CPU1_ONLINE	"/sys/devices/system/cpu/cpu1/online"

FIXTURE_TEARDOWN(stats)
{
	if (self->lfd >= 0)
		close(self->lfd);
	/* offline_cpu_keeps_its_counts: CPU 1 back online, whatever failed */
	if (access(CPU1_ONLINE, W_OK) == 0 && fs_write_file(CPU1_ONLINE, "1"))
		TH_LOG("cannot bring cpu1 online");
}

/*
 * Connections queued on, and accepted from, enabled listeners: on their
 * shared queue (before local queues are attached, or while they wait for
 * a grace period) or on local ones. With @cpu >= 0, on that CPU's row.
 */
static long queued(int cpu)
{
	return fs_stat("listen_global", cpu) + fs_stat("listen_local", cpu);
}

static long accepted(int cpu)
{
	return fs_stat("accept_global", cpu) + fs_stat("accept_local", cpu) +
	       fs_stat("accept_stolen", cpu);
}

static int run_conns(int lfd, int n)
{
	int i, err;

	for (i = 0; i < n; i++) {
		err = fs_one_conn(lfd);
		if (err)
			return err;
	}
	return 0;
}

TEST_F(stats, listener_in_port_set_counts)
{
	long syn0 = queued(-1);
	long acc0 = accepted(-1);

	ASSERT_EQ(0, syn0);
	ASSERT_EQ(0, acc0);
	/* Not yet in the port set: nothing counts. */
	ASSERT_EQ(0, run_conns(self->lfd, NR_CONN));
	EXPECT_EQ(0, queued(-1));
	EXPECT_EQ(0, accepted(-1));

	ASSERT_EQ(0, fs_sysctl_write("ports", self->port));
	ASSERT_EQ(0, run_conns(self->lfd, NR_CONN));
	EXPECT_EQ(NR_CONN, queued(-1));
	EXPECT_EQ(NR_CONN, accepted(-1));
}

TEST_F(stats, sockopt_overrides_port_set)
{
	int on = TCP_FASTSOCKET_ON, off = TCP_FASTSOCKET_OFF;

	ASSERT_EQ(0, setsockopt(self->lfd, IPPROTO_TCP, TCP_FASTSOCKET, &on,
				sizeof(on)));
	ASSERT_EQ(0, run_conns(self->lfd, NR_CONN));
	EXPECT_EQ(NR_CONN, accepted(-1));

	ASSERT_EQ(0, fs_sysctl_write("ports", self->port));
	ASSERT_EQ(0, setsockopt(self->lfd, IPPROTO_TCP, TCP_FASTSOCKET, &off,
				sizeof(off)));
	ASSERT_EQ(0, run_conns(self->lfd, NR_CONN));
	EXPECT_EQ(NR_CONN, queued(-1));
	EXPECT_EQ(NR_CONN, accepted(-1));
}

TEST_F(stats, switches_off_count_nothing)
{
	ASSERT_EQ(0, fs_sysctl_write("ports", self->port));
	ASSERT_EQ(0, fs_sysctl_write("listen", "0"));
	ASSERT_EQ(0, run_conns(self->lfd, NR_CONN));
	EXPECT_EQ(0, queued(-1));

	ASSERT_EQ(0, fs_sysctl_write("listen", "1"));
	ASSERT_EQ(0, fs_sysctl_write("enabled", "0"));
	ASSERT_EQ(0, run_conns(self->lfd, NR_CONN));
	EXPECT_EQ(0, queued(-1));

	ASSERT_EQ(0, fs_sysctl_write("enabled", "1"));
	ASSERT_EQ(0, run_conns(self->lfd, NR_CONN));
	EXPECT_EQ(NR_CONN, queued(-1));
}

/*
 * On loopback the SYN is processed in the sender's context, so a client
 * pinned to CPU c has its connections counted on c's row.
 */
TEST_F(stats, counted_on_the_handling_cpu)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN), cpu, sum = 0;

	ASSERT_EQ(0, fs_sysctl_write("ports", self->port));
	for (cpu = 0; cpu < ncpu; cpu++) {
		ASSERT_EQ(0, pin_to(cpu));
		ASSERT_EQ(0, run_conns(self->lfd, NR_CONN));
	}
	for (cpu = 0; cpu < ncpu; cpu++) {
		EXPECT_EQ(NR_CONN, queued(cpu))
			TH_LOG("cpu %ld", cpu);
		sum += accepted(cpu);
	}
	EXPECT_EQ(ncpu * NR_CONN, sum);
	EXPECT_EQ(ncpu * NR_CONN, accepted(-1));
}

/*
 * The total sums every possible CPU: connections counted on CPU 1 stay in
 * it, and CPU 1's row stays, while CPU 1 is offline.
 */
TEST_F(stats, offline_cpu_keeps_its_counts)
{
	struct fs_stats st;
	long total, cpu1;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || access(CPU1_ONLINE, W_OK))
		SKIP(return, "no CPU 1 that can go offline");
	ASSERT_EQ(0, fs_sysctl_write("ports", self->port));
	ASSERT_EQ(0, pin_to(1));
	ASSERT_EQ(0, run_conns(self->lfd, NR_CONN));
	ASSERT_EQ(0, pin_to(0));
	cpu1 = queued(1);
	total = queued(-1);
	ASSERT_EQ(NR_CONN, cpu1);
	ASSERT_EQ(NR_CONN, total);

	ASSERT_EQ(0, fs_write_file(CPU1_ONLINE, "0"));
	ASSERT_EQ(0, fs_stats_read(&st, NULL));
	EXPECT_EQ(total, fs_stats_get(&st, "listen_local", -1) +
			 fs_stats_get(&st, "listen_global", -1));
	EXPECT_EQ(cpu1, fs_stats_get(&st, "listen_local", 1) +
			fs_stats_get(&st, "listen_global", 1));
	fs_stats_free(&st);
	/* and CPU 0 still counts, on top */
	ASSERT_EQ(0, run_conns(self->lfd, NR_CONN));
	EXPECT_EQ(total + NR_CONN, queued(-1));
	ASSERT_EQ(0, fs_write_file(CPU1_ONLINE, "1"));
	EXPECT_EQ(total + NR_CONN, queued(-1));
}

TEST_F(stats, other_netns_unaffected)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, fs_sysctl_write("ports", self->port));
	ASSERT_EQ(0, run_conns(self->lfd, NR_CONN));
	ASSERT_EQ(NR_CONN, queued(-1));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (fs_new_netns())
			_exit(1);
		_exit(queued(-1) == 0 &&
		      accepted(-1) == 0 ? 0 : 2);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_HARNESS_MAIN
