#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vfs_profile.sh: where a short connection's instructions go, and how much
# of it is the socket's VFS identity (file, dentry, inode, fd) -- issue 14's
# "first measure". Runs in the guest. Under -icount the guest's cpu-clock
# samples miss the busy time (design.md, "the first measure"), so boot
# without it; samples then weigh host time:
#
#   tools/vm-run -c 2 -k build/bzImage-bench -- \
#       benchmarks/vfs_profile.sh [SECONDS [MODES]]
#   benchmarks/vfs_profile.py build/vm/<run>/MODE
#
# crr server (SO_REUSEPORT, one pinned worker per CPU, SO_INCOMING_CPU:
# the best upstream tuning, so that little but the connection's own work
# is left) and crr client --pin on lo, 8 flows per thread; after one
# second of warm-up, perf record -a -g -e cpu-clock for SECONDS (default
# 2) of guest time. MODES, comma-separated, run one after the other in
# this boot (default off): off, nothing armed; vfs, fastsocket.ko
# ($FS_MODULE) loaded with enabled=1 vfs_light=1 and the server's port in
# ports, and the client with --fastsocket (TCP_FASTSOCKET_ON before
# connect()), so that both ends' sockets are VFS-light and enabled and
# nothing else changes. Writes to $FS_OUT/MODE: client.txt, server.txt, the callchains
# as perf.script (perf script: comm, symbols), perf.txt, and with the
# module loaded /proc/net/fastsocket's header and totals in fastsocket.txt.
#
# With --meter first (benchmarks/vfs_insns.sh boots it so): no perf; after
# a one-second warm-up run, crr client marks its timed run (SECONDS) as a
# phase of the locality meter,
# one phase per mode in order, which counts the instructions under the
# VFS functions (the plugin's roots=).
set -euo pipefail

# One compound command, read whole before it runs.
{
top=${FS_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
crr=$top/build/benchmarks/crr
out=${FS_OUT:?FS_OUT not set: run under tools/vm-run}
meter=0
if [ "${1:-}" = --meter ]; then
	meter=1
	shift
fi
secs=${1:-2}
port=8099

# shellcheck source=../tools/servers.sh
. "$top/tools/servers.sh"
ip link set lo up
fsdir=/proc/sys/net/fastsocket
for mode in $(echo "${2:-off}" | tr , ' '); do
	dir=$out/$mode
	mkdir -p "$dir"
	cflags=()
	case $mode in
	off)
		[ ! -d $fsdir ] || echo 0 > $fsdir/enabled ;;
	vfs)
		[ -d $fsdir ] || insmod "${FS_MODULE:?FS_MODULE not set}"
		echo 1 > $fsdir/vfs_light
		echo $port > $fsdir/ports
		echo 1 > $fsdir/enabled
		cflags=(--fastsocket) ;;
	*) echo "vfs_profile.sh: unknown mode $mode" >&2; exit 2 ;;
	esac
	"$crr" server --mode reuseport --workers 2 --incoming-cpu --pin \
		--port $port > "$dir/server.txt" 2>&1 &
	spid=$!
	fs_wait_crr "$dir/server.txt" $spid 600 ||
		{ echo "crr server did not start"; exit 1; }
	if [ $meter = 1 ]; then
		# A second of warm-up first: VFS-light's pairs are kept a
		# grace period before they are reused.
		"$crr" client --port $port --threads 2 --pin "${cflags[@]}" \
			--duration 1 > "$dir/warmup.txt" 2>&1 ||
			echo "crr client (warm-up) failed: $(tail -3 "$dir/warmup.txt")"
		"$crr" client --port $port --threads 2 --pin "${cflags[@]}" \
			--meter --duration "$secs" > "$dir/client.txt" 2>&1 ||
			echo "crr client failed: $(tail -3 "$dir/client.txt")"
	else
		"$crr" client --port $port --threads 2 --pin "${cflags[@]}" \
			--duration "$(awk -v s="$secs" 'BEGIN { print s + 2 }')" \
			> "$dir/client.txt" 2>&1 &
		cpid=$!
		sleep 1
		perf record -q -a -g -e cpu-clock -F 4000 -o "$dir/perf.data" -- \
			sleep "$secs" > "$dir/perf.txt" 2>&1
		wait $cpid || echo "crr client failed: $(tail -3 "$dir/client.txt")"
	fi
	kill $spid 2>/dev/null || true
	wait $spid 2>/dev/null || true
	# the header and the total line, in one read
	[ ! -r /proc/net/fastsocket ] ||
		sed -n '1p;$p' /proc/net/fastsocket > "$dir/fastsocket.txt"
	if [ $meter = 0 ]; then
		perf script -i "$dir/perf.data" -F comm,sym > "$dir/perf.script" \
			2>> "$dir/perf.txt"
		echo "$mode samples: $(grep -c '^[^ 	]' "$dir/perf.script")"
	fi
	cat "$dir/client.txt"
done
}
