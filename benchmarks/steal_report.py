#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""What a connection's CPU did while the connection waited for its acceptor.

Reads the sched traces of benchmarks/trace_mark.sh ("--mark
'trace_mark.sh sched'" on placement.sh) from RUN/sched/*.trace. For each
server-side connection (source port --port) it takes the CPU whose
softirq made it ESTABLISHED (the child's home) and the CPU of the
server's close() (ESTABLISHED -> FIN_WAIT1 when the server closes first,
CLOSE_WAIT -> LAST_ACK when the client does), the CPU of the worker that
accepted it. For the connections closed on another CPU it reports how the
home CPU spent the time from ESTABLISHED to that close(): in softirq, and
in each task or idle (softirqs run on top of either, so the shares
overlap). Over the run (the span of the connections'
events) it gives the server CPUs' time in each softirq and their softirq
stretches (runs less than 20 us apart merged) longer than 2 ms, the
stretches during which a pinned worker cannot come back to accept().

Output: one key=value line per trace, then the home CPUs' time shares.
"""
import argparse
import collections
import glob
import os
import re
import sys

LINE = re.compile(r'^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+): (\w+): (.*)$')
VEC = re.compile(r'action=(\w+)')
NEXT = re.compile(r'next_comm=(.*?) next_pid=\d+')
CLOSE_STATES = ('TCP_FIN_WAIT1', 'TCP_LAST_ACK')


def parse(path, port):
    """Connections by client port, sched switches and softirq runs by CPU."""
    conns = collections.defaultdict(dict)
    switches = collections.defaultdict(list)
    softirqs = collections.defaultdict(list)
    entered = {}
    with open(path, errors='replace') as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            _, _, cpu, t, name, rest = m.groups()
            cpu, t = int(cpu), float(t)
            if name == 'inet_sock_set_state':
                d = dict(kv.split('=', 1) for kv in rest.split() if '=' in kv)
                if d.get('sport') != port:
                    continue
                c = conns[d.get('dport')]
                if (d.get('newstate') == 'TCP_ESTABLISHED' and
                        d.get('oldstate') == 'TCP_SYN_RECV' and 'est' not in c):
                    c['est'] = (t, cpu)
                elif d.get('newstate') in CLOSE_STATES and 'close' not in c:
                    c['close'] = (t, cpu)
            elif name == 'sched_switch':
                n = NEXT.search(rest)
                if n:
                    switches[cpu].append((t, n.group(1)))
            elif name == 'softirq_entry':
                v = VEC.search(rest)
                entered[cpu] = (t, v.group(1) if v else '?')
            elif name == 'softirq_exit' and cpu in entered:
                t0, v = entered.pop(cpu)
                softirqs[cpu].append((t0, t, v))
    return conns, switches, softirqs


def overlap(runs, t0, t1):
    return sum(max(0.0, min(b, t1) - max(a, t0)) for a, b in runs)


def task_shares(switches, t0, t1):
    """Time per running task name on one CPU within [t0, t1]."""
    out = collections.Counter()
    cur, last = '?', t0
    for t, name in switches:
        if t <= t0:
            cur = name
            continue
        if t >= t1:
            break
        out[cur] += t - last
        cur, last = name, t
    out[cur] += t1 - last
    return out


def idle(name):
    return name.startswith('swapper')


def report(path, port, top, server_cpus):
    conns, switches, softirqs = parse(path, port)
    done = [c for c in conns.values() if 'est' in c and 'close' in c]
    if not done:
        print(f'trace={path} conns=0')
        return
    moved = [c for c in done if c['est'][1] != c['close'][1]]
    homes = sorted(server_cpus or {c['est'][1] for c in done})
    runs = collections.defaultdict(list)
    for cpu, r in softirqs.items():
        runs[cpu] = [(a, b) for a, b, _ in r]
    # how the home CPU spent each moved connection's wait
    span = soft = idle_t = 0.0
    tasks = collections.Counter()
    for c in moved:
        (t0, home), (t1, _) = c['est'], c['close']
        span += t1 - t0
        s = overlap(runs[home], t0, t1)
        soft += s
        for name, v in task_shares(switches[home], t0, t1).items():
            if idle(name):
                idle_t += v
            else:
                tasks[name] += v
    # the server CPUs over the run
    w0 = min(c['est'][0] for c in done)
    w1 = max(c['close'][0] for c in done)
    by_vec = collections.Counter()
    stretches = longest = 0
    for cpu in homes:
        merged = []
        for a, b, v in sorted(softirqs[cpu]):
            if b < w0 or a > w1:
                continue
            by_vec[v] += min(b, w1) - max(a, w0)
            if merged and a - merged[-1][1] < 20e-6:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        stretches += sum(1 for a, b in merged if b - a > 2e-3)
        longest = max([longest] + [b - a for a, b in merged])
    cpu_time = len(homes) * (w1 - w0)
    waits = sorted(c['close'][0] - c['est'][0] for c in moved)
    p50 = waits[len(waits) // 2] * 1e6 if waits else 0
    fields = [f'trace={os.path.basename(path)}', f'conns={len(done)}',
              f'moved={len(moved)}', f'moved_wait_p50_us={p50:.0f}',
              f'home_softirq_share={soft / span if span else 0:.3f}',
              f'home_idle_share={idle_t / span if span else 0:.3f}',
              f'server_cpus={len(homes)}', f'window_s={w1 - w0:.3f}',
              f'softirq_stretches_over_2ms={stretches}',
              f'softirq_longest_ms={longest * 1e3:.1f}']
    fields += [f'softirq_{v.lower()}_share={s / cpu_time:.3f}'
               for v, s in by_vec.most_common()]
    print(' '.join(fields))
    for name, v in tasks.most_common(top):
        print(f'  home CPU ran {name}: {v / span:.3f} of the waits')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('run', help='a vm-run output directory')
    ap.add_argument('--port', default='8080', help="the server's port")
    ap.add_argument('--top', type=int, default=5, help='tasks listed')
    a = ap.parse_args()
    paths = sorted(glob.glob(os.path.join(a.run, 'sched', '*.trace')))
    if not paths:
        sys.exit(f'steal_report: no {a.run}/sched/*.trace '
                 "(placement.sh --mark 'trace_mark.sh sched')")
    # placement.sh's record names the server CPUs
    server_cpus = set()
    try:
        with open(os.path.join(a.run, 'placement.txt')) as f:
            m = re.search(r'server_cpus=([\d,]+)', f.read())
        if m:
            server_cpus = {int(c) for c in m.group(1).split(',')}
    except OSError:
        pass
    for p in paths:
        report(p, a.port, a.top, server_cpus)


if __name__ == '__main__':
    main()
