// Shared by the browser specs: launching Debian's Chromium, logging in, screenshots, checks.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const URL = process.env.ONEKEY_URL;
const SHOTS = process.env.ONEKEY_SCREENSHOTS || 'screenshots';
mkdirSync(SHOTS, { recursive: true });

/** Chromium with the flags this project's CI uses. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** Fails the spec with `message` unless `cond`. */
export function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
}

/** Saves a full-page screenshot under the screenshots directory. */
export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  console.log(`screenshot ${name}.png`);
}

/** Fills the login form of the console or the app and submits it. */
export async function logIn(page, name, password) {
  await page.getByTestId('login-name').fill(name);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
}

/** Logs browser errors, which otherwise vanish. */
export function watchErrors(page, label) {
  page.on('pageerror', (e) => console.log(`[${label}] page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') console.log(`[${label}] console: ${m.text()}`); });
}
