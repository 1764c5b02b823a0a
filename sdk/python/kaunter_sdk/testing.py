"""A fake host for native tests (pytest): plugin logic runs on the development machine, no Wasm
involved. Every host call the plugin makes while the fake is installed (configuration, clock, kv,
crypto, log, outbound HTTP) is served by it, and the test then looks at what the plugin did.

    from kaunter_sdk.testing import FakeHost

    with FakeHost(config={"url": "http://erp.example/orders"}, clock_ms=1_764_000_000_000) as host:
        host.respond(429, [("retry-after", "7")], b"slow down")
        ...call the plugin...
        assert host.requests[0].url == "http://erp.example/orders"

The generated bindings must be importable (`componentize-py -d <sdk>/wit -w <world> bindings .`
writes them): events and errors are the same typed classes natively and in the component.
"""
import hashlib
import hmac
import json
from typing import Dict, List, Optional, Tuple, Union

from . import host as _host
from .http import HttpError, Request, Response


class FakeHost:
    """What the fake host serves and what it saw. Install it with `with FakeHost(...) as host:`."""

    def __init__(
        self,
        config: Optional[dict] = None,
        clock_ms: Optional[int] = None,
        secrets: Optional[Dict[str, bytes]] = None,
        kv: Optional[Dict[str, bytes]] = None,
    ) -> None:
        self.plugin_config = config or {}
        self.clock_ms = clock_ms
        self.secrets = dict(secrets or {})
        self.kv: Dict[str, bytes] = dict(kv or {})
        self.requests: List[Request] = []
        self.logs: List[Tuple[str, str]] = []
        self._answers: List[Union[Response, HttpError]] = []
        self._previous = None

    def respond(self, status: int, headers: List[Tuple[str, str]] = (), body: bytes = b"") -> "FakeHost":
        """Queues the answer to the next outbound request (answers are used in order; with none
        queued, a request gets `200` and an empty body)."""
        if isinstance(body, str):
            body = body.encode()
        self._answers.append(Response(status, [(k.lower(), v) for k, v in headers], body))
        return self

    def fail_request(self, reason: str) -> "FakeHost":
        """Queues a failure to connect as the answer to the next outbound request."""
        self._answers.append(HttpError(reason))
        return self

    def __enter__(self) -> "FakeHost":
        self._previous = _host._install(self)
        return self

    def __exit__(self, *exc) -> None:
        _host._install(self._previous)

    # The backend the SDK's functions call.

    def config(self) -> str:
        return json.dumps(self.plugin_config)

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def now_ms(self) -> int:
        if self.clock_ms is None:
            raise RuntimeError("the wall clock is not granted: give FakeHost(clock_ms=...) (and the plugin `clock = true`)")
        return self.clock_ms

    def kv_get(self, key: str) -> Optional[bytes]:
        return self.kv.get(key)

    def kv_set(self, key: str, value: bytes) -> None:
        self.kv[key] = bytes(value)

    def kv_delete(self, key: str) -> None:
        self.kv.pop(key, None)

    def _secret(self, name: str) -> bytes:
        if name not in self.secrets:
            raise KeyError(f"secret `{name}` is not granted: give FakeHost(secrets={{{name!r}: b'...'}})")
        return self.secrets[name]

    def hmac_sha256(self, secret: str, data: bytes) -> bytes:
        return hmac.new(self._secret(secret), data, hashlib.sha256).digest()

    def verify_hmac_sha256(self, secret: str, data: bytes, mac: bytes) -> bool:
        return hmac.compare_digest(self.hmac_sha256(secret, data), bytes(mac))

    def hmac_sha256_templated(self, secret: str, prefix: bytes, suffix: bytes) -> bytes:
        key = self._secret(secret)
        return hmac.new(key, bytes(prefix) + key + bytes(suffix), hashlib.sha256).digest()

    def sha256(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def send(self, request: Request) -> Response:
        self.requests.append(request)
        answer = self._answers.pop(0) if self._answers else Response(200, [], b"")
        if isinstance(answer, HttpError):
            raise answer
        return answer
