/*
 * types.ts — the public data types of the SDK (what the client's calls
 * return and its events carry). Numbers are JS numbers: positions, seqs and
 * times are below 2^53 (the decoder refuses anything larger).
 */
import type { HeraldError } from "./errors.js";

/** One stored message (a push, a synced message, or one of history). */
export interface Message {
  /** Conversation id. */
  conv: string;
  /** Conversation sequence, gap-free from 1. */
  seq: number;
  /** Sender user id. */
  from: string;
  /** Commit time, ms since the Unix epoch. */
  ts: number;
  /** Payload bytes (empty for a recalled message). */
  body: Uint8Array;
  /** body as UTF-8 text. */
  text: string;
  /** MsgFlag bits as they came. */
  flags: number;
  /** Message kind ("mk": 0 text, 1 system). */
  kind: number;
  /** A system message (membership change, recall…: text is JSON). */
  system: boolean;
  /** Deliver without an alert (SILENT: sent silent, or do-not-disturb is on). */
  silent: boolean;
  /** An urgent (DING) message: confirm it with client.confirm(conv, seq). */
  urgent: boolean;
  /** A tombstone: the message was recalled. */
  recalled: boolean;
  /** History / sync only: this reader has confirmed the urgent message. */
  confirmed: boolean;
  /** The shard group holding the conversation. */
  group: number;
  /** The message's position in its group (0 in history answers). */
  pos: number;
  /** Certified identity stamped by the broker (an employee's message to a
   * conversation with external members). */
  identity?: { corp: string; title: string };
}

/** The answer to send(). */
export interface Ack {
  conv: string;
  /** The message's seq (the original one when dup). */
  seq: number;
  /** Commit time, ms since the Unix epoch. */
  ts: number;
  /** The cmid was seen before: nothing new was stored. */
  dup: boolean;
  /** The client message id used (pass it again to retry exactly once). */
  cmid: string;
}

/** A page of history. */
export interface HistoryPage {
  messages: Message[];
  /** More remain: ask again with after = the last seq. */
  more: boolean;
}

/** One entry of the conversation list. */
export interface ConvSummary {
  conv: string;
  /** single | group | customer_group | announce */
  kind: string;
  /** Member count. */
  members: number;
  /** Messages after the user's read cursor (0 when the last is the user's own). */
  unread: number;
  /** The last message (body cut to 120 bytes), null when there is none. */
  last: Message | null;
  /** The last message's time, or the creation time when there is none. */
  ts: number;
}

/** A page of the conversation list, newest activity first. */
export interface ConvPage {
  conversations: ConvSummary[];
  /** The next page's cursor; null on the last page. */
  cursor: string | null;
}

/** A conversation's description. */
export interface ConvInfo {
  conv: string;
  kind: string;
  owner: string;
  /** Member ids, sorted. */
  members: string[];
  /** The highest seq. */
  maxSeq: number;
  /** Creation time, ms since the epoch. */
  created: number;
  cap: number;
  count: number;
  /** The shard group holding it. */
  group: number;
  /** The node leading that group (a cluster; 0 in dev or unknown). */
  leader: number;
}

/** Who has / has not read a message. */
export interface Receipts {
  read: string[];
  unread: string[];
  readCount: number;
  unreadCount: number;
  /** The unread page was cut (announcements over 2,000 members). */
  more: boolean;
  /** The next page's cursor (null when !more). */
  next: string | null;
}

/** Do-not-disturb state. */
export interface DndState {
  on: boolean;
  /** When it ends (ms since the epoch); null: until turned off (or off). */
  until: number | null;
}

/** Who has / has not confirmed an urgent message. */
export interface UrgentStatus {
  confirmed: string[];
  pending: string[];
}

/** A member's read cursor advanced. */
export interface ReceiptEvent {
  conv: string;
  user: string;
  seq: number;
}

/** An urgent message of conv is still unconfirmed by you (reminder number count). */
export interface RemindEvent {
  conv: string;
  seq: number;
  user: string;
  count: number;
}

/** Your urgent message: the reminders ran out; pending never confirmed. */
export interface EscalateEvent {
  conv: string;
  seq: number;
  user: string;
  count: number;
  pending: string[];
}

/** A gap stayed open past the request timeout: a push proved messages up to
 * position pos of shard group group exist and SYNC has not returned them yet.
 * Nothing is skipped: the client keeps retrying and hands them out in order. */
export interface GapEvent {
  group: number;
  pos: number;
}

/** idle: constructed; connecting: an attempt is under way; online: WELCOME
 * received; offline: lost, waiting to reconnect (with backoff); closed: for
 * good (close(), or a fatal error such as a refused token). */
export type ClientState = "idle" | "connecting" | "online" | "offline" | "closed";

export interface StateEvent {
  state: ClientState;
  /** offline / closed: why. */
  error?: HeraldError;
}

/** The events of a client and what they carry. */
export interface ClientEvents {
  message: Message;
  receipt: ReceiptEvent;
  remind: RemindEvent;
  escalate: EscalateEvent;
  gap: GapEvent;
  state: StateEvent;
}

/** Delivery counters (monotonic since the client was made). */
export interface ClientStats {
  /** Pushes dropped because they were ahead of the key (each opens or widens a gap). */
  gaps: number;
  /** SYNC exchanges (pages) run. */
  syncs: number;
  /** SYNCs run again because a gap was still open (or a SYNC was refused). */
  syncRetries: number;
  /** Gaps reported with a "gap" event. */
  gapsUnfilled: number;
  /** Messages dropped as already delivered. */
  duplicates: number;
  /** Connections established after the first. */
  reconnects: number;
}
