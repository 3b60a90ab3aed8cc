"""Upload progress in a person's units (vmimage/vsphere/progress.py)."""

from __future__ import annotations

from vmimage.vsphere.progress import (
    duration,
    finished_line,
    human_bytes,
    new_content_line,
    pull_line,
    transfer_line,
)

GIB = 2**30


def test_sizes_in_binary_units():
    assert human_bytes(900) == "900 B"
    assert human_bytes(10 * 1024) == "10.0 KiB"
    assert human_bytes(512 * 2**20) == "512 MiB"
    assert human_bytes(3 * GIB) == "3.0 GiB"


def test_durations():
    assert (duration(4.2), duration(125), duration(3780)) == ("4 s", "2 min 5 s", "1 h 3 min")


def test_a_line_of_an_upload_under_way():
    line = transfer_line("Debian 12", int(1.15 * GIB), 3 * GIB, 2.0)
    assert line == "Debian 12: 1.1 of 3.0 GiB (38%), 589 MiB/s, 3 s left"


def test_the_final_line_and_an_in_place_update():
    assert finished_line("Debian 12", 3 * GIB, 5.2) == "Debian 12: 3.0 GiB uploaded in 5 s (591 MiB/s)"
    assert new_content_line("Debian 12", 3 * GIB) == "new content for 'Debian 12': 3.0 GiB, item kept, VMI ID kept"
    assert new_content_line("x", None) == "new content for 'x': item kept, VMI ID kept"


def test_a_pull_with_and_without_vcenters_byte_counts():
    assert pull_line("Debian 12", 12.4) == "Debian 12: vCenter is pulling it, 12 s so far"
    assert pull_line("Debian 12", 2.0, int(1.15 * GIB), 3 * GIB) == transfer_line(
        "Debian 12", int(1.15 * GIB), 3 * GIB, 2.0
    )
