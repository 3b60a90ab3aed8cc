"""The deletion guard's rule (vmimage/guard.py): what a run deletes, and what allows it."""

from __future__ import annotations

from vmimage.guard import ALLOW_ALL, guard_message, parse_allowed, removals, stale_allowances, unallowed

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
    removed = removals(BEFORE, now, former_names=[*BEFORE])  # every old name is an alias of a new one
    assert removed == {}


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
