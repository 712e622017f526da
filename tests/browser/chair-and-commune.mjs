// What the reconnection scripts share: a chair and a commune in one chair-mode meeting,
// the commune holding the floor, and a clock of when media last flowed between them.

import { mediaResumedSince, sleep, watchMedia } from './common.mjs';

/**
 * The commune (page `pages.commune`, join link `communeUrl`) waits in the lobby, the
 * chair opens the meeting from its console, the commune asks for the floor and the chair
 * gives it. Returns each page's site code: `{ chair, commune }`. `onStep` is told what
 * is being done, for error messages.
 */
export async function enterWithFloor(pages, chairUrl, communeUrl, onStep) {
  onStep('the commune waits in the lobby');
  await pages.commune.goto(communeUrl, { timeout: 10_000 });
  await pages.commune.waitForSelector('body[data-lobby="true"]', { timeout: 15_000 });
  onStep('the chair opens the meeting');
  await pages.chair.goto(chairUrl, { timeout: 10_000 });
  await pages.chair.waitForSelector('#console #open-meeting:not([hidden])', { timeout: 15_000 });
  await pages.chair.click('#open-meeting', { timeout: 5_000 });
  const sites = {};
  for (const [name, page] of Object.entries(pages)) {
    await page.waitForSelector('body[data-view="meeting-view"][data-site]', { timeout: 15_000 });
    sites[name] = await page.evaluate(() => document.body.dataset.site);
  }
  onStep('the commune asks for the floor and gets it');
  await pages.commune.waitForSelector('#floor-button:not([hidden]):not([disabled])', { timeout: 10_000 });
  await pages.commune.click('#floor-button', { timeout: 5_000 });
  const grant = `#queue-list button[data-action="grant"][data-for-site="${sites.commune}"]`;
  await pages.chair.waitForSelector(grant, { timeout: 10_000 });
  await pages.chair.click(grant, { timeout: 5_000 });
  await pages.commune.waitForSelector('#own-floor:not([hidden])', { timeout: 10_000 });
  return sites;
}

/**
 * Watches the media between chair and commune. `waitForMedia(since, limitMs)` waits
 * until the chair has seen and heard the commune and the commune has seen the chair after
 * `since` (a `Date.now()` time), at most `limitMs`; it returns how long after `since`
 * each happened, or null for what did not.
 */
export async function mediaBetween(pages, sites) {
  await watchMedia(pages.chair);
  await watchMedia(pages.commune);
  const flowing = async (since) => {
    const atChair = await mediaResumedSince(pages.chair, sites.commune, since);
    const atCommune = await mediaResumedSince(pages.commune, sites.chair, since);
    const after = (t) => (t !== null ? t - since : null);
    return {
      chair_sees_commune: after(atChair.video),
      chair_hears_commune: after(atChair.audio),
      commune_sees_chair: after(atCommune.video),
    };
  };
  const waitForMedia = async (since, limitMs) => {
    const deadline = Date.now() + limitMs;
    let seen = await flowing(since);
    while (Object.values(seen).some((v) => v === null) && Date.now() < deadline) {
      await sleep(50);
      seen = await flowing(since);
    }
    return seen;
  };
  return { waitForMedia };
}
