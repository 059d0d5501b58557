// Opens pages in Debian's headless Chromium (driven by playwright-core, no browser download)
// and relays what they report, for tests that drive pages as their users would:
//   node pages.mjs SECONDS URL...
// Each page pushes objects to `window.report`; each new one is printed as a JSON line with
// the page's index added ({"page":0,...}). A line on stdin, {"page":N,"eval":"EXPR"},
// evaluates EXPR (awaited) in page N and prints {"page":N,"eval":"EXPR","result":...}.
// Exits 0 when stdin closes, 1 after SECONDS.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const [seconds, ...urls] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), 'zilla-chromium-'));
const say = (object) => process.stdout.write(JSON.stringify(object) + '\n');
process.stdout.on('error', () => {});

const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
let code = 1;
try {
  const pages = [];
  for (const [index, url] of urls.entries()) {
    const page = index === 0 && context.pages()[0] ? context.pages()[0] : await context.newPage();
    page.on('console', (message) => process.stderr.write(`page ${index}: ${message.text()}\n`));
    await page.goto(url);
    pages.push(page);
  }
  let closed = false;
  const evaluations = [];
  createInterface({ input: process.stdin })
    .on('line', (line) => {
      const { page, eval: expression } = JSON.parse(line);
      evaluations.push(pages[page].evaluate(expression)
        .then((result) => say({ page, eval: expression, result }))
        .catch((error) => say({ page, eval: expression, error: String(error) })));
    })
    .on('close', () => { closed = true; });
  const deadline = Date.now() + Number(seconds) * 1000;
  const shown = pages.map(() => 0);
  while (Date.now() < deadline) {
    for (const [index, page] of pages.entries()) {
      const entries = await page.evaluate((from) => (window.report || []).slice(from), shown[index]);
      for (const entry of entries) say({ page: index, ...entry });
      shown[index] += entries.length;
    }
    if (closed) {
      await Promise.all(evaluations);
      code = 0;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(code);
