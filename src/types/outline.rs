//! The canonical outline, typed: one tree for all six structure types.
//!
//! The type's spec (`types::catalog`) says which fields each level holds, so
//! an outline is its root's field values and a list of nodes, each node its
//! level's field values (in the spec's order) and its children. Normalisation
//! produces it; rules, scoring, element rows and the envelope read it; JSON
//! exists only at the edges: `to_value` (and `Serialize`, through it) makes
//! exactly the canonical JSON (keys in `serde_json::Map` order, a node's empty
//! child list left out), and `Outline::from_canonical` reads stored canonical
//! JSON back, refusing anything else. (A serializer writing the tree directly,
//! keys sorted, cost 3 KB of gzipped wasm; through a `Value` is what the
//! pipeline did before the outline was typed.)

use crate::types::structure::{FieldKind, FieldSpec, LevelSpec, StructureType, TypeSpec};
use serde::ser::{Serialize, Serializer};
use serde_json::{Map, Value};

/// A knowledge map's edge (`{"from", "to", "type"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    pub from: String,
    pub to: String,
    pub kind: String,
}

/// One field's value; its variant follows the field's `FieldKind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    Text(String),
    Integer(i64),
    /// `TextList` and `OptionalList`.
    List(Vec<String>),
    Relationships(Vec<Relationship>),
}

impl FieldValue {
    /// The value a field has when nothing was said about it.
    pub fn empty(kind: FieldKind) -> FieldValue {
        match kind {
            FieldKind::Text => FieldValue::Text(String::new()),
            FieldKind::Integer => FieldValue::Integer(0),
            FieldKind::TextList | FieldKind::OptionalList => FieldValue::List(Vec::new()),
            FieldKind::Relationships => FieldValue::Relationships(Vec::new()),
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            FieldValue::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_integer(&self) -> Option<i64> {
        match self {
            FieldValue::Integer(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[String]> {
        match self {
            FieldValue::List(items) => Some(items),
            _ => None,
        }
    }

    fn fits(&self, kind: FieldKind) -> bool {
        matches!(
            (self, kind),
            (FieldValue::Text(_), FieldKind::Text)
                | (FieldValue::Integer(_), FieldKind::Integer)
                | (
                    FieldValue::List(_),
                    FieldKind::TextList | FieldKind::OptionalList
                )
                | (FieldValue::Relationships(_), FieldKind::Relationships)
        )
    }

    /// Strict reading of one canonical value of `kind`.
    fn from_canonical(kind: FieldKind, value: &Value) -> Option<FieldValue> {
        Some(match kind {
            FieldKind::Text => FieldValue::Text(value.as_str()?.to_string()),
            FieldKind::Integer => FieldValue::Integer(value.as_i64()?),
            FieldKind::TextList | FieldKind::OptionalList => FieldValue::List(
                value
                    .as_array()?
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<_>>()?,
            ),
            FieldKind::Relationships => FieldValue::Relationships(
                value
                    .as_array()?
                    .iter()
                    .map(|edge| {
                        let o = edge.as_object()?;
                        let text = |k: &str| o.get(k)?.as_str().map(str::to_string);
                        (o.len() == 3).then_some(())?;
                        Some(Relationship {
                            from: text("from")?,
                            to: text("to")?,
                            kind: text("type")?,
                        })
                    })
                    .collect::<Option<_>>()?,
            ),
        })
    }

    pub fn to_value(&self) -> Value {
        match self {
            FieldValue::Text(s) => Value::String(s.clone()),
            FieldValue::Integer(n) => Value::from(*n),
            FieldValue::List(items) => {
                Value::Array(items.iter().cloned().map(Value::String).collect())
            }
            FieldValue::Relationships(edges) => Value::Array(
                edges
                    .iter()
                    .map(|e| serde_json::json!({"from": e.from, "to": e.to, "type": e.kind}))
                    .collect(),
            ),
        }
    }
}

/// An element of the outline: its level's field values in spec order, and
/// its children (of the next level).
#[derive(Clone)]
pub struct Node {
    spec: &'static TypeSpec,
    depth: usize,
    pub fields: Vec<FieldValue>,
    pub children: Vec<Node>,
}

// The spec and depth are the element type named first; the rest is data.
#[allow(clippy::missing_fields_in_debug)]
impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(self.level().element_type)
            .field("fields", &self.fields)
            .field("children", &self.children)
            .finish()
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        std::ptr::eq(self.spec, other.spec)
            && self.depth == other.depth
            && self.fields == other.fields
            && self.children == other.children
    }
}

impl Node {
    /// A node of level `depth` with every field empty and no children.
    pub fn new(structure_type: StructureType, depth: usize) -> Node {
        let spec = structure_type.spec();
        Node {
            spec,
            depth,
            fields: spec.levels[depth]
                .fields
                .iter()
                .map(|f| FieldValue::empty(f.kind))
                .collect(),
            children: Vec::new(),
        }
    }

    /// A node from field values in the level's order (checked against the spec).
    pub fn with_fields(
        structure_type: StructureType,
        depth: usize,
        fields: Vec<FieldValue>,
    ) -> Node {
        let node = Node {
            spec: structure_type.spec(),
            depth,
            fields,
            children: Vec::new(),
        };
        debug_assert!(fields_fit(node.level().fields, &node.fields));
        node
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    pub fn level(&self) -> &'static LevelSpec {
        &self.spec.levels[self.depth]
    }

    /// The level of this node's children, when the type has one.
    pub fn child_level(&self) -> Option<&'static LevelSpec> {
        self.spec.levels.get(self.depth + 1)
    }

    pub fn field(&self, name: &str) -> Option<&FieldValue> {
        field_of(self.level().fields, &self.fields, name)
    }

    pub fn field_mut(&mut self, name: &str) -> Option<&mut FieldValue> {
        let i = self.level().fields.iter().position(|f| f.name == name)?;
        self.fields.get_mut(i)
    }

    /// A text field's value; "" for a field that is not text or not there.
    pub fn text(&self, name: &str) -> &str {
        self.field(name).and_then(FieldValue::as_text).unwrap_or("")
    }

    pub fn list(&self, name: &str) -> &[String] {
        self.field(name)
            .and_then(FieldValue::as_list)
            .unwrap_or(&[])
    }

    /// The field that names the element (`title`, `name`, `question`…).
    pub fn title(&self) -> &str {
        self.text(self.level().title_field)
    }

    pub fn set_text(&mut self, name: &str, text: String) {
        if let Some(FieldValue::Text(s)) = self.field_mut(name) {
            *s = text;
        }
    }

    pub fn set_title(&mut self, text: String) {
        let field = self.level().title_field;
        self.set_text(field, text);
    }

    /// Elements in this node's subtree, itself excluded.
    pub fn descendants(&self) -> usize {
        self.children.iter().map(|c| 1 + c.descendants()).sum()
    }

    /// The node and its subtree as canonical JSON.
    pub fn to_value(&self) -> Value {
        node_value(self)
    }

    /// The node's fields as a canonical JSON object, without its children.
    pub fn fields_value(&self) -> Value {
        fields_value(self.level().fields, &self.fields)
    }

    /// Strict reading of a canonical node of level `depth` (its subtree included).
    pub fn from_canonical(
        structure_type: StructureType,
        depth: usize,
        value: &Value,
    ) -> Result<Node, String> {
        node_from_canonical(structure_type.spec(), depth, value, "node")
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

/// A canonical outline of one structure type.
#[derive(Debug, Clone, PartialEq)]
pub struct Outline {
    pub structure_type: StructureType,
    /// Root field values in the spec's order.
    pub root: Vec<FieldValue>,
    /// The level-1 elements.
    pub items: Vec<Node>,
}

impl Outline {
    /// An outline with every root field empty and no items.
    pub fn new(structure_type: StructureType) -> Outline {
        Outline {
            structure_type,
            root: structure_type
                .spec()
                .root_fields
                .iter()
                .map(|f| FieldValue::empty(f.kind))
                .collect(),
            items: Vec::new(),
        }
    }

    pub fn spec(&self) -> &'static TypeSpec {
        self.structure_type.spec()
    }

    pub fn field(&self, name: &str) -> Option<&FieldValue> {
        field_of(self.spec().root_fields, &self.root, name)
    }

    pub fn field_mut(&mut self, name: &str) -> Option<&mut FieldValue> {
        let i = self
            .spec()
            .root_fields
            .iter()
            .position(|f| f.name == name)?;
        self.root.get_mut(i)
    }

    pub fn text(&self, name: &str) -> &str {
        self.field(name).and_then(FieldValue::as_text).unwrap_or("")
    }

    pub fn list(&self, name: &str) -> &[String] {
        self.field(name)
            .and_then(FieldValue::as_list)
            .unwrap_or(&[])
    }

    pub fn title(&self) -> &str {
        self.text("title")
    }

    /// Set an integer root field (a quiz's `totalQuestions`); others are left alone.
    pub fn set_integer(&mut self, name: &str, n: i64) {
        if let Some(FieldValue::Integer(v)) = self.field_mut(name) {
            *v = n;
        }
    }

    /// Every element, parents before their children (depth first).
    pub fn walk(&self) -> impl Iterator<Item = &Node> {
        let mut stack: Vec<&Node> = self.items.iter().rev().collect();
        std::iter::from_fn(move || {
            let node = stack.pop()?;
            stack.extend(node.children.iter().rev());
            Some(node)
        })
    }

    pub fn element_count(&self) -> usize {
        self.items.len() + self.items.iter().map(Node::descendants).sum::<usize>()
    }

    /// Elements per level, level 1 first (as many entries as the type has levels).
    pub fn counts_per_level(&self) -> Vec<usize> {
        let mut counts = vec![0; self.spec().levels.len()];
        for node in self.walk() {
            counts[node.depth()] += 1;
        }
        counts
    }

    /// The root fields as a canonical JSON object, without the level-1 list.
    pub fn root_value(&self) -> Value {
        fields_value(self.spec().root_fields, &self.root)
    }

    /// The canonical JSON (what `Serialize` writes).
    pub fn to_value(&self) -> Value {
        let mut out = match self.root_value() {
            Value::Object(o) => o,
            _ => Map::new(),
        };
        out.insert(
            self.spec().levels[0].key.to_string(),
            Value::Array(self.items.iter().map(node_value).collect()),
        );
        Value::Object(out)
    }

    /// Strict reading of canonical JSON (a stored result): exactly the type's
    /// keys, each of its kind's JSON type. Anything else is refused, naming
    /// the place; a model's answer goes through `normalize` instead.
    pub fn from_canonical(structure_type: StructureType, value: &Value) -> Result<Outline, String> {
        let spec = structure_type.spec();
        let object = value
            .as_object()
            .ok_or_else(|| "the outline must be an object".to_string())?;
        let first = &spec.levels[0];
        let root = fields_from_canonical(spec.root_fields, object, Some(first.key), "root")?;
        let items = object
            .get(first.key)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("root.{} must be an array", first.key))?
            .iter()
            .enumerate()
            .map(|(i, v)| node_from_canonical(spec, 0, v, &format!("{}[{i}]", first.key)))
            .collect::<Result<_, _>>()?;
        Ok(Outline {
            structure_type,
            root,
            items,
        })
    }

    /// An outline from its root fields' canonical JSON (missing fields empty)
    /// and its items: the way back from stored element rows.
    pub fn from_root_value(
        structure_type: StructureType,
        root: &Value,
        items: Vec<Node>,
    ) -> Outline {
        let mut outline = Outline::new(structure_type);
        for (value, spec) in outline
            .root
            .iter_mut()
            .zip(structure_type.spec().root_fields)
        {
            if let Some(v) = root
                .get(spec.name)
                .and_then(|v| FieldValue::from_canonical(spec.kind, v))
            {
                *value = v;
            }
        }
        outline.items = items;
        outline
    }
}

impl Serialize for Outline {
    /// Through `to_value`: one way to the canonical JSON (a `serde_json::Map`
    /// keeps its keys sorted, the order the stored text has always had).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl std::fmt::Display for Outline {
    /// The compact canonical JSON, as a `Value` would print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(&json)
    }
}

fn field_of<'a>(
    specs: &[FieldSpec],
    values: &'a [FieldValue],
    name: &str,
) -> Option<&'a FieldValue> {
    let i = specs.iter().position(|f| f.name == name)?;
    values.get(i)
}

fn fields_fit(specs: &[FieldSpec], values: &[FieldValue]) -> bool {
    specs.len() == values.len() && specs.iter().zip(values).all(|(s, v)| v.fits(s.kind))
}

fn fields_value(specs: &[FieldSpec], values: &[FieldValue]) -> Value {
    Value::Object(
        specs
            .iter()
            .zip(values)
            .map(|(s, v)| (s.name.to_string(), v.to_value()))
            .collect(),
    )
}

fn node_value(node: &Node) -> Value {
    let mut value = node.fields_value();
    if let (Some(child), Value::Object(o)) = (node.child_level(), &mut value) {
        if !node.children.is_empty() {
            o.insert(
                child.key.to_string(),
                Value::Array(node.children.iter().map(node_value).collect()),
            );
        }
    }
    value
}

fn fields_from_canonical(
    specs: &[FieldSpec],
    object: &Map<String, Value>,
    child_key: Option<&str>,
    path: &str,
) -> Result<Vec<FieldValue>, String> {
    if let Some(key) = object
        .keys()
        .find(|k| Some(k.as_str()) != child_key && !specs.iter().any(|f| f.name == k.as_str()))
    {
        return Err(format!("{path} has an unknown field `{key}`"));
    }
    specs
        .iter()
        .map(|f| {
            object
                .get(f.name)
                .and_then(|v| FieldValue::from_canonical(f.kind, v))
                .ok_or_else(|| format!("{path}.{} is missing or not a {:?}", f.name, f.kind))
        })
        .collect()
}

fn node_from_canonical(
    spec: &'static TypeSpec,
    depth: usize,
    value: &Value,
    path: &str,
) -> Result<Node, String> {
    let level = &spec.levels[depth];
    let object = value
        .as_object()
        .ok_or_else(|| format!("{path} must be an object"))?;
    let child = spec.levels.get(depth + 1);
    let fields = fields_from_canonical(level.fields, object, child.map(|c| c.key), path)?;
    let children = match child.and_then(|c| object.get(c.key).map(|v| (c, v))) {
        None => Vec::new(),
        Some((c, v)) => v
            .as_array()
            .filter(|items| !items.is_empty())
            .ok_or_else(|| format!("{path}.{} must be a non-empty array", c.key))?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                node_from_canonical(spec, depth + 1, v, &format!("{path}.{}[{i}]", c.key))
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(Node {
        spec,
        depth,
        fields,
        children,
    })
}

#[cfg(test)]
mod tests;
