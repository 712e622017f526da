// Join to first remote frame in Chromium, over several joins, through a running Cầu server.
//
//   node load-tests/browser/join-latency.mjs BASE_URL ROOM [JOINS]
//
// A first page ("Host") joins ROOM and publishes its fake camera. Then, one after another,
// JOINS pages ("Joiner-1", ...) open /join/ROOM?autojoin=1 and wait for Host's picture to
// be decoded (the client's requestVideoFrameCallback mark). Each join is timed two ways,
// from the page's own marks (performance.now(), milliseconds since navigation):
//   - from_join_ms: the signaling socket opening to the first decoded remote frame,
//     which is what the server and the network decide;
//   - from_navigation_ms: navigation to the first decoded frame, which adds page load
//     and the camera opening.
// Prints one line of JSON with every sample and the medians.

import { joinUrl, launchChromium, openPage, runReport, sleep } from '../../tests/browser/common.mjs';

const [baseArg, room, joinsArg] = process.argv.slice(2);
if (!baseArg || !room) {
  process.stderr.write('usage: node join-latency.mjs BASE_URL ROOM [JOINS]\n');
  process.exit(2);
}
const baseUrl = baseArg.replace(/\/+$/, '');
const joins = Number(joinsArg ?? 10);

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

const firstFrameMarks = (page) => page.waitForFunction(
  () => window.cauMetrics?.marks?.first_remote_frame !== undefined && window.cauMetrics.marks,
  undefined,
  { timeout: 20_000, polling: 10 },
).then((handle) => handle.jsonValue());

const report = { benchmark: 'join-latency', base_url: baseUrl, room, joins, samples: [] };

await runReport(report, 30_000 + joins * 25_000, async (report, setBrowser) => {
  const browser = await launchChromium();
  setBrowser(browser);
  report.chromium = browser.version();
  const host = await openPage(browser, 'Host');
  await host.goto(joinUrl(baseUrl, room, 'Host'), { timeout: 10_000 });
  await host.waitForFunction(() => window.cauMetrics?.marks?.pc_connected !== undefined, undefined, { timeout: 20_000 });

  for (let i = 1; i <= joins; i += 1) {
    const page = await openPage(browser, `Joiner-${i}`);
    await page.goto(joinUrl(baseUrl, room, `Joiner-${i}`), { timeout: 10_000 });
    const marks = await firstFrameMarks(page);
    report.samples.push({
      from_join_ms: marks.first_remote_frame - marks.signaling_connecting,
      from_navigation_ms: marks.first_remote_frame,
      marks,
    });
    await page.context().close();
    // Let the server notice the departure before the next join.
    await sleep(500);
  }
  report.median_from_join_ms = median(report.samples.map((s) => s.from_join_ms));
  report.median_from_navigation_ms = median(report.samples.map((s) => s.from_navigation_ms));
});
