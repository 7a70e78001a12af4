// Types of the Tidings JavaScript client (tidings.js), written by hand and checked with
// `tsc --noEmit` against test/every-export.ts. The wire shapes are docs/PROTOCOL.md's.

/** The three counts every user-stream message and inbox answer carries, as of one position. */
export interface Counts {
  unread: number;
  unseen: number;
  archived: number;
}

/** An event as the server sends it (PROTOCOL.md, "Event envelope"). */
export interface Envelope {
  seq: number;
  stream_seq?: number;
  user_id: string;
  id: string;
  type: string;
  ts: string;
  data: Record<string, unknown>;
  cursor: string;
}

/** An event as a backend appends it; `id` is made on the client when left out. */
export interface NewEvent {
  type: string;
  user_id: string;
  id?: string;
  data: Record<string, unknown>;
}

export interface AppendResult {
  status: "appended" | "duplicate" | "noop";
  event?: Envelope;
}

/** A state change, as `POST /v1/users/{user_id}/mark` and the stream's `mark` take it. */
export type StateChange =
  | {
      change: "read" | "unread" | "seen" | "archive" | "unarchive" | "unsnooze";
      notification_ids: string[];
    }
  | { change: "snooze"; notification_ids: string[]; until: string }
  | { change: "read" | "seen"; all: true; up_to_seq?: number; kind?: string }
  | { change: "archive"; all: true; up_to_seq?: number; kind?: string; only_read?: boolean };

export interface MarkAnswer {
  changed: string[];
  unread_count: number;
  unseen_count: number;
  archived_count: number;
  cursor: string;
}

export interface ReadAnswer {
  read: string[];
  unread_count: number;
  unseen_count: number;
  archived_count: number;
  cursor: string;
}

export interface UnreadAnswer {
  unread_count: number;
  unseen_count: number;
  archived_count: number;
  notifications: Envelope[];
  cursor: string;
}

export interface ListedNotification {
  read: boolean;
  seen: boolean;
  archived: boolean;
  snoozed_until?: string;
  event: Envelope;
}

export interface NotificationList {
  notifications: ListedNotification[];
  unread_count: number;
  unseen_count: number;
  archived_count: number;
  cursor: string;
  next_before: string;
  has_more: boolean;
}

export interface EventPage {
  events: Envelope[];
  next_cursor: string;
  has_more: boolean;
}

/** Where a stream keeps the cursor of the last event the application processed. */
export interface CursorStore {
  load(): string | null | Promise<string | null>;
  save(cursor: string): void | Promise<void>;
}

export type StreamState = "connecting" | "replaying" | "live" | "reconnecting" | "stopped";

/** What `onState` is told with each state. */
export interface StreamStateDetail {
  /** `live`: how many events the replay held. */
  replayed?: number;
  /** `live`: the stream went on from a `reset`. */
  reset?: boolean;
  /** `reconnecting`: the wait before the next try, and why the last one ended. */
  delayMs?: number;
  reason?: string;
  attempt?: number;
  /** `stopped`: what stopped it, when it did not stop by `stop()`. */
  error?: TidingsError;
}

export interface ResetNotice {
  reason: "epoch_mismatch" | "cursor_ahead" | "history_forked" | string;
  head: string;
  counts: Counts | null;
}

export interface StreamOptions {
  /** `user` (default) or `all`. */
  stream?: "user" | "all";
  /** Another user's stream (auditors and admins); default: the token's subject. */
  userId?: string;
  cursorStore: CursorStore;
  /** Called once per event, in order; the cursor is saved after it returns (or resolves). */
  onEvent?: (event: Envelope, context: { counts: Counts | null }) => void | Promise<void>;
  /** The stream went on from another store's head: reload what the application shows. */
  onReset?: (notice: ResetNotice) => void | Promise<void>;
  /** The user's counts as of the last processed position. */
  onCounts?: (counts: Counts) => void;
  onState?: (state: StreamState, detail: StreamStateDetail) => void;
  /** Renew the connection this long before the token expires (default 30,000; 0: never). */
  refreshBeforeExpiryMs?: number;
}

export interface Ack {
  status: "ok" | "noop";
  counts: Counts | null;
}

export class TidingsStream {
  constructor(client: TidingsClient, options: StreamOptions);
  readonly state: StreamState;
  readonly running: boolean;
  readonly cursor: string | null;
  readonly counts: Counts | null;
  /** The store's epoch as the last `welcome` named it. */
  readonly epoch: string | null;
  start(): void;
  stop(): void;
  mark(change: StateChange, options?: { timeoutMs?: number }): Promise<Ack>;
  read(
    what: string[] | { all: true; up_to_seq?: number; kind?: string },
    options?: { timeoutMs?: number },
  ): Promise<Ack>;
}

export interface ClientOptions {
  url?: string;
  token?: string;
  getToken?: () => string | Promise<string>;
  fetch?: typeof fetch;
  WebSocket?: typeof WebSocket;
  timeoutMs?: number;
  retries?: number;
}

export class TidingsClient {
  constructor(options: ClientOptions);
  readonly url: string;
  readonly streamURL: string;
  readonly refreshesTokens: boolean;
  timeoutMs: number;
  retries: number;
  WebSocket: typeof WebSocket | undefined;
  token(options?: { fresh?: boolean }): Promise<string>;
  stream(options: StreamOptions): TidingsStream;
  unread(userID: string, options?: { limit?: number }): Promise<UnreadAnswer>;
  notifications(
    userID: string,
    options?: {
      before?: string;
      state?: "inbox" | "all" | "unread" | "unseen" | "archived" | "snoozed";
      kind?: string;
      limit?: number;
    },
  ): Promise<NotificationList>;
  userEvents(userID: string, options?: { after?: string; limit?: number }): Promise<EventPage>;
  mark(userID: string, change: StateChange): Promise<MarkAnswer>;
  markRead(userID: string, notificationIDs: string[]): Promise<ReadAnswer>;
  publish(event: NewEvent): Promise<AppendResult[]>;
  publish(events: NewEvent[]): Promise<AppendResult[]>;
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  requestRaw(method: string, path: string, options?: { body?: unknown; accept?: string }): Promise<Response>;
}

export class TidingsError extends Error {
  constructor(
    code: string,
    message: string,
    details?: { status?: number; closeCode?: number; index?: number; cause?: unknown },
  );
  /** The server's error code, or `network`, `timeout`, `closed`, `not_connected`, `handler_failed`. */
  readonly code: string;
  /** The HTTP status (0 for network failures and timeouts). */
  readonly status: number;
  /** The WebSocket close code that stopped a stream. */
  readonly closeCode?: number;
  /** The failing event's index in a batch. */
  readonly index?: number;
  readonly text: string;
}

export const BACKOFF_FIRST_MS: number;
export const BACKOFF_MAX_MS: number;
export function backoffDelay(attempt: number, random?: () => number): number;
export function backoffWindow(attempt: number): [number, number];
export function tokenExpiry(token: string): number | null;
export function newEventID(): string;
export function memoryCursorStore(initial?: string | null): CursorStore;
export function localStorageCursorStore(key: string): CursorStore;
