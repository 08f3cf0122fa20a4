#!/usr/bin/env python3
"""Parallel hierarchical generation against a running stack (./bench.sh fanout;
GRANULATOR_URL, MOCK_URL from scripts/lib.sh start_stack).

The mock streams every answer at MOCK_TPS tokens/s after MOCK_TTFT_MS, writes
outlines as long as the catalog's per-level token estimates (what a model
writes: a granularity-5 course is ~6,600 output tokens; the offline
generator's own text is about half that, MOCK_CATALOG_LENGTH=0 keeps it), and
bills what was really sent and written (4 characters a token). For course,
novel and workflow at granularity 3, 4 and 5 the same request runs with
`single` and with `fanout`, one after the other at the same rate; one JSON
line per case:
  speedup           wall-clock single / fanout (the request, sync, run inline)
  tokenRatio        total tokens (prompt + output) fanout / single
  outputTokenRatio  output tokens fanout / single
  costRatio         cost fanout / single, prompt caching modelled (the mock
                    reports a repeated prefix as cached as the provider does,
                    and the worker prices it at the model's cached price)
  costRatioUncached the same tokens with nothing cached (every prompt token
                    at the input price: what the ratio was before caching)
  cachedTokens      prompt tokens served from the cache, single and fanout
  qualitySingle, qualityFanout
  firstBranchS      seconds from the fan-out request to its first visible branch (the first
                    non-empty `GET /api/jobs/{id}/structure` while it runs, polled every 50 ms)
  firstBranchRatio  firstBranchS / the single call's time (before partial results, nothing was
                    visible until the job ended: a ratio of 1 for the single call)
  firstNodeSingleS  the same for the single call (its first level-1 node, read from its stream)
  titleOverlap      how much the branches' titles repeat each other, single and fanout: the
                    mean Jaccard of normalised title words between nodes of the same level in
                    different branches, every level pooled (scripts/bench_overlap.py)
  nearDuplicateTitles  pairs of such titles at Jaccard 0.8 or more, single and fanout
  contentOverlap    the mean Jaccard of the branches' other text as word 3-shingles, single
                    and fanout
  overlap           both in full: per level, mean, max, pairs, near duplicates
  callsAtOnce       the most fan-out calls streaming at once, as the mock saw them
  headersWaitingMax the most of them waiting for their response headers at once (the
                    platform's limit is six: the worker's gate, ADR 0015)
  timeline          the fan-out's calls as the mock saw them: [startS, endS, outputTokens,
                    label] from the first call's arrival (`endS` the stream's last byte)
  criticalPath      labels into `timeline`, last first: the call that ended last, then the
                    call that ended last before it started, and so on
FANOUT_CASES=course:5,novel:5 runs only those cases (and not the `auto` rows).
FANOUT_RM=1 then runs each case once more as the Resource Manager drives it (a
30-s race, 3 tries 1 s apart, the same X-Request-ID; `auto`, as the RM sends
it): {"rm": true, "rmTries", "rmFirstTry", "rmMs", "jobs" (jobs made for the
request: 1), "modelCalls" (the mock's calls for it), "attempts" (the job's
ledger: the same number, so nothing ran twice, counted once the job has
ended)}. FANOUT_RM=only runs just those.
MOCK_HEADERS_AT_FIRST_TOKEN=0 sends a stream's headers at once instead of with
its first token (the default: the header wait a provider makes).
Then granularity 1 and 2 with `auto` (the default): one model call, the
strategy reported `single`, and its time beside an explicit `single`.
The default pace, 400 tokens/s after 125 ms, is 100 tokens/s after 500 ms
(a hosted model) run four times faster: the ratios are the same, the run
takes minutes instead of a quarter of an hour. MOCK_PROMPT_CACHING=0 turns the
mock's prompt cache off."""
import json, os, sys, threading, time, urllib.parse, uuid
import bench_http
import bench_overlap
from bench_rm import critical_path, rm_stage

BASE = os.environ["GRANULATOR_URL"]
MOCK = os.environ["MOCK_URL"]
TPS = float(os.environ.get("MOCK_TPS", "400"))
TTFT = int(os.environ.get("MOCK_TTFT_MS", "125"))
CATALOG_LENGTH = os.environ.get("MOCK_CATALOG_LENGTH", "1") != "0"
PROMPT_CACHING = os.environ.get("MOCK_PROMPT_CACHING", "1") != "0"
HOLD_HEADERS = os.environ.get("MOCK_HEADERS_AT_FIRST_TOKEN", "1") != "0"
RM = os.environ.get("FANOUT_RM", "0") == "1"
RM_ONLY = os.environ.get("FANOUT_RM", "0") == "only"
CASES = [(c.split(":")[0], int(c.split(":")[1])) for c in os.environ.get("FANOUT_CASES", "").split(",") if c]
WORKER = {"Authorization": "Bearer dev-shared-secret", "X-Worker-ID": "bench-fanout",
          "X-Client-ID": f"bench-fanout-{uuid.uuid4().hex[:8]}"}


def call(method, url, body=None, headers=None, timeout=400):
    status, _, reply = bench_http.call(method, url, body, headers, timeout)
    return status, reply


def first_visible(topic, started, done, seen):
    """Poll the job of `topic` until its structure shows a branch (or it ends):
    seconds from `started` into seen["s"]."""
    job = None
    while not done.is_set():
        if job is None:
            _, page = call("GET", f"{BASE}/api/jobs?limit=5", None, WORKER)
            job = next((j["id"] for j in (page or {}).get("jobs", []) if j["topic"] == topic), None)
        else:
            status, s = call("GET", f"{BASE}/api/jobs/{job}/structure", None, WORKER)
            if status == 200 and (s.get("branches") or s.get("complete")):
                seen["s"] = time.perf_counter() - started
                seen["partial"] = not s.get("complete")
                return
        time.sleep(0.05)


def most_at_once(calls, until):
    events = sorted([(c["startSeq"], 1) for c in calls] + [(c[until], -1) for c in calls if c.get(until) is not None])
    now = most = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def timeline(topic):
    """The topic's calls as the mock saw them, and the critical path through them."""
    _, reply = call("GET", f"{MOCK}/__mock/calls?key={urllib.parse.quote(topic)}")
    calls = sorted(reply.get("calls", []), key=lambda c: c["startMs"])
    if not calls:
        return {}
    t0 = calls[0]["startMs"]
    line = [[round((c["startMs"] - t0) / 1000, 2), round(((c.get("endMs") or c["startMs"]) - t0) / 1000, 2),
             ((c.get("usage") or {}).get("output") or 0), c.get("part") or c.get("kind")] for c in calls]
    return {"callsAtOnce": most_at_once(calls, "endSeq"), "headersWaitingMax": most_at_once(calls, "headersSeq"),
            "timeline": line, "criticalPath": [line[i][3] for i in critical_path(line)]}


def rm_run(structure_type, granularity):
    """The request as the Resource Manager sends it, raced and retried as it does."""
    topic = f"Fanout bench rm {structure_type} {uuid.uuid4().hex[:8]}"
    body = {"action": "granulate", "input": {"topic": topic, "structureType": structure_type,
                                             "granularityLevel": granularity}}
    kept, tries, ms = rm_stage(BASE, body, WORKER["X-Client-ID"], f"rm-{uuid.uuid4().hex}")
    _, page = call("GET", f"{BASE}/api/jobs?limit=20", None, WORKER)
    jobs = [j for j in (page or {}).get("jobs", []) if j["topic"] == topic]
    attempts, status, strategy = None, None, (kept or {}).get("metadata", {}).get("strategy")
    if len(jobs) == 1:
        # When the RM gave up the job runs on: its ledger is read once it has ended.
        for _ in range(600):
            _, detail = call("GET", f"{BASE}/api/jobs/{jobs[0]['id']}", None, WORKER)
            status = detail.get("job", {}).get("status")
            if status not in ("pending", "processing", "queued", "running"):
                break
            time.sleep(1)
        attempts = len(detail.get("attempts", []))
        labels = {a.get("branch") for a in detail.get("attempts", [])}
        strategy = strategy or ("fanout" if "skeleton" in labels else "single")
    _, mocked = call("GET", f"{MOCK}/__mock/calls?key={urllib.parse.quote(topic)}")
    return {"rm": True, "type": structure_type, "granularity": granularity, "tokensPerSecond": TPS,
            "ttftMs": TTFT, "rmTries": tries, "rmFirstTry": tries[:1] == ["200"], "rmMs": ms,
            "strategy": strategy, "jobStatus": status,
            "jobs": len(jobs), "modelCalls": len(mocked.get("calls", [])), "attempts": attempts}


def run(structure_type, granularity, strategy, watch=False):
    topic = f"Fanout bench {structure_type} {uuid.uuid4().hex[:8]}"
    body = {"action": "granulate",
            "input": {"topic": topic,
                      "structureType": structure_type, "granularityLevel": granularity},
            # The longest wait: every case runs inline in its request, none goes through the queue.
            "timeout": 300000}
    if strategy:
        body["config"] = {"strategy": strategy}
    t = time.perf_counter()
    seen, done = {}, threading.Event()
    watcher = threading.Thread(target=first_visible, args=(topic, t, done, seen), daemon=True)
    if watch:
        watcher.start()
    status, reply = call("POST", f"{BASE}/api/execute", body, WORKER)
    ms = (time.perf_counter() - t) * 1000
    done.set()
    if watch:
        watcher.join()
    if status != 200:
        raise SystemExit(f"{structure_type} g{granularity} {strategy}: HTTP {status} {reply}")
    tokens = reply["usage"]["tokens"]
    meta = reply["metadata"]
    out = reply["output"]
    structure = out.get("structure")
    if structure is None:
        # Large outlines are stored: read back through their reference.
        status, stored = call("GET", BASE + out["structureReference"]["url"], None, WORKER)
        if status != 200:
            raise SystemExit(f"{structure_type} g{granularity} {strategy}: structure HTTP {status} {stored}")
        structure = stored["structure"]
    cached = tokens.get("cached", 0)
    # Every cached prompt token billed at the input price instead (OpenAI writes cost nothing extra).
    price = PRICES.get(reply["model"], {})
    discount = cached * (price.get("input", 0) - price.get("cachedInput", price.get("input", 0))) / 1e6
    return {"ms": ms, "input": tokens["input"], "output": tokens["output"], "cost": reply["cost"],
            "cached": cached, "costUncached": reply["cost"] + discount,
            "quality": reply["output"]["qualityScore"], "calls": meta["attempts"],
            "strategy": meta.get("strategy"), "branches": meta.get("branches"),
            "elements": reply["output"]["summary"]["totalElements"],
            "overlap": bench_overlap.overlap(structure, structure_type, topic),
            # Seen only as the whole outline: as late as the job itself.
            "firstS": seen.get("s", ms / 1000) if seen.get("partial") else ms / 1000,
            "calls_seen": timeline(topic) if strategy == "fanout" else {}}


call("POST", f"{MOCK}/__mock/config", {"tokensPerSecond": TPS, "ttftMs": TTFT, "measureUsage": True,
                                      "catalogLength": CATALOG_LENGTH, "promptCaching": PROMPT_CACHING,
                                      "headersAtFirstToken": HOLD_HEADERS})
PRICES = call("GET", f"{BASE}/api/economy/pricing", None, WORKER)[1]["models"]
rows, ok = [], True
try:
    cases = CASES or [(t, g) for t in ("course", "novel", "workflow") for g in (3, 4, 5)]
    for structure_type, g in cases if not RM_ONLY else ():
        s = run(structure_type, g, "single", watch=True)
        f = run(structure_type, g, "fanout", watch=True)
        assert f["strategy"] == "fanout" and s["strategy"] == "single", (s, f)
        assert f["elements"] == s["elements"], (s, f)
        row = {"type": structure_type, "granularity": g, "tokensPerSecond": TPS, "ttftMs": TTFT,
               "catalogLength": CATALOG_LENGTH,
               "elements": s["elements"], "branches": f["branches"],
               "singleMs": round(s["ms"]), "fanoutMs": round(f["ms"]),
               "speedup": round(s["ms"] / f["ms"], 2),
               "tokenRatio": round((f["input"] + f["output"]) / (s["input"] + s["output"]), 2),
               "outputTokenRatio": round(f["output"] / s["output"], 2),
               "costRatio": round(f["cost"] / s["cost"], 2) if s["cost"] else None,
               "tokensSingle": {"input": s["input"], "output": s["output"]},
               "tokensFanout": {"input": f["input"], "output": f["output"]},
               "qualitySingle": s["quality"], "qualityFanout": f["quality"],
               "firstBranchS": round(f["firstS"], 2),
               "firstBranchRatio": round(f["firstS"] * 1000 / s["ms"], 3),
               "firstNodeSingleS": round(s["firstS"], 2),
               "costRatioUncached": round(f["costUncached"] / s["costUncached"], 2) if s["costUncached"] else None,
               "cachedTokens": {"single": s["cached"], "fanout": f["cached"]},
               "promptCaching": PROMPT_CACHING,
               "modelCalls": {"single": s["calls"], "fanout": f["calls"]},
               "titleOverlap": {"single": s["overlap"]["titles"]["mean"], "fanout": f["overlap"]["titles"]["mean"]},
               "nearDuplicateTitles": {"single": s["overlap"]["titles"]["nearDuplicates"],
                                       "fanout": f["overlap"]["titles"]["nearDuplicates"]},
               "contentOverlap": {"single": s["overlap"]["content"]["mean"], "fanout": f["overlap"]["content"]["mean"]},
               "overlap": {"single": s["overlap"], "fanout": f["overlap"]},
               "headersAtFirstToken": HOLD_HEADERS}
        row.update(f["calls_seen"])
        rows.append(row)
        print(json.dumps(row), flush=True)
        if g == 5:
            ok &= row["speedup"] >= 3 and row["qualityFanout"] >= row["qualitySingle"]
    for structure_type, g in cases if RM or RM_ONLY else ():
        row = rm_run(structure_type, g)
        print(json.dumps(row), flush=True)
        ok &= row["jobs"] == 1 and row["modelCalls"] == row["attempts"]
    for structure_type in ("course", "novel", "workflow") if not CASES and not RM_ONLY else ():
        for g in (1, 2):
            a = run(structure_type, g, None)
            s = run(structure_type, g, "single")
            row = {"type": structure_type, "granularity": g, "strategy": "auto", "chosen": a["strategy"],
                   "modelCalls": a["calls"], "autoMs": round(a["ms"]), "singleMs": round(s["ms"]),
                   "tokens": {"input": a["input"], "output": a["output"]},
                   "tokensSingle": {"input": s["input"], "output": s["output"]}}
            print(json.dumps(row), flush=True)
            ok &= a["strategy"] == "single" and a["calls"] == 1 and a["output"] == s["output"] and a["input"] == s["input"]
finally:
    call("POST", f"{MOCK}/__mock/config", {})
sys.exit(0 if ok else 1)
