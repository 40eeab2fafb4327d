#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host side of "make test": fastsocket-dkms and fastsocket-tools build
# into a scratch directory and lintian finds nothing in them (the kernel
# packages take a Debian-config kernel build: "make deb" / "make test-deb").
# Exit 0 pass, 1 fail.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fs-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
OUT=$tmp "$top/tools/deb/build.sh"
"$top/tools/deb/lint.sh" "$tmp"/*.deb
# The DKMS source is what module/ holds, and its dkms.conf the version.
ver=$("$top/tools/deb/version")
dpkg-deb -x "$tmp"/fastsocket-dkms_*.deb "$tmp/x"
cmp "$top/module/fastsocket_main.c" "$tmp/x/usr/src/fastsocket-$ver/fastsocket_main.c"
grep -qx "PACKAGE_VERSION=\"$ver\"" "$tmp/x/usr/src/fastsocket-$ver/dkms.conf"
echo "deb: userland packages ok"
