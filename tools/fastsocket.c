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
 *   fastsocket [OPTIONS] nic DEV [--dry-run] [--undo] [--state-dir DIR]
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
#define _GNU_SOURCE	/* strcasestr() */
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
#include <net/if.h>
#include <sys/stat.h>
#include <sys/wait.h>

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
		v = sysctl_get(FS_CLASS_BITS, buf, sizeof(buf));
		if (v)
			jw_ulong(FS_CLASS_BITS, strtoul(v, NULL, 10));
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
	v = sysctl_get(FS_CLASS_BITS, buf, sizeof(buf));
	if (v)
		printf("%s: %s\n", FS_CLASS_BITS, v);
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

/* ----------------------------------------------------------------- nic */

/*
 * fastsocket nic DEV: lay out a NIC's receive queues for Fastsocket with
 * the real tools, ethtool(8) and /proc/irq, never by ethtool's ioctls:
 *
 *   channels  one RX queue per CPU, as far as the NIC has them (-L)
 *   irq       the IRQ of queue q affine to CPU q (smp_affinity_list)
 *   rss       RSS spread evenly over those queues (-X equal), for the
 *             passive side
 *   ntuple    ntuple filters on (-K), then for each steering class c one
 *             masked dst-port rule per IP version to queue c (-N), for the
 *             active side
 *
 * What the NIC cannot do is said, not failed: the software hook (RPS and
 * net.fastsocket.steering) covers it. Every change is preceded by a line
 * in the state file that undoes it; --undo runs those lines backwards.
 */

/* channels, rss, ntuple, an IRQ per queue, two rules per class */
#define NIC_STEPS	(8 + 2 * 4096)
#define NIC_OUT		4096

struct nic_step {
	const char *what;	/* channels, irq, rss, ntuple, rule */
	char cmd[192];		/* "ethtool ..." or "write PATH VALUE" */
	char undo[192];		/* its state line; "" when none is needed */
	const char *status;	/* planned, done, skipped, cannot, failed */
	char detail[256];
};

static struct nic_step nic_steps[NIC_STEPS];
static int nic_nsteps;

static struct nic_step *nic_step(const char *what, const char *status)
{
	struct nic_step *s;

	if (nic_nsteps == NIC_STEPS) {
		err("nic: more than %d steps; nothing more is planned or done",
		    NIC_STEPS);
		exit(EXIT_REFUSED);
	}
	s = &nic_steps[nic_nsteps++];
	memset(s, 0, sizeof(*s));
	s->what = what;
	s->status = status;
	return s;
}

/*
 * Run @cmd, words separated by single spaces (no quoting: none of ours
 * needs it), with stdout and stderr into @out. Returns its exit status,
 * or 127 when it could not be started.
 */
static int nic_exec(const char *cmd, char *out, size_t len)
{
	char buf[192], *argv[24], *save = NULL, *w;
	int pfd[2], st, n = 0;
	size_t got = 0;
	ssize_t r;
	pid_t pid;

	snprintf(buf, sizeof(buf), "%s", cmd);
	for (w = strtok_r(buf, " ", &save); w && n < 23;
	     w = strtok_r(NULL, " ", &save))
		argv[n++] = w;
	argv[n] = NULL;
	/* another ethtool: a wrapper, or a described NIC in the tests */
	if (n && !strcmp(argv[0], "ethtool") && getenv("FASTSOCKET_ETHTOOL") &&
	    *getenv("FASTSOCKET_ETHTOOL"))
		argv[0] = getenv("FASTSOCKET_ETHTOOL");
	*out = '\0';
	if (!n || pipe(pfd))
		return 127;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return 127;
	}
	if (!pid) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		close(pfd[0]);
		close(pfd[1]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	while (got + 1 < len &&
	       (r = read(pfd[0], out + got, len - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(pfd[0]);
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
		return 127;
	return WEXITSTATUS(st);
}

/* Run "ethtool @opt @dev" (a query), its output into @out. */
static int nic_query(const char *opt, const char *dev, char *out, size_t len)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "ethtool %s %s", opt, dev);
	return nic_exec(cmd, out, len);
}

/* Carry out one "ethtool ..." or "write PATH VALUE" line. */
static int nic_do(const char *cmd, char *out, size_t len)
{
	char path[128], val[64];
	int e;

	if (strncmp(cmd, "write ", 6))
		return nic_exec(cmd, out, len);
	if (sscanf(cmd + 6, "%127s %63s", path, val) != 2) {
		snprintf(out, len, "malformed line");
		return 1;
	}
	e = fs_write_file(path, val);
	snprintf(out, len, "%s", e ? strerror(-e) : "");
	return e ? 1 : 0;
}

/* The number after "@key" in the @section of ethtool output @text. */
static long nic_field(const char *text, const char *section, const char *key)
{
	const char *p = strstr(text, section);
	size_t klen = strlen(key);

	if (!p)
		return -1;
	/* the first @key line after the section's title is in it */
	for (p = strchr(p, '\n'); p; p = strchr(p, '\n')) {
		p++;
		if (!strncmp(p, key, klen)) {
			p += klen;
			while (*p == ' ' || *p == '\t')
				p++;
			/* "n/a" counts as none */
			return *p >= '0' && *p <= '9' ? strtol(p, NULL, 10) : 0;
		}
	}
	return -1;
}

/*
 * Whether /proc/interrupts action @name is an RX queue IRQ of @dev:
 * "DEV-...rx..." (or "DRIVER-DEV-..."), or "@virtio-input.N" for a
 * virtio-net device whose virtio name is @virtio.
 */
static bool nic_irq_of(const char *name, const char *dev, const char *virtio)
{
	const char *p = strstr(name, dev);
	size_t n = strlen(dev);

	if (*virtio && !strncmp(name, virtio, strlen(virtio)) &&
	    !strncmp(name + strlen(virtio), "-input.", 7))
		return true;
	if (!p || (p != name && p[-1] != '-') || p[n] != '-')
		return false;
	return strcasestr(p + n, "rx") != NULL;
}

/*
 * Plan the IRQ affinities: the RX IRQs of @dev, in /proc/interrupts
 * order, to CPU 0, 1, ... in turn. Returns how many it found.
 */
static int nic_plan_irqs(const char *dev, int ncpu)
{
	char line[1024], *save, *w, *last, old[64], path[64], cpu[16];
	char virtio[32];
	ssize_t n;
	int irq, found = 0;
	struct nic_step *s;
	FILE *f;

	/* a virtio-net device's queues are named after its virtio device */
	snprintf(path, sizeof(path), "/sys/class/net/%s/device", dev);
	n = readlink(path, line, sizeof(line) - 1);
	line[n > 0 ? n : 0] = '\0';
	w = strrchr(line, '/');
	snprintf(virtio, sizeof(virtio), "%s",
		 w && !strncmp(w + 1, "virtio", 6) ? w + 1 : "");
	f = fopen("/proc/interrupts", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %d:", &irq) != 1)
			continue;
		last = NULL;
		save = NULL;
		for (w = strtok_r(line, " \t\n", &save); w;
		     w = strtok_r(NULL, " \t\n", &save))
			last = w;
		if (!last || !nic_irq_of(last, dev, virtio))
			continue;
		snprintf(path, sizeof(path), "/proc/irq/%d/smp_affinity_list",
			 irq);
		if (fs_read_file(path, old, sizeof(old)))
			continue;
		snprintf(cpu, sizeof(cpu), "%d", found % ncpu);
		s = nic_step("irq", strcmp(old, cpu) ? "planned" : "skipped");
		snprintf(s->cmd, sizeof(s->cmd), "write %s %s", path, cpu);
		snprintf(s->undo, sizeof(s->undo), "write %s %s", path, old);
		snprintf(s->detail, sizeof(s->detail), "%s to CPU %s", last,
			 cpu);
		found++;
	}
	fclose(f);
	return found;
}

/* @cmd as a shell command: "write PATH VALUE" is "echo VALUE > PATH". */
static const char *nic_shell(const char *cmd, char *buf, size_t len)
{
	char path[128], val[64];

	if (strncmp(cmd, "write ", 6) ||
	    sscanf(cmd + 6, "%127s %63s", path, val) != 2)
		return cmd;
	snprintf(buf, len, "echo %s > %s", val, path);
	return buf;
}

static void nic_print(const char *dev, bool dry, int ncpu, unsigned int bits,
		      int low, int high, bool hook)
{
	char sh[256];
	int i;

	if (json) {
		jw_open(NULL, '{');
		jw_string("dev", dev);
		jw_bool("dry_run", dry);
		jw_ulong("cpus", (unsigned long)ncpu);
		jw_ulong("class_bits", bits);
		jw_ulong("port_low", (unsigned long)low);
		jw_ulong("port_high", (unsigned long)high);
		jw_open("steps", '[');
		for (i = 0; i < nic_nsteps; i++) {
			jw_open(NULL, '{');
			jw_string("what", nic_steps[i].what);
			jw_string("command", nic_shell(nic_steps[i].cmd, sh,
							sizeof(sh)));
			jw_string("status", nic_steps[i].status);
			jw_string("detail", nic_steps[i].detail);
			jw_close('}');
		}
		jw_close(']');
		jw_bool("software_hook", hook);
		jw_close('}');
		return;
	}
	for (i = 0; i < nic_nsteps; i++) {
		const struct nic_step *s = &nic_steps[i];

		if (dry && !strcmp(s->status, "planned"))
			printf("%s\n", nic_shell(s->cmd, sh, sizeof(sh)));
		else if (dry)
			printf("# %s: %s%s%s\n", s->what, s->status,
			       *s->detail ? ": " : "", s->detail);
		else
			printf("%-8s %-8s %s%s%s\n", s->status, s->what,
			       nic_shell(s->cmd, sh, sizeof(sh)),
			       *s->cmd && *s->detail ? " # " : "", s->detail);
	}
	if (hook)
		printf("%ssoftware steering covers what the NIC does not: RPS on %s's queues and net.fastsocket.steering=1\n",
		       dry ? "# " : "", dev);
}

/* Undo what the state file @path says, last change first. */
static int nic_undo(const char *dev, const char *path)
{
	static char lines[NIC_STEPS][192];
	char out[NIC_OUT];
	int n = 0, i, bad = 0;
	FILE *f;

	f = fopen(path, "re");
	if (!f) {
		err("nic %s: nothing to undo (%s: %s)", dev, path,
		    strerror(errno));
		return EXIT_USAGE;
	}
	while (n < NIC_STEPS && fgets(lines[n], sizeof(lines[n]), f)) {
		lines[n][strcspn(lines[n], "\n")] = '\0';
		if (lines[n][0] && lines[n][0] != '#')
			n++;
	}
	fclose(f);
	for (i = n - 1; i >= 0; i--) {
		struct nic_step *s = nic_step("undo", "done");
		int rc = nic_do(lines[i], out, sizeof(out));

		snprintf(s->cmd, sizeof(s->cmd), "%s", lines[i]);
		if (rc) {
			s->status = "failed";
			snprintf(s->detail, sizeof(s->detail), "%.200s", out);
			s->detail[strcspn(s->detail, "\n")] = '\0';
			bad++;
		}
	}
	if (bad) {
		err("nic %s: %d undo step(s) failed; state kept in %s", dev, bad,
		    path);
	} else if (unlink(path)) {
		err("nic %s: %s: %s", dev, path, strerror(errno));
		bad++;
	}
	return bad ? EXIT_REFUSED : EXIT_DONE;
}

static int cmd_nic(int argc, char **argv)
{
	const char *dev = NULL, *dir = getenv("FASTSOCKET_STATE_DIR");
	char out[NIC_OUT], path[PATH_MAX], buf[64];
	bool dry = false, undo = false, hook = false;
	long max_comb, max_rx, cur, q;
	int i, ncpu, low, high, bad = 0, classes, rc;
	unsigned int bits;
	struct nic_step *s;
	FILE *state = NULL;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--dry-run"))
			dry = true;
		else if (!strcmp(argv[i], "--undo"))
			undo = true;
		else if (!strcmp(argv[i], "--state-dir") && i + 1 < argc)
			dir = argv[++i];
		else if (argv[i][0] == '-' || dev) {
			err("nic: unexpected '%s' (fastsocket nic DEV [--dry-run] [--undo] [--state-dir DIR])",
			    argv[i]);
			return EXIT_USAGE;
		} else
			dev = argv[i];
	}
	if (!dev || !*dev || strlen(dev) >= 16 || strchr(dev, '/') ||
	    strchr(dev, ' ')) {
		err("nic: which device? (fastsocket nic DEV [--dry-run] [--undo])");
		return EXIT_USAGE;
	}
	if (!if_nametoindex(dev)) {
		err("nic: no network device '%s' in this namespace", dev);
		return EXIT_USAGE;
	}
	if (!dir || !*dir)
		dir = "/var/lib/fastsocket";
	snprintf(path, sizeof(path), "%s/nic-%s.state", dir, dev);
	if (nic_exec("ethtool --version", out, sizeof(out))) {
		err("nic: ethtool not found (apt-get install ethtool)");
		return EXIT_ABSENT;
	}
	if (undo) {
		if (dry) {
			err("nic: --undo and --dry-run do not go together");
			return EXIT_USAGE;
		}
		rc = nic_undo(dev, path);
		if (rc != EXIT_USAGE)
			nic_print(dev, false, 0, 0, 0, 0, false);
		return rc;
	}
	if (!dry && !access(path, F_OK)) {
		err("nic %s: already set up (%s); run fastsocket nic %s --undo first",
		    dev, path, dev);
		return EXIT_USAGE;
	}

	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (fs_sysctl_read(FS_CLASS_BITS, buf, sizeof(buf)) == 0)
		bits = (unsigned int)strtoul(buf, NULL, 10);
	else
		bits = fs_class_bits_default(sysconf(_SC_NPROCESSORS_CONF));
	if (fs_read_file("/proc/sys/net/ipv4/ip_local_port_range", buf,
			 sizeof(buf)) || sscanf(buf, "%d %d", &low, &high) != 2) {
		err("nic: cannot read net.ipv4.ip_local_port_range");
		return EXIT_REFUSED;
	}

	/* channels: one RX queue per CPU, as far as the NIC goes */
	q = 0;
	if (nic_query("-l", dev, out, sizeof(out))) {
		s = nic_step("channels", "cannot");
		snprintf(s->detail, sizeof(s->detail),
			 "the driver does not report its queues (ethtool -l)");
	} else {
		const char *kind = "combined";

		max_comb = nic_field(out, "maximums:", "Combined:");
		max_rx = nic_field(out, "maximums:", "RX:");
		cur = nic_field(out, "Current hardware settings:", "Combined:");
		if (max_comb <= 0) {
			kind = "rx";
			max_comb = max_rx;
			cur = nic_field(out, "Current hardware settings:",
					"RX:");
		}
		q = max_comb < ncpu ? max_comb : ncpu;
		s = nic_step("channels", "planned");
		if (q > 0 && cur < 0) {
			s->status = "cannot";
			q = 0;
			snprintf(s->detail, sizeof(s->detail),
				 "ethtool -l shows no current %s count", kind);
		} else if (q <= 0) {
			s->status = "cannot";
			q = 0;
			snprintf(s->detail, sizeof(s->detail),
				 "no RX or combined channels to set");
		} else {
			snprintf(s->cmd, sizeof(s->cmd), "ethtool -L %s %s %ld",
				 dev, kind, q);
			snprintf(s->undo, sizeof(s->undo),
				 "ethtool -L %s %s %ld", dev, kind, cur);
			snprintf(s->detail, sizeof(s->detail),
				 "%ld %s queue(s) for %d CPU(s), NIC maximum %ld",
				 q, kind, ncpu, max_comb);
			if (cur == q)
				s->status = "skipped";
			if (q < ncpu)
				hook = true;
		}
	}

	/* irq: queue q's interrupt on CPU q */
	if (!nic_plan_irqs(dev, ncpu)) {
		s = nic_step("irq", "cannot");
		snprintf(s->detail, sizeof(s->detail),
			 "no RX interrupt named after %s in /proc/interrupts; set smp_affinity_list by hand",
			 dev);
		hook = true;
	}

	/* rss: spread over the queues, for the passive side */
	s = nic_step("rss", "planned");
	if (q == 1) {
		s->status = "skipped";
		snprintf(s->detail, sizeof(s->detail),
			 "one queue: nothing to spread over");
	} else if (q > 1 &&
		   nic_query("-x", dev, out, sizeof(out))) {
		s->status = "cannot";
		snprintf(s->detail, sizeof(s->detail),
			 "no RSS indirection table (ethtool -x)");
		hook = true;
	} else if (q > 1) {
		snprintf(s->cmd, sizeof(s->cmd), "ethtool -X %s equal %ld",
			 dev, q);
		snprintf(s->undo, sizeof(s->undo), "ethtool -X %s default",
			 dev);
	} else {
		s->status = "cannot";
		snprintf(s->detail, sizeof(s->detail), "no queues to spread over");
	}

	/* ntuple: one masked dst-port rule per class and IP version */
	classes = 1 << bits;
	if (classes > q)
		classes = (int)q;
	if (nic_query("-k", dev, out, sizeof(out)) ||
	    !strstr(out, "ntuple-filters:")) {
		s = nic_step("ntuple", "cannot");
		snprintf(s->detail, sizeof(s->detail),
			 "the driver reports no ntuple-filters feature");
		classes = 0;
	} else if (strstr(out, "ntuple-filters: off [fixed]")) {
		s = nic_step("ntuple", "cannot");
		snprintf(s->detail, sizeof(s->detail),
			 "ntuple filters: off [fixed] in this driver");
		classes = 0;
	} else if (low < 32768) {
		s = nic_step("ntuple", "cannot");
		snprintf(s->detail, sizeof(s->detail),
			 "ip_local_port_range starts at %d, below 32768: a masked rule would catch listening ports",
			 low);
		classes = 0;
	} else if (strstr(out, "ntuple-filters: off")) {
		s = nic_step("ntuple", "planned");
		snprintf(s->cmd, sizeof(s->cmd), "ethtool -K %s ntuple on", dev);
		snprintf(s->undo, sizeof(s->undo), "ethtool -K %s ntuple off",
			 dev);
	}
	if (!classes)
		hook = true;
	for (i = 0; i < classes * 2; i++) {
		/* ethtool's "m" marks the bits to ignore */
		unsigned int care = 0x8000 | ((1U << bits) - 1) << 1 | 1;
		unsigned int want = 0x8000 | (unsigned int)(i / 2) << 1 |
				    (low & 1);

		s = nic_step("rule", "planned");
		snprintf(s->cmd, sizeof(s->cmd),
			 "ethtool -N %s flow-type %s dst-port %u m 0x%x action %d",
			 dev, i % 2 ? "tcp6" : "tcp4", want, ~care & 0xffff,
			 i / 2);
		snprintf(s->detail, sizeof(s->detail),
			 "class %d: ports >= 32768 with (port >> 1) & %u == %d",
			 i / 2, (1U << bits) - 1, i / 2);
	}

	if (!dry) {
		if (mkdir(dir, 0755) && errno != EEXIST) {
			err("nic: %s: %s", dir, strerror(errno));
			return EXIT_REFUSED;
		}
		state = fopen(path, "wxe");
		if (!state) {
			err("nic: %s: %s", path, strerror(errno));
			return EXIT_REFUSED;
		}
		fprintf(state, "# fastsocket nic %s: what undoes each change, oldest first\n",
			dev);
		fflush(state);
	}
	for (i = 0; !dry && i < nic_nsteps; i++) {
		s = &nic_steps[i];
		if (strcmp(s->status, "planned"))
			continue;
		if (*s->undo) {
			fprintf(state, "%s\n", s->undo);
			fflush(state);
			fsync(fileno(state));
		}
		if (nic_do(s->cmd, out, sizeof(out))) {
			out[strcspn(out, "\n")] = '\0';
			snprintf(s->detail, sizeof(s->detail), "%.200s", out);
			if (strcmp(s->what, "rule")) {
				s->status = "failed";
				bad++;
				continue;
			}
			/*
			 * Masked port rules are the driver's to refuse (ixgbe,
			 * i40e and ice take no partial masks): say so, try no
			 * more of them, and leave it to the software hook.
			 */
			s->status = "cannot";
			hook = true;
			for (int j = i + 1; j < nic_nsteps; j++)
				if (!strcmp(nic_steps[j].what, "rule") &&
				    !strcmp(nic_steps[j].status, "planned")) {
					nic_steps[j].status = "skipped";
					snprintf(nic_steps[j].detail,
						 sizeof(nic_steps[j].detail),
						 "the driver refused the first rule");
				}
			continue;
		}
		s->status = "done";
		if (!strcmp(s->what, "rule")) {
			unsigned int id;
			const char *p = strstr(out, "rule with ID ");

			if (p && sscanf(p, "rule with ID %u", &id) == 1) {
				fprintf(state, "ethtool -N %s delete %u\n", dev,
					id);
				fflush(state);
				fsync(fileno(state));
			}
		}
	}
	if (state)
		fclose(state);
	nic_print(dev, dry, ncpu, bits, low, high, hook);
	if (bad)
		err("nic %s: %d step(s) failed; fastsocket nic %s --undo puts back what was done",
		    dev, bad, dev);
	return bad ? EXIT_REFUSED : EXIT_DONE;
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
	{ "nic", cmd_nic, "nic DEV [--dry-run] [--undo] [--state-dir DIR]" },
	{ "run", cmd_run,
	  "run [--ports SET] [--active] [--debug] [--quiet] [--] CMD [ARG...]" },
	{ "help", cmd_help, "help" },
	{ NULL, NULL, NULL },
};

static int usage(FILE *f)
{
	const struct command *c;

	fprintf(f, "usage: fastsocket [-j|--json] [-p|--pretty] COMMAND [ARGS]\n"
		"       fastsocket --version\n");
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
		} else if (cmd < 0 && !strcmp(a, "--version")) {
			printf("fastsocket %s\n", FS_VERSION);
			return EXIT_DONE;
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
