/*
 * main.ts — the console's shell: the sign-in screen (an admin token pasted,
 * checked against the gateway, kept in sessionStorage), the tabs and the
 * hash router (#cluster, #directory, #send, #apps), sign-out. A token the
 * gateway refuses (HTTP 401/403) on any screen signs out with the reason.
 */
import { Api, ApiError } from "./api.js";
import { appsScreen } from "./apps.js";
import { clusterScreen } from "./cluster.js";
import { directoryScreen } from "./directory.js";
import { errorText, fill, fmtTime, h } from "./dom.js";
import type { Ctx, Screen } from "./screen.js";
import { sendScreen } from "./send.js";
import { claimsOf, clearToken, loadToken, saveToken } from "./session.js";

const SCREENS: Screen[] = [clusterScreen, directoryScreen, sendScreen, appsScreen];
const TOKEN_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const app = document.getElementById("app")!;
let unmount: (() => void) | null = null;
let ctx: Ctx | null = null;

function refusal(e: ApiError): string {
  return `The gateway refused the token: ${errorText(e)}. Sign in with a tenant admin token (herald --admin token --user admin).`;
}

function stopScreen(): void {
  unmount?.();
  unmount = null;
}

function signOut(message?: string): void {
  stopScreen();
  ctx = null;
  clearToken();
  signIn(message);
}

function signIn(message?: string): void {
  document.title = "Herald console: sign in";
  const token = h("textarea", { id: "token", rows: 4, placeholder: "token", autocomplete: "off", spellcheck: "false" });
  const error = h("p", { id: "signin-error", class: "error", role: "alert", hidden: !message }, message ?? "");
  const go = h("button", { type: "submit", id: "signin-go", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { id: "signin", class: "signin card" },
    h("h1", {}, "Herald admin console"),
    h("p", {}, "Paste a tenant admin token. Make one with ", h("code", {}, "herald --admin token --user admin"), " (HERALD_SECRET and HERALD_TENANT set)."),
    token,
    h("div", { class: "actions" }, go),
    error,
    h("p", { class: "muted" }, "The token stays in this tab (sessionStorage) until you sign out or close it."),
  );
  fill(app, form);
  token.focus();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const t = token.value.trim().replace(/^Bearer\s+/i, "");
    const fail = (m: string): void => {
      error.hidden = false;
      error.textContent = m;
    };
    if (t === "") return fail("Paste a token first.");
    if (!TOKEN_RE.test(t)) return fail("That is not a Herald token (two base64url parts joined by a dot).");
    go.disabled = true;
    error.hidden = true;
    try {
      await new Api(t).cluster();
    } catch (e) {
      go.disabled = false;
      if (e instanceof ApiError && e.auth) return fail(refusal(e));
      return fail(`Could not check the token: ${errorText(e)}`);
    }
    saveToken(t);
    signedIn(t);
  });
}

function signedIn(token: string): void {
  const claims = claimsOf(token);
  const c: Ctx = {
    api: new Api(token),
    claims,
    fail(e: unknown, where: HTMLElement): boolean {
      if (ctx !== c) return true; // signed out meanwhile
      if (e instanceof ApiError && e.auth) {
        signOut(refusal(e));
        return true;
      }
      where.textContent = errorText(e);
      where.hidden = false;
      return false;
    },
  };
  ctx = c;
  const tabs = h("nav", { class: "tabs", id: "tabs" }, ...SCREENS.map((s) => h("a", { href: `#${s.id}`, "data-screen": s.id }, s.title)));
  const who = h(
    "span",
    { class: "who", id: "who" },
    claims ? `${claims.user} @ ${claims.tenant}` : "signed in",
    claims?.exp ? h("span", { class: "muted" }, ` (until ${fmtTime(claims.exp)})`) : null,
  );
  const out = h("button", { id: "signout", onclick: () => signOut() }, "Sign out");
  const view = h("main", { id: "view" });
  fill(app, h("header", { class: "bar" }, h("strong", { class: "brand" }, "Herald"), tabs, who, out), view);
  route(view, tabs);
}

function route(view: HTMLElement, tabs: HTMLElement): void {
  const go = (): void => {
    if (!ctx || !view.isConnected) {
      window.removeEventListener("hashchange", go);
      return;
    }
    const id = location.hash.slice(1).split("?")[0];
    const s = SCREENS.find((x) => x.id === id) ?? SCREENS[0]!;
    for (const a of tabs.querySelectorAll("a")) a.classList.toggle("active", a.dataset.screen === s.id);
    document.title = `Herald console: ${s.title}`;
    stopScreen();
    unmount = s.mount(view, ctx);
  };
  window.addEventListener("hashchange", go);
  go();
}

const saved = loadToken();
if (saved) signedIn(saved);
else signIn();
