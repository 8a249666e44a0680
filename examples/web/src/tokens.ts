// Where the session lives: localStorage, so a reload keeps you signed in.
// Components subscribe with useSyncExternalStore (see App.tsx).

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  /** When the access token expires, in ms since the epoch (from `expiresIn`). */
  expiresAt: number;
  /** When to refresh it before use: a little before it expires. */
  refreshAt: number;
}

/** The fields of an AuthPayload this app keeps. */
export interface AuthPayload {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

const KEY = 'smsauth.tokens';
const listeners = new Set<() => void>();
let current: Tokens | null = read();

function read(): Tokens | null {
  try {
    const stored = localStorage.getItem(KEY);
    return stored ? (JSON.parse(stored) as Tokens) : null;
  } catch {
    return null;
  }
}

export function getTokens(): Tokens | null {
  return current;
}

export function saveTokens(payload: AuthPayload): Tokens {
  const lifetime = payload.expiresIn * 1000;
  const now = Date.now();
  current = {
    accessToken: payload.accessToken,
    refreshToken: payload.refreshToken,
    expiresAt: now + lifetime,
    // 5 s early (a tenth of the lifetime for very short ones), so a token
    // never expires on its way to the server.
    refreshAt: now + lifetime - Math.min(5_000, lifetime / 10),
  };
  localStorage.setItem(KEY, JSON.stringify(current));
  listeners.forEach((listener) => listener());
  return current;
}

export function clearTokens(): void {
  current = null;
  localStorage.removeItem(KEY);
  listeners.forEach((listener) => listener());
}

export function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
