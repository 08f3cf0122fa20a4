"""What the benchmarks share about the Resource Manager (contracts §2, the
driver of tests/chain.rs): a stage driven as it drives one, and the critical
path of a job's calls from the mock's call log."""
import threading, time
import bench_http

# The Resource Manager's timing (contracts §2, tests/chain.rs).
RM_TIMEOUT_S = 30
RM_TRIES = 3
RM_PAUSE_S = 1


def rm_stage(base, body, client, request_id, tries_allowed=RM_TRIES, race_s=RM_TIMEOUT_S):
    """A stage as the Resource Manager runs it: the answer it kept (or None),
    what every try ended with, and the stage's wall clock in ms."""
    body = dict(body, timeout=race_s * 1000)
    headers = {"Authorization": "Bearer dev-shared-secret", "X-Worker-ID": "bitware-resource-manager",
               "X-Client-ID": client, "X-Priority": "normal", "X-Request-ID": request_id}
    tries, kept = [], None
    started = time.perf_counter()
    for n in range(tries_allowed):
        if n:
            time.sleep(RM_PAUSE_S)
        answer = {}

        def send():
            # A lost race does not cancel the try: it runs on in this thread.
            try:
                answer["reply"] = bench_http.call("POST", f"{base}/api/execute", body, headers, 400)
            except Exception as e:  # noqa: BLE001 - a transport error is a failed try
                answer["error"] = str(e)

        t = threading.Thread(target=send, daemon=True)
        t.start()
        t.join(race_s)
        if t.is_alive():
            tries.append("race")
        elif "error" in answer:
            tries.append("error")
        else:
            status, _, reply = answer["reply"]
            tries.append(str(status))
            if 200 <= status < 300:
                kept = reply
                break
    return kept, tries, round((time.perf_counter() - started) * 1000)


def critical_path(timeline):
    """From the call that ended last, back through the call that ended last
    before each one started: the chain of slots the job waited on."""
    if not timeline:
        return []
    path = [max(range(len(timeline)), key=lambda i: timeline[i][1])]
    while True:
        start = timeline[path[-1]][0]
        before = [i for i, c in enumerate(timeline) if c[1] <= start]
        if not before:
            return path
        path.append(max(before, key=lambda i: timeline[i][1]))
