"""The stack configuration of the catalog, as pydantic models with readable errors.

`pulumi config` values arrive as plain JSON-like data under the project's namespace
(``vmimage:libraries``, ``vmimage:images``); `load_catalog_config` validates them and
turns every problem into one line that names the key and says what is expected.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from vmimage.cluster.kubeconfig import kubeconfig_problem
from vmimage.contract.labels import is_label_name
from vmimage.descriptor.source import EXTENSIONS

NAMESPACE = "vmimage"
KEYS = ("libraries", "images", "sync", "kubernetes", "deletionProtection", "allowDelete", "trustedCertificates")
REFERENCE = "docs/reference.md"
# The keys of the other namespaces the project reads: vsphere:* (the vCenter connection,
# vmimage/vsphere/settings.py) and kubernetes:* (pulumi-kubernetes' own provider settings, for the
# stack's default Kubernetes provider). pulumi:* belongs to the engine.
VSPHERE_KEYS = ("vsphereServer", "user", "password", "allowUnverifiedSsl", "caFile")
KUBERNETES_KEYS = (
    "kubeconfig",
    "context",
    "cluster",
    "namespace",
    "enableServerSideApply",
    "enableConfigMapMutable",
    "enableSecretMutable",
    "deleteUnreachable",
    "renderYamlToDirectory",
    "skipUpdateUnreachable",
    "suppressDeprecationWarnings",
    "suppressHelmHookWarnings",
    "strictMode",
    "alwaysRender",
    "clusterIdentifier",
)
KNOWN_KEYS = {
    NAMESPACE: KEYS,
    "vsphere": VSPHERE_KEYS,
    "kubernetes": KUBERNETES_KEYS,
}
# vCenter's own name of its OVF security policy (item rule ovf: OVF_STRICT_VERIFICATION), and the
# short name a stack may use for it
OVF_DEFAULT_POLICY = "OVF default policy"
POLICY_ALIASES = {"ovf-strict": OVF_DEFAULT_POLICY}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ConfigError(Exception):
    """Invalid stack configuration; the message has one line per problem."""


def _capability(value: str) -> str:
    if not is_label_name(value):
        raise ValueError("a capability is 1-63 letters, digits, '-', '_' or '.', starting and ending alphanumeric")
    return value


def _namespace(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError("a namespace is a DNS label: lower-case letters, digits and '-', at most 63 characters")
    return value


def _kubeconfig(value: str | None) -> str | None:
    if value is not None and (problem := kubeconfig_problem(value)):
        raise ValueError(problem)
    return value


def _source(value: str) -> str:
    lowered = value.lower().split("?", 1)[0]
    if lowered.startswith("http://"):
        raise ValueError("vCenter pulls sources over https only; use an https:// URL")
    if not any(lowered.endswith(extension) for extension in EXTENSIONS):
        raise ValueError("a source is a path or https URL ending in .ova, .ovf or .iso")
    return value


def policy_name(value: str) -> str:
    """The security policy vCenter lists under this name: an alias (``ovf-strict``) read as vCenter's
    name, any other name as written (vCenter resolves it: the library's check)."""
    return POLICY_ALIASES.get(value.strip().lower(), value.strip())


def _a_name(value: str) -> str:
    """allowDelete names what may go; ``*`` there would allow every deletion in every run to come."""
    if value.strip() == "*":
        raise ValueError(
            "'*' would allow every deletion for good while deletionProtection still reads true: name the images "
            "(and libraries), or for one run set VMIMAGE_ALLOW_DELETE='*'"
        )
    return value


def _not_a_number(value: Any) -> Any:
    """YAML reads an all-digit digest as a number, and a number that long has already lost digits."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError('YAML read this sha256 as a number (it is all digits): quote it, sha256: "0123…"')
    return value


Capability = Annotated[str, AfterValidator(_capability)]


class ConfigModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class LibraryConfig(ConfigModel):
    """A content library: created on `datastore`, or an existing one referenced by name."""

    name: str = Field(min_length=1, max_length=80)
    datastore: str | None = Field(None, min_length=1)
    description: str | None = None
    subscription_url: str | None = Field(None, pattern=r"^https://")
    existing: bool = False
    # deleting the library (destroy, a new datastore) may delete items this stack does not manage
    force_destroy: bool = False
    # names this library had before, so a rename updates it in place (Pulumi aliases)
    renamed_from: list[Annotated[str, Field(min_length=1, max_length=80)]] = []
    # vCenter's OVF security policy, by name ("OVF default policy", or ovf-strict): the library then
    # holds an OVF item compliant only when a certificate vCenter trusts verifies its signature
    security_policy: Annotated[str, AfterValidator(policy_name)] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _needs_storage(self) -> LibraryConfig:
        if not self.existing and self.datastore is None:
            raise ValueError("a library to create needs a datastore (or set existing: true to use one as it is)")
        if self.existing and (self.force_destroy or self.renamed_from or self.security_policy):
            raise ValueError(
                "an existing library is never changed or deleted: forceDestroy, renamedFrom and securityPolicy do "
                "not apply (vCenter says whether its items are security compliant)"
            )
        return self


def _check_scope(value: Any) -> Any:
    if value == "cluster":
        return value
    if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError("scope is 'cluster' or a non-empty list of namespaces")
    for index, namespace in enumerate(value):
        try:
            _namespace(namespace)
        except ValueError as exc:
            raise ValueError(f"[{index}] {namespace!r}: {exc}") from None
    if len(set(value)) != len(value):
        raise ValueError("scope lists a namespace twice")
    return tuple(value)


Scope = Annotated[Literal["cluster"] | tuple[str, ...], BeforeValidator(_check_scope)]


def scopes(scope: Scope) -> list[str | None]:
    """The namespaces an image is published in; None stands for cluster-wide."""
    return [None] if scope == "cluster" else list(scope)


class ImageConfig(ConfigModel):
    """One image: a source file or URL published as a library item, visible in a scope."""

    display_name: str = Field(min_length=1, max_length=80)
    source: Annotated[str, AfterValidator(_source)]
    library: str = Field(min_length=1)
    scope: Scope = "cluster"
    capabilities: list[Capability] = []
    description: str = ""
    sha256: Annotated[str | None, BeforeValidator(_not_a_number)] = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    # display names this image had before, so a rename keeps its item (same UUID and VMI ID)
    renamed_from: list[Annotated[str, Field(min_length=1, max_length=80)]] = []


class SyncConfig(ConfigModel):
    """An existing library (local or subscribed) whose every item is published in a scope."""

    library: str = Field(min_length=1)
    scope: Scope = "cluster"
    capabilities: list[Capability] = []


class KubernetesConfig(ConfigModel):
    """The cluster the image objects go to (the one `kubectl vsphere login` set up, say).

    ``mode``: ``publish`` writes the image objects (a cluster where vmimage stands in for VM
    Operator's image controllers); ``supervisor`` never writes one: in a vSphere Supervisor, VM
    Operator publishes the images of the libraries vCenter associates with a namespace, so the
    stack associates its libraries with the namespaces its images are scoped to."""

    kubeconfig: Annotated[str | None, AfterValidator(_kubeconfig)] = None
    context: str | None = None
    install_crds: bool = False
    mode: Literal["publish", "supervisor"] = "publish"
    # supervisor mode: how long `up` waits for VM Operator's object of each image, and whether a
    # difference from the prediction fails the update (else it is a warning)
    wait_seconds: int = Field(600, ge=1, le=86400)
    strict: bool = False

    @property
    def supervisor(self) -> bool:
        return self.mode == "supervisor"

    @model_validator(mode="after")
    def _supervisor_has_its_crds(self) -> KubernetesConfig:
        if self.supervisor and self.install_crds:
            raise ValueError("a Supervisor has VM Operator and its CRDs: installCrds does not apply in supervisor mode")
        return self


class CatalogConfig(ConfigModel):
    libraries: list[LibraryConfig] = []
    images: list[ImageConfig] = []
    sync: list[SyncConfig] = []
    kubernetes: KubernetesConfig | None = None
    # the deletion guard (vmimage/review/guard.py): on unless a stack turns it off, so a stack pointed at
    # a real vCenter is protected from its first run; allowDelete names what may go in the next run
    deletion_protection: bool = True
    allow_delete: list[Annotated[str, Field(min_length=1), AfterValidator(_a_name)]] = []
    # PEM files whose certificates vCenter's content libraries trust (the trusted-certificates API):
    # what a library with a security policy verifies signatures against
    trusted_certificates: list[Annotated[str, Field(min_length=1)]] = []

    def security_policy(self, library: str) -> str | None:
        """The security policy of a library the stack creates (None: none, or an existing library)."""
        return next((entry.security_policy for entry in self.libraries if entry.name == library), None)

    def problems(self) -> list[str]:
        """Cross-entry problems, as ``key: message`` lines."""
        lines = []
        names = {library.name for library in self.libraries}
        known = ", ".join(sorted(names)) or "none declared"
        for index, image in enumerate(self.images):
            if image.library not in names:
                lines.append(f"{NAMESPACE}:images[{index}].library: {image.library!r} is not in libraries ({known})")
        for index, sync in enumerate(self.sync):
            if sync.library not in names:
                lines.append(f"{NAMESPACE}:sync[{index}].library: {sync.library!r} is not in libraries ({known})")
        seen: dict[tuple[str, str], int] = {}
        for index, image in enumerate(self.images):
            key = (image.library, image.display_name)
            if key in seen:
                lines.append(
                    f"{NAMESPACE}:images[{index}]: library {image.library!r} already gets an item named "
                    f"{image.display_name!r} from images[{seen[key]}]; give one of them another displayName"
                )
            seen.setdefault(key, index)
        current = {library.name: index for index, library in enumerate(self.libraries)}
        for index, library in enumerate(self.libraries):
            for former in library.renamed_from:
                if former in current and current[former] != index:
                    lines.append(
                        f"{NAMESPACE}:libraries[{index}].renamedFrom: {former!r} is libraries[{current[former]}]'s "
                        "name now; a former name belongs to one library"
                    )
        for index, image in enumerate(self.images):
            for former in image.renamed_from:
                other = seen.get((image.library, former))
                if other is not None and other != index:
                    lines.append(
                        f"{NAMESPACE}:images[{index}].renamedFrom: {former!r} is images[{other}]'s displayName now "
                        f"in library {image.library!r}; a former name belongs to one image"
                    )
        return lines


def _location(loc: tuple[int | str, ...]) -> str:
    path = NAMESPACE
    for index, part in enumerate(loc):
        path += f"[{part}]" if isinstance(part, int) else (":" if index == 0 else ".") + str(part)
    return path


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown key{_nearest(str(error['loc'][-1]), _model_keys(error['loc']))} (the keys are in {REFERENCE})"
    return error["msg"].removeprefix("Value error, ")


def _model_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the entry holding the unknown key at ``loc`` accepts, as a stack file spells them."""
    parent = next((part for part in reversed(loc[:-1]) if isinstance(part, str)), None)
    model = {
        "libraries": LibraryConfig,
        "images": ImageConfig,
        "sync": SyncConfig,
        "kubernetes": KubernetesConfig,
    }.get(parent or "", CatalogConfig)
    return [field.alias or name for name, field in model.model_fields.items()]


def _nearest(key: str, known: Iterable[str], prefix: str = "") -> str:
    """ " did you mean `x`?" for a key close to a known one (a typo), else nothing."""
    match = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f"; did you mean `{prefix}{match[0]}`?" if match else ""


def unknown_keys(keys: Iterable[str]) -> list[str]:
    """One line per stack config key the project does not know: in its own namespaces (vmimage:,
    vsphere:, kubernetes:) a key it would not read, and a namespace no part of it reads. A misspelt
    key is not a missing one: `vmimage:imges` must not read as "no images" (and delete them all)."""
    everything = [f"{namespace}:{key}" for namespace, names in KNOWN_KEYS.items() for key in names]
    lines = []
    for full in sorted(keys):
        namespace, _, key = full.partition(":")
        if namespace == "pulumi":
            continue
        if namespace in KNOWN_KEYS:
            if key not in KNOWN_KEYS[namespace]:
                hint = _nearest(key, KNOWN_KEYS[namespace], f"{namespace}:")
                lines.append(f"{full}: unknown key{hint} (the keys are in {REFERENCE})")
        else:
            hint = _nearest(full, everything)
            lines.append(f"{full}: no part of this project reads the {namespace!r} namespace{hint} (see {REFERENCE})")
    return lines


def load_catalog_config(values: dict[str, Any], keys: Iterable[str] = ()) -> CatalogConfig:
    """Validate the project's config values (keys without the ``vmimage:`` prefix); ``keys``: every
    key the stack sets, in every namespace (``vmimage:images``, ``vsphere:user``…), checked by
    `unknown_keys`."""
    lines = unknown_keys(keys)
    try:
        config = CatalogConfig.model_validate(values)
        lines += config.problems()
    except ValidationError as exc:
        lines += [f"{_location(e['loc'])}: {_message(e)}" for e in exc.errors()]
    if lines:
        raise ConfigError("invalid stack configuration:\n  " + "\n  ".join(lines))
    return config
