//! `granulation_templates`: the live templates, their writes (a taken name is
//! a 409) and soft deletes.

use super::{t, to_json, u, Database, NOW};
use crate::types::structure::StructureType;
use crate::types::template::{Template, TemplateInput, TemplateRow};
use bitware_kit::error::{AppError, AppResult};
use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::D1PreparedStatement;

impl Database {
    const TEMPLATE_COLUMNS: &'static str = "id, template_name, structure_type, description, template_schema, ai_prompt_template, \
        validation_rules, structure_rules, complexity_level, target_audience, ai_provider_config, cost_optimization, usage_count, \
        created_at, updated_at";

    fn to_templates(rows: Vec<TemplateRow>) -> AppResult<Vec<Template>> {
        rows.into_iter()
            .map(|r| Template::try_from(r).map_err(AppError::internal))
            .collect()
    }

    pub async fn list_templates(
        &self,
        structure_type: Option<StructureType>,
    ) -> AppResult<Vec<Template>> {
        let stmt = match structure_type {
            Some(st) => self.stmt(
                &format!("SELECT {} FROM granulation_templates WHERE deleted_at IS NULL AND structure_type = ?1 ORDER BY template_name", Self::TEMPLATE_COLUMNS),
                &[t(st.as_str())],
            )?,
            None => self.stmt(&format!("SELECT {} FROM granulation_templates WHERE deleted_at IS NULL ORDER BY structure_type, template_name", Self::TEMPLATE_COLUMNS), &[])?,
        };
        Self::to_templates(self.all("listing templates", stmt).await?)
    }

    pub async fn template_by_name(&self, name: &str) -> AppResult<Option<Template>> {
        let stmt = self.stmt(&format!("SELECT {} FROM granulation_templates WHERE deleted_at IS NULL AND template_name = ?1", Self::TEMPLATE_COLUMNS), &[t(name)])?;
        Ok(
            Self::to_templates(self.all("reading a template", stmt).await?)?
                .into_iter()
                .next(),
        )
    }

    /// The oldest live template of a type: the seeded one unless an admin removed it.
    pub async fn default_template(
        &self,
        structure_type: StructureType,
    ) -> AppResult<Option<Template>> {
        let stmt = self.stmt(
            &format!("SELECT {} FROM granulation_templates WHERE deleted_at IS NULL AND structure_type = ?1 ORDER BY id LIMIT 1", Self::TEMPLATE_COLUMNS),
            &[t(structure_type.as_str())],
        )?;
        Ok(
            Self::to_templates(self.all("reading the default template", stmt).await?)?
                .into_iter()
                .next(),
        )
    }

    fn template_binds(input: &TemplateInput) -> AppResult<Vec<JsValue>> {
        Ok(vec![
            t(&input.template_name),
            t(input.structure_type.as_str()),
            t(&input.description),
            t(&input.template_schema.to_string()),
            t(&input.ai_prompt_template),
            t(&to_json(&input.validation_rules)?),
            t(&to_json(&input.structure_rules)?),
            u(input.complexity_level as u64),
            t(&input.target_audience),
            t(&to_json(&input.ai_provider_config)?),
            t(&to_json(&input.cost_optimization)?),
        ])
    }

    pub async fn create_template(&self, input: &TemplateInput) -> AppResult<Template> {
        let sql = format!(
            "INSERT INTO granulation_templates (template_name, structure_type, description, template_schema, ai_prompt_template, \
             validation_rules, structure_rules, complexity_level, target_audience, ai_provider_config, cost_optimization) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING {}",
            Self::TEMPLATE_COLUMNS
        );
        let stmt = self.stmt(&sql, &Self::template_binds(input)?)?;
        let rows: Vec<TemplateRow> = self
            .all_or_conflict("creating a template", stmt, &input.template_name)
            .await?;
        Self::to_templates(rows)?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::internal("the new template was not returned"))
    }

    pub async fn update_template(
        &self,
        current_name: &str,
        input: &TemplateInput,
    ) -> AppResult<Option<Template>> {
        let sql = format!(
            "UPDATE granulation_templates SET template_name = ?1, structure_type = ?2, description = ?3, template_schema = ?4, \
             ai_prompt_template = ?5, validation_rules = ?6, structure_rules = ?7, complexity_level = ?8, target_audience = ?9, \
             ai_provider_config = ?10, cost_optimization = ?11, updated_at = {NOW} \
             WHERE template_name = ?12 AND deleted_at IS NULL RETURNING {}",
            Self::TEMPLATE_COLUMNS
        );
        let mut binds = Self::template_binds(input)?;
        binds.push(t(current_name));
        let stmt = self.stmt(&sql, &binds)?;
        let rows: Vec<TemplateRow> = self
            .all_or_conflict("updating a template", stmt, &input.template_name)
            .await?;
        Ok(Self::to_templates(rows)?.into_iter().next())
    }

    /// A template write: the live-name unique index failing is the caller's
    /// 409 (not logged as a fault); anything else is a database error.
    async fn all_or_conflict<T: DeserializeOwned>(
        &self,
        context: &str,
        stmt: D1PreparedStatement,
        name: &str,
    ) -> AppResult<Vec<T>> {
        self.add_round_trips(1);
        match stmt.all().await {
            Ok(result) => result
                .results::<T>()
                .map_err(|e| AppError::database(context, e)),
            Err(e) if e.to_string().contains("UNIQUE constraint failed") => {
                Err(AppError::conflict(
                    "template_exists",
                    format!("a template named `{name}` already exists"),
                ))
            }
            Err(e) => Err(AppError::database(context, e)),
        }
    }

    /// Soft delete: the template leaves listings and new jobs; old jobs keep their link.
    pub async fn delete_template(&self, name: &str) -> AppResult<bool> {
        let stmt = self.stmt(
            &format!("UPDATE granulation_templates SET deleted_at = {NOW}, updated_at = {NOW} WHERE template_name = ?1 AND deleted_at IS NULL"),
            &[t(name)],
        )?;
        Ok(self.run("deleting a template", stmt).await? > 0)
    }
}
