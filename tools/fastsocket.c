// SPDX-License-Identifier: GPL-2.0
/*
 * fastsocket - command line front end to the Fastsocket control module.
 *
 *   fastsocket status                 module, switches, port set, tunables
 *   fastsocket stats [-p]             counters (-p: per CPU); the totals
 *                                     add the accept wait's p50 and p99
 *   fastsocket reserve [US [QLEN]]    show or set how long (and up to
 *                                     what queue length) a connection is
 *                                     kept for its own CPU's acceptor
 *   fastsocket enable [FEATURE...]    master switch on, FEATUREs on (all)
 *   fastsocket disable [FEATURE...]   FEATUREs off (none: master switch off)
 *   fastsocket ports [SET]            show or set the listener port set
 *
 * Everything applies to the caller's network namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SYSCTL_DIR	"/proc/sys/net/fastsocket/"
#define STATS		"/proc/net/fastsocket"

static const char *const features[] = {
	"listen", "established", "steering", "vfs_light",
};
#define NR_FEATURES	(sizeof(features) / sizeof(features[0]))

/* Tunables of the local listen table, shown by status. */
static const char *const tunables[] = {
	"listen_reserve_us", "listen_reserve_qlen",
};
#define NR_TUNABLES	(sizeof(tunables) / sizeof(tunables[0]))

/*
 * The accept wait histogram of /proc/net/fastsocket: wait_us_N counts
 * waits under N us; wait_us_more the rest.
 */
static const char *const wait_buckets[] = {
	"wait_us_4", "wait_us_16", "wait_us_64", "wait_us_256",
	"wait_us_1024", "wait_us_4096", "wait_us_16384", "wait_us_more",
};
#define NR_WAIT_BUCKETS	(sizeof(wait_buckets) / sizeof(wait_buckets[0]))

static int read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return 0;
}

static int write_sysctl(const char *name, const char *val)
{
	char path[128];
	int fd, err = 0;

	snprintf(path, sizeof(path), SYSCTL_DIR "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	close(fd);
	return err;
}

static int need_module(void)
{
	if (access(SYSCTL_DIR "enabled", F_OK) == 0)
		return 0;
	fprintf(stderr, "fastsocket: module not loaded (modprobe fastsocket)\n");
	return 1;
}

static const char *sysctl_str(const char *name, char *buf, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), SYSCTL_DIR "%s", name);
	if (read_file(path, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

static int cmd_status(void)
{
	char buf[4096];
	unsigned int i;

	if (need_module())
		return 1;
	printf("module: loaded\n");
	printf("enabled: %s\n", sysctl_str("enabled", buf, sizeof(buf)));
	for (i = 0; i < NR_FEATURES; i++)
		printf("%s: %s\n", features[i],
		       sysctl_str(features[i], buf, sizeof(buf)));
	sysctl_str("ports", buf, sizeof(buf));
	printf("ports: %s\n", *buf ? buf : "(none)");
	for (i = 0; i < NR_TUNABLES; i++)
		printf("%s: %s\n", tunables[i],
		       sysctl_str(tunables[i], buf, sizeof(buf)));
	return 0;
}

/*
 * The upper bound of the histogram bucket holding the @pct-th percentile
 * of @cnt, as text ("<16us", ">=16384us"), or "-" with no samples.
 */
static const char *wait_percentile(const unsigned long *cnt, int pct,
				   char *buf, size_t len)
{
	unsigned long total = 0, run = 0;
	unsigned int i;

	for (i = 0; i < NR_WAIT_BUCKETS; i++)
		total += cnt[i];
	if (!total)
		return "-";
	for (i = 0; i < NR_WAIT_BUCKETS; i++) {
		run += cnt[i];
		if (run * 100 >= total * pct)
			break;
	}
	if (i >= NR_WAIT_BUCKETS - 1)
		snprintf(buf, len, ">=%sus",
			 wait_buckets[NR_WAIT_BUCKETS - 2] + strlen("wait_us_"));
	else
		snprintf(buf, len, "<%sus", wait_buckets[i] + strlen("wait_us_"));
	return buf;
}

static int cmd_stats(int per_cpu)
{
	char line[4096];
	FILE *f;

	if (need_module())
		return 1;
	f = fopen(STATS, "r");
	if (!f) {
		perror("fastsocket: " STATS);
		return 1;
	}
	if (per_cpu) {
		while (fgets(line, sizeof(line), f))
			fputs(line, stdout);
	} else {
		char names[4096], *n, *v, *sn, *sv;

		if (!fgets(names, sizeof(names), f)) {
			fclose(f);
			return 1;
		}
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "total ", 6))
				break;
		unsigned long wait[NR_WAIT_BUCKETS] = { 0 };
		char p50[32], p99[32];
		unsigned int i;

		/* key=value, one per line: skip the "cpu"/"total" column */
		n = strtok_r(names, " \n", &sn);
		v = strtok_r(line, " \n", &sv);
		while ((n = strtok_r(NULL, " \n", &sn)) &&
		       (v = strtok_r(NULL, " \n", &sv))) {
			printf("%s=%s\n", n, v);
			for (i = 0; i < NR_WAIT_BUCKETS; i++)
				if (!strcmp(n, wait_buckets[i]))
					wait[i] = strtoul(v, NULL, 10);
		}
		printf("wait_p50=%s\nwait_p99=%s\n",
		       wait_percentile(wait, 50, p50, sizeof(p50)),
		       wait_percentile(wait, 99, p99, sizeof(p99)));
	}
	fclose(f);
	return 0;
}

static int feature_index(const char *name)
{
	unsigned int i;

	for (i = 0; i < NR_FEATURES; i++)
		if (!strcmp(name, features[i]))
			return i;
	fprintf(stderr, "fastsocket: unknown feature '%s' (one of:", name);
	for (i = 0; i < NR_FEATURES; i++)
		fprintf(stderr, " %s", features[i]);
	fprintf(stderr, ")\n");
	return -1;
}

static int set_switch(const char *name, const char *val)
{
	int err = write_sysctl(name, val);

	if (err)
		fprintf(stderr, "fastsocket: cannot set %s: %s\n", name,
			strerror(-err));
	return err ? 1 : 0;
}

static int cmd_switch(int on, int argc, char **argv)
{
	const char *val = on ? "1" : "0";
	int i;

	if (need_module())
		return 1;
	/* Check every name before changing anything. */
	for (i = 0; i < argc; i++)
		if (feature_index(argv[i]) < 0)
			return 2;
	if (!argc) {
		unsigned int f;

		if (!on)
			return set_switch("enabled", "0");
		for (f = 0; f < NR_FEATURES; f++)
			if (set_switch(features[f], "1"))
				return 1;
	}
	for (i = 0; i < argc; i++)
		if (set_switch(argv[i], val))
			return 1;
	return on ? set_switch("enabled", "1") : 0;
}

static int cmd_ports(int argc, char **argv)
{
	char buf[4096];
	int err;

	if (need_module())
		return 1;
	if (!argc) {
		sysctl_str("ports", buf, sizeof(buf));
		printf("%s\n", *buf ? buf : "(none)");
		return 0;
	}
	err = write_sysctl("ports", argv[0]);
	if (err == -EINVAL) {
		fprintf(stderr,
			"fastsocket: invalid port set '%s' (expected e.g. 80,443,8000-8100; ports 0-65535)\n",
			argv[0]);
		return 2;
	}
	if (err) {
		fprintf(stderr, "fastsocket: cannot set ports: %s\n",
			strerror(-err));
		return 1;
	}
	return 0;
}

static int cmd_reserve(int argc, char **argv)
{
	char buf[64];
	int i, err;

	if (need_module())
		return 1;
	if (argc > (int)NR_TUNABLES) {
		fprintf(stderr, "fastsocket: reserve takes at most US and QLEN\n");
		return 2;
	}
	for (i = 0; i < argc; i++) {
		err = write_sysctl(tunables[i], argv[i]);
		if (err == -EINVAL) {
			fprintf(stderr,
				"fastsocket: invalid %s '%s' (expected 0-%s)\n",
				tunables[i], argv[i], i ? "65535" : "1000000");
			return 2;
		}
		if (err) {
			fprintf(stderr, "fastsocket: cannot set %s: %s\n",
				tunables[i], strerror(-err));
			return 1;
		}
	}
	for (i = 0; i < (int)NR_TUNABLES; i++)
		printf("%s: %s\n", tunables[i],
		       sysctl_str(tunables[i], buf, sizeof(buf)));
	return 0;
}

static int usage(FILE *f)
{
	fprintf(f,
		"usage: fastsocket status\n"
		"       fastsocket stats [-p]\n"
		"       fastsocket enable [FEATURE...]\n"
		"       fastsocket disable [FEATURE...]\n"
		"       fastsocket ports [SET]\n"
		"       fastsocket reserve [US [QLEN]]\n"
		"FEATURE: listen established steering vfs_light\n");
	return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "status";

	if (!strcmp(cmd, "status"))
		return cmd_status();
	if (!strcmp(cmd, "stats"))
		return cmd_stats(argc > 2 && !strcmp(argv[2], "-p"));
	if (!strcmp(cmd, "enable"))
		return cmd_switch(1, argc - 2, argv + 2);
	if (!strcmp(cmd, "disable"))
		return cmd_switch(0, argc - 2, argv + 2);
	if (!strcmp(cmd, "ports"))
		return cmd_ports(argc - 2, argv + 2);
	if (!strcmp(cmd, "reserve"))
		return cmd_reserve(argc - 2, argv + 2);
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help"))
		return usage(stdout);
	fprintf(stderr, "fastsocket: unknown command '%s'\n", cmd);
	return usage(stderr);
}
