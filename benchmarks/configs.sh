# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034 # the cfg_* arrays are for the caller
#
# configs.sh: the shell reader of benchmarks/configs.md, the one list of
# benchmark configurations (configs.py is the Python one). Source it, then
#
#   cfg_load HARNESS     HARNESS: loopback or placement
#
# fills, for the rows whose harness is HARNESS or "both", in table order:
#   cfg_names            the names (an indexed array)
#   cfg_fs[NAME]         off, listen or all
#   cfg_net[NAME]        - or rfs
#   cfg_server[NAME]     e.g. "crr --mode fork --workers W", "nginx mutex=on"
#   cfg_client[NAME]     crr, crr --keepalive, wrk close or wrk keepalive
#   cfg_what[NAME]       the description
# and returns 1 (with a message) when the table cannot be read.

cfg_table=${cfg_table:-$(dirname "${BASH_SOURCE[0]}")/configs.md}

# cfg_trim VAR: strip VAR's leading and trailing blanks in place
cfg_trim()
{
	local -n v=$1

	v=${v#"${v%%[![:space:]]*}"}
	v=${v%"${v##*[![:space:]]}"}
}

cfg_load()
{
	local want=$1 name harness fs net server client ratio setup what rest v

	cfg_names=()
	declare -gA cfg_fs=() cfg_net=() cfg_server=() cfg_client=() cfg_what=()
	[ -r "$cfg_table" ] || { echo "configs.sh: cannot read $cfg_table" >&2; return 1; }
	# ratio and set-up baselines are for analyze.py (configs.py)
	while IFS='|' read -r _ name harness fs net server client ratio setup what rest; do
		cfg_trim name
		[[ $name =~ ^[a-z][a-z0-9_]*$ ]] || continue
		[ "$name" != config ] || continue
		for v in harness fs net server client what; do
			cfg_trim $v
		done
		case $harness in
		both|"$want") ;;
		loopback|placement) continue ;;
		*) echo "configs.sh: $name: bad harness '$harness'" >&2; return 1 ;;
		esac
		case $fs in
		off|listen|vfs|all) ;;
		*) echo "configs.sh: $name: bad fastsocket '$fs'" >&2; return 1 ;;
		esac
		cfg_names+=("$name")
		cfg_fs[$name]=$fs
		cfg_net[$name]=$net
		cfg_server[$name]=$server
		cfg_client[$name]=$client
		cfg_what[$name]=$what
	done < "$cfg_table"
	[ ${#cfg_names[@]} -gt 0 ] || { echo "configs.sh: no $want configuration in $cfg_table" >&2; return 1; }
}
