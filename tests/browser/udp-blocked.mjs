// A site whose firewall blocks UDP still takes part, over ICE-TCP.
//
//   node tests/browser/udp-blocked.mjs BASE_URL ROOM LAUNCHER
//
// "Mountain" runs its Chromium through LAUNCHER, in a network namespace where every UDP
// packet is dropped; "Office" runs beside the server. Both join ROOM with camera and
// microphone. Each must decode the other's video and receive its audio; the report says
// which transport each page's selected candidate pair uses. Prints one line of JSON;
// exits 0 when every step happened, 1 otherwise. Bounded by 60 s.

import {
  describePages, inboundStats, joinUrl, launchChromium, openPage, runReport, sleep, waitForRemoteVideo,
} from './common.mjs';

const [baseArgument, room, launcher] = process.argv.slice(2);
if (!launcher) {
  process.stderr.write('usage: node udp-blocked.mjs BASE_URL ROOM LAUNCHER\n');
  process.exit(2);
}
const baseUrl = baseArgument.replace(/\/+$/, '');
const report = { test: 'udp-blocked', base_url: baseUrl, room, pages: {} };

/** The selected candidate pair's local and remote protocol and candidate type. */
function transport(page) {
  return page.evaluate(async () => {
    const pc = window.cauPeerConnection;
    if (!pc) return null;
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    if (!pair) return null;
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    return {
      local_protocol: local?.protocol ?? null,
      local_tcp_type: local?.tcpType ?? null,
      remote_protocol: remote?.protocol ?? null,
      remote_address: remote ? `${remote.address}:${remote.port}` : null,
    };
  });
}

await runReport(report, 60_000, async (report, setBrowser) => {
  // Served over plain HTTP from the test's veth address, the page is a secure context
  // (which the camera needs) only if Chromium is told to treat that origin as one.
  const secure = [`--unsafely-treat-insecure-origin-as-secure=${new URL(baseUrl).origin}`];
  const browser = await launchChromium(secure);
  setBrowser(browser);
  const mountainBrowser = await launchChromium(secure, launcher);
  const closeMountain = () => mountainBrowser.close().catch(() => {});
  process.on('exit', closeMountain);
  report.chromium = browser.version();
  const pages = { Office: await openPage(browser, 'Office'), Mountain: await openPage(mountainBrowser, 'Mountain') };
  let step = 'both join';
  try {
    for (const [name, page] of Object.entries(pages)) {
      await page.goto(joinUrl(baseUrl, room, name), { timeout: 15_000 });
    }
    step = 'each sees the other';
    await Promise.all([
      waitForRemoteVideo(pages.Office, 'Mountain', 30_000),
      waitForRemoteVideo(pages.Mountain, 'Office', 30_000),
    ]);
    step = 'media keeps flowing';
    const before = {};
    for (const [name, page] of Object.entries(pages)) before[name] = await inboundStats(page);
    await sleep(3000);
    for (const [name, page] of Object.entries(pages)) {
      const after = await inboundStats(page);
      report.pages[name] = {
        transport: await transport(page),
        frames_decoded: [before[name]?.video.framesDecoded ?? null, after?.video.framesDecoded ?? null],
        audio_packets: [before[name]?.audio.packetsReceived ?? null, after?.audio.packetsReceived ?? null],
      };
      if (!(after?.video.framesDecoded > before[name]?.video.framesDecoded)) throw new Error(`${name} decodes no more video`);
      if (!(after?.audio.packetsReceived > before[name]?.audio.packetsReceived)) throw new Error(`${name} receives no more audio`);
    }
  } catch (error) {
    await describePages(report, pages);
    throw new Error(`${step}: ${error.message.split('\n')[0]}`);
  } finally {
    await closeMountain();
  }
});
