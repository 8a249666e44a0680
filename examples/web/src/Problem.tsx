// An error as the user sees it, with a live countdown for RATE_LIMITED.
import { useEffect, useState } from 'react';

import type { Problem } from './errors';

/** Whole seconds until `until` (ms since the epoch), ticking; 0 once past. */
export function useCountdown(until?: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!until || until <= Date.now()) return;
    const timer = setInterval(() => {
      setNow(Date.now());
      if (Date.now() >= until) clearInterval(timer);
    }, 250);
    return () => clearInterval(timer);
  }, [until]);
  return until ? Math.max(0, Math.ceil((until - now) / 1000)) : 0;
}

export function ProblemNote({ problem }: { problem?: Problem | null }) {
  const wait = useCountdown(problem?.retryAt);
  if (!problem) return null;
  return (
    <p role="alert" className="problem" data-code={problem.code}>
      {problem.message}
      {problem.retryAt !== undefined &&
        (wait > 0 ? ` Try again in ${wait} s.` : ' You can try again now.')}
    </p>
  );
}
