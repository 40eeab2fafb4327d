// SPDX-License-Identifier: GPL-2.0
/*
 * libfastsocket.so, the LD_PRELOAD library: an unmodified server run with
 * it gets TCP_FASTSOCKET_ON on its TCP listeners (forked or threaded
 * workers, IPv6, dual stack, inherited from systemd or nginx), and the
 * connections made to them go through the local queues (the counters
 * move by exactly their number); everything else is left as it was:
 * UDP, UNIX and other sockets, FASTSOCKET=0, ports outside
 * FASTSOCKET_PORTS, the application's own TCP_FASTSOCKET_OFF, and errno
 * of every call. Without the module the server still serves and the
 * process tree warns once.
 *
 * The test re-executes itself as the server ("preload --child ..."), with
 * LD_PRELOAD set to the library (FS_PRELOAD_LIB, or the one built beside
 * this binary: ../../tools/libfastsocket.so) and the variables under
 * test, in the network namespace the test made for it. The server prints
 * what it saw ("listen RET ERRNO", "mode M", "port P", ...) on stdout;
 * its stderr goes to a memfd for the library's messages.
 */
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "fs_util.h"
#include "kselftest_harness.h"

#define CONNS		8	/* connections per server */
#define TIMEOUT_MS	20000	/* for one line from the server */

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP	262
#endif

/* ------------------------------------------------ the server (child) */

static int get_mode(int fd)
{
	int mode = -1;
	socklen_t len = sizeof(mode);

	if (getsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET, &mode, &len))
		return -errno;
	return mode;
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

/*
 * Serve until a 'q' connection: each connection sends one byte and gets
 * "k" back. Returns the connections served before the 'q', or -1.
 */
static int serve_loop(int lfd)
{
	int s, n = 0;
	char c;

	for (;;) {
		s = accept(lfd, NULL, NULL);
		if (s < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (read(s, &c, 1) != 1 || write(s, "k", 1) != 1) {
			close(s);
			return -1;
		}
		close(s);
		if (c == 'q')
			return n;
		n++;
	}
}

/* One more TCP listener on port 0: for the warnings' once-only rule. */
static void extra_listen(const char *tag)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), ret;

	errno = EDOM;
	ret = listen(fd, 1);
	out("%s %d %d %d\n", tag, ret, errno, get_mode(fd));
}

static void *serve_thread(void *arg)
{
	out("served %d\n", serve_loop(*(int *)arg));
	return NULL;
}

/*
 * preload --child serve [-f 4|6|dual] [-p PORT] [-u] [-m MODE] [-i] [-x]
 *			 [-w N] [-t N] [-l N] [-n]
 *
 * -f family (dual: [::] with IPV6_V6ONLY off), -p bind port, -u do not
 * bind, -m set TCP_FASTSOCKET to MODE before listen(), -i serve the
 * inherited listener at fd 3 (no listen()), -x report the mode of the
 * inherited non-listening socket at fd 4, -w N forked workers, -t N
 * threads, -l N more listeners (and one per forked worker), -n exit
 * without serving.
 */
static int child_serve(int argc, char **argv)
{
	int opt, family = AF_INET, dual = 0, port = 0, unbound = 0, preset = -1;
	int inherit = 0, other = 0, workers = 0, threads = 0, extra = 0;
	int noserve = 0;
	int fd, one = 1, zero = 0, ret, i, status, bad = 0;
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	pthread_t t[8];
	int lfd;
	pid_t pid;

	while ((opt = getopt(argc, argv, "f:p:um:ixw:t:l:n")) != -1) {
		switch (opt) {
		case 'f':
			dual = !strcmp(optarg, "dual");
			family = strcmp(optarg, "4") ? AF_INET6 : AF_INET;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'u':
			unbound = 1;
			break;
		case 'm':
			preset = atoi(optarg);
			break;
		case 'i':
			inherit = 1;
			break;
		case 'x':
			other = 1;
			break;
		case 'w':
			workers = atoi(optarg);
			break;
		case 't':
			threads = atoi(optarg) < 8 ? atoi(optarg) : 8;
			break;
		case 'l':
			extra = atoi(optarg);
			break;
		case 'n':
			noserve = 1;
			break;
		default:
			return 2;
		}
	}

	if (inherit) {
		fd = 3;
	} else {
		fd = socket(family, SOCK_STREAM, 0);
		if (fd < 0)
			return 3;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (dual && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
				       sizeof(zero)))
			return 4;
		if (preset >= 0 &&
		    setsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET, &preset,
			       sizeof(preset)))
			return 5;
		if (family == AF_INET6) {
			a6.sin6_port = htons(port);
			if (!dual)
				a6.sin6_addr = in6addr_loopback;
			ret = unbound ? 0 : bind(fd, (struct sockaddr *)&a6,
						 sizeof(a6));
		} else {
			a4.sin_port = htons(port);
			a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			ret = unbound ? 0 : bind(fd, (struct sockaddr *)&a4,
						 sizeof(a4));
		}
		if (ret)
			return 6;
		/* A successful listen() must leave errno alone. */
		errno = EDOM;
		ret = listen(fd, 128);
		out("listen %d %d\n", ret, errno);
		if (ret)
			return 7;
	}
	out("fd %d\n", fd);
	out("mode %d\n", get_mode(fd));
	if (other)
		out("mode4 %d\n", get_mode(4));
	out("port %d\n", fs_local_port(fd));
	for (i = 0; i < extra; i++)
		extra_listen("extra");
	out("ready\n");
	if (noserve)
		return 0;

	lfd = fd;
	if (threads) {
		for (i = 0; i < threads; i++)
			if (pthread_create(&t[i], NULL, serve_thread, &lfd))
				return 8;
		for (i = 0; i < threads; i++)
			pthread_join(t[i], NULL);
	} else if (workers) {
		for (i = 0; i < workers; i++) {
			pid = fork();
			if (pid < 0)
				return 9;
			if (!pid) {
				if (extra)
					extra_listen("worker-extra");
				ret = serve_loop(lfd);
				out("served %d\n", ret);
				_exit(ret < 0);
			}
		}
		for (i = 0; i < workers; i++)
			if (wait(&status) < 0 || !WIFEXITED(status) ||
			    WEXITSTATUS(status))
				bad++;
		if (bad)
			return 10;
	} else {
		out("served %d\n", serve_loop(lfd));
	}
	out("done\n");
	return 0;
}

/* "NAME RET ERRNO" for one call, with errno set to EDOM before it. */
#define CALL(name, expr) do {						\
	int __ret;							\
									\
	errno = EDOM;							\
	__ret = (expr);							\
	out("%s %d %d\n", name, __ret, errno);				\
} while (0)

/* A non-TCP socket's listen(); counted, for the debug lines. */
static int nontcp;

static void listen_other(const char *name, int family, int type, int proto)
{
	int fd = socket(family, type, proto);
	struct sockaddr_un un = { .sun_family = AF_UNIX };

	if (fd < 0) {
		out("%s socket %d\n", name, errno);
		return;
	}
	if (family == AF_UNIX) {
		/* abstract name, unique per process */
		snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1,
			 "preload-%d-%d", getpid(), type);
		bind(fd, (struct sockaddr *)&un, sizeof(un));
	}
	nontcp++;
	CALL(name, listen(fd, 1));
	close(fd);
}

static int tcp_socket_at(int port, struct sockaddr_in *a)
{
	*a = (struct sockaddr_in){
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	return socket(AF_INET, SOCK_STREAM, 0);
}

/*
 * preload --child calls: the calls whose results must not depend on the
 * library, each printed as "NAME RET ERRNO"; lines starting "mode" may.
 */
static int child_calls(void)
{
	int udp4, udp6, null, bad, l, c, b, v;
	struct sockaddr_in a, la;
	socklen_t len = sizeof(a);

	/* Non-TCP sockets: listen() fails or works as without us. */
	listen_other("listen-udp4", AF_INET, SOCK_DGRAM, 0);
	listen_other("listen-udp6", AF_INET6, SOCK_DGRAM, 0);
	listen_other("listen-unix", AF_UNIX, SOCK_STREAM, 0);
	listen_other("listen-unix-seqpacket", AF_UNIX, SOCK_SEQPACKET, 0);
	listen_other("listen-unix-dgram", AF_UNIX, SOCK_DGRAM, 0);
	listen_other("listen-raw", AF_INET, SOCK_RAW, IPPROTO_ICMP);
	listen_other("listen-sctp", AF_INET, SOCK_STREAM, IPPROTO_SCTP);
	listen_other("listen-mptcp", AF_INET, SOCK_STREAM, IPPROTO_MPTCP);

	/* The option on a UDP socket after its listen(): still refused. */
	udp4 = socket(AF_INET, SOCK_DGRAM, 0);
	udp6 = socket(AF_INET6, SOCK_DGRAM, 0);
	listen(udp4, 1);
	listen(udp6, 1);
	nontcp += 2;
	out("nontcp %d\n", nontcp);
	len = sizeof(v);
	CALL("getsockopt-udp4", getsockopt(udp4, IPPROTO_TCP, TCP_FASTSOCKET,
					   &v, &len));
	len = sizeof(v);
	CALL("getsockopt-udp6", getsockopt(udp6, IPPROTO_TCP, TCP_FASTSOCKET,
					   &v, &len));

	/* Not sockets at all. */
	null = open("/dev/null", O_RDWR);
	CALL("listen-file", listen(null, 1));
	/* far above what the sockets below will get */
	bad = fcntl(null, F_DUPFD, 500);
	close(bad);
	CALL("listen-closed-fd", listen(bad, 1));

	/* A TCP listener, listen() again (new backlog), and its mode. */
	l = tcp_socket_at(0, &a);
	CALL("bind", bind(l, (struct sockaddr *)&a, sizeof(a)));
	CALL("listen-tcp", listen(l, 4));
	CALL("listen-tcp-again", listen(l, 16));
	out("mode-listener %d\n", get_mode(l));
	len = sizeof(la);
	getsockname(l, (struct sockaddr *)&la, &len);

	/* connect(): works, refuses and fails as without us. */
	c = socket(AF_INET, SOCK_STREAM, 0);
	CALL("connect", connect(c, (struct sockaddr *)&la, sizeof(la)));
	out("mode-connected %d\n", get_mode(c));
	/* listen() on a connected socket fails: the option is put back. */
	v = TCP_FASTSOCKET_DEFAULT;
	setsockopt(c, IPPROTO_TCP, TCP_FASTSOCKET, &v, sizeof(v));
	CALL("listen-connected", listen(c, 1));
	CALL("listen-connected-mode", get_mode(c));
	CALL("connect-again", connect(c, (struct sockaddr *)&la, sizeof(la)));
	close(c);

	b = tcp_socket_at(0, &a);
	bind(b, (struct sockaddr *)&a, sizeof(a));
	len = sizeof(a);
	getsockname(b, (struct sockaddr *)&a, &len);
	c = socket(AF_INET, SOCK_STREAM, 0);
	CALL("connect-refused", connect(c, (struct sockaddr *)&a, sizeof(a)));
	out("mode-refused %d\n", get_mode(c));
	CALL("connect-file", connect(null, (struct sockaddr *)&a, sizeof(a)));
	CALL("connect-closed-fd", connect(bad, (struct sockaddr *)&a,
					  sizeof(a)));
	CALL("connect-short", connect(c, (struct sockaddr *)&a, 2));

	/* An unbound socket's listen() (autobind), then bind(): EINVAL. */
	c = socket(AF_INET, SOCK_STREAM, 0);
	CALL("listen-unbound", listen(c, 1));
	CALL("bind-after-listen", bind(c, (struct sockaddr *)&a, sizeof(a)));
	out("done\n");
	return 0;
}

static int child_main(int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "serve"))
		return child_serve(argc, argv);
	if (argc >= 1 && !strcmp(argv[0], "calls"))
		return child_calls();
	fprintf(stderr, "preload --child: unknown scenario\n");
	return 2;
}

/* ------------------------------------------------ the test (parent) */

struct server {
	pid_t	pid;
	int	out;		/* the server's stdout */
	int	err;		/* memfd behind its stderr */
	size_t	len;
	char	lines[8192];	/* stdout so far */
	char	errtext[8192];	/* stderr, once it exited */
	int	status;
};

/* Path of this binary, for the re-exec. */
static char self_exe[PATH_MAX];
/* The library under test. */
static char lib_path[PATH_MAX];

static int find_paths(void)
{
	ssize_t n;

	n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n < 0)
		return -errno;
	self_exe[n] = '\0';
	return fs_preload_lib(lib_path, sizeof(lib_path));
}

/* dup2() that also works when @fd is already @to (clears CLOEXEC). */
static void move_fd(int fd, int to)
{
	if (fd == to)
		fcntl(fd, F_SETFD, 0);
	else
		dup2(fd, to);
}

/*
 * Start the server: argv "preload --child ARGS...", environment @env
 * (NULL-terminated "NAME=VALUE"s) plus LD_PRELOAD=@preload when not NULL.
 * @fd3, @fd4 when >= 0 are passed as fds 3 and 4; @listen_pid sets
 * LISTEN_PID to the server's own pid (1: to another one).
 */
static int spawn(struct server *s, const char *preload,
		 const char *const *env, int fd3, int fd4, int listen_pid,
		 const char *const *args)
{
	char *argv[32], *envp[32], lp[64], pre[PATH_MAX + 16];
	int p[2], n = 0, e = 0, hi3 = -1, hi4 = -1;

	memset(s, 0, sizeof(*s));
	s->pid = -1;
	s->err = memfd_create("preload-stderr", MFD_CLOEXEC);
	if (s->err < 0 || pipe2(p, O_CLOEXEC))
		return -errno;
	s->out = p[0];

	argv[n++] = "preload";
	argv[n++] = "--child";
	while (*args && n < 31)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
	if (preload) {
		snprintf(pre, sizeof(pre), "LD_PRELOAD=%s", preload);
		envp[e++] = pre;
	}
	while (env && *env && e < 30)
		envp[e++] = (char *)*env++;
	envp[e] = NULL;
	/* Out of the way of 1-4 before the dup2()s. */
	if (fd3 >= 0)
		hi3 = fcntl(fd3, F_DUPFD_CLOEXEC, 100);
	if (fd4 >= 0)
		hi4 = fcntl(fd4, F_DUPFD_CLOEXEC, 100);

	fflush(stdout);
	fflush(stderr);
	s->pid = fork();
	if (s->pid < 0)
		return -errno;
	if (!s->pid) {
		/* Its own process group: the teardown kills all of it. */
		setpgid(0, 0);
		move_fd(p[1], 1);
		move_fd(s->err, 2);
		if (hi3 >= 0)
			move_fd(hi3, 3);
		if (hi4 >= 0)
			move_fd(hi4, 4);
		if (listen_pid) {
			snprintf(lp, sizeof(lp), "LISTEN_PID=%d",
				 listen_pid == 1 ? 1 : getpid());
			envp[e++] = lp;
			envp[e] = NULL;
		}
		execve(self_exe, argv, envp);
		_exit(127);
	}
	close(p[1]);
	if (hi3 >= 0)
		close(hi3);
	if (hi4 >= 0)
		close(hi4);
	return 0;
}

/* How many lines of @text are @line. */
static int count_lines(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;
	int k = 0;

	while ((p = strstr(p, line))) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			k++;
		p += n;
	}
	return k;
}

/* Is @line a whole line of @text? */
static bool has_line(const char *text, const char *line)
{
	return count_lines(text, line) > 0;
}

/*
 * Read the server's stdout until it printed line @line (NULL: until EOF).
 * Returns 0, or -errno on EOF before the line, timeout or overflow.
 */
static int read_until(struct server *s, const char *line)
{
	struct pollfd p = { .fd = s->out, .events = POLLIN };
	ssize_t n;

	for (;;) {
		s->lines[s->len] = '\0';
		if (line && has_line(s->lines, line))
			return 0;
		if (s->len >= sizeof(s->lines) - 1)
			return -ENOSPC;
		if (poll(&p, 1, TIMEOUT_MS) != 1)
			return -ETIMEDOUT;
		n = read(s->out, s->lines + s->len,
			 sizeof(s->lines) - 1 - s->len);
		if (n <= 0)
			return line ? -EPIPE : 0;
		s->len += n;
	}
}

/* The server's exit status, once its stdout is at EOF; stderr read. */
static int finish(struct server *s)
{
	ssize_t n;

	read_until(s, NULL);
	if (waitpid(s->pid, &s->status, 0) != s->pid)
		return -1;
	s->pid = -1;
	n = pread(s->err, s->errtext, sizeof(s->errtext) - 1, 0);
	s->errtext[n > 0 ? n : 0] = '\0';
	close(s->out);
	close(s->err);
	return WIFEXITED(s->status) ? WEXITSTATUS(s->status) : 128;
}

static void kill_server(struct server *s)
{
	if (s->pid > 0) {
		kill(-s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = -1;
	}
}

/* The integer after "KEY " on a line of @text, or -999. */
static long value_in(const char *text, const char *key)
{
	size_t k = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, k) && p[k] == ' ')
			return strtol(p + k + 1, NULL, 10);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -999;
}

static long value(const struct server *s, const char *key)
{
	return value_in(s->lines, key);
}

/* How many times @needle occurs in @hay. */
static int count(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle))) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* Sum of the "served N" lines. */
static int served(const struct server *s)
{
	const char *p = s->lines;
	int n = 0;

	while ((p = strstr(p, "served "))) {
		n += atoi(p + 7);
		p += 7;
	}
	return n;
}

/*
 * One client connection to 127.0.0.1 or ::1 port @port sending @c and
 * waiting for the "k". Returns 0 or -errno.
 */
static int client(int family, int port, char c)
{
	struct timeval tv = { .tv_sec = 10 };
	struct sockaddr_storage ss = { .ss_family = family };
	socklen_t len;
	char k;
	int fd, err = 0;

	if (family == AF_INET6) {
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
		len = sizeof(struct sockaddr_in6);
	} else {
		((struct sockaddr_in *)&ss)->sin_addr.s_addr =
			htonl(INADDR_LOOPBACK);
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
		len = sizeof(struct sockaddr_in);
	}
	fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len) ||
	    write(fd, &c, 1) != 1 || read(fd, &k, 1) != 1 || k != 'k')
		err = errno ? -errno : -EIO;
	close(fd);
	return err;
}

/*
 * The connections for a server with @acceptors acceptors: CONNS plain
 * ones, then one 'q' per acceptor. Returns how many succeeded.
 */
static int clients(int family, int port, int acceptors)
{
	int i, ok = 0;

	for (i = 0; i < CONNS + acceptors; i++)
		ok += !client(family, port, i < CONNS ? 'x' : 'q');
	return ok;
}

/* The counters of this netns that the listen feature moves. */
struct counters {
	long	listen_local, accept_local, accept_stolen;
	long	listen_global, accept_global;
};

static void snap(struct counters *c)
{
	c->listen_local = fs_stat("listen_local", -1);
	c->accept_local = fs_stat("accept_local", -1);
	c->accept_stolen = fs_stat("accept_stolen", -1);
	c->listen_global = fs_stat("listen_global", -1);
	c->accept_global = fs_stat("accept_global", -1);
}

FIXTURE(preload) {
	struct server	srv;
	int		unloaded;	/* this test took the module out */
};

FIXTURE_SETUP(preload)
{
	char buf[64];

	self->srv.pid = -1;
	self->unloaded = 0;
	if (!fs_present())
		SKIP(return, "fastsocket module not loaded");
	ASSERT_EQ(0, find_paths())
		TH_LOG("no libfastsocket.so (FS_PRELOAD_LIB or %s/../../tools): %s",
		       self_exe, strerror(errno));
	ASSERT_EQ(0, fs_new_netns());
	ASSERT_EQ(0, fs_enable_all());
	/* Only TCP_FASTSOCKET_ON, i.e. the library, enables a listener. */
	ASSERT_EQ(0, fs_sysctl_write("ports", "\n"));
	ASSERT_EQ(0, fs_sysctl_read("ports", buf, sizeof(buf)));
	ASSERT_STREQ("", buf);
}

FIXTURE_TEARDOWN(preload)
{
	kill_server(&self->srv);
	if (self->unloaded && !fs_present() && fs_load_module())
		TH_LOG("cannot reload %s", getenv("FS_MODULE"));
}

/*
 * Run a server with the library and @env, make the connections, and check
 * what it reports: listen() returned 0 with errno untouched, the mode
 * read back is @mode, every connection was served, and the counters moved
 * by all of them when @mode is on, by none otherwise.
 */
static void run_server(struct __test_metadata *_metadata, struct server *s,
		       const char *const *env, const char *const *args,
		       int family, int acceptors, int mode)
{
	struct counters c0, c1;
	int port, total = CONNS + acceptors;

	snap(&c0);
	ASSERT_LE(0, c0.listen_local);
	ASSERT_EQ(0, spawn(s, lib_path, env, -1, -1, 0, args));
	ASSERT_EQ(0, read_until(s, "ready")) TH_LOG("server said: %s", s->lines);
	EXPECT_EQ(0, value(s, "listen"));
	/* errno of a successful listen() is the caller's (EDOM) */
	EXPECT_TRUE(strstr(s->lines, "listen 0 33\n") != NULL)
		TH_LOG("server said: %s", s->lines);
	EXPECT_EQ(mode, value(s, "mode"));
	port = value(s, "port");
	ASSERT_LT(0, port);
	EXPECT_EQ(total, clients(family, port, acceptors));
	ASSERT_EQ(0, finish(s)) TH_LOG("server said: %s", s->lines);
	EXPECT_EQ(CONNS, served(s));
	snap(&c1);
	if (mode == TCP_FASTSOCKET_ON) {
		EXPECT_EQ(total, c1.listen_local - c0.listen_local);
		EXPECT_EQ(total, c1.accept_local - c0.accept_local +
				 c1.accept_stolen - c0.accept_stolen);
	} else {
		EXPECT_EQ(0, c1.listen_local - c0.listen_local);
		EXPECT_EQ(0, c1.accept_local - c0.accept_local +
			     c1.accept_stolen - c0.accept_stolen);
	}
	/* With an empty port set nothing else is a Fastsocket listener. */
	EXPECT_EQ(0, c1.listen_global - c0.listen_global);
	EXPECT_EQ(0, c1.accept_global - c0.accept_global);
}

/* One server, and FASTSOCKET_DEBUG's line for its listen(). */
TEST_F_TIMEOUT(preload, listener_enabled, 90)
{
	static const char *const env[] = { "FASTSOCKET_DEBUG=1", NULL };
	static const char *const args[] = { "serve", "-f", "4", NULL };
	char line[128];

	run_server(_metadata, &self->srv, env, args, AF_INET, 1,
		   TCP_FASTSOCKET_ON);
	snprintf(line, sizeof(line),
		 "libfastsocket: listen(fd %ld, AF_INET port %ld): TCP_FASTSOCKET_ON\n",
		 value(&self->srv, "fd"), value(&self->srv, "port"));
	EXPECT_EQ(1, count(self->srv.errtext, line))
		TH_LOG("stderr: %s", self->srv.errtext);
}

/* A listener shared by two forked workers; each one accepts. */
TEST_F_TIMEOUT(preload, forked_workers, 90)
{
	static const char *const args[] = { "serve", "-w", "2", NULL };

	run_server(_metadata, &self->srv, NULL, args, AF_INET, 2,
		   TCP_FASTSOCKET_ON);
	/* Each worker got one of the 'q's and said how many it served. */
	EXPECT_EQ(2, count(self->srv.lines, "served "));
	EXPECT_STREQ("", self->srv.errtext);
}

/* A listener shared by two threads. */
TEST_F_TIMEOUT(preload, threaded_workers, 90)
{
	static const char *const args[] = { "serve", "-t", "2", NULL };

	run_server(_metadata, &self->srv, NULL, args, AF_INET, 2,
		   TCP_FASTSOCKET_ON);
	EXPECT_EQ(2, count(self->srv.lines, "served "));
}

TEST_F_TIMEOUT(preload, ipv6, 90)
{
	static const char *const args[] = { "serve", "-f", "6", NULL };

	run_server(_metadata, &self->srv, NULL, args, AF_INET6, 1,
		   TCP_FASTSOCKET_ON);
}

/* [::] with IPV6_V6ONLY off, reached over IPv4 (v4-mapped). */
TEST_F_TIMEOUT(preload, dual_stack, 90)
{
	static const char *const args[] = { "serve", "-f", "dual", NULL };

	run_server(_metadata, &self->srv, NULL, args, AF_INET, 1,
		   TCP_FASTSOCKET_ON);
}

/*
 * A listener inherited already listening, at fd 3 (@how: "systemd" with
 * LISTEN_FDS/LISTEN_PID, "nginx" with NGINX), next to a TCP socket that is
 * not listening at fd 4. The library turns the first on at load, the
 * kernel attaches it at its first accept(); the second stays as it is.
 */
static void run_inherited(struct __test_metadata *_metadata,
			  struct server *s, const char *const *env,
			  int listen_pid, int mode)
{
	static const char *const args[] = { "serve", "-i", "-x", NULL };
	struct counters c0, c1;
	int lfd, other, port;

	lfd = fs_listen(AF_INET, 128, -1);
	ASSERT_LE(0, lfd);
	ASSERT_EQ(TCP_FASTSOCKET_DEFAULT, get_mode(lfd));
	other = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_LE(0, other);
	port = fs_local_port(lfd);
	snap(&c0);
	ASSERT_EQ(0, spawn(s, lib_path, env, lfd, other, listen_pid, args));
	close(lfd);
	close(other);
	ASSERT_EQ(0, read_until(s, "ready")) TH_LOG("server said: %s", s->lines);
	EXPECT_EQ(mode, value(s, "mode"));
	EXPECT_EQ(TCP_FASTSOCKET_DEFAULT, value(s, "mode4"));
	EXPECT_EQ(port, value(s, "port"));
	/* In accept(), so its local queues take the first connection. */
	ASSERT_EQ(0, fs_wait_pid_sleeping(s->pid));
	EXPECT_EQ(CONNS + 1, clients(AF_INET, port, 1));
	ASSERT_EQ(0, finish(s)) TH_LOG("server said: %s", s->lines);
	EXPECT_EQ(CONNS, served(s));
	snap(&c1);
	/*
	 * Queues attached to a listener already hashed take children at
	 * once: every connection is queued locally. Not a Fastsocket
	 * listener: none.
	 */
	if (mode == TCP_FASTSOCKET_ON) {
		EXPECT_EQ(CONNS + 1, c1.listen_local - c0.listen_local);
		EXPECT_EQ(0, c1.listen_global - c0.listen_global);
		EXPECT_EQ(CONNS + 1, c1.accept_local - c0.accept_local +
				     c1.accept_stolen - c0.accept_stolen +
				     c1.accept_global - c0.accept_global);
	} else {
		EXPECT_EQ(0, c1.listen_local - c0.listen_local);
		EXPECT_EQ(0, c1.listen_global - c0.listen_global);
	}
}

TEST_F_TIMEOUT(preload, systemd_listen_fds, 90)
{
	static const char *const env[] = {
		"LISTEN_FDS=2", "FASTSOCKET_DEBUG=1", NULL,
	};

	run_inherited(_metadata, &self->srv, env, 2, TCP_FASTSOCKET_ON);
	EXPECT_EQ(1, count(self->srv.errtext, "LISTEN_FDS(fd 3, AF_INET port "))
		TH_LOG("stderr: %s", self->srv.errtext);
	EXPECT_EQ(1, count(self->srv.errtext, "(fd 4, AF_INET port 0): not listening, untouched"))
		TH_LOG("stderr: %s", self->srv.errtext);

	/* LISTEN_PID names another process: not ours to touch. */
	run_inherited(_metadata, &self->srv, env, 1, TCP_FASTSOCKET_DEFAULT);
}

TEST_F_TIMEOUT(preload, nginx_inherited, 90)
{
	static const char *const env[] = { "NGINX=3;4;", NULL };

	run_inherited(_metadata, &self->srv, env, 0, TCP_FASTSOCKET_ON);
}

/* Drop the lines starting with "mode": they may differ. */
static void strip_modes(char *text)
{
	char *p = text, *nl;

	while (*p) {
		nl = strchr(p, '\n');
		if (!nl)
			break;
		if (!strncmp(p, "mode", 4))
			memmove(p, nl + 1, strlen(nl + 1) + 1);
		else
			p = nl + 1;
	}
}

/*
 * The "calls" child without the library (its output into @vanilla), then
 * with it and @env (into the server).
 */
static void run_calls(struct __test_metadata *_metadata, struct server *s,
		      char *vanilla, size_t len, const char *const *env)
{
	static const char *const args[] = { "calls", NULL };

	ASSERT_EQ(0, spawn(s, NULL, NULL, -1, -1, 0, args));
	ASSERT_EQ(0, finish(s)) TH_LOG("server said: %s", s->lines);
	EXPECT_STREQ("", s->errtext);
	snprintf(vanilla, len, "%s", s->lines);
	ASSERT_EQ(0, spawn(s, lib_path, env, -1, -1, 0, args));
	ASSERT_EQ(0, finish(s)) TH_LOG("server said: %s", s->lines);
}

/*
 * listen() and connect() return and set errno exactly as without the
 * library, failing or not. FASTSOCKET_ACTIVE enables connecting TCP
 * sockets; a listen() or connect() that fails leaves the option as it was.
 */
TEST_F_TIMEOUT(preload, errno_preserved, 90)
{
	static const char *const env[] = {
		"FASTSOCKET_ACTIVE=1", "FASTSOCKET_DEBUG=1", NULL,
	};
	static const char *const expect[] = {
		"listen-udp4 -1 95", "listen-file -1 88",
		"listen-closed-fd -1 9", "listen-tcp 0 33",
		"listen-tcp-again 0 33", "listen-connected -1 22",
		"listen-connected-mode 0 33", "connect 0 33",
		"connect-refused -1 111",
		"connect-file -1 88", "connect-closed-fd -1 9",
		"connect-short -1 22", "listen-unbound 0 33",
		"bind-after-listen -1 22", "done",
	};
	char vanilla[sizeof(self->srv.lines)], with[sizeof(self->srv.lines)];
	struct server *s = &self->srv;
	unsigned int i;

	run_calls(_metadata, s, vanilla, sizeof(vanilla), env);
	/* The calls fail as they should without the library... */
	for (i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		EXPECT_TRUE(has_line(vanilla, expect[i]))
			TH_LOG("without the library, no line %u in:\n%s", i,
			       vanilla);
	/* ...the library enables the listener... */
	EXPECT_EQ(TCP_FASTSOCKET_DEFAULT, value_in(vanilla, "mode-listener"));
	EXPECT_EQ(TCP_FASTSOCKET_ON, value(s, "mode-listener"));
	/* ...and the connecting socket, but not one whose connect failed... */
	EXPECT_EQ(TCP_FASTSOCKET_DEFAULT, value_in(vanilla, "mode-connected"));
	EXPECT_EQ(TCP_FASTSOCKET_ON, value(s, "mode-connected"));
	EXPECT_EQ(TCP_FASTSOCKET_DEFAULT, value(s, "mode-refused"));
	/* ...and nothing else differs. */
	snprintf(with, sizeof(with), "%s", s->lines);
	strip_modes(vanilla);
	strip_modes(with);
	EXPECT_STREQ(vanilla, with);
	/* listen-connected, connect-again, connect-refused, connect-short */
	EXPECT_EQ(4, count(s->errtext, "): TCP_FASTSOCKET put back"))
		TH_LOG("stderr: %s", s->errtext);
}

/*
 * UDP, UNIX, raw (and SCTP, MPTCP where this kernel has them) sockets are
 * not touched: listen() and the option behave as without the library,
 * and FASTSOCKET_DEBUG says each one was left alone.
 */
TEST_F_TIMEOUT(preload, non_tcp_untouched, 90)
{
	static const char *const env[] = { "FASTSOCKET_DEBUG=1", NULL };
	char vanilla[sizeof(self->srv.lines)], with[sizeof(self->srv.lines)];
	struct server *s = &self->srv;
	long nontcp;

	run_calls(_metadata, s, vanilla, sizeof(vanilla), env);
	EXPECT_TRUE(has_line(vanilla, "listen-unix 0 33"));
	EXPECT_TRUE(has_line(vanilla, "listen-unix-dgram -1 95"));
	EXPECT_TRUE(has_line(vanilla, "listen-raw -1 95"));
	snprintf(with, sizeof(with), "%s", s->lines);
	strip_modes(vanilla);
	strip_modes(with);
	EXPECT_STREQ(vanilla, with);
	/* getsockopt(TCP_FASTSOCKET) on UDP: refused, as without us */
	EXPECT_EQ(-1, value(s, "getsockopt-udp4"));
	EXPECT_EQ(-1, value(s, "getsockopt-udp6"));
	nontcp = value(s, "nontcp");
	EXPECT_LE(7, nontcp);
	EXPECT_EQ(nontcp, count(s->errtext, "): not TCP (type "))
		TH_LOG("stderr: %s", s->errtext);
	EXPECT_EQ(1, count(s->errtext, "AF_UNIX): not TCP (type 1, protocol 0), untouched"))
		TH_LOG("stderr: %s", s->errtext);
	EXPECT_EQ(2, count(s->errtext, "): not a socket ("));
}

/* FASTSOCKET=0: nothing set, nothing said, nothing local. */
TEST_F_TIMEOUT(preload, fastsocket_0, 90)
{
	static const char *const env[] = { "FASTSOCKET=0", NULL };
	static const char *const args[] = { "serve", "-w", "2", NULL };

	run_server(_metadata, &self->srv, env, args, AF_INET, 2,
		   TCP_FASTSOCKET_DEFAULT);
	EXPECT_STREQ("", self->srv.errtext);
}

/* The application's own TCP_FASTSOCKET_OFF is kept. */
TEST_F_TIMEOUT(preload, application_off_kept, 90)
{
	static const char *const args[] = {
		"serve", "-m", "2", "-f", "6", NULL,
	};

	run_server(_metadata, &self->srv, NULL, args, AF_INET6, 1,
		   TCP_FASTSOCKET_OFF);
	EXPECT_STREQ("", self->srv.errtext);
}

/*
 * FASTSOCKET_PORTS: a listener on a port in the set is enabled, one on
 * another port is not, nor is one that listen() binds itself (port 0
 * when the library looks).
 */
TEST_F_TIMEOUT(preload, ports_filter, 120)
{
	static const char *const env[] = {
		"FASTSOCKET_PORTS=80,8000-8100", NULL,
	};
	static const char *const in[] = { "serve", "-p", "8080", NULL };
	static const char *const out[] = { "serve", "-p", "9090", NULL };
	static const char *const unbound[] = { "serve", "-u", NULL };

	run_server(_metadata, &self->srv, env, in, AF_INET, 1,
		   TCP_FASTSOCKET_ON);
	EXPECT_EQ(8080, value(&self->srv, "port"));
	run_server(_metadata, &self->srv, env, out, AF_INET, 1,
		   TCP_FASTSOCKET_DEFAULT);
	EXPECT_EQ(9090, value(&self->srv, "port"));
	run_server(_metadata, &self->srv, env, unbound, AF_INET, 1,
		   TCP_FASTSOCKET_DEFAULT);
	EXPECT_STREQ("", self->srv.errtext);
}

/*
 * FASTSOCKET_PORTS takes what net.fastsocket.ports takes and refuses what
 * it refuses; a refused set is warned about once (not at all with
 * FASTSOCKET_QUIET) and leaves Fastsocket off. Probed with a listener on
 * port 8080, without serving.
 */
TEST_F_TIMEOUT(preload, ports_syntax, 180)
{
	static const struct {
		const char	*set;
		int		mode;	/* of a listener on 8080; -1: refused */
	} cases[] = {
		{ "8080", TCP_FASTSOCKET_ON },
		{ "80,443,8000-8100", TCP_FASTSOCKET_ON },
		{ "0-65535", TCP_FASTSOCKET_ON },
		{ "8080-8080", TCP_FASTSOCKET_ON },
		{ "9,7,8,1-2,65535", TCP_FASTSOCKET_DEFAULT },
		{ "0", TCP_FASTSOCKET_DEFAULT },
		{ "65536", -1 }, { "70000", -1 }, { "abc", -1 },
		{ "80,abc", -1 }, { "100-50", -1 }, { "-5", -1 },
		{ "1-2-3", -1 }, { "80;443", -1 },
	};
	static const char *const args[] = {
		"serve", "-p", "8080", "-l", "1", "-n", NULL,
	};
	char var[64], warning[256], buf[64];
	const char *env[3] = { var, NULL, NULL };
	struct server *s = &self->srv;
	unsigned int i;
	int kernel, refused;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(var, sizeof(var), "FASTSOCKET_PORTS=%s", cases[i].set);
		snprintf(warning, sizeof(warning),
			 "libfastsocket: FASTSOCKET_PORTS='%s' is not a port set (expected e.g. 80,443,8000-8100; ports 0-65535): Fastsocket left off for this process\n",
			 cases[i].set);
		refused = cases[i].mode < 0;
		/* The sysctl agrees (and is put back empty). */
		kernel = fs_sysctl_write("ports", cases[i].set);
		EXPECT_EQ(refused ? -EINVAL : 0, kernel)
			TH_LOG("net.fastsocket.ports <- '%s'", cases[i].set);
		ASSERT_EQ(0, fs_sysctl_write("ports", "\n"));

		ASSERT_EQ(0, spawn(s, lib_path, env, -1, -1, 0, args));
		ASSERT_EQ(0, finish(s)) TH_LOG("server said: %s", s->lines);
		EXPECT_EQ(refused ? TCP_FASTSOCKET_DEFAULT : cases[i].mode,
			  value(s, "mode"))
			TH_LOG("FASTSOCKET_PORTS=%s", cases[i].set);
		EXPECT_STREQ(refused ? warning : "", s->errtext);
	}
	/* FASTSOCKET_QUIET: the same refusal, silently. */
	env[1] = "FASTSOCKET_QUIET=1";
	snprintf(var, sizeof(var), "FASTSOCKET_PORTS=70000");
	ASSERT_EQ(0, spawn(s, lib_path, env, -1, -1, 0, args));
	ASSERT_EQ(0, finish(s)) TH_LOG("server said: %s", s->lines);
	EXPECT_EQ(TCP_FASTSOCKET_DEFAULT, value(s, "mode"));
	EXPECT_STREQ("", s->errtext);
	ASSERT_EQ(0, fs_sysctl_read("ports", buf, sizeof(buf)));
	EXPECT_STREQ("", buf);
}

/*
 * The library preloaded twice, under two paths: the first copy passes
 * through to the second, which alone acts (once, no loop).
 */
TEST_F_TIMEOUT(preload, loaded_twice, 90)
{
	static const char *const env[] = { "FASTSOCKET_DEBUG=1", NULL };
	static const char *const args[] = { "serve", "-w", "2", NULL };
	char copy[] = "/tmp/libfastsocket-copy-XXXXXX.so";
	char both[2 * PATH_MAX + 2], buf[65536];
	struct counters c0, c1;
	int in, outfd, port;
	ssize_t n;

	in = open(lib_path, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, in);
	outfd = mkstemps(copy, 3);
	ASSERT_LE(0, outfd);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ASSERT_EQ(n, write(outfd, buf, n));
	close(in);
	close(outfd);
	snprintf(both, sizeof(both), "%s %s", lib_path, copy);

	snap(&c0);
	ASSERT_EQ(0, spawn(&self->srv, both, env, -1, -1, 0, args));
	ASSERT_EQ(0, read_until(&self->srv, "ready"))
		TH_LOG("server said: %s", self->srv.lines);
	unlink(copy);
	EXPECT_EQ(TCP_FASTSOCKET_ON, value(&self->srv, "mode"));
	port = value(&self->srv, "port");
	EXPECT_EQ(CONNS + 2, clients(AF_INET, port, 2));
	ASSERT_EQ(0, finish(&self->srv));
	snap(&c1);
	EXPECT_EQ(CONNS + 2, c1.listen_local - c0.listen_local);
	EXPECT_EQ(1, count(self->srv.errtext, "loaded twice"))
		TH_LOG("stderr: %s", self->srv.errtext);
	EXPECT_EQ(1, count(self->srv.errtext, ": TCP_FASTSOCKET_ON\n"))
		TH_LOG("stderr: %s", self->srv.errtext);
}

/*
 * Without the module: the option is still set (the kernel attaches the
 * listener once the module is back), the server serves every
 * connection, and the process tree warns exactly once, whatever its
 * listeners and forked workers do; a fresh exec warns once again.
 */
TEST_F_TIMEOUT(preload, module_not_loaded, 150)
{
	static const char *const args[] = {
		"serve", "-w", "2", "-l", "2", NULL,
	};
	static const char *const probe[] = {
		"serve", "-l", "1", "-n", NULL,
	};
	static const char warning[] =
		"libfastsocket: the fastsocket module is not loaded (modprobe fastsocket): listeners run without Fastsocket\n";
	struct server *s = &self->srv;
	int port;

	if (!getenv("FS_MODULE"))
		SKIP(return, "FS_MODULE not set: the module could not be reloaded");
	ASSERT_EQ(0, fs_unload_module());
	self->unloaded = 1;
	ASSERT_FALSE(fs_present());

	ASSERT_EQ(0, spawn(s, lib_path, NULL, -1, -1, 0, args));
	ASSERT_EQ(0, read_until(s, "ready")) TH_LOG("server said: %s", s->lines);
	/* errno survives the library's failed look for the module */
	EXPECT_TRUE(has_line(s->lines, "listen 0 33"));
	EXPECT_EQ(TCP_FASTSOCKET_ON, value(s, "mode"));
	port = value(s, "port");
	EXPECT_EQ(CONNS + 2, clients(AF_INET, port, 2));
	ASSERT_EQ(0, finish(s)) TH_LOG("server said: %s", s->lines);
	EXPECT_EQ(CONNS, served(s));
	/* the master's two extra listeners and one per worker */
	EXPECT_EQ(2, count_lines(s->lines, "extra 0 33 1"));
	EXPECT_EQ(2, count_lines(s->lines, "worker-extra 0 33 1"))
		TH_LOG("server said: %s", s->lines);
	EXPECT_STREQ(warning, s->errtext);

	ASSERT_EQ(0, spawn(s, lib_path, NULL, -1, -1, 0, probe));
	ASSERT_EQ(0, finish(s)) TH_LOG("server said: %s", s->lines);
	EXPECT_STREQ(warning, s->errtext);

	ASSERT_EQ(0, fs_load_module());
	self->unloaded = 0;
	ASSERT_TRUE(fs_present());
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--child"))
		return child_main(argc - 2, argv + 2);
	return test_harness_run(argc, argv);
}
