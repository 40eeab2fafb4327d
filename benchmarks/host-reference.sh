#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# host-reference.sh: the same crr workload as the guest's crr group, run on
# the host's own kernel and real cores (no Fastsocket there), to give the
# reference that issue 4 names: how much the hand-tuned upstream setup
# (one SO_REUSEPORT listener per pinned worker with SO_INCOMING_CPU) gains
# over one shared listener with forked workers.
#
#   benchmarks/host-reference.sh [--repeats N] [--duration S] [--flows F]
#
# Configurations are interleaved and rotated per repeat; the output is one
# key=value line per run, then the median rate of each configuration and
# its paired ratio to "shared" (median and range over the repeats).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
crr=$top/build/benchmarks/crr
repeats=5
duration=3
flows=8
while [ $# -gt 0 ]; do
	case $1 in
	--repeats) repeats=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	--flows) flows=$2; shift 2 ;;
	-h|--help) sed -n '4,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "host-reference.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[[ $repeats =~ ^[1-9][0-9]*$ ]] || { echo "host-reference.sh: --repeats wants a positive integer" >&2; exit 2; }
[ -x "$crr" ] || { echo "host-reference.sh: no $crr (make benchmarks)" >&2; exit 1; }

configs=(shared shared_pin reuseport)
ncpu=$(nproc)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run()
{
	local c=$1 rep=$2 args=(--mode fork --workers "$ncpu") pid port rate

	case $c in
	shared_pin) args+=(--pin --exclusive) ;;
	reuseport) args=(--mode reuseport --workers "$ncpu" --incoming-cpu --pin) ;;
	esac
	"$crr" server "${args[@]}" --port 0 > "$tmp/srv" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		grep -q '^port=' "$tmp/srv" && break
		sleep 0.05
	done
	port=$(sed -n 's/^port=//p' "$tmp/srv")
	"$crr" client --port "$port" --threads "$ncpu" --pin --flows "$flows" \
		--duration "$duration" > "$tmp/cli" 2>&1 || true
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	rate=$(sed -n 's/^cps=//p' "$tmp/cli")
	echo "config=$c rep=$rep cps=${rate:-0} $(grep -E '^(failed_connects|resets)=' "$tmp/cli" | tr '\n' ' ')"
	echo "$c $rep ${rate:-0}" >> "$tmp/all"
}

echo "host_kernel=$(uname -r) host_nproc=$ncpu repeats=$repeats duration=$duration flows=$flows"
for rep in $(seq "$repeats"); do
	n=${#configs[@]}
	for i in $(seq 0 $((n - 1))); do
		run "${configs[$(((i + rep) % n))]}" "$rep"
	done
done

/usr/bin/python3 - "$tmp/all" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    c, rep, rate = line.split()
    runs.setdefault(c, {})[int(rep)] = float(rate)
for c in ("shared", "shared_pin", "reuseport"):
    print(f"median_cps_{c}={statistics.median(runs[c].values()):.0f}")
for c in ("shared_pin", "reuseport"):
    r = [runs[c][k] / runs["shared"][k] for k in runs[c] if runs["shared"].get(k)]
    print(f"ratio_{c}_vs_shared={statistics.median(r):.3f} min={min(r):.3f} max={max(r):.3f}")
EOF
