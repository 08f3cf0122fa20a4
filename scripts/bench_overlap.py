#!/usr/bin/env python3
"""How much the branches of one outline repeat each other (issue 24, item 6:
quality kept honest), for scripts/bench_fanout.py, beyond the merge's
exact-title rule (which renames a title already taken).

A branch is a level-1 node with its subtree. Two measures, both Jaccard
(shared / all) between branches only, never within one:

- Titles, at every level: each node's title as a set of normalised words
  (lower case; numbers, the structure's element words such as "module" or
  "scene", the topic's own words and common stop words dropped), compared
  with every node of the same level in another branch. Sets, not strings:
  word order and numbering ("Lesson 3.2:", "(2)" from the exact-title rule)
  neither hide a repeat nor make one. Reported per level and pooled: the mean
  pair, and the pairs at 0.8 or more (near duplicates).
- Content: every other text of a branch (outlines, summaries, key points,
  objectives...) as a set of word 3-shingles (numbers and topic words
  dropped, stop words kept: they make a phrase), compared branch with branch.
  Shingles, not single words: branches of one topic share vocabulary by
  right; a repeated passage shares phrases.

`python3 scripts/bench_overlap.py --self-test` checks the measures
(tests/scripts.sh runs it)."""
import itertools, re, sys

# (key of the level's list, its title field) per structure type, top down:
# src/types/catalog.rs.
LEVELS = {
    "course": [("modules", "title"), ("lessons", "title"), ("activities", "description")],
    "quiz": [("categories", "name"), ("questions", "question")],
    "novel": [("acts", "title"), ("chapters", "title"), ("scenes", "description")],
    "workflow": [("phases", "name"), ("steps", "name"), ("tasks", "name")],
    "knowledge_map": [("concepts", "name"), ("subconcepts", "name"), ("details", "name")],
    "learning_path": [("milestones", "name"), ("skills", "name"), ("activities", "title")],
}
ELEMENT_WORDS = {"module", "lesson", "activity", "category", "question", "act", "chapter", "scene",
                 "phase", "step", "task", "concept", "subconcept", "detail", "milestone", "skill", "part"}
STOP_WORDS = set("a an and are as at be by for from how in into is it its of on or the to what when "
                 "why with your you".split())
NEAR_DUPLICATE = 0.8


def words(text, drop):
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if not w.isdigit() and w not in drop]


def jaccard(a, b):
    union = a | b
    return len(a & b) / len(union) if union else None


def texts(value):
    """Every string inside `value` (lists and objects walked)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from texts(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from texts(v)


def branches(structure, structure_type):
    """Per branch: {level: [titles]} and its other text."""
    levels = LEVELS[structure_type]
    out = []
    for node in structure.get(levels[0][0]) or []:
        titles, content = {}, []

        def walk(n, depth):
            key, title_field = levels[depth]
            titles.setdefault(depth + 1, []).append(str(n.get(title_field, "")))
            child_key = levels[depth + 1][0] if depth + 1 < len(levels) else None
            for k, v in n.items():
                if k == title_field:
                    continue
                if k == child_key and isinstance(v, list):
                    for child in v:
                        if isinstance(child, dict):
                            walk(child, depth + 1)
                else:
                    content.extend(texts(v))

        if isinstance(node, dict):
            walk(node, 0)
            out.append((titles, " ".join(content)))
    return out


def shingles(text, drop, n=3):
    w = words(text, drop)
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}


def overlap(structure, structure_type, topic):
    """The branches' title overlap by level and pooled, and their content overlap."""
    topic_words = set(words(topic, set()))
    title_drop = STOP_WORDS | ELEMENT_WORDS | topic_words
    parts = branches(structure, structure_type)
    by_level, pooled = {}, []
    levels = sorted({level for titles, _ in parts for level in titles})
    for level in levels:
        nodes = [(b, set(words(t, title_drop))) for b, (titles, _) in enumerate(parts) for t in titles.get(level, [])]
        scores = [s for (b1, t1), (b2, t2) in itertools.combinations(nodes, 2) if b1 != b2
                  for s in [jaccard(t1, t2)] if s is not None]
        pooled += scores
        by_level[str(level)] = summary(scores)
    content = [shingles(text, topic_words) for _, text in parts]
    content_scores = [s for a, b in itertools.combinations(content, 2) for s in [jaccard(a, b)] if s is not None]
    return {"branches": len(parts), "titles": summary(pooled), "titlesByLevel": by_level,
            "content": summary(content_scores)}


def summary(scores):
    return {"pairs": len(scores),
            "mean": round(sum(scores) / len(scores), 3) if scores else None,
            "max": round(max(scores), 3) if scores else None,
            "nearDuplicates": sum(1 for s in scores if s >= NEAR_DUPLICATE)}


def self_test():
    course = {"title": "Rust", "modules": [
        {"title": "Ownership basics", "description": "Moves and copies in Rust explained with examples.",
         "lessons": [{"title": "Lesson 1.1: Borrowing rules", "contentOutline": "The borrow checker rejects two mutable borrows.",
                      "activities": [{"description": "Fix a borrow error", "type": "practice"}]}]},
        {"title": "Module 2: Basics of ownership (2)", "description": "Lifetimes name how long a reference lives.",
         "lessons": [{"title": "Lesson 2.1: Borrowing rules", "contentOutline": "The borrow checker rejects two mutable borrows.",
                      "activities": [{"description": "Write a generic function", "type": "project"}]}]},
        {"title": "Async Rust", "description": "Futures run when polled.", "lessons": []},
    ]}
    o = overlap(course, "course", "Rust")
    assert o["branches"] == 3, o
    # Level 1: "ownership basics" = "basics ownership" (numbering, order, the rename's "(2)" and
    # the element word ignored); "async" shares nothing with either.
    assert o["titlesByLevel"]["1"] == {"pairs": 3, "mean": 0.333, "max": 1.0, "nearDuplicates": 1}, o
    # Level 2: one pair across branches, the same title after its numbering.
    assert o["titlesByLevel"]["2"]["max"] == 1.0 and o["titlesByLevel"]["2"]["pairs"] == 1, o
    # Level 3: "fix borrow error" / "write generic function": nothing shared.
    assert o["titlesByLevel"]["3"] == {"pairs": 1, "mean": 0.0, "max": 0.0, "nearDuplicates": 0}, o
    assert o["titles"]["pairs"] == 5 and o["titles"]["nearDuplicates"] == 2, o
    # The repeated lesson outline is shared content; the third branch shares none.
    assert 0 < o["content"]["max"] < 1 and o["content"]["pairs"] == 3, o
    assert overlap({"modules": []}, "course", "x")["titles"]["mean"] is None
    print("bench_overlap: self-test passed")


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        self_test()
    else:
        sys.exit("usage: bench_overlap.py --self-test")
