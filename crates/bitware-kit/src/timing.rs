//! Time on the Workers runtime: `std::time` panics on wasm32, so the clock is
//! `Date.now()` and timeouts race a future against a `Delay` (`worker`
//! feature). The `Clock` trait and date arithmetic are pure.

#[cfg(feature = "worker")]
use futures_util::future::{select, Either};
#[cfg(feature = "worker")]
use std::future::Future;
#[cfg(feature = "worker")]
use std::time::Duration;

/// The platform clock: the one place outside the floor that reads it
/// (clippy.toml bans it elsewhere).
#[cfg(feature = "worker")]
#[allow(
    clippy::disallowed_methods,
    reason = "the timing module owns the clock"
)]
pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

/// A uniform draw in `[0, 1)` from the platform (`Math.random`; retry jitter),
/// read here alone as the clock is.
#[cfg(feature = "worker")]
#[allow(
    clippy::disallowed_methods,
    reason = "the timing module owns randomness"
)]
pub fn random() -> f64 {
    js_sys::Math::random()
}

/// `Some(output)` if `future` finishes within `ms`, else `None` (it is dropped).
#[cfg(feature = "worker")]
pub async fn with_timeout<F: Future>(ms: u64, future: F) -> Option<F::Output> {
    let delay = worker::Delay::from(Duration::from_millis(ms));
    futures_util::pin_mut!(future);
    match select(future, delay).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(_) => None,
    }
}

#[cfg(feature = "worker")]
pub async fn sleep(ms: u64) {
    worker::Delay::from(Duration::from_millis(ms)).await;
}

/// Time as code that waits sees it: the platform's, or a test's virtual one.
#[allow(async_fn_in_trait)]
pub trait Clock {
    fn now_ms(&self) -> u64;
    async fn sleep(&self, ms: u64);
}

/// The platform's clock.
#[cfg(feature = "worker")]
pub struct WallClock;

#[cfg(feature = "worker")]
impl Clock for WallClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
    async fn sleep(&self, ms: u64) {
        sleep(ms).await
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`.
#[cfg(feature = "worker")]
pub fn today() -> String {
    day_of(now_ms())
}

/// The UTC date (`YYYY-MM-DD`) of a Unix time in milliseconds.
pub fn day_of(ms: u64) -> String {
    let (y, m, d) = civil_from_days((ms / DAY_MS) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(feature = "worker")]
pub fn iso_now() -> String {
    iso_of(now_ms() as i64)
}

const DAY_MS: u64 = 86_400_000;

/// RFC 3339 in UTC with milliseconds (`2026-11-25T10:00:00.123Z`), as D1's
/// `strftime('%Y-%m-%dT%H:%M:%fZ')` writes it. Calendar arithmetic by hand:
/// a date library's formatting and parsing machinery costs more wasm than
/// these few lines.
pub fn iso_of(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS as i64);
    let in_day = ms.rem_euclid(DAY_MS as i64);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// `YYYY-MM-DD` of the day after `day` (`None` when `day` is not a date).
pub fn next_day(day: &str) -> Option<String> {
    let mut parts = day.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let days = days_from_civil(y, m, d);
    // A day that does not exist (2026-02-30) does not come back as itself.
    if civil_from_days(days) != (y, m, d) {
        return None;
    }
    let (y, m, d) = civil_from_days(days + 1);
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

/// `(year, month, day)` of a count of days since 1970-01-01 (proleptic
/// Gregorian; H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a date (the inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(iso_of(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_of(1_796_216_555_658), "2026-12-02T13:02:35.658Z");
        assert_eq!(iso_of(951_782_400_500), "2000-02-29T00:00:00.500Z");
        assert_eq!(iso_of(-1_000), "1969-12-31T23:59:59.000Z");
    }

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_796_216_555_658), "2026-12-02");
        assert_eq!(day_of(951_782_400_000 - 1), "2000-02-28");
    }

    #[test]
    fn the_next_day_crosses_months_years_and_leap_days() {
        assert_eq!(next_day("2026-11-25").as_deref(), Some("2026-11-26"));
        assert_eq!(next_day("2026-11-30").as_deref(), Some("2026-12-01"));
        assert_eq!(next_day("2026-12-31").as_deref(), Some("2027-01-01"));
        assert_eq!(next_day("2024-02-28").as_deref(), Some("2024-02-29"));
        assert_eq!(next_day("2100-02-28").as_deref(), Some("2100-03-01"));
        assert_eq!(next_day("2000-02-29").as_deref(), Some("2000-03-01"));
        for bad in ["2026-02-30", "2026-13-01", "2026-1-05", "today", ""] {
            assert_eq!(next_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        for days in -146_097..146_097 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
