// SPDX-License-Identifier: GPL-2.0
/*
 * VFS-light sockets (net.fastsocket.vfs_light). A socket accepted from an
 * enabled listener keeps its dentry and inode when it closes, and the next
 * such socket accepted on the same CPU, a grace period later, takes the
 * pair over. Each test first makes sure that the socket it checks sits on
 * a reused pair (vfs_recycled moved by one for it), then checks that the
 * socket behaves as a new one in every way a program or a tool can see,
 * next to a control accepted from a listener the feature does not apply
 * to. In such a namespace socket(2) makes TCP sockets VFS-light too, and
 * a socket with TCP_FASTSOCKET_ON keeps its pair when it closes
 * (active_*). IPv4 and IPv6, each test in its own namespace.
 */
#include <linux/io_uring.h>
#include <linux/landlock.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/sockios.h>

#include "fs_util.h"
#include "kselftest_harness.h"

/* Sockets closed and kept before the one a test checks. */
#define WARM	4

FIXTURE(vfs) {
	int on, off;		/* enabled listener, control */
};

FIXTURE_VARIANT(vfs) {
	int family;
};

FIXTURE_VARIANT_ADD(vfs, ipv4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(vfs, ipv6) { .family = AF_INET6 };

FIXTURE_SETUP(vfs)
{
	self->on = self->off = -1;
	if (!fs_present())
		SKIP(return, "fastsocket module not loaded");
	if (!fs_feature_available("vfs_light"))
		SKIP(return, "no vfs_light data path in this kernel");
	/* Pairs are kept and taken per CPU: stay on one (client_to()). */
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_EQ(0, pin_to(0));
	ASSERT_EQ(0, fs_new_netns());
	ASSERT_EQ(0, fs_enable_all());
	ASSERT_EQ(1, fs_sysctl_int("vfs_light"));
	self->on = fs_listen(variant->family, 128, TCP_FASTSOCKET_ON);
	ASSERT_LE(0, self->on);
	self->off = fs_listen(variant->family, 128, TCP_FASTSOCKET_OFF);
	ASSERT_LE(0, self->off);
}

FIXTURE_TEARDOWN(vfs)
{
	if (self->on >= 0)
		close(self->on);
	if (self->off >= 0)
		close(self->off);
}

/*
 * A TCP socket of @lfd's family made on CPU 1 and connected to @lfd's
 * address from CPU 0. In
 * the armed namespace socket(2) takes a kept pair of the CPU it runs on:
 * the clients take CPU 1's, so that the pairs of CPU 0 that the tests
 * count go to accepted sockets only. The socket or -1.
 */
static int client_to(int lfd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd;

	if (getsockname(lfd, (struct sockaddr *)&ss, &len) || pin_to(1))
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (pin_to(0)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Connect to @lfd and accept: the accepted socket, *@c the client; or -1. */
static int conn(int lfd, int *c, int flags)
{
	int s;

	*c = client_to(lfd);
	if (*c < 0)
		return -1;
	s = accept4(lfd, NULL, NULL, flags);
	if (s < 0)
		close(*c);
	return s;
}

/*
 * Close WARM VFS-light sockets on @lfd (their pairs are kept: vfs_kept
 * moves by WARM) and wait a grace period, after which the pairs can be
 * reused. The WARM connections are all made before any is closed: a pair
 * kept earlier could otherwise be a grace period old already (each
 * client_to() migrates, and RCU's grace periods are quick) and be taken
 * by the next accept, leaving fewer than WARM pairs. 0 or -1.
 */
static int keep_pairs(int lfd)
{
	long kept = fs_stat("vfs_kept", 0);
	int i, n, s[WARM], c[WARM], err = 0;

	for (n = 0; n < WARM; n++) {
		s[n] = conn(lfd, &c[n], 0);
		if (s[n] < 0) {
			err = -1;
			break;
		}
	}
	for (i = 0; i < n; i++) {
		close(s[i]);
		close(c[i]);
	}
	if (err)
		return err;
	if (fs_stat("vfs_kept", 0) != kept + WARM) {
		fprintf(stderr, "vfs_kept %ld -> %ld\n", kept,
			fs_stat("vfs_kept", 0));
		return -1;
	}
	return fs_wait_rcu_gp();
}

/*
 * Accept a connection on the enabled listener @lfd whose socket takes a
 * kept pair over (vfs_recycled moves by exactly one). The accepted
 * socket, *@c the client; or -1.
 */
static int recycled_conn(int lfd, int *c, int flags)
{
	long before = fs_stat("vfs_recycled", 0);
	int s;

	s = conn(lfd, c, flags);
	if (s < 0)
		return -1;
	if (fs_stat("vfs_recycled", 0) != before + 1) {
		fprintf(stderr, "vfs_recycled %ld -> %ld, fallback %ld, kept %ld\n",
			before, fs_stat("vfs_recycled", 0),
			fs_stat("vfs_fallback", 0), fs_stat("vfs_kept", 0));
		close(s);
		close(*c);
		return -1;
	}
	return s;
}

/* keep_pairs(), then recycled_conn(). */
static int light_conn(int lfd, int *c, int flags)
{
	if (keep_pairs(lfd))
		return -1;
	return recycled_conn(lfd, c, flags);
}

/* The test's pair of sockets: [0] VFS-light on a kept pair, [1] control. */
struct two {
	int s[2], c[2];
};

static int two_conns(FIXTURE_DATA(vfs) *self, struct two *t, int flags)
{
	t->s[0] = light_conn(self->on, &t->c[0], flags);
	if (t->s[0] < 0)
		return -1;
	t->s[1] = conn(self->off, &t->c[1], flags);
	return t->s[1] < 0 ? -1 : 0;
}

static void two_close(struct two *t)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (t->s[i] >= 0)
			close(t->s[i]);
		if (t->c[i] >= 0)
			close(t->c[i]);
	}
}

/* Both directions work on the accepted socket @s with client @c. */
static int works(int s, int c)
{
	char buf[8];

	if (write(c, "ping", 4) != 4 || recv(s, buf, 4, MSG_WAITALL) != 4 ||
	    memcmp(buf, "ping", 4) || write(s, "pong", 4) != 4 ||
	    recv(c, buf, 4, MSG_WAITALL) != 4 || memcmp(buf, "pong", 4))
		return -1;
	return 0;
}

/* The inode number that /proc/self/fd/@fd names, or 0. */
static unsigned long fd_link_ino(int fd)
{
	char path[64], link[64];
	unsigned long ino = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return 0;
	link[n] = 0;
	if (sscanf(link, "socket:[%lu]", &ino) != 1)
		return 0;
	return ino;
}

/* The inode column of /proc/net/tcp{,6} for the ports given, or 0. */
static unsigned long proc_tcp_ino(int family, int lport, int rport)
{
	struct fs_tcp_row row;

	return fs_proc_tcp(family, lport, rport, -1, &row) > 0 ? row.ino : 0;
}

static int peer_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len))
		return -1;
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

TEST_F(vfs, counters_and_inode_numbers)
{
	unsigned long old[WARM], ino;
	long light, fallback;
	struct two t;
	struct stat st;
	int i, s, c;

	/* The first sockets find nothing to reuse on this CPU's cache... */
	light = fs_stat("vfs_light", -1);
	fallback = fs_stat("vfs_fallback", -1);
	for (i = 0; i < WARM; i++) {
		s = conn(self->on, &c, 0);
		ASSERT_LE(0, s);
		old[i] = fd_link_ino(s);
		ASSERT_NE(0, old[i]);
		close(s);
		close(c);
	}
	EXPECT_EQ(light + WARM, fs_stat("vfs_light", -1));
	/* ... unless an earlier test of this CPU left some (a new netns) */
	EXPECT_LE(fallback, fs_stat("vfs_fallback", -1));

	ASSERT_EQ(0, two_conns(self, &t, 0));
	/* a new inode number, not the one the pair had */
	ino = fd_link_ino(t.s[0]);
	ASSERT_NE(0, ino);
	for (i = 0; i < WARM; i++)
		EXPECT_NE(old[i], ino);
	EXPECT_NE(fd_link_ino(t.s[1]), ino);
	ASSERT_EQ(0, fstat(t.s[0], &st));
	EXPECT_EQ(ino, st.st_ino);
	EXPECT_TRUE(S_ISSOCK(st.st_mode));
	EXPECT_EQ(0777, st.st_mode & 07777);
	EXPECT_EQ(geteuid(), st.st_uid);
	EXPECT_EQ(getegid(), st.st_gid);
	/* /proc/net/tcp names the same inode (ss -p, lsof, fuser use it) */
	EXPECT_EQ(ino, proc_tcp_ino(variant->family, peer_port(t.c[0]),
				    peer_port(t.s[0])));
	EXPECT_EQ(fd_link_ino(t.s[1]),
		  proc_tcp_ino(variant->family, peer_port(t.c[1]),
			       peer_port(t.s[1])));
	EXPECT_EQ(0, works(t.s[0], t.c[0]));
	EXPECT_EQ(0, works(t.s[1], t.c[1]));

	/* the control's accept is not VFS-light */
	light = fs_stat("vfs_light", -1);
	s = conn(self->off, &c, 0);
	ASSERT_LE(0, s);
	EXPECT_EQ(light, fs_stat("vfs_light", -1));
	close(s);
	close(c);
	two_close(&t);
}

TEST_F(vfs, fionread_siocoutq)
{
	static char big[65536];
	struct two t;
	int i, n;

	ASSERT_EQ(0, two_conns(self, &t, 0));
	for (i = 0; i < 2; i++) {
		struct pollfd pfd = { .fd = t.s[i], .events = POLLIN };

		ASSERT_EQ(0, ioctl(t.s[i], FIONREAD, &n));
		EXPECT_EQ(0, n);
		ASSERT_EQ(5, write(t.c[i], "hello", 5));
		ASSERT_EQ(1, poll(&pfd, 1, 5000));
		ASSERT_EQ(0, ioctl(t.s[i], FIONREAD, &n));
		EXPECT_EQ(5, n) TH_LOG("socket %d", i);
		ASSERT_EQ(0, ioctl(t.s[i], SIOCINQ, &n));
		EXPECT_EQ(5, n);
		ASSERT_EQ(0, ioctl(t.s[i], SIOCOUTQ, &n));
		EXPECT_EQ(0, n);
		/* a peer that does not read: data waits in the send queue */
		ASSERT_EQ(0, fcntl(t.s[i], F_SETFL, O_NONBLOCK));
		while (write(t.s[i], big, sizeof(big)) > 0)
			;
		EXPECT_EQ(EAGAIN, errno);
		ASSERT_EQ(0, ioctl(t.s[i], SIOCOUTQ, &n));
		EXPECT_LT(0, n) TH_LOG("socket %d", i);
	}
	two_close(&t);
}

static volatile sig_atomic_t got_sigio;

static void on_sigio(int sig)
{
	got_sigio++;
}

/* Whether data written on @c raises SIGIO for @s within a second. */
static int sigio_after_write(int s, int c)
{
	int i;

	got_sigio = 0;
	if (write(c, "x", 1) != 1)
		return -1;
	for (i = 0; i < 100 && !got_sigio; i++)
		usleep(10000);
	return got_sigio ? 1 : 0;
}

TEST_F(vfs, o_async_sigio)
{
	struct sigaction sa = { .sa_handler = on_sigio };
	struct two t;
	char buf[8];
	int i, s, c, fl;

	ASSERT_EQ(0, sigaction(SIGIO, &sa, NULL));
	/* the pair's last owner asked for SIGIO ... */
	s = conn(self->on, &c, 0);
	ASSERT_LE(0, s);
	ASSERT_EQ(0, fcntl(s, F_SETOWN, getpid()));
	fl = fcntl(s, F_GETFL);
	ASSERT_EQ(0, fcntl(s, F_SETFL, fl | O_ASYNC));
	EXPECT_EQ(1, sigio_after_write(s, c));
	close(s);
	close(c);

	ASSERT_EQ(0, two_conns(self, &t, 0));
	for (i = 0; i < 2; i++) {
		/* ... the new one did not: no signal, no owner */
		EXPECT_EQ(0, fcntl(t.s[i], F_GETOWN));
		EXPECT_EQ(0, fcntl(t.s[i], F_GETFL) & O_ASYNC);
		EXPECT_EQ(0, sigio_after_write(t.s[i], t.c[i]))
			TH_LOG("socket %d", i);
		EXPECT_EQ(1, read(t.s[i], buf, sizeof(buf)));
		ASSERT_EQ(0, fcntl(t.s[i], F_SETOWN, getpid()));
		fl = fcntl(t.s[i], F_GETFL);
		ASSERT_EQ(0, fcntl(t.s[i], F_SETFL, fl | O_ASYNC));
		EXPECT_EQ(getpid(), fcntl(t.s[i], F_GETOWN));
		EXPECT_EQ(1, sigio_after_write(t.s[i], t.c[i]))
			TH_LOG("socket %d", i);
	}
	two_close(&t);
}

/*
 * Landlock's ABI version, or 0 without Landlock: with it every inode has
 * an LSM blob (i_security), as on Debian's kernels.
 */
static int landlock_abi(void)
{
	long abi = syscall(__NR_landlock_create_ruleset, NULL, 0,
			   LANDLOCK_CREATE_RULESET_VERSION);

	return abi < 0 ? 0 : abi;
}

/* Put the caller in a Landlock domain that may not signal outside. 0/-1. */
static int landlock_scope_signals(void)
{
	struct landlock_ruleset_attr attr = {
		.scoped = LANDLOCK_SCOPE_SIGNAL,
	};
	int fd, err;

	fd = syscall(__NR_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	err = syscall(__NR_landlock_restrict_self, fd, 0);
	close(fd);
	return err ? -1 : 0;
}

/*
 * In a child: accept from @lfd (on a kept pair if @light), in a Landlock
 * domain scoped for signals if @sandboxed, and have the socket's SIGIO
 * sent to the parent; then write on the client and read the byte on the
 * socket, so that any SIGIO is sent before the child exits. The exit
 * status names the step that failed.
 */
static void sigio_to_parent(int lfd, bool light, bool sandboxed)
{
	int s, c, fl;
	char b;

	if (sandboxed && landlock_scope_signals())
		_exit(2);
	s = light ? light_conn(lfd, &c, 0) : conn(lfd, &c, 0);
	if (s < 0)
		_exit(3);
	fl = fcntl(s, F_GETFL);
	if (fcntl(s, F_SETOWN, getppid()) || fcntl(s, F_SETFL, fl | O_ASYNC))
		_exit(4);
	if (write(c, "x", 1) != 1 || read(s, &b, 1) != 1)
		_exit(5);
	_exit(0);
}

/*
 * The LSM hooks run for a VFS-light socket on a kept pair as for any
 * socket, on a kernel whose LSM gives every inode a blob: Landlock's
 * signal scope (ABI 6) stops the SIGIO of a socket owned from inside a
 * domain from reaching a process outside it (file_set_fowner and
 * file_send_sigiotask hooks). Without the domain the parent gets it. The
 * control is a socket of the listener the feature does not apply to.
 */
TEST_F(vfs, lsm_hooks_on_a_kept_pair)
{
	struct sigaction sa = {
		.sa_handler = on_sigio,
		.sa_flags = SA_RESTART,
	};
	int i, sandboxed, status;
	pid_t pid;

	if (landlock_abi() < 6)
		SKIP(return, "no Landlock signal scope in this kernel");
	ASSERT_EQ(0, sigaction(SIGIO, &sa, NULL));
	for (i = 0; i < 2; i++) {
		for (sandboxed = 0; sandboxed < 2; sandboxed++) {
			got_sigio = 0;
			pid = fork();
			ASSERT_LE(0, pid);
			if (!pid)
				sigio_to_parent(i ? self->off : self->on, !i,
						sandboxed);
			ASSERT_EQ(pid, waitpid(pid, &status, 0));
			ASSERT_TRUE(WIFEXITED(status));
			EXPECT_EQ(0, WEXITSTATUS(status))
				TH_LOG("socket %d sandboxed %d", i, sandboxed);
			EXPECT_EQ(!sandboxed, got_sigio)
				TH_LOG("socket %d sandboxed %d", i, sandboxed);
		}
	}
}

TEST_F(vfs, nonblock_cloexec)
{
	struct two t;
	char buf[8];
	int i, s, c;

	/* the pair's last owner was non-blocking and close-on-exec ... */
	s = conn(self->on, &c, SOCK_NONBLOCK | SOCK_CLOEXEC);
	ASSERT_LE(0, s);
	close(s);
	close(c);
	/* ... a plain accept() gives neither */
	ASSERT_EQ(0, two_conns(self, &t, 0));
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(0, fcntl(t.s[i], F_GETFL) & O_NONBLOCK);
		EXPECT_EQ(0, fcntl(t.s[i], F_GETFD) & FD_CLOEXEC);
		ASSERT_EQ(0, fcntl(t.s[i], F_SETFL, O_NONBLOCK));
		EXPECT_EQ(-1, read(t.s[i], buf, sizeof(buf)));
		EXPECT_EQ(EAGAIN, errno);
		ASSERT_EQ(0, fcntl(t.s[i], F_SETFL, 0));
		EXPECT_EQ(0, works(t.s[i], t.c[i]));
	}
	two_close(&t);

	/* and accept4() with both flags gives both */
	s = light_conn(self->on, &c, SOCK_NONBLOCK | SOCK_CLOEXEC);
	ASSERT_LE(0, s);
	EXPECT_EQ(O_NONBLOCK, fcntl(s, F_GETFL) & O_NONBLOCK);
	EXPECT_EQ(FD_CLOEXEC, fcntl(s, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(-1, read(s, buf, sizeof(buf)));
	EXPECT_EQ(EAGAIN, errno);
	close(s);
	close(c);
}

TEST_F(vfs, dup_and_fork)
{
	struct two t;
	char buf[8];
	int i, d, st;
	pid_t pid;

	ASSERT_EQ(0, two_conns(self, &t, 0));
	for (i = 0; i < 2; i++) {
		d = dup3(t.s[i], 100 + i, O_CLOEXEC);
		ASSERT_EQ(100 + i, d);
		EXPECT_EQ(fd_link_ino(t.s[i]), fd_link_ino(d));
		close(t.s[i]);
		t.s[i] = d;
		/* the child answers through its copy, then exits */
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			if (recv(d, buf, 4, MSG_WAITALL) != 4 ||
			    write(d, "kid!", 4) != 4)
				_exit(1);
			_exit(0);
		}
		ASSERT_EQ(4, write(t.c[i], "dad?", 4));
		ASSERT_EQ(4, recv(t.c[i], buf, 4, MSG_WAITALL));
		EXPECT_EQ(0, memcmp(buf, "kid!", 4));
		ASSERT_EQ(pid, waitpid(pid, &st, 0));
		EXPECT_EQ(0, st);
		/* the child's exit closed its copy, not the socket */
		EXPECT_EQ(0, works(t.s[i], t.c[i])) TH_LOG("socket %d", i);
	}
	two_close(&t);
}

static int send_fd(int u, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {};
	struct iovec iov = { .iov_base = "f", .iov_len = 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(u, &mh, 0) == 1 ? 0 : -1;
}

static int recv_fd(int u)
{
	char cbuf[CMSG_SPACE(sizeof(int))], b;
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(u, &mh, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

TEST_F(vfs, scm_rights_and_unix_gc)
{
	struct two t;
	char buf[8];
	int i, u[2], r;

	ASSERT_EQ(0, two_conns(self, &t, 0));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, u));
		ASSERT_EQ(0, send_fd(u[0], t.s[i]));
		close(t.s[i]);
		r = recv_fd(u[1]);
		ASSERT_LE(0, r);
		t.s[i] = r;
		EXPECT_EQ(0, works(t.s[i], t.c[i])) TH_LOG("socket %d", i);
		/*
		 * In flight when both ends of the unix pair close: the
		 * unix release (or its garbage collector) drops the last
		 * reference, and the peer sees the close.
		 */
		ASSERT_EQ(0, send_fd(u[0], t.s[i]));
		ASSERT_EQ(0, send_fd(u[1], u[0]));	/* a cycle for GC */
		close(t.s[i]);
		t.s[i] = -1;
		close(u[0]);
		close(u[1]);
		/* an unrelated unix socket's close runs the collector */
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, u));
		close(u[0]);
		close(u[1]);
		EXPECT_EQ(0, recv(t.c[i], buf, sizeof(buf), 0))
			TH_LOG("socket %d: peer saw no close", i);
	}
	two_close(&t);
}

TEST_F(vfs, poll_select_epoll)
{
	struct epoll_event ev = { .events = EPOLLIN }, out;
	struct two t;
	struct pollfd pfd;
	struct timeval tv;
	char buf[8];
	fd_set rs;
	int i, ep;

	ASSERT_EQ(0, two_conns(self, &t, 0));
	ep = epoll_create1(0);
	ASSERT_LE(0, ep);
	for (i = 0; i < 2; i++) {
		pfd.fd = t.s[i];
		pfd.events = POLLIN;
		EXPECT_EQ(0, poll(&pfd, 1, 0));
		ev.data.fd = t.s[i];
		ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, t.s[i], &ev));
		EXPECT_EQ(0, epoll_wait(ep, &out, 1, 0));
		ASSERT_EQ(1, write(t.c[i], "x", 1));
		EXPECT_EQ(1, poll(&pfd, 1, 5000));
		EXPECT_EQ(POLLIN, pfd.revents);
		FD_ZERO(&rs);
		FD_SET(t.s[i], &rs);
		tv.tv_sec = 5;
		tv.tv_usec = 0;
		EXPECT_EQ(1, select(t.s[i] + 1, &rs, NULL, NULL, &tv));
		ASSERT_EQ(1, epoll_wait(ep, &out, 1, 5000));
		EXPECT_EQ(t.s[i], out.data.fd);
		EXPECT_EQ(1, read(t.s[i], buf, sizeof(buf)));
		EXPECT_EQ(0, epoll_wait(ep, &out, 1, 0)) TH_LOG("socket %d", i);
	}
	close(ep);
	two_close(&t);
}

/* A minimal io_uring: one SQE at a time, waited for. */
struct ring {
	int fd;
	unsigned int *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail,
		*cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static int ring_init(struct ring *r)
{
	struct io_uring_params p = {};
	void *sq, *cq;

	r->fd = syscall(__NR_io_uring_setup, 4, &p);
	if (r->fd < 0)
		return -errno;
	sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned int),
		  PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_SQ_RING);
	cq = mmap(NULL, p.cq_off.cqes +
		  p.cq_entries * sizeof(struct io_uring_cqe),
		  PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe),
		       PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
		       IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
		return -ENOMEM;
	r->sq_tail = sq + p.sq_off.tail;
	r->sq_mask = sq + p.sq_off.ring_mask;
	r->sq_array = sq + p.sq_off.array;
	r->cq_head = cq + p.cq_off.head;
	r->cq_tail = cq + p.cq_off.tail;
	r->cq_mask = cq + p.cq_off.ring_mask;
	r->cqes = cq + p.cq_off.cqes;
	return 0;
}

/* Run one @op on @fd with @buf of @len bytes; the CQE's result. */
static int ring_rw(struct ring *r, int op, int fd, void *buf, int len)
{
	unsigned int tail = *r->sq_tail, idx = tail & *r->sq_mask, head;
	struct io_uring_sqe *sqe = &r->sqes[idx];
	int res;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = (unsigned long)buf;
	sqe->len = len;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS,
		    NULL, 0) < 0)
		return -errno;
	head = *r->cq_head;
	if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
		return -EAGAIN;
	res = r->cqes[head & *r->cq_mask].res;
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

TEST_F(vfs, io_uring_read_write)
{
	struct ring r;
	struct two t;
	char buf[8];
	int i, err;

	err = ring_init(&r);
	if (err == -ENOSYS)
		SKIP(return, "no io_uring in this kernel");
	ASSERT_EQ(0, err);
	ASSERT_EQ(0, two_conns(self, &t, 0));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(4, write(t.c[i], "ring", 4));
		EXPECT_EQ(4, ring_rw(&r, IORING_OP_RECV, t.s[i], buf, 4));
		EXPECT_EQ(0, memcmp(buf, "ring", 4));
		EXPECT_EQ(4, ring_rw(&r, IORING_OP_WRITE, t.s[i], "back", 4));
		ASSERT_EQ(4, recv(t.c[i], buf, 4, MSG_WAITALL));
		EXPECT_EQ(0, memcmp(buf, "back", 4)) TH_LOG("socket %d", i);
	}
	close(r.fd);
	two_close(&t);
}

/* Splice @len bytes from @in to @out, in as many calls as it takes. */
static ssize_t splice_all(int in, int out, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = splice(in, NULL, out, NULL, len - done, 0);
		if (n <= 0)
			return -1;
		done += n;
	}
	return done;
}

TEST_F(vfs, sendfile_and_splice)
{
	char data[4096], buf[4096];
	struct two t;
	int i, mfd, p[2];
	off_t off;

	for (i = 0; i < (int)sizeof(data); i++)
		data[i] = i * 7;
	mfd = memfd_create("vfs_light", 0);
	ASSERT_LE(0, mfd);
	ASSERT_EQ(sizeof(data), write(mfd, data, sizeof(data)));
	ASSERT_EQ(0, two_conns(self, &t, 0));
	for (i = 0; i < 2; i++) {
		off = 0;
		EXPECT_EQ(sizeof(data),
			  sendfile(t.s[i], mfd, &off, sizeof(data)));
		ASSERT_EQ(sizeof(buf),
			  recv(t.c[i], buf, sizeof(buf), MSG_WAITALL));
		EXPECT_EQ(0, memcmp(data, buf, sizeof(data)));
		/* socket -> pipe -> socket */
		ASSERT_EQ(0, pipe(p));
		ASSERT_EQ(sizeof(data), write(t.c[i], data, sizeof(data)));
		EXPECT_EQ(sizeof(data), splice_all(t.s[i], p[1], sizeof(data)));
		EXPECT_EQ(sizeof(data), splice_all(p[0], t.s[i], sizeof(data)));
		ASSERT_EQ(sizeof(buf),
			  recv(t.c[i], buf, sizeof(buf), MSG_WAITALL));
		EXPECT_EQ(0, memcmp(data, buf, sizeof(data)))
			TH_LOG("socket %d", i);
		close(p[0]);
		close(p[1]);
	}
	close(mfd);
	two_close(&t);
}

TEST_F(vfs, close_range_and_shutdown)
{
	struct two t;
	char buf[8];
	int i;

	ASSERT_EQ(0, two_conns(self, &t, 0));
	for (i = 0; i < 2; i++) {
		/* shutdown then close */
		ASSERT_EQ(0, shutdown(t.s[i], SHUT_WR));
		EXPECT_EQ(0, recv(t.c[i], buf, sizeof(buf), 0));
		ASSERT_EQ(2, write(t.c[i], "hi", 2));
		EXPECT_EQ(2, recv(t.s[i], buf, 2, MSG_WAITALL));
		close(t.s[i]);
		t.s[i] = -1;
	}
	two_close(&t);

	ASSERT_EQ(0, two_conns(self, &t, 0));
	for (i = 0; i < 2; i++) {
		/* CLOSE_RANGE_CLOEXEC marks, a plain close_range closes */
		ASSERT_EQ(0, syscall(__NR_close_range, t.s[i], t.s[i],
				     CLOSE_RANGE_CLOEXEC));
		EXPECT_EQ(FD_CLOEXEC, fcntl(t.s[i], F_GETFD));
		EXPECT_EQ(0, works(t.s[i], t.c[i]));
		ASSERT_EQ(0, syscall(__NR_close_range, t.s[i], t.s[i], 0));
		EXPECT_EQ(-1, fcntl(t.s[i], F_GETFD));
		t.s[i] = -1;
		EXPECT_EQ(0, recv(t.c[i], buf, sizeof(buf), 0))
			TH_LOG("socket %d: peer saw no close", i);
	}
	two_close(&t);
}

/*
 * "sockets: used N" of /proc/net/sockstat, and "TCP: inuse N" there
 * (IPv4) or "TCP6: inuse N" of /proc/net/sockstat6.
 */
static int sockstat(int family, long *used, long *inuse)
{
	char line[256];
	FILE *f;
	int n = 0;

	f = fopen("/proc/net/sockstat", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		n += sscanf(line, "sockets: used %ld", used) == 1;
		if (family == AF_INET)
			n += sscanf(line, "TCP: inuse %ld", inuse) == 1;
	}
	fclose(f);
	if (family == AF_INET6) {
		f = fopen("/proc/net/sockstat6", "r");
		if (!f)
			return -1;
		while (fgets(line, sizeof(line), f))
			n += sscanf(line, "TCP6: inuse %ld", inuse) == 1;
		fclose(f);
	}
	return n == 2 ? 0 : -1;
}

TEST_F(vfs, sockstat_counts)
{
	long used0, inuse0, used, inuse;
	int s, c;

	ASSERT_EQ(0, keep_pairs(self->on));
	ASSERT_EQ(0, sockstat(variant->family, &used0, &inuse0));
	s = recycled_conn(self->on, &c, 0);
	ASSERT_LE(0, s);
	ASSERT_EQ(0, sockstat(variant->family, &used, &inuse));
	/* the accepted socket and its client, as for any connection */
	EXPECT_EQ(used0 + 2, used);
	EXPECT_EQ(inuse0 + 2, inuse);
	close(s);
	close(c);
}

/*
 * A pair someone else still holds is not kept: an O_PATH file opened
 * through /proc/self/fd keeps naming the old socket's inode, whatever
 * sockets come after.
 */
TEST_F(vfs, held_pair_is_not_reused)
{
	int s, c, p, i, fds[WARM + 2], cs[WARM + 2];
	unsigned long ino;
	struct stat st;
	long kept;

	s = light_conn(self->on, &c, 0);
	ASSERT_LE(0, s);
	ino = fd_link_ino(s);
	{
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/fd/%d", s);
		p = open(path, O_PATH);
		ASSERT_LE(0, p);
	}
	kept = fs_stat("vfs_kept", 0);
	close(s);
	close(c);
	EXPECT_EQ(kept, fs_stat("vfs_kept", 0));
	ASSERT_EQ(0, fs_wait_rcu_gp());
	/* take every pair this CPU has, and more */
	for (i = 0; i < WARM + 2; i++) {
		fds[i] = conn(self->on, &cs[i], 0);
		ASSERT_LE(0, fds[i]);
		EXPECT_NE(ino, fd_link_ino(fds[i]));
	}
	for (i = 0; i < WARM + 2; i++) {
		close(fds[i]);
		close(cs[i]);
	}
	ASSERT_EQ(0, fstat(p, &st));
	EXPECT_EQ(ino, st.st_ino);
	EXPECT_TRUE(S_ISSOCK(st.st_mode));
	close(p);
}

/*
 * A socket accepted VFS-light ends its life as usual after the switch
 * went off: its pair is not kept, the next accept allocates.
 */
TEST_F(vfs, switch_off_under_a_light_socket)
{
	long kept, fallback;
	int s, c;

	s = light_conn(self->on, &c, 0);
	ASSERT_LE(0, s);
	ASSERT_EQ(0, fs_sysctl_write("vfs_light", "0"));
	EXPECT_EQ(0, works(s, c));
	kept = fs_stat("vfs_kept", 0);
	close(s);
	close(c);
	EXPECT_EQ(kept, fs_stat("vfs_kept", 0));
	/* off: an accept is not VFS-light at all */
	fallback = fs_stat("vfs_fallback", 0);
	s = conn(self->on, &c, 0);
	ASSERT_LE(0, s);
	EXPECT_EQ(fallback, fs_stat("vfs_fallback", 0));
	EXPECT_EQ(0, works(s, c));
	close(s);
	close(c);
	EXPECT_EQ(kept, fs_stat("vfs_kept", 0));
}

/*
 * A nonblocking accept() that finds nothing allocates a socket and frees
 * it again. Its pair goes back at once, so that the accepts that follow
 * still find every kept pair; and only accepts that return a socket
 * count.
 */
TEST_F(vfs, failed_accept_gives_pair_back)
{
	long light, recycled, fallback;
	int i, s, c, fl;

	ASSERT_EQ(0, keep_pairs(self->on));
	light = fs_stat("vfs_light", 0);
	recycled = fs_stat("vfs_recycled", 0);
	fallback = fs_stat("vfs_fallback", 0);
	fl = fcntl(self->on, F_GETFL);
	ASSERT_EQ(0, fcntl(self->on, F_SETFL, fl | O_NONBLOCK));
	for (i = 0; i < 2 * WARM; i++) {
		EXPECT_EQ(-1, accept(self->on, NULL, NULL));
		EXPECT_EQ(EAGAIN, errno);
	}
	ASSERT_EQ(0, fcntl(self->on, F_SETFL, fl));
	EXPECT_EQ(light, fs_stat("vfs_light", 0));
	for (i = 0; i < WARM; i++) {
		s = recycled_conn(self->on, &c, 0);
		ASSERT_LE(0, s) TH_LOG("accept %d after the failed ones", i);
		EXPECT_EQ(0, works(s, c));
		close(s);
		close(c);
	}
	EXPECT_EQ(light + WARM, fs_stat("vfs_light", 0));
	EXPECT_EQ(recycled + WARM, fs_stat("vfs_recycled", 0));
	EXPECT_EQ(fallback, fs_stat("vfs_fallback", 0));
}

/*
 * In the armed namespace socket(2) makes TCP sockets VFS-light. A socket
 * with TCP_FASTSOCKET_ON (an enabled active socket) keeps its pair when
 * it closes, a socket without it does not, and the next TCP socket(2) on
 * the CPU takes a kept pair over and behaves as a new socket. Controls:
 * a UDP socket, and a TCP socket once the switch is off, are not
 * VFS-light. The accepted ends are the control listener's, not VFS-light.
 */
TEST_F(vfs, active_sockets_keep_and_take_pairs)
{
	long kept, made, recycled, fallback;
	unsigned long old[WARM], ino;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct pollfd pfd;
	int i, s, c, u, n;
	struct stat st;

	kept = fs_stat("vfs_kept", 0);
	made = fs_stat("vfs_socket", 0);
	for (i = 0; i < WARM; i++) {
		c = fs_connect_on(self->off);
		ASSERT_LE(0, c);
		old[i] = fd_link_ino(c);
		s = accept(self->off, NULL, NULL);
		ASSERT_LE(0, s);
		EXPECT_EQ(0, works(s, c));
		close(s);
		close(c);
	}
	EXPECT_EQ(made + WARM, fs_stat("vfs_socket", 0));
	EXPECT_EQ(kept + WARM, fs_stat("vfs_kept", 0));
	/* control: VFS-light, but not enabled, so its pair is not kept */
	c = fs_connect_to(self->off);
	ASSERT_LE(0, c);
	s = accept(self->off, NULL, NULL);
	ASSERT_LE(0, s);
	close(s);
	close(c);
	EXPECT_EQ(made + WARM + 1, fs_stat("vfs_socket", 0));
	EXPECT_EQ(kept + WARM, fs_stat("vfs_kept", 0));

	/* a grace period later the next TCP socket(2) takes a pair over */
	ASSERT_EQ(0, fs_wait_rcu_gp());
	made = fs_stat("vfs_socket", 0);
	recycled = fs_stat("vfs_recycled", 0);
	fallback = fs_stat("vfs_fallback", 0);
	c = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, c);
	EXPECT_EQ(made + 1, fs_stat("vfs_socket", 0));
	EXPECT_EQ(recycled + 1, fs_stat("vfs_recycled", 0));
	EXPECT_EQ(fallback, fs_stat("vfs_fallback", 0));
	ino = fd_link_ino(c);
	ASSERT_NE(0, ino);
	for (i = 0; i < WARM; i++)
		EXPECT_NE(old[i], ino);
	ASSERT_EQ(0, fstat(c, &st));
	EXPECT_EQ(ino, st.st_ino);
	EXPECT_TRUE(S_ISSOCK(st.st_mode));
	EXPECT_EQ(0777, st.st_mode & 07777);
	EXPECT_EQ(geteuid(), st.st_uid);
	EXPECT_EQ(FD_CLOEXEC, fcntl(c, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(0, fcntl(c, F_GETFL) & O_NONBLOCK);
	ASSERT_EQ(0, getsockname(self->off, (struct sockaddr *)&ss, &len));
	ASSERT_EQ(0, connect(c, (struct sockaddr *)&ss, len));
	s = accept(self->off, NULL, NULL);
	ASSERT_LE(0, s);
	EXPECT_EQ(0, works(s, c));
	EXPECT_EQ(4, write(s, "data", 4));
	pfd.fd = c;
	pfd.events = POLLIN;
	ASSERT_EQ(1, poll(&pfd, 1, 5000));
	ASSERT_EQ(0, ioctl(c, FIONREAD, &n));
	EXPECT_EQ(4, n);
	EXPECT_EQ(ino, proc_tcp_ino(variant->family, peer_port(s),
				    peer_port(c)));
	close(s);
	close(c);

	/* controls: UDP, and TCP with the switch off */
	made = fs_stat("vfs_socket", 0);
	u = socket(variant->family, SOCK_DGRAM, 0);
	ASSERT_LE(0, u);
	close(u);
	ASSERT_EQ(0, fs_sysctl_write("vfs_light", "0"));
	c = socket(variant->family, SOCK_STREAM, 0);
	ASSERT_LE(0, c);
	close(c);
	EXPECT_EQ(made, fs_stat("vfs_socket", 0));
}

/* First field of a /proc/sys/fs file (file-nr, inode-nr, dentry-state). */
static long fs_count(const char *name)
{
	char path[64];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/fs/%s", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

struct toggler {
	volatile int stop;
	int flips;
	int err;
};

static void *toggle(void *arg)
{
	struct toggler *tg = arg;

	while (!tg->stop) {
		if (fs_sysctl_write("vfs_light", tg->flips & 1 ? "1" : "0"))
			tg->err++;
		tg->flips++;
		usleep(20000);
	}
	return NULL;
}

#define STRESS	400
/* Other activity in the guest may hold a few objects at either reading. */
#define SLACK	16
/*
 * file-nr reads the nr_files percpu_counter without summing it: each CPU
 * may hold up to a batch (32 on small machines) it has not folded in.
 * inode-nr and dentry-state are exact sums, and every leaked file would
 * pin a dentry and an inode.
 */
#define FILES_BATCH	32

/*
 * Many short connections while another thread flips the switch: none
 * fails, and once the switch is off (which frees the kept pairs) no file,
 * inode or dentry is left over.
 */
TEST_F_TIMEOUT(vfs, stress_toggle_no_leak, 180)
{
	long files, inodes, dentries, recycled;
	struct toggler tg = {};
	int i, s, c, failed = 0;
	pthread_t th;

	ASSERT_EQ(0, fs_sysctl_write("vfs_light", "0"));
	ASSERT_EQ(0, fs_wait_rcu_gp());
	files = fs_count("file-nr");
	inodes = fs_count("inode-nr");
	dentries = fs_count("dentry-state");
	ASSERT_LT(0, files);
	ASSERT_EQ(0, fs_sysctl_write("vfs_light", "1"));
	recycled = fs_stat("vfs_recycled", -1);

	ASSERT_EQ(0, pthread_create(&th, NULL, toggle, &tg));
	for (i = 0; i < STRESS; i++) {
		if (fs_one_conn(self->on))
			failed++;
		if (i % 64 == 63)
			fs_wait_rcu_gp();
	}
	tg.stop = 1;
	pthread_join(th, NULL);
	EXPECT_EQ(0, failed);
	EXPECT_EQ(0, tg.err);
	EXPECT_LT(2, tg.flips);
	/*
	 * Whether a pair outlived a flip long enough to be reused depends
	 * on timing; that pairs are reused after all the flipping does not.
	 */
	ASSERT_EQ(0, fs_sysctl_write("vfs_light", "1"));
	s = light_conn(self->on, &c, 0);
	ASSERT_LE(0, s);
	EXPECT_EQ(0, works(s, c));
	close(s);
	close(c);
	TH_LOG("reused during the flips: %ld",
	       fs_stat("vfs_recycled", -1) - recycled - 1);

	ASSERT_EQ(0, fs_sysctl_write("vfs_light", "0"));
	ASSERT_EQ(0, fs_wait_rcu_gp());
	/* TIME_WAIT holds no file; closed sockets are gone */
	EXPECT_GE(files + SLACK +
		  FILES_BATCH * sysconf(_SC_NPROCESSORS_ONLN),
		  fs_count("file-nr"));
	EXPECT_GE(inodes + SLACK, fs_count("inode-nr"));
	EXPECT_GE(dentries + SLACK, fs_count("dentry-state"));
	TH_LOG("file-nr %ld -> %ld, inode-nr %ld -> %ld, dentries %ld -> %ld",
	       files, fs_count("file-nr"), inodes, fs_count("inode-nr"),
	       dentries, fs_count("dentry-state"));
}

TEST_HARNESS_MAIN
