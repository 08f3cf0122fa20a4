//! The six structure types as the granulator emits them (contracts.md §4):
//! per type its root section and, per level, the children key, the field that
//! names an element, its `wordCountEstimates.bySection` key and what this
//! worker writes for it.
//!
//! This is the contract between the two workers, mirrored from the
//! granulator's `types/catalog.rs` (keys, sections, words), not shared code:
//! the generator reads the granulator's output, it does not link its crate.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructureType {
    Course,
    Quiz,
    Novel,
    Workflow,
    KnowledgeMap,
    LearningPath,
}

/// One level of a type's hierarchy (level 1 is the root's children).
#[derive(Debug)]
pub struct LevelSpec {
    /// The key under which the parent holds these elements (`modules`).
    pub key: &'static str,
    /// What one element is called (`module`): the prompt line's element type.
    pub element_type: &'static str,
    /// The field that names an element (title, name, question, description).
    pub title_field: &'static str,
    /// Its `wordCountEstimates.bySection` key, as the granulator emits it.
    pub section: &'static str,
    /// Words per element when the input's `bySection` lacks the section: the
    /// granulator's own per-element figure for the level.
    pub default_words: u32,
    /// What the model writes for one element (the prompt's instruction).
    pub writes: &'static str,
    /// The element's outline fields that go into the prompt.
    pub outline_fields: &'static [&'static str],
}

/// A type: its root (level 0) and its levels.
#[derive(Debug)]
pub struct TypeSpec {
    pub root_section: &'static str,
    pub root_default_words: u32,
    /// What the model writes for the root.
    pub root_writes: &'static str,
    /// The root's outline fields that go into the prompt.
    pub root_fields: &'static [&'static str],
    /// The writer's role (the system prompt).
    pub writer: &'static str,
    /// Defaults when neither the input nor the request names a tone / style.
    pub tone: &'static str,
    pub style: &'static str,
    pub levels: &'static [LevelSpec],
}

impl StructureType {
    pub const ALL: [StructureType; 6] = [
        StructureType::Course,
        StructureType::Quiz,
        StructureType::Novel,
        StructureType::Workflow,
        StructureType::KnowledgeMap,
        StructureType::LearningPath,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StructureType::Course => "course",
            StructureType::Quiz => "quiz",
            StructureType::Novel => "novel",
            StructureType::Workflow => "workflow",
            StructureType::KnowledgeMap => "knowledge_map",
            StructureType::LearningPath => "learning_path",
        }
    }

    /// Exact names only: the API never guesses what a caller meant.
    pub fn parse(name: &str) -> Option<StructureType> {
        StructureType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    pub fn names() -> Vec<&'static str> {
        StructureType::ALL.iter().map(|t| t.as_str()).collect()
    }

    pub fn spec(self) -> &'static TypeSpec {
        match self {
            StructureType::Course => &COURSE,
            StructureType::Quiz => &QUIZ,
            StructureType::Novel => &NOVEL,
            StructureType::Workflow => &WORKFLOW,
            StructureType::KnowledgeMap => &KNOWLEDGE_MAP,
            StructureType::LearningPath => &LEARNING_PATH,
        }
    }
}

impl fmt::Display for StructureType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

static COURSE: TypeSpec = TypeSpec {
    root_section: "courseOverview",
    root_default_words: 400,
    root_writes: "the course overview: what the course covers, for whom, and what a learner can do after it",
    root_fields: &["title", "description", "duration", "prerequisites", "learningOutcomes"],
    writer: "an instructional designer who writes clear, well-structured course material",
    tone: "instructional, encouraging",
    style: "structured lessons with examples and practice",
    levels: &[
        LevelSpec {
            key: "modules",
            element_type: "module",
            title_field: "title",
            section: "moduleIntroductions",
            default_words: 300,
            writes: "the module's introduction: what it covers, why it matters, how its lessons build on each other",
            outline_fields: &["description", "duration", "objectives"],
        },
        LevelSpec {
            key: "lessons",
            element_type: "lesson",
            title_field: "title",
            section: "lessonContent",
            default_words: 1200,
            writes: "the lesson's content, following its content outline and meeting its objectives, with examples",
            outline_fields: &["contentOutline", "objectives"],
        },
        LevelSpec {
            key: "activities",
            element_type: "activity",
            title_field: "description",
            section: "exercises",
            default_words: 250,
            writes: "the activity's instructions: what the learner does, step by step, and what a good result looks like",
            outline_fields: &["type", "description"],
        },
    ],
};

static QUIZ: TypeSpec = TypeSpec {
    root_section: "quizInstructions",
    root_default_words: 150,
    root_writes: "the quiz instructions: what it assesses, how it is scored, the time limit",
    root_fields: &["title", "totalQuestions", "timeLimit"],
    writer: "an assessment writer who explains answers precisely and fairly",
    tone: "clear, neutral",
    style: "concise questions with unambiguous answers",
    levels: &[
        LevelSpec {
            key: "categories",
            element_type: "category",
            title_field: "name",
            section: "categoryIntroductions",
            default_words: 60,
            writes: "a short introduction to the category: what its questions test",
            outline_fields: &["description", "weight"],
        },
        LevelSpec {
            key: "questions",
            element_type: "question",
            title_field: "question",
            section: "assessments",
            default_words: 150,
            writes: "an explanation of why the given answer is right (and the other options are not); keep the question, options and answer exactly as given, never rewrite them; the outline's explanation is a draft to improve on",
            outline_fields: &["type", "options", "answer", "explanation", "difficulty", "points"],
        },
    ],
};

static NOVEL: TypeSpec = TypeSpec {
    root_section: "storyBible",
    root_default_words: 500,
    root_writes: "the story bible: premise, world, the main characters and their arcs",
    root_fields: &["title", "genre", "premise", "characters"],
    writer: "a novelist who writes vivid, coherent fiction",
    tone: "literary, vivid",
    style: "scene-driven narrative prose",
    levels: &[
        LevelSpec {
            key: "acts",
            element_type: "act",
            title_field: "title",
            section: "actSummaries",
            default_words: 200,
            writes: "the act's summary: its movement, turning points and what it sets up",
            outline_fields: &["purpose", "summary"],
        },
        LevelSpec {
            key: "chapters",
            element_type: "chapter",
            title_field: "title",
            section: "chapterBridges",
            default_words: 600,
            writes: "the chapter's bridge: narrative prose that opens the chapter and links its scenes",
            outline_fields: &["summary", "purpose", "pov", "setting"],
        },
        LevelSpec {
            key: "scenes",
            element_type: "scene",
            title_field: "description",
            section: "sceneContent",
            default_words: 1500,
            writes: "the scene's draft in narrative prose, from its description, purpose, conflict and outcome",
            outline_fields: &["description", "purpose", "characters", "conflict", "outcome"],
        },
    ],
};

static WORKFLOW: TypeSpec = TypeSpec {
    root_section: "processOverview",
    root_default_words: 300,
    root_writes: "the process overview: its purpose, scope, roles and how its phases connect",
    root_fields: &["title", "purpose", "scope"],
    writer: "a technical writer who documents processes as precise, actionable procedures",
    tone: "precise, operational",
    style: "numbered, actionable procedures",
    levels: &[
        LevelSpec {
            key: "phases",
            element_type: "phase",
            title_field: "name",
            section: "phaseOverviews",
            default_words: 200,
            writes: "the phase's overview: its objective, entry and exit criteria",
            outline_fields: &["objective", "duration"],
        },
        LevelSpec {
            key: "steps",
            element_type: "step",
            title_field: "name",
            section: "stepInstructions",
            default_words: 400,
            writes: "the step's instructions: numbered actions, from its inputs to its outputs, for the responsible role",
            outline_fields: &["description", "responsible", "inputs", "outputs", "dependsOn"],
        },
        LevelSpec {
            key: "tasks",
            element_type: "task",
            title_field: "name",
            section: "taskChecklists",
            default_words: 120,
            writes: "the task's checklist: short items a person ticks off",
            outline_fields: &["description"],
        },
    ],
};

static KNOWLEDGE_MAP: TypeSpec = TypeSpec {
    root_section: "domainOverview",
    root_default_words: 250,
    root_writes: "the domain overview: its scope, its central concepts and how they relate",
    root_fields: &["title", "domain", "purpose", "relationships"],
    writer: "a subject expert who explains concepts accurately and links them explicitly",
    tone: "explanatory, precise",
    style: "definitions linked by explicit relationships",
    levels: &[
        LevelSpec {
            key: "concepts",
            element_type: "concept",
            title_field: "name",
            section: "conceptExplanations",
            default_words: 350,
            writes: "the concept's explanation: its definition, why it matters, how it connects to the others",
            outline_fields: &["definition", "importance"],
        },
        LevelSpec {
            key: "subconcepts",
            element_type: "subconcept",
            title_field: "name",
            section: "subconceptExplanations",
            default_words: 200,
            writes: "the subconcept's explanation and its relationship to its concept",
            outline_fields: &["definition", "relationship"],
        },
        LevelSpec {
            key: "details",
            element_type: "detail",
            title_field: "name",
            section: "details",
            default_words: 100,
            writes: "the detail's explanation, with a concrete example",
            outline_fields: &["description"],
        },
    ],
};

static LEARNING_PATH: TypeSpec = TypeSpec {
    root_section: "pathOverview",
    root_default_words: 300,
    root_writes: "the path overview: its objective, who it is for, how its milestones progress",
    root_fields: &["title", "objective", "duration", "prerequisites"],
    writer: "a learning coach who turns goals into practical, progressive guidance",
    tone: "motivating, practical",
    style: "progressive milestones with practice",
    levels: &[
        LevelSpec {
            key: "milestones",
            element_type: "milestone",
            title_field: "name",
            section: "milestoneOverviews",
            default_words: 250,
            writes: "the milestone's overview: its objective and how a learner knows it is reached",
            outline_fields: &["objective", "duration"],
        },
        LevelSpec {
            key: "skills",
            element_type: "skill",
            title_field: "name",
            section: "skillGuides",
            default_words: 500,
            writes: "the skill's guide: what it is, how to learn it, how to reach the stated proficiency",
            outline_fields: &["description", "proficiencyLevel"],
        },
        LevelSpec {
            key: "activities",
            element_type: "activity",
            title_field: "title",
            section: "practiceActivities",
            default_words: 200,
            writes: "the activity's guide: what to do, with what, and how to check the result",
            outline_fields: &["type", "description"],
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serde_matches_them() {
        for t in StructureType::ALL {
            assert_eq!(StructureType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!(StructureType::parse("Course"), None);
        assert_eq!(StructureType::names().len(), 6);
    }

    #[test]
    fn level_keys_and_sections_are_the_granulators() {
        let keys =
            |t: StructureType| -> Vec<&str> { t.spec().levels.iter().map(|l| l.key).collect() };
        assert_eq!(
            keys(StructureType::Course),
            ["modules", "lessons", "activities"]
        );
        assert_eq!(keys(StructureType::Quiz), ["categories", "questions"]);
        assert_eq!(keys(StructureType::Novel), ["acts", "chapters", "scenes"]);
        assert_eq!(keys(StructureType::Workflow), ["phases", "steps", "tasks"]);
        assert_eq!(
            keys(StructureType::KnowledgeMap),
            ["concepts", "subconcepts", "details"]
        );
        assert_eq!(
            keys(StructureType::LearningPath),
            ["milestones", "skills", "activities"]
        );
        assert_eq!(StructureType::Course.spec().root_section, "courseOverview");
        assert_eq!(StructureType::Quiz.spec().levels[1].section, "assessments");
        assert_eq!(StructureType::Quiz.spec().levels[1].title_field, "question");
    }
}
