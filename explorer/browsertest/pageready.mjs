// Page-ready benchmark: loads the explorer's page N times in headless
// Debian chromium and prints the time from navigation until every panel
// is drawn (body[data-ready]), p50 and p95. Used by scripts/bench-explorer.sh:
//
//   node pageready.mjs URL TOKEN ROUNDS [QUERY...]
//
// With PAGEREADY_CLEAR set to a cluster's cache-clearing URL (e.g.
// http://127.0.0.1:9200/_cache/clear?request=true), it is POSTed before
// each load, so every load is cold for the cluster's request cache.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [base, token, roundsArg, ...queries] = process.argv.slice(2);
const rounds = Number(roundsArg || 10);
const qs = queries.length ? queries : ['period=7d', 'period=30d', 'period=90d'];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leasehold-pageready-'));
const ctx = await chromium.launchPersistentContext(dir, {
  executablePath: process.env.LEASEHOLD_BT_CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  viewport: { width: 1280, height: 900 },
});
const times = [];
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  await page.goto(base + '/#token=' + token);
  await page.waitForFunction(() => document.body.getAttribute('data-ready'), null, { timeout: 120000 });
  for (let i = 0; i < rounds; i++) {
    const q = qs[i % qs.length];
    if (process.env.PAGEREADY_CLEAR) {
      const r = await fetch(process.env.PAGEREADY_CLEAR, { method: 'POST' });
      if (!r.ok) throw new Error(`clearing the cache: ${r.status}`);
    }
    const t0 = Date.now();
    await page.goto(base + '/?' + q);
    await page.waitForFunction(() => document.body.getAttribute('data-ready') && !document.querySelector('.state.error'), null, { timeout: 120000 });
    times.push(Date.now() - t0);
  }
} finally {
  await ctx.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
times.sort((a, b) => a - b);
const q = (p) => times[Math.max(0, Math.ceil(p * times.length) - 1)];
console.log(`page ready (all panels drawn), ${times.length} loads: p50 ${q(0.5)} ms, p95 ${q(0.95)} ms, max ${times[times.length - 1]} ms`);
