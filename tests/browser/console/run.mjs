#!/usr/bin/env node
// run.mjs — browser/console: the admin console (common/console/dist) as the
// gateway of a 3-node local cluster serves it, in Debian's Chromium
// (headless, npm playwright-core). deploy/local-cluster.sh brings the
// cluster up on free ports in a temporary directory with
// HERALD_CONSOLE_DIR pointing at the built console (gateway.console_dir);
// the herald CLI adds a department and users, an app and its callback URL
// (a closed loopback port, so every delivery fails). Then:
//   1. a token that is not one, and a user's (not an admin's) token: refused,
//      with the reason on the sign-in screen;
//   2. the admin token: the Cluster screen shows three nodes up, the groups
//      with their leaders and /readyz ready; node 3 killed -9: shown down,
//      then up after its restart;
//   3. the directory: the tenant, a department and a user's card by id (an
//      unknown department: NOT_FOUND); the department tree from the root and the
//      users of a department;
//   4. an app message and an announcement from the app: each answer's msgid
//      and invalid users; then alice answers in her conversation with the app;
//   5. the app's callback deliveries (the nodes give up after two attempts):
//      the URL, an event whose delivery to the closed port failed (attempts,
//      last error), "failed only", redeliver one, redeliver all failed;
//   6. sign-out: back to sign-in, the token gone from sessionStorage.
// A screenshot of each screen goes to HERALD_CONSOLE_SHOTS (default: the
// current directory, which ctest makes the build dir). Every wait has a
// deadline; the run is capped at HERALD_CONSOLE_DEADLINE_MS (default 200 s),
// then the cluster is brought down. Prints "N passed, N failed"; exit
// status 1 on any failure.
//
//   HERALDD=build/broker/heraldd node tests/browser/console/run.mjs
//   (after cd common/console && npm ci && npm run build)
import { execFile, execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../../..");
const consoleDir = join(root, "common/console");
const DIST = join(consoleDir, "dist");
const HERALDD = resolve(process.env.HERALDD ?? join(root, "build/broker/heraldd"));
const HERALD = join(dirname(HERALDD), "herald");
const CHROMIUM = process.env.HERALD_CHROMIUM ?? "/usr/bin/chromium";
const LC = join(root, "deploy/local-cluster.sh");
const SHOTS = resolve(process.env.HERALD_CONSOLE_SHOTS ?? ".");
const RUN_DEADLINE_MS = Number(process.env.HERALD_CONSOLE_DEADLINE_MS) || 200000;
const WAIT_MS = 15000;

for (const [what, p] of [
  ["heraldd", HERALDD],
  ["herald (the CLI, beside heraldd)", HERALD],
  ["Chromium", CHROMIUM],
  ["the built console (cd common/console && npm ci && npm run build)", join(DIST, "index.html")],
  ["playwright-core (npm ci in common/console)", join(consoleDir, "node_modules/playwright-core")],
])
  if (!existsSync(p)) {
    console.error(`browser/console: no ${what} at ${p}`);
    process.exit(1);
  }
const { chromium } = createRequire(join(consoleDir, "package.json"))("playwright-core");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const dir = mkdtempSync(join(tmpdir(), "herald-console-"));
mkdirSync(SHOTS, { recursive: true });
let env = {};
let up = false;
let browser = null;
let passed = 0;
let failed = 0;
const log = [];

function run(file, args, extraEnv, ms) {
  return new Promise((res, rej) =>
    execFile(file, args, { env: { ...process.env, ...extraEnv }, timeout: ms }, (err, out, errout) =>
      err ? rej(new Error(`${file.split("/").pop()} ${args.join(" ")}: ${err.message}\n${out}\n${errout}`)) : res(out.trim()),
    ),
  );
}
const lc = (verb, ms = 120000) => run("bash", [LC, verb, "--data", dir], { HERALD_BIN_DIR: dirname(HERALDD), HERALD_UP_TIMEOUT: "60", HERALD_CONSOLE_DIR: DIST }, ms);
const lcNode = (verb, n) => run("bash", [LC, verb, n, "--data", dir], { HERALD_BIN_DIR: dirname(HERALDD), HERALD_UP_TIMEOUT: "60" }, 90000);
const cli = (...args) =>
  run(HERALD, ["--timeout", "10", ...args], { HERALD_GATEWAY: env.HERALD_GATEWAY, HERALD_TENANT: env.HERALD_TENANT, HERALD_SECRET: env.HERALD_SECRET, HERALD_TOKEN: "" }, 20000);

// N free loopback ports outside the kernel's ephemeral range (tests/freeport.py): an
// outgoing connection of a test running alongside cannot take one before heraldd binds it.
const freePorts = (n) =>
  execFileSync("python3", [join(here, "../../freeport.py"), String(n)], { encoding: "utf8", timeout: 10000 }).trim().split("\n").map(Number);

async function down() {
  if (!up) return;
  up = false;
  await lc("down", 60000).catch((e) => console.log(`# ${e.message}`));
}

function dump() {
  console.log(`--- the page's console:\n${log.join("\n")}`);
  for (const n of ["gateway", "node1"])
    try {
      console.log(`--- ${n}.log (tail):\n${readFileSync(join(dir, `${n}.log`), "utf8").slice(-3000)}`);
    } catch {}
}

const deadline = setTimeout(() => {
  console.log(`FAIL - the run passed its ${RUN_DEADLINE_MS / 1000} s deadline`);
  dump();
  Promise.race([browser?.close(), sleep(5000)])
    .catch(() => {})
    .then(() => down())
    .finally(() => {
      console.log(`# logs kept in ${dir}`);
      console.log(`${passed} passed, ${failed + 1} failed`);
      process.exit(1);
    });
}, RUN_DEADLINE_MS);

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

async function shot(page, name) {
  const path = join(SHOTS, `console-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`#   screenshot ${path}`);
}

const APP = "console-app";
let adminToken = "";
let userToken = "";
let cbUrl = "";
let page = null;
let site = "";

try {
  up = true; // a failed up leaves processes running: down() stops them
  // The configs come from the first up; then callbacks give up after two
  // quick attempts (so an event reaches "failed" within a second), and up again.
  await lc("up", 150000);
  await lc("down", 60000);
  for (const n of [1, 2, 3]) appendFileSync(join(dir, `node${n}.conf`), "callback.max_attempts = 2\ncallback.backoff_ms = 200\n");
  await lc("up", 150000);
  env = Object.fromEntries(
    readFileSync(join(dir, "cluster.env"), "utf8")
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  assert(env.HERALD_HTTP, `cluster.env has no HERALD_HTTP: ${JSON.stringify(Object.keys(env))}`);
  const conf = readFileSync(join(dir, "gateway.conf"), "utf8");
  assert(conf.includes(`gateway.console_dir = ${DIST}`), `gateway.conf has no gateway.console_dir = ${DIST}:\n${conf}`);
  site = `${env.HERALD_HTTP}/console/`;
  console.log(`# cluster up in ${elapsed()}: gateway ${env.HERALD_GATEWAY}, console ${site}`);

  adminToken = await cli("--admin", "token", "--user", "admin", "--ttl", "3600");
  userToken = await cli("token", "--user", "bob", "--ttl", "3600");
  await cli("--admin", "dir", "dept", "add", "sales", "--name", "Sales");
  await cli("--admin", "dir", "user", "add", "alice", "--kind", "internal", "--dept", "sales", "--title", "Account executive", "--name", "Alice Archer");
  await cli("--admin", "dir", "user", "add", "bob", "--kind", "internal", "--dept", "sales", "--name", "Bob Baker");
  await cli("--admin", "dir", "dept", "add", "emea", "--name", "EMEA", "--parent", "sales");
  await cli("--admin", "dir", "user", "add", "carol", "--kind", "external", "--dept", "emea", "--name", "Carol Chen");
  cbUrl = `http://127.0.0.1:${freePorts(1)[0]}/herald-callback`; // nothing listens there
  await cli("--admin", "app", "create", APP);
  await cli("--admin", "app", "callback", APP, "--url", cbUrl);
  console.log(`# directory, app ${APP} and its callback ${cbUrl} set up at ${elapsed()}`);

  const res = await fetch(site);
  const body = await res.text();
  assert(res.status === 200 && body.includes("console.js"), `GET ${site}: ${res.status} ${body.slice(0, 200)}`);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  page = await ctx.newPage();
  page.on("console", (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => log.push(`[pageerror] ${e.message}`));
  console.log(`# ${browser.version()}; set up in ${elapsed()}`);
} catch (e) {
  failed++;
  console.log(`FAIL - setup: ${e?.stack ?? e}`);
}

// The text of the first element matching SEL now, or null (no waiting).
const textNow = (sel) => page.evaluate((s) => document.querySelector(s)?.textContent ?? null, sel);
const signIn = async (token) => {
  await page.fill("#token", token);
  await page.click("#signin-go");
};
const errorShown = async () => {
  const err = page.locator("#signin-error");
  await err.waitFor({ state: "visible", timeout: WAIT_MS });
  return (await err.textContent()) ?? "";
};

if (!failed) {
  await check("a token that is not one, and a user's token, are refused with the reason on the sign-in screen", async () => {
    await page.goto(site);
    await signIn("bm90LWEtdG9rZW4.c2lnbmF0dXJl");
    let text = await errorShown();
    assert(/refused/.test(text) && /UNAUTHORIZED/.test(text) && /HTTP 401/.test(text), `the error shown: ${text}`);
    console.log(`#   a made-up token: ${text}`);
    await shot(page, "bad-token");
    await page.reload();
    await signIn(userToken);
    text = await errorShown();
    assert(/refused/.test(text) && /FORBIDDEN|UNAUTHORIZED/.test(text) && /HTTP 40[13]/.test(text), `the error shown: ${text}`);
    console.log(`#   bob's (not an admin) token: ${text}`);
    const kept = await page.evaluate(() => sessionStorage.length);
    assert(kept === 0 && (await page.locator("#signin").count()) === 1, `after a refusal: ${kept} sessionStorage items, sign-in shown ${await page.locator("#signin").count()}`);
  });

  await check("the admin token: three nodes up, every group led, /readyz ready, refreshed every 2 s", async () => {
    await signIn(adminToken);
    await page.locator("#nodes tbody tr").nth(2).waitFor({ timeout: WAIT_MS });
    await page.waitForFunction(
      () => document.querySelectorAll("#nodes tbody tr").length === 3 && [...document.querySelectorAll("#nodes td.state")].every((td) => td.textContent === "up"),
      null,
      { timeout: WAIT_MS },
    );
    const nodes = await page.locator("#nodes tbody tr").allTextContents();
    const groups = await page.locator("#groups tbody tr").count();
    const unled = await page.locator("#groups td.leader .badge.bad").count();
    const ready = await page.textContent("#readyz");
    const mode = await page.textContent("#cluster-mode");
    assert(groups >= 1 && unled === 0, `${groups} groups shown, ${unled} without a leader`);
    assert(/ready/.test(ready ?? "") && !/not ready/.test(ready ?? ""), `/readyz shows ${ready}`);
    console.log(`#   mode ${mode}; nodes ${JSON.stringify(nodes)}; ${groups} groups; readyz "${ready}"`);
    const first = await page.textContent("#cluster-updated");
    await page.waitForFunction((f) => document.querySelector("#cluster-updated")?.textContent !== f, first, { timeout: 6000 });
    assert((await page.evaluate(() => sessionStorage.length)) === 1, "the token is not in sessionStorage");
    await shot(page, "cluster");
  });

  await check("node 3 killed -9: the Cluster screen shows it down, then up again after its restart", async () => {
    const state3 = () => textNow('#nodes tr[data-node="3"] td.state');
    await lcNode("kill", "3");
    await page.waitForFunction(() => document.querySelector('#nodes tr[data-node="3"] td.state')?.textContent === "down", null, { timeout: WAIT_MS });
    const up = await textNow("#nodes-up");
    assert(up === "2 of 3", `nodes up shown: ${up}`);
    console.log(`#   node 3 killed: shown ${await state3()}, nodes up ${up}`);
    await shot(page, "cluster-node-down");
    await lcNode("restart", "3");
    await page.waitForFunction(() => document.querySelector('#nodes tr[data-node="3"] td.state')?.textContent === "up", null, { timeout: WAIT_MS });
  });

  await check("the directory: the tenant, a department and a user's card by id, an unknown department", async () => {
    await page.click('a[data-screen="directory"]');
    const tenant = await page.textContent("#tenant-name");
    assert(tenant === env.HERALD_TENANT, `tenant shown: ${tenant}, want ${env.HERALD_TENANT}`);
    await page.fill("#dept-find", "sales");
    await page.click("#dept-find-go");
    await page.locator("#dept-card h3", { hasText: "Sales" }).waitFor({ timeout: WAIT_MS });
    await page.fill("#user-find", "alice");
    await page.click("#user-find-go");
    await page.locator("#user-card .userid", { hasText: "alice" }).waitFor({ timeout: WAIT_MS });
    const card = await page.textContent("#user-card");
    assert(/Alice Archer/.test(card ?? "") && /Account executive/.test(card ?? "") && /internal/.test(card ?? "") && /sales/.test(card ?? ""), `alice's card: ${card}`);
    await page.fill("#dept-find", "no-such-dept");
    await page.click("#dept-find-go");
    const missing = await page.locator("#dept-card .error").textContent({ timeout: WAIT_MS });
    assert(/NOT_FOUND/.test(missing ?? ""), `an unknown department shows: ${missing}`);
    console.log(`#   alice's card: ${card}; an unknown department: ${missing}`);
  });

  await check("the directory: the tree from the root, a level opened, a department's users", async () => {
    await page.click('a[data-screen="cluster"]');
    await page.click('a[data-screen="directory"]');
    const sales = page.locator('#dept-tree li[data-dept="sales"] > .name');
    await Promise.race([sales.waitFor({ timeout: WAIT_MS }), page.locator("#dir-error:not([hidden])").waitFor({ timeout: WAIT_MS })]);
    const err = await textNow("#dir-error:not([hidden])");
    assert(!err, `the tree: ${err}`);
    await sales.click();
    await page.locator('#dept-users tr[data-user="alice"] td.name', { hasText: "Alice Archer" }).waitFor({ timeout: WAIT_MS });
    const users = await page.locator("#dept-users tbody tr").allTextContents();
    assert(users.length === 2 && users.every((u) => /^(alice|bob)/.test(u)), `sales shows ${JSON.stringify(users)}`);
    await page.click('#dept-users tr[data-user="alice"] a');
    await page.locator("#user-card .userid", { hasText: "alice" }).waitFor({ timeout: WAIT_MS });
    // One level down, loaded when opened: sales → emea, and its external user.
    await page.click('#dept-tree li[data-dept="sales"] > .toggle');
    await page.locator('#dept-tree li[data-dept="sales"] li[data-dept="emea"] > .name', { hasText: "EMEA" }).click({ timeout: WAIT_MS });
    await page.locator('#dept-users tr[data-user="carol"] td.kind', { hasText: "external" }).waitFor({ timeout: WAIT_MS });
    const parent = await textNow("#dept-card dl dd:nth-of-type(2)");
    assert(parent === "sales", `emea's parent shown: ${parent}`);
    await page.click('#dept-tree li[data-dept="sales"] > .name');
    await page.locator('#dept-users tr[data-user="alice"]').waitFor({ timeout: WAIT_MS });
    console.log(`#   sales: ${JSON.stringify(users)}; emea (parent ${parent}) holds carol, external`);
  });
  await shot(page, "directory");

  await check("an app message and an announcement from the app: the msgid and the invalid user in each answer", async () => {
    await page.click('a[data-screen="send"]');
    const send = async (announce, touser, text) => {
      await page.check(announce ? "#send-kind-announce" : "#send-kind-message");
      await page.fill("#send-agentid", APP);
      await page.fill("#send-touser", touser);
      await page.fill("#send-text", text);
      const before = await textNow("#send-msgid");
      await page.click("#send-go");
      await page.waitForFunction((b) => {
        const m = document.querySelector("#send-msgid");
        return (m && m.textContent !== b) || document.querySelector("#send-error");
      }, before, { timeout: WAIT_MS });
      const err = await textNow("#send-error");
      assert(!err, `the send failed: ${err}`);
      return {
        title: await page.textContent("#send-result h3"),
        msgid: await page.textContent("#send-msgid"),
        sent: await page.textContent("#send-sent"),
        reached: await textNow("#send-reached"),
        invalid: await page.textContent("#send-invaliduser"),
      };
    };
    const m = await send(false, "alice", "Your payslip is ready.");
    assert(m.msgid && m.msgid !== "—" && m.invalid === "none" && m.reached === "1: alice", `the app message's answer: ${JSON.stringify(m)}`);
    console.log(`#   app message: ${JSON.stringify(m)}`);
    const a = await send(true, "alice, bob, ghost", "The office is closed on Friday.");
    assert(a.msgid && a.msgid !== "—" && a.msgid !== m.msgid, `the announcement's msgid: ${JSON.stringify(a)}`);
    assert(a.invalid === "ghost" && a.reached === "2: alice, bob" && /Announcement/.test(a.title ?? ""), `the announcement's answer: ${JSON.stringify(a)}`);
    console.log(`#   announcement: ${JSON.stringify(a)}`);
    await shot(page, "send");
    // alice answers in her conversation with the app: an event for the app's callback.
    const conv = (await cli("--as", "alice", "convs"))
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l))
      .map((c) => c.conv ?? c.id)
      .find((c) => typeof c === "string" && c.startsWith("ap-"));
    assert(conv, "alice has no conversation with the app (ap-…)");
    await cli("--as", "alice", "send", conv, "thanks, got it");
  });

  await check("the app's callback: its URL, a delivery to the closed port failing with its error, failed only, redeliver", async () => {
    await page.click('a[data-screen="apps"]');
    const row = page.locator(`#apps tr[data-app="${APP}"]`);
    await row.waitFor({ timeout: WAIT_MS });
    await row.locator("td.url", { hasText: cbUrl }).waitFor({ timeout: WAIT_MS }).catch(() => {});
    const listed = await textNow(`#apps tr[data-app="${APP}"] td.url`);
    assert(listed === cbUrl, `the app list shows callback ${listed}, want ${cbUrl}`);
    await row.locator("button.open").click();
    await page.locator("#event-url", { hasText: cbUrl }).waitFor({ timeout: WAIT_MS });
    // The deliveries refresh every 2 s: the event's two POSTs to the closed
    // port fail within a second and it is counted failed.
    await page.waitForFunction(() => Number(document.querySelector("#count-failed")?.textContent) >= 1, null, { timeout: 30000 });
    const counts = await textNow("#event-counts");
    const hint = await textNow("#events-hint:not([hidden])");
    console.log(`#   all events: ${JSON.stringify(await page.locator("#event-table tbody tr").allTextContents().catch(() => []))}; counts: ${counts}; ${hint ?? "no hint"}`);
    await shot(page, "callbacks");
    // "failed only": the failed events, each with its attempts and last error.
    await page.check("#events-failed");
    // The filtered list has replaced the full one (which has failed rows too,
    // beside pending ones) once every row is a failed one.
    await page.waitForFunction(() => {
      const trs = [...document.querySelectorAll("#event-table tbody tr")];
      return trs.length > 0 && trs.every((tr) => tr.dataset.state === "failed");
    }, null, { timeout: WAIT_MS });
    const rows = await page.locator("#event-table tbody tr").evaluateAll((trs) =>
      trs.map((tr) => ({ id: tr.dataset.event, state: tr.dataset.state, type: tr.children[1]?.textContent, conv: tr.children[3]?.textContent, attempts: tr.querySelector(".attempts")?.textContent, error: tr.querySelector(".last-error")?.textContent })),
    );
    console.log(`#   failed only: ${JSON.stringify(rows)}`);
    assert(rows.every((r) => r.state === "failed" && r.attempts === "2" && r.error && r.error !== "—"), `failed only lists ${JSON.stringify(rows)}`);
    const ev = rows.find((r) => r.type === "message") ?? rows[0];
    await shot(page, "callbacks-failed-only");
    // Redeliver that one: requeued, tried twice more, failed again.
    await page.locator(`#event-table tr[data-event="${ev.id}"] button.redeliver`).click();
    const note = page.locator("#events-note");
    await note.waitFor({ state: "visible", timeout: WAIT_MS });
    const text = await note.textContent();
    assert(text === `event ${ev.id}: requeued 1`, `after redeliver: ${text}`);
    console.log(`#   redeliver: ${text}`);
    // Failed again (the server's word: the page may still show the old state),
    // then the page refreshed to show it.
    const end = Date.now() + 30000;
    for (;;) {
      const st = JSON.parse(await cli("--admin", "app", "events", APP, "--failed")).events?.find((e) => e.id === ev.id)?.state;
      if (st === "failed") break;
      assert(Date.now() < end, `event ${ev.id} is ${st} 30 s after its redelivery`);
      await sleep(200);
    }
    await page.click("#events-refresh");
    await page.locator(`#event-table tr[data-event="${ev.id}"][data-state="failed"]`).waitFor({ timeout: WAIT_MS });
    // Every failed event again.
    const nFailed = await page.locator('#event-table tbody tr[data-state="failed"]').count();
    await page.click("#events-redeliver-failed");
    await page.locator("#events-note", { hasText: /failed event/ }).waitFor({ timeout: WAIT_MS });
    const all = await textNow("#events-note");
    assert(new RegExp(`^requeued ${nFailed} failed events?$`).test(all ?? ""), `redeliver all failed (${nFailed} listed): ${all}`);
    console.log(`#   redeliver all failed: ${all}`);
  });

  await check("sign-out returns to sign-in and forgets the token", async () => {
    await page.click("#signout");
    await page.locator("#signin").waitFor({ timeout: WAIT_MS });
    assert((await page.evaluate(() => sessionStorage.length)) === 0, "the token is still in sessionStorage");
    await page.reload();
    await page.locator("#signin").waitFor({ timeout: WAIT_MS });
  });

  await check("the page ran under the gateway's Content-Security-Policy with no violation and no script error", async () => {
    const bad = log.filter((l) => /Content Security Policy|Refused to|\[pageerror\]/.test(l));
    assert(bad.length === 0, `the page's console: ${bad.join(" | ")}`);
  });
}

if (failed) dump();
await browser?.close().catch(() => {});
await down();
clearTimeout(deadline);
if (failed) console.log(`# logs kept in ${dir}`);
else rmSync(dir, { recursive: true, force: true });
console.log(`# ${elapsed()}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
