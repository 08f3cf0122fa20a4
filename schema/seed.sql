-- Default templates: one per structure type. Placeholders are documented in /help
-- ({topic}, {audience}, {granularity}, {granularity_description}, {structure_type},
-- {level_targets}, {constraints}); {{ and }} are literal braces.

INSERT INTO granulation_templates (template_name, structure_type, description, template_schema, ai_prompt_template, validation_rules, structure_rules, complexity_level, target_audience, ai_provider_config, cost_optimization) VALUES
('educational_course_basic', 'course',
 'A modular course: modules, lessons with content outlines and objectives, and practice activities.',
 '{"root":["title","description","duration","prerequisites","learningOutcomes"],"levels":["modules","lessons","activities"]}',
 'Design a complete course on {topic} for {audience}.

Detail: granularity {granularity} of 5, meaning {granularity_description}.
{level_targets}
Hard constraints: {constraints}.

Guidance:
- Order modules from foundations to mastery; each module builds on the previous one.
- Give every module a one-paragraph description, a realistic duration (for example "3 hours") and 2-4 measurable objectives that start with a verb.
- Give every lesson a contentOutline of 2-4 sentences naming the concepts, examples and misconceptions it covers, plus 1-3 objectives.
- Make activities concrete (type is one of practice, discussion, project, reading, quiz) and tied to their lesson.
- List real prerequisites (or none) and 4-6 course-level learningOutcomes.
- Use specific, distinct titles; never "Module 1" or "Introduction" alone.',
 '{"minQualityScore":0.7,"validationThreshold":75,"validationLevel":1}',
 '{"levels":[{"level":"modules","min":3,"max":12},{"level":"lessons","min":2,"max":5},{"level":"activities","min":1,"max":4}]}',
 3, 'adult learners',
 '{"preferredProvider":null,"fallbackProviders":[],"modelPreferences":{"openai":"gpt-4o-mini","anthropic":"claude-haiku-4-5"},"temperature":0.4,"maxTokens":12000}',
 '{"maxCostPerJob":0.25}'),

('quiz_assessment_standard', 'quiz',
 'An assessment: weighted categories of questions with options, answers and explanations.',
 '{"root":["title","totalQuestions","timeLimit"],"levels":["categories","questions"]}',
 'Write an assessment quiz on {topic} for {audience}.

Detail: granularity {granularity} of 5, meaning {granularity_description}.
{level_targets}
Hard constraints: {constraints}.

Guidance:
- Categories cover distinct competencies of the topic; weights are whole percentages that add up to 100.
- Mix question types (multiple_choice, true_false, short_answer); multiple_choice questions have 4 plausible options and exactly one correct answer that appears verbatim among the options.
- Every explanation says why the answer is right and why the most tempting wrong option is wrong.
- Difficulty is easy, medium or hard, with a spread inside every category; points reflect difficulty (1-3).
- totalQuestions equals the number of questions; timeLimit is in minutes (about 1.5 per question).',
 '{"minQualityScore":0.75,"validationThreshold":80,"validationLevel":1}',
 '{"levels":[{"level":"categories","min":2,"max":8},{"level":"questions","min":3,"max":10}]}',
 3, 'learners being assessed',
 '{"preferredProvider":null,"fallbackProviders":[],"modelPreferences":{"openai":"gpt-4o-mini","anthropic":"claude-haiku-4-5"},"temperature":0.3,"maxTokens":12000}',
 '{"maxCostPerJob":0.25}'),

('three_act_novel', 'novel',
 'A novel outline in three acts (setup, confrontation, resolution): chapters with purpose, point of view and setting, and scenes with conflict and outcome.',
 '{"root":["title","genre","premise","characters"],"levels":["acts","chapters","scenes"]}',
 'Outline a novel about {topic} for {audience}.

Detail: granularity {granularity} of 5, meaning {granularity_description}.
{level_targets}
Hard constraints: {constraints}.

Guidance:
- Choose a fitting genre and write a two-sentence premise with a protagonist, a goal and what stands in the way.
- List the main characters as "Name - role, want, flaw".
- Exactly three acts: setup, confrontation, resolution; each act has a purpose and a summary.
- Every chapter moves the plot or a character arc forward; give its purpose, point of view (pov) and setting.
- Every scene has a description, a purpose, the characters present, a concrete conflict and an outcome that changes something.
- Keep names, timeline and stakes consistent from the first act to the last.',
 '{"minQualityScore":0.7,"validationThreshold":70,"validationLevel":1}',
 '{"levels":[{"level":"acts","min":3,"max":3},{"level":"chapters","min":3,"max":10},{"level":"scenes","min":2,"max":5}]}',
 4, 'adult fiction readers',
 '{"preferredProvider":null,"fallbackProviders":[],"modelPreferences":{"openai":"gpt-4o-mini","anthropic":"claude-haiku-4-5"},"temperature":0.8,"maxTokens":14000}',
 '{"maxCostPerJob":0.30}'),

('business_process_standard', 'workflow',
 'A business process: phases with objectives, steps with owners, inputs, outputs and dependencies, and tasks.',
 '{"root":["title","purpose","scope"],"levels":["phases","steps","tasks"]}',
 'Map the business process for {topic}, written for {audience}.

Detail: granularity {granularity} of 5, meaning {granularity_description}.
{level_targets}
Hard constraints: {constraints}.

Guidance:
- State the purpose (the outcome the process delivers) and the scope (where it starts and ends, what is out of scope).
- Phases run in order; each has an objective and a duration.
- Every step names a responsible role (not a person), its inputs and outputs, and in dependsOn the names of the steps it needs first (empty for the first step).
- Tasks are single actions that start with a verb.
- Outputs of one step should appear as inputs of a later step where the work flows on.',
 '{"minQualityScore":0.7,"validationThreshold":75,"validationLevel":1}',
 '{"levels":[{"level":"phases","min":3,"max":7},{"level":"steps","min":2,"max":8},{"level":"tasks","min":1,"max":5}]}',
 3, 'operations teams',
 '{"preferredProvider":null,"fallbackProviders":[],"modelPreferences":{"openai":"gpt-4o-mini","anthropic":"claude-haiku-4-5"},"temperature":0.3,"maxTokens":12000}',
 '{"maxCostPerJob":0.25}'),

('concept_map_hierarchical', 'knowledge_map',
 'A knowledge map: concepts with definitions and importance, subconcepts and details, and typed relationships between concepts.',
 '{"root":["title","domain","purpose","relationships"],"levels":["concepts","subconcepts","details"]}',
 'Build a knowledge map of {topic} for {audience}.

Detail: granularity {granularity} of 5, meaning {granularity_description}.
{level_targets}
Hard constraints: {constraints}.

Guidance:
- Name the domain and the purpose of the map (what a reader can reason about afterwards).
- Concepts are the load-bearing ideas of the topic; each has a one-sentence definition and why it matters (importance).
- Subconcepts refine their concept; relationship says how (is_a, part_of, example_of, requires).
- Details are facts, formulas or examples that make a subconcept concrete.
- relationships connect concepts by their exact names, with a type such as requires, enables, contrasts_with or leads_to; include every important link.',
 '{"minQualityScore":0.7,"validationThreshold":75,"validationLevel":1}',
 '{"levels":[{"level":"concepts","min":3,"max":10},{"level":"subconcepts","min":2,"max":6},{"level":"details","min":1,"max":4}]}',
 3, 'students and practitioners',
 '{"preferredProvider":null,"fallbackProviders":[],"modelPreferences":{"openai":"gpt-4o-mini","anthropic":"claude-haiku-4-5"},"temperature":0.3,"maxTokens":12000}',
 '{"maxCostPerJob":0.25}'),

('skill_development_path', 'learning_path',
 'A learning path: milestones with objectives and durations, skills with proficiency levels, and practice activities.',
 '{"root":["title","objective","duration","prerequisites"],"levels":["milestones","skills","activities"]}',
 'Plan a learning path to master {topic} for {audience}.

Detail: granularity {granularity} of 5, meaning {granularity_description}.
{level_targets}
Hard constraints: {constraints}.

Guidance:
- State the overall objective as what the learner can do at the end, and a realistic total duration.
- Milestones are checkpoints in order of difficulty; each has an objective and a duration.
- Skills are specific and observable; proficiencyLevel is beginner, intermediate or advanced and rises along the path.
- Activities (type is practice, project, reading, course or mentoring) have a title and a description of what to do and how to tell it is done.
- List real prerequisites, or none.',
 '{"minQualityScore":0.7,"validationThreshold":75,"validationLevel":1}',
 '{"levels":[{"level":"milestones","min":3,"max":8},{"level":"skills","min":2,"max":5},{"level":"activities","min":1,"max":4}]}',
 2, 'self-directed learners',
 '{"preferredProvider":null,"fallbackProviders":[],"modelPreferences":{"openai":"gpt-4o-mini","anthropic":"claude-haiku-4-5"},"temperature":0.4,"maxTokens":12000}',
 '{"maxCostPerJob":0.25}');
