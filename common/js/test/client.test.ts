/*
 * client.test.ts — HeraldClient against a scripted server (fake.ts): the
 * sync-key filter (duplicates, pv gaps and their repair by SYNC, retries
 * with backoff, the gap event), saved keys and paged catch-up, the key
 * advancing only after the listeners are done, request matching and
 * errors, deadlines, reconnects with backoff re-sending SEND with its
 * cmid, and fatal refusals.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ErrorCode, HeraldClient, type Message, SyncKey, isHeraldError, memoryStore } from "../src/index.js";
import { FrameType } from "../src/protocol.js";
import { FakeServer, deliver, stored } from "./fake.js";
import { sleep, waitFor } from "./harness.js";

function setup(opts: { timeoutMs?: number; seed?: Record<string, string> } = {}) {
  const server = new FakeServer();
  const store = memoryStore(opts.seed);
  const c = new HeraldClient({
    connect: server.connector,
    token: "tok",
    store,
    timeoutMs: opts.timeoutMs ?? 3000,
    backoff: { initialMs: 40, maxMs: 400 },
  });
  const got: Message[] = [];
  c.on("message", (m) => {
    got.push(m);
  });
  return { server, store, c, got };
}

const savedPos = (store: ReturnType<typeof memoryStore>, g: number): number => {
  const k = store.keys.get("demo/u1");
  return k ? SyncKey.load(k).get(g) : -1;
};

test("no saved key: the client adopts WELCOME's position, takes what follows, drops duplicates", async () => {
  const { server, store, c, got } = setup();
  const p = c.connect();
  const link = await server.link(0);
  const hello = await link.welcome([1, 10, 2, 4]);
  assert.equal(hello.tok, "tok");
  assert.equal(hello.v, 1);
  await p;
  assert.equal(c.user, "u1");
  assert.equal(savedPos(store, 1), 10);
  link.push(deliver("c", 7, 1, 11, 10));
  link.push(deliver("c", 7, 1, 11, 10)); // the same again
  link.push(deliver("c", 8, 1, 9, 8)); // older than the key
  link.push(deliver("d", 3, 2, 5, 2)); // pv below the key: next in line
  await waitFor("two messages", () => got.length === 2);
  await sleep(30);
  assert.deepEqual(got.map((m) => [m.conv, m.seq, m.pos, m.text]), [["c", 7, 11, "m7"], ["d", 3, 5, "m3"]]);
  assert.equal(c.stats.duplicates, 2);
  assert.equal(savedPos(store, 1), 11);
  assert.equal(savedPos(store, 2), 5);
  assert.equal(link.sent.filter((f) => f.t === FrameType.SYNC).length, 0, "no SYNC without a gap");
  c.close();
});

test("a gap (pv past the key) runs SYNC from the key; a short answer is retried; order is kept", async () => {
  const { server, c, got } = setup();
  const p = c.connect();
  const link = await server.link(0);
  await link.welcome([1, 11]);
  await p;
  link.push(deliver("c", 9, 1, 15, 13)); // 12 and 13 are missing
  const s1 = await link.next(FrameType.SYNC);
  assert.deepEqual(s1.sg, [1, 11]);
  // The answer overtook nothing yet: it stops at 13, the push proved 15.
  link.reply(s1, { t: FrameType.SYNC_RESULT, msgs: [stored("c", 7, 1, 12), stored("c", 8, 1, 13)], sg: [1, 13] });
  const s2 = await link.next(FrameType.SYNC);
  assert.deepEqual(s2.sg, [1, 13]);
  link.reply(s2, { t: FrameType.SYNC_RESULT, msgs: [stored("c", 9, 1, 15)], sg: [1, 15] });
  await waitFor("three messages", () => got.length === 3);
  link.push(deliver("c", 10, 1, 16, 15));
  await waitFor("four messages", () => got.length === 4);
  assert.deepEqual(got.map((m) => m.seq), [7, 8, 9, 10]);
  assert.equal(c.stats.gaps, 1);
  assert.ok(c.stats.syncRetries >= 1);
  await sleep(50);
  assert.equal(link.sent.filter((f) => f.t === FrameType.SYNC).length, 2, "the gap is closed: no more SYNC");
  c.close();
});

test("a gap SYNC cannot fill is retried with backoff and reported once as a gap event", async () => {
  const { server, c, got } = setup({ timeoutMs: 400 });
  const gaps: { group: number; pos: number }[] = [];
  c.on("gap", (g) => {
    gaps.push(g);
  });
  const p = c.connect();
  const link = await server.link(0);
  await link.welcome([3, 1]);
  await p;
  link.push(deliver("c", 5, 3, 9, 8));
  const times: number[] = [];
  const t0 = Date.now();
  while (Date.now() - t0 < 700) {
    let s;
    try {
      s = await link.next(FrameType.SYNC, 900);
    } catch {
      break;
    }
    times.push(Date.now());
    link.reply(s, { t: FrameType.SYNC_RESULT, sg: [3, 1] }); // never has it
  }
  await waitFor("the gap event", () => gaps.length === 1, 2000);
  assert.deepEqual(gaps[0], { group: 3, pos: 9 });
  assert.equal(got.length, 0, "nothing skipped");
  assert.ok(times.length >= 4, `retried (${times.length} SYNCs)`);
  const d = times.slice(1).map((t, i) => t - times[i]!);
  assert.ok(d.at(-1)! > d[1]!, `the waits grow: ${d.join(",")}`);
  assert.equal(c.stats.gapsUnfilled, 1);
  c.close();
});

test("a saved key: SYNC on connect, paged while more, the key saved past the answer", async () => {
  const seed = { "demo/u1": (() => { const k = new SyncKey(); k.raise(1, 5); return k.save(); })() };
  const { server, store, c, got } = setup({ seed });
  const p = c.connect();
  const link = await server.link(0);
  await link.welcome([1, 20]);
  await p;
  const s1 = await link.next(FrameType.SYNC);
  assert.deepEqual(s1.sg, [1, 5], "from the saved key, not WELCOME's");
  link.reply(s1, { t: FrameType.SYNC_RESULT, msgs: [stored("a", 1, 1, 6), stored("b", 1, 1, 7)], sg: [1, 7], more: true });
  const s2 = await link.next(FrameType.SYNC);
  assert.deepEqual(s2.sg, [1, 7]);
  link.reply(s2, { t: FrameType.SYNC_RESULT, msgs: [stored("a", 2, 1, 8)], sg: [1, 20] });
  await waitFor("three messages", () => got.length === 3);
  await waitFor("the key saved at 20", () => savedPos(store, 1) === 20);
  assert.deepEqual(got.map((m) => `${m.conv}${m.seq}`), ["a1", "b1", "a2"]);
  c.close();
});

test("the saved key passes a message only once its listener's promise is done", async () => {
  const server = new FakeServer();
  const store = memoryStore();
  const c = new HeraldClient({ connect: server.connector, token: "tok", store, timeoutMs: 3000 });
  let release!: () => void;
  const seen: number[] = [];
  c.on("message", (m) => {
    seen.push(m.seq);
    return new Promise<void>((r) => (release = r));
  });
  const p = c.connect();
  const link = await server.link(0);
  await link.welcome([1, 1]);
  await p;
  link.push(deliver("c", 1, 1, 2, 1));
  link.push(deliver("c", 2, 1, 3, 2));
  await waitFor("the first message", () => seen.length === 1);
  await sleep(30);
  assert.equal(savedPos(store, 1), 1, "not yet: the listener is busy");
  assert.deepEqual(seen, [1], "the next waits");
  release();
  await waitFor("the second message", () => seen.length === 2);
  assert.equal(savedPos(store, 1), 2);
  release();
  await waitFor("the key at 3", () => savedPos(store, 1) === 3);
  // Closing with an event queued leaves the key before it.
  link.push(deliver("c", 3, 1, 4, 3));
  link.push(deliver("c", 4, 1, 5, 4));
  await waitFor("the third message", () => seen.length === 3);
  c.close();
  release();
  await sleep(30);
  assert.equal(savedPos(store, 1), 3);
  assert.deepEqual(seen, [1, 2, 3]);
});

test("requests: answers by rid, ERROR by ref fails only that request, events mapped", async () => {
  const { server, c } = setup();
  const p = c.connect();
  const link = await server.link(0);
  await link.welcome([]);
  await p;
  const receipts: unknown[] = [];
  const reminds: unknown[] = [];
  const escalations: unknown[] = [];
  c.on("receipt", (r) => {
    receipts.push(r);
  });
  c.on("remind", (r) => {
    reminds.push(r);
  });
  c.on("escalate", (r) => {
    escalations.push(r);
  });
  const a = c.send("c", "one", { cmid: "m1", urgent: true });
  const b = c.history("c", { after: 3, limit: 2 });
  const fa = await link.next(FrameType.SEND);
  const fb = await link.next(FrameType.HISTORY);
  assert.deepEqual([fa.conv, fa.cmid, new TextDecoder().decode(fa.body), fa.flags], ["c", "m1", "one", 2]);
  assert.deepEqual([fb.after, fb.limit], [3, 2]);
  assert.notEqual(fa.rid, fb.rid);
  // Answered out of order; an ERROR for the SEND.
  link.reply(fb, { t: FrameType.HISTORY_RESULT, msgs: [stored("c", 4, 1, 0)], more: true });
  link.push({ t: FrameType.ERROR, code: ErrorCode.NOT_MEMBER, msg: "not a member of c", ref: fa.rid });
  await assert.rejects(a, (e) => isHeraldError(e, "NOT_MEMBER") && e.text === "not a member of c" && e.cmid === "m1");
  const h = await b;
  assert.equal(h.more, true);
  assert.equal(h.messages[0]?.seq, 4);
  assert.equal(c.state, "online");
  link.push({ t: FrameType.RECEIPT, conv: "c", user: "bob", seq: 4 });
  link.push({ t: FrameType.REMIND, op: "remind", conv: "c", seq: 2, user: "u1", cnt: 1 });
  link.push({ t: FrameType.REMIND, op: "escalate", conv: "c", seq: 3, user: "u1", cnt: 3, mem: ["bob"] });
  await waitFor("three events", () => receipts.length + reminds.length + escalations.length === 3);
  assert.deepEqual(receipts, [{ conv: "c", user: "bob", seq: 4 }]);
  assert.deepEqual(reminds, [{ conv: "c", seq: 2, user: "u1", count: 1 }]);
  assert.deepEqual(escalations, [{ conv: "c", seq: 3, user: "u1", count: 3, pending: ["bob"] }]);
  // Local argument checks never reach the wire.
  await assert.rejects(c.read("c", 0), (e) => isHeraldError(e, "INVAL"));
  await assert.rejects(c.send("", "x"), (e) => isHeraldError(e, "INVAL"));
  c.close();
  await assert.rejects(c.ping(), (e) => isHeraldError(e, "CLOSED"));
});

test("a frame over the server's cap fails locally with TOO_BIG; the connection stays", async () => {
  const { server, c } = setup();
  const p = c.connect();
  const link = await server.link(0);
  const hello = await link.next(FrameType.HELLO);
  link.reply(hello, { t: FrameType.WELCOME, user: "u1", ten: "demo", maxf: 200 });
  await p;
  await assert.rejects(c.send("c", "x".repeat(300)), (e) => isHeraldError(e, "TOO_BIG"));
  assert.equal(link.sent.filter((f) => f.t === FrameType.SEND).length, 0);
  const ping = c.ping();
  link.reply(await link.next(FrameType.PING), { t: FrameType.PONG });
  await ping;
  assert.equal(c.state, "online");
  c.close();
});

test("reconnect with backoff: SEND goes again with its cmid, others fail CLOSED, the key catches up", async () => {
  const { server, c, got } = setup({ timeoutMs: 5000 });
  const p = c.connect();
  const l0 = await server.link(0);
  await l0.welcome([1, 3]);
  await p;
  const sent = c.send("c", "hi", { cmid: "keep-me" });
  const created = c.createConversation("group", ["u1", "u2"]);
  const f0 = await l0.next(FrameType.SEND);
  await l0.next(FrameType.CONV);
  const states: string[] = [];
  c.on("state", (s) => {
    states.push(s.state);
  });
  server.down = true;
  const t0 = Date.now();
  l0.drop();
  await assert.rejects(created, (e) => isHeraldError(e, "CLOSED") && /outcome is unknown/.test(e.message));
  await waitFor("three refused attempts", () => server.attempts >= 4, 4000);
  server.down = false;
  const l1 = await server.link(1, 4000);
  assert.ok(Date.now() - t0 >= 40 * 0.75 + 80 * 0.75 + 160 * 0.75 - 20, "waited with backoff");
  await l1.welcome([1, 6]);
  const sync = await l1.next(FrameType.SYNC);
  assert.deepEqual(sync.sg, [1, 3], "catch up from our key, not WELCOME's");
  l1.reply(sync, { t: FrameType.SYNC_RESULT, msgs: [stored("c", 1, 1, 5)], sg: [1, 6] });
  const f1 = await l1.next(FrameType.SEND);
  assert.equal(f1.cmid, "keep-me");
  assert.equal(f1.cmid, f0.cmid);
  l1.reply(f1, { t: FrameType.ACK, conv: "c", seq: 1, ts: 5, dup: true });
  const ack = await sent;
  assert.deepEqual([ack.seq, ack.dup, ack.cmid], [1, true, "keep-me"]);
  await waitFor("the missed message", () => got.length === 1);
  assert.equal(c.stats.reconnects, 1);
  assert.deepEqual(states.filter((s, i) => s !== states[i - 1]).slice(0, 2), ["offline", "connecting"]);
  assert.equal(states.at(-1), "online");
  c.close();
});

test("an unanswered request times out and breaks the connection; the client comes back", async () => {
  const { server, c } = setup({ timeoutMs: 200 });
  const p = c.connect();
  const l0 = await server.link(0);
  await l0.welcome([]);
  await p;
  await assert.rejects(c.ping(), (e) => isHeraldError(e, "TIMEOUT"));
  const l1 = await server.link(1, 2000);
  await l1.welcome([]);
  await waitFor("online again", () => c.state === "online");
  assert.ok(l0.closed, "the old connection was closed");
  c.close();
});

test("a malformed frame from the server breaks the connection (PROTOCOL); the client reconnects", async () => {
  const { server, c } = setup();
  const errors: number[] = [];
  c.on("state", (s) => {
    if (s.error) errors.push(s.error.code);
  });
  const p = c.connect();
  const l0 = await server.link(0);
  await l0.welcome([]);
  await p;
  // A DELIVER whose seq is a string.
  l0.push({ t: FrameType.DELIVER, m: { conv: "c", seq: "x" as unknown as number } });
  await server.link(1, 2000);
  assert.deepEqual(errors.slice(0, 1), [ErrorCode.PROTOCOL]);
  c.close();
});

test("a refused token is fatal: connect rejects with the code, no reconnect", async () => {
  const { server, c } = setup();
  const p = c.connect();
  const l0 = await server.link(0);
  await l0.next(FrameType.HELLO);
  l0.push({ t: FrameType.ERROR, code: ErrorCode.UNAUTHORIZED, msg: "invalid token" });
  await assert.rejects(p, (e) => isHeraldError(e, "UNAUTHORIZED") && e.message === "UNAUTHORIZED: invalid token");
  assert.equal(c.state, "closed");
  await sleep(200);
  assert.equal(server.attempts, 1);
});

test("a server that stays down: connect() rejects with TIMEOUT naming the last error", async () => {
  const { server, c } = setup({ timeoutMs: 300 });
  server.down = true;
  await assert.rejects(c.connect(), (e) => isHeraldError(e, "TIMEOUT") && /connection refused/.test(e.message));
  assert.equal(c.state, "closed");
  assert.ok(server.attempts >= 2);
});

test("an unreadable saved key is refused (INVAL), not silently replaced", async () => {
  const { server, c } = setup({ seed: { "demo/u1": "bm90IGEga2V5" } });
  const p = c.connect();
  const l0 = await server.link(0);
  await l0.welcome([1, 3]);
  await assert.rejects(p, (e) => isHeraldError(e, "INVAL") && /saved sync key/.test(e.message));
});

test("an attempt that neither opens nor fails ends at the deadline; the next one goes on", async () => {
  const { server, c } = setup({ timeoutMs: 300 });
  const p = c.connect();
  const l0 = await server.link(0);
  await l0.welcome([]);
  await p;
  server.hang = true;
  l0.drop();
  await waitFor("a hanging attempt", () => server.attempts >= 2, 2000);
  const t = Date.now();
  await waitFor("a second attempt after the deadline", () => server.attempts >= 3, 2000);
  assert.ok(Date.now() - t >= 200, "not before the deadline");
  server.hang = false;
  const l1 = await server.link(1, 3000);
  await l1.welcome([]);
  await waitFor("online", () => c.state === "online");
  c.close();
});

test("sync(): an explicit catch-up resolves once its SYNC is answered and the messages queued", async () => {
  const { server, c, got } = setup();
  const p = c.connect();
  const l0 = await server.link(0);
  await l0.welcome([2, 4]);
  await p;
  let done = false;
  const s = c.sync().then(() => {
    done = true;
  });
  const f = await l0.next(FrameType.SYNC);
  assert.deepEqual(f.sg, [2, 4]);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(done, false, "waits for the answer");
  l0.reply(f, { t: FrameType.SYNC_RESULT, msgs: [stored("c", 3, 2, 5)], sg: [2, 5] });
  await s;
  await waitFor("the synced message", () => got.length === 1);
  assert.equal(got[0]?.pos, 5);
  c.close();
});
