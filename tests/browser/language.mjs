// Switching the language: Chinese by default, English after the switch (and remembered), Chinese
// again after switching back, on the console and on the app.
import { URL, launch, check, shot, logIn, watchErrors } from './lib.mjs';

const env = process.env;
const browser = await launch();
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'zh-CN' });
  const page = await ctx.newPage();
  watchErrors(page, 'console');
  await page.goto(`${URL}/console`);
  check((await page.getByTestId('login-submit').textContent()) === '登录', 'Chinese by default');
  await page.getByTestId('lang-toggle').click();
  check((await page.getByTestId('login-submit').textContent()) === 'Log in', 'English after the switch');
  await logIn(page, env.ONEKEY_OPERATOR, env.ONEKEY_OPERATOR_PASSWORD);
  await page.getByTestId('queue').waitFor();
  check((await page.getByTestId('nav-queue').textContent()) === 'Queue', 'navigation in English');
  check((await page.locator('thead').textContent()).includes('Acknowledge'), 'queue header in English');
  check(!/[\u4e00-\u9fff]/.test(await page.locator('header nav').textContent()), 'no Chinese left in the navigation');
  await shot(page, 'console-english');

  // Remembered on the app page too.
  await page.goto(`${URL}/app`);
  check((await page.getByTestId('login-submit').textContent()) === 'Log in', 'the app follows');
  await page.getByTestId('lang-toggle').click();
  check((await page.getByTestId('login-submit').textContent()) === '登录', 'back to Chinese');
  await page.goto(`${URL}/console`);
  await page.getByTestId('nav-queue').waitFor();
  check((await page.getByTestId('nav-queue').textContent()) === '警情队列', 'Chinese again on the console');
  console.log('PASS language');
} finally {
  await browser.close();
}
