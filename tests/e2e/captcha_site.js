'use strict';
// The captcha test site and the solver service of tests/e2e/captcha.test.js.
//
// The vendors' hosts cannot be reached from this machine, so the site serves its own stand-ins
// for their scripts, at the vendors' paths, on the local host (browserd matches the vendors'
// script and frame paths, never a site's name, so it cannot tell these from the real ones).
// Each stand-in reproduces what detection and solving rely on of the real widget:
//   /recaptcha/api.js         reCAPTCHA v2 (checkbox and invisible) and v3 (?render=KEY): for
//                             every .g-recaptcha[data-sitekey] an anchor frame
//                             (/recaptcha/api2/anchor?k=KEY&size=...) and the hidden textarea
//                             g-recaptcha-response (name and id) the form posts; grecaptcha with
//                             render, getResponse, execute, ready
//   /recaptcha/enterprise.js  the same as grecaptcha.enterprise, frames under /recaptcha/enterprise/
//   /1/api.js                 hCaptcha: for every .h-captcha[data-sitekey] a frame with
//                             #sitekey=KEY and the textareas h-captcha-response and
//                             g-recaptcha-response; hcaptcha.getResponse
//   /turnstile/v0/api.js      Cloudflare Turnstile: for every .cf-turnstile[data-sitekey] the
//                             hidden input cf-turnstile-response; turnstile.getResponse
//   /cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1   Cloudflare's challenge page script
//                             (the page: "Just a moment...", #challenge-form, as Cloudflare serves it)
//   /static/js/gt.js          GeeTest v3: initGeetest(config, cb) draws .geetest_holder
// The widgets call their data-callback with the token as the real ones do once solved.
const http = require('node:http');
const crypto = require('node:crypto');

const HEAD = '<!doctype html><meta charset="utf-8">';

const RECAPTCHA_JS = (ns) => `(() => {
  const me = document.currentScript ? document.currentScript.src : '';
  const render = new URL(me, location.href).searchParams.get('render');
  const base = ${JSON.stringify(ns === 'enterprise' ? '/recaptcha/enterprise/anchor' : '/recaptcha/api2/anchor')};
  const widgets = [];
  function draw(el) {
    if (el.dataset.drawn) return;
    el.dataset.drawn = '1';
    const key = el.getAttribute('data-sitekey');
    const size = el.getAttribute('data-size') || 'normal';
    const f = document.createElement('iframe');
    f.src = base + '?k=' + encodeURIComponent(key) + '&size=' + size;
    f.width = 304; f.height = 78;
    el.appendChild(f);
    const t = document.createElement('textarea');
    t.id = 'g-recaptcha-response'; t.name = 'g-recaptcha-response'; t.style.display = 'none';
    el.appendChild(t);
    widgets.push(t);
  }
  const api = {
    ready: (cb) => cb(),
    render: (el) => { draw(typeof el === 'string' ? document.getElementById(el) : el); return widgets.length - 1; },
    getResponse: (i) => (widgets[i || 0] ? widgets[i || 0].value : ''),
    execute: () => Promise.resolve(render ? 'v3-local-token' : ''),
  };
  window.grecaptcha = ${ns === 'enterprise' ? '{ enterprise: api }' : 'api'};
  const go = () => document.querySelectorAll('.g-recaptcha[data-sitekey]').forEach(draw);
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', go); else go();
})();`;

const HCAPTCHA_JS = `(() => {
  const go = () => document.querySelectorAll('.h-captcha[data-sitekey]').forEach((el) => {
    const f = document.createElement('iframe');
    f.src = '/captcha/v1/static/hcaptcha.html#frame=checkbox&sitekey=' + encodeURIComponent(el.getAttribute('data-sitekey'));
    el.appendChild(f);
    for (const name of ['g-recaptcha-response', 'h-captcha-response']) {
      const t = document.createElement('textarea'); t.name = name; t.style.display = 'none'; el.appendChild(t);
    }
  });
  window.hcaptcha = { getResponse: () => (document.querySelector('[name=h-captcha-response]') || {}).value || '' };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', go); else go();
})();`;

const TURNSTILE_JS = `(() => {
  const go = () => document.querySelectorAll('.cf-turnstile[data-sitekey]').forEach((el) => {
    const i = document.createElement('input'); i.type = 'hidden'; i.name = 'cf-turnstile-response'; el.appendChild(i);
  });
  window.turnstile = { getResponse: () => (document.querySelector('[name=cf-turnstile-response]') || {}).value || '' };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', go); else go();
})();`;

const GEETEST_JS = `window.initGeetest = (config, cb) => {
  const obj = { appendTo: (sel) => { const d = document.createElement('div'); d.className = 'geetest_holder geetest_wind';
    (typeof sel === 'string' ? document.querySelector(sel) : sel).appendChild(d); return obj; } };
  cb(obj);
};`;

const form = (action, widget, script, extra = '') =>
  HEAD +
  `<title>${action}</title>` +
  `<script>window.onCaptcha = (t) => { window.solvedToken = t; };</script>` +
  `<form id="form" method="post" action="/submit/${action}">${widget}<button id="send">send</button></form>` +
  `<script src="${script}"></script>${extra}`;

/** Each kind's page: the path, the site key it carries, the response field the form posts. */
const KINDS = {
  recaptcha: {
    path: '/p/recaptcha', sitekey: 'site-key-v2', field: 'g-recaptcha-response',
    html: () => form('recaptcha', '<div class="g-recaptcha" data-sitekey="site-key-v2" data-callback="onCaptcha"></div>', '/recaptcha/api.js'),
  },
  recaptcha_invisible: {
    path: '/p/recaptcha-invisible', sitekey: 'site-key-inv', field: 'g-recaptcha-response',
    html: () => form('recaptcha_invisible',
      '<div class="g-recaptcha" data-sitekey="site-key-inv" data-size="invisible" data-callback="onCaptcha"></div>', '/recaptcha/api.js'),
  },
  recaptcha_v3: {
    path: '/p/recaptcha-v3', sitekey: 'site-key-v3', field: null,
    html: () => form('recaptcha_v3', '', '/recaptcha/api.js?render=site-key-v3'),
  },
  recaptcha_enterprise: {
    path: '/p/recaptcha-enterprise', sitekey: 'site-key-ent', field: 'g-recaptcha-response',
    html: () => form('recaptcha_enterprise',
      '<div class="g-recaptcha" data-sitekey="site-key-ent" data-callback="onCaptcha"></div>', '/recaptcha/enterprise.js'),
  },
  hcaptcha: {
    path: '/p/hcaptcha', sitekey: '10000000-ffff-ffff-ffff-000000000001', field: 'h-captcha-response',
    html: () => form('hcaptcha',
      '<div class="h-captcha" data-sitekey="10000000-ffff-ffff-ffff-000000000001" data-callback="onCaptcha"></div>', '/1/api.js'),
  },
  turnstile: {
    path: '/p/turnstile', sitekey: '0x4AAAAAAAlocal', field: 'cf-turnstile-response',
    html: () => form('turnstile', '<div class="cf-turnstile" data-sitekey="0x4AAAAAAAlocal" data-callback="onCaptcha"></div>',
      '/turnstile/v0/api.js'),
  },
  cf_challenge: {
    path: '/p/cf-challenge', sitekey: '', field: null,
    html: () => HEAD + '<title>Just a moment...</title><div id="challenge-running">Checking your browser</div>' +
      '<form id="challenge-form" action="/p/cf-challenge?__cf_chl_f_tk=x" method="POST"></form>' +
      '<script src="/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1?ray=8f00"></script>',
  },
  geetest: {
    path: '/p/geetest', sitekey: '', field: null,
    html: () => HEAD + '<title>geetest</title><div id="captcha"></div><script src="/static/js/gt.js"></script>' +
      '<script>initGeetest({ gt: "gt-local", challenge: "c1", product: "float" }, (o) => o.appendTo("#captcha"));</script>',
  },
};

/** A page that draws every kind's markers with its own scripts, never loading a vendor script. */
const SPOOF = HEAD + '<title>spoof</title><div id="root"></div><script>' +
  `const r = document.getElementById('root');
  r.innerHTML = '<div class="g-recaptcha" data-sitekey="fake-key" data-callback="x"><textarea name="g-recaptcha-response"></textarea></div>' +
    '<div class="h-captcha" data-sitekey="fake-key"></div><div class="cf-turnstile" data-sitekey="fake-key"></div>' +
    '<form id="challenge-form"></form><div class="geetest_holder"></div>';
  const s = document.createElement('script'); s.textContent = 'window.grecaptcha = {}'; document.head.appendChild(s);
  window.___grecaptcha_cfg = { clients: {} };
  fetch('/plain.js?u=/recaptcha/api.js&h=hcaptcha.com/1/api.js');` + '</script>';

class CaptchaSite {
  constructor() {
    this.submissions = []; // {kind, token}
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => this.route(req, res, Buffer.concat(chunks).toString()));
    });
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.origin = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  url(p) {
    return this.origin + p;
  }

  async close() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  route(req, res, body) {
    const u = new URL(req.url, this.origin);
    const send = (type, text, status = 200) => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(text);
    };
    const js = (text) => send('application/javascript', text);
    const html = (text, status) => send('text/html; charset=utf-8', text, status);
    const p = u.pathname;
    if (p === '/recaptcha/api.js') return js(RECAPTCHA_JS('api'));
    if (p === '/recaptcha/enterprise.js') return js(RECAPTCHA_JS('enterprise'));
    if (p.startsWith('/recaptcha/api2/') || p.startsWith('/recaptcha/enterprise/')) return html(HEAD + '<p>checkbox</p>');
    if (p === '/1/api.js') return js(HCAPTCHA_JS);
    if (p === '/captcha/v1/static/hcaptcha.html') return html(HEAD + '<p>hcaptcha</p>');
    if (p === '/turnstile/v0/api.js') return js(TURNSTILE_JS);
    if (p.startsWith('/cdn-cgi/challenge-platform/')) return js('window.__chl = 1;');
    if (p === '/static/js/gt.js') return js(GEETEST_JS);
    if (p === '/plain.js') return js('');
    if (p === '/p/none') return html(HEAD + '<title>none</title><form><input name="q"></form>');
    if (p === '/p/spoof') return html(SPOOF);
    for (const [kind, k] of Object.entries(KINDS)) if (p === k.path) return html(k.html(), kind === 'cf_challenge' ? 403 : 200);
    if (p.startsWith('/submit/') && req.method === 'POST') {
      const kind = p.slice('/submit/'.length);
      const field = KINDS[kind] && KINDS[kind].field;
      const token = field ? new URLSearchParams(body).get(field) : null;
      this.submissions.push({ kind, token });
      const ok = token && this.accept && this.accept(token);
      return html(HEAD + `<title>${ok ? 'accepted' : 'rejected'}</title>`, ok ? 200 : 403);
    }
    return html(HEAD + 'not found', 404);
  }
}

/**
 * The operator's solver service: createTask / getTaskResult as 2captcha, anti-captcha and
 * capsolver speak them. mode 'ok' (a token after one "processing"), 'slow' (processing for
 * ever). Checks the client key. Tokens it issued are remembered (the site accepts those).
 */
class Solver {
  constructor({ key, mode = 'ok' }) {
    this.key = key;
    this.mode = mode;
    this.tasks = new Map(); // id -> {task, polls, token}
    this.created = [];
    this.issued = new Set();
    this.nextId = 1000;
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => this.route(req, res, Buffer.concat(chunks).toString()));
    });
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  async close() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  route(req, res, body) {
    const reply = (o) => {
      const text = JSON.stringify(o);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    let msg;
    try {
      msg = JSON.parse(body);
    } catch {
      return reply({ errorId: 1, errorCode: 'ERROR_BAD_JSON' });
    }
    if (msg.clientKey !== this.key) return reply({ errorId: 1, errorCode: 'ERROR_KEY_DOES_NOT_EXIST', errorDescription: 'bad key' });
    if (req.method === 'POST' && req.url === '/createTask') {
      const id = this.nextId++;
      this.created.push(msg.task);
      this.tasks.set(id, { task: msg.task, polls: 0 });
      return reply({ errorId: 0, taskId: id });
    }
    if (req.method === 'POST' && req.url === '/getTaskResult') {
      const t = this.tasks.get(msg.taskId);
      if (!t) return reply({ errorId: 1, errorCode: 'ERROR_NO_SUCH_CAPCHA_ID' });
      if (this.mode === 'slow' || t.polls++ < 1) return reply({ errorId: 0, status: 'processing' });
      const token = `tok-${t.task.type}-${crypto.randomBytes(6).toString('hex')}`;
      this.issued.add(token);
      const solution = t.task.type.startsWith('Turnstile') ? { token } : { gRecaptchaResponse: token };
      return reply({ errorId: 0, status: 'ready', solution });
    }
    res.writeHead(404);
    return res.end();
  }
}

module.exports = { CaptchaSite, Solver, KINDS };
