// The whole path of an SOS through the console and the volunteer app, in Chromium:
// operator logs in → (tests/browser.rs raises an SOS after READY_FOR_SOS) → the incident appears in
// the queue without a reload and the alarm sounds → the operator acknowledges → the volunteer on the
// app page gets the offer live and accepts → the console shows the acceptance and the responder on the
// map → the volunteer arrives and completes → the operator closes → the reports page counts it.
import { env, URL, page, shot, step, check, run } from './lib.mjs';

const operator = env('ONEKEY_OPERATOR');
const operatorPassword = env('ONEKEY_OPERATOR_PASSWORD');
const volunteer = env('ONEKEY_RESPONDER');
const volunteerPassword = env('ONEKEY_RESPONDER_PASSWORD');
const volunteerId = env('ONEKEY_RESPONDER_ID');
const lat = Number(env('ONEKEY_RESPONDER_LAT'));
const lon = Number(env('ONEKEY_RESPONDER_LON'));
const elderName = env('ONEKEY_ELDER_NAME');
const address = env('ONEKEY_ELDER_ADDRESS');
const keySafe = env('ONEKEY_KEY_SAFE');
const health = env('ONEKEY_HEALTH_NOTES');
const T = 30_000;

await run(async (browser) => {
  step('operator signs in');
  const consoleCtx = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN' });
  const ops = await page(consoleCtx, 'console');
  await ops.goto(`${URL}/console`);
  await ops.getByTestId('login-name').fill(operator);
  await ops.getByTestId('login-password').fill(operatorPassword);
  await ops.getByTestId('login-submit').click();
  await ops.getByTestId('queue').waitFor({ timeout: T });
  await ops.getByTestId('queue-empty').waitFor({ timeout: T });
  await ops.locator('[data-testid=live]:not(.off)').waitFor({ timeout: T });

  step('volunteer signs in on a phone and goes on duty');
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    locale: 'zh-CN', geolocation: { latitude: lat, longitude: lon }, permissions: ['geolocation'],
  });
  const app = await page(phone, 'app');
  await app.goto(`${URL}/app`);
  await app.getByTestId('app-login-name').fill(volunteer);
  await app.getByTestId('app-login-password').fill(volunteerPassword);
  await app.getByTestId('app-login-submit').click();
  await app.getByTestId('no-tasks').waitFor({ timeout: T });
  await app.getByTestId('duty-toggle').click();
  await app.locator('[data-testid=duty-status][data-on="1"]').waitFor({ timeout: T });
  console.log('READY_FOR_SOS');

  step('the SOS appears in the queue without a reload, with the alarm on');
  const row = ops.locator('[data-testid^=queue-row-]').first();
  await row.waitFor({ timeout: 60_000 });
  check((await row.textContent()).includes(elderName), `queue row names the elder: ${await row.textContent()}`);
  check((await row.textContent()).includes('紧急救援'), 'queue row shows the category in Chinese');
  check(await row.locator('[data-testid=sla-ack]').count() === 1, 'queue row has an acknowledge SLA clock');
  await ops.locator('body[data-alarm=on]').waitFor({ timeout: T });
  await ops.getByTestId('alarm-banner').waitFor({ timeout: T });
  // The alarm sound repeats while nobody has acknowledged.
  await ops.waitForFunction(() => Number(document.body.dataset.beeps || 0) >= 2, null, { timeout: T });
  await shot(ops, 'console-queue.png');

  step('operator opens the incident and acknowledges');
  await row.click();
  await ops.getByTestId('elder-name').waitFor({ timeout: T });
  check((await ops.getByTestId('elder-name').textContent()) === elderName, 'incident page shows the elder');
  check((await ops.getByTestId('elder-address').textContent()) === address, 'incident page shows the address');
  await ops.getByTestId('timeline').locator('li[data-kind=opened]').waitFor({ timeout: T });
  await ops.getByTestId('map-elder').waitFor({ timeout: T });
  await ops.getByTestId('action-ack').click();
  await ops.locator('body[data-alarm=off]').waitFor({ timeout: T });
  await ops.getByTestId('timeline').locator('li[data-kind=acknowledged]').waitFor({ timeout: T });
  await ops.locator('[data-testid=sla-ack].met').waitFor({ timeout: T });
  check(await ops.getByTestId('action-ack').isDisabled(), 'acknowledge is done once');
  const beeps = await ops.evaluate(() => Number(document.body.dataset.beeps));
  await ops.waitForTimeout(5000);
  check(await ops.evaluate(() => Number(document.body.dataset.beeps)) === beeps, 'the sound stops once acknowledged');

  step('the volunteer receives the offer live and accepts');
  const accept = app.getByTestId('task-accept');
  await accept.waitFor({ timeout: 60_000 });
  check((await app.getByTestId('task-address').textContent()) === address, 'offer shows the address');
  check(/\d+ m|km/.test(await app.getByTestId('task-distance').textContent()), 'offer shows the distance');
  check((await app.getByTestId('task-category').textContent()) === '紧急救援', 'offer shows the category');
  check(await app.getByTestId('task-key-safe').count() === 0, 'no key-safe code before accepting');
  check(/\d+/.test(await app.getByTestId('task-expires').textContent()), 'offer shows the time left');
  check((await app.getByTestId('task-navigate').getAttribute('href')).startsWith('geo:'), 'navigation link');
  await shot(app, 'app-offer.png');
  await accept.click();
  await app.getByTestId('task-key-safe').waitFor({ timeout: T });
  check((await app.getByTestId('task-key-safe').textContent()) === keySafe, 'key-safe code after accepting');
  check((await app.getByTestId('task-health').textContent()) === health, 'health notes after accepting');
  await shot(app, 'app-accepted.png');

  step('the console shows the acceptance and the responder on the map');
  await ops.locator(`[data-testid=offer-${volunteerId}][data-status=accepted]`).waitFor({ timeout: T });
  await ops.getByTestId(`map-accepted-${volunteerId}`).waitFor({ timeout: T });
  await ops.getByTestId('timeline').locator('li[data-kind=offer_accepted]').waitFor({ timeout: T });
  await shot(ops, 'console-incident.png');

  step('the volunteer arrives and completes with a note');
  await app.getByTestId('task-arrived').click();
  await app.getByTestId('complete-note').fill('老人血压偏高，已陪同休息');
  await app.getByTestId('task-completed').click();
  await app.getByTestId('no-tasks').waitFor({ timeout: T });
  await ops.getByTestId('timeline').locator('li[data-kind=task_completed]').waitFor({ timeout: T });

  step('the operator closes the incident');
  await ops.getByTestId('close-outcome').selectOption('resolved');
  await ops.getByTestId('close-note').fill('志愿者已到场处理');
  await ops.getByTestId('action-close').click();
  await ops.getByTestId('timeline').locator('li[data-kind=closed]').waitFor({ timeout: T });
  check((await ops.getByTestId('incident-status').textContent()) === '已结案', 'status shows closed');

  step('the map page draws the grid and the administration lists the directory');
  await ops.getByTestId('nav-map').click();
  await ops.getByTestId('map-area-JZ-WS-SY-01').waitFor({ timeout: T });
  await ops.getByTestId('nav-admin').click();
  await ops.getByTestId('admin-tab-elders').click();
  await ops.locator('table td', { hasText: elderName }).first().waitFor({ timeout: T });
  await ops.getByTestId('admin-tab-grids').click();
  await ops.locator('table td', { hasText: '思源社区第一网格' }).first().waitFor({ timeout: T });
  await ops.getByTestId('admin-tab-responders').click();
  await ops.locator('table td', { hasText: volunteer }).first().waitFor({ timeout: T });

  step('the queue is empty again and the report counts the incident');
  await ops.getByTestId('nav-queue').click();
  await ops.getByTestId('queue-empty').waitFor({ timeout: T });
  await ops.getByTestId('nav-reports').click();
  await ops.locator('[data-testid=report-total], [data-testid=error]').first().waitFor({ timeout: T });
  if (await ops.getByTestId('error').count()) {
    throw new Error(`the reports page shows an error: ${await ops.getByTestId('error').first().textContent()}`);
  }
  check(Number(await ops.getByTestId('report-total').textContent()) >= 1, 'report counts the incident');
  check(Number(await ops.getByTestId('report-closed').textContent()) >= 1, 'report counts it closed');
  check(Number(await ops.getByTestId('report-answer-count').textContent()) >= 1, 'report counts its answer time');
  await ops.getByTestId('chart-answer').waitFor({ timeout: T });
  await shot(ops, 'console-reports.png');
});
