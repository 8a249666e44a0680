//! Depth and complexity limits (one point per field), counted on the parsed
//! document. Introspection (`__schema`, `__type`) is not counted: GraphiQL's
//! schema fetch nests deeper than any real operation, and it is switched off
//! with `GRAPHQL_INTROSPECTION=false`, not by a limit.

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};

/// How far past a limit we bother to count (also ends cyclic fragments,
/// which validation rejects later anyway).
const COUNT_CAP: usize = 10_000;

#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
}

impl QueryLimits {
    /// `Err` with the message for the client when a limit is exceeded.
    pub fn check(&self, document: &ExecutableDocument) -> Result<(), &'static str> {
        let operations: Vec<&SelectionSet> = match &document.operations {
            DocumentOperations::Single(op) => vec![&op.node.selection_set.node],
            DocumentOperations::Multiple(ops) => {
                ops.values().map(|op| &op.node.selection_set.node).collect()
            }
        };
        for selection_set in operations {
            let mut walk = Walk {
                document,
                complexity: 0,
                fragment_depth: 0,
            };
            let depth = walk.selection_set(selection_set, 0, true);
            if depth > self.max_depth {
                return Err("Query is nested too deep.");
            }
            if walk.complexity > self.max_complexity {
                return Err("Query is too complex.");
            }
        }
        Ok(())
    }
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    complexity: usize,
    fragment_depth: usize,
}

impl Walk<'_> {
    /// Returns the depth of the deepest field below (fields count 1 each).
    fn selection_set(&mut self, set: &SelectionSet, depth: usize, root: bool) -> usize {
        if depth > COUNT_CAP || self.complexity > COUNT_CAP || self.fragment_depth > 64 {
            return depth;
        }
        let mut deepest = depth;
        for selection in &set.items {
            let reached = match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if root && (name == "__schema" || name == "__type") {
                        continue;
                    }
                    self.complexity += 1;
                    self.selection_set(&field.node.selection_set.node, depth + 1, false)
                }
                Selection::FragmentSpread(spread) => {
                    let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    else {
                        continue;
                    };
                    self.fragment_depth += 1;
                    let reached =
                        self.selection_set(&fragment.node.selection_set.node, depth, root);
                    self.fragment_depth -= 1;
                    reached
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node, depth, root)
                }
            };
            deepest = deepest.max(reached);
        }
        deepest
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(query: &str, max_depth: usize, max_complexity: usize) -> Result<(), &'static str> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        QueryLimits {
            max_depth,
            max_complexity,
        }
        .check(&document)
    }

    #[test]
    fn counts_depth_through_fragments() {
        let query = "{ a { b { c } } } ";
        assert!(check(query, 3, 100).is_ok());
        assert_eq!(check(query, 2, 100), Err("Query is nested too deep."));
        let with_fragment = "{ a { ...F } } fragment F on A { b { c } }";
        assert_eq!(
            check(with_fragment, 2, 100),
            Err("Query is nested too deep.")
        );
        let inline = "{ a { ... on A { b { c } } } }";
        assert_eq!(check(inline, 2, 100), Err("Query is nested too deep."));
    }

    #[test]
    fn counts_one_point_per_field_including_aliases() {
        assert!(check("{ a b c }", 10, 3).is_ok());
        assert_eq!(check("{ a b c d }", 10, 3), Err("Query is too complex."));
        assert_eq!(
            check("{ x: a y: a z: a w: a }", 10, 3),
            Err("Query is too complex.")
        );
    }

    #[test]
    fn introspection_is_not_counted_but_cycles_end() {
        assert!(
            check(
                "{ __schema { types { fields { type { ofType { ofType { name } } } } } } }",
                2,
                2
            )
            .is_ok()
        );
        assert!(check("{ a { ...F } } fragment F on A { b { ...F } }", 10, 200).is_err());
    }
}
