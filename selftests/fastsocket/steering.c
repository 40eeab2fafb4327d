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
#include <stdarg.h>

#include "fs_util.h"
#include "kselftest_harness.h"

#define PER_CPU		16
#define CLI_DEV		"fsc0"
#define SRV_DEV		"fss0"

/* Run a shell command; returns its exit status, or -1. */
static int run(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return st < 0 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static int port_range(int *low, int *high)
{
	char buf[64];

	if (fs_read_file("/proc/sys/net/ipv4/ip_local_port_range", buf,
			 sizeof(buf)) ||
	    sscanf(buf, "%d %d", low, high) != 2)
		return -1;
	return 0;
}

/* The server: accept, answer "ping" with "pong", close; forever. */
static void serve(const char *ns, int family, int wfd)
{
	struct sockaddr_storage ss = { .ss_family = family };
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) :
					     sizeof(struct sockaddr_in);
	int nsfd, lfd, s, one = 1, port;
	char path[64], buf[8];

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	nsfd = open(path, O_RDONLY);
	if (nsfd < 0 || setns(nsfd, CLONE_NEWNET))
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
		close(s);
	}
}

FIXTURE(steer) {
	char ns[32];
	pid_t server;
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
	if (!fs_present())
		SKIP(return, "fastsocket module not loaded");
	if (!fs_feature_available("steering"))
		SKIP(return, "this kernel has no steering data path");
	self->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_GT(32, self->ncpu);

	/* Own netns, and a sysfs that shows its devices (for rps_cpus). */
	ASSERT_EQ(0, unshare(CLONE_NEWNET | CLONE_NEWNS));
	ASSERT_EQ(0, fs_lo_up());
	ASSERT_EQ(0, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	umount2("/sys", MNT_DETACH);
	ASSERT_EQ(0, mount("sysfs", "/sys", "sysfs", 0, NULL));

	snprintf(self->ns, sizeof(self->ns), "fs_steer_%d", getpid());
	ASSERT_EQ(0, run("ip netns add %s", self->ns));
	ASSERT_EQ(0, run("ip link add " CLI_DEV " type veth peer name "
			 SRV_DEV " netns %s", self->ns));
	ASSERT_EQ(0, run("ip addr add 10.99.0.1/24 dev " CLI_DEV " && "
			 "ip -6 addr add fd99::1/64 dev " CLI_DEV " nodad && "
			 "ip link set " CLI_DEV " up"));
	ASSERT_EQ(0, run("ip -n %1$s addr add 10.99.0.2/24 dev " SRV_DEV
			 " && ip -n %1$s -6 addr add fd99::2/64 dev " SRV_DEV
			 " nodad && ip -n %1$s link set " SRV_DEV " up && "
			 "ip -n %1$s link set lo up", self->ns));

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
	if (self->server > 0) {
		kill(self->server, SIGKILL);
		waitpid(self->server, NULL, 0);
	}
	if (self->ns[0])
		run("ip netns del %s", self->ns);
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

/* libfastsocket.so: build/selftests/fastsocket/X -> build/tools/ */
static int preload_lib(char *path, size_t len)
{
	const char *env = getenv("FS_PRELOAD_LIB");
	char self_exe[PATH_MAX], buf[PATH_MAX + 32], *slash;
	ssize_t n;

	if (env) {
		snprintf(buf, sizeof(buf), "%s", env);
	} else {
		n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
		if (n < 0)
			return -errno;
		self_exe[n] = '\0';
		slash = strrchr(self_exe, '/');
		if (!slash)
			return -ENOENT;
		*slash = '\0';
		snprintf(buf, sizeof(buf), "%s/../../tools/libfastsocket.so",
			 self_exe);
	}
	if (!realpath(buf, path) || strlen(path) >= len)
		return -ENOENT;
	return access(path, R_OK) ? -errno : 0;
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

	ASSERT_EQ(0, preload_lib(lib, sizeof(lib)));
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
