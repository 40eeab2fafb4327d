#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Kernel tree and build helper for the Fastsocket series.
#
#   kernel.sh tree              extract linux-source-6.12 into build/linux as a
#                               git repo (tag "base") and apply linux-patches/
#   kernel.sh vanilla-tree      build/linux-vanilla: a worktree at "base"
#   kernel.sh build FLAVOR      configure and build bzImage; FLAVOR is
#                               test | bench | vanilla | nofs | kcsan |
#                               bench-hz100 (bench at HZ=100)
#   kernel.sh export            regenerate linux-patches/ from build/linux
#   kernel.sh check             checkpatch --strict on every patch
#   kernel.sh check-build [FROM [TO]]
#                               build the kernel at every patch of the series
#                               (or patches FROM to TO, numbered from 1), in
#                               the worktree build/linux-check and
#                               build/obj-check-{test,nofs}, with and without
#                               CONFIG_FASTSOCKET
#   kernel.sh deb               linux-image and linux-headers packages of the
#                               patched kernel with Debian's config
#                               (DEB_FLAVOR=cloud-amd64|amd64) into build/deb/
#
# The compiler runs under ccache; CCACHE_DIR defaults to a directory outside
# the clone so that a fresh clone on the same machine starts warm.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build
src=$build/linux
patches=$top/linux-patches
tarball=/usr/src/linux-source-6.12.tar.xz
jobs=${JOBS:-$(($(nproc) + 1))}

export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/fastsocket/ccache}
export CCACHE_BASEDIR=$top
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
export CCACHE_SLOPPINESS=time_macros
export KBUILD_BUILD_TIMESTAMP="2026-01-01"
export KBUILD_BUILD_USER=fastsocket
export KBUILD_BUILD_HOST=vm

log() { printf 'kernel.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

series_files() {
	grep -v '^[[:space:]]*\(#\|$\)' "$patches/series" | sed "s|^|$patches/|"
}

series_stamp() {
	cat "$patches/series" $(series_files) 2>/dev/null | sha256sum | cut -d' ' -f1
}

git_src() { git -C "$src" -c user.name="Fastsocket build" \
	-c user.email=build@fastsocket.invalid "$@"; }

extract_base() {
	[ -r "$tarball" ] || die "$tarball missing: apt-get install linux-source-6.12"
	log "extracting $(basename "$tarball")"
	rm -rf "$src" "$build/linux-source-6.12"
	mkdir -p "$build"
	tar -C "$build" -xf "$tarball"
	mv "$build/linux-source-6.12" "$src"
	git_src init -q
	# Debian's tarball .gitignore ignores "/*"; track everything explicitly.
	git_src add -A -f
	git_src commit -q -m "linux-source-6.12 $(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || echo unknown)"
	git_src tag base
}

apply_series() {
	log "applying linux-patches/series"
	git_src reset -q --hard base
	git_src clean -q -fdx
	local p
	for p in $(series_files); do
		git_src am -q --keep-cr "$p" || {
			git_src am --abort || true
			die "$(basename "$p") does not apply"
		}
	done
	series_stamp > "$src/.git/fastsocket-series"
}

cmd_tree() {
	if [ ! -d "$src/.git" ] || ! git_src rev-parse -q --verify base >/dev/null; then
		extract_base
		apply_series
		return
	fi
	if [ "$(cat "$src/.git/fastsocket-series" 2>/dev/null)" = "$(series_stamp)" ]; then
		return
	fi
	# linux-patches/ changed (e.g. a pull). Re-apply only on a clean tree,
	# never over a developer's uncommitted edits.
	if [ -n "$(git_src status --porcelain --untracked-files=no)" ]; then
		die "build/linux has uncommitted changes and linux-patches/ changed; commit and 'make export-patches', or reset build/linux"
	fi
	if [ "$(export_to_tmp)" = "same" ]; then
		series_stamp > "$src/.git/fastsocket-series"
		return
	fi
	apply_series
}

# Compare the commits on top of "base" with linux-patches/, ignoring the
# format-patch header lines that change on every export.
# format_series DIR: the series as "[PATCH n/m]" patches into DIR, with
# the cover letter (0000-cover-letter.patch: subject and text from
# docs/cover-letter.txt, the shortlog and diffstat by git, and the
# base-commit trailer).
format_series() {
	local dir=$1
	local cover=$dir/0000-cover-letter.patch
	git_src -c user.name="Fastsocket Developers" \
		-c user.email=fastsocket@example.org \
		format-patch -q --no-signature --zero-commit --numbered \
		--cover-letter --base=base -o "$dir" base..HEAD
	[ -r "$top/docs/cover-letter.txt" ] || return 0
	python3 - "$cover" "$top/docs/cover-letter.txt" \
		"$(git_src log -1 --format=%aD HEAD)" <<'PY'
import re, sys
cover, text = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
subject, _, blurb = text.partition("\n\n")
s = open(cover).read()
# dated as the last patch, so that an unchanged series exports unchanged
s = re.sub(r"^Date: .*$", "Date: " + sys.argv[3], s, count=1, flags=re.M)
s = s.replace("*** SUBJECT HERE ***", subject.strip(), 1)
s = s.replace("*** BLURB HERE ***", blurb.strip(), 1)
open(cover, "w").write(s)
PY
}

export_to_tmp() {
	local tmp
	tmp=$(mktemp -d)
	format_series "$tmp"
	rm -f "$tmp/0000-cover-letter.patch"
	if diff -q <(cat "$tmp"/*.patch 2>/dev/null | grep -v '^Date: ') \
		<(cat $(series_files) 2>/dev/null | grep -v '^Date: ') >/dev/null; then
		echo same
	else
		echo differ
	fi
	rm -rf "$tmp"
}

cmd_vanilla_tree() {
	cmd_tree
	if [ ! -d "$build/linux-vanilla" ]; then
		git_src worktree prune
		git_src worktree add -q --detach "$build/linux-vanilla" base
	fi
}

cmd_export() {
	[ -d "$src/.git" ] || die "no build/linux"
	find "$patches" -maxdepth 1 -name '*.patch' -delete
	format_series "$patches"
	{
		echo "# Fastsocket series for Debian linux-source-6.12."
		echo "# Tested base: $(git_src log -1 --format=%s base)"
		echo "# (0000-cover-letter.patch is the cover letter, not applied)"
		(cd "$patches" && ls -1 *.patch | grep -v '^0000-cover-letter')
	} > "$patches/series"
	series_stamp > "$src/.git/fastsocket-series"
	log "exported $(git_src rev-list --count base..HEAD) patches"
}

make_kernel() {
	local tree=$1 obj=$2
	shift 2
	make -C "$tree" O="$obj" CC="ccache gcc" HOSTCC="ccache gcc" \
		-j"$jobs" "$@"
}

configure() {
	local tree=$1 obj=$2 flavor=$3
	local frags=("$patches/config/vm.config")
	case $flavor in
	test) frags+=("$patches/config/test.config" "$patches/fastsocket.config") ;;
	kcsan) frags+=("$patches/config/kcsan.config" "$patches/fastsocket.config") ;;
	bench) frags+=("$patches/config/bench.config" "$patches/fastsocket.config") ;;
	bench-hz100) frags+=("$patches/config/bench.config" "$patches/fastsocket.config"
		"$patches/config/hz100.config") ;;
	vanilla) frags+=("$patches/config/bench.config") ;;
	nofs) frags+=("$patches/config/bench.config" "$patches/config/nofs.config") ;;
	*) die "unknown flavor $flavor" ;;
	esac
	local want
	want=$(cat "${frags[@]}" | sha256sum | cut -d' ' -f1)
	if [ -f "$obj/.config" ] && [ "$(cat "$obj/.fastsocket-frags" 2>/dev/null)" = "$want" ]; then
		make_kernel "$tree" "$obj" -s olddefconfig
		return
	fi
	mkdir -p "$obj"
	make_kernel "$tree" "$obj" -s tinyconfig
	"$tree/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" \
		"${frags[@]}" >/dev/null
	make_kernel "$tree" "$obj" -s olddefconfig
	# Every option the fragments ask for must have survived olddefconfig.
	local line sym val bad=0
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*) sym=${line%%=*} val=${line#*=}
			grep -qx "$sym=$val" "$obj/.config" || { log "config: $line not set"; bad=1; } ;;
		"# CONFIG_"*" is not set") sym=${line#"# "}; sym=${sym%% *}
			! grep -q "^$sym=[ym]" "$obj/.config" || { log "config: $sym still set"; bad=1; } ;;
		esac
	done < <(cat "${frags[@]}")
	[ $bad = 0 ] || die "config fragments not satisfied for $flavor"
	echo "$want" > "$obj/.fastsocket-frags"
}

cmd_build() {
	local flavor=${1:?flavor}
	local tree=$src
	case $flavor in
	vanilla) cmd_vanilla_tree; tree=$build/linux-vanilla ;;
	*) cmd_tree ;;
	esac
	local obj=$build/obj-$flavor
	configure "$tree" "$obj" "$flavor"
	log "building $flavor kernel (-j$jobs, ccache in $CCACHE_DIR)"
	make_kernel "$tree" "$obj" -s bzImage modules
	ln -sf "$obj/arch/x86/boot/bzImage" "$build/bzImage-$flavor"
	log "$build/bzImage-$flavor ready"
}

# Build bzImage at every commit of the series, so that each patch builds on
# its own: with CONFIG_FASTSOCKET=y (the test config) and with it off (the
# bench config without Fastsocket, flavor nofs, where every hook must
# compile away). The commits are checked out in build/linux itself and
# built in the same object directories each time, so make and ccache stay
# incremental. The branch is restored afterwards.
cmd_check_build() {
	local from=${1:-1} to=${2:-} total wt=$build/linux-check
	cmd_tree
	total=$(git_src rev-list --count base..HEAD)
	to=${to:-$total}
	[[ $from =~ ^[1-9][0-9]*$ && $to =~ ^[1-9][0-9]*$ ]] && [ "$from" -le "$to" ] &&
		[ "$to" -le "$total" ] || die "check-build: want patches FROM TO in 1..$total"
	# A worktree of its own: build/linux stays as it is, free to edit.
	if [ ! -d "$wt" ]; then
		git_src worktree prune
		git_src worktree add -q --detach "$wt" HEAD
	fi
	local rev n=0 flavor
	for rev in $(git_src rev-list --reverse base..HEAD); do
		n=$((n + 1))
		[ "$n" -ge "$from" ] && [ "$n" -le "$to" ] || continue
		git -C "$wt" checkout -q --detach "$rev"
		for flavor in test nofs; do
			configure "$wt" "$build/obj-check-$flavor" $flavor
			log "patch $n ($flavor): $(git -C "$wt" log -1 --format=%s)"
			make_kernel "$wt" "$build/obj-check-$flavor" -s bzImage modules ||
				die "patch $n does not build ($flavor)"
		done
		if grep -q "^CONFIG_FASTSOCKET=y" "$build/obj-check-nofs/.config"; then
			die "nofs config has CONFIG_FASTSOCKET=y"
		fi
	done
	# With Fastsocket off nothing of it is left in the image.
	if nm "$build/obj-check-nofs/vmlinux" | grep -i -E ' (fastsocket|ep_wait_entry_cpu)'; then
		die "CONFIG_FASTSOCKET=n still builds Fastsocket symbols"
	fi
	log "patches $from to $to build on their own, with and without CONFIG_FASTSOCKET"
}

# Debian packages of the patched kernel. The config is Debian's own for
# DEB_FLAVOR (linux-config-6.12) with fastsocket.config and deb.config on
# top; the release is 6.12.N-fastsocket-FLAVOR and the package version
# Debian's source version plus "+fastsocketN" (N patches). The changelog
# entry and /usr/share/doc/PKG/fastsocket-series name the base and every
# patch. "make bindeb-pkg" would regenerate debian/ and lose both, so the
# steps are its own: "make debian", then dpkg-buildpackage as it runs it.
cmd_deb() {
	local flavor=${DEB_FLAVOR:-cloud-amd64}
	local cfg=/usr/src/linux-config-6.12/config.amd64_none_$flavor.xz
	[ -r "$cfg" ] || die "$cfg missing: apt-get install linux-config-6.12 (DEB_FLAVOR is cloud-amd64 or amd64)"
	cmd_tree
	local debdir=$build/deb obj=$build/deb/obj-$flavor
	# Set, even empty: setlocalversion then adds no "+" for the git tree.
	export LOCALVERSION=
	local frags=("$patches/fastsocket.config")
	[ "${DEB_DEBUG:-0}" = 1 ] || frags+=("$patches/config/deb.config")
	local want
	want=$( (xz -dc "$cfg"; cat "${frags[@]}") | sha256sum | cut -d' ' -f1)
	mkdir -p "$obj"
	if [ "$(cat "$obj/.fastsocket-frags" 2>/dev/null)" != "$want" ]; then
		xz -dc "$cfg" > "$obj/.config"
		"$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" \
			"${frags[@]}" >/dev/null
		"$src/scripts/config" --file "$obj/.config" \
			--set-str LOCALVERSION "-fastsocket-$flavor"
		make_kernel "$src" "$obj" -s olddefconfig
		grep -qx CONFIG_FASTSOCKET=y "$obj/.config" ||
			die "CONFIG_FASTSOCKET=y did not survive olddefconfig"
		echo "$want" > "$obj/.fastsocket-frags"
	fi
	local base npatch release pkgver
	base=$(git_src log -1 --format=%s base | sed 's/^linux-source-6.12 //')
	npatch=$(git_src rev-list --count base..HEAD)
	release=$(make_kernel "$src" "$obj" -s kernelrelease)
	pkgver="$base+fastsocket$npatch"
	# Up to date: the same tree commit and config, and the packages there.
	# DEB_REBUILD=1 builds them again anyway.
	local stamp="$want $(git_src rev-parse HEAD)"
	if [ "${DEB_REBUILD:-0}" != 1 ] &&
	   [ "$(cat "$debdir/stamp-$flavor" 2>/dev/null)" = "$stamp" ] &&
	   [ -f "$debdir/linux-image-${release}_${pkgver}_amd64.deb" ] &&
	   [ -f "$debdir/linux-headers-${release}_${pkgver}_amd64.deb" ]; then
		log "$release ($pkgver) is up to date (DEB_REBUILD=1 rebuilds it)"
		echo "$release" > "$debdir/release-$flavor"
		return 0
	fi
	rm -f "$debdir/stamp-$flavor"
	log "packaging $release ($pkgver)"
	# scripts/package/mkdebian writes debian/ from these variables (the
	# "debian" target of scripts/Makefile.package is not reachable from
	# the top Makefile, its run-command target is).
	KDEB_PKGVERSION=$pkgver KDEB_SOURCENAME=linux-fastsocket \
	KDEB_CHANGELOG_DIST=bookworm \
	DEBEMAIL=fastsocket@example.org DEBFULLNAME="Fastsocket Developers" \
		make_kernel "$src" "$obj" -s run-command KERNELRELEASE="$release" \
		KBUILD_RUN_COMMAND='$(srctree)/scripts/package/mkdebian'
	grep -qx "KERNELRELEASE := $release" "$obj/debian/rules.vars" ||
		die "mkdebian did not take the release $release"
	{
		echo "Fastsocket for Linux 6.12: linux-image-$release"
		echo "Base: Debian linux-source-6.12 $base"
		echo "Config: Debian $flavor, linux-patches/fastsocket.config$([ "${DEB_DEBUG:-0}" = 1 ] || echo ', linux-patches/config/deb.config')"
		echo "Patches ($npatch):"
		git_src log --reverse --format='  %h %s' base..HEAD
	} > "$obj/debian/fastsocket-series"
	local p
	for p in "linux-image-$release" "linux-headers-$release"; do
		echo debian/fastsocket-series > "$obj/debian/$p.docs"
	done
	{
		echo "linux-fastsocket ($pkgver) bookworm; urgency=medium"
		echo
		echo "  * Debian linux-source-6.12 $base with the Fastsocket series:"
		git_src log --reverse --format='%s' base..HEAD | while IFS= read -r subj; do
			echo "$subj" | fold -s -w 70 | sed -e 's/ *$//' -e '1s/^/    - /' -e '2,$s/^/      /'
		done
		echo "  * Config: Debian $flavor plus the Fastsocket fragment."
		echo
		echo " -- Fastsocket Developers <fastsocket@example.org>  $(date -R -d "$KBUILD_BUILD_TIMESTAMP")"
	} > "$obj/debian/changelog"
	# ccache by PATH: Debian's /usr/lib/ccache has gcc and cc under ccache.
	(cd "$obj" && PATH=/usr/lib/ccache:$PATH DEB_BUILD_OPTIONS=terse \
		dpkg-buildpackage --build=binary --no-pre-clean --unsigned-changes \
		-R"make -f debian/rules" -j"$jobs" \
		-a"$(cat debian/arch)" --no-check-builddeps -us -uc >"$obj/build.log" 2>&1) || {
		tail -40 "$obj/build.log" >&2
		die "dpkg-buildpackage failed (log: $obj/build.log)"
	}
	echo "$release" > "$debdir/release-$flavor"
	echo "$stamp" > "$debdir/stamp-$flavor"
	log "packages in $debdir:"
	ls -s1 "$debdir"/*"$pkgver"*.deb >&2
}

cmd_check() {
	local p rc=0
	for p in $(series_files); do
		# Debian's python3 has ply for scripts/spdxcheck.py.
		PATH=/usr/bin:$PATH "$src/scripts/checkpatch.pl" --strict -q "$p" || rc=1
	done
	return $rc
}

case ${1:-} in
tree) cmd_tree ;;
vanilla-tree) cmd_vanilla_tree ;;
build) shift; cmd_build "$@" ;;
export) cmd_export ;;
check) cmd_check ;;
check-build) shift; cmd_check_build "$@" ;;
deb) cmd_deb ;;
*) echo "usage: $0 tree|vanilla-tree|build FLAVOR|export|check|check-build|deb" >&2; exit 2 ;;
esac
