// SPDX-License-Identifier: GPL-2.0
/*
 * calib: known sharing patterns for calibrating the locality meter.
 *
 * Two threads, pinned to CPUs 0 and 1, run each pattern between the
 * meter's phase markers; the plugin numbers the phases 1, 2, ... in the
 * order below, and this program prints one key=value line per pattern
 * with its phase number, its operation count and the user-mode
 * transfers the meter's model predicts per operation:
 *
 *  shared:  both threads increment one counter, taking turns (a locked
 *           cmpxchg that only succeeds on the thread's turn, so the
 *           counter's line moves at every increment): 1 per increment.
 *  private: each thread increments its own counter on its own line: 0.
 *  mailbox: a producer fills a one-slot mailbox with a locked cmpxchg
 *           and a consumer empties it with xchg: the line goes there and
 *           back once per item, 2 per round trip.
 *  pingpong: the same hand-over with plain loads and stores: each side
 *           spins reading the line (a transfer from the writer), then
 *           writes it (a transfer: it invalidates the other's copy),
 *           4 per round trip.
 *
 * The meter runs every vCPU in turn for a fixed number of instructions,
 * so a thread that waits for the other spins through its share, and each
 * hand-over costs one switch: the patterns are sized for that.
 *
 *   calib [rounds]      (default 2000 turns per thread)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "meter.h"

#define LINE 64

struct line {
	_Alignas(LINE) volatile uint64_t v;
};

static struct line start, done;		/* the hand-shake around a phase */
static struct line shared, mailbox, ball;
static struct line priv[2];
static unsigned long rounds = 2000;
static pthread_barrier_t barrier;
static unsigned int phase;

enum pattern { SHARED, PRIVATE, MAILBOX, PINGPONG, NPATTERNS };

static const char *const name[NPATTERNS] = {
	"shared", "private", "mailbox", "pingpong"
};

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("sched_setaffinity");
		exit(2);
	}
}

/* Run @p as thread @me (0 or 1); returns the operations it counts. */
static unsigned long run(enum pattern p, int me)
{
	unsigned long n, ops = 0;
	uint64_t v;

	switch (p) {
	case SHARED:
		for (n = 0; n < rounds; n++) {
			do
				v = 2 * n + me;
			while (!__atomic_compare_exchange_n(&shared.v, &v, v + 1,
					false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
		}
		ops = rounds;			/* increments */
		break;
	case PRIVATE:
		for (n = 0; n < 100 * rounds; n++)
			__atomic_fetch_add(&priv[me].v, 1, __ATOMIC_SEQ_CST);
		ops = 100 * rounds;		/* increments */
		break;
	case MAILBOX:
		for (n = 1; n <= rounds; n++) {
			if (me == 0) {
				do
					v = 0;
				while (!__atomic_compare_exchange_n(&mailbox.v,
						&v, n, false, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST));
			} else {
				while (!(v = __atomic_exchange_n(&mailbox.v, 0,
						__ATOMIC_SEQ_CST)))
					;
				if (v != n)
					abort();
			}
		}
		ops = me == 0 ? rounds : 0;	/* round trips */
		break;
	case PINGPONG:
		for (n = 0; n < rounds; n++) {
			while (ball.v != 2 * n + me)
				;
			ball.v = 2 * n + me + 1;
		}
		ops = me == 0 ? rounds : 0;	/* round trips */
		break;
	default:
		break;
	}
	return ops;
}

/* One pattern on both threads, between the phase markers. */
static unsigned long measure(enum pattern p, int me)
{
	unsigned long ops;

	pthread_barrier_wait(&barrier);
	if (me == 0) {
		meter_begin();
		start.v = p + 1;
	} else {
		while (start.v != (uint64_t)p + 1)
			;
	}
	ops = run(p, me);
	if (me == 0) {
		while (done.v != (uint64_t)p + 1)
			;
		meter_end();
	} else {
		done.v = p + 1;
	}
	return ops;
}

static void *second(void *arg)
{
	int p;

	(void)arg;
	pin(1);
	for (p = 0; p < NPATTERNS; p++)
		measure(p, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long ops[NPATTERNS] = { 0 };
	pthread_t t;
	int p;

	if (argc > 1)
		rounds = strtoul(argv[1], NULL, 10);
	if (!rounds) {
		fprintf(stderr, "usage: calib [rounds]\n");
		return 2;
	}
	pin(0);
	pthread_barrier_init(&barrier, NULL, 2);
	if (pthread_create(&t, NULL, second, NULL)) {
		perror("pthread_create");
		return 2;
	}
	for (p = 0; p < NPATTERNS; p++)
		ops[p] = measure(p, 0);
	pthread_join(t, NULL);

	/* Both threads count increments; one counts the round trips. */
	ops[SHARED] *= 2;
	ops[PRIVATE] *= 2;
	for (p = 0; p < NPATTERNS; p++) {
		static const double expect[NPATTERNS] = { 1, 0, 2, 4 };

		phase++;
		printf("pattern=%s phase=%u ops=%lu expect_xfer_per_op=%g\n",
		       name[p], phase, ops[p], expect[p]);
	}
	return 0;
}
