"""The deletion guard's rule (vmimage/review/guard.py): what a run deletes, and what allows it."""

from __future__ import annotations

import pytest

from vmimage.review.guard import (
    ALLOW_ALL,
    Declared,
    blocked,
    configured,
    guard_message,
    object_identity,
    parse_allowed,
    refused_delete,
    removals,
    stale_allowances,
    unallowed,
)

BEFORE = {
    "catalog-item-dev-images-ubuntu-1a2b3c": ["ubuntu", "library item in dev-images"],
    "catalog-cvmi-ubuntu-cluster-4d5e6f": ["ubuntu", "ClusterVirtualMachineImage"],
    "catalog-vmi-photon-dev-7a8b9c": ["photon", "VirtualMachineImage in dev"],
}


def test_what_the_last_run_declared_and_this_one_does_not_is_removed():
    now = {key: value for key, value in BEFORE.items() if "photon" in key}
    removed = removals(BEFORE, now)
    assert sorted(removed) == ["catalog-cvmi-ubuntu-cluster-4d5e6f", "catalog-item-dev-images-ubuntu-1a2b3c"]
    assert {entry.display_name for entry in removed.values()} == {"ubuntu"}


def test_a_renamed_resource_is_no_removal():
    now = {"catalog-vmi-photon-os-dev-000000": ["photon-os", "VirtualMachineImage in dev"]}
    removed = removals(
        BEFORE, now, former_names={"catalog-vmi-photon-os-dev-000000": ["catalog-vmi-photon-dev-7a8b9c"]}
    )
    assert sorted(removed) == ["catalog-cvmi-ubuntu-cluster-4d5e6f", "catalog-item-dev-images-ubuntu-1a2b3c"]


def test_a_former_name_keeps_one_resource_and_only_for_a_resource_new_to_the_record():
    """As the engine moves state: a resource the last run declared keeps its own (the one its
    former name names is deleted), and one former name is taken over once, by the first."""
    photon, ubuntu = "catalog-vmi-photon-dev-7a8b9c", "catalog-cvmi-ubuntu-cluster-4d5e6f"
    claimed = removals(BEFORE, {photon: BEFORE[photon]}, former_names={photon: [ubuntu]})
    assert ubuntu in claimed
    two = {"new-a": ["a", "ClusterVirtualMachineImage"], "new-b": ["b", "ClusterVirtualMachineImage"]}
    taken = removals({ubuntu: BEFORE[ubuntu]}, two, former_names={"new-a": [ubuntu], "new-b": [ubuntu]})
    assert taken == {}
    first = removals(BEFORE, {"new": ["u", "ClusterVirtualMachineImage"]}, former_names={"new": [ubuntu, photon]})
    assert photon in first and ubuntu not in first


def test_a_changed_identity_is_a_replacement_and_an_unknown_one_is_not():
    item = "catalog-item-dev-images-ubuntu-1a2b3c"
    before = {item: ["ubuntu", "library item in dev-images", "datastore 'LocalDS_0'"]}
    moved = removals(before, {item: ["ubuntu", "library item in dev-images", "datastore 'LocalDS_1'"]})
    assert moved[item].what == "library item in dev-images (replaced: datastore 'LocalDS_0' → datastore 'LocalDS_1')"
    assert removals(before, {item: ["ubuntu", "library item in dev-images"]}) == {}  # an existing library now
    assert removals({item: BEFORE[item]}, before) == {}  # recorded before identities were


def test_an_image_object_moved_to_another_cluster_is_a_replacement():
    """The objects of a stack whose kubeconfig or context changes are deleted from the cluster
    before; where vmimage wrote them nowhere (no cluster, supervisor mode) nothing is lost."""
    cvmi = "catalog-cvmi-ubuntu-cluster-4d5e6f"
    a, b = "cluster (current context) of kubeconfig /a", "cluster prod of kubeconfig /a"

    def run(before: str, now: str) -> dict[str, Declared]:
        return removals({cvmi: ["ubuntu", "ClusterVirtualMachineImage", before]}, {cvmi: ["ubuntu", "x", now]})

    moved = run(object_identity("datastore 'LocalDS_0'", a), object_identity("datastore 'LocalDS_0'", b))
    assert (
        moved[cvmi].what
        == f"ClusterVirtualMachineImage (replaced: datastore 'LocalDS_0'; {a} → datastore 'LocalDS_0'; {b})"
    )
    ds = "datastore 'LocalDS_0'"
    assert cvmi in run(object_identity("", a), object_identity("", b))  # an existing library's images too
    assert cvmi in run(object_identity("", a), object_identity("", None))  # the cluster taken out of the stack
    assert cvmi in run(object_identity("", a), object_identity("", b, supervised=True))  # moved, then VM Operator's
    assert run(object_identity("", None), object_identity("", a)) == {}  # state only until now: nothing lost
    assert run(object_identity("", a, supervised=True), object_identity("", b)) == {}  # it was VM Operator's
    assert run(object_identity(ds, a), object_identity(ds, a, supervised=True)) == {}  # a mode is an update
    assert run(object_identity(ds, a, supervised=True), object_identity(ds, a)) == {}
    assert run(ds, object_identity(ds, a)) == {}  # recorded before clusters
    assert cvmi in run(ds, object_identity("datastore 'LocalDS_1'", a))


def test_a_malformed_record_is_never_nothing():
    assert removals({"x": "garbage", "y": None}, {}) == {
        "x": Declared("garbage", "?"),
        "y": Declared("None", "?"),
    }
    with pytest.raises(TypeError):
        removals(["x"], {})  # type: ignore[arg-type]


def test_a_first_run_removes_nothing():
    assert removals({}, BEFORE) == {}


def test_allowed_by_display_name_or_wholesale():
    removed = removals(BEFORE, {})
    assert {e.display_name for e in unallowed(removed, ["ubuntu"]).values()} == {"photon"}
    assert unallowed(removed, ["ubuntu", "photon"]) == {}
    assert unallowed(removed, [ALLOW_ALL]) == {}
    assert unallowed(removed, ["Ubuntu"]) == removed  # names are exact: a near miss allows nothing


def test_the_environment_variable_lists_names():
    assert parse_allowed(" ubuntu , photon,,") == ["ubuntu", "photon"]
    assert parse_allowed(None) == [] and parse_allowed("") == []


def test_the_message_names_every_image_and_both_ways_to_allow_it():
    message = guard_message(removals(BEFORE, {}))
    assert "would delete 3 resource(s) of 2 image(s)" in message
    assert "'ubuntu': ClusterVirtualMachineImage, library item in dev-images" in message
    assert "'photon': VirtualMachineImage in dev" in message
    assert "`vmimage:allowDelete: [photon, ubuntu]`" in message
    assert "VMIMAGE_ALLOW_DELETE='photon, ubuntu'" in message


def test_an_allowance_that_deletes_nothing_is_stale():
    removed = removals(BEFORE, {k: v for k, v in BEFORE.items() if "ubuntu" in k})
    assert stale_allowances(["photon", "ubuntu", ALLOW_ALL], removed) == ["ubuntu"]


def test_a_star_allows_everything_only_from_the_environment():
    removing = {name: entry for name, entry in BEFORE.items()}
    assert blocked(removing, [ALLOW_ALL], True, None) == {n: Declared.of(e) for n, e in BEFORE.items()}
    assert blocked(removing, [], True, " * ") == {}


def test_the_providers_read_the_stack_config_as_configure_hands_it_over():
    assert configured({}) == (True, [])
    assert configured({"vmimage:deletionProtection": "false"}) == (False, [])
    assert configured({"vmimage:deletionProtection": "true", "vmimage:allowDelete": '["tools", "*"]'}) == (
        True,
        ["tools", "*"],
    )
    assert configured({"vmimage:allowDelete": "not json"}) == (True, [])
    entry = Declared("tools", "library item in dev-images")
    assert refused_delete(entry, {"vmimage:allowDelete": '["tools"]'}, None) is None
    assert refused_delete(entry, {"vmimage:allowDelete": '["*"]'}, None) is not None
    assert "'tools': library item in dev-images" in (refused_delete(entry, {}, "photon") or "")
    assert refused_delete(entry, {}, "tools") is None


def test_an_unreadable_record_fails_the_check_and_is_never_nothing_removed(monkeypatch):
    from providers.deletion_guard import DeletionGuardProvider

    news = {"declared": {}, "former_names": {}, "protection": True, "allowed": []}
    monkeypatch.delenv("VMIMAGE_ALLOW_DELETE", raising=False)
    refused = DeletionGuardProvider().check({"declared": ["catalog-item-x"]}, news)
    assert [f.property for f in refused.failures] == ["declared"]
    assert "its record of the last run is unreadable" in refused.failures[0].reason
    monkeypatch.setenv("VMIMAGE_ALLOW_DELETE", "*")  # on purpose, for one run: recorded anew
    assert DeletionGuardProvider().check({"declared": ["catalog-item-x"]}, news).failures == []
