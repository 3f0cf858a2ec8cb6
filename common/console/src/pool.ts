/*
 * pool.ts — lookups a few at a time: a screen that needs one call per item
 * (a department's users, its sub-departments, the apps' callbacks) never
 * has more than POOL calls in flight.
 */
export const POOL = 4;

/** f over xs, at most POOL at once; results in order (errors as Error). */
export async function pooled<T, R>(xs: T[], f: (x: T) => Promise<R>): Promise<(R | Error)[]> {
  const out: (R | Error)[] = new Array(xs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < xs.length) {
      const i = next++;
      try {
        out[i] = await f(xs[i]!);
      } catch (e) {
        out[i] = e instanceof Error ? e : new Error(String(e));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(POOL, xs.length) }, worker));
  return out;
}
