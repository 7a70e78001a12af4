// The admin and audit console at `/console`: store figures and a chart of them, a live tail of
// the `all` stream, log verification, projection rebuild, and the filtered history with export.

import { TimeChart } from "./chart.js";
import { element } from "./pages.js";
import { setUpSignIn } from "./signin.js";
import { memoryCursorStore, TidingsClient, TidingsError } from "./tidings.js";

const TOKEN_KEY = "tidings.console.token";
const STATS_INTERVAL_MS = 2000;
const TAIL_KEEP = 200;
const HISTORY_PAGE = 100;

const $ = (id) => document.getElementById(id);
const number = (n) => Number(n).toLocaleString("en");
const errorText = (error) => (error instanceof TidingsError ? error.text : error.message);

let session = null; // { token, role, client }
let statsTimer = null;
let lastStats = null; // { t, events }
let chart = null;
let tail = null;
let lastVerify = null;
let rebuildTimer = null;
let historyNext = null;
let historyQuery = "";

// MARK: Signing in

function open(token, claims) {
  session = { token, role: claims.role, client: new TidingsClient({ token }) };
  $("console").hidden = false;
  const admin = claims.role === "admin";
  for (const id of ["rebuild", "projection-verify"]) $(id).disabled = !admin;
  if (!admin) $("rebuild-state").textContent = "Rebuild and projection checks need an admin token.";
  chart = new TimeChart($("chart"), 5 * 60 * 1000);
  updateExportCommand();
  refreshStats();
  if (admin) showRebuild();
  searchHistory();
}

function close() {
  clearInterval(statsTimer);
  clearTimeout(rebuildTimer);
  statsTimer = null;
  tail?.stop();
  tail = null;
  lastStats = null;
  session = null;
  $("console").hidden = true;
}

/** Any answer of 401 means the token is no longer good: back to the form, saying why. */
async function signingOutOn401(operation) {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof TidingsError && error.status === 401) signOut(`${error.text}; sign in again`);
    throw error;
  }
}

function call(method, path, body) {
  return signingOutOn401(() => session.client.request(method, path, body));
}

// MARK: Store figures and the chart

async function refreshStats() {
  if (!session) return;
  try {
    const stats = await call("GET", "/v1/stats");
    $("stats-error").textContent = "";
    $("stat-events").textContent = number(stats.events);
    $("stat-users").textContent = number(stats.users);
    $("stat-blocks").textContent = number(stats.blocks);
    $("stat-raw").textContent = bytes(stats.raw_bytes);
    $("stat-stored").textContent = bytes(stats.stored_bytes);
    $("stat-ratio").textContent = `${stats.compression_ratio.toFixed(2)} : 1`;
    $("stat-connections").textContent = number(stats.live_connections);
    const now = Date.now();
    if (lastStats) {
      const seconds = (now - lastStats.t) / 1000;
      const appends = Math.max(0, stats.events - lastStats.events) / seconds;
      chart.add({ t: now, appends, connections: stats.live_connections });
    }
    lastStats = { t: now, events: stats.events };
    // The tail starts at the head the first figures name, so it shows what happens from now on.
    if (!tail) startTail(stats.head);
  } catch (error) {
    $("stats-error").textContent = `Store figures: ${errorText(error)}`;
  }
  if (session && statsTimer === null) statsTimer = setInterval(refreshStats, STATS_INTERVAL_MS);
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

// MARK: The live tail

function startTail(head) {
  tail = session.client.stream({
    stream: "all",
    cursorStore: memoryCursorStore(head),
    onEvent: addTailRow,
    // Another store under the same address: go on from its head.
    onReset: () => $("tail").replaceChildren(),
    onState: (state, detail) => {
      const status = $("tail-status");
      status.dataset.state = state;
      status.textContent = {
        connecting: "Connecting…",
        replaying: "Catching up…",
        live: "Live",
        reconnecting: `Reconnecting in ${((detail.delayMs ?? 0) / 1000).toFixed(1)} s (${detail.reason})…`,
        stopped: detail.error ? `Stopped: ${detail.error.text}` : "Paused",
      }[state];
      $("tail-error").textContent = state === "stopped" && detail.error ? detail.error.text : "";
      if (detail.error?.closeCode === 4401) signOut(`${detail.error.text}; sign in again`);
    },
  });
  tail.start();
}

function addTailRow(event) {
  const body = $("tail");
  body.prepend(
    element(
      "tr", { "data-seq": event.seq },
      element("td", {}, number(event.seq)),
      element("td", {}, element("time", { datetime: event.ts }, new Date(event.ts).toLocaleTimeString())),
      element("td", {}, event.type.replace("notification.", "")),
      element("td", {}, event.user_id),
      element("td", {}, event.data.notification_id ?? (event.data.up_to_seq ? `up to ${event.data.up_to_seq}` : "all")),
    ),
  );
  while (body.children.length > TAIL_KEEP) body.lastElementChild.remove();
}

function toggleTail() {
  if (!tail) return;
  if (tail.running) {
    tail.stop();
    $("tail-pause").textContent = "Resume";
  } else {
    // Resumes from the last event shown: what happened while paused is replayed first.
    tail.start();
    $("tail-pause").textContent = "Pause";
  }
}

// MARK: Verifying the log

async function verifyLog(event) {
  event.preventDefault();
  const seq = $("checkpoint-seq").value.trim();
  const hash = $("checkpoint-hash").value.trim();
  const query = seq || hash ? `?seq=${encodeURIComponent(seq)}&hash=${encodeURIComponent(hash)}` : "";
  $("verify-error").textContent = "";
  $("verify-result").hidden = true;
  const status = $("verify-status");
  status.dataset.state = "running";
  status.textContent = "Verifying the whole chain…";
  $("verify").disabled = true;
  const started = performance.now();
  try {
    const result = await call("GET", `/v1/log/verify${query}`);
    lastVerify = result;
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    status.dataset.state = result.ok ? "done" : "failed";
    status.textContent = result.ok ? `Intact, checked in ${seconds} s` : `DAMAGED, found in ${seconds} s`;
    const rows = [
      ["Result", result.ok ? "ok: the chain and every block check out" : "damage found", result.ok ? "good" : "bad"],
      ["Events", number(result.events)],
      ["Blocks", number(result.blocks)],
      ["Head seq", number(result.head_seq)],
      ["Head hash", result.head_hash, "mono"],
    ];
    if (result.first_bad_seq !== undefined) rows.push(["First bad seq", number(result.first_bad_seq), "bad"]);
    if (result.checkpoint_ok !== undefined) {
      rows.push([
        "Checkpoint",
        result.checkpoint_ok ? `holds: the log still has that prefix unchanged` : "does NOT hold: that prefix changed or is missing",
        result.checkpoint_ok ? "good" : "bad",
      ]);
    }
    $("verify-result").replaceChildren(
      ...rows.flatMap(([name, value, style]) => [element("dt", {}, name), element("dd", { class: style }, value)]),
    );
    $("verify-result").hidden = false;
    $("use-head").disabled = false;
  } catch (error) {
    status.dataset.state = "failed";
    status.textContent = "Not verified";
    $("verify-error").textContent = errorText(error);
  } finally {
    $("verify").disabled = false;
  }
}

function useHeadAsCheckpoint() {
  if (!lastVerify) return;
  $("checkpoint-seq").value = String(lastVerify.head_seq);
  $("checkpoint-hash").value = lastVerify.head_hash;
  $("checkpoint-seq").focus();
}

// MARK: The projection

async function startRebuild() {
  $("projection-error").textContent = "";
  try {
    const answer = await call("POST", "/v1/admin/projections/rebuild", {});
    showJob(answer.job);
  } catch (error) {
    $("projection-error").textContent = errorText(error);
  }
  pollRebuild();
}

async function showRebuild() {
  try {
    showJob((await call("GET", "/v1/admin/projections/rebuild")).job);
  } catch (error) {
    $("projection-error").textContent = errorText(error);
  }
}

async function pollRebuild() {
  clearTimeout(rebuildTimer);
  if (!session) return;
  try {
    const job = (await call("GET", "/v1/admin/projections/rebuild")).job;
    showJob(job);
    if (job && job.state === "running") rebuildTimer = setTimeout(pollRebuild, 250);
  } catch (error) {
    $("projection-error").textContent = errorText(error);
  }
}

/** A rebuild's three steps: where each starts on the bar (about their share of the time) and
 * what `processed` and `total` count in it. */
const REBUILD_PHASES = {
  reading: { from: 0, to: 0.4, step: 1, text: "reading the log", unit: "events" },
  writing: { from: 0.4, to: 0.9, step: 2, text: "writing the new tables", unit: "rows" },
  swapping: { from: 0.9, to: 1, step: 3, text: "swapping them in", unit: "events" },
};

function showJob(job) {
  const state = $("rebuild-state");
  const progress = $("rebuild-progress");
  if (!job) {
    state.dataset.state = "none";
    state.textContent = "No rebuild since the server started";
    return;
  }
  const phase = REBUILD_PHASES[job.phase] ?? REBUILD_PHASES.reading;
  const within = job.total ? Math.min(job.processed / job.total, 1) : 0;
  progress.max = 1000;
  progress.value = job.state === "done" ? 1000 : Math.round(1000 * (phase.from + (phase.to - phase.from) * within));
  state.dataset.state = job.state;
  switch (job.state) {
    case "running":
      state.textContent =
        `running, step ${phase.step} of 3, ${phase.text}: ` +
        `${number(job.processed)} of ${number(job.total)} ${phase.unit} (${Math.floor(100 * within)}%)`;
      break;
    case "done": {
      const seconds = ((Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000).toFixed(2);
      state.textContent = `done: ${number(job.total)} events in ${seconds} s, finished ${new Date(job.finished_at).toLocaleTimeString()}`;
      break;
    }
    case "failed":
      state.textContent = `failed while ${phase.text}: ${job.error ?? "no cause given"}`;
      break;
  }
  $("rebuild").disabled = job.state === "running" || session?.role !== "admin";
}

async function verifyProjection() {
  $("projection-error").textContent = "";
  $("projection-result").textContent = "Comparing…";
  try {
    const result = await call("POST", "/v1/admin/projections/verify", {});
    const shown = result.mismatches.slice(0, 5).map((m) => `${m.user_id} ${m.field}: live ${m.live}, rebuilt ${m.rebuilt}`);
    $("projection-result").textContent = result.ok
      ? `The projection matches a fresh rebuild (${number(result.users_checked)} users checked).`
      : `MISMATCH in ${result.mismatches.length} place(s) of ${number(result.users_checked)} users: ${shown.join("; ")}`;
  } catch (error) {
    $("projection-result").textContent = "";
    $("projection-error").textContent = errorText(error);
  }
}

// MARK: History and export

/** The filter of the history form as a query string (without `after` and `limit`). */
function historyFilter() {
  const query = new URLSearchParams();
  const user = $("history-user").value.trim();
  if (user) query.set("user_id", user);
  for (const box of document.querySelectorAll('#history-form input[name="type"]:checked')) query.append("type", box.value);
  for (const [field, name] of [["history-since", "since"], ["history-until", "until"]]) {
    const value = $(field).value;
    if (!value) continue;
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) throw new Error(`${name} is not a date and time`);
    query.set(name, date.toISOString());
  }
  return query;
}

async function searchHistory(event) {
  event?.preventDefault();
  $("history-error").textContent = "";
  try {
    historyQuery = historyFilter().toString();
  } catch (error) {
    $("history-error").textContent = error.message;
    return;
  }
  updateExportCommand();
  $("history").replaceChildren();
  historyNext = null;
  await loadHistory();
}

async function loadHistory() {
  $("history-more").hidden = true;
  $("history-search").disabled = true;
  try {
    // A filtered page may come back empty with more to look at: keep reading a few pages before
    // asking the user to press "Load more".
    for (let round = 0; round < 20; round++) {
      const after = historyNext ? `&after=${encodeURIComponent(historyNext)}` : "";
      const page = await call("GET", `/v1/events?limit=${HISTORY_PAGE}${after}${historyQuery ? "&" + historyQuery : ""}`);
      for (const event of page.events) $("history").append(historyRow(event));
      historyNext = page.next_cursor;
      $("history-more").hidden = !page.has_more;
      if (page.events.length > 0 || !page.has_more) break;
    }
    const shown = $("history").children.length;
    $("history-count").textContent = `${number(shown)} event${shown === 1 ? "" : "s"} shown${$("history-more").hidden ? "" : ", more after them"}`;
  } catch (error) {
    $("history-error").textContent = errorText(error);
  } finally {
    $("history-search").disabled = false;
  }
}

function historyRow(event) {
  return element(
    "tr", {},
    element("td", {}, number(event.seq)),
    element("td", {}, element("time", { datetime: event.ts }, new Date(event.ts).toLocaleString())),
    element("td", {}, event.type.replace("notification.", "")),
    element("td", {}, event.user_id),
    element("td", { class: "data" }, JSON.stringify(event.data)),
  );
}

function updateExportCommand() {
  const url = `${location.origin}/v1/events${historyQuery ? "?" + historyQuery : ""}`;
  $("export-command").textContent =
    `curl -H "Authorization: Bearer $TOKEN" -H 'Accept: application/x-ndjson' '${url}' > tidings-export.ndjson`;
}

/**
 * Downloads every matching event as NDJSON. A plain link cannot carry the bearer token (and a
 * token in the address would leak into logs and history), so the page fetches the export with
 * the token, counting as it streams, then hands the file to the browser.
 */
async function exportHistory() {
  $("history-error").textContent = "";
  let query;
  try {
    query = historyFilter().toString();
  } catch (error) {
    $("history-error").textContent = error.message;
    return;
  }
  const button = $("history-export");
  button.disabled = true;
  try {
    const path = `/v1/events${query ? "?" + query : ""}`;
    const response = await signingOutOn401(() =>
      session.client.requestRaw("GET", path, { accept: "application/x-ndjson" }),
    );
    const reader = response.body.getReader();
    const chunks = [];
    let lines = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      for (const byte of value) if (byte === 10) lines += 1;
      $("history-count").textContent = `Exporting… ${number(lines)} events`;
    }
    const file = new Blob(chunks, { type: "application/x-ndjson" });
    const link = element("a", { href: URL.createObjectURL(file), download: `tidings-export-${new Date().toISOString().replace(/[:.]/g, "-")}.ndjson` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    $("history-count").textContent = `Exported ${number(lines)} events (${bytes(file.size)})`;
  } catch (error) {
    $("history-error").textContent = `Export: ${errorText(error)}`;
  } finally {
    button.disabled = false;
  }
}

// MARK: Start

$("tail-pause").addEventListener("click", toggleTail);
$("tail-clear").addEventListener("click", () => $("tail").replaceChildren());
$("verify-form").addEventListener("submit", verifyLog);
$("use-head").addEventListener("click", useHeadAsCheckpoint);
$("rebuild").addEventListener("click", startRebuild);
$("projection-verify").addEventListener("click", verifyProjection);
$("history-form").addEventListener("submit", searchHistory);
$("history-more").addEventListener("click", loadHistory);
$("history-export").addEventListener("click", exportHistory);
addEventListener("resize", () => chart?.draw());
const signOut = setUpSignIn({
  storageKey: TOKEN_KEY,
  roles: ["admin", "auditor"],
  wrongRole: (role) => `the console needs an admin or auditor token; this one has the ${role} role`,
  probe: (token) => new TidingsClient({ token }).request("GET", "/v1/stats"),
  open,
  close,
});
