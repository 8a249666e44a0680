//! Depth and complexity limits (one point per field), counted on the parsed
//! document. Introspection (`__schema`, `__type`) is not counted: GraphiQL's
//! schema fetch nests deeper than any real operation, and it is switched off
//! with `GRAPHQL_INTROSPECTION=false`, not by a limit.

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};

use crate::messages::RequestProblem;

/// The most selections the walk visits. Fragments can fan out exponentially
/// (`fragment A { ...B ...B } fragment B { ...C ...C } …`) or refer to
/// themselves (validation rejects that, but it runs after us), so the walk is
/// bounded by work done, not by what it finds: past this, the document is
/// "too complex" without further counting.
const STEP_CAP: usize = 10_000;

/// The most fields introspection may select in one operation, fragments
/// expanded and aliases counted. Introspection is outside depth and
/// complexity (GraphiQL's schema fetch nests deeper than any real operation),
/// but aliases inside one `__schema` would otherwise multiply its answer:
/// GraphiQL's own fetch selects far fewer (see the test below).
const INTROSPECTION_FIELD_CAP: usize = 500;

/// Selection sets and fragment spreads nested deeper than this end the walk
/// (and the document): the recursion must never exhaust the stack.
const NESTING_CAP: usize = 64;

#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
}

impl QueryLimits {
    /// Refuses, before parsing, text nested deeper than any document we would
    /// accept, so the recursive parser never meets a 60 000-deep `{{{…`.
    pub fn check_nesting(query: &str) -> Result<(), RequestProblem> {
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        for byte in query.bytes() {
            if in_string {
                match byte {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'{' | b'(' | b'[' => {
                    depth += 1;
                    if depth > NESTING_CAP {
                        return Err(RequestProblem::NestedTooDeep);
                    }
                }
                b'}' | b')' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        Ok(())
    }

    /// `Err` with the message for the client when a limit is exceeded.
    pub fn check(&self, document: &ExecutableDocument) -> Result<(), RequestProblem> {
        let operations: Vec<&SelectionSet> = match &document.operations {
            DocumentOperations::Single(op) => vec![&op.node.selection_set.node],
            DocumentOperations::Multiple(ops) => {
                ops.values().map(|op| &op.node.selection_set.node).collect()
            }
        };
        // One step budget for the whole document: a document of many
        // operations must not get a fresh budget for each.
        let mut steps = 0;
        for selection_set in operations {
            let mut walk = Walk {
                document,
                complexity: 0,
                introspection_fields: 0,
                steps,
                nesting: 0,
                counted: true,
            };
            let depth = walk.selection_set(selection_set, 0, true);
            steps = walk.steps;
            if walk.steps > STEP_CAP {
                return Err(RequestProblem::TooComplex);
            }
            if walk.introspection_fields > INTROSPECTION_FIELD_CAP {
                return Err(RequestProblem::IntrospectionTooLarge);
            }
            if depth > self.max_depth {
                return Err(RequestProblem::NestedTooDeep);
            }
            if walk.complexity > self.max_complexity {
                return Err(RequestProblem::TooComplex);
            }
        }
        Ok(())
    }
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    complexity: usize,
    /// Fields selected inside introspection, as executed (aliases count).
    introspection_fields: usize,
    steps: usize,
    nesting: usize,
    /// False inside introspection, which is walked but not counted.
    counted: bool,
}

impl Walk<'_> {
    /// Returns the depth of the deepest field below (fields count 1 each).
    fn selection_set(&mut self, set: &SelectionSet, depth: usize, root: bool) -> usize {
        if self.nesting >= NESTING_CAP {
            self.steps = STEP_CAP + 1;
            return depth;
        }
        self.nesting += 1;
        let deepest = self.items(set, depth, root);
        self.nesting -= 1;
        deepest
    }

    fn items(&mut self, set: &SelectionSet, depth: usize, root: bool) -> usize {
        let mut deepest = depth;
        for selection in &set.items {
            self.steps += 1;
            if self.steps > STEP_CAP {
                return deepest;
            }
            let reached = match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if root && (name == "__schema" || name == "__type") {
                        // Walked (so a fragment bomb cannot hide here) but not counted.
                        let (complexity, counted) = (self.complexity, self.counted);
                        self.counted = false;
                        self.selection_set(&field.node.selection_set.node, depth, false);
                        (self.complexity, self.counted) = (complexity, counted);
                        continue;
                    }
                    if self.counted {
                        self.complexity += 1;
                    } else {
                        self.introspection_fields += 1;
                    }
                    let below =
                        self.selection_set(&field.node.selection_set.node, depth + 1, false);
                    if self.counted { below } else { depth }
                }
                Selection::FragmentSpread(spread) => {
                    let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    else {
                        continue;
                    };
                    self.selection_set(&fragment.node.selection_set.node, depth, root)
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

    fn check(query: &str, max_depth: usize, max_complexity: usize) -> Result<(), RequestProblem> {
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
        assert_eq!(check(query, 2, 100), Err(RequestProblem::NestedTooDeep));
        let with_fragment = "{ a { ...F } } fragment F on A { b { c } }";
        assert_eq!(
            check(with_fragment, 2, 100),
            Err(RequestProblem::NestedTooDeep)
        );
        let inline = "{ a { ... on A { b { c } } } }";
        assert_eq!(check(inline, 2, 100), Err(RequestProblem::NestedTooDeep));
    }

    #[test]
    fn counts_one_point_per_field_including_aliases() {
        assert!(check("{ a b c }", 10, 3).is_ok());
        assert_eq!(check("{ a b c d }", 10, 3), Err(RequestProblem::TooComplex));
        assert_eq!(
            check("{ x: a y: a z: a w: a }", 10, 3),
            Err(RequestProblem::TooComplex)
        );
    }

    #[test]
    fn nesting_is_bounded_before_parsing() {
        assert!(QueryLimits::check_nesting("{ a { b(x: [1, {y: \"{{{{\"}]) } }").is_ok());
        let deep = format!("{}{}", "{a".repeat(100), "}".repeat(100));
        assert_eq!(
            QueryLimits::check_nesting(&deep),
            Err(RequestProblem::NestedTooDeep)
        );
        let in_a_string = format!("{{ a(s: \"{}\") }}", "{".repeat(1000));
        assert!(QueryLimits::check_nesting(&in_a_string).is_ok());
    }

    #[test]
    fn self_referencing_and_fanning_fragments_end_quickly() {
        let started = std::time::Instant::now();
        let cyclic = "{ ...A } fragment A on Query { ...A ...A ...A ...A }";
        assert_eq!(check(cyclic, 10, 200), Err(RequestProblem::TooComplex));
        let fan: String = (0..40)
            .map(|i| format!("fragment F{i} on Query {{ ...F{} ...F{} }} ", i + 1, i + 1))
            .collect();
        let fanning = format!("{{ ...F0 }} {fan} fragment F40 on Query {{ a }}");
        assert_eq!(check(&fanning, 10, 200), Err(RequestProblem::TooComplex));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn graphiql_schema_fetch_fits_the_introspection_cap_and_aliases_do_not() {
        let graphiql = include_str!("../../tests/api/introspection.graphql");
        let document = async_graphql::parser::parse_query(graphiql).unwrap();
        let mut walk = Walk {
            document: &document,
            complexity: 0,
            introspection_fields: 0,
            steps: 0,
            nesting: 0,
            counted: true,
        };
        for (_, op) in document.operations.iter() {
            walk.selection_set(&op.node.selection_set.node, 0, true);
        }
        assert!(
            walk.introspection_fields * 2 < INTROSPECTION_FIELD_CAP,
            "GraphiQL's fetch selects {} introspection fields",
            walk.introspection_fields
        );
        assert!(check(graphiql, 10, 200).is_ok());
        let aliases: String = (0..600)
            .map(|i| format!("a{i}: fields {{ name }} "))
            .collect();
        let multiplied = format!("{{ __schema {{ types {{ {aliases} }} }} }}");
        assert_eq!(
            check(&multiplied, 10, 200),
            Err(RequestProblem::IntrospectionTooLarge)
        );
    }

    #[test]
    fn many_operations_share_one_step_budget() {
        // Each operation alone is within every limit (256 fields, ~800 steps).
        let fan: String = (0..8)
            .map(|i| {
                format!(
                    "fragment S{i} on __Schema {{ ...S{n} ...S{n} }} ",
                    n = i + 1
                )
            })
            .collect();
        let one = format!(
            "query Q0 {{ __schema {{ ...S0 }} }} {fan} fragment S8 on __Schema {{ __typename }}"
        );
        assert!(check(&one, 10, 200).is_ok());
        let operations: String = (0..50)
            .map(|i| format!("query Q{i} {{ __schema {{ ...S0 }} }} "))
            .collect();
        let document = format!("{operations} {fan} fragment S8 on __Schema {{ __typename }}");
        assert_eq!(check(&document, 10, 200), Err(RequestProblem::TooComplex));
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
        // A bomb hidden under __schema is still found.
        let fan: String = (0..30)
            .map(|i| format!("fragment F{i} on __Type {{ ...F{n} ...F{n} }} ", n = i + 1))
            .collect();
        let hidden = format!(
            "{{ __schema {{ types {{ ...F0 }} }} }} {fan} fragment F30 on __Type {{ name }}"
        );
        assert_eq!(check(&hidden, 10, 200), Err(RequestProblem::TooComplex));
    }
}
