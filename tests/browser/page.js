// page.js — the browser test's app: one Herald user over WebSocket with the
// SDK bundle, its sync key in localStorage. The user comes from ?user=,
// the gateway from ?ws=; the token from the test server's /token (the app
// server's part: it holds the tenant secret, the page never does).
// window.app is what the driver (run.mjs) reads and calls.
import { HeraldClient, localStorageStore, webSocket } from "/herald.browser.js";

const q = new URLSearchParams(location.search);
const user = q.get("user");
const $ = (id) => document.getElementById(id);
const app = { user, state: "idle", states: [], received: [], receipts: [], acks: {}, fatal: null };
window.app = app;
$("who").textContent = user;

const client = new HeraldClient({
  connect: webSocket(q.get("ws")),
  token: async () => {
    const r = await fetch(`/token?user=${encodeURIComponent(user)}${q.get("bad") ? "&bad=1" : ""}`);
    if (!r.ok) throw new Error(`token: HTTP ${r.status}`);
    return r.text();
  },
  store: localStorageStore("herald.test."),
  timeoutMs: 5000,
  backoff: { initialMs: 100, maxMs: 1000 },
});
app.client = client;

client.on("state", ({ state, error }) => {
  app.state = state;
  app.states.push(state);
  $("state").textContent = state;
  $("lasterror").textContent = error ? `(${error.message})` : "";
});
client.on("message", (m) => {
  app.received.push({ conv: m.conv, seq: m.seq, pos: m.pos, from: m.from, text: m.text, system: m.system });
  if (m.system) return;
  const li = document.createElement("li");
  li.dataset.conv = m.conv;
  li.dataset.seq = String(m.seq);
  li.textContent = `${m.from}: ${m.text}`;
  $("log").append(li);
});

client.on("receipt", (r) => {
  app.receipts.push(r);
  const li = document.createElement("li");
  li.className = "receipt";
  li.textContent = `✓ ${r.user} read ${r.conv} up to #${r.seq}`;
  $("log").append(li);
});

app.create = async (members) => (await client.createConversation("group", members)).conv;
app.send = async (conv, text, cmid) => {
  const a = await client.send(conv, text, cmid ? { cmid } : {});
  return { seq: a.seq, dup: a.dup };
};
// Starts a send and records its outcome under cmid (for sends that must
// wait out an outage).
app.sendLater = (conv, text, cmid) => {
  client.send(conv, text, { cmid, timeoutMs: 30000 }).then(
    (a) => (app.acks[cmid] = { seq: a.seq, dup: a.dup }),
    (e) => (app.acks[cmid] = { error: e.message }),
  );
};
app.read = (conv, seq) => client.read(conv, seq);
app.stats = () => client.stats;

client.connect().then(
  () => {},
  (e) => {
    app.fatal = e.codeName ?? String(e);
    const el = $("error");
    el.textContent = `Cannot connect: ${e.message}`;
    el.hidden = false;
  },
);
