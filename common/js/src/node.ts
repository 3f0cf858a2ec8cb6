/*
 * node.ts — the Node.js part of the SDK ("herald-client/node"): a TCP
 * (and TLS) connector with the 4-byte big-endian length prefix of the
 * gateway's client port, and token minting for app servers. Browsers use
 * webSocket() from the main entry instead; nothing here is bundled for them.
 */
import { createHmac } from "node:crypto";
import * as net from "node:net";
import * as tls from "node:tls";
import { Encoder } from "@msgpack/msgpack";
import { ErrorCode, HeraldError } from "./errors.js";
import { FRAME_HEADER } from "./protocol.js";
import type { Connection, Connector, TransportSink } from "./transport.js";

export * from "./index.js";

export interface TcpOptions {
  /** tls:// addresses: PEM of the CA the gateway's certificate must chain to
   * (default: Node's bundled roots). */
  ca?: string | Buffer;
}

/* OpenSSL's verification failures as Node names them. */
const TLS_VERIFY = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "HOSTNAME_MISMATCH",
]);

/* "host:port", "[v6]:port", with an optional tcp:// or tls:// prefix. */
function parseAddr(addr: string): { host: string; port: number; tls: boolean } {
  let rest = addr;
  let secure = false;
  if (rest.startsWith("tls://")) {
    secure = true;
    rest = rest.slice(6);
  } else if (rest.startsWith("tcp://")) rest = rest.slice(6);
  const colon = rest.lastIndexOf(":");
  let host = colon > 0 ? rest.slice(0, colon) : "";
  const port = Number(colon > 0 ? rest.slice(colon + 1) : "");
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  if (!host || !Number.isInteger(port) || port <= 0 || port > 65535)
    throw new HeraldError(ErrorCode.INVAL, `bad address "${addr}" (want host:port)`);
  return { host, port, tls: secure };
}

/**
 * A connector for the gateway's TCP client port ("127.0.0.1:7400"; with
 * "tls://host:port" TLS, the certificate verified against opts.ca and the
 * host name: one that does not verify fails the attempt with UNAUTHORIZED,
 * which the client takes as a refusal). Frames are a 4-byte big-endian length + one msgpack map; a
 * header announcing more than the cap (or 0 bytes) fails the connection
 * before the body is buffered.
 */
export function tcp(addr: string, opts: TcpOptions = {}): Connector {
  const a = parseAddr(addr);
  return (sink: TransportSink, maxFrame: number): Connection => {
    let done = false;
    let opened = false;
    let chunks: Buffer[] = [];
    let have = 0;
    const sock: net.Socket = a.tls
      ? tls.connect({ host: a.host, port: a.port, servername: net.isIP(a.host) ? undefined : a.host, ca: opts.ca })
      : net.connect({ host: a.host, port: a.port });
    const finish = (err: HeraldError): void => {
      if (done) return;
      done = true;
      sock.destroy();
      sink.closed(err);
    };
    sock.setNoDelay(true);
    sock.on(a.tls ? "secureConnect" : "connect", () => {
      if (done) return;
      opened = true;
      sink.open();
    });
    sock.on("data", (d: Buffer) => {
      chunks.push(d);
      have += d.length;
      while (!done && have >= FRAME_HEADER) {
        const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, have);
        chunks = [buf];
        const n = buf.readUInt32BE(0);
        if (n === 0) return finish(new HeraldError(ErrorCode.PROTOCOL, "zero-length frame"));
        if (n > maxFrame)
          return finish(new HeraldError(ErrorCode.TOO_BIG, `frame of ${n} bytes over the cap of ${maxFrame}`));
        if (have < FRAME_HEADER + n) return;
        // A copy: decoded strings and bodies may point into it.
        const payload = new Uint8Array(buf.subarray(FRAME_HEADER, FRAME_HEADER + n));
        const rest = buf.subarray(FRAME_HEADER + n);
        chunks = rest.length ? [rest] : [];
        have = rest.length;
        sink.frame(payload);
      }
    });
    sock.on("error", (e: NodeJS.ErrnoException) => {
      // A certificate that does not verify is a refusal, as in libherald.
      if (a.tls && !opened && e.code && (TLS_VERIFY.has(e.code) || e.code.startsWith("ERR_TLS_CERT")))
        return finish(new HeraldError(ErrorCode.UNAUTHORIZED, `the server's certificate does not verify: ${e.code}`));
      finish(new HeraldError(opened ? ErrorCode.CLOSED : ErrorCode.IO, `${addr}: ${e.code ?? e.message}`));
    });
    sock.on("close", () => finish(new HeraldError(ErrorCode.CLOSED, "connection closed by the server")));
    return {
      send(p: Uint8Array) {
        if (done || !opened) return;
        const h = Buffer.allocUnsafe(FRAME_HEADER);
        h.writeUInt32BE(p.length, 0);
        sock.write(Buffer.concat([h, p]));
      },
      close() {
        queueMicrotask(() => finish(new HeraldError(ErrorCode.CLOSED, "closed by the client")));
      },
    };
  };
}

const ID_RE = /^[A-Za-z0-9._@:-]{1,128}$/;

export interface MintOptions {
  /** Seconds the token is valid from now (default 3600). */
  ttlSeconds?: number;
  /** The tenant-admin role. */
  admin?: boolean;
  /** Now, in seconds since the epoch (default: the system clock). */
  now?: number;
}

/**
 * Mints a token for user of tenant, signed with the tenant's secret
 * (64 hex characters, HERALD_SECRET) — what herald_token_mint does: an app
 * server logs its users in its own way and gives each a token. Never ship
 * the secret to a device. Throws HeraldError INVAL for a bad secret, id
 * (1 to 128 of a-z A-Z 0-9 . _ @ : -) or ttl.
 */
export function mintToken(secretHex: string, tenant: string, user: string, opts: MintOptions = {}): string {
  if (!/^[0-9a-fA-F]{64}$/.test(secretHex)) throw new HeraldError(ErrorCode.INVAL, "the secret must be 64 hex characters");
  if (!ID_RE.test(tenant) || !ID_RE.test(user))
    throw new HeraldError(ErrorCode.INVAL, "ids are 1 to 128 of a-z A-Z 0-9 . _ @ : -");
  const ttl = opts.ttlSeconds ?? 3600;
  if (!Number.isInteger(ttl) || ttl <= 0) throw new HeraldError(ErrorCode.INVAL, "ttlSeconds must be a positive integer");
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  // The claims in token.c's order: ten, user, exp, admin.
  const claims = new Encoder().encode({ ten: tenant, user, exp: now + ttl, admin: opts.admin === true });
  const mac = createHmac("sha256", Buffer.from(secretHex, "hex")).update(claims).digest();
  return `${Buffer.from(claims).toString("base64url")}.${mac.toString("base64url")}`;
}
