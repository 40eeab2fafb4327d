#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# fastsocket nic DEV on the VM's virtio-net device (its RX IRQ moved to
# CPU 0 and back), then against a veth device with four RX queues, in a
# network namespace of its own: --dry-run prints the exact commands and
# changes nothing; applying sets one RX queue per CPU with ethtool, says
# what the device cannot do (no ntuple filters, no IRQs) and leaves it to
# the software hook; a second run is refused; --undo puts the queues back
# and removes the state; -j parses; bad arguments get exit 2 and change
# nothing.
#
# Exit status as kselftest: 0 pass, 1 fail, 4 skip.
set -u

ksft_skip=4
cli=${FS_CLI:-$(cd "$(dirname "$0")/../../.." && pwd)/build/tools/fastsocket}
py=/usr/bin/python3

if [ ! -x "$cli" ]; then
	echo "FAIL: no fastsocket CLI at $cli (make tools)"
	exit 1
fi
if ! command -v ethtool >/dev/null; then
	echo "FAIL: ethtool is not installed (tools/deps.sh installs it)"
	exit 1
fi
# The real NIC first, in the namespace that has it: tools/run-tests.sh
# boots the VM with a virtio-net device (vm-run --nic). One queue, no
# RSS, no ntuple filters: what it can set is its RX IRQ's affinity.
real_nic() {
	local d dev= irq= old out st
	for d in /sys/class/net/*; do
		case $(readlink "$d/device" 2>/dev/null) in
		*/virtio*) dev=${d##*/}; break ;;
		esac
	done
	if [ -z "$dev" ]; then
		echo "FAIL: no virtio-net device (tools/run-tests.sh boots with vm-run --nic)"
		return 1
	fi
	d=$(basename "$(readlink /sys/class/net/$dev/device)")
	irq=$(awk -v n="$d-input.0" '$NF == n { sub(":", "", $1); print $1 }' /proc/interrupts)
	[ -n "$irq" ] || { echo "FAIL: no $d-input.0 in /proc/interrupts"; return 1; }
	old=$(cat /proc/irq/$irq/smp_affinity_list)
	st=$(mktemp -d /tmp/nic-real.XXXXXX)
	echo "real NIC $dev ($d): RX IRQ $irq on CPUs $old"
	out=$("$cli" nic "$dev" --dry-run --state-dir "$st") || { echo "FAIL: $dev dry-run"; return 1; }
	echo "$out"
	if [ "$old" != 0 ]; then
		grep -qx "echo 0 > /proc/irq/$irq/smp_affinity_list" <<<"$out" ||
			{ echo "FAIL: $dev dry-run does not put IRQ $irq on CPU 0"; return 1; }
	fi
	grep -q "^# ntuple: cannot" <<<"$out" || { echo "FAIL: $dev: ntuple not said impossible"; return 1; }
	"$cli" nic "$dev" --state-dir "$st" || { echo "FAIL: $dev apply"; return 1; }
	[ "$(cat /proc/irq/$irq/smp_affinity_list)" = 0 ] ||
		{ echo "FAIL: $dev: IRQ $irq on $(cat /proc/irq/$irq/smp_affinity_list), not 0"; return 1; }
	"$cli" nic "$dev" --undo --state-dir "$st" || { echo "FAIL: $dev undo"; return 1; }
	[ "$(cat /proc/irq/$irq/smp_affinity_list)" = "$old" ] ||
		{ echo "FAIL: $dev undo: IRQ $irq on $(cat /proc/irq/$irq/smp_affinity_list), not $old"; return 1; }
	rmdir "$st"
	echo "ok: real NIC $dev: dry-run, apply, undo"
}

if [ -z "${FS_NIC_NETNS:-}" ]; then
	real_nic || exit 1
	FS_NIC_NETNS=1 exec unshare -n "$0" "$@"
fi
ip link set lo up

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
ok() { echo "ok: $*"; }

state=$(mktemp -d /tmp/nic-state.XXXXXX)
trap 'rm -rf "$state"' EXIT
dev=fsn0
ncpu=$(nproc)
ip link add $dev numrxqueues 4 numtxqueues 4 type veth peer name fsn1 \
	numrxqueues 4 numtxqueues 4 || { echo "FAIL: cannot create veth"; exit 1; }
ip link set $dev up

rx_now() { ethtool -l $dev | sed -n '/Current/,$p' | awk '/^RX:/ { print $2 }'; }
rx0=$(rx_now)
want=$((ncpu < 4 ? ncpu : 4))
echo "veth $dev: RX queues now $rx0, want $want for $ncpu CPUs"

# --dry-run: the exact commands, nothing changed, no state
out=$("$cli" nic $dev --dry-run --state-dir "$state") || fail "dry-run exit $?"
grep -qx "ethtool -L $dev rx $want" <<<"$out" || fail "dry-run: no 'ethtool -L $dev rx $want' in: $out"
grep -q "^# ntuple: cannot" <<<"$out" || fail "dry-run: ntuple not said impossible: $out"
grep -q "software steering covers" <<<"$out" || fail "dry-run: no word on the software hook: $out"
[ "$(rx_now)" = "$rx0" ] || fail "dry-run changed the queues"
[ -z "$(ls "$state")" ] || fail "dry-run wrote state"
ok "dry-run"

# -j --dry-run: JSON with every step
out=$("$cli" -j nic $dev --dry-run --state-dir "$state") || fail "-j dry-run exit $?"
$py -c '
import json, sys
j = json.loads(sys.argv[1])
steps = {s["what"]: s for s in j["steps"]}
assert j["dev"] == sys.argv[2] and j["dry_run"] is True, j
assert steps["channels"]["command"] == "ethtool -L %s rx %s" % (sys.argv[2], sys.argv[3]), steps
assert steps["channels"]["status"] == "planned", steps
assert steps["ntuple"]["status"] == "cannot", steps
assert j["software_hook"] is True, j
' "$out" $dev $want || fail "-j dry-run: $out"
ok "-j dry-run"

# apply
if [ "$rx0" != "$want" ]; then
	out=$("$cli" nic $dev --state-dir "$state") || fail "apply exit $?: $out"
	echo "$out"
	[ "$(rx_now)" = "$want" ] || fail "apply: RX queues $(rx_now), want $want"
	grep -q "^done *channels" <<<"$out" || fail "apply: channels not done: $out"
	[ -f "$state/nic-$dev.state" ] || fail "apply: no state file"
	grep -qx "ethtool -L $dev rx $rx0" "$state/nic-$dev.state" ||
		fail "state does not undo the channels: $(cat "$state/nic-$dev.state")"
	ok "apply"

	out=$("$cli" nic $dev --state-dir "$state" 2>&1)
	[ $? = 2 ] || fail "second apply: exit not 2"
	grep -q "already set up" <<<"$out" || fail "second apply: no clear message: $out"
	ok "second apply refused"

	out=$("$cli" nic $dev --undo --state-dir "$state") || fail "undo exit $?: $out"
	[ "$(rx_now)" = "$rx0" ] || fail "undo: RX queues $(rx_now), want $rx0"
	[ ! -e "$state/nic-$dev.state" ] || fail "undo left the state file"
	ok "undo"
else
	echo "note: the veth already has $want RX queues; apply not exercised"
fi

# A described NIC (FASTSOCKET_ETHTOOL): 8 combined queues, ntuple filters
# off but switchable. The plan is the expected commands; applying runs
# them; --undo runs the saved undo lines, last change first.
fake=$state/ethtool
cat >"$fake" <<'EOF'
#!/bin/sh
case "$1" in
--version) echo "ethtool version 6.1" ;;
-l) printf 'Channel parameters for %s:\nPre-set maximums:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\t1\nCombined:\t8\nCurrent hardware settings:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\t1\nCombined:\t8\n' "$2" ;;
-k) printf 'Features for %s:\nntuple-filters: off\nreceive-hashing: on\n' "$2" ;;
-x) printf 'RX flow hash indirection table for %s with 8 RX ring(s):\n' "$2" ;;
*) echo "$*" >>"$(dirname "$0")/ran"
   if [ "$1" = -N ] && [ "$3" != delete ] && [ -e "$(dirname "$0")/refuse" ]; then
	echo "rmgr: Cannot insert RX class rule: Invalid argument"; exit 1
   fi
   [ "$1" = -N ] && [ "$3" != delete ] && echo "Added rule with ID $((40 + $(wc -l <"$(dirname "$0")/ran")))" ;;
esac
exit 0
EOF
chmod +x "$fake"
bits=$(cat /proc/sys/net/fastsocket/steering_class_bits 2>/dev/null || echo 1)
read -r low _ </proc/sys/net/ipv4/ip_local_port_range
q=$((ncpu < 8 ? ncpu : 8))
classes=$((1 << bits)); [ $classes -gt $q ] && classes=$q
care=$(( 0x8000 | ((1 << bits) - 1) << 1 | 1 ))
m=$(printf '0x%x' $(( ~care & 0xffff )))
{
	echo "ethtool -L $dev combined $q"
	echo "ethtool -X $dev equal $q"
	echo "ethtool -K $dev ntuple on"
	for ((c = 0; c < classes; c++)); do
		for f in tcp4 tcp6; do
			echo "ethtool -N $dev flow-type $f dst-port $((0x8000 | c << 1 | (low & 1))) m $m action $c"
		done
	done
} >"$state/expected"
out=$(FASTSOCKET_ETHTOOL=$fake "$cli" nic $dev --dry-run --state-dir "$state") ||
	fail "described NIC dry-run exit $?"
diff <(grep -v '^#' <<<"$out") "$state/expected" >&2 ||
	fail "described NIC: the plan differs from the expected commands"
[ ! -e "$state/ran" ] || fail "described NIC dry-run ran ethtool changes"
ok "described NIC: dry-run"

out=$(FASTSOCKET_ETHTOOL=$fake "$cli" nic $dev --state-dir "$state") ||
	fail "described NIC apply exit $?: $out"
sed 's/^ethtool //' "$state/expected" | diff - "$state/ran" >&2 ||
	fail "described NIC: apply ran other commands"
grep -qx "ethtool -N $dev delete 44" "$state/nic-$dev.state" ||
	fail "described NIC: rule IDs not saved: $(cat "$state/nic-$dev.state")"
: >"$state/ran"
out=$(FASTSOCKET_ETHTOOL=$fake "$cli" nic $dev --undo --state-dir "$state") ||
	fail "described NIC undo exit $?: $out"
head -1 "$state/ran" | grep -q "^-N $dev delete " ||
	fail "described NIC undo: the last rule not deleted first: $(head -1 "$state/ran")"
tail -1 "$state/ran" | grep -qx -- "-L $dev combined 8" ||
	fail "described NIC undo: channels not put back last: $(tail -1 "$state/ran")"
[ ! -e "$state/nic-$dev.state" ] || fail "described NIC undo left the state"
ok "described NIC: apply and undo"

# The same NIC whose driver refuses masked rules (as ixgbe, i40e and ice
# do): the first rule is reported impossible, no other is tried, the run
# succeeds and relies on the software hook; undo puts back the rest.
: >"$state/refuse"
rm -f "$state/ran"
out=$(FASTSOCKET_ETHTOOL=$fake "$cli" nic $dev --state-dir "$state") ||
	fail "refused rules: exit $?: $out"
[ "$(grep -c '^cannot *rule' <<<"$out")" = 1 ] || fail "refused rules: not one 'cannot rule': $out"
[ "$(grep -c '^skipped *rule' <<<"$out")" = $((2 * classes - 1)) ] ||
	fail "refused rules: the other rules not skipped: $out"
grep -q "software steering covers" <<<"$out" || fail "refused rules: no word on the software hook"
[ "$(grep -c -- '^-N ' "$state/ran")" = 1 ] || fail "refused rules: more than one rule tried"
out=$(FASTSOCKET_ETHTOOL=$fake "$cli" nic $dev --undo --state-dir "$state") ||
	fail "refused rules: undo exit $?: $out"
[ ! -e "$state/nic-$dev.state" ] || fail "refused rules: undo left the state"
rm -f "$state/ran" "$state/expected" "$state/refuse" "$fake"
ok "described NIC: masked rules refused"

# nothing to undo, bad arguments: exit 2, nothing changed
"$cli" nic $dev --undo --state-dir "$state" 2>/dev/null
[ $? = 2 ] || fail "undo without state: exit not 2"
for args in "" "nosuchdev0" "$dev --bogus" "$dev extra" "$dev --undo --dry-run"; do
	# shellcheck disable=SC2086
	"$cli" nic $args --state-dir "$state" >/dev/null 2>&1
	[ $? = 2 ] || fail "nic $args: exit not 2"
done
[ "$(rx_now)" = "$rx0" ] || fail "bad arguments changed the queues"
[ -z "$(ls "$state")" ] || fail "bad arguments wrote state"
ok "bad arguments"

if [ $failures -gt 0 ]; then
	echo "$failures failure(s)"
	exit 1
fi
echo "all nic checks passed"
exit 0
