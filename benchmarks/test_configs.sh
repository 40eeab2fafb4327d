#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# shellcheck disable=SC2154 # the cfg_* arrays are filled by configs.sh
#
# benchmarks/configs.md is the one list of benchmark configurations; check
# that its two readers (configs.sh, configs.py) and the harnesses that use
# them (guest-matrix.sh --list, placement.sh --list) see the same rows, and
# that every row's fields are ones the harnesses know. Runs on the host.
set -u

here=$(cd "$(dirname "$0")" && pwd)
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# shellcheck source=configs.sh
. "$here/configs.sh"
# shellcheck source=../tools/servers.sh
. "$here/../tools/servers.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for h in loopback placement; do
	cfg_load $h || { bad "configs.sh cannot read the table"; continue; }
	sh_names="${cfg_names[*]}"
	py_names=$(python3 -c "import sys; sys.path.insert(0, '$here'); import configs; print(' '.join(configs.names('$h')))") ||
		bad "configs.py cannot read the table"
	[ "$sh_names" = "$py_names" ] ||
		bad "$h: configs.sh has '$sh_names', configs.py '$py_names'"
	for c in "${cfg_names[@]}"; do
		case ${cfg_server[$c]} in
		"crr "*|haproxy|"haproxy active") ;;
		nginx|"nginx "*)
			# every option must be one fs_nginx_conf takes: ask it
			# shellcheck disable=SC2086 # the options, a word list
			fs_nginx_conf "$tmp" 127.0.0.1:1 ${cfg_server[$c]#nginx} 2>/dev/null ||
				bad "$c: fs_nginx_conf refuses '${cfg_server[$c]#nginx}'" ;;
		*) bad "$c: unknown server '${cfg_server[$c]}'" ;;
		esac
		case ${cfg_client[$c]} in
		crr|"crr --keepalive"|"crr --fastsocket"|"wrk close"|"wrk close active"|"wrk keepalive") ;;
		*) bad "$c: unknown client '${cfg_client[$c]}'" ;;
		esac
		case ${cfg_net[$c]} in
		-|rfs) ;;
		*) bad "$c: unknown net '${cfg_net[$c]}'" ;;
		esac
	done
	echo "$h: ${#cfg_names[@]} configurations"
done
list=$("$here/guest-matrix.sh" --list | tr '\n' ' ')
cfg_load loopback && [ "${list% }" = "${cfg_names[*]}" ] ||
	bad "guest-matrix.sh --list: '$list'"
list=$("$here/placement.sh" --list | tr '\n' ' ')
cfg_load placement && [ "${list% }" = "${cfg_names[*]}" ] ||
	bad "placement.sh --list: '$list'"
# ratio and set-up baselines name loopback configurations
python3 - "$here" <<'PYEOF' || fail=1
import sys
sys.path.insert(0, sys.argv[1])
import configs
rows = configs.by_name("loopback")
bad = 0
for r in configs.load():
    for k in ("ratio_to", "set_up_from"):
        v = r[k]
        if v != "-" and v not in rows:
            print("FAIL: %s: %s '%s' is no loopback configuration"
                  % (r["config"], k, v))
            bad = 1
sys.exit(bad)
PYEOF
[ $fail = 0 ] && echo "configs: ok"
exit $fail
