"""What every scenario script of `cargo xtask bench` shares: the line format and RSS.

Each figure is printed as one line of JSON, the same format the Rust benches print
(described in docs/benchmarks.md); any other output is for people and is ignored.
"""

import json


def emit(id, scenario, title, params, metric, better, value):
    print(json.dumps({
        "id": id,
        "scenario": scenario,
        "title": title,
        "params": params,
        "metric": metric,
        "better": better,
        "value": value,
    }), flush=True)


def count(n):
    """100000 as 100k, 1000000 as 1M (as the Rust benches write them)."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def percentile(sorted_values, p):
    return sorted_values[round((len(sorted_values) - 1) * p)]
