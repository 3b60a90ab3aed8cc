"""Pulumi dynamic providers: thin adapters between the engine's calls and vmimage's core and clients."""

from providers import lifeline  # noqa: F401  (armed in the provider host whatever provider it unpickles)
