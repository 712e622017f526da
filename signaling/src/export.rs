//! Exports for other programs: a meeting as iCalendar (RFC 5545) for calendars, and a
//! roll call as CSV (RFC 4180) for spreadsheets.
//!
//! Pure text rendering: titles, agendas, names and reasons are written escaped, never
//! trusted to be free of the format's special characters.

use crate::model::{Meeting, MeetingStatus, Millis, SiteAttendance, format_time, utc};

/// The meeting as an iCalendar document with one event. `now` is its `DTSTAMP`.
pub fn icalendar(meeting: &Meeting, now: Millis) -> String {
    let chair = meeting
        .invited
        .iter()
        .find(|invitation| invitation.site.code == meeting.chair)
        .map_or(meeting.chair.as_str(), |invitation| {
            invitation.site.name.as_str()
        });
    let status = match meeting.status {
        MeetingStatus::Scheduled => "CONFIRMED",
        MeetingStatus::Cancelled => "CANCELLED",
    };
    let lines = [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Cau//Cau meeting server//VI".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@cau", meeting.id),
        format!("DTSTAMP:{}", ical_time(now)),
        format!("DTSTART:{}", ical_time(meeting.starts_at)),
        format!("DTEND:{}", ical_time(meeting.ends_at)),
        format!("SUMMARY:{}", ical_text(&meeting.title)),
        format!("DESCRIPTION:{}", ical_text(&meeting.agenda)),
        format!("LOCATION:{}", ical_text(chair)),
        format!("STATUS:{status}"),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ];
    let mut out = String::new();
    for line in &lines {
        fold(line, &mut out);
    }
    out
}

/// The roll call as CSV, one site a line, with a header. Starts with a UTF-8 byte
/// order mark, without which spreadsheet programs on Windows misread the diacritics.
pub fn attendance_csv(roll: &[SiteAttendance]) -> String {
    let mut out = String::from("\u{feff}site_code,site_name,status,joined_at,left_at,reason\r\n");
    for line in roll {
        let time = |t: Option<Millis>| t.map(format_time).unwrap_or_default();
        let fields = [
            line.site.code.as_str().to_owned(),
            line.site.name.as_str().to_owned(),
            line.record.status.as_str().to_owned(),
            time(line.record.joined_at),
            time(line.record.left_at),
            line.record.reason.clone().unwrap_or_default(),
        ];
        let escaped: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&escaped.join(","));
        out.push_str("\r\n");
    }
    out
}

/// `20260701T010000Z`: a UTC DATE-TIME.
fn ical_time(millis: Millis) -> String {
    let t = utc(millis);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Escapes a TEXT value (RFC 5545 section 3.3.11): backslash, semicolon and comma get a
/// backslash, line breaks become `\n`, and other control characters, which TEXT may
/// not hold, are dropped.
fn ical_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends a content line, folded (section 3.1) so that no line exceeds 75 octets, never
/// inside a UTF-8 sequence, ended with CRLF.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            // The leading space of a continuation line counts toward its 75 octets.
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

/// One CSV field: quoted when it holds a comma, quote or line break, with quotes
/// doubled. A field a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
/// `@`) gets a leading apostrophe, so an absence reason cannot become a formula.
fn csv_field(text: &str) -> String {
    let defused = match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        AttendanceRecord, AttendanceStatus, FloorMode, Invitation, MeetingId, Role, Site, SiteCode,
        SiteName, Tier,
    };

    fn site(code: &str, name: &str) -> Site {
        Site {
            code: SiteCode::parse(code).unwrap(),
            name: SiteName::parse(name).unwrap(),
            tier: Tier::Province,
            kind: None,
        }
    }

    #[test]
    fn ical_text_escapes_what_rfc_5545_says() {
        let check = |input: &str, expected: &str| assert_eq!(ical_text(input), expected);
        check("Giao ban", "Giao ban");
        check("a, b; c\\d", "a\\, b\\; c\\\\d");
        check(
            "line 1\r\nline 2\nline 3\rend",
            "line 1\\nline 2\\nline 3\\nend",
        );
        check("bell\u{7}", "bell");
        check("<b>Họp</b>", "<b>Họp</b>");
    }

    #[test]
    fn long_lines_fold_between_characters() {
        let mut out = String::new();
        fold(&format!("SUMMARY:{}", "Ủy ban ".repeat(30)), &mut out);
        for line in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{line:?} has {} octets", line.len());
        }
        let unfolded = out.replace("\r\n ", "");
        assert_eq!(unfolded, format!("SUMMARY:{}\r\n", "Ủy ban ".repeat(30)));
    }

    #[test]
    fn meeting_exports_as_one_event() {
        let meeting = Meeting {
            id: MeetingId::parse("0123456789abcdef").unwrap(),
            title: "Họp, khẩn; gấp".into(),
            agenda: "1. Báo cáo\n2. Thảo luận".into(),
            starts_at: 1_782_867_600_000,
            ends_at: 1_782_874_800_000,
            chair: SiteCode::parse("cao-bang").unwrap(),
            floor_mode: FloorMode::Chair,
            status: MeetingStatus::Scheduled,
            invited: vec![Invitation {
                site: site("cao-bang", "UBND tỉnh Cao Bằng"),
                role: Role::Chair,
            }],
        };
        let text = icalendar(&meeting, 0);
        assert!(text.contains("\r\nUID:0123456789abcdef@cau\r\n"), "{text}");
        assert!(text.contains("\r\nDTSTART:20260701T010000Z\r\n"), "{text}");
        assert!(text.contains("\r\nDTEND:20260701T030000Z\r\n"), "{text}");
        assert!(
            text.contains("\r\nSUMMARY:Họp\\, khẩn\\; gấp\r\n"),
            "{text}"
        );
        assert!(
            text.contains("\r\nDESCRIPTION:1. Báo cáo\\n2. Thảo luận\r\n"),
            "{text}"
        );
        assert!(
            text.contains("\r\nLOCATION:UBND tỉnh Cao Bằng\r\n"),
            "{text}"
        );
        assert!(text.starts_with("BEGIN:VCALENDAR\r\n") && text.ends_with("END:VCALENDAR\r\n"));
    }

    #[test]
    fn csv_quotes_and_defuses() {
        let check = |input: &str, expected: &str| assert_eq!(csv_field(input), expected);
        check("Xã Quảng Lâm", "Xã Quảng Lâm");
        check("mất điện, mưa lớn", "\"mất điện, mưa lớn\"");
        check("say \"hi\"", "\"say \"\"hi\"\"\"");
        check("two\nlines", "\"two\nlines\"");
        check("=1+1", "'=1+1");
        check("-", "'-");
        let roll = [SiteAttendance {
            site: site("cao-bang", "UBND tỉnh Cao Bằng"),
            record: AttendanceRecord {
                status: AttendanceStatus::Absent,
                joined_at: None,
                left_at: None,
                reason: Some("mất điện, mưa lớn".into()),
            },
        }];
        assert_eq!(
            attendance_csv(&roll),
            "\u{feff}site_code,site_name,status,joined_at,left_at,reason\r\n\
             cao-bang,UBND tỉnh Cao Bằng,absent,,,\"mất điện, mưa lớn\"\r\n"
        );
    }
}
