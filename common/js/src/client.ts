/*
 * client.ts — HeraldClient: one user's session with a gateway, kept alive
 * across connection losses, with libherald's delivery guarantees.
 *
 * Delivery follows the sync-key model (delivery.ts): exactly once, in
 * per-conversation order, resumed from the key the store keeps.
 *
 * Requests carry a rid and are matched to their answer. A connection loss
 * re-sends the requests that are safe to repeat (SEND with its cmid — the
 * server answers a repeated cmid with the original seq — and the reads)
 * once the client is back; the others fail with CLOSED (outcome unknown).
 * A request unanswered by its deadline fails with TIMEOUT and breaks the
 * connection (a late answer could not be told apart), as in libherald.
 *
 * Threads: none; everything runs on the caller's event loop. Listeners are
 * called one event at a time, in order.
 */
import { decodeFrame, encodeFrame } from "./codec.js";
import { ErrorCode, HeraldError } from "./errors.js";
import {
  FrameType,
  isPush,
  MSGF_CLIENT_MASK,
  MsgFlag,
  PROTOCOL_VERSION,
  type WireFrame,
  frameTypeName,
} from "./protocol.js";
import { defaultStore, type KeyStore } from "./store.js";
import { Delivery, toMessage } from "./delivery.js";
import { SyncKey } from "./synckey.js";
import type { Connection, Connector } from "./transport.js";
import type {
  Ack,
  ClientEvents,
  ClientState,
  ClientStats,
  ConvInfo,
  ConvPage,
  DndState,
  HistoryPage,
  Receipts,
  UrgentStatus,
} from "./types.js";

export interface ClientOptions {
  /** How to reach the gateway: webSocket(url), or tcp(addr) from "herald-client/node". */
  connect: Connector;
  /** The token (from your app server), or a function asked before every
   * connection attempt (for tokens that expire). */
  token: string | (() => string | Promise<string>);
  /** Where the sync key is kept (default: localStorage when there is one,
   * else memory). null: keep it in memory only. */
  store?: KeyStore | null;
  /** Deadline of each request, and of connect() (ms, default 10000). */
  timeoutMs?: number;
  /** Reconnect backoff: the first wait and its cap (ms, default 200 / 5000);
   * each failed attempt doubles it, with ±25% jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** The largest frame accepted from the server (bytes, default 16 MiB). */
  maxFrame?: number;
}

export interface SendOptions {
  /** Client message id: reuse it to retry exactly once (default: 128 random bits). */
  cmid?: string;
  /** Deliver without an alert. */
  silent?: boolean;
  /** Urgent (DING): every recipient must confirm; the unconfirmed are reminded. */
  urgent?: boolean;
  /** This call's deadline (ms, default the client's timeoutMs); it covers
   * waiting for a reconnect and the re-sends. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10000;
const DEFAULT_MAX_FRAME = 16 << 20;
const HB_DEFAULT_MS = 30000;
const HB_MIN_MS = 50;

/* Errors after which another attempt cannot succeed. */
const FATAL = new Set<number>([ErrorCode.UNAUTHORIZED, ErrorCode.FORBIDDEN, ErrorCode.UNSUPPORTED, ErrorCode.INVAL]);

type Listener<T> = (ev: T) => void | Promise<void>;

/* A request waiting for its answer. */
interface Pending {
  frame: WireFrame; // without rid
  want: number; // the answer's frame type
  retry: boolean; // safe to send again after a connection loss
  resolve: (f: WireFrame) => void;
  reject: (e: HeraldError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  rid: number; // 0 while not sent on the current connection
  handshake: boolean; // the HELLO (sent before the client is online)
}

const utf8e = new TextEncoder();

/* 128 random bits as hex: Web Crypto where there is one (browsers, Node
 * 19+), else Math.random (Node 18: a cmid only has to be unique per sender
 * and conversation within the dedup window). */
function randomCmid(): string {
  const b = new Uint8Array(16);
  const wc = (globalThis as { crypto?: { getRandomValues(a: Uint8Array): Uint8Array } }).crypto;
  if (wc?.getRandomValues) wc.getRandomValues(b);
  else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function need(cond: boolean, what: string): void {
  if (!cond) throw new HeraldError(ErrorCode.INVAL, what);
}

export class HeraldClient {
  private readonly connector: Connector;
  private readonly token: ClientOptions["token"];
  private readonly store: KeyStore | null;
  private readonly timeoutMs: number;
  private readonly backoffInitial: number;
  private readonly backoffMax: number;
  private readonly maxFrame: number;

  private st: ClientState = "idle";
  private conn: Connection | null = null; // the current attempt's connection
  private connId = 0; // bumped per attempt: callbacks of older ones are ignored
  private online = false; // WELCOME received on conn (and the key is loaded)
  private everOnline = false; // a WELCOME came once (later ones are reconnects)
  private attempts = 0; // failed attempts since the last WELCOME
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private attemptTimer: ReturnType<typeof setTimeout> | undefined; // this attempt's deadline
  private hbTimer: ReturnType<typeof setTimeout> | undefined; // the next heartbeat check
  private hbMs = HB_DEFAULT_MS; // send something at least this often (WELCOME's hb)
  private lastTx = 0; // when a frame was last sent (ms since the epoch)
  private srvMaxFrame = 0; // WELCOME's maxf: larger frames fail locally (0: unknown)
  private nextRid = 0; // the last request id used
  private readonly inflight = new Map<number, Pending>(); // sent on conn, by rid
  private outbox: Pending[] = []; // waiting for the connection
  private pushHold: WireFrame[] | null = null; // pushes before the key is loaded
  // connect()'s promise, settled by the first WELCOME or a fatal error
  private connectWait: { resolve: () => void; reject: (e: HeraldError) => void; timer: ReturnType<typeof setTimeout> } | null = null;
  private connectPromise: Promise<void> | null = null; // returned by every connect()
  private lastError: HeraldError | undefined; // why the last attempt failed (for connect()'s TIMEOUT)

  private me = { user: "", tenant: "", admin: false }; // WELCOME's identity
  private readonly delivery: Delivery; // the sync-key filter and the event queue
  private keyLoaded = false; // the store was read (after the first WELCOME)
  private saving: Promise<void> = Promise.resolve(); // the last store.save, chained
  private readonly listeners: { [K in keyof ClientEvents]: Set<Listener<ClientEvents[K]>> } = {
    message: new Set(),
    receipt: new Set(),
    remind: new Set(),
    escalate: new Set(),
    gap: new Set(),
    state: new Set(),
  };
  private readonly counters: ClientStats = { gaps: 0, syncs: 0, syncRetries: 0, gapsUnfilled: 0, duplicates: 0, reconnects: 0 };

  constructor(opts: ClientOptions) {
    need(typeof opts.connect === "function", "options.connect: a connector (webSocket(url) or tcp(addr))");
    need(typeof opts.token === "function" || (typeof opts.token === "string" && opts.token.length > 0), "options.token: a token or a function returning one");
    this.connector = opts.connect;
    this.token = opts.token;
    this.store = opts.store === undefined ? defaultStore() : opts.store;
    this.timeoutMs = opts.timeoutMs && opts.timeoutMs > 0 ? opts.timeoutMs : DEFAULT_TIMEOUT_MS;
    this.backoffInitial = opts.backoff?.initialMs && opts.backoff.initialMs > 0 ? opts.backoff.initialMs : 200;
    this.backoffMax = Math.max(this.backoffInitial, opts.backoff?.maxMs && opts.backoff.maxMs > 0 ? opts.backoff.maxMs : 5000);
    this.maxFrame = opts.maxFrame && opts.maxFrame > 0 ? opts.maxFrame : DEFAULT_MAX_FRAME;
    this.delivery = new Delivery(
      {
        sync: (sg) => this.request({ t: FrameType.SYNC, sg }, FrameType.SYNC_RESULT, false),
        online: () => this.online,
        connection: () => this.connId,
        emit: (type, data) => this.emit(type, data),
        save: (text) => this.persist(text),
      },
      this.timeoutMs,
      this.counters,
    );
  }

  // ---- identity, state, events ------------------------------------------------

  /** The user of the token (from WELCOME; "" before). */
  get user(): string {
    return this.me.user;
  }
  /** The tenant of the token. */
  get tenant(): string {
    return this.me.tenant;
  }
  /** The token carries the tenant-admin role. */
  get admin(): boolean {
    return this.me.admin;
  }
  get state(): ClientState {
    return this.st;
  }
  /** Delivery counters (a copy). */
  get stats(): ClientStats {
    return { ...this.counters };
  }
  /** The saved form of the key of what was handed out so far (what the store holds). */
  syncKey(): string {
    return this.delivery.savedKey();
  }

  /**
   * Adds a listener; returns the function that removes it. message /
   * receipt / remind / escalate / gap listeners are called one event at a
   * time in order; when one returns a promise the next event waits for it,
   * and the sync key advances past a message only after its listeners are
   * done. A listener that throws is reported on the console and the event
   * counts as handed out. state listeners are called at once.
   */
  on<K extends keyof ClientEvents>(type: K, fn: Listener<ClientEvents[K]>): () => void {
    const set = this.listeners[type] as Set<Listener<ClientEvents[K]>>;
    set.add(fn);
    return () => {
      set.delete(fn);
    };
  }

  /**
   * Connects (HELLO with the token → WELCOME), loads the saved key and
   * catches up from it; messages missed while away come first through
   * "message" events. Resolves once WELCOME came. Attempts that fail for a
   * reason that may pass (server down, BUSY, SHUTDOWN…) are retried with
   * backoff until timeoutMs; rejects with the HeraldError of a refusal
   * (UNAUTHORIZED, EXPIRED with a fixed token, FORBIDDEN, UNSUPPORTED, INVAL
   * for an unreadable saved key) or TIMEOUT, and the client is then closed.
   * From then on the client reconnects by itself until close().
   */
  connect(): Promise<void> {
    if (this.connectPromise) return this.connectPromise;
    if (this.st === "closed") return Promise.reject(new HeraldError(ErrorCode.CLOSED, "the client is closed"));
    this.connectPromise = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const why = this.lastError ? ` (last: ${this.lastError.message})` : "";
        this.fail(new HeraldError(ErrorCode.TIMEOUT, `not connected within ${this.timeoutMs} ms${why}`));
      }, this.timeoutMs);
      this.connectWait = { resolve, reject, timer };
    });
    this.attempt();
    return this.connectPromise;
  }

  /** Closes for good: pending requests fail with CLOSED, undelivered events
   * are dropped (the saved key does not cover them: they come again next time). */
  close(): void {
    this.shutdown(new HeraldError(ErrorCode.CLOSED, "the client was closed"));
  }

  // ---- messaging ---------------------------------------------------------------

  /**
   * Sends body (text or bytes) to conv; resolves when it is stored. A
   * connection loss meanwhile re-sends it with the same cmid once the
   * client is back, so it is stored once (the answer then says dup and
   * the original seq). On failure the HeraldError carries the cmid.
   * Errors: INVAL, TOO_BIG, NOT_FOUND, NOT_MEMBER, FORBIDDEN,
   * RATE_LIMITED, STORAGE, BUSY, TIMEOUT, CLOSED.
   */
  async send(conv: string, body: string | Uint8Array, opts: SendOptions = {}): Promise<Ack> {
    const cmid = opts.cmid ?? randomCmid();
    try {
      need(typeof conv === "string" && conv.length > 0, "send: conv is required");
      need(cmid.length > 0, "send: cmid must not be empty");
      const bytes = typeof body === "string" ? utf8e.encode(body) : body;
      need(bytes instanceof Uint8Array, "send: body is a string or a Uint8Array");
      const flags = ((opts.silent ? MsgFlag.SILENT : 0) | (opts.urgent ? MsgFlag.URGENT : 0)) & MSGF_CLIENT_MASK;
      const r = await this.request({ t: FrameType.SEND, conv, cmid, body: bytes, flags }, FrameType.ACK, true, opts.timeoutMs);
      return { conv, seq: r.seq ?? 0, ts: r.ts ?? 0, dup: r.dup === true, cmid };
    } catch (e) {
      const err = e instanceof HeraldError ? e : new HeraldError(ErrorCode.INTERNAL, String(e));
      err.cmid = cmid;
      throw err;
    }
  }

  /** Messages of conv with seq > after (ascending), at most limit (default 100). */
  async history(conv: string, opts: { after?: number; limit?: number } = {}): Promise<HistoryPage> {
    need(!!conv, "history: conv is required");
    const r = await this.request({ t: FrameType.HISTORY, conv, after: opts.after ?? 0, limit: opts.limit ?? 0 }, FrameType.HISTORY_RESULT, true);
    return { messages: (r.msgs ?? []).map(toMessage), more: r.more === true };
  }

  /** Marks everything up to seq read; resolves with the stored cursor (it never moves back). */
  async read(conv: string, seq: number): Promise<number> {
    need(!!conv && seq > 0, "read: conv and seq ≥ 1 are required");
    return (await this.request({ t: FrameType.READ, conv, seq }, FrameType.OK, true)).seq ?? 0;
  }

  /** Who has read message seq of conv (the sender counts as having read it). */
  async receipts(conv: string, seq: number, opts: { after?: string; limit?: number } = {}): Promise<Receipts> {
    need(!!conv && seq > 0, "receipts: conv and seq ≥ 1 are required");
    const r = await this.request({ t: FrameType.RECEIPTS, conv, seq, aid: opts.after ?? "", limit: opts.limit ?? 0 }, FrameType.RECEIPTS_RESULT, true);
    return {
      read: r.read ?? [],
      unread: r.unread ?? [],
      readCount: r.nr ?? 0,
      unreadCount: r.nu ?? 0,
      more: r.more === true,
      next: r.more ? (r.aid ?? "") : null,
    };
  }

  /** One page of the user's conversations, newest activity first (limit default 50, max 200). */
  async conversations(opts: { cursor?: string; limit?: number } = {}): Promise<ConvPage> {
    const r = await this.request({ t: FrameType.CONV, op: "list", aid: opts.cursor ?? "", limit: opts.limit ?? 0 }, FrameType.CONV_RESULT, true);
    const msgs = r.msgs ?? [];
    const n = msgs.length;
    if ((r.cvk ?? []).length !== n || (r.cvn ?? []).length !== n || (r.cvu ?? []).length !== n || (r.more && !r.aid))
      throw new HeraldError(ErrorCode.PROTOCOL, "conversation list: the arrays differ in length");
    return {
      conversations: msgs.map((m, i) => ({
        conv: m.conv ?? "",
        kind: r.cvk![i]!,
        members: r.cvn![i]!,
        unread: r.cvu![i]!,
        last: m.seq ? toMessage(m) : null,
        ts: m.ts ?? 0,
      })),
      cursor: r.more ? r.aid! : null,
    };
  }

  /** Creates a conversation (kind single | group | customer_group | announce). */
  async createConversation(kind: string, members: string[], opts: { id?: string } = {}): Promise<ConvInfo> {
    need(!!kind, "createConversation: kind is required");
    return this.convOp({ t: FrameType.CONV, op: "create", kind, conv: opts.id ?? "", mem: members }, false);
  }
  /** Adds members (owner or admin). */
  addMembers(conv: string, members: string[]): Promise<ConvInfo> {
    return this.convOp({ t: FrameType.CONV, op: "add", conv, mem: members }, false);
  }
  /** Removes members (owner or admin; anyone may remove itself). */
  removeMembers(conv: string, members: string[]): Promise<ConvInfo> {
    return this.convOp({ t: FrameType.CONV, op: "remove", conv, mem: members }, false);
  }
  /** Describes conv (members and admins). */
  conversation(conv: string): Promise<ConvInfo> {
    return this.convOp({ t: FrameType.CONV, op: "info", conv }, true);
  }

  /** Recalls message seq; resolves with the seq of the system message announcing it. */
  async recall(conv: string, seq: number): Promise<number> {
    need(!!conv && seq > 0, "recall: conv and seq ≥ 1 are required");
    return (await this.request({ t: FrameType.RECALL, conv, seq }, FrameType.OK, false)).seq ?? 0;
  }

  /** Do-not-disturb: "on" (untilMs: when it ends, ms since the epoch;
   * omitted: until turned off), "off", or "status". While on, pushed and
   * synced messages carry silent unless urgent. */
  async dnd(op: "on" | "off" | "status", untilMs?: number): Promise<DndState> {
    need(op === "on" || op === "off" || op === "status", 'dnd: op is "on", "off" or "status"');
    const r = await this.request({ t: FrameType.DND, op, ts: op === "on" ? (untilMs ?? 0) : 0 }, FrameType.OK, true);
    const on = ((r.flags ?? 0) & 1) !== 0;
    // "Until turned off" comes as 0 or as UINT64_MAX.
    return { on, until: on && r.ts && r.ts <= Number.MAX_SAFE_INTEGER ? r.ts : null };
  }

  /** Confirms an urgent (DING) message received in conv (stops its reminders for you). */
  async confirm(conv: string, seq: number): Promise<void> {
    need(!!conv && seq > 0, "confirm: conv and seq ≥ 1 are required");
    await this.request({ t: FrameType.URGENT, op: "confirm", conv, seq }, FrameType.OK, true);
  }

  /** Who has / has not confirmed your urgent message seq of conv. */
  async urgentStatus(conv: string, seq: number): Promise<UrgentStatus> {
    need(!!conv && seq > 0, "urgentStatus: conv and seq ≥ 1 are required");
    const r = await this.request({ t: FrameType.URGENT, op: "status", conv, seq }, FrameType.URGENT_RESULT, true);
    return { confirmed: r.read ?? [], pending: r.unread ?? [] };
  }

  /** PING → PONG; resolves with the round trip in ms. */
  async ping(): Promise<number> {
    const t0 = Date.now();
    await this.request({ t: FrameType.PING }, FrameType.PONG, false);
    return Date.now() - t0;
  }

  /** Catches up explicitly (SYNC from the key, while the server says more). */
  sync(): Promise<void> {
    return this.delivery.syncNow();
  }

  // ---- requests ------------------------------------------------------------------


  private async convOp(f: WireFrame, retry: boolean): Promise<ConvInfo> {
    need(f.op === "create" || !!f.conv, `conversation ${f.op}: conv is required`);
    for (const m of f.mem ?? []) need(typeof m === "string" && m.length > 0, "members must be non-empty strings");
    const r = await this.request(f, FrameType.CONV_RESULT, retry);
    return {
      conv: r.conv ?? "",
      kind: r.kind ?? "",
      owner: r.owner ?? "",
      members: r.mem ?? [],
      maxSeq: r.seq ?? 0,
      created: r.ts ?? 0,
      cap: r.cap ?? 0,
      count: r.cnt ?? 0,
      group: r.grp ?? 0,
      leader: r.ldr ?? 0,
    };
  }

  /* Sends frame (now when online, else once the client is) and waits for
   * its answer of type want, within timeoutMs. */
  private request(frame: WireFrame, want: number, retry: boolean, timeoutMs?: number, handshake = false): Promise<WireFrame> {
    return new Promise<WireFrame>((resolve, reject) => {
      if (this.st === "closed") {
        reject(new HeraldError(ErrorCode.CLOSED, "the client is closed"));
        return;
      }
      const p: Pending = { frame, want, retry, resolve, reject, timer: undefined, rid: 0, handshake };
      const ms = timeoutMs && timeoutMs > 0 ? timeoutMs : this.timeoutMs;
      p.timer = setTimeout(() => this.expire(p, ms), ms);
      if (this.online || handshake) this.transmit(p);
      else this.outbox.push(p);
    });
  }

  /* Puts p on the wire of the current connection. */
  private transmit(p: Pending): void {
    const conn = this.conn;
    if (!conn) {
      this.outbox.push(p);
      return;
    }
    const rid = ++this.nextRid;
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame({ ...p.frame, rid });
    } catch (e) {
      this.settle(p, e as HeraldError);
      return;
    }
    if (this.srvMaxFrame && bytes.length > this.srvMaxFrame) {
      // The server would answer TOO_BIG and close: nothing is sent.
      this.settle(p, new HeraldError(ErrorCode.TOO_BIG, `the frame (${bytes.length} bytes) exceeds the server's cap of ${this.srvMaxFrame}`));
      return;
    }
    p.rid = rid;
    this.inflight.set(rid, p);
    conn.send(bytes);
    this.lastTx = Date.now();
  }

  /* Resolves (frame) or rejects (error) p once. */
  private settle(p: Pending, r: WireFrame | HeraldError): void {
    clearTimeout(p.timer);
    p.timer = undefined;
    if (p.rid) this.inflight.delete(p.rid);
    p.rid = 0;
    const i = this.outbox.indexOf(p);
    if (i >= 0) this.outbox.splice(i, 1);
    if (r instanceof HeraldError) p.reject(r);
    else p.resolve(r);
  }

  private expire(p: Pending, ms: number): void {
    const onWire = p.rid !== 0;
    const err = new HeraldError(ErrorCode.TIMEOUT, `no answer to ${frameTypeName(p.frame.t)} within ${ms} ms`);
    this.settle(p, err);
    if (onWire) this.breakConn(this.connId, err); // a late answer could not be told apart
  }

  private flushOutbox(): void {
    const q = this.outbox;
    this.outbox = [];
    for (const p of q) this.transmit(p);
  }

  // ---- connection lifecycle ---------------------------------------------------------

  private setState(s: ClientState, error?: HeraldError): void {
    if (this.st === s && !error) return;
    this.st = s;
    for (const fn of this.listeners.state) {
      try {
        void fn(error ? { state: s, error } : { state: s });
      } catch (e) {
        console.error("herald-client: a state listener threw:", e);
      }
    }
  }

  private attempt(): void {
    if (this.st === "closed") return;
    this.reconnectTimer = undefined;
    const id = ++this.connId;
    this.setState("connecting");
    // An attempt that hangs (a black-holed connect, a silent server) ends at
    // the request deadline like any request.
    clearTimeout(this.attemptTimer);
    this.attemptTimer = setTimeout(() => {
      if (id === this.connId && !this.online)
        this.breakConn(id, new HeraldError(ErrorCode.TIMEOUT, `no WELCOME within ${this.timeoutMs} ms`));
    }, this.timeoutMs);
    const go = (token: string): void => {
      if (id !== this.connId || this.st === "closed") return;
      try {
        this.conn = this.connector(
          {
            open: () => {
              if (id !== this.connId) return;
              this.pushHold = []; // pushes wait until WELCOME and the key are in
              void this.handshake(id, token);
            },
            frame: (p) => {
              if (id === this.connId) this.onFrame(id, p);
            },
            closed: (err) => {
              if (id !== this.connId) return;
              // A transport's refusal (a certificate that does not verify, a bad address) is final.
              if (!this.online && FATAL.has(err.code)) this.fail(err);
              else this.lost(err);
            },
          },
          this.maxFrame,
        );
      } catch (e) {
        this.fail(e instanceof HeraldError ? e : new HeraldError(ErrorCode.INVAL, String(e)));
      }
    };
    if (typeof this.token === "string") {
      go(this.token);
      return;
    }
    Promise.resolve()
      .then(() => (this.token as () => string | Promise<string>)())
      .then(
        (t) => {
          if (typeof t !== "string" || !t) this.fail(new HeraldError(ErrorCode.UNAUTHORIZED, "the token function returned no token"));
          else go(t);
        },
        (e) => {
          if (id !== this.connId) return;
          this.lost(new HeraldError(ErrorCode.IO, `the token function failed: ${(e as Error)?.message ?? e}`));
        },
      );
  }

  private async handshake(id: number, token: string): Promise<void> {
    let w: WireFrame;
    try {
      w = await this.request({ t: FrameType.HELLO, v: PROTOCOL_VERSION, tok: token }, FrameType.WELCOME, false, undefined, true);
    } catch (e) {
      const err = e as HeraldError;
      const fatal =
        FATAL.has(err.code) ||
        (err.code === ErrorCode.EXPIRED && typeof this.token === "string") ||
        (err.code === ErrorCode.PROTOCOL && !this.everOnline);
      if (fatal) this.fail(err);
      else this.breakConn(id, err);
      return;
    }
    if (id !== this.connId) return;
    if (this.everOnline && (w.user !== this.me.user || w.ten !== this.me.tenant)) {
      this.fail(new HeraldError(ErrorCode.UNAUTHORIZED, `the token now names ${w.ten}/${w.user}, not ${this.me.tenant}/${this.me.user}`));
      return;
    }
    this.me = { user: w.user ?? "", tenant: w.ten ?? "", admin: w.admin === true };
    this.srvMaxFrame = w.maxf ?? 0;
    this.hbMs = Math.max(HB_MIN_MS, w.hb || HB_DEFAULT_MS);
    const reconnect = this.keyLoaded;
    if (!this.keyLoaded) {
      try {
        const saved = this.store ? await this.store.load(this.scope()) : null;
        this.delivery.start(saved ? SyncKey.load(saved) : null, w.sg); // INVAL when unreadable: fatal, say so
      } catch (e) {
        this.fail(e instanceof HeraldError ? e : new HeraldError(ErrorCode.INVAL, String(e)));
        return;
      }
      this.keyLoaded = true;
      if (id !== this.connId) return;
    }
    if (this.everOnline) this.counters.reconnects++;
    this.everOnline = true;
    this.online = true;
    clearTimeout(this.attemptTimer);
    this.attempts = 0;
    this.lastError = undefined;
    this.setState("online");
    if (this.connectWait) {
      clearTimeout(this.connectWait.timer);
      this.connectWait.resolve();
      this.connectWait = null;
    }
    const held = this.pushHold ?? [];
    this.pushHold = null;
    for (const f of held) this.delivery.push(f);
    this.flushOutbox();
    this.armHeartbeat();
    this.delivery.online(reconnect);
  }

  private scope(): string {
    return `${this.me.tenant}/${this.me.user}`;
  }

  private onFrame(id: number, payload: Uint8Array): void {
    let f: WireFrame;
    try {
      f = decodeFrame(payload, { maxFrame: this.maxFrame });
    } catch (e) {
      this.breakConn(id, e as HeraldError);
      return;
    }
    if (isPush(f.t)) {
      if (this.pushHold) this.pushHold.push(f);
      else this.delivery.push(f);
      return;
    }
    if (f.t === FrameType.ERROR) {
      const err = new HeraldError(f.code || ErrorCode.INTERNAL, f.msg);
      const ref = f.ref ?? 0;
      if (ref) {
        const p = this.inflight.get(ref);
        if (p) this.settle(p, err); // else an answer nobody waits for
        return;
      }
      // Connection-level (auth, idle, shutdown…): the server closes.
      for (const p of this.inflight.values()) if (p.handshake) this.settle(p, err);
      this.breakConn(id, err);
      return;
    }
    const p = f.rid ? this.inflight.get(f.rid) : undefined;
    if (!p) return; // a stale answer (a heartbeat PONG, an expired request)
    if (f.t !== p.want) {
      this.breakConn(id, new HeraldError(ErrorCode.PROTOCOL, `expected ${frameTypeName(p.want)}, got ${frameTypeName(f.t)}`));
      return;
    }
    this.settle(p, f);
  }

  /* Closes the current connection (if id still is it) because of err. */
  private breakConn(id: number, err: HeraldError): void {
    if (id !== this.connId || this.st === "closed") return;
    const c = this.conn;
    this.connId++; // its closed() callback is now ignored
    c?.close();
    this.lost(err);
  }

  /* The current connection is gone: re-queue what may be repeated, fail the
   * rest, and try again after the backoff. */
  private lost(err: HeraldError): void {
    if (this.st === "closed") return;
    this.connId++;
    this.conn = null;
    this.online = false;
    this.lastError = err;
    clearTimeout(this.hbTimer);
    this.hbTimer = undefined;
    const again: Pending[] = [];
    for (const p of [...this.inflight.values()].sort((a, b) => a.rid - b.rid)) {
      this.inflight.delete(p.rid);
      p.rid = 0;
      if (p.retry) again.push(p);
      else this.settle(p, new HeraldError(err.code === ErrorCode.TIMEOUT ? ErrorCode.TIMEOUT : ErrorCode.CLOSED,
        `connection lost before the answer (${err.message}); the outcome is unknown`));
    }
    this.outbox = again.concat(this.outbox);
    const d = Math.min(this.backoffMax, this.backoffInitial * 2 ** Math.min(this.attempts, 30));
    this.attempts++;
    const delay = Math.round(d * (0.75 + Math.random() * 0.5));
    this.setState("offline", err);
    this.reconnectTimer = setTimeout(() => this.attempt(), delay);
  }

  /* Fatal: the client closes with err (connect() rejects with it). */
  private fail(err: HeraldError): void {
    this.shutdown(err);
  }

  private shutdown(err: HeraldError): void {
    if (this.st === "closed") return;
    const c = this.conn;
    this.connId++;
    this.conn = null;
    this.online = false;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.attemptTimer);
    clearTimeout(this.hbTimer);
    this.delivery.close();
    this.st = "closed";
    c?.close();
    for (const p of [...this.inflight.values(), ...this.outbox]) this.settle(p, err.code === ErrorCode.CLOSED ? err : new HeraldError(ErrorCode.CLOSED, err.message));
    if (this.connectWait) {
      clearTimeout(this.connectWait.timer);
      this.connectWait.reject(err);
      this.connectWait = null;
    }
    this.setState("closed", err); // emits: an error is given
  }

  /* A PING whenever nothing was sent for hbMs: the server closes silent connections. */
  private armHeartbeat(): void {
    clearTimeout(this.hbTimer);
    const due = this.lastTx + this.hbMs - Date.now();
    this.hbTimer = setTimeout(() => {
      if (!this.online) return;
      if (Date.now() - this.lastTx >= this.hbMs) this.request({ t: FrameType.PING }, FrameType.PONG, false).catch(() => {});
      this.armHeartbeat();
    }, Math.max(due, HB_MIN_MS));
  }

  // ---- listeners and the key store -------------------------------------------------

  private async emit<K extends keyof ClientEvents>(type: K, data: ClientEvents[K]): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const fn of [...this.listeners[type]] as Listener<ClientEvents[K]>[]) {
      try {
        const r = fn(data);
        if (r && typeof (r as Promise<void>).then === "function") waits.push(r as Promise<void>);
      } catch (e) {
        console.error(`herald-client: a "${type}" listener threw:`, e);
      }
    }
    for (const w of waits)
      await w.catch((e) => {
        console.error(`herald-client: a "${type}" listener failed:`, e);
      });
  }

  /* Saves the key text in order (a failing store is reported, not fatal). */
  private persist(text: string): Promise<void> {
    if (!this.store || !this.me.user) return this.saving;
    const store = this.store;
    const scope = this.scope();
    this.saving = this.saving
      .then(() => store.save(scope, text))
      .catch((e) => console.error("herald-client: saving the sync key failed:", e));
    return this.saving;
  }
}
