// Proves the floor is enforced between three browsers in a scheduled meeting.
//
//   node tests/browser/floor-control.mjs BASE_URL CHAIR_LINK COMMUNE_A_LINK COMMUNE_B_LINK
//
// The links are full join links (`<base>/m/<meeting>?token=...`) of one chair-mode meeting.
// Communes A and B open their links with `&autojoin=1` and wait in the lobby; the chair
// opens its link and clicks "Bắt đầu cuộc họp" in its console. Then, measuring on B's and
// the chair's pages the inbound-rtp packets of A's audio track (found through the tile
// `video[data-site=<A>]`: its audio track's id is the stats' `trackIdentifier`, or else the
// server's mid mapping), the script proves:
//   1. before any grant, A's audio does not reach B or the chair (no packets for 2 s);
//   2. after A clicks "Xin phát biểu" and the chair clicks "Cho phát biểu" for A in the
//      console, it does (packets grow);
//   3. after the chair clicks "Thu hồi quyền phát biểu", it stops again.
// The server sends a commune only what it should see and hear, so before the grant B's
// and the chair's pages may hold no audio track of A at all (the report says which); any
// inbound-rtp stream of A's audio found either way must not grow. The chair sees every
// commune's picture, the communes see the chair's. It also checks that every remote
// `<video>` carries `data-site`, and that A's microphone track is enabled exactly while
// A holds the floor. Prints one line of JSON and
// exits 0 when every check passes, 1 otherwise; the whole run is bounded by 80 s.

import { describePages, launchChromium, openPage, runReport, sleep } from './common.mjs';

const [baseArgument, chairLink, linkA, linkB] = process.argv.slice(2);
if (!baseArgument || !chairLink || !linkA || !linkB) {
  process.stderr.write('usage: node floor-control.mjs BASE_URL CHAIR_LINK COMMUNE_A_LINK COMMUNE_B_LINK\n');
  process.exit(2);
}
const baseUrl = baseArgument.replace(/\/+$/, '');
const LINKS = { chair: chairLink, A: linkA, B: linkB };
const MEASURE_MS = 2000;

const report = { test: 'floor-control', base_url: baseUrl, pages: {}, checks: {} };

function autojoin(link) {
  const url = new URL(link, baseUrl);
  url.searchParams.set('autojoin', '1');
  return url.toString();
}

/** The packets received so far of `site`'s audio, as `page` sees it. */
async function audioFrom(page, site, rememberedIds = []) {
  return page.evaluate(async ([code, remembered]) => {
    const pc = window.cauPeerConnection;
    const video = document.querySelector(`video[data-site="${CSS.escape(code)}"]`);
    if (!pc || !video) return { found: false, why: !pc ? 'no peer connection' : 'no tile', packets: 0 };
    const trackId = video.srcObject?.getAudioTracks()[0]?.id ?? null;
    const ids = new Set([trackId, ...remembered].filter(Boolean));
    const participant = video.dataset.participantId;
    const mids = [...(window.cauTracksByMid?.values() ?? [])]
      .filter((track) => track.participant_id === participant && track.kind === 'audio')
      .map((track) => track.mid);
    const stats = await pc.getStats();
    // Every inbound audio stream that is A's: by its track, or else by the server's mids.
    let packets = 0;
    let method = 'none';
    stats.forEach((stat) => {
      if (stat.type !== 'inbound-rtp' || (stat.kind ?? stat.mediaType) !== 'audio') return;
      if (ids.has(stat.trackIdentifier)) {
        packets += stat.packetsReceived ?? 0;
        method = 'trackIdentifier';
      } else if (stat.mid !== undefined && mids.includes(stat.mid)) {
        packets += stat.packetsReceived ?? 0;
        if (method === 'none') method = 'mid';
      }
    });
    return { found: ids.size > 0 || mids.length > 0, method, track_id: trackId, mids, packets };
  }, [site, rememberedIds]);
}

/** Packets of A's audio on every listening page over `ms`. */
async function measure(listeners, site, ms) {
  const before = {};
  for (const [name, page] of Object.entries(listeners)) {
    before[name] = await audioFrom(page, site, rememberedTracks[name]);
  }
  await sleep(ms);
  const result = {};
  for (const [name, page] of Object.entries(listeners)) {
    const after = await audioFrom(page, site, rememberedTracks[name]);
    if (after.track_id) rememberedTracks[name] = [...new Set([...rememberedTracks[name], after.track_id])];
    result[name] = {
      before: before[name].packets, after: after.packets, method: after.method, track: after.track_id,
    };
  }
  return result;
}

/** A's audio track ids as each listener has seen them: a revoke may take the track away. */
const rememberedTracks = { B: [], chair: [] };

async function micEnabled(page) {
  return page.evaluate(() => {
    const video = document.getElementById('self-video');
    const stream = window.cauPeerConnection?.getSenders().find((s) => s.track?.kind === 'audio')?.track
      ?? video?.srcObject?.getAudioTracks()[0];
    return stream ? stream.enabled : null;
  });
}

await runReport(report, 80_000, async (report, setBrowser) => {
  const browser = await launchChromium();
  setBrowser(browser);
  report.chromium = browser.version();

  const pages = {};
  for (const name of Object.keys(LINKS)) pages[name] = await openPage(browser, name);
  let step = 'communes open their links';
  try {
    await Promise.all(['A', 'B'].map((name) => pages[name].goto(autojoin(LINKS[name]), { timeout: 10_000 })));
    step = 'communes wait in the lobby';
    for (const name of ['A', 'B']) {
      await pages[name].waitForSelector('body[data-lobby="true"] #lobby-card:not([hidden])', { timeout: 15_000 });
      report.pages[name] = { lobby: true };
    }

    step = 'the chair opens the meeting from its console';
    await pages.chair.goto(autojoin(LINKS.chair), { timeout: 10_000 });
    await pages.chair.waitForSelector('#console #open-meeting:not([hidden])', { timeout: 15_000 });
    await pages.chair.click('#open-meeting', { timeout: 5_000 });
    await pages.chair.waitForSelector('body[data-opened="true"]', { timeout: 10_000 });

    step = 'every page is in the meeting';
    const sites = {};
    for (const [name, page] of Object.entries(pages)) {
      await page.waitForSelector('body[data-view="meeting-view"][data-site]', { timeout: 15_000 });
      sites[name] = await page.evaluate(() => document.body.dataset.site);
      report.pages[name] = { ...report.pages[name], site: sites[name] };
    }
    report.sites = sites;

    // The chair sees every site; a commune sees the main screen (the chair, and whoever
    // holds the floor), not the other communes.
    step = 'the chair sees the communes, the communes see the chair';
    const seen = { chair: [sites.A, sites.B], A: [sites.chair], B: [sites.chair] };
    for (const [name, page] of Object.entries(pages)) {
      const others = seen[name];
      await page.waitForFunction((codes) => codes.every((code) => {
        const video = document.querySelector(`video[data-site="${CSS.escape(code)}"]`);
        return video !== null && video.videoWidth > 0;
      }), others, { timeout: 25_000, polling: 100 });
    }

    step = 'every remote <video> carries data-site';
    const unmarked = {};
    for (const [name, page] of Object.entries(pages)) {
      const videos = await page.evaluate(() => [...document.querySelectorAll('video')]
        // Participants' videos; the shared-screen stage is not one (it names its presenter).
        .filter((video) => video.id !== 'preview' && video.id !== 'self-video' && video.id !== 'screen-video')
        .map((video) => ({ site: video.dataset.site ?? null, participant: video.dataset.participant ?? null })));
      report.pages[name].remote_videos = videos.length;
      const missing = videos.filter((video) => !video.site);
      if (missing.length > 0 || videos.length < 2) unmarked[name] = videos;
    }
    report.checks.videos_carry_data_site = Object.keys(unmarked).length === 0;
    if (!report.checks.videos_carry_data_site) throw new Error(`videos without data-site: ${JSON.stringify(unmarked)}`);

    const listeners = { B: pages.B, chair: pages.chair };
    step = 'before any grant, A is not heard';
    report.checks.mic_off_before_grant = (await micEnabled(pages.A)) === false;
    report.a_audio_track_before_grant = {};
    for (const [name, page] of Object.entries(listeners)) {
      report.a_audio_track_before_grant[name] = (await audioFrom(page, sites.A)).track_id !== null;
    }
    const silent = await measure(listeners, sites.A, MEASURE_MS);
    report.before_grant = silent;
    for (const [name, figures] of Object.entries(silent)) {
      if (figures.after > figures.before) throw new Error(`${name} received ${figures.after - figures.before} packets of A's audio before any grant`);
    }

    step = 'A asks for the floor';
    await pages.A.waitForSelector('#floor-button:not([hidden]):not([disabled])', { timeout: 5_000 });
    await pages.A.click('#floor-button', { timeout: 5_000 });
    const grant = `#queue-list button[data-action="grant"][data-for-site="${sites.A}"]`;
    await pages.chair.waitForSelector(grant, { timeout: 10_000 });

    step = 'the chair gives A the floor';
    await pages.chair.click(grant, { timeout: 5_000 });
    await pages.A.waitForSelector('#own-floor:not([hidden])', { timeout: 10_000 });
    report.checks.mic_on_with_floor = (await micEnabled(pages.A)) === true;

    step = 'with the floor, A\'s audio track is on the listeners\' tiles';
    for (const page of Object.values(listeners)) {
      await page.waitForFunction((code) => {
        const video = document.querySelector(`video[data-site="${CSS.escape(code)}"]`);
        return (video?.srcObject?.getAudioTracks().length ?? 0) > 0;
      }, sites.A, { timeout: 10_000, polling: 100 });
    }

    step = 'with the floor, A is heard';
    let heard = null;
    const deadline = Date.now() + 12_000;
    while (Date.now() < deadline) {
      const figures = await measure(listeners, sites.A, MEASURE_MS);
      heard = figures;
      if (Object.values(figures).every((f) => f.after - f.before >= 10)) break;
    }
    report.after_grant = heard;
    for (const [name, figures] of Object.entries(heard)) {
      if (!(figures.after - figures.before >= 10)) throw new Error(`${name} did not receive A's audio after the grant: ${JSON.stringify(figures)}`);
    }

    step = 'the chair takes the floor back';
    await pages.chair.click('#revoke-floor', { timeout: 5_000 });
    await pages.A.waitForSelector('#own-floor[hidden]', { state: 'attached', timeout: 10_000 });
    await pages.chair.waitForSelector('body[data-floor=""]', { state: 'attached', timeout: 10_000 });
    report.checks.mic_off_after_revoke = (await micEnabled(pages.A)) === false;

    step = 'after the revoke, A is not heard';
    let stopped = null;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      stopped = await measure(listeners, sites.A, MEASURE_MS);
      if (Object.values(stopped).every((f) => f.after === f.before)) break;
    }
    report.after_revoke = stopped;
    for (const [name, figures] of Object.entries(stopped)) {
      if (figures.after > figures.before) throw new Error(`${name} still receives A's audio after the revoke: ${JSON.stringify(figures)}`);
    }
    for (const check of ['mic_off_before_grant', 'mic_on_with_floor', 'mic_off_after_revoke']) {
      if (!report.checks[check]) throw new Error(`A's microphone track state is wrong: ${check} failed`);
    }
  } catch (error) {
    await describePages(report, pages);
    throw new Error(`${step}: ${error.message.split('\n')[0]}`);
  }
});
