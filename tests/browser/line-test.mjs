// A site runs its line test in Chromium, with the fake camera and microphone, and sees
// the verdict; the chair sees it too.
//
//   node tests/browser/line-test.mjs BASE_URL CHAIR_LINK COMMUNE_LINK
//
// The links are join links of one chair-mode meeting that has not been opened. The chair
// opens its link (it never waits); the commune opens its link with `&autojoin=1` and waits
// in the lobby, clicks "Kiểm tra đường truyền" there, and waits for the result. The
// script checks that the commune's page shows a verdict badge, the figures, and that its
// microphone and camera reached the server, and that the chair's roll call shows the
// commune with the same verdict. The verdict itself is reported, not required: on an
// idle machine this loopback line is `ready` (a few ms of round trip), but the probes'
// echo runs on the page's main thread, and a machine loaded with other work delays it
// into `marginal` jitter; the webrtc-rs test tells ready from not ready. Then the same
// link's page of its own, /m/<meeting>/test?token=...&autostart=1, runs the test again
// and shows a verdict. Prints one line of JSON; exits 0 when every check passes, 1
// otherwise; bounded by 85 s.

import { describePages, launchChromium, openPage, runReport } from './common.mjs';

const [baseArgument, chairLink, communeLink] = process.argv.slice(2);
if (!baseArgument || !chairLink || !communeLink) {
  process.stderr.write('usage: node line-test.mjs BASE_URL CHAIR_LINK COMMUNE_LINK\n');
  process.exit(2);
}
const baseUrl = baseArgument.replace(/\/+$/, '');
/** The server's plan is about 12 s; the margin is for a loaded two-core machine. */
const TEST_LIMIT_MS = 35_000;

const report = { test: 'line-test', base_url: baseUrl, pages: {}, checks: {}, results: {} };

function withParameter(link, name) {
  const url = new URL(link, baseUrl);
  url.searchParams.set(name, '1');
  return url;
}

/** What a line-test card shows: its state, verdict, reasons and figures. */
async function shownResult(page) {
  return page.evaluate(() => {
    const card = document.getElementById('line-test-card');
    const result = document.getElementById('line-test-result');
    const error = document.getElementById('line-test-error');
    const figures = {};
    const terms = result.querySelectorAll('.linetest-figures dt');
    for (const term of terms) figures[term.dataset.i18n] = term.nextElementSibling?.dataset.i18n ?? term.nextElementSibling?.textContent;
    return {
      state: card.dataset.lineTest ?? null,
      verdict: result.dataset.verdict ?? null,
      badge: result.querySelector('.verdict-badge')?.textContent ?? null,
      reasons: [...result.querySelectorAll('.linetest-reasons li')].map((li) => li.textContent),
      figures,
      figure_text: result.querySelector('.linetest-figures')?.textContent.replace(/\s+/g, ' ').trim() ?? null,
      error: error.hidden ? null : error.textContent.replace(/\s+/g, ' ').trim(),
    };
  });
}

async function waitForResult(page) {
  await page.waitForFunction(
    () => ['done', 'failed'].includes(document.getElementById('line-test-card')?.dataset.lineTest),
    null,
    { timeout: TEST_LIMIT_MS, polling: 200 },
  );
  return shownResult(page);
}

function checkShown(shown, where) {
  if (shown.state !== 'done') throw new Error(`${where}: the test did not finish: ${JSON.stringify(shown)}`);
  if (!shown.verdict || !shown.badge) throw new Error(`${where}: no verdict shown`);
  if (shown.figures['linetest.microphone'] !== 'linetest.works') throw new Error(`${where}: the microphone did not reach the server`);
  if (shown.figures['linetest.camera'] !== 'linetest.works') throw new Error(`${where}: the camera did not reach the server`);
}

await runReport(report, 85_000, async (_, setBrowser) => {
  const browser = await launchChromium();
  setBrowser(browser);
  const chair = await openPage(browser, 'chair');
  const commune = await openPage(browser, 'commune');
  const pages = { chair, commune };
  try {
    await chair.goto(withParameter(chairLink, 'autojoin').toString());
    await chair.waitForSelector('#console:not([hidden])', { timeout: 15_000 });

    await commune.goto(withParameter(communeLink, 'autojoin').toString());
    await commune.waitForSelector('body[data-lobby="true"]', { timeout: 15_000 });
    await commune.waitForSelector('#line-test-card:not([hidden])', { timeout: 5_000 });
    report.checks.lobby = true;

    const started = Date.now();
    await commune.click('#line-test-button');
    const shown = await waitForResult(commune);
    report.results.lobby = shown;
    report.checks.lobby_test_ms = Date.now() - started;
    checkShown(shown, 'lobby');
    report.checks.lobby_verdict = shown.verdict;

    const site = await commune.evaluate(() => document.body.dataset.site);
    await chair.waitForFunction(
      ([code, verdict]) => document.querySelector(`tr[data-site="${CSS.escape(code)}"] .line-readiness`)?.dataset.verdict === verdict,
      [site, shown.verdict],
      { timeout: 10_000, polling: 200 },
    );
    report.checks.chair_sees = await chair.evaluate(
      (code) => document.querySelector(`tr[data-site="${CSS.escape(code)}"] .line-readiness`)?.textContent,
      site,
    );

    // The same link's page of its own, as IT staff use it.
    const link = new URL(communeLink, baseUrl);
    const testPage = new URL(`${link.pathname.replace(/\/+$/, '')}/test${link.search}`, baseUrl);
    testPage.searchParams.set('autostart', '1');
    await commune.goto(testPage.toString());
    const own = await waitForResult(commune);
    report.results.page = own;
    checkShown(own, 'test page');
    report.checks.page_verdict = own.verdict;
  } catch (error) {
    await describePages(report, pages);
    throw error;
  }
});
