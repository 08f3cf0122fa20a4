#!/usr/bin/env python3
"""The worker's local configuration for ./dev.sh, merged from three sources.

    dev_vars.py write DEV_VARS_FILE   > env file   (then written 0600 by the caller)
    dev_vars.py get NAME ENV_FILE                  (one value of a written file)

Precedence, highest first: the environment (for the names in CONFIG_VARS),
then DEV_VARS_FILE (`.dev.vars`, wrangler's dotenv format; every name in it
passes through), then the defaults below. The result is one dotenv file that
`wrangler dev --env-file` loads; wrangler reads `.dev.vars` itself only when
no --env-file is given, so the merge is what lets both sources take effect.
"""
import os
import re
import sys

# Every variable of the Configuration table in docs/operations.md (and nothing else from the
# environment: a shell's own variables never reach the worker).
CONFIG_VARS = [
    "SHARED_SECRET", "OPENAI_API_KEY", "ANTHROPIC_API_KEY",
    "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL",
    "OPENAI_MODEL", "ANTHROPIC_MODEL", "WORKERS_AI_MODEL",
    "AI_PROVIDER_ORDER", "AI_ATTEMPT_TIMEOUT_MS", "AI_MAX_ATTEMPTS",
    "AI_BACKOFF_BASE_MS", "AI_RETRY_AFTER_CAP_MS", "KAM_TIMEOUT_MS",
    "PRICING", "MAX_JOB_COST_USD", "DEFAULT_TIER", "DAILY_SPEND_CAP_USD",
    "ENVIRONMENT",
    # issue 12: jobs outliving their request, streaming
    "JOB_TIMEOUT_MS", "JOB_STALL_MS", "WAIT_UNTIL_GRACE_MS", "MODEL_TOKENS_PER_SECOND",
    "AI_STREAM_STALL_MS", "AI_MAX_CALLS_AT_ONCE", "QUEUE_FAULT_MARKER",
    # issue 21: bounded streams, the KAM cache window; issue 27: alerts
    "EVENT_STREAMS_PER_TENANT", "EVENTS_MAX_MS", "KAM_CACHE_SECONDS",
    "ALERT_THRESHOLDS", "ALERT_WINDOW_SECONDS",
]
DEFAULTS = {"SHARED_SECRET": "dev-shared-secret"}
LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def parse(text):
    """dotenv as wrangler reads it: KEY=VALUE, optional quotes, # comments."""
    out = {}
    for raw in text.splitlines():
        m = LINE.match(raw)
        if not m:
            continue
        key, value = m.group(1), m.group(2)
        if value[:1] in ("'", '"', "`") and value.rfind(value[0]) > 0:
            value = value[1:value.rfind(value[0])]
        else:
            value = value.split(" #", 1)[0].strip()
        out[key] = value
    return out


def quote(value):
    for q in ("'", '"', "`"):
        if q not in value:
            return q + value + q
    sys.exit("dev_vars: a value contains every quote character; dotenv cannot hold it")


def merged(dev_vars_path):
    values = dict(DEFAULTS)
    if dev_vars_path and os.path.isfile(dev_vars_path):
        with open(dev_vars_path, encoding="utf-8") as f:
            values.update(parse(f.read()))
    for name in CONFIG_VARS:
        if os.environ.get(name, "") != "":
            values[name] = os.environ[name]
    return values


def main(argv):
    if len(argv) == 2 and argv[0] == "write":
        for key, value in merged(argv[1]).items():
            if "\n" in value or "\r" in value:
                sys.exit(f"dev_vars: {key} holds a line break; dotenv cannot hold it")
            print(f"{key}={quote(value)}")
    elif len(argv) == 3 and argv[0] == "get":
        with open(argv[2], encoding="utf-8") as f:
            print(parse(f.read()).get(argv[1], ""))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
