# SPDX-License-Identifier: GPL-2.0
"""The Python reader of benchmarks/configs.md, the one list of benchmark
configurations (configs.sh is the shell one).

    import configs
    for c in configs.load("loopback"): c["config"], c["fastsocket"], ...

Each row is a dict keyed by the table's column names, lower case, spaces
as underscores: config, harness, fastsocket, net, server, client,
ratio_to, set_up_from, what_it_is.
"""

import os
import re

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs.md")


def load(harness=None, path=TABLE):
    """The rows in table order; with HARNESS, those whose harness is it or
    'both'."""
    rows, head = [], None
    with open(path) as f:
        for line in f:
            if not line.startswith("|"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if head is None:
                head = [re.sub(r"\W+", "_", c.lower()).strip("_")
                        for c in cells]
                continue
            if not re.match(r"^[a-z][a-z0-9_]*$", cells[0]):
                continue
            row = dict(zip(head, cells))
            if harness and row["harness"] not in ("both", harness):
                continue
            rows.append(row)
    return rows


def names(harness=None):
    return [r["config"] for r in load(harness)]


def by_name(harness=None):
    return {r["config"]: r for r in load(harness)}
