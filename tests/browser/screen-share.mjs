// The floor holder shares its screen and every other site sees it, large; it stops and
// the screen leaves every page.
//
//   node tests/browser/screen-share.mjs BASE_URL CHAIR_LINK COMMUNE_LINK OTHER_LINK
//
// A chair-mode meeting: the commune waits in the lobby, the chair opens the meeting and
// gives the commune the floor; a second commune ("other") joins and has no floor. The
// commune's "screen" is a canvas of 1000x600 whose picture changes every frame: its
// page's `getDisplayMedia` returns that canvas's stream, since a headless browser has no
// screen to capture; everything after it is the real path (the share button,
// `replaceTrack` on the screen's media line, the server, the others' screen stage).
// Checks: the other commune cannot share (no button); after the commune clicks "share",
// the chair and the other commune show a 1000x600 picture on their screen stage whose
// frames advance; after "stop", both stages are hidden again. Prints one line of JSON;
// exits 0 when every check passes, 1 otherwise. Bounded by 70 s.

import { describePages, launchChromium, openPage, runReport, sleep } from './common.mjs';
import { enterWithFloor } from './chair-and-commune.mjs';

const [baseArgument, chairLink, communeLink, otherLink] = process.argv.slice(2);
if (!otherLink) {
  process.stderr.write('usage: node screen-share.mjs BASE_URL CHAIR_LINK COMMUNE_LINK OTHER_LINK\n');
  process.exit(2);
}
const baseUrl = baseArgument.replace(/\/+$/, '');
const report = { test: 'screen-share', base_url: baseUrl, pages: {} };

function autojoin(target) {
  const url = new URL(target, baseUrl);
  url.searchParams.set('autojoin', '1');
  return url.toString();
}

/** A canvas standing in for a screen: 1000x600, a moving bar, 15 frames a second. */
const fakeScreen = () => {
  navigator.mediaDevices.getDisplayMedia = async () => {
    const canvas = document.createElement('canvas');
    canvas.width = 1000;
    canvas.height = 600;
    const context = canvas.getContext('2d');
    let frame = 0;
    setInterval(() => {
      frame += 1;
      context.fillStyle = '#f4f4f4';
      context.fillRect(0, 0, 1000, 600);
      context.fillStyle = '#b00020';
      context.fillRect((frame * 13) % 1000, 0, 40, 600);
      context.fillStyle = '#000';
      context.font = '48px sans-serif';
      context.fillText(`Báo cáo ${frame}`, 50, 300);
    }, 66);
    return canvas.captureStream(15);
  };
};

/** The screen stage of `page`: shown, the picture's size, and frames presented so far. */
function stage(page) {
  return page.evaluate(() => {
    const element = document.getElementById('screen-stage');
    const video = document.getElementById('screen-video');
    const quality = video?.getVideoPlaybackQuality?.();
    return {
      shown: element ? !element.hidden : false,
      width: video?.videoWidth ?? 0,
      height: video?.videoHeight ?? 0,
      frames: quality?.totalVideoFrames ?? 0,
      presenter: video?.dataset.participantId ?? null,
    };
  });
}

async function waitForStage(page, test, limitMs) {
  const deadline = Date.now() + limitMs;
  let seen = await stage(page);
  while (!test(seen) && Date.now() < deadline) {
    await sleep(100);
    seen = await stage(page);
  }
  return seen;
}

await runReport(report, 70_000, async (report, setBrowser) => {
  const browser = await launchChromium();
  setBrowser(browser);
  report.chromium = browser.version();
  const pages = {
    chair: await openPage(browser, 'chair'),
    commune: await openPage(browser, 'commune'),
    other: await openPage(browser, 'other'),
  };
  await pages.commune.addInitScript(fakeScreen);
  let step = 'the commune gets the floor';
  try {
    const pair = { chair: pages.chair, commune: pages.commune };
    const sites = await enterWithFloor(pair, autojoin(chairLink), autojoin(communeLink), (now) => {
      step = now;
    });
    report.sites = sites;
    step = 'the other commune enters';
    await pages.other.goto(autojoin(otherLink), { timeout: 10_000 });
    await pages.other.waitForSelector('body[data-view="meeting-view"]', { timeout: 15_000 });
    report.other_may_share = await pages.other.evaluate(() => !document.getElementById('screen-button').hidden);
    if (report.other_may_share) throw new Error('a site without the floor is offered to share its screen');

    step = 'the commune shares its screen';
    await pages.commune.waitForSelector('#screen-button:not([hidden])', { timeout: 10_000 });
    const sharedAt = Date.now();
    await pages.commune.click('#screen-button', { timeout: 5_000 });
    for (const name of ['chair', 'other']) {
      const seen = await waitForStage(pages[name], (s) => s.shown && s.width === 1000, 15_000);
      if (!(seen.shown && seen.width === 1000 && seen.height === 600)) {
        throw new Error(`${name} does not show the 1000x600 screen: ${JSON.stringify(seen)}`);
      }
      report.pages[name] = { screen_after_ms: Date.now() - sharedAt, first: seen };
    }
    await sleep(2000);
    for (const name of ['chair', 'other']) {
      const later = await stage(pages[name]);
      report.pages[name].later = later;
      if (!(later.frames > report.pages[name].first.frames)) throw new Error(`${name}'s screen does not advance`);
    }

    step = 'the commune stops sharing';
    await pages.commune.click('#screen-button', { timeout: 5_000 });
    for (const name of ['chair', 'other']) {
      const seen = await waitForStage(pages[name], (s) => !s.shown, 10_000);
      report.pages[name].after_stop = seen;
      if (seen.shown) throw new Error(`${name} still shows the screen after it stopped`);
    }
  } catch (error) {
    await describePages(report, pages);
    // What the presenter sends, by media line: whether the screen left the browser.
    report.presenter_outbound = await pages.commune.evaluate(async () => {
      const pc = window.cauPeerConnection;
      const out = [];
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          out.push({ mid: s.mid, rid: s.rid ?? null, packets: s.packetsSent, frames: s.framesEncoded ?? null, active: s.active ?? null, limitation: s.qualityLimitationReason ?? null });
        }
      });
      return out;
    }).catch((e) => String(e));
    throw new Error(`${step}: ${error.message.split('\n')[0]}`);
  }
});
