"""Pulumi ComponentResources that compose the catalog's resources."""
