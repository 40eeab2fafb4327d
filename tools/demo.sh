#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the VM (make demo): load fastsocket.ko, show its sysctls and
# statistics, run a short loopback connection workload against an enabled
# listener, and show the counters that moved.
set -euo pipefail
top=${FS_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
cli=$top/build/tools/fastsocket
module=${FS_MODULE:-$top/build/module-obj-test/fastsocket.ko}
conns=${FS_DEMO_CONNS:-2000}

echo "== kernel $(uname -r), $(nproc) CPUs"
insmod "$module"
echo "== sysctls after loading (everything off by default)"
grep -H . /proc/sys/net/fastsocket/*
echo "== enable the listen feature for port 8080"
"$cli" enable listen
"$cli" ports 8080
"$cli" status
echo "== $conns short connections on 127.0.0.1:8080 from 4 client threads"
python3 - "$conns" <<'PY'
import socket, sys, threading, time
n = int(sys.argv[1])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 8080)); srv.listen(512)
def serve():
    for _ in range(n):
        s, _ = srv.accept(); s.recv(16); s.sendall(b"pong"); s.close()
t = threading.Thread(target=serve); t.start()
ok = 0; lock = threading.Lock()
def client(k):
    global ok
    for _ in range(k):
        c = socket.create_connection(("127.0.0.1", 8080)); c.sendall(b"ping")
        if c.recv(16) == b"pong":
            with lock: ok += 1
        c.close()
start = time.time()
cl = [threading.Thread(target=client, args=(n // 4,)) for _ in range(4)]
[c.start() for c in cl]; [c.join() for c in cl]; t.join()
print(f"connections={ok} failed={n - ok} seconds={time.time() - start:.2f}")
sys.exit(0 if ok == n else 1)
PY
echo "== per-CPU statistics"
"$cli" stats -p
echo "== totals"
"$cli" stats
total=$("$cli" stats | sed -n 's/^accept_global=//p')
[ "$total" -ge "$conns" ] || { echo "demo: counters did not move" >&2; exit 1; }
echo "== unload"
rmmod fastsocket
echo "demo: ok"
