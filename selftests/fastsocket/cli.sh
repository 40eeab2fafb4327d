#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The fastsocket CLI as operators script it, in a network namespace of its
# own: every -j output parses as JSON and agrees with the sysctls and with
# /proc/net/fastsocket; bad arguments get a message and a non-zero exit
# status and change nothing; a feature without a data path is refused;
# exit statuses are the documented ones; "run" sets up the preload.
#
# Exit status as kselftest: 0 pass, 1 fail, 4 skip.
set -u

ksft_skip=4
fs=/proc/sys/net/fastsocket
cli=${FS_CLI:-$(cd "$(dirname "$0")/../../.." && pwd)/build/tools/fastsocket}
py=/usr/bin/python3

if [ ! -x "$cli" ]; then
	echo "FAIL: no fastsocket CLI at $cli (make tools)"
	exit 1
fi
if [ ! -e "$fs/enabled" ]; then
	echo "SKIP: fastsocket module not loaded"
	exit $ksft_skip
fi
if [ -z "${FS_CLI_NETNS:-}" ]; then
	FS_CLI_NETNS=1 exec unshare -n "$0" "$@"
fi
ip link set lo up

failures=0 checks=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# expect RC DESCRIPTION -- CMD...: run CMD, check its exit status; its
# stdout is in $out, its stderr in $errout.
expect() {
	local want=$1 what=$2 rc
	shift 3
	out=$("$@" 2>/tmp/cli.err)
	rc=$?
	errout=$(cat /tmp/cli.err)
	checks=$((checks + 1))
	if [ "$rc" != "$want" ]; then
		fail "$what: exit $rc, want $want ($*): $errout"
		return 1
	fi
	echo "ok: $what (exit $rc)${errout:+: ${errout%%$'\n'*}}"
}

# json_check LABEL [EXPR]: $out must parse as JSON and, as "j", make the
# Python expression EXPR true. Checked all at once by check_json at the
# end: one Python start instead of two per check (each costs seconds
# under emulation).
jdir=$(mktemp -d /tmp/cli-json.XXXXXX)
trap 'rm -rf "$jdir" /tmp/cli.err' EXIT
njson=0
json_check() {
	njson=$((njson + 1))
	printf '%s' "$out" > "$jdir/$njson.json"
	printf '%s\t%s\t%s\n' "$njson" "$1" "${2:-True}" >> "$jdir/checks"
}

check_json() {
	local bad
	bad=$($py - "$jdir" <<'PY'
import json, sys
d = sys.argv[1]
for line in open(d + "/checks"):
    n, label, expr = line.rstrip("\n").split("\t", 2)
    text = open("%s/%s.json" % (d, n)).read()
    try:
        j = json.loads(text)
    except ValueError as e:
        print("%s: not JSON (%s): %s" % (label, e, text))
        continue
    try:
        ok = eval(expr)
    except Exception as e:
        ok = False
    if not ok:
        print("%s: %s is false for %s" % (label, expr, text))
PY
	)
	checks=$((checks + njson))
	[ -z "$bad" ] || fail "$bad"
}

snapshot() {
	grep -H . $fs/* | sort
}

avail=$(cat $fs/available)
echo "available: $avail"

# ---- status
expect 0 "status" -- "$cli" status
grep -q "^listen: 0$" <<<"$out" || fail "status: listen not 0: $out"
expect 0 "status -j" -- "$cli" -j status &&
	json_check "status -j" 'j["features"]["listen"]["available"] is True and j["module"] == "loaded"'
expect 0 "status --pretty" -- "$cli" --pretty status && json_check "status --pretty"
for f in established steering vfs_light; do
	case " $avail " in *" $f "*) continue ;; esac
	grep -q "^$f: unavailable$" <<<"$(${cli} status)" ||
		fail "status does not show $f unavailable"
	out=$("$cli" -j status)
	json_check "status -j: $f" "j['features']['$f'] == {'available': False, 'on': False}"
done

# ---- enable / disable
before=$(snapshot)
expect 2 "enable an unknown feature" -- "$cli" enable listen bogus
grep -q "unknown feature 'bogus'" <<<"$errout" || fail "no message naming bogus"
[ "$before" = "$(snapshot)" ] || fail "enable bogus changed something"
for f in established steering vfs_light; do
	case " $avail " in *" $f "*) continue ;; esac
	expect 3 "enable $f (no data path)" -- "$cli" enable listen $f
	grep -q "not available" <<<"$errout" || fail "enable $f: no clear message"
	[ "$before" = "$(snapshot)" ] || fail "enable $f changed something"
	[ "$(cat $fs/$f)" = 0 ] || fail "$f is not 0"
done
expect 0 "enable (everything available)" -- "$cli" enable
[ "$(cat $fs/enabled)" = 1 ] && [ "$(cat $fs/listen)" = 1 ] ||
	fail "enable did not switch enabled and listen on"
expect 0 "disable listen" -- "$cli" disable listen
[ "$(cat $fs/listen)" = 0 ] && [ "$(cat $fs/enabled)" = 1 ] ||
	fail "disable listen: listen=$(cat $fs/listen) enabled=$(cat $fs/enabled)"
expect 0 "disable (master switch)" -- "$cli" disable
[ "$(cat $fs/enabled)" = 0 ] || fail "disable left enabled on"
"$cli" enable >/dev/null

# Without CAP_NET_ADMIN: a clear message, exit 1, nothing changed.
if command -v setpriv >/dev/null; then
	before=$(snapshot)
	expect 1 "disable as nobody" -- setpriv --reuid 65534 --regid 65534 \
		--clear-groups --inh-caps=-all "$cli" disable
	grep -q "net.fastsocket.enabled: Permission denied: needs CAP_NET_ADMIN" <<<"$errout" ||
		fail "no clear permission message: $errout"
	[ "$before" = "$(snapshot)" ] || fail "a refused disable changed something"
fi

# ---- ports
before=$(snapshot)
for bad in "80,x" "70000" "90-80" "1,,2" "-1" "80 443"; do
	expect 2 "ports '$bad'" -- "$cli" ports "$bad"
	grep -q "invalid port set" <<<"$errout" || fail "ports '$bad': no message"
done
expect 2 "ports with two arguments" -- "$cli" ports 80 443
[ "$before" = "$(snapshot)" ] || fail "bad ports changed something"
expect 0 "ports 80,443,8000-8100" -- "$cli" ports 80,443,8000-8100
[ "$out" = "80,443,8000-8100" ] || fail "ports printed '$out'"
expect 0 "ports -j" -- "$cli" -j ports &&
	json_check "ports -j" 'j == {"ports": "80,443,8000-8100"}'
expect 0 "ports '' clears" -- "$cli" ports ""
[ -z "$(cat $fs/ports)" ] || fail "ports not cleared"

# ---- reserve
before=$(snapshot)
for bad in "x" "1000001" "-5" "1 2x" "" ; do
	expect 2 "reserve '$bad'" -- "$cli" reserve "$bad"
done
expect 2 "reserve 500 70000 (QLEN out of range)" -- "$cli" reserve 500 70000
expect 2 "reserve with three arguments" -- "$cli" reserve 1 2 3
[ "$before" = "$(snapshot)" ] || fail "bad reserve changed something"
expect 0 "reserve 500 32" -- "$cli" reserve 500 32
[ "$(cat $fs/listen_reserve_us)" = 500 ] && [ "$(cat $fs/listen_reserve_qlen)" = 32 ] ||
	fail "reserve 500 32 not applied"
expect 0 "reserve -j" -- "$cli" -j reserve &&
	json_check "reserve -j" 'j == {"listen_reserve_us": 500, "listen_reserve_qlen": 32}'

# ---- stats: -j, per CPU, one counter, the total is the sum of the CPUs
expect 0 "stats" -- "$cli" stats
grep -q "^listen_local=[0-9]*$" <<<"$out" || fail "stats: no listen_local=N"
expect 0 "stats -j" -- "$cli" stats -j &&
	json_check "stats -j" '"listen_local" in j and "wait_p99" in j'
expect 0 "stats -p -j" -- "$cli" stats -p -j &&
	json_check "stats -p -j: the total is the sum of the CPUs" \
		'all(j["total"][k] == sum(c[k] for c in j["cpus"]) for k in j["total"] if not k.startswith("wait_p"))' &&
	json_check "stats -p -j: every online CPU" "len(j['cpus']) >= $(nproc)"
expect 0 "stats --pretty -p" -- "$cli" --pretty stats -p && json_check "stats --pretty -p"
expect 0 "stats -p (table)" -- "$cli" stats -p
[ "$(grep -c '^[0-9]' <<<"$out")" -ge "$(nproc)" ] || fail "stats -p: missing CPU lines"
expect 0 "stats accept_local" -- "$cli" stats accept_local
[[ $out =~ ^accept_local=[0-9]+$ ]] || fail "stats accept_local printed '$out'"
expect 2 "stats of an unknown counter" -- "$cli" stats no_such_counter
expect 2 "stats --watch 0" -- "$cli" stats --watch 0
expect 2 "stats --count without --watch" -- "$cli" stats --count 2
expect 0 "stats --watch 1 --count 2" -- "$cli" stats --watch 1 --count 2 accept_local
[ "$(grep -c '^# interval=1s$' <<<"$out")" = 2 ] || fail "--watch printed: $out"

# The counters move with traffic: connections to an enabled listener.
"$cli" ports 8090 >/dev/null
l0=$("$cli" stats listen_local | cut -d= -f2)
$py - <<'EOF' || fail "loopback connections to port 8090 failed"
import socket
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 8090)); ls.listen(64)
for i in range(20):
    c = socket.create_connection(("127.0.0.1", 8090)); s, _ = ls.accept()
    s.close(); c.close()
EOF
l1=$("$cli" stats listen_local | cut -d= -f2)
[ "$((l1 - l0))" -ge 20 ] || fail "listen_local moved by $((l1 - l0)), want >= 20"
out=$("$cli" stats -j)
json_check "stats -j agrees with stats" "j['listen_local'] == $l1"

# ---- run
expect 2 "run without a command" -- "$cli" run
expect 2 "run --ports bad" -- "$cli" run --ports 99999 -- true
expect 2 "run --bogus" -- "$cli" run --bogus -- true
expect 3 "run with a missing library" -- env FASTSOCKET_LIB=/nonexistent/libfastsocket.so "$cli" run -- true
expect 127 "run a missing command" -- "$cli" run -- /nonexistent/cmd
lib=$(dirname "$cli")/libfastsocket.so
if [ -e "$lib" ]; then
	expect 0 "run sets the environment" -- env LD_PRELOAD= "$cli" run --ports 80,8000-8100 --active -- \
		sh -c 'echo "$LD_PRELOAD|$FASTSOCKET_PORTS|$FASTSOCKET_ACTIVE"'
	[ "$out" = "$lib|80,8000-8100|1" ] || fail "run environment: '$out'"
fi

# ---- usage
expect 2 "unknown command" -- "$cli" frobnicate
expect 2 "unknown global option" -- "$cli" --frob status
expect 2 "status with an argument" -- "$cli" status extra
expect 0 "help" -- "$cli" help
grep -q "exit status" <<<"$out" || fail "help does not give the exit statuses"

check_json
echo "cli: $checks checks, $failures failures"
[ "$failures" = 0 ]
