//! etcdctl's output of a key response, byte for byte: `simple`, `extended` and `json`.
//!
//! `json` is not the server's bytes: etcdctl re-encodes the decoded response with Go's
//! `encoding/json`, so field order, `null`s and string escaping follow Go (`<`, `>`, `&`,
//! U+2028 and U+2029 escaped as `\u003c`… ; `value` and `nodes` always present; `dir`,
//! `expiration` and `ttl` only when set).

use super::keys::{KeysResponse, Node};

/// Output formats accepted by `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Simple,
    Extended,
    Json,
}

/// What to print for one response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Printed {
    pub stdout: String,
    pub stderr: String,
}

/// etcdctl's `printResponseKey`. `format` is the raw `-o` text: an unknown one prints
/// `Unsupported output format: <x>` on stderr and nothing else.
pub fn print_response_key(response: &KeysResponse, format: &str) -> Printed {
    let empty = Node::default();
    let node = response.node.as_ref().unwrap_or(&empty);
    let mut printed = Printed::default();
    match parse_format(format) {
        Some(OutputFormat::Simple) => {
            if response.action != "delete" {
                printed.stdout = format!("{}\n", node.value);
            } else {
                let prev = response.prev_node.as_ref().unwrap_or(&empty);
                printed.stdout = format!("PrevNode.Value: {}\n", prev.value);
            }
        }
        Some(OutputFormat::Extended) => {
            let out = &mut printed.stdout;
            out.push_str(&format!("Key: {}\n", node.key));
            out.push_str(&format!("Created-Index: {}\n", node.created_index));
            out.push_str(&format!("Modified-Index: {}\n", node.modified_index));
            if let Some(prev) = &response.prev_node {
                out.push_str(&format!("PrevNode.Value: {}\n", prev.value));
            }
            out.push_str(&format!("TTL: {}\n", node.ttl));
            out.push_str(&format!("Index: {}\n", response.index));
            if response.action != "delete" {
                out.push_str(&format!("\n{}\n", node.value));
            }
        }
        Some(OutputFormat::Json) => {
            printed.stdout = format!("{}\n", response_json(response));
        }
        None => printed.stderr = format!("Unsupported output format: {}\n", format),
    }
    printed
}

/// Maps `-o` text to a format; `None` for anything etcdctl does not know.
pub fn parse_format(text: &str) -> Option<OutputFormat> {
    match text {
        "simple" => Some(OutputFormat::Simple),
        "extended" => Some(OutputFormat::Extended),
        "json" => Some(OutputFormat::Json),
        _ => None,
    }
}

/// The Go `json.Marshal` of etcd's client `Response`.
pub fn response_json(response: &KeysResponse) -> String {
    let mut out = String::from("{\"action\":");
    push_go_string(&mut out, &response.action);
    out.push_str(",\"node\":");
    push_optional_node(&mut out, response.node.as_ref());
    out.push_str(",\"prevNode\":");
    push_optional_node(&mut out, response.prev_node.as_ref());
    out.push('}');
    out
}

fn push_optional_node(out: &mut String, node: Option<&Node>) {
    match node {
        Some(node) => push_node(out, node),
        None => out.push_str("null"),
    }
}

fn push_node(out: &mut String, node: &Node) {
    out.push_str("{\"key\":");
    push_go_string(out, &node.key);
    if node.dir {
        out.push_str(",\"dir\":true");
    }
    out.push_str(",\"value\":");
    push_go_string(out, &node.value);
    out.push_str(",\"nodes\":");
    match &node.nodes {
        None => out.push_str("null"),
        Some(children) => {
            out.push('[');
            for (i, child) in children.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_node(out, child);
            }
            out.push(']');
        }
    }
    out.push_str(&format!(",\"createdIndex\":{}", node.created_index));
    out.push_str(&format!(",\"modifiedIndex\":{}", node.modified_index));
    if let Some(expiration) = &node.expiration {
        out.push_str(",\"expiration\":");
        push_go_string(out, &go_time_text(expiration));
    }
    if node.ttl != 0 {
        out.push_str(&format!(",\"ttl\":{}", node.ttl));
    }
    out.push('}');
}

/// Go re-encodes a parsed time with `RFC3339Nano`, which drops trailing zeros of the
/// fraction (and the dot when nothing is left).
fn go_time_text(text: &str) -> String {
    let Some(dot) = text.find('.') else {
        return text.to_string();
    };
    let digits_end = text[dot + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| dot + 1 + i)
        .unwrap_or(text.len());
    let fraction = text[dot + 1..digits_end].trim_end_matches('0');
    let zone = &text[digits_end..];
    if fraction.is_empty() {
        format!("{}{}", &text[..dot], zone)
    } else {
        format!("{}.{}{}", &text[..dot], fraction, zone)
    }
}

/// A JSON string literal as Go's `encoding/json` writes it (HTML-safe escaping).
pub fn push_go_string(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                let b = c as u32 as u8;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Lines etcdctl's `ls` prints in `simple` mode: the key of a file, or the children of a
/// directory depth-first, directories suffixed with `/` when `slash_dirs` (`-p`).
pub fn ls_lines(response: &KeysResponse, slash_dirs: bool) -> String {
    let empty = Node::default();
    let node = response.node.as_ref().unwrap_or(&empty);
    let mut out = String::new();
    if !node.dir {
        out.push_str(&format!("{}\n", node.key));
    }
    for child in node.nodes.iter().flatten() {
        push_ls_node(&mut out, child, slash_dirs);
    }
    out
}

fn push_ls_node(out: &mut String, node: &Node, slash_dirs: bool) {
    if node.dir && slash_dirs {
        out.push_str(&format!("{}/\n", node.key));
    } else {
        out.push_str(&format!("{}\n", node.key));
    }
    for child in node.nodes.iter().flatten() {
        push_ls_node(out, child, slash_dirs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(key: &str, value: &str, index: u64) -> Node {
        Node {
            key: key.into(),
            value: value.into(),
            created_index: index,
            modified_index: index,
            ..Node::default()
        }
    }

    fn response(action: &str, node: Node, prev: Option<Node>, index: u64) -> KeysResponse {
        KeysResponse {
            action: action.into(),
            node: Some(node),
            prev_node: prev,
            index,
            cluster_id: String::new(),
        }
    }

    #[test]
    fn simple_prints_value_or_previous_value_for_delete() {
        let set = response("set", file("/a", "v1", 4), None, 4);
        assert_eq!(print_response_key(&set, "simple").stdout, "v1\n");
        let delete = response("delete", file("/a", "", 5), Some(file("/a", "v1", 4)), 5);
        assert_eq!(
            print_response_key(&delete, "simple").stdout,
            "PrevNode.Value: v1\n"
        );
        let cad = response(
            "compareAndDelete",
            file("/a", "", 5),
            Some(file("/a", "v1", 4)),
            5,
        );
        assert_eq!(print_response_key(&cad, "simple").stdout, "\n");
    }

    #[test]
    fn extended_layout() {
        let mut node = file("/ctl/a", "world2", 1103);
        node.ttl = 7;
        let update = response("update", node, Some(file("/ctl/a", "world", 1102)), 1103);
        assert_eq!(
            print_response_key(&update, "extended").stdout,
            "Key: /ctl/a\nCreated-Index: 1103\nModified-Index: 1103\nPrevNode.Value: world\n\
             TTL: 7\nIndex: 1103\n\nworld2\n"
        );
        let delete = response("delete", file("/ctl/a", "", 1104), None, 1104);
        assert_eq!(
            print_response_key(&delete, "extended").stdout,
            "Key: /ctl/a\nCreated-Index: 1104\nModified-Index: 1104\nTTL: 0\nIndex: 1104\n"
        );
    }

    #[test]
    fn json_is_go_encoding() {
        let mut node = file("/a/b", "x y&z<>", 4);
        node.modified_index = 6;
        node.expiration = Some("2026-11-25T23:22:27.623563500Z".into());
        node.ttl = 5;
        let get = response("get", node, None, 6);
        assert_eq!(
            print_response_key(&get, "json").stdout,
            "{\"action\":\"get\",\"node\":{\"key\":\"/a/b\",\"value\":\"x y\\u0026z\\u003c\\u003e\",\
             \"nodes\":null,\"createdIndex\":4,\"modifiedIndex\":6,\
             \"expiration\":\"2026-11-25T23:22:27.6235635Z\",\"ttl\":5},\"prevNode\":null}\n"
        );
        let dir = Node {
            key: "/d".into(),
            dir: true,
            nodes: Some(vec![file("/d/x", "\n\u{1}", 9)]),
            ..Node::default()
        };
        assert_eq!(
            response_json(&response("get", dir, None, 9)),
            "{\"action\":\"get\",\"node\":{\"key\":\"/d\",\"dir\":true,\"value\":\"\",\"nodes\":[\
             {\"key\":\"/d/x\",\"value\":\"\\n\\u0001\",\"nodes\":null,\"createdIndex\":9,\
             \"modifiedIndex\":9}],\"createdIndex\":0,\"modifiedIndex\":0},\"prevNode\":null}"
        );
    }

    #[test]
    fn unknown_format_goes_to_stderr() {
        let set = response("set", file("/a", "v", 4), None, 4);
        assert_eq!(
            print_response_key(&set, "yaml"),
            Printed {
                stdout: String::new(),
                stderr: "Unsupported output format: yaml\n".into()
            }
        );
    }

    #[test]
    fn ls_walks_depth_first_with_optional_slashes() {
        let tree = Node {
            dir: true,
            nodes: Some(vec![
                Node {
                    key: "/d".into(),
                    dir: true,
                    nodes: Some(vec![file("/d/x", "1", 5)]),
                    ..Node::default()
                },
                file("/f", "2", 6),
            ]),
            ..Node::default()
        };
        let listing = response("get", tree, None, 6);
        assert_eq!(ls_lines(&listing, false), "/d\n/d/x\n/f\n");
        assert_eq!(ls_lines(&listing, true), "/d/\n/d/x\n/f\n");
        assert_eq!(
            ls_lines(&response("get", file("/f", "2", 6), None, 6), true),
            "/f\n"
        );
    }
}
