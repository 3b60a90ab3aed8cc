"""The vCenter inventory over SOAP (pyvmomi): what the REST content library API cannot name."""

from __future__ import annotations

import ssl

from vmimage.vsphere.rest import NotFoundError, VSphereError
from vmimage.vsphere.settings import ConnectionSettings


def find_datastore_id(settings: ConnectionSettings, name: str) -> str:
    """The managed object id of the datastore called ``name`` (passed through as REST's datastore_id)."""
    from pyVim.connect import Disconnect, SmartConnect  # heavy import, only where needed
    from pyVmomi import vim

    try:
        service = SmartConnect(
            host=settings.host,
            port=settings.port,
            user=settings.user,
            pwd=settings.password.get_secret_value(),
            sslContext=settings.ssl_context(),
            connectionPoolTimeout=30,
        )
    except vim.fault.InvalidLogin:
        raise VSphereError(
            settings.server, f"SOAP login as {settings.user!r} refused: check vsphere:user and vsphere:password"
        ) from None
    except (TimeoutError, OSError, ssl.SSLError) as exc:
        raise VSphereError(settings.server, f"SOAP connection failed ({type(exc).__name__}: {exc})") from None
    try:
        content = service.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Datastore], True)
        try:
            found = {datastore.name: datastore._moId for datastore in view.view}
        finally:
            view.Destroy()
    finally:
        Disconnect(service)
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise NotFoundError(settings.server, f"no datastore named {name!r} (found: {known})")
    return found[name]
