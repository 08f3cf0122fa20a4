// KAM stand-in for local development and the test suite (contracts.md §1).
//
// Every call must carry worker credentials (Authorization: Bearer <SHARED_SECRET>
// and a non-empty X-Worker-ID), exactly as the real KAM requires.
//
// Fault injection is keyed by the credential itself, so tests running in
// parallel never affect each other: a key or token named `kam-fault-<mode>`
// makes this stand-in misbehave for that call only.
//   kam-fault-500      -> 500 with a JSON error
//   kam-fault-garbage  -> 200 with a body that is not JSON
//   kam-fault-slow     -> answers after 10 s (past the granulator's KAM timeout)
//   kam-fault-throw    -> the binding call itself fails (KAM unreachable)
//   kam-fault-403      -> 403 (KAM refuses: treated as invalid credentials)

const API_KEYS = {
  "dev-client-key": { clientId: "dev-client", tier: "standard", permissions: ["granulate", "templates:read", "jobs:read"] },
  "dev-other-key": { clientId: "other-client", tier: "basic", permissions: ["granulate", "templates:read", "jobs:read"] },
  "dev-enterprise-key": { clientId: "enterprise-client", tier: "enterprise", permissions: ["granulate", "templates:read", "jobs:read"] },
};

// Basic-tier clients made on demand for the rate-limit and spend-cap tests:
// `dev-basic-key-<name>` is client `basic-<name>`, so every run of such a test
// exhausts a tenant of its own and never one another test (or an earlier run
// against the same local state) uses.
const BASIC_KEY_PREFIX = "dev-basic-key-";
function lookupKey(apiKey) {
  if (typeof apiKey === "string" && apiKey.startsWith(BASIC_KEY_PREFIX) && apiKey.length > BASIC_KEY_PREFIX.length) {
    return { clientId: `basic-${apiKey.slice(BASIC_KEY_PREFIX.length)}`, tier: "basic", permissions: ["granulate", "jobs:read"] };
  }
  // Own keys only: `constructor` or `__proto__` (Schemathesis sends such
  // keys) must not find Object.prototype's members.
  return Object.hasOwn(API_KEYS, apiKey) ? API_KEYS[apiKey] : undefined;
}

const SESSIONS = {
  "dev-admin-session": { user: { id: "u-admin", username: "admin", email: "admin@example.com", role: "admin" }, clientId: null },
  "dev-user-session": { user: { id: "u-user", username: "user", email: "user@example.com", role: "client" }, clientId: "dev-client" },
  // What the deployed KAM sends for a dashboard user: no client id at all. The
  // user id deliberately equals a client id, to prove the two never mix.
  "dev-orphan-session": { user: { id: "dev-client", username: "orphan", email: "orphan@example.com", role: "client" } },
};

// A session that ends at a time of the test's choosing (a logout at KAM):
// `dev-expiring-session-<epoch ms>` is valid until then, for client dev-client.
const EXPIRING_PREFIX = "dev-expiring-session-";
function lookupSession(token) {
  if (typeof token === "string" && token.startsWith(EXPIRING_PREFIX)) {
    const until = Number(token.slice(EXPIRING_PREFIX.length));
    if (!Number.isFinite(until) || Date.now() >= until) return undefined;
    return { user: { id: "u-expiring", username: "expiring", email: "expiring@example.com", role: "client" }, clientId: "dev-client" };
  }
  return Object.hasOwn(SESSIONS, token) ? SESSIONS[token] : undefined;
}

const json = (body, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

async function fault(credential) {
  switch (credential) {
    case "kam-fault-500": return json({ error: "internal error (injected)" }, 500);
    case "kam-fault-garbage": return new Response("<html>not json</html>", { status: 200 });
    case "kam-fault-403": return json({ valid: false, error: "forbidden (injected)" }, 403);
    case "kam-fault-slow":
      await new Promise((resolve) => setTimeout(resolve, 10_000));
      return json({ valid: false, error: "too late" }, 401);
    case "kam-fault-throw": throw new Error("KAM unreachable (injected)");
    default: return null;
  }
}

function workerAuthorised(request, env) {
  const expected = env.SHARED_SECRET;
  const auth = request.headers.get("authorization") || "";
  const workerId = request.headers.get("x-worker-id") || "";
  return Boolean(expected) && auth === `Bearer ${expected}` && workerId.length > 0;
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (request.method !== "POST") return json({ error: "method not allowed" }, 405);
    if (!workerAuthorised(request, env)) return json({ valid: false, error: "worker credentials required" }, 401);

    let body;
    try { body = await request.json(); } catch { return json({ valid: false, error: "malformed JSON" }, 400); }

    if (pathname === "/auth/validate-key") {
      const injected = await fault(body.apiKey);
      if (injected) return injected;
      const client = lookupKey(body.apiKey);
      return client ? json({ valid: true, ...client }) : json({ valid: false, error: "unknown or revoked API key" }, 401);
    }
    if (pathname === "/auth/validate") {
      const token = request.headers.get("x-bitware-session-token") || body.sessionToken;
      const injected = await fault(token);
      if (injected) return injected;
      const session = lookupSession(token);
      return session ? json({ valid: true, ...session }) : json({ valid: false, error: "invalid or expired session" }, 401);
    }
    return json({ error: "not found" }, 404);
  },
};
