"""faxline: a self-hosted fax server with a UnifiedAPI-compatible REST API."""

__version__ = "0.1.0"
