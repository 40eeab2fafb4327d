#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""slab_report.py: which slab objects are freed on another CPU than the
one that allocated them, per connection, from benchmarks/slab_trace.sh's
traces of a placement.sh boot.

    benchmarks/slab_report.py [--top N] [--kind ss|cs|sc|cc] [--reuse] RUN_DIR

RUN_DIR holds placement.txt and slab/NAME.N.trace (a tools/vm-run output
directory). An allocation and its free are paired by pointer (the trace
hashes pointers, the same pointer to the same hash within a boot); a free
whose allocation fell before the trace began is counted as unpaired. A
pair is cross-CPU when the two CPUs differ, and its kind is the CPU sets
of the allocating and the freeing CPU: ss (server, server), cs (client
allocates, server frees), sc, cc. Per configuration: the frees per
connection by kind, then the top (cache, allocating function, freeing
function) of one kind (--kind, default ss: server<->server), per
connection.

With --reuse, the report is about reuse instead: an allocation of an
object whose last free (in the trace) was on another CPU. Its kind is the
CPU sets of the freeing and the allocating CPU, and the top rows are
(cache, freeing function, allocating function). Such an object's lines
were written last by the CPU that freed it (at least the free pointer),
so the new owner's first touches are cache-line transfers: the locality
meter's slab rows that no free names.
"""
import argparse
import collections
import os
import re
import sys

EVENT = re.compile(r"\[(\d+)\][^:]*:\s+(kmem_cache_alloc|kmem_cache_free|"
                   r"kmalloc|kfree):\s+(.*)$")
FIELD = re.compile(r"(\w+)=(\S+)")


def cpus(spec):
    """'0-3,6' -> {0, 1, 2, 3, 6}"""
    out = set()
    for part in spec.split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def fn(site):
    """'tcp_conn_request+0x1a/0x300' -> 'tcp_conn_request'"""
    return site.split("+", 1)[0]


def runs(run_dir):
    """(config, n) -> placement.txt's key=value record of that run."""
    seen = collections.Counter()
    out = {}
    with open(os.path.join(run_dir, "placement.txt")) as f:
        for line in f:
            kv = dict(FIELD.findall(line))
            if "config" not in kv:
                continue
            seen[kv["config"]] += 1
            out[(kv["config"], seen[kv["config"]])] = kv
    return out


def events(path):
    """Each kmem event of a trace: (cpu, event, ptr, its fields)."""
    with open(path, errors="replace") as f:
        for line in f:
            m = EVENT.search(line)
            if not m:
                continue
            kv = dict(FIELD.findall(m.group(3)))
            ptr = kv.get("ptr")
            if not ptr or ptr in ("0000000000000000", "(null)"):
                continue
            yield int(m.group(1)), m.group(2), ptr, kv


def cpu_set(c, server, client):
    return "s" if c in server else "c" if c in client else "o"


ALLOCS = ("kmem_cache_alloc", "kmalloc")
FREES = ("kmem_cache_free", "kfree")


def pair_up(path, server, client, want, first):
    """Pair each event of the kinds in @first (allocations, or frees) with
    the next event of the other kind on the same object. Returns the pairs
    per kind (local, or the two events' CPU sets), the top (cache, first
    site, second site) of kind @want, and the second events with no first
    in the trace."""
    seen = {}			# ptr -> (cpu, site, cache name, kmalloc size)
    kinds = collections.Counter()
    top = collections.Counter()
    alone = 0

    for cpu, ev, ptr, kv in events(path):
        # A free event names its cache; a kmalloc is known by its size.
        name = kv.get("name")
        size = kv.get("bytes_alloc") if ev == "kmalloc" else None
        if ev in first:
            seen[ptr] = (cpu, fn(kv.get("call_site", "?")), name, size)
            continue
        got = seen.pop(ptr, None)
        if got is None:
            alone += 1
            continue
        cpu1, site1, name1, size1 = got
        if cpu1 == cpu:
            kinds["local"] += 1
            continue
        kind = cpu_set(cpu1, server, client) + cpu_set(cpu, server, client)
        kinds[kind] += 1
        if kind == want:
            name = name or name1
            size = size or size1
            if not name:
                name = "kmalloc-%s" % size if size else "?"
            top[(name, site1, fn(kv.get("call_site", "?")))] += 1
    return kinds, top, alone


def analyse(path, server, client, want="ss"):
    """Frees of objects allocated on another CPU."""
    return pair_up(path, server, client, want, ALLOCS)


def analyse_reuse(path, server, client, want="ss"):
    """Allocations of objects last freed on another CPU."""
    return pair_up(path, server, client, want, FREES)


def lost(path):
    total = 0
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1].isdigit():
                    total += int(parts[1])
    except OSError:
        return None
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--kind", default="ss", choices=["ss", "cs", "sc", "cc"])
    ap.add_argument("--reuse", action="store_true",
                    help="objects allocated on another CPU than their last free")
    ap.add_argument("run_dir")
    a = ap.parse_args()
    slab = os.path.join(a.run_dir, "slab")
    try:
        records = runs(a.run_dir)
        traces = sorted(t for t in os.listdir(slab) if t.endswith(".trace"))
    except OSError as e:
        sys.exit("slab_report: %s" % e)
    if not traces:
        sys.exit("slab_report: no traces in %s" % slab)
    for t in traces:
        name, n = t[:-len(".trace")].rsplit(".", 1)
        kv = records.get((name, int(n)))
        if not kv or not kv.get("conns"):
            print("config=%s run=%s no placement record with conns" % (name, n))
            continue
        conns = int(kv["conns"])
        server = cpus(kv.get("server_cpus", ""))
        client = cpus(kv.get("client_cpus", ""))
        path = os.path.join(slab, t)
        nlost = lost(os.path.join(slab, t[:-len(".trace")] + ".lost"))
        if a.reuse:
            kinds, top, fresh = analyse_reuse(path, server, client, a.kind)
            first = "first_alloc_per_conn=%.2f" % (fresh / conns)
        else:
            kinds, top, unpaired = analyse(path, server, client, a.kind)
            first = "unpaired_per_conn=%.2f" % (unpaired / conns)
        per = {k: kinds[k] / conns for k in ("local", "ss", "cs", "sc", "cc")}
        print("config=%s run=%s conns=%d lost_events=%s %s %s"
              % (name, n, conns, nlost, first,
                 " ".join("%s_per_conn=%.2f" % (k, v) for k, v in per.items())))
        for (cache, s1, s2), c in top.most_common(a.top):
            if a.reuse:
                print("  %s_per_conn=%.2f cache=%s free=%s alloc=%s"
                      % (a.kind, c / conns, cache, s1, s2))
            else:
                print("  %s_per_conn=%.2f cache=%s alloc=%s free=%s"
                      % (a.kind, c / conns, cache, s1, s2))


if __name__ == "__main__":
    main()
