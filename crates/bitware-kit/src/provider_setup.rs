//! Which providers are configured, and the chain a job runs with.
//!
//! Order: `AI_PROVIDER_ORDER` (default `openai,anthropic,workers_ai`), then a
//! template's `aiProviderConfig` (preferred + fallbacks, model preferences),
//! then the request's `config.aiProvider`/`aiModel`. An explicitly requested
//! provider that is not configured is a 400, never a silent switch. The
//! offline provider is the default only outside production with no provider
//! configured, and is used in production only when the order names it.

use crate::error::{AppError, AppResult};
use crate::provider::{ProviderConfig, ProviderKind, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A template's provider preferences (seed §10 `aiProviderConfig`):
/// preferred provider, fallbacks, a model per provider, temperature, token cap.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AiProviderConfig {
    #[serde(default)]
    pub preferred_provider: Option<String>,
    #[serde(default)]
    pub fallback_providers: Vec<String>,
    #[serde(default)]
    pub model_preferences: BTreeMap<String, String>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

impl AiProviderConfig {
    /// Known providers only, and a temperature and token cap in range.
    pub fn validate(&self) -> AppResult<()> {
        let names = self
            .preferred_provider
            .iter()
            .chain(&self.fallback_providers)
            .chain(self.model_preferences.keys());
        for name in names {
            if ProviderKind::parse(name).is_none() {
                return Err(AppError::invalid_field(
                    "template.aiProviderConfig",
                    format!("unknown provider `{name}`"),
                ));
            }
        }
        if self.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
            return Err(AppError::invalid_field(
                "template.aiProviderConfig.temperature",
                "must be between 0 and 2",
            ));
        }
        if self
            .max_tokens
            .is_some_and(|t| !(256..=64_000).contains(&t))
        {
            return Err(AppError::invalid_field(
                "template.aiProviderConfig.maxTokens",
                "must be between 256 and 64000",
            ));
        }
        Ok(())
    }
}

pub const DEFAULT_ORDER: [ProviderKind; 3] = [
    ProviderKind::Openai,
    ProviderKind::Anthropic,
    ProviderKind::WorkersAi,
];
pub const OPENAI_DEFAULT_BASE: &str = "https://api.openai.com/v1";
pub const ANTHROPIC_DEFAULT_BASE: &str = "https://api.anthropic.com";

/// What configures a provider (named when an ordered provider is skipped).
fn missing_setting(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Openai => "neither OPENAI_API_KEY nor OPENAI_BASE_URL is set",
        ProviderKind::Anthropic => "ANTHROPIC_API_KEY is not set",
        ProviderKind::WorkersAi => {
            "the AI binding is missing (wrangler.toml `ai`; production only)"
        }
        ProviderKind::Offline => "ENVIRONMENT is production",
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProviderSetup {
    pub production: bool,
    pub openai_key: Option<Secret>,
    pub openai_base_url: Option<String>,
    pub openai_model: Option<String>,
    pub anthropic_key: Option<Secret>,
    pub anthropic_base_url: Option<String>,
    pub anthropic_model: Option<String>,
    pub workers_ai_bound: bool,
    pub workers_ai_model: Option<String>,
    /// `AI_PROVIDER_ORDER` as configured, e.g. `openai,anthropic`.
    pub order: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    pub name: ProviderKind,
    pub configured: bool,
    pub model: String,
    pub in_default_chain: bool,
}

impl ProviderSetup {
    pub fn configured(&self, kind: ProviderKind) -> bool {
        match kind {
            // A keyless OpenAI-compatible server (Ollama, vLLM, llama.cpp)
            // is configured by its base URL alone.
            ProviderKind::Openai => self.openai_key.is_some() || self.openai_base_url.is_some(),
            ProviderKind::Anthropic => self.anthropic_key.is_some(),
            ProviderKind::WorkersAi => self.workers_ai_bound,
            ProviderKind::Offline => !self.production || self.order_names_offline(),
        }
    }

    fn order_names_offline(&self) -> bool {
        self.parsed_order()
            .map(|o| o.contains(&ProviderKind::Offline))
            .unwrap_or(false)
    }

    fn parsed_order(&self) -> Option<Vec<ProviderKind>> {
        let raw = self.order.as_deref().filter(|s| !s.trim().is_empty())?;
        Some(raw.split(',').filter_map(ProviderKind::parse).collect())
    }

    /// `AI_PROVIDER_ORDER` entries that name no provider, and providers it
    /// names that are skipped because they are not configured (reported by
    /// /health and ./dev.sh, never silently).
    pub fn order_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen = Vec::new();
        for name in self
            .order
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
        {
            if name.is_empty() {
                continue;
            }
            match ProviderKind::parse(name) {
                None => problems.push(format!("AI_PROVIDER_ORDER names unknown provider `{name}`")),
                Some(kind) if !seen.contains(&kind) => {
                    seen.push(kind);
                    if !self.configured(kind) {
                        problems.push(format!(
                            "AI_PROVIDER_ORDER names `{kind}`, which is skipped: {}",
                            missing_setting(kind)
                        ));
                    }
                }
                Some(_) => {}
            }
        }
        problems
    }

    /// The model var set for `kind` by the operator, if any.
    fn operator_model(&self, kind: ProviderKind) -> Option<String> {
        match kind {
            ProviderKind::Openai => self.openai_model.clone(),
            ProviderKind::Anthropic => self.anthropic_model.clone(),
            ProviderKind::WorkersAi => self.workers_ai_model.clone(),
            ProviderKind::Offline => None,
        }
        .filter(|m| !m.is_empty())
    }

    pub fn default_model(&self, kind: ProviderKind) -> String {
        let configured = match kind {
            ProviderKind::Openai => self.openai_model.as_deref(),
            ProviderKind::Anthropic => self.anthropic_model.as_deref(),
            ProviderKind::WorkersAi => self.workers_ai_model.as_deref(),
            ProviderKind::Offline => None,
        };
        configured
            .filter(|m| !m.is_empty())
            .unwrap_or(kind.default_model())
            .to_string()
    }

    /// The environment's chain, before templates and requests have a say.
    pub fn default_chain(&self) -> Vec<ProviderKind> {
        let order = self
            .parsed_order()
            .unwrap_or_else(|| DEFAULT_ORDER.to_vec());
        let mut chain: Vec<ProviderKind> =
            order.into_iter().filter(|k| self.configured(*k)).collect();
        chain.dedup();
        if chain.is_empty() && !self.production {
            chain.push(ProviderKind::Offline);
        }
        chain
    }

    fn config(&self, kind: ProviderKind, model: String) -> ProviderConfig {
        let (base_url, api_key) = match kind {
            ProviderKind::Openai => (
                self.openai_base_url
                    .clone()
                    .unwrap_or_else(|| OPENAI_DEFAULT_BASE.into()),
                self.openai_key.clone(),
            ),
            ProviderKind::Anthropic => (
                self.anthropic_base_url
                    .clone()
                    .unwrap_or_else(|| ANTHROPIC_DEFAULT_BASE.into()),
                self.anthropic_key.clone(),
            ),
            ProviderKind::WorkersAi | ProviderKind::Offline => (String::new(), None),
        };
        ProviderConfig {
            kind,
            model,
            base_url,
            api_key,
        }
    }

    /// The providers a job tries, in order.
    pub fn chain(
        &self,
        template: Option<&AiProviderConfig>,
        provider: Option<ProviderKind>,
        model: Option<&str>,
    ) -> AppResult<Vec<ProviderConfig>> {
        // The operator's model var (OPENAI_MODEL…) names what the deployment
        // runs, e.g. the one model a self-hosted server has: it wins over a
        // template's preference, which only picks among the provider's
        // defaults. A request's `config.aiModel` wins over both.
        let model_for = |kind: ProviderKind| {
            self.operator_model(kind)
                .or_else(|| template.and_then(|t| t.model_preferences.get(kind.as_str()).cloned()))
                .unwrap_or_else(|| self.default_model(kind))
        };
        if let Some(kind) = provider {
            if !self.configured(kind) {
                return Err(AppError::bad_request(
                    "provider_not_configured",
                    format!("AI provider `{kind}` is not configured on this worker"),
                )
                .with_details(
                    json!({"field": "config.aiProvider", "configured": self.default_chain()}),
                ));
            }
            let model = model.map(str::to_string).unwrap_or_else(|| model_for(kind));
            return Ok(vec![self.config(kind, model)]);
        }
        let mut order: Vec<ProviderKind> = Vec::new();
        if let Some(t) = template {
            let named = t
                .preferred_provider
                .iter()
                .chain(&t.fallback_providers)
                .filter_map(|n| ProviderKind::parse(n));
            order.extend(named.filter(|k| self.configured(*k)));
        }
        for kind in self.default_chain() {
            if !order.contains(&kind) {
                order.push(kind);
            }
        }
        if order.is_empty() {
            return Err(AppError::unavailable("no_provider_configured", "no AI provider is configured (set OPENAI_API_KEY, ANTHROPIC_API_KEY or the AI binding)"));
        }
        Ok(order
            .into_iter()
            .map(|k| self.config(k, model_for(k)))
            .collect())
    }

    pub fn statuses(&self) -> Vec<ProviderStatus> {
        let chain = self.default_chain();
        ProviderKind::ALL
            .into_iter()
            .map(|kind| ProviderStatus {
                name: kind,
                configured: self.configured(kind),
                model: self.default_model(kind),
                in_default_chain: chain.contains(&kind),
            })
            .collect()
    }

    pub fn describe(&self) -> Value {
        json!({
            "providers": self.statuses(),
            "order": self.default_chain(),
            "problems": self.order_problems(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> ProviderSetup {
        ProviderSetup {
            openai_key: Secret::new("sk-secret-value".into()),
            anthropic_key: Secret::new("ak".into()),
            anthropic_base_url: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        }
    }

    fn kinds(chain: &[ProviderConfig]) -> Vec<ProviderKind> {
        chain.iter().map(|c| c.kind).collect()
    }

    #[test]
    fn default_order_keeps_configured_providers() {
        let s = setup();
        assert_eq!(
            kinds(&s.chain(None, None, None).unwrap()),
            vec![ProviderKind::Openai, ProviderKind::Anthropic]
        );
        let c = s.chain(None, None, None).unwrap();
        assert_eq!(c[0].base_url, OPENAI_DEFAULT_BASE);
        assert_eq!(c[1].base_url, "http://127.0.0.1:9");
        assert_eq!(c[1].model, "claude-haiku-4-5");
    }

    #[test]
    fn env_order_then_template_then_request() {
        let mut s = setup();
        s.order = Some("anthropic,openai".into());
        assert_eq!(
            kinds(&s.chain(None, None, None).unwrap()),
            vec![ProviderKind::Anthropic, ProviderKind::Openai]
        );
        let t = AiProviderConfig {
            preferred_provider: Some("openai".into()),
            model_preferences: [("openai".to_string(), "gpt-4.1-mini".to_string())].into(),
            ..Default::default()
        };
        let c = s.chain(Some(&t), None, None).unwrap();
        assert_eq!(
            kinds(&c),
            vec![ProviderKind::Openai, ProviderKind::Anthropic]
        );
        assert_eq!(c[0].model, "gpt-4.1-mini");
        let c = s
            .chain(
                Some(&t),
                Some(ProviderKind::Anthropic),
                Some("claude-sonnet-4-5"),
            )
            .unwrap();
        assert_eq!(kinds(&c), vec![ProviderKind::Anthropic]);
        assert_eq!(c[0].model, "claude-sonnet-4-5");
    }

    #[test]
    fn a_requested_provider_that_is_not_configured_is_a_400() {
        let e = setup()
            .chain(None, Some(ProviderKind::WorkersAi), None)
            .unwrap_err();
        assert_eq!((e.status(), e.code), (400, "provider_not_configured"));
    }

    #[test]
    fn offline_is_the_dev_default_but_never_a_silent_production_fallback() {
        let dev = ProviderSetup::default();
        assert_eq!(
            kinds(&dev.chain(None, None, None).unwrap()),
            vec![ProviderKind::Offline]
        );
        let prod = ProviderSetup {
            production: true,
            ..Default::default()
        };
        assert_eq!(prod.chain(None, None, None).unwrap_err().status(), 503);
        assert_eq!(
            prod.chain(None, Some(ProviderKind::Offline), None)
                .unwrap_err()
                .status(),
            400
        );
        let named = ProviderSetup {
            production: true,
            order: Some("offline".into()),
            ..Default::default()
        };
        assert_eq!(
            kinds(&named.chain(None, None, None).unwrap()),
            vec![ProviderKind::Offline]
        );
        // With a real provider configured, offline is not appended in dev either.
        assert_eq!(
            kinds(&setup().chain(None, None, None).unwrap()),
            vec![ProviderKind::Openai, ProviderKind::Anthropic]
        );
    }

    #[test]
    fn unknown_names_in_the_order_are_reported() {
        let s = ProviderSetup {
            order: Some("openai, gemini".into()),
            ..setup()
        };
        assert_eq!(
            s.order_problems(),
            vec!["AI_PROVIDER_ORDER names unknown provider `gemini`"]
        );
        assert!(!format!("{:?}", s.describe()).contains("sk-secret-value"));
    }

    #[test]
    fn providers_named_in_the_order_but_not_configured_are_reported() {
        let s = ProviderSetup {
            order: Some("openai,anthropic,workers_ai".into()),
            openai_key: Secret::new("k".into()),
            ..Default::default()
        };
        let problems = s.order_problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("`anthropic`") && problems[0].contains("ANTHROPIC_API_KEY"));
        assert!(problems[1].contains("`workers_ai`") && problems[1].contains("AI binding"));
        // No order configured: the default order is not a complaint.
        assert!(ProviderSetup::default().order_problems().is_empty());
    }

    #[test]
    fn a_keyless_openai_compatible_server_is_configured_by_its_base_url() {
        let s = ProviderSetup {
            openai_base_url: Some("http://127.0.0.1:11434/v1".into()),
            openai_model: Some("llama3.2".into()),
            ..Default::default()
        };
        assert!(s.configured(ProviderKind::Openai));
        let c = s.chain(None, None, None).unwrap();
        assert_eq!(kinds(&c), vec![ProviderKind::Openai]);
        assert_eq!(c[0].model, "llama3.2");
        assert!(c[0].api_key.is_none());
        // The operator's model wins over a template's preference (the seeded
        // templates prefer gpt-4o-mini, which a local server does not have).
        let t = AiProviderConfig {
            model_preferences: [("openai".to_string(), "gpt-4o-mini".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(s.chain(Some(&t), None, None).unwrap()[0].model, "llama3.2");
        assert!(s.order_problems().is_empty());
    }
}
