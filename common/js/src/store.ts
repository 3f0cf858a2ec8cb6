/*
 * store.ts — where the sync key is kept between runs. The client loads it
 * once, right after its first WELCOME (scope = "tenant/user"), and saves it
 * each time it has handed out an event, so a reload resumes exactly where
 * the application stopped. A store may be asynchronous; saves of one
 * client are never concurrent and happen in order.
 */

export interface KeyStore {
  /** The saved key text for scope, or null when there is none. */
  load(scope: string): string | null | Promise<string | null>;
  /** Replaces the saved key of scope. */
  save(scope: string, key: string): void | Promise<void>;
}

/* The parts of the DOM's Storage used here. */
interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/**
 * The browser's localStorage (or any Storage), under `prefix + scope`
 * (default "herald.sync."). One key per user per origin: give each tab or
 * device of the same user its own prefix when they must resume separately.
 */
export function localStorageStore(prefix = "herald.sync.", storage?: StorageLike): KeyStore {
  const s = storage ?? (globalThis as { localStorage?: StorageLike }).localStorage;
  if (!s) throw new Error("localStorageStore: no localStorage here (pass a storage, or use memoryStore())");
  return {
    load: (scope) => s.getItem(prefix + scope),
    save: (scope, key) => s.setItem(prefix + scope, key),
  };
}

/** A store in memory (the process's lifetime); `seed` maps scope → key. */
export function memoryStore(seed?: Record<string, string>): KeyStore & { readonly keys: Map<string, string> } {
  const keys = new Map<string, string>(Object.entries(seed ?? {}));
  return {
    keys,
    load: (scope) => keys.get(scope) ?? null,
    save: (scope, key) => {
      keys.set(scope, key);
    },
  };
}

/** localStorage when the platform has one, else memory. */
export function defaultStore(): KeyStore {
  return (globalThis as { localStorage?: unknown }).localStorage ? localStorageStore() : memoryStore();
}
