//! etcdctl v2's command-line grammar, reproduced: Go's `flag` package rules (`-x` and `--x`
//! alike, `-x=v` or `-x v`, bool flags never take the next argument, `--` ends flags, the first
//! non-flag ends flags) plus urfave/cli v1's habit of moving command flags that follow
//! positional arguments to the front (stopping at `--`, which it moves first). Global flags
//! are only recognised before the command name.
//!
//! Also renders the framework's help screens and `Incorrect Usage` texts from flag tables.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The type of a flag's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    Bool,
    Text,
    Int,
    Duration,
    /// A text flag that may repeat; values accumulate (urfave's `StringSliceFlag`).
    TextList,
}

/// One flag of a command (or of the global set).
#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    /// Names, the first is canonical (`["recursive", "r"]`).
    pub names: &'static [&'static str],
    pub kind: FlagKind,
    pub usage: &'static str,
    /// Default shown in help (`simple`, `0`, `2s`); empty for none.
    pub default_text: &'static str,
}

/// A parsed flag value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagValue {
    Bool(bool),
    Text(String),
    Int(i64),
    Duration(Duration),
    TextList(Vec<String>),
}

/// A parse failure; `Display` is Go's `flag` package text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsError {
    /// `-h` or `--help`.
    Help,
    NotDefined {
        name: String,
    },
    NeedsArgument {
        name: String,
    },
    BadValue {
        value: String,
        name: String,
    },
    BadBool {
        value: String,
        name: String,
    },
    BadSyntax {
        arg: String,
    },
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Help => write!(f, "flag: help requested"),
            ArgsError::NotDefined { name } => write!(f, "flag provided but not defined: -{}", name),
            ArgsError::NeedsArgument { name } => write!(f, "flag needs an argument: -{}", name),
            ArgsError::BadValue { value, name } => {
                write!(
                    f,
                    "invalid value {:?} for flag -{}: parse error",
                    value, name
                )
            }
            ArgsError::BadBool { value, name } => {
                write!(
                    f,
                    "invalid boolean value {:?} for -{}: parse error",
                    value, name
                )
            }
            ArgsError::BadSyntax { arg } => write!(f, "bad flag syntax: {}", arg),
        }
    }
}

/// Flags and positional arguments after parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Keyed by the canonical (first) name.
    pub values: BTreeMap<&'static str, FlagValue>,
    pub args: Vec<String>,
}

impl Parsed {
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(FlagValue::Bool(true)))
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        match self.values.get(name) {
            Some(FlagValue::Text(text)) => Some(text),
            _ => None,
        }
    }

    pub fn int(&self, name: &str) -> i64 {
        match self.values.get(name) {
            Some(FlagValue::Int(value)) => *value,
            _ => 0,
        }
    }

    /// Every value of a repeatable flag, in order.
    pub fn list(&self, name: &str) -> Vec<String> {
        match self.values.get(name) {
            Some(FlagValue::TextList(values)) => values.clone(),
            _ => Vec::new(),
        }
    }

    pub fn duration(&self, name: &str) -> Option<Duration> {
        match self.values.get(name) {
            Some(FlagValue::Duration(value)) => Some(*value),
            _ => None,
        }
    }
}

fn lookup<'a>(specs: &'a [FlagSpec], name: &str) -> Option<&'a FlagSpec> {
    specs.iter().find(|spec| spec.names.contains(&name))
}

/// urfave/cli v1 `reorderArgs`: command flags (and the argument after a flag written without
/// `=`, when it is not itself a flag) move to the front; a `--` moves in front of all
/// positional arguments and stops the reordering.
pub fn reorder_args(specs: &[FlagSpec], args: &[String]) -> Vec<String> {
    let is_flag = |arg: &str| -> bool {
        if arg == "-" || arg == "--" || !arg.starts_with('-') {
            return false;
        }
        let stripped = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .unwrap_or(arg);
        let name = stripped.split('=').next().unwrap_or("");
        lookup(specs, name).is_some() || name == "help" || name == "h"
    };
    let mut reordered = Vec::new();
    let mut remaining: Vec<String> = Vec::new();
    let mut next_may_be_value = false;
    for (i, arg) in args.iter().enumerate() {
        if next_may_be_value && !is_flag(arg) {
            next_may_be_value = false;
            reordered.push(arg.clone());
        } else if arg == "--" {
            remaining.insert(0, "--".to_string());
            remaining.extend(args[i + 1..].iter().cloned());
            break;
        } else if is_flag(arg) {
            reordered.push(arg.clone());
            next_may_be_value = !arg.contains('=');
        } else {
            remaining.push(arg.clone());
        }
    }
    reordered.extend(remaining);
    reordered
}

/// Go `flag.FlagSet.Parse`: reads flags until the first non-flag or `--`.
pub fn parse_flags(specs: &[FlagSpec], args: &[String]) -> Result<Parsed, ArgsError> {
    let mut parsed = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        if arg == "--" {
            i += 1;
            break;
        }
        let body = arg.strip_prefix("--").unwrap_or(&arg[1..]);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(ArgsError::BadSyntax { arg: arg.clone() });
        }
        let (name, inline_value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (body, None),
        };
        i += 1;
        let Some(spec) = lookup(specs, name) else {
            if name == "help" || name == "h" {
                return Err(ArgsError::Help);
            }
            return Err(ArgsError::NotDefined {
                name: name.to_string(),
            });
        };
        let value = match spec.kind {
            FlagKind::Bool => match inline_value {
                None => FlagValue::Bool(true),
                Some(text) => FlagValue::Bool(parse_go_bool(&text).ok_or(ArgsError::BadBool {
                    value: text.clone(),
                    name: name.to_string(),
                })?),
            },
            kind => {
                let text = match inline_value {
                    Some(text) => text,
                    None => {
                        let Some(next) = args.get(i) else {
                            return Err(ArgsError::NeedsArgument {
                                name: name.to_string(),
                            });
                        };
                        i += 1;
                        next.clone()
                    }
                };
                let bad = || ArgsError::BadValue {
                    value: text.clone(),
                    name: name.to_string(),
                };
                match kind {
                    FlagKind::Int => FlagValue::Int(parse_go_int(&text).ok_or_else(bad)?),
                    FlagKind::Duration => {
                        FlagValue::Duration(parse_go_duration(&text).ok_or_else(bad)?)
                    }
                    FlagKind::TextList => {
                        let mut values = match parsed.values.remove(spec.names[0]) {
                            Some(FlagValue::TextList(values)) => values,
                            _ => Vec::new(),
                        };
                        values.push(text.clone());
                        FlagValue::TextList(values)
                    }
                    _ => FlagValue::Text(text.clone()),
                }
            }
        };
        parsed.values.insert(spec.names[0], value);
    }
    parsed.args = args[i..].to_vec();
    Ok(parsed)
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(text, 0, 64)`: optional sign, `0x`/`0o`/`0b`/leading-`0` prefixes,
/// underscores only after a prefix.
pub fn parse_go_int(text: &str) -> Option<i64> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest.to_string(), true)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest.to_string(), true)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    if digits.contains('_') && !prefixed {
        return None;
    }
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = u64::from_str_radix(&digits, radix).ok()?;
    if negative {
        if magnitude > i64::MAX as u64 + 1 {
            return None;
        }
        Some((magnitude as i64).wrapping_neg())
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go's `time.ParseDuration` for non-negative results (`2s`, `1m30s`, `1.5h`, `500ms`, `0`).
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let (negative, mut rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_nanos: f64 = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total_nanos += number.parse::<f64>().ok()? * unit_nanos;
    }
    if total_nanos > 9.2e18 {
        return None;
    }
    if negative {
        // Negative durations exist in Go; for timeouts they behave like "already expired".
        return Some(Duration::ZERO);
    }
    Some(Duration::from_nanos(total_nanos as u64))
}

/// A command or sub-command with its help text.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    pub name: &'static str,
    pub usage: &'static str,
    pub args_usage: &'static str,
    pub description: &'static str,
    pub flags: &'static [FlagSpec],
}

/// The left column of a flag in help output: `--ttl value`, `--output simple, -o simple`.
fn flag_column(spec: &FlagSpec) -> (String, String) {
    let (placeholder, usage) = match spec.usage.find('`') {
        Some(open) => match spec.usage[open + 1..].find('`') {
            Some(len) => {
                let name = &spec.usage[open + 1..open + 1 + len];
                let usage = format!(
                    "{}{}{}",
                    &spec.usage[..open],
                    name,
                    &spec.usage[open + 2 + len..]
                );
                (name.to_string(), usage)
            }
            None => ("value".to_string(), spec.usage.to_string()),
        },
        None => ("value".to_string(), spec.usage.to_string()),
    };
    let names: Vec<String> = spec
        .names
        .iter()
        .map(|name| {
            let dashes = if name.len() == 1 { "-" } else { "--" };
            if spec.kind == FlagKind::Bool {
                format!("{}{}", dashes, name)
            } else {
                format!("{}{} {}", dashes, name, placeholder)
            }
        })
        .collect();
    let mut usage = usage;
    if !spec.default_text.is_empty() {
        if spec.kind == FlagKind::Text {
            usage.push_str(&format!(" (default: {:?})", spec.default_text));
        } else {
            usage.push_str(&format!(" (default: {})", spec.default_text));
        }
    }
    (names.join(", "), usage)
}

fn aligned(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(left, _)| left.chars().count())
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(left, right)| {
            let pad = width - left.chars().count() + 2;
            format!("   {}{}{}\n", left, " ".repeat(pad), right)
        })
        .collect()
}

/// urfave/cli v1's help screen for a leaf command (`etcdctl get -h`).
pub fn command_help(parent: &str, command: &CommandSpec) -> String {
    let full_name = format!("{} {}", parent, command.name);
    let mut out = format!(
        "NAME:\n   {} - {}\n\nUSAGE:\n   {}",
        full_name, command.usage, full_name
    );
    if !command.flags.is_empty() {
        out.push_str(" [command options]");
    }
    if command.args_usage.is_empty() {
        out.push_str(" [arguments...]");
    } else {
        out.push_str(&format!(" {}", command.args_usage));
    }
    if !command.description.is_empty() {
        out.push_str(&format!("\n\nDESCRIPTION:\n   {}", command.description));
    }
    if !command.flags.is_empty() {
        out.push_str("\n\nOPTIONS:\n");
        let rows: Vec<(String, String)> = command.flags.iter().map(flag_column).collect();
        out.push_str(&aligned(&rows));
        out.push_str("   ");
    }
    out.push('\n');
    out
}

/// urfave/cli v1's help screen for a command group or the whole app.
pub fn group_help(
    name: &str,
    usage: &str,
    usage_line: &str,
    version: Option<&str>,
    commands: &[(&str, &str)],
    flags: &[FlagSpec],
    options_title: &str,
) -> String {
    let mut out = format!(
        "NAME:\n   {} - {}\n\nUSAGE:\n   {}\n",
        name, usage, usage_line
    );
    if let Some(version) = version {
        out.push_str(&format!("\nVERSION:\n   {}\n", version));
    }
    out.push_str("\nCOMMANDS:\n");
    let rows: Vec<(String, String)> = commands
        .iter()
        .map(|(name, usage)| (name.to_string(), usage.to_string()))
        .collect();
    out.push_str(&aligned(&rows));
    out.push_str(&format!("\n{}:\n", options_title));
    let mut rows: Vec<(String, String)> = flags.iter().map(flag_column).collect();
    rows.push(("--help, -h".to_string(), "show help".to_string()));
    if version.is_some() {
        rows.push(("--version, -v".to_string(), "print the version".to_string()));
    }
    out.push_str(&aligned(&rows));
    if version.is_none() {
        // Sub-command groups end with an indented empty line; the app screen does not.
        out.push_str("   \n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: FlagSpec = FlagSpec {
        names: &["ttl"],
        kind: FlagKind::Int,
        usage: "key time-to-live in seconds",
        default_text: "0",
    };
    const RECURSIVE: FlagSpec = FlagSpec {
        names: &["recursive", "r"],
        kind: FlagKind::Bool,
        usage: "recurse",
        default_text: "",
    };

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_after_positionals_are_moved_to_the_front() {
        let specs = [TTL, RECURSIVE];
        let args = reorder_args(&specs, &strings(&["/k", "v", "--ttl", "5"]));
        let parsed = parse_flags(&specs, &args).unwrap();
        assert_eq!((parsed.int("ttl"), parsed.args), (5, strings(&["/k", "v"])));
        let args = reorder_args(&specs, &strings(&["--", "/k", "-v"]));
        assert_eq!(
            parse_flags(&specs, &args).unwrap().args,
            strings(&["/k", "-v"])
        );
    }

    #[test]
    fn exec_watch_separator_quirk_is_reproduced() {
        let specs = [RECURSIVE];
        let plain = reorder_args(&specs, &strings(&["/foo", "--", "sh", "-c", "x"]));
        assert_eq!(
            parse_flags(&specs, &plain).unwrap().args,
            strings(&["/foo", "sh", "-c", "x"])
        );
        let flagged = reorder_args(&specs, &strings(&["-r", "/foo", "--", "sh", "-c", "x"]));
        let parsed = parse_flags(&specs, &flagged).unwrap();
        assert!(parsed.bool("recursive"));
        assert_eq!(parsed.args, strings(&["/foo", "--", "sh", "-c", "x"]));
    }

    #[test]
    fn go_flag_errors() {
        let specs = [TTL, RECURSIVE];
        let error = |args: &[&str]| parse_flags(&specs, &strings(args)).unwrap_err().to_string();
        assert_eq!(error(&["--foo"]), "flag provided but not defined: -foo");
        assert_eq!(error(&["--ttl"]), "flag needs an argument: -ttl");
        assert_eq!(
            error(&["-ttl", "abc"]),
            "invalid value \"abc\" for flag -ttl: parse error"
        );
        assert_eq!(
            error(&["-r=maybe"]),
            "invalid boolean value \"maybe\" for -r: parse error"
        );
        assert_eq!(error(&["---x"]), "bad flag syntax: ---x");
        assert_eq!(
            parse_flags(&specs, &strings(&["-h"])).unwrap_err(),
            ArgsError::Help
        );
        let roles = FlagSpec {
            names: &["roles"],
            kind: FlagKind::TextList,
            usage: "",
            default_text: "",
        };
        let repeated = parse_flags(&[roles], &strings(&["--roles", "a,b", "--roles=c"])).unwrap();
        assert_eq!(repeated.list("roles"), strings(&["a,b", "c"]));
        let parsed = parse_flags(&specs, &strings(&["-ttl=-5", "-r=false", "-", "x"])).unwrap();
        assert_eq!((parsed.int("ttl"), parsed.bool("recursive")), (-5, false));
        assert_eq!(parsed.args, strings(&["-", "x"]));
    }

    #[test]
    fn go_numbers_and_durations() {
        assert_eq!(parse_go_int("0x10"), Some(16));
        assert_eq!(parse_go_int("010"), Some(8));
        assert_eq!(parse_go_int("-3"), Some(-3));
        assert_eq!(parse_go_int("1_0"), None);
        assert_eq!(parse_go_int(""), None);
        assert_eq!(parse_go_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("3"), None);
        assert_eq!(parse_go_duration("3x"), None);
    }

    #[test]
    fn help_columns_are_aligned_like_urfave() {
        let spec = CommandSpec {
            name: "set",
            usage: "set the value of a key",
            args_usage: "<key> <value>",
            description: "",
            flags: &[TTL, RECURSIVE],
        };
        assert_eq!(
            command_help("etcdctl", &spec),
            "NAME:\n   etcdctl set - set the value of a key\n\nUSAGE:\n   etcdctl set [command \
             options] <key> <value>\n\nOPTIONS:\n   --ttl value      key time-to-live in \
             seconds (default: 0)\n   --recursive, -r  recurse\n   \n"
        );
    }
}
