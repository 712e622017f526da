//! Batching of outgoing datagrams for segmentation offload (GSO).
//!
//! On these machines a UDP send costs several times the SRTP work of a packet, and the
//! kernel's cost is per send, not per byte: one send of 32 equal-sized datagrams to one
//! address, which the kernel splits late (UDP_SEGMENT), costs about a fifth of 32 sends.
//! An SFU sends in exactly that pattern: a keyframe's packets to every subscriber, every
//! site's thumbnails to the chair. So the shell collects what one batch of received
//! datagrams produced, and this module finds the runs that can go out as one send.
//!
//! Pure planning, no IO: the shell does the sending.

use std::net::SocketAddr;
use std::ops::Range;

/// The most bytes one segmented send may carry: a UDP datagram's payload limit, less a
/// margin for the IPv6 header.
pub const MAX_SEGMENTED_BYTES: usize = 65_000;

/// Orders `datagrams` by destination and returns the runs that can each go out as one
/// segmented send, in order: consecutive datagrams to one destination, all of the first
/// one's size but the last, which may be shorter (what UDP_SEGMENT requires), at most
/// `max_segments` and [`MAX_SEGMENTED_BYTES`] in all. A run of one is a plain send.
///
/// The sort is stable: datagrams to one destination keep their order, so no stream is
/// reordered; only the order between destinations changes, which no one can observe.
pub fn plan<T>(
    datagrams: &mut [T],
    destination: impl Fn(&T) -> SocketAddr,
    len: impl Fn(&T) -> usize,
    max_segments: usize,
) -> Vec<Range<usize>> {
    datagrams.sort_by_key(|d| destination(d));
    let max_segments = max_segments.max(1);
    let mut runs = Vec::new();
    let mut start = 0;
    while start < datagrams.len() {
        let to = destination(&datagrams[start]);
        let size = len(&datagrams[start]);
        let mut end = start + 1;
        let mut bytes = size;
        while end < datagrams.len()
            && end - start < max_segments
            && destination(&datagrams[end]) == to
        {
            let next = len(&datagrams[end]);
            if next > size || bytes + next > MAX_SEGMENTED_BYTES {
                break;
            }
            bytes += next;
            end += 1;
            if next < size {
                break; // A shorter datagram can only end a run.
            }
        }
        runs.push(start..end);
        start = end;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// (destination port, length, tag to follow the datagram)
    type Datagram = (u16, usize, u32);

    fn runs(datagrams: &mut [Datagram], max_segments: usize) -> Vec<Vec<u32>> {
        plan(datagrams, |d| addr(d.0), |d| d.1, max_segments)
            .into_iter()
            .map(|run| datagrams[run].iter().map(|d| d.2).collect())
            .collect()
    }

    #[test]
    fn datagrams_to_one_destination_keep_their_order() {
        let mut datagrams = [
            (2, 1200, 1),
            (1, 1200, 2),
            (2, 1200, 3),
            (1, 100, 4),
            (2, 1200, 5),
        ];
        assert_eq!(
            runs(&mut datagrams, 64),
            vec![vec![2, 4], vec![1, 3, 5]],
            "port 1's run ends with its shorter datagram; port 2's three go together"
        );
    }

    #[test]
    fn a_longer_datagram_starts_a_new_run_and_a_shorter_one_ends_it() {
        let mut datagrams = [
            (1, 100, 1),
            (1, 1200, 2),
            (1, 1200, 3),
            (1, 900, 4),
            (1, 1200, 5),
        ];
        assert_eq!(
            runs(&mut datagrams, 64),
            vec![vec![1], vec![2, 3, 4], vec![5]]
        );
    }

    #[test]
    fn runs_stay_within_the_segment_and_byte_limits() {
        let mut many: Vec<Datagram> = (0..10).map(|i| (1, 1200, i)).collect();
        let sizes: Vec<usize> = runs(&mut many, 4).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![4, 4, 2]);

        let mut big: Vec<Datagram> = (0..60).map(|i| (1, 1200, i)).collect();
        let sizes: Vec<usize> = runs(&mut big, 64).iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            vec![54, 6],
            "54 × 1,200 bytes is the most under 65,000"
        );
    }

    #[test]
    fn without_segmentation_every_datagram_goes_alone() {
        let mut datagrams = [(1, 1200, 1), (1, 1200, 2)];
        assert_eq!(runs(&mut datagrams, 1), vec![vec![1], vec![2]]);
        assert!(runs(&mut [], 64).is_empty());
    }
}
