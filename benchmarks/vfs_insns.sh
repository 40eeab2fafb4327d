#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# vfs_insns.sh: issue 14's VFS part of a short connection in instructions,
# VFS-light off and on in one instruction-counted boot. The locality meter
# (benchmarks/meter/locality.so, mem=0: no memory model, instructions only)
# counts the instructions under each VFS function of
# benchmarks/vfs_profile.py's parts, inclusively (roots=, from the bench
# kernel's System.map); benchmarks/vfs_profile.sh --meter runs the
# workload (crr reuseport server and its client on lo, 2 vCPUs, one
# metered phase per mode); vfs_profile.py --meter prints the table.
#
#   benchmarks/vfs_insns.sh [--seconds S] [--modes off,vfs] [--out DIR]
#   benchmarks/vfs_insns.sh --configs nginx,nginx_vfs [--repeats N] ...
#
#   --seconds S   guest seconds per metered run (default 2)
#   --modes LIST  vfs_profile.sh's modes, in order (default off,vfs)
#   --configs L   run benchmarks/guest-matrix.sh --meter with these
#                 configurations instead (loopback, 2 vCPUs, interleaved):
#                 a column per configuration, X_vfs compared with X
#   --repeats N   guest-matrix.sh's timed runs per configuration (default 2)
#   --out DIR     default build/vfs-insns/<timestamp>
#   --kernel PATH default build/bzImage-bench (System.map from build/obj-bench)
#   --module PATH default build/module-obj-bench/fastsocket.ko
#
# Writes DIR/roots.txt, DIR/meter.txt, DIR/MODE/ (vfs_profile.sh's files)
# and DIR/report.md.
set -euo pipefail
{
top=$(cd "$(dirname "$0")/.." && pwd)
secs=2
modes=off,vfs
configs=
repeats=2
out=
kernel=$top/build/bzImage-bench
map=$top/build/obj-bench/System.map
module=$top/build/module-obj-bench/fastsocket.ko
plugin=$top/build/benchmarks/locality.so

die() { echo "vfs_insns.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) secs=$2; shift 2 ;;
	--modes) modes=$2; shift 2 ;;
	--configs) configs=$2; shift 2 ;;
	--repeats) repeats=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--kernel) kernel=$2; shift 2 ;;
	--module) module=$2; shift 2 ;;
	-h|--help) sed -n '4,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (--help)" ;;
	esac
done
[[ $secs =~ ^[0-9]*\.?[0-9]+$ ]] || die "--seconds wants seconds"
[[ $modes =~ ^(off|vfs)(,(off|vfs))*$ ]] || die "--modes wants off and/or vfs"
[ -r "$kernel" ] || die "no $kernel (tools/kernel.sh build bench)"
[ -r "$map" ] || die "no $map"
[ -r "$plugin" ] || die "no $plugin (make benchmarks)"
[[ $repeats =~ ^[1-9][0-9]*$ ]] || die "--repeats wants a positive integer"
[ -r "$module" ] || die "no $module (make module FLAVOR=bench)"
out=${out:-$top/build/vfs-insns/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
python3 "$top/benchmarks/vfs_profile.py" --roots "$map" > "$out/roots.txt"
guest=(env FS_MODULE="$module" "$top/benchmarks/vfs_profile.sh" --meter "$secs" "$modes")
[ -z "$configs" ] || guest=("$top/benchmarks/guest-matrix.sh" --meter --no-perf \
	--configs "$configs" --repeats "$repeats" --duration "$secs" --module "$module")
"$top/tools/vm-run" --icount -q -c 2 -m 2048 -t 3600 -k "$kernel" -o "$out" \
	--plugin "$plugin,out=$out/meter.txt,mem=0,switch=10000,roots=$out/roots.txt" \
	-- "${guest[@]}"
python3 "$top/benchmarks/vfs_profile.py" --meter "$out" | tee "$out/report.md"
exit 0
}
