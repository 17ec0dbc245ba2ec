// Drives headless Chromium through the web interface at phone width, by
// keyboard where a user would type: sign in, search an address, check a
// password in the page, open a breach, sort the catalog, sign out. Prints
// what it saw as one JSON object; the Rust test judges it.
import { chromium } from 'playwright-core';

const [base, key] = [process.argv[2], process.argv[3]];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const out = { errors: [], requests: [] };
try {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => out.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') out.errors.push(m.text()); });
  page.on('response', (r) => { if (r.status() >= 400) out.errors.push(`${r.status()} ${r.url()}`); });
  page.on('request', (r) => out.requests.push({ url: r.url(), method: r.method(), body: r.postData() || '' }));

  await page.goto(base + '/');
  out.signinUrl = page.url();
  const nav = performance.now();
  await page.goto(base + '/ui/signin');
  out.signinLoad = await page.evaluate(() => {
    const n = performance.getEntriesByType('navigation')[0];
    return { transfer: n.transferSize, interactive: n.domInteractive };
  });
  out.signinMs = performance.now() - nav;
  // The key field has the focus; typing and Enter submit the form.
  // Chromium applies autofocus at a rendering update that may come after
  // the load event: wait for it rather than type into the page body.
  await page.waitForFunction(() => document.activeElement?.id === 'key');
  await page.keyboard.type(key);
  await page.keyboard.press('Enter');
  await page.waitForURL('**/ui/search');
  out.cookies = (await context.cookies()).map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }));

  await page.getByLabel('Email address, user name or phone number').fill('alice@example-corp.com');
  const searched = performance.now();
  await page.getByRole('button', { name: 'Search breaches' }).click();
  await page.waitForSelector('main h2');
  out.searchMs = performance.now() - searched;
  out.heading = await page.locator('main h2').first().textContent();
  out.cards = await page.locator('.card h3').allTextContents();
  out.overflows = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);

  async function check(password) {
    await page.getByLabel('Password').fill(password);
    await page.getByLabel('Password').press('Enter');
    await page.waitForFunction(() => !/^(Checking|The password is hashed)/.test(document.getElementById('pw-result').textContent));
    return page.locator('#pw-result').textContent();
  }
  out.seen = await check('password');
  out.unseen = await check('correct horse battery staple 1975');
  out.url = page.url();

  await page.getByRole('link', { name: 'Adobe title' }).click();
  await page.waitForURL('**/ui/breach/Adobe');
  out.breach = await page.locator('h1').textContent();

  await page.getByRole('link', { name: 'All breaches' }).click();
  await page.getByRole('link', { name: 'Accounts', exact: true }).click();
  await page.getByRole('link', { name: 'Accounts', exact: true }).click();
  out.sorted = await page.locator('tbody tr td:first-child a').allTextContents();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL('**/ui/signin');
  await page.goto(base + '/ui/search');
  out.afterSignOut = page.url();
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
