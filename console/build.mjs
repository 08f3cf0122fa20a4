// Builds the console (console/src) into console/dist, the Workers Static
// Assets directory of wrangler.toml [assets]: the page under /console/, one
// minified script and one stylesheet (no inline script or style, so the
// Content-Security-Policy of console/src/_headers can forbid both), and
// _headers itself. Run by scripts/build.sh; prints the bundle's size.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const dist = join(here, 'dist');
const out = join(dist, 'console');

// Files are replaced in place (a running `wrangler dev` watches the directory
// and stops serving it if it disappears); anything not built now is removed.
mkdirSync(out, { recursive: true });
const built = new Set(['app.js', 'app.css', 'index.html']);
for (const f of readdirSync(out)) if (!built.has(f)) rmSync(join(out, f), { recursive: true, force: true });
for (const f of readdirSync(dist)) if (f !== 'console' && f !== '_headers') rmSync(join(dist, f), { recursive: true, force: true });
await build({
  entryPoints: [join(src, 'main.ts')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  outfile: join(out, 'app.js'),
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(join(src, 'index.html'), join(out, 'index.html'));
copyFileSync(join(src, 'app.css'), join(out, 'app.css'));
copyFileSync(join(src, '_headers'), join(dist, '_headers'));

let raw = 0;
let gz = 0;
for (const f of readdirSync(out)) {
  const p = join(out, f);
  raw += statSync(p).size;
  gz += gzipSync(readFileSync(p)).length;
}
console.log(`console: ${readdirSync(out).join(', ')} in console/dist/console: ${raw} bytes (${gz} gzipped)`);
