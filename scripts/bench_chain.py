#!/usr/bin/env python3
"""The chain's wall clock at real model length (./bench.sh chain; issue 26):
the granulator and the Content Generator under the stack of scripts/lib.sh
start_chain_stack (GRANULATOR_URL, GENERATOR_URL, MOCK_URL), the mock
streaming at CHAIN_TPS tokens/s (the rate the stack was started with; the
mock's pace is its restart) and billing what it really writes (`measureUsage`,
4 characters a token: the generator's content calls are exactly the target
words of each element, so their length is what a model would write).

Each case is driven as the Resource Manager drives the chain (contracts §2,
the driver of tests/chain.rs): granulate, then generate with the granulator's
`output`, each stage a `POST /api/execute` with worker credentials acting for
one client, every try raced against 30 s (the try goes on when the race is
lost), up to 3 tries 1 s apart with the same `X-Request-ID`.

One JSON line per case (CHAIN_CASES=course:3,novel:3; course:3 by default):
  structureType, granularity, tokensPerSecond, build (CHAIN_BUILD: which code
  ran), elements (the granulator's totalElements)
  granulateMs, generateMs, totalMs   each stage as the RM felt it (from its
                    first try to the answer it kept, pauses included)
  generatorCalls    the generator's model calls (the mock's call log)
  outputTokens      per stage: the envelope's `usage.tokens.output` and the
                    mock's total over the stage (they must agree)
  largestCallOutputTokens  the generator's longest call
  rmTries           per stage, what each try ended with: a status ("504",
                    "200") or "race" (no answer within the 30 s)
  rmFirstTry        per stage, whether the first try succeeded
  rmGaveUp          per stage, whether all three tries failed: the job runs
                    on, the RM has nothing; the bench then goes on trying
                    the same way (same body and X-Request-ID, up to 10 more)
                    until a try joins the finished job, to time it
  generationMs      the generation's own wall clock: generateMs, or until
                    such a try answered when the RM gave up (within the 1-s
                    pauses between tries)
  timeline          the generator's calls as the mock saw them (`startMs`
                    at arrival, `endMs` at the last byte of the stream), in s
                    from its first call: [startS, endS, outputTokens], by start
  criticalPath      indices into `timeline`, last first: the call that ended
                    last, then the call that ended last before it started
                    (the slot it waited for), and so on
  generatorSpanS    the first call's start to the last call's end
Then, per case, the ideal: {"ideal": true, ..., "idealGenerateMs"} = the
generator's output tokens / (CALLS_AT_ONCE x tps), the wall clock if that many
calls (AI_MAX_CALLS_AT_ONCE's default, 24) streamed all the time, beside the
measured generateMs and their ratio.
Exits 1 when a stage's envelope does not bill what the mock served, or a
stage never answered 2xx. `--self-test` checks the critical path's rule."""
import json, os, sys, time, uuid
import bench_http
from bench_rm import rm_stage, critical_path

GRANULATOR = os.environ.get("GRANULATOR_URL", "")
GENERATOR = os.environ.get("GENERATOR_URL", "")
MOCK = os.environ.get("MOCK_URL", "")
TPS = float(os.environ.get("CHAIN_TPS", "100"))
TTFT = int(os.environ.get("CHAIN_TTFT_MS", "0"))
BUILD = os.environ.get("CHAIN_BUILD", "")
CASES = [(c.split(":")[0], int(c.split(":")[1]))
         for c in os.environ.get("CHAIN_CASES", "course:3").split(",") if c]
# Calls of one job streaming at once (AI_MAX_CALLS_AT_ONCE's default; the
# platform limits only connections waiting for headers: ADR 0015).
CALLS_AT_ONCE = 24


def mock(method, path, body=None):
    status, _, reply = bench_http.call(method, f"{MOCK}{path}", body)
    if status != 200:
        raise SystemExit(f"mock {method} {path}: HTTP {status} {reply}")
    return reply


def calls():
    return mock("GET", "/__mock/calls?key=")["calls"]


def case(structure_type, granularity):
    topic = f"Chain bench {structure_type} {uuid.uuid4().hex[:8]}"
    client = f"bench-chain-{uuid.uuid4().hex[:8]}"
    mock("DELETE", "/__mock/totals")
    g_rid = f"bench-granulate-{uuid.uuid4().hex}"
    g, g_tries, g_ms = rm_stage(GRANULATOR, {"action": "granulate", "input": {
        "topic": topic, "structureType": structure_type, "granularityLevel": granularity}},
        client, g_rid)
    if g is None:
        # The RM gave up; join the job (same id) to go on with its output.
        g, more, _ = rm_stage(GRANULATOR, {"action": "granulate", "input": {
            "topic": topic, "structureType": structure_type, "granularityLevel": granularity}},
            client, g_rid, 10)
        if g is None:
            raise SystemExit(f"{structure_type} g{granularity}: granulate tries {g_tries} {more}")
    g_served = mock("GET", "/__mock/totals")
    mock("DELETE", "/__mock/totals")
    first = len(calls())
    c_rid = f"bench-generate-{uuid.uuid4().hex}"
    t = time.perf_counter()
    c, c_tries, c_ms = rm_stage(GENERATOR, {"action": "generate", "input": g["output"]}, client, c_rid)
    gen_ms = c_ms
    if c is None:
        # The RM gave up; the job runs on. Its own wall clock: join it.
        c, more, _ = rm_stage(GENERATOR, {"action": "generate", "input": g["output"]}, client, c_rid, 10)
        gen_ms = round((time.perf_counter() - t) * 1000)
        if c is None:
            raise SystemExit(f"{structure_type} g{granularity}: generate tries {c_tries} {more}")
    c_served = mock("GET", "/__mock/totals")
    # The mock's log is in arrival order: this stage's calls are the ones after `first`.
    made = [x for x in calls()[first:] if x.get("kind") == "content"]
    zero = min((x["startMs"] for x in made), default=0)
    timeline = sorted(([round((x["startMs"] - zero) / 1000, 2),
                        round(((x.get("endMs") or x["startMs"]) - zero) / 1000, 2),
                        (x.get("usage") or {}).get("output", 0)] for x in made), key=lambda t: t[0])
    row = {"structureType": structure_type, "granularity": granularity, "tokensPerSecond": TPS,
           "ttftMs": TTFT, "build": BUILD,
           "elements": g["output"]["summary"]["totalElements"],
           "granulateMs": g_ms, "generateMs": c_ms, "totalMs": g_ms + c_ms,
           "generatorCalls": len(made),
           "outputTokens": {
               "granulate": {"envelope": g["usage"]["tokens"]["output"], "mock": g_served["tokensOutput"]},
               "generate": {"envelope": c["usage"]["tokens"]["output"], "mock": c_served["tokensOutput"]}},
           "largestCallOutputTokens": max((t[2] for t in timeline), default=0),
           "rmTries": {"granulate": g_tries, "generate": c_tries},
           "rmFirstTry": {"granulate": g_tries[0].startswith("2"), "generate": c_tries[0].startswith("2")},
           "rmGaveUp": {"granulate": not g_tries[-1].startswith("2"), "generate": not c_tries[-1].startswith("2")},
           "generationMs": gen_ms,
           "generatorSpanS": max((t[1] for t in timeline), default=0),
           "timeline": timeline, "criticalPath": critical_path(timeline)}
    tokens = c["usage"]["tokens"]["output"]
    ideal = round(tokens / (CALLS_AT_ONCE * TPS) * 1000)
    return row, {"ideal": True, "structureType": structure_type, "granularity": granularity,
                 "tokensPerSecond": TPS, "build": BUILD, "generatorOutputTokens": tokens,
                 "idealGenerateMs": ideal, "generationMs": gen_ms,
                 "generationOverIdeal": round(gen_ms / ideal, 2) if ideal else None}


if sys.argv[1:] == ["--self-test"]:
    # Two waves of three: the last call waited on the one that ended last in the first wave.
    assert critical_path([[0, 5, 1], [0, 9, 1], [0, 7, 1], [5, 12, 1], [7, 20, 1], [9, 15, 1]]) == [4, 2]
    assert critical_path([[0, 3, 1]]) == [0] and critical_path([]) == []
    print("bench_chain: self-test passed")
    sys.exit(0)
mock("POST", "/__mock/config", {"tokensPerSecond": TPS, "ttftMs": TTFT, "measureUsage": True})
ok = True
try:
    for structure_type, granularity in CASES:
        row, ideal = case(structure_type, granularity)
        print(json.dumps(row), flush=True)
        print(json.dumps(ideal), flush=True)
        ok &= all(s["envelope"] == s["mock"] for s in row["outputTokens"].values())
finally:
    mock("POST", "/__mock/config", {"tokensPerSecond": TPS, "ttftMs": TTFT})
sys.exit(0 if ok else 1)
