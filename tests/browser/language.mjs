// The language switch: zh-CN by default; switching replaces the Chinese strings with English ones on
// the login form and in the console, survives a reload and carries over to the app page; and back.
import { env, URL, page, shot, step, check, run } from './lib.mjs';

const operator = env('ONEKEY_OPERATOR');
const operatorPassword = env('ONEKEY_OPERATOR_PASSWORD');
const T = 20_000;
const text = (p, id) => p.getByTestId(id).first().textContent();

await run(async (browser) => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const p = await page(ctx, 'console');
  step('Chinese by default');
  await p.goto(`${URL}/console`);
  await p.getByTestId('login-submit').waitFor({ timeout: T });
  check(await text(p, 'login-submit') === '登录', 'login button in Chinese');
  check(await p.getAttribute('html', 'lang') === 'zh-CN', 'html lang zh-CN');

  step('switch to English on the login form');
  await p.getByTestId('lang-switch').click();
  check(await text(p, 'login-submit') === 'Sign in', 'login button in English');
  check(await p.getAttribute('html', 'lang') === 'en', 'html lang en');

  step('sign in; the console is in English, with no Chinese left in the navigation');
  await p.getByTestId('login-name').fill(operator);
  await p.getByTestId('login-password').fill(operatorPassword);
  await p.getByTestId('login-submit').click();
  await p.getByTestId('queue').waitFor({ timeout: T });
  check(await text(p, 'nav-queue') === 'Queue', 'navigation in English');
  check(await text(p, 'queue-empty') === 'No open incidents', 'queue in English');
  // The operator's own name is data, not a string of the interface.
  const nav = (await p.locator('header.top').textContent()).replace(await text(p, 'me'), '');
  check(!/[\u4e00-\u9fff]/.test(nav.replace('中文', '')), `no Chinese in the English header: ${nav}`);
  await p.getByTestId('nav-reports').click();
  await p.locator('h1').filter({ hasText: 'Reports' }).waitFor({ timeout: T });
  await p.getByTestId('nav-queue').click();
  await shot(p, 'console-english.png');

  step('the choice survives a reload and reaches the app page');
  await p.reload();
  await p.getByTestId('queue').waitFor({ timeout: T });
  check(await text(p, 'nav-queue') === 'Queue', 'still English after reload');
  const app = await page(ctx, 'app');
  await app.goto(`${URL}/app`);
  await app.getByTestId('app-login-submit').waitFor({ timeout: T });
  check(await text(app, 'app-login-submit') === 'Sign in', 'app in English');
  await app.close();

  step('both tables have every key, and no element shows a bare key');
  const gaps = await p.evaluate(async () => (await import('/assets/i18n.js')).untranslated());
  check(gaps.length === 0, `keys missing from a table: ${gaps.join(', ')}`);
  const bare = await p.evaluate(() => [...document.querySelectorAll('[data-i18n]')]
    .filter((el) => el.textContent === el.dataset.i18n).map((el) => el.dataset.i18n));
  check(bare.length === 0, `untranslated keys on the page: ${bare.join(', ')}`);

  step('and back to Chinese');
  await p.getByTestId('lang-switch').click();
  check(await text(p, 'nav-queue') === '事件队列', 'navigation in Chinese again');
  check(await text(p, 'queue-empty') === '暂无未结事件', 'queue in Chinese again');
  check(await text(p, 'lang-switch') === 'English', 'switch offers English');
  check(await p.getAttribute('html', 'lang') === 'zh-CN', 'html lang zh-CN again');
});
