"""A program or provider host whose engine is gone exits, and logs out of vCenter first.

The Pulumi CLI starts the language host, which runs the program, and each provider plugin (the
dynamic provider host, `python -m pulumi.dynamic`, under a shell wrapper). When the CLI and those
direct children are killed (SIGKILL: the OOM killer, an operator's `kill -9`), nothing tells the
program or the provider host: the host serves gRPC to nobody, and both stayed alive for good with a
logged-in vCenter session and the password in memory. Their parent dying is the signal: the kernel
hands an orphan to init (or to a subreaper), so its parent process ID changes. A thread polls it;
on a change it runs the process's exit hooks (`atexit`: providers/connection.py logs out of vCenter
and removes pulumi-kubernetes' kubeconfig copies) for a few seconds at most, and exits.

Importing this module arms it in a process a Pulumi engine started (the dynamic provider host, the
policy pack's host, or a program whose resource monitor is the engine's gRPC service), and nowhere
else: a test process that imports the providers, or runs the program with Pulumi's mocks, has no
engine to outlive.
"""

from __future__ import annotations

import atexit
import itertools
import os
import sys
import threading
import time

POLL_SECONDS = 1.0
HOOK_SECONDS = 5.0  # a logout from an unreachable vCenter does not keep the process alive
_ARMED = threading.Event()
_ARMING = threading.Lock()


def in_provider_host() -> bool:
    """Whether this process is Pulumi's Python dynamic provider host (`python -m pulumi.dynamic`)."""
    host = sys.modules.get("__main__")
    return host is not None and hasattr(host, "DynamicResourceProviderServicer")


def in_policy_host() -> bool:
    """Whether this process is Pulumi's Python policy pack host (`python -m pulumi.policy`), which
    the language host starts for `--policy-pack` and which holds the run's environment (the CI
    job's vCenter password, passphrase, state login)."""
    argv = list(getattr(sys, "orig_argv", []))  # the interpreter's own: runpy rewrites sys.argv[0] for the pack
    return ("-m", "pulumi.policy") in itertools.pairwise(argv)


def under_engine() -> bool:
    """Whether a Pulumi engine started this process: its dynamic provider host, its policy pack
    host, or a program whose resource monitor is the engine's gRPC service (Pulumi's mocks are not)."""
    if in_provider_host() or in_policy_host():
        return True
    from pulumi.runtime.proto import resource_pb2_grpc
    from pulumi.runtime.settings import get_monitor

    return isinstance(get_monitor(), resource_pb2_grpc.ResourceMonitorStub)


def arm(poll_seconds: float = POLL_SECONDS, hook_seconds: float = HOOK_SECONDS) -> bool:
    """Exit when the parent process exits, from now on (once per process; False if already armed)."""
    with _ARMING:
        if _ARMED.is_set():
            return False
        _ARMED.set()
    parent = os.getppid()
    threading.Thread(
        target=_watch, args=(parent, poll_seconds, hook_seconds), name="vmimage-lifeline", daemon=True
    ).start()
    return True


def _watch(parent: int, poll_seconds: float, hook_seconds: float) -> None:
    while os.getppid() == parent:
        time.sleep(poll_seconds)
    if threading.main_thread().is_alive():  # orphaned mid-work
        # silently: where anyone reads this stderr, the engine is alive and ending a failed run (the
        # language host exits before the program), and a line saying it is gone was a false alarm
        # the hooks a normal exit runs, on a thread of their own: the main thread may be blocked for good
        hooks = threading.Thread(target=atexit._run_exitfuncs, name="vmimage-lifeline-exit", daemon=True)
        hooks.start()
        hooks.join(hook_seconds)
    else:  # exiting already (the engine's interrupt, its shell wrapper gone first): its own hooks run
        time.sleep(hook_seconds)
    os._exit(1)  # not sys.exit: the interpreter's shutdown would wait for every busy thread


if under_engine():
    arm()
