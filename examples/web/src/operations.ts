// Every document the app sends. `AUTH_FIELDS` is what each sign-in returns.
import { gql } from '@urql/core';

const AUTH_FIELDS = 'accessToken refreshToken expiresIn user { id username }';

export type Purpose = 'REGISTER' | 'LOGIN';

export const SEND_CODE = gql`
  mutation SendCode($mobile: String!, $purpose: SmsPurpose!) {
    sendSmsCode(mobile: $mobile, purpose: $purpose) { mobile expiresIn resendIn }
  }
`;

export const REGISTER = gql`
  mutation Register($mobile: String!, $code: String!, $password: String!, $username: String) {
    registerWithSms(mobile: $mobile, code: $code, password: $password, username: $username) { ${AUTH_FIELDS} }
  }
`;

export const LOGIN_WITH_SMS = gql`
  mutation LoginWithSms($mobile: String!, $code: String!) {
    loginWithSms(mobile: $mobile, code: $code) { ${AUTH_FIELDS} }
  }
`;

export const LOGIN_WITH_PASSWORD = gql`
  mutation LoginWithPassword($account: String!, $password: String!) {
    loginWithPassword(account: $account, password: $password) { ${AUTH_FIELDS} }
  }
`;

export const REFRESH = `
  mutation Refresh($refreshToken: String!) {
    refreshToken(refreshToken: $refreshToken) { accessToken refreshToken expiresIn }
  }
`;

export const LOGOUT = gql`
  mutation Logout($refreshToken: String!) { logout(refreshToken: $refreshToken) }
`;

// Two components, two queries: on a page load with an expired token both
// fail at once, and the session must still be refreshed only once.
export const PROFILE = gql`
  query Profile { me { id username mobile email } }
`;

export const ACTIVITY = gql`
  query Activity { me { id createdAt lastLoginAt } }
`;
