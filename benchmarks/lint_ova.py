#!/usr/bin/env python3
"""Benchmark: `vmimage lint` of a large OVA against one SHA-256 of the same file, in the same run.

    venv/bin/python benchmarks/lint_ova.py [--size-gib 4]

The OVA's disk is a sparse file (no disk space); every command reads it once through the page
cache, which the script warms first so none pays for faulting in the holes. The baselines are
`openssl dgst -sha256` (OpenSSL, with SHA-NI where the CPU has it, as Python's hashlib) and
coreutils' `sha256sum`. Lint hashes every member with the manifest's algorithm, so its cost
should be one SHA-256 of the file.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=False, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=4)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from vmimage.descriptor.samples import SAMPLES, write_ova

    with tempfile.TemporaryDirectory() as directory:
        ova = write_ova(Path(directory) / "big.ova", SAMPLES[0], disk_bytes=int(args.size_gib * 2**30))
        timed(["cat", str(ova)])  # warm the page cache
        openssl = min(timed(["openssl", "dgst", "-sha256", str(ova)]) for _ in range(3))
        coreutils = min(timed(["sha256sum", str(ova)]) for _ in range(3))
        lint = min(timed([str(ROOT / "venv" / "bin" / "vmimage"), "lint", str(ova)]) for _ in range(3))
        gib = ova.stat().st_size / 2**30
        print(
            f"{gib:.1f} GiB OVA, best of 3: openssl dgst -sha256 {openssl:.2f} s, sha256sum {coreutils:.2f} s, "
            f"vmimage lint {lint:.2f} s ({lint / openssl:.2f} x openssl)"
        )


if __name__ == "__main__":
    main()
