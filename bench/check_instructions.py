#!/usr/bin/env python3
"""CI regression check: instructions per message on the UDP fast path, counted by callgrind.

usage: check_instructions.py UDP_PATH_INSTRUCTIONS_BINARY instructions.txt BUILD_TYPE

instructions.txt lists "<mode> <instructions per message>" for the modes of
udp_path_instructions (parse: the parser alone; worker: decode, parse, attribution, transactions
and counting). The check fails when a mode costs more than the recorded figure plus TOLERANCE, and
says so when it costs much less (then the file should be lowered). Callgrind counts instructions,
not time, so the figures repeat exactly whatever else the machine does; valgrind does not emulate
AVX-512, so the AVX2 kernel is what is counted. The figures hold for the Release build; other
build types skip (exit 77), except under CI, where the README's command always builds Release.
"""
import os
import re
import shutil
import subprocess
import sys

TOLERANCE = 0.05


def count(binary, mode):
    out = subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no", "--callgrind-out-file=/dev/null",
                          binary, mode], capture_output=True, text=True, check=True)
    text = out.stdout + out.stderr
    ir = int(re.search(r"Collected : (\d+)", text).group(1))
    messages = int(re.search(r"messages=(\d+)", text).group(1))
    return ir / messages


def main():
    binary, table, build_type = sys.argv[1:4]
    if build_type != "Release":
        msg = f"instruction figures hold for Release builds, this is {build_type or 'unset'}"
        if os.environ.get("CI"):
            print("FAIL: " + msg)
            return 1
        print("SKIP: " + msg)
        return 77
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (deploy/setup-debian.sh --test installs it)")
        return 1 if os.environ.get("CI") else 77
    recorded = {}
    with open(table) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line:
                mode, value = line.split()
                recorded[mode] = float(value)
    failed = False
    for mode, want in recorded.items():
        got = count(binary, mode)
        verdict = "ok"
        if got > want * (1 + TOLERANCE):
            verdict, failed = f"REGRESSION: more than {TOLERANCE:.0%} above the recorded figure", True
        elif got < want * (1 - TOLERANCE):
            verdict = "better than recorded: lower the figure in bench/instructions.txt"
        print(f"{mode}: {got:.0f} instructions/message (recorded {want:.0f}) {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
