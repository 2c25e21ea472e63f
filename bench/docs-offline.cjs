// The documentation page with no network (issue 17): headless Chromium opens /api-docs of a
// running service, every request to a host other than this machine is refused, and the page
// must render the operations of the OpenAPI document. Run by .ci/run:
//   NODE_PATH=<dir>/node_modules node bench/docs-offline.cjs http://127.0.0.1:PORT
// (playwright-core from the npm registry drives Debian's chromium at /usr/bin/chromium).
const { chromium } = require('playwright-core');

(async () => {
  const base = process.argv[2];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run'],
  });
  const outside = [];
  const failed = [];
  try {
    const page = await browser.newPage();
    await page.route('**/*', (route) => {
      const host = new URL(route.request().url()).hostname;
      if (host === '127.0.0.1' || host === 'localhost' || host === '[::1]') {
        return route.continue();
      }
      outside.push(route.request().url());
      return route.abort();
    });
    page.on('requestfailed', (r) => failed.push(r.url()));
    const docs = await fetch(`${base}/api-json`).then((r) => r.json());
    const expected = Object.values(docs.paths)
      .reduce((n, methods) => n + Object.keys(methods).length, 0);
    await page.goto(`${base}/api-docs`);
    await page.waitForSelector('.opblock', { timeout: 30000 });
    const shown = await page.locator('.opblock').count();
    const title = await page.locator('.info .title').first().innerText();
    const result = { shown, expected, title, outside, failed };
    console.log(JSON.stringify(result));
    if (shown !== expected || outside.length > 0) {
      console.error('docs page: operations missing or a request left this machine');
      process.exitCode = 1;
    }
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
