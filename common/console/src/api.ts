/*
 * api.ts — every call the console makes to the gateway, in one place: the
 * JSON API under /api/v1/ (the admin token as `Authorization: Bearer`) and
 * the gateway's /readyz. The answer types are what the screens read; each
 * answer is normalized here (a missing field becomes undefined or an empty
 * list, "a|b" and ["a","b"] both become a list), so a change in the server's
 * shapes is a change in this file only.
 *
 * Every answer is JSON with "errcode" (0 = ok, else a code of
 * include/herald/error.h) and "errmsg"; an HTTP error status, a non-zero
 * errcode, a body that is not JSON, a network failure or a timeout all
 * become an ApiError.
 */

/** The names of include/herald/error.h's codes, by number. */
const ERROR_NAMES = [
  "OK", "PROTOCOL", "TOO_BIG", "UNAUTHORIZED", "EXPIRED", "FORBIDDEN", "NOT_FOUND", "EXISTS",
  "INVAL", "CAP_EXCEEDED", "NOT_MEMBER", "RATE_LIMITED", "SLOW_CONSUMER", "IDLE", "STORAGE",
  "NOMEM", "TIMEOUT", "CLOSED", "IO", "NOT_LEADER", "UNSUPPORTED", "SHUTDOWN", "BUSY", "INTERNAL",
  "UNAVAILABLE",
] as const;

export const E_UNAUTHORIZED = 3;
export const E_EXPIRED = 4;
export const E_FORBIDDEN = 5;
export const E_NOT_FOUND = 6;
export const E_INVAL = 8;
export const E_TIMEOUT = 16;
export const E_IO = 18;
export const E_INTERNAL = 23;

/** "NOT_FOUND" for 6; "UNKNOWN" for a code this console does not know. */
export function errName(code: number): string {
  return ERROR_NAMES[code] ?? "UNKNOWN";
}

export class ApiError extends Error {
  /** HTTP status; 0 when there was no answer (network, timeout). */
  readonly status: number;
  readonly errcode: number;
  readonly errmsg: string;
  readonly path: string;

  constructor(path: string, status: number, errcode: number, errmsg: string) {
    super(`${errName(errcode)}: ${errmsg}`);
    this.name = "ApiError";
    this.path = path;
    this.status = status;
    this.errcode = errcode;
    this.errmsg = errmsg;
  }

  /** The token was refused (HTTP 401 or 403): the console signs out. */
  get auth(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

// ---- answer types --------------------------------------------------------------------

export interface NodeInfo {
  id: number;
  addr?: string;
  up?: boolean;
}

export interface ReplicaInfo {
  node: number;
  match?: number;
  lag?: number;
}

export interface GroupInfo {
  group: number;
  role?: string; // "meta" | "shard"
  leader?: number;
  term?: number;
  commit?: number;
  applied?: number;
  /** The group's lag: given, or the largest of its replicas'. */
  lag?: number;
  replicas: ReplicaInfo[];
}

export interface ClusterInfo {
  mode?: string; // "cluster" | "dev"
  ready?: boolean;
  tenant?: string;
  version?: string;
  /** The node that answered (cluster). */
  node?: number;
  uptime_s?: number;
  /** dev: client connections and users online. */
  connections?: number;
  users_online?: number;
  nodes: NodeInfo[];
  groups: GroupInfo[];
}

export interface Readiness {
  ready: boolean;
  /** HTTP status of /readyz (0: no answer). */
  status: number;
  /** "ok", or the reason the gateway gives for not being ready. */
  reason: string;
}

export interface Department {
  id: string;
  name?: string;
  parent?: string;
  /** Sub-department ids; undefined when the answer does not list them. */
  children?: string[];
  /** User ids; undefined when the answer does not list them. */
  users?: string[];
  /** The server listed only part of the children and users. */
  more: boolean;
}

export interface User {
  userid: string;
  name?: string;
  title?: string;
  department?: string;
  kind?: string; // "internal" | "external"
}

export interface SendRequest {
  agentid: string;
  /** Recipient user ids, or ["@all"]. */
  touser: string[];
  toparty: string[];
  totag: string[];
  text: string;
  announce: boolean;
  /** Optional: the same id again within the duplicate window is a no-op. */
  msgid?: string;
}

export interface SendResult {
  msgid?: string;
  /** Deliveries stored (an announcement: one). */
  sent?: number;
  /** The same msgid within the duplicate window: nothing new was sent. */
  duplicate?: boolean;
  /** The announcement's conversation. */
  conv?: string;
  /** Recipients reached; undefined when the answer does not list them. */
  reached?: string[];
  /** Over the app's per-minute cap, or not stored (with the reason). */
  limited: string[];
  unreached: string[];
  invaliduser: string[];
  invalidparty: string[];
  invalidtag: string[];
}

export interface AppInfo {
  app: string;
  scopes: string[];
  callback_url?: string;
}

export interface CallbackEvent {
  id: string;
  type?: string;
  time?: number | string;
  conv?: string;
  attempts?: number;
  next_attempt?: number | string;
  last_error?: string;
  state?: string; // "pending" | "delivered" | "failed"
}

export interface EventPage {
  app: string;
  url?: string;
  /** Events of every conversation of the tenant, not only the app's. */
  all?: boolean;
  /** The event types the app gets; undefined when it gets every type. */
  eventTypes?: string[];
  pending?: number;
  delivered?: number;
  failed?: number;
  events: CallbackEvent[];
  more: boolean;
}

export interface EventQuery {
  failedOnly?: boolean;
  limit?: number;
  /** The last event id of the previous page. */
  after?: string;
}

// ---- normalization ---------------------------------------------------------------------

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {};
}
function str(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return undefined;
}
function num(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}
function bool(v: unknown): boolean | undefined {
  return typeof v === "boolean" ? v : undefined;
}
function time(v: unknown): number | string | undefined {
  return num(v) ?? str(v);
}
/** "a|b", ["a","b"] or [{id:"a"},…] → ["a","b"]; anything else → []. */
function ids(v: unknown, key = "id"): string[] {
  if (typeof v === "string") return v.split("|").filter((s) => s !== "");
  if (!Array.isArray(v)) return [];
  const out: string[] = [];
  for (const x of v) {
    const s = str(x) ?? str(obj(x)[key]);
    if (s !== undefined && s !== "") out.push(s);
  }
  return out;
}
function list<T>(v: unknown, f: (o: Obj) => T | undefined): T[] {
  if (!Array.isArray(v)) return [];
  const out: T[] = [];
  for (const x of v) {
    const t = f(obj(x));
    if (t !== undefined) out.push(t);
  }
  return out;
}

function toNode(o: Obj): NodeInfo | undefined {
  const id = num(o.id);
  if (id === undefined) return undefined;
  return { id, addr: str(o.addr) ?? str(o.address), up: bool(o.up) };
}
function toReplica(o: Obj): ReplicaInfo | undefined {
  const node = num(o.node) ?? num(o.id);
  return node === undefined ? undefined : { node, match: num(o.match), lag: num(o.lag) };
}
function toGroup(o: Obj): GroupInfo | undefined {
  const group = num(o.group);
  if (group === undefined) return undefined;
  const replicas = list(o.replicas, toReplica);
  const lags = replicas.map((r) => r.lag).filter((l): l is number => l !== undefined);
  return {
    group,
    role: str(o.role),
    leader: num(o.leader),
    term: num(o.term),
    commit: num(o.commit),
    applied: num(o.applied),
    lag: num(o.lag) ?? (lags.length ? Math.max(...lags) : undefined),
    replicas,
  };
}
function toApp(o: Obj): AppInfo | undefined {
  const app = str(o.app) ?? str(o.id);
  if (app === undefined) return undefined;
  return { app, scopes: ids(o.scopes), callback_url: str(o.callback_url) ?? str(o.url) };
}
function toEvent(o: Obj): CallbackEvent | undefined {
  const id = str(o.id);
  if (id === undefined) return undefined;
  return {
    id,
    type: str(o.type),
    time: time(o.time),
    conv: str(o.conv),
    attempts: num(o.attempts),
    next_attempt: time(o.next_attempt),
    last_error: str(o.last_error),
    state: str(o.state),
  };
}

// ---- the client -------------------------------------------------------------------------

const TIMEOUT_MS = 10000;

export class Api {
  private readonly token: string;
  private readonly base: URL;

  /** base: the gateway's HTTP root (default: this page's origin). */
  constructor(token: string, base: string | URL = new URL("/", location.href)) {
    this.token = token;
    this.base = new URL(base);
  }

  /** GET or POST PATH (under /api/v1/) and the JSON answer with errcode 0. */
  private async call(path: string, query?: Record<string, string | undefined>, body?: unknown): Promise<Obj> {
    const url = new URL(`api/v1/${path}`, this.base);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method: body === undefined ? "GET" : "POST",
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        signal: ctl.signal,
      });
      text = await res.text();
    } catch (e) {
      if (ctl.signal.aborted) throw new ApiError(path, 0, E_TIMEOUT, `no answer from the gateway within ${TIMEOUT_MS / 1000} s`);
      throw new ApiError(path, 0, E_IO, `cannot reach the gateway (${e instanceof Error ? e.message : String(e)})`);
    } finally {
      clearTimeout(timer);
    }
    let j: Obj;
    try {
      j = obj(JSON.parse(text));
    } catch {
      const code = res.status === 401 ? E_UNAUTHORIZED : res.status === 403 ? E_FORBIDDEN : E_INTERNAL;
      throw new ApiError(path, res.status, code, `HTTP ${res.status} ${res.statusText}: the answer is not JSON`);
    }
    const errcode = num(j.errcode);
    const errmsg = str(j.errmsg) ?? "";
    if (!res.ok || errcode !== 0) {
      const code = errcode ?? (res.status === 401 ? E_UNAUTHORIZED : res.status === 403 ? E_FORBIDDEN : E_INTERNAL);
      throw new ApiError(path, res.status, code, errmsg || `HTTP ${res.status} ${res.statusText}`);
    }
    return j;
  }

  async cluster(): Promise<ClusterInfo> {
    const j = await this.call("cluster");
    return {
      mode: str(j.mode),
      ready: bool(j.ready),
      tenant: str(j.tenant),
      version: str(j.version),
      node: num(j.node),
      uptime_s: num(j.uptime_s),
      connections: num(j.connections),
      users_online: num(j.users_online),
      nodes: list(j.nodes, toNode),
      groups: list(j.groups, toGroup),
    };
  }

  /** The gateway's /readyz (no token needed): 200 "ok", else 503 {"errmsg": reason}. */
  async readyz(): Promise<Readiness> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const res = await fetch(new URL("readyz", this.base), { cache: "no-store", signal: ctl.signal });
      const text = (await res.text()).trim();
      let reason = text;
      try {
        reason = str(obj(JSON.parse(text)).errmsg) ?? text;
      } catch {
        /* plain text ("ok") */
      }
      return { ready: res.status === 200, status: res.status, reason: reason || `HTTP ${res.status}` };
    } catch (e) {
      return { ready: false, status: 0, reason: ctl.signal.aborted ? "no answer" : `cannot reach the gateway (${e instanceof Error ? e.message : String(e)})` };
    } finally {
      clearTimeout(timer);
    }
  }

  /** A department; id "" is the root (sent without an id). */
  async department(id: string): Promise<Department> {
    const j = await this.call("department/get", { id: id === "" ? undefined : id });
    return {
      id: str(j.id) ?? id,
      name: str(j.name),
      parent: str(j.parent) ?? str(j.parentid),
      children: j.children === undefined ? undefined : ids(j.children),
      users: j.users === undefined ? undefined : ids(j.users, "userid"),
      more: bool(j.more) ?? false,
    };
  }

  async user(userid: string): Promise<User> {
    const j = await this.call("user/get", { userid });
    return { userid: str(j.userid) ?? userid, name: str(j.name), title: str(j.title), department: str(j.department), kind: str(j.kind) };
  }

  async send(r: SendRequest): Promise<SendResult> {
    const body: Obj = {
      agentid: r.agentid,
      msgtype: "text",
      text: { content: r.text },
      announce: r.announce,
    };
    if (r.touser.length) body.touser = r.touser.join("|");
    if (r.toparty.length) body.toparty = r.toparty.join("|");
    if (r.totag.length) body.totag = r.totag.join("|");
    if (r.msgid) body.msgid = r.msgid;
    const j = await this.call("message/send", undefined, body);
    return {
      msgid: str(j.msgid),
      sent: num(j.sent),
      duplicate: bool(j.duplicate),
      conv: str(j.conv),
      reached: j.reached === undefined ? undefined : ids(j.reached),
      limited: ids(j.limited),
      unreached: ids(j.unreached),
      invaliduser: ids(j.invaliduser),
      invalidparty: ids(j.invalidparty),
      invalidtag: ids(j.invalidtag),
    };
  }

  /** The tenant's apps, a page (of up to 100) after app id AFTER; more: there are others. */
  async apps(after?: string): Promise<{ apps: AppInfo[]; more: boolean }> {
    const j = await this.call("app/list", { after });
    return { apps: list(j.apps, toApp), more: bool(j.more) ?? false };
  }

  async events(app: string, q: EventQuery = {}): Promise<EventPage> {
    const j = await this.call("app/events", {
      app,
      failed: q.failedOnly ? "1" : undefined,
      limit: q.limit !== undefined ? String(q.limit) : undefined,
      after: q.after,
    });
    return {
      app: str(j.app) ?? app,
      url: str(j.url) ?? str(j.callback_url),
      all: bool(j.all),
      eventTypes: j.all_types === false ? ids(j.event_types) : undefined,
      pending: num(j.pending),
      delivered: num(j.delivered),
      failed: num(j.failed),
      events: list(j.events, toEvent),
      more: bool(j.more) ?? false,
    };
  }

  /** Queues one event (id) or every failed event of APP again; the number requeued. */
  async redeliver(app: string, which: { id: string } | { failed: true }): Promise<number> {
    const j = await this.call("app/redeliver", undefined, { app, ...which });
    return num(j.requeued) ?? 0;
  }
}
