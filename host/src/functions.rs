//! Instances as Nuclio function objects: what the Nuclio dashboard returns for CVAT
//! (shared/docs/cvat-protocol.md §2) and what a generated function.yaml declares. One place
//! decides every annotation, for both the gateway and the generator.

use serde_json::{json, Map, Value};

use crate::config::InstanceSpec;
use crate::labels::{LabelSpec, ShapeType};
use crate::runtime::kind::Kind;

/// The annotation values CVAT reads, all strings, in a stable order.
pub fn annotations(
    spec: &InstanceSpec,
    kind: Kind,
    labels: &[LabelSpec],
) -> Vec<(&'static str, String)> {
    let mut a = vec![
        ("name", spec.display_name.clone()),
        ("type", kind.as_str().to_string()),
        // CVAT's UI refuses interactors below version 2.
        (
            "version",
            if kind == Kind::Interactor { "2" } else { "1" }.to_string(),
        ),
        ("spec", labels_json(labels)),
    ];
    if kind == Kind::Interactor {
        a.push(("min_pos_points", "1".into()));
        a.push(("min_neg_points", "0".into()));
        // Only emitted when true: CVAT reads any non-empty string as true.
        a.push(("startswith_box_optional", "true".into()));
        a.push((
            "help_message",
            "Click inside the object (right-click outside it); a box is optional".into(),
        ));
    }
    if kind == Kind::Tracker && !spec.config_is("tracker_interface", "legacy") {
        a.push(("supported_shape_types", "rectangle".into()));
    }
    a
}

/// `spec.description`: never empty (an empty one breaks CVAT's whole model list).
pub fn description(spec: &InstanceSpec, kind: Kind, from_component: Option<&str>) -> String {
    spec.description
        .clone()
        .or_else(|| {
            from_component
                .filter(|d| !d.trim().is_empty())
                .map(String::from)
        })
        .unwrap_or_else(|| {
            format!(
                "{kind} `{}` (WebAssembly component `{}`)",
                spec.name, spec.implementation
            )
        })
}

/// The label list as CVAT's `spec` annotation: a JSON array serialised into a string.
pub fn labels_json(labels: &[LabelSpec]) -> String {
    let list: Vec<Value> = labels
        .iter()
        .map(|l| {
            let mut o = Map::new();
            o.insert("id".into(), json!(l.id));
            o.insert("name".into(), json!(l.name));
            o.insert("type".into(), json!(l.shape.as_str()));
            if !l.attributes.is_empty() {
                o.insert("attributes".into(), json!(l.attributes));
            }
            if l.shape == ShapeType::Skeleton {
                o.insert(
                    "sublabels".into(),
                    Value::Array(
                        l.sublabels
                            .iter()
                            .map(|(id, n)| json!({"id": id, "name": n, "type": "points"}))
                            .collect(),
                    ),
                );
                o.insert("svg".into(), json!(l.svg.clone().unwrap_or_default()));
            }
            Value::Object(o)
        })
        .collect();
    Value::Array(list).to_string()
}

/// Labels from the configured class names alone (type `any`), used when the component
/// cannot describe itself.
pub fn labels_from_classes(spec: &InstanceSpec) -> Vec<LabelSpec> {
    spec.classes
        .iter()
        .enumerate()
        .map(|(i, n)| LabelSpec {
            id: i as u32,
            name: n.clone(),
            shape: ShapeType::Any,
            attributes: vec![],
            sublabels: vec![],
            svg: None,
        })
        .collect()
}

/// The dashboard's function object. Every field CVAT reads is always present.
pub fn function_object(
    spec: &InstanceSpec,
    kind: Kind,
    labels: &[LabelSpec],
    description_text: &str,
    state: &str,
) -> Value {
    let annotations: Map<String, Value> = annotations(spec, kind, labels)
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .collect();
    json!({
        "metadata": {
            "name": spec.name,
            "namespace": "nuclio",
            "labels": { "nuclio.io/project-name": "cvat" },
            "annotations": annotations,
        },
        "spec": {
            "description": description_text,
            "runtime": "wasm",
            "handler": format!("components/{}", spec.implementation),
        },
        "status": { "state": state, "httpPort": spec.port },
    })
}
