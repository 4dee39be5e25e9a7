#!/usr/bin/python3
"""Selenium as its users run it: Python's selenium (Debian's python3-selenium) against browserd's
WebDriver endpoint, and against what the same user would otherwise run, a local chromedriver
that launches its own headless Chromium, measured in the same run, alternating.

  /usr/bin/python3 bench/webdriver_bench.py [--browserd build-release/browserd] [--sessions 8]
                                            [--commands 300] [--navs 30]

Measures (median of each side, ratio browserd / local):
  session   webdriver.Remote(...) / webdriver.Chrome(...) until the first command answered
            (browserd: from its warm pool; local: chromedriver and Chromium start)
  command   one small command's round trip (driver.title)
  goto      driver.get of a 20 KB local page (browserd's through its traffic proxy)
  driver    the chromedriver's RSS per session (browserd's attached driver)
Loopback only; the page server is this process. See docs/webdriver.md and docs/benchmarks.md."""
import argparse
import http.server
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

PAGE = b"<!doctype html><title>bench</title>" + b"<p>" + b"x" * 20000 + b"</p>"


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        try:
            self.wfile.write(PAGE)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser moved on

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_browserd(binary, tmp):
    api, cdp, wd = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [binary, "--db", os.path.join(tmp, "b.db"), "serve", "--api-listen", f"127.0.0.1:{api}",
         "--cdp-listen", f"127.0.0.1:{cdp}", "--webdriver-listen", f"127.0.0.1:{wd}", "--pool", "2",
         "--allow-private", "127.0.0.1/32", "--log-level", "warn"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "TMPDIR": tmp})
    creds = {}
    while len(creds) < 4:
        line = proc.stdout.readline()
        if not line:
            sys.exit("webdriver_bench: browserd did not start")
        k, _, v = line.strip().partition("=")
        creds[k] = v
    return proc, f"http://brd-customer-{creds['customer_id']}-zone-{creds['zone']}:{creds['zone_password']}@127.0.0.1:{wd}"


def local_driver():
    o = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu"):
        o.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def driver_pids(name_part):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                cmd = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")[0]
            except OSError:
                continue
            if cmd.endswith(b"chromedriver") and name_part in open(f"/proc/{p}/cmdline", "rb").read():
                out.append(int(p))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--browserd", default="build-release/browserd")
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--commands", type=int, default=300)
    ap.add_argument("--navs", type=int, default=30)
    args = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/page"
    tmp = tempfile.mkdtemp(prefix="webdriver-bench-")
    proc, remote = start_browserd(args.browserd, tmp)
    time.sleep(3)  # the warm pool fills
    sides = {"browserd": lambda: webdriver.Remote(command_executor=remote, options=webdriver.ChromeOptions()),
             "local": local_driver}
    res = {s: {"session": [], "command": [], "goto": [], "driver": []} for s in sides}
    try:
        for i in range(args.sessions):
            for side, make in sides.items():
                t = time.perf_counter()
                d = make()
                d.title
                res[side]["session"].append(time.perf_counter() - t)
                try:
                    if i == 0:  # warm-up of each side's first page
                        d.get(url)
                    for _ in range(args.commands // args.sessions):
                        t = time.perf_counter()
                        d.title
                        res[side]["command"].append(time.perf_counter() - t)
                    for _ in range(max(1, args.navs // args.sessions)):
                        t = time.perf_counter()
                        d.get(url)
                        res[side]["goto"].append(time.perf_counter() - t)
                    pids = [d.service.process.pid] if side == "local" else driver_pids(b"--port=9515")
                    if pids:
                        res[side]["driver"].append(max(rss_kib(p) for p in pids))
                finally:
                    d.quit()
            time.sleep(0.5)  # the pool refills
    finally:
        proc.terminate()
        proc.wait(30)
        srv.shutdown()
    print(f"webdriver_bench: {args.sessions} sessions per side, {args.commands} commands, {args.navs} page loads; "
          f"{os.cpu_count()} cores, load {open('/proc/loadavg').read().split()[0]}")
    print(f"{'measure':<12}{'local (median)':>18}{'browserd (median)':>20}{'ratio':>8}")
    goals = {"command": 1.10, "goto": 1.10}
    for m, unit, scale in (("session", "ms", 1000), ("command", "us", 1e6), ("goto", "ms", 1000)):
        a = statistics.median(res["local"][m]) * scale
        b = statistics.median(res["browserd"][m]) * scale
        print(f"{m:<12}{a:>15.1f} {unit}{b:>17.1f} {unit}{b / a:>8.2f}")
        print(f"=measure\twebdriver {m} browserd/local\t{b / a:.3f}\tlower")
        if m in goals:
            print(f"goal: {m} round trip <= {goals[m]}x local chromedriver: {'met' if b / a <= goals[m] else 'NOT MET'}")
    if res["browserd"]["driver"]:
        print(f"driver RSS per session: browserd's chromedriver {statistics.median(res['browserd']['driver'])} KiB"
              + (f", local chromedriver {statistics.median(res['local']['driver'])} KiB" if res["local"]["driver"] else ""))


if __name__ == "__main__":
    main()
