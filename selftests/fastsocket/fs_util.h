/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the Fastsocket selftests: network namespaces, the
 * net.fastsocket sysctls, /proc/net/fastsocket and a loopback workload.
 */
#ifndef FS_UTIL_H
#define FS_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fastsocket.h"	/* tools/: uapi values, names, stats parser */

/* Pin the calling thread to @cpu. Returns 0 or -1 with errno. */
static inline int pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static inline bool fs_present(void)
{
	return fs_module_loaded();
}

/* Bring up lo in the current netns. Returns 0 or -errno. */
static inline int fs_lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr)))
		err = -errno;
	close(fd);
	return err;
}

/* Move the caller into a fresh netns with lo up. Returns 0 or -errno. */
static inline int fs_new_netns(void)
{
	if (unshare(CLONE_NEWNET))
		return -errno;
	return fs_lo_up();
}

static inline int fs_sysctl_int(const char *name)
{
	char buf[64];

	if (fs_sysctl_read(name, buf, sizeof(buf)))
		return -1;
	return atoi(buf);
}

/*
 * Turn on the master switch and every feature this kernel has (the others
 * refuse 1) in the current netns. Returns 0 or -errno.
 */
static inline int fs_enable_all(void)
{
	unsigned int i;
	int err;

	for (i = 0; i < FS_NR_SWITCHES; i++) {
		if (i && !fs_feature_available(fs_switches[i]))
			continue;
		err = fs_sysctl_write(fs_switches[i], "1");
		if (err)
			return err;
	}
	return 0;
}

/* A listening TCP socket on the loopback address of @family, port 0. */
static inline int fs_listen(int family, int backlog, int mode)
{
	struct sockaddr_storage ss = { .ss_family = family };
	socklen_t len;
	int fd, one = 1;

	if (family == AF_INET6) {
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
		len = sizeof(struct sockaddr_in6);
	} else {
		((struct sockaddr_in *)&ss)->sin_addr.s_addr =
			htonl(INADDR_LOOPBACK);
		len = sizeof(struct sockaddr_in);
	}
	fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (mode >= 0 &&
	    setsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET, &mode, sizeof(mode)))
		goto err;
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, backlog))
		goto err;
	return fd;
err:
	close(fd);
	return -1;
}

/*
 * Connect to @sa with a socket of @type (SOCK_STREAM, optionally |
 * SOCK_NONBLOCK: then a connect still in progress counts as started),
 * TCP_FASTSOCKET set to @mode first unless @mode is -1. Returns the
 * socket or -1.
 */
static inline int fs_connect_addr(const struct sockaddr *sa, socklen_t len,
				  int type, int mode)
{
	int fd;

	fd = socket(sa->sa_family, type, 0);
	if (fd < 0)
		return -1;
	if ((mode >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET, &mode,
				     sizeof(mode))) ||
	    (connect(fd, sa, len) &&
	     !((type & SOCK_NONBLOCK) && errno == EINPROGRESS))) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Connect to the listener @lfd's address with a socket of @type, as
 * fs_connect_addr() does. Returns the socket or -1.
 */
static inline int fs_connect_type(int lfd, int type)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(lfd, (struct sockaddr *)&ss, &len))
		return -1;
	return fs_connect_addr((struct sockaddr *)&ss, len, type, -1);
}

/* Connect to the listener @lfd's address. Returns the socket or -1. */
static inline int fs_connect_to(int lfd)
{
	return fs_connect_type(lfd, SOCK_STREAM);
}

/*
 * Connect to the listener @lfd's address from a socket with
 * TCP_FASTSOCKET_ON, which steering gives a port of this CPU's class.
 * Returns the socket or -1.
 */
static inline int fs_connect_on(int lfd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(lfd, (struct sockaddr *)&ss, &len))
		return -1;
	return fs_connect_addr((struct sockaddr *)&ss, len, SOCK_STREAM,
			       TCP_FASTSOCKET_ON);
}

/*
 * One short connection against @lfd, served in the same thread: connect,
 * accept, request, response, close. Returns 0, or -errno at the first
 * failing step.
 */
static inline int fs_one_conn(int lfd)
{
	char buf[8];
	int c, s, err = 0;

	c = fs_connect_to(lfd);
	if (c < 0)
		return -errno;
	s = accept(lfd, NULL, NULL);
	if (s < 0) {
		err = -errno;
		goto out_c;
	}
	if (write(c, "ping", 4) != 4 || read(s, buf, sizeof(buf)) != 4 ||
	    write(s, "pong", 4) != 4 || read(c, buf, sizeof(buf)) != 4 ||
	    memcmp(buf, "pong", 4))
		err = errno ? -errno : -EIO;
	close(s);
out_c:
	close(c);
	return err;
}

/*
 * The libfastsocket.so under test into @path (@len bytes), resolved:
 * $FS_PRELOAD_LIB, else build/tools/ seen from this test binary in
 * build/selftests/fastsocket/. Returns 0 or -errno.
 */
static inline int fs_preload_lib(char *path, size_t len)
{
	const char *env = getenv("FS_PRELOAD_LIB");
	char self[PATH_MAX], buf[PATH_MAX + 32], *slash;
	ssize_t n;

	if (env) {
		snprintf(buf, sizeof(buf), "%s", env);
	} else {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0)
			return -errno;
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (!slash)
			return -ENOENT;
		*slash = '\0';
		snprintf(buf, sizeof(buf), "%s/../../tools/libfastsocket.so",
			 self);
	}
	if (len < PATH_MAX)
		return -ENAMETOOLONG;
	if (!realpath(buf, path))
		return -errno;
	return access(path, R_OK) ? -errno : 0;
}

/* SO_INCOMING_CPU of @fd, or -1. */
static inline int incoming_cpu(int fd)
{
	int cpu = -1;
	socklen_t len = sizeof(cpu);

	if (getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len))
		return -1;
	return cpu;
}

/*
 * Accept everything queued on @lfd without blocking; returns the number
 * accepted, or -errno of the error that ended the loop if not EAGAIN.
 */
static inline int drain_accept(int lfd)
{
	int flags = fcntl(lfd, F_GETFL), n = 0, s;

	fcntl(lfd, F_SETFL, flags | O_NONBLOCK);
	while ((s = accept(lfd, NULL, NULL)) >= 0) {
		n++;
		close(s);
	}
	if (errno != EAGAIN)
		n = -errno;
	fcntl(lfd, F_SETFL, flags);
	return n;
}

/*
 * Wait up to @ms milliseconds for counter @name on @cpu (-1: the total) to
 * reach @n; returns the last value read.
 */
static inline long fs_stat_wait(const char *name, int cpu, long n, int ms)
{
	long v = fs_stat(name, cpu);
	int i;

	for (i = 0; i < ms / 10 && v < n; i++) {
		usleep(10000);
		v = fs_stat(name, cpu);
	}
	return v;
}

/* Wait until @cpu's local queue has seen @n connections in all. */
static inline int wait_listen_local(int cpu, long n)
{
	return fs_stat_wait("listen_local", cpu, n, 5000) >= n ? 0 : -ETIMEDOUT;
}

/* The columns of a /proc/net/tcp* row that the tests read. */
struct fs_tcp_row {
	unsigned int st;	/* TCP state, 0x0A for a listener */
	unsigned long rxq;	/* rx_queue: accept-queue length of a listener */
	unsigned long ino;	/* the socket's inode number */
	long ref;		/* sk_refcnt */
};

/*
 * Rows of /proc/net/tcp (/proc/net/tcp6 for AF_INET6) whose local port is
 * @lport, remote port @rport and state @st (-1: any): how many, the last
 * one into @row (if not NULL). -1 if the file cannot be read.
 */
static inline int fs_proc_tcp(int family, int lport, int rport, int st,
			      struct fs_tcp_row *row)
{
	const char *path = family == AF_INET6 ? "/proc/net/tcp6" : "/proc/net/tcp";
	char line[512], local[64], rem[64];
	unsigned int lp, rp;
	struct fs_tcp_row r;
	int n = 0;
	FILE *f;

	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref */
		if (sscanf(line, " %*d: %63s %63s %x %*x:%lx %*s %*s %*s %*s %lu %ld",
			   local, rem, &r.st, &r.rxq, &r.ino, &r.ref) != 6)
			continue;
		if (sscanf(strrchr(local, ':') + 1, "%x", &lp) != 1 ||
		    sscanf(strrchr(rem, ':') + 1, "%x", &rp) != 1)
			continue;
		if ((int)lp == lport && (rport < 0 || (int)rp == rport) &&
		    (st < 0 || r.st == (unsigned int)st)) {
			if (row)
				*row = r;
			n++;
		}
	}
	fclose(f);
	return n;
}

/*
 * The listener on @port in /proc/net/tcp*: its accept-queue length into
 * @rxq and its sk_refcnt (the "ref" column) into @ref. 0, or -1 if there
 * is none.
 */
static inline int listen_proc(int family, int port, long *rxq, long *ref)
{
	struct fs_tcp_row row;

	if (fs_proc_tcp(family, port, -1, 0x0A, &row) <= 0)
		return -1;
	*rxq = row.rxq;
	*ref = row.ref;
	return 0;
}

/* Accepted-queue length of the listener on @port, from /proc/net/tcp*. */
static inline long listen_rx_queue(int family, int port)
{
	long rxq, ref;

	return listen_proc(family, port, &rxq, &ref) ? -1 : rxq;
}

/* sk_refcnt of the listener on @port, from /proc/net/tcp*. */
static inline long listen_refcnt(int family, int port)
{
	long rxq, ref;

	return listen_proc(family, port, &rxq, &ref) ? -1 : ref;
}

/* A TcpExt counter from /proc/net/netstat, or -1. */
static inline long fs_tcpext(const char *name)
{
	char names[4096], vals[4096], *n, *v, *sn, *sv;
	long val = -1;
	FILE *f;

	f = fopen("/proc/net/netstat", "r");
	if (!f)
		return -1;
	while (fgets(names, sizeof(names), f) && fgets(vals, sizeof(vals), f)) {
		if (strncmp(names, "TcpExt:", 7))
			continue;
		n = strtok_r(names, " \n", &sn);
		v = strtok_r(vals, " \n", &sv);
		while (n && v) {
			if (!strcmp(n, name))
				val = atol(v);
			n = strtok_r(NULL, " \n", &sn);
			v = strtok_r(NULL, " \n", &sv);
		}
	}
	fclose(f);
	return val;
}

/* Open @n connections from @cpu without accepting them; fds in @fds. */
static inline int queue_from(int lfd, int cpu, int *fds, int n)
{
	int i;

	if (pin_to(cpu))
		return -errno;
	for (i = 0; i < n; i++) {
		fds[i] = fs_connect_to(lfd);
		if (fds[i] < 0)
			return -errno;
	}
	return 0;
}

/* gettid() for glibc versions without the wrapper. */
static inline pid_t fs_gettid(void)
{
	return syscall(SYS_gettid);
}

/*
 * Wait until the task whose stat file is @path sleeps interruptibly
 * (state S), e.g. blocked in accept(). Returns 0 or -ETIMEDOUT after 10 s.
 */
static inline int fs_wait_stat_sleeping(const char *path)
{
	char buf[256], *p;
	int i, fd;
	ssize_t n;

	for (i = 0; i < 1000; i++) {
		fd = open(path, O_RDONLY);
		if (fd < 0)
			return -errno;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			p = strrchr(buf, ')');
			if (p && p[1] == ' ' && p[2] == 'S')
				return 0;
		}
		usleep(10000);
	}
	return -ETIMEDOUT;
}

/* ... thread @tid of this process. */
static inline int fs_wait_sleeping(pid_t tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	return fs_wait_stat_sleeping(path);
}

/* ... process @pid. */
static inline int fs_wait_pid_sleeping(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	return fs_wait_stat_sleeping(path);
}

/* Run a shell command line made from @fmt; its exit status, or -1. */
static inline int fs_run(const char *fmt, ...)
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

/* Move the caller into named network namespace @ns; 0 or -1. */
static inline int fs_enter_netns(const char *ns)
{
	char path[64];
	int fd, err;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	err = setns(fd, CLONE_NEWNET);
	close(fd);
	return err ? -1 : 0;
}

/*
 * A network namespace @ns joined to this one by a veth pair: @dev here
 * with 10.@net.0.1/24 and fd@net::1/64, @peer there with .2 and ::2, both
 * up, and lo up there. Returns 0, or the failing command's status.
 */
static inline int fs_veth_netns(const char *ns, const char *dev,
				const char *peer, int net)
{
	int err;

	err = fs_run("ip netns add %s", ns);
	if (!err)
		err = fs_run("ip link add %s type veth peer name %s netns %s",
			     dev, peer, ns);
	if (!err)
		err = fs_run("ip addr add 10.%2$d.0.1/24 dev %1$s && "
			     "ip -6 addr add fd%2$d::1/64 dev %1$s nodad && "
			     "ip link set %1$s up", dev, net);
	if (!err)
		err = fs_run("ip -n %1$s addr add 10.%3$d.0.2/24 dev %2$s && "
			     "ip -n %1$s -6 addr add fd%3$d::2/64 dev %2$s nodad && "
			     "ip -n %1$s link set %2$s up && "
			     "ip -n %1$s link set lo up", ns, peer, net);
	return err;
}

/*
 * Wait for a full RCU grace period: membarrier(MEMBARRIER_CMD_GLOBAL)
 * returns only after synchronize_rcu(). A test that needs what the kernel
 * does after a grace period waits here instead of guessing a time.
 * Returns 0 or -errno.
 */
static inline int fs_wait_rcu_gp(void)
{
	/* MEMBARRIER_CMD_GLOBAL, from <linux/membarrier.h> */
	if (syscall(__NR_membarrier, 1, 0, 0) < 0)
		return -errno;
	return 0;
}

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE	4
#endif

/*
 * Load $FS_MODULE (set by runtests.sh). A DKMS build for a Debian kernel
 * is fastsocket.ko.xz: the kernel decompresses it (CONFIG_MODULE_DECOMPRESS).
 * Returns 0 or -errno.
 */
static inline int fs_load_module(void)
{
	const char *path = getenv("FS_MODULE");
	size_t len = path ? strlen(path) : 0;
	int fd, err = 0, flags = 0;

	if (!path)
		return -ENOENT;
	if ((len > 3 && !strcmp(path + len - 3, ".xz")) ||
	    (len > 3 && !strcmp(path + len - 3, ".gz")) ||
	    (len > 4 && !strcmp(path + len - 4, ".zst")))
		flags = MODULE_INIT_COMPRESSED_FILE;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, "", flags) && errno != EEXIST)
		err = -errno;
	close(fd);
	return err;
}

/* Unload fastsocket.ko, retrying while it is busy for up to 1 s. */
static inline int fs_unload_module(void)
{
	int tries;

	for (tries = 0; tries < 100; tries++) {
		if (!syscall(SYS_delete_module, "fastsocket", O_NONBLOCK))
			return 0;
		if (errno != EWOULDBLOCK && errno != EAGAIN)
			return -errno;
		usleep(10000);
	}
	return -EBUSY;
}

#endif /* FS_UTIL_H */
