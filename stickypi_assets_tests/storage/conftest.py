"""Storage test fixtures: an S3-compatible server on loopback (see ``s3_server.py``)."""

from stickypi_assets_tests.storage.s3_server import s3_endpoint, s3_server

__all__ = ["s3_endpoint", "s3_server"]
