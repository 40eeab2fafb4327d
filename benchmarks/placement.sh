#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# placement.sh: short connections in a placement where locality matters
# (issue 10, part 2). Runs inside the guest as root, one boot:
#
#   tools/vm-run -c N [--icount] -k build/bzImage-bench -- \
#       benchmarks/placement.sh [options]
#
# The server and the clients are separate processes in two network
# namespaces joined by a veth pair, each on its own vCPUs:
#   server netns fsp-srv: veth vp-srv 10.77.0.1/24 fd77::1/64, crr server
#   client netns fsp-cli: veth vp-cli 10.77.0.2/24 fd77::2/64, crr client
# RPS on vp-srv's rx-0 spreads the packets that reach the server over the
# server CPUs by flow hash, as a NIC's RSS does; without it, the veth
# receive of a client's packet runs in the client CPU's softirq. RPS on
# vp-cli's rx-0 likewise keeps the client side's receive on the client
# CPUs (--no-client-rps: it then runs in the server CPU's softirq).
#
# --wire nic replaces the veth pair with two multiqueue virtio-net NICs
# wired to each other outside the guest (tools/vm-run --wire Q): the
# server's NIC (MAC 52:54:00:fa:57:01) becomes vp-srv, the client's
# (:02) vp-cli. The host's tun spreads flows over the queues by their
# hash, as RSS does (QEMU's own RSS is off: it lost TCP over a tap), queue
# i's interrupts and XPS go to the side's i-th CPU, RPS stays off. Each
# CPU then transmits on a queue of its own and receives into buffers it
# allocated itself, as with a real NIC; the veth wire instead makes every
# server CPU write each client CPU's backlog and free the skbs the
# clients allocated. A boot that isolates the server CPUs from the
# scheduler's domains (isolcpus=domain, locality.sh --isolate) takes
# --wire nic, since the kernel refuses RPS onto isolated CPUs; the
# HAProxy backend's veth then has no RPS on the server side.
#
#   --server-cpus LIST  CPUs of the server, e.g. 0-1 or 0,2 (default: the
#                       first half of the online CPUs); crr server runs
#                       under taskset with this set, one worker per CPU
#   --client-cpus LIST  CPUs of the client (default: the other CPUs); one
#                       crr client thread per CPU, pinned
#   --configs LIST      comma-separated configurations (default: all)
#   --repeats N         timed runs per configuration (default 3)
#   --duration S        seconds per timed run, guest time (default 5)
#   --flows F           connections in flight per client thread (default 8)
#   --reserve-us US     net.fastsocket.listen_reserve_us for the fs_*
#                       configurations (default: leave the module's value);
#                       skipped with a message when the sysctl is missing
#   --mark CMD          phase hook: "CMD begin NAME" runs just before each
#                       timed run (in the client launcher, right before
#                       crr client is exec'd), "CMD end NAME" right after
#                       the client exits; NAME is the configuration. CMD is
#                       split on blanks. Default: none
#   --meter             crr client marks its own timed phase for the
#                       locality meter (meter_begin/meter_end around its
#                       loop, no exec or exit inside); excludes --mark
#   --module PATH       fastsocket.ko to load (default $FS_MODULE); without
#                       it the fs_* configurations are skipped
#   --ipv6              connect over fd77::/64 instead of 10.77.0.0/24
#   --close-first       crr's server closes each connection right after
#                       its response (crr server --close-first), so that
#                       the server's side goes to TIME_WAIT; nginx already
#                       does, as the client sends "Connection: close".
#                       Each configuration's TIME_WAIT sockets are killed
#                       (ss -K) before the next one starts
#   --wire veth|nic     the wire between the two namespaces (default veth)
#   --no-client-rps     leave RPS off on the client's veth
#   --no-server-rps     leave RPS off on the server's veth: a control, the
#                       server's receive then runs on the client CPUs
#                       (crr_incoming_client counts it)
#   --no-rotate         every repeat starts with the first configuration
#   --timer-migration N kernel.timer_migration for the boot (default: leave
#                       it): 0 keeps an idle client CPU's timers on it, so
#                       that the clients' sockets are not finished off on
#                       server CPUs
#   --port P            server port (default 8080)
#   --out DIR           where to write (default $FS_OUT)
#   --list              list the configurations and exit
#   -h, --help          this help
#
# Configurations: the rows of benchmarks/configs.md whose harness is
# placement or both (--list prints them), W = the number of server CPUs.
# The module, when loaded, stays loaded, every switch 0 but what the row
# arms. crr's server runs under taskset on the server CPUs; nginx (W
# workers, unpinned within them) likewise, on $saddr:PORT; HAProxy (W
# threads) on $saddr:PORT in front of an nginx on 10.78.0.2:PORT+1
# (fd78::2) in a third netns, fsp-bak, behind a second veth pair (vb-srv
# in the server netns, RPS over the server CPUs, as the NIC's RSS for the
# backend's replies; vb-bak, RPS over the client CPUs), that nginx on the
# client CPUs; the server side armed when the row says so (ports
# PORT-PORT+1). "haproxy active" runs HAProxy under libfastsocket.so with
# FASTSOCKET_ACTIVE=1, so that steering picks its connect()s' ports.
# wrk replaces crr's client for them: one thread per client CPU, under
# taskset on the client CPUs, W x F connections in flight, "Connection:
# close", the duration rounded up to whole seconds (wrk takes no less);
# with --meter the phase is marked by "crr mark" around wrk's exec.
# Repeats interleave: repeat r runs every configuration, starting r-1 later.
#
# Output in DIR: placement.txt, one line per timed run of key=value pairs:
#   config repeat server_cpus client_cpus workers threads flows duration
#   conns cps failures (client: failed connects + resets + timeouts +
#   errors), crr_accepted, crr_local_share (accepts whose SO_INCOMING_CPU
#   is the CPU that called accept; the SYN's and the handshake-completing
#   ACK's softirq CPU, which RPS hashes alike), crr_incoming_server and
#   crr_incoming_client (accepts by where their softirq ran),
#   fs_accept_local fs_accept_stolen fs_local_share (module loaded) and
#   fs_listen_local_server/_client (queued per side), ipi_cal ipi_res
#   ipis_per_conn (/proc/interrupts CAL+RES summed over CPUs / conns),
#   rps_ipi (softnet_stat received_rps: the IPIs that stand in for a NIC's
#   interrupts, both directions), ipis_nonrps_per_conn (the rest: wake-ups,
#   TLB, ... per connection), net_rx_cpuN (NET_RX softirqs per
#   CPU), net_rx_server net_rx_client, listen_overflows listen_drops (server
#   netns), mark (ok, none or failed) and with --mark phase (1, 2, ...:
#   the how-manieth begin this boot, the meter's phase number);
#   placement-raw/ the tools' output;
#   placement-guest.txt the set-up as read back.
# Exit status 0 when every timed run produced a line with its connections;
# 1 when some did not; 2 on bad usage.
set -euo pipefail
# shellcheck disable=SC1007,SC2154 # "a= b=" clears; snap() fills arrays by nameref

# The whole script is one compound command, read before it runs: the guest
# reads it over 9p, and an edit on the host must not change a running copy.
{
top=${FS_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
crr=$top/build/benchmarks/crr
module=${FS_MODULE:-}
configs=
repeats=3
duration=5
flows=8
reserve=
mark=
meter=0
ipv6=0
close_first=0
client_rps=1
server_rps=1
wire=veth
rotate=1
port=8080
timer_mig=
out=${FS_OUT:-}
srv_list=
cli_list=

# shellcheck source=configs.sh
. "$top/benchmarks/configs.sh"
cfg_load placement || exit 2
all_configs="${cfg_names[*]}"
# shellcheck source=../tools/servers.sh
. "$top/tools/servers.sh"
ns_srv=fsp-srv
ns_cli=fsp-cli
dev_srv=vp-srv
dev_cli=vp-cli
ns_bak=fsp-bak
dev_bs=vb-srv
dev_bb=vb-bak
rfs_entries=32768

usage() { sed -n '4,113p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
log() { echo "placement: $*" >&2; }
die() { log "$*"; exit 1; }
bad() { log "$*"; exit 2; }

while [ $# -gt 0 ]; do
	case $1 in
	--server-cpus|--client-cpus|--configs|--repeats|--duration|--flows|\
	--reserve-us|--mark|--module|--port|--out|--timer-migration|--wire)
		[ $# -ge 2 ] || bad "$1 wants a value"
		case $1 in
		--server-cpus) srv_list=$2 ;;
		--client-cpus) cli_list=$2 ;;
		--configs) configs=$2 ;;
		--repeats) repeats=$2 ;;
		--duration) duration=$2 ;;
		--flows) flows=$2 ;;
		--reserve-us) reserve=$2 ;;
		--mark) mark=$2 ;;
		--module) module=$2 ;;
		--port) port=$2 ;;
		--out) out=$2 ;;
		--timer-migration) timer_mig=$2 ;;
		--wire) wire=$2 ;;
		esac
		shift 2 ;;
	--ipv6) ipv6=1; shift ;;
	--close-first) close_first=1; shift ;;
	--meter) meter=1; shift ;;
	--no-client-rps) client_rps=0; shift ;;
	--no-server-rps) server_rps=0; shift ;;
	--no-rotate) rotate=0; shift ;;
	--list) echo $all_configs | tr ' ' '\n'; exit 0 ;;
	-h|--help) usage 0 ;;
	*) log "unknown option $1"; usage ;;
	esac
done
[[ $repeats =~ ^[1-9][0-9]*$ ]] || bad "--repeats wants a positive integer"
[[ $duration =~ ^[0-9]*\.?[0-9]+$ ]] || bad "--duration wants seconds"
[[ $flows =~ ^[1-9][0-9]*$ ]] || bad "--flows wants a positive integer"
[[ $port =~ ^[1-9][0-9]*$ ]] && [ "$port" -lt 65536 ] || bad "--port wants 1-65535"
[ -z "$reserve" ] || [[ $reserve =~ ^[0-9]+$ ]] || bad "--reserve-us wants microseconds"
[ -z "$timer_mig" ] || [[ $timer_mig =~ ^[01]$ ]] || bad "--timer-migration wants 0 or 1"
case $wire in
veth) ;;
nic) [ $client_rps = 1 ] && [ $server_rps = 1 ] ||
	bad "--no-client-rps and --no-server-rps are for --wire veth" ;;
*) bad "--wire wants veth or nic" ;;
esac
[ -n "$out" ] || bad "no --out and no \$FS_OUT (run it under tools/vm-run)"
[ "$(id -u)" = 0 ] || bad "must run as root (inside the guest)"
[ -x "$crr" ] || die "no $crr (make -C benchmarks)"
command -v ip >/dev/null || die "no ip (iproute2)"
command -v taskset >/dev/null || die "no taskset (util-linux)"
[ -z "$mark" ] || [ "${meter:-0}" = 0 ] || bad "--meter and --mark exclude each other"
markcmd=()
# shellcheck disable=SC2206 # CMD is split on blanks, as documented
[ -z "$mark" ] || markcmd=($mark)
meter_arg=()
[ "${meter:-0}" = 0 ] || meter_arg=(--meter)

# ------------------------------------------------------------- CPU lists
ncpus=$(nproc --all 2>/dev/null || nproc)
declare -A online=()
for ((i = 0; i < ncpus; i++)); do
	f=/sys/devices/system/cpu/cpu$i/online
	if [ ! -e $f ] || [ "$(< $f)" = 1 ]; then
		online[$i]=1
	fi
done

# cpulist LIST: expand "0-1,3" into $REPLY as "0 1 3"; 1 on bad input
cpulist()
{
	local part a b r=
	local -A seen=()

	[ -n "$1" ] || return 1
	for part in ${1//,/ }; do
		if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
			a=${BASH_REMATCH[1]} b=${BASH_REMATCH[2]}
		elif [[ $part =~ ^[0-9]+$ ]]; then
			a=$part b=$part
		else
			return 1
		fi
		[ "$a" -le "$b" ] || return 1
		for ((; a <= b; a++)); do
			[ -n "${seen[$a]:-}" ] && continue
			seen[$a]=1
			r+=" $a"
		done
	done
	REPLY=${r# }
}

# cpumask "0 1 3": the hex mask sysfs wants (32-bit words, comma-separated)
cpumask()
{
	local c nw w r=
	local -a words=()

	nw=$(((ncpus + 31) / 32))
	for ((w = 0; w < nw; w++)); do words[w]=0; done
	for c in $1; do
		words[c / 32]=$((words[c / 32] | (1 << (c % 32))))
	done
	for ((w = nw - 1; w >= 0; w--)); do
		r+=$(printf '%08x' "${words[w]}")
		[ $w -gt 0 ] && r+=,
	done
	REPLY=$r
}

half=$((ncpus / 2))
if [ -z "$srv_list" ]; then
	[ "$ncpus" -ge 2 ] || bad "need at least 2 CPUs (vm-run -c N)"
	srv_list=0-$((half - 1))
fi
cpulist "$srv_list" || bad "--server-cpus: cannot read '$srv_list' (e.g. 0-1,3)"
srv_cpus=$REPLY
if [ -z "$cli_list" ]; then
	cli_cpus=
	for ((i = 0; i < ncpus; i++)); do
		case " $srv_cpus " in *" $i "*) ;; *) cli_cpus+=" $i" ;; esac
	done
	cli_cpus=${cli_cpus# }
	[ -n "$cli_cpus" ] || bad "no CPU left for the client: give --client-cpus"
else
	cpulist "$cli_list" || bad "--client-cpus: cannot read '$cli_list' (e.g. 2-3)"
	cli_cpus=$REPLY
fi
for c in $srv_cpus $cli_cpus; do
	[ -n "${online[$c]:-}" ] || bad "CPU $c is not online (the guest has $ncpus: vm-run -c N)"
done
for c in $srv_cpus; do
	case " $cli_cpus " in
	*" $c "*) log "warning: CPU $c is both a server and a client CPU: the placement is not apart" ;;
	esac
done
# CPUs the boot isolated from the scheduler's domains (isolcpus=domain,
# locality.sh --isolate): the kernel refuses RPS onto them, so only the
# NIC-like wire (no RPS) can put the server there, and the HAProxy
# backend's veth then gets no RPS to the server CPUs.
srv_isolated=0
isolated=$(cat /sys/devices/system/cpu/isolated 2>/dev/null || true)
if [ -n "$isolated" ]; then
	cpulist "$isolated" || bad "cannot read the isolated CPUs '$isolated'"
	for c in $srv_cpus; do
		case " $REPLY " in *" $c "*) srv_isolated=1 ;; esac
	done
fi
if [ $srv_isolated = 1 ] && [ $wire = veth ]; then
	bad "the server CPUs are isolated (isolcpus=$isolated): RPS cannot spread the veth's flows onto them; use --wire nic"
fi
srv_list=${srv_cpus// /,}
cli_list=${cli_cpus// /,}
read -ra srv_arr <<< "$srv_cpus"
read -ra cli_arr <<< "$cli_cpus"
nsrv=${#srv_arr[@]}
ncli=${#cli_arr[@]}
declare -A is_srv=() is_cli=()
for c in $srv_cpus; do is_srv[$c]=1; done
for c in $cli_cpus; do is_cli[$c]=1; done

# ----------------------------------------------------------- configurations
[ -n "$configs" ] || configs=$all_configs
cfgs=()
declare -A seen=()
for c in ${configs//,/ }; do
	case " $all_configs " in
	*" $c "*) ;;
	*) bad "unknown configuration '$c' (--list shows them)" ;;
	esac
	[ -n "${seen[$c]:-}" ] && continue
	seen[$c]=1
	cfgs+=("$c")
done
[ ${#cfgs[@]} -gt 0 ] || bad "no configuration"

if [ $ipv6 = 1 ]; then
	saddr=fd77::1
else
	saddr=10.77.0.1
fi

raw_dir=$out/placement-raw
mkdir -p "$raw_dir" || die "cannot write to $out"
records=$out/placement.txt
: > "$records"
work=/tmp/placement
rm -rf "$work"
mkdir -p "$work"

# --------------------------------------------------------------- module
fsdir=/proc/sys/net/fastsocket
modstate=none
if [ -n "$module" ]; then
	if [ -d $fsdir ]; then
		modstate=loaded
	elif [ ! -r "$module" ]; then
		modstate=missing
		log "no module at $module"
	elif insmod "$module" 2> "$work/insmod.err"; then
		modstate=loaded
	else
		modstate="insmod-failed:$(tr ' \n' '_ ' < "$work/insmod.err")"
		log "insmod $module failed: $(cat "$work/insmod.err")"
	fi
elif [ -d $fsdir ]; then
	modstate=loaded
fi
# Switches: the features this kernel has (net.fastsocket.available; a
# module without that file is older: every 0/1 entry but the master
# switch and the parameters).
switches=
has_reserve=0
if [ -d $fsdir ]; then
	[ -e $fsdir/listen_reserve_us ] && has_reserve=1
	if [ -r $fsdir/available ]; then
		switches=$(< $fsdir/available)
	else
		for f in $fsdir/*; do
			s=${f##*/}
			case $s in
			enabled|ports|*_us|*_ms|*_ns|*_max|*_min|*_len|*_qlen|*_entries) continue ;;
			esac
			v=$(< "$f") || continue
			case $v in 0|1) switches+=" $s" ;; esac
		done
		switches=${switches# }
	fi
fi
if [ -n "$reserve" ] && [ $has_reserve = 0 ] && [ "$modstate" = loaded ]; then
	log "no net.fastsocket.listen_reserve_us in this module: --reserve-us $reserve skipped"
fi

# ------------------------------------------------------------ the network
holder=
holder_bak=
srv_pid=
cleanup()
{
	[ -z "$srv_pid" ] || kill -KILL "$srv_pid" 2>/dev/null || true
	[ -z "$holder" ] || kill -KILL "$holder" 2>/dev/null || true
	[ -z "$holder_bak" ] || kill -KILL "$holder_bak" 2>/dev/null || true
	ip netns del $ns_cli 2>/dev/null || true
	ip netns del $ns_srv 2>/dev/null || true
	ip netns del $ns_bak 2>/dev/null || true
}
trap cleanup EXIT

# in_ns NS SCRIPT [ARGS]: run a sh script in NS, with NS's own /sys
in_ns() { local ns=$1; shift; ip netns exec "$ns" sh -c "$@"; }

# veth_pair NS1 DEV1 NS2 DEV2 NET: a veth pair between two netns, up,
# NET.0.1/24 and fdNET::1/64 on DEV1 (NET 77: 10.77.0.1, fd77::1), .2 on
# DEV2
veth_pair()
{
	ip link add "$2" netns "$1" type veth peer name "$4" netns "$3" ||
		die "cannot create the veth pair $2-$4 (CONFIG_VETH?)"
	pair_addr "$@"
}

# pair_addr NS1 DEV1 NS2 DEV2 NET: addresses as veth_pair's, links up
pair_addr()
{
	local pair ns dev n=1

	for pair in "$1 $2" "$3 $4"; do
		read -r ns dev <<< "$pair"
		ip -n "$ns" addr add "10.$5.0.$n/24" dev "$dev"
		ip -n "$ns" addr add "fd$5::$n/64" dev "$dev" nodad
		ip -n "$ns" link set lo up
		ip -n "$ns" link set "$dev" up
		n=$((n + 1))
	done
}

# nic_take MAC NS DEV "CPUS": the NIC with MAC, its queue i's interrupts
# (virtioN-input.i, virtioN-output.i) and XPS on the i-th of CPUS (round
# robin), RPS off, moved into NS as DEV
nic_take()
{
	local mac=$1 ns=$2 dev=$3 d name= virtio nq i cpu kind irq
	local -a on

	read -ra on <<< "$4"
	for d in /sys/class/net/*; do
		[ "$(cat "$d/address" 2>/dev/null)" = "$mac" ] || continue
		name=${d##*/}
		break
	done
	[ -n "$name" ] || die "no NIC with MAC $mac: --wire nic needs tools/vm-run --wire Q"
	d=/sys/class/net/$name
	virtio=$(basename "$(readlink "$d/device")")
	nq=$(find "$d/queues" -maxdepth 1 -name 'rx-*' | wc -l)
	for ((i = 0; i < nq; i++)); do
		cpu=${on[i % ${#on[@]}]}
		for kind in input output; do
			irq=$(awk -v n="$virtio-$kind.$i" '$NF == n { sub(":", "", $1); print $1 }' /proc/interrupts)
			[ -n "$irq" ] || die "$name: no interrupt $virtio-$kind.$i in /proc/interrupts"
			echo "$cpu" > "/proc/irq/$irq/smp_affinity_list" ||
				die "$name: cannot move IRQ $irq to CPU $cpu"
		done
		cpumask "$cpu"
		echo "$REPLY" > "$d/queues/tx-$i/xps_cpus" &&
			echo 0 > "$d/queues/rx-$i/rps_cpus" ||
			die "$name: cannot set XPS/RPS of queue $i"
	done
	ip link set "$name" netns "$ns" &&
		ip -n "$ns" link set "$name" name "$dev" ||
		die "cannot move $name into $ns as $dev"
}

ip netns del $ns_cli 2>/dev/null || true
ip netns del $ns_srv 2>/dev/null || true
ip netns del $ns_bak 2>/dev/null || true
ip netns add $ns_srv || die "ip netns add $ns_srv failed (CONFIG_NET_NS?)"
ip netns add $ns_cli || die "ip netns add $ns_cli failed"
ip netns add $ns_bak || die "ip netns add $ns_bak failed"
if [ $wire = nic ]; then
	nic_take 52:54:00:fa:57:01 $ns_srv $dev_srv "$srv_cpus"
	nic_take 52:54:00:fa:57:02 $ns_cli $dev_cli "$cli_cpus"
	pair_addr $ns_srv $dev_srv $ns_cli $dev_cli 77
else
	veth_pair $ns_srv $dev_srv $ns_cli $dev_cli 77
fi
# HAProxy's backend: a third netns behind a second veth pair, so that the
# proxy's active connections cross a device with RPS, as a NIC's RSS.
veth_pair $ns_srv $dev_bs $ns_bak $dev_bb 78

# RPS: the server veth's receive on the server CPUs, the client's on the
# client CPUs. Sysctls that are per namespace: ephemeral ports and
# TIME_WAIT reuse on the client (the active closer), RFS off.
srv_mask=0
if [ $server_rps = 1 ]; then
	cpumask "$srv_cpus"
	srv_mask=$REPLY
fi
cli_mask=0
if [ $client_rps = 1 ]; then
	cpumask "$cli_cpus"
	cli_mask=$REPLY
fi
q=queues/rx-0
# The server device's receive queues, for RFS's flow counts
srv_qs=/sys/class/net/$dev_srv/$q
if [ $wire = nic ]; then
	srv_qs=$(in_ns $ns_srv "echo /sys/class/net/$dev_srv/queues/rx-*")
else
	in_ns $ns_srv "echo $srv_mask > /sys/class/net/$dev_srv/$q/rps_cpus &&
		echo 0 > /sys/class/net/$dev_srv/$q/rps_flow_cnt" ||
		die "cannot set RPS on $dev_srv (CONFIG_RPS?)"
	in_ns $ns_cli "echo $cli_mask > /sys/class/net/$dev_cli/$q/rps_cpus" ||
		die "cannot set RPS on $dev_cli"
fi
bs_mask=$srv_mask
[ $srv_isolated = 0 ] || bs_mask=0
in_ns $ns_srv "echo $bs_mask > /sys/class/net/$dev_bs/$q/rps_cpus &&
	echo 0 > /sys/class/net/$dev_bs/$q/rps_flow_cnt &&
	echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse" ||
	die "cannot set RPS on $dev_bs"
in_ns $ns_bak "echo $cli_mask > /sys/class/net/$dev_bb/$q/rps_cpus" ||
	die "cannot set RPS on $dev_bb"
in_ns $ns_cli "echo '10000 64999' > /proc/sys/net/ipv4/ip_local_port_range &&
	echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse" ||
	die "cannot set up the client namespace"
echo 0 > /proc/sys/net/core/rps_sock_flow_entries
rfs_on=0
if [ -n "$timer_mig" ]; then
	echo "$timer_mig" > /proc/sys/kernel/timer_migration ||
		die "cannot set kernel.timer_migration (CONFIG_NO_HZ_COMMON?)"
fi
ulimit -n 65536 2>/dev/null || true

# hold_netns NS: a process that stays in NS, so that its /proc/PID/net
# is NS's (TCP MIB, /proc/net/fastsocket, listeners) for the
# builtins-only reads; $REPLY its pid
hold_netns()
{
	local i pid
	ip netns exec "$1" sleep 2147483647 &
	pid=$!
	disown $pid
	for i in $(seq 100); do
		[ "$(readlink /proc/$pid/ns/net 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ] && break
		sleep 0.1
	done
	REPLY=$pid
}
hold_netns $ns_srv
holder=$REPLY
srv_proc=/proc/$holder/net
hold_netns $ns_bak
holder_bak=$REPLY
bak_proc=/proc/$holder_bak/net

{
	echo "kernel=$(uname -r)"
	echo "cpus=$ncpus"
	echo "cmdline=$(cat /proc/cmdline)"
	echo "module=$modstate"
	echo "switches=$switches"
	echo "listen_reserve_us=$([ $has_reserve = 1 ] && cat $fsdir/listen_reserve_us || echo missing)"
	echo "configs=${cfgs[*]}"
	echo "repeats=$repeats duration=$duration flows=$flows rotate=$rotate ipv6=$ipv6 close_first=$close_first mark=${mark:-none}"
	echo "server_cpus=$srv_list client_cpus=$cli_list"
	echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)"
	echo "timer_migration=$(cat /proc/sys/kernel/timer_migration 2>/dev/null || echo missing)"
	echo "wire=$wire"
	echo "isolated=${isolated:-none} server_isolated=$srv_isolated"
	in_ns $ns_srv "echo $dev_srv rps_cpus=\$(cat /sys/class/net/$dev_srv/$q/rps_cpus); ip -br addr"
	in_ns $ns_cli "echo $dev_cli rps_cpus=\$(cat /sys/class/net/$dev_cli/$q/rps_cpus); ip -br addr"
	if [ $wire = nic ]; then
		for ns in $ns_srv $ns_cli; do
			in_ns $ns "for d in /sys/class/net/vp-*; do
				echo \${d##*/} \$(basename \$(readlink \$d/device)) queues: \$(ls \$d/queues | tr '\n' ' ')
				for x in \$d/queues/tx-*; do echo \${x##*/} xps_cpus=\$(cat \$x/xps_cpus); done
				ethtool -l \${d##*/} | tail -n 5 | tr -s '\t\n' '  '; echo
			done"
		done
		grep -E 'virtio[0-9]+-(input|output)' /proc/interrupts
	fi
	in_ns $ns_srv "echo $dev_bs rps_cpus=\$(cat /sys/class/net/$dev_bs/$q/rps_cpus)"
	in_ns $ns_bak "echo $dev_bb rps_cpus=\$(cat /sys/class/net/$dev_bb/$q/rps_cpus); ip -br addr"
} > "$out/placement-guest.txt" 2>&1

# --------------------------------------------------- per-configuration set-up
# srv_setup MODE(off|listen|vfs|all) RFS(0|1) [PORTS]: Fastsocket (the port set
# PORTS, default the server port) and RFS in the server
# netns, one exec; prints the module's state as key=value, "fail NAME" for
# writes that failed.
srv_script='
d=/proc/sys/net/fastsocket
mode=$1 port=$2 reserve=$3 rfs=$4 flows=$5 qs=$6; shift 6
for q in $qs; do echo $flows > $q/rps_flow_cnt || echo "fail rps_flow_cnt"; done
[ -d $d ] || exit 0
echo 0 > $d/enabled || echo "fail enabled"
for s; do echo 0 2>/dev/null > $d/$s || echo "fail $s"; done
case $mode in
off) echo 2>/dev/null > $d/ports; exit 0 ;;
listen) echo 1 2>/dev/null > $d/listen || echo "fail listen" ;;
vfs) echo 1 2>/dev/null > $d/vfs_light || echo "fail vfs_light" ;;
all) for s; do echo 1 2>/dev/null > $d/$s || echo "fail $s"; done ;;
esac
if [ -n "$reserve" ] && [ -e $d/listen_reserve_us ]; then
	echo $reserve 2>/dev/null > $d/listen_reserve_us || echo "fail listen_reserve_us"
fi
echo $port > $d/ports || echo "fail ports"
echo 1 > $d/enabled || echo "fail enabled"
on=
for s; do [ "$(cat $d/$s)" = 1 ] && on="$on,$s"; done
echo "switches_on=${on#,}"
[ -e $d/listen_reserve_us ] && echo "reserve_us=$(cat $d/listen_reserve_us)"
exit 0
'
srv_state=

srv_setup()
{
	local mode=$1 rfs=$2 ports=${3:-$port} flowcnt=0 line failed=

	if [ "$rfs" = 1 ]; then
		flowcnt=$rfs_entries
		echo $rfs_entries > /proc/sys/net/core/rps_sock_flow_entries
	elif [ $rfs_on = 1 ]; then
		echo 0 > /proc/sys/net/core/rps_sock_flow_entries
	fi
	rfs_on=$rfs
	srv_state=
	# (a file, not <(...): the guest may have no /dev/fd)
	# shellcheck disable=SC2086 # the switch list is a word list
	ip netns exec $ns_srv sh -c "$srv_script" sh "$mode" "$ports" "$reserve" \
		"$rfs" "$flowcnt" "$srv_qs /sys/class/net/$dev_bs/$q" $switches \
		> "$work/srv_setup.out" 2> "$work/srv_setup.err" ||
		failed+=",ip-netns-exec"
	while read -r line; do
		case $line in
		fail\ *) failed+=",${line#fail }" ;;
		*=*) srv_state+=" $line" ;;
		esac
	done < "$work/srv_setup.out"
	if [ -n "$failed" ]; then
		log "$mode: writes failed, left as they were:${failed//,/ } ($(tr '\n' ' ' < "$work/srv_setup.err"))"
		srv_state+=" fs_failed=${failed#,}"
	fi
	if [ "$mode" != off ] && [ -n "$reserve" ] && [ $has_reserve = 0 ]; then
		srv_state+=" reserve_us=missing"
	fi
	srv_state=${srv_state# }
	return 0
}

needs_module() { [ "${cfg_fs[$1]}" != off ]; }

# --------------------------------------------------------------- counters
# snap NAME: fill the associative array NAME with counters, builtins only.
snap()
{
	local -n s=$1
	local k rest v i cpu tot hex
	local -a f hdr

	s=()
	while read -r k rest; do
		case $k in
		CAL:|RES:)
			read -ra f <<< "$rest"
			tot=0
			for ((i = 0; i < ncpus && i < ${#f[@]}; i++)); do
				[[ ${f[i]} =~ ^[0-9]+$ ]] || break
				tot=$((tot + f[i]))
			done
			k=${k%:}
			s[ipi_${k,,}]=$tot
			;;
		esac
	done < /proc/interrupts
	while read -r k rest; do
		case $k in
		NET_RX:)
			read -ra f <<< "$rest"
			for ((i = 0; i < ncpus && i < ${#f[@]}; i++)); do
				s[net_rx_cpu$i]=${f[i]}
			done
			;;
		esac
	done < /proc/softirqs
	# softnet_stat: hex; the 10th column is received_rps (RPS IPIs taken)
	tot=0
	while read -ra f; do
		hex=${f[9]:-0}
		tot=$((tot + 16#$hex))
	done < /proc/net/softnet_stat
	s[rps_ipi]=$tot
	# The server netns's TcpExt: header line, then value line.
	hdr=()
	while read -r k rest; do
		case $k in
		TcpExt:)
			if [ ${#hdr[@]} = 0 ]; then
				read -ra hdr <<< "$rest"
				continue
			fi
			read -ra f <<< "$rest"
			for i in "${!hdr[@]}"; do
				case ${hdr[$i]} in
				ListenOverflows) s[listen_overflows]=${f[$i]} ;;
				ListenDrops) s[listen_drops]=${f[$i]} ;;
				esac
			done
			hdr=()
			;;
		*) hdr=() ;;
		esac
	done < $srv_proc/netstat
	if [ -r $srv_proc/fastsocket ]; then
		hdr=()
		while read -ra f; do
			case ${f[0]} in
			cpu) hdr=("${f[@]}") ;;
			total)
				for i in "${!hdr[@]}"; do
					[ "$i" = 0 ] && continue
					s[fs_${hdr[$i]}]=${f[$i]:-0}
				done ;;
			[0-9]*)
				cpu=${f[0]}
				for i in "${!hdr[@]}"; do
					[ "${hdr[$i]}" = listen_local ] || continue
					s[fs_listen_local_cpu$cpu]=${f[$i]:-0}
				done ;;
			esac
		done < $srv_proc/fastsocket
	fi
}

# kv FILE: the file's key=value lines into the associative array KV
declare -A KV=()
kv()
{
	local k v

	KV=()
	[ -r "$1" ] || return 0
	while IFS='=' read -r k v; do
		[[ $k =~ ^[a-z0-9_]+$ ]] || continue
		KV[$k]=$v
	done < "$1"
}

# ratio A B: A/B with 4 decimals, "na" when B is 0
ratio()
{
	if [ "${2:-0}" = 0 ]; then
		echo na
	else
		awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", a / b }'
	fi
}

# --------------------------------------------------------------- servers
stop_pid()
{
	local pid=$1 i

	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# server_start CONFIG RAWPREFIX: arm what CONFIG wants, start its server
# (crr server, nginx, or HAProxy with its nginx) in the server netns on
# the server CPUs; sets srv_pid (and backend_pid), srv_args, kind
server_start()
{
	local c=$1 raw=$2 rfs=0 ports=$port lsn bsrv
	local -a words preload

	srv_pid= backend_pid=
	read -ra words <<< "${cfg_server[$c]//W/$nsrv}"
	[ "${words[0]}" = haproxy ] && ports=$port-$((port + 1))
	[ "${cfg_net[$c]}" = rfs ] && rfs=1
	srv_setup "${cfg_fs[$c]}" $rfs "$ports"
	if [ "${words[0]}" = crr ] && [ $close_first = 1 ]; then
		words+=(--close-first)
	fi
	srv_args="${words[*]}"
	if [ $ipv6 = 1 ]; then lsn="[$saddr]:$port"; else lsn=$saddr:$port; fi
	case ${words[0]} in
	crr)
		kind=crr
		# ip netns exec and taskset exec in place: $! is crr server's pid.
		ip netns exec $ns_srv taskset -c "$srv_list" "$crr" server "${words[@]:1}" \
			--addr $saddr --port "$port" > "$raw.server.txt" 2> "$raw.server.err" &
		srv_pid=$!
		fs_wait_crr "$raw.server.txt" $srv_pid 600 && return 0
		log "$c: crr server did not start: $(tr '\n' ' ' < "$raw.server.err")"
		return 1
		;;
	nginx)
		kind=wrk
		start_nginx "$ns_srv" "$srv_list" "$srv_proc" "$work/$c" "$lsn" "$port" \
			"${words[@]:1}" || return 1
		srv_pid=$REPLY
		;;
	haproxy)
		kind=wrk
		# the backend: nginx in its own netns, on the client CPUs
		if [ $ipv6 = 1 ]; then bsrv="[fd78::2]:$((port + 1))"; else bsrv=10.78.0.2:$((port + 1)); fi
		start_nginx "$ns_bak" "$cli_list" "$bak_proc" "$work/$c-backend" \
			"$bsrv" $((port + 1)) || return 1
		backend_pid=$REPLY
		fs_haproxy_conf "$work/$c" "$lsn" "$bsrv" threads=$nsrv
		# "haproxy active": its connect()s enabled by libfastsocket.so,
		# as "fastsocket run --active" does
		preload=()
		if [ "${words[1]:-}" = active ]; then
			# Without it ld.so ignores LD_PRELOAD: another configuration.
			[ -r "$top/build/tools/libfastsocket.so" ] ||
				{ log "$c: no $top/build/tools/libfastsocket.so (make tools)"; return 1; }
			preload=(env LD_PRELOAD="$top/build/tools/libfastsocket.so" FASTSOCKET_ACTIVE=1)
		fi
		ip netns exec $ns_srv taskset -c "$srv_list" "${preload[@]}" \
			haproxy -db -f "$work/$c/haproxy.cfg" \
			> "$raw.server.txt" 2> "$raw.server.err" &
		srv_pid=$!
		fs_wait_port "$port" 600 "$srv_proc" && return 0
		log "$c: haproxy did not start: $(tr '\n' ' ' < "$raw.server.err")"
		return 1
		;;
	*) log "$c: unknown server '${cfg_server[$c]}' in configs.md"; return 1 ;;
	esac
}

# start_nginx NETNS CPUS NETDIR DIR LISTEN PORT [OPTION...]: nginx with
# W workers in NETNS on CPUS (NETDIR: that netns's /proc/PID/net),
# fs_nginx_conf's OPTIONs; $REPLY its pid
start_nginx()
{
	local ns=$1 cpus=$2 netdir=$3
	shift 3
	fs_nginx_conf "$1" "$2" workers=$nsrv foreground "${@:4}" || return 1
	ip netns exec "$ns" taskset -c "$cpus" nginx -p "$1" -c "$1/nginx.conf" \
		> "$1/stdout" 2>&1 &
	REPLY=$!
	fs_wait_port "$3" 600 "$netdir" && return 0
	log "nginx on $2 did not start: $(tr '\n' ' ' < "$1/stdout") $(tail -3 "$1/error.log" 2>/dev/null | tr '\n' ' ')"
	return 1
}

server_stop()
{
	local left
	stop_pid "$srv_pid"
	stop_pid "$backend_pid"
	srv_pid= backend_pid=
	# A server that closes first leaves its TIME_WAIT sockets behind, in
	# the usual buckets and the death row's shared count: the next
	# configuration starts without them, as it would in a boot of its own.
	if [ $close_first = 1 ]; then
		ip netns exec $ns_srv ss -K -tn state time-wait > /dev/null 2>&1 || true
		left=$({ ip netns exec $ns_srv ss -tnH state time-wait 2>/dev/null || true; } | wc -l)
		[ "$left" = 0 ] ||
			log "warning: $left TIME_WAIT sockets left for the next configuration (ss -K needs CONFIG_INET_DIAG_DESTROY)"
	fi
}

# client CONFIG RAWPREFIX: the timed run, with the phase hook around it.
# Between the hook's begin and end this shell only waits: no polling, no
# exec, so that an instrument counting the phase sees the workload. The
# watchdog (a hung client must not hang the boot) is a sleep started by
# watchdog_start before the server, not in the phase.
mark_state=none
phase=0
wd_pid=
watchdog_start()
{
	local limit

	limit=$(awk -v s="$duration" 'BEGIN { printf "%d", s * 3 + 120 }')
	sleep "$limit" &
	wd_pid=$!
}

watchdog_stop()
{
	[ -n "$wd_pid" ] || return 0
	kill "$wd_pid" 2>/dev/null || true
	wait "$wd_pid" 2>/dev/null || true
	wd_pid=
}

client()
{
	local c=$1 raw=$2 cpid done_pid= rc=0 m=$mark url secs
	local -a mc=("${markcmd[@]}") cmd
	local launch='m=$1; n=$2; shift 2
if [ -n "$m" ]; then
	$m begin "$n" >&2 || echo "placement: mark begin failed: $m begin $n" >&2
fi
exec "$@"'

	if [ "$kind" = crr ]; then
		# shellcheck disable=SC2206 # crr's extra flags, a word list
		cmd=("$crr" client --host $saddr --port "$port" --threads $ncli --pin
			--flows "$flows" --duration "$duration" "${meter_arg[@]}"
			${cfg_client[$c]#crr})
	else
		# wrk marks no phase itself: crr mark does it around its exec
		if [ ${#meter_arg[@]} -gt 0 ]; then
			m="$crr mark"
			mc=("$crr" mark)
		fi
		if [ $ipv6 = 1 ]; then url="http://[$saddr]:$port/"; else url="http://$saddr:$port/"; fi
		secs=$(awk -v s="$duration" 'BEGIN { d = int(s); if (d < s) d++; print d }')
		cmd=(wrk -t "$ncli" -c $((ncli * flows)) -d "${secs}s" --latency)
		[ "${cfg_client[$c]}" = "wrk keepalive" ] || cmd+=(-H "Connection: close")
		cmd+=("$url")
	fi
	ip netns exec $ns_cli taskset -c "$cli_list" sh -c "$launch" sh "$m" "$c" \
		"${cmd[@]}" > "$raw.client.txt" 2> "$raw.client.err" &
	cpid=$!
	[ -z "$mark" ] && [ ${#meter_arg[@]} = 0 ] || phase=$((phase + 1))
	wait -n -p done_pid $cpid $wd_pid || rc=$?
	if [ "$done_pid" != "$cpid" ]; then
		log "$c: client hung, killed"
		kill -KILL $cpid 2>/dev/null || true
		wait $cpid 2>/dev/null || true
		rc=124
	fi
	mark_state=none
	if [ ${#mc[@]} -gt 0 ]; then
		mark_state=ok
		"${mc[@]}" end "$c" >&2 || { mark_state=failed; log "mark end failed: ${mc[*]} end $c"; }
		grep -q 'mark begin failed' "$raw.client.err" && mark_state=failed
	fi
	return $rc
}

# --------------------------------------------------------------- main
run=()
for c in "${cfgs[@]}"; do
	if needs_module "$c" && [ "$modstate" != loaded ]; then
		log "skipping $c: the fastsocket module is not loaded ($modstate)"
		echo "config=$c skipped=no-module" >> "$out/placement-skipped.txt"
		continue
	fi
	run+=("$c")
done
[ ${#run[@]} -gt 0 ] || die "nothing to run"

n=${#run[@]}
log "server CPUs $srv_list (RPS $srv_mask), client CPUs $cli_list (RPS $cli_mask), $saddr:$port"
log "$n configurations x $repeats repeats x ${duration}s: ${run[*]} (module: $modstate)"
status=0
seq_no=0
for rep in $(seq "$repeats"); do
	start=0
	[ $rotate = 1 ] && start=$(((rep - 1) % n))
	for j in $(seq 0 $((n - 1))); do
		c=${run[$(((start + j) % n))]}
		seq_no=$((seq_no + 1))
		raw=$raw_dir/$c.r$rep
		base="config=$c repeat=$rep seq=$seq_no server_cpus=$srv_list client_cpus=$cli_list workers=$nsrv threads=$ncli flows=$flows duration=$duration"
		watchdog_start
		if ! server_start "$c" "$raw"; then
			server_stop
			watchdog_stop
			echo "$base error=server-start" >> "$records"
			status=1
			continue
		fi
		# shellcheck disable=SC2034 # filled by snap
		declare -A b=() a=()
		snap b
		t0=$EPOCHREALTIME
		crc=0
		client "$c" "$raw" || crc=$?
		t1=$EPOCHREALTIME
		snap a
		watchdog_stop
		server_stop

		if [ "$kind" = wrk ]; then
			# wrk's report as crr's keys: a request is a connection
			fs_wrk_result "$raw.client.txt" | tr ' ' '\n' |
				sed 's/^rate=/cps=/; s/^p\([0-9]*\)_us=/latency_p\1_us=/' \
				> "$raw.client.kv"
			kv "$raw.client.kv"
		else
			kv "$raw.client.txt"
		fi
		conns=${KV[connections]:-}
		if [ -z "$conns" ]; then
			log "rep $rep $c: no client result (rc $crc): $(tr '\n' ' ' < "$raw.client.err" | cut -c1-300)"
			echo "$base error=client rc=$crc" >> "$records"
			status=1
			continue
		fi
		cps=${KV[cps]:-0}
		[ "$conns" != 0 ] || log "warning: rep $rep $c: no connection completed in ${duration}s"
		fails=$(( ${KV[failed_connects]:-0} + ${KV[resets]:-0} + ${KV[timeouts]:-0} + ${KV[errors]:-0} ))
		line="$base conns=$conns cps=$cps failures=$fails p50_us=${KV[latency_p50_us]:-na} p99_us=${KV[latency_p99_us]:-na}"
		line+=" elapsed_s=$(awk -v x="$t0" -v y="$t1" 'BEGIN { printf "%.3f", y - x }') client_rc=$crc"

		# The server's own view: SO_INCOMING_CPU against the accepting CPU
		# (crr's server only; nginx and HAProxy do not tell).
		line+=" server_args=${srv_args// /_}"
		if [ "$kind" = crr ]; then
			kv "$raw.server.txt"
			acc=${KV[accepted]:-0}
			mis=${KV[incoming_cpu_mismatch]:-0}
			in_s=0 in_c=0 in_o=0
			for k in "${!KV[@]}"; do
				[[ $k =~ ^incoming_cpu([0-9]+)$ ]] || continue
				cpu=${BASH_REMATCH[1]}
				if [ -n "${is_srv[$cpu]:-}" ]; then
					in_s=$((in_s + KV[$k]))
				elif [ -n "${is_cli[$cpu]:-}" ]; then
					in_c=$((in_c + KV[$k]))
				else
					in_o=$((in_o + KV[$k]))
				fi
			done
			line+=" crr_accepted=$acc crr_served=${KV[served]:-0} crr_errors=${KV[errors]:-0}"
			line+=" crr_local_share=$(ratio $((acc - mis)) "$acc") crr_incoming_server=$in_s crr_incoming_client=$in_c crr_incoming_other=$in_o"
			[ "$in_c" = 0 ] || log "warning: $c: $in_c of $acc connections had their softirq on a client CPU"
		else
			acc=0 mis=0
			line+=" crr_local_share=na"
		fi

		# Fastsocket's counters, server netns.
		if [ -n "${a[fs_accept_local]:-}" ]; then
			al=$((a[fs_accept_local] - ${b[fs_accept_local]:-0}))
			as=$((a[fs_accept_stolen] - ${b[fs_accept_stolen]:-0}))
			ls=0 lc=0
			for cpu in "${!is_srv[@]}"; do
				ls=$((ls + ${a[fs_listen_local_cpu$cpu]:-0} - ${b[fs_listen_local_cpu$cpu]:-0}))
			done
			for cpu in "${!is_cli[@]}"; do
				lc=$((lc + ${a[fs_listen_local_cpu$cpu]:-0} - ${b[fs_listen_local_cpu$cpu]:-0}))
			done
			line+=" fs_accept_local=$al fs_accept_stolen=$as fs_local_share=$(ratio $al $((al + as)))"
			line+=" fs_listen_local_server=$ls fs_listen_local_client=$lc"
			for k in accept_global listen_global wake_local wake_other wake_shared \
				steal_absent steal_long steal_late reserve_expired \
				connect_class connect_fallback rx_steered rx_elsewhere \
				est_local est_hit_local est_hit_remote est_handover \
				est_global est_usual_skip; do
				[ -n "${a[fs_$k]:-}" ] || continue
				v=fs_$k
				d=$((a[$v] - ${b[$v]:-0}))
				line+=" fs_$k=$d"
			done
			[ "$lc" = 0 ] || log "warning: $c: $lc connections queued on client CPUs"
		fi
		[ -z "$srv_state" ] || line+=" $srv_state"

		# IPIs and softirqs over the run.
		cal=$((a[ipi_cal] - ${b[ipi_cal]:-0}))
		res=$((a[ipi_res] - ${b[ipi_res]:-0}))
		rps=$((a[rps_ipi] - ${b[rps_ipi]:-0}))
		line+=" ipi_cal=$cal ipi_res=$res ipis_per_conn=$(ratio $((cal + res)) "$conns") rps_ipi=$rps"
		line+=" ipis_nonrps_per_conn=$(ratio $((cal + res - rps)) "$conns")"
		rx_s=0 rx_c=0
		for ((cpu = 0; cpu < ncpus; cpu++)); do
			d=$(( ${a[net_rx_cpu$cpu]:-0} - ${b[net_rx_cpu$cpu]:-0} ))
			line+=" net_rx_cpu$cpu=$d"
			[ -n "${is_srv[$cpu]:-}" ] && rx_s=$((rx_s + d))
			[ -n "${is_cli[$cpu]:-}" ] && rx_c=$((rx_c + d))
		done
		line+=" net_rx_server=$rx_s net_rx_client=$rx_c"
		line+=" listen_overflows=$((${a[listen_overflows]:-0} - ${b[listen_overflows]:-0}))"
		line+=" listen_drops=$((${a[listen_drops]:-0} - ${b[listen_drops]:-0})) mark=$mark_state"
		[ -z "$mark" ] && [ ${#meter_arg[@]} = 0 ] || line+=" phase=$phase"
		echo "$line" >> "$records"
		log "rep $rep/$repeats $c: $cps/s, $conns conns, $fails failures, local crr $(ratio $((acc - mis)) "$acc"), ipis/conn $(ratio $((cal + res)) "$conns")"
	done
done

srv_setup off 0
log "done: $(wc -l < "$records") lines in $records"
exit $status
}
