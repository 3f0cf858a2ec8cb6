/*
 * directory.ts — the Tenant and directory screen: the tenant (from the
 * token), the department tree from the root (each level loaded when it is
 * opened), the users of the selected department, and a user's card. Lookups
 * run at most POOL at a time and a level shows at most SHOW_MAX entries.
 */
import type { Department, User } from "./api.js";
import { badge, errorText, fill, fmtTime, h, ID_RE, show, table } from "./dom.js";
import { pooled } from "./pool.js";
import type { Ctx, Screen } from "./screen.js";

const NOT_LISTED = "not listed by the server";
const SHOW_MAX = 200;

export const directoryScreen: Screen = {
  id: "directory",
  title: "Tenant and directory",
  mount(root: HTMLElement, ctx: Ctx): () => void {
    let stopped = false;
    let noRoot = false;
    const err = h("p", { class: "error", id: "dir-error", hidden: true });
    const tree = h("ul", { class: "tree", id: "dept-tree" });
    const dept = h("section", { id: "dept-card", class: "card" }, h("p", { class: "muted" }, "Select a department."));
    const card = h("section", { id: "user-card", class: "card" }, h("p", { class: "muted" }, "Select a user."));
    const userIn = h("input", { id: "user-find", placeholder: "user id", size: 18 });
    const deptIn = h("input", { id: "dept-find", placeholder: "department id", size: 18 });
    const c = ctx.claims;
    const tenant = h(
      "div",
      { class: "summary", id: "tenant" },
      h("div", { class: "kv" }, h("span", { class: "k" }, "tenant"), h("span", { id: "tenant-name" }, show(c?.tenant))),
      h("div", { class: "kv" }, h("span", { class: "k" }, "signed in as"), show(c?.user), " ", c ? (c.admin ? badge("admin", "info") : badge("not admin", "warn")) : null),
      c?.exp ? h("div", { class: "kv" }, h("span", { class: "k" }, "token expires"), fmtTime(c.exp)) : null,
    );
    const failed = (e: unknown, where: HTMLElement): void => {
      if (!stopped) ctx.fail(e, where);
    };

    const showUser = async (userid: string): Promise<void> => {
      fill(card, h("p", { class: "muted" }, `loading ${userid}…`));
      try {
        const u = await ctx.api.user(userid);
        if (stopped) return;
        fill(
          card,
          h("h3", {}, u.name || u.userid),
          h(
            "dl",
            {},
            h("dt", {}, "user id"),
            h("dd", { class: "userid" }, u.userid),
            h("dt", {}, "name"),
            h("dd", {}, show(u.name)),
            h("dt", {}, "title"),
            h("dd", {}, show(u.title)),
            h("dt", {}, "department"),
            h("dd", {}, u.department ? h("a", { href: "#directory", onclick: (ev: Event) => (ev.preventDefault(), void showDept(u.department!)) }, u.department) : "—"),
            h("dt", {}, "kind"),
            h("dd", { class: "kind" }, u.kind ? badge(u.kind, u.kind === "external" ? "warn" : "info") : "—"),
          ),
        );
      } catch (e) {
        const p = h("p", { class: "error" });
        fill(card, p);
        failed(e, p);
        p.textContent = `${userid}: ${errorText(e)}`;
      }
    };

    const showDept = async (id: string, known?: Department): Promise<void> => {
      fill(dept, h("p", { class: "muted" }, `loading ${id || "the root"}…`));
      let d: Department;
      try {
        d = known ?? (await ctx.api.department(id));
      } catch (e) {
        const p = h("p", { class: "error" });
        fill(dept, p);
        failed(e, p);
        p.textContent = `${id || "root"}: ${errorText(e)}`;
        return;
      }
      if (stopped) return;
      // Without a root, the tree starts at the department opened last.
      if (noRoot && !tree.querySelector(`[data-dept="${CSS.escape(d.id)}"]`)) tree.replaceChildren(item(d));
      for (const el of tree.querySelectorAll(".selected")) el.classList.remove("selected");
      tree.querySelector(`[data-dept="${CSS.escape(d.id)}"] > .name`)?.classList.add("selected");
      const users = table("dept-users", ["user id", "name", "title", "kind"]);
      const all = d.users ?? [];
      const shown = all.slice(0, SHOW_MAX);
      const rows = shown.map((u) => {
        const tr = h(
          "tr",
          { "data-user": u },
          h("td", {}, h("a", { href: "#directory", onclick: (ev: Event) => (ev.preventDefault(), void showUser(u)) }, u)),
          h("td", { class: "name" }, "…"),
          h("td", { class: "title" }, ""),
          h("td", { class: "kind" }, ""),
        );
        users.body.append(tr);
        return tr;
      });
      fill(
        dept,
        h("h3", {}, d.name || d.id || "root"),
        h(
          "dl",
          {},
          h("dt", {}, "id"),
          h("dd", {}, show(d.id)),
          h("dt", {}, "parent"),
          h("dd", {}, d.parent ? h("a", { href: "#directory", onclick: (ev: Event) => (ev.preventDefault(), void showDept(d.parent!)) }, d.parent) : "—"),
          h("dt", {}, "sub-departments"),
          h("dd", {}, d.children ? d.children.length : NOT_LISTED),
          h("dt", {}, "users"),
          h("dd", { id: "dept-user-count" }, d.users ? d.users.length : NOT_LISTED),
        ),
        all.length ? users.table : h("p", { class: "muted" }, d.users ? "No users in this department." : `Users: ${NOT_LISTED}.`),
        all.length > SHOW_MAX ? h("p", { class: "muted" }, `and ${all.length - SHOW_MAX} more`) : null,
        d.more ? h("p", { class: "muted", id: "dept-more" }, "The server listed only the first sub-departments and users of this department.") : null,
      );
      const cards = await pooled(shown, (u) => ctx.api.user(u));
      if (stopped) return;
      cards.forEach((u, i) => {
        const tr = rows[i]!;
        const cell = (k: string): Element => tr.querySelector(`.${k}`)!;
        if (u instanceof Error) {
          cell("name").textContent = errorText(u);
          return;
        }
        const x = u as User;
        cell("name").textContent = show(x.name);
        cell("title").textContent = show(x.title);
        cell("kind").textContent = show(x.kind);
      });
      const refused = cards.find((u) => u instanceof Error);
      if (refused) failed(refused, err);
    };

    /** A tree item for D; its children are loaded when it is opened. */
    const item = (d: Department): HTMLLIElement => {
      const children = d.children ?? [];
      const kids = h("ul", { hidden: true });
      const toggle = h(
        "button",
        { class: "toggle", title: d.children ? "open" : `sub-departments: ${NOT_LISTED}`, disabled: children.length === 0 },
        children.length ? "▸" : "·",
      );
      let loaded = false;
      toggle.addEventListener("click", async () => {
        if (!kids.hidden) {
          kids.hidden = true;
          toggle.textContent = "▸";
          return;
        }
        kids.hidden = false;
        toggle.textContent = "▾";
        if (loaded) return;
        loaded = true;
        kids.append(h("li", { class: "muted" }, "loading…"));
        const ids = children.slice(0, SHOW_MAX);
        const got = await pooled(ids, (id) => ctx.api.department(id));
        if (stopped) return;
        kids.replaceChildren();
        got.forEach((c, i) => {
          if (c instanceof Error) {
            kids.append(h("li", { class: "error" }, `${ids[i]}: ${errorText(c)}`));
            failed(c, err);
          } else kids.append(item(c as Department));
        });
        if (children.length > SHOW_MAX) kids.append(h("li", { class: "muted" }, `and ${children.length - SHOW_MAX} more`));
      });
      const name = h("button", { class: "name", onclick: () => void showDept(d.id, d) }, d.name || d.id || "root", d.name && d.id ? h("span", { class: "muted" }, ` ${d.id}`) : null);
      return h("li", { "data-dept": d.id }, toggle, name, kids);
    };

    fill(
      root,
      h("div", { class: "toolbar" }, h("h2", {}, "Tenant and directory")),
      tenant,
      err,
      h(
        "form",
        { class: "toolbar", id: "dir-find" },
        userIn,
        h("button", { type: "submit", id: "user-find-go" }, "Show user"),
        deptIn,
        h("button", { type: "button", id: "dept-find-go" }, "Open department"),
      ),
      h("div", { class: "columns three" }, h("section", {}, h("h3", {}, "Departments"), tree), dept, card),
    );
    root.querySelector("#dir-find")!.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const u = userIn.value.trim();
      if (!ID_RE.test(u)) {
        fill(card, h("p", { class: "error" }, `"${u}" is not a user id (1 to 128 of a-z A-Z 0-9 . _ @ : -)`));
        return;
      }
      void showUser(u);
    });
    root.querySelector("#dept-find-go")!.addEventListener("click", () => {
      const d = deptIn.value.trim();
      if (d !== "" && !ID_RE.test(d)) {
        fill(dept, h("p", { class: "error" }, `"${d}" is not a department id (1 to 128 of a-z A-Z 0-9 . _ @ : -)`));
        return;
      }
      void showDept(d);
    });

    void (async () => {
      tree.append(h("li", { class: "muted" }, "loading…"));
      try {
        const r = await ctx.api.department("");
        if (stopped) return;
        if (r.name === undefined && ctx.claims) r.name = ctx.claims.tenant;
        tree.replaceChildren(item(r));
        (tree.querySelector(".toggle") as HTMLButtonElement | null)?.click();
        void showDept(r.id, r);
      } catch (e) {
        tree.replaceChildren();
        noRoot = true;
        failed(e, err);
        err.textContent = `The root department did not load (${errorText(e)}): open a department by id above.`;
      }
    })();
    return () => {
      stopped = true;
    };
  },
};
