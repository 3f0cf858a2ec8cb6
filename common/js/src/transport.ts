/*
 * transport.ts — how frames reach a gateway. The client asks its Connector
 * for one Connection per attempt (every reconnect asks again); a
 * Connection moves whole frame payloads (one msgpack map each, no length
 * prefix) and reports what happens through the sink it was given.
 *
 * Contract: sink.open() once the link is up (before any frame), then
 * sink.frame() per received payload in order, and sink.closed() exactly
 * once at the end (also when opening fails, and after close() was called);
 * nothing after closed(). send() before open() or after closed() is
 * ignored. All sink calls happen from the event loop, never re-entrantly
 * from inside send() or close().
 */
import { ErrorCode, HeraldError } from "./errors.js";

export interface TransportSink {
  open(): void;
  frame(payload: Uint8Array): void;
  /** err: why (HeraldError: IO, CLOSED, TOO_BIG, PROTOCOL …). */
  closed(err: HeraldError): void;
}

export interface Connection {
  /** Sends one frame payload (a msgpack map). */
  send(payload: Uint8Array): void;
  /** Closes the link; sink.closed() follows. */
  close(): void;
}

/** Opens one connection attempt. maxFrame: the largest payload to accept. */
export type Connector = (sink: TransportSink, maxFrame: number) => Connection;

/* The parts of the WebSocket API used here (the DOM's, or a compatible one). */
interface WebSocketLike {
  binaryType: string;
  readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}
type WebSocketCtor = new (url: string) => WebSocketLike;

/**
 * A WebSocket connector: url like "ws://127.0.0.1:7401/ws" (wss:// for TLS).
 * Each binary message carries exactly one frame. A text message, or a
 * binary one over the cap, fails the connection (PROTOCOL / TOO_BIG).
 * `impl`: a WebSocket class other than globalThis.WebSocket (e.g. the "ws"
 * package in older Node versions).
 */
export function webSocket(url: string, impl?: WebSocketCtor): Connector {
  return (sink, maxFrame) => {
    const Ctor = impl ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    let done = false;
    let opened = false;
    let ws: WebSocketLike | null = null;
    const finish = (err: HeraldError): void => {
      if (done) return;
      done = true;
      if (ws) {
        ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
        try {
          ws.close();
        } catch {
          /* already closing */
        }
      }
      sink.closed(err);
    };
    if (!Ctor) {
      // Retrying cannot help: a refusal (INVAL) that says what to do.
      queueMicrotask(() =>
        finish(new HeraldError(ErrorCode.INVAL, "no WebSocket here: pass one to webSocket(url, impl) (Node 20: node --experimental-websocket)")),
      );
      return { send() {}, close() {} };
    }
    try {
      ws = new Ctor(url);
    } catch (e) {
      queueMicrotask(() => finish(new HeraldError(ErrorCode.INVAL, `bad WebSocket address ${url}: ${(e as Error).message}`)));
      return { send() {}, close() {} };
    }
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      if (done) return;
      opened = true;
      sink.open();
    };
    ws.onmessage = (ev) => {
      if (done) return;
      const d = ev.data;
      if (!(d instanceof ArrayBuffer)) {
        finish(new HeraldError(ErrorCode.PROTOCOL, "text WebSocket message (frames are binary)"));
        return;
      }
      if (d.byteLength > maxFrame) {
        finish(new HeraldError(ErrorCode.TOO_BIG, `frame of ${d.byteLength} bytes over the cap of ${maxFrame}`));
        return;
      }
      sink.frame(new Uint8Array(d));
    };
    ws.onerror = () => {
      // Browsers follow with onclose (and its code); some implementations
      // (Node 20's) do not after a refused connect: end here either way.
      finish(new HeraldError(opened ? ErrorCode.CLOSED : ErrorCode.IO, opened ? "WebSocket error" : `cannot open ${url}`));
    };
    ws.onclose = (ev) => {
      finish(
        new HeraldError(
          opened ? ErrorCode.CLOSED : ErrorCode.IO,
          opened
            ? `WebSocket closed (${ev.code}${ev.reason ? " " + ev.reason : ""})`
            : `cannot open ${url} (${ev.code})`,
        ),
      );
    };
    return {
      send(p) {
        if (!done && opened && ws && ws.readyState === 1) ws.send(p);
      },
      close() {
        queueMicrotask(() => finish(new HeraldError(ErrorCode.CLOSED, "closed by the client")));
      },
    };
  };
}
