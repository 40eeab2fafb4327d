#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make test-deb: the packages of "make deb", as an operator would use them.
#
# 1. In a throwaway Debian 12 root (mmdebstrap --variant=minbase, cached
#    as build/deb/cache/root-bookworm.tar with what the packages need and
#    a stock cloud kernel's headers), install linux-headers-RELEASE,
#    fastsocket-dkms and fastsocket-tools with dpkg:
#    - DKMS builds and installs fastsocket.ko for RELEASE;
#    - it builds nothing for the stock kernel, and fastsocket-dkms says why;
#    - a build forced against the stock headers stops with Kbuild's reason;
#    - the man pages open with man(1); the CLI runs; the conffiles are there;
#    - removing fastsocket-dkms removes the module.
# 2. In the VM, the linux-image package's kernel (Debian's config, booted
#    through tools/deb/initrd.sh on the host root) loads the DKMS-built
#    module with modprobe and runs the Fastsocket selftests.
#
# Ends with "N passed, N failed, N skipped"; logs in build/deb/test/.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
deb=$top/build/deb
flavor=${DEB_FLAVOR:-cloud-amd64}
logs=$deb/test
rm -rf "$logs"
mkdir -p "$logs" "$deb/cache"
passed=0 failed=0 skipped=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
no() { echo "FAIL: $*"; failed=$((failed + 1)); }
finish() {
	echo "$passed passed, $failed failed, $skipped skipped"
	[ $failed = 0 ]
	exit
}

rel=$(cat "$deb/release-$flavor" 2>/dev/null) ||
	{ no "no kernel packages for $flavor (make deb)"; finish; }
ver=$("$top/tools/deb/version") || { no "no FS_VERSION"; finish; }
pkg() { ls -t "$deb"/"$1"_*.deb 2>/dev/null | head -1; }
image=$(pkg "linux-image-$rel") headers=$(pkg "linux-headers-$rel")
dkms=$(pkg fastsocket-dkms) tools=$(pkg fastsocket-tools)
for f in "$image" "$headers" "$dkms" "$tools"; do
	[ -n "$f" ] || { no "a package is missing in $deb (make deb)"; finish; }
done
echo "test-deb: $(basename "$image"), $(basename "$headers"), $(basename "$dkms"), $(basename "$tools")"

# --- 1. the packages in a clean Debian 12 root ------------------------------
includes=dkms,gcc,make,libc6-dev,kmod,man-db,xz-utils,linux-headers-cloud-amd64
cache=$deb/cache/root-bookworm.tar
if [ "$(cat "$cache.includes" 2>/dev/null)" != "$includes" ] || [ ! -s "$cache" ]; then
	echo "test-deb: creating the Debian 12 root (mmdebstrap, cached in $cache)"
	rm -f "$cache" "$cache.includes"
	mmdebstrap --quiet --variant=minbase --include="$includes" bookworm "$cache" \
		"deb http://deb.debian.org/debian bookworm main" \
		"deb http://deb.debian.org/debian bookworm-updates main" \
		"deb http://deb.debian.org/debian-security bookworm-security main" \
		> "$logs/mmdebstrap.log" 2>&1 ||
		{ no "mmdebstrap (log: $logs/mmdebstrap.log)"; finish; }
	echo "$includes" > "$cache.includes"
fi
root=$deb/root
umount_root() {
	local m
	for m in dev/pts dev sys proc; do
		mountpoint -q "$root/$m" && umount -l "$root/$m"
	done
	return 0
}
umount_root
rm -rf "$root"
mkdir -p "$root"
tar -C "$root" -xf "$cache"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
trap umount_root EXIT
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root "$@"; }
cp "$image" "$headers" "$dkms" "$tools" "$root/tmp/"
stock=$(in_root sh -c 'ls -d /lib/modules/*-cloud-amd64 | grep -v fastsocket | head -1')
stock=${stock#/lib/modules/}

in_root dpkg -i "/tmp/$(basename "$headers")" "/tmp/$(basename "$dkms")" \
	"/tmp/$(basename "$tools")" > "$logs/dpkg-install.log" 2>&1
rc=$?
[ $rc = 0 ] && ok "dpkg -i linux-headers, fastsocket-dkms, fastsocket-tools" ||
	no "dpkg -i exited $rc (log: $logs/dpkg-install.log)"
in_root dkms status > "$logs/dkms-status.txt" 2>&1
mod=$(in_root sh -c "ls /lib/modules/$rel/updates/dkms/fastsocket.ko* 2>/dev/null")
if grep -q "^fastsocket/$ver, $rel, x86_64: installed" "$logs/dkms-status.txt" && [ -n "$mod" ]; then
	ok "dkms built and installed $mod for $rel"
else
	no "dkms did not install fastsocket for $rel: $(cat "$logs/dkms-status.txt")"
fi
if [ -n "$mod" ] && in_root modinfo -F vermagic "$mod" | grep -q "^$rel "; then
	ok "the module's vermagic is $rel"
else
	no "the module's vermagic is not $rel"
fi
if [ -n "$stock" ]; then
	if grep -q "$stock" "$logs/dkms-status.txt"; then
		no "dkms built fastsocket for the stock kernel $stock"
	elif grep -q "not built for $stock: that kernel has no Fastsocket patches" "$logs/dpkg-install.log"; then
		ok "nothing built for the stock kernel $stock, and fastsocket-dkms says why"
	else
		no "fastsocket-dkms did not say why $stock was skipped"
	fi
	in_root dkms build -m fastsocket -v "$ver" -k "$stock" > "$logs/dkms-stock.log" 2>&1
	rc=$?
	[ $rc = 77 ] && grep -q "BUILD_EXCLUSIVE" "$logs/dkms-stock.log" &&
		ok "dkms build for $stock refuses (exit 77, BUILD_EXCLUSIVE)" ||
		no "dkms build for $stock exited $rc"
	in_root sh -c "cp -r /usr/src/fastsocket-$ver /tmp/forced &&
		make -C /lib/modules/$stock/build M=/tmp/forced modules" \
		> "$logs/forced-stock.log" 2>&1
	rc=$?
	[ $rc != 0 ] && grep -q "this kernel has no Fastsocket patches" "$logs/forced-stock.log" &&
		ok "a build forced against $stock stops with the reason" ||
		no "a build forced against $stock: rc $rc, $(tail -3 "$logs/forced-stock.log")"
else
	skipped=$((skipped + 1))
	echo "skip: no stock kernel headers in the root"
fi
for page in fastsocket libfastsocket; do
	lines=$(in_root sh -c "MANPAGER=cat MANWIDTH=80 man $page 2>/dev/null" | tee "$logs/man-$page.txt" | wc -l)
	[ "$lines" -gt 40 ] && ok "man $page opens ($lines lines)" || no "man $page: $lines lines"
done
in_root fastsocket --version | grep -qx "fastsocket $ver" && ok "fastsocket --version" ||
	no "fastsocket --version"
# Not Fastsocket's kernel: the CLI says so and exits 3.
in_root fastsocket status > "$logs/cli-status.txt" 2>&1
rc=$?
[ $rc = 3 ] && ok "fastsocket status without the module exits 3" || no "fastsocket status exited $rc"
in_root sh -c 'test -f /usr/lib/fastsocket/libfastsocket.so &&
	! grep -v "^#" /etc/sysctl.d/60-fastsocket.conf /etc/modules-load.d/fastsocket.conf | grep -q "[^[:space:]]"' &&
	ok "library installed; sysctl.d and modules-load.d examples all commented" ||
	no "library or the commented examples"
# Keep the built module for the VM, then remove the package.
img=$deb/image
rm -rf "$img"
dpkg-deb -x "$image" "$img"
if [ -n "$mod" ]; then
	mkdir -p "$img/lib/modules/$rel/updates/dkms"
	cp "$root$mod" "$img/lib/modules/$rel/updates/dkms/"
	depmod -b "$img" "$rel"
fi
in_root dpkg --purge fastsocket-dkms > "$logs/dpkg-purge.log" 2>&1
if in_root sh -c "ls /lib/modules/$rel/updates/dkms/fastsocket.ko* 2>/dev/null" | grep -q . ||
	in_root dkms status | grep -q fastsocket; then
	no "dpkg --purge fastsocket-dkms left the module"
else
	ok "dpkg --purge fastsocket-dkms removes the module"
fi
umount_root

# --- 2. the packaged kernel in the VM ---------------------------------------
if [ -z "$mod" ]; then
	no "no DKMS module: the VM test cannot run"
	finish
fi
"$top/tools/deb/initrd.sh" "$img" "$rel" "$deb/initrd-$rel.gz" >/dev/null ||
	{ no "initrd"; finish; }
gmod=$img/lib/modules/$rel/updates/dkms/$(basename "$mod")
vmout=$top/build/vm/test-deb-$(date +%Y%m%d-%H%M%S)
cat > "$logs/guest.sh" <<GUEST
#!/bin/sh
# In the guest: the packaged kernel, its modules, the DKMS module.
uname -r | grep -qx '$rel' || { echo "guest: running \$(uname -r), not $rel"; exit 1; }
# The package's modules, for the kernel's own requests too (veth, ...).
echo $top/tools/deb/guest-modprobe > /proc/sys/kernel/modprobe
$top/tools/deb/guest-modprobe fastsocket || { echo "guest: modprobe fastsocket failed"; exit 1; }
grep -q '^fastsocket ' /proc/modules || { echo "guest: fastsocket not loaded"; exit 1; }
echo "guest: $rel, modprobe fastsocket ok: \$(cat /proc/sys/net/fastsocket/available)"
rmmod fastsocket
FS_MODULE=$gmod exec $top/selftests/runtests.sh fastsocket
GUEST
chmod 755 "$logs/guest.sh"
# ACPI IRQ routing: without MP tables (not in Debian's cloud config) the
# CPUs' APICs are only found through ACPI, and acpi=noirq leaves one CPU.
# Single-threaded TCG (--icount): under multi-threaded TCG this kernel
# took an int3 Oops at a static-branch site that module_reload flips,
# which single-threaded TCG and the test kernels never showed (see
# docs/packaging.md).
FS_VM_ACPI_IRQ=1 "$top/tools/vm-run" --icount --nic -q -t "${FS_TEST_VM_TIMEOUT:-2400}" -o "$vmout" \
	--kernel "$img/boot/vmlinuz-$rel" --initrd "$deb/initrd-$rel.gz" \
	-- "$logs/guest.sh"
rc=$?
grep -a "^guest: \|^runtests: \|^fastsocket/" "$vmout/console.log" | tail -60
summary=$(cat "$vmout/summary" 2>/dev/null)
if [ -n "$summary" ]; then
	read -r p _ f _ s _ <<<"$summary"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	[ $rc = 0 ] || [ "$f" != 0 ] || no "the VM run exited $rc (logs: $vmout)"
else
	no "the VM run exited $rc without a summary (logs: $vmout)"
fi
echo "logs: $logs $vmout"
finish
