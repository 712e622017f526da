// The secretary's scheduling page, /schedule: list, create, edit and cancel meetings,
// hand out each invited site's join link, and download the calendar entry and the roll call.
//
// It also keeps the site directory (danh mục điểm cầu): rename a site, change its tier,
// delete it, add one.
//
// Every call goes to the REST API (GET/POST /api/meetings, PUT /api/meetings/<id>,
// POST /api/meetings/<id>/cancel, GET/POST /api/sites, PUT/DELETE /api/sites/<code>)
// with the admin token as a bearer token;
// the token stays in sessionStorage, so it is gone when the tab closes. Everything that
// came from the server is shown with textContent.

import { applyI18n, language, mountLanguageSwitch, onLanguageChange, setText, t } from './i18n.js';
import { $, hideNotice, showNotice } from './call.js';

const TOKEN_KEY = 'cau.admin_token';
const TIERS = ['central', 'province', 'commune'];

let token = readToken();
/** The directory: [{code, name, tier, kind}], in its order. */
let sites = [];
let meetings = [];
/** The meeting being edited, or null when the form creates one. */
let editing = null;
/** The meeting whose links are shown, for the .ics and CSV buttons. */
let shownMeeting = null;
const checkboxes = new Map();

// The site directory.
/** A site's code: lowercase ASCII letters and digits, words joined by single hyphens. */
const SITE_CODE = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const MAX_SITE_CODE_LEN = 64;
const MAX_SITE_NAME_CHARS = 120;
/**
 * Where a site stands, as one choice: its tier, and for the commune tier whether it is a
 * commune (xã), a ward (phường) or not classified. The value is `tier` or `tier:kind`.
 */
const PLACES = {
  central: 'directory.place_central',
  province: 'directory.place_province',
  'commune:commune': 'directory.place_commune',
  'commune:ward': 'directory.place_ward',
  'commune:': 'directory.place_commune_level',
};

/** The row being edited: {code, name, place} as typed so far, or null. */
let siteDraft = null;
/** Whether the secretary typed the new site's code (then the name stops suggesting one). */
let codeTyped = false;

mountLanguageSwitch($('lang-switch'));
applyI18n();
onLanguageChange(() => {
  renderMeetings();
  if (shownMeeting) renderLinks(shownMeeting);
  updateSelectedCount();
});
setup();
if (token) start();
else showSignIn();

// ---------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, body) {
    super(typeof body?.message === 'string' ? body.message : `HTTP ${status}`);
    this.status = status;
    this.code = typeof body?.code === 'string' ? body.code : null;
    this.conflicts = Array.isArray(body?.conflicts) ? body.conflicts : [];
  }
}

/** One API call; resolves to the response (for downloads) or its JSON. */
async function api(method, path, body, { raw = false } = {}) {
  const headers = { Authorization: `Bearer ${token}`, Accept: raw ? '*/*' : 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, { code: 'network', message: '' });
  }
  if (!response.ok) {
    let error = null;
    try {
      error = await response.json();
    } catch {
      error = null;
    }
    if (response.status === 401) {
      forgetToken();
      showSignIn();
    }
    throw new ApiError(response.status, error);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/** The localised text of an API error, and the server's words. */
function describe(error) {
  if (!(error instanceof ApiError)) return { key: 'api.internal', detail: String(error?.message ?? error) };
  if (error.status === 401) return { key: 'api.unauthorized', detail: error.message };
  if (error.status === 0) return { key: 'api.network', detail: '' };
  const key = error.code ? `api.${error.code}` : null;
  if (key && t(key) !== key) return { key, detail: error.message };
  return { key: 'api.failed', vars: { status: error.status }, detail: error.message };
}

function notify(error) {
  const { key, vars, detail } = describe(error);
  showNotice(key, detail, vars);
}

// ---------------------------------------------------------------------------------------
// Sign-in

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
  $('signin-view').hidden = false;
  $('schedule-view').hidden = true;
  $('sign-out').hidden = true;
}

async function start() {
  $('signin-view').hidden = true;
  $('schedule-view').hidden = false;
  $('sign-out').hidden = false;
  try {
    await loadSites();
    renderSiteChoices();
    resetForm();
    renderDirectory();
    await loadMeetings();
  } catch (error) {
    notify(error);
  }
}

async function loadSites() {
  const directory = await api('GET', '/api/sites');
  sites = Array.isArray(directory) ? directory.filter((site) => site && typeof site.code === 'string') : [];
}

async function loadMeetings() {
  meetings = await api('GET', '/api/meetings');
  if (!Array.isArray(meetings)) meetings = [];
  renderMeetings();
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
  $('refresh').addEventListener('click', () => loadMeetings().catch(notify));
  $('new-meeting').addEventListener('click', () => {
    resetForm();
    $('title').focus();
  });
  $('discard').addEventListener('click', () => resetForm());
  $('all-communes').addEventListener('click', () => {
    for (const site of sites) {
      if (site.tier === 'commune' && site.code !== $('chair').value) checkboxes.get(site.code).checked = true;
    }
    updateSelectedCount();
  });
  $('clear-sites').addEventListener('click', () => {
    for (const box of checkboxes.values()) if (!box.disabled) box.checked = false;
    updateSelectedCount();
  });
  $('chair').addEventListener('change', () => updateChairChoice());
  $('meeting-form').addEventListener('submit', (event) => {
    event.preventDefault();
    submitForm();
  });
  setupDirectory();
  $('links-ics').addEventListener('click', () => {
    if (shownMeeting) download(`/api/meetings/${encodeURIComponent(shownMeeting.id)}.ics`, `${shownMeeting.id}.ics`);
  });
  $('links-csv').addEventListener('click', () => {
    if (shownMeeting) {
      download(`/api/meetings/${encodeURIComponent(shownMeeting.id)}/attendance.csv`, `attendance-${shownMeeting.id}.csv`);
    }
  });
}

// ---------------------------------------------------------------------------------------
// The list

function renderMeetings() {
  const body = $('meetings');
  body.replaceChildren(...meetings.map((meeting) => {
    const row = document.createElement('tr');
    row.dataset.meeting = meeting.id;
    row.classList.toggle('cancelled', meeting.status === 'cancelled');
    const cell = (text) => {
      const td = document.createElement('td');
      td.textContent = text;
      row.append(td);
      return td;
    };
    const title = cell(meeting.title);
    title.className = 'meeting-title';
    cell(formatRange(meeting.start, meeting.end));
    cell(siteName(meeting.chair));
    cell(String(Array.isArray(meeting.sites) ? meeting.sites.length : 0));
    const status = cell('');
    setText(status, meeting.status === 'cancelled' ? 'schedule.status_cancelled' : 'schedule.status_scheduled');
    const actions = cell('');
    actions.className = 'row-actions';
    const button = (key, handler, className = '') => {
      const element = document.createElement('button');
      element.type = 'button';
      element.className = `small ${className}`.trim();
      setText(element, key);
      element.addEventListener('click', handler);
      actions.append(element);
    };
    if (meeting.status !== 'cancelled') {
      button('schedule.links', () => showLinks(meeting.id));
      button('schedule.edit', () => editMeeting(meeting.id));
      button('schedule.cancel_meeting', () => cancelMeeting(meeting), 'danger-button');
    }
    button('schedule.ics', () => download(`/api/meetings/${encodeURIComponent(meeting.id)}.ics`, `${meeting.id}.ics`));
    button('schedule.csv', () => download(
      `/api/meetings/${encodeURIComponent(meeting.id)}/attendance.csv`,
      `attendance-${meeting.id}.csv`,
    ));
    return row;
  }));
  $('meetings-empty').hidden = meetings.length > 0;
}

async function showLinks(id) {
  try {
    renderLinks(await api('GET', `/api/meetings/${encodeURIComponent(id)}`));
  } catch (error) {
    notify(error);
  }
}

function renderLinks(meeting) {
  shownMeeting = meeting;
  setText($('links-title'), 'schedule.links_title', { title: meeting.title });
  const links = Array.isArray(meeting.links) ? meeting.links : [];
  $('links').replaceChildren(...links.map((link) => {
    const row = document.createElement('tr');
    row.dataset.site = link.site;
    const name = document.createElement('td');
    const strong = document.createElement('strong');
    strong.textContent = siteName(link.site);
    const role = document.createElement('small');
    setText(role, `role.${link.role}`);
    name.append(strong, document.createElement('br'), role);
    const urlCell = document.createElement('td');
    const url = document.createElement('input');
    url.type = 'text';
    url.readOnly = true;
    url.value = String(link.url ?? '');
    url.className = 'link-url';
    url.addEventListener('focus', () => url.select());
    urlCell.append(url);
    const actions = document.createElement('td');
    actions.className = 'row-actions';
    const copy = document.createElement('button');
    copy.type = 'button';
    copy.className = 'small';
    copy.dataset.action = 'copy';
    setText(copy, 'schedule.copy');
    copy.addEventListener('click', async () => {
      await copyText(url);
      setText(copy, 'schedule.copied');
      setTimeout(() => setText(copy, 'schedule.copy'), 2000);
    });
    const open = document.createElement('a');
    open.className = 'button small';
    open.href = url.value;
    open.target = '_blank';
    open.rel = 'noopener';
    setText(open, 'schedule.open_link');
    actions.append(copy, open);
    row.append(name, urlCell, actions);
    return row;
  }));
  $('links-card').hidden = false;
}

async function copyText(input) {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    // No clipboard API (plain HTTP): select the text and use the old command.
    input.select();
    document.execCommand('copy');
  }
}

async function cancelMeeting(meeting) {
  if (!window.confirm(t('schedule.confirm_cancel', { title: meeting.title }))) return;
  try {
    await api('POST', `/api/meetings/${encodeURIComponent(meeting.id)}/cancel`);
    showSuccess('schedule.cancelled');
    if (editing?.id === meeting.id) resetForm();
    if (shownMeeting?.id === meeting.id) $('links-card').hidden = true;
    await loadMeetings();
  } catch (error) {
    notify(error);
  }
}

/** Fetch with the bearer token and hand the body to the browser as a file. */
async function download(path, filename) {
  try {
    const response = await api('GET', path, undefined, { raw: true });
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const link = document.createElement('a');
    link.href = url;
    link.download = filename;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    notify(error);
  }
}

// ---------------------------------------------------------------------------------------
// The form

function renderSiteChoices() {
  const chair = $('chair');
  chair.replaceChildren(...sites.map((site) => {
    const option = document.createElement('option');
    option.value = site.code;
    option.textContent = site.name;
    return option;
  }));
  const groups = $('site-groups');
  groups.replaceChildren();
  checkboxes.clear();
  for (const tier of TIERS) {
    const members = sites.filter((site) => site.tier === tier);
    if (members.length === 0) continue;
    const group = document.createElement('div');
    group.className = 'site-group';
    group.dataset.tier = tier;
    const heading = document.createElement('h3');
    setText(heading, `schedule.tier_${tier}`);
    const list = document.createElement('div');
    list.className = 'site-choices';
    for (const site of members) {
      const label = document.createElement('label');
      label.className = 'site-choice';
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.value = site.code;
      box.addEventListener('change', updateSelectedCount);
      const name = document.createElement('span');
      name.textContent = site.name;
      const tag = document.createElement('small');
      tag.className = 'chair-tag';
      setText(tag, 'schedule.chair_tag');
      tag.hidden = true;
      label.append(box, name, tag);
      list.append(label);
      checkboxes.set(site.code, box);
    }
    group.append(heading, list);
    groups.append(group);
  }
}

/** The chair is always invited: its box is ticked and fixed. */
function updateChairChoice() {
  const chair = $('chair').value;
  for (const [code, box] of checkboxes) {
    const isChair = code === chair;
    if (box.disabled && !isChair) box.checked = false;
    box.disabled = isChair;
    if (isChair) box.checked = true;
    box.parentElement.querySelector('.chair-tag').hidden = !isChair;
  }
  updateSelectedCount();
}

function updateSelectedCount() {
  const count = [...checkboxes.values()].filter((box) => box.checked).length;
  setText($('selected-count'), 'schedule.selected', { count });
}

function resetForm() {
  editing = null;
  $('meeting-form').reset();
  hideFormError();
  setText($('form-title'), 'schedule.form_new');
  setText($('submit'), 'schedule.create');
  $('discard').hidden = true;
  // Next full hour, for an hour.
  const start = new Date();
  start.setMinutes(0, 0, 0);
  start.setHours(start.getHours() + 1);
  $('start').value = toLocalInput(start);
  $('end').value = toLocalInput(new Date(start.getTime() + 60 * 60 * 1000));
  const province = sites.find((site) => site.tier === 'province');
  if (province) $('chair').value = province.code;
  for (const box of checkboxes.values()) {
    box.checked = false;
    box.disabled = false;
  }
  updateChairChoice();
}

async function editMeeting(id) {
  let meeting;
  try {
    meeting = await api('GET', `/api/meetings/${encodeURIComponent(id)}`);
  } catch (error) {
    notify(error);
    return;
  }
  editing = meeting;
  hideFormError();
  setText($('form-title'), 'schedule.form_edit');
  setText($('submit'), 'schedule.save');
  $('discard').hidden = false;
  $('title').value = meeting.title;
  $('agenda').value = meeting.agenda ?? '';
  $('start').value = toLocalInput(new Date(meeting.start));
  $('end').value = toLocalInput(new Date(meeting.end));
  $('chair').value = meeting.chair;
  for (const radio of document.querySelectorAll('input[name="floor_mode"]')) {
    radio.checked = radio.value === meeting.floor_mode;
  }
  const invited = new Set((meeting.sites ?? []).map((site) => site.code));
  for (const [code, box] of checkboxes) {
    box.disabled = false;
    box.checked = invited.has(code);
  }
  updateChairChoice();
  $('meeting-form').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

async function submitForm() {
  hideFormError();
  const start = fromLocalInput($('start').value);
  const end = fromLocalInput($('end').value);
  if (!start || !end) {
    showFormError({ key: 'schedule.invalid_dates' });
    return;
  }
  const chair = $('chair').value;
  const request = {
    title: $('title').value,
    agenda: $('agenda').value,
    start,
    end,
    chair,
    sites: [...checkboxes].filter(([code, box]) => box.checked && code !== chair).map(([code]) => code),
    floor_mode: document.querySelector('input[name="floor_mode"]:checked')?.value ?? 'chair',
  };
  const button = $('submit');
  button.disabled = true;
  try {
    const meeting = editing
      ? await api('PUT', `/api/meetings/${encodeURIComponent(editing.id)}`, request)
      : await api('POST', '/api/meetings', request);
    showSuccess(editing ? 'schedule.saved' : 'schedule.created');
    resetForm();
    renderLinks(meeting);
    $('links-card').scrollIntoView({ behavior: 'smooth', block: 'start' });
    await loadMeetings();
  } catch (error) {
    showFormError({ error });
  } finally {
    button.disabled = false;
  }
}

function showFormError({ key, error }) {
  const box = $('form-error');
  const detail = $('form-error-detail');
  const list = $('form-error-conflicts');
  list.replaceChildren();
  detail.textContent = '';
  delete detail.dataset.i18n;
  if (error) {
    const described = describe(error);
    setText($('form-error-text'), described.key, described.vars);
    if (described.detail) setText(detail, 'error.server_said', { message: described.detail });
    for (const conflict of error.conflicts ?? []) {
      const item = document.createElement('li');
      setText(item, 'schedule.conflict_with', {
        title: String(conflict.title ?? conflict.meeting ?? ''),
        time: formatRange(conflict.start, conflict.end),
        sites: (Array.isArray(conflict.sites) ? conflict.sites : []).map(siteName).join(', '),
      });
      list.append(item);
    }
  } else {
    setText($('form-error-text'), key);
  }
  box.hidden = false;
  box.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
}

function hideFormError() {
  $('form-error').hidden = true;
}

function showSuccess(key, vars) {
  const element = $('success');
  setText(element, key, vars);
  element.hidden = false;
  clearTimeout(showSuccess.timer);
  showSuccess.timer = setTimeout(() => {
    element.hidden = true;
  }, 6000);
}

// ---------------------------------------------------------------------------------------
// The site directory

function setupDirectory() {
  fillPlaces($('new-site-place'), 'commune:commune');
  $('directory-filter').addEventListener('input', () => renderDirectory());
  $('directory-refresh').addEventListener('click', async () => {
    hideDirectoryMessages();
    try {
      await loadSites();
      siteDraft = siteDraft && sites.some((site) => site.code === siteDraft.code) ? siteDraft : null;
      sitesChanged();
    } catch (error) {
      showDirectoryError({ error });
    }
  });
  $('new-site-name').addEventListener('input', () => {
    if (!codeTyped) $('new-site-code').value = suggestCode($('new-site-name').value);
  });
  $('new-site-code').addEventListener('input', () => {
    codeTyped = $('new-site-code').value !== '';
  });
  $('site-form').addEventListener('submit', (event) => {
    event.preventDefault();
    addSite();
  });
}

function placeOf(site) {
  return site.tier === 'commune' ? `commune:${site.kind ?? ''}` : String(site.tier);
}

/** The `tier` and `kind` fields of a request for a place. */
function placeFields(place) {
  const [tier, kind] = place.split(':');
  return kind ? { tier, kind } : { tier };
}

function fillPlaces(select, selected) {
  select.replaceChildren(...Object.entries(PLACES).map(([place, key]) => {
    const option = document.createElement('option');
    option.value = place;
    setText(option, key);
    return option;
  }));
  select.value = selected in PLACES ? selected : 'commune:';
}

/** Text folded for searching: no diacritics, đ as d, lowercase. */
function fold(text) {
  return String(text ?? '')
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[đĐ]/g, 'd')
    .toLowerCase();
}

/** The directory's convention: the name without "Xã" or "Phường", as a slug. */
function suggestCode(name) {
  return fold(name)
    .trim()
    .replace(/^(xa|phuong)\s+/, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_SITE_CODE_LEN)
    .replace(/-+$/, '');
}

function renderDirectory() {
  const filter = fold($('directory-filter').value.trim());
  const shown = filter ? sites.filter((site) => fold(`${site.name} ${site.code}`).includes(filter)) : sites;
  $('directory').replaceChildren(...shown.map((site) => (
    siteDraft?.code === site.code ? siteEditRow(site) : siteRow(site)
  )));
  if (filter) setText($('directory-count'), 'directory.count_filtered', { shown: shown.length, count: sites.length });
  else setText($('directory-count'), 'directory.count', { count: sites.length });
  const empty = $('directory-empty');
  empty.hidden = shown.length > 0;
  if (shown.length === 0) setText(empty, filter ? 'directory.no_match' : 'directory.none');
}

function siteRow(site) {
  const row = document.createElement('tr');
  row.dataset.site = site.code;
  const code = document.createElement('td');
  const codeText = document.createElement('code');
  codeText.className = 'site-code';
  codeText.textContent = site.code;
  code.append(codeText);
  const name = document.createElement('td');
  name.className = 'directory-name';
  name.textContent = site.name;
  const tier = document.createElement('td');
  tier.className = 'directory-tier';
  const tierText = document.createElement('span');
  if (TIERS.includes(site.tier)) setText(tierText, `directory.tier_${site.tier}`);
  else tierText.textContent = String(site.tier ?? '');
  tier.append(tierText);
  if (site.kind === 'ward' || site.kind === 'commune') {
    const kind = document.createElement('span');
    kind.className = 'kind-tag';
    kind.dataset.kind = site.kind;
    setText(kind, `directory.kind_${site.kind}`);
    tier.append(' ', kind);
  }
  const actionsCell = document.createElement('td');
  const actions = document.createElement('div');
  actions.className = 'row-actions';
  actionsCell.append(actions);
  actions.append(
    smallButton('directory.edit', 'edit', () => startSiteEdit(site)),
    smallButton('directory.delete', 'delete', (button) => deleteSite(site, button), 'danger-button'),
  );
  row.append(code, name, tier, actionsCell);
  return row;
}

function siteEditRow(site) {
  const draft = siteDraft;
  const row = document.createElement('tr');
  row.dataset.site = site.code;
  row.className = 'editing';
  const code = document.createElement('td');
  const codeText = document.createElement('code');
  codeText.className = 'site-code';
  codeText.textContent = site.code;
  code.append(codeText);

  const nameCell = document.createElement('td');
  const name = document.createElement('input');
  name.className = 'directory-name-input';
  name.maxLength = MAX_SITE_NAME_CHARS;
  name.required = true;
  name.value = draft.name;
  labelWith(name, 'directory.name_label', { code: site.code });
  name.addEventListener('input', () => {
    draft.name = name.value;
  });
  nameCell.append(name);

  const tierCell = document.createElement('td');
  const place = document.createElement('select');
  place.className = 'directory-place';
  fillPlaces(place, draft.place);
  labelWith(place, 'directory.tier_label', { code: site.code });
  place.addEventListener('change', () => {
    draft.place = place.value;
  });
  tierCell.append(place);

  const actionsCell = document.createElement('td');
  const actions = document.createElement('div');
  actions.className = 'row-actions';
  actionsCell.append(actions);
  actions.append(
    smallButton('directory.save', 'save', (button) => saveSite(site, button), 'primary'),
    smallButton('directory.discard', 'discard', () => stopSiteEdit()),
  );
  for (const field of [name, place]) {
    field.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        saveSite(site, actions.querySelector('[data-action="save"]'));
      } else if (event.key === 'Escape') {
        event.preventDefault();
        stopSiteEdit();
      }
    });
  }
  row.append(code, nameCell, tierCell, actionsCell);
  return row;
}

function smallButton(key, action, handler, className = '') {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = `small ${className}`.trim();
  button.dataset.action = action;
  setText(button, key);
  button.addEventListener('click', () => handler(button));
  return button;
}

/** An accessible name for a field without a visible label, kept across language switches. */
function labelWith(element, key, vars) {
  element.dataset.i18nAriaLabel = key;
  element.dataset.i18nVars = JSON.stringify(vars);
  element.setAttribute('aria-label', t(key, vars));
}

function startSiteEdit(site) {
  hideDirectoryMessages();
  siteDraft = { code: site.code, name: site.name, place: placeOf(site) };
  renderDirectory();
  const input = document.querySelector(`#directory tr[data-site="${CSS.escape(site.code)}"] .directory-name-input`);
  input?.focus();
  input?.select();
}

function stopSiteEdit() {
  const code = siteDraft?.code;
  siteDraft = null;
  renderDirectory();
  if (code) document.querySelector(`#directory tr[data-site="${CSS.escape(code)}"] [data-action="edit"]`)?.focus();
}

async function saveSite(site, button) {
  hideDirectoryMessages();
  const draft = siteDraft;
  if (!draft || draft.code !== site.code) return;
  const name = draft.name.trim();
  if (!name || name.length > MAX_SITE_NAME_CHARS) {
    showDirectoryError({ key: 'api.invalid_site_name' });
    return;
  }
  button.disabled = true;
  try {
    const updated = await api('PUT', `/api/sites/${encodeURIComponent(site.code)}`, { name, ...placeFields(draft.place) });
    replaceSite(site.code, updated);
    if (siteDraft === draft) siteDraft = null;
    sitesChanged();
    showDirectoryStatus('directory.saved', { name: updated?.name ?? name });
  } catch (error) {
    button.disabled = false;
    if (error instanceof ApiError && error.code === 'site_not_found') {
      await reloadSitesQuietly();
    }
    showDirectoryError({ error });
  }
}

async function deleteSite(site, button) {
  hideDirectoryMessages();
  if (!window.confirm(t('directory.confirm_delete', { name: site.name, code: site.code }))) return;
  button.disabled = true;
  try {
    await api('DELETE', `/api/sites/${encodeURIComponent(site.code)}`);
    sites = sites.filter((other) => other.code !== site.code);
    if (siteDraft?.code === site.code) siteDraft = null;
    sitesChanged();
    showDirectoryStatus('directory.deleted', { name: site.name });
  } catch (error) {
    button.disabled = false;
    let blocking = [];
    if (error instanceof ApiError && error.code === 'site_in_use') {
      // The refusal names the meetings by id: show their titles and times.
      try {
        await loadMeetings();
      } catch {
        // The list stays as it was.
      }
      blocking = meetings.filter((meeting) => error.message.includes(meeting.id));
    } else if (error instanceof ApiError && error.code === 'site_not_found') {
      await reloadSitesQuietly();
    }
    showDirectoryError({ error, meetings: blocking });
  }
}

async function addSite() {
  hideDirectoryMessages();
  const name = $('new-site-name').value.trim();
  const code = $('new-site-code').value.trim();
  if (!name || name.length > MAX_SITE_NAME_CHARS) {
    showDirectoryError({ key: 'api.invalid_site_name' });
    $('new-site-name').focus();
    return;
  }
  if (code.length > MAX_SITE_CODE_LEN || !SITE_CODE.test(code)) {
    showDirectoryError({ key: 'api.invalid_site_code' });
    $('new-site-code').focus();
    return;
  }
  const button = $('new-site-submit');
  button.disabled = true;
  try {
    const created = await api('POST', '/api/sites', { code, name, ...placeFields($('new-site-place').value) });
    sites = [...sites.filter((site) => site.code !== created.code), created];
    $('new-site-name').value = '';
    $('new-site-code').value = '';
    codeTyped = false;
    $('directory-filter').value = '';
    sitesChanged();
    showDirectoryStatus('directory.added', { name: created.name, code: created.code });
    const row = document.querySelector(`#directory tr[data-site="${CSS.escape(created.code)}"]`);
    if (row) {
      row.classList.add('just-added');
      row.scrollIntoView({ block: 'nearest' });
    }
  } catch (error) {
    showDirectoryError({ error });
  } finally {
    button.disabled = false;
  }
}

function replaceSite(code, updated) {
  if (!updated || typeof updated.code !== 'string') return;
  sites = sites.map((site) => (site.code === code ? updated : site));
}

async function reloadSitesQuietly() {
  try {
    await loadSites();
    if (siteDraft && !sites.some((site) => site.code === siteDraft.code)) siteDraft = null;
    sitesChanged();
  } catch {
    // The error being shown matters more.
  }
}

/** After the directory changed: its table, the meeting form's choices, the names shown. */
function sitesChanged() {
  renderDirectory();
  refreshSiteChoices();
  renderMeetings();
  if (shownMeeting) renderLinks(shownMeeting);
}

/** Rebuild the form's site choices, keeping the chair and the ticks being made. */
function refreshSiteChoices() {
  const chair = $('chair').value;
  const ticked = new Set([...checkboxes].filter(([, box]) => box.checked).map(([code]) => code));
  renderSiteChoices();
  if (sites.some((site) => site.code === chair)) $('chair').value = chair;
  else {
    const province = sites.find((site) => site.tier === 'province');
    if (province) $('chair').value = province.code;
  }
  for (const [code, box] of checkboxes) box.checked = ticked.has(code);
  updateChairChoice();
}

function showDirectoryError({ key, error, meetings: blocking = [] }) {
  const detail = $('directory-error-detail');
  const list = $('directory-error-list');
  list.replaceChildren();
  detail.textContent = '';
  delete detail.dataset.i18n;
  delete detail.dataset.i18nVars;
  if (error) {
    const described = describe(error);
    setText($('directory-error-text'), described.key, described.vars);
    if (described.detail) setText(detail, 'error.server_said', { message: described.detail });
    for (const meeting of blocking) {
      const item = document.createElement('li');
      setText(item, 'directory.in_use_meeting', {
        title: String(meeting.title ?? meeting.id),
        time: formatRange(meeting.start, meeting.end),
      });
      list.append(item);
    }
  } else {
    setText($('directory-error-text'), key);
  }
  const box = $('directory-error');
  box.hidden = false;
  box.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
}

function showDirectoryStatus(key, vars) {
  const element = $('directory-status');
  setText(element, key, vars);
  element.hidden = false;
  clearTimeout(showDirectoryStatus.timer);
  showDirectoryStatus.timer = setTimeout(() => {
    element.hidden = true;
  }, 8000);
}

function hideDirectoryMessages() {
  $('directory-error').hidden = true;
  $('directory-status').hidden = true;
}

// ---------------------------------------------------------------------------------------
// Helpers

function siteName(code) {
  return sites.find((site) => site.code === code)?.name ?? String(code ?? '');
}

/** A Date as the value of a datetime-local input, in the browser's time zone. */
function toLocalInput(date) {
  if (Number.isNaN(date.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A datetime-local value as RFC 3339 with the browser's offset at that time. */
function fromLocalInput(value) {
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value ?? '');
  if (!match) return null;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return null;
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, '0');
  return `${match[1]}T${match[2]}:${match[3]}:${match[4] ?? '00'}${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
}

function locale() {
  return language() === 'vi' ? 'vi-VN' : 'en-GB';
}

function formatRange(start, end) {
  const from = new Date(start);
  const to = new Date(end);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) return '';
  const day = (d) => d.toLocaleDateString(locale(), { day: '2-digit', month: '2-digit', year: 'numeric' });
  const time = (d) => d.toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit' });
  return day(from) === day(to)
    ? `${day(from)} ${time(from)}–${time(to)}`
    : `${day(from)} ${time(from)} – ${day(to)} ${time(to)}`;
}
