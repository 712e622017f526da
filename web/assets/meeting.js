// The join page, /join/<room>: check camera and microphone, then meet.
//
// One `Session` (call.js) is one attempt at being in the room: a WebSocket and an
// RTCPeerConnection. The page publishes its microphone and camera with one offer right
// after `joined`; from then on only the server offers, adding and removing the other
// participants' tracks (docs/signaling.md). When a session drops, the page starts a new
// one after a pause, until the user leaves: a commune's kiosk PC rejoins on its own.
//
// Query: `name` (the site name), `autojoin=1` (join at once, for kiosks and tests),
// `lang=vi|en`. For tests, `window.cauPeerConnection` is the current RTCPeerConnection and
// `window.cauMetrics.firstRemoteFrameMs` the time from page load to the first remote frame.


import { applyI18n, mountLanguageSwitch, setText } from './i18n.js';
import {
  $, RECONNECT_DELAYS_MS, RECONNECT_JITTER_MS, Session, waitForServer, TileSet, hideNotice, mark, openLocalMedia, setConnectionState,
  setSignalingState, setupScreenButton, showNotice, showSharing, showView, startMicMeter,
  updateLocalControls,
} from './call.js';

const ROOM_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
// Control characters are refused by the server (docs/signaling.md, `join`).
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
const NAME_KEY = 'cau.name';
/** Errors before `joined` that another attempt would only repeat. */
const FATAL_BEFORE_JOINED = new Set([
  'invalid_room', 'invalid_name', 'room_full', 'server_full', 'already_joined', 'not_joined',
]);

const params = new URLSearchParams(location.search);
const room = roomFromPath(location.pathname);

/** The local camera and microphone: a MediaStream with at most one track of each kind. */
let localStream = new MediaStream();
let stopMeter = () => {};
/** The current session, or null when not trying to be in the meeting. */
let session = null;
let reconnectAttempt = 0;
let reconnectTimer = null;
/** Counts reconnect waits: see `scheduleReconnect`. */
let reconnectGeneration = 0;
/** Remote participants by id: their tiles. */
const tiles = new TileSet({
  place: (tile) => $('tiles').append(tile.element),
  onChange: () => layoutTiles(),
});

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
  const opened = await openLocalMedia();
  localStream = opened.stream;
  setMediaStatus(opened.status, opened.warning);
  if (localStream.getTracks().length > 0) showPreview(localStream);
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
  stopMeter = stream === null ? () => {} : startMicMeter(stream, $('mic-meter'), $('mic-meter-fill'));
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
  session = new Session({
    join: { type: 'join', room, name },
    stream: localStream,
    tiles,
    fatalBeforeJoined: FATAL_BEFORE_JOINED,
    onSignalingState: (state) => setSignalingState(state),
    onSharingChanged: (sharing) => showSharing(sharing),
    onJoined: () => {
      reconnectAttempt = 0;
    },
    onEnded: ({ fatalError }) => {
      session = null;
      tiles.clear();
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
  const delay = RECONNECT_DELAYS_MS[Math.min(reconnectAttempt, RECONNECT_DELAYS_MS.length) - 1]
    + Math.random() * RECONNECT_JITTER_MS;
  setSignalingState('reconnecting', reconnectAttempt);
  // Each wait is one generation: leaving (or a new wait) makes the older one give up.
  const generation = ++reconnectGeneration;
  reconnectTimer = setTimeout(async () => {
    if (await waitForServer(() => generation !== reconnectGeneration)) startSession(name);
  }, delay);
}

/** Leave for good: tell the server, drop media, show the "you have left" view. */
async function leaveMeeting() {
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  reconnectGeneration += 1;
  const current = session;
  session = null;
  if (current) await current.leave();
  tiles.clear();
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
  setupScreenButton(() => session);
  $('leave-button').addEventListener('click', () => leaveMeeting());
  $('rejoin-button').addEventListener('click', async () => {
    showView('join-view');
    await openMedia();
    joinMeeting();
  });
  $('enable-sound').addEventListener('click', () => {
    $('enable-sound').hidden = true;
    for (const tile of tiles.all()) tile.play();
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
  updateLocalControls(localStream);
}

// ---------------------------------------------------------------------------------------
// Remote participants

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
