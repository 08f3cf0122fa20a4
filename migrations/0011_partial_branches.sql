-- Partial results (issue 24): every level-1 branch of a running job that has
-- passed its checks (normalised, level rules), as soon as it has, so any
-- isolate can show it (`GET /api/jobs/{id}/structure` with `complete: false`,
-- `event: branch` on the events stream). Keyed by job, run and position (1-based,
-- skeleton order): a newer run never shows an older run's rows. `node` is the
-- branch's canonical subtree as JSON (a branch is at most one call's answer, far
-- below D1's 2 MB a row; bound, so not counted in the 100 KB of a statement).
-- `id` orders the rows as they were written: the events stream sends those past
-- the last it sent. The cron sweep deletes a job's rows 10 minutes after it ends.
CREATE TABLE partial_branches (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER NOT NULL REFERENCES granulation_jobs (id) ON DELETE CASCADE,
  run INTEGER NOT NULL CHECK (run >= 1),
  position INTEGER NOT NULL CHECK (position >= 1),
  total INTEGER NOT NULL CHECK (total >= position),
  title TEXT NOT NULL,
  node TEXT NOT NULL CHECK (json_valid(node)),
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  UNIQUE (job_id, run, position)
);
