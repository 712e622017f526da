// Every string the browser client shows, in Vietnamese (the default) and English.
//
// Elements carry the key of their text in `data-i18n` (and `data-i18n-title`,
// `data-i18n-placeholder`, `data-i18n-aria-label` for attributes); `applyI18n` fills them
// in, so switching language re-renders the page without touching its state. Text that
// depends on state (a button that says "Tắt micro" or "Bật micro") changes its key and
// calls `applyI18n` again. Placeholders in `{braces}` are filled from the element's
// `data-i18n-vars` (JSON) or from `t`'s second argument.

export const LANGUAGES = ['vi', 'en'];
const STORAGE_KEY = 'cau.lang';

const dictionary = {
  vi: {
    'lang.name': 'Tiếng Việt',
    'lang.label': 'Ngôn ngữ',

    'app.tagline': 'Họp trực tuyến giữa các điểm cầu tỉnh Cao Bằng',

    'home.title': 'Cầu — Họp trực tuyến',
    'home.intro':
      'Cầu là hệ thống họp trực tuyến mã nguồn mở của tỉnh Cao Bằng. Điểm cầu tỉnh, phường và xã '
      + 'gặp nhau bằng hình ảnh và âm thanh ngay trong trình duyệt, không cần cài thêm phần mềm.',
    'home.how':
      'Nhập tên phòng họp được thông báo và tên điểm cầu của bạn, rồi kiểm tra camera và micro trước khi tham gia.',
    'home.enter': 'Vào phòng họp',
    'home.continue': 'Tiếp tục',

    'field.room': 'Phòng họp',
    'field.room.placeholder': 'vi-du: hop-giao-ban',
    'field.room.hint':
      'Chữ cái không dấu, chữ số, dấu gạch ngang (-), gạch dưới (_) hoặc dấu chấm (.); tối đa 64 ký tự.',
    'field.name': 'Tên điểm cầu',
    'field.name.placeholder': 'Ví dụ: UBND xã Quảng Uyên',
    'field.name.hint': 'Tên này hiện dưới hình ảnh của bạn cho các điểm cầu khác.',

    'join.title': 'Chuẩn bị tham gia',
    'join.room': 'Phòng họp: {room}',
    'join.join': 'Tham gia',
    'join.joining': 'Đang tham gia…',
    'join.preview': 'Hình ảnh từ camera của bạn',
    'join.mic_level': 'Mức âm thanh micro',
    'join.home': 'Về trang chủ',

    'media.requesting': 'Đang mở camera và micro…',
    'media.ready': 'Camera và micro đã sẵn sàng.',
    'media.no_camera': 'Không mở được camera: bạn sẽ tham gia chỉ bằng âm thanh.',
    'media.no_microphone': 'Không mở được micro: các điểm cầu khác sẽ không nghe thấy bạn.',
    'media.none': 'Không mở được camera và micro. Bạn vẫn có thể tham gia để xem và nghe.',
    'media.denied':
      'Trình duyệt đang chặn camera và micro. Hãy cho phép ở thanh địa chỉ rồi tải lại trang.',
    'media.insecure':
      'Trình duyệt chỉ cho dùng camera và micro khi trang được mở qua HTTPS. Bạn vẫn có thể xem và nghe.',

    'meeting.you': 'Bạn',
    'meeting.alone': 'Chưa có điểm cầu nào khác trong phòng họp.',
    'meeting.sites': 'Số điểm cầu: {count}',
    'meeting.mic_off': 'Tắt micro',
    'meeting.mic_on': 'Bật micro',
    'meeting.cam_off': 'Tắt camera',
    'meeting.cam_on': 'Bật camera',
    'meeting.leave': 'Rời cuộc họp',
    'meeting.muted_audio': 'Đã tắt micro',
    'meeting.muted_video': 'Đã tắt camera',
    'meeting.waiting_video': 'Đang chờ hình ảnh…',
    'meeting.no_video': 'Không có hình ảnh',
    'meeting.enable_sound': 'Bấm vào đây để bật âm thanh',
    'meeting.controls': 'Điều khiển cuộc họp',

    'state.signaling': 'Máy chủ',
    'state.media': 'Âm thanh và hình ảnh',
    'state.new': 'Đang kết nối',
    'state.connecting': 'Đang kết nối',
    'state.connected': 'Đã kết nối',
    'state.open': 'Đã kết nối',
    'state.disconnected': 'Mất kết nối',
    'state.failed': 'Mất kết nối',
    'state.closed': 'Mất kết nối',
    'state.reconnecting': 'Đang kết nối lại (lần {attempt})',

    'left.title': 'Bạn đã rời cuộc họp',
    'left.rejoin': 'Tham gia lại',

    'error.title': 'Lỗi',
    'error.dismiss': 'Đóng',
    'error.bad_json': 'Máy chủ không đọc được tin nhắn vừa gửi.',
    'error.unknown_type': 'Máy chủ không hiểu tin nhắn vừa gửi.',
    'error.binary_not_supported': 'Máy chủ không nhận dữ liệu nhị phân.',
    'error.message_too_large': 'Tin nhắn quá lớn.',
    'error.not_joined': 'Chưa vào phòng họp.',
    'error.already_joined': 'Bạn đã ở trong phòng họp.',
    'error.invalid_room': 'Tên phòng họp không hợp lệ.',
    'error.invalid_name': 'Tên điểm cầu không hợp lệ: cần từ 1 đến 64 ký tự.',
    'error.room_full': 'Phòng họp đã đủ số điểm cầu.',
    'error.server_full': 'Máy chủ đã đủ số người tham gia. Hãy thử lại sau.',
    'error.bad_sdp': 'Máy chủ không chấp nhận thông số âm thanh và hình ảnh của trình duyệt.',
    'error.bad_candidate': 'Máy chủ không chấp nhận một địa chỉ mạng của trình duyệt.',
    'error.negotiation_refused': 'Máy chủ từ chối thương lượng kết nối.',
    'error.media_failed': 'Mất đường truyền âm thanh và hình ảnh tới máy chủ.',
    'error.internal': 'Máy chủ gặp lỗi.',
    'error.browser': 'Trình duyệt gặp lỗi khi kết nối.',
    'error.server_said': 'Máy chủ báo: {message}',
  },
  en: {
    'lang.name': 'English',
    'lang.label': 'Language',

    'app.tagline': 'Video meetings between the sites of Cao Bằng province',

    'home.title': 'Cầu — Video meetings',
    'home.intro':
      'Cầu is the open-source video meeting system of Cao Bằng province. The provincial, ward and '
      + 'commune sites meet with sound and picture right in the browser, with nothing to install.',
    'home.how':
      'Enter the meeting room you were given and your site name, then check your camera and microphone before joining.',
    'home.enter': 'Enter a meeting room',
    'home.continue': 'Continue',

    'field.room': 'Meeting room',
    'field.room.placeholder': 'e.g. weekly-briefing',
    'field.room.hint': 'Unaccented letters, digits, hyphen (-), underscore (_) or dot (.); at most 64 characters.',
    'field.name': 'Site name',
    'field.name.placeholder': 'e.g. Quảng Uyên Commune People’s Committee',
    'field.name.hint': 'The other sites see this name under your picture.',

    'join.title': 'Get ready to join',
    'join.room': 'Meeting room: {room}',
    'join.join': 'Join',
    'join.joining': 'Joining…',
    'join.preview': 'Your camera',
    'join.mic_level': 'Microphone level',
    'join.home': 'Home',

    'media.requesting': 'Opening camera and microphone…',
    'media.ready': 'Camera and microphone are ready.',
    'media.no_camera': 'The camera could not be opened: you will join with audio only.',
    'media.no_microphone': 'The microphone could not be opened: the other sites will not hear you.',
    'media.none': 'Neither camera nor microphone could be opened. You can still join to watch and listen.',
    'media.denied': 'The browser blocks the camera and microphone. Allow them in the address bar, then reload.',
    'media.insecure': 'Browsers allow the camera and microphone only on pages opened over HTTPS. You can still watch and listen.',

    'meeting.you': 'You',
    'meeting.alone': 'No other site has joined the meeting yet.',
    'meeting.sites': 'Sites: {count}',
    'meeting.mic_off': 'Mute microphone',
    'meeting.mic_on': 'Unmute microphone',
    'meeting.cam_off': 'Turn camera off',
    'meeting.cam_on': 'Turn camera on',
    'meeting.leave': 'Leave meeting',
    'meeting.muted_audio': 'Microphone off',
    'meeting.muted_video': 'Camera off',
    'meeting.waiting_video': 'Waiting for video…',
    'meeting.no_video': 'No video',
    'meeting.enable_sound': 'Click here to turn the sound on',
    'meeting.controls': 'Meeting controls',

    'state.signaling': 'Server',
    'state.media': 'Audio and video',
    'state.new': 'Connecting',
    'state.connecting': 'Connecting',
    'state.connected': 'Connected',
    'state.open': 'Connected',
    'state.disconnected': 'Connection lost',
    'state.failed': 'Connection lost',
    'state.closed': 'Connection lost',
    'state.reconnecting': 'Reconnecting (attempt {attempt})',

    'left.title': 'You have left the meeting',
    'left.rejoin': 'Join again',

    'error.title': 'Error',
    'error.dismiss': 'Close',
    'error.bad_json': 'The server could not read the last message.',
    'error.unknown_type': 'The server did not understand the last message.',
    'error.binary_not_supported': 'The server does not accept binary data.',
    'error.message_too_large': 'The message was too large.',
    'error.not_joined': 'Not in the meeting room yet.',
    'error.already_joined': 'You are already in the meeting room.',
    'error.invalid_room': 'The meeting room name is not valid.',
    'error.invalid_name': 'The site name is not valid: it needs 1 to 64 characters.',
    'error.room_full': 'The meeting room is full.',
    'error.server_full': 'The server is full. Please try again later.',
    'error.bad_sdp': 'The server did not accept the browser’s audio and video parameters.',
    'error.bad_candidate': 'The server did not accept one of the browser’s network addresses.',
    'error.negotiation_refused': 'The server refused the connection negotiation.',
    'error.media_failed': 'The audio and video path to the server was lost.',
    'error.internal': 'The server had an internal error.',
    'error.browser': 'The browser failed while connecting.',
    'error.server_said': 'The server said: {message}',
  },
};

let current = initialLanguage();
const listeners = [];

/** The language in use: `?lang=` first, then the remembered choice, then Vietnamese. */
export function language() {
  return current;
}

/** Switch language, remember it, and re-render every element that carries a key. */
export function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) return;
  current = lang;
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // Storage may be disabled (private mode, kiosk policy): the choice lasts for this page.
  }
  const url = new URL(location.href);
  if (url.searchParams.has('lang')) {
    url.searchParams.set('lang', lang);
    history.replaceState(history.state, '', url);
  }
  applyI18n();
  for (const listener of listeners) listener(lang);
}

/** Call `listener(lang)` after every language switch. */
export function onLanguageChange(listener) {
  listeners.push(listener);
}

/** The text for `key` in the current language, with `{placeholders}` filled from `vars`. */
export function t(key, vars = {}) {
  const text = dictionary[current][key] ?? dictionary.vi[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** Whether the dictionary has `key` (used for server error codes, which may be new). */
export function has(key) {
  return key in dictionary.vi;
}

/** Fill in every element under `root` that carries an i18n key. */
export function applyI18n(root = document) {
  document.documentElement.lang = current;
  for (const element of root.querySelectorAll('[data-i18n]')) {
    element.textContent = t(element.dataset.i18n, varsOf(element));
  }
  for (const [attribute, dataKey] of [
    ['title', 'i18nTitle'],
    ['placeholder', 'i18nPlaceholder'],
    ['aria-label', 'i18nAriaLabel'],
  ]) {
    const selector = `[data-i18n-${attribute}]`;
    for (const element of root.querySelectorAll(selector)) {
      element.setAttribute(attribute, t(element.dataset[dataKey], varsOf(element)));
    }
  }
}

/** Give `element` the text of `key`, now and after every language switch. */
export function setText(element, key, vars) {
  element.dataset.i18n = key;
  if (vars === undefined) delete element.dataset.i18nVars;
  else element.dataset.i18nVars = JSON.stringify(vars);
  element.textContent = t(key, vars);
}

/** Fill `container` with one button per language; the current one is pressed. */
export function mountLanguageSwitch(container) {
  container.replaceChildren();
  container.setAttribute('role', 'group');
  container.dataset.i18nAriaLabel = 'lang.label';
  const buttons = LANGUAGES.map((lang) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.lang = lang;
    button.dataset.lang = lang;
    button.textContent = dictionary[lang]['lang.name'];
    button.addEventListener('click', () => setLanguage(lang));
    container.append(button);
    return button;
  });
  const mark = () => {
    for (const button of buttons) {
      button.setAttribute('aria-pressed', String(button.dataset.lang === current));
    }
  };
  mark();
  onLanguageChange(mark);
}

function initialLanguage() {
  const fromQuery = new URLSearchParams(location.search).get('lang');
  if (LANGUAGES.includes(fromQuery)) return fromQuery;
  try {
    const remembered = localStorage.getItem(STORAGE_KEY);
    if (LANGUAGES.includes(remembered)) return remembered;
  } catch {
    // Storage may be disabled: fall back to the default.
  }
  return 'vi';
}

function varsOf(element) {
  if (!element.dataset.i18nVars) return {};
  try {
    return JSON.parse(element.dataset.i18nVars);
  } catch {
    return {};
  }
}
