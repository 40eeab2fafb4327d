#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Host side of "make test": "make install" into a scratch DESTDIR puts the
# CLI, libfastsocket.so and both man pages where fastsocket(8) says; the
# man pages render without a groff warning; the installed CLI finds the
# installed library. Exit 0 pass, 1 fail.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
dest=$(mktemp -d "${TMPDIR:-/tmp}/fs-install.XXXXXX")
trap 'rm -rf "$dest"' EXIT
fail=0
no() { echo "FAIL: $*"; fail=1; }

# Its own OUT: the build tree's CLI keeps its own compiled-in LIBDIR.
make -s -C "$top/tools" install OUT="$dest/build" PREFIX=/usr DESTDIR="$dest/root" ||
	{ echo "FAIL: make install"; exit 1; }
for f in usr/sbin/fastsocket usr/lib/fastsocket/libfastsocket.so \
	 usr/share/man/man8/fastsocket.8 usr/share/man/man7/libfastsocket.7; do
	[ -e "$dest/root/$f" ] || no "make install did not install /$f"
done
for page in "$dest"/root/usr/share/man/man*/*; do
	warn=$(groff -man -ww -z -Tutf8 "$page" 2>&1)
	[ -z "$warn" ] || no "$(basename "$page"): groff warnings: $warn"
	lines=$(groff -man -Tutf8 "$page" 2>/dev/null | wc -l)
	[ "$lines" -gt 40 ] || no "$(basename "$page") renders $lines lines"
done
got=$(env -u FASTSOCKET_LIB LD_PRELOAD= "$dest/root/usr/sbin/fastsocket" run -- \
	sh -c 'echo "$LD_PRELOAD"')
[ "$got" = "$dest/root/usr/lib/fastsocket/libfastsocket.so" ] ||
	no "installed CLI preloads '$got'"
[ $fail = 0 ] && echo "install: ok"
exit $fail
