// SPDX-License-Identifier: GPL-2.0
/*
 * net.fastsocket.* sysctls: defaults, accepted values, bad input that must
 * fail with EINVAL and change nothing, switches without a data path that
 * refuse 1 with EOPNOTSUPP, per-netns isolation and ownership.
 */
#include <sys/wait.h>

#include "fs_util.h"
#include "kselftest_harness.h"

FIXTURE(sysctl) {};

FIXTURE_SETUP(sysctl)
{
	if (!fs_present())
		SKIP(return, "fastsocket module not loaded");
	ASSERT_EQ(0, fs_new_netns());
}

FIXTURE_TEARDOWN(sysctl) {}

TEST_F(sysctl, defaults_off)
{
	char buf[64];
	unsigned int i;

	for (i = 0; i < FS_NR_SWITCHES; i++) {
		const char *sw = fs_switches[i];

		EXPECT_EQ(0, fs_sysctl_int(sw))
			TH_LOG("%s not 0 in a new netns", sw);
	}
	ASSERT_EQ(0, fs_sysctl_read("ports", buf, sizeof(buf)));
	EXPECT_STREQ("", buf);
}

/* The master switch, or a feature this kernel has a data path for. */
static bool switch_available(unsigned int i)
{
	return !i || fs_feature_available(fs_switches[i]);
}

TEST_F(sysctl, available_lists_known_features)
{
	char buf[256], *tok, *save;
	int n = 0;

	ASSERT_EQ(0, fs_sysctl_read("available", buf, sizeof(buf)));
	tok = strtok_r(buf, " ", &save);
	while (tok) {
		int f = fs_feature_index(tok);

		EXPECT_LE(0, f) TH_LOG("unknown feature '%s'", buf);
		n++;
		tok = strtok_r(NULL, " ", &save);
	}
	EXPECT_LE(1, n);
	EXPECT_TRUE(fs_feature_available("listen"));
	/* read only, for root too */
	EXPECT_EQ(-EACCES, fs_sysctl_write("available", "listen"));
}

TEST_F(sysctl, unavailable_switches_refuse_1)
{
	unsigned int i, n = 0;

	for (i = 1; i < FS_NR_SWITCHES; i++) {
		const char *sw = fs_switches[i];

		if (switch_available(i))
			continue;
		n++;
		EXPECT_EQ(-EOPNOTSUPP, fs_sysctl_write(sw, "1")) TH_LOG("%s", sw);
		EXPECT_EQ(0, fs_sysctl_int(sw)) TH_LOG("%s", sw);
		/* with the master switch on too: nothing gets armed */
		ASSERT_EQ(0, fs_sysctl_write("enabled", "1"));
		EXPECT_EQ(-EOPNOTSUPP, fs_sysctl_write(sw, "1\n"));
		EXPECT_EQ(0, fs_sysctl_int(sw));
		EXPECT_EQ(0, fs_sysctl_write(sw, "0"));
		EXPECT_EQ(-EINVAL, fs_sysctl_write(sw, "2"));
		EXPECT_EQ(0, fs_sysctl_int(sw));
		ASSERT_EQ(0, fs_sysctl_write("enabled", "0"));
	}
	if (!n)
		TH_LOG("every feature has its data path: nothing to refuse");
	/* fs_enable_all() turns on what exists and fails on nothing */
	ASSERT_EQ(0, fs_enable_all());
	EXPECT_EQ(1, fs_sysctl_int("listen"));
}

TEST_F(sysctl, switches_accept_0_and_1)
{
	unsigned int i;

	for (i = 0; i < FS_NR_SWITCHES; i++) {
		if (!switch_available(i))
			continue;
		ASSERT_EQ(0, fs_sysctl_write(fs_switches[i], "1"));
		EXPECT_EQ(1, fs_sysctl_int(fs_switches[i]));
		ASSERT_EQ(0, fs_sysctl_write(fs_switches[i], "0\n"));
		EXPECT_EQ(0, fs_sysctl_int(fs_switches[i]));
	}
}

TEST_F(sysctl, switches_reject_bad_input)
{
	static const char *const bad[] = {
		"2", "-1", "abc", "1x", "4294967297", "0x", "",
	};
	unsigned int i, j;

	for (i = 0; i < FS_NR_SWITCHES; i++) {
		/* an unavailable switch stays 0 through all of it */
		int on = switch_available(i);

		if (on)
			ASSERT_EQ(0, fs_sysctl_write(fs_switches[i], "1"));
		for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			int err = fs_sysctl_write(fs_switches[i], bad[j]);
			/* An empty write is a no-op, the rest are errors. */
			int want = *bad[j] ? -EINVAL : 0;

			EXPECT_EQ(want, err)
				TH_LOG("%s <- '%s'", fs_switches[i], bad[j]);
			EXPECT_EQ(on, fs_sysctl_int(fs_switches[i]))
				TH_LOG("%s changed by '%s'", fs_switches[i], bad[j]);
		}
	}
}

TEST_F(sysctl, ports_round_trip)
{
	char buf[256];

	ASSERT_EQ(0, fs_sysctl_write("ports", "80,443,8000-8100"));
	ASSERT_EQ(0, fs_sysctl_read("ports", buf, sizeof(buf)));
	EXPECT_STREQ("80,443,8000-8100", buf);

	/* Adjacent ranges merge; order does not matter. */
	ASSERT_EQ(0, fs_sysctl_write("ports", "9,7,8,1-2,65535"));
	ASSERT_EQ(0, fs_sysctl_read("ports", buf, sizeof(buf)));
	EXPECT_STREQ("1-2,7-9,65535", buf);

	ASSERT_EQ(0, fs_sysctl_write("ports", "\n"));
	ASSERT_EQ(0, fs_sysctl_read("ports", buf, sizeof(buf)));
	EXPECT_STREQ("", buf);
}

TEST_F(sysctl, ports_reject_bad_input)
{
	static const char *const bad[] = {
		"65536", "70000", "abc", "80,abc", "100-50", "-5", "1-2-3",
		"80;443",
	};
	char buf[256];
	unsigned int j;

	ASSERT_EQ(0, fs_sysctl_write("ports", "80,443"));
	for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
		EXPECT_EQ(-EINVAL, fs_sysctl_write("ports", bad[j]))
			TH_LOG("ports <- '%s'", bad[j]);
		ASSERT_EQ(0, fs_sysctl_read("ports", buf, sizeof(buf)));
		EXPECT_STREQ("80,443", buf)
			TH_LOG("ports changed by '%s'", bad[j]);
	}
}

/* The local listen table's tunables: defaults, range, bad input. */
TEST_F(sysctl, reserve_tunables)
{
	static const char *const bad[] = {
		"-1", "abc", "1x", "4294967297", "0x", "1 2x",
	};
	static const struct {
		const char	*name;
		int		def;
		const char	*max;
		const char	*over;
	} t[] = {
		{ "listen_reserve_us", FS_RESERVE_US, "1000000", "1000001" },
		{ "listen_reserve_qlen", FS_RESERVE_QLEN, "65535", "65536" },
	};
	unsigned int i, j;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		EXPECT_EQ(t[i].def, fs_sysctl_int(t[i].name));
		ASSERT_EQ(0, fs_sysctl_write(t[i].name, "0"));
		EXPECT_EQ(0, fs_sysctl_int(t[i].name));
		ASSERT_EQ(0, fs_sysctl_write(t[i].name, t[i].max));
		EXPECT_EQ(atoi(t[i].max), fs_sysctl_int(t[i].name));
		ASSERT_EQ(0, fs_sysctl_write(t[i].name, "7"));
		EXPECT_EQ(-EINVAL, fs_sysctl_write(t[i].name, t[i].over));
		for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++)
			EXPECT_EQ(-EINVAL, fs_sysctl_write(t[i].name, bad[j]))
				TH_LOG("%s <- '%s'", t[i].name, bad[j]);
		EXPECT_EQ(7, fs_sysctl_int(t[i].name))
			TH_LOG("%s changed by bad input", t[i].name);
	}
}

/* Settings made in one netns are invisible in another, both ways. */
TEST_F(sysctl, netns_isolation)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, fs_sysctl_write("enabled", "1"));
	ASSERT_EQ(0, fs_sysctl_write("listen", "1"));
	ASSERT_EQ(0, fs_sysctl_write("ports", "8080"));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char buf[64];

		if (fs_new_netns())
			_exit(10);
		if (fs_sysctl_int("enabled") != 0 ||
		    fs_sysctl_int("listen") != 0)
			_exit(11);
		if (fs_sysctl_read("ports", buf, sizeof(buf)) || *buf)
			_exit(12);
		/* Change the child netns; the parent must not see it. */
		if (fs_sysctl_write("listen_reserve_us", "500") ||
		    fs_sysctl_write("listen", "1") ||
		    fs_sysctl_write("listen", "0"))
			_exit(13);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(1, fs_sysctl_int("enabled"));
	EXPECT_EQ(1, fs_sysctl_int("listen"));
	EXPECT_EQ(FS_RESERVE_US, fs_sysctl_int("listen_reserve_us"));
}

/*
 * An unprivileged user who creates a user namespace owns neither this
 * netns nor its settings: opening a switch for writing fails, and the
 * value stays. The same user's own netns (created inside that user
 * namespace) is writable, so the check is about ownership.
 */
TEST_F(sysctl, child_userns_cannot_write)
{
	char buf[64];
	int status;
	pid_t pid;

	ASSERT_EQ(0, fs_sysctl_write("enabled", "1"));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int err;

		if (setgid(65534) || setuid(65534))
			_exit(20);
		if (unshare(CLONE_NEWUSER))
			_exit(21);
		err = fs_sysctl_write("enabled", "0");
		if (err != -EACCES && err != -EPERM)
			_exit(22);
		if (fs_sysctl_write("ports", "1-65535") != err)
			_exit(23);
		/* Its own netns is its to configure. */
		if (unshare(CLONE_NEWNET))
			_exit(24);
		if (fs_sysctl_write("enabled", "1") || fs_sysctl_int("enabled") != 1)
			_exit(25);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(1, fs_sysctl_int("enabled"));
	ASSERT_EQ(0, fs_sysctl_read("ports", buf, sizeof(buf)));
	EXPECT_STREQ("", buf);
}

TEST_HARNESS_MAIN
