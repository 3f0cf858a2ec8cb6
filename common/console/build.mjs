// build.mjs — bundles src/main.ts into dist/console.js (esbuild) and copies
// index.html and style.css beside it: dist/ is the whole console, the
// directory gateway.console_dir names. `npm run build` type-checks first (tsc).
// With --test: bundles test/unit.test.ts into dist-test/ for node --test.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv.includes("--test")) {
  await build({
    entryPoints: [join(here, "test/unit.test.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node18",
    outfile: join(here, "dist-test/unit.test.mjs"),
    logLevel: "warning",
  });
} else {
  const out = join(here, "dist");
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [join(here, "src/main.ts")],
    bundle: true,
    format: "esm",
    target: "es2020",
    minify: true,
    sourcemap: true,
    outfile: join(out, "console.js"),
    logLevel: "warning",
  });
  for (const f of ["index.html", "style.css"]) copyFileSync(join(here, f), join(out, f));
  console.log(`console: built ${out} (index.html, style.css, console.js)`);
}
