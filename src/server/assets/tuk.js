/* tuk.js: enhances the question page (/soal/N); all pages also work without it.
 * - autosave: a change becomes an answer with the next seq, kept in a localStorage
 *   outbox (latest per item) until PUT /api/v1/answers/{item} succeeds; retried with
 *   backoff (1 s doubling to 30 s) and on every question page load;
 * - the latest acknowledged answer of every item (tuk.acked.*): when the server holds an
 *   older one (restored from a backup), it is sent again (docs/time.md);
 * - countdown of the server's remaining time, corrected by a heartbeat every 15 s;
 * - keys: A-E / 1-5 choose, R toggles Ragu-ragu, left/right arrows move;
 * - navigation checks that the server answers first: while it cannot be reached the page
 *   stays, says so (#offline) and goes on by itself when the server is back;
 * - during a pause saves are refused (409 session_paused): answers stay in the outbox,
 *   the pause shows at once (on an idle page within 2 s: GET /api/v1/events), and they
 *   are sent after the resume.
 * Every page: marks <html class="js"> (for .js-only hints) and counts down #timer.
 * ES5 only (Firefox 52, Chrome 49). */
(function () {
  'use strict';
  document.documentElement.className += ' js';
  var form = document.getElementById('q');
  if (!form || !window.XMLHttpRequest || !window.JSON || !form.querySelectorAll) {
    /* Other pages with a clock (the finish page): count down; at zero, the result. */
    var t = document.getElementById('timer');
    if (t && t.getAttribute('data-paused') !== 'true') {
      var left = parseInt(t.getAttribute('data-remaining'), 10) || 0, t0 = new Date().getTime();
      var el = t.getElementsByTagName('strong')[0] || t;
      var two = function (n) { return (n < 10 ? '0' : '') + n; };
      var iv = setInterval(function () {
        var s = Math.max(0, Math.floor((left - (new Date().getTime() - t0)) / 1000));
        el.textContent = two(Math.floor(s / 3600)) + ':' + two(Math.floor(s / 60) % 60) + ':' + two(s % 60);
        if (s === 0) { clearInterval(iv); setTimeout(function () { window.location.href = '/hasil'; }, 7000); }
      }, 500);
    }
    return;
  }

  function num(v) { var n = parseInt(v, 10); return isNaN(n) ? 0 : n; }
  function attr(name) { return form.getAttribute('data-' + name) || ''; }
  function now() { return new Date().getTime(); }

  var ITEM = attr('item'), N = num(attr('n')), TOTAL = num(attr('total'));
  var KEY_BOX = 'tuk.outbox.' + attr('attempt'), KEY_SEQ = 'tuk.seq.' + attr('attempt');
  var KEY_ACK = 'tuk.acked.' + attr('attempt');

  /* ---- storage: localStorage if it works (not in some private modes), else memory */
  var ls = null;
  try {
    ls = window.localStorage;
    ls.setItem('tuk.probe', '1');
    ls.removeItem('tuk.probe');
  } catch (e) { ls = null; }
  function lsGet(k) { try { return ls && ls.getItem(k); } catch (e) { return null; } }
  /* After a failed write (full?) memory is the only copy. */
  function lsSet(k, v) { try { if (ls) { ls.setItem(k, v); } } catch (e) { ls = null; } }

  /* The outbox: {itemId: {choice: [...], doubtful: bool, seq: n, n: questionNumber}}. */
  var box = {};
  /* Re-read before changes: other pages (or this one, back from the history cache)
     may have changed it. */
  function loadBox() {
    try { box = ls ? JSON.parse(lsGet(KEY_BOX) || '{}') || {} : box; } catch (e) { /* bad */ }
  }
  function saveBox() { lsSet(KEY_BOX, JSON.stringify(box)); }
  loadBox();
  function ids() {
    var a = [], k;
    for (k in box) { if (box.hasOwnProperty(k)) { a.push(k); } }
    return a;
  }

  /* Acknowledged answers, latest per item: {itemId: {choice, doubtful, seq}}. Small (one
   * entry per item); what a server restored from an older backup gets back. */
  function loadAcked() {
    try { return JSON.parse(lsGet(KEY_ACK) || '{}') || {}; } catch (e) { return {}; }
  }
  function remember(id, e) {
    var a = loadAcked();
    if (!a[id] || a[id].seq < e.seq) {
      a[id] = { choice: e.choice, doubtful: !!e.doubtful, seq: e.seq };
      lsSet(KEY_ACK, JSON.stringify(a));
    }
  }

  /* Sequence numbers rise per attempt, across pages and reloads. The server renders
   * data-seq = its highest seq + 1; the stored counter may be ahead of it. */
  var seq = Math.max(num(lsGet(KEY_SEQ)), num(attr('seq')) - 1);
  ids().forEach(function (k) { seq = Math.max(seq, box[k].seq); });
  function nextSeq() {
    seq = Math.max(seq, num(lsGet(KEY_SEQ))) + 1;
    lsSet(KEY_SEQ, String(seq));
    return seq;
  }

  /* ---- the page */
  var inputs = form.querySelectorAll('input[name=choice]');
  var doubt = form.querySelector('input[name=doubtful]');
  var statusEl = document.getElementById('status');
  var gridButtons = form.querySelectorAll('nav.grid button');
  var savedOnce = false, lastError = '';
  /* Words from the page: i18n.rs stays the one table of strings. */
  function word(w, d) { return (statusEl && statusEl.getAttribute('data-' + w)) || d; }
  var WORD_SAVED = word('saved', 'tersimpan'), WORD_UNSAVED = word('unsaved', 'belum tersimpan');
  var WORD_OFFLINE = word('offline', ''), WORD_PAUSED = word('paused', ''), WORD_RETRY = word('retry', '');
  var offlineEl = document.getElementById('offline');
  function showOffline(on) { if (offlineEl) { offlineEl.hidden = !on; } }

  function toggleClass(el, c, on) {
    var s = (' ' + el.className + ' ').replace(' ' + c + ' ', ' ');
    el.className = (on ? s + c : s).replace(/^\s+|\s+$/g, '');
  }

  /* What the form shows now. */
  function current() {
    var c = [], i;
    for (i = 0; i < inputs.length; i++) {
      if (inputs[i].checked) { c.push(inputs[i].value); }
    }
    return { choice: c, doubtful: !!(doubt && doubt.checked) };
  }
  function same(a, b) {
    return a.doubtful === b.doubtful && a.choice.join('\n') === b.choice.join('\n');
  }
  /* Highlight chosen options (labels cannot be styled by :checked in old browsers). */
  function paintOptions() {
    var i, l;
    for (i = 0; i < inputs.length; i++) {
      l = inputs[i].parentNode;
      if (l && l.tagName === 'LABEL') {
        toggleClass(l, 'chosen', inputs[i].checked);
      }
    }
  }
  function markGrid(n, a) {
    var b = gridButtons[n - 1];
    if (!b) { return; }
    b.className = (a.doubtful ? 'doubtful' : a.choice.length ? 'answered' : 'empty') +
      (n === N ? ' current' : '');
  }
  function showStatus() {
    if (!statusEl) { return; }
    var left = ids().length, s = '';
    if (left > 0) {
      s = WORD_UNSAVED + (left > 1 ? ' (' + left + ')' : '') +
        (lastError ? ' \u2014 ' + lastError : '');
    } else if (savedOnce) {
      s = WORD_SAVED;
    }
    statusEl.textContent = s;
    statusEl.className = 'status' + (left > 0 ? ' wait' : savedOnce ? ' ok' : '');
  }

  var leaving = false;
  /* Finished (by the participant, the proctor or the clock): the questionnaire, which
     passes on to the result when there is none. */
  function toResult() {
    if (!leaving) { leaving = true; window.location.href = '/kuesioner'; }
  }

  /* ---- sending: one request at a time, the current item first */
  function request(method, url, body, done) {
    var x = new XMLHttpRequest();
    try {
      x.open(method, url, true);
      x.setRequestHeader('Content-Type', 'application/json');
      x.timeout = 15000; /* then readyState 4 with status 0, as when offline */
      x.onreadystatechange = function () {
        var j = null;
        if (x.readyState !== 4) { return; }
        try { j = JSON.parse(x.responseText); } catch (e) { /* not JSON */ }
        done(x.status, j || {});
      };
      x.send(body === null ? null : JSON.stringify(body));
    } catch (e) {
      setTimeout(function () { done(0, {}); }, 0);
    }
  }

  var busy = false, retryTimer = null, delay = 0;

  function kick() {
    clearTimeout(retryTimer);
    retryTimer = null;
    send();
  }
  function drop(id, s) {
    loadBox();
    if (box[id] && box[id].seq === s) { delete box[id]; saveBox(); }
  }
  function send() {
    if (busy || leaving || retryTimer) { return; }
    var id = box[ITEM] ? ITEM : ids()[0];
    if (!id) { return; }
    var e = box[id];
    busy = true;
    request('PUT', '/api/v1/answers/' + encodeURIComponent(id),
      { choice: e.choice, doubtful: !!e.doubtful, seq: e.seq },
      function (st, j) {
        busy = false;
        var code = j.code || '';
        if (st === 409 && code === 'finished' || st === 410) {
          box = {};
          saveBox();
          toResult();
          return;
        }
        if (st === 409 && code === 'session_paused') {
          /* Paused by the proctor: keep it; the heartbeat sends it after the resume. */
          showOffline(false);
          lastError = WORD_PAUSED;
          paused = true;
          tick();
          showStatus();
          scheduleBeat(3000);
          return;
        }
        if (st === 200 || code === 'stale_seq' || st === 400 || st === 404 || st === 422) {
          /* Saved, superseded by a newer save, or refused for good. */
          if (st === 200) { remember(id, e); }
          drop(id, e.seq);
          delay = 0;
          lastError = st === 200 || code === 'stale_seq' ? '' : (j.message || code);
          savedOnce = savedOnce || st === 200;
          showOffline(false);
          if (code === 'stale_seq' && id === ITEM && !box[ITEM]) {
            /* The server has a newer answer for this page (another PC?): show it. */
            window.location.reload();
            return;
          }
          showStatus();
          send();
          return;
        }
        /* Network down, server busy or restarting, logged out...: keep and retry. */
        lastError = st ? (j.message || WORD_RETRY) : WORD_OFFLINE;
        showOffline(!st);
        delay = delay ? Math.min(delay * 2, 30000) : 1000;
        retryTimer = setTimeout(function () { retryTimer = null; send(); }, delay);
        showStatus();
      });
  }

  /* A change on the page: a new answer for this item. */
  function record() {
    var a = current();
    a.seq = nextSeq();
    a.n = N;
    loadBox();
    box[ITEM] = a;
    saveBox();
    paintOptions();
    markGrid(N, a);
    showStatus();
    kick();
  }

  form.addEventListener('change', function (ev) {
    var t = ev.target;
    if (t && (t.name === 'choice' || t.name === 'doubtful')) { record(); }
  }, false);

  /* Navigating still posts the form (it works without JS and saves too). Give it the
   * outbox's seq for this item, so both saves are the same one, or a fresh seq. */
  var lastBtn = null, online = false, pendingGo = null;
  document.addEventListener('click', function (ev) {
    var b = ev.target;
    while (b && b.tagName !== 'BUTTON') { b = b.parentNode; }
    if (b && b.form === form && b.name === 'go') { lastBtn = b; }
  }, true);
  form.addEventListener('submit', function (ev) {
    var e = box[ITEM];
    if (e && !same(e, current())) { record(); e = box[ITEM]; }
    if (form.elements.seq) { form.elements.seq.value = e ? e.seq : nextSeq(); }
    if (online) { return; }
    /* Leave only when the server answers: a dead server must not replace this page
       with the browser's own error page (the answer is kept here meanwhile). */
    ev.preventDefault();
    var first = pendingGo === null;
    pendingGo = lastBtn ? lastBtn.value : String(N);
    lastBtn = null;
    if (first) { probe(); }
  }, false);
  function probe() {
    request('GET', '/api/v1/state', null, function (st, j) {
      if (st === 0 || st >= 500) {
        showOffline(true);
        lastError = WORD_OFFLINE;
        showStatus();
        setTimeout(probe, 3000);
        return;
      }
      showOffline(false);
      if (j && j.paused) { paused = true; }
      proceed(pendingGo);
    });
  }
  function proceed(go) {
    online = true;
    leaving = true;
    if (paused && /^[0-9]+$/.test(go)) {
      /* Saves wait for the resume (outbox): just show the other question. */
      window.location.href = '/soal/' + go;
      return;
    }
    var h = document.createElement('input');
    h.type = 'hidden';
    h.name = 'go';
    h.value = go;
    h.id = 'go-hidden';
    form.appendChild(h);
    form.submit();
  }

  /* ---- the timer: the server's remaining time, never the PC's clock */
  var timerEl = document.getElementById('timer');
  var clockEl = timerEl && (timerEl.getElementsByTagName('strong')[0] || timerEl);
  var remaining = timerEl ? num(timerEl.getAttribute('data-remaining')) : 0;
  var paused = !!timerEl && timerEl.getAttribute('data-paused') === 'true';
  var since = now(), endTimer = null;
  var notice = document.getElementById('paused');

  function two(n) { return (n < 10 ? '0' : '') + n; }
  function tick() {
    if (!timerEl) { return; }
    var ms = paused ? remaining : remaining - (now() - since);
    ms = Math.max(ms, 0);
    var s = Math.floor(ms / 1000);
    clockEl.textContent = two(Math.floor(s / 3600)) + ':' + two(Math.floor(s / 60) % 60) +
      ':' + two(s % 60);
    toggleClass(timerEl, 'warn', !paused && ms <= 300000);
    toggleClass(timerEl, 'paused', paused);
    if (notice) { notice.hidden = !paused; }
    if (ms === 0 && !paused && !endTimer) {
      /* Time is up: flush, then let the server auto-submit (it allows 5 s of grace). */
      kick();
      endTimer = setTimeout(toResult, 7000);
    } else if ((ms > 0 || paused) && endTimer) {
      clearTimeout(endTimer); /* the proctor added time or paused */
      endTimer = null;
    }
  }

  /* The server's answers are older than what it acknowledged to this browser (it was
   * restored from a backup): queue ours again; their seq is newer, so the server takes them. */
  function resend(grid) {
    var a = loadAcked(), i, k, queued = false;
    loadBox();
    for (i = 0; i < grid.length; i++) {
      k = grid[i].id;
      if (k && a[k] && a[k].seq > (grid[i].seq || 0) && !(box[k] && box[k].seq >= a[k].seq)) {
        box[k] = { choice: a[k].choice, doubtful: a[k].doubtful, seq: a[k].seq, n: i + 1 };
        queued = true;
      }
    }
    if (queued) { saveBox(); kick(); }
  }

  /* Every 15 s; every 3 s while paused, so the resume is seen soon. */
  var beatTimer = null;
  function scheduleBeat(ms) {
    clearTimeout(beatTimer);
    beatTimer = setTimeout(heartbeat, ms);
  }
  function heartbeat() {
    scheduleBeat(paused ? 3000 : 15000);
    request('POST', '/api/v1/heartbeat', { unsaved: ids().length }, function (st, j) {
      if (st === 0) { showOffline(true); lastError = WORD_OFFLINE; showStatus(); return; }
      if (st !== 200) { return; }
      showOffline(false);
      if (j.status && j.status !== 'running') { return toResult(); }
      if (j.grid) { resend(j.grid); }
      if (typeof j.remaining_ms === 'number') {
        remaining = j.remaining_ms;
        since = now();
        if (paused && !j.paused && lastError === WORD_PAUSED) { lastError = ''; delay = 0; }
        paused = !!j.paused;
        tick();
        scheduleBeat(paused ? 3000 : 15000);
      }
      if (ids().length > 0 && !paused) {
        kick(); /* the server answers again: send now, not after the backoff */
      }
    });
  }

  /* ---- keyboard */
  function press(value) {
    var b = form.querySelector('.actions button[value="' + value + '"]');
    if (b) { b.click(); }
  }
  document.addEventListener('keydown', function (ev) {
    if (ev.ctrlKey || ev.altKey || ev.metaKey || leaving) { return; }
    var t = ev.target || {}, tag = t.tagName, type = t.type;
    if (tag === 'TEXTAREA' || tag === 'SELECT' || t.isContentEditable ||
      (tag === 'INPUT' && type !== 'radio' && type !== 'checkbox')) {
      return; /* typing */
    }
    var c = ev.keyCode || ev.which, o;
    /* A-E, 1-5, numpad 1-5 */
    var i = c >= 65 && c <= 69 ? c - 65 : c >= 49 && c <= 53 ? c - 49 : c >= 97 && c <= 101 ? c - 97 : -1;
    if (i >= 0 && i < inputs.length) {
      o = inputs[i];
      if (o.type === 'checkbox' || !o.checked) {
        o.checked = o.type === 'checkbox' ? !o.checked : true;
        record();
      }
      o.focus();
      ev.preventDefault();
    } else if (c === 82 && doubt) { /* R: Ragu-ragu */
      doubt.checked = !doubt.checked;
      record();
      ev.preventDefault();
    } else if (c === 37 && N > 1) {
      ev.preventDefault(); /* also stops the arrow from moving the radio choice */
      press(N - 1);
    } else if (c === 39 && N < TOTAL) {
      ev.preventDefault();
      press(N + 1);
    } else if (c === 13 && (type === 'radio' || type === 'checkbox')) {
      /* Enter on an option: "save & next", not the form's first button ("previous"). */
      var p = form.querySelector('.actions button.primary');
      if (p) { ev.preventDefault(); p.click(); }
    }
  }, false);

  /* ---- start: show unsent answers, then send them */
  (function () {
    var e = box[ITEM], i;
    if (e) {
      /* An answer this PC has not delivered yet is newer than what the server showed. */
      for (i = 0; i < inputs.length; i++) {
        inputs[i].checked = e.choice.indexOf(inputs[i].value) >= 0;
      }
      if (doubt) { doubt.checked = !!e.doubtful; }
    }
    ids().forEach(function (k) { markGrid(box[k].n, box[k]); });
  })();
  paintOptions();
  showStatus();
  send();
  /* data-seq is the server's highest seq + 1: an acknowledged seq at or above it means the
   * server lost answers (a restore), so compare item by item now, not in 15 s. */
  (function () {
    var a = loadAcked(), k, top = 0;
    for (k in a) { if (a.hasOwnProperty(k)) { top = Math.max(top, a[k].seq); } }
    if (top >= num(attr('seq'))) { heartbeat(); }
  })();
  tick();
  setInterval(tick, 500);
  scheduleBeat(paused ? 3000 : 15000);
  /* A pause or a resume shows within 2 s on an idle page too: the server streams the pause
   * state, and a change asks the heartbeat, which handles both. */
  if (timerEl && window.EventSource) {
    new window.EventSource('/api/v1/events').onmessage = function (ev) {
      var j = null;
      try { j = JSON.parse(ev.data); } catch (e) { return; }
      if (j && !!j.paused !== paused) { heartbeat(); }
    };
  }
  window.addEventListener('online', kick, false);
  window.addEventListener('pageshow', function (ev) {
    if (ev.persisted) {
      var h = document.getElementById('go-hidden');
      if (h) { h.parentNode.removeChild(h); }
      leaving = false;
      online = false;
      pendingGo = null;
      loadBox();
      kick();
    }
  }, false);
})();
