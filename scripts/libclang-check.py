#!/usr/bin/env python3
"""Finds the libclang that bindgen will load for rocksdb's bindings, the way
clang-sys (bindgen's loader, `runtime` feature) finds it, then loads it and
parses a file that includes clang's builtin headers, as bindgen does.

Exit 0 and print the library's path when that works; exit 1 with the reason
otherwise. `--root DIR` searches DIR instead of / (the set-up's own test,
scripts/test-setup.sh, runs it against fake roots); environment variables
and llvm-config are then ignored, since they describe the real machine.

The search follows clang-sys 1.9 (build/common.rs, build/dynamic.rs):
LIBCLANG_PATH alone when set; else `llvm-config --prefix`/{bin,lib,lib64},
LD_LIBRARY_PATH, LIBRARY_PATH and the Linux directory patterns; file names
libclang.so, libclang-*.so, libclang.so.*, libclang-*.so.*, never
libclang-cpp (a different library that Debian ships without libclang); the
highest version wins, which is the one that must work.
"""

import argparse
import ctypes
import glob
import os
import re
import subprocess
import sys
import tempfile

LINUX_DIRECTORIES = [
    "/usr/local/llvm*/lib*",
    "/usr/local/lib*/*/*",
    "/usr/local/lib*/*",
    "/usr/local/lib*",
    "/usr/lib*/*/*",
    "/usr/lib*/*",
    "/usr/lib*",
]
FILE_PATTERNS = ["libclang.so", "libclang-*.so", "libclang.so.*", "libclang-*.so.*"]
# What rocksdb's C header (include/rocksdb/c.h) pulls from clang's resource
# directory: without libclang-common-N-dev these are missing and bindgen fails.
PROBE_SOURCE = "#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n"


def search_directory(directory):
    """clang-sys's search_directory: each pattern in turn (glob's order, names
    matched case-sensitively), skipping `-cpp.` names."""
    found = []
    for pattern in FILE_PATTERNS:
        for path in sorted(glob.glob(os.path.join(glob.escape(directory), pattern))):
            if "-cpp." not in os.path.basename(path):
                found.append(path)
    return found


def glob_directories(pattern):
    """The directory patterns are matched case-insensitively."""
    parts = [
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in part)
        for part in pattern.split(os.sep)
    ]
    return [d for d in sorted(glob.glob(os.sep.join(parts))) if os.path.isdir(d)]


def candidates(root):
    real = root == "/"
    if real and os.environ.get("LIBCLANG_PATH"):
        path = os.environ["LIBCLANG_PATH"]
        parent = os.path.dirname(path)
        if parent and path in search_directory(parent):
            return [path]
        return search_directory(path)
    directories = []
    if real:
        try:
            prefix = subprocess.run(
                ["llvm-config", "--prefix"], capture_output=True, text=True, check=True
            ).stdout.splitlines()[0]
            directories += [os.path.join(prefix, d) for d in ("bin", "lib", "lib64")]
        except (OSError, subprocess.CalledProcessError, IndexError):
            pass
        for variable in ("LD_LIBRARY_PATH", "LIBRARY_PATH"):
            directories += [d for d in os.environ.get(variable, "").split(":") if d]
    for pattern in LINUX_DIRECTORIES:
        directories += glob_directories(os.path.join(root, pattern.lstrip("/")))
    found = []
    for directory in directories:
        found += search_directory(directory)
    return found


def version(path):
    """clang-sys's parse_version, quirks included: `libclang-` names lose
    their last three characters (`libclang-14.so.1` is 14.0)."""
    name = os.path.basename(path)
    if name.startswith("libclang.so."):
        text = name[len("libclang.so."):]
    elif name.startswith("libclang-"):
        text = name[9:-3]
    else:
        return []
    return [int(p) if p.isdigit() else 0 for p in text.split(".")]


def is_elf64(path):
    try:
        with open(path, "rb") as f:
            header = f.read(5)
    except OSError:
        return False
    return header[:4] == b"\x7fELF" and header[4:5] == b"\x02"


def parse_errors(path):
    """Loads the library and parses PROBE_SOURCE with it; returns the errors."""
    try:
        lib = ctypes.CDLL(path)
        lib.clang_createIndex  # a library, but is it libclang's C API?
    except (OSError, AttributeError) as e:
        return [f"cannot be loaded as libclang: {e}"]
    lib.clang_createIndex.restype = ctypes.c_void_p
    lib.clang_parseTranslationUnit.restype = ctypes.c_void_p
    lib.clang_parseTranslationUnit.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int,
        ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint,
    ]
    lib.clang_getNumDiagnostics.argtypes = [ctypes.c_void_p]
    lib.clang_getDiagnostic.restype = ctypes.c_void_p
    lib.clang_getDiagnostic.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    lib.clang_getDiagnosticSeverity.argtypes = [ctypes.c_void_p]
    lib.clang_getDiagnosticSpelling.restype = CXString
    lib.clang_getDiagnosticSpelling.argtypes = [ctypes.c_void_p]
    lib.clang_getCString.restype = ctypes.c_char_p
    lib.clang_getCString.argtypes = [CXString]
    with tempfile.NamedTemporaryFile("w", suffix=".h", delete=False) as f:
        f.write(PROBE_SOURCE)
        source = f.name
    try:
        index = lib.clang_createIndex(0, 0)
        unit = lib.clang_parseTranslationUnit(index, source.encode(), None, 0, None, 0, 0)
        if not unit:
            return ["cannot parse a C header"]
        errors = []
        for i in range(lib.clang_getNumDiagnostics(unit)):
            diagnostic = lib.clang_getDiagnostic(unit, i)
            if lib.clang_getDiagnosticSeverity(diagnostic) >= 3:  # error, fatal
                spelling = lib.clang_getDiagnosticSpelling(diagnostic)
                errors.append(lib.clang_getCString(spelling).decode(errors="replace"))
        return errors
    finally:
        os.unlink(source)


class CXString(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("private_flags", ctypes.c_uint)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/")
    args = parser.parse_args()
    found = [p for p in candidates(args.root) if is_elf64(p)]
    if not found:
        print("libclang missing: bindgen finds no libclang.so or libclang-N.so "
              "(libclang-cpp does not count)")
        return 1
    # clang-sys keeps the highest version; the first found breaks ties.
    best = max(reversed(found), key=version)
    errors = parse_errors(best)
    if errors:
        reason = "; ".join(errors[:3])
        if any(re.search(r"'std\w+\.h' file not found", e) for e in errors):
            reason += " (clang's builtin headers are missing)"
        print(f"libclang unusable: {best}: {reason}")
        return 1
    print(best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
