#!/usr/bin/env python3
"""Validates gen_sessions output against the import format and prints its distributions.

    bench/check_sessions.py FILE.jsonl [--quiet]

Checks every line: valid JSON, exactly the 11 fields in the contract's order, types and
enums, UUIDv7 ids whose time prefix equals the timestamp, RFC 3339 timestamps with
milliseconds, duration null iff running (else >= 0 with ms precision), error object iff
failed (code from the contract's table; page_navigated_error messages carry net::ERR_...
and the end URL), null URLs iff 0 navigations, navigations 0..50, bandwidth >= 0, unique
ids, ascending timestamps. Exits 1 on the first few violations (all are counted).
Then prints the distributions (status, zone, error codes, captcha, top/bottom target
domains, navigations, duration and bandwidth percentiles, hour-of-day and weekday shape).
"""
import collections
import datetime as dt
import json
import re
import sys

FIELDS = ["session_id", "api_name", "status", "target_url", "end_url", "navigations",
          "timestamp", "duration", "captcha", "bandwidth", "error"]
STATUSES = {"running", "finished", "failed"}
CAPTCHAS = {"none", "detected", "solved", "failed"}
ERROR_CODES = {"session_timeout", "inactivity_timeout", "browser_disconnected", "worker_disconnect",
               "job_killed", "cdp_error", "page_navigated_error", "client_timeout", "unknown"}
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
DURATION_RAW = re.compile(r'"duration":(null|\d+\.\d{3}),')
URL = re.compile(r"^(https?)://([a-z0-9.-]+)(/[^\s]*)?$")


def host_of(url):
    m = URL.match(url)
    return m.group(2) if m else None


def registrable(host, domains):
    for d in domains:
        if host == d or host.endswith("." + d):
            return d
    return None


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(p * len(sorted_vals) + 0.999999) - 1))
    return sorted_vals[k]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    quiet = "--quiet" in sys.argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    problems = 0
    seen = set()
    status = collections.Counter()
    zone = collections.Counter()
    codes = collections.Counter()
    captcha = collections.Counter()
    target_host = collections.Counter()
    www = collections.Counter()
    schemes = collections.Counter()
    navs = collections.Counter()
    hours = collections.Counter()
    weekdays = collections.Counter()
    end_same_host = 0
    end_total = 0
    durations = []
    bandwidths = []
    prev_ts = None
    first_ts = last_ts = None
    n = 0

    def bad(lineno, msg):
        nonlocal problems
        problems += 1
        if problems <= 10:
            print(f"line {lineno}: {msg}", file=sys.stderr)

    with open(args[0], "rb") as f:
        for lineno, raw in enumerate(f, 1):
            n += 1
            line = raw.decode("utf-8")
            try:
                r = json.loads(line)
            except ValueError as e:
                bad(lineno, f"not JSON: {e}")
                continue
            if list(r.keys()) != FIELDS:
                bad(lineno, f"fields {list(r.keys())}")
                continue
            sid, st = r["session_id"], r["status"]
            if not isinstance(sid, str) or not UUID7.match(sid):
                bad(lineno, f"session_id {sid!r}")
            elif sid in seen:
                bad(lineno, f"duplicate session_id {sid}")
            seen.add(sid)
            if not isinstance(r["api_name"], str) or not r["api_name"]:
                bad(lineno, "api_name")
            if st not in STATUSES:
                bad(lineno, f"status {st!r}")
            nav = r["navigations"]
            if type(nav) is not int or not 0 <= nav <= 50:
                bad(lineno, f"navigations {nav!r}")
                nav = 0
            for k in ("target_url", "end_url"):
                v = r[k]
                if nav == 0 and v is not None:
                    bad(lineno, f"{k} set with 0 navigations")
                if nav > 0 and (not isinstance(v, str) or not URL.match(v)):
                    bad(lineno, f"{k} {v!r}")
            ts = r["timestamp"]
            if not isinstance(ts, str) or not TS.match(ts):
                bad(lineno, f"timestamp {ts!r}")
                continue
            t = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f%z")
            ms = int(t.timestamp() * 1000 + 0.5)
            if int(sid[:8] + sid[9:13], 16) != ms:
                bad(lineno, "session_id time prefix differs from timestamp")
            if prev_ts is not None and ms < prev_ts:
                bad(lineno, "timestamps not ascending")
            prev_ts = ms
            first_ts = ms if first_ts is None else first_ts
            last_ts = ms
            d = r["duration"]
            m = DURATION_RAW.search(line)
            if not m:
                bad(lineno, "duration not null or a number with 3 decimals")
            if st == "running":
                if d is not None:
                    bad(lineno, "running with a duration")
            else:
                if not isinstance(d, (int, float)) or d < 0:
                    bad(lineno, f"duration {d!r}")
                else:
                    durations.append(d)
            if r["captcha"] not in CAPTCHAS:
                bad(lineno, f"captcha {r['captcha']!r}")
            bw = r["bandwidth"]
            if type(bw) is not int or bw < 0:
                bad(lineno, f"bandwidth {bw!r}")
            else:
                bandwidths.append(bw)
            e = r["error"]
            if st == "failed":
                if not isinstance(e, dict) or list(e.keys()) != ["code", "message"] \
                        or e["code"] not in ERROR_CODES or not isinstance(e["message"], str) or not e["message"]:
                    bad(lineno, f"error {e!r}")
                else:
                    codes[e["code"]] += 1
                    if e["code"] == "page_navigated_error":
                        if not e["message"].startswith("net::ERR_") or not e["message"].endswith(" at " + str(r["end_url"])):
                            bad(lineno, f"page_navigated_error message {e['message']!r}")
            elif e is not None:
                bad(lineno, "error set on a session that did not fail")

            status[st] += 1
            zone[r["api_name"]] += 1
            captcha[r["captcha"]] += 1
            navs[min(nav, 20)] += 1
            hours[t.hour] += 1
            weekdays[t.strftime("%a")] += 1
            if nav > 0:
                h = host_of(r["target_url"])
                target_host[h] += 1
                schemes[r["target_url"].split(":", 1)[0]] += 1
                www["www." if h.startswith("www.") else ("bare" if h.count(".") == 1 else "other")] += 1
                end_total += 1
                end_same_host += host_of(r["end_url"]) == h

    print(f"{n} lines, {problems} problems")
    if quiet:
        return 1 if problems else 0

    def show(title, counter, total=None):
        total = total or sum(counter.values())
        items = ", ".join(f"{k} {100.0 * v / total:.1f}%" for k, v in counter.most_common())
        print(f"{title}: {items}")

    show("status", status)
    show("api_name", zone)
    show("error codes (of failed)", codes)
    show("captcha", captcha)
    show("target scheme", schemes)
    show("target host form", www)
    print(f"end_url on the target's host: {100.0 * end_same_host / max(end_total, 1):.1f}%")
    print(f"navigations (20 = 20+): " + ", ".join(f"{k}:{navs[k]}" for k in sorted(navs)))
    doms = collections.Counter()
    from_host = {}
    for h, c in target_host.items():
        parts = h.split(".")
        # Registrable domain for our vocabulary: last 2 labels, or 3 for co.uk / co.jp / com.mx.
        k = 3 if parts[-2] in ("co", "com") and len(parts[-1]) == 2 else 2
        d = ".".join(parts[-k:])
        doms[d] += c
        from_host.setdefault(d, set()).add(h)
    ranked = doms.most_common()
    print(f"target domains: {len(ranked)}; top 5: " +
          ", ".join(f"{d} {c}" for d, c in ranked[:5]) + "; bottom 3: " +
          ", ".join(f"{d} {c}" for d, c in ranked[-3:]))
    durations.sort()
    bandwidths.sort()
    print("duration s p50/p90/p99/max: " + "/".join(f"{pct(durations, p):.3f}" for p in (0.5, 0.9, 0.99, 1.0)))
    print("bandwidth bytes p50/p90/p99/max: " + "/".join(f"{pct(bandwidths, p)}" for p in (0.5, 0.9, 0.99, 1.0)))
    print("hour of day (UTC): " + " ".join(f"{h}:{hours[h]}" for h in range(24)))
    print("weekday: " + ", ".join(f"{d} {weekdays[d]}" for d in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")))
    fmt = lambda ms: dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat()
    print(f"timestamps: {fmt(first_ts)} .. {fmt(last_ts)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
