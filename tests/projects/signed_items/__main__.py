"""Library items and libraries of the catalog's types whose checks take what the stack config gives
(tests/test_policies.py): the policy pack judges each on the agreed shape, ``becomes.signature`` on an
item and ``security_policy`` on a library, as the real providers' checks compute them, with no vCenter.
An item with ``later: true`` gets its ``becomes`` from another resource's output: unknown in a preview."""

from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, Resource, ResourceProvider


class Given(ResourceProvider):
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult("given", props)


class ContentLibrary(Resource, module="vmimage", name="ContentLibrary"):
    def __init__(self, name: str, props: dict[str, Any]) -> None:
        super().__init__(Given(), name, props)


class ContentLibraryItem(Resource, module="vmimage", name="ContentLibraryItem"):
    def __init__(self, name: str, props: dict[str, Any]) -> None:
        super().__init__(Given(), name, props)


config = pulumi.Config("test")
for library in config.get_object("libraries") or []:
    ContentLibrary(library["name"], {"name": library["name"], "security_policy": library.get("securityPolicy")})
anchor = ContentLibrary("anchor", {"name": "anchor", "security_policy": "OVF default policy"})
for item in config.get_object("items") or []:
    becomes = item.get("becomes")
    if item.get("later"):
        becomes = anchor.id.apply(lambda _, given=becomes: given)
    ContentLibraryItem(item["name"], {"name": item["name"], "source": item["source"], "becomes": becomes})
