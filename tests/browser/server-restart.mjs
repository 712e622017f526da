// The server restarts mid-meeting, killed or stopped gracefully, and the browsers come
// back by themselves to the same meeting: same seats, same floor, media flowing.
//
//   node tests/browser/server-restart.mjs BASE_URL CHAIR_LINK COMMUNE_LINK
//
// Talks with the test that runs it (tests/src/browser.rs, InteractiveScript): events go
// out as JSON lines with an `event` field, commands come in on standard input, one a
// line. The commune joins and waits in the lobby, the chair opens the meeting, the
// commune asks for the floor and the chair gives it; once media flows both ways the
// script says `in_meeting`. Then, each time the test says `server_back` (it has
// restarted the server and it answers), the script measures how long until the chair
// sees and hears the commune and the commune sees the chair again, and says `back`
// with those times, the floor and the commune's roll-call record as the chair's page
// shows them, and whether each page was told the server was stopping. `done` ends the
// script; its last line is the report. Bounded by 150 s.

import readline from 'node:readline';
import {
  describePages, launchChromium, openPage, runReport, sleep,
} from './common.mjs';
import { enterWithFloor, mediaBetween } from './chair-and-commune.mjs';

const [baseArgument, chairLink, communeLink] = process.argv.slice(2);
if (!communeLink) {
  process.stderr.write('usage: node server-restart.mjs BASE_URL CHAIR_LINK COMMUNE_LINK\n');
  process.exit(2);
}
const baseUrl = baseArgument.replace(/\/+$/, '');
/** How long after the server is back the script waits for media before giving up. */
const MEDIA_WAIT_MS = 20_000;

const report = { test: 'server-restart', base_url: baseUrl, pages: {}, restarts: [] };
const commands = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function say(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function autojoin(target) {
  const url = new URL(target, baseUrl);
  url.searchParams.set('autojoin', '1');
  return url.toString();
}

await runReport(report, 150_000, async (report, setBrowser) => {
  const browser = await launchChromium();
  setBrowser(browser);
  report.chromium = browser.version();
  const pages = { chair: await openPage(browser, 'chair'), commune: await openPage(browser, 'commune') };
  let step = 'the commune waits in the lobby';
  try {
    const sites = await enterWithFloor(pages, autojoin(chairLink), autojoin(communeLink), (now) => {
      step = now;
    });
    report.sites = sites;
    const { waitForMedia } = await mediaBetween(pages, sites);
    const meetingAsChairSees = () => pages.chair.evaluate((code) => {
      const state = window.cauMeeting?.state;
      const entry = state?.sites.find((s) => s.code === code);
      return { floor: state?.floor ?? null, opened: state?.opened ?? null, attendance: entry?.attendance ?? null, connected: entry?.connected ?? null };
    }, sites.commune);

    step = 'media flows both ways';
    const first = await waitForMedia(Date.now(), 20_000);
    if (Object.values(first).some((v) => v === null)) throw new Error(`media never flowed: ${JSON.stringify(first)}`);
    report.before = await meetingAsChairSees();
    say({ event: 'in_meeting', ...report.before });

    for (;;) {
      step = 'waiting for the test';
      const { value: command, done } = await commands.next();
      if (done || command.trim() === 'done') break;
      if (command.trim() !== 'server_back') throw new Error(`unknown command ${command}`);
      step = `back after restart ${report.restarts.length + 1}`;
      const backAt = Date.now();
      const entry = { media_back_ms: await waitForMedia(backAt, MEDIA_WAIT_MS) };
      // The state settles: the meeting as the chair's page now shows it.
      await sleep(500);
      Object.assign(entry, await meetingAsChairSees());
      entry.commune_holds_floor = await pages.commune.evaluate(() => !document.getElementById('own-floor').hidden);
      entry.told_of_stop = {};
      for (const [name, page] of Object.entries(pages)) {
        entry.told_of_stop[name] = await page.evaluate(() => window.cauMetrics.marks.received_server_stopping !== undefined);
      }
      report.restarts.push(entry);
      say({ event: 'back', ...entry });
    }
  } catch (error) {
    await describePages(report, pages);
    throw new Error(`${step}: ${error.message.split('\n')[0]}`);
  }
});
