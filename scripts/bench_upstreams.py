#!/usr/bin/env python3
"""The same proxies in front of two upstream builds, interleaved in one run.

    python3 scripts/bench_upstreams.py OLD_UPSTREAM [--workload get_1k]
        [--conns 32] [--repeats 5] [--duration 3]

For a change to `examples/bench_upstream.rs`: the upstream shares CPU 0 with
the load generator, so what it spends per request is taken from every proxy
that is not the limit itself. This starts OLD_UPSTREAM and the release build's
upstream, nginx, HAProxy, the relay and nova-guard in front of each, as
`scripts/bench` configures and pins them, and runs every (upstream, proxy)
pair once per repeat, in turn, so that both upstreams are measured under much
the same machine. It prints the medians and, per upstream, nova-guard's
throughput over each other proxy's, repeat by repeat.

Build first: `cargo build --release --bin nova-guard --example bench_upstream
--example bench_relay`. Everything listens on 127.0.0.1.
"""

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench", os.path.join(HERE, "bench.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

PROXIES = ["nginx", "haproxy", "relay", "nova-guard"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", help="the upstream binary to compare with")
    ap.add_argument("--workload", default="get_1k", choices=list(bench.WORKLOADS))
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--duration", type=int, default=3, help="seconds per run")
    ap.add_argument("--bin-dir", default=os.path.join(HERE, "..", "target", "release"))
    opts = ap.parse_args()
    bins = os.path.abspath(opts.bin_dir)
    # What bench.start_proxies and bench.run_wrk read: scripts/bench's pinning.
    opts.targets, opts.baseline = PROXIES, None
    opts.relay_bin = os.path.join(bins, "examples", "bench_relay")
    opts.client_cpu, opts.proxy_cpu = 0, 1
    upstreams = {"old": os.path.abspath(opts.old),
                 "new": os.path.join(bins, "examples", "bench_upstream")}
    tmp = tempfile.mkdtemp(prefix="bench-upstreams-")
    lua = bench.wrk_script(tmp, opts.workload)
    targets = {}
    try:
        for name, binary in upstreams.items():
            up_port = bench.free_port()
            up = bench.start([binary, f"127.0.0.1:{up_port}"], opts.client_cpu,
                             name=f"upstream {name}")
            bench.wait_listening(up_port, up, f"upstream {name}")
            d = os.path.join(tmp, name)
            os.makedirs(d)
            proxies = bench.start_proxies(opts, d, up_port, os.path.join(bins, "nova-guard"))
            targets.update({(name, proxy): t for proxy, t in proxies.items()})
        runs = {key: [] for key in targets}
        for _ in range(opts.repeats):
            for key, target in targets.items():
                r = bench.run_wrk(opts, target, opts.workload, opts.conns, opts.duration, lua)
                if r["wrong_status"] or r["errors"]:
                    raise SystemExit(f"{' '.join(key)}: {r['wrong_status']} wrong answers, "
                                     f"{r['errors']} errors")
                runs[key].append(r)
                time.sleep(0.2)
        print(f"{opts.workload}, {opts.conns} connections, {opts.repeats} repeats of "
              f"{opts.duration} s; medians")
        print("| upstream | proxy | req/s | proxy CPU µs/req | proxy CPU busy |")
        print("|---|---|---:|---:|---:|")
        for (up, proxy), rs in runs.items():
            print(f"| {up} | {proxy} | {statistics.median(r['rate'] for r in rs):,.0f} "
                  f"| {statistics.median(r['cpu_us_per_unit'] for r in rs):.1f} "
                  f"| {statistics.median(r['util'] for r in rs) * 100:.0f}% |")
        print()
        for up in upstreams:
            for other in ("nginx", "haproxy", "relay"):
                ratios = [a["rate"] / b["rate"]
                          for a, b in zip(runs[(up, "nova-guard")], runs[(up, other)])]
                print(f"{up}: nova-guard ÷ {other}, throughput by repeat: median "
                      f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})")
    finally:
        bench.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
