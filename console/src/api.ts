// The API client: the signed-in credential (sessionStorage, sent as its usual
// header, never in a URL), JSON calls, and the API's error shape
// {error, status, code, details?: {field}} as an ApiError.

export type Kind = 'session' | 'apiKey';
export interface Credential { kind: Kind; value: string }

const KEY = 'granulator.credential';

export function credential(): Credential | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const c = JSON.parse(raw) as Credential;
    return (c.kind === 'session' || c.kind === 'apiKey') && typeof c.value === 'string' ? c : null;
  } catch {
    return null;
  }
}

export function saveCredential(c: Credential): void {
  sessionStorage.setItem(KEY, JSON.stringify(c));
}

export function forget(): void {
  sessionStorage.removeItem(KEY);
}

export function authHeaders(c: Credential | null = credential()): Record<string, string> {
  if (!c) return {};
  return c.kind === 'session' ? { 'x-bitware-session-token': c.value } : { 'X-API-Key': c.value };
}

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string, public field?: string, public details?: unknown) {
    super(message);
  }
}

export interface Reply<T> { status: number; body: T; headers: Headers }

/// A JSON call with the signed-in credential; a non-2xx answer throws ApiError.
export async function call<T = any>(method: string, path: string, body?: unknown, extra: Record<string, string> = {}, c: Credential | null = credential()): Promise<Reply<T>> {
  const headers: Record<string, string> = { Accept: 'application/json', ...authHeaders(c), ...extra };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'network', `The worker could not be reached (${(e as Error).message}).`);
  }
  const text = await res.text();
  let parsed: any = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    const message = parsed && typeof parsed.error === 'string' ? parsed.error : `HTTP ${res.status}`;
    const code = parsed && typeof parsed.code === 'string' ? parsed.code : `http_${res.status}`;
    const field = parsed?.details && typeof parsed.details.field === 'string' ? parsed.details.field : undefined;
    throw new ApiError(res.status, code, message, field, parsed?.details);
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

export const get = <T = any>(path: string) => call<T>('GET', path);
export const post = <T = any>(path: string, body: unknown, extra: Record<string, string> = {}) => call<T>('POST', path, body, extra);

/// The document once per page: which optional routes this worker has (cancel).
let spec: Promise<any> | null = null;
export function openapi(): Promise<any> {
  if (!spec) spec = fetch('/openapi.json', { cache: 'no-store' }).then((r) => (r.ok ? r.json() : { paths: {} })).catch(() => ({ paths: {} }));
  return spec;
}

export async function supportsCancel(): Promise<boolean> {
  const doc = await openapi();
  return Boolean(doc?.paths?.['/api/jobs/{id}/cancel']?.post);
}
