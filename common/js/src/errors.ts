/*
 * errors.ts — the Herald error codes (the same numbers as HERALD_ERRORS in
 * include/herald/error.h, which travel in ERROR frames as "code") and the
 * one error class every SDK call rejects with.
 */

/** Every Herald error code: name → number (include/herald/error.h). */
export const ErrorCode = {
  OK: 0,
  PROTOCOL: 1,
  TOO_BIG: 2,
  UNAUTHORIZED: 3,
  EXPIRED: 4,
  FORBIDDEN: 5,
  NOT_FOUND: 6,
  EXISTS: 7,
  INVAL: 8,
  CAP_EXCEEDED: 9,
  NOT_MEMBER: 10,
  RATE_LIMITED: 11,
  SLOW_CONSUMER: 12,
  IDLE: 13,
  STORAGE: 14,
  NOMEM: 15,
  TIMEOUT: 16,
  CLOSED: 17,
  IO: 18,
  NOT_LEADER: 19,
  UNSUPPORTED: 20,
  SHUTDOWN: 21,
  BUSY: 22,
  INTERNAL: 23,
  UNAVAILABLE: 24,
} as const;

/** The symbolic name of a code, e.g. "NOT_FOUND". */
export type ErrorName = keyof typeof ErrorCode;

/* herald_strerror's texts, indexed by code. */
const DESCRIPTIONS: readonly string[] = [
  "success",
  "malformed frame",
  "frame exceeds the size limit",
  "missing or invalid token",
  "token expired",
  "operation not permitted for this user",
  "no such object",
  "object already exists",
  "invalid argument",
  "conversation member cap exceeded",
  "not a member of the conversation",
  "message rate limit exceeded",
  "output buffer limit exceeded, connection closed",
  "idle timeout",
  "storage error; the operation was not committed",
  "out of memory",
  "timed out",
  "connection closed",
  "network or file I/O error",
  "not the leader for this shard",
  "unsupported frame or version",
  "server is shutting down",
  "server busy, retry later",
  "internal error",
  "no leader reachable for this shard; retry later",
];

const NAMES: readonly string[] = Object.keys(ErrorCode).sort(
  (a, b) => ErrorCode[a as ErrorName] - ErrorCode[b as ErrorName],
);

/** "NOT_FOUND" for 6; "UNKNOWN" for a code this SDK does not know (a newer server). */
export function errName(code: number): ErrorName | "UNKNOWN" {
  return (NAMES[code] as ErrorName | undefined) ?? "UNKNOWN";
}

/** herald_strerror: an English description of code ("unknown error" when unknown). */
export function strerror(code: number): string {
  return DESCRIPTIONS[code] ?? "unknown error";
}

/**
 * The error of every failed SDK call. `code` is the Herald code (a number of
 * ErrorCode), `codeName` its name, `message` "NAME: text" with the server's
 * text when it sent one. `cmid` is set on a failed send: pass it again to
 * retry exactly once.
 */
export class HeraldError extends Error {
  readonly code: number;
  readonly codeName: ErrorName | "UNKNOWN";
  /** The server's text (or the SDK's explanation); never empty. */
  readonly text: string;
  /** send(): the client message id that was used. */
  cmid?: string;

  constructor(code: number, text?: string) {
    const t = text && text.length ? text : strerror(code);
    super(`${errName(code)}: ${t}`);
    this.name = "HeraldError";
    this.code = code;
    this.codeName = errName(code);
    this.text = t;
  }
}

/** True for err being a HeraldError with the named code. */
export function isHeraldError(err: unknown, name?: ErrorName): err is HeraldError {
  return err instanceof HeraldError && (name === undefined || err.code === ErrorCode[name]);
}
