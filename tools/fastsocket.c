// SPDX-License-Identifier: GPL-2.0
/*
 * fastsocket - command line front end to the Fastsocket control module.
 *
 *   fastsocket [OPTIONS] status
 *   fastsocket [OPTIONS] stats [-p] [--watch SECS [--count N]] [COUNTER...]
 *   fastsocket [OPTIONS] enable [FEATURE...]
 *   fastsocket [OPTIONS] disable [FEATURE...]
 *   fastsocket [OPTIONS] ports [SET]
 *   fastsocket [OPTIONS] reserve [US [QLEN]]
 *   fastsocket run [--ports SET] [--active] [--debug] [--quiet] -- CMD...
 *
 * OPTIONS: -j/--json, -p/--pretty (JSON, indented), -h/--help. -j and
 * --pretty are taken anywhere; -p before the command means --pretty,
 * after "stats" it means per CPU.
 *
 * Everything applies to the caller's network namespace. Exit status: 0
 * done; 1 the kernel refused (the message names the sysctl and errno);
 * 2 bad usage or a bad value (nothing changed); 3 the module is not
 * loaded or the feature is not available in this kernel. See fastsocket(8).
 *
 * Names, uapi values and the /proc/net/fastsocket parser come from
 * fastsocket.h, shared with libfastsocket.so, the selftests and crr.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fastsocket.h"

#ifndef FS_LIBDIR
#define FS_LIBDIR	"/usr/local/lib/fastsocket"
#endif

enum {
	EXIT_DONE	= 0,
	EXIT_REFUSED	= 1,	/* the kernel said no */
	EXIT_USAGE	= 2,	/* bad arguments; nothing changed */
	EXIT_ABSENT	= 3,	/* module not loaded / feature not available */
};

static bool json, pretty;

/* ------------------------------------------------------------ messages */

static void __attribute__((format(printf, 1, 2))) err(const char *fmt, ...)
{
	va_list ap;

	fputs("fastsocket: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Why writing net.fastsocket.@name failed, said the way an operator acts. */
static int sysctl_error(const char *name, int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
		err("net.fastsocket.%s: %s: needs CAP_NET_ADMIN in this netns's user namespace",
		    name, strerror(e));
		return EXIT_REFUSED;
	case EOPNOTSUPP:
		err("net.fastsocket.%s: not available in this kernel (no data path yet; see net.fastsocket.available)",
		    name);
		return EXIT_ABSENT;
	case ENOENT:
		err("net.fastsocket.%s: no such sysctl (module not loaded, or an older module)",
		    name);
		return EXIT_ABSENT;
	default:
		err("net.fastsocket.%s: %s", name, strerror(e));
		return EXIT_REFUSED;
	}
}

static int need_module(void)
{
	if (fs_module_loaded())
		return 0;
	err("the fastsocket module is not loaded in this kernel (modprobe fastsocket, or insmod fastsocket.ko)");
	return EXIT_ABSENT;
}

/* ---------------------------------------------------------------- JSON */

/*
 * A minimal JSON writer: objects and arrays nest up to 8 deep; keys and
 * string values are escaped; --pretty indents.
 */
static struct {
	int depth;
	bool first[8];
} jw;

static void jw_sep(void)
{
	if (jw.depth && !jw.first[jw.depth - 1])
		putchar(',');
	if (jw.depth)
		jw.first[jw.depth - 1] = false;
	if (pretty && jw.depth)
		printf("\n%*s", 2 * jw.depth, "");
}

static void jw_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void jw_key(const char *key)
{
	jw_sep();
	if (key) {
		jw_str(key);
		fputs(pretty ? ": " : ":", stdout);
	}
}

static void jw_open(const char *key, char c)
{
	jw_key(key);
	putchar(c);
	jw.first[jw.depth++] = true;
}

static void jw_close(char c)
{
	bool empty = jw.first[--jw.depth];

	if (pretty && !empty)
		printf("\n%*s", 2 * jw.depth, "");
	putchar(c);
	if (!jw.depth)
		putchar('\n');
}

static void jw_string(const char *key, const char *val)
{
	jw_key(key);
	jw_str(val);
}

static void jw_ulong(const char *key, unsigned long val)
{
	jw_key(key);
	printf("%lu", val);
}

static void jw_bool(const char *key, bool val)
{
	jw_key(key);
	fputs(val ? "true" : "false", stdout);
}

/* ------------------------------------------------------------- helpers */

/* A sysctl's value as text, or NULL with errno set. */
static const char *sysctl_get(const char *name, char *buf, size_t len)
{
	int e = fs_sysctl_read(name, buf, len);

	if (e) {
		errno = -e;
		return NULL;
	}
	return buf;
}

/* Parse a decimal unsigned number in [0, max]; false if it is not one. */
static bool parse_ulong(const char *s, unsigned long max, unsigned long *v)
{
	char *end;

	if (!*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return !errno && !*end && *v <= max;
}

/* A port set as net.fastsocket.ports takes it (fastsocket.h), or empty. */
static bool valid_port_set(const char *s)
{
	return !*s || fs_parse_ports(s, NULL);
}

/* ------------------------------------------------------------ commands */

static int cmd_status(int argc, char **argv)
{
	char buf[4096], avail[256];
	const char *v;
	unsigned int i;

	(void)argv;
	if (argc) {
		err("status takes no arguments");
		return EXIT_USAGE;
	}
	if (!fs_module_loaded()) {
		if (json) {
			jw_open(NULL, '{');
			jw_string("module", "not loaded");
			jw_close('}');
		} else {
			printf("module: not loaded\n");
		}
		return EXIT_ABSENT;
	}
	v = sysctl_get("available", avail, sizeof(avail));
	if (!v)
		snprintf(avail, sizeof(avail), "listen");
	if (json) {
		jw_open(NULL, '{');
		jw_string("module", "loaded");
		v = sysctl_get("enabled", buf, sizeof(buf));
		jw_bool("enabled", v && !strcmp(v, "1"));
		jw_open("features", '{');
		for (i = 0; i < FS_NR_FEATURES; i++) {
			jw_open(fs_features[i], '{');
			jw_bool("available", fs_feature_available(fs_features[i]));
			v = sysctl_get(fs_features[i], buf, sizeof(buf));
			jw_bool("on", v && !strcmp(v, "1"));
			jw_close('}');
		}
		jw_close('}');
		v = sysctl_get("ports", buf, sizeof(buf));
		jw_string("ports", v ? v : "");
		for (i = 0; i < FS_NR_TUNABLES; i++) {
			v = sysctl_get(fs_tunables[i].name, buf, sizeof(buf));
			if (v)
				jw_ulong(fs_tunables[i].name, strtoul(v, NULL, 10));
		}
		jw_close('}');
		return EXIT_DONE;
	}
	printf("module: loaded\n");
	printf("available: %s\n", avail);
	v = sysctl_get("enabled", buf, sizeof(buf));
	printf("enabled: %s\n", v ? v : "?");
	for (i = 0; i < FS_NR_FEATURES; i++) {
		if (!fs_feature_available(fs_features[i])) {
			printf("%s: unavailable\n", fs_features[i]);
			continue;
		}
		v = sysctl_get(fs_features[i], buf, sizeof(buf));
		printf("%s: %s\n", fs_features[i], v ? v : "?");
	}
	v = sysctl_get("ports", buf, sizeof(buf));
	printf("ports: %s\n", v ? (*v ? v : "(none)") : "?");
	for (i = 0; i < FS_NR_TUNABLES; i++) {
		v = sysctl_get(fs_tunables[i].name, buf, sizeof(buf));
		printf("%s: %s\n", fs_tunables[i].name, v ? v : "?");
	}
	return EXIT_DONE;
}

/*
 * The upper bound of the histogram bucket holding the @pct-th percentile
 * of the wait counts in @st's row @row, as text ("<16us", ">=16384us"),
 * or "-" with no samples.
 */
static const char *wait_percentile(const struct fs_stats *st, int cpu,
				   int pct, char *buf, size_t len)
{
	unsigned long cnt[FS_NR_WAIT_BUCKETS], total = 0, run = 0;
	unsigned int i;
	long v;

	for (i = 0; i < FS_NR_WAIT_BUCKETS; i++) {
		v = fs_stats_get(st, fs_wait_buckets[i], cpu);
		cnt[i] = v > 0 ? v : 0;
		total += cnt[i];
	}
	if (!total)
		return "-";
	for (i = 0; i < FS_NR_WAIT_BUCKETS; i++) {
		run += cnt[i];
		if (run * 100 >= total * pct)
			break;
	}
	if (i >= FS_NR_WAIT_BUCKETS - 1)
		snprintf(buf, len, ">=%sus",
			 fs_wait_buckets[FS_NR_WAIT_BUCKETS - 2] +
			 strlen("wait_us_"));
	else
		snprintf(buf, len, "<%sus",
			 fs_wait_buckets[i] + strlen("wait_us_"));
	return buf;
}

struct stats_req {
	bool per_cpu;
	int ncounters;
	char **counters;	/* NULL: all */
};

static bool wanted(const struct stats_req *rq, const char *name)
{
	int i;

	if (!rq->ncounters)
		return true;
	for (i = 0; i < rq->ncounters; i++)
		if (!strcmp(rq->counters[i], name))
			return true;
	return false;
}

/*
 * Print one row of @st (CPU @cpu, or the total with -1), minus @base's
 * same row when @base is given (--watch).
 */
static void print_row(const struct stats_req *rq, const struct fs_stats *st,
		      const struct fs_stats *base, int cpu, const char *prefix)
{
	char b50[32], b99[32];
	int c;

	for (c = 0; c < st->ncol; c++) {
		const char *n = st->names[c];
		unsigned long v = fs_stats_get(st, n, cpu);

		if (!wanted(rq, n))
			continue;
		if (base) {
			long b = fs_stats_get(base, n, cpu);

			v -= b > 0 ? (unsigned long)b : 0;
		}
		if (json)
			jw_ulong(n, v);
		else
			printf("%s%s=%lu\n", prefix, n, v);
	}
	if (rq->ncounters || base)
		return;
	if (json) {
		jw_string("wait_p50", wait_percentile(st, cpu, 50, b50, sizeof(b50)));
		jw_string("wait_p99", wait_percentile(st, cpu, 99, b99, sizeof(b99)));
	} else {
		printf("%swait_p50=%s\n%swait_p99=%s\n", prefix,
		       wait_percentile(st, cpu, 50, b50, sizeof(b50)), prefix,
		       wait_percentile(st, cpu, 99, b99, sizeof(b99)));
	}
}

static void print_stats(const struct stats_req *rq, const struct fs_stats *st,
			const struct fs_stats *base)
{
	char prefix[32];
	int r, c;

	if (json) {
		jw_open(NULL, '{');
		if (rq->per_cpu) {
			jw_open("cpus", '[');
			for (r = 0; r < st->nrow; r++) {
				jw_open(NULL, '{');
				jw_ulong("cpu", st->cpu[r]);
				print_row(rq, st, base, st->cpu[r], "");
				jw_close('}');
			}
			jw_close(']');
			jw_open("total", '{');
		}
		print_row(rq, st, base, -1, "");
		if (rq->per_cpu)
			jw_close('}');
		jw_close('}');
		fflush(stdout);
		return;
	}
	if (!rq->per_cpu) {
		print_row(rq, st, base, -1, "");
		fflush(stdout);
		return;
	}
	/* per CPU: the table as the kernel prints it, columns aligned */
	if (rq->ncounters) {
		for (r = 0; r < st->nrow; r++) {
			snprintf(prefix, sizeof(prefix), "cpu%d.", st->cpu[r]);
			print_row(rq, st, base, st->cpu[r], prefix);
		}
		print_row(rq, st, base, -1, "total.");
		fflush(stdout);
		return;
	}
	printf("%-6s", "cpu");
	for (c = 0; c < st->ncol; c++)
		printf(" %*s", (int)strlen(st->names[c]), st->names[c]);
	putchar('\n');
	for (r = 0; r <= st->nrow; r++) {
		int cpu = r < st->nrow ? st->cpu[r] : -1;

		if (cpu >= 0)
			printf("%-6d", cpu);
		else
			printf("%-6s", "total");
		for (c = 0; c < st->ncol; c++) {
			unsigned long v = st->val[r * st->ncol + c];

			if (base) {
				long b = fs_stats_get(base, st->names[c], cpu);

				v -= b > 0 ? (unsigned long)b : 0;
			}
			printf(" %*lu", (int)strlen(st->names[c]), v);
		}
		putchar('\n');
	}
	fflush(stdout);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int cmd_stats(int argc, char **argv)
{
	struct stats_req rq = { 0 };
	unsigned long watch = 0, count = 0, n;
	struct fs_stats st, prev;
	int i, e, c;

	for (i = 0; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-p") || !strcmp(argv[i], "--per-cpu")) {
			rq.per_cpu = true;
		} else if (!strcmp(argv[i], "--watch") && i + 1 < argc) {
			if (!parse_ulong(argv[++i], 86400, &watch) || !watch) {
				err("--watch wants seconds, 1-86400 (got '%s')", argv[i]);
				return EXIT_USAGE;
			}
		} else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			if (!parse_ulong(argv[++i], ULONG_MAX, &count) || !count) {
				err("--count wants a positive number (got '%s')", argv[i]);
				return EXIT_USAGE;
			}
		} else {
			err("stats: unknown option '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (count && !watch) {
		err("--count goes with --watch");
		return EXIT_USAGE;
	}
	rq.ncounters = argc - i;
	rq.counters = argv + i;
	if ((e = need_module()))
		return e;
	e = fs_stats_read(&st, NULL);
	if (e) {
		err("%s: %s", FS_STATS, strerror(-e));
		return EXIT_REFUSED;
	}
	for (c = 0; c < rq.ncounters; c++) {
		if (fs_stats_col(&st, rq.counters[c]) < 0) {
			err("no counter '%s' in %s (see fastsocket stats)",
			    rq.counters[c], FS_STATS);
			fs_stats_free(&st);
			return EXIT_USAGE;
		}
	}
	if (!watch) {
		print_stats(&rq, &st, NULL);
		fs_stats_free(&st);
		return EXIT_DONE;
	}
	/* --watch: what moved in each interval, until a signal or --count */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	for (n = 0; !stop && (!count || n < count); n++) {
		prev = st;
		sleep(watch);
		if (stop)
			break;
		e = fs_stats_read(&st, NULL);
		if (e) {
			fs_stats_free(&prev);
			err("%s: %s", FS_STATS, strerror(-e));
			return EXIT_REFUSED;
		}
		if (!json)
			printf("# interval=%lus\n", watch);
		print_stats(&rq, &st, &prev);
		fs_stats_free(&prev);
	}
	fs_stats_free(&st);
	return EXIT_DONE;
}

/*
 * enable/disable: every name is checked, and every old value read, before
 * anything is written; a write the kernel refuses puts back what was
 * already changed, so a failing command changes nothing.
 */
static int cmd_switch(bool on, int argc, char **argv)
{
	const char *names[FS_NR_SWITCHES];
	char old[FS_NR_SWITCHES][16];
	int n = 0, i, j, e, f;

	if ((e = need_module()))
		return e;
	for (i = 0; i < argc; i++) {
		f = fs_feature_index(argv[i]);
		if (f < 0) {
			err("unknown feature '%s' (one of: listen established steering vfs_light)",
			    argv[i]);
			return EXIT_USAGE;
		}
		if (on && !fs_feature_available(argv[i])) {
			err("%s: not available in this kernel (net.fastsocket.available lists what is)",
			    argv[i]);
			return EXIT_ABSENT;
		}
	}
	if (!argc && !on) {
		names[n++] = "enabled";
	} else if (!argc) {
		for (f = 0; f < (int)FS_NR_FEATURES; f++)
			if (fs_feature_available(fs_features[f]))
				names[n++] = fs_features[f];
	} else {
		for (i = 0; i < argc; i++) {
			for (j = 0; j < n && strcmp(names[j], argv[i]); j++)
				;
			if (j == n)
				names[n++] = argv[i];
		}
	}
	if (on)
		names[n++] = "enabled";	/* last: features first */
	for (i = 0; i < n; i++)
		if ((e = fs_sysctl_read(names[i], old[i], sizeof(old[i]))))
			return sysctl_error(names[i], -e);
	for (i = 0; i < n; i++) {
		e = fs_sysctl_write(names[i], on ? "1" : "0");
		if (e) {
			for (j = i - 1; j >= 0; j--)
				fs_sysctl_write(names[j], old[j]);
			return sysctl_error(names[i], -e);
		}
	}
	return EXIT_DONE;
}

static int cmd_ports(int argc, char **argv)
{
	char buf[4096];
	const char *v;
	int e;

	if ((e = need_module()))
		return e;
	if (argc > 1) {
		err("ports takes one SET (e.g. 80,443,8000-8100; \"\" clears it)");
		return EXIT_USAGE;
	}
	if (argc) {
		if (!valid_port_set(argv[0])) {
			err("invalid port set '%s' (expected e.g. 80,443,8000-8100; ports 0-65535)",
			    argv[0]);
			return EXIT_USAGE;
		}
		e = fs_sysctl_write("ports", *argv[0] ? argv[0] : "\n");
		if (e == -EINVAL) {
			err("invalid port set '%s' (expected e.g. 80,443,8000-8100; ports 0-65535)",
			    argv[0]);
			return EXIT_USAGE;
		}
		if (e)
			return sysctl_error("ports", -e);
	}
	v = sysctl_get("ports", buf, sizeof(buf));
	if (!v)
		return sysctl_error("ports", errno);
	if (json) {
		jw_open(NULL, '{');
		jw_string("ports", v);
		jw_close('}');
	} else {
		printf("%s\n", *v ? v : "(none)");
	}
	return EXIT_DONE;
}

static int cmd_reserve(int argc, char **argv)
{
	char buf[64], old[FS_NR_TUNABLES][32];
	unsigned long v;
	unsigned int i;
	int e;

	if ((e = need_module()))
		return e;
	if (argc > (int)FS_NR_TUNABLES) {
		err("reserve takes at most US and QLEN");
		return EXIT_USAGE;
	}
	/* check both values before writing either */
	for (i = 0; i < (unsigned int)argc; i++) {
		if (!parse_ulong(argv[i], fs_tunables[i].max, &v)) {
			err("invalid %s '%s' (expected 0-%lu)",
			    fs_tunables[i].name, argv[i], fs_tunables[i].max);
			return EXIT_USAGE;
		}
		if ((e = fs_sysctl_read(fs_tunables[i].name, old[i],
					sizeof(old[i]))))
			return sysctl_error(fs_tunables[i].name, -e);
	}
	for (i = 0; i < (unsigned int)argc; i++) {
		e = fs_sysctl_write(fs_tunables[i].name, argv[i]);
		if (e) {
			if (i)
				fs_sysctl_write(fs_tunables[0].name, old[0]);
			return sysctl_error(fs_tunables[i].name, -e);
		}
	}
	if (json)
		jw_open(NULL, '{');
	for (i = 0; i < FS_NR_TUNABLES; i++) {
		if (!sysctl_get(fs_tunables[i].name, buf, sizeof(buf)))
			return sysctl_error(fs_tunables[i].name, errno);
		if (json)
			jw_ulong(fs_tunables[i].name, strtoul(buf, NULL, 10));
		else
			printf("%s: %s\n", fs_tunables[i].name, buf);
	}
	if (json)
		jw_close('}');
	return EXIT_DONE;
}

/*
 * Where libfastsocket.so is: $FASTSOCKET_LIB, beside this binary (the
 * build tree), ../lib/fastsocket/ from it (an installed prefix), then the
 * compiled-in FS_LIBDIR.
 */
static int find_lib(char path[PATH_MAX], size_t len)
{
	char self[PATH_MAX - 64], *slash;
	const char *env = getenv("FASTSOCKET_LIB");
	ssize_t n;

	if (env && *env) {
		snprintf(path, len, "%s", env);
		return access(path, R_OK) ? -errno : 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(path, len, "%s/libfastsocket.so", self);
			if (!access(path, R_OK))
				return 0;
			snprintf(path, len, "%s/../lib/fastsocket/libfastsocket.so",
				 self);
			if (!access(path, R_OK)) {
				char *real = realpath(path, NULL);

				/* the same file, named without "/.." */
				if (real && strlen(real) < len)
					strcpy(path, real);
				free(real);
				return 0;
			}
		}
	}
	snprintf(path, len, "%s/libfastsocket.so", FS_LIBDIR);
	return access(path, R_OK) ? -errno : 0;
}

static int cmd_run(int argc, char **argv)
{
	char lib[PATH_MAX], *preload;
	const char *old;
	int i, e;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "--ports") && i + 1 < argc) {
			if (!valid_port_set(argv[++i]) || !*argv[i]) {
				err("invalid port set '%s' (expected e.g. 80,443,8000-8100; ports 0-65535)",
				    argv[i]);
				return EXIT_USAGE;
			}
			setenv("FASTSOCKET_PORTS", argv[i], 1);
		} else if (!strcmp(argv[i], "--active")) {
			setenv("FASTSOCKET_ACTIVE", "1", 1);
		} else if (!strcmp(argv[i], "--debug")) {
			setenv("FASTSOCKET_DEBUG", "1", 1);
		} else if (!strcmp(argv[i], "--quiet")) {
			setenv("FASTSOCKET_QUIET", "1", 1);
		} else if (argv[i][0] == '-') {
			err("run: unknown option '%s'", argv[i]);
			return EXIT_USAGE;
		} else {
			break;
		}
	}
	if (i >= argc) {
		err("run: no command (fastsocket run [--ports SET] [--active] -- CMD...)");
		return EXIT_USAGE;
	}
	e = find_lib(lib, sizeof(lib));
	if (e) {
		err("libfastsocket.so: %s (looked for %s; set FASTSOCKET_LIB)",
		    strerror(-e), lib);
		return EXIT_ABSENT;
	}
	old = getenv("LD_PRELOAD");
	if (old && *old) {
		size_t n = strlen(lib) + strlen(old) + 2;

		preload = malloc(n);
		if (!preload) {
			err("run: out of memory");
			return EXIT_REFUSED;
		}
		snprintf(preload, n, "%s:%s", lib, old);
	} else {
		preload = lib;
	}
	setenv("LD_PRELOAD", preload, 1);
	execvp(argv[i], argv + i);
	e = errno;
	err("run: %s: %s", argv[i], strerror(e));
	return e == ENOENT ? 127 : 126;
}

static int cmd_enable(int argc, char **argv)
{
	return cmd_switch(true, argc, argv);
}

static int cmd_disable(int argc, char **argv)
{
	return cmd_switch(false, argc, argv);
}

static int cmd_help(int argc, char **argv);

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
} commands[] = {
	{ "status", cmd_status, "status" },
	{ "stats", cmd_stats,
	  "stats [-p] [--watch SECS [--count N]] [COUNTER...]" },
	{ "enable", cmd_enable, "enable [FEATURE...]" },
	{ "disable", cmd_disable, "disable [FEATURE...]" },
	{ "ports", cmd_ports, "ports [SET]" },
	{ "reserve", cmd_reserve, "reserve [US [QLEN]]" },
	{ "run", cmd_run,
	  "run [--ports SET] [--active] [--debug] [--quiet] [--] CMD [ARG...]" },
	{ "help", cmd_help, "help" },
	{ NULL, NULL, NULL },
};

static int usage(FILE *f)
{
	const struct command *c;

	fprintf(f, "usage: fastsocket [-j|--json] [-p|--pretty] COMMAND [ARGS]\n");
	for (c = commands; c->name; c++)
		fprintf(f, "       fastsocket %s\n", c->usage);
	fprintf(f,
		"FEATURE: listen established steering vfs_light (those in net.fastsocket.available)\n"
		"exit status: 0 done, 1 refused by the kernel, 2 bad usage (nothing changed),\n"
		"             3 module not loaded or feature not available\n"
		"see fastsocket(8)\n");
	return f == stderr ? EXIT_USAGE : EXIT_DONE;
}

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return usage(stdout);
}

int main(int argc, char **argv)
{
	const struct command *c;
	char *args[argc + 1];
	int i, n = 0, cmd = -1;

	/*
	 * Global options before the command; -j and --pretty also after it
	 * (except past "run"'s command), where -p belongs to the command.
	 */
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (cmd >= 0 && !strcmp(argv[cmd], "run")) {
			args[n++] = argv[i];
			continue;
		}
		if (!strcmp(a, "-j") || !strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "--pretty") || (cmd < 0 && !strcmp(a, "-p"))) {
			json = pretty = true;
		} else if (cmd < 0 && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
			return usage(stdout);
		} else if (cmd < 0 && a[0] == '-') {
			err("unknown option '%s'", a);
			return usage(stderr);
		} else if (cmd < 0) {
			cmd = i;
		} else {
			args[n++] = argv[i];
		}
	}
	args[n] = NULL;
	if (cmd < 0)
		return cmd_status(0, args);
	for (c = commands; c->name; c++)
		if (!strcmp(argv[cmd], c->name))
			return c->fn(n, args);
	err("unknown command '%s'", argv[cmd]);
	return usage(stderr);
}
