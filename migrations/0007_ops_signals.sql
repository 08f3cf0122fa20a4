-- Alerts (issue 27): what GET /api/admin/alerts needs that no other table records.
-- Columns and tables are added (no table rebuild): rows written before this migration keep working.

-- Requests to the authenticated and admin routes per 10 seconds (the bucket is the first 18 characters
-- of the ISO time, 'YYYY-MM-DDTHH:MM:S') and how many ended 5xx or failed because KAM was unavailable:
-- one upsert per request, after its response. The cron deletes buckets older than 8 days.
CREATE TABLE request_counts (
  bucket TEXT PRIMARY KEY CHECK (length(bucket) = 18),
  requests INTEGER NOT NULL DEFAULT 0 CHECK (requests >= 0),
  server_errors INTEGER NOT NULL DEFAULT 0 CHECK (server_errors >= 0),
  kam_failures INTEGER NOT NULL DEFAULT 0 CHECK (kam_failures >= 0)
);
-- The tier whose daily cap a tenant's day counts against (NULL for days reserved before this migration).
ALTER TABLE tenant_daily_spend ADD COLUMN tier TEXT CHECK (tier IS NULL OR tier IN ('basic', 'standard', 'premium', 'enterprise'));
