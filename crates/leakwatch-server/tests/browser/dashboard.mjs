// Drives headless Chromium through the organization dashboard at phone
// width, by keyboard where a user would: sign in, follow the navigation to
// the organizations and open one, read its sections, preview the forced
// resets and apply them. Prints what it saw as one JSON object; the Rust
// test (tests/web_dashboard.rs) judges it.
import { chromium } from 'playwright-core';

const [base, key] = [process.argv[2], process.argv[3]];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const out = { errors: [] };
const cells = (page, id, n) =>
  page.locator(`#${id} tbody tr`).evaluateAll((rows, n) => rows.map((r) => r.cells[n].innerText.trim()), n);
try {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => out.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') out.errors.push(`${m.text()} ${m.location().url}`); });

  await page.goto(base + '/ui/signin');
  await page.getByLabel('API key').fill(key);
  await page.getByLabel('API key').press('Enter');
  await page.waitForURL('**/ui/search');

  await page.getByRole('link', { name: 'Organizations' }).click();
  await page.waitForURL('**/ui/orgs');
  out.orgs = await page.locator('main tbody a').allTextContents();
  const started = performance.now();
  // Keyboard: focus the organization's link and follow it with Enter.
  await page.getByRole('link', { name: 'acme', exact: true }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL('**/ui/org/acme');
  out.dashboardMs = performance.now() - started;
  out.heading = await page.locator('h1').textContent();
  out.sections = await page.locator('main h2').allTextContents();
  out.stealer = await cells(page, 'stealer-table', 0);
  out.audit = await cells(page, 'audit-table', 1);
  out.severities = await cells(page, 'audit-table', 0);
  out.breaches = await cells(page, 'breach-table', 0);
  out.charts = await page.locator('svg.chart').evaluateAll((svgs) =>
    svgs.map((s) => { const b = s.getBoundingClientRect(); return { width: b.width, height: b.height }; }));
  out.chartTitles = await page.locator('svg.chart > title').allTextContents();
  out.overflows = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  // Cells of a card never overlap: each starts below the one before it.
  out.overlaps = await page.locator('#audit-table tbody tr').first().evaluate((tr) => {
    const cells = [...tr.cells].map((td) => td.getBoundingClientRect()).filter((r) => r.height > 0);
    return cells.slice(1).some((c, i) => c.top < cells[i].bottom - 1);
  });
  if (process.env.SCREENSHOT_DIR) {
    await page.screenshot({ path: process.env.SCREENSHOT_DIR + '/dashboard-phone.png', fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: process.env.SCREENSHOT_DIR + '/dashboard.png', fullPage: true });
    await page.setViewportSize({ width: 360, height: 740 });
  }
  // On a phone the audit rows are cards, each cell labelled by its column.
  out.cardLabel = await page.locator('#audit-table tbody td').first().evaluate((td) => getComputedStyle(td, '::before').content);

  await page.getByRole('button', { name: 'Preview forced resets' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL('**/ui/org/acme/reset');
  out.preview = (await page.locator('[role=status]').textContent()).trim();
  out.plan = await cells(page, 'reset-plan', 0);
  out.previewOverflows = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  await page.getByRole('button', { name: /^Apply/ }).click();
  await page.waitForURL('**/ui/org/acme/reset/apply');
  out.applied = (await page.locator('[role=status]').textContent()).trim();
  await page.getByRole('link', { name: 'Back to the dashboard' }).click();
  await page.waitForURL('**/ui/org/acme');
  out.resets = await page.locator('#reset-table tbody tr').evaluateAll((rows) => rows.map((r) => r.innerText));
  out.overflowsAfter = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
