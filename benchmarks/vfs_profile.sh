#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vfs_profile.sh: where a short connection's instructions go, and how much
# of it is the socket's VFS identity (file, dentry, inode, fd) -- issue 14's
# "first measure". Runs in the guest, in an instruction-counted boot, so
# that cpu-clock samples count instructions:
#
#   tools/vm-run -c 2 --icount -k build/bzImage-bench -- \
#       benchmarks/vfs_profile.sh [SECONDS]
#   benchmarks/vfs_profile.py build/vm/<run>
#
# crr server (SO_REUSEPORT, one pinned worker per CPU, SO_INCOMING_CPU:
# the best upstream tuning, so that little but the connection's own work
# is left) and crr client --pin on lo, 8 flows per thread; after one
# second of warm-up, perf record -a -g -e cpu-clock for SECONDS (default
# 2) of guest time. Writes to $FS_OUT: client.txt, server.txt, the
# callchains as perf.script (perf script: comm, symbols) and perf.txt.
set -euo pipefail

# One compound command, read whole before it runs.
{
top=${FS_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
crr=$top/build/benchmarks/crr
out=${FS_OUT:?FS_OUT not set: run under tools/vm-run}
secs=${1:-2}
port=8099

# shellcheck source=../tools/servers.sh
. "$top/tools/servers.sh"
ip link set lo up
"$crr" server --mode reuseport --workers 2 --incoming-cpu --pin \
	--port $port > "$out/server.txt" 2>&1 &
spid=$!
fs_wait_crr "$out/server.txt" $spid 600 || { echo "crr server did not start"; exit 1; }
"$crr" client --port $port --threads 2 --pin \
	--duration "$(awk -v s="$secs" 'BEGIN { print s + 2 }')" > "$out/client.txt" 2>&1 &
cpid=$!
sleep 1
perf record -q -a -g -e cpu-clock -F 4000 -o "$out/perf.data" -- sleep "$secs" \
	> "$out/perf.txt" 2>&1
wait $cpid || echo "crr client failed: $(tail -3 "$out/client.txt")"
kill $spid 2>/dev/null || true
wait $spid 2>/dev/null || true
perf script -i "$out/perf.data" -F comm,sym > "$out/perf.script" 2>> "$out/perf.txt"
echo "samples: $(grep -c '^[^ 	]' "$out/perf.script")"
cat "$out/client.txt"
}
