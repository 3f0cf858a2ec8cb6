/*
 * dev.test.ts — the SDK against a real `heraldd dev` over TCP (or, with
 * HERALD_JS_TRANSPORT=ws, over its WebSocket listener): the
 * handshake and refusals, two users exchanging messages, the requests
 * (history, read receipts, the conversation list, DND, urgent confirm,
 * recall), catch-up from a saved key with nothing lost or repeated, and a
 * kill -9 + restart survived by reconnecting, with a send in flight stored
 * exactly once.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { ErrorCode, HeraldClient, type KeyStore, type Message, isHeraldError, memoryStore, webSocket } from "../src/index.js";
import { tcp } from "../src/node.js";
import { Dev, HERALDD, sleep, waitFor } from "./harness.js";

let dev: Dev;
const clients: HeraldClient[] = [];
/* HERALD_JS_TRANSPORT=ws: the same tests over gateway.ws_listen with the
 * webSocket() connector (Node's WebSocket: node --experimental-websocket on v20). */
const overWs = process.env.HERALD_JS_TRANSPORT === "ws";

function client(user: string, store: KeyStore | null = memoryStore(), extra: { token?: string } = {}): HeraldClient {
  const c = new HeraldClient({
    connect: overWs ? webSocket(dev.ws) : tcp(dev.gateway),
    token: extra.token ?? dev.token(user),
    store,
    timeoutMs: 5000,
    backoff: { initialMs: 50, maxMs: 500 },
  });
  clients.push(c);
  return c;
}

/* Collects the messages of conv a client is handed from now on (the push
 * of a conversation's creation may come before or after its answer). */
function collect(c: HeraldClient, conv: string): Message[] {
  const got: Message[] = [];
  c.on("message", (m) => {
    if (m.conv === conv) got.push(m);
  });
  return got;
}

before(async () => {
  dev = await Dev.start();
});

after(async () => {
  for (const c of clients) c.close();
  await dev.close();
});

describe(`heraldd dev over ${overWs ? "WebSocket" : "TCP"}`, () => {
  test("the transport is there", () => {
    assert.ok(!overWs || typeof (globalThis as { WebSocket?: unknown }).WebSocket === "function", "a WebSocket (node --experimental-websocket)");
  });

  test("connect: WELCOME names the token's user and tenant", async () => {
    const c = client("alice");
    await c.connect();
    assert.equal(c.user, "alice");
    assert.equal(c.tenant, dev.tenant);
    assert.equal(c.admin, false);
    assert.equal(c.state, "online");
    assert.ok((await c.ping()) >= 0);
    c.close();
    assert.equal(c.state, "closed");
  });

  test("a bad token is refused with UNAUTHORIZED, at once and for good", async () => {
    const c = client("mallory", memoryStore(), { token: "not.a-token" });
    const states: string[] = [];
    c.on("state", (s) => {
      states.push(s.state);
    });
    const t0 = Date.now();
    await assert.rejects(c.connect(), (e) => isHeraldError(e, "UNAUTHORIZED") && /invalid token/.test(e.message));
    assert.ok(Date.now() - t0 < 2000, "refused without retrying");
    assert.equal(c.state, "closed");
    assert.deepEqual(states.slice(-1), ["closed"]);
    // A token signed with another secret is just as bad.
    const forged = client("mallory", memoryStore(), {
      token: (await import("../src/node.js")).mintToken("ab".repeat(32), dev.tenant, "mallory"),
    });
    await assert.rejects(forged.connect(), (e) => isHeraldError(e, "UNAUTHORIZED"));
  });

  test("two users in a group: send, push to both, ack seq, dup on the same cmid", async () => {
    const a = client("ann");
    const b = client("bob");
    await Promise.all([a.connect(), b.connect()]);
    const conv = (await a.createConversation("group", ["ann", "bob"])).conv;
    const gotA = collect(a, conv);
    const gotB = collect(b, conv);
    const ack = await a.send(conv, "hello bob", { cmid: "c-hello-1" });
    assert.equal(ack.dup, false);
    assert.ok(ack.seq >= 2); // seq 1: the system message of the creation
    const again = await a.send(conv, "hello bob", { cmid: "c-hello-1" });
    assert.equal(again.dup, true);
    assert.equal(again.seq, ack.seq);
    const back = await b.send(conv, new TextEncoder().encode("hi ann"));
    await waitFor("both pushes at both", () => gotA.filter((m) => !m.system).length >= 2 && gotB.filter((m) => !m.system).length >= 2);
    await sleep(100);
    for (const got of [gotA, gotB]) {
      const texts = got.filter((m) => !m.system).map((m) => `${m.from}:${m.seq}:${m.text}`);
      assert.deepEqual(texts, [`ann:${ack.seq}:hello bob`, `bob:${back.seq}:hi ann`]);
    }
    assert.ok(gotB.every((m) => m.pos > 0 && m.group >= 0));
    // Errors carry the Herald code.
    await assert.rejects(b.send("no-such-conv", "x"), (e) => isHeraldError(e, "NOT_FOUND") && e.cmid !== undefined);
    await assert.rejects(b.history(""), (e) => isHeraldError(e, "INVAL"));
  });

  test("history, read receipts, the conversation list, DND, urgent confirm, recall", async () => {
    const a = client("cat");
    const b = client("dan");
    await Promise.all([a.connect(), b.connect()]);
    const info = await a.createConversation("group", ["cat", "dan"], { id: "g-features" });
    assert.equal(info.conv, "g-features");
    assert.deepEqual(info.members, ["cat", "dan"]);
    assert.equal((await b.conversation("g-features")).owner, "cat");
    const receipts: { user: string; seq: number }[] = [];
    a.on("receipt", (r) => {
      if (r.conv === "g-features") receipts.push(r);
    });
    const s1 = await a.send("g-features", "one");
    const s2 = await a.send("g-features", "two");

    const h = await b.history("g-features", { after: 0, limit: 10 });
    assert.deepEqual(h.messages.filter((m) => !m.system).map((m) => m.text), ["one", "two"]);
    const page = await b.history("g-features", { after: 0, limit: 1 });
    assert.equal(page.more, true);
    assert.equal(page.messages.length, 1);

    const list = await b.conversations();
    const entry = list.conversations.find((c) => c.conv === "g-features");
    assert.ok(entry, "the conversation is listed");
    assert.equal(entry.kind, "group");
    assert.equal(entry.members, 2);
    assert.equal(entry.unread, 3); // the creation message and two texts
    assert.equal(entry.last?.text, "two");

    assert.equal(await b.read("g-features", s2.seq), s2.seq);
    await waitFor("dan's receipt at cat", () => receipts.some((r) => r.user === "dan" && r.seq === s2.seq));
    const rc = await a.receipts("g-features", s1.seq);
    assert.deepEqual(rc.read.sort(), ["cat", "dan"]);
    assert.deepEqual(rc.unread, []);
    const after = (await b.conversations()).conversations.find((c) => c.conv === "g-features");
    assert.equal(after?.unread, 0);

    // DND: pushes come silent while it is on.
    assert.deepEqual(await b.dnd("status"), { on: false, until: null });
    assert.deepEqual(await b.dnd("on"), { on: true, until: null });
    const gotB = collect(b, "g-features");
    const s3 = await a.send("g-features", "shh");
    await waitFor("the silent push", () => gotB.some((m) => m.seq === s3.seq));
    assert.equal(gotB.find((m) => m.seq === s3.seq)?.silent, true);
    const until = Date.now() + 3600_000;
    const on = await b.dnd("on", until);
    assert.equal(on.on, true);
    assert.ok(on.until !== null && Math.abs(on.until - until) < 1000);
    assert.deepEqual(await b.dnd("off"), { on: false, until: null });

    // Urgent (DING): not silenced, confirmed by the recipient.
    await b.dnd("on");
    const u = await a.send("g-features", "fire drill", { urgent: true });
    await waitFor("the urgent push", () => gotB.some((m) => m.seq === u.seq));
    const pushed = gotB.find((m) => m.seq === u.seq)!;
    assert.equal(pushed.urgent, true);
    assert.equal(pushed.silent, false);
    assert.deepEqual(await a.urgentStatus("g-features", u.seq), { confirmed: [], pending: ["dan"] });
    await b.confirm("g-features", u.seq);
    assert.deepEqual(await a.urgentStatus("g-features", u.seq), { confirmed: ["dan"], pending: [] });
    const hu = await b.history("g-features", { after: u.seq - 1, limit: 1 });
    assert.equal(hu.messages[0]?.confirmed, true);
    await b.dnd("off");

    // Recall: a tombstone in history, a system message to everyone.
    const ev = await a.recall("g-features", s1.seq);
    assert.ok(ev > u.seq);
    const hr = await b.history("g-features", { after: s1.seq - 1, limit: 1 });
    assert.equal(hr.messages[0]?.recalled, true);
    assert.equal(hr.messages[0]?.text, "");
    await assert.rejects(b.recall("g-features", s2.seq), (e) => isHeraldError(e, "FORBIDDEN"));
    await assert.rejects(b.conversation("nope-nope"), (e) => isHeraldError(e) && e.code === ErrorCode.NOT_FOUND);
  });

  test("a saved key resumes: what was sent while away arrives once, in order", async () => {
    const store = memoryStore();
    const s = client("sue");
    const b1 = client("eve", store);
    await Promise.all([s.connect(), b1.connect()]);
    const conv = (await s.createConversation("group", ["sue", "eve"])).conv;
    const got1 = collect(b1, conv);
    const first = await s.send(conv, "before");
    await waitFor("the first push", () => got1.some((m) => m.seq === first.seq));
    await sleep(50); // the store is written after the listeners ran
    b1.close();
    const sent: number[] = [];
    for (let i = 0; i < 30; i++) sent.push((await s.send(conv, `away ${i}`)).seq);
    const b2 = client("eve", store);
    const got2 = collect(b2, conv);
    await b2.connect();
    const live = await s.send(conv, "live");
    await waitFor("every missed message and the live one", () => got2.some((m) => m.seq === live.seq));
    await sleep(200);
    assert.deepEqual(
      got2.map((m) => m.seq),
      [...sent, live.seq],
      "each once, in order, nothing from before the key",
    );
    assert.equal(b2.stats.duplicates >= 0, true);
  });

  test("kill -9 and restart: the client reconnects with backoff; a send in flight is stored once", async () => {
    const s = client("sam");
    const r = client("rex");
    await Promise.all([s.connect(), r.connect()]);
    const conv = (await s.createConversation("group", ["sam", "rex"])).conv;
    const got = collect(r, conv);
    const before = await s.send(conv, "before the crash");
    await waitFor("the push before the crash", () => got.some((m) => m.seq === before.seq));
    const states: string[] = [];
    r.on("state", (e) => {
      states.push(e.state);
    });

    await dev.kill();
    await waitFor("both offline", () => s.state !== "online" && r.state !== "online", 5000);
    // Sent while the server is down: waits for the reconnect, then goes out once.
    const pending = s.send(conv, "across the restart", { cmid: "c-restart-1", timeoutMs: 20000 });
    await sleep(300);
    await dev.restart();
    const ack = await pending;
    await waitFor("both online again", () => s.state === "online" && r.state === "online", 10000);
    await waitFor("the push after the restart", () => got.some((m) => m.seq === ack.seq));
    const again = await s.send(conv, "across the restart", { cmid: "c-restart-1" });
    assert.equal(again.dup, true);
    assert.equal(again.seq, ack.seq);
    const h = await r.history(conv);
    assert.equal(h.messages.filter((m) => m.text === "across the restart").length, 1);
    assert.ok(states.includes("offline") && states.includes("connecting") && states.at(-1) === "online", states.join(","));
    assert.ok(r.stats.reconnects >= 1);
    assert.deepEqual(
      got.map((m) => m.seq),
      [...new Set(got.map((m) => m.seq))],
      "no message twice",
    );
  });

  test("the README's example (examples/hello.mjs) runs as printed", async () => {
    const js = join(dirname(fileURLToPath(import.meta.url)), "../..");
    const file = join(js, "examples/hello.mjs");
    const readme = readFileSync(join(js, "README.md"), "utf8");
    assert.ok(readme.includes("```js\n" + readFileSync(file, "utf8") + "```"), "README.md shows examples/hello.mjs verbatim");
    const out = await new Promise<string>((res, rej) =>
      execFile(process.execPath, [file], { env: { ...process.env, HERALD_GATEWAY: dev.gateway, HERALD_TENANT: dev.tenant, HERALD_SECRET: dev.secret }, timeout: 20000 }, (err, stdout, stderr) =>
        err ? rej(new Error(`${err.message}\n${stderr}`)) : res(stdout),
      ),
    );
    assert.match(out, new RegExp(`^connected as alice@${dev.tenant}\nack (\\S+) seq 2\npush \\1 seq 2 from alice: hello\n$`));
  });

  test("the saved key is libherald's: the CLI resumes from an SDK key, the SDK from a CLI key", async () => {
    const cli = join(dirname(HERALDD), "herald");
    assert.ok(existsSync(cli), `the herald CLI beside heraldd (${cli})`);
    const run = (args: string[]): Promise<string> =>
      new Promise((res, rej) =>
        execFile(cli, ["--as", "ivy", ...args], { env: { ...process.env, HERALD_GATEWAY: dev.gateway, HERALD_TENANT: dev.tenant, HERALD_SECRET: dev.secret }, timeout: 20000 }, (err, stdout, stderr) =>
          err ? rej(new Error(`herald ${args.join(" ")}: ${err.message}\n${stderr}`)) : res(stdout),
        ),
      );
    const s = client("sol");
    const store = memoryStore();
    const v = client("ivy", store);
    await Promise.all([s.connect(), v.connect()]);
    const conv = (await s.createConversation("group", ["sol", "ivy"])).conv;
    const got = collect(v, conv);
    const first = await s.send(conv, "seen by the SDK");
    await waitFor("the SDK got it", () => got.some((m) => m.seq === first.seq));
    await sleep(50);
    v.close();
    // SDK key → a state file → herald sub: exactly what came after.
    const state = join(dev.dir, "ivy.state");
    writeFileSync(state, Buffer.from(store.keys.get(`${dev.tenant}/ivy`)!, "base64"));
    const a = await s.send(conv, "for the CLI 1");
    const b = await s.send(conv, "for the CLI 2");
    const lines = (await run(["sub", "--state", state, "--count", "2", "--timeout", "10"])).trim().split("\n");
    assert.deepEqual(lines.map((l) => JSON.parse(l).seq), [a.seq, b.seq], `the CLI printed ${lines.join(" | ")}`);
    assert.ok(first.seq < a.seq);
    // The CLI's saved key → the SDK: only what came after the CLI stopped.
    const c = await s.send(conv, "for the SDK again");
    const back = memoryStore({ [`${dev.tenant}/ivy`]: readFileSync(state).toString("base64") });
    const v2 = client("ivy", back);
    const got2 = collect(v2, conv);
    await v2.connect();
    await waitFor("the message after the CLI", () => got2.length >= 1);
    await sleep(150);
    assert.deepEqual(got2.map((m) => m.seq), [c.seq], "nothing the CLI had, nothing twice");
  });
});
