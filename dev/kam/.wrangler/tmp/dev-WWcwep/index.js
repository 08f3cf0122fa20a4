var __defProp = Object.defineProperty;
var __name = (target, value) => __defProp(target, "name", { value, configurable: true });

// index.js
var API_KEYS = {
  "dev-client-key": { clientId: "dev-client", tier: "standard", permissions: ["granulate", "templates:read", "jobs:read"] },
  "dev-other-key": { clientId: "other-client", tier: "basic", permissions: ["granulate", "templates:read", "jobs:read"] }
};
var SESSIONS = {
  "dev-admin-session": { user: { id: "u-admin", username: "admin", email: "admin@example.com", role: "admin" }, clientId: null },
  "dev-user-session": { user: { id: "u-user", username: "user", email: "user@example.com", role: "client" }, clientId: "dev-client" }
};
var json = /* @__PURE__ */ __name((body, status = 200) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } }), "json");
async function fault(credential) {
  switch (credential) {
    case "kam-fault-500":
      return json({ error: "internal error (injected)" }, 500);
    case "kam-fault-garbage":
      return new Response("<html>not json</html>", { status: 200 });
    case "kam-fault-403":
      return json({ valid: false, error: "forbidden (injected)" }, 403);
    case "kam-fault-slow":
      await new Promise((resolve) => setTimeout(resolve, 1e4));
      return json({ valid: false, error: "too late" }, 401);
    case "kam-fault-throw":
      throw new Error("KAM unreachable (injected)");
    default:
      return null;
  }
}
__name(fault, "fault");
function workerAuthorised(request, env) {
  const expected = env.SHARED_SECRET;
  const auth = request.headers.get("authorization") || "";
  const workerId = request.headers.get("x-worker-id") || "";
  return Boolean(expected) && auth === `Bearer ${expected}` && workerId.length > 0;
}
__name(workerAuthorised, "workerAuthorised");
var index_default = {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (request.method !== "POST") return json({ error: "method not allowed" }, 405);
    if (!workerAuthorised(request, env)) return json({ valid: false, error: "worker credentials required" }, 401);
    let body;
    try {
      body = await request.json();
    } catch {
      return json({ valid: false, error: "malformed JSON" }, 400);
    }
    if (pathname === "/auth/validate-key") {
      const injected = await fault(body.apiKey);
      if (injected) return injected;
      const client = API_KEYS[body.apiKey];
      return client ? json({ valid: true, ...client }) : json({ valid: false, error: "unknown or revoked API key" }, 401);
    }
    if (pathname === "/auth/validate") {
      const token = request.headers.get("x-bitware-session-token") || body.sessionToken;
      const injected = await fault(token);
      if (injected) return injected;
      const session = SESSIONS[token];
      return session ? json({ valid: true, ...session }) : json({ valid: false, error: "invalid or expired session" }, 401);
    }
    return json({ error: "not found" }, 404);
  }
};

// ../../node_modules/wrangler/templates/middleware/middleware-ensure-req-body-drained.ts
var drainBody = /* @__PURE__ */ __name(async (request, env, _ctx, middlewareCtx) => {
  try {
    return await middlewareCtx.next(request, env);
  } finally {
    try {
      if (request.body !== null && !request.bodyUsed) {
        const reader = request.body.getReader();
        while (!(await reader.read()).done) {
        }
      }
    } catch (e) {
      console.error("Failed to drain the unused request body.", e);
    }
  }
}, "drainBody");
var middleware_ensure_req_body_drained_default = drainBody;

// ../../node_modules/wrangler/templates/middleware/middleware-miniflare3-json-error.ts
function reduceError(e) {
  return {
    name: e?.name,
    message: e?.message ?? String(e),
    stack: e?.stack,
    cause: e?.cause === void 0 ? void 0 : reduceError(e.cause)
  };
}
__name(reduceError, "reduceError");
var jsonError = /* @__PURE__ */ __name(async (request, env, _ctx, middlewareCtx) => {
  try {
    return await middlewareCtx.next(request, env);
  } catch (e) {
    const error = reduceError(e);
    return Response.json(error, {
      status: 500,
      headers: { "MF-Experimental-Error-Stack": "true" }
    });
  }
}, "jsonError");
var middleware_miniflare3_json_error_default = jsonError;

// wrangler-config:config:middleware/patch-console-prefix
var prefix = "[bitware-key-account-manager]";

// ../../node_modules/wrangler/templates/middleware/middleware-patch-console-prefix.ts
["log", "debug", "info"].forEach((method) => {
  globalThis.console[method] = new Proxy(globalThis.console[method], {
    apply(target, thisArg, argumentsList) {
      return target.apply(thisArg, [prefix, ...argumentsList]);
    }
  });
});
var passthrough = /* @__PURE__ */ __name((request, env, _ctx, middlewareCtx) => {
  return middlewareCtx.next(request, env);
}, "passthrough");
var middleware_patch_console_prefix_default = passthrough;

// .wrangler/tmp/bundle-N1T1Kj/middleware-insertion-facade.js
var __INTERNAL_WRANGLER_MIDDLEWARE__ = [
  middleware_ensure_req_body_drained_default,
  middleware_miniflare3_json_error_default,
  middleware_patch_console_prefix_default
];
var middleware_insertion_facade_default = index_default;

// ../../node_modules/wrangler/templates/middleware/common.ts
var __facade_middleware__ = [];
function __facade_register__(...args) {
  __facade_middleware__.push(...args.flat());
}
__name(__facade_register__, "__facade_register__");
function __facade_invokeChain__(request, env, ctx, dispatch, middlewareChain) {
  const [head, ...tail] = middlewareChain;
  const middlewareCtx = {
    dispatch,
    next(newRequest, newEnv) {
      return __facade_invokeChain__(newRequest, newEnv, ctx, dispatch, tail);
    }
  };
  return head(request, env, ctx, middlewareCtx);
}
__name(__facade_invokeChain__, "__facade_invokeChain__");
function __facade_invoke__(request, env, ctx, dispatch, finalMiddleware) {
  return __facade_invokeChain__(request, env, ctx, dispatch, [
    ...__facade_middleware__,
    finalMiddleware
  ]);
}
__name(__facade_invoke__, "__facade_invoke__");

// .wrangler/tmp/bundle-N1T1Kj/middleware-loader.entry.ts
var __Facade_ScheduledController__ = class ___Facade_ScheduledController__ {
  constructor(scheduledTime, cron, noRetry) {
    this.scheduledTime = scheduledTime;
    this.cron = cron;
    this.#noRetry = noRetry;
  }
  static {
    __name(this, "__Facade_ScheduledController__");
  }
  #noRetry;
  noRetry() {
    if (!(this instanceof ___Facade_ScheduledController__)) {
      throw new TypeError("Illegal invocation");
    }
    this.#noRetry();
  }
};
function wrapExportedHandler(worker) {
  if (__INTERNAL_WRANGLER_MIDDLEWARE__ === void 0 || __INTERNAL_WRANGLER_MIDDLEWARE__.length === 0) {
    return worker;
  }
  for (const middleware of __INTERNAL_WRANGLER_MIDDLEWARE__) {
    __facade_register__(middleware);
  }
  const fetchDispatcher = /* @__PURE__ */ __name(function(request, env, ctx) {
    if (worker.fetch === void 0) {
      throw new Error("Handler does not export a fetch() function.");
    }
    return worker.fetch(request, env, ctx);
  }, "fetchDispatcher");
  return {
    ...worker,
    fetch(request, env, ctx) {
      const dispatcher = /* @__PURE__ */ __name(function(type, init) {
        if (type === "scheduled" && worker.scheduled !== void 0) {
          const controller = new __Facade_ScheduledController__(
            Date.now(),
            init.cron ?? "",
            () => {
            }
          );
          return worker.scheduled(controller, env, ctx);
        }
      }, "dispatcher");
      return __facade_invoke__(request, env, ctx, dispatcher, fetchDispatcher);
    }
  };
}
__name(wrapExportedHandler, "wrapExportedHandler");
function wrapWorkerEntrypoint(klass) {
  if (__INTERNAL_WRANGLER_MIDDLEWARE__ === void 0 || __INTERNAL_WRANGLER_MIDDLEWARE__.length === 0) {
    return klass;
  }
  for (const middleware of __INTERNAL_WRANGLER_MIDDLEWARE__) {
    __facade_register__(middleware);
  }
  return class extends klass {
    #fetchDispatcher = /* @__PURE__ */ __name((request, env, ctx) => {
      this.env = env;
      this.ctx = ctx;
      if (super.fetch === void 0) {
        throw new Error("Entrypoint class does not define a fetch() function.");
      }
      return super.fetch(request);
    }, "#fetchDispatcher");
    #dispatcher = /* @__PURE__ */ __name((type, init) => {
      if (type === "scheduled" && super.scheduled !== void 0) {
        const controller = new __Facade_ScheduledController__(
          Date.now(),
          init.cron ?? "",
          () => {
          }
        );
        return super.scheduled(controller);
      }
    }, "#dispatcher");
    fetch(request) {
      return __facade_invoke__(
        request,
        this.env,
        this.ctx,
        this.#dispatcher,
        this.#fetchDispatcher
      );
    }
  };
}
__name(wrapWorkerEntrypoint, "wrapWorkerEntrypoint");
var WRAPPED_ENTRY;
if (typeof middleware_insertion_facade_default === "object") {
  WRAPPED_ENTRY = wrapExportedHandler(middleware_insertion_facade_default);
} else if (typeof middleware_insertion_facade_default === "function") {
  WRAPPED_ENTRY = wrapWorkerEntrypoint(middleware_insertion_facade_default);
}
var middleware_loader_entry_default = WRAPPED_ENTRY;
export {
  __INTERNAL_WRANGLER_MIDDLEWARE__,
  middleware_loader_entry_default as default
};
//# sourceMappingURL=index.js.map
