/*
 * harness.ts — a real `heraldd dev` for the SDK's tests: a temporary data
 * dir, a free loopback port, dev.env read back (gateway, tenant, secret),
 * SIGTERM that must exit 0 (so a sanitizer report in the server fails the
 * test), kill -9 and a restart on the same data dir and ports (the client
 * TCP port and gateway.ws_listen, both picked free). Every wait is bounded.
 *
 * HERALDD names the binary (ctest sets it); default ../../build/broker/heraldd.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { mintToken } from "../src/node.js";

const here = dirname(fileURLToPath(import.meta.url));
export const HERALDD = process.env.HERALDD ?? resolve(here, "../../../../build/broker/heraldd");
const FREEPORT = resolve(here, "../../../../tests/freeport.py");

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls cond every 20 ms until it holds or ms pass (then throws naming what). */
export async function waitFor(what: string, cond: () => boolean, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * N free loopback TCP ports from outside the kernel's ephemeral range
 * (tests/freeport.py, the one picker every test uses): an outgoing
 * connection of a test running alongside cannot take one before heraldd
 * binds it, or between a kill and the restart on the same port.
 */
export function freePorts(n: number): number[] {
  const out = execFileSync("python3", [FREEPORT, String(n)], { encoding: "utf8", timeout: 10000 });
  const ports = out.trim().split("\n").map(Number);
  if (ports.length !== n || ports.some((p) => !(p > 0 && p < 65536))) throw new Error(`freeport.py printed ${JSON.stringify(out)}`);
  return ports;
}

export interface DevOptions {
  /** Extra lines for the config file (key = value). */
  config?: string[];
}

export class Dev {
  readonly dir: string;
  gateway = "";
  /** The WebSocket address (ws://127.0.0.1:PORT/ws). */
  ws = "";
  tenant = "";
  secret = "";
  private proc: ChildProcess | null = null;
  private exit: Promise<number | null> | null = null;
  private tcpPort = 0;
  private wsPort = 0;
  private readonly opts: DevOptions;

  private constructor(opts: DevOptions) {
    this.opts = opts;
    this.dir = mkdtempSync(join(tmpdir(), "herald-js-"));
  }

  static async start(opts: DevOptions = {}): Promise<Dev> {
    const d = new Dev(opts);
    // Fixed free ports (not 0): a restart must come back on the same ones.
    const [tcp, ws] = freePorts(2) as [number, number];
    d.tcpPort = tcp;
    d.wsPort = ws;
    await d.launch();
    return d;
  }

  private async launch(): Promise<void> {
    if (!existsSync(HERALDD)) throw new Error(`no heraldd at ${HERALDD} (build it, or set HERALDD)`);
    const env = join(this.dir, "dev.env");
    if (existsSync(env)) unlinkSync(env);
    const conf = join(this.dir, "h.conf");
    writeFileSync(conf, [`gateway.ws_listen = 127.0.0.1:${this.wsPort}`, ...(this.opts.config ?? [])].join("\n") + "\n");
    const args = ["dev", "--data", this.dir, "--config", conf, "--listen", `127.0.0.1:${this.tcpPort}`, "--mqtt-listen", "", "--http-listen", "", "--log-level", "warn"];
    const log = openSync(join(this.dir, "heraldd.log"), "a");
    const p = spawn(HERALDD, args, { stdio: ["ignore", "ignore", log] });
    this.proc = p;
    // A test process that dies leaves no heraldd behind.
    const reap = (): void => {
      p.kill("SIGKILL");
    };
    process.once("exit", reap);
    p.once("exit", () => process.removeListener("exit", reap));
    this.exit = new Promise((r) => p.once("exit", (code, sig) => r(sig ? null : code)));
    const end = Date.now() + 15000;
    while (!existsSync(env)) {
      if (p.exitCode !== null || Date.now() > end) throw new Error(`heraldd did not start:\n${this.log()}`);
      await sleep(30);
    }
    await sleep(30); // the file is written in one go; let it land
    const kv = Object.fromEntries(
      readFileSync(env, "utf8")
        .split("\n")
        .filter((l) => l.includes("="))
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    this.gateway = kv.HERALD_GATEWAY ?? "";
    this.ws = kv.HERALD_WS ?? "";
    this.tenant = kv.HERALD_TENANT ?? "";
    this.secret = kv.HERALD_SECRET ?? "";
    if (!this.gateway || !this.ws || !this.tenant || this.secret.length !== 64) throw new Error(`bad dev.env: ${JSON.stringify(kv)}`);
  }

  log(): string {
    try {
      return readFileSync(join(this.dir, "heraldd.log"), "utf8");
    } catch {
      return "";
    }
  }

  /** A token for user (admin role on request). */
  token(user: string, admin = false): string {
    return mintToken(this.secret, this.tenant, user, { admin });
  }

  /** SIGTERM; resolves with the exit code (null: killed by a signal), within 15 s. */
  async stop(): Promise<number | null> {
    if (!this.proc) return 0;
    this.proc.kill("SIGTERM");
    const t = setTimeout(() => this.proc?.kill("SIGKILL"), 15000);
    const rc = await this.exit;
    clearTimeout(t);
    this.proc = null;
    return rc;
  }

  /** kill -9 and wait for it to be gone. */
  async kill(): Promise<void> {
    if (!this.proc) return;
    this.proc.kill("SIGKILL");
    await this.exit;
    this.proc = null;
  }

  /** Starts again on the same data dir and port. */
  async restart(): Promise<void> {
    if (this.proc) await this.kill();
    await this.launch();
  }

  /** Stops (SIGTERM, must exit 0) and removes the data dir. */
  async close(): Promise<void> {
    const rc = await this.stop();
    const log = this.log();
    rmSync(this.dir, { recursive: true, force: true });
    if (rc !== 0) throw new Error(`heraldd exited with ${rc} on SIGTERM:\n${log}`);
  }
}
