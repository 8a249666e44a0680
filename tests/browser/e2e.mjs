// The example app and GraphiQL in a real browser (the system's Chromium),
// against a real smsauth. Run by tests/browser_e2e.rs, which installs the
// packages and passes:
//   SMSAUTH_BIN  the smsauth binary     WEB_DIR  a copy of examples/web (npm ci done)
//   OUT_DIR      logs and screenshots   CHROMIUM the browser executable
//
// 1. serves the example on a free port, starts smsauth (SQLite, log provider,
//    a test number, a 3 s access token, CORS for the example's origin), builds
//    the example against it;
// 2. walks the whole flow through the UI: errors with their countdown, sign
//    up, the signed-in page, a refresh after the access token expired and one
//    after the server refused it (each once, for two queries), logout, both
//    sign-ins;
// 3. opens GraphiQL with every other origin blocked and reads its docs.
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';

const { SMSAUTH_BIN, WEB_DIR, OUT_DIR, CHROMIUM } = process.env;
const TEST_MOBILE = '+8613800000001';
const TEST_CODE = '246810';
const ACCESS_TTL_SECS = 3;
const PASSWORD = 'correct horse battery';

const started = Date.now();
const step = (what) => console.log(`[e2e +${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`);

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// --- The example's static files, on a free port.
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
const dist = join(WEB_DIR, 'dist');
const web = createServer((request, response) => {
  const path = normalize(decodeURIComponent(new URL(request.url, 'http://x').pathname));
  let file = join(dist, path);
  if (!file.startsWith(dist) || !existsSync(file) || statSync(file).isDirectory()) {
    file = join(dist, 'index.html');
  }
  response.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
  createReadStream(file).pipe(response);
});
await new Promise((resolve) => web.listen(0, '127.0.0.1', resolve));
const appOrigin = `http://127.0.0.1:${web.address().port}`;

// --- smsauth, allowing that origin.
const smsauth = spawn(SMSAUTH_BIN, ['serve'], {
  cwd: OUT_DIR,
  env: {
    PATH: process.env.PATH,
    LISTEN_ADDR: '127.0.0.1:0',
    DATABASE_URL: `sqlite://${OUT_DIR}/e2e.db?mode=rwc`,
    SMS_PROVIDER: 'log',
    SMS_TEST_NUMBERS: `${TEST_MOBILE}=${TEST_CODE}`,
    ACCESS_TOKEN_TTL_SECS: String(ACCESS_TTL_SECS),
    CORS_ALLOWED_ORIGINS: appOrigin,
    RUST_LOG: 'info',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
// However this script ends, smsauth ends with it.
process.on('exit', () => smsauth.kill('SIGKILL'));
const smsauthLog = createWriteStream(join(OUT_DIR, 'smsauth.log'));
const apiOrigin = await new Promise((resolve, reject) => {
  const lines = createInterface({ input: smsauth.stdout });
  lines.on('line', (line) => {
    smsauthLog.write(`${line}\n`);
    const addr = /addr=([0-9.:]+)/.exec(line);
    if (addr) resolve(`http://${addr[1]}`);
  });
  smsauth.on('exit', (code) => reject(new Error(`smsauth exited (${code}) before listening`)));
});
const graphqlUrl = `${apiOrigin}/graphql`;
step(`smsauth at ${apiOrigin}, example at ${appOrigin}`);

const build = spawnSync('npm', ['run', 'build'], {
  cwd: WEB_DIR,
  env: { ...process.env, VITE_SMSAUTH_URL: graphqlUrl },
  stdio: ['ignore', 'inherit', 'inherit'],
});
check(build.status === 0, 'npm run build failed in the example');
step('example built');

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
try {
  await onFailureScreenshot(browser, 'example', exampleApp);
  await onFailureScreenshot(browser, 'graphiql', graphiql);
} finally {
  await browser.close();
  smsauth.kill('SIGTERM');
  web.close();
}
step('passed');

/** Runs `walk(page)`; when it fails, the page as it was is saved. */
async function onFailureScreenshot(browser, name, walk) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 800 } });
  const page = await context.newPage();
  try {
    await walk(page, context);
  } catch (error) {
    const path = join(OUT_DIR, `${name}-failed.png`);
    await page.screenshot({ path, fullPage: true }).catch(() => {});
    console.log(`screenshot of the failure: ${path}`);
    throw error;
  } finally {
    await context.close();
  }
}

/** Names of the GraphQL operations the page sends, and their error codes. */
function recordOperations(page) {
  const sent = [];
  page.on('response', async (response) => {
    const request = response.request();
    if (!request.url().startsWith(graphqlUrl) || request.method() === 'OPTIONS') return;
    const query =
      request.method() === 'GET'
        ? new URL(request.url()).searchParams.get('query')
        : JSON.parse(request.postData() ?? '{}').query;
    const name = /\b(?:query|mutation)\s+(\w+)/.exec(query ?? '')?.[1] ?? '?';
    const body = await response.json().catch(() => ({}));
    sent.push({ name, code: body.errors?.[0]?.extensions?.code ?? 'ok' });
  });
  return sent;
}

function count(sent, name, code) {
  return sent.filter((op) => op.name === name && (code === undefined || op.code === code)).length;
}

async function signedInAs(page, username) {
  await page.getByRole('heading', { name: `Signed in as ${username}` }).waitFor();
  await page.getByText('Member since').waitFor();
}

async function exampleApp(page) {
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  const sent = recordOperations(page);
  await page.goto(appOrigin);
  const alert = page.getByRole('alert');

  step('a second code within the cooldown: RATE_LIMITED, with a live countdown');
  await page.getByLabel('Mobile').fill('137 1111 2222');
  await page.getByRole('button', { name: 'Send code' }).click();
  await page.getByText('Code sent to +8613711112222; valid for 5 min.').waitFor();
  check(
    await page.getByRole('button', { name: /Send code \(\d+ s\)/ }).isDisabled(),
    'the send button waits for the resend delay',
  );
  await page.reload();
  await page.getByLabel('Mobile').fill('13711112222');
  await page.getByRole('button', { name: 'Send code' }).click();
  await alert.filter({ hasText: 'A code was just sent to this number.' }).waitFor();
  const seconds = async () => Number(/Try again in (\d+) s/.exec(await alert.textContent())?.[1]);
  const first = await seconds();
  // Over 2 s plus the display's 250 ms tick, so the number must have moved by 2.
  await page.waitForTimeout(2600);
  const later = await seconds();
  check(first > 50 && later <= first - 2, `the countdown runs: ${first} s, then ${later} s`);

  step('sign-in by code for an unknown number: USER_NOT_FOUND');
  await page.getByRole('tab', { name: 'Sign in with a code' }).click();
  await page.getByLabel('Mobile').fill('138 0000 0002');
  await page.getByRole('button', { name: 'Send code' }).click();
  await alert.filter({ hasText: 'No account has this number: sign up first.' }).waitFor();

  step('sign up: a wrong code, then the right one');
  await page.getByRole('tab', { name: 'Sign up' }).click();
  await page.getByLabel('Mobile').fill('138 0000 0001');
  await page.getByRole('button', { name: 'Send code' }).click();
  await page.getByText(`Code sent to ${TEST_MOBILE}`).waitFor();
  await page.getByLabel('Code').fill('000000');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByLabel('Username (optional)').fill('alice');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await alert.filter({ hasText: 'Wrong or expired code. 4 tries left.' }).waitFor();
  await page.getByLabel('Code').fill(TEST_CODE);
  const signingUpAt = Date.now();
  await page.getByRole('button', { name: 'Sign up' }).click();
  await signedInAs(page, 'alice');
  await page.getByText(TEST_MOBILE).waitFor();
  const signedIn = join(OUT_DIR, 'example-signed-in.png');
  await page.screenshot({ path: signedIn, fullPage: true });
  console.log(`screenshot: ${signedIn}`);

  step('the access token expires: Reload refreshes once for both queries');
  await page.getByText('Access token has expired').waitFor({ timeout: ACCESS_TTL_SECS * 1000 + 2000 });
  check(Date.now() - signingUpAt >= ACCESS_TTL_SECS * 1000, 'the token lived its TTL');
  const beforeReload = sent.length;
  await page.getByRole('button', { name: 'Reload' }).click();
  await signedInAs(page, 'alice');
  await page.getByText('session refreshed 1 time').waitFor();
  const afterReload = sent.slice(beforeReload);
  check(count(afterReload, 'Refresh', 'ok') === 1, `one refresh: ${JSON.stringify(afterReload)}`);
  check(count(afterReload, 'Profile', 'ok') === 1 && count(afterReload, 'Activity', 'ok') === 1,
    `both queries answered after the refresh: ${JSON.stringify(afterReload)}`);

  step('the server refuses the access token: both queries fail, one refresh, both retried');
  await page.evaluate(() => {
    const tokens = JSON.parse(localStorage.getItem('smsauth.tokens'));
    tokens.accessToken = 'not-a-valid-token';
    tokens.refreshAt = tokens.expiresAt = Date.now() + 600_000;
    localStorage.setItem('smsauth.tokens', JSON.stringify(tokens));
  });
  const beforeRefused = sent.length;
  await page.reload();
  await signedInAs(page, 'alice');
  await page.getByText('session refreshed 1 time').waitFor();
  const afterRefused = sent.slice(beforeRefused);
  check(count(afterRefused, 'Profile', 'UNAUTHENTICATED') + count(afterRefused, 'Activity', 'UNAUTHENTICATED') === 2,
    `both queries were refused: ${JSON.stringify(afterRefused)}`);
  check(count(afterRefused, 'Refresh') === 1, `one refresh: ${JSON.stringify(afterRefused)}`);

  step('log out: the refresh token stops working');
  const { refreshToken } = await page.evaluate(() => JSON.parse(localStorage.getItem('smsauth.tokens')));
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('tab', { name: 'Sign up' }).waitFor();
  check((await page.evaluate(() => localStorage.getItem('smsauth.tokens'))) === null, 'tokens cleared');
  const reuse = await fetch(graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query: 'mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }',
      variables: { t: refreshToken },
    }),
  }).then((r) => r.json());
  check(reuse.errors?.[0]?.extensions?.code === 'INVALID_REFRESH_TOKEN', `after logout: ${JSON.stringify(reuse)}`);

  step('sign in with a password: a wrong one, then the right one');
  await page.getByRole('tab', { name: 'Sign in with a password' }).click();
  await page.getByLabel('Username, mobile or email').fill('alice');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await alert.filter({ hasText: 'Wrong account or password.' }).waitFor();
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await signedInAs(page, 'alice');
  await page.getByRole('button', { name: 'Log out' }).click();

  step('sign in with a code');
  await page.getByRole('tab', { name: 'Sign in with a code' }).click();
  await page.getByLabel('Mobile').fill('+86 138-0000-0001');
  await page.getByRole('button', { name: 'Send code' }).click();
  await page.getByText(`Code sent to ${TEST_MOBILE}`).waitFor();
  await page.getByLabel('Code').fill(TEST_CODE);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await signedInAs(page, 'alice');

  check(pageErrors.length === 0, `errors in the page: ${pageErrors.join('; ')}`);
}

async function graphiql(page, context) {
  step('GraphiQL with every other origin blocked');
  const foreign = [];
  const failed = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === apiOrigin) return route.continue();
    foreign.push(url);
    return route.abort();
  });
  page.on('response', (response) => {
    if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
  });
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  await page.goto(graphqlUrl);
  await page.locator('.graphiql-container').waitFor();
  // The first example query, and the Headers tab with the Authorization hint.
  await page.locator('.graphiql-query-editor').getByText('mobileExists').first().waitFor();
  await page.locator('.graphiql-editor-tool').getByText('Authorization').first().waitFor();

  await page.getByRole('button', { name: /Execute query/ }).click();
  await page.locator('.result-window').getByText('"mobileExists"').waitFor();

  await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
  await page.locator('.graphiql-doc-explorer-type-name', { hasText: /^Mutation$/ }).first().click();
  const fields = page.locator('.graphiql-doc-explorer-field-name');
  await fields.getByText('sendSmsCode', { exact: true }).waitFor();
  await fields.getByText('registerWithSms', { exact: true }).waitFor();
  const shot = join(OUT_DIR, 'graphiql-docs.png');
  await page.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);

  check(foreign.length === 0, `GraphiQL asked other origins: ${foreign.join(', ')}`);
  check(failed.length === 0, `failed requests: ${failed.join(', ')}`);
  check(pageErrors.length === 0, `errors in GraphiQL: ${pageErrors.join('; ')}`);
}
