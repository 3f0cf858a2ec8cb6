/*
 * dom.ts — a few DOM helpers. Text from the server always goes in as text
 * nodes (never innerHTML), so a name or an error message cannot inject markup.
 */
import { ApiError } from "./api.js";

type Child = Node | string | number | null | undefined | false;
type Props = Record<string, string | number | boolean | EventListener | undefined>;

/** An element TAG with attributes / listeners (on* keys) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === "class") el.className = String(v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, ...children);
  return el;
}

export function append(el: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces EL's children. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

/** "—" for a missing value. */
export function show(v: unknown): string {
  if (v === undefined || v === null || v === "") return "—";
  return String(v);
}

/** A time from the API (Unix seconds or ms, or a string) as "YYYY-MM-DD HH:MM:SSZ". */
export function fmtTime(v: number | string | undefined): string {
  if (v === undefined || v === "") return "—";
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isFinite(n)) return String(v);
  if (n <= 0) return "—";
  const ms = n > 1e11 ? n : n * 1000;
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** A small coloured label: kind ok / warn / bad / info. */
export function badge(text: string, kind: "ok" | "warn" | "bad" | "info"): HTMLElement {
  return h("span", { class: `badge ${kind}` }, text);
}

/** An error's text for the page: "CODE: message" for an ApiError. */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.status ? `${e.message} (HTTP ${e.status})` : e.message;
  return e instanceof Error ? e.message : String(e);
}

/** A table with a header row; rows are appended to its tbody. */
export function table(id: string, headers: string[]): { table: HTMLTableElement; body: HTMLTableSectionElement } {
  const body = h("tbody");
  const t = h("table", { id, class: "grid" }, h("thead", {}, h("tr", {}, ...headers.map((x) => h("th", {}, x)))), body);
  return { table: t, body };
}

/** "a, b ,c" → ["a","b","c"] (blanks dropped). */
export function splitList(s: string): string[] {
  return s
    .split(/[,|\s]+/)
    .map((x) => x.trim())
    .filter((x) => x !== "");
}

/** Herald's id rule: 1 to 128 of a-z A-Z 0-9 . _ @ : - */
export const ID_RE = /^[A-Za-z0-9._@:-]{1,128}$/;
