//! `schema.graphql` is generated; this fails when it drifts from the code.

#[test]
fn schema_graphql_is_up_to_date() {
    let checked_in = include_str!("../../schema.graphql");
    assert!(
        smsauth::graphql::sdl() == checked_in,
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql` and commit it"
    );
}

#[test]
fn schema_has_the_contracts_operations() {
    let sdl = smsauth::graphql::sdl();
    for operation in [
        "mobileExists(mobile: String!): Boolean!",
        "me: User!",
        "user(id: ID!): User",
        "sendSmsCode(mobile: String!, purpose: SmsPurpose!): SmsCodeTicket!",
        "registerWithSms(mobile: String!, code: String!, password: String!, username: String): AuthPayload!",
        "loginWithSms(mobile: String!, code: String!): AuthPayload!",
        "loginWithPassword(account: String!, password: String!): AuthPayload!",
        "resetPasswordWithSms(mobile: String!, code: String!, newPassword: String!): Boolean!",
        "refreshToken(refreshToken: String!): AuthPayload!",
        "logout(refreshToken: String!): Boolean!",
    ] {
        assert!(
            sdl.contains(operation),
            "missing from the schema: {operation}"
        );
    }
}
