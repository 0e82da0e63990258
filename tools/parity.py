#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Parity with Node BullMQ's own tests: which of its behavioural test cases
(docs/parity/node-tests.tsv) a bullc test mirrors.

A bullc test that mirrors a Node case carries one marker line, in tests/ or
compat-tests/test/:
    /* node: "<title>" */        (C)
    // node: "<title>"           (JavaScript)
<title> is the case's exact title, or "[D] <title>" where D names the
describe it sits in (its innermost describe, or any run of its describe path
joined with " > ") when the title alone names several cases.

A case that tests a JavaScript-only mechanism (a promise, a listener that
throws, a private class driven through a mock...) has no C counterpart: it is
listed in docs/parity/not-applicable.tsv (file, describe path, title, reason)
instead of being mirrored. Every one of the cases is then mirrored, not
applicable, or missing.

    tools/parity.py            per Node test file: its counts, the cases
                               missing and those not applicable (with the
                               reason), then the total
    tools/parity.py --summary  the per-file counts and the total only
    tools/parity.py --count    the number of mirrored cases only
    tools/parity.py --check    both data files parse, every marker names
                               exactly one case (a typo fails), every
                               not-applicable entry names one case, and no case
                               is both mirrored and not applicable; exit 1 if not
"""
import os
import re
import subprocess
import sys
from collections import OrderedDict

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DATA = os.path.join(ROOT, "docs", "parity", "node-tests.tsv")
NOT_APPLICABLE = os.path.join(ROOT, "docs", "parity", "not-applicable.tsv")
MARKER_DIRS = ("tests", os.path.join("compat-tests", "test"))
MARKER_EXT = (".c", ".h", ".js")
MARKER = re.compile(r'(?:/\*|//)\s*node: "(.*)"\s*(?:\*/)?\s*$')


def load_cases(errors):
    cases = []
    with open(DATA, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 3 or not all(fields):
                errors.append(f"{DATA}:{n}: expected 3 tab-separated fields: file, describe path, title")
                continue
            file, describe, title = fields
            if not file.endswith(".test.ts") or title != title.strip() or "  " in title:
                errors.append(f"{DATA}:{n}: not a Node test file, or a title with stray spaces: {line!r}")
            cases.append({"file": file, "path": describe.split(" > "), "title": title})
    return cases


def source_files():
    """The files markers may sit in: git's list when there is one (a build
    directory inside the tree is not read), else a walk."""
    try:
        cmd = ["git", "-C", ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "--", *MARKER_DIRS]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split("\n")
        return [p for p in out if p.endswith(MARKER_EXT)]
    except (OSError, subprocess.CalledProcessError):
        found = []
        for d in MARKER_DIRS:
            for base, _, names in os.walk(os.path.join(ROOT, d)):
                found += [os.path.relpath(os.path.join(base, n), ROOT) for n in names if n.endswith(MARKER_EXT)]
        return sorted(found)


def load_markers(errors):
    markers = []  # (where, text)
    for rel in source_files():
        path = os.path.join(ROOT, rel)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if 'node: "' not in line:
                    continue
                m = MARKER.search(line)
                if not m:
                    errors.append(f"{rel}:{n}: a node: marker must be a whole comment on one line: {line.strip()}")
                    continue
                markers.append((f"{rel}:{n}", m.group(1)))
    return markers


def candidates(cases, text):
    m = re.match(r"\[(.+?)\] (.*)$", text)
    if m:
        scope, title = m.group(1).split(" > "), m.group(2)
        found = [i for i, c in enumerate(cases) if c["title"] == title and contains(c["path"], scope)]
        innermost = [i for i in found if cases[i]["path"][-len(scope):] == scope]
        if innermost:
            found = innermost
        if found or not text.startswith("["):
            return found
    # no describe named (or a title that itself starts with "["): the shallowest cases of that title
    found = [i for i, c in enumerate(cases) if c["title"] == text]
    depth = min((len(cases[i]["path"]) for i in found), default=0)
    return [i for i in found if len(cases[i]["path"]) == depth]


def contains(path, run):
    return any(path[i : i + len(run)] == run for i in range(len(path) - len(run) + 1))


def resolve(cases, markers, errors):
    """Markers -> the indexes of the cases they mirror."""
    mirrored = {}  # marker text -> the cases it names, in order; each marker takes the next one
    for where, text in markers:
        found = candidates(cases, text)
        same = {(cases[i]["file"], tuple(cases[i]["path"])) for i in found}
        if not found:
            errors.append(f'{where}: no Node test case is titled "{text}" (docs/parity/node-tests.tsv)')
        elif len(same) > 1:
            where_all = "; ".join(f"{cases[i]['file']}: {' > '.join(cases[i]['path'])}" for i in found)
            errors.append(f'{where}: "{text}" names {len(found)} cases ({where_all}): '
                          f'name the describe, as "[D] title" with D a run of the describe path joined by " > "')
        else:
            # Node has a few cases twice under the same describe and title: each marker mirrors one
            # of them, so both need a marker (a third marker of the same text adds nothing).
            taken = mirrored.setdefault(text, [])
            if len(taken) < len(found):
                taken.append(found[len(taken)])
    return {i for taken in mirrored.values() for i in taken}


def load_not_applicable(cases, errors):
    """docs/parity/not-applicable.tsv -> {case index: reason}. An entry names its case exactly
    (file, whole describe path, title); a case Node has twice needs two entries."""
    na = {}
    if not os.path.exists(NOT_APPLICABLE):
        return na
    by_key = {}
    for i, c in enumerate(cases):
        by_key.setdefault((c["file"], " > ".join(c["path"]), c["title"]), []).append(i)
    with open(NOT_APPLICABLE, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            where = f"{os.path.relpath(NOT_APPLICABLE, ROOT)}:{n}"
            fields = line.split("\t")
            if len(fields) != 4 or not all(f.strip() for f in fields):
                errors.append(f"{where}: expected 4 tab-separated fields: file, describe path, title, reason")
                continue
            key, reason = tuple(fields[:3]), fields[3]
            free = [i for i in by_key.get(key, []) if i not in na]
            if not by_key.get(key):
                errors.append(f"{where}: names no Node test case (file, describe path and title as in "
                              f"docs/parity/node-tests.tsv): {' | '.join(key)}")
            elif not free:
                errors.append(f"{where}: lists a case already listed: {' | '.join(key)}")
            else:
                na[free[0]] = reason
    return na


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode not in ("", "--summary", "--count", "--check"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    errors = []
    cases = load_cases(errors)
    markers = load_markers(errors)
    done = resolve(cases, markers, errors)
    na = load_not_applicable(cases, errors)
    for i in sorted(done & set(na)):
        c = cases[i]
        errors.append(f"{c['file']}: [{' > '.join(c['path'])}] {c['title']}: both mirrored by a marker "
                      f"and listed as not applicable (docs/parity/not-applicable.tsv): keep one")
    if mode == "--check":
        print(f"parity: {len(cases)} Node cases, {len(markers)} markers, {len(done)} cases mirrored, "
              f"{len(na)} not applicable" + (f", {len(errors)} error(s):" if errors else ""))
        for e in errors:
            print(f"parity: {e}")
        return 1 if errors or not cases else 0
    for e in errors:
        print(f"parity: warning: {e}", file=sys.stderr)
    if mode == "--count":
        print(len(done))
        return 0
    files = OrderedDict()
    for i, c in enumerate(cases):
        files.setdefault(c["file"], []).append(i)
    missing = [i for i in range(len(cases)) if i not in done and i not in na]
    for file, idx in files.items():
        m = sum(1 for i in idx if i in done)
        n = sum(1 for i in idx if i in na and i not in done)
        print(f"{file}: {len(idx)} cases: {m} mirrored, {n} not applicable, {len(idx) - m - n} missing")
        if mode == "":
            for i in idx:
                if i in done:
                    continue
                where = f"[{' > '.join(cases[i]['path'])}] {cases[i]['title']}"
                if i in na:
                    print(f"    not applicable: {where}: {na[i]}")
                else:
                    print(f"    missing: {where}")
    n_na = len(set(na) - done)
    print(f"total: {len(cases)} accounted for: {len(done)} mirrored, {n_na} not applicable, "
          f"{len(missing)} missing (Node BullMQ behavioural test cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
