// The inbox demo at `/`: a user's notifications, live.
//
// The page keeps the list, the unread count and the cursor of the last event it applied together
// in localStorage, one record per user, written as one value. A reload or a dropped connection
// resumes the stream from that cursor, so the server replays exactly the events the saved list
// lacks. Every tab of the user holds its own stream; each applies the same events in the same
// order, and the saved record only moves forward, so tabs agree.

import { api, ApiError, element, loadSaved, relativeTime, safeLink, save } from "./api.js";
import { setUpSignIn } from "./signin.js";
import { LiveStream } from "./stream.js";

const TOKEN_KEY = "tidings.inbox.token";
/** The newest notifications the page keeps; the badge counts all unread ones (the server's count). */
const KEEP = 200;

const $ = (id) => document.getElementById(id);
let session = null; // { token, sub }
let state = null; // { epoch, cursor, streamSeq, unreadCount, items: newest first }
let stream = null;
let nextRef = 1;
let persistTimer = null;
let renderQueued = false;

function stateKey(sub) {
  return `tidings.inbox.state.${sub}`;
}

function emptyState() {
  return { epoch: null, cursor: null, streamSeq: 0, unreadCount: 0, items: [] };
}

// MARK: Signing in and out

function close() {
  stream?.stop();
  stream = null;
  if (session) localStorage.removeItem(stateKey(session.sub));
  session = null;
  state = null;
  $("inbox").hidden = true;
}

function open(token, claims) {
  session = { token, sub: claims.sub };
  state = loadSaved(stateKey(claims.sub)) ?? emptyState();
  $("inbox").hidden = false;
  render();
  stream = new LiveStream({
    hello: () => ({ type: "hello", token, stream: "user", cursor: state.cursor }),
    onMessage: handleMessage,
    onState: showStreamState,
    onInvalidCursor: () => {
      // The saved position is not one of this user's stream (a store replaced under the page):
      // start over from the stream's start.
      state = emptyState();
      persist(true);
    },
  });
  if (state.cursor === null) {
    // A first visit reads the newest page of the list and streams from the head it was read
    // at, instead of replaying the user's whole stream.
    loadList("connecting", "Loading the newest notifications…");
  } else {
    stream.start();
  }
}

// MARK: The stream

function handleMessage(message) {
  switch (message.type) {
    case "welcome":
      state.epoch = message.epoch;
      break;
    case "event":
      apply(message.event);
      state.cursor = message.event.cursor;
      state.streamSeq = message.event.stream_seq;
      state.unreadCount = message.unread_count;
      schedulePersist();
      queueRender();
      break;
    case "caught_up":
      state.cursor = message.cursor;
      state.unreadCount = message.unread_count;
      persist();
      queueRender();
      break;
    case "reset":
      reloadAfterReset(message.reason);
      break;
    case "ack":
      if (message.status === "forbidden") $("inbox-error").textContent = "forbidden: this token may not mark these read";
      break;
  }
}

/** Applies one event of the user stream to the list; applying it twice changes nothing more. */
function apply(event) {
  const data = event.data;
  switch (event.type) {
    case "notification.created":
      if (!state.items.some((item) => item.id === data.notification_id)) {
        state.items.unshift(listItem(event, false));
        if (state.items.length > KEEP) state.items.length = KEEP;
      }
      break;
    case "notification.read":
      for (const item of state.items) if (item.id === data.notification_id) item.read = true;
      break;
    case "notification.read_all": {
      const upTo = data.up_to_seq ?? event.seq;
      for (const item of state.items) if (item.seq <= upTo) item.read = true;
      break;
    }
  }
}

/** What the page keeps of a notification: its created event's fields and whether it is read. */
function listItem(event, read) {
  const data = event.data;
  return {
    id: data.notification_id, seq: event.seq, ts: event.ts, kind: data.kind, title: data.title, body: data.body,
    link: data.link, actor: data.actor_id, read,
  };
}

/**
 * Replaces the page's list by the newest notifications as the server has them, with their
 * state, then streams from the head that page was read at: nothing missed, nothing twice.
 */
async function loadList(statusName, statusText) {
  stream.stop();
  showStatus(statusName, statusText);
  try {
    const list = await api(
      session.token, "GET", `/v1/users/${encodeURIComponent(session.sub)}/notifications?limit=${KEEP}`);
    if (!stream) return; // signed out meanwhile
    state = emptyState();
    state.cursor = list.cursor;
    state.unreadCount = list.unread_count;
    state.items = list.notifications.map(({ event, read }) => listItem(event, read));
    persist(true);
    render();
    stream.start();
  } catch (error) {
    $("inbox-error").textContent = error instanceof ApiError ? error.text : error.message;
    setTimeout(() => session && loadList(statusName, statusText), 2000);
  }
}

/**
 * The server's answer to a cursor it cannot resume from (another epoch: the store was restored
 * or replaced). As the protocol asks, the page reloads the list, then goes on from the head that
 * list was read at.
 */
function reloadAfterReset(reason) {
  loadList("reconnecting", `The store was reset (${reason.replace("_", " ")}); reloading the list…`);
}

function showStreamState(name, detail) {
  switch (name) {
    case "connecting":
      showStatus(name, "Connecting…");
      break;
    case "replaying":
      showStatus(name, "Catching up…");
      break;
    case "caught_up": {
      $("inbox-error").textContent = "";
      const n = detail.replayed;
      const text = detail.reset ? "Caught up" : n ? `Caught up · ${n} missed event${n === 1 ? "" : "s"} replayed` : "Caught up";
      showStatus(name, text, n);
      break;
    }
    case "reconnecting":
      showStatus(name, `Reconnecting in ${(detail.delayMs / 1000).toFixed(1)} s (${detail.reason})…`, 0, detail.delayMs);
      break;
    case "stopped":
      if (detail.fatal) signOut(detail.reason);
      break;
  }
}

function showStatus(name, text, replayed = 0, delayMs = 0) {
  const status = $("status");
  status.dataset.state = name;
  status.dataset.replayed = String(replayed);
  status.dataset.delayMs = String(delayMs);
  status.textContent = text;
}

// MARK: Marking read

function markRead(ids) {
  $("inbox-error").textContent = "";
  const message = { type: "read", ref: `r${nextRef++}`, notification_ids: ids };
  // On a live stream the read goes over it and its events come back the same way; otherwise over
  // HTTP, and the events follow when the stream is back.
  if (stream?.live && stream.send(message)) return;
  readOverHTTP({ notification_ids: ids });
}

function markAllRead() {
  $("inbox-error").textContent = "";
  // Only what this page has shown: a notification created after the newest one here stays unread.
  const upTo = Math.max(0, ...state.items.map((item) => item.seq));
  const message = { type: "read", ref: `r${nextRef++}`, all: true };
  if (upTo > 0) message.up_to_seq = upTo;
  if (stream?.live && stream.send(message)) return;
  const body = { all: true };
  if (upTo > 0) body.up_to_seq = upTo;
  readOverHTTP(body);
}

async function readOverHTTP(body) {
  try {
    const result = await api(session.token, "POST", `/v1/users/${encodeURIComponent(session.sub)}/read`, body);
    const read = new Set(result.read);
    for (const item of state.items) if (read.has(item.id)) item.read = true;
    state.unreadCount = result.unread_count;
    render();
  } catch (error) {
    $("inbox-error").textContent = error instanceof ApiError ? error.text : error.message;
  }
}

// MARK: Saving and drawing

function schedulePersist() {
  if (persistTimer === null) persistTimer = setTimeout(() => persist(), 250);
}

/** Saves the list with its cursor, unless another tab already saved a later position. */
function persist(force = false) {
  clearTimeout(persistTimer);
  persistTimer = null;
  if (!session || !state) return;
  const key = stateKey(session.sub);
  const saved = loadSaved(key);
  if (!force && saved && saved.epoch === state.epoch && saved.streamSeq > state.streamSeq) return;
  save(key, state);
}

/** Draws once per frame however many events arrived; in a background tab, where frames stop,
 * on a timer instead, so the count in the tab's title stays current. */
function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  const draw = () => {
    renderQueued = false;
    render();
  };
  if (document.hidden) setTimeout(draw, 250);
  else requestAnimationFrame(draw);
}

function render() {
  if (!state) return;
  const count = state.unreadCount;
  const badge = $("badge");
  badge.textContent = count > 99 ? "99+" : String(count);
  badge.dataset.count = String(count);
  badge.hidden = count === 0;
  $("bell").setAttribute("aria-label", `${count} unread notification${count === 1 ? "" : "s"}`);
  document.title = count ? `(${count}) Tidings inbox` : "Tidings inbox";
  $("mark-all").disabled = count === 0;
  $("empty").hidden = state.items.length > 0;

  // Keyboard users keep their place: focus returns to the same item, or the next one.
  const focusedID = document.activeElement?.closest?.("#list li")?.dataset.id;
  const list = $("list");
  list.replaceChildren(...state.items.map(itemView));
  if (focusedID !== undefined) {
    const row = [...list.children].find((li) => li.dataset.id === focusedID);
    row?.querySelector("button, .item-main")?.focus();
  }
}

function itemView(item) {
  const link = safeLink(item.link);
  const content = [
    element("span", { class: "item-title" }, item.title ?? item.id),
    item.body ? element("span", { class: "item-body" }, item.body) : null,
    element(
      "span", { class: "item-meta" },
      item.kind ? element("span", { class: "kind" }, item.kind) : null,
      item.actor ? element("span", {}, `from ${item.actor}`) : null,
      element("time", { datetime: item.ts, title: new Date(item.ts).toLocaleString() }, relativeTime(item.ts)),
      item.read ? null : element("span", { class: "visually-hidden" }, " unread"),
    ),
  ];
  const main = item.read
    ? element("div", { class: "item-main", tabindex: "-1" }, ...content)
    : element("button", { class: "item-main", type: "button", title: "Mark read", onclick: () => markRead([item.id]) }, ...content);
  return element(
    "li", { class: item.read ? "item read" : "item unread", "data-id": item.id },
    item.read ? null : element("span", { class: "dot", "aria-hidden": "true" }),
    main,
    link ? element("a", { class: "item-link", href: link, target: "_blank", rel: "noopener noreferrer" }, "Open") : null,
  );
}

// MARK: Start

$("mark-all").addEventListener("click", markAllRead);
addEventListener("pagehide", () => persist());
// A frame asked for just before the tab went to the background would wait until it came back.
document.addEventListener("visibilitychange", () => {
  renderQueued = false;
  queueRender();
});
// Relative times ("3 min ago") age while the page is open.
setInterval(queueRender, 30000);
const signOut = setUpSignIn({
  storageKey: TOKEN_KEY,
  roles: ["user"],
  wrongRole: (role) => `the inbox needs a user token; this one has the ${role} role (the console is at /console)`,
  probe: (token, claims) => api(token, "GET", `/v1/users/${encodeURIComponent(claims.sub)}/unread?limit=1`),
  open,
  close,
});
