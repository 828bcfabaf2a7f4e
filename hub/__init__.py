"""cap-hub: a standards-based CAP 1.2 alert hub and gateway."""

__version__ = "0.1.0"
