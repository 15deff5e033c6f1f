//! Format-preserving, atomic edits of models.yaml. The host only ever *adds* an instance
//! entry; it does so by inserting text at the end of the `models:` block, so the user's
//! comments, key order and formatting stay byte-for-byte as they were.

use std::io::Write;
use std::path::Path;

/// Insert `entry` (an instance block, already indented as `indent` + name) at the end of the
/// `models:` mapping of `text`. Returns the new text.
pub fn insert_instance(text: &str, entry_lines: &[String]) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let models_at = lines.iter().position(|l| {
        let t = l.trim_end();
        t == "models:"
            || t.starts_with("models:") && t["models:".len()..].trim_start().starts_with('#')
    });
    let indent = detect_indent(&lines, models_at);
    let block: String = entry_lines
        .iter()
        .map(|l| format!("{indent}{l}\n"))
        .collect();
    let Some(start) = models_at else {
        // No block-style `models:` key: add one at the end (an empty `models: {}` is
        // replaced, anything else is left for the parser to complain about).
        let mut out: String = lines
            .iter()
            .filter(|l| {
                !matches!(
                    l.trim(),
                    "models: {}" | "models:{}" | "models: ~" | "models: null"
                )
            })
            .copied()
            .collect();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("models:\n");
        out.push_str(&block);
        return out;
    };
    // The block ends before the next top-level key (a line starting with neither space nor
    // '#'), after the last line that belongs to it.
    let mut end = start + 1;
    let mut last_content = start + 1;
    while end < lines.len() {
        let l = lines[end];
        let top_level = !l.starts_with([' ', '\t', '#', '\n', '\r']) && !l.trim().is_empty();
        if top_level {
            break;
        }
        if !l.trim().is_empty() && !l.trim_start().starts_with('#') {
            last_content = end + 1;
        }
        end += 1;
    }
    let insert_at = last_content.min(lines.len());
    let mut out = String::with_capacity(text.len() + block.len() + 1);
    for l in &lines[..insert_at] {
        out.push_str(l);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&block);
    for l in &lines[insert_at..] {
        out.push_str(l);
    }
    out
}

fn detect_indent(lines: &[&str], models_at: Option<usize>) -> String {
    let Some(start) = models_at else {
        return "  ".into();
    };
    lines[start + 1..]
        .iter()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| l.chars().take_while(|c| *c == ' ').collect::<String>())
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| "  ".into())
}

/// Replace `path` with `text` atomically: write a temp file beside it, fsync, rename,
/// fsync the directory. A crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("models.yaml"),
        std::process::id()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Vec<String> {
        vec![
            "new-one:".into(),
            "  implementation: yolo".into(),
            "  port: 5003".into(),
        ]
    }

    #[test]
    fn appends_inside_models_keeping_everything_else() {
        let text = "# my models\nsettings:\n  idle_timeout: 60s   # short\n\nmodels:\n    # the face one\n    face:\n        implementation: blazeface\n        port: 5001\n\n# trailing comment\nextra_top: 1\n";
        let out = insert_instance(text, &entry());
        let expected = "# my models\nsettings:\n  idle_timeout: 60s   # short\n\nmodels:\n    # the face one\n    face:\n        implementation: blazeface\n        port: 5001\n    new-one:\n      implementation: yolo\n      port: 5003\n\n# trailing comment\nextra_top: 1\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn adds_a_models_block_when_there_is_none() {
        assert_eq!(
            insert_instance("settings: {}\nmodels: {}\n", &entry()),
            "settings: {}\nmodels:\n  new-one:\n    implementation: yolo\n    port: 5003\n"
        );
        assert_eq!(
            insert_instance("", &entry()),
            "models:\n  new-one:\n    implementation: yolo\n    port: 5003\n"
        );
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = std::env::temp_dir().join(format!("yaml-edit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("models.yaml");
        std::fs::write(&p, "a: 1\n").unwrap();
        write_atomic(&p, "b: 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b: 2\n");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temp file left behind"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
