"""Pulumi dynamic providers: thin adapters between the engine's calls and vmimage's core and clients."""
