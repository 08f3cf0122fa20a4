#!/usr/bin/env python3
"""Figures of jobs at model speed (./bench.sh --async), against a running stack
(GRANULATOR_URL, MOCK_URL from scripts/lib.sh start_stack):

1. time to 202 of `Prefer: respond-async` executes (sequential, c = 1);
2. the events stream of an async granularity-5 course with the mock streaming
   at 100 tokens/s: first progress event after the job starts, update interval;
3. the Resource Manager's pattern (30 s timeout, 3 tries 1 s apart, same
   X-Request-ID) against a ~60 s job: per-try status and time, generations billed.

Prints a table and one JSON object (last line) for bench/results/."""
import json, os, statistics, sys, time, uuid, http.client
from urllib.parse import urlparse
from bench_http import call

BASE = os.environ["GRANULATOR_URL"]
MOCK = os.environ["MOCK_URL"]
WORKER = {"Authorization": "Bearer dev-shared-secret", "X-Worker-ID": "bench-async", "X-Client-ID": f"bench-async-{uuid.uuid4().hex[:8]}"}
N202 = int(os.environ.get("ASYNC_N", "100"))
RM_OUTPUT_TOKENS = int(os.environ.get("RM_OUTPUT_TOKENS", "6000"))
EVENTS_OUTPUT_TOKENS = int(os.environ.get("EVENTS_OUTPUT_TOKENS", "2000"))
TPS = float(os.environ.get("MOCK_TPS", "100"))


def mock_config(cfg):
    call("POST", f"{MOCK}/__mock/config", cfg)


def course(topic):
    # One call (not fanned out): these figures are about a single long stream.
    return {"action": "granulate", "input": {"topic": topic, "structureType": "course", "granularityLevel": 5},
            "config": {"strategy": "single"}}


def wait_done(job_id, limit=600):
    t0 = time.time()
    while time.time() - t0 < limit:
        _, _, s = call("GET", f"{BASE}/api/jobs/{job_id}/status", headers=WORKER)
        if s["status"] != "processing":
            return s
        time.sleep(0.5)
    raise SystemExit(f"job {job_id} did not finish")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


out = {}
# 1. time to 202 (instant mock, so the local consumer drains the jobs quickly).
mock_config({})
lat, ids = [], []
for i in range(N202):
    t = time.perf_counter()
    status, headers, body = call("POST", f"{BASE}/api/execute", course(f"Async bench {uuid.uuid4().hex}"),
                                 {**WORKER, "Prefer": "respond-async"})
    lat.append((time.perf_counter() - t) * 1000)
    assert status == 202, (status, body)
    ids.append(body["jobId"])
for job_id in ids:
    assert wait_done(job_id)["status"] == "completed"
out["timeTo202Ms"] = {"n": N202, "p50": round(statistics.median(lat), 1), "p99": round(pct(lat, 99), 1), "max": round(max(lat), 1)}
print(f"1. time to 202: n={N202} p50 {out['timeTo202Ms']['p50']} ms, p99 {out['timeTo202Ms']['p99']} ms (all {N202} jobs then completed)")

# 2. events of a streamed async job.
mock_config({"tokensPerSecond": TPS, "ttftMs": 500, "usage": {"input": 3000, "output": EVENTS_OUTPUT_TOKENS}})
status, _, body = call("POST", f"{BASE}/api/execute", course(f"Events bench {uuid.uuid4().hex}"), {**WORKER, "Prefer": "respond-async"})
assert status == 202, body
job_id = body["jobId"]
u = urlparse(BASE)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
conn.request("GET", f"/api/jobs/{job_id}/events", headers=WORKER)
resp = conn.getresponse()
events, name, t_open = [], None, time.time()
while True:
    line = resp.readline()
    if not line:
        break
    line = line.decode().rstrip("\n")
    if line.startswith("event: "):
        name = line[7:]
    elif line.startswith("data: "):
        events.append((name, json.loads(line[6:]), time.time()))
stages = [(n, d.get("stage"), d.get("percent")) for n, d, _ in events]
started = next((t for n, d, t in events if d.get("stage") not in ("queued",)), None)
first_tokens = next((t for n, d, t in events if d.get("tokens", {}).get("received", 0) > 0), None)
gen = [t for n, d, t in events if d.get("stage") == "generating"]
gaps = [(b - a) * 1000 for a, b in zip(gen, gen[1:])]
out["events"] = {
    "outputTokens": EVENTS_OUTPUT_TOKENS, "tokensPerSecond": TPS, "events": len(events), "last": events[-1][0],
    "firstEventAfterOpenMs": round((events[0][2] - t_open) * 1000),
    "firstGeneratingEventAfterOpenMs": round((started - t_open) * 1000) if started else None,
    "firstTokensEventAfterStartMs": round((first_tokens - started) * 1000) if first_tokens and started else None,
    "updateIntervalMs": {"p50": round(statistics.median(gaps)), "max": round(max(gaps))} if gaps else None,
    "percentsSeen": sorted({p for _, s, p in stages if p is not None}),
}
e = out["events"]
print(f"2. events: {e['events']} events ending '{e['last']}'; first event {e['firstEventAfterOpenMs']} ms after opening; "
      f"first with tokens {e['firstTokensEventAfterStartMs']} ms after the job started (TTFT 500 ms); "
      f"update interval while generating p50 {e['updateIntervalMs']['p50']} ms, max {e['updateIntervalMs']['max']} ms")

# 3. The Resource Manager's pattern against a ~60 s job.
mock_config({"tokensPerSecond": TPS, "ttftMs": 500, "usage": {"input": 3000, "output": RM_OUTPUT_TOKENS}})
call("DELETE", f"{MOCK}/__mock/totals")
rid = f"rm-{uuid.uuid4().hex}"
body = course(f"RM bench {uuid.uuid4().hex}")
body["timeout"] = 30000
tries, t0, final = [], time.time(), None
for attempt in range(1, 4):
    t = time.time()
    status, headers, reply = call("POST", f"{BASE}/api/execute", body, {**WORKER, "X-Request-ID": rid}, timeout=60)
    tries.append({"try": attempt, "status": status, "startedAtS": round(t - t0, 1), "tookS": round(time.time() - t, 1),
                  "code": (reply or {}).get("code"), "replay": headers.get("Idempotent-Replay")})
    if status == 200:
        final = reply
        break
    time.sleep(1)
job_id = (final or {}).get("output", {}).get("jobId")
_, _, job = call("GET", f"{BASE}/api/jobs/{job_id}", headers=WORKER) if job_id else (0, {}, {})
_, _, totals = call("GET", f"{MOCK}/__mock/totals")
successes = [a for a in (job or {}).get("attempts", []) if a["status"] == "success"]
out["resourceManager"] = {"outputTokens": RM_OUTPUT_TOKENS, "tries": tries, "success": final is not None,
                          "jobDurationMs": (final or {}).get("duration"), "successfulModelCalls": len(successes),
                          "mockAnswered": totals.get("answered"), "mockOutputTokens": totals.get("tokensOutput"),
                          "billedOutputTokens": (final or {}).get("usage", {}).get("tokens", {}).get("output")}
r = out["resourceManager"]
print("3. RM pattern (timeout 30 s, 3 tries 1 s apart, same X-Request-ID):")
for t in tries:
    print(f"   try {t['try']} at {t['startedAtS']} s: {t['status']} {t['code'] or ''} after {t['tookS']} s{' (replay)' if t['replay'] else ''}")
print(f"   success={r['success']}, job {r['jobDurationMs']} ms, successful model calls {r['successfulModelCalls']}, "
      f"mock answered {r['mockAnswered']}, billed output tokens {r['billedOutputTokens']} = served {r['mockOutputTokens']}")
mock_config({})
print(json.dumps(out))
ok = r["success"] and r["successfulModelCalls"] == 1 and r["mockAnswered"] == 1 and e["last"] == "completed"
sys.exit(0 if ok else 1)
