//! Schema introspection against a real `query-qmp-schema` reply saved from QEMU 7.2
//! (`qemu-system-x86_64 -machine pc,accel=tcg -nodefaults -S`).

#![allow(clippy::unwrap_used)]

use qmp::schema::{JsonType, Problem, ProblemKind, Schema, SchemaError, TypeNode};
use serde_json::{json, Value};

fn schema() -> Schema {
    Schema::parse(include_str!("data/qemu-7.2-schema.json")).expect("the real schema parses")
}

fn problems(s: &Schema, command: &str, args: Value) -> Vec<Problem> {
    s.validate(command, Some(&args)).expect("known command")
}

#[test]
fn reads_every_command() {
    let s = schema();
    assert_eq!(s.commands().len(), 216);
    assert!(s.commands().windows(2).all(|w| w[0] < w[1]), "sorted");
    assert!(s.command("query-status").is_some());
    assert!(s.command("STOP").is_none(), "events are not commands");
    assert!(s.command("migrate-pause").is_some_and(|c| c.allow_oob));
    assert!(s.command("stop").is_some_and(|c| !c.allow_oob));
}

#[test]
fn completes_prefix_first_then_substring() {
    let s = schema();
    let c = s.completions("query-st", 10);
    assert_eq!(c, ["query-stats", "query-stats-schemas", "query-status"]);
    let c = s.completions("status", 10);
    assert_eq!(c[0], "query-status", "{c:?}");
    assert_eq!(s.completions("", 5).len(), 5);
    assert!(s.completions("no-such-thing", 5).is_empty());
}

#[test]
fn mistyped_names_find_the_command_meant() {
    let s = schema();
    assert_eq!(s.similar("devcie_del", 3), ["device_del"]);
    assert_eq!(
        s.similar("query-stauts", 3),
        ["query-stats", "query-status"],
        "as close: both"
    );
    assert_eq!(s.similar("blockdev_add", 3), ["blockdev-add"], "_ for -");
    assert_eq!(s.similar("Stop", 3), ["stop"]);
    assert_eq!(s.similar("qurey-cpus-fast", 3), ["query-cpus-fast"]);
    assert!(
        s.similar("stop", 3).is_empty(),
        "itself is not a suggestion"
    );
    assert!(s.similar("xyzzy", 3).is_empty());
    assert!(s.similar("quit", 3).len() <= 3);
}

#[test]
fn device_del_requires_id() {
    let s = schema();
    let args = s.arguments("device_del").unwrap();
    assert_eq!(args.len(), 1);
    assert_eq!(args[0].name, "id");
    assert!(args[0].required);
    assert_eq!(args[0].ty, TypeNode::Builtin(JsonType::String));
    assert_eq!(s.template("device_del").unwrap(), json!({"id": ""}));

    let p = problems(&s, "device_del", json!({}));
    assert_eq!(
        p,
        vec![Problem {
            path: "$.id".into(),
            kind: ProblemKind::Missing
        }]
    );
    assert_eq!(p[0].to_string(), "$.id: required member missing");
    assert!(s.validate("device_del", None).unwrap().len() == 1);
    assert!(problems(&s, "device_del", json!({"id": "net0"})).is_empty());
    let p = problems(&s, "device_del", json!({"id": 5}));
    assert_eq!(
        p[0].kind,
        ProblemKind::WrongType {
            expected: "str".into(),
            found: "int"
        }
    );
}

#[test]
fn query_status_takes_nothing() {
    let s = schema();
    assert!(s.arguments("query-status").unwrap().is_empty());
    assert_eq!(s.template("query-status").unwrap(), json!({}));
    assert!(s.validate("query-status", None).unwrap().is_empty());
    let p = problems(&s, "query-status", json!({"verbose": true}));
    assert_eq!(
        p,
        vec![Problem {
            path: "$.verbose".into(),
            kind: ProblemKind::Unknown
        }]
    );
    let p = problems(&s, "query-status", json!([1]));
    assert_eq!(p[0].path, "$");
    assert!(
        matches!(&p[0].kind, ProblemKind::WrongType { expected, found: "array" } if expected == "object")
    );
}

#[test]
fn optional_members_and_arrays_of_enums() {
    let s = schema();
    let args = s.arguments("human-monitor-command").unwrap();
    let names: Vec<(&str, bool)> = args.iter().map(|a| (a.name.as_str(), a.required)).collect();
    assert_eq!(names, [("command-line", true), ("cpu-index", false)]);
    assert_eq!(args[1].ty.label(), "int");

    let caps = s.arguments("qmp_capabilities").unwrap();
    assert_eq!(caps[0].name, "enable");
    assert!(!caps[0].required);
    let TypeNode::Array(element) = &caps[0].ty else {
        panic!("{:?}", caps[0].ty)
    };
    assert_eq!(**element, TypeNode::Enum(vec!["oob".into()]));
    assert_eq!(caps[0].ty.label(), "array of enum");
    assert!(problems(&s, "qmp_capabilities", json!({"enable": ["oob"]})).is_empty());
    let p = problems(&s, "qmp_capabilities", json!({"enable": ["oob", "turbo"]}));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, "$.enable[1]");
    assert!(
        matches!(&p[0].kind, ProblemKind::NotInEnum { value, allowed } if value == "turbo" && allowed == &["oob"])
    );
    assert!(p[0].to_string().contains("\"turbo\" is not one of oob"));
    let p = problems(&s, "qmp_capabilities", json!({"enable": "oob"}));
    assert!(matches!(
        &p[0].kind,
        ProblemKind::WrongType { found: "str", .. }
    ));
}

#[test]
fn blockdev_add_is_a_union_on_driver() {
    let s = schema();
    let TypeNode::Object {
        members,
        tag,
        variants,
    } = s.argument_type("blockdev-add").unwrap()
    else {
        panic!("blockdev-add takes an object")
    };
    assert_eq!(tag.as_deref(), Some("driver"));
    let driver = members.iter().find(|m| m.name == "driver").unwrap();
    assert!(driver.required);
    assert!(matches!(&driver.ty, TypeNode::Enum(v) if v.iter().any(|d| d == "qcow2")));
    let file = variants
        .iter()
        .find(|(c, _)| c == "file")
        .expect("a file case");
    assert!(file.1.iter().any(|a| a.name == "filename" && a.required));
    // quorum's children are block devices again: recursion is cut, not followed forever
    let quorum = &variants.iter().find(|(c, _)| c == "quorum").unwrap().1;
    let children = quorum.iter().find(|a| a.name == "children").unwrap();
    let TypeNode::Array(child) = &children.ty else {
        panic!()
    };
    let TypeNode::Alternate(alts) = &**child else {
        panic!("{child:?}")
    };
    assert!(matches!(alts[0], TypeNode::Recursive(_)));
    assert_eq!(children.ty.label(), "array of object | str");

    // template: the tag left empty (no case is a default), so no case's members yet
    let t = s.template("blockdev-add").unwrap();
    assert_eq!(t, json!({"driver": ""}));

    // validation follows the chosen variant
    let ok = json!({"driver": "file", "node-name": "d0", "filename": "/tmp/x.img"});
    assert!(problems(&s, "blockdev-add", ok).is_empty());
    let p = problems(
        &s,
        "blockdev-add",
        json!({"driver": "file", "node-name": "d0"}),
    );
    assert_eq!(
        p,
        vec![Problem {
            path: "$.filename".into(),
            kind: ProblemKind::Missing
        }]
    );
    let p = problems(
        &s,
        "blockdev-add",
        json!({"driver": "raw", "file": {"driver": "file"}}),
    );
    assert_eq!(
        p,
        vec![Problem {
            path: "$.file.filename".into(),
            kind: ProblemKind::Missing
        }]
    );
    let p = problems(
        &s,
        "blockdev-add",
        json!({"driver": "raw", "file": "node0"}),
    );
    assert!(p.is_empty(), "{p:?}");
    let p = problems(&s, "blockdev-add", json!({"driver": "raw", "file": 7}));
    assert!(
        matches!(&p[0].kind, ProblemKind::WrongType { expected, .. } if expected == "object | str"),
        "{p:?}"
    );
    let p = problems(&s, "blockdev-add", json!({"driver": "floppy"}));
    assert_eq!(p[0].path, "$.driver");
    assert!(matches!(&p[0].kind, ProblemKind::NotInEnum { .. }));
}

#[test]
fn members_and_types_are_found_along_a_path() {
    let s = schema();
    let ty = s.argument_type("blockdev-add").unwrap();
    let names = |v: Option<&Value>| -> Vec<String> {
        ty.members_for(v).iter().map(|a| a.name.clone()).collect()
    };
    // no driver yet: the common members only; a driver adds its own
    let common = names(None);
    assert!(common.contains(&"node-name".to_owned()) && !common.contains(&"filename".to_owned()));
    let file = names(Some(&json!({"driver": "file"})));
    assert!(file.contains(&"filename".to_owned()) && file.contains(&"node-name".to_owned()));
    // down a path: raw's file is an alternate (a reference, or a block device again: the
    // type cut for recursion is resolved there), whose object takes its driver's members
    let path = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let args = json!({"driver": "raw", "file": {"driver": "null-co"}});
    let at = |p: &[&str]| s.type_at("blockdev-add", &path(p), Some(&args));
    let inner = at(&["file"]).unwrap();
    assert_eq!(inner.label(), "object | str");
    let inner_names: Vec<&str> = inner
        .members_for(args.get("file"))
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert!(inner_names.contains(&"size"), "{inner_names:?}");
    let driver = at(&["file", "driver"]).unwrap();
    assert!(driver.enum_values().unwrap().iter().any(|d| d == "null-co"));
    assert_eq!(
        at(&["file", "size"]).map(|t| t.label()).as_deref(),
        Some("int")
    );
    assert!(at(&["nope"]).is_none());
    assert!(
        s.type_at("blockdev-add", &path(&["filename"]), None)
            .is_none(),
        "not without driver=file"
    );
    assert_eq!(
        s.type_at("blockdev-add", &[], None)
            .map(|t| t.label())
            .as_deref(),
        Some("object")
    );
    let caps = s
        .type_at("qmp_capabilities", &path(&["enable"]), None)
        .unwrap();
    assert_eq!(caps.enum_values(), Some(&["oob".to_owned()][..]));
    assert!(s.type_at("no-such-command", &[], None).is_none());
}

#[test]
fn odd_member_names_get_quoted_paths() {
    let s = schema();
    let p = problems(&s, "stop", json!({"a b": 1}));
    assert_eq!(p[0].path, "$[\"a b\"]");
}

#[test]
fn every_command_template_validates_but_for_its_empty_enums() {
    let s = schema();
    for name in s.commands() {
        let t = s.template(name).unwrap();
        let p = s.validate(name, Some(&t)).unwrap();
        assert!(
            p.iter().all(
                |p| matches!(&p.kind, ProblemKind::NotInEnum { value, .. } if value.is_empty())
            ),
            "{name}: template {t} has problems {p:?}"
        );
    }
    // an enum is left empty, to choose from its values
    assert_eq!(s.template("query-stats").unwrap(), json!({"target": ""}));
}

#[test]
fn broken_schemas_are_errors() {
    assert!(matches!(
        Schema::parse("{}"),
        Err(SchemaError::Malformed(_))
    ));
    assert!(matches!(
        Schema::parse("[{\"name\": \"x\"}]"),
        Err(SchemaError::Malformed(_))
    ));
    let dangling = r#"[{"name": "c", "meta-type": "command", "arg-type": "9", "ret-type": "9"}]"#;
    assert_eq!(
        Schema::parse(dangling),
        Err(SchemaError::UndefinedType {
            name: "9".into(),
            by: "c".into()
        })
    );
    let s = schema();
    assert_eq!(
        s.validate("nope", None),
        Err(SchemaError::UnknownCommand("nope".into()))
    );
}
