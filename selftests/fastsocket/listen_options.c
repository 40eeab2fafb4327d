// SPDX-License-Identifier: GPL-2.0
/*
 * Listener features keep working on a listener with local accept queues:
 * TCP_DEFER_ACCEPT, TCP_FASTOPEN, SYN cookies, SO_ATTACH_FILTER,
 * TCP_SAVE_SYN, IP_TRANSPARENT, IP_FREEBIND, wildcard addresses,
 * IPV6_V6ONLY both ways and SO_REUSEPORT groups. Each case checks the
 * feature's own effect and that the connection went through the local
 * queue of the client's CPU.
 */
#include <linux/filter.h>
#include <poll.h>

#include "fs_util.h"
#include "kselftest_harness.h"

#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT	30
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND	78
#endif

FIXTURE(opts) {
	int lfd;
};

FIXTURE_VARIANT(opts) {
	int family;
};

FIXTURE_VARIANT_ADD(opts, ipv4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(opts, ipv6) { .family = AF_INET6 };

FIXTURE_SETUP(opts)
{
	self->lfd = -1;
	if (!fs_present())
		SKIP(return, "fastsocket module not loaded");
	ASSERT_EQ(0, fs_new_netns());
	ASSERT_EQ(0, fs_enable_all());
	ASSERT_EQ(0, fs_sysctl_write("ports", "1-65535"));
	ASSERT_EQ(0, pin_to(0));
}

FIXTURE_TEARDOWN(opts)
{
	if (self->lfd >= 0)
		close(self->lfd);
}

/* Fill @ss with the loopback (or, with @any, wildcard) address. */
static socklen_t addr_of(int family, bool any, int port,
			 struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = family;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_addr = any ? in6addr_any : in6addr_loopback;
		a->sin6_port = htons(port);
		return sizeof(*a);
	}
	((struct sockaddr_in *)ss)->sin_addr.s_addr =
		htonl(any ? INADDR_ANY : INADDR_LOOPBACK);
	((struct sockaddr_in *)ss)->sin_port = htons(port);
	return sizeof(struct sockaddr_in);
}

/*
 * A TCP socket of @family bound to loopback or wildcard, port @port, with
 * the integer socket option @level/@name set to @val first unless @level
 * is negative.
 */
static int bound_with(int family, bool any, int port, int level, int name,
		      int val)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_of(family, any, port, &ss);
	int fd, one = 1;

	fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if ((level >= 0 && setsockopt(fd, level, name, &val, sizeof(val))) ||
	    bind(fd, (struct sockaddr *)&ss, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int bound(int family, bool any, int port)
{
	return bound_with(family, any, port, -1, 0, 0);
}

/* Accept one connection within @ms milliseconds, or -1. */
static int accept_within(int lfd, int ms)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return accept(lfd, NULL, NULL);
}

/* Data only: the child is queued when the client's data arrives. */
TEST_F(opts, defer_accept)
{
	int secs = 5, c, s;
	char buf[8];

	self->lfd = bound(variant->family, false, 0);
	ASSERT_LE(0, self->lfd);
	ASSERT_EQ(0, setsockopt(self->lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT,
				&secs, sizeof(secs)));
	ASSERT_EQ(0, listen(self->lfd, 16));
	c = fs_connect_to(self->lfd);
	ASSERT_LE(0, c);
	EXPECT_EQ(-1, accept_within(self->lfd, 300));
	EXPECT_EQ(0, fs_stat("listen_local", -1));
	ASSERT_EQ(5, write(c, "hello", 5));
	s = accept_within(self->lfd, 5000);
	ASSERT_LE(0, s);
	EXPECT_EQ(5, recv(s, buf, sizeof(buf), MSG_DONTWAIT));
	EXPECT_EQ(1, fs_stat("listen_local", 0));
	EXPECT_EQ(1, fs_stat("accept_local", 0));
	close(s);
	close(c);
}

/* Data in the SYN: the child is queued by the fast open path. */
TEST_F(opts, fastopen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int qlen = 16, on = 1, c, s;
	long passive;
	char buf[8];

	/* Client and server, no cookie needed. */
	ASSERT_EQ(0, fs_write_file("/proc/sys/net/ipv4/tcp_fastopen", "515"));
	self->lfd = bound(variant->family, false, 0);
	ASSERT_LE(0, self->lfd);
	ASSERT_EQ(0, setsockopt(self->lfd, IPPROTO_TCP, TCP_FASTOPEN, &qlen,
				sizeof(qlen)));
	ASSERT_EQ(0, listen(self->lfd, 16));
	ASSERT_EQ(0, getsockname(self->lfd, (struct sockaddr *)&ss, &len));
	passive = fs_tcpext("TCPFastOpenPassive");

	c = socket(variant->family, SOCK_STREAM, 0);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, setsockopt(c, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &on,
				sizeof(on)));
	ASSERT_EQ(0, connect(c, (struct sockaddr *)&ss, len));
	ASSERT_EQ(5, write(c, "hello", 5));
	s = accept_within(self->lfd, 5000);
	ASSERT_LE(0, s);
	EXPECT_EQ(5, read(s, buf, sizeof(buf)));
	EXPECT_EQ(passive + 1, fs_tcpext("TCPFastOpenPassive"));
	EXPECT_EQ(1, fs_stat("listen_local", 0));
	EXPECT_EQ(1, fs_stat("accept_local", 0));
	close(s);
	close(c);
}

/* Every SYN answered with a cookie: the child is made from the cookie. */
TEST_F(opts, syncookies)
{
	long recv0;
	int c, s;

	ASSERT_EQ(0, fs_write_file("/proc/sys/net/ipv4/tcp_syncookies", "2"));
	self->lfd = fs_listen(variant->family, 16, -1);
	ASSERT_LE(0, self->lfd);
	recv0 = fs_tcpext("SyncookiesRecv");
	c = fs_connect_to(self->lfd);
	ASSERT_LE(0, c);
	s = accept_within(self->lfd, 5000);
	ASSERT_LE(0, s);
	EXPECT_EQ(recv0 + 1, fs_tcpext("SyncookiesRecv"));
	EXPECT_EQ(1, fs_stat("listen_local", 0));
	close(s);
	close(c);
}

/* A socket filter on the listener still drops SYNs, and passes them. */
TEST_F(opts, attach_filter)
{
	struct sock_filter drop[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_filter pass[] = { BPF_STMT(BPF_RET | BPF_K, 0xffff) };
	struct sock_fprog prog = { .len = 1, .filter = drop };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct pollfd p;
	int c, s;

	self->lfd = fs_listen(variant->family, 16, -1);
	ASSERT_LE(0, self->lfd);
	ASSERT_EQ(0, setsockopt(self->lfd, SOL_SOCKET, SO_ATTACH_FILTER, &prog,
				sizeof(prog)));
	ASSERT_EQ(0, getsockname(self->lfd, (struct sockaddr *)&ss, &len));
	c = socket(variant->family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ASSERT_LE(0, c);
	ASSERT_EQ(-1, connect(c, (struct sockaddr *)&ss, len));
	ASSERT_EQ(EINPROGRESS, errno);
	p = (struct pollfd){ .fd = c, .events = POLLOUT };
	EXPECT_EQ(0, poll(&p, 1, 300)) TH_LOG("the SYN was not filtered");
	close(c);
	EXPECT_EQ(0, fs_stat("listen_local", -1));

	prog.filter = pass;
	ASSERT_EQ(0, setsockopt(self->lfd, SOL_SOCKET, SO_ATTACH_FILTER, &prog,
				sizeof(prog)));
	c = fs_connect_to(self->lfd);
	ASSERT_LE(0, c);
	s = accept_within(self->lfd, 5000);
	ASSERT_LE(0, s);
	EXPECT_EQ(1, fs_stat("listen_local", 0));
	close(s);
	close(c);
}

/* The SYN saved on the listener is readable on the child. */
TEST_F(opts, save_syn)
{
	unsigned char syn[256];
	socklen_t len = sizeof(syn);
	int on = 1, c, s;

	self->lfd = bound(variant->family, false, 0);
	ASSERT_LE(0, self->lfd);
	ASSERT_EQ(0, setsockopt(self->lfd, IPPROTO_TCP, TCP_SAVE_SYN, &on,
				sizeof(on)));
	ASSERT_EQ(0, listen(self->lfd, 16));
	c = fs_connect_to(self->lfd);
	ASSERT_LE(0, c);
	s = accept_within(self->lfd, 5000);
	ASSERT_LE(0, s);
	ASSERT_EQ(0, getsockopt(s, IPPROTO_TCP, TCP_SAVED_SYN, syn, &len));
	/* IP header and a TCP header with the SYN flag. */
	EXPECT_LE(variant->family == AF_INET6 ? 60 : 40, len);
	EXPECT_EQ(variant->family == AF_INET6 ? 6 : 4, syn[0] >> 4);
	EXPECT_EQ(1, fs_stat("listen_local", 0));
	close(s);
	close(c);
}

/*
 * IP_TRANSPARENT and IP_FREEBIND (IPV6_ for IPv6) listeners still take
 * connections, on the local queue.
 */
TEST_F(opts, transparent_and_freebind)
{
	bool v6 = variant->family == AF_INET6;
	int opts[2][2] = {
		{ v6 ? IPPROTO_IPV6 : IPPROTO_IP,
		  v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT },
		{ v6 ? IPPROTO_IPV6 : IPPROTO_IP,
		  v6 ? IPV6_FREEBIND : IP_FREEBIND },
	};
	int c, s, i;

	for (i = 0; i < 2; i++) {
		self->lfd = bound_with(variant->family, false, 0, opts[i][0],
				       opts[i][1], 1);
		ASSERT_LE(0, self->lfd);
		ASSERT_EQ(0, listen(self->lfd, 16));
		c = fs_connect_to(self->lfd);
		ASSERT_LE(0, c);
		s = accept_within(self->lfd, 5000);
		ASSERT_LE(0, s);
		EXPECT_EQ(i + 1, fs_stat("listen_local", 0)) TH_LOG("option %d", i);
		close(s);
		close(c);
		close(self->lfd);
		self->lfd = -1;
	}
}

/* Connect to loopback of @family on @port; returns the socket or -1. */
static int connect_lo(int family, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_of(family, false, port, &ss);
	int fd;

	fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * A wildcard listener; for IPv6 with IPV6_V6ONLY off it also takes IPv4
 * connections, with it on it refuses them.
 */
TEST_F(opts, wildcard_and_v6only)
{
	int v6only, port, c, s;

	for (v6only = 0; v6only < 2; v6only++) {
		if (variant->family == AF_INET6)
			self->lfd = bound_with(AF_INET6, true, 0, IPPROTO_IPV6,
					       IPV6_V6ONLY, v6only);
		else
			self->lfd = bound(AF_INET, true, 0);
		ASSERT_LE(0, self->lfd);
		ASSERT_EQ(0, listen(self->lfd, 16));
		port = fs_local_port(self->lfd);

		c = connect_lo(variant->family, port);
		ASSERT_LE(0, c);
		s = accept_within(self->lfd, 5000);
		ASSERT_LE(0, s);
		close(s);
		close(c);

		c = connect_lo(AF_INET, port);
		if (variant->family == AF_INET6 && v6only) {
			EXPECT_EQ(-1, c);
			EXPECT_EQ(ECONNREFUSED, errno);
		} else {
			ASSERT_LE(0, c);
			s = accept_within(self->lfd, 5000);
			ASSERT_LE(0, s);
			close(s);
			close(c);
		}
		close(self->lfd);
		self->lfd = -1;
	}
	/* Two connections, then one more where IPv4 reaches the listener. */
	EXPECT_EQ(variant->family == AF_INET6 ? 3 : 4,
		  fs_stat("listen_local", 0));
	EXPECT_EQ(fs_stat("listen_local", 0), fs_stat("accept_local", 0));
}

/*
 * A reuseport group of two enabled listeners: the group still spreads
 * connections over its members, and each member queues them locally.
 */
TEST_F(opts, reuseport_group)
{
	int one = 1, fd[2], port = 0, i, n, got[2] = { 0, 0 }, c[32], s;

	for (i = 0; i < 2; i++) {
		struct sockaddr_storage ss;
		socklen_t len = addr_of(variant->family, false, port, &ss);

		fd[i] = socket(variant->family, SOCK_STREAM, 0);
		ASSERT_LE(0, fd[i]);
		ASSERT_EQ(0, setsockopt(fd[i], SOL_SOCKET, SO_REUSEPORT, &one,
					sizeof(one)));
		ASSERT_EQ(0, bind(fd[i], (struct sockaddr *)&ss, len));
		ASSERT_EQ(0, listen(fd[i], 64));
		port = fs_local_port(fd[i]);
	}
	for (n = 0; n < 32; n++) {
		c[n] = connect_lo(variant->family, port);
		ASSERT_LE(0, c[n]);
	}
	for (i = 0; i < 2; i++) {
		int flags = fcntl(fd[i], F_GETFL);

		fcntl(fd[i], F_SETFL, flags | O_NONBLOCK);
		while ((s = accept(fd[i], NULL, NULL)) >= 0) {
			got[i]++;
			close(s);
		}
		close(fd[i]);
	}
	for (n = 0; n < 32; n++)
		close(c[n]);
	/* The hash spreads 32 source ports over both members. */
	EXPECT_LT(0, got[0]);
	EXPECT_LT(0, got[1]);
	EXPECT_EQ(32, got[0] + got[1]);
	EXPECT_EQ(32, fs_stat("listen_local", 0));
	EXPECT_EQ(32, fs_stat("accept_local", 0));
}

TEST_HARNESS_MAIN
