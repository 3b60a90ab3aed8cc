"""Content libraries, library items and their update/download sessions over `VapiSession`."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import httpx

from vmimage.vsphere.rest import SESSION_HEADER, Call, NotFoundError, VapiSession, VSphereError

CL = "/com/vmware/content"
ITEM_TYPES = {"OVF": "ovf", "ISO": "iso"}


@dataclass(frozen=True)
class LibraryInfo:
    id: str
    name: str
    type: str  # LOCAL or SUBSCRIBED
    description: str
    datastore_ids: tuple[str, ...]
    subscription_url: str | None
    security_policy_id: str | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> LibraryInfo:
        subscription = body.get("subscription_info") or {}
        return cls(
            id=body["id"],
            name=body.get("name", ""),
            type=body.get("type", "LOCAL"),
            description=body.get("description") or "",
            datastore_ids=tuple(b.get("datastore_id", "") for b in body.get("storage_backings") or ()),
            subscription_url=subscription.get("subscription_url") or None,
            security_policy_id=body.get("security_policy_id") or None,
        )


@dataclass(frozen=True)
class ItemFile:
    name: str
    size: int
    version: str | None


@dataclass(frozen=True)
class ItemInfo:
    id: str
    library_id: str
    name: str
    description: str
    type: str
    size: int
    content_version: str | None
    metadata_version: str | None
    # in a library with a security policy: whether vCenter verified the item's signature, and how
    # it reports the verification (VERIFIED, NOT_AVAILABLE for an unsigned package…); None elsewhere
    security_compliance: bool | None = None
    certificate_status: str | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ItemInfo:
        return cls(
            id=body["id"],
            library_id=body.get("library_id", ""),
            name=body.get("name", ""),
            description=body.get("description") or "",
            type=body.get("type", ""),
            size=int(body.get("size") or 0),
            content_version=body.get("content_version") or None,
            metadata_version=body.get("metadata_version") or None,
            security_compliance=body.get("security_compliance")
            if isinstance(body.get("security_compliance"), bool)
            else None,
            certificate_status=(body.get("certificate_verification_info") or {}).get("status") or None,
        )


@dataclass(frozen=True)
class SecurityPolicy:
    id: str
    name: str
    item_type_rules: dict[str, str]


@dataclass(frozen=True)
class TrustedCertificateEntry:
    id: str
    text: str  # PEM


SECURITY_POLICIES = "/content/security-policies"  # vSphere 7.0 U3 and later, /api only
TRUSTED_CERTIFICATES = "/content/trusted-certificates"


def _list(value: Any) -> list:
    return list(value or [])  # the simulator answers an empty list as null


class ContentLibraryClient:
    """The content library operations the providers need, in both API flavours."""

    def __init__(self, session: VapiSession) -> None:
        self.session = session

    def _create(self, rest: str, api: str, spec: dict[str, Any]) -> str:
        """POST a create spec with one client token for all its attempts: vCenter answers a retry
        that carries the same token with what the first attempt created, so it may be retried."""
        token = str(uuid.uuid4())
        body = {"create_spec": spec, "client_token": token}
        return self.session.call(Call("POST", rest, api, body, spec, api_headers={"client_token": token}))

    # --- libraries ------------------------------------------------------------------------

    def find_libraries(self, name: str) -> list[str]:
        return _list(
            self.session.call(
                Call(
                    "POST",
                    f"{CL}/library",
                    "/content/library",
                    {"spec": {"name": name}},
                    {"name": name},
                    rest_action="find",
                )
            )
        )

    def get_library(self, library_id: str) -> LibraryInfo:
        body = self.session.call(Call("GET", f"{CL}/library/id:{library_id}", f"/content/library/{library_id}"))
        return LibraryInfo.parse(body)

    def create_library(
        self,
        name: str,
        datastore_id: str,
        description: str = "",
        subscription_url: str | None = None,
        security_policy_id: str | None = None,
    ) -> str:
        spec: dict[str, Any] = {
            "name": name,
            "description": description,
            "type": "SUBSCRIBED" if subscription_url else "LOCAL",
            "storage_backings": [{"type": "DATASTORE", "datastore_id": datastore_id}],
        }
        if security_policy_id:
            spec["security_policy_id"] = security_policy_id
        kind = "local-library"
        if subscription_url:
            kind = "subscribed-library"
            spec["subscription_info"] = {
                "subscription_url": subscription_url,
                "authentication_method": "NONE",
                "automatic_sync_enabled": True,
                "on_demand": True,
            }
        return self._create(f"{CL}/{kind}", f"/content/{kind}", spec)

    def update_library(self, library: LibraryInfo, name: str, description: str) -> None:
        kind = "subscribed-library" if library.type == "SUBSCRIBED" else "local-library"
        spec = {"name": name, "description": description}
        self.session.call(
            Call("PATCH", f"{CL}/{kind}/id:{library.id}", f"/content/{kind}/{library.id}", {"update_spec": spec}, spec)
        )

    def set_security_policy(self, library: LibraryInfo, policy_id: str | None) -> None:
        """Apply a security policy to the library, or (None) remove its policy (the update spec's
        ``unset_security_policy_id``). The caller reads the library back: a server may ignore it."""
        kind = "subscribed-library" if library.type == "SUBSCRIBED" else "local-library"
        spec: dict[str, Any] = {"security_policy_id": policy_id} if policy_id else {"unset_security_policy_id": True}
        self.session.call(
            Call("PATCH", f"{CL}/{kind}/id:{library.id}", f"/content/{kind}/{library.id}", {"update_spec": spec}, spec)
        )

    def security_policies(self) -> list[SecurityPolicy]:
        """The security policies vCenter has (GET /api/content/security-policies)."""
        listed = self.session.call(Call("GET", SECURITY_POLICIES, SECURITY_POLICIES, api_only=True))
        return [
            SecurityPolicy(str(p.get("policy", "")), str(p.get("name", "")), dict(p.get("item_type_rules") or {}))
            for p in _list(listed)
            if isinstance(p, dict)
        ]

    def trusted_certificates(self) -> list[TrustedCertificateEntry]:
        """The certificates content libraries trust (GET /api/content/trusted-certificates)."""
        listed = self.session.call(Call("GET", TRUSTED_CERTIFICATES, TRUSTED_CERTIFICATES, api_only=True)) or {}
        certificates = listed.get("certificates") if isinstance(listed, dict) else listed
        if not isinstance(certificates, list | None) or not all(isinstance(c, dict) for c in certificates or []):
            # an answer that cannot be read is no answer: never "vCenter trusts nothing" (a delete
            # would take the stack's entry for gone, a create would add it twice)
            raise VSphereError(
                self.session.settings.server, f"GET /api{TRUSTED_CERTIFICATES}: an answer that is not a list of entries"
            )
        return [
            TrustedCertificateEntry(str(c.get("certificate", "")), str(c.get("cert_text", "")))
            for c in _list(certificates)
        ]

    def add_trusted_certificate(self, pem: str) -> str | None:
        """Trust a certificate; vCenter answers its ID (govmomi's simulator answers nothing: None)."""
        body = {"cert_text": pem}
        created = self.session.call(
            Call("POST", TRUSTED_CERTIFICATES, TRUSTED_CERTIFICATES, body, body, api_only=True, idempotent=False)
        )
        return created if isinstance(created, str) and created else None

    def delete_trusted_certificate(self, certificate_id: str) -> bool:
        """Stop trusting one; False when it was already gone."""
        where = f"{TRUSTED_CERTIFICATES}/{certificate_id}"
        try:
            self.session.call(Call("DELETE", where, where, api_only=True))
        except NotFoundError:
            return False
        return True

    def delete_library(self, library: LibraryInfo) -> None:
        kind = "subscribed-library" if library.type == "SUBSCRIBED" else "local-library"
        self.session.call(Call("DELETE", f"{CL}/{kind}/id:{library.id}", f"/content/{kind}/{library.id}"), allow=(404,))

    # --- items ----------------------------------------------------------------------------

    def list_items(self, library_id: str) -> list[str]:
        params = {"library_id": library_id}
        return _list(self.session.call(Call("GET", f"{CL}/library/item", "/content/library/item", params=params)))

    def find_items(self, library_id: str, name: str) -> list[str]:
        spec = {"library_id": library_id, "name": name}
        return _list(
            self.session.call(
                Call("POST", f"{CL}/library/item", "/content/library/item", {"spec": spec}, spec, rest_action="find")
            )
        )

    def get_item(self, item_id: str) -> ItemInfo:
        body = self.session.call(Call("GET", f"{CL}/library/item/id:{item_id}", f"/content/library/item/{item_id}"))
        return ItemInfo.parse(body)

    def create_item(self, library_id: str, name: str, description: str, content_type: str) -> str:
        spec = {"library_id": library_id, "name": name, "description": description, "type": ITEM_TYPES[content_type]}
        return self._create(f"{CL}/library/item", "/content/library/item", spec)

    def update_item(self, item_id: str, name: str, description: str) -> None:
        spec = {"name": name, "description": description}
        self.session.call(
            Call(
                "PATCH",
                f"{CL}/library/item/id:{item_id}",
                f"/content/library/item/{item_id}",
                {"update_spec": spec},
                spec,
            )
        )

    def delete_item(self, item_id: str) -> bool:
        """Delete; False when it was already gone."""
        try:
            self.session.call(Call("DELETE", f"{CL}/library/item/id:{item_id}", f"/content/library/item/{item_id}"))
        except NotFoundError:
            return False
        return True

    def item_files(self, item_id: str) -> list[ItemFile]:
        body = self.session.call(
            Call("GET", f"{CL}/library/item/file", "/content/library/item/file", params={"library_item_id": item_id})
        )
        files: dict[str, ItemFile] = {}
        for entry in _list(body):  # the simulator repeats a name after each update: the last one wins
            files[entry["name"]] = ItemFile(entry["name"], int(entry.get("size") or 0), entry.get("version"))
        return list(files.values())

    # --- update sessions ------------------------------------------------------------------

    def create_update_session(self, item_id: str) -> str:
        spec = {"library_item_id": item_id}
        return self._create(f"{CL}/library/item/update-session", "/content/library/item/update-session", spec)

    def add_file(
        self,
        session_id: str,
        name: str,
        size: int | None = None,
        source_url: str | None = None,
        sha256: str | None = None,
    ) -> str:
        """Announce a file; returns the upload URI (PUSH), or "" when vCenter pulls ``source_url``.
        With ``sha256``, vCenter checks the file against it and fails the transfer on a mismatch."""
        spec: dict[str, Any] = {"name": name, "source_type": "PULL" if source_url else "PUSH"}
        if size is not None:
            spec["size"] = size
        if source_url:
            spec["source_endpoint"] = {"uri": source_url}
        if sha256:
            spec["checksum_info"] = {"algorithm": "SHA256", "checksum": sha256.lower()}
        result = self.session.call(
            Call(
                "POST",
                f"{CL}/library/item/updatesession/file/id:{session_id}",
                f"/content/library/item/updatesession/{session_id}/file",
                {"file_spec": spec},
                spec,
                rest_action="add",
                idempotent=False,
            )
        )
        endpoint = (result or {}).get("upload_endpoint") or {}
        return endpoint.get("uri", "")

    def remove_file(self, session_id: str, name: str) -> None:
        """Ask the session to remove one of the item's files when it completes."""
        self.session.call(
            Call(
                "POST",
                f"{CL}/library/item/updatesession/file/id:{session_id}",
                f"/content/library/item/updatesession/{session_id}/file",
                {"file_name": name},
                {"file_name": name},
                rest_action="remove",
            )
        )

    def session_files(self, session_id: str) -> list[dict[str, Any]]:
        return _list(
            self.session.call(
                Call(
                    "GET",
                    f"{CL}/library/item/updatesession/file",
                    f"/content/library/item/updatesession/{session_id}/file",
                    params={"update_session_id": session_id} if self.session.flavour == "rest" else None,
                )
            )
        )

    def get_update_session(self, session_id: str) -> dict[str, Any]:
        return self.session.call(
            Call(
                "GET",
                f"{CL}/library/item/update-session/id:{session_id}",
                f"/content/library/item/update-session/{session_id}",
            )
        )

    def _session_action(self, session_id: str, action: str) -> None:
        self.session.call(
            Call(
                "POST",
                f"{CL}/library/item/update-session/id:{session_id}",
                f"/content/library/item/update-session/{session_id}",
                rest_action=action,
            )
        )

    def keep_alive_update_session(self, session_id: str, progress: int) -> None:
        """Tell vCenter the update session is in use (it expires after minutes without a call),
        which also keeps the API session from idling out while a transfer runs."""
        body = {"client_progress": max(0, min(100, progress))}
        self.session.call(
            Call(
                "POST",
                f"{CL}/library/item/update-session/id:{session_id}",
                f"/content/library/item/update-session/{session_id}",
                rest_body=body,
                api_body=body,
                rest_action="keep-alive",
            )
        )

    def complete_update_session(self, session_id: str) -> None:
        self._session_action(session_id, "complete")

    def cancel_update_session(self, session_id: str) -> None:
        self._session_action(session_id, "cancel")

    def upload(
        self, uri: str, chunks: Iterator[bytes], size: int, again: Callable[[], Iterator[bytes]] | None = None
    ) -> None:
        """PUT a file's bytes to its upload endpoint, streamed, with the session header.

        A 401 (the session ended mid-transfer) renews the session; the file is sent once more
        when ``again`` can produce its bytes anew, else the error says to run again."""
        what = f"upload to {uri.split('?')[0]}"
        for attempt in (chunks, again):
            if attempt is None:
                break
            token = self.session.session_headers()[SESSION_HEADER]
            headers = {SESSION_HEADER: token, "Content-Length": str(size), "Content-Type": "application/octet-stream"}
            body = attempt if attempt is chunks else attempt()
            try:
                response = self.session.http.put(
                    self.session.endpoint(uri), content=body, headers=headers, timeout=httpx.Timeout(300.0)
                )
            except httpx.HTTPError as exc:
                raise self.session._transport_error(what, exc) from None
            if response.status_code != 401:
                if response.status_code >= 400:
                    raise self.session.error(what, response)
                return
            self.session.renew(token)
        raise VSphereError(
            self.session.settings.server,
            f"{what}: vCenter ended the session during the transfer (HTTP 401); "
            "nothing was published, run `pulumi up` again",
            401,
        )

    # --- downloads ------------------------------------------------------------------------

    def download(self, item_id: str, file_name: str, limit: int) -> bytes:
        """One file of an item, at most ``limit`` bytes (descriptors, not disks)."""
        spec = {"library_item_id": item_id}
        session_id = self._create(f"{CL}/library/item/download-session", "/content/library/item/download-session", spec)
        try:
            prepared = self.session.call(
                Call(
                    "POST",
                    f"{CL}/library/item/downloadsession/file/id:{session_id}",
                    f"/content/library/item/downloadsession/{session_id}/file",
                    {"file_name": file_name},
                    {"file_name": file_name},
                    rest_action="prepare",
                )
            )
            uri = ((prepared or {}).get("download_endpoint") or {}).get("uri")
            if not uri:
                raise VSphereError(self.session.settings.server, f"no download endpoint for {file_name!r}")
            data = bytearray()
            url = self.session.endpoint(uri)
            with self.session.http.stream("GET", url, headers=self.session.session_headers()) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self.session.error(f"download of {file_name!r}", response)
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > limit:
                        raise VSphereError(
                            self.session.settings.server,
                            f"{file_name!r} of item {item_id} is over the {limit} byte limit",
                        )
            return bytes(data)
        finally:
            self.session.call(
                Call(
                    "DELETE",
                    f"{CL}/library/item/download-session/id:{session_id}",
                    f"/content/library/item/download-session/{session_id}",
                ),
                allow=(404,),
            )


def read_chunks_at(fd: int, offset: int, size: int, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Exactly ``size`` bytes of the open file ``fd`` from ``offset``, read by position, so a
    sequential reader of the same file keeps its place (an OVA member read again)."""
    position, end = offset, offset + size
    while position < end:
        chunk = os.pread(fd, min(chunk_size, end - position), position)
        if not chunk:
            raise EOFError(f"ended {end - position} bytes early")
        position += len(chunk)
        yield chunk


def read_chunks(stream: IO[bytes], size: int, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Exactly ``size`` bytes of ``stream`` in chunks; a short stream is an error, not a short upload."""
    remaining = size
    while remaining:
        chunk = stream.read(min(chunk_size, remaining))
        if not chunk:
            raise EOFError(f"ended {remaining} bytes early")
        remaining -= len(chunk)
        yield chunk
