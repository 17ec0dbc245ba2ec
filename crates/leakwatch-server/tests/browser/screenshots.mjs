// Takes the screenshots of the web interface kept under docs/screenshots/:
// sign-in, a search result with a password check, the catalog with its
// charts, a breach, and the ingest log, 1000 px wide (and the search at phone
// width). Run by screenshots.sh, which makes the data they show.
//
// Usage: node screenshots.mjs BASE_URL API_KEY OUT_DIR ADDRESS BREACH
import { chromium } from 'playwright-core';

const [base, key, dir, address, breach] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--font-render-hinting=none'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const shot = (name, fullPage = false) => page.screenshot({ path: `${dir}/${name}.png`, fullPage, animations: 'disabled' });

  await page.goto(base + '/ui/signin');
  await shot('signin');
  // Chromium applies autofocus at a rendering update that may come after
  // the load event: wait for it rather than type into the page body.
  await page.waitForFunction(() => document.activeElement?.id === 'key');
  await page.keyboard.type(key);
  await page.keyboard.press('Enter');
  await page.waitForURL('**/ui/search');

  await page.getByLabel('Email address, user name or phone number').fill(address);
  await page.getByRole('button', { name: 'Search breaches' }).click();
  await page.waitForSelector('main h2');
  await page.getByLabel('Password').fill('password');
  await page.getByLabel('Password').press('Enter');
  await page.waitForFunction(() => !/^(Checking|The password is hashed)/.test(document.getElementById('pw-result').textContent));
  await page.getByLabel('Password').fill('');
  await page.locator('h1').focus();
  await shot('search', true);

  await page.goto(base + '/ui/breaches');
  await shot('catalog', true);
  await page.goto(base + '/ui/breach/' + encodeURIComponent(breach));
  await shot('breach', true);
  // The newest ingests, with the first one's inputs open: the top of the page.
  await page.setViewportSize({ width: 1000, height: 1300 });
  await page.goto(base + '/ui/ingests');
  await page.locator('details').first().evaluate((d) => { d.open = true; });
  await shot('ingests');

  await page.setViewportSize({ width: 360, height: 740 });
  await page.goto(base + '/ui/breaches?per=month');
  await shot('catalog-phone');
} finally {
  await browser.close();
}
