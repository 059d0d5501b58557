// Opens the sse.kafka.fanout page in Debian's headless Chromium (driven by playwright-core,
// no browser download) and prints each event the page shows, as one JSON line:
//   node browser.mjs URL COUNT [SECONDS]
// prints {"ready":true} once the page's EventSource is open, then {"data":..,"id":..} per
// event in arrival order, {"opens":N} (how many times the page connected, from its status
// line) and exits 0 once COUNT events were shown, or 1 after SECONDS (default 60).
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [url, count, seconds = '60'] = process.argv.slice(2);
const want = Number(count);
const profile = mkdtempSync(join(tmpdir(), 'zilla-chromium-'));
const say = (object) => process.stdout.write(JSON.stringify(object) + '\n');
// The test may stop reading once it has what it needs.
process.stdout.on('error', () => {});

const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  ignoreHTTPSErrors: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--ignore-certificate-errors',
  ],
});
let code = 1;
try {
  const page = context.pages()[0] ?? await context.newPage();
  let opens = 0;
  page.on('console', (message) => process.stderr.write(`console: ${message.text()}\n`));
  await page.exposeFunction('reportOpen', () => { opens += 1; });
  await page.addInitScript(() => {
    // Count connections: wrap EventSource so every open is reported.
    const Original = window.EventSource;
    window.EventSource = class extends Original {
      constructor(...args) {
        super(...args);
        this.addEventListener('open', () => window.reportOpen());
      }
    };
  });
  await page.goto(url);
  const deadline = Date.now() + Number(seconds) * 1000;
  let shown = 0;
  let ready = false;
  while (Date.now() < deadline) {
    if (!ready && opens > 0) {
      ready = true;
      say({ ready: true, protocol: await page.evaluate(() => performance.getEntriesByType('navigation')[0]?.nextHopProtocol) });
    }
    // Rows are prepended: read them oldest first.
    const rows = await page.$$eval('#events tr', (trs) => trs.reverse().map((tr) =>
      Array.from(tr.children).map((td) => td.textContent)));
    for (; shown < rows.length; shown += 1) {
      const [, type, data, id] = rows[shown];
      say({ type, data, id });
    }
    if (shown >= want) {
      code = 0;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  say({ opens });
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(code);
