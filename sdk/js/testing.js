// A fake host for native tests (`node --test`): plugin logic runs on the development machine,
// no Wasm involved. While a FakeHost is installed, every host call the plugin makes
// (configuration, clock, kv, crypto, log, outbound HTTP) is served by it, and the test then
// looks at what the plugin did.
//
//   const host = new FakeHost({ config: { url: 'http://erp.example/orders' }, clockMs: 0 })
//     .respond(429, [['retry-after', '7']], 'slow down')
//     .install();
//   ...call the plugin...
//   host.requests[0].url; host.uninstall();
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { HttpError, install } from './index.js';

const encode = (data) => (typeof data === 'string' ? new TextEncoder().encode(data) : data);

/** What the fake host serves and what it saw. */
export class FakeHost {
  /**
   * `config`: the plugin's configuration; `clockMs`: the wall clock (unset: not granted);
   * `secrets`: `{name: string or bytes}`; `kv`: `{key: string or bytes}` already present.
   */
  constructor({ config = {}, clockMs, secrets = {}, kv = {} } = {}) {
    this.pluginConfig = config;
    this.clockMs = clockMs;
    this.secrets = Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, encode(v)]));
    this.store = new Map(Object.entries(kv).map(([k, v]) => [k, encode(v)]));
    this.requests = [];
    this.logs = [];
    this.answers = [];
    this.previous = null;
    const fake = this;
    this.config = { get: () => JSON.stringify(fake.pluginConfig) };
    this.log = { log: (level, message) => fake.logs.push([level, message]) };
    this.clock = {
      nowMs: () => {
        if (fake.clockMs === undefined) {
          throw new Error('the wall clock is not granted: give FakeHost({ clockMs }) (and the plugin `clock = true`)');
        }
        return BigInt(fake.clockMs);
      },
    };
    this.kv = {
      get: (key) => fake.store.get(key),
      set: (key, value) => fake.store.set(key, Uint8Array.from(value)),
      delete: (key) => fake.store.delete(key),
    };
    const secret = (name) => {
      if (!(name in fake.secrets)) throw new Error(`secret \`${name}\` is not granted: give FakeHost({ secrets: { '${name}': '...' } })`);
      return fake.secrets[name];
    };
    const mac = (name, data) => new Uint8Array(createHmac('sha256', secret(name)).update(data).digest());
    this.crypto = {
      hmacSha256: mac,
      verifyHmacSha256: (name, data, given) => {
        const expected = mac(name, data);
        return expected.length === given.length && timingSafeEqual(expected, given);
      },
      sha256: (data) => new Uint8Array(createHash('sha256').update(data).digest()),
    };
  }

  /** Queues the answer to the next outbound request (in order; with none queued: 200, empty). */
  respond(status, headers = [], body = '') {
    this.answers.push({ status, headers: headers.map(([k, v]) => [k.toLowerCase(), v]), body: encode(body) });
    return this;
  }

  /** Queues a failure to connect as the answer to the next outbound request. */
  failRequest(reason) {
    this.answers.push(new HttpError(reason));
    return this;
  }

  /** The SDK's outbound HTTP, served here. */
  async send(request) {
    this.requests.push(request);
    const answer = this.answers.length ? this.answers.shift() : { status: 200, headers: [], body: new Uint8Array() };
    if (answer instanceof Error) throw answer;
    return answer;
  }

  /** Serves the plugin's host calls until `uninstall()`. */
  install() {
    this.previous = install(this);
    return this;
  }

  /** Puts back what was installed before. */
  uninstall() {
    install(this.previous);
  }
}
