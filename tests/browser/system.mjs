// The system banner: two devices heartbeat steadily, then stop, as if their listener broke. The
// console, which polls /healthz, calls the operator with a banner that names the protocol and
// sounds the alarm; when the traffic is back the banner goes.
import { T, shot, step, check, run, traffic, consoleLogin } from './lib.mjs';

await run(async (browser) => {
  step('steady traffic: no system banner');
  const p = await consoleLogin(browser);
  await traffic('start');
  await p.waitForTimeout(4000);
  check(await p.getByTestId('system-banner').count() === 0, 'no banner while the devices talk');
  check(await p.locator('body[data-alarm=off]').count() === 1, 'no alarm sound');

  step('the native devices stop: the banner names the protocol and the alarm sounds');
  await traffic('stop');
  const item = p.locator('[data-testid=system-item][data-key="system.protocol_quiet"][data-name=native]');
  await item.waitFor({ timeout: T });
  const text = await item.textContent();
  check(text.includes('native') && text.includes('报文已停止'), `the banner says which traffic stopped: ${text}`);
  await p.locator('body[data-alarm=on]').waitFor({ timeout: T });
  await shot(p, 'console-system-banner.png');

  step('the traffic is back: the banner goes');
  await traffic('start');
  await p.getByTestId('system-banner').waitFor({ state: 'detached', timeout: T });
  await p.locator('body[data-alarm=off]').waitFor({ timeout: T });
  await traffic('stop');
});
