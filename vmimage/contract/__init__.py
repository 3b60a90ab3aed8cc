"""The objects VM Operator publishes for an image (IDs, status, labels, CRDs), and the comparison with them."""
