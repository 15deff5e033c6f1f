//! Instances as Nuclio function objects: what the Nuclio dashboard returns for CVAT
//! (shared/docs/cvat-protocol.md §2) and what a generated function.yaml declares. One place
//! decides every annotation, for both the gateway and the generator.

use serde_json::{json, Map, Value};

use crate::config::InstanceSpec;
use crate::cvat::labels::{LabelSpec, ModelInfo, ShapeType};
use crate::runtime::kind::Kind;

/// What an instance is listed with: by the gateway, in generated Nuclio functions and in
/// the status.
#[derive(Debug, Clone)]
pub struct Listing {
    pub labels: Vec<LabelSpec>,
    /// The component's own description, when it described itself.
    pub described_as: Option<String>,
    /// Why CVAT cannot use the instance as listed. A detector with no labels is one: CVAT
    /// would map none of them, and auto-annotation would "succeed" with no annotations.
    pub problem: Option<String>,
}

/// The listing for an instance of `kind` (`None`: its component is unusable) whose
/// component described itself as `described` (or failed to, saying why): the labels it
/// listed, else the configured classes.
pub fn listing(
    spec: &InstanceSpec,
    kind: Option<Kind>,
    described: &Result<ModelInfo, String>,
) -> Listing {
    let (mut labels, described_as, why) = match described {
        Ok(info) => (
            info.labels.clone(),
            Some(info.description.clone()),
            format!("its component listed none: {}", info.description),
        ),
        Err(e) => (vec![], None, e.clone()),
    };
    if labels.is_empty() {
        labels = labels_from_classes(spec);
    }
    let problem = (kind == Some(Kind::Detector) && labels.is_empty()).then(|| {
        format!(
            "no labels are known for this detector ({why}); name them under `classes:` in models.yaml or in a classes.txt beside the weights"
        )
    });
    Listing {
        labels,
        described_as,
        problem,
    }
}

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
        .map(|(id, n)| LabelSpec {
            id: *id,
            name: n.clone(),
            shape: ShapeType::Any,
            attributes: vec![],
            sublabels: vec![],
            svg: None,
        })
        .collect()
}

/// The dashboard's function object. Every field CVAT reads is always present. An unusable
/// instance is `error` with the reason first in its description, which CVAT shows.
pub fn function_object(spec: &InstanceSpec, kind: Kind, listing: &Listing, state: &str) -> Value {
    let annotations: Map<String, Value> = annotations(spec, kind, &listing.labels)
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .collect();
    let mut description = description(spec, kind, listing.described_as.as_deref());
    let mut state = state;
    if let Some(problem) = &listing.problem {
        description = format!("UNUSABLE: {problem}. {description}");
        state = "error";
    }
    json!({
        "metadata": {
            "name": spec.name,
            "namespace": "nuclio",
            "labels": { "nuclio.io/project-name": "cvat" },
            "annotations": annotations,
        },
        "spec": {
            "description": description,
            "runtime": "wasm",
            "handler": format!("components/{}", spec.implementation),
        },
        "status": { "state": state, "httpPort": spec.port },
    })
}
