//! The node tree, stored flat: one ordered map from canonical path to node. Children of a
//! directory are the keys that start with "dir/" and contain no further "/"; they are found by
//! range queries that jump over grandchildren, so no operation recurses over the tree's depth
//! except the recursive listing that builds nested output.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::path;
use super::UnixNanos;

/// One stored node (the root is implicit: a permanent directory with indexes 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNode {
    /// None for a directory, Some(value) for a file.
    pub value: Option<String>,
    /// Invariant: created_index <= modified_index <= the store's current index.
    pub created_index: u64,
    /// Invariant: equal to created_index for directories (a dir's modifiedIndex never changes).
    pub modified_index: u64,
    /// Some when the node has a TTL. Invariant: (expire_at, path) is in the store's TTL index
    /// exactly when this is Some.
    pub expire_at: Option<UnixNanos>,
}

impl StoredNode {
    pub fn is_dir(&self) -> bool {
        self.value.is_none()
    }
}

/// The tree. Invariant: the parent of every stored path is the root or a stored directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    nodes: BTreeMap<String, StoredNode>,
}

impl Tree {
    pub fn get(&self, path: &str) -> Option<&StoredNode> {
        self.nodes.get(path)
    }

    pub fn get_mut(&mut self, path: &str) -> Option<&mut StoredNode> {
        self.nodes.get_mut(path)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// All nodes in path order (parents before their descendants).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &StoredNode)> {
        self.nodes.iter()
    }

    /// Inserts a node whose parent exists and is a directory.
    pub fn insert(&mut self, path: &str, node: StoredNode) {
        let parent = path::parent(path);
        assert!(
            parent == "/" || self.nodes.get(parent).is_some_and(StoredNode::is_dir),
            "inserting {path:?} under a missing or non-directory parent"
        );
        self.nodes.insert(path.to_owned(), node);
    }

    /// Direct children of the directory `dir`, in key order.
    pub fn children(&self, dir: &str) -> Vec<(&str, &StoredNode)> {
        let prefix = path::child_prefix(dir);
        let mut out = Vec::new();
        let mut cursor: Bound<String> = Bound::Included(prefix.clone());
        loop {
            let range = (
                match &cursor {
                    Bound::Included(key) => Bound::Included(key.as_str()),
                    Bound::Excluded(key) => Bound::Excluded(key.as_str()),
                    Bound::Unbounded => Bound::Unbounded,
                },
                Bound::Unbounded,
            );
            let Some((key, node)) = self.nodes.range::<str, _>(range).next() else {
                break;
            };
            let Some(rest) = key.strip_prefix(prefix.as_str()) else {
                break;
            };
            match rest.find('/') {
                None => {
                    out.push((key.as_str(), node));
                    cursor = Bound::Excluded(key.clone());
                }
                // A grandchild: skip the whole subtree of that child ('0' follows '/').
                Some(at) => cursor = Bound::Included(format!("{prefix}{}0", &rest[..at])),
            }
        }
        out
    }

    /// Whether the directory `dir` has any child (hidden ones included).
    pub fn has_children(&self, dir: &str) -> bool {
        let prefix = path::child_prefix(dir);
        self.nodes
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .next()
            .is_some_and(|(key, _)| key.starts_with(&prefix))
    }

    /// Removes `path` and everything below it; returns the removed paths and nodes in key order.
    pub fn remove_subtree(&mut self, path: &str) -> Vec<(String, StoredNode)> {
        let mut removed = Vec::new();
        if let Some(node) = self.nodes.remove(path) {
            removed.push((path.to_owned(), node));
        }
        let prefix = path::child_prefix(path);
        let descendants: Vec<String> = self
            .nodes
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(key, _)| key.clone())
            .collect();
        for key in descendants {
            if let Some(node) = self.nodes.remove(&key) {
                removed.push((key, node));
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(index: u64) -> StoredNode {
        StoredNode {
            value: None,
            created_index: index,
            modified_index: index,
            expire_at: None,
        }
    }

    fn file(index: u64) -> StoredNode {
        StoredNode {
            value: Some("v".into()),
            ..dir(index)
        }
    }

    #[test]
    fn children_skip_grandchildren_and_keep_siblings_that_sort_inside_subtrees() {
        let mut tree = Tree::default();
        tree.insert("/a", dir(1));
        tree.insert("/a/b", dir(2));
        tree.insert("/a/b/c", file(3));
        tree.insert("/a/b+", dir(4));
        tree.insert("/a/b+/x", file(5));
        tree.insert("/a/b-x", file(6));
        tree.insert("/a/b0", file(7));
        tree.insert("/a/c", file(8));
        tree.insert("/ab", file(9));
        let names: Vec<&str> = tree.children("/a").iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["/a/b", "/a/b+", "/a/b-x", "/a/b0", "/a/c"]);
        let root: Vec<&str> = tree.children("/").iter().map(|(k, _)| *k).collect();
        assert_eq!(root, ["/a", "/ab"]);
        assert!(tree.has_children("/a/b"));
        assert!(!tree.has_children("/a/c"));
    }

    #[test]
    fn remove_subtree_takes_descendants_only() {
        let mut tree = Tree::default();
        tree.insert("/a", dir(1));
        tree.insert("/a/b", file(2));
        tree.insert("/ab", file(3));
        tree.insert("/a-", file(4));
        let removed: Vec<String> = tree
            .remove_subtree("/a")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(removed, ["/a", "/a/b"]);
        assert_eq!(tree.len(), 2);
    }

    #[test]
    #[should_panic(expected = "non-directory parent")]
    fn inserting_under_a_file_panics() {
        let mut tree = Tree::default();
        tree.insert("/f", file(1));
        tree.insert("/f/x", file(2));
    }
}
