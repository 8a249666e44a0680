// The urql client: every operation carries the access token, and an expired
// or rejected one is refreshed ONCE however many operations need it.
//
// smsauth rotates refresh tokens and treats a second use of a retired one as
// theft (it ends the whole session), so two refreshes racing with the same
// token would sign the user out. authExchange queues every operation while
// one refreshAuth() runs; the checks below also keep a failure that arrives
// after that refresh from starting a second one.
import { Client, fetchExchange, type Operation } from '@urql/core';
import { authExchange } from '@urql/exchange-auth';

import { REFRESH } from './operations';
import { clearTokens, getTokens, saveTokens } from './tokens';

export const GRAPHQL_URL: string =
  import.meta.env.VITE_SMSAUTH_URL ?? 'http://127.0.0.1:8000/graphql';

/** How many refreshes this page has done (shown in the UI). */
export let refreshCount = 0;

function bearerOf(operation: Operation): string | undefined {
  const options =
    typeof operation.context.fetchOptions === 'function'
      ? operation.context.fetchOptions()
      : operation.context.fetchOptions;
  const headers = (options?.headers ?? {}) as Record<string, string>;
  return headers.Authorization?.replace(/^Bearer /, '');
}

export function makeClient(onSessionEnded: () => void): Client {
  return new Client({
    url: GRAPHQL_URL,
    // Short queries go over GET, as urql does by default; mutations POST.
    preferGetMethod: 'within-url-limit',
    exchanges: [
      authExchange(async (utils) => {
        // The access token a rejected operation carried.
        let rejectedToken: string | undefined;
        return {
          addAuthToOperation(operation) {
            const tokens = getTokens();
            return tokens
              ? utils.appendHeaders(operation, { Authorization: `Bearer ${tokens.accessToken}` })
              : operation;
          },
          // Before sending: a token about to expire is refreshed first.
          willAuthError() {
            const tokens = getTokens();
            return !!tokens && Date.now() >= tokens.refreshAt;
          },
          // After: the server refused the token (its clock, a reset password,
          // `smsauth users logout`): refresh and retry once.
          didAuthError(error, operation) {
            const refused = error.graphQLErrors.some(
              (e) => e.extensions?.code === 'UNAUTHENTICATED',
            );
            if (refused) rejectedToken = bearerOf(operation);
            return refused;
          },
          async refreshAuth() {
            const tokens = getTokens();
            if (!tokens) return;
            // Already refreshed since that operation was sent: just retry it.
            if (rejectedToken && rejectedToken !== tokens.accessToken) return;
            rejectedToken = undefined;
            const result = await utils.mutate(REFRESH, { refreshToken: tokens.refreshToken });
            if (result.data?.refreshToken) {
              refreshCount += 1;
              saveTokens(result.data.refreshToken);
            } else {
              clearTokens();
              onSessionEnded();
            }
          },
        };
      }),
      fetchExchange,
    ],
  });
}
