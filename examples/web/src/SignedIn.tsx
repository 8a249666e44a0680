// The signed-in page: two components with their own `me` queries, a reload
// (refreshing the session if the access token expired), and logout.
import { useState } from 'react';
import { useMutation, useQuery } from 'urql';

import { refreshCount } from './client';
import { describe } from './errors';
import { ACTIVITY, LOGOUT, PROFILE } from './operations';
import { ProblemNote, useCountdown } from './Problem';
import { clearTokens, type Tokens } from './tokens';

export function SignedIn({ tokens }: { tokens: Tokens }) {
  // Bumping the key remounts both panels: two queries at once.
  const [generation, setGeneration] = useState(0);
  const [, logout] = useMutation(LOGOUT);
  const expiresIn = useCountdown(tokens.expiresAt);

  async function onLogout() {
    // logout always answers true; the session is over either way.
    await logout({ refreshToken: tokens.refreshToken });
    clearTokens();
  }

  return (
    <section>
      <div key={generation} className="panels">
        <Profile />
        <Activity />
      </div>
      <p className="session">
        Access token {expiresIn > 0 ? `expires in ${expiresIn} s` : 'has expired'} · session
        refreshed {refreshCount} {refreshCount === 1 ? 'time' : 'times'}
      </p>
      <button onClick={() => setGeneration((g) => g + 1)}>Reload</button>
      <button onClick={onLogout}>Log out</button>
    </section>
  );
}

function Profile() {
  const [{ data, error, fetching }] = useQuery({ query: PROFILE, requestPolicy: 'network-only' });
  if (fetching) return <article aria-busy="true">Loading…</article>;
  if (error) return <ProblemNote problem={describe(error)} />;
  return (
    <article aria-label="Profile">
      <h2>Signed in as {data.me.username}</h2>
      <dl>
        <dt>Mobile</dt>
        <dd>{data.me.mobile}</dd>
        <dt>Email</dt>
        <dd>{data.me.email ?? '—'}</dd>
        <dt>Id</dt>
        <dd>{data.me.id}</dd>
      </dl>
    </article>
  );
}

function Activity() {
  const [{ data, error, fetching }] = useQuery({ query: ACTIVITY, requestPolicy: 'network-only' });
  if (fetching) return <article aria-busy="true">Loading…</article>;
  if (error) return <ProblemNote problem={describe(error)} />;
  const when = (at: string | null) => (at ? new Date(at).toLocaleString() : '—');
  return (
    <article aria-label="Activity">
      <h2>Activity</h2>
      <dl>
        <dt>Member since</dt>
        <dd>{when(data.me.createdAt)}</dd>
        <dt>Last sign-in</dt>
        <dd>{when(data.me.lastLoginAt)}</dd>
      </dl>
    </article>
  );
}
