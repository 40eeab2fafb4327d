#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the VM (tools/vm-run): the Fastsocket selftests, then the
# upstream net selftests with every Fastsocket switch on. Each program runs
# with a time limit; the kernel log is checked after each one and a splat
# fails that program. Harness programs count per test case (their
# "# Totals:" line), plain programs count once (exit 0 pass, 4 skip).
#
#   runtests.sh [fastsocket|net]...     default: both
#
# FS_TESTS="listen_local stats" limits the Fastsocket suite to those
# programs (the inner loop of development).
#
# Ends with "N passed, N failed, N skipped" and writes it to
# $FS_OUT/summary; exit status 1 when anything failed.
set -u

# One compound command, read whole before it runs: editing this file
# while it runs cannot break the run.
{
top=${FS_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
bin=$top/build/selftests
module=${FS_MODULE:-$top/build/module-obj-test/fastsocket.ko}
out=${FS_OUT:-/tmp}
logs=$out/logs
per_test_timeout=${FS_TEST_TIMEOUT:-600}
cli=$top/build/tools/fastsocket
export FS_MODULE=$module FS_CLI=$cli

mkdir -p "$logs"
passed=0 failed=0 skipped=0
failures=()

# Kernel log lines that fail a test (vm-run applies them too).
splat=$(cat "$top/tools/kernel-splats.ere")

# Every test runs in network namespaces of its own. What still runs in
# another namespace than ours once a test has ended (servers a test left
# behind when its timeout killed it: nginx daemonizes) would starve the
# next tests: kill it, and say so in the test's log.
# Builtins only (test -ef compares the namespace inodes): an exec per
# process would cost seconds under emulation after every test.
reap_strays() {
	local p
	for p in /proc/[0-9]*; do
		[ "$p/ns/net" -ef /proc/$$/ns/net ] && continue
		[ -e "$p/ns/net" ] || continue
		echo "runtests: killing stray ${p#/proc/}: $(tr '\0' ' ' < "$p/cmdline" 2>/dev/null)"
		kill -9 "${p#/proc/}" 2>/dev/null
	done
}

# run NAME DIR COMMAND...: run one program, count its results.
run() {
	local name=$1 dir=$2 log=$logs/${1//\//_}.log rc start totals p f s e
	shift 2
	dmesg -C
	start=$(date +%s)
	(cd "$dir" && timeout -k 10 "$per_test_timeout" "$@") >"$log" 2>&1
	rc=$?
	reap_strays >>"$log"
	totals=$(grep -a '^# Totals: ' "$log" | tail -1)
	if [ -n "$totals" ]; then
		p=$(sed -n 's/.* pass:\([0-9]*\).*/\1/p' <<<"$totals")
		f=$(sed -n 's/.* fail:\([0-9]*\).*/\1/p' <<<"$totals")
		s=$(sed -n 's/.* skip:\([0-9]*\).*/\1/p' <<<"$totals")
		e=$(sed -n 's/.* error:\([0-9]*\).*/\1/p' <<<"$totals")
		f=$((f + ${e:-0}))
		# A harness that died half way has rc != 0 with fail:0.
		[ "$rc" != 0 ] && [ "$f" = 0 ] && [ "$rc" != 4 ] && f=1
	elif [ "$rc" = 0 ]; then
		p=1 f=0 s=0
	elif [ "$rc" = 4 ]; then
		p=0 f=0 s=1
	else
		p=0 f=1 s=0
	fi
	if dmesg | grep -aqE "$splat"; then
		echo "$name: kernel log after the test:" >>"$log"
		dmesg >>"$log"
		f=$((f + 1))
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	printf '%-40s pass %3d fail %3d skip %3d  (%ds, rc %d)\n' "$name" \
		"$p" "$f" "$s" $(($(date +%s) - start)) "$rc"
	if [ "$f" != 0 ]; then
		failures+=("$name")
		sed 's/^/    | /' "$log" | tail -40
	fi
}

# A fresh network namespace with lo up, as the upstream in_netns.sh does.
in_new_netns=(unshare -n sh -c 'ip link set lo up && exec "$@"' in_new_netns)

load() {
	rmmod fastsocket 2>/dev/null
	insmod "$module" "$@" || { echo "runtests: cannot load $module" >&2; exit 1; }
}

suite_fastsocket() {
	local t
	echo "== Fastsocket selftests"
	load
	for t in "$bin"/fastsocket/*; do
		[ -x "$t" ] || continue
		if [ -n "${FS_TESTS:-}" ] && ! [[ " $FS_TESTS " == *" $(basename "$t") "* ]]; then
			continue
		fi
		run "fastsocket/$(basename "$t")" "$bin/fastsocket" "$t"
		lsmod | grep -q '^fastsocket ' || load
	done
}

# Every switch on in init_net, and every namespace the tests create
# inherits that (netns_inherit=1), with all ports in the port set.
suite_net() {
	local d=$bin/net sw
	echo "== upstream net selftests, every Fastsocket switch on"
	load netns_inherit=1
	# every feature this kernel has; the others refuse 1 (EOPNOTSUPP)
	"$cli" enable || return 1
	"$cli" ports 1-65535 || return 1
	"$cli" status
	export PATH=$d:$PATH
	# Connecting sockets enabled too, so that steering picks their
	# ports: the tests' connect()s go through libfastsocket.so's
	# FASTSOCKET_ACTIVE, as an unmodified client's would.
	export LD_PRELOAD=$top/build/tools/libfastsocket.so \
		FASTSOCKET_ACTIVE=1 FASTSOCKET_QUIET=1
	run net/reuseport_bpf "$d" "${in_new_netns[@]}" ./reuseport_bpf
	run net/reuseport_bpf_cpu "$d" "${in_new_netns[@]}" ./reuseport_bpf_cpu
	run net/reuseport_dualstack "$d" "${in_new_netns[@]}" ./reuseport_dualstack
	run net/reuseport_addr_any "$d" ./reuseport_addr_any.sh
	run net/so_incoming_cpu "$d" ./so_incoming_cpu
	run net/ip_local_port_range "$d" ./ip_local_port_range.sh
	run net/bind_bhash "$d" sh -c './bind_bhash.sh -4 && ./bind_bhash.sh -6'
	run net/bind_timewait "$d" "${in_new_netns[@]}" ./bind_timewait
	run net/bind_wildcard "$d" "${in_new_netns[@]}" ./bind_wildcard
	run net/reuseaddr_conflict "$d" "${in_new_netns[@]}" ./reuseaddr_conflict
	run net/reuseaddr_ports_exhausted "$d" ./reuseaddr_ports_exhausted.sh
	run net/sk_bind_sendto_listen "$d" "${in_new_netns[@]}" ./sk_bind_sendto_listen
	run net/sk_connect_zero_addr "$d" "${in_new_netns[@]}" ./sk_connect_zero_addr
	run net/so_netns_cookie "$d" ./so_netns_cookie
	run net/tcp_fastopen_backup_key "$d" ./tcp_fastopen_backup_key.sh
	run net/tcp_inq "$d" "${in_new_netns[@]}" ./tcp_inq
	run net/stress_reuseport_listen "$d" ./stress_reuseport_listen.sh
	unset LD_PRELOAD FASTSOCKET_ACTIVE FASTSOCKET_QUIET
	# The switches were really on while they ran. (Whether steering
	# chose ports is counted in each test's own netns, gone by now;
	# selftests/fastsocket/steering.c asserts it.)
	[ "$(cat /proc/sys/net/fastsocket/enabled)" = 1 ] || failed=$((failed + 1))
	load
}

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(fastsocket net)
for s in "${suites[@]}"; do
	"suite_$s"
done

[ ${#failures[@]} = 0 ] || echo "failed: ${failures[*]}"
summary="$passed passed, $failed failed, $skipped skipped"
echo "$summary" | tee "$out/summary"
[ "$failed" = 0 ]
}
