// The IT staff's line dashboard, /monitor: every site's line at a glance, live.
//
// The site directory (GET /api/sites) gives the tiles; the monitoring feed, a WebSocket
// at /api/monitor/live, colours them. The page authenticates the socket with
// {"type":"auth","token":...}, then takes a `snapshot` (sites, recent events, alerts) and
// after it `site`, `event` and `alert` messages as things happen. When the socket drops
// the page says so, keeps the last known state on screen and reconnects by itself.
//
// Clicking a site opens its detail panel: the figures now, charts of loss, RTT, jitter and
// bit rate over the last hour or day (GET /api/sites/<code>/link, drawn with the vendored
// uPlot, a global from vendor/uPlot.iife.min.js), and its event log
// (GET /api/sites/<code>/link/events) with live events added.
//
// Every element that shows a site carries `data-site` and `data-level` (its level now, or
// `offline`), and its colour comes from the class `level-<level>`; tests rely on both.
// The admin token stays in sessionStorage under the key /schedule uses. Everything that
// came from the server is shown with textContent.

import { applyI18n, language, mountLanguageSwitch, onLanguageChange, setText, t } from './i18n.js';
import { $, RECONNECT_DELAYS_MS, hideNotice, showNotice } from './call.js';

const TOKEN_KEY = 'cau.admin_token';
const TIERS = ['central', 'province', 'commune'];
/** What a tile can show, best first; `offline` also stands for "no level yet". */
const LEVELS = ['excellent', 'good', 'poor', 'lost', 'offline'];
const VERDICTS = ['ready', 'marginal', 'not_ready'];
/** The global event log and the alert list keep this many entries. */
const MAX_EVENTS = 500;
const MAX_ALERTS = 300;
/** How often "last media 2 minutes ago" is brought up to date. */
const CLOCK_TICK_MS = 5000;
const RANGES = {
  hour: { seconds: 3600, refreshMs: 15_000 },
  day: { seconds: 86_400, refreshMs: 120_000 },
};
const CHARTS = ['loss', 'rtt', 'jitter', 'bitrate'];
const SERIES_COLOURS = { in: '#0b4f8a', out: '#8e24aa' };

let token = readToken();
/** The site directory by code: {code, name, tier, kind}. */
let directory = new Map();
/** The feed's latest SiteLink by code. */
let links = new Map();
/** The global event log, oldest first. */
let events = [];
/** Alerts, oldest first, unique by id. */
let alerts = [];
/** Tiles by site code. */
const tiles = new Map();
const filter = { text: '', levels: new Set() };

const feed = {
  socket: null,
  /** Failed connections in a row; 0 once a snapshot came. */
  attempt: 0,
  /** Whether a snapshot ever came on this page, so the tiles carry real levels. */
  everLive: false,
  stopped: true,
  retryTimer: 0,
  countdownTimer: 0,
};

const detail = {
  code: null,
  range: 'hour',
  /** Bumped on every load, so a late answer for another site or range is dropped. */
  sequence: 0,
  charts: new Map(),
  chartLanguage: null,
  xRange: [0, 1],
  refreshTimer: 0,
  events: [],
};

mountLanguageSwitch($('lang-switch'));
applyI18n();
onLanguageChange(() => {
  document.title = `${t('monitor.title')} · Cầu`;
  refreshAll();
});
document.title = `${t('monitor.title')} · Cầu`;
setup();
if (token) start();
else showSignIn();

// ---------------------------------------------------------------------------------------
// Sign-in and start

function readToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

function forgetToken() {
  token = '';
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Nothing kept.
  }
}

function showSignIn() {
  stopFeed();
  closeDetail();
  $('signin-view').hidden = false;
  $('monitor-view').hidden = true;
  $('sign-out').hidden = true;
  $('feed-indicator').hidden = true;
  $('token').focus();
}

async function start() {
  $('signin-view').hidden = true;
  $('monitor-view').hidden = false;
  $('sign-out').hidden = false;
  $('feed-indicator').hidden = false;
  renderLevelFilter();
  renderSites();
  renderAlerts();
  renderEvents();
  try {
    await loadDirectory();
  } catch (error) {
    if (error.status === 401) return;
    showNotice(error.status === 0 ? 'api.network' : 'api.failed', error.message, { status: error.status });
  }
  renderSites();
  startFeed();
  openFromHash();
}

/** `#site=<code>` in the address opens that site's detail, so a link can point at it. */
function openFromHash() {
  const match = /^#site=(.+)$/.exec(location.hash);
  if (!match || $('monitor-view').hidden) return;
  let code;
  try {
    code = decodeURIComponent(match[1]);
  } catch {
    return;
  }
  if (code !== detail.code) openDetail(code);
}

async function loadDirectory() {
  const list = await api('/api/sites');
  directory = new Map(
    (Array.isArray(list) ? list : [])
      .filter((site) => site && typeof site.code === 'string')
      .map((site) => [site.code, site]),
  );
}

function setup() {
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    token = $('token').value.trim();
    if (!token) return;
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      // Kept for this page only.
    }
    $('token').value = '';
    hideNotice();
    start();
  });
  $('sign-out').addEventListener('click', () => {
    forgetToken();
    showSignIn();
  });
  $('notice-close').addEventListener('click', hideNotice);
  $('feed-retry').addEventListener('click', () => {
    if (!feed.stopped) connectFeed();
  });
  $('site-filter').addEventListener('input', () => {
    filter.text = fold($('site-filter').value.trim());
    applyFilter();
  });
  $('detail-close').addEventListener('click', () => closeDetail({ focusTile: true }));
  window.addEventListener('hashchange', openFromHash);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && detail.code) closeDetail({ focusTile: true });
  });
  for (const button of document.querySelectorAll('#site-detail [data-range]')) {
    button.addEventListener('click', () => setRange(button.dataset.range));
  }
  new ResizeObserver(() => resizeCharts()).observe($('detail-charts'));
  const topbar = document.querySelector('.topbar');
  new ResizeObserver(() => {
    document.documentElement.style.setProperty('--topbar-height', `${topbar.offsetHeight}px`);
  }).observe(topbar);
  setInterval(() => {
    if ($('monitor-view').hidden) return;
    for (const code of tiles.keys()) updateTile(code);
    if (detail.code) renderDetailFacts();
  }, CLOCK_TICK_MS);
}

// ---------------------------------------------------------------------------------------
// The REST API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET `path` with the admin token; resolves to its JSON. A 401 signs out. */
async function api(path) {
  let response;
  try {
    response = await fetch(path, {
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, '');
  }
  if (!response.ok) {
    let message = '';
    try {
      const body = await response.json();
      if (typeof body?.message === 'string') message = body.message;
    } catch {
      // Not JSON: the status says enough.
    }
    if (response.status === 401) {
      forgetToken();
      showSignIn();
      showNotice('api.unauthorized', message);
    }
    throw new ApiError(response.status, message || `HTTP ${response.status}`);
  }
  return response.json();
}

// ---------------------------------------------------------------------------------------
// The live feed

function startFeed() {
  feed.stopped = false;
  feed.attempt = 0;
  connectFeed();
}

function stopFeed() {
  feed.stopped = true;
  clearTimeout(feed.retryTimer);
  clearInterval(feed.countdownTimer);
  const socket = feed.socket;
  feed.socket = null;
  if (socket) socket.close(1000);
  $('feed-down').hidden = true;
}

function connectFeed() {
  clearTimeout(feed.retryTimer);
  clearInterval(feed.countdownTimer);
  if (feed.socket) {
    const old = feed.socket;
    feed.socket = null;
    old.close(1000);
  }
  setFeedState(feed.attempt === 0 ? 'connecting' : 'reconnecting');
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  let socket;
  try {
    socket = new WebSocket(`${scheme}://${location.host}/api/monitor/live`);
  } catch (error) {
    feedLost(String(error?.message ?? error));
    return;
  }
  feed.socket = socket;
  socket.addEventListener('open', () => {
    if (feed.socket === socket) socket.send(JSON.stringify({ type: 'auth', token }));
  });
  socket.addEventListener('message', (event) => {
    if (feed.socket === socket) receive(event.data);
  });
  socket.addEventListener('close', (event) => {
    if (feed.socket !== socket) return;
    feed.socket = null;
    if (!feed.stopped) feedLost(event.reason);
  });
}

/** The socket closed or never opened: say so, keep what is shown, and try again. */
function feedLost(reason) {
  feed.attempt += 1;
  const delay = RECONNECT_DELAYS_MS[Math.min(feed.attempt, RECONNECT_DELAYS_MS.length) - 1];
  const retryAt = Date.now() + delay;
  setFeedState('unreachable');
  $('monitor-view').classList.add('feed-lost');
  const detailText = $('feed-down-detail');
  const countdown = () => {
    const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    setText(detailText, feed.everLive ? 'monitor.feed_down_retry' : 'monitor.feed_down_never', {
      seconds,
      attempt: feed.attempt + 1,
    });
  };
  countdown();
  const reasonText = $('feed-down-reason');
  if (reason) setText(reasonText, 'error.server_said', { message: reason });
  else {
    delete reasonText.dataset.i18n;
    reasonText.textContent = '';
  }
  $('feed-down').hidden = false;
  clearInterval(feed.countdownTimer);
  feed.countdownTimer = setInterval(countdown, 1000);
  feed.retryTimer = setTimeout(connectFeed, delay);
}

function setFeedState(state) {
  const element = $('feed-state');
  element.dataset.state = state;
  const key = {
    connecting: 'monitor.feed_connecting',
    reconnecting: 'monitor.feed_reconnecting',
    live: 'monitor.feed_live',
    unreachable: 'monitor.feed_unreachable',
  }[state];
  setText($('feed-state-text'), key, { attempt: feed.attempt + 1 });
}

/** One message of the feed. Unknown types are skipped, for newer servers. */
function receive(data) {
  let message;
  try {
    message = JSON.parse(data);
  } catch {
    console.warn('monitoring feed: a frame that is not JSON');
    return;
  }
  if (message === null || typeof message !== 'object') return;
  switch (message.type) {
    case 'snapshot':
      takeSnapshot(message);
      break;
    case 'site':
      if (isLink(message.site)) takeSite(message.site);
      break;
    case 'event':
      if (isEvent(message.event)) takeEvent(message.event);
      break;
    case 'alert':
      if (isAlert(message.alert)) takeAlert(message.alert);
      break;
    case 'error':
      feedError(message);
      break;
    default:
      break;
  }
}

function takeSnapshot(message) {
  links = new Map((Array.isArray(message.sites) ? message.sites : []).filter(isLink).map((site) => [site.code, site]));
  events = (Array.isArray(message.events) ? message.events : []).filter(isEvent).slice(-MAX_EVENTS);
  alerts = [];
  for (const alert of Array.isArray(message.alerts) ? message.alerts : []) {
    if (isAlert(alert)) addAlert(alert);
  }
  feed.attempt = 0;
  feed.everLive = true;
  clearInterval(feed.countdownTimer);
  $('feed-down').hidden = true;
  $('monitor-view').classList.remove('feed-lost');
  setFeedState('live');
  renderSites();
  renderAlerts();
  renderEvents();
  if (detail.code) renderDetailFacts();
}

function takeSite(site) {
  const isNew = !tiles.has(site.code);
  links.set(site.code, site);
  if (isNew) renderSites();
  else {
    updateTile(site.code);
    applyFilter();
  }
  if (detail.code === site.code) renderDetailFacts();
}

function takeEvent(event) {
  events.push(event);
  if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
  const list = $('events');
  list.prepend(eventItem(event, { withSite: true }));
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
  $('events-empty').hidden = true;
  if (detail.code === event.site) {
    detail.events.push(event);
    $('detail-events').prepend(eventItem(event, { withSite: false }));
    $('detail-events-status').hidden = true;
  }
}

function takeAlert(alert) {
  addAlert(alert);
  renderAlerts();
}

function addAlert(alert) {
  const index = alerts.findIndex((other) => other.id === alert.id);
  if (index >= 0) alerts.splice(index, 1, alert);
  else alerts.push(alert);
  if (alerts.length > MAX_ALERTS) alerts.splice(0, alerts.length - MAX_ALERTS);
}

function feedError(message) {
  const code = typeof message.code === 'string' ? message.code : '';
  const text = typeof message.message === 'string' ? message.message : '';
  if (code === 'unauthorized') {
    forgetToken();
    showSignIn();
    showNotice('api.unauthorized', text);
    return;
  }
  showNotice('monitor.feed_error', text);
}

function isLink(site) {
  return site !== null && typeof site === 'object' && typeof site.code === 'string';
}

function isEvent(event) {
  return event !== null && typeof event === 'object' && typeof event.site === 'string';
}

function isAlert(alert) {
  return alert !== null && typeof alert === 'object' && typeof alert.site === 'string';
}

// ---------------------------------------------------------------------------------------
// Sites

/** What a site shows: the feed's name and tier first, the directory's otherwise. */
function siteInfo(code) {
  const link = links.get(code);
  const entry = directory.get(code);
  return {
    code,
    name: String(link?.name ?? entry?.name ?? code),
    tier: link?.tier ?? entry?.tier ?? null,
    kind: entry?.kind ?? null,
    link: link ?? null,
  };
}

/**
 * The level a site is shown at. A site that left is offline, whatever its last level; one
 * that dropped out of a meeting and is not back is lost; a connected site not yet scored
 * is grey like an offline one, with its own label.
 */
function shownLevel(link) {
  if (!link) return 'offline';
  if (link.state === 'dropped') return 'lost';
  if (link.state === 'offline') return 'offline';
  return LEVELS.includes(link.level) ? link.level : 'offline';
}

function levelLabelKey(link) {
  if (link?.state === 'connected' && !LEVELS.includes(link.level)) return 'monitor.level_unscored';
  if (link?.state === 'dropped') return 'monitor.state_dropped';
  return `monitor.level_${shownLevel(link)}`;
}

/** The name without its "Xã" or "Phường", for ordering communes and wards together. */
function sortName(name) {
  return name.replace(/^(Xã|Phường|Thị trấn)\s+/u, '');
}

function siteOrder(a, b) {
  const tierA = TIERS.indexOf(a.tier) === -1 ? TIERS.length : TIERS.indexOf(a.tier);
  const tierB = TIERS.indexOf(b.tier) === -1 ? TIERS.length : TIERS.indexOf(b.tier);
  return tierA - tierB
    || sortName(a.name).localeCompare(sortName(b.name), 'vi')
    || a.code.localeCompare(b.code);
}

/** Lay out every site by tier, reusing the tiles that exist. */
function renderSites() {
  const codes = new Set([...directory.keys(), ...links.keys()]);
  const infos = [...codes].map(siteInfo).sort(siteOrder);
  const groups = [];
  for (const info of infos) {
    const tier = TIERS.includes(info.tier) ? info.tier : 'other';
    let group = groups.at(-1);
    if (!group || group.tier !== tier) {
      group = { tier, codes: [] };
      groups.push(group);
    }
    group.codes.push(info.code);
  }
  for (const code of [...tiles.keys()]) {
    if (!codes.has(code)) tiles.delete(code);
  }
  $('site-groups').replaceChildren(...groups.map((group) => {
    const section = document.createElement('section');
    section.className = 'site-group';
    section.dataset.tier = group.tier;
    const heading = document.createElement('h2');
    const title = document.createElement('span');
    setText(title, `monitor.tier_${group.tier}`);
    const count = document.createElement('span');
    count.className = 'count';
    heading.append(title, ' ', count);
    const grid = document.createElement('div');
    grid.className = 'site-grid';
    for (const code of group.codes) {
      if (!tiles.has(code)) tiles.set(code, createTile(code));
      grid.append(tiles.get(code));
      updateTile(code);
    }
    section.append(heading, grid);
    return section;
  }));
  applyFilter();
}

function createTile(code) {
  const tile = document.createElement('button');
  tile.type = 'button';
  tile.className = 'site-tile';
  tile.dataset.site = code;
  const part = (className, tag = 'span') => {
    const element = document.createElement(tag);
    element.className = className;
    return element;
  };
  const head = part('tile-head');
  head.append(part('tile-site'), part('tile-score'));
  const line = part('tile-line');
  line.append(part('tile-level'), part('tile-code', 'code'));
  tile.append(head, line, part('tile-seen'), part('tile-meeting'), part('tile-test'));
  tile.addEventListener('click', () => openDetail(code));
  return tile;
}

/** Bring one tile, and every other element showing the site, up to date. */
function updateTile(code) {
  const tile = tiles.get(code);
  if (!tile) return;
  const info = siteInfo(code);
  const link = info.link;
  const level = shownLevel(link);
  setLevel(tile, level);
  tile.dataset.state = link?.state ?? 'offline';
  tile.setAttribute('aria-label', t('monitor.open_detail', { name: info.name }));
  tile.querySelector('.tile-site').textContent = info.name;
  const score = tile.querySelector('.tile-score');
  score.textContent = Number.isFinite(link?.score) ? String(Math.round(link.score)) : '–';
  score.title = Number.isFinite(link?.score) ? t('monitor.score_value', { score: Math.round(link.score) }) : t('monitor.no_score');
  tile.querySelector('.tile-level').textContent = t(levelLabelKey(link));
  tile.querySelector('.tile-code').textContent = code;
  const seen = tile.querySelector('.tile-seen');
  if (link?.last_seen) {
    seen.textContent = t('monitor.seen', { time: relativeTime(link.last_seen) });
    seen.title = formatDateTime(link.last_seen);
  } else {
    seen.textContent = t('monitor.never_seen');
    seen.removeAttribute('title');
  }
  const meeting = tile.querySelector('.tile-meeting');
  const title = meetingTitle(link);
  meeting.textContent = title ? t('monitor.in_meeting', { title }) : '';
  meeting.title = title ?? '';
  meeting.hidden = !title;
  const test = tile.querySelector('.tile-test');
  const verdict = link?.line_test?.verdict;
  test.hidden = !VERDICTS.includes(verdict);
  if (VERDICTS.includes(verdict)) {
    test.dataset.verdict = verdict;
    test.textContent = t('monitor.test_short', { verdict: t(`monitor.verdict_${verdict}`) });
    test.title = [t('monitor.test_at', { time: formatDateTime(link.line_test.at) }), ...reasonsOf(link.line_test)].join('\n');
  }
  // Alerts and log entries that name the site show its level now too.
  for (const element of document.querySelectorAll(`[data-site="${CSS.escape(code)}"]`)) {
    if (element !== tile) setLevel(element, level);
  }
}

/** `data-level` and the one `level-*` class that colours the element. */
function setLevel(element, level) {
  element.dataset.level = level;
  for (const other of LEVELS) element.classList.toggle(`level-${other}`, other === level);
}

function meetingTitle(link) {
  const meeting = link?.meeting;
  if (!meeting || typeof meeting !== 'object') return null;
  return String(meeting.title ?? meeting.id ?? '') || null;
}

function reasonsOf(lineTest) {
  return Array.isArray(lineTest?.reasons) ? lineTest.reasons.map(String) : [];
}

function renderLevelFilter() {
  const container = $('level-filter');
  if (container.childElementCount > 0) return;
  for (const level of LEVELS) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = `level-chip level-${level}`;
    button.dataset.filterLevel = level;
    button.setAttribute('aria-pressed', 'false');
    const label = document.createElement('span');
    setText(label, `monitor.level_${level}`);
    const count = document.createElement('span');
    count.className = 'chip-count';
    button.append(label, count);
    button.addEventListener('click', () => {
      if (filter.levels.has(level)) filter.levels.delete(level);
      else filter.levels.add(level);
      button.setAttribute('aria-pressed', String(filter.levels.has(level)));
      applyFilter();
    });
    container.append(button);
  }
}

/** Show the tiles that match the search and the pressed levels; count every level. */
function applyFilter() {
  const counts = Object.fromEntries(LEVELS.map((level) => [level, 0]));
  let shown = 0;
  for (const [code, tile] of tiles) {
    const info = siteInfo(code);
    const level = shownLevel(info.link);
    counts[level] += 1;
    const text = fold(`${info.name} ${code} ${meetingTitle(info.link) ?? ''}`);
    const visible = (!filter.text || text.includes(filter.text))
      && (filter.levels.size === 0 || filter.levels.has(level));
    tile.hidden = !visible;
    if (visible) shown += 1;
  }
  for (const group of document.querySelectorAll('#site-groups .site-group')) {
    const all = group.querySelectorAll('.site-tile').length;
    const visible = group.querySelectorAll('.site-tile:not([hidden])').length;
    group.hidden = visible === 0;
    group.querySelector('.count').textContent = visible === all ? `(${all})` : `(${visible}/${all})`;
  }
  for (const chip of document.querySelectorAll('#level-filter [data-filter-level]')) {
    chip.querySelector('.chip-count').textContent = String(counts[chip.dataset.filterLevel]);
  }
  const filtered = filter.text !== '' || filter.levels.size > 0;
  if (filtered) setText($('sites-count'), 'monitor.count_filtered', { shown, count: tiles.size });
  else setText($('sites-count'), 'monitor.count', { count: tiles.size });
  $('sites-empty').hidden = shown > 0 || tiles.size === 0;
}

// ---------------------------------------------------------------------------------------
// Alerts and events

function renderAlerts() {
  const list = $('alerts');
  list.replaceChildren(...alerts.slice().reverse().map(alertItem));
  $('alerts-empty').hidden = alerts.length > 0;
  $('alerts-count').textContent = alerts.length > 0 ? `(${alerts.length})` : '';
}

function alertItem(alert) {
  const item = document.createElement('li');
  item.className = 'log-entry alert-entry';
  item.dataset.alertKind = String(alert.kind ?? '');
  item.dataset.site = alert.site;
  setLevel(item, shownLevel(links.get(alert.site)));
  const head = document.createElement('div');
  head.className = 'log-head';
  head.append(timeElement(alert.at));
  const kind = document.createElement('strong');
  kind.className = 'alert-kind';
  kind.textContent = ['degraded', 'dropped'].includes(alert.kind) ? t(`monitor.alert_${alert.kind}`) : String(alert.kind ?? '');
  head.append(kind, siteLink(alert.site));
  if (LEVELS.includes(alert.level)) head.append(levelBadge(alert.level));
  item.append(head);
  // The server's message is English, for logs and webhooks: compose the page's own
  // from the alert's fields where it has them.
  let detail = '';
  if (alert.kind === 'degraded' && Number.isFinite(alert.seconds) && LEVELS.includes(alert.level)) {
    detail = t('monitor.alert_degraded_detail', {
      level: t(`monitor.level_${alert.level}`),
      seconds: String(alert.seconds),
      score: Number.isFinite(alert.score) ? String(Math.round(alert.score)) : '–',
    });
  } else if (alert.kind === 'dropped') {
    detail = t('monitor.alert_dropped_detail');
  } else if (typeof alert.message === 'string') {
    detail = alert.message;
  }
  if (detail) {
    const message = document.createElement('p');
    message.className = 'log-detail';
    message.textContent = detail;
    item.append(message);
  }
  const meeting = [...links.values()].find((link) => link.meeting?.id && link.meeting.id === alert.meeting)?.meeting;
  if (meeting?.title) {
    const text = document.createElement('p');
    text.className = 'log-detail';
    text.textContent = t('monitor.in_meeting', { title: String(meeting.title) });
    item.append(text);
  }
  return item;
}

function renderEvents() {
  $('events').replaceChildren(...events.slice().reverse().map((event) => eventItem(event, { withSite: true })));
  $('events-empty').hidden = events.length > 0;
}

function eventItem(event, { withSite }) {
  const item = document.createElement('li');
  item.className = 'log-entry event-entry';
  item.dataset.eventKind = String(event.kind ?? '');
  if (withSite) {
    item.dataset.site = event.site;
    setLevel(item, shownLevel(links.get(event.site)));
  }
  const head = document.createElement('div');
  head.className = 'log-head';
  head.append(timeElement(event.at));
  if (withSite) head.append(siteLink(event.site));
  const what = document.createElement('span');
  what.className = 'event-what';
  what.textContent = describeEvent(event);
  head.append(what);
  if (LEVELS.includes(event.level)) head.append(levelBadge(event.level));
  item.append(head);
  if (typeof event.detail === 'string' && event.detail) {
    const detailText = document.createElement('p');
    detailText.className = 'log-detail';
    detailText.textContent = event.detail;
    item.append(detailText);
  }
  return item;
}

function describeEvent(event) {
  const levelName = (level) => (LEVELS.includes(level) ? t(`monitor.level_${level}`) : '–');
  switch (event.kind) {
    case 'joined':
    case 'left':
    case 'reconnected':
    case 'dropped':
      return t(`monitor.event_${event.kind}`);
    case 'level':
      return event.previous
        ? t('monitor.event_level', { previous: levelName(event.previous), level: levelName(event.level) })
        : t('monitor.event_level_new', { level: levelName(event.level) });
    default:
      return t('monitor.event_other', { kind: String(event.kind ?? '') });
  }
}

/** The site's name as a button that opens its detail. */
function siteLink(code) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'log-site';
  button.textContent = siteInfo(code).name;
  button.title = code;
  button.addEventListener('click', () => openDetail(code));
  return button;
}

function levelBadge(level) {
  const badge = document.createElement('span');
  badge.className = `level-badge level-${level}`;
  badge.textContent = t(`monitor.level_${level}`);
  return badge;
}

function timeElement(at) {
  const time = document.createElement('time');
  time.className = 'log-time';
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return time;
  time.dateTime = date.toISOString();
  time.textContent = formatTime(date);
  time.title = formatDateTime(at);
  return time;
}

// ---------------------------------------------------------------------------------------
// The detail panel

function openDetail(code) {
  if (!tiles.has(code) && !links.has(code)) return;
  const changed = detail.code !== code;
  detail.code = code;
  const panel = $('site-detail');
  panel.dataset.site = code;
  panel.hidden = false;
  document.body.classList.add('with-detail');
  for (const tile of tiles.values()) tile.classList.toggle('selected', tile.dataset.site === code);
  history.replaceState(history.state, '', `${location.pathname}${location.search}#site=${encodeURIComponent(code)}`);
  renderDetailFacts();
  if (changed) {
    destroyCharts();
    loadCharts();
    loadSiteEvents();
  }
  $('detail-name').focus();
}

function closeDetail({ focusTile = false } = {}) {
  const code = detail.code;
  detail.code = null;
  detail.sequence += 1;
  clearTimeout(detail.refreshTimer);
  destroyCharts();
  const panel = $('site-detail');
  panel.hidden = true;
  delete panel.dataset.site;
  delete panel.dataset.level;
  document.body.classList.remove('with-detail');
  for (const tile of tiles.values()) tile.classList.remove('selected');
  if (location.hash) history.replaceState(history.state, '', `${location.pathname}${location.search}`);
  if (focusTile && code) tiles.get(code)?.focus();
}

function setRange(range) {
  if (!(range in RANGES) || range === detail.range) return;
  detail.range = range;
  for (const button of document.querySelectorAll('#site-detail [data-range]')) {
    button.setAttribute('aria-pressed', String(button.dataset.range === range));
  }
  if (!detail.code) return;
  destroyCharts();
  loadCharts();
  loadSiteEvents();
}

function renderDetailFacts() {
  const code = detail.code;
  if (!code) return;
  const info = siteInfo(code);
  const link = info.link;
  const panel = $('site-detail');
  const level = shownLevel(link);
  setLevel(panel, level);
  $('detail-name').textContent = info.name;
  $('detail-name').tabIndex = -1;
  const badge = $('detail-level');
  badge.className = `level-badge level-${level}`;
  badge.textContent = t(levelLabelKey(link));
  $('detail-score').textContent = Number.isFinite(link?.score) ? t('monitor.score_value', { score: Math.round(link.score) }) : t('monitor.no_score');
  $('detail-code').textContent = code;

  const facts = [
    ['monitor.detail_state', t(`monitor.state_${['connected', 'offline', 'dropped'].includes(link?.state) ? link.state : 'offline'}`)],
    ['monitor.detail_seen', link?.last_seen ? `${formatDateTime(link.last_seen)} (${relativeTime(link.last_seen)})` : t('monitor.never_seen')],
    ['monitor.detail_meeting', meetingTitle(link) ?? t('monitor.no_meeting')],
    ['monitor.detail_rtt', formatMs(link?.rtt_ms)],
    ['monitor.detail_loss_in', formatPercent(link?.loss_in)],
    ['monitor.detail_loss_out', formatPercent(link?.loss_out)],
    ['monitor.detail_jitter', formatMs(link?.jitter_ms)],
    ['monitor.detail_bitrate_in', formatBitrate(link?.bitrate_in)],
    ['monitor.detail_bitrate_out', formatBitrate(link?.bitrate_out)],
    ['monitor.detail_bwe_out', formatBitrate(link?.bwe_out)],
    ['monitor.detail_transport', link?.transport ? String(link.transport).toUpperCase() : '–'],
    ['monitor.detail_nacks', Number.isFinite(link?.nacks_in) || Number.isFinite(link?.nacks_out)
      ? `${formatCount(link.nacks_in)} / ${formatCount(link.nacks_out)}` : '–'],
    ['monitor.detail_keyframes', formatCount(link?.keyframe_requests)],
    ['monitor.detail_reconnects', formatCount(link?.reconnects ?? 0)],
  ];
  // What the site's own browser measured, when it sends it.
  const client = link?.client;
  if (client && typeof client === 'object') {
    if (Number.isFinite(client.freeze_count)) {
      facts.push(['monitor.detail_freezes', t('monitor.freezes_value', {
        count: formatCount(client.freeze_count),
        seconds: new Intl.NumberFormat(locale(), { maximumFractionDigits: 1 }).format(client.freeze_seconds ?? 0),
      })]);
    }
    if (Number.isFinite(client.concealed_ratio)) facts.push(['monitor.detail_concealed', formatPercent(client.concealed_ratio)]);
    if (Number.isFinite(client.jitter_buffer_ms)) facts.push(['monitor.detail_jitter_buffer', formatMs(client.jitter_buffer_ms)]);
  }
  $('detail-facts').replaceChildren(...facts.flatMap(([key, value]) => {
    const term = document.createElement('dt');
    term.textContent = t(key);
    const description = document.createElement('dd');
    description.textContent = value;
    return [term, description];
  }));

  const test = $('detail-test');
  const lineTest = link?.line_test;
  const heading = document.createElement('strong');
  heading.textContent = t('monitor.detail_test');
  if (!VERDICTS.includes(lineTest?.verdict)) {
    const none = document.createElement('span');
    none.textContent = t('monitor.detail_no_test');
    test.replaceChildren(heading, ' ', none);
    delete test.dataset.verdict;
    return;
  }
  test.dataset.verdict = lineTest.verdict;
  const verdict = document.createElement('span');
  verdict.className = 'tile-test';
  verdict.dataset.verdict = lineTest.verdict;
  verdict.textContent = t(`monitor.verdict_${lineTest.verdict}`);
  const when = document.createElement('small');
  when.textContent = t('monitor.test_at', { time: formatDateTime(lineTest.at) });
  const reasons = document.createElement('ul');
  reasons.replaceChildren(...reasonsOf(lineTest).map((reason) => {
    const item = document.createElement('li');
    item.textContent = reason;
    return item;
  }));
  test.replaceChildren(heading, ' ', verdict, ' ', when, reasons);
}

/** The chosen range, ending now. */
function rangeBounds(range) {
  const to = new Date();
  const from = new Date(to.getTime() - RANGES[range].seconds * 1000);
  return { from, to };
}

async function loadCharts() {
  const code = detail.code;
  if (!code) return;
  const sequence = ++detail.sequence;
  clearTimeout(detail.refreshTimer);
  const range = detail.range;
  const { from, to } = rangeBounds(range);
  const container = $('detail-charts');
  if (detail.charts.size === 0) {
    container.dataset.state = 'loading';
    setText($('charts-status'), 'monitor.charts_loading');
  }
  let body;
  try {
    body = await api(`/api/sites/${encodeURIComponent(code)}/link?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`);
  } catch (error) {
    if (sequence !== detail.sequence) return;
    if (error.status === 401) return;
    if (detail.charts.size === 0) {
      container.dataset.state = 'error';
      const status = $('charts-status');
      setText(status, 'monitor.charts_failed');
      status.append(' ', t('error.server_said', { message: error.message || t('api.network') }));
    }
    scheduleChartRefresh(sequence);
    return;
  }
  if (sequence !== detail.sequence) return;
  const samples = (Array.isArray(body?.samples) ? body.samples : [])
    .filter((sample) => sample && Number.isFinite(sample.t))
    .sort((a, b) => a.t - b.t);
  const resolution = Number.isFinite(body?.resolution_s) && body.resolution_s > 0 ? body.resolution_s : 5;
  detail.xRange = [Math.floor(from.getTime() / 1000), Math.ceil(to.getTime() / 1000)];
  drawCharts(withGaps(samples, resolution));
  container.dataset.state = 'ready';
  container.dataset.samples = String(samples.length);
  const status = $('charts-status');
  if (samples.length === 0) setText(status, 'monitor.charts_empty');
  else setText(status, 'monitor.charts_resolution', { seconds: resolution });
  scheduleChartRefresh(sequence);
}

function scheduleChartRefresh(sequence) {
  clearTimeout(detail.refreshTimer);
  detail.refreshTimer = setTimeout(() => {
    if (sequence === detail.sequence && detail.code) loadCharts();
  }, RANGES[detail.range].refreshMs);
}

/** Samples with an empty one wherever the line went silent, so no line bridges the gap. */
function withGaps(samples, resolution) {
  const out = [];
  for (const sample of samples) {
    const previous = out.at(-1);
    if (previous && sample.t - previous.t > 2.5 * resolution) out.push({ t: previous.t + resolution });
    out.push(sample);
  }
  return out;
}

function chartData(kind, samples) {
  const times = samples.map((sample) => sample.t);
  const pick = (field, scale = 1) => samples.map((sample) => (Number.isFinite(sample[field]) ? sample[field] * scale : null));
  switch (kind) {
    case 'loss':
      return [times, pick('loss_in', 100), pick('loss_out', 100)];
    case 'rtt':
      return [times, pick('rtt_ms')];
    case 'jitter':
      return [times, pick('jitter_ms')];
    default:
      return [times, pick('bitrate_in', 1 / 1000), pick('bitrate_out', 1 / 1000)];
  }
}

function drawCharts(samples) {
  if (typeof window.uPlot !== 'function') {
    $('detail-charts').dataset.state = 'error';
    setText($('charts-status'), 'monitor.charts_failed');
    return;
  }
  if (detail.charts.size > 0 && detail.chartLanguage === language()) {
    for (const [kind, chart] of detail.charts) chart.setData(chartData(kind, samples));
    return;
  }
  destroyCharts();
  detail.chartLanguage = language();
  for (const kind of CHARTS) {
    const target = document.querySelector(`#site-detail [data-chart="${kind}"]`);
    detail.charts.set(kind, new window.uPlot(chartOptions(kind, target), chartData(kind, samples), target));
  }
}

function chartOptions(kind, target) {
  const number = (digits) => new Intl.NumberFormat(locale(), { maximumFractionDigits: digits });
  const digits = kind === 'loss' ? 1 : 0;
  const format = (value) => (value == null ? '–' : number(digits).format(value));
  const series = kind === 'loss' || kind === 'bitrate'
    ? [
      { label: t('monitor.series_in'), stroke: SERIES_COLOURS.in, width: 2, value: (u, v) => format(v) },
      { label: t('monitor.series_out'), stroke: SERIES_COLOURS.out, width: 2, value: (u, v) => format(v) },
    ]
    : [{ label: t(kind === 'rtt' ? 'monitor.series_rtt' : 'monitor.series_jitter'), stroke: SERIES_COLOURS.in, width: 2, value: (u, v) => format(v) }];
  return {
    width: Math.max(240, target.clientWidth || 600),
    height: 170,
    cursor: { sync: { key: 'cau-site-detail' } },
    scales: {
      x: { time: true, range: () => detail.xRange },
      y: {
        // From zero, and at least this high, so a calm line looks calm.
        range: (u, min, max) => {
          const floor = { loss: 5, rtt: 100, jitter: 20, bitrate: 500 }[kind];
          return [0, Number.isFinite(max) ? Math.max(floor, max * 1.15) : floor];
        },
      },
    },
    series: [
      {
        label: t('monitor.series_time'),
        value: (u, seconds) => (seconds == null ? '–' : formatDateTime(new Date(seconds * 1000))),
      },
      ...series,
    ],
    axes: [
      {
        values: (u, splits, axis, space, increment) => splits.map((seconds) => {
          const date = new Date(seconds * 1000);
          return increment >= 86_400
            ? date.toLocaleDateString(locale(), { day: '2-digit', month: '2-digit' })
            : date.toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit' });
        }),
      },
      { values: (u, splits) => splits.map((value) => number(digits).format(value)), size: 56 },
    ],
  };
}

function destroyCharts() {
  for (const chart of detail.charts.values()) chart.destroy();
  detail.charts.clear();
  const container = $('detail-charts');
  container.dataset.state = 'idle';
  delete container.dataset.samples;
}

function resizeCharts() {
  for (const [kind, chart] of detail.charts) {
    const target = document.querySelector(`#site-detail [data-chart="${kind}"]`);
    const width = Math.max(240, target.clientWidth);
    if (Math.abs(chart.width - width) > 2) chart.setSize({ width, height: 170 });
  }
}

async function loadSiteEvents() {
  const code = detail.code;
  const range = detail.range;
  const { from, to } = rangeBounds(range);
  const list = $('detail-events');
  const status = $('detail-events-status');
  list.replaceChildren();
  detail.events = [];
  setText(status, 'monitor.charts_loading');
  status.hidden = false;
  let body;
  try {
    body = await api(`/api/sites/${encodeURIComponent(code)}/link/events?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`);
  } catch (error) {
    if (detail.code !== code || detail.range !== range || error.status === 401) return;
    setText(status, 'monitor.site_events_failed');
    return;
  }
  if (detail.code !== code || detail.range !== range) return;
  const loaded = (Array.isArray(body?.events) ? body.events : []).filter(isEvent);
  // Live events that came while loading are kept, once.
  const seen = new Set(loaded.map(eventKey));
  detail.events = [...loaded, ...detail.events.filter((event) => !seen.has(eventKey(event)))]
    .sort((a, b) => String(a.at).localeCompare(String(b.at)));
  renderSiteEvents();
}

function renderSiteEvents() {
  $('detail-events').replaceChildren(...detail.events.slice().reverse().map((event) => eventItem(event, { withSite: false })));
  const status = $('detail-events-status');
  status.hidden = detail.events.length > 0;
  if (detail.events.length === 0) setText(status, 'monitor.events_empty');
}

function eventKey(event) {
  return `${event.at}|${event.kind}|${event.level}|${event.previous}`;
}

// ---------------------------------------------------------------------------------------
// Language switches and formatting

function refreshAll() {
  if ($('monitor-view').hidden) return;
  for (const code of tiles.keys()) updateTile(code);
  applyFilter();
  renderAlerts();
  renderEvents();
  if (detail.code) {
    renderDetailFacts();
    renderSiteEvents();
    // Series labels and axes are drawn in the language of their day: draw them again.
    destroyCharts();
    loadCharts();
  }
}

function locale() {
  return language() === 'vi' ? 'vi-VN' : 'en-GB';
}

function relativeTime(at) {
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return '';
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < 10) return t('monitor.just_now');
  const format = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto' });
  if (seconds < 60) return format.format(-seconds, 'second');
  if (seconds < 3600) return format.format(-Math.floor(seconds / 60), 'minute');
  if (seconds < 86_400) return format.format(-Math.floor(seconds / 3600), 'hour');
  return format.format(-Math.floor(seconds / 86_400), 'day');
}

function formatTime(date) {
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : date.toLocaleString(locale(), { day: '2-digit', month: '2-digit', hour: '2-digit', minute: '2-digit' });
}

function formatDateTime(at) {
  const date = at instanceof Date ? at : new Date(at);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleString(locale(), {
    day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

function formatMs(value) {
  return Number.isFinite(value) ? `${new Intl.NumberFormat(locale(), { maximumFractionDigits: 0 }).format(value)} ms` : '–';
}

function formatCount(value) {
  return Number.isFinite(value) ? new Intl.NumberFormat(locale(), { maximumFractionDigits: 0 }).format(value) : '–';
}

function formatPercent(value) {
  return Number.isFinite(value)
    ? new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: 1 }).format(value)
    : '–';
}

function formatBitrate(value) {
  if (!Number.isFinite(value)) return '–';
  const number = (digits) => new Intl.NumberFormat(locale(), { maximumFractionDigits: digits });
  return value >= 1e6 ? `${number(2).format(value / 1e6)} Mbit/s` : `${number(0).format(value / 1e3)} kbit/s`;
}

/** Text folded for searching: no diacritics, đ as d, lowercase. */
function fold(text) {
  return String(text ?? '')
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[đĐ]/g, 'd')
    .toLowerCase();
}
