/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Phase markers for the locality meter (benchmarks/meter/locality.c).
 *
 * A marker is the 8-byte no-op "nopl disp32(%rax,%rax,1)", bytes
 * 0f 1f 84 00 followed by a 32-bit displacement. Real CPUs (and QEMU
 * without the plugin) execute it as a NOP and never dereference the
 * operand; the plugin recognises the displacement when it translates the
 * instruction. The top three bytes are the meter's signature, the low
 * byte the command.
 *
 * meter_begin() starts a measured phase: the plugin zeroes the phase
 * counters and counts from there on, on every vCPU. meter_end() closes
 * it and the plugin writes the phase's counts and top sites. Phases are
 * numbered 1, 2, ... in the order they begin in a boot, so a guest
 * program that is the only one marking phases knows each phase's number
 * and reports its own operation count (connections, rounds) next to it.
 */
#ifndef METER_H
#define METER_H

#define METER_SIGNATURE	0x6d6574	/* "met" */
#define METER_BEGIN	0x6d657401
#define METER_END	0x6d657402

#define METER_STR_(x) #x
#define METER_STR(x) METER_STR_(x)

#if defined(__x86_64__)
#define METER_MARK(cmd) \
	__asm__ __volatile__(".byte 0x0f, 0x1f, 0x84, 0x00\n\t" \
			     ".long " METER_STR(cmd) ::: "memory")
#else
#define METER_MARK(cmd) __asm__ __volatile__("" ::: "memory")
#endif

static inline void meter_begin(void)
{
	METER_MARK(METER_BEGIN);
}

static inline void meter_end(void)
{
	METER_MARK(METER_END);
}

#endif /* METER_H */
