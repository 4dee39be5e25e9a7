#!/usr/bin/env python3
"""What GET /metrics costs, measured against browserd with metrics off in the same run.

    bench/metrics_bench.py                 the three parts below, ~3 min
    bench/metrics_bench.py --parts scrape  only the scrape with 1,000 sessions

Parts (each prints its figures, a ratio and met / NOT MET; the exit status is non-zero only
for errors, never for timing):

  api     The list API's throughput: bench/load (32 connections, bench/shapes.tsv's mix) on
          200,000 sessions against two daemons on copies of one database, one with
          --metrics-listen off, one with metrics on and scraped every second; alternating
          rounds (off, on, off, on, ...), the median of each. Goal: on >= 0.98x of off.
  cdp     The CDP relay: bench/cdp_bench's fake phase (an instant-answer browser) with
          --metrics-listen off, then with a metrics listener scraped every second; alternating
          rounds. Figures: the loop thread's CPU per Browser.getVersion round trip (the
          steadiest measure on a shared machine), its p50, and the loop's CPU per 20 MiB echo.
          Goal: on within 2 % of off (CPU per round trip).
  scrape  One scrape with 1,000 sessions running (the fake browser, --pool 0): N scrapes over
          one keep-alive connection, p50 / p99 / max; GET /health on the same connection is
          the HTTP floor. Goal: p99 <= 5 ms.

"Off" still counts: the counters are increments where the counted thing happens and stay in
the binary; off removes the route, the sampler and the scrapes. Their own cost shows as the
difference to a binary before metrics: pass --baseline-browserd PATH to add it to the api and
cdp parts.

Options: --build DIR (default build-release), --rounds N (3), --api-seconds S (8),
--sessions N (1000), --scrapes N (200), --parts api,cdp,scrape, --baseline-browserd PATH.
Loopback only; everything started is stopped and the temp dir removed. See docs/benchmarks.md.
"""
import argparse
import base64
import http.client
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path="/health", timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"metrics_bench: nothing answered 200 on {port}{path} within {timeout} s")


class Daemon:
    """browserd serve in the run's temp dir, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, binary, db, tmp, name, args, env=None):
        self.name = name
        self.log_path = os.path.join(tmp, f"{name}.log")
        e = {k: v for k, v in os.environ.items() if not k.startswith("BROWSERD_")}
        e.update({"TMPDIR": tmp, "BROWSERD_DRAIN_TIMEOUT": "0"})
        e.update(env or {})
        self.out = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "--db", db, "serve", *args], stdout=subprocess.PIPE,
                                     stderr=self.out, env=e, text=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


class Scraper(threading.Thread):
    """GET /metrics every `every` seconds until stopped (what a Prometheus server does, 15x as often)."""

    def __init__(self, port, every=1.0):
        super().__init__(daemon=True)
        self.port, self.every, self.halt, self.count, self.errors = port, every, threading.Event(), 0, 0

    def run(self):
        while not self.halt.wait(self.every):
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/metrics")
                r = c.getresponse()
                r.read()
                self.count += r.status == 200
                self.errors += r.status != 200
                c.close()
            except OSError:
                self.errors += 1


def verdict(ok):
    return "met" if ok else "NOT MET"


def measure(name, value, better):
    """One line for bench/all.sh's regression check (bench/baseline.tsv)."""
    print(f"=measure\t{name}\t{value:.4g}\t{better}")


# ---------------------------------------------------------------- api ----

def part_api(a, build, tmp, results):
    gen, load = os.path.join(build, "bench", "gen_sessions"), os.path.join(build, "bench", "load")
    data = os.path.join(ROOT, "bench", "data")
    os.makedirs(data, exist_ok=True)
    jsonl = os.path.join(data, "sessions-s1-n200000.jsonl")  # api_bench's naming: shared cache
    if not os.path.exists(jsonl) or os.path.getsize(jsonl) == 0:
        log("generating 200,000 sessions")
        with open(jsonl + ".tmp", "w") as f:
            subprocess.run([gen, "--seed", "1", "--count", "200000"], stdout=f, check=True)
        os.replace(jsonl + ".tmp", jsonl)
    db = os.path.join(tmp, "api.db")
    bd = os.path.join(build, "browserd")
    subprocess.run([bd, "--db", db, "customer", "add", "bench_a"], check=True, capture_output=True)
    key = re.search(r"\b[0-9a-f]{64}\b", subprocess.run([bd, "--db", db, "key", "add", "bench_a"], check=True,
                                                        capture_output=True, text=True).stdout).group(0)
    log("importing 200,000 sessions")
    subprocess.run([bd, "--db", db, "sessions", "import", "bench_a", jsonl], check=True, capture_output=True)
    variants = [("off", bd, ["--metrics-listen", "off"]), ("on", bd, [])]
    if a.baseline_browserd:
        variants.append(("before metrics", a.baseline_browserd, []))
    daemons = {}
    try:
        for name, binary, extra in variants:
            copy = os.path.join(tmp, f"api-{len(daemons)}.db")
            shutil.copy(db, copy)
            port = free_port()
            daemons[name] = (Daemon(binary, copy, tmp, f"api-{len(daemons)}", ["--api-listen", f"127.0.0.1:{port}",
                                                                              "--cdp-listen", "off", *extra]), port)
        for d, port in daemons.values():
            wait_http(port, "/healthz")
        rates = {name: [] for name in daemons}
        shapes = os.path.join(ROOT, "bench", "shapes.tsv")
        for r in range(a.rounds):
            for name, (d, port) in daemons.items():
                scraper = Scraper(port) if name == "on" else None
                if scraper:
                    scraper.start()
                out = subprocess.run([load, "--target", f"127.0.0.1:{port}", "--key", key, "--paths", shapes,
                                      "--connections", "32", "--duration", str(a.api_seconds)],
                                     capture_output=True, text=True)
                if scraper:
                    scraper.halt.set()
                    scraper.join()
                    if scraper.errors or not scraper.count:
                        raise SystemExit(f"metrics_bench: scrapes during the load: {scraper.count} ok, {scraper.errors} failed")
                m = re.search(r"(\d+) OK, (\d+) errors in .*: (\d+) req/s", out.stdout)
                if out.returncode != 0 or not m or m.group(2) != "0":
                    raise SystemExit(f"metrics_bench: load against {name} failed:\n{out.stdout}\n{out.stderr}")
                rates[name].append(int(m.group(3)))
                log(f"api round {r + 1}/{a.rounds}: metrics {name}: {m.group(3)} req/s")
    finally:
        for d, _ in daemons.values():
            d.stop()
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratio = med["on"] / med["off"]
    print(f"api: list mix, 200k sessions, 32 connections, {a.rounds} x {a.api_seconds} s alternating; medians")
    for k, v in rates.items():
        print(f"  metrics {k:<15} {med[k]:>8.0f} req/s   rounds: {', '.join(map(str, v))}")
    print(f"  on (scraped every 1 s) / off: {ratio:.3f}x   goal >= 0.98x: {verdict(ratio >= 0.98)}")
    measure("metrics list API on/off", ratio, "higher")
    if "before metrics" in med:
        print(f"  off / before metrics: {med['off'] / med['before metrics']:.3f}x (what the counters cost)")
    results.append(("api list throughput, metrics on / off", f"{ratio:.3f}x", ">= 0.98x", ratio >= 0.98))


# ---------------------------------------------------------------- cdp ----

RTT_RE = re.compile(r"rtt Browser\.getVersion .*?browserd p50\s+([\d.]+) us")
LOOP_RTT_RE = re.compile(r"loop thread: ([\d.]+) us of CPU per round trip")
ECHO_RE = re.compile(r"big Bench\.echo[^\n]*\n\s+browserd's loop thread: ([\d.]+) ms of CPU per exchange")


def part_cdp(a, build, tmp, results):
    bench = os.path.join(build, "bench", "cdp_bench")
    variants = [("off", os.path.join(build, "browserd"), "off"), ("on", os.path.join(build, "browserd"), None)]
    if a.baseline_browserd:
        variants.append(("before metrics", a.baseline_browserd, "off"))
    got = {name: {"cpu": [], "p50": [], "echo": []} for name, _, _ in variants}
    for r in range(a.rounds):
        for name, binary, listen in variants:
            port = free_port()
            env_arg = f"BROWSERD_METRICS_LISTEN={listen or f'127.0.0.1:{port}'}"
            run_tmp = tempfile.mkdtemp(dir=tmp)
            scraper = Scraper(port) if name == "on" else None
            if scraper:
                scraper.start()
            out = subprocess.run([bench, "--browserd", binary, "--tmp", run_tmp, "--phases", "fake", "--sessions", "4",
                                  "--connect-reps", "3", "--big-reps", "3", "--rtt-rounds", "20",
                                  "--browserd-env", env_arg], capture_output=True, text=True)
            if scraper:
                scraper.halt.set()
                scraper.join()
                if not scraper.count:
                    raise SystemExit("metrics_bench: no scrape answered during the cdp bench")
            text = out.stdout
            m1, m2, m3 = RTT_RE.search(text), LOOP_RTT_RE.search(text), ECHO_RE.search(text)
            if out.returncode != 0 or not (m1 and m2 and m3):
                raise SystemExit(f"metrics_bench: cdp_bench ({name}) failed:\n{text}\n{out.stderr}")
            got[name]["p50"].append(float(m1.group(1)))
            got[name]["cpu"].append(float(m2.group(1)))
            got[name]["echo"].append(float(m3.group(1)))
            log(f"cdp round {r + 1}/{a.rounds}: metrics {name}: loop CPU {m2.group(1)} us per round trip, "
                f"p50 {m1.group(1)} us, echo {m3.group(1)} ms")
            shutil.rmtree(run_tmp, ignore_errors=True)
    med = {k: {f: statistics.median(v[f]) for f in v} for k, v in got.items()}
    ratio = med["on"]["cpu"] / med["off"]["cpu"]
    print(f"cdp: bench/cdp_bench fake phase, {a.rounds} rounds alternating; medians")
    for k, v in med.items():
        print(f"  metrics {k:<15} loop CPU {v['cpu']:6.1f} us per getVersion round trip, p50 {v['p50']:6.1f} us, "
              f"loop CPU {v['echo']:5.1f} ms per 20 MiB echo")
    print(f"  loop CPU per round trip, on (scraped every 1 s) / off: {ratio:.3f}x   goal <= 1.02x: {verdict(ratio <= 1.02)}")
    measure("metrics CDP loop CPU on/off", ratio, "lower")
    print(f"  p50 on / off {med['on']['p50'] / med['off']['p50']:.3f}x; echo CPU on / off "
          f"{med['on']['echo'] / med['off']['echo']:.3f}x")
    if "before metrics" in med:
        print(f"  loop CPU per round trip, off / before metrics: {med['off']['cpu'] / med['before metrics']['cpu']:.3f}x")
    results.append(("cdp loop CPU per round trip, on / off", f"{ratio:.3f}x", "<= 1.02x", ratio <= 1.02))


# ---------------------------------------------------------------- scrape ----

def part_scrape(a, build, tmp, results):
    api_port, cdp_port = free_port(), free_port()
    fake = os.path.join(build, "bench", "cdp_bench")  # an instant-answer browser when run as Chromium
    db = os.path.join(tmp, "scrape.db")
    d = Daemon(os.path.join(build, "browserd"), db, tmp, "scrape",
               ["--api-listen", f"127.0.0.1:{api_port}", "--cdp-listen", f"127.0.0.1:{cdp_port}", "--pool", "0",
                "--chromium", fake, "--max-sessions", str(a.sessions), "--max-queue", str(a.sessions),
                "--queue-timeout", "300", "--log-level", "warn"])
    socks = []
    try:
        creds = {}
        for line in d.proc.stdout:
            k, _, v = line.strip().partition("=")
            creds[k] = v
            if k == "zone_password":
                break
        wait_http(api_port)
        auth = base64.b64encode(f"brd-customer-{creds['customer_id']}-zone-{creds['zone']}:{creds['zone_password']}"
                                .encode()).decode()
        req = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{cdp_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bWV0cmljcy1iZW5jaC0xNg==\r\n"
               f"Authorization: Basic {auth}\r\n\r\n").encode()
        log(f"opening {a.sessions} sessions (fake browser)")
        t0 = time.time()
        for i in range(a.sessions):
            s = socket.create_connection(("127.0.0.1", cdp_port))
            s.sendall(req)
            socks.append(s)
            if len(socks) % 50 == 0:  # read the 101s as they come, so that nobody waits on a full buffer
                for x in socks[-50:]:
                    x.settimeout(120)
                    head = x.recv(4096)
                    if not head.startswith(b"HTTP/1.1 101"):
                        raise SystemExit(f"metrics_bench: session {i}: {head[:200]!r}")
        for x in socks[len(socks) - len(socks) % 50:]:
            x.settimeout(120)
            if not x.recv(4096).startswith(b"HTTP/1.1 101"):
                raise SystemExit("metrics_bench: a session was refused")
        conn = http.client.HTTPConnection("127.0.0.1", api_port, timeout=30)

        def get(path):
            t = time.perf_counter()
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise SystemExit(f"metrics_bench: {path}: {r.status}")
            return (time.perf_counter() - t) * 1000, body

        deadline = time.time() + 120
        while True:
            _, body = get("/metrics")
            m = re.search(rb"^browserd_sessions_running (\d+)$", body, re.M)
            if m and int(m.group(1)) == a.sessions:
                break
            if time.time() > deadline:
                raise SystemExit(f"metrics_bench: {m and m.group(1)} of {a.sessions} sessions running after 120 s")
            time.sleep(0.5)
        log(f"{a.sessions} sessions running after {time.time() - t0:.1f} s; {len(body)} bytes of metrics")
        for _ in range(20):
            get("/metrics")
        scrape = sorted(get("/metrics")[0] for _ in range(a.scrapes))
        health = sorted(get("/health")[0] for _ in range(a.scrapes))
    finally:
        for s in socks:
            s.close()
        d.stop()
    pct = lambda v, q: v[min(len(v) - 1, int(q * len(v)))]
    p50, p99, mx = pct(scrape, 0.5), pct(scrape, 0.99), scrape[-1]
    print(f"scrape: GET /metrics with {a.sessions} sessions running (fake browser), {a.scrapes} scrapes on one connection")
    print(f"  /metrics p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {mx:.2f} ms   ({len(body)} bytes)")
    print(f"  /health  p50 {pct(health, 0.5):.2f} ms  p99 {pct(health, 0.99):.2f} ms (the HTTP floor, same connection)")
    print(f"  goal p99 <= 5 ms: {verdict(p99 <= 5)}")
    measure("metrics scrape p99 (ms)", p99, "lower")
    results.append((f"scrape p99 with {a.sessions} sessions", f"{p99:.2f} ms", "<= 5 ms", p99 <= 5))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build-release")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--api-seconds", type=int, default=8)
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--scrapes", type=int, default=200)
    p.add_argument("--parts", default="api,cdp,scrape")
    p.add_argument("--baseline-browserd")
    a = p.parse_args()
    parts = a.parts.split(",")
    if any(x not in ("api", "cdp", "scrape") for x in parts):
        p.error("--parts: api, cdp, scrape")
    if a.baseline_browserd:
        a.baseline_browserd = os.path.realpath(a.baseline_browserd)
    build = os.path.join(ROOT, a.build)
    if not os.path.exists(os.path.join(build, "build.ninja")):
        subprocess.run(["meson", "setup", build, "--buildtype=release"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", build, "-j2", "browserd", "bench/gen_sessions", "bench/load", "bench/cdp_bench"],
                   check=True, stdout=subprocess.DEVNULL)
    print(f"metrics_bench {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    tmp = tempfile.mkdtemp(prefix="metrics_bench.")
    results = []
    try:
        for part in parts:
            {"api": part_api, "cdp": part_cdp, "scrape": part_scrape}[part](a, build, tmp, results)
    finally:
        left = subprocess.run(["pgrep", "-f", tmp], capture_output=True, text=True).stdout.split()
        for pid in left:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"processes of this run left: {len(left) or 'none'}")
    print("\nmeasure | browserd | goal | verdict")
    for name, value, goal, ok in results:
        print(f"{name} | {value} | {goal} | {verdict(ok)}")


if __name__ == "__main__":
    main()
