#!/usr/bin/env python3
"""Checks the structural rules of src/ (docs/ARCHITECTURE.md, "Rules"):

  layers    a file includes headers of its own module or of a module of a lower layer only
            (the layer table is read from docs/ARCHITECTURE.md); a module's *_internal.h is
            included from that module only;
  size      no file under src/ has more than 800 lines;
  headers   every function a header declares is defined in the .c file of the same name
            (a module's *_internal.h may declare functions of any .c of its module), and
            every function a .c file defines without `static` is declared in its own header
            or its module's *_internal.h.

Prints one line per rule ("ok", or "FAILED" followed by the offending places) and a last line
"N passed, N failed"; exits 1 when a rule failed. Usage: scripts/check_structure.py [ROOT]."""
import os
import re
import sys

MAX_LINES = 800

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
src = os.path.join(root, "src")


def read_layers():
    """The table after the marker line in docs/ARCHITECTURE.md: | layer | modules |."""
    text = open(os.path.join(root, "docs", "ARCHITECTURE.md"), encoding="utf-8").read()
    marker = text.find("<!-- layers")
    if marker < 0:
        sys.exit("check_structure: docs/ARCHITECTURE.md has no '<!-- layers' table")
    ranks = {}
    for line in text[marker:].splitlines()[1:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].isdigit():
            if ranks and not line.strip().startswith("|"):
                break
            continue
        for module in re.split(r"[,\s]+", cells[1].replace("`", "")):
            if module:
                ranks[module.rstrip("/")] = int(cells[0])
    return ranks


def module_of(rel):
    parts = rel.split(os.sep)
    return parts[0] if len(parts) > 1 else parts[0]  # "main.c" is a module of its own


def strip_comments(text):
    """Comments removed (their newlines kept), string and character literals replaced by 0,
    in one pass so that "http://" is a string and '"' a character."""
    token = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)

    def repl(m):
        t = m.group(0)
        if t.startswith("/*"):
            return "\n" * t.count("\n")
        if t.startswith("//"):
            return ""
        return "0"

    return token.sub(repl, text)


def top_level_statements(text):
    """(text, ends_with) of each top-level statement: ends_with is ';' or '{' (a body)."""
    text = re.sub(r"\\\n", " ", text)  # continued lines (macros) as one line
    text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
    text = re.sub(r"__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)", "", text)
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                out.append((text[start:i], "{"))
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                start = i + 1
        elif ch == ";" and depth == 0:
            out.append((text[start:i], ";"))
            start = i + 1
    return out


def function_name(stmt):
    s = " ".join(stmt.split())
    if not s or "(" not in s or s.startswith("typedef") or "=" in s.split("(")[0]:
        return None
    m = re.match(r"^(.*?)\b([A-Za-z_]\w*)\s*\(", s)
    if not m or m.group(2) in ("if", "while", "for", "switch", "return", "sizeof"):
        return None
    head = m.group(1)
    if not head.strip() or re.search(r"\(\s*\*", s.split(m.group(2))[0]):
        return None
    return m.group(2), head


def main():
    ranks = read_layers()
    files = []
    for d, _, names in os.walk(src):
        for n in names:
            if n.endswith((".c", ".h")):
                files.append(os.path.relpath(os.path.join(d, n), src))
    files.sort()
    problems = {"layers": [], "size": [], "headers": []}

    declared = {}  # header rel -> set of names
    defined = {}   # c rel -> set of names (non-static)
    for rel in files:
        raw = open(os.path.join(src, rel), encoding="utf-8").read()
        nlines = raw.count("\n")
        if nlines > MAX_LINES:
            problems["size"].append(f"src/{rel}: {nlines} lines")
        mod = module_of(rel)
        if mod not in ranks:
            problems["layers"].append(f"src/{rel}: module '{mod}' is not in the layer table")
            continue
        for target in re.findall(r'^\s*#\s*include\s+"([^"]+)"', raw, flags=re.M):
            tmod = target.split("/")[0] if "/" in target else mod
            if tmod == mod:
                continue
            if tmod not in ranks:
                problems["layers"].append(f"src/{rel}: includes {target} of unknown module '{tmod}'")
            elif target.endswith("_internal.h"):
                problems["layers"].append(f"src/{rel}: includes {target}, private to src/{tmod}/")
            elif ranks[tmod] >= ranks[mod]:
                problems["layers"].append(
                    f"src/{rel} (layer {ranks[mod]}) includes {target} (layer {ranks[tmod]})")
        code = strip_comments(raw)
        names = set()
        for stmt, end in top_level_statements(code):
            fn = function_name(stmt)
            if not fn:
                continue
            name, head = fn
            if re.search(r"\bstatic\b", head) or re.search(r"\bextern\b", head) and end == "{":
                continue
            if rel.endswith(".h") and end == ";":
                names.add(name)
            elif rel.endswith(".c") and end == "{" and name != "main":
                names.add(name)
        (declared if rel.endswith(".h") else defined)[rel] = names

    where_defined = {}
    for c, names in defined.items():
        for n in names:
            where_defined.setdefault(n, []).append(c)
    for h, names in declared.items():
        hdir, hbase = os.path.dirname(h), os.path.basename(h)[:-2]
        internal = hbase.endswith("_internal")
        for n in sorted(names):
            places = where_defined.get(n, [])
            if not places:
                continue  # declared, defined nowhere under src/ (a library's, or unused)
            ok = all(os.path.dirname(c) == hdir and (internal or os.path.basename(c)[:-2] == hbase) for c in places)
            if not ok:
                problems["headers"].append(f"src/{h} declares {n}, defined in " + ", ".join("src/" + c for c in places))
    for c, names in defined.items():
        cdir, cbase = os.path.dirname(c), os.path.basename(c)[:-2]
        own = declared.get(os.path.join(cdir, cbase + ".h"), set())
        internals = set()
        for h, hn in declared.items():
            if os.path.dirname(h) == cdir and h.endswith("_internal.h"):
                internals |= hn
        for n in sorted(names):
            if n not in own and n not in internals:
                problems["headers"].append(f"src/{c} defines {n} without `static`, not declared in "
                                           f"src/{os.path.join(cdir, cbase + '.h')} (or an *_internal.h)")
    passed = failed = 0
    for rule in ("layers", "size", "headers"):
        if problems[rule]:
            failed += 1
            print(f"structure {rule}: FAILED")
            for p in problems[rule]:
                print(f"  {p}")
        else:
            passed += 1
            print(f"structure {rule}: ok")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
