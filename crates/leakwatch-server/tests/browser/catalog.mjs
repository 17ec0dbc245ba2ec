// Drives headless Chromium through the breach catalog's charts and the ingest
// log at phone width, by keyboard: sign in, read the charts' titles, open a
// chart's table, switch to months, reach the ingest page from the navigation,
// and watch a running ingest end without reloading: once the page shows it
// running, this writes the file `seen-running`, and the test ends it.
// Prints what it saw as one JSON object; the Rust test judges it.
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [base, key] = [process.argv[2], process.argv[3]];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const out = { errors: [], overflows: [] };
try {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => out.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') out.errors.push(`${m.text()} (${m.location().url})`); });
  const overflows = () => page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);

  await page.goto(base + '/ui/signin');
  // Chromium applies autofocus at a rendering update that may come after
  // the load event: wait for it rather than type into the page body.
  await page.waitForFunction(() => document.activeElement?.id === 'key');
  await page.keyboard.type(key);
  await page.keyboard.press('Enter');
  await page.waitForURL('**/ui/search');

  await page.goto(base + '/ui/breaches');
  out.charts = await page.locator('svg.chart > title').allTextContents();
  out.chartWidths = await page.locator('svg.chart').evaluateAll((svgs) => svgs.map((s) => s.getBoundingClientRect().width));
  out.bars = await page.locator('svg[aria-labelledby^="chart-breaches"] rect, svg[aria-labelledby^="chart-accounts"] rect').count();
  // A chart's table opens from the keyboard.
  const summary = page.locator('summary').first();
  await summary.focus();
  await page.keyboard.press('Enter');
  out.tableOpened = await page.locator('details').first().evaluate((d) => d.open);
  out.overflows.push(await overflows());
  await page.getByRole('link', { name: 'Per month', exact: true }).click();
  await page.waitForURL('**per=month**');
  out.monthly = await page.locator('svg.chart > title').first().textContent();

  await page.goto(base + '/ui/breach/Adobe');
  out.overflows.push(await overflows());

  // The ingest page, from the navigation by keyboard.
  await page.getByRole('link', { name: 'Ingests', exact: true }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL('**/ui/ingests');
  out.ingestsUrl = page.url();
  const text = async (locator) => (await locator.first().textContent()).replace(/\s+/g, ' ').trim();
  out.running = await text(page.locator('#running .ingest h3'));
  writeFileSync('seen-running', '');
  // refresh.js swaps in the page's new content once nothing runs any more.
  await page.waitForFunction(() => /No ingest is running/.test(document.getElementById('running').textContent),
    null, { timeout: 30000 });
  out.urlAfterRefresh = page.url();
  out.ingestHeadings = await page.locator('li.ingest h3').evaluateAll((hs) => hs.map((h) => h.textContent.replace(/\s+/g, ' ').trim()));
  out.reasons = await page.locator('table.reasons tbody tr').evaluateAll((rows) =>
    rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));
  out.overflows.push(await overflows());
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
