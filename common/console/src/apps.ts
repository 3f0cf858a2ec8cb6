/*
 * apps.ts — the Apps and callbacks screen: the tenant's apps (scopes,
 * callback URL, delivery counts; up to APPS_MAX) and, for the selected app, its callback deliveries: the
 * pending / delivered / failed counts and the events with their state,
 * attempts, next attempt and last error, a "failed only" filter, a
 * redeliver button per event and one for every failed event. The first page
 * refreshes every 2 s while "refresh" is on; "more" loads the next page
 * (and stops the refresh, so the rows stay where they are).
 */
import { ApiError, E_NOT_FOUND, type AppInfo, type CallbackEvent, type EventPage } from "./api.js";
import { badge, errorText, fill, fmtTime, h, show, table } from "./dom.js";
import { pooled } from "./pool.js";
import type { Ctx, Screen } from "./screen.js";

const PAGE = 50;
const APPS_MAX = 500;
const REFRESH_MS = 2000;

function count(v: number | undefined, kind: "ok" | "warn" | "bad"): HTMLElement | string {
  return v === undefined ? "—" : v > 0 ? badge(String(v), kind) : "0";
}

function stateBadge(s: string | undefined): HTMLElement | string {
  if (s === "delivered") return badge("delivered", "ok");
  if (s === "failed") return badge("failed", "bad");
  if (s === "pending") return badge("pending", "warn");
  return show(s);
}

export const appsScreen: Screen = {
  id: "apps",
  title: "Apps and callbacks",
  mount(root: HTMLElement, ctx: Ctx): () => void {
    let stopped = false;
    const err = h("p", { class: "error", id: "apps-error", hidden: true });
    const list = h("section", { id: "app-list" }, h("p", { class: "muted" }, "loading…"));
    const detail = h("section", { id: "app-detail", class: "card" }, h("p", { class: "muted" }, "Select an app to see its callback deliveries."));
    fill(root, h("div", { class: "toolbar" }, h("h2", {}, "Apps and callbacks")), err, list, detail);

    let closeDetail: (() => void) | null = null;
    // The list row of an app: its URL and counts, from the app's latest deliveries page.
    const setRow = (app: string, p: EventPage): void => {
      const tr = list.querySelector(`tr[data-app="${CSS.escape(app)}"]`);
      if (!tr) return;
      if (p.url !== undefined) fill(tr.querySelector("td.url")!, p.url ? h("code", {}, p.url) : h("span", { class: "muted" }, "no callback"));
      fill(tr.querySelector("td.pending")!, count(p.pending, "warn"));
      fill(tr.querySelector("td.delivered")!, count(p.delivered, "ok"));
      fill(tr.querySelector("td.failed")!, count(p.failed, "bad"));
    };
    const open = (a: AppInfo): void => {
      closeDetail?.();
      for (const tr of list.querySelectorAll("tr.selected")) tr.classList.remove("selected");
      list.querySelector(`tr[data-app="${CSS.escape(a.app)}"]`)?.classList.add("selected");
      closeDetail = deliveries(a, detail, ctx, (p) => setRow(a.app, p));
    };

    void (async () => {
      let apps: AppInfo[] = [];
      let moreApps = false;
      try {
        // Every page of apps, up to APPS_MAX.
        for (let after: string | undefined; ; ) {
          const pg = await ctx.api.apps(after);
          apps.push(...pg.apps);
          moreApps = pg.more && pg.apps.length > 0;
          if (!moreApps || apps.length >= APPS_MAX || stopped) break;
          after = pg.apps[pg.apps.length - 1]!.app;
        }
      } catch (e) {
        if (stopped) return;
        fill(list);
        ctx.fail(e, err);
        return;
      }
      if (stopped) return;
      if (!apps.length) {
        fill(list, h("p", { class: "muted" }, "This tenant has no apps (herald --admin app create APP)."));
        return;
      }
      const t = table("apps", ["app", "scopes", "callback URL", "pending", "delivered", "failed", ""]);
      const rows = apps.map((a) => {
        const tr = h(
          "tr",
          { "data-app": a.app },
          h("td", {}, h("strong", {}, a.app)),
          h("td", {}, a.scopes.length ? a.scopes.join(", ") : "—"),
          h("td", { class: "url" }, a.callback_url ? h("code", {}, a.callback_url) : h("span", { class: "muted" }, "…")),
          h("td", { class: "pending" }, "…"),
          h("td", { class: "delivered" }, "…"),
          h("td", { class: "failed" }, "…"),
          h("td", {}, h("button", { class: "open", onclick: () => open(a) }, "Deliveries")),
        );
        t.body.append(tr);
        return tr;
      });
      fill(list, t.table, moreApps ? h("p", { class: "muted" }, `The first ${apps.length} apps.`) : null);
      // Each app's callback URL and counts: the first event of its deliveries.
      void pooled(apps, (a) => ctx.api.events(a.app, { limit: 1 })).then((pages) => {
        if (stopped) return;
        pages.forEach((p, i) => {
          const tr = rows[i]!;
          const a = apps[i]!;
          const cell = (k: string): Element => tr.querySelector(`td.${k}`)!;
          if (p instanceof Error) {
            const none = p instanceof ApiError && p.errcode === E_NOT_FOUND;
            if (!a.callback_url) fill(cell("url"), h("span", { class: none ? "muted" : "error-text" }, none ? "no callback" : errorText(p)));
            for (const k of ["pending", "delivered", "failed"]) cell(k).textContent = "—";
            if (p instanceof ApiError && p.auth) ctx.fail(p, err);
            return;
          }
          const page = p as EventPage;
          if (page.url !== undefined) a.callback_url = page.url;
          setRow(a.app, page);
        });
      });
      const wanted = new URLSearchParams(location.hash.split("?")[1] ?? "").get("app");
      const first = apps.find((a) => a.app === wanted) ?? (apps.length === 1 ? apps[0] : undefined);
      if (first) open(first);
    })();
    return () => {
      stopped = true;
      closeDetail?.();
    };
  },
};

/** The deliveries panel of app A in EL (each page loaded also goes to
 * onPage); the function returned stops it. */
function deliveries(a: AppInfo, el: HTMLElement, ctx: Ctx, onPage: (p: EventPage) => void): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let busy = false;
  let gen = 0; // the latest load: an older answer arriving late is dropped
  let events: CallbackEvent[] = [];
  let more = false;

  const failedOnly = h("input", { type: "checkbox", id: "events-failed" });
  const auto = h("input", { type: "checkbox", id: "events-auto", checked: true });
  const refresh = h("button", { id: "events-refresh" }, "Refresh");
  const redoAll = h("button", { id: "events-redeliver-failed", class: "danger" }, "Redeliver all failed");
  const counts = h("div", { class: "summary", id: "event-counts" });
  const note = h("p", { class: "note", id: "events-note", hidden: true });
  const hint = h("p", { class: "note", id: "events-hint", hidden: true });
  const err = h("p", { class: "error", id: "events-error", hidden: true });
  const rows = h("div", { id: "events" });
  const moreBtn = h("button", { id: "events-more", hidden: true }, "More");
  const url = h("span", { id: "event-url" }, a.callback_url ? h("code", {}, a.callback_url) : h("span", { class: "muted" }, "…"));
  const scope = h("span", { id: "event-scope", class: "muted" });
  fill(
    el,
    h("h3", {}, `${a.app}: callback deliveries`),
    h("div", { class: "kv" }, h("span", { class: "k" }, "callback URL"), url, scope),
    counts,
    h("div", { class: "toolbar" }, h("label", {}, failedOnly, " failed only"), h("label", {}, auto, ` refresh every ${REFRESH_MS / 1000} s`), refresh, redoAll),
    note,
    hint,
    err,
    rows,
    moreBtn,
  );

  const render = (failedTotal: number | undefined): void => {
    // Failed events the list does not hold (the server lists them with "failed only").
    const listedFailed = events.filter((e) => e.state === "failed").length;
    const hidden = !failedOnly.checked && !more && failedTotal !== undefined && failedTotal > listedFailed ? failedTotal - listedFailed : 0;
    fill(hint, hidden ? `${hidden} failed event${hidden === 1 ? " is" : "s are"} not in this list: tick "failed only" to see ${hidden === 1 ? "it" : "them"}.` : "");
    hint.hidden = !hidden;
    if (!events.length) {
      fill(rows, h("p", { class: "muted" }, failedOnly.checked ? "No failed events." : "No events yet."));
    } else {
      const t = table("event-table", ["id", "type", "time", "conversation", "state", "attempts", "next attempt", "last error", ""]);
      for (const e of events) {
        const again = h("button", { class: "redeliver", disabled: e.state === "pending", title: e.state === "pending" ? "already queued" : "queue it again" }, "Redeliver");
        again.addEventListener("click", () => void redeliver({ id: e.id }, again));
        t.body.append(
          h(
            "tr",
            { "data-event": e.id, "data-state": e.state ?? "", class: e.state ?? "" },
            h("td", {}, h("code", {}, e.id)),
            h("td", {}, show(e.type)),
            h("td", {}, fmtTime(e.time)),
            h("td", {}, show(e.conv)),
            h("td", { class: "state" }, stateBadge(e.state)),
            h("td", { class: "attempts" }, show(e.attempts)),
            h("td", {}, e.state === "pending" ? fmtTime(e.next_attempt) : "—"),
            h("td", { class: "last-error" }, show(e.last_error)),
            h("td", {}, again),
          ),
        );
      }
      fill(rows, t.table);
    }
    moreBtn.hidden = !more;
  };

  const setCounts = (p: EventPage): void => {
    if (p.url !== undefined) fill(url, p.url ? h("code", {}, p.url) : h("span", { class: "muted" }, "none"));
    const types = p.eventTypes ? `; only ${p.eventTypes.join(", ")}` : "";
    scope.textContent = p.all === undefined ? "" : p.all ? `(every conversation of the tenant${types})` : `(the app's conversations${types})`;
    const c = (k: string, id: string, v: number | undefined, kind: "ok" | "warn" | "bad"): HTMLElement =>
      h("div", { class: "kv" }, h("span", { class: "k" }, k), h("span", { id }, v === undefined ? "—" : v > 0 ? badge(String(v), kind) : "0"));
    fill(counts, c("pending", "count-pending", p.pending, "warn"), c("delivered", "count-delivered", p.delivered, "ok"), c("failed", "count-failed", p.failed, "bad"));
  };

  /** Loads the first page (AFTER undefined) or the next one. */
  const load = async (after?: string): Promise<void> => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const my = ++gen;
    busy = true;
    try {
      const p = await ctx.api.events(a.app, { failedOnly: failedOnly.checked, limit: PAGE, after });
      if (stopped || my !== gen) return;
      err.hidden = true;
      setCounts(p);
      onPage(p);
      events = after === undefined ? p.events : [...events, ...p.events];
      more = p.more;
      render(p.failed);
    } catch (e) {
      if (stopped || my !== gen) return;
      if (e instanceof ApiError && e.errcode === E_NOT_FOUND && after === undefined) {
        // No callback set: nothing is recorded for this app.
        err.hidden = true;
        fill(url, h("span", { class: "muted" }, `none: herald --admin app callback ${a.app} --url URL`));
        fill(counts);
        events = [];
        more = false;
        fill(rows, h("p", { class: "muted" }, `No deliveries: ${errorText(e)}.`));
        moreBtn.hidden = true;
      } else if (ctx.fail(e, err)) return;
    } finally {
      if (my === gen) busy = false;
    }
    if (!stopped && my === gen && auto.checked && after === undefined) timer = setTimeout(() => void load(), REFRESH_MS);
  };

  const redeliver = async (which: { id: string } | { failed: true }, btn: HTMLButtonElement): Promise<void> => {
    btn.disabled = true;
    try {
      const n = await ctx.api.redeliver(a.app, which);
      if (stopped) return;
      note.hidden = false;
      note.textContent = "id" in which ? `event ${which.id}: requeued ${n}` : `requeued ${n} failed event${n === 1 ? "" : "s"}`;
      await load();
    } catch (e) {
      if (!stopped) ctx.fail(e, err);
    } finally {
      btn.disabled = false;
    }
  };

  failedOnly.addEventListener("change", () => void load());
  refresh.addEventListener("click", () => void load());
  redoAll.addEventListener("click", () => void redeliver({ failed: true }, redoAll));
  moreBtn.addEventListener("click", () => {
    auto.checked = false;
    const last = events[events.length - 1];
    if (last) void load(last.id);
  });
  auto.addEventListener("change", () => {
    if (auto.checked && timer === undefined && !busy) void load();
    else if (!auto.checked && timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
  });
  void load();
  return () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
  };
}
