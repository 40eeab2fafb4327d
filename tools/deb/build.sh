#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# fastsocket-dkms and fastsocket-tools, as .deb files in build/deb/
# (OUT=DIR elsewhere), built with dpkg-deb from the tree as it is. The
# version is FS_VERSION in tools/fastsocket.h with Debian revision 1; the
# changelog entry is dated by the last commit, so that a rebuild of the
# same commit gives the same packages. The kernel packages come from
# "tools/kernel.sh deb"; "make deb" builds all of them.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/tools/deb
out=${OUT:-$top/build/deb}
ver=$("$here/version")
debver=$ver-1
arch=$(dpkg --print-architecture)
maint="Fastsocket Developers <fastsocket@example.org>"
stamp=$(git -C "$top" log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH=$stamp
stage=$out/stage
rm -rf "$stage"
mkdir -p "$stage" "$out"

# changelog.Debian.gz for package $1 into directory $2.
changelog() {
	mkdir -p "$2"
	{
		echo "fastsocket ($debver) bookworm; urgency=medium"
		echo
		echo "  * Release $ver of the Fastsocket control module and tools, for"
		echo "    the kernel packages linux-image-*-fastsocket-*."
		echo
		echo " -- $maint  $(date -R -u -d "@$stamp")"
	} > "$2/changelog.Debian"
	gzip -9nf "$2/changelog.Debian"
	install -m 644 "$here/copyright" "$2/copyright"
	# The only lintian override, with its reason in the file.
	install -D -m 644 "$here/lintian-overrides" \
		"$2/../../lintian/overrides/$1"
}

# Fix modes and times, then write DEBIAN/md5sums and build $1.deb.
pack() {
	local pkg=$1 root=$stage/$1
	find "$root" -path "$root/DEBIAN" -prune -o -type d -exec chmod 755 {} +
	(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
		sort -z | xargs -0r md5sum > DEBIAN/md5sums)
	find "$root" -exec touch -h -d "@$stamp" {} +
	dpkg-deb --root-owner-group -Zxz --build "$root" \
		"$out/${pkg}_${debver}_$(sed -n 's/^Architecture: //p' "$root/DEBIAN/control").deb" >/dev/null
}

installed_size() { du -k -s --apparent-size --exclude=DEBIAN "$1" | cut -f1; }

# --- fastsocket-dkms: the module source for DKMS --------------------------
r=$stage/fastsocket-dkms
src=$r/usr/src/fastsocket-$ver
mkdir -p "$src" "$r/DEBIAN"
install -m 644 "$top/module/Kbuild" "$top/module/fastsocket_main.c" "$src/"
sed "s/@VERSION@/$ver/" "$here/dkms.conf.in" > "$src/dkms.conf"
chmod 644 "$src/dkms.conf"
for s in postinst prerm; do
	sed "s/@VERSION@/$ver/" "$here/fastsocket-dkms.$s" > "$r/DEBIAN/$s"
	chmod 755 "$r/DEBIAN/$s"
done
changelog fastsocket-dkms "$r/usr/share/doc/fastsocket-dkms"
cat > "$r/DEBIAN/control" <<CTL
Package: fastsocket-dkms
Version: $debver
Architecture: all
Maintainer: $maint
Installed-Size: $(installed_size "$r")
Depends: dkms (>= 3.0)
Suggests: fastsocket-tools
Section: kernel
Priority: optional
Description: Fastsocket control module (DKMS)
 The source of fastsocket.ko, the control plane of Fastsocket: the
 per-namespace net.fastsocket.* sysctls that arm the per-core TCP
 connection path, and the per-CPU statistics in /proc/net/fastsocket.
 .
 DKMS builds it for every installed kernel whose headers have the
 Fastsocket patches (packages linux-headers-*-fastsocket-*) and skips
 the others.
CTL
pack fastsocket-dkms

# --- fastsocket-tools: CLI, preload library, man pages, examples -----------
r=$stage/fastsocket-tools
tb=$out/tools-build
# Debian's hardening flags, as dpkg-buildflags gives them for this package.
flags=$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=make)
cflags=$(echo "$flags" | sed -n 's/^export CFLAGS := //p')
cppflags=$(echo "$flags" | sed -n 's/^export CPPFLAGS := //p')
ldflags=$(echo "$flags" | sed -n 's/^export LDFLAGS := //p')
make -s -C "$top/tools" install OUT="$tb" PREFIX=/usr DESTDIR="$r" \
	CFLAGS="$cflags $cppflags $ldflags -Wall -Wextra -Werror"
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
	"$r/usr/sbin/fastsocket" "$r/usr/lib/fastsocket/libfastsocket.so"
gzip -9n "$r"/usr/share/man/man*/*
install -D -m 644 "$here/60-fastsocket.conf" "$r/etc/sysctl.d/60-fastsocket.conf"
install -D -m 644 "$here/fastsocket-modules.conf" "$r/etc/modules-load.d/fastsocket.conf"
doc=$r/usr/share/doc/fastsocket-tools
changelog fastsocket-tools "$doc"
install -m 644 "$top/README.md" "$top/docs/design.md" "$top/docs/sysctl.md" \
	"$top/docs/nic.md" "$top/docs/benchmarks.md" "$doc/"
gzip -9n "$doc"/*.md
mkdir -p "$r/DEBIAN"
printf '%s\n' /etc/sysctl.d/60-fastsocket.conf /etc/modules-load.d/fastsocket.conf \
	> "$r/DEBIAN/conffiles"
# dpkg-shlibdeps wants a debian/control to read; give it a scratch one.
shl=$(mktemp -d)
mkdir "$shl/debian"
printf 'Source: fastsocket\n\nPackage: fastsocket-tools\nArchitecture: any\n' \
	> "$shl/debian/control"
depends=$(cd "$shl" && dpkg-shlibdeps -O "$r/usr/sbin/fastsocket" \
	"$r/usr/lib/fastsocket/libfastsocket.so" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
rm -rf "$shl"
[ -n "$depends" ] || { echo "deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
cat > "$r/DEBIAN/control" <<CTL
Package: fastsocket-tools
Version: $debver
Architecture: $arch
Maintainer: $maint
Installed-Size: $(installed_size "$r")
Depends: $depends
Recommends: fastsocket-dkms, ethtool
Section: net
Priority: optional
Description: Fastsocket command-line tool and preload library
 The fastsocket command shows and controls Fastsocket, the per-core TCP
 connection path of kernels with the Fastsocket patches: its status,
 per-CPU statistics, per-listener toggles and the NIC set-up (queues,
 IRQ affinity and flow rules through ethtool).
 .
 libfastsocket.so (run with "fastsocket run" or LD_PRELOAD) enables
 Fastsocket for the listeners and connections of unmodified servers and
 proxies. On a kernel without Fastsocket it warns once and changes
 nothing.
CTL
pack fastsocket-tools
rm -rf "$tb"

echo "deb: built in $out:"
ls -s1 "$out"/fastsocket-*_"$debver"_*.deb
