//! Time on the Workers runtime: `std::time` panics on wasm32, so the clock is
//! `Date.now()` and timeouts race a future against a `Delay`.

use futures_util::future::{select, Either};
use std::future::Future;
use std::time::Duration;

pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

/// `Some(output)` if `future` finishes within `ms`, else `None` (it is dropped).
pub async fn with_timeout<F: Future>(ms: u64, future: F) -> Option<F::Output> {
    let delay = worker::Delay::from(Duration::from_millis(ms));
    futures_util::pin_mut!(future);
    match select(future, delay).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(_) => None,
    }
}

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
pub struct WallClock;

impl Clock for WallClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
    async fn sleep(&self, ms: u64) {
        sleep(ms).await
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today() -> String {
    day_of(now_ms())
}

/// The UTC date (`YYYY-MM-DD`) of a Unix time in milliseconds.
pub fn day_of(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

pub fn iso_now() -> String {
    chrono::DateTime::from_timestamp_millis(now_ms() as i64)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
