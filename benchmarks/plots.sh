#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# plots.sh: regenerate summary.md, results.csv, perf.md and the PNG plots
# of a benchmark results directory, and copy them into the documentation
# (docs/benchmarks/*.png, docs/benchmarks/{summary,perf}.md, and the table
# in docs/benchmarks.md between <!-- results:begin --> and
# <!-- results:end -->).
#
#   benchmarks/plots.sh [DIR]      (default build/bench/latest)
#   benchmarks/plots.sh --no-docs [DIR]   results directory only
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
docs=--docs
case ${1:-} in
-h|--help) sed -n '4,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
--no-docs) docs=; shift ;;
esac
dir=${1:-$top/build/bench/latest}
if [ ! -d "$dir" ]; then
	echo "plots.sh: no results directory $dir (run make bench or benchmarks/run.sh first)" >&2
	exit 1
fi
exec "$top/benchmarks/run.sh" report "$dir" $docs
