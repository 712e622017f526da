// The home page: says what Cầu is and sends the user to /join/<room>?name=<site name>.

import { applyI18n, mountLanguageSwitch } from './i18n.js';

const NAME_KEY = 'cau.name';

mountLanguageSwitch(document.getElementById('lang-switch'));
applyI18n();

const form = document.getElementById('enter-form');
const roomInput = document.getElementById('room');
const nameInput = document.getElementById('name');

try {
  nameInput.value = localStorage.getItem(NAME_KEY) ?? '';
} catch {
  // Storage may be disabled: the field starts empty.
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!form.reportValidity()) return;
  const room = roomInput.value.trim();
  const name = nameInput.value.trim();
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // Nothing to remember with.
  }
  const target = new URL(`/join/${encodeURIComponent(room)}`, location.href);
  target.searchParams.set('name', name);
  location.assign(target);
});
