// SPDX-License-Identifier: GPL-2.0
/*
 * fastsocket.ko - control plane for the Fastsocket data path.
 *
 * Per network namespace it registers:
 *   net.fastsocket.enabled      master switch (0/1)
 *   net.fastsocket.<feature>    one switch per feature (0/1); a feature
 *                               whose data path this kernel lacks (a
 *                               kernel with part of the series) stays 0:
 *                               writing 1 fails with EOPNOTSUPP
 *   net.fastsocket.available    read only: the features this kernel has
 *   net.fastsocket.ports        listener port set, e.g. "80,443,8000-8100"
 *   net.fastsocket.listen_reserve_us, listen_reserve_qlen
 *                               how long, and up to what queue length, a
 *                               queued connection is kept for its own
 *                               CPU's acceptor
 *   net.fastsocket.steering_class_bits
 *                               port bits that make a steering class
 *   /proc/net/fastsocket        per-CPU statistics
 * and arms in the kernel exactly the features that are switched on while
 * the master switch is on. Unloading disarms every namespace; settings are
 * not kept across a reload.
 *
 * A new namespace starts with everything off, unless the module was loaded
 * with netns_inherit=1: then it starts as a copy of init_net's settings at
 * the time of its creation (later changes to either stay separate).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ctype.h>
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sysctl.h>
#include <net/fastsocket.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

/*
 * sysctl slots: the master switch, then one per feature, then the ports,
 * then the tunables of the local listen table
 */
enum {
	FSM_ENABLED,
	FSM_FEATURE0,
	FSM_PORTS = FSM_FEATURE0 + FASTSOCKET_F_MAX,
	FSM_RESERVE_US,
	FSM_RESERVE_QLEN,
	FSM_CLASS_BITS,
	FSM_AVAILABLE,
	FSM_NR_SYSCTL,
};

static const unsigned int fsm_reserve_us_max = FASTSOCKET_RESERVE_US_MAX;
static const unsigned int fsm_reserve_qlen_max = 65535;
static const unsigned int fsm_class_bits_max = FASTSOCKET_CLASS_BITS_MAX;

/* net.fastsocket.available: names of FASTSOCKET_F_AVAILABLE, set at init */
static char fsm_available[64];

struct fsm_net {
	int			enabled;
	int			feature[FASTSOCKET_F_MAX];
	/* serialises switch writes with the arming they cause */
	struct mutex		lock;
	struct ctl_table_header	*sysctl;
};

static unsigned int fsm_net_id __read_mostly;

static bool netns_inherit;
module_param(netns_inherit, bool, 0444);
MODULE_PARM_DESC(netns_inherit,
		 "new network namespaces copy init_net's settings (default: N)");

static struct fsm_net *fsm_pernet(struct net *net)
{
	return net_generic(net, fsm_net_id);
}

/* Context: process; fsm->lock held. */
static int fsm_apply(struct net *net, struct fsm_net *fsm)
{
	unsigned long mask = 0;
	int f;

	if (fsm->enabled)
		for (f = 0; f < FASTSOCKET_F_MAX; f++)
			if (fsm->feature[f])
				mask |= BIT(f);
	return fastsocket_net_arm(net, mask);
}

/*
 * A 0/1 switch: parse and range-check into a copy, so that bad input
 * changes nothing, then arm what the new value asks for.
 * Context: process (sysctl write or read).
 */
static int fsm_switch_handler(const struct ctl_table *table, int write,
			      void *buffer, size_t *lenp, loff_t *ppos)
{
	struct net *net = table->extra2;
	struct fsm_net *fsm = fsm_pernet(net);
	int *slot = table->data;
	struct ctl_table tmp = *table;
	int val, err, f = slot - fsm->feature;

	mutex_lock(&fsm->lock);
	val = *slot;
	tmp.data = &val;
	tmp.extra1 = SYSCTL_ZERO;
	tmp.extra2 = SYSCTL_ONE;
	err = proc_dointvec_minmax(&tmp, write, buffer, lenp, ppos);
	/* A switch without a data path behind it cannot be turned on. */
	if (!err && write && val && f >= 0 && f < FASTSOCKET_F_MAX &&
	    !(FASTSOCKET_F_AVAILABLE & BIT(f)))
		err = -EOPNOTSUPP;
	if (!err && write && val != *slot) {
		int old = *slot;

		*slot = val;
		err = fsm_apply(net, fsm);
		if (err)
			*slot = old;
	}
	mutex_unlock(&fsm->lock);
	return err;
}

/*
 * An unsigned tunable with a range (extra1, extra2): one decimal number,
 * optionally surrounded by white space. proc_douintvec_minmax() alone
 * would take "1 2x" as 1; here anything else fails with EINVAL and
 * changes nothing. The store is its WRITE_ONCE().
 * Context: process (sysctl write or read).
 */
static int fsm_uint_handler(const struct ctl_table *table, int write,
			    void *buffer, size_t *lenp, loff_t *ppos)
{
	const char *p = buffer;
	size_t i = 0, len = *lenp;

	if (write) {
		while (len && isspace(p[len - 1]))
			len--;
		while (i < len && isspace(p[i]))
			i++;
		if (i == len)
			return -EINVAL;
		for (; i < len; i++)
			if (!isdigit(p[i]))
				return -EINVAL;
	}
	return proc_douintvec_minmax(table, write, buffer, lenp, ppos);
}

static const struct ctl_table fsm_sysctl_template[FSM_NR_SYSCTL] = {
	[FSM_ENABLED] = {
		.procname	= "enabled",
		.maxlen		= sizeof(int),
		.mode		= 0644,
		.proc_handler	= fsm_switch_handler,
	},
	[FSM_FEATURE0 + FASTSOCKET_F_LISTEN] = {
		.procname	= "listen",
		.maxlen		= sizeof(int),
		.mode		= 0644,
		.proc_handler	= fsm_switch_handler,
	},
	[FSM_FEATURE0 + FASTSOCKET_F_ESTABLISHED] = {
		.procname	= "established",
		.maxlen		= sizeof(int),
		.mode		= 0644,
		.proc_handler	= fsm_switch_handler,
	},
	[FSM_FEATURE0 + FASTSOCKET_F_STEERING] = {
		.procname	= "steering",
		.maxlen		= sizeof(int),
		.mode		= 0644,
		.proc_handler	= fsm_switch_handler,
	},
	[FSM_FEATURE0 + FASTSOCKET_F_VFS_LIGHT] = {
		.procname	= "vfs_light",
		.maxlen		= sizeof(int),
		.mode		= 0644,
		.proc_handler	= fsm_switch_handler,
	},
	[FSM_PORTS] = {
		.procname	= "ports",
		.maxlen		= FASTSOCKET_PORTS,
		.mode		= 0644,
		.proc_handler	= proc_do_large_bitmap,
	},
	/* Stored with WRITE_ONCE() by proc_douintvec_minmax(), paired
	 * with READ_ONCE() in fastsocket_lq_why().
	 */
	[FSM_RESERVE_US] = {
		.procname	= "listen_reserve_us",
		.maxlen		= sizeof(unsigned int),
		.mode		= 0644,
		.proc_handler	= fsm_uint_handler,
		.extra1		= SYSCTL_ZERO,
		.extra2		= (void *)&fsm_reserve_us_max,
	},
	[FSM_RESERVE_QLEN] = {
		.procname	= "listen_reserve_qlen",
		.maxlen		= sizeof(unsigned int),
		.mode		= 0644,
		.proc_handler	= fsm_uint_handler,
		.extra1		= SYSCTL_ZERO,
		.extra2		= (void *)&fsm_reserve_qlen_max,
	},
	/* Stored with WRITE_ONCE() by proc_douintvec_minmax(), paired
	 * with READ_ONCE() in fastsocket_port_cpu() and
	 * fastsocket_connect_class().
	 */
	[FSM_CLASS_BITS] = {
		.procname	= "steering_class_bits",
		.maxlen		= sizeof(unsigned int),
		.mode		= 0644,
		.proc_handler	= fsm_uint_handler,
		.extra1		= SYSCTL_ZERO,
		.extra2		= (void *)&fsm_class_bits_max,
	},
	[FSM_AVAILABLE] = {
		.procname	= "available",
		.data		= fsm_available,
		.maxlen		= sizeof(fsm_available),
		.mode		= 0444,
		.proc_handler	= proc_dostring,
	},
};

/*
 * /proc/net/fastsocket: a header line, one line per online CPU (and per
 * offline CPU whose counters are not all zero), then the total over every
 * possible CPU, so that counts of a CPU taken offline stay in it.
 */
static int fsm_stats_show(struct seq_file *seq, void *v)
{
	struct net *net = seq_file_single_net(seq);
	struct fastsocket_net *fn = fastsocket_pernet(net);
	unsigned long total[FASTSOCKET_STAT_MAX] = {};
	int cpu, s;

	seq_puts(seq, "cpu");
	for (s = 0; s < FASTSOCKET_STAT_MAX; s++)
		seq_printf(seq, " %s", fastsocket_stat_names[s]);
	seq_putc(seq, '\n');

	for_each_possible_cpu(cpu) {
		const struct fastsocket_stats *st = per_cpu_ptr(fn->stats, cpu);
		unsigned long c[FASTSOCKET_STAT_MAX], any = 0;

		for (s = 0; s < FASTSOCKET_STAT_MAX; s++) {
			/* Pairs with this_cpu_inc() in fastsocket_stat_inc(). */
			c[s] = READ_ONCE(st->cnt[s]);
			total[s] += c[s];
			any |= c[s];
		}
		if (!cpu_online(cpu) && !any)
			continue;
		seq_printf(seq, "%d", cpu);
		for (s = 0; s < FASTSOCKET_STAT_MAX; s++)
			seq_printf(seq, " %lu", c[s]);
		seq_putc(seq, '\n');
	}

	seq_puts(seq, "total");
	for (s = 0; s < FASTSOCKET_STAT_MAX; s++)
		seq_printf(seq, " %lu", total[s]);
	seq_putc(seq, '\n');
	return 0;
}

/*
 * Start @net as a copy of init_net's settings.
 * Context: process, pernet_ops_rwsem held; @net is not visible yet.
 */
static void fsm_inherit(struct net *net, struct fsm_net *fsm)
{
	struct fsm_net *ifsm = fsm_pernet(&init_net);

	mutex_lock(&ifsm->lock);
	fsm->enabled = ifsm->enabled;
	memcpy(fsm->feature, ifsm->feature, sizeof(fsm->feature));
	bitmap_copy(fastsocket_pernet(net)->ports,
		    fastsocket_pernet(&init_net)->ports, FASTSOCKET_PORTS);
	/* Pair with READ_ONCE() in fastsocket_lq_why(). */
	WRITE_ONCE(fastsocket_pernet(net)->reserve_us,
		   READ_ONCE(fastsocket_pernet(&init_net)->reserve_us));
	WRITE_ONCE(fastsocket_pernet(net)->reserve_qlen,
		   READ_ONCE(fastsocket_pernet(&init_net)->reserve_qlen));
	/* Pairs with READ_ONCE() in fastsocket_port_cpu(). */
	WRITE_ONCE(fastsocket_pernet(net)->class_bits,
		   READ_ONCE(fastsocket_pernet(&init_net)->class_bits));
	mutex_unlock(&ifsm->lock);

	mutex_lock(&fsm->lock);
	fsm_apply(net, fsm);
	mutex_unlock(&fsm->lock);
}

/* Context: process, pernet_ops_rwsem held. */
static int __net_init fsm_net_init(struct net *net)
{
	struct fastsocket_net *fn = fastsocket_pernet(net);
	struct fsm_net *fsm = fsm_pernet(net);
	struct ctl_table *tbl;
	int i;

	mutex_init(&fsm->lock);
	tbl = kmemdup(fsm_sysctl_template, sizeof(fsm_sysctl_template),
		      GFP_KERNEL);
	if (!tbl)
		return -ENOMEM;
	tbl[FSM_ENABLED].data = &fsm->enabled;
	for (i = 0; i < FASTSOCKET_F_MAX; i++)
		tbl[FSM_FEATURE0 + i].data = &fsm->feature[i];
	for (i = 0; i < FSM_PORTS; i++)
		tbl[i].extra2 = net;
	tbl[FSM_PORTS].data = &fn->ports;
	tbl[FSM_RESERVE_US].data = &fn->reserve_us;
	tbl[FSM_RESERVE_QLEN].data = &fn->reserve_qlen;
	tbl[FSM_CLASS_BITS].data = &fn->class_bits;

	fsm->sysctl = register_net_sysctl_sz(net, "net/fastsocket", tbl,
					     ARRAY_SIZE(fsm_sysctl_template));
	if (!fsm->sysctl)
		goto err_free;
	if (!proc_create_net_single("fastsocket", 0444, net->proc_net,
				    fsm_stats_show, NULL))
		goto err_sysctl;
	if (netns_inherit && !net_eq(net, &init_net))
		fsm_inherit(net, fsm);
	return 0;

err_sysctl:
	unregister_net_sysctl_table(fsm->sysctl);
err_free:
	kfree(tbl);
	return -ENOMEM;
}

/*
 * Disarm @net and forget its settings, so that a reload starts from the
 * defaults. Context: process, pernet_ops_rwsem held.
 */
static void __net_exit fsm_net_exit(struct net *net)
{
	struct fastsocket_net *fn = fastsocket_pernet(net);
	struct fsm_net *fsm = fsm_pernet(net);
	const struct ctl_table *tbl = fsm->sysctl->ctl_table_arg;

	remove_proc_entry("fastsocket", net->proc_net);
	unregister_net_sysctl_table(fsm->sysctl);
	kfree(tbl);
	fastsocket_net_arm(net, 0);
	bitmap_zero(fn->ports, FASTSOCKET_PORTS);
	/* Pair with READ_ONCE() in fastsocket_lq_why(). */
	WRITE_ONCE(fn->reserve_us, FASTSOCKET_RESERVE_US);
	WRITE_ONCE(fn->reserve_qlen, FASTSOCKET_RESERVE_QLEN);
	/* Pairs with READ_ONCE() in fastsocket_port_cpu(). */
	WRITE_ONCE(fn->class_bits, fastsocket_class_bits_default());
	mutex_destroy(&fsm->lock);
}

static struct pernet_operations fsm_net_ops = {
	.init	= fsm_net_init,
	.exit	= fsm_net_exit,
	.id	= &fsm_net_id,
	.size	= sizeof(struct fsm_net),
};

static int __init fsm_init(void)
{
	int err, f;

	for (f = 0; f < FASTSOCKET_F_MAX; f++)
		if (FASTSOCKET_F_AVAILABLE & BIT(f))
			snprintf(fsm_available + strlen(fsm_available),
				 sizeof(fsm_available) - strlen(fsm_available),
				 "%s%s", *fsm_available ? " " : "",
				 fastsocket_feature_names[f]);
	err = register_pernet_subsys(&fsm_net_ops);
	if (err)
		return err;
	pr_info("loaded: features off until net.fastsocket.enabled=1\n");
	return 0;
}

static void __exit fsm_exit(void)
{
	unregister_pernet_subsys(&fsm_net_ops);
	pr_info("unloaded: data path disarmed\n");
}

module_init(fsm_init);
module_exit(fsm_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Fastsocket control plane: net.fastsocket sysctls and statistics");
