// A real `tidings serve` for the JavaScript client's tests, tokens signed with its secret, the
// fault proxy of docs/CLIENTS.md, and polling with a deadline.

import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const BINARY = process.env.TIDINGS_BINARY ?? join(ROOT, ".build/debug/tidings");

/** Reads lines of a child's stdout; `next()` resolves with the next one. */
function lines(child) {
  const queue = [];
  const waiting = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (waiting.length) waiting.shift()(line);
    else queue.push(line);
  });
  return {
    next: () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((done) => waiting.push(done))),
    all: queue,
  };
}

/** One `tidings serve` on a store directory of its own, with a known JWT secret. */
export class Server {
  static async start({ directory, port = 0, secret } = {}) {
    const server = new Server();
    server.directory = directory ?? mkdtempSync(join(tmpdir(), "tidings-js-"));
    server.ownsDirectory = directory === undefined;
    server.secret = secret ?? randomBytes(32).toString("hex");
    server.child = spawn(BINARY, [
      "serve", "--data", server.directory, "--port", String(port), "--sync", "normal", "--log-level", process.env.TIDINGS_TEST_LOG_LEVEL ?? "error",
    ], { env: { ...process.env, TIDINGS_JWT_SECRET: server.secret }, stdio: ["ignore", "pipe", process.env.TIDINGS_TEST_LOG_LEVEL ? "inherit" : "ignore"] });
    server.exited = new Promise((done) => server.child.once("exit", done));
    const line = await Promise.race([lines(server.child).next(), server.exited.then(() => "exited")]);
    if (!line.includes("listening on")) throw new Error(`tidings serve did not start: ${line}`);
    server.url = line.trim().split(/\s+/).pop();
    server.port = Number(server.url.split(":").pop());
    return server;
  }

  /** A token of `role` for `sub`, expiring `ttlSeconds` from now (negative: in the past). */
  token(role, sub, ttlSeconds = 3600) {
    const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const head = encode({ alg: "HS256", typ: "JWT" });
    const body = encode({ sub, role, exp: Math.floor(Date.now() / 1000) + ttlSeconds });
    const signature = createHmac("sha256", this.secret).update(`${head}.${body}`).digest("base64url");
    return `${head}.${body}.${signature}`;
  }

  /** SIGKILL: the crash a client must ride out. */
  async kill() {
    this.child.kill("SIGKILL");
    await this.exited;
  }

  async stop({ keep = false } = {}) {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGTERM");
      await this.exited;
    }
    if (this.ownsDirectory && !keep) rmSync(this.directory, { recursive: true, force: true });
  }
}

/** clients/testing/fault_proxy.py in front of `target`; `log` holds its line per request. */
export class FaultProxy {
  static async start(target, { dropAnswers = 0, answer503 = 0 } = {}) {
    const proxy = new FaultProxy();
    proxy.child = spawn("python3", [
      join(ROOT, "clients/testing/fault_proxy.py"), "--target", `127.0.0.1:${target.port}`,
      "--drop-answers", String(dropAnswers), "--answer-503", String(answer503),
    ], { stdio: ["ignore", "pipe", "inherit"] });
    proxy.output = lines(proxy.child);
    const first = await proxy.output.next();
    proxy.url = first.trim().split(/\s+/).pop();
    return proxy;
  }

  /** The lines so far: "503", "dropped 201", "relayed 400", ... */
  get log() {
    return this.output.all;
  }

  stop() {
    this.child.kill("SIGTERM");
  }
}

/** Polls `condition` until it returns something truthy; fails naming `what`. */
export async function waitFor(condition, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await condition();
    if (last) return last;
    await new Promise((done) => setTimeout(done, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

export function created(userID, notificationID, extra = {}) {
  return { type: "notification.created", user_id: userID, data: { notification_id: notificationID, title: "T", ...extra } };
}
