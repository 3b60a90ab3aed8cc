"""The deploy workflow (.github/workflows/deploy.yml → deploy-stack.yml): its shape, and its
shell step run as GitHub runs it (`bash -e`) with the real CLI, policy pack and simulator.

A mandatory violation fails the deploy before anything is applied, with the violation in the
job summary; a clean stack is applied and summarised in image terms from the update's own
event stream (the status vCenter produced, not a prediction).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.pulumi_cli import ROOT, Stack
from tests.test_engine import dev_config, items
from tests.test_providers import PASSWORD, direct_client

WORKFLOWS = ROOT / ".github" / "workflows"


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def deploy_step() -> dict:
    (step,) = [s for s in workflow("deploy-stack.yml")["jobs"]["deploy"]["steps"] if "pulumi up" in s.get("run", "")]
    return step


def test_deploy_runs_on_main_staging_then_prod_one_run_per_stack_prod_behind_its_environment():
    deploy = workflow("deploy.yml")
    on = deploy[True]  # YAML reads the bare key `on` as true
    assert on["push"]["branches"] == ["main"] and "workflow_dispatch" in on
    assert on["push"]["paths"] == workflow("preview.yml")[True]["pull_request"]["paths"]  # what a PR previews
    jobs = deploy["jobs"]
    assert jobs["staging"]["with"]["stack"] == "staging" and "needs" not in jobs["staging"]
    assert jobs["prod"]["with"]["stack"] == "prod" and jobs["prod"]["needs"] == "staging"
    assert {job["uses"] for job in jobs.values()} == {"./.github/workflows/deploy-stack.yml"}
    assert all((ROOT / "stacks" / f"Pulumi.{job['with']['stack']}.yaml").is_file() for job in jobs.values())
    assert deploy["permissions"] == {"contents": "read"}

    called = workflow("deploy-stack.yml")
    assert "workflow_call" in called[True]
    job = called["jobs"]["deploy"]
    assert job["environment"] == "${{ inputs.stack }}"  # `prod`'s required reviewers gate its run
    assert job["concurrency"] == {"group": "deploy-${{ inputs.stack }}", "cancel-in-progress": False}
    step = deploy_step()
    assert step["env"]["STACK"] == "${{ inputs.stack }}" and "${{" not in step["run"]  # no expression in the shell
    # the same pack and config as the pull request's preview
    previewed = [
        s["run"] for s in workflow("preview.yml")["jobs"]["preview"]["steps"] if "preview-summary" in s.get("run", "")
    ]
    assert "--policy-pack policies --policy-pack-config policies/${{ matrix.stack }}.json" in previewed[0]
    for command in ("pulumi preview --json", "pulumi up --yes --skip-preview --json"):
        assert command in step["run"]
    assert step["run"].count('--policy-pack policies --policy-pack-config "policies/$STACK.json"') == 2


def run_step(stack: Stack, tmp_path: Path) -> tuple[subprocess.CompletedProcess, str]:
    """The deploy step's shell in the stack's project folder (the pack and venv where a checkout has them)."""
    for name in ("policies", "venv"):
        link = stack.project_dir / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    summary = tmp_path / f"summary-{stack.name}.md"
    summary.write_text("")
    env = {**stack.env, "STACK": stack.name, "GITHUB_STEP_SUMMARY": str(summary)}
    done = subprocess.run(
        ["bash", "-e", "-c", deploy_step()["run"]],
        cwd=stack.project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return done, summary.read_text()


@pytest.mark.vcsim
def test_a_mandatory_violation_fails_the_deploy_before_anything_is_applied(simulator, samples, tmp_path):
    stack = Stack(tmp_path / "prod", name="prod")  # policies/prod.json: sha256 is mandatory
    stack.configure(dev_config(simulator, samples), secrets={"vsphere:password": PASSWORD})
    done, summary = run_step(stack, tmp_path)
    assert done.returncode != 0
    assert "::error::pulumi preview of prod failed" in done.stdout and "nothing was applied" in done.stdout
    assert "[mandatory] vmimage-production-sha256" in summary
    assert stack.resources() == {}  # no update ran
    with direct_client(simulator) as client:
        assert client.find_libraries("dev-images") == []


@pytest.mark.vcsim
def test_a_clean_stack_is_applied_and_summarised_from_what_was_applied(simulator, samples, tmp_path):
    stack = Stack(tmp_path / "dev", name="dev")
    stack.configure(dev_config(simulator, samples), secrets={"vsphere:password": PASSWORD})
    done, summary = run_step(stack, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "**3 added**" in summary
    # the status vCenter's item produced (an update's resOutputsEvents), not "—"
    assert (
        "| ➕ added | photon-5-sample | cluster | vmi-" in summary
        and "vmwarePhoton64Guest | 5.0 | vmx-19 | efi" in summary
    )
    assert set(items(stack)) == {"photon-5-sample", "ubuntu-24.04-sample", "tools-sample"}
    assert PASSWORD not in summary + done.stdout + done.stderr
    again, summary = run_step(stack, tmp_path)  # main pushed again with no catalog change
    assert again.returncode == 0 and "No image changes." in summary
    history = stack.run("stack", "history", "--json").stdout
    assert history.count('"kind": "update"') == 2
    stack.destroy()
