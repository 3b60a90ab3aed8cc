"""ImageCatalog: libraries, items and image objects, as the stack config declares them."""

from __future__ import annotations

import hashlib
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.crds import VmOperatorCrds
from providers.content_library import ContentLibrary
from providers.deletion_guard import DeletionGuard, DestroyGuard
from providers.instance import StackInstance
from providers.library_item import ContentLibraryItem
from providers.namespace_libraries import NamespaceLibraries
from providers.trusted_certificate import TrustedCertificate
from providers.vm_image import ClusterVirtualMachineImage, ObservedImages, VirtualMachineImage
from vmimage.catalog import (
    PlannedImage,
    SyncedItem,
    display_name_conflicts,
    named_with_aliases,
    plan,
    resource_name,
    supervisor_associations,
)
from vmimage.cluster.table import format_table, image_row
from vmimage.config import CatalogConfig, ConfigError, LibraryConfig
from vmimage.contract.models import Image
from vmimage.descriptor.trust import TrustedCertificate as TrustedCertificateFile
from vmimage.descriptor.trust import trusted_certificates
from vmimage.errors import ImageError
from vmimage.review.guard import LIBRARY, object_identity
from vmimage.vsphere.listing import LibraryListing

FORCED = ", with every item in it (forceDestroy)"
TABLE_COLUMNS = (
    "NAMESPACE",
    "NAME",
    "DISPLAY NAME",
    "TYPE",
    "IMAGE VERSION",
    "OS NAME",
    "OS VERSION",
    "HARDWARE VERSION",
)


def catalog_table(manifests: list[dict[str, Any]]) -> str:
    """`kubectl get vmi,cvmi -A` for the catalog: one row per object (kind, metadata and status
    are enough), cluster images first."""
    rows = []
    for manifest in sorted(
        manifests, key=lambda m: (m["metadata"].get("namespace") or "", m["status"].get("name", ""))
    ):
        image = Image.model_validate(manifest)
        rows.append([image.metadata.namespace or "(cluster)", *image_row(image)])
    return format_table(TABLE_COLUMNS, rows)


class ImageCatalog(pulumi.ComponentResource):
    """Publishes the configured images and synced libraries; type ``vmimage:index:ImageCatalog``."""

    images: pulumi.Output[dict[str, list[dict[str, Any]]]]
    table: pulumi.Output[str]
    _manifests: pulumi.Output[list[dict[str, Any]]] | None = None

    def __init__(
        self,
        name: str,
        config: CatalogConfig,
        listing: LibraryListing | None = None,
        opts: pulumi.ResourceOptions | None = None,
        cluster_crds: dict[str, dict[str, Any] | None] | None = None,
        secret_keys: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """``cluster_crds``: the image CRDs the cluster has now (vmimage.cluster.kube.read_crds), which
        decide what ``installCrds`` does; without it every one counts as absent.
        ``secret_keys``: the catalog's config keys set as secrets (`pulumi config set --secret
        --path 'vmimage:images[0].source' …` marks the whole key): the values in them that can
        hold a credential stay secret, in the state, the preview and every message: every
        image's source (``images``) and every library's subscription URL (``libraries``).
        Names cannot be secret (Pulumi resource names are plain text)."""
        super().__init__("vmimage:index:ImageCatalog", name, None, opts)
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        # first: the salt every item and image token derives from, recorded before any of them exists
        self.instance = StackInstance(f"{name}-instance", name, opts=child)
        # the libraries to create are declared after the deletion guard, and wait for it (their IDs come then)
        library_ids = self._library_ids(config, listing)
        synced = self._sync(config, listing, library_ids)
        planned = plan(config, synced)
        conflicts = display_name_conflicts(planned)
        if conflicts:
            raise ConfigError("the catalog is ambiguous:\n  " + "\n  ".join(conflicts))

        kubernetes = config.kubernetes
        supervisor = kubernetes is not None and kubernetes.supervisor
        # supervisor mode writes no image object: VM Operator publishes the associated libraries'
        # images; the image resources predict each object (VMI ID, status) for the preview, and
        # one ObservedImages resource, after them, waits for VM Operator's and holds them to it
        target: dict[str, Any] = (
            {"kubeconfig": kubernetes.kubeconfig, "context": kubernetes.context, "mode": kubernetes.mode}
            if kubernetes
            else {}
        )
        former_libraries = {library.name: library.renamed_from for library in config.libraries}
        item_names = {
            index: named_with_aliases(
                [name],
                ["item"],
                [image.library, *former_libraries.get(image.library, [])],
                [image.display_name, *image.renamed_from],
            )
            for index, image in enumerate(config.images)
        }
        image_names = [self._image_name(image) for image in planned]
        # registered first: its check fails the run, before any delete, when a protected stack would lose
        # an item, image object or library no allowDelete names (gone, or replaced: its identity moved)
        identity = {library.name: _identity(library) for library in config.libraries}
        cluster = None  # the image objects' cluster, as the stack file names it
        if kubernetes is not None:
            context, kubeconfig = kubernetes.context or "(current context)", kubernetes.kubeconfig or "default"
            cluster = f"cluster {context} of kubeconfig {kubeconfig}"
        declared = {
            library_name: [library.name, LIBRARY + (FORCED if library.force_destroy else ""), identity[library.name]]
            for library in config.libraries
            if not library.existing
            for library_name, _ in [self._library_names[library.name]]
        }
        declared |= {
            item_names[index][0]: [image.display_name, f"library item in {image.library}", identity[image.library]]
            for index, image in enumerate(config.images)
        }
        declared |= {
            image_name: [
                image.display_name,
                image.kind + (f" in {image.namespace}" if image.namespace else ""),
                object_identity(identity[config.images[image.image_index].library], cluster, supervisor)
                if image.image_index is not None
                else "",
            ]
            for image, (image_name, _) in zip(planned, image_names, strict=True)
        }
        # a certificate the stack added is deleted when it leaves the list, or its file holds another one
        trusted = self._trusted(config)
        declared |= {self._certificate_name(c): [c.path, "trusted certificate", ""] for c in trusted}
        named = [*self._library_names.values(), *item_names.values(), *image_names]
        self.guard = DeletionGuard(
            f"{name}-deletion-guard",
            declared=declared,
            former_names=dict(named),
            protection=config.deletion_protection,
            allowed=list(config.allow_delete),
            opts=child,
        )
        # after the guard: a library's replacement deletes its items first, at once (delete before replace)
        library_opts = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.guard]))
        library_ids |= self._libraries(config, library_opts, secret="libraries" in secret_keys)
        if supervisor:
            self.associations = self._associate(config, listing, library_ids, child)
        image_opts = child
        if kubernetes is not None and kubernetes.install_crds:
            provider = k8s.Provider(
                f"{name}-cluster", kubeconfig=kubernetes.kubeconfig, context=kubernetes.context, opts=child
            )
            self.crds = VmOperatorCrds(f"{name}-crds", cluster_crds or {}, provider=provider, opts=child)
            image_opts = pulumi.ResourceOptions(parent=self, depends_on=[self.crds])
        # after the guard, as the libraries: a refused run adds no certificate either
        self.certificates = self._certificates(
            trusted, pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.guard]))
        )
        item_opts = child
        if self.certificates:  # a library with a security policy verifies an upload against them
            item_opts = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=self.certificates))
        trust = list(config.trusted_certificates) or None
        self.items: dict[int, ContentLibraryItem] = {}
        for index, image in enumerate(config.images):
            item_name, aliases = item_names[index]
            self.items[index] = ContentLibraryItem(
                item_name,
                library_id=library_ids[image.library],
                name=image.display_name,
                source=image.source,
                description=image.description or None,
                sha256=image.sha256,
                source_secret="images" in secret_keys,
                declaration=_declaration(item_name),
                instance=self.instance.salt,
                security_policy=config.security_policy(image.library),
                trust=trust,
                opts=_aliased(item_opts, aliases),
            )
        self._entries: list[dict[str, Any]] = []
        self.image_resources = [
            self._image(image, names, target, image_opts, config)
            for image, names in zip(planned, image_names, strict=True)
        ]
        if supervisor and self.image_resources:
            assert kubernetes is not None
            self.observer = ObservedImages(
                f"{name}-vm-operator",
                images=self._entries,
                wait_seconds=kubernetes.wait_seconds,
                strict=kubernetes.strict,
                kubeconfig=kubernetes.kubeconfig,
                context=kubernetes.context,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[*self.image_resources, *self.associations.values()]
                ),
            )

        # One gather per property over all the images, each held whole (_Whole) until the apply
        # that reads it: Output.all and apply lift every value inside a dict or list into an Output
        # of its own and walk it for unknowns (hundreds per status), which is what a large
        # catalog's program spent its time on. The state keeps each status once, on its resource.
        vmi_ids = _gathered([resource.vmi_id for resource in self.image_resources])
        statuses = _gathered([resource.status for resource in self.image_resources])
        self.images = vmi_ids.apply(lambda ids: _by_display_name(planned, ids.value))
        self.table = pulumi.Output.all(vmi_ids, statuses).apply(
            lambda values: catalog_table(
                [_listed(*row) for row in zip(planned, *(whole.value for whole in values), strict=True)]
            )
        )
        self._planned, self._vmi_ids, self._statuses = planned, vmi_ids, statuses
        guarded: list[pulumi.Resource] = [
            *self.libraries,
            *self.items.values(),
            *self.image_resources,
            *getattr(self, "associations", {}).values(),
        ]
        self.destroy_guard = DestroyGuard(
            f"{name}-destroy-guard", protection=config.deletion_protection, guarded=guarded, opts=child
        )
        self.register_outputs({"images": self.images, "table": self.table})

    @property
    def manifests(self) -> pulumi.Output[list[dict[str, Any]]]:
        """The image objects as far as resolving a VM's image needs them (kind, name, namespace,
        labels, status), for ``VirtualMachine(images=...)``. Built on first use only: most
        programs never ask, and a large catalog's labels cost its program time to gather."""
        if self._manifests is None:
            labels = _gathered([resource.labels for resource in self.image_resources])
            self._manifests = pulumi.Output.all(self._vmi_ids, self._statuses, labels).apply(
                lambda values: [
                    _listed(*row) for row in zip(self._planned, *(whole.value for whole in values), strict=True)
                ]
            )
        return self._manifests

    def _library_ids(self, config: CatalogConfig, listing: LibraryListing | None) -> dict[str, pulumi.Input[str]]:
        """The existing libraries' IDs (looked up now); the resource name and aliases of each to create."""
        ids: dict[str, pulumi.Input[str]] = {}
        self._library_names: dict[str, tuple[str, list[str]]] = {}
        for library in config.libraries:
            if library.existing:
                if listing is None:
                    raise ConfigError(f"library {library.name!r} is existing: looking it up needs vCenter settings")
                ids[library.name] = listing.library_id(library.name)
            else:
                self._library_names[library.name] = named_with_aliases(
                    [self._name], ["library"], [library.name, *library.renamed_from]
                )
        return ids

    def _libraries(
        self, config: CatalogConfig, opts: pulumi.ResourceOptions, secret: bool
    ) -> dict[str, pulumi.Input[str]]:
        """The libraries to create, declared: their IDs."""
        ids: dict[str, pulumi.Input[str]] = {}
        self.libraries: list[ContentLibrary] = []
        for library in config.libraries:
            if library.existing:
                continue
            library_name, aliases = self._library_names[library.name]
            created = ContentLibrary(
                library_name,
                name=library.name,
                datastore=library.datastore,
                description=library.description,
                subscription_url=library.subscription_url,
                subscription_secret=secret,
                force_destroy=library.force_destroy,
                security_policy=library.security_policy,
                opts=_aliased(opts, aliases),
            )
            self.libraries.append(created)
            ids[library.name] = created.id
        return ids

    @staticmethod
    def _trusted(config: CatalogConfig) -> list[TrustedCertificateFile]:
        try:
            return trusted_certificates(config.trusted_certificates)
        except ImageError as error:
            raise ConfigError(f"vmimage:trustedCertificates: {error}") from None

    def _certificate_name(self, certificate: TrustedCertificateFile) -> str:
        """Named by its fingerprint: a file moved or reordered is the same certificate, another one
        another entry."""
        return resource_name(self._name, "trusted-certificate", certificate.sha256[:16])

    def _certificates(
        self, found: list[TrustedCertificateFile], child: pulumi.ResourceOptions
    ) -> list[TrustedCertificate]:
        """One resource per distinct certificate of vmimage:trustedCertificates."""
        return [
            TrustedCertificate(
                self._certificate_name(certificate),
                path=certificate.path,
                pem=certificate.pem,
                subject=certificate.subject,
                opts=child,
            )
            for certificate in found
        ]

    def _associate(
        self,
        config: CatalogConfig,
        listing: LibraryListing | None,
        library_ids: dict[str, pulumi.Input[str]],
        child: pulumi.ResourceOptions,
    ) -> dict[str, NamespaceLibraries]:
        """Each namespace an image or a synced library is scoped to gets those libraries."""
        wanted = supervisor_associations(config)
        if listing is not None:
            missing = [namespace for namespace in wanted if not listing.namespace_exists(namespace)]
            if missing:
                raise ConfigError(
                    f"vCenter has no Supervisor namespace {', '.join(map(repr, missing))}: create it, or take it "
                    "out of the images' scope (supervisor mode associates libraries with namespaces)"
                )
        return {
            namespace: NamespaceLibraries(
                resource_name(self._name, "namespace-libraries", namespace),
                namespace=namespace,
                library_ids=[library_ids[library] for library in libraries],
                opts=child,
            )
            for namespace, libraries in wanted.items()
        }

    @staticmethod
    def _sync(
        config: CatalogConfig, listing: LibraryListing | None, library_ids: dict[str, pulumi.Input[str]]
    ) -> dict[int, list[SyncedItem]]:
        synced: dict[int, list[SyncedItem]] = {}
        for index, sync in enumerate(config.sync):
            library_id = library_ids.get(sync.library)  # a library to create has none yet
            if listing is None or not isinstance(library_id, str):
                raise ConfigError(
                    f"vmimage:sync[{index}]: library {sync.library!r} must be an existing library (existing: true) "
                    "so its items can be listed when the program runs"
                )
            synced[index] = [SyncedItem(i.id, i.name, i.content_version) for i in listing.items(library_id)]
        return synced

    def _image_name(self, image: PlannedImage) -> tuple[str, list[str]]:
        """The image resource's name and its aliases (former display names)."""
        kind = "cvmi" if image.namespace is None else "vmi"
        names = [image.display_name, *image.renamed_from]
        return named_with_aliases([self._name], [kind], names, [image.namespace or "cluster"])

    def _image(
        self,
        image: PlannedImage,
        names: tuple[str, list[str]],
        target: dict[str, Any],
        opts: pulumi.ResourceOptions,
        config: CatalogConfig,
    ):
        policy = None
        if image.synced is not None:
            item_id: pulumi.Input[str] = image.synced.id
            version: pulumi.Input[str | None] = image.synced.content_version
            fingerprint: pulumi.Input[str | None] = None
            becomes: pulumi.Input[dict[str, Any] | None] = None
        else:
            assert image.image_index is not None
            item = self.items[image.image_index]
            # The resource ID, not the item_id output: an update keeps its ID known during a preview,
            # where an output goes unknown and would make every image look replaced.
            item_id, version, fingerprint, becomes = item.id, item.content_version, item.fingerprint, item.becomes
            policy = config.security_policy(config.images[image.image_index].library)
        image_name, aliases = names
        common = dict(
            item_id=item_id,
            content_version=version,
            content_fingerprint=fingerprint,
            becomes=becomes,
            display_name=image.display_name,
            capabilities=list(image.capabilities),
            **target,
            declaration=_declaration(image_name),
            instance=self.instance.salt,
            **({"security_policy": policy} if policy else {}),
            opts=_aliased(opts, aliases),
        )
        self._entries.append(  # what ObservedImages predicts the object from again
            {
                "kind": image.kind,
                "namespace": image.namespace,
                **{key: common[key] for key in ("item_id", "content_version", "content_fingerprint", "display_name")},
                "capabilities": common["capabilities"],  # the stack's; the descriptor's are the item's
                **({"security_policy": policy} if policy else {}),
            }
        )
        if image.namespace is None:
            return ClusterVirtualMachineImage(image_name, **common)
        return VirtualMachineImage(image_name, namespace=image.namespace, **common)


class _Whole:
    """A value the SDK passes through as it is: inside this, a list of statuses is one value, not
    an Output per value inside it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _gathered(outputs: list[pulumi.Output[Any]]) -> pulumi.Output[_Whole]:
    """``Output.all(*outputs)``, held whole: one Output per image, none per value inside its
    status. Unknown while any of them is."""
    return pulumi.Output.all(*[output.apply(_Whole) for output in outputs]).apply(
        lambda held: _Whole([whole.value for whole in held])
    )


def _listed(
    image: PlannedImage, vmi: str, status: dict[str, Any] | None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """An image object as far as the table and resolution read it."""
    metadata = {"name": vmi, **({"namespace": image.namespace} if image.namespace else {}), "labels": labels or {}}
    return {"kind": image.kind, "metadata": metadata, "status": status or {}}


def _by_display_name(planned: list[PlannedImage], vmi_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Display name → where it is published (a name may be published in several scopes)."""
    images: dict[str, list[dict[str, Any]]] = {}
    for image, vmi in zip(planned, vmi_ids, strict=True):
        placement = {"vmi_id": vmi, "kind": image.kind, "namespace": image.namespace}
        images.setdefault(image.display_name, []).append(placement)
    return images


def _aliased(opts: pulumi.ResourceOptions, aliases: list[str]) -> pulumi.ResourceOptions:
    """``opts`` with the names a renamed resource had (same parent), so the engine moves it."""
    if not aliases:
        return opts
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(name=n) for n in aliases]))


def _identity(library: LibraryConfig) -> str:
    """What replaces a created library when it changes (its provider's REPLACING inputs), and with
    it every item in it and their image objects: the deletion guard compares it between runs. A
    subscription URL only as a digest (the guard's record is plain text). "" for an existing one."""
    if library.existing:
        return ""
    where = f"datastore {library.datastore!r}"
    if library.subscription_url:
        where += f", subscription sha256:{hashlib.sha256(library.subscription_url.encode()).hexdigest()[:12]}"
    return where


def _declaration(resource_name: str) -> str:
    """What names a declaration across runs within its stack instance: its stack and resource name
    (vmimage/declaration.py; the instance's salt tells it from another stack's of the same name)."""
    return f"{pulumi.get_project()}/{pulumi.get_stack()}/{resource_name}"
