//! Cầu's end-to-end scenarios: one scenario per file, each against a real server.
//!
//! They are modules of one test binary rather than one binary each: every binary links the
//! whole media stack (str0m, webrtc-rs, aws-lc, sqlx), and forty links of it cost minutes of
//! CI time and gigabytes of disk for nothing. `scripts/test.sh` runs the scenarios one at a
//! time, as separate binaries ran before, because several of them time media on a two-core
//! machine. Run one with `cargo test -p cau-tests --test scenarios <module name>`.

mod admin_api_refuses_missing_and_wrong_tokens;
mod api_flood_is_answered_with_429_and_retry_after;
mod bad_signaling_input_disturbs_no_one;
mod browser_closing_page_is_announced;
mod browser_runs_the_line_test_from_the_lobby;
mod browser_without_camera_or_microphone_takes_part;
mod browsers_follow_the_chairs_floor;
mod browsers_meet_over_https;
mod browsers_see_and_hear_each_other;
mod capped_publisher_is_still_heard;
mod capped_subscriber_keeps_audio_and_steps_down;
mod chair_gives_and_takes_the_floor;
mod closed_participant_is_announced;
mod floor_holder_shares_a_screen_with_every_site;
mod full_room_refuses_join;
mod garbage_on_media_port_disturbs_no_call;
mod generated_admin_token_is_shown_once;
mod https_with_certificate_files;
mod invalid_meetings_are_refused_and_nothing_is_written;
mod join_flood_from_one_address_is_refused_with_rate_limited;
mod join_links_admit_only_their_site_meeting_and_window;
mod line_quality_is_scored_per_site;
mod line_test_refuses_what_it_cannot_run;
mod line_test_tells_ready_from_not_ready;
mod lossy_publisher_is_heard_whole_through_redundancy;
mod meeting_roles_and_tokens_are_enforced;
mod meetings_are_scheduled_edited_cancelled_and_listed;
mod meetings_survive_a_restart;
mod message_flood_on_one_socket_is_refused_and_others_keep_talking;
mod offers_beyond_the_limits_are_refused;
mod openapi_document_describes_every_endpoint;
mod overlapping_invitations_are_refused_with_409;
mod pages_carry_security_headers;
mod participant_whose_media_dies_is_announced;
mod province_meets_all_communes;
mod rooms_are_isolated;
mod scheduling_api_validates_and_refuses_conflicts;
mod secretary_edits_the_site_directory;
mod secrets_never_reach_the_logs;
mod server_restarts_lose_nothing;
mod simulcast_publisher_sends_only_the_layers_someone_watches;
mod site_behind_a_udp_firewall_meets_over_tcp;
mod site_directory_is_seeded_and_edited;
mod site_whose_line_drops_keeps_its_seat;
mod speaking_site_becomes_the_active_speaker;
mod webrtc_clients_exchange_media;
mod websocket_from_a_foreign_origin_is_refused;
