//! What one tenant may spend and how fast: KAM tiers, the per-job ceiling,
//! daily spend caps by tier and the rate-limit bindings by tier.
//!
//! Rate limits are Workers Rate Limiting bindings (`[[ratelimits]]` in
//! wrangler.toml, one per tier, keyed by the tenant); their numbers live
//! there. Spend caps and the per-job ceiling are vars, read here.

use crate::auth::Principal;
#[cfg(feature = "worker")]
use crate::error::{AppError, AppResult, Kind};
use serde::{Deserialize, Serialize};
#[cfg(feature = "worker")]
use serde_json::json;
use std::collections::BTreeMap;

/// A client's KAM tier. Sessions and workers carry none: they get
/// `DEFAULT_TIER` (standard unless configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Basic,
    Standard,
    Premium,
    Enterprise,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Basic, Tier::Standard, Tier::Premium, Tier::Enterprise];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Basic => "basic",
            Tier::Standard => "standard",
            Tier::Premium => "premium",
            Tier::Enterprise => "enterprise",
        }
    }

    pub fn parse(name: &str) -> Option<Tier> {
        let name = name.trim().to_ascii_lowercase();
        Tier::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The rate-limit binding of this tier (wrangler.toml `[[ratelimits]]`).
    pub fn rate_limit_binding(self) -> &'static str {
        match self {
            Tier::Basic => "RATE_LIMIT_BASIC",
            Tier::Standard => "RATE_LIMIT_STANDARD",
            Tier::Premium => "RATE_LIMIT_PREMIUM",
            Tier::Enterprise => "RATE_LIMIT_ENTERPRISE",
        }
    }

    /// Paid requests a tenant may start per minute: the numbers configured in
    /// wrangler.toml, repeated here for `/help` and the 429's details.
    pub fn requests_per_minute(self) -> u32 {
        match self {
            Tier::Basic => 60,
            Tier::Standard => 300,
            Tier::Premium => 1_200,
            Tier::Enterprise => 6_000,
        }
    }

    /// USD a tenant of this tier may spend per UTC day, unless configured.
    pub fn default_daily_cap_usd(self) -> f64 {
        match self {
            Tier::Basic => 5.0,
            Tier::Standard => 25.0,
            Tier::Premium => 100.0,
            Tier::Enterprise => 1_000.0,
        }
    }
}

/// The seconds a rate-limit window lasts (the binding allows 10 or 60).
pub const RATE_LIMIT_PERIOD_SECONDS: u32 = 60;

/// Default ceiling on one job's spend when neither template nor request
/// sets a lower one (`MAX_JOB_COST_USD`).
pub const DEFAULT_MAX_JOB_COST_USD: f64 = 1.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub default_tier: Tier,
    pub max_job_cost_usd: f64,
    pub daily_cap_usd: BTreeMap<Tier, f64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_tier: Tier::Standard,
            max_job_cost_usd: DEFAULT_MAX_JOB_COST_USD,
            daily_cap_usd: Tier::ALL
                .into_iter()
                .map(|t| (t, t.default_daily_cap_usd()))
                .collect(),
        }
    }
}

impl Limits {
    /// From the vars `DEFAULT_TIER`, `MAX_JOB_COST_USD` and
    /// `DAILY_SPEND_CAP_USD` (JSON such as `{"basic": 2, "premium": 250}`;
    /// tiers it leaves out keep their default). A bad value is an error the
    /// caller reports in /health, and the defaults stand.
    pub fn from_vars(
        default_tier: Option<&str>,
        max_job_cost: Option<&str>,
        daily_caps: Option<&str>,
    ) -> (Limits, Vec<String>) {
        let mut limits = Limits::default();
        let mut problems = Vec::new();
        if let Some(t) = default_tier {
            match Tier::parse(t) {
                Some(tier) => limits.default_tier = tier,
                None => problems.push(format!(
                    "DEFAULT_TIER `{t}` is not basic, standard, premium or enterprise"
                )),
            }
        }
        if let Some(m) = max_job_cost {
            match m.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => limits.max_job_cost_usd = v,
                _ => problems.push(format!("MAX_JOB_COST_USD `{m}` is not a positive number")),
            }
        }
        if let Some(json) = daily_caps {
            match serde_json::from_str::<BTreeMap<String, f64>>(json) {
                Ok(caps) => {
                    for (name, cap) in caps {
                        match Tier::parse(&name) {
                            Some(tier) if cap.is_finite() && cap >= 0.0 => {
                                limits.daily_cap_usd.insert(tier, cap);
                            }
                            Some(_) => problems.push(format!(
                                "DAILY_SPEND_CAP_USD for {name} must be a number ≥ 0"
                            )),
                            None => problems.push(format!(
                                "DAILY_SPEND_CAP_USD names an unknown tier `{name}`"
                            )),
                        }
                    }
                }
                Err(e) => problems.push(format!("DAILY_SPEND_CAP_USD is not valid JSON: {e}")),
            }
        }
        (limits, problems)
    }

    /// The tier a caller is limited as: KAM's tier for API keys (an unknown
    /// one counts as basic), the default tier for sessions and workers.
    pub fn tier_of(&self, kam_tier: Option<&str>) -> Tier {
        match kam_tier {
            Some(t) => Tier::parse(t).unwrap_or(Tier::Basic),
            None => self.default_tier,
        }
    }

    pub fn daily_cap(&self, tier: Tier) -> f64 {
        self.daily_cap_usd
            .get(&tier)
            .copied()
            .unwrap_or_else(|| tier.default_daily_cap_usd())
    }

    /// The budget of one job: the lowest of every ceiling that applies. A
    /// request can only lower it.
    pub fn job_budget(&self, template: Option<f64>, request: Option<f64>) -> f64 {
        [template, request]
            .into_iter()
            .flatten()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .fold(self.max_job_cost_usd, f64::min)
    }
}

/// Seconds until the next UTC midnight, when daily caps reset.
pub fn seconds_until_utc_midnight(now_ms: u64) -> u64 {
    let day_ms = 86_400_000;
    (day_ms - now_ms % day_ms).div_ceil(1000)
}

/// The tenant a paid request is charged to, and its tier.
#[derive(Debug, Clone, PartialEq)]
pub struct Payer {
    pub tenant: String,
    pub tier: Tier,
}

/// Who pays for worker credentials acting for nobody: every worker holds the
/// one shared secret, so they share one allowance; a fresh `X-Worker-ID` is
/// not a fresh tenant with fresh limits. (Their jobs are still recorded, and
/// read, under the worker's own id.)
pub const SHARED_WORKER_PAYER: &str = "worker:*";

impl Payer {
    pub fn of(principal: &Principal, limits: &Limits) -> Payer {
        match principal {
            Principal::Worker {
                acting_for: None, ..
            } => Payer {
                tenant: SHARED_WORKER_PAYER.to_string(),
                tier: limits.default_tier,
            },
            _ => Payer {
                tenant: principal.client_id(),
                tier: limits.tier_of(principal.kam_tier()),
            },
        }
    }

    /// Whether the tier already is the payer's own: the caller is that
    /// client's own API key (KAM just said which tier), or the shared
    /// worker allowance. Any other payer (a client a worker, a session or
    /// an administrator acts for) is held to the tier KAM last gave for the
    /// client's own key, when it is remembered (`held_to`).
    pub fn tier_is_known(&self, principal: &Principal) -> bool {
        self.tenant == SHARED_WORKER_PAYER
            || matches!(principal, Principal::Client { .. }) && self.tenant == principal.client_id()
    }

    /// This payer at the tier remembered for its tenant, if any (else as it is:
    /// the default tier).
    #[must_use]
    pub fn held_to(self, remembered: Option<Tier>) -> Payer {
        Payer {
            tier: remembered.unwrap_or(self.tier),
            ..self
        }
    }

    /// Work on a job of `tenant` started by `principal`: the job's tenant
    /// pays, at the caller's tier when the caller is that tenant and at the
    /// default tier when an administrator or worker acts on it.
    pub fn for_tenant(principal: &Principal, tenant: &str, limits: &Limits) -> Payer {
        let caller = Payer::of(principal, limits);
        // The caller's own job: as it pays for any (the shared worker
        // allowance for a worker's).
        if caller.tenant == tenant || principal.client_id() == tenant {
            caller
        } else {
            Payer {
                tenant: tenant.to_string(),
                tier: limits.default_tier,
            }
        }
    }
}

/// The payer of a paid request by `principal` (on `tenant`'s job, when it
/// works on one): held to the tier remembered for a client that is not the
/// caller's own key (`kam::remembered_tier`), so acting through a worker or
/// a session never launders a client's tier. While no tier is remembered
/// (the client has not called with its own key within the memory's 30 days)
/// it pays at `DEFAULT_TIER`.
#[cfg(feature = "worker")]
pub async fn payer(
    kam: &crate::kam::Kam<'_>,
    principal: &Principal,
    tenant: Option<&str>,
    limits: &Limits,
) -> Payer {
    let payer = match tenant {
        Some(tenant) => Payer::for_tenant(principal, tenant, limits),
        None => Payer::of(principal, limits),
    };
    if payer.tier_is_known(principal) {
        return payer;
    }
    let remembered = crate::kam::remembered_tier(kam, &payer.tenant).await;
    payer.held_to(remembered)
}

/// One paid request more for this tenant, or 429 with `Retry-After`. A
/// missing binding is logged and lets the request through (the spend cap
/// still bounds the money); `/health` reports it.
#[cfg(feature = "worker")]
pub async fn check_rate_limit(env: &worker::Env, payer: &Payer) -> AppResult<()> {
    let binding = payer.tier.rate_limit_binding();
    let limiter = match env.rate_limiter(binding) {
        Ok(l) => l,
        Err(_) => {
            crate::error::worker_log(&format!(
                "rate limiting is off: the {binding} binding is missing"
            ));
            return Ok(());
        }
    };
    match limiter.limit(payer.tenant.clone()).await {
        Ok(outcome) if outcome.success => Ok(()),
        Ok(_) => Err(AppError::new(
            Kind::TooManyRequests,
            "rate_limited",
            format!(
                "too many paid requests: the {} tier allows {} per {RATE_LIMIT_PERIOD_SECONDS} s",
                payer.tier.as_str(),
                payer.tier.requests_per_minute()
            ),
        )
        .with_details(json!({
            "tier": payer.tier,
            "limit": payer.tier.requests_per_minute(),
            "periodSeconds": RATE_LIMIT_PERIOD_SECONDS,
            "retryAfterSeconds": RATE_LIMIT_PERIOD_SECONDS,
        }))),
        Err(e) => {
            crate::error::worker_log(&format!(
                "the rate limiter failed, request let through: {e}"
            ));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_can_only_lower_the_budget() {
        let l = Limits::default();
        assert_eq!(l.job_budget(Some(0.00001), Some(5.0)), 0.00001);
        assert_eq!(l.job_budget(Some(0.25), Some(0.05)), 0.05);
        assert_eq!(l.job_budget(None, Some(50.0)), DEFAULT_MAX_JOB_COST_USD);
        assert_eq!(l.job_budget(None, None), DEFAULT_MAX_JOB_COST_USD);
        assert_eq!(l.job_budget(Some(f64::NAN), None), DEFAULT_MAX_JOB_COST_USD);
        assert_eq!(l.job_budget(Some(-1.0), None), DEFAULT_MAX_JOB_COST_USD);
        assert_eq!(
            l.job_budget(Some(f64::NEG_INFINITY), Some(0.5)),
            0.5,
            "a broken value never lowers the budget below what is set"
        );
        assert_eq!(l.job_budget(Some(0.0), None), 0.0, "0 is a real budget");
    }

    #[test]
    fn tiers_come_from_kam_or_the_default() {
        let (l, problems) =
            Limits::from_vars(Some("premium"), Some("2.5"), Some(r#"{"basic": 1}"#));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(l.tier_of(None), Tier::Premium);
        assert_eq!(l.tier_of(Some("enterprise")), Tier::Enterprise);
        assert_eq!(
            l.tier_of(Some("gold")),
            Tier::Basic,
            "unknown tiers get the least"
        );
        assert_eq!(l.max_job_cost_usd, 2.5);
        assert_eq!(l.daily_cap(Tier::Basic), 1.0);
        assert_eq!(l.daily_cap(Tier::Standard), 25.0);
        assert_eq!(Limits::default().tier_of(None), Tier::Standard);
    }

    #[test]
    fn bad_limit_vars_are_reported_and_the_defaults_stand() {
        let (l, problems) =
            Limits::from_vars(Some("gold"), Some("-1"), Some(r#"{"basic": -2, "vip": 3}"#));
        assert_eq!(l, Limits::default());
        assert_eq!(problems.len(), 4, "{problems:?}");
        let (_, problems) = Limits::from_vars(None, None, Some("not json"));
        assert_eq!(problems.len(), 1);
        let (l, problems) = Limits::from_vars(None, Some("0"), None);
        assert_eq!(
            problems.len(),
            1,
            "a job budget of 0 would refuse every job"
        );
        assert_eq!(l.max_job_cost_usd, DEFAULT_MAX_JOB_COST_USD);
    }

    #[test]
    fn caps_reset_at_utc_midnight() {
        assert_eq!(seconds_until_utc_midnight(0), 86_400);
        assert_eq!(seconds_until_utc_midnight(86_400_000 - 1_500), 2);
        assert_eq!(seconds_until_utc_midnight(86_400_000 + 60_000), 86_340);
    }

    #[test]
    fn payers_are_tenants_with_kam_or_default_tiers() {
        let limits = Limits::default();
        let client = Principal::Client {
            client_id: "acme".into(),
            tier: "premium".into(),
        };
        assert_eq!(
            Payer::of(&client, &limits),
            Payer {
                tenant: "acme".into(),
                tier: Tier::Premium
            }
        );
        let worker = Principal::Worker {
            worker_id: "rm".into(),
            acting_for: Some("acme".into()),
        };
        let acting = Payer::of(&worker, &limits);
        assert_eq!(
            acting,
            Payer {
                tenant: "acme".into(),
                tier: Tier::Standard
            },
            "a worker acting for a client counts against that client"
        );
        assert!(!acting.tier_is_known(&worker));
        assert_eq!(
            acting.clone().held_to(Some(Tier::Basic)).tier,
            Tier::Basic,
            "at the client's own tier once it is known"
        );
        assert_eq!(acting.held_to(None).tier, Tier::Standard);
        assert!(Payer::of(&client, &limits).tier_is_known(&client));
    }

    #[test]
    fn workers_acting_for_nobody_share_one_allowance_whatever_id_they_send() {
        let limits = Limits::default();
        let payers: Vec<Payer> = ["rm", "rm-2", "anything"]
            .into_iter()
            .map(|id| {
                Payer::of(
                    &Principal::Worker {
                        worker_id: id.into(),
                        acting_for: None,
                    },
                    &limits,
                )
            })
            .collect();
        for p in &payers {
            assert_eq!(p.tenant, SHARED_WORKER_PAYER);
            assert_eq!(p.tier, Tier::Standard);
        }
        let worker = Principal::Worker {
            worker_id: "rm".into(),
            acting_for: None,
        };
        assert!(payers[0].tier_is_known(&worker));
    }

    #[test]
    fn work_on_someone_else_s_job_is_paid_by_its_tenant_at_the_default_tier() {
        let limits = Limits::default();
        let owner = Principal::Client {
            client_id: "acme".into(),
            tier: "premium".into(),
        };
        assert_eq!(
            Payer::for_tenant(&owner, "acme", &limits),
            Payer::of(&owner, &limits),
            "the owner pays at its own tier"
        );
        let admin = Principal::Session {
            user_id: "u-admin".into(),
            email: String::new(),
            role: "admin".into(),
            client_id: None,
        };
        assert_eq!(
            Payer::for_tenant(&admin, "acme", &limits),
            Payer {
                tenant: "acme".into(),
                tier: Tier::Standard
            }
        );
    }
}
