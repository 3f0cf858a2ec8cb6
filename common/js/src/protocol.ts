/*
 * protocol.ts — Herald client wire protocol v1, mirrored from
 * include/herald/protocol.h and the key tables of common/wire.c: frame
 * types, flags, every map key with its msgpack type, and the required keys
 * of each frame type. This is the one place the SDK names wire keys.
 *
 * A frame is one msgpack map. Over TCP it is preceded by a 4-byte
 * big-endian payload length; a WebSocket binary message carries exactly one
 * map without that prefix. Zero, false, "" and empty arrays mean "absent"
 * and are never sent.
 */

export const PROTOCOL_VERSION = 1;
/** Bytes of the TCP length prefix (HERALD_FRAME_HEADER). */
export const FRAME_HEADER = 4;
/** The server's default frame cap (HERALD_FRAME_MAX_DEFAULT, 1 MiB). */
export const FRAME_MAX_DEFAULT = 1 << 20;
/** Room a SEND body leaves for the envelope of the frames carrying it. */
export const ENVELOPE_RESERVE = 4096;
/** Nesting cap of the bounded msgpack check (HERALD_DEPTH_MAX_DEFAULT). */
export const DEPTH_MAX_DEFAULT = 8;

/** Frame types ("t"), HERALD_FRAME_TYPES. */
export const FrameType = {
  HELLO: 1,
  WELCOME: 2,
  SEND: 3,
  ACK: 4,
  ERROR: 5,
  DELIVER: 6,
  SYNC: 7,
  SYNC_RESULT: 8,
  HISTORY: 9,
  HISTORY_RESULT: 10,
  READ: 11,
  OK: 12,
  RECEIPT: 13,
  RECEIPTS: 14,
  RECEIPTS_RESULT: 15,
  CONV: 16,
  CONV_RESULT: 17,
  PING: 18,
  PONG: 19,
  RECALL: 20,
  DND: 21,
  URGENT: 22,
  URGENT_RESULT: 23,
  REMIND: 24,
  DIR: 25,
  DIR_RESULT: 26,
  CONTACT: 27,
  CONTACT_RESULT: 28,
  STATUS: 29,
  STATUS_RESULT: 30,
  TAG: 31,
  TAG_RESULT: 32,
  MASS: 33,
  MASS_RESULT: 34,
  APP: 35,
  APP_RESULT: 36,
  TRANSFER: 37,
  TRANSFER_RESULT: 38,
} as const;
export type FrameTypeName = keyof typeof FrameType;
/** One past the highest known frame type (HERALD_FT_COUNT_). */
export const FRAME_TYPE_COUNT = 39;

/** "SEND" for 3, "UNKNOWN" otherwise (herald_frame_type_name). */
export function frameTypeName(t: number): FrameTypeName | "UNKNOWN" {
  for (const [k, v] of Object.entries(FrameType)) if (v === t) return k as FrameTypeName;
  return "UNKNOWN";
}

/** Message flags ("flags"), HERALD_MSGF_*. */
export const MsgFlag = {
  SILENT: 0x1, // deliver without an alert
  URGENT: 0x2, // must-reach (DING)
  RECALLED: 0x4, // set by the broker: a tombstone, body removed
  CONFIRMED: 0x8, // set by the broker in HISTORY/SYNC answers: this reader confirmed
} as const;
/** The flag bits a client may set in SEND. */
export const MSGF_CLIENT_MASK = MsgFlag.SILENT | MsgFlag.URGENT;

/** Message kinds ("mk"), HERALD_MK_*. */
export const MsgKind = { TEXT: 0, SYSTEM: 1 } as const;

/** The msgpack representation of a key (mpt_kind in common/mptab.h). */
export type KeyKind =
  | "u32" // unsigned integer ≤ 2^32 − 1
  | "u64" // unsigned integer (the SDK requires ≤ 2^53 − 1, a JS number)
  | "bool"
  | "str" // msgpack str
  | "body" // str or bin; sent as bin; decoded to bytes
  | "strs" // array of str
  | "u64s" // array of unsigned integers
  | "msg" // one message map (below)
  | "msgs" // array of message maps
  | "sg" // flat [group, pos, group, pos, …]
  | "sc"; // flat [conv, seq, …] (no longer produced; type-checked, ignored)

/** A message map as it travels ("m", "msgs"): msg_fields of common/wire.c. */
export interface WireMsg {
  conv?: string;
  seq?: number;
  from?: string;
  ts?: number;
  body?: Uint8Array;
  mk?: number;
  g?: number;
  pos?: number;
  idc?: string;
  idt?: string;
  flags?: number;
  pv?: number;
}

export const MSG_KEYS = {
  conv: "str",
  seq: "u64",
  from: "str",
  ts: "u64",
  body: "body",
  mk: "u32",
  g: "u32",
  pos: "u64",
  idc: "str",
  idt: "str",
  flags: "u32",
  pv: "u64",
} as const satisfies Record<keyof WireMsg, KeyKind>;

/**
 * A frame as it travels: frame_fields of common/wire.c, by wire key. The
 * meaning of each key per frame type is the table in protocol.h.
 */
export interface WireFrame {
  t: number;
  rid?: number;
  ref?: number;
  tok?: string;
  v?: number;
  user?: string;
  ten?: string;
  admin?: boolean;
  hb?: number;
  maxf?: number;
  conv?: string;
  cmid?: string;
  body?: Uint8Array;
  flags?: number;
  seq?: number;
  ts?: number;
  dup?: boolean;
  code?: number;
  msg?: string;
  after?: number;
  limit?: number;
  more?: boolean;
  op?: string;
  kind?: string;
  owner?: string;
  cap?: number;
  cnt?: number;
  m?: WireMsg;
  mem?: string[];
  read?: string[];
  unread?: string[];
  msgs?: WireMsg[];
  sg?: number[];
  sc?: (string | number)[];
  nr?: number;
  nu?: number;
  aid?: string;
  name?: string;
  title?: string;
  dept?: string;
  parent?: string;
  grp?: number;
  ldr?: number;
  app?: string;
  win?: number;
  dps?: string[];
  tgs?: string[];
  lim?: string[];
  iu?: string[];
  ip?: string[];
  itg?: string[];
  cgs?: string[];
  sts?: string[];
  ats?: number[];
  rsn?: string[];
  rtx?: string[];
  corp?: string;
  unr?: string[];
  cvk?: string[];
  cvn?: number[];
  cvu?: number[];
}

export const FRAME_KEYS = {
  t: "u32",
  rid: "u64",
  ref: "u64",
  tok: "str",
  v: "u32",
  user: "str",
  ten: "str",
  admin: "bool",
  hb: "u32",
  maxf: "u32",
  conv: "str",
  cmid: "str",
  body: "body",
  flags: "u32",
  seq: "u64",
  ts: "u64",
  dup: "bool",
  code: "u32",
  msg: "str",
  after: "u64",
  limit: "u32",
  more: "bool",
  op: "str",
  kind: "str",
  owner: "str",
  cap: "u32",
  cnt: "u32",
  m: "msg",
  mem: "strs",
  read: "strs",
  unread: "strs",
  msgs: "msgs",
  sg: "sg",
  sc: "sc",
  nr: "u32",
  nu: "u32",
  aid: "str",
  name: "str",
  title: "str",
  dept: "str",
  parent: "str",
  grp: "u32",
  ldr: "u32",
  app: "str",
  win: "u32",
  dps: "strs",
  tgs: "strs",
  lim: "strs",
  iu: "strs",
  ip: "strs",
  itg: "strs",
  cgs: "strs",
  sts: "strs",
  ats: "u64s",
  rsn: "strs",
  rtx: "strs",
  corp: "str",
  unr: "strs",
  cvk: "strs",
  cvn: "u64s",
  cvu: "u64s",
} as const satisfies Record<keyof WireFrame, KeyKind>;

/** Required keys per frame type (the starred keys of protocol.h, wire.c's `required`). */
export const REQUIRED: Partial<Record<number, readonly (keyof WireFrame)[]>> = {
  [FrameType.HELLO]: ["tok"],
  [FrameType.SEND]: ["conv"],
  [FrameType.ERROR]: ["code"],
  [FrameType.DELIVER]: ["m"],
  [FrameType.HISTORY]: ["conv"],
  [FrameType.READ]: ["conv", "seq"],
  [FrameType.RECEIPT]: ["conv", "user", "seq"],
  [FrameType.RECEIPTS]: ["conv", "seq"],
  [FrameType.RECALL]: ["conv", "seq"],
  [FrameType.DND]: ["op"],
  [FrameType.URGENT]: ["op", "conv", "seq"],
  [FrameType.REMIND]: ["op", "conv", "seq"],
  [FrameType.DIR]: ["op"],
  [FrameType.CONTACT]: ["op", "conv"],
  [FrameType.TAG]: ["op", "user"],
  [FrameType.MASS]: ["op"],
  [FrameType.CONV]: ["op"],
  [FrameType.APP]: ["op", "app"],
  [FrameType.TRANSFER]: ["op"],
};

/** Frames the server sends without a request (client_is_push). */
export function isPush(t: number): boolean {
  return t === FrameType.DELIVER || t === FrameType.RECEIPT || t === FrameType.REMIND;
}
