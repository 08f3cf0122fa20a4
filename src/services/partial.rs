//! Partial results (issue 24), the pure part: a level-1 branch that has
//! passed its checks as it is shown before its job ends, and the running
//! job's view of them (`GET /api/jobs/{id}/structure` with `complete: false`),
//! and the scanner that finds a single call's level-1 nodes in its stream.

mod scan;

pub use scan::LevelOneScanner;

use crate::services::fanout::check_streamed_node;
use crate::services::progress::Progress;
use crate::types::job::PartialBranch;
use crate::types::outline::Node;
use crate::types::rules::StructureRules;
use crate::types::structure::StructureType;

/// The largest branch shown before its job ends (its canonical JSON), well
/// below D1's 2 MB a row (the JSON is a bound value, so D1's 100 KB a
/// statement does not apply to it). A larger branch, past what one call
/// writes today, is shown only with the whole outline.
pub const MAX_PARTIAL_BRANCH_BYTES: usize = 1_000_000;

/// Level-1 node `index` (0-based) of `total`, as it is shown; `None` when
/// it is too large to store.
pub fn partial_branch(index: usize, total: usize, node: &Node) -> Option<PartialBranch> {
    let value = node.to_value();
    if value.to_string().len() > MAX_PARTIAL_BRANCH_BYTES {
        return None;
    }
    Some(PartialBranch {
        position: index as u32 + 1,
        total: total as u32,
        title: node.title().to_string(),
        node: value,
    })
}

/// A single call's level-1 nodes as its answer streams: the text its
/// `Progress` keeps is scanned from where the last read stopped (from the
/// start again when a new call began: a retry's nodes replace the shown
/// ones), and each node that closed and passes its checks is returned.
pub struct StreamedNodes {
    structure_type: StructureType,
    counts: Vec<u32>,
    rules: StructureRules,
    call: u64,
    read: usize,
    scanner: LevelOneScanner,
}

impl StreamedNodes {
    pub fn new(structure_type: StructureType, counts: &[u32], rules: &StructureRules) -> Self {
        StreamedNodes {
            structure_type,
            counts: counts.to_vec(),
            rules: rules.clone(),
            call: 0,
            read: 0,
            scanner: Self::scanner(structure_type),
        }
    }

    fn scanner(st: StructureType) -> LevelOneScanner {
        let level = &st.spec().levels[0];
        LevelOneScanner::new(&[level.key, level.element_type])
    }

    /// The nodes that closed since the last read and pass their checks.
    pub fn read(&mut self, progress: &Progress) -> Vec<PartialBranch> {
        let (call, _) = progress.text_since(usize::MAX);
        if call != self.call {
            self.call = call;
            self.read = 0;
            self.scanner = Self::scanner(self.structure_type);
        }
        let (_, text) = progress.text_since(self.read);
        self.read += text.len();
        let total = self.counts.first().copied().unwrap_or(0) as usize;
        self.scanner
            .feed(&text)
            .into_iter()
            .filter_map(|(i, json)| {
                let raw = serde_json::from_str(&json).ok()?;
                let node =
                    check_streamed_node(self.structure_type, &self.counts, &self.rules, &raw)
                        .ok()?;
                partial_branch(i, total.max(i + 1), &node)
            })
            .collect()
    }
}

/// The branches of a running job in skeleton order, from its rows as they
/// were written (row id, branch): a position written again shows its
/// latest branch.
pub fn in_order(mut rows: Vec<(i64, PartialBranch)>) -> Vec<PartialBranch> {
    rows.sort_by_key(|(id, b)| (b.position, std::cmp::Reverse(*id)));
    rows.dedup_by_key(|(_, b)| b.position);
    rows.into_iter().map(|(_, b)| b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn branch(position: u32, title: &str) -> PartialBranch {
        PartialBranch {
            position,
            total: 5,
            title: title.into(),
            node: json!({"title": title}),
        }
    }

    #[test]
    fn the_view_is_in_skeleton_order_with_the_latest_branch_of_a_position() {
        let rows = vec![
            (1, branch(4, "Four")),
            (2, branch(2, "Two")),
            (3, branch(5, "Five")),
            (4, branch(2, "Two, written again")),
        ];
        let view = in_order(rows);
        let seen: Vec<(u32, &str)> = view
            .iter()
            .map(|b| (b.position, b.title.as_str()))
            .collect();
        assert_eq!(seen, [(2, "Two, written again"), (4, "Four"), (5, "Five")]);
        assert!(in_order(vec![]).is_empty());
    }

    #[test]
    fn a_branch_is_shown_with_its_1_based_position_title_and_canonical_subtree() {
        let mut node = Node::new(StructureType::Course, 0);
        node.set_title("Ownership".into());
        let b = partial_branch(2, 8, &node).unwrap();
        assert_eq!((b.position, b.total, b.title.as_str()), (3, 8, "Ownership"));
        assert_eq!(b.node, node.to_value());
        assert_eq!(b.node["title"], "Ownership");
    }

    #[test]
    fn a_single_calls_nodes_are_shown_as_they_close_and_a_new_call_starts_again() {
        let st = StructureType::Course;
        let counts = [2, 2];
        let rules = StructureRules::contract(st);
        let lesson = |t: &str| json!({"title": t, "content": "c", "duration": "5 minutes"});
        let module = |t: &str| json!({"title": t, "lessons": [lesson("a"), lesson("b")]});
        let text = json!({"title": "T", "modules": [module("One"), module("Two")]}).to_string();
        let cut = text.find("Two").unwrap();
        let p = Progress::default();
        p.keep_text(true);
        let mut nodes = StreamedNodes::new(st, &counts, &rules);
        p.push_text(&text[..cut]);
        let first = nodes.read(&p);
        assert_eq!(first.len(), 1);
        assert_eq!(
            (first[0].position, first[0].total, first[0].title.as_str()),
            (1, 2, "One")
        );
        assert!(nodes.read(&p).is_empty(), "each node once");
        p.push_text(&text[cut..]);
        let second = nodes.read(&p);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].position, 2);
        // A retry: the counter is reset and the nodes come again from the first.
        p.reset();
        p.push_text(&text);
        let again: Vec<u32> = nodes.read(&p).iter().map(|b| b.position).collect();
        assert_eq!(again, [1, 2]);
    }

    #[test]
    fn a_streamed_node_outside_the_level_rules_is_not_shown() {
        let st = StructureType::Course;
        let rules = StructureRules::contract(st);
        // One lesson where the rules want at least two.
        let text =
            json!({"title": "T", "modules": [{"title": "One", "lessons": [{"title": "a"}]}]})
                .to_string();
        let p = Progress::default();
        p.keep_text(true);
        p.push_text(&text);
        assert!(StreamedNodes::new(st, &[1, 2], &rules).read(&p).is_empty());
    }

    #[test]
    fn a_branch_too_large_to_store_is_not_shown_early() {
        let mut node = Node::new(StructureType::Course, 0);
        node.set_title("x".repeat(MAX_PARTIAL_BRANCH_BYTES + 1));
        assert!(partial_branch(0, 1, &node).is_none());
    }
}
