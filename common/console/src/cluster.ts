/*
 * cluster.ts — the Cluster screen: the gateway's readiness (/readyz), the
 * nodes (up / down) and the shard groups (leader, term, commit, applied,
 * lag), refreshed every 2 s while the screen is open (the next refresh is
 * scheduled when the previous one has finished: never two at once). In dev
 * mode the answer has fewer fields: what is there is shown.
 */
import type { ClusterInfo, Readiness } from "./api.js";
import { badge, errorText, fill, h, show, table } from "./dom.js";
import type { Ctx, Screen } from "./screen.js";

export const REFRESH_MS = 2000;

function uptime(s: number): string {
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d} d ${hh} h` : hh ? `${hh} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}

function render(c: ClusterInfo, r: Readiness, out: { summary: HTMLElement; nodes: HTMLElement; groups: HTMLElement }): void {
  const up = c.nodes.filter((n) => n.up === true).length;
  const led = c.groups.filter((g) => (g.leader ?? 0) > 0).length;
  const leaders = c.groups.some((g) => g.leader !== undefined);
  const kv = (k: string, id: string, v: unknown): HTMLElement | null =>
    v === undefined ? null : h("div", { class: "kv" }, h("span", { class: "k" }, k), h("span", { id }, String(v)));
  fill(
    out.summary,
    h("div", { class: "kv" }, h("span", { class: "k" }, "mode"), h("span", { id: "cluster-mode" }, show(c.mode))),
    h(
      "div",
      { class: "kv" },
      h("span", { class: "k" }, "gateway /readyz"),
      h("span", { id: "readyz" }, r.ready ? badge("ready", "ok") : badge("not ready", "bad"), " ", r.ready ? "" : r.reason),
    ),
    c.ready !== undefined
      ? h("div", { class: "kv" }, h("span", { class: "k" }, "cluster ready"), c.ready ? badge("yes", "ok") : badge("no", "bad"))
      : null,
    c.nodes.length ? h("div", { class: "kv" }, h("span", { class: "k" }, "nodes up"), h("span", { id: "nodes-up" }, `${up} of ${c.nodes.length}`)) : null,
    leaders ? h("div", { class: "kv" }, h("span", { class: "k" }, "groups led"), h("span", { id: "groups-led" }, `${led} of ${c.groups.length}`)) : null,
    kv("answered by node", "cluster-node", c.node),
    kv("version", "cluster-version", c.version),
    kv("uptime", "cluster-uptime", c.uptime_s === undefined ? undefined : uptime(c.uptime_s)),
    kv("connections", "cluster-connections", c.connections),
    kv("users online", "cluster-users-online", c.users_online),
  );

  const nt = table("nodes", ["node", "address", "state"]);
  for (const n of c.nodes)
    nt.body.append(
      h(
        "tr",
        { "data-node": n.id, class: n.up === false ? "down" : "" },
        h("td", {}, n.id),
        h("td", {}, show(n.addr)),
        h("td", { class: "state" }, n.up === undefined ? "—" : n.up ? badge("up", "ok") : badge("down", "bad")),
      ),
    );
  fill(out.nodes, h("h3", {}, "Nodes"), c.nodes.length ? nt.table : h("p", { class: "muted" }, "No node list (dev mode: one process)."));

  const gt = table("groups", ["group", "role", "leader", "term", "commit", "applied", "lag", "replicas"]);
  for (const g of c.groups) {
    const lagging = (g.lag ?? 0) > 0 || (g.commit !== undefined && g.applied !== undefined && g.applied < g.commit);
    gt.body.append(
      h(
        "tr",
        { "data-group": g.group, class: lagging ? "lag" : "" },
        h("td", {}, g.group),
        h("td", {}, show(g.role)),
        h("td", { class: "leader" }, g.leader === undefined ? "—" : g.leader > 0 ? g.leader : badge("none", "bad")),
        h("td", {}, show(g.term)),
        h("td", {}, show(g.commit)),
        h("td", {}, show(g.applied)),
        h("td", {}, g.lag === undefined ? "—" : g.lag > 0 ? badge(String(g.lag), "warn") : "0"),
        h("td", { class: "replicas muted" }, g.replicas.length ? g.replicas.map((r) => `n${r.node} ${show(r.lag)}`).join(" · ") : "—"),
      ),
    );
  }
  fill(out.groups, h("h3", {}, "Groups"), c.groups.length ? gt.table : h("p", { class: "muted" }, "No group list."));
}

export const clusterScreen: Screen = {
  id: "cluster",
  title: "Cluster",
  mount(root: HTMLElement, ctx: Ctx): () => void {
    const auto = h("input", { type: "checkbox", id: "cluster-auto", checked: true });
    const stamp = h("span", { class: "muted", id: "cluster-updated" }, "loading…");
    const err = h("p", { class: "error", id: "cluster-error", hidden: true });
    const summary = h("div", { class: "summary", id: "cluster-summary" });
    const nodes = h("section", { id: "cluster-nodes" });
    const groups = h("section", { id: "cluster-groups" });
    fill(
      root,
      h("div", { class: "toolbar" }, h("h2", {}, "Cluster"), h("label", {}, auto, ` refresh every ${REFRESH_MS / 1000} s`), stamp),
      err,
      summary,
      h("div", { class: "columns" }, nodes, groups),
    );

    let stopped = false;
    let busy = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async (): Promise<void> => {
      timer = undefined;
      busy = true;
      const [c, r] = await Promise.allSettled([ctx.api.cluster(), ctx.api.readyz()]);
      busy = false;
      if (stopped) return;
      const ready: Readiness = r.status === "fulfilled" ? r.value : { ready: false, status: 0, reason: errorText(r.reason) };
      if (c.status === "fulfilled") {
        err.hidden = true;
        render(c.value, ready, { summary, nodes, groups });
        stamp.textContent = `updated ${new Date().toLocaleTimeString()}`;
      } else {
        if (ctx.fail(c.reason, err)) return;
        err.hidden = false;
        stamp.textContent = `last attempt ${new Date().toLocaleTimeString()} failed`;
      }
      if (auto.checked) timer = setTimeout(tick, REFRESH_MS);
    };
    auto.addEventListener("change", () => {
      if (auto.checked && timer === undefined && !busy) void tick();
      else if (!auto.checked && timer !== undefined) {
        clearTimeout(timer);
        timer = undefined;
      }
    });
    void tick();
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    };
  },
};
