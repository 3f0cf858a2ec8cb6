/*
 * send.ts — the Send screen: an app message (one message from the app into
 * its 1:1 conversation with each recipient) or an announcement (one
 * read-diffused announcement for all of them), to users (a comma list, or
 * @all), departments and tags; the answer shows the message id, how many
 * were reached and the ids that were not valid. Ids are checked here first
 * (Herald's id rule) so a typo is named before anything is sent.
 */
import type { SendRequest, SendResult } from "./api.js";
import { badge, errorText, fill, h, ID_RE, splitList } from "./dom.js";
import type { Ctx, Screen } from "./screen.js";

const TEXT_MAX = 64 * 1024;

/** The request from the form's values, or the reason it is not valid. */
export function buildRequest(v: { agentid: string; touser: string; toparty: string; totag: string; text: string; announce: boolean; msgid: string }): SendRequest | string {
  const agentid = v.agentid.trim();
  if (!ID_RE.test(agentid)) return agentid ? `app id "${agentid}" is not valid (1 to 128 of a-z A-Z 0-9 . _ @ : -)` : "the app id (agentid) is required";
  const touser = splitList(v.touser);
  const toparty = splitList(v.toparty);
  const totag = splitList(v.totag);
  if (touser.includes("@all") && touser.length > 1) return "@all stands alone: it already means every user";
  for (const [what, xs] of [["user", touser], ["department", toparty], ["tag", totag]] as const)
    for (const x of xs) if (x !== "@all" && !ID_RE.test(x)) return `${what} id "${x}" is not valid (1 to 128 of a-z A-Z 0-9 . _ @ : -)`;
  if (toparty.includes("@all") || totag.includes("@all")) return "@all goes in the users field";
  if (!touser.length && !toparty.length && !totag.length) return "no recipients: give users (or @all), departments or tags";
  if (v.text.trim() === "") return "the text is empty";
  if (new TextEncoder().encode(v.text).length > TEXT_MAX) return `the text is over ${TEXT_MAX / 1024} KiB`;
  const msgid = v.msgid.trim();
  if (msgid && !ID_RE.test(msgid)) return `message id "${msgid}" is not valid (1 to 128 of a-z A-Z 0-9 . _ @ : -)`;
  return { agentid, touser, toparty, totag, text: v.text, announce: v.announce, msgid: msgid || undefined };
}

function renderResult(r: SendResult, req: SendRequest): (HTMLElement | null)[] {
  const bad = r.invaliduser.length + r.invalidparty.length + r.invalidtag.length;
  const row = (k: string, id: string, v: string[]): HTMLElement =>
    h("div", { class: "kv" }, h("span", { class: "k" }, k), h("span", { id, class: v.length ? "invalid" : "" }, v.length ? v.join(", ") : "none"));
  const names = (v: string[]): string => (v.length > 20 ? `${v.slice(0, 20).join(", ")} and ${v.length - 20} more` : v.join(", "));
  const kv = (k: string, id: string, v: string, cls = ""): HTMLElement => h("div", { class: "kv" }, h("span", { class: "k" }, k), h("span", { id, class: cls }, v));
  return [
    h(
      "h3",
      {},
      req.announce ? "Announcement sent " : "Message sent ",
      r.duplicate ? badge("duplicate: already sent", "info") : bad ? badge(`${bad} invalid`, "warn") : badge("ok", "ok"),
    ),
    h("div", { class: "kv" }, h("span", { class: "k" }, "msgid"), h("code", { id: "send-msgid" }, r.msgid ?? "—")),
    kv("sent", "send-sent", r.sent === undefined ? "—" : String(r.sent)),
    r.conv ? h("div", { class: "kv" }, h("span", { class: "k" }, "conversation"), h("code", { id: "send-conv" }, r.conv)) : null,
    r.reached ? kv("reached", "send-reached", r.reached.length ? `${r.reached.length}: ${names(r.reached)}` : "nobody") : null,
    r.limited.length ? kv("over the frequency cap", "send-limited", names(r.limited), "invalid") : null,
    r.unreached.length ? kv("not reached", "send-unreached", names(r.unreached), "invalid") : null,
    row("invalid users", "send-invaliduser", r.invaliduser),
    row("invalid departments", "send-invalidparty", r.invalidparty),
    row("invalid tags", "send-invalidtag", r.invalidtag),
  ];
}

export const sendScreen: Screen = {
  id: "send",
  title: "Send",
  mount(root: HTMLElement, ctx: Ctx): () => void {
    let stopped = false;
    const field = (id: string, label: string, input: HTMLElement, hint = ""): HTMLElement =>
      h("label", { class: "field", for: id }, h("span", {}, label), input, hint ? h("small", { class: "muted" }, hint) : null);
    const apps = h("datalist", { id: "send-apps" });
    const agentid = h("input", { id: "send-agentid", list: "send-apps", required: true, autocomplete: "off" });
    const touser = h("input", { id: "send-touser", placeholder: "alice, bob   or   @all" });
    const toparty = h("input", { id: "send-toparty", placeholder: "sales, hr" });
    const totag = h("input", { id: "send-totag", placeholder: "vip" });
    const text = h("textarea", { id: "send-text", rows: 5, required: true });
    const msgid = h("input", { id: "send-msgid-in", placeholder: "optional: retrying with the same id sends once" });
    const kindMsg = h("input", { type: "radio", name: "kind", id: "send-kind-message", value: "message", checked: true });
    const kindAnn = h("input", { type: "radio", name: "kind", id: "send-kind-announce", value: "announce" });
    const go = h("button", { type: "submit", id: "send-go", class: "primary" }, "Send");
    const result = h("section", { id: "send-result", class: "card", hidden: true });
    const form = h(
      "form",
      { id: "send-form", class: "form" },
      h("fieldset", { class: "kind" }, h("legend", {}, "What"), h("label", {}, kindMsg, " app message"), h("label", {}, kindAnn, " announcement")),
      field("send-agentid", "App (agentid)", agentid),
      field("send-touser", "Users (touser)", touser, "comma-separated user ids, or @all"),
      field("send-toparty", "Departments (toparty)", toparty, "comma-separated department ids"),
      field("send-totag", "Tags (totag)", totag, "comma-separated tags"),
      field("send-text", "Text", text),
      field("send-msgid-in", "Message id (msgid)", msgid),
      h("div", { class: "actions" }, go),
      apps,
    );
    fill(root, h("div", { class: "toolbar" }, h("h2", {}, "Send")), h("div", { class: "columns" }, form, result));

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const req = buildRequest({
        agentid: agentid.value,
        touser: touser.value,
        toparty: toparty.value,
        totag: totag.value,
        text: text.value,
        announce: kindAnn.checked,
        msgid: msgid.value,
      });
      result.hidden = false;
      if (typeof req === "string") {
        fill(result, h("p", { class: "error", id: "send-error" }, req));
        return;
      }
      go.disabled = true;
      fill(result, h("p", { class: "muted" }, "sending…"));
      try {
        const r = await ctx.api.send(req);
        if (stopped) return;
        fill(result, ...renderResult(r, req));
      } catch (e) {
        if (stopped) return;
        const p = h("p", { class: "error", id: "send-error" });
        fill(result, h("h3", {}, "Not sent"), p);
        ctx.fail(e, p);
        p.textContent = `not sent: ${errorText(e)}`;
      } finally {
        go.disabled = false;
      }
    });

    // The tenant's apps as suggestions for the app field (a failure only loses the suggestions).
    ctx.api.apps().then(
      ({ apps: list }) => {
        if (stopped) return;
        fill(apps, ...list.map((a) => h("option", { value: a.app })));
        if (!agentid.value && list.length === 1) agentid.value = list[0]!.app;
      },
      (e) => {
        if (!stopped && e && (e as { auth?: boolean }).auth) ctx.fail(e, result);
      },
    );
    return () => {
      stopped = true;
    };
  },
};
