// Server-Sent Events over fetch(): EventSource cannot send a header, and the
// credential must not go in the URL, so the stream is read with a
// ReadableStream reader and parsed here (event:, data:, blank line ends one).
import { authHeaders, ApiError } from './api';

export interface SseEvent { event: string; data: string }

/// Parse complete events out of `buffer`; returns them and what is left over.
export function parseEvents(buffer: string): { events: SseEvent[]; rest: string } {
  const events: SseEvent[] = [];
  // A chunk may end between the \r and \n of one line end: keep that \r for the next.
  const held = buffer.endsWith('\r') ? '\r' : '';
  const normalized = (held ? buffer.slice(0, -1) : buffer).replace(/\r\n?/g, '\n');
  const blocks = normalized.split('\n\n');
  const rest = (blocks.pop() ?? '') + held;
  for (const block of blocks) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length) events.push({ event, data: data.join('\n') });
  }
  return { events, rest };
}

/// Follow `path` until the stream ends or `signal` aborts; each event goes to onEvent.
export async function follow(path: string, onEvent: (e: SseEvent) => void, signal: AbortSignal): Promise<void> {
  const res = await fetch(path, { headers: { Accept: 'text/event-stream', ...authHeaders() }, signal, credentials: 'omit', cache: 'no-store' });
  if (!res.ok || !res.body) {
    let body: any = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    throw new ApiError(res.status, body?.code ?? `http_${res.status}`, body?.error ?? `HTTP ${res.status}`);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const parsed = parseEvents(buffer);
    buffer = parsed.rest;
    parsed.events.forEach(onEvent);
  }
}
