/*
 * session.ts — the signed-in admin token: kept in sessionStorage (this tab
 * only, gone when the tab closes), cleared on sign-out. The token's claims
 * (tenant, user, admin flag, expiry) are decoded for display only: the
 * gateway verifies the signature and decides; the console never trusts them.
 *
 * A token is base64url(msgpack{ten,user,exp,admin}) "." base64url(HMAC).
 */
import { decode } from "@msgpack/msgpack";

const KEY = "herald.console.token";

export function loadToken(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function saveToken(token: string): void {
  sessionStorage.setItem(KEY, token);
}

export function clearToken(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    /* storage disabled: nothing kept */
  }
}

export interface Claims {
  tenant: string;
  user: string;
  admin: boolean;
  /** Expiry, Unix seconds (undefined when the token has none). */
  exp?: number;
}

function unbase64url(s: string): Uint8Array {
  const b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

/** The claims of TOKEN, or null when it is not shaped like a Herald token. */
export function claimsOf(token: string): Claims | null {
  const dot = token.indexOf(".");
  if (dot <= 0 || dot !== token.lastIndexOf(".")) return null;
  try {
    const m = decode(unbase64url(token.slice(0, dot)));
    if (m === null || typeof m !== "object" || Array.isArray(m)) return null;
    const c = m as Record<string, unknown>;
    if (typeof c.ten !== "string" || typeof c.user !== "string") return null;
    const exp = typeof c.exp === "number" ? c.exp : typeof c.exp === "bigint" ? Number(c.exp) : undefined;
    return { tenant: c.ten, user: c.user, admin: c.admin === true, exp };
  } catch {
    return null;
  }
}
