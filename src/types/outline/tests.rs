//! The typed outline against its canonical JSON: reading, writing, refusing.

use super::*;
use serde_json::json;

fn course() -> Value {
    json!({"description": "d", "duration": "2 weeks", "learningOutcomes": ["x"], "modules": [
        {"description": "m", "duration": "1h", "lessons": [
            {"contentOutline": "o", "objectives": [], "title": "L"}
        ], "objectives": ["a"], "title": "M"}
    ], "prerequisites": [], "title": "T"})
}

#[test]
fn canonical_json_reads_and_writes_back_identically() {
    let value = course();
    let outline = Outline::from_canonical(StructureType::Course, &value).unwrap();
    assert_eq!(outline.title(), "T");
    assert_eq!(outline.items[0].title(), "M");
    assert_eq!(outline.items[0].children[0].text("contentOutline"), "o");
    assert_eq!(outline.counts_per_level(), vec![1, 1, 0]);
    assert_eq!(serde_json::to_string(&outline).unwrap(), value.to_string());
    assert_eq!(outline.to_value(), value);
    assert_eq!(serde_json::to_value(&outline).unwrap(), value);
}

#[test]
fn relationships_write_from_to_type() {
    let value = json!({"concepts": [{"definition": "", "importance": "", "name": "a"}],
        "domain": "", "purpose": "", "relationships": [{"from": "a", "to": "b", "type": "uses"}], "title": "m"});
    let outline = Outline::from_canonical(StructureType::KnowledgeMap, &value).unwrap();
    assert_eq!(serde_json::to_string(&outline).unwrap(), value.to_string());
}

#[test]
fn from_canonical_refuses_a_wrong_shape() {
    let refused = |mutate: &dyn Fn(&mut Value)| {
        let mut v = course();
        mutate(&mut v);
        Outline::from_canonical(StructureType::Course, &v).unwrap_err()
    };
    assert_eq!(
        refused(&|v| v["extra"] = json!(1)),
        "root has an unknown field `extra`"
    );
    assert!(refused(&|v| v["title"] = json!(3)).starts_with("root.title"));
    assert!(refused(&|v| {
        v.as_object_mut().unwrap().remove("modules");
    })
    .starts_with("root.modules must be an array"));
    assert!(refused(&|v| v["modules"][0]["objectives"] = json!("a"))
        .starts_with("modules[0].objectives"));
    assert!(
        refused(&|v| v["modules"][0]["lessons"][0]["activities"] = json!([{"type": 1}]))
            .starts_with("modules[0].lessons[0].activities[0]")
    );
    assert!(
        refused(&|v| v["modules"][0]["lessons"] = json!([])).contains("must be a non-empty array")
    );
    assert!(Outline::from_canonical(StructureType::Quiz, &course()).is_err());
    assert!(Outline::from_canonical(StructureType::Course, &json!([])).is_err());
}

#[test]
fn accessors_and_walk() {
    let mut outline = Outline::from_canonical(StructureType::Course, &course()).unwrap();
    assert_eq!(outline.list("learningOutcomes"), ["x".to_string()]);
    outline.items[0].set_title("N".into());
    assert_eq!(outline.items[0].title(), "N");
    let titles: Vec<&str> = outline.walk().map(Node::title).collect();
    assert_eq!(titles, ["N", "L"]);
    assert_eq!(outline.element_count(), 2);
    assert_eq!(outline.items[0].fields_value()["title"], "N");
    assert!(outline.items[0].fields_value().get("lessons").is_none());
}
