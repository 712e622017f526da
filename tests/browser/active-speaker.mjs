// Proves the site that speaks becomes the meeting's active speaker and fills the other
// sites' main screens, between three browsers in an open-discussion meeting.
//
//   node tests/browser/active-speaker.mjs BASE_URL CHAIR_LINK COMMUNE_A_LINK COMMUNE_B_LINK
//
// The links are full join links of one open-mode meeting. Chromium's fake microphone
// plays a generated sound made like speech: bursts of tones with short gaps (a steady tone
// would be taken for noise and suppressed by the browser's audio processing). Every page
// hears it; a page whose microphone is off (its track disabled) sends digital silence,
// whose packets carry the audio level 127. The chair opens the meeting, A and B join,
// then:
//   1. every site turns its microphone off: the active speaker goes (after the server's
//      silence hold), and B's main screen shows the chair alone;
//   2. A turns its microphone on: the chair's and B's pages are told A is the active
//      speaker (`body[data-active-speaker]`), A's tile is highlighted there and on A's own
//      page, and B's main screen shows A's picture beside the chair's. Neither the chair
//      nor B, silent, is ever announced after step 1.
// Reports how long after A's microphone came on each page was told, and how long until
// B's main screen showed A's picture. Prints one line of JSON and exits 0 when every check
// passes, 1 otherwise; the whole run is bounded by 80 s.

import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describePages, launchChromium, openPage, runReport, sleep } from './common.mjs';

const [baseArgument, chairLink, linkA, linkB] = process.argv.slice(2);
if (!baseArgument || !chairLink || !linkA || !linkB) {
  process.stderr.write('usage: node active-speaker.mjs BASE_URL CHAIR_LINK COMMUNE_A_LINK COMMUNE_B_LINK\n');
  process.exit(2);
}
const baseUrl = baseArgument.replace(/\/+$/, '');
const LINKS = { chair: chairLink, A: linkA, B: linkB };
/** The server drops a silent speaker after 5 s (speaker.rs); the levels fade in under 1 s. */
const SILENCE_TIMEOUT_MS = 12_000;
/** A new speaker is due about 1.5 s after it starts (0.2-0.4 s of metering, then 1 s of
 * hysteresis); this bound leaves room for a loaded machine, not for a slower rule. */
const ANNOUNCE_TIMEOUT_MS = 5_000;
/** Announcement, then a renegotiation and a keyframe before B shows A's picture. */
const SHOWN_TIMEOUT_MS = 10_000;

const report = { test: 'active-speaker', base_url: baseUrl, pages: {}, checks: {} };

/**
 * Writes a WAV file Chromium loops as its fake microphone: 48 kHz mono, 16 bit, 3 s of
 * 200 ms tone bursts (300 to 700 Hz, 10 ms fades) separated by 100 ms of silence, at
 * about -12 dBFS.
 */
function writeSpeechLikeWav() {
  const rate = 48_000;
  const samples = rate * 3;
  const data = Buffer.alloc(samples * 2);
  const frequencies = [300, 450, 600, 700, 400];
  for (let i = 0; i < samples; i += 1) {
    const t = i / rate;
    const cycle = Math.floor(t / 0.3);
    const inCycle = t - cycle * 0.3;
    let value = 0;
    if (inCycle < 0.2) {
      const fade = Math.min(1, inCycle / 0.01, (0.2 - inCycle) / 0.01);
      const frequency = frequencies[cycle % frequencies.length];
      value = 0.25 * fade * Math.sin(2 * Math.PI * frequency * t);
    }
    data.writeInt16LE(Math.round(value * 32767), i * 2);
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8);
  header.write('fmt ', 12);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  const path = join(tmpdir(), `cau-speech-${process.pid}.wav`);
  writeFileSync(path, Buffer.concat([header, data]));
  return path;
}

function autojoin(link) {
  const url = new URL(link, baseUrl);
  url.searchParams.set('autojoin', '1');
  return url.toString();
}

/** Whether the page's microphone track is on, as it is sent. */
async function micEnabled(page) {
  return page.evaluate(() => {
    const sender = window.cauPeerConnection?.getSenders().find((s) => s.track?.kind === 'audio');
    return sender ? sender.track.enabled : null;
  });
}

/** Turns the page's microphone on or off with its own button, and checks it took. */
async function setMicrophone(page, on) {
  if ((await micEnabled(page)) !== on) await page.click('#mic-button', { timeout: 5_000 });
  const enabled = await micEnabled(page);
  if (enabled !== on) throw new Error(`the microphone is ${enabled ? 'on' : 'off'} after its button`);
}

/** Keeps, in the page, every active speaker it was told of from now on. */
async function recordSpeakers(page) {
  await page.evaluate(() => {
    window.cauSpeakers = [];
    const observer = new MutationObserver(() => {
      window.cauSpeakers.push(document.body.dataset.activeSpeaker ?? '');
    });
    observer.observe(document.body, { attributes: true, attributeFilter: ['data-active-speaker'] });
  });
}

/** The level of the page's own microphone as the browser measures it (0 to 1), if known. */
async function ownLevel(page) {
  return page.evaluate(async () => {
    const stats = await window.cauPeerConnection?.getStats();
    let level = null;
    stats?.forEach((stat) => {
      if (stat.type === 'media-source' && stat.kind === 'audio') level = stat.audioLevel ?? null;
    });
    return level;
  });
}

await runReport(report, 80_000, async (report, setBrowser) => {
  const wav = writeSpeechLikeWav();
  const browser = await launchChromium([`--use-file-for-fake-audio-capture=${wav}`]);
  setBrowser(browser);
  report.chromium = browser.version();

  const pages = {};
  for (const name of Object.keys(LINKS)) pages[name] = await openPage(browser, name);
  let step = 'the chair opens the meeting';
  try {
    await pages.chair.goto(autojoin(LINKS.chair), { timeout: 10_000 });
    await pages.chair.waitForSelector('#console #open-meeting:not([hidden])', { timeout: 15_000 });
    await pages.chair.click('#open-meeting', { timeout: 5_000 });
    await pages.chair.waitForSelector('body[data-opened="true"]', { timeout: 10_000 });

    step = 'the communes join';
    await Promise.all(['A', 'B'].map((name) => pages[name].goto(autojoin(LINKS[name]), { timeout: 10_000 })));
    const sites = {};
    for (const [name, page] of Object.entries(pages)) {
      await page.waitForSelector('body[data-view="meeting-view"][data-site][data-mode="open"]', { timeout: 15_000 });
      await page.waitForFunction(() => window.cauPeerConnection?.getSenders().some((s) => s.track?.kind === 'audio'), null, { timeout: 15_000 });
      sites[name] = await page.evaluate(() => document.body.dataset.site);
    }
    report.sites = sites;

    step = 'B sees the chair';
    await pages.B.waitForFunction((code) => {
      const video = document.querySelector(`#main-tiles video[data-site="${CSS.escape(code)}"]`);
      return video !== null && video.videoWidth > 0;
    }, sites.chair, { timeout: 20_000, polling: 100 });

    step = 'every site turns its microphone off';
    for (const page of Object.values(pages)) await setMicrophone(page, false);
    const quietStarted = Date.now();
    // Nobody, and still nobody a moment later: a site that was about to take over when
    // the microphones went off (its level fades for about half a second) would have by then.
    for (let settled = false; !settled;) {
      for (const page of Object.values(pages)) {
        const left = SILENCE_TIMEOUT_MS - (Date.now() - quietStarted);
        await page.waitForSelector('body[data-active-speaker=""]', { state: 'attached', timeout: Math.max(left, 1) });
      }
      await sleep(1500);
      const speakers = await Promise.all(Object.values(pages).map((page) => page.evaluate(() => document.body.dataset.activeSpeaker)));
      settled = speakers.every((code) => code === '');
    }
    report.nobody_speaking_after_ms = Date.now() - quietStarted;
    step = 'with nobody speaking, B\'s main screen shows the chair alone';
    await pages.B.waitForFunction(
      (code) => [...document.querySelectorAll('#main-tiles video')].map((v) => v.dataset.site).join() === code,
      sites.chair,
      { timeout: 10_000, polling: 100 },
    );
    for (const page of Object.values(pages)) await recordSpeakers(page);

    step = 'A speaks';
    await setMicrophone(pages.A, true);
    const started = Date.now();
    const announced = {};
    await Promise.all(['B', 'chair', 'A'].map(async (name) => {
      await pages[name].waitForFunction(
        (code) => document.body.dataset.activeSpeaker === code,
        sites.A,
        { timeout: ANNOUNCE_TIMEOUT_MS, polling: 50 },
      );
      announced[name] = Date.now() - started;
    }));
    report.announced_after_ms = announced;
    report.a_microphone_level = await ownLevel(pages.A);

    step = 'B\'s main screen shows A beside the chair';
    await pages.B.waitForFunction((code) => {
      const video = document.querySelector(`#main-tiles video[data-site="${CSS.escape(code)}"]`);
      return video !== null && video.videoWidth > 0;
    }, sites.A, { timeout: SHOWN_TIMEOUT_MS, polling: 50 });
    report.shown_on_b_after_ms = Date.now() - started;
    report.b_main_screen = await pages.B.evaluate(
      () => [...document.querySelectorAll('#main-tiles video')].map((v) => v.dataset.site),
    );
    report.checks.b_shows_chair_and_a = report.b_main_screen.length === 2
      && report.b_main_screen.includes(sites.chair) && report.b_main_screen.includes(sites.A);

    step = 'A\'s tile is highlighted';
    const highlighted = (code) => document.querySelector(`#main-tiles video[data-site="${CSS.escape(code)}"]`)
      ?.closest('.tile')?.classList.contains('speaking') ?? false;
    report.checks.highlight_on_b = await pages.B.evaluate(highlighted, sites.A);
    report.checks.highlight_on_chair = await pages.chair.evaluate(
      (code) => document.querySelector(`video[data-site="${CSS.escape(code)}"]`)
        ?.closest('.tile')?.classList.contains('speaking') ?? false,
      sites.A,
    );
    report.checks.own_highlight_on_a = await pages.A.evaluate(
      () => document.getElementById('self-tile').classList.contains('speaking'),
    );

    step = 'nobody silent was announced';
    // Two more seconds: a silent site's announcement would have had time to come.
    await sleep(2000);
    const told = {};
    for (const [name, page] of Object.entries(pages)) told[name] = await page.evaluate(() => window.cauSpeakers);
    report.announcements = told;
    // Every state sets the attribute again, so the list repeats itself; '' is nobody.
    report.checks.only_a_announced = Object.values(told)
      .every((list) => list.filter(Boolean).every((code) => code === sites.A));

    for (const [check, passed] of Object.entries(report.checks)) {
      if (!passed) throw new Error(`check failed: ${check}`);
    }
  } catch (error) {
    await describePages(report, pages);
    throw new Error(`${step}: ${error.message.split('\n')[0]}`);
  }
});
