'use strict';
// What captcha detection costs a page: page.goto ('load') of a local page without a captcha
// (20 subresources) through browserd with --captcha-detect on and with it off, both daemons
// of the same run, in alternating batches (the machine is shared and noisy: medians over all
// loads), printed as a ratio on/off. Also the same for a page with a reCAPTCHA stand-in (there
// detection does its work: an isolated world and one evaluate, after the trigger).
//
//   BROWSERD_BIN=build-release/browserd node bench/captcha_bench.js [--loads N] [--batches B]
//
// Goal: the page without a captcha loads as fast with detection as without (ratio <= 1.05).
// Loopback only (the e2e harness's daemon, fake resolver and leftover checks).
const http = require('node:http');
const { Daemon, requireClient } = require('../tests/e2e/harness.js');
const { CaptchaSite, KINDS } = require('../tests/e2e/captcha_site.js');

const puppeteer = requireClient('puppeteer-core');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const LOADS = arg('--loads', 20);
const BATCHES = arg('--batches', 5);

function plainSite() {
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/r/')) {
      res.writeHead(200, { 'Content-Type': 'application/javascript', 'Cache-Control': 'no-store' });
      return res.end(`window.x${req.url.slice(3)} = 1;`);
    }
    res.writeHead(200, { 'Content-Type': 'text/html', 'Cache-Control': 'no-store' });
    let body = '<!doctype html><title>plain</title><h1>plain</h1>';
    for (let i = 0; i < 20; i++) body += `<script src="/r/${i}"></script>`;
    return res.end(body + '<p>' + 'x'.repeat(20000) + '</p>');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
};

async function loads(page, url, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await page.goto(url, { waitUntil: 'load' });
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

async function main() {
  const plain = await plainSite();
  const plainUrl = `http://127.0.0.1:${plain.address().port}/`;
  const captcha = await new CaptchaSite().start();
  const captchaUrl = captcha.url(KINDS.recaptcha.path);
  const modes = { on: ['--captcha-detect', 'on'], off: ['--captcha-detect', 'off'] };
  const d = {}, b = {}, p = {};
  const times = { on: { plain: [], captcha: [] }, off: { plain: [], captcha: [] } };
  try {
    for (const [m, args] of Object.entries(modes)) {
      d[m] = await new Daemon({ site: true, pool: 1, args }).start();
      b[m] = await puppeteer.connect({ browserWSEndpoint: d[m].wsEndpoint(), protocolTimeout: 60000 });
      p[m] = await b[m].newPage();
      await loads(p[m], plainUrl, 3); // warm-up
    }
    for (let batch = 0; batch < BATCHES; batch++) {
      const order = batch % 2 ? ['off', 'on'] : ['on', 'off'];
      for (const m of order) {
        times[m].plain.push(...(await loads(p[m], plainUrl, LOADS)));
        times[m].captcha.push(...(await loads(p[m], captchaUrl, Math.max(2, LOADS / 4))));
      }
    }
  } finally {
    for (const m of Object.keys(modes)) {
      await b[m]?.close().catch(() => {});
      await d[m]?.stop();
    }
    plain.close();
    await captcha.close();
  }
  const r = (m, k) => median(times[m][k]);
  console.log(`loads per mode: ${times.on.plain.length} without a captcha, ${times.on.captcha.length} with one`);
  console.log(`page without a captcha: detection on ${r('on', 'plain').toFixed(2)} ms, off ${r('off', 'plain').toFixed(2)} ms (median), ratio on/off ${(r('on', 'plain') / r('off', 'plain')).toFixed(3)}`);
  console.log(`page with a reCAPTCHA:  detection on ${r('on', 'captcha').toFixed(2)} ms, off ${r('off', 'captcha').toFixed(2)} ms (median), ratio on/off ${(r('on', 'captcha') / r('off', 'captcha')).toFixed(3)}`);
  const ratio = r('on', 'plain') / r('off', 'plain');
  console.log(`goal: no measurable cost without a captcha (ratio <= 1.05): ${ratio <= 1.05 ? 'met' : 'NOT MET'}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
