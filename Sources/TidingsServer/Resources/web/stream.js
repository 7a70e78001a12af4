// One live stream over `GET /v1/stream`, kept open: it sends the hello with the cursor of the
// last event the page processed, and after a drop reconnects with exponential back-off and
// that cursor again, so the page misses nothing and sees nothing twice (PROTOCOL.md, WebSocket).

import { streamURL } from "./api.js";

/** Close codes after which trying again cannot help: the token or the stream is refused. */
const FATAL = new Map([
  [4401, "the token was refused or has expired; sign in again"],
  [4403, "this token may not open this stream"],
]);

export const BACKOFF_FIRST_MS = 500;
export const BACKOFF_MAX_MS = 15000;

/**
 * States, each reported through `onState(state, detail)`:
 *   connecting   opening the socket and sending the hello
 *   replaying    welcomed; replayed events are arriving
 *   caught_up    the replay is done (detail.replayed: how many events it held); live from here
 *   reconnecting the connection dropped (detail.delayMs: the wait before the next try, detail.reason)
 *   stopped      stopped for good (detail.reason, when an error stopped it)
 */
export class LiveStream {
  /**
   * @param hello    () => the hello message to send (called on every connect, so it carries the
   *                 newest cursor)
   * @param onMessage (message) => void, for welcome, event, caught_up, reset and ack
   * @param onState  (state, detail) => void
   * @param onInvalidCursor () => void, when the server refused the hello's cursor (4400
   *                 invalid_cursor); the page drops its saved position before the retry
   */
  constructor({ hello, onMessage, onState, onInvalidCursor }) {
    this.hello = hello;
    this.onMessage = onMessage;
    this.onState = onState;
    this.onInvalidCursor = onInvalidCursor ?? (() => {});
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.running = false;
    this.state = "stopped";
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.connect();
  }

  /** Closes the socket and stays closed (until `start`). */
  stop(reason) {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.onclose = null;
      socket.close(1000);
    }
    this.setState("stopped", { reason });
  }

  /** Sends a message when the socket is open and welcomed; false otherwise. */
  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    if (this.state !== "replaying" && this.state !== "caught_up") return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  get live() {
    return this.state === "caught_up";
  }

  setState(state, detail = {}) {
    this.state = state;
    this.onState(state, detail);
  }

  connect() {
    this.timer = null;
    this.setState("connecting");
    const socket = new WebSocket(streamURL());
    this.socket = socket;
    let replayed = 0;
    let serverError = null;
    socket.onopen = () => socket.send(JSON.stringify(this.hello()));
    socket.onmessage = (message) => {
      if (this.socket !== socket) return;
      const data = JSON.parse(message.data);
      switch (data.type) {
        case "welcome":
          this.setState("replaying");
          break;
        case "event":
          if (this.state === "replaying") replayed += 1;
          break;
        case "caught_up":
        case "reset":
          this.attempt = 0;
          break;
        case "error":
          serverError = data;
          break;
      }
      if (data.type !== "error") this.onMessage(data);
      // The page may have stopped or restarted the stream while handling the message.
      if (this.socket !== socket) return;
      if (data.type === "caught_up" || data.type === "reset") {
        this.setState("caught_up", { replayed, reset: data.type === "reset" });
      }
    };
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      const reason = serverError ? `${serverError.code}: ${serverError.message}` : closeReason(close);
      if (FATAL.has(close.code)) {
        this.running = false;
        this.setState("stopped", { reason: `${FATAL.get(close.code)} (${reason})`, fatal: true });
        return;
      }
      if (close.code === 4400 && serverError && serverError.code === "invalid_cursor") this.onInvalidCursor();
      if (!this.running) return;
      // Exponential back-off with jitter, so a restarted server is not met by every page at once.
      const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
      const delayMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
      this.attempt += 1;
      this.setState("reconnecting", { delayMs, reason });
      this.timer = setTimeout(() => this.connect(), delayMs);
    };
  }
}

function closeReason(close) {
  switch (close.code) {
    case 1001:
      return "the server is shutting down";
    case 1006:
      return "the connection was lost";
    case 4408:
      return "the hello came too late";
    case 4429:
      return "the page stopped reading";
    default:
      return close.reason || `closed with code ${close.code}`;
  }
}
