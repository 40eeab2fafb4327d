#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host side of "make test": boot the test kernel, run selftests/runtests.sh
# in the guest, and print its summary as the last line. A kernel splat, a
# timeout or a guest that died counts as one more failure.
set -uo pipefail

# One compound command, read whole before it runs: editing this file
# while it runs cannot break the run.
{
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/vm/test-$(date +%Y%m%d-%H%M%S)
"$top/tools/vm-run" --nic -t "${FS_TEST_VM_TIMEOUT:-3000}" -o "$out" -- \
	"$top/selftests/runtests.sh" "$@"
rc=$?
summary=$(cat "$out/summary" 2>/dev/null)
if [ -z "$summary" ]; then
	summary="0 passed, 1 failed, 0 skipped"
elif [ $rc = 124 ] || [ $rc = 125 ]; then
	read -r p _ f _ s _ <<<"$summary"
	summary="$p passed, $((f + 1)) failed, $s skipped"
fi
# On the host, one test each: make install and the man pages; crr's own
# self-check on loopback; the one list of benchmark configurations.
if [ $# = 0 ]; then
	read -r p _ f _ s _ <<<"$summary"
	for t in tools/check-install.sh tools/deb/check.sh benchmarks/test_crr.sh \
		 benchmarks/test_configs.sh; do
		if "$top/$t" > "$out/host-${t##*/}.log" 2>&1; then
			echo "host: $t ok"
			p=$((p + 1))
		else
			echo "host: $t FAILED:"
			tail -20 "$out/host-${t##*/}.log"
			f=$((f + 1))
			[ $rc != 0 ] || rc=1
		fi
	done
	summary="$p passed, $f failed, $s skipped"
fi
# The locality meter's calibration (benchmarks/meter): one more test,
# in a boot of its own (single-threaded TCG, instruction-counted).
if [ $# = 0 ]; then
	"$top/benchmarks/meter/calibrate.sh" -o "$out/meter-calib"
	crc=$?
	read -r p _ f _ s _ <<<"$summary"
	if [ $crc = 0 ]; then
		p=$((p + 1))
	else
		f=$((f + 1))
		[ $rc != 0 ] || rc=1
	fi
	summary="$p passed, $f failed, $s skipped"
fi
echo "logs: $out"
echo "$summary"
exit $rc
}
