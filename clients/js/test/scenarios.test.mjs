// docs/CLIENTS.md's scenarios, run by the JavaScript client against a real `tidings serve`:
//   node --experimental-websocket --test clients/js/test/

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  backoffDelay, backoffWindow, memoryCursorStore, TidingsClient, TidingsError,
} from "../tidings.js";
import { created, FaultProxy, Server, waitFor } from "./harness.mjs";

/** A stream that records what it is told: events, states, resets, counts. */
function recorder(client, options = {}) {
  const seen = { events: [], states: [], resets: [], counts: [], order: [] };
  const stream = client.stream({
    cursorStore: memoryCursorStore(),
    onEvent: (event, { counts }) => {
      seen.events.push(event);
      seen.order.push(`event ${event.type} ${event.data.notification_id ?? ""}`.trim());
      if (counts) seen.counts.push(counts);
    },
    onReset: (notice) => seen.resets.push(notice),
    onState: (state, detail) => seen.states.push([state, detail]),
    ...options,
  });
  return { stream, seen };
}

const stateNames = (seen) => seen.states.map(([state]) => state);
const ids = (seen) => seen.events.map((event) => event.data.notification_id);

async function withServer(body) {
  const server = await Server.start();
  try {
    await body(server);
  } finally {
    await server.stop();
  }
}

test("1. a first connect replays everything, then goes live", () => withServer(async (server) => {
  const publisher = new TidingsClient({ url: server.url, token: server.token("publisher", "backend") });
  await publisher.publish([1, 2, 3, 4, 5].map((n) => created("alice", `n-${n}`)));
  const alice = new TidingsClient({ url: server.url, token: server.token("user", "alice") });
  const { stream, seen } = recorder(alice);
  stream.start();
  await waitFor(() => stream.state === "live", "live");
  assert.deepEqual(ids(seen), ["n-1", "n-2", "n-3", "n-4", "n-5"]);
  assert.deepEqual(stateNames(seen), ["connecting", "replaying", "live"]);
  assert.equal(seen.states[2][1].replayed, 5);
  assert.deepEqual(stream.counts, { unread: 5, unseen: 5, archived: 0 });
  await publisher.publish(created("alice", "n-6"));
  await waitFor(() => seen.events.length === 6, "n-6 live");
  assert.equal(stream.cursor, seen.events[5].cursor);
  stream.stop();
  assert.equal(stream.state, "stopped");
}));

test("2. a stream resumes after the processed cursor", () => withServer(async (server) => {
  const publisher = new TidingsClient({ url: server.url, token: server.token("publisher", "backend") });
  await publisher.publish([1, 2, 3, 4, 5].map((n) => created("alice", `n-${n}`)));
  const alice = new TidingsClient({ url: server.url, token: server.token("user", "alice") });
  const saved = [];
  // The cursor of the third event on alice's stream, as an application stored it.
  const third = (await alice.userEvents("alice", { limit: 3 })).next_cursor;
  const { stream, seen } = recorder(alice, {
    cursorStore: { load: () => third, save: (cursor) => { saved.push(cursor); } },
  });
  stream.start();
  await waitFor(() => stream.state === "live", "live");
  assert.deepEqual(ids(seen), ["n-4", "n-5"]);
  assert.equal(saved.at(-1), stream.cursor);
  assert.ok(saved.includes(seen.events[0].cursor));
  stream.stop();
}));

test("3. the server is SIGKILLed mid-stream and comes back: no gap, no repeat", async () => {
  let server = await Server.start();
  const { secret, directory, port } = server;
  try {
    const publisher = new TidingsClient({ url: server.url, token: server.token("publisher", "backend") });
    const alice = new TidingsClient({ url: server.url, token: server.token("user", "alice") });
    const { stream, seen } = recorder(alice);
    stream.start();
    await waitFor(() => stream.state === "live", "live");
    for (let n = 0; n < 20; n += 1) await publisher.publish(created("alice", `a-${n}`));
    await server.kill();
    await waitFor(() => stream.state === "reconnecting", "reconnecting");
    server = await Server.start({ directory, port, secret });
    for (let n = 0; n < 20; n += 1) await publisher.publish(created("alice", `b-${n}`));
    await waitFor(() => seen.events.length >= 40 && stream.state === "live", "all 40 after the restart", 30000);
    const expected = [...Array(20).keys()].map((n) => `a-${n}`).concat([...Array(20).keys()].map((n) => `b-${n}`));
    assert.deepEqual(ids(seen), expected);
    assert.deepEqual(seen.events.map((event) => event.stream_seq), [...Array(40).keys()].map((n) => n + 1));
    stream.stop();
  } finally {
    await server.stop();
    (await import("node:fs")).rmSync(directory, { recursive: true, force: true });
  }
});

test("4. a replaced store: the application is told to reset, then live events follow", async () => {
  const first = await Server.start();
  const { secret, port } = first;
  let second;
  try {
    const publisher = () => new TidingsClient({ url: `http://127.0.0.1:${port}`, token: first.token("publisher", "b") });
    await publisher().publish(created("alice", "old-1"));
    const alice = new TidingsClient({ url: first.url, token: first.token("user", "alice") });
    const { stream, seen } = recorder(alice);
    stream.start();
    await waitFor(() => stream.state === "live", "live on the first store");
    await first.stop({ keep: true });
    second = await Server.start({ port, secret });
    await waitFor(() => seen.resets.length === 1 && stream.state === "live", "the reset", 30000);
    assert.equal(seen.resets[0].reason, "epoch_mismatch");
    assert.deepEqual(seen.resets[0].counts, { unread: 0, unseen: 0, archived: 0 });
    assert.equal(stream.cursor, seen.resets[0].head);
    await publisher().publish(created("alice", "new-1"));
    await waitFor(() => ids(seen).includes("new-1"), "new-1 live");
    assert.deepEqual(ids(seen), ["old-1", "new-1"]);
    assert.deepEqual(stream.counts, { unread: 1, unseen: 1, archived: 0 });
    stream.stop();
  } finally {
    await first.stop();
    await second?.stop();
  }
});

test("5. a token that expires on an open connection is renewed and the stream resumes", () => withServer(async (server) => {
  const publisher = new TidingsClient({ url: server.url, token: server.token("publisher", "backend") });
  // The server allows 30 s past exp: these tokens have about two seconds left.
  const asked = [];
  const getToken = () => {
    asked.push(Date.now());
    return server.token("user", "alice", -28);
  };
  for (const refreshBeforeExpiryMs of [0, 30000]) {
    asked.length = 0;
    const alice = new TidingsClient({ url: server.url, getToken });
    const { stream, seen } = recorder(alice, { refreshBeforeExpiryMs });
    stream.start();
    await waitFor(() => stream.state === "live", "live");
    const before = seen.events.length;
    // Appends go on while the token runs out and is renewed.
    for (let n = 0; n < 12; n += 1) {
      await publisher.publish(created("alice", `t${refreshBeforeExpiryMs}-${n}`));
      await new Promise((done) => setTimeout(done, 300));
    }
    await waitFor(() => seen.events.length === before + 12, "every event across the renewal", 15000);
    assert.ok(asked.length >= 2, `a new token was asked for (${asked.length})`);
    assert.deepEqual(ids(seen).slice(before), [...Array(12).keys()].map((n) => `t${refreshBeforeExpiryMs}-${n}`));
    // The server's 4401 (when the client does not renew first) is never an error to the application.
    assert.ok(!seen.states.some(([state]) => state === "stopped"));
    stream.stop();
  }

  // A fixed token that expires: the second 4401 stops the stream with an error that says so.
  const fixed = new TidingsClient({ url: server.url, token: server.token("user", "alice", -29) });
  const { stream, seen } = recorder(fixed);
  stream.start();
  await waitFor(() => stream.state === "stopped", "stopped", 15000);
  const error = seen.states.at(-1)[1].error;
  assert.ok(error instanceof TidingsError);
  assert.equal(error.code, "unauthorized");
  assert.equal(error.closeCode, 4401);
}));

test("6. back-off waits stay within their windows", async () => {
  for (let attempt = 0; attempt < 12; attempt += 1) {
    const [, ceiling] = backoffWindow(attempt);
    assert.equal(ceiling, Math.min(20000, 500 * 2 ** attempt));
    assert.equal(backoffDelay(attempt, () => 0), 0);
    assert.equal(backoffDelay(attempt, () => 1), ceiling);
  }
  const server = await Server.start();
  const alice = new TidingsClient({ url: server.url, token: server.token("user", "alice") });
  const { stream, seen } = recorder(alice);
  stream.start();
  await waitFor(() => stream.state === "live", "live");
  await server.kill();
  await waitFor(() => seen.states.filter(([state]) => state === "reconnecting").length >= 4, "four tries", 20000);
  const waits = seen.states.filter(([state]) => state === "reconnecting").map(([, detail]) => detail);
  waits.slice(0, 4).forEach((detail, attempt) => {
    const [low, high] = backoffWindow(attempt);
    assert.equal(detail.attempt, attempt);
    assert.ok(detail.delayMs >= low && detail.delayMs <= high, `try ${attempt}: ${detail.delayMs} ms`);
  });
  stream.stop();
  await server.stop();
});

test("7. a change over the stream is acked after its event, with the counts after it", () => withServer(async (server) => {
  const publisher = new TidingsClient({ url: server.url, token: server.token("publisher", "backend") });
  await publisher.publish([created("alice", "n-1"), created("alice", "n-2")]);
  const alice = new TidingsClient({ url: server.url, token: server.token("user", "alice") });
  const { stream, seen } = recorder(alice);
  stream.start();
  await waitFor(() => stream.state === "live", "live");
  const ack = await stream.mark({ change: "archive", notification_ids: ["n-1"] });
  seen.order.push("ack");
  assert.deepEqual(ack, { status: "ok", counts: { unread: 1, unseen: 1, archived: 1 } });
  assert.deepEqual(seen.order.slice(-2), ["event notification.archived n-1", "ack"]);
  const read = await stream.read(["n-2"]);
  assert.deepEqual(read.counts, { unread: 0, unseen: 0, archived: 1 });
  const again = await stream.read(["n-2"]);
  assert.equal(again.status, "noop");
  // A malformed change closes the stream with 4400: it stops, and says why.
  await assert.rejects(stream.mark({ change: "snooze", notification_ids: ["n-2"] }), { code: "closed" });
  await waitFor(() => stream.state === "stopped", "stopped");
  assert.equal(seen.states.at(-1)[1].error.message, "a snooze needs until: an RFC 3339 time later than now");
}));

test("8. two connections of one user stay in step", () => withServer(async (server) => {
  const publisher = new TidingsClient({ url: server.url, token: server.token("publisher", "backend") });
  await publisher.publish([created("alice", "n-1"), created("alice", "n-2")]);
  const alice = new TidingsClient({ url: server.url, token: server.token("user", "alice") });
  const one = recorder(alice);
  const two = recorder(alice);
  one.stream.start();
  two.stream.start();
  await waitFor(() => one.stream.state === "live" && two.stream.state === "live", "both live");
  const ack = await one.stream.mark({ change: "read", notification_ids: ["n-2"] });
  await waitFor(() => two.seen.events.length === 3, "the read on the other connection");
  assert.equal(two.seen.events[2].type, "notification.read");
  assert.deepEqual(two.stream.counts, ack.counts);
  const answer = await alice.mark("alice", { change: "seen", all: true });
  assert.deepEqual(answer.changed, ["n-1"]);
  await waitFor(() => one.seen.events.length === 4 && two.seen.events.length === 4, "the seen_all on both");
  assert.deepEqual(one.stream.counts, two.stream.counts);
  assert.deepEqual(two.stream.counts, { unread: 1, unseen: 0, archived: 0 });
  one.stream.stop();
  two.stream.stop();
}));

test("9. a publisher whose answer is lost retries and gets duplicate", () => withServer(async (server) => {
  const proxy = await FaultProxy.start(server, { dropAnswers: 1 });
  try {
    const publisher = new TidingsClient({ url: proxy.url, token: server.token("publisher", "backend") });
    const results = await publisher.publish(created("alice", "n-1"));
    assert.equal(results[0].status, "duplicate");
    await waitFor(() => proxy.log.length === 2, "the proxy's two lines");
    assert.deepEqual(proxy.log, ["dropped 201", "relayed 200"]);
    const admin = new TidingsClient({ url: server.url, token: server.token("admin", "root") });
    assert.equal((await admin.request("GET", "/v1/stats")).events, 1);
  } finally {
    proxy.stop();
  }
}));

test("10. 503 is retried, 400 is not", () => withServer(async (server) => {
  const proxy = await FaultProxy.start(server, { answer503: 2 });
  try {
    const publisher = new TidingsClient({ url: proxy.url, token: server.token("publisher", "backend") });
    const results = await publisher.publish([created("alice", "n-1"), created("alice", "n-2")]);
    assert.deepEqual(results.map((result) => result.status), ["appended", "appended"]);
    await waitFor(() => proxy.log.length === 3, "the proxy's three lines");
    assert.deepEqual(proxy.log, ["503", "503", "relayed 201"]);
    const bad = { type: "notification.created", user_id: "alice", data: { title: "no id" } };
    await assert.rejects(publisher.publish(bad), (error) => {
      assert.ok(error instanceof TidingsError);
      assert.equal(error.status, 400);
      assert.equal(error.code, "bad_request");
      assert.match(error.message, /notification_id/);
      return true;
    });
    await waitFor(() => proxy.log.length === 4, "the proxy's fourth line");
    assert.deepEqual(proxy.log, ["503", "503", "relayed 201", "relayed 400"]);
    // A noop is a result, not an error.
    const noop = await publisher.publish({ type: "notification.read", user_id: "alice", data: { notification_id: "gone" } });
    assert.deepEqual(noop, [{ status: "noop" }]);
  } finally {
    proxy.stop();
  }
}));

test("streams that may not be opened stop with the server's reason", () => withServer(async (server) => {
  const alice = new TidingsClient({ url: server.url, token: server.token("user", "alice") });
  const all = recorder(alice, { stream: "all" });
  all.stream.start();
  await waitFor(() => all.stream.state === "stopped", "stopped");
  assert.equal(all.seen.states.at(-1)[1].error.code, "forbidden");
  assert.equal(all.seen.states.at(-1)[1].error.closeCode, 4403);
  const badCursor = recorder(alice, { cursorStore: memoryCursorStore("not-a-cursor") });
  badCursor.stream.start();
  await waitFor(() => badCursor.stream.state === "stopped", "stopped");
  assert.equal(badCursor.seen.states.at(-1)[1].error.code, "invalid_cursor");
  await assert.rejects(alice.unread("bob"), { code: "forbidden", status: 403 });
}));
