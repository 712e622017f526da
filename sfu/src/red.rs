//! Redundant audio (RFC 2198, "RED") as the SFU forwards it.
//!
//! A browser that negotiated RED for Opus sends each packet with the previous packet's
//! Opus frame inside it as well, so that one lost packet costs nothing: the next one
//! carries its audio. The SFU never decodes audio, but a RED payload names the payload
//! type of each block inside it, and those are the publisher's numbers. So, for each
//! subscriber:
//!
//! - one that negotiated RED gets the payload whole, its inner payload types renumbered
//!   to the subscriber's own ([`retag`]) when they differ;
//! - one that did not gets only the newest block, the primary ([`primary`]), as plain
//!   Opus.
//!
//! Both work on the bytes a hostile publisher chose: they never panic and refuse what
//! does not parse (str0m's `RedDecoder` checks the block chain and lengths).

use str0m::rtp::RedDecoder;

/// The F bit of a block header: set on every block but the last (the primary).
const FOLLOWS: u8 = 0x80;

/// Bytes of a redundant block's header: F and payload type, timestamp offset, length.
const REDUNDANT_HEADER: usize = 4;

/// The primary block of a RED payload: the newest audio, as the codec's own payload.
/// `None` when the payload is not well-formed RED.
pub(crate) fn primary(payload: &[u8]) -> Option<&[u8]> {
    let blocks = RedDecoder::decode(payload).ok()?;
    blocks.last().map(|block| block.payload)
}

/// The RED payload with every block of payload type `from` renamed `to`, for a
/// subscriber that numbers the codec differently. `None` when it is not well-formed.
pub(crate) fn retag(payload: &[u8], from: u8, to: u8) -> Option<Vec<u8>> {
    // Parsing first also proves every header lies within the payload.
    RedDecoder::decode(payload).ok()?;
    let mut out = payload.to_vec();
    let mut at = 0;
    loop {
        let header = out.get_mut(at)?;
        let follows = *header & FOLLOWS != 0;
        if *header & !FOLLOWS == from {
            *header = (*header & FOLLOWS) | (to & !FOLLOWS);
        }
        if !follows {
            return Some(out);
        }
        at += REDUNDANT_HEADER;
    }
}

#[cfg(test)]
mod tests {
    use str0m::rtp::{RedEncoder, RedundantBlock};

    use super::*;

    fn sample() -> Vec<u8> {
        let older = RedundantBlock {
            pt: 111,
            timestamp_offset: 960,
            payload: vec![1, 2, 3],
        };
        RedEncoder::encode(111, &[7, 8, 9, 10], &[older])
    }

    #[test]
    fn the_primary_is_the_newest_block() {
        assert_eq!(primary(&sample()), Some(&[7, 8, 9, 10][..]));
    }

    #[test]
    fn retagging_renames_every_block_and_keeps_the_rest() {
        let payload = sample();
        let retagged = retag(&payload, 111, 109).expect("well-formed");
        let blocks = RedDecoder::decode(&retagged).expect("still RED");
        assert_eq!(blocks.len(), 2);
        assert!(blocks.iter().all(|block| block.pt == 109));
        assert_eq!(blocks[0].payload, &[1, 2, 3]);
        assert_eq!(blocks[0].timestamp_offset, 960);
        assert_eq!(blocks[1].payload, &[7, 8, 9, 10]);
        assert_eq!(retagged.len(), payload.len());
    }

    #[test]
    fn what_is_not_red_is_refused() {
        let payload = sample();
        for cut in 0..payload.len() - 4 {
            // Cut inside the headers or the redundant block: the chain no longer adds up.
            let truncated = &payload[..cut];
            assert_eq!(retag(truncated, 111, 109), None, "cut at {cut}");
            assert_eq!(primary(truncated), None, "cut at {cut}");
        }
        assert_eq!(primary(&[]), None);
        assert_eq!(retag(&[0xff; 3], 111, 109), None);
    }
}
