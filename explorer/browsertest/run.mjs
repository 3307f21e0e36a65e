// Browser test of the explorer's page in Debian's headless chromium,
// driven by playwright-core (which never downloads a browser). Run by
// explorer/browser_test.go:
//
//   node run.mjs   (config in LEASEHOLD_BT_* environment variables)
//
// It loads the page, changes period and comparison, opens an asset,
// exports a CSV, switches tenant as admin, checks the second language,
// keyboard use and a customer's limits, and writes screenshots. It prints
// one line per step and exits non-zero on the first failure.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const env = (k) => {
  const v = process.env['LEASEHOLD_BT_' + k];
  if (v === undefined) throw new Error('missing LEASEHOLD_BT_' + k);
  return v;
};
const base = env('URL');
const adminToken = env('ADMIN_TOKEN');
const customerToken = env('CUSTOMER_TOKEN');
const otherTenant = env('OTHER_TENANT');
const shots = env('SCREENSHOTS');
const chromiumPath = process.env.LEASEHOLD_BT_CHROMIUM || '/usr/bin/chromium';

const step = (name) => console.log('step: ' + name);
function check(cond, msg) {
  if (!cond) throw new Error('check failed: ' + msg);
}
async function ready(page) {
  await page.waitForFunction(() => {
    const r = document.body.getAttribute('data-ready');
    return r && r !== '';
  }, null, { timeout: 20000 });
}
// settle waits for the render after a state change (data-ready is removed
// at once and set again when every panel is done).
async function settle(page, action) {
  const before = await page.evaluate(() => document.body.getAttribute('data-ready'));
  await action();
  await page.waitForFunction((b) => {
    const r = document.body.getAttribute('data-ready');
    return r && r !== b;
  }, before, { timeout: 20000 });
}

const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'leasehold-chromium-'));
const context = await chromium.launchPersistentContext(userDir, {
  executablePath: chromiumPath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  viewport: { width: 1280, height: 900 },
  acceptDownloads: true,
});
const errors = [];
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

  step('sign in with a #token link and load the page');
  const t0 = Date.now();
  await page.goto(base + '/?period=7d#token=' + adminToken);
  await ready(page);
  console.log('ready_ms: ' + (Date.now() - t0));
  check(!page.url().includes('token'), 'the token is removed from the address');
  check(await page.locator('.card').count() === 5, 'five headline cards');
  check(await page.locator('#panel-assets tbody tr').count() > 0, 'top assets listed');
  check(await page.locator('.highlights li').count() > 0, 'highlights shown');
  check((await page.locator('#fresh').innerText()).startsWith('Data: up to'), 'freshness line');
  check(await page.locator('.world path.l5').count() >= 1, 'map coloured');
  await page.screenshot({ path: path.join(shots, 'explorer-overview.png'), fullPage: true });

  step('change the period to 30 days');
  await settle(page, () => page.selectOption('#ctl-period', '30d'));
  check(page.url().includes('period=30d'), 'period in the URL');
  check((await page.locator('#period-line').innerText()).length > 5, 'period line');

  step('compare with a year earlier, then with nothing');
  await settle(page, () => page.selectOption('#ctl-compare', 'year'));
  check(page.url().includes('compare=year'), 'comparison in the URL');
  await settle(page, () => page.selectOption('#ctl-compare', 'none'));
  check(await page.locator('.legend .key.prev').count() === 0, 'no comparison line without a comparison');
  await settle(page, () => page.selectOption('#ctl-compare', 'previous'));
  await settle(page, () => page.selectOption('#ctl-period', '7d'));

  step('keyboard: choose the downloads card with Enter');
  await page.locator('.card').nth(1).focus();
  await settle(page, () => page.keyboard.press('Enter'));
  check(page.url().includes('metric=downloads'), 'metric in the URL');
  check(await page.locator('.card[aria-pressed="true"]').count() === 1, 'one pressed card');

  step('export the top assets as CSV');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.locator('#panel-assets a.csv').first().click(),
  ]);
  const csvPath = path.join(userDir, 'assets.csv');
  await download.saveAs(csvPath);
  const csv = fs.readFileSync(csvPath, 'utf8');
  check(csv.startsWith('rank,asset_id,title,type,collection,views,downloads'), 'CSV header: ' + csv.slice(0, 80));
  check(csv.trim().split('\n').length >= 2, 'CSV rows');
  console.log('csv_file: ' + download.suggestedFilename());

  step('open an asset');
  const first = page.locator('#panel-assets tbody th a').first();
  const title = await first.innerText();
  await settle(page, () => first.click());
  check(page.url().includes('asset='), 'asset in the URL');
  check((await page.locator('.asset-title').innerText()) === title, 'asset page title');
  check(await page.locator('#panel-embeds tbody tr').count() > 0, 'embedding pages listed');
  await page.screenshot({ path: path.join(shots, 'explorer-asset.png'), fullPage: true });
  await settle(page, () => page.goBack());
  check(!page.url().includes('asset='), 'back to the overview');

  step('switch tenant as admin');
  await page.waitForFunction(() => document.querySelectorAll('#ctl-tenant option').length > 1);
  const allViews = await page.locator('.card').first().getAttribute('aria-label');
  await settle(page, () => page.selectOption('#ctl-tenant', otherTenant));
  check(page.url().includes('tenant=' + otherTenant), 'tenant in the URL');
  check((await page.locator('.card').first().getAttribute('aria-label')) !== allViews, 'figures change with the tenant');

  step('second language');
  await settle(page, () => page.selectOption('#ctl-lang', 'de'));
  check((await page.locator('#h-assets').innerText()) === 'Meistgenutzte Assets', 'German heading');
  check(await page.locator('html[lang="de"]').count() === 1, 'lang attribute');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(shots, 'explorer-phone-de.png'), fullPage: false });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, 'no sideways scrolling on a phone (' + overflow + 'px)');

  step('a customer sees only its own data');
  await context.clearCookies();
  const page2 = await context.newPage();
  page2.on('pageerror', (e) => errors.push(String(e)));
  await page2.goto(base + '/');
  await page2.waitForSelector('#token');
  await page2.fill('#token', 'wrong');
  await page2.click('.login button');
  await page2.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
  step('sign in with the form');
  await page2.fill('#token', customerToken);
  await page2.click('.login button');
  await ready(page2);
  check(await page2.locator('#ctl-tenant').count() === 0, 'no customer picker for a customer');
  step('ask for another tenant in the address');
  await page2.goto(base + '/?tenant=' + otherTenant);
  await ready(page2);
  check(await page2.locator('.state.error').count() > 0, 'another tenant in the URL is refused');
  console.log('refused: ' + (await page2.locator('.state.error').first().innerText()).split('\n')[0]);

  check(errors.length === 0, 'no JavaScript errors: ' + errors.join(' | '));
  console.log('ok');
} catch (e) {
  console.log('FAIL: ' + e.message);
  for (const p of context.pages()) {
    await p.screenshot({ path: path.join(shots, 'failure-' + context.pages().indexOf(p) + '.png'), fullPage: true }).catch(() => {});
  }
  if (errors.length) console.log('page errors: ' + errors.join(' | '));
  process.exitCode = 1;
} finally {
  await context.close();
  fs.rmSync(userDir, { recursive: true, force: true });
}
