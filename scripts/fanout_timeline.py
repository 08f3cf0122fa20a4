#!/usr/bin/env python3
"""Where a fanned-out job's time goes: one fan-out per structure type at
granularity 5 against a running stack (GRANULATOR_URL, MOCK_URL from
scripts/lib.sh start_stack), the mock streaming at MOCK_TPS tokens/s after
MOCK_TTFT_MS (100 and 500 by default: a hosted model) with outlines as long as
the catalog's estimates; then every model call of the job as the mock saw it
(`startMs`, `endMs`: its arrival and the end of its answer's sending), from the
first call's arrival. One JSON line per call, then one per job:
  {"type", "part", "startS", "endS", "outputTokens"}
  {"type", "totalS", "skeletonEndS", "firstBranchEndS", "lastBranchEndS"}
TIMELINE_TYPES=course,novel (the default) picks the types."""
import json, os, time, urllib.parse, uuid
import bench_http

BASE = os.environ["GRANULATOR_URL"]
MOCK = os.environ["MOCK_URL"]
TPS = float(os.environ.get("MOCK_TPS", "100"))
TTFT = int(os.environ.get("MOCK_TTFT_MS", "500"))
TYPES = os.environ.get("TIMELINE_TYPES", "course,novel").split(",")
WORKER = {"Authorization": "Bearer dev-shared-secret", "X-Worker-ID": "fanout-timeline",
          "X-Client-ID": f"fanout-timeline-{uuid.uuid4().hex[:8]}"}


def call(method, url, body=None, headers=None):
    status, _, reply = bench_http.call(method, url, body, headers, 400)
    return status, reply


call("POST", f"{MOCK}/__mock/config", {"tokensPerSecond": TPS, "ttftMs": TTFT, "measureUsage": True,
                                      "catalogLength": True})
try:
    for structure_type in TYPES:
        topic = f"Fanout timeline {structure_type} {uuid.uuid4().hex[:8]}"
        t = time.perf_counter()
        status, reply = call("POST", f"{BASE}/api/execute", {
            "action": "granulate", "timeout": 300000, "config": {"strategy": "fanout"},
            "input": {"topic": topic, "structureType": structure_type, "granularityLevel": 5}}, WORKER)
        total = time.perf_counter() - t
        if status != 200:
            raise SystemExit(f"{structure_type}: HTTP {status} {reply}")
        _, seen = call("GET", f"{MOCK}/__mock/calls?key={urllib.parse.quote(topic)}")
        calls = sorted(seen["calls"], key=lambda c: c["startMs"])
        zero = calls[0]["startMs"]
        for c in calls:
            print(json.dumps({"type": structure_type, "part": c.get("part"),
                              "startS": round((c["startMs"] - zero) / 1000, 2),
                              "endS": round(((c.get("endMs") or zero) - zero) / 1000, 2),
                              "outputTokens": (c.get("usage") or {}).get("output")}), flush=True)
        ends = [((c.get("endMs") or zero) - zero) / 1000 for c in calls if (c.get("part") or "").startswith("branch")]
        skeleton = next(c for c in calls if c.get("part") == "skeleton")
        print(json.dumps({"type": structure_type, "totalS": round(total, 2),
                          "skeletonEndS": round((skeleton["endMs"] - zero) / 1000, 2),
                          "firstBranchEndS": round(min(ends), 2), "lastBranchEndS": round(max(ends), 2)}),
              flush=True)
finally:
    call("POST", f"{MOCK}/__mock/config", {})
