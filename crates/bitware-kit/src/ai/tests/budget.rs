//! The job budget: calls refused, clamped or moved to a cheaper provider
//! before they are made, and the worst case of every allowed call.

use super::*;

#[tokio::test]
async fn budget_refuses_attempts_before_they_are_made() {
    let script = Script::new(vec![]);
    let r = run(
        &script,
        &providers(),
        Budget {
            limit_usd: Some(0.000001),
            spent_usd: 0.0,
        },
        120_000,
    )
    .await;
    assert!(matches!(r.result, Err(ChainError::BudgetExceeded(_))));
    assert!(script.calls.borrow().is_empty());
    assert_eq!(
        statuses(&r.attempts),
        vec![
            ("openai", "budget_refused"),
            ("anthropic", "budget_refused")
        ]
    );
}

#[tokio::test]
async fn a_cheaper_provider_is_used_when_the_first_is_over_budget() {
    let mut list = providers();
    list.swap(0, 1); // anthropic (dearer) first
    let script = Script::new(vec![ok_openai(r#"{"title": "x"}"#, "stop")]);
    let r = run(
        &script,
        &list,
        Budget {
            limit_usd: Some(0.002),
            spent_usd: 0.0,
        },
        120_000,
    )
    .await;
    assert_eq!(r.result.unwrap().provider, ProviderKind::Openai);
    assert_eq!(r.attempts[0].status, AttemptStatus::BudgetRefused);
}

#[tokio::test]
async fn unpriced_models_are_refused_while_a_budget_applies_and_cost_null_without_one() {
    let mut list = providers();
    list.truncate(1);
    list[0].model = "mystery".into();
    let script = Script::new(vec![ok_openai(r#"{"title": "x"}"#, "stop")]);
    let r = run(
        &script,
        &list,
        Budget {
            limit_usd: Some(1.0),
            spent_usd: 0.0,
        },
        120_000,
    )
    .await;
    match &r.result {
        Err(ChainError::BudgetExceeded(m)) => assert!(m.contains("PRICING"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(script.calls.borrow().is_empty());
    let script = Script::new(vec![Ok(HttpReply { status: 200, retry_after: None, body: json!({"model": "mystery", "choices": [{"message": {"content": "{\"title\":\"x\"}"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 5}}).to_string() })]);
    let r = run(&script, &list, Budget::default(), 120_000).await;
    assert!(r.result.is_ok());
    assert_eq!(r.attempts[0].cost_usd, None);
    assert_eq!(totals(&r.attempts).1, None);
}

fn sent_max_tokens(call: &HttpCall) -> u64 {
    call.body["max_tokens"]
        .as_u64()
        .or(call.body["max_completion_tokens"].as_u64())
        .expect("max_tokens in the request")
}

#[tokio::test]
async fn max_tokens_is_clamped_to_what_the_budget_can_pay_for() {
    let mut list = providers();
    list.truncate(1); // gpt-4o-mini: $0.15 in, $0.60 out per 1M tokens
    let script = Script::new(vec![ok_openai(r#"{"title": "x"}"#, "stop")]);
    // $0.0012 left: the tiny prompt costs ~nothing, so about 2,000 output tokens.
    let r = run(
        &script,
        &list,
        Budget {
            limit_usd: Some(0.0012),
            spent_usd: 0.0,
        },
        120_000,
    )
    .await;
    assert!(r.result.is_ok(), "{:?}", r.result);
    let sent = sent_max_tokens(&script.calls.borrow()[0]);
    assert!((1_990..2_000).contains(&sent), "sent max_tokens {sent}");
    // With room for all of it, the request's own max_tokens goes out.
    let script = Script::new(vec![ok_openai(r#"{"title": "x"}"#, "stop")]);
    run(
        &script,
        &list,
        Budget {
            limit_usd: Some(1.0),
            spent_usd: 0.0,
        },
        120_000,
    )
    .await;
    assert_eq!(sent_max_tokens(&script.calls.borrow()[0]), 4_000);
}

#[tokio::test]
async fn a_call_that_cannot_afford_its_expected_output_is_not_made() {
    let mut list = providers();
    list.truncate(1);
    let script = Script::new(vec![]);
    // 1,000 expected output tokens cost $0.0006; $0.0005 is left.
    let r = run(
        &script,
        &list,
        Budget {
            limit_usd: Some(0.0105),
            spent_usd: 0.01,
        },
        120_000,
    )
    .await;
    assert!(matches!(r.result, Err(ChainError::BudgetExceeded(_))));
    assert!(script.calls.borrow().is_empty());
    assert_eq!(statuses(&r.attempts), vec![("openai", "budget_refused")]);
}

#[test]
fn the_worst_case_of_every_allowed_call_fits_the_budget() {
    let pricing = Pricing::default();
    for model in [
        "gpt-4o",
        "gpt-4o-mini",
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
    ] {
        let price = pricing.price(model);
        for (limit, spent, input_bytes) in [
            (0.05, 0.0, 12_000usize),
            (0.25, 0.1, 40_000),
            (1.0, 0.0, 2_000),
            (0.01, 0.0, 600),
        ] {
            let budget = Budget {
                limit_usd: Some(limit),
                spent_usd: spent,
            };
            let input = worst_case_input_tokens(input_bytes);
            if let Ok(max_out) = affordable_output_tokens(price, model, &budget, input, 64_000, 100)
            {
                // The model bills every prompt token, all of it written to
                // its cache (the dearest), and writes to the limit.
                let worst = pricing
                    .cost(
                        model,
                        &TokenUsage {
                            input,
                            output: max_out as u64,
                            cached: 0,
                            cache_write: input,
                        },
                    )
                    .unwrap();
                assert!(
                    spent + worst <= limit,
                    "{model}: ${spent} + ${worst} > ${limit} (max_tokens {max_out})"
                );
            }
        }
    }
}

#[test]
fn prompts_are_budgeted_at_three_bytes_a_token() {
    assert_eq!(worst_case_input_tokens(0), 0);
    assert_eq!(worst_case_input_tokens(3), 1);
    assert_eq!(worst_case_input_tokens(4), 2);
    assert_eq!(worst_case_input_tokens(9_000), 3_000);
}

#[test]
fn an_exhausted_budget_refuses_even_a_call_that_wants_no_minimum() {
    let price = Pricing::default().price("gpt-4o-mini");
    let spent = Budget {
        limit_usd: Some(0.01),
        spent_usd: 0.01,
    };
    assert!(affordable_output_tokens(price, "gpt-4o-mini", &spent, 0, 4_000, 0).is_err());
    // A free output price still pays for its prompt: over budget, refused.
    let input_only = Some(Price {
        input: 1.0,
        output: 0.0,
        cached_input: None,
        cache_write: None,
    });
    let budget = Budget {
        limit_usd: Some(0.001),
        spent_usd: 0.0,
    };
    assert!(affordable_output_tokens(input_only, "m", &budget, 2_000, 4_000, 10).is_err());
    assert_eq!(
        affordable_output_tokens(input_only, "m", &budget, 500, 4_000, 10),
        Ok(4_000)
    );
}

#[tokio::test]
async fn a_long_prompt_leaves_less_of_the_budget_for_output() {
    let mut list = providers();
    list.truncate(1);
    list[0].model = "gpt-4o".into(); // $2.50 in, $10 out per 1M tokens
    let mut long = request();
    long.system = "s".repeat(100);
    long.user = "u".repeat(30_000);
    let script = Script::new(vec![ok_openai(r#"{"title": "x"}"#, "stop")]);
    let chain = Chain {
        runtime: &script,
        providers: &list,
        settings: Settings::default(),
        pricing: &Pricing::default(),
        stop: None,
    };
    let mut budget = Budget {
        limit_usd: Some(0.05),
        spent_usd: 0.0,
    };
    let mut attempts = Vec::new();
    let result = chain
        .complete(&long, &needs_title, &mut budget, 120_000, &mut attempts)
        .await;
    assert!(result.is_ok(), "{result:?}");
    // (100 + 30,000 + 17 bytes) / 3 = 10,039 prompt tokens cost $0.0251, so
    // about $0.0249 is left for output: 2,490 tokens at $10 / 1M.
    let sent = sent_max_tokens(&script.calls.borrow()[0]);
    assert!((2_480..2_500).contains(&sent), "sent max_tokens {sent}");
}

#[test]
fn a_declared_zero_price_runs_under_any_budget() {
    let free = Some(Price {
        input: 0.0,
        output: 0.0,
        cached_input: None,
        cache_write: None,
    });
    let budget = Budget {
        limit_usd: Some(0.0),
        spent_usd: 0.0,
    };
    assert_eq!(
        affordable_output_tokens(free, "llama3.1:8b", &budget, 5_000, 4_000, 1_000),
        Ok(4_000)
    );
    assert!(affordable_output_tokens(None, "llama3.1:8b", &budget, 5_000, 4_000, 1_000).is_err());
}
