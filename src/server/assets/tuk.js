/* tuk.js: enhances the question page (/soal/N); all pages also work without it.
 * - autosave: a change becomes an answer with the next seq, kept in a localStorage
 *   outbox (latest per item) until PUT /api/v1/answers/{item} succeeds; retried with
 *   backoff (1 s doubling to 30 s) and on every question page load;
 * - the latest acknowledged answer of every item (tuk.acked.*): when the server holds an
 *   older one (restored from a backup), it is sent again (docs/time.md);
 * - countdown of the server's remaining time, corrected by a heartbeat every 15 s;
 * - keys: A-E / 1-5 choose, R toggles Ragu-ragu, left/right arrows move.
 * ES5 only (Firefox 52, Chrome 49). */
(function () {
  'use strict';
  var form = document.getElementById('q');
  if (!form || !window.XMLHttpRequest || !window.JSON || !form.querySelectorAll) {
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
  function toResult() {
    if (!leaving) { leaving = true; window.location.href = '/hasil'; }
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
      x.send(JSON.stringify(body));
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
        if (st === 200 || code === 'stale_seq' || st === 400 || st === 404 || st === 422) {
          /* Saved, superseded by a newer save, or refused for good. */
          if (st === 200) { remember(id, e); }
          drop(id, e.seq);
          delay = 0;
          lastError = st === 200 || code === 'stale_seq' ? '' : (j.message || code);
          savedOnce = savedOnce || st === 200;
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
        lastError = st ? (j.message || '') : '';
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
  form.addEventListener('submit', function () {
    var e = box[ITEM];
    if (e && !same(e, current())) { record(); e = box[ITEM]; }
    if (form.elements.seq) { form.elements.seq.value = e ? e.seq : nextSeq(); }
  }, false);

  /* ---- the timer: the server's remaining time, never the PC's clock */
  var timerEl = document.getElementById('timer');
  var clockEl = timerEl && (timerEl.getElementsByTagName('strong')[0] || timerEl);
  var remaining = timerEl ? num(timerEl.getAttribute('data-remaining')) : 0;
  var paused = !!timerEl && timerEl.getAttribute('data-paused') === 'true';
  var since = now(), endTimer = null;
  var notice = document.querySelector('.notice');

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

  function heartbeat() {
    request('POST', '/api/v1/heartbeat', { unsaved: ids().length }, function (st, j) {
      if (st !== 200) { return; }
      if (j.status && j.status !== 'running') { return toResult(); }
      if (j.grid) { resend(j.grid); }
      if (typeof j.remaining_ms === 'number') {
        remaining = j.remaining_ms;
        since = now();
        paused = !!j.paused;
        tick();
      }
      if (ids().length > 0) {
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
  setInterval(heartbeat, 15000);
  window.addEventListener('online', kick, false);
  window.addEventListener('pageshow', function (ev) {
    if (ev.persisted) { leaving = false; loadBox(); kick(); }
  }, false);
})();
