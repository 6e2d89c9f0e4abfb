// Administration as an admin: the elders' table is paged and searchable with grid names; an elder,
// a responder, a device and an operator's role are edited; a responder is disabled (and off the
// picker) and enabled again; the device table names elders and grids; an operator account is
// disabled and can no longer sign in (with a translated message); a CSV import is previewed
// (nothing written) and then run.
import { env, URL, T, page, shot, step, check, run } from './lib.mjs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const offDutyId = env('ONEKEY_OFF_DUTY_ID');
const elderId = env('ONEKEY_ELDER_ID');
const homes = Number(env('ONEKEY_HOMES'));
const elders = homes + 8;

await run(async (browser) => {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN' });
  const p = await page(ctx, 'admin');
  await p.goto(`${URL}/console`);
  await p.getByTestId('login-name').fill(env('ONEKEY_ADMIN'));
  await p.getByTestId('login-password').fill(env('ONEKEY_ADMIN_PASSWORD'));
  await p.getByTestId('login-submit').click();
  await p.getByTestId('queue').waitFor({ timeout: T });
  await p.getByTestId('nav-admin').click();

  step('elders: paged, searchable, with grid names');
  await p.getByTestId('admin-tab-elders').click();
  const page1 = p.getByTestId('elders-table-page');
  await p.waitForFunction((n) => document.querySelector('[data-testid=elders-table-page]')?.textContent.includes(`共 ${n} 条`), elders, { timeout: T });
  check((await page1.textContent()).startsWith('第 1–25 条'), `first page: ${await page1.textContent()}`);
  check(await p.locator('[data-testid=elders-table] tbody tr').count() === 25, '25 rows per page');
  await p.getByTestId('elders-table-next').click();
  await p.waitForFunction(() => document.querySelector('[data-testid=elders-table-page]')?.textContent.startsWith('第 26–'), null, { timeout: T });
  await p.getByTestId('elders-table-search').fill('居家老人0');
  await p.waitForFunction(() => document.querySelector('[data-testid=elders-table-page]')?.textContent.includes('共 9 条'), null, { timeout: T });
  check((await p.locator('[data-testid=elders-table] tbody tr').first().textContent()).includes('思源社区第二网格'), 'grid by name');
  await p.getByTestId('elders-table-search').fill('王秀英');
  await p.getByTestId(`elder-row-${elderId}`).waitFor({ timeout: T });

  step('edit an elder');
  await p.getByTestId(`edit-elder-${elderId}`).click();
  await p.getByTestId('field-phone').fill('13907969999');
  await p.getByTestId('edit-save').click();
  await p.locator(`[data-testid=elder-row-${elderId}]`, { hasText: '13907969999' }).waitFor({ timeout: T });
  await shot(p, 'console-admin-elders.png');

  step('edit a responder');
  await p.getByTestId('admin-tab-responders').click();
  await p.getByTestId(`edit-responder-${offDutyId}`).click();
  await p.getByTestId('field-team').fill('思源夜间志愿队');
  await p.getByTestId('edit-save').click();
  await p.locator(`[data-testid=responder-row-${offDutyId}]`, { hasText: '思源夜间志愿队' }).waitFor({ timeout: T });

  step('disable a responder and enable again');
  await p.getByTestId(`toggle-responder-${offDutyId}`).click();
  await p.locator(`[data-testid=responder-row-${offDutyId}][data-active="0"]`).waitFor({ timeout: T });
  await p.getByTestId(`toggle-responder-${offDutyId}`).click();
  await p.locator(`[data-testid=responder-row-${offDutyId}][data-active="1"]`).waitFor({ timeout: T });

  step('devices with elder and grid names; disable one');
  await p.getByTestId('admin-tab-devices').click();
  const first = p.locator('[data-testid=devices-table] tbody tr').first();
  await first.waitFor({ timeout: T });
  check((await first.textContent()).includes('思源社区第一网格') && (await first.textContent()).includes('王秀英'), `device row names: ${await first.textContent()}`);
  const devId = (await first.getAttribute('data-testid')).replace('device-row-', '');
  await p.getByTestId(`edit-device-${devId}`).click();
  await p.getByTestId('field-model').fill('YJT-2026 挂件');
  await p.getByTestId('edit-save').click();
  await p.locator(`[data-testid=device-row-${devId}]`, { hasText: 'YJT-2026 挂件' }).waitFor({ timeout: T });
  await p.getByTestId(`toggle-device-${devId}`).click();
  await p.locator(`[data-testid=device-row-${devId}][data-active="0"]`).waitFor({ timeout: T });

  step('the fleet page: devices by grid, and a paged device table with names and search');
  await p.getByTestId('nav-fleet').click();
  await p.getByTestId('fleet-grid-JZ-WS-SY-01').waitFor({ timeout: T });
  await p.waitForFunction(() => document.querySelector('[data-testid=fleet-devices-page]')?.textContent.includes('共 8 条'), null, { timeout: T });
  await p.getByTestId('fleet-devices-search').fill('陈建国');
  await p.waitForFunction(() => document.querySelector('[data-testid=fleet-devices-page]')?.textContent.includes('共 1 条'), null, { timeout: T });
  check((await p.locator('[data-testid=fleet-devices] tbody tr').first().textContent()).includes('思源社区第一网格'), 'grid by name in the fleet table');
  await shot(p, 'console-fleet.png');
  await p.getByTestId('nav-admin').click();

  step('an operator account disabled cannot sign in, and is told so in Chinese');
  await p.getByTestId('admin-tab-operators').click();
  const row = p.locator('[data-testid^=operator-row-]', { hasText: env('ONEKEY_OPERATOR2') });
  await row.waitFor({ timeout: T });
  await row.locator('[data-testid^=edit-operator-]').click();
  await p.getByTestId('field-role').selectOption('viewer');
  await p.getByTestId('edit-save').click();
  await p.locator('[data-testid^=operator-row-]', { hasText: env('ONEKEY_OPERATOR2') }).filter({ hasText: '只读' }).waitFor({ timeout: T });
  await row.locator('[data-testid^=toggle-operator-]').click();
  await p.locator('[data-testid^=operator-row-][data-active="0"]', { hasText: env('ONEKEY_OPERATOR2') }).waitFor({ timeout: T });
  const q = await page(await browser.newContext({ locale: 'zh-CN' }), 'op2');
  await q.goto(`${URL}/console`);
  await q.getByTestId('login-name').fill(env('ONEKEY_OPERATOR2'));
  await q.getByTestId('login-password').fill(env('ONEKEY_OPERATOR2_PASSWORD'));
  await q.getByTestId('login-submit').click();
  const err = q.getByTestId('error');
  await err.waitFor({ timeout: T });
  check((await err.textContent()).includes('请重新登录') && !/401|login required/.test(await err.textContent()), `translated error: ${await err.textContent()}`);

  step('import: a preview says what would change and writes nothing; then the import');
  const file = join(tmpdir(), `onekey-elders-${process.pid}.csv`);
  await writeFile(file, 'name,address,lat,lon,living,grid_code\n'
    + '新来的老人,吉州区 文山街道 思源社区 9 栋,27.111,114.981,alone,JZ-WS-SY-01\n'
    + `王秀英,吉州区 文山街道 思源社区 3 栋 2 单元 101,27.11,114.98,alone,JZ-WS-SY-01\n`
    + '坏数据,某地,999,114.98,alone,JZ-WS-SY-01\n');
  await p.getByTestId('admin-tab-import').click();
  await p.getByTestId('import-file').setInputFiles(file);
  await p.getByTestId('import-preview-run').click();
  await p.getByTestId('import-preview').waitFor({ timeout: T });
  check(await p.getByTestId('import-line-2').getAttribute('data-action') === 'create', 'line 2 would be created');
  check(await p.getByTestId('import-line-3').getAttribute('data-action') === 'exists', 'line 3 is already there');
  check(await p.getByTestId('import-line-4').getAttribute('data-action') === 'error', 'line 4 is refused');
  check((await p.getByTestId('import-line-4').textContent()).includes('coordinates'), 'with its reason');
  await shot(p, 'console-admin-import-preview.png');
  await p.getByTestId('admin-tab-elders').click();
  await p.waitForFunction((n) => document.querySelector('[data-testid=elders-table-page]')?.textContent.includes(`共 ${n} 条`), elders, { timeout: T });
  await p.getByTestId('admin-tab-import').click();
  await p.getByTestId('import-file').setInputFiles(file);
  await p.getByTestId('import-preview-run').click();
  await p.getByTestId('import-confirm').click();
  await p.getByTestId('import-summary').waitFor({ timeout: T });
  await p.getByTestId('admin-tab-elders').click();
  await p.waitForFunction((n) => document.querySelector('[data-testid=elders-table-page]')?.textContent.includes(`共 ${n} 条`), elders + 1, { timeout: T });
});
