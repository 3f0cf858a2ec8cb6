#!/usr/bin/env node
// run.mjs — browser/sdk: the TypeScript SDK in a real browser. Starts a
// `heraldd dev` with its WebSocket listener on a free loopback port, serves
// page.html / page.js / the SDK bundle (and /token, the app server's part)
// from a small static server, and drives Debian's Chromium headless with
// playwright-core:
//   1. two users (two browser contexts) in a group exchange messages, and a
//      read receipt;
//   2. a page away and back, then reloaded, resumes from the sync key in its
//      localStorage: what was sent meanwhile arrives once, nothing twice;
//   3. heraldd killed -9 and restarted on the same data dir and ports: both
//      pages reconnect with backoff, a send made during the outage is stored
//      and delivered once;
//   4. a bad token is refused, with a visible error on the page.
// Every wait has a deadline; the whole run is capped at 90 s
// (HERALD_BROWSER_DEADLINE_MS), then heraldd is killed. Prints
// "N passed, N failed"; exit status 1 on any failure.
//
//   node tests/browser/run.mjs            (after npm ci and npm run build in common/js)
//   HERALDD=path/to/heraldd HERALD_CHROMIUM=/usr/bin/chromium node tests/browser/run.mjs
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const js = join(root, "common/js");
const HERALDD = process.env.HERALDD ?? join(root, "build/broker/heraldd");
const CHROMIUM = process.env.HERALD_CHROMIUM ?? "/usr/bin/chromium";
const BUNDLE = join(js, "dist/herald.browser.js");
const RUN_DEADLINE_MS = Number(process.env.HERALD_BROWSER_DEADLINE_MS) || 90000;
const WAIT_MS = 10000;

for (const [what, p] of [["heraldd", HERALDD], ["Chromium", CHROMIUM], ["the SDK bundle (npm run build in common/js)", BUNDLE], ["playwright-core (npm ci in common/js)", join(js, "node_modules/playwright-core")]])
  if (!existsSync(p)) {
    console.error(`browser/sdk: no ${what} at ${p}`);
    process.exit(1);
  }
const { chromium } = createRequire(join(js, "package.json"))("playwright-core");
const { mintToken } = await import(pathToFileURL(join(js, "dist/src/node.js")).href);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;

// N free loopback ports outside the kernel's ephemeral range (tests/freeport.py): an
// outgoing connection of a test running alongside cannot take one before heraldd binds it.
const freePorts = (n) =>
  execFileSync("python3", [join(here, "../freeport.py"), String(n)], { encoding: "utf8", timeout: 10000 }).trim().split("\n").map(Number);

// ---- heraldd dev ------------------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), "herald-browser-"));
const [wsPort, tcpPort] = freePorts(2);
const wsUrl = `ws://127.0.0.1:${wsPort}/ws`;
let dev = null; // { proc, exit }
let env = {};

async function startDev() {
  const envFile = join(dir, "dev.env");
  if (existsSync(envFile)) unlinkSync(envFile);
  const log = openSync(join(dir, "heraldd.log"), "a");
  const proc = spawn(HERALDD, ["dev", "--data", dir, "--config", join(dir, "h.conf"), "--listen", `127.0.0.1:${tcpPort}`, "--mqtt-listen", "", "--http-listen", "", "--log-level", "warn"], { stdio: ["ignore", "ignore", log] });
  const exit = new Promise((r) => proc.once("exit", (code, sig) => r(sig ? sig : code)));
  dev = { proc, exit };
  const end = Date.now() + 15000;
  while (!existsSync(envFile)) {
    if (proc.exitCode !== null || Date.now() > end) throw new Error(`heraldd did not start:\n${readFileSync(join(dir, "heraldd.log"), "utf8")}`);
    await sleep(30);
  }
  await sleep(30);
  env = Object.fromEntries(readFileSync(envFile, "utf8").split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

async function stopDev(signal) {
  if (!dev) return null;
  const d = dev;
  dev = null;
  d.proc.kill(signal);
  const t = setTimeout(() => d.proc.kill("SIGKILL"), 10000);
  const rc = await d.exit;
  clearTimeout(t);
  return rc;
}

// ---- the static server (and the app server's /token) ---------------------------------
const files = {
  "/": ["text/html", join(here, "page.html")],
  "/page.js": ["text/javascript", join(here, "page.js")],
  "/herald.browser.js": ["text/javascript", BUNDLE],
};
const http = createServer((req, res) => {
  const u = new URL(req.url, "http://x");
  if (u.pathname === "/token") {
    const user = u.searchParams.get("user") ?? "";
    let tok;
    try {
      tok = u.searchParams.get("bad") ? "bm90LWEtdG9rZW4.c2lnbmF0dXJl" : mintToken(env.HERALD_SECRET, env.HERALD_TENANT, user, { ttlSeconds: 600 });
    } catch (e) {
      res.writeHead(400).end(String(e));
      return;
    }
    res.writeHead(200, { "content-type": "text/plain", "cache-control": "no-store" }).end(tok);
    return;
  }
  const f = files[u.pathname];
  if (!f) {
    res.writeHead(404).end("not found");
    return;
  }
  res.writeHead(200, { "content-type": f[0], "cache-control": "no-store" }).end(readFileSync(f[1]));
});
await new Promise((r) => http.listen(0, "127.0.0.1", r));
const site = `http://127.0.0.1:${http.address().port}`;
// The WebSocket port on a fixed free port (a restart keeps it), open to this page's origin only.
writeFileSync(join(dir, "h.conf"), `gateway.ws_listen = 127.0.0.1:${wsPort}\ngateway.ws_origins = ${site}\n`);

// ---- checks ----------------------------------------------------------------------------
let browser = null;
const pages = [];
let passed = 0;
let failed = 0;

async function cleanup() {
  await browser?.close().catch(() => {});
  http.close();
  const rc = await stopDev("SIGTERM");
  return rc;
}

// Whatever happens, no heraldd outlives the run.
process.on("exit", () => dev?.proc.kill("SIGKILL"));
const deadline = setTimeout(() => {
  console.log(`FAIL - the run passed its ${RUN_DEADLINE_MS / 1000} s deadline`);
  dump();
  dev?.proc.kill("SIGKILL");
  Promise.race([browser?.close(), sleep(5000)])
    .catch(() => {})
    .finally(() => {
      rmSync(dir, { recursive: true, force: true });
      console.log(`${passed} passed, ${failed + 1} failed`);
      process.exit(1);
    });
}, RUN_DEADLINE_MS);

function dump() {
  for (const p of pages) console.log(`--- console of ${p.label}:\n${p.log.join("\n")}`);
  try {
    console.log(`--- heraldd.log:\n${readFileSync(join(dir, "heraldd.log"), "utf8").slice(-4000)}`);
  } catch {}
}

async function check(name, fn) {
  const t = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   - ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL - ${name}: ${e?.stack ?? e}`);
  }
}

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

async function openPage(label, user, extra = "") {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const log = [];
  page.on("console", (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => log.push(`[pageerror] ${e.message}`));
  const url = `${site}/?user=${user}&ws=${encodeURIComponent(wsUrl)}${extra}`;
  const p = { label, user, ctx, page, log, url };
  pages.push(p);
  await page.goto(url);
  return p;
}

const online = (p) => p.page.waitForFunction(() => window.app?.state === "online", null, { timeout: WAIT_MS });
const received = (p, conv) => p.page.evaluate((c) => window.app.received.filter((m) => m.conv === c && !m.system).map((m) => m.seq), conv);
const waitSeqs = (p, conv, seqs) =>
  p.page.waitForFunction(([c, want]) => want.every((s) => window.app.received.some((m) => m.conv === c && m.seq === s)), [conv, seqs], { timeout: WAIT_MS });
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

try {
  await startDev();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  console.log(`# heraldd dev ${HERALDD}, ws ${wsUrl}; ${browser.version()}; set up in ${elapsed()}`);
  const alice = await openPage("alice", "alice");
  const bob = await openPage("bob", "bob");
  let conv = "";

  await check("two users in a group exchange messages and a read receipt over WebSocket", async () => {
    await Promise.all([online(alice), online(bob)]);
    conv = await alice.page.evaluate(() => window.app.create(["alice", "bob"]));
    const a = await alice.page.evaluate((c) => window.app.send(c, "hello bob", "a-1"), conv);
    const b = await bob.page.evaluate((c) => window.app.send(c, "hi alice", "b-1"), conv);
    for (const p of [alice, bob]) await waitSeqs(p, conv, [a.seq, b.seq]);
    for (const p of [alice, bob]) {
      const items = await p.page.locator(`#log li[data-conv="${conv}"]`).allTextContents();
      assert(same(items, ["alice: hello bob", "bob: hi alice"]), `${p.label}'s page shows ${JSON.stringify(items)}`);
    }
    const again = await alice.page.evaluate((c) => window.app.send(c, "hello bob", "a-1"), conv);
    assert(again.dup && again.seq === a.seq, `the same cmid again: ${JSON.stringify(again)}`);
    // bob reads; alice's page shows the receipt.
    await bob.page.evaluate(([c, s]) => window.app.read(c, s), [conv, b.seq]);
    await alice.page.locator("#log li.receipt", { hasText: `bob read ${conv} up to #${b.seq}` }).waitFor({ timeout: WAIT_MS });
  });

  await check("a page away and back, then reloaded, resumes from its saved key: once each, no gap", async () => {
    const key = await bob.page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("herald.test.")));
    assert(key.length === 1, `bob's key in localStorage: ${key}`);
    await bob.page.goto("about:blank");
    const away = [];
    for (let i = 0; i < 5; i++) away.push((await alice.page.evaluate(([c, i]) => window.app.send(c, `while away ${i}`), [conv, i])).seq);
    await bob.page.goto(bob.url);
    await online(bob);
    await waitSeqs(bob, conv, away);
    const live = (await alice.page.evaluate((c) => window.app.send(c, "back again"), conv)).seq;
    await waitSeqs(bob, conv, [live]);
    await sleep(200);
    let got = await received(bob, conv);
    assert(same(got, [...away, live]), `after coming back bob got ${JSON.stringify(got)}, want ${JSON.stringify([...away, live])}`);
    await bob.page.reload();
    await online(bob);
    const after = (await alice.page.evaluate((c) => window.app.send(c, "after the reload"), conv)).seq;
    await waitSeqs(bob, conv, [after]);
    await sleep(200);
    got = await received(bob, conv);
    assert(same(got, [after]), `after the reload bob got ${JSON.stringify(got)}, want [${after}]`);
    const stats = await bob.page.evaluate(() => window.app.stats());
    console.log(`#   bob after the reload: ${JSON.stringify(stats)}`);
  });

  await check("heraldd killed -9 and restarted: both pages reconnect with backoff; a send from the outage arrives once", async () => {
    const before = await Promise.all([alice, bob].map((p) => p.page.evaluate(() => window.app.states.length)));
    await stopDev("SIGKILL");
    await Promise.all([alice, bob].map((p) => p.page.waitForFunction(() => window.app.state !== "online", null, { timeout: WAIT_MS })));
    await alice.page.evaluate((c) => window.app.sendLater(c, "sent during the outage", "outage-1"), conv);
    await sleep(1200); // a few refused attempts, backing off
    await startDev();
    await Promise.all([online(alice), online(bob)]);
    await alice.page.waitForFunction(() => window.app.acks["outage-1"], null, { timeout: WAIT_MS });
    const ack = await alice.page.evaluate(() => window.app.acks["outage-1"]);
    assert(ack.seq > 0, `the outage send: ${JSON.stringify(ack)}`);
    await waitSeqs(bob, conv, [ack.seq]);
    const next = (await alice.page.evaluate((c) => window.app.send(c, "after the restart"), conv)).seq;
    await waitSeqs(bob, conv, [next]);
    await sleep(200);
    const got = await received(bob, conv);
    assert(got.filter((s) => s === ack.seq).length === 1 && got.filter((s) => s === next).length === 1, `bob got ${JSON.stringify(got)}`);
    assert(new Set(got).size === got.length, `a duplicate: ${JSON.stringify(got)}`);
    const h = await bob.page.evaluate((c) => window.app.client.history(c, { limit: 100 }).then((r) => r.messages.filter((m) => m.text === "sent during the outage").length), conv);
    assert(h === 1, `stored ${h} times`);
    for (const [i, p] of [alice, bob].entries()) {
      const st = (await p.page.evaluate(() => window.app.states)).slice(before[i]);
      const tries = st.filter((s) => s === "connecting").length;
      assert(st[0] === "offline" && st.at(-1) === "online" && tries >= 2, `${p.label}'s states: ${st.join(",")}`);
      console.log(`#   ${p.label}: ${tries} connection attempts across the restart`);
    }
  });

  await check("a bad token is refused with a visible error on the page", async () => {
    const mallory = await openPage("mallory", "mallory", "&bad=1");
    const err = mallory.page.locator("#error");
    await err.waitFor({ state: "visible", timeout: WAIT_MS });
    const text = await err.textContent();
    assert(/UNAUTHORIZED/.test(text ?? ""), `the error shown: ${text}`);
    const state = await mallory.page.evaluate(() => window.app.state);
    assert(state === "closed", `state ${state}`);
    console.log(`#   mallory's page shows: ${text}`);
    if (process.env.HERALD_BROWSER_SHOT) await mallory.page.screenshot({ path: process.env.HERALD_BROWSER_SHOT });
  });
} catch (e) {
  failed++;
  console.log(`FAIL - setup: ${e?.stack ?? e}`);
}

if (failed) dump();
const rc = await cleanup();
clearTimeout(deadline);
if (rc !== 0) {
  failed++;
  console.log(`FAIL - heraldd exited with ${rc} on SIGTERM`);
}
rmSync(dir, { recursive: true, force: true });
console.log(`# ${elapsed()}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
