// A participant whose browser has neither camera nor microphone still takes part.
//
//   node tests/browser/no-devices.mjs BASE_URL ROOM
//
// Alice joins ROOM with the fake camera and microphone; Kiosk joins from a page whose
// `getUserMedia` fails as on a PC with no devices (`NotFoundError`: the page is told so
// before any of its scripts run). Kiosk's page must say it has no camera or microphone,
// connect, show Alice's picture and receive her audio; Alice's page must show Kiosk as a
// participant. Prints one line of JSON; exits 0 when every check passes, 1 otherwise.
// Bounded by 50 s.

import {
  describePages, inboundStats, joinUrl, launchChromium, openPage, parseArguments, runReport,
  sleep, snapshot, waitForRemoteVideo,
} from './common.mjs';

const { baseUrl, room } = parseArguments('no-devices.mjs');
const report = { test: 'no-devices', base_url: baseUrl, room, pages: {} };

await runReport(report, 50_000, async (report, setBrowser) => {
  const browser = await launchChromium();
  setBrowser(browser);
  report.chromium = browser.version();
  const pages = { Alice: await openPage(browser, 'Alice'), Kiosk: await openPage(browser, 'Kiosk') };
  await pages.Kiosk.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('no device', 'NotFoundError'));
  });
  let step = 'both join';
  try {
    await Promise.all(Object.entries(pages).map(([name, page]) => page.goto(joinUrl(baseUrl, room, name), { timeout: 10_000 })));
    step = 'Kiosk sees Alice';
    await waitForRemoteVideo(pages.Kiosk, 'Alice', 25_000);
    step = 'Kiosk knows it has no camera or microphone';
    report.pages.Kiosk = {
      media_status: await pages.Kiosk.evaluate(() => document.getElementById('media-status').dataset.i18n ?? null),
    };
    if (report.pages.Kiosk.media_status !== 'media.none') throw new Error(`Kiosk's media status is ${report.pages.Kiosk.media_status}`);
    step = 'Alice shows Kiosk';
    await pages.Alice.waitForSelector('video[data-participant="Kiosk"]', { state: 'attached', timeout: 15_000 });
    step = 'Kiosk receives Alice\'s media';
    const before = await inboundStats(pages.Kiosk);
    await sleep(2000);
    const after = await inboundStats(pages.Kiosk);
    Object.assign(report.pages.Kiosk, {
      connection_state: (await snapshot(pages.Kiosk)).connection_state,
      frames_decoded: [before?.video.framesDecoded ?? null, after?.video.framesDecoded ?? null],
      audio_packets: [before?.audio.packetsReceived ?? null, after?.audio.packetsReceived ?? null],
    });
    if (!(after?.video.framesDecoded > before?.video.framesDecoded)) throw new Error('Kiosk decodes no more frames of Alice');
    if (!(after?.audio.packetsReceived > before?.audio.packetsReceived)) throw new Error('Kiosk receives no more audio of Alice');
  } catch (error) {
    await describePages(report, pages);
    throw new Error(`${step}: ${error.message.split('\n')[0]}`);
  }
});
