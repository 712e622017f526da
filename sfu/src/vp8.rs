//! The few bytes of a VP8 RTP payload the SFU reads and rewrites (RFC 7741).
//!
//! Switching a subscriber from one simulcast layer to another splices two independent
//! encodings into one stream. The receiver's decoder orders frames by the VP8 picture
//! id and ties temporal layers together by TL0PICIDX, and each layer counts both on
//! its own, so the SFU rewrites them to run on without a jump. It also needs to know
//! where a keyframe starts, the only place a switch may happen, and the size a
//! keyframe declares, to match a layer to the size a subscriber shows it at.
//!
//! Everything here is read from the network: every length is checked, and a payload
//! that does not parse is reported as `None`, never trusted.

/// What the descriptor at the start of one packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Descriptor {
    /// The picture id, with where it sits and whether it is the 15-bit form.
    pub picture_id: Option<PictureId>,
    /// TL0PICIDX and its offset in the payload.
    pub tl0_pic_idx: Option<(usize, u8)>,
    /// This packet starts a keyframe: the first packet of partition 0 with the
    /// payload header's inverse key-frame bit clear.
    pub keyframe_start: bool,
    /// The width and height a keyframe declares, in pixels.
    pub size: Option<(u16, u16)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PictureId {
    pub value: u16,
    pub offset: usize,
    pub long: bool,
}

impl PictureId {
    /// The modulus of this picture id's form.
    pub fn modulus(&self) -> u32 {
        if self.long { 1 << 15 } else { 1 << 7 }
    }
}

const X_BIT: u8 = 0x80;
const S_BIT: u8 = 0x10;
const PARTITION_MASK: u8 = 0x07;
const I_BIT: u8 = 0x80;
const L_BIT: u8 = 0x40;
const T_BIT: u8 = 0x20;
const K_BIT: u8 = 0x10;
const M_BIT: u8 = 0x80;
/// The start code that follows a keyframe's frame tag.
const START_CODE: [u8; 3] = [0x9d, 0x01, 0x2a];

/// Parses the payload descriptor and, on the first packet of a frame, the payload
/// header. `None` if the payload is too short for what its own bits announce.
pub(crate) fn parse(payload: &[u8]) -> Option<Descriptor> {
    let first = *payload.first()?;
    let mut at = 1;
    let mut picture_id = None;
    let mut tl0_pic_idx = None;
    if first & X_BIT != 0 {
        let extension = *payload.get(at)?;
        at += 1;
        if extension & I_BIT != 0 {
            let high = *payload.get(at)?;
            if high & M_BIT != 0 {
                let low = *payload.get(at + 1)?;
                picture_id = Some(PictureId {
                    value: u16::from(high & 0x7f) << 8 | u16::from(low),
                    offset: at,
                    long: true,
                });
                at += 2;
            } else {
                picture_id = Some(PictureId {
                    value: u16::from(high),
                    offset: at,
                    long: false,
                });
                at += 1;
            }
        }
        if extension & L_BIT != 0 {
            tl0_pic_idx = Some((at, *payload.get(at)?));
            at += 1;
        }
        if extension & (T_BIT | K_BIT) != 0 {
            payload.get(at)?;
            at += 1;
        }
    }
    let starts_frame = first & S_BIT != 0 && first & PARTITION_MASK == 0;
    let header = payload.get(at..).unwrap_or_default();
    // Bit 0 of the payload header is the inverse key-frame flag.
    let keyframe_start = starts_frame && header.first().is_some_and(|b| b & 0x01 == 0);
    let size = if keyframe_start && header.get(3..6) == Some(&START_CODE[..]) {
        match header.get(6..10) {
            Some(&[w0, w1, h0, h1]) => Some((
                u16::from_le_bytes([w0, w1]) & 0x3fff,
                u16::from_le_bytes([h0, h1]) & 0x3fff,
            )),
            _ => None,
        }
    } else {
        None
    };
    Some(Descriptor {
        picture_id,
        tl0_pic_idx,
        keyframe_start,
        size,
    })
}

/// Writes a new picture id and TL0PICIDX into the places `descriptor` found in
/// `payload`, keeping the picture id's form.
pub(crate) fn rewrite(
    payload: &mut [u8],
    descriptor: &Descriptor,
    picture_id: u16,
    tl0_pic_idx: u8,
) {
    if let Some(id) = descriptor.picture_id {
        if id.long {
            if let Some(bytes) = payload.get_mut(id.offset..id.offset + 2) {
                bytes[0] = M_BIT | ((picture_id >> 8) as u8 & 0x7f);
                bytes[1] = picture_id as u8;
            }
        } else if let Some(byte) = payload.get_mut(id.offset) {
            *byte = picture_id as u8 & 0x7f;
        }
    }
    if let Some((offset, _)) = descriptor.tl0_pic_idx
        && let Some(byte) = payload.get_mut(offset)
    {
        *byte = tl0_pic_idx;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keyframe's first packet as Chromium sends it: X, S, a 15-bit picture id,
    /// TL0PICIDX, TID, then the payload header of a 1280x720 keyframe.
    fn keyframe_packet() -> Vec<u8> {
        vec![
            0x90, 0xe0, 0x81, 0x23, 0x07, 0x40, // descriptor: pid 0x0123, tl0 7, tid
            0x50, 0x0b, 0x00, 0x9d, 0x01, 0x2a, // frame tag (key), start code
            0x00, 0x05, 0xd0, 0x02, // width 1280, height 720
            0xaa, 0xbb,
        ]
    }

    #[test]
    fn reads_a_keyframe_start_and_its_size() {
        let descriptor = parse(&keyframe_packet()).unwrap();
        assert!(descriptor.keyframe_start);
        assert_eq!(descriptor.size, Some((1280, 720)));
        let id = descriptor.picture_id.unwrap();
        assert_eq!((id.value, id.offset, id.long), (0x0123, 2, true));
        assert_eq!(descriptor.tl0_pic_idx, Some((4, 7)));
    }

    #[test]
    fn an_interframe_or_a_later_packet_is_no_keyframe_start() {
        let mut inter = keyframe_packet();
        inter[6] |= 0x01;
        let descriptor = parse(&inter).unwrap();
        assert!(!descriptor.keyframe_start);
        assert_eq!(descriptor.size, None);

        let mut continuation = keyframe_packet();
        continuation[0] &= !S_BIT;
        assert!(!parse(&continuation).unwrap().keyframe_start);
    }

    #[test]
    fn rewrites_picture_id_and_tl0_in_place() {
        let mut packet = keyframe_packet();
        let descriptor = parse(&packet).unwrap();
        rewrite(&mut packet, &descriptor, 0x7ffe, 200);
        let again = parse(&packet).unwrap();
        assert_eq!(again.picture_id.unwrap().value, 0x7ffe);
        assert_eq!(again.tl0_pic_idx, Some((4, 200)));
        assert_eq!(&packet[6..], &keyframe_packet()[6..]);
    }

    #[test]
    fn a_short_picture_id_stays_short() {
        let mut packet = vec![0x90, 0x80, 0x05, 0x00];
        let descriptor = parse(&packet).unwrap();
        assert!(!descriptor.picture_id.unwrap().long);
        rewrite(&mut packet, &descriptor, 0x1ff, 0);
        assert_eq!(packet[2], 0x7f);
    }

    #[test]
    fn truncated_descriptors_are_refused_not_read_past() {
        for packet in [
            &[][..],
            &[0x80],
            &[0x80, 0x80],
            &[0x80, 0x80, 0x80],
            &[0x80, 0x40],
            &[0x80, 0x20],
        ] {
            assert_eq!(parse(packet), None, "{packet:?}");
        }
        // A keyframe start cut short after the frame tag has no size, but parses.
        let descriptor = parse(&[0x10, 0x00, 0x00]).unwrap();
        assert!(descriptor.keyframe_start);
        assert_eq!(descriptor.size, None);
    }
}
