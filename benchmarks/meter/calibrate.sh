#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# calibrate.sh: prove the locality meter on known sharing patterns.
#
#   benchmarks/meter/calibrate.sh [-k bzImage] [-o DIR] [-s N] [-r ROUNDS]
#
#   -k  kernel (default build/bzImage-test)
#   -o  run directory (default build/vm/calib-<timestamp>)
#   -s  the meter's switch= (default 10000)
#   -r  calib's turns per thread (default 2000)
#
# Boots the VM with 2 vCPUs under --icount with the meter loaded, runs
# build/benchmarks/calib in the guest and checks each pattern's user-mode
# transfers per operation against the model: within 15% of 1 (shared
# counter), 2 (mailbox round trip) and 4 (plain ping-pong round trip),
# and at most 0.01 for private counters. Prints one key=value line per
# pattern and a summary line; exit 0 when all pass, 1 when one fails, 2
# when the run itself failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
kernel=$top/build/bzImage-test
out=$top/build/vm/calib-$(date +%Y%m%d-%H%M%S)-$$
switch=10000
rounds=2000
tolerance=0.15

usage() { sed -n '4,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

while getopts k:o:s:r:h opt; do
	case $opt in
	k) kernel=$OPTARG ;;
	o) out=$OPTARG ;;
	s) switch=$OPTARG ;;
	r) rounds=$OPTARG ;;
	*) usage ;;
	esac
done

plugin=$top/build/benchmarks/locality.so
calib=$top/build/benchmarks/calib
for f in "$plugin" "$calib"; do
	[ -e "$f" ] || { echo "calibrate: no $f (make benchmarks)" >&2; exit 2; }
done
mkdir -p "$out" && out=$(cd "$out" && pwd)

start=$(date +%s)
"$top/tools/vm-run" -q -t 900 -c 2 -k "$kernel" -o "$out" --icount \
	--plugin "$plugin,out=$out/meter.txt,switch=$switch,server=0-1" -- \
	sh -c "$calib $rounds > \$FS_OUT/calib.txt"
rc=$?
seconds=$(($(date +%s) - start))
if [ $rc != 0 ] || [ ! -s "$out/calib.txt" ]; then
	echo "calibration=error vm_rc=$rc seconds=$seconds out=$out"
	exit 2
fi

# Join calib's "pattern=.. phase=P ops=.. expect_xfer_per_op=.." lines
# with the meter's "phase=P scope=all .. xfer_u=.." lines.
awk -v tol="$tolerance" -v sw="$switch" -v secs="$seconds" -v out="$out" '
function val(line, key,    m) {
	if (match(line, "(^| )" key "=[^ ]*")) {
		m = substr(line, RSTART, RLENGTH)
		sub(/^ /, "", m)
		return substr(m, length(key) + 2)
	}
	return ""
}
FNR == NR {
	if ($0 ~ /^phase=[0-9]+ scope=all /) {
		p = val($0, "phase")
		xu[p] = val($0, "xfer_u")
		xk[p] = val($0, "xfer_k")
	}
	next
}
/^pattern=/ {
	p = val($0, "phase")
	ops = val($0, "ops")
	want = val($0, "expect_xfer_per_op")
	n++
	if (!(p in xu) || ops == 0) {
		printf "calib pattern=%s phase=%s result=missing\n", val($0, "pattern"), p
		bad++
		next
	}
	got = xu[p] / ops
	if (want == 0)
		ok = got <= 0.01
	else
		ok = got >= want * (1 - tol) && got <= want * (1 + tol)
	printf "calib pattern=%s phase=%s ops=%s xfer_u=%s xfer_k=%s " \
	       "xfer_per_op=%.4f expect=%s result=%s\n", val($0, "pattern"),
	       p, ops, xu[p], xk[p], got, want, ok ? "pass" : "FAIL"
	if (!ok)
		bad++
}
END {
	if (n < 4)
		bad++
	printf "calibration=%s patterns=%d failed=%d switch=%s seconds=%s out=%s\n",
	       bad ? "FAIL" : "pass", n, bad, sw, secs, out
	exit bad ? 1 : 0
}' "$out/meter.txt" "$out/calib.txt"
