//! A collapsible JSON tree that renders lazily: a closed node costs one line, whatever it
//! holds, and an open array or object shows its children a page at a time. So the ~200 KB
//! `query-qmp-schema` reply (1000+ entities) renders as one open list of closed lines.

use std::rc::Rc;

use serde_json::Value;
use yew::prelude::*;

use super::RcByPtr;
use crate::hooks::use_toggle;

/// Children shown per page of an open node.
pub const PAGE: usize = 100;

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(Rc<str>),
    Index(usize),
}

fn lookup<'a>(root: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(root, |v, seg| match seg {
        Seg::Key(k) => v.get(&**k),
        Seg::Index(i) => v.get(*i),
    })
}

/// One line of a value: scalars in full (long strings cut), containers as a preview.
pub fn preview(v: &Value, budget: usize) -> String {
    let text = match v {
        Value::Array(a) if a.is_empty() => "[]".to_owned(),
        Value::Object(o) if o.is_empty() => "{}".to_owned(),
        Value::Array(a) => format!("[{} item{}]", a.len(), if a.len() == 1 { "" } else { "s" }),
        Value::Object(o) => {
            let mut s = String::from("{");
            for (i, (k, val)) in o.iter().enumerate() {
                if s.len() > budget {
                    s.push_str(", …");
                    break;
                }
                if i > 0 {
                    s.push_str(", ");
                }
                let inner = match val {
                    Value::Object(o) if !o.is_empty() => "{…}".to_owned(),
                    Value::Array(_) | Value::Object(_) => preview(val, 0),
                    other => other.to_string(),
                };
                s.push_str(&format!("{k}: {inner}"));
            }
            s.push('}');
            s
        }
        other => other.to_string(),
    };
    if text.chars().count() > budget.max(40) + 20 {
        let cut: String = text.chars().take(budget.max(40)).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[derive(Properties, PartialEq)]
pub struct JsonTreeProps {
    pub value: RcByPtr<Value>,
}

/// The tree of a whole value; the root starts open.
#[function_component(JsonTree)]
pub fn json_tree(props: &JsonTreeProps) -> Html {
    // a small reply opens whole (a few levels); a large one opens only its root
    let open_depth = if nodes_up_to(&props.value.0, SMALL) < SMALL {
        4
    } else {
        1
    };
    html! {
        <div class="json-tree mono">
            <JsonNode root={props.value.clone()} path={Rc::new(Vec::new())} label={None::<AttrValue>}
                      depth={0} {open_depth} />
        </div>
    }
}

/// Replies with fewer values than this open whole.
const SMALL: usize = 60;

/// The number of values in `v` (itself included), counting no further than `limit`.
pub fn nodes_up_to(v: &Value, limit: usize) -> usize {
    let mut n = 1;
    let children: Box<dyn Iterator<Item = &Value>> = match v {
        Value::Array(a) => Box::new(a.iter()),
        Value::Object(o) => Box::new(o.values()),
        _ => return 1,
    };
    for c in children {
        if n >= limit {
            break;
        }
        n += nodes_up_to(c, limit - n);
    }
    n
}

#[derive(Properties, PartialEq)]
struct NodeProps {
    root: RcByPtr<Value>,
    path: Rc<Vec<Seg>>,
    label: Option<AttrValue>,
    depth: usize,
    /// Nodes shallower than this start open.
    open_depth: usize,
}

#[function_component(JsonNode)]
fn json_node(props: &NodeProps) -> Html {
    let value = lookup(&props.root.0, &props.path);
    let size = match value {
        Some(Value::Array(a)) => a.len(),
        Some(Value::Object(o)) => o.len(),
        _ => 0,
    };
    let start_open = props.depth < props.open_depth;
    let (open, toggle) = use_toggle(start_open);
    let shown = use_state(|| PAGE);
    let Some(value) = value else { return html! {} };
    let key = props
        .label
        .clone()
        .map(|l| html! { <span class="key">{ l }{ ": " }</span> });
    if size == 0 {
        let class = match value {
            Value::String(_) => "str",
            Value::Number(_) => "num",
            Value::Bool(_) | Value::Null => "lit",
            _ => "",
        };
        return html! {
            <div class="node leaf">{ for key }<span class={class}>{ preview(value, 2000) }</span></div>
        };
    }
    let head = html! {
        <button class="toggle" onclick={toggle} aria-expanded={open.to_string()}>
            { if open { "▾ " } else { "▸ " } }
            { for key }
            <span class="preview">{ if open { format!("{} {}", if value.is_array() { "array" } else { "object" }, size) } else { preview(value, 80) } }</span>
        </button>
    };
    if !open {
        return html! { <div class="node">{ head }</div> };
    }
    let child = |seg: Seg, label: String| {
        let mut path = (*props.path).clone();
        path.push(seg);
        html! {
            <JsonNode root={props.root.clone()} path={Rc::new(path)} label={Some(AttrValue::from(label))}
                       depth={props.depth + 1} open_depth={props.open_depth} />
        }
    };
    let children: Html = match value {
        Value::Array(a) => (0..a.len().min(*shown))
            .map(|i| child(Seg::Index(i), i.to_string()))
            .collect(),
        Value::Object(o) => o
            .keys()
            .take(*shown)
            .map(|k| child(Seg::Key(Rc::from(k.as_str())), k.clone()))
            .collect(),
        _ => Html::default(),
    };
    let more = (size > *shown).then(|| {
        let left = size - *shown;
        let handle = shown.clone();
        let onclick = Callback::from(move |_: MouseEvent| handle.set(*handle + PAGE));
        html! {
            <button class="more" {onclick}>{ format!("show {} more ({left} not shown)", PAGE.min(left)) }</button>
        }
    });
    html! {
        <div class="node">
            { head }
            <div class="children">{ children }{ for more }</div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counting_stops_at_the_limit() {
        assert_eq!(nodes_up_to(&json!({"a": [1, 2], "b": null}), 100), 5);
        let big = Value::Array(vec![json!({"x": 1}); 10_000]);
        assert!(nodes_up_to(&big, 60) <= 61);
    }

    #[test]
    fn previews_are_one_short_line() {
        assert_eq!(
            preview(&json!({"name": "query-status", "arg-type": "0"}), 80),
            r#"{arg-type: "0", name: "query-status"}"#
        );
        assert_eq!(preview(&json!([1, 2, 3]), 80), "[3 items]");
        assert_eq!(
            preview(&json!({"a": {"b": 1}, "c": [], "d": [true]}), 80),
            "{a: {…}, c: [], d: [1 item]}"
        );
        let long = preview(&json!("x".repeat(500)), 80);
        assert!(long.chars().count() <= 81 && long.ends_with('…'));
    }
}
