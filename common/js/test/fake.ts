/*
 * fake.ts — a scripted server behind a Connector, for the client's unit
 * tests: every connection attempt becomes a FakeLink the test drives
 * (frames the client sent, frames to answer or push, a close from the
 * server's side). Frames go through the real codec both ways.
 */
import { decodeFrame, encodeFrame } from "../src/codec.js";
import { ErrorCode, HeraldError } from "../src/errors.js";
import { FrameType, type WireFrame } from "../src/protocol.js";
import type { Connector, TransportSink } from "../src/transport.js";
import { waitFor } from "./harness.js";

export class FakeLink {
  readonly sent: WireFrame[] = [];
  private readonly taken = new Set<number>();
  closed = false;
  constructor(private readonly sink: TransportSink) {}

  /** The first frame the client sent that next() has not returned yet (of
   * type t when given; others stay for later calls), within ms. */
  async next(t?: number, ms = 3000): Promise<WireFrame> {
    let at = -1;
    const find = (): boolean => {
      at = this.sent.findIndex((f, i) => !this.taken.has(i) && (t === undefined || f.t === t));
      return at >= 0 || this.closed;
    };
    await waitFor(`a frame ${t ?? ""} from the client`, find, ms);
    if (at < 0) throw new Error("link closed");
    this.taken.add(at);
    return this.sent[at]!;
  }

  /** Sends f to the client (through the encoder and back). */
  push(f: WireFrame): void {
    if (!this.closed) this.sink.frame(encodeFrame(f));
  }

  /** Answers request req with f (its rid). */
  reply(req: WireFrame, f: WireFrame): void {
    this.push({ ...f, rid: req.rid });
  }

  /** The server closes the connection. */
  drop(code: number = ErrorCode.CLOSED): void {
    if (this.closed) return;
    this.closed = true;
    this.sink.closed(new HeraldError(code, "dropped by the fake server"));
  }

  /** Answers the HELLO with a WELCOME at key sg. */
  async welcome(sg: number[] = [], user = "u1"): Promise<WireFrame> {
    const hello = await this.next(FrameType.HELLO);
    this.reply(hello, { t: FrameType.WELCOME, user, ten: "demo", hb: 60000, maxf: 1 << 20, v: 1, sg });
    return hello;
  }

  /** called by the connector */
  receive(p: Uint8Array): void {
    this.sent.push(decodeFrame(p, { maxFrame: 1 << 24 }));
  }
}

export class FakeServer {
  readonly links: FakeLink[] = [];
  /** When true, attempts fail before opening (the server is down). */
  down = false;
  /** When true, attempts neither open nor fail (a black-holed connect). */
  hang = false;
  attempts = 0;

  readonly connector: Connector = (sink) => {
    this.attempts++;
    if (this.down) {
      queueMicrotask(() => sink.closed(new HeraldError(ErrorCode.IO, "connection refused (fake)")));
      return { send() {}, close() {} };
    }
    if (this.hang) return { send() {}, close: () => queueMicrotask(() => sink.closed(new HeraldError(ErrorCode.CLOSED, "closed by the client"))) };
    const link = new FakeLink(sink);
    this.links.push(link);
    queueMicrotask(() => sink.open());
    return {
      send: (p) => {
        if (!link.closed) link.receive(p);
      },
      close: () => {
        if (link.closed) return;
        link.closed = true;
        queueMicrotask(() => sink.closed(new HeraldError(ErrorCode.CLOSED, "closed by the client")));
      },
    };
  };

  /** The n-th link (0-based), once the client opened it. */
  async link(n: number, ms = 5000): Promise<FakeLink> {
    await waitFor(`connection attempt ${n + 1}`, () => this.links.length > n, ms);
    return this.links[n]!;
  }
}

/** A DELIVER of message seq of conv at position pos (pv: previous position) in group g. */
export function deliver(conv: string, seq: number, g: number, pos: number, pv: number, text = `m${seq}`): WireFrame {
  return { t: FrameType.DELIVER, m: { conv, seq, from: "x", ts: 1, body: new TextEncoder().encode(text), g, pos, pv } };
}

/** A stored message (SYNC_RESULT / HISTORY_RESULT entry). */
export function stored(conv: string, seq: number, g: number, pos: number) {
  return { conv, seq, from: "x", ts: 1, body: new TextEncoder().encode(`m${seq}`), g, pos };
}
