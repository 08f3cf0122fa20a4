// Builds the console (console/src) into console/dist, the Workers Static
// Assets directory of wrangler.toml [assets]: the page under /console/, one
// minified script and one stylesheet (no inline script or style, so the
// Content-Security-Policy of console/src/_headers can forbid both), and
// _headers itself. Run by scripts/build.sh; prints the bundle's size.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const dist = join(here, 'dist');
const out = join(dist, 'console');

const script = await build({
  entryPoints: [join(src, 'main.ts')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  outfile: join(out, 'app.js'),
  legalComments: 'none',
  logLevel: 'warning',
  write: false,
});
const files = new Map([
  [join(out, 'app.js'), Buffer.from(script.outputFiles[0].contents)],
  [join(out, 'index.html'), readFileSync(join(src, 'index.html'))],
  [join(out, 'app.css'), readFileSync(join(src, 'app.css'))],
  [join(dist, '_headers'), readFileSync(join(src, '_headers'))],
]);

// A running `wrangler dev` watches this directory: it restarts the worker on
// any change (cutting requests in flight) and stops serving the assets if the
// directory disappears. So files are written only when their content
// changed, in place, and only what is not built now is removed.
mkdirSync(out, { recursive: true });
for (const dir of [dist, out]) {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (!files.has(p) && p !== out) rmSync(p, { recursive: true, force: true });
  }
}
let written = 0;
for (const [path, content] of files) {
  if (existsSync(path) && readFileSync(path).equals(content)) continue;
  writeFileSync(path, content);
  written++;
}

const page = [...files].filter(([p]) => p.startsWith(out));
const raw = page.reduce((n, [, c]) => n + c.length, 0);
const gz = page.reduce((n, [, c]) => n + gzipSync(c).length, 0);
console.log(`console: ${page.map(([p]) => p.slice(out.length + 1)).join(', ')} in console/dist/console: ${raw} bytes (${gz} gzipped); ${written} of ${files.size} files changed`);
