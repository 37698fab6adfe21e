#!/usr/bin/env python3
"""Macro-benchmark: nova-guard side by side with nginx and HAProxy.

Run through scripts/bench, which installs the tools and builds the binaries.
Everything listens on 127.0.0.1 only, every run is bounded in time, and every
process started here is stopped on exit (normal, error, Ctrl-C, SIGTERM).
See BENCHMARKS.md for what the columns mean.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import http.client
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

SERVER_ID = "5f3f5b42-8d5c-4f37-9a3b-7a2d3c1e9b10"
TOKEN = "gAAAAABbenchmarktokenbenchmarktoken"
# About 150 bytes; accessIPv6 is rewritten to 2001:db8::1 by nova-guard.
VALID_BODY = (
    '{"server": {"name": "web-01", "accessIPv4": "192.0.2.10", '
    '"accessIPv6": "2001:0DB8:0000:0000:0000:0000:0000:0001", '
    '"description": "bench server"}}'
)
# The same size, refused by nova-guard (accessIPv4 format); a plain proxy forwards it.
INVALID_BODY = VALID_BODY.replace("192.0.2.10", "192.0.2.300")
PUT_HEADERS = {
    "X-Auth-Token": TOKEN,
    "Content-Type": "application/json",
    "OpenStack-API-Version": "compute 2.19",
}

# name -> (method, path, headers, body, expected status from nova-guard,
#          expected status from the others, unit)
WORKLOADS = {
    "put_valid": ("PUT", f"/v2.1/servers/{SERVER_ID}", PUT_HEADERS, VALID_BODY, 200, 200, "req"),
    "put_invalid": ("PUT", f"/v2.1/servers/{SERVER_ID}", PUT_HEADERS, INVALID_BODY, 400, 200, "req"),
    "get_1k": ("GET", f"/v2.1/servers/{SERVER_ID}", {"X-Auth-Token": TOKEN}, None, 200, 200, "req"),
    "stream_10m": ("GET", "/v2.1/bench/stream", {"X-Auth-Token": TOKEN}, None, 200, 200, "MiB"),
}
RATE_WORKLOADS = ["put_valid", "put_invalid", "get_1k"]
# relay: examples/bench_relay, bytes copied both ways and nothing else, the
# floor of any proxy here (its CPU per request is the kernel's and the runtime's).
TARGETS = ["direct", "nginx", "haproxy", "relay", "nova-guard"]
PROXIES = ["nginx", "haproxy", "relay", "nova-guard"]
# --baseline BIN: another nova-guard build, measured in the same run.
BASELINE = "nova-guard-baseline"


def is_guard(name):
    return name in ("nova-guard", BASELINE)

STARTED = []  # Popen objects, stopped on exit


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_all():
    for p in reversed(STARTED):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 5
    for p in reversed(STARTED):
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    STARTED.clear()


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


def start(cmd, cpu, env=None, stdout=subprocess.DEVNULL, name=""):
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    # A session of its own, so that it and its children are stopped together.
    p = subprocess.Popen(
        cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, start_new_session=True
    )
    STARTED.append(p)
    pidfile = os.environ.get("BENCH_PIDFILE")
    if pidfile:
        with open(pidfile, "a") as f:
            f.write(f"{p.pid}\n")
    return p


def wait_listening(port, proc, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise SystemExit(f"{what} exited with {proc.returncode}: {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port} within {timeout}s")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def cpu_ticks(pids):
    """(user, kernel) clock ticks of the processes, summed."""
    user = kernel = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])  # utime
            kernel += int(fields[12])  # stime
        except OSError:
            pass
    return user, kernel


def status_kib(pids, key):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def threads(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def reset_peak(pids):
    """Reset VmHWM to the current RSS (clear_refs 5), so each run has its own peak."""
    ok = True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            ok = False
    return ok


class Target:
    def __init__(self, name, port, proc=None):
        self.name = name
        self.port = port
        self.proc = proc

    def pids(self):
        if self.proc is None:
            return []
        top = self.proc.pid
        # taskset execs the program, so the session leader is the proxy itself.
        return [top] + children(top)


def guard_env(port, upstream_port):
    """nova-guard's environment: configured by it alone, JSON access log on."""
    env = dict(os.environ)
    env.update({
        "NOVA_GUARD_LISTEN": f"127.0.0.1:{port}",
        "NOVA_GUARD_UPSTREAM": f"http://127.0.0.1:{upstream_port}",
        "NOVA_GUARD_LOG": "info",
        "NOVA_GUARD_LOG_FORMAT": "json",
        # As nginx's keepalive_requests here: no connection is closed for its count.
        "NOVA_GUARD_MAX_REQUESTS_PER_CONNECTION": "1000000",
    })
    return env


def nginx_conf(tmp, port, upstream_port):
    return f"""
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log /dev/null combined;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    upstream nova {{
        server 127.0.0.1:{upstream_port};
        keepalive 1024;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://nova;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            # Stream in memory, never to temporary files.
            proxy_buffering on;
            proxy_max_temp_file_size 0;
        }}
    }}
}}
"""


def haproxy_conf(port, upstream_port):
    return f"""
global
    nbthread 1
    maxconn 4096
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 60s
    timeout server 120s
    http-reuse always
frontend fe
    bind 127.0.0.1:{port}
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    default_backend nova
backend nova
    server nova 127.0.0.1:{upstream_port}
"""


def wrk_script(tmp, workload):
    method, _path, headers, body, *_ = WORKLOADS[workload]
    lines = [f'wrk.method = "{method}"']
    for k, v in headers.items():
        lines.append(f'wrk.headers["{k}"] = "{v}"')
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    lines.append(
        """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, '
    .. '"read": %d, "write": %d, "status": %d, "timeout": %d, '
    .. '"p50_us": %.1f, "p99_us": %.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read,
    e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
    )
    path = os.path.join(tmp, f"{workload}.lua")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def wrk_summary(out, what):
    """The summary the script's done() hook printed, from a finished wrk."""
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCHJSON ")), None)
    if line is None:
        raise SystemExit(f"wrk failed on {what}: {out.stdout}{out.stderr}")
    return json.loads(line[len("BENCHJSON "):])


class RssSampler(threading.Thread):
    def __init__(self, pids, every=0.1):
        super().__init__(daemon=True)
        self.pids, self.every = pids, every
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.samples.append(status_kib(self.pids, "VmRSS"))
            self.stop.wait(self.every)


def run_wrk(opts, target, workload, conns, duration, lua):
    method, path, *_ = WORKLOADS[workload]
    pids = target.pids()
    reset_peak(pids)
    rss_before = status_kib(pids, "VmRSS")
    sampler = RssSampler(pids) if pids else None
    if sampler:
        sampler.start()
    t0 = cpu_ticks(pids)
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s", "--timeout", "10s", "-s", lua,
           f"http://127.0.0.1:{target.port}{path}"]
    if opts.client_cpu is not None:
        cmd = ["taskset", "-c", str(opts.client_cpu)] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    t1 = cpu_ticks(pids)
    if sampler:
        sampler.stop.set()
        sampler.join()
    r = wrk_summary(out, f"{target.name}/{workload}")
    secs = r["duration_us"] / 1e6
    unit = WORKLOADS[workload][6]
    count = r["bytes"] / 2**20 if unit == "MiB" else r["requests"]
    cpu_s = (sum(t1) - sum(t0)) / CLK_TCK
    kernel_s = (t1[1] - t0[1]) / CLK_TCK
    res = {
        "target": target.name, "workload": workload, "conns": conns,
        "rate": count / secs, "unit": unit, "requests": r["requests"],
        "wrk_p50_us": r["p50_us"], "wrk_p99_us": r["p99_us"],
        "errors": r["connect"] + r["read"] + r["write"] + r["timeout"],
        "non_2xx": r["status"],
    }
    if pids:
        samples = sampler.samples if sampler else []
        res.update({
            "cpu_us_per_unit": cpu_s * 1e6 / count if count else None,
            "kernel_share": kernel_s / cpu_s if cpu_s else None,
            "util": cpu_s / secs,
            "rss_before_kib": rss_before,
            "peak_kib": status_kib(pids, "VmHWM"),
            "rss_after_kib": status_kib(pids, "VmRSS"),
            "rss_samples_kib": samples,
        })
    # Was every answer the one this target should give?
    expect_ng, expect_other = WORKLOADS[workload][4], WORKLOADS[workload][5]
    expect = expect_ng if is_guard(target.name) else expect_other
    bad = r["status"] if expect < 400 else r["requests"] - r["status"]
    res["wrong_status"] = bad
    return res


def run_rate(opts, target, workload, rate, duration, tmp):
    method, path, headers, body, expect_ng, expect_other, _ = WORKLOADS[workload]
    cmd = [opts.load_bin, "--addr", f"127.0.0.1:{target.port}", "--rate", str(rate),
           "--duration", str(duration), "--warmup", str(opts.rate_warmup),
           "--connections", str(opts.rate_connections), "--method", method, "--path", path]
    for k, v in headers.items():
        cmd += ["--header", f"{k}: {v}"]
    if body is not None:
        bf = os.path.join(tmp, f"{workload}.body")
        with open(bf, "w") as f:
            f.write(body)
        cmd += ["--body-file", bf]
    if opts.client_cpu is not None:
        cmd = ["taskset", "-c", str(opts.client_cpu)] + cmd
    pids = target.pids()
    t0 = cpu_ticks(pids)
    out = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=duration + opts.rate_warmup + 60)
    t1 = cpu_ticks(pids)
    try:
        r = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(f"bench_load failed on {target.name}/{workload}: {out.stdout}{out.stderr}")
    expect = expect_ng if is_guard(target.name) else expect_other
    r["wrong_status"] = r["requests"] - r["statuses"].get(str(expect), 0)
    r.update({"target": target.name, "workload": workload})
    if pids and r["requests"]:
        total = r["requests"] * (1 + opts.rate_warmup / duration)
        r["cpu_us_per_unit"] = (sum(t1) - sum(t0)) / CLK_TCK * 1e6 / total
    return r


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0):
    if v is None:
        return "—"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def p99_by_repeat(m, base):
    """A target's p99 over nginx's, repeat by repeat (each repeat runs every
    target back to back, so both were taken under much the same machine):
    (median ratio, repeats at or below nginx's, repeats), or None."""
    nginx = base.get("by_repeat", {})
    paired = [p / nginx[i] for i, p in m["by_repeat"].items() if nginx.get(i)]
    if not paired:
        return None
    return statistics.median(paired), sum(1 for x in paired if x <= 1), len(paired)


def relay_cmd(opts, port, up_port):
    return [opts.relay_bin, f"127.0.0.1:{port}", f"127.0.0.1:{up_port}"]


def start_proxies(opts, tmp, up_port, guard_bin):
    """The proxies of `opts.targets` in front of the upstream at `up_port`, each
    listening and pinned to `opts.proxy_cpu`; nginx keeps its files in `tmp`."""
    targets = {}
    if "nginx" in opts.targets:
        port = free_port()
        for d in ("nginx-body", "nginx-proxy"):
            os.makedirs(os.path.join(tmp, d), exist_ok=True)
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(tmp, port, up_port))
        p = start(["nginx", "-e", os.path.join(tmp, "nginx-error.log"), "-p", tmp,
                   "-c", conf], opts.proxy_cpu)
        wait_listening(port, p, "nginx")
        targets["nginx"] = Target("nginx", port, p)
    if "haproxy" in opts.targets:
        port = free_port()
        conf = os.path.join(tmp, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(haproxy_conf(port, up_port))
        p = start(["haproxy", "-db", "-f", conf], opts.proxy_cpu)
        wait_listening(port, p, "haproxy")
        targets["haproxy"] = Target("haproxy", port, p)
    if "relay" in opts.targets:
        port = free_port()
        p = start(relay_cmd(opts, port, up_port), opts.proxy_cpu)
        wait_listening(port, p, "bench_relay")
        targets["relay"] = Target("relay", port, p)
    for name, binary in (("nova-guard", guard_bin), (BASELINE, opts.baseline)):
        if name not in opts.targets:
            continue
        port = free_port()
        p = start([binary], opts.proxy_cpu, env=guard_env(port, up_port))
        wait_listening(port, p, name)
        targets[name] = Target(name, port, p)
    return targets


def ratio(v, base):
    if v is None or not base:
        return "—"
    return f"{v / base:.2f}×"


def report(opts, info, results, rate_results, rates, idle, idle_after, started_at):
    out = []
    w = out.append
    w(f"## Run of {time.strftime('%Y-%m-%d %H:%M %Z', time.localtime(started_at))}\n")
    w(f"`{info['command']}`\n")
    w(f"- machine: {info['cpu_model']}, {info['ncpu']} CPUs, kernel {info['kernel']}; "
      f"load average at start {info['loadavg']}")
    w(f"- pinning: load generator and upstream on CPU {opts.client_cpu}, proxy under test "
      f"on CPU {opts.proxy_cpu}" if opts.proxy_cpu is not None else "- pinning: none (fewer than 2 CPUs)")
    w(f"- versions: {info['versions']}")
    w(f"- nova-guard threads when idle: {info['ng_threads']} (runtime worker threads follow the "
      "CPU affinity)")
    for sk in info.get("skipped", []):
        w(f"- **skipped**: {sk}")
    w(f"- {opts.repeats} repeat(s) of {opts.duration} s per throughput run, "
      f"{opts.rate_repeats} of {opts.rate_duration} s per fixed-rate run; medians shown\n")

    w("### Throughput (closed loop: wrk, 1 thread, N connections)\n")
    w("| workload | conns | target | throughput | × nginx | CPU per unit | × nginx "
      "| in the kernel | proxy CPU use | peak RSS | × nginx | wrong status |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    summary = {}
    for workload in opts.workloads:
        unit = WORKLOADS[workload][6]
        rate_unit = "MiB/s" if unit == "MiB" else "req/s"
        cpu_unit = "µs/MiB" if unit == "MiB" else "µs/req"
        for conns in opts.conns:
            med_by = {}
            for t in opts.targets:
                rs = [r for r in results if r["target"] == t and r["workload"] == workload
                      and r["conns"] == conns]
                med_by[t] = {
                    "rate": med([r["rate"] for r in rs]),
                    "cpu": med([r.get("cpu_us_per_unit") for r in rs]),
                    "kernel": med([r.get("kernel_share") for r in rs]),
                    "util": med([r.get("util") for r in rs]),
                    "peak": med([r.get("peak_kib") for r in rs]),
                    "wrong": sum(r["wrong_status"] + r["errors"] for r in rs),
                    "samples": [s for r in rs for s in [r.get("rss_samples_kib", [])]],
                }
            summary[(workload, conns)] = med_by
            n = med_by.get("nginx", {})
            for t in opts.targets:
                m = med_by[t]
                w(f"| {workload} | {conns} | {t} | {fmt(m['rate'])} {rate_unit} "
                  f"| {ratio(m['rate'], n.get('rate'))} "
                  f"| {fmt(m['cpu'], 1)} {cpu_unit if m['cpu'] is not None else ''} "
                  f"| {ratio(m['cpu'], n.get('cpu'))} "
                  f"| {fmt(m['kernel'] * 100 if m['kernel'] is not None else None)}"
                  f"{'%' if m['kernel'] is not None else ''} "
                  f"| {fmt(m['util'] * 100 if m['util'] is not None else None)}"
                  f"{'%' if m['util'] is not None else ''} "
                  f"| {fmt(m['peak'] / 1024 if m['peak'] else None, 1)}"
                  f"{' MiB' if m['peak'] else ''} "
                  f"| {ratio(m['peak'], n.get('peak'))} | {m['wrong']} |")
    w("")

    if rate_results:
        w(f"### Latency at a fixed rate (open loop: bench_load, "
          f"{opts.rate_connections} connections)\n")
        # The repeats' lowest and highest p99 next to their median: a stall of
        # the machine in one repeat moves a p99 more than any proxy does.
        # The p99 by repeat (p99_by_repeat) is steadier than a ratio of medians.
        w("| workload | rate | target | p50 | p99 | p99 of the repeats, lowest–highest "
          "| p99 × nginx | p99 ÷ nginx's, by repeat: median; repeats ≤ 1 | p99.9 | achieved "
          "| CPU per req | × nginx | wrong status |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for workload in opts.rate_workloads:
            med_by = {}
            for t in opts.targets:
                rs = [r for r in rate_results if r["target"] == t and r["workload"] == workload]
                med_by[t] = {k: med([r.get(k) for r in rs]) for k in
                             ["p50_us", "p99_us", "p999_us", "achieved_rate", "cpu_us_per_unit"]}
                med_by[t]["wrong"] = sum(r["wrong_status"] + r["errors"] for r in rs)
                p99s = [r["p99_us"] for r in rs if r.get("p99_us") is not None]
                med_by[t]["p99_range"] = (min(p99s), max(p99s)) if p99s else None
                med_by[t]["by_repeat"] = {r["repeat"]: r["p99_us"] for r in rs
                                          if r.get("p99_us")}
            summary[("rate", workload)] = med_by
            n = med_by.get("nginx", {})
            for t in opts.targets:
                m = med_by[t]
                spread = (f"{fmt(m['p99_range'][0])}–{fmt(m['p99_range'][1])} µs"
                          if m["p99_range"] else "—")
                paired = p99_by_repeat(m, n)
                by_repeat = (f"{paired[0]:.2f}×; {paired[1]} of {paired[2]}"
                             if paired and t != "nginx" else "—")
                w(f"| {workload} | {fmt(rates[workload])}/s | {t} | {fmt(m['p50_us'])} µs "
                  f"| {fmt(m['p99_us'])} µs | {spread} | {ratio(m['p99_us'], n.get('p99_us'))} "
                  f"| {by_repeat} | {fmt(m['p999_us'])} µs | {fmt(m['achieved_rate'])}/s "
                  f"| {fmt(m['cpu_us_per_unit'], 1)}{' µs' if m['cpu_us_per_unit'] else ''} "
                  f"| {ratio(m['cpu_us_per_unit'], n.get('cpu_us_per_unit'))} | {m['wrong']} |")
        w("")

    w("### Memory (VmRSS of the proxy's processes, summed)\n")
    w("| target | idle at start | × nginx | idle after the runs | peak at 256 conns | × nginx "
      "| 10 MB stream: RSS growth after the first quarter |")
    w("|---|---|---|---|---|---|---|")
    peaks = {}
    growth = {}
    for t in PROXIES:
        if t not in opts.targets:
            continue
        p = [summary[k][t]["peak"] for k in summary if k[0] != "rate" and k[1] == 256
             and summary[k][t]["peak"]]
        peaks[t] = max(p) if p else None
        g = []
        for r in results:
            s = r.get("rss_samples_kib") or []
            if r["target"] == t and r["workload"] == "stream_10m" and len(s) >= 4:
                g.append(max(s[len(s) // 4:]) - s[len(s) // 4])
        growth[t] = max(g) if g else None
    for t in PROXIES:
        if t not in opts.targets:
            continue
        w(f"| {t} | {fmt(idle[t] / 1024, 1)} MiB | {ratio(idle[t], idle.get('nginx'))} "
          f"| {fmt(idle_after[t] / 1024, 1)} MiB "
          f"| {fmt(peaks[t] / 1024 if peaks[t] else None, 1)} MiB "
          f"| {ratio(peaks[t], peaks.get('nginx'))} "
          f"| {fmt(growth[t] / 1024 if growth[t] is not None else None, 1)} MiB |")
    w("")

    # The targets.
    if "nova-guard" in opts.targets and "nginx" in opts.targets:
        w("### Targets\n")
        w("| target | measured | met |")
        w("|---|---|---|")

        def row(name, measured, ok):
            w(f"| {name} | {measured} | {'yes' if ok else 'no' if ok is not None else '—'} |")

        def r_(a, b):
            return a / b if a is not None and b else None

        for conns in opts.conns:
            for workload in ("put_valid", "get_1k"):
                s = summary.get((workload, conns))
                if not s:
                    continue
                c = r_(s["nova-guard"]["cpu"], s["nginx"]["cpu"])
                row(f"{workload} CPU per request ≤ 1.0× nginx ({conns} conns)", ratio(c, 1),
                    c <= 1.0 if c else None)
                x = r_(s["nova-guard"]["rate"], s["nginx"]["rate"])
                row(f"{workload} throughput ≥ 1.0× nginx ({conns} conns)", ratio(x, 1),
                    x >= 1.0 if x else None)
                if "haproxy" in s:
                    y = r_(s["nova-guard"]["rate"], s["haproxy"]["rate"])
                    # What a proxy that does nothing reached: the machine's ceiling.
                    floor = (f" (relay: {ratio(r_(s['relay']['rate'], s['haproxy']['rate']), 1)})"
                             if "relay" in s else "")
                    row(f"{workload} throughput ≥ 1.2× HAProxy ({conns} conns)",
                        ratio(y, 1) + floor, y >= 1.2 if y else None)
            s = summary.get(("put_invalid", conns))
            if s:
                x = r_(s["nova-guard"]["rate"], s["nginx"]["rate"])
                row(f"put_invalid throughput ≥ 2× nginx forwarding it ({conns} conns)",
                    ratio(x, 1), x >= 2.0 if x else None)
            s = summary.get(("stream_10m", conns))
            if s:
                c = r_(s["nova-guard"]["cpu"], s["nginx"]["cpu"])
                row(f"stream_10m CPU per MiB ≤ nginx ({conns} conns)", ratio(c, 1),
                    c <= 1.0 if c else None)
        for workload in opts.rate_workloads:
            s = summary.get(("rate", workload))
            if s:
                x = r_(s["nova-guard"]["p99_us"], s["nginx"]["p99_us"])
                paired = p99_by_repeat(s["nova-guard"], s["nginx"])
                by_repeat = (f" (by repeat: {paired[0]:.2f}×, {paired[1]} of {paired[2]} ≤ 1)"
                             if paired else "")
                row(f"p99 at {fmt(rates[workload])}/s ≤ nginx ({workload})",
                    ratio(x, 1) + by_repeat, x <= 1.0 if x else None)
        ng_idle = idle["nova-guard"] / 1024
        row("RSS idle ≤ 10 MiB", f"{ng_idle:.1f} MiB", ng_idle <= 10)
        if peaks.get("nova-guard"):
            p = peaks["nova-guard"] / 1024
            row("RSS at 256 connections (256 × 10 MiB streams included) ≤ 32 MiB",
                f"{p:.1f} MiB", p <= 32)
        if growth.get("nova-guard") is not None:
            g = growth["nova-guard"] / 1024
            row("RSS flat during the 10 MB streaming run (growth ≤ 1 MiB)", f"{g:.1f} MiB",
                g <= 1)
        w("")
    return "\n".join(out)


def profile(opts, target, workload, lua, out_dir):
    """perf record nova-guard (cpu-clock, DWARF call graphs) under one workload."""
    pid = target.proc.pid
    method, path, *_ = WORKLOADS[workload]
    secs = max(4, round(opts.duration))
    cmd = ["wrk", "-t1", f"-c{opts.conns[0]}", f"-d{secs}s", "--timeout", "10s", "-s", lua,
           f"http://127.0.0.1:{target.port}{path}"]
    if opts.client_cpu is not None:
        cmd = ["taskset", "-c", str(opts.client_cpu)] + cmd
    data = os.path.join(out_dir, f"perf-{workload}.data")
    load = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1)
    rec = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999",
                          "--call-graph", "dwarf,32768", "-p", str(pid), "-o", data,
                          "--", "sleep", str(secs - 2)], capture_output=True, text=True)
    out, _ = load.communicate(timeout=secs + 60)
    if rec.returncode != 0:
        raise SystemExit(f"perf record failed: {rec.stderr}")
    reports = []
    for label, args in (("self", ["--no-children"]), ("inclusive", ["--children"])):
        r = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none",
                            "--sort", "dso,symbol", "--percent-limit", "0.5"] + args,
                           capture_output=True, text=True)
        lines = [l.rstrip() for l in r.stdout.splitlines()
                 if l.strip() and not l.startswith("#") and "(inlined)" not in l]
        reports.append(f"== {label} time, nova-guard under {workload} "
                       f"({opts.conns[0]} connections)\n" + "\n".join(lines[:60]))
    text = "\n\n".join(reports) + "\n\n== wrk\n" + out
    with open(os.path.join(out_dir, f"profile-{workload}.txt"), "w") as f:
        f.write(text)
    print(text)
    log(f"perf data in {data}; explore with: perf report -i {data}")


def instructions(opts, upstream_bin, guard_bin, tmp, out_dir):
    """Instructions per request (valgrind's callgrind) of nginx, the relay and nova-guard
    forwarding the same workload: a count the machine's noise does not move."""
    workload = opts.instructions
    _method, path, *_ = WORKLOADS[workload]
    lua = wrk_script(tmp, workload)
    secs = max(5, round(opts.duration))
    up_port = free_port()
    up = start([upstream_bin, f"127.0.0.1:{up_port}"], None, name="upstream")
    wait_listening(up_port, up, "bench_upstream")
    rows, top = [], ""
    for name in ("nginx", "relay", "nova-guard"):
        port = free_port()
        data = os.path.join(out_dir, f"callgrind-{name}-{workload}.out")
        vg = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={data}"]
        if opts.cache_sim:
            # Fixed sizes, so that the counts do not depend on the host's caches
            # (the L1 instruction cache is this machine's).
            vg += ["--cache-sim=yes", "--I1=65536,16,64", "--D1=32768,8,64",
                   "--LL=1048576,16,64"]
        if name == "nginx":
            conf = os.path.join(tmp, "nginx-callgrind.conf")
            with open(conf, "w") as f:
                # One process, so that callgrind follows the worker.
                f.write(nginx_conf(tmp, port, up_port).replace(
                    "master_process on;", "master_process off;"))
            p = start(vg + ["nginx", "-e", os.path.join(tmp, "nginx-error.log"), "-p", tmp,
                            "-c", conf], None)
            stop = signal.SIGQUIT
        elif name == "relay":
            p = start(vg + relay_cmd(opts, port, up_port), None)
            stop = signal.SIGTERM
        else:
            env = guard_env(port, up_port)
            env["NOVA_GUARD_WORKERS"] = "1"
            p = start(vg + [guard_bin], None, env=env)
            stop = signal.SIGTERM
        wait_listening(port, p, name, timeout=120)
        out = subprocess.run(["wrk", "-t1", f"-c{opts.instr_conns}", f"-d{secs}s",
                              "--timeout", "10s", "-s", lua, f"http://127.0.0.1:{port}{path}"],
                             capture_output=True, text=True, timeout=secs + 60)
        requests = wrk_summary(out, name)["requests"]
        p.send_signal(stop)
        p.wait(timeout=120)
        ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", data],
                             capture_output=True, text=True).stdout
        # Ir, then with --cache-sim: Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw.
        totals = next([int(x.replace(",", "")) for x in re.findall(r"([\d,]+) \(", l)]
                      for l in ann.splitlines() if "PROGRAM TOTALS" in l)
        total = totals[0]
        # L1 instruction, L1 data and last-level misses.
        misses = ((totals[3], totals[4] + totals[5], sum(totals[6:9]))
                  if opts.cache_sim and len(totals) >= 9 else None)
        rows.append((name, requests, total, misses))
        if name == "nova-guard":
            # "  1,234 ( 5.67%)  file:function [object]"
            funcs = [m for m in (re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S+)", l)
                                 for l in ann.splitlines())
                     if m and ("nova_guard::" in m[2] or "malloc.c:" in m[2]
                                      or ":_rjem_" in m[2])]
            top = "\n".join(f"{int(m[1].replace(',', '')) // max(requests, 1):>8,}  "
                            f"{m[2].split(':', 1)[1][:120]}" for m in funcs[:40])
    text = [f"== instructions per request, {workload} (wrk, {opts.instr_conns} connections, "
            f"{secs} s under callgrind; start-up included)",
            "| target | requests | instructions | per request | × nginx |"
            + (" misses per request: L1 instruction (64 KiB), L1 data (32 KiB), last level"
               " (1 MiB) |"
               if opts.cache_sim else ""),
            "|---|---|---|---|---|" + ("---|" if opts.cache_sim else "")]
    base = rows[0][2] / max(rows[0][1], 1)
    for name, requests, total, misses in rows:
        per = total / max(requests, 1)
        line = f"| {name} | {requests:,} | {total:,} | {per:,.0f} | {per / base:.2f}× |"
        if misses is not None:
            line += " " + ", ".join(f"{m / max(requests, 1):,.1f}" for m in misses) + " |"
        text.append(line)
    text.append(f"\n== nova-guard, inclusive instructions per request by function\n{top}")
    text = "\n".join(text)
    with open(os.path.join(out_dir, f"instructions-{workload}.txt"), "w") as f:
        f.write(text + "\n")
    print(text)
    log(f"callgrind data in {out_dir}; explore with: callgrind_annotate <file>")


def versions():
    def first(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    return "; ".join([
        first(["nginx", "-v"]).replace("nginx version: ", ""),
        " ".join(first(["haproxy", "-v"]).split()[:3]),
        first(["wrk", "-v"]).split(" [")[0],
        first(["rustc", "--version"]),
    ])


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return model, os.uname().release, load


def main():
    ap = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 repeat of short runs (under 2 minutes); default is the full mode")
    ap.add_argument("--repeats", type=int, help="repeats of every run (full: 5, quick: 1)")
    ap.add_argument("--duration", type=float, help="seconds per throughput run (full: 4, quick: 1)")
    ap.add_argument("--rate-repeats", type=int,
                    help="repeats of every fixed-rate run (default: --repeats); a p99 "
                         "wants more than a throughput does")
    ap.add_argument("--rate-duration", type=float,
                    help="seconds per fixed-rate run (full: 6, quick: 1.5)")
    ap.add_argument("--rate", type=int,
                    help="fixed request rate; default: a third of the slowest proxy's "
                         "median throughput at 32 connections, per workload")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--conns", default="32,256")
    ap.add_argument("--out", help="directory for results.json and report.md "
                                  "(default target/bench/<time>)")
    ap.add_argument("--profile", metavar="WORKLOAD",
                    help="instead of comparing: run nova-guard alone under WORKLOAD and "
                         "record a perf profile of it (--duration seconds, first --conns)")
    ap.add_argument("--instructions", metavar="WORKLOAD",
                    help="instead of comparing: count the instructions per request of "
                         "nginx, the byte relay and nova-guard under WORKLOAD with valgrind's callgrind "
                         "(--duration seconds)")
    ap.add_argument("--instr-conns", type=int, default=4, metavar="N",
                    help="--instructions: wrk's connections (default 4)")
    ap.add_argument("--cache-sim", action="store_true",
                    help="--instructions: also simulate a 64 KiB L1 instruction, a 32 KiB "
                         "L1 data and a 1 MiB last-level cache, and count the misses per "
                         "request (what grows with the connections; the code a request runs)")
    ap.add_argument("--baseline", metavar="BIN",
                    help="another nova-guard binary (e.g. an earlier commit's release "
                         "build), measured in the same run as target nova-guard-baseline")
    ap.add_argument("--report", metavar="DIR",
                    help="only write DIR/report.md again from DIR/results.json (an earlier "
                         "run's figures, this script's tables)")
    ap.add_argument("--pool", metavar="DIR", nargs="+",
                    help="only compare the throughput and p99 repeats of several earlier "
                         "runs (their DIR/results.json), each repeat against the same "
                         "run's other targets: medians and middle halves")
    ap.add_argument("--bin-dir", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release"),
                    help="the release build's directory: nova-guard and the examples")
    ap.add_argument("--guard", metavar="BIN",
                    help="the nova-guard binary measured, instead of BIN_DIR/nova-guard "
                         "(e.g. another build of the same commit, beside --baseline)")
    opts = ap.parse_args()
    if opts.report:
        rerender(opts.report)
        return
    if opts.pool:
        print(pool(opts.pool))
        return

    quick = opts.quick
    if opts.profile:
        if opts.profile not in WORKLOADS:
            ap.error(f"unknown workload {opts.profile}")
        opts.workloads, opts.targets = opts.profile, "nova-guard"
        opts.duration = opts.duration or 10
        if shutil.which("perf") is None:
            raise SystemExit("perf is missing: run scripts/bench, which installs it")
    if not 1 <= opts.instr_conns <= 1000:
        ap.error("--instr-conns: 1 to 1000 connections")
    if opts.instructions:
        if opts.instructions not in WORKLOADS:
            ap.error(f"unknown workload {opts.instructions}")
        opts.duration = opts.duration or 15
        if shutil.which("valgrind") is None:
            raise SystemExit("valgrind is missing: run scripts/bench, which installs it")
    opts.repeats = opts.repeats or (1 if quick else 5)
    opts.rate_repeats = opts.rate_repeats or opts.repeats
    opts.duration = opts.duration or (1 if quick else 4)
    opts.rate_duration = opts.rate_duration or (1.5 if quick else 6)
    opts.rate_warmup = 0.3 if quick else 1.0
    opts.rate_connections = 32
    opts.workloads = [w for w in opts.workloads.split(",") if w]
    opts.targets = [t for t in opts.targets.split(",") if t]
    opts.conns = [int(c) for c in opts.conns.split(",") if c]
    for w in opts.workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w}")
    if opts.baseline:
        if not os.access(opts.baseline, os.X_OK):
            ap.error(f"--baseline {opts.baseline}: not an executable")
        TARGETS.append(BASELINE)
        PROXIES.append(BASELINE)
        if BASELINE not in opts.targets:
            opts.targets.append(BASELINE)
    for t in opts.targets:
        if t not in TARGETS:
            ap.error(f"unknown target {t}")
    opts.rate_workloads = [w for w in RATE_WORKLOADS if w in opts.workloads]
    if opts.duration > 60 or opts.rate_duration > 60 or max(opts.repeats, opts.rate_repeats) > 20:
        ap.error("at most 60 s per run and 20 repeats")
    opts.load_bin = os.path.join(opts.bin_dir, "examples", "bench_load")
    upstream_bin = os.path.join(opts.bin_dir, "examples", "bench_upstream")
    opts.relay_bin = os.path.join(opts.bin_dir, "examples", "bench_relay")
    if opts.guard and not os.access(opts.guard, os.X_OK):
        ap.error(f"--guard {opts.guard}: not an executable")
    guard_bin = opts.guard or os.path.join(opts.bin_dir, "nova-guard")
    for b in (opts.load_bin, upstream_bin, opts.relay_bin, guard_bin):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"{b} is missing: run scripts/bench, which builds it")
    for tool in ("wrk", "nginx", "haproxy", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: run scripts/bench, which installs it")

    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        opts.client_cpu, opts.proxy_cpu = cpus[0], cpus[1]
    else:
        opts.client_cpu = opts.proxy_cpu = None
        log("fewer than 2 CPUs: running without pinning")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started_at = time.time()
    tmp = tempfile.mkdtemp(prefix="nova-guard-bench.")
    out_dir = opts.out or os.path.join(ROOT, "target", "bench",
                                       time.strftime("%Y%m%d-%H%M%S", time.localtime()))
    os.makedirs(out_dir, exist_ok=True)
    model, kernel, load = machine()
    info = {
        "command": "scripts/bench " + " ".join(sys.argv[1:]),
        "cpu_model": model, "ncpu": os.cpu_count(), "kernel": kernel, "loadavg": load,
        "versions": versions(),
    }
    try:
        if opts.instructions:
            for d in ("nginx-body", "nginx-proxy"):
                os.makedirs(os.path.join(tmp, d), exist_ok=True)
            instructions(opts, upstream_bin, guard_bin, tmp, out_dir)
            return
        # --- start everything
        up_port = free_port()
        up = start([upstream_bin, f"127.0.0.1:{up_port}"], opts.client_cpu, name="upstream")
        wait_listening(up_port, up, "bench_upstream")
        targets = {"direct": Target("direct", up_port)}
        targets.update(start_proxies(opts, tmp, up_port, guard_bin))
        time.sleep(1.0)
        idle = {t: status_kib(targets[t].pids(), "VmRSS") for t in PROXIES if t in targets}
        info["ng_threads"] = threads(targets["nova-guard"].proc.pid) if "nova-guard" in targets else "—"
        log(f"started: {', '.join(f'{t}:{targets[t].port}' for t in targets)}; idle RSS KiB {idle}")

        # Each target answers each workload as it should, before anything is
        # measured. A workload nova-guard cannot serve at all (a build whose
        # validator is missing) is left out, and the report says so.
        info["skipped"] = []
        for workload in list(opts.workloads):
            for t in opts.targets:
                method, path, headers, body, e_ng, e_other, _ = WORKLOADS[workload]
                req = urllib.request.Request(
                    f"http://127.0.0.1:{targets[t].port}{path}", method=method,
                    headers=headers, data=body.encode() if body else None)
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        status = resp.status
                        resp.read()
                except urllib.error.HTTPError as e:
                    status = e.code
                except (OSError, http.client.HTTPException) as e:
                    status = f"no answer ({e.__class__.__name__})"
                want = e_ng if is_guard(t) else e_other
                if status == want:
                    continue
                if not is_guard(t):
                    raise SystemExit(f"{t} answered {workload} with {status}, not {want}")
                log(f"SKIPPED {workload}: nova-guard answered {status}, not {want}")
                info["skipped"].append(f"{workload} (nova-guard answered {status})")
                opts.workloads.remove(workload)
                if workload in opts.rate_workloads:
                    opts.rate_workloads.remove(workload)
                if p := targets["nova-guard"].proc:
                    if p.poll() is not None:
                        raise SystemExit("nova-guard stopped")
                break
        if not opts.workloads:
            raise SystemExit("no workload left to run")

        luas = {w: wrk_script(tmp, w) for w in opts.workloads}
        if opts.profile:
            profile(opts, targets["nova-guard"], opts.profile, luas[opts.profile], out_dir)
            return
        # Warm-up: fill connection pools to the largest concurrency.
        for t in opts.targets:
            run_wrk(opts, targets[t], "get_1k", max(opts.conns), 1, luas["get_1k"]
                    if "get_1k" in luas else wrk_script(tmp, "get_1k"))

        results = []
        total = opts.repeats * len(opts.workloads) * len(opts.conns) * len(opts.targets)
        done = 0
        for rep in range(opts.repeats):
            order = opts.targets[rep % len(opts.targets):] + opts.targets[:rep % len(opts.targets)]
            for workload in opts.workloads:
                for conns in opts.conns:
                    for t in order:
                        r = run_wrk(opts, targets[t], workload, conns, opts.duration, luas[workload])
                        r["repeat"] = rep
                        results.append(r)
                        done += 1
                        log(f"[{done}/{total}] {workload} c={conns} {t}: {r['rate']:,.0f} "
                            f"{'MiB' if r['unit'] == 'MiB' else 'req'}/s"
                            + (f", {r['cpu_us_per_unit']:.1f} µs CPU/{r['unit']}, "
                               f"util {r['util']*100:.0f}%" if r.get('cpu_us_per_unit') else "")
                            + (f", WRONG STATUS {r['wrong_status']}" if r["wrong_status"] else "")
                            + (f", errors {r['errors']}" if r["errors"] else ""))
                        time.sleep(0.2)

        # Fixed rate: a third of the slowest proxy's median throughput at 32
        # connections. CPU 0 carries the load generator (~23 µs of CPU per request
        # for bench_load, far more than wrk) and the upstream (~16 µs): at half,
        # it was over 90 % busy and the p99 measured its queue, not the proxy.
        rates = {}
        for workload in opts.rate_workloads:
            if opts.rate:
                rates[workload] = opts.rate
                continue
            caps = []
            for t in opts.targets:
                rs = [r["rate"] for r in results if r["target"] == t and r["workload"] == workload
                      and r["conns"] == min(opts.conns)]
                if rs and t != "direct":
                    caps.append(statistics.median(rs))
            rates[workload] = max(100, int(min(caps) / 3 / 100) * 100) if caps else 1000
        rate_results = []
        total = opts.rate_repeats * len(opts.rate_workloads) * len(opts.targets)
        done = 0
        for rep in range(opts.rate_repeats):
            order = opts.targets[rep % len(opts.targets):] + opts.targets[:rep % len(opts.targets)]
            for workload in opts.rate_workloads:
                for t in order:
                    r = run_rate(opts, targets[t], workload, rates[workload], opts.rate_duration, tmp)
                    r["repeat"] = rep
                    rate_results.append(r)
                    done += 1
                    log(f"[{done}/{total}] {workload} at {rates[workload]}/s {t}: "
                        f"p50 {r['p50_us']:.0f} µs, p99 {r['p99_us']:.0f} µs, "
                        f"achieved {r['achieved_rate']:.0f}/s"
                        + (f", WRONG STATUS {r['wrong_status']}" if r["wrong_status"] else ""))
                    time.sleep(0.2)

        time.sleep(1.0)
        idle_after = {t: status_kib(targets[t].pids(), "VmRSS") for t in PROXIES if t in targets}
        text = report(opts, info, results, rate_results, rates, idle, idle_after, started_at)
        with open(os.path.join(out_dir, "results.json"), "w") as f:
            json.dump({"info": info, "started_at": started_at, "options": {k: v for k, v in vars(opts).items()},
                       "idle_kib": idle, "idle_after_kib": idle_after, "rates": rates,
                       "throughput": results, "fixed_rate": rate_results}, f, indent=1)
        with open(os.path.join(out_dir, "report.md"), "w") as f:
            f.write(text + "\n")
        print(text)
        log(f"results in {out_dir} ({time.time() - started_at:.0f} s)")
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


# What --pool compares: (target, over, measure). The relay over HAProxy is
# there because 1.2× HAProxy is only reachable where the relay reaches it.
POOLED = [
    ("nova-guard", "nginx", "cpu_us_per_unit"),
    ("nova-guard", "nginx", "rate"),
    ("nova-guard", "haproxy", "rate"),
    ("relay", "haproxy", "rate"),
    ("nova-guard", "relay", "rate"),
]


def pooled_ratios(runs):
    """Ratios of one target's figure to another's, repeat by repeat, over
    several runs: {(workload, conns, target, over, measure): [ratios]} for the
    throughput runs, and {workload: [ratios]} of nova-guard's p99 over nginx's
    at the fixed rate. Only figures of the same run and repeat are paired."""
    ratios, p99 = {}, {}
    for saved in runs:
        by = {(r["repeat"], r["workload"], r["conns"], r["target"]): r for r in saved["throughput"]}
        for (rep, workload, conns, target), r in sorted(by.items()):
            for want, over, measure in POOLED:
                base = by.get((rep, workload, conns, over))
                if target == want and base and base.get(measure) and r.get(measure):
                    key = (workload, conns, want, over, measure)
                    ratios.setdefault(key, []).append(r[measure] / base[measure])
        rates = {(r["repeat"], r["workload"], r["target"]): r for r in saved["fixed_rate"]}
        for (rep, workload, target), r in sorted(rates.items()):
            base = rates.get((rep, workload, "nginx"))
            if target == "nova-guard" and base and base.get("p99_us") and r.get("p99_us"):
                p99.setdefault(workload, []).append(r["p99_us"] / base["p99_us"])
    return ratios, p99


def pool(dirs):
    """pooled_ratios over the runs saved in `dirs`, as tables: each cell the
    median ratio and, in brackets, the middle half of the ratios."""
    runs = [saved_run(d) for d in dirs]
    ratios, p99 = pooled_ratios(runs)

    def cell(values):
        if not values:
            return "—"
        q = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
        return f"{statistics.median(values):.2f}× ({q[0]:.2f}–{q[2]:.2f})"

    measures = {"rate": "throughput", "cpu_us_per_unit": "CPU per unit"}
    names = {"haproxy": "HAProxy"}
    heads = [f"{t} ÷ {names.get(o, o)}, {measures[m]}" for t, o, m in POOLED]
    out = [f"Pooled over {len(runs)} runs, repeat by repeat: median (middle half)\n",
           "| workload | conns | " + " | ".join(heads) + " | repeats |",
           "|---|---|" + "---|" * (len(heads) + 1)]
    for workload, conns in sorted({(k[0], k[1]) for k in ratios}):
        cells = [ratios.get((workload, conns, t, o, m), []) for t, o, m in POOLED]
        out.append(f"| {workload} | {conns} | " + " | ".join(cell(v) for v in cells)
                   + f" | {max(len(v) for v in cells)} |")
    if p99:
        out += ["", "| workload | nova-guard's p99 ÷ nginx's, at the fixed rate | repeats |",
                "|---|---|---|"]
        out += [f"| {w} | {cell(v)} | {len(v)} |" for w, v in sorted(p99.items())]
    return "\n".join(out)


def saved_run(out_dir):
    """An earlier run's figures, as main() wrote them to out_dir."""
    with open(os.path.join(out_dir, "results.json")) as f:
        return json.load(f)


def rerender(out_dir):
    saved = saved_run(out_dir)
    opts = argparse.Namespace(**saved["options"])
    for t in opts.targets:
        if t not in TARGETS:
            TARGETS.append(t)
            PROXIES.append(t)
    started_at = saved.get("started_at", os.path.getmtime(os.path.join(out_dir, "results.json")))
    text = report(opts, saved["info"], saved["throughput"], saved["fixed_rate"], saved["rates"],
                  saved["idle_kib"], saved["idle_after_kib"], started_at)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
