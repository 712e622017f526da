//! What the SFU asks of browsers' Opus encoders beyond what str0m writes.
//!
//! str0m's Opus comes with in-band FEC and, when asked, redundant audio (RED), but its
//! API sets DTX only on an Opus without RED: its format parameters can be given only
//! to a codec added by hand, and RED only to the Opus of `enable_opus`. We want all
//! three, so the SDP the core hands signaling gets `usedtx=1` added to each Opus
//! `fmtp` line here. str0m itself never reads `usedtx`: it decides nothing on our side,
//! it only asks the browser's encoder to send almost nothing while its room is silent.

/// `sdp` with `usedtx=1` on the format parameters of every Opus payload type.
pub(crate) fn ask_for_dtx(sdp: &str) -> String {
    let opus_types: Vec<&str> = sdp
        .lines()
        .filter_map(|line| {
            let (pt, codec) = line.strip_prefix("a=rtpmap:")?.split_once(' ')?;
            codec
                .to_ascii_lowercase()
                .starts_with("opus/")
                .then_some(pt)
        })
        .collect();
    let mut out = String::with_capacity(sdp.len() + 16 * opus_types.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        let opus_fmtp = body
            .strip_prefix("a=fmtp:")
            .and_then(|rest| rest.split_once(' '))
            .filter(|(pt, _)| opus_types.contains(pt));
        match opus_fmtp {
            Some((_, params)) if !params.split(';').any(|p| p.trim().starts_with("usedtx=")) => {
                out.push_str(body);
                out.push_str(";usedtx=1");
                out.push_str(ending);
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUDIO: &str = "m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\n\
        a=rtpmap:111 opus/48000/2\r\n\
        a=fmtp:111 minptime=10;useinbandfec=1\r\n\
        a=rtpmap:63 red/48000/2\r\n\
        a=fmtp:63 111/111\r\n";

    #[test]
    fn dtx_is_added_to_opus_only() {
        let out = ask_for_dtx(AUDIO);
        assert!(
            out.contains("a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1\r\n"),
            "{out}"
        );
        assert!(out.contains("a=fmtp:63 111/111\r\n"), "{out}");
        assert_eq!(out.len(), AUDIO.len() + ";usedtx=1".len());
    }

    #[test]
    fn a_dtx_already_said_is_left_alone() {
        let sdp = AUDIO.replace("useinbandfec=1", "useinbandfec=1;usedtx=0");
        assert_eq!(ask_for_dtx(&sdp), sdp);
        assert_eq!(ask_for_dtx(""), "");
        // No Opus, nothing to do, whatever the fmtp lines say.
        let video = "a=rtpmap:96 VP8/90000\r\na=fmtp:96 max-fs=12288\r\n";
        assert_eq!(ask_for_dtx(video), video);
    }
}
