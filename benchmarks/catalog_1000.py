#!/usr/bin/env python3
"""Benchmark: a 1,000-image catalog through the real engine, as a multiple of the engine's own floor.

    venv/bin/python benchmarks/catalog_1000.py [--items 1000] [--backend file|postgres]
        [--skip-checkpoints] [--profile DIR]

A library of N small OVAs (filled directly, as a vendor would) is synced to cluster scope,
with a real API server (scripts/devcluster) as the cluster, by the real Pulumi CLI
(scripts/toolchain), on a file:// or postgres:// (scripts/postgres) backend. Three phases:
the first `up`, a no-change `preview --expect-no-changes`, and a one-image change (the vendor
adds an item; `up`).

The baseline runs the same phases in the same run, on the same engine and backend: the stack
of benchmarks/baseline (the same number and kinds of resources, inputs of the same shape)
whose dynamic provider does no work. The figures that count are vmimage's times as a multiple
of the baseline's; absolute times move from machine to machine.

The simulator logs every request it serves (scripts/vcsim --requests), so the figures say
what each phase asked of vCenter. Also printed: each stack's state size per image, and the peak RSS
of the dynamic provider host. With --profile DIR, vmimage's first up and no-change preview run
profiled: py-spy samples the program and the provider host (DIR/<phase>-<process>.txt, collapsed stacks; a summary is
printed as they end), and the CLI writes its own CPU profile (DIR/<phase>-cli.<pid>.cpu).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.devcluster import install_crds, start_cluster  # noqa: E402
from tests.postgres import Postgres, start_postgres  # noqa: E402
from tests.pulumi_cli import Stack  # noqa: E402
from tests.test_interrupted import descendants  # noqa: E402
from tests.vcsim import RequestLog, start_simulator  # noqa: E402
from vmimage.contract.crds import crds  # noqa: E402
from vmimage.descriptor.samples import SampleImage, write_ova  # noqa: E402
from vmimage.vsphere.content_library import ContentLibraryClient  # noqa: E402
from vmimage.vsphere.inventory import find_datastore_id  # noqa: E402
from vmimage.vsphere.publish import upload_source  # noqa: E402
from vmimage.vsphere.rest import VapiSession  # noqa: E402
from vmimage.vsphere.settings import ConnectionSettings  # noqa: E402

BASELINE = ROOT / "benchmarks" / "baseline"
PHASES = ("first up", "no-change preview", "one-image change")
COMMAND_TIMEOUT = [3600.0]  # --command-timeout: how long one `pulumi` command may run
PASSWORD = "bench"


class PeakRss:
    """The largest VmHWM seen among `python -m pulumi.dynamic` processes, sampled every 0.1 s."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    if b"pulumi.dynamic" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                        continue
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                except OSError:
                    continue

    def stop(self) -> float:
        self._stop.set()
        return self.peak_kib / 1024


def summary(counts: collections.Counter[str]) -> str:
    return f"{sum(counts.values())} requests" + (f" {dict(counts.most_common())}" if counts else "")


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def state_bytes(stack: Stack) -> tuple[int, int]:
    """The checkpoint's size as compact JSON (what the backends store, give or take indentation),
    and as `pulumi stack export` prints it (indented)."""
    exported = stack.run("stack", "export").stdout
    return len(json.dumps(json.loads(exported), separators=(",", ":")).encode()), len(exported.encode())


def add_item(settings: ConnectionSettings, library: str, name: str, ova: Path) -> None:
    with VapiSession(settings) as session:
        client = ContentLibraryClient(session)
        item_id = client.create_item(library, name, "", "OVF")
        upload_source(client, item_id, str(ova))


def profiled(stack: Stack, directory: Path, label: str, *args: str) -> None:
    """Run ``pulumi ARGS`` on the stack, profiled: the CLI writes its CPU profile (Go's pprof), and
    py-spy attaches to the program and to the provider host as each starts (by pid: they are
    children of the CLI's language host, which py-spy cannot follow from the CLI). Prints where
    the time went."""
    directory.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy", path=str(ROOT / "venv" / "bin")) or shutil.which("py-spy")
    if spy is None:
        print("  --profile: py-spy is not installed (venv/bin/pip install py-spy); the CLI's profile only")
    pulumi = shutil.which("pulumi", path=stack.env["PATH"])
    cli = directory / f"{label}-cli"
    run = subprocess.Popen(
        [str(pulumi), *args, "--profiling", str(cli), "--non-interactive", "--stack", stack.name],
        cwd=stack.project_dir,
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(run.stdout or []), daemon=True)
    reader.start()
    roles = {"pulumi-language-python-exec": "program", "pulumi.dynamic": "provider-host"}
    spies: list[tuple[str, subprocess.Popen]] = []
    seen: set[int] = set()
    while run.poll() is None:
        for pid in descendants(run.pid):
            if pid in seen or spy is None:
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            role = next((name for marker, name in roles.items() if marker in cmdline), None)
            if role is None:
                continue
            seen.add(pid)
            spies.append(
                (
                    role,
                    subprocess.Popen(
                        [
                            spy,
                            "record",
                            "--pid",
                            str(pid),
                            "--rate",
                            "100",
                            # the program's event loop is what the run waits on: its waits count
                            *(("--idle",) if role == "program" else ()),
                            "--format",
                            "raw",
                            "-o",
                            str(directory / f"{label}-{role}.txt"),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    ),
                )
            )
        time.sleep(0.02)
    reader.join(10)
    for _, process in spies:
        process.wait(120)
    if run.returncode != 0:
        raise RuntimeError(f"pulumi {' '.join(args)} exited {run.returncode}:\n{''.join(output)[-3000:]}")
    print(f"  profile of vmimage's {label} ({directory}):")
    for role, _ in spies:
        print_profile(role, directory / f"{label}-{role}.txt")
    profiles = sorted(directory.glob(f"{label}-cli.*.cpu"))
    if profiles and shutil.which("go"):
        top = subprocess.run(
            ["go", "tool", "pprof", "-top", "-nodecount=15", str(pulumi), str(profiles[-1])],
            capture_output=True,
            text=True,
        )
        print("    the CLI (go tool pprof -top):")
        print("      " + "\n      ".join(line for line in top.stdout.splitlines()[3:22]))


def print_profile(role: str, raw: Path, top: int = 10) -> None:
    """Where one process's main thread spent its time, from py-spy's collapsed stacks
    (``frame;frame;… count``): by the deepest frame of vmimage's own code, else by the SDK's
    function. Worker threads mostly wait on gRPC, so only the main thread (the event loop, or
    the provider host's) is summarised; the raw file has every thread. The program is sampled
    waiting too (py-spy --idle), so a wait on vCenter or on a blocking call to the engine shows."""
    if not raw.exists():
        print(f"    {role}: no profile")
        return
    where: collections.Counter[str] = collections.Counter()
    samples = threads = 0
    for line in raw.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        frames = stack_text.split(";")
        threads += int(count_text)
        if "Thread._bootstrap" in frames[0]:  # a worker thread
            continue
        samples += int(count_text)
        ours = [f for f in frames if str(ROOT) in f and "site-packages" not in f and "/.build/" not in f]
        if ours:
            where[ours[-1].split(" (")[0] + " (" + ours[-1].split("/")[-1]] += int(count_text)
        else:
            names = [f.split(" (")[0] for f in frames]
            where["pulumi SDK: " + next((n for n in reversed(names) if not n.startswith("_")), names[-1])] += int(
                count_text
            )
    sampled = "sampled, waits included" if role == "program" else "of CPU"
    print(f"    {role}: main thread {samples / 100:.1f} s {sampled} ({threads / 100:.1f} s in all threads)")
    for frame, count in where.most_common(top):
        print(f"      {100 * count / max(samples, 1):5.1f}%  {frame}")


def run_phases(
    stack: Stack,
    add_one: Callable[[], None],
    requests: RequestLog | None,
    rss: bool = False,
    profile: Path | None = None,
) -> dict[str, float | int | str]:
    """The three phases on ``stack``: times (s), state bytes, and what vCenter was asked.
    ``profile``: the first up and the no-change preview run profiled (DIR)."""

    def up() -> object:
        if profile is None:
            return stack.up("--parallel", "16", timeout=COMMAND_TIMEOUT[0])
        return profiled(stack, profile, "first-up", "up", "--yes", "--skip-preview", "--parallel", "16")

    def preview() -> object:
        if profile is None:
            return stack.preview("--expect-no-changes", timeout=COMMAND_TIMEOUT[0])
        return profiled(stack, profile, "no-change-preview", "preview", "--expect-no-changes")

    figures: dict[str, float | int | str] = {}
    peak = PeakRss() if rss else None
    figures["first up"] = timed(up)
    if peak is not None:
        figures["rss"] = peak.stop()
    figures["first up requests"] = summary(requests.take()) if requests else ""
    figures["state"], figures["exported"] = state_bytes(stack)
    figures["no-change preview"] = timed(preview)
    figures["no-change preview requests"] = summary(requests.take()) if requests else ""
    add_one()
    if requests:
        requests.take()  # the vendor's own requests
    figures["one-image change"] = timed(lambda: stack.up("--parallel", "16", timeout=COMMAND_TIMEOUT[0]))
    figures["one-image change requests"] = summary(requests.take()) if requests else ""
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--backend", choices=("file", "postgres"), default="file")
    parser.add_argument(
        "--skip-checkpoints",
        action="store_true",
        help="PULUMI_SKIP_CHECKPOINTS=true: the engine writes the state once at the end, not after every step",
    )
    parser.add_argument(
        "--command-timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="how long one pulumi command may run before the benchmark gives up (default 3600)",
    )
    parser.add_argument(
        "--without-baseline", action="store_true", help="vmimage's stack only (comparing backends, say)"
    )
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="profile vmimage's first up and no-change preview into DIR"
    )
    args = parser.parse_args()
    COMMAND_TIMEOUT[0] = args.command_timeout

    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        for name in ("sim", "kube"):
            (work / name).mkdir()
        simulator = start_simulator(work / "sim")
        cluster = start_cluster(work / "kube")
        postgres: Postgres | None = start_postgres() if args.backend == "postgres" else None
        try:
            install_crds(cluster, crds())
            settings = ConnectionSettings(
                server=simulator.server, user="u", password=PASSWORD, ca_file=str(simulator.ca_file)
            )
            ova = write_ova(work / "vendor.ova", SampleImage(name="vendor"))
            start = time.perf_counter()
            with VapiSession(settings) as session:
                client = ContentLibraryClient(session)
                library = client.create_library("vendor-1000", find_datastore_id(settings, "LocalDS_0"))
                for index in range(args.items):
                    item_id = client.create_item(library, f"vendor-image-{index:04d}", "", "OVF")
                    upload_source(client, item_id, str(ova))
            print(f"filled a library with {args.items} items in {time.perf_counter() - start:.1f} s")

            def backend_env() -> dict[str, str]:
                env = {"PULUMI_SKIP_CHECKPOINTS": "true"} if args.skip_checkpoints else {}
                if postgres is not None:
                    url, pg_env = postgres.backend()
                    env.update(PULUMI_BACKEND_URL=url, **pg_env)
                return env

            checkpoints = "checkpoints skipped" if args.skip_checkpoints else "checkpoints on"
            print(f"backend {args.backend}, {checkpoints}, {args.items} images, up --parallel 16")

            # The engine's floor: the same resources through a provider that does no work.
            floor: dict[str, float | int | str] | None = None
            if not args.without_baseline:
                baseline = Stack(work / "baseline", name="bench", env=backend_env(), program=BASELINE)
                baseline_config = {"baseline:items": args.items, "baseline:kubeconfig": str(cluster.kubeconfig)}
                baseline.configure(baseline_config)
                floor = run_phases(
                    baseline,
                    lambda: baseline.configure({**baseline_config, "baseline:items": args.items + 1}),
                    requests=None,
                )

            requests = simulator.requests
            requests.take()  # filling the library
            stack = Stack(work / "stack", name="bench", env=backend_env())
            stack.configure(
                {
                    "vsphere:vsphereServer": simulator.server,
                    "vsphere:user": "u",
                    "vsphere:caFile": str(simulator.ca_file),
                    "vmimage:libraries": [{"name": "vendor-1000", "existing": True}],
                    "vmimage:images": [],
                    "vmimage:sync": [{"library": "vendor-1000", "scope": "cluster"}],
                    "vmimage:kubernetes": {"kubeconfig": str(cluster.kubeconfig)},
                },
                secrets={"vsphere:password": PASSWORD},
            )
            ours = run_phases(
                stack,
                lambda: add_item(settings, library, f"vendor-image-{args.items:04d}", ova),
                requests=requests,
                rss=True,
                profile=args.profile.resolve() if args.profile else None,
            )
            objects = cluster.kubectl("get", "cvmi", "-o", "name").stdout.count("\n")

            print()
            if floor is None:
                print("| phase | vmimage (s) |")
                print("|---|---|")
                for phase in PHASES:
                    print(f"| {phase} | {ours[phase]:.1f} |")
                print(f"| state per image | {ours['state'] / args.items / 1024:.2f} KiB |")
                print(f"| `stack export` per image | {ours['exported'] / args.items / 1024:.2f} KiB |")
            else:
                print("| phase | baseline (s) | vmimage (s) | vmimage / baseline |")
                print("|---|---|---|---|")
                for phase in PHASES:
                    print(f"| {phase} | {floor[phase]:.1f} | {ours[phase]:.1f} | {ours[phase] / floor[phase]:.2f}× |")
                for key, label in (("state", "state per image"), ("exported", "`stack export` per image")):
                    print(
                        f"| {label} | {floor[key] / args.items / 1024:.2f} KiB | "
                        f"{ours[key] / args.items / 1024:.2f} KiB | {ours[key] / floor[key]:.2f}× |"
                    )
            print()
            print(f"{objects} image objects in the cluster (expected {args.items + 1})")
            print(f"provider host peak RSS (VmHWM) in vmimage's first up: {ours['rss']:.1f} MiB")
            for phase in PHASES:
                print(f"vCenter, {phase}: {ours[phase + ' requests']}")
            if args.profile:
                print("(vmimage's first up and no-change preview ran with py-spy attached: a little slower)")
        finally:
            cluster.stop()
            simulator.stop()
            if postgres is not None:
                postgres.stop()


if __name__ == "__main__":
    try:
        main()
    except subprocess.TimeoutExpired as timeout:
        command = " ".join(str(part) for part in timeout.cmd[1:3])
        print(f"catalog_1000: `pulumi {command}` did not finish within {timeout.timeout:.0f} s (--command-timeout)")
        sys.exit(2)
