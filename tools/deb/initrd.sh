#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
#   initrd.sh ROOT RELEASE OUT
#
# An initramfs for tools/vm-run --initrd, for a packaged kernel whose 9p
# and virtio-net are modules: ROOT is the linux-image package unpacked
# (ROOT/lib/modules/RELEASE). Its /init loads those modules (busybox
# insmod, in modprobe's dependency order, decompressed), mounts the host
# root as vm-run's kernel command line asks (root=, rootflags=) and
# switches to init=. The guest's modprobe finds the package's other
# modules through tools/deb/guest-modprobe.
set -euo pipefail
root=$1 rel=$2 out=$3
bb=/bin/busybox
[ -x $bb ] || { echo "initrd: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,dev,proc,sys,newroot,modules}
cp $bb "$tmp/bin/busybox"
ln -s busybox "$tmp/bin/sh"
n=0
seen=" "
while read -r cmd path _; do
	[ "$cmd" = insmod ] || continue
	# a module two of them need is listed twice
	case $seen in *" $path "*) continue ;; esac
	seen="$seen$path "
	n=$((n + 1))
	dst=$tmp/modules/$(printf '%02d' $n)-$(basename "${path%.xz}")
	case $path in
	*.xz) xz -dc "$path" > "$dst" ;;
	*) cp "$path" "$dst" ;;
	esac
done < <(modprobe -d "$root" -S "$rel" -a --show-depends 9p 9pnet_virtio virtio_net)
[ "$n" -ge 3 ] || { echo "initrd: found $n modules for 9p in $root" >&2; exit 1; }
cat > "$tmp/init" <<'INIT'
#!/bin/sh
# initrd of tools/deb/initrd.sh: see there.
bb=/bin/busybox
fail() { echo "initrd: $*"; $bb poweroff -f; }
$bb mount -t proc proc /proc
$bb mount -t devtmpfs devtmpfs /dev
for m in /modules/*.ko; do
	$bb insmod "$m" || fail "cannot load $m"
done
root= flags= init=/sbin/init
for arg in $($bb cat /proc/cmdline); do
	case $arg in
	root=*) root=${arg#root=} ;;
	rootflags=*) flags=${arg#rootflags=} ;;
	init=*) init=${arg#init=} ;;
	esac
done
$bb mount -t 9p -o "ro,$flags" "$root" /newroot || fail "cannot mount $root"
$bb umount /proc
$bb umount /dev
exec $bb switch_root /newroot "$init"
INIT
chmod 755 "$tmp/init"
(cd "$tmp" && find . | sort | cpio --quiet -o -H newc -R 0:0) | gzip -9n > "$out"
echo "initrd: $out ($n modules)"
