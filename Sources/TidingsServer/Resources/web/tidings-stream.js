// One stream of `GET /v1/stream`, kept open across drops, restarts, resets and token expiry,
// delivering each event to the application once and in order (docs/CLIENTS.md).
//
// Every message of a connection goes through one queue, so the application's handlers run one at
// a time in stream order and the cursor is saved only after the handler of its event returned. A
// connection that closes takes its unprocessed messages with it: the next one resumes from the
// last processed cursor, and the server replays exactly those events again.

import { backoffDelay, TidingsError, tokenExpiry } from "./tidings-support.js";

/** Ask for a new token this long before the current one expires (at most half its life left). */
const REFRESH_LEAD_MS = 30000;

export class TidingsStream {
  #client;
  #options;
  #socket = null;
  /** Bumped by every connect and stop: work of an older connection is dropped. */
  #generation = 0;
  #running = false;
  #state = "stopped";
  #attempt = 0;
  #timer = null;
  #refreshTimer = null;
  #cursor = null;
  #cursorLoaded = false;
  /** The stream position of the last event delivered (stream_seq, or seq on `all`). */
  #lastPosition = null;
  #counts = null;
  #epoch = null;
  #queue = Promise.resolve();
  #pending = new Map();
  #nextRef = 1;
  /** True while connecting with a token asked for because the server refused the last one. */
  #freshToken = false;
  /** One immediate retry of a failed handshake per welcome (see `#closed`). */
  #quickRetry = true;

  /**
   * @param {import("./tidings.js").TidingsClient} client
   * @param {import("./tidings.js").StreamOptions} options
   */
  constructor(client, options) {
    if (options.stream !== undefined && options.stream !== "user" && options.stream !== "all") {
      throw new TypeError(`stream must be "user" or "all", not ${JSON.stringify(options.stream)}`);
    }
    this.#client = client;
    this.#options = {
      stream: "user", onEvent: () => {}, onReset: () => {}, onCounts: () => {}, onState: () => {},
      cursorStore: null, refreshBeforeExpiryMs: REFRESH_LEAD_MS, ...options,
    };
    if (!this.#options.cursorStore) throw new TypeError("cursorStore is required: memoryCursorStore() keeps it in memory");
  }

  /** `connecting`, `replaying`, `live`, `reconnecting` or `stopped`. */
  get state() {
    return this.#state;
  }

  /** True from `start()` until `stop()` or an error stops the stream. */
  get running() {
    return this.#running;
  }

  /** The cursor of the last event the application processed (null before the first). */
  get cursor() {
    return this.#cursor;
  }

  /** The store's epoch as the last `welcome` named it (16 hex digits; null before one). */
  get epoch() {
    return this.#epoch;
  }

  /** The user's counts as of that cursor (user streams; null until known). */
  get counts() {
    return this.#counts;
  }

  /** Opens the stream from the stored cursor; a running stream is left as it is. */
  start() {
    if (this.#running) return;
    this.#running = true;
    this.#attempt = 0;
    this.#freshToken = false;
    this.#connect();
  }

  /** Closes the stream and keeps it closed until `start()`. */
  stop() {
    this.#halt("stopped", {});
  }

  /**
   * Changes the state of the stream user's notifications over the stream (the `mark` message;
   * the same body as `TidingsClient.mark`). Resolves with the `ack` once the events it caused
   * were delivered: `{status: "ok" | "noop", counts}`.
   * @param {import("./tidings.js").StateChange} change
   * @param {{timeoutMs?: number}} [options]
   */
  mark(change, options) {
    return this.#send({ type: "mark", ...change }, options);
  }

  /**
   * Marks notifications read over the stream: `ids`, or with `{all: true, up_to_seq?, kind?}`.
   * @param {string[] | {all: true, up_to_seq?: number, kind?: string}} what
   * @param {{timeoutMs?: number}} [options]
   */
  read(what, options) {
    return this.#send({ type: "read", ...(Array.isArray(what) ? { notification_ids: what } : what) }, options);
  }

  #send(message, { timeoutMs = this.#client.timeoutMs } = {}) {
    const socket = this.#socket;
    if (!socket || socket.readyState !== 1 || (this.#state !== "replaying" && this.#state !== "live")) {
      return Promise.reject(new TidingsError("not_connected", "the stream is not connected; try again when it is live"));
    }
    const ref = `c${this.#nextRef++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(ref);
        reject(new TidingsError("timeout", `no ack within ${timeoutMs} ms; the change may or may not have been made`));
      }, timeoutMs);
      this.#pending.set(ref, { resolve, reject, timer });
      socket.send(JSON.stringify({ ...message, ref }));
    });
  }

  // MARK: Connecting

  async #connect() {
    this.#timer = null;
    const generation = ++this.#generation;
    this.#setState("connecting", {});
    let token;
    try {
      if (!this.#cursorLoaded) {
        this.#cursor = (await this.#options.cursorStore.load()) ?? null;
        this.#cursorLoaded = true;
      }
      token = await this.#client.token({ fresh: this.#freshToken });
    } catch (error) {
      if (generation === this.#generation) this.#retry(`no token (${error.message})`);
      return;
    }
    if (generation !== this.#generation) return;
    const socket = new this.#client.WebSocket(this.#client.streamURL);
    this.#socket = socket;
    let serverError = null;
    let replayed = 0;
    socket.onopen = () => {
      const hello = { type: "hello", token, stream: this.#options.stream, cursor: this.#cursor };
      if (this.#options.userId !== undefined) hello.user_id = this.#options.userId;
      socket.send(JSON.stringify(hello));
    };
    socket.onmessage = (message) => {
      if (this.#socket !== socket) return;
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      if (data.type === "error") {
        serverError = data;
        return;
      }
      if (data.type === "event" && this.#state === "replaying") replayed += 1;
      const counted = replayed;
      this.#enqueue(generation, () => this.#handle(data, token, counted));
    };
    let opened = false;
    socket.addEventListener("open", () => { opened = true; });
    // Node 20's WebSocket reports a failed handshake with an error and no close: that is a
    // connection that never opened (1006). Otherwise the close that follows says what happened.
    socket.onerror = () => {
      if (opened || this.#socket !== socket) return;
      this.#socket = null;
      socket.onclose = null;
      this.#closed(1006, "the connection could not be opened", null, { handshakeFailed: true });
    };
    socket.onclose = (close) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.#closed(close.code, close.reason, serverError, { handshakeFailed: !opened });
    };
  }

  #enqueue(generation, work) {
    this.#queue = this.#queue.then(async () => {
      if (generation !== this.#generation) return;
      try {
        await work();
      } catch (error) {
        if (generation !== this.#generation) return;
        const failure = error instanceof TidingsError
          ? error
          : new TidingsError("handler_failed", `the application's handler threw: ${error?.message ?? error}`, { cause: error });
        this.#halt("stopped", { error: failure });
      }
    });
  }

  async #handle(message, token, replayed) {
    const options = this.#options;
    switch (message.type) {
      case "welcome":
        this.#epoch = message.epoch;
        this.#freshToken = false;
        this.#quickRetry = true;
        this.#setState("replaying", {});
        this.#scheduleRefresh(token);
        break;
      case "event": {
        const event = message.event;
        const position = options.stream === "all" ? event.seq : event.stream_seq;
        // The server sends no event twice on one connection; across connections a position at
        // or before the last delivered one is a repeat, and is dropped.
        if (this.#lastPosition !== null && position <= this.#lastPosition) return;
        const counts = countsOf(message);
        await options.onEvent(event, { counts });
        this.#lastPosition = position;
        await this.#saveCursor(event.cursor, counts);
        break;
      }
      case "caught_up":
        await this.#saveCursor(message.cursor, countsOf(message));
        this.#attempt = 0;
        this.#setState("live", { replayed });
        break;
      case "reset": {
        const counts = countsOf(message);
        this.#lastPosition = null;
        await options.onReset({ reason: message.reason, head: message.head, counts });
        await this.#saveCursor(message.head, counts);
        this.#attempt = 0;
        this.#setState("live", { replayed: 0, reset: true });
        break;
      }
      case "ack": {
        const pending = this.#pending.get(message.ref);
        if (!pending) return;
        this.#pending.delete(message.ref);
        clearTimeout(pending.timer);
        const counts = countsOf(message);
        if (message.status === "forbidden") {
          pending.reject(new TidingsError("forbidden", "this stream may not change these notifications", { status: 403 }));
        } else {
          pending.resolve({ status: message.status, counts });
        }
        break;
      }
    }
  }

  async #saveCursor(cursor, counts) {
    this.#cursor = cursor;
    await this.#options.cursorStore.save(cursor);
    if (counts) {
      this.#counts = counts;
      this.#options.onCounts(counts);
    }
  }

  // MARK: Closing

  #closed(code, reason, serverError, { handshakeFailed = false } = {}) {
    clearTimeout(this.#refreshTimer);
    this.#rejectPending(new TidingsError("closed", "the connection closed before the ack; the change may or may not have been made"));
    if (!this.#running) return;
    const said = serverError ? `${serverError.code}: ${serverError.message}` : closeReason(code, reason);
    if (code === 4401) {
      if (this.#freshToken) {
        this.#halt("stopped", {
          error: new TidingsError("unauthorized", `the server refused a fresh token too (${said})`, { status: 401, closeCode: code }),
        });
        return;
      }
      // Expired or refused: ask the application for a new token and resume at once.
      this.#freshToken = true;
      this.#generation += 1;
      this.#connect();
      return;
    }
    if (code === 4403 || code === 4400) {
      const errorCode = serverError?.code ?? (code === 4403 ? "forbidden" : "bad_request");
      this.#halt("stopped", {
        error: new TidingsError(errorCode, serverError?.message ?? said, { status: code - 4000, closeCode: code }),
      });
      return;
    }
    // A handshake refused on a reused keep-alive connection (Node shares fetch's pool with its
    // WebSocket; the server upgrades only on a connection's first request and sends the rest
    // away with `Connection: close`) succeeds at once on a new one: one quick try first.
    if (handshakeFailed && this.#quickRetry) {
      this.#quickRetry = false;
      this.#generation += 1;
      this.#connect();
      return;
    }
    this.#retry(said);
  }

  #retry(reason) {
    if (!this.#running) return;
    const delayMs = backoffDelay(this.#attempt);
    this.#attempt += 1;
    this.#generation += 1;
    this.#setState("reconnecting", { delayMs, reason, attempt: this.#attempt - 1 });
    this.#timer = setTimeout(() => this.#connect(), delayMs);
  }

  /** Reconnects with a new token shortly before the current one expires, from the cursor. */
  #scheduleRefresh(token) {
    clearTimeout(this.#refreshTimer);
    const expiry = tokenExpiry(token);
    const lead = this.#options.refreshBeforeExpiryMs;
    if (expiry === null || !lead || !this.#client.refreshesTokens) return;
    const left = expiry - Date.now();
    const wait = Math.max(1000, left - Math.min(lead, left / 2));
    this.#refreshTimer = setTimeout(() => {
      if (!this.#running || !this.#socket) return;
      const socket = this.#socket;
      this.#socket = null;
      this.#generation += 1;
      socket.onclose = null;
      socket.close(1000);
      this.#rejectPending(new TidingsError("closed", "the connection was renewed before the ack; the change may or may not have been made"));
      this.#freshToken = true;
      this.#connect();
    }, wait);
  }

  #halt(state, detail) {
    this.#running = false;
    this.#generation += 1;
    clearTimeout(this.#timer);
    clearTimeout(this.#refreshTimer);
    this.#timer = null;
    if (this.#socket) {
      const socket = this.#socket;
      this.#socket = null;
      socket.onclose = null;
      socket.close(1000);
    }
    this.#rejectPending(new TidingsError("closed", "the stream stopped before the ack"));
    this.#setState(state, detail);
  }

  #rejectPending(error) {
    for (const { reject, timer } of this.#pending.values()) {
      clearTimeout(timer);
      reject(error);
    }
    this.#pending.clear();
  }

  #setState(state, detail) {
    this.#state = state;
    this.#options.onState(state, detail);
  }
}

function countsOf(message) {
  if (message.unread_count === undefined) return null;
  return { unread: message.unread_count, unseen: message.unseen_count, archived: message.archived_count };
}

function closeReason(code, reason) {
  switch (code) {
    case 1001:
      return "the server is shutting down";
    case 1006:
      return "the connection was lost";
    case 1012:
      return "the server's log changed under it; resuming";
    case 1013:
      return "too many open streams for this user; trying again later";
    case 4408:
      return "the hello came too late";
    case 4429:
      return "the client stopped reading";
    default:
      return reason || `closed with code ${code}`;
  }
}
