//! The six structure types' canonical shapes, as data (contracts.md §4):
//! per type its root fields and, per level, the children key, the element
//! fields, the allowed children per parent and the content a later worker
//! writes for it. `StructureType::spec` reads this table.

use crate::types::structure::{FieldKind, FieldSpec, LevelSpec, Priority, StructureType, TypeSpec};

impl StructureType {
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

const fn text(name: &'static str, aliases: &'static [&'static str]) -> FieldSpec {
    FieldSpec {
        name,
        kind: FieldKind::Text,
        aliases,
    }
}
const fn int(name: &'static str, aliases: &'static [&'static str]) -> FieldSpec {
    FieldSpec {
        name,
        kind: FieldKind::Integer,
        aliases,
    }
}
const fn optional_list(name: &'static str, aliases: &'static [&'static str]) -> FieldSpec {
    FieldSpec {
        name,
        kind: FieldKind::OptionalList,
        aliases,
    }
}
const fn list(name: &'static str, aliases: &'static [&'static str]) -> FieldSpec {
    FieldSpec {
        name,
        kind: FieldKind::TextList,
        aliases,
    }
}

static COURSE: TypeSpec = TypeSpec {
    structure_type: StructureType::Course,
    root_fields: &[
        text("title", &["name", "courseTitle"]),
        text("description", &["summary", "overview"]),
        text("duration", &["totalDuration", "length"]),
        optional_list("prerequisites", &["requirements"]),
        list(
            "learningOutcomes",
            &["outcomes", "learning_outcomes", "objectives"],
        ),
    ],
    levels: &[
        LevelSpec {
            key: "modules",
            element_type: "module",
            aliases: &["units", "sections", "chapters"],
            title_field: "title",
            outline_field: "description",
            fields: &[
                text("title", &["name"]),
                text("description", &["summary", "overview"]),
                text("duration", &["length", "estimatedDuration"]),
                list("objectives", &["learningObjectives", "goals"]),
            ],
            min: 3,
            max: 12,
            words: 300,
            section: "moduleIntroductions",
            priority: Priority::Medium,
            content_type: "introduction",
            output_tokens: 70,
        },
        LevelSpec {
            key: "lessons",
            element_type: "lesson",
            aliases: &["topics", "lectures"],
            title_field: "title",
            outline_field: "contentOutline",
            fields: &[
                text("title", &["name"]),
                text(
                    "contentOutline",
                    &["content_outline", "outline", "description", "summary"],
                ),
                list("objectives", &["learningObjectives", "goals"]),
            ],
            min: 2,
            max: 5,
            words: 1200,
            section: "lessonContent",
            priority: Priority::High,
            content_type: "instructional",
            output_tokens: 80,
        },
        LevelSpec {
            key: "activities",
            element_type: "activity",
            aliases: &["exercises", "tasks"],
            title_field: "description",
            outline_field: "description",
            fields: &[
                text("type", &["kind", "activityType"]),
                text("description", &["title", "name", "summary"]),
            ],
            min: 1,
            max: 4,
            words: 250,
            section: "exercises",
            priority: Priority::Medium,
            content_type: "exercise",
            output_tokens: 35,
        },
    ],
    root_words: 400,
    root_section: "courseOverview",
    tone: "instructional, encouraging",
};

static QUIZ: TypeSpec = TypeSpec {
    structure_type: StructureType::Quiz,
    root_fields: &[
        text("title", &["name", "quizTitle"]),
        int("totalQuestions", &["total_questions", "questionCount"]),
        int("timeLimit", &["time_limit", "timeLimitMinutes", "duration"]),
    ],
    levels: &[
        LevelSpec {
            key: "categories",
            element_type: "category",
            aliases: &["sections", "topics"],
            title_field: "name",
            outline_field: "description",
            fields: &[
                text("name", &["title"]),
                int("weight", &["percentage"]),
                text("description", &["summary"]),
            ],
            min: 2,
            max: 8,
            words: 60,
            section: "categoryIntroductions",
            priority: Priority::Low,
            content_type: "introduction",
            output_tokens: 40,
        },
        LevelSpec {
            key: "questions",
            element_type: "question",
            aliases: &["items"],
            title_field: "question",
            outline_field: "explanation",
            fields: &[
                text("question", &["text", "prompt", "title"]),
                text("type", &["questionType", "kind"]),
                list("options", &["choices", "answers"]),
                text("answer", &["correctAnswer", "correct_answer", "solution"]),
                text("explanation", &["rationale"]),
                int("points", &["score"]),
                text("difficulty", &["level"]),
            ],
            min: 3,
            max: 10,
            words: 150,
            section: "assessments",
            priority: Priority::High,
            content_type: "assessment",
            output_tokens: 110,
        },
    ],
    root_words: 150,
    root_section: "quizInstructions",
    tone: "clear, neutral",
};

static NOVEL: TypeSpec = TypeSpec {
    structure_type: StructureType::Novel,
    root_fields: &[
        text("title", &["name"]),
        text("genre", &[]),
        text("premise", &["logline", "synopsis", "summary"]),
        list("characters", &["mainCharacters", "cast"]),
    ],
    levels: &[
        LevelSpec {
            key: "acts",
            element_type: "act",
            aliases: &["parts"],
            title_field: "title",
            outline_field: "summary",
            fields: &[
                text("title", &["name"]),
                text("purpose", &["goal"]),
                text("summary", &["description"]),
            ],
            min: 3,
            max: 5,
            words: 200,
            section: "actSummaries",
            priority: Priority::Low,
            content_type: "summary",
            output_tokens: 60,
        },
        LevelSpec {
            key: "chapters",
            element_type: "chapter",
            aliases: &["sections"],
            title_field: "title",
            outline_field: "summary",
            fields: &[
                text("title", &["name"]),
                text("summary", &["description"]),
                text("purpose", &["goal"]),
                text("pov", &["pointOfView", "point_of_view"]),
                text("setting", &["location"]),
            ],
            min: 3,
            max: 10,
            words: 600,
            section: "chapterBridges",
            priority: Priority::Medium,
            content_type: "narrative",
            output_tokens: 90,
        },
        LevelSpec {
            key: "scenes",
            element_type: "scene",
            aliases: &["beats"],
            title_field: "description",
            outline_field: "description",
            fields: &[
                text("description", &["title", "summary"]),
                text("purpose", &["goal"]),
                list("characters", &["cast"]),
                text("conflict", &["tension"]),
                text("outcome", &["result", "resolution"]),
            ],
            min: 2,
            max: 5,
            words: 1500,
            section: "sceneContent",
            priority: Priority::High,
            content_type: "narrative",
            output_tokens: 90,
        },
    ],
    root_words: 500,
    root_section: "storyBible",
    tone: "literary, vivid",
};

static WORKFLOW: TypeSpec = TypeSpec {
    structure_type: StructureType::Workflow,
    root_fields: &[
        text("title", &["name"]),
        text("purpose", &["objective", "goal", "description"]),
        text("scope", &[]),
    ],
    levels: &[
        LevelSpec {
            key: "phases",
            element_type: "phase",
            aliases: &["stages"],
            title_field: "name",
            outline_field: "objective",
            fields: &[
                text("name", &["title"]),
                text("objective", &["goal", "description"]),
                text("duration", &["length"]),
            ],
            min: 3,
            max: 7,
            words: 200,
            section: "phaseOverviews",
            priority: Priority::Medium,
            content_type: "overview",
            output_tokens: 50,
        },
        LevelSpec {
            key: "steps",
            element_type: "step",
            aliases: &["activities"],
            title_field: "name",
            outline_field: "description",
            fields: &[
                text("name", &["title"]),
                text("description", &["summary"]),
                text("responsible", &["owner", "role"]),
                list("inputs", &[]),
                list("outputs", &["deliverables"]),
                optional_list("dependsOn", &["depends_on", "dependencies"]),
            ],
            min: 2,
            max: 8,
            words: 400,
            section: "stepInstructions",
            priority: Priority::High,
            content_type: "procedure",
            output_tokens: 110,
        },
        LevelSpec {
            key: "tasks",
            element_type: "task",
            aliases: &["actions"],
            title_field: "name",
            outline_field: "description",
            fields: &[text("name", &["title"]), text("description", &["summary"])],
            min: 1,
            max: 5,
            words: 120,
            section: "taskChecklists",
            priority: Priority::Medium,
            content_type: "checklist",
            output_tokens: 35,
        },
    ],
    root_words: 300,
    root_section: "processOverview",
    tone: "precise, operational",
};

static KNOWLEDGE_MAP: TypeSpec = TypeSpec {
    structure_type: StructureType::KnowledgeMap,
    root_fields: &[
        text("title", &["name"]),
        text("domain", &["field", "subject"]),
        text("purpose", &["objective", "description"]),
        FieldSpec {
            name: "relationships",
            kind: FieldKind::Relationships,
            aliases: &["links", "edges"],
        },
    ],
    levels: &[
        LevelSpec {
            key: "concepts",
            element_type: "concept",
            aliases: &["nodes", "topics"],
            title_field: "name",
            outline_field: "definition",
            fields: &[
                text("name", &["title"]),
                text("definition", &["description"]),
                text("importance", &["significance"]),
            ],
            min: 3,
            max: 10,
            words: 350,
            section: "conceptExplanations",
            priority: Priority::High,
            content_type: "explanation",
            output_tokens: 60,
        },
        LevelSpec {
            key: "subconcepts",
            element_type: "subconcept",
            aliases: &["children", "subtopics"],
            title_field: "name",
            outline_field: "definition",
            fields: &[
                text("name", &["title"]),
                text("definition", &["description"]),
                text("relationship", &["relation"]),
            ],
            min: 2,
            max: 6,
            words: 200,
            section: "subconceptExplanations",
            priority: Priority::Medium,
            content_type: "explanation",
            output_tokens: 55,
        },
        LevelSpec {
            key: "details",
            element_type: "detail",
            aliases: &["facts", "examples"],
            title_field: "name",
            outline_field: "description",
            fields: &[text("name", &["title"]), text("description", &["summary"])],
            min: 1,
            max: 4,
            words: 100,
            section: "details",
            priority: Priority::Low,
            content_type: "example",
            output_tokens: 35,
        },
    ],
    root_words: 250,
    root_section: "domainOverview",
    tone: "explanatory, precise",
};

static LEARNING_PATH: TypeSpec = TypeSpec {
    structure_type: StructureType::LearningPath,
    root_fields: &[
        text("title", &["name"]),
        text("objective", &["goal", "purpose", "description"]),
        text("duration", &["totalDuration", "length"]),
        optional_list("prerequisites", &["requirements"]),
    ],
    levels: &[
        LevelSpec {
            key: "milestones",
            element_type: "milestone",
            aliases: &["stages", "phases"],
            title_field: "name",
            outline_field: "objective",
            fields: &[
                text("name", &["title"]),
                text("objective", &["goal", "description"]),
                text("duration", &["length"]),
            ],
            min: 3,
            max: 8,
            words: 250,
            section: "milestoneOverviews",
            priority: Priority::Medium,
            content_type: "overview",
            output_tokens: 50,
        },
        LevelSpec {
            key: "skills",
            element_type: "skill",
            aliases: &["competencies"],
            title_field: "name",
            outline_field: "description",
            fields: &[
                text("name", &["title"]),
                text("description", &["summary"]),
                text(
                    "proficiencyLevel",
                    &["proficiency", "level", "proficiency_level"],
                ),
            ],
            min: 2,
            max: 5,
            words: 500,
            section: "skillGuides",
            priority: Priority::High,
            content_type: "instructional",
            output_tokens: 60,
        },
        LevelSpec {
            key: "activities",
            element_type: "activity",
            aliases: &["exercises", "resources"],
            title_field: "title",
            outline_field: "description",
            fields: &[
                text("type", &["kind"]),
                text("title", &["name"]),
                text("description", &["summary"]),
            ],
            min: 1,
            max: 4,
            words: 200,
            section: "practiceActivities",
            priority: Priority::Medium,
            content_type: "exercise",
            output_tokens: 40,
        },
    ],
    root_words: 300,
    root_section: "pathOverview",
    tone: "motivating, practical",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::structure::Granularity;

    #[test]
    fn higher_granularity_never_shallower_or_smaller() {
        for t in StructureType::ALL {
            let spec = t.spec();
            let mut previous = (0, 0);
            for g in 1..=5 {
                let g = Granularity::new(g).unwrap();
                let now = (g.depth(spec), spec.expected_elements(g));
                assert!(
                    now.0 >= previous.0 && now.1 > previous.1,
                    "{t} at {g:?}: {now:?} after {previous:?}"
                );
                previous = now;
            }
        }
    }

    #[test]
    fn targets_stay_inside_level_rules() {
        for t in StructureType::ALL {
            for level in t.spec().levels {
                for g in 1..=5 {
                    let target = level.target(Granularity::new(g).unwrap());
                    assert!(
                        (level.min..=level.max).contains(&target),
                        "{t}/{}: {target}",
                        level.key
                    );
                }
            }
        }
    }

    #[test]
    fn level_rules_match_contracts() {
        let rules: Vec<(&str, u32, u32)> = StructureType::Course
            .spec()
            .levels
            .iter()
            .map(|l| (l.key, l.min, l.max))
            .collect();
        assert_eq!(
            rules,
            vec![("modules", 3, 12), ("lessons", 2, 5), ("activities", 1, 4)]
        );
        assert_eq!(StructureType::Quiz.spec().levels.len(), 2);
    }
}
