// What to tell the user, decided by `extensions.code` (and `reason` for
// RATE_LIMITED), never by the server's message text: codes are the contract.
import type { CombinedError } from '@urql/core';

export interface Problem {
  code: string;
  message: string;
  /** For RATE_LIMITED: when the user may try again (ms since the epoch). */
  retryAt?: number;
}

const FIELDS: Record<string, string> = {
  mobile: 'Enter a mobile number, e.g. 137 1111 2222.',
  code: 'Enter the code from the SMS.',
  password: 'A password has 8 to 128 characters and is not your mobile or username.',
  newPassword: 'A password has 8 to 128 characters and is not your mobile or username.',
  username: 'A username has 3 to 32 letters, digits, _ . or -, and starts with a letter.',
  account: 'Enter your username, mobile or email.',
};

const RATE_LIMITS: Record<string, string> = {
  COOLDOWN: 'A code was just sent to this number.',
  MOBILE_LIMIT: 'This number has received too many codes.',
  IP_LIMIT: 'Too many codes were requested from your network.',
  VERIFY_LIMIT: 'Too many wrong codes were entered from your network.',
  LOGIN_THROTTLE: 'Too many failed sign-ins.',
  MOBILE_EXISTS_LIMIT: 'Too many lookups from your network.',
  GLOBAL_LIMIT: 'The service is sending too many SMS right now.',
  REGION_LIMIT: 'Too many SMS were sent to this country.',
  SMS_GUARD: 'Codes to this range of numbers are paused.',
  PROVIDER_LIMIT: 'The SMS provider limits how often this number gets codes.',
};

const MESSAGES: Record<string, string> = {
  UNAUTHENTICATED: 'Please sign in.',
  FORBIDDEN: 'That is not yours to see.',
  INVALID_CREDENTIALS: 'Wrong account or password.',
  TOO_MANY_ATTEMPTS: 'Too many wrong codes: that code no longer works. Ask for a new one.',
  MOBILE_TAKEN: 'This number already has an account: sign in instead.',
  USERNAME_TAKEN: 'This username is taken: choose another.',
  EMAIL_TAKEN: 'This email belongs to another account.',
  USER_NOT_FOUND: 'No account has this number: sign up first.',
  REGION_NOT_ALLOWED: 'Codes cannot be sent to numbers of this country.',
  INVALID_REFRESH_TOKEN: 'Your session has ended: sign in again.',
  SMS_DELIVERY_FAILED: 'The SMS could not be sent. Try again later.',
  SERVICE_UNAVAILABLE: 'The service is unavailable right now. Try again soon.',
};

export function describe(error: CombinedError): Problem {
  const first = error.graphQLErrors[0];
  if (!first) {
    return { code: 'NETWORK', message: 'Cannot reach the server. Check your connection.' };
  }
  const extensions = (first.extensions ?? {}) as Record<string, unknown>;
  const code = String(extensions.code ?? 'INTERNAL_SERVER_ERROR');
  switch (code) {
    case 'BAD_USER_INPUT':
      return { code, message: FIELDS[String(extensions.field)] ?? 'Check what you entered.' };
    case 'INVALID_CODE': {
      const left = extensions.attemptsLeft;
      const tail = typeof left === 'number' ? ` ${left} ${left === 1 ? 'try' : 'tries'} left.` : '';
      return { code, message: `Wrong or expired code.${tail}` };
    }
    case 'RATE_LIMITED': {
      const seconds = Number(extensions.retryAfter ?? 0);
      return {
        code,
        message: RATE_LIMITS[String(extensions.reason)] ?? 'Too many requests.',
        retryAt: Date.now() + seconds * 1000,
      };
    }
    default:
      return { code, message: MESSAGES[code] ?? 'Something went wrong. Try again.' };
  }
}
