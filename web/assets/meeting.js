// The join page, /join/<room>: check camera and microphone, then meet.
//
// One `Session` is one attempt at being in the room: a WebSocket (signaling.js) and an
// RTCPeerConnection. The page publishes its microphone and camera with one offer right
// after `joined`; from then on only the server offers, adding and removing the other
// participants' tracks (docs/signaling.md). When a session drops, the page starts a new
// one after a pause, until the user leaves: a commune's kiosk PC rejoins on its own.
//
// Query: `name` (the site name), `autojoin=1` (join at once, for kiosks and tests),
// `lang=vi|en`. For tests, `window.cauPeerConnection` is the current RTCPeerConnection and
// `window.cauMetrics.firstRemoteFrameMs` the time from page load to the first remote frame.

import { applyI18n, has, mountLanguageSwitch, setText, t } from './i18n.js';
import { Signaling } from './signaling.js';

const ROOM_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
// Control characters are refused by the server (docs/signaling.md, `join`).
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
const NAME_KEY = 'cau.name';
/** Pauses before reconnecting, by attempt; the last repeats. */
const RECONNECT_DELAYS_MS = [1000, 2000, 4000, 8000, 10000];
/** Errors before `joined` that another attempt would only repeat. */
const FATAL_BEFORE_JOINED = new Set([
  'invalid_room', 'invalid_name', 'room_full', 'server_full', 'already_joined', 'not_joined',
]);

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const room = roomFromPath(location.pathname);

window.cauMetrics = { firstRemoteFrameMs: null, marks: {} };

/** Remember when `name` first happened, in ms since the page started loading. */
function mark(name) {
  window.cauMetrics.marks[name] ??= Math.round(performance.now());
}

/** The local camera and microphone: a MediaStream with at most one track of each kind. */
let localStream = new MediaStream();
let stopMeter = () => {};
/** The current session, or null when not trying to be in the meeting. */
let session = null;
let reconnectAttempt = 0;
let reconnectTimer = null;
/** Remote participants by id: their tiles. */
const tiles = new Map();

// ---------------------------------------------------------------------------------------
// Start-up

mark('script_started');
mountLanguageSwitch($('lang-switch'));
setupJoinView();
setupMeetingControls();
applyI18n();

if (room === null) {
  showNotice('error.invalid_room');
  $('join-button').disabled = true;
} else {
  const openingMedia = openMedia();
  if (params.get('autojoin') === '1' && nameIsValid($('name').value.trim())) {
    openingMedia.then(() => joinMeeting());
  }
}

// ---------------------------------------------------------------------------------------
// Join view

function setupJoinView() {
  const label = room ?? '';
  $('room-label').textContent = label;
  setText($('join-room'), 'join.room', { room: label });
  document.title = room ? `${room} · Cầu` : 'Cầu';

  const nameInput = $('name');
  let remembered = '';
  try {
    remembered = localStorage.getItem(NAME_KEY) ?? '';
  } catch {
    // Storage may be disabled: no remembered name.
  }
  nameInput.value = (params.get('name') ?? remembered).slice(0, 64);

  $('join-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = nameInput.value.trim();
    if (!nameIsValid(name)) {
      showNotice('error.invalid_name');
      nameInput.focus();
      return;
    }
    try {
      localStorage.setItem(NAME_KEY, name);
    } catch {
      // Nothing to remember with.
    }
    joinMeeting();
  });
}

/** Open the camera and microphone, falling back to whichever of the two works. */
async function openMedia() {
  stopLocalMedia();
  showPreview(null);
  setText($('media-status'), 'media.requesting');
  mark('media_requested');
  if (!navigator.mediaDevices?.getUserMedia) {
    setMediaStatus('media.insecure');
    return;
  }
  const video = { width: { ideal: 1280 }, height: { ideal: 720 } };
  const attempts = [
    [{ audio: true, video }, 'media.ready'],
    [{ audio: true }, 'media.no_camera'],
    [{ video }, 'media.no_microphone'],
  ];
  for (const [constraints, status] of attempts) {
    try {
      localStream = await navigator.mediaDevices.getUserMedia(constraints);
      mark('media_opened');
      setMediaStatus(status, status !== 'media.ready');
      showPreview(localStream);
      return;
    } catch (error) {
      console.warn('getUserMedia', constraints, error);
      if (error.name === 'NotAllowedError' || error.name === 'SecurityError') {
        setMediaStatus('media.denied', true);
        return;
      }
    }
  }
  setMediaStatus('media.none', true);
}

function setMediaStatus(key, warning = false) {
  const status = $('media-status');
  setText(status, key);
  status.classList.toggle('warning', warning);
}

function showPreview(stream) {
  const preview = $('preview');
  const hasVideo = stream !== null && stream.getVideoTracks().length > 0;
  preview.srcObject = hasVideo ? stream : null;
  $('preview-placeholder').hidden = hasVideo;
  if (stream === null || stream.getVideoTracks().length === 0) {
    setText($('preview-placeholder'), stream === null ? 'media.requesting' : 'meeting.no_video');
  }
  $('self-video').srcObject = hasVideo ? stream : null;
  stopMeter();
  stopMeter = stream === null ? () => {} : startMicMeter(stream);
}

/** Show the microphone's level on the join view; returns a function that stops it. */
function startMicMeter(stream) {
  const meter = $('mic-meter');
  const track = stream.getAudioTracks()[0];
  meter.hidden = !track;
  if (!track || typeof AudioContext !== 'function') return () => {};
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const fill = $('mic-meter-fill');
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

function stopLocalMedia() {
  stopMeter();
  stopMeter = () => {};
  for (const track of localStream.getTracks()) track.stop();
  localStream = new MediaStream();
}

// ---------------------------------------------------------------------------------------
// Meeting

function joinMeeting() {
  const name = $('name').value.trim();
  hideNotice();
  showView('meeting-view');
  $('status').hidden = false;
  $('self-name').textContent = name;
  // Keep the meter off during the meeting: the self view shows the mute state instead.
  stopMeter();
  stopMeter = () => {};
  reconnectAttempt = 0;
  updateControls();
  updateSiteCount();
  startSession(name);
}

function startSession(name) {
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  session = new Session(room, name, localStream, {
    onJoined: () => {
      reconnectAttempt = 0;
    },
    onEnded: ({ fatalError }) => {
      session = null;
      removeAllTiles();
      setConnectionState('closed');
      if (fatalError) {
        stopLocalMediaAndReturnToJoin(fatalError);
        return;
      }
      scheduleReconnect(name);
    },
  });
}

function scheduleReconnect(name) {
  reconnectAttempt += 1;
  const delay = RECONNECT_DELAYS_MS[Math.min(reconnectAttempt, RECONNECT_DELAYS_MS.length) - 1];
  setSignalingState('reconnecting');
  reconnectTimer = setTimeout(() => startSession(name), delay);
}

/** Leave for good: tell the server, drop media, show the "you have left" view. */
async function leaveMeeting() {
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  const current = session;
  session = null;
  if (current) await current.leave();
  removeAllTiles();
  stopLocalMedia();
  $('status').hidden = true;
  showView('left-view');
}

function stopLocalMediaAndReturnToJoin(error) {
  $('status').hidden = true;
  showView('join-view');
  showNotice(`error.${error.code}`, error.message);
  // The preview keeps running, so the user can fix the name and try again.
  showPreview(localStream);
}

function setupMeetingControls() {
  $('mic-button').addEventListener('click', () => toggleTrack('audio'));
  $('camera-button').addEventListener('click', () => toggleTrack('video'));
  $('leave-button').addEventListener('click', () => leaveMeeting());
  $('rejoin-button').addEventListener('click', async () => {
    showView('join-view');
    await openMedia();
    joinMeeting();
  });
  $('enable-sound').addEventListener('click', () => {
    $('enable-sound').hidden = true;
    for (const tile of tiles.values()) tile.play();
  });
  $('notice-close').addEventListener('click', hideNotice);
  window.addEventListener('pagehide', () => session?.leave());
}

function toggleTrack(kind) {
  const track = kind === 'audio' ? localStream.getAudioTracks()[0] : localStream.getVideoTracks()[0];
  if (!track) return;
  track.enabled = !track.enabled;
  session?.sendMute(kind, !track.enabled);
  updateControls();
}

function updateControls() {
  const audio = localStream.getAudioTracks()[0];
  const video = localStream.getVideoTracks()[0];
  const micButton = $('mic-button');
  const micOff = !audio || !audio.enabled;
  micButton.disabled = !audio;
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

/**
 * One attempt at being in the room: a WebSocket and an RTCPeerConnection.
 * It ends (calling `onEnded` once) when the socket closes, the media path fails, or the
 * user leaves.
 */
class Session {
  constructor(roomName, name, stream, { onJoined, onEnded }) {
    this.roomName = roomName;
    this.name = name;
    this.stream = stream;
    this.onJoined = onJoined;
    this.onEnded = onEnded;
    this.participantId = null;
    this.pc = null;
    this.offerSent = false;
    this.pendingCandidates = [];
    /** The server's latest `tracks`, by mid: which participant each media line carries. */
    this.tracksByMid = new Map();
    /** Remote track id -> stream id (= participant id), from `track` events. */
    this.streamOfTrack = new Map();
    /** The first error that made further attempts pointless, before `joined`. */
    this.fatalError = null;
    this.ended = false;
    this.signaling = new Signaling({
      onMessage: (message) => this.handle(message),
      onState: (state) => {
        if (this.ended) return;
        setSignalingState(state);
        mark(`signaling_${state}`);
        if (state === 'open') this.signaling.send({ type: 'join', room: this.roomName, name: this.name });
        if (state === 'closed') this.end();
      },
      onError: (error) => {
        console.error('signaling', error);
        showNotice('error.browser', String(error?.message ?? error));
      },
    });
  }

  sendMute(kind, muted) {
    if (this.participantId !== null) this.signaling.send({ type: 'mute', kind, muted });
  }

  /** Say goodbye and close; waits briefly for `left` so the others hear of it at once. */
  async leave() {
    if (this.ended) return;
    const sent = this.participantId !== null && this.signaling.send({ type: 'leave' });
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
    this.signaling.close();
    if (this.pc) this.pc.close();
    if (!quiet) this.onEnded({ fatalError: this.fatalError });
  }

  async handle(message) {
    if (this.ended) return;
    mark(`received_${message.type}`);
    switch (message.type) {
      case 'joined':
        return this.onJoinedMessage(message);
      case 'answer':
        await this.pc?.setRemoteDescription({ type: 'answer', sdp: String(message.sdp) });
        return this.syncRemoteTracks();
      case 'offer':
        return this.onOffer(message);
      case 'participant_joined':
        addParticipant(message.participant);
        return this.syncRemoteTracks();
      case 'participant_left':
        return removeParticipant(message.participant_id);
      case 'track_published':
      case 'track_unpublished':
        tiles.get(message.participant_id)?.setPublished(message.kind, message.type === 'track_published');
        return undefined;
      case 'mute':
        tiles.get(message.participant_id)?.setMuted(message.kind, message.muted === true);
        return undefined;
      case 'left':
        this.onLeft?.();
        return undefined;
      case 'error':
        return this.onErrorMessage(message);
      default:
        console.warn('unknown message from the server', message.type);
        return undefined;
    }
  }

  async onJoinedMessage(message) {
    this.participantId = String(message.participant_id);
    for (const participant of message.participants ?? []) addParticipant(participant);
    this.onJoined();

    const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle' });
    this.pc = pc;
    window.cauPeerConnection = pc;
    setConnectionState(pc.connectionState);
    pc.addEventListener('connectionstatechange', () => {
      if (this.ended) return;
      setConnectionState(pc.connectionState);
      mark(`pc_${pc.connectionState}`);
      if (pc.connectionState === 'failed') this.end();
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

    for (const track of this.stream.getTracks()) {
      pc.addTransceiver(track, { direction: 'sendonly', streams: [this.stream] });
    }
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.signaling.send({ type: 'offer', sdp: pc.localDescription.sdp });
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
    await pc.setRemoteDescription({ type: 'offer', sdp: String(message.sdp) });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.signaling.send({ type: 'answer', sdp: pc.localDescription.sdp });
    this.syncRemoteTracks();
  }

  onErrorMessage(message) {
    const code = String(message.code ?? 'internal');
    const text = typeof message.message === 'string' ? message.message : '';
    if (this.participantId === null && FATAL_BEFORE_JOINED.has(code)) {
      this.fatalError = { code, message: text };
      this.end();
      return;
    }
    showNotice(`error.${code}`, text);
  }

  /** Put every received track on its participant's `<video>`, by the server's `tracks`. */
  syncRemoteTracks() {
    if (!this.pc) return;
    const wanted = new Map();
    for (const transceiver of this.pc.getTransceivers()) {
      const direction = transceiver.currentDirection;
      if (direction !== 'recvonly' && direction !== 'sendrecv') continue;
      const track = transceiver.receiver.track;
      const owner = this.tracksByMid.get(transceiver.mid)?.participant_id
        ?? this.streamOfTrack.get(track.id);
      if (!owner || owner === this.participantId) continue;
      const tracks = wanted.get(owner) ?? {};
      tracks[track.kind] = track;
      wanted.set(owner, tracks);
    }
    for (const [id, tile] of tiles) tile.setTracks(wanted.get(id) ?? {});
  }
}

// ---------------------------------------------------------------------------------------
// Remote participants

/** One remote participant: a `<video>` carrying their camera and microphone. */
class Tile {
  constructor(participant) {
    this.id = String(participant.id);
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
    caption.append(this.nameLabel, this.micBadge);

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
  }

  play() {
    this.video.play().catch((error) => {
      // Autoplay with sound needs a user gesture unless the kiosk allows it: ask for one.
      if (error.name === 'NotAllowedError') $('enable-sound').hidden = false;
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

function addParticipant(participant) {
  if (!participant || typeof participant.id !== 'string') return;
  const existing = tiles.get(participant.id);
  if (existing) {
    existing.setName(participant.name);
    return;
  }
  const tile = new Tile(participant);
  tiles.set(tile.id, tile);
  $('tiles').append(tile.element);
  layoutTiles();
}

function removeParticipant(id) {
  const tile = tiles.get(id);
  if (!tile) return;
  tile.video.srcObject = null;
  tile.element.remove();
  tiles.delete(id);
  layoutTiles();
}

function removeAllTiles() {
  for (const id of [...tiles.keys()]) removeParticipant(id);
}

function layoutTiles() {
  const count = tiles.size;
  const container = $('tiles');
  const columns = Math.max(1, Math.ceil(Math.sqrt(count)));
  container.dataset.count = String(count);
  container.style.setProperty('--columns', String(columns));
  container.style.setProperty('--rows', String(Math.max(1, Math.ceil(count / columns))));
  $('alone').hidden = count > 0;
  updateSiteCount();
}

function updateSiteCount() {
  setText($('site-count'), 'meeting.sites', { count: tiles.size + 1 });
}

// ---------------------------------------------------------------------------------------
// Status, notices, views

function setSignalingState(state) {
  const element = $('signaling-state');
  element.dataset.state = state;
  const value = element.querySelector('.status-value');
  if (state === 'reconnecting') setText(value, 'state.reconnecting', { attempt: reconnectAttempt });
  else setText(value, `state.${state}`);
}

/** Show the RTCPeerConnection's connectionState; `data-state` is exactly that value. */
function setConnectionState(state) {
  const element = $('connection-state');
  element.dataset.state = state;
  setText(element.querySelector('.status-value'), `state.${state}`);
}

/** Show an error: the localised text for `key`, and the server's own words under it. */
function showNotice(key, detail = '') {
  const known = has(key);
  setText($('notice-title'), 'error.title');
  setText($('notice-message'), known ? key : 'error.server_said', known ? undefined : { message: detail });
  const detailElement = $('notice-detail');
  if (known && detail) setText(detailElement, 'error.server_said', { message: detail });
  else {
    delete detailElement.dataset.i18n;
    detailElement.textContent = '';
  }
  $('notice').hidden = false;
}

function hideNotice() {
  $('notice').hidden = true;
}

function showView(id) {
  for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== id;
  document.body.dataset.view = id;
}

// ---------------------------------------------------------------------------------------
// Helpers

/** The room named by `/join/<room>`, or null when it breaks the server's rules. */
function roomFromPath(pathname) {
  const match = /^\/join\/([^/]+)\/?$/.exec(pathname);
  if (!match) return null;
  let name;
  try {
    name = decodeURIComponent(match[1]);
  } catch {
    return null;
  }
  return ROOM_PATTERN.test(name) ? name : null;
}

function nameIsValid(name) {
  return name.length >= 1 && [...name].length <= 64 && !CONTROL_CHARACTERS.test(name);
}
