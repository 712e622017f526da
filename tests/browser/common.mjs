// Shared by the browser tests: launching Debian's Chromium, joining pages, reading stats,
// and the one-line JSON report each script prints.
//
// Facts behind the flags are in shared/TESTING.md: without --allow-loopback-in-peer-connection
// Chromium gathers no 127.0.0.1 candidate, and without --use-fake-ui-for-media-stream it hides
// host addresses behind mDNS names. `chromium.launch` gives every run a fresh temporary
// user-data-dir of its own and removes it on close.

import { chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CAU_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-gpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** `BASE_URL ROOM` from the command line, or exit 2 with the usage. */
export function parseArguments(script) {
  const [baseUrl, room] = process.argv.slice(2);
  if (!baseUrl || !room) {
    process.stderr.write(`usage: node ${script} BASE_URL ROOM\n`);
    process.exit(2);
  }
  return { baseUrl: baseUrl.replace(/\/+$/, ''), room };
}

/**
 * Runs `body(report)` with a watchdog, prints `report` as one line of JSON and exits:
 * 0 when `body` returned normally, 1 (with `report.error`) when it threw or ran out of time.
 */
export async function runReport(report, limitMs, body) {
  const started = Date.now();
  let browser = null;
  let finished = false;
  const finish = (error) => {
    if (finished) return;
    finished = true;
    report.ok = error === undefined;
    if (error !== undefined) report.error = String(error?.message ?? error).split('\n')[0];
    report.elapsed_ms = Date.now() - started;
    process.stdout.write(`${JSON.stringify(report)}\n`);
    const code = report.ok ? 0 : 1;
    // Closing the browser may hang when it is wedged: give it two seconds, then go anyway.
    const closing = browser ? browser.close().catch(() => {}) : Promise.resolve();
    Promise.race([closing, sleep(2000)]).then(() => process.exit(code));
  };
  const watchdog = setTimeout(() => finish(new Error(`timed out after ${limitMs} ms`)), limitMs);
  try {
    await body(report, (launched) => {
      browser = launched;
    });
    clearTimeout(watchdog);
    finish();
  } catch (error) {
    clearTimeout(watchdog);
    finish(error);
  }
}

/**
 * Launches Chromium with the shared flags and `extraArgs` (such as a fake microphone's file).
 * `executablePath`: another launcher, such as one that starts Chromium in a site's own
 * network namespace.
 */
export async function launchChromium(extraArgs = [], executablePath = CHROMIUM_PATH) {
  const args = [...CHROMIUM_ARGS, ...extraArgs];
  return chromium.launch({ executablePath, headless: true, args, timeout: 15_000 });
}

/**
 * Makes `page` note, for every site's tile, when it last showed a new video frame and
 * when it last received audio packets: `window.cauLastVideo[site]` and
 * `window.cauLastAudio[site]`, in `Date.now()` time (the same clock as this script's).
 * It also notes when each resumed after a silence of `MEDIA_GAP_MS` or more (or first
 * came): `window.cauMediaStarts[site].video` and `.audio`, oldest first, so that a
 * test asks when media came back, not when it was last seen.
 * A site's tile may be replaced (it reconnected): the newest one is watched.
 */
export async function watchMedia(page) {
  await page.evaluate(() => {
    if (window.cauLastVideo) return;
    window.cauLastVideo = {};
    window.cauLastAudio = {};
    window.cauMediaStarts = {};
    const MEDIA_GAP_MS = 500;
    const arrived = (site, kind, last) => {
      const now = Date.now();
      const previous = last[site];
      last[site] = now;
      if (previous !== undefined && now - previous < MEDIA_GAP_MS) return;
      const starts = (window.cauMediaStarts[site] ??= { video: [], audio: [] })[kind];
      starts.push(now);
      if (starts.length > 50) starts.shift();
    };
    const hooked = new WeakSet();
    const audioPackets = new Map();
    setInterval(async () => {
      for (const video of document.querySelectorAll('video[data-site]')) {
        if (hooked.has(video) || typeof video.requestVideoFrameCallback !== 'function') continue;
        hooked.add(video);
        const site = video.dataset.site;
        const onFrame = () => {
          if (!video.isConnected) return;
          arrived(site, 'video', window.cauLastVideo);
          video.requestVideoFrameCallback(onFrame);
        };
        video.requestVideoFrameCallback(onFrame);
      }
      const pc = window.cauPeerConnection;
      if (!pc || pc.connectionState === 'closed') return;
      const owners = new Map();
      for (const video of document.querySelectorAll('video[data-site]')) {
        const track = video.srcObject?.getAudioTracks()[0];
        if (track) owners.set(track.id, video.dataset.site);
      }
      let stats;
      try {
        stats = await pc.getStats();
      } catch {
        return;
      }
      stats.forEach((stat) => {
        if (stat.type !== 'inbound-rtp' || (stat.kind ?? stat.mediaType) !== 'audio') return;
        const site = owners.get(stat.trackIdentifier);
        if (!site) return;
        const key = `${stat.id}`;
        const packets = stat.packetsReceived ?? 0;
        if (packets > (audioPackets.get(key) ?? 0)) arrived(site, 'audio', window.cauLastAudio);
        audioPackets.set(key, packets);
      });
    }, 50);
  });
}

/**
 * When `page` first saw `site`'s video and audio at or after `since` (a `Date.now()`
 * time), by `watchMedia`: the first resumption after a silence at or after `since`;
 * `since` itself for media that was already flowing then and still is; null for what
 * has not been seen since.
 */
export async function mediaResumedSince(page, site, since) {
  return page.evaluate(([code, after]) => {
    const starts = window.cauMediaStarts?.[code];
    const first = (times, last) => times?.find((t) => t >= after) ?? (last !== undefined && last >= after ? after : null);
    return {
      video: first(starts?.video, window.cauLastVideo?.[code]),
      audio: first(starts?.audio, window.cauLastAudio?.[code]),
    };
  }, [site, since]);
}

/** When `page` last saw `site`'s video and audio, by `watchMedia`. */
export async function lastMedia(page, site) {
  return page.evaluate((code) => ({
    video: window.cauLastVideo?.[code] ?? null,
    audio: window.cauLastAudio?.[code] ?? null,
  }), site);
}

/**
 * A page of its own browser context (no shared storage), with its console errors kept in
 * `page.cauLog` for the report and copied to stderr.
 */
export async function openPage(browser, label) {
  // HTTPS tests use the server's self-signed development certificate.
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.cauLog = [];
  const keep = (line) => {
    page.cauLog.push(line);
    if (page.cauLog.length > 20) page.cauLog.shift();
    process.stderr.write(`[${label}] ${line}\n`);
  };
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') keep(`${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => keep(`pageerror: ${error.message}`));
  return page;
}

export function joinUrl(baseUrl, room, name) {
  return `${baseUrl}/join/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}&autojoin=1`;
}

/** Waits until `page` shows `other`'s `<video>` with a decoded picture. */
export async function waitForRemoteVideo(page, other, timeoutMs) {
  await page.waitForFunction(
    (name) => {
      const video = document.querySelector(`video[data-participant="${CSS.escape(name)}"]`);
      return video !== null && video.videoWidth > 0;
    },
    other,
    { timeout: timeoutMs, polling: 50 },
  );
}

/** Sums of the inbound-rtp figures of `window.cauPeerConnection`, by kind. */
export async function inboundStats(page) {
  return page.evaluate(async () => {
    const pc = window.cauPeerConnection;
    if (!pc) return null;
    const sums = {
      video: { framesDecoded: 0, packetsReceived: 0, bytesReceived: 0 },
      audio: { packetsReceived: 0, totalSamplesReceived: 0, bytesReceived: 0 },
    };
    const report = await pc.getStats();
    report.forEach((stat) => {
      if (stat.type !== 'inbound-rtp') return;
      const sum = sums[stat.kind ?? stat.mediaType];
      if (!sum) return;
      for (const key of Object.keys(sum)) sum[key] += stat[key] ?? 0;
    });
    return sums;
  });
}

/**
 * The audio codecs a page's connection uses, from `getStats()`: what it sends with
 * (`send`) and what each inbound audio stream arrives in (`receive`), as MIME types
 * such as `audio/opus` or `audio/red`.
 */
export async function audioCodecs(page) {
  return page.evaluate(async () => {
    const pc = window.cauPeerConnection;
    if (!pc) return null;
    const report = await pc.getStats();
    const codecs = new Map();
    report.forEach((stat) => {
      if (stat.type === 'codec') codecs.set(stat.id, stat.mimeType);
    });
    const found = { send: [], receive: [] };
    report.forEach((stat) => {
      if ((stat.kind ?? stat.mediaType) !== 'audio' || !stat.codecId) return;
      const mime = codecs.get(stat.codecId) ?? null;
      if (stat.type === 'outbound-rtp') found.send.push(mime);
      if (stat.type === 'inbound-rtp') found.receive.push(mime);
    });
    return found;
  });
}

/** What a page shows, for reports: connection states, remote participants, notice. */
export async function snapshot(page) {
  return page.evaluate(() => {
    const state = (id) => document.getElementById(id)?.dataset.state ?? null;
    const notice = document.getElementById('notice');
    return {
      signaling_state: state('signaling-state'),
      connection_state: state('connection-state'),
      remote_participants: [...document.querySelectorAll('video[data-participant]')].map((video) => ({
        name: video.dataset.participant,
        id: video.dataset.participantId,
        video_width: video.videoWidth,
        video_height: video.videoHeight,
        audio_tracks: video.srcObject?.getAudioTracks().length ?? 0,
        video_tracks: video.srcObject?.getVideoTracks().length ?? 0,
      })),
      notice: notice && !notice.hidden ? notice.textContent.replace(/\s+/g, ' ').trim() : null,
      first_remote_frame_ms: window.cauMetrics?.firstRemoteFrameMs ?? null,
      marks: window.cauMetrics?.marks ?? null,
    };
  });
}

/** Adds each page's snapshot and recent console errors to `report` (used on failure). */
export async function describePages(report, pages) {
  for (const [name, page] of Object.entries(pages)) {
    const entry = (report.pages[name] ??= {});
    try {
      entry.snapshot = await Promise.race([snapshot(page), sleep(2000).then(() => 'no answer')]);
    } catch (error) {
      entry.snapshot = `unavailable: ${error.message.split('\n')[0]}`;
    }
    if (page.cauLog.length > 0) entry.console = page.cauLog.slice(-5);
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
