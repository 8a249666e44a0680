// Signed in or not follows the stored tokens. The urql client is made anew
// at each sign-in and sign-out, so no cached data outlives its session.
import { useMemo, useState, useSyncExternalStore } from 'react';
import { Provider } from 'urql';

import { GRAPHQL_URL, makeClient } from './client';
import { SignedIn } from './SignedIn';
import { SignedOut } from './SignedOut';
import { getTokens, subscribe } from './tokens';

export function App() {
  const tokens = useSyncExternalStore(subscribe, getTokens);
  const signedIn = tokens !== null;
  const [notice, setNotice] = useState<string>();
  const client = useMemo(
    () => makeClient(() => setNotice('Your session has ended: sign in again.')),
    // A new client only when signing in or out, not at each refresh.
    [signedIn],
  );
  return (
    <Provider value={client}>
      <header>
        <h1>smsauth example</h1>
        <small>{GRAPHQL_URL}</small>
      </header>
      <main>{tokens ? <SignedIn tokens={tokens} /> : <SignedOut notice={notice} />}</main>
    </Provider>
  );
}
