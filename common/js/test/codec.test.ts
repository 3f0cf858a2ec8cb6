/*
 * codec.test.ts — the frame codec and the sync key: round trips, every
 * kind of bad input refused with PROTOCOL / TOO_BIG (never another
 * exception), the C fuzz corpus (tests/fuzz/corpus/wire) replayed with
 * decode → encode → decode equal, a bounded random-mutation run, and the
 * saved key's bytes equal to libherald's.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Encoder } from "@msgpack/msgpack";
import { decodeFrame, encodeFrame, withHeader } from "../src/codec.js";
import { ErrorCode, HeraldError, errName, strerror } from "../src/errors.js";
import { mpCheck } from "../src/mpcheck.js";
import { FrameType, type WireFrame } from "../src/protocol.js";
import { SyncKey } from "../src/synckey.js";

const LIM = { maxFrame: 1 << 20 };
const raw = (o: unknown): Uint8Array => new Encoder().encode(o);
const refused = (p: Uint8Array, code: number = ErrorCode.PROTOCOL, lim = LIM): void => {
  assert.throws(() => decodeFrame(p, lim), (e) => e instanceof HeraldError && e.code === code);
};

test("round trip: every key kind; zero values are not sent; body goes as bin", () => {
  const f: WireFrame = {
    t: FrameType.SYNC_RESULT,
    rid: 7,
    more: true,
    msgs: [{ conv: "c", seq: 3, from: "u", ts: 1733200000000, body: new Uint8Array([0, 255]), g: 2, pos: 9, flags: 8, idc: "Acme", idt: "CEO" }],
    sg: [1, 5, 2, 2 ** 40],
    mem: ["a", "b"],
    cvn: [3, 4],
    admin: false,
    conv: "",
    seq: 0,
  };
  const bytes = encodeFrame(f);
  const back = decodeFrame(bytes, LIM);
  assert.deepEqual(back, { t: 8, rid: 7, more: true, msgs: f.msgs, sg: f.sg, mem: f.mem, cvn: f.cvn });
  assert.ok(!("admin" in back) && !("conv" in back) && !("seq" in back));
  // body is bin (0xc4) on the wire; a str body is accepted and comes out as bytes.
  assert.ok(Buffer.from(encodeFrame({ t: FrameType.SEND, conv: "c", body: new Uint8Array([1]) })).includes(Buffer.from([0xc4, 1, 1])));
  assert.deepEqual(decodeFrame(raw({ t: 3, conv: "c", body: "hé" }), LIM).body, new TextEncoder().encode("hé"));
  // Unknown keys are skipped (forward compatible).
  assert.deepEqual(decodeFrame(raw({ t: 19, rid: 1, future: [1, { x: 2 }] }), LIM), { t: 19, rid: 1 });
});

test("bad frames are refused with PROTOCOL, oversized ones with TOO_BIG", () => {
  refused(new Uint8Array([]));
  refused(raw([1, 2])); // not a map
  refused(raw(5));
  refused(new Uint8Array([...raw({ t: 18 }), 0])); // trailing byte
  refused(raw({ t: 0 }));
  refused(raw({ t: 39 }));
  refused(raw({ rid: 1 })); // no type
  refused(raw({ t: 11, conv: "c" })); // READ without seq
  refused(raw({ t: 11, conv: "c", seq: 0 })); // required and zero = absent
  refused(raw({ t: 11, conv: "", seq: 1 }));
  refused(raw({ t: 6 })); // DELIVER without m
  refused(raw({ t: 4, seq: "1" }));
  refused(raw({ t: 4, seq: -1 }));
  refused(raw({ t: 4, seq: 1.5 }));
  refused(raw({ t: 2, hb: 2 ** 32 })); // u32 over range
  refused(raw({ t: 16, op: "x", conv: 5 }));
  refused(raw({ t: 16, op: "x", mem: ["a", 1] }));
  refused(raw({ t: 16, op: "x", mem: "a" }));
  refused(raw({ t: 8, sg: [1, 2, 3] })); // odd
  refused(raw({ t: 8, sg: [2 ** 32, 1] })); // group over u32
  refused(raw({ t: 8, msgs: [1] }));
  refused(raw({ t: 6, m: { conv: "c", pos: "1" } }));
  refused(raw({ t: 6, m: [] }));
  refused(raw({ t: 2, admin: 1 }));
  refused(raw({ t: 3, conv: "c", body: 5 }));
  refused(new Uint8Array([0x81, 0x01, 0x01])); // an integer key
  refused(new Uint8Array([0x81, 0xa1, 0x74, 0xd4, 0x01, 0x02])); // ext type
  refused(new Uint8Array([0x81, 0xa1, 0x74, 0xc1])); // never-used byte
  // A count bomb: a map claiming 2^32 − 1 entries in 6 bytes.
  refused(new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1]));
  // Nesting deeper than 8.
  let deep: unknown = 1;
  for (let i = 0; i < 9; i++) deep = [deep];
  refused(raw({ t: 19, x: deep }));
  assert.doesNotThrow(() => decodeFrame(raw({ t: 19, x: [[[[[[1]]]]]] }), LIM));
  refused(raw({ t: 19, x: "y".repeat(100) }), ErrorCode.TOO_BIG, { maxFrame: 50 });
});

test("errors: codes, names and texts are error.h's", () => {
  assert.equal(errName(6), "NOT_FOUND");
  assert.equal(errName(24), "UNAVAILABLE");
  assert.equal(errName(99), "UNKNOWN");
  assert.equal(strerror(3), "missing or invalid token");
  const e = new HeraldError(ErrorCode.NOT_MEMBER);
  assert.equal(e.message, "NOT_MEMBER: not a member of the conversation");
  assert.equal(e.codeName, "NOT_MEMBER");
  // The header's list, parsed, must equal ours.
  const header = join(dirname(fileURLToPath(import.meta.url)), "../../../../include/herald/error.h");
  if (existsSync(header)) {
    const rows = [...readFileSync(header, "utf8").matchAll(/X\((\w+), (\d+), "([^"]*)"\)/g)];
    assert.ok(rows.length >= 25);
    for (const [, name, num, desc] of rows) {
      assert.equal(errName(Number(num)), name);
      assert.equal(strerror(Number(num)), desc);
    }
    assert.equal(errName(rows.length), "UNKNOWN", "no code beyond the header's");
  }
});

test("protocol tables match include/herald/protocol.h and common/wire.c", () => {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
  const proto = join(root, "include/herald/protocol.h");
  const wire = join(root, "common/wire.c");
  if (!existsSync(proto) || !existsSync(wire)) return;
  const types = [...readFileSync(proto, "utf8").matchAll(/X\((\w+), (\d+)\)/g)];
  assert.equal(types.length, 38);
  for (const [, name, num] of types) assert.equal(FrameType[name as keyof typeof FrameType], Number(num), name);
  const src = readFileSync(wire, "utf8");
  const kinds: Record<string, string> = { MPT_U32: "u32", MPT_U64: "u64", MPT_BOOL: "bool", MPT_STR: "str", MPT_BODY: "body", MPT_STRS: "strs", MPT_U64S: "u64s", MPT_SG: "sg", MPT_SC: "sc" };
  const frameKeys = [...src.matchAll(/FA?\(K_\w+, "(\w+)", (MPT_\w+),/g)].map(([, k, t]) => [k, kinds[t!]]);
  const msgKeys = [...src.matchAll(/M\("(\w+)", (MPT_\w+),/g)].map(([, k, t]) => [k, kinds[t!]]);
  assert.ok(frameKeys.length > 50 && msgKeys.length === 12);
  return import("../src/protocol.js").then(({ FRAME_KEYS, MSG_KEYS }) => {
    const fk = Object.entries(FRAME_KEYS).filter(([k]) => k !== "m" && k !== "msgs");
    assert.deepEqual(new Map(fk), new Map(frameKeys as [string, string][]));
    assert.deepEqual(new Map(Object.entries(MSG_KEYS)), new Map(msgKeys as [string, string][]));
  });
});

/* Decodes p; a frame must survive encode → decode unchanged. Only HeraldError may come out. */
function roundTripOrRefuse(p: Uint8Array, lim = { maxFrame: 4096, maxDepth: 6 }): boolean {
  let f: WireFrame;
  try {
    f = decodeFrame(p, lim);
  } catch (e) {
    assert.ok(e instanceof HeraldError && (e.code === ErrorCode.PROTOCOL || e.code === ErrorCode.TOO_BIG), String(e));
    return false;
  }
  const again = decodeFrame(encodeFrame(f), { maxFrame: 1 << 20, maxDepth: 6 });
  assert.deepEqual(again, f);
  return true;
}

test("the C fuzz corpus of the wire codec: refused cleanly or stable through re-encoding", () => {
  const dir = resolve(dirname(fileURLToPath(import.meta.url)), "../../../../tests/fuzz/corpus/wire");
  if (!existsSync(dir)) return;
  let ok = 0;
  const files = readdirSync(dir);
  for (const name of files) {
    const b = new Uint8Array(readFileSync(join(dir, name)));
    if (roundTripOrRefuse(b)) ok++;
    if (b.length >= 4) {
      const n = new DataView(b.buffer, b.byteOffset).getUint32(0);
      if (n > 0 && n <= b.length - 4 && roundTripOrRefuse(b.subarray(4, 4 + n))) ok++;
    }
  }
  assert.ok(files.length > 50 && ok > 10, `${files.length} inputs, ${ok} decoded`);
});

test("10,000 random mutations of valid frames: each refused cleanly or stable", () => {
  let seed = 0x9e3779b9;
  const rnd = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const seeds = [
    encodeFrame({ t: FrameType.DELIVER, m: { conv: "c1", seq: 5, from: "a", ts: 1733200000000, body: new Uint8Array([104, 105]), g: 3, pos: 70000, pv: 69999, flags: 1 } }),
    encodeFrame({ t: FrameType.SYNC_RESULT, rid: 9, msgs: [{ conv: "c", seq: 1, pos: 2, g: 1 }], sg: [1, 2, 4, 300], more: true }),
    encodeFrame({ t: FrameType.CONV_RESULT, rid: 2, msgs: [{ conv: "c", seq: 3 }], cvk: ["group"], cvn: [2], cvu: [1], aid: "x", more: true }),
    encodeFrame({ t: FrameType.WELCOME, rid: 1, user: "u", ten: "t", hb: 30000, maxf: 1 << 20, sg: [0, 1] }),
    encodeFrame({ t: FrameType.ERROR, code: 3, msg: "invalid token" }),
  ];
  let decoded = 0;
  for (let i = 0; i < 10000; i++) {
    const b = new Uint8Array(seeds[rnd(seeds.length)]!);
    for (let j = 1 + rnd(4); j > 0; j--) {
      const at = rnd(b.length);
      const op = rnd(3);
      if (op === 0) b[at] = rnd(256);
      else if (op === 1) b[at] = b[at]! ^ (1 << rnd(8));
      else b[at] = [0x00, 0x7f, 0x80, 0xc0, 0xc1, 0xcf, 0xd3, 0xdc, 0xdf, 0xff][rnd(10)]!;
    }
    const cut = rnd(8) === 0 ? b.subarray(0, rnd(b.length + 1)) : b;
    if (roundTripOrRefuse(cut)) decoded++;
  }
  assert.ok(decoded > 100, `${decoded} of 10000 still decoded`);
});

test("mpCheck agrees with the decoder on structure", () => {
  assert.equal(mpCheck(raw({ a: [1, 2, { b: "c" }] }), 8), true);
  assert.equal(mpCheck(new Uint8Array([0x92, 0x01]), 8), false); // short
  assert.equal(mpCheck(new Uint8Array([0xdd, 0, 0, 0, 3, 1, 2]), 8), false); // count > bytes
  assert.equal(mpCheck(new Uint8Array([0x91, 0x91, 0x90]), 2), false); // depth 3 > 2
  assert.equal(mpCheck(new Uint8Array([0x91, 0x91, 0x90]), 3), true);
});

test("sync key: the saved bytes are libherald's (an encoded SYNC frame), loads refuse garbage", () => {
  const k = new SyncKey();
  k.raise(1, 5);
  k.raise(2, 300);
  assert.equal(k.raise(1, 4), false, "never lowers");
  const text = k.save();
  const bytes = Buffer.from(text, "base64");
  // 4-byte length, then {"t": 7, "sg": [1, 5, 2, 300]} packed as msgpack-c packs it.
  assert.deepEqual(
    [...bytes],
    [0, 0, 0, 14, 0x82, 0xa1, 0x74, 0x07, 0xa2, 0x73, 0x67, 0x94, 0x01, 0x05, 0x02, 0xcd, 0x01, 0x2c],
  );
  const back = SyncKey.load(text);
  assert.deepEqual(back.toWire(), [1, 5, 2, 300]);
  assert.deepEqual(SyncKey.load(new SyncKey().save()).toWire(), []);
  for (const bad of ["", "!!!", Buffer.from([0, 0, 0, 1, 0x80]).toString("base64"), Buffer.from(withHeader(encodeFrame({ t: FrameType.PING }))).toString("base64"), Buffer.from([0, 0, 0, 9, 0x80]).toString("base64")])
    assert.throws(() => SyncKey.load(bad), (e) => e instanceof HeraldError && e.code === ErrorCode.INVAL, bad);
});
