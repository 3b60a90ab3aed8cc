"""What every provider shares: vCenter credentials kept out of the state, and clean errors.

A dynamic provider object is pickled (dill) into the Pulumi state with all its
attributes, so credentials never become attributes. `configure()` stores the stack's
`vsphere:*` config in this module's globals, which are not pickled; the environment
(VSPHERE_SERVER, VSPHERE_USER, VSPHERE_PASSWORD, ...) fills what the config leaves out.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pulumi.dynamic import ConfigureRequest

from providers import kubeconfig_copies, lifeline
from vmimage.cluster.kube import ImageObjects, KubeTarget
from vmimage.config import NAMESPACE
from vmimage.errors import ImageError
from vmimage.review.guard import ALLOW_ENV, ALLOW_KEY, PROTECTION_KEY, Declared
from vmimage.review.guard import refused_delete as guard_refusal
from vmimage.vsphere.content_library import ContentLibraryClient
from vmimage.vsphere.namespaces import NamespacesClient
from vmimage.vsphere.rest import VapiSession
from vmimage.vsphere.settings import (
    ALLOW_UNVERIFIED_SSL,
    CA_FILE,
    PASSWORD,
    SERVER,
    USER,
    ConnectionSettings,
    resolve_settings,
)

_KEYS = tuple(key for key, _ in (SERVER, USER, PASSWORD, ALLOW_UNVERIFIED_SSL, CA_FILE))
_CONFIG: dict[str, Any] = {}  # module state: never part of a pickled provider
_GUARD: dict[str, Any] = {}  # the stack's deletion guard settings of this run
_SHARED: dict[str, Any] = {"session": None, "settings": None}  # the provider host's one vCenter session
_SHARED_LOCK = threading.Lock()
_CLUSTERS: dict[KubeTarget, tuple[float | None, ImageObjects]] = {}  # the host's clients, by cluster
_CLUSTERS_LOCK = threading.Lock()
_KUBECONFIGS: set[str] = set()  # the stack's kubeconfigs: pulumi-kubernetes' copies of them go at exit


def configure(request: ConfigureRequest) -> None:
    """Keep the vsphere:* values the engine hands over in Configure (secrets already unwrapped),
    and the deletion guard's settings (vmimage:deletionProtection, vmimage:allowDelete)."""
    for key in _KEYS:
        value = request.config.get(key)
        if value is not None:
            _CONFIG[key] = value
    if (kubeconfig := kubeconfig_copies.stack_kubeconfig(request.config.get(f"{NAMESPACE}:kubernetes"))) is not None:
        _KUBECONFIGS.add(kubeconfig)
    for key in (PROTECTION_KEY, ALLOW_KEY):
        value = request.config.get(key)
        if value is None:
            _GUARD.pop(key, None)
        else:
            _GUARD[key] = value


def refused_delete(entry: Declared) -> str | None:
    """Why this run may not delete ``entry`` (vmimage.review.guard.refused_delete), or None."""
    return guard_refusal(entry, _GUARD, os.environ.get(ALLOW_ENV))


def settings() -> ConnectionSettings:
    return resolve_settings(_CONFIG, os.environ)


def _session() -> VapiSession:
    """The provider host's session, shared by its calls and threads: a `pulumi up` of a thousand
    images logs in once, not once per resource. It renews itself on 401 and is replaced when the
    settings change; vCenter ends it when the host exits (or after its idle timeout)."""
    wanted = settings()
    with _SHARED_LOCK:
        if _SHARED["session"] is None or _SHARED["settings"] != wanted:
            if _SHARED["session"] is not None:
                _SHARED["session"].close()
            _SHARED["session"], _SHARED["settings"] = VapiSession(wanted), wanted
        return _SHARED["session"]


def close_session() -> None:
    with _SHARED_LOCK:
        if _SHARED["session"] is not None:
            _SHARED["session"].close()
        _SHARED["session"] = _SHARED["settings"] = None


atexit.register(close_session)


def _kubeconfig_mtime(target: KubeTarget) -> float | None:
    try:
        return os.stat(os.path.expanduser(target.kubeconfig_name())).st_mtime
    except OSError:
        return None


@contextmanager
def cluster(target: KubeTarget) -> Iterator[ImageObjects]:
    """The provider host's client of one cluster, shared by its calls and threads: a `pulumi up`
    of a thousand images reads the kubeconfig and sets up TLS once, not once per image (about
    9 ms of CPU each, and a TLS handshake for the API server). A kubeconfig rewritten on disk
    (a rotated token, say) gets a new client."""
    mtime = _kubeconfig_mtime(target)
    _KUBECONFIGS.add(target.kubeconfig_name())
    with _CLUSTERS_LOCK:
        known = _CLUSTERS.get(target)
        if known is None or known[0] != mtime:  # a replaced client may still be in use: left to close itself
            known = _CLUSTERS[target] = (mtime, ImageObjects(target))
    yield known[1]


def close_clusters() -> None:
    with _CLUSTERS_LOCK:
        for _, objects in _CLUSTERS.values():
            objects.close()
        _CLUSTERS.clear()


atexit.register(close_clusters)
atexit.register(lambda: kubeconfig_copies.remove_copies(set(_KUBECONFIGS)))


@contextmanager
def content_library() -> Iterator[ContentLibraryClient]:
    """A logged-in content library client for one provider call."""
    yield ContentLibraryClient(_session())


@contextmanager
def namespaces() -> Iterator[NamespacesClient]:
    """A logged-in client of Supervisor namespaces for one provider call (the same session)."""
    yield NamespacesClient(_session())


class _UserErrorsWithoutTraceback:
    """Stands in for the `traceback` module inside Pulumi's dynamic provider host.

    The host reports any exception as `traceback.format_exc()`, so a user mistake
    (a missing file, a refused login) would reach `pulumi up` as a Python traceback.
    For vmimage's own ImageError this returns the one-line message; anything else
    (a bug) keeps its full traceback.
    """

    def __init__(self, real: Any) -> None:
        self._real = real

    def format_exc(self, *args: Any, **kwargs: Any) -> str:
        error = sys.exc_info()[1]
        if isinstance(error, ImageError):
            return str(error)
        return self._real.format_exc(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def install_clean_errors() -> None:
    """Swap the host module's `traceback` for the shim above; a no-op outside the host."""
    host = sys.modules.get("__main__")
    if lifeline.in_provider_host() and not isinstance(getattr(host, "traceback", None), _UserErrorsWithoutTraceback):
        host.traceback = _UserErrorsWithoutTraceback(traceback)


install_clean_errors()
