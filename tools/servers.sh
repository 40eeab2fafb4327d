# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# servers.sh: the nginx and HAProxy set-ups that the demo, the selftests
# (real_servers.sh) and the benchmarks (guest-matrix.sh, placement.sh) run,
# written in one place. Source it; it only defines functions.

# fs_nginx_conf DIR LISTEN [OPTION...]: write DIR/nginx.conf for an nginx
# that answers every request with "200 ok", no access log, its pid in
# DIR/nginx.pid, its errors in DIR/error.log, its temporary files under
# DIR/tmp. LISTEN is what nginx's "listen" takes: 127.0.0.1:8080,
# [fd77::1]:8080. Options:
#   workers=N       worker_processes N (default 2)
#   mutex=on|off    accept_mutex (default off)
#   reuseport       "listen ... reuseport": one listener per worker
#   affinity=A      worker_cpu_affinity A ("auto" or the masks)
#   foreground      "daemon off": nginx stays the caller's child
#   preload         "env LD_PRELOAD": a binary upgrade keeps the library
# Returns 2 on an unknown option.
fs_nginx_conf()
{
	local d=$1 listen=$2 o workers=2 mutex=off rp='' aff='' daemon='' env=''
	shift 2

	for o in "$@"; do
		case $o in
		workers=*) workers=${o#workers=} ;;
		mutex=on|mutex=off) mutex=${o#mutex=} ;;
		reuseport) rp=" reuseport" ;;
		affinity=*) aff="worker_cpu_affinity ${o#affinity=};" ;;
		foreground) daemon="daemon off;" ;;
		preload) env="env LD_PRELOAD;" ;;
		*) echo "fs_nginx_conf: unknown option '$o'" >&2; return 2 ;;
		esac
	done
	mkdir -p "$d/tmp" || return 1
	cat > "$d/nginx.conf" <<EOF
user root root;
$env
$daemon
worker_processes $workers;
worker_rlimit_nofile 16384;
$aff
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
	worker_connections 4096;
	accept_mutex $mutex;
}
http {
	access_log off;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	keepalive_requests 1000000;
	default_type text/plain;
	server {
		listen $listen backlog=1024$rp;
		location / {
			return 200 "ok\n";
		}
	}
}
EOF
}

# fs_haproxy_conf DIR BIND SERVER [OPTION...]: write DIR/haproxy.cfg for
# an HTTP proxy from BIND (127.0.0.1:8081) to the one SERVER
# (127.0.0.1:8080) that closes both sides after every request: one
# passive and one active connection per request. Its pid file is
# DIR/haproxy.pid (written when it daemonizes; run it with -db to keep it
# in the foreground). Options:
#   threads=N       nbthread N (default: HAProxy's, one per CPU it may use)
# Returns 2 on an unknown option.
fs_haproxy_conf()
{
	local d=$1 bind=$2 server=$3 o threads=''
	shift 3

	for o in "$@"; do
		case $o in
		threads=*) threads="nbthread ${o#threads=}" ;;
		*) echo "fs_haproxy_conf: unknown option '$o'" >&2; return 2 ;;
		esac
	done
	mkdir -p "$d" || return 1
	cat > "$d/haproxy.cfg" <<EOF
global
	$threads
	maxconn 8192
	pidfile $d/haproxy.pid
defaults
	mode http
	timeout connect 5s
	timeout client 30s
	timeout server 30s
	option http-server-close
	http-reuse never
frontend fe
	bind $bind
	default_backend be
backend be
	server s1 $server
EOF
}

# fs_wait_port PORT [TENTHS [NETDIR]]: until a TCP socket listens on PORT,
# IPv4 or IPv6, for at most TENTHS tenths of a second (default 300), in
# this network namespace or in the one whose /proc/PID/net is NETDIR.
# Reads the listeners at the head of NETDIR/tcp{,6} rather than
# connecting, so a broken listener cannot hang it.
fs_wait_port()
{
	local i f want laddr st rest netdir=${3:-/proc/net}

	printf -v want ':%04X' "$1"
	for ((i = 0; i < ${2:-300}; i++)); do
		for f in "$netdir/tcp" "$netdir/tcp6"; do
			[ -r "$f" ] || continue
			# Listeners come first, then every other socket
			# (thousands of TIME_WAIT after a benchmark): stop at
			# the first one that does not listen.
			while read -r _ laddr _ st rest; do
				[ "$st" = st ] && continue
				[ "$st" = 0A ] || break
				[ "${laddr: -5}" = "$want" ] && return 0
			done < "$f"
		done
		sleep 0.1
	done
	return 1
}

# fs_wait_crr FILE PID [TENTHS]: until crr server PID has written its
# "port=" line to FILE (it listens then); 1 when it exited first or after
# TENTHS tenths of a second (default 300).
fs_wait_crr()
{
	local i

	for ((i = 0; i < ${3:-300}; i++)); do
		grep -q '^port=' "$1" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# fs_to_us V: wrk prints latencies as 1.23us, 4.56ms or 1.2s; in us
fs_to_us()
{
	local v=$1

	case $v in
	*us) echo "${v%us}" ;;
	*ms) awk -v x="${v%ms}" 'BEGIN { printf "%.1f", x * 1000 }' ;;
	*s) awk -v x="${v%s}" 'BEGIN { printf "%.1f", x * 1000000 }' ;;
	*) echo "$v" ;;
	esac
}

# fs_wrk_result FILE: wrk's output (run with --latency) as one line of
# key=value: rate unit=rps p50_us p90_us p99_us connections (requests:
# one connection each under "Connection: close") failed_connects resets
# (read errors) errors (write errors + non-2xx answers) timeouts
fs_wrk_result()
{
	local line r='' reqs=0 non2xx=0 connect=0 read=0 write=0 timeout=0
	local -a f

	while read -r line; do
		read -ra f <<< "$line"
		case $line in
		Requests/sec:*) r+=" rate=${f[1]} unit=rps" ;;
		"50% "*) r+=" p50_us=$(fs_to_us "${f[1]}")" ;;
		"90% "*) r+=" p90_us=$(fs_to_us "${f[1]}")" ;;
		"99% "*) r+=" p99_us=$(fs_to_us "${f[1]}")" ;;
		*"requests in"*) reqs=${f[0]} ;;
		"Socket errors:"*)
			# Socket errors: connect 0, read 0, write 0, timeout 0
			connect=${f[3]%,} read=${f[5]%,} write=${f[7]%,} timeout=${f[9]} ;;
		Non-2xx*) non2xx=${f[4]} ;;
		esac
	done < "$1"
	r+=" connections=$reqs failed_connects=$connect resets=$read errors=$((write + non2xx)) timeouts=$timeout"
	echo "${r# }"
}
