// What every meeting page shares: the camera and microphone, one session with the server
// (a WebSocket and an RTCPeerConnection), the tiles of the remote participants, and the
// status line and notices of the page.
//
// A `Session` is one attempt at being in a room. It publishes the local tracks with one
// offer right after `joined`; from then on only the server offers, adding and removing the
// other participants' tracks (docs/signaling.md). Messages are handled strictly in order
// (signaling.js). The pages (meeting.js for ad-hoc rooms, site.js for scheduled meetings)
// decide what to join with, what to do with messages beyond the room's own, and when to
// reconnect.
//
// For tests: `window.cauPeerConnection` is the current RTCPeerConnection,
// `window.cauTracksByMid` the server's latest `tracks` by mid, and
// `window.cauMetrics.firstRemoteFrameMs` the time from page load to the first remote frame.

import { has, setText } from './i18n.js';
import { Signaling } from './signaling.js';

export const $ = (id) => document.getElementById(id);

/**
 * Pauses before reconnecting, by attempt; the last repeats. Short, so that media is
 * back within a couple of seconds of a line (or the server) coming back; an attempt
 * against a dead line costs nothing but a failed connect. Jitter is added on top, so
 * that 58 sites coming back after a restart do not all knock at once.
 */
export const RECONNECT_DELAYS_MS = [300, 500];
export const RECONNECT_JITTER_MS = 200;

/** While reconnecting, the line to the server is checked this often, each check given up after LINE_CHECK_TIMEOUT_MS. */
const LINE_CHECK_INTERVAL_MS = 250;
const LINE_CHECK_TIMEOUT_MS = 1000;

/**
 * A new line probe (below) starts this often, and each is closed this long after it
 * started. Over UDP a probe checks again and again, but Chromium stops checking a pair
 * that has had no answer for five seconds. Over ICE-TCP a probe's connection attempt
 * has its SYN sent again only 1 s and then 3 s later: a fresh probe every half second
 * keeps a fresh SYN going out.
 */
const LINE_PROBE_EVERY_MS = 500;
const LINE_PROBE_LIFETIME_MS = 3000;

/**
 * What the page needs to check its line with ICE, kept across sessions: the server's
 * line probe credentials (`line_probe` in `joined`) and its candidates (from its SDP):
 * UDP, and the TCP one for a site whose firewall passes no UDP.
 */
const lineProbe = { ufrag: null, pwd: null, candidates: [] };

function noteLineProbe(probe) {
  if (typeof probe?.ufrag !== 'string' || typeof probe?.pwd !== 'string') return;
  lineProbe.ufrag = probe.ufrag;
  lineProbe.pwd = probe.pwd;
}

/** Keeps the candidates of an SDP from the server: where its media socket listens. */
function noteServerCandidates(sdp) {
  const candidates = String(sdp).split(/\r?\n/)
    .filter((line) => /^a=candidate:\S+ \d+ (udp|tcp) /i.test(line));
  if (candidates.length > 0) lineProbe.candidates = candidates;
}

/** The answer of an ICE-lite server that knows only the probe's credentials. */
function lineProbeAnswer(offer) {
  const mid = /^a=mid:(\S+)/m.exec(offer)?.[1] ?? '0';
  // Never checked: the probe ends when ICE connects, before DTLS could finish.
  const fingerprint = Array(32).fill('00').join(':');
  return [
    'v=0', 'o=- 1 1 IN IP4 0.0.0.0', 's=-', 't=0 0', `a=group:BUNDLE ${mid}`, 'a=ice-lite',
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 0.0.0.0', `a=mid:${mid}`,
    `a=ice-ufrag:${lineProbe.ufrag}`, `a=ice-pwd:${lineProbe.pwd}`,
    `a=fingerprint:sha-256 ${fingerprint}`, 'a=setup:passive', 'a=sctp-port:5000',
    ...lineProbe.candidates, 'a=end-of-candidates', '',
  ].join('\r\n');
}

/**
 * Calls `onBack` once the server answers an ICE check of the line probe: a connection
 * made only to be checked, over UDP (or ICE-TCP), which the server answers for no peer
 * (`sfu/src/line_probe.rs`). Returns a function that stops probing; does nothing when the
 * page has not learnt the probe yet.
 */
function probeLine(onBack) {
  if (!lineProbe.ufrag || lineProbe.candidates.length === 0) return () => {};
  const probes = new Set();
  const attempt = async () => {
    const probe = new RTCPeerConnection({ iceServers: [] });
    probes.add(probe);
    setTimeout(() => {
      probe.close();
      probes.delete(probe);
    }, LINE_PROBE_LIFETIME_MS);
    probe.addEventListener('iceconnectionstatechange', () => {
      if (['connected', 'completed'].includes(probe.iceConnectionState)) onBack();
    });
    try {
      probe.createDataChannel('line-probe');
      await probe.setLocalDescription(await probe.createOffer());
      await probe.setRemoteDescription({ type: 'answer', sdp: lineProbeAnswer(probe.localDescription.sdp) });
    } catch (error) {
      console.warn('line probe', error);
    }
  };
  attempt();
  const timer = setInterval(attempt, LINE_PROBE_EVERY_MS);
  return () => {
    clearInterval(timer);
    for (const probe of probes) probe.close();
    probes.clear();
  };
}

/**
 * Resolves true once the line to the server works again, or false as soon as
 * `cancelled()` says so. Two checks race:
 * - the line probe (above): an ICE check over UDP is sent again and again by the
 *   browser, and the first after the line returns gets an answer (over ICE-TCP, each
 *   probe connects afresh, so no attempt begun during the outage holds it up);
 * - a small request (`/healthz`), a new one every 250 ms with a few in flight, for a
 *   server that restarted (its probe credentials are new).
 * Why not the WebSocket itself: one opened while the line is still down has its SYN
 * lost, TCP sends it again after 1, 2, 4, 8 s and more, and the browser lets only one
 * WebSocket to a server connect at a time, so every later socket would queue behind it
 * long after the line came back. Requests have no such lock, but the browser may hand a
 * later request to a connection attempt begun during the outage: after a 30 s outage
 * `/healthz` alone was seen to take 15 s more. The page opens its socket once either
 * check got through, on a line known to work.
 */
export function waitForServer(cancelled) {
  return new Promise((resolve) => {
    let settled = false;
    let stopProbe = () => {};
    const settle = (value, via) => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      stopProbe();
      if (value) window.cauLineBackVia = via;
      resolve(value);
    };
    const check = () => {
      if (cancelled()) {
        settle(false);
        return;
      }
      // Any answer will do: it came over the line, from the server.
      fetch('/healthz', { cache: 'no-store', signal: AbortSignal.timeout(LINE_CHECK_TIMEOUT_MS) })
        .then(() => settle(!cancelled(), 'healthz'))
        .catch(() => {});
    };
    const timer = setInterval(check, LINE_CHECK_INTERVAL_MS);
    stopProbe = probeLine(() => settle(!cancelled(), 'probe'));
    check();
  });
}

/** A media connection `disconnected` this long is given up and the session started afresh. */
const MEDIA_DISCONNECTED_GRACE_MS = 2000;

/** How often the browser tells the server what its `getStats()` sees. */
const STATS_INTERVAL_MS = 5000;

/** How often the shown size of each received video is checked (sent only when it changed). */
const VIDEO_SIZES_INTERVAL_MS = 1000;

/**
 * The camera is sent in three layers (simulcast), lowest first as the server expects;
 * the server forwards to each site the layer its line and its screen call for, and asks
 * this page to pause the layers no one receives (`publish_layers`).
 */
const CAMERA_LAYERS = [
  { rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'h', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

window.cauMetrics ??= { firstRemoteFrameMs: null, marks: {} };

/** Remember when `name` first happened, in ms since the page started loading. */
export function mark(name) {
  window.cauMetrics.marks[name] ??= Math.round(performance.now());
}

// ---------------------------------------------------------------------------------------
// Camera and microphone

/**
 * Open the camera and microphone, falling back to whichever of the two works.
 * Resolves to `{stream, status, warning}`: `status` is the i18n key saying what happened.
 */
export async function openLocalMedia() {
  mark('media_requested');
  if (!navigator.mediaDevices?.getUserMedia) {
    return { stream: new MediaStream(), status: 'media.insecure', warning: true };
  }
  const video = { width: { ideal: 1280 }, height: { ideal: 720 } };
  const attempts = [
    [{ audio: true, video }, 'media.ready'],
    [{ audio: true }, 'media.no_camera'],
    [{ video }, 'media.no_microphone'],
  ];
  for (const [constraints, status] of attempts) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      mark('media_opened');
      return { stream, status, warning: status !== 'media.ready' };
    } catch (error) {
      console.warn('getUserMedia', constraints, error);
      if (error.name === 'NotAllowedError' || error.name === 'SecurityError') {
        return { stream: new MediaStream(), status: 'media.denied', warning: true };
      }
    }
  }
  return { stream: new MediaStream(), status: 'media.none', warning: true };
}

/** Show the microphone's level in `meter`; returns a function that stops it. */
export function startMicMeter(stream, meter, fill) {
  const track = stream.getAudioTracks()[0];
  meter.hidden = !track;
  if (!track || typeof AudioContext !== 'function') return () => {};
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  // Browsers start an AudioContext suspended until the user touches the page.
  const resume = () => context.resume();
  document.addEventListener('pointerdown', resume, { once: true });
  let frame = 0;
  const tick = () => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const sample of samples) sum += sample * sample;
    const decibels = 10 * Math.log10(sum / samples.length + 1e-12);
    const level = Math.min(1, Math.max(0, (decibels + 60) / 60));
    fill.style.width = `${Math.round(level * 100)}%`;
    frame = requestAnimationFrame(tick);
  };
  tick();
  return () => {
    cancelAnimationFrame(frame);
    document.removeEventListener('pointerdown', resume);
    context.close().catch(() => {});
  };
}

// ---------------------------------------------------------------------------------------
// The session

/**
 * One attempt at being in the room: a WebSocket and an RTCPeerConnection.
 * It ends (calling `onEnded` once) when the socket closes, the media path fails, or the
 * user leaves.
 */
export class Session {
  /**
   * @param {object} options
   * @param {object} options.join  the `join` message to send when the socket opens
   * @param {MediaStream} options.stream  what to publish
   * @param {TileSet} options.tiles  where remote participants go
   * @param {Set<string>} options.fatalBeforeJoined  error codes before `joined` that end the session
   * @param {Set<string>} [options.fatalAlways]  error codes that end the session at any time
   * @param {() => void} options.onJoined
   * @param {({fatalError}) => void} options.onEnded
   * @param {(state: string) => void} options.onSignalingState
   * @param {(message: object) => (boolean | Promise<boolean>)} [options.onOther]
   *   messages this class does not handle itself; returns whether it knew the type
   * @param {(message: object) => void} [options.onError]  an `error` that does not end the session
   * @param {(sharing: boolean) => void} [options.onSharingChanged]  this site started or stopped sharing its screen
   */
  constructor(options) {
    this.joinMessage = options.join;
    this.stream = options.stream;
    this.tiles = options.tiles;
    this.fatalBeforeJoined = options.fatalBeforeJoined;
    this.fatalAlways = options.fatalAlways ?? new Set();
    this.onJoined = options.onJoined;
    this.onEnded = options.onEnded;
    this.onSignalingState = options.onSignalingState;
    this.onOther = options.onOther ?? (() => false);
    this.onErrorShown = options.onError ?? ((message) => showNotice(`error.${message.code}`, message.message));
    this.onSharingChanged = options.onSharingChanged;
    this.screens = ScreenStage.shared();
    this.screenTransceiver = null;
    this.screenTrack = null;
    this.participantId = null;
    this.pc = null;
    this.offerSent = false;
    this.pendingCandidates = [];
    /** The server's latest `tracks`, by mid: which participant each media line carries. */
    this.tracksByMid = new Map();
    /** Remote track id -> stream id (= participant id), from `track` events. */
    this.streamOfTrack = new Map();
    /** The first error that made further attempts pointless. */
    this.fatalError = null;
    /** In a meeting's lobby, before `joined`. */
    this.waiting = false;
    this.ended = false;
    this.signaling = new Signaling({
      onMessage: (message) => this.handle(message),
      onState: (state) => {
        if (this.ended) return;
        this.onSignalingState(state);
        mark(`signaling_${state}`);
        if (state === 'open') this.signaling.send(this.joinMessage);
        if (state === 'closed') this.end();
      },
      onError: (error) => {
        console.error('signaling', error);
        showNotice('error.browser', String(error?.message ?? error));
      },
    });
  }

  /** Send one message to the server; false when the socket is not open. */
  send(message) {
    return this.signaling.send(message);
  }

  sendMute(kind, muted) {
    if (this.participantId !== null) this.signaling.send({ type: 'mute', kind, muted });
  }

  /** Say goodbye and close; waits briefly for `left` so the others hear of it at once. */
  async leave() {
    if (this.ended) return;
    // A site waiting in a meeting's lobby may leave too; before that there is nothing to leave.
    const sent = (this.participantId !== null || this.waiting) && this.signaling.send({ type: 'leave' });
    if (sent) {
      await new Promise((resolve) => {
        this.onLeft = resolve;
        setTimeout(resolve, 500);
      });
    }
    this.end({ quiet: true });
  }

  end({ quiet = false } = {}) {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.statsTimer);
    clearInterval(this.sizesTimer);
    clearTimeout(this.disconnectedTimer);
    showVideoPaused(false);
    this.stopSharing();
    this.screens.clear();
    // Not `quiet` means the page will try again: the server keeps the seat meanwhile.
    this.signaling.close({ reconnecting: !quiet && !this.fatalError });
    if (this.pc) this.pc.close();
    if (!quiet) this.onEnded({ fatalError: this.fatalError });
  }

  /** Sends the server a summary of this browser's own `getStats()`. */
  async reportStats(pc) {
    if (this.ended || pc.connectionState !== 'connected') return;
    let report;
    try {
      report = await pc.getStats();
    } catch {
      return;
    }
    const sum = { frames_decoded: 0, frames_dropped: 0, freeze_count: 0, freeze_seconds: 0, packets_lost: 0 };
    let jitterDelay = 0, emitted = 0, concealed = 0, samples = 0, rtt = null;
    report.forEach((entry) => {
      if (entry.type === 'inbound-rtp') {
        sum.packets_lost += Math.max(0, entry.packetsLost ?? 0);
        if (entry.kind === 'video') {
          sum.frames_decoded += entry.framesDecoded ?? 0;
          sum.frames_dropped += entry.framesDropped ?? 0;
          sum.freeze_count += entry.freezeCount ?? 0;
          sum.freeze_seconds += entry.totalFreezesDuration ?? 0;
        } else if (entry.kind === 'audio') {
          jitterDelay += entry.jitterBufferDelay ?? 0;
          emitted += entry.jitterBufferEmittedCount ?? 0;
          concealed += entry.concealedSamples ?? 0;
          samples += entry.totalSamplesReceived ?? 0;
        }
      } else if (entry.type === 'candidate-pair' && entry.nominated && entry.currentRoundTripTime !== undefined) {
        rtt = entry.currentRoundTripTime * 1000;
      }
    });
    const stats = { ...sum, ice_state: pc.iceConnectionState, ice_state_changes: this.iceStateChanges };
    if (emitted > 0) stats.jitter_buffer_ms = (jitterDelay / emitted) * 1000;
    if (samples > 0) stats.concealed_ratio = concealed / samples;
    if (rtt !== null) stats.rtt_ms = rtt;
    this.signaling.send({ type: 'client_stats', stats });
  }

  async handle(message) {
    if (this.ended) return;
    mark(`received_${message.type}`);
    switch (message.type) {
      case 'joined':
        return this.onJoinedMessage(message);
      case 'answer':
        noteServerCandidates(message.sdp);
        await this.pc?.setRemoteDescription({ type: 'answer', sdp: String(message.sdp) });
        return this.syncRemoteTracks();
      case 'offer':
        return this.onOffer(message);
      case 'participant_joined':
        this.tiles.add(message.participant);
        return this.syncRemoteTracks();
      case 'participant_left':
        return this.tiles.remove(message.participant_id);
      case 'track_published':
      case 'track_unpublished':
        this.tiles.get(message.participant_id)?.setPublished(message.kind, message.type === 'track_published');
        return undefined;
      case 'mute':
        if (message.kind === 'screen') {
          this.screens.setSharing(String(message.participant_id), message.muted !== true);
          return undefined;
        }
        this.tiles.get(message.participant_id)?.setMuted(message.kind, message.muted === true);
        return undefined;
      case 'left':
        this.onLeft?.();
        return undefined;
      case 'video_paused':
        showVideoPaused(message.paused === true);
        return undefined;
      case 'publish_layers':
        return this.onPublishLayers(message);
      case 'server_stopping':
        // The server restarts: join again once it is back (the page's pauses apply).
        this.end();
        return undefined;
      case 'error':
        return this.onErrorMessage(message);
      case 'lobby':
        this.waiting = true;
        return this.onOther(message);
      default:
        if (!(await this.onOther(message))) console.warn('unknown message from the server', message.type);
        return undefined;
    }
  }

  async onJoinedMessage(message) {
    this.participantId = String(message.participant_id);
    this.waiting = false;
    noteLineProbe(message.line_probe);
    for (const participant of message.participants ?? []) this.tiles.add(participant);
    this.onJoined(message);

    const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle' });
    this.pc = pc;
    window.cauPeerConnection = pc;
    setConnectionState(pc.connectionState);
    pc.addEventListener('connectionstatechange', () => {
      if (this.ended) return;
      setConnectionState(pc.connectionState);
      mark(`pc_${pc.connectionState}`);
      // A line that drops leaves the connection `disconnected`; a stale socket may not
      // notice for minutes. Start again after a short grace, which a blip survives.
      clearTimeout(this.disconnectedTimer);
      if (pc.connectionState === 'failed') this.end();
      if (pc.connectionState === 'disconnected') {
        this.disconnectedTimer = setTimeout(() => this.end(), MEDIA_DISCONNECTED_GRACE_MS);
      }
    });
    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (!candidate || !candidate.candidate) return;
      const message = { type: 'candidate', candidate: candidate.candidate };
      if (candidate.sdpMid !== null) message.sdp_mid = candidate.sdpMid;
      if (this.offerSent) this.signaling.send(message);
      else this.pendingCandidates.push(message);
    });
    pc.addEventListener('track', ({ track, streams }) => {
      if (streams[0]) this.streamOfTrack.set(track.id, streams[0].id);
    });
    this.iceStateChanges = 0;
    pc.addEventListener('iceconnectionstatechange', () => { this.iceStateChanges += 1; });
    // The IT staff's dashboard shows what the browser itself sees of its line.
    this.statsTimer = setInterval(() => this.reportStats(pc), STATS_INTERVAL_MS);
    this.sentSizes = '';
    this.sizesTimer = setInterval(() => this.reportVideoSizes(), VIDEO_SIZES_INTERVAL_MS);

    for (const track of this.stream.getTracks()) {
      const init = { direction: 'sendonly', streams: [this.stream] };
      if (track.kind === 'video') init.sendEncodings = CAMERA_LAYERS.map((layer) => ({ ...layer }));
      const transceiver = pc.addTransceiver(track, init);
      if (track.kind === 'video') keepResolution(transceiver.sender);
    }
    // A line of its own for sharing a screen, empty until the site shares: filling it
    // later (`replaceTrack`) needs no new offer, and the client offers only once.
    this.screenTransceiver = pc.addTransceiver('video', { direction: 'sendonly' });
    // A site with neither camera nor microphone (an IT room's PC, a page the browser does
    // not trust with them) still takes part: its offer needs one media section, or the
    // browser refuses its own offer, so it offers one that only receives.
    if (this.stream.getTracks().length === 0) pc.addTransceiver('audio', { direction: 'recvonly' });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const offerMessage = { type: 'offer', sdp: pc.localDescription.sdp };
    if (this.screenTransceiver.mid) offerMessage.screen_mid = this.screenTransceiver.mid;
    this.signaling.send(offerMessage);
    this.offerSent = true;
    for (const candidate of this.pendingCandidates.splice(0)) this.signaling.send(candidate);

    // A muted microphone or camera stays muted across a reconnect.
    for (const track of this.stream.getTracks()) {
      if (!track.enabled) this.sendMute(track.kind, true);
    }
  }

  async onOffer(message) {
    const pc = this.pc;
    if (!pc) return;
    this.tracksByMid = new Map();
    for (const track of Array.isArray(message.tracks) ? message.tracks : []) {
      if (track && typeof track.mid === 'string') this.tracksByMid.set(track.mid, track);
    }
    window.cauTracksByMid = this.tracksByMid;
    noteServerCandidates(message.sdp);
    await pc.setRemoteDescription({ type: 'offer', sdp: String(message.sdp) });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.signaling.send({ type: 'answer', sdp: pc.localDescription.sdp });
    this.syncRemoteTracks();
  }

  /**
   * Shares a screen or window (the browser asks which) on the line kept for it, until
   * `stopSharing` or the browser's own stop button. Resolves false if nothing was shared.
   */
  async shareScreen() {
    if (!this.screenTransceiver || this.screenTrack || !navigator.mediaDevices?.getDisplayMedia) return false;
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
    } catch (error) {
      console.warn('getDisplayMedia', error);
      return false;
    }
    const track = stream.getVideoTracks()[0];
    if (!track || this.ended) {
      for (const t of stream.getTracks()) t.stop();
      return false;
    }
    // Text and slides: sharp pictures, fewer of them, rather than the reverse.
    track.contentHint = 'detail';
    track.addEventListener('ended', () => this.stopSharing());
    this.screenTrack = track;
    await this.screenTransceiver.sender.replaceTrack(track);
    keepResolution(this.screenTransceiver.sender);
    this.signaling.send({ type: 'mute', kind: 'screen', muted: false });
    this.onSharingChanged?.(true);
    return true;
  }

  async stopSharing() {
    const track = this.screenTrack;
    if (!track) return;
    this.screenTrack = null;
    track.stop();
    if (!this.ended) {
      await this.screenTransceiver?.sender.replaceTrack(null).catch(() => {});
      this.signaling.send({ type: 'mute', kind: 'screen', muted: true });
    }
    this.onSharingChanged?.(false);
  }

  /** Pause or resume the layers of one of our video tracks, as the server asks. */
  async onPublishLayers(message) {
    const transceiver = this.pc?.getTransceivers().find((t) => t.mid === message.mid);
    const sender = transceiver?.sender;
    if (!sender?.track || !Array.isArray(message.layers)) return;
    const parameters = sender.getParameters();
    if (!parameters.encodings?.length) return;
    let changed = false;
    for (const layer of message.layers) {
      const encoding = layer?.rid === null || layer?.rid === undefined
        ? parameters.encodings[0]
        : parameters.encodings.find((e) => e.rid === layer.rid);
      if (!encoding || encoding.active === (layer.active === true)) continue;
      encoding.active = layer.active === true;
      changed = true;
    }
    if (!changed) return;
    try {
      await sender.setParameters(parameters);
    } catch (error) {
      console.warn('setParameters', error);
    }
  }

  /**
   * Tells the server at what height (device pixels) each received video is shown, 0 for
   * one not shown, so that it sends the smallest layer that fills it. Sent on change only.
   */
  reportVideoSizes() {
    if (this.ended || !this.pc) return;
    const shownHeight = new Map();
    for (const tile of this.tiles.all()) {
      const track = tile.tracks.video;
      if (!track) continue;
      const visible = tile.video.isConnected && tile.video.getClientRects().length > 0;
      shownHeight.set(track.id, visible ? Math.round(tile.video.clientHeight * (window.devicePixelRatio || 1)) : 0);
    }
    // A shared screen is wanted whole, whether or not its pictures have come yet (the
    // stage shows only once they do), unless its presenter said it stopped.
    const screenHeight = Math.round(window.innerHeight * (window.devicePixelRatio || 1));
    const sizes = [];
    for (const transceiver of this.pc.getTransceivers()) {
      if (!transceiver.mid || transceiver.receiver.track.kind !== 'video') continue;
      const direction = transceiver.currentDirection;
      if (direction !== 'recvonly' && direction !== 'sendrecv') continue;
      const described = this.tracksByMid.get(transceiver.mid);
      const height = described?.kind === 'screen'
        ? (this.screens.sharing.get(String(described.participant_id)) === false ? 0 : screenHeight)
        : shownHeight.get(transceiver.receiver.track.id) ?? 0;
      sizes.push({ mid: transceiver.mid, height });
    }
    const text = JSON.stringify(sizes);
    if (text === this.sentSizes) return;
    if (this.signaling.send({ type: 'video_sizes', sizes })) this.sentSizes = text;
  }

  onErrorMessage(message) {
    const code = String(message.code ?? 'internal');
    const text = typeof message.message === 'string' ? message.message : '';
    if (this.fatalAlways.has(code) || (this.participantId === null && this.fatalBeforeJoined.has(code))) {
      this.fatalError = { code, message: text };
      this.end();
      return;
    }
    this.onErrorShown({ code, message: text });
  }

  /** Put every received track on its participant's `<video>`, by the server's `tracks`. */
  syncRemoteTracks() {
    if (!this.pc) return;
    const wanted = new Map();
    const screens = new Map();
    for (const transceiver of this.pc.getTransceivers()) {
      const direction = transceiver.currentDirection;
      if (direction !== 'recvonly' && direction !== 'sendrecv') continue;
      const track = transceiver.receiver.track;
      const described = this.tracksByMid.get(transceiver.mid);
      const owner = described?.participant_id ?? this.streamOfTrack.get(track.id);
      if (!owner || owner === this.participantId) continue;
      if (described?.kind === 'screen') {
        screens.set(owner, track);
        continue;
      }
      const tracks = wanted.get(owner) ?? {};
      tracks[track.kind] = track;
      wanted.set(owner, tracks);
    }
    for (const tile of this.tiles.all()) tile.setTracks(wanted.get(tile.id) ?? {});
    this.screens.setTracks(screens);
  }
}

// ---------------------------------------------------------------------------------------
// Shared screens

/**
 * The screen a site shares, shown large above everyone (`#screen-stage`, whose `<video>`
 * carries `data-participant-id` of the presenter). A site's screen line exists from its
 * first offer but carries pictures only while it shares: the stage shows a screen once
 * pictures arrive and until its presenter says it stopped.
 */
export class ScreenStage {
  /** The page's one stage, shared by its successive sessions. */
  static shared() {
    ScreenStage.instance ??= new ScreenStage();
    return ScreenStage.instance;
  }

  constructor() {
    this.element = $('screen-stage');
    this.video = this.element?.querySelector('video') ?? null;
    this.tracks = new Map();
    /** Presenter to whether it said it shares (unknown for a share begun before we came). */
    this.sharing = new Map();
    this.shown = null;
    this.video?.addEventListener('resize', () => this.render());
    this.video?.addEventListener('loadeddata', () => this.render());
  }

  setTracks(tracks) {
    this.tracks = tracks;
    this.render();
  }

  setSharing(owner, sharing) {
    this.sharing.set(owner, sharing);
    this.render();
  }

  clear() {
    this.tracks = new Map();
    this.sharing.clear();
    this.render();
  }

  render() {
    if (!this.element || !this.video) return;
    // The presenter who said it shares, else any whose pictures arrive.
    const candidates = [...this.tracks.keys()].filter((owner) => this.sharing.get(owner) !== false);
    const owner = candidates.find((o) => this.sharing.get(o) === true) ?? candidates[0] ?? null;
    if (owner !== this.shown) {
      this.shown = owner;
      this.video.srcObject = owner === null ? null : new MediaStream([this.tracks.get(owner)]);
      this.video.dataset.participantId = owner ?? '';
      if (owner !== null) this.video.play().catch(() => {});
    }
    const visible = owner !== null && this.video.videoWidth > 0;
    this.element.hidden = !visible;
    document.body.dataset.screenShared = String(visible);
  }
}

// ---------------------------------------------------------------------------------------
// Remote participants

/**
 * One remote participant: a `<video>` carrying their camera and microphone. The `<video>`
 * carries `data-participant` (the name), `data-participant-id` and, for a site of a
 * scheduled meeting, `data-site` (the site code).
 */
export class Tile {
  constructor(participant) {
    this.id = String(participant.id);
    this.site = typeof participant.site === 'string' ? participant.site : null;
    this.tracks = {};
    this.published = {};
    this.muted = { audio: participant.audio_muted === true, video: participant.video_muted === true };

    this.element = document.createElement('figure');
    this.element.className = 'tile';
    this.element.dataset.participantId = this.id;

    this.video = document.createElement('video');
    this.video.autoplay = true;
    this.video.playsInline = true;
    this.video.setAttribute('playsinline', '');
    this.video.dataset.participantId = this.id;
    if (this.site !== null) {
      this.element.dataset.site = this.site;
      this.video.dataset.site = this.site;
    }
    this.video.addEventListener('resize', () => this.updateOverlay());
    this.video.addEventListener('loadeddata', () => this.updateOverlay());

    this.overlay = document.createElement('div');
    this.overlay.className = 'tile-overlay';

    const caption = document.createElement('figcaption');
    this.nameLabel = document.createElement('span');
    this.nameLabel.className = 'tile-name';
    this.micBadge = document.createElement('span');
    this.micBadge.className = 'badge badge-mic';
    setText(this.micBadge, 'meeting.muted_audio');
    /** Extra badges a page may show (floor, muted by the chair). */
    this.badges = document.createElement('span');
    this.badges.className = 'tile-badges';
    caption.append(this.nameLabel, this.micBadge, this.badges);

    this.element.append(this.video, this.overlay, caption);
    this.setName(participant.name);
    this.update();
  }

  setName(name) {
    this.name = String(name ?? '');
    this.video.dataset.participant = this.name;
    this.nameLabel.textContent = this.name;
    this.element.title = this.name;
  }

  setMuted(kind, muted) {
    if (kind !== 'audio' && kind !== 'video') return;
    this.muted[kind] = muted;
    this.update();
  }

  setPublished(kind, published) {
    if (kind !== 'audio' && kind !== 'video') return;
    this.published[kind] = published;
    this.update();
  }

  /** Show exactly `tracks` ({audio, video}) on the `<video>`, in one MediaStream. */
  setTracks(tracks) {
    if (tracks.audio === this.tracks.audio && tracks.video === this.tracks.video) return;
    this.tracks = tracks;
    const list = [tracks.audio, tracks.video].filter(Boolean);
    this.video.srcObject = list.length > 0 ? new MediaStream(list) : null;
    if (list.length > 0) this.play();
    if (tracks.video) this.watchFirstFrame();
    this.update();
    this.onTracksChanged?.();
  }

  play() {
    this.video.play().catch((error) => {
      // Autoplay with sound needs a user gesture unless the kiosk allows it: ask for one.
      const button = $('enable-sound');
      if (error.name === 'NotAllowedError' && button) button.hidden = false;
    });
  }

  watchFirstFrame() {
    if (window.cauMetrics.firstRemoteFrameMs !== null) return;
    const record = () => {
      if (window.cauMetrics.firstRemoteFrameMs === null) {
        window.cauMetrics.firstRemoteFrameMs = Math.round(performance.now());
        mark('first_remote_frame');
      }
    };
    if (typeof this.video.requestVideoFrameCallback === 'function') {
      this.video.requestVideoFrameCallback(record);
    } else {
      this.video.addEventListener('loadeddata', record, { once: true });
    }
  }

  update() {
    this.micBadge.hidden = !this.muted.audio;
    this.element.classList.toggle('audio-muted', this.muted.audio);
    this.updateOverlay();
  }

  updateOverlay() {
    let key = null;
    if (this.muted.video) key = 'meeting.muted_video';
    else if (!this.tracks.video) key = 'meeting.waiting_video';
    else if (this.video.videoWidth === 0) key = 'meeting.waiting_video';
    this.overlay.hidden = key === null;
    this.element.classList.toggle('no-video', key !== null);
    if (key !== null) setText(this.overlay, key);
  }
}

/** The remote participants' tiles, by participant id. `onChange` runs after each change. */
export class TileSet {
  /**
   * @param {object} hooks
   * @param {(tile: Tile) => void} hooks.place  put a new tile's element in the page
   * @param {() => void} [hooks.onChange]
   */
  constructor({ place, onChange = () => {} }) {
    this.tiles = new Map();
    this.place = place;
    this.onChange = onChange;
  }

  get size() {
    return this.tiles.size;
  }

  get(id) {
    return this.tiles.get(id);
  }

  all() {
    return [...this.tiles.values()];
  }

  add(participant) {
    if (!participant || typeof participant.id !== 'string') return;
    const existing = this.tiles.get(participant.id);
    if (existing) {
      existing.setName(participant.name);
      return;
    }
    const tile = new Tile(participant);
    tile.onTracksChanged = () => this.onChange();
    this.tiles.set(tile.id, tile);
    this.place(tile);
    this.onChange();
  }

  remove(id) {
    const tile = this.tiles.get(id);
    if (!tile) return;
    tile.video.srcObject = null;
    tile.element.remove();
    this.tiles.delete(id);
    this.onChange();
  }

  clear() {
    for (const id of [...this.tiles.keys()]) this.remove(id);
  }
}

// ---------------------------------------------------------------------------------------
// Status, notices, views: the pages share these element ids.

/** Show the signaling state; `attempt` is shown while reconnecting. */
/**
 * Shows the state of the own microphone and camera on the meeting controls and the
 * self-view. `micLocked`: the microphone button is disabled (a meeting where the site
 * does not hold the floor).
 */
export function updateLocalControls(localStream, micLocked = false) {
  const audio = localStream.getAudioTracks()[0];
  const video = localStream.getVideoTracks()[0];
  const micButton = $('mic-button');
  const micOff = !audio || !audio.enabled;
  micButton.disabled = !audio || micLocked;
  micButton.setAttribute('aria-pressed', String(micOff));
  micButton.classList.toggle('off', micOff);
  setText(micButton, micOff ? 'meeting.mic_on' : 'meeting.mic_off');
  $('self-mic-badge').hidden = !micOff;

  const cameraButton = $('camera-button');
  const cameraOff = !video || !video.enabled;
  cameraButton.disabled = !video;
  cameraButton.setAttribute('aria-pressed', String(cameraOff));
  cameraButton.classList.toggle('off', cameraOff);
  setText(cameraButton, cameraOff ? 'meeting.cam_on' : 'meeting.cam_off');
  $('self-tile').classList.toggle('no-video', cameraOff);
  setText($('self-overlay'), video ? 'meeting.muted_video' : 'meeting.no_video');
}

export function setSignalingState(state, attempt = 0) {
  const element = $('signaling-state');
  element.dataset.state = state;
  const value = element.querySelector('.status-value');
  if (state === 'reconnecting') setText(value, 'state.reconnecting', { attempt });
  else setText(value, `state.${state}`);
}

/** Show the RTCPeerConnection's connectionState; `data-state` is exactly that value. */
export function setConnectionState(state) {
  const element = $('connection-state');
  element.dataset.state = state;
  setText(element.querySelector('.status-value'), `state.${state}`);
}

/** Show an error: the localised text for `key`, and the server's own words under it. */
export function showNotice(key, detail = '', vars = undefined) {
  const known = has(key);
  setText($('notice-title'), 'error.title');
  setText($('notice-message'), known ? key : 'error.server_said', known ? vars : { message: detail });
  const detailElement = $('notice-detail');
  if (known && detail) setText(detailElement, 'error.server_said', { message: detail });
  else {
    delete detailElement.dataset.i18n;
    detailElement.textContent = '';
  }
  $('notice').hidden = false;
}

/**
 * Asks the encoder to keep each layer's size and drop frames instead when the PC or the
 * uplink runs short: the server matches layers to the sizes sites show videos at, and a
 * layer whose picture shrinks on its own would be chosen for a size it no longer fills.
 */
function keepResolution(sender) {
  try {
    const parameters = sender.getParameters();
    parameters.degradationPreference = 'maintain-resolution';
    sender.setParameters(parameters).catch((error) => console.warn('degradationPreference', error));
  } catch (error) {
    console.warn('degradationPreference', error);
  }
}

/**
 * Wires `#screen-button` to share or stop sharing through `getSession()`'s session.
 * Hidden where the browser cannot share a screen.
 */
export function setupScreenButton(getSession) {
  const button = $('screen-button');
  if (!button) return;
  if (!navigator.mediaDevices?.getDisplayMedia) {
    button.hidden = true;
    button.dataset.unsupported = 'true';
    return;
  }
  button.addEventListener('click', async () => {
    const session = getSession();
    if (!session) return;
    if (session.screenTrack) await session.stopSharing();
    else await session.shareScreen();
  });
}

/** Shows whether this site is sharing its screen on `#screen-button`. */
export function showSharing(sharing) {
  const button = $('screen-button');
  if (!button) return;
  button.setAttribute('aria-pressed', String(sharing));
  button.classList.toggle('active', sharing);
  setText(button, sharing ? 'meeting.stop_share' : 'meeting.share_screen');
}

/** Show or hide the notice that the line carries audio but not (all) video. */
export function showVideoPaused(paused) {
  const element = $('video-paused');
  if (element) element.hidden = !paused;
  document.body.dataset.videoPaused = String(paused);
}

export function hideNotice() {
  $('notice').hidden = true;
}

export function showView(id) {
  for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== id;
  document.body.dataset.view = id;
}
