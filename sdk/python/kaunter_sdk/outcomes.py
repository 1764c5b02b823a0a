"""What a connector tells the host, spelled out: return `receipt(...)`, or raise what these
return (`raise rejected("unknown SKU")`). `kaunter_sdk.http.delivery_outcome` picks one for an
HTTP answer."""
from typing import Optional

from componentize_py_types import Err

from . import _bindings


def _delivery():
    return _bindings.module("delivery")


def receipt(status: Optional[int] = None, remote_id: Optional[str] = None):
    """Delivered: the target's status and the id it gave the document (shown to operators)."""
    return _delivery().Receipt(status, remote_id)


def retry(reason: str, after_ms: Optional[int] = None) -> Err:
    """Try again later (no sooner than `after_ms`): the target is down or busy."""
    d = _delivery()
    return Err(d.DeliveryError_Retry(d.RetryHint(after_ms, reason)))


def throttled(reason: str, after_ms: Optional[int] = None) -> Err:
    """The target asked to slow down: the whole sink waits `after_ms`."""
    d = _delivery()
    return Err(d.DeliveryError_Throttled(d.RetryHint(after_ms, reason)))


def rejected(reason: str) -> Err:
    """The target refused this event for good: it is dead-lettered with `reason`."""
    return Err(_delivery().DeliveryError_Rejected(reason))


def already_delivered(note: Optional[str] = None) -> Err:
    """The target already had it (an earlier attempt got through): counted as delivered."""
    return Err(_delivery().DeliveryError_ConflictIsSuccess(note))


def disable(reason: str) -> Err:
    """The endpoint is gone: the sink pauses, its events wait for an operator."""
    return Err(_delivery().DeliveryError_Disable(reason))
