"""A provider's diagnostics reach the engine as whole lines (providers/common.py `say`, `warn`).

A dynamic provider has no engine connection: the SDK prints ``info: …`` to stderr, which the engine
reads line by line. Providers run calls in threads, and print writes a line's text and its newline
apart, so the README tour's `up` once showed two diagnostics glued on one line.
"""

from __future__ import annotations

import re
import subprocess
import sys

from tests.pulumi_cli import ROOT

THREADS, LINES = 8, 400
PROGRAM = f"""
import threading
from providers.common import say, warn

def run(n):
    for m in range({LINES}):
        (warn if m % 2 else say)(f"thread {{n}} line {{m}} " + "x" * (n * 37 % 200))

threads = [threading.Thread(target=run, args=(n,)) for n in range({THREADS})]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


def test_lines_from_many_provider_threads_stay_whole():
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    lines = done.stderr.splitlines()
    whole = re.compile(r"(info|warning): thread (\d) line (\d+) x*")
    assert len(lines) == THREADS * LINES
    for line in lines:
        match = whole.fullmatch(line)
        assert match, line
        assert (match[1] == "warning") == (int(match[3]) % 2 == 1), line
