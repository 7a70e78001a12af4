// What both pages share beside the Tidings client (tidings.js): tokens handed over and read,
// what they keep in localStorage, and building the page's elements.

/** The claims of a JWT, read without checking its signature (the server checks it). */
export function tokenClaims(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("that is not a JWT (it needs three parts separated by dots)");
  let claims;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
  } catch {
    throw new Error("that is not a JWT (its middle part is not base64url JSON)");
  }
  if (typeof claims.sub !== "string" || typeof claims.role !== "string") {
    throw new Error("the token has no sub or role claim");
  }
  if (typeof claims.exp === "number" && claims.exp * 1000 < Date.now()) {
    throw new Error(`the token expired at ${new Date(claims.exp * 1000).toLocaleString()}; make a new one`);
  }
  return claims;
}

/**
 * A token handed over in the address's fragment (`/#token=...`, as tools/serve prints it), taken
 * out of the address at once so it stays out of the history. The fragment never reaches a server.
 */
export function takeTokenFromAddress() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return decodeURIComponent(match[1]);
}

/** Reads a JSON value saved in localStorage; null when absent or unreadable. */
export function loadSaved(key) {
  try {
    return JSON.parse(localStorage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}

export function save(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: the page still works, it only forgets on reload.
  }
}

/** "3 min ago", "12:04", "27 Nov": when a timestamp was, as briefly as is clear. */
export function relativeTime(ts, now = Date.now()) {
  const then = Date.parse(ts);
  const seconds = Math.round((now - then) / 1000);
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  const date = new Date(then);
  if (seconds < 86400) return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return date.toLocaleDateString([], { day: "numeric", month: "short" });
}

/** Creates an element with attributes and children; text goes in as text, never as markup. */
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** The link of a notification when it is a web address; anything else (javascript:, data:) is dropped. */
export function safeLink(link) {
  if (typeof link !== "string") return null;
  try {
    const url = new URL(link, location.href);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}
