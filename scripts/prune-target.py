#!/usr/bin/env python3
"""Deletes superseded builds of this workspace's own crates from the target
directory, so that a long-lived machine's disk does not fill with the test
binaries of old dependency sets and features (each links RocksDB; the
directory once reached 50 GB).

    cargo test --no-run --message-format=json ... | prune-target.py collect STATE
    (once per build whose artifacts stay)
    prune-target.py apply STATE

`collect` records every workspace artifact that cargo's JSON messages name,
right after that build (a binary is named by its uplifted copy, a hard link
to its build in deps/ or examples/ that the next build may re-point); it
fails unless the build finished. `apply`, holding cargo's lock on the
directory, deletes in deps/ and examples/ every build of a workspace crate
(an executable or an .rlib, with its .rmeta and .d) that no collected build
named and that is older than STALE_DAYS (another clone sharing the target
directory may be on another dependency set), and the workspace's
incremental caches untouched for as long. Check builds (.rmeta alone, from
clippy), dependencies and RocksDB's build stay.
"""

import collections
import fcntl
import json
import os
import re
import shutil
import sys
import time

ARTIFACT = re.compile(r"(?:lib)?(?P<name>\w+?)-(?P<hash>[0-9a-f]{16})(?P<ext>\.\w+)?")
INCREMENTAL = re.compile(r"(?P<name>\w+?)-(?P<hash>[0-9a-z]{10,})")
STALE_DAYS = 1


def collect(state):
    """Appends `directory name hash` of each current workspace artifact."""
    current, uplifted, finished = set(), [], False
    for line in sys.stdin:
        if not line.startswith("{"):
            continue
        message = json.loads(line)
        finished |= message.get("reason") == "build-finished" and message.get("success") is True
        if message.get("reason") != "compiler-artifact":
            continue
        if not message["package_id"].startswith("path+file://"):
            continue  # a dependency
        for path in message["filenames"] + [message.get("executable") or ""]:
            m = ARTIFACT.fullmatch(os.path.basename(path))
            if m:
                current.add((os.path.dirname(path), m["name"], m["hash"]))
            elif path:
                uplifted.append(path)
    if not finished:
        sys.exit("prune-target: the build did not finish; nothing collected")
    directories = {d for d, _, _ in current} | {os.path.dirname(p) for p in uplifted}
    for path in uplifted:
        name = os.path.basename(path).replace("-", "_")
        found = [
            (directory, m["name"], m["hash"])
            for directory in directories
            for entry in os.listdir(directory)
            if entry.startswith(name + "-")
            and (m := ARTIFACT.fullmatch(entry))
            and os.path.samefile(path, os.path.join(directory, entry))
        ]
        # Not found when cargo copied instead of linking: keep every build
        # of that name.
        current.update(found or [(directory, name, "*") for directory in directories])
    with open(state, "a") as f:
        f.writelines(f"{d} {n} {h}\n" for d, n, h in sorted(current))


def apply(state):
    with open(state) as f:
        entries = [line.split() for line in f if line.strip()]
    os.remove(state)
    if not entries:
        sys.exit("prune-target: no build was collected; nothing pruned")
    current = {(d, n, h) for d, n, h in entries}
    names = {n for _, n, _ in entries}
    profiles = {os.path.dirname(d) for d, _, _ in entries if os.path.basename(d) == "deps"}
    locks = [open(os.path.join(p, ".cargo-lock"), "a") for p in profiles]
    for lock in locks:
        fcntl.flock(lock, fcntl.LOCK_EX)  # cargo's own lock: no build runs meanwhile
    cutoff = time.time() - STALE_DAYS * 86400
    freed = 0
    for directory in {d for d, _, _ in entries}:
        builds = collections.defaultdict(list)
        for entry in os.listdir(directory):
            m = ARTIFACT.fullmatch(entry)
            if not m or m["name"] not in names:
                continue
            if {(directory, m["name"], m["hash"]), (directory, m["name"], "*")} & current:
                continue
            builds[(m["name"], m["hash"])].append(os.path.join(directory, entry))
        for paths in builds.values():
            if not any(p.endswith(".rlib") or os.access(p, os.X_OK) for p in paths):
                continue  # a check build
            if max(os.path.getmtime(p) for p in paths) > cutoff:
                continue
            for path in paths:
                freed += os.path.getsize(path)
                os.remove(path)
    for profile in profiles:
        incremental = os.path.join(profile, "incremental")
        for entry in os.listdir(incremental) if os.path.isdir(incremental) else []:
            m = INCREMENTAL.fullmatch(entry)
            path = os.path.join(incremental, entry)
            if m and m["name"] in names and os.path.getmtime(path) < cutoff:
                freed += sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
                shutil.rmtree(path, ignore_errors=True)
    print(f"prune-target: freed {freed / 2**20:.0f} MiB of superseded builds")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("collect", "apply"):
        sys.exit(__doc__)
    {"collect": collect, "apply": apply}[sys.argv[1]](sys.argv[2])
