//! Scenario files: the request sequences of the differential suite, as data.
//!
//! Files live in `tests/diff/scenarios/*.txt` and are read in name order. Format, one item per
//! line (`#` starts a comment line, blank lines are ignored):
//!
//! ```text
//! === name                      starts a scenario; names must be unique
//! METHOD TARGET                 a request without a body (METHOD is any token: GET, PATCH, ...)
//! METHOD TARGET BODY            a request with a form body (everything after the 2nd space),
//!                               sent with Content-Type: application/x-www-form-urlencoded
//!   header NAME: VALUE          (indented) adds a header to the request above (a Host header
//!                               replaces the default `Host: 127.0.0.1:<port>`)
//!   ctype VALUE                 replaces the form content type ("-" = no Content-Type at all)
//!   bigbody N                   body = "value=" followed by 'a's, N bytes in total (form type)
//!   status-only                 compare only the status code of this response
//!   shape-only                  compare JSON structure only (all scalars become tokens)
//! RAW BYTES                     sends BYTES exactly (escapes below); status-only comparison
//! WATCH LABEL TARGET            sends a GET and reads the response head (the watch is
//!                               registered when the head arrives); the response is finished by
//! AWAIT LABEL [MS]              reads the rest for at most MS ms (default 1000) and records it
//! SLEEP MS                      pauses
//! REPEAT N METHOD TARGET [BODY] sends the request N times; only the last response is recorded
//! PIPELINE N                    the next N requests are written at once on one keep-alive
//!                               connection (only the last says `Connection: close`) and their
//!                               N responses are read from it in order
//! RESTART                       kills the server (SIGKILL) and starts it again on the same data
//!                               directory, then waits until its index settles
//! ABSINDEX                      records the server's X-Etcd-Index as an absolute number (used
//!                               once, first, to check a fresh server's starting index)
//! ```
//!
//! Substitutions in TARGET, BODY, BYTES and header values, applied before the escapes:
//! `$K` = `/v2/keys/s<N>` (the scenario's own key prefix), `$P` = `s<N>`, `{B+k}` / `{B-k}` =
//! the scenario's base index (the server's X-Etcd-Index before the scenario) plus/minus k,
//! `{P+k}` = the same zero-padded to 20 digits (an in-order key name),
//! `{host}` = `127.0.0.1:<client port>`. Escapes: `\r`, `\n`, `\t`, `\s` (space), `\\`,
//! `\xHH` (any byte, also non-UTF-8).

use std::path::Path;

/// How a request's response is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Status, selected headers and the normalised body.
    Full,
    /// Only the status code.
    StatusOnly,
    /// Status, headers and the JSON structure with every scalar replaced by its type.
    ShapeOnly,
}

/// A request template (substitutions not yet applied).
#[derive(Clone, Debug)]
pub struct RequestTemplate {
    pub method: String,
    pub target: String,
    /// Extra headers (name, value template).
    pub headers: Vec<(String, String)>,
    /// Form body template, if any.
    pub body: Option<String>,
    /// Content-Type for the body; None = omit the header.
    pub content_type: Option<String>,
    /// Generated body size (`bigbody`), overrides `body`.
    pub big_body_bytes: Option<usize>,
    pub compare: Compare,
}

/// One step of a scenario.
#[derive(Clone, Debug)]
pub enum Step {
    Request(RequestTemplate),
    Raw(String),
    Watch {
        label: String,
        request: RequestTemplate,
    },
    Await {
        label: String,
        millis: u64,
    },
    Sleep(u64),
    Repeat {
        count: usize,
        request: RequestTemplate,
    },
    AbsoluteIndex,
    Restart,
    /// Requests sent back to back on one connection; `expected` is how many the file promised.
    Pipeline {
        requests: Vec<RequestTemplate>,
        expected: usize,
    },
}

/// A named request sequence.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    /// "file:line" where it starts.
    pub origin: String,
    pub steps: Vec<Step>,
}

/// Loads every `*.txt` file under `dir` (sorted by file name) into scenarios.
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("read {dir:?}: {e}"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut scenarios = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("read {file:?}: {e}"))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        scenarios.extend(parse(&name, &text)?);
    }
    let mut names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    for pair in names.windows(2) {
        if pair[0] == pair[1] {
            return Err(format!("duplicate scenario name {:?}", pair[0]));
        }
    }
    Ok(scenarios)
}

/// Parses one scenario file.
pub fn parse(file: &str, text: &str) -> Result<Vec<Scenario>, String> {
    let mut scenarios: Vec<Scenario> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let where_ = format!("{file}:{}", index + 1);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix("=== ") {
            scenarios.push(Scenario {
                name: name.trim().to_string(),
                origin: where_,
                steps: Vec::new(),
            });
            continue;
        }
        let Some(scenario) = scenarios.last_mut() else {
            return Err(format!("{where_}: step before the first === line"));
        };
        if line.starts_with(' ') {
            let Some(request) = last_request(&mut scenario.steps) else {
                return Err(format!("{where_}: modifier without a request above it"));
            };
            apply_modifier(request, trimmed).map_err(|e| format!("{where_}: {e}"))?;
            continue;
        }
        let (word, rest) = split_word(trimmed);
        let step = match word {
            "RAW" => Step::Raw(rest.to_string()),
            "ABSINDEX" => Step::AbsoluteIndex,
            "RESTART" => Step::Restart,
            "SLEEP" => Step::Sleep(rest.parse().map_err(|_| format!("{where_}: bad SLEEP"))?),
            "WATCH" => {
                let (label, target) = split_word(rest);
                Step::Watch {
                    label: label.to_string(),
                    request: request_template("GET", target, None),
                }
            }
            "AWAIT" => {
                let (label, millis) = split_word(rest);
                let millis = if millis.is_empty() {
                    1000
                } else {
                    millis
                        .parse()
                        .map_err(|_| format!("{where_}: bad AWAIT ms"))?
                };
                Step::Await {
                    label: label.to_string(),
                    millis,
                }
            }
            "REPEAT" => {
                let (count, rest) = split_word(rest);
                let count = count
                    .parse()
                    .map_err(|_| format!("{where_}: bad REPEAT count"))?;
                let (method, rest) = split_word(rest);
                let (target, body) = split_target_body(rest);
                Step::Repeat {
                    count,
                    request: request_template(method, target, body),
                }
            }
            "PIPELINE" => Step::Pipeline {
                requests: Vec::new(),
                expected: rest
                    .parse()
                    .map_err(|_| format!("{where_}: bad PIPELINE count"))?,
            },
            method => {
                if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(format!("{where_}: bad method {method:?}"));
                }
                let (target, body) = split_target_body(rest);
                if target.is_empty() {
                    return Err(format!("{where_}: request without target"));
                }
                let request = request_template(method, target, body);
                if let Some(Step::Pipeline { requests, expected }) = scenario.steps.last_mut() {
                    if requests.len() < *expected {
                        requests.push(request);
                        continue;
                    }
                }
                Step::Request(request)
            }
        };
        scenario.steps.push(step);
    }
    for scenario in &scenarios {
        for step in &scenario.steps {
            if let Step::Pipeline { requests, expected } = step {
                if requests.len() != *expected {
                    return Err(format!(
                        "{}: PIPELINE {expected} in {:?} is followed by {} requests",
                        scenario.origin,
                        scenario.name,
                        requests.len()
                    ));
                }
            }
        }
        if scenario.steps.is_empty() {
            return Err(format!(
                "{}: scenario {:?} has no steps",
                scenario.origin, scenario.name
            ));
        }
    }
    Ok(scenarios)
}

fn split_word(text: &str) -> (&str, &str) {
    match text.split_once(' ') {
        Some((a, b)) => (a, b),
        None => (text, ""),
    }
}

fn split_target_body(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once(' ') {
        Some((target, body)) => (target, Some(body)),
        None => (rest, None),
    }
}

fn request_template(method: &str, target: &str, body: Option<&str>) -> RequestTemplate {
    RequestTemplate {
        method: method.to_string(),
        target: target.to_string(),
        headers: Vec::new(),
        body: body.map(str::to_string),
        content_type: body.map(|_| "application/x-www-form-urlencoded".to_string()),
        big_body_bytes: None,
        compare: Compare::Full,
    }
}

fn last_request(steps: &mut [Step]) -> Option<&mut RequestTemplate> {
    match steps.last_mut()? {
        Step::Request(r) | Step::Watch { request: r, .. } | Step::Repeat { request: r, .. } => {
            Some(r)
        }
        Step::Pipeline { requests, .. } => requests.last_mut(),
        _ => None,
    }
}

fn apply_modifier(request: &mut RequestTemplate, modifier: &str) -> Result<(), String> {
    let (word, rest) = split_word(modifier);
    match word {
        "header" => {
            let (name, value) = rest.split_once(':').ok_or("header needs NAME: VALUE")?;
            request
                .headers
                .push((name.trim().to_string(), value.trim().to_string()));
        }
        "ctype" => {
            request.content_type = if rest == "-" {
                None
            } else {
                Some(rest.to_string())
            };
        }
        "bigbody" => {
            request.big_body_bytes = Some(rest.parse().map_err(|_| "bad bigbody size")?);
            request.content_type = Some("application/x-www-form-urlencoded".to_string());
        }
        "status-only" => request.compare = Compare::StatusOnly,
        "shape-only" => request.compare = Compare::ShapeOnly,
        other => return Err(format!("unknown modifier {other:?}")),
    }
    Ok(())
}

/// Values substituted into templates for one scenario on one server.
pub struct Substitution {
    pub scenario_number: usize,
    pub base_index: u64,
    pub client_port: u16,
}

impl Substitution {
    /// Applies `$K`, `$P`, `{B±k}`, `{host}` and then the backslash escapes.
    pub fn apply(&self, template: &str) -> Vec<u8> {
        let mut text = template
            .replace("$K", &format!("/v2/keys/s{}", self.scenario_number))
            .replace("$P", &format!("s{}", self.scenario_number))
            .replace("{host}", &format!("127.0.0.1:{}", self.client_port));
        while let Some(start) = text.find("{B").or_else(|| text.find("{P")) {
            let Some(len) = text[start..].find('}') else {
                break;
            };
            let padded = text[start + 1..].starts_with('P');
            let inner = &text[start + 2..start + len];
            let offset: i64 = if inner.is_empty() {
                0
            } else {
                let (sign, digits) = inner.split_at(1);
                let magnitude: i64 = digits.parse().unwrap_or(0);
                if sign == "-" {
                    -magnitude
                } else {
                    magnitude
                }
            };
            let value = (self.base_index as i64 + offset).max(0);
            let value = if padded {
                format!("{value:020}")
            } else {
                value.to_string()
            };
            text.replace_range(start..start + len + 1, &value);
        }
        unescape(&text)
    }
}

/// Turns `\r \n \t \s \\ \xHH` into bytes; other characters are copied as UTF-8.
pub fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b's' => out.push(b' '),
                b'\\' => out.push(b'\\'),
                b'x' if i + 4 <= bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap_or("zz");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 4;
                            continue;
                        }
                        Err(_) => out.extend_from_slice(b"\\x"),
                    }
                }
                other => {
                    out.push(b'\\');
                    out.push(other);
                }
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

impl RequestTemplate {
    /// The exact bytes of this request for `subst`, with `Connection: close`.
    pub fn render(&self, subst: &Substitution) -> Vec<u8> {
        self.render_with(subst, true)
    }

    /// The exact bytes of this request; `close` adds `Connection: close`.
    pub fn render_with(&self, subst: &Substitution, close: bool) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&subst.apply(&self.target));
        out.extend_from_slice(b" HTTP/1.1\r\n");
        if !self
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("Host"))
        {
            out.extend_from_slice(format!("Host: 127.0.0.1:{}\r\n", subst.client_port).as_bytes());
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(&subst.apply(value));
            out.extend_from_slice(b"\r\n");
        }
        let body: Option<Vec<u8>> = match self.big_body_bytes {
            Some(size) => {
                let mut body = b"value=".to_vec();
                body.resize(size.max(6), b'a');
                Some(body)
            }
            None => self.body.as_ref().map(|b| subst.apply(b)),
        };
        if let Some(body) = &body {
            if let Some(content_type) = &self.content_type {
                out.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
            }
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if let Some(body) = &body {
            out.extend_from_slice(body);
        }
        out
    }
}
