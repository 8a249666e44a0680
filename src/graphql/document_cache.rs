//! Documents that passed the request policy, by query text, so that a client
//! sending the same operation again (every app does: its queries are fixed
//! strings with variables) is neither parsed nor walked again.
//!
//! Exact by construction: what is cached depends on the query text alone.
//! The policy's checks (`query_cost`, `document_rules`) read only the
//! document, the schema and the limits, which are fixed for the schema's
//! life; whether a request came over GET is asked per request
//! ([`Checked::has_mutation`]); variables are checked by async-graphql's own
//! validation, which still runs on every request. Only documents that passed
//! are kept: a refusal is computed afresh each time.
//!
//! Bounded: at most [`CAPACITY`] entries of at most [`MAX_QUERY_BYTES`] of
//! text each (longer queries are simply not cached), least recently used
//! out first.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use lru::LruCache;

/// Entries kept. An app has a few dozen distinct operations.
pub const CAPACITY: usize = 256;
/// Queries longer than this are checked every time (a client's real
/// operations are far shorter; this bounds the cache at about 1 MiB of text).
pub const MAX_QUERY_BYTES: usize = 4096;

/// A document that passed the policy's checks.
pub struct Checked {
    pub document: ExecutableDocument,
    pub has_mutation: bool,
}

impl Checked {
    pub fn new(document: ExecutableDocument) -> Self {
        let has_mutation = match &document.operations {
            DocumentOperations::Single(op) => op.node.ty == OperationType::Mutation,
            DocumentOperations::Multiple(ops) => {
                ops.values().any(|op| op.node.ty == OperationType::Mutation)
            }
        };
        Self {
            document,
            has_mutation,
        }
    }
}

pub struct DocumentCache {
    entries: Mutex<LruCache<String, Arc<Checked>>>,
}

impl Default for DocumentCache {
    fn default() -> Self {
        Self {
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }
}

impl DocumentCache {
    pub fn get(&self, query: &str) -> Option<Arc<Checked>> {
        self.entries.lock().ok()?.get(query).cloned()
    }

    pub fn insert(&self, query: &str, checked: Arc<Checked>) {
        if query.len() > MAX_QUERY_BYTES {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            entries.put(query.to_owned(), checked);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map_or(0, |entries| entries.len())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn checked(query: &str) -> Arc<Checked> {
        Arc::new(Checked::new(
            async_graphql::parser::parse_query(query).unwrap(),
        ))
    }

    #[test]
    fn keeps_at_most_capacity_entries_and_drops_the_least_recently_used() {
        let cache = DocumentCache::default();
        cache.insert("{ a0 }", checked("{ a0 }"));
        for i in 1..=CAPACITY + 10 {
            let query = format!("{{ a{i} }}");
            cache.insert(&query, checked(&query));
            // a0 stays the most recently used until the end.
            if i < CAPACITY {
                assert!(cache.get("{ a0 }").is_some());
            }
        }
        assert_eq!(cache.len(), CAPACITY);
        assert!(cache.get("{ a1 }").is_none(), "the oldest is gone");
        assert!(cache.get(&format!("{{ a{} }}", CAPACITY + 10)).is_some());
    }

    #[test]
    fn the_key_is_the_exact_text_and_long_queries_are_not_kept() {
        let cache = DocumentCache::default();
        cache.insert("{ me { id } }", checked("{ me { id } }"));
        assert!(cache.get("{ me { id } }").is_some());
        assert!(cache.get("{ me { id }}").is_none());
        assert!(cache.get("{ me { id } } ").is_none());
        let long = format!("{{ me {{ id }} }}{}", " ".repeat(MAX_QUERY_BYTES));
        cache.insert(&long, checked(&long));
        assert!(cache.get(&long).is_none());
    }

    #[test]
    fn knows_whether_a_document_has_a_mutation() {
        assert!(!checked("{ me { id } }").has_mutation);
        assert!(checked("mutation { logout }").has_mutation);
        assert!(checked("query a { me { id } } mutation b { logout }").has_mutation);
    }
}
