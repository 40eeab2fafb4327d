// SPDX-License-Identifier: GPL-2.0
/*
 * crr - short-connection TCP load tool: connect, request, response, close.
 *
 *   crr server [options]   accept connections, answer one request on each
 *                          (or many with --keepalive), wait for the
 *                          client's close
 *   crr client [options]   drive T threads x F flows of non-blocking
 *                          connections and report connections/s and
 *                          latency percentiles as key=value lines
 *
 * Run "crr server --help" or "crr client --help" for the options.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "crr.h"
#include "meter/meter.h"

/* ---------------------------------------------------------------------- */
/* Small helpers                                                          */
/* ---------------------------------------------------------------------- */

int ncpu;
static int cpu_list[CPU_SETSIZE];

/* CPUs this process may run on; "CPU i" below means the i-th of them. */
void init_cpus(void)
{
	cpu_set_t set;
	long n;
	int i;

	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set))
				cpu_list[ncpu++] = i;
	if (ncpu)
		return;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > CPU_SETSIZE)
		n = CPU_SETSIZE;
	for (i = 0; i < n; i++)
		cpu_list[ncpu++] = i;
}

int cpu_for(int i)
{
	return cpu_list[i % ncpu];
}

/* Pin the calling thread. */
int pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

void __noreturn __printf(1, 2) die(const char *fmt, ...)
{
	va_list ap;

	fputs("crr: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

const char *role = "";

/*
 * Resolve @host/@port to one stream address. Numeric IPv4 and IPv6
 * literals (127.0.0.1, ::1) and host names are accepted.
 */
struct addrinfo *resolve(const char *host, const char *port, bool passive)
{
	struct addrinfo hints, *ai;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc)
		die("cannot resolve '%s' port %s: %s", host, port,
		    gai_strerror(rc));
	return ai;
}

/* ---------------------------------------------------------------------- */

static void main_usage(FILE *f)
{
	fprintf(f,
"Usage: crr server [options]   accept and serve request/response/close\n"
"       crr client [options]   generate short-connection load\n"
"       crr mark {begin|end} [NAME] mark a measured phase for the locality\n"
"                               meter (a no-op without it)\n"
"       crr {server|client} --help\n"
"\n"
"A tcp_crr-style benchmark: each connection does connect, one request of\n"
"--req-size bytes, one response of --resp-size bytes, and close (client\n"
"closes first). --keepalive on both sides measures request/response on\n"
"persistent connections instead. Results are key=value lines on stdout.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		main_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		main_usage(stdout);
		return 0;
	}
	/*
	 * For a client that is not crr (wrk): the phase then also counts the
	 * exec and exit of the client, a constant per run.
	 */
	if (!strcmp(argv[1], "mark")) {
		/* argv[3], if any, names the phase for the caller's logs */
		if (argc >= 3 && argc <= 4 && !strcmp(argv[2], "begin"))
			meter_begin();
		else if (argc >= 3 && argc <= 4 && !strcmp(argv[2], "end"))
			meter_end();
		else
			bad_usage("crr mark wants begin or end");
		return 0;
	}
	init_cpus();
	raise_nofile();
	if (!strcmp(argv[1], "server")) {
		role = "server";
		return server_main(argc - 1, argv + 1);
	}
	if (!strcmp(argv[1], "client")) {
		role = "client";
		return client_main(argc - 1, argv + 1);
	}
	bad_usage("unknown command '%s' (expected server, client or mark)",
		  argv[1]);
}
