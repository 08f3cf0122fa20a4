//! Partial results (issue 24), the pure part: a level-1 branch that has
//! passed its checks as it is shown before its job ends, and the running
//! job's view of them (`GET /api/jobs/{id}/structure` with `complete: false`),
//! and the scanner that finds a single call's level-1 nodes in its stream.

mod scan;

pub use scan::LevelOneScanner;

use crate::types::job::PartialBranch;
use crate::types::outline::Node;

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
    use crate::types::structure::StructureType;
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
    fn a_branch_too_large_to_store_is_not_shown_early() {
        let mut node = Node::new(StructureType::Course, 0);
        node.set_title("x".repeat(MAX_PARTIAL_BRANCH_BYTES + 1));
        assert!(partial_branch(0, 1, &node).is_none());
    }
}
