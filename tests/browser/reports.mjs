// Reports count every incident: an SOS acknowledged within the minute, and a smoke alarm closed as
// a false alarm without anyone acknowledging it (which misses the answer target); figures per
// operator and per grid; an empty period; the CSV export of the period; charts drawn by ECharts.
import { env, T, shot, step, check, run, raise, consoleLogin } from './lib.mjs';
import { readFile } from 'node:fs/promises';

const op = env('ONEKEY_OPERATOR');

await run(async (browser) => {
  const p = await consoleLogin(browser);
  await raise('sos', 2);
  await raise('smoke', 3);
  await p.waitForFunction(() => document.querySelectorAll('tr[data-testid^=queue-row-]').length === 2, null, { timeout: T });

  step('acknowledge the SOS and close it; close the smoke alarm as false without acknowledging');
  const sos = p.locator('tr[data-testid^=queue-row-]', { has: p.locator('[data-kind=sos]') });
  await sos.click();
  await p.getByTestId('action-ack').click();
  await p.getByTestId('timeline').locator('li[data-kind=acknowledged]').waitFor({ timeout: T });
  await p.getByTestId('close-outcome').selectOption('resolved_by_phone');
  await p.getByTestId('action-close').click();
  await p.getByTestId('closed-summary').waitFor({ timeout: T });
  await p.getByTestId('nav-queue').click();
  // The queue may still be showing the SOS until its next refresh: pick the smoke alarm by kind.
  await p.locator('tr[data-testid^=queue-row-]', { has: p.locator('[data-kind=smoke]') }).click();
  await p.getByTestId('action-false-alarm').click();
  await p.getByTestId('closed-summary').waitFor({ timeout: T });

  step('the report counts both: one within target, one never acknowledged');
  await p.getByTestId('nav-reports').click();
  await p.getByTestId('report-total').waitFor({ timeout: T });
  check(await p.getByTestId('report-total').textContent() === '2', 'two incidents');
  check(await p.getByTestId('report-answer-count').textContent() === '2', 'both emergencies counted for the answer time');
  check(await p.getByTestId('report-within').textContent() === '1', 'one within target');
  check(await p.getByTestId('report-unacked').textContent() === '1', 'one never acknowledged');
  check(await p.getByTestId('report-answer-share').textContent() === '50.0%', `share 50 %: ${await p.getByTestId('report-answer-share').textContent()}`);
  const row = p.getByTestId(`report-operator-${op}`);
  check(await row.getByTestId('acknowledged').textContent() === '1' && await row.getByTestId('closed').textContent() === '2', 'per operator: 1 acknowledged, 2 closed');
  check(await p.getByTestId('report-grid-思源社区第一网格').getByTestId('incidents').textContent() === '2', 'per grid: 2');
  const drawn = await p.evaluate(() => {
    const chart = window.echarts.getInstanceByDom(document.querySelector('[data-testid=chart-answer]'));
    return chart.getOption().series[0].data.reduce((s, d) => s + d.value, 0);
  });
  check(drawn === 1, `the answer chart is drawn by ECharts with the acknowledged one: ${drawn}`);
  check(await p.locator('[data-testid=chart-operators] svg').count() === 1, 'operator chart rendered as SVG');
  await shot(p, 'console-reports.png');

  step('CSV export of the period');
  const [download] = await Promise.all([p.waitForEvent('download', { timeout: T }), p.getByTestId('report-export').click()]);
  const csv = await readFile(await download.path(), 'utf8');
  const lines = csv.trim().split('\n');
  check(lines[0].replace('\ufeff', '').startsWith('id,category,kind'), `CSV header: ${lines[0]}`);
  check(lines.length === 3, `two incidents in the CSV: ${lines.length - 1}`);
  check(lines.some((l) => l.includes(',smoke,') && l.includes('false_alarm')), 'the smoke false alarm is in the CSV');

  step('another period: nothing in it');
  await p.getByTestId('report-from').fill('2020-01-01');
  await p.getByTestId('report-to').fill('2020-01-31');
  await p.getByTestId('report-apply').click();
  await p.waitForFunction(() => document.querySelector('[data-testid=report-total]')?.textContent === '0', null, { timeout: T });
});
