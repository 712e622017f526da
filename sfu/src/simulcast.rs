//! Choosing and switching simulcast layers, as pure logic.
//!
//! A browser publishes its camera in up to three layers (simulcast), each an
//! independent encoding on its own RTP stream. Each subscriber receives one of them per
//! track, on one outgoing stream:
//! - [`allocate`] picks the layer of each of a subscriber's video tracks from the
//!   bandwidth str0m estimates towards that subscriber, the size at which it shows each
//!   video, and the order of importance (the larger a video is shown, the more it
//!   matters: the chair and the floor holder are shown large). Audio is served first,
//!   and a track that cannot have even its lowest layer is paused for that subscriber
//!   rather than starving the others.
//! - [`LayerSwitch`] carries out the choice for one outgoing track: it changes layer
//!   only at a keyframe of the new layer, and rewrites sequence numbers, timestamps and
//!   the VP8 picture ids so that the subscriber sees one continuous stream.

use std::time::{Duration, Instant};

use crate::vp8;

/// What one layer of a published track is known to carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayerInfo {
    /// Bits per second, measured, or a nominal figure while not measured.
    pub bitrate: u64,
    /// The picture height its last keyframe declared.
    pub height: Option<u16>,
}

/// One of a subscriber's video tracks, as the allocator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrackDemand {
    /// The height, in CSS pixels, at which the subscriber shows this video: `None`
    /// when it has not said (assume large), `Some(0)` when it is not shown at all.
    pub shown_height: Option<u32>,
    /// The source's layers, lowest first.
    pub layers: Vec<LayerInfo>,
    /// The layer the subscriber receives now, if any.
    pub current: Option<usize>,
    /// Lately fell on a losing line: gets nothing while the line is still losing, at
    /// most its lowest layer after, and asks the estimator for nothing more, until the
    /// estimate has caught up with the line (see [`allocate`]).
    pub held: bool,
    /// A shared screen: served before every camera, since what is presented is what
    /// the meeting is looking at.
    pub screen: bool,
}

/// What [`allocate`] decided for one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Allocation {
    /// The layer of each track (same order as the demands), `None` for paused.
    pub layers: Vec<Option<usize>>,
    /// Some shown track got no layer for lack of bandwidth: the subscriber is on
    /// audio only, or partly so.
    pub starved: bool,
    /// Bits per second the chosen layers carry.
    pub allocated: u64,
    /// Bits per second the subscriber would receive with every shown track at the
    /// layer its size calls for.
    pub desired: u64,
    /// Bits per second of the next step up, if some track is below what it wants:
    /// what the bandwidth estimator should probe for.
    pub next_step: Option<u64>,
    /// Which tracks (same order as the demands) fell while the line was losing: they
    /// are paused, the core stops their layer at once, and holds them at most at their
    /// lowest a while.
    pub fell: Vec<bool>,
}

/// Up to this fraction of the estimate is given to media, leaving room for RTCP,
/// retransmissions and bursts: the estimate itself already errs low.
const BUDGET_SHARE: f64 = 0.9;
/// A layer a subscriber already receives is kept while the budget holds this share of
/// its rate: a layer's rate and the estimate both wander (a keyframe is a burst), and a
/// picture that changes size at every wobble is worse than one that does not. A track
/// that cannot keep its layer even so steps down, and while the line is losing it
/// falls: it is paused (see [`allocate`]).
const KEEP_SHARE: f64 = 0.75;

/// The layer a track's shown size calls for: the smallest whose pictures are at least
/// as tall as the video is shown, else the top one.
fn wanted_layer(demand: &TrackDemand) -> Option<usize> {
    let top = demand.layers.len().checked_sub(1)?;
    match demand.shown_height {
        Some(0) => None,
        None => Some(top),
        Some(shown) => Some(
            demand
                .layers
                .iter()
                .position(|layer| layer.height.is_some_and(|h| u32::from(h) >= shown))
                .unwrap_or(top),
        ),
    }
}

/// Picks a layer for each of one subscriber's video tracks. `estimate` is the
/// bandwidth towards the subscriber in bits per second, `None` when unknown (no
/// limit but the shown sizes); `audio` is what its audio tracks take first.
/// `losing`: the line towards the subscriber is losing packets now; a layer it
/// receives is then kept only while it fits whole, since the estimate lags behind a
/// line that just filled up.
pub(crate) fn allocate(
    estimate: Option<u64>,
    audio: u64,
    demands: &[TrackDemand],
    losing: bool,
) -> Allocation {
    let wanted: Vec<Option<usize>> = demands.iter().map(wanted_layer).collect();
    let rate = |track: usize, layer: usize| demands[track].layers[layer].bitrate;
    // A held track asks for its lowest layer only: probing a line that just overflowed
    // for more would only fill it again.
    let desired = wanted
        .iter()
        .enumerate()
        .filter_map(|(track, layer)| {
            let layer = if demands[track].held {
                layer.map(|_| 0)
            } else {
                *layer
            };
            layer.map(|layer| rate(track, layer))
        })
        .sum();
    let mut budget = match estimate {
        Some(estimate) => ((estimate as f64 * BUDGET_SHARE) as u64).saturating_sub(audio),
        None => u64::MAX,
    };
    // The most prominent first: a shared screen, then shown larger, then unsized
    // (assumed large).
    let mut order: Vec<usize> = (0..demands.len()).collect();
    order.sort_by_key(|&track| {
        let demand = &demands[track];
        std::cmp::Reverse((demand.screen, demand.shown_height.unwrap_or(u32::MAX)))
    });
    let mut layers: Vec<Option<usize>> = vec![None; demands.len()];
    let mut fell = vec![false; demands.len()];
    let mut starved = false;
    // What taking `step` more needs of the budget: less when the layer is one the track
    // may keep (see `keeps` below).
    let needs = |discounted: bool, step: u64| {
        if discounted {
            (step as f64 * KEEP_SHARE) as u64
        } else {
            step
        }
    };
    // First every shown track gets its lowest layer, most prominent first...
    for &track in &order {
        if wanted[track].is_none() {
            continue;
        }
        // One that fell stays paused while the line is still losing: its queue is
        // still draining, and the lowest layer's keyframe would fill it again, ahead
        // of audio.
        if demands[track].held && losing {
            starved = true;
            continue;
        }
        let receives = !losing && demands[track].current.is_some();
        if needs(receives, rate(track, 0)) <= budget {
            budget = budget.saturating_sub(rate(track, 0));
            layers[track] = Some(0);
        } else {
            starved = true;
            // Paused while the line is losing: a fall too, held like one, or the
            // video comes back on the lagging estimate as soon as the line has
            // drained, and fills it again. Paused otherwise (the budget went to
            // more prominent videos, or the estimate dipped on a line that loses
            // nothing) it may come back as soon as there is room.
            fell[track] = losing && demands[track].current.is_some();
        }
    }
    // ...then the most prominent are raised as far as their size calls for and the
    // budget allows, one after another.
    let mut next_step = None;
    for &track in &order {
        let (Some(mut layer), Some(want)) = (layers[track], wanted[track]) else {
            continue;
        };
        if demands[track].held {
            continue;
        }
        // A track keeps the layer it receives (or as much of it as its size still
        // calls for) while the budget holds the discounted share of every step up to
        // it.
        let keep = demands[track].current.map(|current| current.min(want));
        let keeps = keep.is_some_and(|keep| {
            let mut left = budget;
            (layer..keep).all(|from| {
                let step = rate(track, from + 1).saturating_sub(rate(track, from));
                let fits = needs(!losing, step) <= left;
                left = left.saturating_sub(step);
                fits
            })
        });
        // One that cannot while the line is losing is stepping down because the line
        // filled up, and falls: it is paused until the line has drained (its queue
        // drops audio as readily as video meanwhile), then comes back at its lowest
        // layer. The estimate lags behind such a line: a layer between would often not
        // fit either, and its keyframe, the largest of frames, would crawl through a
        // full line while the picture stands still. The core holds the track at most
        // at its lowest until the estimate has caught up.
        // On a line that loses nothing the estimate is all there is to go by, and it
        // dips for reasons of its own (it is only as high as what was sent lately,
        // while a publisher's encoder is still ramping up its rate): the track steps
        // down only as far as the estimate says, below.
        if losing && keep.is_some_and(|keep| keep > layer) && !keeps {
            fell[track] = true;
            starved = true;
            budget = budget.saturating_add(rate(track, 0));
            layers[track] = None;
            continue;
        }
        while layer < want {
            let step = rate(track, layer + 1).saturating_sub(rate(track, layer));
            let discounted = !losing && keep.is_some_and(|keep| layer < keep);
            if needs(discounted, step) > budget {
                next_step.get_or_insert(step);
                break;
            }
            budget = budget.saturating_sub(step);
            layer += 1;
        }
        layers[track] = Some(layer);
    }
    if starved && next_step.is_none() {
        next_step = order
            .iter()
            .find(|&&track| wanted[track].is_some() && layers[track].is_none())
            .map(|&track| rate(track, 0));
    }
    let allocated = layers
        .iter()
        .enumerate()
        .filter_map(|(track, layer)| layer.map(|layer| rate(track, layer)))
        .sum();
    Allocation {
        layers,
        starved,
        allocated,
        desired,
        next_step,
        fell,
    }
}

/// A packet of the source, as [`LayerSwitch`] needs to see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourcePacket<'a> {
    pub layer: usize,
    /// The source stream's extended sequence number.
    pub seq: u64,
    pub timestamp: u32,
    pub vp8: Option<&'a vp8::Descriptor>,
}

/// How one packet goes out, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rewritten {
    pub seq: u64,
    pub timestamp: u32,
    /// The picture id and TL0PICIDX to write, when the packet carries them.
    pub picture_id: Option<u16>,
    pub tl0_pic_idx: Option<u8>,
}

/// The 90 kHz clock of video RTP timestamps.
const VIDEO_CLOCK_HZ: u64 = 90_000;

/// One outgoing video track's layer and the rewriting that splices layers together.
#[derive(Debug, Default)]
pub(crate) struct LayerSwitch {
    /// The layer now forwarded, set at the keyframe that started it.
    current: Option<usize>,
    /// The layer the allocator wants; `None` to forward nothing.
    target: Option<usize>,
    /// Layers below the target (a bit per source layer) whose keyframe may start the
    /// picture while nothing is forwarded yet, see [`LayerSwitch::set_stand_ins`].
    stand_ins: u32,
    /// Source sequence numbers below this are from before the current layer's start.
    first_seq: u64,
    /// Added (wrapping) to the current layer's fields.
    seq_delta: u64,
    timestamp_delta: u32,
    picture_id_delta: u16,
    tl0_delta: u8,
    last: Option<Sent>,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u64,
    timestamp: u32,
    at: Instant,
    picture_id: Option<u16>,
    tl0_pic_idx: Option<u8>,
}

impl LayerSwitch {
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    pub fn target(&self) -> Option<usize> {
        self.target
    }

    /// Sets the layer to move to. Returns whether a keyframe of it is needed: the
    /// switch happens only at one.
    pub fn set_target(&mut self, target: Option<usize>) -> bool {
        self.target = target;
        if target.is_none() {
            // Pausing needs no keyframe: stop at once.
            self.current = None;
        }
        target.is_some() && target != self.current
    }

    /// The source layers, below the target, that may carry the picture until the
    /// target's keyframe comes, when nothing is forwarded yet. A publisher that just
    /// (re)connected starts with its lowest layer and adds the others as its uplink
    /// estimate grows, which takes seconds: a subscriber waiting for the top layer's
    /// keyframe would see nothing meanwhile, where a small picture now and a sharp one
    /// later is what a meeting wants. Once a layer is forwarded this plays no part:
    /// switching between layers stays at the target's keyframe.
    pub fn set_stand_ins(&mut self, layers: &[usize]) {
        self.stand_ins = layers
            .iter()
            .filter(|&&layer| layer < 32)
            .fold(0, |bits, &layer| bits | 1 << layer);
    }

    /// The layers that may start the picture now besides the target: the stand-ins,
    /// while nothing is forwarded; none once something is.
    pub fn stand_ins(&self) -> impl Iterator<Item = usize> + '_ {
        let active = self.current.is_none() && self.target.is_some();
        (0..32).filter(move |layer| active && self.stand_ins & (1 << layer) != 0)
    }

    /// Whether the switch still waits for a keyframe of the target layer.
    pub fn awaits_keyframe(&self) -> bool {
        self.target.is_some() && self.target != self.current
    }

    /// Decides whether and how one source packet goes out.
    pub fn packet(&mut self, packet: SourcePacket<'_>, now: Instant) -> Option<Rewritten> {
        let stand_in = self.current.is_none()
            && self.target.is_some()
            && packet.layer < 32
            && self.stand_ins & (1 << packet.layer) != 0;
        if (self.target == Some(packet.layer) || stand_in) && self.current != Some(packet.layer) {
            if !packet.vp8.is_some_and(|d| d.keyframe_start) {
                return None;
            }
            self.start_layer(packet, now);
        }
        if self.current != Some(packet.layer) || packet.seq < self.first_seq {
            return None;
        }
        let vp8 = packet.vp8;
        let out = Rewritten {
            seq: packet.seq.wrapping_add(self.seq_delta),
            timestamp: packet.timestamp.wrapping_add(self.timestamp_delta),
            picture_id: vp8.and_then(|d| d.picture_id).map(|id| {
                (u32::from(id.value.wrapping_add(self.picture_id_delta)) % id.modulus()) as u16
            }),
            tl0_pic_idx: vp8
                .and_then(|d| d.tl0_pic_idx)
                .map(|(_, tl0)| tl0.wrapping_add(self.tl0_delta)),
        };
        let last = self.last.get_or_insert(Sent {
            seq: out.seq,
            timestamp: out.timestamp,
            at: now,
            picture_id: out.picture_id,
            tl0_pic_idx: out.tl0_pic_idx,
        });
        if out.seq >= last.seq {
            *last = Sent {
                seq: out.seq,
                timestamp: out.timestamp,
                at: now,
                picture_id: out.picture_id.or(last.picture_id),
                tl0_pic_idx: out.tl0_pic_idx.or(last.tl0_pic_idx),
            };
        }
        Some(out)
    }

    /// Starts forwarding `packet`'s layer from this keyframe on, continuing the
    /// numbering of whatever went out before.
    fn start_layer(&mut self, packet: SourcePacket<'_>, now: Instant) {
        self.current = Some(packet.layer);
        self.first_seq = packet.seq;
        let Some(last) = self.last else {
            // The first layer ever: keep the source's numbers, but start the sequence
            // in SRTP rollover period zero, as a new stream must.
            self.seq_delta = (packet.seq & 0xffff).wrapping_sub(packet.seq);
            self.timestamp_delta = 0;
            self.picture_id_delta = 0;
            self.tl0_delta = 0;
            return;
        };
        self.seq_delta = (last.seq + 1).wrapping_sub(packet.seq);
        // Advance the clock by the time that really passed, at least one tick, so
        // that the receiver's jitter buffer sees time move on.
        let elapsed = now
            .saturating_duration_since(last.at)
            .min(Duration::from_secs(10));
        let ticks = (elapsed.as_micros() as u64 * VIDEO_CLOCK_HZ / 1_000_000).max(1) as u32;
        self.timestamp_delta = last
            .timestamp
            .wrapping_add(ticks)
            .wrapping_sub(packet.timestamp);
        if let Some(id) = packet.vp8.and_then(|d| d.picture_id) {
            self.picture_id_delta = match last.picture_id {
                Some(previous) => previous.wrapping_add(1).wrapping_sub(id.value),
                None => 0,
            };
        }
        if let Some((_, tl0)) = packet.vp8.and_then(|d| d.tl0_pic_idx) {
            self.tl0_delta = match last.tl0_pic_idx {
                Some(previous) => previous.wrapping_add(1).wrapping_sub(tl0),
                None => 0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(heights: &[(u64, u16)]) -> Vec<LayerInfo> {
        heights
            .iter()
            .map(|&(kbps, height)| LayerInfo {
                bitrate: kbps * 1000,
                height: Some(height),
            })
            .collect()
    }

    fn camera() -> Vec<LayerInfo> {
        layers(&[(150, 180), (500, 360), (1500, 720)])
    }

    /// An estimate that leaves `video` bits per second for video beside 50 kbit/s of
    /// audio (a bit per second more, so that the share never rounds below it).
    fn leaving_for_video(video: u64) -> u64 {
        ((video + 50_000) as f64 / BUDGET_SHARE) as u64 + 1
    }

    /// An unsized camera video whose subscriber receives `layer` now.
    fn receiving(layer: usize) -> TrackDemand {
        TrackDemand {
            current: Some(layer),
            ..shown(None)
        }
    }

    fn shown(height: Option<u32>) -> TrackDemand {
        TrackDemand {
            shown_height: height,
            layers: camera(),
            current: None,
            held: false,
            screen: false,
        }
    }

    #[test]
    fn the_shown_size_picks_the_layer_when_bandwidth_is_plenty() {
        let demands = [
            shown(Some(700)),
            shown(Some(300)),
            shown(Some(120)),
            shown(Some(0)),
        ];
        let allocation = allocate(Some(100_000_000), 100_000, &demands, false);
        assert_eq!(allocation.layers, vec![Some(2), Some(1), Some(0), None]);
        assert!(!allocation.starved);
        assert_eq!(allocation.desired, 2_150_000);
        assert_eq!(allocation.next_step, None);
    }

    #[test]
    fn unknown_bandwidth_and_size_mean_the_top_layer() {
        let allocation = allocate(None, 0, &[shown(None)], false);
        assert_eq!(allocation.layers, vec![Some(2)]);
    }

    #[test]
    fn the_most_prominent_video_is_raised_first() {
        // 1.1 Mbit/s for video after audio: the large video gets the middle layer, the
        // thumbnail its lowest.
        let demands = [shown(Some(100)), shown(Some(700))];
        let estimate = leaving_for_video(1_100_000);
        let allocation = allocate(Some(estimate), 50_000, &demands, false);
        assert_eq!(allocation.layers, vec![Some(0), Some(1)]);
        assert_eq!(allocation.next_step, Some(1_000_000));
        assert!(!allocation.starved);
    }

    #[test]
    fn audio_comes_first_and_video_that_does_not_fit_is_paused() {
        // 300 kbit/s: 50 for audio, 205 left for video: one lowest layer fits.
        let demands = [shown(Some(100)), shown(Some(700))];
        let allocation = allocate(Some(300_000), 50_000, &demands, false);
        assert_eq!(allocation.layers, vec![None, Some(0)]);
        assert!(allocation.starved);
        assert_eq!(allocation.next_step, Some(350_000));
        // Not even one lowest layer: audio only.
        let allocation = allocate(Some(150_000), 50_000, &demands, false);
        assert_eq!(allocation.layers, vec![None, None]);
        assert!(allocation.starved);
        assert_eq!(allocation.next_step, Some(150_000));
    }

    #[test]
    fn a_single_layer_track_is_all_or_nothing() {
        let demand = TrackDemand {
            shown_height: Some(360),
            layers: layers(&[(500, 360)]),
            current: None,
            held: false,
            screen: false,
        };
        assert_eq!(
            allocate(Some(400_000), 0, std::slice::from_ref(&demand), false).layers,
            vec![None]
        );
        assert_eq!(
            allocate(Some(1_000_000), 0, &[demand], false).layers,
            vec![Some(0)]
        );
    }

    #[test]
    fn a_shared_screen_is_served_before_any_camera() {
        let screen = TrackDemand {
            shown_height: Some(100),
            layers: layers(&[(300, 720)]),
            current: None,
            held: false,
            screen: true,
        };
        // Room for the screen or the large camera's lowest layer, not both.
        let estimate = leaving_for_video(300_000);
        let allocation = allocate(Some(estimate), 50_000, &[shown(Some(700)), screen], false);
        assert_eq!(allocation.layers, vec![None, Some(0)]);
        assert!(allocation.starved);
    }

    #[test]
    fn a_layer_received_is_kept_through_a_dip() {
        let receiving_top = receiving(2);
        // 1.3 Mbit/s of budget is short of the top layer's 1.5... but within the
        // share a layer already received may keep.
        let dip = leaving_for_video(1_300_000);
        let allocation = allocate(
            Some(dip),
            50_000,
            std::slice::from_ref(&receiving_top),
            false,
        );
        assert_eq!(allocation.layers, vec![Some(2)]);
        assert_eq!(allocation.fell, vec![false]);
        // A newcomer at the same estimate does not get it.
        assert_eq!(
            allocate(Some(dip), 50_000, &[shown(None)], false).layers,
            vec![Some(1)]
        );
        // Shown smaller, it steps down to the size: no fall.
        let smaller = TrackDemand {
            shown_height: Some(300),
            ..receiving_top
        };
        let allocation = allocate(Some(dip), 50_000, &[smaller], false);
        assert_eq!(allocation.layers, vec![Some(1)]);
        assert_eq!(allocation.fell, vec![false]);
    }

    #[test]
    fn a_layer_that_cannot_be_kept_while_the_line_is_losing_falls() {
        // 450 kbit/s for video: the lowest layer (150) and the step to the middle one
        // (350) fit only at the share a layer received may keep.
        let estimate = leaving_for_video(450_000);
        // On a line that loses nothing, a track that receives the middle layer keeps it
        // through this dip...
        let allocation = allocate(Some(estimate), 50_000, &[receiving(1)], false);
        assert_eq!(allocation.layers, vec![Some(1)]);
        assert_eq!(allocation.fell, vec![false]);
        // ...but not while the line is losing packets: it is then kept only whole, and
        // falls: paused while the line drains, and the subscriber told so.
        let allocation = allocate(Some(estimate), 50_000, &[receiving(1)], true);
        assert_eq!(allocation.layers, vec![None]);
        assert_eq!(allocation.fell, vec![true]);
        assert!(allocation.starved);
        assert_eq!(allocation.allocated, 0);
        // The top falls too, even where the middle layer would fit whole: the
        // estimate lags behind a line that filled up, and has likely not yet come down
        // as far as the line did.
        let fall = leaving_for_video(800_000);
        let allocation = allocate(Some(fall), 50_000, &[receiving(2)], true);
        assert_eq!(allocation.layers, vec![None]);
        assert_eq!(allocation.fell, vec![true]);
        // What a fallen video gave up is there for the others.
        let allocation = allocate(Some(fall), 50_000, &[receiving(2), shown(None)], true);
        assert_eq!(allocation.layers, vec![None, Some(1)]);
        assert_eq!(allocation.fell, vec![true, false]);
        // Already at the lowest, there is nothing to fall from.
        let allocation = allocate(Some(fall), 50_000, &[receiving(0)], true);
        assert_eq!(allocation.layers, vec![Some(1)]);
        assert_eq!(allocation.fell, vec![false]);
    }

    #[test]
    fn on_a_line_that_loses_nothing_a_layer_steps_down_only_as_far_as_the_estimate_says() {
        let receiving_top = receiving(2);
        // 450 kbit/s for video: the top cannot be kept, the middle layer can (at the
        // share a layer below the one received may keep). The estimate is all there is
        // to go by, and dips on a clean line too (it is only as high as what was sent
        // lately): no fall, no hold.
        let estimate = leaving_for_video(450_000);
        let allocation = allocate(
            Some(estimate),
            50_000,
            std::slice::from_ref(&receiving_top),
            false,
        );
        assert_eq!(allocation.layers, vec![Some(1)]);
        assert_eq!(allocation.fell, vec![false]);
        assert_eq!(allocation.next_step, Some(1_000_000));
        // Further down, to the lowest layer, and still no fall.
        let low = leaving_for_video(250_000);
        let allocation = allocate(Some(low), 50_000, &[receiving_top], false);
        assert_eq!(allocation.layers, vec![Some(0)]);
        assert_eq!(allocation.fell, vec![false]);
    }

    #[test]
    fn a_video_paused_counts_as_a_fall_only_while_the_line_is_losing() {
        let at_lowest = receiving(0);
        // 100 kbit/s for video: not even the lowest layer (150) fits.
        let estimate = leaving_for_video(100_000);
        let allocation = allocate(
            Some(estimate),
            50_000,
            std::slice::from_ref(&at_lowest),
            true,
        );
        assert_eq!(allocation.layers, vec![None]);
        assert_eq!(allocation.fell, vec![true]);
        // A dip of the estimate on a line that loses nothing, or a budget taken by
        // more prominent videos: paused, free to come back as soon as there is room.
        let allocation = allocate(Some(estimate), 50_000, &[at_lowest], false);
        assert_eq!(allocation.layers, vec![None]);
        assert_eq!(allocation.fell, vec![false]);
    }

    #[test]
    fn a_held_track_gets_nothing_while_the_line_is_losing() {
        let held = TrackDemand {
            current: None,
            held: true,
            ..shown(None)
        };
        let allocation = allocate(Some(100_000_000), 50_000, std::slice::from_ref(&held), true);
        assert_eq!(allocation.layers, vec![None]);
        assert!(allocation.starved);
        assert_eq!(allocation.fell, vec![false]);
        // Once it stops losing, the lowest layer.
        let allocation = allocate(Some(100_000_000), 50_000, &[held], false);
        assert_eq!(allocation.layers, vec![Some(0)]);
        assert!(!allocation.starved);
    }

    #[test]
    fn a_held_track_stays_at_its_lowest_and_asks_for_nothing_more() {
        let held = TrackDemand {
            current: Some(0),
            held: true,
            ..shown(None)
        };
        let allocation = allocate(Some(100_000_000), 50_000, &[held, shown(None)], false);
        assert_eq!(allocation.layers, vec![Some(0), Some(2)]);
        assert_eq!(allocation.desired, 150_000 + 1_500_000);
        assert_eq!(allocation.next_step, None);
        assert_eq!(allocation.fell, vec![false, false]);
    }

    fn keyframe() -> vp8::Descriptor {
        vp8::Descriptor {
            picture_id: Some(vp8::PictureId {
                value: 0,
                offset: 2,
                long: true,
            }),
            tl0_pic_idx: None,
            keyframe_start: true,
            size: None,
        }
    }

    fn with_picture_id(mut descriptor: vp8::Descriptor, id: u16) -> vp8::Descriptor {
        if let Some(picture_id) = descriptor.picture_id.as_mut() {
            picture_id.value = id;
        }
        descriptor
    }

    fn source(layer: usize, seq: u64, timestamp: u32, d: &vp8::Descriptor) -> SourcePacket<'_> {
        SourcePacket {
            layer,
            seq,
            timestamp,
            vp8: Some(d),
        }
    }

    #[test]
    fn a_switch_waits_for_a_keyframe_and_numbering_runs_on() {
        let start = Instant::now();
        let mut switch = LayerSwitch::default();
        assert!(switch.set_target(Some(0)));
        let inter = vp8::Descriptor {
            keyframe_start: false,
            ..keyframe()
        };
        // Nothing before the first keyframe.
        assert_eq!(switch.packet(source(0, 70_000, 1000, &inter), start), None);
        let key = with_picture_id(keyframe(), 500);
        let first = switch.packet(source(0, 70_001, 4000, &key), start).unwrap();
        assert_eq!(first.seq, 70_001 & 0xffff);
        assert_eq!(first.timestamp, 4000);
        assert_eq!(first.picture_id, Some(500));
        let next = with_picture_id(inter, 501);
        let t1 = start + Duration::from_millis(40);
        assert_eq!(
            switch
                .packet(source(0, 70_002, 7600, &next), t1)
                .unwrap()
                .seq,
            4_466
        );

        // Up to layer 1: layer 0 goes on until layer 1's keyframe.
        assert!(switch.set_target(Some(1)));
        assert_eq!(
            switch.packet(source(1, 9, 123_456, &with_picture_id(inter, 77)), t1),
            None
        );
        assert!(switch.packet(source(0, 70_003, 7600, &next), t1).is_some());
        let t2 = t1 + Duration::from_millis(10);
        let switched = switch
            .packet(source(1, 10, 123_456, &with_picture_id(keyframe(), 78)), t2)
            .unwrap();
        assert_eq!(switched.seq, 4_468);
        assert_eq!(switched.timestamp, 7600 + 900);
        assert_eq!(switched.picture_id, Some(502));
        assert_eq!(switch.current(), Some(1));
        // The old layer is no longer forwarded, nor the new one's older packets.
        assert_eq!(switch.packet(source(0, 70_004, 9000, &next), t2), None);
        assert_eq!(switch.packet(source(1, 9, 123_000, &inter), t2), None);
        let after = switch
            .packet(source(1, 11, 126_456, &with_picture_id(inter, 79)), t2)
            .unwrap();
        assert_eq!(
            (after.seq, after.timestamp, after.picture_id),
            (4_469, 11_500, Some(503))
        );
    }

    #[test]
    fn pausing_stops_at_once_and_resuming_waits_for_a_keyframe() {
        let now = Instant::now();
        let mut switch = LayerSwitch::default();
        switch.set_target(Some(0));
        let key = keyframe();
        let packet = |seq| SourcePacket {
            layer: 0,
            seq,
            timestamp: 0,
            vp8: Some(&key),
        };
        assert!(switch.packet(packet(1), now).is_some());
        assert!(!switch.set_target(None));
        assert_eq!(switch.packet(packet(2), now), None);
        assert!(switch.set_target(Some(0)));
        assert!(switch.awaits_keyframe());
        assert_eq!(switch.packet(packet(3), now).unwrap().seq, 2);
    }

    #[test]
    fn a_lower_layer_shows_a_picture_until_the_wanted_one_comes() {
        let now = Instant::now();
        let inter = vp8::Descriptor {
            keyframe_start: false,
            ..keyframe()
        };
        // A publisher that just came back sends only its lowest layer (0); the
        // subscriber wants the top one (2).
        let mut switch = LayerSwitch::default();
        switch.set_target(Some(2));
        switch.set_stand_ins(&[0, 1]);
        assert_eq!(switch.stand_ins().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(switch.packet(source(0, 100, 0, &inter), now), None);
        assert!(switch.packet(source(0, 101, 0, &keyframe()), now).is_some());
        assert_eq!(switch.current(), Some(0));
        assert!(switch.awaits_keyframe(), "the top layer is still wanted");
        assert_eq!(
            switch.stand_ins().count(),
            0,
            "a picture shows: no more stand-ins"
        );
        assert!(switch.packet(source(0, 102, 0, &inter), now).is_some());
        // Once a picture shows, another stand-in's keyframe changes nothing...
        assert_eq!(switch.packet(source(1, 7, 0, &keyframe()), now), None);
        assert_eq!(switch.current(), Some(0));
        // ...and the wanted layer's keyframe takes over, numbered on.
        let top = switch.packet(source(2, 50, 0, &keyframe()), now).unwrap();
        assert_eq!(top.seq, 103 & 0xffff);
        assert_eq!(switch.current(), Some(2));
        assert_eq!(switch.packet(source(0, 103, 0, &inter), now), None);

        // Without stand-ins, only the wanted layer's keyframe starts the picture.
        let mut strict = LayerSwitch::default();
        strict.set_target(Some(2));
        assert_eq!(strict.packet(source(0, 101, 0, &keyframe()), now), None);
        // Paused, no layer starts, stand-in or not.
        let mut paused = LayerSwitch::default();
        paused.set_target(None);
        paused.set_stand_ins(&[0, 1]);
        assert_eq!(paused.packet(source(0, 101, 0, &keyframe()), now), None);
    }
}
