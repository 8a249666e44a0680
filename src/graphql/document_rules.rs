//! Rules this service adds to GraphQL validation, where async-graphql is more
//! lenient than the GraphQL specification or the contract (§3.1):
//!
//! - a mutation operation selects exactly one root field (`__typename`
//!   aside), so one request cannot multiply an expensive mutation by aliases;
//! - an operation selects `__schema` at most once and `__type` at most
//!   [`MAX_TYPE_SELECTIONS`] times, so introspection cannot be multiplied either;
//! - an enum argument or variable default is never written as a string
//!   literal (`purpose: "REGISTER"`; JSON variables still give enums as strings);
//! - every variable an operation uses is declared by it (directives included).
//!
//! It runs after `query_cost`, whose step cap bounds every walk here (a
//! fragment bomb or cycle never reaches this module).

use std::collections::BTreeSet;

use async_graphql::parser::types::{
    Directive, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql_value::Value;

use crate::messages::RequestProblem;

/// `__type` selections allowed per operation (GraphiQL's fetch uses none).
pub const MAX_TYPE_SELECTIONS: usize = 10;

/// `Err` with the message for the client when a rule is broken.
pub fn check(document: &ExecutableDocument, registry: &Registry) -> Result<(), RequestProblem> {
    for (_, operation) in document.operations.iter() {
        let operation = &operation.node;
        let mut walk = Walk {
            document,
            registry,
            used_variables: BTreeSet::new(),
            enum_literal: None,
        };
        let roots = walk.root_fields(&operation.selection_set.node);
        if operation.ty == OperationType::Mutation && roots.fields != 1 {
            return Err(RequestProblem::MutationFields(roots.fields));
        }
        if roots.schema > 1 {
            return Err(RequestProblem::SchemaTwice);
        }
        if roots.types > MAX_TYPE_SELECTIONS {
            return Err(RequestProblem::TooManyTypes(MAX_TYPE_SELECTIONS));
        }

        let root_type = match operation.ty {
            OperationType::Query => Some(registry.query_type.as_str()),
            OperationType::Mutation => registry.mutation_type.as_deref(),
            OperationType::Subscription => registry.subscription_type.as_deref(),
        };
        for definition in &operation.variable_definitions {
            let definition = &definition.node;
            let is_string = matches!(
                definition.default_value.as_ref().map(|v| &v.node),
                Some(async_graphql::Value::String(_))
            );
            if is_string && walk.is_enum(&definition.var_type.node.to_string()) {
                return Err(RequestProblem::EnumDefaultQuoted {
                    variable: definition.name.node.to_string(),
                });
            }
        }
        walk.directives(&operation.directives);
        walk.selection_set(&operation.selection_set.node, root_type);
        if let Some((field, argument)) = walk.enum_literal {
            return Err(RequestProblem::EnumArgumentQuoted { field, argument });
        }
        let declared: BTreeSet<&str> = operation
            .variable_definitions
            .iter()
            .map(|definition| definition.node.name.node.as_str())
            .collect();
        if let Some(undeclared) = walk
            .used_variables
            .iter()
            .find(|name| !declared.contains(name.as_str()))
        {
            return Err(RequestProblem::UndefinedVariable(undeclared.clone()));
        }
    }
    Ok(())
}

/// What an operation selects at its root, through fragments.
#[derive(Default)]
struct RootFields {
    fields: usize,
    schema: usize,
    types: usize,
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    registry: &'a Registry,
    used_variables: BTreeSet<String>,
    /// The first `(field, argument)` whose enum value is a string literal.
    enum_literal: Option<(String, String)>,
}

impl Walk<'_> {
    fn root_fields(&self, set: &SelectionSet) -> RootFields {
        let mut counted = RootFields::default();
        self.count_root_fields(set, &mut counted);
        counted
    }

    fn count_root_fields(&self, set: &SelectionSet, counted: &mut RootFields) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => match field.node.name.node.as_str() {
                    "__typename" => {}
                    "__schema" => counted.schema += 1,
                    "__type" => counted.types += 1,
                    _ => counted.fields += 1,
                },
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    {
                        self.count_root_fields(&fragment.node.selection_set.node, counted);
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.count_root_fields(&inline.node.selection_set.node, counted);
                }
            }
        }
    }

    /// Walks a selection set on the type `on` (when known), noting variables
    /// used and enum arguments given as strings.
    fn selection_set(&mut self, set: &SelectionSet, on: Option<&str>) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    self.directives(&field.directives);
                    let definition = on
                        .and_then(|name| self.registry.types.get(name))
                        .and_then(|ty| ty.field_by_name(field.name.node.as_str()));
                    for (name, value) in &field.arguments {
                        self.variables_in(&value.node);
                        let expects_enum = definition
                            .and_then(|d| d.args.get(name.node.as_str()))
                            .is_some_and(|arg| self.is_enum(&arg.ty));
                        if expects_enum
                            && matches!(value.node, Value::String(_))
                            && self.enum_literal.is_none()
                        {
                            self.enum_literal =
                                Some((field.name.node.to_string(), name.node.to_string()));
                        }
                    }
                    let below = definition.map(|d| MetaTypeName::concrete_typename(&d.ty));
                    self.selection_set(&field.selection_set.node, below);
                }
                Selection::FragmentSpread(spread) => {
                    self.directives(&spread.node.directives);
                    if let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    {
                        let fragment = &fragment.node;
                        self.directives(&fragment.directives);
                        let on = fragment.type_condition.node.on.node.as_str();
                        self.selection_set(&fragment.selection_set.node, Some(on));
                    }
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    self.directives(&inline.directives);
                    let on = inline
                        .type_condition
                        .as_ref()
                        .map(|condition| condition.node.on.node.as_str())
                        .or(on);
                    self.selection_set(&inline.selection_set.node, on);
                }
            }
        }
    }

    fn directives(&mut self, directives: &[async_graphql::Positioned<Directive>]) {
        for directive in directives {
            for (_, value) in &directive.node.arguments {
                self.variables_in(&value.node);
            }
        }
    }

    fn variables_in(&mut self, value: &Value) {
        match value {
            Value::Variable(name) => {
                self.used_variables.insert(name.to_string());
            }
            Value::List(items) => items.iter().for_each(|item| self.variables_in(item)),
            Value::Object(fields) => fields.values().for_each(|item| self.variables_in(item)),
            _ => {}
        }
    }

    fn is_enum(&self, type_name: &str) -> bool {
        matches!(
            self.registry
                .types
                .get(MetaTypeName::concrete_typename(type_name)),
            Some(MetaType::Enum { .. })
        )
    }
}
