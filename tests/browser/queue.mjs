// The queue at 1024×768 with six alarms of different kinds: each row shows its kind (icon, colour,
// name), elder, address and handler; the counts per stage, the banner reduced to a count with a
// link, filters by kind and category, search by elder, one duration format, no page-wide
// horizontal scrolling.
import { T, shot, step, check, run, raise, consoleLogin } from './lib.mjs';

await run(async (browser) => {
  const p = await consoleLogin(browser, { width: 1024, height: 768 });
  for (const [kind, n] of [['smoke', 2], ['fall', 3], ['medical', 4], ['low_battery', 5], ['gas', 6], ['sos', 7]]) await raise(kind, n);

  step('six rows, each with its own kind');
  const rows = p.locator('tr[data-testid^=queue-row-]');
  await p.waitForFunction(() => document.querySelectorAll('tr[data-testid^=queue-row-]').length === 6, null, { timeout: T });
  const kinds = await p.locator('[data-testid=queue-kind]').evaluateAll((els) => els.map((e) => e.dataset.kind));
  check(new Set(kinds).size === 6, `six kinds: ${kinds}`);
  check(kinds.indexOf('low_battery') === 5, `the technical alarm ranks after the emergencies: ${kinds}`);
  const names = await p.locator('[data-testid=queue-kind] .kind-name').allTextContents();
  for (const n of ['烟雾告警', '跌倒', '医疗求助', '电量低', '燃气泄漏', '紧急呼叫']) check(names.includes(n), `kind name ${n} in ${names}`);
  const colours = await p.locator('[data-testid=queue-kind] .kind-icon').evaluateAll((els) => els.map((e) => getComputedStyle(e).backgroundColor));
  check(new Set(colours).size >= 4, `kinds have their colours: ${colours}`);
  const addresses = await p.locator('[data-testid=queue-address]').allTextContents();
  check(addresses.every((a) => a.includes('思源社区')), `addresses shown: ${addresses}`);

  step('counts per stage, the banner is a count with a link');
  check(await p.getByTestId('count-all').getAttribute('data-count') === '6', 'all: 6');
  check(await p.getByTestId('count-waiting_ack').getAttribute('data-count') === '6', 'waiting for ack: 6');
  check((await p.getByTestId('alarm-count').textContent()) === '5 起紧急告警待接警', `banner counts the emergencies: ${await p.getByTestId('alarm-count').textContent()}`);
  check((await p.getByTestId('alarm-banner').boundingBox()).height < 60, 'the banner is one line');
  const ages = await p.locator('td .age').allTextContents();
  check(ages.every((a) => /^\d+:\d\d$/.test(a)), `one duration format: ${ages}`);
  const slas = await p.locator('[data-testid=sla-ack].running').allTextContents();
  check(slas.every((a) => /^\d+:\d\d$/.test(a)), `SLA clocks in the same format: ${slas}`);
  await shot(p, 'console-queue-kinds-1024.png');
  check(await p.evaluate(() => document.documentElement.scrollWidth) <= 1024, 'no page-wide horizontal scrolling at 1024 px');

  step('filters and search');
  await p.getByTestId('filter-kind').selectOption('smoke');
  await p.waitForFunction(() => document.querySelectorAll('tr[data-testid^=queue-row-]').length === 1, null, { timeout: T });
  await p.getByTestId('filter-kind').selectOption('');
  await p.getByTestId('filter-category').selectOption('technical');
  await p.waitForFunction(() => document.querySelectorAll('tr[data-testid^=queue-row-]').length === 1, null, { timeout: T });
  check((await rows.first().getByTestId('queue-kind').textContent()).includes('电量低'), 'technical: the low battery');
  await p.getByTestId('filter-category').selectOption('');
  await p.getByTestId('queue-search').fill('陈建国');
  await p.waitForFunction(() => document.querySelectorAll('tr[data-testid^=queue-row-]').length === 1, null, { timeout: T });
  check((await rows.first().getByTestId('queue-elder').textContent()) === '陈建国', 'search finds the elder');
  await p.getByTestId('queue-search').fill('');
  await p.waitForFunction(() => document.querySelectorAll('tr[data-testid^=queue-row-]').length === 6, null, { timeout: T });

  step('the banner link shows what waits for acknowledgement; acknowledging one moves it out');
  await p.getByTestId('alarm-link').click();
  await p.locator('[data-testid=count-waiting_ack].active').waitFor({ timeout: T });
  await rows.first().click();
  await p.getByTestId('action-ack').click();
  await p.getByTestId('timeline').locator('li[data-kind=acknowledged]').waitFor({ timeout: T });
  await p.getByTestId('nav-queue').click();
  await p.waitForFunction(() => document.querySelector('[data-testid=alarm-count]')?.textContent === '4 起紧急告警待接警', null, { timeout: T });
  check(await p.getByTestId('count-waiting_ack').getAttribute('data-count') === '5', 'five still wait');
});
