//! The TOML configuration file of `serve`: its keys are the long names of the `serve` flags
//! (`listen = "0.0.0.0:6001"`, `data-dir = "/var/lib/chatbox"`, `max-per-ip = 16`, …).
//!
//! Generic over the flags: a key is looked up among the arguments of the `serve` command by its
//! long name and its value goes through that argument's own clap value parser, so a flag added
//! to `serve` works in the file with no code here. Precedence is command line > environment >
//! file > default: a file value is used only where clap's [`ArgMatches::value_source`] says
//! the flag came from its default or was not given, by parsing the command line again with
//! `--KEY=VALUE` appended for those keys.
//!
//! Errors (missing or unreadable file, not TOML, unknown key, bad value) name the file, the
//! line and the key, and come before anything starts.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use toml::{Spanned, Value};

/// Flags of `serve` that are not settings and cannot be in the file.
const NOT_SETTINGS: [&str; 3] = ["config", "help", "version"];

/// A configuration error: what went wrong, naming the file, line and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError(pub String);

impl core::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::error::Error for SettingsError {}

/// What a configuration file contributes.
#[derive(Debug, Clone, Default)]
pub struct FileValues {
    /// The file.
    pub path: PathBuf,
    /// `--KEY=VALUE` (or `--KEY` for a switch) for the keys the command line and the
    /// environment did not set: append them to the command line and parse it again.
    pub extra_args: Vec<OsString>,
    /// Argument id → line in the file, for every key that was applied.
    pub applied: HashMap<String, usize>,
    /// Key → line in the file, for keys overridden by the command line or environment.
    pub overridden: HashMap<String, usize>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.bytes().filter(|&b| b == b'\n').count())
        + 1
}

/// The argument of `serve` whose long name is `key`.
fn arg_by_long<'a>(serve: &'a Command, key: &str) -> Option<&'a Arg> {
    serve
        .get_arguments()
        .find(|a| a.get_long() == Some(key) && !NOT_SETTINGS.contains(&a.get_id().as_str()))
}

/// The TOML value as the strings clap would get on the command line.
fn as_strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Integer(i) => Some(vec![i.to_string()]),
        Value::Float(f) => Some(vec![f.to_string()]),
        Value::Boolean(b) => Some(vec![b.to_string()]),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                as_strings(i)
                    .filter(|v| v.len() == 1)
                    .and_then(|mut v| v.pop())
            })
            .collect(),
        Value::Datetime(_) | Value::Table(_) => None,
    }
}

fn is_switch(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

/// Whether the command line or the environment set this argument.
fn set_outside_file(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches
            .try_get_raw(id)
            .ok()
            .flatten()
            .and(matches.value_source(id)),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// Reads `path` against the arguments of `serve` and the matches of a first parse (to know
/// what the command line and environment already set).
pub fn read_file(
    path: &Path,
    serve: &Command,
    matches: &ArgMatches,
) -> Result<FileValues, SettingsError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| SettingsError(format!("config file {shown}: cannot read it: {e}")))?;
    let table: BTreeMap<Spanned<String>, Spanned<Value>> = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(" line {}", line_of(&text, s.start)))
            .unwrap_or_default();
        SettingsError(format!(
            "config file {shown}{at}: not valid TOML: {}",
            e.message()
        ))
    })?;
    let mut out = FileValues {
        path: path.to_path_buf(),
        ..FileValues::default()
    };
    for (key, value) in &table {
        let line = line_of(&text, key.span().start);
        let name = key.get_ref();
        let at = format!("config file {shown} line {line}: key `{name}`");
        let Some(arg) = arg_by_long(serve, name) else {
            return Err(SettingsError(format!(
                "{at}: unknown key (the keys are the long flag names of `chatbox-server serve --help`)"
            )));
        };
        let args = file_args(arg, name, value.get_ref())
            .map_err(|why| SettingsError(format!("{at}: {why}")))?;
        // The value is checked by the flag's own parser, alone (no environment).
        let probe = Command::new("chatbox-server")
            .no_binary_name(true)
            .arg(arg.clone().env(None::<&str>).required(false))
            .try_get_matches_from(&args);
        if let Err(e) = probe {
            let msg = e.render().to_string();
            let first = msg
                .lines()
                .next()
                .unwrap_or("invalid value")
                .trim_start_matches("error: ");
            return Err(SettingsError(format!("{at}: {first}")));
        }
        let id = arg.get_id().as_str().to_owned();
        if set_outside_file(matches, &id) {
            out.overridden.insert(name.clone(), line);
        } else {
            out.extra_args.extend(args);
            out.applied.insert(id, line);
        }
    }
    Ok(out)
}

/// The command-line arguments standing for `key = value`.
fn file_args(arg: &Arg, key: &str, value: &Value) -> Result<Vec<OsString>, String> {
    if is_switch(arg) {
        return match value {
            Value::Boolean(true) => Ok(vec![OsString::from(format!("--{key}"))]),
            Value::Boolean(false) => Ok(Vec::new()),
            _ => Err("expected true or false".to_owned()),
        };
    }
    let values = as_strings(value).ok_or("expected a string, number, boolean or array of them")?;
    let many = matches!(arg.get_action(), ArgAction::Append)
        || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
    if values.len() != 1 && !many {
        return Err("expected one value, not an array".to_owned());
    }
    Ok(values
        .into_iter()
        .map(|v| OsString::from(format!("--{key}={v}")))
        .collect())
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The command line.
    CommandLine,
    /// An environment variable.
    Env(String),
    /// The configuration file, at a line.
    File(PathBuf, usize),
    /// The flag's default.
    Default,
    /// Not set and no default.
    Unset,
}

impl core::fmt::Display for Source {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Source::CommandLine => f.write_str("command line"),
            Source::Env(v) => write!(f, "environment {v}"),
            Source::File(p, line) => write!(f, "{} line {line}", p.display()),
            Source::Default => f.write_str("default"),
            Source::Unset => f.write_str("unset"),
        }
    }
}

/// One effective setting: its key (the long flag name), its value as given (URL passwords
/// masked) and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// The key (long flag name).
    pub key: String,
    /// The value(s), URL passwords shown as `***`; `None` when unset.
    pub value: Option<String>,
    /// Where it came from.
    pub source: Source,
}

/// Every setting of `serve` in the final matches (after the file's arguments were appended),
/// in the order of `serve --help`.
#[must_use]
pub fn effective(
    serve: &Command,
    matches: &ArgMatches,
    file: Option<&FileValues>,
) -> Vec<Effective> {
    let mut out = Vec::new();
    for arg in serve.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(key) = arg.get_long() else { continue };
        if NOT_SETTINGS.contains(&id) {
            continue;
        }
        let raw = matches.try_get_raw(id).ok().flatten();
        let given = raw.is_some();
        let value = raw.map(|vals| {
            vals.map(|v| crate::store::redact(&v.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(",")
        });
        let source = match (given, matches.value_source(id)) {
            (false, _) | (_, None) => Source::Unset,
            (true, Some(ValueSource::DefaultValue)) => Source::Default,
            (true, Some(ValueSource::EnvVariable)) => Source::Env(
                arg.get_env()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            (true, Some(_)) => match file.and_then(|f| f.applied.get(id).map(|l| (f, *l))) {
                Some((f, line)) => Source::File(f.path.clone(), line),
                None => Source::CommandLine,
            },
        };
        // A switch left off has a default `false`; show it as such.
        let value = if is_switch(arg) && value.is_none() {
            Some("false".to_owned())
        } else {
            value
        };
        out.push(Effective {
            key: key.to_owned(),
            value,
            source,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve() -> Command {
        Command::new("serve")
            .arg(Arg::new("config").long("config"))
            .arg(
                Arg::new("max_per_ip")
                    .long("max-per-ip")
                    .default_value("32")
                    .value_parser(clap::value_parser!(u16).range(1..=1000)),
            )
            .arg(Arg::new("database").long("database"))
            .arg(Arg::new("quiet").long("quiet").action(ArgAction::SetTrue))
    }

    fn file(text: &str, argv: &[&str]) -> Result<(FileValues, ArgMatches), SettingsError> {
        let dir = tempfile::tempdir().map_err(|e| SettingsError(e.to_string()))?;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).map_err(|e| SettingsError(e.to_string()))?;
        let m = serve()
            .try_get_matches_from(argv)
            .map_err(|e| SettingsError(e.to_string()))?;
        let f = read_file(&path, &serve(), &m)?;
        let mut all: Vec<OsString> = argv.iter().map(OsString::from).collect();
        all.extend(f.extra_args.clone());
        let m = serve()
            .try_get_matches_from(all)
            .map_err(|e| SettingsError(e.to_string()))?;
        Ok((f, m))
    }

    #[test]
    fn file_fills_defaults_command_line_wins() {
        let (f, m) = file(
            "# c\nmax-per-ip = 16\ndatabase = \"postgres://u:pw@h/db\"\nquiet = true\n",
            &["serve", "--database", "x.db"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.get_one::<u16>("max_per_ip"), Some(&16));
        assert_eq!(
            m.get_one::<String>("database").map(String::as_str),
            Some("x.db")
        );
        assert!(m.get_flag("quiet"));
        assert_eq!(f.overridden.get("database"), Some(&3));
        let eff = effective(&serve(), &m, Some(&f));
        let mp = eff
            .iter()
            .find(|e| e.key == "max-per-ip")
            .unwrap_or_else(|| panic!());
        assert_eq!(mp.source, Source::File(f.path.clone(), 2));
        let db = eff
            .iter()
            .find(|e| e.key == "database")
            .unwrap_or_else(|| panic!());
        assert_eq!(db.source, Source::CommandLine);
    }

    #[test]
    fn bad_files_name_key_and_line() {
        let e = file("\n\nmax-per-iq = 3\n", &["serve"])
            .err()
            .unwrap_or_else(|| panic!());
        assert!(
            e.0.contains("line 3") && e.0.contains("`max-per-iq`") && e.0.contains("unknown key"),
            "{e}"
        );
        let e = file("max-per-ip = 5000\n", &["serve"])
            .err()
            .unwrap_or_else(|| panic!());
        assert!(
            e.0.contains("line 1") && e.0.contains("`max-per-ip`") && e.0.contains("5000"),
            "{e}"
        );
        let e = file("quiet = \"yes\"\n", &["serve"])
            .err()
            .unwrap_or_else(|| panic!());
        assert!(
            e.0.contains("`quiet`") && e.0.contains("true or false"),
            "{e}"
        );
        let e = file("a = [\n", &["serve"])
            .err()
            .unwrap_or_else(|| panic!());
        assert!(e.0.contains("not valid TOML"), "{e}");
        let e = file("config = \"x\"\n", &["serve"])
            .err()
            .unwrap_or_else(|| panic!());
        assert!(e.0.contains("unknown key"), "{e}");
    }
}
