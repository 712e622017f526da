//! In a chair-mode meeting the commune holding the floor shares its screen: the chair
//! and another commune show it large, its pictures advancing, and stop showing it when
//! the commune stops; the commune without the floor is not offered to share. The
//! screen travels on a media line of its own, which the server forwards to the sites
//! that hear the presenter (see `tests/browser/screen-share.mjs`).

use anyhow::bail;
use cau_tests::api::{admin_config, link_for, now_millis, schedule};
use cau_tests::browser::run_script;
use cau_tests::server::start_test_server_with;

#[tokio::test(flavor = "multi_thread")]
async fn floor_holder_shares_a_screen_with_every_site() -> anyhow::Result<()> {
    let server = start_test_server_with(&admin_config()).await?;
    let now = now_millis();
    let meeting = schedule(
        server.http_addr(),
        now - 60_000,
        now + 3_600_000,
        &["ha-quang", "tra-linh"],
    )
    .await?;
    let chair = link_for(&meeting, "cao-bang")?;
    let presenter = link_for(&meeting, "ha-quang")?;
    let other = link_for(&meeting, "tra-linh")?;
    let report = run_script(
        "screen-share.mjs",
        &[&server.base_url(), &chair, &presenter, &other],
    )
    .await?;
    println!("{report}");
    for site in ["chair", "other"] {
        let page = &report["pages"][site];
        if page["first"]["width"] != 1000 || page["after_stop"]["shown"] != false {
            bail!("{site} did not show the shared screen, then stop: {report}");
        }
    }
    if report["other_may_share"] != false {
        bail!("the site without the floor was offered to share: {report}");
    }
    Ok(())
}
