#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh: the Fastsocket benchmark matrix. Boots each kernel once per timing
# mode with tools/vm-run, runs benchmarks/guest-matrix.sh in the guest
# (configurations interleaved, repeated), then writes results.csv,
# summary.md, perf.md and PNG plots.
#
#   benchmarks/run.sh [options]          run, then analyse
#   benchmarks/run.sh report DIR [--docs]
#                                        analyse DIR again (summary, csv, plots);
#                                        --docs also copies them into docs/
#
#   --mode M          icount, wall or both (default both)
#   --repeats N       timed runs per configuration and boot (default 3 in
#                     icount mode, 5 in wall mode)
#   --duration S      seconds per timed run, guest time (default 2)
#   --configs LIST    configurations or groups for guest-matrix.sh, both
#                     modes (default: crr in icount mode, crr,real in wall
#                     mode; see guest-matrix.sh --list)
#   --no-real         the same as --configs crr
#   --kernel PATH     patched kernel (default build/bzImage-bench)
#   --module PATH     its fastsocket.ko (default build/module-obj-bench/fastsocket.ko)
#   --vanilla PATH    unpatched kernel (default build/bzImage-vanilla); it runs
#                     the configurations that need no module
#   --no-vanilla      skip the unpatched kernel
#   --no-perf         no profiles (default: profiles in wall mode only)
#   --perf-icount     profiles in icount mode too (slow: about 2 min each)
#   --perf-duration S seconds per profile (default: --duration)
#   --flows F         connections in flight per client thread (default 8)
#   --timeout SEC     per boot (default: estimated from the matrix)
#   --out DIR         results (default build/bench/<timestamp>; build/bench/latest
#                     points to the last one)
#   --quick           icount only, patched kernel only, shared,fs_listen,fs_pin,
#                     reuseport,keepalive, 3 repeats of 2 s, no perf
#   --docs            after the run, copy plots and table into docs/
#
# The defaults take about 90 minutes on 2 host cores: the icount boots first
# (their results do not depend on host load), then the wall-clock boots,
# which want an otherwise idle host.
#
# Environment: FS_BENCH_KERNEL, FS_BENCH_MODULE, FS_BENCH_VANILLA override
# the defaults. Exit status 0 when every boot produced its records; 1 when
# one failed (the others are still analysed); 2 on bad usage.
set -euo pipefail

# One compound command, read whole before it runs (safe to edit meanwhile).
{
top=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
here=$top/benchmarks

usage() { sed -n '4,44p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
die() { echo "run.sh: $*" >&2; exit 1; }

# ------------------------------------------------------------------ report
# report DIR: analyse, plot; with --docs copy into docs/.
report()
{
	local dir=$1 docs=$2 dat mode term

	[ -d "$dir" ] || die "no results directory $dir"
	[ -x $py ] || die "$py missing (apt-get install python3)"
	$py "$here/analyze.py" "$dir" || return 1
	if command -v gnuplot >/dev/null; then
		term=png
		gnuplot -e 'set terminal' 2>&1 | grep -qw pngcairo && term=pngcairo
		for dat in "$dir"/plots/cps_*.dat; do
			[ -e "$dat" ] || continue
			mode=${dat##*/cps_}
			mode=${mode%.dat}
			local ovh=
			[ -s "$dir/plots/overhead_$mode.dat" ] &&
				ovh="ovh='$dir/plots/overhead_$mode.dat';"
			rm -f "$dir/plots/$mode"-*.png
			gnuplot -e "dat='$dat'; $ovh out='$dir/plots/$mode'; ttl='$mode'; term='$term'" \
				"$here/plots.gp" 2> "$dir/plots/$mode.gnuplot.log" ||
				echo "run.sh: gnuplot failed for $mode, see $dir/plots/$mode.gnuplot.log" >&2
		done
	else
		echo "run.sh: gnuplot missing (apt-get install gnuplot-nox): no plots" >&2
	fi
	[ "$docs" = 1 ] || return 0

	local ddir=$top/docs/benchmarks md=$top/docs/benchmarks.md png
	mkdir -p "$ddir"
	rm -f "$ddir"/*.png
	for png in "$dir"/plots/*.png; do
		[ -e "$png" ] && cp "$png" "$ddir/"
	done
	cp "$dir/summary.md" "$ddir/summary.md"
	cp "$dir/perf.md" "$ddir/perf.md"
	[ -f "$md" ] || die "$md missing"
	grep -q '<!-- results:begin -->' "$md" && grep -q '<!-- results:end -->' "$md" ||
		die "$md has no <!-- results:begin --> / <!-- results:end --> markers"
	# The table between the markers, then a list of the plots.
	{
		cat "$dir/summary.md"
		echo
		for png in "$ddir"/*.png; do
			[ -e "$png" ] || continue
			echo "![${png##*/}](benchmarks/${png##*/})"
			echo
		done
		echo "Profiles: [benchmarks/perf.md](benchmarks/perf.md)."
	} > "$dir/.table.md"
	$py - "$md" "$dir/.table.md" <<'EOF'
import sys
md, table = sys.argv[1], open(sys.argv[2]).read()
text = open(md).read()
a, b = "<!-- results:begin -->", "<!-- results:end -->"
i, j = text.index(a) + len(a), text.index(b)
open(md, "w").write(text[:i] + "\n" + table.rstrip() + "\n" + text[j:])
EOF
	rm -f "$dir/.table.md"
	echo "run.sh: updated $md and $ddir/"
}

if [ "${1:-}" = report ]; then
	shift
	[ $# -ge 1 ] || usage
	dir=$1 docs=0
	[ "${2:-}" = --docs ] && docs=1
	report "$dir" $docs
	exit $?
fi

# --------------------------------------------------------------------- run
modes=both
repeats=
duration=2
configs=
kernel=${FS_BENCH_KERNEL:-$top/build/bzImage-bench}
module=${FS_BENCH_MODULE:-$top/build/module-obj-bench/fastsocket.ko}
vanilla=${FS_BENCH_VANILLA:-$top/build/bzImage-vanilla}
novanilla=0
perf=1
perf_icount=0
perf_duration=
flows=8
timeout=
out=
docs=0

while [ $# -gt 0 ]; do
	case $1 in
	--mode) modes=$2; shift 2 ;;
	--repeats) repeats=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	--configs) configs=$2; shift 2 ;;
	--no-real) configs=crr; shift ;;
	--kernel) kernel=$2; shift 2 ;;
	--module) module=$2; shift 2 ;;
	--vanilla) vanilla=$2; shift 2 ;;
	--no-vanilla) novanilla=1; shift ;;
	--no-perf) perf=0; shift ;;
	--perf-icount) perf_icount=1; shift ;;
	--perf-duration) perf_duration=$2; shift 2 ;;
	--flows) flows=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--docs) docs=1; shift ;;
	--quick)
		modes=icount repeats=3 duration=2 perf=0 novanilla=1
		configs=shared,fs_listen,fs_pin,reuseport,keepalive
		shift ;;
	-h|--help) usage 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage ;;
	esac
done
case $modes in
both) modes="icount wall" ;;
icount|wall) ;;
*) echo "run.sh: --mode wants icount, wall or both" >&2; exit 2 ;;
esac
[ -z "$repeats" ] || [[ $repeats =~ ^[1-9][0-9]*$ ]] ||
	{ echo "run.sh: --repeats wants a positive integer" >&2; exit 2; }
[[ $duration =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "run.sh: --duration wants seconds" >&2; exit 2; }
: "${perf_duration:=$duration}"
[ -r "$kernel" ] || die "no kernel at $kernel (make kernel FLAVOR=bench, or --kernel)"
[ -r "$module" ] || die "no module at $module (make module FLAVOR=bench, or --module)"
[ -x "$top/build/benchmarks/crr" ] || die "no build/benchmarks/crr (make benchmarks)"
if [ $novanilla = 0 ] && [ ! -r "$vanilla" ]; then
	echo "run.sh: no vanilla kernel at $vanilla (make vanilla): running without it" >&2
	novanilla=1
fi

# The vanilla kernel runs what needs no module.
all=$("$here/guest-matrix.sh" --list)
expand()
{
	local c

	for c in ${1//,/ }; do
		case $c in
		crr) grep -Ev '^(nginx|haproxy)' <<< "$all" ;;
		real) grep -E '^(nginx|haproxy)' <<< "$all" ;;
		all) echo "$all" ;;
		*) echo "$c" ;;
		esac
	done
}
# Per mode: the configurations, the repeats and whether to profile.
declare -A msel mrep mperf
for mode in $modes; do
	cf=$configs
	[ -n "$cf" ] || { [ $mode = icount ] && cf=crr || cf=crr,real; }
	msel[$mode]=$(expand "$cf" | awk '!seen[$0]++')
	for c in ${msel[$mode]}; do
		grep -qx "$c" <<< "$all" || { echo "run.sh: unknown configuration $c" >&2; exit 2; }
	done
	r=$repeats
	[ -n "$r" ] || { [ $mode = icount ] && r=3 || r=5; }
	mrep[$mode]=$r
	mperf[$mode]=$perf
	[ $mode = icount ] && [ $perf_icount = 0 ] && mperf[$mode]=0
done

[ -n "$out" ] || out=$top/build/bench/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
out=$(cd "$out" && pwd)
case $out in
"$top"/build/bench/*)
	ln -sfn "$(basename "$out")" "$top/build/bench/latest" ;;
esac

# Per boot: about 40 s of boot, then per run the duration plus the start
# and stop of the servers (slower under icount, about 30 s of host time
# per guest second), and per profile its duration plus perf's reporting;
# generous on purpose. timeout_for MODE CONFIGS
timeout_for()
{
	local per_run per_perf n

	[ -z "$timeout" ] || { echo "$timeout"; return; }
	n=$(wc -w <<< "$2")
	per_run=$(awk -v d="$duration" -v m="$1" 'BEGIN { printf "%d", d * (m == "icount" ? 40 : 6) + 30 }')
	per_perf=$(awk -v d="$perf_duration" -v p="${mperf[$1]}" 'BEGIN { printf "%d", p * (d * 20 + 120) }')
	echo $((300 + n * (${mrep[$1]} * per_run + per_perf)))
}

{
	echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
	r=
	for mode in $modes; do
		r+="${r:+, }${mrep[$mode]} ($mode)"
		echo "repeats_$mode=${mrep[$mode]}"
		echo "configs_$mode=$(echo ${msel[$mode]} | tr ' ' ,)"
		echo "perf_$mode=${mperf[$mode]}"
	done
	echo "repeats=$r"
	echo "duration=$duration"
	echo "perf_duration=$perf_duration"
	echo "flows=$flows"
	echo "modes=$modes"
	echo "kernel=$(readlink -f "$kernel")"
	echo "module=$(readlink -f "$module")"
	[ $novanilla = 1 ] || echo "vanilla=$(readlink -f "$vanilla")"
	echo "host_nproc=$(nproc)"
	echo "host_cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
	echo "host_kernel=$(uname -r)"
	echo "qemu=$(qemu-system-x86_64 --version | head -n 1)"
	echo "git=$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)"
} > "$out/run.txt"

status=0
# boot MODE NAME BZIMAGE CONFIGS [MODULE]
boot()
{
	local mode=$1 name=$2 bz=$3 cf=$4 mod=${5:-} dir rc vm=() ga=() t

	dir=$out/$mode-$name
	[ "$mode" = icount ] && vm+=(--icount)
	ga=(--configs "$(echo $cf | tr ' ' ,)" --repeats "${mrep[$mode]}"
		--duration "$duration" --flows "$flows")
	if [ "${mperf[$mode]}" = 1 ]; then
		ga+=(--perf --perf-duration "$perf_duration")
	else
		ga+=(--no-perf)
	fi
	[ -n "$mod" ] && ga+=(--module "$mod")
	t=$(timeout_for "$mode" "$cf")
	echo "run.sh: $mode, $name kernel: $(echo $cf | tr ' ' ,) x ${mrep[$mode]} (timeout ${t}s) -> $dir"
	rc=0
	"$top/tools/vm-run" -q -k "$bz" -t "$t" -o "$dir" "${vm[@]}" -- \
		"$here/guest-matrix.sh" "${ga[@]}" || rc=$?
	if [ $rc != 0 ]; then
		echo "run.sh: the $mode/$name boot failed (exit $rc); see $dir/console.log" >&2
		status=1
	fi
}

# The patched kernel's name in the results: bzImage-NAME -> NAME.
kname=$(basename "$kernel")
kname=${kname#bzImage-}
[[ $kname =~ ^[a-z0-9_]+$ ]] || kname=bench
for mode in $modes; do
	boot "$mode" "$kname" "$kernel" "${msel[$mode]}" "$module"
	van_sel=$(grep -Ev '^fs_|_fs$' <<< "${msel[$mode]}" || true)
	if [ $novanilla = 0 ] && [ -n "$van_sel" ]; then
		boot "$mode" vanilla "$vanilla" "$van_sel"
	fi
done

report "$out" $docs || status=1
echo "run.sh: results in $out (summary.md, results.csv, plots/, perf.md)"
exit $status
}
