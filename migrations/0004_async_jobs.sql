-- Async execution, jobs that outlive their request, idempotency bound to the request, progress.
-- Columns are added (no table rebuild): rows written before this migration keep working.

-- SHA-256 of the canonical request: the same X-Request-ID with another request is a 422.
ALTER TABLE granulation_jobs ADD COLUMN request_hash TEXT;
-- Where the job runs: in the request that created it ('inline') or in the queue consumer ('queue').
ALTER TABLE granulation_jobs ADD COLUMN run_mode TEXT NOT NULL DEFAULT 'inline' CHECK (run_mode IN ('inline', 'queue'));
-- Epoch ms: accepted; taken by a runner (NULL while queued); last progress write (the runner's heartbeat).
ALTER TABLE granulation_jobs ADD COLUMN submitted_at_ms INTEGER;
ALTER TABLE granulation_jobs ADD COLUMN started_at_ms INTEGER;
ALTER TABLE granulation_jobs ADD COLUMN heartbeat_at_ms INTEGER;
-- Progress of the current model call, against what the outline is expected to need.
ALTER TABLE granulation_jobs ADD COLUMN progress_tokens INTEGER NOT NULL DEFAULT 0 CHECK (progress_tokens >= 0);
ALTER TABLE granulation_jobs ADD COLUMN progress_elements INTEGER NOT NULL DEFAULT 0 CHECK (progress_elements >= 0);
ALTER TABLE granulation_jobs ADD COLUMN expected_tokens INTEGER;
ALTER TABLE granulation_jobs ADD COLUMN expected_elements INTEGER;
