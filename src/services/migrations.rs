//! Which D1 migrations this build expects, and whether the database has them
//! (`/health`). `wrangler d1 migrations apply` records every applied file in
//! its `d1_migrations` table; a database without that table, or missing a
//! file listed here, is behind this code and every route that reads it fails.
//!
//! Adding a migration: add its file name to `EXPECTED` (the unit test below
//! reads `migrations/` and fails until the list matches the directory).

use crate::services::database::Database;

/// Every file of `migrations/`, in order.
pub const EXPECTED: &[&str] = &[
    "0001_initial_schema.sql",
    "0002_seed_templates.sql",
    "0003_tenant_spend.sql",
    "0004_async_jobs.sql",
    "0005_three_act_novel_has_three_acts.sql",
    "0006_fanout_branches.sql",
    "0007_ops_signals.sql",
    "0008_event_stream_leases.sql",
    "0009_stopped_runs.sql",
    "0010_job_cancel.sql",
    "0011_partial_branches.sql",
];

/// The expected migrations missing from `applied` (in order).
pub fn missing<'a>(applied: &[String]) -> Vec<&'a str> {
    EXPECTED
        .iter()
        .copied()
        .filter(|name| !applied.iter().any(|a| a == name))
        .collect()
}

/// `Ok(())` when every expected migration is applied, else what is missing.
pub async fn check(db: &Database) -> Result<(), String> {
    let applied = db.applied_migrations().await.map_err(|_| {
        "no migrations applied (d1_migrations is missing): run `wrangler d1 migrations apply DB`"
            .to_string()
    })?;
    let missing = missing(&applied);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "migrations behind: {} not applied (run `wrangler d1 migrations apply DB`)",
            missing.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_list_is_the_migrations_directory() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(
            files, EXPECTED,
            "src/services/migrations.rs EXPECTED must list every file of migrations/"
        );
    }

    #[test]
    fn missing_names_what_is_not_applied() {
        assert_eq!(missing(&[]).len(), EXPECTED.len());
        let applied: Vec<String> = EXPECTED.iter().map(|s| s.to_string()).collect();
        assert!(missing(&applied).is_empty());
        assert_eq!(missing(&applied[..1]), &EXPECTED[1..]);
    }
}
