# SPDX-License-Identifier: GPL-2.0
# Fastsocket for Linux 6.12: one entry point.
#
#   make demo            build, boot the patched kernel, show Fastsocket working,
#                        then a quick benchmark table (bench kernel, icount)
#   make test            build everything, run all tests in the VM
#                        (SUITES=fastsocket: our selftests only)
#   make kernel          patched test kernel (FLAVOR=bench for production)
#   make vanilla         unpatched kernel with the bench config
#   make module          fastsocket.ko for the test kernel
#   make selftests       selftest binaries
#   make tools           the fastsocket CLI and libfastsocket.so
#   make install         CLI, library and man pages (PREFIX=/usr/local, DESTDIR=)
#   make benchmarks      the crr load tool
#   make bench           build bench + vanilla kernels and the bench module, run
#                        the benchmark matrix (benchmarks/run.sh; BENCH_ARGS=...)
#   make bench-plots     regenerate table, plots and docs/benchmarks.md from
#                        build/bench/latest
#   make export-patches  regenerate linux-patches/ from build/linux
#   make checkpatch      scripts/checkpatch.pl --strict on the series
#   make check-series    checkpatch, then build the kernel at every patch
#                        (CHECK_FROM=N CHECK_TO=M: only patches N to M)
#   make deb             Debian packages into build/deb/: linux-image and
#                        linux-headers of the patched kernel with Debian's
#                        config (DEB_FLAVOR=cloud-amd64, or amd64),
#                        fastsocket-dkms and fastsocket-tools; lintian
#   make test-deb        install them into a clean Debian 12 root (DKMS
#                        builds the module there), then boot the packaged
#                        kernel and run the Fastsocket selftests with it
#   make deps            install the Debian packages (as root)
TOP := $(CURDIR)
BUILD := $(TOP)/build
FLAVOR ?= test
KOBJ := $(BUILD)/obj-$(FLAVOR)
MODULE := $(BUILD)/module-obj-$(FLAVOR)/fastsocket.ko

DEB_PACKAGES := linux-source-6.12 build-essential flex bison bc cpio kmod \
	libelf-dev libssl-dev xz-utils ccache git python3 qemu-system-x86 \
	iproute2 ethtool procps util-linux rsync nginx-light haproxy wrk \
	gnuplot-nox linux-perf python3-ply python3-git busybox-static groff-base \
	dpkg-dev lintian

# What "make deb" and "make test-deb" need beyond the above.
DEB_BUILD_PACKAGES := linux-config-6.12 debhelper mmdebstrap

all: kernel module selftests tools benchmarks

deps:
	@tools/deps.sh $(DEB_PACKAGES)

kernel: deps
	tools/kernel.sh build $(FLAVOR)

vanilla: deps
	tools/kernel.sh build vanilla

module: kernel
	$(MAKE) -C module KDIR=$(KOBJ) OUT=$(dir $(MODULE))

selftests: kernel
	$(MAKE) -C selftests KOBJ=$(KOBJ)

tools: deps
	$(MAKE) -C tools

PREFIX ?= /usr/local
install:
	$(MAKE) -C tools install PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)

benchmarks: deps
	$(MAKE) -C benchmarks

# SUITES=fastsocket (or net) runs one suite only: the inner loop.
test: kernel module selftests tools benchmarks
	@tools/run-tests.sh $(SUITES)

demo: kernel module tools benchmarks
	@tools/vm-run -t 900 -- $(TOP)/tools/demo.sh
	$(MAKE) module FLAVOR=bench
	@benchmarks/run.sh --quick
	@cat $(BUILD)/bench/latest/summary.md

# The benchmark matrix: patched bench kernel and its module, the vanilla
# kernel, tools and crr. BENCH_ARGS passes options to benchmarks/run.sh.
bench: vanilla tools benchmarks
	$(MAKE) module FLAVOR=bench
	benchmarks/run.sh --docs $(BENCH_ARGS)

bench-plots:
	benchmarks/plots.sh $(BUILD)/bench/latest

export-patches:
	tools/kernel.sh export

checkpatch:
	tools/kernel.sh check

check-series: checkpatch
	tools/kernel.sh check-build $(or $(CHECK_FROM),1) $(CHECK_TO)

DEB_FLAVOR ?= cloud-amd64
deb: deps
	@tools/deps.sh $(DEB_BUILD_PACKAGES)
	DEB_FLAVOR=$(DEB_FLAVOR) tools/kernel.sh deb
	tools/deb/build.sh
	tools/deb/lint.sh

# The selftests take their uapi headers from the packaged kernel's tree:
# no test kernel build is needed.
test-deb: deb tools
	$(MAKE) -C selftests KOBJ=$(BUILD)/deb/obj-$(DEB_FLAVOR)
	DEB_FLAVOR=$(DEB_FLAVOR) tools/deb/test.sh

clean:
	$(MAKE) -C selftests clean
	$(MAKE) -C tools clean
	rm -rf $(BUILD)/obj-* $(BUILD)/module-* $(BUILD)/vm

.PHONY: deb test-deb
.PHONY: all deps kernel vanilla module selftests tools benchmarks test demo install \
	bench bench-plots export-patches checkpatch check-series clean
