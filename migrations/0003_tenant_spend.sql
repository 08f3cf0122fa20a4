-- Daily spend caps per tenant (issue 10): a job reserves its worst-case cost
-- before its first model call and settles to the real cost when it ends, so
-- concurrent jobs can never spend past a tenant's cap for the UTC day.
CREATE TABLE tenant_daily_spend (
  tenant TEXT NOT NULL CHECK (length(tenant) > 0),
  day TEXT NOT NULL CHECK (length(day) = 10),
  reserved_usd REAL NOT NULL DEFAULT 0 CHECK (reserved_usd >= 0),
  spent_usd REAL NOT NULL DEFAULT 0 CHECK (spent_usd >= 0),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  PRIMARY KEY (tenant, day)
);
-- Open reservations, linked to the job they pay for once it is claimed (its
-- completion or failure settles them in the same batch). A run that dies
-- before settling leaves its reservation here; the scheduled sweep releases
-- it after `expires_at` (epoch ms).
CREATE TABLE spend_reservations (
  id TEXT PRIMARY KEY,
  job_id INTEGER,
  tenant TEXT NOT NULL,
  day TEXT NOT NULL,
  amount_usd REAL NOT NULL CHECK (amount_usd >= 0),
  expires_at INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  FOREIGN KEY (tenant, day) REFERENCES tenant_daily_spend (tenant, day)
);
CREATE INDEX idx_spend_reservations_expiry ON spend_reservations (expires_at);
CREATE INDEX idx_spend_reservations_job ON spend_reservations (job_id);
