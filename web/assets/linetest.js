// The line test (docs/signaling.md, "Line test"): this site measures its line to the
// server over WebRTC, the path the meeting's media will take.
//
// `runLineTest` opens a WebSocket of its own, sends `start_line_test` with the join
// link's token, and offers the camera and microphone with the test's three data
// channels. It echoes every probe at once, uploads on `cau-bulk` at the pace the server
// asks, and resolves with the server's `line_test_result`. Every figure is measured on
// the server; the page only shows them. `renderLineTestResult` draws a result (the
// site's own, or one from `meeting_state` on the chair's console) in the page's language.

import { has, language, setText } from './i18n.js';
import { Signaling } from './signaling.js';

/** Upload messages: one SCTP packet each. */
const CHUNK_BYTES = 1000;
/** The upload keeps at most this much of its rate unacknowledged, as the server does. */
const BACKLOG_SECONDS = 0.5;
/** The camera's share of the line during the test: enough to prove it works. */
const TEST_VIDEO_BITRATE = 300_000;
/** Beyond the plan: connecting, the channels' opening, the report. */
const MARGIN_MS = 30_000;

/**
 * Runs one line test.
 * @param {object} options
 * @param {string} options.token  the join link's token
 * @param {MediaStream} options.stream  the camera and microphone to check
 * @param {(phase: string, progress: number) => void} [options.onProgress]
 *   `connecting`, `probe`, `download`, `upload` or `done`, with the share (0..1) done
 * @param {AbortSignal} [options.signal]  stops the test
 * @returns {Promise<object>} the `line_test_result` message; rejects with `{code, message}`
 */
export function runLineTest({ token, stream, onProgress = () => {}, signal }) {
  return new Promise((resolve, reject) => {
    let pc = null;
    let finished = false;
    let plan = null;
    let offerSent = false;
    const pending = [];
    const timers = [];
    let deadline = null;
    let progressTimer = null;
    let phase = { name: 'connecting', startedAt: performance.now(), offset: 0, length: 1 };

    const finish = (error, result) => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      clearInterval(progressTimer);
      for (const timer of timers) clearInterval(timer);
      signaling.close();
      if (pc) pc.close();
      if (error) reject(error);
      else resolve(result);
    };

    const signaling = new Signaling({
      onState: (state) => {
        if (state === 'open') signaling.send({ type: 'start_line_test', token });
        if (state === 'closed' && !finished) {
          finish({ code: 'connection_lost', message: '' });
        }
      },
      onError: (error) => console.warn('line test signaling', error),
      onMessage: async (message) => {
        switch (message.type) {
          case 'line_test_started':
            plan = message.plan ?? {};
            deadline = setTimeout(
              () => finish({ code: 'line_test_timeout', message: '' }),
              total(plan) + MARGIN_MS,
            );
            await offer();
            return;
          case 'answer':
            await pc.setRemoteDescription({ type: 'answer', sdp: String(message.sdp ?? '') });
            return;
          case 'line_test_result':
            onProgress('done', 1);
            finish(null, message);
            return;
          case 'error':
            finish({ code: String(message.code ?? 'internal'), message: String(message.message ?? '') });
            return;
          default:
            return;
        }
      },
    });

    signal?.addEventListener('abort', () => finish({ code: 'aborted', message: '' }));
    onProgress('connecting', 0);
    progressTimer = setInterval(() => {
      if (!plan || phase.name === 'connecting') return;
      const within = Math.min(1, (performance.now() - phase.startedAt) / phase.length);
      onProgress(phase.name, Math.min(0.99, (phase.offset + within * phase.length) / total(plan)));
    }, 250);

    async function offer() {
      pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle' });
      pc.addEventListener('icecandidate', ({ candidate }) => {
        if (!candidate || !candidate.candidate) return;
        const message = { type: 'candidate', candidate: candidate.candidate };
        if (candidate.sdpMid !== null) message.sdp_mid = candidate.sdpMid;
        if (offerSent) signaling.send(message);
        else pending.push(message);
      });
      pc.addEventListener('connectionstatechange', () => {
        if (pc.connectionState === 'failed') {
          // The server reports the failed line as the result; wait for it.
          console.warn('line test: the connection failed');
        }
      });
      const probe = pc.createDataChannel('cau-probe', { ordered: false, maxRetransmits: 0 });
      const bulk = pc.createDataChannel('cau-bulk');
      const control = pc.createDataChannel('cau-control');
      for (const channel of [probe, bulk, control]) channel.binaryType = 'arraybuffer';
      let open = 0;
      const opened = () => {
        open += 1;
        if (open === 3) control.send(JSON.stringify({ ready: true }));
      };
      for (const channel of [probe, bulk, control]) channel.addEventListener('open', opened);
      // The echo: the probe goes back as it came, at once.
      probe.addEventListener('message', ({ data }) => {
        if (probe.readyState === 'open') probe.send(data);
      });
      control.addEventListener('message', ({ data }) => {
        let message;
        try {
          message = JSON.parse(String(data));
        } catch {
          return;
        }
        startPhase(message);
        if (message.phase === 'upload') upload(bulk, Number(message.ms) || 0, Number(message.kbps) || 0);
      });

      for (const track of stream.getTracks()) {
        const sender = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] }).sender;
        if (track.kind === 'video') capBitrate(sender);
      }
      const description = await pc.createOffer();
      await pc.setLocalDescription(description);
      signaling.send({ type: 'offer', sdp: pc.localDescription.sdp });
      offerSent = true;
      for (const message of pending.splice(0)) signaling.send(message);
    }

    function startPhase(message) {
      const names = ['probe', 'download', 'upload'];
      const index = names.indexOf(message.phase);
      if (index < 0) return;
      const lengths = [plan.probe_ms, plan.download_ms, plan.upload_ms].map((ms) => Number(ms) || 0);
      const offset = lengths.slice(0, index).reduce((a, b) => a + b, 0);
      phase = { name: message.phase, startedAt: performance.now(), offset, length: lengths[index] || 1 };
      onProgress(message.phase, offset / total(plan));
    }

    /** Sends at `kbps` for `ms`, never more than the pace, never much backlog. */
    function upload(channel, ms, kbps) {
      const bytesPerMs = (kbps * 1000) / 8 / 1000;
      const backlog = bytesPerMs * 1000 * BACKLOG_SECONDS;
      const chunk = new Uint8Array(CHUNK_BYTES);
      const start = performance.now();
      let sent = 0;
      const timer = setInterval(() => {
        const elapsed = Math.min(ms, performance.now() - start);
        const allowed = bytesPerMs * elapsed;
        while (sent + CHUNK_BYTES <= allowed && channel.bufferedAmount < backlog) {
          if (channel.readyState !== 'open') break;
          channel.send(chunk);
          sent += CHUNK_BYTES;
        }
        if (elapsed >= ms) clearInterval(timer);
      }, 10);
      timers.push(timer);
    }
  });
}

function total(plan) {
  return (Number(plan.probe_ms) || 0) + (Number(plan.download_ms) || 0) + (Number(plan.upload_ms) || 0) || 1;
}

async function capBitrate(sender) {
  try {
    const parameters = sender.getParameters();
    if (!parameters.encodings || parameters.encodings.length === 0) parameters.encodings = [{}];
    parameters.encodings[0].maxBitrate = TEST_VIDEO_BITRATE;
    await sender.setParameters(parameters);
  } catch (error) {
    console.warn('line test: cannot cap the camera', error);
  }
}

const VERDICTS = new Set(['ready', 'marginal', 'not_ready']);

/** The result with every field of the expected type, whatever arrived; null if none. */
export function normaliseLineTest(value) {
  if (!value || typeof value !== 'object' || !VERDICTS.has(value.verdict)) return null;
  const number = (x) => (Number.isFinite(x) ? x : null);
  const figures = value.figures && typeof value.figures === 'object' ? value.figures : {};
  return {
    verdict: value.verdict,
    at: number(value.at),
    reasons: (Array.isArray(value.reasons) ? value.reasons : [])
      .filter((reason) => reason && typeof reason.code === 'string')
      .map((reason) => ({
        code: reason.code,
        severity: reason.severity === 'marginal' ? 'marginal' : 'not_ready',
        measured: number(reason.measured),
        limit: number(reason.limit),
        message: typeof reason.message === 'string' ? reason.message : '',
      })),
    figures: {
      rtt_ms: number(figures.rtt_ms),
      jitter_ms: number(figures.jitter_ms),
      loss_percent: number(figures.loss_percent),
      download_kbps: number(figures.download_kbps),
      upload_kbps: number(figures.upload_kbps),
      download_needed_kbps: number(figures.download_needed_kbps),
      upload_needed_kbps: number(figures.upload_needed_kbps),
      audio: figures.audio === true,
      video: figures.video === true,
    },
  };
}

/** Gives `element` the text of `reason` in the page's language, with its figures. */
export function showReason(element, reason) {
  const key = `linetest.reason.${reason.code}`;
  // A code this page does not know yet: the server's own words.
  if (!has(key)) {
    element.textContent = reason.message;
    return;
  }
  const digits = reason.code === 'loss_high' ? 1 : 0;
  setText(element, key, {
    measured: formatNumber(reason.measured, digits),
    limit: formatNumber(reason.limit, digits),
  });
}

/**
 * Draws `result` (from `normaliseLineTest`) into `container`: the verdict, the reasons,
 * and the figures. `data-verdict` on the container says which, for tests and styles.
 */
export function renderLineTestResult(container, result, { figures = true } = {}) {
  container.replaceChildren();
  if (!result) {
    delete container.dataset.verdict;
    return;
  }
  container.dataset.verdict = result.verdict;
  const verdict = document.createElement('p');
  verdict.className = 'linetest-verdict';
  const badge = document.createElement('strong');
  badge.className = 'verdict-badge';
  badge.dataset.verdict = result.verdict;
  setText(badge, `linetest.verdict.${result.verdict}`);
  const line = document.createElement('span');
  setText(line, `linetest.verdict_line.${result.verdict}`);
  verdict.append(badge, ' ', line);
  container.append(verdict);

  if (result.reasons.length > 0) {
    const list = document.createElement('ul');
    list.className = 'linetest-reasons';
    for (const reason of result.reasons) {
      const item = document.createElement('li');
      item.dataset.code = reason.code;
      item.dataset.severity = reason.severity;
      showReason(item, reason);
      list.append(item);
    }
    container.append(list);
  }
  if (!figures) return;

  const f = result.figures;
  const ms = (value) => (value === null ? null : ['linetest.ms', { value: formatNumber(value, 0) }]);
  const rate = (kbps, needed) => (kbps === null ? null
    : ['linetest.kbps', { value: formatNumber(kbps, 0), needed: formatNumber(needed, 0) }]);
  const rows = [
    ['linetest.rtt', ms(f.rtt_ms)],
    ['linetest.jitter', ms(f.jitter_ms)],
    ['linetest.loss', f.loss_percent === null ? null
      : ['linetest.percent', { value: formatNumber(f.loss_percent, 1) }]],
    ['linetest.download', rate(f.download_kbps, f.download_needed_kbps)],
    ['linetest.upload', rate(f.upload_kbps, f.upload_needed_kbps)],
    ['linetest.microphone', [f.audio ? 'linetest.works' : 'linetest.not_received']],
    ['linetest.camera', [f.video ? 'linetest.works' : 'linetest.not_received']],
  ];
  const table = document.createElement('dl');
  table.className = 'facts linetest-figures';
  for (const [key, value] of rows) {
    const term = document.createElement('dt');
    setText(term, key);
    const detail = document.createElement('dd');
    if (value === null) detail.textContent = '—';
    else setText(detail, value[0], value[1]);
    table.append(term, detail);
  }
  container.append(table);
  if (result.at !== null) {
    const when = document.createElement('p');
    when.className = 'hint';
    setText(when, 'linetest.tested_at', { time: formatWhen(result.at) });
    container.append(when);
  }
}

function formatNumber(value, digits) {
  if (value === null || value === undefined) return '—';
  return Number(value).toLocaleString(locale(), {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

/** A time of day, with the date when it is not today. */
export function formatWhen(millis) {
  const date = new Date(millis);
  const time = date.toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit' });
  if (date.toDateString() === new Date().toDateString()) return time;
  return `${time} ${date.toLocaleDateString(locale(), { day: 'numeric', month: 'numeric' })}`;
}

function locale() {
  return language() === 'vi' ? 'vi-VN' : 'en-GB';
}

/**
 * Wires a line-test card: its button starts a test with the token and the stream of
 * the moment, its progress bar follows the phases, and the result (or why the test
 * could not run) is drawn below. The card's elements are `root`'s descendants with the
 * ids `line-test-button`, `-progress`, `-phase`, `-bar`, `-error` and `-result`.
 * Returns `{ start, abort }`.
 */
export function attachLineTestCard(root, { token, stream, onResult = () => {} }) {
  const part = (name) => root.querySelector(`#line-test-${name}`);
  const button = part('button');
  let controller = null;

  async function start() {
    if (controller) return;
    controller = new AbortController();
    button.disabled = true;
    part('error').hidden = true;
    renderLineTestResult(part('result'), null);
    part('progress').hidden = false;
    root.dataset.lineTest = 'running';
    const onProgress = (phase, share) => {
      setText(part('phase'), `linetest.phase.${phase}`);
      part('bar').value = share;
    };
    try {
      const message = await runLineTest({
        token: token(),
        stream: stream(),
        onProgress,
        signal: controller.signal,
      });
      const result = normaliseLineTest(message);
      renderLineTestResult(part('result'), result);
      root.dataset.lineTest = 'done';
      onResult(result);
    } catch (error) {
      root.dataset.lineTest = 'failed';
      if (error?.code !== 'aborted') showFailure(error);
    } finally {
      controller = null;
      part('progress').hidden = true;
      button.disabled = false;
      setText(button, 'linetest.again');
    }
  }

  function showFailure(error) {
    const box = part('error');
    box.hidden = false;
    box.replaceChildren();
    const title = document.createElement('strong');
    setText(title, 'linetest.failed');
    const reason = document.createElement('span');
    const code = typeof error?.code === 'string' ? error.code : 'internal';
    setText(reason, has(`error.${code}`) ? `error.${code}` : 'error.internal');
    box.append(title, ' ', reason);
    if (error?.message) {
      const detail = document.createElement('small');
      detail.textContent = error.message;
      box.append(' ', detail);
    }
  }

  button.addEventListener('click', () => start());
  return { start, abort: () => controller?.abort() };
}
