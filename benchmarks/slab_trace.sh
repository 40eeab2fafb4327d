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
# It is "trace_mark.sh slab": the kmem events kmem_cache_alloc,
# kmem_cache_free, kmalloc and kfree, written to $FS_OUT/slab/NAME.N.trace.
# Bulk allocations and frees (kmem_cache_{alloc,free}_bulk: the NAPI skb
# cache) have no per-object event and are not seen.
exec "$(dirname "$0")/trace_mark.sh" slab "$@"
