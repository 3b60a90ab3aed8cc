"""The catalog's policy pack: `pulumi preview --policy-pack policies [--policy-pack-config FILE]`.

The rules live in vmimage/governance.py (and vmimage/lint.py); this module adapts them to the
engine. Each policy's enforcement level (advisory, mandatory, disabled) and options come from
the stack's policy config, e.g. policies/prod.json:

    {"vmimage-production-sha256": {"production": true},
     "vmimage-image-floors": {"enforcementLevel": "mandatory", "minHardwareVersion": 19, "requireEfi": true}}
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: vmimage/

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from vmimage.errors import ImageError
from vmimage.governance import below_floors, duplicate_display_names, missing_sha256, unverified_ssl
from vmimage.image import file_status
from vmimage.lint import lint_package
from vmimage.source import read_image_file

ITEM = "pulumi-python:dynamic/vmimage:ContentLibraryItem"
IMAGE = "pulumi-python:dynamic/vmimage:VirtualMachineImage"
CLUSTER_IMAGE = "pulumi-python:dynamic/vmimage:ClusterVirtualMachineImage"


def _local_source(args: ResourceValidationArgs) -> str | None:
    source = args.props.get("source")
    if not isinstance(source, str) or source.lower().startswith("https://"):
        return None
    return source


def production_sha256(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != ITEM or not args.get_config().get("production"):
        return
    for problem in missing_sha256(args.props):
        report_violation(problem)


def no_unverified_ssl(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != ITEM or args.get_config().get("dev") or args.provider is None:
        return
    for problem in unverified_ssl(args.provider.props):
        report_violation(problem)


def image_floors(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != ITEM:
        return
    status = args.props.get("image")
    if not isinstance(status, dict) or not status.get("type"):  # not published yet: read the source
        source = _local_source(args)
        if source is None:
            return
        try:
            status = file_status(read_image_file(source), name=str(args.props.get("name"))).wire()
        except ImageError as error:
            report_violation(str(error))
            return
    config = args.get_config()
    for problem in below_floors(
        str(args.props.get("name")),
        status,
        min_hardware_version=config.get("minHardwareVersion"),
        require_efi=bool(config.get("requireEfi")),
        allowed_os_types=config.get("allowedOsTypes") or (),
    ):
        report_violation(problem)


def package_lint(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != ITEM or (source := _local_source(args)) is None:
        return
    try:
        report = lint_package(source, name=str(args.props.get("name")))
    except ImageError as error:
        report_violation(str(error))
        return
    severities = set(args.get_config().get("severities") or ["error"])
    for finding in report.findings:
        if finding.severity in severities:
            report_violation(f"{finding.code}: {finding.message}")


def unique_display_names(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    entries = [
        (resource.props.get("namespace") if resource.resource_type == IMAGE else None,
         str(resource.props.get("display_name")), resource.name)
        for resource in args.resources
        if resource.resource_type in (IMAGE, CLUSTER_IMAGE)
    ]  # fmt: skip
    for problem in duplicate_display_names(entries):
        report_violation(problem)


PolicyPack(
    name="vmimage",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        StackValidationPolicy(
            name="vmimage-unique-display-names",
            description="A display name is published once per scope, so VMs' names resolve.",
            validate=unique_display_names,
        ),
        ResourceValidationPolicy(
            name="vmimage-production-sha256",
            description="Images in a production stack pin their content with sha256.",
            validate=production_sha256,
            config_schema=PolicyConfigSchema(properties={"production": {"type": "boolean", "default": False}}),
        ),
        ResourceValidationPolicy(
            name="vmimage-no-unverified-ssl",
            description="TLS to vCenter is verified (vsphere:allowUnverifiedSsl) outside dev stacks.",
            validate=no_unverified_ssl,
            config_schema=PolicyConfigSchema(properties={"dev": {"type": "boolean", "default": False}}),
        ),
        ResourceValidationPolicy(
            name="vmimage-image-floors",
            description="Images meet the platform's floors: hardware version, EFI firmware, allowed OS types.",
            validate=image_floors,
            enforcement_level=EnforcementLevel.ADVISORY,
            config_schema=PolicyConfigSchema(
                properties={
                    "minHardwareVersion": {"type": "integer"},
                    "requireEfi": {"type": "boolean", "default": False},
                    "allowedOsTypes": {"type": "array", "items": {"type": "string"}},
                }
            ),
        ),
        ResourceValidationPolicy(
            name="vmimage-package-lint",
            description="A local package passes `vmimage lint` before its upload (manifest, digests, sizes).",
            validate=package_lint,
            enforcement_level=EnforcementLevel.ADVISORY,
            config_schema=PolicyConfigSchema(
                properties={"severities": {"type": "array", "items": {"type": "string", "enum": ["error", "warning"]}}}
            ),
        ),
    ],
)
