"""A stack file read outside Pulumi (vmimage/stackfile.py), and what a stack declares that
vCenter does not hold (vmimage/vsphere/published.py): the pure parts of `vmimage verify` and
`vmimage get --from-vcenter`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vmimage.catalog import SyncedItem
from vmimage.config import load_catalog_config
from vmimage.contract.models import CLUSTER_KIND, NAMESPACED_KIND
from vmimage.errors import ImageError
from vmimage.stackfile import MAX_STACK_FILE_BYTES, read_stack_file
from vmimage.vsphere.published import NO_ITEM, Absent, declared_but_absent

LIBRARY = """\
config:
  vsphere:vsphereServer: vc.example.com
  vsphere:user: ci@vsphere.local
  vmimage:libraries:
    - name: images
      datastore: ds1
"""


def written(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "Pulumi.test.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def refused(path: str) -> str:
    with pytest.raises(ImageError) as caught:
        read_stack_file(path)
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        (
            "config:\n  vmimage:images: [a, b\n",
            ":3:1",
            "not valid YAML: while parsing a flow sequence (line 2), expected ',' or ']', but got '<stream end>'",
        ),
        ("config:\n\tvmimage:images: []\n", ":2:1", "found character '\\t' that cannot start any token"),
        ("config: {}\n---\nconfig: {}\n", ":2:1", "expected a single document in the stream (line 1), but found"),
        ("- config\n", ":1", "a stack file is a mapping (config: ...), not a list"),
        ("just text\n", ":1", "a stack file is a mapping (config: ...), not a string"),
        ("encryptionsalt: x\nconfig:\n  - vmimage:images\n", ":3", "config is a list, not a mapping of keys to values"),
        ("config: 3\n", ":1", "config is a number, not a mapping"),
        ("config:\n  vsphere:user: u\n  7: x\n", ":3", "a config key is a string, namespace:name"),
        (
            LIBRARY + "  vmimage:images:\n    - displayName: a\n      source: a.txt\n      library: images\n",
            ":9",
            "vmimage:images[0].source: a source is a path or https URL ending in .ova, .ovf or .iso",
        ),
        (
            LIBRARY + "  vmimage:kubernetes:\n    mode: supervisor\n    waitSeconds: 0\n",
            ":9",
            "vmimage:kubernetes.waitSeconds: Input should be greater than or equal to 1",
        ),
        (
            LIBRARY + "  vmimage:sync:\n    - library: elsewhere\n",
            ":8",
            "vmimage:sync[0].library: 'elsewhere' is not in libraries (images)",
        ),
    ],
)
def test_a_malformed_stack_file_is_named_with_its_line(tmp_path, text, where, reason):
    path = written(tmp_path, text)
    message = refused(path)
    assert message.startswith(f"{path}{where}: "), message
    assert reason in message and "\n" not in message


def test_each_of_several_problems_has_its_own_line(tmp_path):
    path = written(
        tmp_path,
        LIBRARY
        + "  vmimage:images:\n"
        + "    - displayName: a\n      source: a.txt\n      library: images\n"  # lines 8-10
        + "    - displayName: b\n      sourc: b.ova\n      library: images\n",  # lines 11-13
    )
    lines = refused(path).splitlines()
    assert lines[0] == f"{path}: invalid stack configuration:"
    assert f"  {path}:9: vmimage:images[0].source: a source is a path or https URL ending in .ova, .ovf or .iso" in (
        lines
    )
    assert f"  {path}:11: vmimage:images[1].source: Field required" in lines
    assert any(line.startswith(f"  {path}:12: vmimage:images[1].sourc: unknown key") for line in lines)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"config:\n  vsphere:user: \xff\xfe\n", "not UTF-8 text"),
        (b"config:\n  vsphere:user: a\x00b\n", "not valid YAML"),
    ],
)
def test_a_stack_file_that_is_not_text_is_refused(tmp_path, content, reason):
    path = written(tmp_path, content)
    assert refused(path).startswith(f"{path}") and reason in refused(path)


def test_a_missing_or_oversized_stack_file_is_named(tmp_path):
    missing = str(tmp_path / "Pulumi.nope.yaml")
    assert refused(missing) == (
        f"{missing}: No such file or directory: run from the project directory, or pick a stack with --stack"
    )
    big = written(tmp_path, "config: {}\n" + "#" * MAX_STACK_FILE_BYTES)
    assert "byte limit of a stack file" in refused(big)


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "config:\n", "encryptionsalt: x\n", LIBRARY])
def test_a_stack_that_declares_no_image_and_no_sync_declares_nothing(tmp_path, text):
    assert read_stack_file(written(tmp_path, text)).declares_nothing


def test_a_value_set_as_a_json_string_reads_as_the_program_reads_it(tmp_path):
    """`pulumi config set vmimage:images '[...]'` stores a string; Config.get_object parses it."""
    images = [{"displayName": "a", "source": "a.ova", "library": "images", "scope": ["team-a"]}]
    text = LIBRARY + f"  vmimage:images: '{json.dumps(images)}'\n"
    stack = read_stack_file(written(tmp_path, text))
    assert not stack.declares_nothing
    assert [(image.display_name, image.scope) for image in stack.catalog.images] == [("a", ("team-a",))]


def test_an_encrypted_vcenter_setting_comes_from_the_environment(tmp_path):
    path = written(tmp_path, LIBRARY + "  vsphere:password:\n    secure: v1:c2VjcmV0\n")
    stack = read_stack_file(path)
    with pytest.raises(ImageError) as caught:
        stack.connection_settings({})
    assert str(caught.value) == (
        f"{path}:8: vsphere:password is encrypted (a Pulumi secret), which vmimage does not decrypt: "
        "set VSPHERE_PASSWORD"
    )
    settings = stack.connection_settings({"VSPHERE_PASSWORD": "from-env"})
    assert settings.server == "vc.example.com" and settings.user == "ci@vsphere.local"
    assert settings.password.get_secret_value() == "from-env"


def test_a_bad_vcenter_setting_is_named_with_its_line(tmp_path):
    path = written(tmp_path, LIBRARY + "  vsphere:allowUnverifiedSsl: maybe\n")
    with pytest.raises(ImageError) as caught:
        read_stack_file(path).connection_settings({"VSPHERE_PASSWORD": "p"})
    assert str(caught.value) == f"{path}:7: vsphere:allowUnverifiedSsl: 'maybe' is not a boolean; use true or false"
    unset = written(tmp_path, "config:\n  vsphere:user: u\n")
    with pytest.raises(ImageError, match=r"^vsphere:vsphereServer: not set: .* or set VSPHERE_SERVER$"):
        read_stack_file(unset).connection_settings({"VSPHERE_PASSWORD": "p"})


# --- what vCenter does not hold ------------------------------------------------------------

CONFIG = load_catalog_config(
    {
        "libraries": [
            {"name": "images", "datastore": "ds1"},
            {"name": "market", "existing": True},
            {"name": "spare", "datastore": "ds1"},
        ],
        "images": [
            {"displayName": "Photon 5", "source": "p.ova", "library": "images", "scope": "cluster"},
            {"displayName": "Ubuntu", "source": "u.ova", "library": "images", "scope": ["team-a", "team-b"]},
        ],
        "sync": [{"library": "market", "scope": ["team-c"]}],
    }
)
PHOTON = SyncedItem("9e0b0c4e-0000-4000-8000-000000000001", "Photon 5", "1")
UBUNTU = SyncedItem("9e0b0c4e-0000-4000-8000-000000000002", "Ubuntu", "3")
TKG = SyncedItem("9e0b0c4e-0000-4000-8000-000000000003", "TKG", "2")


def test_nothing_is_absent_when_vcenter_holds_every_declared_item():
    assert declared_but_absent(CONFIG, {"images": [PHOTON, UBUNTU], "market": [TKG], "spare": []}, "vc") == []


def test_a_declared_image_without_its_item_is_named_with_its_library_and_scope():
    (absent,) = declared_but_absent(CONFIG, {"images": [PHOTON], "market": [TKG], "spare": []}, "vc")
    assert str(absent) == (
        "image 'Ubuntu' (vmimage:images[1], library 'images', namespaces team-a, team-b): "
        "declared but vCenter has no item: not published yet, or deleted"
    )
    assert absent.reason == NO_ITEM and absent.namespaces == ("team-a", "team-b")


def test_a_missing_library_is_named_and_so_is_each_image_it_should_hold():
    absent = declared_but_absent(CONFIG, {"images": None, "market": None, "spare": []}, "vc.example.com")
    assert [str(entry) for entry in absent] == [
        "library 'images' (vmimage:libraries[0]): vCenter vc.example.com has no content library of this name: "
        "not created yet (run `pulumi up`), or deleted",
        "library 'market' (vmimage:libraries[1]): vCenter vc.example.com has no content library of this name: "
        "it must exist before the stack uses it (existing: true)",
        "image 'Photon 5' (vmimage:images[0], library 'images', cluster scope): "
        "declared but vCenter has no item: its library does not exist",
        "image 'Ubuntu' (vmimage:images[1], library 'images', namespaces team-a, team-b): "
        "declared but vCenter has no item: its library does not exist",
    ]
    assert [entry.namespaces for entry in absent[:2]] == [(None, "team-a", "team-b"), ("team-c",)]


def test_an_unused_library_that_is_missing_is_named_too():
    (absent,) = declared_but_absent(CONFIG, {"images": [PHOTON, UBUNTU], "market": [TKG], "spare": None}, "vc")
    assert str(absent).startswith("library 'spare' (vmimage:libraries[2]): vCenter vc has no content library")
    assert absent.namespaces == ()


def test_a_synced_library_with_no_item_is_nothing_checked():
    (absent,) = declared_but_absent(CONFIG, {"images": [PHOTON, UBUNTU], "market": [], "spare": []}, "vc")
    assert str(absent) == (
        "library 'market' (vmimage:sync[0], namespace team-c): synced, but it holds no item: nothing of it to "
        "publish or verify (a subscribed library that has not synced yet?)"
    )


@pytest.mark.parametrize(
    ("namespaces", "kinds", "namespace", "shown"),
    [
        ((None,), (CLUSTER_KIND,), None, True),
        ((None,), (NAMESPACED_KIND,), "team-a", False),
        (("team-a",), (NAMESPACED_KIND,), "team-a", True),
        (("team-a",), (NAMESPACED_KIND,), "team-b", False),
        (("team-a",), (NAMESPACED_KIND,), None, True),  # -A
        (("team-a",), (CLUSTER_KIND,), None, False),
        ((None, "team-b"), (NAMESPACED_KIND, CLUSTER_KIND), "team-a", True),
        ((), (CLUSTER_KIND,), None, True),  # a library nothing uses: always said
    ],
)
def test_a_listing_warns_of_what_it_would_have_shown(namespaces, kinds, namespace, shown):
    assert Absent("x", "y", namespaces).concerns(kinds, namespace) is shown


STACKS = sorted(Path(__file__).resolve().parents[1].glob("stacks/Pulumi.*.yaml"))


@pytest.mark.parametrize("path", STACKS, ids=lambda path: path.name)
def test_every_shipped_stack_file_reads(path):
    stack = read_stack_file(str(path))
    assert not stack.declares_nothing and stack.catalog.libraries
    env = {"VSPHERE_SERVER": "from-the-environment:1", "VSPHERE_USER": "u", "VSPHERE_PASSWORD": "p"}
    settings = stack.connection_settings(env)
    if path.name.startswith("Pulumi.dev"):  # the simulator dev-up started, on whichever port: the environment's
        assert "vsphere:vsphereServer" not in stack.values and settings.server == "from-the-environment:1"
    else:
        assert settings.server == stack.values["vsphere:vsphereServer"]


def test_a_misspelt_key_is_named_with_its_line_not_read_as_nothing_declared(tmp_path):
    """`vmimage:imges` would otherwise make verify say "nothing to verify" and exit 0."""
    path = written(tmp_path, LIBRARY + "  vmimage:imges: []\n  vsphere:usr: x\n")
    message = refused(path)
    assert f"{path}:7: vmimage:imges: unknown key; did you mean `vmimage:images`?" in message
    assert f"{path}:8: vsphere:usr: unknown key; did you mean `vsphere:user`?" in message
