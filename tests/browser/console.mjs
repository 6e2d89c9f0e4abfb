// The whole alarm path in a real browser: an operator logs in; the Rust side raises an SOS from a
// simulated device when this script prints READY_FOR_SOS; the incident appears in the queue
// without a reload and the alarm sounds; the operator acknowledges; a volunteer on the app page gets
// the offer live and accepts; the console shows the acceptance and the responder on the map; the
// operator closes the incident; the report page counts it.
import { URL, launch, check, shot, logIn, watchErrors } from './lib.mjs';

const env = process.env;
const browser = await launch();
try {
  const opCtx = await browser.newContext({ viewport: { width: 1360, height: 900 }, locale: 'zh-CN' });
  const op = await opCtx.newPage();
  watchErrors(op, 'console');
  await op.goto(`${URL}/console`);
  check((await op.getByTestId('login-submit').textContent()) === '登录', 'Chinese by default');
  await logIn(op, env.ONEKEY_OPERATOR, env.ONEKEY_OPERATOR_PASSWORD);
  await op.getByTestId('queue').waitFor();
  check((await op.getByTestId('queue-row').count()) === 0, 'the queue starts empty');
  await op.locator('#live.ok').waitFor();

  const volCtx = await browser.newContext({
    viewport: { width: 390, height: 800 }, isMobile: true, hasTouch: true, locale: 'zh-CN',
    geolocation: { latitude: Number(env.ONEKEY_VOLUNTEER_LAT), longitude: Number(env.ONEKEY_VOLUNTEER_LON) },
    permissions: ['geolocation'],
  });
  const vol = await volCtx.newPage();
  watchErrors(vol, 'app');
  await vol.goto(`${URL}/app`);
  await logIn(vol, env.ONEKEY_VOLUNTEER, env.ONEKEY_VOLUNTEER_PASSWORD);
  await vol.getByTestId('duty-toggle').click();
  await vol.locator('[data-testid=duty-state].ok').waitFor();
  check((await vol.getByTestId('task').count()) === 0, 'no task before the alarm');

  console.log('READY_FOR_SOS');

  // The SOS arrives in the queue without a reload, with the alarm sounding.
  const row = op.getByTestId('queue-row').first();
  await row.waitFor({ timeout: 30000 });
  await op.getByTestId('alarm-indicator').waitFor({ state: 'visible' });
  check((await row.textContent()).includes('一键呼救'), 'the row names the SOS');
  await shot(op, 'console-queue');

  await row.getByTestId('queue-open').click();
  await op.getByTestId('elder-name').waitFor();
  check((await op.getByTestId('elder-name').textContent()) === env.ONEKEY_ELDER, 'the elder record');
  await op.getByTestId('act-ack').click();
  await op.locator('[data-testid=timeline-item][data-kind=acknowledged]').waitFor();
  await op.getByTestId('alarm-indicator').waitFor({ state: 'hidden' });

  // The volunteer's offer arrives live: address and distance now, key-safe code only after accepting.
  const task = vol.locator('[data-testid=task][data-status=pending]');
  await task.waitFor({ timeout: 30000 });
  check((await task.getByTestId('task-address').textContent()) === env.ONEKEY_ELDER_ADDRESS, 'address at offer time');
  check((await task.getByTestId('task-distance').textContent()).includes(' m'), 'distance shown');
  check((await task.getByTestId('task-key').count()) === 0, 'no key-safe code before accepting');
  await shot(vol, 'app-offer');
  await task.getByTestId('task-accept').click();
  const held = vol.locator('[data-testid=task][data-status=accepted]');
  await held.waitFor();
  check((await held.getByTestId('task-key').textContent()) === env.ONEKEY_KEY_CODE, 'key-safe code after accepting');
  check((await held.getByTestId('task-notes').textContent()).includes(env.ONEKEY_HEALTH), 'health notes after accepting');
  await shot(vol, 'app-accepted');

  // The console shows the acceptance and the responder on the map, without a reload.
  await op.locator('[data-testid=offer][data-status=accepted]').waitFor({ timeout: 15000 });
  await op.getByTestId('map-responder-accepted').waitFor();
  check((await op.getByTestId('map-responder-accepted').textContent()).includes(env.ONEKEY_VOLUNTEER), 'responder named on the map');
  const map = await op.getByTestId('map').innerHTML();
  console.log(`incident map: ${map}`);
  check((await op.getByTestId('map-elder').count()) === 1, 'the elder on the map');
  await shot(op, 'console-incident');

  await op.getByTestId('close-outcome').selectOption('resolved');
  await op.getByTestId('act-close').click();
  await op.locator('[data-testid=incident-status]', { hasText: '已结案' }).waitFor();

  await op.getByTestId('nav-reports').click();
  await op.locator('[data-testid=report-closed]', { hasText: '1' }).waitFor();
  check((await op.getByTestId('report-total').textContent()) === '1', 'the report counts the incident');
  check((await op.getByTestId('report-within').textContent()).endsWith('%'), 'answer-time share shown');
  await op.getByTestId('chart-answer').waitFor();
  await shot(op, 'console-reports');

  await op.getByTestId('nav-fleet').click();
  await op.getByTestId('fleet').waitFor();
  await shot(op, 'console-fleet');
  await op.getByTestId('nav-map').click();
  await op.getByTestId('map').waitFor();
  await shot(op, 'console-map');
  console.log('PASS console flow');
} finally {
  await browser.close();
}
