// Shared setup for the browser specs: environment, Chromium launch, screenshots, step logging,
// alarms raised by tests/browser.rs, and signing in to the console and the app.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export function env(name, fallback) {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`missing environment variable ${name}`);
  return v;
}

export const URL = env('ONEKEY_URL', 'http://127.0.0.1:8080');
export const SHOTS = env('ONEKEY_SCREENSHOTS', 'target/screenshots');
export const T = 30_000;
mkdirSync(SHOTS, { recursive: true });

export async function launch() {
  return chromium.launch({
    executablePath: env('ONEKEY_CHROMIUM', '/usr/bin/chromium'),
    ignoreDefaultArgs: ['--autoplay-policy=no-user-gesture-required'],
    // The autoplay rule of a real browser: no sound before the user has interacted with the page.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--autoplay-policy=document-user-activation-required'],
  });
}

/** A page that fails the run on uncaught page errors and logs console errors. */
export async function page(context, label) {
  const p = await context.newPage();
  p.on('pageerror', (e) => { console.error(`[${label}] page error: ${e.message}`); process.exitCode = 1; });
  p.on('console', (m) => { if (m.type() === 'error') console.error(`[${label}] console: ${m.text()}`); });
  return p;
}

export async function shot(p, name) {
  const path = join(SHOTS, name);
  await p.screenshot({ path, fullPage: true });
  console.log(`screenshot ${path}`);
}

export function step(text) { console.log(`step: ${text}`); }

export function check(cond, message) { if (!cond) throw new Error(`assertion failed: ${message}`); }

// Alarms: the Rust side raises them from simulated devices and answers on stdin.
const answers = [];
const waiting = [];
createInterface({ input: process.stdin }).on('line', (line) => {
  const w = waiting.shift();
  if (w) w(line); else answers.push(line);
});
/** Raises alarm `kind` from device `n` (1: the followed elder) and waits for its ACK. */
export async function raise(kind, n = 1) {
  console.log(`RAISE ${kind} ${n}`);
  const line = answers.length ? answers.shift() : await new Promise((resolve) => waiting.push(resolve));
  if (!line.startsWith(`RAISED ${kind} ${n}`)) throw new Error(`unexpected answer ${line}`);
}

/** Starts (`start`) or stops (`stop`) a steady heartbeat from two native devices (the Rust side). */
export async function traffic(cmd) {
  console.log(`TRAFFIC ${cmd}`);
  const line = answers.length ? answers.shift() : await new Promise((resolve) => waiting.push(resolve));
  if (line !== `TRAFFIC ${cmd}`) throw new Error(`unexpected answer ${line}`);
}

/** Signs in to the console in a new context; returns the page once the queue shows and the feed is live. */
export async function consoleLogin(browser, { name = env('ONEKEY_OPERATOR'), password = env('ONEKEY_OPERATOR_PASSWORD'), width = 1440, height = 900, label = 'console' } = {}) {
  const ctx = await browser.newContext({ viewport: { width, height }, locale: 'zh-CN', acceptDownloads: true });
  const p = await page(ctx, label);
  await p.goto(`${URL}/console`);
  await p.getByTestId('login-name').fill(name);
  await p.getByTestId('login-password').fill(password);
  await p.getByTestId('login-submit').click();
  await p.getByTestId('queue').waitFor({ timeout: T });
  await p.locator('[data-testid=live]:not(.off)').waitFor({ timeout: T });
  await noDialler(p);
  return p;
}

/**
 * The test machine has no telephone: Chromium would hand a `tel:` link to an external program that
 * is not there (and hold the page's input meanwhile). Here a click on one does everything but dial;
 * the specs check the link's `tel:` address and what the page does on the click.
 */
export async function noDialler(p) {
  await p.addInitScript(() => document.addEventListener('click', (e) => { if (e.target.closest?.('a[href^="tel:"]')) e.preventDefault(); }, true));
  await p.evaluate(() => document.addEventListener('click', (e) => { if (e.target.closest?.('a[href^="tel:"]')) e.preventDefault(); }, true));
}

/** Signs the volunteer in on a 390×844 phone and puts them on duty. */
export async function appLogin(browser, { permissions = ['geolocation'], duty = true } = {}) {
  const lat = Number(env('ONEKEY_RESPONDER_LAT')), lon = Number(env('ONEKEY_RESPONDER_LON'));
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    locale: 'zh-CN', geolocation: { latitude: lat, longitude: lon }, permissions,
  });
  const app = await page(phone, 'app');
  await app.goto(`${URL}/app`);
  await app.getByTestId('app-login-name').fill(env('ONEKEY_RESPONDER_PHONE'));
  await app.getByTestId('app-login-password').fill(env('ONEKEY_RESPONDER_PASSWORD'));
  await app.getByTestId('app-login-submit').click();
  await app.getByTestId('no-tasks').waitFor({ timeout: T });
  if (duty) {
    await app.getByTestId('duty-toggle').click();
    await app.locator('[data-testid=duty-status][data-on="1"]').waitFor({ timeout: T });
  }
  return app;
}

/** Runs `body`, closing the browser and setting the exit code. */
export async function run(body) {
  const browser = await launch();
  try {
    await body(browser);
    if (process.exitCode) throw new Error('page errors (see above)');
    console.log('PASS');
  } catch (e) {
    console.error(`FAIL: ${e.stack || e}`);
    process.exitCode = 1;
    // What each page showed when it failed, for a person to look at.
    let n = 0;
    for (const context of browser.contexts()) {
      for (const p of context.pages()) {
        await p.screenshot({ path: join(SHOTS, `failure-${process.pid}-${n++}.png`), fullPage: true }).catch(() => {});
      }
    }
    if (n) console.error(`failure screenshots: ${SHOTS}/failure-${process.pid}-*.png`);
  } finally {
    await browser.close();
    process.stdin.destroy();
    // Nothing a spec left open (another browser, a timer) keeps the process alive; output
    // already written still reaches the harness first.
    setTimeout(() => process.exit(), 1000).unref();
  }
}
