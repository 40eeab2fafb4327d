// SPDX-License-Identifier: GPL-2.0
/*
 * Receive steering for active connections (net.fastsocket.steering).
 *
 * The test is the client: its netns is joined by veth to a server netns,
 * and RPS spreads the packets that the client side receives over every
 * CPU, as a NIC's RSS would. A thread pinned on each CPU in turn connects
 * with TCP_FASTSOCKET_ON: with steering, its source port is of its CPU's
 * class and every reply is processed on its CPU, so SO_INCOMING_CPU of
 * each connected socket is the connecting CPU. The control, in the same
 * test, is the same loop with steering off: about 1/N of them.
 */
#include <limits.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <signal.h>

#include "fs_util.h"
#include "kselftest_harness.h"

#define PER_CPU		16
#define CLI_DEV		"fsc0"
#define SRV_DEV		"fss0"

static int port_range(int *low, int *high)
{
	char buf[64];

	if (fs_read_file("/proc/sys/net/ipv4/ip_local_port_range", buf,
			 sizeof(buf)) ||
	    sscanf(buf, "%d %d", low, high) != 2)
		return -1;
	return 0;
}

/*
 * The server: accept, answer "ping" with "pong", wait for the client's
 * close, close; forever.
 */
static void serve(const char *ns, int family, int wfd)
{
	struct sockaddr_storage ss = { .ss_family = family };
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) :
					     sizeof(struct sockaddr_in);
	int lfd, s, one = 1, port;
	char buf[8];

	if (fs_enter_netns(ns))
		_exit(1);
	lfd = socket(family, SOCK_STREAM, 0);
	if (lfd < 0)
		_exit(1);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&ss, len) || listen(lfd, 128))
		_exit(1);
	port = fs_local_port(lfd);
	if (write(wfd, &port, sizeof(port)) != sizeof(port))
		_exit(1);
	close(wfd);
	for (;;) {
		s = accept(lfd, NULL, NULL);
		if (s < 0)
			continue;
		if (read(s, buf, sizeof(buf)) == 4 && write(s, "pong", 4) < 0)
			_exit(1);
		/* the client closes first: TIME_WAIT is on its side */
		while (read(s, buf, sizeof(buf)) > 0)
			;
		close(s);
	}
}

FIXTURE(steer) {
	char ns[32];
	pid_t server;
	int rfs_fd;		/* init_net's rps_sock_flow_entries */
	int ncpu;
	unsigned int bits;
	struct sockaddr_storage dst;
	socklen_t dlen;
};

FIXTURE_VARIANT(steer) {
	int family;
};

FIXTURE_VARIANT_ADD(steer, ipv4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(steer, ipv6) { .family = AF_INET6 };

FIXTURE_SETUP(steer)
{
	char mask[32];
	int pfd[2], port = 0, fd;

	self->server = -1;
	self->ns[0] = '\0';
	self->rfs_fd = -1;
	if (!fs_present())
		SKIP(return, "fastsocket module not loaded");
	if (!fs_feature_available("steering"))
		SKIP(return, "this kernel has no steering data path");
	self->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_GT(32, self->ncpu);

	/* RFS's global table size is only under init_net's /proc/sys/net */
	self->rfs_fd = open("/proc/sys/net/core/rps_sock_flow_entries",
			    O_RDWR | O_CLOEXEC);
	/* Own netns, and a sysfs that shows its devices (for rps_cpus). */
	ASSERT_EQ(0, unshare(CLONE_NEWNET | CLONE_NEWNS));
	ASSERT_EQ(0, fs_lo_up());
	ASSERT_EQ(0, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	umount2("/sys", MNT_DETACH);
	ASSERT_EQ(0, mount("sysfs", "/sys", "sysfs", 0, NULL));

	snprintf(self->ns, sizeof(self->ns), "fs_steer_%d", getpid());
	ASSERT_EQ(0, fs_veth_netns(self->ns, CLI_DEV, SRV_DEV, 99));

	/* RPS spreads what the client receives over every CPU. */
	snprintf(mask, sizeof(mask), "%x", (1U << self->ncpu) - 1);
	ASSERT_EQ(0, fs_write_file("/sys/class/net/" CLI_DEV
				   "/queues/rx-0/rps_cpus", mask));

	ASSERT_EQ(0, fs_enable_all());
	ASSERT_EQ(1, fs_sysctl_int("steering"));
	self->bits = fs_sysctl_int(FS_CLASS_BITS);
	ASSERT_EQ(fs_class_bits_default(sysconf(_SC_NPROCESSORS_CONF)),
		  self->bits);

	ASSERT_EQ(0, pipe(pfd));
	self->server = fork();
	ASSERT_LE(0, self->server);
	if (!self->server) {
		close(pfd[0]);
		serve(self->ns, variant->family, pfd[1]);
	}
	close(pfd[1]);
	ASSERT_EQ(sizeof(port), read(pfd[0], &port, sizeof(port)));
	close(pfd[0]);

	memset(&self->dst, 0, sizeof(self->dst));
	if (variant->family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&self->dst;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		inet_pton(AF_INET6, "fd99::2", &a->sin6_addr);
		self->dlen = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&self->dst;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		inet_pton(AF_INET, "10.99.0.2", &a->sin_addr);
		self->dlen = sizeof(*a);
	}
	fd = socket(variant->family, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	close(fd);
}

FIXTURE_TEARDOWN(steer)
{
	if (self->rfs_fd >= 0)
		close(self->rfs_fd);
	if (self->server > 0) {
		kill(self->server, SIGKILL);
		waitpid(self->server, NULL, 0);
	}
	if (self->ns[0])
		fs_run("ip netns del %s", self->ns);
}

/*
 * One connection with TCP_FASTSOCKET @mode (-1: not set), after @prep (may
 * be NULL) ran on the socket: connect, ping, pong, close. Sets *@lport to
 * its source port and *@cpu to its SO_INCOMING_CPU. Returns 0 or -errno.
 */
static int one_conn(const FIXTURE_DATA(steer) *self, int mode,
		    int (*prep)(int fd, int family), int *lport, int *cpu)
{
	char buf[8];
	int fd, err = 0;

	fd = socket(self->dst.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return -errno;
	if ((mode >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET, &mode,
				     sizeof(mode))) ||
	    (prep && prep(fd, self->dst.ss_family)) ||
	    connect(fd, (struct sockaddr *)&self->dst, self->dlen) ||
	    write(fd, "ping", 4) != 4 || read(fd, buf, sizeof(buf)) != 4) {
		err = errno ? -errno : -EIO;
		goto out;
	}
	*lport = fs_local_port(fd);
	*cpu = incoming_cpu(fd);
out:
	close(fd);
	return err;
}

/*
 * From a thread pinned on each CPU in turn, PER_CPU connections with
 * @mode; returns how many had SO_INCOMING_CPU equal to the connecting CPU,
 * and counts in *@classed those whose port is of that CPU's class.
 */
static int conn_loop(struct __test_metadata *_metadata,
		     const FIXTURE_DATA(steer) *self, int mode,
		     int (*prep)(int fd, int family), int *classed)
{
	int cpu, i, lport = -1, in = -1, low, high, local = 0;

	ASSERT_EQ(0, port_range(&low, &high));
	*classed = 0;
	for (cpu = 0; cpu < self->ncpu; cpu++) {
		ASSERT_EQ(0, pin_to(cpu));
		for (i = 0; i < PER_CPU; i++) {
			ASSERT_EQ(0, one_conn(self, mode, prep, &lport, &in));
			local += in == cpu;
			*classed += fs_port_class(lport, low, high,
						  self->bits) == cpu;
		}
	}
	return local;
}

static long stat_total(const char *name)
{
	return fs_stat(name, -1);
}

/*
 * Every steered connection's replies are processed on the connecting CPU;
 * with steering off, only about 1/N are.
 */
TEST_F(steer, connections_stay_on_the_connecting_cpu)
{
	long cls = stat_total("connect_class");
	long fb = stat_total("connect_fallback");
	long rx = stat_total("rx_steered");
	long miss = stat_total("rx_elsewhere");
	int n = self->ncpu * PER_CPU, local, classed;

	ASSERT_LE(0, cls);
	local = conn_loop(_metadata, self, TCP_FASTSOCKET_ON, NULL, &classed);
	EXPECT_EQ(n, local);
	EXPECT_EQ(n, classed);
	EXPECT_EQ(cls + n, stat_total("connect_class"));
	EXPECT_EQ(fb, stat_total("connect_fallback"));
	/* SYN-ACK, pong and FIN at least, each steered */
	EXPECT_LE(rx + 3 * n, stat_total("rx_steered"));
	EXPECT_EQ(miss, stat_total("rx_elsewhere"));

	/* The control: steering off, as on vanilla. */
	ASSERT_EQ(0, fs_sysctl_write("steering", "0"));
	rx = stat_total("rx_steered");
	local = conn_loop(_metadata, self, TCP_FASTSOCKET_ON, NULL, &classed);
	TH_LOG("steering off: %d of %d connections on the connecting CPU",
	       local, n);
	EXPECT_GT(n, local);
	EXPECT_EQ(cls + n, stat_total("connect_class"));
	EXPECT_EQ(rx, stat_total("rx_steered"));
}

/* A socket that did not ask (TCP_FASTSOCKET_DEFAULT) keeps vanilla ports. */
TEST_F(steer, default_socket_is_not_classed)
{
	long cls = stat_total("connect_class");
	int classed;

	conn_loop(_metadata, self, -1, NULL, &classed);
	EXPECT_EQ(cls, stat_total("connect_class"));
	/* about 1/N of the ports fall in the class by chance, not all */
	EXPECT_GT(self->ncpu * PER_CPU, classed);
}

static int bind_no_port(int fd, int family)
{
	struct sockaddr_storage ss = { .ss_family = family };
	int one = 1;

	if (family == AF_INET6)
		inet_pton(AF_INET6, "fd99::1",
			  &((struct sockaddr_in6 *)&ss)->sin6_addr);
	else
		inet_pton(AF_INET, "10.99.0.1",
			  &((struct sockaddr_in *)&ss)->sin_addr);
	if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		       sizeof(one)))
		return -1;
	return bind(fd, (struct sockaddr *)&ss, family == AF_INET6 ?
		    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
}

/* IP_BIND_ADDRESS_NO_PORT then connect(): the port is chosen at connect. */
TEST_F(steer, bind_address_no_port_is_classed)
{
	int n = self->ncpu * PER_CPU, local, classed;

	local = conn_loop(_metadata, self, TCP_FASTSOCKET_ON, bind_no_port,
			  &classed);
	EXPECT_EQ(n, local);
	EXPECT_EQ(n, classed);
}

/*
 * A class with no free port falls back to the vanilla search: connect
 * still succeeds, and connect_fallback counts it.
 */
TEST_F(steer, full_class_falls_back)
{
	int cpu = self->ncpu - 1, lport[2] = { -1, -1 }, fd[2], i, p;
	long cls = stat_total("connect_class");
	long fb = stat_total("connect_fallback");
	int mode = TCP_FASTSOCKET_ON;
	char range[32];

	/* a two-port range whose connect port is of another class */
	for (p = 40000; fs_port_class(p, p, p + 1, self->bits) == cpu; p += 2)
		;
	snprintf(range, sizeof(range), "%d %d", p, p + 1);
	ASSERT_EQ(0, fs_write_file("/proc/sys/net/ipv4/ip_local_port_range",
				   range));
	ASSERT_EQ(0, pin_to(cpu));
	for (i = 0; i < 2; i++) {
		fd[i] = socket(self->dst.ss_family, SOCK_STREAM, 0);
		ASSERT_LE(0, fd[i]);
		ASSERT_EQ(0, setsockopt(fd[i], IPPROTO_TCP, TCP_FASTSOCKET,
					&mode, sizeof(mode)));
		ASSERT_EQ(0, connect(fd[i], (struct sockaddr *)&self->dst,
				     self->dlen));
		lport[i] = fs_local_port(fd[i]);
		EXPECT_LE(p, lport[i]);
		EXPECT_GE(p + 1, lport[i]);
	}
	EXPECT_NE(lport[0], lport[1]);
	EXPECT_EQ(fb + 2, stat_total("connect_fallback"));
	EXPECT_EQ(cls, stat_total("connect_class"));
	close(fd[0]);
	close(fd[1]);
}

static int set_range(int low, int high)
{
	char range[32];

	snprintf(range, sizeof(range), "%d %d", low, high);
	return fs_write_file("/proc/sys/net/ipv4/ip_local_port_range", range);
}

/* A socket with TCP_FASTSOCKET_ON connected to the server, or -1. */
static int connect_on(const FIXTURE_DATA(steer) *self)
{
	return fs_connect_addr((const struct sockaddr *)&self->dst, self->dlen,
			       SOCK_STREAM, TCP_FASTSOCKET_ON);
}

/*
 * ip_local_reserved_ports are never taken: with every port of the class
 * but one reserved, the first connect takes that one, the second falls
 * back to an unreserved port of the range.
 */
TEST_F(steer, reserved_ports_never_taken)
{
	int cpu = self->ncpu - 1, low = 40000, high = 40063, p, free = -1;
	long fb = stat_total("connect_fallback");
	char list[512] = "";
	int fd[2], port[2];
	size_t len = 0;

	for (p = low; p <= high; p += 2) {
		if (fs_port_class(p, low, high, self->bits) != cpu)
			continue;
		if (free < 0) {
			free = p;
			continue;
		}
		len += snprintf(list + len, sizeof(list) - len, "%s%d",
				len ? "," : "", p);
	}
	ASSERT_LT(0, free);
	ASSERT_EQ(0, set_range(low, high));
	ASSERT_EQ(0, fs_write_file("/proc/sys/net/ipv4/ip_local_reserved_ports",
				   list));
	ASSERT_EQ(0, pin_to(cpu));
	fd[0] = connect_on(self);
	ASSERT_LE(0, fd[0]);
	port[0] = fs_local_port(fd[0]);
	EXPECT_EQ(free, port[0]);
	fd[1] = connect_on(self);
	ASSERT_LE(0, fd[1]);
	port[1] = fs_local_port(fd[1]);
	EXPECT_EQ(fb + 1, stat_total("connect_fallback"));
	EXPECT_LE(low, port[1]);
	EXPECT_GE(high, port[1]);
	EXPECT_NE(free, port[1]);
	/* not reserved: the reserved ones are the class's, port[1] is not */
	EXPECT_NE(cpu, fs_port_class(port[1], low, high, self->bits))
		TH_LOG("fallback took %d, reserved: %s", port[1], list);
	close(fd[0]);
	close(fd[1]);
}

/* An explicit bind() keeps its port; nothing is classed. */
TEST_F(steer, explicit_bind_keeps_its_port)
{
	struct sockaddr_storage ss = { .ss_family = self->dst.ss_family };
	long cls = stat_total("connect_class");
	int fd, mode = TCP_FASTSOCKET_ON, port;
	socklen_t len = self->dlen;

	fd = socket(self->dst.ss_family, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET, &mode,
				sizeof(mode)));
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&ss, len));
	port = fs_local_port(fd);
	ASSERT_LT(0, port);
	ASSERT_EQ(0, connect(fd, (struct sockaddr *)&self->dst, self->dlen));
	EXPECT_EQ(port, fs_local_port(fd));
	EXPECT_EQ(cls, stat_total("connect_class"));
	close(fd);
}

/*
 * tcp_tw_reuse: the one port of the class, in TIME_WAIT after the client
 * closed first, is taken again a second later, still in class.
 */
TEST_F(steer, time_wait_reused_in_class)
{
	int cpu = 0, low, lport = -1, in = -1, i;
	long cls = stat_total("connect_class");
	long fb = stat_total("connect_fallback");

	for (low = 40000; fs_port_class(low, low, low + 1, self->bits) != cpu;
	     low += 2)
		;
	ASSERT_EQ(0, set_range(low, low + 1));
	ASSERT_EQ(0, fs_write_file("/proc/sys/net/ipv4/tcp_tw_reuse", "1"));
	ASSERT_EQ(0, pin_to(cpu));
	for (i = 0; i < 3; i++) {
		if (i)
			sleep(2);	/* tw_reuse wants a newer second */
		ASSERT_EQ(0, one_conn(self, TCP_FASTSOCKET_ON, NULL, &lport,
				      &in));
		EXPECT_EQ(low, lport);
		EXPECT_EQ(cpu, in);
	}
	EXPECT_EQ(cls + 3, stat_total("connect_class"));
	EXPECT_EQ(fb, stat_total("connect_fallback"));
}

#define PAR_CONNS	24

struct par_arg {
	const FIXTURE_DATA(steer) *self;
	pthread_barrier_t *start;
	int cpu;
	int fd[PAR_CONNS];
	int port[PAR_CONNS];
	int failed;
};

static void *par_connect(void *p)
{
	struct par_arg *a = p;
	int i;

	if (pin_to(a->cpu))
		a->failed++;
	pthread_barrier_wait(a->start);
	for (i = 0; i < PAR_CONNS; i++) {
		a->fd[i] = connect_on(a->self);
		a->port[i] = a->fd[i] < 0 ? -1 : fs_local_port(a->fd[i]);
		a->failed += a->fd[i] < 0;
	}
	return NULL;
}

/*
 * Parallel connect()s to one destination from every CPU in a narrow
 * range: all succeed, no two share a port (the 4-tuple), each in its
 * CPU's class.
 */
TEST_F(steer, parallel_connects_unique)
{
	int low = 40000, high = 40000 + 4 * PAR_CONNS * self->ncpu - 1;
	struct par_arg a[32];
	pthread_barrier_t start;
	pthread_t th[32];
	int c, i, d, j, dup = 0;

	ASSERT_EQ(0, set_range(low, high));
	ASSERT_EQ(0, pthread_barrier_init(&start, NULL, self->ncpu));
	for (c = 0; c < self->ncpu; c++) {
		memset(&a[c], 0, sizeof(a[c]));
		a[c].self = self;
		a[c].start = &start;
		a[c].cpu = c;
		ASSERT_EQ(0, pthread_create(&th[c], NULL, par_connect, &a[c]));
	}
	for (c = 0; c < self->ncpu; c++)
		pthread_join(th[c], NULL);
	for (c = 0; c < self->ncpu; c++) {
		EXPECT_EQ(0, a[c].failed);
		for (i = 0; i < PAR_CONNS; i++) {
			EXPECT_EQ(c, fs_port_class(a[c].port[i], low, high,
						   self->bits));
			for (d = 0; d <= c; d++)
				for (j = 0; j < (d == c ? i : PAR_CONNS); j++)
					dup += a[d].port[j] == a[c].port[i];
		}
	}
	EXPECT_EQ(0, dup);
	for (c = 0; c < self->ncpu; c++)
		for (i = 0; i < PAR_CONNS; i++)
			if (a[c].fd[i] >= 0)
				close(a[c].fd[i]);
	pthread_barrier_destroy(&start);
}

/*
 * The ports of successive connects are not sequential: the random offset
 * of RFC 6056 still moves them by varying steps within the class.
 */
TEST_F(steer, ports_not_sequential)
{
	int ports[32], deltas[32], ndelta = 0, i, j, lport = -1, in = -1;

	ASSERT_EQ(0, pin_to(0));
	for (i = 0; i < 32; i++) {
		ASSERT_EQ(0, one_conn(self, TCP_FASTSOCKET_ON, NULL, &lport,
				      &in));
		ports[i] = lport;
	}
	for (i = 1; i < 32; i++) {
		int delta = ports[i] - ports[i - 1];

		for (j = 0; j < ndelta && deltas[j] != delta; j++)
			;
		if (j == ndelta)
			deltas[ndelta++] = delta;
	}
	TH_LOG("%d distinct steps between 32 successive ports", ndelta);
	EXPECT_LE(3, ndelta);
}

#define PASSIVE_CONNS	32

struct acceptor {
	int lfd;
	int cpu;
	int n;			/* connections served */
	int moved;		/* SO_INCOMING_CPU changed after accept */
	int off_cpu;		/* SO_INCOMING_CPU not the accepting CPU */
	int failed;
	pid_t tid;		/* set once pinned, before the first accept() */
};

/* Serve until the "quit" connection: ping, pong, wait for EOF. */
static void *acceptor_main(void *p)
{
	struct acceptor *a = p;
	int s, first;
	char buf[8];

	if (pin_to(a->cpu))
		a->failed++;
	__atomic_store_n(&a->tid, fs_gettid(), __ATOMIC_RELEASE);
	for (;;) {
		s = accept(a->lfd, NULL, NULL);
		if (s < 0) {
			a->failed++;
			return NULL;
		}
		/*
		 * Only the handshake has been processed yet: the client
		 * speaks after our "helo", so "first" is the CPU that
		 * completed it, whatever the timing of the client.
		 */
		first = incoming_cpu(s);
		if (write(s, "helo", 4) != 4 ||
		    read(s, buf, sizeof(buf)) != 4) {
			a->failed++;
			close(s);
			continue;
		}
		if (!memcmp(buf, "quit", 4)) {
			close(s);
			return NULL;
		}
		if (write(s, "pong", 4) != 4)
			a->failed++;
		while (read(s, buf, sizeof(buf)) > 0)
			;
		a->n++;
		a->moved += incoming_cpu(s) != first;
		a->off_cpu += incoming_cpu(s) != a->cpu;
		close(s);
	}
}

/*
 * From the server netns, @n connections to @port on the client side's
 * address (each "ping"), then one "quit" per acceptor. Returns the
 * number of connections that failed, or -1.
 */
static int remote_clients(const FIXTURE_DATA(steer) *self, int port, int n,
			  int quits)
{
	struct sockaddr_storage ss = { .ss_family = self->dst.ss_family };
	socklen_t len = self->dlen;
	char buf[8];
	int i, fd, bad = 0, st;
	pid_t pid;

	if (ss.ss_family == AF_INET6) {
		inet_pton(AF_INET6, "fd99::1",
			  &((struct sockaddr_in6 *)&ss)->sin6_addr);
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	} else {
		inet_pton(AF_INET, "10.99.0.1",
			  &((struct sockaddr_in *)&ss)->sin_addr);
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	}
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid)
		return waitpid(pid, &st, 0) == pid && WIFEXITED(st) ?
		       WEXITSTATUS(st) : -1;
	if (fs_enter_netns(self->ns))
		_exit(255);
	for (i = 0; i < n + quits; i++) {
		fd = socket(ss.ss_family, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) ||
		    read(fd, buf, sizeof(buf)) != 4 ||
		    write(fd, i < n ? "ping" : "quit", 4) != 4 ||
		    (i < n && read(fd, buf, sizeof(buf)) != 4))
			bad++;
		if (fd >= 0)
			close(fd);
	}
	_exit(bad > 254 ? 254 : bad);
}

/*
 * One pass of PASSIVE_CONNS connections from the server netns to a
 * listener here served by one blocking acceptor thread on each of CPUs 0
 * to @nacc - 1; fills @a[nacc].
 */
static void passive_pass(struct __test_metadata *_metadata,
			 const FIXTURE_DATA(steer) *self, int lfd,
			 struct acceptor *a, int nacc)
{
	pthread_t th[32];
	int c;

	for (c = 0; c < nacc; c++) {
		memset(&a[c], 0, sizeof(a[c]));
		a[c].lfd = lfd;
		a[c].cpu = c;
		ASSERT_EQ(0, pthread_create(&th[c], NULL, acceptor_main,
					    &a[c]));
	}
	/*
	 * Every acceptor in accept() before the first SYN: a CPU whose
	 * acceptor has not started yet has no reservation, and its first
	 * connection could go to another CPU's acceptor. A listener enabled
	 * after listen() gets its local queues at the first accept().
	 */
	for (c = 0; c < nacc; c++) {
		while (!__atomic_load_n(&a[c].tid, __ATOMIC_ACQUIRE))
			usleep(1000);
		ASSERT_EQ(0, fs_wait_sleeping(a[c].tid));
	}
	EXPECT_EQ(0, remote_clients(self, fs_local_port(lfd), PASSIVE_CONNS,
				    nacc));
	for (c = 0; c < nacc; c++)
		pthread_join(th[c], NULL);
}

/*
 * The passive side with RFS on: a connection accepted through the local
 * listen table is processed, from its handshake to its close, on the CPU
 * that accepted it; RFS, recording that same CPU, never moves it. The
 * control in the same test, listen off, accepts on CPU 0 only, and RFS
 * moves there the connections whose handshake RPS put elsewhere.
 */
TEST_F(steer, passive_not_moved_by_rfs)
{
	struct sockaddr_storage ss = { .ss_family = self->dst.ss_family };
	int lfd, c, n, moved, off, low, high, one = 1;
	char old_entries[32], port[16];
	long stolen, global;
	struct acceptor a[32];

	ASSERT_LE(0, self->rfs_fd);
	n = pread(self->rfs_fd, old_entries, sizeof(old_entries) - 1, 0);
	ASSERT_LT(0, n);
	old_entries[n] = '\0';
	ASSERT_EQ(4, pwrite(self->rfs_fd, "4096", 4, 0));
	ASSERT_EQ(0, fs_write_file("/sys/class/net/" CLI_DEV
				   "/queues/rx-0/rps_flow_cnt", "4096"));

	lfd = socket(ss.ss_family, SOCK_STREAM, 0);
	ASSERT_LE(0, lfd);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ASSERT_EQ(0, bind(lfd, (struct sockaddr *)&ss, self->dlen));
	ASSERT_EQ(0, listen(lfd, 256));
	ASSERT_EQ(0, port_range(&low, &high));
	/* bind(0) takes the other parity: the listener is not steered */
	ASSERT_EQ(-1, fs_port_class(fs_local_port(lfd), low, high,
				    self->bits));

	/* Fastsocket: listen on, the listener enabled by its port */
	snprintf(port, sizeof(port), "%d", fs_local_port(lfd));
	ASSERT_EQ(0, fs_sysctl_write("ports", port));
	/*
	 * Each acceptor serves its connection to the end before it accepts
	 * again: under emulation that outlasts the 100 us reservation, and
	 * the next connection of its CPU would be taken by the other one.
	 * Wait for the own CPU's acceptor, as a real core would.
	 */
	ASSERT_EQ(0, fs_sysctl_write("listen_reserve_us", "1000000"));
	stolen = fs_stat("accept_stolen", -1);
	global = fs_stat("listen_global", -1);
	passive_pass(_metadata, self, lfd, a, self->ncpu);
	stolen = fs_stat("accept_stolen", -1) - stolen;
	global = fs_stat("listen_global", -1) - global;
	for (c = n = moved = off = 0; c < self->ncpu; c++) {
		EXPECT_EQ(0, a[c].failed);
		n += a[c].n;
		moved += a[c].moved;
		off += a[c].off_cpu;
	}
	EXPECT_EQ(PASSIVE_CONNS, n);
	EXPECT_EQ(0, moved) TH_LOG("%ld accepted from another CPU's queue, %ld queued on the shared one",
				   stolen, global);
	EXPECT_EQ(0, global);
	EXPECT_EQ(0, off);

	/*
	 * The control: listen off, as on vanilla with RFS, and one acceptor,
	 * on CPU 0. RPS completes about half of the handshakes on the other
	 * CPUs; RFS then moves those flows to CPU 0. (With an acceptor on
	 * every CPU, which one a wakeup picks decides how many move, which
	 * is timing.)
	 */
	ASSERT_EQ(0, fs_sysctl_write("listen", "0"));
	passive_pass(_metadata, self, lfd, a, 1);
	for (c = n = moved = off = 0; c < 1; c++) {
		n += a[c].n;
		moved += a[c].moved;
		off += a[c].off_cpu;
	}
	TH_LOG("listen off: %d of %d connections handled off the accepting CPU at first, %d at the end",
	       moved, n, off);
	EXPECT_EQ(PASSIVE_CONNS, n);
	EXPECT_LT(0, moved);

	close(lfd);
	EXPECT_EQ((ssize_t)strlen(old_entries),
		  pwrite(self->rfs_fd, old_entries, strlen(old_entries), 0));
}

/* More class bits than CPUs need: ports still map to the connecting CPU. */
TEST_F(steer, wider_classes_still_steer)
{
	int n = self->ncpu * PER_CPU, local, classed;
	char val[16];

	self->bits += 1;
	snprintf(val, sizeof(val), "%u", self->bits);
	ASSERT_EQ(0, fs_sysctl_write(FS_CLASS_BITS, val));
	local = conn_loop(_metadata, self, TCP_FASTSOCKET_ON, NULL, &classed);
	EXPECT_EQ(n, local);
	EXPECT_EQ(n, classed);
}

/* Bad class bits are refused and change nothing. */
TEST_F(steer, bad_class_bits_rejected)
{
	static const char *const bad[] = {
		"11", "-1", "abc", "1x", "4294967297", "1 2",
	};
	char max[16];
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-EINVAL, fs_sysctl_write(FS_CLASS_BITS, bad[i]))
			TH_LOG("steering_class_bits '%s'", bad[i]);
		EXPECT_EQ((int)self->bits, fs_sysctl_int(FS_CLASS_BITS));
	}
	snprintf(max, sizeof(max), "%d", FS_CLASS_BITS_MAX);
	EXPECT_EQ(0, fs_sysctl_write(FS_CLASS_BITS, max));
	EXPECT_EQ(FS_CLASS_BITS_MAX, fs_sysctl_int(FS_CLASS_BITS));
}

/*
 * The client of preload_active_is_steered, run under libfastsocket.so:
 * "--client ADDR PORT NCPU BITS". It sets nothing itself. Prints how many
 * connections had SO_INCOMING_CPU, and their port's class, equal to the
 * connecting CPU.
 */
static int client_main(char **argv)
{
	FIXTURE_DATA(steer) self = { 0 };
	int cpu, i, lport = -1, in = -1, low, high, local = 0, classed = 0;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&self.dst;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&self.dst;

	if (inet_pton(AF_INET, argv[0], &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(atoi(argv[1]));
		self.dlen = sizeof(*a4);
	} else if (inet_pton(AF_INET6, argv[0], &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(atoi(argv[1]));
		self.dlen = sizeof(*a6);
	} else {
		return 2;
	}
	self.ncpu = atoi(argv[2]);
	self.bits = atoi(argv[3]);
	if (port_range(&low, &high))
		return 2;
	for (cpu = 0; cpu < self.ncpu; cpu++) {
		if (pin_to(cpu))
			return 2;
		for (i = 0; i < PER_CPU; i++) {
			if (one_conn(&self, -1, NULL, &lport, &in))
				return 1;
			local += in == cpu;
			classed += fs_port_class(lport, low, high,
						 self.bits) == cpu;
		}
	}
	printf("local %d classed %d\n", local, classed);
	return 0;
}

/*
 * An unmodified client under libfastsocket.so with FASTSOCKET_ACTIVE=1 is
 * steered like one that sets TCP_FASTSOCKET_ON itself.
 */
TEST_F(steer, preload_active_is_steered)
{
	char lib[PATH_MAX], cmd[PATH_MAX * 2 + 128], addr[64], line[64];
	long cls = stat_total("connect_class");
	int n = self->ncpu * PER_CPU, local = -1, classed = -1, port;
	FILE *f;

	ASSERT_EQ(0, fs_preload_lib(lib, sizeof(lib)));
	if (self->dst.ss_family == AF_INET6) {
		inet_ntop(AF_INET6,
			  &((struct sockaddr_in6 *)&self->dst)->sin6_addr,
			  addr, sizeof(addr));
		port = ntohs(((struct sockaddr_in6 *)&self->dst)->sin6_port);
	} else {
		inet_ntop(AF_INET,
			  &((struct sockaddr_in *)&self->dst)->sin_addr,
			  addr, sizeof(addr));
		port = ntohs(((struct sockaddr_in *)&self->dst)->sin_port);
	}
	snprintf(cmd, sizeof(cmd),
		 "LD_PRELOAD=%s FASTSOCKET_ACTIVE=1 /proc/%d/exe --client %s %d %d %u",
		 lib, getpid(), addr, port, self->ncpu, self->bits);
	f = popen(cmd, "r");
	ASSERT_NE(NULL, f);
	if (fgets(line, sizeof(line), f))
		sscanf(line, "local %d classed %d", &local, &classed);
	ASSERT_EQ(0, pclose(f));
	EXPECT_EQ(n, local);
	EXPECT_EQ(n, classed);
	EXPECT_EQ(cls + n, stat_total("connect_class"));
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "--client"))
		return client_main(argv + 2);
	return test_harness_run(argc, argv);
}
