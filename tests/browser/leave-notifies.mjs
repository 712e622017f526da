// Proves the others hear when a participant goes away: its <video> disappears within 5 s.
//
//   node tests/browser/leave-notifies.mjs http://127.0.0.1:8080 ROOM
//
// Alice and Bob join ROOM and see each other's picture; then Bob's page is closed (as when a
// user shuts the tab). Alice's <video data-participant="Bob"> must be gone within 5 s while
// Alice herself stays connected. Prints one line of JSON and exits 0 on success, 1 (with
// `error`) on failure. The whole run is bounded by 55 s.

import {
  describePages, joinUrl, launchChromium, openPage, parseArguments, runReport, snapshot,
  waitForRemoteVideo,
} from './common.mjs';

const { baseUrl, room } = parseArguments('leave-notifies.mjs');
const REMOVAL_LIMIT_MS = 5000;

const report = { test: 'leave-notifies', base_url: baseUrl, room, pages: {} };

await runReport(report, 55_000, async (report, setBrowser) => {
  const browser = await launchChromium();
  setBrowser(browser);
  report.chromium = browser.version();

  const pages = { Alice: await openPage(browser, 'Alice'), Bob: await openPage(browser, 'Bob') };
  let step = 'load the join pages';
  try {
    await Promise.all(Object.entries(pages).map(([name, page]) => page.goto(joinUrl(baseUrl, room, name), { timeout: 10_000 })));

    step = 'see each other\'s video';
    await Promise.all([
      waitForRemoteVideo(pages.Alice, 'Bob', 25_000),
      waitForRemoteVideo(pages.Bob, 'Alice', 25_000),
    ]);

    step = 'close Bob\'s page';
    const closedAt = Date.now();
    const bob = pages.Bob;
    delete pages.Bob;
    await bob.close();

    step = 'see Bob\'s video disappear';
    await pages.Alice.waitForFunction(
      () => document.querySelector('video[data-participant="Bob"]') === null,
      undefined,
      { timeout: REMOVAL_LIMIT_MS, polling: 20 },
    );
    report.removed_after_ms = Date.now() - closedAt;

    const alice = await snapshot(pages.Alice);
    report.pages.Alice = {
      connection_state: alice.connection_state,
      signaling_state: alice.signaling_state,
      remote_participants: alice.remote_participants.length,
    };
    if (alice.connection_state !== 'connected' || alice.signaling_state !== 'open') {
      throw new Error(`Alice lost her own connection (${alice.signaling_state}, ${alice.connection_state})`);
    }
  } catch (error) {
    await describePages(report, pages);
    throw new Error(`${step}: ${error.message.split('\n')[0]}`);
  }
});
