#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Per-connection locality figures from a benchmarks/locality.sh run.

Joins each placement.sh record (config, conns, local shares, IPIs) to the
meter's phase of the same number and prints, per boot, a Markdown table of
kernel transfers per connection (server<->server, the headline, and all),
kernel instructions per connection on the server CPUs, IPIs per connection
and the share of connections accepted on their softirq CPU, with ratios to
the shared listener; then the top kernel functions by server<->server
transfers per connection (benchmarks/meter/symbolize.py). With boots of
several server CPU counts it adds the scale table (server<->server kernel
transfers per connection against server CPUs, one row per
configuration), the many-core model (measured instructions and transfers
per connection, a stated cost per transfer) and the plot
scale-SWITCH.png (gnuplot, benchmarks/locality.gp). Writes locality.txt
(key=value, one line per record) next to the boots.
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import configs  # noqa: E402  (benchmarks/configs.py: names, order)

# The many-core model's inputs, stated here and printed with its table.
# A cross-core cache-line transfer (a read of a line another core wrote,
# or a write to a line other cores hold) costs about 50-100 ns on current
# server parts within one socket: Chips and Cheese, "Core to Core Latency
# Data on Large Systems" (2023), which times a line bounced between two
# cores with compare-and-exchange. The model charges each transfer the
# middle of that range, fully exposed (an upper bound for plain loads,
# which out-of-order cores overlap; about right for the atomics and lock
# words that dominate the lists below).
XFER_NS = 70.0
# A server core's instruction rate for kernel networking code: 3 GHz at
# an IPC of 1 (kernel TCP paths run at about that on current cores).
INSNS_PER_NS = 3.0


def kv(line):
    out = {}
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def num(v, default=None):
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def read_meter(path):
    """{phase: {scope: fields}} for the numbered phases."""
    phases = {}
    with open(path) as f:
        for line in f:
            r = kv(line)
            p, scope = r.get("phase"), r.get("scope")
            if not p or not p.isdigit() or scope == "site":
                continue
            phases.setdefault(int(p), {})[scope] = r
    return phases


def header_of(bdir):
    """The meter's first line: its arguments."""
    with open(os.path.join(bdir, "meter.txt")) as f:
        return kv(f.readline())


def boot_records(bdir):
    recs = []
    meter = read_meter(os.path.join(bdir, "meter.txt"))
    header = header_of(bdir)
    with open(os.path.join(bdir, "placement.txt")) as f:
        for line in f:
            r = kv(line)
            p = r.get("phase")
            conns = num(r.get("conns"), 0)
            m = meter.get(int(p)) if p and p.isdigit() else None
            if not m or not conns or "all" not in m:
                r["meter"] = "missing"
                recs.append(r)
                continue
            a, s = m["all"], m.get("server", {})
            r["switch"] = header.get("switch", "?")
            r["complete"] = m.get("meta", {}).get("complete", "?")
            r["xfer_ss_k_per_conn"] = num(a["xfer_ss_k"]) / conns
            r["xfer_k_per_conn"] = num(a["xfer_k"]) / conns
            r["xfer_cs_k_per_conn"] = num(a["xfer_cs_k"]) / conns
            r["xfer_u_per_conn"] = num(a["xfer_u"]) / conns
            r["insns_k_server_per_conn"] = num(s.get("insns_k"), 0) / conns
            r["insns_per_conn"] = (num(a["insns_k"]) + num(a["insns_u"])) / conns
            recs.append(r)
    return recs


def fmt(v, f="%.1f"):
    return f % v if isinstance(v, float) else (v if v is not None else "-")


# --groups: each (function <- caller) site goes to the first group whose
# pattern matches "function <- caller"; a reading aid for the tail, not a
# measurement of its own.
GROUPS = [
    ("ticks and time", r"tick|jiffies|ktime|timekeeping|hrtimer|"
     r"rcu_sched_clock|tmigr|task_mm_cid|add_interrupt_randomness|"
     r"update_process_times|timerqueue|clockevents|sched_clock|"
     r"update_rq_clock|run_timer|lock_timer_base|rcu_"),
    ("neighbour entry and TCP metrics",
     r"neigh|ip_finish_output2|tcp_\w*metrics"),
    ("slab and pages", r"slab|kmem_cache|kmalloc|kfree|allocate_slab|"
     r"memcpy_orig <- sk_clone_lock|page_to_skb|__build_skb|napi_alloc|"
     r"napi_skb|skb_release|alloc_pages|free_unref|rmqueue|"
     r"get_page_from_freelist|kvfree|build_detached"),
    ("established table", r"inet_ehash|inet_unhash|__inet_lookup"),
    ("listen queues, epoll and wake-ups",
     r"fastsocket_l|fastsocket_wq|fastsocket_reqsk|fastsocket_acceptq|ep_|"
     r"epoll|__wake_up|tcp_poll|inet_csk_accept|sock_def_readable|wake|"
     r"ttwu|__percpu_counter_compare"),
    ("bind bucket or lists", r"fastsocket_bind|inet_bind|inet_put_port|"
     r"__inet_inherit_port"),
    ("VFS-light pair", r"sock_pair"),
    ("scheduler", r"schedule|pick_next|enqueue|dequeue|update_load|"
     r"update_curr|idle|avg_vruntime|sched_|select_task|set_next"),
    ("other socket and TCP state", r"tcp|sk_|sock|inet|ip_|skb|dst|net"),
    ("the rest", r""),
]


def group_table(text):
    """Markdown rows: per-connection transfers of each GROUPS entry."""
    sums = collections.OrderedDict((g, 0.0) for g, _ in GROUPS)
    pats = [(g, re.compile(p)) for g, p in GROUPS]
    for m in re.finditer(r"per_conn=([\d.]+) .*func=(\S+ <- \S+)$", text,
                         re.M):
        for g, p in pats:
            if p.search(m.group(2)):
                sums[g] += float(m.group(1))
                break
    return ["| %s | %.2f |" % (g, v) for g, v in sums.items()]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--groups", action="store_true",
                    help="with the meter's callers, sum the listed sites "
                    "into groups (ticks and time, slab, epoll...); list "
                    "enough of them (--top, locality.sh --sites)")
    ap.add_argument("dir")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    boots = sorted(d for d in os.listdir(args.dir)
                   if os.path.isfile(os.path.join(args.dir, d, "placement.txt")))
    lines = []
    allrecs = []
    print("# Locality: cross-CPU cache-line transfers per connection\n")
    for b in boots:
        bdir = os.path.join(args.dir, b)
        try:
            recs = boot_records(bdir)
        except OSError as e:
            print("%s: %s\n" % (b, e))
            continue
        base = [r["xfer_ss_k_per_conn"] for r in recs
                if r.get("config") == "shared" and "xfer_ss_k_per_conn" in r]
        base = sum(base) / len(base) if base else None
        srv = recs[0].get("server_cpus", "?") if recs else "?"
        sw = next((r["switch"] for r in recs if "switch" in r), "?")
        print("## %s: server CPUs %s, switch=%s\n" % (b, srv, sw))
        print("| config | conns | local share (crr) | local share (fastsocket) "
              "| server<->server kernel xfer/conn "
              "| vs shared | all kernel xfer/conn | client->server | user xfer/conn "
              "| server kernel insns/conn | IPIs/conn |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in recs:
            ss = r.get("xfer_ss_k_per_conn")
            ratio = ss / base if base and isinstance(ss, float) else None
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r.get("config"), r.get("conns"), r.get("crr_local_share"),
                r.get("fs_local_share", "-"),
                fmt(ss), fmt(ratio, "%.2f"), fmt(r.get("xfer_k_per_conn")),
                fmt(r.get("xfer_cs_k_per_conn")), fmt(r.get("xfer_u_per_conn")),
                fmt(r.get("insns_k_server_per_conn"), "%.0f"),
                r.get("ipis_per_conn", "-")))
            rec = dict(r)
            rec["boot"] = b
            allrecs.append(rec)
            lines.append(" ".join("%s=%s" % (k, fmt(v, "%.3f"))
                                  for k, v in rec.items()))
        print()
        ks = os.path.join(bdir, "kallsyms")
        if not os.path.exists(ks):
            continue
        for r in recs:
            if "xfer_ss_k_per_conn" not in r:
                continue
            print("### %s, %s: top %d kernel functions, server<->server "
                  "transfers per connection\n" % (b, r["config"], args.top))
            res = subprocess.run(
                [sys.executable, os.path.join(here, "meter", "symbolize.py"),
                 "-p", r["phase"], "-c", r["conns"], "-x", "ss",
                 "-n", str(args.top), os.path.join(bdir, "meter.txt"), ks],
                capture_output=True, text=True)
            print("```")
            print((res.stdout or res.stderr).rstrip())
            print("```\n")
            if header_of(bdir).get("callers") != "1":
                continue
            print("### %s, %s: top %d (function <- caller), server<->server "
                  "transfers per connection\n" % (b, r["config"], 2 * args.top))
            res = subprocess.run(
                [sys.executable, os.path.join(here, "meter", "symbolize.py"),
                 "-p", r["phase"], "-c", r["conns"], "-x", "ss", "--callers",
                 "-n", str(2 * args.top), os.path.join(bdir, "meter.txt"), ks],
                capture_output=True, text=True)
            print("```")
            print((res.stdout or res.stderr).rstrip())
            print("```\n")
            if args.groups:
                print("### %s, %s: the listed sites in groups\n" % (
                    b, r["config"]))
                print("| group | server<->server transfers per connection |")
                print("|---|---|")
                print("\n".join(group_table(res.stdout)) + "\n")
    with open(os.path.join(args.dir, "locality.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    scale(args.dir, allrecs)


def ncpus(r):
    return len(r.get("server_cpus", "").split(","))


def mean(xs):
    xs = [x for x in xs if isinstance(x, float)]
    return sum(xs) / len(xs) if xs else None


def scale(outdir, recs):
    """The scale table, the model and the plot, per switch quantum, when
    the boots cover more than one server CPU count."""
    order = configs.names("placement")
    for sw in sorted({r.get("switch") for r in recs if r.get("switch")}):
        rs = [r for r in recs if r.get("switch") == sw
              and isinstance(r.get("xfer_ss_k_per_conn"), float)]
        ns = sorted({ncpus(r) for r in rs})
        if len(ns) < 2:
            continue
        cfgs = sorted({r["config"] for r in rs},
                      key=lambda c: order.index(c) if c in order else 99)

        def cell(c, n, key):
            return mean([r.get(key) for r in rs
                         if r["config"] == c and ncpus(r) == n])

        print("## Scale: server CPUs %s, switch=%s\n" % (
            ", ".join(map(str, ns)), sw))
        print("Server<->server kernel transfers per connection (mean over "
              "repeats), and the ratio to `shared` at the same count:\n")
        print("| config | " + " | ".join("%d CPUs" % n for n in ns) +
              " | growth %d->%d |" % (ns[0], ns[-1]))
        print("|---" * (len(ns) + 2) + "|")
        dat = []
        for c in cfgs:
            row, vals = [], []
            for n in ns:
                v, b = cell(c, n, "xfer_ss_k_per_conn"), \
                    cell("shared", n, "xfer_ss_k_per_conn")
                vals.append(v)
                row.append("-" if v is None else "%.1f (%.2f)" % (
                    v, v / b) if b else "%.1f" % v)
            g = vals[-1] / vals[0] if vals[0] and vals[-1] else None
            print("| %s | %s | %s |" % (c, " | ".join(row), fmt(g, "x%.2f")))
            dat.append((c, vals))
        print()
        print("Per connection at each count: server kernel instructions, "
              "IPIs, share accepted on the softirq CPU (crr's view, or the "
              "module's):\n")
        print("| config | " + " | ".join(
            "%d CPUs: insns / IPIs / local" % n for n in ns) + " |")
        print("|---" * (len(ns) + 1) + "|")
        for c in cfgs:
            row = []
            for n in ns:
                i = cell(c, n, "insns_k_server_per_conn")
                ipi = mean([num(r.get("ipis_per_conn")) for r in rs
                            if r["config"] == c and ncpus(r) == n])
                loc = mean([num(r.get("crr_local_share"),
                                num(r.get("fs_local_share")))
                            for r in rs if r["config"] == c and ncpus(r) == n])
                row.append("%s / %s / %s" % (fmt(i, "%.0f"),
                                             fmt(ipi, "%.2f"),
                                             fmt(loc, "%.3f")))
            print("| %s | %s |" % (c, " | ".join(row)))
        print()
        model(ns, cfgs, cell)
        plot(outdir, sw, ns, dat)


def model(ns, cfgs, cell):
    """Connections per second per server core on real hardware, from the
    measured instructions and transfers per connection."""
    print("### A model for real cores (a model, not a measurement)\n")
    print("Server CPU time per connection = server kernel instructions / "
          "(%.0f per ns) + server<->server transfers x %.0f ns, both "
          "measured at each count; connections per second per core = 1 / "
          "that. The transfer cost is Chips and Cheese's core-to-core "
          "latency range for one socket (50-100 ns, 2023); the "
          "instruction rate is 3 GHz at IPC 1. Client->server transfers "
          "(the stand-in for a NIC's DMA) are left out.\n" % (
              INSNS_PER_NS, XFER_NS))
    print("| config | " + " | ".join(
        "%d CPUs: us/conn (xfer share) | k conn/s/core" % n
        for n in ns) + " |")
    print("|---" * (2 * len(ns) + 1) + "|")
    for c in cfgs:
        row = []
        for n in ns:
            i = cell(c, n, "insns_k_server_per_conn")
            x = cell(c, n, "xfer_ss_k_per_conn")
            if i is None or x is None:
                row += ["-", "-"]
                continue
            ns_insn, ns_x = i / INSNS_PER_NS, x * XFER_NS
            t = ns_insn + ns_x
            row += ["%.1f (%.0f%%)" % (t / 1000, 100 * ns_x / t),
                    "%.0f" % (1e6 / t)]
        print("| %s | %s |" % (c, " | ".join(row)))
    print()


def plot(outdir, sw, ns, dat):
    """scale-SWITCH.dat and, with gnuplot, scale-SWITCH.png."""
    path = os.path.join(outdir, "scale-%s.dat" % sw)
    with open(path, "w") as f:
        f.write("server_cpus " + " ".join(c for c, _ in dat) + "\n")
        for k, n in enumerate(ns):
            f.write("%d %s\n" % (n, " ".join(
                "NaN" if v[k] is None else "%.2f" % v[k] for _, v in dat)))
    gp = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "locality.gp")
    png = os.path.join(outdir, "scale-%s.png" % sw)
    if not shutil.which("gnuplot"):
        print("(no gnuplot: %s only)\n" % path)
        return
    res = subprocess.run(
        ["gnuplot", "-e", "dat='%s'; out='%s'; sw='%s'; n=%d" % (
            path, png, sw, len(dat)), gp], capture_output=True, text=True)
    if res.returncode:
        print("(gnuplot failed: %s)\n" % res.stderr.strip())
    else:
        print("![transfers per connection against server CPUs](%s)\n"
              % os.path.basename(png))


if __name__ == "__main__":
    main()
