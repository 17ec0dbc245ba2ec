// The web interface's load and search times in headless Chromium, for
// bench/web.sh. Each run is a fresh browser context (nothing cached): the
// first page (`/`, which redirects to the sign-in), the catalog with its
// charts, and an account search once signed in. Prints one JSON object of
// per-run figures.
//
// Usage: node web.mjs BASE_URL API_KEY ADDRESS RUNS
import { chromium } from 'playwright-core';

const [base, key, address, runs] = [process.argv[2], process.argv[3], process.argv[4], Number(process.argv[5] || 9)];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const out = { first: [], catalog: [], search: [] };

// Loads `url` and says what it cost: bytes on the wire (headers and bodies of
// every response, redirects included), requests, and the document's timings
// from the start of the navigation.
async function load(page, url) {
  const requests = [];
  const onRequest = (r) => requests.push(r);
  page.on('requestfinished', onRequest);
  await page.goto(url, { waitUntil: 'load' });
  page.off('requestfinished', onRequest);
  let bytes = 0;
  for (const r of requests) {
    const s = await r.sizes();
    bytes += s.responseBodySize + s.responseHeadersSize;
  }
  const t = await page.evaluate(() => {
    const n = performance.getEntriesByType('navigation')[0];
    return { interactive: n.domContentLoadedEventEnd, load: n.loadEventEnd, ttfb: n.responseStart };
  });
  return { bytes, requests: requests.length, ...t };
}

try {
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    out.first.push(await load(page, base + '/'));
    await page.keyboard.type(key);
    await page.keyboard.press('Enter');
    await page.waitForURL('**/ui/search');
    out.catalog.push(await load(page, base + '/ui/breaches'));
    await page.goto(base + '/ui/search');
    await page.getByLabel('Email address, user name or phone number').fill(address);
    const started = performance.now();
    await page.getByRole('button', { name: 'Search breaches' }).click();
    // The result's heading (the search form's page has an h2 of its own).
    await page.waitForSelector('main h2.bad, main h2.good');
    const shown = performance.now() - started;
    const heading = await page.locator('main h2.bad, main h2.good').first().textContent();
    const t = await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      return { server: n.responseStart - n.requestStart, interactive: n.domContentLoadedEventEnd };
    });
    out.search.push({ shown, heading, ...t });
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
