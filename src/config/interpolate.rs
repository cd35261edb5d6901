//! `${NAME}` and `${file:PATH}` in string values (docs/configuration.md).
//!
//! The environment is passed in as a lookup function so tests never touch the process
//! environment.

use std::path::Path;

/// Why one string could not be interpolated. Never carries the resolved value, which may
/// be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    #[error("environment variable {0} is not set")]
    UnsetVar(String),
    #[error("cannot read file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("unterminated \"${{\" (write \"$${{\" for a literal \"${{\")")]
    Unterminated,
    #[error("empty \"${{}}\"")]
    Empty,
}

/// Expands every `${…}` in `raw`. `$${` is a literal `${`; any other `$` stays as it is.
pub(super) fn interpolate(
    raw: &str,
    vars: &dyn Fn(&str) -> Option<String>,
    base_dir: &Path,
) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after.find('}').ok_or(InterpolateError::Unterminated)?;
            out.push_str(&resolve(&after[..end], vars, base_dir)?);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve(
    reference: &str,
    vars: &dyn Fn(&str) -> Option<String>,
    base_dir: &Path,
) -> Result<String, InterpolateError> {
    if reference.is_empty() {
        return Err(InterpolateError::Empty);
    }
    match reference.strip_prefix("file:") {
        Some(path) => read_file(path, base_dir),
        None => vars(reference).ok_or_else(|| InterpolateError::UnsetVar(reference.to_string())),
    }
}

fn read_file(path: &str, base_dir: &Path) -> Result<String, InterpolateError> {
    let full = base_dir.join(path);
    let mut text = std::fs::read_to_string(&full).map_err(|e| InterpolateError::Unreadable {
        path: full.display().to_string(),
        reason: e.to_string(),
    })?;
    // Secret files written by editors and `kubectl create secret` end with one newline,
    // which is never part of the secret.
    if text.ends_with("\r\n") {
        text.truncate(text.len() - 2);
    } else if text.ends_with('\n') {
        text.truncate(text.len() - 1);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(raw: &str) -> Result<String, InterpolateError> {
        interpolate(raw, &vars, Path::new("/nonexistent"))
    }

    #[test]
    fn expands_variables_and_keeps_plain_dollars() {
        assert_eq!(run("x${A}y${EMPTY}z").as_deref(), Ok("xalphayz"));
        assert_eq!(run("cost $5 and $").as_deref(), Ok("cost $5 and $"));
        assert_eq!(run("$${A}").as_deref(), Ok("${A}"));
        // Read left to right: a plain "$", then the escape "$${".
        assert_eq!(run("$$${A}").as_deref(), Ok("$${A}"));
    }

    #[test]
    fn reports_unset_unterminated_and_empty() {
        assert_eq!(
            run("${NOPE}"),
            Err(InterpolateError::UnsetVar("NOPE".into()))
        );
        assert_eq!(run("${A"), Err(InterpolateError::Unterminated));
        assert_eq!(run("${}"), Err(InterpolateError::Empty));
    }

    #[test]
    fn reads_files_relative_to_the_config_folder_without_one_trailing_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("s1"), "secret\n").expect("write");
        std::fs::write(dir.path().join("s2"), "secret\r\n").expect("write");
        std::fs::write(dir.path().join("s3"), "secret\n\n").expect("write");
        let get = |p: &str| interpolate(p, &vars, dir.path());
        assert_eq!(get("${file:s1}").as_deref(), Ok("secret"));
        assert_eq!(get("${file:s2}").as_deref(), Ok("secret"));
        assert_eq!(get("${file:s3}").as_deref(), Ok("secret\n"));
        assert!(matches!(
            get("${file:missing}"),
            Err(InterpolateError::Unreadable { .. })
        ));
    }
}
