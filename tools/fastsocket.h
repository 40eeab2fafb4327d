/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fastsocket.h - the one userland definition of what the Fastsocket kernel
 * and module expose: the TCP_FASTSOCKET socket option, the feature and
 * tunable names under /proc/sys/net/fastsocket, and a parser for the
 * /proc/net/fastsocket statistics. The CLI, libfastsocket.so, the
 * selftests and the benchmarks all include it; nothing else may define
 * these again.
 *
 * Header only (static inline), so that every user builds it the way it
 * builds itself; it needs nothing beyond libc.
 */
#ifndef FASTSOCKET_USER_H
#define FASTSOCKET_USER_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/*
 * The socket option, as in the patched include/uapi/linux/tcp.h (which
 * userland's <netinet/tcp.h> does not include).
 */
#ifndef TCP_FASTSOCKET
#define TCP_FASTSOCKET		100
#define TCP_FASTSOCKET_DEFAULT	0	/* follow net.fastsocket.ports */
#define TCP_FASTSOCKET_ON	1	/* enabled whatever the port */
#define TCP_FASTSOCKET_OFF	2	/* disabled whatever the port */
#endif

/*
 * The release of the module, the tools and their Debian packages
 * (tools/deb/build.sh reads it from here).
 */
#define FS_VERSION	"0.10.0"

#define FS_SYSCTL_DIR	"/proc/sys/net/fastsocket"
#define FS_STATS	"/proc/net/fastsocket"

/* The features, in the kernel's order (enum fastsocket_feature). */
static const char *const fs_features[] = {
	"listen", "established", "steering", "vfs_light",
};

#define FS_NR_FEATURES	(sizeof(fs_features) / sizeof(fs_features[0]))

/* The master switch, then one switch per feature. */
static const char *const fs_switches[] = {
	"enabled", "listen", "established", "steering", "vfs_light",
};

#define FS_NR_SWITCHES	(sizeof(fs_switches) / sizeof(fs_switches[0]))

/* Defaults of the tunables (FASTSOCKET_RESERVE_US/_QLEN in the kernel). */
#define FS_RESERVE_US		100
#define FS_RESERVE_QLEN		16

/* Tunables of the local listen table, with their ranges. */
static const struct fs_tunable {
	const char *name;
	unsigned long max;
	unsigned long def;	/* the kernel's default */
} fs_tunables[] = {
	{ "listen_reserve_us", 1000000, FS_RESERVE_US },
	{ "listen_reserve_qlen", 65535, FS_RESERVE_QLEN },
};

#define FS_NR_TUNABLES	(sizeof(fs_tunables) / sizeof(fs_tunables[0]))

/*
 * The accept wait histogram in /proc/net/fastsocket: wait_us_N counts the
 * accept() waits under N us, wait_us_more the rest.
 */
static const char *const fs_wait_buckets[] = {
	"wait_us_4", "wait_us_16", "wait_us_64", "wait_us_256",
	"wait_us_1024", "wait_us_4096", "wait_us_16384", "wait_us_more",
};

#define FS_NR_WAIT_BUCKETS \
	(sizeof(fs_wait_buckets) / sizeof(fs_wait_buckets[0]))

/*
 * Steering (fastsocket_port_cpu() in the kernel): a local port of
 * ip_local_port_range [low, high], of low's parity and not reserved,
 * belongs to class (port >> 1) & (2^bits - 1), and class c to CPU c.
 * FS_CLASS_BITS is the sysctl that holds bits, at most FS_CLASS_BITS_MAX.
 */
#define FS_CLASS_BITS		"steering_class_bits"
#define FS_CLASS_BITS_MAX	10

/*
 * The class of local port @port, or -1 when it has none. Whether the
 * class has a CPU (online, below nr_cpu_ids) is the caller's question, as
 * is ip_local_reserved_ports.
 */
static inline int fs_port_class(int port, int low, int high,
				unsigned int bits)
{
	if (port < low || port > high || ((port ^ low) & 1))
		return -1;
	return (port >> 1) & ((1 << bits) - 1);
}

/* The default of FS_CLASS_BITS for @ncpu possible CPUs: enough for all. */
static inline unsigned int fs_class_bits_default(long ncpu)
{
	unsigned int bits = 0;

	while (bits < FS_CLASS_BITS_MAX && (1L << bits) < ncpu)
		bits++;
	return bits;
}

/* A port set as a bitmap: bit p of byte p / 8 for port p. */
#define FS_PORT_BITMAP	(65536 / 8)

/*
 * A decimal number without sign, spaces or leading junk, at most @max;
 * advances *@s past it. 0 when there are no digits or it is too big.
 */
static inline int fs_parse_num(const char **s, unsigned long max,
			       unsigned long *val)
{
	const char *p = *s;
	unsigned long v = 0;

	if (*p < '0' || *p > '9')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > max)
			return 0;
	}
	*s = p;
	*val = v;
	return 1;
}

/*
 * Parse a port set in the syntax of net.fastsocket.ports (the kernel's
 * large bitmap syntax): comma-separated ports and ranges LO-HI with
 * LO <= HI, each 0-65535; no empty item, no spaces. Sets the ports in
 * @bitmap (FS_PORT_BITMAP bytes; may be NULL to only check). Returns 1,
 * or 0 when @s is malformed (then @bitmap may hold part of it). No
 * allocation, no stdio: libfastsocket.so calls it.
 */
static inline int fs_parse_ports(const char *s, unsigned char *bitmap)
{
	unsigned long lo, hi, p;

	for (;;) {
		if (!fs_parse_num(&s, 65535, &lo))
			return 0;
		hi = lo;
		if (*s == '-') {
			s++;
			if (!fs_parse_num(&s, 65535, &hi) || hi < lo)
				return 0;
		}
		for (p = lo; bitmap && p <= hi; p++)
			bitmap[p / 8] |= (unsigned char)(1 << (p % 8));
		if (!*s)
			return 1;
		if (*s++ != ',')
			return 0;
	}
}

/*
 * Local port of an AF_INET/AF_INET6 socket (0 while it is unbound), or -1
 * for another family or an error.
 */
static inline int fs_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return -1;
}

/* Index of feature @name in fs_features[], or -1. */
static inline int fs_feature_index(const char *name)
{
	unsigned int i;

	for (i = 0; i < FS_NR_FEATURES; i++)
		if (!strcmp(name, fs_features[i]))
			return i;
	return -1;
}

/*
 * Read the file @path into @buf, without trailing white space.
 * Returns 0 or -errno.
 */
static inline int fs_read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' ||
			 buf[n - 1] == '\t'))
		buf[--n] = '\0';
	return 0;
}

/*
 * Write @val to the file @path (a sysctl, say). Returns 0 or -errno of the
 * open or the write, so that callers can report or assert the exact error.
 */
static inline int fs_write_file(const char *path, const char *val)
{
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	if (n < 0)
		err = -errno;
	else if ((size_t)n != strlen(val))
		err = -EIO;
	close(fd);
	return err;
}

/* Read net.fastsocket.@name into @buf. Returns 0 or -errno. */
static inline int fs_sysctl_read(const char *name, char *buf, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), FS_SYSCTL_DIR "/%s", name);
	return fs_read_file(path, buf, len);
}

/* Write @val to net.fastsocket.@name. Returns 0 or -errno. */
static inline int fs_sysctl_write(const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), FS_SYSCTL_DIR "/%s", name);
	return fs_write_file(path, val);
}

/* Is the control module loaded (in this netns's view)? */
static inline int fs_module_loaded(void)
{
	return access(FS_SYSCTL_DIR "/enabled", F_OK) == 0;
}

/*
 * Does this kernel have feature @name's data path (net.fastsocket.available
 * lists it)? 0 when it does not or the module is not loaded.
 */
static inline int fs_feature_available(const char *name)
{
	char buf[256], *tok, *save;

	if (fs_sysctl_read("available", buf, sizeof(buf)))
		return 0;
	for (tok = strtok_r(buf, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save))
		if (!strcmp(tok, name))
			return 1;
	return 0;
}

/*
 * /proc/net/fastsocket, parsed: a header line "cpu NAME...", one line per
 * CPU "N VALUE...", then "total VALUE..." (the kernel's sum over every
 * possible CPU, offline ones included).
 */
struct fs_stats {
	int ncol;		/* counters, without the cpu column */
	char **names;		/* [ncol] */
	int nrow;		/* CPU lines */
	int *cpu;		/* [nrow] */
	unsigned long *val;	/* [(nrow + 1) * ncol]; row nrow: total */
};

static inline void fs_stats_free(struct fs_stats *st)
{
	int i;

	for (i = 0; st->names && i < st->ncol; i++)
		free(st->names[i]);
	free(st->names);
	free(st->cpu);
	free(st->val);
	memset(st, 0, sizeof(*st));
}

/* Split @line into at most @max white-space separated words. */
static inline int fs_split(char *line, char **word, int max)
{
	char *save, *tok;
	int n = 0;

	for (tok = strtok_r(line, " \t\n", &save); tok && n < max;
	     tok = strtok_r(NULL, " \t\n", &save))
		word[n++] = tok;
	return n;
}

#define FS_STATS_MAX_COLS	128
#define FS_STATS_LINE		8192

/*
 * Parse the statistics file @path (NULL: FS_STATS) into @st.
 * Returns 0, or -errno (-EBADMSG for a file not in the format above).
 */
static inline int fs_stats_read(struct fs_stats *st, const char *path)
{
	char *line, *word[FS_STATS_MAX_COLS + 1];
	int n, i, total = 0, err = -EBADMSG;
	unsigned long *v;
	FILE *f;

	memset(st, 0, sizeof(*st));
	f = fopen(path ? path : FS_STATS, "re");
	if (!f)
		return -errno;
	line = malloc(FS_STATS_LINE);
	if (!line) {
		fclose(f);
		return -ENOMEM;
	}
	if (!fgets(line, FS_STATS_LINE, f))
		goto out;
	n = fs_split(line, word, FS_STATS_MAX_COLS + 1);
	if (n < 2 || n > FS_STATS_MAX_COLS || strcmp(word[0], "cpu"))
		goto out;
	st->ncol = n - 1;
	st->names = calloc(st->ncol, sizeof(*st->names));
	if (!st->names)
		goto nomem;
	for (i = 0; i < st->ncol; i++)
		if (!(st->names[i] = strdup(word[i + 1])))
			goto nomem;
	while (fgets(line, FS_STATS_LINE, f)) {
		n = fs_split(line, word, FS_STATS_MAX_COLS + 1);
		if (!n)
			continue;
		if (n != st->ncol + 1 || total)
			goto out;
		total = !strcmp(word[0], "total");
		if (!total) {
			int *c = realloc(st->cpu, (st->nrow + 1) * sizeof(*c));

			if (!c)
				goto nomem;
			st->cpu = c;
			st->cpu[st->nrow] = atoi(word[0]);
		}
		v = realloc(st->val, (st->nrow + 1) * st->ncol * sizeof(*v));
		if (!v)
			goto nomem;
		st->val = v;
		for (i = 0; i < st->ncol; i++)
			v[st->nrow * st->ncol + i] = strtoul(word[i + 1], NULL, 10);
		if (!total)
			st->nrow++;
	}
	err = total ? 0 : -EBADMSG;
	goto out;
nomem:
	err = -ENOMEM;
out:
	free(line);
	fclose(f);
	if (err)
		fs_stats_free(st);
	return err;
}

/* Column of counter @name, or -1. */
static inline int fs_stats_col(const struct fs_stats *st, const char *name)
{
	int i;

	for (i = 0; i < st->ncol; i++)
		if (!strcmp(st->names[i], name))
			return i;
	return -1;
}

/*
 * Counter @name of CPU @cpu, or of the total with @cpu < 0; -1 when the
 * counter or the CPU line is missing.
 */
static inline long fs_stats_get(const struct fs_stats *st, const char *name,
				int cpu)
{
	int col = fs_stats_col(st, name), r;

	if (col < 0)
		return -1;
	if (cpu < 0)
		return st->val[st->nrow * st->ncol + col];
	for (r = 0; r < st->nrow; r++)
		if (st->cpu[r] == cpu)
			return st->val[r * st->ncol + col];
	return -1;
}

/* One counter read straight from FS_STATS (see fs_stats_get()), or -1. */
static inline long fs_stat(const char *name, int cpu)
{
	struct fs_stats st;
	long val;

	if (fs_stats_read(&st, NULL))
		return -1;
	val = fs_stats_get(&st, name, cpu);
	fs_stats_free(&st);
	return val;
}

#endif /* FASTSOCKET_USER_H */
