/*
 * delivery.ts — the client's delivery path (libherald's events.c): pushed
 * frames filtered against the sync key, gaps repaired by SYNC with backoff,
 * and the queue that hands events to the listeners one at a time.
 *
 * Two keys {group → position}: `recv` covers every message accepted into
 * the queue and decides what a push is — a duplicate (pos ≤ key: dropped),
 * next in line (pv ≤ key: queued, the key advances) or a gap (pv > key:
 * dropped; SYNC from the key fetches it with the missing ones, and is
 * retried while a push proves more than SYNC returned). `out` covers what
 * the listeners have been handed and are done with; it is the key that is
 * saved, so a reload resumes exactly there: every message once, in
 * per-conversation order.
 *
 * Threads: none; it runs on the client's event loop.
 */
import { FrameType, MsgFlag, MsgKind, type WireFrame, type WireMsg } from "./protocol.js";
import { SyncKey } from "./synckey.js";
import type { ClientEvents, ClientStats, Message } from "./types.js";

const RESYNC_MIN_MS = 20;
const RESYNC_MAX_MS = 1000;
const SYNC_ROUNDS_MAX = 100000;

/** What the delivery path needs from its client. */
export interface DeliveryHooks {
  /** One SYNC exchange from key sg (a request of the client). */
  sync(sg: number[]): Promise<WireFrame>;
  /** True while a connection is up and past WELCOME. */
  online(): boolean;
  /** Changes with every connection (a SYNC cut by a loss is retried by the reconnect). */
  connection(): number;
  /** Hands an event to the listeners; resolves when they are done. */
  emit<K extends keyof ClientEvents>(type: K, data: ClientEvents[K]): Promise<void>;
  /** Saves the key text; resolves when it is stored (saves run in order). */
  save(text: string): Promise<void>;
}

/* One entry of the queue; group/pos advance `out` once delivered. */
type Item =
  | { ev: "message"; data: Message; group: number; pos: number }
  | { ev: "receipt"; data: ClientEvents["receipt"] }
  | { ev: "remind"; data: ClientEvents["remind"] }
  | { ev: "escalate"; data: ClientEvents["escalate"] }
  | { ev: "gap"; data: ClientEvents["gap"] }
  | { ev: "key"; group: number; pos: number };

const utf8d = new TextDecoder();

/** A message map as the SDK hands it out. */
export function toMessage(m: WireMsg): Message {
  const flags = m.flags ?? 0;
  const body = m.body ?? new Uint8Array(0);
  const msg: Message = {
    conv: m.conv ?? "",
    seq: m.seq ?? 0,
    from: m.from ?? "",
    ts: m.ts ?? 0,
    body,
    text: utf8d.decode(body),
    flags,
    kind: m.mk ?? 0,
    system: (m.mk ?? 0) === MsgKind.SYSTEM,
    silent: (flags & MsgFlag.SILENT) !== 0,
    urgent: (flags & MsgFlag.URGENT) !== 0,
    recalled: (flags & MsgFlag.RECALLED) !== 0,
    confirmed: (flags & MsgFlag.CONFIRMED) !== 0,
    group: m.g ?? 0,
    pos: m.pos ?? 0,
  };
  if (m.idc || m.idt) msg.identity = { corp: m.idc ?? "", title: m.idt ?? "" };
  return msg;
}

export class Delivery {
  private recv = new SyncKey(); // everything accepted into the queue
  private out = new SyncKey(); // everything handed out (saved)
  private readonly want = new SyncKey(); // per group: the newest position a push proved
  private needSync = false; // a SYNC must run (a gap, or a catch-up)
  private running: Promise<void> | null = null; // the SYNC exchange under way
  private syncTimer: ReturnType<typeof setTimeout> | undefined;
  private resyncAt = 0; // no retry before this (ms since the epoch)
  private resyncMs = 0; // the current retry backoff
  private gapSince = 0; // when the open gap was first seen (0: none)
  private gapReported = false;
  private gapTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly queue: Item[] = [];
  private pumping = false;
  private saving: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly hooks: DeliveryHooks,
    private readonly timeoutMs: number,
    private readonly stats: ClientStats,
  ) {}

  /** The first WELCOME: from the saved key (then catch up), or WELCOME's position sg. */
  start(saved: SyncKey | null, sg: number[] | undefined): void {
    if (saved) {
      this.recv = saved;
      this.out = saved.clone();
      this.needSync = true;
      return;
    }
    this.recv = new SyncKey();
    this.recv.raiseAll(sg);
    this.out = this.recv.clone();
    this.saving = this.hooks.save(this.out.save());
  }

  /** Online again (or for the first time with a saved key): catch up when needed. */
  online(reconnect: boolean): void {
    if (reconnect) this.needSync = true;
    this.resyncAt = 0;
    this.kickSync();
  }

  /** An explicit catch-up: after the SYNC under way (if any), one more from
   * the key. Offline it resolves at once (the reconnect catches up). */
  async syncNow(): Promise<void> {
    if (this.running) await this.running;
    this.needSync = true;
    await this.runSync();
  }

  /** The saved form of `out`. */
  savedKey(): string {
    return this.out.save();
  }

  /** Stops: timers cleared, queued events dropped (`out` stays before them). */
  close(): void {
    this.closed = true;
    clearTimeout(this.syncTimer);
    clearTimeout(this.gapTimer);
    this.queue.length = 0;
  }

  /** A pushed frame (DELIVER, RECEIPT, REMIND). */
  push(f: WireFrame): void {
    switch (f.t) {
      case FrameType.DELIVER:
        if (f.m) this.accept(f.m, false);
        return;
      case FrameType.RECEIPT:
        this.enqueue({ ev: "receipt", data: { conv: f.conv ?? "", user: f.user ?? "", seq: f.seq ?? 0 } });
        return;
      case FrameType.REMIND:
        if (f.op === "escalate")
          this.enqueue({ ev: "escalate", data: { conv: f.conv ?? "", seq: f.seq ?? 0, user: f.user ?? "", count: f.cnt ?? 0, pending: f.mem ?? [] } });
        else this.enqueue({ ev: "remind", data: { conv: f.conv ?? "", seq: f.seq ?? 0, user: f.user ?? "", count: f.cnt ?? 0 } });
        return;
    }
  }

  /* Queues m when it is next in line, drops a duplicate, or opens a gap.
   * inSync: from a SYNC_RESULT, which answers from our own key in position
   * order, so anything newer is next. */
  private accept(m: WireMsg, inSync: boolean): void {
    if (!m.pos || !m.conv) return; // no position to key it by
    const g = m.g ?? 0;
    const have = this.recv.get(g);
    if (m.pos <= have) {
      this.stats.duplicates++;
      return;
    }
    if (!inSync && (m.pv ?? 0) > have) {
      this.want.raise(g, m.pos);
      this.stats.gaps++;
      if (!this.needSync) {
        this.needSync = true;
        this.resyncAt = 0;
        if (!this.gapSince) this.gapSince = Date.now();
      }
      this.kickSync();
      return;
    }
    this.recv.raise(g, m.pos);
    this.enqueue({ ev: "message", data: toMessage(m), group: g, pos: m.pos });
  }

  /* The first group where a push proved more than recv holds. */
  private gapOpen(): { group: number; pos: number } | null {
    for (const [g, p] of this.want.entries()) if (p > this.recv.get(g)) return { group: g, pos: p };
    return null;
  }

  /* Runs SYNC when one is needed and due (not twice at once). */
  private kickSync(): void {
    if (!this.needSync || this.running || !this.hooks.online() || this.syncTimer) return;
    const wait = Math.max(0, this.resyncAt - Date.now());
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      void this.runSync();
    }, wait);
  }

  /* One SYNC run (paged while "more"); a second call while it runs gets the same. */
  private runSync(): Promise<void> {
    if (this.running) return this.running;
    if (!this.hooks.online()) return Promise.resolve();
    this.running = this.syncPages().finally(() => {
      this.running = null;
      this.kickSync();
    });
    return this.running;
  }

  private async syncPages(): Promise<void> {
    const id = this.hooks.connection();
    let refused = false;
    try {
      for (let round = 0; round < SYNC_ROUNDS_MAX; round++) {
        const r = await this.hooks.sync(this.recv.toWire());
        this.stats.syncs++;
        for (const m of r.msgs ?? []) this.accept(m, true);
        // The server's key covers what it answered: raise (never lower) to it.
        const sg = r.sg ?? [];
        for (let i = 0; i + 1 < sg.length; i += 2)
          if (this.recv.raise(sg[i]!, sg[i + 1]!)) this.enqueue({ ev: "key", group: sg[i]!, pos: sg[i + 1]! });
        if (!(r.more && (r.msgs ?? []).length > 0)) break; // "more" with nothing in it cannot progress
      }
    } catch {
      if (id !== this.hooks.connection() || !this.hooks.online()) return; // the reconnect syncs again
      refused = true; // e.g. UNAVAILABLE: try again later
    }
    this.afterSync(refused);
  }

  /* Closes the gap when everything the pushes proved is in, else schedules
   * the next try: at once, then 20 ms doubling up to 1 s. */
  private afterSync(refused: boolean): void {
    if (!refused && !this.gapOpen()) {
      this.needSync = false;
      this.gapSince = 0;
      this.resyncAt = 0;
      this.resyncMs = 0;
      this.gapReported = false;
      clearTimeout(this.gapTimer);
      this.gapTimer = undefined;
      return;
    }
    this.needSync = true;
    if (!this.gapSince) this.gapSince = Date.now();
    this.resyncAt = Date.now() + this.resyncMs;
    this.resyncMs = this.resyncMs ? Math.min(this.resyncMs * 2, RESYNC_MAX_MS) : RESYNC_MIN_MS;
    this.stats.syncRetries++;
    if (!this.gapReported && !this.gapTimer) {
      this.gapTimer = setTimeout(() => {
        this.gapTimer = undefined;
        const gap = this.needSync && !this.gapReported ? this.gapOpen() : null;
        if (gap) {
          this.gapReported = true;
          this.stats.gapsUnfilled++;
          this.enqueue({ ev: "gap", data: gap });
        }
      }, Math.max(0, this.gapSince + this.timeoutMs - Date.now()));
    }
  }

  // ---- the queue -----------------------------------------------------------------------

  private enqueue(it: Item): void {
    if (this.closed) return;
    this.queue.push(it);
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length && !this.closed) {
        const it = this.queue.shift()!;
        if (it.ev !== "key") await this.hooks.emit(it.ev, it.data as never);
        if (this.closed) break; // not handed out: the key stays before it
        if ((it.ev === "message" || it.ev === "key") && this.out.raise(it.group, it.pos)) this.saving = this.hooks.save(this.out.save());
        await this.saving;
      }
    } finally {
      this.pumping = false;
    }
  }
}
