// Two operators, one at 1440 px and one at 1024 px: a fall appears; the first takes it and the
// second sees who has it in the queue's handler column and on the incident page, live; the first
// hands it over and both pages show the new handler without a reload. After a reload the browser
// blocks sound until a click, and the console says so on screen until the operator clicks.
import { env, URL, T, shot, step, check, run, raise, consoleLogin, launch } from './lib.mjs';

const op1 = env('ONEKEY_OPERATOR');
const op2 = env('ONEKEY_OPERATOR2');

await run(async (browser) => {
  const a = await consoleLogin(browser, { label: 'op1' });
  const b = await consoleLogin(browser, { name: op2, password: env('ONEKEY_OPERATOR2_PASSWORD'), width: 1024, height: 768, label: 'op2' });
  await raise('fall', 2);

  step('both queues show the fall, nobody handles it');
  const rowA = a.locator('[data-testid^=queue-row-]').first();
  const rowB = b.locator('[data-testid^=queue-row-]').first();
  await rowA.waitFor({ timeout: T });
  await rowB.waitFor({ timeout: T });
  check((await rowB.getByTestId('queue-kind').textContent()).includes('跌倒'), 'kind: fall');
  check((await rowB.getByTestId('queue-handler').textContent()) === '—', 'no handler yet');

  step('the first operator takes it; the second sees it live');
  await rowA.click();
  await a.getByTestId('action-take').click();
  await a.locator(`[data-testid=incident-handler]:text-is("${op1}")`).waitFor({ timeout: T });
  await b.locator(`[data-testid=queue-handler]:text-is("${op1}")`).waitFor({ timeout: T });
  await shot(b, 'console-queue-1024.png');
  await rowB.click();
  await b.getByTestId('taken-by-other').waitFor({ timeout: T });
  check((await b.getByTestId('taken-by-other').textContent()).includes(op1), 'the second operator is told who has it');
  check(await b.getByTestId('action-take').count() === 0, 'no plain take while a colleague has it');

  step('the first hands it over; both pages show the new handler live');
  await a.getByTestId('handover-to').selectOption(op2);
  await a.getByTestId('action-handover').click();
  await b.locator(`[data-testid=incident-handler]:text-is("${op2}")`).waitFor({ timeout: T });
  await a.locator(`[data-testid=incident-handler]:text-is("${op2}")`).waitFor({ timeout: T });
  const ev = b.getByTestId('timeline').locator('li[data-kind=handed_over]');
  await ev.waitFor({ timeout: T });
  check((await ev.textContent()).includes(`${op1} → ${op2}`), `hand-over logged: ${await ev.textContent()}`);
  await b.getByTestId('action-release').waitFor({ timeout: T });
  await shot(b, 'console-incident-1024.png');
  check(await b.evaluate(() => document.documentElement.scrollWidth) <= 1024, 'no horizontal scrolling at 1024 px');

  step('a console that opens without a click (browser restarted into it) says the sound is off until a click');
  const token = await b.evaluate(() => sessionStorage.getItem('onekey.console.token'));
  // A new browser process: nothing of the first one's interaction with the page carries over.
  const fresh = await launch();
  try {
    const restarted = await fresh.newContext({ viewport: { width: 1024, height: 768 }, locale: 'zh-CN' });
    await restarted.addInitScript((t) => sessionStorage.setItem('onekey.console.token', t), token);
    const c = await restarted.newPage();
    // Playwright runs its own in-page checks (locators, evaluate) as user gestures, and a page
    // that has seen a gesture may start its sound. So touch nothing in the page until the
    // console has built its view, sound state included, and opened its live stream: wait for
    // that request on the network instead.
    const streaming = c.waitForRequest((r) => r.url().includes('/api/v1/stream'), { timeout: T });
    await c.goto(`${URL}/console`);
    await streaming;
    await c.locator('body[data-sound=off]').waitFor({ timeout: T });
    check((await c.getByTestId('sound-state').textContent()).includes('提示音已关闭'), 'the sound-off state is visible');
    await shot(c, 'console-sound-off.png');
    await c.getByTestId('sound-state').click();
    await c.locator('body[data-sound=on]').waitFor({ timeout: T });
    check((await c.getByTestId('sound-state').textContent()) === '提示音已开启', 'sound on after the click');
  } finally {
    await fresh.close();
  }
});
