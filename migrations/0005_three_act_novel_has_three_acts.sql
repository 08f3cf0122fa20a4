-- The three_act_novel template promised three acts but allowed three to five
-- (and asked for four at granularity 3 and above): it now gives exactly three.
UPDATE granulation_templates
SET description = 'A novel outline in three acts (setup, confrontation, resolution): chapters with purpose, point of view and setting, and scenes with conflict and outcome.',
    ai_prompt_template = replace(ai_prompt_template,
      '- Acts follow a rising structure: setup, confrontation, resolution (extra acts deepen the middle); each act has a purpose and a summary.',
      '- Exactly three acts: setup, confrontation, resolution; each act has a purpose and a summary.'),
    structure_rules = '{"levels":[{"level":"acts","min":3,"max":3},{"level":"chapters","min":3,"max":10},{"level":"scenes","min":2,"max":5}]}'
WHERE template_name = 'three_act_novel';
