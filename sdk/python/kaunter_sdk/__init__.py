"""kaunter-sdk for Python: write kaunter plugins with componentize-py.

A plugin is a WebAssembly component; componentize-py builds it from a Python module whose
`WitWorld` class implements the world (`handle` for a transform, `deliver` for a connector,
`decode` for a source). This package gives that code what the Rust SDK gives Rust plugins:

- `kaunter_sdk.host`: configuration, log, clock, kv and keyed hashes over host secrets;
- `kaunter_sdk.http`: outbound requests through the host's egress checkpoint, and
  `delivery_outcome`, which maps an answer to what the host should do (retry, throttled,
  rejected, already there, endpoint gone);
- `kaunter_sdk.outcomes`: `receipt`, `retry`, `throttled`, `rejected`, `already_delivered`,
  `disable`, the delivery outcomes a connector returns or raises;
- `kaunter_sdk.events`: the typed event (the generated WIT classes) to and from plain data;
- `kaunter_sdk.testing.FakeHost`: the host, faked, for native tests with pytest.

Build against the worlds in `sdk/wit` (they add `wasi:http` to the connector world):
`componentize-py -d <sdk>/wit -w connector componentize app -o plugin.wasm`.
"""
from . import _wasi_http, events, host, http, outcomes, testing
from .events import event_from_dict, event_to_dict
from .http import HttpError, Request, Response, delivery_outcome, retry_after_ms, send

__all__ = [
    "events",
    "host",
    "http",
    "outcomes",
    "testing",
    "event_from_dict",
    "event_to_dict",
    "HttpError",
    "Request",
    "Response",
    "delivery_outcome",
    "retry_after_ms",
    "send",
]
