"""The host's services, as plain functions: configuration, log, wall clock, plugin-private kv
and keyed hashes over secrets the plugin never sees.

Every call goes through a backend: the component's real imports, or a fake host installed by
`kaunter_sdk.testing.FakeHost` for native tests.
"""
import json
from typing import Any, Optional

from . import _bindings


class _Imports:
    """The component's imports."""

    def config(self) -> str:
        return _bindings.module("config").get()

    def log(self, level: str, message: str) -> None:
        log = _bindings.module("log")
        log.log(getattr(log.Level, level.upper()), message)

    def now_ms(self) -> int:
        return _bindings.module("clock").now_ms()

    def kv_get(self, key: str) -> Optional[bytes]:
        return _bindings.module("kv").get(key)

    def kv_set(self, key: str, value: bytes) -> None:
        _bindings.module("kv").set(key, value)

    def kv_delete(self, key: str) -> None:
        _bindings.module("kv").delete(key)

    def hmac_sha256(self, secret: str, data: bytes) -> bytes:
        return _bindings.module("crypto").hmac_sha256(secret, data)

    def verify_hmac_sha256(self, secret: str, data: bytes, mac: bytes) -> bool:
        return _bindings.module("crypto").verify_hmac_sha256(secret, data, mac)

    def hmac_sha256_templated(self, secret: str, prefix: bytes, suffix: bytes) -> bytes:
        return _bindings.module("crypto").hmac_sha256_templated(secret, prefix, suffix)

    def sha256(self, data: bytes) -> bytes:
        return _bindings.module("crypto").sha256(data)

    def send(self, request: Any) -> Any:
        from . import _wasi_http  # imported with the package; here only to avoid a cycle

        return _wasi_http.send(request)


_backend: Any = _Imports()


def _install(backend: Any) -> Any:
    """Replaces the backend (the fake host does this); returns the one it replaced."""
    global _backend
    previous, _backend = _backend, backend
    return previous


def config() -> dict:
    """The plugin's `[plugins.config]` table, parsed from JSON."""
    return json.loads(_backend.config() or "{}")


def log(level: str, message: str) -> None:
    """A line in the host log (`trace`, `debug`, `info`, `warn`, `error`), tagged by the host with
    plugin, version and event id."""
    _backend.log(level, message)


def info(message: str) -> None:
    """`log("info", message)`."""
    log("info", message)


def warn(message: str) -> None:
    """`log("warn", message)`."""
    log("warn", message)


def error(message: str) -> None:
    """`log("error", message)`."""
    log("error", message)


def debug(message: str) -> None:
    """`log("debug", message)`."""
    log("debug", message)


def now_ms() -> int:
    """Wall-clock time in ms since the epoch; only when the operator grants `clock = true`."""
    return _backend.now_ms()


def kv_get(key: str) -> Optional[bytes]:
    """A value of the plugin's own durable state, or `None`."""
    return _backend.kv_get(key)


def kv_set(key: str, value: bytes) -> None:
    """Writes plugin state (raises `Err(KvError_QuotaExceeded(...))` past `limits.kv_quota_bytes`)."""
    _backend.kv_set(key, value)


def kv_delete(key: str) -> None:
    """Deletes plugin state."""
    _backend.kv_delete(key)


def hmac_sha256(secret: str, data: bytes) -> bytes:
    """HMAC-SHA256 of `data` under the host secret named `secret` (granted by name)."""
    return _backend.hmac_sha256(secret, data)


def verify_hmac_sha256(secret: str, data: bytes, mac: bytes) -> bool:
    """Whether `mac` is the HMAC-SHA256 of `data` under `secret`, compared in constant time."""
    return _backend.verify_hmac_sha256(secret, data, mac)


def hmac_sha256_templated(secret: str, prefix: bytes, suffix: bytes) -> bytes:
    """HMAC-SHA256 over `prefix + secret + suffix` (schemes whose string-to-sign holds the secret)."""
    return _backend.hmac_sha256_templated(secret, prefix, suffix)


def sha256(data: bytes) -> bytes:
    """Plain SHA-256."""
    return _backend.sha256(data)
