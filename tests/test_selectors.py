import pytest

from vmimage.admission.selectors import matches, parse_selector
from vmimage.errors import ImageError

LINUX_GPU = {
    "os.image.vmoperator.vmware.com/type": "Linux",
    "os.image.vmoperator.vmware.com/version": "5.0",
    "capability.image.vmoperator.vmware.com/cloud-init": "",
    "capability.image.vmoperator.vmware.com/nvidia-gpu": "",
}
WINDOWS = {"os.image.vmoperator.vmware.com/type": "Windows"}


@pytest.mark.parametrize(
    ("selector", "linux", "windows"),
    [
        ("capability.image.vmoperator.vmware.com/cloud-init", True, False),
        ("!capability.image.vmoperator.vmware.com/cloud-init", False, True),
        ("os.image.vmoperator.vmware.com/type=Linux", True, False),
        ("os.image.vmoperator.vmware.com/type==Windows", False, True),
        ("os.image.vmoperator.vmware.com/type!=Linux", False, True),
        ("os.image.vmoperator.vmware.com/type in (Linux, macOS)", True, False),
        ("os.image.vmoperator.vmware.com/type notin (Linux,macOS)", False, True),
        (
            "os.image.vmoperator.vmware.com/version in (5.0,4.0),capability.image.vmoperator.vmware.com/nvidia-gpu",
            True,
            False,
        ),
        ("os.image.vmoperator.vmware.com/version!=5.0", False, True),  # absent counts as different
        ("", True, True),
    ],
)
def test_selectors(selector, linux, windows):
    requirements = parse_selector(selector)
    assert (matches(requirements, LINUX_GPU), matches(requirements, WINDOWS)) == (linux, windows)


@pytest.mark.parametrize("bad", ["a=b=c", "a in b", "a in (b", "=x", "a notin (b c)", "a,,b"])
def test_malformed_selectors_quote_the_term(bad):
    with pytest.raises(ImageError, match="selector"):
        parse_selector(bad)
