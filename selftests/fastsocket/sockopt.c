// SPDX-License-Identifier: GPL-2.0
/*
 * TCP_FASTSOCKET: values round-trip through getsockopt, bad values and
 * lengths fail with EINVAL and change nothing, non-TCP sockets refuse it,
 * and an accepted socket carries its listener's mode.
 */
#include "fs_util.h"
#include "kselftest_harness.h"

static int get_mode(int fd, int *mode)
{
	socklen_t len = sizeof(*mode);

	*mode = -100;
	if (getsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET, mode, &len))
		return -errno;
	return len == sizeof(*mode) ? 0 : -ERANGE;
}

static int set_mode(int fd, int mode)
{
	return setsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET, &mode,
			  sizeof(mode)) ? -errno : 0;
}

FIXTURE(sockopt) {
	int fd;
};

FIXTURE_VARIANT(sockopt) {
	int family;
};

FIXTURE_VARIANT_ADD(sockopt, ipv4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(sockopt, ipv6) { .family = AF_INET6 };

FIXTURE_SETUP(sockopt)
{
	int mode;

	ASSERT_EQ(0, fs_new_netns());
	self->fd = socket(variant->family, SOCK_STREAM, 0);
	ASSERT_LE(0, self->fd);
	if (get_mode(self->fd, &mode) == -ENOPROTOOPT)
		SKIP(return, "kernel without CONFIG_FASTSOCKET");
}

FIXTURE_TEARDOWN(sockopt)
{
	close(self->fd);
}

TEST_F(sockopt, default_and_round_trip)
{
	static const int modes[] = {
		TCP_FASTSOCKET_ON, TCP_FASTSOCKET_OFF, TCP_FASTSOCKET_DEFAULT,
	};
	unsigned int i;
	int mode;

	ASSERT_EQ(0, get_mode(self->fd, &mode));
	EXPECT_EQ(TCP_FASTSOCKET_DEFAULT, mode);
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		ASSERT_EQ(0, set_mode(self->fd, modes[i]));
		ASSERT_EQ(0, get_mode(self->fd, &mode));
		EXPECT_EQ(modes[i], mode);
	}
}

TEST_F(sockopt, bad_value_changes_nothing)
{
	static const int bad[] = { 3, -1, 100, 0x7fffffff, -0x7fffffff - 1 };
	unsigned int i;
	int mode;

	ASSERT_EQ(0, set_mode(self->fd, TCP_FASTSOCKET_ON));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-EINVAL, set_mode(self->fd, bad[i]))
			TH_LOG("value %d", bad[i]);
		ASSERT_EQ(0, get_mode(self->fd, &mode));
		EXPECT_EQ(TCP_FASTSOCKET_ON, mode);
	}
}

TEST_F(sockopt, short_optlen)
{
	int mode = TCP_FASTSOCKET_OFF;
	socklen_t len;

	EXPECT_EQ(-1, setsockopt(self->fd, IPPROTO_TCP, TCP_FASTSOCKET,
				 &mode, 2));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, setsockopt(self->fd, IPPROTO_TCP, TCP_FASTSOCKET,
				 &mode, 0));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, get_mode(self->fd, &mode));
	EXPECT_EQ(TCP_FASTSOCKET_DEFAULT, mode);

	/* A negative length is refused; a short one gets a truncated int. */
	len = -1;
	EXPECT_EQ(-1, getsockopt(self->fd, IPPROTO_TCP, TCP_FASTSOCKET,
				 &mode, &len));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(sockopt, not_on_other_protocols)
{
	static const int types[] = { SOCK_DGRAM, SOCK_RAW };
	unsigned int i;
	int fd, mode = TCP_FASTSOCKET_ON;
	socklen_t len = sizeof(mode);

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		fd = socket(variant->family, types[i],
			    types[i] == SOCK_RAW ? IPPROTO_ICMP : 0);
		ASSERT_LE(0, fd);
		EXPECT_EQ(-1, setsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET,
					 &mode, sizeof(mode)));
		EXPECT_EQ(ENOPROTOOPT, errno);
		/* IPv4 answers a foreign level with EOPNOTSUPP on get. */
		EXPECT_EQ(-1, getsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET,
					 &mode, &len));
		EXPECT_TRUE(errno == ENOPROTOOPT ||
			    (variant->family == AF_INET && errno == EOPNOTSUPP))
			TH_LOG("getsockopt errno %d", errno);
		close(fd);
	}

	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, setsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET, &mode,
				 sizeof(mode)));
	EXPECT_EQ(EOPNOTSUPP, errno);
	close(fd);
}

TEST_F(sockopt, inherited_by_accepted_socket)
{
	int lfd, c, s, mode;

	close(self->fd);
	self->fd = -1;
	lfd = fs_listen(variant->family, 8, TCP_FASTSOCKET_OFF);
	ASSERT_LE(0, lfd);
	c = fs_connect_to(lfd);
	ASSERT_LE(0, c);
	s = accept(lfd, NULL, NULL);
	ASSERT_LE(0, s);
	ASSERT_EQ(0, get_mode(s, &mode));
	EXPECT_EQ(TCP_FASTSOCKET_OFF, mode);
	ASSERT_EQ(0, get_mode(c, &mode));
	EXPECT_EQ(TCP_FASTSOCKET_DEFAULT, mode);
	close(s);
	close(c);
	close(lfd);
	self->fd = socket(AF_INET, SOCK_STREAM, 0);
}

TEST_HARNESS_MAIN
