// The whole path of an SOS through the console and the volunteer app, in Chromium at 1440×900:
// the operator signs in → the SOS appears live with its kind and the alarm sounds → the incident
// page opens at its top with kind, stage and clocks → acknowledge (the operator now handles it, the
// stage moves on) → the SOS procedure: the first step's call button is a tel: link whose call is
// recorded with its outcome, steps are ticked → the responder picker lists the nearest first with
// availability, skills and phone → the volunteer accepts on the phone → arrived → completed (stage
// "done") → the operator closes; the header shows outcome, closer and note; the timeline is newest
// first, translated, with actors by name; the map (no tile server configured) is the grid-outline
// map; the report counts the incident.
import { env, T, shot, step, check, run, raise, consoleLogin, appLogin } from './lib.mjs';

const operator = env('ONEKEY_OPERATOR');
const volunteer = env('ONEKEY_RESPONDER');
const volunteerId = env('ONEKEY_RESPONDER_ID');
const farId = env('ONEKEY_FAR_RESPONDER_ID');
const offDutyId = env('ONEKEY_OFF_DUTY_ID');
const elderName = env('ONEKEY_ELDER_NAME');
const elderPhone = env('ONEKEY_ELDER_PHONE');
const keyHolderPhone = env('ONEKEY_KEY_HOLDER_PHONE');
const address = env('ONEKEY_ELDER_ADDRESS');
const keySafe = env('ONEKEY_KEY_SAFE');
const health = env('ONEKEY_HEALTH_NOTES');

await run(async (browser) => {
  step('operator signs in; volunteer signs in on a phone and goes on duty');
  const ops = await consoleLogin(browser);
  await ops.getByTestId('queue-empty').waitFor({ timeout: T });
  const app = await appLogin(browser);
  await raise('sos', 1);

  step('the SOS appears in the queue without a reload, with its kind, address and the alarm on');
  const row = ops.locator('[data-testid^=queue-row-]').first();
  await row.waitFor({ timeout: 60_000 });
  check((await row.textContent()).includes(elderName), `queue row names the elder: ${await row.textContent()}`);
  check((await row.getByTestId('queue-kind').textContent()).includes('紧急呼叫'), 'queue row shows the alarm kind');
  check((await row.getByTestId('queue-address').textContent()) === address, 'queue row shows the address');
  check(await row.getAttribute('data-stage') === 'waiting_ack', 'queue row waits for acknowledgement');
  check(await row.locator('[data-testid=sla-ack]').count() === 1, 'queue row has an acknowledge SLA clock');
  await ops.locator('body[data-alarm=on]').waitFor({ timeout: T });
  check((await ops.getByTestId('alarm-count').textContent()).startsWith('1 起'), 'the banner is a count');
  await ops.waitForFunction(() => Number(document.body.dataset.beeps || 0) >= 2, null, { timeout: T });
  await shot(ops, 'console-queue.png');

  step('the incident page opens at its top, even from a scrolled queue');
  await ops.evaluate(() => window.scrollTo(0, 400));
  await row.click();
  await ops.getByTestId('elder-name').waitFor({ timeout: T });
  check(await ops.evaluate(() => window.scrollY) === 0, 'incident page at its top');
  check((await ops.getByTestId('incident-kind').textContent()).includes('紧急呼叫'), 'incident header shows the kind');
  check(await ops.getByTestId('incident-status').getAttribute('data-stage') === 'waiting_ack', 'stage: waiting for ack');
  check((await ops.getByTestId('elder-address').textContent()) === address, 'incident page shows the address');
  check(await ops.getByTestId('call-elder').getAttribute('href') === `tel:${elderPhone}`, 'elder phone is a tel: link');
  check(await ops.getByTestId('call-contact-0').getAttribute('href') === `tel:${keyHolderPhone}`, 'key holder phone is a tel: link');
  await ops.getByTestId('timeline').locator('li[data-kind=opened]').waitFor({ timeout: T });
  await ops.getByTestId('map-elder').waitFor({ timeout: T });
  check(await ops.locator('[data-testid=incident-map] .leaflet-box').getAttribute('data-basemap') === 'outline', 'no tile server: grid-outline map');

  step('acknowledge: the operator handles it and the stage moves on');
  await ops.getByTestId('action-ack').click();
  await ops.locator('body[data-alarm=off]').waitFor({ timeout: T });
  await ops.getByTestId('timeline').locator('li[data-kind=acknowledged]').waitFor({ timeout: T });
  await ops.locator('[data-testid=sla-ack].met').waitFor({ timeout: T });
  check(await ops.getByTestId('action-ack').isDisabled(), 'acknowledge is done once');
  await ops.locator(`[data-testid=incident-handler]:text-is("${operator}")`).waitFor({ timeout: T });
  check(await ops.getByTestId('incident-status').getAttribute('data-stage') !== 'waiting_ack', 'stage no longer waits for ack');
  const beeps = await ops.evaluate(() => Number(document.body.dataset.beeps));
  await ops.waitForTimeout(4500);
  check(await ops.evaluate(() => Number(document.body.dataset.beeps)) === beeps, 'the sound stops once acknowledged');

  step('the procedure: call the elder from its step, record no answer; tick the steps');
  const firstStep = ops.getByTestId('step-call_elder');
  check((await firstStep.textContent()).includes('致电老人'), 'SOS procedure starts with calling the elder');
  check(await ops.getByTestId('step-call-call_elder').getAttribute('href') === `tel:${elderPhone}`, 'step call button dials the elder');
  await ops.getByTestId('step-call-call_elder').click();
  await ops.getByTestId('call-form').waitFor({ timeout: T });
  await ops.getByTestId('call-result').selectOption('no_answer');
  await ops.getByTestId('call-note').fill('响铃 30 秒无人接听');
  await ops.getByTestId('call-save').click();
  await ops.getByTestId('call-form').waitFor({ state: 'detached', timeout: T });
  const call = ops.getByTestId('timeline').locator('li[data-kind=call]');
  await call.waitFor({ timeout: T });
  check((await call.textContent()).includes('无人接听') && (await call.textContent()).includes(elderPhone), `call recorded: ${await call.textContent()}`);
  check((await call.textContent()).includes(operator), 'the call names the operator');
  await ops.getByTestId('step-call_elder-failed').click();
  await ops.locator('[data-testid=step-call_elder][data-outcome=failed]').waitFor({ timeout: T });
  await ops.getByTestId('step-help_coming-done').click();
  await ops.locator('[data-testid=step-help_coming][data-outcome=done]').waitFor({ timeout: T });
  check((await ops.getByTestId('timeline').locator('li[data-kind=procedure_step]').first().textContent()).includes('告知老人救援已出发'), 'step logged, translated');

  step('the responder picker: nearest first, availability, skills, phone');
  const cands = ops.locator('tr[data-testid^=candidate-]');
  await cands.first().waitFor({ timeout: T });
  check(await cands.first().getAttribute('data-testid') === `candidate-${volunteerId}`, 'the nearest available volunteer first');
  check(await ops.getByTestId(`candidate-${offDutyId}`).count() === 0, 'off-duty people are not listed by default');
  check((await ops.getByTestId(`call-candidate-${volunteerId}`).getAttribute('href')).startsWith('tel:'), 'candidate phone is a tel: link');
  check((await cands.first().textContent()).includes('first_aid'), 'skills shown');
  await ops.getByTestId('pick-all').click();
  await ops.locator('[data-testid=pick-all][data-on="1"]').waitFor({ timeout: T });
  await ops.getByTestId(`candidate-${offDutyId}`).waitFor({ timeout: T });
  check(await ops.getByTestId(`candidate-${offDutyId}`).getAttribute('data-available') === '0', 'off-duty flagged');
  void farId;

  step('the volunteer receives the offer live and accepts');
  const accept = app.getByTestId('task-accept');
  await accept.waitFor({ timeout: 60_000 });
  check((await app.getByTestId('task-address').textContent()) === address, 'offer shows the address');
  check((await app.getByTestId('task-elder').textContent()) === elderName, 'offer shows the elder');
  check((await app.getByTestId('task-kind').textContent()).includes('紧急呼叫'), 'offer shows the alarm kind');
  check(/\d+ m|km/.test(await app.getByTestId('task-distance').textContent()), 'offer shows the distance');
  check(await app.getByTestId('task-key-safe').count() === 0, 'no key-safe code before accepting');
  check(await app.getByTestId('task-call-elder').count() === 0, 'no phone number before accepting');
  await accept.click();
  await app.getByTestId('task-key-safe').waitFor({ timeout: T });
  check((await app.getByTestId('task-key-safe').textContent()) === keySafe, 'key-safe code after accepting');
  check((await app.getByTestId('task-health').textContent()) === health, 'health notes after accepting');
  check(await app.getByTestId('task-call-elder').getAttribute('href') === `tel:${elderPhone}`, 'elder phone after accepting');

  step('the console shows the acceptance live');
  await ops.locator(`[data-testid=offer-${volunteerId}][data-status=accepted]`).waitFor({ timeout: T });
  await ops.getByTestId(`map-accepted-${volunteerId}`).waitFor({ timeout: T });
  await ops.locator('[data-testid=incident-status][data-stage=accepted]').waitFor({ timeout: T });
  await shot(ops, 'console-incident.png');

  step('the volunteer arrives (confirmed) and completes with a note: stage "done"');
  await app.getByTestId('task-arrived').click();
  await app.getByTestId('confirm-yes').click();
  await app.getByTestId('complete-note').fill('老人血压偏高，已陪同休息');
  await app.getByTestId('task-completed').click();
  await app.getByTestId('no-tasks').waitFor({ timeout: T });
  await ops.getByTestId('timeline').locator('li[data-kind=task_completed]').waitFor({ timeout: T });
  await ops.locator('[data-testid=incident-status][data-stage=done]').waitFor({ timeout: T });

  step('the operator closes; the header shows outcome, closer and note; the timeline is newest first');
  await ops.getByTestId('close-outcome').selectOption('resolved');
  await ops.getByTestId('close-note').fill('志愿者已到场处理');
  await ops.getByTestId('action-close').click();
  await ops.getByTestId('closed-summary').waitFor({ timeout: T });
  check(await ops.getByTestId('incident-status').getAttribute('data-stage') === 'closed', 'stage closed');
  check((await ops.getByTestId('incident-status').textContent()).includes('已处理'), 'badge names the outcome');
  const summary = await ops.getByTestId('closed-summary').textContent();
  check(summary.includes('已处理') && summary.includes(operator) && summary.includes('志愿者已到场处理'), `closed summary: ${summary}`);
  const kinds = await ops.getByTestId('timeline').locator('li').evaluateAll((ls) => ls.map((l) => l.dataset.kind));
  const ids = await ops.getByTestId('timeline').locator('li').evaluateAll((ls) => ls.map((l) => Number(l.dataset.id)));
  check(ids.every((id, i) => i === 0 || id < ids[i - 1]) && kinds.slice(0, 2).includes('closed') && kinds[kinds.length - 1] === 'opened', `newest first: ${kinds.join(',')}`);
  const bare = await ops.getByTestId('timeline').locator('li b').allTextContents();
  check(bare.every((b) => !/^[a-z_]+$/.test(b)), `every event translated: ${bare.join(',')}`);
  const actors = (await ops.getByTestId('timeline').locator('.actor').allTextContents()).join(' ');
  check(actors.includes(volunteer) && !/responder:\d|device:\d/.test(actors), `actors by name: ${actors}`);
  check(actors.includes('系统') && !actors.includes('system'), 'system translated');
  await shot(ops, 'console-incident-closed.png');

  step('the map page draws the grid, the queue is empty and the report counts the incident');
  await ops.getByTestId('nav-map').click();
  await ops.getByTestId('map-area-JZ-WS-SY-01').waitFor({ timeout: T });
  await ops.getByTestId('nav-queue').click();
  await ops.getByTestId('queue-empty').waitFor({ timeout: T });
  await ops.getByTestId('nav-reports').click();
  await ops.locator('[data-testid=report-total], [data-testid=error]').first().waitFor({ timeout: T });
  if (await ops.getByTestId('error').count()) throw new Error(`the reports page shows an error: ${await ops.getByTestId('error').first().textContent()}`);
  check(Number(await ops.getByTestId('report-total').textContent()) >= 1, 'report counts the incident');
  check(Number(await ops.getByTestId('report-closed').textContent()) >= 1, 'report counts it closed');
  check(Number(await ops.getByTestId('report-answer-count').textContent()) >= 1, 'report counts its answer time');
});
