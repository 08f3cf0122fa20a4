//! `event_stream_leases`: a tenant's open events streams, bounded.

use super::{changes, t, u, Database};
use bitware_kit::error::AppResult;

impl Database {
    /// Take a lease for stream `id` of `tenant` until `expires_at_ms`, unless
    /// the tenant already holds `limit` unexpired ones (one statement, so
    /// concurrent opens never pass the limit). Expired leases of the tenant
    /// are dropped first.
    pub async fn take_stream_lease(
        &self,
        id: &str,
        tenant: &str,
        limit: u32,
        now_ms: u64,
        expires_at_ms: u64,
    ) -> AppResult<bool> {
        let statements = vec![
            self.stmt(
                "DELETE FROM event_stream_leases WHERE tenant = ?1 AND expires_at < ?2",
                &[t(tenant), u(now_ms)],
            )?,
            self.stmt(
                "INSERT INTO event_stream_leases (id, tenant, expires_at) SELECT ?1, ?2, ?3 \
                 WHERE (SELECT count(*) FROM event_stream_leases WHERE tenant = ?2 AND expires_at >= ?4) < ?5",
                &[
                    t(id),
                    t(tenant),
                    u(expires_at_ms),
                    u(now_ms),
                    u(u64::from(limit)),
                ],
            )?,
        ];
        let results = self.batch("opening an events stream", statements).await?;
        Ok(changes(results.get(1)) == 1)
    }

    pub async fn renew_stream_lease(&self, id: &str, expires_at_ms: u64) -> AppResult<()> {
        let stmt = self.stmt(
            "UPDATE event_stream_leases SET expires_at = ?2 WHERE id = ?1",
            &[t(id), u(expires_at_ms)],
        )?;
        self.run("renewing an events stream", stmt)
            .await
            .map(|_| ())
    }

    pub async fn release_stream_lease(&self, id: &str) -> AppResult<()> {
        let stmt = self.stmt("DELETE FROM event_stream_leases WHERE id = ?1", &[t(id)])?;
        self.run("closing an events stream", stmt).await.map(|_| ())
    }
}
