// A site on a capped line: audio first, the best video that fits, and no one else pays.
//
//   node tests/browser/capped-line.mjs BASE_URL ROOM MODE LINE_NETNS LINK LAUNCHER KBIT HOLD_S
//
// The site "Poor" runs its Chromium in a network namespace of its own through LAUNCHER
// (a script that starts Chromium there) and reaches the server through namespace
// LINE_NETNS. The script caps interface LINK of that namespace at KBIT kbit/s (an htb
// class whose queue holds a quarter of a second at that rate, beyond which packets are
// dropped, as a slow line's modem does) for HOLD_S seconds, then lifts the cap (raising the
// class's rate, so that what its queue holds drains). Every page's `getStats()` is sampled
// every 250 ms throughout.
//
// MODE `downlink`: LINK is the line's link towards the site, so the cap is Poor's
// downlink. "Chair" sends its camera (three simulcast layers) and microphone, Poor only
// its microphone, and "Good" (on a clean line) has no devices. The script measures when
// Poor's picture of Chair goes down to the lowest layer (or pauses), when it is back at the
// top layer after the cap, Poor's audio loss under the cap, every freeze of Poor's and
// Good's picture, and the height Good receives throughout.
//
// MODE `uplink`: LINK is the line's link towards the server, so the cap is Poor's uplink.
// Poor sends its camera and microphone, Good has no devices; the script measures Good's
// audio loss from Poor under the cap, and whether Poor's video still arrives.
//
// MODE `lossy`: as `uplink`, but instead of a cap the line drops KBIT percent of the UDP
// packets Poor sends, at random (iptables' statistic match on LINK, in LINE_NETNS), for
// HOLD_S seconds. The figures are named as for a cap ("under_cap": while impaired).
//
// Prints one line of JSON; exits 0 when every step happened, 1 otherwise. The test that
// runs it judges the figures. Bounded by 90 s plus HOLD_S.

import { execFileSync } from 'node:child_process';
import {
  describePages, joinUrl, launchChromium, openPage, runReport, sleep, waitForRemoteVideo,
} from './common.mjs';

const [baseArgument, room, mode, netns, link, launcher, kbitArgument, holdArgument] = process.argv.slice(2);
if (!holdArgument || !['downlink', 'uplink', 'lossy'].includes(mode)) {
  process.stderr.write('usage: node capped-line.mjs BASE_URL ROOM downlink|uplink|lossy LINE_NETNS LINK LAUNCHER KBIT|PERCENT HOLD_S\n');
  process.exit(2);
}
const baseUrl = baseArgument.replace(/\/+$/, '');
const kbit = Number(kbitArgument);
const holdMs = Number(holdArgument) * 1000;
const SAMPLE_MS = 250;
/** The capped line's queue, in seconds of its rate. */
const QUEUE_SECONDS = 0.25;
/** The top layer's height: the fake camera gives 1280x720. */
const TOP_HEIGHT = 720;
/** The lowest layer: a quarter of the camera's size. */
const LOWEST_HEIGHT = 180;

const report = { test: 'capped-line', mode, base_url: baseUrl, kbit, hold_ms: holdMs, pages: {} };

function tc(...args) {
  execFileSync('ip', ['netns', 'exec', netns, 'tc', ...args]);
}

/** The iptables rule of `lossy` mode, without its -A/-D. */
function lossRule() {
  return ['FORWARD', '-o', link, '-p', 'udp', '-m', 'statistic', '--mode', 'random',
    '--probability', String(kbit / 100), '-j', 'DROP'];
}

function cap() {
  if (mode === 'lossy') {
    execFileSync('ip', ['netns', 'exec', netns, 'iptables-legacy', '-A', ...lossRule()]);
    return;
  }
  tc('qdisc', 'add', 'dev', link, 'root', 'handle', '1:', 'htb', 'default', '1');
  tc('class', 'add', 'dev', link, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', `${kbit}kbit`, 'ceil', `${kbit}kbit`);
  const queueBytes = Math.max(3000, Math.round((kbit * 1000 / 8) * QUEUE_SECONDS));
  tc('qdisc', 'add', 'dev', link, 'parent', '1:1', 'handle', '10:', 'bfifo', 'limit', String(queueBytes));
}

function uncap() {
  if (mode === 'lossy') {
    try {
      execFileSync('ip', ['netns', 'exec', netns, 'iptables-legacy', '-D', ...lossRule()], { stdio: 'ignore' });
    } catch {
      // Not impaired, or the namespace is gone already.
    }
    return;
  }
  try {
    // Lifted as a line that gets better is: the class's rate rises and what its queue
    // holds drains. Deleting the qdisc would discard the packets queued under the cap,
    // audio among them, and the receiver would count the harness's own drops as loss
    // under the cap (seen: 1 to 4 audio packets lost in the sample just after the lift).
    tc('class', 'change', 'dev', link, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '1gbit', 'ceil', '1gbit',
      'burst', '256k', 'cburst', '256k');
  } catch {
    // Not capped, or the namespace is gone already.
  }
}

/** What a page receives, summed by kind, and whether it says its video is paused. */
function readStats(page) {
  return page.evaluate(async () => {
    const pc = window.cauPeerConnection;
    if (!pc) return null;
    const video = { height: 0, framesDecoded: 0, freezeCount: 0, freezeSeconds: 0, pliCount: 0, nackCount: 0, packetsLost: 0, keyFramesDecoded: 0, framesDropped: 0 };
    const audio = { packetsReceived: 0, packetsLost: 0, concealedSamples: 0, silentConcealedSamples: 0, totalSamplesReceived: 0 };
    (await pc.getStats()).forEach((stat) => {
      if (stat.type !== 'inbound-rtp') return;
      if (stat.kind === 'video') {
        video.height = Math.max(video.height, stat.frameHeight ?? 0);
        video.framesDecoded += stat.framesDecoded ?? 0;
        video.freezeCount += stat.freezeCount ?? 0;
        video.freezeSeconds += stat.totalFreezesDuration ?? 0;
        video.pliCount += stat.pliCount ?? 0;
        video.nackCount += stat.nackCount ?? 0;
        video.packetsLost += stat.packetsLost ?? 0;
        video.keyFramesDecoded += stat.keyFramesDecoded ?? 0;
        video.framesDropped += stat.framesDropped ?? 0;
      } else if (stat.kind === 'audio') {
        audio.packetsReceived += stat.packetsReceived ?? 0;
        audio.packetsLost += Math.max(0, stat.packetsLost ?? 0);
        audio.concealedSamples += stat.concealedSamples ?? 0;
        audio.silentConcealedSamples += stat.silentConcealedSamples ?? 0;
        audio.totalSamplesReceived += stat.totalSamplesReceived ?? 0;
      }
    });
    return { video, audio, paused: document.body.dataset.videoPaused === 'true' };
  });
}

/**
 * What a publishing page sends: per video layer (by rid) the bytes sent with their
 * headers, resends among them, the encoder's target and what limits it; its audio
 * packets; and what its own estimator allows (`availableOutgoingBitrate`).
 */
function readSender(page) {
  return page.evaluate(async () => {
    const pc = window.cauPeerConnection;
    if (!pc) return null;
    const layers = {};
    let audioPackets = 0;
    let available = null;
    (await pc.getStats()).forEach((stat) => {
      if (stat.type === 'outbound-rtp' && stat.kind === 'video') {
        layers[stat.rid ?? '-'] = {
          bytes: (stat.bytesSent ?? 0) + (stat.headerBytesSent ?? 0),
          resent: stat.retransmittedBytesSent ?? 0,
          frames: stat.framesEncoded ?? 0,
          height: stat.frameHeight ?? 0,
          target: stat.targetBitrate ?? 0,
          limit: stat.qualityLimitationReason ?? '',
        };
      } else if (stat.type === 'outbound-rtp' && stat.kind === 'audio') {
        audioPackets += stat.packetsSent ?? 0;
      } else if (stat.type === 'candidate-pair' && stat.nominated && stat.availableOutgoingBitrate !== undefined) {
        available = stat.availableOutgoingBitrate;
      }
    });
    return { layers, audioPackets, available };
  });
}

/**
 * A publisher's timeline from `from` to `to` (ms from the origin), one entry a sample:
 * kbit/s its estimator allowed, and per layer the kbit/s sent since the sample before
 * (resends among them), the frame height and what limited its quality.
 */
function senderTimeline(timeline, from, to) {
  const entries = [];
  for (let i = 1; i < timeline.length; i += 1) {
    const [before, after] = [timeline[i - 1], timeline[i]];
    if (after.t < from || after.t > to) continue;
    const ms = after.t - before.t;
    const layers = {};
    for (const [rid, layer] of Object.entries(after.layers)) {
      const earlier = before.layers[rid] ?? { bytes: 0, resent: 0, frames: 0 };
      const frames = layer.frames - earlier.frames;
      if (frames === 0 && layer.bytes === earlier.bytes) continue;
      layers[rid] = {
        kbit: Math.round(((layer.bytes - earlier.bytes) * 8) / ms),
        resent_kbit: Math.round(((layer.resent - earlier.resent) * 8) / ms),
        frames,
        height: layer.height,
        limit: layer.limit,
      };
    }
    entries.push({
      t: after.t,
      available_kbit: after.available === null ? null : Math.round(after.available / 1000),
      audio_packets: after.audioPackets - before.audioPackets,
      layers,
    });
  }
  return entries;
}

/** Samples `pages` every SAMPLE_MS until `stop()` is called; returns the timelines. */
function sampleAll(pages, origin, read = readStats) {
  const timelines = Object.fromEntries(Object.keys(pages).map((name) => [name, []]));
  let running = true;
  const done = (async () => {
    while (running) {
      const started = Date.now();
      await Promise.all(Object.entries(pages).map(async ([name, page]) => {
        const stats = await read(page).catch(() => null);
        if (stats) timelines[name].push({ t: Date.now() - origin, ...stats });
      }));
      await sleep(Math.max(0, SAMPLE_MS - (Date.now() - started)));
    }
  })();
  return {
    timelines,
    latest: (name) => timelines[name][timelines[name].length - 1] ?? null,
    stop: async () => {
      running = false;
      await done;
      return timelines;
    },
  };
}

/** Waits until `test(latest sample of name)` holds; resolves to ms since `from`, or null. */
async function waitFor(sampler, name, from, limitMs, test) {
  const deadline = from + limitMs;
  let seen = 0;
  while (Date.now() < deadline) {
    const timeline = sampler.timelines[name];
    for (; seen < timeline.length; seen += 1) {
      const sample = timeline[seen];
      if (sample.t + sampler.origin >= from && test(sample, timeline[seen - 1])) return sample.t + sampler.origin - from;
    }
    await sleep(50);
  }
  return null;
}

/**
 * Every freeze Chromium counted, with its length (freezes are counted when they end),
 * and whether the page said its video was paused for its line meanwhile: such a
 * stillness is the server's choice, not a switch gone wrong; what of it came after the
 * last paused sample (`after_pause_ms`, to within a sample) is the wait for the
 * picture once the video resumed. Judged on the whole timeline: a freeze counted after
 * some moment may have begun before it.
 */
function freezes(timeline) {
  const found = [];
  for (let i = 1; i < timeline.length; i += 1) {
    const [before, after] = [timeline[i - 1].video, timeline[i].video];
    if (after.freezeCount > before.freezeCount) {
      const ms = Math.round((after.freezeSeconds - before.freezeSeconds) * 1000);
      const from = timeline[i].t - ms - SAMPLE_MS;
      const paused = timeline.filter((s) => s.paused && s.t >= from && s.t <= timeline[i].t);
      const freeze = { t: timeline[i].t, count: after.freezeCount - before.freezeCount, ms, while_paused: paused.length > 0 };
      if (paused.length > 0) freeze.after_pause_ms = timeline[i].t - paused[paused.length - 1].t;
      found.push(freeze);
    }
  }
  return found;
}

/**
 * Audio received and lost between two samples, and the share concealed. A sender's
 * pauses under DTX are concealed too, as silence (`silentConcealedSamples`): that is
 * the codec working, not audio lost, so `concealed_percent` leaves it out and
 * `silent_concealed_percent` says how much it was.
 */
function audioBetween(first, last) {
  const received = last.audio.packetsReceived - first.audio.packetsReceived;
  const lost = last.audio.packetsLost - first.audio.packetsLost;
  const samples = last.audio.totalSamplesReceived - first.audio.totalSamplesReceived;
  const concealed = last.audio.concealedSamples - first.audio.concealedSamples;
  const silent = last.audio.silentConcealedSamples - first.audio.silentConcealedSamples;
  return {
    received,
    lost,
    loss_percent: received + lost > 0 ? (100 * lost) / (received + lost) : null,
    concealed_percent: samples > 0 ? (100 * (concealed - silent)) / samples : null,
    silent_concealed_percent: samples > 0 ? (100 * silent) / samples : null,
  };
}

/** The sample of `timeline` nearest after `t` (ms from the origin). */
function sampleAt(timeline, t) {
  return timeline.find((sample) => sample.t >= t) ?? timeline[timeline.length - 1];
}

const noDevices = () => {
  navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('no device', 'NotFoundError'));
};
const microphoneOnly = () => {
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (constraints) => (constraints?.video
    ? Promise.reject(new DOMException('no camera', 'NotFoundError'))
    : original(constraints));
};

await runReport(report, 90_000 + holdMs, async (report, setBrowser) => {
  // Served over plain HTTP from the test's veth address, the page is a secure context
  // (which the camera needs) only if Chromium is told to treat that origin as one.
  const secure = [`--unsafely-treat-insecure-origin-as-secure=${new URL(baseUrl).origin}`];
  const browser = await launchChromium(secure);
  setBrowser(browser);
  const poorBrowser = await launchChromium(secure, launcher);
  const closePoor = () => poorBrowser.close().catch(() => {});
  process.on('exit', closePoor);
  report.chromium = browser.version();
  const pages = {};
  if (mode === 'downlink') pages.Chair = await openPage(browser, 'Chair');
  pages.Poor = await openPage(poorBrowser, 'Poor');
  pages.Good = await openPage(browser, 'Good');
  await pages.Good.addInitScript(noDevices);
  if (mode === 'downlink') await pages.Poor.addInitScript(microphoneOnly);
  const source = mode === 'downlink' ? 'Chair' : 'Poor';
  const watchers = mode === 'downlink' ? ['Poor', 'Good'] : ['Good'];
  let step = 'every page joins';
  try {
    for (const [name, page] of Object.entries(pages)) {
      await page.goto(joinUrl(baseUrl, room, name), { timeout: 15_000 });
    }
    step = `${watchers.join(' and ')} see ${source}`;
    const joinedAt = Date.now();
    await Promise.all(watchers.map((name) => waitForRemoteVideo(pages[name], source, 30_000)));
    const origin = Date.now();
    const sampler = sampleAll(Object.fromEntries(watchers.map((name) => [name, pages[name]])), origin);
    sampler.origin = origin;
    // What the source itself sent, to read a failure by: whether its own estimator and
    // encoder stepped down, and when.
    const senderSampler = sampleAll({ [source]: pages[source] }, origin, readSender);
    report.first_picture_ms = origin - joinedAt;
    if (mode === 'downlink') {
      step = 'both watchers reach the top layer';
      const atTop = await Promise.all(watchers.map((name) => waitFor(sampler, name, origin, 30_000, (s) => s.video.height >= TOP_HEIGHT)));
      report.top_layer_after_first_picture_ms = Object.fromEntries(watchers.map((name, i) => [name, atTop[i]]));
      if (atTop.some((ms) => ms === null)) throw new Error(`not at the top layer within 30 s: ${JSON.stringify(report.top_layer_after_first_picture_ms)}`);
    }
    await sleep(3000);

    step = mode === 'lossy' ? `Poor's uplink losing ${kbit}%` : `Poor's ${mode} capped at ${kbit} kbit/s`;
    const cappedAt = Date.now();
    cap();
    report.capped_at_ms = cappedAt - origin;
    // To line the server's log up with the figures.
    report.capped_at = new Date(cappedAt).toISOString();
    if (mode === 'downlink') {
      // Down to the lowest layer with pictures still decoded, or paused (and told so).
      report.down_after_ms = await waitFor(sampler, 'Poor', cappedAt, holdMs, (s, previous) => s.paused
        || (s.video.height > 0 && s.video.height <= LOWEST_HEIGHT && previous && s.video.framesDecoded > previous.video.framesDecoded));
    }
    await sleep(Math.max(0, cappedAt + holdMs - Date.now()));
    const liftedAt = Date.now();
    uncap();
    report.lifted_at_ms = liftedAt - origin;
    if (mode === 'downlink') {
      step = 'Poor back at the top layer';
      report.up_after_ms = await waitFor(sampler, 'Poor', liftedAt, 30_000, (s) => s.video.height >= TOP_HEIGHT && !s.paused);
    } else {
      await sleep(5000);
    }
    await sleep(2000);
    const timelines = await sampler.stop();
    const senderTimelines = await senderSampler.stop();
    // From a second before the cap to eight seconds into it: the onset.
    report.sender_at_cap = senderTimeline(senderTimelines[source], report.capped_at_ms - 1000, report.capped_at_ms + 8000);

    for (const name of watchers) {
      const timeline = timelines[name];
      const atCap = sampleAt(timeline, report.capped_at_ms);
      const atLift = sampleAt(timeline, report.lifted_at_ms);
      const last = timeline[timeline.length - 1];
      // Under the cap once the video has stepped down: what the line carries for good.
      const settled = report.down_after_ms === undefined || report.down_after_ms === null
        ? atCap
        : sampleAt(timeline, report.capped_at_ms + report.down_after_ms);
      report.pages[name] = {
        samples: timeline.length,
        audio_under_cap: audioBetween(atCap, atLift),
        audio_after_step_down: audioBetween(settled, atLift),
        // When audio was lost, for reading what happened: one entry per sample that
        // counted losses.
        audio_losses: timeline.filter((s, i) => i > 0 && s.audio.packetsLost > timeline[i - 1].audio.packetsLost)
          .map((s) => ({ t: s.t, lost: s.audio.packetsLost - timeline[timeline.indexOf(s) - 1].audio.packetsLost })),
        freezes_after_lift: freezes(timeline).filter((f) => f.t >= report.lifted_at_ms),
        video_frames_under_cap: atLift.video.framesDecoded - atCap.video.framesDecoded,
        heights: [...new Set(timeline.map((s) => s.video.height))],
        min_height_after_top: Math.min(...timeline.filter((s) => s.t >= (report.top_layer_after_first_picture_ms?.[name] ?? 0)).map((s) => s.video.height)),
        paused_samples: timeline.filter((s) => s.paused).length,
        paused_samples_under_cap: timeline.filter((s) => s.paused && s.t >= report.capped_at_ms && s.t <= report.lifted_at_ms).length,
        freezes: freezes(timeline),
        pli: last.video.pliCount - timeline[0].video.pliCount,
        nack: last.video.nackCount - timeline[0].video.nackCount,
        keyframes: last.video.keyFramesDecoded - timeline[0].video.keyFramesDecoded,
        frames_dropped: last.video.framesDropped - timeline[0].video.framesDropped,
        // Height over time, one entry per change, for reading what happened.
        height_changes: timeline.filter((s, i) => i === 0 || s.video.height !== timeline[i - 1].video.height || s.paused !== timeline[i - 1].paused)
          .map((s) => ({ t: s.t, height: s.video.height, paused: s.paused })),
      };
    }
  } catch (error) {
    await describePages(report, pages);
    throw new Error(`${step}: ${error.message.split('\n')[0]}`);
  } finally {
    uncap();
    await closePoor();
  }
});
