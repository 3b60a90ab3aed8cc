"""The Pulumi program under Pulumi's own mocks: config in, validated, or a readable error."""

import json
import os
import re
import runpy
import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from vmimage.config import load_catalog_config

ROOT = Path(__file__).resolve().parent.parent
STACKS = sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


def stack_config(path: Path) -> dict[str, str]:
    """A stack file's config as the engine hands it to the program: JSON strings by key."""
    values: dict[str, Any] = yaml.safe_load(path.read_text())["config"]
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


def run_program(config: dict[str, str], stack: str = "test", preview: bool = False) -> None:
    pulumi.runtime.set_all_config(config)
    pulumi.runtime.set_mocks(Mocks(), project="vmimage", stack=stack, preview=preview)
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def test_the_project_file():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "vmimage"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == "venv"
    assert project["stackConfigDir"] == "stacks"


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_every_stack_file_is_valid(path):
    config = stack_config(path)
    values = {
        key.split(":", 1)[1]: json.loads(value) if value[:1] in "[{" else value
        for key, value in config.items()
        if key.startswith("vmimage:")
    }
    catalog = load_catalog_config(values)
    assert catalog.libraries and catalog.images
    assert "vsphere:password" not in config  # secrets are set with `pulumi config set --secret`, never by hand


def test_the_stacks():
    assert {p.name for p in STACKS} == {
        "Pulumi.dev.yaml",
        "Pulumi.dev-k8s.yaml",
        "Pulumi.staging.yaml",
        "Pulumi.prod.yaml",
    }


@pytest.mark.vcsim
def test_dev_stack_program_runs(vcsim, monkeypatch):
    monkeypatch.setenv("VSPHERE_PASSWORD", "x")
    config = {**stack_config(ROOT / "stacks" / "Pulumi.dev.yaml"), "vsphere:vsphereServer": vcsim.server}
    run_program({**config, "vsphere:caFile": str(vcsim.ca_file)}, stack="dev")


def test_an_offline_preview_needs_no_vcenter_and_warns_what_it_left_out(monkeypatch, caplog):
    monkeypatch.setenv("VMIMAGE_OFFLINE", "1")
    monkeypatch.delenv("VSPHERE_PASSWORD", raising=False)
    config = {**stack_config(ROOT / "stacks" / "Pulumi.dev.yaml"), "vsphere:vsphereServer": "127.0.0.1:9"}
    run_program(config, stack="dev", preview=True)
    (warning,) = [record.getMessage() for record in caplog.records if "offline preview" in record.getMessage()]
    assert warning.startswith("offline preview (VMIMAGE_OFFLINE=1), not checked against vCenter: the login to ")
    assert "vCenter 127.0.0.1:9" in warning and "a library named 'dev-images'" in warning


def test_offline_is_for_previews_only(monkeypatch):
    monkeypatch.setenv("VMIMAGE_OFFLINE", "1")
    with pytest.raises(pulumi.RunError, match=r"VMIMAGE_OFFLINE is set: it is for previews, and `pulumi up` needs"):
        run_program(stack_config(ROOT / "stacks" / "Pulumi.dev.yaml"), stack="dev", preview=False)


def test_an_offline_preview_cannot_plan_a_library_vcenter_names(monkeypatch):
    """An existing library's ID and a synced library's items are vCenter's: without them the plan
    would replace or delete images, so an offline preview of such a stack fails instead."""
    monkeypatch.setenv("VMIMAGE_OFFLINE", "1")
    with pytest.raises(pulumi.RunError, match=r"cannot plan library 'vmware-marketplace' \(existing: true\)"):
        run_program(stack_config(ROOT / "stacks" / "Pulumi.staging.yaml"), preview=True)


def test_unreachable_vcenter_for_a_synced_library_is_a_readable_error(monkeypatch):
    monkeypatch.setenv("VSPHERE_USER", "svc-vmimage@vsphere.local")  # the stack file names no account: CI's
    monkeypatch.setenv("VSPHERE_PASSWORD", "x")  # environments give it (docs/pr-previews.md)
    monkeypatch.setenv("VMIMAGE_HTTP_ATTEMPTS", "1")
    config = {**stack_config(ROOT / "stacks" / "Pulumi.staging.yaml"), "vsphere:vsphereServer": "127.0.0.1:9"}
    config.pop("vsphere:caFile")
    with pytest.raises(pulumi.RunError, match=r"vCenter 127.0.0.1:9: POST /api/session: connection failed"):
        run_program(config)


def test_bad_config_fails_with_the_key_and_what_is_expected():
    config = {
        "vmimage:libraries": json.dumps([{"name": "lib", "datastore": "ds"}]),
        "vmimage:images": json.dumps([{"displayName": "x", "source": "x.vmdk", "library": "nope", "scope": "all"}]),
    }
    with pytest.raises(pulumi.RunError) as caught:
        run_program(config)
    message = str(caught.value)
    assert "vmimage:images[0].source: a source is a path or https URL ending in .ova, .ovf or .iso" in message
    assert "vmimage:images[0].scope: scope is 'cluster' or a non-empty list of namespaces" in message


def test_unknown_library_is_named():
    config = {
        "vmimage:libraries": json.dumps([{"name": "lib", "datastore": "ds"}]),
        "vmimage:images": json.dumps([{"displayName": "x", "source": "x.ova", "library": "other"}]),
    }
    with pytest.raises(pulumi.RunError, match=r"vmimage:images\[0\].library: 'other' is not in libraries \(lib\)"):
        run_program(config)


def test_unknown_key_is_named():
    with pytest.raises(
        pulumi.RunError, match=r"vmimage:libraries\[0\].datastoer: unknown key; did you mean `datastore`"
    ):
        run_program({"vmimage:libraries": json.dumps([{"name": "lib", "datastoer": "ds"}])})


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        (
            "vmimage:imges",
            "vmimage:imges: unknown key; did you mean `vmimage:images`? (the keys are in docs/reference.md)",
        ),
        ("vsphere:vsphereServr", "vsphere:vsphereServr: unknown key; did you mean `vsphere:vsphereServer`?"),
        ("kubernetes:kubeconfg", "kubernetes:kubeconfg: unknown key; did you mean `kubernetes:kubeconfig`?"),
        (
            "vmimag:images",
            "vmimag:images: no part of this project reads the 'vmimag' namespace; did you mean `vmimage:images`?",
        ),
    ],
)
def test_a_misspelt_top_level_key_fails_the_program_naming_it(key, hint):
    """A misspelt key is not an unset one: `vmimage:imges` must not read as "no images" (and delete
    them all), whatever its namespace."""
    config = stack_config(ROOT / "stacks" / "Pulumi.dev.yaml")
    config[key] = config.pop("vmimage:images") if key.endswith("images") else "x"
    with pytest.raises(pulumi.RunError) as caught:
        run_program(config, stack="dev")
    assert hint in str(caught.value)


def test_engine_keys_and_every_documented_key_pass(vcsim, monkeypatch):
    monkeypatch.setenv("VSPHERE_PASSWORD", "x")
    config = {**stack_config(ROOT / "stacks" / "Pulumi.dev.yaml"), "pulumi:tags": "{}", "vmimage:allowDelete": "[]"}
    config |= {"vsphere:vsphereServer": vcsim.server, "vsphere:caFile": str(vcsim.ca_file)}
    run_program(config, stack="dev")


def test_an_all_digit_sha256_is_refused_with_quote_it():
    images = [{"displayName": "x", "source": "x.ova", "library": "lib", "sha256": 10**63}]
    config = {
        "vmimage:libraries": json.dumps([{"name": "lib", "datastore": "ds"}]),
        "vmimage:images": json.dumps(images),
    }
    with pytest.raises(
        pulumi.RunError, match=r"vmimage:images\[0\].sha256: YAML read this sha256 as a number .*quote it"
    ):
        run_program(config)


class RecordingMocks(Mocks):
    def __init__(self) -> None:
        self.created: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.created.append(args)
        return super().new_resource(args)


@pulumi.runtime.test
def test_resources_have_explicit_type_tokens():
    from providers.content_library import ContentLibrary
    from providers.library_item import ContentLibraryItem

    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="vmimage", stack="test", preview=False)
    library = ContentLibrary("lib", name="images", datastore="LocalDS_0")
    item = ContentLibraryItem("item", library_id=library.id, name="photon", source="photon.ova")

    def check(_: list) -> None:
        types = {args.name: args.typ for args in mocks.created}
        assert types == {
            "lib": "pulumi-python:dynamic/vmimage:ContentLibrary",
            "item": "pulumi-python:dynamic/vmimage:ContentLibraryItem",
        }
        inputs = next(args.inputs for args in mocks.created if args.name == "item")
        assert inputs["library_id"] == "lib-id" and inputs["name"] == "photon" and "__provider" in inputs

    return pulumi.Output.all(library.id, item.id).apply(check)


def test_pr_preview_workflow_summarises_every_real_stack_in_one_comment():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "preview.yml").read_text())
    assert "pull_request" in workflow[True]  # YAML reads the bare key `on` as true
    job = workflow["jobs"]["preview"]
    stacks = job["strategy"]["matrix"]["stack"]
    assert all((ROOT / "stacks" / f"Pulumi.{stack}.yaml").is_file() for stack in stacks)
    raw = [step for step in job["steps"] if "pulumi preview --diff" in step.get("run", "")]
    assert len(raw) == 1 and '--stack "$STACK"' in raw[0]["run"]  # the raw diff in the job's log; no bot comment
    (summary_step,) = [step for step in job["steps"] if "preview-summary" in step.get("run", "")]
    assert "pulumi preview --json" in summary_step["run"] and "--outputs outputs.json" in summary_step["run"]
    assert '--policy-pack policies --policy-pack-config "policies/$STACK.json"' in summary_step["run"]
    assert job["env"]["STACK"] == "${{ matrix.stack }}"
    policy_names = set(re.findall(r'name="(vmimage-[a-z0-9-]+)"', (ROOT / "policies" / "__main__.py").read_text()))
    assert {"vmimage-deletions-allowed", "vmimage-production-sha256", "vmimage-production-signed"} <= policy_names
    for stack in stacks:  # each stack has a policy config, naming policies the pack has
        assert set(json.loads((ROOT / "policies" / f"{stack}.json").read_text())) <= policy_names
    comment = workflow["jobs"]["comment"]
    assert comment["needs"] == "preview"
    script = comment["steps"][-1]["with"]["script"]
    assert "vmimage-preview-summary" in script and "updateComment" in script and "createComment" in script
    assert all(stack in script for stack in stacks)
    # only the comment job, which runs none of the PR's code, may write (tests/test_deploy_workflow.py)
    assert workflow["permissions"] == {"contents": "read"}
    assert comment["permissions"] == {"pull-requests": "write"}


STUB_PULUMI = """#!/bin/sh
# `pulumi` for the workflow step: outputs, and a preview stream whose policy pack failed the preview
case "$1" in
  login) exit 0 ;;
  stack) echo '{}' ;;
  preview)
    echo '{"sequence": 0, "policyEvent": {"resourceUrn": "", "message": "declares no sha256",'\\
' "policyName": "vmimage-production-sha256", "policyPackName": "vmimage", "enforcementLevel": "mandatory"}}'
    echo '{"sequence": 1, "summaryEvent": {"resourceChanges": {"same": 3}}}'
    exit "$PREVIEW_EXIT" ;;
esac
"""


@pytest.mark.parametrize("preview_exit", [0, 255])
def test_pr_preview_step_fails_when_the_preview_fails_and_still_writes_its_summary(tmp_path, preview_exit):
    """The workflow's own shell, run as GitHub runs it (`bash -e`): a mandatory violation fails the job."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "preview.yml").read_text())
    assert "policies/**" in workflow[True]["pull_request"]["paths"]  # a rule's change runs the previews
    (step,) = [step for step in workflow["jobs"]["preview"]["steps"] if "preview-summary" in step.get("run", "")]
    script = step["run"]
    assert "${{" not in script  # the stack and backend come from the job's env
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "pulumi").write_text(STUB_PULUMI)
    (tmp_path / "bin" / "pulumi").chmod(0o755)
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "vmimage").symlink_to(ROOT / "venv" / "bin" / "vmimage")
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PREVIEW_EXIT": str(preview_exit),
        "STACK": "prod",
        "PULUMI_BACKEND_URL": "file://x",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md"),
    }
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == preview_exit, done.stderr
    summary = (tmp_path / "summary-prod.md").read_text()
    assert "[mandatory] vmimage-production-sha256" in summary and "declares no sha256" in summary
    assert (tmp_path / "step-summary.md").read_text() == summary  # on the run's page too
    assert ("::error::pulumi preview of prod failed (exit 255)" in done.stdout) == (preview_exit != 0)
