// Proves the secretary can keep the site directory from /schedule: add, rename, refuse to
// delete a site still invited, delete it.
//
//   node tests/browser/site-directory.mjs http://127.0.0.1:8080 ADMIN_TOKEN
//
// Signs in on BASE_URL/schedule with ADMIN_TOKEN, adds the site "xa-thu-nghiem" ("Xã Thử
// Nghiệm") with the form, checks a second add of the same code shows the server's
// refusal, renames it (and makes it a ward) inline, and checks the table, the meeting
// form and GET /api/sites all have the new name. It then schedules a meeting about 400
// days ahead inviting the site (through the API), checks that deleting the site is
// refused with the server's message and the meeting's title shown, cancels that meeting,
// deletes the site and checks it is gone from the table and from GET /api/sites.
//
// Leaves behind one cancelled meeting; the site is deleted (re-adding its code later
// works). Prints one line of JSON and exits 0 when every check passed, 1 (with `error`
// and `checks`) otherwise. The whole run is bounded by 60 s. With CAU_SCREENSHOT=<file.png>
// it also saves a picture of the directory section after the rename.

import { launchChromium, openPage, runReport } from './common.mjs';

const [baseArgument, adminToken] = process.argv.slice(2);
if (!baseArgument || !adminToken) {
  process.stderr.write('usage: node site-directory.mjs BASE_URL ADMIN_TOKEN\n');
  process.exit(2);
}
const baseUrl = baseArgument.replace(/\/+$/, '');

const CODE = 'xa-thu-nghiem';
const NAME = 'Xã Thử Nghiệm';
const NEW_NAME = 'Phường Thử Nghiệm Đổi Tên';
const MEETING_TITLE = 'Kiểm thử danh mục điểm cầu';
const STEP_TIMEOUT = 10_000;

const report = { test: 'site-directory', base_url: baseUrl, site: CODE, checks: {} };

await runReport(report, 60_000, async (report, setBrowser) => {
  const browser = await launchChromium();
  setBrowser(browser);
  report.chromium = browser.version();
  const page = await openPage(browser, 'secretary');
  const dialogs = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    dialog.accept().catch(() => {});
  });

  const checks = report.checks;
  const check = (name, ok, detail) => {
    checks[name] = Boolean(ok);
    if (!ok && detail !== undefined) report[`${name}_detail`] = detail;
  };
  /** One REST call from the page, with the token the page keeps. */
  const apiCall = (method, path, body) => page.evaluate(async ({ method, path, body, token }) => {
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
    });
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: response.status, body: json };
  }, { method, path, body, token: adminToken });
  const listedSite = async () => {
    const { status, body } = await apiCall('GET', '/api/sites');
    if (status !== 200 || !Array.isArray(body)) throw new Error(`GET /api/sites answered ${status}`);
    return body.find((site) => site.code === CODE) ?? null;
  };
  const row = `#directory tr[data-site="${CODE}"]`;
  const rowName = () => page.locator(`${row} .directory-name`).textContent({ timeout: STEP_TIMEOUT });

  let step = 'open /schedule';
  let meetingId = null;
  try {
    await page.goto(`${baseUrl}/schedule`, { timeout: STEP_TIMEOUT });

    step = 'sign in';
    await page.fill('#token', adminToken);
    await page.click('#token-form button[type="submit"]');
    await page.waitForSelector('#directory tr[data-site]', { timeout: STEP_TIMEOUT });
    check('signed_in', await page.isVisible('#site-directory'));
    report.sites_before = await page.locator('#directory tr[data-site]').count();

    step = 'clear a leftover site';
    const leftover = await listedSite();
    if (leftover) {
      const { status } = await apiCall('DELETE', `/api/sites/${CODE}`);
      report.leftover_deleted = status;
      await page.click('#directory-refresh');
      await page.waitForSelector(row, { state: 'detached', timeout: STEP_TIMEOUT });
    }

    step = 'add the site';
    await page.fill('#new-site-name', NAME);
    report.suggested_code = await page.inputValue('#new-site-code');
    await page.fill('#new-site-code', CODE);
    await page.selectOption('#new-site-place', 'commune:commune');
    await page.click('#new-site-submit');
    await page.waitForSelector(row, { timeout: STEP_TIMEOUT });
    check('added_row_shows_name', (await rowName()) === NAME, await rowName());
    check('added_status_shown', await page.isVisible('#directory-status'));
    check('added_in_api', (await listedSite())?.name === NAME);

    step = 'add the same code again';
    await page.fill('#new-site-name', 'Xã Trùng Mã');
    await page.fill('#new-site-code', CODE);
    await page.click('#new-site-submit');
    await page.waitForSelector('#directory-error:not([hidden])', { timeout: STEP_TIMEOUT });
    const duplicate = await page.locator('#directory-error').innerText();
    report.duplicate_error = duplicate.replace(/\s+/g, ' ').trim();
    check('duplicate_refused_with_message', /exists already/.test(duplicate) && duplicate.length > 30, duplicate);
    await page.fill('#new-site-name', '');
    await page.fill('#new-site-code', '');

    step = 'rename the site';
    await page.click(`${row} [data-action="edit"]`);
    await page.fill(`${row} .directory-name-input`, NEW_NAME);
    await page.selectOption(`${row} .directory-place`, 'commune:ward');
    await page.click(`${row} [data-action="save"]`);
    await page.waitForFunction(
      ({ selector, name }) => document.querySelector(selector)?.textContent === name,
      { selector: `${row} .directory-name`, name: NEW_NAME },
      { timeout: STEP_TIMEOUT },
    );
    check('renamed_row_shows_name', (await rowName()) === NEW_NAME);
    check('renamed_row_shows_ward', (await page.locator(`${row} .kind-tag`).getAttribute('data-kind')) === 'ward');
    const renamed = await listedSite();
    report.renamed_in_api = renamed;
    check('renamed_in_api', renamed?.name === NEW_NAME && renamed?.tier === 'commune' && renamed?.kind === 'ward');
    check('meeting_form_has_new_name', await page.evaluate(
      ({ code, name }) => [...document.querySelectorAll('#chair option')]
        .some((option) => option.value === code && option.textContent === name),
      { code: CODE, name: NEW_NAME },
    ));
    if (process.env.CAU_SCREENSHOT) {
      await page.locator(row).scrollIntoViewIfNeeded();
      await page.locator('#site-directory').screenshot({ path: process.env.CAU_SCREENSHOT, timeout: STEP_TIMEOUT });
    }

    step = 'schedule a meeting inviting the site';
    // Far ahead, at a random minute, so it overlaps no real meeting of the chair.
    const start = new Date(Date.now() + (400 * 24 * 60 + Math.floor(Math.random() * 100_000)) * 60_000);
    const end = new Date(start.getTime() + 3600 * 1000);
    const created = await apiCall('POST', '/api/meetings', {
      title: MEETING_TITLE,
      start: start.toISOString().replace(/\.\d+Z$/, 'Z'),
      end: end.toISOString().replace(/\.\d+Z$/, 'Z'),
      chair: 'cao-bang',
      sites: [CODE],
    });
    if (created.status !== 201 && created.status !== 200) {
      throw new Error(`POST /api/meetings answered ${created.status}: ${JSON.stringify(created.body)}`);
    }
    meetingId = created.body.id;

    step = 'try to delete the invited site';
    dialogs.length = 0;
    await page.click(`${row} [data-action="delete"]`);
    await page.waitForFunction(
      () => {
        const box = document.getElementById('directory-error');
        return !box.hidden && document.getElementById('directory-error-detail').textContent !== '';
      },
      undefined,
      { timeout: STEP_TIMEOUT },
    );
    const refusal = await page.locator('#directory-error').innerText();
    report.in_use_error = refusal.replace(/\s+/g, ' ').trim();
    check('delete_asked_to_confirm', dialogs.length === 1 && dialogs[0].includes(NEW_NAME), dialogs);
    check('in_use_refused_with_message', refusal.includes('not over') && refusal.includes(meetingId), refusal);
    check('in_use_names_meeting', refusal.includes(MEETING_TITLE), refusal);
    check('in_use_row_kept', (await page.locator(row).count()) === 1 && (await listedSite()) !== null);

    step = 'cancel the meeting';
    const cancelled = await apiCall('POST', `/api/meetings/${meetingId}/cancel`);
    if (cancelled.status >= 300) throw new Error(`cancelling answered ${cancelled.status}`);

    step = 'delete the site';
    dialogs.length = 0;
    await page.click(`${row} [data-action="delete"]`);
    await page.waitForSelector(row, { state: 'detached', timeout: STEP_TIMEOUT });
    check('deleted_row_gone', (await page.locator(row).count()) === 0);
    check('deleted_error_hidden', await page.isHidden('#directory-error'));
    check('deleted_from_api', (await listedSite()) === null);
    check('deleted_from_meeting_form', (await page.locator(`#chair option[value="${CODE}"]`).count()) === 0);
    report.sites_after = await page.locator('#directory tr[data-site]').count();
    check('site_count_restored', report.sites_after === report.sites_before);

    const pageErrors = page.cauLog.filter((line) => line.startsWith('pageerror'));
    check('no_page_errors', pageErrors.length === 0, pageErrors);
  } catch (error) {
    report.console = page.cauLog.slice(-5);
    throw new Error(`${step}: ${error.message.split('\n')[0]}`);
  }

  const failed = Object.entries(checks).filter(([, ok]) => !ok).map(([name]) => name);
  if (failed.length > 0) throw new Error(`failed checks: ${failed.join(', ')}`);
});
