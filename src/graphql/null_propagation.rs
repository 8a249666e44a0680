//! Null propagation as the GraphQL specification has it (§6.4.4, "Handling
//! Field Errors"), applied to a response after execution: async-graphql
//! leaves an errored field out of its parent object instead. Here the field
//! becomes `null` when its type is nullable; otherwise the null propagates to
//! the nearest nullable parent (`user: null` for an unreadable `User.mobile:
//! String!`), and to `data` itself when there is none. Typed clients and
//! Apollo's cache never see a missing non-null field.

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::registry::{MetaTypeName, Registry};
use async_graphql::{Name, PathSegment, Response, Value};

/// Applies the rule to every field error of `response`, the result of the
/// operation `operation_name` of `document`.
pub fn propagate_nulls(
    response: &mut Response,
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    registry: &Registry,
) {
    let Some(operation) = document
        .operations
        .iter()
        .find(|(name, _)| operation_name.is_none() || name.map(|n| n.as_str()) == operation_name)
        .map(|(_, operation)| &operation.node)
    else {
        return;
    };
    let root_type = match operation.ty {
        OperationType::Query => Some(registry.query_type.as_str()),
        OperationType::Mutation => registry.mutation_type.as_deref(),
        OperationType::Subscription => registry.subscription_type.as_deref(),
    };
    let Some(root_type) = root_type else { return };
    let resolver = Types {
        document,
        registry,
        root: &operation.selection_set.node,
        root_type,
    };

    // Where each error's null lands: `Some(prefix)` nulls that path, `None`
    // nulls `data` itself.
    let targets: Vec<Option<Vec<PathSegment>>> = response
        .errors
        .iter()
        .filter(|error| !error.path.is_empty())
        .filter_map(|error| {
            let nullable = resolver.nullability(&error.path)?;
            let present = lookup(&response.data, &error.path).is_some();
            if present {
                return None;
            }
            Some(
                (0..error.path.len())
                    .rev()
                    .find(|&i| nullable[i])
                    .map(|i| error.path[..=i].to_vec()),
            )
        })
        .collect();
    if targets.is_empty() {
        return;
    }
    if targets.iter().any(Option::is_none) {
        response.data = Value::Null;
        return;
    }
    // async-graphql answers `null` for an object none of whose fields
    // resolved; with a nullable root field that errored, `data` is an object.
    if response.data == Value::Null {
        response.data = Value::Object(Default::default());
    }
    for path in targets.into_iter().flatten() {
        set_null(&mut response.data, &path);
    }
}

/// The value at `path`, if the response has one.
fn lookup<'a>(data: &'a Value, path: &[PathSegment]) -> Option<&'a Value> {
    path.iter()
        .try_fold(data, |value, segment| match (value, segment) {
            (Value::Object(fields), PathSegment::Field(key)) => fields.get(key.as_str()),
            (Value::List(items), PathSegment::Index(i)) => items.get(*i),
            _ => None,
        })
}

/// Sets the value at `path` to null, if its parent is still there.
fn set_null(data: &mut Value, path: &[PathSegment]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut value = data;
    for segment in parents {
        let next = match (value, segment) {
            (Value::Object(fields), PathSegment::Field(key)) => fields.get_mut(key.as_str()),
            (Value::List(items), PathSegment::Index(i)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(next) => value = next,
            None => return,
        }
    }
    match (value, last) {
        (Value::Object(fields), PathSegment::Field(key)) => {
            fields.insert(Name::new(key), Value::Null);
        }
        (Value::List(items), PathSegment::Index(i)) => {
            if let Some(item) = items.get_mut(*i) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}

/// Finds the declared type of each step of a response path.
struct Types<'a> {
    document: &'a ExecutableDocument,
    registry: &'a Registry,
    root: &'a SelectionSet,
    root_type: &'a str,
}

impl<'a> Types<'a> {
    /// Whether each segment of `path` may be null; `None` when the path does
    /// not lead through the document and schema (then nothing is changed).
    fn nullability(&self, path: &[PathSegment]) -> Option<Vec<bool>> {
        let mut sets: Vec<&'a SelectionSet> = vec![self.root];
        let mut ty: String = self.root_type.to_owned();
        let mut nullable = Vec::with_capacity(path.len());
        for segment in path {
            match segment {
                PathSegment::Field(key) => {
                    let fields = self.fields_with_key(&sets, key);
                    let first = fields.first()?;
                    let parent = self
                        .registry
                        .types
                        .get(MetaTypeName::concrete_typename(&ty))?;
                    let definition = parent.field_by_name(first.name.node.as_str())?;
                    ty = definition.ty.clone();
                    nullable.push(!ty.ends_with('!'));
                    sets = fields.iter().map(|f| &f.selection_set.node).collect();
                }
                PathSegment::Index(_) => {
                    let inner = ty.strip_suffix('!').unwrap_or(&ty);
                    let element = inner.strip_prefix('[')?.strip_suffix(']')?.to_owned();
                    nullable.push(!element.ends_with('!'));
                    ty = element;
                }
            }
        }
        Some(nullable)
    }

    /// Every field of `sets` (through fragments) answered under `key`.
    fn fields_with_key(
        &self,
        sets: &[&'a SelectionSet],
        key: &str,
    ) -> Vec<&'a async_graphql::parser::types::Field> {
        let mut found = Vec::new();
        for set in sets {
            self.collect(set, key, &mut found, 0);
        }
        found
    }

    fn collect(
        &self,
        set: &'a SelectionSet,
        key: &str,
        found: &mut Vec<&'a async_graphql::parser::types::Field>,
        depth: usize,
    ) {
        // Documents that got this far passed the nesting limits; this only
        // guards against a cycle validation would have refused.
        if depth > 64 {
            return;
        }
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) if field.node.response_key().node.as_str() == key => {
                    found.push(&field.node);
                }
                Selection::Field(_) => {}
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    {
                        self.collect(&fragment.node.selection_set.node, key, found, depth + 1);
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.collect(&inline.node.selection_set.node, key, found, depth + 1);
                }
            }
        }
    }
}
