//! `host new <kind> <name>`: a component crate that builds and passes its smoke test.

use std::path::Path;

use crate::config::check_name;

const DETECTOR: &str = include_str!("detector.rs.tmpl");

/// Create `components_dir/<name>/` for a component of `kind` and add it to the guest
/// workspace. Returns the files written.
pub fn new_component(components_dir: &Path, kind: &str, name: &str) -> Result<Vec<String>, String> {
    check_name(name)?;
    if name.contains(['.', '_']) || name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "`{name}`: use lowercase letters, digits and '-' for a component crate"
        ));
    }
    let template = match kind {
        "detector" => DETECTOR,
        "tracker" | "interactor" | "reid" => {
            let example = match kind {
                "tracker" => "ncc-tracker",
                "interactor" => "sam",
                _ => "reid",
            };
            return Err(format!(
                "`host new` scaffolds detectors only; for a {kind}, copy components/{example} (a complete {kind} component) and rename it"
            ));
        }
        other => {
            return Err(format!(
                "unknown kind `{other}` (detector, tracker, interactor, reid)"
            ))
        }
    };
    let dir = components_dir.join(name);
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let workspace = components_dir.join("Cargo.toml");
    let ws_text =
        std::fs::read_to_string(&workspace).map_err(|e| format!("{}: {e}", workspace.display()))?;
    let Some(members_at) = ws_text.find("members = [") else {
        return Err(format!(
            "{}: no `members = [` list to add the crate to",
            workspace.display()
        ));
    };
    let close = members_at
        + ws_text[members_at..]
            .find(']')
            .ok_or("unterminated members list")?;
    let ws_new = format!(
        "{}, \"{name}\"{}",
        ws_text[..close].trim_end_matches([' ', ',']),
        &ws_text[close..]
    );

    std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    let cargo = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition.workspace = true\nlicense.workspace = true\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nwit-bindgen.workspace = true\nmodel-sdk.workspace = true\n"
    );
    let files = [
        ("Cargo.toml", cargo),
        ("src/lib.rs", template.replace("{{name}}", name)),
    ];
    let mut written = Vec::new();
    for (rel, content) in files {
        let p = dir.join(rel);
        std::fs::write(&p, content).map_err(|e| format!("{}: {e}", p.display()))?;
        written.push(p.display().to_string());
    }
    crate::config::yaml_edit::write_atomic(&workspace, &ws_new).map_err(|e| e.to_string())?;
    written.push(format!("{} (added to members)", workspace.display()));
    Ok(written)
}
