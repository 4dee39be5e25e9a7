'use strict';
// The live view's page: frames from /live/<token>/ws drawn as an image; with input allowed,
// clicks, wheel and keys go back as small JSON messages (src/cdp/liveview_proto.h has their
// form). Coordinates are fractions of the picture: browserd scales them to the page.
(function () {
  const token = location.pathname.split('/')[2] || '';
  const screen = document.getElementById('screen');
  const status = document.getElementById('status');
  const mode = document.getElementById('mode');
  const body = document.body;
  let input = false;
  let frames = 0;
  let refused = 0;

  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/live/' + token + '/ws');

  function setState(state, text) {
    body.dataset.state = state;
    status.textContent = text;
  }

  ws.onopen = () => setState('open', 'connected');
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch (e) { return; }
    if (m.type === 'hello') {
      input = m.input === true;
      body.dataset.input = String(input);
      mode.textContent = input ? 'input allowed' : 'read-only';
    } else if (m.type === 'frame') {
      screen.src = 'data:image/jpeg;base64,' + m.data;
      body.dataset.frames = String(++frames);
      setState('open', 'live');
    } else if (m.type === 'refused') {
      body.dataset.refused = String(++refused);
      status.textContent = 'input refused: ' + m.reason;
    }
  };
  ws.onclose = (ev) => {
    body.dataset.closeReason = ev.reason || '';
    setState('closed', 'closed' + (ev.reason ? ': ' + ev.reason : ''));
  };

  function send(m) {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m));
  }
  function where(ev) {
    const r = screen.getBoundingClientRect();
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return { x: clamp((ev.clientX - r.left) / r.width), y: clamp((ev.clientY - r.top) / r.height) };
  }
  function mods(ev) {
    return (ev.altKey ? 1 : 0) | (ev.ctrlKey ? 2 : 0) | (ev.metaKey ? 4 : 0) | (ev.shiftKey ? 8 : 0);
  }
  const BUTTONS = ['left', 'middle', 'right'];

  screen.addEventListener('mousedown', (ev) => {
    ev.preventDefault();
    screen.focus();
    send({ type: 'mouse', action: 'down', ...where(ev), button: BUTTONS[ev.button] || 'left',
      clicks: Math.min(3, Math.max(1, ev.detail || 1)), modifiers: mods(ev) });
  });
  screen.addEventListener('mouseup', (ev) => {
    ev.preventDefault();
    send({ type: 'mouse', action: 'up', ...where(ev), button: BUTTONS[ev.button] || 'left',
      clicks: Math.min(3, Math.max(1, ev.detail || 1)), modifiers: mods(ev) });
  });
  screen.addEventListener('contextmenu', (ev) => ev.preventDefault());
  screen.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const k = ev.deltaMode === 1 ? 40 : ev.deltaMode === 2 ? 800 : 1; // lines, pages -> pixels
    const clamp = (v) => Math.max(-10000, Math.min(10000, v * k));
    send({ type: 'wheel', ...where(ev), dx: clamp(ev.deltaX), dy: clamp(ev.deltaY), modifiers: mods(ev) });
  }, { passive: false });

  function key(action, ev) {
    if (document.activeElement !== screen) return;
    ev.preventDefault();
    const m = { type: 'key', action, key: ev.key.slice(0, 32), code: (ev.code || '').slice(0, 32), modifiers: mods(ev) };
    if (ev.key.length === 1) m.text = ev.key;
    else if (ev.key === 'Enter') m.text = '\r';
    if (ev.keyCode > 0 && ev.keyCode < 256) m.keyCode = ev.keyCode;
    send(m);
  }
  document.addEventListener('keydown', (ev) => key('down', ev));
  document.addEventListener('keyup', (ev) => key('up', ev));
})();
