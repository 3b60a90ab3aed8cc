"""The README's tour, run as written: its ```bash blocks, in order, under `bash -e`, against the
real dev-up, in a checkout of its own (tests/checkout.py), twice in a row — once as one pasted
script, once each block in a new shell that only sources scripts/env — so that the second run
also shows the tour does not undo itself (the new version it publishes stays, and the preview
that expects no changes passes). The webhook block included."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.checkout import dev_checkout, free_port, new_shell_env, run_bash
from tests.pulumi_cli import DEV_STACK_VARIABLES, ROOT

FENCE = re.compile(r"^```bash\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def bash_blocks(markdown: str, start: str, end: str) -> list[str]:
    """The ```bash blocks between the headings ``start`` and ``end``."""
    section = markdown[markdown.index(f"\n## {start}\n") : markdown.index(f"\n## {end}\n")]
    return FENCE.findall(section)


def test_the_readme_has_no_indented_code_a_paste_would_run():
    """Indented blocks are pasted with their indentation: a heredoc's EOF then never ends it."""
    readme = (ROOT / "README.md").read_text()
    outside = FENCE.sub("", re.sub(r"^```text\n.*?^```$", "", readme, flags=re.DOTALL | re.MULTILINE))
    assert [line for line in outside.splitlines() if line.startswith("    ") and not line.strip().startswith("-")] == []
    for block in FENCE.findall(readme):
        for heredoc in re.findall(r"<<'?(\w+)'?", block):
            assert re.search(rf"^{heredoc}$", block, re.MULTILINE), f"heredoc {heredoc} never ends:\n{block}"


# `typeset -r` in zsh 5.9: names a block pasted into zsh cannot assign (bash, its like, has none)
ZSH_READ_ONLY = {"status", "zsh_eval_context", "ARGC", "HISTCMD", "LINENO", "PPID", "TTYIDLE"}
ZSH_READ_ONLY |= {"ZSH_EVAL_CONTEXT", "ZSH_SUBSHELL"}


def test_the_readme_blocks_assign_no_name_zsh_holds_read_only():
    """The webhook block's trap began `status=$?`: in zsh (scripts/env's other shell) that fails,
    the trap stops there, and the webhook keeps its port while the block exits 1."""
    readme = (ROOT / "README.md").read_text()
    for block in FENCE.findall(readme):
        assigned = set(re.findall(r"(?:^|[\s;(&|'\"])([A-Za-z_]\w*)=", block, re.MULTILINE))
        assigned |= set(re.findall(r"\bfor\s+([A-Za-z_]\w*)\s+in\b", block))
        assert not assigned & ZSH_READ_ONLY, block


@pytest.fixture
def checkout() -> Iterator[Path]:
    yield from dev_checkout("vmimage-tour-")


def test_the_readme_tour_runs_as_written_twice_in_new_shells(checkout, capsys):
    readme = (ROOT / "README.md").read_text()
    (two_commands,) = bash_blocks(readme, "Two commands", "A tour")
    setup, dev_up = [line.split("#")[0].strip() for line in two_commands.strip().splitlines()]
    assert (setup, dev_up) == ("./scripts/setup", "./scripts/dev-up")  # setup: the checkout has it done
    tour = bash_blocks(readme, "A tour", "Layout")
    assert tour[0].strip() == ". scripts/env" and any("vmimage webhook" in block for block in tour)
    # free ports: the test meets neither a developer's dev-up nor another test on the defaults
    env = new_shell_env(checkout, VMIMAGE_FREE_PORTS="1", VMIMAGE_WEBHOOK_PORT=str(free_port()))
    assert not set(DEV_STACK_VARIABLES) & set(env)  # only `. scripts/env` sets them

    timings = []
    began = time.monotonic()
    first = run_bash(checkout, "\n".join([dev_up, *tour]), env)
    assert first.returncode == 0, first.stdout[-6000:]
    timings.append(time.monotonic() - began)
    assert re.search(r'version\s*:\s*"5\.0"\s*=>\s*"5\.1"', first.stdout), first.stdout  # the new version, previewed
    assert re.search(r'"path": ?"/spec/imageName", ?"value": ?"vmi-[0-9a-f]{17}"', first.stdout), first.stdout[-3000:]
    # the new version's `up` says what happened and where the image went, one diagnostic per line
    assert "info: new content for 'photon-5-sample': " in first.stdout
    assert re.search(r"info: photon-5-sample: [0-9.]+ KiB uploaded in \d+ s", first.stdout), first.stdout[-6000:]
    updated = r"info: ClusterVirtualMachineImage vmi-[0-9a-f]{17} \('photon-5-sample'\) updated: state only: no cluster"
    assert re.search(updated, first.stdout), first.stdout[-6000:]
    glued = [line for line in first.stdout.splitlines() if len(re.findall(r"\b(?:info|warning|error): ", line)) > 1]
    assert not glued, glued

    began = time.monotonic()
    for command in [dev_up, *tour[1:]]:
        done = run_bash(checkout, f". scripts/env\n{command}", env)
        assert done.returncode == 0, f"{command}\n---\n{done.stdout[-6000:]}"
        if "--expect-no-changes" in command:
            assert "5.1" in (checkout / "build" / "samples" / "photon-5-sample.ova").read_bytes().decode("latin-1")
    timings.append(time.monotonic() - began)
    with capsys.disabled():
        print(f"\nREADME tour: {timings[0]:.0f} s as one script, {timings[1]:.0f} s block by block in new shells")
