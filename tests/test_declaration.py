"""Declaration tokens (vmimage/declaration.py) and the owners derived from them: one per stack
instance and declaration, never the same for another instance with the same names."""

from __future__ import annotations

from providers.common import INSTANCE
from providers.instance import StackInstanceProvider
from providers.library_item import ContentLibraryItemProvider
from providers.vm_image import ClusterVirtualMachineImageProvider
from vmimage.declaration import checkpoints_skipped, declaration_token, marked, new_instance, unmarked

DECLARATION = "vmimage/prod/catalog-item-images-photon-5-a1b2c3"


def test_the_same_names_in_another_instance_make_another_token():
    first, second = new_instance(), new_instance()
    assert first != second and len(first) == 32
    assert declaration_token(first, DECLARATION, "lib") == declaration_token(first, DECLARATION, "lib")
    assert declaration_token(first, DECLARATION, "lib") != declaration_token(second, DECLARATION, "lib")
    assert declaration_token(first, DECLARATION, "lib") != declaration_token(first, DECLARATION, "other-lib")
    # the salt is in no token's text
    assert first not in declaration_token(first, DECLARATION, "lib")


def test_a_token_needs_both_a_declaration_and_an_instance():
    provider = ContentLibraryItemProvider(DECLARATION)
    salt = new_instance()
    assert provider.token({INSTANCE: salt}, "lib") == declaration_token(salt, DECLARATION, "lib")
    assert provider.token({}, "lib") is None  # a program before instances, or a provider on its own
    assert ContentLibraryItemProvider().token({INSTANCE: salt}, "lib") is None
    # a state of an earlier release keeps the declaration among the inputs
    earlier = ContentLibraryItemProvider()
    assert earlier.token({INSTANCE: salt, "declaration": DECLARATION}, "lib") == provider.token({INSTANCE: salt}, "lib")


def test_image_owners_are_per_instance_and_the_same_for_the_same_create_run_again():
    provider = ClusterVirtualMachineImageProvider("vmimage/prod/catalog-cvmi-photon-5-cluster-d4e5f6")
    props = {"item_id": "0b1c2d3e-0000-4000-8000-000000000001", "kubeconfig": "/k", INSTANCE: new_instance()}
    assert provider.create_owner(props) == provider.create_owner(dict(props))
    assert provider.create_owner(props) != provider.create_owner({**props, INSTANCE: new_instance()})
    assert provider.create_owner(props) != provider.create_owner({**props, "item_id": "another"})  # a replace
    without = {key: value for key, value in props.items() if key != INSTANCE}
    assert provider.create_owner(without) != provider.create_owner(without)  # no instance: random, never shared


def test_marks_round_trip():
    assert unmarked(marked("Photon 5", "abc")) == ("Photon 5", "abc")
    assert unmarked(marked("", "abc")) == ("", "abc")
    assert unmarked("Photon 5") == ("Photon 5", None)
    assert marked("Photon 5", None) == "Photon 5"


def test_checkpoints_skipped_reads_the_variable_as_the_cli_does():
    assert checkpoints_skipped({"PULUMI_SKIP_CHECKPOINTS": "true"})
    assert checkpoints_skipped({"PULUMI_SKIP_CHECKPOINTS": "TRUE"})
    assert checkpoints_skipped({"PULUMI_SKIP_CHECKPOINTS": "1"})
    assert not checkpoints_skipped({"PULUMI_SKIP_CHECKPOINTS": ""})
    assert not checkpoints_skipped({"PULUMI_SKIP_CHECKPOINTS": "false"})
    assert not checkpoints_skipped({})


def test_the_instance_is_made_once_and_never_changes(monkeypatch):
    monkeypatch.delenv("PULUMI_SKIP_CHECKPOINTS", raising=False)
    provider = StackInstanceProvider(("catalog", "catalog-instance"))
    first, second = provider.create({}), provider.create({})
    assert first.outs[INSTANCE] != second.outs[INSTANCE]
    assert first.outs[INSTANCE] not in first.id  # the ID shows in the CLI's output; the salt does not
    assert provider.diff(first.id, first.outs, {}).changes is False
    assert provider.read(first.id, first.outs).outs == first.outs
