#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# guest-matrix.sh: run a benchmark matrix inside one VM boot (tools/vm-run),
# configurations interleaved: repeat 1 runs A B C ..., repeat 2 runs them
# again (by default starting one configuration later), and so on.
#
#   tools/vm-run [--icount] -k bzImage -- benchmarks/guest-matrix.sh [options]
#
#   --configs LIST    comma-separated configurations or groups (default: crr)
#   --repeats N       timed runs per configuration (default 3)
#   --duration S      seconds per timed run, guest time (default 5)
#   --module PATH     fastsocket.ko to load (default $FS_MODULE); without a
#                     module (vanilla kernel) configurations that need it
#                     are skipped
#   --flows F         connections in flight per client thread (default 8)
#   --no-rotate       every repeat starts with the first configuration
#   --perf            profile each configuration once, outside the timed
#                     runs: perf record -e cpu-clock -a -g, perf lock
#                     contention (default)
#   --no-perf         no profiles
#   --perf-duration S seconds per profile (default: --duration)
#   --out DIR         where to write (default $FS_OUT)
#   --meter           mark each timed run as a phase of the locality meter
#                     (crr client --meter; "crr mark" around wrk), numbered
#                     in records.txt as phase=N; use with --no-perf
#   --list            list the configurations and exit
#
# Configurations: the rows of benchmarks/configs.md whose harness is
# loopback or both (--list prints them), W = 2. Ports are fixed,
# 127.0.0.1, RPS off on lo: crr 8080, nginx 8081, HAProxy 8082 in front
# of nginx on 8083. Groups: crr (crr's server), real (nginx, HAProxy),
# all.
#
# CPU placement (2 vCPUs): crr clients always run 2 threads pinned to CPU 0
# and 1 (--pin), so on loopback each connection's packets are handled on
# the CPU of the thread that opened it; only the server side differs
# between crr configurations. wrk runs 2 threads, unpinned; nginx and
# HAProxy run unpinned with their defaults.
#
# Output in DIR: records.txt, one line per (configuration, repeat) of
# space-separated key=value pairs; raw/ the tools' own output; perf/ the
# profiles (and what failed); guest.txt a description of the guest.
# Exit status 0 when every run produced a record (failed connections are
# recorded, not fatal); 1 when some did not; 2 on bad usage.
set -euo pipefail
# shellcheck disable=SC1007,SC2154 # "a= b=" clears; snap() fills arrays by nameref

# The whole script is one compound command, read before it runs: the guest
# reads it over 9p, and an edit on the host must not change a running copy.
{
top=${FS_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
crr=$top/build/benchmarks/crr
module=${FS_MODULE:-}
configs=crr
repeats=3
duration=5
flows=8
rotate=1
perf=1
meter=0
phase_no=0
perf_duration=
out=${FS_OUT:-}

# The configurations: benchmarks/configs.md, harness loopback. Groups:
# crr (crr's server), real (nginx and HAProxy).
# shellcheck source=configs.sh
. "$top/benchmarks/configs.sh"
cfg_load loopback || exit 2
crr_configs= real_configs=
for c in "${cfg_names[@]}"; do
	case ${cfg_server[$c]} in
	crr\ *) crr_configs+=" $c" ;;
	*) real_configs+=" $c" ;;
	esac
done

# Fixed ports: crr 8080, nginx 8081, HAProxy 8082 -> nginx 8083.
fs_ports=8080-8099
port_crr=8080
port_nginx=8081
port_haproxy=8082
port_backend=8083

usage() { sed -n '4,44p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
die() { echo "guest-matrix: $*" >&2; exit 1; }
log() { echo "guest-matrix: $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--configs) configs=$2; shift 2 ;;
	--repeats) repeats=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	--module) module=$2; shift 2 ;;
	--flows) flows=$2; shift 2 ;;
	--no-rotate) rotate=0; shift ;;
	--perf) perf=1; shift ;;
	--no-perf) perf=0; shift ;;
	--perf-duration) perf_duration=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--meter) meter=1; shift ;;
	--list) echo $crr_configs $real_configs | tr ' ' '\n'; exit 0 ;;
	-h|--help) usage 0 ;;
	*) echo "guest-matrix: unknown option $1" >&2; usage ;;
	esac
done
[[ $repeats =~ ^[1-9][0-9]*$ ]] || { echo "guest-matrix: --repeats wants a positive integer" >&2; exit 2; }
[[ $duration =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "guest-matrix: --duration wants seconds" >&2; exit 2; }
[[ $flows =~ ^[1-9][0-9]*$ ]] || { echo "guest-matrix: --flows wants a positive integer" >&2; exit 2; }
: "${perf_duration:=$duration}"
[ "$meter" = 0 ] || [ "$perf" = 0 ] || { echo "guest-matrix: --meter wants --no-perf (profiles would be phases too)" >&2; exit 2; }
[ -n "$out" ] || { echo "guest-matrix: no --out and no \$FS_OUT (run it under tools/vm-run)" >&2; exit 2; }
[ -x "$crr" ] || die "no $crr (make benchmarks)"

# Expand groups, check names, keep the order given, drop duplicates.
list=()
for c in ${configs//,/ }; do
	# shellcheck disable=SC2206 # the groups are word lists
	case $c in
	crr) list+=($crr_configs) ;;
	real) list+=($real_configs) ;;
	all) list+=($crr_configs $real_configs) ;;
	*)
		case " $(echo $crr_configs $real_configs) " in
		*" $c "*) list+=("$c") ;;
		*) echo "guest-matrix: unknown configuration '$c' (--list shows them)" >&2; exit 2 ;;
		esac ;;
	esac
done
declare -A seen=()
cfgs=()
for c in "${list[@]}"; do
	[ -n "${seen[$c]:-}" ] && continue
	seen[$c]=1
	cfgs+=("$c")
done
[ ${#cfgs[@]} -gt 0 ] || { echo "guest-matrix: no configuration" >&2; exit 2; }

needs_module() { [ "${cfg_fs[$1]}" != off ]; }
is_real() { case ${cfg_server[$1]} in crr\ *) return 1 ;; esac; return 0; }

mkdir -p "$out/raw" "$out/perf"
work=/tmp/bench
rm -rf "$work"
mkdir -p "$work"
records=$out/records.txt
: > "$records"

# ---------------------------------------------------------------- guest set-up
# RPS off on loopback, ephemeral ports away from ours, TIME_WAIT reuse on
# loopback (the 6.12 default), enough open files.
for f in /sys/class/net/lo/queues/rx-*/rps_cpus; do
	[ -w "$f" ] && echo 0 > "$f"
done
echo "10000 64999" > /proc/sys/net/ipv4/ip_local_port_range
echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse
ulimit -n 65536 2>/dev/null || true

fsdir=/proc/sys/net/fastsocket
modstate=none
if [ -n "$module" ]; then
	if [ -d $fsdir ]; then
		modstate=loaded
	elif insmod "$module" 2>"$work/insmod.err"; then
		modstate=loaded
	else
		modstate="insmod-failed:$(tr ' \n' '_ ' < "$work/insmod.err")"
		log "insmod $module failed: $(cat "$work/insmod.err")"
	fi
elif [ -d $fsdir ]; then
	modstate=loaded
fi
switches=
if [ -d $fsdir ]; then
	# the features this kernel has a data path for
	switches=" $(cat $fsdir/available 2>/dev/null || echo listen)"
fi

# fs_set off|listen|vfs|all: arm nothing, listen only, vfs_light only, or
# every switch there is.
fs_set()
{
	local s
	[ -d $fsdir ] || return 0
	echo 0 > $fsdir/enabled
	for s in $switches; do
		echo 0 > $fsdir/$s
	done
	case $1 in
	off) echo > $fsdir/ports 2>/dev/null || true; return 0 ;;
	listen) echo 1 > $fsdir/listen ;;
	vfs) echo 1 > $fsdir/vfs_light ;;
	all) for s in $switches; do echo 1 > $fsdir/$s; done ;;
	esac
	echo $fs_ports > $fsdir/ports
	echo 1 > $fsdir/enabled
}

{
	echo "kernel=$(uname -r)"
	echo "cpus=$(nproc)"
	echo "cmdline=$(cat /proc/cmdline)"
	echo "module=$modstate"
	echo "switches=${switches# }"
	echo "configs=${cfgs[*]}"
	echo "repeats=$repeats duration=$duration flows=$flows rotate=$rotate perf=$perf"
	echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)"
	grep -m1 'model name' /proc/cpuinfo || true
	echo "nginx=$(nginx -v 2>&1 | tr ' ' _)"
	echo "haproxy=$(haproxy -v 2>/dev/null | head -n 1 | tr ' ' _)"
	echo "wrk=$(command -v wrk || echo missing)"
	echo "perf=$(perf --version 2>&1 | tr ' ' _)"
} > "$out/guest.txt" 2>&1

# Skip what cannot run here.
run=()
for c in "${cfgs[@]}"; do
	if needs_module "$c" && [ "$modstate" != loaded ]; then
		log "skipping $c: the fastsocket module is not loaded ($modstate)"
		echo "config=$c skipped=no-module" >> "$out/skipped.txt"
		continue
	fi
	if is_real "$c"; then
		miss=
		command -v wrk >/dev/null || miss+=" wrk"
		command -v nginx >/dev/null || miss+=" nginx"
		case $c in haproxy*) command -v haproxy >/dev/null || miss+=" haproxy" ;; esac
		# Without it ld.so ignores LD_PRELOAD and the run measures
		# another configuration.
		[ "${cfg_client[$c]}" != "wrk close active" ] ||
			[ -r "$top/build/tools/libfastsocket.so" ] || miss+=" libfastsocket.so(make_tools)"
		if [ -n "$miss" ]; then
			log "skipping $c: missing$miss"
			echo "config=$c skipped=missing${miss// /_}" >> "$out/skipped.txt"
			continue
		fi
	fi
	run+=("$c")
done
[ ${#run[@]} -gt 0 ] || die "nothing to run"

# --------------------------------------------------------------- counters
# snap NAME: fill the associative array NAME with counters, builtins only
# (each exec of a dynamically linked binary is slow under emulation).
snap()
{
	local -n s=$1
	local line k rest v i tot
	local -a f hdr

	s=()
	while read -r k rest; do
		case $k in
		ctxt) s["ctxt"]=$rest ;;
		cpu)
			read -ra f <<< "$rest"
			# user nice system idle iowait irq softirq steal
			s["cpu_busy"]=$((f[0] + f[1] + f[2] + f[5] + f[6] + f[7]))
			s["cpu_idle"]=$((f[3] + f[4]))
			s["cpu_sys"]=$((f[2]))
			s["cpu_softirq"]=$((f[6]))
			;;
		esac
	done < /proc/stat
	while read -r k rest; do
		case $k in
		CAL:|RES:|TLB:|CFD:)
			read -ra f <<< "$rest"
			tot=0
			for v in "${f[@]}"; do
				[[ $v =~ ^[0-9]+$ ]] || break
				tot=$((tot + v))
			done
			k=${k%:}
			s[ipi_${k,,}]=$tot
			;;
		esac
	done < /proc/interrupts
	while read -r k rest; do
		case $k in
		NET_RX:)
			read -ra f <<< "$rest"
			tot=0
			for v in "${f[@]}"; do tot=$((tot + v)); done
			s[softirq_net_rx]=$tot
			;;
		esac
	done < /proc/softirqs
	# TcpExt and Tcp: header line, then value line.
	for line in /proc/net/netstat /proc/net/snmp; do
		hdr=()
		while read -r k rest; do
			case $k in
			TcpExt:|Tcp:)
				if [ ${#hdr[@]} = 0 ]; then
					read -ra hdr <<< "$rest"
					continue
				fi
				read -ra f <<< "$rest"
				for i in "${!hdr[@]}"; do
					case ${hdr[$i]} in
					ListenOverflows|ListenDrops|TCPTimeWaitOverflow|\
					ActiveOpens|PassiveOpens|AttemptFails|EstabResets|OutRsts|\
					TCPAbortOnData|TCPAbortOnClose|TCPReqQFullDrop|TCPBacklogDrop)
						s[tcp_${hdr[$i]}]=${f[$i]} ;;
					esac
				done
				hdr=()
				;;
			*) hdr=() ;;
			esac
		done < "$line"
	done
	if [ -r /proc/net/fastsocket ]; then
		hdr=()
		while read -ra f; do
			case ${f[0]} in
			cpu) hdr=("${f[@]}") ;;
			total)
				for i in "${!hdr[@]}"; do
					[ "$i" = 0 ] && continue
					s[fs_${hdr[$i]}]=${f[$i]:-0}
				done ;;
			esac
		done < /proc/net/fastsocket
	fi
}

# delta BEFORE AFTER: "key=after-before ..." for every key of AFTER
delta()
{
	local -n a=$1 b=$2
	local k d=

	for k in $(printf '%s\n' "${!b[@]}" | sort); do
		d+=" d_$k=$((b[$k] - ${a[$k]:-0}))"
	done
	echo "${d# }"
}

# kvfile FILE PREFIX: the file's key=value lines on one line, keys prefixed
kvfile()
{
	local k v r=

	while IFS='=' read -r k v; do
		[[ $k =~ ^[a-z0-9_]+$ ]] || continue
		[ -n "$v" ] || continue
		r+=" $2$k=${v// /_}"
	done < "$1"
	echo "${r# }"
}

# --------------------------------------------------------------- servers
srv_pid=
srv_out=
backend_pid=

# nginx, HAProxy and fs_wait_port: the set-ups the selftests run too.
# shellcheck source=../tools/servers.sh
. "$top/tools/servers.sh"

# start_nginx DIR PORT [OPTION...]: 2 workers, fs_nginx_conf's OPTIONs;
# sets the pid in $REPLY
start_nginx()
{
	fs_nginx_conf "$1" "127.0.0.1:$2" workers=2 foreground "${@:3}" || return 1
	nginx -p "$1" -c "$1/nginx.conf" > "$1/stdout" 2>&1 &
	REPLY=$!
	fs_wait_port "$2" || { cat "$1/stdout" "$1/error.log" >&2 2>/dev/null; return 1; }
}

stop_pid()
{
	local pid=$1 i

	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# server_start CONFIG RAWPREFIX: arm Fastsocket as the configuration wants,
# start its server(s); sets srv_pid, srv_out, port, kind
server_start()
{
	local c=$1 raw=$2

	srv_pid= backend_pid= srv_out=
	log "start $c"
	fs_set "${cfg_fs[$c]}"
	local -a words
	read -ra words <<< "${cfg_server[$c]//W/2}"
	case ${words[0]} in
	crr)
		kind=crr
		port=$port_crr
		srv_out=$raw.server.txt
		"$crr" server "${words[@]:1}" --port $port > "$srv_out" 2> "$raw.server.err" &
		srv_pid=$!
		fs_wait_crr "$srv_out" $srv_pid && return 0
		log "$c: crr server did not start: $(cat "$raw.server.err")"
		return 1
		;;
	nginx)
		kind=wrk
		port=$port_nginx
		start_nginx "$work/$c" $port "${words[@]:1}" || { log "$c: nginx did not start"; return 1; }
		srv_pid=$REPLY
		;;
	haproxy)
		kind=wrk
		port=$port_haproxy
		start_nginx "$work/$c-backend" $port_backend ||
			{ log "$c: backend nginx did not start"; return 1; }
		backend_pid=$REPLY
		fs_haproxy_conf "$work/$c" 127.0.0.1:$port 127.0.0.1:$port_backend threads=2
		haproxy -db -f "$work/$c/haproxy.cfg" > "$raw.server.txt" 2>&1 &
		srv_pid=$!
		fs_wait_port $port || { log "$c: haproxy did not start: $(cat "$raw.server.txt")"; return 1; }
		;;
	*) log "$c: unknown server '${cfg_server[$c]}' in configs.md"; return 1 ;;
	esac
}

server_stop()
{
	stop_pid "$srv_pid"
	stop_pid "$backend_pid"
	srv_pid= backend_pid=
	fs_set off
}

# client CONFIG SECONDS RAWPREFIX: run the load, output in RAWPREFIX.client.txt
client()
{
	local c=$1 secs=$2 raw=$3 limit

	# A hung client must not hang the boot: wrk has no limit of its own.
	limit=$(awk -v s="$secs" 'BEGIN { printf "%d", s * 3 + 60 }')
	if [ "$kind" = crr ]; then
		local args=(--port "$port" --threads 2 --pin --flows "$flows" --duration "$secs")
		# shellcheck disable=SC2206 # crr's extra flags, a word list
		args+=(${cfg_client[$c]#crr})
		[ "$meter" = 0 ] || args+=(--meter)
		timeout -k 5 "$limit" "$crr" client "${args[@]}" \
			> "$raw.client.txt" 2> "$raw.client.err" || true
	else
		local hdr=(-H "Connection: close") pre=()
		[ "${cfg_client[$c]}" = "wrk keepalive" ] && hdr=()
		# "wrk close active": its connect()s enabled by libfastsocket.so
		[ "${cfg_client[$c]}" = "wrk close active" ] &&
			pre=(env LD_PRELOAD="$top/build/tools/libfastsocket.so" FASTSOCKET_ACTIVE=1)
		[ "$meter" = 0 ] || "$crr" mark begin "$c"
		timeout -k 5 "$limit" "${pre[@]}" wrk -t2 -c$((2 * flows)) -d"${secs}s" --latency "${hdr[@]}" \
			"http://127.0.0.1:$port/" > "$raw.client.txt" 2> "$raw.client.err" || true
		[ "$meter" = 0 ] || "$crr" mark end "$c"
	fi
}

# client_result RAWPREFIX: the client's results as key=value on one line
client_result()
{
	if [ "$kind" = crr ]; then
		crr_result "$1.client.txt"
	else
		fs_wrk_result "$1.client.txt"
	fi
}

crr_result()
{
	local k v r=

	while IFS='=' read -r k v; do
		case $k in
		cps|tps) r+=" rate=$v unit=$k" ;;
		connections|transactions|duration_s|failed_connects|resets|timeouts|errors|addr_not_avail)
			r+=" $k=$v" ;;
		latency_p50_us|latency_p90_us|latency_p99_us|latency_mean_us)
			r+=" ${k#latency_}=$v" ;;
		esac
	done < "$1"
	echo "${r# }"
}

# ------------------------------------------------------------------ perf
perf_ok=1
command -v perf >/dev/null || perf_ok=0
perf_dir=$out/perf

# run_perf CONFIG: one profiling run of the configuration, not timed
run_perf()
{
	local c=$1 pd=$perf_duration lpid rc raw

	raw=$work/perf-$c

	server_start "$c" "$raw" || { server_stop; echo "$c: server failed" >> "$perf_dir/failures.txt"; return 0; }
	# cpu-clock profile, whole system, call graphs.
	client "$c" "$pd" "$raw.a" &
	lpid=$!
	rc=0
	perf record -q -e cpu-clock -a -g -o "$work/perf-$c.data" -- sleep "$pd" \
		> "$perf_dir/$c.record.log" 2>&1 || rc=$?
	wait $lpid || true
	if [ $rc = 0 ]; then
		perf report -i "$work/perf-$c.data" --stdio --no-children \
			--percent-limit 0.5 --sort comm,dso,sym -g none \
			> "$perf_dir/$c.cpu.txt" 2> "$perf_dir/$c.report.log" ||
			echo "$c: perf report failed (rc $?), see $c.report.log" >> "$perf_dir/failures.txt"
		perf report -i "$work/perf-$c.data" --stdio --no-children \
			--percent-limit 2 -g caller,0.5,callee --sort sym \
			> "$perf_dir/$c.callgraph.txt" 2>> "$perf_dir/$c.report.log" || true
	else
		echo "$c: perf record -e cpu-clock failed (rc $rc), see $c.record.log" >> "$perf_dir/failures.txt"
	fi
	rm -f "$work/perf-$c.data"

	# Lock contention from the lock:contention_begin/end tracepoints.
	client "$c" "$pd" "$raw.b" &
	lpid=$!
	rc=0
	perf record -q -e lock:contention_begin -e lock:contention_end -a -g \
		-o "$work/lock-$c.data" -- sleep "$pd" > "$perf_dir/$c.lockrec.log" 2>&1 || rc=$?
	wait $lpid || true
	if [ $rc = 0 ]; then
		# perf 6.1 prints the table on stderr.
		perf lock contention -i "$work/lock-$c.data" -E 25 \
			> "$perf_dir/$c.lock.txt" 2>&1 ||
			echo "$c: perf lock contention -i failed (rc $?), see $c.lock.txt" >> "$perf_dir/failures.txt"
	else
		echo "$c: perf record -e lock:contention_* failed (rc $rc), see $c.lockrec.log" >> "$perf_dir/failures.txt"
	fi
	rm -f "$work/lock-$c.data"
	server_stop
}

# ------------------------------------------------------------------ main
n=${#run[@]}
log "${n} configurations x $repeats repeats x ${duration}s: ${run[*]} (module: $modstate)"
status=0
seq_no=0
for rep in $(seq "$repeats"); do
	start=0
	[ $rotate = 1 ] && start=$(((rep - 1) % n))
	for j in $(seq 0 $((n - 1))); do
		c=${run[$(((start + j) % n))]}
		seq_no=$((seq_no + 1))
		raw=$out/raw/$c.r$rep
		if ! server_start "$c" "$raw"; then
			server_stop
			echo "config=$c rep=$rep seq=$seq_no error=server-start" >> "$records"
			status=1
			continue
		fi
		sleep 0.5
		# shellcheck disable=SC2034 # filled by snap, read by delta
		declare -A before=() after=()
		snap before
		t0=$EPOCHREALTIME
		client "$c" "$duration" "$raw"
		t1=$EPOCHREALTIME
		snap after
		server_stop
		res=$(client_result "$raw")
		srv=
		[ "$kind" = crr ] && srv=$(kvfile "$srv_out" srv_)
		elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
		line="config=$c rep=$rep seq=$seq_no kind=$kind elapsed_s=$elapsed $res $srv $(delta before after)"
		# crr client and "crr mark" each begin one meter phase per run.
		if [ "$meter" = 1 ]; then
			phase_no=$((phase_no + 1))
			line+=" phase=$phase_no"
		fi
		echo "$line" >> "$records"
		case $res in *rate=*) ;; *) status=1 ;; esac
		r=${res#*rate=}
		log "rep $rep/$repeats $c: ${r%% *}/s"
	done
done

if [ $perf = 1 ]; then
	if [ $perf_ok = 0 ]; then
		echo "perf not found" > "$perf_dir/failures.txt"
	else
		for c in "${run[@]}"; do
			log "perf: $c"
			run_perf "$c" || echo "$c: profiling failed" >> "$perf_dir/failures.txt"
		done
	fi
fi
[ -d $fsdir ] && fs_set off
log "done: $(wc -l < "$records") records in $records"
exit $status
}
