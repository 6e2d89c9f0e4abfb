// The city map against the local tile server tests/browser.rs starts: tiles load from the
// configured URL; forty elders at home are clustered; an alarm from a fixed unit (no position fix)
// is placed at the elder's registered address; zoom and pan work; zooming in splits the clusters.
import { T, shot, step, check, run, raise, consoleLogin } from './lib.mjs';

await run(async (browser) => {
  const p = await consoleLogin(browser);
  await raise('sos', 3);
  await p.locator('tr[data-testid^=queue-row-]').first().waitFor({ timeout: T });
  const id = (await p.locator('tr[data-testid^=queue-row-]').first().getAttribute('data-incident'));

  step('tiles from the configured server, clusters, the incident at the registered address');
  await p.getByTestId('nav-map').click();
  const box = p.getByTestId('city-map');
  await box.waitFor({ timeout: T });
  check(await box.getAttribute('data-basemap') === 'tiles', 'tile base map');
  await p.waitForFunction(() => document.querySelectorAll('[data-testid=city-map] img.leaflet-tile-loaded').length >= 4, null, { timeout: T });
  const src = await p.locator('[data-testid=city-map] img.leaflet-tile-loaded').first().getAttribute('src');
  check(/\/\d+\/\d+\/\d+\.svg$/.test(src), `tile from the tile server: ${src}`);
  await p.getByTestId(`map-incident-${id}`).waitFor({ timeout: T });
  await p.getByTestId('map-area-JZ-WS-SY-02').waitFor({ timeout: T });
  const clusters = await p.locator('[data-testid=city-map] .marker-cluster').count();
  check(clusters >= 1, `elders clustered: ${clusters} clusters`);
  const counted = await p.locator('[data-testid=city-map] .marker-cluster span').allTextContents();
  check(counted.reduce((s, n) => s + Number(n), 0) + await p.locator('[data-testid^=map-home-]').count() === 48, `every elder at home on the map: ${counted}`);
  await shot(p, 'console-map-tiles.png');

  step('zoom in and pan');
  const z0 = Number(await box.getAttribute('data-zoom'));
  await p.locator('[data-testid=city-map] .leaflet-control-zoom-in').click();
  await p.waitForFunction((z) => Number(document.querySelector('[data-testid=city-map]').dataset.zoom) === z + 1, z0, { timeout: T });
  await p.locator('[data-testid=city-map] .leaflet-control-zoom-in').click();
  await p.waitForFunction((z) => Number(document.querySelector('[data-testid=city-map]').dataset.zoom) === z + 2, z0, { timeout: T });
  await p.waitForFunction(() => document.querySelectorAll('[data-testid=city-map] img.leaflet-tile-loaded').length >= 4, null, { timeout: T });
  const c0 = await box.getAttribute('data-center');
  const b = await box.boundingBox();
  await p.mouse.move(b.x + b.width / 2, b.y + b.height / 2);
  await p.mouse.down();
  await p.mouse.move(b.x + b.width / 2 - 150, b.y + b.height / 2 - 80, { steps: 8 });
  await p.mouse.up();
  await p.waitForFunction((c) => document.querySelector('[data-testid=city-map]').dataset.center !== c, c0, { timeout: T });
  step('a click on a cluster zooms into it and shows the homes one by one');
  for (const back of [1, 0]) {
    await p.locator('[data-testid=city-map] .leaflet-control-zoom-out').click();
    await p.waitForFunction((z) => Number(document.querySelector('[data-testid=city-map]').dataset.zoom) === z, z0 + back, { timeout: T });
  }
  await p.locator('[data-testid=city-map] .marker-cluster').first().click();
  await p.waitForFunction((z) => Number(document.querySelector('[data-testid=city-map]').dataset.zoom) > z, z0, { timeout: T });
  while (Number(await box.getAttribute('data-zoom')) < 18) {
    const z = Number(await box.getAttribute('data-zoom'));
    await p.locator('[data-testid=city-map] .leaflet-control-zoom-in').click();
    await p.waitForFunction((zz) => Number(document.querySelector('[data-testid=city-map]').dataset.zoom) > zz, z, { timeout: T });
  }
  await p.waitForFunction(() => document.querySelectorAll('[data-testid^=map-home-]').length >= 1, null, { timeout: T });
  await shot(p, 'console-map-zoomed.png');
});
