// What the Tidings client's parts share: its error, the back-off, tokens' expiry, event ids and
// cursor stores. docs/CLIENTS.md says what every Tidings client library does alike.

/**
 * A failure the application can act on: an HTTP error answer (`status` and the server's
 * `code`), a stream closed for good (`closeCode`), a timeout, or a network failure (`status`
 * 0). `message` is the server's own sentence when it gave one.
 */
export class TidingsError extends Error {
  /**
   * @param {string} code  the server's error code (`bad_request`, `forbidden`, ...) or the
   *   client's own: `network`, `timeout`, `closed`, `not_connected`
   * @param {string} message
   * @param {{status?: number, closeCode?: number, index?: number, cause?: unknown}} [details]
   */
  constructor(code, message, { status = 0, closeCode, index, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "TidingsError";
    this.code = code;
    this.status = status;
    this.closeCode = closeCode;
    this.index = index;
  }

  /** The error as a person reads it: "forbidden: this token's role may not do this". */
  get text() {
    return `${this.code}: ${this.message}`;
  }
}

/** The first wait of a back-off and its ceiling, in milliseconds (docs/CLIENTS.md). */
export const BACKOFF_FIRST_MS = 500;
export const BACKOFF_MAX_MS = 20000;

/**
 * The wait before try `attempt` (0 for the first retry): full jitter, a uniform draw from 0 to
 * min(20 s, 0.5 s x 2^attempt), so clients a restarted server lost do not all come back at once.
 * @param {number} attempt
 * @param {() => number} [random]
 */
export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.min(attempt, 16));
  return Math.round(random() * ceiling);
}

/** The window `backoffDelay(attempt)` draws from, `[0, ceiling]` in milliseconds. */
export function backoffWindow(attempt) {
  return [0, Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.min(attempt, 16))];
}

/**
 * A JWT's `exp` in milliseconds since the epoch, read without checking its signature (the server
 * checks it); null when the token has none or is not a JWT.
 * @param {string} token
 */
export function tokenExpiry(token) {
  const part = String(token).split(".")[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const json = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
    return typeof claims.exp === "number" ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

/** A random UUID, made on the client so that a retried append is a `duplicate`, never a second event. */
export function newEventID() {
  if (typeof globalThis.crypto?.randomUUID === "function") return globalThis.crypto.randomUUID();
  // Pages served over plain http from another host have no randomUUID (not a secure context).
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Keeps the cursor in memory only: a new page or process starts from the stream's start (or from
 * `initial`).
 * @param {string | null} [initial]
 * @returns {import("./tidings.js").CursorStore}
 */
export function memoryCursorStore(initial = null) {
  let cursor = initial;
  return { load: () => cursor, save: (next) => { cursor = next; } };
}

/**
 * Keeps the cursor in the browser's localStorage under `key`, so a reload resumes where the
 * page was. Storage that is full or disabled only makes the page forget on reload.
 * @param {string} key
 * @returns {import("./tidings.js").CursorStore}
 */
export function localStorageCursorStore(key) {
  return {
    load: () => {
      try {
        return globalThis.localStorage.getItem(key);
      } catch {
        return null;
      }
    },
    save: (cursor) => {
      try {
        globalThis.localStorage.setItem(key, cursor);
      } catch {
        // Full or disabled: see above.
      }
    },
  };
}

/** Waits `ms` milliseconds, or less when `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
