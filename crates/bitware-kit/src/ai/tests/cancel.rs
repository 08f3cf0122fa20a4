//! A job's cancel: no attempt starts once it is recorded, and a call
//! streaming when it is seen is dropped and recorded with what it used.

use super::*;

/// A cancel seen by the job's watcher (`requested`) and/or in its store (`confirm`).
struct Cancelled {
    seen: bool,
    recorded: bool,
}

impl Stop for Cancelled {
    fn requested(&self) -> bool {
        self.seen
    }
    fn confirm(&self) -> Confirm<'_> {
        Box::pin(std::future::ready(self.recorded))
    }
}

async fn run_stopped(script: &Script, stop: &Cancelled) -> Run {
    let pricing = Pricing::default();
    let providers = providers();
    let chain = Chain {
        runtime: script,
        providers: &providers,
        settings: Settings::default(),
        pricing: &pricing,
        stop: Some(stop),
    };
    let mut attempts = Vec::new();
    let mut budget = Budget::default();
    let result = chain
        .complete(
            &request(),
            &needs_title,
            &mut budget,
            120_000,
            &mut attempts,
        )
        .await;
    Run {
        result,
        attempts,
        budget,
    }
}

#[tokio::test]
async fn a_recorded_cancel_starts_no_call_and_records_no_attempt() {
    let script = Script::new(vec![]);
    let stop = Cancelled {
        seen: false,
        recorded: true,
    };
    let r = run_stopped(&script, &stop).await;
    assert!(matches!(r.result, Err(ChainError::Cancelled(_))));
    assert!(script.calls.borrow().is_empty());
    assert!(r.attempts.is_empty());
}

#[tokio::test]
async fn a_cancel_seen_mid_stream_drops_the_call_and_no_other_provider_is_tried() {
    // Two providers: a dropped call is not a provider failure to fall back from.
    let script = Script::new(vec![ok_openai(r#"{"title": "x"}"#, "stop")]);
    let stop = Cancelled {
        seen: true,
        recorded: false,
    };
    let r = run_stopped(&script, &stop).await;
    assert!(matches!(r.result, Err(ChainError::Cancelled(_))));
    assert_eq!(script.calls.borrow().len(), 1);
    assert_eq!(statuses(&r.attempts), vec![("openai", "cancelled")]);
    let a = &r.attempts[0];
    // Nothing was read before the drop: the prompt is counted, no output.
    assert_eq!(a.usage.output, 0);
    assert!(a.usage.input > 0);
    assert_eq!(r.budget.spent_usd, a.cost_usd.unwrap_or(0.0));
    assert!(a.error.as_deref().unwrap_or("").starts_with("cancelled"));
}

#[tokio::test]
async fn without_a_cancel_the_chain_answers_as_before() {
    let script = Script::new(vec![ok_openai(r#"{"title": "x"}"#, "stop")]);
    let stop = Cancelled {
        seen: false,
        recorded: false,
    };
    let r = run_stopped(&script, &stop).await;
    assert!(r.result.is_ok());
    assert_eq!(statuses(&r.attempts), vec![("openai", "success")]);
}

#[tokio::test]
async fn a_call_the_job_stopped_while_it_waited_to_be_sent_is_not_sent_and_costs_nothing() {
    // The Workers runtime asks before sending once it has a header slot:
    // a cancel seen while the call waited for one stops it there.
    let script = Script::new(vec![ok_openai(r#"{"title": "x"}"#, "stop")]);
    script.asks_before_sending.set(true);
    let stop = Cancelled {
        seen: true,
        recorded: false,
    };
    let r = run_stopped(&script, &stop).await;
    assert!(matches!(r.result, Err(ChainError::Cancelled(_))));
    assert!(script.calls.borrow().is_empty());
    assert_eq!(statuses(&r.attempts), vec![("openai", "cancelled")]);
    let a = &r.attempts[0];
    assert_eq!((a.usage.input, a.usage.output), (0, 0));
    assert_eq!(a.http_status, None);
    assert!(
        a.error.as_deref().unwrap_or("").contains("not sent"),
        "{a:?}"
    );
    assert_eq!(r.budget.spent_usd, 0.0);
    // Not stopped: asked, it is sent as any other.
    let script = Script::new(vec![ok_openai(r#"{"title": "x"}"#, "stop")]);
    script.asks_before_sending.set(true);
    let stop = Cancelled {
        seen: false,
        recorded: false,
    };
    let r = run_stopped(&script, &stop).await;
    assert!(r.result.is_ok(), "{:?}", r.result.err());
    assert_eq!(script.calls.borrow().len(), 1);
}
