//! The spend ledger's cases.

use super::{
    expect, failed, figures, held, reservation, same, Check, LedgerFixture, Outcome, DAY, OTHER_DAY,
};
use crate::jobs::spend::{JobBound, Refused, SpendLedger};

/// Every case of the spend ledger's contract, on `ledger`, with jobs made
/// by `fixture` in the same store; `run` names this run's tenants (unique
/// per run against a shared database).
pub async fn spend_ledger(
    ledger: &impl SpendLedger,
    fixture: &impl LedgerFixture,
    run: &str,
) -> Vec<Outcome> {
    cases!(ledger, fixture, run;
        a_reservation_within_the_cap_is_held,
        a_reservation_past_the_cap_is_refused_with_the_days_figures,
        the_cap_admits_a_reservation_that_fills_it_exactly,
        days_are_counted_apart,
        settling_turns_a_reservation_into_spend,
        settling_a_released_reservation_books_only_the_spend,
        the_sweep_releases_only_expired_reservations,
        a_job_bound_counts_what_the_job_spent_and_its_open_reservations,
        a_job_bound_ignores_expired_reservations,
        the_day_cap_is_named_when_both_would_refuse,
        settling_a_job_releases_all_its_reservations_and_books_once,
        settling_a_job_without_reservations_books_its_tenant_today,
    )
}

async fn a_reservation_within_the_cap_is_held(
    l: &impl SpendLedger,
    _: &impl LedgerFixture,
    tenant: &str,
) -> Check {
    let r = reservation(format!("{tenant}-1"), tenant, DAY, 0.3);
    held(l, &r, 1.0, 10_000).await?;
    figures(
        l.day_spend(tenant, DAY)
            .await
            .map_err(|e| failed("read", e))?,
        0.3,
        0.0,
        "after reserving",
    )
}

async fn a_reservation_past_the_cap_is_refused_with_the_days_figures(
    l: &impl SpendLedger,
    _: &impl LedgerFixture,
    tenant: &str,
) -> Check {
    let first = reservation(format!("{tenant}-1"), tenant, DAY, 0.6);
    let second = reservation(format!("{tenant}-2"), tenant, DAY, 0.6);
    held(l, &first, 1.0, 10_000).await?;
    match l.reserve_spend(&second, 1.0, 10_000).await {
        Ok(Err(day)) => figures(day, 0.6, 0.0, "the refusal's figures")?,
        other => return Err(failed("the second should be refused", other)),
    }
    figures(
        l.day_spend(tenant, DAY)
            .await
            .map_err(|e| failed("read", e))?,
        0.6,
        0.0,
        "after the refusal",
    )
}

async fn the_cap_admits_a_reservation_that_fills_it_exactly(
    l: &impl SpendLedger,
    _: &impl LedgerFixture,
    tenant: &str,
) -> Check {
    for (k, amount) in [0.1, 0.2, 0.7].into_iter().enumerate() {
        let r = reservation(format!("{tenant}-{k}"), tenant, DAY, amount);
        held(l, &r, 1.0, 10_000).await?;
    }
    Ok(())
}

async fn days_are_counted_apart(
    l: &impl SpendLedger,
    _: &impl LedgerFixture,
    tenant: &str,
) -> Check {
    let today = reservation(format!("{tenant}-1"), tenant, DAY, 0.9);
    let tomorrow = reservation(format!("{tenant}-2"), tenant, OTHER_DAY, 0.9);
    for r in [&today, &tomorrow] {
        held(l, r, 1.0, 10_000).await?;
    }
    figures(
        l.day_spend(tenant, OTHER_DAY)
            .await
            .map_err(|e| failed("read", e))?,
        0.9,
        0.0,
        "the other day",
    )
}

async fn settling_turns_a_reservation_into_spend(
    l: &impl SpendLedger,
    _: &impl LedgerFixture,
    tenant: &str,
) -> Check {
    let r = reservation(format!("{tenant}-1"), tenant, DAY, 0.5);
    held(l, &r, 1.0, 10_000).await?;
    l.settle_spend(&r, 0.2)
        .await
        .map_err(|e| failed("settle", e))?;
    figures(
        l.day_spend(tenant, DAY)
            .await
            .map_err(|e| failed("read", e))?,
        0.0,
        0.2,
        "after settling",
    )?;
    let next = reservation(format!("{tenant}-2"), tenant, DAY, 0.8);
    held(l, &next, 1.0, 10_000).await
}

async fn settling_a_released_reservation_books_only_the_spend(
    l: &impl SpendLedger,
    _: &impl LedgerFixture,
    tenant: &str,
) -> Check {
    let r = reservation(format!("{tenant}-1"), tenant, DAY, 0.5);
    held(l, &r, 1.0, 1_000).await?;
    l.release_expired(2_000)
        .await
        .map_err(|e| failed("sweep", e))?;
    l.settle_spend(&r, 0.1)
        .await
        .map_err(|e| failed("settle", e))?;
    figures(
        l.day_spend(tenant, DAY)
            .await
            .map_err(|e| failed("read", e))?,
        0.0,
        0.1,
        "settled after the sweep",
    )
}

async fn the_sweep_releases_only_expired_reservations(
    l: &impl SpendLedger,
    _: &impl LedgerFixture,
    tenant: &str,
) -> Check {
    let old = reservation(format!("{tenant}-1"), tenant, DAY, 0.2);
    let live = reservation(format!("{tenant}-2"), tenant, DAY, 0.3);
    held(l, &old, 1.0, 1_000).await?;
    held(l, &live, 1.0, 5_000_000_000_000).await?;
    // Other cases' expired reservations may go in the same sweep: at least ours.
    let released = l
        .release_expired(2_000)
        .await
        .map_err(|e| failed("sweep", e))?;
    expect(released >= 1, || format!("the sweep released {released}"))?;
    figures(
        l.day_spend(tenant, DAY)
            .await
            .map_err(|e| failed("read", e))?,
        0.3,
        0.0,
        "after the sweep",
    )
}

async fn a_job_bound_counts_what_the_job_spent_and_its_open_reservations(
    l: &impl SpendLedger,
    f: &impl LedgerFixture,
    tenant: &str,
) -> Check {
    let job_id = f
        .job_costing(tenant, 0.4)
        .await
        .map_err(|e| failed("fixture", e))?;
    let bound = JobBound {
        job_id,
        limit_usd: 1.0,
        now_ms: 1_000,
    };
    let first = reservation(format!("{tenant}-1"), tenant, DAY, 0.5);
    l.reserve(&first, 100.0, 10_000, Some(&bound))
        .await
        .map_err(|e| failed("reserve", e))?
        .map_err(|r| failed("0.4 spent + 0.5 within 1.0 was refused", r))?;
    let second = reservation(format!("{tenant}-2"), tenant, DAY, 0.2);
    match l.reserve(&second, 100.0, 10_000, Some(&bound)).await {
        Ok(Err(Refused::JobBudget {
            limit_usd,
            spent_usd,
            reserved_usd,
        })) => expect(
            same(limit_usd, 1.0) && same(spent_usd, 0.4) && same(reserved_usd, 0.5),
            || {
                format!("the refusal says limit {limit_usd}, spent {spent_usd}, reserved {reserved_usd}")
            },
        )?,
        other => {
            return Err(failed(
                "0.4 + 0.5 + 0.2 past 1.0 should be refused by the job",
                other,
            ))
        }
    }
    figures(
        l.day_spend(tenant, DAY)
            .await
            .map_err(|e| failed("read", e))?,
        0.5,
        0.0,
        "after the job's refusal",
    )
}

async fn a_job_bound_ignores_expired_reservations(
    l: &impl SpendLedger,
    f: &impl LedgerFixture,
    tenant: &str,
) -> Check {
    let job_id = f
        .job_costing(tenant, 0.0)
        .await
        .map_err(|e| failed("fixture", e))?;
    let early = JobBound {
        job_id,
        limit_usd: 1.0,
        now_ms: 1_000,
    };
    let first = reservation(format!("{tenant}-1"), tenant, DAY, 0.7);
    l.reserve(&first, 100.0, 2_000, Some(&early))
        .await
        .map_err(|e| failed("reserve", e))?
        .map_err(|r| failed("refused", r))?;
    let later = JobBound {
        now_ms: 3_000,
        ..early
    };
    let second = reservation(format!("{tenant}-2"), tenant, DAY, 0.7);
    l.reserve(&second, 100.0, 10_000, Some(&later))
        .await
        .map_err(|e| failed("reserve", e))?
        .map_err(|r| failed("an expired reservation of the job still counted", r))
}

async fn the_day_cap_is_named_when_both_would_refuse(
    l: &impl SpendLedger,
    f: &impl LedgerFixture,
    tenant: &str,
) -> Check {
    let job_id = f
        .job_costing(tenant, 0.9)
        .await
        .map_err(|e| failed("fixture", e))?;
    let bound = JobBound {
        job_id,
        limit_usd: 1.0,
        now_ms: 1_000,
    };
    let r = reservation(format!("{tenant}-1"), tenant, DAY, 0.5);
    match l.reserve(&r, 0.1, 10_000, Some(&bound)).await {
        Ok(Err(Refused::DayCap(day))) => figures(day, 0.0, 0.0, "the refusal's figures"),
        other => Err(failed("expected the day cap's refusal", other)),
    }
}

async fn settling_a_job_releases_all_its_reservations_and_books_once(
    l: &impl SpendLedger,
    f: &impl LedgerFixture,
    tenant: &str,
) -> Check {
    let job_id = f
        .job_costing(tenant, 0.0)
        .await
        .map_err(|e| failed("fixture", e))?;
    let bound = JobBound {
        job_id,
        limit_usd: 10.0,
        now_ms: 1_000,
    };
    for (k, amount) in [0.2, 0.3].into_iter().enumerate() {
        let r = reservation(format!("{tenant}-{k}"), tenant, DAY, amount);
        l.reserve(&r, 100.0, 10_000, Some(&bound))
            .await
            .map_err(|e| failed("reserve", e))?
            .map_err(|r| failed("refused", r))?;
    }
    l.settle_job(job_id, tenant, 0.25, OTHER_DAY)
        .await
        .map_err(|e| failed("settle", e))?;
    figures(
        l.day_spend(tenant, DAY)
            .await
            .map_err(|e| failed("read", e))?,
        0.0,
        0.25,
        "the reservations' day",
    )?;
    figures(
        l.day_spend(tenant, OTHER_DAY)
            .await
            .map_err(|e| failed("read", e))?,
        0.0,
        0.0,
        "today, untouched",
    )?;
    // Settled once: a second settle has nothing to release, and books again
    // only what it is given (an ending batch runs once, guarded).
    l.settle_job(job_id, tenant, 0.0, OTHER_DAY)
        .await
        .map_err(|e| failed("settle again", e))?;
    figures(
        l.day_spend(tenant, DAY)
            .await
            .map_err(|e| failed("read", e))?,
        0.0,
        0.25,
        "after a second settle",
    )
}

async fn settling_a_job_without_reservations_books_its_tenant_today(
    l: &impl SpendLedger,
    f: &impl LedgerFixture,
    tenant: &str,
) -> Check {
    let job_id = f
        .job_costing(tenant, 0.0)
        .await
        .map_err(|e| failed("fixture", e))?;
    l.settle_job(job_id, tenant, 0.1, OTHER_DAY)
        .await
        .map_err(|e| failed("settle", e))?;
    figures(
        l.day_spend(tenant, OTHER_DAY)
            .await
            .map_err(|e| failed("read", e))?,
        0.0,
        0.1,
        "today",
    )
}
