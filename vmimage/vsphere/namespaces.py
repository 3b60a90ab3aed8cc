"""The content libraries vCenter associates with a Supervisor namespace (its VM Service).

VM Operator, inside a Supervisor, publishes a VirtualMachineImage for every item of every
library associated with the namespace; this client reads and sets that association through
`/api/vcenter/namespaces/instances/{namespace}` (`vm_service_spec.content_libraries`). A
change is a read-modify-write of the whole VM Service spec, so the VM classes and whatever
else it holds are written back as they were read.
"""

from __future__ import annotations

from typing import Any

from vmimage.errors import ImageError
from vmimage.vsphere.rest import Call, VapiSession

PATH = "/vcenter/namespaces/instances"


class NamespacesClient:
    def __init__(self, session: VapiSession) -> None:
        self.session = session

    def get(self, namespace: str) -> dict[str, Any] | None:
        """The namespace's instance info, or None where vCenter has no such namespace."""
        found = self.session.call(
            Call("GET", f"{PATH}/{namespace}", f"{PATH}/{namespace}", api_only=True), allow=(404,)
        )
        return found if isinstance(found, dict) else None

    def require(self, namespace: str) -> dict[str, Any]:
        info = self.get(namespace)
        if info is None:
            raise ImageError(
                f"namespace {namespace!r}",
                f"vCenter {self.session.settings.server} has no Supervisor namespace of this name: create it "
                "(Workload Management, or `kubectl` on the Supervisor) or take it out of the image's scope",
            )
        return info

    def libraries(self, namespace: str) -> list[str]:
        """The libraries associated with the namespace, in vCenter's order."""
        spec = self.require(namespace).get("vm_service_spec") or {}
        return list(spec.get("content_libraries") or [])

    def set_libraries(self, namespace: str, libraries: list[str]) -> None:
        """Associate exactly ``libraries``, keeping the rest of the VM Service spec as it is."""
        spec = dict(self.require(namespace).get("vm_service_spec") or {})
        spec["content_libraries"] = list(dict.fromkeys(libraries))
        body = {"vm_service_spec": spec}
        self.session.call(
            Call("PATCH", f"{PATH}/{namespace}", f"{PATH}/{namespace}", body, body, api_only=True),
        )
