// What the inbox page knows of a user's notifications, and the rules that change it: the state
// events of PROTOCOL.md ("Inbox states") applied one at a time, in stream order. No DOM here.
//
// Each rule sets a state rather than toggling one, so applying an event twice, or applying one
// the page already applied from an HTTP answer, changes nothing more.

/** The newest notifications the page keeps; the counts are the server's, over all of them. */
export const KEEP = 200;

/** The saved record's shape; a record of another version is dropped and the list read afresh. */
export const STATE_VERSION = 2;

export function emptyState() {
  return {
    version: STATE_VERSION, epoch: null, cursor: null, streamSeq: 0,
    counts: { unread: 0, unseen: 0, archived: 0 }, items: [],
  };
}

/** The counts a server message or answer carries. */
export function countsOf(message) {
  return { unread: message.unread_count, unseen: message.unseen_count, archived: message.archived_count };
}

/** What the page keeps of a notification: its created event's fields and its state. */
export function listItem(event, { read = false, seen = false, archived = false, snoozed_until = null } = {}) {
  const data = event.data;
  return {
    id: data.notification_id, seq: event.seq, ts: event.ts, kind: data.kind, title: data.title, body: data.body,
    link: data.link, actor: data.actor_id, read, seen: seen || read, archived, snoozedUntil: snoozed_until,
  };
}

/** The tabs, each a test of an item. Snoozed notifications leave the others until they wake. */
export const TABS = {
  all: (item) => !item.archived && !item.snoozedUntil,
  unread: (item) => !item.read && !item.archived && !item.snoozedUntil,
  archived: (item) => item.archived,
  snoozed: (item) => Boolean(item.snoozedUntil) && !item.archived,
};

/** Sets what `change` (a mark request's change) does to one notification. */
export function changeItem(item, change, until) {
  switch (change) {
    case "read":
      item.read = true;
      item.seen = true;
      break;
    case "unread":
      item.read = false;
      break;
    case "seen":
      item.seen = true;
      break;
    case "archive":
      item.archived = true;
      break;
    case "unarchive":
      item.archived = false;
      break;
    case "snooze":
      item.snoozedUntil = until;
      break;
    case "unsnooze":
      item.snoozedUntil = null;
      break;
  }
}

const SINGLE = {
  "notification.read": "read", "notification.unread": "unread", "notification.seen": "seen",
  "notification.archived": "archive", "notification.unarchived": "unarchive",
  "notification.snoozed": "snooze", "notification.unsnoozed": "unsnooze",
};

const BULK = {
  "notification.read_all": "read", "notification.seen_all": "seen", "notification.archived_all": "archive",
};

/** Applies one event of the user stream to `state.items`. */
export function applyEvent(state, event) {
  const data = event.data;
  if (event.type === "notification.created") {
    if (!state.items.some((item) => item.id === data.notification_id)) {
      state.items.unshift(listItem(event));
      if (state.items.length > KEEP) state.items.length = KEEP;
    }
    return;
  }
  const single = SINGLE[event.type];
  if (single) {
    const item = state.items.find((candidate) => candidate.id === data.notification_id);
    if (!item) return;
    // The server's own unsnooze names the snooze it ends; a snooze moved since stays.
    if (single === "unsnooze" && data.until && !sameTime(data.until, item.snoozedUntil)) return;
    changeItem(item, single, data.until ?? null);
    return;
  }
  const bulk = BULK[event.type];
  if (bulk) {
    // A bulk event covers notifications created up to its bound, never after itself.
    const bound = Math.min(data.up_to_seq ?? event.seq - 1, event.seq - 1);
    for (const item of state.items) {
      if (item.seq > bound) continue;
      if (data.kind !== undefined && item.kind !== data.kind) continue;
      if (data.only_read && !item.read) continue;
      changeItem(item, bulk);
    }
  }
}

function sameTime(left, right) {
  return left !== null && right !== null && Date.parse(left) === Date.parse(right);
}

/** The seq of the newest notification the page holds (0 when none). */
export function newestSeq(state) {
  return state.items.reduce((newest, item) => Math.max(newest, item.seq), 0);
}

/** When each snooze choice ends, as an RFC 3339 time, from `now` in the browser's time zone. */
export const SNOOZE_CHOICES = [
  { label: "In an hour", until: (now) => new Date(now.getTime() + 3600 * 1000) },
  {
    label: "Tomorrow morning",
    until: (now) => new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1, 9, 0, 0),
  },
  {
    label: "Next week",
    // Monday at 9: a week from today when today is Monday.
    until: (now) => new Date(now.getFullYear(), now.getMonth(), now.getDate() + (((8 - now.getDay()) % 7) || 7), 9),
  },
];
