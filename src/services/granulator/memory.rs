//! In-memory twins of the pipeline's ports, for native tests: the job store
//! (the kit's twin, which the kit's contract suite holds to D1's rules, with
//! the outline's partial branches beside it), structure and template
//! stores, and a model that answers scripted replies in the OpenAI wire
//! format on a virtual clock.

use super::ports::{OutlineStore, StructureStore, TemplateSource};
use crate::services::ai_provider::wire::HttpCall;
use crate::services::ai_provider::{HttpReply, Runtime, Transport};
use crate::services::database::{Completion, Failure, SCHEMA};
use crate::services::storage::Tier;
use crate::services::timing::Clock;
use crate::types::env::STRUCTURES;
use crate::types::job::PartialBranch;
use crate::types::structure::StructureType;
use crate::types::template::Template;
use bitware_kit::error::{AppError, AppResult};
use bitware_kit::jobs::memory_jobs::MemoryJobs as KitJobs;
use bitware_kit::jobs::JobStore;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// The job store twin: the kit's (`bitware_kit::jobs::memory_jobs`, held
/// to D1's rules by the kit's contract suite, with its ledger twin), and the
/// outline's own records beside it. Reads of the kit's twin (`job(id)`,
/// `day(tenant)`, `ledger`, `broken`…) go through `Deref`.
pub struct MemoryJobs {
    pub kit: KitJobs,
    /// `partial_branches`: (job, run, branch), the latest of each position.
    pub partials: RefCell<Vec<(i64, u32, PartialBranch)>>,
    /// Every branch ever recorded, in order (tests read it after the job ends).
    pub branch_log: RefCell<Vec<(i64, u32, PartialBranch)>>,
}

impl Default for MemoryJobs {
    fn default() -> Self {
        MemoryJobs {
            kit: KitJobs::new(SCHEMA),
            partials: RefCell::default(),
            branch_log: RefCell::default(),
        }
    }
}

impl std::ops::Deref for MemoryJobs {
    type Target = KitJobs;
    fn deref(&self) -> &KitJobs {
        &self.kit
    }
}

bitware_kit::delegate_job_store!(MemoryJobs, |m| m.kit);
bitware_kit::delegate_spend_ledger!(MemoryJobs, |m| m.kit.ledger);

impl OutlineStore for MemoryJobs {
    async fn store_outline(&self, c: &Completion<'_>) -> AppResult<bool> {
        // The columns the pipeline's tests read (D1 writes them all).
        let columns = [
            ("total_elements", json!(c.elements.len())),
            ("quality_score", json!(c.quality_score)),
            ("storage_type", json!(c.storage_type)),
        ];
        self.kit.complete_job(&c.ending(&columns)).await
    }
    async fn record_failure(&self, f: &Failure<'_>) -> AppResult<bool> {
        self.kit.fail_job(&f.ending()).await
    }
    async fn record_branch(&self, job_id: i64, run: u32, branch: &PartialBranch) -> AppResult<()> {
        if self.kit.broken.get() {
            return Err(AppError::database("writing", "D1 is down (test)"));
        }
        let row = (job_id, run, branch.clone());
        let mut partials = self.partials.borrow_mut();
        partials.retain(|p| (p.0, p.1, p.2.position) != (job_id, run, branch.position));
        partials.push(row.clone());
        self.branch_log.borrow_mut().push(row);
        Ok(())
    }
}

/// KV and R2 as a map of location → JSON.
#[derive(Default, Clone)]
pub struct MemoryStructures {
    pub stored: Rc<RefCell<HashMap<String, String>>>,
}

impl StructureStore for MemoryStructures {
    async fn store(&self, tier: Tier, job_id: i64, json: &str) -> AppResult<Option<String>> {
        let Some(location) = STRUCTURES.location(tier, job_id) else {
            return Ok(None);
        };
        self.stored
            .borrow_mut()
            .insert(location.clone(), json.into());
        Ok(Some(location))
    }
}

/// Active templates; a deleted one is simply absent.
#[derive(Default, Clone)]
pub struct MemoryTemplates {
    pub templates: Rc<RefCell<Vec<Template>>>,
}

impl TemplateSource for MemoryTemplates {
    async fn resolve(
        &self,
        name: Option<&str>,
        structure_type: Option<StructureType>,
    ) -> AppResult<Template> {
        let templates = self.templates.borrow();
        let found = match name {
            Some(name) => templates.iter().find(|t| t.template_name == name),
            None => templates
                .iter()
                .find(|t| Some(t.structure_type) == structure_type),
        };
        found.cloned().ok_or_else(|| {
            AppError::invalid_field("input.templateName", "no active template (test)")
        })
    }
}

/// A model behind the OpenAI wire format: each call takes the next scripted
/// answer (a JSON value, or an HTTP status) and costs 100 virtual ms.
#[derive(Default)]
pub struct Model {
    pub answers: RefCell<VecDeque<Result<Value, u16>>>,
    pub calls: RefCell<Vec<HttpCall>>,
    pub clock: Cell<u64>,
    /// Usage billed per answer: (prompt, completion) tokens.
    pub usage: Cell<(u64, u64)>,
}

impl Model {
    pub fn answering(answers: Vec<Result<Value, u16>>) -> Model {
        Model {
            answers: RefCell::new(answers.into()),
            clock: Cell::new(1_000_000),
            usage: Cell::new((1_000, 500)),
            ..Model::default()
        }
    }

    /// What the pipeline sent as the user prompt of call `i`.
    pub fn prompt(&self, i: usize) -> String {
        let calls = self.calls.borrow();
        calls[i].body["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

impl Runtime for Model {
    async fn http(&self, call: &HttpCall, _timeout_ms: u64) -> Result<HttpReply, Transport> {
        self.calls.borrow_mut().push(call.clone());
        self.clock.set(self.clock.get() + 100);
        let answer = self.answers.borrow_mut().pop_front();
        let (prompt, completion) = self.usage.get();
        match answer {
            Some(Ok(value)) => Ok(HttpReply {
                status: 200,
                retry_after: None,
                body: json!({"model": call.body["model"], "choices": [{"message": {"content": value.to_string()}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": completion}})
                .to_string(),
            }),
            Some(Err(status)) => Ok(HttpReply {
                status,
                retry_after: None,
                body: json!({"error": {"message": "scripted failure"}}).to_string(),
            }),
            None => Ok(HttpReply {
                status: 500,
                retry_after: None,
                body: json!({"error": {"message": "the script has no more answers"}}).to_string(),
            }),
        }
    }
    async fn workers_ai(&self, _: &str, _: &Value, _: u64) -> Result<Value, Transport> {
        Err(Transport::Failed("not scripted".into()))
    }
    async fn sleep(&self, ms: u64) {
        self.clock.set(self.clock.get() + ms);
    }
    fn now_ms(&self) -> u64 {
        self.clock.get()
    }
    fn random(&self) -> f64 {
        0.5
    }
}

impl Clock for Model {
    fn now_ms(&self) -> u64 {
        self.clock.get()
    }
    async fn sleep(&self, ms: u64) {
        self.clock.set(self.clock.get() + ms);
    }
}
