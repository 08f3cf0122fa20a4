//! The entry points every worker shares, as the granulator has them: the
//! `fetch` export is `contain::fetch`; the `queue` export hands its batch
//! to [`job_batch`] (this module), which runs the job messages of the job
//! queue, or ends those of its dead-letter queue (a queue whose name ends
//! in `-dlq`), concurrently, and acks or retries each as the kit's consumer
//! says. The `#[event(queue)]` / `#[event(scheduled)]` attributes stay in
//! the worker (they make its wasm exports); their bodies are one call.

use crate::jobs::queue::{Delivery, JobMessage};
use worker::{MessageBatch, MessageExt};

/// The suffix of a dead-letter queue's name (wrangler.toml's `dead_letter_queue`).
pub const DEAD_LETTER_SUFFIX: &str = "-dlq";

/// Run a batch of the job queue (`consume`) or of its dead-letter queue
/// (`dead_letter`), each message concurrently, then ack or retry each.
pub async fn job_batch<C, D>(
    batch: MessageBatch<JobMessage>,
    consume: C,
    dead_letter: D,
) -> worker::Result<()>
where
    C: AsyncFn(&JobMessage) -> Delivery,
    D: AsyncFn(&JobMessage) -> Delivery,
{
    let dead_letters = batch.queue().ends_with(DEAD_LETTER_SUFFIX);
    let messages = batch.messages()?;
    let deliveries = futures_util::future::join_all(messages.iter().map(|m| {
        let (consume, dead_letter) = (&consume, &dead_letter);
        async move {
            match dead_letters {
                true => dead_letter(m.body()).await,
                false => consume(m.body()).await,
            }
        }
    }))
    .await;
    for (message, delivery) in messages.iter().zip(deliveries) {
        match delivery {
            Delivery::Ack => message.ack(),
            Delivery::Retry => message.retry(),
        }
    }
    Ok(())
}
