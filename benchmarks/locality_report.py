#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Per-connection locality figures from a benchmarks/locality.sh run.

Joins each placement.sh record (config, conns, local shares, IPIs) to the
meter's phase of the same number and prints, per boot, a Markdown table of
kernel transfers per connection (server<->server, the headline, and all),
kernel instructions per connection on the server CPUs, IPIs per connection
and the share of connections accepted on their softirq CPU, with ratios to
the shared listener; then the top kernel functions by server<->server
transfers per connection (benchmarks/meter/symbolize.py). Writes
locality.txt (key=value, one line per record) next to the boots.
"""
import argparse
import os
import subprocess
import sys


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


def boot_records(bdir):
    recs = []
    meter = read_meter(os.path.join(bdir, "meter.txt"))
    header = {}
    with open(os.path.join(bdir, "meter.txt")) as f:
        header = kv(f.readline())
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


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("dir")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    boots = sorted(d for d in os.listdir(args.dir)
                   if os.path.isfile(os.path.join(args.dir, d, "placement.txt")))
    lines = []
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
    with open(os.path.join(args.dir, "locality.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
