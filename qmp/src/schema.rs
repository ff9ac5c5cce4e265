//! What QEMU says about itself: the `query-qmp-schema` reply, and what it is used for.
//!
//! The reply is a flat list of entities, each with a `meta-type`: `command`, `event`,
//! `object`, `enum`, `alternate`, `array` or `builtin`. Commands and events keep their
//! names; every other type is named by a masked number (`"187"`), builtins by their own
//! name (`str`, `int`, `number`, `bool`, `null`, `any`), arrays as `[T]`. An object member
//! is optional when the entity carries a `default` member for it (always `null` today).
//! See QEMU's qapi/introspect.json.
//!
//! [`Schema`] answers: which commands exist ([`Schema::completions`]), what a command
//! takes ([`Schema::arguments`], a tree with recursion cut at [`TypeNode::Recursive`]), a
//! JSON template of its required arguments ([`Schema::template`]), and what is wrong with
//! given arguments ([`Schema::validate`], problems with JSON paths).

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

pub use crate::devices::DeviceProperty;

/// Why a schema reply can not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("schema is not the return of query-qmp-schema: {0}")]
    Malformed(String),
    #[error("schema names type {name:?} (used by {by:?}) but does not define it")]
    UndefinedType { name: String, by: String },
    #[error("no command {0:?} in the schema")]
    UnknownCommand(String),
}

/// The JSON kinds QEMU's builtins map to (`json-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonType {
    String,
    Int,
    Number,
    Boolean,
    Null,
    Object,
    Array,
    Value,
}

impl JsonType {
    fn accepts(self, v: &Value) -> bool {
        match self {
            JsonType::String => v.is_string(),
            JsonType::Int => v.is_i64() || v.is_u64(),
            JsonType::Number => v.is_number(),
            JsonType::Boolean => v.is_boolean(),
            JsonType::Null => v.is_null(),
            JsonType::Object => v.is_object(),
            JsonType::Array => v.is_array(),
            JsonType::Value => true,
        }
    }
}

/// A member of an object type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub ty: String,
    pub optional: bool,
    /// What it is, when known (QEMU's schema says nothing; a device's property may).
    pub description: Option<String>,
}

/// A command's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub arg_type: String,
    pub ret_type: String,
    pub allow_oob: bool,
}

/// One schema entity, by meta-type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    Command(Command),
    Event {
        arg_type: String,
    },
    Object {
        members: Vec<Member>,
        /// For a union: the discriminator member and `(case, variant type)` pairs.
        tag: Option<String>,
        variants: Vec<(String, String)>,
    },
    Enum {
        values: Vec<String>,
    },
    Alternate {
        members: Vec<String>,
    },
    Array {
        element: String,
    },
    Builtin {
        json: JsonType,
    },
}

#[derive(Deserialize)]
struct RawMember {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    /// Present (as `null`) exactly when the member is optional.
    #[serde(default, deserialize_with = "present")]
    default: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

#[derive(Deserialize)]
struct RawVariant {
    case: String,
    #[serde(rename = "type")]
    ty: String,
}

#[derive(Deserialize)]
struct RawAltMember {
    #[serde(rename = "type")]
    ty: String,
}

#[derive(Deserialize)]
#[serde(tag = "meta-type", rename_all = "kebab-case")]
enum RawEntity {
    Command {
        name: String,
        #[serde(rename = "arg-type")]
        arg_type: String,
        #[serde(rename = "ret-type")]
        ret_type: String,
        #[serde(rename = "allow-oob", default)]
        allow_oob: bool,
    },
    Event {
        name: String,
        #[serde(rename = "arg-type")]
        arg_type: String,
    },
    Object {
        name: String,
        members: Vec<RawMember>,
        #[serde(default)]
        tag: Option<String>,
        #[serde(default)]
        variants: Vec<RawVariant>,
    },
    Enum {
        name: String,
        values: Vec<String>,
    },
    Alternate {
        name: String,
        members: Vec<RawAltMember>,
    },
    Array {
        name: String,
        #[serde(rename = "element-type")]
        element_type: String,
    },
    Builtin {
        name: String,
        #[serde(rename = "json-type")]
        json_type: JsonType,
    },
}

/// A parsed `query-qmp-schema` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    entities: BTreeMap<String, Entity>,
    commands: Vec<String>,
}

/// A resolved type, for showing a command's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeNode {
    Builtin(JsonType),
    Enum(Vec<String>),
    Object {
        members: Vec<Arg>,
        tag: Option<String>,
        /// `(case, the variant's own members)`.
        variants: Vec<(String, Vec<Arg>)>,
    },
    Array(Box<TypeNode>),
    Alternate(Vec<TypeNode>),
    /// A type already being expanded further up this branch (QEMU's types recurse, e.g.
    /// a quorum's children are block devices again); named by its masked number.
    Recursive(String),
}

/// One argument (an object member) with its resolved type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub name: String,
    pub required: bool,
    pub ty: TypeNode,
    /// What it is, when known ([`Member::description`]).
    pub description: Option<String>,
}

impl TypeNode {
    /// A short human label: `str`, `int`, `enum`, `object`, `array of str`, `str | null`.
    pub fn label(&self) -> String {
        match self {
            TypeNode::Builtin(j) => builtin_label(*j).to_owned(),
            TypeNode::Enum(_) => "enum".into(),
            TypeNode::Object { .. } | TypeNode::Recursive(_) => "object".into(),
            TypeNode::Array(e) => format!("array of {}", e.label()),
            TypeNode::Alternate(alts) => alts
                .iter()
                .map(TypeNode::label)
                .collect::<Vec<_>>()
                .join(" | "),
        }
    }
}

impl TypeNode {
    /// The members an object of this type may have, given what it holds so far (`value`):
    /// its own, then those of the variant its tag's value picks. An alternate answers for
    /// its object alternative; other types have none.
    pub fn members_for(&self, value: Option<&Value>) -> Vec<&Arg> {
        match self {
            TypeNode::Object {
                members,
                tag,
                variants,
            } => {
                let mut all: Vec<&Arg> = members.iter().collect();
                let case = tag.as_ref().and_then(|t| value?.get(t.as_str())?.as_str());
                if let Some((_, own)) = variants.iter().find(|(c, _)| Some(c.as_str()) == case) {
                    all.extend(own);
                }
                all
            }
            TypeNode::Alternate(alts) => alts
                .iter()
                .find(|a| matches!(a, TypeNode::Object { .. }))
                .map(|a| a.members_for(value))
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// The values a string of this type may take, when they are listed (an enum, or an
    /// alternate or array with one).
    pub fn enum_values(&self) -> Option<&[String]> {
        match self {
            TypeNode::Enum(v) => Some(v),
            TypeNode::Array(e) => e.enum_values(),
            TypeNode::Alternate(alts) => alts.iter().find_map(TypeNode::enum_values),
            _ => None,
        }
    }
}

/// A name as compared for "did you mean": lower case, `_` as `-`.
fn spelling(name: &str) -> Vec<char> {
    name.chars()
        .map(|c| {
            if c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Edits from `a` to `b`: a letter inserted, deleted, changed, or two neighbours swapped
/// (optimal string alignment distance).
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut rows = vec![(0..=b.len()).collect::<Vec<usize>>()];
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (rows[i - 1][j] + 1)
                .min(row[j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(rows[i - 2][j - 2] + 1);
            }
        }
        rows.push(row);
    }
    rows[a.len()][b.len()]
}

fn builtin_label(j: JsonType) -> &'static str {
    match j {
        JsonType::String => "str",
        JsonType::Int => "int",
        JsonType::Number => "number",
        JsonType::Boolean => "bool",
        JsonType::Null => "null",
        JsonType::Object => "object",
        JsonType::Array => "array",
        JsonType::Value => "any",
    }
}

/// What is wrong at one place of the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// A required member is absent.
    Missing,
    /// A member the type does not have.
    Unknown,
    /// The value has the wrong JSON type; `expected` as [`TypeNode::label`] words.
    WrongType {
        expected: String,
        found: &'static str,
    },
    /// A string outside the enum's values.
    NotInEnum { value: String, allowed: Vec<String> },
}

/// One validation problem: where (`$`, `$.id`, `$.children[0].driver`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ProblemKind::Missing => write!(f, "{}: required member missing", self.path),
            ProblemKind::Unknown => write!(f, "{}: unknown member", self.path),
            ProblemKind::WrongType { expected, found } => {
                write!(f, "{}: expected {expected}, found {found}", self.path)
            }
            ProblemKind::NotInEnum { value, allowed } => {
                let shown: Vec<&str> = allowed.iter().take(12).map(String::as_str).collect();
                let more = if allowed.len() > shown.len() {
                    ", ..."
                } else {
                    ""
                };
                write!(
                    f,
                    "{}: {value:?} is not one of {}{more}",
                    self.path,
                    shown.join(", ")
                )
            }
        }
    }
}

/// The JSON kind of a value, for messages.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The JSON path of member `name` of the value at `path`, as problems name places:
/// `$.id`, or `$["a b"]` for a name that is not a plain identifier.
pub fn member_path(path: &str, name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        format!("{path}.{name}")
    } else {
        format!("{path}[{}]", Value::String(name.into()))
    }
}

impl Schema {
    /// Reads the `return` value of `query-qmp-schema`; every referenced type must exist.
    pub fn from_value(value: &Value) -> Result<Schema, SchemaError> {
        let list = value
            .as_array()
            .ok_or_else(|| SchemaError::Malformed("not a JSON array".into()))?;
        let mut entities = BTreeMap::new();
        let mut commands = Vec::new();
        for item in list {
            let raw = RawEntity::deserialize(item).map_err(|e| {
                let name = item.get("name").and_then(Value::as_str).unwrap_or("?");
                SchemaError::Malformed(format!("entity {name:?}: {e}"))
            })?;
            let (name, entity) = match raw {
                RawEntity::Command {
                    name,
                    arg_type,
                    ret_type,
                    allow_oob,
                } => {
                    commands.push(name.clone());
                    let c = Command {
                        name: name.clone(),
                        arg_type,
                        ret_type,
                        allow_oob,
                    };
                    (name, Entity::Command(c))
                }
                RawEntity::Event { name, arg_type } => (name, Entity::Event { arg_type }),
                RawEntity::Object {
                    name,
                    members,
                    tag,
                    variants,
                } => {
                    let members = members
                        .into_iter()
                        .map(|m| Member {
                            name: m.name,
                            ty: m.ty,
                            optional: m.default,
                            description: None,
                        })
                        .collect();
                    let variants = variants.into_iter().map(|v| (v.case, v.ty)).collect();
                    (
                        name,
                        Entity::Object {
                            members,
                            tag,
                            variants,
                        },
                    )
                }
                RawEntity::Enum { name, values } => (name, Entity::Enum { values }),
                RawEntity::Alternate { name, members } => {
                    let members = members.into_iter().map(|m| m.ty).collect();
                    (name, Entity::Alternate { members })
                }
                RawEntity::Array { name, element_type } => (
                    name,
                    Entity::Array {
                        element: element_type,
                    },
                ),
                RawEntity::Builtin { name, json_type } => {
                    (name, Entity::Builtin { json: json_type })
                }
            };
            entities.insert(name, entity);
        }
        commands.sort();
        let schema = Schema { entities, commands };
        schema.check_references()?;
        Ok(schema)
    }

    /// Parses the text of the schema (the `return` value) as JSON first.
    pub fn parse(text: &str) -> Result<Schema, SchemaError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| SchemaError::Malformed(e.to_string()))?;
        Schema::from_value(&value)
    }

    fn check_references(&self) -> Result<(), SchemaError> {
        for (by, entity) in &self.entities {
            let refs: Vec<&String> = match entity {
                Entity::Command(c) => vec![&c.arg_type, &c.ret_type],
                Entity::Event { arg_type } => vec![arg_type],
                Entity::Object {
                    members, variants, ..
                } => members
                    .iter()
                    .map(|m| &m.ty)
                    .chain(variants.iter().map(|(_, t)| t))
                    .collect(),
                Entity::Alternate { members } => members.iter().collect(),
                Entity::Array { element } => vec![element],
                Entity::Enum { .. } | Entity::Builtin { .. } => vec![],
            };
            if let Some(name) = refs.into_iter().find(|r| !self.entities.contains_key(*r)) {
                return Err(SchemaError::UndefinedType {
                    name: name.clone(),
                    by: by.clone(),
                });
            }
        }
        Ok(())
    }

    /// This schema with what a live QEMU says about its devices folded into `device_add`:
    /// `driver` one of `drivers`, and for each driver in `properties` its properties as
    /// optional members (a union on `driver`), typed `bool` and `str` as QOM says and
    /// anything else loosely (QEMU parses many from strings too: a PCI `addr` of `06.0`).
    /// Unchanged without `device_add` or without drivers.
    pub fn with_devices(
        &self,
        drivers: &[String],
        properties: &BTreeMap<String, Vec<DeviceProperty>>,
    ) -> Schema {
        let Some(command) = self.command("device_add") else {
            return self.clone();
        };
        let Some(Entity::Object { members, .. }) = self.entities.get(&command.arg_type) else {
            return self.clone();
        };
        if drivers.is_empty() {
            return self.clone();
        }
        const DRIVERS: &str = "qmp-console:device-drivers";
        const ARGS: &str = "qmp-console:device_add";
        let mut schema = self.clone();
        let base = members
            .iter()
            .map(|m| Member {
                ty: if m.name == "driver" {
                    DRIVERS.to_owned()
                } else {
                    m.ty.clone()
                },
                ..m.clone()
            })
            .collect::<Vec<_>>();
        let mut variants = Vec::new();
        for (driver, props) in properties {
            let name = format!("qmp-console:device:{driver}");
            let own = props
                .iter()
                .filter(|p| !base.iter().any(|m| m.name == p.name))
                .map(|p| Member {
                    name: p.name.clone(),
                    ty: match p.ty.as_str() {
                        "bool" => "bool",
                        "str" => "str",
                        _ => "any",
                    }
                    .to_owned(),
                    optional: true,
                    description: Some(match &p.description {
                        Some(d) => format!("{}: {d}", p.ty),
                        None => p.ty.clone(),
                    }),
                })
                .collect();
            schema.entities.insert(
                name.clone(),
                Entity::Object {
                    members: own,
                    tag: None,
                    variants: Vec::new(),
                },
            );
            variants.push((driver.clone(), name));
        }
        for builtin in [
            ("str", JsonType::String),
            ("bool", JsonType::Boolean),
            ("any", JsonType::Value),
        ] {
            schema
                .entities
                .entry(builtin.0.to_owned())
                .or_insert(Entity::Builtin { json: builtin.1 });
        }
        schema.entities.insert(
            DRIVERS.to_owned(),
            Entity::Enum {
                values: drivers.to_vec(),
            },
        );
        schema.entities.insert(
            ARGS.to_owned(),
            Entity::Object {
                members: base,
                tag: Some("driver".into()),
                variants,
            },
        );
        let mut command = command.clone();
        command.arg_type = ARGS.to_owned();
        schema
            .entities
            .insert("device_add".into(), Entity::Command(command));
        schema
    }

    /// Every command name, sorted.
    pub fn commands(&self) -> &[String] {
        &self.commands
    }

    pub fn command(&self, name: &str) -> Option<&Command> {
        match self.entities.get(name) {
            Some(Entity::Command(c)) => Some(c),
            _ => None,
        }
    }

    /// Command names for what was typed: those starting with `typed` first (sorted), then
    /// those containing it (shortest first); at most `limit`.
    pub fn completions(&self, typed: &str, limit: usize) -> Vec<&str> {
        let typed = typed.trim();
        let starts = self.commands.iter().filter(|c| c.starts_with(typed));
        let mut contains: Vec<&String> = self
            .commands
            .iter()
            .filter(|c| !c.starts_with(typed) && c.contains(typed))
            .collect();
        contains.sort_by_key(|c| c.len());
        starts
            .chain(contains)
            .take(limit)
            .map(String::as_str)
            .collect()
    }

    /// Command names that look like a mistyping of `name` (letters swapped, missed or
    /// doubled, `_` for `-`): the closest ones (all as close), at most `limit`. For "did
    /// you mean".
    pub fn similar(&self, name: &str, limit: usize) -> Vec<&str> {
        let typed = spelling(name.trim());
        let most = (1 + typed.len() / 6).min(3);
        let mut found: Vec<(usize, &str)> = self
            .commands
            .iter()
            .filter(|c| c.as_str() != name.trim())
            .filter_map(|c| {
                let d = edit_distance(&typed, &spelling(c));
                (d <= most).then_some((d, c.as_str()))
            })
            .collect();
        found.sort();
        let best = found.first().map_or(0, |(d, _)| *d);
        found
            .into_iter()
            .take_while(|(d, _)| *d == best)
            .take(limit)
            .map(|(_, c)| c)
            .collect()
    }

    fn command_or_err(&self, name: &str) -> Result<&Command, SchemaError> {
        self.command(name)
            .ok_or_else(|| SchemaError::UnknownCommand(name.to_owned()))
    }

    /// The arguments `command` takes, as a tree.
    pub fn arguments(&self, command: &str) -> Result<Vec<Arg>, SchemaError> {
        let c = self.command_or_err(command)?;
        let mut stack = Vec::new();
        match self.resolve(&c.arg_type, &mut stack) {
            TypeNode::Object { members, .. } => Ok(members),
            _ => Ok(Vec::new()),
        }
    }

    /// The arguments' type of `command` as one node (unions keep their variants).
    pub fn argument_type(&self, command: &str) -> Result<TypeNode, SchemaError> {
        let c = self.command_or_err(command)?;
        Ok(self.resolve(&c.arg_type, &mut Vec::new()))
    }

    /// The type of the member of `command`'s arguments at `path` (member names, outermost
    /// first; empty: the arguments themselves), following the variants that `value` (the
    /// arguments so far) picks on the way. Types cut for recursion are resolved as the
    /// path reaches them.
    pub fn type_at(
        &self,
        command: &str,
        path: &[String],
        value: Option<&Value>,
    ) -> Option<TypeNode> {
        let mut node = self.argument_type(command).ok()?;
        let mut value = value;
        for name in path {
            let member = node
                .members_for(value)
                .into_iter()
                .find(|a| a.name == *name)?
                .ty
                .clone();
            node = self.expand(member);
            value = value.and_then(|v| v.get(name.as_str()));
        }
        Some(node)
    }

    /// `node` with a type cut for recursion at its top (or among its alternatives)
    /// resolved.
    fn expand(&self, node: TypeNode) -> TypeNode {
        match node {
            TypeNode::Recursive(name) => self.resolve(&name, &mut Vec::new()),
            TypeNode::Alternate(alts) => {
                TypeNode::Alternate(alts.into_iter().map(|a| self.expand(a)).collect())
            }
            other => other,
        }
    }

    /// Resolves type `name` into a tree, cutting recursion.
    fn resolve(&self, name: &str, stack: &mut Vec<String>) -> TypeNode {
        if stack.iter().any(|s| s == name) {
            return TypeNode::Recursive(name.to_owned());
        }
        let Some(entity) = self.entities.get(name) else {
            return TypeNode::Builtin(JsonType::Value);
        };
        stack.push(name.to_owned());
        let node = match entity {
            Entity::Builtin { json } => TypeNode::Builtin(*json),
            Entity::Enum { values } => TypeNode::Enum(values.clone()),
            Entity::Array { element } => TypeNode::Array(Box::new(self.resolve(element, stack))),
            Entity::Alternate { members } => {
                TypeNode::Alternate(members.iter().map(|m| self.resolve(m, stack)).collect())
            }
            Entity::Object {
                members,
                tag,
                variants,
            } => {
                let members = self.resolve_members(members, stack);
                let variants = variants
                    .iter()
                    .map(|(case, ty)| {
                        let own = match self.entities.get(ty) {
                            Some(Entity::Object { members, .. }) => {
                                self.resolve_members(members, stack)
                            }
                            _ => Vec::new(),
                        };
                        (case.clone(), own)
                    })
                    .collect();
                TypeNode::Object {
                    members,
                    tag: tag.clone(),
                    variants,
                }
            }
            Entity::Command(_) | Entity::Event { .. } => TypeNode::Builtin(JsonType::Value),
        };
        stack.pop();
        node
    }

    fn resolve_members(&self, members: &[Member], stack: &mut Vec<String>) -> Vec<Arg> {
        members
            .iter()
            .map(|m| Arg {
                name: m.name.clone(),
                required: !m.optional,
                ty: self.resolve(&m.ty, stack),
                description: m.description.clone(),
            })
            .collect()
    }

    /// A JSON object holding `command`'s required arguments with placeholder values
    /// (`""` for strings and enums, `0`, `false`; a union's tag `""`, its cases left to
    /// choose: no enum value is a default QEMU would pick).
    pub fn template(&self, command: &str) -> Result<Value, SchemaError> {
        let c = self.command_or_err(command)?;
        Ok(self.template_of(&c.arg_type, &mut Vec::new()))
    }

    fn template_of(&self, name: &str, stack: &mut Vec<String>) -> Value {
        if stack.iter().any(|s| s == name) {
            return Value::Object(Map::new());
        }
        let Some(entity) = self.entities.get(name) else {
            return Value::Null;
        };
        stack.push(name.to_owned());
        let v = match entity {
            Entity::Builtin { json } => match json {
                JsonType::String => Value::String(String::new()),
                JsonType::Int | JsonType::Number => Value::from(0),
                JsonType::Boolean => Value::Bool(false),
                JsonType::Object | JsonType::Value => Value::Object(Map::new()),
                JsonType::Array => Value::Array(Vec::new()),
                JsonType::Null => Value::Null,
            },
            Entity::Enum { .. } => Value::String(String::new()),
            Entity::Array { .. } => Value::Array(Vec::new()),
            // The simplest alternative: a scalar (e.g. a node name) before an object.
            Entity::Alternate { members } => members
                .iter()
                .find(|m| {
                    matches!(
                        self.entities.get(*m),
                        Some(Entity::Builtin { .. } | Entity::Enum { .. })
                    )
                })
                .or(members.first())
                .map_or(Value::Null, |m| self.template_of(m, stack)),
            // a union's tag is one of its members: an empty placeholder, no case chosen
            Entity::Object { members, .. } => {
                let mut obj = Map::new();
                self.template_members(members, &mut obj, stack);
                Value::Object(obj)
            }
            Entity::Command(_) | Entity::Event { .. } => Value::Null,
        };
        stack.pop();
        v
    }

    fn template_members(
        &self,
        members: &[Member],
        obj: &mut Map<String, Value>,
        stack: &mut Vec<String>,
    ) {
        for m in members.iter().filter(|m| !m.optional) {
            let v = self.template_of(&m.ty, stack);
            obj.insert(m.name.clone(), v);
        }
    }

    /// A short label for type `name`, as [`TypeNode::label`] words, without resolving it.
    pub fn type_label(&self, name: &str) -> String {
        match self.entities.get(name) {
            Some(Entity::Builtin { json }) => builtin_label(*json).to_owned(),
            Some(Entity::Enum { .. }) => "enum".into(),
            Some(Entity::Array { element }) => format!("array of {}", self.type_label(element)),
            Some(Entity::Alternate { members }) => members
                .iter()
                .map(|m| self.type_label(m))
                .collect::<Vec<_>>()
                .join(" | "),
            _ => "object".into(),
        }
    }

    /// Checks `arguments` (`None` or `null`: no arguments given) against `command`'s
    /// argument type. An empty list means they look right to QEMU's schema.
    pub fn validate(
        &self,
        command: &str,
        arguments: Option<&Value>,
    ) -> Result<Vec<Problem>, SchemaError> {
        let c = self.command_or_err(command)?;
        let empty = Value::Object(Map::new());
        let args = match arguments {
            None | Some(Value::Null) => &empty,
            Some(v) => v,
        };
        let mut problems = Vec::new();
        self.check(&c.arg_type, args, "$", &mut problems);
        Ok(problems)
    }

    fn check(&self, ty: &str, v: &Value, path: &str, out: &mut Vec<Problem>) {
        let Some(entity) = self.entities.get(ty) else {
            return;
        };
        let wrong = |expected: String, out: &mut Vec<Problem>| {
            out.push(Problem {
                path: path.to_owned(),
                kind: ProblemKind::WrongType {
                    expected,
                    found: json_kind(v),
                },
            })
        };
        match entity {
            Entity::Builtin { json } => {
                if !json.accepts(v) {
                    wrong(builtin_label(*json).to_owned(), out);
                }
            }
            Entity::Enum { values } => match v.as_str() {
                Some(s) if values.iter().any(|x| x == s) => {}
                Some(s) => out.push(Problem {
                    path: path.to_owned(),
                    kind: ProblemKind::NotInEnum {
                        value: s.to_owned(),
                        allowed: values.clone(),
                    },
                }),
                None => wrong("enum (str)".into(), out),
            },
            Entity::Array { element } => match v.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.check(element, item, &format!("{path}[{i}]"), out);
                    }
                }
                None => wrong("array".into(), out),
            },
            Entity::Alternate { members } => {
                let mut best: Option<Vec<Problem>> = None;
                for m in members {
                    let mut p = Vec::new();
                    self.check(m, v, path, &mut p);
                    if p.is_empty() {
                        return;
                    }
                    // Keep the problems of the alternative whose JSON kind fits, if any.
                    let fits = !p
                        .iter()
                        .any(|x| x.path == path && matches!(x.kind, ProblemKind::WrongType { .. }));
                    if fits && best.is_none() {
                        best = Some(p);
                    }
                }
                match best {
                    Some(p) => out.extend(p),
                    None => {
                        wrong(self.type_label(ty), out);
                    }
                }
            }
            Entity::Object {
                members,
                tag,
                variants,
            } => {
                let Some(obj) = v.as_object() else {
                    wrong("object".into(), out);
                    return;
                };
                let mut all: Vec<&Member> = members.iter().collect();
                if let Some(tag) = tag {
                    let case = obj.get(tag).and_then(Value::as_str);
                    let variant = variants.iter().find(|(c, _)| Some(c.as_str()) == case);
                    if let Some((_, vty)) = variant {
                        if let Some(Entity::Object { members, .. }) = self.entities.get(vty) {
                            all.extend(members.iter());
                        }
                    }
                }
                let known: HashSet<&str> = all.iter().map(|m| m.name.as_str()).collect();
                for m in &all {
                    match obj.get(&m.name) {
                        Some(value) => self.check(&m.ty, value, &member_path(path, &m.name), out),
                        None if !m.optional => out.push(Problem {
                            path: member_path(path, &m.name),
                            kind: ProblemKind::Missing,
                        }),
                        None => {}
                    }
                }
                for key in obj.keys().filter(|k| !known.contains(k.as_str())) {
                    out.push(Problem {
                        path: member_path(path, key),
                        kind: ProblemKind::Unknown,
                    });
                }
            }
            Entity::Command(_) | Entity::Event { .. } => {}
        }
    }
}
