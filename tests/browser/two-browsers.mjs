// Proves media flows both ways between two browsers through a running Cầu server.
//
//   node tests/browser/two-browsers.mjs http://127.0.0.1:8080 ROOM
//
// Alice and Bob join ROOM from separate browser contexts of one headless Chromium (fake
// camera and microphone). On each page the other's <video data-participant="..."> must show a
// picture (videoWidth > 0) and, over two seconds, the RTCPeerConnection's inbound-rtp video
// framesDecoded and inbound-rtp audio packetsReceived must grow, and the server's session
// description must ask for Opus with DTX and in-band FEC (`usedtx=1`, `useinbandfec=1`). Prints one line of JSON
// with the figures per page and exits 0 when every check passes; on failure the JSON has an
// `error` field and the exit code is 1. The whole run is bounded by 55 s.

import {
  audioCodecs, describePages, inboundStats, joinUrl, launchChromium, openPage, parseArguments, runReport,
  sleep, snapshot, waitForRemoteVideo,
} from './common.mjs';

const { baseUrl, room } = parseArguments('two-browsers.mjs');
const NAMES = ['Alice', 'Bob'];
const MEASURE_MS = 2000;

const report = { test: 'two-browsers', base_url: baseUrl, room, pages: {} };

await runReport(report, 55_000, async (report, setBrowser) => {
  const browser = await launchChromium();
  setBrowser(browser);
  report.chromium = browser.version();

  const pages = {};
  for (const name of NAMES) pages[name] = await openPage(browser, name);
  let step = 'load the join pages';
  try {
    const loadedAt = {};
    await Promise.all(NAMES.map(async (name) => {
      loadedAt[name] = Date.now();
      await pages[name].goto(joinUrl(baseUrl, room, name), { timeout: 10_000 });
    }));

    step = 'see the other participant\'s video';
    await Promise.all(NAMES.map(async (name, index) => {
      const other = NAMES[1 - index];
      await waitForRemoteVideo(pages[name], other, 25_000);
      report.pages[name] = { seen_remote_video_after_ms: Date.now() - loadedAt[name] };
    }));

    step = 'measure inbound media';
    const before = {};
    for (const name of NAMES) before[name] = await inboundStats(pages[name]);
    await sleep(MEASURE_MS);
    const after = {};
    for (const name of NAMES) after[name] = await inboundStats(pages[name]);

    const failures = [];
    for (const [index, name] of NAMES.entries()) {
      // What the server's description asks of this browser's Opus encoder.
      const opusFmtp = await pages[name].evaluate(() => {
        const sdp = window.cauPeerConnection?.remoteDescription?.sdp ?? '';
        const pt = sdp.match(/a=rtpmap:(\d+) opus\/48000/i)?.[1];
        if (!pt) return null;
        return sdp.match(new RegExp(`a=fmtp:${pt} ([^\r\n]*)`))?.[1] ?? '';
      });
      const opusParams = (opusFmtp ?? '').split(';').map((p) => p.trim());
      if (!opusParams.includes('usedtx=1') || !opusParams.includes('useinbandfec=1')) {
        failures.push(`${name}: the server's Opus parameters lack DTX or FEC: ${opusFmtp}`);
      }
      const other = NAMES[1 - index];
      const shown = await snapshot(pages[name]);
      const video = shown.remote_participants.find((participant) => participant.name === other);
      const entry = report.pages[name];
      Object.assign(entry, {
        remote: other,
        video_width: video?.video_width ?? 0,
        video_height: video?.video_height ?? 0,
        audio_tracks_on_element: video?.audio_tracks ?? 0,
        frames_decoded_before: before[name]?.video.framesDecoded ?? null,
        frames_decoded_after: after[name]?.video.framesDecoded ?? null,
        audio_packets_before: before[name]?.audio.packetsReceived ?? null,
        audio_packets_after: after[name]?.audio.packetsReceived ?? null,
        audio_samples_before: before[name]?.audio.totalSamplesReceived ?? null,
        audio_samples_after: after[name]?.audio.totalSamplesReceived ?? null,
        first_remote_frame_ms: shown.first_remote_frame_ms,
        connection_state: shown.connection_state,
        signaling_state: shown.signaling_state,
        timeline_ms: shown.marks,
        server_opus_fmtp: opusFmtp,
        audio_codecs: await audioCodecs(pages[name]),
      });
      if (!video || video.video_width === 0) failures.push(`${name}: no picture from ${other}`);
      if (!(entry.frames_decoded_after > entry.frames_decoded_before)) {
        failures.push(`${name}: video framesDecoded did not grow`);
      }
      const audioGrew = entry.audio_packets_after > entry.audio_packets_before
        || entry.audio_samples_after > entry.audio_samples_before;
      if (!audioGrew) failures.push(`${name}: audio packets did not grow`);
      if (entry.audio_tracks_on_element < 1) failures.push(`${name}: no audio track on ${other}'s <video>`);
    }
    if (failures.length > 0) throw new Error(failures.join('; '));
  } catch (error) {
    await describePages(report, pages);
    throw new Error(`${step}: ${error.message.split('\n')[0]}`);
  }
});
