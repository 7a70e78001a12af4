// Uses every export of tidings.js, so that `tsc --noEmit -p clients/js` checks tidings.d.ts
// against the way an application calls the client. It is compiled, never run.
import {
  BACKOFF_FIRST_MS, BACKOFF_MAX_MS, backoffDelay, backoffWindow, localStorageCursorStore, memoryCursorStore,
  newEventID, TidingsClient, TidingsError, TidingsStream, tokenExpiry,
} from "../tidings.js";
import type {
  Ack, AppendResult, ClientOptions, Counts, CursorStore, Envelope, MarkAnswer, NewEvent, NotificationList,
  ResetNotice, StateChange, StreamOptions, StreamState, StreamStateDetail, UnreadAnswer,
} from "../tidings.js";

async function example(): Promise<void> {
  const options: ClientOptions = {
    url: "https://tidings.example.com",
    getToken: async () => "a.jwt.token",
    timeoutMs: 5000,
    retries: 3,
  };
  const client = new TidingsClient(options);
  const fixed = new TidingsClient({ url: "http://127.0.0.1:8080", token: "a.jwt.token", WebSocket });
  const token: string = await fixed.token({ fresh: true });
  const expiry: number | null = tokenExpiry(token);

  const store: CursorStore = localStorageCursorStore("tidings.inbox.cursor");
  const memory: CursorStore = memoryCursorStore(null);
  const streamOptions: StreamOptions = {
    cursorStore: memory,
    onEvent: async (event: Envelope, { counts }: { counts: Counts | null }) => {
      console.log(event.seq, event.stream_seq, event.type, event.data, counts?.unseen);
    },
    onReset: (notice: ResetNotice) => console.log(notice.reason, notice.head, notice.counts),
    onCounts: (counts: Counts) => console.log(counts.unread, counts.archived),
    onState: (state: StreamState, detail: StreamStateDetail) => console.log(state, detail.delayMs, detail.error?.code),
    refreshBeforeExpiryMs: 30000,
  };
  const stream: TidingsStream = client.stream(streamOptions);
  const other = new TidingsStream(client, { stream: "all", cursorStore: store });
  stream.start();
  const archived: Ack = await stream.mark({ change: "archive", notification_ids: ["n-1"] });
  const read: Ack = await stream.read(["n-2"], { timeoutMs: 2000 });
  await stream.read({ all: true, up_to_seq: 10, kind: "build.failed" });
  console.log(archived.status, read.counts, stream.state, stream.cursor, stream.counts, stream.epoch, stream.running);
  stream.stop();
  other.stop();

  const change: StateChange = { change: "snooze", notification_ids: ["n-3"], until: "2030-01-01T09:00:00Z" };
  const marked: MarkAnswer = await client.mark("alice", change);
  await client.mark("alice", { change: "archive", all: true, only_read: true });
  await client.markRead("alice", ["n-4"]);
  const unread: UnreadAnswer = await client.unread("alice", { limit: 10 });
  const list: NotificationList = await client.notifications("alice", { state: "archived", limit: 20 });
  const page = await client.userEvents("alice", { after: list.cursor, limit: 50 });
  const event: NewEvent = { type: "notification.created", user_id: "alice", data: { notification_id: newEventID() } };
  const results: AppendResult[] = await client.publish([event, { ...event, id: "evt-1" }]);
  const one: AppendResult[] = await client.publish(event);
  const stats = await client.request<{ events: number }>("GET", "/v1/stats");
  const response: Response = await client.requestRaw("GET", "/v1/events", { accept: "application/x-ndjson" });
  console.log(marked.changed, unread.unread_count, list.has_more, page.next_cursor, results[0].status, one, stats.events);
  console.log(response.status, client.url, client.streamURL, client.refreshesTokens, expiry);

  try {
    await client.publish(event);
  } catch (error) {
    if (error instanceof TidingsError) console.log(error.code, error.status, error.closeCode, error.index, error.text);
  }
  const window: [number, number] = backoffWindow(2);
  console.log(backoffDelay(3, Math.random), window, BACKOFF_FIRST_MS + BACKOFF_MAX_MS);
}

void example;
