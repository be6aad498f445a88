#!/usr/bin/env python3
"""Size figures of the Rust sources under src/ (issue 10's before/after numbers).

    python3 scripts/code-metrics.py [REV]

REV (a git revision) reads the files as committed there; without it, the working tree.
Prints: public items (lines starting with `pub ` after indentation, as
`grep -c "^\\s*pub "`), files over 600 lines, and functions over 80 lines (from the `fn`
line to its closing brace; braces inside strings and comments are skipped roughly, so a
count may be off by one function, never by many).
"""

import re
import subprocess
import sys

FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def files(rev):
    if rev:
        out = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "src"],
                             capture_output=True, text=True, check=True).stdout
        for path in out.split():
            if path.endswith(".rs"):
                text = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True,
                                      text=True, check=True).stdout
                yield path, text
    else:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                              "src"], capture_output=True, text=True, check=True).stdout
        for path in out.split():
            if path.endswith(".rs"):
                with open(path, encoding="utf-8") as f:
                    yield path, f.read()


def strip(line):
    """The line without string/char literals and a trailing // comment (roughly)."""
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split("//", 1)[0]


def long_fns(path, text, limit):
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth, opened, j = 0, False, i
        while j < len(lines):
            s = strip(lines[j])
            if not opened and ";" in s and "{" not in s:
                break  # a declaration without a body
            for c in s:
                if c == "{":
                    depth += 1
                    opened = True
                elif c == "}":
                    depth -= 1
            if opened and depth <= 0:
                break
            j += 1
        n = j - i + 1
        if opened and n > limit:
            out.append((n, f"{path}:{i + 1} {m.group(6)}"))
        i += 1
    return out


def main():
    rev = sys.argv[1] if len(sys.argv) > 1 else None
    pub = 0
    big = []
    fns = []
    for path, text in files(rev):
        pub += sum(1 for l in text.split("\n") if re.match(r"^\s*pub ", l))
        n = text.count("\n")
        if n > 600:
            big.append((n, path))
        fns += long_fns(path, text, 80)
    print(f"source: {rev or 'working tree'}")
    print(f"public items (lines `pub `): {pub}")
    print(f"files over 600 lines: {len(big)}")
    for n, p in sorted(big, reverse=True):
        print(f"  {n:5} {p}")
    print(f"functions over 80 lines: {len(fns)}")
    for n, p in sorted(fns, reverse=True):
        print(f"  {n:5} {p}")


if __name__ == "__main__":
    main()
