#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# trace_mark.sh: record trace events around placement.sh's timed runs. A
# placement.sh --mark hook, in the guest:
#
#   --mark "$PWD/benchmarks/trace_mark.sh SET"
#
# SET picks the events and the report that reads them:
#   slab   kmem_cache_alloc, kmem_cache_free, kmalloc, kfree
#          (benchmarks/slab_report.py; benchmarks/slab_trace.sh is this
#          set's own name)
#   sched  sched_switch, sched_wakeup, softirq_entry/exit and
#          inet_sock_set_state (benchmarks/steal_report.py: what a
#          connection's CPU did while it waited to be accepted)
#
# "trace_mark.sh SET begin NAME" clears the trace buffers and turns the
# events on; "trace_mark.sh SET end NAME" turns them off and writes the
# buffer to $FS_OUT/SET/NAME.N.trace (N counts the runs of NAME), with
# $FS_OUT/SET/NAME.N.lost holding the events each CPU's buffer lost. The
# events cost instructions: the timed run is slower, so use a trace to
# attribute, not to count rates.
set -euo pipefail

set_name=${1:?event set: slab or sched}
what=${2:?begin or end}
name=${3:?configuration name}
out=${FS_OUT:?FS_OUT not set: run under tools/vm-run}/$set_name
t=/tmp/fs-$set_name-tracing
case $set_name in
slab) events="kmem/kmem_cache_alloc kmem/kmem_cache_free kmem/kmalloc kmem/kfree" ;;
sched) events="sched/sched_switch sched/sched_wakeup irq/softirq_entry irq/softirq_exit sock/inet_sock_set_state" ;;
*) echo "trace_mark: event set slab or sched, not $set_name" >&2; exit 2 ;;
esac

mkdir -p "$out" "$t"
mountpoint -q "$t" || mount -t tracefs tracefs "$t" ||
	{ echo "trace_mark: cannot mount tracefs (CONFIG_FTRACE?)" >&2; exit 1; }
for e in $events; do
	[ -d "$t/events/$e" ] ||
		{ echo "trace_mark: no event $e (CONFIG_TRACEPOINTS?)" >&2; exit 1; }
done

case $what in
begin)
	echo 0 > "$t/tracing_on"
	for e in $events; do echo 0 > "$t/events/$e/enable"; done
	echo 16384 > "$t/buffer_size_kb"
	: > "$t/trace"
	for e in $events; do echo 1 > "$t/events/$e/enable"; done
	echo 1 > "$t/tracing_on"
	;;
end)
	echo 0 > "$t/tracing_on"
	for e in $events; do echo 0 > "$t/events/$e/enable"; done
	n=1
	while [ -e "$out/$name.$n.trace" ]; do n=$((n + 1)); done
	cat "$t/trace" > "$out/$name.$n.trace"
	for c in "$t"/per_cpu/cpu*; do
		printf '%s %s\n' "${c##*/}" \
			"$(sed -n 's/^overrun: //p' "$c/stats")"
	done > "$out/$name.$n.lost"
	: > "$t/trace"
	;;
*)
	echo "trace_mark: begin or end, not $what" >&2
	exit 2
	;;
esac
