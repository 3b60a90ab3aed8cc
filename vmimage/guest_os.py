"""vSphere guest ids and CIM OS type numbers, the two ways an OVF names its operating system.

VM Operator publishes ``osInfo.type`` as the guest id and ``osInfo.id`` as the CIM number
govmomi maps that guest id to (``ovf.GuestIDToCIMOSType``); a descriptor without a guest id
(``vmw:osType``) gets one from its CIM number and version (``ovf.CIMOSTypeToGuestID``). The
tables below are those two mappings as govmomi (the version VM Operator pins) defines them:
facts, kept as data.
"""

from __future__ import annotations

# CIM OSType number → the guest ids govmomi maps to it. A guest id that is in no list maps to 0.
_CIM_GUESTS: dict[int, tuple[str, ...]] = {
    1: ("windows9Guest", "otherGuest", "crxPod1Guest"),
    2: (
        "darwinGuest", "darwin64Guest", "darwin10Guest", "darwin10_64Guest", "darwin11Guest", "darwin11_64Guest",
        "darwin12_64Guest", "darwin13_64Guest", "darwin14_64Guest", "darwin15_64Guest", "darwin16_64Guest",
        "darwin17_64Guest", "darwin18_64Guest", "darwin19_64Guest", "darwin20_64Guest", "darwin21_64Guest",
        "darwin22_64Guest", "darwin23_64Guest",
    ),
    12: ("os2Guest",),
    14: ("dosGuest",),
    15: ("win31Guest",),
    16: ("win95Guest",),
    17: ("win98Guest",),
    18: ("winNTGuest",),
    21: ("netware4Guest", "netware5Guest", "netware6Guest"),
    25: ("unixWare7Guest",),
    29: ("solaris6Guest", "solaris7Guest", "solaris8Guest", "solaris9Guest", "solaris10Guest"),
    36: (
        "asianux3Guest", "asianux4Guest", "fedoraGuest", "genericLinuxGuest", "other3xLinuxGuest",
        "other4xLinuxGuest", "other5xLinuxGuest", "other6xLinuxGuest", "otherLinuxGuest",
    ),
    42: ("freebsdGuest", "freebsd11Guest", "freebsd12Guest", "freebsd13Guest", "freebsd14Guest"),
    58: ("win2000ProGuest", "win2000ServGuest", "win2000AdvServGuest"),
    63: ("winMeGuest",),
    67: ("winXPHomeGuest", "winXPProGuest"),
    69: (
        "winNetEnterpriseGuest", "winNetDatacenterGuest", "winNetBusinessGuest", "winNetStandardGuest",
        "winNetWebGuest",
    ),
    70: ("winNetEnterprise64Guest", "winNetDatacenter64Guest", "winNetStandard64Guest"),
    71: ("winXPPro64Guest",),
    73: ("winVistaGuest",),
    74: ("winVista64Guest",),
    76: ("winLonghornGuest",),
    77: ("winLonghorn64Guest",),
    78: ("freebsd64Guest", "freebsd11_64Guest", "freebsd12_64Guest", "freebsd13_64Guest", "freebsd14_64Guest"),
    79: ("redhatGuest", "rhel2Guest", "rhel3Guest", "rhel4Guest", "rhel5Guest", "rhel6Guest", "rhel7Guest"),
    80: (
        "rhel3_64Guest", "rhel4_64Guest", "rhel5_64Guest", "rhel6_64Guest", "rhel7_64Guest", "rhel8_64Guest",
        "rhel9_64Guest",
    ),
    81: ("solaris10_64Guest", "solaris11_64Guest"),
    82: ("suseGuest", "opensuseGuest"),
    83: ("suse64Guest", "opensuse64Guest"),
    84: ("slesGuest", "sles10Guest", "sles11Guest", "sles12Guest"),
    85: ("sles64Guest", "sles10_64Guest", "sles11_64Guest", "sles12_64Guest", "sles15_64Guest", "sles16_64Guest"),
    86: ("oesGuest",),
    87: ("nld9Guest",),
    89: ("mandrakeGuest", "mandrivaGuest"),
    90: ("mandriva64Guest",),
    91: ("turboLinuxGuest",),
    92: ("turboLinux64Guest",),
    93: ("ubuntuGuest",),
    94: ("ubuntu64Guest",),
    95: (
        "debian4Guest", "debian5Guest", "debian6Guest", "debian7Guest", "debian8Guest", "debian9Guest",
        "debian10Guest", "debian11Guest", "debian12Guest",
    ),
    96: (
        "debian4_64Guest", "debian5_64Guest", "debian6_64Guest", "debian7_64Guest", "debian8_64Guest",
        "debian9_64Guest", "debian10_64Guest", "debian11_64Guest", "debian12_64Guest",
    ),
    97: ("other24xLinuxGuest",),
    98: ("other24xLinux64Guest",),
    99: ("other26xLinuxGuest",),
    100: ("other26xLinux64Guest",),
    101: (
        "asianux3_64Guest", "asianux4_64Guest", "asianux5_64Guest", "asianux7_64Guest", "asianux8_64Guest",
        "asianux9_64Guest", "coreos64Guest", "fedora64Guest", "other3xLinux64Guest", "other4xLinux64Guest",
        "other5xLinux64Guest", "other6xLinux64Guest", "otherLinux64Guest", "rockylinux_64Guest",
        "vmwarePhoton64Guest", "amazonlinux2_64Guest", "amazonlinux3_64Guest",
    ),
    102: (
        "windows9_64Guest", "windows11_64Guest", "windows12_64Guest", "windowsHyperVGuest", "windows2019srv_64Guest",
        "windows2019srvNext_64Guest", "windows2022srvNext_64Guest", "otherGuest64",
    ),
    103: ("windows7Server64Guest",),
    104: (
        "vmkernelGuest", "vmkernel5Guest", "vmkernel6Guest", "vmkernel65Guest", "vmkernel7Guest", "vmkernel8Guest",
    ),
    105: ("windows7Guest", "windows7_64Guest"),
    106: ("centos6Guest", "centos7Guest"),
    107: ("centos6_64Guest", "centos7_64Guest", "centos8_64Guest", "centos9_64Guest"),
    108: ("oracleLinuxGuest", "oracleLinux6Guest", "oracleLinux7Guest"),
    109: (
        "oracleLinux64Guest", "oracleLinux6_64Guest", "oracleLinux7_64Guest", "oracleLinux8_64Guest",
        "oracleLinux9_64Guest",
    ),
    110: ("eComStationGuest", "eComStation2Guest"),
    112: ("windows8Server64Guest",),
    113: ("windows8Guest", "windows8_64Guest"),
    115: ("windows9Server64Guest",),
}
_GUEST_CIM = {guest: cim for cim, guests in _CIM_GUESTS.items() for guest in guests}

# (CIM number, version or "") → guest id: the reverse direction, for descriptors that give
# only ``ovf:id`` (and maybe ``ovf:version``). A versioned entry wins over the bare one.
_VERSIONED: dict[tuple[int, str], str] = {
    (2, ""): "darwinGuest", (2, "10"): "darwin10Guest", (2, "11"): "darwin11Guest",
    (2, "19"): "darwin19_64Guest", (2, "20"): "darwin20_64Guest", (2, "21"): "darwin21_64Guest",
    (2, "22"): "darwin22_64Guest", (2, "23"): "darwin23_64Guest",
    **{(95, str(v)): f"debian{v}Guest" for v in range(4, 14)},
    **{(96, str(v)): f"debian{v}_64Guest" for v in range(4, 14)},
    (96, "1"): "pardus_64Guest",
    (14, ""): "dosGuest",
    (42, ""): "freebsdGuest", (78, ""): "freebsd64Guest",
    **{(42, str(v)): f"freebsd{v}Guest" for v in range(11, 16)},
    **{(78, str(v)): f"freebsd{v}_64Guest" for v in range(11, 16)},
    (89, ""): "mandrivaGuest", (90, ""): "mandriva64Guest",
    (21, "4"): "netware4Guest", (21, "5"): "netware5Guest", (21, "6"): "netware6Guest",
    (87, ""): "nld9Guest", (86, ""): "oesGuest",
    (26, "5"): "openServer5Guest", (26, "6"): "openServer6Guest",
    (12, ""): "os2Guest",
    (97, ""): "other24xLinuxGuest", (98, ""): "other24xLinux64Guest", (99, ""): "other26xLinuxGuest",
    (100, ""): "other26xLinux64Guest", (1, ""): "otherGuest", (101, ""): "otherLinux64Guest",
    (102, ""): "otherGuest64", (36, ""): "otherLinuxGuest",
    (79, ""): "redhatGuest",
    **{(79, str(v)): f"rhel{v}Guest" for v in range(2, 8)},
    **{(80, str(v)): f"rhel{v}_64Guest" for v in range(3, 11)},
    (88, ""): "sjdsGuest",
    (84, ""): "slesGuest", (85, ""): "sles64Guest",
    **{(84, str(v)): f"sles{v}Guest" for v in (10, 11, 12)},
    **{(85, str(v)): f"sles{v}_64Guest" for v in (10, 11, 12, 15, 16)},
    (82, ""): "suseGuest", (83, ""): "suse64Guest", (82, "11"): "opensuseGuest", (83, "11"): "opensuse64Guest",
    **{(29, str(v)): f"solaris{v}Guest" for v in range(6, 11)},
    (81, "10"): "solaris10_64Guest", (81, "11"): "solaris11_64Guest",
    (91, ""): "turboLinuxGuest", (92, ""): "turboLinux64Guest",
    (93, ""): "ubuntuGuest", (94, ""): "ubuntu64Guest",
    (25, "7"): "unixWare7Guest",
    (15, ""): "win31Guest", (16, ""): "win95Guest", (17, ""): "win98Guest", (18, ""): "winNTGuest",
    (63, ""): "winMeGuest", (67, ""): "winXPProGuest", (71, ""): "winXPPro64Guest", (73, ""): "winVistaGuest",
    (74, ""): "winVista64Guest", (105, ""): "windows7Guest",
    (58, ""): "win2000ServGuest", (69, ""): "winNetStandardGuest", (70, ""): "winNetStandard64Guest",
    (103, ""): "windows7Server64Guest", (112, ""): "windows8Server64Guest", (115, ""): "windows9Server64Guest",
    (106, ""): "centosGuest", (107, ""): "centos64Guest", (106, "6"): "centos6Guest", (107, "6"): "centos6_64Guest",
    (106, "7"): "centos7Guest", (107, "7"): "centos7_64Guest", (107, "8"): "centos8_64Guest",
    (107, "9"): "centos9_64Guest",
    (108, ""): "oracleLinuxGuest", (109, ""): "oracleLinux64Guest",
    (108, "6"): "oracleLinux6Guest", (109, "6"): "oracleLinux6_64Guest", (108, "7"): "oracleLinux7Guest",
    (109, "7"): "oracleLinux7_64Guest", (109, "8"): "oracleLinux8_64Guest", (109, "9"): "oracleLinux9_64Guest",
    (109, "10"): "oracleLinux10_64Guest",
    (110, ""): "eComStationGuest", (110, "2"): "eComStation2Guest",
    (104, "4"): "vmkernelGuest", (104, "5"): "vmkernel5Guest", (104, "6"): "vmkernel6Guest",
    (104, "65"): "vmkernel65Guest", (104, "7"): "vmkernel7Guest", (104, "8"): "vmkernel8Guest",
    (104, "9"): "vmkernel9Guest",
}  # fmt: skip


def cim_os_type(guest_id: str) -> int:
    """The CIM OSType number of a guest id; 0 (unknown) for an empty or unmapped one."""
    return _GUEST_CIM.get(guest_id, 0)


def guest_id_from_cim(cim: int, version: str = "") -> str:
    """The guest id for a CIM number and version: the versioned entry, else the bare one, else ""."""
    if version and (cim, version) in _VERSIONED:
        return _VERSIONED[(cim, version)]
    return _VERSIONED.get((cim, ""), "")
