// A site's line test on a page of its own, /m/<meeting>/test?token=<join token>: for IT
// staff who test the line without joining the meeting. The same test as the lobby's
// (linetest.js), with the camera preview and the microphone level as the device check.
//
// Query: `token` (required), `autostart=1` (start at once, for tests), `lang=vi|en`.

import { applyI18n, mountLanguageSwitch, setText } from './i18n.js';
import { $, openLocalMedia, startMicMeter } from './call.js';
import { attachLineTestCard } from './linetest.js';

const params = new URLSearchParams(location.search);
const token = params.get('token') ?? '';
const meetingId = (/^\/m\/([^/]+)\/test\/?$/.exec(location.pathname) ?? [])[1] ?? null;
let stream = new MediaStream();

mountLanguageSwitch($('lang-switch'));
applyI18n();
const card = attachLineTestCard($('line-test-card'), { token: () => token, stream: () => stream });

const opening = openMedia();
const reading = readInvitation();
Promise.all([opening, reading]).then(([, usable]) => {
  if (usable && params.get('autostart') === '1') card.start();
});

async function openMedia() {
  const opened = await openLocalMedia();
  stream = opened.stream;
  const status = $('media-status');
  setText(status, opened.status);
  status.classList.toggle('warning', opened.warning);
  const hasVideo = stream.getVideoTracks().length > 0;
  $('preview').srcObject = hasVideo ? stream : null;
  $('preview-placeholder').hidden = hasVideo;
  if (!hasVideo) setText($('preview-placeholder'), 'meeting.no_video');
  startMicMeter(stream, $('mic-meter'), $('mic-meter-fill'));
}

/** What the token admits: resolves to whether a test is worth trying. */
async function readInvitation() {
  if (!token) return refuse('invalid_token');
  const query = new URLSearchParams({ token });
  if (meetingId) query.set('meeting', decodeURIComponent(meetingId));
  let response;
  let body = null;
  try {
    response = await fetch(`/api/invitation?${query}`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    body = await response.json();
  } catch (error) {
    // The socket will tell whether the link works.
    console.warn('invitation', error);
    return true;
  }
  if (!response.ok) return refuse(typeof body?.code === 'string' ? body.code : 'invalid_token');
  const title = String(body?.meeting?.title ?? '');
  const site = String(body?.site?.name ?? '');
  $('meeting-title').textContent = title;
  $('meeting-label').textContent = title;
  $('site-name').textContent = site;
  $('site-label').textContent = site;
  if (typeof body?.site?.code === 'string') document.body.dataset.site = body.site.code;
  return true;
}

function refuse(code) {
  const refusal = $('refusal');
  refusal.hidden = false;
  setText(refusal, `error.${code}`);
  $('line-test-button').hidden = true;
  document.body.dataset.refused = code;
  return false;
}
