//! Mutations (contract §2). Each resolver parses its arguments into domain
//! types first, then calls one service function.

use async_graphql::{Context, Object, Result};
use chrono::Utc;

use super::context::{app_state, request_meta};
use super::types::{AuthPayload, SmsCodeTicket, SmsPurpose};
use crate::domain::{Account, InvalidInput, InvalidReason, Mobile, Password, SmsCode, Username};
use crate::service::accounts::{self, SmsLogin, SmsPasswordReset, SmsRegistration};
use crate::service::{sessions, sms_codes};

pub struct Mutation;

/// Refresh tokens are 75 characters; anything far longer is not one.
const MAX_REFRESH_TOKEN_CHARS: usize = 512;

fn refresh_token_arg(token: &str) -> Result<&str, InvalidInput> {
    if token.len() > MAX_REFRESH_TOKEN_CHARS {
        Err(InvalidInput::new(
            "refreshToken",
            InvalidReason::NotARefreshToken,
        ))
    } else {
        Ok(token)
    }
}

/// Passwords presented at login are not held to the policy (older accounts
/// may predate it), only to a sane size.
fn login_password_arg(password: &str) -> Result<&str, InvalidInput> {
    if password.len() > 1024 {
        Err(InvalidInput::new(
            "password",
            InvalidReason::PasswordTooLong,
        ))
    } else {
        Ok(password)
    }
}

#[Object]
impl Mutation {
    /// Sends a one-time code for `purpose` to `mobile`.
    async fn send_sms_code(
        &self,
        ctx: &Context<'_>,
        mobile: String,
        purpose: SmsPurpose,
    ) -> Result<SmsCodeTicket> {
        let state = app_state(ctx)?;
        let mobile = Mobile::parse(&mobile, state.config.sms.default_region)?;
        let ticket = sms_codes::send_code(
            state,
            request_meta(ctx)?,
            mobile,
            purpose.into(),
            Utc::now(),
        )
        .await?;
        Ok(ticket.into())
    }

    /// Creates the user with a REGISTER code and signs them in.
    async fn register_with_sms(
        &self,
        ctx: &Context<'_>,
        mobile: String,
        code: String,
        password: String,
        username: Option<String>,
    ) -> Result<AuthPayload> {
        let state = app_state(ctx)?;
        let sms = &state.config.sms;
        let input = (|| {
            let mobile = Mobile::parse(&mobile, sms.default_region)?;
            let code = SmsCode::parse(&code, sms.code_length)?;
            let username = username.as_deref().map(Username::parse).transpose()?;
            let password = Password::parse(&password, &mobile, username.as_ref())?;
            Ok(SmsRegistration {
                mobile,
                code,
                password,
                username,
            })
        })();
        let signed_in =
            accounts::register_with_sms(state, request_meta(ctx)?, input, Utc::now()).await?;
        Ok(signed_in.into())
    }

    /// Signs in with a LOGIN code.
    async fn login_with_sms(
        &self,
        ctx: &Context<'_>,
        mobile: String,
        code: String,
    ) -> Result<AuthPayload> {
        let state = app_state(ctx)?;
        let sms = &state.config.sms;
        let input = Mobile::parse(&mobile, sms.default_region).and_then(|mobile| {
            Ok(SmsLogin {
                code: SmsCode::parse(&code, sms.code_length)?,
                mobile,
            })
        });
        let signed_in =
            accounts::login_with_sms(state, request_meta(ctx)?, input, Utc::now()).await?;
        Ok(signed_in.into())
    }

    /// Signs in with a username, mobile or email and a password.
    async fn login_with_password(
        &self,
        ctx: &Context<'_>,
        account: String,
        password: String,
    ) -> Result<AuthPayload> {
        let state = app_state(ctx)?;
        let account = Account::parse(&account, state.config.sms.default_region)?;
        let password = login_password_arg(&password)?;
        let signed_in =
            accounts::login_with_password(state, request_meta(ctx)?, account, password, Utc::now())
                .await?;
        Ok(signed_in.into())
    }

    /// Sets a new password with a RESET_PASSWORD code; ends every session.
    async fn reset_password_with_sms(
        &self,
        ctx: &Context<'_>,
        mobile: String,
        code: String,
        new_password: String,
    ) -> Result<bool> {
        let state = app_state(ctx)?;
        let sms = &state.config.sms;
        let input = Mobile::parse(&mobile, sms.default_region).and_then(|mobile| {
            Ok(SmsPasswordReset {
                code: SmsCode::parse(&code, sms.code_length)?,
                mobile,
                new_password: new_password.into(),
            })
        });
        accounts::reset_password_with_sms(state, request_meta(ctx)?, input, Utc::now())
            .await
            // The domain's `password` is this operation's `newPassword`.
            .map_err(|error| error.renaming_field("password", "newPassword"))?;
        Ok(true)
    }

    /// Exchanges a refresh token for a new pair; the old one is retired.
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        let state = app_state(ctx)?;
        let token = refresh_token_arg(&refresh_token)?;
        let signed_in = sessions::refresh(state, request_meta(ctx)?, token, Utc::now()).await?;
        Ok(signed_in.into())
    }

    /// Ends the token's session family. Always `true`.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> Result<bool> {
        let state = app_state(ctx)?;
        let token = refresh_token_arg(&refresh_token)?;
        sessions::logout(state, token, Utc::now()).await?;
        Ok(true)
    }
}
