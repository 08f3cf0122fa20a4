-- 0001: executions, one row per POST /api/execute.
CREATE TABLE IF NOT EXISTS executions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  -- The tenant key (bitware_kit::auth::Tenant::key): client id, user:<id> or worker:<id>.
  tenant TEXT NOT NULL CHECK (length(tenant) BETWEEN 1 AND 600),
  action TEXT NOT NULL CHECK (action IN ('example')),
  input_chars INTEGER NOT NULL CHECK (input_chars >= 0),
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS idx_executions_tenant ON executions (tenant);
