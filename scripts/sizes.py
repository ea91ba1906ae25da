#!/usr/bin/env python3
"""Sizes the gates look at: files under provider/src over 800 lines and functions over 100
lines (raw lines, signature to closing brace; clippy's too_many_lines counts code lines only).
Usage: python3 scripts/sizes.py [--fn-limit N] [--file-limit N]"""
import re, sys, pathlib

fn_limit = int(sys.argv[sys.argv.index("--fn-limit") + 1]) if "--fn-limit" in sys.argv else 100
file_limit = int(sys.argv[sys.argv.index("--file-limit") + 1]) if "--file-limit" in sys.argv else 800
root = pathlib.Path(__file__).resolve().parent.parent / "provider" / "src"
FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")
for path in sorted(root.rglob("*.rs")):
    lines = path.read_text().splitlines()
    rel = path.relative_to(root.parent.parent)
    if len(lines) > file_limit:
        print(f"file {rel}: {len(lines)} lines")
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        indent = m.group(1)
        for j in range(i, len(lines)):
            if lines[j].rstrip().endswith(";") and j == i:
                break
            if lines[j] == indent + "}":
                n = j - i + 1
                if n > fn_limit:
                    print(f"fn {rel}:{i + 1} {m.group(7)}: {n} lines")
                break
