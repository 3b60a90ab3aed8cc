import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmimage.contract.ids import is_vmi_id, library_item_name, vmi_id
from vmimage.errors import ImageError


def test_reference_example():
    assert vmi_id("e1968c25-dd84-4506-8dc7-9beacb6b688e") == "vmi-0a0044d7c690bcbea"


@pytest.mark.parametrize(
    "spelling",
    [
        "E1968C25-DD84-4506-8DC7-9BEACB6B688E",
        "e1968c25dd8445068dc79beacb6b688e",
        " e1968c25-dd84-4506-8dc7-9beacb6b688e ",
    ],
)
def test_any_case_and_hyphenation_give_the_same_id(spelling):
    assert vmi_id(spelling) == "vmi-0a0044d7c690bcbea"


@pytest.mark.parametrize("bad", ["", "not-a-uuid", "e1968c25-dd84-4506-8dc7", "g1968c25-dd84-4506-8dc7-9beacb6b688e"])
def test_non_uuid_is_a_clear_error(bad):
    with pytest.raises(ImageError, match="not a UUID"):
        vmi_id(bad)


def test_library_item_name_shares_the_hash():
    assert library_item_name("e1968c25-dd84-4506-8dc7-9beacb6b688e") == "clitem-0a0044d7c690bcbea"


@given(st.uuids())
def test_every_uuid_gives_a_well_formed_distinct_id(value: uuid.UUID):
    ident = vmi_id(str(value))
    assert is_vmi_id(ident)
    assert ident == vmi_id(value.hex.upper())


def test_is_vmi_id_rejects_display_names():
    assert not is_vmi_id("photonos-5-x64")
    assert not is_vmi_id("vmi-0a0044d7c690bcbeaX")
    assert not is_vmi_id("vmi-0A0044D7C690BCBEA")
