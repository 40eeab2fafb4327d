// SPDX-License-Identifier: GPL-2.0
/*
 * libfastsocket.so - Fastsocket for unmodified servers, by LD_PRELOAD.
 *
 * A server does not need to know about TCP_FASTSOCKET: this library
 * interposes listen() and sets TCP_FASTSOCKET_ON on every TCP listener
 * (IPv4 or IPv6) just before the real listen(), so that the kernel gives
 * it per-CPU local accept queues from the start. At load it also enables
 * the listeners a server inherited already listening, from systemd socket
 * activation (LISTEN_FDS/LISTEN_PID) or from an nginx binary upgrade
 * (NGINX); the kernel attaches those at their next accept().
 *
 *   FASTSOCKET=0              pass everything through
 *   FASTSOCKET_PORTS=SET      only listeners bound to these local ports
 *                             (80,443,8000-8100: net.fastsocket.ports syntax)
 *   FASTSOCKET_ACTIVE=1       also set TCP_FASTSOCKET_ON on TCP sockets
 *                             before connect(), for receive steering
 *                             (FASTSOCKET_PORTS names listeners only)
 *   FASTSOCKET_DEBUG=1        log every decision to stderr
 *   FASTSOCKET_QUIET=1        no warnings
 *
 * Rules this file keeps, so that it is safe in any server:
 *
 * - The application sees exactly what the real call returns, errno
 *   included: our own getsockopt()/setsockopt() calls run before it, with
 *   the caller's errno saved and restored.
 * - Only AF_INET/AF_INET6 SOCK_STREAM IPPROTO_TCP sockets are touched, as
 *   the kernel reports them (SO_DOMAIN, SO_TYPE, SO_PROTOCOL); a listener
 *   the application set TCP_FASTSOCKET_OFF on keeps its choice.
 * - No stdio, no allocation and no locks on our paths: a server may call
 *   listen() in a child forked from a threaded parent. Messages are
 *   formatted by hand into a stack buffer and go out with one write(2).
 * - Warnings come once per process (a flag that fork() copies, so nginx
 *   workers do not repeat their master's warning; an exec starts over).
 * - Configuration is read once, by the constructor, and the environment
 *   is never modified (the application may read LISTEN_FDS itself).
 *
 * The uapi values and the sysctl paths come from fastsocket.h.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fastsocket.h"

#define FSL_EXPORT	__attribute__((visibility("default")))

/*
 * glibc declares connect()'s address as a transparent union under
 * _GNU_SOURCE; our definition must match, and raw syscall() needs the
 * pointer inside.
 */
#if defined(__GLIBC__) && defined(__USE_GNU) && !defined(__cplusplus)
#define FSL_SOCKADDR_ARG	__CONST_SOCKADDR_ARG
#define FSL_SOCKADDR_PTR(a)	((a).__sockaddr__)
#else
#define FSL_SOCKADDR_ARG	const struct sockaddr *
#define FSL_SOCKADDR_PTR(a)	(a)
#endif

/*
 * Marker that another copy of this library (a second path in LD_PRELOAD,
 * say) finds with dlsym(RTLD_NEXT): see fsl_init().
 */
FSL_EXPORT const char libfastsocket_preload[] = "libfastsocket 1";

/*
 * Initialisation state. The constructor normally initialises before
 * main(), but another library's constructor may call listen() earlier,
 * and dlsym() may call back into us (through a malloc that connects
 * somewhere, say). Whoever moves UNINIT to BUSY initialises; anyone who
 * sees BUSY (that same thread re-entering, or a second thread during
 * those few microseconds) passes straight through with the raw system
 * call rather than wait: waiting could deadlock, and a fork() taken while
 * BUSY would leave the child waiting forever.
 */
enum { FSL_UNINIT, FSL_BUSY, FSL_READY };
static int fsl_state;

static __typeof__(listen) *real_listen;
static __typeof__(connect) *real_connect;

/* Set once by fsl_init(), read only afterwards. */
static struct {
	bool	off;		/* pass everything through */
	bool	active;		/* FASTSOCKET_ACTIVE */
	bool	debug;		/* FASTSOCKET_DEBUG */
	bool	quiet;		/* FASTSOCKET_QUIET */
	bool	filter;		/* FASTSOCKET_PORTS given: only @ports */
	unsigned char ports[65536 / 8];
} cfg;

/*
 * Process-wide flags, atomics because threads call listen() concurrently;
 * plain memory, so a forked child starts with its parent's values.
 */
static int fsl_warned;		/* the "runs without Fastsocket" warning */
static int fsl_no_option;	/* kernel without TCP_FASTSOCKET: stop */
/* a getsockopt(TCP_FASTSOCKET) of a TCP socket succeeded: from then on,
 * its failure means "not a TCP socket" */
static int fsl_option_seen;

/* ------------------------------------------------------------ messages */

/*
 * One message line, built on the stack: snprintf() is not
 * async-signal-safe (locale, and on some libcs allocation), so a few
 * appenders do the formatting. Overlong lines are cut, never overrun.
 */
struct fsl_line {
	size_t	len;
	char	buf[256];
};

static void l_str(struct fsl_line *l, const char *s)
{
	while (*s && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = *s++;
}

static void l_int(struct fsl_line *l, long v)
{
	char tmp[24];
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
	int n = sizeof(tmp);

	tmp[--n] = '\0';
	do {
		tmp[--n] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[--n] = '-';
	l_str(l, tmp + n);
}

/* Write the line with its newline to fd 2; errno is left as it was. */
static void l_emit(struct fsl_line *l)
{
	int saved = errno;
	size_t off = 0;
	ssize_t n;

	l->buf[l->len++] = '\n';	/* l_str() kept one byte free */
	while (off < l->len) {
		n = write(STDERR_FILENO, l->buf + off, l->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += n;
	}
	errno = saved;
}

static void l_start(struct fsl_line *l)
{
	l->len = 0;
	l_str(l, "libfastsocket: ");
}

/* errno names for the messages (strerror() is not async-signal-safe). */
static void l_errno(struct fsl_line *l, int err)
{
	static const struct {
		int		err;
		const char	*name;
	} names[] = {
		{ ENOPROTOOPT, "ENOPROTOOPT" }, { EINVAL, "EINVAL" },
		{ EOPNOTSUPP, "EOPNOTSUPP" }, { ENOTSOCK, "ENOTSOCK" },
		{ EBADF, "EBADF" }, { EPERM, "EPERM" }, { EACCES, "EACCES" },
		{ ENOMEM, "ENOMEM" }, { ENOBUFS, "ENOBUFS" },
	};
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i].err == err) {
			l_str(l, names[i].name);
			return;
		}
	}
	l_str(l, "errno ");
	l_int(l, err);
}

static void l_family(struct fsl_line *l, int family)
{
	switch (family) {
	case AF_INET:
		l_str(l, "AF_INET");
		break;
	case AF_INET6:
		l_str(l, "AF_INET6");
		break;
	case AF_UNIX:
		l_str(l, "AF_UNIX");
		break;
	default:
		l_str(l, "family ");
		l_int(l, family);
	}
}

/* Warnings about the environment: once, unless FASTSOCKET_QUIET. */
static bool fsl_may_warn(void)
{
	return !cfg.quiet;
}

/*
 * Claim the one "listeners run without Fastsocket" warning of this
 * process: true for the first caller only.
 */
static bool fsl_claim_warning(void)
{
	return !__atomic_exchange_n(&fsl_warned, 1, __ATOMIC_RELAXED) &&
	       fsl_may_warn();
}

/* ------------------------------------------------------- configuration */

/* An environment flag: set, non-empty and not "0". */
static bool env_flag(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0");
}

/*
 * FASTSOCKET_PORTS, in the syntax of net.fastsocket.ports; the whole
 * string is checked before cfg.ports is trusted. false when malformed.
 */
static bool parse_ports(const char *s)
{
	return fs_parse_ports(s, cfg.ports);
}

static bool port_wanted(int port)
{
	if (!cfg.filter)
		return true;
	return port >= 0 && port <= 65535 &&
	       (cfg.ports[port / 8] & (1 << (port % 8)));
}

/* ------------------------------------------------------ the socket side */

static int get_int(int fd, int level, int name, int *val)
{
	socklen_t len = sizeof(*val);

	*val = 0;
	return getsockopt(fd, level, name, val, &len);
}

/*
 * Start a message about socket @fd as found by @who ("listen", or
 * "LISTEN_FDS"/"NGINX" for inherited ones): "who(fd N, AF_INET6 port P)".
 */
static void l_sock(struct fsl_line *l, const char *who, int fd, int family,
		   int port)
{
	l_start(l);
	l_str(l, who);
	l_str(l, "(fd ");
	l_int(l, fd);
	l_str(l, ", ");
	l_family(l, family);
	if (port >= 0) {
		l_str(l, " port ");
		l_int(l, port);
	}
	l_str(l, "): ");
}

/* A debug line about socket @fd ending in @what. */
static void debug_sock(const char *who, int fd, int family, int port,
		       const char *what)
{
	struct fsl_line l;

	if (!cfg.debug)
		return;
	l_sock(&l, who, fd, family, port);
	l_str(&l, what);
	l_emit(&l);
}

/*
 * TCP_FASTSOCKET could not be read or set: the listener runs as without
 * this library. ENOPROTOOPT means a kernel without the patches, where no
 * listener will ever take it, so we stop trying.
 */
static void setopt_failed(const char *who, int fd, int family, int port,
			  const char *op, int err)
{
	struct fsl_line l;
	bool warn = fsl_claim_warning();

	if (err == ENOPROTOOPT)
		__atomic_store_n(&fsl_no_option, 1, __ATOMIC_RELAXED);
	if (!warn && !cfg.debug)
		return;
	l_sock(&l, who, fd, family, port);
	l_str(&l, op);
	l_str(&l, " TCP_FASTSOCKET: ");
	l_errno(&l, err);
	if (err == ENOPROTOOPT)
		l_str(&l, " (this kernel has no Fastsocket patches)");
	l_str(&l, ": listeners run without Fastsocket");
	l_emit(&l);
}

/*
 * The option is set, but without fastsocket.ko nothing reads it: say so
 * once, since the administrator expects Fastsocket to be working. The
 * listener keeps TCP_FASTSOCKET_ON: if the module is loaded later, the
 * kernel attaches it at its next accept().
 */
static void check_module(void)
{
	struct fsl_line l;

	if (__atomic_load_n(&fsl_warned, __ATOMIC_RELAXED) ||
	    fs_module_loaded() || !fsl_claim_warning())
		return;
	l_start(&l);
	l_str(&l, "the fastsocket module is not loaded (modprobe fastsocket): listeners run without Fastsocket");
	l_emit(&l);
}

/* What fsl_enable() is asked to enable. */
enum fsl_kind {
	FSL_LISTEN,	/* a socket about to listen() */
	FSL_INHERITED,	/* a socket that must already be listening */
	FSL_ACTIVE,	/* a socket about to connect() */
};

/*
 * Turn TCP_FASTSOCKET_ON on socket @fd if it is a TCP socket this
 * process's configuration covers. @who names the caller for messages;
 * @kind says what the socket is for: FASTSOCKET_PORTS filters listeners
 * only, and an inherited socket must be listening (SO_ACCEPTCONN).
 * Returns true when it changed the option (from TCP_FASTSOCKET_DEFAULT).
 * Clobbers errno: the callers restore it.
 */
static bool fsl_enable(int fd, const char *who, enum fsl_kind kind)
{
	bool changed = false;
	int family, type, proto, listening, mode, port = -1;
	struct fsl_line l;

	if (get_int(fd, SOL_SOCKET, SO_DOMAIN, &family) ||
	    get_int(fd, SOL_SOCKET, SO_TYPE, &type) ||
	    get_int(fd, SOL_SOCKET, SO_PROTOCOL, &proto)) {
		/* Not a socket, or not open: the real call will say. */
		if (cfg.debug) {
			int err = errno;

			l_start(&l);
			l_str(&l, who);
			l_str(&l, "(fd ");
			l_int(&l, fd);
			l_str(&l, "): not a socket (");
			l_errno(&l, err);
			l_str(&l, "), untouched");
			l_emit(&l);
		}
		return false;
	}
	if ((family != AF_INET && family != AF_INET6) ||
	    type != SOCK_STREAM || proto != IPPROTO_TCP) {
		if (cfg.debug) {
			l_sock(&l, who, fd, family, -1);
			l_str(&l, "not TCP (type ");
			l_int(&l, type);
			l_str(&l, ", protocol ");
			l_int(&l, proto);
			l_str(&l, "), untouched");
			l_emit(&l);
		}
		return false;
	}
	port = fs_local_port(fd);
	if (kind == FSL_INHERITED &&
	    (get_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening) || !listening)) {
		debug_sock(who, fd, family, port, "not listening, untouched");
		return false;
	}
	/*
	 * An unbound socket gets its port inside listen(), after us: it
	 * reads as port 0 here, so only a set that names 0 covers it.
	 */
	if (kind != FSL_ACTIVE && !port_wanted(port)) {
		debug_sock(who, fd, family, port,
			   "port not in FASTSOCKET_PORTS, untouched");
		return false;
	}
	if (get_int(fd, IPPROTO_TCP, TCP_FASTSOCKET, &mode)) {
		setopt_failed(who, fd, family, port, "cannot read", errno);
		return false;
	}
	/* Pairs with the load in fsl_enable_active(). */
	__atomic_store_n(&fsl_option_seen, 1, __ATOMIC_RELAXED);
	if (mode == TCP_FASTSOCKET_OFF) {
		debug_sock(who, fd, family, port,
			   "TCP_FASTSOCKET_OFF set by the application, left");
		return false;
	}
	if (mode != TCP_FASTSOCKET_ON) {
		mode = TCP_FASTSOCKET_ON;
		if (setsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET, &mode,
			       sizeof(mode))) {
			setopt_failed(who, fd, family, port, "cannot set",
				      errno);
			return false;
		}
		changed = true;
	}
	debug_sock(who, fd, family, port, "TCP_FASTSOCKET_ON");
	check_module();
	return changed;
}

/*
 * fsl_enable() for a socket about to connect(), in two system calls where
 * the full checks take seven: a proxy connects once per request. Only TCP
 * sockets answer getsockopt(TCP_FASTSOCKET) (UDP, raw, UNIX and MPTCP
 * sockets refuse it), so its success is the TCP check and gives the mode.
 * The first call, a failure before any success, and FASTSOCKET_DEBUG take
 * the full path, which tells a kernel without the option (warned once)
 * from a socket of another kind and checks the module once.
 */
static bool fsl_enable_active(int fd)
{
	int mode;

	/* Pairs with the store in fsl_enable(). */
	if (cfg.debug || !__atomic_load_n(&fsl_option_seen, __ATOMIC_RELAXED))
		return fsl_enable(fd, "connect", FSL_ACTIVE);
	if (get_int(fd, IPPROTO_TCP, TCP_FASTSOCKET, &mode) ||
	    mode != TCP_FASTSOCKET_DEFAULT)
		return false;
	mode = TCP_FASTSOCKET_ON;
	return !setsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET, &mode,
			   sizeof(mode));
}

/* ------------------------------------------------- inherited listeners */

/*
 * systemd socket activation: LISTEN_FDS=n sockets at fds 3..3+n-1, meant
 * for LISTEN_PID only (a child that inherited the variables is not). An
 * n beyond any descriptor table is taken as garbage.
 */
static void enable_systemd(void)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	unsigned long n, p, i;
	struct fsl_line l;

	if (!fds || !pid)
		return;
	if (!fs_parse_num(&pid, INT_MAX, &p) || *pid ||
	    !fs_parse_num(&fds, 65536, &n) || *fds) {
		if (cfg.debug) {
			l_start(&l);
			l_str(&l, "LISTEN_FDS/LISTEN_PID malformed, ignored");
			l_emit(&l);
		}
		return;
	}
	if ((pid_t)p != getpid()) {
		if (cfg.debug) {
			l_start(&l);
			l_str(&l, "LISTEN_PID=");
			l_int(&l, p);
			l_str(&l, " is not this process, LISTEN_FDS ignored");
			l_emit(&l);
		}
		return;
	}
	for (i = 0; i < n; i++)
		fsl_enable((int)(3 + i), "LISTEN_FDS", FSL_INHERITED);
}

/*
 * nginx's binary upgrade: the old master passes its listeners to the new
 * one as NGINX="fd;fd;..." (':' works too); like nginx, stop at the
 * first item that is not a number.
 */
static void enable_nginx(void)
{
	const char *s = getenv("NGINX");
	unsigned long fd;
	struct fsl_line l;

	if (!s)
		return;
	while (*s) {
		if (*s == ';' || *s == ':') {
			s++;
			continue;
		}
		if (!fs_parse_num(&s, INT_MAX, &fd) ||
		    (*s && *s != ';' && *s != ':')) {
			if (cfg.debug) {
				l_start(&l);
				l_str(&l, "NGINX: not an fd list from here: ");
				l_str(&l, s);
				l_emit(&l);
			}
			return;
		}
		fsl_enable((int)fd, "NGINX", FSL_INHERITED);
	}
}

/* ----------------------------------------------------------- set-up */

static void fsl_configure(void)
{
	const char *ports = getenv("FASTSOCKET_PORTS");
	const char *fs = getenv("FASTSOCKET");
	struct fsl_line l;

	cfg.debug = env_flag("FASTSOCKET_DEBUG");
	cfg.quiet = env_flag("FASTSOCKET_QUIET");
	cfg.active = env_flag("FASTSOCKET_ACTIVE");

	/*
	 * Two copies of the library in one process (LD_PRELOAD naming two
	 * paths): RTLD_NEXT already chains their listen()s without a loop,
	 * the first calling the second. Only the last copy in the chain acts,
	 * so that messages and inherited listeners are handled once.
	 */
	if (dlsym(RTLD_NEXT, "libfastsocket_preload")) {
		cfg.off = true;
		if (cfg.debug) {
			l_start(&l);
			l_str(&l, "loaded twice; this copy passes through to the next");
			l_emit(&l);
		}
		return;
	}
	if (fs && !strcmp(fs, "0")) {
		cfg.off = true;
		if (cfg.debug) {
			l_start(&l);
			l_str(&l, "FASTSOCKET=0: passing everything through");
			l_emit(&l);
		}
		return;
	}
	/* Empty means unset: all ports (FASTSOCKET=0 is the way to say none). */
	if (ports && *ports) {
		cfg.filter = true;
		if (!parse_ports(ports)) {
			cfg.off = true;
			if (fsl_may_warn()) {
				l_start(&l);
				l_str(&l, "FASTSOCKET_PORTS='");
				l_str(&l, ports);
				l_str(&l, "' is not a port set (expected e.g. 80,443,8000-8100; ports 0-65535): Fastsocket left off for this process");
				l_emit(&l);
			}
			return;
		}
	}
	if (cfg.debug) {
		l_start(&l);
		l_str(&l, "enabling TCP listeners on ");
		l_str(&l, cfg.filter ? "ports " : "any port");
		if (cfg.filter)
			l_str(&l, ports);
		if (cfg.active)
			l_str(&l, "; FASTSOCKET_ACTIVE");
		l_emit(&l);
	}
}

static void fsl_init(void)
{
	real_listen = dlsym(RTLD_NEXT, "listen");
	real_connect = dlsym(RTLD_NEXT, "connect");
	fsl_configure();
	if (!cfg.off) {
		enable_systemd();
		enable_nginx();
	}
}

/* true once initialised; false: pass through with the raw system call. */
static bool fsl_ready(void)
{
	int st = FSL_UNINIT;

	if (__atomic_load_n(&fsl_state, __ATOMIC_ACQUIRE) == FSL_READY)
		return true;
	if (!__atomic_compare_exchange_n(&fsl_state, &st, FSL_BUSY, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
		return st == FSL_READY;
	fsl_init();
	__atomic_store_n(&fsl_state, FSL_READY, __ATOMIC_RELEASE);
	return true;
}

__attribute__((constructor)) static void fsl_constructor(void)
{
	int saved = errno;

	fsl_ready();
	errno = saved;
}

/* ------------------------------------------------------ interposed calls */

static int next_listen(int fd, int backlog)
{
	if (real_listen)
		return real_listen(fd, backlog);
	return (int)syscall(SYS_listen, fd, backlog);
}

/*
 * The real call failed after fsl_enable() set TCP_FASTSOCKET_ON on @fd:
 * put the option back to TCP_FASTSOCKET_DEFAULT, keeping errno.
 */
static void put_back(int fd, const char *who)
{
	int saved = errno, mode = TCP_FASTSOCKET_DEFAULT;

	setsockopt(fd, IPPROTO_TCP, TCP_FASTSOCKET, &mode, sizeof(mode));
	if (cfg.debug) {
		struct fsl_line l;

		l_start(&l);
		l_str(&l, who);
		l_str(&l, "(fd ");
		l_int(&l, fd);
		l_str(&l, ") failed (");
		l_errno(&l, saved);
		l_str(&l, "): TCP_FASTSOCKET put back");
		l_emit(&l);
	}
	errno = saved;
}

/*
 * The option goes on before the real listen(), so that the kernel attaches
 * the local queues before the listener is hashed. Should listen() then
 * fail (a connected socket, say), the option is put back as it was: a
 * failing call leaves the socket as the application knew it.
 */
FSL_EXPORT int listen(int fd, int backlog)
{
	int saved = errno, ret;
	bool changed;

	if (!fsl_ready())
		return (int)syscall(SYS_listen, fd, backlog);
	if (cfg.off || __atomic_load_n(&fsl_no_option, __ATOMIC_RELAXED))
		return next_listen(fd, backlog);
	changed = fsl_enable(fd, "listen", FSL_LISTEN);
	errno = saved;
	ret = next_listen(fd, backlog);
	if (ret && changed)
		put_back(fd, "listen");
	return ret;
}

static int next_connect(int fd, FSL_SOCKADDR_ARG addr, socklen_t len)
{
	if (real_connect)
		return real_connect(fd, addr, len);
	return (int)syscall(SYS_connect, fd, FSL_SOCKADDR_PTR(addr), len);
}

/*
 * Under FASTSOCKET_ACTIVE, TCP_FASTSOCKET_ON goes on before the real
 * connect(), so that the kernel takes the source port from the connecting
 * CPU's steering class when net.fastsocket.steering is on (and ignores
 * the option otherwise). A connect() that failed, rather than one still
 * in progress, gets the option put back. Without FASTSOCKET_ACTIVE,
 * connect() is a bare pass-through.
 */
FSL_EXPORT int connect(int fd, FSL_SOCKADDR_ARG addr, socklen_t len)
{
	int saved = errno, ret;
	bool changed;

	if (!fsl_ready())
		return (int)syscall(SYS_connect, fd, FSL_SOCKADDR_PTR(addr), len);
	if (!cfg.active || cfg.off ||
	    __atomic_load_n(&fsl_no_option, __ATOMIC_RELAXED))
		return next_connect(fd, addr, len);
	changed = fsl_enable_active(fd);
	errno = saved;
	ret = next_connect(fd, addr, len);
	if (ret && changed && errno != EINPROGRESS && errno != EINTR &&
	    errno != EALREADY)
		put_back(fd, "connect");
	return ret;
}
