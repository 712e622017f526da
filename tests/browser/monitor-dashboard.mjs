// Proves the IT staff's line dashboard shows each site at the level the server measured,
// in that level's colour, and draws a site's charts when it is clicked.
//
//   node tests/browser/monitor-dashboard.mjs BASE_URL ADMIN_TOKEN EXPECTED [DETAIL_SITE]
//
// EXPECTED is a JSON object {"<site code>": "<level>"}, each level one of excellent, good,
// poor, lost or offline, e.g. '{"ha-quang":"poor","cao-bang":"excellent"}'. The script
// opens BASE_URL/monitor, signs in with ADMIN_TOKEN on the page's form, and waits (at most
// 20 s) until the tile of every expected site carries its `data-level`. It then checks the
// tiles' computed colours: every tile of one level has the same background and border
// colour, and no two levels on the page share either. Last it clicks DETAIL_SITE (by
// default the first expected site) and waits until `#site-detail[data-site=...]` shows and
// each of its four `[data-chart]` containers (loss, rtt, jitter, bitrate) holds a uPlot
// <canvas>.
//
// Prints one line of JSON and exits 0 when every check passed, 1 (with `error`) otherwise;
// an uncaught error on the page fails the run too. The whole run is bounded by 60 s. With
// CAU_SCREENSHOT=<file.png> it also saves a picture of the page with the detail open.

import { launchChromium, openPage, runReport } from './common.mjs';

const LEVELS = ['excellent', 'good', 'poor', 'lost', 'offline'];
const CHARTS = ['loss', 'rtt', 'jitter', 'bitrate'];
const LEVELS_TIMEOUT = 20_000;
const STEP_TIMEOUT = 10_000;

const [baseArgument, adminToken, expectedArgument, detailArgument] = process.argv.slice(2);
if (!baseArgument || !adminToken || !expectedArgument) {
  process.stderr.write('usage: node monitor-dashboard.mjs BASE_URL ADMIN_TOKEN \'{"site-code":"level",...}\' [DETAIL_SITE]\n');
  process.exit(2);
}
const baseUrl = baseArgument.replace(/\/+$/, '');
const expected = parseExpected(expectedArgument);
const detailSite = detailArgument ?? Object.keys(expected)[0];

const report = { test: 'monitor-dashboard', base_url: baseUrl, expected, detail_site: detailSite };

await runReport(report, 60_000, async (report, setBrowser) => {
  const browser = await launchChromium();
  setBrowser(browser);
  report.chromium = browser.version();
  const page = await openPage(browser, 'it-staff');
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message.split('\n')[0]));

  let step = 'open /monitor';
  try {
    await page.goto(`${baseUrl}/monitor`, { timeout: STEP_TIMEOUT });

    step = 'sign in with the admin token';
    await page.locator('#token').fill(adminToken, { timeout: STEP_TIMEOUT });
    await page.locator('#token-form button[type="submit"]').click({ timeout: STEP_TIMEOUT });
    // Either the sites show, or the page sends us back to sign in with its reason.
    const signedIn = await page.waitForFunction(() => {
      if (document.querySelector('#monitor-view:not([hidden]) .site-tile')) return 'sites';
      const notice = document.getElementById('notice');
      if (!document.getElementById('signin-view').hidden && !notice.hidden) return notice.textContent;
      return false;
    }, null, { timeout: STEP_TIMEOUT, polling: 100 }).then((handle) => handle.jsonValue());
    if (signedIn !== 'sites') throw new Error(`the page refused: ${signedIn.replace(/\s+/g, ' ').trim()}`);

    step = `see every expected site at its level within ${LEVELS_TIMEOUT / 1000} s`;
    const reached = await page.waitForFunction(
      (expected) => Object.entries(expected).every(([code, level]) => (
        document.querySelector(`.site-tile[data-site="${CSS.escape(code)}"]`)?.dataset.level === level
      )),
      expected,
      { timeout: LEVELS_TIMEOUT, polling: 100 },
    ).then(() => true, () => false);
    const shown = await shownSites(page);
    report.feed_state = shown.feed;
    report.levels_seen = Object.fromEntries(Object.keys(expected).map((code) => [code, shown.levels[code] ?? 'missing']));
    report.sites_shown = Object.keys(shown.levels).length;
    if (!reached) {
      const wrong = Object.entries(expected)
        .filter(([code, level]) => shown.levels[code] !== level)
        .map(([code, level]) => `${code} expected ${level}, shows ${shown.levels[code] ?? 'no tile'}`);
      const feedDown = shown.feedDown ? `; the page says: ${shown.feedDown}` : '';
      throw new Error(`${wrong.join(', ')} (feed ${shown.feed}${feedDown})`);
    }

    step = 'tell the levels apart by colour';
    report.colours = checkColours(shown.tiles);
    report.levels_compared = Object.keys(report.colours).length;

    step = `open the detail of ${detailSite}`;
    await page.locator(`.site-tile[data-site="${detailSite}"]`).click({ timeout: STEP_TIMEOUT });
    await page.waitForSelector(`#site-detail[data-site="${detailSite}"]:not([hidden])`, { timeout: STEP_TIMEOUT });
    step = `see ${detailSite}'s four charts drawn`;
    const drawn = await page.waitForFunction(
      (names) => {
        const containers = [...document.querySelectorAll('#site-detail [data-chart]')];
        return containers.length === names.length
          && names.every((name) => document.querySelector(`#site-detail [data-chart="${name}"] canvas`));
      },
      CHARTS,
      { timeout: STEP_TIMEOUT, polling: 100 },
    ).then(() => true, () => false);
    report.detail = await page.evaluate(() => {
      const panel = document.getElementById('site-detail');
      const charts = document.getElementById('detail-charts');
      return {
        site: panel.dataset.site ?? null,
        level: panel.dataset.level ?? null,
        charts: Object.fromEntries([...panel.querySelectorAll('[data-chart]')].map((chart) => [
          chart.dataset.chart, chart.querySelectorAll('canvas').length,
        ])),
        charts_state: charts.dataset.state ?? null,
        samples: charts.dataset.samples === undefined ? null : Number(charts.dataset.samples),
        status: document.getElementById('charts-status').textContent.trim(),
      };
    });
    if (!drawn) {
      throw new Error(`charts not drawn within ${STEP_TIMEOUT / 1000} s: canvases ${JSON.stringify(report.detail.charts)}, `
        + `state ${report.detail.charts_state}, page says "${report.detail.status}"`);
    }
    if (process.env.CAU_SCREENSHOT) {
      await page.screenshot({ path: process.env.CAU_SCREENSHOT, fullPage: true });
    }

    step = 'run without errors on the page';
    if (pageErrors.length > 0) throw new Error(pageErrors.join('; '));
  } catch (error) {
    if (page.cauLog.length > 0) report.console = page.cauLog.slice(-5);
    throw new Error(`${step}: ${error.message.split('\n')[0]}`);
  }
});

/** The EXPECTED argument, checked: a non-empty object of site codes to known levels. */
function parseExpected(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    usageError(`EXPECTED is not JSON: ${error.message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.keys(value).length === 0) {
    usageError('EXPECTED must be a non-empty JSON object {"site-code": "level"}');
  }
  for (const [code, level] of Object.entries(value)) {
    if (!LEVELS.includes(level)) usageError(`EXPECTED gives ${code} the level "${level}", not one of ${LEVELS.join(', ')}`);
  }
  return value;
}

function usageError(message) {
  process.stderr.write(`monitor-dashboard.mjs: ${message}\n`);
  process.exit(2);
}

/** Every tile's level and colours, the feed's state and the page's feed-down message. */
async function shownSites(page) {
  return page.evaluate(() => {
    const tiles = [...document.querySelectorAll('.site-tile')].map((tile) => {
      const style = getComputedStyle(tile);
      return {
        code: tile.dataset.site,
        level: tile.dataset.level,
        background: style.backgroundColor,
        border: style.borderLeftColor,
      };
    });
    const feedDown = document.getElementById('feed-down');
    return {
      tiles,
      levels: Object.fromEntries(tiles.map((tile) => [tile.code, tile.level])),
      feed: document.getElementById('feed-state')?.dataset.state ?? null,
      feedDown: feedDown && !feedDown.hidden ? feedDown.textContent.replace(/\s+/g, ' ').trim() : null,
    };
  });
}

/**
 * One background and one border colour per level, and a different pair for each level:
 * checked over every tile on the page, so a single expected level is still compared with
 * the others shown (at least the offline ones); with one level on the whole page there
 * is nothing to compare, and `levels_compared` in the report says so. Returns the colours
 * by level.
 */
function checkColours(tiles) {
  const byLevel = {};
  const failures = [];
  for (const tile of tiles) {
    const colours = (byLevel[tile.level] ??= { background: tile.background, border: tile.border, tiles: 0 });
    colours.tiles += 1;
    if (colours.background !== tile.background || colours.border !== tile.border) {
      failures.push(`${tile.code} (${tile.level}) is ${tile.background} / ${tile.border}, other ${tile.level} tiles ${colours.background} / ${colours.border}`);
    }
  }
  const levels = Object.keys(byLevel);
  for (const [index, level] of levels.entries()) {
    for (const other of levels.slice(index + 1)) {
      for (const part of ['background', 'border']) {
        if (byLevel[level][part] === byLevel[other][part]) {
          failures.push(`${level} and ${other} tiles have the same ${part} colour ${byLevel[level][part]}`);
        }
      }
    }
  }
  if (failures.length > 0) throw new Error(failures.join('; '));
  return byLevel;
}
