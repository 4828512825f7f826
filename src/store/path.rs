//! Key paths: normalisation like Go's `path.Clean("/" + key)`, parents, hidden segments.
//!
//! Every path inside the store is canonical: "/" for the root, otherwise "/" followed by
//! non-empty segments joined with "/", none of them "." or "..".

/// `path.Clean("/" + key)`: drops empty and "." segments, resolves ".." (never above the root).
pub fn clean(key: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in key.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    if segments.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(key.len() + 1);
    for segment in segments {
        out.push('/');
        out.push_str(segment);
    }
    out
}

/// Whether `path` is already canonical.
pub fn is_canonical(path: &str) -> bool {
    clean(path) == path
}

/// The parent of a canonical non-root path ("/a" -> "/", "/a/b" -> "/a").
pub fn parent(path: &str) -> &str {
    assert!(path != "/", "the root has no parent");
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(at) => &path[..at],
    }
}

/// The last segment of a canonical non-root path.
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(at) => &path[at + 1..],
        None => path,
    }
}

/// Whether the node at `path` is hidden: its last segment starts with `_`.
pub fn is_hidden(path: &str) -> bool {
    name(path).starts_with('_')
}

/// The prefix that every descendant of `dir` starts with ("/" for the root, else "dir/").
pub fn child_prefix(dir: &str) -> String {
    if dir == "/" {
        "/".to_owned()
    } else {
        format!("{dir}/")
    }
}

/// Every ancestor-or-self of a canonical path, root excluded, shortest first:
/// "/a/b/c" -> ["/a", "/a/b", "/a/b/c"]; "/" -> [].
pub fn prefixes(path: &str) -> Vec<&str> {
    if path == "/" {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (at, byte) in path.bytes().enumerate().skip(1) {
        if byte == b'/' {
            out.push(&path[..at]);
        }
    }
    out.push(path);
    out
}

/// Whether `descendant` equals `ancestor` or lies below it (both canonical).
pub fn is_self_or_descendant(descendant: &str, ancestor: &str) -> bool {
    descendant == ancestor || descendant.starts_with(&child_prefix(ancestor))
}

/// Whether the part of `key` below `watch_path` contains a hidden segment (`/_...`).
/// `watch_path` must be `key` or one of its ancestors.
pub fn hidden_below(watch_path: &str, key: &str) -> bool {
    let rest = if watch_path == "/" {
        key
    } else {
        key.get(watch_path.len()..).unwrap_or("")
    };
    rest.split('/').any(|segment| segment.starts_with('_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go_path_clean() {
        for (input, expected) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("foo", "/foo"),
            ("/foo/", "/foo"),
            ("/foo//bar", "/foo/bar"),
            ("/foo/./bar/", "/foo/bar"),
            ("/foo/../bar", "/bar"),
            ("/../..", "/"),
            ("/a b/ü", "/a b/ü"),
            ("/_x/.../y", "/_x/.../y"),
        ] {
            assert_eq!(clean(input), expected, "clean({input:?})");
        }
        assert!(is_canonical("/a/b"));
        assert!(!is_canonical("/a/"));
    }

    #[test]
    fn parents_names_prefixes() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(prefixes("/a/b/c"), ["/a", "/a/b", "/a/b/c"]);
        assert!(prefixes("/").is_empty());
        assert!(is_hidden("/a/_b"));
        assert!(!is_hidden("/_a/b"));
        assert!(is_self_or_descendant("/a/b", "/a"));
        assert!(is_self_or_descendant("/a", "/a"));
        assert!(!is_self_or_descendant("/ab", "/a"));
        assert!(is_self_or_descendant("/ab", "/"));
    }

    #[test]
    fn hidden_below_looks_only_below_the_watch_path() {
        assert!(hidden_below("/", "/_x"));
        assert!(hidden_below("/foo", "/foo/_x"));
        assert!(hidden_below("/foo", "/foo/a/_b/c"));
        assert!(!hidden_below("/_foo", "/_foo/bar"));
        assert!(!hidden_below("/foo", "/foo"));
        assert!(!hidden_below("/foo", "/foo/bar_"));
    }
}
