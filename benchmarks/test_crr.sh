#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Quick self-check of crr on this host (loopback, no VM): every server
# mode, IPv6, linger0 and keep-alive, plus the command line.
#
#   benchmarks/test_crr.sh [-v]      (-v: show full client/server output)
#
# CRR=/path/to/crr selects the binary (default ../build/benchmarks/crr).
# Exit status 0 only if every check passed.

set -u

here=$(cd "$(dirname "$0")" && pwd)
CRR=${CRR:-$here/../build/benchmarks/crr}
verbose=0
[ "${1:-}" = -v ] && verbose=1

if [ ! -x "$CRR" ]; then
	echo "crr not found at $CRR (run make in benchmarks/ or set CRR)" >&2
	exit 1
fi

tmp=$(mktemp -d)
srv_pid=
pass=0
fail=0
skip=0

cleanup()
{
	[ -n "$srv_pid" ] && kill -KILL "$srv_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ok()
{
	echo "PASS: $*"
	pass=$((pass + 1))
}

bad()
{
	echo "FAIL: $*"
	fail=$((fail + 1))
}

# kv KEY FILE: value of the first KEY=value line
kv()
{
	sed -n "s/^$1=//p" "$2" | head -n 1
}

# start_server ARGS...: sets srv_pid and port
start_server()
{
	port=
	"$CRR" server "$@" >"$tmp/srv.out" 2>"$tmp/srv.err" &
	srv_pid=$!
	for _ in $(seq 200); do
		port=$(kv port "$tmp/srv.out")
		[ -n "$port" ] && return 0
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$srv_pid" 2>/dev/null
	wait "$srv_pid" 2>/dev/null
	srv_pid=
	return 1
}

# stop_server: SIGTERM, wait up to 10 s; sets srv_rc
stop_server()
{
	kill -TERM "$srv_pid"
	for _ in $(seq 200); do
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$srv_pid" 2>/dev/null
	wait "$srv_pid"
	srv_rc=$?
	srv_pid=
}

# expect WHAT ACTUAL OP EXPECTED: add to $why unless ACTUAL is an integer
# and "ACTUAL OP EXPECTED" holds (OP: -eq, -gt, -ge, -le)
expect()
{
	local v=$2 want=$4 good=0

	if [[ $v =~ ^[0-9]+$ ]]; then
		case $3 in
		-eq) [ "$v" -eq "$want" ] && good=1 ;;
		-gt) [ "$v" -gt "$want" ] && good=1 ;;
		-ge) [ "$v" -ge "$want" ] && good=1 ;;
		-le) [ "$v" -le "$want" ] && good=1 ;;
		esac
	fi
	[ "$good" = 1 ] || why="$why $1=${v:-<none>} (want $3 $want);"
}

# run_case NAME KIND "SERVER ARGS" "CLIENT ARGS"
# KIND count: the client ran --count 2000; keepalive: --keepalive run
run_case()
{
	local name=$1 kind=$2 sargs=$3 cargs=$4 crc tx conns lo hi summary

	why=
	# shellcheck disable=SC2086
	if ! start_server $sargs; then
		bad "$name: server did not start: $(cat "$tmp/srv.err")"
		return
	fi
	# shellcheck disable=SC2086
	timeout 120 "$CRR" client --port "$port" $cargs \
		>"$tmp/cli.out" 2>"$tmp/cli.err"
	crc=$?
	stop_server

	expect client_exit "$crc" -eq 0
	expect failed_connects "$(kv failed_connects "$tmp/cli.out")" -eq 0
	expect resets "$(kv resets "$tmp/cli.out")" -eq 0
	expect client_errors "$(kv errors "$tmp/cli.out")" -eq 0
	expect server_exit "$srv_rc" -eq 0
	expect server_errors "$(kv errors "$tmp/srv.out")" -eq 0
	if [ "$kind" = count ]; then
		expect connections "$(kv connections "$tmp/cli.out")" -eq 2000
		expect served "$(kv served "$tmp/srv.out")" -eq 2000
		summary="cps=$(kv cps "$tmp/cli.out")"
	else
		# Transactions in flight at the deadline may have been
		# served but not read: at most one per flow.
		tx=$(kv transactions "$tmp/cli.out")
		conns=$(kv connections "$tmp/cli.out")
		expect connections "$conns" -eq 8
		expect transactions "$tx" -gt 0
		lo=${tx:-0}
		hi=$((${tx:-0} + 8))
		expect served "$(kv served "$tmp/srv.out")" -ge "$lo"
		expect served "$(kv served "$tmp/srv.out")" -le "$hi"
		summary="tps=$(kv tps "$tmp/cli.out") transactions=$tx"
	fi
	summary="$summary p50_us=$(kv latency_p50_us "$tmp/cli.out")"
	summary="$summary p99_us=$(kv latency_p99_us "$tmp/cli.out")"
	summary="$summary served=$(kv served "$tmp/srv.out")"
	summary="$summary incoming_cpu_mismatch=$(kv incoming_cpu_mismatch "$tmp/srv.out")"
	summary="$summary per-worker=$(sed -n 's/^worker\([0-9]*\)_accepted=/\1:/p' "$tmp/srv.out" | paste -sd, -)"
	if [ -z "$why" ]; then
		ok "$name: $summary"
	else
		bad "$name:$why"
		verbose=1
	fi
	if [ "$verbose" = 1 ]; then
		sed 's/^/    client: /' "$tmp/cli.out" "$tmp/cli.err"
		sed 's/^/    server: /' "$tmp/srv.out" "$tmp/srv.err"
	fi
}

crr_args="--threads 2 --flows 4 --count 2000"

run_case "fork" count "--mode fork --workers 2 --port 0" "$crr_args"
run_case "thread" count "--mode thread --workers 2 --port 0" "$crr_args"
run_case "reuseport+incoming-cpu" count \
	"--mode reuseport --incoming-cpu --pin --workers 2 --port 0" \
	"$crr_args --pin"
if grep -qs '^0\{31\}1 ' /proc/net/if_inet6; then
	run_case "ipv6 (::1)" count \
		"--mode fork --workers 2 --port 0 --addr ::1" \
		"--host ::1 $crr_args"
else
	echo "SKIP: ipv6 (::1): no ::1 on this host"
	skip=$((skip + 1))
fi
run_case "fork+exclusive+linger0" count \
	"--mode fork --exclusive --workers 2 --port 0" "$crr_args --linger0"
run_case "fork+close-first" count \
	"--mode fork --workers 2 --port 0 --close-first" "$crr_args"
# The server closed first: its side of most connections is in TIME_WAIT.
tw=$(ss -tanH state time-wait "( sport = :$port )" 2>/dev/null | wc -l)
if [ "$tw" -ge 1000 ]; then
	ok "close-first: $tw server-side TIME_WAIT sockets"
else
	bad "close-first: $tw server-side TIME_WAIT sockets (want >= 1000 of 2000)"
fi
run_case "keepalive" keepalive "--mode fork --workers 2 --port 0 --keepalive" \
	"--keepalive --threads 2 --flows 4 --duration 1 --csv $tmp/rr.csv --label ka"

# The CSV file written by the keep-alive run: header plus one row.
if [ "$(wc -l <"$tmp/rr.csv" 2>/dev/null)" = 2 ] &&
   head -n 1 "$tmp/rr.csv" | grep -q '^label,mode,' &&
   tail -n 1 "$tmp/rr.csv" | grep -q '^ka,rr,2,4,'; then
	ok "csv: header and row"
else
	bad "csv: unexpected content: $(cat "$tmp/rr.csv" 2>/dev/null)"
fi

# Command line: --help exits 0, bad options exit 2.
cli_check()
{
	local want=$1 rc

	shift
	"$CRR" "$@" >/dev/null 2>&1
	rc=$?
	if [ "$rc" = "$want" ]; then
		ok "cli: crr $* -> exit $rc"
	else
		bad "cli: crr $* -> exit $rc (want $want)"
	fi
}
cli_check 0 --help
cli_check 0 server --help
cli_check 0 client --help
cli_check 2 client --threads 2
cli_check 2 client --port 1 --flows abc
cli_check 2 server --mode nope
cli_check 2 server --bogus
cli_check 2 server --close-first --keepalive
# the meter's phase marks: a no-op without the plugin
cli_check 0 mark begin
cli_check 0 mark end shared
cli_check 2 mark
cli_check 2 mark middle

echo "$pass passed, $fail failed"
[ "$skip" -gt 0 ] && echo "($skip skipped)"
[ "$fail" -eq 0 ]
