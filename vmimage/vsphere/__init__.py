"""Clients for vCenter: the content library REST API (httpx) and the inventory (pyvmomi).

Unlike the rest of `vmimage`, this package talks to the network. Credentials live in
`ConnectionSettings` only, as a SecretStr, and never appear in errors or logs.
"""
