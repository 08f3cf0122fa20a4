//! A bounded load generator: C concurrent loops send requests until a time or
//! count limit, then print one JSON summary (status counts, requests/s,
//! latency percentiles, and the request ids that were acknowledged).
//!
//! loadgen --url http://127.0.0.1:PORT/api/execute [--method POST] [--body JSON]
//!         [--header 'Name: value']... [--concurrency 8] [--seconds 10]
//!         [--max-requests 1000] [--request-ids] [--duplicate-rate 0.1]
//!
//! With --request-ids every request carries a fresh X-Request-ID, except that
//! a --duplicate-rate share repeats an id the same connection sent earlier.
//! `{n}` in the body is the request number; `{c}` in a header value is the
//! connection number (e.g. `X-Client-ID: soak-{c}` spreads the load over
//! tenants, so per-tenant rate limits measure nothing but themselves).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Args {
    url: String,
    method: String,
    body: Option<String>,
    headers: Vec<(String, String)>,
    concurrency: usize,
    seconds: f64,
    max_requests: u64,
    request_ids: bool,
    duplicate_rate: f64,
}

fn parse() -> Args {
    let mut a = Args {
        url: String::new(),
        method: "GET".into(),
        body: None,
        headers: vec![],
        concurrency: 8,
        seconds: 10.0,
        max_requests: u64::MAX,
        request_ids: false,
        duplicate_rate: 0.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value(),
            "--method" => a.method = value(),
            "--body" => a.body = Some(value()),
            "--header" => {
                let h = value();
                let (k, v) = h.split_once(':').expect("--header 'Name: value'");
                a.headers.push((k.trim().into(), v.trim().into()));
            }
            "--concurrency" => a.concurrency = value().parse().expect("number"),
            "--seconds" => a.seconds = value().parse().expect("number"),
            "--max-requests" => a.max_requests = value().parse().expect("number"),
            "--request-ids" => a.request_ids = true,
            "--duplicate-rate" => a.duplicate_rate = value().parse().expect("number"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        a.url.starts_with("http://127.0.0.1:") || a.url.starts_with("http://localhost:"),
        "loopback targets only"
    );
    a
}

#[derive(Default)]
struct Tally {
    latencies_ms: Vec<f64>,
    statuses: BTreeMap<String, u64>,
    acknowledged: Vec<String>,
    duplicates_sent: u64,
    sent_ids: Vec<String>,
}

#[tokio::main]
async fn main() {
    let args = Arc::new(parse());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .expect("client");
    let tally = Arc::new(Mutex::new(Tally::default()));
    let sent = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let run_tag = format!(
        "{:x}",
        started.elapsed().as_nanos() ^ std::process::id() as u128 ^ 0x5eed
    );
    let mut workers = Vec::new();
    for worker in 0..args.concurrency {
        let (args, client, tally, sent, run_tag) = (
            args.clone(),
            client.clone(),
            tally.clone(),
            sent.clone(),
            run_tag.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (worker as u64 + 1);
            let mut next_random = move || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 11) as f64 / (1u64 << 53) as f64
            };
            let mut own_ids: Vec<String> = Vec::new();
            while Instant::now() < deadline {
                let n = sent.fetch_add(1, Ordering::Relaxed);
                if n >= args.max_requests {
                    break;
                }
                let mut rb = client.request(args.method.parse().expect("method"), &args.url);
                for (k, v) in &args.headers {
                    rb = rb.header(k, v.replace("{c}", &worker.to_string()));
                }
                // A repeated id repeats its request exactly (the worker binds
                // an idempotency key to its request: another body is a 422).
                let mut body_n = n;
                let mut request_id = None;
                if args.request_ids {
                    // Repeats come from this connection's own ids: same headers,
                    // so the same tenant, as a real retry would be.
                    let earlier = (!own_ids.is_empty() && next_random() < args.duplicate_rate)
                        .then(|| {
                            own_ids[(next_random() * own_ids.len() as f64) as usize % own_ids.len()]
                                .clone()
                        });
                    let id = match earlier {
                        Some(id) => {
                            tally.lock().unwrap().duplicates_sent += 1;
                            body_n = id
                                .rsplit('-')
                                .next()
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(n);
                            id
                        }
                        None => {
                            let id = format!("load-{run_tag}-{n}");
                            tally.lock().unwrap().sent_ids.push(id.clone());
                            own_ids.push(id.clone());
                            id
                        }
                    };
                    rb = rb.header("X-Request-ID", &id);
                    request_id = Some(id);
                }
                if let Some(body) = &args.body {
                    rb = rb
                        .header("Content-Type", "application/json")
                        .body(body.replace("{n}", &body_n.to_string()));
                }
                let t0 = Instant::now();
                let outcome = rb.send().await;
                let (status, ok) = match outcome {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        let _ = r.bytes().await;
                        (s.to_string(), (200..300).contains(&s))
                    }
                    Err(e) => (
                        if e.is_timeout() {
                            "timeout".into()
                        } else {
                            "error".into()
                        },
                        false,
                    ),
                };
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                let mut t = tally.lock().unwrap();
                t.latencies_ms.push(ms);
                *t.statuses.entry(status).or_default() += 1;
                if let (true, Some(id)) = (ok, request_id) {
                    t.acknowledged.push(id);
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut t = tally.lock().unwrap();
    t.latencies_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| -> Value {
        if t.latencies_ms.is_empty() {
            return Value::Null;
        }
        let rank = ((p / 100.0) * t.latencies_ms.len() as f64).ceil().max(1.0) as usize;
        json!((t.latencies_ms[rank.min(t.latencies_ms.len()) - 1] * 100.0).round() / 100.0)
    };
    let n = t.latencies_ms.len();
    let mut acknowledged = t.acknowledged.clone();
    acknowledged.sort();
    acknowledged.dedup();
    let summary = json!({
        "requests": n,
        "seconds": (elapsed * 100.0).round() / 100.0,
        "rps": ((n as f64 / elapsed) * 10.0).round() / 10.0,
        "concurrency": args.concurrency,
        "statuses": t.statuses,
        "latencyMs": {"p50": pct(50.0), "p90": pct(90.0), "p99": pct(99.0), "max": pct(100.0)},
        "duplicatesSent": t.duplicates_sent,
        "distinctIdsSent": t.sent_ids.len(),
        "acknowledgedIds": acknowledged,
    });
    println!("{summary}");
}
