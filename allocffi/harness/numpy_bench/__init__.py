"""``allocffi numpy-bench``: NumPy workloads under every allocator and NumPy's default handler."""
