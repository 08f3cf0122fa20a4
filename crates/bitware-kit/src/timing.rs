//! Time on the Workers runtime: `std::time` panics on wasm32, so the clock is
//! `Date.now()` and timeouts race a future against a `Delay` (`worker`
//! feature). The `Clock` trait and date arithmetic are pure.

#[cfg(feature = "worker")]
use futures_util::future::{select, Either};
#[cfg(feature = "worker")]
use std::future::Future;
#[cfg(feature = "worker")]
use std::time::Duration;

#[cfg(feature = "worker")]
pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
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
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

#[cfg(feature = "worker")]
pub fn iso_now() -> String {
    chrono::DateTime::from_timestamp_millis(now_ms() as i64)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
