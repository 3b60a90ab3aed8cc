#!/usr/bin/env python3
"""Benchmark: `inspect` on a multi-GB OVA against a 10 KiB OVA and the bare .ovf.

    venv/bin/python benchmarks/inspect_sparse_ova.py [--size-gib 50] [--rounds 300] [--cli-rounds 20]

The OVA's disk is a sparse file (a hole), so the archive is really that large to any
reader but takes no space. Both files carry the same descriptor; the baseline is the
bare .ovf in the same run. Prints medians and 95th percentiles; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vmimage.contract.image import file_image
from vmimage.descriptor.samples import SAMPLES, write_ova
from vmimage.descriptor.source import read_image_file


def timings(call, rounds: int) -> list[float]:
    call()  # warm the page cache and the imports
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(samples) * 1e3:8.3f} ms   p95 {p95 * 1e3:8.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--cli-rounds", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        ova = write_ova(Path(directory) / "big.ova", SAMPLES[0], disk_bytes=args.size_gib * 2**30, hash_disk=False)
        small = write_ova(Path(directory) / "small.ova", SAMPLES[0], disk_bytes=4096)
        ovf = Path(directory) / "big.ovf"
        ovf.write_bytes(SAMPLES[0].descriptor("big-disk1.vmdk", args.size_gib * 2**30))
        print(
            f"OVA: {ova.stat().st_size / 2**30:.1f} GiB apparent, {ova.stat().st_blocks * 512 / 2**10:.0f} KiB on disk"
        )
        print(f"small OVA: {small.stat().st_size} bytes; OVF: {ovf.stat().st_size} bytes")

        def inspect(path: Path) -> None:
            file_image(read_image_file(str(path)), name="bench")

        print(f"\nin-process read + status, {args.rounds} rounds")
        print(f"  bare .ovf        {summary(timings(lambda: inspect(ovf), args.rounds))}")
        print(f"  10 KiB .ova      {summary(timings(lambda: inspect(small), args.rounds))}")
        print(f"  {args.size_gib:3d} GiB .ova    {summary(timings(lambda: inspect(ova), args.rounds))}")

        def cli(path: Path) -> None:
            subprocess.run([sys.executable, "-m", "vmimage", "inspect", str(path)], check=True, capture_output=True)

        print(f"\n`python -m vmimage inspect` process, {args.cli_rounds} rounds")
        print(f"  bare .ovf        {summary(timings(lambda: cli(ovf), args.cli_rounds))}")
        print(f"  10 KiB .ova      {summary(timings(lambda: cli(small), args.cli_rounds))}")
        print(f"  {args.size_gib:3d} GiB .ova    {summary(timings(lambda: cli(ova), args.cli_rounds))}")


if __name__ == "__main__":
    main()
