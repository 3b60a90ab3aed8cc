"""Reading a package (OVF, OVA, ISO) the way govmomi and vCenter read it: no network."""
