/*
 * screen.ts — what every screen gets from the shell (main.ts) and gives back.
 */
import type { Api } from "./api.js";
import type { Claims } from "./session.js";

export interface Ctx {
  api: Api;
  /** The token's claims (display only), null when it does not decode. */
  claims: Claims | null;
  /**
   * Reports E in the element WHERE; a refused token (HTTP 401/403) signs
   * out instead, with the reason on the sign-in screen. True when it signed out.
   */
  fail(e: unknown, where: HTMLElement): boolean;
}

export interface Screen {
  /** The hash of its address (#cluster) and its tab's label. */
  id: string;
  title: string;
  /** Builds the screen in ROOT; the function returned stops its timers. */
  mount(root: HTMLElement, ctx: Ctx): () => void;
}
