// The console's pure logic, natively in Node (no browser): the SSE parser
// that reads the events stream, fed in arbitrary chunks. Run by the browser
// layer before Chromium starts: node tests/browser/units.mjs
import { build } from 'esbuild';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const dir = mkdtempSync(join(tmpdir(), 'console-units-'));
await build({ entryPoints: ['console/src/sse.ts'], bundle: true, format: 'esm', outfile: join(dir, 'sse.mjs'), logLevel: 'warning' });
const { parseEvents } = await import(join(dir, 'sse.mjs'));
rmSync(dir, { recursive: true, force: true });

const stream = 'event: progress\ndata: {"percent":10}\n\n: keep-alive\n\nevent: branch\r\ndata: {"index":1}\r\n\r\nevent: completed\ndata: {"a":\ndata: 1}\n\n';

test('whole events come out with their names and data; comments are skipped', () => {
  const { events, rest } = parseEvents(stream);
  assert.deepEqual(events, [
    { event: 'progress', data: '{"percent":10}' },
    { event: 'branch', data: '{"index":1}' },
    { event: 'completed', data: '{"a":\n1}' },
  ]);
  assert.equal(rest, '');
});

test('an event cut anywhere waits for its blank line, whatever the chunking', () => {
  for (let size = 1; size <= stream.length; size++) {
    let buffer = '';
    const seen = [];
    for (let i = 0; i < stream.length; i += size) {
      const parsed = parseEvents(buffer + stream.slice(i, i + size));
      buffer = parsed.rest;
      seen.push(...parsed.events.map((e) => e.event));
    }
    assert.deepEqual(seen, ['progress', 'branch', 'completed'], `chunks of ${size}`);
  }
});

test('an event without a name is a message; one without data is dropped', () => {
  assert.deepEqual(parseEvents('data: x\n\nevent: empty\n\n').events, [{ event: 'message', data: 'x' }]);
});
