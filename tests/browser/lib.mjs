// Shared setup for the browser specs: environment, Chromium launch, screenshots, step logging.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export function env(name, fallback) {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`missing environment variable ${name}`);
  return v;
}

export const URL = env('ONEKEY_URL', 'http://127.0.0.1:8080');
export const SHOTS = env('ONEKEY_SCREENSHOTS', 'target/screenshots');
mkdirSync(SHOTS, { recursive: true });

export async function launch() {
  return chromium.launch({
    executablePath: env('ONEKEY_CHROMIUM', '/usr/bin/chromium'),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
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
  }
}
