// SPDX-License-Identifier: GPL-2.0
/*
 * locality: a QEMU TCG plugin that counts cross-CPU cache-line transfers.
 *
 * The plugin keeps a directory over guest physical memory in 64-byte
 * lines. For each line it knows which vCPUs hold a copy and which vCPU
 * wrote it last. Every load and store the guest makes to RAM updates the
 * directory, and counts, for the vCPU that made it:
 *
 *  - a transfer when it reads a line it does not hold that another vCPU
 *    wrote last, or writes a line that other vCPUs hold (the write
 *    invalidates their copies); one instruction moves a given line at
 *    most once, so a locked read-modify-write is one transfer, as the
 *    single ownership request of real hardware;
 *  - a first touch when it is the first vCPU to touch the line since boot.
 *
 * Counts are split kernel/user by the address of the instruction (the
 * kernel half of the address space starts at 0xffff800000000000), and
 * transfers also by the CPU sets of source and destination (server=,
 * client=). Lines never leave a cache except by another vCPU's write:
 * there are no capacity misses, no prefetch and no DMA (devices write
 * memory behind the directory's back). See README.md in this directory.
 *
 * Phases: the guest marks a measured phase with the no-op markers of
 * meter.h. At the end of each phase the plugin appends the phase's
 * counts and its top transfer sites (instruction addresses) to out=; at
 * exit it appends the totals for the whole boot under phase=boot.
 *
 * Schedule: under -icount QEMU runs all vCPUs round-robin on one host
 * thread, switching only when a vCPU stops or its time budget runs out.
 * A vCPU spinning on another that never gets to run stalls the guest
 * (seen at "Booting SMP configuration"), so every switch= instructions
 * the plugin asks QEMU to move on to the next vCPU with its cpu_exit().
 * The interleaving is then a function of instruction counts alone.
 *
 * Arguments (-plugin locality.so,key=value,...):
 *   out=FILE      where to write the counts (default locality.out)
 *   switch=N      force a vCPU switch every N instructions (default
 *                 10000; 0 = never)
 *   server=LIST   server vCPUs, e.g. 0-3 or 0-1:4 (default: every vCPU
 *                 not in client=)
 *   client=LIST   client vCPUs (default none)
 *   top=N         transfer sites written per phase (default 200)
 *   callers=1     key each transfer site also by its caller: the address
 *                 of the last translation block that ended in a call on
 *                 that vCPU, written as from= (default 0). For a leaf
 *                 such as _raw_spin_lock() that is the call site; deeper
 *                 in a function that has made calls of its own it is the
 *                 function's own last call.
 *   roots=FILE    count instructions inclusively under named functions:
 *                 each line "ADDR NAME PART" gives a function's entry
 *                 address (hex, from System.map) and the part its
 *                 instructions, and those of what it calls, count to; a
 *                 PART of "-" marks a barrier (see below). The innermost
 *                 root on a vCPU's stack gets the instructions; a root's
 *                 frame ends when a block starts at its return address.
 *                 A barrier (__schedule: the vCPU goes on with another
 *                 task) suspends the vCPU's roots: nothing is counted
 *                 until a block starts at the barrier's return address,
 *                 where the frames below it resume; frames of other tasks
 *                 above it are dropped then (drops=). Interrupts inside a
 *                 root count to it. Per phase: "scope=part name=PART
 *                 insns=N calls=N".
 *   mem=0         no memory callbacks: instructions only (faster)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qemu-plugin-api.h"
#include "meter.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define LINE_SHIFT	6
#define PHYS_SHIFT	36	/* the directory covers 64 GiB of guest RAM */
#define NLINES		(1ull << (PHYS_SHIFT - LINE_SHIFT))
#define PAGE_SIZE	4096u
#define MAX_CPUS	32	/* one bit per vCPU in a 32-bit holder mask */
#define KERNEL_START	0xffff800000000000ull
#define MAX_DEPTH	32	/* nested roots per vCPU */
#define MAX_PARTS	32
#define BARRIER		(-2)	/* a root line's part "-" */

enum { K, U };			/* kernel or user, by instruction address */
enum { SET_OTHER, SET_SERVER, SET_CLIENT, NSETS };
enum { PAIR_SS, PAIR_CS, PAIR_SC, PAIR_CC, PAIR_OTHER, NPAIRS };

static const char *const set_name[NSETS] = { "other", "server", "client" };
static const char *const pair_name[NPAIRS] = { "ss", "cs", "sc", "cc", "other" };

struct counts {
	uint64_t insns[2];
	uint64_t xfer[2];
	uint64_t first[2];
	uint64_t pair[NPAIRS][2];	/* transfers by source -> destination set */
};

struct vcpu {
	struct counts boot;
	struct counts phase;
	int set;
	uint64_t tb_seq;		/* translation blocks entered */
	uint64_t since_switch;		/* instructions since the last switch */
	/* The last transfer: one instruction moves one line only once. */
	uint64_t last_seq, last_pc, last_line;
	uint64_t last_call;		/* pc of the last block ending in a call */
	/* roots=: the return address if the last block ended in a call */
	uint64_t pending_ret;
	unsigned int depth;
	struct {
		uint64_t ret;		/* the frame ends at this address */
		int part;
	} stack[MAX_DEPTH];
	void *cpu;			/* QEMU's CPUState, for cpu_exit() */
};

/*
 * Transfers by instruction address: [0] all, [1 + pair] by CPU sets; st_*
 * the ones a store made (the rest are loads).
 */
struct site {
	uint64_t pc;
	uint64_t from;			/* with callers=1, else 0 */
	uint64_t phase[1 + NPAIRS];
	uint64_t boot[1 + NPAIRS];
	uint64_t st_phase[1 + NPAIRS];
	uint64_t st_boot[1 + NPAIRS];
};

static struct vcpu vcpus[MAX_CPUS];
static unsigned int ncpus;

/* The directory: holder bitmask and last writer (vCPU + 1, 0 = none). */
static uint32_t *holders;
static uint8_t *writer;

static struct site **sites;	/* open-addressed hash table by pc */
static size_t sites_size, sites_used;

static FILE *out;
static const char *out_path = "locality.out";
static uint64_t switch_every = 10000;
static unsigned int top_sites = 200;
static const char *server_arg = "", *client_arg = "";
static bool callers;
static bool mem_cbs = true;

/* roots=: entry addresses -> part (open addressing), and per-part counts. */
static const char *roots_path;
static struct root { uint64_t pc; int part; } *roots;
static size_t roots_size;
static char *part_name[MAX_PARTS];
static unsigned int nparts;
static struct part_count {
	uint64_t insns, calls;
} part_phase[MAX_PARTS], part_boot[MAX_PARTS];
static uint64_t drops_phase, drops_boot, overflow;

/* What a translation block's exec callback needs to know of it. */
struct tb_info {
	uint64_t pc;
	unsigned int n;			/* instructions */
	unsigned int mode;		/* K or U */
	int root;			/* part, BARRIER or -1 (roots=) */
	/* if the block ends in a call, its return address, else 0 */
	uint64_t ret_addr;
};

static bool measuring;
static unsigned int phase_no;
static int phase_begin_cpu;
static uint64_t skipped_io, skipped_range;

static void (*qemu_cpu_exit)(void *cpu);
static void *(*qemu_get_cpu)(int index);

static pthread_t vcpu_thread;
static bool vcpu_thread_known;

static bool is_kernel(uint64_t pc)
{
	return pc >= KERNEL_START;
}

static int pair_of(int src, int dst)
{
	if (src == SET_SERVER && dst == SET_SERVER)
		return PAIR_SS;
	if (src == SET_CLIENT && dst == SET_SERVER)
		return PAIR_CS;
	if (src == SET_SERVER && dst == SET_CLIENT)
		return PAIR_SC;
	if (src == SET_CLIENT && dst == SET_CLIENT)
		return PAIR_CC;
	return PAIR_OTHER;
}

static size_t site_hash(uint64_t pc, uint64_t from, size_t mask)
{
	return ((pc ^ from * 0xff51afd7ed558ccdull) * 0x9e3779b97f4a7c15ull >> 20) & mask;
}

static struct site *site_get(uint64_t pc, uint64_t from)
{
	size_t i, mask;

	if (2 * (sites_used + 1) > sites_size) {
		struct site **old = sites;
		size_t j, old_size = sites_size;

		sites_size = old_size ? 2 * old_size : 4096;
		sites = calloc(sites_size, sizeof(*sites));
		if (!sites) {
			perror("locality: site table");
			_exit(2);
		}
		mask = sites_size - 1;
		for (j = 0; j < old_size; j++) {
			if (!old[j])
				continue;
			i = site_hash(old[j]->pc, old[j]->from, mask);
			while (sites[i])
				i = (i + 1) & mask;
			sites[i] = old[j];
		}
		free(old);
	}
	mask = sites_size - 1;
	i = site_hash(pc, from, mask);
	while (sites[i]) {
		if (sites[i]->pc == pc && sites[i]->from == from)
			return sites[i];
		i = (i + 1) & mask;
	}
	sites[i] = calloc(1, sizeof(struct site));
	if (!sites[i]) {
		perror("locality: site");
		_exit(2);
	}
	sites[i]->pc = pc;
	sites[i]->from = from;
	sites_used++;
	return sites[i];
}

static void count_transfer(struct vcpu *c, unsigned int src, uint64_t pc,
			   uint64_t line, bool store)
{
	int m = is_kernel(pc) ? K : U;
	int p = pair_of(vcpus[src].set, c->set);
	struct site *s;

	if (c->last_seq == c->tb_seq && c->last_pc == pc && c->last_line == line)
		return;
	c->last_seq = c->tb_seq;
	c->last_pc = pc;
	c->last_line = line;

	s = site_get(pc, callers ? c->last_call : 0);
	c->boot.xfer[m]++;
	c->boot.pair[p][m]++;
	s->boot[0]++;
	s->boot[1 + p]++;
	if (store) {
		s->st_boot[0]++;
		s->st_boot[1 + p]++;
	}
	if (measuring) {
		c->phase.xfer[m]++;
		c->phase.pair[p][m]++;
		s->phase[0]++;
		s->phase[1 + p]++;
		if (store) {
			s->st_phase[0]++;
			s->st_phase[1 + p]++;
		}
	}
}

/* One access by vCPU @idx, made by the instruction at @pc, to @line. */
static void touch_line(unsigned int idx, uint64_t pc, uint64_t line, bool store)
{
	struct vcpu *c = &vcpus[idx];
	uint32_t me = 1u << idx, held = holders[line];
	unsigned int last = writer[line];
	int src = -1;

	if (store) {
		uint32_t others = held & ~me;

		holders[line] = me;
		writer[line] = idx + 1;
		if (others) {
			/* Many copies go with one ownership request: name
			 * the last writer as the source if it has one. */
			if (last && (others & (1u << (last - 1))))
				src = last - 1;
			else
				src = __builtin_ctz(others);
		}
	} else {
		if (held & me)
			return;
		holders[line] = held | me;
		/* A clean line shared by others comes from memory. */
		if (last && last - 1 != idx)
			src = last - 1;
	}

	if (!held) {
		int m = is_kernel(pc) ? K : U;

		c->boot.first[m]++;
		if (measuring)
			c->phase.first[m]++;
	} else if (src >= 0) {
		count_transfer(c, src, pc, line, store);
	}
}

static void mem_access(unsigned int idx, qemu_plugin_meminfo_t info,
		       uint64_t vaddr, void *udata)
{
	struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
	uint64_t pa, line, last;
	unsigned int size;
	bool store;

	/* No RAM behind it (device I/O) or no translation: not a line. */
	if (!hw || qemu_plugin_hwaddr_is_io(hw)) {
		skipped_io++;
		return;
	}
	pa = qemu_plugin_hwaddr_phys_addr(hw);
	size = 1u << qemu_plugin_mem_size_shift(info);
	line = pa >> LINE_SHIFT;
	last = (pa + size - 1) >> LINE_SHIFT;
	/* The next physical page need not follow: keep to this one. */
	if ((pa & (PAGE_SIZE - 1)) + size > PAGE_SIZE)
		last = line;
	if (last >= NLINES || idx >= ncpus) {
		skipped_range++;
		return;
	}
	store = qemu_plugin_mem_is_store(info);
	for (; line <= last; line++)
		touch_line(idx, (uintptr_t)udata, line, store);
}

static void check_thread(void)
{
	if (vcpu_thread_known) {
		if (pthread_equal(pthread_self(), vcpu_thread))
			return;
		fprintf(stderr, "locality: vCPUs run on more than one thread; "
			"the meter needs -accel tcg,thread=single (or -icount)\n");
		_exit(2);
	}
	vcpu_thread = pthread_self();
	vcpu_thread_known = true;
}

/* Ask QEMU to leave this vCPU at the next block and run the next one. */
static void force_switch(unsigned int idx)
{
	struct vcpu *c = &vcpus[idx];

	if (!c->cpu)
		c->cpu = qemu_get_cpu(idx);
	if (c->cpu)
		qemu_cpu_exit(c->cpu);
}

/* roots=: enter or leave root frames at block @tb, then count it. */
static void root_step(struct vcpu *c, const struct tb_info *tb)
{
	unsigned int d;
	int part;

	/* A return to the frame's caller ends it; one to a barrier's
	 * return address resumes the frames below that barrier. */
	for (d = c->depth; d > 0; d--) {
		if (c->stack[d - 1].ret != tb->pc)
			continue;
		if (d != c->depth && c->stack[d - 1].part == BARRIER) {
			drops_boot += c->depth - d;
			if (measuring)
				drops_phase += c->depth - d;
		} else if (d != c->depth) {
			continue;
		}
		c->depth = d - 1;
		break;
	}
	if (c->pending_ret && tb->root != -1 && (tb->root != BARRIER || c->depth)) {
		if (c->depth < MAX_DEPTH) {
			c->stack[c->depth].ret = c->pending_ret;
			c->stack[c->depth].part = tb->root;
			c->depth++;
			if (tb->root != BARRIER) {
				part_boot[tb->root].calls++;
				if (measuring)
					part_phase[tb->root].calls++;
			}
		} else {
			overflow++;
		}
	}
	c->pending_ret = tb->ret_addr;
	if (!c->depth)
		return;
	part = c->stack[c->depth - 1].part;
	if (part == BARRIER)
		return;
	part_boot[part].insns += tb->n;
	if (measuring)
		part_phase[part].insns += tb->n;
}

/* Entry to a translation block: udata is its struct tb_info. */
static void tb_exec(unsigned int idx, void *udata)
{
	const struct tb_info *tb = udata;
	unsigned int n = tb->n, m = tb->mode;
	struct vcpu *c;

	check_thread();
	if (idx >= ncpus)
		return;
	c = &vcpus[idx];
	c->tb_seq++;
	if (roots)
		root_step(c, tb);
	if (tb->ret_addr)
		c->last_call = tb->pc;
	c->boot.insns[m] += n;
	if (measuring)
		c->phase.insns[m] += n;
	if (switch_every) {
		c->since_switch += n;
		if (c->since_switch >= switch_every) {
			c->since_switch = 0;
			force_switch(idx);
		}
	}
}

static void add_counts(struct counts *sum, const struct counts *c)
{
	int m, p;

	for (m = 0; m < 2; m++) {
		sum->insns[m] += c->insns[m];
		sum->xfer[m] += c->xfer[m];
		sum->first[m] += c->first[m];
		for (p = 0; p < NPAIRS; p++)
			sum->pair[p][m] += c->pair[p][m];
	}
}

static void put_counts(const char *label, const char *scope,
		       const struct counts *t)
{
	int p;

	fprintf(out, "phase=%s scope=%s insns_k=%" PRIu64 " insns_u=%" PRIu64
		" xfer_k=%" PRIu64 " xfer_u=%" PRIu64
		" first_k=%" PRIu64 " first_u=%" PRIu64,
		label, scope, t->insns[K], t->insns[U], t->xfer[K], t->xfer[U],
		t->first[K], t->first[U]);
	for (p = 0; p < NPAIRS; p++)
		fprintf(out, " xfer_%s_k=%" PRIu64 " xfer_%s_u=%" PRIu64,
			pair_name[p], t->pair[p][K], pair_name[p], t->pair[p][U]);
	fputc('\n', out);
}

static bool sort_by_boot;

static int cmp_sites(const void *a, const void *b)
{
	const struct site *x = *(struct site * const *)a;
	const struct site *y = *(struct site * const *)b;
	uint64_t nx = sort_by_boot ? x->boot[0] : x->phase[0];
	uint64_t ny = sort_by_boot ? y->boot[0] : y->phase[0];

	if (nx != ny)
		return nx < ny ? 1 : -1;
	if (x->pc != y->pc)
		return x->pc < y->pc ? -1 : 1;
	return x->from < y->from ? -1 : x->from > y->from;
}

static void put_sites(const char *label, bool boot)
{
	struct site **list = calloc(sites_used + 1, sizeof(*list));
	size_t i, n = 0;
	int p;

	if (!list)
		return;
	for (i = 0; i < sites_size; i++) {
		struct site *s = sites[i];

		if (s && (boot ? s->boot[0] : s->phase[0]))
			list[n++] = s;
	}
	sort_by_boot = boot;
	qsort(list, n, sizeof(*list), cmp_sites);
	for (i = 0; i < n && i < top_sites; i++) {
		const uint64_t *x = boot ? list[i]->boot : list[i]->phase;
		const uint64_t *st = boot ? list[i]->st_boot : list[i]->st_phase;

		fprintf(out, "phase=%s scope=site rank=%zu pc=0x%016" PRIx64
			" mode=%c xfer=%" PRIu64, label, i + 1, list[i]->pc,
			is_kernel(list[i]->pc) ? 'k' : 'u', x[0]);
		if (callers)
			fprintf(out, " from=0x%016" PRIx64, list[i]->from);
		for (p = 0; p < NPAIRS; p++)
			fprintf(out, " xfer_%s=%" PRIu64, pair_name[p], x[1 + p]);
		fprintf(out, " st=%" PRIu64, st[0]);
		for (p = 0; p < NPAIRS; p++)
			fprintf(out, " st_%s=%" PRIu64, pair_name[p], st[1 + p]);
		fputc('\n', out);
	}
	free(list);
}

/* Write the counts of the current phase (or of the boot) and its sites. */
static void put_phase(const char *label, bool boot, int end_cpu, bool complete)
{
	struct counts all, set[NSETS];
	bool used[NSETS] = { false };
	char scope[16];
	unsigned int i;
	int s;

	memset(&all, 0, sizeof(all));
	memset(set, 0, sizeof(set));
	fprintf(out, "phase=%s scope=meta switch=%" PRIu64 " ncpus=%u"
		" begin_cpu=%d end_cpu=%d complete=%d skipped_io=%" PRIu64
		" skipped_range=%" PRIu64 " sites=%zu\n", label, switch_every,
		ncpus, boot ? -1 : phase_begin_cpu, end_cpu, complete,
		skipped_io, skipped_range, sites_used);
	for (i = 0; i < ncpus; i++) {
		const struct counts *c = boot ? &vcpus[i].boot : &vcpus[i].phase;

		snprintf(scope, sizeof(scope), "cpu%u", i);
		put_counts(label, scope, c);
		add_counts(&set[vcpus[i].set], c);
		add_counts(&all, c);
		used[vcpus[i].set] = true;
	}
	for (s = SET_SERVER; s < NSETS + SET_SERVER; s++) {
		int k = s % NSETS;	/* server, client, then other */

		if (used[k])
			put_counts(label, set_name[k], &set[k]);
	}
	put_counts(label, "all", &all);
	if (roots) {
		const struct part_count *pc = boot ? part_boot : part_phase;
		unsigned int k;

		fprintf(out, "phase=%s scope=roots drops=%" PRIu64
			" overflow=%" PRIu64 "\n", label,
			boot ? drops_boot : drops_phase, overflow);
		for (k = 0; k < nparts; k++)
			fprintf(out, "phase=%s scope=part name=%s insns=%" PRIu64
				" calls=%" PRIu64 "\n", label, part_name[k],
				pc[k].insns, pc[k].calls);
	}
	put_sites(label, boot);
	fflush(out);
}

static void end_phase(int cpu, bool complete)
{
	char label[16];

	snprintf(label, sizeof(label), "%u", phase_no);
	put_phase(label, false, cpu, complete);
	measuring = false;
}

static void begin_phase(int cpu)
{
	unsigned int i;
	size_t j;

	if (measuring)
		end_phase(cpu, false);
	phase_no++;
	phase_begin_cpu = cpu;
	for (i = 0; i < ncpus; i++) {
		memset(&vcpus[i].phase, 0, sizeof(vcpus[i].phase));
		/* Start every quantum afresh: the phase's schedule then
		 * depends only on where each vCPU is, not on the boot. */
		vcpus[i].since_switch = 0;
	}
	for (j = 0; j < sites_size; j++) {
		if (!sites[j])
			continue;
		memset(sites[j]->phase, 0, sizeof(sites[j]->phase));
		memset(sites[j]->st_phase, 0, sizeof(sites[j]->st_phase));
	}
	memset(part_phase, 0, sizeof(part_phase));
	drops_phase = 0;
	measuring = true;
}

static void marker(unsigned int idx, void *udata)
{
	switch ((uintptr_t)udata) {
	case METER_BEGIN:
		begin_phase(idx);
		break;
	case METER_END:
		if (measuring)
			end_phase(idx, true);
		break;
	}
}

/* The displacement of a meter.h marker, or 0 for any other instruction. */
static uint32_t marker_of(const struct qemu_plugin_insn *insn)
{
	static const uint8_t nopl[4] = { 0x0f, 0x1f, 0x84, 0x00 };
	const uint8_t *b = qemu_plugin_insn_data(insn);
	uint32_t disp;

	if (qemu_plugin_insn_size(insn) != 8 || memcmp(b, nopl, 4))
		return 0;
	memcpy(&disp, b + 4, 4);
	return disp >> 8 == METER_SIGNATURE ? disp : 0;
}

static size_t root_slot(uint64_t pc)
{
	return (pc * 0x9e3779b97f4a7c15ull >> 24) & (roots_size - 1);
}

/* The part of the root function entered at @pc, BARRIER, or -1. */
static int root_of(uint64_t pc)
{
	size_t i;

	if (!roots)
		return -1;
	for (i = root_slot(pc); roots[i].pc; i = (i + 1) & (roots_size - 1))
		if (roots[i].pc == pc)
			return roots[i].part;
	return -1;
}

/* Read roots=FILE: "ADDR NAME PART" per line, # comments. */
static int load_roots(const char *path)
{
	char line[512], name[256], part[64];
	unsigned long long pc;
	size_t n = 0, i;
	FILE *f = fopen(path, "r");

	if (!f) {
		perror(path);
		return -1;
	}
	while (fgets(line, sizeof(line), f))
		n++;
	rewind(f);
	for (roots_size = 64; roots_size < 4 * n; roots_size *= 2)
		;
	roots = calloc(roots_size, sizeof(*roots));
	if (!roots)
		goto bad;
	while (fgets(line, sizeof(line), f)) {
		int k;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%llx %255s %63s", &pc, name, part) != 3 || !pc) {
			fprintf(stderr, "locality: %s: bad line: %s", path, line);
			goto bad;
		}
		if (!strcmp(part, "-")) {
			k = BARRIER;
		} else {
			for (k = 0; k < (int)nparts; k++)
				if (!strcmp(part_name[k], part))
					break;
			if (k == (int)nparts) {
				if (nparts == MAX_PARTS) {
					fprintf(stderr, "locality: %s: more than %d parts\n",
						path, MAX_PARTS);
					goto bad;
				}
				part_name[nparts++] = strdup(part);
			}
		}
		for (i = root_slot(pc); roots[i].pc && roots[i].pc != pc;
		     i = (i + 1) & (roots_size - 1))
			;
		roots[i].pc = pc;
		roots[i].part = k;
	}
	fclose(f);
	return 0;
bad:
	fclose(f);
	return -1;
}

/* Does x86 instruction @insn call: e8 rel32, or ff /2 (after prefixes)? */
static bool is_call(const struct qemu_plugin_insn *insn)
{
	const uint8_t *b = qemu_plugin_insn_data(insn);
	size_t i = 0, len = qemu_plugin_insn_size(insn);

	/* Legacy prefixes, then at most one REX. */
	while (i < len && (b[i] == 0x2e || b[i] == 0x3e || b[i] == 0x26 ||
			   b[i] == 0x36 || b[i] == 0x64 || b[i] == 0x65 ||
			   b[i] == 0x66 || b[i] == 0x67 || b[i] == 0xf2 ||
			   b[i] == 0xf3))
		i++;
	if (i < len && (b[i] & 0xf0) == 0x40)
		i++;
	if (i >= len)
		return false;
	if (b[i] == 0xe8)
		return true;
	return b[i] == 0xff && i + 1 < len && ((b[i + 1] >> 3) & 7) == 2;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t i, n = qemu_plugin_tb_n_insns(tb);
	struct tb_info *info = malloc(sizeof(*info));

	(void)id;
	if (!info) {
		perror("locality: tb_info");
		_exit(2);
	}
	/* Kept for as long as QEMU may run the block: never freed. */
	info->pc = qemu_plugin_tb_vaddr(tb);
	info->n = n;
	info->mode = is_kernel(info->pc) ? K : U;
	info->root = root_of(info->pc);
	info->ret_addr = 0;
	if (n) {
		struct qemu_plugin_insn *last = qemu_plugin_tb_get_insn(tb, n - 1);

		if (is_call(last))
			info->ret_addr = qemu_plugin_insn_vaddr(last) +
					 qemu_plugin_insn_size(last);
	}
	qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS,
					     info);
	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		uint64_t pc = qemu_plugin_insn_vaddr(insn);
		uint32_t mark = marker_of(insn);

		if (mark)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, marker,
					QEMU_PLUGIN_CB_NO_REGS,
					(void *)(uintptr_t)mark);
		if (!mem_cbs)
			continue;
		qemu_plugin_register_vcpu_mem_cb(insn, mem_access,
						 QEMU_PLUGIN_CB_NO_REGS,
						 QEMU_PLUGIN_MEM_RW,
						 (void *)(uintptr_t)pc);
	}
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
	(void)id;
	(void)udata;
	if (measuring)
		end_phase(-1, false);
	put_phase("boot", true, -1, true);
	fclose(out);
}

/* Parse a vCPU list such as "0-3" or "0-1:4:6-7" into @set. */
static int parse_cpus(const char *list, int set)
{
	const char *p = list;

	while (*p) {
		char *end;
		unsigned long a = strtoul(p, &end, 10), b = a;

		if (end == p)
			return -1;
		if (*end == '-') {
			p = end + 1;
			b = strtoul(p, &end, 10);
			if (end == p)
				return -1;
		}
		if (a > b || b >= ncpus)
			return -1;
		for (; a <= b; a++)
			vcpus[a].set = set;
		if (*end == ':')
			end++;
		else if (*end)
			return -1;
		p = end;
	}
	return 0;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
					   const qemu_info_t *info,
					   int argc, char **argv)
{
	unsigned int i;
	int a;

	if (info->version.min > QEMU_PLUGIN_VERSION ||
	    info->version.cur < QEMU_PLUGIN_VERSION) {
		fprintf(stderr, "locality: QEMU plugin API %d..%d, built for %d\n",
			info->version.min, info->version.cur,
			QEMU_PLUGIN_VERSION);
		return -1;
	}
	if (!info->system_emulation) {
		fprintf(stderr, "locality: needs system emulation\n");
		return -1;
	}
	ncpus = info->system.max_vcpus;
	if (ncpus < 1 || ncpus > MAX_CPUS) {
		fprintf(stderr, "locality: %u vCPUs, at most %d\n", ncpus,
			MAX_CPUS);
		return -1;
	}

	for (a = 0; a < argc; a++) {
		char *v = strchr(argv[a], '=');

		if (!v)
			goto bad;
		v++;
		if (!strncmp(argv[a], "out=", 4))
			out_path = v;
		else if (!strncmp(argv[a], "switch=", 7))
			switch_every = strtoull(v, NULL, 10);
		else if (!strncmp(argv[a], "top=", 4))
			top_sites = strtoul(v, NULL, 10);
		else if (!strncmp(argv[a], "server=", 7))
			server_arg = v;
		else if (!strncmp(argv[a], "client=", 7))
			client_arg = v;
		else if (!strncmp(argv[a], "callers=", 8))
			callers = strtoul(v, NULL, 10) != 0;
		else if (!strncmp(argv[a], "roots=", 6))
			roots_path = v;
		else if (!strncmp(argv[a], "mem=", 4))
			mem_cbs = strtoul(v, NULL, 10) != 0;
		else
			goto bad;
	}
	/* Every vCPU not named a client is a server unless server= says. */
	for (i = 0; i < ncpus; i++)
		vcpus[i].set = *server_arg ? SET_OTHER : SET_SERVER;
	if (parse_cpus(server_arg, SET_SERVER) ||
	    parse_cpus(client_arg, SET_CLIENT)) {
		fprintf(stderr, "locality: bad vCPU list server=%s client=%s "
			"(vCPUs 0-%u, lists like 0-3:6)\n", server_arg,
			client_arg, ncpus - 1);
		return -1;
	}

	if (switch_every) {
		*(void **)&qemu_cpu_exit = dlsym(RTLD_DEFAULT, "cpu_exit");
		*(void **)&qemu_get_cpu = dlsym(RTLD_DEFAULT, "qemu_get_cpu");
		if (!qemu_cpu_exit || !qemu_get_cpu) {
			fprintf(stderr, "locality: QEMU exports no cpu_exit/"
				"qemu_get_cpu; use switch=0\n");
			return -1;
		}
	}

	/* Reserved, not committed: only the lines the guest touches cost. */
	holders = mmap(NULL, NLINES * sizeof(*holders), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	writer = mmap(NULL, NLINES * sizeof(*writer), PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (holders == MAP_FAILED || writer == MAP_FAILED) {
		perror("locality: directory");
		return -1;
	}

	if (roots_path && load_roots(roots_path))
		return -1;

	out = fopen(out_path, "w");
	if (!out) {
		perror(out_path);
		return -1;
	}
	fprintf(out, "meter=locality version=1 ncpus=%u switch=%" PRIu64
		" server=%s client=%s line=%u top=%u callers=%d roots=%s mem=%d\n",
		ncpus, switch_every, *server_arg ? server_arg : "all",
		client_arg, 1u << LINE_SHIFT, top_sites, callers,
		roots_path ? roots_path : "none", mem_cbs);
	fflush(out);

	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;

bad:
	fprintf(stderr, "locality: unknown argument %s "
		"(out=, switch=, server=, client=, top=, callers=, roots=, mem=)\n",
		argv[a]);
	return -1;
}
