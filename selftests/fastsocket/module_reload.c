// SPDX-License-Identifier: GPL-2.0
/*
 * Unload and reload fastsocket.ko while client and server threads run a
 * loopback short-connection workload against an enabled listener, the
 * clients' sockets enabled too (steering picks their ports while it is
 * armed, and VFS-light with the accepted ones): every connection
 * completes, none is reset, and the counters moved.
 *
 * FS_MODULE names the module file; the test leaves the module loaded.
 */
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>

#include "fs_util.h"
#include "kselftest_harness.h"

#define NR_CLIENTS	4
#define NR_RELOADS	6

struct workload {
	int		lfd;
	volatile int	stop;
	int		done[NR_CLIENTS];
	int		failed[NR_CLIENTS];
	int		first_errno[NR_CLIENTS];
	int		served;
};

static void *server(void *arg)
{
	struct workload *w = arg;
	char buf[8];
	int s;

	for (;;) {
		s = accept(w->lfd, NULL, NULL);
		if (s < 0)
			break;	/* listener shut down: all clients are done */
		if (read(s, buf, sizeof(buf)) == 4 && write(s, "pong", 4) == 4)
			__atomic_add_fetch(&w->served, 1, __ATOMIC_RELAXED);
		close(s);
	}
	return NULL;
}

struct client_arg {
	struct workload	*w;
	int		id;
};

static void *client(void *arg)
{
	struct client_arg *ca = arg;
	struct workload *w = ca->w;
	char buf[8];
	int c;

	while (!w->stop) {
		c = fs_connect_on(w->lfd);
		if (c < 0 || write(c, "ping", 4) != 4 ||
		    read(c, buf, sizeof(buf)) != 4 || memcmp(buf, "pong", 4)) {
			if (!w->failed[ca->id]++)
				w->first_errno[ca->id] = errno;
		} else {
			w->done[ca->id]++;
		}
		if (c >= 0)
			close(c);
	}
	return NULL;
}

FIXTURE(reload) {
	struct workload w;
};

FIXTURE_SETUP(reload)
{
	memset(&self->w, 0, sizeof(self->w));
	self->w.lfd = -1;
	if (!getenv("FS_MODULE"))
		SKIP(return, "FS_MODULE not set");
	ASSERT_EQ(0, fs_load_module());
	ASSERT_EQ(0, fs_new_netns());
	ASSERT_EQ(0, fs_enable_all());
	self->w.lfd = fs_listen(AF_INET, 1024, TCP_FASTSOCKET_ON);
	ASSERT_LE(0, self->w.lfd);
}

FIXTURE_TEARDOWN(reload)
{
	if (self->w.lfd >= 0)
		close(self->w.lfd);
	fs_load_module();
}

TEST_F(reload, unload_under_load_loses_nothing)
{
	struct client_arg ca[NR_CLIENTS];
	pthread_t srv, cl[NR_CLIENTS];
	struct timespec pause = { 0, 30 * 1000 * 1000 };
	long before, classed, made, kept, total = 0, failed = 0;
	int i;

	before = fs_stat("listen_global", -1);
	ASSERT_LE(0, before);
	classed = fs_stat("connect_class", -1);
	made = fs_stat("vfs_socket", -1);
	kept = fs_stat("vfs_kept", -1);
	ASSERT_EQ(0, pthread_create(&srv, NULL, server, &self->w));
	for (i = 0; i < NR_CLIENTS; i++) {
		ca[i] = (struct client_arg){ .w = &self->w, .id = i };
		ASSERT_EQ(0, pthread_create(&cl[i], NULL, client, &ca[i]));
	}

	for (i = 0; i < NR_RELOADS; i++) {
		nanosleep(&pause, NULL);
		ASSERT_EQ(0, fs_unload_module());
		EXPECT_FALSE(fs_present());
		nanosleep(&pause, NULL);
		ASSERT_EQ(0, fs_load_module());
		/* Settings start from the defaults after a reload. */
		EXPECT_EQ(0, fs_sysctl_int("enabled"));
		ASSERT_EQ(0, fs_enable_all());
	}
	nanosleep(&pause, NULL);

	self->w.stop = 1;
	for (i = 0; i < NR_CLIENTS; i++) {
		pthread_join(cl[i], NULL);
		total += self->w.done[i];
		failed += self->w.failed[i];
		if (self->w.failed[i])
			TH_LOG("client %d: %d failed, first errno %d", i,
			       self->w.failed[i], self->w.first_errno[i]);
	}
	shutdown(self->w.lfd, SHUT_RDWR);
	pthread_join(srv, NULL);

	TH_LOG("%ld connections over %d reloads", total, NR_RELOADS);
	EXPECT_EQ(0, failed);
	EXPECT_LT(NR_RELOADS, total);
	EXPECT_EQ(total, self->w.served);
	/* The last arming counted the connections made since. */
	EXPECT_LT(before, fs_stat("listen_global", -1));
	if (fs_feature_available("steering"))
		EXPECT_LT(classed, fs_stat("connect_class", -1));
	/* Both ends' sockets were VFS-light, and enabled ones kept pairs. */
	if (fs_feature_available("vfs_light")) {
		EXPECT_LT(made, fs_stat("vfs_socket", -1));
		EXPECT_LT(kept, fs_stat("vfs_kept", -1));
	}
}

TEST_HARNESS_MAIN
