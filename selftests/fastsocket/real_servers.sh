#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Unmodified Debian nginx and HAProxy on Fastsocket-enabled listeners, in a
# network namespace of their own: nginx with 2 workers, accept_mutex on and
# off, a shared listener and "listen ... reuseport", pinned workers or not;
# then HAProxy in front of nginx (its connections to nginx are active
# connections). Each case drives "Connection: close" requests with wrk and
# asserts that every request succeeded (no socket error, no non-2xx) and
# that the enabled listeners accepted at least one connection per request,
# through the local queues (the per-CPU counters moved). With pinned
# workers (worker_cpu_affinity auto) and one shared listener, at least 95%
# of the connections must be accepted on the CPU that queued them
# (accept_local against accept_stolen); the reservation bound is scaled
# up for emulation as in listen_reserve.c.
#
# Then the same servers under "fastsocket run" (libfastsocket.so) with an
# empty port set: nginx pinned, an "nginx -s reload" and a binary upgrade
# (USR2) under load with zero failed connections, and HAProxy with
# nbthread 2; the local-table counters must move in each.
#
# Exit status as kselftest: 0 pass, 1 fail, 4 skip.
set -u

ksft_skip=4
fs=/proc/sys/net/fastsocket
# the CLI: the one reader of /proc/net/fastsocket for scripts
# run from build/selftests/fastsocket/: the project is three levels up
top=${FS_TOP:-$(cd "$(dirname "$0")/../../.." && pwd)}
cli=${FS_CLI:-$top/build/tools/fastsocket}
duration=${FS_REAL_DURATION:-3}

if [ ! -x "$cli" ]; then
	echo "FAIL: no fastsocket CLI at $cli (make tools)"
	exit 1
fi
if [ ! -e "$fs/enabled" ]; then
	echo "SKIP: fastsocket module not loaded"
	exit $ksft_skip
fi
for b in nginx haproxy wrk ip unshare; do
	if ! command -v "$b" >/dev/null 2>&1 &&
	   [ ! -x "/usr/sbin/$b" ]; then
		echo "SKIP: $b is not installed"
		exit $ksft_skip
	fi
done
PATH=$PATH:/usr/sbin:/sbin
# nginx and HAProxy configurations shared with the demo and the benchmarks
# shellcheck source=../../tools/servers.sh disable=SC1091
. "$top/tools/servers.sh" || exit 1

# A namespace of our own: fresh sysctls, fresh counters, free ports.
if [ -z "${FS_REAL_NETNS:-}" ]; then
	exec unshare -n env FS_REAL_NETNS=1 "$0" "$@"
fi
ip link set lo up

dir=$(mktemp -d /tmp/fs-real.XXXXXX)
failures=0

cleanup() {
	[ -s "$dir/nginx.pid" ] && kill -QUIT "$(cat "$dir/nginx.pid")" 2>/dev/null
	[ -s "$dir/haproxy.pid" ] && kill "$(cat "$dir/haproxy.pid")" 2>/dev/null
	sleep 0.5
	rm -rf "$dir"
}
trap cleanup EXIT

# every feature this kernel has, ports 8080-8081, reservation scaled up
"$cli" enable >/dev/null || exit 1
"$cli" ports 8080-8081 || exit 1
"$cli" reserve 100000 >/dev/null || exit 1

# snap NAME: the counters drive() reads, over all CPUs, into the
# associative array NAME, with one CLI run (each exec costs about a
# second under emulation).
snap() {
	local -n m=$1
	local k v
	m=([listen_local]=-1 [accept_local]=-1 [accept_stolen]=-1 [accept_global]=-1)
	while IFS== read -r k v; do
		[ -n "$k" ] && m[$k]=$v
	done <<<"$("$cli" stats listen_local accept_local accept_stolen accept_global 2>/dev/null)"
}

# Wait until something listens on port @1.
wait_port() {
	fs_wait_port "$1" 100 && return 0
	echo "nothing listens on port $1"
	return 1
}

# start_nginx MUTEX REUSEPORT AFFINITY [preload]: nginx with 2 workers on
# 127.0.0.1:8080; with "preload", under "fastsocket run" (and a binary
# upgrade keeps the library: env LD_PRELOAD).
start_nginx() {
	local run=() opts=(workers=2 mutex="$1")
	[ "$2" = on ] && opts+=(reuseport)
	[ "$3" = pinned ] && opts+=(affinity=auto)
	if [ "${4:-}" = preload ]; then
		run=("$cli" run --)
		opts+=(preload)
	fi
	fs_nginx_conf "$dir" 127.0.0.1:8080 "${opts[@]}" || return 1
	# by absolute path: a binary upgrade (USR2) re-executes argv[0]
	"${run[@]}" "$(command -v nginx)" -p "$dir" -c "$dir/nginx.conf" || return 1
	wait_port 8080
}

# Graceful stop (QUIT), given 30 s under emulation. A master still there
# then is a failure of its own, reported with what the servers were
# doing, and killed with its workers so that the next case can bind.
stop_nginx() {
	local pid i
	pid=$(cat "$dir/nginx.pid" 2>/dev/null) || return 0
	kill -QUIT "$pid"
	for i in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "FAIL: nginx master $pid did not quit within 30 s of QUIT"
		diagnose
		pkill -KILL -P "$pid"
		kill -KILL "$pid"
		failures=$((failures + 1))
	fi
	rm -f "$dir/nginx.pid"
}

# What the servers are doing, for a failure report.
diagnose() {
	local p
	ps -eo pid,ppid,stat,wchan:32,args | grep -E 'nginx|haproxy|wrk' | grep -v grep
	for p in $(pgrep -f 'nginx|haproxy|wrk'); do
		echo "-- $p $(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)"
		cat /proc/$p/stack 2>/dev/null | head -12
	done
	ss -tanoi 2>/dev/null | head -40
	cut -d' ' -f1-8 /proc/net/fastsocket
	tail -20 "$dir/error.log" 2>/dev/null
}

stop_haproxy() {
	local pid i
	[ -s "$dir/haproxy.pid" ] || return 0
	pid=$(cat "$dir/haproxy.pid")
	kill "$pid" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "FAIL: haproxy $pid ignored SIGTERM"
		diagnose
		failures=$((failures + 1))
		kill -KILL "$pid"
	fi
	wait "$pid" 2>/dev/null
	rm -f "$dir/haproxy.pid"
}

# drive NAME PORT MIN_ACCEPTS_PER_REQUEST [MIN_LOCAL_PERCENT [ACTION]]:
# run wrk, check its result and the counters. ACTION (a command) runs one
# second into the load: a reload or binary upgrade under load.
drive() {
	local name=$1 port=$2 per=$3 min_local=${4:-0} action=${5:-} out reqs
	local errs non2xx al as acc queued share=100
	local -A b a
	snap b
	# wrk ends by itself after the duration; the timeout turns a hang
	# into a failure with the state of the servers.
	timeout -k 5 $((duration + 60)) wrk -t 2 -c 8 -d "${duration}s" \
		--timeout 30s -H "Connection: close" \
		"http://127.0.0.1:$port/" > "$dir/wrk.out" 2>&1 &
	local wrk=$!
	if [ -n "$action" ]; then
		sleep 1
		if ! $action; then
			echo "FAIL: $name: $action failed"
			diagnose
			failures=$((failures + 1))
		fi
	fi
	if ! wait $wrk; then
		echo "FAIL: $name: wrk did not finish (exit $?)"
		diagnose
		failures=$((failures + 1))
	fi
	out=$(cat "$dir/wrk.out")
	snap a
	al=$((a[accept_local] - b[accept_local]))
	as=$((a[accept_stolen] - b[accept_stolen]))
	acc=$((al + as + a[accept_global] - b[accept_global]))
	queued=$((a[listen_local] - b[listen_local]))
	[ $((al + as)) -gt 0 ] && share=$((100 * al / (al + as)))
	reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
	errs=$(sed -n 's/.*Socket errors: \(.*\)/\1/p' <<<"$out")
	non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
	echo "$name: requests=${reqs:-0} accepted=$acc listen_local=$queued" \
		"accept_local=$al accept_stolen=$as local_percent=$share" \
		"socket_errors=${errs:-none} non2xx=${non2xx:-0}"
	if [ -z "$reqs" ] || [ "$reqs" -le 0 ] || [ -n "$errs" ] ||
	   [ -n "$non2xx" ] || [ "$acc" -lt $((reqs * per)) ] ||
	   [ "$queued" -le 0 ] || [ "${a[listen_local]}" -lt 0 ] ||
	   [ "$share" -lt "$min_local" ]; then
		echo "FAIL: $name"
		echo "$out" | sed 's/^/    /'
		failures=$((failures + 1))
	fi
}

# accept_mutex on is covered with free workers; pinned workers test the
# shared listener's locality and reuseport (five cases keep the test
# within its time under emulation).
nginx_cases=("on off free" "off off free" "off on free" "off off pinned"
	     "off on pinned")
[ "${FS_REAL_CASES:-all}" = haproxy ] && nginx_cases=()
for c in "${nginx_cases[@]}"; do
	set -- $c
	name="nginx accept_mutex=$1 reuseport=$2 workers=$3"
	if ! start_nginx "$1" "$2" "$3"; then
		echo "FAIL: $name: nginx did not start"
		cat "$dir/error.log" 2>/dev/null
		failures=$((failures + 1))
		continue
	fi
	# One shared listener, workers pinned, no accept mutex: locality.
	if [ "$c" = "off off pinned" ]; then
		drive "$name" 8080 1 95
	else
		drive "$name" 8080 1
	fi
	stop_nginx
done

# haproxy_case NAME [preload]: HAProxy in front of nginx; every request
# is one passive connection on 8081 and one active connection from
# HAProxy to nginx on 8080. With "preload", both run under "fastsocket
# run" and HAProxy with 2 threads.
haproxy_case() {
	local name=$1 preload=${2:-} run=()
	[ -n "$preload" ] && run=("$cli" run --)
	if ! start_nginx off off free $preload; then
		echo "FAIL: $name: nginx did not start"
		failures=$((failures + 1))
		return
	fi
	fs_haproxy_conf "$dir" 127.0.0.1:8081 127.0.0.1:8080 \
		$( [ -n "$preload" ] && echo threads=2 ) || return
	# Foreground mode, in the background: the test owns the pid.
	"${run[@]}" haproxy -db -f "$dir/haproxy.cfg" > "$dir/haproxy.log" 2>&1 &
	echo $! > "$dir/haproxy.pid"
	if wait_port 8081; then
		drive "$name" 8081 2
	else
		echo "FAIL: $name: haproxy did not start"
		cat "$dir/haproxy.log"
		failures=$((failures + 1))
	fi
	stop_haproxy
	stop_nginx
}

haproxy_case "haproxy -> nginx"

# ---- The same servers, unmodified, under "fastsocket run". The port set
# is empty: only the preload library can switch their listeners on, so
# the local-table counters move only if it did. A reload and a binary
# upgrade (USR2) under load fail no connection and keep the listener on.
"$cli" ports "" || exit 1

# Graceful reload: new workers, same listening sockets.
reload_nginx() {
	kill -HUP "$(cat "$dir/nginx.pid")"
}

# Binary upgrade: USR2 starts a new master that inherits the listeners
# through $NGINX (the preload library switches those on at load); the
# old master's workers then stop (WINCH) and the old master quits.
upgrade_nginx() {
	local old i new
	old=$(cat "$dir/nginx.pid")
	kill -USR2 "$old" || return 1
	for i in $(seq 100); do
		[ -s "$dir/nginx.pid.oldbin" ] && [ -s "$dir/nginx.pid" ] &&
			[ "$(cat "$dir/nginx.pid")" != "$old" ] && break
		sleep 0.1
	done
	new=$(cat "$dir/nginx.pid")
	if [ "$new" = "$old" ]; then
		echo "no new master after USR2"
		tail -5 "$dir/error.log"
		return 1
	fi
	sleep 0.5
	kill -WINCH "$old"
	sleep 0.5
	kill -QUIT "$old"
	# 30 s, as in stop_nginx: a worker shutting down waits for its last
	# timer, which under emulation has taken more than 10 s
	for i in $(seq 300); do
		kill -0 "$old" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "old master $old did not quit in 30 s"
	return 1
}

if [ "${FS_REAL_CASES:-all}" != haproxy ]; then
	name="preload: nginx workers=pinned"
	if start_nginx off off pinned preload; then
		drive "$name, nginx -s reload under load" 8080 1 0 reload_nginx
		drive "$name, binary upgrade (USR2) under load" 8080 1 0 upgrade_nginx
		# the upgraded master's listener is still on
		drive "$name, after the upgrade" 8080 1
		stop_nginx
	else
		echo "FAIL: $name: nginx did not start"
		cat "$dir/error.log" 2>/dev/null
		failures=$((failures + 1))
	fi
fi

# HAProxy with 2 threads in front of nginx, both under "fastsocket run".
haproxy_case "preload: haproxy nbthread=2 -> nginx" preload

[ "$failures" = 0 ] && echo "PASS" && exit 0
echo "$failures case(s) failed"
exit 1
