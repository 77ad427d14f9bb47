"""Scrub credentials out of URLs before they reach a message, a log line or Dagster's persisted event log.

Why one module: an S3 endpoint may be configured as ``http://user:password@host``, and botocore, urllib3 and
our own errors quote that URL verbatim. Every place that turns a URL (or a message that may contain one)
into text calls one of these two functions, so there is one rule to review and test:

* :func:`redact_url_credentials` rewrites *any text*: the user-info of every ``scheme://user:pass@host`` and
  the value of query parameters that carry secrets (``X-Amz-Signature``, ``token``, ...) become ``***``.
* :func:`strip_url_credentials` turns *one URL* into the form shown to people and handed to botocore: no
  user-info, no query, no fragment (an S3 endpoint needs neither; SigV4 signs requests with the AWS keys).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["REDACTED", "redact_url_credentials", "strip_url_credentials"]

REDACTED = "***"

# scheme://<user-info>@ : the user-info runs up to the *last* '@' before the host (passwords may contain '@'),
# and cannot contain '/', whitespace, quotes or brackets, so it never spans two URLs or leaves the URL.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/\s?#\"'<>()\[\]]*)@")
# Query parameters whose value is a credential (AWS presigned URLs, bearer tokens in links).
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&;](?:x-amz-signature|x-amz-security-token|x-amz-credential|signature|awsaccesskeyid|"
    r"access_?key(?:_?id)?|secret(?:_?key)?|password|passwd|pwd|token|api_?key|auth)=)(?P<value>[^&;#\s\"'<>]*)",
    re.IGNORECASE,
)


def redact_url_credentials(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***`` (the rest is kept for diagnosis).

    >>> redact_url_credentials('Could not connect to "http://admin:s3cret@minio:9000/bucket?token=abc"')
    'Could not connect to "http://***@minio:9000/bucket?token=***"'
    """
    if not isinstance(text, str):
        text = str(text)
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m.group('name')}{REDACTED}", text)


def strip_url_credentials(url: str) -> str:
    """``url`` without user-info, query and fragment: the form to display and to connect to.

    A URL that does not parse (e.g. a bad port) is returned through :func:`redact_url_credentials` instead, so
    even an invalid setting can be quoted in its error message.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return redact_url_credentials(url)
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
