// Sign up with an SMS code, sign in with a code or with a password.
import { useState, type FormEvent } from 'react';
import { useMutation } from 'urql';

import { describe, type Problem } from './errors';
import {
  LOGIN_WITH_PASSWORD,
  LOGIN_WITH_SMS,
  REGISTER,
  SEND_CODE,
  type Purpose,
} from './operations';
import { ProblemNote, useCountdown } from './Problem';
import { saveTokens, type AuthPayload } from './tokens';

type Mode = 'register' | 'sms' | 'password';

export function SignedOut({ notice }: { notice?: string }) {
  const [mode, setMode] = useState<Mode>('register');
  return (
    <section>
      {notice && <p className="notice">{notice}</p>}
      <nav role="tablist">
        <Tab mode="register" current={mode} onSelect={setMode} label="Sign up" />
        <Tab mode="sms" current={mode} onSelect={setMode} label="Sign in with a code" />
        <Tab mode="password" current={mode} onSelect={setMode} label="Sign in with a password" />
      </nav>
      {/* A key per mode: switching starts a clean form. */}
      {mode === 'password' ? <PasswordForm /> : <CodeForm key={mode} purpose={mode === 'register' ? 'REGISTER' : 'LOGIN'} />}
    </section>
  );
}

function Tab(props: { mode: Mode; current: Mode; label: string; onSelect: (m: Mode) => void }) {
  return (
    <button
      role="tab"
      aria-selected={props.mode === props.current}
      onClick={() => props.onSelect(props.mode)}
    >
      {props.label}
    </button>
  );
}

/** The code form: send a code, then register or sign in with it. */
function CodeForm({ purpose }: { purpose: Purpose }) {
  const [mobile, setMobile] = useState('');
  const [code, setCode] = useState('');
  const [password, setPassword] = useState('');
  const [username, setUsername] = useState('');
  const [problem, setProblem] = useState<Problem | null>(null);
  const [sent, setSent] = useState<{ mobile: string; validMinutes: number } | null>(null);
  const [resendAt, setResendAt] = useState<number>();
  const resendWait = useCountdown(resendAt);
  const [sending, sendCode] = useMutation(SEND_CODE);
  const [registering, register] = useMutation(REGISTER);
  const [signingIn, loginWithSms] = useMutation(LOGIN_WITH_SMS);

  async function onSend() {
    setProblem(null);
    const result = await sendCode({ mobile, purpose });
    if (result.error) {
      const problem = describe(result.error);
      setProblem(problem);
      if (problem.retryAt) setResendAt(problem.retryAt);
      return;
    }
    const ticket = result.data.sendSmsCode;
    setSent({ mobile: ticket.mobile, validMinutes: Math.ceil(ticket.expiresIn / 60) });
    setResendAt(Date.now() + ticket.resendIn * 1000);
  }

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    setProblem(null);
    const result =
      purpose === 'REGISTER'
        ? await register({ mobile, code, password, username: username || null })
        : await loginWithSms({ mobile, code });
    if (result.error) return setProblem(describe(result.error));
    const payload: AuthPayload =
      purpose === 'REGISTER' ? result.data.registerWithSms : result.data.loginWithSms;
    saveTokens(payload);
  }

  return (
    <form onSubmit={onSubmit}>
      <label>
        Mobile
        <input value={mobile} onChange={(e) => setMobile(e.target.value)} inputMode="tel" autoComplete="tel" />
      </label>
      <button type="button" onClick={onSend} disabled={sending.fetching || resendWait > 0 || !mobile}>
        {resendWait > 0 ? `Send code (${resendWait} s)` : 'Send code'}
      </button>
      {sent && (
        <p className="notice">
          Code sent to {sent.mobile}; valid for {sent.validMinutes} min.
        </p>
      )}
      <label>
        Code
        <input value={code} onChange={(e) => setCode(e.target.value)} inputMode="numeric" autoComplete="one-time-code" />
      </label>
      {purpose === 'REGISTER' && (
        <>
          <label>
            Password
            <input type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" />
          </label>
          <label>
            Username (optional)
            <input value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="username" />
          </label>
        </>
      )}
      <button type="submit" disabled={registering.fetching || signingIn.fetching}>
        {purpose === 'REGISTER' ? 'Sign up' : 'Sign in'}
      </button>
      <ProblemNote problem={problem} />
    </form>
  );
}

function PasswordForm() {
  const [account, setAccount] = useState('');
  const [password, setPassword] = useState('');
  const [problem, setProblem] = useState<Problem | null>(null);
  const [state, login] = useMutation(LOGIN_WITH_PASSWORD);

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    setProblem(null);
    const result = await login({ account, password });
    if (result.error) return setProblem(describe(result.error));
    saveTokens(result.data.loginWithPassword);
  }

  return (
    <form onSubmit={onSubmit}>
      <label>
        Username, mobile or email
        <input value={account} onChange={(e) => setAccount(e.target.value)} autoComplete="username" />
      </label>
      <label>
        Password
        <input type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="current-password" />
      </label>
      <button type="submit" disabled={state.fetching}>
        Sign in
      </button>
      <ProblemNote problem={problem} />
    </form>
  );
}
