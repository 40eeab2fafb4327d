#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the VM (make demo): the way an operator uses Fastsocket. Load
# fastsocket.ko, arm the listen feature, start Debian's unmodified nginx
# (2 workers, one shared listener) under "fastsocket run" (the preload
# library switches its listener on; the port set stays empty), drive short
# connections with wrk, show the per-CPU counters that moved, then unload
# the module. Fails when a request failed or the counters did not move.
set -euo pipefail
top=${FS_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
cli=$top/build/tools/fastsocket
module=${FS_MODULE:-$top/build/module-obj-test/fastsocket.ko}
duration=${FS_DEMO_SECONDS:-5}
PATH=$PATH:/usr/sbin:/sbin
# shellcheck source-path=SCRIPTDIR source=servers.sh
. "$top/tools/servers.sh"
dir=$(mktemp -d /tmp/fs-demo.XXXXXX)

cleanup() {
	[ -s "$dir/nginx.pid" ] && kill -QUIT "$(cat "$dir/nginx.pid")" 2>/dev/null
	sleep 0.5
	rm -rf "$dir"
}
trap cleanup EXIT

# counter NAME: its total over every CPU
counter() {
	"$cli" stats "$1" | sed -n "s/^$1=//p"
}

echo "== kernel $(uname -r), $(nproc) CPUs"
insmod "$module"
echo "== sysctls after loading: everything off by default"
grep -H . /proc/sys/net/fastsocket/*
echo "== arm the local listen table (no port set: the preload library picks listeners)"
"$cli" enable
"$cli" status

echo "== nginx, 2 workers, one shared listener on 127.0.0.1:8080, under fastsocket run"
fs_nginx_conf "$dir" 127.0.0.1:8080 workers=2 mutex=off affinity=auto
grep -E 'worker|accept_mutex|listen' "$dir/nginx.conf"
echo "\$ fastsocket run -- nginx -p $dir -c $dir/nginx.conf"
"$cli" run -- nginx -p "$dir" -c "$dir/nginx.conf"
fs_wait_port 8080 || { echo "nginx does not listen on 8080" >&2; exit 1; }

local0=$(counter accept_local) stolen0=$(counter accept_stolen)
echo "== wrk: ${duration}s of short connections (Connection: close)"
out=$(wrk -t 2 -c 8 -d "${duration}s" --timeout 30s -H "Connection: close" \
	http://127.0.0.1:8080/ 2>&1)
echo "$out"
reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
local=$(($(counter accept_local) - local0))
stolen=$(($(counter accept_stolen) - stolen0))

echo "== per-CPU statistics"
"$cli" stats -p
echo "== fastsocket stats -j"
"$cli" stats -j
echo "== accepted through the local listen table: local=$local stolen=$stolen of ${reqs:-0} requests"
echo "   (stolen: taken by the other CPU once the 100 us reservation ran out; under
   emulation 100 us is a few hundred instructions, the tests scale it up)"

fail=
[ -n "$reqs" ] && [ "$reqs" -gt 0 ] || fail="wrk completed no request"
grep -q "Socket errors" <<<"$out" && fail="wrk saw socket errors"
grep -q "Non-2xx" <<<"$out" && fail="wrk saw non-2xx responses"
[ -z "$fail" ] && [ $((local + stolen)) -lt "$reqs" ] &&
	fail="counters did not move: $((local + stolen)) local-table accepts for $reqs requests"
[ -z "$fail" ] && [ "$local" -le 0 ] && fail="no accept on the CPU that queued the connection"
if [ -n "$fail" ]; then
	echo "demo: FAIL: $fail" >&2
	cat "$dir/error.log" >&2 2>/dev/null || true
	exit 1
fi

echo "== stop nginx, unload the module: the data path is disarmed"
kill -QUIT "$(cat "$dir/nginx.pid")"
for _ in $(seq 100); do
	[ -e "$dir/nginx.pid" ] || break
	sleep 0.1
done
rmmod fastsocket
[ ! -e /proc/sys/net/fastsocket ] || { echo "demo: FAIL: sysctls left after rmmod" >&2; exit 1; }
echo "demo: ok"
