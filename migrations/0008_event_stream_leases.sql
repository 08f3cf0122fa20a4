-- Bounded event streams (issue 21): every open GET /api/jobs/{id}/events
-- holds a lease of its tenant's allowance of concurrent streams. A stream
-- renews its lease while it runs and deletes it when it ends; a stream whose
-- client went away stops renewing, and its lease stops counting once past
-- `expires_at` (epoch ms).
CREATE TABLE event_stream_leases (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL CHECK (length(tenant) > 0),
  expires_at INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_event_stream_leases_tenant ON event_stream_leases (tenant, expires_at);
