// node scripts/profile.mjs INSPECTOR_PORT SECONDS OUT.json -- LOAD_COMMAND...
//
// A V8 CPU profile of the worker under load, through wrangler dev's
// inspector (the DevTools protocol): Profiler.start, run LOAD_COMMAND (a
// bounded load generator whose last stdout line is its JSON summary with
// `requests`), Profiler.stop. Prints where the sampled time went, by
// category (our wasm, its dependencies', wasm-bindgen/JS glue, the runtime's
// native work, GC, idle) and by function, per request; writes the raw
// profile and the breakdown to OUT.json (the .cpuprofile loads in Chrome
// DevTools' Performance panel). Used by scripts/profile.sh.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const WebSocket = require("ws");

// node scripts/profile.mjs --from FILE.cpuprofile REQUESTS OUT.json: the same
// breakdown of a profile taken before.
let port, seconds, out, profile, summary;
if (process.argv[2] === "--from") {
  const [, file, requests, dest] = process.argv.slice(2);
  profile = JSON.parse(readFileSync(file, "utf8"));
  summary = { requests: Number(requests) };
  seconds = ((profile.endTime - profile.startTime) / 1e6).toFixed(1);
  out = dest;
} else {
  let dashdash, load;
  [port, seconds, out, dashdash, ...load] = process.argv.slice(2);
  if (!port || !out || dashdash !== "--" || load.length === 0) {
    console.error("usage: node scripts/profile.mjs INSPECTOR_PORT SECONDS OUT.json -- LOAD_COMMAND...");
    process.exit(2);
  }
  ({ profile, summary } = await live(port, load));
}

async function live(port, load) {
  // The worker's target: wrangler dev lists one per worker (the KAM stand-in too).
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => !/kam/i.test(`${t.title} ${t.url} ${t.id}`)) ?? targets[0];
  if (!target) throw new Error(`no inspector target on port ${port}`);
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((ok, fail) => { ws.once("open", ok); ws.once("error", fail); });
  let nextId = 0;
  const pending = new Map();
  ws.on("message", (data) => {
    const m = JSON.parse(data.toString());
    if (m.id !== undefined && pending.has(m.id)) {
      const { ok, fail } = pending.get(m.id);
      pending.delete(m.id);
      m.error ? fail(new Error(JSON.stringify(m.error))) : ok(m.result);
    }
  });
  const call = (method, params = {}) =>
    new Promise((ok, fail) => {
      const id = ++nextId;
      pending.set(id, { ok, fail });
      ws.send(JSON.stringify({ id, method, params }));
    });

  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 100 }); // µs
  await call("Profiler.start");
  const summary = await new Promise((ok, fail) => {
    const child = spawn(load[0], load.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    let text = "";
    child.stdout.on("data", (d) => (text += d));
    child.on("error", fail);
    child.on("close", (code) => {
      if (code !== 0) return fail(new Error(`the load command exited ${code}`));
      const last = text.trim().split("\n").pop();
      try { ok(JSON.parse(last)); } catch { fail(new Error(`no JSON summary from the load command: ${last}`)); }
    });
  });
  const { profile } = await call("Profiler.stop");
  ws.close();
  return { profile, summary };
}

// Self time per node: the samples' time deltas, attributed to the sampled node.
const self = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}

// Rust's legacy mangling (_ZN…E) to a path, without the hash.
function demangle(name) {
  const m = /^_?_ZN(.*)E$/.exec(name);
  if (!m) return name;
  let rest = m[1];
  const parts = [];
  while (rest.length) {
    const len = /^(\d+)/.exec(rest);
    if (!len) break;
    const n = Number(len[1]);
    parts.push(rest.slice(len[1].length, len[1].length + n));
    rest = rest.slice(len[1].length + n);
  }
  if (parts.length && /^h[0-9a-f]{16}$/.test(parts[parts.length - 1])) parts.pop();
  return parts
    .join("::")
    .replace(/\$LT\$/g, "<").replace(/\$GT\$/g, ">").replace(/\$u20\$/g, " ")
    .replace(/\$RF\$/g, "&").replace(/\$BP\$/g, "*").replace(/\$C\$/g, ",")
    .replace(/\$u7b\$/g, "{").replace(/\$u7d\$/g, "}").replace(/\$u27\$/g, "'")
    .replace(/\$u5b\$/g, "[").replace(/\$u5d\$/g, "]").replace(/\$u3b\$/g, ";")
    .replace(/\$SP\$/g, "@").replace(/\.\./g, "::");
}

const OURS = ["content_granulator", "bitware_kit"];
function classify(frame) {
  const { functionName: fn, url } = frame;
  if (fn === "(idle)") return ["idle", "(idle)"];
  if (fn === "(garbage collector)") return ["gc", fn];
  if (fn === "(program)") return ["runtime (native, unattributed)", fn];
  if (fn === "(root)") return ["runtime (native, unattributed)", fn];
  if (/^(js-to-wasm|wasm-to-js)/.test(fn)) return ["wasm <-> JS boundary (V8 wrappers)", fn];
  if (url.startsWith("wasm://")) {
    const name = demangle(fn.replace(/^\$/, ""));
    // Trait impls demangle as <a::T as b::Trait>::f: the implementing type's crate.
    const crate = (/^<([a-z0-9_]+)::/.exec(name) ?? /^([a-z0-9_]+)::/.exec(name) ?? [])[1];
    if (crate && OURS.includes(crate)) return [`wasm: ours (${crate})`, name];
    if (/^(wasm_bindgen|js_sys|web_sys|worker|worker_sys|wasm_bindgen_futures)\b/.test(crate ?? "")) return ["wasm: workers-rs / wasm-bindgen", name];
    if (/^(serde|serde_core|serde_json|ryu|itoa)$/.test(crate ?? "")) return ["wasm: serde / serde_json", name];
    if (/^(core|alloc|std|dlmalloc|compiler_builtins|memchr|hashbrown)\b/.test(crate ?? "") || /^(memcpy|memmove|memset|memcmp|malloc|free|realloc|__rust)/.test(name)) return ["wasm: std / alloc / mem*", name];
    return ["wasm: other crates", name];
  }
  if (url.includes("d1-api")) return ["D1 client (cloudflare-internal:d1-api)", fn || "(anonymous)"];
  if (url.includes("internal_inspect") || fn === "log") return ["console.log (the request log line)", fn];
  if (url.startsWith("cloudflare-internal:") || url.startsWith("node-internal:")) return ["runtime JS (other bindings, tracing)", `${fn} ${url}`];
  if (url === "") return ["runtime builtins (JS/native)", fn || "(anonymous)"];
  if (/index\.js|shim|build\//.test(url)) return ["JS glue (wasm-bindgen, worker shim)", `${fn || "(anonymous)"} ${url.split("/").pop()}:${frame.lineNumber}`];
  return ["JS other", `${fn || "(anonymous)"} ${url.split("/").pop()}`];
}

const byCategory = new Map();
const byFunction = new Map();
let totalUs = 0;
for (const node of profile.nodes) {
  const us = self.get(node.id) ?? 0;
  if (!us) continue;
  const [category, name] = classify(node.callFrame);
  totalUs += us;
  byCategory.set(category, (byCategory.get(category) ?? 0) + us);
  const key = `${category}\t${name}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
}
const requests = summary.requests ?? 0;
const busyUs = totalUs - (byCategory.get("idle") ?? 0);
const ms = (us) => (us / 1000).toFixed(3);
const perReq = (us) => (requests ? (us / 1000 / requests).toFixed(3) : "n/a");
const pct = (us) => ((100 * us) / (busyUs || 1)).toFixed(1);

console.log(`profile: ${ms(totalUs)} ms sampled over ${seconds}s, ${requests} requests (${JSON.stringify(summary.statuses ?? {})}), ` +
  `busy ${ms(busyUs)} ms = ${perReq(busyUs)} ms/request (idle ${ms(byCategory.get("idle") ?? 0)} ms)`);
console.log("\nby category (self time; % of busy time; ms per request):");
const categories = [...byCategory].sort((a, b) => b[1] - a[1]);
for (const [c, us] of categories) {
  if (c === "idle") continue;
  console.log(`  ${c.padEnd(40)} ${pct(us).padStart(5)}%  ${perReq(us).padStart(8)} ms/req`);
}
console.log("\ntop functions (self time):");
const functions = [...byFunction].sort((a, b) => b[1] - a[1]).filter(([k]) => !k.startsWith("idle"));
for (const [k, us] of functions.slice(0, 40)) {
  const [c, name] = k.split("\t");
  console.log(`  ${pct(us).padStart(5)}%  ${perReq(us).padStart(7)} ms/req  [${c}] ${name.slice(0, 140)}`);
}

writeFileSync(out, JSON.stringify({
  seconds: Number(seconds), requests, statuses: summary.statuses, busyMsPerRequest: requests ? busyUs / 1000 / requests : null,
  categories: Object.fromEntries(categories.map(([c, us]) => [c, { ms: us / 1000, msPerRequest: requests ? us / 1000 / requests : null, percentOfBusy: Number(pct(us)) }])),
  functions: functions.slice(0, 200).map(([k, us]) => { const [category, name] = k.split("\t"); return { category, name, ms: us / 1000 }; }),
}, null, 2));
writeFileSync(out.replace(/\.json$/, "") + ".cpuprofile", JSON.stringify(profile));
console.log(`\nwritten: ${out} and ${out.replace(/\.json$/, "")}.cpuprofile`);
