#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# slab_trace.sh: record the slab allocations and frees of placement.sh's
# timed runs, to find which objects a CPU frees that another CPU allocated
# (the locality meter's slab rows). A placement.sh --mark hook, in the
# guest:
#
#   tools/vm-run -c 8 -k build/bzImage-bench -- benchmarks/placement.sh \
#       --server-cpus 0-3 --configs reuseport,fs_pin_all \
#       --mark "$PWD/benchmarks/slab_trace.sh" --repeats 1 --duration 0.5
#   benchmarks/slab_report.py build/vm/<run>
#
# "slab_trace.sh begin NAME" clears the trace buffers and turns on the
# kmem events kmem_cache_alloc, kmem_cache_free, kmalloc and kfree;
# "slab_trace.sh end NAME" turns them off and writes the buffer to
# $FS_OUT/slab/NAME.N.trace (N counts the runs of NAME), with
# $FS_OUT/slab/NAME.N.lost holding the events each CPU's buffer lost.
# Bulk allocations and frees (kmem_cache_{alloc,free}_bulk: the NAPI skb
# cache) have no per-object event and are not seen. The events cost
# instructions: the timed run is slower, so use it to attribute, not to
# count rates.
set -euo pipefail

what=${1:?begin or end}
name=${2:?configuration name}
out=${FS_OUT:?FS_OUT not set: run under tools/vm-run}/slab
t=/tmp/fs-slab-tracing
events="kmem_cache_alloc kmem_cache_free kmalloc kfree"

mkdir -p "$out" "$t"
mountpoint -q "$t" || mount -t tracefs tracefs "$t" ||
	{ echo "slab_trace: cannot mount tracefs (CONFIG_FTRACE?)" >&2; exit 1; }
[ -d "$t/events/kmem" ] ||
	{ echo "slab_trace: no kmem events (CONFIG_TRACEPOINTS?)" >&2; exit 1; }

case $what in
begin)
	echo 0 > "$t/tracing_on"
	for e in $events; do echo 0 > "$t/events/kmem/$e/enable"; done
	echo 16384 > "$t/buffer_size_kb"
	: > "$t/trace"
	for e in $events; do echo 1 > "$t/events/kmem/$e/enable"; done
	echo 1 > "$t/tracing_on"
	;;
end)
	echo 0 > "$t/tracing_on"
	for e in $events; do echo 0 > "$t/events/kmem/$e/enable"; done
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
	echo "slab_trace: begin or end, not $what" >&2
	exit 2
	;;
esac
