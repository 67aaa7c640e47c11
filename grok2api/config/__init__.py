"""Settings: the kernel's sections and their sources (``settings``), run-time changes (``runtime``)."""
