#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Top transfer functions from a locality meter output file.

    symbolize.py [-p PHASE] [-c CONNS] [-n 15] [-x all|ss|cs|sc|cc] \\
                 [--callers] METER_OUT KALLSYMS

Reads the phase's site lines (the plugin writes the top sites of each
phase and of the boot, "phase=boot"), maps each kernel instruction address
to its function with a copy of the guest's /proc/kallsyms from the same
boot, and prints the N functions with the most transfers, divided by the
connections (or other operations) done in the phase. With --callers (a
meter run with callers=1) a row is a function and its caller, "func <-
caller", the caller being the function of the last block that made a call
before the transfer (the call site for a leaf such as _raw_spin_lock). -x picks the
transfers by source/destination CPU set: ss, server<->server, is the one
locality changes. The guest saves kallsyms with

    echo 0 > /proc/sys/kernel/kptr_restrict; cat /proc/kallsyms > $FS_OUT/kallsyms
"""
import argparse
import bisect
import re
import sys


def load_kallsyms(path):
    """Sorted (address, name) of the text symbols, module ones included."""
    syms = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3 or parts[1] not in "tTwW":
                continue
            addr = int(parts[0], 16)
            if addr == 0:
                sys.exit("symbolize: kallsyms addresses are hidden "
                         "(kptr_restrict): save it as root with "
                         "kptr_restrict=0")
            name = parts[2]
            if len(parts) > 3:  # "[module]"
                name += " " + parts[3]
            syms.append((addr, name))
    syms.sort()
    return syms


def kv(line):
    return dict(f.split("=", 1) for f in line.split() if "=" in f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-p", "--phase", default="1")
    ap.add_argument("-c", "--conns", type=float, default=1.0,
                    help="operations in the phase (default 1: raw counts)")
    ap.add_argument("-n", "--top", type=int, default=15)
    ap.add_argument("-x", "--pair", default="all",
                    choices=["all", "ss", "cs", "sc", "cc", "other"])
    ap.add_argument("--callers", action="store_true",
                    help="one row per (function, caller): needs callers=1")
    ap.add_argument("meter_out")
    ap.add_argument("kallsyms")
    args = ap.parse_args()

    syms = load_kallsyms(args.kallsyms)
    addrs = [a for a, _ in syms]

    def func(pc):
        i = bisect.bisect_right(addrs, pc) - 1
        return syms[i][1] if i >= 0 else "0x%x" % pc

    key = "xfer" if args.pair == "all" else "xfer_" + args.pair
    st_key = "st" if args.pair == "all" else "st_" + args.pair
    prefix = re.compile(r"^phase=%s scope=" % re.escape(args.phase))

    per_func = {}
    stores = {}  # by a store, of per_func's; absent in older meter files
    listed = total = 0
    for line in open(args.meter_out):
        if not prefix.match(line):
            continue
        f = kv(line)
        if f["scope"] == "all":
            total = int(f["xfer_k"] if args.pair == "all"
                        else f["xfer_%s_k" % args.pair])
        if f["scope"] != "site" or f["mode"] != "k":
            continue
        n = int(f[key])
        name = func(int(f["pc"], 16))
        if args.callers:
            if "from" not in f:
                sys.exit("symbolize: --callers needs a meter run with "
                         "callers=1")
            frm = int(f["from"], 16)
            name += " <- " + (func(frm) if frm else "?")
        per_func[name] = per_func.get(name, 0) + n
        if st_key in f:
            stores[name] = stores.get(name, 0) + int(f[st_key])
        listed += n

    if not per_func and not total:
        sys.exit("symbolize: no phase=%s in %s" % (args.phase, args.meter_out))
    print("phase=%s pair=%s conns=%g kernel_xfer=%d in_listed_sites=%d"
          % (args.phase, args.pair, args.conns, total, listed))
    ranked = sorted(per_func.items(), key=lambda kvp: (-kvp[1], kvp[0]))
    for rank, (name, n) in enumerate(ranked[:args.top], 1):
        st = (" stores=%.2f" % (stores[name] / args.conns)
              if name in stores else "")
        print("rank=%d xfer=%d per_conn=%.2f%s share=%.1f%% func=%s"
              % (rank, n, n / args.conns, st,
                 100.0 * n / total if total else 0, name))


if __name__ == "__main__":
    main()
