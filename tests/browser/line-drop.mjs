// A commune's line drops mid-meeting and comes back: its browser reconnects by itself,
// keeps its seat and the floor, and media is back within moments of the line.
//
//   node tests/browser/line-drop.mjs BASE_URL CHAIR_LINK COMMUNE_LINK LINE_NETNS LINK LAUNCHER DROPS
//
// The chair's Chromium runs in the test's namespace; the commune's runs in a network
// namespace of its own through LAUNCHER (a script that starts Chromium there), and
// reaches the server only through interface LINK of namespace LINE_NETNS, its line.
// The commune waits in the lobby; the chair opens the
// meeting; the commune asks for the floor and the chair gives it. Then, for each
// duration of DROPS (seconds, comma-separated), the script takes LINK down
// (`ip link set down` in LINE_NETNS), watches the chair's roll call for the commune until the
// line comes back, brings the link up, and measures how long until the chair sees the
// commune's video and hears its audio again, and the commune sees the chair's video.
// It reports, per drop: what the chair's roll call showed for the commune meanwhile, the
// times to media, and the commune's roll-call record and the floor before and after.
// The test that runs it judges the figures. Prints one line of JSON; exits 0 when every
// step happened, 1 otherwise. Bounded by 40 s plus the drops.

import { execFileSync } from 'node:child_process';
import {
  describePages, launchChromium, openPage, runReport, sleep,
} from './common.mjs';
import { enterWithFloor, mediaBetween } from './chair-and-commune.mjs';

const [baseArgument, chairLink, communeLink, netns, link, launcher, dropsArgument] = process.argv.slice(2);
if (!dropsArgument) {
  process.stderr.write('usage: node line-drop.mjs BASE_URL CHAIR_LINK COMMUNE_LINK LINE_NETNS LINK LAUNCHER DROPS\n');
  process.exit(2);
}
const baseUrl = baseArgument.replace(/\/+$/, '');
const drops = dropsArgument.split(',').map(Number);
/** How long the script waits for media after the line is back before it gives up. */
const MEDIA_WAIT_MS = 15_000;

const report = { test: 'line-drop', base_url: baseUrl, pages: {}, drops: [] };

function autojoin(target) {
  const url = new URL(target, baseUrl);
  url.searchParams.set('autojoin', '1');
  return url.toString();
}

function setLink(state) {
  execFileSync('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', link, state]);
}

/** The chair's view of `site`: its roll-call row's presence, and the meeting's state. */
async function chairView(page, site) {
  return page.evaluate((code) => {
    const state = window.cauMeeting?.state;
    const entry = state?.sites.find((s) => s.code === code) ?? null;
    const row = document.querySelector(`#rollcall [data-site="${CSS.escape(code)}"], [data-presence][data-site="${CSS.escape(code)}"]`);
    return {
      presence: row?.dataset.presence ?? null,
      presence_text: row?.querySelector('.site-dot')?.textContent ?? null,
      floor: state?.floor ?? null,
      attendance: entry?.attendance ?? null,
      reconnecting: entry?.reconnecting ?? null,
    };
  }, site);
}

await runReport(report, 40_000 + drops.reduce((sum, s) => sum + s * 1000 + MEDIA_WAIT_MS, 0), async (report, setBrowser) => {
  // Served over plain HTTP from 10.77.0.1, the page is a secure context (which the camera
  // needs) only if Chromium is told to treat that origin as one; sites use HTTPS.
  const secure = [`--unsafely-treat-insecure-origin-as-secure=${new URL(baseUrl).origin}`];
  const chairBrowser = await launchChromium(secure);
  setBrowser(chairBrowser);
  const communeBrowser = await launchChromium(secure, launcher);
  const closeCommune = () => communeBrowser.close().catch(() => {});
  process.on('exit', closeCommune);
  report.chromium = chairBrowser.version();
  const pages = { chair: await openPage(chairBrowser, 'chair'), commune: await openPage(communeBrowser, 'commune') };
  let step = 'the commune waits in the lobby';
  try {
    const sites = await enterWithFloor(pages, autojoin(chairLink), autojoin(communeLink), (now) => {
      step = now;
    });
    report.sites = sites;
    step = 'media flows both ways';
    const { waitForMedia } = await mediaBetween(pages, sites);
    const first = await waitForMedia(Date.now(), 20_000);
    if (Object.values(first).some((v) => v === null)) throw new Error(`media never flowed: ${JSON.stringify(first)}`);

    for (const seconds of drops) {
      step = `a drop of ${seconds} s`;
      const entry = { seconds, before: await chairView(pages.chair, sites.commune), during: [] };
      report.drops.push(entry);
      await pages.commune.evaluate(() => { window.cauLineBackVia = null; });
      const downAt = Date.now();
      setLink('down');
      // What the chair's roll call shows for the commune meanwhile, each change once.
      while (Date.now() < downAt + seconds * 1000) {
        const view = await chairView(pages.chair, sites.commune);
        const last = entry.during[entry.during.length - 1];
        if (!last || last.presence !== view.presence || last.status !== view.attendance?.status) {
          entry.during.push({ after_ms: Date.now() - downAt, presence: view.presence, text: view.presence_text, status: view.attendance?.status ?? null });
        }
        await sleep(200);
      }
      const upAt = Date.now();
      setLink('up');
      // The commune's signaling and media states as they change, for the report.
      entry.commune_states = [];
      let watching = true;
      const watchStates = (async () => {
        while (watching) {
          const states = await pages.commune.evaluate(() => `${document.getElementById('signaling-state').dataset.state}/${document.getElementById('connection-state').dataset.state}`).catch(() => null);
          const last = entry.commune_states[entry.commune_states.length - 1];
          if (states !== null && last?.states !== states) entry.commune_states.push({ after_ms: Date.now() - upAt, states });
          await sleep(50);
        }
      })();
      entry.media_back_ms = await waitForMedia(upAt, MEDIA_WAIT_MS);
      watching = false;
      await watchStates;
      // Which check told the commune's page its line was back: the UDP probe or /healthz.
      entry.line_back_via = await pages.commune.evaluate(() => window.cauLineBackVia ?? null);
      // The state settles: the floor and roll call as the chair now sees them.
      await sleep(500);
      entry.after = await chairView(pages.chair, sites.commune);
      entry.commune_holds_floor = await pages.commune.evaluate(() => !document.getElementById('own-floor').hidden);
      if (Object.values(entry.media_back_ms).some((v) => v === null)) {
        throw new Error(`media did not come back within ${MEDIA_WAIT_MS} ms: ${JSON.stringify(entry)}`);
      }
    }
  } catch (error) {
    await describePages(report, pages);
    throw new Error(`${step}: ${error.message.split('\n')[0]}`);
  } finally {
    try {
      setLink('up');
    } catch {
      // The namespace may be gone already.
    }
    await closeCommune();
  }
});
