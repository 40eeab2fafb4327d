// SPDX-License-Identifier: GPL-2.0
/*
 * The local established table (net.fastsocket.established).
 *
 * The test netns is the server for passive connections and the client
 * for active ones; a peer netns joined by veth is the other side. RPS
 * spreads what the test netns receives over every CPU, as a NIC's RSS
 * would, so each connection is set up on the CPU its packets go to and is
 * inserted in that CPU's block of the established table. Each test
 * checks that the connections are found (no reset, no loss) and that the
 * counters moved, with a control in the same test where it makes sense:
 * the feature off, or the flows moved to another CPU.
 */
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <linux/bpf.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <signal.h>

#include "fs_util.h"
#include "kselftest_harness.h"

#define CONNS		32
#define MAX_CONNS	256
/* closes in one burst for metrics_updated_once_per_jiffy */
#define METRICS_CONNS	128
#define DEV		"fse0"
#define PEER_DEV	"fse1"

/* Fill @ss with @family's address @v4 or @v6 and @port. */
static socklen_t set_addr(struct sockaddr_storage *ss, int family,
			  const char *v4, const char *v6, int port)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = family;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		inet_pton(AF_INET6, v6, &a->sin6_addr);
		a->sin6_port = htons(port);
		return sizeof(*a);
	}
	((struct sockaddr_in *)ss)->sin_port = htons(port);
	inet_pton(AF_INET, v4, &((struct sockaddr_in *)ss)->sin_addr);
	return sizeof(struct sockaddr_in);
}

/*
 * Echo server: accept on @lfd and echo every byte back, on every
 * connection, until the process ends. Runs in a thread or a child. A
 * connection leaves the epoll set before its fd is closed: a child that
 * the test forked meanwhile may hold the file open, and epoll would keep
 * reporting it.
 */
static void *echo_main(void *p)
{
	int lfd = *(int *)p, ep, n, r, i, s;
	struct epoll_event ev = { .events = EPOLLIN }, evs[64];
	char buf[256];

	ep = epoll_create1(0);
	ev.data.fd = lfd;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev))
		return NULL;
	for (;;) {
		n = epoll_wait(ep, evs, 64, -1);
		for (i = 0; i < n; i++) {
			s = evs[i].data.fd;
			if (s == lfd) {
				s = accept(lfd, NULL, NULL);
				ev.data.fd = s;
				if (s >= 0)
					epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
				continue;
			}
			r = read(s, buf, sizeof(buf));
			if (r <= 0 || write(s, buf, r) != r) {
				epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL);
				close(s);
			}
		}
	}
	return NULL;
}

/* A listener on @family's wildcard, port 0, TCP_FASTSOCKET @mode. */
static int listener(int family, int mode)
{
	struct sockaddr_storage ss = { .ss_family = family };
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) :
					     sizeof(struct sockaddr_in);
	int fd, one = 1;

	fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if ((mode >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET, &mode,
				     sizeof(mode))) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 1024)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One round trip on @fd; 0 or -1. */
static int ping(int fd)
{
	char buf[8];

	return write(fd, "ping", 4) == 4 && read(fd, buf, sizeof(buf)) == 4 ?
	       0 : -1;
}

/*
 * The peer: a child in the peer netns that opens connections to the test
 * netns and uses them on request, over a pipe pair. Commands (one int):
 * n > 0 opens n more connections, each with one round trip; 0 does a
 * round trip on every open one; -1 closes them all; -2 exits. The answer
 * is the number of failures.
 */
struct peer {
	pid_t pid;
	int cmd, res;
};

static void peer_main(const char *ns, const struct sockaddr_storage *dst,
		      socklen_t dlen, int cmd, int res)
{
	int fds[MAX_CONNS], nfd = 0, c, bad, i;

	if (fs_enter_netns(ns))
		_exit(1);
	while (read(cmd, &c, sizeof(c)) == sizeof(c) && c != -2) {
		bad = 0;
		if (c > 0) {
			for (i = 0; i < c && nfd < MAX_CONNS; i++) {
				int fd = socket(dst->ss_family, SOCK_STREAM, 0);

				if (fd < 0 ||
				    connect(fd, (const struct sockaddr *)dst,
					    dlen) || ping(fd)) {
					bad++;
					if (fd >= 0)
						close(fd);
					continue;
				}
				fds[nfd++] = fd;
			}
			bad += c - i;
		} else if (c == 0) {
			for (i = 0; i < nfd; i++)
				bad += !!ping(fds[i]);
		} else {
			while (nfd)
				close(fds[--nfd]);
		}
		if (write(res, &bad, sizeof(bad)) != sizeof(bad))
			_exit(1);
	}
	_exit(0);
}

/* Send @c to the peer; returns its answer, or -1. */
static int peer_do(struct peer *p, int c)
{
	int bad;

	if (write(p->cmd, &c, sizeof(c)) != sizeof(c) ||
	    read(p->res, &bad, sizeof(bad)) != sizeof(bad))
		return -1;
	return bad;
}

/*
 * In a forked child: close every descriptor but @keep1 and @keep2, so that
 * the child holds none of the test's sockets open (a listener the test
 * closes must really close).
 */
static void close_others(int keep1, int keep2)
{
	int fd;

	for (fd = 3; fd < 1024; fd++)
		if (fd != keep1 && fd != keep2)
			close(fd);
}

/* Fork a peer in netns @ns whose connections go to @dst; 0 or -1. */
static int peer_start(struct peer *p, const char *ns,
		      const struct sockaddr_storage *dst, socklen_t dlen)
{
	int cmd[2], res[2];

	if (pipe(cmd))
		return -1;
	if (pipe(res)) {
		close(cmd[0]);
		close(cmd[1]);
		return -1;
	}
	p->pid = fork();
	if (!p->pid) {
		close_others(cmd[0], res[1]);
		peer_main(ns, dst, dlen, cmd[0], res[1]);
	}
	close(cmd[0]);
	close(res[1]);
	p->cmd = cmd[1];
	p->res = res[0];
	return p->pid < 0 ? -1 : 0;
}

/* Tell a started peer to exit, and reap it. */
static void peer_stop(struct peer *p)
{
	if (p->pid > 0) {
		peer_do(p, -2);
		waitpid(p->pid, NULL, 0);
	}
	close(p->cmd);
	close(p->res);
	p->pid = -1;
}

FIXTURE(est) {
	char ns[32];
	int ncpu;
	int lfd;		/* the enabled listener here */
	int port;
	pthread_t echo;
	bool echo_on;
	struct peer peer;
	pid_t peer_server;	/* echo server in the peer netns */
	struct sockaddr_storage peer_addr;	/* its address and port */
	socklen_t peer_len;
};

FIXTURE_VARIANT(est) {
	int family;
};

FIXTURE_VARIANT_ADD(est, ipv4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(est, ipv6) { .family = AF_INET6 };

static void set_rps(struct __test_metadata *_metadata, unsigned int mask)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%x", mask);
	ASSERT_EQ(0, fs_write_file("/sys/class/net/" DEV "/queues/rx-0/rps_cpus",
				   buf));
}

FIXTURE_SETUP(est)
{
	struct sockaddr_storage here;
	socklen_t hlen;
	int pfd[2], port;

	self->ns[0] = '\0';
	self->lfd = -1;
	self->peer.pid = -1;
	self->peer_server = -1;
	self->echo_on = false;
	/* a peer that died must fail a test, not kill it */
	signal(SIGPIPE, SIG_IGN);
	if (!fs_present())
		SKIP(return, "fastsocket module not loaded");
	if (!fs_feature_available("established"))
		SKIP(return, "this kernel has no local established table");
	self->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_GT(32, self->ncpu);

	ASSERT_EQ(0, unshare(CLONE_NEWNET | CLONE_NEWNS));
	ASSERT_EQ(0, fs_lo_up());
	ASSERT_EQ(0, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	umount2("/sys", MNT_DETACH);
	ASSERT_EQ(0, mount("sysfs", "/sys", "sysfs", 0, NULL));
	snprintf(self->ns, sizeof(self->ns), "fs_est_%d", getpid());
	ASSERT_EQ(0, fs_veth_netns(self->ns, DEV, PEER_DEV, 98));
	set_rps(_metadata, (1U << self->ncpu) - 1);
	ASSERT_EQ(0, fs_enable_all());
	ASSERT_EQ(1, fs_sysctl_int("established"));

	/* The enabled listener and its echo thread. */
	self->lfd = listener(variant->family, TCP_FASTSOCKET_ON);
	ASSERT_LE(0, self->lfd);
	self->port = fs_local_port(self->lfd);
	ASSERT_EQ(0, pthread_create(&self->echo, NULL, echo_main, &self->lfd));
	self->echo_on = true;

	/* The peer's clients. */
	hlen = set_addr(&here, variant->family, "10.98.0.1", "fd98::1",
			self->port);
	ASSERT_EQ(0, peer_start(&self->peer, self->ns, &here, hlen));

	/* The peer's echo server, for active connections from here. */
	ASSERT_EQ(0, pipe(pfd));
	self->peer_server = fork();
	ASSERT_LE(0, self->peer_server);
	if (!self->peer_server) {
		int fd;

		close_others(pfd[1], -1);
		if (fs_enter_netns(self->ns))
			_exit(1);
		fd = listener(variant->family, -1);
		port = fd < 0 ? -1 : fs_local_port(fd);
		if (write(pfd[1], &port, sizeof(port)) != sizeof(port))
			_exit(1);
		echo_main(&fd);
		_exit(1);
	}
	close(pfd[1]);
	ASSERT_EQ(sizeof(port), read(pfd[0], &port, sizeof(port)));
	close(pfd[0]);
	ASSERT_LT(0, port);
	self->peer_len = set_addr(&self->peer_addr, variant->family,
				  "10.98.0.2", "fd98::2", port);
}

FIXTURE_TEARDOWN(est)
{
	if (self->peer.pid > 0)
		peer_stop(&self->peer);
	if (self->peer_server > 0) {
		kill(self->peer_server, SIGKILL);
		waitpid(self->peer_server, NULL, 0);
	}
	if (self->echo_on) {
		pthread_cancel(self->echo);
		pthread_join(self->echo, NULL);
	}
	if (self->ns[0])
		fs_run("ip netns del %s", self->ns);
}

static long total(const char *name)
{
	return fs_stat(name, -1);
}

/*
 * Passive connections of an enabled listener go into the block of the CPU
 * that set them up, and every later packet finds them there. The control:
 * with established off, none does.
 */
TEST_F(est, passive_connections_are_local)
{
	long ins = total("est_local"), hit = total("est_hit_local");
	long remote = total("est_hit_remote");

	ASSERT_LE(0, ins);
	ASSERT_EQ(0, peer_do(&self->peer, CONNS));
	ASSERT_EQ(0, peer_do(&self->peer, 0));
	/* one request socket each */
	EXPECT_EQ(ins + CONNS, total("est_local"));
	/* the handshake's ACK, two pings, their ACKs at least */
	EXPECT_LE(hit + 3 * CONNS, total("est_hit_local"));
	EXPECT_EQ(remote, total("est_hit_remote"));
	ASSERT_EQ(0, peer_do(&self->peer, -1));

	/* The control: the switch off, as on vanilla. */
	ASSERT_EQ(0, fs_sysctl_write("established", "0"));
	ins = total("est_local");
	ASSERT_EQ(0, peer_do(&self->peer, CONNS));
	ASSERT_EQ(0, peer_do(&self->peer, 0));
	EXPECT_EQ(ins, total("est_local"));
	ASSERT_EQ(0, peer_do(&self->peer, -1));
}

/*
 * /proc/net/tcp{,6} (what ss reads without netlink) walks the whole
 * table: every local connection is listed, once.
 */
TEST_F(est, proc_net_tcp_lists_each_once)
{
	const char *path = variant->family == AF_INET6 ? "/proc/net/tcp6" :
							 "/proc/net/tcp";
	char line[512], seen[65536] = { 0 };
	unsigned int lport, rport, st;
	int n = 0, dup = 0;
	FILE *f;

	ASSERT_EQ(0, peer_do(&self->peer, CONNS));
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');

		/* "sl: local:port remote:port st ..." */
		if (!p || !(p = strchr(p + 1, ':')) ||
		    sscanf(p + 1, "%x", &lport) != 1 ||
		    !(p = strchr(p + 1, ':')) ||
		    sscanf(p + 1, "%x %x", &rport, &st) != 2)
			continue;
		if (lport != (unsigned int)self->port || st != 1)
			continue;
		dup += seen[rport]++ > 0;
		n++;
	}
	fclose(f);
	EXPECT_EQ(CONNS, n);
	EXPECT_EQ(0, dup);
	ASSERT_EQ(0, peer_do(&self->peer, -1));
}

/*
 * The flows move: RPS now sends everything to CPU 0. Connections set up
 * on other CPUs are found in their blocks from CPU 0, and none is lost.
 */
TEST_F(est, moved_flows_are_found)
{
	long remote;

	ASSERT_EQ(0, peer_do(&self->peer, CONNS));
	remote = total("est_hit_remote");
	set_rps(_metadata, 1);
	EXPECT_EQ(0, peer_do(&self->peer, 0));
	EXPECT_LT(remote, total("est_hit_remote"));
	set_rps(_metadata, (1U << self->ncpu) - 1);
	EXPECT_EQ(0, peer_do(&self->peer, 0));
	ASSERT_EQ(0, peer_do(&self->peer, -1));
}

/*
 * A CPU goes offline with connections in its block: its block is handed
 * over, so the connections keep working and are found there from the
 * other CPUs (est_handover); the CPU comes back and the hand-over ends.
 */
TEST_F(est, cpu_offline_keeps_connections)
{
	const char *online = "/sys/devices/system/cpu/cpu1/online";
	long handover;
	char buf[8];

	if (fs_read_file(online, buf, sizeof(buf)) || buf[0] != '1')
		SKIP(return, "CPU 1 cannot go offline here");
	ASSERT_EQ(0, peer_do(&self->peer, CONNS));
	handover = total("est_handover");
	ASSERT_EQ(0, fs_write_file(online, "0"));
	EXPECT_EQ(0, peer_do(&self->peer, 0));
	EXPECT_LT(handover, total("est_handover"));
	ASSERT_EQ(0, fs_write_file(online, "1"));
	handover = total("est_handover");
	set_rps(_metadata, (1U << self->ncpu) - 1);
	EXPECT_EQ(0, peer_do(&self->peer, 0));
	EXPECT_EQ(handover, total("est_handover"));
	ASSERT_EQ(0, peer_do(&self->peer, -1));
}

/* The module goes away under load: local connections keep working. */
TEST_F(est, module_unload_keeps_connections)
{
	if (!getenv("FS_MODULE"))
		SKIP(return, "FS_MODULE not set: the module could not be reloaded");
	ASSERT_EQ(0, peer_do(&self->peer, CONNS));
	ASSERT_EQ(0, fs_unload_module());
	EXPECT_EQ(0, peer_do(&self->peer, 0));
	EXPECT_EQ(0, peer_do(&self->peer, -1));
	ASSERT_EQ(0, fs_load_module());
}

struct par {
	const FIXTURE_DATA(est) *self;
	int cpu, n, bad;
	int ports[CONNS];
	int fds[CONNS];
};

/* Connect CONNS times to the peer's echo server from one pinned CPU. */
static void *par_connect(void *p)
{
	struct par *c = p;
	int i, fd;

	if (pin_to(c->cpu)) {
		c->bad = CONNS;
		return NULL;
	}
	for (i = 0; i < CONNS; i++) {
		fd = fs_connect_addr((const struct sockaddr *)&c->self->peer_addr,
				     c->self->peer_len, SOCK_STREAM,
				     TCP_FASTSOCKET_ON);
		if (fd < 0 || ping(fd)) {
			c->bad++;
			if (fd >= 0)
				close(fd);
			continue;
		}
		c->fds[c->n] = fd;
		c->ports[c->n++] = fs_local_port(fd);
	}
	return NULL;
}

/*
 * Steered active connections from every CPU at once to one destination:
 * each goes into its CPU's block, and no two share a tuple.
 */
TEST_F(est, parallel_connects_unique)
{
	static struct par c[32];
	static char seen[65536];
	long ins = total("est_local");
	pthread_t th[32];
	int cpu, i, dup = 0, n = 0;

	memset(seen, 0, sizeof(seen));
	for (cpu = 0; cpu < self->ncpu; cpu++) {
		memset(&c[cpu], 0, sizeof(c[cpu]));
		c[cpu].self = self;
		c[cpu].cpu = cpu;
		ASSERT_EQ(0, pthread_create(&th[cpu], NULL, par_connect,
					    &c[cpu]));
	}
	for (cpu = 0; cpu < self->ncpu; cpu++) {
		pthread_join(th[cpu], NULL);
		EXPECT_EQ(0, c[cpu].bad);
		for (i = 0; i < c[cpu].n; i++) {
			dup += seen[c[cpu].ports[i]]++ > 0;
			n++;
		}
	}
	EXPECT_EQ(self->ncpu * CONNS, n);
	EXPECT_EQ(0, dup);
	EXPECT_EQ(ins + n, total("est_local"));
	for (cpu = 0; cpu < self->ncpu; cpu++) {
		for (i = 0; i < c[cpu].n; i++) {
			EXPECT_EQ(0, ping(c[cpu].fds[i]));
			close(c[cpu].fds[i]);
		}
	}
}

/*
 * A steered connect() from a port bound outside the ephemeral range has
 * no class CPU: it goes into its usual bucket, counted as a fallback
 * (est_global), and works. The control, the same connect() without the
 * bind, goes into its CPU's block (est_local).
 */
TEST_F(est, bound_connect_falls_back)
{
	long ins = total("est_local"), fb = total("est_global");
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, low, high, mode = TCP_FASTSOCKET_ON;
	char range[32];

	ASSERT_EQ(0, fs_read_file("/proc/sys/net/ipv4/ip_local_port_range",
				  range, sizeof(range)));
	ASSERT_EQ(2, sscanf(range, "%d %d", &low, &high));
	ASSERT_LT(1024, low);
	fd = socket(variant->family, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET, &mode,
				sizeof(mode)));
	len = set_addr(&ss, variant->family, "10.98.0.1", "fd98::1",
		       low - 1);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&ss, len));
	ASSERT_EQ(0, connect(fd, (const struct sockaddr *)&self->peer_addr,
			     self->peer_len));
	EXPECT_EQ(0, ping(fd));
	EXPECT_EQ(fb + 1, total("est_global"));
	EXPECT_EQ(ins, total("est_local"));
	close(fd);

	fd = fs_connect_addr((const struct sockaddr *)&self->peer_addr,
			     self->peer_len, SOCK_STREAM, TCP_FASTSOCKET_ON);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, ping(fd));
	EXPECT_EQ(fb + 1, total("est_global"));
	EXPECT_EQ(ins + 1, total("est_local"));
	close(fd);
}

/*
 * TIME_WAIT in a block: with one port in CPU 0's class and tcp_tw_reuse,
 * each new connection takes the port back from its own TIME_WAIT
 * socket, which is in CPU 0's block.
 */
TEST_F(est, time_wait_reused_in_block)
{
	unsigned int bits = fs_sysctl_int(FS_CLASS_BITS);
	long ins = total("est_local"), fb = total("connect_fallback");
	char range[32];
	int i, fd, low;

	for (low = 40000; fs_port_class(low, low, low + 1, bits) != 0;
	     low += 2)
		;
	snprintf(range, sizeof(range), "%d %d", low, low + 1);
	ASSERT_EQ(0, fs_write_file("/proc/sys/net/ipv4/ip_local_port_range",
				   range));
	ASSERT_EQ(0, fs_write_file("/proc/sys/net/ipv4/tcp_tw_reuse", "1"));
	ASSERT_EQ(0, pin_to(0));
	for (i = 0; i < 3; i++) {
		if (i)
			sleep(2);	/* tw_reuse wants a newer second */
		fd = fs_connect_addr((const struct sockaddr *)&self->peer_addr,
				     self->peer_len, SOCK_STREAM,
				     TCP_FASTSOCKET_ON);
		ASSERT_LE(0, fd);
		EXPECT_EQ(0, ping(fd));
		EXPECT_EQ(low, fs_local_port(fd));
		/* we close first: TIME_WAIT is here */
		close(fd);
	}
	EXPECT_EQ(ins + 3, total("est_local"));
	EXPECT_EQ(fb, total("connect_fallback"));
}

/*
 * Established TCP sockets here whose @dir ("sport" or "dport") is @port,
 * as ss lists them; with @kill, ss -K run on CPU 0 destroys them and
 * lists those it destroyed. The count, or -1.
 */
static int ss_state(bool kill, const char *state, const char *dir, int port)
{
	char cmd[128], line[512];
	FILE *f;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "%s -tnH state %s %s = :%d",
		 kill ? "taskset -c 0 ss -K" : "ss", state, dir, port);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n++;
	return pclose(f) ? -1 : n;
}

/*
 * ss lists the local connections and ss -K (SOCK_DESTROY, through
 * inet_diag's full lookup) kills them, from CPU 0, in whichever block
 * they are: the ones in CPU 1's block are found there (est_hit_remote).
 * The control, a connection in its usual bucket, shows that this kernel
 * can destroy sockets at all. Five runs of ss under KASAN and TCG take
 * over the harness's default 30 s when other VMs share the host.
 */
TEST_F_TIMEOUT(est, ss_kills_local_connections, 120)
{
	long remote;
	int fd, n;

	ASSERT_EQ(0, pin_to(0));
	fd = fs_connect_addr((const struct sockaddr *)&self->peer_addr,
			     self->peer_len, SOCK_STREAM, TCP_FASTSOCKET_OFF);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ping(fd));
	/* sin_port and sin6_port are at the same place */
	n = ss_state(true, "established", "dport",
			   ntohs(((struct sockaddr_in *)&self->peer_addr)->sin_port));
	if (ping(fd) == 0)
		SKIP(close(fd); return,
		     "no SOCK_DESTROY here (CONFIG_INET_DIAG_DESTROY)");
	EXPECT_EQ(1, n);
	close(fd);

	ASSERT_EQ(0, peer_do(&self->peer, CONNS));
	EXPECT_EQ(CONNS, ss_state(false, "established", "sport", self->port));
	remote = total("est_hit_remote");
	EXPECT_EQ(CONNS, ss_state(true, "established", "sport", self->port));
	EXPECT_LT(remote, total("est_hit_remote"));
	EXPECT_EQ(0, ss_state(false, "established", "sport", self->port));
	/* the peer saw every connection reset */
	EXPECT_EQ(CONNS, peer_do(&self->peer, 0));
	ASSERT_EQ(0, peer_do(&self->peer, -1));
}

/* The sequence number the peer acknowledged last on idle @fd, or -1. */
static long long snd_una(int fd)
{
	int q = TCP_SEND_QUEUE, on = 1, off = -1;	/* TCP_REPAIR_OFF_NO_WP */
	unsigned int seq;
	socklen_t len = sizeof(seq);

	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)))
		return -1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) ||
	    getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, &seq, &len))
		seq = 0, len = 0;
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) || !len)
		return -1;
	return seq;	/* idle: all written is acked, write_seq == snd_una */
}

static unsigned short csum(const void *p, size_t len)
{
	const unsigned char *b = p;
	unsigned int sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += b[i] << 8 | b[i + 1];
	if (len & 1)
		sum += b[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons(~sum);
}

/*
 * From the peer netns, send the ICMP error a router would send for a
 * segment of connected socket @fd that was too big for @mtu: "fragmentation
 * needed" (IPv4) or "packet too big" (IPv6), quoting @fd's header with
 * the sequence number the peer acknowledged last. 0 or -1.
 */
static int send_too_big(const char *ns, int fd, int mtu)
{
	struct sockaddr_storage here, there;
	socklen_t hl = sizeof(here), tl = sizeof(there);
	unsigned char pkt[128] = { 0 };
	long long seq = snd_una(fd);
	int st, len, raw;
	unsigned int nseq;
	pid_t pid;

	if (seq < 0 || getsockname(fd, (struct sockaddr *)&here, &hl) ||
	    getpeername(fd, (struct sockaddr *)&there, &tl))
		return -1;
	nseq = htonl(seq);
	if (here.ss_family == AF_INET) {
		struct sockaddr_in *h = (void *)&here, *t = (void *)&there;
		struct iphdr *ip = (void *)(pkt + 8);

		pkt[0] = 3;				/* unreachable */
		pkt[1] = 4;				/* frag needed */
		pkt[6] = mtu >> 8;
		pkt[7] = mtu;
		ip->version = 4;
		ip->ihl = 5;
		ip->tot_len = htons(mtu + 100);
		ip->ttl = 64;
		ip->protocol = IPPROTO_TCP;
		ip->saddr = h->sin_addr.s_addr;
		ip->daddr = t->sin_addr.s_addr;
		ip->check = csum(ip, sizeof(*ip));
		memcpy(pkt + 28, &h->sin_port, 2);
		memcpy(pkt + 30, &t->sin_port, 2);
		memcpy(pkt + 32, &nseq, 4);
		len = 36;
		((unsigned short *)pkt)[1] = csum(pkt, len);
	} else {
		struct sockaddr_in6 *h = (void *)&here, *t = (void *)&there;
		struct ip6_hdr *ip6 = (void *)(pkt + 8);
		unsigned int m = htonl(mtu);

		pkt[0] = 2;				/* packet too big */
		memcpy(pkt + 4, &m, 4);
		ip6->ip6_flow = htonl(6 << 28);
		ip6->ip6_plen = htons(mtu + 100);
		ip6->ip6_nxt = IPPROTO_TCP;
		ip6->ip6_hlim = 64;
		ip6->ip6_src = h->sin6_addr;
		ip6->ip6_dst = t->sin6_addr;
		memcpy(pkt + 48, &h->sin6_port, 2);
		memcpy(pkt + 50, &t->sin6_port, 2);
		memcpy(pkt + 52, &nseq, 4);
		len = 56;	/* the kernel sums ICMPv6 */
	}
	/* a raw socket's destination has no port (sin_port, sin6_port) */
	((struct sockaddr_in *)&here)->sin_port = 0;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		if (fs_enter_netns(ns))
			_exit(1);
		raw = socket(here.ss_family, SOCK_RAW,
			     here.ss_family == AF_INET ? IPPROTO_ICMP :
							 IPPROTO_ICMPV6);
		/* to @fd's own address: the error travels back to it */
		_exit(raw < 0 || sendto(raw, pkt, len, 0,
					(struct sockaddr *)&here, hl) != len);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st))
		return -1;
	return 0;
}

/* The path MTU of connected socket @fd (IP_MTU or IPV6_MTU), or -1. */
static int path_mtu(int fd, int family)
{
	socklen_t len = sizeof(int);
	int mtu;

	if (getsockopt(fd, family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
		       family == AF_INET ? IP_MTU : IPV6_MTU, &mtu, &len))
		return -1;
	return mtu;
}

/*
 * LOOKUPS steered connections from CPU 1 go into its block. Half of all
 * tuples have their usual bucket in CPU 1's block, where a lookup from CPU
 * 0 finds them in its second probe; the others it finds only in CPU 1's
 * block (est_hit_remote), which all but one time in 2^16 happens.
 */
#define LOOKUPS	16

/*
 * Open LOOKUPS steered connections from CPU 1 into @fds, and a control in
 * its usual bucket, last; then move to CPU 0. 0 or -1.
 */
static int open_lookups(const FIXTURE_DATA(est) *self, int *fds)
{
	long ins = total("est_local");
	int i;

	if (pin_to(1))
		return -1;
	for (i = 0; i <= LOOKUPS; i++) {
		fds[i] = fs_connect_addr((const struct sockaddr *)&self->peer_addr,
					 self->peer_len, SOCK_STREAM,
					 i < LOOKUPS ? TCP_FASTSOCKET_ON :
						       TCP_FASTSOCKET_OFF);
		if (fds[i] < 0 || ping(fds[i]))
			return -1;
	}
	if (total("est_local") != ins + LOOKUPS)
		return -1;
	return pin_to(0);
}

/*
 * An ICMP "too big" reaches local connections: tcp_v4_err() and
 * tcp_v6_err() find them in their block from CPU 0 (est_hit_remote), and
 * their path MTU falls; they still work. The control, a connection in its
 * usual bucket, gets the same.
 */
TEST_F(est, icmp_too_big_reaches_local_connection)
{
	int mtu = variant->family == AF_INET ? 1300 : 1280;
	int fds[LOOKUPS + 1], i;
	long remote;

	ASSERT_EQ(0, open_lookups(self, fds));
	for (i = 0; i <= LOOKUPS; i++)
		ASSERT_EQ(1500, path_mtu(fds[i], variant->family));

	/* the errors are processed on CPU 0 */
	set_rps(_metadata, 1);
	remote = total("est_hit_remote");
	for (i = 0; i <= LOOKUPS; i++)
		ASSERT_EQ(0, send_too_big(self->ns, fds[i], mtu));
	usleep(100 * 1000);
	for (i = 0; i <= LOOKUPS; i++) {
		EXPECT_EQ(mtu, path_mtu(fds[i], variant->family));
		EXPECT_EQ(0, ping(fds[i]));
		close(fds[i]);
	}
	EXPECT_LT(remote, total("est_hit_remote"));
}

/*
 * A BPF program's bpf_sk_lookup_tcp() for @fd's tuple, as a packet to it
 * would carry: 1 found, 0 not found, -1 error. Run by BPF_PROG_TEST_RUN
 * on the calling thread's CPU. The program, by hand: the tuple on the
 * stack, the lookup in the current netns, the release of what it found.
 */
static int bpf_lookup(int fd, bool wrong_port)
{
	struct sockaddr_storage here, there;
	socklen_t hl = sizeof(here), tl = sizeof(there);
	struct bpf_insn prog[48], *i = prog;
	unsigned char tuple[36] = { 0 }, pkt[64] = { 0 };
	union bpf_attr attr;
	int tlen, pfd, off, ret;

	if (getsockname(fd, (struct sockaddr *)&here, &hl) ||
	    getpeername(fd, (struct sockaddr *)&there, &tl))
		return -1;
	if (here.ss_family == AF_INET) {
		struct sockaddr_in *h = (void *)&here, *t = (void *)&there;

		/* saddr, daddr, sport, dport of a packet from the peer */
		memcpy(tuple, &t->sin_addr, 4);
		memcpy(tuple + 4, &h->sin_addr, 4);
		memcpy(tuple + 8, &t->sin_port, 2);
		memcpy(tuple + 10, &h->sin_port, 2);
		tlen = 12;
	} else {
		struct sockaddr_in6 *h = (void *)&here, *t = (void *)&there;

		memcpy(tuple, &t->sin6_addr, 16);
		memcpy(tuple + 16, &h->sin6_addr, 16);
		memcpy(tuple + 32, &t->sin6_port, 2);
		memcpy(tuple + 34, &h->sin6_port, 2);
		tlen = 36;
	}
	if (wrong_port)
		tuple[tlen - 1] ^= 1;

	/* r6 = ctx; the tuple at fp - 40, one word at a time */
	*i++ = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X,
				  .dst_reg = BPF_REG_6, .src_reg = BPF_REG_1 };
	for (off = 0; off < 36; off += 4) {
		int w;

		memcpy(&w, tuple + off, 4);
		*i++ = (struct bpf_insn){ .code = BPF_ST | BPF_MEM | BPF_W,
					  .dst_reg = BPF_REG_10,
					  .off = -40 + off, .imm = w };
	}
	*i++ = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X,
				  .dst_reg = BPF_REG_1, .src_reg = BPF_REG_6 };
	*i++ = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X,
				  .dst_reg = BPF_REG_2, .src_reg = BPF_REG_10 };
	*i++ = (struct bpf_insn){ .code = BPF_ALU64 | BPF_ADD | BPF_K,
				  .dst_reg = BPF_REG_2, .imm = -40 };
	*i++ = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K,
				  .dst_reg = BPF_REG_3, .imm = tlen };
	/* BPF_F_CURRENT_NETNS, sign-extended */
	*i++ = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K,
				  .dst_reg = BPF_REG_4, .imm = -1 };
	*i++ = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K,
				  .dst_reg = BPF_REG_5, .imm = 0 };
	*i++ = (struct bpf_insn){ .code = BPF_JMP | BPF_CALL,
				  .imm = BPF_FUNC_sk_lookup_tcp };
	*i++ = (struct bpf_insn){ .code = BPF_JMP | BPF_JEQ | BPF_K,
				  .dst_reg = BPF_REG_0, .off = 4, .imm = 0 };
	*i++ = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X,
				  .dst_reg = BPF_REG_1, .src_reg = BPF_REG_0 };
	*i++ = (struct bpf_insn){ .code = BPF_JMP | BPF_CALL,
				  .imm = BPF_FUNC_sk_release };
	*i++ = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K,
				  .dst_reg = BPF_REG_0, .imm = 1 };
	*i++ = (struct bpf_insn){ .code = BPF_JMP | BPF_EXIT };
	*i++ = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K,
				  .dst_reg = BPF_REG_0, .imm = 0 };
	*i++ = (struct bpf_insn){ .code = BPF_JMP | BPF_EXIT };

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SCHED_CLS;
	attr.insns = (unsigned long)prog;
	attr.insn_cnt = i - prog;
	attr.license = (unsigned long)"GPL";
	pfd = syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	if (pfd < 0)
		return -1;
	memset(&attr, 0, sizeof(attr));
	attr.test.prog_fd = pfd;
	attr.test.data_in = (unsigned long)pkt;
	attr.test.data_size_in = sizeof(pkt);
	attr.test.repeat = 1;
	ret = syscall(__NR_bpf, BPF_PROG_TEST_RUN, &attr, sizeof(attr));
	close(pfd);
	return ret ? -1 : (int)attr.test.retval;
}

/*
 * BPF's bpf_sk_lookup_tcp() finds local connections from any CPU: from
 * CPU 0, connections in CPU 1's block (est_hit_remote) and one in its
 * usual bucket (the control); a tuple nobody has is not found.
 */
TEST_F(est, bpf_sk_lookup_finds_local_connection)
{
	int fds[LOOKUPS + 1], i;
	long remote;

	ASSERT_EQ(0, open_lookups(self, fds));
	remote = total("est_hit_remote");
	for (i = 0; i <= LOOKUPS; i++) {
		EXPECT_EQ(1, bpf_lookup(fds[i], false));
		EXPECT_EQ(0, bpf_lookup(fds[i], true));
		close(fds[i]);
	}
	EXPECT_LT(remote, total("est_hit_remote"));
}

/*
 * The sum over CPUs of /proc/net/stat/rt_cache's in_slow_tot: IPv4 input
 * routes made, that is not found valid in a nexthop's cache. The counters
 * are global, not per namespace. -1 on error.
 */
static long rt_input_routes_made(void)
{
	FILE *f = fopen("/proc/net/stat/rt_cache", "r");
	unsigned long entries, hit, slow;
	char line[512];
	long sum = 0;

	if (!f)
		return -1;
	/* the header, then a line per possible CPU */
	if (!fgets(line, sizeof(line), f))
		sum = -1;
	while (sum >= 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx %lx %lx", &entries, &hit, &slow) == 3)
			sum += slow;
	fclose(f);
	return sum;
}

/*
 * With established armed, each CPU keeps its own IPv4 local input route
 * (the one sk_rx_dst holds), as IPv6 and IPv4 output routes do: after a
 * route cache flush, each CPU that sets connections up makes one, once.
 * The control, with the switch off: one for all CPUs. Each run also makes
 * one in the peer netns, where the feature is not armed, for the replies.
 * A second round of connections finds the routes the first made. IPv4
 * connections in both variants, from a second peer (the IPv6 listener is
 * dual-stack).
 */
TEST_F_TIMEOUT(est, local_input_route_per_cpu, 90)
{
	struct sockaddr_storage here;
	socklen_t hlen = set_addr(&here, AF_INET, "10.98.0.1", NULL,
				  self->port);
	struct peer v4;
	long made, ins[32];
	int cpu, used, on;

	ASSERT_EQ(0, peer_start(&v4, self->ns, &here, hlen));
	for (on = 1; on >= 0; on--) {
		ASSERT_EQ(0, fs_sysctl_write("established", on ? "1" : "0"));
		ASSERT_EQ(0, fs_run("ip route flush cache && "
				    "ip -n %s route flush cache", self->ns));
		for (cpu = 0; cpu < self->ncpu; cpu++)
			ins[cpu] = fs_stat("est_local", cpu);
		made = rt_input_routes_made();
		ASSERT_LE(0, made);
		ASSERT_EQ(0, peer_do(&v4, CONNS));
		ASSERT_EQ(0, peer_do(&v4, CONNS / 4));
		used = 0;
		for (cpu = 0; cpu < self->ncpu; cpu++)
			used += fs_stat("est_local", cpu) != ins[cpu];
		if (on) {
			/* RPS spread the connections over the CPUs */
			EXPECT_LE(2, used);
			EXPECT_EQ(made + used + 1, rt_input_routes_made());
		} else {
			EXPECT_EQ(0, used);
			EXPECT_EQ(made + 2, rt_input_routes_made());
		}
	}
	/*
	 * Closed only now: closing would send packets that, after the next
	 * flush, make routes before the count starts.
	 */
	ASSERT_EQ(0, peer_do(&v4, -1));
	peer_stop(&v4);
}

/*
 * bind() to @family's address @v4 or @v6 and @port, with or without
 * SO_REUSEADDR: 0 or the errno.
 */
static int try_bind(int family, const char *v4, const char *v6, int port,
		    bool reuse)
{
	struct sockaddr_storage ss;
	socklen_t len = set_addr(&ss, family, v4, v6, port);
	int fd = socket(family, SOCK_STREAM, 0), one = 1, err = 0;

	if (fd < 0)
		return errno;
	if (reuse)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len))
		err = errno;
	close(fd);
	return err;
}

/*
 * The children of an enabled listener hold their port on their CPU's
 * owner list, not in the port's bind bucket that all CPUs share
 * (bind_local), and every bind() verdict stays as on vanilla: while the
 * listener is there it decides them; when it closes, its children join
 * the bucket, each under its own address (bind_spliced), and hold the
 * port there until they close. Binding another local address of the
 * port then succeeds, as it does on vanilla, which a child filed under
 * the listener's wildcard address would refuse. The control: with
 * established off no child is held per CPU.
 */
TEST_F(est, bind_bucket_per_cpu)
{
	int family = variant->family, port = self->port;
	long local = total("bind_local"), spliced = total("bind_spliced");

	ASSERT_LE(0, local);
	ASSERT_EQ(0, fs_sysctl_write("established", "0"));
	ASSERT_EQ(0, peer_do(&self->peer, CONNS));
	EXPECT_EQ(local, total("bind_local"));
	ASSERT_EQ(0, peer_do(&self->peer, -1));
	ASSERT_EQ(0, fs_sysctl_write("established", "1"));

	ASSERT_EQ(0, peer_do(&self->peer, CONNS));
	EXPECT_EQ(local + CONNS, total("bind_local"));
	EXPECT_EQ(spliced, total("bind_spliced"));
	EXPECT_EQ(EADDRINUSE, try_bind(family, "0.0.0.0", "::", port, false));
	EXPECT_EQ(EADDRINUSE, try_bind(family, "10.98.0.1", "fd98::1", port,
				       false));

	/* The listener leaves; its children join the bucket. */
	close(self->lfd);
	self->lfd = -1;
	EXPECT_EQ(spliced + CONNS, total("bind_spliced"));
	EXPECT_EQ(EADDRINUSE, try_bind(family, "0.0.0.0", "::", port, false));
	EXPECT_EQ(EADDRINUSE, try_bind(family, "10.98.0.1", "fd98::1", port,
				       false));
	EXPECT_EQ(0, try_bind(family, "127.0.0.1", "::1", port, false));
	/* No connection lost. */
	EXPECT_EQ(0, peer_do(&self->peer, 0));
	ASSERT_EQ(0, peer_do(&self->peer, -1));
}

/*
 * A listener of @family here with TCP_FASTSOCKET @mode, and peer @p in
 * netns @ns whose connections go to it: the listener's fd, or -1.
 */
static int listener_with_peer(struct peer *p, const char *ns, int family,
			      int mode)
{
	struct sockaddr_storage here;
	int lfd = listener(family, mode);
	socklen_t hlen;

	if (lfd < 0)
		return -1;
	hlen = set_addr(&here, family, "10.98.0.1", "fd98::1",
			fs_local_port(lfd));
	if (peer_start(p, ns, &here, hlen)) {
		close(lfd);
		return -1;
	}
	return lfd;
}

struct close_first {
	int lfd, n;
	bool hold;	/* close all @n together, after the last echo */
};

/*
 * Accept @n connections, echo one message on each, then close it first:
 * at once, or with @hold all in a burst once the last one has echoed.
 */
static void *close_first_main(void *p)
{
	struct close_first *cf = p;
	int i, s, r, fds[MAX_CONNS];
	char buf[8];

	for (i = 0; i < cf->n && i < MAX_CONNS; i++) {
		s = accept(cf->lfd, NULL, NULL);
		if (s < 0)
			break;
		r = read(s, buf, sizeof(buf));
		if (r > 0 && write(s, buf, r) != r)
			r = -1;
		if (cf->hold)
			fds[i] = s;
		else
			close(s);
	}
	while (cf->hold && i > 0)
		close(fds[--i]);
	return NULL;
}

/*
 * A child whose server closes first goes to TIME_WAIT, and its TIME_WAIT
 * socket holds the port on the same CPU's owner list (bind_tw_local), not
 * in the port's bind bucket. Every bind() verdict stays as on vanilla:
 * while the listener is there it decides them; when it closes, the
 * TIME_WAIT sockets join the bucket (bind_spliced) and hold the port
 * there, so a bind() without SO_REUSEADDR is refused and one with it (the
 * listener had it too) succeeds. Killed while the listener is there
 * (ss -K), they leave their lists, and once the listener is closed the
 * port is free for any bind(). The control: with established off, the
 * TIME_WAIT sockets join the bucket as before, and nothing is counted.
 */
TEST_F_TIMEOUT(est, time_wait_holds_port_per_cpu, 120)
{
	enum { CONTROL, SPLICE, KILL };
	int family = variant->family, lfd, port, round;
	const int n = CONNS / 2;
	long tw, spliced;
	pthread_t t;

	for (round = CONTROL; round <= KILL; round++) {
		struct close_first cf = { .n = n };
		struct peer p2;

		ASSERT_EQ(0, fs_sysctl_write("established",
					     round == CONTROL ? "0" : "1"));
		lfd = listener_with_peer(&p2, self->ns, family, TCP_FASTSOCKET_ON);
		ASSERT_LE(0, lfd);
		port = fs_local_port(lfd);
		tw = total("bind_tw_local");
		spliced = total("bind_spliced");
		cf.lfd = lfd;
		ASSERT_EQ(0, pthread_create(&t, NULL, close_first_main, &cf));
		ASSERT_EQ(0, peer_do(&p2, n));
		pthread_join(t, NULL);
		/* each goes to TIME_WAIT once the peer acknowledges its FIN */
		if (round != CONTROL)
			EXPECT_EQ(tw + n, fs_stat_wait("bind_tw_local", -1,
						       tw + n, 5000));
		ASSERT_EQ(0, peer_do(&p2, -1));
		peer_stop(&p2);
		EXPECT_EQ(EADDRINUSE, try_bind(family, "0.0.0.0", "::", port,
					       false));
		if (round == SPLICE)
			EXPECT_EQ(n, ss_state(false, "time-wait", "sport",
					      port));
		if (round == KILL) {
			EXPECT_EQ(n, ss_state(true, "time-wait", "sport",
					      port));
			EXPECT_EQ(0, ss_state(false, "time-wait", "sport",
					      port));
		}

		close(lfd);
		if (round == CONTROL)
			EXPECT_EQ(tw, total("bind_tw_local"));
		EXPECT_EQ(spliced + (round == SPLICE ? n : 0),
			  total("bind_spliced"));
		if (round == KILL) {
			EXPECT_EQ(0, try_bind(family, "0.0.0.0", "::", port,
					      false));
		} else {
			EXPECT_EQ(EADDRINUSE, try_bind(family, "0.0.0.0", "::",
						       port, false));
			EXPECT_EQ(0, try_bind(family, "0.0.0.0", "::", port,
					      true));
		}
	}
}

/* "tw N" of /proc/net/sockstat: this netns's TIME_WAIT sockets, or -1. */
static long sockstat_tw(void)
{
	char line[256];
	long tw = -1;
	FILE *f;

	f = fopen("/proc/net/sockstat", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "TCP: inuse %*d orphan %*d tw %ld", &tw) == 1)
			break;
	fclose(f);
	return tw;
}

/*
 * With established armed, a TIME_WAIT socket is counted on its CPU
 * (tw_count_local), not in the netns's shared tw_refcount, and the count
 * keeps its meaning: /proc/net/sockstat lists it, and net.ipv4.
 * tcp_max_tw_buckets still holds as on vanilla: exactly, but for one
 * socket per other CPU made at the same moment (the rest of the
 * connections close without TIME_WAIT: TCPTimeWaitOverflow, and every
 * connection is one or the other). Killing them (ss -K)
 * takes them off the count again. The control: with established off,
 * nothing is counted per CPU, and the same holds.
 */
TEST_F_TIMEOUT(est, time_wait_counted_per_cpu, 120)
{
	int family = variant->family, lfd, port, round, ms;
	const int n = CONNS / 2, limit = n / 2;
	long tw0, over0, counted, made;
	char max[32];
	pthread_t t;

	ASSERT_EQ(0, fs_read_file("/proc/sys/net/ipv4/tcp_max_tw_buckets",
				  max, sizeof(max)));
	for (round = 0; round < 2; round++) {
		struct close_first cf = { .n = n };
		char buf[32];
		struct peer p2;

		ASSERT_EQ(0, fs_sysctl_write("established", round ? "1" : "0"));
		lfd = listener_with_peer(&p2, self->ns, family, TCP_FASTSOCKET_ON);
		ASSERT_LE(0, lfd);
		port = fs_local_port(lfd);
		tw0 = sockstat_tw();
		ASSERT_LE(0, tw0);
		over0 = fs_tcpext("TCPTimeWaitOverflow");
		ASSERT_LE(0, over0);
		counted = total("tw_count_local");
		ASSERT_LE(0, counted);
		snprintf(buf, sizeof(buf), "%ld", tw0 + limit);
		ASSERT_EQ(0, fs_write_file("/proc/sys/net/ipv4/tcp_max_tw_buckets",
					   buf));

		cf.lfd = lfd;
		ASSERT_EQ(0, pthread_create(&t, NULL, close_first_main, &cf));
		/* No connection is lost: each one echoes. */
		ASSERT_EQ(0, peer_do(&p2, n));
		pthread_join(t, NULL);
		/* each gets a TIME_WAIT socket, or overflows, once acked */
		for (ms = 0; ms < 5000; ms += 10) {
			made = sockstat_tw() - tw0 +
			       fs_tcpext("TCPTimeWaitOverflow") - over0;
			if (made >= n)
				break;
			usleep(10000);
		}
		/*
		 * inet_twsk_alloc() tests the limit before the socket is
		 * counted, here as on vanilla: a TIME_WAIT socket made at the
		 * same moment on each other CPU may pass it.
		 */
		made = sockstat_tw() - tw0;
		EXPECT_LE(limit, made);
		EXPECT_GE(limit + self->ncpu - 1, made);
		EXPECT_EQ(n - made, fs_tcpext("TCPTimeWaitOverflow") - over0);
		EXPECT_EQ(round ? made : 0, total("tw_count_local") - counted);

		/* The peer's FINs take them from FIN_WAIT2 to TIME_WAIT. */
		ASSERT_EQ(0, peer_do(&p2, -1));
		for (ms = 0; ms < 5000; ms += 100) {
			if (ss_state(false, "time-wait", "sport", port) >= made)
				break;
			usleep(100000);
		}
		EXPECT_EQ(made, ss_state(true, "time-wait", "sport", port));
		EXPECT_EQ(tw0, sockstat_tw());
		peer_stop(&p2);
		close(lfd);
	}
	EXPECT_EQ(0, fs_write_file("/proc/sys/net/ipv4/tcp_max_tw_buckets",
				   max));
}

/*
 * How many lookups here left the tuple's usual bucket out while the peer
 * opened CONNS connections to the enabled listener and closed them; -1
 * if one failed.
 */
static long usual_skips(struct peer *p)
{
	long before = total("est_usual_skip");

	if (before < 0 || peer_do(p, CONNS) || peer_do(p, -1))
		return -1;
	return total("est_usual_skip") - before;
}

/* Wait up to 5 s for @n TCP sockets here in @state whose @dir is @port. */
static int ss_wait(const char *state, const char *dir, int port, int n)
{
	int ms, got = -1;

	for (ms = 0; ms < 5000; ms += 50) {
		got = ss_state(false, state, dir, port);
		if (got == n)
			break;
		usleep(50000);
	}
	return got;
}

/*
 * A lookup that expects its socket in a CPU block leaves the tuple's usual
 * bucket out while no socket of the netns is in a usual bucket
 * (est_usual_skip), and probes it while one is: an active connection
 * without Fastsocket, then its TIME_WAIT socket; the request socket and
 * then the child of a listener without Fastsocket; a connection made while
 * "established" was off, which arming it again finds. Each one counts
 * until it leaves, however it leaves (ss -K, a reset, the peer's close);
 * a netns whose count is not back to zero when it dies warns. No
 * connection is lost meanwhile.
 */
TEST_F_TIMEOUT(est, usual_bucket_probed_while_used, 120)
{
	int pport = ntohs(((struct sockaddr_in *)&self->peer_addr)->sin_port);
	struct linger rst = { .l_onoff = 1, .l_linger = 0 };
	int family = variant->family, fd, lfd, port;
	pthread_t echo;
	struct peer p2;

	/* nothing in a usual bucket: the SYNs leave it out */
	EXPECT_LT(0, usual_skips(&self->peer));

	/* an active connection without Fastsocket goes to its usual bucket */
	fd = fs_connect_addr((const struct sockaddr *)&self->peer_addr,
			     self->peer_len, SOCK_STREAM, TCP_FASTSOCKET_OFF);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ping(fd));
	EXPECT_EQ(0, usual_skips(&self->peer));
	/* we close first: its TIME_WAIT socket takes its place and count */
	close(fd);
	ASSERT_EQ(1, ss_wait("time-wait", "dport", pport, 1));
	EXPECT_EQ(0, usual_skips(&self->peer));
	EXPECT_EQ(1, ss_state(true, "time-wait", "dport", pport));
	EXPECT_LT(0, usual_skips(&self->peer));

	/* a connection of a listener without Fastsocket, kept open */
	lfd = listener_with_peer(&p2, self->ns, family, TCP_FASTSOCKET_OFF);
	ASSERT_LE(0, lfd);
	port = fs_local_port(lfd);
	ASSERT_EQ(0, pthread_create(&echo, NULL, echo_main, &lfd));
	EXPECT_EQ(0, peer_do(&p2, 1));
	EXPECT_EQ(0, usual_skips(&self->peer));
	/* the peer closes first; our side leaves once its FIN is acked */
	EXPECT_EQ(0, peer_do(&p2, -1));
	EXPECT_EQ(0, ss_wait("connected", "sport", port, 0));
	EXPECT_LT(0, usual_skips(&self->peer));
	peer_stop(&p2);
	pthread_cancel(echo);
	pthread_join(echo, NULL);
	close(lfd);

	/* made while established was off: found when it is armed again */
	ASSERT_EQ(0, fs_sysctl_write("established", "0"));
	fd = fs_connect_addr((const struct sockaddr *)&self->peer_addr,
			     self->peer_len, SOCK_STREAM, TCP_FASTSOCKET_OFF);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fs_sysctl_write("established", "1"));
	EXPECT_EQ(0, ping(fd));
	EXPECT_EQ(0, usual_skips(&self->peer));
	/* a reset takes it out at once */
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst)));
	close(fd);
	EXPECT_LT(0, usual_skips(&self->peer));
}

/* Whether `ip tcp_metrics show` lists a cached RTT for @addr; -1: no ip. */
static int metrics_cached(const char *addr)
{
	char cmd[128], line[256];
	int found = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ip tcp_metrics show %s 2>/dev/null", addr);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, addr) && strstr(line, " rtt "))
			found = 1;
	return pclose(f) ? -1 : found;
}

/*
 * Closing connections update their peer's TCP metrics at most once per
 * jiffy when Fastsocket enables them with established armed: the rest of
 * a burst of closes leaves the entry as it is (metrics_skipped), and the
 * entry is still there with an RTT. The server closes first, so its
 * children update the metrics on their way to TIME_WAIT; METRICS_CONNS
 * closes in a burst cannot each have a jiffy of their own (4 ms at HZ=250,
 * half a second for the burst). The control, first: with established off, no
 * close skips the update.
 */
TEST_F_TIMEOUT(est, metrics_updated_once_per_jiffy, 120)
{
	const char *peer = variant->family == AF_INET ? "10.98.0.2" : "fd98::2";
	struct close_first cf = { .n = METRICS_CONNS, .hold = true };
	int family = variant->family, lfd, port, round, i;
	long skipped, before;
	struct peer p2;
	pthread_t t;

	lfd = listener_with_peer(&p2, self->ns, family, TCP_FASTSOCKET_ON);
	ASSERT_LE(0, lfd);
	port = fs_local_port(lfd);
	cf.lfd = lfd;
	for (round = 0; round < 2; round++) {
		ASSERT_EQ(0, fs_sysctl_write("established", round ? "1" : "0"));
		before = total("metrics_skipped");
		ASSERT_EQ(0, pthread_create(&t, NULL, close_first_main, &cf));
		ASSERT_EQ(0, peer_do(&p2, METRICS_CONNS));
		pthread_join(t, NULL);
		/* every FIN acknowledged: no child left in FIN_WAIT1 */
		for (i = 0; i < 500 && fs_proc_tcp(family, port, -1, 0x04,
						   NULL) > 0; i++)
			usleep(10000);
		ASSERT_EQ(0, fs_proc_tcp(family, port, -1, 0x04, NULL));
		ASSERT_EQ(0, peer_do(&p2, -1));
		skipped = total("metrics_skipped") - before;
		if (!round) {
			EXPECT_EQ(0, skipped);
		} else {
			EXPECT_LT(0, skipped);
		}
		EXPECT_GT(METRICS_CONNS, skipped);
		EXPECT_EQ(1, metrics_cached(peer));
	}
	peer_stop(&p2);
	close(lfd);
}

/* Accept @n connections on @lfd and echo one message on each, into @fds. */
static int accept_echo(int lfd, int *fds, int n)
{
	char buf[8];
	int i, r;

	for (i = 0; i < n; i++) {
		fds[i] = accept(lfd, NULL, NULL);
		if (fds[i] < 0)
			return -1;
		r = read(fds[i], buf, sizeof(buf));
		if (r <= 0 || write(fds[i], buf, r) != r)
			return -1;
	}
	return 0;
}

/*
 * The server of netref_child_outlives_listener, in netns @ns: an enabled
 * listener whose port goes to @out; CONNS / 2 children with established
 * off, then CONNS with it on; after the listener is closed, one more echo
 * on each. One status byte on @out after each step, 0 for good: the
 * first children took no listener reference for their netns
 * (netref_local), the later ones each took one.
 */
static void netref_server(const char *ns, int family, int in, int out)
{
	int lfd, port, fds[CONNS + CONNS / 2], i, r;
	long before;
	char ok, buf[8];

	if (fs_enter_netns(ns) || fs_enable_all() ||
	    fs_sysctl_write("established", "0"))
		_exit(1);
	lfd = listener(family, TCP_FASTSOCKET_ON);
	port = lfd < 0 ? -1 : fs_local_port(lfd);
	if (write(out, &port, sizeof(port)) != sizeof(port) || port < 0)
		_exit(1);
	before = fs_stat("netref_local", -1);
	ok = accept_echo(lfd, fds, CONNS / 2) ||
	     fs_stat("netref_local", -1) != before;
	/* armed before the answer lets the peer make the next ones */
	if (fs_sysctl_write("established", "1") || write(out, &ok, 1) != 1)
		_exit(1);
	ok = accept_echo(lfd, fds + CONNS / 2, CONNS) ||
	     fs_stat("netref_local", -1) != before + CONNS;
	close(lfd);
	if (write(out, &ok, 1) != 1)
		_exit(1);
	/* the children outlive their listener */
	for (i = 0; i < CONNS + CONNS / 2; i++) {
		r = read(fds[i], buf, sizeof(buf));
		if (r <= 0 || write(fds[i], buf, r) != r)
			_exit(1);
	}
	if (read(in, &ok, 1) != 1)
		_exit(1);
	_exit(0);
}

/* Connect @n times to @dst, one round trip each, into @fds. */
static int connect_ping(const struct sockaddr_storage *dst, socklen_t len,
			int *fds, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		fds[i] = socket(dst->ss_family, SOCK_STREAM, 0);
		if (fds[i] < 0 ||
		    connect(fds[i], (const struct sockaddr *)dst, len) ||
		    ping(fds[i]))
			return -1;
	}
	return 0;
}

/*
 * A child of an enabled listener holds its netns through the listener's
 * per-CPU reference instead of the namespace's count (netref_local), and
 * outlives its listener: after close() on the listener every child still
 * echoes. When everything is closed and the namespace deleted, the
 * namespace is freed: its veth goes, which a reference left behind by a
 * child or by the listener's Fastsocket state would prevent, as a socket
 * made there does (the control of that check). The control of the count:
 * children made with established off take no such reference.
 */
TEST_F_TIMEOUT(est, netref_child_outlives_listener, 120)
{
	int family = variant->family, cmd[2], res[2], fds[CONNS + CONNS / 2];
	struct sockaddr_storage dst;
	char xns[32], ok = 0;
	int port, i, status, here_ns, xfd;
	socklen_t len;
	pid_t pid;

	snprintf(xns, sizeof(xns), "fs_estx_%d", getpid());
	ASSERT_EQ(0, fs_veth_netns(xns, "fsx0", "fsx1", 97));
	ASSERT_EQ(0, pipe(cmd));
	ASSERT_EQ(0, pipe(res));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close_others(cmd[0], res[1]);
		netref_server(xns, family, cmd[0], res[1]);
	}
	close(cmd[0]);
	close(res[1]);
	ASSERT_EQ(sizeof(port), read(res[0], &port, sizeof(port)));
	ASSERT_LT(0, port);
	len = set_addr(&dst, family, "10.97.0.2", "fd97::2", port);

	ASSERT_EQ(0, connect_ping(&dst, len, fds, CONNS / 2));
	ASSERT_EQ(1, read(res[0], &ok, 1));
	EXPECT_EQ(0, ok);
	ASSERT_EQ(0, connect_ping(&dst, len, fds + CONNS / 2, CONNS));
	ASSERT_EQ(1, read(res[0], &ok, 1));
	EXPECT_EQ(0, ok);
	/* the listener is closed: no connection lost */
	for (i = 0; i < CONNS + CONNS / 2; i++)
		EXPECT_EQ(0, ping(fds[i]));
	ASSERT_EQ(1, write(cmd[1], &ok, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	for (i = 0; i < CONNS + CONNS / 2; i++)
		close(fds[i]);
	close(cmd[1]);
	close(res[0]);

	/*
	 * The namespace, gone from view, must be freed: its veth goes. The
	 * control: while a socket made in it holds it, the veth stays.
	 */
	here_ns = open("/proc/self/ns/net", O_RDONLY);
	ASSERT_LE(0, here_ns);
	ASSERT_EQ(0, fs_enter_netns(xns));
	xfd = socket(family, SOCK_STREAM, 0);
	ASSERT_EQ(0, setns(here_ns, CLONE_NEWNET));
	close(here_ns);
	ASSERT_LE(0, xfd);
	ASSERT_EQ(0, fs_run("ip netns del %s", xns));
	usleep(500000);
	EXPECT_NE(0, if_nametoindex("fsx0"));
	close(xfd);
	for (i = 0; i < 1200 && if_nametoindex("fsx0"); i++)
		usleep(50000);
	EXPECT_EQ(0, if_nametoindex("fsx0"));
	TH_LOG("namespace freed %d ms after its last socket", i * 50);
}

TEST_HARNESS_MAIN
