// The inbox demo at `/`: a bell with the count of new (unseen) notifications, and a panel with
// the user's notifications in tabs, each with its actions, live.
//
// The page keeps the list, the counts and the cursor of the last event it applied together in
// localStorage, one record per user, written as one value: the Tidings client's stream keeps its
// cursor there (its cursor store is this record). A reload or a dropped connection resumes the
// stream from that cursor, so the server replays exactly the events the saved list lacks. Every
// tab of the user holds its own stream; each applies the same events in the same order, and the
// saved record only moves forward, so tabs agree.

import {
  applyEvent, changeItem, countsOf, emptyState, KEEP, listItem, newestSeq, SNOOZE_CHOICES, STATE_VERSION, TABS,
} from "./inbox-state.js";
import { element, loadSaved, relativeTime, safeLink, save } from "./pages.js";
import { setUpSignIn } from "./signin.js";
import { TidingsClient, TidingsError } from "./tidings.js";

const TOKEN_KEY = "tidings.inbox.token";
/** Whether the panel is open and which tab shows, per browser tab (sessionStorage). */
const VIEW_KEY = "tidings.inbox.view";

const $ = (id) => document.getElementById(id);
let session = null; // { token, sub, client }
let state = null; // emptyState()'s shape, items newest first
let stream = null;
let view = loadView();
/** The item whose snooze menu is open: a redraw (an event arrived) keeps it open. */
let openSnoozeMenu = null;
/** The bound of the last "seen up to here" this page asked for, so it asks once per new item. */
let seenAskedThrough = 0;
let persistTimer = null;
let renderQueued = false;

function stateKey(sub) {
  return `tidings.inbox.state.${sub}`;
}

function loadView() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(VIEW_KEY) ?? "null");
    if (saved && typeof saved.open === "boolean" && saved.tab in TABS) return saved;
  } catch {
    // Unreadable: the default below.
  }
  return { open: false, tab: "all" };
}

function saveView() {
  try {
    sessionStorage.setItem(VIEW_KEY, JSON.stringify(view));
  } catch {
    // Storage disabled: the view is forgotten on reload, nothing else.
  }
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
  session = { token, sub: claims.sub, client: new TidingsClient({ token }) };
  const saved = loadSaved(stateKey(claims.sub));
  state = saved?.version === STATE_VERSION ? saved : emptyState();
  seenAskedThrough = 0;
  $("inbox").hidden = false;
  render();
  if (state.cursor === null) {
    // A first visit reads the newest page of the list and streams from the head it was read
    // at, instead of replaying the user's whole stream.
    loadList("connecting", "Loading the newest notifications…");
  } else {
    startStream();
  }
}

// MARK: The stream

/** A stream from `state.cursor`, which the stream then moves as the page applies each event. */
function startStream() {
  stream?.stop();
  stream = session.client.stream({
    cursorStore: {
      load: () => state.cursor,
      save: (cursor) => {
        state.cursor = cursor;
        schedulePersist();
      },
    },
    onEvent: (event, { counts }) => {
      state.epoch = stream.epoch;
      applyEvent(state, event);
      state.streamSeq = event.stream_seq;
      if (counts) state.counts = counts;
      queueRender();
      if (event.type === "notification.created") markSeenIfShown();
    },
    onCounts: (counts) => {
      state.counts = counts;
      queueRender();
    },
    // Another store under the same address (a restore): the list is read again from it, and the
    // stream goes on from the head it named.
    onReset: ({ reason }) => reloadAfterReset(reason),
    onState: showStreamState,
  });
  stream.start();
}

/**
 * Replaces the page's list by the newest notifications as the server has them, with their
 * state, then streams from the head that page was read at: nothing missed, nothing twice.
 */
async function loadList(statusName, statusText) {
  stream?.stop();
  stream = null;
  showStatus(statusName, statusText);
  const current = session;
  try {
    const list = await current.client.notifications(current.sub, { state: "all", limit: KEEP });
    if (session !== current) return; // signed out meanwhile
    replaceList(list);
    startStream();
  } catch (error) {
    $("inbox-error").textContent = errorText(error);
    setTimeout(() => session === current && loadList(statusName, statusText), 2000);
  }
}

function replaceList(list) {
  state = emptyState();
  state.cursor = list.cursor;
  state.counts = countsOf(list);
  state.items = list.notifications.map(({ event, ...itemState }) => listItem(event, itemState));
  seenAskedThrough = 0;
  persist(true);
  render();
}

/**
 * The server's answer to a cursor it cannot resume from (another epoch: the store was restored
 * or replaced). As the protocol asks, the page reloads the list; the stream goes on from the
 * head the reset named (the list, read after it, already holds what comes between, and applying
 * those events again changes nothing).
 */
async function reloadAfterReset(reason) {
  showStatus("replaying", `The store was reset (${reason.replace("_", " ")}); reloading the list…`);
  for (;;) {
    try {
      const list = await session.client.notifications(session.sub, { state: "all", limit: KEEP });
      replaceList(list);
      state.epoch = stream?.epoch ?? null;
      return;
    } catch (error) {
      $("inbox-error").textContent = errorText(error);
      await new Promise((done) => setTimeout(done, 2000));
    }
  }
}

const errorText = (error) => (error instanceof TidingsError ? error.text : error.message);

function showStreamState(name, detail) {
  switch (name) {
    case "connecting":
      showStatus(name, "Connecting…");
      break;
    case "replaying":
      showStatus(name, "Catching up…");
      break;
    case "live": {
      $("inbox-error").textContent = "";
      const n = detail.replayed;
      const text = detail.reset ? "Caught up" : n ? `Caught up · ${n} missed event${n === 1 ? "" : "s"} replayed` : "Caught up";
      showStatus(name, text, n);
      // Live from here: what the open panel shows now is seen.
      markSeenIfShown();
      break;
    }
    case "reconnecting":
      showStatus(name, `Reconnecting in ${(detail.delayMs / 1000).toFixed(1)} s (${detail.reason})…`, 0, detail.delayMs,
        detail.attempt);
      break;
    case "stopped": {
      const error = detail.error;
      if (!error) break;
      if (error.code === "invalid_cursor") {
        // The saved position is not one of this user's stream (a store replaced under the
        // page by one that reused the epoch): start over from the list.
        state = emptyState();
        persist(true);
        loadList("reconnecting", "Reloading the list…");
      } else if (error.closeCode === 4401 || error.closeCode === 4403) {
        signOut(`${error.text}; sign in again`);
      } else {
        showStatus("stopped", `Stopped: ${error.text}`);
      }
      break;
    }
  }
}

function showStatus(name, text, replayed = 0, delayMs = 0, attempt = -1) {
  const status = $("status");
  status.dataset.state = name;
  status.dataset.replayed = String(replayed);
  status.dataset.delayMs = String(delayMs);
  status.dataset.attempt = String(attempt);
  status.textContent = text;
}

// MARK: Changing states

/**
 * Asks for a state change (`POST /v1/users/{user_id}/mark`'s body). On a live stream it goes
 * over the stream and its events come back the same way; otherwise over HTTP, and the page
 * applies the answer at once (the events, when the stream is back, change nothing more).
 */
async function mark(body) {
  $("inbox-error").textContent = "";
  if (stream?.state === "live") {
    try {
      await stream.mark(body);
      return;
    } catch (error) {
      // The stream dropped before the ack: the change is asked for again over HTTP, where
      // making it twice changes nothing more.
      if (error.code !== "closed" && error.code !== "not_connected" && error.code !== "timeout") {
        $("inbox-error").textContent = errorText(error);
        return;
      }
    }
  }
  await markOverHTTP(body);
}

async function markOverHTTP(body) {
  try {
    const result = await session.client.mark(session.sub, body);
    const changed = new Set(result.changed);
    for (const item of state.items) if (changed.has(item.id)) changeItem(item, body.change, body.until ?? null);
    state.counts = countsOf(result);
    persist(true);
    render();
  } catch (error) {
    $("inbox-error").textContent = errorText(error);
  }
}

/** A bulk change, bounded by what this page has shown: what arrived after stays as it is. */
function markAll(change, extra = {}) {
  const upTo = newestSeq(state);
  if (upTo > 0) mark({ change, all: true, up_to_seq: upTo, ...extra });
}

/**
 * The panel shows notifications: they are seen. Asked for once per newest notification, when
 * the panel is open in a visible tab on a live stream and something is new.
 */
function markSeenIfShown() {
  if (!state || !view.open || document.hidden || stream?.state !== "live" || state.counts.unseen === 0) return;
  const upTo = newestSeq(state);
  if (upTo === 0 || upTo <= seenAskedThrough) return;
  seenAskedThrough = upTo;
  mark({ change: "seen", all: true, up_to_seq: upTo });
}

function setPanelOpen(open) {
  view.open = open;
  saveView();
  render();
  markSeenIfShown();
}

function selectTab(tab, focus = false) {
  view.tab = tab;
  saveView();
  render();
  if (focus) $(`tab-${tab}`).focus();
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
  const { unread, unseen, archived } = state.counts;
  const badge = $("badge");
  badge.textContent = unseen > 99 ? "99+" : String(unseen);
  badge.dataset.count = String(unseen);
  badge.hidden = unseen === 0;
  const bell = $("bell");
  bell.setAttribute("aria-label", `Notifications: ${unseen} new`);
  bell.setAttribute("aria-expanded", String(view.open));
  bell.title = view.open ? "Close notifications" : "Open notifications";
  document.title = unseen ? `(${unseen}) Tidings inbox` : "Tidings inbox";
  const summary = $("unread-summary");
  summary.textContent = `${unread} unread`;
  summary.dataset.count = String(unread);
  $("panel").hidden = !view.open;

  const snoozed = state.items.filter(TABS.snoozed).length;
  for (const [tab, label] of [["all", "All"], ["unread", `Unread (${unread})`], ["archived", `Archived (${archived})`],
    ["snoozed", `Snoozed (${snoozed})`]]) {
    const button = $(`tab-${tab}`);
    button.textContent = label;
    button.setAttribute("aria-selected", String(view.tab === tab));
    button.tabIndex = view.tab === tab ? 0 : -1;
  }
  $("list").setAttribute("aria-labelledby", `tab-${view.tab}`);
  $("mark-all").disabled = unread === 0;
  $("archive-read").disabled = !state.items.some((item) => item.read && !item.archived);

  const shown = state.items.filter(TABS[view.tab]);
  $("empty").hidden = shown.length > 0;
  $("empty").textContent = {
    all: "Nothing here yet. New notifications appear as they arrive.",
    unread: "No unread notifications.",
    archived: "Nothing archived.",
    snoozed: "Nothing snoozed.",
  }[view.tab];

  // Keyboard users keep their place: focus returns to the same control of the same item, or to
  // the item's main button when that control is gone (the item moved to another tab: the tab).
  const focused = document.activeElement?.closest?.("#list li");
  const focusedID = focused?.dataset.id;
  const focusedAction = document.activeElement?.dataset?.action;
  const list = $("list");
  list.replaceChildren(...shown.map(itemView));
  if (focusedID !== undefined) {
    const row = [...list.children].find((li) => li.dataset.id === focusedID);
    const target = row?.querySelector(`[data-action="${focusedAction}"]`) ?? row?.querySelector(".item-main");
    (target ?? $(`tab-${view.tab}`)).focus();
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
      item.snoozedUntil ? element("span", { class: "snoozed-until" }, `snoozed until ${until(item.snoozedUntil)}`) : null,
      item.read ? null : element("span", { class: "visually-hidden" }, " unread"),
    ),
  ];
  const main = item.read
    ? element("div", { class: "item-main", tabindex: "-1" }, ...content)
    : element("button", {
      class: "item-main", type: "button", title: "Mark read", "data-action": "open",
      onclick: () => mark({ change: "read", notification_ids: [item.id] }),
    }, ...content);
  const ids = [item.id];
  const action = (name, label, body) =>
    element("button", { type: "button", class: "quiet small", "data-action": name, onclick: () => mark(body) }, label);
  const actions = element(
    "div", { class: "item-actions", role: "group", "aria-label": `Actions for ${item.title ?? item.id}` },
    item.read
      ? action("unread", "Mark unread", { change: "unread", notification_ids: ids })
      : action("read", "Mark read", { change: "read", notification_ids: ids }),
    item.archived
      ? action("unarchive", "Unarchive", { change: "unarchive", notification_ids: ids })
      : action("archive", "Archive", { change: "archive", notification_ids: ids }),
    item.snoozedUntil ? action("unsnooze", "Unsnooze", { change: "unsnooze", notification_ids: ids }) : snoozeMenu(item.id),
  );
  const classes = ["item", item.read ? "read" : "unread", item.seen ? "seen" : "unseen"];
  return element(
    "li", {
      class: classes.join(" "), "data-id": item.id, "data-archived": String(item.archived),
      "data-snoozed-until": item.snoozedUntil ?? false,
    },
    item.read ? null : element("span", { class: "dot", "aria-hidden": "true" }),
    main,
    element(
      "div", { class: "item-side" },
      link ? element("a", { class: "item-link", href: link, target: "_blank", rel: "noopener noreferrer" }, "Open") : null,
      actions,
    ),
  );
}

/** Snooze: a disclosure with the three times people pick. */
function snoozeMenu(id) {
  const ids = [id];
  const menu = element("details", { class: "snooze", open: openSnoozeMenu === id });
  menu.addEventListener("toggle", () => {
    if (menu.open) openSnoozeMenu = id;
    else if (openSnoozeMenu === id && menu.isConnected) openSnoozeMenu = null;
  });
  menu.append(
    element("summary", { "data-action": "snooze" }, "Snooze"),
    element(
      "div", { class: "snooze-choices" },
      ...SNOOZE_CHOICES.map((choice, index) => element("button", {
        type: "button", class: "quiet small", "data-action": `snooze-${index}`,
        onclick: () => {
          openSnoozeMenu = null;
          mark({ change: "snooze", notification_ids: ids, until: choice.until(new Date()).toISOString() });
        },
      }, choice.label)),
    ),
  );
  return menu;
}

function until(time) {
  return new Date(time).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });
}

// MARK: Start

$("bell").addEventListener("click", () => setPanelOpen(!view.open));
for (const button of document.querySelectorAll("#tabs [role=tab]")) {
  button.addEventListener("click", () => selectTab(button.dataset.tab));
}
// Arrow keys move between tabs, as a tab list does.
$("tabs").addEventListener("keydown", (event) => {
  const names = Object.keys(TABS);
  const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
  if (step === undefined) return;
  event.preventDefault();
  selectTab(names[(names.indexOf(view.tab) + step + names.length) % names.length], true);
});
$("mark-all").addEventListener("click", () => markAll("read"));
$("archive-read").addEventListener("click", () => markAll("archive", { only_read: true }));
addEventListener("pagehide", () => persist());
// A frame asked for just before the tab went to the background would wait until it came back;
// coming back with the panel open shows what arrived meanwhile, so it is seen.
document.addEventListener("visibilitychange", () => {
  renderQueued = false;
  queueRender();
  markSeenIfShown();
});
// Relative times ("3 min ago") age while the page is open.
setInterval(queueRender, 30000);
const signOut = setUpSignIn({
  storageKey: TOKEN_KEY,
  roles: ["user"],
  wrongRole: (role) => `the inbox needs a user token; this one has the ${role} role (the console is at /console)`,
  probe: (token, claims) => new TidingsClient({ token }).unread(claims.sub, { limit: 1 }),
  open,
  close,
});
