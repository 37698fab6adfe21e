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
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench", os.path.join(HERE, "bench.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

PROXIES = ["nginx", "haproxy", "relay", "nova-guard"]


def cpu_seconds(pid):
    """utime + stime of `pid` and its children still running (nginx's worker)."""
    def one(p):
        with open(f"/proc/{p}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK"), int(parts[1])
    total = one(pid)[0]
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != pid:
            try:
                t, parent = one(int(d))
            except (OSError, ValueError, IndexError):
                continue
            if parent == pid:
                total += t
    return total


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
    upstreams = {"old": os.path.abspath(opts.old),
                 "new": os.path.join(bins, "examples", "bench_upstream")}
    tmp = tempfile.mkdtemp(prefix="bench-upstreams-")
    lua = bench.wrk_script(tmp, opts.workload)
    _method, path, *_ = bench.WORKLOADS[opts.workload]
    targets = {}
    try:
        for name, binary in upstreams.items():
            up_port = bench.free_port()
            up = bench.start([binary, f"127.0.0.1:{up_port}"], 0, name=f"upstream {name}")
            bench.wait_listening(up_port, up, f"upstream {name}")
            d = os.path.join(tmp, name)
            os.makedirs(os.path.join(d, "nginx-body"))
            port = bench.free_port()
            conf = os.path.join(d, "nginx.conf")
            with open(conf, "w") as f:
                f.write(bench.nginx_conf(d, port, up_port))
            targets[(name, "nginx")] = (bench.start(
                ["nginx", "-e", os.path.join(d, "nginx-error.log"), "-p", d, "-c", conf], 1), port)
            port = bench.free_port()
            conf = os.path.join(d, "haproxy.cfg")
            with open(conf, "w") as f:
                f.write(bench.haproxy_conf(port, up_port))
            targets[(name, "haproxy")] = (bench.start(["haproxy", "-db", "-f", conf], 1), port)
            port = bench.free_port()
            targets[(name, "relay")] = (bench.start(
                [os.path.join(bins, "examples", "bench_relay"), f"127.0.0.1:{port}",
                 f"127.0.0.1:{up_port}"], 1), port)
            port = bench.free_port()
            targets[(name, "nova-guard")] = (bench.start(
                [os.path.join(bins, "nova-guard")], 1, env=bench.guard_env(port, up_port)), port)
        for key, (proc, port) in targets.items():
            bench.wait_listening(port, proc, " ".join(key), timeout=60)
        runs = {key: [] for key in targets}
        for _ in range(opts.repeats):
            for key, (proc, port) in targets.items():
                before = cpu_seconds(proc.pid)
                out = subprocess.run(
                    ["taskset", "-c", "0", "wrk", "-t1", f"-c{opts.conns}",
                     f"-d{opts.duration}s", "--timeout", "10s", "-s", lua,
                     f"http://127.0.0.1:{port}{path}"],
                    capture_output=True, text=True)
                used = cpu_seconds(proc.pid) - before
                n = bench.wrk_summary(out, " ".join(key))["requests"]
                runs[key].append((n / opts.duration, used / max(n, 1) * 1e6,
                                  used / opts.duration))
                time.sleep(0.2)
        print(f"{opts.workload}, {opts.conns} connections, {opts.repeats} repeats of "
              f"{opts.duration} s; medians")
        print("| upstream | proxy | req/s | proxy CPU µs/req | proxy CPU busy |")
        print("|---|---|---:|---:|---:|")
        for (up, proxy), rs in runs.items():
            print(f"| {up} | {proxy} | {statistics.median(r[0] for r in rs):,.0f} "
                  f"| {statistics.median(r[1] for r in rs):.1f} "
                  f"| {statistics.median(r[2] for r in rs) * 100:.0f}% |")
        print()
        for up in upstreams:
            for other in ("nginx", "haproxy", "relay"):
                ratios = [a[0] / b[0] for a, b in zip(runs[(up, "nova-guard")], runs[(up, other)])]
                print(f"{up}: nova-guard ÷ {other}, throughput by repeat: median "
                      f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})")
    finally:
        bench.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
