"""A real S3-compatible HTTP server on loopback for tests (moto's ``ThreadedMotoServer``).

Why a server rather than moto's in-process ``mock_aws``: the code under test then goes through the same path
as in production (endpoint URL, HTTP, path-style addressing, multipart uploads, retries), and anything that
builds its own client from settings or the environment (a Dagster resource, the CLI) can reach it too.

Use from any test folder::

    from stickypi_assets_tests.storage.s3_server import s3_endpoint, s3_server  # noqa: F401  (fixtures)

or, outside pytest, ``with start_s3_server() as server: endpoint = server.create_bucket()``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stickypi_assets.storage.object_store import S3ObjectStore

#: Dummy credentials: moto accepts any; real-looking names keep boto3's credential chain away from the
#: developer's own profile.
ACCESS_KEY_ID = "testing-access-key"
SECRET_ACCESS_KEY = "testing-secret-key"
REGION = "us-east-1"

_bucket_numbers = itertools.count()


@dataclass(frozen=True)
class S3Endpoint:
    """One bucket on a running test server, with everything needed to reach it."""

    endpoint_url: str
    bucket: str
    region_name: str = REGION
    aws_access_key_id: str = ACCESS_KEY_ID
    aws_secret_access_key: str = SECRET_ACCESS_KEY

    @property
    def url(self) -> str:
        """The store URL, for ``object_store_from_url`` or ``STICKYPI_STORE_URL``."""
        return f"s3://{self.bucket}"

    def store_kwargs(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region_name,
            "aws_access_key_id": self.aws_access_key_id,
            "aws_secret_access_key": self.aws_secret_access_key,
        }

    def store(self, prefix: str = "", **kwargs: Any) -> S3ObjectStore:
        return S3ObjectStore(self.bucket, prefix=prefix, **{**self.store_kwargs(), **kwargs})

    def client(self) -> Any:
        """A raw boto3 client, for checking what the store really wrote."""
        return S3ObjectStore._make_client(
            self.endpoint_url, self.region_name, self.aws_access_key_id, self.aws_secret_access_key
        )

    def env(self) -> dict[str, str]:
        """Environment variables that make boto3 (and the platform's settings) use this bucket."""
        return {
            "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
            "AWS_DEFAULT_REGION": self.region_name,
            "STICKYPI_S3_ENDPOINT_URL": self.endpoint_url,
            "STICKYPI_S3_REGION": self.region_name,
            "STICKYPI_STORE_URL": self.url,
        }


@dataclass(frozen=True)
class S3Server:
    """A running server; :meth:`create_bucket` gives each test its own, empty bucket."""

    endpoint_url: str

    def create_bucket(self, name: str | None = None) -> S3Endpoint:
        endpoint = S3Endpoint(self.endpoint_url, name or f"test-bucket-{next(_bucket_numbers)}")
        endpoint.client().create_bucket(Bucket=endpoint.bucket)
        return endpoint


@contextlib.contextmanager
def start_s3_server() -> Iterator[S3Server]:
    """Start moto's server on 127.0.0.1 at a free port (port 0: no race), stop it on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One server per test session: starting moto takes about a second."""
    with start_s3_server() as server:
        yield server


@pytest.fixture
def s3_endpoint(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Endpoint:
    """A fresh bucket on the session server; the environment points boto3 and the settings at it."""
    endpoint = s3_server.create_bucket()
    for name, value in endpoint.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return endpoint
