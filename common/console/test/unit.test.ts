/*
 * unit.test.ts — the console's pure parts: the Send form's checks and the
 * request they build, the token's claims as decoded for display, the list
 * splitting, time formatting and error names. (The screens against the
 * real gateway: tests/browser/console.)
 */
import { encode } from "@msgpack/msgpack";
import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError, errName } from "../src/api.js";
import { fmtTime, splitList } from "../src/dom.js";
import { buildRequest } from "../src/send.js";
import { claimsOf } from "../src/session.js";

const form = { agentid: "hr", touser: "", toparty: "", totag: "", text: "hello", announce: false, msgid: "" };

test("buildRequest: lists split on commas, blanks and |; an optional msgid", () => {
  const r = buildRequest({ ...form, touser: " alice, bob ,carol|dave ", toparty: "sales", totag: "vip, gold", announce: true, msgid: "m-1" });
  assert.deepEqual(r, { agentid: "hr", touser: ["alice", "bob", "carol", "dave"], toparty: ["sales"], totag: ["vip", "gold"], text: "hello", announce: true, msgid: "m-1" });
  const all = buildRequest({ ...form, touser: "@all" });
  assert.ok(typeof all !== "string" && all.touser[0] === "@all" && all.msgid === undefined);
});

test("buildRequest: every bad input is named", () => {
  const cases: [Partial<typeof form>, RegExp][] = [
    [{ agentid: "" }, /app id \(agentid\) is required/],
    [{ agentid: "h r" }, /app id "h r" is not valid/],
    [{ touser: "" }, /no recipients/],
    [{ touser: "alice, b@d!" }, /user id "b@d!" is not valid/],
    [{ touser: "@all, alice" }, /@all stands alone/],
    [{ touser: "x", toparty: "@all" }, /@all goes in the users field/],
    [{ touser: "x", totag: "t".repeat(129) }, /tag id "t+" is not valid/],
    [{ touser: "x", text: "  \n" }, /text is empty/],
    [{ touser: "x", text: "é".repeat(40000) }, /over 64 KiB/],
    [{ touser: "x", msgid: "a/b" }, /message id "a\/b" is not valid/],
  ];
  for (const [v, re] of cases) {
    const r = buildRequest({ ...form, ...v });
    assert.equal(typeof r, "string", JSON.stringify(v));
    assert.match(r as string, re);
  }
});

const b64url = (b: Uint8Array): string => Buffer.from(b).toString("base64url");

test("claimsOf: a Herald token's claims; anything else is null", () => {
  const tok = `${b64url(encode({ ten: "demo", user: "admin", exp: 1900000000, admin: true }))}.${b64url(new Uint8Array(32))}`;
  assert.deepEqual(claimsOf(tok), { tenant: "demo", user: "admin", admin: true, exp: 1900000000 });
  const plain = `${b64url(encode({ ten: "demo", user: "bob", exp: 5 }))}.c2ln`;
  assert.deepEqual(claimsOf(plain), { tenant: "demo", user: "bob", admin: false, exp: 5 });
  for (const bad of ["", "abc", "a.b.c", "bm90LWEtdG9rZW4.c2lnbmF0dXJl", `${b64url(encode([1, 2]))}.x`, `${b64url(encode({ ten: 1, user: "u" }))}.x`, "!!.x"])
    assert.equal(claimsOf(bad), null, bad);
});

test("splitList, fmtTime, errName, ApiError", () => {
  assert.deepEqual(splitList(" a,,b \n c|d "), ["a", "b", "c", "d"]);
  assert.deepEqual(splitList("  "), []);
  assert.equal(fmtTime(1764748800), "2025-12-03 08:00:00Z");
  assert.equal(fmtTime(1764748800123), "2025-12-03 08:00:00Z");
  assert.equal(fmtTime("1764748800"), "2025-12-03 08:00:00Z");
  assert.equal(fmtTime(undefined), "—");
  assert.equal(fmtTime(0), "—");
  assert.equal(fmtTime("soon"), "soon");
  assert.equal(errName(0), "OK");
  assert.equal(errName(3), "UNAUTHORIZED");
  assert.equal(errName(24), "UNAVAILABLE");
  assert.equal(errName(99), "UNKNOWN");
  const e = new ApiError("cluster", 403, 5, "admin only");
  assert.equal(e.message, "FORBIDDEN: admin only");
  assert.ok(e.auth && new ApiError("x", 401, 3, "").auth && !new ApiError("x", 404, 6, "").auth && !new ApiError("x", 0, 18, "").auth);
});
