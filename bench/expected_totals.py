#!/usr/bin/env python3
"""Expected answers of the benchmark's query shapes, computed independently of browserd.

    bench/expected_totals.py DATA.jsonl SHAPES.tsv > expected.tsv

For every `shape<TAB>path` of SHAPES.tsv, applies the contract's filters
(shared/spec/browser-sessions-api.md) to the sessions of DATA.jsonl and writes
`shape<TAB>total<TAB>first_id`: the number of matching sessions and the session_id at the
page's offset under the contract's order (sort field, then timestamp, then session_id, all in
the same direction; null durations last), or "-" for an empty page.

It is a small reference implementation for gen_sessions' data, not a general one: it expects
timestamps as gen_sessions writes them and lowercase ids.
"""
import calendar
import datetime as dt
import heapq
import json
import re
import sys
import urllib.parse


def parse_bound(value, is_end):
    """A query date-time to Unix ms (bare date: start or end of that day, UTC)."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        d = dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
        ms = calendar.timegm(d.timetuple()) * 1000
        return ms + 86400000 - 1 if is_end else ms
    v = value.replace("z", "Z")
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    d = dt.datetime.fromisoformat(v)
    return calendar.timegm(d.astimezone(dt.timezone.utc).timetuple()) * 1000 + d.microsecond // 1000


def ts_ms(s):
    # gen_sessions' format: YYYY-MM-DDTHH:MM:SS.mmmZ
    secs = calendar.timegm((int(s[0:4]), int(s[5:7]), int(s[8:10]), int(s[11:13]), int(s[14:16]), int(s[17:19])))
    return secs * 1000 + int(s[20:23])


def host_of(url):
    rest = url.split("://", 1)[1] if "://" in url else url
    for sep in "/?#":
        rest = rest.split(sep, 1)[0]
    rest = rest.rsplit("@", 1)[-1]
    return rest.split(":", 1)[0].lower()


def url_pred(value):
    v = value.lower()
    if "://" in v:
        return lambda url, host: url is not None and url.lower().startswith(v)
    return lambda url, host: url is not None and (host == v or host.endswith("." + v))


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    shapes = []
    with open(sys.argv[2]) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            name, path = line.split("\t", 1)
            q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query, keep_blank_values=True))
            shapes.append((name, q))

    ids, tss, durs, bws = [], [], [], []
    status, zone, turl, thost, eurl, ehost = [], [], [], [], [], []
    with open(sys.argv[1], "rb") as f:
        for raw in f:
            r = json.loads(raw)
            ids.append(r["session_id"].lower())
            tss.append(ts_ms(r["timestamp"]))
            d = r["duration"]
            durs.append(None if d is None else round(d * 1000))
            bws.append(r["bandwidth"])
            status.append(r["status"])
            zone.append(r["api_name"])
            t, e = r["target_url"], r["end_url"]
            turl.append(t)
            eurl.append(e)
            thost.append(host_of(t) if t is not None else None)
            ehost.append(host_of(e) if e is not None else None)
    n = len(ids)
    idnum = [int(i.replace("-", ""), 16) for i in ids]

    for name, q in shapes:
        rows = range(n)
        if "status" in q and q["status"] != "all":
            st = q["status"]
            rows = [i for i in rows if status[i] == st]
        if "api_name" in q:
            z = q["api_name"]
            rows = [i for i in rows if zone[i] == z]
        if "start_date" in q:
            lo = parse_bound(q["start_date"], False)
            rows = [i for i in rows if tss[i] >= lo]
        if "end_date" in q:
            hi = parse_bound(q["end_date"], True)
            rows = [i for i in rows if tss[i] <= hi]
        if "target_url" in q:
            p = url_pred(q["target_url"])
            rows = [i for i in rows if p(turl[i], thost[i])]
        if "end_url" in q:
            p = url_pred(q["end_url"])
            rows = [i for i in rows if p(eurl[i], ehost[i])]
        rows = list(rows) if isinstance(rows, range) else rows
        total = len(rows)
        offset = int(q.get("offset", "0"))
        sort = q.get("sort", "timestamp")
        desc = q.get("order", "desc") == "desc"
        sign = -1 if desc else 1
        col = {"timestamp": tss, "duration": durs, "bandwidth": bws}[sort]

        def key(i):
            v = col[i]
            if v is None:
                return (1, 0, sign * tss[i], sign * idnum[i])
            return (0, sign * v, sign * tss[i], sign * idnum[i])

        first = "-"
        if offset < total:
            first = ids[heapq.nsmallest(offset + 1, rows, key=key)[-1]]
        print(f"{name}\t{total}\t{first}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
