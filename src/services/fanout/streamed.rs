//! The skeleton as it streams (issue 24, item 2): fed the skeleton call's
//! text as it arrives, it tells which branches can start before the call
//! ends. A branch prompt carries every level-1 title (what keeps branches
//! apart) and its own node's summary (and child titles, for a part), so a
//! node is ready once **all** the titles are in and pass the skeleton's
//! checks (exactly the target count, distinct, none empty) and its own
//! summary has arrived; the schema asks for the titles first for that
//! (ADR 0013). The whole answer, checked when the call ends, stays the
//! authority: a branch started from a stream whose answer then fails is
//! dropped by the run.

use super::{Skeleton, SUMMARIES, SUMMARY, TITLE};
use crate::services::normalize::normalize;
use crate::services::partial::LevelOneScanner;
use crate::types::structure::StructureType;
use serde_json::{json, Map, Value};
use std::collections::HashSet;

pub struct StreamedSkeleton {
    structure_type: StructureType,
    counts: Vec<u32>,
    /// Parts each node is written in: above 1, the skeleton lists child titles.
    parts: usize,
    /// The level-1 titles' array, and `summaries`.
    titles: LevelOneScanner,
    details: LevelOneScanner,
    items: Vec<Value>,
    summaries: Vec<Value>,
}

impl StreamedSkeleton {
    pub fn new(structure_type: StructureType, counts: &[u32], parts: usize) -> StreamedSkeleton {
        let level = &structure_type.spec().levels[0];
        StreamedSkeleton {
            structure_type,
            counts: counts.to_vec(),
            parts,
            titles: LevelOneScanner::new(&[level.key, level.element_type]),
            details: LevelOneScanner::new(&[SUMMARIES]),
            items: Vec::new(),
            summaries: Vec::new(),
        }
    }

    /// Read the next piece of the skeleton's answer.
    pub fn feed(&mut self, text: &str) {
        let parse = |(_, json): (usize, String)| serde_json::from_str(&json).unwrap_or(Value::Null);
        self.items
            .extend(self.titles.feed(text).into_iter().map(parse));
        self.summaries
            .extend(self.details.feed(text).into_iter().map(parse));
    }

    /// The skeleton so far, once every level-1 title is in and passes the
    /// checks (else `None`), and how many of its nodes, from the first, are
    /// ready: their summary is in (and their child titles, exactly as many as
    /// asked and distinct from every title before them, when written in
    /// parts). Nodes past the ready ones have an empty summary. Titles and
    /// summaries are read as [`super::check_skeleton`] reads them, so a
    /// prompt made from this is the one the checked answer makes.
    pub fn known(&self) -> Option<(Skeleton, usize)> {
        let st = self.structure_type;
        let spec = st.spec();
        let level = &spec.levels[0];
        let n = self.counts.first().copied().unwrap_or(0) as usize;
        if !self.titles.closed() || self.items.len() != n {
            return None;
        }
        // Each node with what `summaries` said of it so far.
        let nodes: Vec<Value> = self
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut node = item.clone();
                if let (Some(node), Some(detail)) = (
                    node.as_object_mut(),
                    self.summaries.get(i).and_then(Value::as_object),
                ) {
                    for (k, v) in detail {
                        node.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                node
            })
            .collect();
        let outline = normalize(st, &json!({TITLE: "", level.key: nodes})).ok()?;
        let titles: Vec<String> = outline
            .items
            .iter()
            .map(|i| i.title().trim().to_string())
            .collect();
        let mut seen = HashSet::new();
        if titles.len() != n
            || titles
                .iter()
                .any(|t| t.is_empty() || !seen.insert(t.to_lowercase()))
        {
            return None;
        }
        let split = self.parts > 1;
        let child = spec.levels.get(1).filter(|_| split);
        let mut ready = 0;
        let mut children = Vec::new();
        for (i, item) in outline.items.iter().enumerate() {
            let has_summary = nodes[i].get(SUMMARY).is_some_and(Value::is_string);
            let has_children = child.is_none_or(|c| nodes[i].get(c.key).is_some());
            if !has_summary || !has_children {
                break;
            }
            if child.is_some() {
                let c: Vec<String> = item
                    .children
                    .iter()
                    .map(|c| c.title().trim().to_string())
                    .collect();
                let want = self.counts.get(1).copied().unwrap_or(0) as usize;
                if c.len() != want
                    || c.iter()
                        .any(|t| t.is_empty() || !seen.insert(t.to_lowercase()))
                {
                    break;
                }
                children.push(c);
            }
            ready = i + 1;
        }
        if child.is_some() {
            children.resize(n, Vec::new());
        }
        let nodes = titles
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let summary = match i < ready {
                    true => nodes[i][SUMMARY].as_str().unwrap_or("").trim().to_string(),
                    false => String::new(),
                };
                (t, summary)
            })
            .collect();
        let skeleton = Skeleton {
            root: Map::new(),
            nodes,
            children,
        };
        Some((skeleton, ready))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{check_skeleton, skeleton_of};
    use super::*;

    /// A course skeleton as the schema asks for it: titles, summaries, title.
    fn course(titles: &[&str], summaries: &[&str]) -> String {
        let items: Vec<Value> = titles.iter().map(|t| json!({"title": t})).collect();
        let details: Vec<Value> = summaries.iter().map(|s| json!({"summary": s})).collect();
        format!(
            r#"{{"modules": {}, "summaries": {}, "title": "Rust"}}"#,
            Value::Array(items),
            Value::Array(details)
        )
    }

    fn fed(st: StructureType, counts: &[u32], text: &str) -> StreamedSkeleton {
        // Written in parts only where a node has children to split.
        let parts = counts.get(1).copied().unwrap_or(1) as usize;
        let mut s = StreamedSkeleton::new(st, counts, parts);
        s.feed(text);
        s
    }

    #[test]
    fn nothing_is_ready_before_every_title_is_in_then_each_node_with_its_summary() {
        let st = StructureType::Course;
        let text = course(&["A", "B", "C"], &["a", "b", "c"]);
        // One lesson each: nothing written in parts.
        let counts = [3, 1];
        let at = |needle: &str| text.find(needle).unwrap();
        // Two titles in: the third could still repeat one of them.
        assert!(fed(st, &counts, &text[..at("\"C\"")]).known().is_none());
        // Every title, no summary yet: the skeleton is known, no node ready.
        let (skeleton, ready) = fed(st, &counts, &text[..at("\"summaries\"")])
            .known()
            .unwrap();
        assert_eq!(ready, 0);
        let titles: Vec<&str> = skeleton.nodes.iter().map(|n| n.0.as_str()).collect();
        assert_eq!(titles, ["A", "B", "C"]);
        // Fed in small pieces: the first summary makes the first node ready.
        let mut s = StreamedSkeleton::new(st, &counts, 1);
        let cut = at("\"b\"");
        for chunk in text.as_bytes()[..cut].chunks(3) {
            s.feed(std::str::from_utf8(chunk).unwrap());
        }
        let (skeleton, ready) = s.known().unwrap();
        assert_eq!(ready, 1);
        assert_eq!(skeleton.nodes[0], ("A".into(), "a".into()));
        assert_eq!(skeleton.nodes[1], ("B".into(), String::new()));
        s.feed(&text[cut..]);
        assert_eq!(s.known().unwrap().1, 3);
    }

    #[test]
    fn the_known_skeleton_is_the_checked_answers_for_every_ready_node() {
        let st = StructureType::Course;
        let text = course(&[" A ", "B", "C"], &["  a", "b", "c"]);
        let (streamed, ready) = fed(st, &[3, 1], &text).known().unwrap();
        let raw: Value = serde_json::from_str(&text).unwrap();
        let checked = skeleton_of(st, &check_skeleton(st, &[3, 1], 1, &raw).unwrap());
        assert_eq!(ready, 3);
        assert_eq!(streamed.nodes, checked.nodes);
        assert_eq!(streamed.children, checked.children);
    }

    #[test]
    fn titles_of_the_wrong_count_or_repeated_start_nothing() {
        let st = StructureType::Course;
        let text = course(&["A", "B"], &["a", "b"]);
        assert!(fed(st, &[3, 1], &text).known().is_none());
        let text = course(&["A", "B", "a "], &["a", "b", "c"]);
        assert!(fed(st, &[3, 1], &text).known().is_none());
        let text = course(&["A", "", "C"], &["a", "b", "c"]);
        assert!(fed(st, &[3, 1], &text).known().is_none());
    }

    #[test]
    fn a_part_is_ready_with_its_child_titles_and_a_repeated_one_stops_the_nodes_after_it() {
        let st = StructureType::Novel;
        let counts = [3, 2, 4];
        let act = |s: &str, c: [&str; 2]| json!({"summary": s, "chapters": [{"title": c[0]}, {"title": c[1]}]});
        let text = json!({
            "acts": [{"title": "One"}, {"title": "Two"}, {"title": "Three"}],
            "summaries": [act("s1", ["c1", "c2"]), act("s2", ["c3", "C1"]), act("s3", ["c5", "c6"])],
        })
        .to_string();
        let (skeleton, ready) = fed(st, &counts, &text).known().unwrap();
        assert_eq!(ready, 1, "act 2 repeats a chapter title of act 1");
        assert_eq!(skeleton.children[0], ["c1", "c2"]);
        assert!(skeleton.children[1].is_empty());
        // The checked answer fails for the same reason: the job asks again.
        let raw: Value = serde_json::from_str(&text).unwrap();
        assert!(check_skeleton(st, &counts, 2, &raw).is_err());
    }

    #[test]
    fn summaries_inside_the_nodes_are_read_too() {
        let st = StructureType::Course;
        let text = r#"{"title": "Rust", "modules": [{"title": "A", "summary": "a"}, {"title": "B", "summary": "b"}]}"#;
        let (skeleton, ready) = fed(st, &[2, 1], text).known().unwrap();
        assert_eq!((ready, skeleton.nodes[1].1.as_str()), (2, "b"));
    }

    #[test]
    fn summaries_not_one_per_title_fail_the_checked_skeleton() {
        let st = StructureType::Course;
        let raw: Value = serde_json::from_str(&course(&["A", "B"], &["a"])).unwrap();
        let problems = check_skeleton(st, &[2, 1], 1, &raw).unwrap_err();
        assert!(
            problems[0].contains("`summaries` must have exactly 2"),
            "{problems:?}"
        );
    }
}
