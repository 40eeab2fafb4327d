#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# lintian on every package in build/deb/ (or the .deb files given). The
# userland packages carry their one override (tools/deb/lintian-overrides);
# the kernel's packages are judged with tools/deb/kernel.lintian-overrides,
# the tags of the kernel's own bindeb-pkg packaging, each with its reason.
# Any tag left at pedantic level or above fails.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -gt 0 ] || set -- "$top"/build/deb/*.deb
[ -e "$1" ] || { echo "lint: no packages (make deb)" >&2; exit 1; }
# lintian warns when run as root; it reads the packages only.
tags=
for deb in "$@"; do
	suppress=()
	case $(basename "$deb") in
	linux-*) suppress=(--suppress-tags-from-file
			   "$top/tools/deb/kernel.lintian-overrides") ;;
	esac
	out=$(lintian --display-level ">=pedantic" "${suppress[@]}" "$deb" 2>&1 |
		grep -v '^running with root privileges' || true)
	[ -z "$out" ] || tags+="$out"$'\n'
done
tags=${tags%$'\n'}
if [ -n "$tags" ]; then
	echo "$tags"
	echo "lint: $(echo "$tags" | wc -l) lintian tags on $# packages" >&2
	exit 1
fi
echo "lint: $# packages, no lintian tags"
