#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""vfs_profile.py RUNDIR [--vmlinux PATH]: the VFS share of a short
connection, from benchmarks/vfs_profile.sh's profile.

    vfs_profile.py --roots SYSTEM_MAP        the locality meter's roots=
                                             file for the parts below
    vfs_profile.py --meter RUNDIR            instructions per connection
                                             by part, from the meter
                                             (benchmarks/vfs_insns.sh)

RUNDIR for --meter is vfs_insns.sh's (modes off and vfs, one phase each)
or a guest-matrix.sh --meter run's (records.txt: a column per
configuration, its timed runs summed).

With --meter the parts are counted in instructions by the locality
meter's roots= (benchmarks/meter/locality.c): each function of PARTS and
RELEASE is a root, and a root's instructions, with those of everything it
calls, go to its part; the innermost root wins (iput() under dput() is the
inode's). That is repeatable, where perf's samples weigh host time.

Each cpu-clock sample's call chain is put in one bucket, first match wins:

  idle           the innermost frame halts the CPU
  sock_release   under __sock_release(): the protocol's close, reached
                 through __fput but not VFS work
  vfs_teardown   close(2)'s fd removal and __fput()/dput()/iput() of the
                 file, dentry and inode (not under sock_close())
  vfs_rcu        the RCU callbacks that free a socket's dentry and inode
  vfs_setup      socket(2)/accept(2) making the identity: the inode
                 (sock_alloc), file and dentry (sock_alloc_file), the fd
  user           user space
  kernel_other   everything else in the kernel: TCP/IP, syscalls, the
                 scheduler, softirqs

Prints a Markdown table of the buckets as shares of the busy samples and
as instructions per connection (under icount the busy samples are
instructions: samples x period, divided by the connections in the
window), and the top functions (self) inside each VFS bucket.
"""
import argparse
import collections
import os
import subprocess
import sys

IDLE = {"pv_native_safe_halt", "default_idle", "native_safe_halt",
        "acpi_idle_do_entry", "mwait_idle", "poll_idle"}
# The protocol's close: under __sock_release(). What sock_close() does
# around it (VFS-light sockets keep their pair there) is VFS teardown.
RELEASE = {"__sock_release", "inet_release", "inet6_release", "tcp_close"}
TEARDOWN = {"__fput", "____fput", "__x64_sys_close", "close_fd",
            "file_close_fd", "file_close_fd_locked", "filp_close",
            "filp_flush", "dput", "__dentry_kill", "iput", "evict",
            "destroy_inode", "file_free", "fput_close_sync", "sock_close",
            "sock_close_light", "sock_pair_keep", "sock_pair_clean"}
RCU = {"i_callback", "sock_free_inode", "__d_free", "__d_free_external",
       "file_free_rcu"}
SETUP = {"sock_alloc_file", "alloc_file_pseudo", "d_alloc_pseudo",
         "sock_alloc", "new_inode_pseudo", "alloc_inode", "fd_install",
         "get_unused_fd_flags", "alloc_fd", "sock_map_fd",
         "__get_unused_fd_flags", "sock_alloc_accept", "sock_pair_take",
         "sock_pair_file", "alloc_file_pseudo_path"}
ORDER = ["vfs_setup", "vfs_teardown", "vfs_rcu", "sock_release",
         "kernel_other", "user"]
# Inside the VFS buckets, which part of the identity: first match wins
# (iput() runs inside dput(), so the inode comes before the dentry).
PARTS = [
    # The cache's own work; the new file on a kept dentry
    # (sock_pair_file(), alloc_file_pseudo_path()) is the file's, as
    # alloc_file_pseudo()'s is without VFS-light.
    ("kept pairs (VFS-light)", {"sock_pair_take", "sock_pair_keep",
                                "sock_pair_clean", "sock_close_light",
                                "start_poll_synchronize_rcu"}),
    ("epoll removal", {"eventpoll_release_file", "ep_remove_epi"}),
    ("fd table", {"alloc_fd", "get_unused_fd_flags", "fd_install",
                  "file_close_fd", "file_close_fd_locked", "close_fd"}),
    ("inode", {"sock_alloc", "new_inode_pseudo", "alloc_inode", "iput",
               "evict", "destroy_inode", "i_callback", "sock_free_inode"}),
    ("dentry", {"d_alloc_pseudo", "__d_alloc", "d_instantiate", "dput",
                "__dentry_kill", "__d_free", "__d_free_external"}),
    ("file", {"alloc_file_pseudo", "alloc_file_pseudo_path",
              "sock_pair_file", "alloc_empty_file", "file_free",
              "__fput", "____fput"}),
]


# The meter's parts: each PARTS function, the protocol's close (not VFS:
# excluded from the VFS total), and sock_alloc_file()/sock_alloc_light()
# which only call into the parts; __schedule() is a barrier (the vCPU goes
# on with another task).
PROTOCOL = "protocol close"
EXTRA_ROOTS = [("sock_alloc_file", "file"),
               ("sock_alloc_light", "kept pairs (VFS-light)")]


def roots(system_map):
    """Lines "ADDR NAME PART" for the meter's roots=, from System.map."""
    want = {}
    for name, funcs in PARTS:
        for f in funcs:
            want.setdefault(f, name)
    for f in RELEASE:
        want[f] = PROTOCOL
    for f, name in EXTRA_ROOTS:
        want.setdefault(f, name)
    want["__schedule"] = "-"
    found = {}
    with open(system_map) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[1] in "tT" and parts[2] in want:
                found[parts[2]] = parts[0]
    out = ["# vfs_profile.py --roots %s: function entry, name, part"
           % system_map]
    for name in sorted(found):
        out.append("%s %s %s" % (found[name], name, want[name].replace(" ", "_")))
    missing = sorted(set(want) - set(found))
    if missing:
        out.append("# not in System.map (inlined or absent): " + " ".join(missing))
    return "\n".join(out) + "\n"


def meter_report(run):
    """Instructions per connection by part, one column per mode."""
    phases = collections.OrderedDict()
    with open(os.path.join(run, "meter.txt")) as f:
        for line in f:
            r = dict(t.split("=", 1) for t in line.split() if "=" in t)
            p = r.get("phase")
            if not p or not p.isdigit():
                continue
            ph = phases.setdefault(int(p), {"parts": {}})
            if r.get("scope") == "part":
                ph["parts"][r["name"].replace("_", " ")] = (
                    int(r["insns"]), int(r["calls"]))
            elif r.get("scope") in ("all", "roots"):
                ph[r["scope"]] = r
    cols = meter_columns(run, phases)
    names = [n for n, _ in PARTS] + ["file", PROTOCOL]
    names = list(dict.fromkeys(n for n in names))
    print("| part | " + " | ".join("%s insns/conn" % m for m, _, _ in cols)
          + (" | change |" if len(cols) == 2 else " |"))
    print("|---" * (len(cols) + 1 + (len(cols) == 2)) + "|")
    vfs = {}
    for n in names:
        vals = [ph["parts"].get(n, (0, 0))[0] / c for _, c, ph in cols]
        if n != PROTOCOL:
            for (m, _, _), v in zip(cols, vals):
                vfs[m] = vfs.get(m, 0) + v
        chg = ""
        if len(vals) == 2:
            chg = " | %+.0f%%" % (100 * (vals[1] / vals[0] - 1)) \
                if vals[0] else " | -"
        print("| %s | %s%s |" % (n, " | ".join("%.0f" % v for v in vals), chg))
    vals = [vfs.get(m, 0) for m, _, _ in cols]
    chg = (" | **%+.0f%%**" % (100 * (vals[1] / vals[0] - 1))
           if len(vals) == 2 and vals[0] else "")
    print("| **VFS, all** | %s%s |" % (
        " | ".join("**%.0f**" % v for v in vals), chg))
    tot = [(float(ph["all"]["insns_k"]) + float(ph["all"]["insns_u"])) / c
           for _, c, ph in cols]
    kern = [float(ph["all"]["insns_k"]) / c for _, c, ph in cols]
    chg = (" | %+.1f%%" % (100 * (tot[1] / tot[0] - 1))
           if len(tot) == 2 else "")
    print("| kernel, all | %s |" % " | ".join("%.0f" % v for v in kern)
          + (" |" if len(kern) == 2 else ""))
    print("| all (kernel + user) | %s%s |" % (
        " | ".join("%.0f" % v for v in tot), chg))
    print()
    for k, (m, c, ph) in enumerate(cols):
        r = ph.get("roots", {})
        print("%s: connections=%d vfs_insns_per_conn=%.0f all_insns_per_conn=%.0f "
              "vfs_share=%.1f%% drops=%s overflow=%s"
              % (m, c, vfs.get(m, 0), tot[k], 100 * vfs.get(m, 0) / tot[k],
                 r.get("drops", "?"), r.get("overflow", "?")))
    names = [m for m, _, _ in cols]
    for k, b in enumerate(names):
        a = "off" if b == "vfs" else b[:-len("_vfs")] if b.endswith("_vfs") else None
        if a not in names or not vfs.get(a):
            continue
        j = names.index(a)
        print("%s against %s: vfs_change=%+.1f%% all_change=%+.1f%%"
              % (b, a, 100 * (vfs[b] / vfs[a] - 1), 100 * (tot[k] / tot[j] - 1)))


def add_phase(a, b):
    """Sum meter phase @b into @a (parts, insns of scope all, drops)."""
    for n, (i, c) in b["parts"].items():
        i0, c0 = a["parts"].get(n, (0, 0))
        a["parts"][n] = (i0 + i, c0 + c)
    for scope, keys in (("all", ("insns_k", "insns_u")),
                        ("roots", ("drops", "overflow"))):
        d = a.setdefault(scope, {})
        for k in keys:
            d[k] = str(int(d.get(k, 0)) + int(b.get(scope, {}).get(k, 0)))
    return a


def meter_columns(run, phases):
    """[(name, connections, phase counts)] in the run's order."""
    records = os.path.join(run, "records.txt")
    if os.path.exists(records):
        cols = collections.OrderedDict()
        with open(records) as f:
            for line in f:
                r = dict(t.split("=", 1) for t in line.split() if "=" in t)
                p, conns = r.get("phase"), float(r.get("connections", 0))
                if not p or not conns or int(p) not in phases:
                    continue
                name = r["config"]
                c, ph = cols.get(name, (0.0, {"parts": {}}))
                cols[name] = (c + conns, add_phase(ph, phases[int(p)]))
        if not cols:
            sys.exit("vfs_profile: no record of %s has a phase" % records)
        return [(n, c, ph) for n, (c, ph) in cols.items()]
    modes = [m for m in ("off", "vfs")
             if os.path.exists(os.path.join(run, m, "client.txt"))]
    if len(phases) != len(modes):
        sys.exit("vfs_profile: %d meter phases for modes %s" % (
            len(phases), modes))
    cols = []
    for m, (_, ph) in zip(modes, sorted(phases.items())):
        conns = float(kv(os.path.join(run, m, "client.txt")).get(
            "connections", "0"))
        if not conns:
            sys.exit("vfs_profile: no connections in %s/client.txt" % m)
        cols.append((m, conns, ph))
    return cols


def bucket(frames):
    """frames: innermost first, as (addr, sym)."""
    if not frames:
        return "kernel_other"
    if frames[0][1] in IDLE:
        return "idle"
    syms = {s for _, s in frames}
    if not frames[0][0].startswith("ffff"):
        return "user"
    if syms & RELEASE:
        return "sock_release"
    if syms & TEARDOWN:
        return "vfs_teardown"
    if syms & RCU:
        return "vfs_rcu"
    if syms & SETUP:
        return "vfs_setup"
    return "kernel_other"


def samples(text):
    cur = None
    for line in text.splitlines():
        if not line.strip():
            if cur is not None:
                yield cur
            cur = None
            continue
        if not line[0].isspace():
            if cur is not None:
                yield cur
            cur = (line.split()[0], [])
            continue
        parts = line.split(None, 1)
        if cur is not None and len(parts) == 2:
            cur[1].append((parts[0], parts[1].strip()))
    if cur is not None:
        yield cur


def kv(path):
    out = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                out[k] = v
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--roots", action="store_true",
                    help="RUN is a System.map: print the meter's roots=")
    ap.add_argument("--meter", action="store_true",
                    help="RUN holds the meter's meter.txt (vfs_insns.sh)")
    ap.add_argument("run")
    ap.add_argument("--vmlinux", default=os.path.join(
        os.path.dirname(__file__), "..", "build", "obj-bench", "vmlinux"))
    ap.add_argument("--freq", type=float, default=4000.0,
                    help="perf record -F (default 4000)")
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="the recorded window, guest seconds (default 2)")
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--icount", action="store_true",
                    help="the boot was instruction-counted: print "
                    "instructions per connection (otherwise samples per "
                    "1000 connections, host-time weighted)")
    a = ap.parse_args()
    if a.roots:
        sys.stdout.write(roots(a.run))
        return 0
    if a.meter:
        meter_report(a.run)
        return 0

    text = subprocess.run(
        ["perf", "script", "-i", os.path.join(a.run, "perf.data"),
         "-k", a.vmlinux, "-F", "comm,ip,sym"],
        check=True, capture_output=True, text=True).stdout
    count = collections.Counter()
    parts = collections.Counter()
    top = collections.defaultdict(collections.Counter)
    for _, frames in samples(text):
        b = bucket(frames)
        count[b] += 1
        if b.startswith("vfs_"):
            syms = {sym for _, sym in frames}
            parts[next((name for name, s in PARTS if syms & s),
                       "other")] += 1
        if frames:
            top[b][frames[0][1]] += 1
    client = kv(os.path.join(a.run, "client.txt"))
    cps = float(client.get("cps", "0"))
    busy = sum(count[b] for b in ORDER)
    # icount shift=0: the vCPUs share 10^9 instructions per guest second,
    # so a busy sample stands for 10^9 / (samples per second) of them.
    total = busy + count["idle"]
    insns_per_sample = 1e9 * a.seconds / total if total else 0
    conns = cps * a.seconds
    print(f"samples {total} (busy {busy}, idle {count['idle']}), "
          f"{cps:.0f} connections/s, {conns:.0f} in the window\n")
    unit = "instructions/conn" if a.icount else "samples/1000 conns"
    scale = insns_per_sample if a.icount else 1000.0

    def per(n):
        return f"{n * scale / conns:,.0f}" if conns else "-"

    print(f"| bucket | share of busy | {unit} |")
    print("|---|---|---|")
    for b in ORDER:
        share = count[b] / busy if busy else 0
        print(f"| {b} | {share:.1%} | {per(count[b])} |")
    vfs = sum(count[b] for b in ("vfs_setup", "vfs_teardown", "vfs_rcu"))
    if busy:
        print(f"| **VFS, all** | **{vfs / busy:.1%}** | **{per(vfs)}** |")
    print(f"| total busy | 100% | {per(busy)} |")
    print("\nThe VFS buckets by part of the identity:\n")
    print(f"| part | share of busy | {unit} |")
    print("|---|---|---|")
    for name, _ in PARTS + [("other", None)]:
        print(f"| {name} | {parts[name] / busy:.1%} | {per(parts[name])} |"
              if busy else "")
    for b in ("vfs_setup", "vfs_teardown", "vfs_rcu", "sock_release"):
        print(f"\n{b}, top functions (self, samples):\n")
        print("```")
        for sym, n in top[b].most_common(a.top):
            print(f"{n:6d}  {sym}")
        print("```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
