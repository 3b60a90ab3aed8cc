"""Display-name resolution: every branch, and properties over random catalogs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmimage.admission.resolve import ImageRef, ResolutionError, image_reference, resolve

VMI_A = "vmi-0a0044d7c690bcbea"
VMI_B = "vmi-1234567890abcdef0"
VMI_C = "vmi-fedcba09876543210"


def vmi(name: str, namespace: str, display: str | None) -> dict:
    return {
        "kind": "VirtualMachineImage",
        "metadata": {"name": name, "namespace": namespace},
        "status": {"name": display} if display else {},
    }


def cvmi(name: str, display: str | None) -> dict:
    return {"kind": "ClusterVirtualMachineImage", "metadata": {"name": name}, "status": {"name": display}}


def test_namespace_precedence():
    images = [cvmi(VMI_A, "Photon OS 5.0"), vmi(VMI_B, "team-a", "Photon OS 5.0")]
    assert resolve("Photon OS 5.0", "team-a", images) == ImageRef(
        "VirtualMachineImage", VMI_B, "team-a", "Photon OS 5.0"
    )


def test_cluster_fallback():
    images = [cvmi(VMI_A, "Photon OS 5.0"), vmi(VMI_B, "team-b", "Photon OS 5.0")]
    resolved = resolve("Photon OS 5.0", "team-a", images)
    assert resolved.kind == "ClusterVirtualMachineImage" and resolved.name == VMI_A
    assert image_reference(resolved) == {"kind": "ClusterVirtualMachineImage", "name": VMI_A}


def test_ambiguous_in_namespace_scope():
    images = [vmi(VMI_A, "team-a", "Ubuntu"), vmi(VMI_B, "team-a", "Ubuntu"), cvmi(VMI_C, "Ubuntu")]
    with pytest.raises(ResolutionError) as caught:
        resolve("Ubuntu", "team-a", images)
    assert str(caught.value) == 'multiple VM images exist for "Ubuntu" in namespace scope'


def test_ambiguous_in_cluster_scope():
    with pytest.raises(ResolutionError) as caught:
        resolve("Ubuntu", "team-a", [cvmi(VMI_A, "Ubuntu"), cvmi(VMI_B, "Ubuntu")])
    assert str(caught.value) == 'multiple VM images exist for "Ubuntu" in cluster scope'


def test_unique_in_namespace_wins_over_ambiguous_cluster():
    images = [vmi(VMI_C, "team-a", "Ubuntu"), cvmi(VMI_A, "Ubuntu"), cvmi(VMI_B, "Ubuntu")]
    assert resolve("Ubuntu", "team-a", images).name == VMI_C


def test_not_found():
    with pytest.raises(ResolutionError) as caught:
        resolve("Windows", "team-a", [cvmi(VMI_A, "Ubuntu"), vmi(VMI_B, "team-b", "Windows")])
    assert str(caught.value) == 'no VM image exists for "Windows" in namespace or cluster scope'


def test_strict_refuses_a_name_in_both_scopes():
    images = [cvmi(VMI_A, "Photon"), vmi(VMI_B, "team-a", "Photon")]
    with pytest.raises(ResolutionError, match="in namespace and cluster scope"):
        resolve("Photon", "team-a", images, strict=True)
    assert resolve("Photon", "team-b", images, strict=True).name == VMI_A


def test_vmi_ids_are_looked_up_by_name_namespace_first():
    images = [cvmi(VMI_A, "x"), vmi(VMI_A, "team-a", "y"), vmi(VMI_B, "team-b", "z")]
    assert resolve(VMI_A, "team-a", images).kind == "VirtualMachineImage"
    assert resolve(VMI_A, "team-c", images).kind == "ClusterVirtualMachineImage"
    with pytest.raises(ResolutionError, match=f'no VM image exists for "{VMI_B}"'):
        resolve(VMI_B, "team-a", images)  # another namespace's image is not visible


def test_a_display_name_that_looks_like_nothing_special_is_not_a_vmi_id():
    images = [cvmi(VMI_A, "vmi-photon")]
    assert resolve("vmi-photon", "x", images).name == VMI_A


def test_images_without_status_name_never_match():
    with pytest.raises(ResolutionError):
        resolve("", "team-a", [vmi(VMI_A, "team-a", None)])


# --- properties ----------------------------------------------------------------------------

NAMESPACES = st.sampled_from(["team-a", "team-b", "team-c"])
DISPLAY = st.sampled_from(["Photon", "Ubuntu", "Windows", "vmi-0a0044d7c690bcbea"])
IDS = st.from_regex(r"vmi-[0-9a-f]{17}", fullmatch=True)
IMAGES = st.lists(
    st.one_of(
        st.builds(lambda n, ns, d: vmi(n, ns, d), IDS, NAMESPACES, DISPLAY),
        st.builds(lambda n, d: cvmi(n, d), IDS, DISPLAY),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(IMAGES, DISPLAY, NAMESPACES, st.booleans())
def test_never_another_namespace_and_always_unique_in_its_scope(images, name, namespace, strict):
    try:
        resolved = resolve(name, namespace, images, strict=strict)
    except ResolutionError:
        return
    assert resolved.is_cluster or resolved.namespace == namespace
    if not name.startswith("vmi-"):
        scope = [
            ImageRef.of(i)
            for i in images
            if ImageRef.of(i).display_name == name
            and (ImageRef.of(i).is_cluster if resolved.is_cluster else ImageRef.of(i).namespace == namespace)
        ]
        assert scope == [resolved]
        if resolved.is_cluster:  # it fell back: nothing of that name in the VM's namespace
            assert not any(
                ImageRef.of(i).namespace == namespace
                and ImageRef.of(i).display_name == name
                and not ImageRef.of(i).is_cluster
                for i in images
            )


@settings(max_examples=200, deadline=None)
@given(IMAGES, NAMESPACES)
def test_every_image_visible_by_id_is_found(images, namespace):
    for image in map(ImageRef.of, images):
        if image.is_cluster or image.namespace == namespace:
            resolved = resolve(image.name, namespace, images)
            assert resolved.name == image.name and (resolved.is_cluster or resolved.namespace == namespace)
