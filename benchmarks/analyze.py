#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Analyse a benchmarks/run.sh results directory.

    /usr/bin/python3 benchmarks/analyze.py RESULTS_DIR

Reads RESULTS_DIR/<mode>-<kernel>/records.txt (written in the guest by
guest-matrix.sh) and writes into RESULTS_DIR:

  results.csv        one row per (mode, kernel, configuration, repeat)
  summary.md         per mode: median rate, spread, ratio to `shared`
                     paired within a repeat, repeatability, cross-core
                     evidence per connection, fs_listen/reuseport, and the
                     feature-off kernel against vanilla
  perf.md            the top of each configuration's profiles
  plots/*.dat        data for plots.gp
  checks.txt         repeatability verdicts (also printed)

Standard library only: it runs with Debian's /usr/bin/python3.
Exit status 0; 1 when there is nothing to analyse.
"""

import csv
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import configs  # noqa: E402  (benchmarks/configs.py, beside this file)

USER_HZ = 100          # /proc/stat ticks
ICOUNT_TOLERANCE = 2.0  # percent, issue 3
# The configurations, their order, baselines: benchmarks/configs.md.
CONFIGS = configs.by_name("loopback")
ORDER = list(CONFIGS)
MODES = ["icount", "wall"]
KERNELS = ["bench", "vanilla", "test"]
FIRST = ["mode", "kernel", "config", "rep", "seq", "kind", "unit", "rate",
         "p50_us", "p90_us", "p99_us", "mean_us", "connections",
         "failed_connects", "resets", "timeouts", "errors",
         "cpu_us_per_conn", "ipi_per_conn", "ctxsw_per_conn",
         "stolen_per_accept", "remote_wake_share", "mismatch_per_accept"]


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def load(top):
    rows = []
    for d in sorted(os.listdir(top)):
        path = os.path.join(top, d, "records.txt")
        m = re.match(r"^([a-z]+)-([a-z0-9_]+)$", d)
        if not m or not os.path.isfile(path):
            continue
        mode, kernel = m.groups()
        with open(path) as f:
            for line in f:
                r = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                if "config" not in r:
                    continue
                r["mode"], r["kernel"] = mode, kernel
                derive(r)
                rows.append(r)
    return rows


def derive(r):
    """Per-connection figures from the counter deltas."""
    conns = num(r.get("connections")) or 0
    if r.get("unit") == "tps":
        conns = num(r.get("transactions")) or conns
    if conns <= 0:
        return

    def per(v, scale=1.0, fmt="%.3f"):
        return fmt % (v * scale / conns)
    busy = num(r.get("d_cpu_busy"))
    if busy is not None:
        # µs of guest CPU per connection (icount: 1 µs = 1000 instructions)
        r["cpu_us_per_conn"] = per(busy, 1e6 / USER_HZ, "%.2f")
    ipi = sum(num(r.get(k)) or 0 for k in ("d_ipi_cal", "d_ipi_res"))
    r["ipi_per_conn"] = per(ipi)
    if num(r.get("d_ctxt")) is not None:
        r["ctxsw_per_conn"] = per(num(r["d_ctxt"]))
    acc = (num(r.get("d_fs_accept_local")) or 0) + \
        (num(r.get("d_fs_accept_stolen")) or 0) + \
        (num(r.get("d_fs_accept_global")) or 0)
    if acc > 0:
        r["stolen_per_accept"] = "%.4f" % (
            (num(r.get("d_fs_accept_stolen")) or 0) / acc)
    wl, wo = num(r.get("d_fs_wake_local")), num(r.get("d_fs_wake_other"))
    if wl is not None and wo is not None and wl + wo > 0:
        r["remote_wake_share"] = "%.4f" % (wo / (wl + wo))
    srv_acc = num(r.get("srv_accepted"))
    if srv_acc and r.get("srv_incoming_cpu_mismatch") is not None:
        r["mismatch_per_accept"] = "%.4f" % (
            num(r["srv_incoming_cpu_mismatch"]) / srv_acc)


def order_key(x):
    return ORDER.index(x) if x in ORDER else len(ORDER)


def kernel_key(x):
    return KERNELS.index(x) if x in KERNELS else len(KERNELS)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, spec="%.0f"):
    return "-" if v is None else spec % v


def write_csv(top, rows):
    keys = set()
    for r in rows:
        keys.update(r)
    cols = [k for k in FIRST if k in keys] + sorted(keys - set(FIRST))
    with open(os.path.join(top, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, restval="")
        w.writeheader()
        for r in sorted(rows, key=lambda r: (r["mode"], kernel_key(r["kernel"]),
                                             order_key(r["config"]),
                                             int(r.get("rep", 0)))):
            w.writerow(r)


def baseline_for(config):
    """The keep-alive run a configuration's set-up overhead is taken from."""
    b = CONFIGS.get(config, {}).get("set_up_from", "-")
    return None if b == "-" else b


def ratio_base(config):
    """What a configuration's paired ratio is taken against."""
    return CONFIGS.get(config, {}).get("ratio_to", "shared")


def summarise(rows, mode, checks):
    """Markdown for one timing mode, plus plot data rows."""
    out, plot = [], []
    mrows = [r for r in rows if r["mode"] == mode and num(r.get("rate"))]
    if not mrows:
        return out, plot
    kernels = sorted({r["kernel"] for r in mrows}, key=kernel_key)
    by = {}
    for r in mrows:
        by.setdefault((r["kernel"], r["config"]), []).append(r)
    rate = {k: {int(r["rep"]): num(r["rate"]) for r in v} for k, v in by.items()}

    title = {"icount": "instruction-counted (`-icount shift=0,sleep=off`)",
             "wall": "wall clock (`-accel tcg,thread=multi`)"}.get(mode, mode)
    out.append("### %s\n" % title)
    out.append("| configuration | kernel | runs | rate/s median | min..max | "
               "max dev | vs baseline (paired) | p50 µs | p99 µs | "
               "set-up µs/conn | CPU µs/conn | IPIs/conn | ctx sw/conn | "
               "stolen/accept | remote wakes | SO_INCOMING_CPU mismatch | "
               "failed+resets |")
    out.append("|" + " --- |" * 17)
    worst = (0.0, None)
    for kernel in kernels:
        configs = sorted({c for (k, c) in by if k == kernel}, key=order_key)
        for c in configs:
            rs = by[(kernel, c)]
            rates = [num(r["rate"]) for r in rs]
            m = med(rates)
            dev = max(abs(x - m) / m * 100 for x in rates) if m else None
            if dev is not None and len(rates) > 1 and dev > worst[0]:
                worst = (dev, "%s/%s" % (kernel, c))
            base = ratio_base(c)
            ratios = []
            for rep, x in rate[(kernel, c)].items():
                s = rate.get((kernel, base), {}).get(rep)
                if s:
                    ratios.append(x / s)
            rmed = med(ratios)
            rtxt = "-"
            if ratios and c != base:
                rtxt = "%.3f [%.3f..%.3f]" % (rmed, min(ratios), max(ratios))
            elif c == base:
                rtxt = "1"
            ka = baseline_for(c)
            ovh = None
            if ka and ka != c and (kernel, ka) in by and m:
                kam = med([num(r["rate"]) for r in by[(kernel, ka)]])
                if kam:
                    ovh = 1e6 / m - 1e6 / kam
            fails = sum((num(r.get("failed_connects")) or 0) +
                        (num(r.get("resets")) or 0) +
                        (num(r.get("timeouts")) or 0) for r in rs)

            def col(key, spec="%.2f"):
                return fmt(med([num(r.get(key)) for r in rs]), spec)
            unit = rs[0].get("unit", "cps")
            out.append("| %s | %s | %d | %s %s | %s..%s | %s | %s | %s | %s "
                       "| %s | %s | %s | %s | %s | %s | %s | %d |" % (
                           c, kernel, len(rs), fmt(m), unit,
                           fmt(min(rates)), fmt(max(rates)),
                           fmt(dev, "%.1f%%"), rtxt,
                           col("p50_us", "%.0f"), col("p99_us", "%.0f"),
                           fmt(ovh, "%.1f"), col("cpu_us_per_conn", "%.1f"),
                           col("ipi_per_conn"), col("ctxsw_per_conn"),
                           col("stolen_per_accept", "%.3f"),
                           col("remote_wake_share", "%.3f"),
                           col("mismatch_per_accept", "%.3f"), fails))
            plot.append({"label": c if len(kernels) == 1 or kernel == "bench"
                         else "%s (%s)" % (c, kernel),
                         "median": m, "min": min(rates), "max": max(rates),
                         "ratio": rmed if c != base else 1.0,
                         "keepalive": c.endswith("keepalive"),
                         "overhead": ovh})
    out.append("")

    # Fastsocket against the hand-tuned reuseport server, and pinned
    # workers on and off, paired per repeat.
    for kernel in kernels:
        for x, y in (("fs_listen", "reuseport"), ("fs_pin", "reuseport"),
                     ("fs_pin", "shared_pin")):
            a, b = rate.get((kernel, x)), rate.get((kernel, y))
            if not (a and b):
                continue
            rr = [a[i] / b[i] for i in a if i in b and b[i]]
            if rr:
                out.append("- `%s / %s` (%s, paired): %.3f "
                           "[%.3f..%.3f] over %d repeats" % (
                               x, y, kernel, med(rr), min(rr), max(rr),
                               len(rr)))
    # Feature off against the unpatched kernel: separate boots, so medians.
    if "bench" in kernels and "vanilla" in kernels:
        for c in ("shared", "reuseport", "keepalive", "nginx", "haproxy"):
            pb, pv = by.get(("bench", c)), by.get(("vanilla", c))
            if pb and pv:
                mb = med([num(r["rate"]) for r in pb])
                mv = med([num(r["rate"]) for r in pv])
                out.append("- patched kernel, switches off, against vanilla, "
                           "`%s`: %.3f (medians of separate boots)" % (c, mb / mv))
    if worst[1]:
        verdict = "ok" if worst[0] <= ICOUNT_TOLERANCE else "WARNING"
        if mode == "icount":
            line = ("repeatability (%s): the largest deviation of a run from "
                    "its configuration's median is %.2f%% (%s); limit %.0f%%: %s"
                    % (mode, worst[0], worst[1], ICOUNT_TOLERANCE, verdict))
        else:
            line = ("repeatability (%s): largest deviation from the median "
                    "%.2f%% (%s); wall clock has no 2%% target" % (
                        mode, worst[0], worst[1]))
        checks.append(line)
        out.append("- " + line)
    out.append("")
    return out, plot


UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def lock_wait_s(path):
    """Total spinning wait in seconds in a `perf lock contention` table:
    spinlocks and rwlocks only (a sleeping lock's wait is not CPU time),
    perf's own locks left out. None when there is no table."""
    if not os.path.exists(path):
        return None
    total, table = 0.0, False
    for line in open(path, errors="replace"):
        if "contended" in line and "total wait" in line:
            table = True
        t = line.split()
        if len(t) < 9 or not t[0].isdigit() or t[2] not in UNITS:
            continue
        kind, caller = t[7], t[8]
        if ("spinlock" in kind or kind.startswith("rwlock")) and \
                not caller.startswith("perf_"):
            total += float(t[1]) * UNITS[t[2]]
    return total if table else None


def model(top, rows, info):
    """Model inputs from the icount boot of the patched kernel, and an
    Amdahl/USL projection. A model, not a measurement."""
    icount = [r for r in rows if r["mode"] == "icount" and
              r["kernel"] != "vanilla" and num(r.get("rate"))]
    if not icount:
        return []
    kernel = icount[0]["kernel"]
    pd = num(info.get("perf_duration")) or num(info.get("duration"))
    out = ["### Model inputs and a many-core projection (a model, not a "
           "measurement)", "",
           "k-instructions per connection: guest CPU time per connection in "
           "the instruction-counted boot (1 µs = 1000 instructions), client, "
           "server and kernel together. σ: `perf lock contention` total wait "
           "on spinning locks (spinlocks, rwlocks) over the CPU time of the "
           "profiling run (2 vCPUs x %s s; the icount profile if there is "
           "one, else the wall-clock one), used as "
           "the serial fraction; κ = 0 (Amdahl) in this table, since these "
           "loopback runs count no coherence traffic. The coherence cost is "
           "measured by the locality meter in the placement and modelled "
           "there (transfers per connection x a stated cost per transfer: "
           "\"Locality at 2, 4 and 8 server CPUs\"). "
           "X(N)/X(1) = N / (1 + σ(N-1))." % (
               fmt(pd, "%g")), "",
           "| configuration | k-instructions/conn | lock wait share σ | "
           "X(8)/X(1) | X(32)/X(1) | X(64)/X(1) |",
           "|" + " --- |" * 6]
    for c in sorted({r["config"] for r in icount}, key=order_key):
        if c.endswith("keepalive"):
            continue
        ki = med([num(r.get("cpu_us_per_conn")) for r in icount
                  if r["config"] == c])
        # The icount profile when there is one, else the wall-clock one
        # of the same kernel (run.sh profiles only in wall mode by default).
        w = None
        for m in ("icount", "wall"):
            w = lock_wait_s(os.path.join(top, "%s-%s" % (m, kernel), "perf",
                                         c + ".lock.txt"))
            if w is not None:
                break
        sigma = min(1.0, w / (2 * pd)) if (w is not None and pd) else None
        proj = []
        for n in (8, 32, 64):
            proj.append(fmt(n / (1 + sigma * (n - 1)), "%.1f")
                        if sigma is not None else "-")
        out.append("| %s | %s | %s | %s |" % (
            c, fmt(ki, "%.1f"), fmt(sigma, "%.4f"), " | ".join(proj)))
    out.append("")
    return out


def perf_md(top):
    """The first lines of each profile, for perf.md."""
    out = ["# Profiles", "",
           "One profiling run per configuration, outside the timed runs. "
           "cpu-clock: `perf record -e cpu-clock -a -g`, by command, DSO "
           "and symbol. Locks: `perf lock contention` over "
           "`lock:contention_begin/end`.", ""]
    for d in sorted(os.listdir(top)):
        pdir = os.path.join(top, d, "perf")
        if not os.path.isdir(pdir):
            continue
        out.append("## %s\n" % d)
        fails = os.path.join(pdir, "failures.txt")
        if os.path.exists(fails):
            out.append("What failed:\n\n```\n%s```\n" % open(fails).read())
        names = sorted({f.split(".")[0] for f in os.listdir(pdir)
                        if f.endswith(".cpu.txt") or f.endswith(".lock.txt")},
                       key=order_key)
        for c in names:
            out.append("### %s\n" % c)
            cpu = os.path.join(pdir, c + ".cpu.txt")
            if os.path.exists(cpu):
                lines = [l.rstrip() for l in open(cpu, errors="replace")
                         if l.strip() and not l.startswith("#")][:15]
                out.append("cpu-clock, top symbols:\n\n```\n%s\n```\n"
                           % "\n".join(lines))
            lock = os.path.join(pdir, c + ".lock.txt")
            if os.path.exists(lock):
                lines = [l.rstrip() for l in open(lock, errors="replace")
                         if l.strip()][:12]
                out.append("lock contention:\n\n```\n%s\n```\n" % (
                    "\n".join(lines) if lines else "(no contention recorded)"))
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    top = sys.argv[1]
    rows = load(top)
    if not rows:
        print("analyze: no records under %s" % top, file=sys.stderr)
        return 1
    write_csv(top, rows)
    os.makedirs(os.path.join(top, "plots"), exist_ok=True)
    info = {}
    runtxt = os.path.join(top, "run.txt")
    if os.path.exists(runtxt):
        for line in open(runtxt):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                info[k] = v
    md = ["Run %s: %s repeats of %s s per configuration, interleaved in one "
          "boot per kernel and timing mode; 2 vCPUs. Rates are connections "
          "per second (cps; `tps`/`rps` for keep-alive and wrk). "
          "\"vs baseline\" is the median of per-repeat ratios, in the same "
          "boot, to `shared` (crr configurations), `nginx` or `haproxy` "
          "(switches off), [min..max]; \"max dev\" is the largest deviation "
          "of a run from its configuration's median; per-connection columns "
          "are medians over the repeats." % (info.get("date", "?"), info.get("repeats", "?"),
                            info.get("duration", "?")), ""]
    checks = []
    for mode in MODES + sorted({r["mode"] for r in rows} - set(MODES)):
        part, plot = summarise(rows, mode, checks)
        md += part
        if plot:
            pdir = os.path.join(top, "plots")
            with open(os.path.join(pdir, "cps_%s.dat" % mode), "w") as f:
                f.write("# label median min max ratio\n")
                for p in plot:
                    if not p["keepalive"]:
                        f.write('"%s" %.1f %.1f %.1f %.3f\n' % (
                            p["label"], p["median"], p["min"], p["max"],
                            p["ratio"] or 0))
            ovh = [p for p in plot if p["overhead"] is not None]
            path = os.path.join(pdir, "overhead_%s.dat" % mode)
            if ovh:
                with open(path, "w") as f:
                    f.write("# label overhead_us\n")
                    for p in ovh:
                        f.write('"%s" %.2f\n' % (p["label"], p["overhead"]))
            elif os.path.exists(path):
                os.remove(path)
    md += model(top, rows, info)
    with open(os.path.join(top, "summary.md"), "w") as f:
        f.write("\n".join(md).rstrip() + "\n")
    with open(os.path.join(top, "checks.txt"), "w") as f:
        f.write("\n".join(checks) + "\n")
    with open(os.path.join(top, "perf.md"), "w") as f:
        f.write("\n".join(perf_md(top)).rstrip() + "\n")
    for c in checks:
        print(c, file=sys.stderr if "WARNING" in c else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
