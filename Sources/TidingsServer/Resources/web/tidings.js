// The Tidings client for browsers and Node 20+: streams that resume exactly, the inbox calls, and
// publishing that never appends twice. No dependencies and no build step; docs/CLIENTS.md says
// what it promises and docs/PROTOCOL.md what it speaks.
//
//   import { TidingsClient, localStorageCursorStore } from "./tidings.js";
//   const client = new TidingsClient({ url: "https://tidings.example.com", getToken: fetchToken });
//   const stream = client.stream({ cursorStore: localStorageCursorStore("inbox"), onEvent: show });
//   stream.start();

import { TidingsStream } from "./tidings-stream.js";
import { backoffDelay, newEventID, sleep, TidingsError, tokenExpiry } from "./tidings-support.js";

export { TidingsStream } from "./tidings-stream.js";
export {
  BACKOFF_FIRST_MS, BACKOFF_MAX_MS, backoffDelay, backoffWindow, localStorageCursorStore, memoryCursorStore,
  newEventID, TidingsError, tokenExpiry,
} from "./tidings-support.js";

export class TidingsClient {
  #token;
  #getToken;
  #fetch;
  #cachedToken = null;

  /**
   * @param {object} options
   * @param {string} [options.url] the server, `https://host:port` (default: this page's origin)
   * @param {string} [options.token] a fixed token
   * @param {() => string | Promise<string>} [options.getToken] asked for a token when the client
   *   has none, before the current one expires, and when the server refuses it
   * @param {typeof fetch} [options.fetch]
   * @param {typeof WebSocket} [options.WebSocket] needed on Node 20 without
   *   `--experimental-websocket` (the `ws` package's, say)
   * @param {number} [options.timeoutMs] per HTTP request and per stream ack (default 10,000)
   * @param {number} [options.retries] tries of a publish after the first (default 6)
   */
  constructor({ url, token, getToken, fetch: fetchImpl, WebSocket: webSocket, timeoutMs = 10000, retries = 6 } = {}) {
    const base = url ?? globalThis.location?.origin;
    if (!base) throw new TypeError("url is required outside a browser page");
    if (token === undefined && getToken === undefined) throw new TypeError("give token or getToken");
    this.url = String(base).replace(/\/+$/, "");
    this.streamURL = `${this.url.replace(/^http/, "ws")}/v1/stream`;
    this.#token = token ?? null;
    this.#getToken = getToken ?? null;
    this.#fetch = fetchImpl ?? globalThis.fetch?.bind(globalThis);
    this.WebSocket = webSocket ?? globalThis.WebSocket;
    this.timeoutMs = timeoutMs;
    this.retries = retries;
  }

  /** True when the client can get a new token (it has `getToken`). */
  get refreshesTokens() {
    return this.#getToken !== null;
  }

  /**
   * The token to send: the fixed one, or `getToken`'s (asked again when `fresh`, or when the one
   * it gave expires within 30 s).
   * @param {{fresh?: boolean}} [options]
   */
  async token({ fresh = false } = {}) {
    if (!this.#getToken) return this.#token;
    const expiry = this.#cachedToken === null ? null : tokenExpiry(this.#cachedToken);
    if (fresh || this.#cachedToken === null || (expiry !== null && expiry - Date.now() < 30000)) {
      this.#cachedToken = await this.#getToken();
    }
    return this.#cachedToken;
  }

  /**
   * A stream of `GET /v1/stream`, not yet started.
   * @param {import("./tidings.js").StreamOptions} options
   */
  stream(options) {
    if (!this.WebSocket) {
      throw new TypeError("no WebSocket here: pass one as the WebSocket option (Node 20: run with --experimental-websocket)");
    }
    return new TidingsStream(this, options);
  }

  // MARK: The inbox

  /** `GET /v1/users/{user_id}/unread`: the counts, the oldest unread notifications and the head. */
  unread(userID, { limit } = {}) {
    return this.request("GET", `/v1/users/${encodeURIComponent(userID)}/unread${query({ limit })}`);
  }

  /** `GET /v1/users/{user_id}/notifications`: newest first, with their states, paged with `before`. */
  notifications(userID, { before, state, kind, limit } = {}) {
    return this.request("GET", `/v1/users/${encodeURIComponent(userID)}/notifications${query({ before, state, kind, limit })}`);
  }

  /** `GET /v1/users/{user_id}/events`: a page of the user stream after `after`. */
  userEvents(userID, { after, limit } = {}) {
    return this.request("GET", `/v1/users/${encodeURIComponent(userID)}/events${query({ after, limit })}`);
  }

  /**
   * `POST /v1/users/{user_id}/mark`: `{change, notification_ids}` or `{change, all: true, ...}`.
   * Resolves with `{changed, unread_count, unseen_count, archived_count, cursor}`.
   */
  mark(userID, change) {
    return this.request("POST", `/v1/users/${encodeURIComponent(userID)}/mark`, change);
  }

  /** `POST /v1/users/{user_id}/read` with these ids. */
  markRead(userID, notificationIDs) {
    return this.request("POST", `/v1/users/${encodeURIComponent(userID)}/read`, { notification_ids: notificationIDs });
  }

  // MARK: Publishing

  /**
   * Appends one event or a batch (`POST /v1/events`) and resolves with one result per event:
   * `{status: "appended" | "duplicate" | "noop", event?}`. Events without an `id` get one here,
   * before the first try, so that retries after a lost answer never append twice. Retries, with
   * back-off, on 503 and network failures only.
   * @param {object | object[]} events
   */
  async publish(events) {
    const list = (Array.isArray(events) ? events : [events]).map((event) => ({ ...event, id: event.id ?? newEventID() }));
    const body = Array.isArray(events) ? { events: list } : list[0];
    for (let attempt = 0; ; attempt += 1) {
      try {
        return (await this.request("POST", "/v1/events", body)).results;
      } catch (error) {
        const retriable = error instanceof TidingsError
          && (error.status === 503 || error.code === "network" || error.code === "timeout");
        if (!retriable || attempt >= this.retries) throw error;
        await sleep(backoffDelay(attempt));
      }
    }
  }

  // MARK: HTTP

  /** Calls the API and resolves with the answer's JSON; rejects with a TidingsError. */
  async request(method, path, body) {
    const response = await this.requestRaw(method, path, { body });
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  /**
   * Calls the API and resolves with the Response itself once its status is a success (for the
   * NDJSON export, read as it streams); rejects with a TidingsError otherwise. The timeout
   * covers the answer's head, not the reading of its body.
   * @param {string} method
   * @param {string} path
   * @param {{body?: unknown, accept?: string}} [options]
   */
  async requestRaw(method, path, { body, accept } = {}) {
    if (!this.#fetch) throw new TypeError("no fetch here: pass one as the fetch option");
    const headers = { Authorization: `Bearer ${await this.token()}` };
    if (accept) headers.Accept = accept;
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    init.signal = controller.signal;
    let response;
    try {
      response = await this.#fetch(this.url + path, init);
      if (response.ok) return response;
      const text = await response.text();
      let error = null;
      try {
        error = JSON.parse(text)?.error ?? null;
      } catch {
        // Not JSON: a proxy's error page, say; reported by status below.
      }
      if (error) throw new TidingsError(error.code, error.message, { status: response.status, index: error.index });
      throw new TidingsError(response.status === 503 ? "unavailable" : "http",
        `the server answered ${response.status} ${response.statusText}`, { status: response.status });
    } catch (error) {
      if (error instanceof TidingsError) throw error;
      if (controller.signal.aborted) {
        throw new TidingsError("timeout", `no answer within ${this.timeoutMs} ms`, { cause: error });
      }
      throw new TidingsError("network", `the server cannot be reached (${error.message})`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}

function query(parameters) {
  const pairs = Object.entries(parameters).filter(([, value]) => value !== undefined && value !== null);
  return pairs.length ? `?${new URLSearchParams(pairs.map(([key, value]) => [key, String(value)]))}` : "";
}
