import re
root='/work/main/build/linux/'
def edit(path, old, new, count=1):
    p=root+path; s=open(p).read()
    assert s.count(old)==count, (path, old[:60], s.count(old))
    s=s.replace(old,new); open(p,'w').write(s)

edit('include/net/ip_fib.h', """	struct rtable __rcu * __percpu *nhc_pcpu_rth_output;
	struct rtable __rcu     *nhc_rth_input;
""", """	struct rtable __rcu * __percpu *nhc_pcpu_rth_output;
	struct rtable __rcu     *nhc_rth_input;
#if IS_ENABLED(CONFIG_FASTSOCKET)
	/* Fastsocket: each CPU's local input route, made on first use */
	struct rtable __rcu * __percpu *nhc_pcpu_rth_input;
#endif
""")

edit('net/ipv4/fib_semantics.c', """	rt_fibinfo_free_cpus(nhc->nhc_pcpu_rth_output);
	rt_fibinfo_free(&nhc->nhc_rth_input);
	free_nh_exceptions(nhc);""", """	rt_fibinfo_free_cpus(nhc->nhc_pcpu_rth_output);
	rt_fibinfo_free(&nhc->nhc_rth_input);
#if IS_ENABLED(CONFIG_FASTSOCKET)
	rt_fibinfo_free_cpus(nhc->nhc_pcpu_rth_input);
#endif
	free_nh_exceptions(nhc);""")

edit('net/ipv4/route.c', """#include "fib_lookup.h"
""", """#include <net/fastsocket.h>
#include "fib_lookup.h"
""")

edit('net/ipv4/route.c', """/* Update the PMTU of an exception when:""", """/*
 * Mark stale each CPU's route in @rtp, a nexthop's per-CPU route cache.
 * Context: softirq or process, with fnhe_lock held; RCU read side.
 */
static void rt_pcpu_mark_stale(struct rtable __rcu * __percpu *rtp)
{
	struct rtable *rt;
	int i;

	if (!rtp)
		return;
	for_each_possible_cpu(i) {
		rt = rcu_dereference(*per_cpu_ptr(rtp, i));
		if (rt)
			rt->dst.obsolete = DST_OBSOLETE_KILL;
	}
}

/* Update the PMTU of an exception when:""")

edit('net/ipv4/route.c', """		rt = rcu_dereference(nhc->nhc_rth_input);
		if (rt)
			rt->dst.obsolete = DST_OBSOLETE_KILL;

		for_each_possible_cpu(i) {
			struct rtable __rcu **prt;

			prt = per_cpu_ptr(nhc->nhc_pcpu_rth_output, i);
			rt = rcu_dereference(*prt);
			if (rt)
				rt->dst.obsolete = DST_OBSOLETE_KILL;
		}
	}
""", """		rt = rcu_dereference(nhc->nhc_rth_input);
		if (rt)
			rt->dst.obsolete = DST_OBSOLETE_KILL;

		rt_pcpu_mark_stale(nhc->nhc_pcpu_rth_output);
#if IS_ENABLED(CONFIG_FASTSOCKET)
		/* Pairs with the cmpxchg() in rt_local_input_slot(). */
		rt_pcpu_mark_stale(READ_ONCE(nhc->nhc_pcpu_rth_input));
#endif
	}
""")

edit('net/ipv4/route.c', """static bool rt_cache_route(struct fib_nh_common *nhc, struct rtable *rt)
{
	struct rtable *orig, *prev, **p;
	bool ret = true;

	if (rt_is_input_route(rt)) {
		p = (struct rtable **)&nhc->nhc_rth_input;
	} else {""", """#if IS_ENABLED(CONFIG_FASTSOCKET)
/*
 * Where @nhc caches its local input route. With "established" armed in
 * @net, each CPU has its own (made on first use), as IPv4 output routes
 * and IPv6 routes have already: the connections of a CPU then take and
 * drop their references to it (sk_rx_dst, skb_dst_force()) on lines that
 * no other CPU writes. Otherwise, or if the per-CPU slots cannot be
 * allocated, the one shared slot.
 * Context: softirq, RCU read side.
 */
static struct rtable __rcu **rt_local_input_slot(struct net *net,
						 struct fib_nh_common *nhc)
{
	struct rtable __rcu * __percpu *pcpu, * __percpu *old;

	if (!static_branch_unlikely(&fastsocket_established_key) ||
	    !fastsocket_net_armed(net, FASTSOCKET_F_ESTABLISHED))
		return &nhc->nhc_rth_input;
	/* Pairs with the cmpxchg() below. */
	pcpu = READ_ONCE(nhc->nhc_pcpu_rth_input);
	if (!pcpu) {
		pcpu = alloc_percpu_gfp(struct rtable __rcu *, GFP_ATOMIC);
		if (!pcpu)
			return &nhc->nhc_rth_input;
		/*
		 * Publishes the zeroed slots; pairs with the READ_ONCE()s
		 * above and in update_or_create_fnhe(). They are freed with
		 * the nexthop, in fib_nh_common_release().
		 */
		old = cmpxchg(&nhc->nhc_pcpu_rth_input, NULL, pcpu);
		if (old) {
			free_percpu(pcpu);
			pcpu = old;
		}
	}
	return raw_cpu_ptr(pcpu);
}

/*
 * Where @nhc caches input route @rt: local routes as rt_local_input_slot()
 * says, forwarded ones in the shared slot.
 * Context: softirq, RCU read side.
 */
static struct rtable __rcu **rt_input_slot(struct fib_nh_common *nhc,
					   const struct rtable *rt)
{
	if (static_branch_unlikely(&fastsocket_established_key) &&
	    (rt->rt_flags & RTCF_LOCAL))
		return rt_local_input_slot(dev_net(rt->dst.dev), nhc);
	return &nhc->nhc_rth_input;
}
#else
static struct rtable __rcu **rt_local_input_slot(struct net *net,
						 struct fib_nh_common *nhc)
{
	return &nhc->nhc_rth_input;
}

static struct rtable __rcu **rt_input_slot(struct fib_nh_common *nhc,
					   const struct rtable *rt)
{
	return &nhc->nhc_rth_input;
}
#endif

static bool rt_cache_route(struct fib_nh_common *nhc, struct rtable *rt)
{
	struct rtable *orig, *prev, **p;
	bool ret = true;

	if (rt_is_input_route(rt)) {
		p = (struct rtable **)rt_input_slot(nhc, rt);
	} else {""")

edit('net/ipv4/route.c', """		struct fib_nh_common *nhc = FIB_RES_NHC(*res);

		rth = rcu_dereference(nhc->nhc_rth_input);
		if (rt_cache_valid(rth)) {
			skb_dst_set_noref(skb, &rth->dst);
			err = 0;
			goto out;
		}
	}

	rth = rt_dst_alloc(ip_rt_get_dev(net, res),""", """		struct fib_nh_common *nhc = FIB_RES_NHC(*res);

		rth = rcu_dereference(*rt_local_input_slot(net, nhc));
		if (rt_cache_valid(rth)) {
			skb_dst_set_noref(skb, &rth->dst);
			err = 0;
			goto out;
		}
	}

	rth = rt_dst_alloc(ip_rt_get_dev(net, res),""")

p=root+'net/ipv4/route.c'; s=open(p).read()
i=s.index('static void update_or_create_fnhe')
j=s.index('\tunsigned int i;\n', i)
assert j-i < 600
s=s[:j]+s[j+len('\tunsigned int i;\n'):]
open(p,'w').write(s)
