/*
 * cluster.test.ts — the SDK against a 3-node cluster's gateway
 * (deploy/local-cluster.sh, mutual TLS links): receivers over WebSocket
 * and TCP, two senders retrying with the same cmid through a kill -9 of a
 * node and a kill -9 + restart of the gateway, one receiver away and back
 * with its saved key. Every acknowledged message must reach every receiver
 * exactly once, in per-conversation order, and be stored once.
 *
 * HERALDD names heraldd (its directory has herald too); WebSocket clients
 * need a WebSocket in Node (node --experimental-websocket on v20), else
 * every client uses TCP. Bounded: the cluster calls have timeouts, the
 * senders a retry cap, the waits deadlines.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type Connector, HeraldClient, type KeyStore, isHeraldError, memoryStore, webSocket } from "../src/index.js";
import { mintToken, tcp } from "../src/node.js";
import { HERALDD, sleep, waitFor } from "./harness.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const LC = join(root, "deploy/local-cluster.sh");
const dir = mkdtempSync(join(tmpdir(), "herald-js-cluster-"));
const hasWs = typeof (globalThis as { WebSocket?: unknown }).WebSocket === "function";
let env: Record<string, string> = {};
let keep = false;

function lc(args: string[], ms = 120000): Promise<string> {
  return new Promise((res, rej) =>
    execFile("bash", [LC, ...args, "--data", dir], { env: { ...process.env, HERALD_BIN_DIR: dirname(HERALDD), HERALD_UP_TIMEOUT: "60" }, timeout: ms }, (err, out, errout) =>
      err ? rej(new Error(`local-cluster.sh ${args.join(" ")}: ${err.message}\n${out}\n${errout}`)) : res(out),
    ),
  );
}

before(async () => {
  await lc(["up"]);
  env = Object.fromEntries(
    readFileSync(join(dir, "cluster.env"), "utf8")
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
});

after(async () => {
  await lc(["down"], 60000).catch((e) => console.error(e));
  if (!keep) rmSync(dir, { recursive: true, force: true });
  else console.error(`# logs kept in ${dir}`);
});

const RETRY = new Set(["UNAVAILABLE", "TIMEOUT", "CLOSED", "BUSY", "NOT_LEADER", "IO"]);

test("through a node's kill -9 and the gateway's restart: every acked message once, in order, stored once", async () => {
  keep = true;
  const run = Date.now().toString(36);
  const connect = (ws: boolean): Connector => (ws && hasWs ? webSocket(env.HERALD_WS!) : tcp(env.HERALD_GATEWAY!));
  const mk = (user: string, ws: boolean, store: KeyStore): HeraldClient =>
    new HeraldClient({
      connect: connect(ws),
      token: mintToken(env.HERALD_SECRET!, env.HERALD_TENANT!, user),
      store,
      timeoutMs: 8000,
      backoff: { initialMs: 100, maxMs: 1000 },
    });
  const users = ["r1", "r2", "r3", "r4"].map((u) => `${u}-${run}`);
  const senders = ["s1", "s2"].map((u) => `${u}-${run}`);
  const stores = users.map(() => memoryStore());
  const got: Map<string, number[]>[] = users.map(() => new Map());
  const listen = (c: HeraldClient, i: number): void => {
    c.on("message", (m) => {
      if (m.system) return;
      const l = got[i]!.get(m.conv) ?? [];
      l.push(m.seq);
      got[i]!.set(m.conv, l);
    });
  };
  const recv = users.map((u, i) => mk(u, i % 2 === 0, stores[i]!));
  recv.forEach(listen);
  const send = senders.map((u, i) => mk(u, i === 0, memoryStore()));
  const all = (): HeraldClient[] => [...recv, ...send];
  try {
    await Promise.all(all().map((c) => c.connect()));
    const convs: string[] = [];
    for (let i = 0; i < 6; i++) convs.push((await send[i % 2]!.createConversation("group", [...users, ...senders])).conv);
    const acked = new Map<string, number[]>(convs.map((c) => [c, []]));
    let retries = 0;
    // Each sender: messages round the conversations (n of them, or until
    // stop() says so, a few ms apart), each retried with its cmid until acked.
    const next = [0, 0];
    const blast = (n: number, stop?: () => boolean) =>
      Promise.all(
        send.map(async (s, k) => {
          for (let sent = 0; stop ? !stop() && sent < 5000 : sent < n; sent++) {
            const i = next[k]!++;
            if (stop) await sleep(5);
            const conv = convs[(i * 2 + k) % convs.length]!;
            for (let attempt = 0; ; attempt++) {
              try {
                const a = await s.send(conv, `${k}:${i}`, { cmid: `${run}-${k}-${i}`, timeoutMs: 15000 });
                acked.get(conv)!.push(a.seq);
                break;
              } catch (e) {
                if (!isHeraldError(e) || !RETRY.has(e.codeName) || attempt >= 40) throw e;
                retries++;
                await sleep(250);
              }
            }
          }
        }),
      );
    await blast(60);
    // A node killed -9 while messages flow, then back.
    let stop = false;
    let flowing = blast(0, () => stop);
    await sleep(300);
    await lc(["kill", "1"]);
    await sleep(1500);
    await lc(["restart", "1"]);
    await sleep(300);
    stop = true;
    await flowing;
    // One receiver away (its key saved); the gateway killed -9 and restarted
    // while the senders go on (their sends wait for the reconnect).
    // What it was handed before and after adds up: each message once.
    recv[0]!.close();
    stop = false;
    flowing = blast(0, () => stop);
    await sleep(300);
    await lc(["kill", "gateway"]);
    await waitFor("the clients see the gateway gone", () => all().slice(1).every((c) => c.state !== "online"), 10000);
    await sleep(500);
    await lc(["restart", "gateway"]);
    recv[0] = mk(users[0]!, true, stores[0]!);
    listen(recv[0], 0);
    await recv[0].connect();
    await sleep(300);
    stop = true;
    await flowing;
    await blast(30);
    const want = (_i: number, c: string): number[] => acked.get(c)!;
    const done = (): boolean => users.every((_, i) => convs.every((c) => (got[i]!.get(c) ?? []).length >= want(i, c).length));
    await waitFor("every acked message at every receiver", done, 30000).catch(() => {});
    for (const [i, u] of users.entries())
      for (const c of convs) {
        const w = [...want(i, c)].sort((a, b) => a - b);
        assert.deepEqual(got[i]!.get(c) ?? [], w, `${u} in ${c}: exactly the acked seqs, once, in order`);
      }
    // Stored once: history holds each cmid's text once.
    for (const c of convs) {
      const texts: string[] = [];
      for (let after = 0, more = true; more; ) {
        const h = await send[0]!.history(c, { after, limit: 100 });
        texts.push(...h.messages.filter((m) => !m.system).map((m) => m.text));
        more = h.more;
        after = h.messages.at(-1)?.seq ?? after;
      }
      assert.equal(new Set(texts).size, texts.length, `${c}: a message stored twice`);
      assert.equal(texts.length, acked.get(c)!.length);
    }
    const st = recv.map((c) => c.stats);
    console.log(`# ${[...acked.values()].reduce((n, l) => n + l.length, 0)} acked, ${retries} send retries; receivers: ${JSON.stringify(st)}`);
    assert.ok(st.slice(1).every((s) => s.reconnects >= 1), "every connected receiver reconnected after the gateway's restart");
    keep = false;
  } finally {
    for (const c of all()) c.close();
  }
});
