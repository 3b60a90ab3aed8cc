"""The review loop's guard on the real engine: a misspelt key fails the preview, and a protected
stack deletes no item or image object that is not allowed by name (vmimage/review/guard.py)."""

from __future__ import annotations

import copy

import pytest

from tests.pulumi_cli import ROOT, Stack
from tests.test_engine import dev_config
from tests.test_providers import PASSWORD
from vmimage.descriptor.samples import SampleImage, write_ova

pytestmark = pytest.mark.vcsim
ITEM = "dynamic/vmimage:ContentLibraryItem"
IMAGES = "dynamic/vmimage:ClusterVirtualMachineImage"


def protected_stack(simulator, samples, folder) -> tuple[Stack, dict]:
    """A protected stack (the default) with the dev stack's three images published, and its config."""
    config = dev_config(simulator, samples)
    config.pop("vmimage:deletionProtection")
    stack = Stack(folder, name="prod")
    stack.configure({**config, "vmimage:deletionProtection": True}, secrets={"vsphere:password": PASSWORD})
    stack.up()
    return stack, config


@pytest.fixture(scope="module")
def protected(simulator, samples, tmp_path_factory):
    return protected_stack(simulator, samples, tmp_path_factory.mktemp("guarded"))


def names(stack: Stack) -> set[str]:
    return {r["outputs"]["name"] for r in stack.resources(ITEM).values()}


def test_a_misspelt_images_key_fails_the_preview_and_up_naming_it(protected):
    stack, config = protected
    typo = copy.deepcopy(config)
    typo["vmimage:imges"] = typo.pop("vmimage:images")
    stack.configure({**typo, "vmimage:deletionProtection": True})
    for run in (stack.preview, stack.up):
        result = run(check=False)
        assert result.returncode != 0
        assert "vmimage:imges: unknown key; did you mean `vmimage:images`? (the keys are in docs/reference.md)" in (
            result.output
        )
    assert names(stack) == {"photon-5-sample", "ubuntu-24.04-sample", "tools-sample"}


def test_removing_every_image_fails_the_preview_and_up_with_the_guards_message(protected):
    stack, config = protected
    stack.configure({**config, "vmimage:images": [], "vmimage:deletionProtection": True})
    for run in (stack.preview, stack.up):
        result = run(check=False)
        assert result.returncode != 0
        assert "deletion guard: this run would delete 6 resource(s) of 3 image(s)" in result.output
        assert "'tools-sample': ClusterVirtualMachineImage, library item in dev-images" in result.output
        assert "`vmimage:allowDelete: [photon-5-sample, tools-sample, ubuntu-24.04-sample]`" in result.output
    assert names(stack) == {"photon-5-sample", "ubuntu-24.04-sample", "tools-sample"}
    assert len(stack.resources(IMAGES)) == 2  # photon and tools, still published


def test_the_policy_pack_reports_it_as_a_mandatory_violation(protected):
    stack, config = protected
    stack.configure({**config, "vmimage:images": config["vmimage:images"][:2], "vmimage:deletionProtection": False})
    result = stack.run(
        "preview", "--policy-pack", str(ROOT / "policies"), "--policy-pack-config", str(ROOT / "policies/prod.json"),
        check=False,
    )  # fmt: skip
    # the stack file turned protection off, but production's policy config holds it to the rule
    assert result.returncode != 0
    assert "[mandatory]  vmimage-deletions-allowed" in result.output
    assert "'tools-sample': ClusterVirtualMachineImage, library item in dev-images" in result.output


def test_an_image_allowed_by_name_goes_and_the_others_stay(protected):
    stack, config = protected
    kept = config["vmimage:images"][:2]
    stack.configure(
        {**config, "vmimage:images": kept, "vmimage:deletionProtection": True, "vmimage:allowDelete": ["tools-sample"]}
    )
    preview = stack.preview()
    assert "- 2 to delete" in preview.stdout
    stack.up()
    assert names(stack) == {"photon-5-sample", "ubuntu-24.04-sample"}
    # allowDelete left in names nothing this run deletes: the next run says so
    result = stack.preview()
    assert "vmimage:allowDelete names 'tools-sample', of which this run deletes nothing" in result.output


def test_an_image_added_by_one_run_is_guarded_in_the_next(protected, samples):
    """A run that only adds records its list (the guard is a same step then): the image it added is
    guarded from the next run on."""
    stack, config = protected
    extra = {"displayName": "extra-sample", "source": str(samples / "extra-sample.ova"), "library": "dev-images"}
    write_ova(samples / "extra-sample.ova", SampleImage(name="extra-sample"))
    kept = config["vmimage:images"][:2]
    stack.configure({**config, "vmimage:images": kept, "vmimage:deletionProtection": True})
    stack.up()  # allowDelete taken out: the guard's settings move once
    stack.configure({**config, "vmimage:images": [*kept, extra], "vmimage:deletionProtection": True})
    preview = stack.preview()
    assert "DeletionGuard" not in preview.stdout  # adding is no change of the guard a reviewer must read
    stack.up()
    stack.configure({**config, "vmimage:images": kept, "vmimage:deletionProtection": True})
    refused = stack.preview(check=False)
    assert refused.returncode != 0 and "'extra-sample': ClusterVirtualMachineImage, library item" in refused.output
    # one run, allowed by the environment
    stack.run("up", "--yes", "--skip-preview", env={"VMIMAGE_ALLOW_DELETE": "extra-sample"})
    assert names(stack) == {"photon-5-sample", "ubuntu-24.04-sample"}


def test_destroy_of_a_protected_stack_is_refused_until_protection_is_off(protected):
    stack, config = protected
    stack.configure({**config, "vmimage:images": config["vmimage:images"][:2], "vmimage:deletionProtection": True})
    refused = stack.destroy(check=False)
    assert refused.returncode != 0 and "DestroyGuard" in refused.output and "because it is protected" in refused.output
    assert names(stack) == {"photon-5-sample", "ubuntu-24.04-sample"}
    stack.configure({**config, "vmimage:images": config["vmimage:images"][:2], "vmimage:deletionProtection": False})
    stack.up()
    stack.destroy()
    assert names(stack) == set()
