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

    // Scheduled meetings: a site's page, /m/<meeting>?token=...
    'site.invitation': 'Giấy mời họp trực tuyến',
    'site.loading': 'Đang tải thông tin cuộc họp…',
    'site.time': 'Thời gian',
    'site.site': 'Điểm cầu',
    'site.role': 'Vai trò',
    'site.mode': 'Hình thức',
    'site.refused': 'Không thể dùng liên kết này',
    'site.invitation_unavailable': 'Không đọc được thông tin cuộc họp. Bạn vẫn có thể thử tham gia.',
    'site.label': '{name} · {role}',
    'site.nobody_on_stage': 'Chưa có điểm cầu nào trên màn hình chính.',
    'site.thumbnails': 'Các điểm cầu khác',
    'role.chair': 'Chủ trì',
    'role.participant': 'Điểm cầu tham dự',
    'role.observer': 'Cán bộ kỹ thuật (theo dõi)',
    'mode.chair': 'Chủ trì điều hành: xin phát biểu và chờ chủ trì cho phép',
    'mode.open': 'Thảo luận tự do: mọi điểm cầu đều có thể phát biểu',
    'lobby.title': 'Đang chờ chủ trì cho vào phòng họp',
    'lobby.hint': 'Xin giữ nguyên trang này. Cuộc họp sẽ tự mở khi chủ trì cho phép.',
    'floor.request': 'Xin phát biểu',
    'floor.cancel': 'Hủy xin phát biểu (đang chờ thứ {position})',
    'floor.yours': 'Bạn đang có quyền phát biểu',
    'floor.holder': 'Đang phát biểu: {name}',
    'floor.nobody': 'Chưa có điểm cầu nào được phát biểu',
    'floor.open_mode': 'Thảo luận tự do: mọi điểm cầu đều có thể phát biểu',
    'mic.wait_floor': 'Micro tắt cho đến khi được quyền phát biểu',
    'mic.muted_by_chair': 'Chủ trì đã tắt micro của điểm cầu này',
    'mic.observer': 'Cán bộ kỹ thuật chỉ xem và nghe',
    'badge.floor': 'Đang phát biểu',
    'badge.muted_by_chair': 'Chủ trì tắt micro',
    'badge.queue': 'Xin phát biểu · thứ {position}',
    'console.title': 'Điều hành cuộc họp',
    'console.rollcall': 'Điểm danh',
    'console.open': 'Bắt đầu cuộc họp',
    'console.opened': 'Cuộc họp đã bắt đầu.',
    'console.not_opened': 'Cuộc họp chưa bắt đầu: các điểm cầu đang ở phòng chờ.',
    'console.lobby': 'Phòng chờ',
    'console.lobby_empty': 'Không có điểm cầu nào đang chờ.',
    'console.admit': 'Cho vào',
    'console.floor': 'Quyền phát biểu',
    'console.revoke': 'Thu hồi quyền phát biểu',
    'console.grant': 'Cho phát biểu',
    'console.queue': 'Đăng ký phát biểu',
    'console.queue_empty': 'Chưa có điểm cầu nào xin phát biểu.',
    'console.open_mode': 'Thảo luận tự do: mọi điểm cầu đều có thể phát biểu.',
    'console.layout': 'Màn hình chính',
    'console.layout_apply': 'Hiển thị các điểm cầu đã chọn',
    'console.layout_auto': 'Tự động',
    'console.layout_now': 'Đang hiển thị: {names}',
    'console.layout_auto_now': 'Tự động: chủ trì và điểm cầu đang phát biểu. Chọn từ 1 đến 4 điểm cầu:',
    'console.mute': 'Tắt micro',
    'console.unmute': 'Bật lại micro',
    'rollcall.site': 'Điểm cầu',
    'rollcall.status': 'Trạng thái',
    'rollcall.joined': 'Vào lúc',
    'rollcall.left': 'Rời lúc',
    'rollcall.actions': 'Thao tác',
    'rollcall.summary': '(có mặt {present}/{total})',
    'rollcall.in_lobby': 'Đang chờ',
    'rollcall.online': 'Đang kết nối',
    'rollcall.offline': 'Không kết nối',
    'rollcall.reason_placeholder': 'Lý do vắng mặt',
    'rollcall.mark_absent': 'Vắng mặt',
    'attendance.not_called': 'Chưa điểm danh',
    'attendance.present': 'Có mặt',
    'attendance.late': 'Đến muộn',
    'attendance.left': 'Đã rời',
    'attendance.absent': 'Vắng mặt',

    'error.invalid_token': 'Liên kết tham gia không hợp lệ.',
    'error.token_expired': 'Liên kết tham gia đã hết hạn: cuộc họp đã kết thúc.',
    'error.token_not_yet_valid': 'Chưa đến giờ vào cuộc họp này. Hãy mở lại liên kết gần giờ họp.',
    'error.token_revoked': 'Liên kết tham gia đã bị thu hồi. Hãy xin thư ký liên kết mới.',
    'error.meeting_cancelled': 'Cuộc họp đã bị hủy.',
    'error.wrong_meeting': 'Liên kết này không thuộc cuộc họp này.',
    'error.forbidden': 'Điểm cầu của bạn không được làm việc này.',
    'error.not_connected': 'Điểm cầu đó hiện không ở trong cuộc họp.',
    'error.floor_open': 'Cuộc họp đang thảo luận tự do: không cần xin phát biểu.',
    'error.bad_layout': 'Màn hình chính chỉ hiển thị từ 1 đến 4 điểm cầu được mời, mỗi điểm cầu một lần.',
    'error.bad_reason': 'Hãy nhập lý do vắng mặt (tối đa 200 ký tự).',
    'error.replaced': 'Điểm cầu của bạn vừa tham gia từ một máy khác, nên trang này đã rời cuộc họp.',

    'error.line_test_busy': 'Điểm cầu này đang kiểm tra đường truyền ở một cửa sổ khác.',
    'error.line_test_timeout': 'Máy chủ không trả kết quả kiểm tra đường truyền.',
    'error.connection_lost': 'Mất kết nối tới máy chủ.',
    'error.aborted': 'Đã dừng kiểm tra.',

    'linetest.title': 'Kiểm tra đường truyền',
    'linetest.button': 'Kiểm tra đường truyền',
    'linetest.again': 'Kiểm tra lại',
    'linetest.intro':
      'Đo độ trễ, mất gói, độ dao động, tốc độ tải xuống và tải lên tới máy chủ họp, '
      + 'và kiểm tra camera và micro có tới được máy chủ không. Mất khoảng 15 giây.',
    'linetest.page_hint': 'Trang này chỉ kiểm tra đường truyền, không vào cuộc họp.',
    'linetest.phase.connecting': 'Đang kết nối tới máy chủ…',
    'linetest.phase.probe': 'Đang đo độ trễ và mất gói…',
    'linetest.phase.download': 'Đang đo tốc độ tải xuống…',
    'linetest.phase.upload': 'Đang đo tốc độ tải lên…',
    'linetest.phase.done': 'Đang tổng hợp kết quả…',
    'linetest.failed': 'Không chạy được bài kiểm tra.',
    'linetest.verdict.ready': 'Sẵn sàng',
    'linetest.verdict.marginal': 'Tạm được',
    'linetest.verdict.not_ready': 'Chưa sẵn sàng',
    'linetest.verdict_line.ready': 'Đường truyền đủ cho cuộc họp.',
    'linetest.verdict_line.marginal': 'Có thể họp, nhưng hình ảnh hoặc âm thanh có thể kém.',
    'linetest.verdict_line.not_ready': 'Đường truyền chưa đủ cho cuộc họp.',
    'linetest.rtt': 'Độ trễ khứ hồi',
    'linetest.jitter': 'Độ dao động trễ',
    'linetest.loss': 'Mất gói',
    'linetest.download': 'Tải xuống',
    'linetest.upload': 'Tải lên',
    'linetest.microphone': 'Micro',
    'linetest.camera': 'Camera',
    'linetest.works': 'Máy chủ đã nhận được',
    'linetest.not_received': 'Máy chủ không nhận được',
    'linetest.ms': '{value} ms',
    'linetest.percent': '{value}%',
    'linetest.kbps': '{value} kbit/s (cuộc họp cần {needed})',
    'linetest.tested_at': 'Kiểm tra lúc {time}',
    'linetest.reason.no_connection':
      'Không kết nối được âm thanh và hình ảnh tới máy chủ (mạng có thể đang chặn UDP).',
    'linetest.reason.incomplete': 'Các kênh dữ liệu của bài kiểm tra không mở được.',
    'linetest.reason.no_reply': 'Không gói thăm dò nào quay về từ đường truyền này.',
    'linetest.reason.download_low': 'Tải xuống {measured} kbit/s, cuộc họp cần {limit} kbit/s.',
    'linetest.reason.upload_low': 'Tải lên {measured} kbit/s, cuộc họp cần {limit} kbit/s.',
    'linetest.reason.rtt_high': 'Độ trễ khứ hồi {measured} ms, vượt mức {limit} ms.',
    'linetest.reason.loss_high': 'Mất {measured}% gói thăm dò, vượt mức {limit}%.',
    'linetest.reason.jitter_high': 'Độ dao động trễ {measured} ms, vượt mức {limit} ms.',
    'linetest.reason.no_audio': 'Máy chủ không nhận được âm thanh từ micro.',
    'linetest.reason.no_video': 'Máy chủ không nhận được hình ảnh từ camera.',
    'rollcall.line': 'Đường truyền',
    'rollcall.line_untested': 'Chưa kiểm tra',

    // The secretary's scheduling page, /schedule
    'schedule.title': 'Lịch họp trực tuyến',
    'schedule.token_title': 'Đăng nhập quản trị',
    'schedule.token_label': 'Mã quản trị',
    'schedule.token_hint': 'Mã do máy chủ in ra khi khởi động lần đầu (hoặc đặt bằng CAU_ADMIN_TOKEN). Mã chỉ được giữ trong thẻ trình duyệt này.',
    'schedule.token_save': 'Đăng nhập',
    'schedule.sign_out': 'Đăng xuất',
    'schedule.list': 'Các cuộc họp',
    'schedule.refresh': 'Tải lại',
    'schedule.new': 'Tạo cuộc họp mới',
    'schedule.empty': 'Chưa có cuộc họp nào.',
    'schedule.col_title': 'Cuộc họp',
    'schedule.col_time': 'Thời gian',
    'schedule.col_chair': 'Chủ trì',
    'schedule.col_sites': 'Điểm cầu',
    'schedule.col_status': 'Trạng thái',
    'schedule.col_actions': 'Thao tác',
    'schedule.status_scheduled': 'Đã lên lịch',
    'schedule.status_cancelled': 'Đã hủy',
    'schedule.edit': 'Sửa',
    'schedule.cancel_meeting': 'Hủy cuộc họp',
    'schedule.confirm_cancel': 'Hủy cuộc họp “{title}”? Các liên kết tham gia sẽ không dùng được nữa.',
    'schedule.links': 'Liên kết',
    'schedule.ics': 'Lịch (.ics)',
    'schedule.csv': 'Điểm danh (CSV)',
    'schedule.form_new': 'Tạo cuộc họp',
    'schedule.form_edit': 'Sửa cuộc họp',
    'schedule.field_title': 'Tên cuộc họp',
    'schedule.title_placeholder': 'Ví dụ: Giao ban trực tuyến tháng 12',
    'schedule.field_agenda': 'Nội dung, chương trình',
    'schedule.field_start': 'Bắt đầu',
    'schedule.field_end': 'Kết thúc',
    'schedule.field_chair': 'Điểm cầu chủ trì',
    'schedule.field_mode': 'Hình thức điều hành',
    'schedule.mode_chair': 'Chủ trì cho phép phát biểu',
    'schedule.mode_open': 'Thảo luận tự do',
    'schedule.field_sites': 'Điểm cầu được mời',
    'schedule.selected': 'Đã chọn {count} điểm cầu',
    'schedule.all_communes': 'Tất cả xã, phường',
    'schedule.clear_sites': 'Bỏ chọn tất cả',
    'schedule.tier_central': 'Trung ương',
    'schedule.tier_province': 'Tỉnh',
    'schedule.tier_commune': 'Xã, phường',
    'schedule.chair_tag': '(chủ trì)',
    'schedule.create': 'Tạo cuộc họp',
    'schedule.save': 'Lưu thay đổi',
    'schedule.discard': 'Bỏ sửa',
    'schedule.created': 'Đã tạo cuộc họp. Gửi cho mỗi điểm cầu liên kết của điểm cầu đó.',
    'schedule.saved': 'Đã lưu thay đổi.',
    'schedule.cancelled': 'Đã hủy cuộc họp.',
    'schedule.links_title': 'Liên kết tham gia: {title}',
    'schedule.links_hint': 'Mỗi điểm cầu chỉ dùng liên kết của mình. Không gửi liên kết của điểm cầu này cho điểm cầu khác.',
    'schedule.copy': 'Sao chép',
    'schedule.copied': 'Đã sao chép',
    'schedule.open_link': 'Mở',
    'schedule.loading': 'Đang tải…',
    'schedule.conflict_with': '“{title}” ({time}) cũng mời: {sites}',
    'schedule.invalid_dates': 'Hãy nhập thời gian bắt đầu và kết thúc.',
    'api.unauthorized': 'Mã quản trị không đúng.',
    'api.network': 'Không kết nối được tới máy chủ.',
    'api.conflict': 'Trùng lịch: có điểm cầu đã được mời vào một cuộc họp khác trong cùng thời gian.',
    'api.title_empty': 'Hãy nhập tên cuộc họp.',
    'api.title_too_long': 'Tên cuộc họp quá dài (tối đa 200 ký tự).',
    'api.agenda_too_long': 'Nội dung quá dài (tối đa 10.000 ký tự).',
    'api.invalid_time': 'Thời gian không hợp lệ.',
    'api.end_before_start': 'Thời gian kết thúc phải sau thời gian bắt đầu.',
    'api.meeting_too_long': 'Một cuộc họp kéo dài tối đa 24 giờ.',
    'api.unknown_sites': 'Có điểm cầu không có trong danh bạ.',
    'api.duplicate_invitation': 'Có điểm cầu được mời hai lần.',
    'api.no_invited_sites': 'Hãy mời ít nhất một điểm cầu ngoài điểm cầu chủ trì.',
    'api.meeting_not_found': 'Không tìm thấy cuộc họp.',
    'api.meeting_cancelled': 'Cuộc họp đã bị hủy.',
    'api.invalid_body': 'Máy chủ không đọc được yêu cầu.',
    'api.internal': 'Máy chủ gặp lỗi.',
    'api.failed': 'Máy chủ từ chối yêu cầu (mã {status}).',

    // The site directory, on /schedule
    'directory.title': 'Danh mục điểm cầu',
    'directory.hint': 'Các điểm cầu có thể mời vào cuộc họp. Mã điểm cầu nằm trong liên kết tham gia nên không đổi được; tên và cấp sửa được bất cứ lúc nào.',
    'directory.filter': 'Tìm điểm cầu',
    'directory.filter_placeholder': 'Tìm theo tên hoặc mã',
    'directory.count': 'Có {count} điểm cầu',
    'directory.count_filtered': 'Tìm thấy {shown} trong {count} điểm cầu',
    'directory.none': 'Danh mục chưa có điểm cầu nào.',
    'directory.no_match': 'Không có điểm cầu nào khớp với nội dung tìm.',
    'directory.col_code': 'Mã',
    'directory.col_name': 'Tên điểm cầu',
    'directory.col_tier': 'Cấp',
    'directory.tier_central': 'Trung ương',
    'directory.tier_province': 'Tỉnh',
    'directory.tier_commune': 'Xã, phường',
    'directory.kind_commune': 'Xã',
    'directory.kind_ward': 'Phường',
    'directory.place_central': 'Trung ương',
    'directory.place_province': 'Tỉnh',
    'directory.place_commune': 'Xã, phường — Xã',
    'directory.place_ward': 'Xã, phường — Phường',
    'directory.place_commune_level': 'Xã, phường — chưa phân loại',
    'directory.edit': 'Sửa',
    'directory.save': 'Lưu',
    'directory.discard': 'Bỏ sửa',
    'directory.delete': 'Xóa',
    'directory.name_label': 'Tên mới của điểm cầu {code}',
    'directory.tier_label': 'Cấp của điểm cầu {code}',
    'directory.confirm_delete': 'Xóa điểm cầu “{name}” ({code}) khỏi danh mục?\n\nCác cuộc họp đã diễn ra vẫn giữ tên điểm cầu này; các liên kết tham gia còn lại của điểm cầu sẽ bị thu hồi.',
    'directory.add_title': 'Thêm điểm cầu',
    'directory.field_name': 'Tên điểm cầu (có dấu)',
    'directory.name_placeholder': 'Ví dụ: Xã Quảng Lâm',
    'directory.field_code': 'Mã điểm cầu',
    'directory.field_tier': 'Cấp',
    'directory.code_hint': 'Mã gồm chữ thường không dấu (a–z), chữ số và dấu gạch ngang giữa các từ, tối đa 64 ký tự, ví dụ quang-lam. Mã được gợi ý theo tên; mã nằm trong liên kết tham gia nên không đổi được sau khi thêm.',
    'directory.add': 'Thêm điểm cầu',
    'directory.added': 'Đã thêm điểm cầu “{name}” (mã {code}).',
    'directory.saved': 'Đã lưu điểm cầu “{name}”.',
    'directory.deleted': 'Đã xóa điểm cầu “{name}”.',
    'directory.in_use_meeting': '“{title}” ({time})',
    'api.invalid_site_code': 'Mã điểm cầu không hợp lệ: chỉ dùng chữ thường không dấu (a–z), chữ số và dấu gạch ngang giữa các từ, tối đa 64 ký tự. Ví dụ: quang-lam.',
    'api.invalid_site_name': 'Hãy nhập tên điểm cầu (từ 1 đến 120 ký tự).',
    'api.invalid_tier': 'Cấp của điểm cầu không hợp lệ.',
    'api.invalid_kind': 'Chỉ điểm cầu cấp xã, phường mới được phân loại là xã hay phường.',
    'api.site_exists': 'Đã có điểm cầu dùng mã này. Hãy chọn mã khác.',
    'api.site_not_found': 'Không tìm thấy điểm cầu: có thể điểm cầu vừa bị xóa. Danh mục đã được tải lại.',
    'api.site_in_use': 'Không thể xóa: điểm cầu đang được mời vào cuộc họp chưa kết thúc. Hãy bỏ điểm cầu khỏi các cuộc họp đó hoặc hủy các cuộc họp đó trước.',
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

    // Scheduled meetings: a site's page, /m/<meeting>?token=...
    'site.invitation': 'Video meeting invitation',
    'site.loading': 'Loading the meeting…',
    'site.time': 'Time',
    'site.site': 'Site',
    'site.role': 'Role',
    'site.mode': 'Format',
    'site.refused': 'This link cannot be used',
    'site.invitation_unavailable': 'The meeting details could not be read. You can still try to join.',
    'site.label': '{name} · {role}',
    'site.nobody_on_stage': 'No site is on the main screen yet.',
    'site.thumbnails': 'The other sites',
    'role.chair': 'Chair',
    'role.participant': 'Participating site',
    'role.observer': 'IT staff (observer)',
    'mode.chair': 'Chaired: ask for the floor and wait for the chair',
    'mode.open': 'Open discussion: every site may speak',
    'lobby.title': 'Waiting for the chair to let you in',
    'lobby.hint': 'Please keep this page open. The meeting opens by itself when the chair lets you in.',
    'floor.request': 'Ask for the floor',
    'floor.cancel': 'Withdraw request (number {position} in line)',
    'floor.yours': 'You have the floor',
    'floor.holder': 'Speaking: {name}',
    'floor.nobody': 'No site has the floor',
    'floor.open_mode': 'Open discussion: every site may speak',
    'mic.wait_floor': 'Microphone off until you are given the floor',
    'mic.muted_by_chair': 'The chair muted this site',
    'mic.observer': 'IT staff only watch and listen',
    'badge.floor': 'Speaking',
    'badge.muted_by_chair': 'Muted by chair',
    'badge.queue': 'Asks for the floor · #{position}',
    'console.title': 'Chair’s console',
    'console.rollcall': 'Roll call',
    'console.open': 'Start the meeting',
    'console.opened': 'The meeting has started.',
    'console.not_opened': 'The meeting has not started: sites are waiting in the lobby.',
    'console.lobby': 'Lobby',
    'console.lobby_empty': 'No site is waiting.',
    'console.admit': 'Let in',
    'console.floor': 'Floor',
    'console.revoke': 'Take the floor back',
    'console.grant': 'Give the floor',
    'console.queue': 'Requests to speak',
    'console.queue_empty': 'No site has asked for the floor.',
    'console.open_mode': 'Open discussion: every site may speak.',
    'console.layout': 'Main screen',
    'console.layout_apply': 'Show the chosen sites',
    'console.layout_auto': 'Automatic',
    'console.layout_now': 'Showing: {names}',
    'console.layout_auto_now': 'Automatic: the chair and the site speaking. Choose 1 to 4 sites:',
    'console.mute': 'Mute',
    'console.unmute': 'Unmute',
    'rollcall.site': 'Site',
    'rollcall.status': 'Status',
    'rollcall.joined': 'Joined',
    'rollcall.left': 'Left',
    'rollcall.actions': 'Actions',
    'rollcall.summary': '({present}/{total} present)',
    'rollcall.in_lobby': 'Waiting',
    'rollcall.online': 'Connected',
    'rollcall.offline': 'Not connected',
    'rollcall.reason_placeholder': 'Reason for absence',
    'rollcall.mark_absent': 'Absent',
    'attendance.not_called': 'Not yet called',
    'attendance.present': 'Present',
    'attendance.late': 'Late',
    'attendance.left': 'Left',
    'attendance.absent': 'Absent',

    'error.invalid_token': 'The join link is not valid.',
    'error.token_expired': 'The join link has expired: the meeting is over.',
    'error.token_not_yet_valid': 'It is too early to enter this meeting. Open the link again closer to the start.',
    'error.token_revoked': 'The join link was revoked. Ask the secretary for a new one.',
    'error.meeting_cancelled': 'The meeting was cancelled.',
    'error.wrong_meeting': 'This link belongs to another meeting.',
    'error.forbidden': 'Your site may not do this.',
    'error.not_connected': 'That site is not in the meeting now.',
    'error.floor_open': 'This is an open discussion: there is no floor to ask for.',
    'error.bad_layout': 'The main screen shows 1 to 4 invited sites, each once.',
    'error.bad_reason': 'Enter a reason for the absence (at most 200 characters).',
    'error.replaced': 'Your site joined from another computer, so this page left the meeting.',

    'error.line_test_busy': "This site's line test is already running in another window.",
    'error.line_test_timeout': 'The server gave no line test result.',
    'error.connection_lost': 'The connection to the server was lost.',
    'error.aborted': 'The test was stopped.',

    'linetest.title': 'Line test',
    'linetest.button': 'Line test',
    'linetest.again': 'Test again',
    'linetest.intro':
      'Measures the delay, loss, jitter, download and upload to the meeting server, '
      + 'and checks that the camera and microphone reach it. Takes about 15 seconds.',
    'linetest.page_hint': 'This page only tests the line; it does not join the meeting.',
    'linetest.phase.connecting': 'Connecting to the server…',
    'linetest.phase.probe': 'Measuring delay and loss…',
    'linetest.phase.download': 'Measuring download…',
    'linetest.phase.upload': 'Measuring upload…',
    'linetest.phase.done': 'Putting the result together…',
    'linetest.failed': 'The test could not run.',
    'linetest.verdict.ready': 'Ready',
    'linetest.verdict.marginal': 'Marginal',
    'linetest.verdict.not_ready': 'Not ready',
    'linetest.verdict_line.ready': 'The line is good enough for the meeting.',
    'linetest.verdict_line.marginal': 'The meeting will work, but picture or sound may suffer.',
    'linetest.verdict_line.not_ready': 'The line is not good enough for the meeting.',
    'linetest.rtt': 'Round-trip time',
    'linetest.jitter': 'Jitter',
    'linetest.loss': 'Loss',
    'linetest.download': 'Download',
    'linetest.upload': 'Upload',
    'linetest.microphone': 'Microphone',
    'linetest.camera': 'Camera',
    'linetest.works': 'Reached the server',
    'linetest.not_received': 'Nothing reached the server',
    'linetest.ms': '{value} ms',
    'linetest.percent': '{value}%',
    'linetest.kbps': '{value} kbit/s (a meeting needs {needed})',
    'linetest.tested_at': 'Tested at {time}',
    'linetest.reason.no_connection':
      'No audio and video connection to the server (the network may block UDP).',
    'linetest.reason.incomplete': "The test's data channels did not open.",
    'linetest.reason.no_reply': 'No probe came back from this line.',
    'linetest.reason.download_low': 'Download {measured} kbit/s, a meeting needs {limit} kbit/s.',
    'linetest.reason.upload_low': 'Upload {measured} kbit/s, a meeting needs {limit} kbit/s.',
    'linetest.reason.rtt_high': 'Round-trip time {measured} ms, above {limit} ms.',
    'linetest.reason.loss_high': '{measured}% of probes lost, above {limit}%.',
    'linetest.reason.jitter_high': 'Jitter {measured} ms, above {limit} ms.',
    'linetest.reason.no_audio': 'No sound from the microphone reached the server.',
    'linetest.reason.no_video': 'No picture from the camera reached the server.',
    'rollcall.line': 'Line',
    'rollcall.line_untested': 'Not tested',

    // The secretary's scheduling page, /schedule
    'schedule.title': 'Meeting schedule',
    'schedule.token_title': 'Administrator sign-in',
    'schedule.token_label': 'Admin token',
    'schedule.token_hint': 'The token the server printed on its first start (or set with CAU_ADMIN_TOKEN). It is kept in this browser tab only.',
    'schedule.token_save': 'Sign in',
    'schedule.sign_out': 'Sign out',
    'schedule.list': 'Meetings',
    'schedule.refresh': 'Reload',
    'schedule.new': 'New meeting',
    'schedule.empty': 'No meetings yet.',
    'schedule.col_title': 'Meeting',
    'schedule.col_time': 'Time',
    'schedule.col_chair': 'Chair',
    'schedule.col_sites': 'Sites',
    'schedule.col_status': 'Status',
    'schedule.col_actions': 'Actions',
    'schedule.status_scheduled': 'Scheduled',
    'schedule.status_cancelled': 'Cancelled',
    'schedule.edit': 'Edit',
    'schedule.cancel_meeting': 'Cancel meeting',
    'schedule.confirm_cancel': 'Cancel the meeting “{title}”? Its join links will stop working.',
    'schedule.links': 'Links',
    'schedule.ics': 'Calendar (.ics)',
    'schedule.csv': 'Attendance (CSV)',
    'schedule.form_new': 'New meeting',
    'schedule.form_edit': 'Edit meeting',
    'schedule.field_title': 'Title',
    'schedule.title_placeholder': 'e.g. Monthly online briefing, December',
    'schedule.field_agenda': 'Agenda',
    'schedule.field_start': 'Start',
    'schedule.field_end': 'End',
    'schedule.field_chair': 'Chairing site',
    'schedule.field_mode': 'Floor',
    'schedule.mode_chair': 'The chair gives the floor',
    'schedule.mode_open': 'Open discussion',
    'schedule.field_sites': 'Invited sites',
    'schedule.selected': '{count} sites selected',
    'schedule.all_communes': 'All communes and wards',
    'schedule.clear_sites': 'Clear all',
    'schedule.tier_central': 'Central',
    'schedule.tier_province': 'Province',
    'schedule.tier_commune': 'Communes and wards',
    'schedule.chair_tag': '(chair)',
    'schedule.create': 'Create meeting',
    'schedule.save': 'Save changes',
    'schedule.discard': 'Discard changes',
    'schedule.created': 'Meeting created. Send each site its own link.',
    'schedule.saved': 'Changes saved.',
    'schedule.cancelled': 'Meeting cancelled.',
    'schedule.links_title': 'Join links: {title}',
    'schedule.links_hint': 'Each site uses only its own link. Do not pass one site’s link to another.',
    'schedule.copy': 'Copy',
    'schedule.copied': 'Copied',
    'schedule.open_link': 'Open',
    'schedule.loading': 'Loading…',
    'schedule.conflict_with': '“{title}” ({time}) also invites: {sites}',
    'schedule.invalid_dates': 'Enter the start and end times.',
    'api.unauthorized': 'The admin token is wrong.',
    'api.network': 'The server cannot be reached.',
    'api.conflict': 'Double booking: some sites are invited to another meeting at the same time.',
    'api.title_empty': 'Enter a title.',
    'api.title_too_long': 'The title is too long (at most 200 characters).',
    'api.agenda_too_long': 'The agenda is too long (at most 10,000 characters).',
    'api.invalid_time': 'A time is not valid.',
    'api.end_before_start': 'The meeting must end after it starts.',
    'api.meeting_too_long': 'A meeting lasts at most 24 hours.',
    'api.unknown_sites': 'Some sites are not in the directory.',
    'api.duplicate_invitation': 'A site is invited twice.',
    'api.no_invited_sites': 'Invite at least one site besides the chair.',
    'api.meeting_not_found': 'The meeting was not found.',
    'api.meeting_cancelled': 'The meeting was cancelled.',
    'api.invalid_body': 'The server could not read the request.',
    'api.internal': 'The server had an internal error.',
    'api.failed': 'The server refused the request (status {status}).',

    // The site directory, on /schedule
    'directory.title': 'Site directory',
    'directory.hint': 'The sites that can be invited to meetings. A site’s code is part of its join links and cannot change; its name and tier can be edited at any time.',
    'directory.filter': 'Find a site',
    'directory.filter_placeholder': 'Find by name or code',
    'directory.count': '{count} sites',
    'directory.count_filtered': '{shown} of {count} sites match',
    'directory.none': 'The directory has no sites yet.',
    'directory.no_match': 'No site matches the search.',
    'directory.col_code': 'Code',
    'directory.col_name': 'Name',
    'directory.col_tier': 'Tier',
    'directory.tier_central': 'Central',
    'directory.tier_province': 'Province',
    'directory.tier_commune': 'Commune level',
    'directory.kind_commune': 'Commune (xã)',
    'directory.kind_ward': 'Ward (phường)',
    'directory.place_central': 'Central',
    'directory.place_province': 'Province',
    'directory.place_commune': 'Commune (xã)',
    'directory.place_ward': 'Ward (phường)',
    'directory.place_commune_level': 'Commune level, not classified',
    'directory.edit': 'Edit',
    'directory.save': 'Save',
    'directory.discard': 'Discard',
    'directory.delete': 'Delete',
    'directory.name_label': 'New name of site {code}',
    'directory.tier_label': 'Tier of site {code}',
    'directory.confirm_delete': 'Delete the site “{name}” ({code}) from the directory?\n\nPast meetings keep its name; its remaining join links will be revoked.',
    'directory.add_title': 'Add a site',
    'directory.field_name': 'Name (with diacritics)',
    'directory.name_placeholder': 'e.g. Xã Quảng Lâm',
    'directory.field_code': 'Code',
    'directory.field_tier': 'Tier',
    'directory.code_hint': 'Unaccented lowercase letters (a–z), digits and hyphens between words, at most 64 characters, e.g. quang-lam. It is suggested from the name; it is part of the join links, so it cannot change once added.',
    'directory.add': 'Add site',
    'directory.added': 'Added the site “{name}” (code {code}).',
    'directory.saved': 'Saved the site “{name}”.',
    'directory.deleted': 'Deleted the site “{name}”.',
    'directory.in_use_meeting': '“{title}” ({time})',
    'api.invalid_site_code': 'The site code is not valid: use unaccented lowercase letters (a–z), digits and hyphens between words, at most 64 characters. Example: quang-lam.',
    'api.invalid_site_name': 'Enter the site’s name (1 to 120 characters).',
    'api.invalid_tier': 'The tier is not valid.',
    'api.invalid_kind': 'Only sites of the commune level are classified as commune or ward.',
    'api.site_exists': 'A site with this code exists already. Choose another code.',
    'api.site_not_found': 'The site was not found: it may have just been deleted. The directory was reloaded.',
    'api.site_in_use': 'Cannot delete: the site is invited to meetings that are not over. Remove it from those meetings or cancel them first.',
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
