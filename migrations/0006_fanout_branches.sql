-- Parallel hierarchical generation (issue 13): a fanned-out outline is a skeleton call and one call per
-- level-1 branch. Columns are added (no table rebuild): rows written before this migration keep working.

-- Which part of the outline an attempt wrote ('skeleton', 'branch 3/8'); NULL for a single call, a repair, a review.
ALTER TABLE resource_consumption ADD COLUMN branch TEXT CHECK (branch IS NULL OR length(branch) BETWEEN 1 AND 64);
-- Branches of a fanned-out job written so far, and how many it has (0 and 0 for a single call).
ALTER TABLE granulation_jobs ADD COLUMN progress_branches_done INTEGER NOT NULL DEFAULT 0 CHECK (progress_branches_done >= 0);
ALTER TABLE granulation_jobs ADD COLUMN progress_branches_total INTEGER NOT NULL DEFAULT 0 CHECK (progress_branches_total >= 0);
