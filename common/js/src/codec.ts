/*
 * codec.ts — frames ⇄ bytes, driven by the key tables of protocol.ts.
 *
 * Decoding trusts nothing: the size cap first, then the bounded walk
 * (mpcheck.ts), then @msgpack/msgpack, then every known key type-checked
 * (unknown keys skipped: forward compatible) and the required keys of the
 * frame type checked. Any violation is a HeraldError PROTOCOL (TOO_BIG for
 * the cap). Encoding omits zero / false / empty values, as wire.c does.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { ErrorCode, HeraldError } from "./errors.js";
import {
  DEPTH_MAX_DEFAULT,
  FRAME_HEADER,
  FRAME_KEYS,
  FRAME_TYPE_COUNT,
  type KeyKind,
  MSG_KEYS,
  REQUIRED,
  type WireFrame,
  type WireMsg,
} from "./protocol.js";
import { mpCheck } from "./mpcheck.js";

const U32_MAX = 0xffffffff;
const U64_MAX = 2 ** 64;
const utf8 = new TextEncoder();

/* Map keys must be strings (mptab.c rejects any other key). */
const decoder = new Decoder({
  useBigInt64: true,
  mapKeyConverter: (key: unknown) => {
    if (typeof key !== "string") throw new Error("a map key is not a string");
    return key;
  },
});
const encoder = new Encoder({ ignoreUndefined: true });

function bad(why: string): HeraldError {
  return new HeraldError(ErrorCode.PROTOCOL, why);
}

/* An unsigned integer as a JS number (bigint only for values encoded as
 * 64-bit). u64 values above 2^53 − 1 come out rounded: the server uses
 * UINT64_MAX as "forever" (a DND OK's ts); no position or seq gets there. */
function toUint(v: unknown, max: number, key: string): number {
  if (typeof v === "bigint") {
    if (v < 0n || (max === U32_MAX && v > BigInt(max))) throw bad(`"${key}": integer out of range`);
    return Number(v);
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max)
    throw bad(`"${key}": not an unsigned integer`);
  return v;
}

function toStr(v: unknown, key: string): string {
  if (typeof v !== "string") throw bad(`"${key}": not a string`);
  return v;
}

function toArray(v: unknown, key: string): unknown[] {
  if (!Array.isArray(v)) throw bad(`"${key}": not an array`);
  return v;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/* One value of the given kind, checked and normalised. */
function decodeValue(kind: KeyKind, v: unknown, key: string): unknown {
  switch (kind) {
    case "u32":
      return toUint(v, U32_MAX, key);
    case "u64":
      return toUint(v, U64_MAX, key);
    case "bool":
      if (typeof v !== "boolean") throw bad(`"${key}": not a boolean`);
      return v;
    case "str":
      return toStr(v, key);
    case "body":
      if (v instanceof Uint8Array) return v;
      if (typeof v === "string") return utf8.encode(v);
      throw bad(`"${key}": not bytes`);
    case "strs":
      return toArray(v, key).map((e) => toStr(e, key));
    case "u64s":
      return toArray(v, key).map((e) => toUint(e, U64_MAX, key));
    case "msg":
      if (!isMap(v)) throw bad(`"${key}": not a map`);
      return decodeMsg(v);
    case "msgs":
      return toArray(v, key).map((e) => {
        if (!isMap(e)) throw bad(`"${key}": not a map`);
        return decodeMsg(e);
      });
    case "sg": {
      const a = toArray(v, key);
      if (a.length % 2) throw bad(`"${key}": odd length`);
      return a.map((e, i) => toUint(e, i % 2 ? U64_MAX : U32_MAX, key));
    }
    case "sc": {
      const a = toArray(v, key);
      if (a.length % 2) throw bad(`"${key}": odd length`);
      return a.map((e, i) => (i % 2 ? toUint(e, U64_MAX, key) : toStr(e, key)));
    }
  }
}

/* Maps the known keys of o through table; unknown keys are skipped. */
function decodeMap<T>(o: Record<string, unknown>, table: Record<string, KeyKind>): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    const kind = Object.prototype.hasOwnProperty.call(table, k) ? table[k] : undefined;
    if (!kind) continue;
    const val = decodeValue(kind, v, k);
    if (present(val)) out[k] = val; // zero, false, "" and [] mean absent
  }
  return out as T;
}

function decodeMsg(o: Record<string, unknown>): WireMsg {
  return decodeMap<WireMsg>(o, MSG_KEYS);
}

/* True when the value counts as present (zero, false, "" and [] mean absent). */
function present(v: unknown): boolean {
  if (v === undefined || v === 0 || v === false || v === "") return false;
  if (Array.isArray(v) || v instanceof Uint8Array) return v.length > 0;
  return true;
}

export interface DecodeLimits {
  /** Payload cap in bytes (checked first). */
  maxFrame: number;
  /** Nesting cap (default 8). */
  maxDepth?: number;
}

/**
 * Decodes one frame payload (the map, without a TCP length prefix).
 * Throws HeraldError TOO_BIG (over the cap) or PROTOCOL (anything else).
 */
export function decodeFrame(payload: Uint8Array, lim: DecodeLimits): WireFrame {
  if (payload.length > lim.maxFrame)
    throw new HeraldError(ErrorCode.TOO_BIG, `frame of ${payload.length} bytes over the cap of ${lim.maxFrame}`);
  const b = payload[0];
  if (b === undefined || !((b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf)) throw bad("not a map");
  if (!mpCheck(payload, lim.maxDepth ?? DEPTH_MAX_DEFAULT)) throw bad("malformed msgpack");
  let obj: unknown;
  try {
    obj = decoder.decode(payload);
  } catch (e) {
    throw bad(`malformed msgpack: ${(e as Error).message}`);
  }
  if (!isMap(obj)) throw bad("not a map");
  const f = decodeMap<WireFrame>(obj, FRAME_KEYS);
  if (!f.t || f.t >= FRAME_TYPE_COUNT) throw bad(`unknown frame type ${f.t ?? 0}`);
  for (const k of REQUIRED[f.t] ?? [])
    if (k === "m" ? f.m === undefined : !present(f[k])) throw bad(`required key "${k}" missing`);
  return f;
}

/* The present fields of f in wire form (body as bin, zero values omitted). */
function encodable(f: object, table: Record<string, KeyKind>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const src = f as Record<string, unknown>;
  // In table order, as wire.c encodes: a saved sync key is byte for byte libherald's.
  for (const [k, kind] of Object.entries(table)) {
    const v = src[k];
    if (!present(v)) continue;
    if (kind === "msg") out[k] = encodable(v as object, MSG_KEYS);
    else if (kind === "msgs") out[k] = (v as object[]).map((m) => encodable(m, MSG_KEYS));
    else out[k] = v;
  }
  return out;
}

/** Encodes a frame as its msgpack map (no length prefix). */
export function encodeFrame(f: WireFrame): Uint8Array {
  if (!f.t || f.t >= FRAME_TYPE_COUNT) throw new HeraldError(ErrorCode.INVAL, `unknown frame type ${f.t}`);
  return encoder.encode(encodable(f, FRAME_KEYS));
}

/** p with the 4-byte big-endian length prefix of the TCP framing. */
export function withHeader(p: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + p.length);
  new DataView(out.buffer).setUint32(0, p.length);
  out.set(p, FRAME_HEADER);
  return out;
}
