//! From text to a validated [`Config`]: parse TOML, interpolate strings, deserialize each
//! section on its own (so one bad section does not hide the problems of the others), then
//! validate.

use std::path::Path;

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::file::{FileConfig, RouteSection, SECTIONS};
use super::interpolate::interpolate;
use super::validate::validate;
use super::{ConfigError, Loaded, Problem};

/// Reads and validates the file at `path`; `${NAME}` comes from the process environment.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    load_str(&text, base, &|name| std::env::var(name).ok())
}

/// Validates `text`; `${NAME}` is looked up with `vars`, `${file:…}` relative to `base_dir`.
pub fn load_str(
    text: &str,
    base_dir: &Path,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let mut table: Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax(e.to_string().trim_end().to_string()))?;
    let mut problems = Vec::new();
    for (key, value) in table.iter_mut() {
        interpolate_value(value, key, vars, base_dir, &mut problems);
    }
    let file = deserialize_sections(table, &mut problems);
    let mut warnings = Vec::new();
    let config = validate(&file, base_dir, &mut problems, &mut warnings);
    match config {
        Some(config) if problems.is_empty() => Ok(Loaded { config, warnings }),
        _ => Err(ConfigError::Invalid(problems)),
    }
}

fn interpolate_value(
    value: &mut Value,
    path: &str,
    vars: &dyn Fn(&str) -> Option<String>,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) {
    match value {
        Value::String(s) => match interpolate(s, vars, base_dir) {
            Ok(expanded) => *s = expanded,
            Err(e) => problems.push(Problem {
                path: path.to_string(),
                message: e.to_string(),
            }),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_value(item, &format!("{path}[{i}]"), vars, base_dir, problems);
            }
        }
        Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                interpolate_value(item, &format!("{path}.{key}"), vars, base_dir, problems);
            }
        }
        Value::Integer(_) | Value::Float(_) | Value::Boolean(_) | Value::Datetime(_) => {}
    }
}

fn deserialize_sections(mut table: Table, problems: &mut Vec<Problem>) -> FileConfig {
    for key in table.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            problems.push(Problem {
                path: key.clone(),
                message: format!("unknown key (expected one of: {})", SECTIONS.join(", ")),
            });
        }
    }
    let mut file = FileConfig {
        server: section(&mut table, "server", problems),
        admin: section(&mut table, "admin", problems),
        upstream: section(&mut table, "upstream", problems),
        dedup: section(&mut table, "dedup", problems),
        queue: section(&mut table, "queue", problems),
        log: section(&mut table, "log", problems),
        routes: Vec::new(),
    };
    match table.remove("routes") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                if let Some(route) = parse::<RouteSection>(item, &format!("routes[{i}]"), problems)
                {
                    file.routes.push(route);
                }
            }
        }
        Some(_) => problems.push(Problem {
            path: "routes".into(),
            message: "must be an array of tables ([[routes]])".into(),
        }),
    }
    file
}

fn section<T: DeserializeOwned + Default>(
    table: &mut Table,
    key: &str,
    problems: &mut Vec<Problem>,
) -> T {
    match table.remove(key) {
        None => T::default(),
        Some(value) => parse(value, key, problems).unwrap_or_default(),
    }
}

fn parse<T: DeserializeOwned>(value: Value, path: &str, problems: &mut Vec<Problem>) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let full = if inner == "." {
                path.to_string()
            } else {
                format!("{path}.{inner}")
            };
            problems.push(Problem {
                path: full,
                message: e.into_inner().message().to_string(),
            });
            None
        }
    }
}
