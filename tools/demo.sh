#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the VM (make demo): load fastsocket.ko, show its sysctls and
# statistics, run a short loopback connection workload against an enabled
# listener, and show the counters that moved.
set -euo pipefail
top=${FS_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
cli=$top/build/tools/fastsocket
crr=$top/build/benchmarks/crr
module=${FS_MODULE:-$top/build/module-obj-test/fastsocket.ko}
conns=${FS_DEMO_CONNS:-2000}

echo "== kernel $(uname -r), $(nproc) CPUs"
insmod "$module"
echo "== sysctls after loading: everything off by default"
grep -H . /proc/sys/net/fastsocket/*
echo "== enable the listen feature for port 8080"
"$cli" enable listen
"$cli" ports 8080
"$cli" status
echo "== $conns short connections to 127.0.0.1:8080 (2 forked workers, 2 client threads)"
"$crr" server --mode fork --workers 2 --port 8080 > /tmp/server.out &
server=$!
sleep 1
"$crr" client --port 8080 --threads 2 --flows 4 --count "$conns" --linger0
kill -TERM "$server"
wait "$server" || true
grep -E '^(accepted|served|errors)=' /tmp/server.out
echo "== per-CPU statistics (/proc/net/fastsocket)"
"$cli" stats -p
echo "== totals"
"$cli" stats
accepted=$("$cli" stats | sed -n 's/^accept_global=//p')
[ "$accepted" -ge "$conns" ] || { echo "demo: counters did not move" >&2; exit 1; }
echo "== unload: the data path is disarmed"
rmmod fastsocket
[ ! -e /proc/sys/net/fastsocket ] && echo "demo: ok"
