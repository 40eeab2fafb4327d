#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# lintian on every package in build/deb/ (or the .deb files given). The
# packages carry their overrides (tools/deb/lintian-overrides, and none for
# the kernel's); any tag left at pedantic level or above fails.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -gt 0 ] || set -- "$top"/build/deb/*.deb
[ -e "$1" ] || { echo "lint: no packages (make deb)" >&2; exit 1; }
# lintian warns when run as root; it reads the packages only.
tags=$(lintian --display-level ">=pedantic" "$@" 2>&1 | grep -v '^running with root privileges' || true)
if [ -n "$tags" ]; then
	echo "$tags"
	echo "lint: $(echo "$tags" | wc -l) lintian tags on $# packages" >&2
	exit 1
fi
echo "lint: $# packages, no lintian tags"
