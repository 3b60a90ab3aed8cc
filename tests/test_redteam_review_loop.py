"""Red team of the review loop (issue 25): ways a protected stack could still lose an item, an
image object or a library, and a password leak, on the real engine and the simulator. Each test
is an attack that once worked (now refused) or a defence that holds; they run in order on one
protected stack, and each leaves it as it found it."""

from __future__ import annotations

import copy
import json

import pytest

from tests.pulumi_cli import ROOT, Stack
from tests.test_deletion_guard import protected_stack
from tests.test_providers import direct_client

pytestmark = pytest.mark.vcsim
ITEM = "dynamic/vmimage:ContentLibraryItem"
LEAKED = "Leak3dPw"


def item_ids(stack: Stack) -> dict[str, str]:
    """Display name → item UUID, as the state records them."""
    return {r["outputs"]["name"]: r["id"] for r in stack.resources(ITEM).values()}


def in_vcenter(simulator, library: str = "dev-images") -> dict[str, str]:
    """Display name → item UUID, as vCenter holds them in the library."""
    with direct_client(simulator) as client:
        return {
            client.get_item(item).name: item
            for library_id in client.find_libraries(library)
            for item in client.list_items(library_id)
        }


def urns(stack: Stack, type_suffix: str, part: str) -> list[str]:
    state = json.loads(stack.run("stack", "export").stdout)
    return [r["urn"] for r in state["deployment"]["resources"] if r["type"].endswith(type_suffix) and part in r["urn"]]


def forget_the_record(stack: Stack) -> None:
    """The deletion guard's record of the last run emptied, as `pulumi stack import` of an edited
    (or an old) state leaves it."""
    state = json.loads(stack.run("stack", "export").stdout)
    for resource in state["deployment"]["resources"]:
        if resource["type"].endswith("DeletionGuard"):
            resource["inputs"]["declared"] = resource["outputs"]["declared"] = {}
    exported = stack.project_dir / "edited-state.json"
    exported.write_text(json.dumps(state))
    stack.run("stack", "import", "--file", str(exported))


@pytest.fixture(scope="module")
def protected(simulator, samples, tmp_path_factory):
    return protected_stack(simulator, samples, tmp_path_factory.mktemp("redteam"))


def configure(stack: Stack, config: dict, **changes) -> None:
    stack.configure({**copy.deepcopy(config), "vmimage:deletionProtection": True, **changes})


def refused_in_preview_and_up(stack: Stack, *expected: str) -> None:
    for run in (stack.preview, stack.up):
        result = run(check=False)
        assert result.returncode != 0, result.output
        for text in expected:
            assert text in result.output, result.output


def test_renamed_from_naming_an_image_that_still_exists_is_no_licence_to_delete_it(protected, simulator):
    """An image the last run declared keeps its own state: the engine moves nothing to it by its
    renamedFrom, and deletes the image that former name named. It was a silent delete."""
    stack, config = protected
    before = in_vcenter(simulator)
    images = copy.deepcopy(config["vmimage:images"])
    tools = images.pop(2)
    images[0]["renamedFrom"] = [tools["displayName"]]
    configure(stack, config, **{"vmimage:images": images})
    refused_in_preview_and_up(
        stack, "deletion guard: this run would delete 2 resource(s) of 1 image(s)", "'tools-sample': "
    )
    assert in_vcenter(simulator) == before
    configure(stack, config)


def test_a_renamed_library_on_a_misspelt_datastore_does_not_take_its_items(protected, simulator):
    """A new datastore replaces the library (delete before replace) and, first, every item in it
    and their image objects, under their own names. With a rename (renamedFrom) the library
    name check did not stop it, and a misspelt datastore then failed the create: every item of
    the protected stack was gone from vCenter, and the state still listed them."""
    stack, config = protected
    before = in_vcenter(simulator)
    libraries = copy.deepcopy(config["vmimage:libraries"])
    libraries[0].update(name="moved-images", renamedFrom=["dev-images"], datastore="LocalDS_O")
    images = [{**image, "library": "moved-images"} for image in copy.deepcopy(config["vmimage:images"])]
    configure(stack, config, **{"vmimage:libraries": libraries, "vmimage:images": images})
    refused_in_preview_and_up(
        stack,
        # the library and its 3 items (the image objects of this stack without a cluster are in its state only)
        "deletion guard: this run would delete 4 resource(s) of 4 image(s) and librar(ies)",
        "library item in dev-images (replaced: datastore 'LocalDS_0' → datastore 'LocalDS_O')",
        "'dev-images': content library (replaced: ",
    )
    assert in_vcenter(simulator) == before
    configure(stack, config)


def test_a_misspelt_datastore_is_refused_by_the_guard(protected, simulator):
    stack, config = protected
    before = in_vcenter(simulator)
    libraries = copy.deepcopy(config["vmimage:libraries"])
    libraries[0]["datastore"] = "LocalDS_O"
    configure(stack, config, **{"vmimage:libraries": libraries})
    refused_in_preview_and_up(stack, "(replaced: datastore 'LocalDS_0' → datastore 'LocalDS_O')")
    assert in_vcenter(simulator) == before
    configure(stack, config)


def test_a_forced_library_made_existing_does_not_take_the_items_with_it(protected, simulator):
    """A created library with forceDestroy, switched to `existing: true` to stop managing it:
    the library resource left the stack, and its delete (with the state's forceDestroy) took
    every item in it. `up` said "1 deleted" and exited 0; the state kept the three items."""
    stack, config = protected
    before = in_vcenter(simulator)
    libraries = copy.deepcopy(config["vmimage:libraries"])
    libraries[0]["forceDestroy"] = True
    configure(stack, config, **{"vmimage:libraries": libraries})
    stack.up()
    configure(stack, config, **{"vmimage:libraries": [{"name": "dev-images", "existing": True}]})
    refused_in_preview_and_up(
        stack,
        "'dev-images': content library, with every item in it (forceDestroy)",
        "vmimage:allowDelete: [dev-images]",
    )
    assert in_vcenter(simulator) == before
    # the delete itself holds too, when the guard's record is no guide (here: emptied in the state)
    forget_the_record(stack)
    result = stack.up(check=False)
    assert result.returncode != 0
    assert "library 'dev-images' (" in result.output and "not deleted: deletion guard" in result.output
    assert in_vcenter(simulator) == before
    configure(stack, config, **{"vmimage:libraries": libraries})
    stack.up()
    configure(stack, config)
    stack.up()


def test_a_failed_run_does_not_let_the_next_one_delete_unallowed(protected, simulator, samples):
    """Run 1 removes tools-sample (allowed for that run) and adds an image whose upload fails:
    the guard recorded the run's list, and its deletes never ran. Run 2 (the failed image taken
    out, its "deletion" allowed as the guard asks) then deleted tools-sample, allowed by nobody."""
    stack, config = protected
    before = in_vcenter(simulator)
    kept = copy.deepcopy(config["vmimage:images"])[:2]
    bad = {"displayName": "bad", "source": "https://127.0.0.1:1/bad.ova", "library": "dev-images"}
    configure(stack, config, **{"vmimage:images": [*kept, bad]})
    first = stack.run(
        "up", "--yes", "--skip-preview", env={"VMIMAGE_ALLOW_DELETE": "tools-sample", "VMIMAGE_HTTP_ATTEMPTS": "1"},
        check=False,
    )  # fmt: skip
    assert first.returncode != 0 and "127.0.0.1:1" in first.output
    assert in_vcenter(simulator) == before
    configure(stack, config, **{"vmimage:images": kept})
    second = stack.run("up", "--yes", "--skip-preview", env={"VMIMAGE_ALLOW_DELETE": "bad"}, check=False)
    assert second.returncode != 0
    assert "item 'tools-sample' (" in second.output and "not deleted: deletion guard" in second.output
    assert in_vcenter(simulator) == before
    configure(stack, config)
    stack.up()


def test_a_lost_state_does_not_delete_and_upload_again_a_published_item(protected, simulator):
    """`pulumi state delete` (or a state restored from a backup, a stack made again): the next
    `up` found the item its declaration had made and, taking it for an interrupted create's,
    deleted it and uploaded it anew: a new UUID, and every VM spec's VMI ID broken."""
    stack, _ = protected
    before = in_vcenter(simulator)
    tools = urns(stack, "ContentLibraryItem", "tools-sample")[0]
    stack.run("state", "delete", tools, "--yes", "--target-dependents", "--force")
    result = stack.up()
    assert f"taking back item {before['tools-sample']} ('tools-sample')" in result.output
    assert in_vcenter(simulator) == before == item_ids(stack)
    stack.preview("--expect-no-changes")


def test_up_with_targets_deletes_nothing_unallowed(protected, simulator):
    """A defence that holds: `pulumi up --target` an item (and its objects) the stack file no
    longer declares deletes nothing."""
    stack, config = protected
    before = in_vcenter(simulator)
    configure(stack, config, **{"vmimage:images": copy.deepcopy(config["vmimage:images"])[:2]})
    targets = urns(stack, "ContentLibraryItem", "tools-sample") + urns(stack, "VirtualMachineImage", "tools-sample")
    assert len(targets) == 2
    stack.up(*(arg for target in targets for arg in ("--target", target, "--target-dependents")), check=False)
    assert in_vcenter(simulator) == before
    refused = stack.destroy("--target", targets[0], "--target-dependents", check=False)
    assert refused.returncode != 0 and "because it is protected" in refused.output
    assert in_vcenter(simulator) == before
    configure(stack, config)
    stack.up()


def test_a_star_in_allow_delete_is_refused(protected, simulator):
    """`vmimage:allowDelete: ['*']` in the stack file allowed every deletion of every run to come,
    while deletionProtection read true, and passed prod's policy (`protected: true`) with it."""
    stack, config = protected
    before = in_vcenter(simulator)
    configure(stack, config, **{"vmimage:images": [], "vmimage:allowDelete": ["*"]})
    refused_in_preview_and_up(stack, "vmimage:allowDelete[0]: '*' would allow every deletion for good")
    policy = stack.run(
        "preview", "--policy-pack", str(ROOT / "policies"), "--policy-pack-config", str(ROOT / "policies/prod.json"),
        check=False,
    )  # fmt: skip
    assert policy.returncode != 0
    assert in_vcenter(simulator) == before
    configure(stack, config)


@pytest.mark.parametrize("offline", [False, True], ids=["online", "offline"])
def test_a_server_with_credentials_in_it_is_refused_without_repeating_them(protected, simulator, offline):
    """A vsphere:vsphereServer of https://user:password@host: the password was in the offline
    preview's warning (and so in the PR comment's summary) and in a connection error."""
    stack, config = protected
    for server in (f"https://user:{LEAKED}@{simulator.server}", f"user:{LEAKED}@127.0.0.1"):
        configure(stack, config, **{"vsphere:vsphereServer": server})
        env = {"VMIMAGE_HTTP_ATTEMPTS": "1", **({"VMIMAGE_OFFLINE": "1"} if offline else {})}
        result = stack.run("preview", "--diff", env=env, check=False)
        assert result.returncode != 0
        assert "vsphere:vsphereServer: holds credentials (user:password@ before the host; not repeated" in (
            result.output
        )
        assert LEAKED not in result.output
    configure(stack, config)
