"""The vCenter password never reaches the state: not the pickled providers, outputs, logs or errors."""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.dynamic.dynamic import serialize_provider

from providers import connection
from providers.content_library import ContentLibraryProvider
from providers.library_item import ContentLibraryItemProvider
from tests.engine import provider_host
from tests.test_providers import ITEM, LIBRARY, PASSWORD, vsphere_config
from vmimage.samples import SAMPLES, write_ova

PROVIDERS = [ContentLibraryProvider, ContentLibraryItemProvider]


@pytest.mark.parametrize("provider_class", PROVIDERS, ids=lambda c: c.__name__)
def test_configured_provider_pickles_without_the_password(provider_class, monkeypatch):
    monkeypatch.setattr(connection, "_CONFIG", {})
    provider = provider_class()
    config = {"vsphere:vsphereServer": "vc.example.test", "vsphere:user": "admin", "vsphere:password": PASSWORD}
    provider.configure(ConfigureRequest(Config(config, "vmimage")))
    assert connection.settings().password.get_secret_value() == PASSWORD  # it was configured
    serialized = serialize_provider(provider)
    raw = base64.b64decode(serialized)
    assert PASSWORD.encode() not in raw and PASSWORD not in serialized
    assert b"vc.example.test" not in raw  # no configuration at all travels with the provider


@pytest.mark.vcsim
def test_outputs_logs_and_errors_hold_no_password(vcsim, tmp_path):
    with provider_host(vsphere_config(vcsim), env={"VMIMAGE_PROGRESS_INTERVAL": "0"}) as host:
        library = host.up(LIBRARY, ContentLibraryProvider(), {"name": "secrets", "datastore": "LocalDS_0"})
        ova = write_ova(tmp_path / "s.ova", SAMPLES[0])
        item = host.up(ITEM, ContentLibraryItemProvider(), {"library_id": library.id, "name": "s", "source": str(ova)})
        with pytest.raises(grpc.RpcError) as caught:
            host.up(ITEM, ContentLibraryItemProvider(), {"library_id": library.id, "name": "s", "source": str(ova)})
        everything = json.dumps([library.outputs, item.outputs, library.inputs, item.inputs]) + "".join(host.stderr)
    assert PASSWORD not in everything
    assert PASSWORD not in caught.value.details()
    # the state carries the pickled provider: check that too
    assert PASSWORD.encode() not in base64.b64decode(item.outputs["__provider"])
