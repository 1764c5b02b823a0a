// kaunter-sdk for JavaScript: write kaunter connectors with componentize-js.
//
// A plugin is a WebAssembly component; componentize-js builds it from an ES module that exports
// the world's function (`deliver` for a connector, which may be async). This module gives that
// code what the Rust SDK gives Rust plugins:
// - the host's services: `config()`, `log()`, `nowMs()`, `kvGet/kvSet/kvDelete`, keyed hashes
//   over host secrets (`hmacSha256`, `verifyHmacSha256`, `sha256`);
// - outbound HTTP through the host's egress checkpoint (`send`) and `deliveryOutcome`, which maps
//   an answer to what the host should do (retry, throttled, rejected, already there, gone);
// - the delivery outcomes spelled out (`receipt`, `retry`, `throttled`, `rejected`,
//   `alreadyDelivered`, `disable`) and `eventToJSON` for posting an event;
// - `kaunter-sdk/testing`: the host, faked, for native tests with `node --test`.
//
// Every host call goes through a backend: the component's imports, installed by the entry module
// (`component.js` in the template), or the fake host in tests.

let backend = null;

/** Installs the backend every host call goes to; returns the one it replaced. */
export function install(next) {
  const previous = backend;
  backend = next;
  return previous;
}

function host() {
  if (!backend) {
    throw new Error(
      'kaunter-sdk: no host installed. In a component, build from component.js (it installs the imports); in a test, use `new FakeHost(...).install()` from kaunter-sdk/testing',
    );
  }
  return backend;
}

/** The plugin's `[plugins.config]` table. */
export function config() {
  return JSON.parse(host().config.get() || '{}');
}

/** A line in the host log (`trace`, `debug`, `info`, `warn`, `error`), tagged by the host. */
export function log(level, message) {
  host().log.log(level, message);
}
export const info = (message) => log('info', message);
export const warn = (message) => log('warn', message);
export const error = (message) => log('error', message);
export const debug = (message) => log('debug', message);

/** Wall-clock ms since the epoch; only when the operator grants `clock = true`. */
export function nowMs() {
  return Number(host().clock.nowMs());
}

/** A value of the plugin's own durable state (Uint8Array), or undefined. */
export function kvGet(key) {
  return host().kv.get(key) ?? undefined;
}
/** Writes plugin state (throws `{tag: 'quota-exceeded'}` past `limits.kv_quota_bytes`). */
export function kvSet(key, value) {
  host().kv.set(key, typeof value === 'string' ? new TextEncoder().encode(value) : value);
}
/** Deletes plugin state. */
export function kvDelete(key) {
  host().kv.delete(key);
}

/** HMAC-SHA256 of `data` under the host secret named `secret` (granted by name). */
export function hmacSha256(secret, data) {
  return host().crypto.hmacSha256(secret, bytes(data));
}
/** Whether `mac` is the HMAC-SHA256 of `data` under `secret`, compared in constant time. */
export function verifyHmacSha256(secret, data, mac) {
  return host().crypto.verifyHmacSha256(secret, bytes(data), bytes(mac));
}
/** Plain SHA-256. */
export function sha256(data) {
  return host().crypto.sha256(bytes(data));
}

function bytes(data) {
  return typeof data === 'string' ? new TextEncoder().encode(data) : data;
}

/** No response: the checkpoint refused the request, or the connection failed. */
export class HttpError extends Error {}

/** A request: `{method, url, headers: [[name, value]], body: Uint8Array}`. */
export function request(method, url, headers = [], body = new Uint8Array()) {
  return { method: method.toUpperCase(), url, headers: headers.map(([k, v]) => [k.toLowerCase(), v]), body: bytes(body) };
}
/** A request with a JSON body. */
export function jsonRequest(method, url, value) {
  return request(method, url, [['content-type', 'application/json']], JSON.stringify(value));
}
/** A `POST` with a JSON body. */
export const postJson = (url, value) => jsonRequest('POST', url, value);

/** The first value of a response header (name case-insensitive). */
export function header(response, name) {
  const wanted = name.toLowerCase();
  return response.headers.find(([k]) => k.toLowerCase() === wanted)?.[1];
}

/** The response body as text, cut at `limit` characters, for error messages. */
export function bodySnippet(response, limit) {
  const text = new TextDecoder().decode(response.body);
  return text.length <= limit ? text : `${text.slice(0, limit)}…`;
}

/**
 * Sends a request through the host's egress checkpoint and reads the whole answer:
 * `{status, headers: [[name, value]], body: Uint8Array}`. Throws `HttpError` when there is none.
 */
export async function send(req) {
  return host().send(req);
}

/**
 * `send` over the standard `fetch`, which componentize-js serves with `wasi:http` (the host's
 * egress checkpoint); what the template's `component.js` installs.
 */
export async function sendWithFetch(req) {
  let response;
  try {
    response = await fetch(req.url, {
      method: req.method,
      headers: req.headers,
      body: ['GET', 'HEAD'].includes(req.method) ? undefined : req.body,
    });
  } catch (e) {
    throw new HttpError(String(e?.message ?? e));
  }
  const body = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, headers: [...response.headers.entries()], body };
}

/** `Retry-After` in ms: delta-seconds, or an HTTP date relative to `now`. */
export function retryAfterMs(value, now) {
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Delivered: the target's status and the id it gave the document (shown to operators). */
export const receipt = (status, remoteId) => ({ status, remoteId });
// A retry hint's `after-ms` is a WIT u64: a BigInt across the component boundary.
const hintMs = (afterMs) => (afterMs === undefined || afterMs === null ? undefined : BigInt(Math.round(Number(afterMs))));
/** Throw: try again later (no sooner than `afterMs`). */
export const retry = (reason, afterMs) => ({ tag: 'retry', val: { afterMs: hintMs(afterMs), reason } });
/** Throw: the target asked to slow down; the whole sink waits `afterMs`. */
export const throttled = (reason, afterMs) => ({ tag: 'throttled', val: { afterMs: hintMs(afterMs), reason } });
/** Throw: the target refused this event for good; it is dead-lettered with `reason`. */
export const rejected = (reason) => ({ tag: 'rejected', val: reason });
/** Throw: the target already had it; counted as delivered. */
export const alreadyDelivered = (note) => ({ tag: 'conflict-is-success', val: note });
/** Throw: the endpoint is gone; the sink pauses until an operator resumes it. */
export const disable = (reason) => ({ tag: 'disable', val: reason });

/**
 * The receipt for a delivered answer, else throws the delivery error the host should act on:
 * 2xx delivered (`Location` as the remote id), 409 already there, 410 gone, 429 throttled,
 * 408/425/5xx retry, 401 retry (the host fetches a new token), other 4xx rejected. `answer` is a
 * response or the `HttpError` `send` threw (retried).
 */
export function deliveryOutcome(answer, now) {
  if (answer instanceof Error) throw retry(`no response: ${answer.message}`);
  const status = answer.status;
  const hint = () => {
    const after = header(answer, 'retry-after');
    return [`HTTP ${status}: ${bodySnippet(answer, 200)}`, after === undefined ? undefined : retryAfterMs(after, now)];
  };
  if (status >= 200 && status <= 299) return receipt(status, header(answer, 'location'));
  if (status === 409) throw alreadyDelivered(`HTTP 409: ${bodySnippet(answer, 200)}`);
  if (status === 410) throw disable(`HTTP 410 Gone: ${bodySnippet(answer, 200)}`);
  if (status === 429) throw throttled(...hint());
  if (status === 408 || status === 425 || (status >= 500 && status <= 599)) throw retry(...hint());
  if (status === 401) {
    throw retry(
      `HTTP 401 (the credential was refused; the host fetches a new token for the next attempt): ${bodySnippet(answer, 200)}`,
    );
  }
  throw rejected(`HTTP ${status}: ${bodySnippet(answer, 500)}`);
}

/**
 * An event (as componentize-js hands it over: records as objects, variants as `{tag, val}`,
 * 64-bit integers as BigInt, byte lists as Uint8Array) as JSON-ready data: BigInt becomes a
 * number (a string past 2^53), bytes a list of numbers.
 */
export function eventToJSON(value) {
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : String(value);
  }
  if (value instanceof Uint8Array) return Array.from(value);
  if (Array.isArray(value)) return value.map(eventToJSON);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, eventToJSON(v)]));
  }
  return value;
}
