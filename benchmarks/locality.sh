#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# locality.sh: count cross-CPU cache-line transfers per connection with the
# locality meter (benchmarks/meter/), in the placement where locality
# matters (benchmarks/placement.sh: clients and server in their own
# network namespaces and vCPUs, veth, RPS spreading flows over the server
# CPUs). One instruction-counted boot per (server CPU count, switch
# quantum); every configuration runs in each boot, side by side.
#
#   benchmarks/locality.sh [options]
#
#   --servers LIST    server CPU counts, e.g. 2,4 (default 2); the clients
#                     get as many vCPUs again
#   --switch LIST     the meter's vCPU switch quanta in instructions
#                     (default 10000); give three to see the spread
#   --configs LIST    placement.sh configurations (default
#                     shared,shared_pin,reuseport,fs_listen,fs_pin)
#   --duration S      guest seconds per configuration (default 0.5)
#   --repeats N       timed runs per configuration and boot (default 1)
#   --reserve-us US   net.fastsocket.listen_reserve_us for fs_* (default
#                     auto: the 100 us default scaled by how much slower
#                     a vCPU runs than a real core. Under icount all
#                     vCPUs share 10^9 instructions per guest second, so
#                     with V vCPUs busy each runs 10^9/V, against about
#                     3x10^9 for a 3 GHz core at IPC 1: 100 x 3V us,
#                     1200 for 4 vCPUs, 4800 for 16)
#   --kernel PATH     default build/bzImage-bench
#   --module PATH     default build/module-obj-bench/fastsocket.ko
#   --out DIR         default build/locality/<timestamp>; build/locality/latest
#                     points to the last one
#   --top N           functions listed per configuration (default 15)
#   --sites N         transfer sites the meter writes per phase (its top=,
#                     default 200): more of the tail is then attributed
#   --callers         the meter also keys each transfer by its caller
#                     (callers=1); the report then lists function <- caller
#   --timer-migration N  placement.sh's kernel.timer_migration (default:
#                     leave it)
#   --wire veth|nic   placement.sh's wire (default veth); nic boots with
#                     vm-run --wire N: two N-queue virtio-net NICs,
#                     flows spread over the queues by their hash
#   --close-first     placement.sh --close-first: crr's server closes
#                     first, so that its side goes to TIME_WAIT
#   --isolate         boot with isolcpus=domain,<server CPUs>: the server
#                     CPUs get no scheduler domain, so the scheduler's
#                     load balancing (which reads every CPU's run queue
#                     when one goes idle) leaves them alone. A pinned
#                     configuration (reuseport, fs_pin*) keeps its
#                     placement and shows its connection path without
#                     the balancer's transfers; an unpinned one (shared,
#                     nginx) is no longer balanced over the server CPUs.
#                     Needs --wire nic (no RPS onto isolated CPUs)
#
# Output in DIR: per boot a directory (meter.txt, kallsyms, placement.txt,
# console.log), report.md (the table and the top functions) and
# locality.txt (one key=value line per configuration and boot).
set -euo pipefail

# One compound command, read whole before it runs (safe to edit meanwhile).
{
top=$(cd "$(dirname "$0")/.." && pwd)
servers=2
switches=10000
configs=shared,shared_pin,reuseport,fs_listen,fs_pin
duration=0.5
repeats=1
reserve=auto
kernel=$top/build/bzImage-bench
module=$top/build/module-obj-bench/fastsocket.ko
out=
ntop=15
callers=0
sites=200
timer_args=()
wire=veth
isolate=0
close_args=()

usage() { sed -n '4,54p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
die() { echo "locality.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case $1 in
	--servers) servers=$2; shift 2 ;;
	--switch) switches=$2; shift 2 ;;
	--configs) configs=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	--repeats) repeats=$2; shift 2 ;;
	--reserve-us) reserve=$2; shift 2 ;;
	--kernel) kernel=$2; shift 2 ;;
	--module) module=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--top) ntop=$2; shift 2 ;;
	--sites) sites=$2; shift 2 ;;
	--callers) callers=1; shift ;;
	--wire) wire=$2; shift 2 ;;
	--isolate) isolate=1; shift ;;
	--close-first) close_args=(--close-first); shift ;;
	--timer-migration) timer_args=(--timer-migration "$2"); shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "locality.sh: unknown option $1" >&2; usage ;;
	esac
done
[[ $servers =~ ^[1-8](,[1-8])*$ ]] || die "--servers wants counts 1-8, e.g. 2,4"
[[ $sites =~ ^[1-9][0-9]*$ ]] || die "--sites wants a positive count"
case $wire in veth|nic) ;; *) die "--wire wants veth or nic" ;; esac
[ $isolate = 0 ] || [ $wire = nic ] ||
	die "--isolate needs --wire nic: the kernel refuses RPS onto isolated CPUs"
[[ $switches =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--switch wants instruction counts"
[ -r "$kernel" ] || die "no kernel $kernel (make kernel FLAVOR=bench)"
[ -r "$module" ] || die "no module $module (make module FLAVOR=bench)"
plugin=$top/build/benchmarks/locality.so
[ -r "$plugin" ] || die "no $plugin (make benchmarks)"

[ -n "$out" ] || out=$top/build/locality/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
out=$(cd "$out" && pwd)
ln -sfn "$out" "$top/build/locality/latest" 2>/dev/null || true

rc=0
for n in ${servers//,/ }; do
	srv="0-$((n - 1))"
	r=$reserve
	[ "$r" != auto ] || r=$((300 * 2 * n))
	cli="$n-$((2 * n - 1))"
	wire_args=()
	[ $wire = veth ] || wire_args=(--wire "$n")
	[ $isolate = 0 ] || wire_args+=(--append "isolcpus=domain,$srv")
	for sw in ${switches//,/ }; do
		dir=$out/s$n-sw$sw
		mkdir -p "$dir"
		echo "locality.sh: $n server CPUs, switch=$sw -> $dir" >&2
		# Guest time is instructions; the wall limit allows for the
		# plugin's slowdown. The guest command is one line: vm-run
		# quotes it for /bin/sh, which knows no $'...'.
		if ! "$top/tools/vm-run" --icount -q -c $((2 * n)) -m 2048 \
			-t 5400 -k "$kernel" -o "$dir" "${wire_args[@]}" \
			--plugin "$plugin,out=$dir/meter.txt,switch=$sw,server=$srv,client=$cli,callers=$callers,top=$sites" \
			-- sh -c 'echo 0 > /proc/sys/kernel/kptr_restrict && cat /proc/kallsyms > "$FS_OUT/kallsyms" && exec "$@"' sh \
			"$top/benchmarks/placement.sh" --meter \
			--server-cpus "$srv" --client-cpus "$cli" \
			--configs "$configs" --duration "$duration" \
			--repeats "$repeats" --reserve-us "$r" \
			"${timer_args[@]}" "${close_args[@]}" --wire $wire \
			--module "$module"; then
			echo "locality.sh: boot $dir failed" >&2
			rc=1
		fi
	done
done
python3 "$top/benchmarks/locality_report.py" --top "$ntop" "$out" \
	> "$out/report.md" || rc=1
cat "$out/report.md"
exit $rc
}
