/*
 * synckey.ts — the client's sync position {shard group → position}
 * (SYNC KEYS in protocol.h): it holds every message of the user's own
 * conversations in that group up to there.
 *
 * Saved as text: base64 of the very bytes libherald's
 * herald_client_sync_key writes (one encoded SYNC frame: 4-byte length +
 * map with "sg"), read back through the same bounded frame decoder.
 */
import { decodeFrame, encodeFrame, withHeader } from "./codec.js";
import { ErrorCode, HeraldError } from "./errors.js";
import { FRAME_HEADER, FRAME_MAX_DEFAULT, FrameType } from "./protocol.js";

export class SyncKey {
  private readonly pos = new Map<number, number>();

  /** The position held for group g (0 when none). */
  get(g: number): number {
    return this.pos.get(g) ?? 0;
  }

  /** Raises group g to p (never lowers). True when it moved. */
  raise(g: number, p: number): boolean {
    if (p <= this.get(g)) return false;
    this.pos.set(g, p);
    return true;
  }

  /** Raises every group to the positions of a flat [g, pos, …] array. */
  raiseAll(sg: readonly number[] | undefined): void {
    for (let i = 0; sg && i + 1 < sg.length; i += 2) this.raise(sg[i]!, sg[i + 1]!);
  }

  /** The flat [g, pos, …] array of the wire ("sg"), groups ascending. */
  toWire(): number[] {
    const out: number[] = [];
    for (const g of [...this.pos.keys()].sort((a, b) => a - b)) out.push(g, this.pos.get(g)!);
    return out;
  }

  /** A copy. */
  clone(): SyncKey {
    const k = new SyncKey();
    for (const [g, p] of this.pos) k.pos.set(g, p);
    return k;
  }

  /** Entries (group, position), groups ascending. */
  entries(): [number, number][] {
    const w = this.toWire();
    const out: [number, number][] = [];
    for (let i = 0; i < w.length; i += 2) out.push([w[i]!, w[i + 1]!]);
    return out;
  }

  /** The key as saved text (base64 of libherald's saved-key bytes). */
  save(): string {
    const bytes = withHeader(encodeFrame({ t: FrameType.SYNC, sg: this.toWire() }));
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }

  /** A key from text written by save(). Throws HeraldError INVAL when it is not one. */
  static load(text: string): SyncKey {
    let bytes: Uint8Array;
    try {
      bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    } catch {
      throw new HeraldError(ErrorCode.INVAL, "saved sync key: not base64");
    }
    if (bytes.length <= FRAME_HEADER) throw new HeraldError(ErrorCode.INVAL, "saved sync key: too short");
    const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
    if (n !== bytes.length - FRAME_HEADER || n > FRAME_MAX_DEFAULT)
      throw new HeraldError(ErrorCode.INVAL, "saved sync key: length prefix does not match");
    let f;
    try {
      f = decodeFrame(bytes.subarray(FRAME_HEADER), { maxFrame: FRAME_MAX_DEFAULT });
    } catch (e) {
      throw new HeraldError(ErrorCode.INVAL, `saved sync key: ${(e as HeraldError).text}`);
    }
    if (f.t !== FrameType.SYNC) throw new HeraldError(ErrorCode.INVAL, "saved sync key: not a SYNC frame");
    const k = new SyncKey();
    k.raiseAll(f.sg);
    return k;
  }
}
