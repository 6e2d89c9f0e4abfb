// The way out to people, seen on the console: an SOS's offer reaches the volunteer's phone (the
// app confirms it) and the console shows it delivered; nobody accepts, the rings run out and the
// operator, who had acknowledged, is called back: the alarm sounds again, the banner and the queue
// say why, and acknowledging that step stops it.
import { T, shot, step, check, run, raise, consoleLogin, appLogin, env } from './lib.mjs';

const volunteerId = env('ONEKEY_RESPONDER_ID');

await run(async (browser) => {
  step('operator signs in; the volunteer is on duty in the app');
  const ops = await consoleLogin(browser);
  const app = await appLogin(browser);
  await raise('sos', 1);

  step('the offer reaches the phone and the console shows it delivered');
  const row = ops.locator('[data-testid^=queue-row-]').first();
  await row.waitFor({ timeout: 60_000 });
  await app.locator('[data-testid^=task-]').first().waitFor({ timeout: T });
  await row.click();
  await ops.getByTestId('elder-name').waitFor({ timeout: T });
  await ops.locator(`[data-testid=offer-delivery-${volunteerId}][data-delivery=delivered]`).waitFor({ timeout: T });
  check((await ops.getByTestId(`offer-delivery-${volunteerId}`).textContent()).includes('已送达'), 'delivered, in words');
  await ops.getByTestId('timeline').locator('li[data-kind=offer_received]').waitFor({ timeout: T });

  step('acknowledge: the alarm stops');
  await ops.getByTestId('action-ack').click();
  await ops.locator('body[data-alarm=off]').waitFor({ timeout: T });

  step('nobody accepts: the operator is called back with the reason');
  await ops.locator('body[data-alarm=on]').waitFor({ timeout: 60_000 });
  await ops.getByTestId('incident-attention').waitFor({ timeout: T });
  check(await ops.getByTestId('incident-attention').getAttribute('data-reason') === 'no_responder', 'the reason is nobody accepted');
  check((await ops.getByTestId('attention-banner').textContent()).includes('需要处理'), 'the banner says an operator is needed');
  const beeps = await ops.evaluate(() => Number(document.body.dataset.beeps || 0));
  await ops.waitForFunction((b) => Number(document.body.dataset.beeps || 0) > b, beeps, { timeout: T });
  await ops.getByTestId('timeline').locator('li[data-kind=attention_raised]').waitFor({ timeout: T });
  await shot(ops, 'console-attention.png');
  await ops.getByRole('link', { name: /队列|Queue/ }).first().click().catch(() => {});
  await ops.goto(`${env('ONEKEY_URL')}/console#/queue`);
  await ops.getByTestId('queue-attention').first().waitFor({ timeout: T });
  check(await ops.getByTestId('queue-attention').first().getAttribute('data-reason') === 'no_responder', 'the queue shows why');
  await ops.getByTestId('attention-link').click();

  step('acknowledging the step stops the alarm');
  await ops.getByTestId('action-attend').click();
  await ops.locator('body[data-alarm=off]').waitFor({ timeout: T });
  await ops.getByTestId('timeline').locator('li[data-kind=attention_acknowledged]').waitFor({ timeout: T });
  check(await ops.getByTestId('incident-attention').count() === 0, 'the flag is gone');
});
