// A site's meeting page, /m/<meeting>?token=<join token>: the join link of one site.
//
// The page reads the invitation (GET /api/invitation), shows the meeting, the site and its
// role with a camera and microphone preview, and joins with the token. A participant site
// that comes before the chair opens the meeting waits in the lobby (`lobby`) until
// `joined`; from then on it is the ad-hoc room's flow (call.js): one offer, then only
// answers. `meeting_state` drives everything about the meeting (docs/signaling.md):
//   - the main screen shows the layout's sites, or the chair and the active speaker (the
//     floor holder when the chair speaks or nobody does), and the other sites as
//     thumbnails; the active speaker's tile is highlighted (`active_speaker` messages);
//   - a participant asks for the floor and speaks when it holds it: in chair mode its
//     microphone is on only then (the server withholds its audio anyway);
//   - the chair's console admits, opens, grants and revokes, mutes, picks the layout and
//     calls the roll, and sees each site's latest line test; an observer sees the
//     console without its buttons.
// Before joining and while waiting in the lobby, the site can run its line test
// (linetest.js) from the card below.
//
// Query: `token` (required), `autojoin=1` (join at once, for kiosks and tests),
// `lang=vi|en`. For tests: `document.body.dataset.site` and `.role` say who this page is,
// `.activeSpeaker` the active speaker's site code (empty for nobody),
// `window.cauMeeting.state` is the latest `meeting_state`; see call.js for the rest.

import { applyI18n, language, mountLanguageSwitch, onLanguageChange, setText, t } from './i18n.js';
import {
  $, RECONNECT_DELAYS_MS, RECONNECT_JITTER_MS, Session, waitForServer, TileSet, hideNotice, mark, openLocalMedia, setConnectionState,
  setSignalingState, setupScreenButton, showNotice, showSharing, showView, startMicMeter,
  updateLocalControls,
} from './call.js';
import { attachLineTestCard, formatWhen, normaliseLineTest, showReason } from './linetest.js';

/** Errors before `joined` that another attempt would only repeat. */
const FATAL_BEFORE_JOINED = new Set([
  'invalid_token', 'token_expired', 'token_not_yet_valid', 'token_revoked', 'meeting_cancelled',
  'forbidden', 'room_full', 'server_full', 'already_joined', 'not_joined', 'bad_json', 'invalid_name',
]);
/** Errors that end the session at any time, without reconnecting. */
const FATAL_ALWAYS = new Set(['replaced', 'meeting_cancelled', 'token_revoked']);
const MAX_LAYOUT = 4;
const MAX_REASON = 200;

const params = new URLSearchParams(location.search);
const token = params.get('token') ?? '';
/** The meeting named by the path, /m/<meeting>; the server checks it is the token's. */
const meetingId = meetingFromPath(location.pathname);

/** What this page is: from the invitation, the `lobby` message, or the token itself. */
const me = { site: null, siteName: '', role: null, floorMode: null, title: '' };
/** The latest `meeting_state`, or null before the first. */
let meetingState = null;
let localStream = new MediaStream();
let stopMeter = () => {};
let session = null;
let reconnectAttempt = 0;
let reconnectTimer = null;
/** Counts reconnect waits: see `scheduleReconnect`. */
let reconnectGeneration = 0;
/** Whether the page may leave the microphone on, as last applied; null: not yet decided. */
let micAllowed = null;
/** A floor request or cancel is on its way: the button waits for the next state. */
let floorPending = false;

window.cauMeeting = { me, state: null };

const lineTest = attachLineTestCard($('line-test-card'), {
  token: () => token,
  stream: () => localStream,
});

const tiles = new TileSet({
  place: (tile) => $('thumbs').append(tile.element),
  onChange: () => arrangeTiles(),
});

// ---------------------------------------------------------------------------------------
// Start-up

mark('script_started');
mountLanguageSwitch($('lang-switch'));
setupControls();
applyI18n();
onLanguageChange(() => {
  showInvitationTimes();
  if (meetingState) applyMeetingState(meetingState);
});
adoptTokenClaims();

if (!token) {
  refuse({ code: 'invalid_token', message: '' });
} else {
  const opening = openMedia();
  const reading = readInvitation();
  Promise.all([opening, reading]).then(([, usable]) => {
    if (usable && params.get('autojoin') === '1') joinMeeting();
  });
}

// ---------------------------------------------------------------------------------------
// Before joining

/** The invitation behind the token: resolves to whether joining is worth trying. */
async function readInvitation() {
  let response;
  try {
    const query = new URLSearchParams({ token });
    if (meetingId) query.set('meeting', meetingId);
    response = await fetch(`/api/invitation?${query}`, {
      headers: { Accept: 'application/json' },
      cache: 'no-store',
    });
  } catch (error) {
    console.warn('invitation', error);
    showInvitationUnavailable();
    return true;
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.ok && body && typeof body === 'object') {
    showInvitation(body);
    $('line-test-card').hidden = false;
    return true;
  }
  if ([400, 401, 403, 404, 410].includes(response.status) && typeof body?.code === 'string') {
    refuse({
      code: typeof body?.code === 'string' ? body.code : 'invalid_token',
      message: typeof body?.message === 'string' ? body.message : '',
    });
    return false;
  }
  // Not there (an older server) or a fault: the socket will tell whether the link works.
  showInvitationUnavailable();
  return true;
}

function showInvitation(invitation) {
  const meeting = invitation.meeting ?? {};
  const site = invitation.site ?? {};
  me.title = String(meeting.title ?? '');
  me.site = typeof site.code === 'string' ? site.code : me.site;
  me.siteName = String(site.name ?? me.siteName ?? '');
  me.role = typeof invitation.role === 'string' ? invitation.role : me.role;
  me.floorMode = typeof meeting.floor_mode === 'string' ? meeting.floor_mode : null;
  me.start = meeting.start ?? null;
  me.end = meeting.end ?? null;

  const title = $('meeting-title');
  delete title.dataset.i18n;
  title.textContent = me.title;
  $('meeting-facts').hidden = false;
  showInvitationTimes();
  $('site-name').textContent = me.siteName;
  setText($('site-role'), `role.${me.role}`);
  setText($('meeting-mode'), me.floorMode === 'open' ? 'mode.open' : 'mode.chair');
  showWhoIAm();
}

function showInvitationTimes() {
  if (!me.start || !me.end) return;
  $('meeting-time').textContent = formatRange(me.start, me.end);
}

function showInvitationUnavailable() {
  const title = $('meeting-title');
  setText(title, 'site.invitation_unavailable');
  showWhoIAm();
}

/** The link cannot be used: say why, and offer no button. */
function refuse({ code, message }) {
  const title = $('meeting-title');
  setText(title, 'site.refused');
  const refusal = $('refusal');
  refusal.hidden = false;
  refusal.replaceChildren();
  const reason = document.createElement('strong');
  setText(reason, `error.${code}`);
  refusal.append(reason);
  if (message) {
    const detail = document.createElement('small');
    setText(detail, 'error.server_said', { message });
    refusal.append(detail);
  }
  $('join-button').disabled = true;
  $('join-button').hidden = true;
  $('line-test-card').hidden = true;
  document.body.dataset.refused = code;
}

/** Best effort when the invitation cannot be read: what the token's payload says. */
function adoptTokenClaims() {
  try {
    const payload = token.split('.')[1];
    if (!payload) return;
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const text = new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0)));
    const claims = JSON.parse(text);
    const site = claims.site ?? claims.site_code ?? claims.sub;
    if (typeof site === 'string') me.site = site;
    if (['chair', 'participant', 'observer'].includes(claims.role)) me.role = claims.role;
  } catch {
    // Not a JWT we can read: the invitation or the lobby message will say.
  }
  showWhoIAm();
}

function showWhoIAm() {
  if (me.site) document.body.dataset.site = me.site;
  if (me.role) document.body.dataset.role = me.role;
  $('meeting-label').textContent = me.title;
  const label = $('site-label');
  if (me.siteName && me.role) setText(label, 'site.label', { name: me.siteName, role: t(`role.${me.role}`) });
  document.title = me.title ? `${me.title} · Cầu` : 'Cầu';
  $('self-name').textContent = me.siteName;
}

async function openMedia() {
  stopLocalMedia();
  setText($('preview-placeholder'), 'media.requesting');
  const opened = await openLocalMedia();
  localStream = opened.stream;
  const status = $('media-status');
  setText(status, opened.status);
  status.classList.toggle('warning', opened.warning);
  showPreview(localStream);
}

function showPreview(stream) {
  const hasVideo = stream.getVideoTracks().length > 0;
  $('preview').srcObject = hasVideo ? stream : null;
  $('self-video').srcObject = hasVideo ? stream : null;
  $('preview-placeholder').hidden = hasVideo;
  if (!hasVideo) setText($('preview-placeholder'), 'meeting.no_video');
  stopMeter();
  stopMeter = startMicMeter(stream, $('mic-meter'), $('mic-meter-fill'));
}

function stopLocalMedia() {
  stopMeter();
  stopMeter = () => {};
  for (const track of localStream.getTracks()) track.stop();
  localStream = new MediaStream();
}

// ---------------------------------------------------------------------------------------
// Joining, the lobby, reconnecting, leaving

function joinMeeting() {
  if (session) return;
  hideNotice();
  const button = $('join-button');
  button.disabled = true;
  setText(button, 'join.joining');
  $('status').hidden = false;
  reconnectAttempt = 0;
  // Who may not speak yet enters with the microphone off, so its first offer says so.
  if (me.role === 'observer' || (me.role === 'participant' && me.floorMode !== 'open')) setMic(false);
  updateControls();
  startSession();
}

function startSession() {
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  session = new Session({
    join: { type: 'join', token },
    stream: localStream,
    tiles,
    fatalBeforeJoined: FATAL_BEFORE_JOINED,
    fatalAlways: FATAL_ALWAYS,
    onSignalingState: (state) => setSignalingState(state),
    onSharingChanged: (sharing) => showSharing(sharing),
    onJoined: () => {
      // In the meeting the line carries the meeting: a test now would only disturb it.
      lineTest.abort();
      reconnectAttempt = 0;
      stopMeter();
      stopMeter = () => {};
      showView('meeting-view');
      arrangeTiles();
    },
    onEnded: ({ fatalError }) => {
      session = null;
      tiles.clear();
      setConnectionState('closed');
      if (fatalError) {
        endForGood(fatalError);
        return;
      }
      scheduleReconnect();
    },
    onOther: (message) => handleMeetingMessage(message),
    onError: (error) => {
      floorPending = false;
      if (meetingState) renderOwnControls(meetingState);
      showNotice(`error.${error.code}`, error.message);
    },
  });
}

function handleMeetingMessage(message) {
  switch (message.type) {
    case 'lobby':
      showLobby(message);
      return true;
    case 'meeting_state':
      applyMeetingState(message);
      return true;
    case 'active_speaker':
      applyActiveSpeaker(message);
      return true;
    default:
      return false;
  }
}

function showLobby(message) {
  if (message.site && typeof message.site.code === 'string') {
    me.site = message.site.code;
    me.siteName = String(message.site.name ?? me.siteName);
  }
  if (typeof message.role === 'string') me.role = message.role;
  if (message.meeting && typeof message.meeting.title === 'string') me.title = message.meeting.title;
  showWhoIAm();
  $('lobby-meeting').textContent = me.title;
  $('lobby-site').textContent = me.siteName;
  $('join-card').hidden = true;
  $('lobby-card').hidden = false;
  showView('join-view');
  document.body.dataset.lobby = 'true';
  // The preview stays on while waiting, with its level meter.
  showPreview(localStream);
}

function scheduleReconnect() {
  reconnectAttempt += 1;
  const delay = RECONNECT_DELAYS_MS[Math.min(reconnectAttempt, RECONNECT_DELAYS_MS.length) - 1]
    + Math.random() * RECONNECT_JITTER_MS;
  setSignalingState('reconnecting', reconnectAttempt);
  // Each wait is one generation: leaving (or a new wait) makes the older one give up.
  const generation = ++reconnectGeneration;
  reconnectTimer = setTimeout(async () => {
    if (await waitForServer(() => generation !== reconnectGeneration)) startSession();
  }, delay);
}

/** The server refused for good: back to the invitation, or the "left" view, with why. */
function endForGood(error) {
  $('status').hidden = true;
  delete document.body.dataset.lobby;
  if (error.code === 'replaced') {
    showLeft();
  } else {
    refuse(error);
    $('join-card').hidden = false;
    $('lobby-card').hidden = true;
    showView('join-view');
    showPreview(localStream);
  }
  showNotice(`error.${error.code}`, error.message);
}

async function leaveMeeting() {
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  reconnectGeneration += 1;
  const current = session;
  session = null;
  if (current) await current.leave();
  tiles.clear();
  stopLocalMedia();
  showLeft();
}

function showLeft() {
  $('status').hidden = true;
  delete document.body.dataset.lobby;
  meetingState = null;
  window.cauMeeting.state = null;
  showView('left-view');
}

function setupControls() {
  $('join-button').addEventListener('click', () => joinMeeting());
  $('lobby-leave').addEventListener('click', () => leaveMeeting());
  $('mic-button').addEventListener('click', () => toggleTrack('audio'));
  $('camera-button').addEventListener('click', () => toggleTrack('video'));
  setupScreenButton(() => session);
  $('leave-button').addEventListener('click', () => leaveMeeting());
  $('floor-button').addEventListener('click', () => askForFloor());
  $('rejoin-button').addEventListener('click', async () => {
    $('join-card').hidden = false;
    $('lobby-card').hidden = true;
    const button = $('join-button');
    setText(button, 'join.join');
    button.disabled = false;
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
  setupConsole();
}

// ---------------------------------------------------------------------------------------
// Own microphone and camera

function toggleTrack(kind) {
  const track = kind === 'audio' ? localStream.getAudioTracks()[0] : localStream.getVideoTracks()[0];
  if (!track) return;
  if (kind === 'audio' && micAllowed === false) return;
  track.enabled = !track.enabled;
  session?.sendMute(kind, !track.enabled);
  updateControls();
}

function setMic(on) {
  const track = localStream.getAudioTracks()[0];
  if (!track || track.enabled === on) return;
  track.enabled = on;
  session?.sendMute('audio', !on);
}

function updateControls() {
  updateLocalControls(localStream, micAllowed === false);
}

// ---------------------------------------------------------------------------------------
// The meeting's state

function applyMeetingState(message) {
  const state = normaliseState(message);
  meetingState = state;
  window.cauMeeting.state = state;
  floorPending = false;
  const mine = state.sites.find((site) => site.code === me.site);
  if (mine && !me.role) me.role = mine.role;
  if (mine && !me.siteName) me.siteName = mine.name;
  document.body.dataset.mode = state.mode;
  document.body.dataset.floor = state.floor ?? '';
  document.body.dataset.activeSpeaker = state.active_speaker ?? '';
  document.body.dataset.opened = String(state.opened);
  showWhoIAm();

  applyMicPolicy(state, mine);
  renderFloorBanner(state);
  renderOwnControls(state);
  arrangeTiles();
  renderTileBadges(state);
  renderConsole(state);
}

/** The message with every field of the expected type, whatever arrived. */
function normaliseState(message) {
  const codes = (list) => (Array.isArray(list) ? list.filter((code) => typeof code === 'string') : []);
  const sites = (Array.isArray(message.sites) ? message.sites : [])
    .filter((site) => site && typeof site.code === 'string')
    .map((site) => ({
      code: site.code,
      name: String(site.name ?? site.code),
      role: String(site.role ?? 'participant'),
      connected: site.connected === true,
      reconnecting: site.reconnecting === true,
      in_lobby: site.in_lobby === true,
      muted_by_chair: site.muted_by_chair === true,
      attendance: {
        status: String(site.attendance?.status ?? 'not_called'),
        joined_at: Number.isFinite(site.attendance?.joined_at) ? site.attendance.joined_at : null,
        left_at: Number.isFinite(site.attendance?.left_at) ? site.attendance.left_at : null,
        reason: typeof site.attendance?.reason === 'string' ? site.attendance.reason : null,
      },
      line_test: normaliseLineTest(site.line_test),
    }));
  return {
    opened: message.opened === true,
    mode: message.mode === 'open' ? 'open' : 'chair',
    floor: typeof message.floor === 'string' ? message.floor : null,
    queue: codes(message.queue),
    layout: codes(message.layout),
    active_speaker: typeof message.active_speaker === 'string' ? message.active_speaker : null,
    sites,
  };
}

/** Only the active speaker changed: the main screen may follow, and the highlight moves. */
function applyActiveSpeaker(message) {
  if (!meetingState) return;
  meetingState.active_speaker = typeof message.site === 'string' ? message.site : null;
  document.body.dataset.activeSpeaker = meetingState.active_speaker ?? '';
  arrangeTiles();
  renderTileBadges(meetingState);
}

function siteName(code) {
  return meetingState?.sites.find((site) => site.code === code)?.name ?? code;
}

/**
 * In chair mode a participant's microphone is on only while it holds the floor, and a
 * site the chair muted stays off: the track follows what the server lets through.
 */
function applyMicPolicy(state, mine) {
  const allowed = me.role !== 'observer'
    && !(mine?.muted_by_chair ?? false)
    && (state.mode === 'open' || me.role === 'chair' || state.floor === me.site);
  if (allowed !== micAllowed) {
    // Granted: on, so the site can speak at once. Revoked or muted: off.
    setMic(allowed);
    micAllowed = allowed;
  }
  const hint = $('mic-hint');
  let key = null;
  if (!allowed) {
    if (me.role === 'observer') key = 'mic.observer';
    else if (mine?.muted_by_chair) key = 'mic.muted_by_chair';
    else key = 'mic.wait_floor';
  }
  hint.hidden = key === null;
  if (key !== null) setText(hint, key);
  renderScreenButton(state, mine);
  updateControls();
}

/**
 * Sharing a screen is for the sites the others hear: the chair, the floor holder, or
 * anyone in open discussion (the server forwards a screen only to those who hear its
 * site). A site that loses the floor stops sharing.
 */
function renderScreenButton(state, mine) {
  const button = $('screen-button');
  if (button.dataset.unsupported === 'true') return;
  const may = me.role !== 'observer'
    && !(mine?.muted_by_chair ?? false)
    && (state.mode === 'open' || me.role === 'chair' || state.floor === me.site);
  button.hidden = !may;
  if (!may && session?.screenTrack) session.stopSharing();
}

function renderFloorBanner(state) {
  const text = $('floor-text');
  if (state.mode === 'open') setText(text, 'floor.open_mode');
  else if (state.floor) setText(text, 'floor.holder', { name: siteName(state.floor) });
  else setText(text, 'floor.nobody');
  $('own-floor').hidden = !(state.floor !== null && state.floor === me.site);
  $('floor-banner').classList.toggle('has-floor', state.floor !== null);
}

/** The participant's one button: ask for the floor, or withdraw the request. */
function renderOwnControls(state) {
  const button = $('floor-button');
  const show = me.role === 'participant' && state.mode === 'chair' && state.floor !== me.site;
  button.hidden = !show;
  if (!show) return;
  const position = state.queue.indexOf(me.site);
  button.dataset.requested = String(position >= 0);
  button.classList.toggle('requested', position >= 0);
  if (position >= 0) setText(button, 'floor.cancel', { position: position + 1 });
  else setText(button, 'floor.request');
  button.disabled = floorPending;
}

function askForFloor() {
  if (!session || !meetingState || floorPending) return;
  const requested = meetingState.queue.includes(me.site);
  const sent = session.send({ type: requested ? 'cancel_floor_request' : 'request_floor' });
  if (sent) {
    floorPending = true;
    $('floor-button').disabled = true;
  }
}

// ---------------------------------------------------------------------------------------
// The main screen and the thumbnails

/**
 * The sites every participant sees large, as the server decides what it sends
 * (docs/signaling.md): the chair's layout; without one, the chair and the active speaker,
 * or the chair and the floor holder when the chair speaks or nobody does.
 */
function stageSites(state) {
  if (state.layout.length > 0) return state.layout;
  const chair = state.sites.find((site) => site.role === 'chair')?.code ?? null;
  const speaker = state.active_speaker !== chair ? state.active_speaker : null;
  return [...new Set([chair, speaker ?? state.floor].filter(Boolean))];
}

function arrangeTiles() {
  const state = meetingState;
  const onStage = state ? stageSites(state) : [];
  const order = new Map((state?.sites ?? []).map((site, index) => [site.code, index]));
  const all = tiles.all().sort((a, b) => (order.get(a.site) ?? 1e6) - (order.get(b.site) ?? 1e6));
  // The server sends a site only what it should see (docs/signaling.md): a tile that
  // carries nothing waits off screen, still in the page, until its tracks come.
  const carrying = (tile) => Boolean(tile.tracks.audio || tile.tracks.video);
  let main = onStage.map((code) => all.find((tile) => tile.site === code)).filter(Boolean);
  let thumbs = all.filter((tile) => !main.includes(tile) && carrying(tile));
  const offstage = all.filter((tile) => !main.includes(tile) && !carrying(tile));
  // Nobody of the stage is here (the chair has not come): show everyone large.
  if (main.length === 0) {
    main = thumbs;
    thumbs = [];
  }
  place($('main-tiles'), main);
  place($('thumbs'), thumbs);
  place($('offstage'), offstage);
  for (const tile of main) tile.element.classList.remove('thumb');
  for (const tile of thumbs) tile.element.classList.add('thumb');

  const container = $('main-tiles');
  const count = main.length;
  const columns = Math.max(1, Math.ceil(Math.sqrt(count)));
  container.dataset.count = String(count);
  container.style.setProperty('--columns', String(columns));
  container.style.setProperty('--rows', String(Math.max(1, Math.ceil(count / columns))));
  $('thumbs').hidden = thumbs.length === 0;
  $('alone').hidden = count > 0;
  setText($('site-count'), 'meeting.sites', { count: tiles.size + 1 });
}

/** Make `container`'s children exactly `list`, in order, moving as little as possible. */
function place(container, list) {
  const elements = list.map((tile) => tile.element);
  const current = [...container.children];
  if (current.length === elements.length && current.every((element, i) => element === elements[i])) return;
  // Moving a playing <video> within one task does not pause it.
  container.replaceChildren(...elements);
}

function renderTileBadges(state) {
  for (const tile of tiles.all()) {
    const site = state.sites.find((entry) => entry.code === tile.site);
    const speaking = site !== undefined && state.active_speaker === site.code;
    const badges = [];
    if (speaking) badges.push(['badge badge-speaking', 'badge.speaking']);
    if (site && state.floor === site.code) badges.push(['badge badge-floor', 'badge.floor']);
    if (site?.role === 'chair') badges.push(['badge badge-chair', 'role.chair']);
    if (site?.muted_by_chair) badges.push(['badge badge-muted', 'badge.muted_by_chair']);
    const position = site ? state.queue.indexOf(site.code) : -1;
    tile.badges.replaceChildren(...badges.map(([className, key]) => {
      const badge = document.createElement('span');
      badge.className = className;
      setText(badge, key);
      return badge;
    }));
    if (position >= 0) {
      const badge = document.createElement('span');
      badge.className = 'badge badge-queue';
      setText(badge, 'badge.queue', { position: position + 1 });
      tile.badges.append(badge);
    }
    tile.element.classList.toggle('has-floor', site !== undefined && state.floor === site.code);
    tile.element.classList.toggle('speaking', speaking);
  }
  $('self-tile').classList.toggle('speaking', me.site !== null && state.active_speaker === me.site);
}

// ---------------------------------------------------------------------------------------
// The chair's console (an observer sees it without its buttons)

/** Roll-call rows and layout choices by site code, kept so that typing is never lost. */
const rows = new Map();
const layoutChoices = new Map();
let layoutDraft = null;
let lastLayout = '';

function setupConsole() {
  $('open-meeting').addEventListener('click', () => act({ type: 'open_meeting' }));
  $('revoke-floor').addEventListener('click', () => act({ type: 'revoke_floor' }));
  $('layout-apply').addEventListener('click', () => {
    act({ type: 'set_layout', sites: [...(layoutDraft ?? [])] });
  });
  // The lobby and the queue are drawn afresh with each state: their buttons are handled here.
  for (const id of ['lobby-list', 'queue-list']) {
    $(id).addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]');
      if (!button) return;
      const type = button.dataset.action === 'admit' ? 'admit' : 'grant_floor';
      act({ type, site: button.dataset.forSite });
    });
  }
  $('layout-auto').addEventListener('click', () => {
    layoutDraft = new Set();
    act({ type: 'set_layout', sites: [] });
  });
}

function act(message) {
  if (!session || me.role !== 'chair') return;
  session.send(message);
}

function actionButton(label, action, code, vars, className = '') {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = `small ${className}`.trim();
  button.dataset.action = action;
  button.dataset.forSite = code;
  setText(button, label, vars);
  return button;
}

function renderConsole(state) {
  const consoleElement = $('console');
  const visible = me.role === 'chair' || me.role === 'observer';
  consoleElement.hidden = !visible;
  document.body.classList.toggle('with-console', visible);
  if (!visible) return;
  const chair = me.role === 'chair';
  consoleElement.classList.toggle('read-only', !chair);

  // Opening.
  setText($('meeting-opened-state'), state.opened ? 'console.opened' : 'console.not_opened');
  $('open-meeting').hidden = !chair || state.opened;

  // Lobby.
  const waiting = state.sites.filter((site) => site.in_lobby);
  $('lobby-list').replaceChildren(...waiting.map((site) => {
    const item = document.createElement('li');
    const name = document.createElement('span');
    name.textContent = site.name;
    item.append(name);
    if (chair) {
      item.append(actionButton('console.admit', 'admit', site.code, undefined, 'primary'));
    }
    return item;
  }));
  $('lobby-empty').hidden = waiting.length > 0;
  $('lobby-count').textContent = waiting.length > 0 ? `(${waiting.length})` : '';

  // Floor.
  const chairMode = state.mode === 'chair';
  $('floor-open-note').hidden = chairMode;
  for (const id of ['console-floor-holder', 'queue-list']) $(id).hidden = !chairMode;
  if (state.floor) setText($('console-floor-holder'), 'floor.holder', { name: siteName(state.floor) });
  else setText($('console-floor-holder'), 'floor.nobody');
  $('revoke-floor').hidden = !chair || !chairMode || state.floor === null;
  $('queue-list').replaceChildren(...state.queue.map((code) => {
    const item = document.createElement('li');
    const name = document.createElement('span');
    name.textContent = siteName(code);
    item.append(name);
    if (chair) item.append(actionButton('console.grant', 'grant', code, undefined, 'primary'));
    return item;
  }));
  $('queue-empty').hidden = !chairMode || state.queue.length > 0;
  $('queue-count').textContent = state.queue.length > 0 ? `(${state.queue.length})` : '';
  $('queue-list').parentElement.querySelector('h4').hidden = !chairMode;

  renderLayoutPicker(state, chair);
  renderRollCall(state, chair);
}

function renderLayoutPicker(state, chair) {
  $('console-layout').hidden = !chair;
  const key = state.layout.join(',');
  if (layoutDraft === null || key !== lastLayout) layoutDraft = new Set(state.layout);
  lastLayout = key;
  if (state.layout.length > 0) {
    setText($('layout-current'), 'console.layout_now', { names: state.layout.map(siteName).join(', ') });
  } else {
    setText($('layout-current'), 'console.layout_auto_now');
  }
  const picker = $('layout-picker');
  const candidates = state.sites.filter((site) => site.role !== 'observer');
  for (const site of candidates) {
    let choice = layoutChoices.get(site.code);
    if (!choice) {
      const label = document.createElement('label');
      label.className = 'layout-choice';
      const input = document.createElement('input');
      input.type = 'checkbox';
      input.value = site.code;
      input.dataset.forSite = site.code;
      input.addEventListener('change', () => {
        if (input.checked) layoutDraft.add(site.code);
        else layoutDraft.delete(site.code);
        updateLayoutLimits();
      });
      const name = document.createElement('span');
      label.append(input, name);
      choice = { label, input, name };
      layoutChoices.set(site.code, choice);
    }
    choice.name.textContent = site.name;
    choice.input.checked = layoutDraft.has(site.code);
    choice.label.classList.toggle('offline', !site.connected);
    picker.append(choice.label);
  }
  updateLayoutLimits();
}

function updateLayoutLimits() {
  const full = layoutDraft.size >= MAX_LAYOUT;
  for (const { input } of layoutChoices.values()) input.disabled = full && !input.checked;
  $('layout-apply').disabled = layoutDraft.size === 0;
}

function renderRollCall(state, chair) {
  const body = $('rollcall-body');
  const counts = { present: 0, late: 0 };
  for (const site of state.sites) {
    let row = rows.get(site.code);
    if (!row) {
      row = makeRow(site.code);
      rows.set(site.code, row);
    }
    body.append(row.element);
    updateRow(row, site, state, chair);
    if (site.attendance.status in counts) counts[site.attendance.status] += 1;
  }
  setText($('rollcall-count'), 'rollcall.summary', {
    present: counts.present + counts.late,
    total: state.sites.length,
  });
}

function makeRow(code) {
  const element = document.createElement('tr');
  element.dataset.site = code;
  const cells = [0, 1, 2, 3, 4, 5].map(() => document.createElement('td'));
  element.append(...cells);

  const dot = document.createElement('span');
  dot.className = 'site-dot';
  const name = document.createElement('span');
  name.className = 'site-name';
  const role = document.createElement('span');
  role.className = 'role-tag';
  cells[0].append(dot, name, role);

  const status = document.createElement('span');
  status.className = 'attendance';
  const reason = document.createElement('small');
  reason.className = 'reason';
  cells[1].append(status, reason);

  const admit = actionButton('console.admit', 'admit', code, undefined, 'primary');
  admit.addEventListener('click', () => act({ type: 'admit', site: code }));
  const mute = actionButton('console.mute', 'mute', code);
  mute.addEventListener('click', () => {
    const site = meetingState?.sites.find((entry) => entry.code === code);
    act({ type: site?.muted_by_chair ? 'unmute_site' : 'mute_site', site: code });
  });
  const absent = document.createElement('form');
  absent.className = 'absent-form';
  const input = document.createElement('input');
  input.type = 'text';
  input.maxLength = MAX_REASON;
  input.dataset.forSite = code;
  input.dataset.i18nPlaceholder = 'rollcall.reason_placeholder';
  input.placeholder = t('rollcall.reason_placeholder');
  const mark = actionButton('rollcall.mark_absent', 'mark-absent', code);
  mark.type = 'submit';
  absent.append(input, mark);
  absent.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text.length === 0 || [...text].length > MAX_REASON) {
      showNotice('error.bad_reason');
      input.focus();
      return;
    }
    act({ type: 'mark_absent', site: code, reason: text });
  });
  cells[5].append(admit, mute, absent);
  const line = document.createElement('div');
  line.className = 'line-readiness';
  cells[4].append(line);
  return { element, cells, dot, name, role, status, reason, admit, mute, absent, input, line };
}

function updateRow(row, site, state, chair) {
  row.element.classList.toggle('connected', site.connected);
  row.element.classList.toggle('has-floor', state.floor === site.code);
  const presence = site.in_lobby ? 'lobby'
    : site.connected ? 'connected'
      : site.reconnecting ? 'reconnecting' : 'offline';
  const presenceText = {
    lobby: 'rollcall.in_lobby', connected: 'rollcall.online', reconnecting: 'rollcall.reconnecting', offline: 'rollcall.offline',
  };
  row.dot.dataset.state = presence;
  row.element.dataset.presence = presence;
  setText(row.dot, presenceText[presence]);
  row.name.textContent = site.name;
  row.role.hidden = site.role === 'participant';
  setText(row.role, `role.${site.role}`);
  row.status.dataset.status = site.attendance.status;
  setText(row.status, `attendance.${site.attendance.status}`);
  row.reason.textContent = site.attendance.reason ?? '';
  row.cells[2].textContent = formatTime(site.attendance.joined_at);
  row.cells[3].textContent = formatTime(site.attendance.left_at);

  const isChair = site.role === 'chair';
  row.admit.hidden = !chair || !site.in_lobby;
  row.mute.hidden = !chair || isChair || !site.connected || site.in_lobby;
  setText(row.mute, site.muted_by_chair ? 'console.unmute' : 'console.mute');
  row.mute.classList.toggle('off', site.muted_by_chair);
  row.absent.hidden = !chair || site.connected || site.reconnecting || isChair;
  renderReadiness(row.line, site.line_test);
}

/** A site's latest line test in its roll-call row: the verdict, when, and why. */
function renderReadiness(container, result) {
  container.replaceChildren();
  const badge = document.createElement('span');
  badge.className = 'verdict-badge';
  container.append(badge);
  if (!result) {
    badge.dataset.verdict = 'untested';
    container.dataset.verdict = 'untested';
    setText(badge, 'rollcall.line_untested');
    return;
  }
  badge.dataset.verdict = result.verdict;
  container.dataset.verdict = result.verdict;
  setText(badge, `linetest.verdict.${result.verdict}`);
  if (result.at !== null) {
    const when = document.createElement('small');
    when.className = 'line-when';
    when.textContent = formatWhen(result.at);
    container.append(' ', when);
  }
  for (const reason of result.reasons) {
    const line = document.createElement('small');
    line.className = 'reason line-reason';
    line.dataset.code = reason.code;
    showReason(line, reason);
    container.append(line);
  }
}

// ---------------------------------------------------------------------------------------
// Helpers

function locale() {
  return language() === 'vi' ? 'vi-VN' : 'en-GB';
}

function formatTime(millis) {
  if (millis === null || millis === undefined) return '';
  return new Date(millis).toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit' });
}

function formatRange(start, end) {
  const from = new Date(start);
  const to = new Date(end);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) return '';
  const date = from.toLocaleDateString(locale(), { weekday: 'long', day: 'numeric', month: 'numeric', year: 'numeric' });
  const time = (value) => value.toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit' });
  return `${time(from)} – ${time(to)}, ${date}`;
}

function meetingFromPath(pathname) {
  const match = /^\/m\/([^/]+)\/?$/.exec(pathname);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return null;
  }
}
