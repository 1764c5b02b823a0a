"""One request over `wasi:http/outgoing-handler`, synchronously: what `kaunter_sdk.http.send`
does inside a component. The host serves it through its egress checkpoint."""
from urllib.parse import urlsplit

from componentize_py_types import Err

from . import _bindings
from .http import HttpError, Request, Response

_CHUNK = 4096


def _method(types, name: str):
    known = {
        "GET": types.Method_Get,
        "HEAD": types.Method_Head,
        "POST": types.Method_Post,
        "PUT": types.Method_Put,
        "DELETE": types.Method_Delete,
        "OPTIONS": types.Method_Options,
        "PATCH": types.Method_Patch,
    }
    return known[name]() if name in known else types.Method_Other(name)


def send(request: Request) -> Response:
    types = _bindings.module("wasi_http_types")
    handler = _bindings.module("outgoing_handler")
    url = urlsplit(request.url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise HttpError(f"not an absolute http(s) URL: {request.url!r}")
    headers = types.Fields.from_list([(k, v.encode()) for k, v in request.headers])
    outgoing = types.OutgoingRequest(headers)
    outgoing.set_method(_method(types, request.method.upper()))
    outgoing.set_scheme(types.Scheme_Https() if url.scheme == "https" else types.Scheme_Http())
    outgoing.set_authority(url.netloc)
    outgoing.set_path_with_query((url.path or "/") + (f"?{url.query}" if url.query else ""))
    body = outgoing.body()
    try:
        future = handler.handle(outgoing, None)
    except Err as e:
        raise HttpError(f"refused: {e.value}") from e
    with body.write() as stream:
        for start in range(0, len(request.body), _CHUNK):
            stream.blocking_write_and_flush(request.body[start : start + _CHUNK])
    types.OutgoingBody.finish(body, None)
    with future.subscribe() as ready:
        ready.block()
    answer = future.get()
    if answer is None:
        raise HttpError("no response")
    if isinstance(answer, Err):
        raise HttpError("no response: it was already taken")
    if isinstance(answer.value, Err):
        raise HttpError(f"no response: {answer.value.value}")
    incoming = answer.value.value
    status = incoming.status()
    with incoming.headers() as fields:
        pairs = [(k, v.decode("utf-8", "replace")) for k, v in fields.entries()]
    data = bytearray()
    incoming_body = incoming.consume()
    with incoming_body.stream() as stream:
        while True:
            try:
                data.extend(stream.blocking_read(65536))
            except Err:
                break
    return Response(status, pairs, bytes(data))
