#!/usr/bin/env python3
"""A flame graph (SVG) from `perf script` output: bench/flamegraph.py [--title T] [--comm C]... < perf.txt > out.svg

Reads the samples `perf script` prints (a header line "comm pid/tid ... period event:" then one
frame per line, innermost first, then a blank line), keeps those of the given commands (all when
none is given), folds identical stacks, and draws them in the usual way: the root at the bottom,
each frame as wide as its share of the samples, callees above callers, siblings sorted by name.
Hovering a frame shows its name, samples and share (an SVG <title>, no script). Also writes the
folded stacks to --folded FILE when asked (the format other flame graph tools read), and prints
the 15 functions with the most samples of their own to stderr.

Written here because Debian 12 packages no flame graph tool; standard library only.
"""
import argparse
import collections
import html
import re
import sys
import zlib

FRAME = re.compile(r"^\s*[0-9a-f]+\s+(.+?)\s+\((.*)\)\s*$")


def read_samples(lines, comms):
    stacks = collections.Counter()
    header, frames = None, []

    def flush():
        if header is not None and frames and (not comms or header in comms):
            stacks[";".join(reversed(frames))] += 1

    for line in lines:
        if not line.strip():
            flush()
            header, frames = None, []
            continue
        if header is None and not line[0].isspace():
            header = line.split()[0]
            frames = []
            continue
        m = FRAME.match(line)
        if m:
            sym, dso = m.group(1), m.group(2)
            if sym == "[unknown]":
                sym = f"[{dso.rsplit('/', 1)[-1]}]"
            sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
            if dso == "[kernel.kallsyms]":
                sym += "_[k]"  # the usual mark of a kernel frame
            frames.append(sym)
    flush()
    return stacks


def tree_of(stacks):
    root = {"name": "all", "count": 0, "children": {}}
    for stack, n in stacks.items():
        root["count"] += n
        node = root
        for name in stack.split(";"):
            node = node["children"].setdefault(name, {"name": name, "count": 0, "children": {}})
            node["count"] += n
    return root


def color(name):
    h = zlib.crc32(name.encode())
    if name.endswith("_[k]"):
        return f"rgb({200 + h % 55},{90 + h % 60},{40 + h % 40})"
    return f"rgb({205 + h % 50},{80 + (h >> 8) % 120},{20 + (h >> 16) % 40})"


def render(root, title, width=1200, row=16):
    total = root["count"] or 1
    scale = (width - 20) / total
    drawn = []  # (node, x, level) of every frame at least 0.3 px wide

    def walk(node, x, level):
        if node["count"] * scale < 0.3:
            return
        drawn.append((node, x, level))
        cx = x
        for child in sorted(node["children"].values(), key=lambda c: c["name"]):
            walk(child, cx, level + 1)
            cx += child["count"] * scale

    walk(root, 10.0, 0)
    height = (1 + max(level for _, _, level in drawn)) * row + 70
    rows = []
    for node, x, level in drawn:
        w = node["count"] * scale
        y = height - 10 - (level + 1) * row
        share = node["count"] / total * 100
        text = ""
        chars = int(w / 7)
        if chars >= 3:
            shown = node["name"] if len(node["name"]) <= chars else node["name"][: chars - 2] + ".."
            text = f'<text x="{x + 3:.1f}" y="{y + row - 4}">{html.escape(shown)}</text>'
        rows.append(f'<g><title>{html.escape(node["name"])} ({node["count"]} samples, {share:.2f} %)</title>'
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" fill="{color(node["name"])}" rx="2"/>'
                    f"{text}</g>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">'
            f'<rect width="100%" height="100%" fill="#fdfdf5"/>'
            f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15">{html.escape(title)}</text>'
            f'<text x="10" y="40">{total} samples; kernel frames end in _[k]; hover a frame for its share</text>'
            + "".join(rows) + "</svg>\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--title", default="flame graph")
    ap.add_argument("--comm", action="append", default=[], help="keep only samples of this command (repeatable)")
    ap.add_argument("--folded", help="also write the folded stacks here")
    a = ap.parse_args()
    stacks = read_samples(sys.stdin, set(a.comm))
    if not stacks:
        print("flamegraph.py: no samples (of the given commands) in the input", file=sys.stderr)
        return 1
    if a.folded:
        with open(a.folded, "w") as f:
            for stack, n in sorted(stacks.items()):
                f.write(f"{stack} {n}\n")
    self_counts = collections.Counter()
    for stack, n in stacks.items():
        self_counts[stack.rsplit(";", 1)[-1]] += n
    total = sum(stacks.values())
    print(f"top functions by own samples ({total} samples):", file=sys.stderr)
    for name, n in self_counts.most_common(15):
        print(f"  {n / total * 100:6.2f} %  {name}", file=sys.stderr)
    sys.stdout.write(render(tree_of(stacks), a.title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
