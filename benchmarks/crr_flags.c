// SPDX-License-Identifier: GPL-2.0
/*
 * crr - command line flags, in the style of neper's flags: every flag of
 * both roles is defined once, in crr_flags[] below, with its name, value,
 * the options field it sets, its parser and its help text. The
 * getopt_long() options and the option lines of --help are derived from
 * the table.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "crr.h"

/* Command line error: message, hint, exit status 2. */
void __noreturn __printf(1, 2) bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "crr%s%s: ", *role ? " " : "", role);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'crr%s%s --help'.\n", *role ? " " : "", role);
	exit(2);
}

long long parse_int(const char *opt, const char *s, long long min,
		    long long max)
{
	long long v;
	char *end;

	errno = 0;
	v = strtoll(s, &end, 0);
	if (errno || end == s || *end || v < min || v > max)
		bad_usage("invalid value '%s' for %s (expected an integer %lld..%lld)",
			  s, opt, min, max);
	return v;
}

/* getopt_long() reported @c (':' missing value, '?' unknown option). */
static void __noreturn bad_option(int c, char **argv)
{
	char buf[3] = { '-', (char)optopt, 0 };
	const char *opt = optopt > 0 && optopt < 128 ? buf : argv[optind - 1];

	if (c == ':')
		bad_usage("option '%s' needs a value", opt);
	bad_usage("unknown option '%s'", opt);
}

double parse_secs(const char *opt, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 1e7)
		bad_usage("invalid value '%s' for %s (expected seconds > 0)",
			  s, opt);
	return v;
}

/* ---------------------------------------------------------------------- */
/* Parsers: set the field of a flag from its value                        */
/* ---------------------------------------------------------------------- */

static void flag_bool(const struct flag *fl, void *field, const char *opt,
		      const char *arg)
{
	(void)fl;
	(void)opt;
	(void)arg;
	*(bool *)field = true;
}

static void flag_int(const struct flag *fl, void *field, const char *opt,
		     const char *arg)
{
	*(int *)field = parse_int(opt, arg, fl->min, fl->max);
}

static void flag_size(const struct flag *fl, void *field, const char *opt,
		      const char *arg)
{
	*(size_t *)field = parse_int(opt, arg, fl->min, fl->max);
}

static void flag_u64(const struct flag *fl, void *field, const char *opt,
		     const char *arg)
{
	*(uint64_t *)field = parse_int(opt, arg, fl->min, fl->max);
}

static void flag_secs(const struct flag *fl, void *field, const char *opt,
		      const char *arg)
{
	(void)fl;
	*(double *)field = parse_secs(opt, arg);
}

static void flag_str(const struct flag *fl, void *field, const char *opt,
		     const char *arg)
{
	(void)fl;
	(void)opt;
	*(const char **)field = arg;
}

/* An integer in range, kept as the string (client --port). */
static void flag_int_str(const struct flag *fl, void *field,
			 const char *opt, const char *arg)
{
	parse_int(opt, arg, fl->min, fl->max);
	*(const char **)field = arg;
}

/* client --duration: also records that it was given. */
static void flag_duration(const struct flag *fl, void *field,
			  const char *opt, const char *arg)
{
	flag_secs(fl, field, opt, arg);
	container_of(field, struct cli_opts, duration)->duration_set = true;
}

/* server --mode */
static void flag_mode(const struct flag *fl, void *field, const char *opt,
		      const char *arg)
{
	enum srv_mode *mode = field;

	(void)fl;
	(void)opt;
	if (!strcmp(arg, "fork"))
		*mode = MODE_FORK;
	else if (!strcmp(arg, "thread"))
		*mode = MODE_THREAD;
	else if (!strcmp(arg, "reuseport"))
		*mode = MODE_REUSEPORT;
	else
		bad_usage("unknown --mode '%s' (fork, thread or reuseport)",
			  arg);
}

/* ---------------------------------------------------------------------- */
/* The flags, in --help order                                             */
/* ---------------------------------------------------------------------- */

/*
 * Server flag: name, value name in --help (NULL: takes none), the
 * srv_opts field it sets, parser, integer range, help text.
 */
#define SFLAG(name, arg, field, parse, min, max, help) \
	{ ROLE_SERVER, name, 0, arg, offsetof(struct srv_opts, field), \
	  parse, min, max, help }
/* Client flag: the same, cli_opts field. */
#define CFLAG(name, arg, field, parse, min, max, help) \
	{ ROLE_CLIENT, name, 0, arg, offsetof(struct cli_opts, field), \
	  parse, min, max, help }

static const struct flag crr_flags[] = {
	SFLAG("mode", "M", mode, flag_mode, 0, 0,
	      "fork (default): one listener, N forked epoll workers\n"
	      "thread: one listener, N threads with own epoll loops\n"
	      "reuseport: one SO_REUSEPORT listener per worker process"),
	SFLAG("workers", "N", workers, flag_int, 1, MAX_WORKERS,
	      "workers (default: number of usable CPUs)"),
	SFLAG("exclusive", NULL, exclusive, flag_bool, 0, 0,
	      "register the shared listener with EPOLLEXCLUSIVE"),
	SFLAG("pin", NULL, pin, flag_bool, 0, 0,
	      "pin worker i to CPU i % ncpu"),
	SFLAG("incoming-cpu", NULL, incoming_cpu, flag_bool, 0, 0,
	      "(reuseport) pin worker i to CPU i and set\n"
	      "SO_INCOMING_CPU=i on its listener before listen()"),
	SFLAG("fastsocket", NULL, fastsocket, flag_bool, 0, 0,
	      "setsockopt(IPPROTO_TCP, TCP_FASTSOCKET=100, 1) on the\n"
	      "listener(s); warns and continues on ENOPROTOOPT"),
	SFLAG("keepalive", NULL, keepalive, flag_bool, 0, 0,
	      "serve requests on a connection until the client closes"),
	SFLAG("close-first", NULL, close_first, flag_bool, 0, 0,
	      "close each connection right after its response, so\n"
	      "that the server's side goes to TIME_WAIT (HTTP/1.0,\n"
	      "Connection: close); not with --keepalive"),
	SFLAG("addr", "A", addr, flag_str, 0, 0,
	      "address to bind (default 127.0.0.1; IPv6 e.g. ::1)"),
	SFLAG("port", "P", port, flag_int, 0, 65535,
	      "port (default 0: kernel picks); printed as port=P"),
	SFLAG("backlog", "B", backlog, flag_int, 1, INT_MAX,
	      "listen backlog (default 1024)"),
	SFLAG("req-size", "B", req_size, flag_size, 1, MAX_MSG_SIZE,
	      "request size in bytes (default 64)"),
	SFLAG("resp-size", "B", resp_size, flag_size, 1, MAX_MSG_SIZE,
	      "response size in bytes (default 64)"),

	CFLAG("host", "H", host, flag_str, 0, 0,
	      "server address or name (default 127.0.0.1; IPv6 ok)"),
	CFLAG("port", "P", port, flag_int_str, 1, 65535,
	      "server port (required)"),
	CFLAG("threads", "T", threads, flag_int, 1, MAX_THREADS,
	      "threads, one epoll loop each (default: usable CPUs)"),
	CFLAG("flows", "F", flows, flag_int, 1, MAX_FLOWS,
	      "concurrent connections per thread (default 8)"),
	CFLAG("duration", "S", duration, flag_duration, 0, 0,
	      "run for S seconds (float; default 5 unless --count)"),
	CFLAG("count", "N", count, flag_u64, 1, LLONG_MAX,
	      "stop after N connections (transactions with\n"
	      "--keepalive); with --duration, whichever comes first"),
	CFLAG("timeout", "S", timeout, flag_secs, 0, 0,
	      "give up on a transaction after S seconds (default 5)"),
	CFLAG("pin", NULL, pin, flag_bool, 0, 0,
	      "pin thread i to CPU i % ncpu"),
	CFLAG("keepalive", NULL, keepalive, flag_bool, 0, 0,
	      "reuse connections: report tps, latency per transaction"),
	CFLAG("linger0", NULL, linger0, flag_bool, 0, 0,
	      "close with SO_LINGER {1,0}: RST, no TIME_WAIT"),
	CFLAG("fastsocket", NULL, fastsocket, flag_bool, 0, 0,
	      "setsockopt(IPPROTO_TCP, TCP_FASTSOCKET=100, 1) on each\n"
	      "socket before connect(); warns once on ENOPROTOOPT"),
	CFLAG("req-size", "B", req_size, flag_size, 1, MAX_MSG_SIZE,
	      "request size in bytes (default 64)"),
	CFLAG("resp-size", "B", resp_size, flag_size, 1, MAX_MSG_SIZE,
	      "response size in bytes (default 64)"),
	CFLAG("csv", "FILE", csv, flag_str, 0, 0,
	      "also append a CSV row (header if FILE is new/empty)"),
	CFLAG("label", "STR", label, flag_str, 0, 0,
	      "value of the CSV label column (default empty)"),
	CFLAG("meter", NULL, meter, flag_bool, 0, 0,
	      "mark the timed phase (meter_begin/meter_end no-ops)\n"
	      "for the locality meter, benchmarks/meter/"),

	{ ROLE_SERVER | ROLE_CLIENT, "help", 'h', NULL, 0, NULL, 0, 0,
	  "this help" },
};

#define NFLAGS		(sizeof(crr_flags) / sizeof(crr_flags[0]))
#define FLAG_VAL	256	/* getopt_long() val of crr_flags[i]: +i */
#define HELP_COL	20	/* help text starts in this column */

/* Option lines of --help for the flags of @roles. */
void flags_usage(FILE *f, unsigned int roles)
{
	const struct flag *fl;
	const char *h, *nl;
	char head[64];

	for (fl = crr_flags; fl < crr_flags + NFLAGS; fl++) {
		if (!(fl->roles & roles))
			continue;
		if (fl->short_name)
			snprintf(head, sizeof(head), "-%c, --%s",
				 fl->short_name, fl->name);
		else if (fl->arg)
			snprintf(head, sizeof(head), "--%s %s", fl->name,
				 fl->arg);
		else
			snprintf(head, sizeof(head), "--%s", fl->name);
		fprintf(f, "  %-*s ", HELP_COL - 3, head);
		for (h = fl->help; (nl = strchr(h, '\n')); h = nl + 1)
			fprintf(f, "%.*s\n%*s", (int)(nl - h), h, HELP_COL,
				"");
		fprintf(f, "%s\n", h);
	}
}

/* The flag getopt_long() returned @c for, or NULL. */
static const struct flag *flag_of(int c, unsigned int roles)
{
	const struct flag *fl;

	if (c >= FLAG_VAL && c < FLAG_VAL + (int)NFLAGS)
		return &crr_flags[c - FLAG_VAL];
	for (fl = crr_flags; fl < crr_flags + NFLAGS; fl++)
		if (fl->short_name && fl->short_name == c &&
		    (fl->roles & roles))
			return fl;
	return NULL;
}

/*
 * Parse the flags of @roles into @opts (struct srv_opts or cli_opts);
 * --help prints @usage to stdout and exits 0, a bad command line exits 2.
 */
void flags_parse(unsigned int roles, void *opts, int argc, char **argv,
		 void (*usage)(FILE *f))
{
	struct option lopts[NFLAGS + 1];
	char shorts[NFLAGS + 2] = ":", opt[64];
	const struct flag *fl;
	int c, n = 0, ns = 1;

	for (fl = crr_flags; fl < crr_flags + NFLAGS; fl++) {
		if (!(fl->roles & roles))
			continue;
		lopts[n].name = fl->name;
		lopts[n].has_arg = fl->arg ? required_argument : no_argument;
		lopts[n].flag = NULL;
		/* A flag with a short alias returns it for both spellings. */
		lopts[n].val = fl->short_name ? fl->short_name :
						FLAG_VAL + (fl - crr_flags);
		n++;
		if (fl->short_name)
			shorts[ns++] = fl->short_name;
	}
	memset(&lopts[n], 0, sizeof(lopts[n]));
	shorts[ns] = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, lopts, NULL)) != -1) {
		fl = flag_of(c, roles);
		if (!fl)
			bad_option(c, argv);
		if (!fl->parse) {
			usage(stdout);
			exit(0);
		}
		snprintf(opt, sizeof(opt), "--%s", fl->name);
		fl->parse(fl, (char *)opts + fl->offset, opt, optarg);
	}
	if (optind < argc)
		bad_usage("unexpected argument '%s'", argv[optind]);
}
