/*
 * tls.test.ts — tcp("tls://HOST:PORT", { ca }) against a heraldd dev whose
 * client port speaks TLS (gateway.tls_cert, certificates made by
 * deploy/cluster-certs.sh): messages and pushes flow; a certificate from
 * another CA, or for another host name, is refused with UNAUTHORIZED at
 * once.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { HeraldClient, isHeraldError, memoryStore } from "../src/index.js";
import { tcp } from "../src/node.js";
import { Dev, waitFor } from "./harness.js";

const certs = resolve(dirname(fileURLToPath(import.meta.url)), "../../../../deploy/cluster-certs.sh");
const dir = mkdtempSync(join(tmpdir(), "herald-js-tls-"));
let dev: Dev;
let port = "";

before(async () => {
  for (const [ca, args] of [["ca", ["server", join(dir, "ca"), "localhost"]], ["other", ["server", join(dir, "other"), "localhost"]]] as const) {
    execFileSync("bash", [certs, "init", join(dir, ca)], { stdio: "ignore" });
    execFileSync("bash", [certs, ...args], { stdio: "ignore" });
  }
  dev = await Dev.start({ config: [`gateway.tls_cert = ${join(dir, "ca/localhost.pem")}`] });
  port = dev.gateway.slice(dev.gateway.lastIndexOf(":") + 1);
});

after(async () => {
  await dev?.close();
  rmSync(dir, { recursive: true, force: true });
});

function client(addr: string, ca: string): HeraldClient {
  return new HeraldClient({ connect: tcp(addr, { ca: readFileSync(ca) }), token: dev.token("tess"), store: memoryStore(), timeoutMs: 5000 });
}

test("over TLS: connect, send, the push comes back", async () => {
  const c = client(`tls://localhost:${port}`, join(dir, "ca/ca.pem"));
  try {
    await c.connect();
    const { conv } = await c.createConversation("group", ["tess"]);
    const got: string[] = [];
    c.on("message", (m) => {
      if (m.conv === conv && !m.system) got.push(m.text);
    });
    await c.send(conv, "secret plans");
    await waitFor("the push over TLS", () => got.length === 1);
    assert.deepEqual(got, ["secret plans"]);
  } finally {
    c.close();
  }
});

test("a certificate from another CA, or for another name, is refused with UNAUTHORIZED at once", async () => {
  for (const [addr, ca] of [
    [`tls://localhost:${port}`, join(dir, "other/ca.pem")],
    [`tls://127.0.0.1:${port}`, join(dir, "ca/ca.pem")],
  ] as const) {
    const c = client(addr, ca);
    const t0 = Date.now();
    await assert.rejects(c.connect(), (e) => isHeraldError(e, "UNAUTHORIZED") && /certificate does not verify/.test(e.message));
    assert.ok(Date.now() - t0 < 3000, "no retries");
    assert.equal(c.state, "closed");
  }
});
