use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub username: String,
    pub mobile: String,
    pub email: Option<String>,
    pub password_hash: String,
    pub is_active: bool,
    /// Carried in access tokens as `ver`; a password reset bumps it, so every
    /// access token issued before the reset stops working.
    pub token_version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_login_at: Option<DateTimeUtc>,
    /// The Django `id` of an imported user (`smsauth import-django`); never in the API.
    pub legacy_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
