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
from vmimage.descriptor.samples import SAMPLES, write_ova

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


# --- what any user-facing text shows of a URL --------------------------------------------------

from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PASSWORDS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\n\r\x85\u2028\u2029"),
    min_size=6,
    max_size=40,
)
TOKENS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=12, max_size=40)


def user_facing_texts(url: str) -> list[str]:
    """Every way vmimage shows a URL: an error naming it as the source or in its reason, a log
    line built with redact, a check failure, and a cell of the pull-request summary."""
    from providers.library_item import ContentLibraryItemProvider
    from vmimage.errors import ImageError, redact
    from vmimage.review.summary import _cell

    failures = ContentLibraryItemProvider().check({}, {"name": "x", "library_id": "l", "source": url + ".txt"})
    return [
        str(ImageError(url, "HTTP 404 Not Found")),
        str(ImageError("upload", f"GET {url} was refused; try again")),
        redact(f"pulling '{url}' (attempt 2): connection reset\nnext line"),
        _cell(f"source <{url}> changed"),
        *(failure.reason for failure in failures.failures),
    ]


@settings(max_examples=300, deadline=None)
@given(password=PASSWORDS, token=TOKENS)
def test_no_text_shows_a_urls_password_or_query_whatever_it_holds(password, token):
    url = f"https://builder:{password}@images.example.test:8443/photon/photon-5.ova?X-Amz-Signature={token}"
    for text in user_facing_texts(url):
        assume(password not in text.replace(url, ""))  # a password that is only ordinary words around it
        assert password not in text, text
        assert token not in text, text
        assert "images.example.test:8443/photon/photon-5.ova" in text  # where it points stays readable


def test_a_kubeconfig_given_as_contents_is_refused_without_being_repeated(tmp_path):
    import subprocess
    import sys

    from vmimage.cluster.kube import KubeTarget
    from vmimage.config import ConfigError, load_catalog_config

    contents = (
        "apiVersion: v1\nkind: Config\nclusters: []\nusers:\n- name: admin\n  user:\n    token: sEcReT-kUbE-t0ken\n"
    )
    with pytest.raises(ConfigError) as refused:
        load_catalog_config({"kubernetes": {"kubeconfig": contents}})
    assert "vmimage:kubernetes.kubeconfig: is a kubeconfig's contents, not a path" in str(refused.value)
    with pytest.raises(Exception) as refused_target:
        KubeTarget(contents)
    one_line = json.dumps({"kubeconfig": contents})  # the JSON form, on one line
    with pytest.raises(Exception) as refused_json:
        KubeTarget(one_line)
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    done = subprocess.run(
        [sys.executable, "-m", "vmimage", "webhook", "--cert", str(cert), "--key", str(key), "--kubeconfig", contents],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "is a kubeconfig's contents, not a path" in done.stderr
    for text in (str(refused.value), str(refused_target.value), str(refused_json.value), done.stdout + done.stderr):
        assert "sEcReT-kUbE-t0ken" not in text and "apiVersion" not in text
