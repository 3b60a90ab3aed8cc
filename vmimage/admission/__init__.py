"""Display-name resolution for VMs, and the admission webhook that applies it."""
