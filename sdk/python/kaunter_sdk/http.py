"""Outbound HTTP through the host's egress checkpoint, and what a connector should tell the host
about the answer.

`send` makes one request and reads the whole response. `delivery_outcome` maps it the way every
kaunter connector should: 2xx delivered (its `Location` as the remote id), 409 already there,
410 endpoint gone, 429 throttled, 408/425/5xx retry, 401 retry (the host drops the refused OAuth
token and fetches another), other 4xx rejected for good; `Retry-After` (seconds or an HTTP date)
becomes the retry hint. A request that got no answer is retried.
"""
import email.utils
import json as _json
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple
from urllib.parse import quote

from . import _bindings
from . import host as _host


class HttpError(Exception):
    """No response: the request was refused by the checkpoint, or the connection failed."""


@dataclass
class Request:
    """A request to send: method, absolute URL, headers and body."""

    method: str
    url: str
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @staticmethod
    def get(url: str) -> "Request":
        """A `GET` asking for JSON."""
        return Request("GET", url, [("accept", "application/json")])

    @staticmethod
    def json(method: str, url: str, body: Any) -> "Request":
        """A request with a JSON body (`POST`, `PUT`, `PATCH`, ...)."""
        data = _json.dumps(body, separators=(",", ":")).encode()
        return Request(method.upper(), url, [("content-type", "application/json")], data)

    @staticmethod
    def post_json(url: str, body: Any) -> "Request":
        """A `POST` with a JSON body."""
        return Request.json("POST", url, body)

    @staticmethod
    def post_form(url: str, fields: List[Tuple[str, str]]) -> "Request":
        """A `POST` of an `application/x-www-form-urlencoded` body."""
        body = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in fields).encode()
        return Request("POST", url, [("content-type", "application/x-www-form-urlencoded")], body)

    def header(self, name: str, value: str) -> "Request":
        """The same request with one more header."""
        self.headers.append((name.lower(), value))
        return self


@dataclass
class Response:
    """A whole response."""

    status: int
    headers: List[Tuple[str, str]]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        """The first value of a header (name case-insensitive)."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def json(self) -> Any:
        """The body parsed as JSON (raises `HttpError` saying why not)."""
        try:
            return _json.loads(self.body)
        except ValueError as e:
            raise HttpError(f"HTTP {self.status}: the body is not JSON: {e}") from e

    def body_snippet(self, limit: int) -> str:
        """The body as text, cut at `limit` characters, for error messages."""
        text = self.body.decode("utf-8", "replace")
        return text if len(text) <= limit else text[:limit] + "…"


def send(request: Request) -> Response:
    """Sends `request` through the host's egress checkpoint and reads the whole answer. Raises
    `HttpError` when there is none (not granted, connection failed, timed out)."""
    return _host._backend.send(request)


def retry_after_ms(value: str, now_ms: int) -> Optional[int]:
    """`Retry-After` in ms: delta-seconds, or an HTTP date relative to `now_ms`."""
    value = value.strip()
    if value.isdigit():
        return int(value) * 1000
    try:
        at = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, int(at.timestamp() * 1000) - now_ms)


def delivery_outcome(result: "Response | HttpError", now_ms: int) -> Any:
    """The receipt for a delivered response; otherwise raises the `DeliveryError` the host should
    act on (wrapped in componentize-py's `Err`, as `deliver` must raise it)."""
    from componentize_py_types import Err

    delivery = _bindings.module("delivery")
    if isinstance(result, HttpError):
        raise Err(delivery.DeliveryError_Retry(delivery.RetryHint(None, f"no response: {result}")))
    status = result.status

    def hint() -> Any:
        after = result.header("retry-after")
        return delivery.RetryHint(
            retry_after_ms(after, now_ms) if after else None,
            f"HTTP {status}: {result.body_snippet(200)}",
        )

    if 200 <= status <= 299:
        return delivery.Receipt(status, result.header("location"))
    if status == 409:
        raise Err(delivery.DeliveryError_ConflictIsSuccess(f"HTTP 409: {result.body_snippet(200)}"))
    if status == 410:
        raise Err(delivery.DeliveryError_Disable(f"HTTP 410 Gone: {result.body_snippet(200)}"))
    if status == 429:
        raise Err(delivery.DeliveryError_Throttled(hint()))
    if status in (408, 425) or 500 <= status <= 599:
        raise Err(delivery.DeliveryError_Retry(hint()))
    if status == 401:
        raise Err(
            delivery.DeliveryError_Retry(
                delivery.RetryHint(
                    None,
                    "HTTP 401 (the credential was refused; the host fetches a new token for the next attempt): "
                    + result.body_snippet(200),
                )
            )
        )
    raise Err(delivery.DeliveryError_Rejected(f"HTTP {status}: {result.body_snippet(500)}"))
